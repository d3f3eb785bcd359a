//! Option tables of the Lua API: unknown keys are refused with the function's name, the key, the
//! nearest known key ("did you mean") and the list of known keys, so `exec.run{"true", timout = 5}`
//! fails at the call instead of running without the timeout.
//!
//! The known keys are the typed `options` of the function's [`FnDoc`] (or of the handle method's,
//! in its [`ClassDoc`]), the same description `ferry doc`, the LuaLS stubs, `ferry check` and REPL
//! completion read, so the reference and the check cannot drift apart. [`keys_of`] reads the keys
//! back out of the human signature line; the registry test uses it to keep that line in step.

use mlua::{Table, Value};

use super::error::{ErrorKind, FerryError};
use super::registry::{ClassDoc, FnDoc, ModuleDef};

/// The option keys of a table-call signature: `f{argv..., timeout, check = true} -> x` gives
/// `["timeout", "check"]` (positional `name...` pieces are left out). Alternatives share a piece
/// (`json | body = ...` gives both), `aws_*` stands for every key with that prefix, and the
/// first `{` before `->` opens the options (what the function returns is not read).
pub fn keys_of(signature: &str) -> Vec<&str> {
    options_of(signature).into_iter().map(|(k, _)| k).collect()
}

/// [`keys_of`] with each key's documented default (`check = true` gives `("check", Some("true"))`;
/// of alternatives only the last has the text after `=`).
pub fn options_of(signature: &str) -> Vec<(&str, Option<&str>)> {
    let call = signature.split("->").next().unwrap_or(signature);
    let Some(open) = call.find('{') else {
        return Vec::new();
    };
    let mut depth = 0i32;
    let mut end = call.len();
    for (i, c) in call[open..].char_indices() {
        match c {
            '{' | '(' | '[' => depth += 1,
            '}' | ')' | ']' => {
                depth -= 1;
                if depth == 0 {
                    end = open + i;
                    break;
                }
            }
            _ => {}
        }
    }
    let inner = &call[open + 1..end];
    let (mut depth, mut start, mut in_string) = (0i32, 0usize, false);
    let mut pieces = Vec::new();
    for (i, c) in inner.char_indices() {
        match c {
            '"' => in_string = !in_string,
            _ if in_string => {}
            '{' | '(' | '[' => depth += 1,
            '}' | ')' | ']' => depth -= 1,
            ',' if depth == 0 => {
                pieces.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    pieces.push(&inner[start..]);
    let mut options = Vec::new();
    for piece in pieces {
        // `json | body | form = {...}`: the names are before the first `=`.
        let (names, default) = match piece.split_once('=') {
            Some((n, d)) => (n, Some(d.trim())),
            None => (piece, None),
        };
        let alternatives: Vec<&str> = names.split('|').collect();
        for (i, alternative) in alternatives.iter().enumerate() {
            let alternative = alternative.trim();
            let name_len = alternative
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '*'))
                .unwrap_or(alternative.len());
            let name = &alternative[..name_len];
            if name.is_empty() || alternative[name_len..].trim_start().starts_with("...") {
                continue;
            }
            let last = i + 1 == alternatives.len();
            options.push((name, default.filter(|_| last)));
        }
    }
    options
}

/// Whether `key` is one of `known`, where `aws_*` admits every key starting with `aws_`.
pub fn is_known(key: &str, known: &[&str]) -> bool {
    known.iter().any(|k| match k.strip_suffix('*') {
        Some(prefix) => key.starts_with(prefix),
        None => *k == key,
    })
}

/// Edit distance counting a swap of two neighbouring characters as one edit (`brust` is one
/// from `burst`), as typing slips are.
fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// The known key nearest to `key`, when it is near enough to be a misspelling.
pub fn nearest<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    let lower = key.to_ascii_lowercase();
    known
        .iter()
        .map(|k| (distance(&lower, k), *k))
        .filter(|(d, k)| *d <= (k.len() / 3).clamp(1, 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Refuses any string key of `t` that is not in `known` (integer keys are the positional part and
/// are left to the caller). `fn_name` is how the error names the function (`ferry.exec.run`).
pub fn check_keys(t: &Table, known: &[&str], fn_name: &str) -> mlua::Result<()> {
    for pair in t.pairs::<Value, Value>() {
        let (k, _) = pair?;
        let key = match &k {
            Value::Integer(_) => continue,
            Value::String(s) => s.to_string_lossy(),
            other => format!("[{}]", other.type_name()),
        };
        if is_known(&key, known) {
            continue;
        }
        return Err(unknown(&key, known, fn_name).into());
    }
    Ok(())
}

/// The error for an unknown option `key` of `fn_name`: the nearest known key and the full list.
pub fn unknown(key: &str, known: &[&str], fn_name: &str) -> FerryError {
    let mut message = format!("{fn_name}: unknown option '{key}'");
    if let Some(near) = nearest(key, known) {
        message.push_str(&format!(" (did you mean '{near}'?)"));
    }
    FerryError::new(ErrorKind::InvalidInput, message)
        .hint(format!("options of {fn_name}: {}", known.join(", ")))
}

/// The option keys of `module`'s function `name`, from its typed description (empty when the
/// function is not documented, which the registry test rules out for every checked function).
pub fn documented(module: &ModuleDef, name: &str) -> Vec<&'static str> {
    module
        .functions
        .iter()
        .find(|f| f.name == name)
        .map(FnDoc::option_keys)
        .unwrap_or_default()
}

/// [`check_documented`] for an optional trailing options table (`f(x [, {a, b}])`).
pub fn check_optional(t: Option<&Table>, module: &ModuleDef, name: &str) -> mlua::Result<()> {
    match t {
        Some(t) => check_documented(t, module, name),
        None => Ok(()),
    }
}

/// [`check_keys`] with the typed option keys of `module`'s function `name`.
pub fn check_documented(t: &Table, module: &ModuleDef, name: &str) -> mlua::Result<()> {
    let doc: Option<&FnDoc> = module.functions.iter().find(|f| f.name == name);
    let Some(doc) = doc else {
        return Err(FerryError::new(
            ErrorKind::Internal,
            format!("ferry.{}.{name} is not documented", module.name),
        )
        .into());
    };
    // The runbook module's functions live on `ferry` itself (`ferry.step`).
    let path = if module.name == "runbook" {
        format!("ferry.{name}")
    } else {
        format!("ferry.{}.{name}", module.name)
    };
    check_keys(t, &doc.option_keys(), &path)
}

/// [`check_keys`] for the options table of a handle method, `store:list(prefix, {delimter =
/// true})`: the keys come from the method's entry in `class`, and the error names
/// `ferry.store.Store:list`.
pub fn check_method(t: Option<&Table>, class: &ClassDoc, method: &str) -> mlua::Result<()> {
    let Some(t) = t else { return Ok(()) };
    let Some(doc) = class.method(method) else {
        return Err(FerryError::new(
            ErrorKind::Internal,
            format!("{}:{method} is not documented", class.name),
        )
        .into());
    };
    check_keys(t, &doc.option_keys(), &format!("{}:{method}", class.name))
}

/// A size option: a number of bytes, or a size string (`"64MiB"`, `"1.5GB"`, see
/// [`crate::runtime::params::parse_size`]); nil is None.
pub fn size_opt(t: &Table, key: &str) -> mlua::Result<Option<u64>> {
    Ok(match t.get::<Value>(key)? {
        Value::Nil => None,
        Value::Integer(i) => Some(i.max(0) as u64),
        Value::Number(n) => Some(n.max(0.0) as u64),
        Value::String(s) => Some(
            super::params::parse_size(&s.to_str()?)
                .map_err(|m| FerryError::new(ErrorKind::InvalidInput, format!("{key}: {m}")))?,
        ),
        other => {
            return Err(FerryError::new(
                ErrorKind::InvalidInput,
                format!("{key}: expected a size, got {}", other.type_name()),
            )
            .into());
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_from_signatures() {
        assert_eq!(
            keys_of(
                "ferry.exec.run{argv..., timeout, stdin, env, cwd, check = true, read_only = false} -> {code, stdout, stderr}"
            ),
            vec!["timeout", "stdin", "env", "cwd", "check", "read_only"]
        );
        assert_eq!(
            keys_of(
                "ferry.task.poll{check, every = 5, timeout = 600, backoff = 1, max_every, describe, transient}"
            ),
            vec![
                "check",
                "every",
                "timeout",
                "backoff",
                "max_every",
                "describe",
                "transient"
            ]
        );
        assert_eq!(
            keys_of("f{title, unit = \"items\"|\"bytes\", opts = {a, b}}"),
            vec!["title", "unit", "opts"]
        );
        assert!(keys_of("ferry.fs.read(path)").is_empty());
        assert_eq!(
            options_of("ferry.csv.decode(text [, {header = true, delimiter = \",\"}]) -> rows"),
            vec![("header", Some("true")), ("delimiter", Some("\",\""))]
        );
        assert!(keys_of("ferry.ini.decode(text) -> {section = {key = value}}").is_empty());
        assert_eq!(
            keys_of("r{url, json | body | object = {store, key}, format = \"a\" | \"b\", aws_*}"),
            vec!["url", "json", "body", "object", "format", "aws_*"]
        );
    }

    /// The human signature line and the typed options say the same, for every function and
    /// handle method (the keys of `ferry.params` are those of one declaration, inside the list).
    #[test]
    fn signatures_and_typed_options_agree() {
        use std::collections::BTreeSet;
        let mut docs: Vec<(String, &FnDoc)> = Vec::new();
        for m in crate::modules::modules() {
            for f in m.functions {
                docs.push((format!("{}.{}", m.name, f.name), f));
            }
        }
        for c in crate::modules::classes() {
            for f in c.methods {
                docs.push((format!("{}:{}", c.name, f.name), f));
            }
        }
        for (path, f) in docs {
            let text = if path == "runbook.params" {
                &f.signature[f.signature.find('{').unwrap() + 1..]
            } else {
                f.signature
            };
            let from_text: BTreeSet<&str> = keys_of(text).into_iter().collect();
            let typed: BTreeSet<&str> = f.option_keys().into_iter().collect();
            // `ferry.http.get(url [, opts])` says `opts` and takes request's options.
            let by_reference = from_text.is_empty() && f.signature.contains("opts");
            if !by_reference {
                assert_eq!(
                    from_text, typed,
                    "{path}: signature and typed options differ"
                );
            }
            assert!(
                f.params
                    .iter()
                    .any(|p| p.name == "opts" || p.ty.ends_with(".opts[]"))
                    || f.options.is_empty(),
                "{path}: options without an options parameter"
            );
        }
    }

    /// Every option has its line of doc (shown by `ferry doc`, docs/api and the LuaLS stubs), and
    /// every handle method an example (run by tests/lua_api.rs).
    #[test]
    fn every_option_is_documented_and_every_method_has_an_example() {
        let mut missing = Vec::new();
        for m in crate::modules::modules() {
            for f in m.functions {
                for o in f.options {
                    if o.doc.is_empty() {
                        missing.push(format!("{}.{} {}", m.name, f.name, o.key));
                    }
                }
            }
        }
        for c in crate::modules::classes() {
            for f in c.methods {
                for o in f.options {
                    if o.doc.is_empty() {
                        missing.push(format!("{}:{} {}", c.name, f.name, o.key));
                    }
                }
                if f.example.is_none() {
                    missing.push(format!("{}:{} (example)", c.name, f.name));
                }
            }
        }
        assert!(missing.is_empty(), "undocumented: {missing:?}");
    }

    #[test]
    fn near_misses() {
        let known = ["timeout", "stdin", "env", "cwd", "check", "read_only"];
        assert_eq!(nearest("timout", &known), Some("timeout"));
        assert_eq!(nearest("readonly", &known), Some("read_only"));
        assert_eq!(nearest("Timeout", &known), Some("timeout"));
        assert_eq!(nearest("colour", &known), None);
        assert_eq!(nearest("evry", &["every", "timeout"]), Some("every"));
        assert_eq!(nearest("brust", &["rate", "burst"]), Some("burst"));
    }

    #[test]
    fn unknown_keys_are_refused_and_positional_ones_kept() {
        let lua = mlua::Lua::new();
        let t: Table = lua.load(r#"{"true", "x", timout = 5}"#).eval().unwrap();
        let e = check_keys(&t, &["timeout", "cwd"], "ferry.exec.run").unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("ferry.exec.run: unknown option 'timout' (did you mean 'timeout'?)"),
            "{text}"
        );
        let ok: Table = lua.load(r#"{"true", timeout = 5}"#).eval().unwrap();
        check_keys(&ok, &["timeout"], "f").unwrap();
        let prefixed: Table = lua.load(r#"{aws_imdsv1_fallback = true}"#).eval().unwrap();
        check_keys(&prefixed, &["region", "aws_*"], "f").unwrap();
    }
}
