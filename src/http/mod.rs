//! HTTP requests with retries (backoff and jitter on connection errors, 429 and 5xx, honouring
//! Retry-After; non-idempotent methods only when asked), redirects followed by ferry itself (so
//! credentials can be re-sent to another host, as StarRocks Stream Load's 307 requires), bodies
//! streamed from files or store objects (re-opened for every attempt), throttled uploads, and
//! log lines with credentials masked.

mod batches;
mod docs;
pub mod lua;
pub mod stream;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;
use reqwest::Method;
use tokio_util::sync::CancellationToken;

use crate::runtime::error::{ErrorKind, FerryError, Result};
use crate::runtime::redact::add_secret;
use crate::store::Store;
use crate::throttle::Limiter;

/// Query parameters whose values are credentials (masked in every log line).
const SECRET_QUERY_KEYS: &[&str] = &[
    "token",
    "access_token",
    "api_key",
    "apikey",
    "key",
    "password",
    "passwd",
    "secret",
    "sig",
    "signature",
    "x-amz-signature",
    "x-amz-security-token",
    "x-amz-credential",
    "auth",
    "code",
];

#[derive(Clone)]
pub enum Body {
    None,
    Bytes(Bytes),
    File(PathBuf),
    Object(Store, String),
    /// Read once from a producer (see [`stream`]): chunked, never retried.
    Stream(Arc<stream::StreamSource>),
}

impl Body {
    /// Whether a second attempt can send the same bytes again.
    pub fn replayable(&self) -> bool {
        !matches!(self, Body::Stream(_))
    }
}

#[derive(Clone)]
pub enum Auth {
    Bearer(String),
    Basic(String, String),
}

#[derive(Clone)]
pub struct Request {
    pub method: Method,
    pub url: url::Url,
    pub headers: Vec<(String, String)>,
    pub body: Body,
    pub auth: Option<Auth>,
    pub timeout: Duration,
    pub retries: u32,
    /// Retry POST/PATCH (non-idempotent) too.
    pub retry_non_idempotent: bool,
    /// Re-send Authorization to another host after a redirect.
    pub forward_auth: bool,
    pub max_redirects: u32,
    pub throttle: Option<Arc<Limiter>>,
    /// Send the request once with an empty body first and, when that answers 307/308, the real
    /// body to the Location (one hop). For servers that redirect before reading any body
    /// (StarRocks FE Stream Load); a stream body cannot follow a redirect once sent.
    pub resolve_redirect: bool,
}

impl Request {
    pub fn new(method: Method, url: url::Url) -> Request {
        Request {
            method,
            url,
            headers: Vec::new(),
            body: Body::None,
            auth: None,
            timeout: Duration::from_secs(60),
            retries: 3,
            retry_non_idempotent: false,
            forward_auth: false,
            max_redirects: 10,
            throttle: None,
            resolve_redirect: false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Lower-case names; repeated headers joined with ", ".
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    /// The URL that answered (after redirects).
    pub url: String,
    pub attempts: u32,
    /// False when resolve_redirect's empty request got a final answer (the body was not sent).
    pub body_sent: bool,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The URL for messages: query values that look like credentials masked, no userinfo.
pub fn display_url(u: &url::Url) -> String {
    let mut shown = u.clone();
    let _ = shown.set_password(None);
    let _ = shown.set_username("");
    if u.query().is_some() {
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let masked = SECRET_QUERY_KEYS.contains(&k.to_ascii_lowercase().as_str());
                (
                    k.into_owned(),
                    if masked {
                        "***".to_string()
                    } else {
                        v.into_owned()
                    },
                )
            })
            .collect();
        shown.query_pairs_mut().clear().extend_pairs(pairs);
    }
    shown.to_string()
}

/// The shared client: one connection pool per process, redirects handled by [`send`].
pub fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(256)
            .connect_timeout(Duration::from_secs(15))
            .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the HTTP client starts")
    })
}

fn idempotent(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS | Method::TRACE
    )
}

/// Seconds to wait from a Retry-After header (seconds or an HTTP date), capped at 5 minutes.
pub fn retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    let d = if let Ok(secs) = v.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let at = httpdate::parse_http_date(v).ok()?;
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO)
    };
    Some(d.min(Duration::from_secs(300)))
}

fn backoff(attempt: u32) -> Duration {
    crate::runtime::retry::HTTP.delay(attempt + 1)
}

