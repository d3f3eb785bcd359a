//! One object through the engine: plan, read, write (one PUT or parts), retry, record.

use super::*;

pub(super) fn fail(s: &Shared, key: &str, e: FerryError) {
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

pub(super) async fn process(s: Arc<Shared>, item: Item, plan: Plan) {
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

pub(super) enum Outcome {
    Copied(u64),
    /// The destination already had identical content.
    Same(u64),
}

/// Reads a whole object (bounded by the caller) hashing it when asked.
pub(super) async fn read_all(
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
pub(super) async fn md5_of(store: &Store, key: &str) -> Result<String> {
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
pub(super) async fn dst_md5(s: &Shared, key: &str) -> Result<String> {
    if let Some(m) = s
        .inventory
        .get(key)
        .and_then(|k| k.etag.as_deref())
        .and_then(etag_md5)
        && s.dst.backend == crate::store::Backend::S3
    {
        return Ok(m);
    }
    md5_of(&s.dst, key).await
}

/// Aborts what earlier runs left open on `key`, now that it is about to be written.
async fn clear_stale(s: &Shared, key: &str) {
    if let Some(st) = &s.stale {
        st.clear(key, false, &s.opts.title).await;
    }
}

pub(super) async fn transfer(s: &Shared, item: &Item, plan: Plan) -> Result<Outcome> {
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
        clear_stale(s, &item.dst).await;
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
    clear_stale(s, &item.dst).await;
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
