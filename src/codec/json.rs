//! `ferry.json`: JSON through serde_json, with `null` kept as a sentinel so objects keep every key.

use mlua::serde::SerializeOptions;
use mlua::{Lua, LuaSerdeExt, Table, Value};

use crate::runtime::registry::{ConstDoc, FnDoc, ModuleDef, Opt, Param};

pub static MODULE: ModuleDef = ModuleDef {
    name: "json",
    summary: "JSON encode and decode; ferry.json.null stands for JSON null.",
    functions: &[
        FnDoc {
            name: "encode",
            signature: "ferry.json.encode(value [, {pretty = false}]) -> text",
            params: &[Param::new("value", "any"), Param::opt("opts", "table")],
            options: &[Opt::def("pretty", "boolean", "false").doc("indented, one key per line")],
            returns: "string",
            doc: "Encodes a Lua value. Tables with only 1..n keys become arrays; an empty table \
                  becomes {} unless made with ferry.json.array().",
            example: Some(
                "assert(ferry.json.encode({a = 1}) == '{\"a\":1}')\nassert(ferry.json.encode(ferry.json.array{}) == '[]')",
            ),
        },
        FnDoc {
            name: "decode",
            signature: "ferry.json.decode(text) -> value",
            params: &[Param::new("text", "string")],
            options: &[],
            returns: "any",
            doc: "Decodes JSON; integers stay integers (64-bit), null becomes ferry.json.null, \
                  arrays keep their array-ness when encoded again. Invalid JSON raises an \
                  invalid_input error showing where and the start of the text.",
            example: Some(
                "local v = ferry.json.decode('{\"n\": 9007199254740993, \"x\": null}')\nassert(v.n == 9007199254740993 and v.x == ferry.json.null)",
            ),
        },
        FnDoc {
            name: "array",
            signature: "ferry.json.array([t]) -> t",
            params: &[Param::opt("t", "table")],
            options: &[],
            returns: "table",
            doc: "Marks a table to encode as a JSON array (even when empty).",
            example: Some(
                r#"assert(ferry.json.encode(ferry.json.array({})) == "[]")
assert(ferry.json.encode({}) == "{}")
local t = ferry.json.array()
t[1] = "a"
assert(ferry.json.encode(t) == '["a"]')"#,
            ),
        },
        FnDoc {
            name: "get_raw",
            signature: "ferry.json.get_raw(text, key) -> json_text or nil",
            params: &[Param::new("text", "string"), Param::new("key", "string")],
            options: &[],
            returns: "string?",
            doc: "The JSON text of one field of a top-level object, exactly as written (no \
                  re-encoding, so number forms and key order inside it are kept); nil when the \
                  object has no such field.",
            example: Some(
                "assert(ferry.json.get_raw('{\"a\":{\"z\":1,\"b\":2.50}}', \"a\") == '{\"z\":1,\"b\":2.50}')",
            ),
        },
        FnDoc {
            name: "set_raw",
            signature: "ferry.json.set_raw(text, key, json_text) -> text",
            params: &[
                Param::new("text", "string"),
                Param::new("key", "string"),
                Param::new("json_text", "string"),
            ],
            options: &[],
            returns: "string",
            doc: "Replaces (or appends) one field of a top-level object with the given JSON text, \
                  keeping every other field byte for byte and in its place. Both texts are \
                  checked; invalid JSON raises invalid_input. The result is compact (no \
                  whitespace between top-level fields).",
            example: Some(
                "local t = ferry.json.set_raw('{\"id\":\"x\",\"spec\":{\"a\":1},\"size\":1.0}', \"spec\", '{\"b\":2}')\nassert(t == '{\"id\":\"x\",\"spec\":{\"b\":2},\"size\":1.0}')",
            ),
        },
    ],
    classes: &[],
    constants: &[ConstDoc {
        name: "null",
        ty: "lightuserdata",
        doc: "JSON null, as decode gives it and encode writes it (the same value as \
              ferry.sql.null).",
    }],
    build,
};

