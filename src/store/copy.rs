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
use crate::runtime::progress::{Progress, Unit};
use crate::throttle::Limiter;

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
}

/// A running copy. Feed it with [`Engine::submit`], end it with [`Engine::finish`].
pub struct Engine {
    shared: Arc<Shared>,
    tx: Option<mpsc::Sender<(Item, Plan)>>,
    workers: Option<tokio::task::JoinHandle<()>>,
    started: Instant,
}

/// Stable 64-bit FNV-1a of a key: the shard a key belongs to never changes between versions.
pub fn shard_of(key: &str, count: u32) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.as_bytes() {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % count as u64) as u32
}

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
                    let inv =
                        list_destination(&dst, opts.dst_list_prefix.as_deref(), cache).await?;
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
        })
    }
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

fn fail(s: &Shared, key: &str, e: FerryError) {
    tracing::warn!(target: crate::runtime::output::EV, "{}: {} failed: {}", s.opts.title, key, e.one_line());
    s.counters.failed.fetch_add(1, Ordering::Relaxed);
    if let Ok(mut errs) = s.errors.lock() {
        // The count is exact; the list keeps the first MAX_ERRORS for the report.
        if errs.len() < MAX_ERRORS {
            errs.push((key.to_string(), e));
        }
    }
    if s.opts.fail_fast {
        s.stop.store(true, Ordering::Relaxed);
    }
}

async fn process(s: Arc<Shared>, item: Item, plan: Plan) {
    if s.stop.load(Ordering::Relaxed) {
        return;
    }
    let mut attempt = 0;
    loop {
        if s.cancel.is_cancelled() {
            return;
        }
        if let Some(l) = &s.opts.ops_throttle {
            l.acquire(1).await;
        }
        let r = tokio::select! {
            r = transfer(&s, &item, plan) => r,
            _ = s.cancel.cancelled() => return,
        };
        match r {
            Ok(Outcome::Copied(size)) => {
                if let Some(c) = &s.cache
                    && let Err(e) = c.append(&item.dst, size)
                {
                    fail(&s, &item.src, e);
                    return;
                }
                s.counters.copied.fetch_add(1, Ordering::Relaxed);
                s.counters.bytes.fetch_add(size, Ordering::Relaxed);
                if s.opts.verify == Verify::Size
                    && let Ok(mut h) = s.handled.lock()
                {
                    h.push((item.dst.clone(), size));
                }
                s.progress.inc(1);
                return;
            }
            Ok(Outcome::Same(size)) => {
                s.counters.skipped.fetch_add(1, Ordering::Relaxed);
                s.counters.skipped_bytes.fetch_add(size, Ordering::Relaxed);
                s.progress.inc(1);
                return;
            }
            Err(e) if e.retryable && attempt < s.opts.retries => {
                attempt += 1;
                s.counters.retried.fetch_add(1, Ordering::Relaxed);
                let delay = crate::runtime::retry::STORE.delay(attempt);
                tracing::debug!(target: crate::runtime::output::EV,
                    "{}: retrying {} in {:?} (attempt {attempt}): {}", s.opts.title, item.src, delay, e.one_line());
                tokio::time::sleep(delay).await;
            }
            Err(e) => {
                fail(&s, &item.src, e.with("attempts", attempt + 1));
                s.progress.inc(1);
                return;
            }
        }
    }
}

enum Outcome {
    Copied(u64),
    /// The destination already had identical content.
    Same(u64),
}

/// Reads a whole object (bounded by the caller) hashing it when asked.
async fn read_all(
    s: &Shared,
    key: &str,
    size_hint: u64,
    hash: bool,
) -> Result<(Bytes, Option<String>)> {
    let p = s.src.path(key)?;
    let r = s
        .src
        .inner
        .get(&p)
        .await
        .map_err(|e| s.src.error("reading", key, e))?;
    let mut buf = BytesMut::with_capacity(size_hint as usize);
    let mut md5 = hash.then(Md5::new);
    let mut stream = read_stream(r, LOCAL_READ_CHUNK);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| s.src.error("reading", key, e))?;
        if let Some(t) = &s.opts.throttle {
            t.acquire(chunk.len() as u64).await;
        }
        if let Some(h) = md5.as_mut() {
            h.update(&chunk);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok((buf.freeze(), md5.map(|h| hex::encode(h.finalize()))))
}

