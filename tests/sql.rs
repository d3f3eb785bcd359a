//! SQL against real MariaDB and PostgreSQL servers (started by tests/run.sh): the spec script in
//! both directions, dry run, bad connections, a killed and resumed copy, dropped connections.

use crate::common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Workspace, db};

fn lua(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/lua")
        .join(name)
        .display()
        .to_string()
}

fn servers() -> Option<(String, String)> {
    let my = db::mysql_url_or_skip()?;
    let pg = db::postgres_url_or_skip()?;
    Some((my, pg))
}

fn spec(url: &str, other: &str) {
    let ws = Workspace::new();
    ws.ferry()
        .args([
            "run",
            &lua("sql_spec.lua"),
            "-q",
            "-p",
            &format!("url={url}"),
            "-p",
            &format!("other={other}"),
        ])
        .run()
        .code(0)
        .stdout_has("sql ok");
}

#[test]
fn mariadb_spec_with_copies_to_postgres() {
    let Some(_) = servers() else { return };
    let a = db::fresh_mysql_db("spec_a");
    let b = db::fresh_postgres_db("spec_b");
    spec(&a, &b);
    db::drop_mysql_db(&a);
    db::drop_postgres_db(&b);
}

#[test]
fn postgres_spec_with_copies_to_mariadb() {
    let Some(_) = servers() else { return };
    let a = db::fresh_postgres_db("spec_c");
    let b = db::fresh_mysql_db("spec_d");
    spec(&a, &b);
    db::drop_postgres_db(&a);
    db::drop_mysql_db(&b);
}

#[test]
fn bad_connections_fail_with_the_server_words_and_no_password() {
    let Some((my, pg)) = servers() else { return };
    let ws = Workspace::new();
    let bad_my = db::with_password(&my, "Wr0ngPassw0rd");
    let bad_pg = db::with_password(&pg, "Wr0ngPassw0rd");
    let no_db = db::with_database(&my, "ferry_no_such_database");
    ws.write(
        "bad.lua",
        &format!(
            r#"
local function fails(url, kind, text)
  local ok, err = pcall(ferry.sql.connect, url)
  assert(not ok, url)
  assert(err.kind == kind, err.kind .. ": " .. err.message)
  assert(err.message:find(text, 1, true), err.message)
  assert(not err.message:find("Wr0ngPassw0rd", 1, true), "password in message")
end
fails({bad_my:?}, "auth", "ERROR 1045")
fails({bad_pg:?}, "auth", "ERROR 28P01")
fails({no_db:?}, "not_found", "ERROR 1049")
fails("mysql://ferry@127.0.0.1:1/x", "unavailable", "mysql://ferry@127.0.0.1:1/x")
fails("oracle://x", "invalid_input", "unknown database URL scheme")
print("bad ok")
"#
        ),
    );
    let out = ws.ferry().args(["run", "./bad.lua", "-q"]).run();
    out.code(0).stdout_has("bad ok");
    assert!(!out.stderr.contains("Wr0ngPassw0rd"));
}

