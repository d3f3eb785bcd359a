//! Astra test support: a **DevOps API double** (the Sideloader migration endpoints, built from
//! `../shared/reference/astra.md` sections 1-2 and 5) and Cassandra snapshot trees for the
//! **nodetool double** (`tests/doubles/nodetool`).
//!
//! The double behaves like the documented API, including its odd answers:
//! - `POST .../migrations/initialize` answers `Initializing` with empty `uploadBucketDir` and
//!   `keys: null`; the migration stays `Initializing` for `init_delay`;
//! - the first `blips` GETs of a new migration answer `404 page not found` as text/plain (the
//!   non-JSON answer behind the docs' "parse error: Invalid numeric literal");
//! - `ReceivingFiles` carries an upload directory and credentials in the cloud's form: AWS
//!   (`sessionToken`, keys minted by the [`Sts`] of a real s3s-fs server, expiring after
//!   `cred_lifetime`; new ones only once the old ones expire) or Azure (`URL signature`, a SAS for
//!   a container in a real Azurite);
//! - `launch` revokes the credentials, but the status lags (`ReceivingFiles` for `launch_lag`),
//!   then `ImportInProgress` with a `progressInfo` for `import_time`, then the [`Outcome`];
//! - `cleanup` fails while `ImportInProgress`; `?option.cleanupTime=` reschedules;
//! - a path with `//` (an empty id) gets Go's `301 Moved Permanently`; a wrong token 401; an unknown
//!   migration 404 in the DevOps error form `{"errors":[{"ID":..,"message":..}]}`.
//!
//! Ids are 8 hex digits here, not the real UUIDs: s3s-fs keeps each object's metadata in one file
//! named `.bucket-<base64 bucket>.object-<base64 key>...json`, and real-length migration keys
//! (`<uuid>/sstables/<node>/<ks>/<table>-<32 hex>/snapshots/...`) pass Linux's 255-byte file
//! name limit there (s3s-fs answers 500). ferry treats ids as opaque strings.
//!
//! Where the reference has gaps (failure status names, bodies of launch/pause/abort), the double
//! picks plausible values and the tests only rely on ferry passing them through.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::azurite::Azurite;
#[path = "gcs_auth.rs"]
pub mod gcs_auth;
use super::http_server::{HttpServer, Reply, Seen};
use super::s3::Sts;
use gcs_auth::{GcsAuth, SaKey};

#[derive(Clone, Debug)]
pub enum Outcome {
    Done,
    /// The import ends with this status and progressInfo.
    Fail {
        status: String,
        info: String,
    },
}

#[derive(Clone)]
pub enum Upload {
    /// `s3://ds-mig-<db>/<id>/sstables/` on an s3s-fs server whose [`Sts`] this double uses.
    Aws(Sts),
    /// `<azurite>/mig-upload-<id>/sstables/` with an account SAS.
    Azure(Azurite),
    /// `gs://ds-mig-<db>/<id>/sstables/` in the GCS emulator, behind a [`GcsAuth`] that issues the
    /// service-account keys (`TYPE_GOOGLE_CREDENTIALS_FILE`, `keys.file` = the key JSON in base64,
    /// DOCS/migrate "Get Google Cloud credentials from MigrationStatus") and refuses them once
    /// expired; new ones only once the old ones expire, as for AWS.
    Gcp(GcsAuth),
}

#[derive(Clone)]
pub struct Config {
    pub token: String,
    pub db_id: String,
    pub init_delay: Duration,
    pub blips: u32,
    pub cred_lifetime: Duration,
    pub launch_lag: Duration,
    pub import_time: Duration,
    pub outcome: Outcome,
    pub upload: Upload,
}

impl Config {
    pub fn new(upload: Upload) -> Config {
        Config {
            token: format!("AstraCS:{}", uuid::Uuid::new_v4().simple()),
            db_id: short_id(),
            init_delay: Duration::from_millis(600),
            blips: 2,
            cred_lifetime: Duration::from_secs(3600),
            launch_lag: Duration::from_millis(400),
            import_time: Duration::from_millis(600),
            outcome: Outcome::Done,
            upload,
        }
    }
}

