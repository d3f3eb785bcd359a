//! A StarRocks cluster DOUBLE for tests (StarRocks cannot run here): a MySQL-protocol FE front
//! (opensrv-mysql) in front of a real MariaDB, plus Stream Load HTTP endpoints on an "FE" port
//! (answers 307 to the "BE") and a "BE" port (loads into the MariaDB behind it).
//!
//! What the double answers itself, with the columns of the StarRocks reference
//! (`reference/starrocks.md` §2): SHOW PARTITIONS (shared-nothing columns; VisibleVersion starts
//! at 1 and moves by one on every load that changes the partition), ADMIN SHOW/SET FRONTEND
//! CONFIG, SHOW FRONTENDS/BACKENDS/COMPUTE NODES, SHOW DATA, SHOW CREATE TABLE (the StarRocks text
//! as created, edited by ALTER TABLE), SHOW DATABASES/TABLES, CREATE/DROP DATABASE and TABLE
//! (StarRocks DDL translated for MariaDB, see ddl.rs), ALTER TABLE ADD/DROP COLUMN and PARTITION,
//! INSERT OVERWRITE (one MariaDB transaction). Everything else is passed to MariaDB.
//!
//! One cluster is a set of MariaDB databases named `<prefix><db>`; backquoted identifiers
//! followed by a dot (`` `db`.`t` ``) are mapped, so statements must qualify tables that way.
#![allow(dead_code)]

#[path = "ddl.rs"]
pub mod ddl;
#[path = "stream_load.rs"]
pub mod stream_load;

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use mysql_async::prelude::Queryable;
use opensrv_mysql::{
    AsyncMysqlIntermediary, AsyncMysqlShim, Column, ColumnFlags, ColumnType, ErrorKind, OkResponse,
    ParamParser, QueryResultWriter, StatementMetaWriter,
};
use regex::Regex;
use sha1::{Digest, Sha1};
use tokio::io::AsyncWrite;

use crate::common::background::Background;
use crate::common::db;

pub type Key = (String, String);

#[derive(Debug, Clone)]
pub struct TableMeta {
    /// `CREATE TABLE` text as StarRocks' SHOW CREATE TABLE prints it.
    pub ddl: String,
    pub partitioned: bool,
    pub id: i64,
}

#[derive(Debug, Clone)]
pub struct ConfigItem {
    pub value: String,
    pub ty: &'static str,
    pub mutable: bool,
}

/// How the next Stream Loads into a table fail.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LoadFault {
    /// `{"Status":"Fail"}`, nothing loaded, the label stays free.
    Fail,
    /// The load commits but the client never gets the answer (connection closed).
    CommitThenDrop,
    /// The load commits, then the answer waits this long (a client killed meanwhile never sees it).
    CommitThenHang(std::time::Duration),
}

#[derive(Debug, Clone)]
pub struct LoadRecord {
    pub db: String,
    pub table: String,
    pub label: String,
    pub status: String,
    pub rows: u64,
}

#[derive(Default)]
pub struct Meta {
    pub tables: BTreeMap<Key, TableMeta>,
    /// Views: `CREATE VIEW` text as SHOW CREATE VIEW prints it.
    pub views: BTreeMap<Key, String>,
    pub versions: HashMap<(String, String, String), i64>,
    pub config: BTreeMap<String, ConfigItem>,
    /// (db, label) → TxnId of a finished load.
    pub labels: HashMap<Key, i64>,
    pub next_id: i64,
    /// Per database: how the next Stream Loads into any of its tables fail.
    pub faults: HashMap<String, Vec<LoadFault>>,
    pub loads: Vec<LoadRecord>,
    /// Every ADMIN SET FRONTEND CONFIG, in order.
    pub config_sets: Vec<(String, String)>,
    pub max_disk_used_pct: f64,
    /// What SHOW FRONTENDS shows as the FE's IP and HttpPort (default 127.0.0.1 and the real
    /// port), to test hosts.properties mapping.
    pub fe_shown: Option<(String, u16)>,
}

pub struct Shared {
    /// MariaDB server URL without a database.
    pub server: String,
    /// MariaDB database of StarRocks database X: prefix + X + suffix.
    pub prefix: String,
    pub suffix: String,
    pub user: String,
    pub password: String,
    pub meta: Mutex<Meta>,
    pub pool: mysql_async::Pool,
    pub query_port: u16,
    pub http_port: u16,
    pub be_http_port: u16,
}

pub struct StarRocks {
    pub shared: Arc<Shared>,
    servers: Vec<Background>,
}

static CLUSTERS: AtomicU32 = AtomicU32::new(0);

fn listener() -> std::net::TcpListener {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.set_nonblocking(true).expect("nonblocking");
    l
}

impl StarRocks {
    /// Starts a cluster double over the `FERRY_TEST_MYSQL_URL` server.
    pub fn start(name: &str, user: &str, password: &str) -> StarRocks {
        let server = db::mysql_url().expect("FERRY_TEST_MYSQL_URL");
        let n = CLUSTERS.fetch_add(1, Ordering::SeqCst);
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        // ft_<hint>_<time>_<pid>_<n>, the shape the shared helper's stale-database sweep reads.
        let prefix = format!("ft_sr_{name}_");
        let suffix = format!("_{stamp}_{}_{n}", std::process::id());
        let (q, h, b) = (listener(), listener(), listener());
        let port = |l: &std::net::TcpListener| l.local_addr().expect("addr").port();
        let mut config = BTreeMap::new();
        for (k, v, ty) in [
            (
                "enable_legacy_compatibility_for_replication",
                "false",
                "boolean",
            ),
            ("lake_compaction_max_tasks", "-1", "int"),
            ("lake_autovacuum_grace_period_minutes", "30", "long"),
            ("replication_max_parallel_table_count", "100", "int"),
            ("replication_max_parallel_replica_count", "10240", "int"),
            ("replication_max_parallel_data_size_mb", "1048576", "int"),
            ("replication_transaction_timeout_sec", "86400", "int"),
            ("label_keep_max_second", "259200", "int"),
        ] {
            config.insert(
                k.to_string(),
                ConfigItem {
                    value: v.into(),
                    ty,
                    mutable: true,
                },
            );
        }
        config.insert(
            "run_mode".into(),
            ConfigItem {
                value: "shared_nothing".into(),
                ty: "String",
                mutable: false,
            },
        );
        config.insert(
            "replication_interval_ms".into(),
            ConfigItem {
                value: "100".into(),
                ty: "int",
                mutable: false,
            },
        );
        let pool = mysql_async::Pool::new(server.as_str());
        let shared = Arc::new(Shared {
            server,
            prefix,
            suffix,
            user: user.into(),
            password: password.into(),
            meta: Mutex::new(Meta {
                config,
                next_id: 10_000,
                max_disk_used_pct: 12.5,
                ..Meta::default()
            }),
            pool,
            query_port: port(&q),
            http_port: port(&h),
            be_http_port: port(&b),
        });
        let s1 = shared.clone();
        let front = Background::spawn(&format!("sr-{name}-fe"), q, move |l| serve_mysql(l, s1));
        let s2 = shared.clone();
        let fe_http = Background::spawn(&format!("sr-{name}-fe-http"), h, move |l| {
            stream_load::serve(l, s2, stream_load::Role::Fe)
        });
        let s3 = shared.clone();
        let be_http = Background::spawn(&format!("sr-{name}-be-http"), b, move |l| {
            stream_load::serve(l, s3, stream_load::Role::Be)
        });
        StarRocks {
            shared,
            servers: vec![front, fe_http, be_http],
        }
    }

