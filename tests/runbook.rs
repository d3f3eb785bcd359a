//! The runbook through the real binary: steps, journal, resume, dry run, parameters, confirm,
//! errors, interruption, secrets.

use crate::common;

use common::{Workspace, json_lines};

const THREE_STEPS: &str = r#"
-- Three steps; the second needs a marker file.
local p = ferry.params{
  {name = "marker", type = "path", required = true, doc = "file step two needs"},
  {name = "token", type = "string", secret = true, doc = "an API token"},
}
ferry.step("one", "Step one", function()
  ferry.fs.write("one.log", "ran\n", {append = true})
  return {n = 1}
end)
ferry.step("two", "Step two", function()
  if not ferry.fs.exists(p.marker) then
    ferry.fail("not_found", "marker missing: " .. p.marker .. " (token " .. tostring(p.token) .. ")")
  end
  ferry.fs.write("two.log", "ran\n", {append = true})
  return {n = 2}
end)
ferry.step("three", "Step three", function()
  ferry.fs.write("three.log", "ran\n", {append = true})
  return {n = 3}
end)
"#;

#[test]
fn failing_second_step_names_it_and_resume_skips_the_first() {
    let ws = Workspace::new();
    ws.write("three.lua", THREE_STEPS);
    let first = ws
        .ferry()
        .args([
            "run",
            "./three.lua",
            "-p",
            "marker=marker",
            "-p",
            "token=s3cr3t-value",
        ])
        .run();
    first
        .code(1)
        .stderr_has("step 'two' failed")
        .stderr_has("marker missing")
        .stderr_has("./three.lua:")
        .stderr_has("resume with: ferry run ./three.lua --state .ferry/state/three -p marker=marker -p token=<secret>")
        .stderr_lacks("s3cr3t-value");
    assert_eq!(ws.read("one.log"), "ran\n");
    assert_eq!(ws.read("two.log"), "");

    ws.write("marker", "");
    let second = ws
        .ferry()
        .args([
            "run",
            "./three.lua",
            "-p",
            "marker=marker",
            "-p",
            "token=s3cr3t-value",
        ])
        .run();
    second
        .code(0)
        .stderr_has("step one: already done, skipping");
    assert_eq!(ws.read("one.log"), "ran\n", "step one must not run again");
    assert_eq!(ws.read("two.log"), "ran\n");
    assert_eq!(ws.read("three.log"), "ran\n");

    let journal = json_lines(&ws.join(".ferry/state/three/journal.jsonl"));
    let finished: Vec<&str> = journal
        .iter()
        .filter(|e| e["event"] == "step_finished")
        .map(|e| e["step"].as_str().unwrap())
        .collect();
    assert_eq!(finished, vec!["one", "two", "three"]);
    assert!(
        journal
            .iter()
            .any(|e| e["event"] == "step_failed" && e["step"] == "two")
    );
    let text = std::fs::read_to_string(ws.join(".ferry/state/three/journal.jsonl")).unwrap();
    assert!(
        !text.contains("s3cr3t-value"),
        "secret leaked into the journal"
    );
}

#[test]
fn changed_parameters_rerun_steps_and_a_changed_script_is_not_trusted() {
    let ws = Workspace::new();
    ws.write("marker", "");
    ws.write("three.lua", THREE_STEPS);
    ws.ferry()
        .args(["run", "./three.lua", "-p", "marker=marker"])
        .run()
        .code(0);
    // Same script, other parameters: steps run again.
    ws.write("marker2", "");
    ws.ferry()
        .args(["run", "./three.lua", "-p", "marker=marker2"])
        .run()
        .code(0);
    assert_eq!(ws.read("one.log"), "ran\nran\n");
    // Edited script: refused with a clear way forward.
    ws.write("three.lua", &format!("{THREE_STEPS}\n-- edited\n"));
    let out = ws
        .ferry()
        .args(["run", "./three.lua", "-p", "marker=marker2"])
        .run();
    out.code(2)
        .stderr_has("changed since step(s) one, two, three completed")
        .stderr_has("--from-step");
    assert_eq!(ws.read("one.log"), "ran\nran\n");
    // --from-step keeps earlier steps and re-runs from the named one.
    ws.ferry()
        .args([
            "run",
            "./three.lua",
            "-p",
            "marker=marker2",
            "--from-step",
            "three",
        ])
        .run()
        .code(0)
        .stderr_has("step one: already done");
    assert_eq!(ws.read("one.log"), "ran\nran\n");
    assert_eq!(ws.read("three.log"), "ran\nran\nran\n");
    // --fresh runs everything.
    ws.ferry()
        .args(["run", "./three.lua", "-p", "marker=marker2", "--fresh"])
        .run()
        .code(0);
    assert_eq!(ws.read("one.log"), "ran\nran\nran\n");
}