async fn body_for_attempt(
    body: &Body,
    throttle: &Option<Arc<Limiter>>,
) -> Result<(Option<reqwest::Body>, Option<u64>)> {
    let throttled =
        |s: futures::stream::BoxStream<'static, std::io::Result<Bytes>>| -> reqwest::Body {
            match throttle.clone() {
                None => reqwest::Body::wrap_stream(s),
                Some(l) => reqwest::Body::wrap_stream(s.then(move |chunk| {
                    let l = l.clone();
                    async move {
                        if let Ok(c) = &chunk {
                            l.acquire(c.len() as u64).await;
                        }
                        chunk
                    }
                })),
            }
        };
    Ok(match body {
        Body::None => (None, None),
        Body::Bytes(b) if throttle.is_none() => {
            (Some(reqwest::Body::from(b.clone())), Some(b.len() as u64))
        }
        Body::Bytes(b) => {
            let chunks: Vec<std::io::Result<Bytes>> = b
                .chunks(64 * 1024)
                .map(|c| Ok(Bytes::copy_from_slice(c)))
                .collect();
            (
                Some(throttled(futures::stream::iter(chunks).boxed())),
                Some(b.len() as u64),
            )
        }
        Body::File(p) => {
            let f = tokio::fs::File::open(p)
                .await
                .map_err(|e| FerryError::io(format!("reading upload body {}", p.display()), &e))?;
            let len = f.metadata().await.map(|m| m.len()).ok();
            let s = tokio_util::io::ReaderStream::with_capacity(f, 256 * 1024).boxed();
            (Some(throttled(s)), len)
        }
        Body::Object(store, key) => {
            let p = store.path(key)?;
            let r = store
                .inner
                .get(&p)
                .await
                .map_err(|e| store.error("reading", key, e))?;
            let len = Some(r.meta.size);
            let s = r.into_stream().map_err(std::io::Error::other).boxed();
            (Some(throttled(s)), len)
        }
        Body::Stream(src) => (Some(throttled(src.body_stream())), None),
    })
}

fn transport_error(method: &Method, shown: &str, e: &reqwest::Error) -> FerryError {
    let kind = if e.is_timeout() {
        ErrorKind::Timeout
    } else {
        ErrorKind::Unavailable
    };
    let mut text = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        text.push_str(&format!(": {s}"));
        src = s.source();
    }
    FerryError::new(kind, format!("{method} {shown}: {text}")).retryable(true)
}

/// The error kind for an HTTP status.
pub fn status_kind(status: u16) -> (ErrorKind, bool) {
    match status {
        401 | 403 => (ErrorKind::Auth, false),
        404 | 410 => (ErrorKind::NotFound, false),
        409 | 412 => (ErrorKind::Conflict, false),
        408 | 429 | 500 | 502 | 503 | 504 => (ErrorKind::Unavailable, true),
        400..=499 => (ErrorKind::InvalidInput, false),
        _ => (ErrorKind::Unavailable, true),
    }
}

/// The start of a body for messages.
pub fn body_start(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(&b[..b.len().min(300)]);
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if b.len() > 300 { format!("{s}...") } else { s }
}

/// Sends a request, following redirects and retrying as configured.
pub async fn send(req: &Request, cancel: &CancellationToken) -> Result<Response> {
    if let Some(Auth::Bearer(t)) = &req.auth {
        add_secret(t);
    }
    if let Some(Auth::Basic(_, p)) = &req.auth {
        add_secret(p);
    }
    for (k, v) in req.url.query_pairs() {
        if SECRET_QUERY_KEYS.contains(&k.to_ascii_lowercase().as_str()) {
            add_secret(&v);
        }
    }
    let may_retry = (idempotent(&req.method) || req.retry_non_idempotent) && req.body.replayable();
    let wanted_retry = |result: &Result<Response>| match result {
        Ok(r) => matches!(r.status, 429 | 500 | 502 | 503 | 504),
        Err(e) => e.retryable,
    };
    let mut attempt = 0u32;
    loop {
        let started = Instant::now();
        let result = tokio::select! {
            r = send_once(req) => r,
            _ = cancel.cancelled() => return Err(FerryError::new(ErrorKind::Cancelled, "interrupted during an HTTP request")),
        };
        let wait = match &result {
            Ok(resp)
                if matches!(resp.status, 429 | 500 | 502 | 503 | 504)
                    && may_retry
                    && attempt < req.retries =>
            {
                Some(
                    resp.header("retry-after")
                        .and_then(retry_after)
                        .unwrap_or_else(|| backoff(attempt)),
                )
            }
            Err(e) if e.retryable && may_retry && attempt < req.retries => Some(backoff(attempt)),
            _ => None,
        };
        let shown = display_url(&req.url);
        match (&result, wait) {
            (_, Some(w)) => {
                let why = match &result {
                    Ok(r) => format!("status {}", r.status),
                    Err(e) => e.message.clone(),
                };
                tracing::warn!(target: crate::runtime::output::EV,
                    "{} {shown}: {why}; retrying in {:.1}s ({}/{})", req.method, w.as_secs_f64(), attempt + 1, req.retries);
                attempt += 1;
                tokio::select! {
                    _ = tokio::time::sleep(w) => {}
                    _ = cancel.cancelled() => return Err(FerryError::new(ErrorKind::Cancelled, "interrupted while waiting to retry")),
                }
            }
            (Ok(r), None) => {
                tracing::debug!(target: crate::runtime::output::EV,
                    "{} {shown} -> {} in {}ms", req.method, r.status, started.elapsed().as_millis());
                crate::runtime::output::event(
                    "http",
                    serde_json::json!({
                    "method": req.method.as_str(), "url": shown, "status": r.status,
                    "ms": started.elapsed().as_millis() as u64, "attempts": attempt + 1}),
                );
                let mut r = result?;
                r.attempts = attempt + 1;
                return Ok(r);
            }
            (Err(_), None) => {
                let streamed = !req.body.replayable() && wanted_retry(&result) && req.retries > 0;
                return result.map_err(|mut e| {
                    if streamed {
                        e.message = format!("{}; {}", e.message, stream::NOT_REPLAYABLE);
                        e.retryable = false;
                    }
                    e.with("attempts", attempt + 1)
                });
            }
        }
    }
}

