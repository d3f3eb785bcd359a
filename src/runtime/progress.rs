//! Progress for long work, from Rust and Lua: bars with rate and ETA on a terminal (indicatif),
//! periodic lines otherwise, and `progress` JSON events with `--log-json`.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

static MULTI: OnceLock<MultiProgress> = OnceLock::new();
static ACTIVE_BARS: AtomicU64 = AtomicU64::new(0);

pub fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("FERRY_NO_BARS").is_none()
}

fn multi() -> &'static MultiProgress {
    MULTI.get_or_init(|| {
        if stderr_is_terminal() {
            MultiProgress::with_draw_target(ProgressDrawTarget::stderr())
        } else {
            MultiProgress::with_draw_target(ProgressDrawTarget::hidden())
        }
    })
}

/// Prints text on stderr without tearing any progress bar that is being drawn.
pub fn print_above(text: &str) {
    if ACTIVE_BARS.load(Ordering::Relaxed) > 0 {
        multi().suspend(|| {
            let _ = std::io::stderr().write_all(text.as_bytes());
        });
    } else {
        let _ = std::io::stderr().write_all(text.as_bytes());
    }
}

/// How often a progress line is printed when stderr is not a terminal.
fn line_interval() -> Duration {
    std::env::var("FERRY_PROGRESS_INTERVAL")
        .ok()
        .and_then(|s| crate::runtime::params::parse_duration(&s).ok())
        .map(Duration::from_secs_f64)
        .unwrap_or(Duration::from_secs(10))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Items,
    Bytes,
}

struct Inner {
    title: String,
    unit: Unit,
    done: AtomicU64,
    total: AtomicU64, // 0 = unknown
    message: Mutex<String>,
    started: Instant,
    finished: AtomicBool,
    bar: Option<ProgressBar>,
    /// Extra text computed at each report (copied/skipped/failed counts, bytes/s...).
    detail: Mutex<Option<DetailFn>>,
}

type DetailFn = Box<dyn Fn() -> String + Send + Sync>;

/// A cloneable, thread-safe progress handle.
#[derive(Clone)]
pub struct Progress(Arc<Inner>);

impl Progress {
    pub fn new(title: &str, total: Option<u64>, unit: Unit) -> Progress {
        let bar = if stderr_is_terminal() {
            let template = match unit {
                Unit::Bytes => {
                    "{prefix} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}"
                }
                Unit::Items => "{prefix} [{bar:30}] {pos}/{len} {per_sec} ETA {eta} {msg}",
            };
            let bar = ProgressBar::new(total.unwrap_or(0));
            bar.set_style(
                ProgressStyle::with_template(template)
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar.set_prefix(title.to_string());
            let bar = multi().add(bar);
            ACTIVE_BARS.fetch_add(1, Ordering::Relaxed);
            Some(bar)
        } else {
            None
        };
        let p = Progress(Arc::new(Inner {
            title: title.to_string(),
            unit,
            done: AtomicU64::new(0),
            total: AtomicU64::new(total.unwrap_or(0)),
            message: Mutex::new(String::new()),
            started: Instant::now(),
            finished: AtomicBool::new(false),
            bar,
            detail: Mutex::new(None),
        }));
        p.spawn_reporter();
        p
    }

    fn spawn_reporter(&self) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let weak = Arc::downgrade(&self.0);
        let print_lines = self.0.bar.is_none();
        let every = line_interval();
        handle.spawn(async move {
            let tick = Duration::from_secs(1);
            let mut since_line = Duration::ZERO;
            loop {
                tokio::time::sleep(tick).await;
                let Some(inner) = weak.upgrade() else { break };
                if inner.finished.load(Ordering::Relaxed) {
                    break;
                }
                let p = Progress(inner);
                if let Some(d) = p.detail_text() {
                    p.set_message(&d);
                }
                if crate::runtime::output::events_wanted() {
                    crate::runtime::output::event("progress", p.snapshot_json());
                }
                since_line += tick;
                if print_lines && since_line >= every {
                    since_line = Duration::ZERO;
                    tracing::info!(target: crate::runtime::output::EV, "{}", p.line());
                }
            }
        });
    }

