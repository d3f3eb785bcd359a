//! Lua binding of `ferry.http`.

use std::time::Duration;

use bytes::Bytes;
use mlua::{Lua, LuaSerdeExt, Table, Value};
use reqwest::Method;

use super::{Auth, Body, Request, Response, body_start, status_kind};
use crate::runtime::context::ctx;
use crate::runtime::error::{ErrorKind, FerryError, IntoLuaResult};
use crate::runtime::registry::{FnDoc, ModuleDef};
use crate::store::lua::LuaStore;
use crate::throttle::lua::limiter_from;

pub static MODULE: ModuleDef = ModuleDef {
    name: "http",
    summary: "HTTP requests with retries, redirects, streamed uploads and masked credentials.",
    functions: &[
        FnDoc {
            name: "request",
            signature: "ferry.http.request{method, url, query, headers, json | body | form | file | object = {store, key}, bearer | basic = {user, password}, timeout = 60, retries = 3, retry_non_idempotent, forward_auth, expect_continue, expect_status, throttle} -> response",
            doc: "Sends a request and returns {status, headers, body, url, attempts} with methods \
                  r:json() (an invalid_input error showing the start of the body when it is not \
                  JSON), r:ok() (2xx) and r:raise() (an error for a non-2xx status). Connection \
                  errors, 429 and 5xx are retried with backoff and jitter, honouring Retry-After; \
                  POST and PATCH only with retry_non_idempotent = true. Redirects are followed; \
                  credentials go to another host only with forward_auth = true (StarRocks Stream \
                  Load's 307 from FE to BE needs it); 307/308 re-send the body, which is re-read \
                  from its file or store object. expect_status (a status or a list) raises on any \
                  other status. expect_continue adds `Expect: 100-continue` (the body is sent \
                  without waiting for the 100). throttle limits upload bytes/s. Header names in \
                  r.headers are lower case. Bearer tokens, passwords and credential-like query \
                  values never appear in logs. Under --dry-run only GET and HEAD are sent; other \
                  methods are reported and return {status = 0, dry_run = true}.",
            example: None,
        },
        FnDoc {
            name: "get",
            signature: "ferry.http.get(url [, opts]) -> response",
            doc: "ferry.http.request with method GET; opts as for request.",
            example: None,
        },
        FnDoc {
            name: "post",
            signature: "ferry.http.post(url [, opts]) -> response",
            doc: "ferry.http.request with method POST.",
            example: None,
        },
        FnDoc {
            name: "put",
            signature: "ferry.http.put(url [, opts]) -> response",
            doc: "ferry.http.request with method PUT.",
            example: None,
        },
        FnDoc {
            name: "delete",
            signature: "ferry.http.delete(url [, opts]) -> response",
            doc: "ferry.http.request with method DELETE.",
            example: None,
        },
    ],
    build,
};

const KNOWN: &[&str] = &[
    "method",
    "url",
    "query",
    "headers",
    "json",
    "body",
    "form",
    "file",
    "object",
    "bearer",
    "basic",
    "timeout",
    "retries",
    "retry_non_idempotent",
    "forward_auth",
    "expect_continue",
    "expect_status",
    "throttle",
    "max_redirects",
];

fn bad(msg: impl Into<String>) -> mlua::Error {
    FerryError::new(
        ErrorKind::InvalidInput,
        format!("ferry.http: {}", msg.into()),
    )
    .into()
}

fn build_request(lua: &Lua, t: &Table) -> mlua::Result<(Request, Vec<u16>)> {
    for pair in t.pairs::<Value, Value>() {
        let (k, _) = pair?;
        if let Value::String(s) = &k {
            let k = s.to_str()?.to_string();
            if !KNOWN.contains(&k.as_str()) {
                return Err(bad(format!(
                    "unknown option '{k}' (options: {})",
                    KNOWN.join(", ")
                )));
            }
        }
    }
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
    if let Some(b) = t.get::<Option<mlua::LuaString>>("body")? {
        req.body = Body::Bytes(Bytes::copy_from_slice(&b.as_bytes()));
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
        req.timeout = Duration::from_secs_f64(s.max(0.001));
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
    Ok((req, expect))
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

async fn request(lua: Lua, t: Table) -> mlua::Result<Table> {
    let (req, expect) = build_request(&lua, &t)?;
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
        };
        let out = response_table(&lua, &method, &r)?;
        out.set("dry_run", true)?;
        return Ok(out);
    }
    let r = super::send(&req, &c.cancel).await.lua_err()?;
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
    response_table(&lua, &method, &r)
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

fn build(lua: &Lua) -> mlua::Result<Table> {
    lua.set_named_registry_value("ferry.http.response", response_methods(lua)?)?;
    let m = lua.create_table()?;
    m.set("request", lua.create_async_function(request)?)?;
    m.set("get", shorthand(lua, "GET")?)?;
    m.set("post", shorthand(lua, "POST")?)?;
    m.set("put", shorthand(lua, "PUT")?)?;
    m.set("delete", shorthand(lua, "DELETE")?)?;
    Ok(m)
}
