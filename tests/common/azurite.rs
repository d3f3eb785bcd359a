//! Azurite (the Azure Storage emulator) for integration tests.
//!
//! Azurite is a separate process started by `tests/setup/azurite.sh` (run by `tests/run.sh`),
//! which exports `FERRY_TEST_AZURITE=http://127.0.0.1:10000/devstoreaccount1`. [`azurite()`] finds
//! it: from that variable, or else by probing 127.0.0.1:10000. When neither gives a running
//! Azurite it prints why on stderr and returns `None`, and the test should return early:
//!
//! ```ignore
//! let Some(az) = azurite() else { return }; // reason already printed
//! let container = az.unique_container("copy");
//! let mut ferry = Ferry::new();
//! az.apply_env(&mut ferry.cmd);
//! ferry.args(["run", "tree-copy", &format!("az://{container}/src"), "..."]).run().code(0);
//! ```
//!
//! All tests share one Azurite, so use [`Azurite::unique_container`] rather than fixed names.
//! When `FERRY_TEST_AZURITE` is set but nothing answers there, [`azurite()`] panics: a configured
//! emulator that is down is a failure, not a skip.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::Command;
use std::time::Duration;

use sha2::{Digest, Sha256};

/// The well-known development account of Azurite and the legacy Storage Emulator.
pub const ACCOUNT: &str = "devstoreaccount1";
/// Its well-known key (base64).
pub const KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
/// The endpoint used when `FERRY_TEST_AZURITE` is unset.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:10000/devstoreaccount1";
/// The REST API version sent by [`Azurite`]'s own requests (Azurite runs with
/// `--skipApiVersionCheck`, so newer client versions are accepted as well).
const API_VERSION: &str = "2021-08-06";

/// Azure variables to remove from a child process so that only [`Azurite::env`] applies.
pub const UNSET_ENV: &[&str] = &[
    "AZURE_STORAGE_ACCOUNT_NAME",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_ACCESS_KEY",
    "AZURE_STORAGE_MASTER_KEY",
    "AZURE_STORAGE_KEY",
    "AZURE_STORAGE_SAS_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_STORAGE_TOKEN",
    "AZURE_STORAGE_ENDPOINT",
    "AZURE_STORAGE_USE_EMULATOR",
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_TENANT_ID",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_USE_AZURE_CLI",
    "AZURE_CONTAINER_NAME",
    "AZURITE_BLOB_STORAGE_URL",
    "REQUESTS_CA_BUNDLE",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
];

#[derive(Debug, Clone)]
pub struct Azurite {
    /// Account URL, path-style: `http://127.0.0.1:10000/devstoreaccount1`.
    pub endpoint: String,
    /// Blob service URL without the account: `http://127.0.0.1:10000`.
    pub blob_url: String,
    /// `127.0.0.1:10000`.
    pub host_port: String,
    pub account: String,
    /// Base64 account key.
    pub key: String,
}

/// The running Azurite, or `None` (reason printed on stderr) when there is none.
pub fn azurite() -> Option<Azurite> {
    let configured = std::env::var("FERRY_TEST_AZURITE")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let endpoint = configured
        .clone()
        .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
    let url = url::Url::parse(endpoint.trim_end_matches('/'))
        .unwrap_or_else(|e| panic!("FERRY_TEST_AZURITE={endpoint:?} is not a URL: {e}"));
    let host = url.host_str().expect("Azurite URL host").to_string();
    let port = url.port_or_known_default().expect("Azurite URL port");
    let account = url
        .path_segments()
        .and_then(|mut s| s.next().map(str::to_string))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| ACCOUNT.to_string());
    let az = Azurite {
        endpoint: format!("{}://{host}:{port}/{account}", url.scheme()),
        blob_url: format!("{}://{host}:{port}", url.scheme()),
        host_port: format!("{host}:{port}"),
        account,
        key: KEY.to_string(),
    };
    match az.probe() {
        Ok(()) => Some(az),
        Err(why) => {
            if configured.is_some() {
                panic!(
                    "FERRY_TEST_AZURITE={endpoint} is set but Azurite does not answer there: {why}"
                );
            }
            eprintln!(
                "SKIPPED: no Azurite ({why}); FERRY_TEST_AZURITE is unset and nothing answers on \
                 {}. Run `bash tests/setup/azurite.sh` (or tests/run.sh) to install and start it.",
                az.host_port
            );
            None
        }
    }
}

