//! The copy engine: moves objects from one store to another.
//!
//! - What to copy is decided from **one listing of the destination** (or a list cache), never a
//!   request per object: `compare` = none | exists | size | checksum.
//! - Transfers stream with bounded memory: objects up to `multipart_threshold` are read into one
//!   buffer and written with one PUT; larger ones go up in `part_size` parts, `part_concurrency` at
//!   a time. A shared byte budget (`max_buffer`) bounds what all transfers hold at once.
//! - Each object is retried with backoff on retryable errors; a failed object is recorded and the
//!   copy goes on (unless `fail_fast`).
//! - Every copied key is appended to the list cache as it lands, so a killed run resumes without
//!   copying again what finished.
//! - On S3, the multipart uploads a killed run left open on the keys this copy writes are aborted
//!   just before each is written (`stale`).
//!
//! The driver (`submit`) runs on the caller's task (the Lua thread, where `map` callbacks run);
//! transfers run on the multi-thread runtime.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use md5::{Digest, Md5};
use object_store::{ObjectStoreExt, PutPayload, WriteMultipart};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use super::durable::{LOCAL_READ_CHUNK, read_stream};
use super::inventory::{CacheWriter, Inventory, list_destination, read_cache};
use super::{Store, etag_md5};
use crate::runtime::error::{ErrorKind, FerryError, Result};
use crate::runtime::output::{self, EV};
use crate::runtime::params::format_size;
use crate::runtime::progress::{Progress, Unit};
use crate::throttle::Limiter;

mod stale;
#[cfg(test)]
mod tests;
mod transfer;
mod verify;

use stale::StaleUploads;
use transfer::{fail, md5_of, process};
use verify::{verify_checksum, verify_sizes};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    None,
    Exists,
    Size,
    Checksum,
}

