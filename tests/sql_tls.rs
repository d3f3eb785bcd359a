//! SQL over TLS against the real MariaDB and PostgreSQL started by tests/setup/*.sh, which give
//! them a certificate for `localhost` from a test CA, a second CA that signed nothing, and a user
//! that may only log in over TLS. Each case runs a small Lua script through `ferry run` and asks
//! THE SERVER whether the session is encrypted (MariaDB: `SHOW SESSION STATUS LIKE 'Ssl_cipher'`;
//! PostgreSQL: `pg_stat_ssl` for `pg_backend_pid()`).
//!
//! Without TLS on the servers (one started by an older setup script, left running) the tests
//! print `SKIPPED: ...`; with CI=true they fail instead.

use crate::common;

use common::db::{self, TlsServer};
use common::{Output, Workspace};

const PROBE: &str = r#"
local p = ferry.params{
  {name = "url", type = "string", required = true, secret = true, doc = "database"},
  {name = "tls", type = "string", doc = "the tls option, if any"},
  {name = "ca", type = "string", doc = "the ca option, if any"},
}
local db = ferry.sql.connect(p.url, {tls = p.tls, ca = p.ca})
local cipher
if db.backend == "mysql" then
  local rows = db:query("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
  cipher = rows[1] and rows[1].Value or ""
else
  local rows = db:query("SELECT ssl, cipher FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
  cipher = (rows[1] and rows[1].ssl) and rows[1].cipher or ""
end
print("session cipher: [" .. cipher .. "]")
"#;

/// One backend's spellings.
struct Kind {
    server: TlsServer,
    /// URL query forms users paste.
    require_query: &'static [&'static str],
    verify_full_query: &'static str,
    ca_key: &'static str,
}

fn mariadb() -> Option<Kind> {
    Some(Kind {
        server: db::mysql_tls_or_skip()?,
        require_query: &["ssl-mode=REQUIRED", "sslmode=require", "ssl_mode=required"],
        verify_full_query: "ssl-mode=VERIFY_IDENTITY",
        ca_key: "ssl-ca",
    })
}

fn postgres() -> Option<Kind> {
    Some(Kind {
        server: db::postgres_tls_or_skip()?,
        require_query: &["sslmode=require"],
        verify_full_query: "sslmode=verify-full",
        ca_key: "sslrootcert",
    })
}

fn run(url: &str, tls: Option<&str>, ca: Option<&str>) -> Output {
    let ws = Workspace::new();
    let script = ws.write("probe.lua", PROBE);
    let mut args = vec![
        "run".to_string(),
        script.display().to_string(),
        "-q".into(),
        "-p".into(),
        format!("url={url}"),
    ];
    if let Some(t) = tls {
        args.extend(["-p".into(), format!("tls={t}")]);
    }
    if let Some(c) = ca {
        args.extend(["-p".into(), format!("ca={c}")]);
    }
    ws.ferry().args(args).run()
}

/// The server's view of the session's cipher ("" when not encrypted).
fn cipher(url: &str, tls: Option<&str>, ca: Option<&str>) -> String {
    let out = run(url, tls, ca);
    out.code(0);
    let line = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("session cipher: ["))
        .unwrap_or_else(|| panic!("no cipher line\n--- stdout\n{}", out.stdout));
    line.trim_end_matches(']').to_string()
}

fn assert_encrypted(url: &str, tls: Option<&str>, ca: Option<&str>) {
    let c = cipher(url, tls, ca);
    assert!(
        !c.is_empty(),
        "the server says the session is NOT encrypted for {url} tls={tls:?} ca={ca:?}"
    );
}

fn assert_plain(url: &str, tls: Option<&str>, ca: Option<&str>) {
    let c = cipher(url, tls, ca);
    assert!(
        c.is_empty(),
        "the server says the session is encrypted ({c}) for {url} tls={tls:?}"
    );
}

