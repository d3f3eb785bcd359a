//! The LuaLS stubs (`ferry eject --types`) under a type checker: every API example and the
//! bundled scripts and helpers are checked against them with emmylua_check (EmmyLua's analyzer,
//! which reads LuaLS annotations; tests/setup/emmylua.sh says why not lua-language-server). A
//! wrong parameter or return type in the registry, a missing class or an undeclared module value
//! shows up as a diagnostic on code that is right. Skipped, saying why, without the checker.

use std::path::{Path, PathBuf};

use crate::common::Workspace;

fn checker() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("FERRY_EMMYLUA_CHECK") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    let home = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin"));
    std::env::split_paths(&path)
        .chain(home)
        .map(|d| d.join("emmylua_check"))
        .find(|p| p.is_file())
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dst);
        } else if e.path().extension().is_some_and(|x| x == "lua") {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

/// Diagnostics that on an example (code written against the API, and run by lua_api) can only
/// mean the stubs describe the API wrongly.
const TYPE_ERRORS: &[&str] = &[
    "param-type-mismatch",
    "missing-parameter",
    "redundant-parameter",
    "redundant-return-value",
    "missing-return-value",
    "assign-type-mismatch",
    "return-type-mismatch",
    "call-non-callable",
    "undefined-global",
    "undefined-doc-name",
    "undefined-field",
];

#[test]
fn the_stubs_type_check_the_examples_and_the_bundled_scripts() {
    let Some(check) = checker() else {
        println!(
            "SKIPPED: emmylua_check is not installed (FERRY_INSTALL_EMMYLUA=1 bash tests/setup/emmylua.sh installs it)"
        );
        return;
    };
    let ws = Workspace::new();
    ws.ferry().args(["eject", "--types", "site"]).run().code(0);
    let mut examples = 0;
    for m in ferry::modules::modules() {
        for f in m.functions {
            if let Some(ex) = f.example {
                ws.write(&format!("site/examples/{}_{}.lua", m.name, f.name), ex);
                examples += 1;
            }
        }
    }
    for c in ferry::modules::classes() {
        for f in c.methods {
            if let Some(ex) = f.example {
                let name = format!("{}_{}", c.name, f.name).replace('.', "_");
                ws.write(&format!("site/examples/{name}.lua"), ex);
                examples += 1;
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    copy_tree(&root.join("scripts"), &ws.join("site/scripts"));
    copy_tree(&root.join("lua"), &ws.join("site/lua"));
    let report = ws.join("diagnostics.json");
    let out = std::process::Command::new(&check)
        .arg(ws.join("site"))
        .args(["-f", "json", "--output"])
        .arg(&report)
        .output()
        .expect("running emmylua_check");
    let text = std::fs::read_to_string(&report).unwrap_or_else(|_| {
        panic!(
            "emmylua_check wrote no report:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let files: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut problems = Vec::new();
    let mut seen = 0;
    for file in files.as_array().unwrap() {
        let path = file["file"].as_str().unwrap();
        let rel = path.split("/site/").last().unwrap_or(path);
        let lines: Vec<String> = std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect();
        for d in file["diagnostics"].as_array().unwrap() {
            seen += 1;
            let code = d["code"].as_str().unwrap_or("");
            let message = d["message"].as_str().unwrap_or("");
            let line_no = d["range"]["start"]["line"].as_u64().unwrap_or(0) as usize;
            let line = lines.get(line_no).map(String::as_str).unwrap_or("");
            // An API value the stubs do not declare (`ferry.sql.null`), anywhere.
            let undeclared_api = code == "undefined-field"
                && message.split('`').nth(1).is_some_and(|field| {
                    line.contains(&format!(".{field}")) && line.contains("ferry.")
                })
                && line
                    .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
                    .any(|w| {
                        w.starts_with("ferry.")
                            && message
                                .split('`')
                                .nth(1)
                                .is_some_and(|f| w.ends_with(&format!(".{f}")))
                    });
            let in_example = rel.starts_with("examples/");
            // `err.kind` of a pcall: Lua types a caught error as a string.
            let pcall_error = code == "undefined-field" && line.contains("err.");
            if undeclared_api || (in_example && TYPE_ERRORS.contains(&code) && !pcall_error) {
                problems.push(format!(
                    "{rel}:{}: {code}: {message}\n    {}",
                    line_no + 1,
                    line.trim()
                ));
            }
        }
    }
    println!(
        "{examples} examples and the bundled scripts checked, {seen} diagnostics, {} about the API",
        problems.len()
    );
    assert!(examples >= 90, "only {examples} examples");
    assert!(
        problems.is_empty(),
        "the stubs disagree with code that is right:\n{}",
        problems.join("\n")
    );
}
