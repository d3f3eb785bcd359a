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
    let mut f = site
        .ferry("pegasus-copy-data", &copy_params(&site, &[]))
        .env("PEGASUS_DOUBLE_TICK", "0.3");
    f.cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = f.cmd.spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while site.row_count("ClusterB", "TableB") < 200 {
        assert!(std::time::Instant::now() < deadline, "no progress");
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before it was killed"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL: the shell it started keeps copying
    child.wait().unwrap();
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
