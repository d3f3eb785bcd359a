//! A TCP proxy on 127.0.0.1 that drops connections in the middle of their traffic: each of the
//! first `cuts` connections is reset after `after_bytes` bytes from the client. Used to drop
//! database connections mid-statement, deterministically.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;

pub struct TcpCut {
    pub port: u16,
    cut: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl TcpCut {
    /// Proxies to `upstream` (host:port).
    pub fn start(upstream: &str, after_bytes: u64, cuts: u64) -> TcpCut {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s, up) = (cut.clone(), stop.clone(), upstream.to_string());
        thread::spawn(move || {
            for client in listener.incoming() {
                if s.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(&up) else {
                    continue;
                };
                let limit = if c.load(Ordering::Relaxed) < cuts {
                    Some(after_bytes)
                } else {
                    None
                };
                let c2 = c.clone();
                let (client2, server2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                thread::spawn(move || pipe(client, server, limit, Some(c2), cuts));
                thread::spawn(move || pipe(server2, client2, None, None, cuts));
            }
        });
        TcpCut { port, cut, stop }
    }

    /// Connections cut so far.
    pub fn cuts(&self) -> u64 {
        self.cut.load(Ordering::Relaxed)
    }
}

impl Drop for TcpCut {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn pipe(
    mut from: TcpStream,
    mut to: TcpStream,
    limit: Option<u64>,
    counter: Option<Arc<AtomicU64>>,
    cuts: u64,
) {
    let mut buf = [0u8; 16 * 1024];
    let mut total = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        total += n as u64;
        if let (Some(l), Some(c)) = (limit, &counter)
            && total > l
            && c.fetch_add(1, Ordering::Relaxed) < cuts
        {
            let _ = from.shutdown(Shutdown::Both);
            let _ = to.shutdown(Shutdown::Both);
            return;
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
