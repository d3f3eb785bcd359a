//! A StarRocks cluster DOUBLE for tests (StarRocks cannot run here): a MySQL-protocol FE front
//! (opensrv-mysql) in front of a real MariaDB, plus Stream Load HTTP endpoints on an "FE" port
//! (answers 307 to the "BE") and a "BE" port (loads into the MariaDB behind it).
//!
//! What the double answers itself, with the columns of the StarRocks reference
//! (`reference/starrocks.md` §2): SHOW PARTITIONS (shared-nothing or, with `shared_data`, the lake
//! columns; one row per physical partition; VisibleVersion starts at 1 and moves by one on every
//! load that changes the partition and on every compaction, `StarRocks::compact`), ADMIN SHOW/SET FRONTEND
//! CONFIG, SHOW FRONTENDS/BACKENDS/COMPUTE NODES, SHOW DATA, SHOW CREATE TABLE (the StarRocks text
//! as created, edited by ALTER TABLE), SHOW DATABASES/TABLES, CREATE/DROP DATABASE and TABLE
//! (StarRocks DDL translated for MariaDB, see ddl.rs), ALTER TABLE ADD/DROP COLUMN and PARTITION,
//! INSERT OVERWRITE (one MariaDB transaction). Everything else is passed to MariaDB. Stream Load
//! enforces the BE's body limits (stream_load.rs); automatic partitions are created by loads
//! (auto_partition.rs).
//!
//! One cluster is a set of MariaDB databases named `<prefix><db>`; backquoted identifiers
//! followed by a dot (`` `db`.`t` ``) are mapped, so statements must qualify tables that way.
#![allow(dead_code)]

#[path = "auto_partition.rs"]
mod auto_partition;
#[path = "ddl.rs"]
pub mod ddl;
#[path = "front.rs"]
mod front;
#[path = "show.rs"]
pub mod show;
#[path = "stream_load.rs"]
pub mod stream_load;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use mysql_async::prelude::Queryable;
use opensrv_mysql::{ColumnFlags, ColumnType};
use regex::Regex;

use crate::common::background::Background;
use crate::common::db;

pub type Key = (String, String);

#[derive(Debug, Clone)]
pub struct TableMeta {
    /// `CREATE TABLE` text as StarRocks' SHOW CREATE TABLE prints it.
    pub ddl: String,
    pub partitioned: bool,
    pub id: i64,
    pub scheme: ddl::Scheme,
    /// The partition column.
    pub column: Option<String>,
    /// Partitions an automatic table's loads created, in order (see auto_partition.rs).
    pub auto_parts: Vec<ddl::Partition>,
}

/// A physical partition sealed under a partition name (random bucketing): its id, its version,
/// and the rows it holds (FE `Partition.getSubPartitions`, `PhysicalPartition`).
#[derive(Debug, Clone)]
pub struct Sealed {
    pub id: i64,
    pub version: i64,
    pub rows: i64,
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
    /// No fault: this load goes through (to fault a later one).
    Pass,
    /// `{"Status":"Fail"}`, nothing loaded, the label stays free.
    Fail,
    /// The load commits but the client never gets the answer (connection closed).
    CommitThenDrop,
    /// The load commits, then the answer waits this long (a client killed meanwhile never sees it).
    CommitThenHang(std::time::Duration),
    /// The BE reads the first 32 KiB of the body, then closes the connection: the load is
    /// cancelled before commit (nothing loaded, the label stays free).
    DropMidBody,
    /// The whole body is read, then the connection closes with no answer while the load goes
    /// on and commits this much later: a client whose attempt was cut while the BE was still
    /// writing, and whose retry finds the label RUNNING.
    DropThenCommit(std::time::Duration),
}

#[derive(Debug, Clone)]
pub struct LoadRecord {
    pub db: String,
    pub table: String,
    pub label: String,
    pub status: String,
    pub rows: u64,
    /// The body's Content-Length (0 when chunked).
    pub bytes: u64,
}

