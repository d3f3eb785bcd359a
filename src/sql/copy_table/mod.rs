//! `ferry.sql.copy_table`: rows from one table to another, on the same or different servers.
//!
//! Keyset pagination on the primary key (or a given key); for a single integer key the key space
//! is split into ranges that `workers` copy concurrently. Every batch is one multi-row INSERT, so
//! the target holds whole batches only, in key order within a range. The plan and the last key of
//! every range are checkpointed in the step journal; a resumed copy starts each range after
//! max(checkpoint, largest key already in the target), so nothing is inserted twice or skipped.
//!
//! Without a Lua `transform` the range workers are tasks on the multi-threaded runtime: the
//! protocol work (row decoding, parameter encoding) spreads over every core instead of running
//! where the Lua state lives. With a transform they stay on the Lua thread, which calls it.

use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mlua::{Function, Lua, Table, Value};
use serde_json::{Value as Json, json};
use sha2::{Digest, Sha256};

use super::load_data::{self, Duplicates};
use super::lua::{LuaDb, row_to_lua, value_from_lua};
use super::value::SqlValue;
use super::{Backend, Conn, Db, Loaded};
use crate::runtime::context::{RunContext, StepStatus, ctx};
use crate::runtime::error::{ErrorKind, FerryError, IntoLuaResult, Result};
use crate::runtime::output::{self, EV};
use crate::throttle::Limiter;
use crate::throttle::lua::limiter_from;

mod lua;
mod range;
mod transform;
mod verify;

pub use lua::lua_copy_table;
use range::*;
use transform::*;
use verify::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnConflict {
    Error,
    Ignore,
    Replace,
}

/// How batches are written to a MySQL/MariaDB target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadMode {
    /// Multi-row prepared INSERTs (the default: on MariaDB 10.11 LOAD DATA was measured no
    /// cheaper for the server, see bench/sql/README.md).
    Insert,
    /// `LOAD DATA LOCAL INFILE` where the server and the columns allow it, INSERTs otherwise.
    LoadData,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyMode {
    None,
    Count,
    Checksum,
}

pub struct Options {
    pub table: String,
    pub dst_table: String,
    pub key: Option<Vec<String>>,
    pub columns: Option<Vec<String>>,
    pub where_: Option<String>,
    pub batch: usize,
    pub workers: usize,
    pub ranges: Option<usize>,
    pub on_conflict: OnConflict,
    pub load: LoadMode,
    pub throttle: Option<Arc<Limiter>>,
    pub verify: VerifyMode,
    pub title: String,
    /// (index, count): copy only this shard's slice of the key range (default from --shard).
    pub shard: Option<(u32, u32)>,
}

fn quote(db: &Db, ident: &str) -> String {
    ident
        .split('.')
        .map(|part| match db.backend {
            Backend::Mysql => format!("`{}`", part.replace('`', "``")),
            Backend::Postgres => format!("\"{}\"", part.replace('"', "\"\"")),
        })
        .collect::<Vec<_>>()
        .join(".")
}

struct TableInfo {
    columns: Vec<(String, String)>, // (name, data type)
    primary_key: Vec<String>,
}

async fn table_info(db: &Db, table: &str) -> Result<Option<TableInfo>> {
    let (schema, name) = match table.split_once('.') {
        Some((s, n)) => (Some(s.to_string()), n.to_string()),
        None => (None, table.to_string()),
    };
    let (cols_sql, pk_sql) = match db.backend {
        Backend::Mysql => (
            "SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
            "SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE \
             WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY' \
             ORDER BY ORDINAL_POSITION",
        ),
        Backend::Postgres => (
            "SELECT column_name::text, data_type::text FROM information_schema.columns \
             WHERE table_schema = COALESCE(?::text, current_schema()) AND table_name = ? ORDER BY ordinal_position",
            "SELECT kcu.column_name::text FROM information_schema.table_constraints tc \
             JOIN information_schema.key_column_usage kcu \
               ON kcu.constraint_name = tc.constraint_name AND kcu.table_schema = tc.table_schema \
              AND kcu.table_name = tc.table_name \
             WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_schema = COALESCE(?::text, current_schema()) \
               AND tc.table_name = ? ORDER BY kcu.ordinal_position",
        ),
    };
    let schema_v = schema.map(SqlValue::Text).unwrap_or(SqlValue::Null);
    let params = [schema_v, SqlValue::Text(name)];
    let cols = db.query(cols_sql, &params).await?;
    if cols.rows.is_empty() {
        return Ok(None);
    }
    let text = |v: &SqlValue| String::from_utf8_lossy(&v.canonical()).into_owned();
    let pk = db.query(pk_sql, &params).await?;
    Ok(Some(TableInfo {
        columns: cols
            .rows
            .iter()
            .map(|r| (text(&r[0]), text(&r[1]).to_ascii_lowercase()))
            .collect(),
        primary_key: pk.rows.iter().map(|r| text(&r[0])).collect(),
    }))
}

