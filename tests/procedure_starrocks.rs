//! starrocks-sync between two StarRocks cluster doubles (tests/starrocks/double.rs: a
//! MySQL-protocol FE front and Stream Load endpoints over a real MariaDB), since StarRocks cannot
//! run here. Every test reads the rows that landed in the target's MariaDB and ferry's output.

mod common;

#[path = "starrocks/double.rs"]
mod double;
#[path = "starrocks/site.rs"]
mod site;

use std::time::{Duration, Instant};

use common::db;
use double::{LoadFault, StarRocks};
use site::{DST_PW, SRC_PW, field, progress_events, site};

#[test]
fn full_sync_prepares_the_target_copies_every_table_and_verifies() {
    let Some(s) = site("jdbc_socket_timeout_ms=120000\nsome_future_key=1\n") else {
        return;
    };
    let out = s.run(&[]);
    out.code(0);
    // Preparation: the FE setting was recorded, set, and the fe.conf reminder given.
    assert_eq!(
        s.dst.config("enable_legacy_compatibility_for_replication"),
        "true"
    );
    out.stderr_has("recorded target FE enable_legacy_compatibility_for_replication=false")
        .stderr_has("enable_legacy_compatibility_for_replication = true` to fe.conf");
    // Unsupported and unknown keys are named.
    out.stderr_has("jdbc_socket_timeout_ms=120000 is not supported by ferry")
        .stderr_has("unknown key some_future_key");
    // DDL from SHOW CREATE TABLE, data equal, excluded objects absent.
    assert!(
        s.dst
            .show_create("shop", "orders")
            .contains("PARTITION p202403")
    );
    s.assert_same("shop", "orders");
    s.assert_same("shop", "customers");
    assert!(
        !s.dst.has_table("shop", "audit_log"),
        "shop.audit_log is excluded"
    );
    assert!(!s.dst.has_table("scratch", "tmp"), "scratch is excluded");
    // The empty partition p202403 (never loaded) needed no load; no staging table is left.
    assert!(s.loads_of("p202403", "Success").is_empty());
    assert_eq!(s.loads_of("p202401", "Success").len(), 1);
    assert_eq!(s.dst.tables("shop").len(), 2, "{:?}", s.dst.tables("shop"));
    // Progress in the tool's words, as lines and as --log-json fields.
    out.stderr_has("Sync job progress: 100.00% ")
        .stderr_has("failed=0 finished=3 jobPending=0 running=0 sent=0 total=3 unknown=0")
        .stderr_has("Sync table progress: 100.00% expiredTableRatio=0.00% expired_table=0 finishedTableRatio=100.00% finished_table=2 total_table=2 unfinished_table=0");
    let ev = progress_events(&s.ws);
    let last = ev.last().expect("a progress event in --log-json");
    assert_eq!(field(last, "finished"), "3", "{last}");
    assert_eq!(field(last, "jobPending"), "0", "{last}");
    assert_eq!(field(last, "ddlPending"), "0", "{last}");
    out.stderr_has("verify: 2 tables with equal row counts, 0 differ");

    // Nothing moved: a second run copies nothing and sets nothing.
    let before = s.dst.loads().len();
    let again = s.run(&[]);
    again
        .code(0)
        .stderr_has("Sync job progress: 100.00% ddlPending=0 failed=0 finished=0 jobPending=0 running=0 sent=0 total=0");
    assert_eq!(
        s.dst.loads().len(),
        before,
        "no Stream Load when nothing moved"
    );
    s.stop();
}

