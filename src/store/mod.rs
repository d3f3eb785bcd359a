//! Object stores: one handle type over object_store's backends (local files, memory, S3 and
//! S3-compatible servers, GCS, Azure), with errors that name the store and key, and the copy
//! engine that moves objects between any two of them.

pub mod copy;
pub mod durable;
pub mod gcs;
pub mod gcs_upload;
pub mod gcs_wire;
pub mod inventory;
pub mod layout;
pub mod lua;
pub mod open;
pub mod s3_uploads;
pub mod tls;
pub mod transfer;
pub mod vhost;
pub mod zip;

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutPayload};

use crate::runtime::error::{ErrorKind, FerryError, Result};

pub use open::{OpenOptions, open};

/// Which kind of backend a store is (decides a few behaviours, e.g. whether ETags are MD5s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    File,
    Memory,
    S3,
    Gcs,
    Azure,
}

/// A handle on a store and a base prefix; keys are relative to that prefix.
#[derive(Clone)]
pub struct Store {
    pub inner: Arc<dyn ObjectStore>,
    /// The URL without credentials, for messages.
    pub display: String,
    pub backend: Backend,
    /// S3 stores: where their open multipart uploads are listed and aborted
    /// ([`s3_uploads::Target`]); None for other stores and for rewritten key layouts, whose keys
    /// are not the copy's keys.
    pub uploads: Option<Arc<s3_uploads::Target>>,
}

/// One listed object.
#[derive(Debug, Clone)]
pub struct Entry {
    pub key: String,
    pub size: u64,
    pub etag: Option<String>,
    pub last_modified: chrono::DateTime<chrono::Utc>,
}

impl From<ObjectMeta> for Entry {
    fn from(m: ObjectMeta) -> Entry {
        Entry {
            key: m.location.to_string(),
            size: m.size,
            etag: m.e_tag,
            last_modified: m.last_modified,
        }
    }
}

/// The MD5 hex an ETag stands for, when it is one (S3 single-part uploads).
pub fn etag_md5(etag: &str) -> Option<String> {
    let t = etag.trim_matches('"').to_ascii_lowercase();
    (t.len() == 32 && t.chars().all(|c| c.is_ascii_hexdigit())).then_some(t)
}

impl Store {
    /// A key as an object_store path; keys with empty, `.` or `..` segments are rejected.
    pub fn path(&self, key: &str) -> Result<Path> {
        Path::parse(key).map_err(|e| {
            FerryError::new(ErrorKind::InvalidInput, format!("invalid key '{key}': {e}"))
                .with("store", &self.display)
        })
    }

    /// Maps an object_store error to a FerryError naming this store and key.
    pub fn error(&self, op: &str, key: &str, e: object_store::Error) -> FerryError {
        map_error(&self.display, op, key, e)
    }

    pub fn list(&self, prefix: Option<&str>) -> Result<BoxStream<'static, Result<Entry>>> {
        let p = match prefix {
            Some(p) if !p.is_empty() => Some(self.path(p.trim_end_matches('/'))?),
            _ => None,
        };
        let display = self.display.clone();
        let shown = prefix.unwrap_or("").to_string();
        Ok(self
            .inner
            .list(p.as_ref())
            .map(move |r| {
                r.map(Entry::from)
                    .map_err(|e| map_error(&display, "listing", &shown, e))
            })
            .boxed())
    }

    /// One level below `prefix`: objects and common prefixes (folders).
    pub async fn list_dir(&self, prefix: Option<&str>) -> Result<(Vec<Entry>, Vec<String>)> {
        let p = match prefix {
            Some(p) if !p.is_empty() => Some(self.path(p.trim_end_matches('/'))?),
            _ => None,
        };
        let r = self
            .inner
            .list_with_delimiter(p.as_ref())
            .await
            .map_err(|e| self.error("listing", prefix.unwrap_or(""), e))?;
        Ok((
            r.objects.into_iter().map(Entry::from).collect(),
            r.common_prefixes
                .into_iter()
                .map(|p| p.to_string())
                .collect(),
        ))
    }

    pub async fn head(&self, key: &str) -> Result<Option<Entry>> {
        let p = self.path(key)?;
        match self.inner.head(&p).await {
            Ok(m) => Ok(Some(m.into())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.error("reading metadata of", key, e)),
        }
    }

    pub async fn get(&self, key: &str) -> Result<Bytes> {
        let p = self.path(key)?;
        let r = self
            .inner
            .get(&p)
            .await
            .map_err(|e| self.error("reading", key, e))?;
        r.bytes().await.map_err(|e| self.error("reading", key, e))
    }

    pub async fn put(&self, key: &str, data: Bytes) -> Result<()> {
        let p = self.path(key)?;
        self.inner
            .put(&p, PutPayload::from(data))
            .await
            .map_err(|e| self.error("writing", key, e))?;
        Ok(())
    }

    pub async fn delete(&self, key: &str) -> Result<()> {
        let p = self.path(key)?;
        match self.inner.delete(&p).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.error("deleting", key, e)),
        }
    }

    /// Server-side copy within this store.
    pub async fn copy_object(&self, from: &str, to: &str) -> Result<()> {
        let (f, t) = (self.path(from)?, self.path(to)?);
        self.inner
            .copy(&f, &t)
            .await
            .map_err(|e| self.error("copying", &format!("{from} -> {to}"), e))
    }
}

