//! S3 over HTTPS, through the real binary: the store conformance suite
//! (tests/lua/store_conformance.lua) against the in-process s3s-fs server speaking TLS with a
//! certificate from a per-test CA, path-style and virtual-hosted (`<bucket>.localhost`), the CA
//! given by `AWS_CA_BUNDLE` (as the AWS CLI reads it) or by the `ca_file` store option (which
//! wins). A wrong CA, no CA, or a missing CA file fails at open with a clear error, quickly, and
//! never falls back to plain HTTP.

use crate::common;

use std::time::{Duration, Instant};

use common::s3::S3Server;
use common::{Output, Workspace};

const BUCKET: &str = "conformance";

/// The conformance script with `ferry.store.open(p.url)` given `opts` (a Lua table literal), so
/// the same cases run with store options; `None` runs it unchanged.
fn conformance_script(ws: &Workspace, opts: Option<&str>) -> std::path::PathBuf {
    let src = common::conformance_script();
    let text = std::fs::read_to_string(&src).expect("read store_conformance.lua");
    let Some(opts) = opts else {
        return src;
    };
    let open = "ferry.store.open(p.url)";
    assert_eq!(
        text.matches(open).count(),
        1,
        "the conformance script opens its store once"
    );
    ws.write(
        "conformance_opts.lua",
        &text.replacen(open, &format!("ferry.store.open(p.url, {opts})"), 1),
    )
}

fn run_conformance(
    ws: &Workspace,
    s3: &S3Server,
    opts: Option<&str>,
    env: &[(&str, String)],
) -> Output {
    let script = conformance_script(ws, opts);
    let mut f = ws.conformance_run(&script, &format!("s3://{BUCKET}/base/prefix"));
    s3.apply_env(&mut f.cmd);
    for (k, v) in env {
        f = f.env(k, v);
    }
    f.run()
}

fn lua_str(p: &std::path::Path) -> String {
    format!("{:?}", p.display().to_string())
}

/// Every request the server answered came over TLS (this port speaks nothing else) and the
/// suite really ran against it.
fn assert_served(s3: &S3Server) {
    assert!(
        s3.requests() > 2500,
        "the suite made only {} requests",
        s3.requests()
    );
    assert!(
        !s3.list_files(BUCKET).is_empty() || s3.requests_seen().iter().any(|r| r.method == "PUT"),
        "nothing was written"
    );
}

#[test]
fn conformance_https_path_style_with_aws_ca_bundle() {
    let s3 = S3Server::start_tls(&[BUCKET]);
    s3.create_bucket(BUCKET);
    let ws = Workspace::new();
    let ca = s3.ca_pem().unwrap().display().to_string();
    run_conformance(&ws, &s3, None, &[("AWS_CA_BUNDLE", ca)])
        .code(0)
        .stdout_has("conformance ok");
    assert_served(&s3);
    let hosts: Vec<String> = s3.signed_requests().into_iter().map(|r| r.host).collect();
    let want = format!("localhost:{}", s3.addr.port());
    assert!(
        hosts.iter().all(|h| *h == want),
        "path-style hosts: {:?}",
        &hosts[..3]
    );
    // By default every body is signed: its SHA-256 is in x-amz-content-sha256.
    let hashes = put_payload_hashes(&s3);
    assert!(
        hashes.iter().all(|h| is_sha256_hex(h)),
        "a PUT without its body's SHA-256: {:?}",
        hashes.iter().find(|h| !is_sha256_hex(h))
    );
}

/// An `x-amz-content-sha256` that carries a body's hash (a signed body), not `UNSIGNED-PAYLOAD`.
fn is_sha256_hex(h: &str) -> bool {
    h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit())
}

