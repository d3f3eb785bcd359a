//! Multipart uploads left open by a killed copy are aborted by the next copy to S3: only those of
//! keys the copy writes, only on a server that lists them (moto, `tests/setup/moto.sh`), never in
//! a dry run; a server that does not list them (s3s-fs) changes nothing.
//!
//! moto's ListMultipartUploads gives every upload the same `Initiated` (2010-11-10) and no
//! pages, so the "initiated before this run" cut and the paging are unit tests
//! (`src/store/s3_uploads.rs`); here every upload made before a run is one from before it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{self, Workspace, s3::S3Server};

/// A moto S3 server of this test's own, on a free port; stopped on drop.
struct Moto {
    child: Child,
    port: u16,
}

impl Moto {
    /// None (with the reason printed) when tests/setup/moto.sh was not run.
    fn start(test: &str) -> Option<Moto> {
        let Some(python) = std::env::var_os("FERRY_TEST_MOTO_PYTHON").map(PathBuf::from) else {
            if common::db::on_ci() {
                panic!("FERRY_TEST_MOTO_PYTHON is not set under CI=true (tests/setup/moto.sh)");
            }
            eprintln!(
                "SKIPPED: {test}: FERRY_TEST_MOTO_PYTHON is not set \
                 (eval \"$(bash tests/setup/moto.sh)\" installs moto[server] and sets it)"
            );
            return None;
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(&python)
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto server starts");
        let moto = Moto { child, port };
        let t = Instant::now();
        while moto.try_http("GET", "/", b"").is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "moto did not answer on port {port} within 60 s"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        Some(moto)
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// One HTTP/1.0 request. moto does not check signatures unless asked to, but it does treat
    /// a request without an Authorization header as anonymous (and refuses it ferry's objects),
    /// so each carries one naming the test's access key, with a signature moto does not check.
    fn try_http(&self, method: &str, path: &str, body: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(60)))?;
        write!(
            s,
            "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{}\r\n\
             Authorization: AWS4-HMAC-SHA256 Credential=testing/20261206/us-east-1/s3/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature=00\r\n\
             x-amz-date: 20261206T000000Z\r\nContent-Length: {}\r\n\r\n",
            self.port,
            body.len()
        )?;
        s.write_all(body)?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)?;
        let end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| std::io::Error::other("no end of headers"))?;
        let head = String::from_utf8_lossy(&raw[..end]);
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("no status in {head:?}")))?;
        Ok((status, raw[end + 4..].to_vec()))
    }

    fn http(&self, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
        self.try_http(method, path, body)
            .unwrap_or_else(|e| panic!("{method} {path} to moto: {e}"))
    }

    fn create_bucket(&self, bucket: &str) {
        let (status, body) = self.http("PUT", &format!("/{bucket}"), b"");
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }

    fn put(&self, bucket: &str, key: &str, data: &[u8]) {
        let (status, body) = self.http("PUT", &format!("/{bucket}/{key}"), data);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }

    fn get(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let (status, body) = self.http("GET", &format!("/{bucket}/{key}"), b"");
        (status == 200).then_some(body)
    }

    /// Starts a multipart upload of `key` and stores one part of it; returns its upload id.
    fn open_upload(&self, bucket: &str, key: &str) -> String {
        let (status, body) = self.http("POST", &format!("/{bucket}/{key}?uploads"), b"");
        let body = String::from_utf8_lossy(&body).into_owned();
        assert_eq!(status, 200, "{body}");
        let id = between(&body, "<UploadId>", "</UploadId>")
            .next()
            .expect("an UploadId")
            .to_string();
        let (status, body) = self.http(
            "PUT",
            &format!("/{bucket}/{key}?partNumber=1&uploadId={id}"),
            &common::noise(64 << 10, 3),
        );
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        id
    }

    /// (key, upload id) of every open multipart upload of the bucket, sorted.
    fn uploads(&self, bucket: &str) -> Vec<(String, String)> {
        let (status, body) = self.http("GET", &format!("/{bucket}?uploads"), b"");
        let body = String::from_utf8_lossy(&body).into_owned();
        assert_eq!(status, 200, "{body}");
        let mut out: Vec<(String, String)> = between(&body, "<Upload>", "</Upload>")
            .map(|u| {
                (
                    between(u, "<Key>", "</Key>").next().unwrap().to_string(),
                    between(u, "<UploadId>", "</UploadId>")
                        .next()
                        .unwrap()
                        .to_string(),
                )
            })
            .collect();
        out.sort();
        out
    }

    fn apply_env(&self, cmd: &mut Command) {
        for k in common::s3::UNSET_ENV {
            cmd.env_remove(k);
        }
        cmd.env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL", self.endpoint())
            .env("AWS_ALLOW_HTTP", "true");
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn between<'a>(s: &'a str, open: &'a str, close: &'a str) -> impl Iterator<Item = &'a str> {
    s.split(open)
        .skip(1)
        .filter_map(move |part| part.split_once(close).map(|(inner, _)| inner))
}

