//! The store conformance suite (tests/lua/store_conformance.lua) run against every backend, and
//! the copy engine's failure handling.

use crate::common;

use common::Workspace;

fn conformance(ws: &Workspace, url: &str, env: &[(String, String)]) {
    let mut f = ws.conformance_run(&common::conformance_script(), url);
    // The machine's AWS_CA_BUNDLE, profiles and proxies must not reach a plain-HTTP test server.
    for k in common::s3::UNSET_ENV.iter().chain(common::gcs::UNSET_ENV) {
        f.cmd.env_remove(k);
    }
    for (k, v) in env {
        f = f.env(k, v);
    }
    f.run().code(0).stdout_has("conformance ok");
}

#[test]
fn conformance_file() {
    let ws = Workspace::new();
    std::fs::create_dir_all(ws.join("store")).unwrap();
    conformance(&ws, &format!("file://{}", ws.join("store").display()), &[]);
}

#[test]
fn conformance_memory() {
    let ws = Workspace::new();
    conformance(&ws, "memory://conformance", &[]);
}

#[test]
fn opening_bad_stores_fails_at_once_naming_the_store() {
    let ws = Workspace::new();
    ws.write(
        "bad.lua",
        r#"
local function fails(url, opts, kind, text)
  local ok, err = pcall(ferry.store.open, url, opts)
  assert(not ok, url .. " opened")
  assert(err.kind == kind, url .. ": kind " .. err.kind .. ": " .. err.message)
  assert(err.message:find(text, 1, true), url .. ": " .. err.message)
end
fails("not a url", nil, "invalid_input", "not a URL")
fails("ftp://host/x", nil, "invalid_input", "unknown scheme 'ftp'")
fails("file:///nonexistent/ferry-store", nil, "not_found", "does not exist")
fails("s3://ab", nil, "invalid_input", "bucket name")
fails("s3://bucket/x", {colour = "blue"}, "invalid_input", "unknown option 'colour'")
fails("s3://bucket/x", {endpoint = "http://127.0.0.1:9", allow_http = true, access_key_id = "a", secret_access_key = "b"}, "unavailable", "s3://bucket/x")
print("bad stores ok")
"#,
    );
    ws.ferry()
        .args(["run", "./bad.lua", "-q"])
        .env("AWS_CA_BUNDLE", "")
        .run()
        .code(0)
        .stdout_has("bad stores ok");
}

#[test]
fn conformance_s3() {
    let s3 = common::s3::S3Server::start();
    s3.create_bucket("conformance");
    let ws = Workspace::new();
    conformance(&ws, "s3://conformance/base/prefix", &s3.env());
}

#[test]
fn conformance_azure() {
    let Some(az) = common::azurite::azurite() else {
        return;
    };
    let container = az.unique_container("conformance");
    az.create_container(&container);
    let ws = Workspace::new();
    conformance(&ws, &format!("az://{container}/some/prefix"), &az.env());
    az.delete_container(&container);
}