#[derive(Default)]
pub struct Meta {
    pub tables: BTreeMap<Key, TableMeta>,
    /// Views: `CREATE VIEW` text as SHOW CREATE VIEW prints it.
    pub views: BTreeMap<Key, String>,
    /// Asynchronous materialized views: `CREATE MATERIALIZED VIEW` text. The MariaDB behind holds
    /// a plain view of the same name as a stand-in (data is not what the tests look at).
    pub mvs: BTreeMap<Key, String>,
    pub versions: HashMap<(String, String, String), i64>,
    pub config: BTreeMap<String, ConfigItem>,
    /// (db, label) → TxnId of a finished load.
    pub labels: HashMap<Key, i64>,
    /// (db, label) → TxnId of a load that has begun and neither committed nor failed yet. The FE
    /// files a load's label when its transaction begins (`DatabaseTransactionMgr.
    /// beginTransaction` checks and records it in one step), so a second load under that label is
    /// answered `Label Already Exists` with `ExistingJobStatus: RUNNING` (FINISHED once the
    /// first committed) instead of loading the rows again.
    pub running_labels: HashMap<Key, i64>,
    pub next_id: i64,
    /// Per database: how the next Stream Loads into any of its tables fail.
    pub faults: HashMap<String, Vec<LoadFault>>,
    pub loads: Vec<LoadRecord>,
    /// Every ADMIN SET FRONTEND CONFIG, in order.
    pub config_sets: Vec<(String, String)>,
    /// (prefix, skip, message): the first statement starting with prefix (upper case, single
    /// spaces) after `skip` such statements fails with the message, once.
    pub fail_once: Vec<(String, u32, String)>,
    /// What SHOW PARTITIONS shows as DataSize (default: a size from the row count).
    pub data_size_shown: Option<String>,
    pub max_disk_used_pct: f64,
    /// What SHOW FRONTENDS shows as the FE's IP and HttpPort (default 127.0.0.1 and the real
    /// port), to test hosts.properties mapping.
    pub fe_shown: Option<(String, u16)>,
    /// The port the FE's Stream Load redirect names instead of the BE's own (a proxy in front of
    /// the BE hop, tests/stream_load_faults.rs).
    pub be_redirect_port: Option<u16>,
    /// BE `streaming_load_max_batch_size_mb` in bytes (be/src/common/config.h, default 100 MB):
    /// the largest JSON body a Stream Load takes without `ignore_json_size: true`. Tests set it
    /// small to keep their data small.
    pub json_max_batch_bytes: u64,
    /// BE `streaming_load_max_mb` in bytes (config.h, default 102400 MB): any body, by its
    /// Content-Length or, chunked, by the bytes read (`evhttp_connection_set_max_body_size`).
    pub stream_load_max_bytes: u64,
    /// The memory a load may use to buffer a JSON body whole (its instance MemTracker: the
    /// load's `load_mem_limit`/`exec_mem_limit`, 2 GB by default). A chunked JSON body is not
    /// held to `json_max_batch_bytes` (no Content-Length) but is buffered whole under this
    /// tracker (StreamLoadAction::on_chunk_data); tests set it small.
    pub load_mem_limit_bytes: u64,
    /// Shared-data mode: SHOW PARTITIONS has the lake columns (CompactVersion, NextVersion...).
    pub shared_data: bool,
    /// Physical partition id → the version its last compaction published; shown as
    /// CompactVersion, 0 before any compaction. Keyed by physical id as upstream keys it
    /// (CompactionMgr statistics by `PartitionIdentifier(dbId, tableId, physicalPartitionId)`,
    /// read by PartitionsProcDir.getLakePartitionInfo).
    pub compact_versions: HashMap<i64, i64>,
    /// Physical partition id → compactions it went through: its DATA_VERSION
    /// (information_schema.partitions_meta) is VisibleVersion minus these, since a compaction
    /// publishes a visible version but no data version (LakeTableTxnLogApplier.applyVisibleLog:
    /// `setDataVersion` only when the source type is not LAKE_COMPACTION).
    pub compactions: HashMap<i64, i64>,
    /// Tables whose every SHOW PARTITIONS is preceded by this many compactions of each of their
    /// partitions (a busy shared-data source that compacts between any two looks).
    pub compact_on_show: HashMap<(String, String), u32>,
    /// (db, table, partition) → earlier physical partitions of that name; the current one (which
    /// loads write to) has `current_ids` or the default id.
    pub sealed: HashMap<(String, String, String), Vec<Sealed>>,
    pub current_ids: HashMap<(String, String, String), i64>,
    /// Labels of the Stream Loads the BE port is handling now (from its headers to its answer).
    pub loads_in_flight: Vec<String>,
    /// The most loads that were in flight at one moment, as their labels.
    pub peak_in_flight: Vec<String>,
    /// Loads the BE port has started since `StarRocks::hold_loads_until`.
    pub loads_entered: usize,
    /// Each load waits, before it commits, until this many loads have started (see
    /// `StarRocks::hold_loads_until`).
    pub hold_until_entered: Option<usize>,
    /// Each Stream Load waits this long after reading its body, before it commits; each INSERT
    /// OVERWRITE this long inside its transaction (`StarRocks::slow_down`), so that a client
    /// killed at a random moment is often killed inside one.
    pub load_delay: std::time::Duration,
    pub overwrite_delay: std::time::Duration,
    /// Every Stream Load and INSERT OVERWRITE seen: what (`load <label>`, `overwrite <db.table
    /// partition>`), when it started, and when it answered or its client went (None: not yet).
    pub activity: Vec<Activity>,
}

