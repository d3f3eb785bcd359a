//! Lua binding of `ferry.http` (its description, for the option checks and the reference, is
//! `docs.rs`).

use bytes::Bytes;
use mlua::{Lua, LuaSerdeExt, Table, Value};
use reqwest::Method;

use super::batches::Batches;
use super::stream::{CHUNK_BYTES, RowFormat, RowsOutcome, RowsSpec, StreamSource};
use super::{Auth, Body, Request, Response, body_start, status_kind};
use crate::runtime::context::ctx;
use crate::runtime::error::{ErrorKind, FerryError, IntoLuaResult};
use crate::store::lua::LuaStore;
use crate::throttle::lua::limiter_from;

pub use super::docs::{MODULE, RESPONSE};

/// A body read while the request goes: produced only once the request is really sent.
enum Deferred {
    None,
    Lua(mlua::Function),
    Rows(RowsSpec),
}

/// The query part of a body (`body = {db = d, sql = ...}` of a request, or of `row_batches`,
/// which also takes max_bytes): its keys are those documented for `row_batches`.
fn rows_spec(b: &Table, fn_name: &str) -> mlua::Result<RowsSpec> {
    let mut known = crate::runtime::options::documented(&MODULE, "row_batches");
    if fn_name != "ferry.http.row_batches" {
        known.retain(|k| *k != "max_bytes");
    }
    crate::runtime::options::check_keys(b, &known, fn_name)?;
    let db: mlua::AnyUserData = b.get("db")?;
    let db = db.borrow::<crate::sql::lua::LuaDb>()?.db.clone();
    let sql: String = b
        .get::<Option<String>>("sql")?
        .ok_or_else(|| bad("a query body needs sql"))?;
    let params = crate::sql::lua::params_from(b.get::<Option<Table>>("params")?)?;
    let sep = |k: &str, default: &str| -> mlua::Result<Vec<u8>> {
        let v = b
            .get::<Option<mlua::LuaString>>(k)?
            .map(|s| s.as_bytes().to_vec())
            .unwrap_or_else(|| default.as_bytes().to_vec());
        if v.is_empty() {
            return Err(bad(format!("{k} must not be empty")));
        }
        Ok(v)
    };
    let format = match b.get::<Option<String>>("format")?.as_deref() {
        None | Some("csv") => RowFormat::Csv {
            column_separator: sep("column_separator", "\t")?,
            row_delimiter: sep("row_delimiter", "\n")?,
        },
        Some("json_lines") => RowFormat::JsonLines,
        Some("json_array") => RowFormat::JsonArray,
        Some(other) => {
            return Err(bad(format!(
                "body format '{other}' is not one of csv, json_lines, json_array"
            )));
        }
    };
    let datetime_columns = match b.get::<Option<Table>>("datetime_columns")? {
        Some(t) => t.sequence_values::<String>().collect::<mlua::Result<_>>()?,
        None => Vec::new(),
    };
    Ok(RowsSpec {
        db,
        sql,
        params,
        format,
        datetime_columns,
    })
}

fn bad(msg: impl Into<String>) -> mlua::Error {
    FerryError::new(
        ErrorKind::InvalidInput,
        format!("ferry.http: {}", msg.into()),
    )
    .into()
}