#[test]
fn azure_sas_urls_open_and_a_read_only_sas_cannot_write() {
    let Some(az) = common::azurite::azurite() else {
        return;
    };
    let container = az.unique_container("sas");
    az.create_container(&container);
    let ws = Workspace::new();
    let rw = format!(
        "{}/base?{}",
        az.container_url(&container),
        az.account_sas("rwdlac")
    );
    let ro = format!(
        "{}/base?{}",
        az.container_url(&container),
        az.account_sas("rl")
    );
    ws.write(
        "sas.lua",
        &format!(
            r#"
local rw = ferry.store.open({rw:?})
rw:put("a.txt", "via SAS")
assert(rw:get("a.txt") == "via SAS")
local ro = ferry.store.open({ro:?})
assert(ro:get("a.txt") == "via SAS")
local ok, err = pcall(ro.put, ro, "b.txt", "x")
assert(not ok and err.kind == "auth", err.kind .. ": " .. err.message)
assert(not err.message:find("sig=", 1, true), "the SAS signature leaked: " .. err.message)
print("sas ok")
"#
        ),
    );
    let out = ws.ferry().args(["run", "./sas.lua", "-q"]).run();
    out.code(0).stdout_has("sas ok");
    let sig = rw
        .split("sig=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_string();
    assert!(!out.stderr.contains(&sig));
    az.delete_container(&container);
}

#[test]
fn s3_rejected_credentials_and_missing_buckets_fail_at_open() {
    let s3 = common::s3::S3Server::start();
    s3.create_bucket("exists");
    let ws = Workspace::new();
    ws.write(
        "open.lua",
        r#"
local ok, err = pcall(ferry.store.open, "s3://missing-bucket/x")
assert(not ok and err.kind == "not_found", err.kind .. ": " .. err.message)
assert(err.message:find("s3://missing-bucket/x", 1, true))
local ok2, err2 = pcall(ferry.store.open, "s3://exists/x", {secret_access_key = "wrong-secret-value"})
assert(not ok2 and err2.kind == "auth", err2.kind .. ": " .. err2.message)
assert(ferry.store.open("s3://exists/x"))
print("open ok")
"#,
    );
    let mut f = ws.ferry().args(["run", "./open.lua", "-q"]);
    s3.apply_env(&mut f.cmd);
    let out = f.run();
    out.code(0).stdout_has("open ok");
    assert!(!out.stderr.contains("wrong-secret-value"));
}

#[test]
fn s3_faults_are_retried_to_success() {
    use common::fault_proxy::{FaultProxy, Faults};
    let s3 = common::s3::S3Server::start();
    s3.create_bucket("faulty");
    let proxy = FaultProxy::start(&s3.endpoint, Faults::new().fail_every(5).reset_every(7));
    let ws = Workspace::new();
    for i in 0..300 {
        ws.write(&format!("src/d{}/o{i}", i % 10), &format!("object {i}"));
    }
    let mut f = ws.ferry().args([
        "run",
        &copy_engine_job(),
        "-p",
        &format!("src=file://{}", ws.join("src").display()),
        "-p",
        "dst=s3://faulty/base",
        "-p",
        "verify=size",
    ]);
    s3.apply_env_via(&mut f.cmd, &proxy.endpoint);
    let out = f.run();
    out.code(0);
    assert!(
        proxy.failed() > 10 && proxy.reset() > 5,
        "faults injected: {:?}",
        proxy.counts()
    );
    let files = s3.list_files("faulty");
    assert_eq!(
        files.iter().filter(|k| k.starts_with("base/")).count(),
        300,
        "{files:?}"
    );
    assert_eq!(s3.read_file("faulty", "base/d3/o13").unwrap(), b"object 13");
}

fn copy_engine_job() -> String {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/lua/copy_job.lua")
        .display()
        .to_string()
}

#[test]
fn conformance_gcs() {
    let Some(gcs) = common::gcs::gcs() else {
        return;
    };
    let bucket = gcs.unique_bucket("conformance");
    let ws = Workspace::new();
    conformance(&ws, &format!("gs://{bucket}/some/prefix"), &gcs.env());
    // What the suite wrote is there for another client too (listed past the first 1000).
    let listed = gcs.list(&bucket, "some/prefix/many/");
    assert_eq!(listed.len(), 2499, "objects left under many/ (one deleted)");
}

#[test]
fn gcs_copy_moves_a_large_object_and_more_than_a_page_of_keys_both_ways() {
    let Some(gcs) = common::gcs::gcs() else {
        return;
    };
    let bucket = gcs.unique_bucket("copy");
    let ws = Workspace::new();
    // 20 MiB + a bit: above the 16 MiB multipart threshold, and with a part size that is not a
    // multiple of 256 KiB, so chunks are cut and carried over between parts.
    let large = common::noise((20 << 20) + 12345, 7);
    std::fs::create_dir_all(ws.join("src/big")).unwrap();
    std::fs::write(ws.join("src/big/large.bin"), &large).unwrap();
    for i in 0..1100 {
        ws.write(&format!("src/small/k{i:05}"), &format!("small object {i}"));
    }
    ws.write(
        "copy.lua",
        r#"
local p = ferry.params{
  {name = "src", type = "string", required = true},
  {name = "dst", type = "string", required = true},
  {name = "back", type = "string", required = true},
}
local src = ferry.store.open(p.src)
local dst = ferry.store.open(p.dst)
local r = ferry.store.copy(src, dst, {concurrency = 16, part_size = 5500000, verify = "size"})
assert(r.copied == 1101 and r.failed == 0, ferry.json.encode(r))
local again = ferry.store.copy(src, dst, {compare = "size"})
assert(again.copied == 0 and again.skipped == 1101, ferry.json.encode(again))
local n = 0
for _ in dst:list("small") do n = n + 1 end
assert(n == 1100, "listed " .. n .. " small objects")
assert(dst:head("big/large.bin").size == 20 * 1048576 + 12345)
local back = ferry.store.open(p.back, {create = true})
local rb = ferry.store.copy(dst, back, {concurrency = 16, verify = "checksum"})
assert(rb.copied == 1101 and rb.failed == 0, ferry.json.encode(rb))
print("gcs copy ok")
"#,
    );
    let mut f = ws.ferry().args([
        "run",
        "./copy.lua",
        "-q",
        "-p",
        &format!("src=file://{}", ws.join("src").display()),
        "-p",
        &format!("dst=gs://{bucket}/base"),
        "-p",
        &format!("back=file://{}", ws.join("back").display()),
    ]);
    gcs.apply_env(&mut f.cmd);
    f.run().code(0).stdout_has("gcs copy ok");
    // Checked with the emulator's own API, not ferry's client.
    let names = gcs.list(&bucket, "base/");
    assert_eq!(names.len(), 1101);
    assert_eq!(
        gcs.get(&bucket, "base/small/k01099").unwrap(),
        b"small object 1099"
    );
    let stored = gcs.get(&bucket, "base/big/large.bin").unwrap();
    assert_eq!(stored.len(), large.len());
    assert!(stored == large, "the large object's bytes differ");
    assert!(std::fs::read(ws.join("back/big/large.bin")).unwrap() == large);
    assert_eq!(ws.read("back/small/k00042"), "small object 42");
}

#[test]
fn gcs_missing_bucket_fails_at_open_and_emulator_options_work() {
    let Some(gcs) = common::gcs::gcs() else {
        return;
    };
    let bucket = gcs.unique_bucket("open");
    let ws = Workspace::new();
    ws.write(
        "open.lua",
        &format!(
            r#"
local ok, err = pcall(ferry.store.open, "gs://ferry-no-such-bucket/x")
assert(not ok and err.kind == "not_found", err.kind .. ": " .. err.message)
assert(err.message:find("gs://ferry-no-such-bucket/x", 1, true), err.message)
assert(err.message:find("bucket 'ferry-no-such-bucket' does not exist", 1, true), err.message)
-- The endpoint as options instead of STORAGE_EMULATOR_HOST.
local s = ferry.store.open("gs://{bucket}/opt", {{endpoint = {endpoint:?}, anonymous = true}})
s:put("a b/c+d.txt", "odd name")
assert(s:get("a b/c+d.txt") == "odd name")
print("open ok")
"#,
            endpoint = gcs.endpoint
        ),
    );
    // No STORAGE_EMULATOR_HOST for the second open: the options alone must do.
    let mut f = ws.ferry().args(["run", "./open.lua", "-q"]);
    gcs.apply_env(&mut f.cmd);
    f.cmd.env_remove("STORAGE_EMULATOR_HOST");
    f.cmd.env("GOOGLE_BASE_URL", &gcs.endpoint);
    f.cmd.env("GOOGLE_SKIP_SIGNATURE", "true");
    let out = f.run();
    out.code(0).stdout_has("open ok");
    assert_eq!(
        gcs.get(&bucket, "opt/a b/c+d.txt").as_deref(),
        Some(&b"odd name"[..])
    );
}

#[test]
fn gcs_bad_names_unreachable_endpoints_and_plain_http_credentials_fail_at_once() {
    let ws = Workspace::new();
    ws.write(
        "bad.lua",
        r#"
local function fails(url, opts, kind, text)
  local ok, err = pcall(ferry.store.open, url, opts)
  assert(not ok, url .. " opened")
  assert(err.kind == kind, url .. ": kind " .. err.kind .. ": " .. err.message)
  assert(err.message:find(text, 1, true), url .. ": " .. err.message)
  return err
end
fails("gs://Bad_Bucket/x", nil, "invalid_input", "not a GCS bucket name")
fails("gs://ab/x", nil, "invalid_input", "not a GCS bucket name")
fails("gs://bucket/x", {endpoint = "ftp://h"}, "invalid_input", "not an http(s) URL")
fails("gs://bucket/x", {colour = "blue"}, "invalid_input", "unknown option 'colour'")
fails("gs://bucket/x", {list_page_size = "5000"}, "invalid_input", "list_page_size")
fails("gs://bucket/x", {endpoint = "http://127.0.0.1:9", bearer_token = "tok-secret-123"},
  "invalid_input", "plain HTTP")
local e = fails("gs://bucket/x", {endpoint = "http://127.0.0.1:9", anonymous = true},
  "unavailable", "gs://bucket/x")
assert(e.message:find("127.0.0.1:9", 1, true), "the endpoint is not named: " .. e.message)
print("bad gcs ok")
"#,
    );
    let mut f = ws.ferry().args(["run", "./bad.lua", "-q"]);
    for k in common::gcs::UNSET_ENV {
        f.cmd.env_remove(k);
    }
    let out = f.run();
    out.code(0).stdout_has("bad gcs ok");
    assert!(!out.stderr.contains("tok-secret-123"));
}
