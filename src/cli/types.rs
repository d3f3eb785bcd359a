//! LuaLS type annotations for the whole API (`ferry eject --types DIR`), generated from the same
//! registry as the bindings and `ferry doc`: a `---@meta` file declaring every `ferry.*` function
//! with its parameters (optional ones marked), its doc and example, one stub per module so
//! `require "ferry.store"` resolves, and a `.luarc.json` pointing the language server at them.

use std::fmt::Write as _;
use std::path::Path;

use crate::runtime::error::{FerryError, Result};
use crate::runtime::registry::FnDoc;

/// One parameter of a signature.
#[derive(Debug, PartialEq)]
pub struct Param {
    pub name: String,
    pub optional: bool,
    pub ty: &'static str,
}

/// A parsed signature: `ferry.store.open(url [, opts]) -> store`.
#[derive(Debug, PartialEq)]
pub struct Signature {
    /// `ferry.store.open`
    pub path: String,
    pub params: Vec<Param>,
    /// The text after `->`.
    pub returns: Option<String>,
}

/// A LuaLS type for a parameter, from its name (the reference names parameters consistently).
fn type_of(name: &str) -> &'static str {
    match name {
        "url" | "path" | "key" | "id" | "title" | "message" | "kind" | "text" | "dir" | "from"
        | "to" | "sql" | "prefix" | "json_text" | "local_dir" | "bytes" => "string",
        "fn" | "check" => "function",
        "seconds" | "n" => "number",
        "opts" | "t" | "items" | "rows" | "context" | "params" => "table",
        "..." => "any",
        _ => "any",
    }
}

/// Parses the signature text of a [`FnDoc`]. Table-call forms (`run{argv, timeout}`) become one
/// `opts` table parameter.
pub fn parse(sig: &str) -> Signature {
    let (call, returns) = match sig.split_once("->") {
        Some((c, r)) => (c.trim(), Some(r.trim().to_string())),
        None => (sig.trim(), None),
    };
    let open = call.find(['(', '{']).unwrap_or(call.len());
    let path = call[..open].trim().to_string();
    let mut params = Vec::new();
    if call[open..].starts_with('{') {
        params.push(Param {
            name: "opts".into(),
            optional: false,
            ty: "table",
        });
        return Signature {
            path,
            params,
            returns,
        };
    }
    let inner = call
        .get(open + 1..call.rfind(')').unwrap_or(call.len()))
        .unwrap_or("");
    // Split at top-level commas, noting how deep in `[ ]` each piece starts.
    let (mut depth, mut brackets, mut piece, mut piece_optional) =
        (0i32, 0i32, String::new(), false);
    let mut pieces = Vec::new();
    for c in inner.chars() {
        match c {
            '(' | '{' => depth += 1,
            ')' | '}' => depth -= 1,
            '[' if depth == 0 => {
                brackets += 1;
                continue;
            }
            ']' if depth == 0 => {
                brackets -= 1;
                continue;
            }
            ',' if depth == 0 => {
                pieces.push((std::mem::take(&mut piece), piece_optional));
                continue;
            }
            _ => {}
        }
        if piece.trim().is_empty() && !c.is_whitespace() {
            piece_optional = brackets > 0;
        }
        piece.push(c);
    }
    pieces.push((piece, piece_optional));
    for (text, optional) in pieces {
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        let (name, ty) = if text.starts_with('{') {
            ("opts".to_string(), "table")
        } else if text == "..." || text.ends_with("...") {
            ("...".to_string(), "any")
        } else if let Some(i) = text.find('(') {
            (text[..i].trim().to_string(), "function")
        } else {
            let n: String = text
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let ty = type_of(&n);
            (n, ty)
        };
        if name.is_empty() {
            continue;
        }
        let mut unique = name.clone();
        let mut k = 2;
        while params.iter().any(|p: &Param| p.name == unique) {
            unique = format!("{name}{k}");
            k += 1;
        }
        params.push(Param {
            name: unique,
            optional,
            ty,
        });
    }
    Signature {
        path,
        params,
        returns,
    }
}

