//! Database helpers for integration tests.
//!
//! The servers come from `tests/setup/mariadb.sh` and `tests/setup/postgres.sh` (run by
//! `tests/run.sh`), which export:
//!
//! - `FERRY_TEST_MYSQL_URL`, e.g. `mysql://ferry:ferry@127.0.0.1:13306/` (no database), and
//! - `FERRY_TEST_POSTGRES_URL`, e.g. `postgres://ferry:ferry@127.0.0.1:15432/postgres`.
//!
//! When a variable is unset the test should skip (and say so) rather than fail, except under CI=true
//! where `mysql_url_or_skip`/`postgres_url_or_skip` fail it (a CI run must not pass by skipping):
//!
//! ```ignore
//! let Some(_) = db::mysql_url() else { return db::skip("FERRY_TEST_MYSQL_URL is not set") };
//! let url = db::fresh_mysql_db("copy_basic"); // mysql://ferry:ferry@127.0.0.1:13306/ft_copy_basic_…
//! db::mysql_exec(&url, "CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t VALUES (1), (2);");
//! assert_eq!(db::mysql_exec(&url, "SELECT COUNT(*) FROM t").trim(), "2");
//! ```
//!
//! SQL runs through the command-line clients (`mariadb` or `mysql`, and `psql`), so the tests need
//! no Rust SQL driver. Several statements may be given at once (separated by `;`); the output of
//! queries is one line per row, columns separated by tabs, NULL printed as `NULL`, no header
//! (see [`tsv_rows`]). mysql escapes tabs, newlines and backslashes inside values as `\t`, `\n`,
//! `\\`; psql prints them raw.
#![allow(dead_code)]

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

pub const MYSQL_URL_VAR: &str = "FERRY_TEST_MYSQL_URL";
pub const POSTGRES_URL_VAR: &str = "FERRY_TEST_POSTGRES_URL";

/// Databases made by `fresh_*_db` start with this prefix; ones older than this are dropped the
/// first time a test process makes a fresh database, so reruns do not pile them up.
const DB_PREFIX: &str = "ft_";
const STALE_AFTER_SECS: u64 = 12 * 3600;

