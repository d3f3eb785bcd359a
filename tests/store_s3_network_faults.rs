//! S3 through a bad network: the TCP fault proxy (tests/common/tcp_faults.rs) between ferry and
//! the in-process S3 server (tests/common/s3.rs), under a `ferry.store.copy` of 300 small objects
//! and two multipart ones (6 MiB, in 5 MiB parts), local folder to S3 and S3 to local folder.
//! Connections that stall (with `timeout = 2`), are half-closed, reset (before or in the middle of
//! a body) or drip the answers: every copy ends exact (each object once, the same bytes), and
//! nothing hangs: a server that never answers ends the run with a timeout error naming the host.
//! (The HTTP-level faults, 503 and resets by an HTTP proxy, are in tests/store.rs.)

use crate::common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Instant;

use common::Workspace;
use common::s3::S3Server;
use common::tcp_faults::{Fault, TcpFaults};

const SMALL: usize = 300;
const BIG: usize = 2;
const BIG_SIZE: usize = (6 << 20) + 4321;
const DRIP_BIG_SIZE: usize = (3 << 19) + 17;
const BUCKET: &str = "netfaults";
/// Faulted connections a test (and so one request at worst) meets: object_store's 3 retries.
const STALLS: u64 = 3;

const JOB: &str = r#"
local p = ferry.params{
  {name = "src", type = "string", required = true, doc = "source store URL"},
  {name = "dst", type = "string", required = true, doc = "destination store URL"},
  {name = "timeout", type = "string", doc = "timeout of the S3 store"},
}
local function open(url)
  if url:sub(1, 5) == "s3://" then
    return ferry.store.open(url, {timeout = p.timeout, connect_timeout = p.timeout})
  end
  return ferry.store.open(url, {create = true})
end
local src, dst = open(p.src), open(p.dst)
local r = ferry.step("copy", "Copy objects", function()
  local r = ferry.store.copy(src, dst, {concurrency = 16, multipart_threshold = "1MiB",
                                        part_size = "5MiB", verify = "size"})
  return {copied = r.copied, skipped = r.skipped, failed = r.failed, bytes = r.bytes,
          retried = r.retried, errors = #r.errors,
          first_error = r.errors[1] and r.errors[1].message}
end)
print(ferry.json.encode(r))
if r.failed > 0 then ferry.fail("io", r.failed .. " objects failed") end
"#;

/// The objects of a test, the multipart ones `big_size` bytes: key -> bytes.
fn objects(big_size: usize) -> BTreeMap<String, Vec<u8>> {
    let mut m = BTreeMap::new();
    for i in 0..SMALL {
        m.insert(
            format!("d{}/o{i:03}", i % 10),
            format!("small object {i}").into_bytes(),
        );
    }
    for i in 0..BIG {
        m.insert(format!("big/b{i}"), common::noise(big_size, 11 + i as u64));
    }
    m
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    secs: f64,
}

/// Runs the job under `timeout 240` (a hang fails the test instead of blocking the suite), with
/// the S3 server's environment pointing at `endpoint`.
fn run(ws: &Workspace, s3: &S3Server, endpoint: &str, src: &str, dst: &str, t: &str) -> Run {
    ws.write("job.lua", JOB);
    let mut cmd = Command::new("timeout");
    cmd.args(["240", env!("CARGO_BIN_EXE_ferry"), "run", "./job.lua"])
        .args(["-p", &format!("src={src}"), "-p", &format!("dst={dst}")])
        .args(["-p", &format!("timeout={t}")])
        .current_dir(ws.path())
        .env("FERRY_NO_BARS", "1")
        .env_remove("RUST_LOG");
    s3.apply_env_via(&mut cmd, endpoint);
    let started = Instant::now();
    let out = cmd.output().unwrap();
    let r = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        secs: started.elapsed().as_secs_f64(),
    };
    assert_ne!(r.code, 124, "ferry hung through the fault\n{}", r.stderr);
    r
}

fn report(r: &Run) -> serde_json::Value {
    let line = r.stdout.lines().rfind(|l| l.starts_with('{'));
    let line = line.unwrap_or_else(|| panic!("no report\n{}\n{}", r.stdout, r.stderr));
    serde_json::from_str(line).unwrap()
}

