//! The command line around `run`: list, show, help, eject, check, doc, demo.

mod common;

use common::{Ferry, Workspace};

#[test]
fn list_show_and_help_describe_bundled_procedures() {
    let out = Ferry::new().args(["list"]).run();
    out.code(0).stdout_has("tree-copy");
    for line in out.stdout.lines() {
        let mut parts = line.splitn(2, "  ");
        let name = parts.next().unwrap().trim();
        let summary = parts.next().unwrap_or("").trim();
        assert!(
            !name.is_empty() && !summary.is_empty(),
            "list line without summary: {line:?}"
        );
    }
    Ferry::new()
        .args(["show", "tree-copy"])
        .run()
        .code(0)
        .stdout_has("ferry.step(\"copy\"");
    Ferry::new()
        .args(["help", "tree-copy"])
        .run()
        .code(0)
        .stdout_has("Parameters:")
        .stdout_has("source")
        .stdout_has("path, required")
        .stdout_has("concurrency")
        .stdout_has("default 8")
        .stdout_has("one of size|sha256")
        .stdout_has("Steps:")
        .stdout_has("copy")
        .stdout_has("Copy missing or changed files");
    // A reader that goes away (`ferry help X | head -1`) ends the printing quietly.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader); // closed before ferry writes a byte
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["help", "druid-deep-storage"])
        .stdout(writer)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    Ferry::new()
        .args(["run", "no-such-procedure"])
        .run()
        .code(2)
        .stderr_has("no bundled procedure named 'no-such-procedure'")
        .stderr_has("tree-copy");
}

#[test]
fn help_lists_conditional_steps_of_a_user_script() {
    let ws = Workspace::new();
    ws.write(
        "phases.lua",
        r#"-- Two phases.
local p = ferry.params{{name = "phase", type = "string", default = "initial", choices = {"initial", "final"}, doc = "which phase"}}
if p.phase == "initial" then
  ferry.step("initial-copy", "Initial copy", function() end)
else
  ferry.step("final-copy", "Final copy", function() end)
end
"#,
    );
    ws.ferry()
        .args(["help", "./phases.lua"])
        .run()
        .code(0)
        .stdout_has("Two phases.")
        .stdout_has("initial-copy")
        .stdout_has("Final copy (conditional)");
}

#[test]
fn eject_writes_an_editable_copy_that_runs() {
    let ws = Workspace::new();
    ws.ferry()
        .args(["eject", "tree-copy", "site"])
        .run()
        .code(0)
        .stdout_has("wrote");
    let script = ws.read("site/tree-copy.lua");
    assert!(script.contains("ferry.params"));
    // Refuses to overwrite edits.
    ws.ferry()
        .args(["eject", "tree-copy", "site"])
        .run()
        .code(1)
        .stderr_has("already exists");
    // Edit and run the copy.
    ws.write(
        "site/tree-copy.lua",
        &script.replace("\"Scan the source folder\"", "\"Scan (site edit)\""),
    );
    ws.write("src/a.txt", "aaa");
    ws.write("src/d/b.txt", "bbbb");
    ws.ferry()
        .args([
            "run",
            "site/tree-copy.lua",
            "-p",
            "source=src",
            "-p",
            "target=dst",
            "--yes",
        ])
        .run()
        .code(0)
        .stderr_has("Scan (site edit)");
    assert_eq!(ws.read("dst/d/b.txt"), "bbbb");
}

#[test]
fn require_finds_modules_beside_the_script_first() {
    let ws = Workspace::new();
    ws.write(
        "lib/helper.lua",
        "return {greet = function(n) return 'hello ' .. n end}\n",
    );
    ws.write(
        "main.lua",
        "package.path = package.path -- untouched\nlocal h = require 'lib.helper'\nlocal store_like = require 'ferry.json'\nassert(store_like == ferry.json)\nassert(require('ferry') == ferry)\nprint(h.greet('ferry'))\n",
    );
    ws.ferry()
        .args(["run", "./main.lua", "-q"])
        .run()
        .code(0)
        .stdout_has("hello ferry");
    ws.write("main2.lua", "require 'does.not.exist'\n");
    ws.ferry()
        .args(["run", "./main2.lua"])
        .run()
        .code(1)
        .stderr_has("module 'does.not.exist' not found");
}

#[test]
fn check_reports_syntax_errors_and_unknown_ferry_names() {
    let ws = Workspace::new();
    ws.write(
        "good.lua",
        "ferry.step('a', function() ferry.task.sleep(0) end)\n",
    );
    ws.ferry()
        .args(["check", "good.lua"])
        .run()
        .code(0)
        .stdout_has("ok");
    ws.write(
        "bad.lua",
        "ferry.step('a', function()\n  ferry.task.slep(1)\n  ferry.nosuch.x()\nend)\n",
    );
    ws.ferry()
        .args(["check", "bad.lua"])
        .run()
        .code(1)
        .stderr_has("bad.lua:2: ferry.task.slep does not exist")
        .stderr_has("bad.lua:3: ferry.nosuch does not exist");
    // Every bundled script and Lua module passes (bundled modules and ferry.sql.null are known).
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in ["scripts", "lua/ferry"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "lua") {
                ws.ferry()
                    .args(["check", p.to_str().unwrap()])
                    .run()
                    .code(0);
            }
        }
    }
    ws.write("syntax.lua", "if then\n");
    ws.ferry()
        .args(["check", "syntax.lua"])
        .run()
        .code(1)
        .stderr_has("syntax.lua:1:");
    // Parameters read but not declared.
    ws.write(
        "params.lua",
        "local p = ferry.params{\n  {name = \"source\", type = \"url\", required = true},\n}\n\
         ferry.step('a', function()\n  print(p.source, p.target)\nend)\n",
    );
    ws.ferry()
        .args(["check", "params.lua"])
        .run()
        .code(1)
        .stderr_has("params.lua:5: parameter 'target' is read but not declared in ferry.params")
        .stderr_lacks("'source'");
}

