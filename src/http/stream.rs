//! Streamed request bodies: a bounded channel between a producer (a Lua iterator, or a query's
//! rows encoded as CSV or JSON by a tokio task) and reqwest's body stream. The channel holds at
//! most [`CHANNEL_CHUNKS`] chunks of about [`CHUNK_BYTES`], so a slow server stalls the producer
//! instead of growing memory. A stream is read once: it is never retried, and a redirect can be
//! followed only while none of it has been sent.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;
use tokio::sync::{Mutex, mpsc};

use crate::runtime::error::{ErrorKind, FerryError, Result};
use crate::sql::Db;
use crate::sql::value::SqlValue;

/// Chunks the producer may be ahead of the server.
pub const CHANNEL_CHUNKS: usize = 4;
/// Bytes gathered before a chunk goes into the channel.
pub const CHUNK_BYTES: usize = 64 * 1024;

/// The message for a stream that would need a second reading.
pub const NOT_REPLAYABLE: &str = "request body is a stream and cannot be replayed; not retried";

pub struct StreamSource {
    rx: Mutex<Option<mpsc::Receiver<std::io::Result<Bytes>>>>,
    consumed: AtomicBool,
    sent: AtomicU64,
}

impl StreamSource {
    pub fn new() -> (mpsc::Sender<std::io::Result<Bytes>>, Arc<StreamSource>) {
        let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
        (
            tx,
            Arc::new(StreamSource {
                rx: Mutex::new(Some(rx)),
                consumed: AtomicBool::new(false),
                sent: AtomicU64::new(0),
            }),
        )
    }

    /// Whether any chunk was taken by a request (then the stream cannot go to another URL).
    pub fn consumed(&self) -> bool {
        self.consumed.load(Ordering::SeqCst)
    }

    /// Bytes handed to the HTTP client so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }

    /// Drops the receiving end: the producer's next send fails and it stops.
    pub async fn close(&self) {
        self.rx.lock().await.take();
    }

    /// The body for reqwest (chunked: no Content-Length). Chunks are taken from the shared
    /// receiver one by one, so a request that is dropped before reading leaves the stream whole.
    pub fn body_stream(
        self: &Arc<Self>,
    ) -> futures::stream::BoxStream<'static, std::io::Result<Bytes>> {
        use futures::StreamExt;
        futures::stream::unfold(self.clone(), |s| async move {
            let item = {
                let mut g = s.rx.lock().await;
                g.as_mut()?.recv().await?
            };
            s.consumed.store(true, Ordering::SeqCst);
            if let Ok(b) = &item {
                s.sent.fetch_add(b.len() as u64, Ordering::SeqCst);
            }
            Some((item, s))
        })
        .boxed()
    }
}

/// How rows become body bytes.
#[derive(Clone, Debug, PartialEq)]
pub enum RowFormat {
    /// Values joined by `column_separator`, rows ended by `row_delimiter`, NULL as `\N`, no
    /// quoting (StarRocks Stream Load CSV without `enclose`/`escape`).
    Csv {
        column_separator: Vec<u8>,
        row_delimiter: Vec<u8>,
    },
    /// One JSON object per line.
    JsonLines,
    /// One JSON array of objects (StarRocks `format: json` + `strip_outer_array: true`).
    JsonArray,
}

/// A query whose rows are the body.
#[derive(Clone)]
pub struct RowsSpec {
    pub db: Db,
    pub sql: String,
    pub params: Vec<SqlValue>,
    pub format: RowFormat,
    /// Columns whose ISO `T` between date and time becomes a space.
    pub datetime_columns: Vec<String>,
}

/// What a rows producer did: rows encoded, and its error if it failed.
#[derive(Default)]
pub struct RowsOutcome {
    pub rows: AtomicU64,
    pub error: std::sync::Mutex<Option<FerryError>>,
    pub done: AtomicBool,
}

fn text_of(v: &SqlValue) -> Option<std::borrow::Cow<'_, [u8]>> {
    use std::borrow::Cow;
    Some(match v {
        SqlValue::Null => return None,
        SqlValue::Text(s) => Cow::Borrowed(s.as_bytes()),
        SqlValue::Bytes(b) => Cow::Borrowed(b.as_slice()),
        other => Cow::Owned(other.canonical()),
    })
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// Appends one row. Errors when a CSV value would be misread (it holds a separator or the
/// delimiter, or is the text `\N`), naming the column.
pub fn encode_row(
    out: &mut Vec<u8>,
    columns: &[String],
    row: &[SqlValue],
    format: &RowFormat,
    datetime: &[bool],
    first: bool,
) -> Result<()> {
    let fix = |i: usize, b: &[u8]| -> Vec<u8> {
        let mut v = b.to_vec();
        if datetime.get(i).copied().unwrap_or(false)
            && let Some(p) = v.iter().position(|c| *c == b'T')
        {
            v[p] = b' ';
        }
        v
    };
    match format {
        RowFormat::Csv {
            column_separator,
            row_delimiter,
        } => {
            for (i, v) in row.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(column_separator);
                }
                match text_of(v) {
                    None => out.extend_from_slice(b"\\N"),
                    Some(b) => {
                        if contains(&b, column_separator)
                            || contains(&b, row_delimiter)
                            || &*b == b"\\N"
                        {
                            return Err(FerryError::new(
                                ErrorKind::InvalidInput,
                                format!(
                                    "csv_unsafe: a value of column '{}' holds the column separator, the row \
                                     delimiter or is the text \\N, which CSV without quoting cannot carry; \
                                     use a JSON format",
                                    columns.get(i).map(String::as_str).unwrap_or("?")
                                ),
                            ));
                        }
                        if datetime.get(i).copied().unwrap_or(false) {
                            out.extend_from_slice(&fix(i, &b));
                        } else {
                            out.extend_from_slice(&b);
                        }
                    }
                }
            }
            out.extend_from_slice(row_delimiter);
        }
        RowFormat::JsonLines | RowFormat::JsonArray => {
            if *format == RowFormat::JsonArray && !first {
                out.push(b',');
            }
            let mut m = serde_json::Map::with_capacity(row.len());
            for (i, v) in row.iter().enumerate() {
                let j = match v {
                    SqlValue::Null => serde_json::Value::Null,
                    SqlValue::Int(x) => (*x).into(),
                    SqlValue::UInt(x) => (*x).into(),
                    SqlValue::Float(f) => serde_json::Number::from_f64(*f)
                        .map(serde_json::Value::Number)
                        .unwrap_or(serde_json::Value::Null),
                    SqlValue::Bool(b) => (*b).into(),
                    SqlValue::Text(s) => String::from_utf8_lossy(&fix(i, s.as_bytes()))
                        .into_owned()
                        .into(),
                    SqlValue::Bytes(b) => String::from_utf8_lossy(b).into_owned().into(),
                };
                m.insert(columns.get(i).cloned().unwrap_or_default(), j);
            }
            serde_json::to_writer(&mut *out, &serde_json::Value::Object(m)).map_err(|e| {
                FerryError::new(ErrorKind::Internal, format!("encoding a row: {e}"))
            })?;
            if *format == RowFormat::JsonLines {
                out.push(b'\n');
            }
        }
    }
    Ok(())
}

