//! `ferry check FILE`: syntax errors, calls to `ferry.*` names that do not exist, option keys a
//! function does not take (in literal option tables), and parameters read but never declared in
//! `ferry.params{...}`, without running anything.

use std::path::Path;
use std::process::ExitCode;

use crate::runtime::error::FerryError;
use crate::runtime::registry::FnDoc;

/// Problems found in a script's source, each `file:line: message`.
pub fn problems(display: &str, source: &str) -> Vec<String> {
    let mut out = Vec::new();
    let lua = mlua::Lua::new();
    if let Err(e) = lua
        .load(source)
        .set_name(format!("@{display}"))
        .into_function()
    {
        let fe = FerryError::from_lua_error(&e);
        out.push(fe.message.trim_start_matches("syntax error: ").to_string());
    }
    let re = regex::Regex::new(r"\bferry\.([A-Za-z_][A-Za-z0-9_]*)(?:\.([A-Za-z_][A-Za-z0-9_]*))?")
        .expect("valid regex");
    for (n, line) in source.lines().enumerate() {
        let code = line.split("--").next().unwrap_or("");
        for c in re.captures_iter(code) {
            let first = &c[1];
            let second = c.get(2).map(|m| m.as_str());
            let runbook = crate::modules::find("runbook").expect("runbook module is registered");
            if runbook.functions.iter().any(|f| f.name == first) {
                continue;
            }
            if crate::runtime::scripts::bundled_module(&format!("ferry.{first}")).is_some() {
                continue; // a bundled Lua module, `require "ferry.druid"`
            }
            match crate::modules::find(first) {
                None => out.push(format!("{display}:{}: ferry.{first} does not exist", n + 1)),
                Some(m) => {
                    if let Some(f) = second {
                        let known = m.functions.iter().any(|x| x.name == f)
                            || (matches!(m.name, "json" | "sql") && f == "null");
                        if !known {
                            out.push(format!(
                                "{display}:{}: ferry.{first}.{f} does not exist (ferry.{first} has: {})",
                                n + 1,
                                m.functions.iter().map(|x| x.name).collect::<Vec<_>>().join(", ")
                            ));
                        }
                    }
                }
            }
        }
    }
    out.extend(unknown_option_keys(display, source));
    out.extend(undeclared_params(display, source));
    out
}