/// MD5 of an object's content, streamed.
async fn md5_of(store: &Store, key: &str) -> Result<String> {
    let p = store.path(key)?;
    let r = store
        .inner
        .get(&p)
        .await
        .map_err(|e| store.error("reading", key, e))?;
    let mut h = Md5::new();
    let mut stream = read_stream(r, LOCAL_READ_CHUNK);
    while let Some(chunk) = stream.next().await {
        h.update(&chunk.map_err(|e| store.error("reading", key, e))?);
    }
    Ok(hex::encode(h.finalize()))
}

/// MD5 of the destination object: from its listed ETag when that is one, else by reading it.
async fn dst_md5(s: &Shared, key: &str) -> Result<String> {
    if let Some(m) = s
        .inventory
        .get(key)
        .and_then(|k| k.etag.as_deref())
        .and_then(etag_md5)
        && s.dst.backend == super::Backend::S3
    {
        return Ok(m);
    }
    md5_of(&s.dst, key).await
}

async fn transfer(s: &Shared, item: &Item, plan: Plan) -> Result<Outcome> {
    let size = match item.size {
        Some(sz) => sz,
        None => match s.src.head(&item.src).await? {
            Some(e) => e.size,
            None => {
                return Err(FerryError::new(
                    ErrorKind::NotFound,
                    format!("'{}' is not in {}", item.src, s.src.display),
                )
                .with("key", &item.src));
            }
        },
    };
    if let Plan::SizeCheck(d) = plan
        && d == size
    {
        return Ok(Outcome::Same(size));
    }
    let want_md5 = plan == Plan::ChecksumCheck || s.opts.verify == Verify::Checksum;
    let dst_path = s.dst.path(&item.dst)?;
    if size <= s.opts.multipart_threshold {
        let units = (size / BUDGET_UNIT + 1).min(s.budget_total()) as u32;
        let _permit = s
            .budget
            .acquire_many(units)
            .await
            .map_err(|_| FerryError::new(ErrorKind::Cancelled, "copy stopped"))?;
        let (data, md5) = read_all(s, &item.src, size, want_md5).await?;
        if plan == Plan::ChecksumCheck
            && let Some(m) = &md5
            && *m == dst_md5(s, &item.dst).await?
        {
            return Ok(Outcome::Same(data.len() as u64));
        }
        let n = data.len() as u64;
        let put = s
            .dst
            .inner
            .put(&dst_path, PutPayload::from(data))
            .await
            .map_err(|e| s.dst.error("writing", &item.dst, e))?;
        if s.opts.verify == Verify::Checksum {
            verify_checksum(s, &item.dst, md5.as_deref(), put.e_tag.as_deref()).await?;
        }
        return Ok(Outcome::Copied(n));
    }
    // Large object: optional hash pass, then a multipart upload from the source stream.
    let mut src_md5 = None;
    if plan == Plan::ChecksumCheck {
        let m = md5_of(&s.src, &item.src).await?;
        if m == dst_md5(s, &item.dst).await? {
            return Ok(Outcome::Same(size));
        }
        src_md5 = Some(m);
    }
    let units = ((s.opts.part_size as u64 * (s.opts.part_concurrency as u64 + 1)) / BUDGET_UNIT)
        .min(s.budget_total()) as u32;
    let _permit = s
        .budget
        .acquire_many(units)
        .await
        .map_err(|_| FerryError::new(ErrorKind::Cancelled, "copy stopped"))?;
    let src_path = s.src.path(&item.src)?;
    let r = s
        .src
        .inner
        .get(&src_path)
        .await
        .map_err(|e| s.src.error("reading", &item.src, e))?;
    let upload = s
        .dst
        .inner
        .put_multipart(&dst_path)
        .await
        .map_err(|e| s.dst.error("starting upload of", &item.dst, e))?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, s.opts.part_size);
    let mut md5 = (want_md5 && src_md5.is_none()).then(Md5::new);
    let mut stream = read_stream(r, LOCAL_READ_CHUNK);
    let mut n = 0u64;
    let result: Result<()> = async {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| s.src.error("reading", &item.src, e))?;
            if let Some(t) = &s.opts.throttle {
                t.acquire(chunk.len() as u64).await;
            }
            if let Some(h) = md5.as_mut() {
                h.update(&chunk);
            }
            n += chunk.len() as u64;
            writer
                .wait_for_capacity(s.opts.part_concurrency)
                .await
                .map_err(|e| s.dst.error("uploading", &item.dst, e))?;
            writer.put(chunk);
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        let _ = writer.abort().await;
        return Err(e);
    }
    let put = writer
        .finish()
        .await
        .map_err(|e| s.dst.error("completing upload of", &item.dst, e))?;
    if s.opts.verify == Verify::Checksum {
        let m = src_md5.or_else(|| md5.map(|h| hex::encode(h.finalize())));
        verify_checksum(s, &item.dst, m.as_deref(), put.e_tag.as_deref()).await?;
    }
    Ok(Outcome::Copied(n))
}

