//! The open multipart uploads of earlier, killed runs on the keys a copy writes: listed once when
//! the copy starts, aborted just before each such key is written (counted only, in a dry run).
//! The S3 requests are in [`crate::store::s3_uploads`].
//!
//! Only uploads of keys this copy writes (missing or different at the destination) are touched,
//! and only those initiated before this process's first copy started: another writer's upload of
//! another key, or an upload this process started, is never aborted.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::CopyOptions;
use crate::runtime::output::EV;
use crate::store::Store;
use crate::store::s3_uploads::{self, Listing, OpenUpload, Target};

pub(super) struct StaleUploads {
    target: Arc<Target>,
    by_key: Mutex<HashMap<String, Vec<OpenUpload>>>,
    /// Stale uploads of keys this copy writes (or would write, in a dry run).
    pub found: AtomicU64,
    pub aborted: AtomicU64,
}

impl StaleUploads {
    /// Lists the destination's open uploads when it is an S3 store; None when there is nothing
    /// to do or the server does not list them (logged, never an error of the copy).
    pub async fn find(dst: &Store, opts: &CopyOptions) -> Option<StaleUploads> {
        let started = s3_uploads::copies_started();
        if !opts.abort_stale_uploads {
            return None;
        }
        let target = dst.uploads.clone()?;
        let title = &opts.title;
        match target.list(opts.dst_list_prefix.as_deref()).await {
            Ok(Listing::Uploads {
                uploads,
                clock_offset,
            }) => {
                let open = uploads.len();
                let stale =
                    s3_uploads::stale_by_key(uploads, s3_uploads::cutoff(started, clock_offset));
                let n: usize = stale.values().map(Vec::len).sum();
                tracing::debug!(
                    "{title}: {open} open multipart uploads at {}, {n} of them from before this run",
                    target.display()
                );
                (!stale.is_empty()).then(|| StaleUploads {
                    target,
                    by_key: Mutex::new(stale),
                    found: AtomicU64::new(0),
                    aborted: AtomicU64::new(0),
                })
            }
            Ok(Listing::Refused(why)) if why.contains("AccessDenied") || why.starts_with("403") => {
                tracing::info!(target: EV,
                    "{title}: {} does not let these credentials list open multipart uploads \
                     ({why}); uploads left open by earlier runs, if any, are not aborted (allow \
                     s3:ListBucketMultipartUploads and s3:AbortMultipartUpload, or give the bucket \
                     an AbortIncompleteMultipartUpload lifecycle rule)",
                    target.display());
                None
            }
            Ok(Listing::Refused(why)) => {
                tracing::debug!(
                    "{title}: {} does not list open multipart uploads ({why}); none aborted",
                    target.display()
                );
                None
            }
            Err(e) => {
                tracing::warn!(target: EV,
                    "{title}: open multipart uploads not checked, none aborted: {}", e.one_line());
                None
            }
        }
    }

    /// Aborts the stale uploads of `key`, which the copy is about to write (counts them only in
    /// a dry run). A failed abort is logged; the copy goes on.
    pub async fn clear(&self, key: &str, dry_run: bool, title: &str) {
        let Some(uploads) = self.by_key.lock().ok().and_then(|mut m| m.remove(key)) else {
            return;
        };
        self.found
            .fetch_add(uploads.len() as u64, Ordering::Relaxed);
        if dry_run {
            tracing::info!(target: EV,
                "{title}: would abort {} multipart upload(s) of '{key}' left open by an earlier run",
                uploads.len());
            return;
        }
        for u in uploads {
            match self.target.abort(&u).await {
                Ok(true) => {
                    self.aborted.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(
                        "{title}: aborted the multipart upload {} of '{key}' initiated {}",
                        u.upload_id,
                        u.initiated
                    );
                }
                Ok(false) => tracing::debug!(
                    "{title}: the multipart upload {} of '{key}' was already gone",
                    u.upload_id
                ),
                Err(e) => tracing::warn!(target: EV,
                    "{title}: a multipart upload left open by an earlier run stays open: {}",
                    e.one_line()),
            }
        }
    }
}
