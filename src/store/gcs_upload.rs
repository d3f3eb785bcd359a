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
use super::gcs_wire::error_text;
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

    /// One chunk request, after the previous one succeeded (chunks must arrive in order).
    fn chunk(&mut self, data: Bytes) -> Chain {
        let inner = self.inner.clone();
        let session = self.session.clone();
        let prev = self.last.take();
        let start = self.sent;
        self.sent += data.len() as u64;
        let fut = async move {
            if let Some(p) = prev {
                p.await?;
            }
            put_range(&inner, &session, start, data, None)
                .await
                .map(|_| ())
                .map_err(|e| Arc::new(e.message))
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
        let fut = self.chunk(data);
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
        let v = put_range(&self.inner, &self.session, self.sent, rest, Some(total))
            .await
            .map_err(|e| to_os(&self.path, e))?
            .unwrap_or_default();
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

/// How many times one chunk is resumed after a transient failure before the upload fails.
const RESUMES: u32 = 5;

/// Sends `data` as the bytes from `start` of the session (`total` on the last request), resuming
/// after a transient failure as the protocol says
/// (<https://cloud.google.com/storage/docs/performing-resumable-uploads#status-check>): ask how
/// much the session holds (`PUT`, `Content-Range: bytes */TOTAL` or `bytes */*`, answered `308`
/// with `Range: bytes=0-N`, or with the object when it is complete) and send only the rest. A
/// chunk is never resent blindly: its first attempt may have been stored before the answer was
/// lost. Returns the object resource for the final request, `None` for a middle chunk.
pub(crate) async fn put_range(
    inner: &Inner,
    session: &str,
    start: u64,
    data: Bytes,
    total: Option<u64>,
) -> std::result::Result<Option<serde_json::Value>, GcsError> {
    let end = start + data.len() as u64;
    let total_text = total.map(|t| t.to_string()).unwrap_or_else(|| "*".into());
    let mut from = start;
    let mut resumes = 0u32;
    loop {
        let rest = data.slice((from - start) as usize..);
        let range = if rest.is_empty() {
            format!("bytes */{total_text}")
        } else {
            format!("bytes {from}-{}/{total_text}", end - 1)
        };
        let err = match send_once(inner, session, &range, rest).await {
            Ok(answer) => return finish(answer, total, &range),
            Err(e) if e.transient() && resumes < RESUMES => e,
            Err(e) => return Err(e),
        };
        // Ask until the session answers: resending without knowing what it holds could store
        // bytes twice.
        let status = loop {
            resumes += 1;
            tracing::debug!(range = %range, error = %err.message, "GCS resumable chunk failed; asking the session's status");
            tokio::time::sleep(crate::runtime::retry::GCS.delay(resumes + 1)).await;
            let query = format!("bytes */{total_text}");
            match send_once(inner, session, &query, Bytes::new()).await {
                Ok(a) => break a,
                Err(e) if e.transient() && resumes < RESUMES => {}
                Err(e) => {
                    return Err(GcsError {
                        status: e.status,
                        message: format!("{} (after {range} failed: {})", e.message, err.message),
                    });
                }
            }
        };
        match status {
            Answer::Incomplete(persisted) => {
                if persisted < start || persisted > end {
                    return Err(GcsError {
                        status: None,
                        message: format!(
                            "resumable upload: the session holds {persisted} bytes, but this \
                             request covers bytes {start}-{end} (earlier chunks lost?)"
                        ),
                    });
                }
                if persisted == end && total.is_none() {
                    return Ok(None);
                }
                from = persisted;
            }
            // Complete already: the lost answer was the final one.
            done @ Answer::Done(_) => return finish(done, total, &range),
        }
    }
}

enum Answer {
    /// `308`: how many bytes the session holds.
    Incomplete(u64),
    /// The object resource.
    Done(serde_json::Value),
}

fn finish(
    answer: Answer,
    total: Option<u64>,
    range: &str,
) -> std::result::Result<Option<serde_json::Value>, GcsError> {
    match (answer, total) {
        (Answer::Incomplete(_), None) => Ok(None),
        (Answer::Done(v), Some(_)) => Ok(Some(v)),
        (Answer::Incomplete(n), Some(t)) => Err(GcsError {
            status: None,
            message: format!(
                "resumable upload {range}: GCS holds {n} of {t} bytes and did not complete"
            ),
        }),
        (Answer::Done(_), None) => Err(GcsError {
            status: None,
            message: format!("resumable upload {range}: GCS completed the object early"),
        }),
    }
}

/// One `PUT` to the session, not retried here (see [`put_range`]).
async fn send_once(
    inner: &Inner,
    session: &str,
    range: &str,
    body: Bytes,
) -> std::result::Result<Answer, GcsError> {
    let r = inner
        .send(false, || {
            inner
                .http
                .put(session)
                .header(reqwest::header::CONTENT_RANGE, range)
                .header(reqwest::header::CONTENT_LENGTH, body.len())
                .body(body.clone())
        })
        .await?;
    if r.status() == StatusCode::PERMANENT_REDIRECT {
        // `Range: bytes=0-N` (N inclusive); none when the session holds nothing yet.
        let held = r
            .headers()
            .get(reqwest::header::RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("bytes=0-"))
            .and_then(|n| n.trim().parse::<u64>().ok())
            .map(|n| n + 1)
            .unwrap_or(0);
        return Ok(Answer::Incomplete(held));
    }
    let body = r.text().await.map_err(|e| GcsError {
        status: None,
        message: format!("reading a GCS answer: {e}"),
    })?;
    serde_json::from_str(&body)
        .map(Answer::Done)
        .map_err(|e| GcsError {
            status: None,
            message: format!(
                "GCS answered {range} with something that is not JSON ({e}): {}",
                error_text(&body)
            ),
        })
}
