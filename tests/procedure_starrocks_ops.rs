//! starrocks-sync's operation against the StarRocks cluster doubles (tests/starrocks/): cutover,
//! FE settings, disk limit, progress lines, state dir, encrypted passwords, the loop.

use crate::common;

use crate::starrocks::double;
use crate::starrocks::site;

use common::db;
use double::{LoadFault, StarRocks};
use site::{DST_PW, SRC_PW, field, progress_events, site};
use std::time::{Duration, Instant};

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
        .stderr_has("check source_fe_host, source_fe_query_port, the user/password");
    assert!(!denied.stderr.contains("not-it"), "{}", denied.stderr);
    let wrong = s.run(&["-p", "target_cluster_password_secret_key=other"]);
    wrong.code(2).stderr_has(
        "target_cluster_password does not decrypt with target_cluster_password_secret_key",
    );
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
fn jdbc_connect_timeout_ms_bounds_the_login_to_a_silent_fe() {
    let Some(s) = site("") else { return };
    // A "FE" that accepts the TCP connection and never sends the MySQL handshake.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = std::thread::spawn(move || {
        let mut kept = Vec::new();
        for c in silent.incoming().flatten() {
            kept.push(c);
            if kept.len() > 16 {
                break;
            }
        }
    });
    let out = s.run(&[
        "-p",
        &format!("source_fe_query_port={port}"),
        "-p",
        "jdbc_connect_timeout_ms=1500",
    ]);
    out.code(1)
        .stderr_has(&format!(
            "cannot log in to the source cluster's FE query port 127.0.0.1:{port}"
        ))
        .stderr_has("no answer within 1.5 s (connect_timeout)");
    drop(held);
    s.stop();
}