#[test]
fn dry_run_changes_nothing_and_says_what_it_would_do() {
    let ws = Workspace::new();
    ws.write(
        "dry.lua",
        r#"
local p = ferry.params{{name = "dir", type = "path", required = true, doc = "where"}}
ferry.step("write", "Write things", function()
  ferry.fs.mkdir(p.dir .. "/sub")
  ferry.fs.write(p.dir .. "/sub/file.txt", "hello")
  ferry.exec.run{"touch", p.dir .. "/touched"}
  local ro = ferry.exec.run{"echo", "looked", read_only = true}
  ferry.state.set("migration_id", "m-1")
  assert(ferry.dry_run())
  return {read_only_output = ro.stdout}
end)
ferry.step("gate", "Gate", function() ferry.confirm("Is the cluster stopped?") end)
"#,
    );
    let out = ws
        .ferry()
        .args(["run", "./dry.lua", "-p", "dir=out", "--dry-run"])
        .run();
    out.code(0)
        .stderr_has("would create folder out/sub")
        .stderr_has("would write 5 bytes to out/sub/file.txt")
        .stderr_has("would run `touch out/touched`")
        .stderr_has("would save state 'migration_id'")
        .stderr_has("would ask for confirmation: Is the cluster stopped?")
        .stderr_has("read_only_output=looked")
        .stderr_has("dry run, nothing changed");
    assert!(!ws.join("out").exists(), "dry run created files");
    assert!(
        !ws.join(".ferry").exists(),
        "dry run wrote a journal or state"
    );
}