fn build_request(lua: &Lua, t: &Table) -> mlua::Result<(Request, Vec<u16>, Deferred)> {
    let mut deferred = Deferred::None;
    crate::runtime::options::check_documented(t, &MODULE, "request")?;
    let method: String = t
        .get::<Option<String>>("method")?
        .unwrap_or_else(|| "GET".into());
    let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
        .map_err(|_| bad(format!("bad method '{method}'")))?;
    let url_text: String = t
        .get::<Option<String>>("url")?
        .ok_or_else(|| bad("url is required"))?;
    let mut url =
        url::Url::parse(&url_text).map_err(|e| bad(format!("'{url_text}' is not a URL: {e}")))?;
    if let Some(q) = t.get::<Option<Table>>("query")? {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for pair in q.pairs::<String, Value>() {
            let (k, v) = pair?;
            pairs.push((k, v.to_string()?));
        }
        pairs.sort();
        url.query_pairs_mut().extend_pairs(pairs);
    }
    let mut req = Request::new(method, url);
    if let Some(h) = t.get::<Option<Table>>("headers")? {
        for pair in h.pairs::<String, Value>() {
            let (k, v) = pair?;
            req.headers.push((k, v.to_string()?));
        }
    }
    let bodies = ["json", "body", "form", "file", "object"]
        .iter()
        .filter(|k| !matches!(t.get::<Value>(**k), Ok(Value::Nil)))
        .count();
    if bodies > 1 {
        return Err(bad("give only one of json, body, form, file and object"));
    }
    let has_header = |req: &Request, name: &str| {
        req.headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case(name))
    };
    if let v @ (Value::Table(_)
    | Value::String(_)
    | Value::Integer(_)
    | Value::Number(_)
    | Value::Boolean(_)) = t.get::<Value>("json")?
    {
        let j: serde_json::Value = lua.from_value(v)?;
        req.body = Body::Bytes(Bytes::from(j.to_string()));
        if !has_header(&req, "content-type") {
            req.headers
                .push(("Content-Type".into(), "application/json".into()));
        }
    }
    match t.get::<Value>("body")? {
        Value::Nil => {}
        Value::String(b) => req.body = Body::Bytes(Bytes::copy_from_slice(&b.as_bytes())),
        Value::Function(f) => deferred = Deferred::Lua(f),
        Value::Table(b) if b.contains_key("store")? => {
            let store: mlua::AnyUserData = b.get("store")?;
            let key: String = b.get("key")?;
            req.body = Body::Object(store.borrow::<LuaStore>()?.0.clone(), key);
        }
        Value::Table(b) if b.contains_key("db")? => {
            deferred = Deferred::Rows(rows_spec(&b, "ferry.http.request body")?)
        }
        other => {
            return Err(bad(format!(
                "body must be a string, an iterator function, {{store = s, key = k}} or {{db = d, sql = ...}}, not a {}",
                other.type_name()
            )));
        }
    }
    if let Some(f) = t.get::<Option<Table>>("form")? {
        let mut ser = url::form_urlencoded::Serializer::new(String::new());
        let mut pairs: Vec<(String, String)> = Vec::new();
        for pair in f.pairs::<String, Value>() {
            let (k, v) = pair?;
            pairs.push((k, v.to_string()?));
        }
        pairs.sort();
        ser.extend_pairs(pairs);
        req.body = Body::Bytes(Bytes::from(ser.finish()));
        if !has_header(&req, "content-type") {
            req.headers.push((
                "Content-Type".into(),
                "application/x-www-form-urlencoded".into(),
            ));
        }
    }
    if let Some(p) = t.get::<Option<String>>("file")? {
        req.body = Body::File(p.into());
    }
    if let Some(o) = t.get::<Option<Table>>("object")? {
        let store: mlua::AnyUserData = o.get(1).or_else(|_| o.get("store"))?;
        let key: String = o.get(2).or_else(|_| o.get("key"))?;
        req.body = Body::Object(store.borrow::<LuaStore>()?.0.clone(), key);
    }
    if let Some(b) = t.get::<Option<String>>("bearer")? {
        req.auth = Some(Auth::Bearer(b));
    }
    if let Some(b) = t.get::<Option<Table>>("basic")? {
        let user: String = b.get(1).or_else(|_| b.get("user"))?;
        let pass: String = b
            .get::<Option<String>>(2)?
            .or(b.get::<Option<String>>("password")?)
            .unwrap_or_default();
        req.auth = Some(Auth::Basic(user, pass));
    }
    if let Some(s) = t.get::<Option<f64>>("timeout")? {
        req.timeout = crate::runtime::params::secs_to_duration(s.max(0.001));
    }
    if let Some(n) = t.get::<Option<u32>>("retries")? {
        req.retries = n;
    }
    if let Some(n) = t.get::<Option<u32>>("max_redirects")? {
        req.max_redirects = n;
    }
    req.retry_non_idempotent = t
        .get::<Option<bool>>("retry_non_idempotent")?
        .unwrap_or(false);
    req.forward_auth = t.get::<Option<bool>>("forward_auth")?.unwrap_or(false);
    req.resolve_redirect = t.get::<Option<bool>>("resolve_redirect")?.unwrap_or(false);
    if t.get::<Option<bool>>("expect_continue")?.unwrap_or(false) {
        req.headers.push(("Expect".into(), "100-continue".into()));
    }
    req.throttle = limiter_from(&t.get::<Value>("throttle")?)?;
    let expect: Vec<u16> = match t.get::<Value>("expect_status")? {
        Value::Nil => Vec::new(),
        Value::Integer(i) => vec![i as u16],
        Value::Table(list) => list.sequence_values::<u16>().collect::<mlua::Result<_>>()?,
        other => {
            return Err(bad(format!(
                "expect_status must be a status or a list, not a {}",
                other.type_name()
            )));
        }
    };
    Ok((req, expect, deferred))
}

