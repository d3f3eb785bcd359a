//! A TCP proxy on 127.0.0.1 that misbehaves like a bad network in front of a database, for the
//! first `times` connections that carry more than `after_bytes` bytes from the client:
//! - `Stall`: from then on nothing is forwarded either way, and the sockets stay open (a
//!   black-holing middlebox, a frozen server);
//! - `HalfClose`: the server-to-client direction is closed (the client reads EOF) while the
//!   client can still write (a half-closed connection behind a NAT or a load balancer); an HTTP
//!   `100 Continue` still passes, so a request's body is sent and only the answer is lost;
//! - `Drip`: every connection passes the server's answers 256 bytes at a time, 2 ms apart (a
//!   slow link), for its whole life;
//! - `Reset`: the client's connection is reset (RST, `SO_LINGER` 0) without forwarding the bytes
//!   that tripped it, and the server's side is closed (a middlebox dropping the connection).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    Stall,
    HalfClose,
    Drip,
    Reset,
}

pub struct TcpFaults {
    pub port: u16,
    hits: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl TcpFaults {
    pub fn start(upstream: &str, fault: Fault, after_bytes: u64, times: u64) -> TcpFaults {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (h, s, up) = (hits.clone(), stop.clone(), upstream.to_string());
        thread::spawn(move || {
            for client in listener.incoming() {
                if s.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(&up) else {
                    continue;
                };
                let tripped = Arc::new(AtomicBool::new(false));
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (t1, t2, h1) = (tripped.clone(), tripped, h.clone());
                thread::spawn(move || up_pipe(client, server, fault, after_bytes, times, h1, t1));
                thread::spawn(move || down_pipe(s2, c2, fault, t2));
            }
        });
        TcpFaults { port, hits, stop }
    }

    /// Connections the fault was applied to so far (every connection for `Drip`).
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }
}

impl Drop for TcpFaults {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Client to server: counts the bytes and trips the fault.
fn up_pipe(
    mut from: TcpStream,
    mut to: TcpStream,
    fault: Fault,
    after: u64,
    times: u64,
    hits: Arc<AtomicU64>,
    tripped: Arc<AtomicBool>,
) {
    let mut buf = [0u8; 16 * 1024];
    let mut total = 0u64;
    if fault == Fault::Drip {
        hits.fetch_add(1, Ordering::Relaxed);
    }
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        total += n as u64;
        if fault != Fault::Drip
            && !tripped.load(Ordering::Relaxed)
            && total > after
            && hits
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |h| {
                    (h < times).then_some(h + 1)
                })
                .is_ok()
        {
            tripped.store(true, Ordering::Relaxed);
        }
        if tripped.load(Ordering::Relaxed) && fault == Fault::Stall {
            // Swallow everything; keep the sockets open until the client gives up.
            continue;
        }
        if tripped.load(Ordering::Relaxed) && fault == Fault::Reset {
            // The last descriptor of the client socket closes with linger 0: an RST, no FIN.
            set_zero_linger(&from);
            let _ = to.shutdown(Shutdown::Both);
            return;
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// Server to client: stalls, half-closes or drips as told.
fn down_pipe(mut from: TcpStream, mut to: TcpStream, fault: Fault, tripped: Arc<AtomicBool>) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if tripped.load(Ordering::Relaxed) && fault == Fault::Reset {
            set_zero_linger(&to);
            return;
        }
        if tripped.load(Ordering::Relaxed) {
            match fault {
                Fault::Stall => continue,
                // An interim `100 Continue` passes: an HTTP request's body is still sent and
                // only its answer is lost.
                Fault::HalfClose if buf[..n].starts_with(b"HTTP/1.1 100 ") => {}
                Fault::HalfClose => {
                    let _ = to.shutdown(Shutdown::Write);
                    // Drain the server so it is not blocked; the client reads EOF.
                    while matches!(from.read(&mut buf), Ok(n) if n > 0) {}
                    return;
                }
                Fault::Drip | Fault::Reset => {}
            }
        }
        if fault == Fault::Drip {
            for piece in buf[..n].chunks(256) {
                if to.write_all(piece).is_err() {
                    return;
                }
                thread::sleep(Duration::from_millis(2));
            }
        } else if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    if tripped.load(Ordering::Relaxed) && fault == Fault::Reset {
        set_zero_linger(&to); // no FIN before the RST
        return;
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// `SO_LINGER` {on, 0}: closing the socket sends an RST instead of a FIN.
fn set_zero_linger(s: &TcpStream) {
    use std::os::fd::AsRawFd;
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket descriptor and a linger struct of the size passed.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&l as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}
