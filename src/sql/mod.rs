//! SQL access: MySQL-protocol servers (MySQL, MariaDB, StarRocks FE) through mysql_async, and
//! PostgreSQL through tokio-postgres with a deadpool pool. One placeholder style (`?`) for both;
//! values map through [`value::SqlValue`].

pub mod copy_table;
#[cfg(test)]
mod fuzz;
pub mod load_data;
pub mod lua;
pub mod pg_copy;
pub mod statement;
pub mod tls;
pub mod value;

use std::time::Duration;

use mysql_async::prelude::Queryable;
use tokio::sync::mpsc;

use crate::runtime::error::{ErrorKind, FerryError, Result};
use crate::runtime::redact::add_secret;
use value::SqlValue;

mod errors;
mod link;
mod pool;

use errors::*;
pub use errors::{mysql_error, pg_error};
use link::Link;
use pool::*;

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
