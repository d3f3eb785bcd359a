//! pegasus-copy-data against the Pegasus double (tests/doubles/pegasus/: the shell, admin-cli,
//! meta/replica HTTP endpoints and pegasus-spark's split as small Python programs keeping two
//! clusters' state in files, answering in the output formats of ../shared/reference/pegasus.md,
//! 2.3 to 2.6). Pegasus itself cannot run here.

use crate::pegasus::copy_data;
use crate::pegasus::double;

use copy_data::relayed_progress;
use double::{RunFlags, Site, kill_when, table_b, wait_until};
use serde_json::json;

#[test]
fn copy_data_copies_with_short_flags_relays_progress_and_counts_both_tables() {
    let site = Site::new("2.5.0", 450, 8, true);
    let batches = ["scan_batch_size=50", "max_batch_count=100"];
    // 50 rows a tick: about nine shell progress lines, so the relay is seen on a busy machine too.
    let out = site
        .copy_data(&batches)
        .tick("0.3")
        .env("PEGASUS_DOUBLE_COPY_RATE", "50")
        .yes()
        .run();
    out.code(0)
        .stderr_has("TableA has 8 partitions, TableB has 4")
        .stderr_has("/8 splits")
        .stderr_has("copy_data done: 450 rows")
        .stderr_has("ClusterA.TableA: 450 rows; ClusterB.TableB: 450 rows")
        .stderr_has("source_rows=450 target_rows=450");
    // The shell's once-a-second lines became ferry progress lines while it ran.
    let relayed = relayed_progress(&out.stderr).len();
    assert!(relayed >= 3, "{relayed} progress lines:\n{}", out.stderr);
    assert_eq!(site.target_rows(), 450);
    assert_eq!(site.app("ClusterB", "TableB")["rows"]["hk7:sk"], "v7");
    // Short flags only: the long forms of -o and -u do not parse [reference §2.1].
    assert_eq!(
        site.copies(),
        vec!["shell: copy_data -c ClusterB -a TableB -t 10000 -b 100 -o 50"]
    );
    // 2.5 counts precisely only with -c.
    assert_eq!(site.counts().len(), 2);
    assert!(site.counts().iter().all(|c| c.ends_with("-c")));

    // A dry run copies nothing.
    site.copy_data(&["target_table=TableZ"])
        .dry_run("dry")
        .run()
        .code(1)
        .stderr_has("the target table TableZ does not exist");
    site.copy_data(&["no_ttl=true"])
        .dry_run("dry2")
        .run()
        .code(0)
        .stderr_has("dry run: would run in")
        .stderr_has("copy_data -c ClusterB -a TableB -t 10000 -e");
    assert_eq!(site.copies().len(), 1);

    // A second run is a no-op: every step is journaled.
    site.copy_data(&batches)
        .yes()
        .run()
        .code(0)
        .stderr_has("step copy-data: already done, skipping");
    assert_eq!(site.copies().len(), 1);
}

#[test]
fn copy_data_failure_is_explained_and_rerun_with_no_overwrite() {
    let site = Site::new("2.5.0", 400, 8, true);
    site.fault(
        "copy_fail",
        json!({"after_rows": 130, "error": "ERR_TIMEOUT"}),
    );
    site.copy_data(&[])
        .yes()
        .run()
        .code(0)
        .stderr_has(
            "copy_data failed after 130 rows: ERROR: split[0] async set failed: ERR_TIMEOUT",
        )
        .stderr_has("write stall")
        .stderr_has("copy_data attempt 2 with -n (no_overwrite)")
        .stderr_has("attempts=2")
        .stderr_has("no_overwrite=true");
    let copies = site.copies();
    assert_eq!(copies.len(), 2, "{copies:?}");
    assert!(!copies[0].contains(" -n"));
    assert!(copies[1].ends_with(" -n"), "{}", copies[1]);
    assert_eq!(site.target_rows(), 400);
}