fn build(lua: &Lua) -> mlua::Result<Table> {
    let m = lua.create_table()?;
    m.set("null", lua.null())?;
    m.set(
        "encode",
        lua.create_function(|lua, (v, opts): (Value, Option<Table>)| {
            crate::runtime::options::check_optional(opts.as_ref(), &MODULE, "encode")?;
            let pretty = match &opts {
                Some(o) => o.get::<Option<bool>>("pretty")?.unwrap_or(false),
                None => false,
            };
            let json: serde_json::Value = lua
                .from_value(v)
                .map_err(|e| super::decode_error("ferry.json.encode", e))?;
            let s = if pretty {
                serde_json::to_string_pretty(&json)
            } else {
                serde_json::to_string(&json)
            }
            .map_err(|e| super::decode_error("ferry.json.encode", e))?;
            Ok(s)
        })?,
    )?;
    m.set(
        "decode",
        lua.create_function(|lua, text: mlua::LuaString| {
            let bytes = text.as_bytes();
            let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
                let start: String = String::from_utf8_lossy(&bytes[..bytes.len().min(120)]).into();
                super::decode_error(
                    "ferry.json.decode",
                    format!("{e}; the text starts with: {start:?}"),
                )
            })?;
            lua.to_value_with(&v, SerializeOptions::new())
        })?,
    )?;
    m.set(
        "array",
        lua.create_function(|lua, t: Option<Table>| {
            let t = match t {
                Some(t) => t,
                None => lua.create_table()?,
            };
            t.set_metatable(Some(lua.array_metatable()))?;
            Ok(t)
        })?,
    )?;
    m.set(
        "get_raw",
        lua.create_function(|_, (text, key): (mlua::LuaString, String)| {
            let fields = raw_fields(&text.as_bytes(), "ferry.json.get_raw")?;
            Ok(fields
                .into_iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.get().to_string()))
        })?,
    )?;
    m.set(
        "set_raw",
        lua.create_function(
            |_, (text, key, value): (mlua::LuaString, String, mlua::LuaString)| {
                let fields = raw_fields(&text.as_bytes(), "ferry.json.set_raw")?;
                let value_bytes = value.as_bytes();
                let new: Box<RawValue> = serde_json::from_slice(&value_bytes)
                    .map_err(|e| super::decode_error("ferry.json.set_raw (new value)", e))?;
                Ok(splice(fields, &key, new))
            },
        )?,
    )?;
    Ok(m)
}

use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// The top-level fields of a JSON object, in order, with their values as written.
fn raw_fields(text: &[u8], what: &str) -> mlua::Result<Vec<(String, Box<RawValue>)>> {
    struct Fields;
    impl<'de> Visitor<'de> for Fields {
        type Value = Vec<(String, Box<RawValue>)>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some((k, v)) = map.next_entry::<String, Box<RawValue>>()? {
                out.push((k, v));
            }
            Ok(out)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(text);
    let fields = (&mut de)
        .deserialize_map(Fields)
        .and_then(|f| de.end().map(|_| f))
        .map_err(|e| {
            let start: String = String::from_utf8_lossy(&text[..text.len().min(120)]).into();
            super::decode_error(what, format!("{e}; the text starts with: {start:?}"))
        })?;
    Ok(fields)
}

/// Writes the object back with `key` set to `value` (appended when it was absent).
fn splice(fields: Vec<(String, Box<RawValue>)>, key: &str, value: Box<RawValue>) -> String {
    let mut out = String::from("{");
    let mut value = Some(value);
    let mut first = true;
    let mut push = |out: &mut String, k: &str, v: &str| {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(&serde_json::to_string(k).expect("a string encodes"));
        out.push(':');
        out.push_str(v);
    };
    for (k, v) in &fields {
        if k == key {
            if let Some(new) = value.take() {
                push(&mut out, k, new.get());
            }
        } else {
            push(&mut out, k, v.get());
        }
    }
    if let Some(new) = value {
        push(&mut out, key, new.get());
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splice_keeps_other_fields_verbatim() {
        let text = br#"{"a":1.50,"loadSpec":{"type":"local","path":"/x"},"s":"\u00e9\\"}"#;
        let fields = raw_fields(text, "t").unwrap();
        let new = RawValue::from_string(r#"{"type":"s3_zip"}"#.into()).unwrap();
        assert_eq!(
            splice(fields, "loadSpec", new),
            r#"{"a":1.50,"loadSpec":{"type":"s3_zip"},"s":"\u00e9\\"}"#
        );
        let fields = raw_fields(br#"{"a":1}"#, "t").unwrap();
        let new = RawValue::from_string("2".into()).unwrap();
        assert_eq!(splice(fields, "b", new), r#"{"a":1,"b":2}"#);
        assert!(raw_fields(b"[1]", "t").is_err());
        assert!(raw_fields(br#"{"a":1} x"#, "t").is_err());
    }
}
