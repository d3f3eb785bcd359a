//! SQL access: MySQL-protocol servers (MySQL, MariaDB, StarRocks FE) through mysql_async, and
//! PostgreSQL through tokio-postgres with a deadpool pool. One placeholder style (`?`) for both;
//! values map through [`value::SqlValue`].

pub mod copy_table;
#[cfg(test)]
mod fuzz;
pub mod load_data;
pub mod lua;
pub mod statement;
pub mod tls;
pub mod value;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use mysql_async::prelude::Queryable;
use tokio::sync::mpsc;

use crate::runtime::error::{ErrorKind, FerryError, Result};
use crate::runtime::redact::add_secret;
use value::{PgParam, SqlValue};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Mysql,
    Postgres,
}

/// A connection pool.
#[derive(Clone)]
pub struct Db {
    inner: Pool,
    /// The URL without the password, for messages.
    pub display: String,
    pub backend: Backend,
    limits: Limits,
}

#[derive(Clone)]
enum Pool {
    My(mysql_async::Pool),
    Pg(
        deadpool_postgres::Pool,
        tokio_postgres_rustls::MakeRustlsConnect,
    ),
}

/// How long a connection may take to open, and a statement to run.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub connect: Duration,
    pub query: Option<Duration>,
}

/// The connect timeout when none is given (the PostgreSQL pool had it before it was an option).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// One connection, for transactions, streaming and copy workers. A statement that outlives the
/// query timeout is cancelled on the server and the connection is closed, never reused: its
/// protocol state is unknown (see [`Conn::timed_out`]).
pub struct Conn {
    link: Link,
    pool: Pool,
    limits: Limits,
}

enum Link {
    My(mysql_async::Conn),
    Pg(Box<deadpool_postgres::Object>),
    /// Closed after a timeout.
    Closed,
}

#[derive(Debug, Clone, Default)]
pub struct ResultSet {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<SqlValue>>,
}

/// What a `LOAD DATA LOCAL INFILE` reported: rows affected and the number of warnings.
#[derive(Debug, Clone, Copy)]
pub struct Loaded {
    pub affected: u64,
    pub warnings: u16,
}

/// MySQL/MariaDB answers that mean the server does not take `LOAD DATA LOCAL` from this client:
/// 1148 (ER_NOT_ALLOWED_COMMAND, older servers with local_infile off), 4166 (MariaDB 10.5+'s
/// ER_LOAD_INFILE_CAPABILITY_DISABLED), 3948 (MySQL 8's "loading local data is disabled"), 3950
/// (MySQL 8, rejected on the client side).
fn load_data_refused(code: u16) -> bool {
    matches!(code, 1148 | 4166 | 3948 | 3950)
}

#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    pub pool_size: Option<usize>,
    /// `disable`, `prefer` (PostgreSQL's default), `require`, `verify-ca`, `verify-full`
    /// (`verify`), or libpq's/MySQL's spellings of them: see [`tls`].
    pub tls: Option<String>,
    /// A PEM file of CA certificates (`system`: the system's roots).
    pub ca: Option<String>,
    /// How long opening a connection (TCP, TLS, login) may take; [`DEFAULT_CONNECT_TIMEOUT`]
    /// when not set.
    pub connect_timeout: Option<Duration>,
    /// How long one statement may run (for a streamed query: how long the server may stay
    /// silent before the next row); no limit when not set.
    pub query_timeout: Option<Duration>,
}

fn without_password(url: &str) -> String {
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

fn pool_error(display: &str, e: deadpool_postgres::PoolError) -> FerryError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => pg_error(display, e),
        other => {
            FerryError::new(ErrorKind::Unavailable, format!("{display}: {other}")).retryable(true)
        }
    }
}