impl Azurite {
    /// Checks that an Azurite blob service answers (an authenticated list of containers).
    fn probe(&self) -> Result<(), String> {
        let resp = self
            .request("GET", "", &[("comp", "list")], &[], b"")
            .map_err(|e| format!("{}: {e}", self.host_port))?;
        if resp.status == 200 {
            Ok(())
        } else {
            Err(format!(
                "{} answered {} to an authenticated container list: {}",
                self.host_port,
                resp.status,
                resp.body_text()
            ))
        }
    }

    /// Creates a container (already existing is fine). Panics on any other failure.
    pub fn create_container(&self, name: &str) {
        let r = self
            .request("PUT", name, &[("restype", "container")], &[], b"")
            .unwrap_or_else(|e| panic!("create container {name}: {e}"));
        assert!(
            r.status == 201 || r.status == 409,
            "create container {name}: status {}: {}",
            r.status,
            r.body_text()
        );
    }

    /// Creates a container with a fresh name `PREFIX-<random>` (lower case, ≤ 63 chars).
    pub fn unique_container(&self, prefix: &str) -> String {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let mut name = format!("{}-{}", prefix.to_ascii_lowercase(), &id[..12]);
        name.truncate(63);
        self.create_container(&name);
        name
    }

    /// Deletes a container (missing is fine).
    pub fn delete_container(&self, name: &str) {
        let r = self
            .request("DELETE", name, &[("restype", "container")], &[], b"")
            .unwrap_or_else(|e| panic!("delete container {name}: {e}"));
        assert!(
            r.status == 202 || r.status == 404,
            "delete container {name}: status {}: {}",
            r.status,
            r.body_text()
        );
    }

