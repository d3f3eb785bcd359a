//! `ferry run --metrics ADDR`: the run's progress as Prometheus metrics, served at
//! `http://ADDR/metrics` in the text exposition format (version 0.0.4) while the run lasts.
//!
//! The metrics are derived from the same events `--log-json` writes ([`observe`] is called by
//! `output::event` for every one), so the two never disagree: objects, bytes, rows, retries,
//! failures, rates, and which step runs. Names follow Prometheus' rules (`ferry_` prefix, base
//! units, `_total` on counters only); `tests/metrics.rs` has `promtool check metrics` read them.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
}

struct Family {
    help: &'static str,
    kind: Kind,
    samples: BTreeMap<Vec<(&'static str, String)>, f64>,
}

#[derive(Default)]
struct Registry {
    families: BTreeMap<&'static str, Family>,
}

impl Registry {
    fn family(&mut self, name: &'static str, kind: Kind, help: &'static str) -> &mut Family {
        self.families.entry(name).or_insert_with(|| Family {
            help,
            kind,
            samples: BTreeMap::new(),
        })
    }

    fn set(&mut self, name: &'static str, help: &'static str, labels: Labels, v: f64) {
        let kind = if name.ends_with("_total") {
            Kind::Counter
        } else {
            Kind::Gauge
        };
        self.family(name, kind, help).samples.insert(labels, v);
    }

    fn add(&mut self, name: &'static str, help: &'static str, labels: Labels, v: f64) {
        *self
            .family(name, Kind::Counter, help)
            .samples
            .entry(labels)
            .or_insert(0.0) += v;
    }

    fn render(&self) -> String {
        let mut out = String::new();
        for (name, f) in &self.families {
            out.push_str(&format!("# HELP {name} {}\n", f.help));
            let kind = match f.kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
            };
            out.push_str(&format!("# TYPE {name} {kind}\n"));
            for (labels, v) in &f.samples {
                out.push_str(name);
                if !labels.is_empty() {
                    let parts: Vec<String> = labels
                        .iter()
                        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                        .collect();
                    out.push_str(&format!("{{{}}}", parts.join(",")));
                }
                out.push_str(&format!(" {}\n", number(*v)));
            }
        }
        out
    }
}