/// Literal option tables given to documented functions, `ferry.exec.run{"x", timout = 5}` or
/// `ferry.store.copy(a, b, {concurency = 8})`, and to methods of handles whose class is known
/// from a literal `local s = ferry.store.open(...)` (`s:list("a/", {delimter = true})`): keys the
/// typed description does not list (the same check the binding makes at run time, found before
/// running). Tables built at run time, calls through other aliases and handles passed around are
/// not seen.
fn unknown_option_keys(display: &str, source: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let call = regex::Regex::new(
        r"\bferry\.(?:([A-Za-z_][A-Za-z0-9_]*)\.)?([A-Za-z_][A-Za-z0-9_]*)\s*([({])",
    )
    .expect("valid regex");
    // `local s = ferry.store.open(`: the handle's class, from what the function returns.
    let local = regex::Regex::new(
        r"\blocal\s+([A-Za-z_][A-Za-z0-9_]*)\s*=\s*ferry\.(?:([A-Za-z_][A-Za-z0-9_]*)\.)?([A-Za-z_][A-Za-z0-9_]*)\s*[({]",
    )
    .expect("valid regex");
    let function_of = |module: &str, name: &str| {
        crate::modules::find(module).and_then(|m| m.functions.iter().find(|f| f.name == name))
    };
    for c in call.captures_iter(source) {
        let whole = c.get(0).map_or(0, |m| m.start());
        let (module, name) = match c.get(1) {
            Some(m) => (m.as_str(), &c[2]),
            None => ("runbook", &c[2]),
        };
        let Some(f) = function_of(module, name) else {
            continue;
        };
        let fn_name = if module == "runbook" {
            format!("ferry.{name}")
        } else {
            format!("ferry.{module}.{name}")
        };
        let open = c.get(3).map_or(0, |m| m.start());
        check_call(display, source, whole, open, f, &fn_name, &mut out);
    }
    for l in local.captures_iter(source) {
        let module = l.get(2).map_or("runbook", |m| m.as_str());
        let Some(class) = function_of(module, &l[3]).and_then(|f| crate::modules::class(f.returns))
        else {
            continue;
        };
        let var = &l[1];
        let method = regex::Regex::new(&format!(
            r"\b{}\s*:\s*([A-Za-z_][A-Za-z0-9_]*)\s*([({{])",
            regex::escape(var)
        ))
        .expect("valid regex");
        let after = l.get(0).map_or(0, |m| m.end());
        // The class holds until the name is declared or assigned again (a cheap stand-in for
        // Lua's scopes: `local dst` in another function starts another range).
        let again = regex::Regex::new(&format!(
            r"\blocal\s+(?:[A-Za-z_][A-Za-z0-9_]*\s*,\s*)*{0}\b|\b{0}\s*=[^=]",
            regex::escape(var)
        ))
        .expect("valid regex");
        let until = again
            .find(&source[after..])
            .map_or(source.len(), |m| after + m.start());
        for c in method.captures_iter(&source[after..until]) {
            let whole = after + c.get(0).map_or(0, |m| m.start());
            let open = after + c.get(2).map_or(0, |m| m.start());
            match class.method(&c[1]) {
                Some(f) => {
                    let fn_name = format!("{}:{}", class.name, f.name);
                    check_call(display, source, whole, open, f, &fn_name, &mut out);
                }
                None => {
                    let line = source[..whole].matches('\n').count() + 1;
                    let names: Vec<&str> = class.methods.iter().map(|m| m.name).collect();
                    let mut message = format!(
                        "{display}:{line}: {var}:{} : {} has no method '{}'",
                        &c[1], class.name, &c[1]
                    );
                    if let Some(near) = crate::runtime::options::nearest(&c[1], &names) {
                        message.push_str(&format!(" (did you mean '{near}'?)"));
                    }
                    out.push(message);
                }
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|m| seen.insert(m.clone()));
    out
}

/// The unknown keys of the literal options table in the call of `f` whose argument list opens
/// at `open` (`(` or `{`), as `ferry check` lines.
fn check_call(
    display: &str,
    source: &str,
    whole: usize,
    open: usize,
    f: &FnDoc,
    fn_name: &str,
    out: &mut Vec<String>,
) {
    use crate::runtime::options::{is_known, nearest};
    let line_start = source[..whole].rfind('\n').map_or(0, |i| i + 1);
    if source[line_start..whole].contains("--") {
        return;
    }
    let known = f.option_keys();
    if known.is_empty() {
        return;
    }
    let Some(block) = balanced_code(&source[open..]) else {
        return;
    };
    let (table, table_at) = if block.starts_with('{') {
        (block, open)
    } else {
        // The table is the last argument, after at least the required parameters before it.
        let Some(at_opts) = f.params.iter().position(|p| p.name == "opts") else {
            return;
        };
        let index = f.params[..at_opts].iter().filter(|p| !p.optional).count();
        let args = top_level_pieces(&block[1..block.len() - 1]);
        let Some(&(last, at)) = args.last() else {
            return;
        };
        let trimmed = last.trim();
        if args.len() <= index || !trimmed.starts_with('{') || !trimmed.ends_with('}') {
            return;
        }
        (
            trimmed,
            open + 1 + at + (last.len() - last.trim_start().len()),
        )
    };
    for (piece, at) in top_level_pieces(&table[1..table.len().saturating_sub(1)]) {
        let piece = piece.trim_start();
        let key: String = piece
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let rest = piece[key.len()..].trim_start();
        if key.is_empty() || !rest.starts_with('=') || rest.starts_with("==") {
            continue;
        }
        if is_known(&key, &known) {
            continue;
        }
        let line = source[..table_at + 1 + at].matches('\n').count() + 1;
        let mut message = format!("{display}:{line}: {fn_name}: unknown option '{key}'");
        if let Some(near) = nearest(&key, &known) {
            message.push_str(&format!(" (did you mean '{near}'?)"));
        }
        out.push(message);
    }
}

/// After `ch` was read: when it opens a quoted string or a `--` comment, consumes it up to its
/// end (the closing quote or the line end) and says so.
fn skip_string_or_comment(
    ch: char,
    chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
) -> bool {
    match ch {
        '"' | '\'' => {
            while let Some((_, c)) = chars.next() {
                if c == '\\' {
                    chars.next();
                } else if c == ch || c == '\n' {
                    break;
                }
            }
            true
        }
        '-' if chars.peek().map(|p| p.1) == Some('-') => {
            for (_, c) in chars.by_ref() {
                if c == '\n' {
                    break;
                }
            }
            true
        }
        _ => false,
    }
}

/// The `(...)` or `{...}` group at the start of `s`, skipping brackets inside strings and comments.
fn balanced_code(s: &str) -> Option<&str> {
    let mut depth = 0;
    let mut chars = s.char_indices().peekable();
    while let Some((i, ch)) = chars.next() {
        match ch {
            '"' | '\'' | '-' if skip_string_or_comment(ch, &mut chars) => {}
            '(' | '{' | '[' => depth += 1,
            ')' | '}' | ']' => {
                depth -= 1;
                if depth == 0 {
                    return Some(&s[..=i]);
                }
            }
            _ => {}
        }
    }
    None
}

/// `s` cut at its top-level commas, each piece with its offset in `s`.
fn top_level_pieces(s: &str) -> Vec<(&str, usize)> {
    let mut pieces = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    let mut chars = s.char_indices().peekable();
    while let Some((i, ch)) = chars.next() {
        match ch {
            '"' | '\'' | '-' if skip_string_or_comment(ch, &mut chars) => {}
            '(' | '{' | '[' => depth += 1,
            ')' | '}' | ']' => depth -= 1,
            // `function ... end` and other blocks: their commas are not the table's.
            c if c.is_ascii_alphabetic() || c == '_' => {
                let word_end = s[i..]
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .map_or(s.len(), |n| i + n);
                let before = s[..i].chars().next_back();
                if !before.is_some_and(|b| b.is_ascii_alphanumeric() || b == '_' || b == '.') {
                    match &s[i..word_end] {
                        "function" | "if" | "do" | "repeat" => depth += 1,
                        "end" | "until" => depth -= 1,
                        _ => {}
                    }
                }
                while chars.peek().is_some_and(|p| p.0 < word_end) {
                    chars.next();
                }
            }
            ',' | ';' if depth == 0 => {
                pieces.push((&s[start..i], start));
                start = i + 1;
            }
            _ => {}
        }
    }
    pieces.push((&s[start..], start));
    pieces
}

/// `local p = ferry.params{ {name = "a", ...}, ... }` followed by `p.b`: b is not declared (reading
/// it would fail at run time). Only literal declaration tables are understood; a script that
/// builds its list at run time is not checked.
fn undeclared_params(display: &str, source: &str) -> Vec<String> {
    let mut out = Vec::new();
    let decl = regex::Regex::new(r"local\s+([A-Za-z_][A-Za-z0-9_]*)\s*=\s*ferry\.params\s*(\{)")
        .expect("valid regex");
    let Some(c) = decl.captures(source) else {
        return out;
    };
    let var = c[1].to_string();
    let open = c.get(2).map(|m| m.start()).unwrap_or(0);
    let Some(block) = balanced(&source[open..]) else {
        return out;
    };
    let name =
        regex::Regex::new(r#"\bname\s*=\s*["']([A-Za-z_][A-Za-z0-9_]*)["']"#).expect("valid regex");
    let declared: std::collections::HashSet<String> = name
        .captures_iter(block)
        .map(|c| c[1].to_string())
        .collect();
    let after = open + block.len();
    let uses = regex::Regex::new(&format!(
        r"(?:^|[^A-Za-z0-9_.:]){var}\.([A-Za-z_][A-Za-z0-9_]*)"
    ))
    .expect("valid regex");
    let mut offset = 0;
    for (n, line) in source.lines().enumerate() {
        let start = offset;
        offset += line.len() + 1;
        if start < after {
            continue;
        }
        let code = line.split("--").next().unwrap_or("");
        for c in uses.captures_iter(code) {
            let used = &c[1];
            if !declared.contains(used) {
                out.push(format!(
                    "{display}:{}: parameter '{used}' is read but not declared in ferry.params",
                    n + 1
                ));
            }
        }
    }
    out
}

/// The text of a `{...}` block at the start of `s` (braces inside strings and comments are not
/// told apart; declaration tables do not contain stray braces).
fn balanced(s: &str) -> Option<&str> {
    let mut depth = 0;
    for (i, ch) in s.char_indices() {
        match ch {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(&s[..=i]);
                }
            }
            _ => {}
        }
    }
    None
}

pub fn check(file: &Path) -> ExitCode {
    let source = match std::fs::read_to_string(file) {
        Ok(s) => s,
        Err(e) => {
            return super::fail(&FerryError::usage(format!(
                "cannot read {}: {e}",
                file.display()
            )));
        }
    };
    let found = problems(&file.to_string_lossy(), &source);
    if found.is_empty() {
        println!("{}: ok", file.display());
        ExitCode::SUCCESS
    } else {
        for p in &found {
            eprintln!("{p}");
        }
        eprintln!("{} problem(s) in {}", found.len(), file.display());
        ExitCode::from(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misspelled_option_keys_of_functions_and_handle_methods() {
        let src = "local s = ferry.store.open(\"memory://x\", {creat = true})\n\
                   for e in s:list(\"a/\", {delimter = true}) do end\n\
                   s:put_zip(\"d\", \"k\", {level = 1})\n\
                   local db = ferry.sql.connect(\"postgres://h/d\")\n\
                   db:query(\"select 1\", {}, {arary = true})\n\
                   s:lsit(\"a/\")\n\
                   ferry.exec.run{\"true\", timout = 5}\n\
                   local s = other()\n\
                   s:whatever({x = 1})\n";
        let found = unknown_option_keys("p.lua", src);
        assert_eq!(
            found,
            vec![
                "p.lua:1: ferry.store.open: unknown option 'creat' (did you mean 'create'?)",
                "p.lua:7: ferry.exec.run: unknown option 'timout' (did you mean 'timeout'?)",
                "p.lua:2: ferry.store.Store:list: unknown option 'delimter' (did you mean 'delimiter'?)",
                "p.lua:6: s:lsit : ferry.store.Store has no method 'lsit' (did you mean 'list'?)",
                "p.lua:5: ferry.sql.Db:query: unknown option 'arary' (did you mean 'array'?)",
            ]
        );
    }
}
