//! The connection pools: mysql_async with its TLS and timeouts, deadpool-postgres with its connector.

use super::*;

/// The MySQL pool for `tls`. prefer tries TLS and falls back to a plain connection only when
/// the server offers no TLS; verify-ca learns the name the certificate is issued for (see
/// [`tls::presented_name`]).
pub(super) async fn my_pool(
    url: &str,
    scheme: &str,
    display: &str,
    opts: &ConnectOptions,
    tls: Option<&tls::Tls>,
    host: &str,
) -> Result<mysql_async::Pool> {
    let fixed = url.replacen(&format!("{scheme}://"), "mysql://", 1);
    let base = mysql_async::Opts::from_url(&fixed).map_err(|e| {
        FerryError::new(ErrorKind::InvalidInput, format!("{display}: {e}"))
            .hint("mysql URLs look like mysql://user:password@host:3306/database")
    })?;
    let size = opts.pool_size.unwrap_or(16).max(1);
    let build = |ssl: Option<mysql_async::SslOpts>| {
        let mut b = mysql_async::OptsBuilder::from_opts(base.clone())
            // A non-zero idle TTL keeps returned connections pooled (with a TTL of 0,
            // mysql_async closes every connection above `min` when it is returned).
            .pool_opts(
                mysql_async::PoolOpts::new()
                    .with_constraints(
                        mysql_async::PoolConstraints::new(0, size).expect("0 <= size"),
                    )
                    .with_inactive_connection_ttl(Duration::from_secs(60)),
            )
            .stmt_cache_size(64);
        if let Some(t) = tls {
            // With prefer_socket (mysql_async's default) a loopback TCP connection is replaced
            // by one over the server's Unix socket, which mysql_async never encrypts
            // (src/io/tls/rustls_io.rs, make_secure): keep the TCP connection that was asked for.
            if t.mode != tls::TlsMode::Disable {
                b = b.prefer_socket(false);
            }
            b = b.ssl_opts(ssl);
        }
        mysql_async::Opts::from(b)
    };
    let Some(t) = tls else {
        return Ok(mysql_async::Pool::new(build(None)));
    };
    let opts = build(tls::mysql(t, None).map_err(|e| tls::prefix(display, e))?);
    match t.mode {
        tls::TlsMode::Prefer => match mysql_async::Conn::new(opts.clone()).await {
            Err(mysql_async::Error::Driver(
                mysql_async::DriverError::NoClientSslFlagFromServer,
            )) => {
                let msg = format!("{display} offers no TLS; connecting without it (tls = prefer)");
                tracing::info!(target: crate::runtime::output::EV, "{msg}");
                return Ok(mysql_async::Pool::new(build(None)));
            }
            Ok(c) => {
                let _ = c.disconnect().await;
            }
            // The first pooled connection reports it.
            Err(_) => {}
        },
        tls::TlsMode::VerifyCa => match mysql_async::Conn::new(opts.clone()).await {
            Ok(c) => {
                let _ = c.disconnect().await;
            }
            Err(e) => {
                if let Some(name) = tls::find_rustls(&e).and_then(tls::presented_name) {
                    let Some(name) = name else {
                        return Err(FerryError::new(
                            ErrorKind::InvalidInput,
                            format!(
                                "cannot connect: {display}: the server's certificate lists no DNS \
                                 name or IP address (subjectAltName), which verify-ca needs for \
                                 MySQL"
                            ),
                        )
                        .hint("use tls = \"verify-full\" with the name, or \"require\""));
                    };
                    let msg = format!(
                        "{display}: certificate issued for {name}, not {host}; verify-ca checks the chain"
                    );
                    tracing::debug!(target: crate::runtime::output::EV, "{msg}");
                    let ssl = tls::mysql(t, Some(name)).map_err(|e| tls::prefix(display, e))?;
                    return Ok(mysql_async::Pool::new(build(ssl)));
                }
            }
        },
        _ => {}
    }
    Ok(mysql_async::Pool::new(opts))
}

pub(super) fn pg_pool(
    url: &str,
    display: &str,
    opts: &ConnectOptions,
    tls: Option<&tls::Tls>,
    limits: Limits,
) -> Result<(
    deadpool_postgres::Pool,
    tokio_postgres_rustls::MakeRustlsConnect,
)> {
    let mut cfg: tokio_postgres::Config = url.parse().map_err(|e| {
        FerryError::new(ErrorKind::InvalidInput, format!("{display}: {e}"))
            .hint("postgres URLs look like postgres://user:password@host:5432/database")
    })?;
    let (ssl_mode, connector) = tls::pg(tls).map_err(|e| tls::prefix(display, e))?;
    cfg.ssl_mode(ssl_mode);
    cfg.connect_timeout(limits.connect);
    let mgr = deadpool_postgres::Manager::from_config(
        cfg,
        connector.clone(),
        deadpool_postgres::ManagerConfig {
            recycling_method: deadpool_postgres::RecyclingMethod::Fast,
        },
    );
    let pool = deadpool_postgres::Pool::builder(mgr)
        .max_size(opts.pool_size.unwrap_or(16).max(1))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .map_err(|e| FerryError::new(ErrorKind::Internal, format!("{display}: {e}")))?;
    Ok((pool, connector))
}
