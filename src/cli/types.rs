//! LuaLS type annotations for the whole API (`ferry eject --types DIR`), generated from the same
//! registry as the bindings and `ferry doc`: a `---@meta` file declaring every `ferry.*` function
//! with its parameters (optional ones marked), its doc and example, one stub per module so
//! `require "ferry.store"` resolves, and a `.luarc.json` pointing the language server at them.

use std::fmt::Write as _;
use std::path::Path;

use crate::runtime::error::{FerryError, Result};
use crate::runtime::registry::{ClassDoc, FnDoc, ModuleDef, Opt};

/// `---@class` of a function's options table, one `---@field` per typed option. Returns the
/// class name, or None for a function without options.
fn options_class(out: &mut String, path: &str, f: &FnDoc) -> Option<String> {
    if f.options.is_empty() {
        return None;
    }
    let class = format!("{path}.opts");
    let _ = writeln!(out, "---@class {class}");
    let prefixed: Vec<&Opt> = f.options.iter().filter(|o| o.key.ends_with('*')).collect();
    if !prefixed.is_empty() {
        let keys: Vec<&str> = prefixed.iter().map(|o| o.key).collect();
        let mut types: Vec<&str> = Vec::new();
        for t in prefixed.iter().flat_map(|o| o.ty.split('|')) {
            if !types.contains(&t) {
                types.push(t);
            }
        }
        let _ = writeln!(
            out,
            "---@field [string] {} # {}",
            types.join("|"),
            keys.join(", ")
        );
    }
    // `ferry.exec.run{"sh", "-c", ..., timeout = 5}`: the command line is the array part.
    if let Some(call) = f.signature.split("->").next()
        && call.contains("{argv...")
    {
        let _ = writeln!(out, "---@field [integer] string # argv");
    }
    for o in f.options.iter().filter(|o| !o.key.ends_with('*')) {
        let key = if o.required {
            o.key.to_string()
        } else {
            format!("{}?", o.key)
        };
        let mut comment: Vec<String> = Vec::new();
        if let Some(d) = o.default {
            comment.push(format!("default {d}"));
        }
        if !o.doc.is_empty() {
            comment.push(o.doc.to_string());
        }
        if comment.is_empty() {
            let _ = writeln!(out, "---@field {key} {}", o.ty);
        } else {
            let _ = writeln!(out, "---@field {key} {} # {}", o.ty, comment.join("; "));
        }
    }
    let _ = writeln!(out);
    Some(class)
}

fn doc_comment(out: &mut String, text: &str) {
    for line in text.lines() {
        let _ = writeln!(out, "---{line}");
    }
}

/// The stub of one function (`path` = `ferry.store.open`) or method (`path` =
/// `ferry.store.Store:list`, its options class `ferry.store.Store.list.opts`).
fn function_stub(out: &mut String, path: &str, f: &FnDoc) {
    let class = options_class(out, &path.replace(':', "."), f);
    doc_comment(out, f.doc);
    let _ = writeln!(out, "---");
    let _ = writeln!(out, "---`{}`", f.signature);
    if let Some(ex) = f.example {
        let _ = writeln!(out, "---\n---Example:\n---```lua");
        doc_comment(out, ex);
        let _ = writeln!(out, "---```");
    }
    let mut names = Vec::new();
    for p in f.params {
        let optional = if p.optional { "?" } else { "" };
        let ty = match &class {
            Some(class) if p.name == "opts" && p.ty == "table" => class.as_str(),
            _ => p.ty,
        };
        let doc = if p.doc.is_empty() {
            String::new()
        } else {
            format!(" # {}", p.doc)
        };
        if p.name == "..." {
            let _ = writeln!(out, "---@param ... {ty}{doc}");
        } else {
            let _ = writeln!(out, "---@param {}{optional} {ty}{doc}", p.name);
        }
        names.push(p.name);
    }
    if !f.returns.is_empty() {
        let _ = writeln!(out, "---@return {}", f.returns);
    }
    let declared = match path.split_once(':') {
        Some((class, method)) => format!("{}:{method}", local_name(class)),
        None => path.to_string(),
    };
    let _ = writeln!(out, "function {declared}({}) end\n", names.join(", "));
}

/// The `---@class` of a handle with its fields, then one stub per method.
fn class_stub(out: &mut String, c: &ClassDoc) {
    doc_comment(out, c.doc);
    let _ = writeln!(out, "---@class {}", c.name);
    for (name, ty) in c.fields {
        let _ = writeln!(out, "---@field {name} {ty}");
    }
    if c.methods.is_empty() {
        // A table a function returns (a report): fields only.
        let _ = writeln!(out);
        return;
    }
    let _ = writeln!(out, "local {} = {{}}\n", local_name(c.name));
    for m in c.methods {
        function_stub(out, &format!("{}:{}", c.name, m.name), m);
    }
}

/// `ferry.store.Store` is declared through a local `ferry_store_Store` table (LuaLS attaches
/// the methods of `function T:m()` to the class of `T`).
fn local_name(class: &str) -> String {
    class.replace('.', "_")
}