/// The connection must fail, naming the server, with every `needle` in the error and no
/// password anywhere in the output.
fn assert_refused(url: &str, tls: Option<&str>, ca: Option<&str>, needles: &[&str]) -> Output {
    let out = run(url, tls, ca);
    assert_ne!(
        out.code, 0,
        "connected although it must not: {url} tls={tls:?} ca={ca:?}\n--- stdout\n{}",
        out.stdout
    );
    out.stderr_has("cannot connect");
    for n in needles {
        out.stderr_has(n);
    }
    assert!(
        !out.stderr.contains("ferry_tls_pw") && !out.stdout.contains("ferry_tls_pw"),
        "the password appears in the output\n--- stderr\n{}",
        out.stderr
    );
    out
}

fn host_port(url: &str, host: &str) -> String {
    let after = url.split_once('@').map_or(url, |(_, h)| h);
    let port = after
        .split(['/', '?'])
        .next()
        .and_then(|hp| hp.rsplit_once(':'))
        .map(|(_, p)| p)
        .unwrap_or("");
    format!("{host}:{port}")
}

fn with_query(url: &str, q: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{q}")
}

// ---------------------------------------------------------------------------------------------

fn require_encrypts(k: &Kind, default_encrypts: bool) {
    let s = &k.server;
    assert_encrypted(&s.url, Some("require"), None);
    for q in k.require_query {
        assert_encrypted(&with_query(&s.url, q), None, None);
    }
    assert_encrypted(&s.url, Some("prefer"), None);
    // The check itself can tell: disable is plain on the server's side.
    assert_plain(&s.url, Some("disable"), None);
    if default_encrypts {
        assert_encrypted(&s.url, None, None);
    } else {
        assert_plain(&s.url, None, None);
    }
}

#[test]
fn mariadb_require_is_encrypted_on_the_server() {
    let Some(k) = mariadb() else { return };
    // mysql_async's default (and ferry's for MySQL) is no TLS unless asked.
    require_encrypts(&k, false);
}

#[test]
fn postgres_require_is_encrypted_on_the_server() {
    let Some(k) = postgres() else { return };
    // libpq's default, prefer, encrypts when the server offers TLS.
    require_encrypts(&k, true);
}

fn verify_accepts_the_right_ca(k: &Kind) {
    let s = &k.server;
    let by_name = db::with_host(&s.tls_url, "localhost");
    for mode in ["verify-full", "verify", "verify-ca"] {
        assert_encrypted(&by_name, Some(mode), Some(&s.ca));
    }
    // The forms users paste into the URL.
    let q = format!("{}&{}={}", k.verify_full_query, k.ca_key, s.ca);
    assert_encrypted(&with_query(&by_name, &q), None, None);
    // A CA with require means verify-ca (libpq); by address, the chain alone is checked.
    assert_encrypted(&s.tls_url, Some("require"), Some(&s.ca));
    assert_encrypted(&s.tls_url, Some("verify-ca"), Some(&s.ca));
}

#[test]
fn mariadb_verify_accepts_the_right_ca() {
    let Some(k) = mariadb() else { return };
    verify_accepts_the_right_ca(&k);
}

#[test]
fn postgres_verify_accepts_the_right_ca() {
    let Some(k) = postgres() else { return };
    verify_accepts_the_right_ca(&k);
}

fn verify_refuses_a_wrong_ca(k: &Kind) {
    let s = &k.server;
    let by_name = db::with_host(&s.tls_url, "localhost");
    let server = host_port(&s.tls_url, "localhost");
    let why = format!("not signed by the CA file {}", s.other_ca);
    for mode in ["verify-full", "verify-ca"] {
        // invalid_input: a refused certificate is not retried like a dropped connection.
        assert_refused(
            &by_name,
            Some(mode),
            Some(&s.other_ca),
            &[&server, &why, "[invalid_input]", "UnknownIssuer"],
        );
    }
    // Without a CA file the system's roots do not know the test CA either.
    assert_refused(
        &by_name,
        Some("verify-full"),
        None,
        &[&server, "not signed by the system's root CAs"],
    );
}

#[test]
fn mariadb_verify_refuses_a_wrong_ca() {
    let Some(k) = mariadb() else { return };
    verify_refuses_a_wrong_ca(&k);
}

#[test]
fn postgres_verify_refuses_a_wrong_ca() {
    let Some(k) = postgres() else { return };
    verify_refuses_a_wrong_ca(&k);
}