struct Migration {
    id: String,
    created: Instant,
    gets: u32,
    launched: Option<Instant>,
    outcome: Outcome,
    aws: Option<super::s3::TempCred>,
    gcp: Option<SaKey>,
    cleanup_time: String,
    cleaned: Option<Instant>,
    aborted: bool,
    paused: bool,
}

struct Inner {
    cfg: Config,
    migrations: Vec<Migration>,
    initializes: u32,
    launches: u32,
    blips_served: u32,
}

pub struct DevOpsApi {
    pub server: HttpServer,
    inner: Arc<Mutex<Inner>>,
}

/// See the module doc: 8 hex digits instead of a UUID.
fn short_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}

fn iso(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t)
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn errors(status: u16, id: u32, message: &str) -> Reply {
    Reply::json(
        status,
        &serde_json::json!({"errors": [{"ID": id, "message": message}]}).to_string(),
    )
}

fn page_not_found() -> Reply {
    Reply::new(404, "404 page not found\n").header("content-type", "text/plain; charset=utf-8")
}

impl DevOpsApi {
    pub fn start(cfg: Config) -> DevOpsApi {
        let inner = Arc::new(Mutex::new(Inner {
            cfg,
            migrations: Vec::new(),
            initializes: 0,
            launches: 0,
            blips_served: 0,
        }));
        let state = inner.clone();
        let server = HttpServer::start(move |seen, _| {
            let mut st = state.lock().unwrap();
            handle(&mut st, seen)
        });
        DevOpsApi { server, inner }
    }

    pub fn url(&self) -> String {
        self.server.url.clone()
    }
    pub fn token(&self) -> String {
        self.inner.lock().unwrap().cfg.token.clone()
    }
    pub fn db_id(&self) -> String {
        self.inner.lock().unwrap().cfg.db_id.clone()
    }
    pub fn initializes(&self) -> u32 {
        self.inner.lock().unwrap().initializes
    }
    pub fn launches(&self) -> u32 {
        self.inner.lock().unwrap().launches
    }
    pub fn migration_ids(&self) -> Vec<String> {
        let st = self.inner.lock().unwrap();
        st.migrations.iter().map(|m| m.id.clone()).collect()
    }
    /// The outcome of the next launch (a relaunch after a fix).
    pub fn set_outcome(&self, outcome: Outcome) {
        self.inner.lock().unwrap().cfg.outcome = outcome;
    }
    pub fn cleanup_time(&self, id: &str) -> Option<String> {
        let st = self.inner.lock().unwrap();
        st.migrations
            .iter()
            .find(|m| m.id == id)
            .map(|m| m.cleanup_time.clone())
    }
    pub fn paused(&self, id: &str) -> bool {
        let st = self.inner.lock().unwrap();
        st.migrations.iter().any(|m| m.id == id && m.paused)
    }
    pub fn aborted(&self, id: &str) -> bool {
        let st = self.inner.lock().unwrap();
        st.migrations.iter().any(|m| m.id == id && m.aborted)
    }
    /// Requests answered with the non-JSON `404 page not found` so far.
    pub fn blips_served(&self) -> u32 {
        self.inner.lock().unwrap().blips_served
    }
    pub fn requests(&self) -> Vec<Seen> {
        self.server.requests()
    }
}

