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
