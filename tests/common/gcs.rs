//! The GCS emulator (fsouza/fake-gcs-server) for integration tests.
//!
//! It is a separate process started by `tests/setup/gcs.sh` (run by `tests/run.sh`), which
//! exports `FERRY_TEST_GCS=http://127.0.0.1:4443`. [`gcs()`] finds it: from that variable, or
//! else by probing 127.0.0.1:4443. When there is none it prints `SKIPPED: ...` and returns
//! `None` (the test returns early) — except when `FERRY_TEST_GCS` is set or `CI=true`, where a
//! missing emulator is a failure (the setup script installs it on a fresh machine).
//!
//! ```ignore
//! let Some(gcs) = gcs() else { return }; // reason already printed
//! let bucket = gcs.unique_bucket("copy");
//! let mut f = ws.ferry().args(["run", "job.lua", "-p", &format!("dst=gs://{bucket}/base")]);
//! gcs.apply_env(&mut f.cmd); // STORAGE_EMULATOR_HOST, no GOOGLE_* from the machine
//! ```
//!
//! Its own requests (bucket creation, independent reads and listings) speak the JSON API over a
//! plain `TcpStream`, not ferry's client, so they check what ferry did rather than repeat it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

/// The endpoint used when `FERRY_TEST_GCS` is unset.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:4443";

/// Variables to remove from a child process so that only [`Gcs::env`] applies.
pub const UNSET_ENV: &[&str] = &[
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GOOGLE_SERVICE_ACCOUNT",
    "GOOGLE_SERVICE_ACCOUNT_PATH",
    "GOOGLE_SERVICE_ACCOUNT_KEY",
    "GOOGLE_BUCKET",
    "GOOGLE_BUCKET_NAME",
    "GOOGLE_BASE_URL",
    "GOOGLE_BEARER_TOKEN",
    "GOOGLE_SKIP_SIGNATURE",
    "SERVICE_ACCOUNT",
    "STORAGE_EMULATOR_HOST",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
];

#[derive(Debug, Clone)]
pub struct Gcs {
    /// `http://127.0.0.1:4443`.
    pub endpoint: String,
    /// `127.0.0.1:4443`.
    pub host_port: String,
}

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("GCS answer is not JSON ({e}): {}", self.text()))
    }
}

/// The running emulator, or `None` (reason printed on stderr) when there is none and that is
/// allowed.
pub fn gcs() -> Option<Gcs> {
    let configured = std::env::var("FERRY_TEST_GCS")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let endpoint = configured
        .clone()
        .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
    let url = url::Url::parse(endpoint.trim_end_matches('/'))
        .unwrap_or_else(|e| panic!("FERRY_TEST_GCS={endpoint:?} is not a URL: {e}"));
    assert_eq!(
        url.scheme(),
        "http",
        "FERRY_TEST_GCS must be http://HOST:PORT"
    );
    let host = url.host_str().expect("GCS URL host").to_string();
    let port = url.port_or_known_default().expect("GCS URL port");
    let g = Gcs {
        endpoint: format!("http://{host}:{port}"),
        host_port: format!("{host}:{port}"),
    };
    match g.probe() {
        Ok(()) => Some(g),
        Err(why) => {
            if configured.is_some() {
                panic!("FERRY_TEST_GCS={endpoint} is set but no GCS emulator answers there: {why}");
            }
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "CI=true and no GCS emulator answers on {} ({why}); tests/setup/gcs.sh \
                     installs and starts one (tests/run.sh runs it)",
                    g.host_port
                );
            }
            eprintln!(
                "SKIPPED: no GCS emulator ({why}); FERRY_TEST_GCS is unset and nothing answers \
                 on {}. Run `bash tests/setup/gcs.sh` (or tests/run.sh) to install and start it.",
                g.host_port
            );
            None
        }
    }
}

impl Gcs {
    fn probe(&self) -> Result<(), String> {
        let r = self
            .request("GET", "/storage/v1/b", &[], b"")
            .map_err(|e| format!("{}: {e}", self.host_port))?;
        if r.status == 200 && r.text().contains("storage#buckets") {
            Ok(())
        } else {
            Err(format!(
                "{} answered {} to GET /storage/v1/b: {}",
                self.host_port,
                r.status,
                r.text()
            ))
        }
    }