/// Whether a request of `e` ran past its timeout: an `HttpError` of kind `Timeout` in its chain
/// (object_store sets it from reqwest's and hyper's own timeout flags and `io::ErrorKind::TimedOut`).
fn timed_out(e: &object_store::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.downcast_ref::<object_store::client::HttpError>()
            .is_some_and(|h| h.kind() == object_store::client::HttpErrorKind::Timeout)
        {
            return true;
        }
        source = s.source();
    }
    false
}

/// Maps object_store's errors onto ferry's kinds; the message names the store and key.
pub fn map_error(store: &str, op: &str, key: &str, e: object_store::Error) -> FerryError {
    use object_store::Error as E;
    let (kind, retryable) = match &e {
        E::NotFound { .. } => (ErrorKind::NotFound, false),
        E::PermissionDenied { .. } | E::Unauthenticated { .. } => (ErrorKind::Auth, false),
        E::AlreadyExists { .. } | E::Precondition { .. } => (ErrorKind::Conflict, false),
        E::InvalidPath { .. } | E::UnknownConfigurationKey { .. } => {
            (ErrorKind::InvalidInput, false)
        }
        E::NotSupported { .. } | E::NotImplemented { .. } => (ErrorKind::InvalidInput, false),
        _ => {
            let text = e.to_string();
            // The status as object_store prints it ("status code: 403 Forbidden"), never a
            // bare "403": durations ("in 403.4ms") and keys contain digits too.
            let auth = text.contains("403 Forbidden")
                || text.contains("AccessDenied")
                || text.contains("SignatureDoesNotMatch")
                || text.contains("InvalidAccessKeyId")
                || text.contains("AuthenticationFailed");
            if auth {
                (ErrorKind::Auth, false)
            } else if text.contains("NoSuchBucket") || text.contains("ContainerNotFound") {
                (ErrorKind::NotFound, false)
            } else if timed_out(&e) || text.contains("timed out: no answer from") {
                // object_store's transport timeout (S3, Azure; the host is named by
                // open/no_answer.rs), or ferry's GCS client (src/store/gcs.rs, `Inner::send`)
                // after its retries.
                (ErrorKind::Timeout, true)
            } else {
                (ErrorKind::Unavailable, true)
            }
        }
    };
    let what = if key.is_empty() {
        format!("{op} {store}")
    } else {
        format!("{op} '{key}' in {store}")
    };
    let mut msg = e.to_string();
    // object_store repeats long retry chains; keep the first line, which names the cause.
    if let Some(first) = msg.lines().next() {
        msg = first.to_string();
    }
    FerryError::new(kind, format!("{what}: {msg}"))
        .retryable(retryable)
        .with("store", store)
        .with("key", key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::client::{HttpError, HttpErrorKind};

    fn generic(kind: HttpErrorKind) -> object_store::Error {
        object_store::Error::Generic {
            store: "S3",
            source: Box::new(HttpError::new(
                kind,
                std::io::Error::other("nothing back from 127.0.0.1:9000"),
            )),
        }
    }

    #[test]
    fn a_transport_timeout_is_kind_timeout_and_retryable_others_unavailable() {
        let e = map_error("s3://b/p", "reading", "k", generic(HttpErrorKind::Timeout));
        assert_eq!(e.kind, ErrorKind::Timeout);
        assert!(e.retryable);
        assert!(e.message.contains("127.0.0.1:9000"), "{}", e.message);
        // The kind comes from object_store's HttpErrorKind, not from the words.
        for kind in [HttpErrorKind::Connect, HttpErrorKind::Interrupted] {
            let e = map_error("s3://b/p", "reading", "k", generic(kind));
            assert_eq!(e.kind, ErrorKind::Unavailable, "{kind:?}");
        }
    }
}