const COPY: &str = r#"
local p = ferry.params{
  {name = "src", type = "string", required = true},
  {name = "dst", type = "string", required = true},
  {name = "throttle", type = "string"},
}
local r = ferry.store.copy(ferry.store.open(p.src), ferry.store.open(p.dst), {
  concurrency = 4, part_size = "5MiB", multipart_threshold = "6MiB", throttle = p.throttle,
})
assert(r.failed == 0, ferry.json.encode(r))
print(string.format("report copied %d skipped %d stale %s aborted %s", r.copied, r.skipped,
  r.stale_uploads, r.stale_uploads_aborted))
"#;

/// A source with a multipart-sized object, a small one and one already at the destination.
fn source(ws: &Workspace) -> Vec<u8> {
    let big = common::noise((12 << 20) + 777, 11);
    std::fs::create_dir_all(ws.join("src")).unwrap();
    std::fs::write(ws.join("src/big.bin"), &big).unwrap();
    ws.write("src/small.txt", "small");
    ws.write("src/same.txt", "same");
    ws.write("copy.lua", COPY);
    big
}

/// The uploads a killed run could have left, and others that are not this copy's to abort.
/// Returns the ones that must stay.
fn open_uploads(moto: &Moto) -> Vec<(String, String)> {
    moto.create_bucket("dst");
    moto.put("dst", "base/same.txt", b"same");
    let mut stay = Vec::new();
    for key in ["base/big.bin", "base/big.bin", "base/small.txt"] {
        moto.open_upload("dst", key);
    }
    // Present and equal at the destination (not written), not in the source, outside the
    // store's prefix, and below a prefix that only starts like the store's.
    for key in [
        "base/same.txt",
        "base/not-in-source.bin",
        "other/x.bin",
        "basement/x.bin",
    ] {
        stay.push((key.to_string(), moto.open_upload("dst", key)));
    }
    stay.sort();
    stay
}

fn run_copy(ws: &Workspace, moto: &Moto, extra: &[&str]) -> common::Output {
    let mut f = ws
        .ferry()
        .args(["run", "./copy.lua", "--state"])
        .args([ws.join("state")])
        .args([
            "-p",
            &format!("src=file://{}", ws.join("src").display()),
            "-p",
            "dst=s3://dst/base",
        ])
        .args(extra);
    moto.apply_env(&mut f.cmd);
    f.run()
}