/// One Stream Load or INSERT OVERWRITE in `Meta::activity`.
#[derive(Debug, Clone)]
pub struct Activity {
    pub what: String,
    pub start: std::time::Instant,
    pub end: Option<std::time::Instant>,
}

/// Keeps one entry of `Meta::activity` open until dropped (answered, or the future dropped
/// because the client went).
pub struct Active<'a> {
    meta: &'a Mutex<Meta>,
    index: usize,
}

impl<'a> Active<'a> {
    pub fn enter(meta: &'a Mutex<Meta>, what: String) -> Active<'a> {
        let mut m = meta.lock().expect("meta");
        m.activity.push(Activity {
            what,
            start: std::time::Instant::now(),
            end: None,
        });
        Active {
            meta,
            index: m.activity.len() - 1,
        }
    }
}

impl Drop for Active<'_> {
    fn drop(&mut self) {
        if let Ok(mut m) = self.meta.lock() {
            m.activity[self.index].end = Some(std::time::Instant::now());
        }
    }
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
    /// TLS on the FE query port (`enable_tls`): offered in the handshake (CLIENT_SSL), as an FE
    /// set up for SSL does; clients that do not ask for it still connect in plain text.
    pub tls: Mutex<Option<Arc<rustls_022::ServerConfig>>>,
    /// Connections that asked for TLS (an SSLRequest; the handshake may still fail).
    pub tls_sessions: AtomicU32,
    /// Held while automatic partitions are created. The FE adds a load's new partitions to the
    /// table's one partition map (`FrontendServiceImpl.createPartitionProcess` ->
    /// `GlobalStateMgr.addPartitions`, under the database lock), so two loads that each bring a
    /// new month both get their partition (see auto_partition.rs).
    pub partitioning: tokio::sync::Mutex<()>,
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
    /// Serves TLS on the FE query port from now on, with `cert.pem`/`key.pem` of `tls`.
    pub fn enable_tls(&self, tls: &crate::common::s3::TestTls) {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(tls.file("cert.pem"))
                .expect("read cert.pem")
                .collect::<Result<_, _>>()
                .expect("parse cert.pem");
        let key = PrivateKeyDer::from_pem_file(tls.file("key.pem")).expect("parse key.pem");
        // opensrv-mysql's TLS is built on tokio-rustls 0.25 (rustls 0.22).
        let cfg = rustls_022::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("FE certificate");
        *self.shared.tls.lock().unwrap() = Some(Arc::new(cfg));
    }

