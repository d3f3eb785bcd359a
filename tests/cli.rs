//! The command line around `run`: list, show, help, eject, check, doc, demo.

use crate::common;

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
fn check_reports_option_keys_a_function_does_not_take() {
    let ws = Workspace::new();
    ws.write(
        "opts.lua",
        "local s = ferry.store.open('memory://a', {create = true})
         ferry.step('copy', function()
  local n, why = 1, 2
           ferry.store.copy(s, s, {prefix = 'a', concurency = 4,
    map = function(k) local a, b = k, 1 return a end})
         end, {alway = true})
         ferry.http.request{url = 'http://x/', hedaers = {}}
         -- ferry.exec.run{'true', timout = 1}
",
    );
    ws.ferry()
        .args(["check", "opts.lua"])
        .run()
        .code(1)
        .stderr_has("opts.lua:4: ferry.store.copy: unknown option 'concurency' (did you mean 'concurrency'?)")
        .stderr_has("opts.lua:6: ferry.step: unknown option 'alway' (did you mean 'always'?)")
        .stderr_has("opts.lua:7: ferry.http.request: unknown option 'hedaers' (did you mean 'headers'?)")
        .stderr_has("3 problem(s)")
        .stderr_lacks("'why'")
        .stderr_lacks("'b'")
        .stderr_lacks("timout");
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
        "---@param opts? ferry.store.open.opts",
        // Option tables are classes with typed fields, from the documented signature.
        "---@class ferry.store.copy.opts\n---@field prefix? string # copy the objects listed",
        "---@field concurrency? integer # default 64; objects copied at once\n",
        "---@field map? fun(key: string): string? # the destination key",
        "---@param src ferry.store.Store # where the objects are read\n---@param dst ferry.store.Store # where they are written\n---@param opts? ferry.store.copy.opts\n",
        "---@return ferry.store.CopyReport\n",
        "---@field timeout? number # default 60; seconds for each attempt\n",
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

#[test]
fn help_of_a_subcommand_and_a_procedure_file_named_like_one() {
    // `ferry help run` is `ferry run --help`, not "no procedure named run".
    let out = Ferry::new().args(["help", "run"]).run();
    out.code(0)
        .stdout_has("--dry-run")
        .stdout_has("--log-json")
        .stdout_has("ferry run");
    assert!(
        !out.stderr.contains("no bundled procedure"),
        "{}",
        out.stderr
    );
    Ferry::new()
        .args(["help", "status"])
        .run()
        .code(0)
        .stdout_has("--state")
        .stdout_has("--json");
    Ferry::new()
        .args(["help", "list"])
        .run()
        .code(0)
        .stdout_has("--json");
    // A script called run.lua is still described through its path.
    let ws = Workspace::new();
    ws.write(
        "run.lua",
        "--- Runs things.\nlocal p = ferry.params{{name = \"target\", type = \"string\", required = true, doc = \"where\"}}\n\
         ferry.step(\"go\", \"Go there\", function() end)\n",
    );
    ws.ferry()
        .args(["help", "./run.lua"])
        .run()
        .code(0)
        .stdout_has("Parameters:")
        .stdout_has("target")
        .stdout_has("Go there");
}

#[test]
fn list_and_status_as_json() {
    let out = Ferry::new().args(["list", "--json"]).run();
    out.code(0);
    let list: serde_json::Value = serde_json::from_str(&out.stdout).expect("list --json is JSON");
    let items = list.as_array().expect("an array");
    let tree = items
        .iter()
        .find(|i| i["name"] == "tree-copy")
        .expect("tree-copy listed");
    assert!(!tree["summary"].as_str().unwrap().is_empty(), "{tree}");
    assert!(tree["description"].is_string(), "{tree}");
    assert_eq!(
        items.len(),
        Ferry::new().args(["list"]).run().stdout.lines().count()
    );

    // A finished run and a failed one, read back by status --json.
    let ws = Workspace::new();
    ws.write(
        "two.lua",
        "ferry.step(\"a\", \"A\", function() return {items = 3} end)\n\
         ferry.step(\"b\", \"B\", function() if os.getenv(\"FAIL_B\") then error(\"boom\") end end)\n",
    );
    ws.ferry()
        .procedure("two.lua")
        .flag("--yes")
        .state("st")
        .env("FAIL_B", "1")
        .run()
        .code(1);
    let out = ws.ferry().args(["status", "--state", "st", "--json"]).run();
    out.code(0);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("status --json is JSON");
    assert_eq!(v["state"], "st");
    let j = &v["journals"][0];
    assert_eq!(j["kind"], "run", "{v}");
    assert_eq!(j["status"], "unfinished", "{v}");
    assert_eq!(j["unfinished_step"], "b", "{v}");
    assert_eq!(j["steps"][0]["step"], "a");
    assert_eq!(j["steps"][0]["status"], "ok");
    assert_eq!(j["steps"][1]["status"], "failed", "{v}");
    ws.ferry()
        .procedure("two.lua")
        .flag("--yes")
        .state("st")
        .run()
        .code(0);
    let out = ws.ferry().args(["status", "--state", "st", "--json"]).run();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["journals"][0]["status"], "finished", "{v}");
    assert_eq!(v["journals"][0]["unfinished_step"], serde_json::Value::Null);
    assert_eq!(v["shard_sets"], serde_json::json!([]));
}

