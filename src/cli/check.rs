//! `ferry check FILE`: syntax errors, calls to `ferry.*` names that do not exist, and
//! parameters read but never declared in `ferry.params{...}`, without running anything.

use std::path::Path;
use std::process::ExitCode;

use crate::runtime::error::FerryError;
use crate::runtime::registry;

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
            let runbook = registry::find("runbook").expect("runbook module is registered");
            if runbook.functions.iter().any(|f| f.name == first) {
                continue;
            }
            if crate::runtime::scripts::bundled_module(&format!("ferry.{first}")).is_some() {
                continue; // a bundled Lua module, `require "ferry.druid"`
            }
            match registry::find(first) {
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
    out.extend(undeclared_params(display, source));
    out
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