/// Runs a script that opens `s3://conformance/p` with `opts` (a Lua table literal), puts 70,000
/// bytes at `a` and reads them back, with the server's environment changed by `env` (`None`
/// removes a variable). Returns the run and the PUTs the server answered.
fn put_and_get(
    s3: &S3Server,
    opts: &str,
    env: &[(&str, Option<&str>)],
) -> (Output, Vec<common::s3::SeenRequest>) {
    let ws = Workspace::new();
    ws.write(
        "put.lua",
        &format!(
            r#"
local s = ferry.store.open("s3://{BUCKET}/p", {opts})
s:put("a", string.rep("x", 70000))
assert(s:get("a") == string.rep("x", 70000))
print("put ok")
"#
        ),
    );
    let mut f = ws.ferry().args(["run", "./put.lua", "-q"]);
    s3.apply_env(&mut f.cmd);
    for (k, v) in env {
        match v {
            Some(v) => f = f.env(k, v),
            None => {
                f.cmd.env_remove(k);
            }
        }
    }
    let out = f.run();
    out.code(0).stdout_has("put ok");
    let puts = s3
        .requests_seen()
        .into_iter()
        .filter(|r| r.method == "PUT")
        .collect();
    (out, puts)
}

/// The x-amz-content-sha256 of every PUT the server answered (uploads and parts).
fn put_payload_hashes(s3: &S3Server) -> Vec<String> {
    let hashes: Vec<String> = s3
        .requests_seen()
        .iter()
        .filter(|r| r.method == "PUT")
        .map(|r| r.header("x-amz-content-sha256").unwrap_or("").to_string())
        .collect();
    assert!(hashes.len() > 20, "only {} PUTs seen", hashes.len());
    hashes
}

/// `unsigned_payload = true` with `aws_checksum_algorithm = "crc64nvme"`, what a store sends to
/// AWS itself by default (no endpoint there to test against): the whole conformance suite passes
/// over https with every body sent as UNSIGNED-PAYLOAD with a signed CRC64NVME header, which s3s
/// checks against the body as S3 does.
#[test]
fn conformance_https_with_unsigned_payload_and_crc64nvme() {
    let s3 = S3Server::start_tls(&[BUCKET]);
    s3.create_bucket(BUCKET);
    let ws = Workspace::new();
    let opts = format!(
        "{{endpoint = {:?}, unsigned_payload = true, aws_checksum_algorithm = \"crc64nvme\", ca_file = {}}}",
        s3.endpoint,
        lua_str(&s3.ca_pem().unwrap())
    );
    let out = run_conformance(&ws, &s3, Some(&opts), &[]);
    out.code(0).stdout_has("conformance ok");
    assert!(
        !out.stderr.contains("unsigned_payload over plain http"),
        "warned over https: {}",
        out.stderr
    );
    assert_served(&s3);
    let hashes = put_payload_hashes(&s3);
    assert!(
        hashes.iter().all(|h| h == "UNSIGNED-PAYLOAD"),
        "a PUT with a signed body: {:?}",
        hashes.iter().find(|h| *h != "UNSIGNED-PAYLOAD")
    );
    let puts: Vec<_> = s3
        .requests_seen()
        .into_iter()
        .filter(|r| r.method == "PUT" && r.status < 300)
        // A server-side copy (CopyObject) sends no body to check.
        .filter(|r| r.header("x-amz-copy-source").is_none())
        .collect();
    // Each body's CRC64NVME is in a header the signature covers.
    let without: Vec<_> = puts
        .iter()
        .filter(|r| {
            r.header("x-amz-checksum-crc64nvme")
                .is_none_or(str::is_empty)
                || !r
                    .signed_headers()
                    .iter()
                    .any(|h| h == "x-amz-checksum-crc64nvme")
        })
        .map(|r| r.uri.clone())
        .collect();
    assert!(
        without.is_empty(),
        "{} of {} PUTs without a signed CRC64NVME checksum: {:?}",
        without.len(),
        puts.len(),
        &without[..without.len().min(3)]
    );
}