#[test]
fn incremental_sync_copies_only_the_partitions_that_moved() {
    let Some(s) = site("") else { return };
    s.run(&[]).code(0);
    let v = s.src.version("shop", "orders", "p202402");
    s.src.sql(
        "INSERT INTO `shop`.`orders` VALUES (5, '2024-02-15', 'Cid', 1.25, 'new', '2024-02-15 08:00:00');",
    );
    assert_eq!(s.src.version("shop", "orders", "p202402"), v + 1);
    // Loop mode, two rounds a second apart (the second finds nothing to do).
    let out = s.run(&[
        "-p",
        "one_time_run_mode=false",
        "-p",
        "rounds=2",
        "-p",
        "replication_job_interval_seconds=1",
    ]);
    out.code(0);
    s.assert_same("shop", "orders");
    assert_eq!(s.dst.count("shop", "orders"), 5);
    assert_eq!(
        s.loads_of("p202402", "Success").len(),
        2,
        "p202402 loaded again"
    );
    assert_eq!(
        s.loads_of("p202401", "Success").len(),
        1,
        "p202401 did not move"
    );
    assert_eq!(
        s.loads_of("customers", "Success").len(),
        1,
        "customers did not move"
    );
    let totals: Vec<String> = progress_events(&s.ws)
        .iter()
        .map(|e| field(e, "total"))
        .collect();
    assert_eq!(
        totals,
        ["1", "0"],
        "round 1 copies p202402, round 2 finds nothing"
    );
    s.stop();
}

#[test]
fn a_failed_stream_load_is_retried_under_the_same_label() {
    let Some(s) = site("") else { return };
    // First load: Fail (label stays free); second: committed but the answer is lost, so ferry's
    // retry meets "Label Already Exists" for a FINISHED load and must not load twice.
    s.dst
        .fault_loads("shop", &[LoadFault::Fail, LoadFault::CommitThenDrop]);
    let out = s.run(&["-p", "replication_job_batch_size=1"]);
    out.code(0);
    let loads = s.dst.loads();
    let first = &loads[0];
    assert_eq!(first.status, "Fail");
    let same: Vec<_> = loads.iter().filter(|l| l.label == first.label).collect();
    let statuses: Vec<&str> = same.iter().map(|l| l.status.as_str()).collect();
    assert_eq!(
        statuses,
        ["Fail", "Success", "Label Already Exists"],
        "{loads:?}"
    );
    out.stderr_has("Stream Load attempt 1/3 failed: Fail");
    s.assert_same("shop", "orders");
    s.assert_same("shop", "customers");

    // Every attempt fails: the run fails naming the partition, the target keeps the old rows.
    s.src
        .sql("INSERT INTO `shop`.`orders` VALUES (6, '2024-01-09', 'Dan', 2.00, NULL, NULL);");
    s.dst
        .fault_loads("shop", &[LoadFault::Fail, LoadFault::Fail]);
    let failed = s.run(&["-p", "load_retries=2"]);
    failed
        .code(1)
        .stderr_has("shop.orders/p202401")
        .stderr_has("run the same command again");
    assert_eq!(
        s.dst.count("shop", "orders"),
        4,
        "p202401 is not half-loaded"
    );
    // Its staging table stays for the retry (same stage, same label); the next run clears it.
    let tables = s.dst.tables("shop");
    assert_eq!(tables.len(), 3, "{tables:?}");
    assert!(
        tables.iter().any(|t| t.starts_with("_ferry_stage_")),
        "{tables:?}"
    );
    s.run(&[]).code(0);
    s.assert_same("shop", "orders");
    assert_eq!(s.dst.tables("shop").len(), 2, "{:?}", s.dst.tables("shop"));
    s.stop();
}

#[test]
fn a_schema_change_on_the_source_recreates_the_target_table() {
    let Some(s) = site("") else { return };
    s.run(&[]).code(0);
    s.src.sql(
        "ALTER TABLE `shop`.`customers` ADD COLUMN `tier` int(11) NULL COMMENT \"\";
         UPDATE `shop`.`customers` SET `tier` = 2 WHERE `id` = 1;",
    );
    // With ddl_job_allow_drop_schema_change_table=false the table is left alone (and said so).
    let kept = s.run(&["-p", "ddl_job_allow_drop_schema_change_table=false"]);
    kept.code(0)
        .stderr_has("shop.customers: schema differs on the target");
    assert!(!s.dst.show_create("shop", "customers").contains("tier"));
    let out = s.run(&[]);
    out.code(0)
        .stderr_has("drop table shop.customers (schema differs");
    assert!(
        s.dst
            .show_create("shop", "customers")
            .contains("`tier` int(11)")
    );
    s.assert_same("shop", "customers");
    assert!(
        s.dst
            .rows("shop", "customers")
            .iter()
            .any(|r| r == &["1", "Ann", "2"])
    );
    s.assert_same("shop", "orders");
    // A new month on the source: the partition is added on the target and copied.
    s.src.sql(
        "ALTER TABLE `shop`.`orders` ADD PARTITION p202404 VALUES [(\"2024-04-01\"), (\"2024-05-01\"));
         INSERT INTO `shop`.`orders` VALUES (7, '2024-04-02', 'Eve', 3.00, NULL, NULL);",
    );
    s.run(&[])
        .code(0)
        .stderr_has("add partition p202404 to shop.orders");
    s.assert_same("shop", "orders");
    s.stop();
}