type Labels = Vec<(&'static str, String)>;

/// A label value as the text format wants it: backslash, double quote and newline escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn number(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();

/// Whether `--metrics` is on (events are then produced even without `--log-json`).
pub fn enabled() -> bool {
    REGISTRY.get().is_some()
}

fn num(v: &Value, key: &str) -> f64 {
    v.get(key).and_then(Value::as_f64).unwrap_or(0.0)
}

fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// Updates the metrics from one event (the `--log-json` event of that name and fields).
pub fn observe(event: &str, f: &Value) {
    let Some(reg) = REGISTRY.get() else { return };
    let Ok(mut r) = reg.lock() else { return };
    match event {
        "run_started" => {
            r.set(
                "ferry_run_info",
                "The running procedure (value 1).",
                vec![("procedure", text(f, "procedure"))],
                1.0,
            );
            r.set(
                "ferry_run_start_time_seconds",
                "When the run started, in seconds since the Unix epoch.",
                vec![],
                chrono::Utc::now().timestamp_millis() as f64 / 1000.0,
            );
        }
        "step_started" => {
            let step = text(f, "step");
            for v in r
                .family(
                    "ferry_step_running",
                    Kind::Gauge,
                    "1 for the step running now, 0 for the steps before it.",
                )
                .samples
                .values_mut()
            {
                *v = 0.0;
            }
            r.set(
                "ferry_step_running",
                "1 for the step running now, 0 for the steps before it.",
                vec![("step", step)],
                1.0,
            );
        }
        "step_finished" | "step_failed" | "step_interrupted" | "step_skipped" => {
            let step = text(f, "step");
            let status = match event {
                "step_finished" => text(f, "status"),
                "step_failed" => "failed".into(),
                "step_interrupted" => "interrupted".into(),
                _ => "skipped".into(),
            };
            r.set(
                "ferry_step_running",
                "1 for the step running now, 0 for the steps before it.",
                vec![("step", step.clone())],
                0.0,
            );
            r.add(
                "ferry_steps_total",
                "Steps ended, by how they ended (ok, failed, interrupted, skipped, ...).",
                vec![("status", status)],
                1.0,
            );
            if f.get("duration_ms").is_some() {
                r.set(
                    "ferry_step_duration_seconds",
                    "How long each ended step took.",
                    vec![("step", step)],
                    num(f, "duration_ms") / 1000.0,
                );
            }
            if event == "step_failed" {
                let kind = f.get("error").map(|e| text(e, "kind")).unwrap_or_default();
                r.add(
                    "ferry_failures_total",
                    "Failed steps, by error kind (auth, not_found, timeout, ...).",
                    vec![("kind", kind)],
                    1.0,
                );
            }
        }
        "progress" => {
            let labels = vec![("title", text(f, "title")), ("unit", text(f, "unit"))];
            let done = num(f, "done");
            let secs = num(f, "elapsed_s");
            r.set(
                "ferry_progress_done",
                "Items or bytes done so far by each long piece of work.",
                labels.clone(),
                done,
            );
            if f.get("total").and_then(Value::as_f64).is_some() {
                r.set(
                    "ferry_progress_expected",
                    "Items or bytes each long piece of work expects in all (when known).",
                    labels.clone(),
                    num(f, "total"),
                );
            }
            r.set(
                "ferry_progress_rate_per_second",
                "Average items or bytes per second of each long piece of work so far.",
                labels,
                if secs > 0.0 { done / secs } else { 0.0 },
            );
        }
        "copy_report" => {
            let l = vec![("title", text(f, "title"))];
            if f.get("dry_run").and_then(Value::as_bool) == Some(true) {
                return;
            }
            r.add(
                "ferry_objects_copied_total",
                "Objects copied by ferry.store.copy.",
                l.clone(),
                num(f, "copied"),
            );
            r.add(
                "ferry_objects_skipped_total",
                "Objects ferry.store.copy found already at the destination.",
                l.clone(),
                num(f, "skipped"),
            );
            r.add(
                "ferry_objects_failed_total",
                "Objects ferry.store.copy could not copy.",
                l.clone(),
                num(f, "failed"),
            );
            r.add(
                "ferry_copy_retries_total",
                "Object transfers ferry.store.copy retried.",
                l.clone(),
                num(f, "retried"),
            );
            r.add(
                "ferry_bytes_copied_total",
                "Bytes copied by ferry.store.copy.",
                l,
                num(f, "bytes"),
            );
        }
        "copy_table_progress" => {
            let l = vec![("table", text(f, "table"))];
            r.set(
                "ferry_rows_copied_total",
                "Rows copied by ferry.sql.copy_table, per table.",
                l.clone(),
                num(f, "rows"),
            );
            r.set(
                "ferry_rows_per_second",
                "Rows copied by ferry.sql.copy_table in the last second, per table.",
                l,
                num(f, "last_second"),
            );
        }
        "http" => {
            r.add(
                "ferry_http_requests_total",
                "HTTP requests made by ferry.http, by method and final status.",
                vec![("method", text(f, "method")), ("status", text(f, "status"))],
                1.0,
            );
            let retries = (num(f, "attempts") - 1.0).max(0.0);
            r.add(
                "ferry_http_retries_total",
                "HTTP attempts ferry.http made again after a retryable failure.",
                vec![],
                retries,
            );
        }
        "exec" => {
            r.add(
                "ferry_commands_total",
                "Commands run by ferry.exec, by exit code.",
                vec![("code", text(f, "code"))],
                1.0,
            );
        }
        _ => {}
    }
}

/// The metrics as the text exposition format.
pub fn render() -> String {
    REGISTRY
        .get()
        .and_then(|r| r.lock().ok().map(|r| r.render()))
        .unwrap_or_default()
}

static LISTENER: Mutex<Option<std::net::TcpListener>> = Mutex::new(None);

/// Binds ADDR (host:port; port 0 picks one) and turns the metrics on; [`start`] serves it once
/// the run's runtime exists. Fails at once on an address that cannot be bound. Returns the
/// address bound.
pub fn bind(addr: &str) -> std::io::Result<std::net::SocketAddr> {
    let l = std::net::TcpListener::bind(addr)?;
    l.set_nonblocking(true)?;
    let bound = l.local_addr()?;
    let _ = REGISTRY.set(Mutex::new(Registry::default()));
    if let Ok(mut slot) = LISTENER.lock() {
        *slot = Some(l);
    }
    Ok(bound)
}

/// Serves the bound listener (if any) on `rt` for as long as `rt` lives.
pub fn start(rt: &tokio::runtime::Runtime) {
    let l = LISTENER.lock().ok().and_then(|mut s| s.take());
    if let Some(l) = l {
        rt.spawn(serve(l));
    }
}

/// Answers `GET /metrics` (and `/`) until the runtime ends.
async fn serve(listener: std::net::TcpListener) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
                match sock.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let line = String::from_utf8_lossy(&head);
            let path = line.split_whitespace().nth(1).unwrap_or("");
            let get = line.starts_with("GET ") || line.starts_with("HEAD ");
            let (status, ctype, body) = match (get, path.split('?').next().unwrap_or("")) {
                (true, "/metrics") => (
                    "200 OK",
                    "text/plain; version=0.0.4; charset=utf-8",
                    render(),
                ),
                (true, "/") => (
                    "200 OK",
                    "text/plain; charset=utf-8",
                    "ferry: metrics at /metrics\n".to_string(),
                ),
                (true, _) => ("404 Not Found", "text/plain", "not found\n".to_string()),
                _ => (
                    "405 Method Not Allowed",
                    "text/plain",
                    "GET only\n".to_string(),
                ),
            };
            let head_only = line.starts_with("HEAD ");
            let resp = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                body.len(),
                if head_only { "" } else { &body }
            );
            let _ = sock.write_all(resp.as_bytes()).await;
            let _ = sock.shutdown().await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped_and_counters_end_in_total() {
        let mut r = Registry::default();
        r.add(
            "ferry_objects_copied_total",
            "h",
            vec![("title", "a \"b\"\\\nc".into())],
            2.0,
        );
        r.set("ferry_progress_done", "h", vec![], 1.5);
        let t = r.render();
        assert!(
            t.contains("# TYPE ferry_objects_copied_total counter"),
            "{t}"
        );
        assert!(
            t.contains("ferry_objects_copied_total{title=\"a \\\"b\\\"\\\\\\nc\"} 2"),
            "{t}"
        );
        assert!(t.contains("# TYPE ferry_progress_done gauge\nferry_progress_done 1.5"));
    }
}
