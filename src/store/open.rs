//! Opening a store from a URL and options: `file:///abs/path`, `memory://name`, `s3://bucket/prefix`,
//! `gs://bucket/prefix`, `az://container/prefix`, and Azure blob URLs with a SAS query
//! (`https://ACCOUNT.blob.core.windows.net/container/prefix?sv=...`, or path-style
//! `http://127.0.0.1:10000/ACCOUNT/container/prefix?sv=...` for emulators). Credentials come from
//! the options or each cloud's usual environment variables. Opening checks the store at once
//! (one listing request), so a missing bucket or a rejected credential fails here, not mid-copy.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::prefix::PrefixStore;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, RetryConfig};

mod azure;
mod azure_errors;
#[cfg(test)]
mod fuzz;
mod gcs;
mod no_answer;
mod s3;
pub mod s3_acl;
pub mod s3_credentials;

use s3_credentials::UpdatableAwsCredentials;

use super::{Backend, Store};
use crate::runtime::error::{ErrorKind, FerryError, Result};
use crate::runtime::redact::add_secret;

/// Options given next to the URL (string values; `true`/`false` for switches).
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    pub values: BTreeMap<String, String>,
    /// Create a missing local folder instead of failing.
    pub create: bool,
    /// Skip the check request at open.
    pub no_probe: bool,
}

/// Option names whose values are secrets (masked in every output).
const SECRET_KEYS: &[&str] = &[
    "secret_access_key",
    "session_token",
    "access_key",
    "sas",
    "sas_token",
    "service_account_key",
    "bearer_token",
    "client_secret",
    "sse_c_key",
    "sse_customer_key_base64",
    "aws_sse_customer_key_base64",
];

fn memory_stores() -> &'static Mutex<HashMap<String, Arc<InMemory>>> {
    static M: OnceLock<Mutex<HashMap<String, Arc<InMemory>>>> = OnceLock::new();
    M.get_or_init(|| Mutex::new(HashMap::new()))
}

fn retry_config() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            base: 2.0,
        },
        max_retries: 3,
        retry_timeout: Duration::from_secs(60),
    }
}

/// The client options of S3, Azure and GCS stores: the `timeout` and `connect_timeout` of
/// [`timeouts`], a pool big enough for the copy engine's concurrency, and `allow_http`.
fn client_options(opts: &OpenOptions, display: &str) -> Result<ClientOptions> {
    let (connect_timeout, timeout) = timeouts(opts, display)?;
    let mut c = ClientOptions::new()
        .with_connect_timeout(connect_timeout)
        .with_timeout(timeout)
        .with_pool_max_idle_per_host(256);
    if opt_bool(opts, "allow_http") {
        c = c.with_allow_http(true);
    }
    Ok(c)
}

/// The default limit of a whole request (connect, send, answer, body).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
/// The default limit of opening a connection.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The `connect_timeout` and `timeout` options (`(connect, whole request)`): a number of seconds
/// or a duration string ("2s", "1m30s"); 10 s and 300 s when not given. A request that runs past
/// `timeout` is cut and, when repeating it is safe, retried (object_store's `RetryConfig`).
fn timeouts(opts: &OpenOptions, display: &str) -> Result<(Duration, Duration)> {
    let get = |k: &str, default: Duration| match opts.values.get(k) {
        None => Ok(default),
        Some(v) => crate::runtime::params::parse_duration(v)
            .ok()
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| {
                bad(display, format!("{k} must be a duration, not '{v}'"))
                    .hint("a number of seconds or a duration: 30, \"30s\", \"2m\"")
            }),
    };
    Ok((
        get("connect_timeout", DEFAULT_CONNECT_TIMEOUT)?,
        get("timeout", DEFAULT_TIMEOUT)?,
    ))
}