fn handle(st: &mut Inner, seen: &Seen) -> Reply {
    let path = seen.path.split('?').next().unwrap_or("").to_string();
    let query = seen.path.split_once('?').map(|x| x.1).unwrap_or("");
    if path.contains("//") {
        // Go's ServeMux cleans the path and redirects, before any handler runs.
        let mut clean = path.clone();
        while clean.contains("//") {
            clean = clean.replace("//", "/");
        }
        return Reply::new(
            301,
            &format!("<a href=\"{clean}\">Moved Permanently</a>.\n\n"),
        )
        .header("location", &clean)
        .header("content-type", "text/html; charset=utf-8");
    }
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if parts.len() < 4 || parts[0] != "v2" || parts[1] != "databases" || parts[3] != "migrations" {
        return page_not_found();
    }
    let bearer = seen
        .header("authorization")
        .and_then(|h| h.strip_prefix("Bearer "))
        .unwrap_or("");
    if bearer != st.cfg.token {
        return errors(
            401,
            0,
            "The request was not authorized: the token is missing, invalid or expired",
        );
    }
    if parts[2] != st.cfg.db_id {
        return errors(404, 2000003, &format!("database {} not found", parts[2]));
    }
    let now = Instant::now();
    match (seen.method.as_str(), &parts[4..]) {
        ("POST", ["initialize"]) => {
            st.initializes += 1;
            let id = short_id();
            if let Upload::Azure(az) = &st.cfg.upload {
                az.create_container(&format!("mig-upload-{id}"));
            }
            let m = Migration {
                id: id.clone(),
                created: now,
                gets: 0,
                launched: None,
                outcome: Outcome::Done,
                aws: None,
                gcp: None,
                cleanup_time: iso(SystemTime::now() + Duration::from_secs(7 * 86400)),
                cleaned: None,
                aborted: false,
                paused: false,
            };
            st.migrations.push(m);
            let m = st.migrations.last().unwrap();
            Reply::json(
                200,
                &serde_json::json!({
                    "migrationID": id, "dbID": st.cfg.db_id, "status": "Initializing",
                    "progressInfo": "", "uploadBucketDir": "",
                    "uploadCredentials": {"name": "", "keys": null, "credentialExpiration": null},
                    "expectedCleanupTime": m.cleanup_time,
                })
                .to_string(),
            )
        }
        (method, [id, rest @ ..]) => {
            let cfg = st.cfg.clone();
            let Some(m) = st.migrations.iter_mut().find(|m| m.id == *id) else {
                return errors(404, 2000004, &format!("migration {id} not found"));
            };
            match (method, rest) {
                ("GET", []) => {
                    m.gets += 1;
                    if m.gets <= cfg.blips {
                        st.blips_served += 1;
                        return page_not_found();
                    }
                    Reply::json(200, &status(m, &cfg, now).to_string())
                }
                ("POST", ["launch"]) => {
                    let phase = phase(m, &cfg, now);
                    if phase != "ReceivingFiles" && !phase.contains("Fail") {
                        return errors(
                            409,
                            2000010,
                            &format!("migration {id} cannot be launched in status {phase}"),
                        );
                    }
                    m.launched = Some(now);
                    m.outcome = cfg.outcome.clone();
                    match &cfg.upload {
                        Upload::Aws(sts) => sts.revoke_all(),
                        Upload::Gcp(auth) => auth.revoke_all(),
                        Upload::Azure(_) => {}
                    }
                    st.launches += 1;
                    let m = st.migrations.iter_mut().find(|m| m.id == *id).unwrap();
                    Reply::json(200, &status(m, &cfg, now).to_string())
                }
                ("POST", ["pause"]) | ("POST", ["resume"]) => {
                    if phase(m, &cfg, now) == "ImportInProgress" {
                        m.paused = rest[0] == "pause";
                    }
                    Reply::json(200, &status(m, &cfg, now).to_string())
                }
                ("POST", ["abort"]) => {
                    let phase = phase(m, &cfg, now);
                    if phase == "MigrationDone" || phase == "Closed" {
                        return errors(409, 2000011, &format!("migration {id} is {phase}"));
                    }
                    m.aborted = true;
                    Reply::json(200, &status(m, &cfg, now).to_string())
                }
                ("POST", ["cleanup"]) => {
                    let when = query.split('&').find_map(|kv| {
                        kv.strip_prefix("option.cleanupTime=")
                            .map(|v| v.replace("%3A", ":").replace("%3a", ":"))
                    });
                    match when {
                        Some(t) => {
                            let parsed = chrono::DateTime::parse_from_rfc3339(&t).or_else(|_| {
                                chrono::DateTime::parse_from_rfc3339(&t.replace('Z', ":00Z"))
                            });
                            match parsed {
                                Ok(_) => m.cleanup_time = t,
                                Err(_) => {
                                    return errors(
                                        400,
                                        2000013,
                                        &format!(
                                            "option.cleanupTime {t:?} is not an ISO-8601 time"
                                        ),
                                    );
                                }
                            }
                        }
                        None if phase(m, &cfg, now) == "ImportInProgress" => {
                            return errors(
                                409,
                                2000012,
                                "cleanup cannot run while the migration is ImportInProgress",
                            );
                        }
                        None => m.cleaned = Some(now),
                    }
                    Reply::json(200, &status(m, &cfg, now).to_string())
                }
                _ => Reply::new(405, "Method Not Allowed\n"),
            }
        }
        _ => page_not_found(),
    }
}