#[test]
fn missing_or_bad_parameters_exit_2_before_any_step() {
    let ws = Workspace::new();
    ws.write(
        "p.lua",
        r#"
local p = ferry.params{
  {name = "source", type = "path", required = true, doc = "the folder to read"},
  {name = "workers", type = "integer", default = 4, doc = "parallel workers"},
  {name = "pause", type = "duration", default = "1m", doc = "pause between batches"},
  {name = "chunk", type = "size", default = "64MiB", doc = "chunk size"},
  {name = "mode", type = "string", default = "direct", choices = {"direct", "csv"}, doc = "how"},
  {name = "keyspaces", type = "list", doc = "keyspaces"},
  {name = "fast", type = "boolean", default = false, doc = "go fast"},
  {name = "api", type = "url", default = "https://api.example.com/v2", doc = "API"},
  {name = "ratio", type = "number", default = 0.5, doc = "a ratio"},
}
ferry.step("touch", "Touch", function() ferry.fs.write("ran", "yes") end)
print(p.workers, p.pause, p.chunk, p.mode, #p.keyspaces, p.keyspaces[2], p.fast, p.ratio)
"#,
    );
    ws.ferry()
        .args(["run", "./p.lua"])
        .run()
        .code(2)
        .stderr_has("missing required parameter 'source' (path): the folder to read");
    ws.ferry()
        .args([
            "run",
            "./p.lua",
            "-p",
            "source=x",
            "-p",
            "workers=many",
            "-p",
            "mode=zip",
            "-p",
            "pause=soon",
        ])
        .run()
        .code(2)
        .stderr_has("'many' is not an integer")
        .stderr_has("workers: parallel workers")
        .stderr_has("'zip' is not one of: direct, csv")
        .stderr_has("'soon' is not a duration");
    ws.ferry()
        .args(["run", "./p.lua", "-p", "source=x", "-p", "typo=1"])
        .run()
        .code(2)
        .stderr_has("unknown parameter 'typo'");
    assert!(
        !ws.join("ran").exists(),
        "a step ran despite bad parameters"
    );

    let ok = ws
        .ferry()
        .args([
            "run",
            "./p.lua",
            "-p",
            "source=x",
            "-p",
            "keyspaces=ks1,ks2.t",
            "-p",
            "fast=yes",
            "-p",
            "pause=1h30m",
        ])
        .run();
    ok.code(0)
        .stdout_has("4\t5400.0\t67108864\tdirect\t2\tks2.t\ttrue\t0.5");
}

#[test]
fn parameters_come_from_file_and_environment_with_cli_winning() {
    let ws = Workspace::new();
    ws.write(
        "p.lua",
        r#"
local p = ferry.params{
  {name = "a", type = "string", doc = "a"},
  {name = "b", type = "string", doc = "b"},
  {name = "c", type = "list", doc = "c"},
}
print(p.a, p.b, table.concat(p.c or {}, "+"))
"#,
    );
    ws.write(
        "params.toml",
        "a = \"from-toml\"\nb = \"toml-b\"\nc = [\"x\", \"y\"]\n",
    );
    ws.ferry()
        .args(["run", "./p.lua", "--params", "params.toml", "-p", "b=cli"])
        .env("FERRY_PARAM_A", "from-env")
        .run()
        .code(0)
        .stdout_has("from-toml\tcli\tx+y");
    ws.write("params.json", r#"{"a": "json-a", "c": ["1", 2]}"#);
    ws.ferry()
        .args(["run", "./p.lua", "--params", "params.json"])
        .run()
        .code(0)
        .stdout_has("json-a\tnil\t1+2");
    ws.write("params.env", "# comment\na = kv-a\n");
    ws.ferry()
        .args(["run", "./p.lua", "--params", "params.env"])
        .env("FERRY_PARAM_B", "env-b")
        .run()
        .code(0)
        .stdout_has("kv-a\tenv-b\t");
}

#[test]
fn confirm_without_terminal_exits_3_and_yes_answers_it() {
    let ws = Workspace::new();
    ws.write(
        "gate.lua",
        r#"
ferry.step("gate", "Gate", function() ferry.confirm("Is every Druid service but the Coordinator stopped?") end)
ferry.step("after", "After", function() ferry.fs.write("after", "done") end)
"#,
    );
    ws.ferry()
        .args(["run", "./gate.lua"])
        .run()
        .code(3)
        .stderr_has("Is every Druid service but the Coordinator stopped?")
        .stderr_has("--yes");
    assert!(!ws.join("after").exists());
    ws.ferry()
        .args(["run", "./gate.lua", "--yes"])
        .run()
        .code(0)
        .stderr_has("confirmed by --yes");
    assert_eq!(ws.read("after"), "done");
}

#[test]
fn lua_errors_point_at_the_script_line() {
    let ws = Workspace::new();
    ws.write(
        "bad.lua",
        "local t = nil\nferry.step(\"a\", \"A\", function()\n  return t.x\nend)\n",
    );
    ws.ferry()
        .args(["run", "./bad.lua"])
        .run()
        .code(1)
        .stderr_has("./bad.lua:3: attempt to index a nil value");
    // An error raised by a primitive is located at the calling line too.
    ws.write(
        "bad2.lua",
        "\n\nlocal x = ferry.fs.read('/nonexistent/ferry/file')\n",
    );
    ws.ferry()
        .args(["run", "./bad2.lua"])
        .run()
        .code(1)
        .stderr_has("[not_found]")
        .stderr_has("/nonexistent/ferry/file")
        .stderr_has("at ./bad2.lua:3");
    ws.write("syntax.lua", "ferry.step(\"a\", function()\n");
    ws.ferry()
        .args(["run", "./syntax.lua"])
        .run()
        .code(1)
        .stderr_has("syntax error: ./syntax.lua:");
}

#[test]
fn secrets_never_appear_in_output_logs_or_journal() {
    let ws = Workspace::new();
    ws.write(
        "s.lua",
        r#"
local p = ferry.params{{name = "token", type = "string", secret = true, required = true, doc = "token"}}
ferry.step("use", "Use the token", function()
  ferry.log.info("calling the API with", p.token)
  ferry.log.warn({auth = "Bearer " .. p.token})
  return {token_used = p.token}
end)
ferry.step("boom", "Fail with it", function() error("rejected token " .. p.token) end)
"#,
    );
    let secret = "AstraCS:abcdefSECRET123";
    let out = ws
        .ferry()
        .args([
            "run",
            "./s.lua",
            "-p",
            &format!("token={secret}"),
            "--log-json",
            "events.jsonl",
            "-v",
        ])
        .run();
    out.code(1).stderr_lacks(secret).stderr_has("***");
    assert!(!out.stdout.contains(secret));
    for f in ["events.jsonl", ".ferry/state/s/journal.jsonl"] {
        let text = ws.read(f);
        assert!(!text.is_empty(), "{f} is empty");
        assert!(!text.contains(secret), "secret leaked into {f}");
    }
}

#[test]
fn log_json_has_versioned_events_for_the_whole_run() {
    let ws = Workspace::new();
    ws.write(
        "j.lua",
        r#"
ferry.step("work", "Work", function()
  local p = ferry.log.progress{title = "items", total = 3}
  for _ = 1, 3 do p:inc(1) end
  p:finish()
  ferry.log.info("hello", {n = 1})
  return {items = 3}
end)
"#,
    );
    ws.ferry()
        .args(["run", "./j.lua", "--log-json", "ev.jsonl"])
        .run()
        .code(0);
    let ev = json_lines(&ws.join("ev.jsonl"));
    let names: Vec<&str> = ev.iter().map(|e| e["event"].as_str().unwrap()).collect();
    for expected in [
        "run_started",
        "step_started",
        "progress",
        "log",
        "step_finished",
        "run_finished",
    ] {
        assert!(
            names.contains(&expected),
            "no {expected} event in {names:?}"
        );
    }
    let mut last_seq = 0;
    for e in &ev {
        assert_eq!(e["v"], 2);
        assert!(e["run_id"].is_string());
        let seq = e["seq"].as_u64().unwrap();
        assert!(seq > last_seq);
        last_seq = seq;
    }
    let done = ev.iter().find(|e| e["event"] == "step_finished").unwrap();
    assert_eq!(done["counters"]["items"], 3);
    let end = ev.last().unwrap();
    assert_eq!(end["event"], "run_finished");
    assert_eq!(end["exit_code"], 0);
}

#[test]
fn interrupt_stops_cleanly_records_the_step_and_exits_130() {
    let ws = Workspace::new();
    ws.write(
        "slow.lua",
        r#"
ferry.step("a", "A", function() return {ok = 1} end)
ferry.step("b", "B", function()
  ferry.fs.write("b-started", "1")
  ferry.exec.run{"sleep", "30"}
end)
"#,
    );
    let mut f = ws.ferry().args(["run", "./slow.lua"]);
    f.cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let child = f.cmd.spawn().unwrap();
    let pid = child.id();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !ws.join("b-started").exists() {
        assert!(std::time::Instant::now() < deadline, "step b never started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(stderr.contains("resume with:"), "{stderr}");
    let journal = json_lines(&ws.join(".ferry/state/slow/journal.jsonl"));
    assert!(
        journal
            .iter()
            .any(|e| e["event"] == "step_interrupted" && e["step"] == "b")
    );
}

#[test]
fn task_parallel_runs_items_concurrently_up_to_the_bound() {
    let ws = Workspace::new();
    ws.write(
        "par.lua",
        r#"
local function run(bound)
  local active, max = 0, 0
  local items = {}
  for i = 1, 24 do items[i] = i end
  local r = ferry.task.parallel(items, {concurrency = bound}, function(x)
    active = active + 1
    if active > max then max = active end
    ferry.task.sleep(0.01)
    active = active - 1
    return x * 2
  end)
  assert(#r == 24 and r[1] == 2 and r[24] == 48, "results in item order")
  return max
end
print("max", run(1), run(4), run(100))
"#,
    );
    ws.ferry()
        .args(["run", "./par.lua", "-q"])
        .run()
        .code(0)
        .stdout_has("max\t1\t4\t24");
}

#[test]
fn two_runs_cannot_share_a_state_dir() {
    let ws = Workspace::new();
    ws.write(
        "hold.lua",
        "ferry.step('hold', 'Hold', function() ferry.fs.write('holding', '1') ferry.task.sleep(5) end)\n",
    );
    let mut f = ws.ferry().args(["run", "./hold.lua"]);
    f.cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = f.cmd.spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !ws.join("holding").exists() {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    ws.ferry()
        .args(["run", "./hold.lua"])
        .run()
        .code(1)
        .stderr_has("another ferry run is using the state dir");
    child.kill().unwrap();
    child.wait().unwrap();
}
