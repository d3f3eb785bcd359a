//! One key range copied by one worker: pages of SELECT, batches of INSERT (or LOAD DATA, or
//! COPY), resume.

use super::*;
use crate::sql::pg_copy;

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

    /// Writes one batch: through LOAD DATA LOCAL INFILE or COPY FROM STDIN when that path is
    /// on, as one multi-row INSERT otherwise. Either way the batch is committed whole or not at
    /// all.
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
        if let Some(copy) = &self.pg_copy {
            // In autocommit the COPY is its own transaction: a duplicate key or a value the
            // column refuses fails the whole batch, as the INSERT would.
            let data = pg_copy::encode(&params, &copy.types, &self.insert_cols)
                .map_err(|e| e.with("table", &self.opts.dst_table))?;
            conn.pg_copy_in(display, &copy.sql, data).await?;
            self.copy_batches.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
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
pub(super) async fn work<M: RowMap>(
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
