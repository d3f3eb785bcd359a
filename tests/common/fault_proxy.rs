//! A fault-injecting HTTP/1.1 reverse proxy on 127.0.0.1, in front of one upstream endpoint
//! (typically an [`super::s3::S3Server`] or Azurite). It runs on its own thread and tokio runtime
//! and stops when dropped.
//!
//! Point the client at [`FaultProxy::endpoint`]. Requests are forwarded with every header
//! unchanged — the `Host` header included, so a SigV4 signature made for the proxy's address stays
//! valid upstream (s3s-fs serves path-style and does not care which host it is called by).
//!
//! Faults are decided per request, counting only the requests that match the filter (methods,
//! path substring), 1-based: with `fail_every(3)` the 3rd, 6th, ... matching requests fail.
//! - fail: answer `503 Slow Down` with an S3 `SlowDown` XML body (the request body is read first);
//! - reset: close the client's TCP connection with a RST, without any response;
//! - truncate: forward the upstream response but cut its body after `truncate_after` bytes, then
//!   reset the connection (a download broken mid-stream).
//!
//! - stall: never answer (the request is held until the client gives up).
//!
//! When several apply to the same request, stall wins over reset, reset over fail, and fail over
//! truncate.
//!
//! ```ignore
//! let s3 = S3Server::start();
//! let proxy = FaultProxy::start(&s3.endpoint, Faults::new().fail_every(2).only_methods(&["PUT"]));
//! let store = s3.store_via("bkt", &proxy.endpoint);
//! // ... run the client ...
//! assert!(proxy.failed() > 0);
//! ```

use super::background::Background;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type ProxyBody = BoxBody<Bytes, BoxError>;

/// Which faults to inject (builder style). `0` means "never" for the `*_every` counts.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Fail every Nth matching request with `fail_status` (503 by default) and an S3 error body.
    pub fail_every: u64,
    /// Reset the connection (no response) on every Mth matching request.
    pub reset_every: u64,
    /// Cut the response body of every Tth matching request after `truncate_after` bytes.
    pub truncate_every: u64,
    pub truncate_after: u64,
    /// Status of injected failures; 0 means 503 (`SlowDown`). 500 gives `InternalError`.
    pub fail_status: u16,
    /// Only requests with these methods (upper case) are counted and faulted; empty = all.
    pub methods: Vec<String>,
    /// Only requests whose path-and-query contains this are counted and faulted.
    pub path_contains: Option<String>,
    /// Stop injecting after this many faults in total (all kinds); 0 = no limit.
    pub max_faults: u64,
    /// Hold every Sth matching request without ever answering (a stalled server); the
    /// connection stays open until the client gives up or the proxy is dropped.
    pub stall_every: u64,
}

impl Faults {
    /// No faults: a transparent proxy.
    pub fn new() -> Faults {
        Faults::default()
    }
    pub fn fail_every(mut self, n: u64) -> Faults {
        self.fail_every = n;
        self
    }
    pub fn reset_every(mut self, m: u64) -> Faults {
        self.reset_every = m;
        self
    }
    pub fn truncate_every(mut self, t: u64, after_bytes: u64) -> Faults {
        self.truncate_every = t;
        self.truncate_after = after_bytes;
        self
    }
    pub fn fail_status(mut self, status: u16) -> Faults {
        self.fail_status = status;
        self
    }
    pub fn only_methods(mut self, methods: &[&str]) -> Faults {
        self.methods = methods.iter().map(|m| m.to_ascii_uppercase()).collect();
        self
    }
    pub fn path_contains(mut self, s: &str) -> Faults {
        self.path_contains = Some(s.to_string());
        self
    }
    pub fn stall_every(mut self, s: u64) -> Faults {
        self.stall_every = s;
        self
    }
    pub fn max_faults(mut self, n: u64) -> Faults {
        self.max_faults = n;
        self
    }
}

/// What the proxy did with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Forwarded,
    Failed,
    Reset,
    Truncated,
    /// The upstream could not be reached (answered 502).
    UpstreamError,
    /// Held without an answer ([`Faults::stall_every`]).
    Stalled,
}

