//! `ferry.digest` and `ferry.zlib`: hashes and zlib streams, for verifying content-addressed
//! objects (Seafile's blocks are SHA-1 of their bytes, fs objects SHA-1 of their inflated bytes).

use std::io::{Read, Write};

use mlua::{Lua, LuaString, Table};
use sha2::Digest;

use crate::runtime::registry::{FnDoc, ModuleDef, Opt, Param};

pub static DIGEST: ModuleDef = ModuleDef {
    name: "digest",
    summary: "SHA-1, SHA-256 and MD5 of byte strings, as lower-case hex.",
    functions: &[
        FnDoc {
            name: "sha1",
            signature: "ferry.digest.sha1(bytes) -> hex",
            params: &[Param::new("bytes", "string")],
            options: &[],
            returns: "string",
            doc: "SHA-1 of a byte string.",
            example: Some(
                "assert(ferry.digest.sha1(\"abc\") == \"a9993e364706816aba3e25717850c26c9cd0d89d\")",
            ),
        },
        FnDoc {
            name: "sha256",
            signature: "ferry.digest.sha256(bytes) -> hex",
            params: &[Param::new("bytes", "string")],
            options: &[],
            returns: "string",
            doc: "SHA-256 of a byte string.",
            example: Some("assert(#ferry.digest.sha256(\"\") == 64)"),
        },
        FnDoc {
            name: "md5",
            signature: "ferry.digest.md5(bytes) -> hex",
            params: &[Param::new("bytes", "string")],
            options: &[],
            returns: "string",
            doc: "MD5 of a byte string (S3 single-part ETags are MD5s).",
            example: Some("assert(ferry.digest.md5(\"\") == \"d41d8cd98f00b204e9800998ecf8427e\")"),
        },
    ],
    classes: &[],
    constants: &[],
    build: build_digest,
};