fn phase(m: &Migration, cfg: &Config, now: Instant) -> String {
    if let Some(c) = m.cleaned {
        return if now < c + Duration::from_millis(300) {
            "CleaningUpFiles".into()
        } else {
            "Closed".into()
        };
    }
    if m.aborted {
        return "Aborted".into();
    }
    if now < m.created + cfg.init_delay {
        return "Initializing".into();
    }
    let Some(l) = m.launched else {
        return "ReceivingFiles".into();
    };
    if now < l + cfg.launch_lag {
        return "ReceivingFiles".into(); // the documented status lag
    }
    if now < l + cfg.launch_lag + cfg.import_time || m.paused {
        return "ImportInProgress".into();
    }
    match &m.outcome {
        Outcome::Done => "MigrationDone".into(),
        Outcome::Fail { status, .. } => status.clone(),
    }
}

fn status(m: &mut Migration, cfg: &Config, now: Instant) -> serde_json::Value {
    let phase = phase(m, cfg, now);
    let mut progress = String::new();
    if phase == "ImportInProgress" {
        let l = m.launched.unwrap() + cfg.launch_lag;
        let done = (now - l).as_millis() * 100 / cfg.import_time.as_millis().max(1);
        progress = format!("importing SSTables: {}% of subsets", done.min(99));
        if m.paused {
            progress.push_str(" (paused)");
        }
    } else if let Outcome::Fail { status, info } = &m.outcome
        && phase == *status
    {
        progress = info.clone();
    }
    let (dir, creds) = if phase == "Initializing" {
        (
            String::new(),
            serde_json::json!({"name": "", "keys": null, "credentialExpiration": null}),
        )
    } else {
        match &cfg.upload {
            Upload::Aws(sts) => {
                // The server's view of the expiry (a test may cut credentials short).
                let fresh = m.aws.as_ref().is_none_or(|c| {
                    sts.expires(&c.access_key)
                        .is_none_or(|e| SystemTime::now() >= e)
                });
                if fresh && m.launched.is_none() {
                    m.aws = Some(sts.issue(cfg.cred_lifetime));
                }
                let c = m.aws.clone().unwrap_or_else(|| sts.issue(Duration::ZERO));
                (
                    format!("s3://ds-mig-{}/{}/sstables/", cfg.db_id, m.id),
                    serde_json::json!({
                        "name": "sessionToken",
                        "keys": {"accessKeyID": c.access_key, "secretAccessKey": c.secret_key,
                                 "sessionToken": c.session_token},
                        "credentialExpiration": iso(c.expires),
                        "hint": format!("\nexport AWS_ACCESS_KEY_ID={}\nexport AWS_SECRET_ACCESS_KEY={}\nexport AWS_SESSION_TOKEN={}\n",
                                        c.access_key, c.secret_key, c.session_token),
                    }),
                )
            }
            Upload::Gcp(auth) => {
                let fresh = m.gcp.as_ref().is_none_or(|k| {
                    auth.expires(&k.private_key_id)
                        .is_none_or(|e| SystemTime::now() >= e)
                });
                if fresh && m.launched.is_none() {
                    m.gcp = Some(auth.issue(cfg.cred_lifetime));
                }
                let k = m.gcp.clone().unwrap_or_else(|| auth.issue(Duration::ZERO));
                (
                    format!("gs://ds-mig-{}/{}/sstables/", cfg.db_id, m.id),
                    serde_json::json!({
                        "name": "TYPE_GOOGLE_CREDENTIALS_FILE",
                        "keys": {"file": k.file()},
                        "credentialExpiration": iso(k.expires),
                    }),
                )
            }
            Upload::Azure(az) => {
                let dir = format!("{}/mig-upload-{}/sstables/", az.endpoint, m.id);
                let sas = az.account_sas("racwdl");
                (
                    dir.clone(),
                    serde_json::json!({
                        "name": "URL signature",
                        "keys": {"url": format!("{dir}?{sas}"), "urlSignature": sas},
                        "credentialExpiration": iso(SystemTime::now() + Duration::from_secs(86400)),
                    }),
                )
            }
        }
    };
    serde_json::json!({
        "migrationID": m.id, "dbID": cfg.db_id, "status": phase, "progressInfo": progress,
        "uploadBucketDir": dir, "uploadCredentials": creds,
        "expectedCleanupTime": m.cleanup_time,
    })
}