impl Compare {
    pub fn parse(s: &str) -> Option<Compare> {
        Some(match s {
            "none" => Compare::None,
            "exists" => Compare::Exists,
            "size" => Compare::Size,
            "checksum" => Compare::Checksum,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    None,
    Size,
    Checksum,
}

#[derive(Clone)]
pub struct CopyOptions {
    pub compare: Compare,
    pub verify: Verify,
    pub concurrency: usize,
    pub retries: u32,
    pub fail_fast: bool,
    pub list_cache: Option<PathBuf>,
    /// Write sizes into the list cache (false for migrate.py's key-only format).
    pub list_cache_sizes: bool,
    /// Only list the destination below this prefix.
    pub dst_list_prefix: Option<String>,
    pub multipart_threshold: u64,
    pub part_size: usize,
    pub part_concurrency: usize,
    pub max_buffer: u64,
    pub shard: Option<(u32, u32)>,
    pub dry_run: bool,
    pub throttle: Option<Arc<Limiter>>,
    pub ops_throttle: Option<Arc<Limiter>>,
    pub title: String,
    /// On an S3 destination, abort the multipart uploads earlier runs left open on the keys
    /// this copy writes.
    pub abort_stale_uploads: bool,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions {
            compare: Compare::Size,
            verify: Verify::None,
            concurrency: 64,
            retries: 5,
            fail_fast: false,
            list_cache: None,
            list_cache_sizes: true,
            dst_list_prefix: None,
            multipart_threshold: 16 << 20,
            part_size: 8 << 20,
            part_concurrency: 4,
            max_buffer: 512 << 20,
            shard: None,
            dry_run: false,
            throttle: None,
            ops_throttle: None,
            title: "copy".into(),
            abort_stale_uploads: true,
        }
    }
}

/// One object to copy: source key, destination key, and what the source listing said.
#[derive(Debug, Clone)]
pub struct Item {
    pub src: String,
    pub dst: String,
    pub size: Option<u64>,
}

#[derive(Debug, Clone, Default)]
pub struct Report {
    pub copied: u64,
    pub skipped: u64,
    pub failed: u64,
    pub bytes: u64,
    pub skipped_bytes: u64,
    /// Objects this shard left to others (`shard`).
    pub other_shards: u64,
    /// Transfer attempts that failed and were retried.
    pub retried: u64,
    /// (key, error) of every failed object.
    pub errors: Vec<(String, FerryError)>,
    pub seconds: f64,
    pub dry_run: bool,
    /// "listing" or "cache".
    pub inventory: &'static str,
    pub destination_objects: u64,
    pub cancelled: bool,
    /// Multipart uploads left open by earlier runs on the keys this copy wrote (would write).
    pub stale_uploads: u64,
    /// Of those, the ones aborted (none in a dry run).
    pub stale_uploads_aborted: u64,
}

#[derive(Default)]
struct Counters {
    copied: AtomicU64,
    skipped: AtomicU64,
    failed: AtomicU64,
    bytes: AtomicU64,
    skipped_bytes: AtomicU64,
    other_shards: AtomicU64,
    retried: AtomicU64,
}

/// What a worker does with an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    Copy,
    /// Destination has the key with this size; decide after learning the source size.
    SizeCheck(u64),
    /// Destination has the key; compare content hashes.
    ChecksumCheck,
}

struct Shared {
    src: Store,
    dst: Store,
    opts: CopyOptions,
    inventory: Inventory,
    cache: Option<CacheWriter>,
    counters: Counters,
    errors: Mutex<Vec<(String, FerryError)>>,
    /// (dst key, size) of every object copied or found present, for verify = size.
    handled: Mutex<Vec<(String, u64)>>,
    budget: Semaphore,
    stop: AtomicBool,
    cancel: CancellationToken,
    progress: Progress,
    /// Source objects seen by the driver (the progress total once the source is exhausted).
    submitted: AtomicU64,
    stale: Option<StaleUploads>,
}

/// A running copy. Feed it with [`Engine::submit`], end it with [`Engine::finish`].
pub struct Engine {
    shared: Arc<Shared>,
    tx: Option<mpsc::Sender<(Item, Plan)>>,
    workers: Option<tokio::task::JoinHandle<()>>,
    started: Instant,
}

/// The shard a key belongs to (FNV-1a, `runtime::shard`).
pub use crate::runtime::shard::shard_of;

const BUDGET_UNIT: u64 = 1024;

/// Failed objects kept in the report (the failure count is exact beyond it).
pub const MAX_ERRORS: usize = 1000;

impl Engine {
    pub async fn start(
        src: Store,
        dst: Store,
        opts: CopyOptions,
        cancel: CancellationToken,
    ) -> Result<Engine> {
        let stale = StaleUploads::find(&dst, &opts).await;
        let inventory = if opts.compare == Compare::None {
            Inventory::default()
        } else {
            let cached = match &opts.list_cache {
                Some(p) => read_cache(p)?,
                None => None,
            };
            match cached {
                Some(inv) => {
                    tracing::info!(target: crate::runtime::output::EV,
                        "{}: {} destination objects from list cache {}", opts.title, inv.objects.len(),
                        opts.list_cache.as_ref().map(|p| p.display().to_string()).unwrap_or_default());
                    inv
                }
                None => {
                    let t = Instant::now();
                    let cache = if opts.dry_run {
                        None
                    } else {
                        opts.list_cache
                            .as_deref()
                            .map(|p| (p, opts.list_cache_sizes))
                    };
                    let etags = opts.compare == Compare::Checksum;
                    let inv = list_destination(&dst, opts.dst_list_prefix.as_deref(), cache, etags)
                        .await?;
                    tracing::info!(target: crate::runtime::output::EV,
                        "{}: listed {} destination objects in {:.1}s", opts.title, inv.objects.len(),
                        t.elapsed().as_secs_f64());
                    inv
                }
            }
        };
        let cache = match (&opts.list_cache, opts.dry_run) {
            (Some(p), false) => Some(CacheWriter::open(p, opts.list_cache_sizes)?),
            _ => None,
        };
        let budget_units = (opts.max_buffer / BUDGET_UNIT).clamp(1, u32::MAX as u64 / 2) as usize;
        let progress = Progress::new(&opts.title, None, Unit::Items);
        let shared = Arc::new_cyclic(|weak: &std::sync::Weak<Shared>| {
            let weak = weak.clone();
            let started = Instant::now();
            progress.set_detail(move || match weak.upgrade() {
                Some(s) => {
                    let c = &s.counters;
                    let bytes = c.bytes.load(Ordering::Relaxed);
                    let secs = started.elapsed().as_secs_f64().max(0.001);
                    format!(
                        "copied {} ({}, {}/s), skipped {}, failed {}",
                        c.copied.load(Ordering::Relaxed),
                        crate::runtime::params::format_size(bytes),
                        crate::runtime::params::format_size((bytes as f64 / secs) as u64),
                        c.skipped.load(Ordering::Relaxed),
                        c.failed.load(Ordering::Relaxed)
                    )
                }
                None => String::new(),
            });
            Shared {
                src,
                dst,
                inventory,
                cache,
                counters: Counters::default(),
                errors: Mutex::new(Vec::new()),
                handled: Mutex::new(Vec::new()),
                budget: Semaphore::new(budget_units),
                stop: AtomicBool::new(false),
                cancel,
                progress,
                opts,
                submitted: AtomicU64::new(0),
                stale,
            }
        });
        let (tx, rx) = mpsc::channel::<(Item, Plan)>(shared.opts.concurrency * 4);
        let workers = if shared.opts.dry_run {
            drop(rx);
            None
        } else {
            let s = shared.clone();
            Some(tokio::spawn(async move {
                let n = s.opts.concurrency.max(1);
                tokio_stream_from(rx)
                    .for_each_concurrent(n, |(item, plan)| {
                        let s = s.clone();
                        async move {
                            // Each transfer on the multi-thread runtime, bounded by `n`.
                            let _ = tokio::spawn(process(s, item, plan)).await;
                        }
                    })
                    .await;
            }))
        };
        Ok(Engine {
            shared,
            tx: Some(tx),
            workers,
            started: Instant::now(),
        })
    }

