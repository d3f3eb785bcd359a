//! copy_table through a bad network, against real MariaDB and PostgreSQL (started by
//! tests/run.sh): a connection that stalls mid-INSERT (with query_timeout), one half-closed by
//! the network, and a slow drip on the source. Each ends with every row copied exactly once
//! (count and checksum), the faults retried where that is safe, and nothing hanging.

use crate::common;

use std::process::Command;

use common::tcp_faults::{Fault, TcpFaults};
use common::{Workspace, db};

const ROWS: usize = 20_000;

const JOB: &str = r#"
local p = ferry.params{
  {name = "src", type = "string", required = true, secret = true, doc = "source"},
  {name = "dst", type = "string", required = true, secret = true, doc = "target"},
}
local src = ferry.sql.connect(p.src, {query_timeout = 3, connect_timeout = 3})
local dst = ferry.sql.connect(p.dst, {query_timeout = 3, connect_timeout = 3})
local r = ferry.step("copy", "Copy", function()
  return ferry.sql.copy_table(src, dst, {table = "big", workers = 2, batch = 500, verify = "checksum"})
end)
print(ferry.json.encode(r))
"#;

/// The URL through a proxy on `port` (and no Unix-socket shortcut around it for MySQL).
fn via(url: &str, port: u16) -> String {
    let mut u = url::Url::parse(url).unwrap();
    u.set_port(Some(port)).unwrap();
    if u.scheme() == "mysql" {
        u.set_query(Some("prefer_socket=false"));
    }
    u.to_string()
}

fn upstream(url: &str) -> String {
    let u = url::Url::parse(url).unwrap();
    format!("{}:{}", u.host_str().unwrap(), u.port().unwrap())
}

/// Runs the job under `timeout 180` (a hang fails the test instead of blocking the suite).
fn run(ws: &Workspace, src: &str, dst: &str) -> (i32, String, String) {
    ws.write("job.lua", JOB);
    let out = Command::new("timeout")
        .args(["180", env!("CARGO_BIN_EXE_ferry"), "run", "./job.lua"])
        .args(["-p", &format!("src={src}"), "-p", &format!("dst={dst}")])
        .current_dir(ws.path())
        .env("FERRY_NO_BARS", "1")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let code = out.status.code().unwrap_or(-1);
    let (o, e) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert_ne!(code, 124, "ferry hung through the fault\n{e}");
    (code, o, e)
}

fn case(fault: Fault, on_target: bool, kind: &str) {
    let src = db::fresh_mysql_db("netf_src");
    db::seed_big(&src, ROWS);
    let dst = if kind == "mysql" {
        db::fresh_mysql_db("netf_dst")
    } else {
        db::fresh_postgres_db("netf_dst")
    };
    let create =
        "CREATE TABLE big (id BIGINT PRIMARY KEY, a VARCHAR(64), b VARCHAR(64), v VARCHAR(100))";
    if kind == "mysql" {
        db::mysql_exec(&dst, create);
    } else {
        db::psql_exec(&dst, create);
    }
    let behind = if on_target { &dst } else { &src };
    let proxy = TcpFaults::start(&upstream(behind), fault, 60_000, 2);
    let (s, d) = if on_target {
        (src.clone(), via(&dst, proxy.port))
    } else {
        (via(&src, proxy.port), dst.clone())
    };
    let ws = Workspace::new();
    let (code, out, err) = run(&ws, &s, &d);
    assert_eq!(code, 0, "{fault:?} {kind}: {err}");
    assert!(
        proxy.hits() >= 1,
        "{fault:?} {kind}: the fault never happened"
    );
    let r = common::json_report(&out);
    assert_eq!(r["target_rows"], ROWS, "{fault:?} {kind}: {r}");
    assert_eq!(r["source_rows"], ROWS, "{fault:?} {kind}: {r}");
    assert_eq!(r["verified"], "checksum", "{fault:?} {kind}: {r}");
    if fault != Fault::Drip {
        assert!(
            r["retries"].as_u64().unwrap() >= 1,
            "{fault:?} {kind}: nothing was retried: {r}\n{err}"
        );
    }
    if fault == Fault::Stall {
        assert!(err.contains("query_timeout"), "{fault:?} {kind}: {err}");
    }
    db::drop_mysql_db(&src);
    if kind == "mysql" {
        db::drop_mysql_db(&dst);
    } else {
        db::drop_postgres_db(&dst);
    }
}

#[test]
fn a_target_connection_that_stalls_mid_insert_times_out_and_is_retried() {
    if db::mysql_url_or_skip().is_none() || db::postgres_url_or_skip().is_none() {
        return;
    }
    case(Fault::Stall, true, "mysql");
    case(Fault::Stall, true, "postgres");
}

#[test]
fn a_target_connection_half_closed_by_the_network_is_retried() {
    if db::mysql_url_or_skip().is_none() || db::postgres_url_or_skip().is_none() {
        return;
    }
    case(Fault::HalfClose, true, "mysql");
    case(Fault::HalfClose, true, "postgres");
}

#[test]
fn a_slow_drip_from_the_source_still_copies_every_row_once() {
    if db::mysql_url_or_skip().is_none() {
        return;
    }
    case(Fault::Drip, false, "mysql");
}
