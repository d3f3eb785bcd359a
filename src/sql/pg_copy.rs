//! Rows in PostgreSQL's binary `COPY ... FROM STDIN` form, for copy_table's PostgreSQL load
//! path: the server reads a stream of typed fields far more cheaply than it plans and binds a
//! multi-row INSERT of thousands of parameters.
//!
//! Every field is encoded by [`PgParam`] for the column's type, exactly as the INSERT path binds
//! it, so the two paths store the same values. One batch is one COPY statement: in autocommit it
//! is its own transaction, kept whole or not at all.

use bytes::{BufMut, Bytes, BytesMut};
use futures::SinkExt;
use tokio_postgres::types::{IsNull, Kind, ToSql, Type};

use super::Conn;
use super::errors::pg_error;
use super::link::Link;
use super::value::{PgParam, SqlValue};
use crate::runtime::error::{ErrorKind, FerryError, Result};

/// Column types [`PgParam`] encodes in their binary form (the others would get their text, which
/// only text-like types read back unchanged). Others keep the INSERT path.
pub fn copyable_type(ty: &Type) -> bool {
    matches!(
        *ty,
        Type::BOOL
            | Type::INT2
            | Type::INT4
            | Type::INT8
            | Type::OID
            | Type::FLOAT4
            | Type::FLOAT8
            | Type::NUMERIC
            | Type::BYTEA
            | Type::DATE
            | Type::TIME
            | Type::TIMESTAMP
            | Type::TIMESTAMPTZ
            | Type::JSON
            | Type::JSONB
            | Type::UUID
            | Type::TEXT
            | Type::VARCHAR
            | Type::BPCHAR
            | Type::NAME
    ) || matches!(ty.kind(), Kind::Enum(_))
}

/// The statement loading `columns` of `table` (both already quoted) from binary rows.
pub fn statement(table: &str, columns: &[String]) -> String {
    format!(
        "COPY {table} ({}) FROM STDIN (FORMAT binary)",
        columns.join(", ")
    )
}

/// One batch in binary COPY form: `types.len()` values per row. An error names the column and
/// the value that cannot be stored as its type (the INSERT of it would fail the same way).
pub fn encode(values: &[SqlValue], types: &[Type], names: &[String]) -> Result<Bytes> {
    let width = types.len().max(1);
    let mut out = BytesMut::with_capacity(19 + values.len() * 16);
    out.put_slice(b"PGCOPY\n\xff\r\n\0");
    out.put_i32(0); // flags
    out.put_i32(0); // header extension length
    for row in values.chunks(width) {
        out.put_i16(row.len() as i16);
        for (i, v) in row.iter().enumerate() {
            let at = out.len();
            out.put_i32(0);
            let param = PgParam(v.clone());
            match param.to_sql(&types[i], &mut out) {
                Ok(IsNull::Yes) => out[at..at + 4].copy_from_slice(&(-1i32).to_be_bytes()),
                Ok(IsNull::No) => {
                    let len = i32::try_from(out.len() - at - 4).map_err(|_| {
                        FerryError::new(ErrorKind::InvalidInput, "a value over 2 GiB")
                    })?;
                    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
                }
                Err(e) => {
                    return Err(FerryError::new(
                        ErrorKind::InvalidInput,
                        format!(
                            "column {} ({}): {e}",
                            names.get(i).map(String::as_str).unwrap_or("?"),
                            types[i]
                        ),
                    ));
                }
            }
        }
    }
    out.put_i16(-1);
    Ok(out.freeze())
}

impl Link {
    /// The types of the columns `sql` (a SELECT) returns, without running it.
    async fn pg_column_types(&mut self, display: &str, sql: &str) -> Result<Vec<Type>> {
        match self {
            Link::Pg(c) => {
                let stmt = c.prepare(sql).await.map_err(|e| pg_error(display, e))?;
                Ok(stmt.columns().iter().map(|c| c.type_().clone()).collect())
            }
            Link::Closed => Err(Link::closed(display)),
            Link::My(_) => Err(not_postgres(display)),
        }
    }

    async fn pg_copy_in(&mut self, display: &str, sql: &str, data: Bytes) -> Result<u64> {
        match self {
            Link::Pg(c) => {
                let sink = c
                    .copy_in::<_, Bytes>(sql)
                    .await
                    .map_err(|e| pg_error(display, e))?;
                futures::pin_mut!(sink);
                // Dropped unfinished after an error, the sink ends the COPY with CopyFail: the
                // server keeps nothing of it.
                sink.send(data).await.map_err(|e| pg_error(display, e))?;
                sink.as_mut()
                    .finish()
                    .await
                    .map_err(|e| pg_error(display, e))
            }
            Link::Closed => Err(Link::closed(display)),
            Link::My(_) => Err(not_postgres(display)),
        }
    }
}

fn not_postgres(display: &str) -> FerryError {
    FerryError::new(
        ErrorKind::InvalidInput,
        format!("{display}: COPY FROM STDIN is a PostgreSQL statement"),
    )
}

impl Conn {
    /// The types of the columns a SELECT returns (PostgreSQL), by preparing it.
    pub async fn pg_column_types(&mut self, display: &str, sql: &str) -> Result<Vec<Type>> {
        self.link.pg_column_types(display, sql).await
    }

    /// Runs `COPY ... FROM STDIN` (`sql`) with `data` as its input; returns the rows copied.
    pub async fn pg_copy_in(&mut self, display: &str, sql: &str, data: Bytes) -> Result<u64> {
        let Some(limit) = self.limits.query else {
            return self.link.pg_copy_in(display, sql, data).await;
        };
        match tokio::time::timeout(limit, self.link.pg_copy_in(display, sql, data)).await {
            Ok(r) => r,
            Err(_) => Err(self.timed_out(display, limit).await),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_rows_have_the_header_lengths_nulls_and_trailer() {
        let b = encode(
            &[
                SqlValue::Int(7),
                SqlValue::Null,
                SqlValue::Text("a\tb\\N".into()),
            ],
            &[Type::INT8, Type::TEXT, Type::TEXT],
            &["id".into(), "a".into(), "b".into()],
        )
        .unwrap();
        let mut want = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0".to_vec();
        want.extend_from_slice(&3i16.to_be_bytes());
        want.extend_from_slice(&8i32.to_be_bytes());
        want.extend_from_slice(&7i64.to_be_bytes());
        want.extend_from_slice(&(-1i32).to_be_bytes());
        want.extend_from_slice(&5i32.to_be_bytes());
        want.extend_from_slice(b"a\tb\\N");
        want.extend_from_slice(&(-1i16).to_be_bytes());
        assert_eq!(&b[..], &want[..]);
    }

    #[test]
    fn a_value_the_column_cannot_hold_names_the_column() {
        let e = encode(&[SqlValue::Text("x".into())], &[Type::INT4], &["n".into()]).unwrap_err();
        assert!(e.message.contains("column n (int4)"), "{}", e.message);
    }

    #[test]
    fn types_without_a_binary_encoding_are_not_copyable() {
        assert!(copyable_type(&Type::NUMERIC) && copyable_type(&Type::BYTEA));
        assert!(!copyable_type(&Type::INET) && !copyable_type(&Type::INTERVAL));
    }
}