#[derive(Debug, Clone)]
pub struct Record {
    pub method: String,
    /// Path and query as received.
    pub path: String,
    pub outcome: Outcome,
    /// Upstream status for forwarded/truncated requests, the injected one for failures.
    pub status: Option<u16>,
}

/// Counter snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// All requests received.
    pub seen: u64,
    /// Requests that matched the filter (methods, path).
    pub matched: u64,
    pub failed: u64,
    pub reset: u64,
    pub truncated: u64,
    /// Requests passed to the upstream whose response went back whole.
    pub forwarded: u64,
}

pub struct FaultProxy {
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub endpoint: String,
    pub addr: SocketAddr,
    pub upstream: String,
    shared: Arc<Shared>,
    background: Option<Background>,
}

impl FaultProxy {
    /// Starts a proxy forwarding to `upstream` (`http://host:port`, any path is ignored).
    pub fn start(upstream: &str, faults: Faults) -> FaultProxy {
        let up: Uri = upstream.parse().expect("upstream URL");
        assert_eq!(
            up.scheme_str(),
            Some("http"),
            "the fault proxy forwards to http:// upstreams only"
        );
        let authority = up.authority().expect("upstream host:port").to_string();

        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");

        let shared = Arc::new(Shared {
            upstream_authority: authority,
            faults: Mutex::new(faults),
            seen: AtomicU64::new(0),
            matched: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            reset: AtomicU64::new(0),
            truncated: AtomicU64::new(0),
            forwarded: AtomicU64::new(0),
            faults_done: AtomicU64::new(0),
            log: Mutex::new(Vec::new()),
        });
        let s = shared.clone();
        let background = Background::spawn("fault-proxy", listener, move |l| accept_loop(l, s));
        FaultProxy {
            endpoint: format!("http://{addr}"),
            addr,
            upstream: upstream.trim_end_matches('/').to_string(),
            shared,
            background: Some(background),
        }
    }

    /// Replaces the fault plan; the Nth-request counting restarts at zero (counters are kept).
    pub fn set_faults(&self, faults: Faults) {
        let mut f = self.shared.faults.lock().unwrap();
        *f = faults;
        self.shared.matched.store(0, Ordering::SeqCst);
        self.shared.faults_done.store(0, Ordering::SeqCst);
    }

    pub fn counts(&self) -> Counts {
        let s = &self.shared;
        Counts {
            seen: s.seen.load(Ordering::SeqCst),
            matched: s.matched.load(Ordering::SeqCst),
            failed: s.failed.load(Ordering::SeqCst),
            reset: s.reset.load(Ordering::SeqCst),
            truncated: s.truncated.load(Ordering::SeqCst),
            forwarded: s.forwarded.load(Ordering::SeqCst),
        }
    }
    pub fn seen(&self) -> u64 {
        self.counts().seen
    }
    pub fn failed(&self) -> u64 {
        self.counts().failed
    }
    pub fn reset(&self) -> u64 {
        self.counts().reset
    }
    pub fn truncated(&self) -> u64 {
        self.counts().truncated
    }
    pub fn forwarded(&self) -> u64 {
        self.counts().forwarded
    }

    /// Every request handled so far, in arrival order.
    pub fn log(&self) -> Vec<Record> {
        self.shared.log.lock().unwrap().clone()
    }

    /// Zeroes every counter and the log (the fault plan is kept, its counting restarts).
    pub fn clear(&self) {
        let s = &self.shared;
        for c in [
            &s.seen,
            &s.matched,
            &s.failed,
            &s.reset,
            &s.truncated,
            &s.forwarded,
            &s.faults_done,
        ] {
            c.store(0, Ordering::SeqCst);
        }
        s.log.lock().unwrap().clear();
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(b) = self.background.take() {
            b.stop();
        }
    }
}

