//! `ferry status --state DIR --html FILE [--events EVENTS]`: the journals and the `--log-json`
//! events of a run as one self-contained HTML page (no scripts, no outside resources): each
//! step's status, duration and counters, and per step a plot of throughput over time drawn from
//! the `progress` and `copy_table_progress` events that fall inside the step.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::runtime::error::{FerryError, Result};
use crate::runtime::shard::JournalView;

/// One step of one journal, with its time window.
struct StepRow {
    journal: String,
    step: String,
    title: String,
    status: String,
    started: Option<DateTime<Utc>>,
    ended: Option<DateTime<Utc>>,
    duration_ms: Option<u64>,
    counters: String,
}

/// One throughput series: (seconds since the step started, rate per second).
type Series = Vec<(f64, f64)>;

fn ts(v: &Value) -> Option<DateTime<Utc>> {
    v["ts"]
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.with_timezone(&Utc))
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn steps_of(journals: &[JournalView]) -> Vec<StepRow> {
    let mut rows: Vec<StepRow> = Vec::new();
    for j in journals {
        let name = if j.name.is_empty() {
            "run".to_string()
        } else {
            j.name.clone()
        };
        for e in &j.entries {
            let step = e["step"].as_str().unwrap_or("").to_string();
            match e["event"].as_str().unwrap_or("") {
                "step_started" => rows.push(StepRow {
                    journal: name.clone(),
                    step,
                    title: e["title"].as_str().unwrap_or("").to_string(),
                    status: "started (never finished)".into(),
                    started: ts(e),
                    ended: None,
                    duration_ms: None,
                    counters: String::new(),
                }),
                ev @ ("step_finished" | "step_failed" | "step_interrupted") => {
                    if let Some(r) = rows
                        .iter_mut()
                        .rev()
                        .find(|r| r.journal == name && r.step == step && r.ended.is_none())
                    {
                        r.status = match ev {
                            "step_finished" => e["status"].as_str().unwrap_or("ok").to_string(),
                            "step_failed" => {
                                format!("failed: {}", e["error"]["message"].as_str().unwrap_or(""))
                            }
                            _ => "interrupted".into(),
                        };
                        r.ended = ts(e);
                        r.duration_ms = e["duration_ms"].as_u64();
                        if let Some(c) = e.get("counters").filter(|c| !c.is_null()) {
                            r.counters = c.to_string();
                        }
                    }
                }
                _ => {}
            }
        }
    }
    rows
}

/// The events' throughput series that fall in `row`'s window, by `title (unit)`.
fn series_for(row: &StepRow, events: &[Value]) -> BTreeMap<String, Series> {
    let mut out: BTreeMap<String, Series> = BTreeMap::new();
    let Some(start) = row.started else {
        return out;
    };
    let end = row.ended;
    let mut last: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for e in events {
        let Some(t) = ts(e) else { continue };
        if t < start || end.is_some_and(|end| t > end) {
            continue;
        }
        let x = (t - start).num_milliseconds() as f64 / 1000.0;
        match e["event"].as_str().unwrap_or("") {
            "progress" => {
                let key = format!(
                    "{} ({}/s)",
                    e["title"].as_str().unwrap_or(""),
                    e["unit"].as_str().unwrap_or("items")
                );
                let done = e["done"].as_f64().unwrap_or(0.0);
                if let Some((px, pd)) = last.get(&key).copied()
                    && x > px
                {
                    out.entry(key.clone())
                        .or_default()
                        .push((x, ((done - pd) / (x - px)).max(0.0)));
                } else {
                    out.entry(key.clone()).or_default();
                }
                last.insert(key, (x, done));
            }
            "copy_table_progress" => {
                let key = format!("{} (rows/s)", e["table"].as_str().unwrap_or(""));
                out.entry(key)
                    .or_default()
                    .push((x, e["last_second"].as_f64().unwrap_or(0.0)));
            }
            _ => {}
        }
    }
    out.retain(|_, s| !s.is_empty());
    out
}

const COLOURS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf",
];