#[test]
fn a_copy_aborts_the_open_uploads_of_the_keys_it_writes_and_no_other() {
    let Some(moto) = Moto::start(
        "store_multipart_abort::a_copy_aborts_the_open_uploads_of_the_keys_it_writes_and_no_other",
    ) else {
        return;
    };
    let ws = Workspace::new();
    let big = source(&ws);
    let stay = open_uploads(&moto);
    assert_eq!(moto.uploads("dst").len(), 7);
    let out = run_copy(&ws, &moto, &[]);
    out.code(0)
        .stdout_has("report copied 2 skipped 1 stale 3 aborted 3")
        .stderr_has("aborted 3 of 3 stale multipart uploads");
    assert_eq!(moto.uploads("dst"), stay, "{}", out.stderr);
    assert!(
        moto.get("dst", "base/big.bin") == Some(big),
        "big.bin differs"
    );
    assert_eq!(moto.get("dst", "base/small.txt").unwrap(), b"small");
    // Nothing left to abort the second time, and nothing else touched.
    run_copy(&ws, &moto, &[])
        .code(0)
        .stdout_has("report copied 0 skipped 3 stale 0 aborted 0");
    assert_eq!(moto.uploads("dst"), stay);
}

#[test]
fn abort_stale_uploads_false_and_a_dry_run_abort_nothing() {
    let Some(moto) =
        Moto::start("store_multipart_abort::abort_stale_uploads_false_and_a_dry_run_abort_nothing")
    else {
        return;
    };
    let ws = Workspace::new();
    source(&ws);
    open_uploads(&moto);
    let before = moto.uploads("dst");
    run_copy(&ws, &moto, &["--dry-run"])
        .code(0)
        .stdout_has("report copied 2 skipped 1 stale 3 aborted 0")
        .stderr_has("would abort 3 stale multipart uploads")
        .stderr_has("would abort 2 multipart upload(s) of 'big.bin' left open by an earlier run");
    assert_eq!(moto.uploads("dst"), before);
    assert!(moto.get("dst", "base/big.bin").is_none());
    ws.write(
        "copy.lua",
        &COPY.replace(
            "concurrency = 4,",
            "concurrency = 4, abort_stale_uploads = false,",
        ),
    );
    run_copy(&ws, &moto, &[])
        .code(0)
        .stdout_has("report copied 2 skipped 1 stale 0 aborted 0");
    assert_eq!(moto.uploads("dst"), before);
}

#[test]
fn a_server_without_list_multipart_uploads_changes_nothing() {
    // s3s-fs answers ListMultipartUploads with 501 NotImplemented (after checking the request's
    // signature: a badly signed listing would be a 403 instead).
    let s3 = S3Server::start();
    s3.create_bucket("dst");
    let ws = Workspace::new();
    let big = source(&ws);
    let run = |rust_log: Option<&str>| {
        let mut f = ws
            .ferry()
            .args(["run", "./copy.lua", "--state"])
            .args([ws.join("state")])
            .args([
                "-p",
                &format!("src=file://{}", ws.join("src").display()),
                "-p",
                "dst=s3://dst/base",
            ]);
        s3.apply_env(&mut f.cmd);
        if let Some(l) = rust_log {
            f = f.env("RUST_LOG", l);
        }
        f.run()
    };
    let out = run(None);
    out.code(0)
        .stdout_has("report copied 3 skipped 0 stale 0 aborted 0")
        .stderr_lacks("multipart")
        .stderr_lacks("WARN")
        .stderr_lacks("ERROR");
    assert_eq!(s3.read_file("dst", "base/big.bin").unwrap(), big);
    let out = run(Some("ferry=debug"));
    out.code(0)
        .stderr_has("does not list open multipart uploads (501 NotImplemented); none aborted")
        .stderr_lacks("WARN");
}

