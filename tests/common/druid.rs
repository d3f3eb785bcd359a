//! Druid fixtures for the druid-deep-storage tests: a local deep storage in the layouts Druid
//! writes (zip-style `index.zip` before Druid 26, `index/` directories since), the matching
//! `druid_segments` rows with payloads in DataSegment's JSON form, the real table DDL of MySQL and
//! PostgreSQL (the 9 original columns, or Druid 28+ with `used_status_last_updated NOT NULL` and
//! `upgraded_from_segment_id`), and a **Coordinator double** serving `loadstatus`.
//! Facts: ../shared/reference/druid.md sections 2 (schema), 3 (payloads), 4 (layouts), 5 (API).

use std::path::{Path, PathBuf};

use super::http_server::{HttpServer, Reply};

/// How a segment's data is stored.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// `.../index.zip`, with these bytes.
    Zip(Vec<u8>),
    /// `.../index/` holding these files (name, bytes).
    Dir(Vec<(String, Vec<u8>)>),
    /// Shares the load spec of the segment with this id (upgraded_from_segment_id).
    Shares(String),
    Tombstone,
    /// Already on S3 (another bucket).
    S3,
}

#[derive(Debug, Clone)]
pub struct Seg {
    pub id: String,
    pub ds: String,
    pub start: String,
    pub end: String,
    pub version: String,
    pub partition: u32,
    pub uuid: Option<String>,
    pub used: bool,
    /// False only for NoneShardSpec.
    pub partitioned: bool,
    pub kind: Kind,
    /// The loadSpec JSON text inside `payload`.
    pub spec: String,
    pub payload: String,
    pub created: String,
    pub used_status_last_updated: Option<String>,
    pub upgraded_from: Option<String>,
    /// The local path of its file or directory (zip, dir and shared segments).
    pub path: Option<String>,
}

impl Seg {
    /// Druid's default storage dir: ds/start_end/version/partition[/uuid].
    pub fn default_dir(&self) -> String {
        let mut d = format!(
            "{}/{}_{}/{}/{}",
            self.ds, self.start, self.end, self.version, self.partition
        );
        if let Some(u) = &self.uuid {
            d.push('/');
            d.push_str(u);
        }
        d
    }
    pub fn is_local(&self) -> bool {
        matches!(self.kind, Kind::Zip(_) | Kind::Dir(_) | Kind::Shares(_))
    }
}

/// Deterministic pseudo-random bytes.
pub fn bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
pub fn seg(
    ds: &str,
    day: u32,
    version: &str,
    partition: u32,
    uuid: Option<&str>,
    used: bool,
    kind: Kind,
    shard: &str,
    extra: &str,
) -> Seg {
    let start = format!("2016-06-{day:02}T00:00:00.000Z");
    let end = format!("2016-06-{:02}T00:00:00.000Z", day + 1);
    let mut id = format!("{ds}_{start}_{end}_{version}");
    if partition != 0 {
        id.push_str(&format!("_{partition}"));
    }
    Seg {
        id,
        ds: ds.into(),
        start,
        end,
        version: version.into(),
        partition,
        uuid: uuid.map(str::to_string),
        used,
        partitioned: !shard.contains("\"none\""),
        kind,
        spec: String::new(),
        payload: extra.to_string() + "\u{0}" + shard, // finished by `build`
        created: "2024-01-25T16:06:44.196Z".into(),
        used_status_last_updated: None,
        upgraded_from: None,
        path: None,
    }
}

/// The files of an `index/` directory of a v9 segment (`big` bytes of smoosh data).
pub fn dir_files(seed: u64, big: usize) -> Vec<(String, Vec<u8>)> {
    vec![
        ("version.bin".to_string(), vec![0, 0, 0, 9]),
        (
            "meta.smoosh".to_string(),
            format!("v1,2147483647,1\n__time,0,0,{big}\n").into_bytes(),
        ),
        ("00000.smoosh".to_string(), bytes(seed, big)),
    ]
}

/// A zip-style segment's `index.zip` as Druid's CompressionUtils.zip writes it with
/// java.util.zip.ZipOutputStream: flat, DEFLATED entries with data descriptors.
pub fn segment_zip(seed: u64, big: usize) -> Vec<u8> {
    let mut zw = zip::ZipWriter::new_stream(Vec::new());
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in dir_files(seed, big) {
        zw.start_file(name, opts).expect("zip entry");
        std::io::Write::write_all(&mut zw, &data).expect("zip data");
    }
    zw.finish().expect("zip").into_inner()
}