fn is_integer_type(t: &str) -> bool {
    matches!(
        t,
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint"
    )
}

/// One slice of the key space: keys in (lo, hi]; `None` = unbounded.
#[derive(Debug, Clone)]
struct Range {
    lo: Option<Vec<SqlValue>>,
    hi: Option<i64>,
}

fn key_json(k: &[SqlValue]) -> Json {
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

fn key_from_json(j: &Json) -> Option<Vec<SqlValue>> {
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

/// The shared state of a running copy (shared by the workers, on any thread).
struct Run {
    src: Db,
    dst: Db,
    opts: Options,
    select_cols: Vec<String>,
    insert_cols: Vec<String>,
    key: Vec<String>,
    key_idx: Vec<usize>,
    ranges: Vec<Range>,
    /// Last copied key per range, and whether the range is done.
    last: Mutex<Vec<Option<Vec<SqlValue>>>>,
    done: Mutex<Vec<bool>>,
    rows: AtomicU64,
    batches: AtomicU64,
    retries: AtomicU64,
    /// Batches go through LOAD DATA LOCAL INFILE (MySQL target, option and columns allow it;
    /// turned off for the rest of the copy when the server refuses it).
    load_data: AtomicBool,
    load_sql: String,
    load_data_batches: AtomicU64,
}

/// What happens to a page of rows between the SELECT and the INSERT.
trait RowMap {
    fn map(&self, run: &Run, rows: Vec<Vec<SqlValue>>) -> Result<Vec<Vec<SqlValue>>>;
}

/// The insert columns picked out of each row; runs on any thread.
struct Project;

impl RowMap for Project {
    fn map(&self, run: &Run, rows: Vec<Vec<SqlValue>>) -> Result<Vec<Vec<SqlValue>>> {
        let idx: Vec<usize> = run
            .insert_cols
            .iter()
            .map(|c| run.select_cols.iter().position(|s| s == c).unwrap_or(0))
            .collect();
        if idx.len() == run.select_cols.len() && idx.iter().enumerate().all(|(i, j)| i == *j) {
            return Ok(rows);
        }
        Ok(rows
            .into_iter()
            .map(|r| idx.iter().map(|j| r[*j].clone()).collect())
            .collect())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn current_step(c: &RunContext) -> Option<String> {
    c.steps
        .borrow()
        .iter()
        .rev()
        .find(|s| s.status == StepStatus::Running)
        .map(|s| s.id.clone())
}

pub async fn copy_table(
    lua: &Lua,
    src: Db,
    dst: Db,
    mut o: Options,
    transform: Option<Function>,
) -> Result<Json> {
    let c = ctx(lua);
    let started = Instant::now();
    let sinfo = table_info(&src, &o.table).await?.ok_or_else(|| {
        FerryError::new(
            ErrorKind::NotFound,
            format!("source table {} does not exist in {}", o.table, src.display),
        )
    })?;
    let dinfo = table_info(&dst, &o.dst_table).await?.ok_or_else(|| {
        FerryError::new(
            ErrorKind::NotFound,
            format!(
                "target table {} does not exist in {}",
                o.dst_table, dst.display
            ),
        )
        .hint("create the target table first (copy_table copies rows, not schemas)")
    })?;
    let src_names: Vec<String> = sinfo.columns.iter().map(|c| c.0.clone()).collect();
    let key = match o.key.clone() {
        Some(k) => k,
        None if !sinfo.primary_key.is_empty() => sinfo.primary_key.clone(),
        None => {
            return Err(FerryError::new(
                ErrorKind::InvalidInput,
                format!("table {} has no primary key", o.table),
            )
            .hint("give key = \"column\" (a unique, ordered column) to copy_table"));
        }
    };
    let insert_cols = o.columns.clone().unwrap_or_else(|| src_names.clone());
    let missing_src: Vec<&String> = insert_cols
        .iter()
        .chain(key.iter())
        .filter(|c| !src_names.contains(c))
        .collect();
    if !missing_src.is_empty() {
        return Err(FerryError::new(
            ErrorKind::InvalidInput,
            format!(
                "source table {} has no column(s) {}",
                o.table,
                missing_src
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    let dst_names: Vec<&String> = dinfo.columns.iter().map(|c| &c.0).collect();
    let missing_dst: Vec<&String> = insert_cols
        .iter()
        .filter(|c| !dst_names.contains(c))
        .collect();
    if !missing_dst.is_empty() {
        return Err(FerryError::new(
            ErrorKind::InvalidInput,
            format!(
                "target table {} in {} lacks column(s) {} that the copy writes",
                o.dst_table,
                dst.display,
                missing_dst
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
        .hint("add the columns to the target, or choose columns = {...}"));
    }
    let mut select_cols = insert_cols.clone();
    for k in &key {
        if !select_cols.contains(k) {
            select_cols.push(k.clone());
        }
    }
    let key_idx: Vec<usize> = key
        .iter()
        .map(|k| select_cols.iter().position(|c| c == k).unwrap_or(0))
        .collect();
    // Both servers allow 65535 parameters per statement.
    o.batch = o.batch.min(65_535 / insert_cols.len().max(1)).max(1);

    // The plan: stored in the journal on the first run, reused on resume.
    let step = current_step(&c);
    // Named by both ends, so a plan is only reused for the same copy; valid under changed tuning
    // parameters (throttle, workers), since the target itself says how far each range got.
    let plan_name = format!(
        "copy_table:{}:{}->{}:{}",
        src.display, o.table, dst.display, o.dst_table
    );
    let prior = step
        .as_ref()
        .and_then(|s| c.checkpoint_get_any_params(s, &plan_name));
    let resume = prior.is_some();
    let (ranges, last): (Vec<Range>, Vec<Option<Vec<SqlValue>>>) = match &prior {
        Some(p) => {
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
        None => {
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
                    quote(&src, &o.table),
                    o.where_
                        .as_ref()
                        .map(|w| format!(" WHERE {w}"))
                        .unwrap_or_default(),
                    k = quote(&src, &key[0])
                );
                let rs = src.query(&sql, &[]).await?;
                let row = rs.rows.first().cloned().unwrap_or_default();
                match (
                    row.first().and_then(|v| v.as_i64()),
                    row.get(1).and_then(|v| v.as_i64()),
                ) {
                    (Some(min), Some(max)) => {
                        ranges = plan_ranges(
                            min,
                            max,
                            o.ranges.unwrap_or(o.workers * 2).max(1),
                            o.shard,
                        );
                    }
                    // An empty table: shard 0 takes the (open) whole range.
                    _ if o.shard.is_some_and(|(i, _)| i > 0) => ranges.clear(),
                    _ => {}
                }
            }
            let n = ranges.len();
            (ranges, vec![None; n])
        }
    };
    let n_ranges = ranges.len();
    let unloadable: Vec<String> = dinfo
        .columns
        .iter()
        .filter(|(n, t)| insert_cols.contains(n) && !load_data::loadable_type(t))
        .map(|(n, t)| format!("{n} ({t})"))
        .collect();
    let load_data =
        dst.backend == Backend::Mysql && o.load == LoadMode::LoadData && unloadable.is_empty();
    if dst.backend == Backend::Mysql && o.load == LoadMode::LoadData && !unloadable.is_empty() {
        tracing::info!(target: EV, "{}: column(s) {} of {} are not loaded with LOAD DATA; copying with INSERT statements",
            o.title, unloadable.join(", "), o.dst_table);
    }
    let load_sql = load_data::statement(
        &quote(&dst, &o.dst_table),
        &insert_cols
            .iter()
            .map(|c| quote(&dst, c))
            .collect::<Vec<_>>(),
        match o.on_conflict {
            OnConflict::Error => Duplicates::Default,
            OnConflict::Ignore => Duplicates::Ignore,
            OnConflict::Replace => Duplicates::Replace,
        },
    );
    let run = Arc::new(Run {
        src: src.clone(),
        dst: dst.clone(),
        select_cols,
        insert_cols,
        key: key.clone(),
        key_idx,
        ranges,
        last: Mutex::new(if last.len() == n_ranges {
            last
        } else {
            vec![None; n_ranges]
        }),
        done: Mutex::new(vec![false; n_ranges]),
        rows: AtomicU64::new(0),
        batches: AtomicU64::new(0),
        retries: AtomicU64::new(0),
        load_data: AtomicBool::new(load_data),
        load_sql,
        load_data_batches: AtomicU64::new(0),
        opts: o,
    });
    let save_plan = |run: &Run| -> Result<()> {
        if let Some(s) = &step {
            let ranges: Vec<Json> = run
                .ranges
                .iter()
                .map(|r| json!({"lo": r.lo.as_ref().map(|k| key_json(k)), "hi": r.hi}))
                .collect();
            let last: Vec<Json> = lock(&run.last)
                .iter()
                .map(|l| l.as_ref().map(|k| key_json(k)).unwrap_or(Json::Null))
                .collect();
            c.checkpoint_set(s, &plan_name, json!({"ranges": ranges, "last": last}))?;
        }
        Ok(())
    };
    if !c.dry_run() {
        save_plan(&run)?;
    }
    if c.dry_run() {
        let total = count(&src, &run.opts.table, run.opts.where_.as_deref()).await?;
        c.would(&format!(
            "copy {total} rows of {} from {} into {} on {}",
            run.opts.table, src.display, run.opts.dst_table, dst.display
        ));
        return Ok(json!({"rows": 0, "would_copy": total, "dry_run": true, "ranges": n_ranges}));
    }
    tracing::info!(target: EV, "{}: {} range(s), {} worker(s), batches of {}{}", run.opts.title, n_ranges,
        run.opts.workers, run.opts.batch, if resume { ", resuming" } else { "" });

    // Workers take ranges from a shared queue; a ticker reports and checkpoints every second.
    let queue = Arc::new(Mutex::new((0..n_ranges).collect::<VecDeque<usize>>()));
    let failed: Arc<Mutex<Option<FerryError>>> = Arc::new(Mutex::new(None));
    let n_workers = run.opts.workers.min(n_ranges).max(1);
    let has_transform = transform.is_some();
    let all: futures::future::LocalBoxFuture<'_, ()> = match transform {
        None => {
            // On the multi-threaded runtime; dropping the set (an interrupt, a failed
            // checkpoint) aborts the workers.
            let mut set = tokio::task::JoinSet::new();
            for _ in 0..n_workers {
                set.spawn(work(
                    run.clone(),
                    queue.clone(),
                    failed.clone(),
                    resume,
                    Project,
                ));
            }
            let failed = failed.clone();
            Box::pin(async move {
                while let Some(joined) = set.join_next().await {
                    if let Err(e) = joined {
                        lock(&failed).get_or_insert(FerryError::new(
                            ErrorKind::Internal,
                            format!("a copy_table worker ended abnormally: {e}"),
                        ));
                    }
                }
            })
        }
        Some(f) => {
            let t = Rc::new(Transform {
                f,
                lua: lua.clone(),
            });
            let workers: Vec<_> = (0..n_workers)
                .map(|_| {
                    work(
                        run.clone(),
                        queue.clone(),
                        failed.clone(),
                        resume,
                        t.clone(),
                    )
                })
                .collect();
            Box::pin(async move {
                futures::future::join_all(workers).await;
            })
        }
    };
    tokio::pin!(all);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let mut last_rows = 0u64;
    loop {
        tokio::select! {
            _ = &mut all => break,
            _ = tick.tick() => {
                let rows = run.rows.load(Ordering::Relaxed);
                let done = lock(&run.done).iter().filter(|d| **d).count();
                let secs = started.elapsed().as_secs();
                tracing::info!(target: EV, "{}: processed for {secs} seconds, ({done}/{n_ranges}) ranges, total {rows} rows, last second {} rows",
                    run.opts.title, rows - last_rows);
                output::event("copy_table_progress", json!({"table": run.opts.table, "seconds": secs,
                    "ranges_done": done, "ranges": n_ranges, "rows": rows, "last_second": rows - last_rows}));
                last_rows = rows;
                save_plan(&run)?;
            }
            _ = c.cancel.cancelled() => {
                let _ = save_plan(&run);
                return Err(FerryError::new(ErrorKind::Cancelled, format!("{}: interrupted", run.opts.title)));
            }
        }
    }
    save_plan(&run)?;
    if let Some(e) = lock(&failed).take() {
        return Err(e);
    }
    let rows = run.rows.load(Ordering::Relaxed);
    let secs = started.elapsed().as_secs_f64();
    tracing::info!(target: EV, "{}: copy done, total {rows} rows in {secs:.1}s ({:.0} rows/s)", run.opts.title, rows as f64 / secs.max(0.001));
    let mut report = json!({"rows": rows, "batches": run.batches.load(Ordering::Relaxed), "seconds": secs, "ranges": n_ranges,
                            "resumed": resume, "retries": run.retries.load(Ordering::Relaxed),
                            "load_data_batches": run.load_data_batches.load(Ordering::Relaxed)});
    // A shard verifies its own slice of the key range (the other shards may still be copying).
    let (src_where, dst_where) = match run.opts.shard {
        None => (run.opts.where_.clone(), None),
        Some(_) if run.ranges.is_empty() => (Some("1 = 0".to_string()), Some("1 = 0".to_string())),
        Some(_) => {
            let cond = |db: &Db| {
                let k = quote(db, &key[0]);
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
                (!c.is_empty() && key.len() == 1).then(|| c.join(" AND "))
            };
            let s = match (run.opts.where_.as_ref(), cond(&src)) {
                (Some(w), Some(c)) => Some(format!("({w}) AND {c}")),
                (w, c) => c.or(w.cloned()),
            };
            (s, cond(&dst))
        }
    };
    match run.opts.verify {
        VerifyMode::None => {}
        VerifyMode::Count => {
            let s = count(&src, &run.opts.table, src_where.as_deref()).await?;
            let d = count(&dst, &run.opts.dst_table, dst_where.as_deref()).await?;
            report["source_rows"] = json!(s);
            report["target_rows"] = json!(d);
            if s != d && !has_transform {
                return Err(FerryError::new(
                    ErrorKind::Conflict,
                    format!(
                        "verify: {} has {s} rows in {} but {} has {d} in {}",
                        run.opts.table, src.display, run.opts.dst_table, dst.display
                    ),
                ));
            }
            report["verified"] = json!("count");
        }
        VerifyMode::Checksum => {
            let (sn, sh) = checksum(
                &src,
                &run.opts.table,
                &run.insert_cols,
                &key,
                src_where.as_deref(),
            )
            .await?;
            let (dn, dh) = checksum(
                &dst,
                &run.opts.dst_table,
                &run.insert_cols,
                &key,
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
    Ok(report)
}

#[cfg(test)]
mod shard_tests {
    use super::{Range, SqlValue, plan_ranges};

    fn lo_of(r: &Range) -> Option<i64> {
        match r.lo.as_ref().and_then(|l| l.first()) {
            Some(SqlValue::Int(i)) => Some(*i),
            _ => None,
        }
    }

    #[test]
    fn shards_take_contiguous_slices_that_cover_the_key_space_once() {
        for (min, max, count) in [(1i64, 1000i64, 3u32), (5, 7, 4), (-10, 10, 1), (0, 0, 2)] {
            let mut owners = std::collections::BTreeMap::new();
            for i in 0..count {
                for r in plan_ranges(min, max, 4, Some((i, count))) {
                    for k in (min - 2)..=(max + 2) {
                        let above = lo_of(&r).is_none_or(|lo| k > lo);
                        let below = r.hi.is_none_or(|hi| k <= hi);
                        if above && below {
                            assert!(owners.insert(k, i).is_none(), "key {k} in two ranges");
                        }
                    }
                }
            }
            for k in min..=max {
                assert!(
                    owners.contains_key(&k),
                    "key {k} of {min}..{max} / {count} not covered"
                );
            }
        }
        // Without a shard: the whole space in n ranges, open at both ends.
        let r = plan_ranges(1, 100, 4, None);
        assert_eq!(r.len(), 4);
        assert!(lo_of(&r[0]).is_none() && r[3].hi.is_none());
    }
}