#[test]
fn the_listing_goes_where_the_store_goes_https_virtual_hosted_with_its_ca() {
    // Virtual-hosted (`dst.localhost`) over TLS with the CA from `ca_file`, AWS_CA_BUNDLE naming
    // another CA: s3s-fs answering the listing 501 shows that it reached the server on that
    // name, through that TLS, signed as the store signs.
    let s3 = S3Server::start_tls(&["dst"]);
    s3.create_bucket("dst");
    let ws = Workspace::new();
    source(&ws);
    let opts = format!(
        "{{endpoint = {:?}, virtual_hosted_style = true, ca_file = {:?}}}",
        s3.endpoint,
        s3.ca_pem().unwrap().display().to_string()
    );
    ws.write(
        "copy.lua",
        &COPY.replace(
            "ferry.store.open(p.dst)",
            &format!("ferry.store.open(p.dst, {opts})"),
        ),
    );
    let mut f = ws
        .ferry()
        .args(["run", "./copy.lua", "--state"])
        .args([ws.join("state")])
        .args([
            "-p",
            &format!("src=file://{}", ws.join("src").display()),
            "-p",
            "dst=s3://dst/base",
        ])
        .env("RUST_LOG", "ferry=debug");
    s3.apply_env(&mut f.cmd); // removes AWS_CA_BUNDLE: set after it
    f.cmd.env(
        "AWS_CA_BUNDLE",
        s3.other_ca_pem().unwrap().display().to_string(),
    );
    f.run()
        .code(0)
        .stdout_has("report copied 3 skipped 0 stale 0 aborted 0")
        .stderr_has("does not list open multipart uploads (501 NotImplemented); none aborted")
        .stderr_lacks("WARN");
    let hosts: Vec<String> = s3.signed_requests().into_iter().map(|r| r.host).collect();
    let want = format!("dst.localhost:{}", s3.addr.port());
    assert!(hosts.iter().all(|h| *h == want), "{hosts:?}");
}

#[test]
fn uploads_cut_by_kills_are_aborted_by_the_resume() {
    let Some(moto) =
        Moto::start("store_multipart_abort::uploads_cut_by_kills_are_aborted_by_the_resume")
    else {
        return;
    };
    let ws = Workspace::new();
    std::fs::create_dir_all(ws.join("src")).unwrap();
    let objects: Vec<Vec<u8>> = (0..4).map(|i| common::noise(16 << 20, 100 + i)).collect();
    for (i, o) in objects.iter().enumerate() {
        std::fs::write(ws.join(&format!("src/o{i}.bin")), o).unwrap();
    }
    ws.write("copy.lua", COPY);
    moto.create_bucket("dst");
    let cmd = || {
        let mut f = ws
            .ferry()
            .args(["run", "./copy.lua", "--state"])
            .args([ws.join("state")])
            .args([
                "-p",
                &format!("src=file://{}", ws.join("src").display()),
                "-p",
                "dst=s3://dst/base",
                "-p",
                "throttle=8MiB",
            ]);
        moto.apply_env(&mut f.cmd);
        f.cmd
    };
    let kills = 4;
    let mut left_open = Vec::new();
    for _ in 0..kills {
        let before: Vec<String> = moto.uploads("dst").into_iter().map(|u| u.1).collect();
        let mut child = cmd()
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ferry starts");
        let t = Instant::now();
        // Killed once it has opened an upload of its own (so mid multipart).
        while !moto
            .uploads("dst")
            .iter()
            .any(|(_, id)| !before.contains(id))
        {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("the run ended ({status}) before it could be killed mid-upload");
            }
            assert!(t.elapsed() < Duration::from_secs(60), "no upload opened");
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(300));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        left_open.push(moto.uploads("dst").len());
    }
    assert!(
        left_open.iter().all(|&n| n > 0),
        "each kill left uploads open: {left_open:?}"
    );
    let mut done = cmd();
    let out = done.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(
        moto.uploads("dst"),
        vec![],
        "uploads left open after the resume (after each kill: {left_open:?})\n{stderr}"
    );
    for (i, o) in objects.iter().enumerate() {
        assert!(
            moto.get("dst", &format!("base/o{i}.bin")).as_ref() == Some(o),
            "o{i}.bin differs"
        );
    }
    eprintln!(
        "{kills} kills left {left_open:?} uploads open; the resume: {}",
        stdout.trim()
    );
}