/// Two segments of one time chunk overwritten with segment locking: NumberedOverwriteShardSpec
/// serialises its partition as `partitionId` (32768 and up, PartitionIds.
/// NON_ROOT_GEN_START_PARTITION_ID), and the pusher's path uses getPartitionNum() = partitionId
/// (apache/druid processing/.../timeline/partition/NumberedOverwriteShardSpec.java).
pub fn overwrite_segs() -> Vec<Seg> {
    let shard = |id: u32| {
        format!(
            r#"{{"type":"numbered_overwrite","partitionId":{id},"startRootPartitionId":0,"endRootPartitionId":1,"minorVersion":1,"atomicUpdateGroupSize":2}}"#
        )
    };
    [32768u32, 32769]
        .iter()
        .enumerate()
        .map(|(i, &id)| {
            seg(
                "wiki",
                27,
                "2019-05-03T21:57:15.950Z",
                id,
                None,
                true,
                Kind::Dir(dir_files(40 + i as u64, 20_000)),
                &shard(id),
                "",
            )
        })
        .collect()
}

/// A segment stored under partition folder 7 whose shardSpec says partitionNum 1: Druid's pusher
/// path for it is the one of the usual wiki partition 1, so two files map to one target key.
pub fn misnumbered_seg() -> Seg {
    seg(
        "wiki",
        27,
        "2019-05-03T21:57:15.950Z",
        7,
        None,
        true,
        Kind::Zip(segment_zip(77, 5_000)),
        r#"{"type":"numbered","partitionNum":1,"partitions":3}"#,
        "",
    )
}

/// Writes the deep storage under `root` and returns the segments (payloads final).
pub fn build(root: &Path) -> Vec<Seg> {
    build_with(root, Vec::new())
}

/// Like [`build`], with `more` segments (made by this module's helpers) after the usual ones.
pub fn build_with(root: &Path, more: Vec<Seg>) -> Vec<Seg> {
    build_sized(root, more, 20 << 20)
}

