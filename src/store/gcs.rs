//! Google Cloud Storage through its JSON API (`/storage/v1/...` and `/upload/storage/v1/...`),
//! the API of Google's own client libraries, gcloud and the emulators.
//!
//! object_store 0.14's GCS client speaks the XML API instead (`PUT /bucket/key`, `GET
//! /bucket?list-type=2`, XML multipart `POST ?uploads`; object_store `src/gcp/client.rs`,
//! `GoogleCloudStorageClient::put`, `multipart_initiate`, `list_request`), which no emulator
//! implements in full: fake-gcs-server answers an XML `PUT` with "invalid uploadType"
//! (`fakestorage/upload.go`, `insertObject`), ignores list pagination on the XML list
//! (`fakestorage/object.go`, `xmlListObjects`) and has no XML multipart (its issue #852). So ferry
//! keeps object_store's GCS credential chain (service account, ADC, metadata server) and sends
//! its own JSON requests:
//!
//! - list: `GET /storage/v1/b/B/o?prefix&delimiter&maxResults=1000&pageToken&startOffset`
//!   (<https://cloud.google.com/storage/docs/json_api/v1/objects/list>),
//! - metadata: `GET /storage/v1/b/B/o/KEY`, media: `...?alt=media&generation=G` with `Range`,
//! - small objects: `POST /upload/storage/v1/b/B/o?uploadType=media&name=KEY`; create-only and
//!   update-if-unchanged writes as `uploadType=multipart` with `ifGenerationMatch` (the
//!   emulator's media handler ignores preconditions),
//! - large objects: a resumable session (`uploadType=resumable`, chunks of 256 KiB multiples with
//!   `Content-Range: bytes a-b/*`, the last one with the total;
//!   <https://cloud.google.com/storage/docs/performing-resumable-uploads>), see [`super::gcs_upload`],
//! - copy: `POST .../o/SRC/rewriteTo/b/B/o/DST` repeated with `rewriteToken` until `done`,
//! - delete: `DELETE /storage/v1/b/B/o/KEY`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{self, BoxStream};
use futures::{StreamExt, TryStreamExt};
use object_store::gcp::GcpCredentialProvider;
use object_store::path::Path;
use object_store::{
    CopyMode, CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload,
    ObjectMeta, ObjectStore, PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult,
    Result,
};
use reqwest::StatusCode;
use serde_json::Value;

use super::gcs_wire::{
    error_chain, error_text, generation_match, list_err, object_meta, put_result, string_field,
    to_os,
};

mod objects;

const STORE: &str = "GCS";
/// The most objects one JSON list page may hold (and the service's default).
pub const MAX_PAGE: u32 = 1000;

/// How requests are authorised.
#[derive(Clone)]
pub enum Auth {
    /// No `Authorization` header (emulators).
    Anonymous,
    /// A bearer token from object_store's credential chain for GCS.
    Provider(GcpCredentialProvider),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Auth::Anonymous => "Anonymous",
            Auth::Provider(_) => "Provider",
        })
    }
}

/// One failed exchange with the service (status, when there was an answer, and its text).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct GcsError {
    pub status: Option<StatusCode>,
    pub message: String,
}

impl GcsError {
    /// Worth another try: no answer at all (reset, timeout), 429 or 5xx.
    pub fn transient(&self) -> bool {
        self.status
            .is_none_or(|s| s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS)
    }
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub http: reqwest::Client,
    /// `https://storage.googleapis.com` or an emulator's `http://127.0.0.1:4443`.
    pub base: String,
    pub bucket: String,
    pub auth: Auth,
    pub page_size: u32,
    /// The whole-request limit (named in timeout errors).
    pub timeout: Duration,
}

