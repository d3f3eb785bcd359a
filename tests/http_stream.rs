//! ferry.http with streamed request bodies (a Lua iterator, a query's rows, a store object)
//! against a raw loopback HTTP/1.1 server that reads chunked bodies at its own pace: bounded
//! memory under a slow reader, no retry of a stream, redirects resolved before the body goes, an
//! iterator failing mid-body, dry run.

use crate::common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::Workspace;

#[derive(Clone, Debug, Default)]
struct Seen {
    path: String,
    headers: Vec<(String, String)>,
    bytes: u64,
    /// The terminating zero-size chunk (or the whole Content-Length) arrived.
    complete: bool,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, n: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.as_str())
    }
}

struct Server {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    fn requests(&self, path: &str) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.path == path)
            .cloned()
            .collect()
    }
}

/// Paths: /slow reads the body 64 KiB at a time with a pause (answers 200 with the byte count);
/// /fe answers 307 to /slow without reading the body (as a StarRocks FE does for Stream Load);
/// /fe_reads reads the whole body, then answers 307; /busy answers 503; /collect keeps the body.
fn start() -> Server {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let s2 = seen.clone();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(c) = c else { continue };
            let seen = s2.clone();
            std::thread::spawn(move || {
                let _ = serve(c, &seen);
            });
        }
    });
    Server { url, seen }
}

fn serve(c: TcpStream, seen: &Arc<Mutex<Vec<Seen>>>) -> std::io::Result<()> {
    let mut w = c.try_clone()?;
    let mut r = BufReader::with_capacity(64 * 1024, c);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
        let mut s = Seen {
            path: path.split('?').next().unwrap_or("").to_string(),
            ..Seen::default()
        };
        loop {
            let mut h = String::new();
            r.read_line(&mut h)?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                s.headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        let reply = |w: &mut TcpStream, status: &str, extra: &str, body: &str| {
            write!(
                w,
                "HTTP/1.1 {status}\r\n{extra}content-length: {}\r\n\r\n{body}",
                body.len()
            )
        };
        if s.path == "/fe" {
            let loc = format!("/slow{}", path.strip_prefix("/fe").unwrap_or(""));
            seen.lock().unwrap().push(s);
            reply(
                &mut w,
                "307 Temporary Redirect",
                &format!("location: {loc}\r\nconnection: close\r\n"),
                "",
            )?;
            return Ok(());
        }
        let slow = s.path == "/slow";
        let keep = s.path == "/collect" || s.path == "/fe_reads";
        // The body: chunked or Content-Length.
        if s.header("transfer-encoding")
            .is_some_and(|v| v.contains("chunked"))
        {
            loop {
                let mut size = String::new();
                if r.read_line(&mut size)? == 0 {
                    break; // the client went away mid-body
                }
                let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
                    .map_err(|_| std::io::Error::other(format!("bad chunk size {size:?}")))?;
                if n == 0 {
                    let mut crlf = String::new();
                    r.read_line(&mut crlf)?;
                    s.complete = true;
                    break;
                }
                let mut left = n;
                let mut buf = vec![0u8; 64 * 1024];
                while left > 0 {
                    let k = left.min(buf.len());
                    r.read_exact(&mut buf[..k])?;
                    if keep {
                        s.body.extend_from_slice(&buf[..k]);
                    }
                    s.bytes += k as u64;
                    left -= k;
                    if slow {
                        std::thread::sleep(Duration::from_micros(1500));
                    }
                }
                let mut crlf = [0u8; 2];
                r.read_exact(&mut crlf)?;
            }
        } else {
            let n: usize = s
                .header("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let mut b = vec![0u8; n];
            r.read_exact(&mut b)?;
            s.bytes = n as u64;
            s.complete = true;
            if keep {
                s.body = b;
            }
        }
        let (path, bytes, complete) = (s.path.clone(), s.bytes, s.complete);
        seen.lock().unwrap().push(s);
        if !complete {
            return Ok(());
        }
        match path.as_str() {
            "/busy" => reply(&mut w, "503 Service Unavailable", "", "busy")?,
            "/fe_reads" => reply(&mut w, "307 Temporary Redirect", "location: /slow\r\n", "")?,
            _ => reply(&mut w, "200 OK", "", &format!("{{\"bytes\": {bytes}}}"))?,
        }
    }
}

fn run_lua(ws: &Workspace, script: &str, extra: &[&str]) -> common::Output {
    ws.write("t.lua", script);
    let mut args = vec!["run", "./t.lua", "-q"];
    args.extend_from_slice(extra);
    let mut f = ws.ferry().args(args);
    for k in ["http_proxy", "HTTP_PROXY", "ALL_PROXY", "all_proxy"] {
        f.cmd.env_remove(k);
    }
    f.run()
}

/// 500 MB made on the fly by an iterator, read slowly by the server: ferry's peak RSS stays far
/// below the body (the channel holds a few 64 KiB chunks), every byte arrives, chunked.
#[test]
fn a_slow_reader_does_not_grow_memory_while_500_mb_stream_from_an_iterator() {
    let srv = start();
    let ws = Workspace::new();
    let out = run_lua(
        &ws,
        &format!(
            r#"
local piece = string.rep("0123456789abcdef", 4096) -- 64 KiB
local total, made = 500 * 1000 * 1000, 0
local function gen()
  if made >= total then return nil end
  local n = math.min(#piece, total - made)
  made = made + n
  return n == #piece and piece or piece:sub(1, n)
end
local r = ferry.http.request{{method = "PUT", url = {u:?} .. "/slow", body = gen, timeout = 600}}
assert(r.status == 200, r.status)
assert(r:json().bytes == total, r.body)
assert(r.sent.bytes == total and r.body_sent)
local hwm = ferry.fs.read("/proc/self/status"):match("VmHWM:%s*(%d+) kB")
print("peak_kb", hwm)
"#,
            u = srv.url
        ),
        &[],
    );
    out.code(0);
    let peak_kb: u64 = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("peak_kb\t"))
        .and_then(|v| v.trim().parse().ok())
        .expect("peak printed");
    eprintln!("peak RSS while streaming 500 MB to a slow reader: {peak_kb} kB");
    assert!(peak_kb < 150_000, "peak RSS {peak_kb} kB");
    let got = srv.requests("/slow");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].bytes, 500_000_000);
    assert!(got[0].complete);
    assert_eq!(got[0].header("transfer-encoding"), Some("chunked"));
    assert_eq!(got[0].header("content-length"), None);
}