/// Like [`build_with`], with `big` bytes of data in the larger directory segment (20 MiB there).
pub fn build_sized(root: &Path, more: Vec<Seg>, big: usize) -> Vec<Seg> {
    let numbered =
        |p: u32, n: u32| format!(r#"{{"type":"numbered","partitionNum":{p},"partitions":{n}}}"#);
    let mut segs = vec![
        // Zip-style (Druid < 26, or druid.storage.zip=true).
        seg(
            "wiki",
            27,
            "2019-05-03T21:57:15.950Z",
            0,
            None,
            true,
            Kind::Zip(segment_zip(1, 40_000)),
            &numbered(0, 3),
            "",
        ),
        // Directory-style (Druid 26+ default).
        seg(
            "wiki",
            27,
            "2019-05-03T21:57:15.950Z",
            1,
            None,
            true,
            Kind::Dir(dir_files(2, 300_000)),
            &numbered(1, 3),
            "",
        ),
        // Realtime push with a unique path (a UUID level).
        seg(
            "wiki",
            27,
            "2019-05-03T21:57:15.950Z",
            2,
            Some("4d4c8a7e-2f0b-4b1e-9a55-0d1c2e3f4a5b"),
            true,
            Kind::Zip(segment_zip(3, 10_000)),
            &numbered(2, 3),
            "",
        ),
        // A tombstone: no file.
        seg(
            "wiki",
            20,
            "2019-05-04T00:00:00.000Z",
            0,
            None,
            true,
            Kind::Tombstone,
            r#"{"type":"tombstone","partitionNum":0,"partitions":1}"#,
            "",
        ),
        // Already on S3: export-metadata crashes on these rows.
        seg(
            "wiki",
            21,
            "2019-05-04T00:00:00.000Z",
            0,
            None,
            true,
            Kind::S3,
            r#"{"type":"none"}"#,
            "",
        ),
        // NoneShardSpec (partition 0), backslashes and non-ASCII in the payload, float forms kept.
        seg(
            "logs",
            10,
            "2024-01-25T16:06:42.835Z",
            0,
            None,
            true,
            Kind::Dir(dir_files(4, 50_000)),
            r#"{"type":"none"}"#,
            r#","lastCompactionState":{"partitionsSpec":{"type":"dynamic","maxRowsPerSegment":5000000},"indexSpec":{"bitmap":{"type":"roaring"}},"granularitySpec":{"queryGranularity":"NONE","rollup":1.0E0}}"#,
        ),
        // Shares the load spec of the previous one (concurrent append/replace upgrade).
        seg(
            "logs",
            10,
            "2024-02-01T00:00:00.000Z",
            0,
            None,
            true,
            Kind::Shares(String::new()),
            &numbered(0, 1),
            "",
        ),
        // Unused but still on local storage: rewritten too.
        seg(
            "logs",
            11,
            "2024-01-25T16:06:42.835Z",
            0,
            None,
            false,
            Kind::Zip(segment_zip(5, 7_000)),
            &numbered(0, 1),
            "",
        ),
        // A larger directory segment: several upload parts once zipped.
        seg(
            "big",
            1,
            "2024-03-01T00:00:00.000Z",
            0,
            None,
            true,
            Kind::Dir(dir_files(6, big)),
            &numbered(0, 1),
            "",
        ),
    ];
    segs.extend(more);
    let owner_id = segs[5].id.clone();
    segs[6].kind = Kind::Shares(owner_id.clone());
    segs[6].upgraded_from = Some(owner_id);

    let mut paths = std::collections::HashMap::new();
    for s in segs.iter_mut() {
        let (extra, shard) = s
            .payload
            .split_once('\u{0}')
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .unwrap();
        let dir = root.join(s.default_dir());
        s.spec = match &s.kind {
            Kind::Zip(data) => {
                std::fs::create_dir_all(&dir).unwrap();
                let p = dir.join("index.zip");
                std::fs::write(&p, data).unwrap();
                s.path = Some(p.display().to_string());
                format!(r#"{{"type":"local","path":"{}"}}"#, p.display())
            }
            Kind::Dir(files) => {
                let d = dir.join("index");
                std::fs::create_dir_all(&d).unwrap();
                for (name, data) in files {
                    std::fs::write(d.join(name), data).unwrap();
                }
                let p = format!("{}/", d.display());
                s.path = Some(p.clone());
                format!(r#"{{"type":"local","path":"{p}"}}"#)
            }
            Kind::Shares(owner) => {
                let p: &String = paths.get(owner).expect("owner first");
                s.path = Some(p.clone());
                format!(r#"{{"type":"local","path":"{p}"}}"#)
            }
            Kind::Tombstone => r#"{"type":"tombstone"}"#.to_string(),
            Kind::S3 => format!(
                r#"{{"type":"s3_zip","bucket":"old-bucket","key":"druid/{}/index.zip","S3Schema":"s3n"}}"#,
                s.default_dir()
            ),
        };
        if let Some(p) = &s.path {
            paths.insert(s.id.clone(), p.clone());
        }
        let dims = if s.ds == "logs" {
            r#"host,path\\to,caf\u00e9,naïve"#
        } else {
            "page,user"
        };
        let size = match &s.kind {
            Kind::Tombstone => 1,
            _ => 123_456,
        };
        s.payload = format!(
            r#"{{"dataSource":"{}","interval":"{}/{}","version":"{}","loadSpec":{},"dimensions":"{dims}","metrics":"count,added","shardSpec":{shard}{extra},"binaryVersion":9,"size":{size},"identifier":"{}"}}"#,
            s.ds, s.start, s.end, s.version, s.spec, s.id
        );
        serde_json::from_str::<serde_json::Value>(&s.payload).expect("fixture payload is JSON");
    }
    segs
}

/// The expected index.zip key (relative to the target's base) of a local segment.
pub fn expected_dir(segs: &[Seg], s: &Seg) -> String {
    match &s.kind {
        Kind::Shares(owner) => expected_dir(segs, segs.iter().find(|o| &o.id == owner).unwrap()),
        _ => s.default_dir(),
    }
}

/// CREATE TABLE as Druid's SQLMetadataConnector does it (MySQL flavour), `druid28` adding
/// `used_status_last_updated NOT NULL` and `upgraded_from_segment_id`.
pub fn mysql_ddl(druid28: bool) -> String {
    format!(
        "CREATE TABLE druid_segments (id VARCHAR(255) NOT NULL, dataSource VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, \
         created_date VARCHAR(255) NOT NULL, start VARCHAR(255) NOT NULL, `end` VARCHAR(255) NOT NULL, partitioned BOOLEAN NOT NULL, \
         version VARCHAR(255) NOT NULL, used BOOLEAN NOT NULL, payload LONGBLOB NOT NULL{} , PRIMARY KEY (id)); \
         CREATE INDEX idx_druid_segments_used ON druid_segments(used);",
        if druid28 {
            ", used_status_last_updated VARCHAR(255) NOT NULL, upgraded_from_segment_id VARCHAR(255)"
        } else {
            ""
        }
    )
}

pub fn postgres_ddl(druid28: bool) -> String {
    format!(
        "CREATE TABLE druid_segments (id VARCHAR(255) NOT NULL, dataSource VARCHAR(255) NOT NULL, \
         created_date VARCHAR(255) NOT NULL, start VARCHAR(255) NOT NULL, \"end\" VARCHAR(255) NOT NULL, partitioned BOOLEAN NOT NULL, \
         version VARCHAR(255) NOT NULL, used BOOLEAN NOT NULL, payload BYTEA NOT NULL{}, PRIMARY KEY (id)); \
         CREATE INDEX idx_druid_segments_used ON druid_segments(used);",
        if druid28 {
            ", used_status_last_updated VARCHAR(255) NOT NULL, upgraded_from_segment_id VARCHAR(255)"
        } else {
            ""
        }
    )
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

/// INSERT statements for the rows; payloads as hex literals (X'..' or decode(..,'hex')).
pub fn insert_sql(segs: &[Seg], postgres: bool, druid28: bool) -> String {
    let mut sql = String::new();
    for s in segs {
        let payload = if postgres {
            format!("decode('{}','hex')", hex(s.payload.as_bytes()))
        } else {
            format!("X'{}'", hex(s.payload.as_bytes()))
        };
        let b = |v: bool| {
            if postgres {
                v.to_string()
            } else {
                (v as u8).to_string()
            }
        };
        let end = if postgres { "\"end\"" } else { "`end`" };
        let (cols, vals) = if druid28 {
            (
                ", used_status_last_updated, upgraded_from_segment_id".to_string(),
                format!(
                    ", '{}', {}",
                    s.used_status_last_updated
                        .clone()
                        .unwrap_or_else(|| "2024-01-25T16:06:44.196Z".into()),
                    s.upgraded_from
                        .as_ref()
                        .map(|u| format!("'{u}'"))
                        .unwrap_or("NULL".into())
                ),
            )
        } else {
            (String::new(), String::new())
        };
        sql.push_str(&format!(
            "INSERT INTO druid_segments (id, dataSource, created_date, start, {end}, partitioned, version, used, payload{cols}) \
             VALUES ('{}', '{}', '{}', '{}', '{}', {}, '{}', {}, {payload}{vals});\n",
            s.id, s.ds, s.created, s.start, s.end, b(s.partitioned), s.version, b(s.used)
        ));
    }
    sql
}

/// The payload text of every row, by id (read as hex so bytes come back exactly).
pub fn payloads(url: &str) -> std::collections::BTreeMap<String, String> {
    let postgres = url.starts_with("postgres");
    let out = if postgres {
        super::db::psql_exec(
            url,
            "SELECT id, encode(payload, 'hex') FROM druid_segments ORDER BY id;",
        )
    } else {
        super::db::mysql_exec(
            url,
            "SELECT id, HEX(payload) FROM druid_segments ORDER BY id;",
        )
    };
    super::db::tsv_rows(&out)
        .into_iter()
        .map(|r| {
            let b: Vec<u8> = (0..r[1].len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&r[1][i..i + 2], 16).unwrap())
                .collect();
            (r[0].clone(), String::from_utf8(b).unwrap())
        })
        .collect()
}

/// Every column but the payload, as text, by id (booleans as 1/0 from either server).
pub fn other_columns(url: &str, druid28: bool) -> Vec<Vec<String>> {
    let postgres = url.starts_with("postgres");
    let extra = if druid28 {
        ", used_status_last_updated, upgraded_from_segment_id"
    } else {
        ""
    };
    let sql = if postgres {
        format!(
            "SELECT id, dataSource, created_date, start, \"end\", partitioned::int, version, used::int{extra} FROM druid_segments ORDER BY id;"
        )
    } else {
        format!(
            "SELECT id, dataSource, created_date, start, `end`, partitioned, version, used{extra} FROM druid_segments ORDER BY id;"
        )
    };
    let out = if postgres {
        super::db::psql_exec(url, &sql)
    } else {
        super::db::mysql_exec(url, &sql)
    };
    super::db::tsv_rows(&out)
}

/// `common.runtime.properties` for a metadata store URL (mysql://u:p@h:port/db or postgres://).
pub fn runtime_properties(url: &str, storage_dir: &Path) -> String {
    let u = url::Url::parse(url).unwrap();
    let (kind, jdbc) = if url.starts_with("postgres") {
        ("postgresql", "postgresql")
    } else {
        ("mysql", "mysql")
    };
    format!(
        "# Druid common configuration\ndruid.extensions.loadList=[\"{kind}-metadata-storage\"]\n\
         druid.metadata.storage.type={kind}\n\
         druid.metadata.storage.connector.connectURI=jdbc:{jdbc}://{}:{}{}\n\
         druid.metadata.storage.connector.user={}\n\
         druid.metadata.storage.connector.password={{\"type\":\"environment\",\"variable\":\"DRUID_METADATA_PASSWORD\"}}\n\
         druid.storage.type=local\ndruid.storage.storageDirectory={}\n",
        u.host_str().unwrap(),
        u.port().unwrap(),
        u.path(),
        u.username(),
        storage_dir.display()
    )
}

pub fn password(url: &str) -> String {
    url::Url::parse(url)
        .unwrap()
        .password()
        .unwrap_or("")
        .to_string()
}

/// What the Coordinator double believes the segments are: its metadata snapshot
/// (SqlSegmentsMetadataManager polls druid_segments every druid.manager.segments.pollDuration and
/// serves its snapshot until the next poll; a Coordinator that was not restarted keeps serving
/// the old loadSpecs for a while).
#[derive(Clone)]
pub enum View {
    /// A fixed snapshot: these payloads (used segments only).
    Fixed(Vec<String>),
    /// A Coordinator that polls this metadata store at every request (after a restart).
    Live(String),
}

impl View {
    fn used_payloads(&self) -> Vec<String> {
        match self {
            View::Fixed(p) => p.clone(),
            View::Live(url) => used_payloads(url),
        }
    }
}

/// The payloads of the used rows (the Coordinator's view only holds used segments).
pub fn used_payloads(url: &str) -> Vec<String> {
    let out = if url.starts_with("postgres") {
        super::db::psql_exec(
            url,
            "SELECT encode(payload, 'hex') FROM druid_segments WHERE used ORDER BY id;",
        )
    } else {
        super::db::mysql_exec(
            url,
            "SELECT HEX(payload) FROM druid_segments WHERE used = 1 ORDER BY id;",
        )
    };
    super::db::tsv_rows(&out)
        .into_iter()
        .map(|r| {
            let b: Vec<u8> = (0..r[0].len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&r[0][i..i + 2], 16).unwrap())
                .collect();
            String::from_utf8(b).unwrap()
        })
        .collect()
}

/// How the Coordinator double behaves.
#[derive(Clone)]
pub struct CoordinatorSpec {
    /// The data sources `loadstatus` lists (in order); the first climbs from `start_pct`.
    pub datasources: Vec<String>,
    pub start_pct: f64,
    /// Polls until the first data source reaches 100%.
    pub steps: u64,
    /// The first polls answer `{}` (a Coordinator before its first metadata poll).
    pub empty_polls: u64,
    /// The metadata API's view (None: every metadata request answers 404).
    pub view: Option<View>,
}

/// Coordinator double, built from apache/druid server/src/main/java/org/apache/druid/server/http/:
/// - `GET /druid/coordinator/v1/loadstatus` (CoordinatorResource.getLoadStatus ->
///   DruidCoordinator.getDatasourceToLoadStatus): 200, a JSON map data source -> percent of its
///   used segments loaded (a double); only data sources with used segments in the snapshot, so
///   `{}` before the first metadata poll.
/// - `GET /druid/coordinator/v1/metadata/datasources/{ds}/segments[?full]`
///   (MetadataResource.getUsedSegmentsInDataSource): 404 with an empty body when the snapshot has
///   no used segment of `ds`, else 200 and the DataSegment objects (`full`) or their ids.
/// - `/status/health` answers `true` (StatusResource); anything else 404 with Jetty's HTML page.
pub struct Coordinator {
    pub server: HttpServer,
}

impl Coordinator {
    pub fn start(datasources: &[&str], start_pct: f64, steps: u64) -> Coordinator {
        Self::start_with(CoordinatorSpec {
            datasources: datasources.iter().map(|s| s.to_string()).collect(),
            start_pct,
            steps,
            empty_polls: 0,
            view: None,
        })
    }

    pub fn start_with(spec: CoordinatorSpec) -> Coordinator {
        let server = HttpServer::start(move |seen, n| {
            let (path, query) = seen.path.split_once('?').unwrap_or((&seen.path, ""));
            let not_found = || {
                Reply::new(
                    404,
                    "<html><body><h2>HTTP ERROR 404 Not Found</h2></body></html>",
                )
                .header("content-type", "text/html;charset=iso-8859-1")
            };
            if path == "/druid/coordinator/v1/loadstatus" {
                if n <= spec.empty_polls {
                    return Reply::json(200, "{}");
                }
                let n = n - spec.empty_polls;
                let pct = if n >= spec.steps {
                    100.0
                } else {
                    spec.start_pct + (100.0 - spec.start_pct) * (n as f64 - 1.0) / spec.steps as f64
                };
                let body: Vec<String> = spec
                    .datasources
                    .iter()
                    .enumerate()
                    .map(|(i, d)| format!("\"{d}\":{:.1}", if i == 0 { pct } else { 100.0 }))
                    .collect();
                return Reply::json(200, &format!("{{{}}}", body.join(",")));
            }
            if path == "/status/health" {
                return Reply::json(200, "true");
            }
            let meta = path
                .strip_prefix("/druid/coordinator/v1/metadata/datasources/")
                .and_then(|r| r.strip_suffix("/segments"));
            if let Some(ds) = meta {
                let Some(view) = &spec.view else {
                    return Reply::new(404, "");
                };
                let segs: Vec<serde_json::Value> = view
                    .used_payloads()
                    .iter()
                    .filter_map(|p| serde_json::from_str::<serde_json::Value>(p).ok())
                    .filter(|v| v["dataSource"] == ds)
                    .collect();
                if segs.is_empty() {
                    return Reply::new(404, ""); // Response.status(NOT_FOUND).build(): no entity
                }
                let full = query
                    .split('&')
                    .any(|kv| kv == "full" || kv.starts_with("full="));
                let body = if full {
                    serde_json::Value::Array(segs)
                } else {
                    serde_json::Value::Array(segs.iter().map(|v| v["identifier"].clone()).collect())
                };
                return Reply::json(200, &body.to_string());
            }
            not_found()
        });
        Coordinator { server }
    }
    pub fn url(&self) -> String {
        format!("http://{}", self.server.addr)
    }
    pub fn polls(&self) -> usize {
        self.server
            .requests_to("/druid/coordinator/v1/loadstatus")
            .len()
    }
}

/// The files of a zip archive (name -> bytes).
pub fn unzip(data: &[u8]) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(data)).expect("a zip archive");
    let mut out = std::collections::BTreeMap::new();
    for i in 0..z.len() {
        let mut f = z.by_index(i).unwrap();
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut f, &mut buf).unwrap();
        out.insert(f.name().unwrap().to_string(), buf);
    }
    out
}

