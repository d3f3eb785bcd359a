//! Running a command while its stdout and stderr lines are handed to a consumer as they arrive.
//!
//! Memory stays bounded whatever the command prints and however slow the consumer is:
//! - a line is at most [`LINE_CAP`] bytes; a longer one is delivered in pieces of that size, each
//!   but the last flagged `more`;
//! - lines waiting for the consumer hold at most [`IN_FLIGHT`] bytes (a byte semaphore): when it
//!   is full the readers stop reading, the pipe fills and the command blocks in write(2);
//! - the output kept for the result is the last [`TAIL`] bytes of each stream.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use super::{ExecOutput, ExecSpec, GroupKill, display, interrupted, spawn, timed_out};
use crate::runtime::error::{FerryError, Result};

/// The longest line handed over in one piece.
pub const LINE_CAP: usize = 1 << 20;
/// Bytes of lines read but not yet consumed, over both streams.
pub const IN_FLIGHT: usize = 4 << 20;
/// Bytes of each stream kept for the result.
pub const TAIL: usize = 64 << 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// One line (without its `\n` or `\r\n`), or a [`LINE_CAP`] piece of a longer one (`more`).
#[derive(Debug)]
pub struct Line {
    pub stream: Stream,
    pub bytes: Vec<u8>,
    pub more: bool,
    _permit: OwnedSemaphorePermit,
}

/// The last `cap` bytes written to it.
#[derive(Debug, Default)]
struct Tail {
    buf: Vec<u8>,
    cap: usize,
}

impl Tail {
    fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() > 2 * self.cap {
            let cut = self.buf.len() - self.cap;
            self.buf.drain(..cut);
        }
    }

    fn take(&mut self) -> Vec<u8> {
        let start = self.buf.len().saturating_sub(self.cap);
        self.buf.split_off(start)
    }
}

struct Pump {
    stream: Stream,
    tx: mpsc::Sender<Line>,
    budget: Arc<Semaphore>,
    tail: Arc<Mutex<Tail>>,
}

impl Pump {
    /// Hands one line over; false when the consumer is gone.
    async fn send(&self, bytes: Vec<u8>, more: bool) -> bool {
        let cost = (bytes.len() + 64).min(IN_FLIGHT) as u32;
        let Ok(permit) = self.budget.clone().acquire_many_owned(cost).await else {
            return false;
        };
        let line = Line {
            stream: self.stream,
            bytes,
            more,
            _permit: permit,
        };
        self.tx.send(line).await.is_ok()
    }

    fn keep(&self, bytes: &[u8]) {
        if let Ok(mut t) = self.tail.lock() {
            t.push(bytes);
        }
    }

    /// Reads `pipe` to its end, splitting it into lines.
    async fn run<R: AsyncRead + Unpin>(self, pipe: R) -> std::io::Result<()> {
        let mut r = BufReader::with_capacity(64 << 10, pipe);
        let mut line = Vec::new();
        loop {
            let buf = r.fill_buf().await?;
            if buf.is_empty() {
                if !line.is_empty() {
                    self.send(line, false).await;
                }
                return Ok(());
            }
            let room = LINE_CAP - line.len();
            match buf.iter().position(|&b| b == b'\n') {
                Some(i) if i <= room => {
                    line.extend_from_slice(&buf[..i]);
                    self.keep(&buf[..=i]);
                    consume(&mut r, i + 1);
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    if !self.send(std::mem::take(&mut line), false).await {
                        return Ok(());
                    }
                }
                _ => {
                    let k = buf.len().min(room);
                    line.extend_from_slice(&buf[..k]);
                    self.keep(&buf[..k]);
                    consume(&mut r, k);
                    if line.len() == LINE_CAP && !self.send(std::mem::take(&mut line), true).await {
                        return Ok(());
                    }
                }
            }
        }
    }
}

fn consume<R: AsyncBufRead + Unpin>(r: &mut R, n: usize) {
    std::pin::Pin::new(r).consume(n);
}

