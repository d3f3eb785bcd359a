//! SQL access: MySQL-protocol servers (MySQL, MariaDB, StarRocks FE) through mysql_async, and
//! PostgreSQL through tokio-postgres with a deadpool pool. One placeholder style (`?`) for both;
//! values map through [`value::SqlValue`].

pub mod copy_table;
pub mod lua;
pub mod statement;
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
}

#[derive(Clone)]
enum Pool {
    My(mysql_async::Pool),
    Pg(deadpool_postgres::Pool),
}

/// One connection, for transactions, streaming and copy workers.
pub enum Conn {
    My(mysql_async::Conn),
    Pg(Box<deadpool_postgres::Object>),
}

#[derive(Debug, Clone, Default)]
pub struct ResultSet {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<SqlValue>>,
}

#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    pub pool_size: Option<usize>,
    /// `disable`, `prefer` (PostgreSQL's default), `require`.
    pub tls: Option<String>,
    /// A PEM file of extra CA certificates.
    pub ca: Option<String>,
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
    let kind = if closed {
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

/// libpq's `sslmode=prefer`/`require` encrypt without checking the server's certificate; ferry
/// does the same unless `tls = "verify"` asks for a verified chain and host name.
#[derive(Debug)]
struct EncryptOnly(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn pg_tls(opts: &ConnectOptions) -> Result<tokio_postgres_rustls::MakeRustlsConnect> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    if opts.tls.as_deref() != Some("verify") {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider)))
            .with_no_client_auth();
        return Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config));
    }
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(ca) = &opts.ca {
        let pem =
            std::fs::read(ca).map_err(|e| FerryError::io(format!("reading CA file {ca}"), &e))?;
        for cert in rustls_pki_types_from_pem(&pem) {
            roots.add(cert).map_err(|e| {
                FerryError::new(ErrorKind::InvalidInput, format!("CA file {ca}: {e}"))
            })?;
        }
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

fn rustls_pki_types_from_pem(pem: &[u8]) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem)
        .filter_map(|c| c.ok())
        .collect()
}

impl Db {
    /// Connects (and checks the connection with one round trip).
    pub async fn connect(url: &str, opts: &ConnectOptions) -> Result<Db> {
        let display = without_password(url);
        if let Ok(u) = url::Url::parse(url)
            && let Some(p) = u.password()
        {
            add_secret(p);
            if let Ok(decoded) = urlencoding_decode(p) {
                add_secret(&decoded);
            }
        }
        let scheme = url.split("://").next().unwrap_or("");
        let db = match scheme {
            "mysql" | "mariadb" | "starrocks" => {
                let fixed = url.replacen(&format!("{scheme}://"), "mysql://", 1);
                let base = mysql_async::Opts::from_url(&fixed).map_err(|e| {
                    FerryError::new(ErrorKind::InvalidInput, format!("{display}: {e}"))
                        .hint("mysql URLs look like mysql://user:password@host:3306/database")
                })?;
                let size = opts.pool_size.unwrap_or(16).max(1);
                let mut b = mysql_async::OptsBuilder::from_opts(base)
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
                if opts.tls.as_deref() == Some("require") {
                    let mut ssl = mysql_async::SslOpts::default();
                    if let Some(ca) = &opts.ca {
                        ssl = ssl.with_root_certs(vec![std::path::PathBuf::from(ca).into()]);
                    }
                    b = b.ssl_opts(ssl);
                }
                Db {
                    inner: Pool::My(mysql_async::Pool::new(b)),
                    display,
                    backend: Backend::Mysql,
                }
            }
            "postgres" | "postgresql" => {
                let mut cfg: tokio_postgres::Config = url.parse().map_err(|e| {
                    FerryError::new(ErrorKind::InvalidInput, format!("{display}: {e}"))
                        .hint("postgres URLs look like postgres://user:password@host:5432/database")
                })?;
                match opts.tls.as_deref() {
                    Some("disable") => {
                        cfg.ssl_mode(tokio_postgres::config::SslMode::Disable);
                    }
                    Some("require") | Some("verify") => {
                        cfg.ssl_mode(tokio_postgres::config::SslMode::Require);
                    }
                    _ => {}
                }
                cfg.connect_timeout(Duration::from_secs(15));
                let mgr = deadpool_postgres::Manager::from_config(
                    cfg,
                    pg_tls(opts)?,
                    deadpool_postgres::ManagerConfig {
                        recycling_method: deadpool_postgres::RecyclingMethod::Fast,
                    },
                );
                let pool = deadpool_postgres::Pool::builder(mgr)
                    .max_size(opts.pool_size.unwrap_or(16).max(1))
                    .runtime(deadpool_postgres::Runtime::Tokio1)
                    .build()
                    .map_err(|e| FerryError::new(ErrorKind::Internal, format!("{display}: {e}")))?;
                Db {
                    inner: Pool::Pg(pool),
                    display,
                    backend: Backend::Postgres,
                }
            }
            _ => {
                return Err(FerryError::new(
                    ErrorKind::InvalidInput,
                    format!("{display}: unknown database URL scheme '{scheme}'"),
                )
                .hint("use mysql://user:password@host:port/db or postgres://user:password@host:port/db"));
            }
        };
        // Fail now, with the server's words, rather than at the first query.
        let mut c = db.conn().await.map_err(|e| {
            let mut e = e;
            e.message = format!("cannot connect: {}", e.message);
            e
        })?;
        c.query(&db.display, "SELECT 1", &[]).await?;
        Ok(db)
    }