#[test]
fn log_json_dash_is_stdout() {
    let ws = Workspace::new();
    ws.write(
        "hello.lua",
        "ferry.step(\"s\", \"S\", function() ferry.log.info(\"hello\", {n = 1}) end)\n",
    );
    let out = ws
        .ferry()
        .args(["run", "hello.lua", "--yes", "--log-json", "-"])
        .run();
    out.code(0);
    assert!(!ws.join("-").exists(), "a file named '-' was written");
    let events: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect();
    let names: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    assert_eq!(names.first(), Some(&"run_started"), "{names:?}");
    assert_eq!(names.last(), Some(&"run_finished"), "{names:?}");
    assert!(
        events.iter().any(|e| e["event"] == "log"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("hello"))),
        "{}",
        out.stdout
    );
}

#[test]
fn rust_log_sets_the_stderr_filter() {
    let ws = Workspace::new();
    ws.write(
        "dbg.lua",
        "ferry.step(\"s\", \"S\", function() ferry.log.debug(\"a debug line\"); ferry.log.info(\"an info line\") end)\n",
    );
    ws.ferry()
        .args(["run", "dbg.lua", "--yes", "--fresh"])
        .run()
        .code(0)
        .stderr_lacks("a debug line");
    ws.ferry()
        .args(["run", "dbg.lua", "--yes", "--fresh"])
        .env("RUST_LOG", "debug")
        .run()
        .code(0)
        .stderr_has("a debug line")
        .stderr_has("DEBUG");
    // Narrower than the default: warnings only, for ferry's own lines too.
    ws.ferry()
        .args(["run", "dbg.lua", "--yes", "--fresh"])
        .env("RUST_LOG", "warn")
        .run()
        .code(0)
        .stderr_lacks("an info line");
    ws.ferry()
        .args(["run", "dbg.lua", "--yes", "--fresh"])
        .env("RUST_LOG", "ferry=[")
        .run()
        .code(0)
        .stderr_has("RUST_LOG")
        .stderr_has("not a valid filter")
        .stderr_has("an info line");
}

