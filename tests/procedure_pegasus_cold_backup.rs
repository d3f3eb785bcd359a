//! pegasus-cold-backup against the Pegasus double (tests/doubles/pegasus/: the shell, admin-cli,
//! meta/replica HTTP endpoints and pegasus-spark's split as small Python programs keeping two
//! clusters' state in files, answering in the output formats of ../shared/reference/pegasus.md,
//! 2.3 to 2.6). Pegasus itself cannot run here.

use crate::pegasus::cold_backup;
use crate::pegasus::double;

use cold_backup::split_command;
use double::{RunFlags, Site, kill_when};
use serde_json::json;

#[test]
fn cold_backup_limits_the_upload_raises_it_and_restores() {
    let site = Site::new("2.5.0", 300, 8, true);
    // The site runs its servers at 120 MB/s (not Pegasus' default 200): that is what goes back.
    site.edit(|s| {
        s["clusters"]["ClusterA"]["config_defaults"] =
            json!({"hdfs_write_limit_rate_mb_per_sec": 120})
    });
    let restore_as_table_r = || site.cold_backup(&["target_table=TableR"]);
    restore_as_table_r()
        .run()
        .code(0)
        .stderr_has("limited by hdfs_write_limit_rate_mb_per_sec")
        .stderr_has("hdfs_write_limit_rate_mb_per_sec on 127.0.0.1:")
        .stderr_has("is 120 MB/s before the backup")
        .stderr_has("the upload phase began")
        .stderr_has("cold.backup.max.upload.file.size = 67108864")
        .stderr_has("completed after 1 attempt(s)")
        .stderr_has("restored TableA as TableR on ClusterB")
        .stderr_has("source_rows=300 target_rows=300");
    // 50 before the backup, raised in steps of 50 to rate_max while uploading, then the 120 each
    // server had before (read from /config?name=...), not Pegasus' default 200.
    let want: Vec<String> = ["50", "100", "150", "120"]
        .iter()
        .map(|r| format!("hdfs_write_limit_rate_mb_per_sec={r}"))
        .collect();
    assert_eq!(site.rate_history(), vec![want.clone(), want]);
    let b = site.backups();
    assert_eq!(b.len(), 1);
    let (id, info) = &b[0];
    assert_eq!(info["status"], "completed");
    assert!(site.backup_dir(id).join("backup_info").exists());
    assert_eq!(
        site.calls_with("restore"),
        vec![format!(
            "admin-cli: restore -c ClusterA -a TableA -i 2 -t {id} -b hdfs_xxx -r /user/pegasus/backup -n TableR"
        )]
    );
    let restored = site.app("ClusterB", "TableR");
    assert_eq!(restored["partition_count"], 8);
    assert_eq!(site.row_count("ClusterB", "TableR"), 300);
    assert_eq!(
        site.backups_started(),
        vec!["admin-cli: backup 2 hdfs_xxx /user/pegasus/backup"]
    );

    // Running it again finds every step done, and restore does not run twice.
    restore_as_table_r()
        .run()
        .code(0)
        .stderr_has("step restore: already done, skipping");
    assert_eq!(site.calls_with("restore").len(), 1);
    // Forced to restore again, it recognises the table it restored from this backup.
    restore_as_table_r()
        .starting_at("restore")
        .run()
        .code(0)
        .stderr_has("TableR already exists on ClusterB, restored from backup");
    assert_eq!(site.calls_with("restore").len(), 1);

    // A dry run of another migration changes nothing: no backup, no limit, no restore.
    let (calls, config_updates) = (site.calls().len(), site.http_config_updates());
    site.cold_backup(&["target_table=TableS"])
        .dry_run("dry")
        .run()
        .code(0)
        .stderr_has("dry run");
    assert!(site.calls()[calls..].iter().all(|c| !c.contains("backup 2")
        && !c.contains("restore")
        && !c.contains("remote_command")));
    assert!(site.app("ClusterB", "TableS").is_null());
    assert_eq!(site.http_config_updates(), config_updates);
}