/// Runs `spec`, calling `on_line` for every line of stdout and stderr while the command runs
/// (lines of one stream in order; the two streams interleave as they are read). The timeout
/// covers the command and the consumer together. On timeout, cancel, or an error from
/// `on_line`, the command's whole process group is killed and the error returned.
pub async fn run<F, Fut>(
    spec: &ExecSpec,
    cancel: &CancellationToken,
    mut on_line: F,
) -> Result<ExecOutput>
where
    F: FnMut(Line) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let shown = display(&spec.argv);
    let started = Instant::now();
    let (mut child, mut guard) = spawn(spec)?;
    let (tx, mut rx) = mpsc::channel::<Line>(1024);
    let budget = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut pumps = Vec::new();
    let mut tails = Vec::new();
    let pipes: [(Stream, Option<Box<dyn AsyncRead + Unpin + Send>>); 2] = [
        (
            Stream::Stdout,
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn AsyncRead + Unpin + Send>),
        ),
        (
            Stream::Stderr,
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn AsyncRead + Unpin + Send>),
        ),
    ];
    for (stream, pipe) in pipes {
        let tail = Arc::new(Mutex::new(Tail {
            buf: Vec::new(),
            cap: TAIL,
        }));
        tails.push(tail.clone());
        if let Some(pipe) = pipe {
            let pump = Pump {
                stream,
                tx: tx.clone(),
                budget: budget.clone(),
                tail,
            };
            pumps.push(tokio::spawn(pump.run(pipe)));
        }
    }
    drop(tx);

    let timeout = spec.timeout.unwrap_or(Duration::MAX);
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    loop {
        let next = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(interrupted(&shown)),
            _ = &mut deadline => return Err(timed_out(&shown, timeout)),
            l = rx.recv() => l,
        };
        let Some(line) = next else { break };
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(interrupted(&shown)),
            _ = &mut deadline => return Err(timed_out(&shown, timeout)),
            r = on_line(line) => r.map_err(|e| {
                let mut e = e.with("command", &shown);
                e.message = format!("on_line of `{shown}`: {}", e.message);
                e
            })?,
        }
    }
    for p in pumps {
        match p.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                return Err(FerryError::io(
                    format!("reading the output of `{shown}`"),
                    &e,
                ));
            }
            Err(e) => {
                return Err(FerryError::new(
                    crate::runtime::error::ErrorKind::Internal,
                    format!("output reader of `{shown}`: {e}"),
                ));
            }
        }
    }
    let status = tokio::select! {
        s = child.wait() => s.map_err(|e| FerryError::io(format!("running `{shown}`"), &e))?,
        _ = &mut deadline => return Err(timed_out(&shown, timeout)),
        _ = cancel.cancelled() => return Err(interrupted(&shown)),
    };
    GroupKill::disarm(&mut guard);
    let take = |t: &Arc<Mutex<Tail>>| t.lock().map(|mut t| t.take()).unwrap_or_default();
    Ok(ExecOutput {
        code: status.code().unwrap_or(-1),
        stdout: take(&tails[0]),
        stderr: take(&tails[1]),
        duration: started.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_bytes() {
        let mut t = Tail {
            buf: Vec::new(),
            cap: 4,
        };
        for chunk in [&b"abc"[..], b"defgh", b"ij"] {
            t.push(chunk);
        }
        assert_eq!(t.take(), b"ghij");
    }

    #[tokio::test]
    async fn long_lines_come_in_pieces_and_crlf_is_cut() {
        let spec = ExecSpec {
            argv: vec![
                "sh".into(),
                "-c".into(),
                format!(
                    "head -c {} /dev/zero | tr '\\0' x; printf 'a\\r\\nb'",
                    LINE_CAP + 10
                ),
            ],
            ..Default::default()
        };
        let mut got = Vec::new();
        let out = run(&spec, &CancellationToken::new(), |l| {
            got.push((l.bytes.len(), l.more, l.bytes.last().copied()));
            async { Ok(()) }
        })
        .await
        .unwrap();
        assert_eq!(out.code, 0);
        assert_eq!(
            got,
            vec![
                (LINE_CAP, true, Some(b'x')),
                (11, false, Some(b'a')),
                (1, false, Some(b'b'))
            ]
        );
        assert_eq!(out.stdout.len(), TAIL);
        assert!(out.stdout.ends_with(b"xxa\r\nb"));
    }
}