    pub fn query_port(&self) -> u16 {
        self.shared.query_port
    }
    pub fn http_port(&self) -> u16 {
        self.shared.http_port
    }

    /// A URL of the FE query port for the mariadb CLI (statements go through the double).
    pub fn url(&self) -> String {
        format!(
            "mysql://{}:{}@127.0.0.1:{}/",
            self.shared.user, self.shared.password, self.shared.query_port
        )
    }

    /// Runs statements through the FE front, as a StarRocks user would.
    pub fn sql(&self, sql: &str) -> String {
        db::mysql_exec(&self.url(), sql)
    }

    /// Reads the MariaDB behind the double directly (no version changes): `db` is a StarRocks name.
    pub fn backing(&self, sql_with_db: &str, sr_db: &str) -> Vec<Vec<String>> {
        let sql = sql_with_db.replace("{db}", &format!("`{}`", self.shared.mdb(sr_db)));
        db::tsv_rows(&db::mysql_exec(&self.shared.server, &sql))
    }

    /// Sorted rows of a table as TSV cells.
    pub fn rows(&self, sr_db: &str, table: &str) -> Vec<Vec<String>> {
        let mut r = self.backing(&format!("SELECT * FROM {{db}}.`{table}`"), sr_db);
        r.sort();
        r
    }

    pub fn count(&self, sr_db: &str, table: &str) -> usize {
        self.rows(sr_db, table).len()
    }

    pub fn has_table(&self, sr_db: &str, table: &str) -> bool {
        self.meta()
            .tables
            .contains_key(&(sr_db.to_string(), table.to_string()))
    }

    pub fn version(&self, sr_db: &str, table: &str, partition: &str) -> i64 {
        self.meta()
            .versions
            .get(&(sr_db.into(), table.into(), partition.into()))
            .copied()
            .unwrap_or(0)
    }

    pub fn meta(&self) -> std::sync::MutexGuard<'_, Meta> {
        self.shared.meta.lock().expect("meta lock")
    }

    pub fn config(&self, key: &str) -> String {
        self.meta()
            .config
            .get(key)
            .map(|c| c.value.clone())
            .unwrap_or_default()
    }

    /// The next Stream Loads into any table of sr_db fail as listed, one fault per load.
    pub fn fault_loads(&self, sr_db: &str, faults: &[LoadFault]) {
        self.meta().faults.insert(sr_db.into(), faults.to_vec());
    }

    /// Tables of a database on the MariaDB behind (staging tables included).
    pub fn tables(&self, sr_db: &str) -> Vec<String> {
        self.meta()
            .tables
            .keys()
            .filter(|k| k.0 == sr_db)
            .map(|k| k.1.clone())
            .collect()
    }

    pub fn show_create(&self, sr_db: &str, table: &str) -> String {
        self.meta()
            .tables
            .get(&(sr_db.to_string(), table.to_string()))
            .map(|t| t.ddl.clone())
            .unwrap_or_default()
    }

    pub fn loads(&self) -> Vec<LoadRecord> {
        self.meta().loads.clone()
    }

    pub fn stop(self) {
        for s in self.servers {
            s.stop();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The MySQL front

async fn serve_mysql(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    let mut conn_id = 1u32;
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        conn_id += 1;
        let shared = shared.clone();
        let id = conn_id;
        tokio::spawn(async move {
            let Ok(backend) = shared.pool.get_conn().await else {
                return;
            };
            let (r, w) = stream.into_split();
            let shim = Front {
                shared,
                conn: backend,
                id,
            };
            let _ = AsyncMysqlIntermediary::run_on(shim, r, w).await;
        });
    }
}

struct Front {
    shared: Arc<Shared>,
    conn: mysql_async::Conn,
    id: u32,
}

/// A reply the front writes: a result set or an OK packet.
pub enum Answer {
    Rows(Vec<(String, ColumnType)>, Vec<Vec<Option<String>>>),
    Ok(u64),
    /// Passed through from MariaDB: columns with their types and flags, raw text cells.
    Raw(
        Vec<(String, ColumnType, ColumnFlags)>,
        Vec<Vec<Option<Vec<u8>>>>,
    ),
}

pub type Fail = (u16, String);

fn fail(msg: impl Into<String>) -> Fail {
    (1064, msg.into())
}

fn native_password_ok(password: &str, salt: &[u8], auth: &[u8]) -> bool {
    if password.is_empty() {
        return auth.is_empty();
    }
    let h1 = Sha1::digest(password.as_bytes());
    let h2 = Sha1::digest(h1);
    let mut s = Sha1::new();
    s.update(salt);
    s.update(h2);
    let h3 = s.finalize();
    let token: Vec<u8> = h1.iter().zip(h3.iter()).map(|(a, b)| a ^ b).collect();
    token == auth
}

#[async_trait::async_trait]
impl<W: AsyncWrite + Send + Unpin> AsyncMysqlShim<W> for Front {
    type Error = io::Error;

    fn version(&self) -> String {
        "5.1.0-StarRocks-double-3.3.0".into()
    }

    fn connect_id(&self) -> u32 {
        self.id
    }

    async fn authenticate(&self, _plugin: &str, user: &[u8], salt: &[u8], auth: &[u8]) -> bool {
        user == self.shared.user.as_bytes() && native_password_ok(&self.shared.password, salt, auth)
    }

    async fn on_prepare<'a>(
        &'a mut self,
        _query: &'a str,
        info: StatementMetaWriter<'a, W>,
    ) -> io::Result<()> {
        info.error(
            ErrorKind::ER_UNKNOWN_ERROR,
            b"the StarRocks double takes no prepared statements",
        )
        .await
    }

    async fn on_execute<'a>(
        &'a mut self,
        _id: u32,
        _params: ParamParser<'a>,
        results: QueryResultWriter<'a, W>,
    ) -> io::Result<()> {
        results
            .error(ErrorKind::ER_UNKNOWN_ERROR, b"no prepared statements")
            .await
    }

    async fn on_close<'a>(&'a mut self, _stmt: u32)
    where
        W: 'async_trait,
    {
    }

    async fn on_query<'a>(
        &'a mut self,
        query: &'a str,
        results: QueryResultWriter<'a, W>,
    ) -> io::Result<()> {
        let answer = handle(&self.shared, &mut self.conn, query).await;
        write_answer(results, answer).await
    }
}

