//! Large GCS objects: one resumable upload session per object
//! (<https://cloud.google.com/storage/docs/performing-resumable-uploads>).
//!
//! `POST /upload/storage/v1/b/B/o?uploadType=resumable&name=KEY` answers with the session URI in
//! `Location`; each chunk is a `PUT` to it with `Content-Range: bytes START-END/*` and is answered
//! `308 Resume Incomplete`; the last one carries the total (`bytes START-END/TOTAL`, or
//! `bytes */TOTAL` when nothing is left) and is answered with the object resource. Every chunk but
//! the last must be a multiple of 256 KiB, and chunks must arrive in order, so parts handed over
//! by object_store's `WriteMultipart` (possibly several at once) are cut to 256 KiB multiples
//! (the rest is carried into the next part) and sent one after the other.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use object_store::path::Path;
use object_store::{MultipartUpload, PutPayload, PutResult, Result, UploadPart};
use reqwest::StatusCode;

use super::gcs::{GcsError, Inner};
use super::gcs_wire::{put_result, to_os};

/// Chunk granularity of resumable uploads.
pub const CHUNK: usize = 256 * 1024;

type Chain = Shared<BoxFuture<'static, std::result::Result<(), Arc<String>>>>;

pub struct Resumable {
    inner: Arc<Inner>,
    path: String,
    session: String,
    /// Bytes handed to chunk requests so far.
    sent: u64,
    /// Bytes not yet sent (less than one 256 KiB unit).
    carry: BytesMut,
    /// The last chunk request; the next one starts when it has succeeded.
    last: Option<Chain>,
}

impl std::fmt::Debug for Resumable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The session URI is a bearer credential for this upload: never shown.
        f.debug_struct("Resumable")
            .field("path", &self.path)
            .field("sent", &self.sent)
            .finish()
    }
}

impl Resumable {
    pub(crate) async fn start(inner: Arc<Inner>, path: &Path) -> Result<Resumable> {
        let mut url =
            url::Url::parse(&inner.upload_url()).map_err(|e| object_store::Error::Generic {
                store: "GCS",
                source: Box::new(e),
            })?;
        url.query_pairs_mut()
            .append_pair("uploadType", "resumable")
            .append_pair("name", path.as_ref());
        let url = url.to_string();
        let r = inner
            .send(true, || {
                inner
                    .http
                    .post(&url)
                    .header(reqwest::header::CONTENT_LENGTH, 0)
                    .header("X-Upload-Content-Type", "application/octet-stream")
                    .body(Bytes::new())
            })
            .await
            .map_err(|e| to_os(path.as_ref(), e))?;
        let session = r
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| {
                to_os(
                    path.as_ref(),
                    GcsError {
                        status: None,
                        message: "GCS started a resumable upload without a Location header".into(),
                    },
                )
            })?;
        crate::runtime::redact::add_secret(&session);
        Ok(Resumable {
            inner,
            path: path.to_string(),
            session,
            sent: 0,
            carry: BytesMut::new(),
            last: None,
        })
    }

    /// One chunk request, after the previous one succeeded. Not retried: a resent chunk after an
    /// unknown outcome could be stored twice.
    fn chunk(&mut self, data: Bytes, total: Option<u64>) -> Chain {
        let inner = self.inner.clone();
        let session = self.session.clone();
        let prev = self.last.take();
        let start = self.sent;
        self.sent += data.len() as u64;
        let range = match (data.is_empty(), total) {
            (true, Some(t)) => format!("bytes */{t}"),
            (_, Some(t)) => format!("bytes {start}-{}/{t}", self.sent - 1),
            (_, None) => format!("bytes {start}-{}/*", self.sent - 1),
        };
        let fut = async move {
            if let Some(p) = prev {
                p.await?;
            }
            let r = inner
                .send(false, || {
                    inner
                        .http
                        .put(&session)
                        .header(reqwest::header::CONTENT_RANGE, &range)
                        .header(reqwest::header::CONTENT_LENGTH, data.len())
                        .body(data.clone())
                })
                .await
                .map_err(|e| Arc::new(e.message))?;
            let want_final = total.is_some();
            let is_final = r.status() != StatusCode::PERMANENT_REDIRECT;
            if want_final != is_final {
                return Err(Arc::new(format!(
                    "resumable upload chunk {range}: unexpected HTTP {}",
                    r.status()
                )));
            }
            Ok(())
        }
        .boxed()
        .shared();
        self.last = Some(fut.clone());
        fut
    }

    fn failed(&self, msg: &str) -> object_store::Error {
        object_store::Error::Generic {
            store: "GCS",
            source: format!("uploading {}: {msg}", self.path).into(),
        }
    }
}

#[async_trait]
impl MultipartUpload for Resumable {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        for b in data.iter() {
            self.carry.extend_from_slice(b);
        }
        let aligned = self.carry.len() / CHUNK * CHUNK;
        if aligned == 0 {
            return futures::future::ready(Ok(())).boxed();
        }
        let data = self.carry.split_to(aligned).freeze();
        let fut = self.chunk(data, None);
        let path = self.path.clone();
        async move {
            fut.await.map_err(|m| object_store::Error::Generic {
                store: "GCS",
                source: format!("uploading {path}: {m}").into(),
            })
        }
        .boxed()
    }

    async fn complete(&mut self) -> Result<PutResult> {
        let rest = std::mem::take(&mut self.carry).freeze();
        let total = self.sent + rest.len() as u64;
        // The final request answers with the object; run it here to read that answer.
        if let Some(prev) = self.last.take() {
            prev.await.map_err(|m| self.failed(&m))?;
        }
        let start = self.sent;
        let range = if rest.is_empty() {
            format!("bytes */{total}")
        } else {
            format!("bytes {start}-{}/{total}", total - 1)
        };
        let inner = self.inner.clone();
        let v = inner
            .send_json(false, || {
                inner
                    .http
                    .put(&self.session)
                    .header(reqwest::header::CONTENT_RANGE, &range)
                    .header(reqwest::header::CONTENT_LENGTH, rest.len())
                    .body(rest.clone())
            })
            .await
            .map_err(|e| to_os(&self.path, e))?;
        self.sent = total;
        let size = v.get("size").and_then(|s| match s {
            serde_json::Value::String(s) => s.parse::<u64>().ok(),
            other => other.as_u64(),
        });
        if size != Some(total) {
            return Err(self.failed(&format!(
                "sent {total} bytes but GCS stored {}",
                size.map(|s| s.to_string())
                    .unwrap_or_else(|| "an unknown size".into())
            )));
        }
        Ok(put_result(&v))
    }

    async fn abort(&mut self) -> Result<()> {
        self.last = None;
        let inner = self.inner.clone();
        // GCS answers 499 to a cancelled session; any answer ends it.
        match inner.send(true, || inner.http.delete(&self.session)).await {
            Ok(_) => Ok(()),
            Err(e) if e.status.is_some() => Ok(()),
            Err(e) => Err(to_os(&self.path, e)),
        }
    }
}
