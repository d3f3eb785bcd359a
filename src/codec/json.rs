//! `ferry.json`: JSON through serde_json, with `null` kept as a sentinel so objects keep every key.

use mlua::serde::SerializeOptions;
use mlua::{Lua, LuaSerdeExt, Table, Value};

use crate::runtime::registry::{FnDoc, ModuleDef};

pub static MODULE: ModuleDef = ModuleDef {
    name: "json",
    summary: "JSON encode and decode; ferry.json.null stands for JSON null.",
    functions: &[
        FnDoc {
            name: "encode",
            signature: "ferry.json.encode(value [, {pretty = false}]) -> text",
            doc: "Encodes a Lua value. Tables with only 1..n keys become arrays; an empty table \
                  becomes {} unless made with ferry.json.array().",
            example: Some(
                "assert(ferry.json.encode({a = 1}) == '{\"a\":1}')\nassert(ferry.json.encode(ferry.json.array{}) == '[]')",
            ),
        },
        FnDoc {
            name: "decode",
            signature: "ferry.json.decode(text) -> value",
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
            doc: "Marks a table to encode as a JSON array (even when empty).",
            example: None,
        },
    ],
    build,
};

fn build(lua: &Lua) -> mlua::Result<Table> {
    let m = lua.create_table()?;
    m.set("null", lua.null())?;
    m.set(
        "encode",
        lua.create_function(|lua, (v, opts): (Value, Option<Table>)| {
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
    Ok(m)
}