/// Local folder -> S3 through `fault`, then S3 -> a local folder through the same fault, each
/// checked exact. Returns the proxy's hits of both directions.
fn both_ways(
    fault: Fault,
    after_bytes: u64,
    times: u64,
    timeout: &str,
    big_size: usize,
) -> (u64, u64) {
    let s3 = S3Server::start();
    s3.create_bucket(BUCKET);
    let want = objects(big_size);
    let ws = Workspace::new();
    for (k, v) in &want {
        let p = ws.join(&format!("src/{k}"));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, v).unwrap();
    }
    let upstream = s3.endpoint.trim_start_matches("http://").to_string();

    // Up: local -> S3.
    let proxy = TcpFaults::start(&upstream, fault, after_bytes, times);
    let via = format!("http://127.0.0.1:{}", proxy.port);
    let src = format!("file://{}", ws.join("src").display());
    let r = run(&ws, &s3, &via, &src, &format!("s3://{BUCKET}/up"), timeout);
    let up_hits = proxy.hits();
    drop(proxy);
    assert_eq!(r.code, 0, "{fault:?} up\n{}\n{}", r.stdout, r.stderr);
    let rep = report(&r);
    assert_eq!(rep["copied"], want.len(), "{fault:?} up: {rep}");
    let listed: Vec<String> = s3
        .list_files(BUCKET)
        .into_iter()
        .filter_map(|k| k.strip_prefix("up/").map(str::to_string))
        .collect();
    assert_eq!(
        listed,
        want.keys().cloned().collect::<Vec<_>>(),
        "{fault:?} up: the keys"
    );
    for (k, v) in &want {
        let got = s3.read_file(BUCKET, &format!("up/{k}")).unwrap();
        assert!(got == *v, "{fault:?} up: {k} differs ({} bytes)", got.len());
    }
    eprintln!(
        "{fault:?} up: {} s, {up_hits} connections faulted, report {rep}",
        r.secs
    );

    // Down: S3 -> local.
    let proxy = TcpFaults::start(&upstream, fault, after_bytes, times);
    let via = format!("http://127.0.0.1:{}", proxy.port);
    let dst = format!("file://{}", ws.join("down").display());
    let r = run(&ws, &s3, &via, &format!("s3://{BUCKET}/up"), &dst, timeout);
    let down_hits = proxy.hits();
    drop(proxy);
    assert_eq!(r.code, 0, "{fault:?} down\n{}\n{}", r.stdout, r.stderr);
    let rep = report(&r);
    assert_eq!(rep["copied"], want.len(), "{fault:?} down: {rep}");
    for (k, v) in &want {
        let got = std::fs::read(ws.join(&format!("down/{k}"))).unwrap();
        assert!(
            got == *v,
            "{fault:?} down: {k} differs ({} bytes)",
            got.len()
        );
    }
    let files = walk(&ws.join("down"));
    assert_eq!(files, want.len(), "{fault:?} down: files in the folder");
    eprintln!(
        "{fault:?} down: {} s, {down_hits} connections faulted, report {rep}",
        r.secs
    );
    (up_hits, down_hits)
}

fn walk(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| {
            if e.path().is_dir() {
                walk(&e.path())
            } else {
                1
            }
        })
        .sum()
}

#[test]
fn s3_copy_through_stalled_connections_times_out_retries_and_ends_exact() {
    // The first 3 connections stop forwarding after 600 bytes from ferry (the end of a GET's
    // headers, mid-body of a PUT or a part): each request on them ends at the 2 s timeout and is
    // retried. Three, because that many may hit one request (the parallel listings start at
    // once) and object_store retries a request 3 times; a request stalled on its 4th try too
    // fails, as in the last test.
    let (up, down) = both_ways(Fault::Stall, 600, STALLS, "2", BIG_SIZE);
    assert!(
        up == STALLS && down == STALLS,
        "stalls injected: up {up}, down {down}"
    );
}

#[test]
fn s3_copy_through_half_closed_connections_retries_and_ends_exact() {
    // The answer of the request that crosses 600 bytes on the first 3 connections is lost (the
    // request itself reached the server).
    let (up, down) = both_ways(Fault::HalfClose, 600, STALLS, "30", BIG_SIZE);
    assert!(
        up == STALLS && down == STALLS,
        "half-closes injected: up {up}, down {down}"
    );
}

#[test]
fn s3_copy_through_reset_connections_retries_and_ends_exact() {
    // 2 KiB in: inside the body of a PUT or a part, or a few requests into a kept-alive connection.
    let (up, down) = both_ways(Fault::Reset, 2048, STALLS, "30", BIG_SIZE);
    assert!(
        up == STALLS && down == STALLS,
        "resets injected: up {up}, down {down}"
    );
}

#[test]
fn s3_copy_through_a_slow_drip_ends_exact() {
    // Every answer 256 bytes at a time, 2 ms apart (about 128 KB/s); the default timeout. The
    // multipart objects are smaller here (one 5 MiB part each), or reading them back would take
    // minutes.
    let (up, down) = both_ways(Fault::Drip, 0, 0, "300", DRIP_BIG_SIZE);
    assert!(
        up > 0 && down > 0,
        "connections dripped: up {up}, down {down}"
    );
}

#[test]
fn s3_store_that_never_answers_ends_in_a_timeout_error_naming_the_host() {
    let s3 = S3Server::start();
    s3.create_bucket(BUCKET);
    let ws = Workspace::new();
    ws.write("src/a", "a");
    let upstream = s3.endpoint.trim_start_matches("http://").to_string();
    let proxy = TcpFaults::start(&upstream, Fault::Stall, 0, u64::MAX);
    let via = format!("http://127.0.0.1:{}", proxy.port);
    let src = format!("file://{}", ws.join("src").display());
    let r = run(&ws, &s3, &via, &src, &format!("s3://{BUCKET}/up"), "2");
    assert_ne!(r.code, 0, "{}", r.stdout);
    // Open's listing: 4 attempts of 2 s plus backoff, well under the 60 s of the open check.
    assert!(r.secs < 30.0, "took {} s\n{}", r.secs, r.stderr);
    let host = format!("127.0.0.1:{}", proxy.port);
    assert!(
        r.stderr.contains("timeout") && r.stderr.contains(&host),
        "no timeout naming {host}:\n{}",
        r.stderr
    );
    assert!(r.stderr.contains("within timeout 2s"), "{}", r.stderr);
    let env = s3.env();
    let secret = &env
        .iter()
        .find(|(k, _)| k == "AWS_SECRET_ACCESS_KEY")
        .unwrap()
        .1;
    assert!(
        !r.stderr.contains(secret.as_str()) && !r.stdout.contains(secret.as_str()),
        "the secret key is in the output"
    );
    assert!(proxy.hits() >= 1);
    eprintln!("never answers: {} s\n{}", r.secs, r.stderr);
}