/// An SVG line plot of `series` (x seconds, y per second).
fn plot(series: &BTreeMap<String, Series>) -> String {
    let (w, h, left, bottom) = (640.0, 220.0, 70.0, 30.0);
    let xmax = series
        .values()
        .flatten()
        .map(|p| p.0)
        .fold(1.0f64, f64::max);
    let ymax = series
        .values()
        .flatten()
        .map(|p| p.1)
        .fold(1.0f64, f64::max)
        * 1.1;
    let sx = |x: f64| left + x / xmax * (w - left - 10.0);
    let sy = |y: f64| h - bottom - y / ymax * (h - bottom - 10.0);
    let mut svg = format!(
        "<svg class=\"plot\" width=\"{w}\" height=\"{}\" viewBox=\"0 0 {w} {}\" \
         xmlns=\"http://www.w3.org/2000/svg\">",
        h + 20.0 * series.len() as f64,
        h + 20.0 * series.len() as f64
    );
    let _ = write!(
        svg,
        "<line x1=\"{left}\" y1=\"{y0}\" x2=\"{x1}\" y2=\"{y0}\" stroke=\"#444\"/>\
         <line x1=\"{left}\" y1=\"10\" x2=\"{left}\" y2=\"{y0}\" stroke=\"#444\"/>\
         <text x=\"{left}\" y=\"{ty}\" font-size=\"11\">0 s</text>\
         <text x=\"{x1}\" y=\"{ty}\" font-size=\"11\" text-anchor=\"end\">{xmax:.1} s</text>\
         <text x=\"{lx}\" y=\"20\" font-size=\"11\" text-anchor=\"end\">{ymax:.0}/s</text>\
         <text x=\"{lx}\" y=\"{y0}\" font-size=\"11\" text-anchor=\"end\">0</text>",
        y0 = h - bottom,
        x1 = w - 10.0,
        ty = h - bottom + 15.0,
        lx = left - 5.0,
    );
    for (i, (name, pts)) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let points: Vec<String> = pts
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", sx(*x), sy(*y)))
            .collect();
        let _ = write!(
            svg,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"3\" points=\"{}\"/>",
            points.join(" ")
        );
        let ly = h + 15.0 + 20.0 * i as f64;
        let _ = write!(
            svg,
            "<rect x=\"{left}\" y=\"{}\" width=\"14\" height=\"4\" fill=\"{colour}\"/>\
             <text x=\"{}\" y=\"{ly}\" font-size=\"12\">{}</text>",
            ly - 5.0,
            left + 20.0,
            esc(name)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The page for `state`'s journals and `events` (the `--log-json` lines, any order).
pub fn page(state: &str, journals: &[JournalView], events: &[Value]) -> String {
    let rows = steps_of(journals);
    let mut html = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>ferry status: {s}</title>\
         <style>body{{font-family:sans-serif;margin:2em;color:#222}}\
         table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;\
         text-align:left;font-size:13px}}.ok{{color:#2a7}}.bad{{color:#c33}}\
         h2{{margin-top:1.5em;font-size:17px}}code{{font-size:12px}}</style></head><body>\
         <h1>ferry status</h1><p>state: <code>{s}</code>; {n} step run(s); {e} event(s) read</p>",
        s = esc(state),
        n = rows.len(),
        e = events.len()
    );
    html.push_str(
        "<table><tr><th>journal</th><th>step</th><th>title</th><th>status</th>\
         <th>duration</th><th>counters</th></tr>",
    );
    for r in &rows {
        let class = if r.status == "ok" { "ok" } else { "bad" };
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"{class}\">{}</td><td>{}</td>\
             <td><code>{}</code></td></tr>",
            esc(&r.journal),
            esc(&r.step),
            esc(&r.title),
            esc(&r.status),
            r.duration_ms
                .map(|d| format!("{:.1} s", d as f64 / 1000.0))
                .unwrap_or_default(),
            esc(&r.counters)
        );
    }
    html.push_str("</table>");
    if events.is_empty() {
        html.push_str(
            "<p>No <code>--log-json</code> events were given (<code>--events FILE</code>): \
             throughput plots need them.</p>",
        );
    }
    for r in &rows {
        let series = series_for(r, events);
        if series.is_empty() {
            continue;
        }
        let _ = write!(
            html,
            "<h2>{} / {}: throughput over time</h2>{}",
            esc(&r.journal),
            esc(&r.step),
            plot(&series)
        );
    }
    html.push_str("</body></html>\n");
    html
}

/// Reads `--log-json` files (torn or foreign lines are skipped).
pub fn read_events(files: &[std::path::PathBuf]) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f)
            .map_err(|e| FerryError::io(format!("reading --events {}", f.display()), &e))?;
        out.extend(
            text.lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .filter(|v| v.get("event").is_some()),
        );
    }
    Ok(out)
}

pub fn write(path: &Path, html: &str) -> Result<()> {
    std::fs::write(path, html)
        .map_err(|e| FerryError::io(format!("writing --html {}", path.display()), &e))
}