/// `inner` with its timeouts naming the host they waited for ([`no_answer`]).
fn naming_timeouts<C: object_store::client::HttpConnector>(
    inner: C,
    opts: &OpenOptions,
    display: &str,
) -> Result<no_answer::NoAnswerConnector<C>> {
    let (connect, request) = timeouts(opts, display)?;
    Ok(no_answer::NoAnswerConnector {
        inner,
        limits: no_answer::Limits { connect, request },
    })
}

fn opt_bool(opts: &OpenOptions, key: &str) -> bool {
    opts.values
        .get(key)
        .is_some_and(|v| matches!(v.as_str(), "true" | "1" | "yes"))
}

fn bad(url: &str, msg: impl std::fmt::Display) -> FerryError {
    FerryError::new(ErrorKind::InvalidInput, format!("store {url}: {msg}"))
}

/// Splits `bucket/some/prefix` into the bucket and the prefix.
fn bucket_and_prefix(u: &url::Url) -> (String, String) {
    let bucket = u.host_str().unwrap_or("").to_string();
    let prefix = u.path().trim_matches('/').to_string();
    (bucket, prefix)
}

fn with_prefix(store: Arc<dyn ObjectStore>, prefix: &str) -> Arc<dyn ObjectStore> {
    if prefix.is_empty() {
        store
    } else {
        Arc::new(PrefixStore::new(store, prefix))
    }
}

/// Opens a store. The returned handle's keys are relative to the URL's prefix.
pub async fn open(url_text: &str, opts: &OpenOptions) -> Result<Store> {
    Ok(open_updatable(url_text, opts).await?.0)
}

/// [`open`], plus the credentials of an S3 store opened with `access_key_id` and
/// `secret_access_key`: replacing them ([`UpdatableAwsCredentials::set`]) changes what every
/// later request of the store is signed with, uploads under way included.
pub async fn open_updatable(
    url_text: &str,
    opts: &OpenOptions,
) -> Result<(Store, Option<Arc<UpdatableAwsCredentials>>)> {
    let mut s3_credentials = None;
    for k in SECRET_KEYS {
        if let Some(v) = opts.values.get(*k) {
            add_secret(v);
        }
    }
    // The WHATWG parser drops tabs and line breaks inside a URL without a word, so
    // `s3://bucket/pre<newline>fix` would name another prefix than the one shown; a byte order
    // mark or zero-width space (pasted from a document) gives a baffling parse error.
    let invisible = |c: char| c.is_control() || matches!(c, '\u{feff}' | '\u{200b}'..='\u{200f}');
    if let Some((i, c)) = url_text
        .trim()
        .chars()
        .enumerate()
        .find(|(_, c)| invisible(*c))
    {
        // Likely two pasted lines: not shown beyond its scheme, either could hold a secret.
        let scheme = url_text
            .trim()
            .split_once("://")
            .filter(|(s, _)| {
                s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
            })
            .map_or(String::new(), |(s, _)| format!("{s}://"));
        return Err(bad(
            &format!("{scheme}..."),
            format!(
                "the URL holds an invisible character ({c:?}) at character {}",
                i + 1
            ),
        )
        .hint("a URL is one line of visible text: check for a pasted line break, tab or BOM"));
    }
    let u = url::Url::parse(url_text).map_err(|e| {
        bad(&unparsed_display(url_text), format!("not a URL ({e})")).hint(
            "store URLs look like file:///abs/path, s3://bucket/prefix, gs://bucket/prefix, \
             az://container/prefix or memory://name",
        )
    })?;
    // The URL without its query (which may hold a SAS signature) or password.
    let mut shown = u.clone();
    shown.set_query(None);
    let _ = shown.set_password(None);
    // Without an authority (`s3:user:pw@bucket`, an unknown `f:ile://...`) the password is in
    // the path, where the parser does not see it: mask it as for an unparsable URL.
    let display = if u.cannot_be_a_base() {
        unparsed_display(url_text)
    } else {
        shown.to_string()
    };
    let store = match u.scheme() {
        "file" => open_file(&u, &display, opts)?,
        "memory" => {
            let name = format!("{}{}", u.host_str().unwrap_or(""), u.path());
            let mem = memory_stores()
                .lock()
                .map_err(|_| {
                    FerryError::new(ErrorKind::Internal, "memory store registry poisoned")
                })?
                .entry(name)
                .or_insert_with(|| Arc::new(InMemory::new()))
                .clone();
            Store {
                inner: mem,
                display: display.clone(),
                backend: Backend::Memory,
                uploads: None,
            }
        }
        "s3" | "s3a" => {
            let (store, creds, acl) = s3::open_s3(&u, &display, opts)?;
            s3_credentials = creds;
            // acl_from_bucket: the bucket's ACL is read once, before anything is written.
            if let Some((state, bucket_endpoint)) = acl {
                s3_acl::fetch_bucket_grants(&state, &bucket_endpoint, &display).await?;
            }
            store
        }
        "gs" => gcs::open_gcs(&u, &display, opts)?,
        "az" | "azure" | "abfs" => open_azure(&u, &display, opts, None)?,
        "http" | "https" if looks_like_azure(&u) => open_azure_url(&u, &display, opts)?,
        other => {
            return Err(bad(
                &unparsed_display(url_text),
                format!("unknown scheme '{other}'"),
            )
            .hint(
                "supported: file://, memory://, s3://, gs://, az://, and Azure blob https URLs",
            ));
        }
    };
    let store = match opts.values.get("layout").map(String::as_str) {
        None | Some("flat") => store,
        Some("seafile-fs") | Some("split2") => Store {
            inner: Arc::new(super::layout::Split2::new(store.inner)),
            // Its keys in the bucket are rewritten: not the copy's keys (s3_uploads).
            uploads: None,
            ..store
        },
        Some(other) => {
            return Err(bad(&display, format!("unknown layout '{other}'"))
                .hint("layouts: flat, seafile-fs"));
        }
    };
    if !opts.no_probe && store.backend != Backend::Memory {
        probe(&store, opts).await?;
    }
    Ok((store, s3_credentials))
}