impl Db {
    /// Connects (and checks the connection with one round trip), within the connect timeout.
    pub async fn connect(url: &str, opts: &ConnectOptions) -> Result<Db> {
        let display = without_password(url);
        if let Ok(u) = url::Url::parse(url)
            && let Some(p) = u.password()
        {
            add_secret(p);
            if let Ok(decoded) = crate::runtime::params::percent_decode(p) {
                add_secret(&decoded);
            }
        }
        let limits = Limits {
            connect: opts.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT),
            query: opts.query_timeout,
        };
        match tokio::time::timeout(limits.connect, Self::open(url, opts, &display, limits)).await {
            Ok(r) => r,
            Err(_) => Err(connect_timed_out(&display, limits.connect)),
        }
    }

    async fn open(url: &str, opts: &ConnectOptions, display: &str, limits: Limits) -> Result<Db> {
        let display = display.to_string();
        let scheme = url.split("://").next().unwrap_or("");
        let backend = match scheme {
            "mysql" | "mariadb" | "starrocks" => Backend::Mysql,
            "postgres" | "postgresql" => Backend::Postgres,
            _ => {
                return Err(FerryError::new(
                    ErrorKind::InvalidInput,
                    format!("{display}: unknown database URL scheme '{scheme}'"),
                )
                .hint("use mysql://user:password@host:port/db or postgres://user:password@host:port/db"));
            }
        };
        let split = tls::split_url(url, backend);
        let tls = tls::resolve(&display, opts.tls.as_deref(), opts.ca.as_deref(), &split)?;
        let url = split.url.as_str();
        let host = url::Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_default();
        let inner = match backend {
            Backend::Mysql => {
                let pool = my_pool(url, scheme, &display, opts, tls.as_ref(), &host).await?;
                // Fail now, with the server's words, rather than at the first query.
                let mut c = match pool.get_conn().await {
                    Ok(c) => c,
                    Err(e) => {
                        let hint = failure_hint(&e, tls.as_ref(), &host);
                        let handshake = tls_refusal(&display, &e);
                        let fe = handshake.unwrap_or_else(|| mysql_error(&display, e));
                        let hint =
                            hint.or_else(|| account_hint(&fe.message, backend, tls.as_ref()));
                        return Err(cannot_connect(fe, hint));
                    }
                };
                c.query_drop("SELECT 1")
                    .await
                    .map_err(|e| mysql_error(&display, e))?;
                drop(c);
                Pool::My(pool)
            }
            Backend::Postgres => {
                let (pool, connector) = pg_pool(url, &display, opts, tls.as_ref(), limits)?;
                let c = match pool.get().await {
                    Ok(c) => c,
                    Err(deadpool_postgres::PoolError::Backend(e)) => {
                        let hint = failure_hint(&e, tls.as_ref(), &host);
                        let handshake = tls_refusal(&display, &e);
                        let fe = handshake.unwrap_or_else(|| pg_error(&display, e));
                        let hint =
                            hint.or_else(|| account_hint(&fe.message, backend, tls.as_ref()));
                        return Err(cannot_connect(fe, hint));
                    }
                    Err(other) => return Err(cannot_connect(pool_error(&display, other), None)),
                };
                let pool = Pool::Pg(pool, connector);
                let mut conn = Conn {
                    link: Link::Pg(Box::new(c)),
                    pool: pool.clone(),
                    limits,
                };
                conn.query(&display, "SELECT 1", &[]).await?;
                drop(conn);
                pool
            }
        };
        Ok(Db {
            inner,
            display,
            backend,
            limits,
        })
    }

    /// A connection from the pool (a new one within the connect timeout).
    pub async fn conn(&self) -> Result<Conn> {
        let get = async {
            match &self.inner {
                Pool::My(p) => p
                    .get_conn()
                    .await
                    .map(Link::My)
                    .map_err(|e| mysql_error(&self.display, e)),
                Pool::Pg(p, _) => p
                    .get()
                    .await
                    .map(|c| Link::Pg(Box::new(c)))
                    .map_err(|e| pool_error(&self.display, e)),
            }
        };
        let link = match tokio::time::timeout(self.limits.connect, get).await {
            Ok(r) => r?,
            Err(_) => return Err(connect_timed_out(&self.display, self.limits.connect)),
        };
        Ok(Conn {
            link,
            pool: self.inner.clone(),
            limits: self.limits,
        })
    }

    /// Runs a query on a pooled connection. A read-only statement that fails because its
    /// connection died (killed, server restarted, network cut) is retried on a fresh connection.
    pub async fn query(&self, sql: &str, params: &[SqlValue]) -> Result<ResultSet> {
        let mut attempt = 0;
        loop {
            let r = match self.conn().await {
                Ok(mut c) => c.query(&self.display, sql, params).await,
                Err(e) => Err(e),
            };
            match r {
                Err(e) if e.retryable && attempt < 3 && statement::is_read_only(sql) => {
                    attempt += 1;
                    tracing::debug!(target: crate::runtime::output::EV, "retrying a read after: {}", e.one_line());
                    tokio::time::sleep(crate::runtime::retry::SQL.delay(attempt)).await;
                }
                other => return other,
            }
        }
    }

    pub async fn exec(&self, sql: &str, params: &[SqlValue]) -> Result<(u64, Option<u64>)> {
        self.conn().await?.exec(&self.display, sql, params).await
    }

    /// [`Db::stream`] with the column list taken off the front: (column names, the rows).
    pub async fn stream_with_columns(
        &self,
        sql: String,
        params: Vec<SqlValue>,
    ) -> Result<(Vec<String>, mpsc::Receiver<Result<Vec<SqlValue>>>)> {
        let mut rx = self.stream(sql, params).await?;
        let columns = match rx.recv().await {
            Some(Ok(names)) => names
                .iter()
                .map(|n| String::from_utf8_lossy(&n.canonical()).into_owned())
                .collect(),
            Some(Err(e)) => return Err(e),
            None => Vec::new(),
        };
        Ok((columns, rx))
    }

    /// Streams the rows of a query through a bounded channel; the first message is the column
    /// list (as a row of Text values).
    pub async fn stream(
        &self,
        sql: String,
        params: Vec<SqlValue>,
    ) -> Result<mpsc::Receiver<Result<Vec<SqlValue>>>> {
        let conn = self.conn().await?;
        let (tx, rx) = mpsc::channel(1024);
        let display = self.display.clone();
        tokio::spawn(async move {
            if let Err(e) = conn.stream_into(&display, &sql, &params, &tx).await {
                let _ = tx.send(Err(e)).await;
            }
        });
        Ok(rx)
    }
}