/// Over plain http, `unsigned_payload = true` still works but says what it gives up.
#[test]
fn unsigned_payload_over_plain_http_warns() {
    let s3 = S3Server::start();
    s3.create_bucket(BUCKET);
    let opts = format!(
        "{{endpoint = {:?}, allow_http = true, unsigned_payload = true}}",
        s3.endpoint
    );
    let (out, puts) = put_and_get(&s3, &opts, &[]);
    assert!(
        out.stderr.contains("unsigned_payload over plain http"),
        "no warning: {}",
        out.stderr
    );
    assert_eq!(puts.len(), 1, "{puts:?}");
    assert_eq!(
        puts[0].header("x-amz-content-sha256"),
        Some("UNSIGNED-PAYLOAD"),
        "{:?}",
        puts[0].headers
    );
}

/// A custom endpoint given only by `AWS_ENDPOINT_URL_S3` (which object_store prefers to
/// `AWS_ENDPOINT_URL`) is still a custom endpoint: addressed path-style even with
/// `AWS_VIRTUAL_HOSTED_STYLE_REQUEST=true` in the environment (object_store would otherwise send
/// to the bucketless endpoint as if it were the bucket's), and its bodies stay signed.
#[test]
fn an_endpoint_named_only_by_aws_endpoint_url_s3_is_path_style_and_signed() {
    let s3 = S3Server::start();
    s3.create_bucket(BUCKET);
    let (_, puts) = put_and_get(
        &s3,
        "{}",
        &[
            ("AWS_ENDPOINT_URL", None),
            ("AWS_ENDPOINT_URL_S3", Some(&s3.endpoint)),
            ("AWS_VIRTUAL_HOSTED_STYLE_REQUEST", Some("true")),
        ],
    );
    assert_eq!(puts.len(), 1, "{puts:?}");
    assert!(
        puts[0].uri.starts_with(&format!("/{BUCKET}/p/a")),
        "path-style: {}",
        puts[0].uri
    );
    let hash = puts[0].header("x-amz-content-sha256").unwrap_or_default();
    assert!(is_sha256_hex(hash), "signed body: {hash}");
}

#[test]
fn conformance_https_virtual_hosted_with_ca_file_winning_over_aws_ca_bundle() {
    let s3 = S3Server::start_tls(&[BUCKET]);
    s3.create_bucket(BUCKET);
    let ws = Workspace::new();
    let opts = format!(
        "{{endpoint = {:?}, virtual_hosted_style = true, ca_file = {}}}",
        s3.endpoint,
        lua_str(&s3.ca_pem().unwrap())
    );
    // AWS_CA_BUNDLE names the wrong CA: the suite passes only if ca_file wins.
    let wrong = s3.other_ca_pem().unwrap().display().to_string();
    run_conformance(&ws, &s3, Some(&opts), &[("AWS_CA_BUNDLE", wrong)])
        .code(0)
        .stdout_has("conformance ok");
    assert_served(&s3);
    let hosts: Vec<String> = s3.signed_requests().into_iter().map(|r| r.host).collect();
    let want = format!("{BUCKET}.localhost:{}", s3.addr.port());
    assert!(
        hosts.iter().all(|h| *h == want),
        "virtual-hosted hosts: {:?}",
        &hosts[..3]
    );
    // Virtual-hosted: the bucket is in the host, not in the path.
    assert!(
        s3.requests_seen()
            .iter()
            .all(|r| !r.uri.starts_with(&format!("/{BUCKET}"))),
        "a request named the bucket in its path"
    );
}

/// Opens the store once with `opts` (a Lua table literal) and prints the error.
fn open_fails(s3: &S3Server, opts: &str, env: &[(&str, String)]) -> (Output, Duration) {
    let ws = Workspace::new();
    ws.write(
        "open.lua",
        &format!(
            r#"
local ok, err = pcall(ferry.store.open, "s3://{BUCKET}/p", {opts})
assert(not ok, "the store opened")
print("KIND " .. err.kind)
print("MESSAGE " .. err.message)
print("HINT " .. tostring(err.hint))
"#
        ),
    );
    let mut f = ws.ferry().args(["run", "./open.lua", "-q"]);
    s3.apply_env(&mut f.cmd);
    for (k, v) in env {
        f = f.env(k, v);
    }
    let t = Instant::now();
    let out = f.run();
    (out, t.elapsed())
}

