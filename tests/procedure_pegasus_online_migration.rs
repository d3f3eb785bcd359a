//! pegasus-online-migration against the Pegasus double (tests/doubles/pegasus/: the shell,
//! admin-cli, meta/replica HTTP endpoints as small Python programs keeping two clusters' state in
//! files, with client traffic that follows MetaProxy's ZooKeeper node, answering in the output
//! formats of ../shared/reference/pegasus.md, 2.3 to 2.6). Pegasus itself cannot run here.

mod common;
#[path = "pegasus/double.rs"]
mod double;
#[path = "pegasus/online_migration.rs"]
mod online_migration;

use double::{RunFlags, Site, kill_when, replace_param};
use online_migration::{online_params, summary_value};
use serde_json::json;

#[test]
fn online_migration_duplicates_switches_blocks_the_source_and_verifies_on_2_6() {
    let site = Site::new("2.6.0-SNAPSHOT", 150, 8, true);
    site.with_traffic("TableM", 200);
    let out = site.online_migration("TableM", &["max_lag=0"]).run();
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
        site.duplications_added(),
        vec!["shell: add_dup TableA ClusterB -s -a TableM"]
    );
    assert_eq!(site.row_count("ClusterB", "TableM"), 150);
    // The SOURCE is blocked (the doc's snippet says `use TableB`).
    assert_eq!(site.source_denial(), Some(json!("reconfig*all")));
    assert_eq!(
        site.app_env("ClusterB", "TableM", "replica.deny_client_request"),
        None
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
    site.online_migration("TableM", &[])
        .run()
        .code(2)
        .stderr_has("add_dup -a");
    let old = Site::new("2.3.0", 60, 4, true);
    old.online_migration("TableA", &[])
        .run()
        .code(2)
        .stderr_has("needs duplication from Pegasus 2.4");

    site.with_traffic("TableA", 100);
    let out = site.online_migration("TableA", &[]).run();
    out.code(0).stderr_has("pending mutations");
    assert!(summary_value(&out.stderr, "target_qps") >= 80.0);
    assert_eq!(
        site.duplications_added(),
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
    site.with_traffic("TableM", 150);
    site.fault("non_idempotent", json!({"ClusterA": 1}));
    // A ZooKeeper update that did nothing.
    let params = replace_param(online_params(&site, "TableM", &[]), "zk_command=true");
    site.ferry(online_migration::PROCEDURE, &params)
        .yes()
        .run()
        .code(1)
        .stderr_has("the migration does not verify")
        .stderr_has("ClusterB.TableM serves 0.0 requests/s")
        .stderr_has("ClusterA: read_failed_requests = ")
        .stderr_has("ClusterA: dup_rejected_non_idempotent_write_requests = ")
        .stderr_has("del_app_envs replica.deny_client_request");

    // Fixed: the right ZooKeeper update, from its step on.
    site.clear_fault("non_idempotent");
    let out = site
        .online_migration("TableM", &[])
        .starting_at("switch-zookeeper")
        .run();
    out.code(0).stderr_has("step switch-zookeeper: ok");
    assert_eq!(site.duplications_added().len(), 1);
    assert!(summary_value(&out.stderr, "target_qps") > 100.0);
}

#[test]
fn killed_online_migration_resumes_without_adding_the_duplication_again() {
    let site = Site::new("2.6.0-SNAPSHOT", 40, 4, true);
    site.with_traffic("TableM", 100);
    let slow_migration = || site.online_migration("TableM", &["poll_interval=0.5"]);
    kill_when(slow_migration(), || site.calls_with("query_dup").len() >= 3);
    assert_eq!(site.source_denial(), None);

    slow_migration()
        .run()
        .code(0)
        .stderr_has("step start-duplication: already done, skipping");
    assert_eq!(site.duplications_added().len(), 1);
}
