//! `ferry check FILE`: syntax errors, and calls to `ferry.*` names that do not exist, without
//! running anything.

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
    out
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
