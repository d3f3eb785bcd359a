//! Tab completion for the REPL: globals and keywords, fields of tables reached by a dotted path
//! (`ferry.store.op` -> `ferry.store.open`), and methods of handles (`s:he` -> `s:head`).
//!
//! Handles are userdata whose metatables Lua cannot read, so their members are found by asking
//! the handle for every word the API reference mentions (method and field names all appear there).

use std::collections::BTreeSet;

use mlua::{Lua, Value};

use crate::runtime::registry;

const KEYWORDS: &[&str] = &[
    "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if", "in",
    "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while",
];

/// Where the word being completed starts in `line`, and the full replacements for it.
pub fn candidates(lua: &Lua, line: &str, pos: usize) -> (usize, Vec<String>) {
    let pos = pos.min(line.len());
    let before = &line[..pos];
    let start = before
        .char_indices()
        .rev()
        .take_while(|(_, c)| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':'))
        .last()
        .map(|(i, _)| i)
        .unwrap_or(pos);
    let word = &before[start..];
    if !word.contains(['.', ':'])
        && let Some(keys) = option_keys_at(&before[..start])
    {
        let out: Vec<String> = keys
            .into_iter()
            .filter(|k| k.starts_with(word))
            .map(|k| format!("{k} = "))
            .collect();
        if !out.is_empty() {
            return (start, out);
        }
    }
    if word.is_empty() || word.starts_with(|c: char| c.is_ascii_digit()) {
        return (pos, Vec::new());
    }
    let cut = word.rfind(['.', ':']);
    let (base, sep, partial) = match cut {
        Some(i) => (&word[..i], &word[i..=i], &word[i + 1..]),
        None => ("", "", word),
    };
    let mut names = BTreeSet::new();
    if base.is_empty() {
        for pair in lua.globals().pairs::<Value, Value>().flatten() {
            if let Value::String(k) = pair.0 {
                names.insert(k.to_string_lossy());
            }
        }
        names.extend(KEYWORDS.iter().map(|k| k.to_string()));
    } else {
        let Some(value) = resolve(lua, base) else {
            return (pos, Vec::new());
        };
        names = members(lua, &value, sep == ":");
    }
    let prefix = &word[..word.len() - partial.len()];
    let out = names
        .into_iter()
        .filter(|n| n.starts_with(partial) && !n.starts_with("__"))
        .map(|n| format!("{prefix}{n}"))
        .collect();
    (start, out)
}

/// The value of a dotted path of names (`ferry.store`), without calling anything but `__index`.
fn resolve(lua: &Lua, path: &str) -> Option<Value> {
    let mut parts = path.split(['.', ':']);
    let mut cur: Value = lua.globals().get(parts.next()?).ok()?;
    for p in parts {
        cur = match &cur {
            Value::Table(t) => t.get(p).ok()?,
            Value::UserData(u) => index_userdata(lua, u, p)?,
            _ => return None,
        };
        if cur.is_nil() {
            return None;
        }
    }
    Some(cur)
}

/// `u[name]`, or None when indexing raises or gives nil. The indexing function is compiled once
/// per Lua state (a completion may probe a handle with hundreds of names).
fn index_userdata(lua: &Lua, u: &mlua::AnyUserData, name: &str) -> Option<Value> {
    struct Indexer(mlua::Function);
    if lua.app_data_ref::<Indexer>().is_none() {
        let f = lua
            .load("local u, k = ...; local ok, v = pcall(function() return u[k] end); if ok then return v end")
            .into_function()
            .ok()?;
        lua.set_app_data(Indexer(f));
    }
    let get = lua.app_data_ref::<Indexer>()?.0.clone();
    get.call::<Value>((u.clone(), name))
        .ok()
        .filter(|v| !v.is_nil())
}

