//! `ferry.properties`: Java `.properties` files (Druid's common.runtime.properties, StarRocks'
//! sync.properties), with Java's escapes and line continuations.

use std::collections::HashMap;

use mlua::{Lua, Table};

use crate::runtime::registry::{FnDoc, ModuleDef};

pub static MODULE: ModuleDef = ModuleDef {
    name: "properties",
    summary: "Java .properties decode and encode (escapes, continuations, = or : separators).",
    functions: &[
        FnDoc {
            name: "decode",
            signature: "ferry.properties.decode(text) -> {key = value}",
            doc: "Parses Java properties text; later keys win, as in Java.",
            example: Some(
                "local p = ferry.properties.decode(\"a=1\\n# c\\nb : two \\\\\\n  words\\n\")\nassert(p.a == \"1\" and p.b == \"two words\")",
            ),
        },
        FnDoc {
            name: "encode",
            signature: "ferry.properties.encode(t) -> text",
            doc: "Writes key=value lines sorted by key, escaping as Java does.",
            example: Some(
                "assert(ferry.properties.encode({b = \"2\", a = \"1\"}) == \"a=1\\nb=2\\n\")",
            ),
        },
    ],
    build,
};

pub fn decode(text: &str) -> Result<HashMap<String, String>, String> {
    java_properties::read(text.as_bytes()).map_err(|e| e.to_string())
}

pub fn encode(map: &HashMap<String, String>) -> Result<String, String> {
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    let mut out = Vec::new();
    {
        let mut w = java_properties::PropertiesWriter::new(&mut out);
        w.set_kv_separator("=").map_err(|e| e.to_string())?;
        for k in keys {
            w.write(k, &map[k]).map_err(|e| e.to_string())?;
        }
        w.finish().map_err(|e| e.to_string())?;
    }
    String::from_utf8(out).map_err(|e| e.to_string())
}

fn build(lua: &Lua) -> mlua::Result<Table> {
    let m = lua.create_table()?;
    m.set(
        "decode",
        lua.create_function(|lua, text: String| {
            let map =
                decode(&text).map_err(|e| super::decode_error("ferry.properties.decode", e))?;
            let t = lua.create_table()?;
            for (k, v) in map {
                t.set(k, v)?;
            }
            Ok(t)
        })?,
    )?;
    m.set(
        "encode",
        lua.create_function(|_, t: Table| {
            let mut map = HashMap::new();
            for pair in t.pairs::<String, mlua::Value>() {
                let (k, v) = pair?;
                map.insert(k, v.to_string()?);
            }
            encode(&map).map_err(|e| super::decode_error("ferry.properties.encode", e))
        })?,
    )?;
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn druid_style_properties_round_trip() {
        let text = "druid.metadata.storage.type=mysql\n\
                    druid.metadata.storage.connector.connectURI=jdbc:mysql://db.example.com:3306/druid\n\
                    # comment\n\
                    druid.storage.storageDirectory = var/druid/segments\n";
        let m = decode(text).unwrap();
        assert_eq!(m["druid.metadata.storage.type"], "mysql");
        assert_eq!(
            m["druid.metadata.storage.connector.connectURI"],
            "jdbc:mysql://db.example.com:3306/druid"
        );
        assert_eq!(m["druid.storage.storageDirectory"], "var/druid/segments");
        let again = decode(&encode(&m).unwrap()).unwrap();
        assert_eq!(again, m);
    }
}