/// A stream is never retried (503 comes back as it is, a refused connection says why), a store
/// object is (it is re-read for the second attempt).
#[test]
fn streams_are_not_retried_store_objects_are() {
    let srv = start();
    let ws = Workspace::new();
    std::fs::write(ws.join("obj.txt"), b"object body\n").unwrap();
    let out = run_lua(
        &ws,
        &format!(
            r#"
local u = {u:?}
local function once(text)
  local done = false
  return function() if done then return nil end done = true return text end
end
local r = ferry.http.request{{method = "PUT", url = u .. "/busy", body = once("abc"), retries = 3}}
assert(r.status == 503 and r.attempts == 1, r.status .. " " .. r.attempts)
local ok, err = pcall(ferry.http.request, {{method = "PUT", url = "http://127.0.0.1:9/x", body = once("abc"), retries = 2}})
assert(not ok and err.message:find("request body is a stream and cannot be replayed; not retried", 1, true), tostring(err))
local s = ferry.store.open("file://" .. {dir:?})
local r2 = ferry.http.request{{method = "PUT", url = u .. "/busy", body = {{store = s, key = "obj.txt"}}, retries = 1}}
assert(r2.status == 503 and r2.attempts == 2, r2.attempts)
print("retries ok")
"#,
            u = srv.url,
            dir = ws.path().display().to_string()
        ),
        &[],
    );
    out.code(0).stdout_has("retries ok");
    let busy = srv.requests("/busy");
    assert_eq!(busy.len(), 3, "one stream attempt, two object attempts");
    assert_eq!(busy[0].bytes, 3);
    assert!(busy[1..].iter().all(|s| s.bytes == 12 && s.complete));
}