    /// Environment for a child ferry: `STORAGE_EMULATOR_HOST` (what Google's client libraries
    /// read for an emulator; ferry then sends no credentials). Remove [`UNSET_ENV`] too.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![("STORAGE_EMULATOR_HOST".into(), self.endpoint.clone())]
    }

    /// Removes [`UNSET_ENV`] from `cmd` and sets [`Gcs::env`].
    pub fn apply_env(&self, cmd: &mut Command) {
        for k in UNSET_ENV {
            cmd.env_remove(k);
        }
        for (k, v) in self.env() {
            cmd.env(k, v);
        }
    }

    /// Creates a bucket (`POST /storage/v1/b`). Panics unless it was created.
    pub fn create_bucket(&self, name: &str) {
        let body = serde_json::json!({ "name": name }).to_string();
        let r = self
            .request(
                "POST",
                "/storage/v1/b",
                &[("Content-Type", "application/json")],
                body.as_bytes(),
            )
            .unwrap_or_else(|e| panic!("create bucket {name}: {e}"));
        assert_eq!(r.status, 200, "create bucket {name}: {}", r.text());
    }

    /// Creates a bucket named `PREFIX-<random>` (lower case, at most 63 characters).
    pub fn unique_bucket(&self, prefix: &str) -> String {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let mut name = format!("{}-{}", prefix.to_ascii_lowercase(), &id[..12]);
        name.truncate(63);
        self.create_bucket(&name);
        name
    }

    /// Uploads an object (`uploadType=media`).
    pub fn put(&self, bucket: &str, key: &str, data: &[u8]) {
        let path = format!(
            "/upload/storage/v1/b/{bucket}/o?uploadType=media&name={}",
            pct(key)
        );
        let r = self
            .request(
                "POST",
                &path,
                &[("Content-Type", "application/octet-stream")],
                data,
            )
            .unwrap_or_else(|e| panic!("put {bucket}/{key}: {e}"));
        assert_eq!(r.status, 200, "put {bucket}/{key}: {}", r.text());
    }

    /// An object's content, or `None` when it does not exist.
    pub fn get(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let path = format!("/storage/v1/b/{bucket}/o/{}?alt=media", pct(key));
        let r = self
            .request("GET", &path, &[], b"")
            .unwrap_or_else(|e| panic!("get {bucket}/{key}: {e}"));
        match r.status {
            200 => Some(r.body),
            404 => None,
            s => panic!("get {bucket}/{key}: status {s}: {}", r.text()),
        }
    }

    /// An object's JSON resource (size, md5Hash, generation...), or `None`.
    pub fn metadata(&self, bucket: &str, key: &str) -> Option<serde_json::Value> {
        let path = format!("/storage/v1/b/{bucket}/o/{}", pct(key));
        let r = self
            .request("GET", &path, &[], b"")
            .unwrap_or_else(|e| panic!("metadata {bucket}/{key}: {e}"));
        match r.status {
            200 => Some(r.json()),
            404 => None,
            s => panic!("metadata {bucket}/{key}: status {s}: {}", r.text()),
        }
    }

    /// All object names under `prefix`, following `nextPageToken` (pages of 1000).
    pub fn list(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut path = format!(
                "/storage/v1/b/{bucket}/o?maxResults=1000&prefix={}",
                pct(prefix)
            );
            if let Some(t) = &token {
                path.push_str(&format!("&pageToken={}", pct(t)));
            }
            let r = self
                .request("GET", &path, &[], b"")
                .unwrap_or_else(|e| panic!("list {bucket}/{prefix}: {e}"));
            assert_eq!(r.status, 200, "list {bucket}/{prefix}: {}", r.text());
            let v = r.json();
            for item in v["items"].as_array().into_iter().flatten() {
                names.push(item["name"].as_str().expect("name").to_string());
            }
            token = v["nextPageToken"]
                .as_str()
                .filter(|t| !t.is_empty())
                .map(str::to_string);
            if token.is_none() {
                return names;
            }
        }
    }

    /// One HTTP/1.0 request (`path` with its query), one connection.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<Response> {
        let mut s = TcpStream::connect(&self.host_port)?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut head = format!(
            "{method} {path} HTTP/1.0\r\nHost: {}\r\nContent-Length: {}\r\n",
            self.host_port,
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes())?;
        s.write_all(body)?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)?;
        let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
        let end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| bad("no HTTP response"))?;
        let text = String::from_utf8_lossy(&raw[..end]).into_owned();
        let mut lines = text.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("bad status line"))?;
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Ok(Response {
            status,
            headers,
            body: raw[end + 4..].to_vec(),
        })
    }
}

/// Percent-encodes all but RFC 3986 unreserved characters.
pub fn pct(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