/// A URL that does not parse, shown without what may be a password (`user:pw@`, the password
/// possibly holding an unencoded `?`, `#` or `/`) or a SAS (the query): nothing registered them
/// as secrets yet. The query goes, and what follows the scheme's `//` up to the last `@` (all of
/// it when an `@` follows the `?`).
fn unparsed_display(url_text: &str) -> String {
    let q = url_text.find(['?', '#']).unwrap_or(url_text.len());
    let (base, tail) = url_text.split_at(q);
    let mask_from = |upto: usize| {
        base[..upto]
            .find("//")
            .map(|i| i + 2)
            .filter(|&st| !base[..st].contains('@'))
            .unwrap_or(0)
    };
    let mut shown = if tail.contains('@') {
        format!("{}***", &base[..mask_from(base.len())])
    } else if let Some(at) = base.rfind('@') {
        format!("{}***@{}", &base[..mask_from(at)], &base[at + 1..])
    } else {
        base.to_string()
    };
    if !tail.is_empty() {
        shown.push_str("?...");
    }
    shown
}

fn looks_like_azure(u: &url::Url) -> bool {
    let host = u.host_str().unwrap_or("");
    host.ends_with(".blob.core.windows.net") || u.query_pairs().any(|(k, _)| k == "sig")
}

fn open_file(u: &url::Url, display: &str, opts: &OpenOptions) -> Result<Store> {
    let path = u
        .to_file_path()
        .map_err(|_| bad(display, "file URLs need an absolute path: file:///abs/path"))?;
    if !path.exists() {
        if opts.create {
            std::fs::create_dir_all(&path)
                .map_err(|e| FerryError::io(format!("creating {}", path.display()), &e))?;
        } else {
            return Err(FerryError::new(
                ErrorKind::NotFound,
                format!("store {display}: folder {} does not exist", path.display()),
            )
            .hint("check the path, or open with {create = true} to create it"));
        }
    }
    if !path.is_dir() {
        return Err(bad(display, format!("{} is not a folder", path.display())));
    }
    let fs = LocalFileSystem::new_with_prefix(&path).map_err(|e| bad(display, e))?;
    Ok(Store {
        inner: file_durability(fs, display, opts)?,
        display: display.to_string(),
        backend: Backend::File,
        uploads: None,
    })
}