#[test]
fn cold_backup_failed_backup_is_deleted_and_started_again_on_new_metrics() {
    // 2.6: replica-level /metrics, backup_file_upload_max_bytes.
    let site = Site::new("2.6.0-SNAPSHOT", 200, 8, true);
    site.fault("backup_fail", json!({"at_poll": 3}));
    site.cold_backup(&["method=backup_only"])
        .run()
        .code(0)
        .stderr_has("failed (attempt 1): query-backup-status says failed")
        .stderr_has("deleting the failed backup's directory: rm -rf")
        .stderr_has("backup_file_upload_max_bytes = 67108864")
        .stderr_has("completed after 2 attempt(s)")
        .stderr_has("attempts=2");
    let b = site.backups();
    assert_eq!(b.len(), 2);
    let failed = b.iter().find(|(_, v)| v["status"] == "failed").unwrap();
    let done = b.iter().find(|(_, v)| v["status"] == "completed").unwrap();
    assert!(
        !site.backup_dir(&failed.0).exists(),
        "the failed backup's directory is left"
    );
    assert!(site.backup_dir(&done.0).join("backup_info").exists());
    assert_eq!(site.backups_started().len(), 2);
    // Deleted only after the upload metric was back to 0 on every replica server.
    assert_eq!(failed.1["uploading"], 0);
    assert!(
        site.http_log()
            .iter()
            .any(|l| l.contains("/metrics?") && l.contains("backup_file_upload_max_bytes"))
    );
    assert!(site.calls_with("restore").is_empty());
}

#[test]
fn cold_backup_forgotten_or_stalled_backups_count_as_failed_and_retries_are_bounded() {
    let site = Site::new("2.5.0", 100, 4, true);
    // The meta forgets the first backup (failover), the second stops uploading, the third fails.
    site.fault("backup_lost", json!({"times": 1}));
    site.fault("backup_fail", json!({"at_poll": 3, "times": 5}));
    site.cold_backup(&["method=backup_only", "retries=1"])
        .run()
        .code(1)
        .stderr_has("the meta does not know the backup any more")
        .stderr_has("failed (attempt 2): query-backup-status says failed")
        .stderr_has("the backup of TableA failed 2 time(s)")
        .stderr_has("--from-step start-backup");
    let b = site.backups();
    assert_eq!(b.len(), 2);
    for (id, _) in &b {
        assert!(!site.backup_dir(id).exists(), "{id} left behind");
    }

    let stall = Site::new("2.5.0", 100, 4, true);
    stall.fault("backup_stall", json!({"times": 1}));
    stall
        .cold_backup(&["method=backup_only", "stall_timeout=0"])
        .run()
        .code(0)
        .stderr_has("looks failed: the upload metric dropped to 0 and stayed there")
        .stderr_has("the meta does not know the backup any more")
        .stderr_has("completed after 2 attempt(s)");
    assert_eq!(stall.backups().len(), 2);
}

#[test]
fn cold_backup_on_2_3_sets_the_nfs_limit_with_remote_command() {
    let site = Site::new("2.3.0", 50, 4, true);
    site.cold_backup(&["method=backup_only"])
        .run()
        .code(0)
        .stderr_has("has no HDFS upload limit")
        // 0 (unlimited) before; nfs_server_impl.cpp refuses values <= 0.
        .stderr_has("was 0 (unlimited) before the backup; remote_command cannot set that back, so it stays at 150");
    assert_eq!(
        site.calls_with("remote_command"),
        vec![
            "shell: remote_command -t replica-server nfs.max_send_rate_megabytes",
            "shell: remote_command -t replica-server nfs.max_send_rate_megabytes 50",
            "shell: remote_command -t replica-server nfs.max_send_rate_megabytes 100",
            "shell: remote_command -t replica-server nfs.max_send_rate_megabytes 150",
        ]
    );
    let nodes = site.node_configs("ClusterA");
    assert!(!nodes.is_empty());
    for config in nodes {
        assert_eq!(config["nfs.max_send_rate_megabytes"], 150);
    }
    assert_eq!(site.http_config_updates(), 0);

    // A limit the servers had (40 MB/s) is put back on each of them after the backup.
    let limited = Site::new("2.3.0", 50, 4, true);
    let http: serde_json::Value =
        serde_json::from_str(&limited.ws.read("state/http.json")).unwrap();
    let replicas: Vec<String> = http["ClusterA"]["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    limited.edit(|s| {
        for r in &replicas {
            s["clusters"]["ClusterA"]["node_config"][r] =
                json!({"nfs.max_send_rate_megabytes": 40});
        }
    });
    limited.cold_backup(&["method=backup_only"]).run().code(0);
    for r in &replicas {
        assert!(
            limited.calls().contains(&format!(
                "shell: remote_command -l {r} nfs.max_send_rate_megabytes 40"
            )),
            "{:?}",
            limited.calls()
        );
    }
    for config in limited.node_configs("ClusterA") {
        assert_eq!(config["nfs.max_send_rate_megabytes"], 40);
    }
}

