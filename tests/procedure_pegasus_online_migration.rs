//! pegasus-online-migration against the Pegasus double (tests/doubles/pegasus/: the shell,
//! admin-cli, meta/replica HTTP endpoints as small Python programs keeping two clusters' state in
//! files, with client traffic that follows MetaProxy's ZooKeeper node, answering in the output
//! formats of ../shared/reference/pegasus.md, 2.3 to 2.6). Pegasus itself cannot run here.

use crate::pegasus::double;
use crate::pegasus::online_migration;

use double::{RunFlags, Site, kill_when, replace_param, wait_until};
use online_migration::{online_params, summary_value};
use serde_json::json;

#[test]
fn online_migration_blocks_writes_drains_switches_then_blocks_reads_on_2_6() {
    let site = Site::new("2.6.0-SNAPSHOT", 150, 8, true);
    site.with_traffic("TableA", 200);
    let out = site.online_migration("TableA", &[]).run();
    out.code(0)
        // query_dup -d keys entries "1", "2"...: the duplication is found by its dupid field.
        .stderr_lacks("is gone")
        .stderr_has("query_dup -d partition_states")
        .stderr_has("refuses writes (timeout*write)")
        .stderr_has("0 mutations not confirmed yet (8/8 partitions reported")
        .stderr_has("drained: every partition's confirmed decree is its last committed decree")
        .stderr_has("refuses client requests (reconfig*all)")
        .stderr_has("QPS: ClusterA.TableA 0.0");
    let target_qps = summary_value(&out.stderr, "target_qps");
    assert!(
        (160.0..=260.0).contains(&target_qps),
        "target QPS {target_qps}"
    );
    assert_eq!(
        site.duplications_added(),
        vec!["shell: add_dup TableA ClusterB -s"]
    );
    assert_eq!(site.row_count("ClusterB", "TableA"), 150);
    // The order of table-migrator (migrator.go, switcher.go): writes blocked, drained, MetaProxy
    // switched, reads blocked, and then the duplication removed.
    let dupid = site.calls_with("remove_dup")[0]
        .rsplit(' ')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(
        site.events(),
        vec![
            "ClusterA.TableA replica.deny_client_request=timeout*write".to_string(),
            "zk TableA -> ClusterB (drained: True, writes open: False)".into(),
            "ClusterA.TableA replica.deny_client_request=reconfig*all".into(),
            format!("remove_dup TableA {dupid}"),
        ]
    );
    assert!(
        site.app("ClusterA", "TableA")["dups"]
            .as_object()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        site.app_env("ClusterB", "TableA", "replica.deny_client_request"),
        None
    );
    let zk: serde_json::Value = serde_json::from_str(&site.ws.read("state/zk/TableA")).unwrap();
    assert_eq!(zk["cluster_name"], "ClusterB");
    assert_eq!(zk["meta_addrs"], site.metas("ClusterB"));
}

#[test]
fn online_migration_refuses_a_renamed_target_because_metaproxy_keeps_the_name() {
    for version in ["2.5.0", "2.6.0-SNAPSHOT"] {
        let site = Site::new(version, 10, 4, true);
        site.online_migration("TableM", &[])
            .run()
            .code(2)
            .stderr_has("online migration cannot rename the table")
            .stderr_has("MetaProxy, which asks the target cluster for a table named TableA");
        assert!(site.duplications_added().is_empty());
    }
}

#[test]
fn online_migration_on_2_5_drains_by_the_replica_servers_and_sums_counter_snapshots() {
    let old = Site::new("2.3.0", 60, 4, true);
    old.online_migration("TableA", &[])
        .run()
        .code(2)
        .stderr_has("needs duplication from Pegasus 2.4");

    let site = Site::new("2.5.0", 60, 4, true);
    site.with_traffic("TableA", 100);
    let out = site
        .online_migration("TableA", &["verify_window=2.5", "counter_interval=1"])
        .env("PEGASUS_DOUBLE_SNAPSHOT_INTERVAL", "1")
        .run();
    out.code(0)
        .stderr_has("/replica/duplication")
        .stderr_has("0 mutations not confirmed yet (4/4 partitions reported")
        .stderr_has("new perf-counter snapshot(s) of 2 replica server(s)");
    assert!(summary_value(&out.stderr, "target_qps") >= 80.0);
    assert_eq!(
        site.duplications_added(),
        vec!["shell: add_dup TableA ClusterB -s"]
    );
    assert!(
        site.http_log()
            .iter()
            .any(|l| l.contains("/replica/duplication?appid=2"))
    );
    assert!(
        site.calls_with("remote_command -t replica-server perf-counters-by-substr")
            .len()
            >= 4
    );
    assert_eq!(site.row_count("ClusterB", "TableA"), 60);
}