fn env_url(var: &str) -> Option<String> {
    std::env::var(var)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// The MariaDB/MySQL server URL (`FERRY_TEST_MYSQL_URL`), or None when unset/empty.
pub fn mysql_url() -> Option<String> {
    env_url(MYSQL_URL_VAR)
}

/// The PostgreSQL server URL (`FERRY_TEST_POSTGRES_URL`), or None when unset/empty.
pub fn postgres_url() -> Option<String> {
    env_url(POSTGRES_URL_VAR)
}

/// Says why the calling test is skipped: `SKIPPED: <test name>: <reason>`.
///
/// Written straight to the process's stderr (not through the test harness's output capture), so
/// that it shows up in a plain `cargo test` run too.
pub fn skip(reason: &str) {
    let name = std::thread::current()
        .name()
        .filter(|n| *n != "main")
        .map(|n| format!("{n}: "))
        .unwrap_or_default();
    let _ = writeln!(std::io::stderr(), "SKIPPED: {name}{reason}");
}

/// Skips the calling test with `reason` ([`skip`]), except under CI=true ([`on_ci`]), where the
/// servers are set up by tests/run.sh and a missing one is a broken setup: then it panics.
pub fn skip_or_fail_on_ci(reason: &str) {
    if on_ci() {
        panic!("CI=true and {reason}");
    }
    skip(reason);
}

/// Like [`mysql_url`], but prints the standard skip line when the variable is unset (and fails
/// the test under CI=true, see [`skip_or_fail_on_ci`]):
/// `let Some(server) = db::mysql_url_or_skip() else { return };`
pub fn mysql_url_or_skip() -> Option<String> {
    let url = mysql_url();
    if url.is_none() {
        skip_or_fail_on_ci(&format!(
            "{MYSQL_URL_VAR} is not set (tests/run.sh sets it; or eval \"$(bash tests/setup/mariadb.sh)\")"
        ));
    }
    url
}

/// Like [`postgres_url`], but prints the standard skip line when the variable is unset (and
/// fails the test under CI=true).
pub fn postgres_url_or_skip() -> Option<String> {
    let url = postgres_url();
    if url.is_none() {
        skip_or_fail_on_ci(&format!(
            "{POSTGRES_URL_VAR} is not set (tests/run.sh sets it; or eval \"$(bash tests/setup/postgres.sh)\")"
        ));
    }
    url
}

// ---------------------------------------------------------------------------------------------
// Fresh databases

/// Creates a new, empty, uniquely named database on the `FERRY_TEST_MYSQL_URL` server (dropping
/// one of that name first) and returns its full URL. Panics when the variable is unset: check
/// [`mysql_url`] first.
pub fn fresh_mysql_db(name_hint: &str) -> String {
    let server = mysql_url().unwrap_or_else(|| {
        panic!("{MYSQL_URL_VAR} is not set: check db::mysql_url() first and skip the test")
    });
    static CLEANED: OnceLock<()> = OnceLock::new();
    CLEANED.get_or_init(|| drop_stale_mysql_dbs(&server));
    let name = unique_db_name(name_hint);
    mysql_exec(
        &server,
        &format!(
            "DROP DATABASE IF EXISTS `{name}`; CREATE DATABASE `{name}` CHARACTER SET utf8mb4;"
        ),
    );
    with_database(&server, &name)
}

/// Creates a new, empty, uniquely named database on the `FERRY_TEST_POSTGRES_URL` server
/// (dropping one of that name first) and returns its full URL. Panics when the variable is unset:
/// check [`postgres_url`] first.
pub fn fresh_postgres_db(name_hint: &str) -> String {
    let server = postgres_url().unwrap_or_else(|| {
        panic!("{POSTGRES_URL_VAR} is not set: check db::postgres_url() first and skip the test")
    });
    static CLEANED: OnceLock<()> = OnceLock::new();
    CLEANED.get_or_init(|| drop_stale_postgres_dbs(&server));
    let name = unique_db_name(name_hint);
    // psql runs each statement in its own transaction (no -1), as DROP/CREATE DATABASE need.
    psql_exec(
        &server,
        &format!(
            "DROP DATABASE IF EXISTS \"{name}\";\nCREATE DATABASE \"{name}\" ENCODING 'UTF8';"
        ),
    );
    with_database(&server, &name)
}

/// Drops the database a `fresh_mysql_db` URL points at (tests may call it when done; leftovers
/// are dropped by later runs after a while anyway).
pub fn drop_mysql_db(url: &str) {
    let name = url_database(url).expect("the URL names a database");
    mysql_exec(
        &with_database(url, ""),
        &format!("DROP DATABASE IF EXISTS `{}`;", name.replace('`', "``")),
    );
}

/// Drops the database a `fresh_postgres_db` URL points at (connecting to `postgres`).
pub fn drop_postgres_db(url: &str) {
    let name = url_database(url).expect("the URL names a database");
    psql_exec(
        &with_database(url, "postgres"),
        &format!("DROP DATABASE IF EXISTS \"{}\";", name.replace('"', "\"\"")),
    );
}

/// `ft_<hint>_<unix secs>_<pid>_<n>`: unique across concurrent test processes, at most 63 bytes
/// (PostgreSQL's limit; MySQL's is 64), lowercase ASCII so that no quoting subtleties arise.
fn unique_db_name(hint: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let mut h: String = hint
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    h.truncate(24);
    let h = h.trim_matches('_');
    let h = if h.is_empty() { "db" } else { h };
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{DB_PREFIX}{h}_{}_{}_{n}", now_secs(), std::process::id())
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The creation time encoded in a `unique_db_name`, if the name is one.
fn db_name_time(name: &str) -> Option<u64> {
    let rest = name.strip_prefix(DB_PREFIX)?;
    let mut parts = rest.rsplitn(4, '_');
    let (_n, _pid, ts) = (parts.next()?, parts.next()?, parts.next()?);
    parts.next()?; // the hint
    ts.parse().ok()
}

fn is_stale(name: &str) -> bool {
    db_name_time(name).is_some_and(|t| t + STALE_AFTER_SECS < now_secs())
}

/// Best effort: errors are ignored (another process may be dropping the same ones).
fn drop_stale_mysql_dbs(server: &str) {
    let Ok(out) = try_mysql_exec(server, "SHOW DATABASES LIKE 'ft\\_%'") else {
        return;
    };
    for name in out.lines().map(str::trim).filter(|n| is_stale(n)) {
        let _ = try_mysql_exec(server, &format!("DROP DATABASE IF EXISTS `{name}`"));
    }
}

fn drop_stale_postgres_dbs(server: &str) {
    let Ok(out) = try_psql_exec(
        server,
        "SELECT datname FROM pg_database WHERE datname LIKE 'ft\\_%'",
    ) else {
        return;
    };
    for name in out.lines().map(str::trim).filter(|n| is_stale(n)) {
        let _ = try_psql_exec(server, &format!("DROP DATABASE IF EXISTS \"{name}\""));
    }
}

// ---------------------------------------------------------------------------------------------
// Running SQL

/// Runs `sql` (one or more statements) against the database of `url` with the `mariadb`/`mysql`
/// client and returns its stdout (rows as tab-separated lines, no header). Fails the test with
/// the client's stderr when the client fails.
pub fn mysql_exec(url: &str, sql: &str) -> String {
    try_mysql_exec(url, sql).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `sql` with `psql` against `url` (stops at the first error) and returns its stdout (rows
/// as tab-separated lines, no header, NULL as `NULL`). Fails the test with psql's stderr when
/// psql fails.
pub fn psql_exec(url: &str, sql: &str) -> String {
    try_psql_exec(url, sql).unwrap_or_else(|e| panic!("{e}"))
}

/// [`mysql_exec`] returning the failure (a message with the client's stderr) instead of panicking.
pub fn try_mysql_exec(url: &str, sql: &str) -> Result<String, String> {
    try_mysql_exec_with(url, sql, &[])
}

/// [`try_mysql_exec`] with extra client options (for example `--local-infile=1`).
pub fn try_mysql_exec_with(url: &str, sql: &str, extra: &[&str]) -> Result<String, String> {
    let c = MysqlUrl::parse(url)?;
    let mut cmd = Command::new(mysql_client());
    cmd.arg("--no-defaults") // must come first: ignore ~/.my.cnf and /etc/mysql
        .arg("--protocol=TCP")
        .arg(format!("--host={}", c.host))
        .arg(format!("--port={}", c.port))
        .arg(format!("--user={}", c.user))
        .args([
            "--batch",
            "--skip-column-names",
            "--default-character-set=utf8mb4",
        ])
        .arg("--connect-timeout=10")
        // The password goes through the environment so it is not on the command line.
        .env("MYSQL_PWD", &c.password)
        .args(extra);
    if let Some(db) = c.database.as_deref().filter(|d| !d.is_empty()) {
        cmd.arg(format!("--database={db}"));
    }
    run_client(cmd, sql, "mysql", url)
}

/// [`psql_exec`] returning the failure (a message with psql's stderr) instead of panicking.
pub fn try_psql_exec(url: &str, sql: &str) -> Result<String, String> {
    let mut cmd = Command::new("psql");
    cmd.args(["-X", "-q", "-w", "-A", "-t"])
        .args(["-v", "ON_ERROR_STOP=1"])
        .args(["-P", "null=NULL", "-F", "\t"])
        .args(["-f", "-"])
        .args(["-d", url])
        .env("PGCONNECT_TIMEOUT", "10")
        .env("PGCLIENTENCODING", "UTF8")
        .env_remove("PGDATABASE")
        .env_remove("PGOPTIONS");
    run_client(cmd, sql, "psql", url)
}

/// Splits client output into rows of columns (tab-separated lines; empty lines dropped).
pub fn tsv_rows(out: &str) -> Vec<Vec<String>> {
    out.lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

/// `mariadb` when it runs, else `mysql`.
fn mysql_client() -> &'static str {
    static CLIENT: OnceLock<&'static str> = OnceLock::new();
    CLIENT.get_or_init(|| {
        for c in ["mariadb", "mysql"] {
            let ok = Command::new(c)
                .arg("--version")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return c;
            }
        }
        "mysql"
    })
}

fn run_client(mut cmd: Command, sql: &str, what: &str, url: &str) -> Result<String, String> {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| {
        format!(
            "cannot run the {what} client ({:?}): {e}; install it (tests/setup/*.sh do as root)",
            cmd.get_program()
        )
    })?;
    // Feed stdin from another thread: a big result could otherwise fill the stdout pipe while we
    // are still writing a big script.
    let mut stdin = child.stdin.take().expect("stdin pipe");
    let input = sql.as_bytes().to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
        let _ = stdin.write_all(b"\n");
    });
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{what} did not finish: {e}"))?;
    let _ = writer.join();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.success() {
        return Ok(stdout);
    }
    const MAX_SQL: usize = 2000;
    let shown = if sql.len() > MAX_SQL {
        let mut end = MAX_SQL;
        while !sql.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}… ({} bytes)", &sql[..end], sql.len())
    } else {
        sql.to_string()
    };
    Err(format!(
        "{what} failed on {} ({})\n--- stderr\n{}\n--- stdout\n{}\n--- SQL\n{}",
        redact(url),
        out.status,
        stderr.trim_end(),
        stdout.trim_end(),
        shown
    ))
}