    /// Connections to the FE query port that asked for TLS.
    pub fn tls_sessions(&self) -> u32 {
        self.shared.tls_sessions.load(Ordering::SeqCst)
    }

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
                json_max_batch_bytes: 100 * 1024 * 1024,
                stream_load_max_bytes: 102_400 * 1024 * 1024,
                load_mem_limit_bytes: 2 * 1024 * 1024 * 1024,
                ..Meta::default()
            }),
            pool,
            query_port: port(&q),
            http_port: port(&h),
            be_http_port: port(&b),
            tls: Mutex::new(None),
            tls_sessions: AtomicU32::new(0),
            partitioning: tokio::sync::Mutex::new(()),
        });
        let s1 = shared.clone();
        let front = Background::spawn(&format!("sr-{name}-fe"), q, move |l| {
            front::serve_mysql(l, s1)
        });
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

    /// Rows of a table, None while it does not exist.
    pub fn try_count(&self, sr_db: &str, table: &str) -> Option<usize> {
        let sql = format!(
            "SELECT COUNT(*) FROM `{}`.`{table}`",
            self.shared.mdb(sr_db)
        );
        db::try_mysql_exec(&self.shared.server, &sql)
            .ok()
            .and_then(|o| o.trim().parse().ok())
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

    /// A shared-data compaction of one partition: it publishes a new version through the full
    /// transaction path (docs `administration/management/compaction.md`: "Each compaction
    /// generates a new version of data"), the FE records it as the CompactVersion
    /// (`CompactionMgr.handleCompactionFinished`), and the rows stay as they were.
    pub fn compact(&self, sr_db: &str, table: &str, partition: &str) {
        compact_current(&mut self.meta(), sr_db, table, partition);
    }

    /// Every SHOW PARTITIONS of the table from now on first compacts each partition `n` times.
    pub fn compact_on_show(&self, sr_db: &str, table: &str, n: u32) {
        self.meta()
            .compact_on_show
            .insert((sr_db.to_string(), table.to_string()), n);
    }

    /// Seals the current physical partition of `partition` and starts a new one under the same
    /// name, as a random-bucketed table does when a partition grows (FE `PhysicalPartition`,
    /// one SHOW PARTITIONS row each: `PartitionsProcDir.getPartitionInfos`). Only tables with
    /// `DISTRIBUTED BY RANDOM` have more than one.
    pub fn split_physical_partition(&self, sr_db: &str, table: &str, partition: &str) {
        let t = self
            .meta()
            .tables
            .get(&(sr_db.to_string(), table.to_string()))
            .cloned()
            .expect("table");
        let part = if t.partitioned {
            format!(" PARTITION (`{partition}`)")
        } else {
            String::new()
        };
        let rows: i64 = self.backing(
            &format!("SELECT COUNT(*) FROM {{db}}.`{table}`{part}"),
            sr_db,
        )[0][0]
            .parse()
            .expect("count");
        let mut m = self.meta();
        assert!(
            t.ddl.to_uppercase().contains("DISTRIBUTED BY RANDOM"),
            "only random-bucketed tables have several physical partitions"
        );
        let k = (sr_db.to_string(), table.to_string(), partition.to_string());
        let index = show::partition_index(&t, partition);
        let id = m.current_ids.get(&k).copied().unwrap_or(t.id * 100 + index);
        let version = m.versions.get(&k).copied().unwrap_or(1);
        let before: i64 = m
            .sealed
            .get(&k)
            .map(|v| v.iter().map(|s| s.rows).sum())
            .unwrap_or(0);
        m.sealed.entry(k.clone()).or_default().push(Sealed {
            id,
            version,
            rows: rows - before,
        });
        m.next_id += 1;
        let new_id = m.next_id;
        m.current_ids.insert(k.clone(), new_id);
        // A new physical partition starts at version 1.
        m.versions.insert(k, 1);
    }

    pub fn loads(&self) -> Vec<LoadRecord> {
        self.meta().loads.clone()
    }

    /// From now on every Stream Load waits, after reading its body and before it commits, until
    /// `n` loads have started (or two minutes passed): loads that can be in flight together then
    /// are, so `peak_in_flight` shows them side by side without relying on timing. A client that
    /// loads one after another just waits out the two minutes each time.
    pub fn hold_loads_until(&self, n: usize) {
        let mut m = self.meta();
        m.hold_until_entered = Some(n);
        m.loads_entered = 0;
        m.peak_in_flight.clear();
    }

    /// Makes every Stream Load wait `load` before it commits and every INSERT OVERWRITE wait
    /// `overwrite` inside its transaction.
    pub fn slow_down(&self, load: std::time::Duration, overwrite: std::time::Duration) {
        let mut m = self.meta();
        m.load_delay = load;
        m.overwrite_delay = overwrite;
    }

    /// Every Stream Load and INSERT OVERWRITE seen so far.
    pub fn activity(&self) -> Vec<Activity> {
        self.meta().activity.clone()
    }

    /// Forgets the peak of loads in flight (and stops holding loads).
    pub fn reset_in_flight(&self) {
        let mut m = self.meta();
        m.hold_until_entered = None;
        m.loads_entered = 0;
        m.peak_in_flight.clear();
    }

    /// The labels of the most Stream Loads that were in flight at one moment.
    pub fn peak_in_flight(&self) -> Vec<String> {
        self.meta().peak_in_flight.clone()
    }

    pub fn stop(self) {
        for s in self.servers {
            s.stop();
        }
    }
}

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
        Some(t) if t.scheme.automatic() => t.auto_parts.iter().map(|p| p.name.clone()).collect(),
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

/// One compaction of the physical partition loads write to (the current one of that name): a new
/// visible version, published as the CompactVersion of that physical id, no new data version.
pub fn compact_current(m: &mut Meta, sr_db: &str, table: &str, partition: &str) {
    let k = (sr_db.to_string(), table.to_string(), partition.to_string());
    let id = match m.current_ids.get(&k) {
        Some(id) => *id,
        None => match m.tables.get(&(sr_db.to_string(), table.to_string())) {
            Some(t) => t.id * 100 + show::partition_index(t, partition),
            None => return,
        },
    };
    let v = m.versions.entry(k).or_insert(1);
    *v += 1;
    let v = *v;
    m.compact_versions.insert(id, v);
    *m.compactions.entry(id).or_insert(0) += 1;
}
