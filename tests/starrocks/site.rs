//! The site the starrocks-sync tests run against: a source and a target cluster double, the
//! source loaded with a small shop (a partitioned table with awkward values, an unpartitioned
//! primary-key table, a table and a database to exclude), the tool's own conf folder, and a
//! runner that checks no password ever reaches ferry's output.
#![allow(dead_code)]

use crate::common::{Output, Workspace, db, json_lines};
use crate::starrocks::double::StarRocks;

pub const SRC_PW: &str = "src-Secret#1";
pub const DST_PW: &str = "dst-Secret%2";

/// The official conf/sync.properties as shipped (manual, Step 2), with hosts and credentials.
fn sync_properties(src: &StarRocks, dst: &StarRocks, extra: &str) -> String {
    format!(
        "# If true, all tables will be synchronized only once, and the program will exit automatically after completion.
one_time_run_mode=true

source_fe_host=127.0.0.1
source_fe_query_port={}
source_cluster_user=root
source_cluster_password={SRC_PW}
source_cluster_password_secret_key=
source_cluster_token=

target_fe_host=127.0.0.1
target_fe_query_port={}
target_cluster_user=root
target_cluster_password={DST_PW}
target_cluster_password_secret_key=

jdbc_connect_timeout_ms=30000
jdbc_socket_timeout_ms=60000

include_data_list=
exclude_data_list=scratch,shop.audit_log

target_cluster_storage_volume=
target_cluster_use_builtin_storage_volume_only=false
target_cluster_replication_num=-1
target_cluster_max_disk_used_percent=80
target_cluster_enable_persistent_index=

max_replication_data_size_per_job_in_gb=1024

meta_job_interval_seconds=180
meta_job_threads=4
ddl_job_interval_seconds=10
ddl_job_batch_size=10

# table config
ddl_job_allow_drop_target_only=false
ddl_job_allow_drop_schema_change_table=true
ddl_job_allow_drop_inconsistent_partition=true
ddl_job_allow_drop_inconsistent_time_partition = true
ddl_job_allow_drop_partition_target_only=true
# index config
enable_bitmap_index_sync=false
ddl_job_allow_drop_inconsistent_bitmap_index=true
ddl_job_allow_drop_bitmap_index_target_only=true
# MV config
enable_materialized_view_sync=false
ddl_job_allow_drop_inconsistent_materialized_view=true
ddl_job_allow_drop_materialized_view_target_only=false
# View config
enable_view_sync=false
ddl_job_allow_drop_inconsistent_view=true
ddl_job_allow_drop_view_target_only=false

replication_job_interval_seconds=10
replication_job_batch_size=10
report_interval_seconds=300
enable_table_property_sync=false
{extra}",
        src.query_port(),
        dst.query_port()
    )
}

