//! `ferry status --state DIR_OR_URL`: every shard's steps and their status, read from the
//! journals (a plain run's state dir shows as one journal).

use std::path::Path;

use serde_json::{Value, json};

use crate::runtime::error::{ErrorKind, FerryError, Result};
use crate::runtime::journal::JOURNAL_FILE;
use crate::runtime::shard::{
    self, FINALIZE_DIR, JournalView, event_label, parse_shard_dir, step_states,
};

pub fn status(
    state: &str,
    shards: Option<u32>,
    as_json: bool,
    html: Option<&Path>,
    events: &[std::path::PathBuf],
) -> Result<()> {
    let journals = if crate::runtime::remote_state::is_remote(state) {
        crate::runtime::remote_state::read_journals(state)?
    } else {
        read_local(&crate::runtime::remote_state::local_folder(state))?
    };
    if let Some(path) = html {
        let events = super::status_html::read_events(events)?;
        let page = super::status_html::page(state, &journals, &events);
        super::status_html::write(path, &crate::runtime::redact::redact(&page))?;
    }
    if as_json {
        println!("{}", to_json(state, &journals, shards));
    } else {
        println!("{}", render(state, &journals, shards));
    }
    Ok(())
}

fn read_local(root: &Path) -> Result<Vec<JournalView>> {
    if !root.is_dir() {
        return Err(FerryError::new(
            ErrorKind::NotFound,
            format!("no state at {}", root.display()),
        )
        .hint("give the --state of the runs (a folder, or an s3://, gs://, az:// URL)"));
    }
    let mut out = Vec::new();
    if let Some(entries) = shard::read_entries(&root.join(JOURNAL_FILE)) {
        out.push(JournalView {
            name: String::new(),
            entries,
        });
    }
    let rd = std::fs::read_dir(root)
        .map_err(|e| FerryError::io(format!("reading {}", root.display()), &e))?;
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if (parse_shard_dir(&name).is_some() || name == FINALIZE_DIR)
            && let Some(entries) = shard::read_entries(&e.path().join(JOURNAL_FILE))
        {
            out.push(JournalView { name, entries });
        }
    }
    Ok(out)
}

/// Where a journal stands: `finished`, `unfinished` (with the first step not ok and its event),
/// `stopped` (the run ended before its steps were done) or `running` (or killed between steps).
fn standing(entries: &[Value]) -> (&'static str, Option<(String, String)>) {
    let states = step_states(entries);
    let last_run = entries.iter().rev().find(|e| e["event"] == "run_finished");
    if let Some((s, ev, _)) = states.iter().find(|(_, ev, _)| ev != "step_finished") {
        ("unfinished", Some((s.clone(), ev.clone())))
    } else if last_run.is_some_and(|r| r["status"] == "ok") {
        ("finished", None)
    } else if last_run.is_some() {
        ("stopped", None)
    } else {
        ("running", None)
    }
}

/// One line about a journal: finished, failed, unfinished, and the steps below it.
fn describe(entries: &[Value]) -> (String, Vec<String>) {
    let states = step_states(entries);
    let head = match standing(entries) {
        ("unfinished", Some((s, ev))) => format!("unfinished: step {s} {}", event_label(&ev)),
        ("finished", _) => format!("finished ({} step(s) ok)", states.len()),
        ("stopped", _) => "stopped before its steps were done".to_string(),
        _ => "running, or killed between steps".to_string(),
    };
    let w = states.iter().map(|(s, _, _)| s.len()).max().unwrap_or(4);
    let lines = states
        .iter()
        .map(|(s, ev, counters)| {
            let c = match counters {
                Value::Object(m) => {
                    let mut pairs: Vec<_> = m.iter().collect();
                    pairs.sort_by(|a, b| a.0.cmp(b.0));
                    pairs
                        .into_iter()
                        .map(|(k, v)| match v {
                            Value::String(x) => format!("{k}={x}"),
                            other => format!("{k}={other}"),
                        })
                        .collect::<Vec<_>>()
                        .join(" ")
                }
                _ => String::new(),
            };
            format!("    {s:<w$}  {:<10}  {c}", event_label(ev))
                .trim_end()
                .to_string()
        })
        .collect();
    (head, lines)
}