// ------------------------------------------------------------------------------------------------
// Cassandra data directories for the nodetool double
// ------------------------------------------------------------------------------------------------

/// The nodetool double's path.
pub fn nodetool() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/doubles/nodetool")
}

/// One SSTable file of a node's live data: data dir index (0-based), path below the data dir.
#[derive(Clone, Debug)]
pub struct LiveFile {
    pub node: String,
    pub data_dir: usize,
    pub rel: String,
    pub size: usize,
}

pub const SENSOR_DIR: &str = "sensor_readings-296a2d30c22a11e9b1350d927649052c";
pub const ROOMS_DIR: &str = "rooms-4b1f0c20c22a11e9b1350d927649052c";
pub const JOURNAL_DIR: &str = "journal-7a3c1e40c22a11e9b1350d927649052c";

/// schema.cql of `smart_home.sensor_readings` (see [`cluster`]).
pub const SENSOR_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS smart_home.sensor_readings (
    device_id uuid,
    reading_time timestamp,
    reading_type text,
    room_id uuid,
    value double,
    battery int,
    unit int,
    PRIMARY KEY (device_id, reading_time)
) WITH ID = 296a2d30-c22a-11e9-b135-0d927649052c
    AND CLUSTERING ORDER BY (reading_time DESC)
    AND comment = 'readings; one per device -- and time'
    AND compaction = {'class': 'org.apache.cassandra.db.compaction.SizeTieredCompactionStrategy', 'max_threshold': '32', 'min_threshold': '4'}
    AND compression = {'chunk_length_in_kb': '16', 'class': 'org.apache.cassandra.io.compress.LZ4Compressor'};
ALTER TABLE smart_home.sensor_readings DROP battery USING TIMESTAMP 1700000000000000;
ALTER TABLE smart_home.sensor_readings DROP unit USING TIMESTAMP 1700000000000001;
ALTER TABLE smart_home.sensor_readings ADD unit text;
CREATE INDEX IF NOT EXISTS roomidx ON smart_home.sensor_readings (room_id);
CREATE CUSTOM INDEX IF NOT EXISTS typeidx ON smart_home.sensor_readings (reading_type) USING 'StorageAttachedIndex';
";

/// The table Astra must have for [`SENSOR_SCHEMA`]: the ALTERs applied, `ID` (an internal option
/// Cassandra writes so a restore keeps the table id) left out.
pub const SENSOR_TABLE: &str = "CREATE TABLE IF NOT EXISTS smart_home.sensor_readings (
    device_id uuid,
    reading_time timestamp,
    reading_type text,
    room_id uuid,
    value double,
    unit text,
    PRIMARY KEY (device_id, reading_time)
) WITH CLUSTERING ORDER BY (reading_time DESC)
    AND comment = 'readings; one per device -- and time'
    AND compaction = {'class': 'org.apache.cassandra.db.compaction.SizeTieredCompactionStrategy', 'max_threshold': '32', 'min_threshold': '4'}
    AND compression = {'chunk_length_in_kb': '16', 'class': 'org.apache.cassandra.io.compress.LZ4Compressor'};";