/// When `before` ends inside the options table of a documented function or handle method
/// (`ferry.exec.run{"true", ` or `s:list("a/", {`), that function's option keys (`aws_*`-style
/// prefixes left out). A method's class is not known from the variable, so `x:done{` offers the
/// keys of every class's `done`.
fn option_keys_at(before: &str) -> Option<Vec<&'static str>> {
    // The innermost `{` still open (strings are not looked into: a completion guess).
    let mut depth = 0i32;
    let mut open = None;
    for (i, c) in before.char_indices().rev() {
        match c {
            '}' => depth += 1,
            '{' if depth == 0 => {
                open = Some(i);
                break;
            }
            '{' => depth -= 1,
            _ => {}
        }
    }
    let head = before[..open?].trim_end();
    // `f{` directly, or `f(a, b, {` with the table as an argument.
    let callee = match head.strip_suffix(['(', ',']) {
        None => head,
        Some(_) => {
            let paren = head.rfind('(')?;
            head[..paren].trim_end()
        }
    };
    let name_start = callee
        .char_indices()
        .rev()
        .take_while(|(_, c)| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':'))
        .last()
        .map(|(i, _)| i)?;
    let name = &callee[name_start..];
    let docs: Vec<&registry::FnDoc> = if let Some((_, method)) = name.split_once(':') {
        crate::modules::classes()
            .filter_map(|c| c.method(method))
            .collect()
    } else {
        let path = name.strip_prefix("ferry.")?;
        let (module, f) = path.split_once('.').unwrap_or(("runbook", path));
        crate::modules::find(module)
            .and_then(|m| m.functions.iter().find(|x| x.name == f))
            .into_iter()
            .collect()
    };
    let keys: BTreeSet<&'static str> = docs
        .iter()
        .flat_map(|f| f.options.iter().map(|o| o.key))
        .filter(|k| !k.ends_with('*'))
        .collect();
    (!keys.is_empty()).then(|| keys.into_iter().collect())
}

/// Names reachable on a value: table keys (only functions after `:`), or a handle's members.
fn members(lua: &Lua, value: &Value, methods_only: bool) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    match value {
        Value::Table(t) => {
            for (k, v) in t.pairs::<Value, Value>().flatten() {
                if let Value::String(k) = k
                    && (!methods_only || matches!(v, Value::Function(_)))
                {
                    out.insert(k.to_string_lossy());
                }
            }
        }
        Value::UserData(u) => {
            for word in vocabulary() {
                if let Some(v) = index_userdata(lua, u, word)
                    && (!methods_only || matches!(v, Value::Function(_)))
                {
                    out.insert(word.clone());
                }
            }
        }
        _ => {}
    }
    out
}

/// Every identifier the API reference uses: method and field names of handles are among them.
/// Built once: the reference is static.
fn vocabulary() -> &'static BTreeSet<String> {
    static WORDS: std::sync::OnceLock<BTreeSet<String>> = std::sync::OnceLock::new();
    WORDS.get_or_init(words_of_the_reference)
}

fn words_of_the_reference() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for c in crate::modules::classes() {
        out.extend(c.methods.iter().map(|m| m.name.to_string()));
        out.extend(c.fields.iter().map(|(name, _)| name.to_string()));
    }
    for m in crate::modules::modules() {
        for f in m.functions {
            for text in [f.signature, f.doc] {
                for w in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                    if w.len() > 1 && w.starts_with(|c: char| c.is_ascii_lowercase()) {
                        out.insert(w.to_string());
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lua() -> Lua {
        let lua = Lua::new();
        lua.load("ferry = {store = {open = function() end, copy = function() end}, state = {}}; x = {alpha = 1, beta = function() end}")
            .exec()
            .unwrap();
        lua
    }

    #[test]
    fn globals_paths_and_methods() {
        let lua = lua();
        assert_eq!(
            candidates(&lua, "ferry.st", 8),
            (0, vec!["ferry.state".into(), "ferry.store".into()])
        );
        assert_eq!(
            candidates(&lua, "print(ferry.store.op", 20),
            (6, vec!["ferry.store.open".into()])
        );
        assert_eq!(candidates(&lua, "x:", 2), (0, vec!["x:beta".into()]));
        assert_eq!(
            candidates(&lua, "x.", 2),
            (0, vec!["x.alpha".into(), "x.beta".into()])
        );
        let (_, kw) = candidates(&lua, "loc", 3);
        assert_eq!(kw, vec!["local".to_string()]);
        assert!(candidates(&lua, "nosuch.a", 8).1.is_empty());
        assert!(candidates(&lua, "1.5", 3).1.is_empty());
    }

    #[test]
    fn option_keys_inside_the_table_of_a_known_function() {
        let lua = lua();
        let line = "ferry.exec.run{\"true\", tim";
        assert_eq!(
            candidates(&lua, line, line.len()),
            (23, vec!["timeout = ".into()])
        );
        let line = "ferry.store.copy(a, b, {concurrency = 4, ret";
        assert_eq!(candidates(&lua, line, line.len()).1, vec!["retries = "]);
        let line = "for e in s:list(\"a/\", {del";
        assert_eq!(candidates(&lua, line, line.len()).1, vec!["delimiter = "]);
        let line = "db:query(\"select 1\", {}, {";
        assert_eq!(candidates(&lua, line, line.len()).1, vec!["array = "]);
        // Outside a known function's table: names as before.
        assert!(candidates(&lua, "x = {al", 7).1.is_empty());
    }
}