    /// A connection from the pool.
    pub async fn conn(&self) -> Result<Conn> {
        match &self.inner {
            Pool::My(p) => p
                .get_conn()
                .await
                .map(Conn::My)
                .map_err(|e| mysql_error(&self.display, e)),
            Pool::Pg(p) => p
                .get()
                .await
                .map(|c| Conn::Pg(Box::new(c)))
                .map_err(|e| pool_error(&self.display, e)),
        }
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
                    tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                }
                other => return other,
            }
        }
    }

    pub async fn exec(&self, sql: &str, params: &[SqlValue]) -> Result<(u64, Option<u64>)> {
        self.conn().await?.exec(&self.display, sql, params).await
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

fn urlencoding_decode(s: &str) -> std::result::Result<String, ()> {
    Ok(url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default())
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

async fn my_send<P: mysql_async::prelude::Protocol>(
    mut result: mysql_async::QueryResult<'_, 'static, P>,
    display: &str,
    tx: &mpsc::Sender<Result<Vec<SqlValue>>>,
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
    while let Some(row) = result.next().await.map_err(|e| mysql_error(display, e))? {
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
        match self {
            Conn::My(c) => my_run!(c, sql, params, display, |r| my_collect(r, display)),
            Conn::Pg(c) => {
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

    /// Runs a statement; returns (affected rows, last insert id).
    pub async fn exec(
        &mut self,
        display: &str,
        sql: &str,
        params: &[SqlValue],
    ) -> Result<(u64, Option<u64>)> {
        match self {
            Conn::My(c) => my_run!(c, sql, params, display, |r| my_affected(r, display)),
            Conn::Pg(c) => {
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

    async fn stream_into(
        mut self,
        display: &str,
        sql: &str,
        params: &[SqlValue],
        tx: &mpsc::Sender<Result<Vec<SqlValue>>>,
    ) -> Result<()> {
        match &mut self {
            Conn::My(c) => my_run!(c, sql, params, display, |r| my_send(r, display, tx)),
            Conn::Pg(c) => {
                let sql = statement::to_dollar_params(sql);
                let stmt = c.prepare(&sql).await.map_err(|e| pg_error(display, e))?;
                let names = stmt
                    .columns()
                    .iter()
                    .map(|c| SqlValue::Text(c.name().to_string()))
                    .collect();
                if tx.send(Ok(names)).await.is_err() {
                    return Ok(());
                }
                let ps = pg_params(params);
                let stream = c
                    .query_raw(&stmt, ps.iter())
                    .await
                    .map_err(|e| pg_error(display, e))?;
                futures::pin_mut!(stream);
                while let Some(row) = stream.next().await {
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