/// A LuaLS type for an option, from its documented default (`= true`, `= 64`, `= "csv" |
/// "json"`) or else its name; `any` where the name is used for different types.
fn option_type(key: &str, default: Option<&str>) -> String {
    if let Some(d) = default {
        let d = d.trim();
        if matches!(d, "true" | "false" | "bool") {
            return "boolean".into();
        }
        if d.parse::<f64>().is_ok() {
            return "number".into();
        }
        if d.starts_with('"') {
            let literals: Vec<&str> = d.split('|').map(str::trim).collect();
            if literals.len() > 1 && literals.iter().all(|l| l.starts_with('"')) {
                return literals.join("|");
            }
            return "string".into();
        }
        if d.starts_with('{') {
            return "table".into();
        }
    }
    match key {
        "url"
        | "method"
        | "prefix"
        | "dst_prefix"
        | "list_cache"
        | "title"
        | "table"
        | "dst_table"
        | "where"
        | "on_conflict"
        | "cwd"
        | "stdin"
        | "ca"
        | "ca_file"
        | "sql"
        | "column_separator"
        | "row_delimiter"
        | "endpoint"
        | "region"
        | "access_key_id"
        | "secret_access_key"
        | "session_token"
        | "sse_c_key"
        | "server_side_encryption"
        | "sse_kms_key_id"
        | "sse_customer_key_base64"
        | "acl"
        | "account"
        | "account_name"
        | "access_key"
        | "account_key"
        | "master_key"
        | "sas"
        | "sas_token"
        | "sas_key"
        | "token"
        | "bearer_token"
        | "connection_string"
        | "service_account"
        | "service_account_key"
        | "application_credentials"
        | "base_url"
        | "file_mode"
        | "name"
        | "doc"
        | "bearer"
        | "type" => "string".into(),
        "retries" | "pool_size" | "batch" | "workers" | "part_concurrency" | "total" | "burst"
        | "max_every" | "max_redirects" | "list_page_size" => "integer".into(),
        "timeout"
        | "connect_timeout"
        | "query_timeout"
        | "max_bytes"
        | "multipart_threshold"
        | "part_size"
        | "max_buffer" => "number|string".into(),
        "map" | "iter" | "transform" | "on_line" | "describe" => "function".into(),
        "query" | "headers" | "form" | "keys" | "basic" | "params" | "choices" => "table".into(),
        "allow_http"
        | "virtual_hosted_style"
        | "skip_signature"
        | "acl_from_bucket"
        | "use_emulator"
        | "anonymous"
        | "fsync"
        | "retry_non_idempotent"
        | "forward_auth"
        | "expect_continue"
        | "required"
        | "secret" => "boolean".into(),
        _ => "any".into(),
    }
}