pub fn storage_root(ws_root: &Path) -> PathBuf {
    ws_root.join("druid/var/druid/segments")
}

/// A Druid site: a workspace holding the deep storage and Druid's configuration, the segments,
/// and the metadata store URL (a fresh MariaDB or PostgreSQL database with druid_segments).
pub struct Site {
    pub ws: super::Workspace,
    pub segs: Vec<Seg>,
    pub url: String,
    pub conf: PathBuf,
}

pub fn site(url: String, druid28: bool) -> Site {
    site_with(url, druid28, Vec::new())
}

/// A site with `more` segments besides the usual ones (see [`build_with`]).
pub fn site_with(url: String, druid28: bool, more: Vec<Seg>) -> Site {
    site_sized(url, druid28, more, 20 << 20)
}

/// Like [`site_with`], with `big` bytes in the larger directory segment (see [`build_sized`]).
pub fn site_sized(url: String, druid28: bool, more: Vec<Seg>, big: usize) -> Site {
    let ws = super::Workspace::new();
    let root = storage_root(ws.path());
    let mut segs = build_sized(&root, more, big);
    if druid28 {
        segs[0].used_status_last_updated = Some("2024-02-02T10:00:00.000Z".into());
    }
    let postgres = url.starts_with("postgres");
    let ddl = if postgres {
        postgres_ddl(druid28)
    } else {
        mysql_ddl(druid28)
    };
    let sql = ddl + &insert_sql(&segs, postgres, druid28);
    if postgres {
        super::db::psql_exec(&url, &sql);
    } else {
        super::db::mysql_exec(&url, &sql);
    }
    // Druid's layout: conf/druid/cluster/_common/common.runtime.properties, storage var/druid/segments.
    let conf = ws.write(
        "druid/conf/druid/cluster/_common/common.runtime.properties",
        &runtime_properties(&url, Path::new("var/druid/segments")),
    );
    Site {
        ws,
        segs,
        url,
        conf,
    }
}

