//! `verify = "size" | "checksum"` after a copy.

use super::*;

pub(super) async fn verify_checksum(
    s: &Shared,
    key: &str,
    src_md5: Option<&str>,
    put_etag: Option<&str>,
) -> Result<()> {
    let Some(want) = src_md5 else { return Ok(()) };
    let got = match put_etag.and_then(etag_md5) {
        Some(m) if s.dst.backend == crate::store::Backend::S3 => m,
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
pub(super) async fn verify_sizes(s: &Arc<Shared>) -> Result<()> {
    let handled = s.handled.lock().map(|h| h.clone()).unwrap_or_default();
    if handled.is_empty() {
        return Ok(());
    }
    let inv = list_destination(&s.dst, s.opts.dst_list_prefix.as_deref(), None, false).await?;
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
