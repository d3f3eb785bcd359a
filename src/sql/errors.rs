//! Errors of the two drivers as ferry errors: kinds, the server's words, hints, no password.

use super::*;

pub(super) fn without_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(None);
            }
            u.to_string()
        }
        Err(_) => url.split('@').next_back().unwrap_or("").to_string(),
    }
}

/// The error of a MySQL call, with the server's code and message and the URL without password.
pub fn mysql_error(display: &str, e: mysql_async::Error) -> FerryError {
    use mysql_async::Error as E;
    match &e {
        E::Server(se) => {
            let kind = match se.code {
                1044 | 1045 | 1142 | 1227 | 1698 => ErrorKind::Auth,
                1049 | 1146 | 1054 | 1051 => ErrorKind::NotFound,
                1062 | 1586 | 1213 | 1205 | 1050 | 1007 => ErrorKind::Conflict,
                1064 | 1149 | 1366 | 1292 | 1264 | 1406 => ErrorKind::InvalidInput,
                1040 | 1053 | 2006 | 2013 => ErrorKind::Unavailable,
                _ => ErrorKind::Internal,
            };
            let retryable = matches!(se.code, 1205 | 1213 | 1040 | 1053 | 2006 | 2013);
            FerryError::new(
                kind,
                format!(
                    "{display}: ERROR {} ({}): {}",
                    se.code, se.state, se.message
                ),
            )
            .retryable(retryable)
            .with("sql_code", se.code)
        }
        E::Io(_) | E::Driver(_) => {
            FerryError::new(ErrorKind::Unavailable, format!("{display}: {e}")).retryable(true)
        }
        E::Url(_) => FerryError::new(ErrorKind::InvalidInput, format!("{display}: {e}")),
        _ => FerryError::new(ErrorKind::Internal, format!("{display}: {e}")),
    }
}

/// The error of a PostgreSQL call, with the SQLSTATE and message.
pub fn pg_error(display: &str, e: tokio_postgres::Error) -> FerryError {
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        let kind = match &code[..2] {
            "28" => ErrorKind::Auth,
            "3D" | "42"
                if code == "3D000" || code == "42P01" || code == "42703" || code == "42883" =>
            {
                ErrorKind::NotFound
            }
            "23" | "40" => ErrorKind::Conflict,
            "42" | "22" => ErrorKind::InvalidInput,
            "53" | "57" | "08" => ErrorKind::Unavailable,
            _ => ErrorKind::Internal,
        };
        let retryable = matches!(code, "40001" | "40P01") || matches!(&code[..2], "53" | "08");
        let mut msg = format!("{display}: ERROR {code}: {}", db.message());
        if let Some(d) = db.detail() {
            msg.push_str(&format!(" ({d})"));
        }
        if let Some(tokio_postgres::error::ErrorPosition::Original(pos)) = db.position() {
            msg.push_str(&format!(" at character {pos}"));
        }
        return FerryError::new(kind, msg)
            .retryable(retryable)
            .with("sql_code", code);
    }
    let closed = e.is_closed()
        || e.to_string().contains("connection")
        || e.to_string().contains("error connecting");
    // tokio-postgres's Kind::Config ("invalid configuration: both host and hostaddr are
    // missing" for `postgres://`) is the URL's fault, not ferry's.
    let kind = if e.to_string().starts_with("invalid configuration") {
        ErrorKind::InvalidInput
    } else if closed {
        ErrorKind::Unavailable
    } else {
        ErrorKind::Internal
    };
    let mut text = e.to_string();
    if let Some(src) = std::error::Error::source(&e) {
        text.push_str(&format!(": {src}"));
    }
    FerryError::new(kind, format!("{display}: {text}")).retryable(closed)
}

pub(super) fn pool_error(display: &str, e: deadpool_postgres::PoolError) -> FerryError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => pg_error(display, e),
        other => {
            FerryError::new(ErrorKind::Unavailable, format!("{display}: {other}")).retryable(true)
        }
    }
}

pub(super) fn connect_timed_out(display: &str, limit: Duration) -> FerryError {
    FerryError::new(
        ErrorKind::Timeout,
        format!(
            "cannot connect: {display}: no answer within {} (connect_timeout)",
            seconds(limit)
        ),
    )
    .retryable(true)
    .hint(
        "check that the server is up and that nothing between here and it drops the \
           connection; raise connect_timeout if it is only slow",
    )
}

pub(super) fn seconds(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

/// "cannot connect: ..." with a hint on what to change, when there is one.
pub(super) fn cannot_connect(mut e: FerryError, hint: Option<String>) -> FerryError {
    e.message = format!("cannot connect: {}", e.message);
    match hint {
        Some(h) => e.hint(h),
        None => e,
    }
}

/// A certificate refused in the TLS handshake: not retryable (the same certificate comes back),
/// and said once (the drivers wrap the rustls error in several layers of "Input/output error").
pub(super) fn tls_refusal(
    display: &str,
    e: &(dyn std::error::Error + 'static),
) -> Option<FerryError> {
    match tls::find_rustls(e)? {
        r @ rustls::Error::InvalidCertificate(_) => Some(
            FerryError::new(
                ErrorKind::InvalidInput,
                format!("{display}: TLS handshake refused the server's certificate: {r}"),
            )
            .retryable(false),
        ),
        _ => None,
    }
}

/// A hint for a failed first connection: the certificate (wrong CA, wrong host name) or an
/// account that only logs in over TLS.
pub(super) fn failure_hint(
    e: &(dyn std::error::Error + 'static),
    tls: Option<&tls::Tls>,
    host: &str,
) -> Option<String> {
    tls::find_rustls(e).and_then(|r| tls::hint_for(r, tls, host))
}

/// A hint for an account that only logs in over TLS, from the server's words.
pub(super) fn account_hint(text: &str, backend: Backend, tls: Option<&tls::Tls>) -> Option<String> {
    let plain = tls.is_none_or(|t| matches!(t.mode, tls::TlsMode::Disable | tls::TlsMode::Prefer));
    match backend {
        // PostgreSQL's words for a hostnossl ... reject line or no hostssl match
        // (src/backend/libpq/auth.c, ClientAuthentication: "no encryption").
        Backend::Postgres if text.contains("no encryption") => Some(
            "the server accepts this user only over TLS: connect with tls = \"require\" (or \
             ?sslmode=require in the URL)"
                .into(),
        ),
        // MariaDB refuses a REQUIRE SSL account on a plain connection with ERROR 1045, the same
        // words as for a wrong password (sql/sql_acl.cc, acl_authenticate).
        Backend::Mysql if plain && text.contains("1045") => Some(
            "if the account REQUIREs SSL, connect with tls = \"require\" (or ?ssl-mode=REQUIRED \
             in the URL)"
                .into(),
        ),
        _ => None,
    }
}
