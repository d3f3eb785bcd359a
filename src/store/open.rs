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

fn client_options(opts: &OpenOptions) -> ClientOptions {
    let mut c = ClientOptions::new()
        .with_connect_timeout(Duration::from_secs(10))
        .with_timeout(Duration::from_secs(300))
        .with_pool_max_idle_per_host(256);
    if opt_bool(opts, "allow_http") {
        c = c.with_allow_http(true);
    }
    c
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
    for k in SECRET_KEYS {
        if let Some(v) = opts.values.get(*k) {
            add_secret(v);
        }
    }
    let u = url::Url::parse(url_text).map_err(|e| {
        bad(url_text, format!("not a URL ({e})")).hint(
            "store URLs look like file:///abs/path, s3://bucket/prefix, gs://bucket/prefix, \
             az://container/prefix or memory://name",
        )
    })?;
    // The URL without its query (which may hold a SAS signature) or password.
    let mut shown = u.clone();
    shown.set_query(None);
    let _ = shown.set_password(None);
    let display = shown.to_string();
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
            }
        }
        "s3" | "s3a" => open_s3(&u, &display, opts)?,
        "gs" => open_gcs(&u, &display, opts)?,
        "az" | "azure" | "abfs" => open_azure(&u, &display, opts, None)?,
        "http" | "https" if looks_like_azure(&u) => open_azure_url(&u, &display, opts)?,
        other => {
            return Err(bad(url_text, format!("unknown scheme '{other}'")).hint(
                "supported: file://, memory://, s3://, gs://, az://, and Azure blob https URLs",
            ));
        }
    };
    let store = match opts.values.get("layout").map(String::as_str) {
        None | Some("flat") => store,
        Some("seafile-fs") | Some("split2") => Store {
            inner: Arc::new(super::layout::Split2::new(store.inner)),
            ..store
        },
        Some(other) => {
            return Err(bad(url_text, format!("unknown layout '{other}'"))
                .hint("layouts: flat, seafile-fs"));
        }
    };
    if !opts.no_probe && store.backend != Backend::Memory {
        probe(&store).await?;
    }
    Ok(store)
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
        inner: Arc::new(fs),
        display: display.to_string(),
        backend: Backend::File,
    })
}

fn unknown_option(display: &str, key: &str, known: &str) -> FerryError {
    bad(display, format!("unknown option '{key}'")).hint(format!("options: {known}"))
}

fn open_s3(u: &url::Url, display: &str, opts: &OpenOptions) -> Result<Store> {
    let (bucket, prefix) = bucket_and_prefix(u);
    if bucket.len() < 3 {
        return Err(bad(
            display,
            "an S3 URL needs a bucket name of 3 or more characters: s3://bucket/prefix",
        ));
    }
    let mut b = AmazonS3Builder::from_env()
        .with_bucket_name(&bucket)
        .with_retry(retry_config())
        .with_client_options(client_options(opts));
    let known = "endpoint, region, access_key_id, secret_access_key, session_token, allow_http, \
                 virtual_hosted_style, skip_signature, sse_c_key, layout";
    let mut endpoint_set =
        std::env::var("AWS_ENDPOINT_URL").is_ok() || std::env::var("AWS_ENDPOINT").is_ok();
    for (k, v) in &opts.values {
        b = match k.as_str() {
            "layout" => b,
            "sse_c_key" => {
                use base64::Engine;
                b.with_ssec_encryption(
                    base64::engine::general_purpose::STANDARD.encode(v.as_bytes()),
                )
            }
            "endpoint" => {
                endpoint_set = true;
                b.with_endpoint(v)
            }
            "region" => b.with_region(v),
            "access_key_id" => b.with_access_key_id(v),
            "secret_access_key" => b.with_secret_access_key(v),
            "session_token" => b.with_token(v),
            "allow_http" => b.with_allow_http(opt_bool(opts, "allow_http")),
            "virtual_hosted_style" => b.with_virtual_hosted_style_request(opt_bool(opts, k)),
            "skip_signature" => b.with_skip_signature(opt_bool(opts, k)),
            other => match other.parse::<AmazonS3ConfigKey>() {
                Ok(key) => b.with_config(key, v),
                Err(_) => return Err(unknown_option(display, other, known)),
            },
        };
    }
    if std::env::var("AWS_ALLOW_HTTP").is_ok_and(|v| v == "true" || v == "1")
        && !opts.values.contains_key("allow_http")
    {
        b = b.with_allow_http(true);
    }
    if endpoint_set && !opts.values.contains_key("virtual_hosted_style") {
        // Custom endpoints (MinIO, Ceph RGW, s3s) are addressed path-style.
        b = b.with_virtual_hosted_style_request(false);
    }
    if b.get_config_value(&AmazonS3ConfigKey::Region).is_none() {
        b = b.with_region("us-east-1");
    }
    let s3 = b.build().map_err(|e| bad(display, e))?;
    Ok(Store {
        inner: with_prefix(Arc::new(s3), &prefix),
        display: display.to_string(),
        backend: Backend::S3,
    })
}

fn open_gcs(u: &url::Url, display: &str, opts: &OpenOptions) -> Result<Store> {
    let (bucket, prefix) = bucket_and_prefix(u);
    let mut b = GoogleCloudStorageBuilder::from_env()
        .with_bucket_name(&bucket)
        .with_retry(retry_config())
        .with_client_options(client_options(opts));
    for (k, v) in &opts.values {
        b = match k.as_str() {
            "service_account" => b.with_service_account_path(v),
            "service_account_key" => b.with_service_account_key(v),
            "application_credentials" => b.with_application_credentials(v),
            "allow_http" | "layout" => b,
            other => match other.parse::<GoogleConfigKey>() {
                Ok(key) => b.with_config(key, v),
                Err(_) => {
                    return Err(unknown_option(
                        display,
                        other,
                        "service_account, service_account_key, application_credentials, allow_http",
                    ));
                }
            },
        };
    }
    let gcs = b.build().map_err(|e| bad(display, e))?;
    Ok(Store {
        inner: with_prefix(Arc::new(gcs), &prefix),
        display: display.to_string(),
        backend: Backend::Gcs,
    })
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
async fn probe(store: &Store) -> Result<()> {
    let fut = store.inner.list_with_delimiter(None);
    match tokio::time::timeout(Duration::from_secs(60), fut).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => {
            let mut fe = store.error("opening", "", e);
            fe.message = fe.message.replacen("opening ", "cannot open store ", 1);
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
        Err(_) => Err(FerryError::new(
            ErrorKind::Timeout,
            format!("cannot open store {}: no answer within 60s", store.display),
        )
        .retryable(true)),
    }
}
