//! The plan of a copy: the key ranges the workers take, planned from the key's MIN and MAX on the
//! first run, kept with each range's last copied key in the step journal, and read back on resume.

use super::*;

/// One slice of the key space: keys in (lo, hi]; `None` = unbounded.
#[derive(Debug, Clone)]
pub(super) struct Range {
    pub(super) lo: Option<Vec<SqlValue>>,
    pub(super) hi: Option<i64>,
}

pub(super) fn key_json(k: &[SqlValue]) -> Json {
    Json::Array(
        k.iter()
            .map(|v| match v {
                SqlValue::Int(i) => json!(i),
                SqlValue::UInt(u) => json!(u),
                SqlValue::Float(f) => json!(f),
                SqlValue::Null => Json::Null,
                SqlValue::Bool(b) => json!(b),
                other => json!(String::from_utf8_lossy(&other.canonical())),
            })
            .collect(),
    )
}

pub(super) fn key_from_json(j: &Json) -> Option<Vec<SqlValue>> {
    Some(
        j.as_array()?
            .iter()
            .map(|v| match v {
                Json::Number(n) if n.is_i64() => SqlValue::Int(n.as_i64().unwrap_or(0)),
                Json::Number(n) if n.is_u64() => SqlValue::UInt(n.as_u64().unwrap_or(0)),
                Json::Number(n) => SqlValue::Float(n.as_f64().unwrap_or(0.0)),
                Json::Bool(b) => SqlValue::Bool(*b),
                Json::Null => SqlValue::Null,
                Json::String(s) => SqlValue::Text(s.clone()),
                other => SqlValue::Text(other.to_string()),
            })
            .collect(),
    )
}
/// The ranges and last keys kept in the journal by [`Run::plan_json`].
pub(super) fn from_checkpoint(p: &Json) -> (Vec<Range>, Vec<Option<Vec<SqlValue>>>) {
    let ranges = p["ranges"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .map(|r| Range {
                    lo: key_from_json(&r["lo"]),
                    hi: r["hi"].as_i64(),
                })
                .collect()
        })
        .unwrap_or_default();
    let last = p["last"]
        .as_array()
        .map(|ls| ls.iter().map(key_from_json).collect())
        .unwrap_or_default();
    (ranges, last)
}

/// A new plan: one open range, or for a single integer key `ranges` (default twice the workers)
/// slices of [MIN, MAX] (of this shard's part of it, with --shard).
pub(super) async fn plan(
    src: &Db,
    o: &Options,
    key: &[String],
    sinfo: &TableInfo,
) -> Result<(Vec<Range>, Vec<Option<Vec<SqlValue>>>)> {
    let int_key = key.len() == 1
        && sinfo
            .columns
            .iter()
            .any(|(n, t)| *n == key[0] && is_integer_type(t));
    let mut ranges = vec![Range { lo: None, hi: None }];
    if let Some((index, count)) = o.shard
        && !int_key
        && index > 0
    {
        // Without an integer key there is no key range to split: shard 0 copies it all.
        tracing::info!(target: EV, "{}: the key is not one integer column; shard 0 of {count} copies the whole table", o.title);
        ranges.clear();
    }
    if int_key {
        let sql = format!(
            "SELECT MIN({k}), MAX({k}) FROM {}{}",
            quote(src, &o.table),
            o.where_
                .as_ref()
                .map(|w| format!(" WHERE {w}"))
                .unwrap_or_default(),
            k = quote(src, &key[0])
        );
        let rs = src.query(&sql, &[]).await?;
        let row = rs.rows.first().cloned().unwrap_or_default();
        match (
            row.first().and_then(|v| v.as_i64()),
            row.get(1).and_then(|v| v.as_i64()),
        ) {
            (Some(min), Some(max)) => {
                ranges = plan_ranges(min, max, o.ranges.unwrap_or(o.workers * 2).max(1), o.shard);
            }
            // An empty table: shard 0 takes the (open) whole range.
            _ if o.shard.is_some_and(|(i, _)| i > 0) => ranges.clear(),
            _ => {}
        }
    }
    let n = ranges.len();
    Ok((ranges, vec![None; n]))
}

impl Run {
    /// The plan as kept in the journal: every range and the last key copied in each.
    pub(super) fn plan_json(&self) -> Json {
        let ranges: Vec<Json> = self
            .ranges
            .iter()
            .map(|r| json!({"lo": r.lo.as_ref().map(|k| key_json(k)), "hi": r.hi}))
            .collect();
        let last: Vec<Json> = lock(&self.last)
            .iter()
            .map(|l| l.as_ref().map(|k| key_json(k)).unwrap_or(Json::Null))
            .collect();
        json!({"ranges": ranges, "last": last})
    }
}

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
