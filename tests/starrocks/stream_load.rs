//! The StarRocks double's Stream Load: `PUT /api/{db}/{table}/_stream_load`.
//!
//! The FE port checks HTTP Basic credentials and the `Expect: 100-continue` header, then answers
//! 307 with a Location on the BE port, as a real FE does. The BE port checks the credentials
//! again (a client must forward them across the redirect), takes `format: json` with
//! `strip_outer_array: true` (an array of objects keyed by column name), and loads the rows into
//! the MariaDB behind the double in one transaction. Answers are the documented JSON: `Success`,
//! `Fail` (with an ErrorURL; the label stays free), and `Label Already Exists` with
//! `ExistingJobStatus: FINISHED` for a label whose load committed, or `RUNNING` for one whose load
//! has begun and not yet committed. Injected faults (see `StarRocks::fault_loads`) fail a load,
//! commit it and drop the connection before answering, or drop it first and commit later.

use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use mysql_async::prelude::Queryable;

use super::{LoadFault, LoadRecord, Shared, bump_changed, fingerprints};

#[derive(Clone, Copy, PartialEq)]
pub enum Role {
    Fe,
    Be,
}

pub async fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>, role: Role) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let shared = shared.clone();
                async move { answer(&shared, role, req).await }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

fn json(status: u16, v: serde_json::Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(v.to_string())))
        .expect("response")
}

fn header<'a>(req: &'a Request<hyper::body::Incoming>, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

fn authorized(shared: &Shared, req: &Request<hyper::body::Incoming>) -> bool {
    let Some(v) = header(req, "authorization") else {
        return false;
    };
    let Some(b64) = v.strip_prefix("Basic ") else {
        return false;
    };
    let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(b64.trim()) else {
        return false;
    };
    raw == format!("{}:{}", shared.user, shared.password).as_bytes()
}

type Reply = Result<Response<Full<Bytes>>, std::io::Error>;

