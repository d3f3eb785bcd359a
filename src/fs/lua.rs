//! Lua binding of `ferry.fs`.

use std::path::PathBuf;

use mlua::{Lua, Table, Value};

use crate::runtime::context::ctx;
use crate::runtime::error::{FerryError, IntoLuaResult};
use crate::runtime::registry::{FnDoc, ModuleDef, Opt, Param};

pub static MODULE: ModuleDef = ModuleDef {
    name: "fs",
    summary: "Local files: read, write (atomic), list, walk, mkdir, remove, rename, copy, stat, sha256.",
    functions: &[
        FnDoc {
            name: "read",
            signature: "ferry.fs.read(path) -> bytes",
            params: &[Param::new("path", "string")],
            options: &[],
            returns: "string",
            doc: "Reads a whole file.",
            example: Some(
                r#"local p = os.tmpname()
ferry.fs.write(p, "line 1\n")
assert(ferry.fs.read(p) == "line 1\n")
ferry.fs.remove(p)"#,
            ),
        },
        FnDoc {
            name: "write",
            signature: "ferry.fs.write(path, bytes [, {append = false}])",
            params: &[
                Param::new("path", "string"),
                Param::new("bytes", "string"),
                Param::opt("opts", "table"),
            ],
            options: &[Opt::def("append", "boolean", "false").doc("append instead of replacing")],
            returns: "",
            doc: "Writes a file atomically (temporary file and rename), or appends. Reported, not done, under --dry-run.",
            example: Some(
                "local p = os.tmpname()\nferry.fs.write(p, \"abc\")\nassert(ferry.fs.read(p) == \"abc\")\nferry.fs.remove(p)",
            ),
        },
        FnDoc {
            name: "exists",
            signature: "ferry.fs.exists(path) -> boolean",
            params: &[Param::new("path", "string")],
            options: &[],
            returns: "boolean",
            doc: "Whether the path exists.",
            example: Some("assert(ferry.fs.exists(\"/\"))"),
        },
        FnDoc {
            name: "stat",
            signature: "ferry.fs.stat(path) -> {size, is_dir, mtime} or nil",
            params: &[Param::new("path", "string")],
            options: &[],
            returns: "{size: integer, is_dir: boolean, mtime: number?}?",
            doc: "File metadata, nil when absent (mtime in seconds since the epoch).",
            example: Some("assert(ferry.fs.stat(\"/\").is_dir)"),
        },
        FnDoc {
            name: "list",
            signature: "ferry.fs.list(dir) -> {names}",
            params: &[Param::new("dir", "string")],
            options: &[],
            returns: "string[]",
            doc: "Entry names of a folder, sorted.",
            example: Some(
                r#"local d = os.tmpname()
ferry.fs.remove(d)
ferry.fs.mkdir(d)
ferry.fs.write(d .. "/b", "")
ferry.fs.write(d .. "/a", "")
local names = ferry.fs.list(d)
table.sort(names)
assert(#names == 2 and names[1] == "a" and names[2] == "b")
ferry.fs.remove(d, {recursive = true})"#,
            ),
        },
        FnDoc {
            name: "walk",
            signature: "ferry.fs.walk(dir) -> {{path, rel, size, is_dir}...}",
            params: &[Param::new("dir", "string")],
            options: &[],
            returns: "{path: string, rel: string, size: integer, is_dir: boolean}[]",
            doc: "Every file and folder below dir, sorted by relative path (`/` separators).",
            example: Some(
                r#"local d = os.tmpname()
ferry.fs.remove(d)
ferry.fs.mkdir(d .. "/sub")
ferry.fs.write(d .. "/sub/f.txt", "abc")
local files = 0
for _, e in ipairs(ferry.fs.walk(d)) do
  if not e.is_dir then
    files = files + 1
    assert(e.rel == "sub/f.txt" and e.size == 3)
  end
end
assert(files == 1)
ferry.fs.remove(d, {recursive = true})"#,
            ),
        },
        FnDoc {
            name: "mkdir",
            signature: "ferry.fs.mkdir(path)",
            params: &[Param::new("path", "string")],
            options: &[],
            returns: "",
            doc: "Creates a folder and its parents.",
            example: Some(
                r#"local d = os.tmpname()
ferry.fs.remove(d)
ferry.fs.mkdir(d .. "/a/b")
assert(ferry.fs.stat(d .. "/a/b").is_dir)
ferry.fs.remove(d, {recursive = true})"#,
            ),
        },
        FnDoc {
            name: "remove",
            signature: "ferry.fs.remove(path [, {recursive = false}])",
            params: &[Param::new("path", "string"), Param::opt("opts", "table")],
            options: &[Opt::def("recursive", "boolean", "false")
                .doc("remove a folder and everything in it")],
            returns: "",
            doc: "Removes a file, an empty folder, or (recursive) a tree. Absent paths are not an error.",
            example: Some(
                r#"local d = os.tmpname()
ferry.fs.remove(d)
ferry.fs.mkdir(d)
ferry.fs.write(d .. "/f", "x")
ferry.fs.remove(d, {recursive = true})
assert(not ferry.fs.exists(d))"#,
            ),
        },
        FnDoc {
            name: "rename",
            signature: "ferry.fs.rename(from, to)",
            params: &[Param::new("from", "string"), Param::new("to", "string")],
            options: &[],
            returns: "",
            doc: "Renames (moves) within a filesystem.",
            example: Some(
                r#"local p = os.tmpname()
ferry.fs.write(p, "x")
ferry.fs.rename(p, p .. ".done")
assert(not ferry.fs.exists(p) and ferry.fs.read(p .. ".done") == "x")
ferry.fs.remove(p .. ".done")"#,
            ),
        },
        FnDoc {
            name: "copy",
            signature: "ferry.fs.copy(from, to) -> bytes",
            params: &[Param::new("from", "string"), Param::new("to", "string")],
            options: &[],
            returns: "integer",
            doc: "Copies a file (creating folders), through a temporary name and a rename.",
            example: Some(
                r#"local p = os.tmpname()
ferry.fs.write(p, "abc")
assert(ferry.fs.copy(p, p .. ".bak") == 3)
assert(ferry.fs.read(p .. ".bak") == "abc")
ferry.fs.remove(p)
ferry.fs.remove(p .. ".bak")"#,
            ),
        },
        FnDoc {
            name: "sha256",
            signature: "ferry.fs.sha256(path) -> hex",
            params: &[Param::new("path", "string")],
            options: &[],
            returns: "string",
            doc: "SHA-256 of a file, streamed.",
            example: Some(
                r#"local p = os.tmpname()
ferry.fs.write(p, "abc")
assert(ferry.fs.sha256(p) == ferry.digest.sha256("abc"))
assert(ferry.fs.sha256(p) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
ferry.fs.remove(p)"#,
            ),
        },
        FnDoc {
            name: "absolute",
            signature: "ferry.fs.absolute(path) -> path",
            params: &[Param::new("path", "string")],
            options: &[],
            returns: "string",
            doc: "The path made absolute against the current folder (links are not resolved).",
            example: Some("assert(ferry.fs.absolute(\"x\"):sub(1, 1) == \"/\")"),
        },
    ],
    classes: &[],
    constants: &[],
    build,
};

fn p(s: &str) -> PathBuf {
    PathBuf::from(s)
}

fn build(lua: &Lua) -> mlua::Result<Table> {
    let m = lua.create_table()?;
    m.set(
        "read",
        lua.create_async_function(|lua, path: String| async move {
            let data = super::read(&p(&path)).await.lua_err()?;
            lua.create_string(&data)
        })?,
    )?;
    m.set(
        "write",
        lua.create_async_function(
            |lua, (path, data, opts): (String, mlua::LuaString, Option<Table>)| async move {
                crate::runtime::options::check_optional(opts.as_ref(), &MODULE, "write")?;
                let append = match &opts {
                    Some(o) => o.get::<Option<bool>>("append")?.unwrap_or(false),
                    None => false,
                };
                let bytes = data.as_bytes().to_vec();
                let verb = if append { "append" } else { "write" };
                if ctx(&lua).would(&format!("{verb} {} bytes to {path}", bytes.len())) {
                    return Ok(());
                }
                super::write(&p(&path), &bytes, append).await.lua_err()
            },
        )?,
    )?;
    m.set(
        "exists",
        lua.create_async_function(|_, path: String| async move {
            Ok(tokio::fs::try_exists(&path).await.unwrap_or(false))
        })?,
    )?;
    m.set(
        "stat",
        lua.create_async_function(|lua, path: String| async move {
            match tokio::fs::metadata(&path).await {
                Ok(meta) => {
                    let t = lua.create_table()?;
                    t.set("size", meta.len())?;
                    t.set("is_dir", meta.is_dir())?;
                    let mtime = meta
                        .modified()
                        .ok()
                        .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
                        .map(|d| d.as_secs_f64());
                    t.set("mtime", mtime)?;
                    Ok(Value::Table(t))
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Value::Nil),
                Err(e) => Err(FerryError::io(format!("stat {path}"), &e).into()),
            }
        })?,
    )?;
    m.set(
        "list",
        lua.create_async_function(|lua, dir: String| async move {
            let mut rd = tokio::fs::read_dir(&dir)
                .await
                .map_err(|e| FerryError::io(format!("listing {dir}"), &e))?;
            let mut names = Vec::new();
            while let Some(ent) = rd
                .next_entry()
                .await
                .map_err(|e| FerryError::io(format!("listing {dir}"), &e))?
            {
                names.push(ent.file_name().to_string_lossy().into_owned());
            }
            names.sort();
            lua.create_sequence_from(names)
        })?,
    )?;
    m.set(
        "walk",
        lua.create_async_function(|lua, dir: String| async move {
            let entries = super::walk(&p(&dir)).await.lua_err()?;
            let out = lua.create_table_with_capacity(entries.len(), 0)?;
            for (i, e) in entries.into_iter().enumerate() {
                let t = lua.create_table()?;
                t.set("path", e.path.to_string_lossy().into_owned())?;
                t.set("rel", e.rel)?;
                t.set("size", e.size)?;
                t.set("is_dir", e.is_dir)?;
                out.raw_set(i + 1, t)?;
            }
            Ok(out)
        })?,
    )?;
    m.set(
        "mkdir",
        lua.create_async_function(|lua, path: String| async move {
            if ctx(&lua).would(&format!("create folder {path}")) {
                return Ok(());
            }
            tokio::fs::create_dir_all(&path)
                .await
                .map_err(|e| FerryError::io(format!("creating folder {path}"), &e).into())
        })?,
    )?;
    m.set(
        "remove",
        lua.create_async_function(|lua, (path, opts): (String, Option<Table>)| async move {
            crate::runtime::options::check_optional(opts.as_ref(), &MODULE, "remove")?;
            let recursive = match &opts {
                Some(o) => o.get::<Option<bool>>("recursive")?.unwrap_or(false),
                None => false,
            };
            let meta = match tokio::fs::symlink_metadata(&path).await {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(FerryError::io(format!("stat {path}"), &e).into()),
            };
            if ctx(&lua).would(&format!(
                "remove {path}{}",
                if recursive { " (recursively)" } else { "" }
            )) {
                return Ok(());
            }
            let r = if meta.is_dir() {
                if recursive {
                    tokio::fs::remove_dir_all(&path).await
                } else {
                    tokio::fs::remove_dir(&path).await
                }
            } else {
                tokio::fs::remove_file(&path).await
            };
            r.map_err(|e| FerryError::io(format!("removing {path}"), &e).into())
        })?,
    )?;
    m.set(
        "rename",
        lua.create_async_function(|lua, (from, to): (String, String)| async move {
            if ctx(&lua).would(&format!("rename {from} to {to}")) {
                return Ok(());
            }
            tokio::fs::rename(&from, &to)
                .await
                .map_err(|e| FerryError::io(format!("renaming {from} to {to}"), &e).into())
        })?,
    )?;
    m.set(
        "copy",
        lua.create_async_function(|lua, (from, to): (String, String)| async move {
            if ctx(&lua).would(&format!("copy {from} to {to}")) {
                let size = tokio::fs::metadata(&from)
                    .await
                    .map(|m| m.len())
                    .unwrap_or(0);
                return Ok(size);
            }
            super::copy(&p(&from), &p(&to)).await.lua_err()
        })?,
    )?;
    m.set(
        "absolute",
        lua.create_function(|_, path: String| {
            std::path::absolute(&path)
                .map(|p| p.to_string_lossy().into_owned())
                .map_err(|e| FerryError::io(format!("absolute path of {path}"), &e).into())
        })?,
    )?;
    m.set(
        "sha256",
        lua.create_async_function(|_, path: String| async move {
            super::sha256(&p(&path)).await.lua_err()
        })?,
    )?;
    Ok(m)
}