struct Shared {
    upstream_authority: String,
    faults: Mutex<Faults>,
    seen: AtomicU64,
    matched: AtomicU64,
    failed: AtomicU64,
    reset: AtomicU64,
    truncated: AtomicU64,
    forwarded: AtomicU64,
    faults_done: AtomicU64,
    log: Mutex<Vec<Record>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Action {
    Forward,
    Fail(StatusCode),
    Reset,
    Truncate(u64),
    Stall,
}

impl Shared {
    fn decide(&self, method: &str, path: &str) -> Action {
        let f = self.faults.lock().unwrap();
        if !f.methods.is_empty() && !f.methods.iter().any(|m| m == method) {
            return Action::Forward;
        }
        if let Some(p) = &f.path_contains
            && !path.contains(p.as_str())
        {
            return Action::Forward;
        }
        let n = self.matched.fetch_add(1, Ordering::SeqCst) + 1;
        let hit = |every: u64| every > 0 && n.is_multiple_of(every);
        let action = if hit(f.stall_every) {
            Action::Stall
        } else if hit(f.reset_every) {
            Action::Reset
        } else if hit(f.fail_every) {
            let status = if f.fail_status == 0 {
                503
            } else {
                f.fail_status
            };
            Action::Fail(StatusCode::from_u16(status).expect("fail status"))
        } else if hit(f.truncate_every) {
            Action::Truncate(f.truncate_after)
        } else {
            Action::Forward
        };
        if action != Action::Forward && f.max_faults > 0 {
            let done = self.faults_done.fetch_add(1, Ordering::SeqCst);
            if done >= f.max_faults {
                return Action::Forward;
            }
        }
        action
    }

    fn record(&self, method: &str, path: &str, outcome: Outcome, status: Option<u16>) {
        let counter = match outcome {
            Outcome::Forwarded => Some(&self.forwarded),
            Outcome::Failed => Some(&self.failed),
            Outcome::Reset => Some(&self.reset),
            Outcome::Truncated => Some(&self.truncated),
            Outcome::UpstreamError | Outcome::Stalled => None,
        };
        if let Some(c) = counter {
            c.fetch_add(1, Ordering::SeqCst);
        }
        self.log.lock().unwrap().push(Record {
            method: method.to_string(),
            path: path.to_string(),
            outcome,
            status,
        });
    }
}

/// Per-connection state: a second handle on the client socket, used to turn the close into a RST.
struct Conn {
    shared: Arc<Shared>,
    client: Client<HttpConnector, Incoming>,
    socket: Arc<tokio::net::TcpStream>,
}

async fn accept_loop(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Client<HttpConnector, Incoming> = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(5))
        .build(connector);
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = socket.set_nodelay(true);
        // Keep a duplicate of the socket so a fault can set SO_LINGER=0 (close = RST).
        let Ok(std_socket) = socket.into_std() else {
            continue;
        };
        let Ok(dup) = std_socket.try_clone() else {
            continue;
        };
        let (Ok(socket), Ok(dup)) = (
            tokio::net::TcpStream::from_std(std_socket),
            tokio::net::TcpStream::from_std(dup),
        ) else {
            continue;
        };
        let conn = Arc::new(Conn {
            shared: shared.clone(),
            client: client.clone(),
            socket: Arc::new(dup),
        });
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| handle(conn.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(socket), svc)
                .await;
        });
    }
}

#[derive(Debug)]
struct InjectedReset;

impl std::fmt::Display for InjectedReset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("fault proxy: injected connection reset")
    }
}

impl std::error::Error for InjectedReset {}

