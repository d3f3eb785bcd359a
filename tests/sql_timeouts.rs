//! SQL connect and query timeouts against real MariaDB and PostgreSQL servers (started by
//! tests/run.sh), and against a server that accepts the TCP connection and never speaks: nothing
//! hangs, the error names the server and the limit, a timed-out statement is cancelled on the
//! server, its transaction leaves nothing behind, and the pool goes on working.

use crate::common;

use std::net::TcpListener;
use std::process::Command;
use std::sync::{Arc, Mutex};

use common::{Workspace, db};

/// A TCP server that accepts connections and never answers (a stalled server, a black-holing
/// firewall after the SYN): MySQL clients wait for the handshake, PostgreSQL clients for the
/// answer to their startup message.
fn silent_server() -> (u16, Arc<Mutex<Vec<std::net::TcpStream>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = held.clone();
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            keep.lock().unwrap().push(s);
        }
    });
    (port, held)
}

/// Runs a script with ferry under coreutils `timeout`, so a hang fails the test (exit 124)
/// instead of blocking the suite.
fn run_guarded(ws: &Workspace, script: &str, params: &[(&str, &str)]) -> (i32, String, String) {
    ws.write("t.lua", script);
    let mut cmd = Command::new("timeout");
    cmd.args(["120", env!("CARGO_BIN_EXE_ferry"), "run", "./t.lua", "-q"])
        .current_dir(ws.path())
        .env("FERRY_NO_BARS", "1")
        .env_remove("RUST_LOG");
    for (k, v) in params {
        cmd.args(["-p", &format!("{k}={v}")]);
    }
    let out = cmd.output().expect("timeout and ferry run");
    let code = out.status.code().unwrap_or(-1);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_ne!(
        code, 124,
        "ferry hung (killed after 120 s)\n{stdout}\n{stderr}"
    );
    (code, stdout, stderr)
}

#[test]
fn a_server_that_never_answers_ends_in_a_connect_timeout_naming_it() {
    let (port, _held) = silent_server();
    let ws = Workspace::new();
    let script = r#"
local p = ferry.params{{name = "port", type = "string", required = true, doc = "port"}}
for _, scheme in ipairs{"mysql", "postgres"} do
  local url = scheme .. "://ferry:Sekr1tPw@127.0.0.1:" .. p.port .. "/x"
  local ok, err = pcall(ferry.sql.connect, url, {connect_timeout = 1})
  assert(not ok, scheme .. ": connected to a silent server")
  assert(err.kind == "timeout", scheme .. ": " .. err.kind .. ": " .. err.message)
  assert(err.message:find("127.0.0.1:" .. p.port, 1, true), err.message)
  assert(err.message:find("connect_timeout", 1, true), err.message)
  assert(not err.message:find("Sekr1tPw", 1, true), "password in the message")
  print(scheme .. " timed out: " .. err.message)
end
local ok, err = pcall(ferry.sql.connect, "mysql://x@127.0.0.1:" .. p.port .. "/x", {connect_timeout = 0})
assert(not ok and err.kind == "invalid_input", "a zero timeout was accepted")
ok, err = pcall(ferry.sql.connect, "mysql://x@127.0.0.1:" .. p.port .. "/x", {conect_timeout = 1})
assert(not ok and err.message:find("connect_timeout", 1, true), "a misspelled option was accepted")
print("connect ok")
"#;
    let (code, stdout, stderr) = run_guarded(&ws, script, &[("port", &port.to_string())]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("connect ok"), "{stdout}");
    assert!(stdout.contains("mysql timed out") && stdout.contains("postgres timed out"));
    assert!(!stderr.contains("Sekr1tPw") && !stdout.contains("Sekr1tPw"));
}

/// The same script for both servers: a statement that outlives query_timeout fails with kind
/// timeout, is no longer running on the server, its transaction's insert is gone, db:rows times
/// out the same way, and the pool then runs statements as before.
const QUERY_SCRIPT: &str = r#"
local p = ferry.params{{name = "url", type = "string", secret = true, required = true, doc = "db"},
                       {name = "sleep", type = "string", required = true, doc = "a 30 s statement"},
                       {name = "running", type = "string", required = true, doc = "count of such statements"}}
local db = ferry.sql.connect(p.url, {query_timeout = 1, pool_size = 4})
db:exec("CREATE TABLE t (id INT PRIMARY KEY)")

local function expect_timeout(what, f)
  local ok, err = pcall(f)
  assert(not ok, what .. " finished")
  assert(err.kind == "timeout", what .. ": " .. err.kind .. ": " .. err.message)
  assert(err.message:find("query_timeout", 1, true), err.message)
  assert(err.message:find("cancelled on the server", 1, true), err.message)
  assert(not err.retryable, "a query timeout is retryable")
  print(what .. ": " .. err.message)
end

expect_timeout("query", function() return db:query(p.sleep) end)
expect_timeout("rows", function() for _ in db:rows(p.sleep) do end end)
expect_timeout("transaction", function()
  db:transaction(function(tx)
    tx:exec("INSERT INTO t VALUES (1)")
    tx:query(p.sleep)
  end)
end)

-- The cancel reaches the server before the error returns; PostgreSQL ends the backend's
-- statement asynchronously, so allow it a moment.
local left
for _ = 1, 50 do
  left = tonumber(db:query(p.running)[1].n)
  if left == 0 then break end
  ferry.task.sleep(0.1)
end
assert(left == 0, left .. " timed-out statements still run on the server")
assert(tonumber(db:query("SELECT COUNT(*) AS n FROM t")[1].n) == 0, "the timed-out transaction's row is there")
for i = 1, 8 do assert(tonumber(db:query("SELECT " .. i .. " AS n")[1].n) == i) end
db:exec("DROP TABLE t")
print("query ok")
"#;

#[test]
fn a_statement_past_query_timeout_is_cancelled_on_mariadb() {
    let Some(_) = db::mysql_url_or_skip() else {
        return;
    };
    let url = db::fresh_mysql_db("qtimeout");
    let ws = Workspace::new();
    let (code, stdout, stderr) = run_guarded(
        &ws,
        QUERY_SCRIPT,
        &[
            ("url", &url),
            ("sleep", "SELECT SLEEP(30) AS s"),
            (
                "running",
                "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT SLEEP(30)%'",
            ),
        ],
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("query ok"), "{stdout}");
    db::drop_mysql_db(&url);
}

#[test]
fn a_statement_past_query_timeout_is_cancelled_on_postgres() {
    let Some(_) = db::postgres_url_or_skip() else {
        return;
    };
    let url = db::fresh_postgres_db("qtimeout");
    let ws = Workspace::new();
    let (code, stdout, stderr) = run_guarded(
        &ws,
        QUERY_SCRIPT,
        &[
            ("url", &url),
            ("sleep", "SELECT pg_sleep(30) AS s"),
            (
                "running",
                "SELECT COUNT(*) AS n FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(30)%' AND state = 'active'",
            ),
        ],
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("query ok"), "{stdout}");
    db::drop_postgres_db(&url);
}
