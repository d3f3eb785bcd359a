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

/// The script's `transform(row)`, called on the Lua thread (slower path).
struct Transform {
    f: Function,
    lua: Lua,
}

impl RowMap for Rc<Transform> {
    fn map(&self, run: &Run, rows: Vec<Vec<SqlValue>>) -> Result<Vec<Vec<SqlValue>>> {
        let f = &self.f;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let t = row_to_lua(&self.lua, &run.select_cols, &r, false)
                .map_err(|e| FerryError::from_lua_error(&e))?;
            let v: Value = f.call(t).map_err(|e| FerryError::from_lua_error(&e))?;
            match v {
                Value::Nil | Value::Boolean(false) => continue,
                Value::Table(t) => {
                    let mut row = Vec::with_capacity(run.insert_cols.len());
                    for c in &run.insert_cols {
                        row.push(
                            value_from_lua(
                                &t.get::<Value>(c.as_str())
                                    .map_err(|e| FerryError::from_lua_error(&e))?,
                            )
                            .map_err(|e| FerryError::from_lua_error(&e))?,
                        );
                    }
                    out.push(row);
                }
                other => {
                    return Err(FerryError::new(
                        ErrorKind::InvalidInput,
                        format!(
                            "transform returned a {}, expected a row table or nil",
                            other.type_name()
                        ),
                    ));
                }
            }
        }
        Ok(out)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Run {
    fn key_cond(
        &self,
        db: &Db,
        after: &Option<Vec<SqlValue>>,
        hi: Option<i64>,
        params: &mut Vec<SqlValue>,
    ) -> Vec<String> {
        let mut conds = Vec::new();
        if let Some(lo) = after {
            if self.key.len() == 1 {
                conds.push(format!("{} > ?", quote(db, &self.key[0])));
            } else {
                let cols: Vec<String> = self.key.iter().map(|k| quote(db, k)).collect();
                let qs: Vec<&str> = self.key.iter().map(|_| "?").collect();
                conds.push(format!("({}) > ({})", cols.join(", "), qs.join(", ")));
            }
            params.extend(lo.iter().cloned());
        }
        if let Some(h) = hi {
            conds.push(format!("{} <= ?", quote(db, &self.key[0])));
            params.push(SqlValue::Int(h));
        }
        conds
    }

    fn select_sql(
        &self,
        after: &Option<Vec<SqlValue>>,
        hi: Option<i64>,
        params: &mut Vec<SqlValue>,
    ) -> String {
        let db = &self.src;
        let mut conds = self.key_cond(db, after, hi, params);
        if let Some(w) = &self.opts.where_ {
            conds.push(format!("({w})"));
        }
        let cols: Vec<String> = self.select_cols.iter().map(|c| quote(db, c)).collect();
        let order: Vec<String> = self.key.iter().map(|k| quote(db, k)).collect();
        format!(
            "SELECT {} FROM {}{} ORDER BY {} LIMIT {}",
            cols.join(", "),
            quote(db, &self.opts.table),
            if conds.is_empty() {
                String::new()
            } else {
                format!(" WHERE {}", conds.join(" AND "))
            },
            order.join(", "),
            self.opts.batch
        )
    }

    fn insert_sql(&self, nrows: usize) -> String {
        let db = &self.dst;
        let cols: Vec<String> = self.insert_cols.iter().map(|c| quote(db, c)).collect();
        let one = format!("({})", vec!["?"; cols.len()].join(", "));
        let values = vec![one; nrows].join(", ");
        let table = quote(db, &self.opts.dst_table);
        match (db.backend, self.opts.on_conflict) {
            (Backend::Mysql, OnConflict::Error) => {
                format!("INSERT INTO {table} ({}) VALUES {values}", cols.join(", "))
            }
            (Backend::Mysql, OnConflict::Ignore) => format!(
                "INSERT IGNORE INTO {table} ({}) VALUES {values}",
                cols.join(", ")
            ),
            (Backend::Mysql, OnConflict::Replace) => {
                format!("REPLACE INTO {table} ({}) VALUES {values}", cols.join(", "))
            }
            (Backend::Postgres, OnConflict::Error) => {
                format!("INSERT INTO {table} ({}) VALUES {values}", cols.join(", "))
            }
            (Backend::Postgres, OnConflict::Ignore) => {
                format!(
                    "INSERT INTO {table} ({}) VALUES {values} ON CONFLICT DO NOTHING",
                    cols.join(", ")
                )
            }
            (Backend::Postgres, OnConflict::Replace) => {
                let keys: Vec<String> = self.key.iter().map(|k| quote(db, k)).collect();
                let sets: Vec<String> = self
                    .insert_cols
                    .iter()
                    .filter(|c| !self.key.contains(c))
                    .map(|c| format!("{q} = EXCLUDED.{q}", q = quote(db, c)))
                    .collect();
                if sets.is_empty() {
                    format!(
                        "INSERT INTO {table} ({}) VALUES {values} ON CONFLICT DO NOTHING",
                        cols.join(", ")
                    )
                } else {
                    format!(
                        "INSERT INTO {table} ({}) VALUES {values} ON CONFLICT ({}) DO UPDATE SET {}",
                        cols.join(", "),
                        keys.join(", "),
                        sets.join(", ")
                    )
                }
            }
        }
    }

    /// Writes one batch: through LOAD DATA LOCAL INFILE when that path is on, as one multi-row
    /// INSERT otherwise. Either way the batch is committed whole or not at all.
    async fn write_batch(
        &self,
        conn: &mut Conn,
        in_txn: &mut bool,
        rows: Vec<Vec<SqlValue>>,
    ) -> Result<()> {
        let display = &self.dst.display;
        let width = self.insert_cols.len().max(1);
        let params: Vec<SqlValue> = rows.into_iter().flatten().collect();
        let nrows = params.len() / width;
        if self.load_data.load(Ordering::Relaxed) {
            // With LOCAL the server turns duplicate keys and bad values into warnings (it
            // cannot stop the client's transfer), so each batch is its own transaction, kept
            // only when it did what the INSERT would have done.
            if !*in_txn {
                conn.exec(display, "SET autocommit = 0", &[]).await?;
                *in_txn = true;
            }
            let data = load_data::encode(&params, width);
            match conn.load_data_local(display, &self.load_sql, data).await? {
                Some(l) if self.load_kept(l, nrows) => {
                    conn.exec(display, "COMMIT", &[]).await?;
                    self.load_data_batches.fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
                Some(l) => {
                    conn.exec(display, "ROLLBACK", &[]).await?;
                    tracing::debug!(target: EV, "{}: LOAD DATA of {nrows} rows gave {} affected and {} warning(s); rolled back, writing the batch with INSERT",
                        self.opts.title, l.affected, l.warnings);
                }
                None => {
                    conn.exec(display, "ROLLBACK", &[]).await?;
                    if self.load_data.swap(false, Ordering::Relaxed) {
                        tracing::info!(target: EV, "{}: {} refuses LOAD DATA LOCAL INFILE (server variable local_infile is OFF); copying with INSERT statements",
                            self.opts.title, self.dst.display);
                    }
                }
            }
        }
        conn.exec(display, &self.insert_sql(nrows), &params).await?;
        if *in_txn {
            conn.exec(display, "COMMIT", &[]).await?;
        }
        Ok(())
    }

    /// Whether a LOAD DATA did what the INSERT of the same rows would have: no warnings (a
    /// skipped duplicate or a converted value is one) unless conflicts are ignored anyway, and
    /// every row inserted when a conflict is an error.
    fn load_kept(&self, l: Loaded, nrows: usize) -> bool {
        match self.opts.on_conflict {
            OnConflict::Ignore => true,
            OnConflict::Replace => l.warnings == 0,
            OnConflict::Error => l.warnings == 0 && l.affected == nrows as u64,
        }
    }

    /// The largest key already in the target within a range after `after`.
    async fn target_max(
        &self,
        after: &Option<Vec<SqlValue>>,
        hi: Option<i64>,
    ) -> Result<Option<Vec<SqlValue>>> {
        let db = &self.dst;
        let mut params = Vec::new();
        let conds = self.key_cond(db, after, hi, &mut params);
        let cols: Vec<String> = self.key.iter().map(|k| quote(db, k)).collect();
        let desc: Vec<String> = cols.iter().map(|c| format!("{c} DESC")).collect();
        let sql = format!(
            "SELECT {} FROM {}{} ORDER BY {} LIMIT 1",
            cols.join(", "),
            quote(db, &self.opts.dst_table),
            if conds.is_empty() {
                String::new()
            } else {
                format!(" WHERE {}", conds.join(" AND "))
            },
            desc.join(", ")
        );
        Ok(db.query(&sql, &params).await?.rows.into_iter().next())
    }

    /// Copies one range to its end, retrying batches after connection failures.
    async fn copy_range<M: RowMap>(&self, i: usize, resume: bool, map: &M) -> Result<()> {
        let hi = self.ranges[i].hi;
        let mut after = lock(&self.last)[i]
            .clone()
            .or_else(|| self.ranges[i].lo.clone());
        if resume && let Some(m) = self.target_max(&after, hi).await? {
            after = Some(m);
        }
        let mut failures = 0;
        // One source and one target connection for the whole range: a connection returned to
        // the pool is reset, which would drop its prepared statements and make every batch
        // prepare its SELECT and its INSERT again.
        let mut conns: Option<(Conn, Conn)> = None;
        // Whether the target connection runs with autocommit off (the LOAD DATA path commits
        // each batch itself), and the first and last key of the batch being written.
        let mut in_txn = false;
        let mut span: Option<Json> = None;
        loop {
            let step: Result<bool> = async {
                if conns.is_none() {
                    conns = Some((self.src.conn().await?, self.dst.conn().await?));
                    in_txn = false;
                }
                let (src_conn, dst_conn) = conns.as_mut().expect("connected above");
                let mut params = Vec::new();
                let sql = self.select_sql(&after, hi, &mut params);
                let rs = src_conn.query(&self.src.display, &sql, &params).await?;
                let n = rs.rows.len();
                if n == 0 {
                    return Ok(false);
                }
                let first_key: Vec<SqlValue> = self
                    .key_idx
                    .iter()
                    .map(|k| rs.rows[0][*k].clone())
                    .collect();
                let last_key: Vec<SqlValue> = self
                    .key_idx
                    .iter()
                    .map(|k| rs.rows[n - 1][*k].clone())
                    .collect();
                let rows = map.map(self, rs.rows)?;
                if let Some(t) = &self.opts.throttle {
                    t.acquire(n as u64).await;
                }
                if !rows.is_empty() {
                    span = Some(json!([key_json(&first_key), key_json(&last_key)]));
                    self.write_batch(dst_conn, &mut in_txn, rows).await?;
                }
                self.rows.fetch_add(n as u64, Ordering::Relaxed);
                self.batches.fetch_add(1, Ordering::Relaxed);
                lock(&self.last)[i] = Some(last_key.clone());
                after = Some(last_key);
                Ok(n == self.opts.batch)
            }
            .await;
            match step {
                Ok(true) => {
                    failures = 0;
                    span = None;
                }
                Ok(false) => break,
                // A statement past query_timeout is not retryable for a caller who cannot
                // tell whether it committed; here the target is asked where the range stands
                // before the next batch, so it is retried like a dropped connection.
                Err(e) if (e.retryable || e.kind == ErrorKind::Timeout) && failures < 5 => {
                    failures += 1;
                    self.retries.fetch_add(1, Ordering::Relaxed);
                    // The connections may be dead: take fresh ones for the next attempt.
                    conns = None;
                    tracing::warn!(target: EV, "{}: range {} batch failed, retrying ({}/5): {}", self.opts.title, i + 1, failures, e.one_line());
                    tokio::time::sleep(crate::runtime::retry::SQL.delay(failures)).await;
                    // The failed INSERT may or may not have committed: continue after what the
                    // target really holds (if asking fails too, the next attempt asks again).
                    match self.target_max(&after, hi).await {
                        Ok(Some(m)) => {
                            after = Some(m);
                            lock(&self.last)[i] = after.clone();
                        }
                        Ok(None) => {}
                        Err(e2) => {
                            tracing::debug!(target: EV, "asking the target where range {} stands failed: {}", i + 1, e2.one_line())
                        }
                    }
                }
                Err(e) => {
                    let mut e = e
                        .with("table", &self.opts.table)
                        .with("range", i + 1)
                        .with("after_key", key_json(after.as_deref().unwrap_or(&[])));
                    if let Some(span) = span.take() {
                        e = e.with("batch_keys", span);
                    }
                    return Err(e);
                }
            }
        }
        lock(&self.done)[i] = true;
        Ok(())
    }
}

/// One worker: takes ranges from the queue until it is empty or a range failed.
async fn work<M: RowMap>(
    run: Arc<Run>,
    queue: Arc<Mutex<VecDeque<usize>>>,
    failed: Arc<Mutex<Option<FerryError>>>,
    resume: bool,
    map: M,
) {
    loop {
        if lock(&failed).is_some() {
            break;
        }
        let next = lock(&queue).pop_front();
        let Some(i) = next else { break };
        if let Err(e) = run.copy_range(i, resume, &map).await {
            lock(&failed).get_or_insert(e);
            break;
        }
    }
}

fn current_step(c: &RunContext) -> Option<String> {
    c.steps
        .borrow()
        .iter()
        .rev()
        .find(|s| s.status == StepStatus::Running)
        .map(|s| s.id.clone())
}

/// Splits the integer key space [min, max] into `n` ranges (lower bound exclusive, upper
/// inclusive), or with a shard (index, count) that shard's contiguous slice of it into `n`.
/// The lowest range is open below (min - 1 may not fit in 64 bits) and the highest open above
/// (rows inserted above today's maximum while we copy belong to it).
fn plan_ranges(min: i64, max: i64, n: usize, shard: Option<(u32, u32)>) -> Vec<Range> {
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

async fn count(db: &Db, table: &str, where_: Option<&str>) -> Result<i64> {
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

async fn checksum(
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

fn parse_options(t: &Table) -> mlua::Result<Options> {
    crate::runtime::options::check_documented(t, &super::lua::MODULE, "copy_table")?;
    let table: String = t.get::<Option<String>>("table")?.ok_or_else(|| {
        FerryError::new(
            ErrorKind::InvalidInput,
            "ferry.sql.copy_table needs table = \"name\"",
        )
    })?;
    let list = |v: Value| -> mlua::Result<Option<Vec<String>>> {
        Ok(match v {
            Value::Nil => None,
            Value::String(s) => Some(vec![s.to_str()?.to_string()]),
            Value::Table(t) => Some(t.sequence_values::<String>().collect::<mlua::Result<_>>()?),
            other => {
                return Err(FerryError::new(
                    ErrorKind::InvalidInput,
                    format!("expected a list of names, got {}", other.type_name()),
                )
                .into());
            }
        })
    };
    let on_conflict = match t.get::<Option<String>>("on_conflict")?.as_deref() {
        None | Some("error") => OnConflict::Error,
        Some("ignore") => OnConflict::Ignore,
        Some("replace") => OnConflict::Replace,
        Some(o) => {
            return Err(FerryError::new(
                ErrorKind::InvalidInput,
                format!("on_conflict must be error, ignore or replace, not '{o}'"),
            )
            .into());
        }
    };
    let verify = match t.get::<Option<String>>("verify")?.as_deref() {
        None | Some("count") => VerifyMode::Count,
        Some("checksum") => VerifyMode::Checksum,
        Some("none") => VerifyMode::None,
        Some(o) => {
            return Err(FerryError::new(
                ErrorKind::InvalidInput,
                format!("verify must be count, checksum or none, not '{o}'"),
            )
            .into());
        }
    };
    Ok(Options {
        dst_table: t
            .get::<Option<String>>("dst_table")?
            .unwrap_or_else(|| table.clone()),
        title: t
            .get::<Option<String>>("title")?
            .unwrap_or_else(|| format!("copy_table {table}")),
        table,
        key: list(t.get("key")?)?,
        columns: list(t.get("columns")?)?,
        where_: t.get("where")?,
        batch: t.get::<Option<usize>>("batch")?.unwrap_or(1000).max(1),
        workers: t.get::<Option<usize>>("workers")?.unwrap_or(4).max(1),
        ranges: t.get("ranges")?,
        on_conflict,
        load: match t.get::<Option<String>>("load")?.as_deref() {
            None | Some("insert") => LoadMode::Insert,
            Some("load_data") => LoadMode::LoadData,
            Some(o) => {
                return Err(FerryError::new(
                    ErrorKind::InvalidInput,
                    format!("load must be insert or load_data, not '{o}'"),
                )
                .into());
            }
        },
        throttle: limiter_from(&t.get::<Value>("throttle")?)?,
        verify,
        shard: crate::runtime::shard::shard_option(t)?,
    })
}

pub async fn lua_copy_table(
    lua: Lua,
    (src, dst, opts): (mlua::AnyUserData, mlua::AnyUserData, Table),
) -> mlua::Result<Table> {
    let src = src.borrow::<LuaDb>()?.db.clone();
    let dst = dst.borrow::<LuaDb>()?.db.clone();
    let transform: Option<Function> = opts.get("transform")?;
    let mut o = parse_options(&opts)?;
    if o.shard.is_none() {
        o.shard = ctx(&lua).opts.shard;
    }
    let report = copy_table(&lua, src, dst, o, transform).await.lua_err()?;
    let t = lua.create_table()?;
    for (k, v) in report.as_object().into_iter().flatten() {
        t.set(k.as_str(), lua.to_value_json(v)?)?;
    }
    Ok(t)
}

trait ToValueJson {
    fn to_value_json(&self, v: &Json) -> mlua::Result<Value>;
}

impl ToValueJson for Lua {
    fn to_value_json(&self, v: &Json) -> mlua::Result<Value> {
        use mlua::LuaSerdeExt;
        self.to_value(v)
    }
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