/// `---@class` of a function's options table, one `---@field` per documented option. Returns
/// the class name, or None for a function without documented options.
fn options_class(out: &mut String, path: &str, signature: &str) -> Option<String> {
    let options = crate::runtime::options::options_of(signature);
    if options.is_empty() {
        return None;
    }
    let class = format!("{path}.opts");
    let _ = writeln!(out, "---@class {class}");
    let prefixes: Vec<&str> = options
        .iter()
        .map(|(k, _)| *k)
        .filter(|k| k.ends_with('*'))
        .collect();
    if !prefixes.is_empty() {
        let _ = writeln!(out, "---@field [string] any # {}", prefixes.join(", "));
    }
    for (key, default) in options {
        if key.ends_with('*') {
            continue;
        }
        let ty = option_type(key, default);
        match default {
            Some(d) => {
                let _ = writeln!(out, "---@field {key}? {ty} # default {d}");
            }
            None => {
                let _ = writeln!(out, "---@field {key}? {ty}");
            }
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

fn function_stub(out: &mut String, f: &FnDoc) {
    let sig = parse(f.signature);
    let class = options_class(out, &sig.path, f.signature);
    doc_comment(out, f.doc);
    let _ = writeln!(out, "---");
    let _ = writeln!(out, "---`{}`", f.signature);
    if let Some(ex) = f.example {
        let _ = writeln!(out, "---\n---Example:\n---```lua");
        doc_comment(out, ex);
        let _ = writeln!(out, "---```");
    }
    for p in &sig.params {
        if p.name == "..." {
            let _ = writeln!(out, "---@param ... any");
        } else if let (Some(class), "opts") = (&class, p.name.as_str()) {
            let _ = writeln!(
                out,
                "---@param opts{} {class}",
                if p.optional { "?" } else { "" }
            );
        } else {
            let _ = writeln!(
                out,
                "---@param {}{} {}",
                p.name,
                if p.optional { "?" } else { "" },
                p.ty
            );
        }
    }
    if let Some(r) = &sig.returns {
        let ty = match r.as_str() {
            "boolean" | "true" => "boolean",
            "bytes" | "hex" | "text" | "path" => "string",
            _ => "any",
        };
        let _ = writeln!(out, "---@return {ty} # {r}");
    }
    let args: Vec<&str> = sig.params.iter().map(|p| p.name.as_str()).collect();
    let _ = writeln!(out, "function {}({}) end\n", sig.path, args.join(", "));
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
        for f in m.functions {
            function_stub(&mut out, f);
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

    fn names(sig: &str) -> Vec<(String, bool, &'static str)> {
        parse(sig)
            .params
            .into_iter()
            .map(|p| (p.name, p.optional, p.ty))
            .collect()
    }

    #[test]
    fn signatures() {
        let s = parse("ferry.store.open(url [, opts]) -> store");
        assert_eq!(s.path, "ferry.store.open");
        assert_eq!(s.returns.as_deref(), Some("store"));
        assert_eq!(
            names("ferry.store.open(url [, opts]) -> store"),
            vec![
                ("url".into(), false, "string"),
                ("opts".into(), true, "table")
            ]
        );
        assert_eq!(
            names(
                "ferry.step(id, [title,] fn(ctx) [, {always = bool, sharded = bool}]) -> fn's results"
            ),
            vec![
                ("id".into(), false, "string"),
                ("title".into(), true, "string"),
                ("fn".into(), false, "function"),
                ("opts".into(), true, "table"),
            ]
        );
        assert_eq!(
            names("ferry.exec.run{argv..., timeout} -> {code, stdout, stderr}"),
            vec![("opts".into(), false, "table")]
        );
        assert_eq!(
            names("ferry.log.info(...)"),
            vec![("...".into(), false, "any")]
        );
        assert_eq!(
            names("ferry.fs.rename(from, to)"),
            vec![
                ("from".into(), false, "string"),
                ("to".into(), false, "string")
            ]
        );
    }

    #[test]
    fn options_become_a_class_with_typed_fields() {
        let mut out = String::new();
        let class = options_class(
            &mut out,
            "ferry.csv.decode",
            "ferry.csv.decode(text [, {header = true, delimiter = \",\", format = \"a\" | \"b\", map, aws_*}]) -> rows",
        );
        assert_eq!(class.as_deref(), Some("ferry.csv.decode.opts"));
        assert!(out.contains("---@class ferry.csv.decode.opts\n"), "{out}");
        assert!(
            out.contains("---@field header? boolean # default true\n"),
            "{out}"
        );
        assert!(
            out.contains("---@field delimiter? string # default \",\"\n"),
            "{out}"
        );
        assert!(out.contains("---@field format? \"a\"|\"b\""), "{out}");
        assert!(out.contains("---@field map? function\n"), "{out}");
        assert!(out.contains("---@field [string] any # aws_*\n"), "{out}");
        assert!(options_class(&mut String::new(), "f", "f(path) -> {a, b}").is_none());
    }

    #[test]
    fn every_documented_function_is_declared_and_the_file_is_lua() {
        let text = annotations();
        for m in crate::modules::modules() {
            for f in m.functions {
                let path = parse(f.signature).path;
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
}
