//! Checking the copy: counts and checksums, over a shard's slice of the key range.

use super::*;

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

/// Compares source and target after the copy (`verify = "count"` or `"checksum"`), over this
/// shard's slice of the key range only with --shard (the other shards may still be copying), and
/// adds what it found to `report`. A count differs legitimately under a transform (it may drop
/// or add rows), so only a checksum mismatch fails then.
pub(super) async fn verify_copy(run: &Run, has_transform: bool, report: &mut Json) -> Result<()> {
    // A shard verifies its own slice of the key range (the other shards may still be copying).
    let (src_where, dst_where) = match run.opts.shard {
        None => (run.opts.where_.clone(), None),
        Some(_) if run.ranges.is_empty() => (Some("1 = 0".to_string()), Some("1 = 0".to_string())),
        Some(_) => {
            let cond = |db: &Db| {
                let k = quote(db, &run.key[0]);
                let lo = run
                    .ranges
                    .first()
                    .and_then(|r| r.lo.as_ref())
                    .and_then(|l| l.first())
                    .and_then(|v| v.as_i64());
                let hi = run.ranges.last().and_then(|r| r.hi);
                let mut c = Vec::new();
                if let Some(lo) = lo {
                    c.push(format!("{k} > {lo}"));
                }
                if let Some(hi) = hi {
                    c.push(format!("{k} <= {hi}"));
                }
                (!c.is_empty() && run.key.len() == 1).then(|| c.join(" AND "))
            };
            let s = match (run.opts.where_.as_ref(), cond(&run.src)) {
                (Some(w), Some(c)) => Some(format!("({w}) AND {c}")),
                (w, c) => c.or(w.cloned()),
            };
            (s, cond(&run.dst))
        }
    };
    match run.opts.verify {
        VerifyMode::None => {}
        VerifyMode::Count => {
            let s = count(&run.src, &run.opts.table, src_where.as_deref()).await?;
            let d = count(&run.dst, &run.opts.dst_table, dst_where.as_deref()).await?;
            report["source_rows"] = json!(s);
            report["target_rows"] = json!(d);
            if s != d && !has_transform {
                return Err(FerryError::new(
                    ErrorKind::Conflict,
                    format!(
                        "verify: {} has {s} rows in {} but {} has {d} in {}",
                        run.opts.table, run.src.display, run.opts.dst_table, run.dst.display
                    ),
                ));
            }
            report["verified"] = json!("count");
        }
        VerifyMode::Checksum => {
            let (sn, sh) = checksum(
                &run.src,
                &run.opts.table,
                &run.insert_cols,
                &run.key,
                src_where.as_deref(),
            )
            .await?;
            let (dn, dh) = checksum(
                &run.dst,
                &run.opts.dst_table,
                &run.insert_cols,
                &run.key,
                dst_where.as_deref(),
            )
            .await?;
            report["source_rows"] = json!(sn);
            report["target_rows"] = json!(dn);
            if sn != dn || sh != dh {
                return Err(FerryError::new(
                    ErrorKind::Conflict,
                    format!(
                        "verify: checksums differ: {} {sn} rows {sh}, {} {dn} rows {dh}",
                        run.opts.table, run.opts.dst_table
                    ),
                ));
            }
            report["verified"] = json!("checksum");
            report["checksum"] = json!(sh);
        }
    }
    Ok(())
}