fn status_error(method: &str, url: &str, status: u16, body: &[u8]) -> FerryError {
    let (kind, retryable) = status_kind(status);
    let reason = reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    FerryError::new(
        kind,
        format!("{method} {url} -> {status} {reason}: {}", body_start(body)),
    )
    .retryable(retryable)
    .with("status", status)
}

fn response_table(lua: &Lua, method: &str, r: &Response) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set("status", r.status)?;
    t.set("body", lua.create_string(&r.body)?)?;
    t.set("url", r.url.as_str())?;
    t.set("method", method)?;
    t.set("attempts", r.attempts)?;
    t.set("body_sent", r.body_sent)?;
    let h = lua.create_table()?;
    for (k, v) in &r.headers {
        h.set(k.as_str(), v.as_str())?;
    }
    t.set("headers", h)?;
    let mt: Table = lua.named_registry_value("ferry.http.response")?;
    t.set_metatable(Some(mt))?;
    Ok(t)
}

fn response_methods(lua: &Lua) -> mlua::Result<Table> {
    let methods = lua.create_table()?;
    methods.set(
        "json",
        lua.create_function(|lua, this: Table| {
            let body: mlua::LuaString = this.get("body")?;
            let bytes = body.as_bytes();
            let url: String = this.get::<Option<String>>("url")?.unwrap_or_default();
            let status: u16 = this.get::<Option<u16>>("status")?.unwrap_or(0);
            let ctype = this
                .get::<Table>("headers")
                .and_then(|h| h.get::<Option<String>>("content-type"))
                .ok()
                .flatten()
                .unwrap_or_default();
            let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
                FerryError::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "the response from {url} (status {status}{}) is not JSON ({e}); it starts with: {}",
                        if ctype.is_empty() { String::new() } else { format!(", {ctype}") },
                        body_start(&bytes)
                    ),
                )
                .retryable(true)
            })?;
            lua.to_value(&v)
        })?,
    )?;
    methods.set(
        "ok",
        lua.create_function(|_, this: Table| {
            let s: u16 = this.get::<Option<u16>>("status")?.unwrap_or(0);
            Ok((200..300).contains(&s))
        })?,
    )?;
    methods.set(
        "raise",
        lua.create_function(|_, this: Table| {
            let s: u16 = this.get::<Option<u16>>("status")?.unwrap_or(0);
            if (200..300).contains(&s) {
                return Ok(this);
            }
            let body: mlua::LuaString = this.get("body")?;
            let method: String = this.get::<Option<String>>("method")?.unwrap_or_default();
            let url: String = this.get::<Option<String>>("url")?.unwrap_or_default();
            let shown = url::Url::parse(&url)
                .map(|u| super::display_url(&u))
                .unwrap_or(url);
            Err(status_error(&method, &shown, s, &body.as_bytes()).into())
        })?,
    )?;
    let mt = lua.create_table()?;
    mt.set("__index", methods)?;
    Ok(mt)
}