/// The path of a module function in Lua: `ferry.step` for the runbook module.
fn path_of(m: &ModuleDef, f: &FnDoc) -> String {
    if m.name == "runbook" {
        format!("ferry.{}", f.name)
    } else {
        format!("ferry.{}.{}", m.name, f.name)
    }
}

/// The annotation file for every registered module.
pub fn annotations() -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "---@meta\n-- LuaLS annotations for the ferry {} Lua API, generated by `ferry eject --types`; do not edit.\n",
        env!("CARGO_PKG_VERSION")
    );
    let _ = writeln!(out, "---@class ferry\nferry = {{}}\n");
    for m in crate::modules::modules() {
        if m.name != "runbook" {
            let _ = writeln!(
                out,
                "---{}\n---@class ferry.{}\nferry.{} = {{}}\n",
                m.summary, m.name, m.name
            );
        }
        for c in m.constants {
            doc_comment(&mut out, c.doc);
            let _ = writeln!(
                out,
                "---@type {}\nferry.{}.{} = nil\n",
                c.ty, m.name, c.name
            );
        }
        for f in m.functions {
            function_stub(&mut out, &path_of(m, f), f);
        }
        for c in m.classes {
            class_stub(&mut out, c);
        }
    }
    out
}

/// Writes `DIR/types/ferry.d.lua`, `DIR/types/ferry/<module>.lua` and `DIR/.luarc.json`.
pub fn write(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    let types = dir.join("types");
    let mut files = vec![(types.join("ferry.d.lua"), annotations())];
    for m in crate::modules::modules() {
        if m.name != "runbook" {
            files.push((
                types.join("ferry").join(format!("{}.lua", m.name)),
                format!("---@meta\nreturn ferry.{}\n", m.name),
            ));
        }
    }
    let luarc = dir.join(".luarc.json");
    if !luarc.exists() {
        files.push((
            luarc,
            "{\n  \"runtime.version\": \"Lua 5.4\",\n  \"workspace.library\": [\"types\"],\n  \
             \"diagnostics.globals\": [\"ferry\"]\n}\n"
                .to_string(),
        ));
    }
    let mut written = Vec::new();
    for (path, text) in files {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| FerryError::io(format!("creating {}", parent.display()), &e))?;
        }
        std::fs::write(&path, text)
            .map_err(|e| FerryError::io(format!("writing {}", path.display()), &e))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_become_a_class_with_typed_fields() {
        let f = crate::modules::find("csv")
            .and_then(|m| m.functions.iter().find(|f| f.name == "decode"))
            .unwrap();
        let mut out = String::new();
        let class = options_class(&mut out, "ferry.csv.decode", f);
        assert_eq!(class.as_deref(), Some("ferry.csv.decode.opts"));
        assert!(out.contains("---@class ferry.csv.decode.opts\n"), "{out}");
        assert!(
            out.contains("---@field header? boolean # default true"),
            "{out}"
        );
        let open = crate::modules::find("store")
            .and_then(|m| m.functions.iter().find(|f| f.name == "open"))
            .unwrap();
        let mut out = String::new();
        options_class(&mut out, "ferry.store.open", open);
        assert!(
            out.contains("---@field [string] string|number|boolean # aws_*, azure_*, google_*\n"),
            "{out}"
        );
    }

    #[test]
    fn handle_classes_list_their_methods_with_typed_params() {
        let text = annotations();
        assert!(
            text.contains("---@return ferry.store.Store\nfunction ferry.store.open(url, opts) end"),
            "open returns the class"
        );
        assert!(text.contains("---@class ferry.store.Store\n---@field url string\n"));
        assert!(text.contains(
            "---@class ferry.store.Store.list.opts\n---@field delimiter? boolean # default false; one level only"
        ));
        assert!(text.contains(
            "---@param prefix? string\n---@param opts? ferry.store.Store.list.opts\n\
             ---@return fun(): ferry.store.Entry?\nfunction ferry_store_Store:list(prefix, opts) end"
        ));
        assert!(text.contains(
            "---@param sql string\n---@param params? (string|number|boolean|lightuserdata)[] # values of the ? placeholders, in order; ferry.sql.null for NULL\n---@param opts? ferry.sql.Db.query.opts\n"
        ));
        for c in crate::modules::classes() {
            for m in c.methods {
                let local = local_name(c.name);
                assert!(
                    text.contains(&format!("function {local}:{}(", m.name)),
                    "{}:{} missing",
                    c.name,
                    m.name
                );
            }
        }
    }

    #[test]
    fn every_documented_function_is_declared_and_the_file_is_lua() {
        let text = annotations();
        for m in crate::modules::modules() {
            for f in m.functions {
                let path = path_of(m, f);
                assert!(
                    text.contains(&format!("function {path}(")),
                    "{path} missing"
                );
            }
        }
        let lua = mlua::Lua::new();
        lua.load(&text)
            .into_function()
            .expect("annotations parse as Lua");
    }

    /// Report tables and the exec command line come out as classes with fields.
    #[test]
    fn result_classes_have_their_fields() {
        let text = annotations();
        assert!(text.contains(
            "---@class ferry.store.CopyReport\n---@field copied integer\n---@field skipped integer\n"
        ));
        assert!(text.contains("---@return ferry.store.CopyReport\nfunction ferry.store.copy("));
        assert!(text.contains("---@class ferry.sql.CopyTableReport\n---@field rows integer\n"));
        assert!(text.contains("---@class ferry.exec.Result\n---@field code integer\n"));
        assert!(text.contains("---@type lightuserdata\nferry.sql.null = nil\n"));
        assert!(
            text.contains("---@class ferry.exec.run.opts\n---@field [integer] string # argv\n")
        );
        assert!(text.contains(
            "---@field shard? {index: integer, count: integer} # copy only this shard's keys"
        ));
        // A required option is declared without `?`, so the language server flags its absence.
        assert!(text.contains("---@field table string # the source table\n"));
        assert!(text.contains("---@field check fun(): any, any? # returns a truthy value"));
    }

    /// Every type the description names is a LuaLS builtin, a literal, or a class the stubs
    /// declare: a renamed class or a typo (`ferry.store.Stor`) fails here.
    #[test]
    fn every_named_type_is_declared() {
        let text = annotations();
        let declared: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("---@class "))
            .collect();
        let builtin = [
            "any",
            "nil",
            "boolean",
            "string",
            "number",
            "integer",
            "table",
            "function",
            "fun",
            "lightuserdata",
            "ferry",
        ];
        let mut types: Vec<(String, &str)> = Vec::new();
        let mut add = |what: String, ty: &'static str| types.push((what, ty));
        for m in crate::modules::modules() {
            for f in m.functions {
                for p in f.params {
                    add(format!("{}.{} {}", m.name, f.name, p.name), p.ty);
                }
                for o in f.options {
                    add(format!("{}.{} {}", m.name, f.name, o.key), o.ty);
                }
                add(format!("{}.{} returns", m.name, f.name), f.returns);
            }
        }
        for c in crate::modules::classes() {
            for (name, ty) in c.fields {
                add(format!("{} {name}", c.name), ty);
            }
            for f in c.methods {
                for p in f.params {
                    add(format!("{}:{} {}", c.name, f.name, p.name), p.ty);
                }
                for o in f.options {
                    add(format!("{}:{} {}", c.name, f.name, o.key), o.ty);
                }
                add(format!("{}:{} returns", c.name, f.name), f.returns);
            }
        }
        for (what, ty) in types {
            // Names outside string literals: identifiers with dots, not field names (`key:`).
            let mut in_string = false;
            let unquoted: String = ty
                .chars()
                .map(|c| {
                    if c == '"' {
                        in_string = !in_string;
                        ' '
                    } else if in_string {
                        ' '
                    } else {
                        c
                    }
                })
                .collect();
            let mut rest = unquoted.as_str();
            while let Some(start) = rest.find(|c: char| c.is_ascii_alphabetic() || c == '_') {
                let word_len = rest[start..]
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
                    .unwrap_or(rest.len() - start);
                let word = &rest[start..start + word_len];
                let after = rest[start + word_len..].trim_start();
                rest = &rest[start + word_len..];
                if after.starts_with(':') && !word.contains('.') {
                    continue; // a field or parameter name
                }
                assert!(
                    builtin.contains(&word) || declared.contains(&word),
                    "{what}: type {ty} names '{word}', which no ---@class declares"
                );
            }
        }
    }

    /// The types of a few options say what their binding reads (a cheap guard against drift for
    /// the shapes most often passed: a limiter or rate, a shard, a list of names).
    #[test]
    fn typed_options_match_their_bindings() {
        let opt = |module: &str, f: &str, key: &str| -> &'static str {
            crate::modules::find(module)
                .and_then(|m| m.functions.iter().find(|x| x.name == f))
                .and_then(|f| f.options.iter().find(|o| o.key == key))
                .map(|o| o.ty)
                .unwrap_or_else(|| panic!("{module}.{f} has no option {key}"))
        };
        let lua = mlua::Lua::new();
        // throttle: what limiter_from takes
        assert!(opt("store", "copy", "throttle").contains("ferry.throttle.Limiter"));
        for ok in ["1000", "\"50MiB\"", "\"off\""] {
            let v: mlua::Value = lua.load(ok).eval().unwrap();
            crate::throttle::lua::limiter_from(&v).unwrap();
        }
        // shard: what shard_option reads
        assert_eq!(
            opt("sql", "copy_table", "shard"),
            "{index: integer, count: integer}"
        );
        let t: mlua::Table = lua.load("{shard = {index = 1, count = 2}}").eval().unwrap();
        assert_eq!(
            crate::runtime::shard::shard_option(&t).unwrap(),
            Some((1, 2))
        );
    }
}