async fn handle(conn: Arc<Conn>, req: Request<Incoming>) -> Result<Response<ProxyBody>, BoxError> {
    let shared = &conn.shared;
    shared.seen.fetch_add(1, Ordering::SeqCst);
    let method = req.method().as_str().to_string();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".to_string());

    let action = shared.decide(&method, &path);
    match action {
        Action::Reset => {
            shared.record(&method, &path, Outcome::Reset, None);
            let _ = conn.socket.set_zero_linger();
            // An error from the service makes hyper drop the connection without answering.
            return Err(Box::new(InjectedReset));
        }
        Action::Fail(status) => {
            // Read the request body so the client is not cut off while still sending it.
            let _ = req.into_body().collect().await;
            shared.record(&method, &path, Outcome::Failed, Some(status.as_u16()));
            return Ok(fault_response(status));
        }
        Action::Stall => {
            shared.record(&method, &path, Outcome::Stalled, None);
            std::future::pending::<()>().await;
        }
        Action::Forward | Action::Truncate(_) => {}
    }

    let (mut parts, body) = req.into_parts();
    parts.uri = format!("http://{}{}", shared.upstream_authority, path)
        .parse::<Uri>()
        .map_err(|e| Box::new(e) as BoxError)?;
    // The Host header (and every other end-to-end header) goes upstream unchanged: the client
    // signed it. Only hop-by-hop headers are dropped.
    for h in [
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authorization",
        "te",
        "trailer",
        "upgrade",
    ] {
        parts.headers.remove(h);
    }
    let resp = match conn.client.request(Request::from_parts(parts, body)).await {
        Ok(r) => r,
        Err(e) => {
            shared.record(&method, &path, Outcome::UpstreamError, Some(502));
            let resp = Response::builder()
                .status(StatusCode::BAD_GATEWAY)
                .body(full(format!("fault proxy: upstream error: {e}")))
                .expect("502 response");
            return Ok(resp);
        }
    };
    let status = resp.status().as_u16();
    match action {
        Action::Truncate(after) if method != "HEAD" => {
            let (parts, body) = resp.into_parts();
            let body = TruncatedBody {
                inner: body,
                remaining: after,
                conn: conn.clone(),
                method,
                path,
                status,
                finished: false,
            };
            Ok(Response::from_parts(parts, body.boxed()))
        }
        _ => {
            shared.record(&method, &path, Outcome::Forwarded, Some(status));
            Ok(resp.map(|b| b.map_err(|e| Box::new(e) as BoxError).boxed()))
        }
    }
}

/// A response body cut after `remaining` bytes, then the connection reset. The truncation is
/// recorded when the cut happens; a body shorter than the limit goes through whole and is recorded
/// as forwarded.
struct TruncatedBody {
    inner: Incoming,
    remaining: u64,
    conn: Arc<Conn>,
    method: String,
    path: String,
    status: u16,
    finished: bool,
}

impl TruncatedBody {
    fn cut(&mut self) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.finished = true;
        let _ = self.conn.socket.set_zero_linger();
        self.conn.shared.record(
            &self.method,
            &self.path,
            Outcome::Truncated,
            Some(self.status),
        );
        Poll::Ready(Some(Err(Box::new(InjectedReset))))
    }
}

impl Body for TruncatedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.finished {
            return Poll::Ready(None);
        }
        if this.remaining == 0 {
            return this.cut();
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                this.finished = true;
                this.conn.shared.record(
                    &this.method,
                    &this.path,
                    Outcome::Forwarded,
                    Some(this.status),
                );
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Box::new(e)))),
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(mut data) => {
                    let len = data.len() as u64;
                    if len >= this.remaining {
                        data.truncate(this.remaining as usize);
                        this.remaining = 0;
                    } else {
                        this.remaining -= len;
                    }
                    if data.is_empty() {
                        return this.cut();
                    }
                    Poll::Ready(Some(Ok(Frame::data(data))))
                }
                Err(frame) => Poll::Ready(Some(Ok(frame))),
            },
        }
    }
}

fn fault_response(status: StatusCode) -> Response<ProxyBody> {
    let (code, message) = match status.as_u16() {
        503 => ("SlowDown", "Please reduce your request rate."),
        500 => (
            "InternalError",
            "We encountered an internal error. Please try again.",
        ),
        _ => ("ServiceUnavailable", "Injected failure."),
    };
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>fault-proxy</RequestId></Error>"
    );
    Response::builder()
        .status(status)
        .header("content-type", "application/xml")
        .header("retry-after", "0")
        .body(full(body))
        .expect("fault response")
}

fn full(s: String) -> ProxyBody {
    Full::new(Bytes::from(s))
        .map_err(|never: Infallible| match never {})
        .boxed()
}
