//! `ferry run --metrics ADDR`: a real scrape while a copy runs, read by Prometheus' own checker
//! (`promtool check metrics`, Debian's prometheus package, installed by tests/setup/promtool.sh),
//! and the values checked against what the run did.

use crate::common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Workspace;

fn scrape(addr: &str, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).expect("connect to the metrics address");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let (head, body) = resp.split_once("\r\n\r\n").expect("an HTTP answer");
    (head.to_string(), body.to_string())
}

/// The value of the sample `name{labels}` (labels as they appear between the braces).
fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

fn promtool_check(tool: &str, body: &str) {
    let mut child = Command::new(tool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics refused the scrape ({}):\n{}{}\n--- scrape ---\n{body}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_scrape_during_a_copy_passes_promtool_and_counts_what_the_run_did() {
    if !common::tool_or_skip("promtool", "metrics", "tests/setup/promtool.sh") {
        return;
    }
    let tool = "promtool";
    let ws = Workspace::new();
    for i in 0..40 {
        ws.write(&format!("src/f{i:02}.bin"), &"x".repeat(1000 + i));
    }
    ws.write(
        "m.lua",
        r#"
local p = ferry.params{{name = "dir", type = "string", required = true, doc = "workspace"}}
ferry.step("copy", "Copy the files", function()
  -- 10 objects/s: the copy lasts about 4 s, long enough to be scraped while it runs.
  local r = ferry.store.copy(ferry.store.open("file://" .. p.dir .. "/src"),
    ferry.store.open("file://" .. p.dir .. "/dst", {create = true}), {ops_throttle = 10, title = "files \"a\""})
  return {copied = r.copied}
end)
ferry.step("linger", "Wait to be scraped", function() ferry.task.sleep(3) end)
"#,
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["run", "./m.lua", "--metrics", "127.0.0.1:0", "-p"])
        .arg(format!("dir={}", ws.path().display()))
        .current_dir(ws.path())
        .env("FERRY_NO_BARS", "1")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut addr = None;
    let mut log = String::new();
    let mut line = String::new();
    while addr.is_none() && err.read_line(&mut line).unwrap_or(0) > 0 {
        log.push_str(&line);
        if let Some(rest) = line.split("metrics at http://").nth(1) {
            addr = rest.split('/').next().map(str::to_string);
        }
        line.clear();
    }
    let addr = addr.unwrap_or_else(|| panic!("no metrics address logged:\n{log}"));
    let drain = std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = err.read_to_string(&mut rest);
        rest
    });

    // During the copy: the copy step runs and its progress moves.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut during = None;
    while during.is_none() {
        assert!(Instant::now() < deadline, "never saw the copy in progress");
        let (head, body) = scrape(&addr, "/metrics");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(
            head.contains("text/plain; version=0.0.4"),
            "content type: {head}"
        );
        let done = sample(
            &body,
            "ferry_progress_done{title=\"files \\\"a\\\"\",unit=\"items\"}",
        );
        if sample(&body, "ferry_step_running{step=\"copy\"}") == Some(1.0)
            && done.is_some_and(|d| d > 0.0 && d < 40.0)
        {
            during = Some(body);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let during = during.unwrap();
    promtool_check(tool, &during);
    assert_eq!(
        sample(&during, "ferry_run_info{procedure=\"m\"}"),
        Some(1.0),
        "{during}"
    );
    assert!(during.contains("# TYPE ferry_progress_rate_per_second gauge"));

    // After the copy, while the next step runs: the report's counters.
    let mut after = None;
    while after.is_none() {
        assert!(Instant::now() < deadline, "never saw the copy's report");
        let (_, body) = scrape(&addr, "/metrics");
        if sample(&body, "ferry_step_running{step=\"linger\"}") == Some(1.0) {
            after = Some(body);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let after = after.unwrap();
    promtool_check(tool, &after);
    let title = "{title=\"files \\\"a\\\"\"}";
    assert_eq!(
        sample(&after, &format!("ferry_objects_copied_total{title}")),
        Some(40.0),
        "{after}"
    );
    assert_eq!(
        sample(&after, &format!("ferry_objects_failed_total{title}")),
        Some(0.0)
    );
    let bytes: usize = (0..40).map(|i| 1000 + i).sum();
    assert_eq!(
        sample(&after, &format!("ferry_bytes_copied_total{title}")),
        Some(bytes as f64)
    );
    assert_eq!(
        sample(&after, "ferry_steps_total{status=\"ok\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&after, "ferry_step_running{step=\"copy\"}"),
        Some(0.0)
    );
    let (head, _) = scrape(&addr, "/nothing");
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");

    let status = child.wait().unwrap();
    let rest = drain.join().unwrap();
    assert!(status.success(), "{log}{rest}");
}

#[test]
fn an_address_that_cannot_be_bound_is_a_usage_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let ws = Workspace::new();
    ws.write("x.lua", "ferry.step('a', function() end)\n");
    ws.ferry()
        .args(["run", "./x.lua", "--metrics", &format!("127.0.0.1:{port}")])
        .run()
        .code(2)
        .stderr_has(&format!("--metrics 127.0.0.1:{port}: cannot listen there"));
    assert!(!ws.join(".ferry/state/x/journal.jsonl").exists());
}
