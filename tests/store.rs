//! The store conformance suite (tests/lua/store_conformance.lua) run against every backend, and
//! the copy engine's failure handling.

mod common;

use common::Workspace;

fn conformance(ws: &Workspace, url: &str, env: &[(String, String)]) {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lua/store_conformance.lua");
    std::fs::create_dir_all(ws.join("scratch")).unwrap();
    let mut f = ws.ferry().args([
        "run",
        script.to_str().unwrap(),
        "-q",
        "-p",
        &format!("url={url}"),
        "-p",
        &format!("scratch={}", ws.join("scratch").display()),
    ]);
    // The machine's AWS_CA_BUNDLE, profiles and proxies must not reach a plain-HTTP test server.
    for k in common::s3::UNSET_ENV {
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