/// Runs the query and sends its rows, encoded, into `tx` in chunks; a failure is recorded in
/// `outcome` and sent down the channel so the request is aborted, not finished short.
pub async fn produce_rows(
    spec: RowsSpec,
    tx: mpsc::Sender<std::io::Result<Bytes>>,
    outcome: Arc<RowsOutcome>,
) {
    let r = produce_rows_inner(&spec, &tx, &outcome).await;
    if let Err(e) = r {
        let msg = e.one_line();
        *outcome.error.lock().expect("outcome") = Some(e);
        let _ = tx.send(Err(std::io::Error::other(msg))).await;
    }
    outcome.done.store(true, Ordering::SeqCst);
}

async fn produce_rows_inner(
    spec: &RowsSpec,
    tx: &mpsc::Sender<std::io::Result<Bytes>>,
    outcome: &RowsOutcome,
) -> Result<()> {
    let (columns, mut rx) = spec
        .db
        .stream_with_columns(spec.sql.clone(), spec.params.clone())
        .await?;
    let datetime: Vec<bool> = columns
        .iter()
        .map(|c| spec.datetime_columns.iter().any(|d| d == c))
        .collect();
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK_BYTES * 2);
    if spec.format == RowFormat::JsonArray {
        buf.push(b'[');
    }
    let mut n = 0u64;
    while let Some(row) = rx.recv().await {
        let row = row?;
        encode_row(&mut buf, &columns, &row, &spec.format, &datetime, n == 0)?;
        n += 1;
        if buf.len() >= CHUNK_BYTES {
            outcome.rows.store(n, Ordering::SeqCst);
            let chunk = Bytes::from(std::mem::replace(
                &mut buf,
                Vec::with_capacity(CHUNK_BYTES * 2),
            ));
            if tx.send(Ok(chunk)).await.is_err() {
                // The request ended (the server answered or the connection went): stop reading.
                return Ok(());
            }
        }
    }
    if spec.format == RowFormat::JsonArray {
        buf.push(b']');
    }
    outcome.rows.store(n, Ordering::SeqCst);
    if !buf.is_empty() {
        let _ = tx.send(Ok(Bytes::from(buf))).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv() -> RowFormat {
        RowFormat::Csv {
            column_separator: vec![1],
            row_delimiter: vec![2],
        }
    }

    #[test]
    fn csv_rows_with_nulls_and_datetimes() {
        let cols = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        let mut out = Vec::new();
        let row = vec![
            SqlValue::Int(7),
            SqlValue::Null,
            SqlValue::Text("2024-01-02T03:04:05".into()),
        ];
        encode_row(&mut out, &cols, &row, &csv(), &[false, false, true], true).unwrap();
        assert_eq!(out, b"7\x01\\N\x012024-01-02 03:04:05\x02");
    }

    #[test]
    fn csv_refuses_values_it_cannot_carry() {
        let cols = vec!["name".to_string()];
        for bad in ["a\x01b", "x\x02", "\\N"] {
            let mut out = Vec::new();
            let e = encode_row(
                &mut out,
                &cols,
                &[SqlValue::Text(bad.into())],
                &csv(),
                &[],
                true,
            )
            .unwrap_err();
            assert!(
                e.message.contains("csv_unsafe") && e.message.contains("'name'"),
                "{e:?}"
            );
        }
    }

    #[test]
    fn json_array_and_lines() {
        let cols = vec!["a".to_string(), "s".to_string()];
        let mut out = Vec::new();
        let r = [SqlValue::Int(1), SqlValue::Text("x\"y".into())];
        encode_row(&mut out, &cols, &r, &RowFormat::JsonArray, &[], true).unwrap();
        encode_row(&mut out, &cols, &r, &RowFormat::JsonArray, &[], false).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"a":1,"s":"x\"y"},{"a":1,"s":"x\"y"}"#
        );
        let mut out = Vec::new();
        encode_row(&mut out, &cols, &r, &RowFormat::JsonLines, &[], true).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"a\":1,\"s\":\"x\\\"y\"}\n"
        );
    }
}
