//! Planning the key ranges and checking the copy: counts and checksums.

use super::*;

/// Splits the integer key space [min, max] into `n` ranges (lower bound exclusive, upper
/// inclusive), or with a shard (index, count) that shard's contiguous slice of it into `n`.
/// The lowest range is open below (min - 1 may not fit in 64 bits) and the highest open above
/// (rows inserted above today's maximum while we copy belong to it).
pub(super) fn plan_ranges(min: i64, max: i64, n: usize, shard: Option<(u32, u32)>) -> Vec<Range> {
    let (min, max) = (min as i128, max as i128);
    let span = (max - min + 1).max(1);
    let (index, count) = shard.map(|(i, c)| (i as i128, c as i128)).unwrap_or((0, 1));
    let slice_lo = min - 1 + span * index / count;
    let slice_hi = min - 1 + span * (index + 1) / count;
    let n = n.max(1) as i128;
    let step_size = ((slice_hi - slice_lo + n - 1) / n).max(1);
    let mut ranges = Vec::new();
    let mut lo = slice_lo;
    while lo < slice_hi {
        let hi = (lo + step_size).min(slice_hi);
        ranges.push(Range {
            lo: (lo >= min).then(|| vec![SqlValue::Int(lo as i64)]),
            hi: Some(hi as i64),
        });
        lo = hi;
    }
    if index == count - 1
        && let Some(last) = ranges.last_mut()
    {
        last.hi = None;
    }
    ranges
}

pub(super) async fn count(db: &Db, table: &str, where_: Option<&str>) -> Result<i64> {
    let sql = format!(
        "SELECT COUNT(*) FROM {}{}",
        quote(db, table),
        where_.map(|w| format!(" WHERE {w}")).unwrap_or_default()
    );
    let rs = db.query(&sql, &[]).await?;
    Ok(rs
        .rows
        .first()
        .and_then(|r| r.first())
        .and_then(|v| v.as_i64())
        .unwrap_or(0))
}

pub(super) async fn checksum(
    db: &Db,
    table: &str,
    cols: &[String],
    key: &[String],
    where_: Option<&str>,
) -> Result<(u64, String)> {
    let c: Vec<String> = cols.iter().map(|x| quote(db, x)).collect();
    let k: Vec<String> = key.iter().map(|x| quote(db, x)).collect();
    let sql = format!(
        "SELECT {} FROM {}{} ORDER BY {}",
        c.join(", "),
        quote(db, table),
        where_.map(|w| format!(" WHERE {w}")).unwrap_or_default(),
        k.join(", ")
    );
    // A failing query's error comes first, in place of the column list: raised, not read as
    // "no rows".
    let (_, mut rx) = db.stream_with_columns(sql, Vec::new()).await?;
    let mut h = Sha256::new();
    let mut n = 0u64;
    while let Some(row) = rx.recv().await {
        for v in row? {
            let b = v.canonical();
            h.update((b.len() as u64).to_le_bytes());
            h.update(&b);
        }
        n += 1;
    }
    Ok((n, hex::encode(&h.finalize()[..16])))
}