#[test]
fn copy_data_failure_without_reruns_stops_with_a_hint_and_resumes() {
    let site = Site::new("2.5.0", 300, 4, true);
    let busy_after = |rows: u64| {
        site.fault(
            "copy_fail",
            json!({"after_rows": rows, "error": "ERR_BUSY"}),
        )
    };
    busy_after(100);
    site.copy_data(&["reruns=0"])
        .run()
        .code(1)
        .stderr_has("step 'copy-data' failed")
        .stderr_has("copy_data failed: ERROR: split[0] async set failed: ERR_BUSY")
        .stderr_has("write throttling")
        .stderr_has("-p no_overwrite=true")
        .stderr_has("resume with: ferry run pegasus-copy-data");
    assert_eq!(site.target_rows(), 100);
    assert_eq!(site.counts().len(), 0);

    // Without --yes, the offered re-run is a confirm: no terminal, so it stops (exit 3).
    busy_after(150);
    site.copy_data(&["reruns=0"])
        .run()
        .code(1)
        .stderr_has("step create-target-table: already done, skipping");
    busy_after(150);
    site.copy_data(&[])
        .run()
        .code(3)
        .stderr_has("Re-run copy_data now with -n");

    // The same command once the cause is gone resumes at copy-data.
    site.copy_data(&[])
        .run()
        .code(0)
        .stderr_has("step shell-config: already done, skipping")
        .stderr_has("copy_data done: 300 rows");
    assert_eq!(site.target_rows(), 300);
}

#[test]
fn copy_data_refuses_a_missing_target_table_or_cluster_entry() {
    let site = Site::new("2.5.0", 50, 4, false);
    site.copy_data(&[])
        .run()
        .code(1)
        .stderr_has("the target table TableB does not exist on ClusterB")
        .stderr_has("create TableB -p 4");
    assert!(site.copies().is_empty());

    site.edit_app("ClusterB", "TableB", |t| *t = table_b());
    // A shell config.ini that lists only the source cluster.
    site.ws.write(
        "pegasus/config.ini",
        &format!(
            "[pegasus.clusters]\nClusterA = {}\n",
            site.metas("ClusterA")
        ),
    );
    site.copy_data(&[])
        .run()
        .code(1)
        .stderr_has("ClusterB is not in [pegasus.clusters]")
        .stderr_has("add `ClusterB = <meta servers of ClusterB>`");
    // With target_meta the table check passes, but the shell's config still lacks the cluster.
    let target_meta = format!("target_meta={}", site.metas("ClusterB"));
    site.copy_data(&[&target_meta])
        .run()
        .code(1)
        .stderr_has("has no `ClusterB = ...` under [pegasus.clusters]")
        .stderr_has(&format!("ClusterB = {}", site.metas("ClusterB")));
    assert!(site.copies().is_empty());
    assert_eq!(site.target_rows(), 0);

    // Bad combinations are usage errors before any step.
    site.copy_data(&["use_multi_set=true", "no_overwrite=true"])
        .run()
        .code(2)
        .stderr_has("use_multi_set and no_overwrite exclude each other");
}

#[test]
fn copy_data_refuses_multi_set_when_the_config_lacks_worker_count() {
    // data_operations.cpp reads [threadpool.THREAD_POOL_DEFAULT] worker_count with default 0:
    // without the key, copy_data -u returns without copying, even for 8 partitions.
    let site = Site::new("2.5.0", 50, 8, true);
    site.copy_data(&["use_multi_set=true"])
        .yes()
        .run()
        .code(1)
        .stderr_has("worker_count (not set in")
        .stderr_has("which the shell reads as 0")
        .stderr_has("set worker_count = 9");
    assert!(site.copies().is_empty());
    assert_eq!(site.target_rows(), 0);
}

#[test]
fn copy_data_refuses_multi_set_when_the_shell_has_too_few_threads() {
    let site = Site::new("2.5.0", 200, 24, true);
    site.write_config("\n[threadpool.THREAD_POOL_DEFAULT]\nname = default\nworker_count = 20\n");
    site.copy_data(&["use_multi_set=true"])
        .yes()
        .run()
        .code(1)
        .stderr_has("worker_count (20 in")
        .stderr_has("greater than the source's 24 partitions")
        .stderr_has("set worker_count = 25");
    assert!(site.copies().is_empty());

    site.write_config("\n[threadpool.THREAD_POOL_DEFAULT]\nname = default\nworker_count = 32\n");
    site.copy_data(&["use_multi_set=true"])
        .yes()
        .run()
        .code(0)
        .stderr_has("worker_count=32");
    assert_eq!(
        site.copies(),
        vec!["shell: copy_data -c ClusterB -a TableB -t 10000 -u"]
    );
    assert_eq!(site.target_rows(), 200);
}