    /// Environment for a child process (object_store conventions): the emulator account and key,
    /// emulator mode, the blob URL, plain HTTP. Remove [`UNSET_ENV`] too (or use `apply_env`).
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("AZURE_STORAGE_ACCOUNT_NAME".into(), self.account.clone()),
            ("AZURE_STORAGE_ACCOUNT_KEY".into(), self.key.clone()),
            ("AZURE_STORAGE_USE_EMULATOR".into(), "true".into()),
            ("AZURITE_BLOB_STORAGE_URL".into(), self.blob_url.clone()),
            ("AZURE_ALLOW_HTTP".into(), "true".into()),
        ]
    }

    /// Removes [`UNSET_ENV`] from `cmd` and sets [`Azurite::env`].
    pub fn apply_env(&self, cmd: &mut Command) {
        for k in UNSET_ENV {
            cmd.env_remove(k);
        }
        for (k, v) in self.env() {
            cmd.env(k, v);
        }
    }

    /// An object_store client on `container` (account key auth).
    pub fn store(&self, container: &str) -> object_store::azure::MicrosoftAzure {
        self.store_builder(container)
            .build()
            .expect("MicrosoftAzure client")
    }

    /// An object_store client on `container` reaching Azurite through `blob_url` (for example a
    /// fault proxy's endpoint, `http://127.0.0.1:PORT`, without the account).
    pub fn store_via(
        &self,
        container: &str,
        blob_url: &str,
    ) -> object_store::azure::MicrosoftAzure {
        self.store_builder_via(container, blob_url)
            .build()
            .expect("MicrosoftAzure client")
    }

    /// The builder behind [`Azurite::store`], to adjust. object_store's emulator mode (which
    /// works around Azurite quirks) takes its URL from `AZURITE_BLOB_STORAGE_URL` or
    /// `http://127.0.0.1:10000` only, so it is used when that is where this Azurite is; otherwise
    /// the account URL is given as a plain endpoint.
    pub fn store_builder(&self, container: &str) -> object_store::azure::MicrosoftAzureBuilder {
        self.keyless_builder(container)
            .with_access_key(self.key.clone())
    }

    /// An object_store client on `container` authorized by an account SAS with `permissions`
    /// (see [`Azurite::account_sas`]), not by the key.
    pub fn sas_store(
        &self,
        container: &str,
        permissions: &str,
    ) -> object_store::azure::MicrosoftAzure {
        let pairs: Vec<(String, String)> =
            url::form_urlencoded::parse(self.account_sas(permissions).as_bytes())
                .into_owned()
                .collect();
        self.keyless_builder(container)
            .with_sas_authorization(pairs)
            .build()
            .expect("MicrosoftAzure SAS client")
    }

    /// Like [`Azurite::store_builder`] without any credential (add a SAS, a bearer token...).
    /// In emulator mode object_store falls back to the well-known key when none is added.
    pub fn keyless_builder(&self, container: &str) -> object_store::azure::MicrosoftAzureBuilder {
        let emulator_url = std::env::var("AZURITE_BLOB_STORAGE_URL")
            .unwrap_or_else(|_| "http://127.0.0.1:10000".to_string());
        let b = object_store::azure::MicrosoftAzureBuilder::new();
        let b = if emulator_url.trim_end_matches('/') == self.blob_url {
            b.with_use_emulator(true)
        } else {
            b.with_endpoint(self.endpoint.clone())
        };
        b.with_allow_http(true)
            .with_account(self.account.clone())
            .with_container_name(container)
    }

    /// A builder (account key auth) reaching Azurite through `blob_url`, e.g. a fault proxy's
    /// `http://127.0.0.1:PORT` (no account in it): plain endpoint mode, path-style account URL.
    pub fn store_builder_via(
        &self,
        container: &str,
        blob_url: &str,
    ) -> object_store::azure::MicrosoftAzureBuilder {
        object_store::azure::MicrosoftAzureBuilder::new()
            .with_endpoint(format!(
                "{}/{}",
                blob_url.trim_end_matches('/'),
                self.account
            ))
            .with_allow_http(true)
            .with_account(self.account.clone())
            .with_access_key(self.key.clone())
            .with_container_name(container)
    }

    /// `http://127.0.0.1:10000/devstoreaccount1/CONTAINER`.
    pub fn container_url(&self, container: &str) -> String {
        format!("{}/{container}", self.endpoint)
    }

    /// An account SAS query string (no leading `?`) for the blob service, valid one day, with the
    /// given permissions (e.g. `"rwdlac"`; `"rl"` for read-only).
    pub fn account_sas(&self, permissions: &str) -> String {
        let expiry = (chrono::Utc::now() + chrono::Duration::days(1))
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        let (sv, ss, srt) = ("2020-12-06", "b", "sco");
        // Account SAS string-to-sign for versions >= 2020-12-06 (empty start, IP, protocol and
        // encryption scope; a trailing newline).
        let to_sign = format!(
            "{}\n{permissions}\n{ss}\n{srt}\n\n{expiry}\n\n\n{sv}\n\n",
            self.account
        );
        let sig = base64_encode(&hmac_sha256(&base64_decode(&self.key), to_sign.as_bytes()));
        format!(
            "sv={sv}&ss={ss}&srt={srt}&sp={permissions}&se={}&sig={}",
            pct(&expiry),
            pct(&sig)
        )
    }

    /// An account SAS like [`Azurite::account_sas`] whose expiry (`se`) is `expiry` (any
    /// `chrono` time, past or future), signed with the account key.
    pub fn account_sas_expiring(
        &self,
        permissions: &str,
        expiry: chrono::DateTime<chrono::Utc>,
    ) -> String {
        let expiry = expiry.format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let (sv, ss, srt) = ("2020-12-06", "b", "sco");
        let to_sign = format!(
            "{}\n{permissions}\n{ss}\n{srt}\n\n{expiry}\n\n\n{sv}\n\n",
            self.account
        );
        let sig = base64_encode(&hmac_sha256(&base64_decode(&self.key), to_sign.as_bytes()));
        format!(
            "sv={sv}&ss={ss}&srt={srt}&sp={permissions}&se={}&sig={}",
            pct(&expiry),
            pct(&sig)
        )
    }

    /// A service SAS for one container (`sr=c`), valid until `expiry`, with the given
    /// permissions (`"racwdl"`, `"rl"`...). String-to-sign of version 2020-12-06 as Azurite
    /// checks it (`generateBlobSASSignature20201206` in
    /// dist/src/blob/authentication/IBlobSASSignatureValues.js): sp, st, se,
    /// `/blob/ACCOUNT/CONTAINER`, si, sip, spr, sv, sr, snapshot, ses, rscc, rscd, rsce, rscl,
    /// rsct, one per line.
    pub fn container_sas(
        &self,
        container: &str,
        permissions: &str,
        expiry: chrono::DateTime<chrono::Utc>,
    ) -> String {
        let expiry = expiry.format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let sv = "2020-12-06";
        let to_sign = format!(
            "{permissions}\n\n{expiry}\n/blob/{}/{container}\n\n\n\n{sv}\nc\n\n\n\n\n\n\n",
            self.account
        );
        let sig = base64_encode(&hmac_sha256(&base64_decode(&self.key), to_sign.as_bytes()));
        format!(
            "sv={sv}&sr=c&sp={permissions}&se={}&sig={}",
            pct(&expiry),
            pct(&sig)
        )
    }

    /// An unsigned GET of `/{account}/{path}?{query}` (e.g. a SAS request), as Azurite answers.
    pub fn get_with_query(&self, path: &str, query: &str) -> std::io::Result<RawResponse> {
        let target = format!("/{}/{}?{query}", self.account, path.trim_start_matches('/'));
        let head = format!(
            "GET {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nx-ms-version: {API_VERSION}\r\n\r\n",
            self.host_port
        );
        let addr = self
            .host_port
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| std::io::Error::other("no address"))?;
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        s.write_all(head.as_bytes())?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)?;
        RawResponse::parse(&raw)
    }

    /// `container_url(container)` + `?` + `account_sas(permissions)`.
    pub fn container_sas_url(&self, container: &str, permissions: &str) -> String {
        format!(
            "{}?{}",
            self.container_url(container),
            self.account_sas(permissions)
        )
    }

    /// A SharedKey-signed request to `/{account}/{path}` (path: container[/blob], or empty for
    /// the account). Sync, one connection per request.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<RawResponse> {
        let date = chrono::Utc::now()
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string();
        let uri_path = if path.is_empty() {
            format!("/{}", self.account)
        } else {
            format!("/{}/{}", self.account, path.trim_start_matches('/'))
        };
        let mut ms_headers: Vec<(String, String)> = vec![
            ("x-ms-date".into(), date),
            ("x-ms-version".into(), API_VERSION.into()),
        ];
        let mut other_headers: Vec<(String, String)> = Vec::new();
        for (k, v) in headers {
            let k = k.to_ascii_lowercase();
            if k.starts_with("x-ms-") {
                ms_headers.push((k, v.to_string()));
            } else {
                other_headers.push((k, v.to_string()));
            }
        }
        ms_headers.sort();
        let get = |name: &str| {
            other_headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .unwrap_or("")
        };
        let content_length = if body.is_empty() {
            String::new()
        } else {
            body.len().to_string()
        };
        let mut sorted_query: Vec<(String, &str)> = query
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), *v))
            .collect();
        sorted_query.sort();
        let mut canonical_resource = format!("/{}{uri_path}", self.account);
        for (k, v) in &sorted_query {
            canonical_resource.push_str(&format!("\n{k}:{v}"));
        }
        let canonical_headers: String = ms_headers
            .iter()
            .map(|(k, v)| format!("{k}:{v}\n"))
            .collect();
        let to_sign = format!(
            "{method}\n{}\n{}\n{content_length}\n{}\n{}\n\n{}\n{}\n{}\n{}\n{}\n{canonical_headers}{canonical_resource}",
            get("content-encoding"),
            get("content-language"),
            get("content-md5"),
            get("content-type"),
            get("if-modified-since"),
            get("if-match"),
            get("if-none-match"),
            get("if-unmodified-since"),
            get("range"),
        );
        let sig = base64_encode(&hmac_sha256(&base64_decode(&self.key), to_sign.as_bytes()));

        let qs: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{}={}", pct(k), pct(v)))
            .collect();
        let target = if qs.is_empty() {
            uri_path
        } else {
            format!("{uri_path}?{}", qs.join("&"))
        };
        let mut head = format!(
            "{method} {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\nAuthorization: SharedKey {}:{sig}\r\n",
            self.host_port,
            body.len(),
            self.account
        );
        for (k, v) in ms_headers.iter().chain(other_headers.iter()) {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");

        let addr = self
            .host_port
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| std::io::Error::other("no address"))?;
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        s.write_all(head.as_bytes())?;
        s.write_all(body)?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)?;
        RawResponse::parse(&raw)
    }
}