fn connect_timed_out(display: &str, limit: Duration) -> FerryError {
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

fn seconds(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

/// "cannot connect: ..." with a hint on what to change, when there is one.
fn cannot_connect(mut e: FerryError, hint: Option<String>) -> FerryError {
    e.message = format!("cannot connect: {}", e.message);
    match hint {
        Some(h) => e.hint(h),
        None => e,
    }
}

/// A certificate refused in the TLS handshake: not retryable (the same certificate comes back),
/// and said once (the drivers wrap the rustls error in several layers of "Input/output error").
fn tls_refusal(display: &str, e: &(dyn std::error::Error + 'static)) -> Option<FerryError> {
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
fn failure_hint(
    e: &(dyn std::error::Error + 'static),
    tls: Option<&tls::Tls>,
    host: &str,
) -> Option<String> {
    tls::find_rustls(e).and_then(|r| tls::hint_for(r, tls, host))
}

/// A hint for an account that only logs in over TLS, from the server's words.
fn account_hint(text: &str, backend: Backend, tls: Option<&tls::Tls>) -> Option<String> {
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

/// The MySQL pool for `tls`. prefer tries TLS and falls back to a plain connection only when
/// the server offers no TLS; verify-ca learns the name the certificate is issued for (see
/// [`tls::presented_name`]).
async fn my_pool(
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

fn pg_pool(
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

async fn my_collect<P: mysql_async::prelude::Protocol>(
    mut result: mysql_async::QueryResult<'_, 'static, P>,
    display: &str,
) -> Result<ResultSet> {
    let cols: Arc<[mysql_async::Column]> =
        result.columns().unwrap_or_else(|| Arc::from(Vec::new()));
    let mut rs = ResultSet {
        columns: cols.iter().map(|c| c.name_str().into_owned()).collect(),
        rows: Vec::new(),
    };
    while let Some(row) = result.next().await.map_err(|e| mysql_error(display, e))? {
        rs.rows.push(
            row.unwrap()
                .into_iter()
                .zip(cols.iter())
                .map(|(v, c)| value::from_mysql(v, c))
                .collect(),
        );
    }
    result
        .drop_result()
        .await
        .map_err(|e| mysql_error(display, e))?;
    Ok(rs)
}

async fn my_affected<P: mysql_async::prelude::Protocol>(
    result: mysql_async::QueryResult<'_, 'static, P>,
    display: &str,
) -> Result<(u64, Option<u64>)> {
    let affected = result.affected_rows();
    let last = result.last_insert_id();
    result
        .drop_result()
        .await
        .map_err(|e| mysql_error(display, e))?;
    Ok((affected, last))
}

/// `fut`, or an error of kind timeout (no message: [`Conn::timed_out`] writes it) when `limit`
/// passes first.
async fn within<F: std::future::Future>(limit: Option<Duration>, fut: F) -> Result<F::Output> {
    match limit {
        None => Ok(fut.await),
        Some(d) => tokio::time::timeout(d, fut)
            .await
            .map_err(|_| FerryError::new(ErrorKind::Timeout, "timed out")),
    }
}

async fn my_send<P: mysql_async::prelude::Protocol>(
    mut result: mysql_async::QueryResult<'_, 'static, P>,
    display: &str,
    tx: &mpsc::Sender<Result<Vec<SqlValue>>>,
    limit: Option<Duration>,
) -> Result<()> {
    let cols: Arc<[mysql_async::Column]> =
        result.columns().unwrap_or_else(|| Arc::from(Vec::new()));
    let names = cols
        .iter()
        .map(|c| SqlValue::Text(c.name_str().into_owned()))
        .collect();
    if tx.send(Ok(names)).await.is_err() {
        return Ok(());
    }
    while let Some(row) = within(limit, result.next())
        .await?
        .map_err(|e| mysql_error(display, e))?
    {
        let values = row
            .unwrap()
            .into_iter()
            .zip(cols.iter())
            .map(|(v, c)| value::from_mysql(v, c))
            .collect();
        if tx.send(Ok(values)).await.is_err() {
            break;
        }
    }
    Ok(())
}

/// Runs `sql` on a MySQL connection with the text protocol (no parameters: some servers, such
/// as StarRocks FE, cannot prepare every statement) or the binary one, then `$then(result)`.
macro_rules! my_run {
    ($c:expr, $sql:expr, $params:expr, $display:expr, $then:expr) => {
        if $params.is_empty() {
            let r = $c
                .query_iter($sql)
                .await
                .map_err(|e| mysql_error($display, e))?;
            $then(r).await
        } else {
            let r = $c
                .exec_iter($sql, my_params($params))
                .await
                .map_err(|e| mysql_error($display, e))?;
            $then(r).await
        }
    };
}

/// One PostgreSQL row as values.
fn pg_row(display: &str, row: &tokio_postgres::Row) -> Result<Vec<SqlValue>> {
    (0..row.len())
        .map(|i| {
            value::from_pg(row, i)
                .map_err(|m| FerryError::new(ErrorKind::InvalidInput, format!("{display}: {m}")))
        })
        .collect()
}

fn my_params(params: &[SqlValue]) -> mysql_async::Params {
    if params.is_empty() {
        mysql_async::Params::Empty
    } else {
        mysql_async::Params::Positional(params.iter().map(value::to_mysql).collect())
    }
}

fn pg_params(params: &[SqlValue]) -> Vec<PgParam> {
    params.iter().cloned().map(PgParam).collect()
}

impl Conn {
    pub async fn query(
        &mut self,
        display: &str,
        sql: &str,
        params: &[SqlValue],
    ) -> Result<ResultSet> {
        let Some(limit) = self.limits.query else {
            return self.link.query(display, sql, params).await;
        };
        match tokio::time::timeout(limit, self.link.query(display, sql, params)).await {
            Ok(r) => r,
            Err(_) => Err(self.timed_out(display, limit).await),
        }
    }

    /// Runs a statement; returns (affected rows, last insert id).
    pub async fn exec(
        &mut self,
        display: &str,
        sql: &str,
        params: &[SqlValue],
    ) -> Result<(u64, Option<u64>)> {
        let Some(limit) = self.limits.query else {
            return self.link.exec(display, sql, params).await;
        };
        match tokio::time::timeout(limit, self.link.exec(display, sql, params)).await {
            Ok(r) => r,
            Err(_) => Err(self.timed_out(display, limit).await),
        }
    }

    /// Runs `LOAD DATA LOCAL INFILE` (`sql`) on a MySQL connection with `data` as the file.
    /// `Ok(None)`: the server refuses LOAD DATA LOCAL (local_infile off), nothing was loaded.
    pub async fn load_data_local(
        &mut self,
        display: &str,
        sql: &str,
        data: bytes::Bytes,
    ) -> Result<Option<Loaded>> {
        let Some(limit) = self.limits.query else {
            return self.link.load_data_local(display, sql, data).await;
        };
        match tokio::time::timeout(limit, self.link.load_data_local(display, sql, data)).await {
            Ok(r) => r,
            Err(_) => Err(self.timed_out(display, limit).await),
        }
    }

    async fn stream_into(
        mut self,
        display: &str,
        sql: &str,
        params: &[SqlValue],
        tx: &mpsc::Sender<Result<Vec<SqlValue>>>,
    ) -> Result<()> {
        let limit = self.limits.query;
        let r = self.link.stream_into(display, sql, params, tx, limit).await;
        match r {
            Err(e) if e.kind == ErrorKind::Timeout => {
                let limit = limit.unwrap_or_default();
                Err(self.timed_out(display, limit).await)
            }
            other => other,
        }
    }

    /// After a statement outlived `limit`: cancels it on the server (MySQL `KILL QUERY` from a
    /// new connection, PostgreSQL's cancel request), each within the connect timeout, and
    /// closes this connection, whose protocol state is unknown (a pooled reuse could read the
    /// cancelled statement's answer as its own). An open transaction on it is rolled back by
    /// the server when the connection closes.
    async fn timed_out(&mut self, display: &str, limit: Duration) -> FerryError {
        let connect = self.limits.connect;
        let cancelled = match std::mem::replace(&mut self.link, Link::Closed) {
            Link::My(c) => {
                let id = c.id();
                // disconnect() marks the connection closed before it writes COM_QUIT, so if the
                // server does not answer, dropping it discards it instead of pooling it.
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(connect, c.disconnect()).await;
                });
                match &self.pool {
                    Pool::My(p) => {
                        let kill = async {
                            let mut k = p.get_conn().await?;
                            k.query_drop(format!("KILL QUERY {id}")).await
                        };
                        matches!(tokio::time::timeout(connect, kill).await, Ok(Ok(())))
                    }
                    Pool::Pg(..) => false,
                }
            }
            Link::Pg(c) => {
                let token = c.cancel_token();
                drop(deadpool_postgres::Object::take(*c));
                match &self.pool {
                    Pool::Pg(_, connector) => matches!(
                        tokio::time::timeout(connect, token.cancel_query(connector.clone())).await,
                        Ok(Ok(()))
                    ),
                    Pool::My(_) => false,
                }
            }
            Link::Closed => false,
        };
        let server = if cancelled {
            "the statement was cancelled on the server and the connection closed"
        } else {
            "the connection was closed; the server could not be reached to cancel the statement"
        };
        FerryError::new(
            ErrorKind::Timeout,
            format!(
                "{display}: the statement did not finish within {} (query_timeout); {server}",
                seconds(limit)
            ),
        )
        .retryable(false)
        .hint(
            "raise query_timeout if the statement is only slow; an open transaction on this \
               connection was rolled back",
        )
    }
}

impl Link {
    fn closed(display: &str) -> FerryError {
        FerryError::new(
            ErrorKind::Unavailable,
            format!("{display}: this connection was closed after a query timeout"),
        )
    }

    async fn query(&mut self, display: &str, sql: &str, params: &[SqlValue]) -> Result<ResultSet> {
        match self {
            Link::Closed => Err(Link::closed(display)),
            Link::My(c) => my_run!(c, sql, params, display, |r| my_collect(r, display)),
            Link::Pg(c) => {
                let sql = statement::to_dollar_params(sql);
                let stmt = c.prepare(&sql).await.map_err(|e| pg_error(display, e))?;
                let ps = pg_params(params);
                let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = ps
                    .iter()
                    .map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync))
                    .collect();
                let rows = c
                    .query(&stmt, &refs)
                    .await
                    .map_err(|e| pg_error(display, e))?;
                let mut rs = ResultSet {
                    columns: stmt
                        .columns()
                        .iter()
                        .map(|c| c.name().to_string())
                        .collect(),
                    rows: Vec::with_capacity(rows.len()),
                };
                for r in &rows {
                    rs.rows.push(pg_row(display, r)?);
                }
                Ok(rs)
            }
        }
    }

    async fn exec(
        &mut self,
        display: &str,
        sql: &str,
        params: &[SqlValue],
    ) -> Result<(u64, Option<u64>)> {
        match self {
            Link::Closed => Err(Link::closed(display)),
            Link::My(c) => my_run!(c, sql, params, display, |r| my_affected(r, display)),
            Link::Pg(c) => {
                if params.is_empty() {
                    // Utility statements and scripts of several statements cannot be prepared.
                    match c.execute(sql, &[]).await {
                        Ok(n) => return Ok((n, None)),
                        Err(e) if e.to_string().contains("multiple commands") => {
                            c.batch_execute(sql)
                                .await
                                .map_err(|e| pg_error(display, e))?;
                            return Ok((0, None));
                        }
                        Err(e) => return Err(pg_error(display, e)),
                    }
                }
                let sql = statement::to_dollar_params(sql);
                let ps = pg_params(params);
                let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = ps
                    .iter()
                    .map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync))
                    .collect();
                let n = c
                    .execute(&sql, &refs)
                    .await
                    .map_err(|e| pg_error(display, e))?;
                Ok((n, None))
            }
        }
    }

    async fn load_data_local(
        &mut self,
        display: &str,
        sql: &str,
        data: bytes::Bytes,
    ) -> Result<Option<Loaded>> {
        match self {
            Link::Closed => Err(Link::closed(display)),
            Link::My(c) => {
                // The handler answers only the server's request for this statement's file;
                // with no handler set, mysql_async refuses any file the server asks for.
                c.set_infile_handler(async move {
                    let chunks: Vec<std::io::Result<bytes::Bytes>> = (0..data.len())
                        .step_by(1 << 20)
                        .map(|at| Ok(data.slice(at..data.len().min(at + (1 << 20)))))
                        .collect();
                    Ok(futures::stream::iter(chunks).boxed())
                });
                match c.query_drop(sql).await {
                    Ok(()) => Ok(Some(Loaded {
                        affected: c.affected_rows(),
                        warnings: c.get_warnings(),
                    })),
                    Err(e) => {
                        // The server did not ask for the file: drop the unused handler's data.
                        c.set_infile_handler(async {
                            Err(mysql_async::Error::Other(
                                "no LOAD DATA LOCAL expected on this connection".into(),
                            ))
                        });
                        match e {
                            mysql_async::Error::Server(se) if load_data_refused(se.code) => {
                                Ok(None)
                            }
                            e => Err(mysql_error(display, e)),
                        }
                    }
                }
            }
            Link::Pg(_) => Err(FerryError::new(
                ErrorKind::InvalidInput,
                format!("{display}: LOAD DATA LOCAL INFILE is a MySQL statement"),
            )),
        }
    }

    /// Streams rows into `tx`; with `limit`, the server may stay silent at most that long
    /// before the first and between rows (an error of kind timeout otherwise).
    async fn stream_into(
        &mut self,
        display: &str,
        sql: &str,
        params: &[SqlValue],
        tx: &mpsc::Sender<Result<Vec<SqlValue>>>,
        limit: Option<Duration>,
    ) -> Result<()> {
        match self {
            Link::Closed => Err(Link::closed(display)),
            Link::My(c) => {
                // The text protocol without parameters (see my_run!), the binary one with them.
                if params.is_empty() {
                    let r = within(limit, c.query_iter(sql))
                        .await?
                        .map_err(|e| mysql_error(display, e))?;
                    my_send(r, display, tx, limit).await
                } else {
                    let r = within(limit, c.exec_iter(sql, my_params(params)))
                        .await?
                        .map_err(|e| mysql_error(display, e))?;
                    my_send(r, display, tx, limit).await
                }
            }
            Link::Pg(c) => {
                let sql = statement::to_dollar_params(sql);
                let stmt = within(limit, c.prepare(&sql))
                    .await?
                    .map_err(|e| pg_error(display, e))?;
                let names = stmt
                    .columns()
                    .iter()
                    .map(|c| SqlValue::Text(c.name().to_string()))
                    .collect();
                if tx.send(Ok(names)).await.is_err() {
                    return Ok(());
                }
                let ps = pg_params(params);
                let stream = within(limit, c.query_raw(&stmt, ps.iter()))
                    .await?
                    .map_err(|e| pg_error(display, e))?;
                futures::pin_mut!(stream);
                while let Some(row) = within(limit, stream.next()).await? {
                    let row = row.map_err(|e| pg_error(display, e))?;
                    let out = pg_row(display, &row)?;
                    if tx.send(Ok(out)).await.is_err() {
                        break;
                    }
                }
                Ok(())
            }
        }
    }
}