async fn write_answer<W: AsyncWrite + Send + Unpin>(
    results: QueryResultWriter<'_, W>,
    answer: Result<Answer, Fail>,
) -> io::Result<()> {
    match answer {
        Err((code, msg)) => {
            let kind = ErrorKind::from(code);
            results.error(kind, msg.as_bytes()).await
        }
        Ok(Answer::Ok(n)) => {
            results
                .completed(OkResponse {
                    affected_rows: n,
                    ..Default::default()
                })
                .await
        }
        Ok(Answer::Rows(cols, rows)) => {
            let columns: Vec<Column> = cols
                .iter()
                .map(|(n, t)| Column {
                    table: String::new(),
                    column: n.clone(),
                    coltype: *t,
                    colflags: ColumnFlags::empty(),
                })
                .collect();
            let mut w = results.start(&columns).await?;
            for r in rows {
                for v in r {
                    w.write_col(v)?;
                }
                w.end_row().await?;
            }
            w.finish().await
        }
        Ok(Answer::Raw(cols, rows)) => {
            let columns: Vec<Column> = cols
                .iter()
                .map(|(n, t, f)| Column {
                    table: String::new(),
                    column: n.clone(),
                    coltype: *t,
                    colflags: *f,
                })
                .collect();
            if columns.is_empty() {
                return results.completed(OkResponse::default()).await;
            }
            let mut w = results.start(&columns).await?;
            for r in rows {
                for v in r {
                    w.write_col(v)?;
                }
                w.end_row().await?;
            }
            w.finish().await
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Statements

const STR: ColumnType = ColumnType::MYSQL_TYPE_VAR_STRING;

fn cols(names: &[&str]) -> Vec<(String, ColumnType)> {
    names.iter().map(|n| (n.to_string(), STR)).collect()
}

fn re(p: &str) -> Regex {
    Regex::new(p).expect("regex")
}

fn unquote(s: &str) -> String {
    s.trim().trim_matches('`').to_string()
}

/// `` `db`.`t` `` or `db.t` → (db, t).
fn qualified(s: &str) -> Result<Key, Fail> {
    let parts: Vec<&str> = s.trim().splitn(2, '.').collect();
    if parts.len() != 2 {
        return Err(fail(format!(
            "the StarRocks double needs db-qualified table names, got {s}"
        )));
    }
    Ok((unquote(parts[0]), unquote(parts[1])))
}

impl Shared {
    pub fn mdb(&self, sr_db: &str) -> String {
        format!("{}{sr_db}{}", self.prefix, self.suffix)
    }

    /// Maps every `` `x`. `` to the cluster's MariaDB database.
    fn map_names(&self, sql: &str) -> String {
        re(r"`([^`]+)`\s*\.")
            .replace_all(sql, |c: &regex::Captures| format!("`{}`.", self.mdb(&c[1])))
            .into_owned()
    }

    fn unmap(&self, text: &str) -> String {
        text.replace(&self.prefix, "").replace(&self.suffix, "")
    }

    fn next_id(&self) -> i64 {
        let mut m = self.meta.lock().expect("meta");
        m.next_id += 1;
        m.next_id
    }
}

fn my_err(shared: &Shared, e: mysql_async::Error) -> Fail {
    match e {
        mysql_async::Error::Server(s) => (s.code, shared.unmap(&s.message)),
        other => (1105, shared.unmap(&other.to_string())),
    }
}

async fn raw_query(
    shared: &Shared,
    conn: &mut mysql_async::Conn,
    sql: &str,
) -> Result<Answer, Fail> {
    let mut result = conn.query_iter(sql).await.map_err(|e| my_err(shared, e))?;
    let columns = result.columns().map(|c| c.to_vec()).unwrap_or_default();
    let affected = result.affected_rows();
    let mut rows = Vec::new();
    while let Some(row) = result.next().await.map_err(|e| my_err(shared, e))? {
        let cells = row
            .unwrap()
            .into_iter()
            .map(|v| match v {
                mysql_async::Value::NULL => None,
                mysql_async::Value::Bytes(b) => Some(b),
                other => Some(other.as_sql(true).into_bytes()),
            })
            .collect();
        rows.push(cells);
    }
    result.drop_result().await.map_err(|e| my_err(shared, e))?;
    if columns.is_empty() {
        return Ok(Answer::Ok(affected));
    }
    let cols = columns
        .iter()
        .map(|c| {
            let ty = ColumnType::try_from(c.column_type() as u8)
                .unwrap_or(ColumnType::MYSQL_TYPE_VAR_STRING);
            let flags = ColumnFlags::from_bits_truncate(c.flags().bits());
            (shared.unmap(&c.name_str()), ty, flags)
        })
        .collect();
    Ok(Answer::Raw(cols, rows))
}

/// Text cells of a MariaDB query (for the double's own bookkeeping).
pub async fn cells(
    shared: &Shared,
    conn: &mut mysql_async::Conn,
    sql: &str,
) -> Result<Vec<Vec<Option<String>>>, Fail> {
    match raw_query(shared, conn, sql).await? {
        Answer::Raw(_, rows) => Ok(rows
            .into_iter()
            .map(|r| {
                r.into_iter()
                    .map(|c| c.map(|b| String::from_utf8_lossy(&b).into_owned()))
                    .collect()
            })
            .collect()),
        _ => Ok(Vec::new()),
    }
}

async fn exec(shared: &Shared, conn: &mut mysql_async::Conn, sql: &str) -> Result<u64, Fail> {
    match raw_query(shared, conn, sql).await? {
        Answer::Ok(n) => Ok(n),
        _ => Ok(0),
    }
}

/// Partition names of a table in order (the table's own name when unpartitioned).
pub fn partition_names(shared: &Shared, key: &Key) -> Vec<String> {
    let m = shared.meta.lock().expect("meta");
    match m.tables.get(key) {
        Some(t) if t.partitioned => ddl::partitions(&t.ddl)
            .into_iter()
            .map(|p| p.name)
            .collect(),
        Some(_) => vec![key.1.clone()],
        None => Vec::new(),
    }
}

/// Per partition: (rows, checksum) of the rows in MariaDB.
pub async fn fingerprints(
    shared: &Shared,
    conn: &mut mysql_async::Conn,
    key: &Key,
) -> Result<BTreeMap<String, (i64, String)>, Fail> {
    let mut out = BTreeMap::new();
    let partitioned = shared
        .meta
        .lock()
        .expect("meta")
        .tables
        .get(key)
        .map(|t| t.partitioned)
        .unwrap_or(false);
    let columns = cells(
        shared,
        conn,
        &format!(
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = '{}' AND TABLE_NAME = '{}' ORDER BY ORDINAL_POSITION",
            shared.mdb(&key.0),
            key.1
        ),
    )
    .await?;
    let concat = columns
        .iter()
        .filter_map(|r| r[0].clone())
        .map(|c| format!("COALESCE(`{c}`, '\\\\N')"))
        .collect::<Vec<_>>()
        .join(", ");
    for p in partition_names(shared, key) {
        let part = if partitioned {
            format!(" PARTITION (`{p}`)")
        } else {
            String::new()
        };
        let r = cells(
            shared,
            conn,
            &format!(
                "SELECT COUNT(*), COALESCE(SUM(CRC32(CONCAT_WS(0x1f, {concat}))), 0) FROM `{}`.`{}`{part}",
                shared.mdb(&key.0),
                key.1
            ),
        )
        .await?;
        let n = r
            .first()
            .and_then(|r| r[0].clone())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let sum = r.first().and_then(|r| r[1].clone()).unwrap_or_default();
        out.insert(p, (n, sum));
    }
    Ok(out)
}

/// Bumps VisibleVersion of every partition whose rows changed between `before` and now.
pub async fn bump_changed(
    shared: &Shared,
    conn: &mut mysql_async::Conn,
    key: &Key,
    before: &BTreeMap<String, (i64, String)>,
) -> Result<(), Fail> {
    let after = fingerprints(shared, conn, key).await?;
    let mut m = shared.meta.lock().expect("meta");
    for (p, fp) in after {
        if before.get(&p) != Some(&fp) {
            *m.versions
                .entry((key.0.clone(), key.1.clone(), p))
                .or_insert(1) += 1;
        }
    }
    Ok(())
}

fn dml_table(sql: &str) -> Option<String> {
    let c = re(r"(?is)^\s*(?:INSERT\s+(?:IGNORE\s+)?INTO|REPLACE\s+INTO|DELETE\s+FROM|UPDATE|TRUNCATE\s+TABLE)\s+(`[^`]+`\s*\.\s*`[^`]+`)")
        .captures(sql)?;
    Some(c[1].to_string())
}

pub async fn handle(
    shared: &Shared,
    conn: &mut mysql_async::Conn,
    query: &str,
) -> Result<Answer, Fail> {
    let sql = query.trim().trim_end_matches(';').trim();
    let up = sql.to_uppercase();
    let up = up.split_whitespace().collect::<Vec<_>>().join(" ");

    if let Some(c) = re(r"(?is)^SHOW\s+PARTITIONS\s+FROM\s+(\S+)").captures(sql) {
        return show_partitions(shared, conn, &qualified(&c[1])?).await;
    }
    if up.starts_with("ADMIN SHOW FRONTEND CONFIG") {
        let pat = re(r#"(?is)LIKE\s+['"]([^'"]*)['"]"#)
            .captures(sql)
            .map(|c| c[1].to_string());
        return Ok(show_config(shared, pat.as_deref()));
    }
    if up.starts_with("ADMIN SET FRONTEND CONFIG") {
        let c = re(r#"(?is)\(\s*"([^"]+)"\s*=\s*"([^"]*)"\s*\)"#)
            .captures(sql)
            .ok_or_else(|| fail("ADMIN SET FRONTEND CONFIG (\"key\" = \"value\") expected"))?;
        let mut m = shared.meta.lock().expect("meta");
        match m.config.get_mut(&c[1]) {
            Some(item) if item.mutable => item.value = c[2].to_string(),
            _ => {
                return Err((
                    1105,
                    format!("Config '{}' does not exist or is not mutable", &c[1]),
                ));
            }
        }
        m.config_sets.push((c[1].to_string(), c[2].to_string()));
        return Ok(Answer::Ok(0));
    }
    if up == "SHOW FRONTENDS" {
        return Ok(show_frontends(shared));
    }
    if up == "SHOW BACKENDS" {
        return Ok(show_backends(shared));
    }
    if up == "SHOW COMPUTE NODES" {
        return Ok(Answer::Rows(
            cols(&[
                "ComputeNodeId",
                "IP",
                "HeartbeatPort",
                "BePort",
                "HttpPort",
                "BrpcPort",
                "LastStartTime",
                "LastHeartbeat",
                "Alive",
                "SystemDecommissioned",
                "ClusterDecommissioned",
                "ErrMsg",
                "Version",
                "CpuCores",
                "NumRunningQueries",
                "MemUsedPct",
                "CpuUsedPct",
                "HasStoragePath",
                "StarletPort",
                "WorkerId",
                "WarehouseName",
                "TabletNum",
            ]),
            Vec::new(),
        ));
    }
    if up.starts_with("SHOW DATA") && up != "SHOW DATABASES" {
        return show_data(shared, conn, sql).await;
    }
    if up == "SHOW DATABASES" {
        let rows = cells(
            shared,
            conn,
            &format!(
                "SHOW DATABASES LIKE '{}%{}'",
                shared.prefix.replace('_', "\\_"),
                shared.suffix.replace('_', "\\_")
            ),
        )
        .await?;
        let mut names = vec![
            Some("_statistics_".to_string()),
            Some("information_schema".to_string()),
        ];
        names.extend(
            rows.into_iter()
                .map(|r| r[0].clone().map(|n| shared.unmap(&n))),
        );
        names.sort();
        return Ok(Answer::Rows(
            cols(&["Database"]),
            names.into_iter().map(|n| vec![n]).collect(),
        ));
    }
    if let Some(c) = re(r"(?is)^SHOW\s+(FULL\s+)?TABLES\s+FROM\s+`?([^`\s]+)`?$").captures(sql) {
        let full = c.get(1).is_some();
        let dbname = c[2].to_string();
        let rows = cells(
            shared,
            conn,
            &format!("SHOW FULL TABLES FROM `{}`", shared.mdb(&dbname)),
        )
        .await?;
        let mut names: Vec<Vec<Option<String>>> = rows
            .into_iter()
            .filter(|r| r[0].as_deref().is_some_and(|n| !n.is_empty()))
            .map(|r| if full { r } else { vec![r[0].clone()] })
            .collect();
        names.sort();
        let mut c = cols(&[&format!("Tables_in_{dbname}")]);
        if full {
            c.push(("Table_type".into(), STR));
        }
        return Ok(Answer::Rows(c, names));
    }
    if let Some(c) = re(r"(?is)^SHOW\s+CREATE\s+(?:TABLE|VIEW)\s+(\S+)$").captures(sql) {
        let key = qualified(&c[1])?;
        let m = shared.meta.lock().expect("meta");
        if let Some(v) = m.views.get(&key) {
            return Ok(Answer::Rows(
                cols(&[
                    "View",
                    "Create View",
                    "character_set_client",
                    "collation_connection",
                ]),
                vec![vec![
                    Some(key.1.clone()),
                    Some(v.clone()),
                    Some("utf8".into()),
                    Some("utf8_general_ci".into()),
                ]],
            ));
        }
        let t = m
            .tables
            .get(&key)
            .ok_or_else(|| (1146, format!("Unknown table '{}.{}'", key.0, key.1)))?;
        return Ok(Answer::Rows(
            cols(&["Table", "Create Table"]),
            vec![vec![Some(key.1.clone()), Some(t.ddl.clone())]],
        ));
    }
    if let Some(c) =
        re(r"(?is)^CREATE\s+VIEW\s+(IF\s+NOT\s+EXISTS\s+)?(`[^`]+`\s*\.\s*`[^`]+`)\s+AS\s+(.*)$")
            .captures(sql)
    {
        let key = qualified(&c[2])?;
        let ine = if c.get(1).is_some() {
            "IF NOT EXISTS "
        } else {
            ""
        };
        exec(
            shared,
            conn,
            &format!(
                "CREATE VIEW {ine}`{}`.`{}` AS {}",
                shared.mdb(&key.0),
                key.1,
                shared.map_names(&c[3])
            ),
        )
        .await?;
        let text = format!("CREATE VIEW `{}` AS {}", key.1, c[3].trim());
        shared.meta.lock().expect("meta").views.insert(key, text);
        return Ok(Answer::Ok(0));
    }
    if let Some(c) =
        re(r"(?is)^DROP\s+VIEW\s+(IF\s+EXISTS\s+)?(`[^`]+`\s*\.\s*`[^`]+`)$").captures(sql)
    {
        let key = qualified(&c[2])?;
        let ie = if c.get(1).is_some() { "IF EXISTS " } else { "" };
        exec(
            shared,
            conn,
            &format!("DROP VIEW {ie}`{}`.`{}`", shared.mdb(&key.0), key.1),
        )
        .await?;
        shared.meta.lock().expect("meta").views.remove(&key);
        return Ok(Answer::Ok(0));
    }
    if let Some(c) =
        re(r"(?is)^CREATE\s+DATABASE\s+(IF\s+NOT\s+EXISTS\s+)?`?([^`\s]+)`?$").captures(sql)
    {
        let ine = if c.get(1).is_some() {
            "IF NOT EXISTS "
        } else {
            ""
        };
        return exec(
            shared,
            conn,
            &format!(
                "CREATE DATABASE {ine}`{}` CHARACTER SET utf8mb4",
                shared.mdb(&c[2])
            ),
        )
        .await
        .map(Answer::Ok);
    }
    if let Some(c) =
        re(r"(?is)^DROP\s+DATABASE\s+(IF\s+EXISTS\s+)?`?([^`\s]+)`?(\s+FORCE)?$").captures(sql)
    {
        let ie = if c.get(1).is_some() { "IF EXISTS " } else { "" };
        let dbname = c[2].to_string();
        shared
            .meta
            .lock()
            .expect("meta")
            .tables
            .retain(|k, _| k.0 != dbname);
        return exec(
            shared,
            conn,
            &format!("DROP DATABASE {ie}`{}`", shared.mdb(&dbname)),
        )
        .await
        .map(Answer::Ok);
    }
    if let Some(c) = re(r"(?is)^CREATE\s+TABLE\s+(IF\s+NOT\s+EXISTS\s+)?(`[^`]+`\s*\.\s*`[^`]+`)\s+LIKE\s+(`[^`]+`\s*\.\s*`[^`]+`)$").captures(sql) {
        let (new, old) = (qualified(&c[2])?, qualified(&c[3])?);
        let mut t = shared
            .meta
            .lock()
            .expect("meta")
            .tables
            .get(&old)
            .cloned()
            .ok_or_else(|| (1146, format!("Unknown table '{}.{}'", old.0, old.1)))?;
        let ine = c.get(1).is_some();
        if ine && shared.meta.lock().expect("meta").tables.contains_key(&new) {
            return Ok(Answer::Ok(0));
        }
        exec(
            shared,
            conn,
            &format!(
                "CREATE TABLE `{}`.`{}` LIKE `{}`.`{}`",
                shared.mdb(&new.0),
                new.1,
                shared.mdb(&old.0),
                old.1
            ),
        )
        .await?;
        t.ddl = rename_ddl(&t.ddl, &new.1);
        t.id = shared.next_id();
        register(shared, &new, t);
        return Ok(Answer::Ok(0));
    }
    if let Some(c) =
        re(r"(?is)^CREATE\s+TABLE\s+(IF\s+NOT\s+EXISTS\s+)?(`[^`]+`\s*\.\s*`[^`]+`)\s*\(")
            .captures(sql)
    {
        let key = qualified(&c[2])?;
        if shared.meta.lock().expect("meta").tables.contains_key(&key) {
            if c.get(1).is_some() {
                return Ok(Answer::Ok(0));
            }
            return Err((1050, format!("Table '{}' already exists", key.1)));
        }
        let body = &sql[c.get(2).map(|m| m.end()).unwrap_or(0)..];
        let sr_ddl = format!("CREATE TABLE `{}` {}", key.1, body.trim());
        let parsed = ddl::parse(&sr_ddl).map_err(fail)?;
        let my = ddl::to_mariadb(&sr_ddl, &shared.mdb(&key.0), &key.1).map_err(fail)?;
        exec(shared, conn, &my).await?;
        let t = TableMeta {
            ddl: sr_ddl,
            partitioned: parsed.partition_column.is_some(),
            id: shared.next_id(),
        };
        register(shared, &key, t);
        return Ok(Answer::Ok(0));
    }
    if let Some(c) =
        re(r"(?is)^DROP\s+TABLE\s+(IF\s+EXISTS\s+)?(`[^`]+`\s*\.\s*`[^`]+`)(\s+FORCE)?$")
            .captures(sql)
    {
        let key = qualified(&c[2])?;
        let ie = if c.get(1).is_some() { "IF EXISTS " } else { "" };
        let n = exec(
            shared,
            conn,
            &format!("DROP TABLE {ie}`{}`.`{}`", shared.mdb(&key.0), key.1),
        )
        .await?;
        let mut m = shared.meta.lock().expect("meta");
        m.tables.remove(&key);
        m.versions.retain(|k, _| !(k.0 == key.0 && k.1 == key.1));
        return Ok(Answer::Ok(n));
    }
    if let Some(c) = re(r"(?is)^ALTER\s+TABLE\s+(`[^`]+`\s*\.\s*`[^`]+`)\s+(.*)$").captures(sql) {
        return alter_table(shared, conn, &qualified(&c[1])?, c[2].trim()).await;
    }
    if let Some(c) = re(r"(?is)^INSERT\s+OVERWRITE\s+(`[^`]+`\s*\.\s*`[^`]+`)\s*(?:PARTITION\s*\(\s*`?(\w+)`?\s*\))?\s*(SELECT.*)$").captures(sql) {
        let key = qualified(&c[1])?;
        let part = c.get(2).map(|m| m.as_str().to_string());
        return insert_overwrite(shared, conn, &key, part.as_deref(), &c[3]).await;
    }
    if let Some(t) = dml_table(sql) {
        let key = qualified(&t)?;
        if shared.meta.lock().expect("meta").tables.contains_key(&key) {
            let before = fingerprints(shared, conn, &key).await?;
            let r = raw_query(shared, conn, &shared.map_names(sql)).await?;
            bump_changed(shared, conn, &key, &before).await?;
            return Ok(r);
        }
    }
    raw_query(shared, conn, &shared.map_names(sql)).await
}

fn rename_ddl(ddl: &str, new_name: &str) -> String {
    re(r"(?is)^CREATE\s+TABLE\s+`[^`]+`")
        .replace(ddl, format!("CREATE TABLE `{new_name}`").as_str())
        .into_owned()
}

fn register(shared: &Shared, key: &Key, t: TableMeta) {
    let names: Vec<String> = if t.partitioned {
        ddl::partitions(&t.ddl)
            .into_iter()
            .map(|p| p.name)
            .collect()
    } else {
        vec![key.1.clone()]
    };
    let mut m = shared.meta.lock().expect("meta");
    m.tables.insert(key.clone(), t);
    for p in names {
        m.versions.insert((key.0.clone(), key.1.clone(), p), 1);
    }
}

async fn alter_table(
    shared: &Shared,
    conn: &mut mysql_async::Conn,
    key: &Key,
    clause: &str,
) -> Result<Answer, Fail> {
    let t = shared
        .meta
        .lock()
        .expect("meta")
        .tables
        .get(key)
        .cloned()
        .ok_or_else(|| (1146, format!("Unknown table '{}.{}'", key.0, key.1)))?;
    let target = format!("`{}`.`{}`", shared.mdb(&key.0), key.1);
    let new_ddl;
    if let Some(c) = re(r"(?is)^ADD\s+COLUMN\s+(.*)$").captures(clause) {
        exec(
            shared,
            conn,
            &format!("ALTER TABLE {target} ADD COLUMN {}", &c[1]),
        )
        .await?;
        new_ddl = ddl::add_column(&t.ddl, c[1].trim()).map_err(fail)?;
    } else if let Some(c) = re(r"(?is)^DROP\s+COLUMN\s+`?(\w+)`?$").captures(clause) {
        exec(
            shared,
            conn,
            &format!("ALTER TABLE {target} DROP COLUMN `{}`", &c[1]),
        )
        .await?;
        new_ddl = ddl::drop_column(&t.ddl, &c[1]).map_err(fail)?;
    } else if let Some(c) =
        re(r"(?is)^ADD\s+PARTITION\s+(IF\s+NOT\s+EXISTS\s+)?(.*)$").captures(clause)
    {
        let clause = format!("PARTITION {}", c[2].trim());
        let parts = ddl::partitions(&clause);
        let p = parts
            .first()
            .ok_or_else(|| fail(format!("cannot read the partition in {clause}")))?;
        exec(
            shared,
            conn,
            &format!(
                "ALTER TABLE {target} ADD PARTITION (PARTITION `{}` VALUES LESS THAN ({}))",
                p.name, p.upper
            ),
        )
        .await?;
        new_ddl = ddl::add_partition(&t.ddl, c[2].trim()).map_err(fail)?;
        shared
            .meta
            .lock()
            .expect("meta")
            .versions
            .insert((key.0.clone(), key.1.clone(), p.name.clone()), 1);
    } else if let Some(c) =
        re(r"(?is)^DROP\s+PARTITION\s+(IF\s+EXISTS\s+)?`?(\w+)`?(\s+FORCE)?$").captures(clause)
    {
        exec(
            shared,
            conn,
            &format!("ALTER TABLE {target} DROP PARTITION `{}`", &c[2]),
        )
        .await?;
        new_ddl = ddl::drop_partition(&t.ddl, &c[2]);
        shared.meta.lock().expect("meta").versions.remove(&(
            key.0.clone(),
            key.1.clone(),
            c[2].to_string(),
        ));
    } else {
        return Err(fail(format!(
            "the StarRocks double does not do ALTER TABLE {clause}"
        )));
    }
    if let Some(t) = shared.meta.lock().expect("meta").tables.get_mut(key) {
        t.ddl = new_ddl;
    }
    Ok(Answer::Ok(0))
}

async fn insert_overwrite(
    shared: &Shared,
    conn: &mut mysql_async::Conn,
    key: &Key,
    partition: Option<&str>,
    select: &str,
) -> Result<Answer, Fail> {
    let before = fingerprints(shared, conn, key).await?;
    let target = format!("`{}`.`{}`", shared.mdb(&key.0), key.1);
    let partitioned = shared
        .meta
        .lock()
        .expect("meta")
        .tables
        .get(key)
        .map(|t| t.partitioned)
        .unwrap_or(false);
    let part = match partition {
        Some(p) if partitioned => format!(" PARTITION (`{p}`)"),
        _ => String::new(),
    };
    exec(shared, conn, "START TRANSACTION").await?;
    let r = async {
        exec(shared, conn, &format!("DELETE FROM {target}{part}")).await?;
        let n = exec(
            shared,
            conn,
            &format!("INSERT INTO {target}{part} {}", shared.map_names(select)),
        )
        .await?;
        exec(shared, conn, "COMMIT").await?;
        Ok::<u64, Fail>(n)
    }
    .await;
    match r {
        Ok(n) => {
            bump_changed(shared, conn, key, &before).await?;
            Ok(Answer::Ok(n))
        }
        Err(e) => {
            let _ = exec(shared, conn, "ROLLBACK").await;
            Err(e)
        }
    }
}

async fn show_partitions(
    shared: &Shared,
    conn: &mut mysql_async::Conn,
    key: &Key,
) -> Result<Answer, Fail> {
    let t = shared
        .meta
        .lock()
        .expect("meta")
        .tables
        .get(key)
        .cloned()
        .ok_or_else(|| (1146, format!("Unknown table '{}.{}'", key.0, key.1)))?;
    let fps = fingerprints(shared, conn, key).await?;
    let parsed = ddl::parse(&t.ddl).map_err(fail)?;
    let dist = re(r"(?is)DISTRIBUTED\s+BY\s+HASH\s*\(([^)]*)\)(?:\s+BUCKETS\s+(\d+))?")
        .captures(&t.ddl)
        .map(|c| {
            (
                c[1].replace('`', ""),
                c.get(2)
                    .map(|b| b.as_str().to_string())
                    .unwrap_or("3".into()),
            )
        })
        .unwrap_or(("".into(), "3".into()));
    let repl = re(r#""replication_num"\s*=\s*"(\d+)""#)
        .captures(&t.ddl)
        .map(|c| c[1].to_string())
        .unwrap_or("3".into());
    let mut rows = Vec::new();
    let m = shared.meta.lock().expect("meta");
    let names: Vec<(String, String)> = if t.partitioned {
        parsed
            .partitions
            .iter()
            .map(|p| (p.name.clone(), p.values.clone()))
            .collect()
    } else {
        vec![(key.1.clone(), String::new())]
    };
    for (i, (name, values)) in names.into_iter().enumerate() {
        let v = m
            .versions
            .get(&(key.0.clone(), key.1.clone(), name.clone()))
            .copied()
            .unwrap_or(1);
        let (count, _) = fps.get(&name).cloned().unwrap_or((0, String::new()));
        rows.push(vec![
            Some((t.id * 100 + i as i64 + 1).to_string()),
            Some(name),
            Some(v.to_string()),
            Some("2024-06-01 12:00:00".into()),
            Some("0".into()),
            Some("NORMAL".into()),
            Some(parsed.partition_column.clone().unwrap_or_default()),
            Some(range_text(&values)),
            Some(dist.0.clone()),
            Some(dist.1.clone()),
            Some(repl.clone()),
            Some("HDD".into()),
            Some("9999-12-31 23:59:59".into()),
            None,
            Some(format!("{:.3}KB", count as f64 * 0.05)),
            Some("false".into()),
            Some(count.to_string()),
        ]);
    }
    Ok(Answer::Rows(
        cols(&[
            "PartitionId",
            "PartitionName",
            "VisibleVersion",
            "VisibleVersionTime",
            "VisibleVersionHash",
            "State",
            "PartitionKey",
            "Range",
            "DistributionKey",
            "Buckets",
            "ReplicationNum",
            "StorageMedium",
            "CooldownTime",
            "LastConsistencyCheckTime",
            "DataSize",
            "IsInMemory",
            "RowCount",
        ]),
        rows,
    ))
}

/// `VALUES [("a"), ("b"))` as SHOW PARTITIONS prints a range:
/// `[types: [DATE]; keys: [a]; ..types: [DATE]; keys: [b]; )`.
fn range_text(values: &str) -> String {
    let vals: Vec<String> = re(r#""([^"]*)""#)
        .captures_iter(values)
        .map(|c| c[1].to_string())
        .collect();
    if vals.len() != 2 {
        return String::new();
    }
    let ty = |v: &str| {
        if re(r"^\d{4}-\d{2}-\d{2}$").is_match(v) {
            "DATE"
        } else if v.parse::<i64>().is_ok() {
            "BIGINT"
        } else {
            "VARCHAR"
        }
    };
    format!(
        "[types: [{}]; keys: [{}]; ..types: [{}]; keys: [{}]; )",
        ty(&vals[0]),
        vals[0],
        ty(&vals[1]),
        vals[1]
    )
}

fn show_config(shared: &Shared, pattern: Option<&str>) -> Answer {
    let m = shared.meta.lock().expect("meta");
    let matcher = pattern.map(|p| {
        let rx = regex::escape(p).replace('%', ".*").replace('_', ".");
        re(&format!("(?i)^{rx}$"))
    });
    let rows = m
        .config
        .iter()
        .filter(|(k, _)| matcher.as_ref().is_none_or(|r| r.is_match(k)))
        .map(|(k, c)| {
            vec![
                Some(k.clone()),
                Some("[]".into()),
                Some(c.value.clone()),
                Some(c.ty.into()),
                Some(c.mutable.to_string()),
                Some(String::new()),
            ]
        })
        .collect();
    Answer::Rows(
        cols(&["Key", "AliasNames", "Value", "Type", "IsMutable", "Comment"]),
        rows,
    )
}

fn show_frontends(shared: &Shared) -> Answer {
    let (ip, http) = shared
        .meta
        .lock()
        .expect("meta")
        .fe_shown
        .clone()
        .unwrap_or(("127.0.0.1".into(), shared.http_port));
    let c = cols(&[
        "Name",
        "IP",
        "EditLogPort",
        "HttpPort",
        "QueryPort",
        "RpcPort",
        "Role",
        "ClusterId",
        "Join",
        "Alive",
        "ReplayedJournalId",
        "LastHeartbeat",
        "IsHelper",
        "ErrMsg",
        "StartTime",
        "Version",
    ]);
    let row = vec![
        Some(format!("{ip}_9010_1717243200000")),
        Some(ip),
        Some("9010".into()),
        Some(http.to_string()),
        Some(shared.query_port.to_string()),
        Some("9020".into()),
        Some("LEADER".into()),
        Some("1234567".into()),
        Some("true".into()),
        Some("true".into()),
        Some("1001".into()),
        Some("2024-06-01 12:00:00".into()),
        Some("true".into()),
        Some(String::new()),
        Some("2024-06-01 11:00:00".into()),
        Some("3.3.0-double".into()),
    ];
    Answer::Rows(c, vec![row])
}

fn show_backends(shared: &Shared) -> Answer {
    let pct = shared.meta.lock().expect("meta").max_disk_used_pct;
    let c = cols(&[
        "BackendId",
        "IP",
        "HeartbeatPort",
        "BePort",
        "HttpPort",
        "BrpcPort",
        "LastStartTime",
        "LastHeartbeat",
        "Alive",
        "SystemDecommissioned",
        "ClusterDecommissioned",
        "TabletNum",
        "DataUsedCapacity",
        "AvailCapacity",
        "TotalCapacity",
        "UsedPct",
        "MaxDiskUsedPct",
        "ErrMsg",
        "Version",
        "Status",
        "DataTotalCapacity",
        "DataUsedPct",
        "CpuCores",
    ]);
    let row = vec![
        Some("10001".into()),
        Some("127.0.0.1".into()),
        Some("9050".into()),
        Some("9060".into()),
        Some(shared.be_http_port.to_string()),
        Some("8060".into()),
        Some("2024-06-01 11:00:00".into()),
        Some("2024-06-01 12:00:00".into()),
        Some("true".into()),
        Some("false".into()),
        Some("false".into()),
        Some("42".into()),
        Some("1.000 GB".into()),
        Some("7.000 GB".into()),
        Some("8.000 GB".into()),
        Some(format!("{pct:.2} %")),
        Some(format!("{pct:.2} %")),
        Some(String::new()),
        Some("3.3.0-double".into()),
        Some(r#"{"lastSuccessReportTabletsTime":"2024-06-01 12:00:00"}"#.into()),
        Some("8.000 GB".into()),
        Some(format!("{pct:.2} %")),
        Some("2".into()),
    ];
    Answer::Rows(c, vec![row])
}

async fn show_data(
    shared: &Shared,
    conn: &mut mysql_async::Conn,
    sql: &str,
) -> Result<Answer, Fail> {
    if let Some(c) = re(r"(?is)^SHOW\s+DATA\s+FROM\s+(\S+)$").captures(sql) {
        let key = qualified(&c[1])?;
        let fps = fingerprints(shared, conn, &key).await?;
        let rows: i64 = fps.values().map(|v| v.0).sum();
        let size = format!("{:.3} KB", rows as f64 * 0.05 * 3.0);
        return Ok(Answer::Rows(
            cols(&["TableName", "IndexName", "Size", "ReplicaCount", "RowCount"]),
            vec![
                vec![
                    Some(key.1.clone()),
                    Some(key.1.clone()),
                    Some(size.clone()),
                    Some("9".into()),
                    Some(rows.to_string()),
                ],
                vec![
                    Some(String::new()),
                    Some("Total".into()),
                    Some(size),
                    Some("9".into()),
                    Some(String::new()),
                ],
            ],
        ));
    }
    // SHOW DATA: the tables of every database, then Total, Quota and Left.
    let keys: Vec<Key> = shared
        .meta
        .lock()
        .expect("meta")
        .tables
        .keys()
        .cloned()
        .collect();
    let mut rows = Vec::new();
    let mut total = 0f64;
    for k in keys {
        let fps = fingerprints(shared, conn, &k).await?;
        let kb = fps.values().map(|v| v.0).sum::<i64>() as f64 * 0.15;
        total += kb;
        rows.push(vec![
            Some(k.1.clone()),
            Some(format!("{kb:.3} KB")),
            Some("9".into()),
        ]);
    }
    rows.push(vec![
        Some("Total".into()),
        Some(format!("{total:.3} KB")),
        Some("9".into()),
    ]);
    rows.push(vec![
        Some("Quota".into()),
        Some("1024.000 GB".into()),
        Some("1073741824".into()),
    ]);
    rows.push(vec![
        Some("Left".into()),
        Some("1023.999 GB".into()),
        Some("1073741815".into()),
    ]);
    Ok(Answer::Rows(
        cols(&["TableName", "Size", "ReplicaCount"]),
        rows,
    ))
}