/// The `file_mode` (octal, e.g. "0600": new files get exactly this mode) and `fsync` (flush
/// file and folder before a write returns) options of `file://` stores; see
/// [`super::durable::ModeLocal`].
fn file_durability(
    fs: LocalFileSystem,
    display: &str,
    opts: &OpenOptions,
) -> Result<Arc<dyn ObjectStore>> {
    let fsync = opt_bool(opts, "fsync");
    match opts.values.get("file_mode") {
        // Through ModeLocal too: its temp files are locked, so a killed run's are cleaned up.
        None => Ok(Arc::new(super::durable::ModeLocal::new(
            fs,
            super::durable::DEFAULT_MODE,
            fsync,
        ))),
        Some(m) => {
            let mode = u32::from_str_radix(m.trim_start_matches("0o"), 8)
                .ok()
                .filter(|m| *m <= 0o777)
                .ok_or_else(|| {
                    bad(display, format!("file_mode '{m}' is not an octal mode"))
                        .hint("e.g. file_mode = \"0600\"")
                })?;
            Ok(Arc::new(super::durable::ModeLocal::new(fs, mode, fsync)))
        }
    }
}

/// An option of `ferry.store.open` (the Lua check admits every documented key, and object_store's
/// `aws_*`, `azure_*`, `google_*` keys) that this kind of store does not take.
fn unknown_option(display: &str, key: &str, kind: &str) -> FerryError {
    let known = crate::runtime::options::documented(&crate::store::lua::MODULE, "open");
    let mut message = format!("unknown option '{key}' for {kind} store");
    if let Some(near) = crate::runtime::options::nearest(key, &known) {
        message.push_str(&format!(" (did you mean '{near}'?)"));
    }
    bad(display, message).hint("`ferry doc store.open` says which options each kind of store takes")
}

fn open_azure(
    u: &url::Url,
    display: &str,
    opts: &OpenOptions,
    container_prefix: Option<(String, String)>,
) -> Result<Store> {
    azure::open(u, display, opts, container_prefix)
}

/// `https://ACCOUNT.blob.core.windows.net/container/prefix?SAS`, or path-style
/// `http://host:port/ACCOUNT/container/prefix?SAS` (Azurite and other emulators).
fn open_azure_url(u: &url::Url, display: &str, opts: &OpenOptions) -> Result<Store> {
    azure::open_url(u, display, opts)
}

/// One cheap request that fails when the bucket is missing or the credentials are rejected.
async fn probe(store: &Store, opts: &OpenOptions) -> Result<()> {
    let fut = store.inner.list_with_delimiter(None);
    match tokio::time::timeout(Duration::from_secs(60), fut).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => {
            let refused = super::tls::certificate_error(&e);
            let mut fe = store.error("opening", "", e);
            fe.message = fe.message.replacen("opening ", "cannot open store ", 1);
            if let Some(why) = refused {
                // Name the endpoint as configured (the failed URL may be `<bucket>.<host>`).
                let endpoint = configured_endpoint(store, opts);
                return Err(super::tls::refused(fe, &why, endpoint.as_deref()));
            }
            let hint = match fe.kind {
                ErrorKind::Auth => {
                    "check the credentials (options or AWS_*/AZURE_*/GOOGLE_* environment variables)"
                }
                ErrorKind::NotFound => {
                    "check the bucket or container name; ferry does not create buckets"
                }
                _ => "check the endpoint and that the server is reachable",
            };
            Err(fe.hint(hint))
        }
        Err(_) => {
            let from = configured_endpoint(store, opts)
                .and_then(|e| host_port(&e))
                .map(|h| format!(" from {h}"))
                .unwrap_or_default();
            Err(FerryError::new(
                ErrorKind::Timeout,
                format!(
                    "cannot open store {}: no answer{from} within 60s",
                    store.display
                ),
            )
            .hint("check the endpoint and that the server is reachable")
            .retryable(true))
        }
    }
}