/// Sends `req` with a body produced while it goes; returns the response and the rows sent (for
/// a query body).
async fn send_streamed(
    req: &mut Request,
    deferred: Deferred,
    cancel: &tokio_util::sync::CancellationToken,
) -> mlua::Result<(super::Result<Response>, Option<u64>)> {
    let (tx, src) = StreamSource::new();
    req.body = Body::Stream(src.clone());
    let sending = req.clone();
    let cancel = cancel.clone();
    let mut handle = tokio::spawn(async move { super::send(&sending, &cancel).await });
    let joined = |r: std::result::Result<super::Result<Response>, tokio::task::JoinError>| {
        r.unwrap_or_else(|e| {
            Err(FerryError::new(
                ErrorKind::Internal,
                format!("the HTTP request task failed: {e}"),
            ))
        })
    };
    match deferred {
        Deferred::None => unreachable!("send_streamed without a producer"),
        Deferred::Rows(spec) => {
            let sql = spec.sql.clone();
            let outcome = std::sync::Arc::new(RowsOutcome::default());
            tokio::spawn(super::stream::produce_rows(spec, tx, outcome.clone()));
            let r = joined(handle.await);
            src.close().await;
            let failed = outcome.error.lock().expect("outcome").take();
            if let Some(e) = failed {
                let n = outcome.rows.load(std::sync::atomic::Ordering::SeqCst);
                return Err(FerryError::new(
                    e.kind,
                    format!(
                        "ferry.http: the request body's query failed after {n} rows; the request was \
                         aborted mid-body (the server saw an incomplete body): {} (query: {sql})",
                        e.message
                    ),
                )
                .into());
            }
            let done = outcome.done.load(std::sync::atomic::Ordering::SeqCst);
            let rows = outcome.rows.load(std::sync::atomic::Ordering::SeqCst);
            Ok((r, done.then_some(rows)))
        }
        Deferred::Lua(f) => {
            let mut buf: Vec<u8> = Vec::with_capacity(CHUNK_BYTES * 2);
            let mut result = None;
            let mut source_err: Option<mlua::Error> = None;
            let mut ended = false;
            while result.is_none() && source_err.is_none() {
                match f.call_async::<Value>(()).await {
                    Ok(Value::Nil) => ended = true,
                    Ok(Value::String(s)) => buf.extend_from_slice(&s.as_bytes()),
                    Ok(other) => {
                        source_err = Some(bad(format!(
                            "the body iterator returned a {}; it must return strings, then nil",
                            other.type_name()
                        )))
                    }
                    Err(e) => source_err = Some(e),
                }
                let item = match &source_err {
                    Some(e) => Some(Err(std::io::Error::other(format!(
                        "the body iterator failed: {e}"
                    )))),
                    None if buf.len() >= CHUNK_BYTES || (ended && !buf.is_empty()) => {
                        Some(Ok(Bytes::from(std::mem::replace(
                            &mut buf,
                            Vec::with_capacity(CHUNK_BYTES * 2),
                        ))))
                    }
                    None => None,
                };
                if let Some(item) = item {
                    tokio::select! {
                        r = tx.send(item) => if r.is_err() { break },
                        r = &mut handle => result = Some(joined(r)),
                    }
                }
                if ended {
                    break;
                }
            }
            drop(tx);
            let r = match result {
                Some(r) => r,
                None => joined(handle.await),
            };
            src.close().await;
            if let Some(e) = source_err {
                return Err(FerryError::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "ferry.http: the request body's iterator failed after {} bytes were sent; \
                         the request was aborted mid-body: {e}",
                        src.sent()
                    ),
                )
                .into());
            }
            Ok((r, None))
        }
    }
}