pub static ZLIB: ModuleDef = ModuleDef {
    name: "zlib",
    summary: "zlib (deflate with header) compress and decompress.",
    functions: &[
        FnDoc {
            name: "compress",
            signature: "ferry.zlib.compress(bytes) -> bytes",
            params: &[Param::new("bytes", "string")],
            options: &[],
            returns: "string",
            doc: "A zlib stream of the bytes (default level).",
            example: Some(
                "assert(ferry.zlib.decompress(ferry.zlib.compress(\"hello\")) == \"hello\")",
            ),
        },
        FnDoc {
            name: "decompress",
            signature: "ferry.zlib.decompress(bytes) -> bytes",
            params: &[Param::new("bytes", "string")],
            options: &[],
            returns: "string",
            doc: "Inflates a zlib stream; invalid data raises invalid_input.",
            example: Some(
                r#"local z = ferry.zlib.compress(("abc"):rep(100))
assert(#z < 300 and ferry.zlib.decompress(z) == ("abc"):rep(100))"#,
            ),
        },
    ],
    classes: &[],
    constants: &[],
    build: build_zlib,
};

fn build_digest(lua: &Lua) -> mlua::Result<Table> {
    let m = lua.create_table()?;
    m.set(
        "sha1",
        lua.create_function(|_, b: LuaString| Ok(hex::encode(sha1::Sha1::digest(b.as_bytes()))))?,
    )?;
    m.set(
        "sha256",
        lua.create_function(|_, b: LuaString| Ok(hex::encode(sha2::Sha256::digest(b.as_bytes()))))?,
    )?;
    m.set(
        "md5",
        lua.create_function(|_, b: LuaString| Ok(hex::encode(md5::Md5::digest(b.as_bytes()))))?,
    )?;
    Ok(m)
}

pub static HEX: ModuleDef = ModuleDef {
    name: "hex",
    summary: "Hexadecimal encode and decode of byte strings (BLOB dumps, Derby and export CSVs).",
    functions: &[
        FnDoc {
            name: "encode",
            signature: "ferry.hex.encode(bytes [, {upper = false}]) -> text",
            params: &[Param::new("bytes", "string"), Param::opt("opts", "table")],
            options: &[Opt::def("upper", "boolean", "false").doc("A-F instead of a-f")],
            returns: "string",
            doc: "The bytes as hex, lower case unless upper = true.",
            example: Some(
                "assert(ferry.hex.encode(\"{}\") == \"7b7d\")\nassert(ferry.hex.encode(\"{}\", {upper = true}) == \"7B7D\")",
            ),
        },
        FnDoc {
            name: "decode",
            signature: "ferry.hex.decode(text) -> bytes",
            params: &[Param::new("text", "string")],
            options: &[],
            returns: "string",
            doc: "Decodes hex (either case); anything else raises invalid_input.",
            example: Some("assert(ferry.hex.decode(\"7B7d\") == \"{}\")"),
        },
    ],
    classes: &[],
    constants: &[],
    build: build_hex,
};

fn build_hex(lua: &Lua) -> mlua::Result<Table> {
    let m = lua.create_table()?;
    m.set(
        "encode",
        lua.create_function(|_, (b, opts): (LuaString, Option<Table>)| {
            crate::runtime::options::check_optional(opts.as_ref(), &HEX, "encode")?;
            let upper = match opts {
                Some(o) => o.get::<Option<bool>>("upper")?.unwrap_or(false),
                None => false,
            };
            Ok(if upper {
                hex::encode_upper(b.as_bytes())
            } else {
                hex::encode(b.as_bytes())
            })
        })?,
    )?;
    m.set(
        "decode",
        lua.create_function(|lua, t: LuaString| {
            let bytes = t.as_bytes();
            let out = hex::decode(&bytes[..]).map_err(|e| {
                let start: String = String::from_utf8_lossy(&bytes[..bytes.len().min(40)]).into();
                super::decode_error(
                    "ferry.hex.decode",
                    format!("{e}; the text starts with {start:?}"),
                )
            })?;
            lua.create_string(&out)
        })?,
    )?;
    Ok(m)
}

pub static BASE64: ModuleDef = ModuleDef {
    name: "base64",
    summary: "Base64 (standard alphabet, padded) encode and decode of byte strings.",
    functions: &[
        FnDoc {
            name: "encode",
            signature: "ferry.base64.encode(bytes) -> text",
            params: &[Param::new("bytes", "string")],
            options: &[],
            returns: "string",
            doc: "The bytes in standard Base64 with padding.",
            example: Some("assert(ferry.base64.encode(\"{}\") == \"e30=\")"),
        },
        FnDoc {
            name: "decode",
            signature: "ferry.base64.decode(text) -> bytes",
            params: &[Param::new("text", "string")],
            options: &[],
            returns: "string",
            doc: "Decodes standard Base64 (padding optional, line breaks ignored); anything else \
                  raises invalid_input.",
            example: Some("assert(ferry.base64.decode(\"e30=\") == \"{}\")"),
        },
    ],
    classes: &[],
    constants: &[],
    build: build_base64,
};

fn build_base64(lua: &Lua) -> mlua::Result<Table> {
    use base64::Engine;
    let m = lua.create_table()?;
    m.set(
        "encode",
        lua.create_function(|_, b: LuaString| {
            Ok(base64::engine::general_purpose::STANDARD.encode(b.as_bytes()))
        })?,
    )?;
    m.set(
        "decode",
        lua.create_function(|lua, t: LuaString| {
            let text: Vec<u8> = t
                .as_bytes()
                .iter()
                .copied()
                .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
                .collect();
            let out = base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(&text)
                .map_err(|e| super::decode_error("ferry.base64.decode", e))?;
            lua.create_string(&out)
        })?,
    )?;
    Ok(m)
}

fn build_zlib(lua: &Lua) -> mlua::Result<Table> {
    let m = lua.create_table()?;
    m.set(
        "compress",
        lua.create_function(|lua, b: LuaString| {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(&b.as_bytes()).map_err(mlua::Error::external)?;
            lua.create_string(e.finish().map_err(mlua::Error::external)?)
        })?,
    )?;
    m.set(
        "decompress",
        lua.create_function(|lua, b: LuaString| {
            let bytes = b.as_bytes().to_vec();
            let mut out = Vec::new();
            flate2::read::ZlibDecoder::new(&bytes[..])
                .read_to_end(&mut out)
                .map_err(|e| super::decode_error("ferry.zlib.decompress", e))?;
            lua.create_string(&out)
        })?,
    )?;
    Ok(m)
}