/// schema.cql of `smart_home.rooms`: a single-column primary key (`PRIMARY KEY` on the column,
/// TableMetadata.appendColumnDefinitions) and a column whose name says "encrypted" although the
/// table is not (encryption is a table option, see [`encrypt`]).
pub const ROOMS_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS smart_home.rooms (
    room_id uuid PRIMARY KEY,
    encrypted_note text,
    name text
) WITH ID = 4b1f0c20-c22a-11e9-b135-0d927649052c
    AND comment = 'not encrypted';
";

/// Makes `smart_home.rooms` a DSE TDE table: the encryption is the compression class
/// (`EncryptingLZ4Compressor`, with `cipher_algorithm` / `secret_key_strength`), DataStax
/// "Table encryption options and syntax" (https://docs.datastax.com/en/dse/5.1/securing/
/// encrypt-table-options.html; the classes Encryptor, EncryptingLZ4Compressor,
/// EncryptingDeflateCompressor, EncryptingSnappyCompressor).
pub fn encrypt(root: &Path) {
    std::fs::write(
        root.join("schema/smart_home.rooms.cql"),
        "CREATE TABLE IF NOT EXISTS smart_home.rooms (\n    room_id uuid PRIMARY KEY,\n    \
         encrypted_note text,\n    name text\n) WITH ID = 4b1f0c20-c22a-11e9-b135-0d927649052c\n    \
         AND compression = {'chunk_length_in_kb': '64', 'cipher_algorithm': 'AES/ECB/PKCS5Padding', \
         'class': 'com.datastax.bdp.cassandra.crypto.EncryptingLZ4Compressor', \
         'secret_key_strength': '128', 'system_key_file': 'system_key'};\n",
    )
    .unwrap();
}

fn components(version: &str, generation: u32) -> Vec<String> {
    [
        "CompressionInfo.db",
        "Data.db",
        "Digest.crc32",
        "Filter.db",
        "Index.db",
        "Statistics.db",
        "Summary.db",
        "TOC.txt",
    ]
    .iter()
    .map(|c| format!("{version}-{generation}-big-{c}"))
    .collect()
}