#[test]
fn completions_man_page_and_version() {
    let out = Ferry::new().args(["completions", "bash"]).run();
    out.code(0);
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("ferry.bash");
    std::fs::write(&script, &out.stdout).unwrap();
    let bash = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!("source {} && complete -p ferry", script.display()))
        .output()
        .expect("bash runs");
    let said = String::from_utf8_lossy(&bash.stdout);
    assert!(
        bash.status.success() && said.contains("ferry"),
        "{said} {}",
        String::from_utf8_lossy(&bash.stderr)
    );
    for shell in ["zsh", "fish"] {
        Ferry::new()
            .args(["completions", shell])
            .run()
            .code(0)
            .stdout_has("status");
    }
    let man = Ferry::new().args(["man"]).run();
    man.code(0);
    // After clap_mangen's apostrophe preamble (.ie/.el), the title line.
    let first = man
        .stdout
        .lines()
        .find(|l| !l.starts_with(".ie") && !l.starts_with(".el"))
        .unwrap_or("");
    assert!(first.starts_with(".TH ferry 1"), "{}", man.stdout);
    let sub = Ferry::new().args(["man", "run"]).run();
    sub.code(0)
        .stdout_has(".TH ferry-run 1")
        .stdout_has("dry\\-run");
    // man itself reads the page, when it is installed.
    if std::process::Command::new("man")
        .arg("--version")
        .output()
        .is_ok()
    {
        let page = dir.path().join("ferry.1");
        std::fs::write(&page, &man.stdout).unwrap();
        let shown = std::process::Command::new("man")
            .arg("-l")
            .arg(&page)
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&shown.stdout);
        assert!(
            text.contains("NAME") && text.contains("SUBCOMMANDS"),
            "{text}"
        );
    } else {
        println!("SKIPPED: completions_man_page_and_version: man not installed, roff not rendered");
    }
    assert!(man.stdout.contains("completions"));

    let out = Ferry::new().args(["--version"]).run();
    out.code(0).stdout_has(env!("CARGO_PKG_VERSION"));
    let in_git = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success());
    match in_git {
        Some(o) => {
            let head = String::from_utf8_lossy(&o.stdout).trim().to_string();
            assert!(head.chars().all(|c| c.is_ascii_hexdigit()), "{head}");
            // The binary may be a commit or two behind HEAD only if built before it; tests
            // build first, so it is HEAD.
            out.stdout_has(&format!("(commit {head})"));
        }
        None => {
            println!("SKIPPED: completions_man_page_and_version: commit check, not a git checkout");
            out.stdout_has("(commit unknown)");
        }
    }
}

#[test]
fn misspelled_option_keys_are_refused_with_the_script_line() {
    let ws = Workspace::new();
    ws.write(
        "typo.lua",
        "ferry.step(\"s\", \"S\", function()\n  ferry.exec.run{\"true\", timout = 5}\nend)\n",
    );
    ws.ferry()
        .args(["run", "typo.lua", "--yes"])
        .run()
        .stderr_has("ferry.exec.run: unknown option 'timout' (did you mean 'timeout'?)")
        .stderr_has("typo.lua:2");
    ws.write(
        "poll.lua",
        "ferry.step(\"s\", \"S\", function()\n\n  ferry.task.poll{evry = 1, check = function() return true end}\nend)\n",
    );
    ws.ferry()
        .args(["run", "poll.lua", "--yes"])
        .run()
        .stderr_has("ferry.task.poll: unknown option 'evry' (did you mean 'every'?)")
        .stderr_has("poll.lua:3");
    ws.write(
        "par.lua",
        "ferry.task.parallel({1}, {concurency = 2}, function() end)\n",
    );
    ws.ferry()
        .args(["run", "par.lua", "--yes"])
        .run()
        .stderr_has("unknown option 'concurency' (did you mean 'concurrency'?)")
        .stderr_has("par.lua:1");
    // Far from every known key: no guess, the list of options instead.
    ws.write("far.lua", "ferry.exec.run{\"true\", colour = \"red\"}\n");
    ws.ferry()
        .args(["run", "far.lua", "--yes"])
        .run()
        .stderr_has("unknown option 'colour'")
        .stderr_lacks("did you mean")
        .stderr_has("timeout, stdin, env, cwd, check, read_only");
    // Correct keys still run.
    ws.write(
        "ok.lua",
        "local r = ferry.exec.run{\"sh\", \"-c\", \"echo hi\", timeout = 5, read_only = true}\nassert(r.stdout == \"hi\\n\")\n\
         assert(ferry.task.poll{every = 0.01, timeout = 5, check = function() return 7 end} == 7)\n",
    );
    ws.ferry().args(["run", "ok.lua", "--yes"]).run().code(0);
}