// ---------------------------------------------------------------------------------------------
// URLs

/// `url` with its path (the database) replaced by `database` (`""` for none); user, password,
/// host, port and query string are kept.
pub fn with_database(url: &str, database: &str) -> String {
    let (prefix, _path, query) = split_url(url);
    let db = percent_encode(database);
    match query {
        Some(q) => format!("{prefix}/{db}?{q}"),
        None => format!("{prefix}/{db}"),
    }
}

/// The database named in `url`'s path (percent-decoded), if any.
pub fn url_database(url: &str) -> Option<String> {
    let (_, path, _) = split_url(url);
    let p = path.trim_start_matches('/');
    (!p.is_empty()).then(|| percent_decode(p))
}

/// `url` with its password replaced (e.g. to check that a wrong one is rejected).
pub fn with_password(url: &str, password: &str) -> String {
    let (prefix, path, query) = split_url(url);
    let (scheme, authority) = prefix.split_once("://").unwrap_or(("", prefix));
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (u, h),
        None => ("", authority),
    };
    let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
    let mut s = format!(
        "{scheme}://{user}:{}@{hostport}{path}",
        percent_encode(password)
    );
    if let Some(q) = query {
        s.push('?');
        s.push_str(q);
    }
    s
}

/// `url` with the password shown as `***` (for messages).
fn redact(url: &str) -> String {
    let (prefix, path, query) = split_url(url);
    let Some((scheme, authority)) = prefix.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, hostport)) = authority.rsplit_once('@') else {
        return url.to_string();
    };
    let Some((user, _)) = userinfo.split_once(':') else {
        return url.to_string();
    };
    let q = query.map(|q| format!("?{q}")).unwrap_or_default();
    format!("{scheme}://{user}:***@{hostport}{path}{q}")
}