/// A refused certificate: the error names the endpoint and says it is the certificate, comes
/// within seconds (not retried for a minute), and no request was served (nothing went out in
/// plain HTTP, which this port would not answer anyway, and nothing was sent past the failed
/// handshake).
fn assert_certificate_refused(s3: &S3Server, out: &Output, took: Duration) {
    out.code(0);
    let msg = out.stdout.clone();
    assert!(
        msg.contains(&s3.endpoint),
        "the endpoint is not named: {msg}"
    );
    assert!(
        msg.to_lowercase().contains("certificate"),
        "no certificate word: {msg}"
    );
    assert!(
        msg.contains("KIND unavailable") || msg.contains("KIND auth"),
        "{msg}"
    );
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert_eq!(s3.requests(), 0, "a request got through");
    assert!(
        s3.tls_handshake_failures() >= 1,
        "the server saw no handshake"
    );
}

#[test]
fn a_wrong_ca_fails_naming_the_endpoint_by_aws_ca_bundle_and_by_ca_file() {
    let s3 = S3Server::start_tls(&[BUCKET]);
    s3.create_bucket(BUCKET);
    let wrong = s3.other_ca_pem().unwrap();
    let (out, took) = open_fails(&s3, "{}", &[("AWS_CA_BUNDLE", wrong.display().to_string())]);
    assert_certificate_refused(&s3, &out, took);

    let opts = format!(
        "{{endpoint = {:?}, virtual_hosted_style = true, ca_file = {}}}",
        s3.endpoint,
        lua_str(&wrong)
    );
    // The right CA in AWS_CA_BUNDLE does not help: ca_file replaces it.
    let right = s3.ca_pem().unwrap().display().to_string();
    let (out, took) = open_fails(&s3, &opts, &[("AWS_CA_BUNDLE", right)]);
    assert_certificate_refused(&s3, &out, took);
}

#[test]
fn no_ca_fails_naming_the_endpoint_and_never_downgrades_to_http() {
    let s3 = S3Server::start_tls(&[BUCKET]);
    s3.create_bucket(BUCKET);
    // apply_env removes AWS_CA_BUNDLE and sets AWS_ALLOW_HTTP=true: still HTTPS, still refused.
    let (out, took) = open_fails(&s3, "{allow_http = true}", &[]);
    assert_certificate_refused(&s3, &out, took);
}

#[test]
fn a_missing_or_empty_ca_file_fails_naming_the_file() {
    let s3 = S3Server::start_tls(&[BUCKET]);
    s3.create_bucket(BUCKET);
    let ws = Workspace::new();
    let missing = ws.join("no-such-ca.pem");
    let (out, _) = open_fails(&s3, &format!("{{ca_file = {}}}", lua_str(&missing)), &[]);
    out.code(0);
    assert!(out.stdout.contains("KIND not_found"), "{}", out.stdout);
    assert!(
        out.stdout.contains(&missing.display().to_string()),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("option ca_file"), "{}", out.stdout);

    let (out, _) = open_fails(
        &s3,
        "{}",
        &[("AWS_CA_BUNDLE", missing.display().to_string())],
    );
    out.code(0);
    assert!(
        out.stdout.contains(&missing.display().to_string()),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("AWS_CA_BUNDLE"), "{}", out.stdout);

    let empty = ws.write("empty.pem", "no certificate here\n");
    let (out, _) = open_fails(&s3, &format!("{{ca_file = {}}}", lua_str(&empty)), &[]);
    out.code(0);
    assert!(
        out.stdout.contains("holds no PEM certificate"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(&empty.display().to_string()),
        "{}",
        out.stdout
    );
    assert_eq!(s3.requests(), 0);
    assert_eq!(s3.tls_handshake_failures(), 0, "a connection was tried");
}