    /// Whether the engine stopped taking work (fail_fast after a failure, or cancellation).
    pub fn stopped(&self) -> bool {
        self.shared.stop.load(Ordering::Relaxed) || self.shared.cancel.is_cancelled()
    }

    /// Decides what to do with one source object and queues it. Returns false once stopped.
    pub async fn submit(&mut self, item: Item) -> Result<bool> {
        if self.stopped() {
            return Ok(false);
        }
        let s = &self.shared;
        s.submitted.fetch_add(1, Ordering::Relaxed);
        if let Some((index, count)) = s.opts.shard
            && shard_of(&item.src, count) != index
        {
            s.counters.other_shards.fetch_add(1, Ordering::Relaxed);
            return Ok(true);
        }
        let known = s.inventory.get(&item.dst);
        let plan = match (s.opts.compare, known) {
            (Compare::None, _) | (_, None) => Plan::Copy,
            (Compare::Exists, Some(k)) => {
                self.skip(&item, k.size.or(item.size).unwrap_or(0));
                return Ok(true);
            }
            (Compare::Size, Some(k)) => match (k.size, item.size) {
                (None, _) => {
                    // A key-only cache line: all we know is that it exists.
                    self.skip(&item, item.size.unwrap_or(0));
                    return Ok(true);
                }
                (Some(d), Some(sz)) if d == sz => {
                    self.skip(&item, sz);
                    return Ok(true);
                }
                (Some(_), Some(_)) => Plan::Copy,
                (Some(d), None) => Plan::SizeCheck(d),
            },
            (Compare::Checksum, Some(_)) => Plan::ChecksumCheck,
        };
        if s.opts.dry_run {
            let size = match item.size {
                Some(sz) => sz,
                None => s.src.head(&item.src).await?.map(|e| e.size).unwrap_or(0),
            };
            if let Plan::SizeCheck(d) = plan
                && d == size
            {
                self.skip(&item, size);
                return Ok(true);
            }
            if let Some(st) = &s.stale {
                st.clear(&item.dst, true, &s.opts.title).await;
            }
            s.counters.copied.fetch_add(1, Ordering::Relaxed);
            s.counters.bytes.fetch_add(size, Ordering::Relaxed);
            s.progress.inc(1);
            return Ok(true);
        }
        let tx = self.tx.as_ref().expect("sender lives until finish");
        tokio::select! {
            r = tx.send((item, plan)) => Ok(r.is_ok()),
            _ = s.cancel.cancelled() => Ok(false),
        }
    }

    fn skip(&self, item: &Item, size: u64) {
        let s = &self.shared;
        s.counters.skipped.fetch_add(1, Ordering::Relaxed);
        s.counters.skipped_bytes.fetch_add(size, Ordering::Relaxed);
        s.progress.inc(1);
        if s.opts.verify == Verify::Size
            && let Ok(mut h) = s.handled.lock()
        {
            h.push((item.dst.clone(), size));
        }
    }