/// Splits `scheme://authority/path?query` into (`scheme://authority`, `/path`, query).
fn split_url(url: &str) -> (&str, &str, Option<&str>) {
    let (before_q, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let auth_start = before_q.find("://").map_or(0, |i| i + 3);
    match before_q[auth_start..].find('/') {
        Some(i) => (
            &before_q[..auth_start + i],
            &before_q[auth_start + i..],
            query,
        ),
        None => (before_q, "", query),
    }
}

struct MysqlUrl {
    user: String,
    password: String,
    host: String,
    port: u16,
    database: Option<String>,
}

impl MysqlUrl {
    fn parse(url: &str) -> Result<MysqlUrl, String> {
        let bad = |why: &str| format!("bad MySQL URL {}: {why}", redact(url));
        let (prefix, _, _) = split_url(url);
        let (scheme, authority) = prefix
            .split_once("://")
            .ok_or_else(|| bad("expected mysql://user:password@host:port/database"))?;
        if !matches!(scheme, "mysql" | "mariadb") {
            return Err(bad("the scheme is not mysql:// or mariadb://"));
        }
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (u, h),
            None => ("", authority),
        };
        let (user, password) = match userinfo.split_once(':') {
            Some((u, p)) => (percent_decode(u), percent_decode(p)),
            None => (percent_decode(userinfo), String::new()),
        };
        let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
            let (h, after) = rest.split_once(']').ok_or_else(|| bad("unclosed ["))?;
            (h.to_string(), after.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (hostport.to_string(), None),
            }
        };
        let port = match port {
            Some(p) if !p.is_empty() => p.parse().map_err(|_| bad("bad port"))?,
            _ => 3306,
        };
        Ok(MysqlUrl {
            user: if user.is_empty() { "root".into() } else { user },
            password,
            host: if host.is_empty() {
                "127.0.0.1".into()
            } else {
                host
            },
            port,
            database: url_database(url),
        })
    }
}

