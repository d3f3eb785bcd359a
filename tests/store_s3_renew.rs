//! `store:set_credentials{...}`: an S3 store opened with temporary credentials takes new ones in
//! place, and a multipart upload already under way goes on with them. Against the in-process
//! s3s-fs server, whose [`common::s3::Sts`] refuses expired session credentials with 400
//! `ExpiredToken` as AWS does. The upload is held by the server right after its
//! CreateMultipartUpload was accepted with the first credentials; those are renewed in place, then
//! made to expire, then the upload is let go: its parts and CompleteMultipartUpload must be signed
//! with the new ones. The same run without the renewal fails with ExpiredToken, which shows the
//! hold really puts the expiry mid-upload.

use crate::common;

use std::time::{Duration, Instant};

use common::Workspace;
use common::s3::{S3Server, TempCred, UNSET_ENV};

const BUCKET: &str = "renew";
const KEY: &str = "base/big/Data.db";

const SCRIPT: &str = r#"
local s = ferry.store.open("s3://renew/base", {access_key_id = os.getenv("T_ID"),
  secret_access_key = os.getenv("T_SECRET"), session_token = os.getenv("T_TOKEN")})
local up = ferry.task.spawn(function() s:put_file(os.getenv("T_SRC"), "big/Data.db") end)
ferry.task.poll{every = 0.05, timeout = 300, describe = "new credentials",
  check = function() return ferry.fs.exists(os.getenv("T_RENEW")) end}
if os.getenv("T_IN_PLACE") == "1" then
  s:set_credentials(ferry.json.decode(ferry.fs.read(os.getenv("T_RENEW"))))
end
ferry.fs.write(os.getenv("T_SET"), "set")
up:join()
-- a store that is not S3 with keys has nothing to renew: a clear refusal
local ok, err = pcall(function() ferry.store.open("memory://renew-x"):set_credentials{} end)
assert(not ok and tostring(err):find("set_credentials needs an S3 store"), tostring(err))
print("uploaded")
"#;

struct Run {
    code: i32,
    stderr: String,
    first: TempCred,
    second: TempCred,
    data: Vec<u8>,
}

fn run(s3: &S3Server, in_place: bool) -> Run {
    let ws = Workspace::new();
    let script = ws.write("renew.lua", SCRIPT);
    // 20 MiB: above ferry's 16 MiB single-PUT limit, so CreateMultipartUpload, parts, Complete.
    let data: Vec<u8> = (0..20u32 << 20).map(|i| (i * 7 % 251) as u8).collect();
    let src = ws.join("Data.db");
    std::fs::write(&src, &data).unwrap();
    let first = s3.sts.issue(Duration::from_secs(3600));
    s3.hold("?uploads");
    let mut f = ws.ferry().args(["run", script.to_str().unwrap()]);
    for k in UNSET_ENV
        .iter()
        .chain(&["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"])
    {
        f.cmd.env_remove(k);
    }
    f = f
        .env("AWS_ENDPOINT_URL", &s3.endpoint)
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_REGION", common::s3::REGION)
        .env("T_ID", &first.access_key)
        .env("T_SECRET", &first.secret_key)
        .env("T_TOKEN", &first.session_token)
        .env("T_SRC", src.to_str().unwrap())
        .env("T_RENEW", ws.join("renew.json").to_str().unwrap())
        .env("T_SET", ws.join("set").to_str().unwrap())
        .env("T_IN_PLACE", if in_place { "1" } else { "0" });
    f.cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = f.cmd.spawn().unwrap();
    let wait = |what: &str, done: &dyn Fn() -> bool, child: &mut std::process::Child| {
        let deadline = Instant::now() + Duration::from_secs(300);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            if let Some(st) = child.try_wait().unwrap() {
                panic!("ferry ended ({st}) before {what}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    wait(
        "the held CreateMultipartUpload",
        &|| s3.held() == 1,
        &mut child,
    );
    let second = s3.sts.issue(Duration::from_secs(3600));
    let renew = serde_json::json!({"access_key_id": second.access_key,
        "secret_access_key": second.secret_key, "session_token": second.session_token});
    std::fs::write(ws.join("renew.json.tmp"), renew.to_string()).unwrap();
    std::fs::rename(ws.join("renew.json.tmp"), ws.join("renew.json")).unwrap();
    wait("the renewal", &|| ws.join("set").exists(), &mut child);
    s3.sts.expire(&first.access_key);
    s3.release();
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout),
        first,
        second,
        data,
    }
}

/// The access key of a request's SigV4 `Authorization` header.
fn signed_with(headers: &[(String, String)]) -> Option<String> {
    let auth = headers.iter().find(|(k, _)| k == "authorization")?;
    Some(
        auth.1
            .split("Credential=")
            .nth(1)?
            .split('/')
            .next()?
            .to_string(),
    )
}

#[test]
fn a_multipart_upload_goes_on_with_credentials_renewed_in_place() {
    let s3 = S3Server::start();
    s3.create_bucket(BUCKET);
    let r = run(&s3, true);
    assert_eq!(r.code, 0, "{}\n{:#?}", r.stderr, s3.request_log());
    assert!(r.stderr.contains("uploaded"), "{}", r.stderr);
    assert_eq!(
        s3.read_file(BUCKET, KEY).as_deref(),
        Some(r.data.as_slice()),
        "the object is not the file"
    );
    assert_eq!(s3.sts.expired_refusals(), 0, "a request used expired keys");
    let seen = s3.requests_seen();
    let create = seen
        .iter()
        .find(|q| q.method == "POST" && q.uri.contains("?uploads"))
        .expect("a CreateMultipartUpload");
    assert_eq!(create.status, 200);
    assert_eq!(
        signed_with(&create.headers).as_deref(),
        Some(r.first.access_key.as_str())
    );
    let parts: Vec<_> = seen
        .iter()
        .filter(|q| q.method == "PUT" && q.uri.contains("partNumber="))
        .collect();
    assert!(parts.len() >= 2, "not a multipart upload: {parts:?}");
    let complete = seen
        .iter()
        .find(|q| q.method == "POST" && q.uri.contains("uploadId="))
        .expect("a CompleteMultipartUpload");
    for q in parts.iter().copied().chain([complete]) {
        assert_eq!(q.status, 200, "{} {}", q.method, q.uri);
        assert_eq!(
            signed_with(&q.headers).as_deref(),
            Some(r.second.access_key.as_str()),
            "{} {} not signed with the renewed keys",
            q.method,
            q.uri
        );
    }
    for secret in [
        &r.first.secret_key,
        &r.first.session_token,
        &r.second.secret_key,
    ] {
        assert!(
            !r.stderr.contains(secret.as_str()),
            "a secret in the output"
        );
    }
}

#[test]
fn without_the_renewal_the_same_upload_fails_with_expired_token() {
    let s3 = S3Server::start();
    s3.create_bucket(BUCKET);
    let r = run(&s3, false);
    assert_ne!(r.code, 0, "{}", r.stderr);
    // (ferry's message names the failed abort: object_store's WriteMultipart::finish returns the
    // abort's error when aborting fails too, so the server's own count is the check here)
    assert!(r.stderr.contains("big/Data.db"), "{}", r.stderr);
    assert!(
        s3.sts.expired_refusals() >= 1,
        "nothing was refused as expired: {:#?}",
        s3.request_log()
    );
    assert_eq!(s3.read_file(BUCKET, KEY), None, "a half-written object");
}
