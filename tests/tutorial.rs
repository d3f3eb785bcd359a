//! docs/tutorial.md works as written: its script is saved as the page says, and every `ferry`
//! command of its `sh` blocks runs in a workspace with some export files (`$PWD` is the
//! workspace). The REPL line is left to tests/repl_pty.rs.

use crate::common;

use common::Workspace;

fn tutorial() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/tutorial.md")).unwrap()
}

/// The fenced blocks of one language, in order.
fn blocks(text: &str, lang: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    for line in text.lines() {
        match (&mut cur, line.trim_start()) {
            (None, l) if l == format!("```{lang}") => cur = Some(String::new()),
            (Some(_), "```") => out.push(cur.take().unwrap()),
            (Some(b), _) => {
                b.push_str(line);
                b.push('\n');
            }
            _ => {}
        }
    }
    out
}

#[test]
fn the_tutorial_runs_as_written() {
    let text = tutorial();
    let ws = Workspace::new();
    for i in 1..=3 {
        ws.write(
            &format!("exports/day-{i}.csv"),
            &format!("id,value\n{i},{}\n", i * 10),
        );
    }
    ws.write("exports/partial.tmp", "still being written");
    let script = blocks(&text, "lua")
        .into_iter()
        .find(|b| b.starts_with("-- Archive the export files"))
        .expect("the whole script is on the page");
    ws.write("archive-exports.lua", &script);

    let pwd = ws.path().to_str().unwrap().to_string();
    let commands: Vec<String> = blocks(&text, "sh")
        .iter()
        .flat_map(|b| b.lines().map(str::to_string).collect::<Vec<_>>())
        .filter(|l| l.starts_with("ferry ") && !l.starts_with("ferry repl"))
        .collect();
    assert!(commands.len() >= 5, "{commands:?}");
    let mut runs = 0;
    for cmd in &commands {
        let args: Vec<String> = cmd
            .split_whitespace()
            .skip(1)
            .map(|a| a.replace("$PWD", &pwd))
            .collect();
        let out = ws.ferry().args(&args).run();
        out.code(0);
        if args.contains(&"--dry-run".to_string()) {
            assert!(out.stderr.contains("would create folder"), "{}", out.stderr);
            assert!(
                !ws.join("archive").exists(),
                "the dry run created the archive"
            );
        }
        if args[0] == "run" && args.contains(&"--yes".to_string()) {
            runs += 1;
            if runs == 1 {
                assert!(out.stderr.contains("copied=3"), "{}", out.stderr);
            } else {
                assert!(out.stderr.contains("already done"), "{}", out.stderr);
            }
        }
    }
    assert_eq!(runs, 2);
    for i in 1..=3 {
        assert_eq!(
            ws.read(&format!("archive/day-{i}.csv")),
            format!("id,value\n{i},{}\n", i * 10)
        );
    }
    assert!(!ws.join("archive/partial.tmp").exists());

    // What the page says about a confirmation without a terminal: exit 3, nothing copied.
    let fresh = Workspace::new();
    fresh.write("exports/a.csv", "x");
    fresh.write("archive-exports.lua", &script);
    fresh
        .ferry()
        .procedure("./archive-exports.lua")
        .param("exports", "exports")
        .param(
            "archive",
            format!("file://{}/archive", fresh.path().display()),
        )
        .run()
        .code(3)
        .stderr_has("no terminal");
    assert!(!fresh.join("archive/a.csv").exists());
}

#[test]
fn troubleshooting_explains_every_error_kind() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/troubleshooting.md"
    ))
    .unwrap();
    for kind in ferry::runtime::error::ALL_KINDS {
        let heading = format!("## `{}`", kind.as_str());
        let at = text
            .find(&heading)
            .unwrap_or_else(|| panic!("docs/troubleshooting.md has no section {heading}"));
        let body = text[at + heading.len()..].split("\n## ").next().unwrap();
        assert!(
            body.split_whitespace().count() > 15,
            "the {heading} section says too little"
        );
    }
}