    /// Waits for queued transfers, verifies when asked, and returns the report.
    pub async fn finish(mut self) -> Result<Report> {
        drop(self.tx.take());
        let s = &self.shared;
        let others = s.counters.other_shards.load(Ordering::Relaxed);
        s.progress
            .set_total(s.submitted.load(Ordering::Relaxed).saturating_sub(others));
        if let Some(w) = self.workers.take() {
            let s = self.shared.clone();
            tokio::select! {
                _ = w => {}
                _ = s.cancel.cancelled() => {}
            }
        }
        let s = self.shared.clone();
        if s.opts.verify == Verify::Size && !s.opts.dry_run && !s.cancel.is_cancelled() {
            verify_sizes(&s).await?;
        }
        s.progress.finish();
        let errors = s.errors.lock().map(|e| e.clone()).unwrap_or_default();
        let c = &s.counters;
        let stale = |f: fn(&StaleUploads) -> &AtomicU64| {
            s.stale
                .as_ref()
                .map_or(0, |st| f(st).load(Ordering::Relaxed))
        };
        Ok(Report {
            copied: c.copied.load(Ordering::Relaxed),
            skipped: c.skipped.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            bytes: c.bytes.load(Ordering::Relaxed),
            skipped_bytes: c.skipped_bytes.load(Ordering::Relaxed),
            other_shards: c.other_shards.load(Ordering::Relaxed),
            retried: c.retried.load(Ordering::Relaxed),
            errors,
            seconds: self.started.elapsed().as_secs_f64(),
            dry_run: s.opts.dry_run,
            inventory: if s.opts.compare == Compare::None {
                "none"
            } else {
                s.inventory.source
            },
            destination_objects: s.inventory.objects.len() as u64,
            cancelled: s.cancel.is_cancelled(),
            stale_uploads: stale(|st| &st.found),
            stale_uploads_aborted: stale(|st| &st.aborted),
        })
    }
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

impl Shared {
    fn budget_total(&self) -> u64 {
        (self.opts.max_buffer / BUDGET_UNIT).max(1)
    }
}

/// Copies everything below `prefix` of `src` into `dst` (keys kept), for Rust callers and
/// benchmarks; Lua uses the engine directly to apply `map`.
pub async fn copy_prefix(
    src: &Store,
    dst: &Store,
    prefix: Option<&str>,
    opts: CopyOptions,
    cancel: CancellationToken,
) -> Result<Report> {
    let mut engine = Engine::start(src.clone(), dst.clone(), opts, cancel).await?;
    let mut listing = src.list(prefix)?;
    while let Some(e) = listing.next().await {
        let e = e?;
        let item = Item {
            dst: e.key.clone(),
            src: e.key,
            size: Some(e.size),
        };
        if !engine.submit(item).await? {
            break;
        }
    }
    engine.finish().await
}

/// Fills `batch` (cleared first) with up to `n` entries of a listing. False once the listing has
/// nothing more: the batch then holds the last entries, possibly none.
pub async fn next_batch(
    listing: &mut futures::stream::BoxStream<'static, Result<super::Entry>>,
    batch: &mut Vec<super::Entry>,
    n: usize,
) -> Result<bool> {
    batch.clear();
    while batch.len() < n {
        match listing.next().await {
            Some(e) => batch.push(e?),
            None => return Ok(false),
        }
    }
    Ok(true)
}

/// The one log line and the `copy_report` event that end every `ferry.store.copy`.
pub fn log_report(title: &str, r: &Report, left_out: u64) {
    let secs = r.seconds.max(0.001);
    let verb = if r.dry_run { "would copy" } else { "copied" };
    let stale = match (r.stale_uploads, r.dry_run) {
        (0, _) => String::new(),
        (n, true) => format!(", would abort {n} stale multipart uploads"),
        (n, false) => format!(
            ", aborted {} of {n} stale multipart uploads",
            r.stale_uploads_aborted
        ),
    };
    tracing::info!(target: EV,
        "{title}: {verb} {} objects ({}), skipped {} ({}), failed {}{}{stale} in {:.1}s ({:.0} objects/s, {}/s)",
        r.copied, format_size(r.bytes), r.skipped, format_size(r.skipped_bytes), r.failed,
        if left_out > 0 { format!(", left out by map {left_out}") } else { String::new() },
        r.seconds, (r.copied + r.skipped) as f64 / secs, format_size((r.bytes as f64 / secs) as u64));
    output::event(
        "copy_report",
        serde_json::json!({
        "title": title, "copied": r.copied, "skipped": r.skipped, "failed": r.failed, "retried": r.retried,
        "bytes": r.bytes, "dry_run": r.dry_run, "seconds": r.seconds,
        "stale_uploads": r.stale_uploads, "stale_uploads_aborted": r.stale_uploads_aborted}),
    );
}
