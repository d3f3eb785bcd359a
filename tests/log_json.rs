//! `--log-json`: the event shape of docs/cli.md ("--log-json events"), read back from the file a
//! real run wrote: every line versioned, numbers as numbers and booleans as booleans, also in the
//! fields a script gives `ferry.log`.

use crate::common;

use common::{Workspace, json_lines};
use serde_json::{Value, json};

const SCRIPT: &str = r#"
local p = ferry.params{{name = "token", type = "string", secret = true, default = "s3cr3t-T0ken"}}
ferry.step("work", "Work", function()
  local bar = ferry.log.progress{title = "items", total = 3}
  for _ = 1, 3 do bar:inc(1) end
  bar:finish()
  ferry.log.info("copied", {rows = 3, ratio = 0.5, done = true, skipped = false, name = "a",
    parts = {"p1", "p2"}, nested = {depth = 2}, huge = math.huge, secret = p.token})
  ferry.log.warn("plain text", 7)
  return {items = 3, ok = true}
end)
ferry.step("fail", "Fails", function()
  ferry.fail("conflict", "stopped on purpose", {hint = "none"})
end)
"#;

fn run() -> (Workspace, Vec<Value>, String) {
    let ws = Workspace::new();
    ws.write("j.lua", SCRIPT);
    let out = ws
        .ferry()
        .args(["run", "./j.lua", "--log-json", "ev.jsonl"])
        .run();
    out.code(1);
    let text = ws.read("ev.jsonl");
    let ev = json_lines(&ws.join("ev.jsonl"));
    assert!(!ev.is_empty(), "no events");
    (ws, ev, format!("{text}\n{}", out.stderr))
}

fn find<'a>(ev: &'a [Value], name: &str) -> &'a Value {
    ev.iter()
        .find(|e| e["event"] == name)
        .unwrap_or_else(|| panic!("no {name} event in {ev:?}"))
}

#[test]
fn ferry_log_fields_keep_their_lua_types() {
    let (_ws, ev, all) = run();
    let log = ev
        .iter()
        .find(|e| {
            e["event"] == "log"
                && e["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("copied"))
        })
        .expect("the copied line");
    assert_eq!(log["level"], "info");
    let f = &log["fields"];
    assert_eq!(f["rows"], json!(3), "{f}");
    assert!(f["rows"].is_i64(), "an integer stays an integer: {f}");
    assert_eq!(f["ratio"], json!(0.5), "{f}");
    assert_eq!(f["done"], json!(true), "{f}");
    assert_eq!(f["skipped"], json!(false), "{f}");
    assert_eq!(f["name"], json!("a"), "{f}");
    assert_eq!(f["parts"], json!(["p1", "p2"]), "{f}");
    assert_eq!(f["nested"], json!({"depth": 2}), "{f}");
    assert_eq!(
        f["huge"],
        json!("inf"),
        "a float JSON cannot hold is its text: {f}"
    );
    // The secret is redacted wherever it would appear, typed fields included.
    assert!(!all.contains("s3cr3t-T0ken"), "the secret leaked: {all}");
    assert!(
        log["location"]
            .as_str()
            .is_some_and(|l| l.contains("j.lua")),
        "{log}"
    );
    // The human line shows the same fields as text.
    let warn = ev
        .iter()
        .find(|e| e["event"] == "log" && e["level"] == "warn")
        .expect("the warn line");
    assert_eq!(warn["message"], "plain text 7");
    assert_eq!(warn["fields"], json!({}));
}

#[test]
fn every_event_is_versioned_and_typed_as_documented() {
    let (_ws, ev, _) = run();
    let mut last_seq = 0;
    let run_id = ev[0]["run_id"].as_str().expect("run_id").to_string();
    for e in &ev {
        assert_eq!(e["v"], json!(2), "{e}");
        assert_eq!(e["run_id"], json!(run_id), "{e}");
        let seq = e["seq"].as_u64().expect("seq is a number");
        assert!(seq > last_seq, "{e}");
        last_seq = seq;
        let ts = e["ts"].as_str().expect("ts");
        assert!(
            chrono::DateTime::parse_from_rfc3339(ts).is_ok() && ts.ends_with('Z'),
            "{ts}"
        );
        assert!(e["event"].is_string(), "{e}");
    }
    let started = find(&ev, "run_started");
    assert!(started["dry_run"].is_boolean(), "{started}");
    let step = find(&ev, "step_started");
    assert_eq!(step["dry_run"], json!(false));
    let done = find(&ev, "step_finished");
    assert!(done["duration_ms"].is_u64(), "{done}");
    assert_eq!(done["counters"], json!({"items": 3, "ok": true}));
    let last = ev
        .iter()
        .rfind(|e| e["event"] == "progress")
        .expect("progress");
    assert_eq!(last["done"], json!(3), "{last}");
    assert_eq!(last["total"], json!(3), "{last}");
    assert_eq!(last["finished"], json!(true), "{last}");
    assert!(last["elapsed_s"].is_number(), "{last}");
    let failed = find(&ev, "step_failed");
    assert_eq!(failed["step"], "fail");
    assert!(failed["duration_ms"].is_u64(), "{failed}");
    assert_eq!(failed["error"]["kind"], "conflict", "{failed}");
    assert!(failed["error"]["retryable"].is_boolean(), "{failed}");
    let fin = find(&ev, "run_finished");
    assert_eq!(fin["exit_code"], json!(1), "{fin}");
    assert!(
        fin["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("stopped on purpose"))
    );
    let steps = fin["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 2, "{fin}");
    assert!(steps[0]["duration_ms"].is_u64(), "{fin}");
}