/// `ferry run druid-deep-storage --yes -p druid_conf=... EXTRA` against the site (and S3).
pub fn run(site: &Site, extra: &[&str], s3: Option<&super::s3::S3Server>) -> super::Output {
    let mut f = ferry_cmd(site, extra);
    f.cmd.env_remove("AWS_CA_BUNDLE");
    if let Some(s3) = s3 {
        s3.apply_env(&mut f.cmd);
    }
    f.run()
}

/// Every row's expected payload after the migration: local rows get `new_spec(dir)`, others
/// stay byte for byte.
pub fn expected(
    segs: &[Seg],
    new_spec: impl Fn(&str) -> String,
) -> std::collections::BTreeMap<String, String> {
    segs.iter()
        .map(|s| {
            let p = if s.is_local() {
                s.payload
                    .replace(&s.spec, &new_spec(&expected_dir(segs, s)))
            } else {
                s.payload.clone()
            };
            (s.id.clone(), p)
        })
        .collect()
}

/// Every row's payload as the site was built.
pub fn originals(segs: &[Seg]) -> std::collections::BTreeMap<String, String> {
    segs.iter()
        .map(|s| (s.id.clone(), s.payload.clone()))
        .collect()
}

/// `ferry run druid-deep-storage --yes -p druid_conf=... EXTRA` against the site, not yet run:
/// the caller points it at a store (e.g. `Gcs::apply_env(&mut f.cmd)`) and runs it.
pub fn ferry_cmd(site: &Site, extra: &[&str]) -> super::Ferry {
    let mut args: Vec<String> = vec![
        "run".into(),
        "druid-deep-storage".into(),
        "--yes".into(),
        "-p".into(),
        format!("druid_conf={}", site.conf.display()),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    site.ws
        .ferry()
        .args(args)
        .env("DRUID_METADATA_PASSWORD", &password(&site.url))
}

/// CRC-32 (IEEE), as java.util.zip.CRC32 computes it.
pub fn crc32(data: &[u8]) -> u32 {
    let mut h = flate2::Crc::new();
    h.update(data);
    h.sum()
}

/// Whether a JVM is on PATH; prints `SKIPPED: <what>` when not (tests/setup/jdk.sh installs
/// default-jdk-headless), and under CI=true fails instead, since it can be installed there.
pub fn java_or_skip(what: &str) -> bool {
    let ok = std::process::Command::new("java")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            !super::db::on_ci(),
            "CI=true and no java on PATH for {what}: run tests/setup/jdk.sh"
        );
        println!(
            "SKIPPED: {what}: no java on PATH (tests/setup/jdk.sh installs default-jdk-headless)"
        );
    }
    ok
}

/// Reads zip files with tests/java/ZipCheck.java (java.util.zip.ZipInputStream entry by entry,
/// as Druid's CompressionUtils.unzip(InputStream, File) does for the S3 and GCS pullers): Ok(one
/// line `FILE\tNAME\tSIZE\tCRC32` per entry) or Err(the Java exception).
pub fn java_zip_read(files: &[PathBuf]) -> Result<Vec<String>, String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/java/ZipCheck.java");
    let out = std::process::Command::new("java")
        .arg(&src)
        .args(files)
        .output()
        .expect("java runs");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect())
}