fn verify_full_refuses_a_wrong_host_name(k: &Kind) {
    let s = &k.server;
    // The certificate names localhost only; 127.0.0.1 is the same server by another name.
    let server = host_port(&s.tls_url, "127.0.0.1");
    for url in [
        s.tls_url.clone(),
        with_query(
            &s.tls_url,
            &format!("{}&{}={}", k.verify_full_query, k.ca_key, s.ca),
        ),
    ] {
        let (tls, ca) = if url.contains('?') {
            (None, None)
        } else {
            (Some("verify-full"), Some(s.ca.as_str()))
        };
        assert_refused(
            &url,
            tls,
            ca,
            &[
                &server,
                "[invalid_input]",
                "not issued for '127.0.0.1'",
                "verify-ca",
            ],
        );
    }
}

#[test]
fn mariadb_verify_full_refuses_a_wrong_host_name() {
    let Some(k) = mariadb() else { return };
    verify_full_refuses_a_wrong_host_name(&k);
}

#[test]
fn postgres_verify_full_refuses_a_wrong_host_name() {
    let Some(k) = postgres() else { return };
    verify_full_refuses_a_wrong_host_name(&k);
}

#[test]
fn mariadb_tls_only_user_refuses_a_plain_connection() {
    let Some(k) = mariadb() else { return };
    let s = &k.server;
    let server = host_port(&s.tls_url, "127.0.0.1");
    // MariaDB answers a REQUIRE SSL account without TLS with ERROR 1045 (as for a bad password).
    for tls in [Some("disable"), None] {
        assert_refused(
            &s.tls_url,
            tls,
            None,
            &[&server, "ERROR 1045", "REQUIREs SSL", "tls = \"require\""],
        );
    }
    assert_encrypted(&s.tls_url, Some("require"), None);
    assert_encrypted(&s.tls_url, Some("prefer"), None);
}

#[test]
fn postgres_tls_only_user_refuses_a_plain_connection() {
    let Some(k) = postgres() else { return };
    let s = &k.server;
    let server = host_port(&s.tls_url, "127.0.0.1");
    assert_refused(
        &s.tls_url,
        Some("disable"),
        None,
        &[
            &server,
            "no encryption",
            "only over TLS",
            "tls = \"require\"",
        ],
    );
    assert_refused(
        &with_query(&s.tls_url, "sslmode=disable"),
        None,
        None,
        &[&server, "no encryption"],
    );
    assert_encrypted(&s.tls_url, Some("require"), None);
    assert_encrypted(&s.tls_url, None, None);
}

/// Bad TLS settings are refused before any connection, with what was wrong (no server needed:
/// nothing listens on port 9).
#[test]
fn bad_tls_settings_are_clear_errors() {
    let cases: &[(&str, Option<&str>, Option<&str>, &str)] = &[
        (
            "mysql://u:s3cr3t@127.0.0.1:9/",
            Some("sometimes"),
            None,
            "tls = 'sometimes' is not a TLS mode",
        ),
        (
            "postgres://u:s3cr3t@127.0.0.1:9/db?sslmode=bogus",
            None,
            None,
            "the URL's sslmode = 'bogus' is not a TLS mode",
        ),
        (
            "mysql://u:s3cr3t@127.0.0.1:9/?ssl-mode=VERIFIED",
            None,
            None,
            "the URL's ssl-mode = 'VERIFIED' is not a TLS mode",
        ),
        (
            "postgres://u:s3cr3t@127.0.0.1:9/db?sslmode=require",
            Some("disable"),
            None,
            "tls = \"disable\" but the URL says sslmode=require",
        ),
        (
            "mysql://u:s3cr3t@127.0.0.1:9/",
            Some("disable"),
            Some("/tmp/ca.pem"),
            "which never checks it",
        ),
        (
            "postgres://u:s3cr3t@127.0.0.1:9/db",
            Some("verify-full"),
            Some("/nonexistent/ca.pem"),
            "reading the CA file /nonexistent/ca.pem",
        ),
    ];
    for (url, tls, ca, needle) in cases {
        let out = run(url, *tls, *ca);
        assert_ne!(out.code, 0, "{url} tls={tls:?} was accepted");
        out.stderr_has(needle)
            .stderr_has("127.0.0.1:9")
            .stderr_lacks("s3cr3t");
    }
}