/// resolve_redirect: an empty request learns the Location (307 before any body, as a StarRocks
/// FE answers Stream Load), then the stream goes there whole. A 307 after the body was read is
/// a clear error, not a silent short copy.
#[test]
fn redirects_are_resolved_before_a_stream_and_refused_after_it() {
    let srv = start();
    let ws = Workspace::new();
    let out = run_lua(
        &ws,
        &format!(
            r#"
local u = {u:?}
local function lines(n)
  local i = 0
  return function() i = i + 1; if i <= n then return ("row %d\n"):format(i) end end
end
local r = ferry.http.request{{method = "PUT", url = u .. "/fe?x=1", body = lines(20000), resolve_redirect = true,
  headers = {{Expect = "100-continue", label = "l1"}}}}
assert(r.status == 200 and r.url:find("/slow%?x=1"), r.status .. " " .. r.url)
local ok, err = pcall(ferry.http.request, {{method = "PUT", url = u .. "/fe_reads", body = lines(10)}})
assert(not ok and err.message:find("redirected after") and err.message:find("cannot be replayed"), tostring(err))
print("redirect ok")
"#,
            u = srv.url
        ),
        &[],
    );
    out.code(0).stdout_has("redirect ok");
    let fe = srv.requests("/fe");
    assert_eq!(fe.len(), 1);
    assert_eq!(
        fe[0].header("content-length"),
        Some("0"),
        "the probe has no body"
    );
    assert_eq!(fe[0].header("label"), Some("l1"));
    let be = srv.requests("/slow");
    assert_eq!(be.len(), 1);
    let want: usize = (1..=20000).map(|i| format!("row {i}\n").len()).sum();
    assert_eq!(be[0].bytes as usize, want);
    assert!(be[0].complete);
}

/// An iterator that fails halfway: the request is aborted (the server never sees the final
/// chunk), the error says so; under --dry-run nothing is sent and the iterator is not called.
#[test]
fn an_iterator_failing_mid_body_aborts_the_request_and_dry_run_sends_nothing() {
    let srv = start();
    let ws = Workspace::new();
    let script = format!(
        r#"
local i, calls = 0, 0
local function gen()
  calls = calls + 1
  i = i + 1
  if i > 40 then error("source broke at chunk 41") end
  return string.rep("x", 65536)
end
local ok, err = pcall(ferry.http.request, {{method = "PUT", url = {u:?} .. "/collect", body = gen}})
if ferry.dry_run() then
  assert(ok and err.dry_run and calls == 0)
  print("dry ok")
else
  assert(not ok, "must fail")
  local m = tostring(err.message or err)
  assert(m:find("iterator failed after") and m:find("aborted mid%-body") and m:find("source broke at chunk 41"), m)
  print("abort ok")
end
"#,
        u = srv.url
    );
    run_lua(&ws, &script, &["--dry-run"])
        .code(0)
        .stdout_has("dry ok");
    assert!(srv.requests("/collect").is_empty());
    run_lua(&ws, &script, &[]).code(0).stdout_has("abort ok");
    std::thread::sleep(Duration::from_millis(200));
    let got = srv.requests("/collect");
    assert_eq!(got.len(), 1);
    assert!(!got[0].complete, "the server saw an incomplete body");
    assert!(got[0].bytes <= 40 * 65536);
}