#[test]
fn eject_types_writes_luals_annotations_of_the_whole_api() {
    let ws = Workspace::new();
    ws.ferry()
        .args(["eject", "seafile-migrate", "site", "--types"])
        .run()
        .code(0)
        .stdout_has("site/types/ferry.d.lua");
    let d = ws.read("site/types/ferry.d.lua");
    assert!(d.starts_with("---@meta"));
    for decl in [
        "function ferry.store.open(url, opts) end",
        "---@param opts? table",
        "function ferry.step(id, title, fn, opts) end",
        "function ferry.sql.connect(url, opts) end",
        "---@class ferry.http",
    ] {
        assert!(d.contains(decl), "{decl} missing");
    }
    assert_eq!(
        ws.read("site/types/ferry/store.lua"),
        "---@meta\nreturn ferry.store\n"
    );
    assert!(
        ws.read("site/.luarc.json")
            .contains("\"workspace.library\": [\"types\"]")
    );
    assert!(ws.join("site/seafile-migrate.lua").exists());
    // Every name it declares exists (ferry check knows the same registry), and it is valid Lua.
    ws.ferry()
        .args(["check", "site/types/ferry.d.lua"])
        .run()
        .code(0);
    // Only the annotations, into another folder.
    ws.ferry().args(["eject", "--types", "only"]).run().code(0);
    assert!(ws.join("only/types/ferry.d.lua").exists());
    assert!(!ws.join("only/seafile-migrate.lua").exists());
    ws.ferry()
        .args(["eject"])
        .run()
        .code(2)
        .stderr_has("which bundled procedure");
}

#[test]
fn checked_in_api_docs_match_the_code() {
    let ws = Workspace::new();
    ws.ferry().args(["doc", "--write", "api"]).run().code(0);
    let checked_in = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/api");
    let mut generated: Vec<_> = std::fs::read_dir(ws.join("api"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    generated.sort();
    for name in &generated {
        let fresh = std::fs::read_to_string(ws.join("api").join(name)).unwrap();
        let old = std::fs::read_to_string(checked_in.join(name)).unwrap_or_default();
        assert!(
            fresh == old,
            "docs/api/{} is out of date: run `cargo run -- doc --write docs/api`",
            name.to_string_lossy()
        );
    }
    let on_disk = std::fs::read_dir(&checked_in).unwrap().count();
    assert_eq!(
        on_disk,
        generated.len(),
        "docs/api has pages for modules that no longer exist"
    );
    Ferry::new()
        .args(["doc", "task.parallel"])
        .run()
        .code(0)
        .stdout_has("concurrency");
    Ferry::new().args(["doc", "nosuch"]).run().code(2);
}

#[test]
fn demo_runs_a_real_seafile_migration_end_to_end() {
    let ws = Workspace::new();
    ws.ferry()
        .args(["demo", "--dir", "demo"])
        .run()
        .code(0)
        .stderr_has("Summary of seafile-migrate")
        .stderr_has("blocks_copied=")
        .stderr_has("content differs 0")
        .stderr_has("replace-conf");
    let conf = ws.read("demo/conf/seafile.conf");
    assert!(
        conf.contains("[block_backend]") && conf.contains("new-storage"),
        "{conf}"
    );
    assert!(
        conf.contains("[memcached]"),
        "other sections are kept: {conf}"
    );
    // Every object of the old storage is in the new one, byte for byte; temp files are not.
    let old = ws.join("demo/seafile-data/storage");
    let new = ws.join("demo/new-storage/storage");
    let mut n = 0;
    for dtype in ["commits", "fs", "blocks"] {
        for repo in std::fs::read_dir(old.join(dtype)).unwrap() {
            let repo = repo.unwrap().path();
            for ab in std::fs::read_dir(&repo).unwrap() {
                for f in std::fs::read_dir(ab.unwrap().path()).unwrap() {
                    let f = f.unwrap().path();
                    let rel = f.strip_prefix(&old).unwrap();
                    let name = f.file_name().unwrap().to_string_lossy().into_owned();
                    if name.len() != 38 {
                        assert!(
                            !new.join(rel).exists(),
                            "temp file {} was copied",
                            rel.display()
                        );
                        continue;
                    }
                    assert_eq!(
                        std::fs::read(&f).unwrap(),
                        std::fs::read(new.join(rel)).unwrap(),
                        "{}",
                        rel.display()
                    );
                    n += 1;
                }
            }
        }
    }
    assert!(n > 300, "{n} objects compared");
}
