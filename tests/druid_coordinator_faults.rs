//! druid-deep-storage's final Coordinator check through a bad network (issue 22): the TCP fault
//! proxy (tests/common/tcp_faults.rs) between ferry and the Coordinator double
//! (tests/common/druid.rs) serving `loadstatus` and the metadata API from the live metadata
//! store (MariaDB). Its requests are GETs, so resets and half-closed connections are retried and
//! the run completes; a slow drip completes; a Coordinator that stalls past the wait
//! (`load_timeout`) ends in a timeout error naming its host, within the wait rather than minutes
//! after it, and a re-run once it answers completes. The end state is exact each time: every
//! payload rewritten once (the expected payloads, one backup table), every object in place.

use crate::common;

use std::process::Command;

use common::db;
use common::druid::{self as fx, Seg, expected};
use common::tcp_faults::{Fault, TcpFaults};

/// The site, its new deep storage (a folder) and a Coordinator double reading the live metadata.
fn setup(hint: &str) -> Option<(fx::Site, std::path::PathBuf, fx::Coordinator)> {
    db::mysql_url_or_skip()?;
    let site = fx::site(db::fresh_mysql_db(hint), true);
    let new_dir = site.ws.join("new-deep-storage");
    let coord = fx::Coordinator::start_with(fx::CoordinatorSpec {
        datasources: vec!["wiki".into(), "logs".into(), "big".into()],
        start_pct: 40.0,
        steps: 3,
        empty_polls: 0,
        view: Some(fx::View::Live(site.url.clone())),
    });
    Some((site, new_dir, coord))
}

/// `ferry run druid-deep-storage` against the site with the Coordinator at `coordinator`, under
/// `timeout 150` (a hang fails the test instead of blocking it): (exit code, stderr).
fn run(
    site: &fx::Site,
    new_dir: &std::path::Path,
    coordinator: &str,
    extra: &[&str],
) -> (i32, String) {
    let f = fx::ferry_cmd(site, &[]);
    let mut cmd = Command::new("timeout");
    cmd.arg("150")
        .arg(f.cmd.get_program())
        .args(f.cmd.get_args());
    for (k, v) in f.cmd.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    if let Some(d) = f.cmd.get_current_dir() {
        cmd.current_dir(d);
    }
    cmd.args(["-p", &format!("target=file://{}", new_dir.display())])
        .args(["-p", &format!("coordinator_url={coordinator}")])
        .args(["-p", "poll_interval=0.05"])
        .args(extra)
        .stdin(std::process::Stdio::null());
    let out = cmd.output().expect("ferry starts");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let code = out.status.code().unwrap_or(-1);
    assert_ne!(code, 124, "ferry hung through the fault\n{err}");
    (code, err)
}

fn local_spec(new_dir: &std::path::Path) -> impl Fn(&str) -> String + '_ {
    move |dir: &str| {
        format!(
            r#"{{"type":"local","path":"{}/{dir}/index.zip"}}"#,
            new_dir.display()
        )
    }
}

/// Every payload rewritten once, one backup table, every moved object in place.
fn check_end_state(site: &fx::Site, new_dir: &std::path::Path, err: &str) {
    assert_eq!(
        fx::payloads(&site.url),
        expected(&site.segs, local_spec(new_dir)),
        "{err}"
    );
    let backups = db::tsv_rows(&db::mysql_exec(
        &site.url,
        "SHOW TABLES LIKE 'druid_segments_backup_%';",
    ));
    assert_eq!(backups.len(), 1, "backup tables: {backups:?}\n{err}");
    for s in site.segs.iter().filter(|s: &&Seg| s.is_local()) {
        let key = format!("{}/index.zip", fx::expected_dir(&site.segs, s));
        assert!(new_dir.join(&key).is_file(), "{key} missing\n{err}");
    }
}

fn completes_through(fault: Fault, times: u64, hint: &str) {
    let Some((site, new_dir, coord)) = setup(hint) else {
        return;
    };
    let proxy = TcpFaults::start(&coord.server.addr.to_string(), fault, 0, times);
    let (code, err) = run(
        &site,
        &new_dir,
        &format!("http://127.0.0.1:{}", proxy.port),
        &["-p", "load_timeout=60s"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(proxy.hits() >= 1, "the fault never tripped\n{err}");
    assert!(coord.polls() >= 3, "polled {} times\n{err}", coord.polls());
    check_end_state(&site, &new_dir, &err);
    db::drop_mysql_db(&site.url);
}

#[test]
fn coordinator_connections_reset_are_retried() {
    completes_through(Fault::Reset, 3, "coord_reset");
}

#[test]
fn coordinator_connections_half_closed_are_retried() {
    completes_through(Fault::HalfClose, 3, "coord_half");
}

#[test]
fn coordinator_slow_drip_completes() {
    completes_through(Fault::Drip, 0, "coord_drip");
}

/// Regression: the Coordinator's GETs took ferry.http's default 60 s timeout and 3 retries, so a
/// stalled Coordinator held the verify step about 4 minutes per check past `load_timeout`.
#[test]
fn stalled_coordinator_ends_in_a_timeout_naming_it_and_a_rerun_completes() {
    let Some((site, new_dir, coord)) = setup("coord_stall") else {
        return;
    };
    let proxy = TcpFaults::start(&coord.server.addr.to_string(), Fault::Stall, 0, u64::MAX);
    let via = format!("http://127.0.0.1:{}", proxy.port);
    let (code, err) = run(&site, &new_dir, &via, &["-p", "load_timeout=3s"]);
    assert_ne!(code, 0, "{err}");
    assert!(
        err.contains("timed out") && err.contains(&via),
        "the error names the wait and the Coordinator\n{err}"
    );
    assert!(err.contains("verify"), "the error names the step\n{err}");
    assert!(!err.contains(&fx::password(&site.url)), "{err}");
    // The metadata was rewritten before the check; the re-run (the Coordinator answers again)
    // only verifies.
    check_end_state(&site, &new_dir, &err);
    drop(proxy);
    let (code, err2) = run(&site, &new_dir, &coord.url(), &["-p", "load_timeout=60s"]);
    assert_eq!(code, 0, "{err2}");
    check_end_state(&site, &new_dir, &err2);
    db::drop_mysql_db(&site.url);
}