/// A query's rows as CSV (NULL as \N, datetimes with a space) and as a JSON array.
#[test]
fn a_query_streams_as_csv_and_json() {
    let Some(_) = common::db::mysql_url_or_skip() else {
        return;
    };
    let url = common::db::fresh_mysql_db("httpstream");
    common::db::mysql_exec(
        &url,
        "CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(20), at DATETIME NULL);
         INSERT INTO t VALUES (1, 'a', '2024-01-02 03:04:05'), (2, NULL, NULL), (3, 'tab\tin', NULL)",
    );
    let srv = start();
    let ws = Workspace::new();
    let out = run_lua(
        &ws,
        &format!(
            r#"
local db = ferry.sql.connect({url:?})
local r = ferry.http.request{{method = "PUT", url = {u:?} .. "/collect", body = {{db = db,
  sql = "SELECT * FROM t WHERE id < ? ORDER BY id", params = {{3}}, format = "csv",
  column_separator = "\1", row_delimiter = "\n", datetime_columns = {{"at"}}}}}}
assert(r.status == 200 and r.sent.rows == 2, r.status)
local j = ferry.http.request{{method = "PUT", url = {u:?} .. "/collect", body = {{db = db,
  sql = "SELECT * FROM t ORDER BY id", format = "json_array", datetime_columns = {{"at"}}}}}}
assert(j.sent.rows == 3)
local ok, err = pcall(ferry.http.request, {{method = "PUT", url = {u:?} .. "/collect", body = {{db = db,
  sql = "SELECT * FROM t ORDER BY id", format = "csv"}}}})
assert(not ok and err.message:find("csv_unsafe") and err.message:find("'name'"), tostring(err))
print("rows ok")
"#,
            url = url,
            u = srv.url
        ),
        &[],
    );
    out.code(0).stdout_has("rows ok");
    common::db::drop_mysql_db(&url);
    let got = srv.requests("/collect");
    assert_eq!(
        got[0].body,
        b"1\x01a\x012024-01-02 03:04:05\n2\x01\\N\x01\\N\n"
    );
    let v: serde_json::Value = serde_json::from_slice(&got[1].body).unwrap();
    assert_eq!(
        v,
        serde_json::json!([
            {"id": 1, "name": "a", "at": "2024-01-02 03:04:05"},
            {"id": 2, "name": null, "at": null},
            {"id": 3, "name": "tab\tin", "at": null}
        ])
    );
}

/// `ferry.http.row_batches` cuts a query into bodies of at most max_bytes, given as a number or
/// as a size string, and refuses a missing or malformed size before reading any row.
#[test]
fn row_batches_cut_bodies_at_max_bytes_given_as_a_number_or_a_size() {
    let Some(_) = common::db::mysql_url_or_skip() else {
        return;
    };
    let url = common::db::fresh_mysql_db("rowbatches");
    let rows: Vec<String> = (1..=200)
        .map(|i| format!("({i}, 'name-{i:04}-padding')"))
        .collect();
    common::db::mysql_exec(
        &url,
        &format!(
            "CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(40)); INSERT INTO t VALUES {}",
            rows.join(", ")
        ),
    );
    let ws = Workspace::new();
    let out = run_lua(
        &ws,
        &format!(
            r#"
local db = ferry.sql.connect({url:?})
local function cut(max)
  local bodies, rows = {{}}, 0
  for body, n in ferry.http.row_batches{{db = db, sql = "SELECT * FROM t ORDER BY id", max_bytes = max}} do
    assert(#body <= 1024, #body)
    bodies[#bodies + 1] = body
    rows = rows + n
  end
  return bodies, rows
end
local a, ra = cut(1024)
local b, rb = cut("1KiB")
assert(ra == 200 and rb == 200, ra .. " " .. rb)
assert(#a == #b and #a >= 5, #a .. " " .. #b)
for i = 1, #a do assert(a[i] == b[i], i) end
local ok, err = pcall(ferry.http.row_batches, {{db = db, sql = "SELECT 1"}})
assert(not ok and err.message:find("needs max_bytes", 1, true), tostring(err))
ok, err = pcall(ferry.http.row_batches, {{db = db, sql = "SELECT 1", max_bytes = "lots"}})
assert(not ok and err.message:find("max_bytes", 1, true), tostring(err))
print("batches " .. #a)
"#,
            url = url,
        ),
        &[],
    );
    common::db::drop_mysql_db(&url);
    out.code(0).stdout_has("batches ");
}