/// `ferry status --json`: the same facts as [`render`] as one object (fields in docs/cli.md).
pub fn to_json(state: &str, journals: &[JournalView], shards: Option<u32>) -> Value {
    let journal = |j: &JournalView| {
        let (status, first_bad) = standing(&j.entries);
        let (kind, shard) = match parse_shard_dir(&j.name) {
            Some((i, n)) => ("shard", json!({"index": i, "count": n})),
            None if j.name == FINALIZE_DIR => ("finalize", Value::Null),
            None => ("run", Value::Null),
        };
        let steps: Vec<Value> = step_states(&j.entries)
            .into_iter()
            .map(|(step, ev, counters)| {
                json!({"step": step, "status": step_status(&ev), "event": ev,
                       "counters": counters})
            })
            .collect();
        json!({"name": j.name, "kind": kind, "shard": shard, "status": status,
               "unfinished_step": first_bad.map(|(s, _)| s), "steps": steps})
    };
    let shard_sets: Vec<Value> = shard_counts(journals, shards)
        .into_iter()
        .map(|n| {
            let (mut finished, mut not_started) = (0, Vec::new());
            for i in 0..n {
                match journals
                    .iter()
                    .find(|j| j.name == shard::shard_dir_name(i, n))
                {
                    None => not_started.push(i),
                    Some(j) if standing(&j.entries).0 == "finished" => finished += 1,
                    Some(_) => {}
                }
            }
            json!({"count": n, "finished": finished, "not_started": not_started})
        })
        .collect();
    json!({
        "state": state,
        "journals": journals.iter().map(journal).collect::<Vec<_>>(),
        "shard_sets": shard_sets,
    })
}

/// The shard counts to report: `--shards N`, else every count that has shard dirs (a migration
/// re-split into another N keeps the older dirs).
fn shard_counts(journals: &[JournalView], shards: Option<u32>) -> Vec<u32> {
    let mut counts: Vec<u32> = match shards {
        Some(n) => vec![n],
        None => journals
            .iter()
            .filter_map(|j| parse_shard_dir(&j.name).map(|(_, n)| n))
            .collect(),
    };
    counts.sort();
    counts.dedup();
    counts
}

/// A step's status word for JSON: ok, started (never finished), failed, interrupted.
fn step_status(event: &str) -> &str {
    match event {
        "step_finished" => "ok",
        "step_started" => "started",
        "step_failed" => "failed",
        "step_interrupted" => "interrupted",
        other => other,
    }
}

pub fn render(state: &str, journals: &[JournalView], shards: Option<u32>) -> String {
    let mut out = String::new();
    if journals.is_empty() {
        out.push_str(&format!(
            "{state}: no journal yet (nothing ran with this --state)\n"
        ));
    }
    if let Some(root) = journals.iter().find(|j| j.name.is_empty()) {
        let (head, lines) = describe(&root.entries);
        out.push_str(&format!("{state} (not sharded): {head}\n"));
        for l in lines {
            out.push_str(&format!("{l}\n"));
        }
    }
    for n in shard_counts(journals, shards) {
        out.push_str(&format!("{state}: {n} shard(s)\n"));
        let mut done = 0;
        for i in 0..n {
            let name = shard::shard_dir_name(i, n);
            match journals.iter().find(|j| j.name == name) {
                None => out.push_str(&format!("  shard {i}/{n}: not started\n")),
                Some(j) => {
                    let (head, lines) = describe(&j.entries);
                    if head.starts_with("finished") {
                        done += 1;
                    }
                    out.push_str(&format!("  shard {i}/{n}: {head}\n"));
                    for l in lines {
                        out.push_str(&format!("{l}\n"));
                    }
                }
            }
        }
        out.push_str(&format!("  {done} of {n} shard(s) finished\n"));
    }
    if let Some(f) = journals.iter().find(|j| j.name == FINALIZE_DIR) {
        let (head, lines) = describe(&f.entries);
        out.push_str(&format!("  finalize: {head}\n"));
        for l in lines {
            out.push_str(&format!("{l}\n"));
        }
    } else if journals.iter().any(|j| !j.name.is_empty()) {
        out.push_str("  finalize: not started\n");
    }
    out.trim_end().to_string()
}
