//! ferry.http against a local scripted server: retries and Retry-After, redirects with and
//! without credential forwarding, timeouts, large streamed uploads, JSON errors, redaction,
//! dry run.

use crate::common;

use std::time::Duration;

use common::Workspace;
use common::http_server::{HttpServer, Reply};

fn run_lua(ws: &Workspace, script: &str, extra: &[&str]) -> common::Output {
    ws.write("t.lua", script);
    let mut args = vec!["run", "./t.lua", "-q"];
    args.extend_from_slice(extra);
    let mut f = ws.ferry().args(args);
    for k in [
        "http_proxy",
        "https_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "all_proxy",
    ] {
        f.cmd.env_remove(k);
    }
    f.run()
}

#[test]
fn retries_honour_retry_after_and_spare_non_idempotent_requests() {
    let srv = HttpServer::start(|req, n| match req.path.split('?').next().unwrap() {
        "/flaky" if n <= 2 => Reply::new(503, "busy"),
        "/flaky" => Reply::json(200, r#"{"state": "ok", "n": 3}"#),
        "/limited" if n == 1 => Reply::new(429, "slow down").header("retry-after", "1"),
        "/limited" => Reply::json(200, r#"{"ok": true}"#),
        "/post" if n <= 2 => Reply::new(503, "busy"),
        "/post" => Reply::json(201, "{}"),
        _ => Reply::new(404, "no"),
    });
    let ws = Workspace::new();
    let out = run_lua(
        &ws,
        &format!(
            r#"
local base = {url:?}
local r = ferry.http.get(base .. "/flaky", {{retries = 3}})
assert(r.status == 200 and r.attempts == 3, r.status)
assert(r:json().state == "ok" and r:ok())
local l = ferry.http.get(base .. "/limited")
assert(l.status == 200 and l.attempts == 2)
-- POST is not retried unless asked.
local p = ferry.http.post(base .. "/post", {{json = {{a = 1}}}})
assert(p.status == 503 and p.attempts == 1 and not p:ok())
local ok, err = pcall(p.raise, p)
assert(not ok and err.kind == "unavailable" and err.message:find("503"))
local p2 = ferry.http.post(base .. "/post", {{json = {{a = 1}}, retry_non_idempotent = true}})
assert(p2.status == 201 and p2.attempts == 2)
-- expect_status raises with the status kind.
local ok2, err2 = pcall(ferry.http.get, base .. "/missing", {{expect_status = 200}})
assert(not ok2 and err2.kind == "not_found", err2.kind)
print("retries ok")
"#,
            url = srv.url
        ),
        &["-v"],
    );
    out.code(0)
        .stdout_has("retries ok")
        .stderr_has("retrying in 1.0s");
    assert_eq!(srv.requests_to("/flaky").len(), 3);
    assert_eq!(
        srv.requests_to("/post").len(),
        3,
        "the first POST was not retried, the second was"
    );
    let posted = &srv.requests_to("/post")[0];
    assert_eq!(posted.header("content-type"), Some("application/json"));
    assert_eq!(posted.body, br#"{"a":1}"#);
}

#[test]
fn redirects_forward_credentials_only_when_asked_and_resend_the_body() {
    let backend = HttpServer::start(|_, _| Reply::json(200, r#"{"Status": "Success"}"#));
    let be = backend.url.clone();
    let frontend = HttpServer::start(move |req, _| {
        Reply::new(307, "").header("location", &format!("{be}{}", req.path))
    });
    let ws = Workspace::new();
    ws.write("payload.csv", &"1,hello\n".repeat(10_000));
    let out = run_lua(
        &ws,
        &format!(
            r#"
local fe = {fe:?}
local r = ferry.http.put(fe .. "/api/db/t/_stream_load", {{file = "payload.csv", basic = {{"root", "PassW0rd!"}},
  headers = {{label = "l1"}}, expect_continue = true, forward_auth = true}})
assert(r.status == 200 and r:json().Status == "Success")
local r2 = ferry.http.put(fe .. "/no-forward", {{body = "abc", bearer = "tok-123456"}})
assert(r2.status == 200)
print("redirect ok")
"#,
            fe = frontend.url
        ),
        &[],
    );
    out.code(0).stdout_has("redirect ok");
    let load = &backend.requests_to("/api/db/t/_stream_load")[0];
    assert!(
        load.header("authorization").unwrap().starts_with("Basic "),
        "credentials forwarded"
    );
    assert_eq!(load.header("expect"), Some("100-continue"));
    assert_eq!(load.header("label"), Some("l1"));
    assert_eq!(load.body_len, 80_000, "the body is re-sent after the 307");
    let first = &frontend.requests_to("/api/db/t/_stream_load")[0];
    assert_eq!(first.body_sha256, load.body_sha256);
    let plain = &backend.requests_to("/no-forward")[0];
    assert_eq!(
        plain.header("authorization"),
        None,
        "no credentials to another host by default"
    );
    assert_eq!(plain.body, b"abc");
}

#[test]
fn timeouts_and_non_json_answers_are_clear_errors() {
    let srv = HttpServer::start(|req, _| match req.path.as_str() {
        "/slow" => Reply::new(200, "late").delay(Duration::from_secs(3)),
        _ => Reply::new(502, "<html><body>502 Bad Gateway from nginx</body></html>")
            .header("content-type", "text/html"),
    });
    let ws = Workspace::new();
    run_lua(
        &ws,
        &format!(
            r#"
local ok, err = pcall(ferry.http.get, {u:?} .. "/slow", {{timeout = 0.2, retries = 0}})
assert(not ok and err.kind == "timeout", err.kind .. " " .. err.message)
local r = ferry.http.get({u:?} .. "/html", {{retries = 0}})
local ok2, err2 = pcall(r.json, r)
assert(not ok2 and err2.kind == "invalid_input")
assert(err2.message:find("is not JSON", 1, true) and err2.message:find("502 Bad Gateway from nginx", 1, true), err2.message)
print("errors ok")
"#,
            u = srv.url
        ),
        &[],
    )
    .code(0)
    .stdout_has("errors ok");
}

#[test]
fn large_uploads_stream_from_files_and_store_objects_with_a_throttle() {
    let srv = HttpServer::start(|_, _| Reply::new(200, "ok"));
    let ws = Workspace::new();
    let big: Vec<u8> = (0..40u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    std::fs::write(ws.join("big.bin"), &big).unwrap();
    let want = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&big))
    };
    run_lua(
        &ws,
        &format!(
            r#"
local u = {u:?}
assert(ferry.http.put(u .. "/file", {{file = "big.bin"}}).status == 200)
local s = ferry.store.open("file://" .. {dir:?})
local limiter = ferry.throttle.new{{rate = "1GiB"}}
assert(ferry.http.put(u .. "/object", {{object = {{s, "big.bin"}}, throttle = limiter}}).status == 200)
print("upload ok")
"#,
            u = srv.url,
            dir = ws.path().display().to_string()
        ),
        &[],
    )
    .code(0)
    .stdout_has("upload ok");
    for path in ["/file", "/object"] {
        let r = &srv.requests_to(path)[0];
        assert_eq!(r.body_len, 40 << 20, "{path}");
        assert_eq!(r.body_sha256, want, "{path}");
    }
}

#[test]
fn credentials_never_reach_logs_and_dry_run_sends_only_reads() {
    let srv = HttpServer::start(|_, _| Reply::json(200, r#"{"status": "ReceivingFiles"}"#));
    let ws = Workspace::new();
    let script = format!(
        r#"
local p = ferry.params{{{{name = "token", type = "string", secret = true, env = "token", doc = "API token"}}}}
local u = {u:?}
ferry.http.get(u .. "/status?token=QueryToken987&page=1", {{bearer = "HeaderTok-55555"}})
local r = ferry.http.post(u .. "/initialize", {{bearer = p.token, json = {{}}}})
print("posted", r.status, r.dry_run)
"#,
        u = srv.url
    );
    ws.write("t.lua", &script);
    let out = ws
        .ferry()
        .args(["run", "./t.lua", "-vv", "--log-json", "ev.jsonl"])
        .env("token", "AstraCS:SuperSecretToken")
        .run();
    out.code(0).stdout_has("posted\t200");
    let events = ws.read("ev.jsonl");
    for secret in [
        "QueryToken987",
        "HeaderTok-55555",
        "AstraCS:SuperSecretToken",
    ] {
        assert!(!out.stderr.contains(secret), "{secret} in stderr");
        assert!(!events.contains(secret), "{secret} in --log-json");
    }
    assert!(events.contains("token=***"), "the query is shown masked");
    let init = &srv.requests_to("/initialize")[0];
    assert_eq!(
        init.header("authorization"),
        Some("Bearer AstraCS:SuperSecretToken")
    );

    // Dry run: the GET goes out, the POST does not.
    let before = srv.requests_to("/initialize").len();
    let mut f = ws.ferry().args(["run", "./t.lua", "--dry-run"]);
    f = f.env("token", "AstraCS:SuperSecretToken");
    let out = f.run();
    out.code(0)
        .stdout_has("posted\t0\ttrue")
        .stderr_has("would send POST");
    assert_eq!(srv.requests_to("/initialize").len(), before);
    assert_eq!(srv.requests_to("/status").len(), 2);
}
