//! `ferry.sql.copy_table`: rows from one table to another, on the same or different servers.
//!
//! Keyset pagination on the primary key (or a given key); for a single integer key the key space
//! is split into ranges that `workers` copy concurrently. Every batch is one multi-row INSERT (or
//! one LOAD DATA, or one COPY on PostgreSQL), so the target holds whole batches only, in key
//! order within a range. The plan and the last key of every range are checkpointed in the step
//! journal; a resumed copy starts each range after max(checkpoint, largest key already in the
//! target), so nothing is inserted twice or skipped.
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
mod pg;
mod plan;
mod range;
mod tables;
mod transform;
mod verify;

pub use lua::lua_copy_table;
use pg::*;
use plan::*;
use range::*;
use tables::*;
use transform::*;
use verify::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnConflict {
    Error,
    Ignore,
    Replace,
}

/// How batches are written to the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadMode {
    /// The backend's default: INSERTs on MySQL/MariaDB (on MariaDB 10.11 LOAD DATA was measured
    /// no cheaper for the server), COPY on PostgreSQL (see bench/sql/README.md).
    Auto,
    /// Multi-row prepared INSERTs.
    Insert,
    /// `LOAD DATA LOCAL INFILE` where the server and the columns allow it, INSERTs otherwise.
    LoadData,
    /// PostgreSQL `COPY ... FROM STDIN` (binary) where the conflict mode and the columns allow
    /// it, INSERTs otherwise.
    Copy,
}

impl LoadMode {
    fn name(self) -> &'static str {
        match self {
            LoadMode::Auto => "auto",
            LoadMode::Insert => "insert",
            LoadMode::LoadData => "load_data",
            LoadMode::Copy => "copy",
        }
    }
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
    /// PostgreSQL target written with COPY: the statement and the target columns' types.
    pg_copy: Option<PgCopy>,
    copy_batches: AtomicU64,
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
    let Columns {
        key,
        insert: insert_cols,
        select: select_cols,
        key_idx,
    } = columns(&o, &sinfo, &dinfo, &dst)?;
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
    let (ranges, last) = match &prior {
        Some(p) => from_checkpoint(p),
        None => plan(&src, &o, &key, &sinfo).await?,
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
    let pg_copy = if c.dry_run() {
        None
    } else {
        pg_copy_plan(&dst, &o, &insert_cols).await?
    };
    if dst.backend == Backend::Postgres && o.load == LoadMode::LoadData
        || dst.backend == Backend::Mysql && o.load == LoadMode::Copy
    {
        tracing::info!(target: EV, "{}: load = \"{}\" does not apply to {}; copying with INSERT statements",
            o.title, o.load.name(), dst.display);
    }
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
        pg_copy,
        copy_batches: AtomicU64::new(0),
        opts: o,
    });
    let save_plan = |run: &Run| -> Result<()> {
        if let Some(s) = &step {
            c.checkpoint_set(s, &plan_name, run.plan_json())?;
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

    let has_transform = transform.is_some();
    run_workers(lua, &c, &run, transform, resume, started, &save_plan).await?;
    let rows = run.rows.load(Ordering::Relaxed);
    let secs = started.elapsed().as_secs_f64();
    tracing::info!(target: EV, "{}: copy done, total {rows} rows in {secs:.1}s ({:.0} rows/s)", run.opts.title, rows as f64 / secs.max(0.001));
    let mut report = json!({"rows": rows, "batches": run.batches.load(Ordering::Relaxed), "seconds": secs, "ranges": n_ranges,
                            "resumed": resume, "retries": run.retries.load(Ordering::Relaxed),
                            "load_data_batches": run.load_data_batches.load(Ordering::Relaxed),
                            "copy_batches": run.copy_batches.load(Ordering::Relaxed)});
    verify_copy(&run, has_transform, &mut report).await?;
    Ok(report)
}

/// Runs the workers until every range is copied: they take ranges from a shared queue (on the
/// multi-threaded runtime, or on the Lua thread with a transform), while a ticker reports progress
/// and checkpoints the plan every second. The first worker error is returned after all stopped.
async fn run_workers(
    lua: &Lua,
    c: &RunContext,
    run: &Arc<Run>,
    transform: Option<Function>,
    resume: bool,
    started: Instant,
    save_plan: &dyn Fn(&Run) -> Result<()>,
) -> Result<()> {
    let n_ranges = run.ranges.len();
    let queue = Arc::new(Mutex::new((0..n_ranges).collect::<VecDeque<usize>>()));
    let failed: Arc<Mutex<Option<FerryError>>> = Arc::new(Mutex::new(None));
    let n_workers = run.opts.workers.min(n_ranges).max(1);
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
                save_plan(run)?;
            }
            _ = c.cancel.cancelled() => {
                let _ = save_plan(run);
                return Err(FerryError::new(ErrorKind::Cancelled, format!("{}: interrupted", run.opts.title)));
            }
        }
    }
    save_plan(run)?;
    if let Some(e) = lock(&failed).take() {
        return Err(e);
    }
    Ok(())
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