async fn answer(shared: &Arc<Shared>, role: Role, req: Request<hyper::body::Incoming>) -> Reply {
    let path = req.uri().path().to_string();
    if path == "/api/health" {
        return Ok(json(
            200,
            serde_json::json!({"status": "OK", "msg": "To Be Added"}),
        ));
    }
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    if parts.len() != 4 || parts[0] != "api" || parts[3] != "_stream_load" {
        return Ok(json(
            404,
            serde_json::json!({"status": "FAILED", "msg": "Not found"}),
        ));
    }
    if req.method() != hyper::Method::PUT {
        return Ok(json(
            405,
            serde_json::json!({"status": "FAILED", "msg": "Method Not Allowed"}),
        ));
    }
    let (db, table) = (parts[1].to_string(), parts[2].to_string());
    if !authorized(shared, &req) {
        return Ok(Response::builder()
            .status(401)
            .header("www-authenticate", "Basic realm=\"StarRocks\"")
            .body(Full::new(Bytes::from_static(b"Unauthorized")))
            .expect("response"));
    }
    if role == Role::Fe {
        if !header(&req, "expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
            return Ok(json(
                200,
                serde_json::json!({"Status": "FAILED", "Message": "There is no 100-continue header"}),
            ));
        }
        let q = req
            .uri()
            .query()
            .map(|q| format!("?{q}"))
            .unwrap_or_default();
        let be_port = shared
            .meta
            .lock()
            .expect("meta")
            .be_redirect_port
            .unwrap_or(shared.be_http_port);
        return Ok(Response::builder()
            .status(307)
            .header("location", format!("http://127.0.0.1:{be_port}{path}{q}"))
            .body(Full::new(Bytes::new()))
            .expect("response"));
    }
    let label = header(&req, "label")
        .map(str::to_string)
        .unwrap_or_else(|| format!("auto_{}", uuid::Uuid::new_v4().simple()));
    let format = header(&req, "format").unwrap_or("csv").to_ascii_lowercase();
    let strip = header(&req, "strip_outer_array").is_some_and(|v| v == "true");
    let col_sep = separator(header(&req, "column_separator").unwrap_or("\\t"));
    let row_delim = separator(header(&req, "row_delimiter").unwrap_or("\\n"));
    // be/src/http/action/stream_load.cpp StreamLoadAction::_on_header (StarRocks main, read at
    // 0072603), before the transaction begins and before the body is read: Content-Length above
    // streaming_load_max_mb fails any load; a JSON body above streaming_load_max_batch_size_mb
    // fails unless `ignore_json_size: true` (boost::iequals). A chunked body (no Content-Length)
    // has body_bytes 0 there and passes both checks; what bounds it is below, where it is read.
    let content_length: Option<u64> =
        header(&req, "content-length").and_then(|v| v.trim().parse().ok());
    let body_bytes: u64 = content_length.unwrap_or(0);
    let ignore_json_size =
        header(&req, "ignore_json_size").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let (max_body, max_json, mem_limit) = {
        let m = shared.meta.lock().expect("meta");
        (
            m.stream_load_max_bytes,
            m.json_max_batch_bytes,
            m.load_mem_limit_bytes,
        )
    };
    let refused = if body_bytes > max_body {
        Some(format!(
            "body size {body_bytes} exceed limit: {max_body}, id=0, job_id=-1, txn_id: -1, label={label}, db={db}. \
             You can increase the limit by setting streaming_load_max_mb in be.conf."
        ))
    } else if format == "json" && !ignore_json_size && body_bytes > max_json {
        Some(format!(
            "The size of this batch exceed the max size [{max_json}]  of json type data  data [ {body_bytes} ]. \
             Set ignore_json_size to skip the check, although it may lead huge memory consuming."
        ))
    } else {
        None
    };
    if let Some(msg) = refused {
        shared.meta.lock().expect("meta").loads.push(LoadRecord {
            db: db.clone(),
            table: table.clone(),
            label: label.clone(),
            status: "Fail".into(),
            rows: 0,
            bytes: body_bytes,
        });
        // StreamLoadContext::to_json: status other than OK/PUBLISH_TIMEOUT/LABEL_ALREADY_EXISTS
        // is "Fail", Message the status text. No transaction has begun: TxnId is ctx->txn_id's
        // initial -1 (runtime/stream_load/stream_load_context.h `int64_t txn_id = -1`), the
        // same value ctx->brief() printed into the message ("txn_id: -1").
        return Ok(json(
            200,
            serde_json::json!({
                "TxnId": -1, "Label": label, "Status": "Fail", "Message": msg,
                "NumberTotalRows": 0, "NumberLoadedRows": 0, "NumberFilteredRows": 0,
                "NumberUnselectedRows": 0, "LoadBytes": 0, "LoadTimeMs": 0,
                "BeginTxnTimeMs": 0, "StreamLoadPlanTimeMs": 0, "ReadDataTimeMs": 0,
                "WriteDataTimeMs": 0, "CommitAndPublishTimeMs": 0
            }),
        ));
    }
    let _in_flight = InFlight::enter(shared, &label);
    let _active = super::Active::enter(&shared.meta, format!("load {label}"));
    let drop_mid_body = {
        let mut m = shared.meta.lock().expect("meta");
        let f = m.faults.get_mut(&db);
        match f {
            Some(f) if f.first() == Some(&LoadFault::DropMidBody) => {
                f.remove(0);
                true
            }
            _ => false,
        }
    };
    if drop_mid_body {
        // Reads part of the body, then the connection goes: the BE cancels the load (its
        // transaction is aborted, StreamLoadAction::on_chunk_data / free_handler_ctx), so
        // nothing is committed and the label can be used again.
        let mut body = req.into_body();
        let mut read = 0usize;
        while read < 32 * 1024 {
            match body.frame().await {
                Some(Ok(f)) => read += f.data_ref().map(|d| d.len()).unwrap_or(0),
                _ => break,
            }
        }
        shared.meta.lock().expect("meta").loads.push(LoadRecord {
            db: db.clone(),
            table: table.clone(),
            label: label.clone(),
            status: "Cancelled".into(),
            rows: 0,
            bytes: read as u64,
        });
        return Err(std::io::Error::other(
            "connection closed by the double mid-body",
        ));
    }
    // StreamLoadAction::on_chunk_data. A chunked body is capped by streaming_load_max_mb through
    // evhttp_connection_set_max_body_size (_on_header's else branch): libevent's
    // evhttp_handle_chunked_read answers DATA_TOO_LONG once the bytes read pass it and the
    // connection is failed (evhttp_connection_fail_), so the client loses the connection and
    // nothing is committed. A JSON body is not streamed to the scanner: on_chunk_data keeps it
    // whole in ctx->buffer (processInBatchMode), growing it under the load's instance
    // MemTracker (ByteBuffer::allocate_with_tracker), so a chunked JSON body that passed
    // _on_header's size check fails when the buffer outgrows the load's memory limit
    // (ASSIGN_OR_SET_STATUS_AND_RETURN_IF_ERROR sets ctx->status; later chunks are dropped and
    // handle() answers Fail with the begun txn's id).
    let is_json = format == "json";
    let mut buf: Vec<u8> = Vec::new();
    let mut read: u64 = 0;
    let mut over_memory = false;
    let mut incoming = req.into_body();
    while let Some(frame) = incoming.frame().await {
        let frame = frame.map_err(|e| std::io::Error::other(e.to_string()))?;
        let Some(d) = frame.data_ref() else { continue };
        read += d.len() as u64;
        if content_length.is_none() && read > max_body {
            shared.meta.lock().expect("meta").loads.push(LoadRecord {
                db: db.clone(),
                table: table.clone(),
                label: label.clone(),
                status: "Cancelled".into(),
                rows: 0,
                bytes: read,
            });
            return Err(std::io::Error::other(
                "chunked body over streaming_load_max_mb: connection failed (evhttp DATA_TOO_LONG)",
            ));
        }
        if is_json && read > mem_limit {
            over_memory = true;
        }
        if !over_memory {
            buf.extend_from_slice(d);
        }
    }
    let body = Bytes::from(buf);
    hold(shared).await;
    let delay = shared.meta.lock().expect("meta").load_delay;
    tokio::time::sleep(delay).await;
    let started = std::time::Instant::now();
    let key = (db.clone(), table.clone());
    // The label is checked and, when free, filed as running in one step under the lock, as the
    // FE's beginTransaction does: it stays filed until the rows commit (then the label is used)
    // or the load fails (then it is free again), whichever way this load ends.
    let (txn, existing, running, filed, fault) = {
        let mut m = shared.meta.lock().expect("meta");
        m.next_id += 1;
        let txn = m.next_id;
        let label_key = (db.clone(), label.clone());
        let existing = m.labels.get(&label_key).copied();
        let running = match existing {
            None => m.running_labels.get(&label_key).copied(),
            Some(_) => None,
        };
        let free = existing.is_none() && running.is_none();
        let filed = free.then(|| {
            m.running_labels.insert(label_key.clone(), txn);
            RunningLabel {
                shared: shared.clone(),
                key: label_key,
            }
        });
        let fault = if free {
            m.faults.get_mut(&db).and_then(|f| {
                if f.is_empty() {
                    None
                } else {
                    Some(f.remove(0))
                }
            })
        } else {
            None
        };
        (txn, existing, running, filed, fault)
    };
    let record = |status: &str, rows: u64| {
        shared.meta.lock().expect("meta").loads.push(LoadRecord {
            db: db.clone(),
            table: table.clone(),
            label: label.clone(),
            status: status.to_string(),
            rows,
            bytes: body_bytes,
        });
    };
    // The label's earlier load: FINISHED once it committed, RUNNING while it is under way.
    let used = match (existing, running) {
        (Some(txn), _) => Some((txn, "FINISHED", "Label Already Exists")),
        (None, Some(txn)) => Some((txn, "RUNNING", "Label Already Exists (RUNNING)")),
        (None, None) => None,
    };
    if let Some((earlier, job_status, recorded)) = used {
        record(recorded, 0);
        return Ok(json(
            200,
            serde_json::json!({
                "TxnId": earlier, "Label": label, "Status": "Label Already Exists",
                "ExistingJobStatus": job_status,
                "Message": format!("Label [{label}] has already been used, relate to txn [{earlier}]"),
                "NumberTotalRows": 0, "NumberLoadedRows": 0, "NumberFilteredRows": 0,
                "NumberUnselectedRows": 0, "LoadBytes": 0, "LoadTimeMs": 0,
                "BeginTxnTimeMs": 0, "StreamLoadPlanTimeMs": 0, "ReadDataTimeMs": 0,
                "WriteDataTimeMs": 0, "CommitAndPublishTimeMs": 0
            }),
        ));
    }
    let fail = |msg: String| {
        record("Fail", 0);
        Ok(json(
            200,
            serde_json::json!({
                "TxnId": txn, "Label": label, "Status": "Fail", "Message": msg,
                "NumberTotalRows": 0, "NumberLoadedRows": 0, "NumberFilteredRows": 0,
                "NumberUnselectedRows": 0, "LoadBytes": body.len(), "LoadTimeMs": 1,
                "BeginTxnTimeMs": 0, "StreamLoadPlanTimeMs": 0, "ReadDataTimeMs": 0,
                "WriteDataTimeMs": 0, "CommitAndPublishTimeMs": 0,
                "ErrorURL": format!("http://127.0.0.1:{}/api/_load_error_log?file=error_log_{txn}", shared.be_http_port)
            }),
        ))
    };
    // StarRocks' System limits: labels are digits, letters and underscores, at most 128.
    if label.is_empty()
        || label.len() > 128
        || !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return fail(format!("Incorrect label format: {label}"));
    }
    if over_memory {
        return fail(format!(
            "Memory limit exceeded: a JSON body is buffered whole and {read} bytes pass the load's \
             memory limit {mem_limit} (StreamLoadAction::on_chunk_data; the double's wording)"
        ));
    }
    if fault == Some(LoadFault::Fail) {
        return fail("[E1008]Reached timeout=600000ms @127.0.0.1 (injected by the double)".into());
    }
    if format == "json" && !strip {
        return fail("the StarRocks double takes format=json with strip_outer_array=true".into());
    }
    if format != "json" && format != "csv" {
        return fail(format!("unknown data format: {format}"));
    }
    if !shared.meta.lock().expect("meta").tables.contains_key(&key) {
        return fail(format!("unknown table, tableName={table}"));
    }
    let csv = if format == "csv" {
        let names = match table_columns(shared, &key).await {
            Ok(n) => n,
            Err(m) => return fail(m),
        };
        Some(match csv_rows(&body, &col_sep, &row_delim, &names) {
            Ok(r) => r,
            Err(m) => return fail(m),
        })
    } else {
        None
    };
    let rows: Vec<serde_json::Map<String, serde_json::Value>> = if let Some(r) = csv {
        r
    } else {
        match serde_json::from_slice::<serde_json::Value>(&body) {
            Ok(serde_json::Value::Array(items)) => {
                let mut out = Vec::new();
                for it in items {
                    match it {
                        serde_json::Value::Object(o) => out.push(o),
                        _ => return fail("JSON array items must be objects".into()),
                    }
                }
                out
            }
            Ok(_) => return fail("the body is not a JSON array".into()),
            Err(e) => return fail(format!("JSON parse error: {e}")),
        }
    };
    let mut conn = match shared.pool.get_conn().await {
        Ok(c) => c,
        Err(e) => return fail(format!("backend: {e}")),
    };
    let before = match fingerprints(shared, &mut conn, &key).await {
        Ok(f) => f,
        Err((_, m)) => return fail(m),
    };
    // The label is taken with the rows' commit, as StarRocks records a load's label in the
    // transaction that publishes its data: the FE files the label with the transaction's state
    // at begin and updates that same state when it commits, so a committed load's label is
    // "used" (fe/fe-core/src/main/java/com/starrocks/transaction/DatabaseTransactionMgr.java,
    // `beginTransaction` and `commitTransaction`, both through `unprotectUpsertTransactionState`;
    // reached from GlobalTransactionMgr.java). The INSERTs, the COMMIT and the label record
    // run in a task of their own: a client that goes away drops this handler's future, not the
    // task (dropping a JoinHandle does not cancel it), so the COMMIT's round trip to MariaDB can
    // no longer end with rows committed and no label, which a retry under the same label would
    // load twice (found at 100 kills, seed 2206).
    let n_rows = rows.len();
    let commit_later = match fault {
        Some(LoadFault::DropThenCommit(d)) => Some(d),
        _ => None,
    };
    let done = LoadRecord {
        db: db.clone(),
        table: table.clone(),
        label: label.clone(),
        status: "Success".into(),
        rows: n_rows as u64,
        bytes: body_bytes,
    };
    let commit = {
        let (shared, key, label_key) = (shared.clone(), key.clone(), (db.clone(), label.clone()));
        tokio::spawn(async move {
            if let Some(d) = commit_later {
                tokio::time::sleep(d).await;
            }
            let r = load_rows(&shared, &mut conn, &key, &rows).await;
            if r.is_ok() {
                shared
                    .meta
                    .lock()
                    .expect("meta")
                    .labels
                    .insert(label_key, txn);
            }
            drop(filed);
            r?;
            // Published whether or not the client still listens, as the FE publishes a
            // committed transaction.
            super::auto_partition::create_partitions(&shared, &mut conn, &key, false)
                .await
                .map_err(|(_, m)| m)?;
            bump_changed(&shared, &mut conn, &key, &before)
                .await
                .map_err(|(_, m)| m)?;
            shared.meta.lock().expect("meta").loads.push(done);
            Ok::<(), String>(())
        })
    };
    if commit_later.is_some() {
        // The task goes on alone (dropping its handle does not cancel it).
        return Err(std::io::Error::other(
            "connection dropped by the double before answering; the load commits later",
        ));
    }
    match commit.await {
        Ok(Ok(())) => {}
        Ok(Err(m)) => return fail(m),
        Err(e) => return fail(format!("load task: {e}")),
    }
    match fault {
        Some(LoadFault::CommitThenDrop) => {
            return Err(std::io::Error::other(
                "connection dropped by the double after commit",
            ));
        }
        Some(LoadFault::CommitThenHang(d)) => tokio::time::sleep(d).await,
        _ => {}
    }
    let ms = started.elapsed().as_millis() as u64;
    Ok(json(
        200,
        serde_json::json!({
            "TxnId": txn, "Label": label, "Status": "Success", "Message": "OK",
            "NumberTotalRows": n_rows, "NumberLoadedRows": n_rows,
            "NumberFilteredRows": 0, "NumberUnselectedRows": 0, "LoadBytes": body.len(),
            "LoadTimeMs": ms, "BeginTxnTimeMs": 0, "StreamLoadPlanTimeMs": 1,
            "ReadDataTimeMs": 0, "WriteDataTimeMs": ms, "CommitAndPublishTimeMs": 1
        }),
    ))
}