impl Shared {
    fn budget_total(&self) -> u64 {
        (self.opts.max_buffer / BUDGET_UNIT).max(1)
    }
}

async fn verify_checksum(
    s: &Shared,
    key: &str,
    src_md5: Option<&str>,
    put_etag: Option<&str>,
) -> Result<()> {
    let Some(want) = src_md5 else { return Ok(()) };
    let got = match put_etag.and_then(etag_md5) {
        Some(m) if s.dst.backend == super::Backend::S3 => m,
        _ => md5_of(&s.dst, key).await?,
    };
    if got != want {
        return Err(FerryError::new(
            ErrorKind::Conflict,
            format!(
                "checksum mismatch after copying '{key}': source md5 {want}, destination {got}"
            ),
        )
        .retryable(true)
        .with("key", key));
    }
    Ok(())
}

/// One listing of the destination after the copy: every handled object must be there with the
/// expected size.
async fn verify_sizes(s: &Arc<Shared>) -> Result<()> {
    let handled = s.handled.lock().map(|h| h.clone()).unwrap_or_default();
    if handled.is_empty() {
        return Ok(());
    }
    let inv = list_destination(&s.dst, s.opts.dst_list_prefix.as_deref(), None).await?;
    let listed: HashMap<&str, Option<u64>> = inv
        .objects
        .iter()
        .map(|(k, v)| (k.as_str(), v.size))
        .collect();
    for (key, size) in handled {
        match listed.get(key.as_str()) {
            Some(Some(got)) if *got == size => {}
            Some(got) => fail(
                s,
                &key,
                FerryError::new(
                    ErrorKind::Conflict,
                    format!(
                        "verify: '{key}' has {} bytes in {}, expected {size}",
                        got.unwrap_or(0),
                        s.dst.display
                    ),
                )
                .with("key", &key),
            ),
            None => fail(
                s,
                &key,
                FerryError::new(
                    ErrorKind::NotFound,
                    format!("verify: '{key}' is missing from {}", s.dst.display),
                )
                .with("key", &key),
            ),
        }
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn memory(name: &str) -> Store {
        Store {
            inner: Arc::new(object_store::memory::InMemory::new()),
            display: format!("memory://{name}"),
            backend: super::super::Backend::Memory,
        }
    }

    /// A copy throttled at 1000 B/s whose limiter is raised to 1 MB/s after 5 s finishes soon
    /// after; on the paused clock the timing is exact, not measured.
    #[tokio::test(start_paused = true)]
    async fn set_rate_changes_a_running_copy() {
        let (src, dst) = (memory("a"), memory("b"));
        for i in 0..20 {
            src.put(&format!("o{i:02}"), Bytes::from(vec![b'x'; 1000]))
                .await
                .unwrap();
        }
        let limiter = Arc::new(Limiter::new(Some(1000.0), Some(1000.0)));
        let opts = CopyOptions {
            concurrency: 1,
            throttle: Some(limiter.clone()),
            ..CopyOptions::default()
        };
        let start = tokio::time::Instant::now();
        let job = tokio::spawn({
            let (src, dst) = (src.clone(), dst.clone());
            async move { copy_prefix(&src, &dst, None, opts, CancellationToken::new()).await }
        });
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        let copied_at_5s = dst.list(None).unwrap().count().await;
        assert!(
            (4..=7).contains(&copied_at_5s),
            "{copied_at_5s} objects after 5 s at 1000 B/s"
        );
        limiter.set_rate(Some(1_000_000.0));
        let report = job.await.unwrap().unwrap();
        assert_eq!(report.copied, 20);
        let secs = start.elapsed().as_secs_f64();
        assert!(
            secs < 6.5,
            "finished at {secs}s; without set_rate it takes 19 s"
        );
    }

    #[test]
    fn shards_are_stable_and_cover_every_key() {
        assert_eq!(shard_of("repo/abc", 4), shard_of("repo/abc", 4));
        let mut counts = [0u32; 4];
        for i in 0..10_000 {
            counts[shard_of(&format!("k/{i}"), 4) as usize] += 1;
        }
        assert_eq!(counts.iter().sum::<u32>(), 10_000);
        assert!(counts.iter().all(|c| *c > 2000), "{counts:?}");
    }
}
