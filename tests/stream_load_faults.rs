//! starrocks-sync's Stream Loads through a bad network (issue 22): the TCP fault proxy
//! (tests/common/tcp_faults.rs) in front of the target FE's http port (`target_http_url`) or in
//! front of the BE the FE redirects a load to (the double's redirect names the proxy). Resets,
//! half-closed connections, a stall longer than the load's HTTP timeout, and a slow drip. A
//! Stream Load with a label is idempotent (a label that committed answers `Label Already Exists`),
//! so every fault is retried under the same label; the end state is exact: every table equal on
//! both sides, no staging table left, each label committed at most once.

use crate::common;
use crate::starrocks::site;

use std::collections::BTreeMap;
use std::process::Command;

use common::tcp_faults::{Fault, TcpFaults};

enum Hop {
    Fe,
    Be,
}

/// Runs starrocks-sync once under `timeout 240` (a hang fails the test instead of blocking it)
/// with the fault on `hop`, then checks the end state. Returns the run's stderr and the status of
/// every load the target saw (both empty when the test is skipped).
/// `times` connections get the fault (every one for `Drip`).
fn sync_through(
    hop: Hop,
    fault: Fault,
    after_bytes: u64,
    times: u64,
    extra: &[&str],
) -> (String, Vec<String>) {
    let Some(s) = site::site("") else {
        return Default::default();
    };
    let upstream = match hop {
        Hop::Fe => format!("127.0.0.1:{}", s.dst.http_port()),
        Hop::Be => format!("127.0.0.1:{}", s.dst.shared.be_http_port),
    };
    let proxy = TcpFaults::start(&upstream, fault, after_bytes, times);
    let mut args: Vec<String> = vec![
        "run".into(),
        "starrocks-sync".into(),
        "--yes".into(),
        "-p".into(),
        format!("conf_dir={}", s.ws.join("conf").display()),
    ];
    match hop {
        Hop::Fe => args.extend([
            "-p".into(),
            format!("target_http_url=http://127.0.0.1:{}", proxy.port),
        ]),
        Hop::Be => s.dst.meta().be_redirect_port = Some(proxy.port),
    }
    args.extend(extra.iter().map(|a| a.to_string()));
    let out = Command::new("timeout")
        .arg("240")
        .arg(env!("CARGO_BIN_EXE_ferry"))
        .args(&args)
        .current_dir(s.ws.path())
        .env("FERRY_NO_BARS", "1")
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("ferry starts");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let code = out.status.code().unwrap_or(-1);
    assert_ne!(code, 124, "ferry hung through the fault\n{err}");
    assert_eq!(code, 0, "the sync failed through the fault\n{err}");
    assert!(
        proxy.hits() >= 1,
        "the fault never tripped ({} hits)\n{err}",
        proxy.hits()
    );
    for t in ["orders", "customers"] {
        s.assert_same("shop", t);
    }
    assert_eq!(
        s.dst.tables("shop"),
        vec!["customers".to_string(), "orders".to_string()],
        "tables on the target (no staging table left)"
    );
    // Each label committed at most once (a second Success would be rows loaded twice).
    let mut committed: BTreeMap<String, usize> = BTreeMap::new();
    for l in s.dst.meta().loads.iter().filter(|l| l.status == "Success") {
        *committed.entry(l.label.clone()).or_default() += 1;
    }
    assert!(
        committed.values().all(|n| *n == 1),
        "labels committed twice: {committed:?}"
    );
    let statuses: Vec<String> = s
        .dst
        .meta()
        .loads
        .iter()
        .map(|l| l.status.clone())
        .collect();
    println!(
        "proxy hits {}, loads seen by the BE: {statuses:?}",
        proxy.hits()
    );
    for l in err.lines().filter(|l| l.contains("Stream Load")) {
        println!("{l}");
    }
    for d in ["shop", "scratch"] {
        let _ = s.src.sql(&format!("DROP DATABASE IF EXISTS `{d}`"));
    }
    let _ = s.dst.sql("DROP DATABASE IF EXISTS `shop`");
    drop(proxy);
    s.stop();
    (err, statuses)
}

#[test]
fn be_connection_reset_before_the_body_is_retried_under_the_same_label() {
    let (err, _) = sync_through(Hop::Be, Fault::Reset, 0, 2, &[]);
    assert!(
        err.is_empty() || err.contains("Stream Load attempt 1/3 failed"),
        "{err}"
    );
}

#[test]
fn fe_connection_reset_on_the_load_is_retried() {
    // The health probe's GET is shorter than 300 bytes; a Stream Load's PUT headers are longer.
    let (err, _) = sync_through(Hop::Fe, Fault::Reset, 300, 2, &[]);
    assert!(
        err.is_empty() || err.contains("Stream Load attempt 1/3 failed"),
        "{err}"
    );
}

#[test]
fn be_half_closed_after_the_body_is_retried_and_loads_once() {
    // The body reaches the BE and commits; the answer is lost; the retry under the same label
    // answers Label Already Exists, which counts as loaded.
    let (err, statuses) = sync_through(Hop::Be, Fault::HalfClose, 0, 2, &[]);
    assert!(
        err.is_empty() || statuses.iter().any(|s| s == "Label Already Exists"),
        "{statuses:?}\n{err}"
    );
}

#[test]
fn be_stalled_past_the_timeout_ends_in_a_timeout_naming_the_host_then_retries() {
    // The HTTP timeout of a load is load_timeout + 60 s: one stalled load costs a minute.
    let (err, _) = sync_through(Hop::Be, Fault::Stall, 0, 1, &["-p", "load_timeout=1s"]);
    if !err.is_empty() {
        let line = err
            .lines()
            .find(|l| l.contains("Stream Load attempt 1/3 failed"))
            .unwrap_or_else(|| panic!("no failed attempt logged\n{err}"));
        assert!(
            line.contains("127.0.0.1:") && (line.contains("timed out") || line.contains("timeout")),
            "{line}"
        );
    }
}

#[test]
fn slow_drip_on_both_hops_completes() {
    sync_through(Hop::Fe, Fault::Drip, 0, 0, &[]);
    sync_through(Hop::Be, Fault::Drip, 0, 0, &[]);
}