#[test]
fn online_migration_on_2_5_counts_a_burst_of_failures_the_servers_reporter_already_read() {
    let site = Site::new("2.5.0", 40, 4, true);
    site.with_traffic("TableA", 150);
    // 40 read failures on every ClusterA node early in the verify window. The servers' own
    // reporter reads (and so resets) the volatile counter every interval (1 s here), so a
    // /perfCounter read at the end of the window no longer sees them; its snapshots do.
    let run = site
        .online_migration("TableA", &["verify_window=2.5", "counter_interval=1"])
        .env("PEGASUS_DOUBLE_SNAPSHOT_INTERVAL", "1");
    let run = std::thread::spawn(move || run.run());
    // The burst must come after verify's first snapshot of every ClusterA node (which is left
    // out of the sum): wait for the double to have taken them, not merely for the shell calls to
    // be logged (the double logs a call before it answers it; a burst written in between went
    // into that first snapshot on a busy CI machine).
    wait_until(60, "verify did not take its first snapshots", || {
        site.state()["clusters"]["ClusterA"]["snapshots"]
            .as_object()
            .is_some_and(|s| s.len() >= 2)
    });
    site.ws.write("state/burst.json", r#"{"ClusterA": 40}"#);
    run.join()
        .unwrap()
        .code(1)
        .stderr_has("the migration does not verify")
        .stderr_has("ClusterA: recent.read.fail.count = 80");
}

#[test]
fn online_migration_fails_verification_when_metaproxy_still_points_at_the_source() {
    let site = Site::new("2.6.0-SNAPSHOT", 40, 4, true);
    site.with_traffic("TableA", 150);
    site.fault("non_idempotent", json!({"ClusterA": 1}));
    // A ZooKeeper update that did nothing.
    let params = replace_param(online_params(&site, "TableA", &[]), "zk_command=true");
    site.ferry(online_migration::PROCEDURE, &params)
        .yes()
        .run()
        .code(1)
        .stderr_has("the migration does not verify")
        .stderr_has("ClusterB.TableA serves 0.0 requests/s")
        .stderr_has("ClusterA: read_failed_requests = ")
        .stderr_has("ClusterA: dup_rejected_non_idempotent_write_requests = ")
        .stderr_has("del_app_envs replica.deny_client_request");

    // Fixed: the right ZooKeeper update, from its step on.
    site.clear_fault("non_idempotent");
    let out = site
        .online_migration("TableA", &[])
        .starting_at("switch-zookeeper")
        .run();
    out.code(0).stderr_has("step switch-zookeeper: ok");
    assert_eq!(site.duplications_added().len(), 1);
    assert!(summary_value(&out.stderr, "target_qps") > 100.0);
}

#[test]
fn killed_online_migration_resumes_without_adding_the_duplication_again() {
    let site = Site::new("2.6.0-SNAPSHOT", 40, 4, true);
    site.with_traffic("TableA", 100);
    let slow_migration = || site.online_migration("TableA", &["poll_interval=0.5"]);
    kill_when(slow_migration(), || site.calls_with("query_dup").len() >= 3);
    assert_eq!(site.source_denial(), None);

    slow_migration()
        .run()
        .code(0)
        .stderr_has("step start-duplication: already done, skipping");
    assert_eq!(site.duplications_added().len(), 1);
}

#[test]
fn online_migration_refuses_a_table_whose_replicas_are_not_data_version_1() {
    // admin-cli table-migrator (migrator.go MigrateTable step 1) asks every replica server's
    // /replica/data_version and migrates only data_version "1"; the double answers per replica.
    for version in ["2.5.0", "2.6.0-SNAPSHOT"] {
        let site = Site::new(version, 10, 4, true);
        site.edit_app("ClusterA", "TableA", |a| a["data_version"] = json!(0));
        site.online_migration("TableA", &[])
            .run()
            .code(1)
            .stderr_has("ClusterA.TableA cannot be migrated by duplication")
            .stderr_has("duplication supports data_version 1 only")
            .stderr_has("its replicas have data_version 0 on 8 replica(s)")
            .stderr_has("pegasus-copy-data");
        assert!(site.duplications_added().is_empty());
        assert!(
            site.http_log()
                .iter()
                .any(|l| l.contains("/replica/data_version?app_id=2"))
        );
    }
    // data_version 1 (what the double answers by default) passes, and says so.
    let site = Site::new("2.5.0", 10, 4, true);
    site.online_migration("TableA", &["verify_window=0.2"])
        .run()
        .code(0)
        .stderr_has("TableA has data_version 1 on all 8 replicas");
}

#[test]
fn online_migration_on_2_5_reports_a_duplication_the_replica_servers_dropped_as_gone() {
    // Once writes are blocked, the replica servers drop the duplication while query_dup -d still
    // lists it: every node with primaries of TableA answers /replica/duplication with 404 "no
    // duplication assigned for app [appid=2]" (replica_http_service.cpp
    // query_duplication_handler). That is a removed duplication, not a slow drain.
    let site = Site::new("2.5.0", 40, 4, true);
    site.with_traffic("TableA", 100);
    site.fault("replicas_drop_dups", json!(true));
    let started = std::time::Instant::now();
    site.online_migration("TableA", &["drain_timeout=20"])
        .run()
        .code(1)
        .stderr_lacks("did not drain within")
        .stderr_has("is gone: the replica servers of ClusterA no longer hold it")
        .stderr_has("no duplication assigned for app [appid=2]")
        .stderr_has("still lists it as DS_LOG")
        .stderr_has("ClusterA.TableA still refuses writes")
        .stderr_has("do not switch MetaProxy")
        .stderr_has("del_app_envs replica.deny_client_request")
        .stderr_has("--from-step start-duplication");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "reported only after {:?}",
        started.elapsed()
    );
    // MetaProxy was not switched.
    assert!(!site.ws.join("state/zk/TableA").exists());
}