/// A label in `Meta::running_labels` from its load's begin until the load commits or fails:
/// dropping it takes the label out.
struct RunningLabel {
    shared: Arc<Shared>,
    key: (String, String),
}

impl Drop for RunningLabel {
    fn drop(&mut self) {
        if let Ok(mut m) = self.shared.meta.lock() {
            m.running_labels.remove(&self.key);
        }
    }
}

/// A load on the BE port, in `Meta::loads_in_flight` until it answers or its connection goes.
struct InFlight<'a> {
    shared: &'a Shared,
    label: String,
}

impl<'a> InFlight<'a> {
    fn enter(shared: &'a Shared, label: &str) -> InFlight<'a> {
        let mut m = shared.meta.lock().expect("meta");
        m.loads_in_flight.push(label.to_string());
        m.loads_entered += 1;
        if m.loads_in_flight.len() > m.peak_in_flight.len() {
            m.peak_in_flight = m.loads_in_flight.clone();
        }
        InFlight {
            shared,
            label: label.to_string(),
        }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Ok(mut m) = self.shared.meta.lock()
            && let Some(i) = m.loads_in_flight.iter().position(|l| *l == self.label)
        {
            m.loads_in_flight.remove(i);
        }
    }
}

/// Waits while `StarRocks::hold_loads_until` asks for more loads to have started (at most two
/// minutes: a client loading one at a time must still finish).
async fn hold(shared: &Shared) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let wait = {
            let m = shared.meta.lock().expect("meta");
            m.hold_until_entered.is_some_and(|n| m.loads_entered < n)
        };
        if !wait || std::time::Instant::now() > deadline {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

fn to_value(v: &serde_json::Value) -> mysql_async::Value {
    match v {
        serde_json::Value::Null => mysql_async::Value::NULL,
        serde_json::Value::Bool(b) => mysql_async::Value::Int(*b as i64),
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => mysql_async::Value::Int(i),
            (None, Some(u)) => mysql_async::Value::UInt(u),
            _ => mysql_async::Value::Double(n.as_f64().unwrap_or(0.0)),
        },
        serde_json::Value::String(s) => mysql_async::Value::Bytes(s.as_bytes().to_vec()),
        other => mysql_async::Value::Bytes(other.to_string().into_bytes()),
    }
}

async fn load_rows(
    shared: &Shared,
    conn: &mut mysql_async::Conn,
    key: &(String, String),
    rows: &[serde_json::Map<String, serde_json::Value>],
) -> Result<(), String> {
    let mut tx = conn
        .start_transaction(mysql_async::TxOpts::default())
        .await
        .map_err(|e| shared.unmap(&e.to_string()))?;
    for chunk in rows.chunks(500) {
        let Some(first) = chunk.first() else { continue };
        let names: Vec<&String> = first.keys().collect();
        let cols = names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let one = format!("({})", vec!["?"; names.len()].join(", "));
        let sql = format!(
            "INSERT INTO `{}`.`{}` ({cols}) VALUES {}",
            shared.mdb(&key.0),
            key.1,
            vec![one; chunk.len()].join(", ")
        );
        let mut params = Vec::with_capacity(names.len() * chunk.len());
        for r in chunk {
            for n in &names {
                params.push(to_value(r.get(*n).unwrap_or(&serde_json::Value::Null)));
            }
        }
        tx.exec_drop(sql, params)
            .await
            .map_err(|e| shared.unmap(&e.to_string()))?;
    }
    tx.commit().await.map_err(|e| shared.unmap(&e.to_string()))
}

/// A separator header: `\x` followed by hex digits is those bytes (FE ColumnSeparator /
/// RowDelimiter convertSeparator: "\\x01" style hex, up to 50 bytes), otherwise the text itself;
/// the escapes `\t` and `\n` are the characters.
fn separator(v: &str) -> Vec<u8> {
    if let Some(hex) = v.strip_prefix("\\x").or_else(|| v.strip_prefix("\\X"))
        && let Ok(b) = hex::decode(hex)
    {
        return b;
    }
    match v {
        "\\t" => b"\t".to_vec(),
        "\\n" => b"\n".to_vec(),
        _ => v.as_bytes().to_vec(),
    }
}

/// The table's columns in schema order: a CSV field maps to them by position when no `columns`
/// header is given (STREAM_LOAD.md, "columns").
async fn table_columns(shared: &Shared, key: &(String, String)) -> Result<Vec<String>, String> {
    let mut conn = shared.pool.get_conn().await.map_err(|e| e.to_string())?;
    conn.exec(
        "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
        (shared.mdb(&key.0), key.1.clone()),
    )
    .await
    .map_err(|e| e.to_string())
}

/// CSV as StarRocks reads it without `enclose`/`escape` (be/src/formats/csv/csv_reader.cpp
/// CSVReader::next_record / split_record): records end at row_delimiter (an empty last record
/// is none), fields split at column_separator, `\N` is NULL (formats/csv/nullable_converter.cpp),
/// a record with another field count is an error row (filtered: with max_filter_ratio 0 the load
/// fails).
fn csv_rows(
    body: &[u8],
    sep: &[u8],
    delim: &[u8],
    names: &[String],
) -> Result<Vec<serde_json::Map<String, serde_json::Value>>, String> {
    fn split<'a>(b: &'a [u8], by: &[u8]) -> Vec<&'a [u8]> {
        let mut out = Vec::new();
        let mut start = 0;
        let mut i = 0;
        while i + by.len() <= b.len() {
            if &b[i..i + by.len()] == by {
                out.push(&b[start..i]);
                i += by.len();
                start = i;
            } else {
                i += 1;
            }
        }
        out.push(&b[start..]);
        out
    }
    let mut records = split(body, delim);
    if records.last().is_some_and(|r| r.is_empty()) {
        records.pop();
    }
    let mut rows = Vec::with_capacity(records.len());
    for (n, rec) in records.iter().enumerate() {
        let fields = split(rec, sep);
        if fields.len() != names.len() {
            return Err(format!(
                "too many filtered rows: record {} has {} columns, the table {}",
                n + 1,
                fields.len(),
                names.len()
            ));
        }
        let mut m = serde_json::Map::new();
        for (name, f) in names.iter().zip(fields) {
            let v = if f == b"\\N" {
                serde_json::Value::Null
            } else {
                serde_json::Value::String(String::from_utf8_lossy(f).into_owned())
            };
            m.insert(name.clone(), v);
        }
        rows.push(m);
    }
    Ok(rows)
}
