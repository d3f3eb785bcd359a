//! Bundled procedures (`scripts/`) and shared Lua modules (`lua/`), compiled into the binary, and
//! the `require` search order: modules beside the running script first, then bundled ones.

use std::path::{Path, PathBuf};

use include_dir::{Dir, include_dir};
use mlua::{Lua, Table, Value};
use sha2::{Digest, Sha256};

use super::context::ScriptInfo;
use super::error::{ErrorKind, FerryError, Result};

static SCRIPTS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/scripts");
static LUA_LIB: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/lua");

/// A bundled procedure: its name and source.
pub struct Bundled {
    pub name: String,
    pub source: &'static str,
}

pub fn bundled() -> Vec<Bundled> {
    let mut out: Vec<Bundled> = SCRIPTS
        .files()
        .filter(|f| f.path().extension().is_some_and(|e| e == "lua"))
        .filter_map(|f| {
            Some(Bundled {
                name: f.path().file_stem()?.to_str()?.to_string(),
                source: f.contents_utf8()?,
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

pub fn find_bundled(name: &str) -> Option<Bundled> {
    bundled().into_iter().find(|b| b.name == name)
}

/// A bundled Lua module by module name (`ferry.seafile` → `lua/ferry/seafile.lua`).
pub fn bundled_module(name: &str) -> Option<(String, &'static str)> {
    let rel = format!("{}.lua", name.replace('.', "/"));
    LUA_LIB
        .get_file(&rel)
        .and_then(|f| f.contents_utf8())
        .map(|s| (rel, s))
}

pub fn checksum(source: &str) -> String {
    hex::encode(&Sha256::digest(source.as_bytes())[..16])
}

/// The first comment block of a script: its first line is the summary, the rest the description.
pub fn description(source: &str) -> (String, String) {
    let mut lines = Vec::new();
    for line in source.lines() {
        let t = line.trim_start();
        if let Some(rest) = t.strip_prefix("--") {
            let rest = rest.trim_start_matches('-');
            lines.push(rest.strip_prefix(' ').unwrap_or(rest).to_string());
        } else if t.is_empty() && lines.is_empty() {
            continue;
        } else {
            break;
        }
    }
    let summary = lines.first().cloned().unwrap_or_default();
    let rest = lines.iter().skip(1).cloned().collect::<Vec<_>>().join("\n");
    (summary, rest.trim().to_string())
}

/// Resolves `NAME_OR_FILE`: an existing file path (or anything that looks like one) runs from
/// disk; otherwise a bundled procedure name.
pub fn resolve(name_or_file: &str) -> Result<ScriptInfo> {
    let looks_like_path = name_or_file.contains('/')
        || name_or_file.ends_with(".lua")
        || Path::new(name_or_file).is_file();
    if looks_like_path {
        let path = PathBuf::from(name_or_file);
        let source = std::fs::read_to_string(&path).map_err(|e| {
            FerryError::usage(format!("cannot read script {name_or_file}: {e}"))
                .hint("give a bundled procedure name (see `ferry list`) or a path to a .lua file")
        })?;
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("script")
            .to_string();
        let dir = path.parent().map(|p| {
            if p.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                p.to_path_buf()
            }
        });
        return Ok(ScriptInfo {
            name,
            display: name_or_file.to_string(),
            dir,
            checksum: checksum(&source),
            source,
            bundled: false,
        });
    }
    let b = find_bundled(name_or_file).ok_or_else(|| {
        let names: Vec<String> = bundled().into_iter().map(|b| b.name).collect();
        FerryError::new(
            ErrorKind::Usage,
            format!("no bundled procedure named '{name_or_file}' and no such file"),
        )
        .hint(format!("bundled procedures: {}", names.join(", ")))
    })?;
    Ok(ScriptInfo {
        display: format!("scripts/{}.lua", b.name),
        name: b.name,
        dir: None,
        checksum: checksum(b.source),
        source: b.source.to_string(),
        bundled: true,
    })
}

/// Sets `package.path` to the script's folder only, drops C modules, and appends a searcher for
/// bundled modules. `package.preload` (ferry's native modules) is still searched first.
pub fn install_require(lua: &Lua, script_dir: Option<&Path>) -> mlua::Result<()> {
    let package: Table = lua.globals().get("package")?;
    let dir = script_dir
        .map(|d| d.to_string_lossy().into_owned())
        .unwrap_or_else(|| ".".into());
    package.set("path", format!("{dir}/?.lua;{dir}/?/init.lua"))?;
    package.set("cpath", "")?;
    let searchers: Table = package.get("searchers")?;
    let bundled_searcher =
        lua.create_function(|lua, name: String| match bundled_module(&name) {
            Some((rel, src)) => {
                let f = lua
                    .load(src)
                    .set_name(format!("@lua/{rel}"))
                    .into_function()?;
                Ok((
                    Value::Function(f),
                    Value::String(lua.create_string(format!("bundled lua/{rel}"))?),
                ))
            }
            None => Ok((
                Value::String(lua.create_string(format!("no bundled module '{name}'"))?),
                Value::Nil,
            )),
        })?;
    // Keep [1] preload and [2] the Lua path; replace the C searchers with the bundled one.
    searchers.raw_set(3, bundled_searcher)?;
    searchers.raw_set(4, Value::Nil)?;
    Ok(())
}

/// Bundled modules a source requires, transitively (for `ferry eject`).
pub fn required_bundled_modules(source: &str) -> Vec<String> {
    let re = regex::Regex::new(r#"require\s*\(?\s*["']([A-Za-z0-9_.]+)["']"#).expect("valid regex");
    let mut out: Vec<String> = Vec::new();
    let mut queue: Vec<String> = re.captures_iter(source).map(|c| c[1].to_string()).collect();
    while let Some(name) = queue.pop() {
        if out.contains(&name) {
            continue;
        }
        if let Some((_, src)) = bundled_module(&name) {
            out.push(name);
            queue.extend(re.captures_iter(src).map(|c| c[1].to_string()));
        }
    }
    out.sort();
    out
}