/// A GCS bucket as an [`ObjectStore`].
#[derive(Debug, Clone)]
pub struct GcsJson {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Display for GcsJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GcsJson({}, {})", self.inner.base, self.inner.bucket)
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters (so `/` becomes `%2F`, as an
/// object name in a JSON API path must be).
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl GcsJson {
    pub fn new(
        base: &str,
        bucket: &str,
        auth: Auth,
        page_size: u32,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> std::result::Result<GcsJson, String> {
        let http = reqwest::Client::builder()
            // Resumable uploads answer 308 without a Location; never follow it.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(connect_timeout)
            .timeout(timeout)
            .pool_max_idle_per_host(256)
            .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(GcsJson {
            inner: Arc::new(Inner {
                http,
                base: base.trim_end_matches('/').to_string(),
                bucket: bucket.to_string(),
                auth,
                page_size: page_size.clamp(1, MAX_PAGE),
                timeout,
            }),
        })
    }
}

impl Inner {
    pub fn object_url(&self, key: &str) -> String {
        format!(
            "{}/storage/v1/b/{}/o/{}",
            self.base,
            encode(&self.bucket),
            encode(key)
        )
    }

    pub fn upload_url(&self) -> String {
        format!(
            "{}/upload/storage/v1/b/{}/o",
            self.base,
            encode(&self.bucket)
        )
    }

    fn list_url(&self) -> String {
        format!("{}/storage/v1/b/{}/o", self.base, encode(&self.bucket))
    }

    /// Sends a request (rebuilt by `make` for each attempt), retrying connection errors, 429 and
    /// 5xx answers up to 3 times when `idempotent`. A non-success status is an error.
    pub async fn send(
        &self,
        idempotent: bool,
        make: impl Fn() -> reqwest::RequestBuilder,
    ) -> std::result::Result<reqwest::Response, GcsError> {
        let mut attempt = 0u32;
        loop {
            let mut rb = make();
            if let Auth::Provider(p) = &self.auth {
                let cred = p.get_credential().await.map_err(|e| GcsError {
                    status: Some(StatusCode::UNAUTHORIZED),
                    message: format!("cannot get a GCS access token: {e}"),
                })?;
                if !cred.bearer.is_empty() {
                    rb = rb.bearer_auth(&cred.bearer);
                }
            }
            let (req_text, host, res) = match rb.build() {
                Ok(req) => {
                    let text = format!("{} {}", req.method(), req.url());
                    // Named on its own: a session URI in `text` is a secret and gets masked.
                    let host = match (req.url().host_str(), req.url().port()) {
                        (Some(h), Some(p)) => format!("{h}:{p}"),
                        (Some(h), None) => h.to_string(),
                        _ => String::new(),
                    };
                    (text, host, self.http.execute(req).await)
                }
                Err(e) => {
                    return Err(GcsError {
                        status: None,
                        message: format!("bad GCS request: {e}"),
                    });
                }
            };
            let retry = idempotent && attempt < 3;
            match res {
                Ok(r)
                    if r.status().is_success() || r.status() == StatusCode::PERMANENT_REDIRECT =>
                {
                    return Ok(r);
                }
                Ok(r) => {
                    let status = r.status();
                    let transient = status.is_server_error() || status.as_u16() == 429;
                    if !(retry && transient) {
                        let body = r.text().await.unwrap_or_default();
                        return Err(GcsError {
                            status: Some(status),
                            message: format!("{req_text}: HTTP {status}: {}", error_text(&body)),
                        });
                    }
                }
                Err(e) => {
                    if !retry {
                        let message = if e.is_timeout() {
                            format!(
                                "{req_text}: timed out: no answer from {host} within {:?} \
                                 ({} attempts)",
                                self.timeout,
                                attempt + 1
                            )
                        } else {
                            format!(
                                "{req_text}: {} (host {host})",
                                error_chain(&e.without_url())
                            )
                        };
                        return Err(GcsError {
                            status: None,
                            message,
                        });
                    }
                }
            }
            tokio::time::sleep(crate::runtime::retry::GCS.delay(attempt + 1)).await;
            attempt += 1;
        }
    }

    /// Sends and reads a JSON answer.
    pub async fn send_json(
        &self,
        idempotent: bool,
        make: impl Fn() -> reqwest::RequestBuilder,
    ) -> std::result::Result<Value, GcsError> {
        let r = self.send(idempotent, make).await?;
        let body = r.bytes().await.map_err(|e| GcsError {
            status: None,
            message: format!("reading a GCS answer: {}", error_chain(&e)),
        })?;
        serde_json::from_slice(&body).map_err(|e| GcsError {
            status: None,
            message: format!("GCS answered with something that is not JSON ({e})"),
        })
    }

    /// One media request for `range` of the object at `url` (its generation pinned in the URL).
    async fn media(
        &self,
        url: &str,
        range: &std::ops::Range<u64>,
        size: u64,
        path: &str,
    ) -> Result<reqwest::Response> {
        let want_range = range.start > 0 || range.end < size;
        let header = format!("bytes={}-{}", range.start, range.end - 1);
        let r = self
            .send(true, || {
                let rb = self.http.get(url);
                if want_range {
                    rb.header(reqwest::header::RANGE, &header)
                } else {
                    rb
                }
            })
            .await
            .map_err(|e| to_os(path, e))?;
        if want_range && r.status() != StatusCode::PARTIAL_CONTENT {
            return Err(object_store::Error::Generic {
                store: STORE,
                source: format!(
                    "asked for {header} of {path}, got HTTP {} instead of 206",
                    r.status()
                )
                .into(),
            });
        }
        Ok(r)
    }

    /// The bytes of `range`, resumed from where a broken download stopped (a new request for the
    /// rest, same generation, so the pieces belong to one version) up to 3 times per read.
    async fn media_stream(
        self: &Arc<Self>,
        url: String,
        range: std::ops::Range<u64>,
        size: u64,
        path: String,
    ) -> Result<BoxStream<'static, Result<Bytes>>> {
        let first = self.media(&url, &range, size, &path).await?;
        let inner = self.clone();
        struct St {
            body: Option<BoxStream<'static, reqwest::Result<Bytes>>>,
            next: u64,
            resumes: u32,
        }
        let st = St {
            body: Some(first.bytes_stream().boxed()),
            next: range.start,
            resumes: 0,
        };
        let end = range.end;
        Ok(stream::try_unfold(st, move |mut st| {
            let (inner, url, path) = (inner.clone(), url.clone(), path.clone());
            async move {
                loop {
                    if st.next >= end {
                        return Ok(None);
                    }
                    let body = match st.body.as_mut() {
                        Some(b) => b,
                        None => {
                            let r = inner.media(&url, &(st.next..end), size, &path).await?;
                            st.body.insert(r.bytes_stream().boxed())
                        }
                    };
                    match body.next().await {
                        Some(Ok(chunk)) => {
                            st.next += chunk.len() as u64;
                            return Ok(Some((chunk, st)));
                        }
                        Some(Err(e)) if st.resumes < 3 => {
                            tracing::debug!(path = %path, at = st.next, error = %error_chain(&e), "GCS download broke; resuming");
                            st.resumes += 1;
                            st.body = None;
                        }
                        Some(Err(e)) => {
                            return Err(object_store::Error::Generic {
                                store: STORE,
                                source: format!("reading {path}: {}", error_chain(&e)).into(),
                            });
                        }
                        None => {
                            return Err(object_store::Error::Generic {
                                store: STORE,
                                source: format!(
                                    "reading {path}: the answer ended at byte {} of {end}",
                                    st.next
                                )
                                .into(),
                            });
                        }
                    }
                }
            }
        })
        .boxed())
    }

    async fn metadata(&self, key: &str) -> std::result::Result<ObjectMeta, GcsError> {
        let url = self.object_url(key);
        let v = self.send_json(true, || self.http.get(&url)).await?;
        object_meta(&v)
    }

    async fn list_page(
        &self,
        prefix: &str,
        delimiter: bool,
        token: Option<&str>,
        start: Option<&str>,
    ) -> std::result::Result<Value, GcsError> {
        let mut url = url::Url::parse(&self.list_url()).map_err(|e| GcsError {
            status: None,
            message: format!("bad GCS endpoint {}: {e}", self.base),
        })?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("maxResults", &self.page_size.to_string());
            if !prefix.is_empty() {
                q.append_pair("prefix", prefix);
            }
            if delimiter {
                q.append_pair("delimiter", "/");
            }
            if let Some(t) = token {
                q.append_pair("pageToken", t);
            }
            if let Some(s) = start {
                q.append_pair("startOffset", s);
            }
        }
        let url = url.to_string();
        self.send_json(true, || self.http.get(&url)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_encoded_for_json_paths() {
        assert_eq!(encode("a/b c+d%"), "a%2Fb%20c%2Bd%25");
        assert_eq!(encode("x-y_z.~"), "x-y_z.~");
    }
}