const ORDERS: &str = "CREATE TABLE `shop`.`orders` (
  `id` bigint(20) NOT NULL COMMENT \"\",
  `dt` date NOT NULL COMMENT \"\",
  `customer` varchar(64) NULL COMMENT \"\",
  `amount` decimal(10, 2) NULL COMMENT \"\",
  `note` varchar(200) NULL COMMENT \"\",
  `created` datetime NULL COMMENT \"\"
) ENGINE=OLAP
DUPLICATE KEY(`id`, `dt`)
COMMENT \"OLAP\"
PARTITION BY RANGE(`dt`)
(PARTITION p202401 VALUES [(\"2024-01-01\"), (\"2024-02-01\")),
PARTITION p202402 VALUES [(\"2024-02-01\"), (\"2024-03-01\")),
PARTITION p202403 VALUES [(\"2024-03-01\"), (\"2024-04-01\")))
DISTRIBUTED BY HASH(`id`) BUCKETS 3
PROPERTIES (
\"replication_num\" = \"3\",
\"in_memory\" = \"false\"
);";

const CUSTOMERS: &str = "CREATE TABLE `shop`.`customers` (
  `id` int(11) NOT NULL COMMENT \"\",
  `name` varchar(100) NULL COMMENT \"\"
) ENGINE=OLAP
PRIMARY KEY(`id`)
DISTRIBUTED BY HASH(`id`) BUCKETS 2
PROPERTIES (
\"replication_num\" = \"3\"
);";

const AUDIT: &str = "CREATE TABLE `shop`.`audit_log` (
  `id` int(11) NOT NULL COMMENT \"\",
  `what` varchar(100) NULL COMMENT \"\"
) ENGINE=OLAP
DUPLICATE KEY(`id`)
DISTRIBUTED BY HASH(`id`) BUCKETS 1
PROPERTIES (\"replication_num\" = \"1\");";

pub struct Site {
    pub ws: Workspace,
    pub src: StarRocks,
    pub dst: StarRocks,
}

pub fn site(extra_conf: &str) -> Option<Site> {
    db::mysql_url_or_skip()?;
    let src = StarRocks::start("src", "root", SRC_PW);
    let dst = StarRocks::start("dst", "root", DST_PW);
    // The target FE is known by its Kubernetes name; hosts.properties maps it (manual: Network).
    dst.meta().fe_shown = Some(("fe-0.starrocks.svc.cluster.local".into(), 8030));
    src.sql(&format!(
        "CREATE DATABASE shop; CREATE DATABASE scratch; {ORDERS} {CUSTOMERS} {AUDIT}
         CREATE TABLE `scratch`.`tmp` (`id` int(11) NOT NULL COMMENT \"\") ENGINE=OLAP DUPLICATE KEY(`id`)
           DISTRIBUTED BY HASH(`id`) BUCKETS 1 PROPERTIES (\"replication_num\" = \"1\");
         INSERT INTO `scratch`.`tmp` VALUES (1);
         INSERT INTO `shop`.`audit_log` VALUES (1, 'login');
         INSERT INTO `shop`.`customers` VALUES (1, 'Ann'), (2, 'Bob \"the builder\"'), (3, NULL);"
    ));
    src.sql(
        "INSERT INTO `shop`.`orders` VALUES
           (1, '2024-01-03', 'Ann', 10.50, 'first\\tline\\nsecond', '2024-01-03 10:00:00'),
           (2, '2024-01-20', 'Bob', 99.99, NULL, '2024-01-20 23:59:59');
         INSERT INTO `shop`.`orders` VALUES
           (3, '2024-02-14', 'Ann', 5.00, 'caf\u{e9} \u{263a}', NULL),
           (4, '2024-02-28', NULL, NULL, 'back\\\\slash', '2024-02-28 00:00:01');",
    );
    let ws = Workspace::new();
    ws.write(
        "conf/sync.properties",
        &sync_properties(&src, &dst, extra_conf),
    );
    ws.write(
        "conf/hosts.properties",
        &format!(
            "# <SOURCE/TARGET>_<host>=<mappedHost>[;<srcPort>:<dstPort>[,<srcPort>:<dstPort>...]]\n\
             TARGET_fe-0.starrocks.svc.cluster.local=127.0.0.1;8030:{}\n",
            dst.http_port()
        ),
    );
    Some(Site { ws, src, dst })
}

impl Site {
    pub fn run(&self, extra: &[&str]) -> Output {
        self.run_with(self.ws.ferry(), extra)
    }

    /// `run` under `/usr/bin/time -v -o time_file` (figures: ferry's own peak RSS).
    pub fn run_timed(&self, extra: &[&str], time_file: &std::path::Path) -> Output {
        let mut f = self.ws.ferry();
        f.cmd = std::process::Command::new("/usr/bin/time");
        f.cmd
            .arg("-v")
            .arg("-o")
            .arg(time_file)
            .arg(env!("CARGO_BIN_EXE_ferry"))
            .env_remove("RUST_LOG")
            .env("FERRY_NO_BARS", "1")
            .stdin(std::process::Stdio::null())
            .current_dir(self.ws.path());
        self.run_with(f, extra)
    }

    fn run_with(&self, ferry: crate::common::Ferry, extra: &[&str]) -> Output {
        // FERRY_BENCH_SCRIPT: a starrocks-sync.lua on disk (with ferry/*.lua beside it, which
        // `require` finds before the bundled modules), to compare Lua versions on one binary.
        let script =
            std::env::var("FERRY_BENCH_SCRIPT").unwrap_or_else(|_| "starrocks-sync".into());
        let mut args: Vec<String> = vec![
            "run".into(),
            script,
            "--yes".into(),
            "--log-json".into(),
            "log.jsonl".into(),
            "-p".into(),
            format!("conf_dir={}", self.ws.join("conf").display()),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let out = ferry.args(args).run();
        // Every run: no password in stdout, stderr, --log-json, the state files or `ferry status`.
        if self.ws.join(".ferry/state").is_dir() {
            crate::common::secrets::assert_run_keeps_secrets(
                &[SRC_PW, DST_PW],
                &out,
                self.ws.path(),
                &self.ws.join("log.jsonl"),
                None,
            );
        } else {
            crate::common::secrets::assert_absent(
                &[SRC_PW, DST_PW],
                &[("stdout", &out.stdout), ("stderr", &out.stderr)],
                &[],
            );
        }
        out
    }

    pub fn assert_same(&self, dbname: &str, table: &str) {
        let a = self.src.rows(dbname, table);
        let b = self.dst.rows(dbname, table);
        assert!(!a.is_empty(), "{dbname}.{table} has rows on the source");
        assert_eq!(a, b, "{dbname}.{table} differs between source and target");
    }

    /// Labels of the Stream Loads the target saw with this status, whose label names the partition.
    pub fn loads_of(&self, part: &str, status: &str) -> Vec<String> {
        self.dst
            .loads()
            .into_iter()
            .filter(|l| l.label.contains(&format!("_{part}_v")) && l.status == status)
            .map(|l| l.label)
            .collect()
    }

    pub fn stop(self) {
        self.src.stop();
        self.dst.stop();
    }
}

/// A counter of a progress event in --log-json, as text; it must be a JSON number (fields keep
/// their Lua types, docs/cli.md "--log-json events").
pub fn field(event: &serde_json::Value, name: &str) -> String {
    let v = &event["fields"][name];
    assert!(v.is_number(), "{name} is not a JSON number in {event}");
    v.to_string()
}

pub fn progress_events(ws: &Workspace) -> Vec<serde_json::Value> {
    json_lines(&ws.join("log.jsonl"))
        .into_iter()
        .filter(|e| {
            e["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("Sync job progress: "))
                && e["fields"].is_object()
        })
        .collect()
}
