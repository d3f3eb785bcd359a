//! `ferry.state`: small values a procedure keeps between runs (a migration id, the last synced
//! version of each partition), stored as `state.json` in the state dir and written atomically.

use std::path::PathBuf;

use mlua::{Lua, LuaSerdeExt, Table, Value};
use serde_json::{Map, Value as Json};

use super::context::{RunContext, ctx};
use super::error::{FerryError, IntoLuaResult, Result};
use super::registry::{FnDoc, ModuleDef, Param};
use super::runbook::to_json;

pub static MODULE: ModuleDef = ModuleDef {
    name: "state",
    summary: "Values kept between runs of a procedure, in the state dir.",
    functions: &[
        FnDoc {
            name: "get",
            signature: "ferry.state.get(key) -> value or nil",
            params: &[Param::new("key", "string")],
            options: &[],
            returns: "any",
            doc: "Reads a value saved by this or an earlier run with the same state dir.",
            example: Some("assert(ferry.state.get(\"never-set\") == nil)"),
        },
        FnDoc {
            name: "set",
            signature: "ferry.state.set(key, value)",
            params: &[Param::new("key", "string"), Param::new("value", "any")],
            options: &[],
            returns: "",
            doc: "Saves a JSON-compatible value; written to disk at once (atomically). A dry run \
                  keeps it in memory only.",
            example: Some("ferry.state.set(\"k\", {n = 1})\nassert(ferry.state.get(\"k\").n == 1)"),
        },
        FnDoc {
            name: "dir",
            signature: "ferry.state.dir() -> path",
            params: &[],
            options: &[],
            returns: "string",
            doc: "The state dir (journal, caches, state.json), for caches a script keeps itself.",
            example: Some("assert(type(ferry.state.dir()) == \"string\")"),
        },
    ],
    classes: &[],
    constants: &[],
    build,
};

fn state_file(c: &RunContext) -> PathBuf {
    c.opts.state_dir.join("state.json")
}

fn load(c: &RunContext) -> Result<()> {
    if c.state_values.borrow().is_some() {
        return Ok(());
    }
    let path = state_file(c);
    let map = match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str::<Map<String, Json>>(&text).map_err(|e| {
            FerryError::new(
                super::error::ErrorKind::InvalidInput,
                format!("{} is not valid JSON: {e}", path.display()),
            )
            .hint("fix or remove the file; it holds values such as ids of started migrations")
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Map::new(),
        Err(e) => return Err(FerryError::io(format!("reading {}", path.display()), &e)),
    };
    *c.state_values.borrow_mut() = Some(map);
    Ok(())
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a crash leaves either the
/// old or the new content.
pub fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir)
        .map_err(|e| FerryError::io(format!("creating {}", dir.display()), &e))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let (mut f, tmp) = temp_file(dir, name).map_err(|e| {
        FerryError::io(format!("writing a temporary file in {}", dir.display()), &e)
    })?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| FerryError::io(format!("writing {}", tmp.display()), &e))?;
    // Renamed while still locked, so no other writer takes it over half-way.
    std::fs::rename(&tmp, path).map_err(|e| {
        FerryError::io(
            format!("renaming {} to {}", tmp.display(), path.display()),
            &e,
        )
    })?;
    drop(f);
    Ok(())
}

/// The temporary file to write `name` through: `.NAME.tmp`, locked (flock) while in use. A run
/// killed mid-write leaves it unlocked, and the next write of `name` takes it over, so it never
/// stays (a name with the pid, as before, left one file per kill). When a live writer holds
/// it, a name of this process's own is used.
fn temp_file(
    dir: &std::path::Path,
    name: &str,
) -> std::io::Result<(std::fs::File, std::path::PathBuf)> {
    use std::os::unix::fs::MetadataExt;
    use std::sync::atomic::{AtomicU64, Ordering};
    let shared = dir.join(format!(".{name}.tmp"));
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&shared)?;
    if f.try_lock().is_ok() {
        // Still the file at that name, not one another writer renamed into place meanwhile.
        let same = match (f.metadata(), std::fs::metadata(&shared)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        };
        if same {
            f.set_len(0)?;
            return Ok((f, shared));
        }
    }
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let own = dir.join(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&own)?;
    Ok((f, own))
}

fn build(lua: &Lua) -> mlua::Result<Table> {
    let m = lua.create_table()?;
    m.set(
        "get",
        lua.create_function(|lua, key: String| {
            let c = ctx(lua);
            load(&c).lua_err()?;
            let v = c
                .state_values
                .borrow()
                .as_ref()
                .and_then(|m| m.get(&key).cloned());
            match v {
                Some(v) => lua.to_value(&v),
                None => Ok(Value::Nil),
            }
        })?,
    )?;
    m.set(
        "set",
        lua.create_function(|lua, (key, value): (String, Value)| {
            let c = ctx(lua);
            load(&c).lua_err()?;
            let json = to_json(lua, &value);
            let snapshot = {
                let mut slot = c.state_values.borrow_mut();
                let map = slot.get_or_insert_with(Map::new);
                if json.is_null() {
                    map.remove(&key);
                } else {
                    map.insert(key.clone(), json);
                }
                Json::Object(map.clone())
            };
            if c.would(&format!("save state '{key}'")) {
                return Ok(());
            }
            let text = serde_json::to_vec_pretty(&snapshot).unwrap_or_default();
            write_atomic(&state_file(&c), &text).lua_err()
        })?,
    )?;
    m.set(
        "dir",
        lua.create_function(|lua, ()| Ok(ctx(lua).opts.state_dir.to_string_lossy().into_owned()))?,
    )?;
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &std::path::Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_killed_writers_temp_file_is_taken_over_a_live_ones_left_alone() {
        let d = tempfile::tempdir().unwrap();
        // Left by a run killed mid-write: unlocked, half written.
        std::fs::write(d.path().join(".conf.tmp"), "half a fi").unwrap();
        write_atomic(&d.path().join("conf"), b"new").unwrap();
        assert_eq!(names(d.path()), ["conf"]);
        assert_eq!(
            std::fs::read_to_string(d.path().join("conf")).unwrap(),
            "new"
        );
        // A live writer holds the shared name: the write goes through a name of its own.
        let live = std::fs::File::create(d.path().join(".conf.tmp")).unwrap();
        live.lock().unwrap();
        write_atomic(&d.path().join("conf"), b"newer").unwrap();
        assert_eq!(names(d.path()), [".conf.tmp", "conf"]);
        assert_eq!(
            std::fs::read_to_string(d.path().join("conf")).unwrap(),
            "newer"
        );
    }
}