#[test]
fn dry_run_runs_reads_and_reports_writes() {
    let Some(_) = servers() else { return };
    let url = db::fresh_mysql_db("dry");
    db::mysql_exec(
        &url,
        "CREATE TABLE t (id INT PRIMARY KEY, secret_col VARCHAR(64)); INSERT INTO t VALUES (1, 'x');",
    );
    let ws = Workspace::new();
    ws.write(
        "dry.lua",
        r#"
local p = ferry.params{{name = "url", type = "string", secret = true, required = true, doc = "db"},
                       {name = "pw", type = "string", secret = true, required = true, doc = "a secret value"}}
local db = ferry.sql.connect(p.url)
assert(db:query("SELECT COUNT(*) AS n FROM t")[1].n == 1)
assert(#db:query("SHOW TABLES") == 1)
assert(db:exec("INSERT INTO t VALUES (?, ?)", {2, p.pw}) == 0)
db:exec("DROP TABLE t")
db:transaction(function(tx) tx:exec("DELETE FROM t") end)
print("dry ok")
"#,
    );
    let out = ws
        .ferry()
        .args([
            "run",
            "./dry.lua",
            "--dry-run",
            "-p",
            &format!("url={url}"),
            "-p",
            "pw=TopSecretValue",
        ])
        .run();
    out.code(0)
        .stdout_has("dry ok")
        .stderr_has("would execute on")
        .stderr_has("INSERT INTO t VALUES (?, ?) with (2, ***)")
        .stderr_has("DROP TABLE t")
        .stderr_lacks("TopSecretValue");
    let rows = db::mysql_exec(&url, "SELECT COUNT(*) FROM t");
    assert_eq!(rows.trim(), "1", "dry run changed the table");
    db::drop_mysql_db(&url);
}

#[test]
fn a_killed_copy_resumes_without_duplicates_or_gaps() {
    let Some(_) = servers() else { return };
    let src = db::fresh_mysql_db("resume_src");
    let dst = db::fresh_mysql_db("resume_dst");
    db::seed_big(&src, 60_000);
    db::mysql_exec(
        &dst,
        "CREATE TABLE big (id BIGINT PRIMARY KEY, a VARCHAR(64), b VARCHAR(64), v VARCHAR(100))",
    );
    let ws = Workspace::new();
    let args = |rate: Option<&str>| {
        let mut a = vec![
            "run".to_string(),
            lua("sql_copy_job.lua"),
            "-p".into(),
            format!("src={src}"),
            "-p".into(),
            format!("dst={dst}"),
        ];
        if let Some(r) = rate {
            a.push("-p".into());
            a.push(format!("rate={r}"));
        }
        a
    };
    let mut f = ws.ferry().args(args(Some("6000")));
    f.cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = f.cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n: u64 = db::mysql_exec(&dst, "SELECT COUNT(*) FROM big")
            .trim()
            .parse()
            .unwrap_or(0);
        if n >= 10_000 {
            break;
        }
        assert!(Instant::now() < deadline, "the copy made no progress");
        assert!(child.try_wait().unwrap().is_none(), "the copy ended early");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before: u64 = db::mysql_exec(&dst, "SELECT COUNT(*) FROM big")
        .trim()
        .parse()
        .unwrap();
    assert!(before < 60_000, "killed too late");
    // The re-run changes only the throttle: the plan in the journal still applies.
    let out = ws.ferry().args(args(Some("10000000"))).run();
    out.code(0);
    let r = common::json_report(&out.stdout);
    assert_eq!(r["resumed"], true, "{r}");
    assert!(
        r["rows"].as_u64().unwrap() <= 60_000 - before,
        "rows copied again: {r}"
    );
    assert_eq!(r["target_rows"], 60_000, "{r}");
    assert_eq!(r["verified"], "checksum", "{r}");
    db::drop_mysql_db(&src);
    db::drop_mysql_db(&dst);
}

#[test]
fn dropped_connections_are_retried_not_silently_short() {
    let Some(_) = servers() else { return };
    for kind in ["mysql", "postgres"] {
        let src = db::fresh_mysql_db("drop_src");
        let dst = if kind == "mysql" {
            db::fresh_mysql_db("drop_dst")
        } else {
            db::fresh_postgres_db("drop_dst")
        };
        db::seed_big(&src, 30_000);
        let create = "CREATE TABLE big (id BIGINT PRIMARY KEY, a VARCHAR(64), b VARCHAR(64), v VARCHAR(100))";
        if kind == "mysql" {
            db::mysql_exec(&dst, create);
        } else {
            db::psql_exec(&dst, create);
        }
        // The target is reached through a proxy that cuts its first three connections after
        // 50 kB of client traffic: in the middle of INSERT statements.
        let u = url::Url::parse(&dst).unwrap();
        let proxy = common::tcp_cut::TcpCut::start(
            &format!("{}:{}", u.host_str().unwrap(), u.port().unwrap()),
            50_000,
            3,
        );
        let mut via = u.clone();
        via.set_port(Some(proxy.port)).unwrap();
        if kind == "mysql" {
            // mysql_async would otherwise switch to the server's Unix socket, around the proxy.
            via.set_query(Some("prefer_socket=false"));
        }
        let ws = Workspace::new();
        let out = ws
            .ferry()
            .args([
                "run",
                &lua("sql_copy_job.lua"),
                "-p",
                &format!("src={src}"),
                "-p",
                &format!("dst={via}"),
                "-p",
                "workers=2",
            ])
            .run();
        out.code(0);
        let r = common::json_report(&out.stdout);
        assert!(proxy.cuts() >= 1, "{kind}: no connection was cut");
        assert!(
            r["retries"].as_u64().unwrap() >= 1,
            "{kind}: no batch was retried: {r}"
        );
        assert_eq!(r["target_rows"], 30_000, "{kind}: {r}");
        assert_eq!(r["verified"], "checksum");
    }
}