/// The endpoint given in the options, or for S3 in `AWS_ENDPOINT_URL` / `AWS_ENDPOINT`.
fn configured_endpoint(store: &Store, opts: &OpenOptions) -> Option<String> {
    opts.values.get("endpoint").cloned().or_else(|| {
        (store.backend == Backend::S3)
            .then(|| std::env::var("AWS_ENDPOINT_URL").or(std::env::var("AWS_ENDPOINT")))
            .and_then(Result::ok)
    })
}

/// `host:port` of an endpoint URL, without user info, path or query (which may hold secrets).
fn host_port(endpoint: &str) -> Option<String> {
    let u = url::Url::parse(endpoint).ok()?;
    let host = u.host_str()?;
    Some(match u.port_or_known_default() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    })
}

#[cfg(test)]
mod timeout_tests {
    use super::*;

    #[test]
    fn an_endpoint_is_named_by_host_and_port_only() {
        assert_eq!(
            host_port("http://user:pw@127.0.0.1:9000/x?sig=abc").as_deref(),
            Some("127.0.0.1:9000")
        );
        assert_eq!(
            host_port("https://s3.example.com").as_deref(),
            Some("s3.example.com:443")
        );
        assert_eq!(host_port("not a url"), None);
    }

    fn opts(kv: &[(&str, &str)]) -> OpenOptions {
        OpenOptions {
            values: kv
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn timeouts_are_seconds_or_durations_with_defaults() {
        let d = Duration::from_secs;
        assert_eq!(timeouts(&opts(&[]), "s3://b").unwrap(), (d(10), d(300)));
        let o = opts(&[("timeout", "2"), ("connect_timeout", "1m30s")]);
        assert_eq!(timeouts(&o, "s3://b").unwrap(), (d(90), d(2)));
        let o = opts(&[("timeout", "0.5")]);
        assert_eq!(
            timeouts(&o, "s3://b").unwrap().1,
            Duration::from_millis(500)
        );
        for bad in ["0", "-1", "soon"] {
            let e = timeouts(&opts(&[("timeout", bad)]), "s3://b").unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidInput, "{bad}");
            assert!(
                e.message.contains("timeout must be a duration"),
                "{}",
                e.message
            );
        }
    }

    /// The options reach S3 and Azure stores (not refused as unknown), and a bad value is refused
    /// at open.
    #[tokio::test]
    async fn s3_and_azure_stores_take_the_timeouts() {
        for url in ["s3://bucket/p", "az://container/p"] {
            let mut o = opts(&[
                ("timeout", "2s"),
                ("connect_timeout", "1"),
                ("endpoint", "http://127.0.0.1:9"),
                ("allow_http", "true"),
            ]);
            o.no_probe = true;
            if url.starts_with("az") {
                o.values.insert("account".into(), "devstoreaccount1".into());
                o.values
                    .insert("sas".into(), "sv=2022-11-02&sig=abc".into());
            }
            if let Err(e) = open(url, &o).await {
                panic!("{url}: {}", e.message);
            }
            o.values.insert("timeout".into(), "later".into());
            let e = open(url, &o).await.err().expect("a bad timeout is refused");
            assert!(
                e.message.contains("timeout must be a duration"),
                "{url}: {}",
                e.message
            );
        }
    }
}