/// Builds `root/NODE/data1` and `root/NODE/data2` for every node, plus `root/schema/*.cql`:
/// `smart_home.sensor_readings` (SSTables in both data dirs, a secondary index `roomidx` with its
/// own SSTables, an SAI), `smart_home.rooms` (data1 only), `catalog.journal` (with a UDT) and
/// `system.local` (never migrated). With `big_data`, the first node's sensor_readings Data.db is
/// that many bytes (a multipart upload). Returns the live files.
pub fn cluster(root: &Path, nodes: &[&str], big_data: usize) -> Vec<LiveFile> {
    let mut out = Vec::new();
    let schema = root.join("schema");
    std::fs::create_dir_all(&schema).unwrap();
    // What SchemaCQLHelper.reCreateStatementsForSchemaCql writes (apache/cassandra
    // src/java/org/apache/cassandra/db/SchemaCQLHelper.java, TableMetadata.appendCqlTo /
    // appendColumnDefinitions / appendTableOptions / appendDropColumns in
    // src/java/org/apache/cassandra/schema/TableMetadata.java): the CREATE TABLE lists the live
    // columns, then every dropped column with its old type (a re-added column only there), then
    // `WITH ID = ...` first among the options; one `ALTER TABLE ... DROP c USING TIMESTAMP t` per
    // dropped column, followed by `ALTER TABLE ... ADD c type` when it was added again; the
    // indexes last. Here `battery` was dropped and `unit` dropped (int) and re-added (text).
    std::fs::write(schema.join("smart_home.sensor_readings.cql"), SENSOR_SCHEMA).unwrap();
    std::fs::write(schema.join("smart_home.rooms.cql"), ROOMS_SCHEMA).unwrap();
    std::fs::write(
        schema.join("catalog.journal.cql"),
        "CREATE TYPE IF NOT EXISTS catalog.address (street text, city text);\n\
         CREATE TABLE IF NOT EXISTS catalog.journal (\n    id int PRIMARY KEY,\n    \
         publisher frozen<address>\n) WITH ID = 7a3c1e40-c22a-11e9-b135-0d927649052c;\n",
    )
    .unwrap();
    let mut seed = 1u64;
    for (n, node) in nodes.iter().enumerate() {
        let mut add = |dd: usize, rel: String, size: usize| {
            let p = root.join(node).join(format!("data{}", dd + 1)).join(&rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            seed += 1;
            std::fs::write(&p, super::druid::bytes(seed, size)).unwrap();
            out.push(LiveFile {
                node: node.to_string(),
                data_dir: dd,
                rel,
                size,
            });
        };
        for c in components("nb", 1) {
            let size = if c.ends_with("Data.db") && n == 0 && big_data > 0 {
                big_data
            } else {
                700 + (c.len() * 37) % 900
            };
            add(0, format!("smart_home/{SENSOR_DIR}/{c}"), size);
            add(0, format!("smart_home/{SENSOR_DIR}/.roomidx/{c}"), 300);
        }
        for c in components("nb", 2) {
            add(1, format!("smart_home/{SENSOR_DIR}/{c}"), 500);
        }
        for c in components("nb", 3) {
            add(0, format!("smart_home/{ROOMS_DIR}/{c}"), 400);
        }
        for c in components("nb", 4) {
            add(1, format!("catalog/{JOURNAL_DIR}/{c}"), 450);
        }
        for c in components("nb", 5) {
            add(
                0,
                format!("system/local-7ad54392bcdd35a684174e047860b377/{c}"),
                100,
            );
        }
    }
    out
}

/// Adds a materialized view `catalog.journal_by_publisher` (its own table dir, with SSTables in
/// both data dirs, and its schema). A view's schema.cql holds its CREATE MATERIALIZED VIEW
/// (SchemaCQLHelper.getTableMetadataAsCQL: `metadata.isView()` -> ViewMetadata.toCqlString).
pub fn add_view(root: &Path, node: &str) {
    let rel = "catalog/journal_by_publisher-9b2c1e40c22a11e9b1350d927649052c";
    for (dd, generation) in [("data1", 6), ("data2", 7)] {
        let dir = root.join(node).join(dd).join(rel);
        std::fs::create_dir_all(&dir).unwrap();
        for c in components("nb", generation) {
            std::fs::write(dir.join(c), b"view sstable").unwrap();
        }
    }
    std::fs::write(
        root.join("schema/catalog.journal_by_publisher.cql"),
        "CREATE MATERIALIZED VIEW IF NOT EXISTS catalog.journal_by_publisher AS\n    \
         SELECT *\n    FROM catalog.journal\n    WHERE publisher IS NOT NULL AND id IS NOT NULL\n    \
         PRIMARY KEY (publisher, id)\n WITH ID = 9b2c1e40-c22a-11e9-b135-0d927649052c\n    \
         AND CLUSTERING ORDER BY (id ASC);\n",
    )
    .unwrap();
}

/// The keys the upload must produce for a node's live files of the migrated keyspaces, when
/// snapshot `snap` was taken: `<node>/<ks>/<table dir>/snapshots/<snap>/<file>`, secondary index
/// dirs left out, manifest.json and schema.cql (first data dir) added.
pub fn expected_keys(live: &[LiveFile], snap: &str, keyspaces: &[&str]) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    for f in live {
        let mut parts = f.rel.splitn(3, '/');
        let (ks, tdir, file) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        if !keyspaces.contains(&ks) || file.starts_with('.') {
            continue;
        }
        out.push((
            format!("{}/{ks}/{tdir}/snapshots/{snap}/{file}", f.node),
            f.size,
        ));
    }
    out.sort();
    out
}
