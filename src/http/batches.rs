//! The bodies of `ferry.http.row_batches`: a query's rows encoded and cut at `max_bytes`.

use super::stream::RowFormat;

/// What `row_batches` iterates over: the query's rows and the encoded row that did not fit
/// into the last batch.
pub(crate) struct Batches {
    pub rx: tokio::sync::mpsc::Receiver<
        crate::runtime::error::Result<Vec<crate::sql::value::SqlValue>>,
    >,
    pub columns: Vec<String>,
    pub datetime: Vec<bool>,
    pub format: RowFormat,
    pub max_bytes: usize,
    pub held: Option<Vec<u8>>,
    pub done: bool,
}

impl Batches {
    /// The next body (rows encoded, a JSON array closed) and its row count; None at the end.
    pub async fn next(&mut self) -> crate::runtime::error::Result<Option<(Vec<u8>, u64)>> {
        use super::stream::encode_row;
        if self.done && self.held.is_none() {
            return Ok(None);
        }
        let array = self.format == RowFormat::JsonArray;
        let mut out: Vec<u8> = Vec::new();
        if array {
            out.push(b'[');
        }
        let mut n = 0u64;
        loop {
            let row = match self.held.take() {
                Some(r) => r,
                None => {
                    if self.done {
                        break;
                    }
                    match self.rx.recv().await {
                        Some(r) => {
                            let r = r?;
                            let mut one = Vec::new();
                            encode_row(
                                &mut one,
                                &self.columns,
                                &r,
                                &self.format,
                                &self.datetime,
                                true,
                            )?;
                            one
                        }
                        None => {
                            self.done = true;
                            break;
                        }
                    }
                }
            };
            // A row that would take the body past max_bytes starts the next one (a single row
            // larger than max_bytes goes alone).
            let extra = row.len() + usize::from(array && n > 0) + usize::from(array);
            if n > 0 && out.len() + extra > self.max_bytes {
                self.held = Some(row);
                break;
            }
            if array && n > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&row);
            n += 1;
        }
        if n == 0 {
            return Ok(None);
        }
        if array {
            out.push(b']');
        }
        Ok(Some((out, n)))
    }
}
