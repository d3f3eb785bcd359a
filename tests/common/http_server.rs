//! A scripted HTTP/1.1 server on 127.0.0.1 for tests: a handler decides each reply from the
//! request and how many times its path was asked; every request is recorded (headers, body size
//! and SHA-256). Runs on its own thread and runtime; stops on Drop.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use sha2::{Digest, Sha256};

#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// Path and query.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body_len: u64,
    pub body_sha256: String,
    /// The body, when under 64 KiB.
    pub body: Vec<u8>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub delay: Duration,
}

impl Reply {
    pub fn new(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
            delay: Duration::ZERO,
        }
    }
    pub fn json(status: u16, body: &str) -> Reply {
        Reply::new(status, body).header("content-type", "application/json")
    }
    pub fn header(mut self, k: &str, v: &str) -> Reply {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }
    pub fn delay(mut self, d: Duration) -> Reply {
        self.delay = d;
        self
    }
}

type Handler = Arc<dyn Fn(&Seen, u64) -> Reply + Send + Sync>;

pub struct HttpServer {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<Seen>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HttpServer {
    /// `handler(request, n)`: n is 1 for the first request to that path, 2 for the second...
    pub fn start(handler: impl Fn(&Seen, u64) -> Reply + Send + Sync + 'static) -> HttpServer {
        let handler: Handler = Arc::new(handler);
        let log = Arc::new(Mutex::new(Vec::new()));
        let counts = Arc::new(Mutex::new(HashMap::<String, u64>::new()));
        let (tx_addr, rx_addr) = std::sync::mpsc::channel();
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let log2 = log.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx_addr.send(listener.local_addr().unwrap()).unwrap();
                loop {
                    let (stream, _) = tokio::select! {
                        r = listener.accept() => match r { Ok(x) => x, Err(_) => continue },
                        _ = &mut stop_rx => break,
                    };
                    let (handler, log, counts) = (handler.clone(), log2.clone(), counts.clone());
                    tokio::spawn(async move {
                        let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                            let (handler, log, counts) =
                                (handler.clone(), log.clone(), counts.clone());
                            async move {
                                let method = req.method().to_string();
                                let path = req
                                    .uri()
                                    .path_and_query()
                                    .map(|p| p.to_string())
                                    .unwrap_or_default();
                                let headers = req
                                    .headers()
                                    .iter()
                                    .map(|(k, v)| {
                                        (
                                            k.to_string(),
                                            String::from_utf8_lossy(v.as_bytes()).into_owned(),
                                        )
                                    })
                                    .collect();
                                let mut body = req.into_body();
                                let mut h = Sha256::new();
                                let mut len = 0u64;
                                let mut keep = Vec::new();
                                while let Some(frame) = body.frame().await {
                                    let Ok(frame) = frame else { break };
                                    if let Some(data) = frame.data_ref() {
                                        h.update(data);
                                        len += data.len() as u64;
                                        if keep.len() < 65536 {
                                            keep.extend_from_slice(data);
                                        }
                                    }
                                }
                                let seen = Seen {
                                    method,
                                    path: path.clone(),
                                    headers,
                                    body_len: len,
                                    body_sha256: hex::encode(h.finalize()),
                                    body: keep,
                                };
                                let route = path.split('?').next().unwrap_or("").to_string();
                                let n = {
                                    let mut c = counts.lock().unwrap();
                                    let e = c.entry(route).or_insert(0);
                                    *e += 1;
                                    *e
                                };
                                log.lock().unwrap().push(seen.clone());
                                let reply = handler(&seen, n);
                                if !reply.delay.is_zero() {
                                    tokio::time::sleep(reply.delay).await;
                                }
                                let mut resp = Response::builder().status(reply.status);
                                for (k, v) in &reply.headers {
                                    resp = resp.header(k, v);
                                }
                                Ok::<_, Infallible>(
                                    resp.body(Full::new(Bytes::from(reply.body))).unwrap(),
                                )
                            }
                        });
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), svc)
                            .await;
                    });
                }
            });
        });
        let addr = rx_addr
            .recv_timeout(Duration::from_secs(10))
            .expect("HTTP test server starts");
        HttpServer {
            url: format!("http://{addr}"),
            addr,
            log,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// Every request seen so far.
    pub fn requests(&self) -> Vec<Seen> {
        self.log.lock().unwrap().clone()
    }

    pub fn requests_to(&self, path: &str) -> Vec<Seen> {
        self.requests()
            .into_iter()
            .filter(|s| s.path.split('?').next() == Some(path))
            .collect()
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