/// One attempt, following redirects.
async fn send_once(req: &Request) -> Result<Response> {
    let mut url = req.url.clone();
    let mut method = req.method.clone();
    let mut body_allowed = true;
    let origin = (
        req.url.scheme().to_string(),
        req.url.host_str().map(str::to_string),
        req.url.port_or_known_default(),
    );
    let mut probing = req.resolve_redirect;
    for _ in 0..=req.max_redirects {
        let shown = display_url(&url);
        let mut rb = client()
            .request(method.clone(), url.clone())
            .timeout(req.timeout);
        for (k, v) in &req.headers {
            rb = rb.header(k, v);
        }
        let same_origin = (
            url.scheme().to_string(),
            url.host_str().map(str::to_string),
            url.port_or_known_default(),
        ) == origin;
        if same_origin || req.forward_auth {
            rb = match &req.auth {
                Some(Auth::Bearer(t)) => rb.bearer_auth(t),
                Some(Auth::Basic(u, p)) => rb.basic_auth(u, Some(p)),
                None => rb,
            };
        }
        if probing {
            rb = rb
                .body(reqwest::Body::from(Bytes::new()))
                .header(reqwest::header::CONTENT_LENGTH, 0);
        } else if body_allowed {
            if let Body::Stream(src) = &req.body
                && src.consumed()
            {
                return Err(FerryError::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "{method} {shown}: redirected after {} bytes of the body were sent; {} \
                         (resolve_redirect sends an empty request first to learn the address)",
                        src.sent(),
                        stream::NOT_REPLAYABLE
                    ),
                ));
            }
            let (body, len) = body_for_attempt(&req.body, &req.throttle).await?;
            if let Some(b) = body {
                rb = rb.body(b);
                if let Some(l) = len {
                    rb = rb.header(reqwest::header::CONTENT_LENGTH, l);
                }
            }
        }
        let resp = rb
            .send()
            .await
            .map_err(|e| transport_error(&method, &shown, &e))?;
        let status = resp.status().as_u16();
        if matches!(status, 301 | 302 | 303 | 307 | 308)
            && let Some(loc) = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
        {
            let next = url.join(loc).map_err(|e| {
                FerryError::new(
                    ErrorKind::InvalidInput,
                    format!("{method} {shown}: bad redirect location '{loc}': {e}"),
                )
            })?;
            tracing::debug!(target: crate::runtime::output::EV, "{method} {shown} -> {status}, following to {}", display_url(&next));
            // 301/302/303 turn into a body-less GET (as browsers and curl do); 307/308 repeat
            // the request, body included.
            if matches!(status, 301..=303) && method != Method::HEAD {
                method = Method::GET;
                body_allowed = false;
            }
            url = next;
            // One hop resolved: the body goes to the new address.
            probing = false;
            continue;
        }
        let mut headers: Vec<(String, String)> = Vec::new();
        for (k, v) in resp.headers() {
            let k = k.as_str().to_ascii_lowercase();
            let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
            match headers.iter_mut().find(|(hk, _)| *hk == k) {
                Some((_, hv)) => {
                    hv.push_str(", ");
                    hv.push_str(&v);
                }
                None => headers.push((k, v)),
            }
        }
        let body_sent = !probing;
        let final_url = url.to_string();
        let body = resp
            .bytes()
            .await
            .map_err(|e| transport_error(&method, &shown, &e))?;
        return Ok(Response {
            status,
            headers,
            body,
            url: final_url,
            attempts: 1,
            body_sent,
        });
    }
    Err(FerryError::new(
        ErrorKind::InvalidInput,
        format!(
            "{} {}: more than {} redirects",
            req.method,
            display_url(&req.url),
            req.max_redirects
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_credentials() {
        let u = url::Url::parse("https://user:pw@api.example.com/v2/x?token=abc&page=2&sig=zzz")
            .unwrap();
        assert_eq!(
            display_url(&u),
            "https://api.example.com/v2/x?token=***&page=2&sig=***"
        );
    }

    #[test]
    fn retry_after_in_seconds_or_dates() {
        assert_eq!(retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(retry_after("100000"), Some(Duration::from_secs(300)));
        let soon = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(10));
        let d = retry_after(&soon).unwrap();
        assert!(
            d <= Duration::from_secs(10) && d >= Duration::from_secs(8),
            "{d:?}"
        );
        assert_eq!(retry_after("tomorrow"), None);
    }
}
