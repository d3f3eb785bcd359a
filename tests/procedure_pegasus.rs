//! pegasus-copy-data, pegasus-cold-backup and pegasus-online-migration against the Pegasus double
//! (tests/doubles/pegasus/: the shell, admin-cli, meta/replica HTTP endpoints and pegasus-spark's
//! split as small Python programs keeping two clusters' state in files, answering in the output
//! formats of ../shared/reference/pegasus.md, 2.3 to 2.6). Pegasus itself cannot run here.

mod common;
#[path = "pegasus/double.rs"]
mod double;

use double::Site;
use serde_json::json;

fn copy_params(site: &Site, extra: &[&str]) -> Vec<String> {
    let mut v = vec![
        format!("shell={}", site.shell("ClusterA")),
        "source_cluster=ClusterA".into(),
        "source_table=TableA".into(),
        "target_cluster=ClusterB".into(),
        "target_table=TableB".into(),
    ];
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

// ---------------------------------------------------------------------------------------------
// pegasus-copy-data
// ---------------------------------------------------------------------------------------------

#[test]
fn copy_data_copies_with_short_flags_relays_progress_and_counts_both_tables() {
    let site = Site::new("2.5.0", 450, 8, true);
    let out = site
        .ferry(
            "pegasus-copy-data",
            &copy_params(&site, &["scan_batch_size=50", "max_batch_count=100"]),
        )
        .env("PEGASUS_DOUBLE_TICK", "0.3")
        .args(["--yes"])
        .run();
    out.code(0)
        .stderr_has("TableA has 8 partitions, TableB has 4")
        .stderr_has("/8 splits")
        .stderr_has("copy_data done: 450 rows")
        .stderr_has("ClusterA.TableA: 450 rows; ClusterB.TableB: 450 rows")
        .stderr_has("source_rows=450 target_rows=450");
    // The shell's once-a-second lines became ferry progress lines while it ran.
    let relayed = out
        .stderr
        .lines()
        .filter(|l| l.contains("copy_data TableA -> ClusterB.TableB: "))
        .count();
    assert!(relayed >= 3, "{relayed} progress lines:\n{}", out.stderr);
    assert_eq!(site.row_count("ClusterB", "TableB"), 450);
    assert_eq!(site.app("ClusterB", "TableB")["rows"]["hk7:sk"], "v7");
    // Short flags only: the long forms of -o and -u do not parse [reference §2.1].
    assert_eq!(
        site.calls_with("copy_data"),
        vec!["shell: copy_data -c ClusterB -a TableB -t 10000 -b 100 -o 50"]
    );
    // 2.5 counts precisely only with -c.
    assert_eq!(site.calls_with("count_data").len(), 2);
    assert!(
        site.calls_with("count_data")
            .iter()
            .all(|c| c.ends_with("-c"))
    );

    // A dry run copies nothing.
    let out = site
        .ferry(
            "pegasus-copy-data",
            &copy_params(&site, &["target_table=TableZ"]),
        )
        .args(["--dry-run", "--state", "dry"])
        .run();
    out.code(1)
        .stderr_has("the target table TableZ does not exist");
    let out = site
        .ferry("pegasus-copy-data", &copy_params(&site, &["no_ttl=true"]))
        .args(["--dry-run", "--state", "dry2"])
        .run();
    out.code(0)
        .stderr_has("dry run: would run in")
        .stderr_has("copy_data -c ClusterB -a TableB -t 10000 -e");
    assert_eq!(site.calls_with("copy_data").len(), 1);

    // A second run is a no-op: every step is journaled.
    let out = site
        .ferry(
            "pegasus-copy-data",
            &copy_params(&site, &["scan_batch_size=50", "max_batch_count=100"]),
        )
        .args(["--yes"])
        .run();
    out.code(0)
        .stderr_has("step copy-data: already done, skipping");
    assert_eq!(site.calls_with("copy_data").len(), 1);
}

#[test]
fn copy_data_failure_is_explained_and_rerun_with_no_overwrite() {
    let site = Site::new("2.5.0", 400, 8, true);
    site.fault(
        "copy_fail",
        json!({"after_rows": 130, "error": "ERR_TIMEOUT"}),
    );
    let out = site
        .ferry("pegasus-copy-data", &copy_params(&site, &[]))
        .args(["--yes"])
        .run();
    out.code(0)
        .stderr_has(
            "copy_data failed after 130 rows: ERROR: split[0] async set failed: ERR_TIMEOUT",
        )
        .stderr_has("write stall")
        .stderr_has("copy_data attempt 2 with -n (no_overwrite)")
        .stderr_has("attempts=2")
        .stderr_has("no_overwrite=true");
    let copies = site.calls_with("copy_data");
    assert_eq!(copies.len(), 2, "{copies:?}");
    assert!(!copies[0].contains(" -n"));
    assert!(copies[1].ends_with(" -n"), "{}", copies[1]);
    assert_eq!(site.row_count("ClusterB", "TableB"), 400);
}

#[test]
fn copy_data_failure_without_reruns_stops_with_a_hint_and_resumes() {
    let site = Site::new("2.5.0", 300, 4, true);
    site.fault("copy_fail", json!({"after_rows": 100, "error": "ERR_BUSY"}));
    let out = site
        .ferry("pegasus-copy-data", &copy_params(&site, &["reruns=0"]))
        .run();
    out.code(1)
        .stderr_has("step 'copy-data' failed")
        .stderr_has("copy_data failed: ERROR: split[0] async set failed: ERR_BUSY")
        .stderr_has("write throttling")
        .stderr_has("-p no_overwrite=true")
        .stderr_has("resume with: ferry run pegasus-copy-data");
    assert_eq!(site.row_count("ClusterB", "TableB"), 100);
    assert_eq!(site.calls_with("count_data").len(), 0);

    // Without --yes, the offered re-run is a confirm: no terminal, so it stops (exit 3).
    site.fault("copy_fail", json!({"after_rows": 150, "error": "ERR_BUSY"}));
    let out = site
        .ferry("pegasus-copy-data", &copy_params(&site, &["reruns=0"]))
        .run();
    out.code(1)
        .stderr_has("step create-target-table: already done, skipping");

    site.fault("copy_fail", json!({"after_rows": 150, "error": "ERR_BUSY"}));
    let out = site
        .ferry("pegasus-copy-data", &copy_params(&site, &[]))
        .run();
    out.code(3).stderr_has("Re-run copy_data now with -n");

    // The same command once the cause is gone resumes at copy-data.
    let out = site
        .ferry("pegasus-copy-data", &copy_params(&site, &[]))
        .run();
    out.code(0)
        .stderr_has("step shell-config: already done, skipping")
        .stderr_has("copy_data done: 300 rows");
    assert_eq!(site.row_count("ClusterB", "TableB"), 300);
}

#[test]
fn copy_data_refuses_a_missing_target_table_or_cluster_entry() {
    let site = Site::new("2.5.0", 50, 4, false);
    let out = site
        .ferry("pegasus-copy-data", &copy_params(&site, &[]))
        .run();
    out.code(1)
        .stderr_has("the target table TableB does not exist on ClusterB")
        .stderr_has("create TableB -p 4");
    assert!(site.calls_with("copy_data").is_empty());

    site.edit(|s| {
        s["clusters"]["ClusterB"]["apps"]["TableB"] =
            json!({"app_id": 3, "partition_count": 4, "rows": {}, "envs": {}})
    });
    site.ws.write(
        "pegasus/config.ini",
        &format!(
            "[pegasus.clusters]\nClusterA = {}\n",
            site.metas("ClusterA")
        ),
    );
    let out = site
        .ferry("pegasus-copy-data", &copy_params(&site, &[]))
        .run();
    out.code(1)
        .stderr_has("ClusterB is not in [pegasus.clusters]")
        .stderr_has("add `ClusterB = <meta servers of ClusterB>`");
    // With target_meta the table check passes, but the shell's config still lacks the cluster.
    let out = site
        .ferry(
            "pegasus-copy-data",
            &copy_params(&site, &[&format!("target_meta={}", site.metas("ClusterB"))]),
        )
        .run();
    out.code(1)
        .stderr_has("has no `ClusterB = ...` under [pegasus.clusters]")
        .stderr_has(&format!("ClusterB = {}", site.metas("ClusterB")));
    assert!(site.calls_with("copy_data").is_empty());
    assert_eq!(site.row_count("ClusterB", "TableB"), 0);

    // Bad combinations are usage errors before any step.
    let out = site
        .ferry(
            "pegasus-copy-data",
            &copy_params(&site, &["use_multi_set=true", "no_overwrite=true"]),
        )
        .run();
    out.code(2)
        .stderr_has("use_multi_set and no_overwrite exclude each other");
}

#[test]
fn copy_data_refuses_multi_set_when_the_shell_has_too_few_threads() {
    let site = Site::new("2.5.0", 200, 24, true);
    let out = site
        .ferry(
            "pegasus-copy-data",
            &copy_params(&site, &["use_multi_set=true"]),
        )
        .args(["--yes"])
        .run();
    out.code(1)
        .stderr_has("worker_count (20 in")
        .stderr_has("greater than the source's 24 partitions")
        .stderr_has("set worker_count = 25");
    assert!(site.calls_with("copy_data").is_empty());

    site.write_config("\n[threadpool.THREAD_POOL_DEFAULT]\nname = default\nworker_count = 32\n");
    let out = site
        .ferry(
            "pegasus-copy-data",
            &copy_params(&site, &["use_multi_set=true"]),
        )
        .args(["--yes"])
        .run();
    out.code(0).stderr_has("worker_count=32");
    assert_eq!(
        site.calls_with("copy_data"),
        vec!["shell: copy_data -c ClusterB -a TableB -t 10000 -u"]
    );
    assert_eq!(site.row_count("ClusterB", "TableB"), 200);
}

#[test]
fn copy_data_on_older_shells_counts_without_c_and_has_no_multi_set() {
    let site = Site::new("2.4.1", 120, 4, true);
    let out = site
        .ferry("pegasus-copy-data", &copy_params(&site, &[]))
        .args(["--yes"])
        .run();
    out.code(0).stderr_has("source_rows=120 target_rows=120");
    assert!(
        site.calls_with("count_data")
            .iter()
            .all(|c| c.ends_with("count_data"))
    );

    // A shell wrapper that prints no banner: the version comes from pegasus_version.
    let quiet = Site::new("2.4.1", 20, 4, true);
    let out = quiet
        .ferry(
            "pegasus-copy-data",
            &copy_params(&quiet, &["pegasus_version=2.4"]),
        )
        .env("PEGASUS_DOUBLE_NO_BANNER", "1")
        .run();
    out.code(0)
        .stderr_lacks("assuming 2.5")
        .stderr_has("source_rows=20 target_rows=20");
    let out = quiet
        .ferry(
            "pegasus-copy-data",
            &copy_params(&quiet, &["target_table=TableA"]),
        )
        .env("PEGASUS_DOUBLE_NO_BANNER", "1")
        .run();
    out.code(1)
        .stderr_has("printed no \"Pegasus Shell <version>\" banner; assuming 2.5");

    let old = Site::new("2.3.0", 10, 4, true);
    let out = old
        .ferry(
            "pegasus-copy-data",
            &copy_params(&old, &["use_multi_set=true"]),
        )
        .run();
    out.code(2)
        .stderr_has("copy_data has no -u, -o or -m (they came in 2.4)");
}

#[test]
fn killed_copy_data_run_resumes_by_following_the_running_shell() {
    let site = Site::new("2.5.0", 1000, 8, true);
    let f = site
        .ferry("pegasus-copy-data", &copy_params(&site, &[]))
        .env("PEGASUS_DOUBLE_TICK", "0.3");
    // SIGKILL: the shell it started keeps copying.
    double::kill_when(f, || site.row_count("ClusterB", "TableB") >= 200);
    assert!(site.row_count("ClusterB", "TableB") < 1000);

    let out = site
        .ferry("pegasus-copy-data", &copy_params(&site, &[]))
        .run();
    out.code(0)
        .stderr_has("copy_data of the interrupted run is still running (pid")
        .stderr_has("copy_data done: 1000 rows")
        .stderr_has("step create-target-table: already done, skipping");
    assert_eq!(
        site.calls_with("copy_data").len(),
        1,
        "copy_data was started again"
    );
    assert_eq!(site.row_count("ClusterB", "TableB"), 1000);
}

// ---------------------------------------------------------------------------------------------
// pegasus-cold-backup
// ---------------------------------------------------------------------------------------------

fn backup_params(site: &Site, extra: &[&str]) -> Vec<String> {
    let hdfs = site.ws.join("hdfs");
    let mut v = vec![
        format!("shell={}", site.shell("ClusterA")),
        "source_cluster=ClusterA".into(),
        "source_table=TableA".into(),
        "target_cluster=ClusterB".into(),
        format!("admin_cli={}", site.admin_cli()),
        "provider=hdfs_xxx".into(),
        "backup_path=/user/pegasus/backup".into(),
        format!("remove_command=rm -rf {}{{path}}", hdfs.display()),
        "poll_interval=0.05".into(),
        "raise_every=0".into(),
        "rate_max=150".into(),
    ];
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn backups(site: &Site) -> Vec<(String, serde_json::Value)> {
    site.state()["clusters"]["ClusterA"]["backups"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

fn backup_dir(site: &Site, id: &str) -> std::path::PathBuf {
    site.ws
        .join(&format!("hdfs/user/pegasus/backup/ClusterA/{id}"))
}

/// The upload limit each replica server of ClusterA was given, in order.
fn rate_history(site: &Site) -> Vec<Vec<String>> {
    let st = site.state();
    let nodes = st["clusters"]["ClusterA"]["replicas"]
        .as_array()
        .unwrap()
        .clone();
    nodes
        .iter()
        .map(|n| {
            st["clusters"]["ClusterA"]["node_config"][n.as_str().unwrap()]["history"]
                .as_array()
                .map(|h| h.iter().map(|x| x.as_str().unwrap().to_string()).collect())
                .unwrap_or_default()
        })
        .collect()
}

#[test]
fn cold_backup_limits_the_upload_raises_it_and_restores() {
    let site = Site::new("2.5.0", 300, 8, true);
    let out = site
        .ferry(
            "pegasus-cold-backup",
            &backup_params(&site, &["target_table=TableR"]),
        )
        .run();
    out.code(0)
        .stderr_has("limited by hdfs_write_limit_rate_mb_per_sec")
        .stderr_has("the upload phase began")
        .stderr_has("cold.backup.max.upload.file.size = 67108864")
        .stderr_has("completed after 1 attempt(s)")
        .stderr_has("restored TableA as TableR on ClusterB")
        .stderr_has("source_rows=300 target_rows=300");
    // 50 before the backup, raised in steps of 50 to rate_max while uploading, 200 again after.
    let want: Vec<String> = ["50", "100", "150", "200"]
        .iter()
        .map(|r| format!("hdfs_write_limit_rate_mb_per_sec={r}"))
        .collect();
    assert_eq!(rate_history(&site), vec![want.clone(), want]);
    let b = backups(&site);
    assert_eq!(b.len(), 1);
    let (id, info) = &b[0];
    assert_eq!(info["status"], "completed");
    assert!(backup_dir(&site, id).join("backup_info").exists());
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
        site.calls_with("admin-cli: backup"),
        vec!["admin-cli: backup 2 hdfs_xxx /user/pegasus/backup"]
    );

    // Running it again finds every step done, and restore does not run twice.
    let out = site
        .ferry(
            "pegasus-cold-backup",
            &backup_params(&site, &["target_table=TableR"]),
        )
        .run();
    out.code(0)
        .stderr_has("step restore: already done, skipping");
    assert_eq!(site.calls_with("restore").len(), 1);
    // Forced to restore again, it recognises the table it restored from this backup.
    let out = site
        .ferry(
            "pegasus-cold-backup",
            &backup_params(&site, &["target_table=TableR"]),
        )
        .args(["--from-step", "restore"])
        .run();
    out.code(0)
        .stderr_has("TableR already exists on ClusterB, restored from backup");
    assert_eq!(site.calls_with("restore").len(), 1);

    // A dry run of another migration changes nothing: no backup, no limit, no restore.
    let (calls, http) = (site.calls().len(), site.http_log().len());
    let out = site
        .ferry(
            "pegasus-cold-backup",
            &backup_params(&site, &["target_table=TableS"]),
        )
        .args(["--dry-run", "--state", "dry"])
        .run();
    out.code(0).stderr_has("dry run");
    assert!(site.calls()[calls..].iter().all(|c| !c.contains("backup 2")
        && !c.contains("restore")
        && !c.contains("remote_command")));
    assert!(site.app("ClusterB", "TableS").is_null());
    assert!(
        !site.http_log()[http..]
            .iter()
            .any(|l| l.contains("/updateConfig"))
    );
}

#[test]
fn cold_backup_failed_backup_is_deleted_and_started_again_on_new_metrics() {
    // 2.6: replica-level /metrics, backup_file_upload_max_bytes.
    let site = Site::new("2.6.0-SNAPSHOT", 200, 8, true);
    site.fault("backup_fail", json!({"at_poll": 3}));
    let out = site
        .ferry(
            "pegasus-cold-backup",
            &backup_params(&site, &["method=backup_only"]),
        )
        .run();
    out.code(0)
        .stderr_has("failed (attempt 1): query-backup-status says failed")
        .stderr_has("deleting the failed backup's directory: rm -rf")
        .stderr_has("backup_file_upload_max_bytes = 67108864")
        .stderr_has("completed after 2 attempt(s)")
        .stderr_has("attempts=2");
    let b = backups(&site);
    assert_eq!(b.len(), 2);
    let failed = b.iter().find(|(_, v)| v["status"] == "failed").unwrap();
    let done = b.iter().find(|(_, v)| v["status"] == "completed").unwrap();
    assert!(
        !backup_dir(&site, &failed.0).exists(),
        "the failed backup's directory is left"
    );
    assert!(backup_dir(&site, &done.0).join("backup_info").exists());
    assert_eq!(site.calls_with("admin-cli: backup").len(), 2);
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
    site.edit(|s| {
        s["faults"]["backup_fail"] = json!({"at_poll": 3, "times": 5});
    });
    let out = site
        .ferry(
            "pegasus-cold-backup",
            &backup_params(&site, &["method=backup_only", "retries=1"]),
        )
        .run();
    out.code(1)
        .stderr_has("the meta does not know the backup any more")
        .stderr_has("failed (attempt 2): query-backup-status says failed")
        .stderr_has("the backup of TableA failed 2 time(s)")
        .stderr_has("--from-step start-backup");
    let b = backups(&site);
    assert_eq!(b.len(), 2);
    for (id, _) in &b {
        assert!(!backup_dir(&site, id).exists(), "{id} left behind");
    }

    let stall = Site::new("2.5.0", 100, 4, true);
    stall.fault("backup_stall", json!({"times": 1}));
    let out = stall
        .ferry(
            "pegasus-cold-backup",
            &backup_params(&stall, &["method=backup_only", "stall_timeout=0"]),
        )
        .run();
    out.code(0)
        .stderr_has("looks failed: the upload metric dropped to 0 and stayed there")
        .stderr_has("the meta does not know the backup any more")
        .stderr_has("completed after 2 attempt(s)");
    assert_eq!(backups(&stall).len(), 2);
}

#[test]
fn cold_backup_on_2_3_sets_the_nfs_limit_with_remote_command() {
    let site = Site::new("2.3.0", 50, 4, true);
    let out = site
        .ferry(
            "pegasus-cold-backup",
            &backup_params(&site, &["method=backup_only"]),
        )
        .run();
    out.code(0)
        .stderr_has("has no HDFS upload limit")
        .stderr_has("nfs.max_send_rate_megabytes stays at 150");
    assert_eq!(
        site.calls_with("remote_command"),
        vec![
            "shell: remote_command -t replica-server nfs.max_send_rate_megabytes 50",
            "shell: remote_command -t replica-server nfs.max_send_rate_megabytes 100",
            "shell: remote_command -t replica-server nfs.max_send_rate_megabytes 150",
        ]
    );
    let st = site.state();
    for n in st["clusters"]["ClusterA"]["replicas"].as_array().unwrap() {
        assert_eq!(
            st["clusters"]["ClusterA"]["node_config"][n.as_str().unwrap()]["nfs.max_send_rate_megabytes"],
            150
        );
    }
    assert!(!site.http_log().iter().any(|l| l.contains("/updateConfig")));
}

fn split_command(site: &Site) -> String {
    let hdfs = site.ws.join("hdfs");
    format!(
        "split_command={} --backup {h}{{backup_dir}} --out {h}{{bulk_load_dir}} --app-id {{app_id}} --partition-count {{partition_count}}",
        double::doubles().join("pegasus_split").display(),
        h = hdfs.display()
    )
}

#[test]
fn cold_backup_bulk_load_sets_and_restores_the_usage_scenario() {
    let site = Site::new("2.5.0", 250, 8, true);
    let out = site
        .ferry(
            "pegasus-cold-backup",
            &backup_params(
                &site,
                &[
                    "method=bulk_load",
                    "target_table=TableB",
                    "bulk_load_root=/user/pegasus/split",
                    &split_command(&site),
                ],
            ),
        )
        .run();
    out.code(0)
        .stderr_has("step wait-bulk-load: ok")
        .stderr_has("rocksdb.usage_scenario of TableB is normal again")
        .stderr_has("source_rows=250 target_rows=250");
    assert_eq!(site.row_count("ClusterB", "TableB"), 250);
    assert_eq!(
        site.app("ClusterB", "TableB")["envs"]["rocksdb.usage_scenario"],
        "normal"
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
    site.edit(|s| {
        s["clusters"]["ClusterB"]["apps"]["TableB"]["rows"] =
            json!({"hk1:sk": "new", "hk100:sk": "only-new"})
    });
    let params = |extra: &[&str]| {
        let mut v = vec![
            "method=ingest_behind",
            "target_table=TableB",
            "bulk_load_root=/user/pegasus/split",
        ];
        v.extend_from_slice(extra);
        backup_params(&site, &v)
    };
    let split = split_command(&site);
    let out = site.ferry("pegasus-cold-backup", &params(&[&split])).run();
    out.code(1)
        .stderr_has("TableB was not created with rocksdb.allow_ingest_behind=true")
        .stderr_has("create TableB -p 4 -e rocksdb.allow_ingest_behind=true");
    assert_eq!(site.calls_with("admin-cli: backup").len(), 1);

    site.edit(|s| {
        s["clusters"]["ClusterB"]["apps"]["TableB"]["envs"]["rocksdb.allow_ingest_behind"] =
            json!("true")
    });
    // The bulk load fails once (rolled back too often); the re-run resumes from the failed step.
    site.fault("bulk_load_fail", json!("ERR_CORRUPTION"));
    let out = site.ferry("pegasus-cold-backup", &params(&[&split])).run();
    out.code(1)
        .stderr_has("step monitor-backup: already done, skipping")
        .stderr_has("bulk load of TableB FAILED: ERR_CORRUPTION")
        .stderr_has("clear_bulk_load -a TableB");
    let out = site
        .ferry("pegasus-cold-backup", &params(&[&split]))
        .args(["--from-step", "start-bulk-load"])
        .run();
    out.code(0)
        .stderr_has("step offline-split: already done, skipping");
    assert_eq!(
        site.calls_with("admin-cli: backup").len(),
        1,
        "backed up again"
    );
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
    let f = site.ferry(
        "pegasus-cold-backup",
        &backup_params(&site, &["method=backup_only", "poll_interval=0.4"]),
    );
    double::kill_when(f, || site.calls_with("query-backup-status").len() >= 2);
    assert_eq!(backups(&site)[0].1["status"], "in progress");

    let out = site
        .ferry(
            "pegasus-cold-backup",
            &backup_params(&site, &["method=backup_only", "poll_interval=0.4"]),
        )
        .run();
    out.code(0)
        .stderr_has("step start-backup: already done, skipping")
        .stderr_has("completed after 1 attempt(s)");
    assert_eq!(site.calls_with("admin-cli: backup").len(), 1);
    assert_eq!(backups(&site).len(), 1);
}

// ---------------------------------------------------------------------------------------------
// pegasus-online-migration
// ---------------------------------------------------------------------------------------------

fn online_params(site: &Site, target_table: &str, extra: &[&str]) -> Vec<String> {
    let zk = site.ws.join("state/zk");
    let mut v = vec![
        format!("shell={}", site.shell("ClusterA")),
        "source_cluster=ClusterA".into(),
        "source_table=TableA".into(),
        "target_cluster=ClusterB".into(),
        format!("target_table={target_table}"),
        format!(
            "zk_command=mkdir -p {z} && printf %s {{value}} > {z}/{{table}}",
            z = zk.display()
        ),
        "poll_interval=0.05".into(),
        "settle=0".into(),
        "verify_window=0.6".into(),
    ];
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn with_traffic(site: &Site, target_table: &str, qps: u64) {
    site.edit(|s| {
        s["traffic"] = json!({"table": "TableA", "source": "ClusterA", "target": "ClusterB",
                              "target_table": target_table, "qps": qps})
    });
}

fn summary_value(stderr: &str, key: &str) -> f64 {
    let at = stderr
        .rfind(&format!("{key}="))
        .unwrap_or_else(|| panic!("no {key}= in\n{stderr}"));
    stderr[at + key.len() + 1..]
        .split(|c: char| !c.is_ascii_digit() && c != '.')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn online_migration_duplicates_switches_blocks_the_source_and_verifies_on_2_6() {
    let site = Site::new("2.6.0-SNAPSHOT", 150, 8, true);
    with_traffic(&site, "TableM", 200);
    let out = site
        .ferry(
            "pegasus-online-migration",
            &online_params(&site, "TableM", &["max_lag=0"]),
        )
        .args(["--yes"])
        .run();
    out.code(0)
        .stderr_has("DS_LOG, 500 decrees behind")
        .stderr_has("DS_LOG, 0 decrees behind")
        .stderr_has("refuses client requests (reconfig*all)")
        .stderr_has("QPS: ClusterA.TableA 0.0");
    let source_qps = summary_value(&out.stderr, "source_qps");
    let target_qps = summary_value(&out.stderr, "target_qps");
    assert_eq!(source_qps, 0.0);
    assert!(
        (160.0..=260.0).contains(&target_qps),
        "target QPS {target_qps}"
    );
    // -s creates the target table and ships the checkpoint; -a names it (2.6).
    assert_eq!(
        site.calls_with("add_dup"),
        vec!["shell: add_dup TableA ClusterB -s -a TableM"]
    );
    assert_eq!(site.row_count("ClusterB", "TableM"), 150);
    // The SOURCE is blocked (the doc's snippet says `use TableB`).
    assert_eq!(
        site.app("ClusterA", "TableA")["envs"]["replica.deny_client_request"],
        "reconfig*all"
    );
    assert!(
        site.app("ClusterB", "TableM")["envs"]
            .get("replica.deny_client_request")
            .is_none()
    );
    let calls = site.calls();
    let set = calls
        .iter()
        .position(|c| c.contains("set_app_envs replica.deny_client_request"))
        .unwrap();
    assert_eq!(calls[set - 1], "shell: use TableA");
    let zk: serde_json::Value = serde_json::from_str(&site.ws.read("state/zk/TableA")).unwrap();
    assert_eq!(zk["cluster_name"], "ClusterB");
    assert_eq!(zk["meta_addrs"], site.metas("ClusterB"));
    assert!(site.http_log().iter().any(|l| l.contains("get_requests")));
}

#[test]
fn online_migration_on_2_5_reads_perf_counters_and_keeps_the_table_name() {
    let site = Site::new("2.5.0", 60, 4, true);
    let out = site
        .ferry(
            "pegasus-online-migration",
            &online_params(&site, "TableM", &[]),
        )
        .args(["--yes"])
        .run();
    out.code(2).stderr_has("add_dup -a");
    let old = Site::new("2.3.0", 60, 4, true);
    let out = old
        .ferry(
            "pegasus-online-migration",
            &online_params(&old, "TableA", &[]),
        )
        .args(["--yes"])
        .run();
    out.code(2).stderr_has("needs duplication from Pegasus 2.4");

    with_traffic(&site, "TableA", 100);
    let out = site
        .ferry(
            "pegasus-online-migration",
            &online_params(&site, "TableA", &[]),
        )
        .args(["--yes"])
        .run();
    out.code(0).stderr_has("pending mutations");
    assert!(summary_value(&out.stderr, "target_qps") >= 80.0);
    assert_eq!(
        site.calls_with("add_dup"),
        vec!["shell: add_dup TableA ClusterB -s"]
    );
    assert!(
        site.http_log()
            .iter()
            .any(|l| { l.contains("/perfCounter?name=") && l.contains("get_qps") })
    );
    assert_eq!(site.row_count("ClusterB", "TableA"), 60);
}

#[test]
fn online_migration_fails_verification_when_metaproxy_still_points_at_the_source() {
    let site = Site::new("2.6.0-SNAPSHOT", 40, 4, true);
    with_traffic(&site, "TableM", 150);
    site.fault("non_idempotent", json!({"ClusterA": 1}));
    let mut params = online_params(&site, "TableM", &[]);
    params.retain(|p| !p.starts_with("zk_command="));
    params.push("zk_command=true".into()); // a ZooKeeper update that did nothing
    let out = site
        .ferry("pegasus-online-migration", &params)
        .args(["--yes"])
        .run();
    out.code(1)
        .stderr_has("the migration does not verify")
        .stderr_has("ClusterB.TableM serves 0.0 requests/s")
        .stderr_has("ClusterA: read_failed_requests = ")
        .stderr_has("ClusterA: dup_rejected_non_idempotent_write_requests = ")
        .stderr_has("del_app_envs replica.deny_client_request");

    // Fixed: the right ZooKeeper update, from its step on.
    site.edit(|s| {
        s["faults"]
            .as_object_mut()
            .unwrap()
            .remove("non_idempotent");
    });
    let out = site
        .ferry(
            "pegasus-online-migration",
            &online_params(&site, "TableM", &[]),
        )
        .args(["--yes", "--from-step", "switch-zookeeper"])
        .run();
    out.code(0).stderr_has("step switch-zookeeper: ok");
    assert_eq!(site.calls_with("add_dup").len(), 1);
    assert!(summary_value(&out.stderr, "target_qps") > 100.0);
}

#[test]
fn killed_online_migration_resumes_without_adding_the_duplication_again() {
    let site = Site::new("2.6.0-SNAPSHOT", 40, 4, true);
    with_traffic(&site, "TableM", 100);
    let f = site
        .ferry(
            "pegasus-online-migration",
            &online_params(&site, "TableM", &["poll_interval=0.5"]),
        )
        .args(["--yes"]);
    double::kill_when(f, || site.calls_with("query_dup").len() >= 3);
    assert!(
        site.app("ClusterA", "TableA")["envs"]
            .get("replica.deny_client_request")
            .is_none()
    );

    let out = site
        .ferry(
            "pegasus-online-migration",
            &online_params(&site, "TableM", &["poll_interval=0.5"]),
        )
        .args(["--yes"])
        .run();
    out.code(0)
        .stderr_has("step start-duplication: already done, skipping");
    assert_eq!(site.calls_with("add_dup").len(), 1);
}

#[test]
fn refusals_name_the_cause_before_anything_changes() {
    let site = Site::new("2.5.0", 30, 4, true);
    // The shell command connects to the wrong cluster.
    let mut params = copy_params(&site, &[]);
    params[0] = format!("shell={}", site.shell("ClusterB"));
    let out = site.ferry("pegasus-copy-data", &params).run();
    out.code(2)
        .stderr_has("the shell command connects to cluster ClusterB, not source_cluster ClusterA");

    // Geo data needs the target's _geo table too.
    let out = site
        .ferry("pegasus-copy-data", &copy_params(&site, &["geo_data=true"]))
        .run();
    out.code(1).stderr_has("TableB_geo does not exist on ClusterB");

    // A target with write-unhealthy partitions.
    site.edit(|s| s["clusters"]["ClusterB"]["apps"]["TableB"]["unhealthy"] = json!(1));
    let out = site
        .ferry("pegasus-copy-data", &copy_params(&site, &[]))
        .run();
    out.code(1).stderr_has("has 1 write-unhealthy partition(s)");
    assert!(site.calls_with("copy_data").is_empty());

    // Online migration with the checkpoint into a table that already exists.
    let same = Site::new("2.6.0-SNAPSHOT", 30, 4, true);
    let out = same
        .ferry(
            "pegasus-online-migration",
            &online_params(&same, "TableB", &[]),
        )
        .args(["--yes"])
        .run();
    out.code(1).stderr_has(
        "ClusterB already has a table TableB; duplicating the checkpoint (add_dup -s) creates it",
    );
    assert!(same.calls_with("add_dup").is_empty());

    // A bulk load whose bulk_load_info does not match the target table.
    let bulk = Site::new("2.5.0", 30, 4, true);
    let wrong = split_command(&bulk).replace("{partition_count}", "16");
    let out = bulk
        .ferry(
            "pegasus-cold-backup",
            &backup_params(
                &bulk,
                &[
                    "method=bulk_load",
                    "target_table=TableB",
                    "bulk_load_root=/user/pegasus/split",
                    &wrong,
                ],
            ),
        )
        .run();
    out.code(1)
        .stderr_has("start_bulk_load failed: start bulk load failed, error=ERR_INCONSISTENT_STATE")
        .stderr_has("--from-step offline-split");
    assert_eq!(bulk.row_count("ClusterB", "TableB"), 0);
}

#[test]
fn killed_copy_data_whose_shell_finished_meanwhile_is_not_copied_again() {
    let site = Site::new("2.5.0", 300, 4, true);
    let f = site
        .ferry("pegasus-copy-data", &copy_params(&site, &[]))
        .env("PEGASUS_DOUBLE_TICK", "0.2");
    double::kill_when(f, || site.row_count("ClusterB", "TableB") > 0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    // The orphaned shell finishes the copy on its own.
    let log = site
        .ws
        .join(".ferry/state/pegasus-copy-data/copy_data.1.log");
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("Copy done")
    {
        assert!(std::time::Instant::now() < deadline, "the shell stopped");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));

    let out = site
        .ferry("pegasus-copy-data", &copy_params(&site, &[]))
        .run();
    out.code(0)
        .stderr_has("copy_data of the interrupted run finished meanwhile (300 rows)")
        .stderr_has("source_rows=300 target_rows=300");
    assert_eq!(site.calls_with("copy_data").len(), 1);
}

#[test]
fn copy_data_progress_of_a_long_copy_is_read_from_the_end_of_its_output() {
    // 1500 progress lines (~125 KB): past 64 KB ferry reads only the tail of the shell's output.
    let site = Site::new("2.5.0", 1500, 4, true);
    let out = site
        .ferry("pegasus-copy-data", &copy_params(&site, &[]))
        .env("PEGASUS_DOUBLE_COPY_RATE", "1")
        .env("PEGASUS_DOUBLE_TICK", "0.001")
        .run();
    out.code(0).stderr_has("copy_data done: 1500 rows");
    let late: Vec<u64> = out
        .stderr
        .lines()
        .filter_map(|l| l.split("copy_data TableA -> ClusterB.TableB: ").nth(1))
        .filter_map(|rest| rest.split(',').next()?.trim().parse().ok())
        .filter(|n| (900..1500).contains(n))
        .collect();
    assert!(
        !late.is_empty(),
        "no progress relayed past 64 KB:\n{}",
        out.stderr
    );
    let log = site
        .ws
        .join(".ferry/state/pegasus-copy-data/copy_data.1.log");
    assert!(std::fs::metadata(log).unwrap().len() > 100_000);
}