#[test]
fn copy_data_on_older_shells_counts_with_c_and_has_no_multi_set() {
    // count_data without -c prints RocksDB's estimate on every version since v2.0.0
    // (data_operations.cpp count_data, `bool precise = false`), and -c is there on all of them.
    let site = Site::new("2.4.1", 120, 4, true);
    site.copy_data(&[])
        .yes()
        .run()
        .code(0)
        .stderr_has("source_rows=120 target_rows=120");
    let counts = site.counts();
    assert_eq!(counts.len(), 2);
    assert!(
        counts.iter().all(|c| c.ends_with("count_data -c")),
        "{counts:?}"
    );

    // A shell wrapper that prints no banner: the version comes from pegasus_version.
    let quiet = Site::new("2.4.1", 20, 4, true);
    let no_banner = |extra: &[&str]| {
        quiet
            .copy_data(extra)
            .env("PEGASUS_DOUBLE_NO_BANNER", "1")
            .run()
    };
    no_banner(&["pegasus_version=2.4"])
        .code(0)
        .stderr_lacks("assuming 2.5")
        .stderr_has("source_rows=20 target_rows=20");
    no_banner(&["target_table=TableA"])
        .code(1)
        .stderr_has("printed no \"Pegasus Shell <version>\" banner; assuming 2.5");

    let old = Site::new("2.3.0", 10, 4, true);
    old.copy_data(&["use_multi_set=true"])
        .run()
        .code(2)
        .stderr_has("copy_data has no -u, -o or -m (they came in 2.4)");
}

#[test]
fn killed_copy_data_run_resumes_by_following_the_running_shell() {
    let site = Site::new("2.5.0", 1000, 8, true);
    // SIGKILL: the shell it started keeps copying, 40 rows a second, so about 20 s are left for
    // the resume to find it running (at the default 100 rows a second a loaded machine once
    // started the resume after the shell had finished).
    kill_when(
        site.copy_data(&[])
            .tick("0.3")
            .env("PEGASUS_DOUBLE_COPY_RATE", "40"),
        || site.target_rows() >= 200,
    );
    assert!(site.target_rows() < 1000);

    site.copy_data(&[])
        .env("PEGASUS_DOUBLE_COPY_RATE", "40")
        .run()
        .code(0)
        .stderr_has("copy_data of the interrupted run is still running (pid")
        .stderr_has("copy_data done: 1000 rows")
        .stderr_has("step create-target-table: already done, skipping");
    assert_eq!(site.copies().len(), 1, "copy_data was started again");
    assert_eq!(site.target_rows(), 1000);
}

#[test]
fn killed_copy_data_whose_shell_finished_meanwhile_is_not_copied_again() {
    let site = Site::new("2.5.0", 300, 4, true);
    kill_when(site.copy_data(&[]).tick("0.2"), || site.target_rows() > 0);
    // The orphaned shell finishes the copy on its own.
    wait_until(60, "the shell stopped", || {
        std::fs::read_to_string(site.copy_log())
            .unwrap_or_default()
            .contains("Copy done")
    });
    std::thread::sleep(std::time::Duration::from_millis(300));

    site.copy_data(&[])
        .run()
        .code(0)
        .stderr_has("copy_data of the interrupted run finished meanwhile (300 rows)")
        .stderr_has("source_rows=300 target_rows=300");
    assert_eq!(site.copies().len(), 1);
}

#[test]
fn copy_data_progress_of_a_long_copy_is_read_from_the_end_of_its_output() {
    // 1500 progress lines (~125 KB): past 64 KB ferry reads only the tail of the shell's output.
    let site = Site::new("2.5.0", 1500, 4, true);
    let out = site
        .copy_data(&[])
        .env("PEGASUS_DOUBLE_COPY_RATE", "1")
        .tick("0.001")
        .run();
    out.code(0).stderr_has("copy_data done: 1500 rows");
    let late: Vec<u64> = relayed_progress(&out.stderr)
        .into_iter()
        .filter_map(|rest| rest.split(',').next()?.trim().parse().ok())
        .filter(|n| (900..1500).contains(n))
        .collect();
    assert!(
        !late.is_empty(),
        "no progress relayed past 64 KB:\n{}",
        out.stderr
    );
    assert!(std::fs::metadata(site.copy_log()).unwrap().len() > 100_000);
}