#[test]
fn cold_backup_bulk_load_sets_and_restores_the_usage_scenario() {
    let site = Site::new("2.5.0", 250, 8, true);
    site.cold_backup_loading("bulk_load", &split_command(&site))
        .run()
        .code(0)
        .stderr_has("step wait-bulk-load: ok")
        .stderr_has("rocksdb.usage_scenario of TableB is normal again")
        .stderr_has("source_rows=250 target_rows=250");
    assert_eq!(site.row_count("ClusterB", "TableB"), 250);
    assert_eq!(
        site.app_env("ClusterB", "TableB", "rocksdb.usage_scenario"),
        Some(json!("normal"))
    );
    let info: serde_json::Value = serde_json::from_str(
        &site
            .ws
            .read("hdfs/user/pegasus/split/ClusterB/TableB/bulk_load_info"),
    )
    .unwrap();
    assert_eq!(
        info["app_id"], 3,
        "bulk_load_info must carry the TARGET's app id"
    );
    assert_eq!(info["partition_count"], 4);
    let shell_calls: Vec<String> = site
        .calls()
        .into_iter()
        .filter(|c| c.contains("usage_scenario") || c.contains("start_bulk_load"))
        .collect();
    assert_eq!(
        shell_calls,
        vec![
            "shell: set_app_envs rocksdb.usage_scenario bulk_load",
            "shell: start_bulk_load -a TableB -c ClusterB -p hdfs_xxx -r /user/pegasus/split",
            "shell: set_app_envs rocksdb.usage_scenario normal",
        ]
    );
}

#[test]
fn cold_backup_ingest_behind_needs_the_table_option_keeps_dual_writes_and_resumes() {
    let site = Site::new("2.5.0", 100, 8, true);
    // The application already dual-writes into TableB.
    site.edit_app("ClusterB", "TableB", |t| {
        t["rows"] = json!({"hk1:sk": "new", "hk100:sk": "only-new"})
    });
    let split = split_command(&site);
    let ingest_behind = || site.cold_backup_loading("ingest_behind", &split);
    ingest_behind()
        .run()
        .code(1)
        .stderr_has("TableB was not created with rocksdb.allow_ingest_behind=true")
        .stderr_has("create TableB -p 4 -e rocksdb.allow_ingest_behind=true");
    assert_eq!(site.backups_started().len(), 1);

    site.edit_app("ClusterB", "TableB", |t| {
        t["envs"]["rocksdb.allow_ingest_behind"] = json!("true")
    });
    // The bulk load fails once (rolled back too often); the re-run resumes from the failed step.
    site.fault("bulk_load_fail", json!("ERR_CORRUPTION"));
    ingest_behind()
        .run()
        .code(1)
        .stderr_has("step monitor-backup: already done, skipping")
        .stderr_has("bulk load of TableB FAILED: ERR_CORRUPTION")
        .stderr_has("clear_bulk_load -a TableB");
    ingest_behind()
        .starting_at("start-bulk-load")
        .run()
        .code(0)
        .stderr_has("step offline-split: already done, skipping");
    assert_eq!(site.backups_started().len(), 1, "backed up again");
    assert_eq!(
        site.calls_with("start_bulk_load"),
        vec![
            "shell: start_bulk_load -a TableB -c ClusterB -p hdfs_xxx -r /user/pegasus/split --ingest_behind";
            2
        ]
    );
    let b = site.app("ClusterB", "TableB");
    assert_eq!(
        b["rows"]["hk1:sk"], "new",
        "ingested data went above the newer write"
    );
    assert_eq!(b["rows"]["hk2:sk"], "v2");
    assert_eq!(b["rows"]["hk100:sk"], "only-new");
    assert_eq!(site.row_count("ClusterB", "TableB"), 101);
    assert_eq!(b["envs"]["rocksdb.usage_scenario"], "normal");
}

#[test]
fn killed_cold_backup_resumes_watching_the_same_backup() {
    let site = Site::new("2.5.0", 100, 4, true);
    let slow_backup = || site.cold_backup(&["method=backup_only", "poll_interval=0.4"]);
    kill_when(slow_backup(), || {
        site.calls_with("query-backup-status").len() >= 2
    });
    assert_eq!(site.backups()[0].1["status"], "in progress");

    slow_backup()
        .run()
        .code(0)
        .stderr_has("step start-backup: already done, skipping")
        .stderr_has("completed after 1 attempt(s)");
    assert_eq!(site.backups_started().len(), 1);
    assert_eq!(site.backups().len(), 1);
}