/// A parsed HTTP/1.1 response (body as received; chunked bodies are decoded).
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    fn parse(raw: &[u8]) -> std::io::Result<RawResponse> {
        let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
        let end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| bad("no HTTP response"))?;
        let head = String::from_utf8_lossy(&raw[..end]);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("bad status line"))?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let mut body = raw[end + 4..].to_vec();
        let chunked = headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
        if chunked {
            body = dechunk(&body);
        }
        Ok(RawResponse {
            status,
            headers,
            body,
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(pos) = data.windows(2).position(|w| w == b"\r\n") {
        let size_str = String::from_utf8_lossy(&data[..pos]);
        let size_hex = size_str.split(';').next().unwrap_or("").trim();
        let Ok(size) = usize::from_str_radix(size_hex, 16) else {
            break;
        };
        if size == 0 {
            break;
        }
        let start = pos + 2;
        let stop = (start + size).min(data.len());
        out.extend_from_slice(&data[start..stop]);
        data = data.get(stop + 2..).unwrap_or(&[]);
    }
    out
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    const BLOCK: usize = 64;
    let mut k = if key.len() > BLOCK {
        Sha256::digest(key).to_vec()
    } else {
        key.to_vec()
    };
    k.resize(BLOCK, 0);
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let mut inner = Sha256::new();
    inner.update(&ipad);
    inner.update(msg);
    let inner = inner.finalize();
    let mut outer = Sha256::new();
    outer.update(&opad);
    outer.update(inner.as_slice());
    outer.finalize().to_vec()
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let Some(v) = B64.iter().position(|&x| x == c) else {
            continue; // '=' padding and whitespace
        };
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn pct(s: &str) -> String {
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

/// The second Azurite of `tests/setup/azurite.sh`: HTTPS with a test CA and `--oauth basic`,
/// the only mode in which Azurite takes bearer tokens.
#[derive(Debug, Clone)]
pub struct OauthAzurite {
    /// `https://127.0.0.1:10010/devstoreaccount1`.
    pub endpoint: String,
    /// PEM of the CA that signed the instance's certificate.
    pub ca_file: String,
    /// PEM of a CA that signed nothing the instance uses.
    pub other_ca_file: String,
}

/// The HTTPS/OAuth Azurite from `FERRY_TEST_AZURITE_OAUTH` and `FERRY_TEST_AZURITE_CA`, or
/// `None` with `SKIPPED: <test>: <why>` printed. Panics when the variables are set but the
/// instance does not answer, and when they are unset under `CI=true` (the setup script makes it
/// on a fresh machine).
pub fn azurite_oauth(test: &str) -> Option<OauthAzurite> {
    let endpoint = std::env::var("FERRY_TEST_AZURITE_OAUTH")
        .ok()
        .filter(|v| !v.is_empty());
    let ca = std::env::var("FERRY_TEST_AZURITE_CA")
        .ok()
        .filter(|v| !v.is_empty());
    let (Some(endpoint), Some(ca_file)) = (endpoint, ca) else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{test}: FERRY_TEST_AZURITE_OAUTH/FERRY_TEST_AZURITE_CA unset under CI=true");
        }
        eprintln!(
            "SKIPPED: {test}: FERRY_TEST_AZURITE_OAUTH and FERRY_TEST_AZURITE_CA are unset \
             (run `bash tests/setup/azurite.sh`, which starts Azurite with HTTPS and --oauth basic)"
        );
        return None;
    };
    let other_ca_file = std::path::Path::new(&ca_file)
        .with_file_name("other-ca.pem")
        .to_string_lossy()
        .into_owned();
    let az = OauthAzurite {
        endpoint: endpoint.trim_end_matches('/').to_string(),
        ca_file,
        other_ca_file,
    };
    let token = az.token(3600, "https://storage.azure.com");
    let out = az
        .curl(&token, "GET", "?comp=list")
        .unwrap_or_else(|e| panic!("{test}: curl: {e}"));
    assert!(
        out.starts_with("200"),
        "{test}: the OAuth Azurite at {} does not answer a bearer list: {out}",
        az.endpoint
    );
    Some(az)
}

fn b64url(data: &[u8]) -> String {
    base64_encode(data)
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_")
}

impl OauthAzurite {
    /// A JWT that Azurite's basic OAuth check accepts (dist/src/blob/authentication/
    /// BlobTokenAuthenticator.js, `authenticateBasic`): `nbf`, `iat` and `exp` present and `now`
    /// between `nbf` and `exp`, `iss` starting with `https://sts.windows.net/`, `aud` one of
    /// `VALID_BLOB_AUDIENCES` (dist/src/blob/utils/constants.js). The signature is not checked
    /// in basic mode, so it is a placeholder. `valid_for` may be negative (an expired token).
    pub fn token(&self, valid_for: i64, audience: &str) -> String {
        let now = chrono::Utc::now().timestamp();
        let header = b64url(br#"{"alg":"RS256","typ":"JWT"}"#);
        let claims = format!(
            r#"{{"aud":"{audience}","iss":"https://sts.windows.net/ab1f708d-50f6-404c-a006-d71b2ac7a606/","iat":{},"nbf":{},"exp":{},"oid":"ferry-test"}}"#,
            now - 7200,
            now - 7200,
            now + valid_for
        );
        format!(
            "{header}.{}.{}",
            b64url(claims.as_bytes()),
            b64url(b"not-checked")
        )
    }

    /// `curl` with the bearer token against `endpoint` + `path_query`; returns
    /// `"<status> <body>"`.
    pub fn curl(&self, token: &str, method: &str, path_query: &str) -> std::io::Result<String> {
        let out = Command::new("curl")
            .args([
                "-s",
                "--max-time",
                "10",
                "--cacert",
                &self.ca_file,
                "-X",
                method,
            ])
            .args(["-H", &format!("Authorization: Bearer {token}")])
            .args(["-H", "x-ms-version: 2021-08-06", "-H", "Content-Length: 0"])
            .args(["-w", "\n%{http_code}"])
            .arg(format!(
                "{}/{}",
                self.endpoint,
                path_query.trim_start_matches('/')
            ))
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
        Ok(format!("{status} {body}"))
    }

    /// Creates a container `PREFIX-<random>` with a bearer token and returns its name.
    pub fn unique_container(&self, prefix: &str) -> String {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let name = format!("{prefix}-{}", &id[..12]);
        let token = self.token(3600, "https://storage.azure.com");
        let out = self
            .curl(&token, "PUT", &format!("{name}?restype=container"))
            .unwrap_or_else(|e| panic!("create container {name}: {e}"));
        assert!(out.starts_with("201"), "create container {name}: {out}");
        name
    }
}