    pub fn inc(&self, n: u64) {
        self.0.done.fetch_add(n, Ordering::Relaxed);
        if let Some(b) = &self.0.bar {
            b.inc(n);
        }
    }

    pub fn set(&self, n: u64) {
        self.0.done.store(n, Ordering::Relaxed);
        if let Some(b) = &self.0.bar {
            b.set_position(n);
        }
    }

    pub fn set_total(&self, n: u64) {
        self.0.total.store(n, Ordering::Relaxed);
        if let Some(b) = &self.0.bar {
            b.set_length(n);
        }
    }

    pub fn set_message(&self, msg: &str) {
        if let Ok(mut m) = self.0.message.lock() {
            *m = msg.to_string();
        }
        if let Some(b) = &self.0.bar {
            b.set_message(msg.to_string());
        }
    }

    /// Sets a function whose text is shown with the progress at every report.
    pub fn set_detail(&self, f: impl Fn() -> String + Send + Sync + 'static) {
        if let Ok(mut d) = self.0.detail.lock() {
            *d = Some(Box::new(f));
        }
    }

    fn detail_text(&self) -> Option<String> {
        self.0.detail.lock().ok()?.as_ref().map(|f| f())
    }

    pub fn done(&self) -> u64 {
        self.0.done.load(Ordering::Relaxed)
    }

    fn fmt_amount(&self, n: f64) -> String {
        match self.0.unit {
            Unit::Bytes => crate::runtime::params::format_size(n as u64),
            Unit::Items => format!("{}", n as u64),
        }
    }

    /// `title: 120/500 (24.0%), 35/s, ETA 11s, message`
    pub fn line(&self) -> String {
        let done = self.done() as f64;
        let total = self.0.total.load(Ordering::Relaxed) as f64;
        let secs = self.0.started.elapsed().as_secs_f64().max(0.001);
        let rate = done / secs;
        let mut s = format!("{}: {}", self.0.title, self.fmt_amount(done));
        if total > 0.0 {
            s.push_str(&format!(
                "/{} ({:.1}%)",
                self.fmt_amount(total),
                100.0 * done / total
            ));
        }
        s.push_str(&format!(", {}/s", self.fmt_amount(rate)));
        if total > 0.0 && rate > 0.0 && done < total {
            s.push_str(&format!(", ETA {}s", ((total - done) / rate).ceil() as u64));
        }
        if let Ok(m) = self.0.message.lock()
            && !m.is_empty()
        {
            s.push_str(&format!(", {m}"));
        }
        s
    }

    fn snapshot_json(&self) -> serde_json::Value {
        let total = self.0.total.load(Ordering::Relaxed);
        let secs = self.0.started.elapsed().as_secs_f64();
        json!({
            "title": self.0.title,
            "unit": match self.0.unit { Unit::Bytes => "bytes", Unit::Items => "items" },
            "done": self.done(),
            "total": if total > 0 { json!(total) } else { json!(null) },
            "elapsed_s": (secs * 1000.0).round() / 1000.0,
            "message": self.0.message.lock().map(|m| m.clone()).unwrap_or_default(),
        })
    }

    /// Ends the progress display and logs a final line.
    pub fn finish(&self) {
        if self.0.finished.swap(true, Ordering::Relaxed) {
            return;
        }
        if let Some(d) = self.detail_text() {
            self.set_message(&d);
        }
        if let Some(b) = &self.0.bar {
            b.finish_and_clear();
            multi().remove(b);
            ACTIVE_BARS.fetch_sub(1, Ordering::Relaxed);
        }
        if crate::runtime::output::events_wanted() {
            let mut v = self.snapshot_json();
            v["finished"] = json!(true);
            crate::runtime::output::event("progress", v);
        }
        let elapsed = self.0.started.elapsed().as_secs_f64();
        tracing::info!(target: crate::runtime::output::EV, "{} (done in {:.1}s)", self.line(), elapsed);
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(b) = &self.bar
            && !self.finished.load(Ordering::Relaxed)
        {
            b.finish_and_clear();
            multi().remove(b);
            ACTIVE_BARS.fetch_sub(1, Ordering::Relaxed);
        }
    }
}
