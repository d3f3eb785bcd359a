//! Fuzzing (issue 22): database URLs as people write them (`-p metadata_url=...`, a
//! connectURI turned into a URL), through `Db::connect` up to the network: every host is
//! 127.0.0.1 port 1, where nothing listens, so a URL that parses ends with a refused
//! connection. Nothing panics; the error is ferry's own (not internal) and, once redacted as
//! every output is, never shows the password.

use std::time::Duration;

use proptest::prelude::*;

use super::{ConnectOptions, Db};
use crate::codec::mutate::{config, near_miss};
use crate::runtime::error::ErrorKind;

const PASSWORD: &str = "PwSecret9";

const TOKENS: &[&str] = &[
    "?",
    "&",
    "=",
    "%",
    "%zz",
    "%40",
    "@",
    ":",
    "/",
    "#",
    " ",
    "é",
    "\\",
    ";",
    "+",
    "[",
    "]",
    "sslmode=",
    "ssl-mode=",
    "REQUIRED",
    "verify-full",
];

fn sql_url() -> impl Strategy<Value = String> {
    let scheme = prop::sample::select(
        &[
            "mysql",
            "mariadb",
            "starrocks",
            "postgres",
            "postgresql",
            "mysqlx",
            "jdbc:mysql",
        ][..],
    );
    let userinfo = prop::sample::select(
        &[
            "",
            "root@",
            "root:PwSecret9@",
            "u%40x:PwSecret9@",
            "dru id:PwSecret9@",
        ][..],
    );
    let param = prop::sample::select(
        &[
            "sslmode=disable",
            "sslmode=require",
            "sslmode=verify-full",
            "sslmode=bogus",
            "ssl-mode=REQUIRED",
            "require_ssl=true",
            "sslrootcert=/nonexistent/ca.pem",
            "ssl-ca=/nonexistent/ca.pem",
            "application_name=ferry",
            "pool_max=2",
            "stmt_cache_size=x",
            "prefer_socket=false",
        ][..],
    );
    (
        scheme,
        userinfo,
        "[a-z_]{0,8}",
        prop::collection::vec(param, 0..3),
    )
        .prop_map(|(s, u, db, q)| {
            let q = if q.is_empty() {
                String::new()
            } else {
                format!("?{}", q.join("&"))
            };
            format!("{s}://{u}127.0.0.1:1/{db}{q}")
        })
}

/// Keeps a mutated URL away from any other host: a parsed URL gets 127.0.0.1:1 back, and
/// host or socket settings in the query are dropped.
fn aimed_at_nothing(url: &str) -> String {
    let url = url.replace("host=", "x=").replace("socket=", "x=");
    match url::Url::parse(&url) {
        Ok(mut u) if u.has_host() => {
            let _ = u.set_host(Some("127.0.0.1"));
            let _ = u.set_port(Some(1));
            u.to_string()
        }
        _ => url,
    }
}

thread_local! {
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
}

proptest! {
    #![proptest_config(config(200))]

    #[test]
    fn fuzz_sql_urls_refuse_clearly_without_the_password(
        url in near_miss(sql_url(), TOKENS).prop_map(|u| aimed_at_nothing(&u)),
    ) {
        let opts = ConnectOptions {
            connect_timeout: Some(Duration::from_secs(2)),
            ..ConnectOptions::default()
        };
        let result = RUNTIME.with(|rt| rt.block_on(Db::connect(&url, &opts)));
        let Err(e) = result else {
            return Err(TestCaseError::fail(format!("connected to nothing with {url}")));
        };
        // What reaches the terminal and the journal: passwords ferry registered are masked there.
        let shown = crate::runtime::redact::redact(&e.one_line()).into_owned();
        prop_assert!(e.kind != ErrorKind::Internal, "not a clear refusal: {}", shown);
        let password = match url::Url::parse(&url) {
            Ok(u) => u.password().map(str::to_string),
            Err(_) => url.contains(&format!("{PASSWORD}@")).then(|| PASSWORD.to_string()),
        };
        // Passwords under 3 characters are not masked (redact::add_secret), by design.
        if let Some(p) = password.filter(|p| p.len() >= 3) {
            prop_assert!(!shown.contains(&p), "refusal shows the password {}: {}", p, shown);
        }
    }
}

/// Found by fuzz_sql_urls_refuse_clearly_without_the_password: `postgres://` (no host) was an
/// internal error; it is the URL's fault.
#[test]
fn regression_postgres_url_without_host_is_invalid_input() {
    let opts = ConnectOptions {
        connect_timeout: Some(Duration::from_secs(2)),
        ..ConnectOptions::default()
    };
    for url in ["postgres://", "postgresql://user@/db"] {
        let e = RUNTIME
            .with(|rt| rt.block_on(Db::connect(url, &opts)))
            .err()
            .unwrap();
        assert_eq!(e.kind, ErrorKind::InvalidInput, "{}", e.one_line());
        assert!(e.message.contains("host"), "{}", e.one_line());
    }
}