fn percent_decode(s: &str) -> String {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &c in s.as_bytes() {
        if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'~') {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// TLS (tests/sql_tls.rs)

/// A server that accepts TLS, as tests/setup/mariadb.sh or postgres.sh describe it.
#[derive(Debug, Clone)]
pub struct TlsServer {
    /// The ferry user (may connect with or without TLS).
    pub url: String,
    /// The user that may only log in over TLS.
    pub tls_url: String,
    /// The CA that signed the server's certificate (issued for `localhost` only).
    pub ca: String,
    /// A CA that signed nothing the server has.
    pub other_ca: String,
}

/// True when CI=true (or 1): there a missing capability fails the test instead of skipping.
pub fn on_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| matches!(v.trim(), "true" | "1" | "TRUE" | "True"))
}

fn tls_server(prefix: &str, script: &str) -> Option<TlsServer> {
    let get = |suffix: &str| env_url(&format!("FERRY_TEST_{prefix}_{suffix}"));
    let missing: Vec<String> = ["URL", "TLS_URL", "CA", "OTHER_CA"]
        .iter()
        .filter(|s| get(s).is_none())
        .map(|s| format!("FERRY_TEST_{prefix}_{s}"))
        .collect();
    if !missing.is_empty() {
        let why = format!(
            "{} not set: the test server has no TLS (tests/setup/{script} prints them when its \
             server runs with TLS; one started by an older setup script has none and is left \
             alone: restart it as that script's warning says)",
            missing.join(", ")
        );
        if on_ci() {
            panic!("CI=true and {why}");
        }
        skip(&why);
        return None;
    }
    Some(TlsServer {
        url: get("URL")?,
        tls_url: get("TLS_URL")?,
        ca: get("CA")?,
        other_ca: get("OTHER_CA")?,
    })
}

/// The MariaDB server's TLS settings, or None (and a SKIPPED line; a panic when CI=true).
pub fn mysql_tls_or_skip() -> Option<TlsServer> {
    tls_server("MYSQL", "mariadb.sh")
}

/// The PostgreSQL server's TLS settings, or None (and a SKIPPED line; a panic when CI=true).
pub fn postgres_tls_or_skip() -> Option<TlsServer> {
    tls_server("POSTGRES", "postgres.sh")
}

/// `url` with its host replaced (user, password, port, path and query kept).
pub fn with_host(url: &str, host: &str) -> String {
    let (prefix, path, query) = split_url(url);
    let (scheme, authority) = prefix.split_once("://").unwrap_or(("", prefix));
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let port = hostport.rsplit_once(':').map(|(_, p)| p);
    let mut s = format!("{scheme}://");
    if let Some(u) = userinfo {
        s.push_str(u);
        s.push('@');
    }
    s.push_str(host);
    if let Some(p) = port {
        s.push(':');
        s.push_str(p);
    }
    s.push_str(path);
    if let Some(q) = query {
        s.push('?');
        s.push_str(q);
    }
    s
}

/// `big (id BIGINT PRIMARY KEY, a, b, v)` with rows 1..=n in a MySQL database: the table the
/// copy_table tests (resume, dropped connections, network faults, kills) copy.
pub fn seed_big(url: &str, n: usize) {
    mysql_exec(
        url,
        "CREATE TABLE big (id BIGINT PRIMARY KEY, a VARCHAR(64), b VARCHAR(64), v VARCHAR(100))",
    );
    let mut sql = String::new();
    for chunk in (1..=n).collect::<Vec<_>>().chunks(5000) {
        sql.push_str("INSERT INTO big VALUES ");
        let values: Vec<String> = chunk
            .iter()
            .map(|i| format!("({i},'a{i}','b{}','{}')", i * 7, "v".repeat(i % 90)))
            .collect();
        sql.push_str(&values.join(","));
        sql.push_str(";\n");
    }
    mysql_exec(url, &sql);
}