#[test]
fn include_and_exclude_lists_choose_what_is_synced() {
    let Some(s) = site("") else { return };
    s.src.sql(
        "CREATE TABLE `scratch`.`keep` (`id` int(11) NOT NULL COMMENT \"\") ENGINE=OLAP DUPLICATE KEY(`id`)
           DISTRIBUTED BY HASH(`id`) BUCKETS 1 PROPERTIES (\"replication_num\" = \"1\");
         INSERT INTO `scratch`.`keep` VALUES (7), (8);",
    );
    // include first (shop and scratch.keep), then exclude (shop.orders).
    let out = s.run(&[
        "-p",
        "include_data_list=shop,scratch.keep",
        "-p",
        "exclude_data_list=shop.orders",
    ]);
    out.code(0);
    s.assert_same("scratch", "keep");
    s.assert_same("shop", "customers");
    s.assert_same("shop", "audit_log");
    assert!(!s.dst.has_table("shop", "orders"));
    assert!(!s.dst.has_table("scratch", "tmp"));
    out.stderr_has("total_table=3");
    s.stop();
}

#[test]
fn an_interrupted_run_resumes_without_duplicates() {
    let Some(s) = site("") else { return };
    // The first load into shop commits, then its answer hangs; ferry is killed meanwhile.
    s.dst.fault_loads(
        "shop",
        &[LoadFault::CommitThenHang(Duration::from_secs(60))],
    );
    let mut f = s.ws.ferry().args([
        "run".to_string(),
        "starrocks-sync".into(),
        "--yes".into(),
        "-p".into(),
        format!("conf_dir={}", s.ws.join("conf").display()),
        "-p".into(),
        "replication_job_batch_size=1".into(),
    ]);
    f.cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = f.cmd.spawn().expect("ferry starts");
    let start = Instant::now();
    while s.dst.loads().is_empty() {
        assert!(start.elapsed() < Duration::from_secs(60), "no load seen");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    child.kill().expect("kill ferry");
    let _ = child.wait();
    let hung = s.dst.loads()[0].clone();
    assert_eq!(hung.status, "Success");

    let out = s.run(&["-p", "replication_job_batch_size=1"]);
    out.code(0);
    s.assert_same("shop", "orders");
    s.assert_same("shop", "customers");
    // The resumed job reused the killed attempt's label and stage: no second load of those rows.
    let again: Vec<_> = s
        .dst
        .loads()
        .into_iter()
        .filter(|l| l.label == hung.label)
        .map(|l| l.status)
        .collect();
    assert_eq!(again, ["Success", "Label Already Exists"]);
    assert_eq!(s.dst.tables("shop").len(), 2, "no staging table left");
    s.stop();
}

#[test]
fn cutover_confirms_a_last_sync_and_restores_the_fe_settings() {
    let Some(s) = site("") else { return };
    // Without --yes and without a terminal, the first confirm stops the run (exit 3).
    let refused =
        s.ws.ferry()
            .args([
                "run".to_string(),
                "starrocks-sync".into(),
                "-p".into(),
                format!("conf_dir={}", s.ws.join("conf").display()),
            ])
            .run();
    refused.code(3);
    assert_eq!(
        s.dst.config("enable_legacy_compatibility_for_replication"),
        "false"
    );
    s.run(&[]).code(0);
    assert_eq!(
        s.dst.config("enable_legacy_compatibility_for_replication"),
        "true"
    );
    s.src
        .sql("INSERT INTO `shop`.`customers` VALUES (4, 'Dee');");
    let out = s.run(&["-p", "cutover=true"]);
    out.code(0)
        .stderr_has("confirmed by --yes: Writes to the source cluster are stopped")
        .stderr_has("Sync job progress: 100.00% after writes stopped")
        .stderr_has("confirmed by --yes: The last sync reached 100% and 2 tables have equal row counts")
        .stderr_has("confirmed by --yes: Restore on the target FE: enable_legacy_compatibility_for_replication=false?")
        .stderr_has("restored target FE enable_legacy_compatibility_for_replication=false");
    s.assert_same("shop", "customers");
    assert_eq!(
        s.dst.config("enable_legacy_compatibility_for_replication"),
        "false"
    );
    let sets = s.dst.meta().config_sets.clone();
    assert_eq!(
        sets,
        [
            (
                "enable_legacy_compatibility_for_replication".to_string(),
                "true".to_string()
            ),
            (
                "enable_legacy_compatibility_for_replication".to_string(),
                "false".to_string()
            )
        ]
    );
    s.stop();
}

#[test]
fn views_are_synced_when_enabled() {
    let Some(s) = site("") else { return };
    s.src.sql(
        "CREATE VIEW `shop`.`big_orders` AS SELECT `id`, `amount` FROM `shop`.`orders` WHERE `amount` > 6;",
    );
    // enable_view_sync=false (the default) leaves views alone.
    s.run(&[]).code(0);
    assert!(
        !s.dst
            .meta()
            .views
            .contains_key(&("shop".into(), "big_orders".into()))
    );
    let out = s.run(&["-p", "enable_view_sync=true"]);
    out.code(0).stderr_has("create view shop.big_orders");
    let q = "SELECT `id` FROM `shop`.`big_orders` ORDER BY `id`;";
    assert_eq!(s.dst.sql(q), s.src.sql(q));
    assert_eq!(s.dst.sql(q), "1\n2\n");
    // A changed view is dropped and created again (ddl_job_allow_drop_inconsistent_view=true).
    s.src.sql(
        "DROP VIEW `shop`.`big_orders`;
         CREATE VIEW `shop`.`big_orders` AS SELECT `id`, `amount` FROM `shop`.`orders` WHERE `amount` > 50;",
    );
    s.run(&["-p", "enable_view_sync=true"])
        .code(0)
        .stderr_has("drop inconsistent view shop.big_orders");
    assert_eq!(s.dst.sql(q), "2\n");
    s.stop();
}

#[test]
fn a_dry_run_reads_both_clusters_and_changes_nothing() {
    let Some(s) = site("") else { return };
    let out = s.run(&["--dry-run"]);
    out.code(0)
        .stderr_has("recorded target FE enable_legacy_compatibility_for_replication=false")
        .stderr_has("would execute on mysql://root@127.0.0.1")
        .stderr_has(": ADMIN SET FRONTEND CONFIG (\"enable_legacy_compatibility_for_replication\" = \"true\")")
        .stderr_has("would copy shop.orders/p202401 (source version 2)")
        .stderr_has("would copy shop.customers/customers");
    assert_eq!(
        s.dst.config("enable_legacy_compatibility_for_replication"),
        "false"
    );
    assert!(s.dst.tables("shop").is_empty());
    assert!(s.dst.loads().is_empty());
    s.stop();
}

#[test]
fn a_shared_data_target_has_compaction_off_until_cutover() {
    let Some(s) = site("") else { return };
    if let Some(item) = s.dst.meta().config.get_mut("run_mode") {
        item.value = "shared_data".into();
    }
    let out = s.run(&[]);
    out.code(0)
        .stderr_has("add `lake_compaction_max_tasks = 0` to fe.conf");
    assert_eq!(s.dst.config("lake_compaction_max_tasks"), "0");
    assert_eq!(
        s.dst.config("enable_legacy_compatibility_for_replication"),
        "true"
    );
    s.run(&["-p", "cutover=true"]).code(0);
    assert_eq!(s.dst.config("lake_compaction_max_tasks"), "-1");
    assert_eq!(
        s.dst.config("enable_legacy_compatibility_for_replication"),
        "false"
    );
    s.stop();
}

#[test]
fn a_target_be_over_the_disk_limit_stops_the_sync() {
    let Some(s) = site("") else { return };
    s.dst.meta().max_disk_used_pct = 91.0;
    s.run(&[])
        .code(1)
        .stderr_has("disk usage 91.00% exceeds target_cluster_max_disk_used_percent=80");
    assert!(s.dst.loads().is_empty());
    s.run(&["-p", "target_cluster_max_disk_used_percent=95"])
        .code(0);
    s.assert_same("shop", "orders");
    s.stop();
}

/// Figures, not a check of behaviour: `bench/starrocks/run.sh` runs it (release build).
#[test]
#[ignore = "figures, not a check: bench/starrocks/run.sh runs it"]
fn figures_full_and_incremental_sync_of_300k_rows() {
    let Some(s) = site("") else { return };
    let t = Instant::now();
    s.src.sql(
        "INSERT INTO `shop`.`orders` SELECT seq + 100, DATE_ADD('2024-01-01', INTERVAL seq % 90 DAY),
           CONCAT('customer ', seq % 1000), (seq % 10000) / 100, REPEAT('x', seq % 50),
           DATE_ADD('2024-01-01 00:00:00', INTERVAL seq SECOND) FROM `shop`.`seq_1_to_300000`;",
    );
    eprintln!("source load: {:?}", t.elapsed());
    let t = Instant::now();
    let out = s.run(&["-v"]);
    out.code(0);
    let full = t.elapsed();
    for l in out
        .stderr
        .lines()
        .filter(|l| l.contains("overwrite") || l.contains("copied"))
    {
        eprintln!("{l}");
    }
    s.assert_same("shop", "orders");
    s.src
        .sql("INSERT INTO `shop`.`orders` VALUES (9, '2024-03-05', 'Zed', 1.00, NULL, NULL);");
    let t = Instant::now();
    s.run(&[]).code(0);
    let incr = t.elapsed();
    s.assert_same("shop", "orders");
    eprintln!(
        "full sync of {} rows: {full:?}; incremental (one partition, ~100k rows): {incr:?}",
        s.dst.count("shop", "orders")
    );
    s.stop();
}

#[test]
fn progress_is_reported_every_report_interval_seconds_during_a_round() {
    let Some(s) = site("") else { return };
    // The first load's answer takes 2.5 s; with report_interval_seconds=1 the counters are
    // printed meanwhile, showing the Stream Load in flight.
    s.dst.fault_loads(
        "shop",
        &[LoadFault::CommitThenHang(Duration::from_millis(2500))],
    );
    let out = s.run(&[
        "-p",
        "report_interval_seconds=1",
        "-p",
        "replication_job_batch_size=1",
    ]);
    out.code(0);
    let events = progress_events(&s.ws);
    assert!(events.len() >= 2, "{events:?}");
    assert!(
        events
            .iter()
            .any(|e| field(e, "sent") == "1" && field(e, "running") == "1"),
        "{events:?}"
    );
    let last = events.last().expect("final report");
    assert_eq!(field(last, "finished"), "3");
    s.assert_same("shop", "orders");
    s.stop();
}

#[test]
fn verify_names_the_partitions_that_differ_and_the_cutover_refuses_them() {
    let Some(s) = site("") else { return };
    s.run(&[]).code(0);
    // Someone loads into the target behind the sync's back (the manual says not to).
    s.dst.sql(
        "INSERT INTO `shop`.`orders` VALUES (50, '2024-01-05', 'Intruder', 1.00, NULL, NULL);",
    );
    s.run(&[])
        .code(0)
        .stderr_has("shop.orders: source 4 rows, target 5 (partitions source/target: p202401 2/3)");
    s.run(&["-p", "cutover=true"])
        .code(1)
        .stderr_has("1 table(s) differ after the last sync");
    assert_eq!(
        s.dst.config("enable_legacy_compatibility_for_replication"),
        "true",
        "settings are restored only after a clean verify"
    );
    s.run(&["-p", "recopy=shop.orders"])
        .code(0)
        .stderr_has("shop.orders: every partition is copied again (recopy)");
    s.assert_same("shop", "orders");
    assert_eq!(s.dst.count("shop", "orders"), 4);
    s.stop();
}

#[test]
fn a_state_dir_serves_one_pair_of_clusters() {
    let Some(s) = site("") else { return };
    s.run(&[]).code(0);
    let other = StarRocks::start("other", "root", DST_PW);
    let port = format!("target_fe_query_port={}", other.query_port());
    s.run(&["-p", &port])
        .code(2)
        .stderr_has("belongs to the sync 127.0.0.1:")
        .stderr_has("give each pair of clusters its own --state DIR");
    assert!(other.tables("shop").is_empty());
    let state = s.ws.join("other-state");
    let state = state.to_string_lossy();
    s.run(&["-p", &port, "--state", &state]).code(0);
    assert_eq!(other.rows("shop", "orders"), s.src.rows("shop", "orders"));
    other.stop();
    s.stop();
}

#[test]
fn encrypted_passwords_with_a_secret_key_are_decrypted() {
    let Some(s) = site("") else { return };
    // The manual: SELECT TO_BASE64(AES_ENCRYPT('<password>','<secret key>')); MariaDB's
    // AES_ENCRYPT is the same AES-128-ECB as StarRocks'.
    let server = db::mysql_url().expect("server");
    let enc = |pw: &str, key: &str| {
        db::mysql_exec(
            &server,
            &format!("SELECT TO_BASE64(AES_ENCRYPT('{pw}', '{key}'));"),
        )
        .trim()
        .to_string()
    };
    let conf =
        s.ws.read("conf/sync.properties")
            .replace(
                &format!("source_cluster_password={SRC_PW}\n"),
                &format!(
                    "source_cluster_password={}\n",
                    enc(SRC_PW, "F3229A0B371ED2D9441B830D21A390C3")
                ),
            )
            .replace(
                "source_cluster_password_secret_key=\n",
                "source_cluster_password_secret_key=F3229A0B371ED2D9441B830D21A390C3\n",
            )
            .replace(
                &format!("target_cluster_password={DST_PW}\n"),
                &format!("target_cluster_password={}\n", enc(DST_PW, "short")),
            )
            .replace(
                "target_cluster_password_secret_key=\n",
                "target_cluster_password_secret_key=short\n",
            );
    s.ws.write("conf/sync.properties", &conf);
    s.run(&[]).code(0);
    s.assert_same("shop", "orders");
    // A wrong password says which cluster and what to check, and leaks nothing.
    let denied = s.run(&[
        "-p",
        "source_cluster_password=not-it",
        "-p",
        "source_cluster_password_secret_key=",
    ]);
    denied
        .code(1)
        .stderr_has("cannot log in to the source cluster's FE query port 127.0.0.1:")
        .stderr_has("check source_fe_host, source_fe_query_port and the user/password");
    assert!(!denied.stderr.contains("not-it"), "{}", denied.stderr);
    let wrong = s.run(&["-p", "target_cluster_password_secret_key=other"]);
    wrong.code(2).stderr_has(
        "target_cluster_password does not decrypt with target_cluster_password_secret_key",
    );
    s.stop();
}

#[test]
fn materialized_views_are_created_from_their_definition_when_enabled() {
    let Some(s) = site("") else { return };
    let mv = |filter: &str| {
        format!(
            "CREATE MATERIALIZED VIEW `shop`.`daily` DISTRIBUTED BY HASH(`dt`) REFRESH ASYNC
             PROPERTIES (\"replication_num\" = \"3\")
             AS SELECT `dt`, SUM(`amount`) AS total FROM `shop`.`orders` {filter} GROUP BY `dt`;"
        )
    };
    s.src.sql(&mv(""));
    let key = ("shop".to_string(), "daily".to_string());
    // Not synced by default, and never taken for a table or a logical view.
    s.run(&["-p", "enable_view_sync=true"]).code(0);
    assert!(!s.dst.meta().mvs.contains_key(&key));
    assert!(!s.dst.meta().views.contains_key(&key));
    assert!(s.dst.loads().iter().all(|l| !l.label.contains("daily")));
    s.run(&[
        "-p",
        "enable_materialized_view_sync=true",
        "-p",
        "target_cluster_replication_num=1",
    ])
    .code(0)
    .stderr_has("create materialized view shop.daily");
    let text = s.dst.meta().mvs.get(&key).cloned().unwrap_or_default();
    assert!(text.contains("REFRESH ASYNC"), "{text}");
    assert!(text.contains("\"replication_num\" = \"1\""), "{text}");
    // The replication_num rewrite alone is no difference.
    s.run(&["-p", "enable_materialized_view_sync=true"])
        .code(0)
        .stderr_lacks("materialized view shop.daily");
    // Changed on the source: dropped and created again.
    s.src.sql(&format!(
        "DROP MATERIALIZED VIEW `shop`.`daily`; {}",
        mv("WHERE `amount` > 1")
    ));
    s.run(&["-p", "enable_materialized_view_sync=true"])
        .code(0)
        .stderr_has("drop inconsistent materialized view shop.daily");
    let text = s.dst.meta().mvs.get(&key).cloned().unwrap_or_default();
    assert!(text.contains("WHERE `amount` > 1"), "{text}");
    s.stop();
}

#[test]
fn a_loop_survives_a_failed_round() {
    let Some(s) = site("") else { return };
    // The DDL re-read of round 2 fails (the source FE answers an error once); round 3 goes on.
    s.src.meta().fail_once.push((
        "SHOW DATABASES".into(),
        1,
        "Frontend is restarting (injected by the double)".into(),
    ));
    let out = s.run(&[
        "-p",
        "one_time_run_mode=false",
        "-p",
        "rounds=3",
        "-p",
        "replication_job_interval_seconds=0",
        "-p",
        "meta_job_interval_seconds=0",
    ]);
    out.code(0)
        .stderr_has("round 2 failed: ")
        .stderr_has("Frontend is restarting (injected by the double)");
    s.assert_same("shop", "orders");
    s.assert_same("shop", "customers");
    s.stop();
}

#[test]
fn table_properties_follow_the_source_when_enabled() {
    let Some(s) = site("") else { return };
    s.run(&["-p", "target_cluster_replication_num=1"]).code(0);
    assert!(
        s.dst
            .show_create("shop", "orders")
            .contains("\"replication_num\" = \"1\"")
    );
    s.src
        .sql("ALTER TABLE `shop`.`orders` SET (\"in_memory\" = \"true\");");
    // Off (the default): the target keeps its properties.
    s.run(&["-p", "target_cluster_replication_num=1"])
        .code(0)
        .stderr_lacks("set property");
    assert!(
        s.dst
            .show_create("shop", "orders")
            .contains("\"in_memory\" = \"false\"")
    );
    // On: the changed property follows; replication_num stays what the target setting says.
    s.run(&[
        "-p",
        "target_cluster_replication_num=1",
        "-p",
        "enable_table_property_sync=true",
    ])
    .code(0)
    .stderr_has("set property in_memory=true on shop.orders");
    let ddl = s.dst.show_create("shop", "orders");
    assert!(ddl.contains("\"in_memory\" = \"true\""), "{ddl}");
    assert!(ddl.contains("\"replication_num\" = \"1\""), "{ddl}");
    s.stop();
}

#[test]
fn ddl_settings_shape_the_target_tables() {
    let Some(s) = site("") else { return };
    s.src.sql(
        "CREATE TABLE `shop`.`events` (
           `id` int(11) NOT NULL COMMENT \"\",
           `kind` varchar(20) NULL COMMENT \"\",
           INDEX idx_kind (`kind`) USING BITMAP COMMENT 'bitmap'
         ) ENGINE=OLAP DUPLICATE KEY(`id`) DISTRIBUTED BY HASH(`id`) BUCKETS 1
         PROPERTIES (\"replication_num\" = \"3\");
         INSERT INTO `shop`.`events` VALUES (1, 'click'), (2, 'view');",
    );
    s.dst.sql(
        "CREATE DATABASE shop;
         CREATE TABLE `shop`.`old_stuff` (`id` int(11) NOT NULL COMMENT \"\") ENGINE=OLAP
           DUPLICATE KEY(`id`) DISTRIBUTED BY HASH(`id`) BUCKETS 1 PROPERTIES (\"replication_num\" = \"1\");",
    );
    let out = s.run(&[
        "-p",
        "ddl_job_allow_drop_target_only=true",
        "-p",
        "target_cluster_storage_volume=vol1",
        "-p",
        "target_cluster_enable_persistent_index=true",
    ]);
    out.code(0)
        .stderr_has("drop table shop.old_stuff (only on the target)");
    assert!(!s.dst.has_table("shop", "old_stuff"));
    let events = s.dst.show_create("shop", "events");
    assert!(!events.contains("USING BITMAP"), "{events}");
    assert!(events.contains("\"storage_volume\" = \"vol1\""), "{events}");
    assert!(
        events.contains("\"enable_persistent_index\" = \"true\""),
        "{events}"
    );
    s.assert_same("shop", "events");
    // A partition dropped on the source is dropped on the target.
    s.src
        .sql("ALTER TABLE `shop`.`orders` DROP PARTITION p202401;");
    s.run(&[])
        .code(0)
        .stderr_has("drop partition p202401 of shop.orders (dropped on the source)");
    assert!(!s.dst.show_create("shop", "orders").contains("p202401"));
    s.assert_same("shop", "orders");
    // Bitmap index sync on: the index is part of the schema, so the table is made again with it.
    s.run(&["-p", "enable_bitmap_index_sync=true"])
        .code(0)
        .stderr_has("drop table shop.events (schema differs");
    assert!(s.dst.show_create("shop", "events").contains("USING BITMAP"));
    s.assert_same("shop", "events");
    s.stop();
}

#[test]
fn the_loop_follows_new_loads_until_interrupted() {
    let Some(s) = site("") else { return };
    let mut f = s.ws.ferry().args([
        "run".to_string(),
        "starrocks-sync".into(),
        "--yes".into(),
        "-p".into(),
        format!("conf_dir={}", s.ws.join("conf").display()),
        "-p".into(),
        "one_time_run_mode=false".into(),
        "-p".into(),
        "replication_job_interval_seconds=1".into(),
    ]);
    f.cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let child = f.cmd.spawn().expect("ferry starts");
    let wait_for = |what: &str, cond: &dyn Fn() -> bool| {
        let start = Instant::now();
        while !cond() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "timed out: {what}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait_for("the first round", &|| {
        s.dst.try_count("shop", "orders") == Some(4)
    });
    // A load on the source while the loop runs reaches the target without a restart.
    s.src
        .sql("INSERT INTO `shop`.`orders` VALUES (8, '2024-03-09', 'Fay', 4.00, NULL, NULL);");
    wait_for("the new row", &|| {
        s.dst.try_count("shop", "orders") == Some(5)
    });
    // Ctrl-C stops it: exit 130, and the run says how to resume.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let out = child.wait_with_output().expect("ferry exits");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("interrupted (Ctrl-C)")
            && stderr.contains("resume with: ferry run starrocks-sync"),
        "{stderr}"
    );
    s.assert_same("shop", "orders");
    assert_eq!(s.loads_of("p202403", "Success").len(), 1);
    s.stop();
}

#[test]
fn a_partition_too_big_for_one_stream_load_is_warned_about() {
    let Some(s) = site("") else { return };
    s.src.meta().data_size_shown = Some("12.500 GB".into());
    s.run(&[]).code(0).stderr_has(
        "shop.orders/p202401 holds 12.5 GB: ferry copies a partition as one Stream Load",
    );
    s.stop();
}