async fn request(lua: Lua, t: Table) -> mlua::Result<Table> {
    let (mut req, expect, deferred) = build_request(&lua, &t)?;
    let c = ctx(&lua);
    let method = req.method.to_string();
    let shown = super::display_url(&req.url);
    if !matches!(req.method, Method::GET | Method::HEAD)
        && c.would(&format!("send {method} {shown}"))
    {
        let r = Response {
            status: 0,
            headers: Vec::new(),
            body: Bytes::new(),
            url: req.url.to_string(),
            attempts: 0,
            body_sent: false,
        };
        let out = response_table(&lua, &method, &r)?;
        out.set("dry_run", true)?;
        return Ok(out);
    }
    let (r, rows) = if matches!(deferred, Deferred::None) {
        (super::send(&req, &c.cancel).await, None)
    } else {
        send_streamed(&mut req, deferred, &c.cancel).await?
    };
    let sent = match &req.body {
        Body::Stream(s) => Some(s.sent()),
        _ => None,
    };
    let r = r.lua_err()?;
    if !expect.is_empty() && !expect.contains(&r.status) {
        return Err(status_error(&method, &shown, r.status, &r.body)
            .with(
                "expected",
                expect
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
                    .join("|"),
            )
            .into());
    }
    let out = response_table(&lua, &method, &r)?;
    if let Some(bytes) = sent {
        let s = lua.create_table()?;
        s.set("bytes", bytes)?;
        if let Some(n) = rows {
            s.set("rows", n)?;
        }
        out.set("sent", s)?;
    }
    Ok(out)
}

fn shorthand(lua: &Lua, method: &'static str) -> mlua::Result<mlua::Function> {
    lua.create_async_function(
        move |lua, (url, opts): (String, Option<Table>)| async move {
            let t = match opts {
                Some(t) => t,
                None => lua.create_table()?,
            };
            t.set("method", method)?;
            t.set("url", url)?;
            request(lua, t).await
        },
    )
}

pub(super) fn build(lua: &Lua) -> mlua::Result<Table> {
    lua.set_named_registry_value("ferry.http.response", response_methods(lua)?)?;
    let m = lua.create_table()?;
    m.set("request", lua.create_async_function(request)?)?;
    m.set("get", shorthand(lua, "GET")?)?;
    m.set("post", shorthand(lua, "POST")?)?;
    m.set("put", shorthand(lua, "PUT")?)?;
    m.set("delete", shorthand(lua, "DELETE")?)?;
    m.set("row_batches", lua.create_async_function(row_batches)?)?;
    Ok(m)
}

/// ferry.http.row_batches{db, sql, params, format, column_separator, row_delimiter,
/// datetime_columns, max_bytes}: an iterator over bodies of at most max_bytes each.
async fn row_batches(lua: Lua, t: Table) -> mlua::Result<mlua::Function> {
    let max_bytes = crate::runtime::options::size_opt(&t, "max_bytes")?
        .filter(|m| *m > 0)
        .ok_or_else(|| bad("row_batches needs max_bytes (a positive size: bytes, or \"64MiB\")"))?
        as usize;
    let spec = rows_spec(&t, "ferry.http.row_batches")?;
    let (columns, rx) = spec
        .db
        .stream_with_columns(spec.sql.clone(), spec.params.clone())
        .await
        .lua_err()?;
    let datetime = columns
        .iter()
        .map(|c| spec.datetime_columns.iter().any(|d| d == c))
        .collect();
    let state = std::rc::Rc::new(tokio::sync::Mutex::new(Batches {
        rx,
        columns,
        datetime,
        format: spec.format,
        max_bytes,
        held: None,
        done: false,
    }));
    lua.create_async_function(move |lua, ()| {
        let state = state.clone();
        async move {
            match state.lock().await.next().await.lua_err()? {
                Some((body, n)) => Ok((
                    Value::String(lua.create_string(&body)?),
                    Value::Integer(n as i64),
                )),
                None => Ok((Value::Nil, Value::Nil)),
            }
        }
    })
}
