//! One connection on the wire: a statement on a MySQL-protocol or PostgreSQL connection, its rows
//! collected, counted or streamed into a channel, under the statement limit when one is set.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use mysql_async::prelude::Queryable;
use tokio::sync::mpsc;

use super::errors::*;
use super::value::{self, PgParam, SqlValue};
use super::{Loaded, ResultSet, statement};
use crate::runtime::error::{ErrorKind, FerryError, Result};

/// MySQL/MariaDB answers that mean the server does not take `LOAD DATA LOCAL` from this client:
/// 1148 (ER_NOT_ALLOWED_COMMAND, older servers with local_infile off), 4166 (MariaDB 10.5+'s
/// ER_LOAD_INFILE_CAPABILITY_DISABLED), 3948 (MySQL 8's "loading local data is disabled"), 3950
/// (MySQL 8, rejected on the client side).
fn load_data_refused(code: u16) -> bool {
    matches!(code, 1148 | 4166 | 3948 | 3950)
}

pub(super) enum Link {
    My(mysql_async::Conn),
    Pg(Box<deadpool_postgres::Object>),
    /// Closed after a timeout.
    Closed,
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

impl Link {
    pub(super) fn closed(display: &str) -> FerryError {
        FerryError::new(
            ErrorKind::Unavailable,
            format!("{display}: this connection was closed after a query timeout"),
        )
    }

    pub(super) async fn query(
        &mut self,
        display: &str,
        sql: &str,
        params: &[SqlValue],
    ) -> Result<ResultSet> {
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

    pub(super) async fn exec(
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

    pub(super) async fn load_data_local(
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
    pub(super) async fn stream_into(
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
