//! The step journal: `journal.jsonl` in the state dir, one JSON object per line, append-only and
//! flushed at every step boundary and checkpoint. A re-run reads it first; nothing else decides
//! what is done.
//!
//! Entry fields (schema `v` 1): `ts`, `run_id`, `event` (`run_started`, `step_started`,
//! `step_finished`, `step_failed`, `step_interrupted`, `checkpoint`, `confirmed`, `run_finished`),
//! `step`, `title`, `status`, `duration_ms`, `counters`, `params_hash`, `script_checksum`,
//! `error`, `name`/`value` for checkpoints.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use super::error::{ErrorKind, FerryError, Result};
use super::redact::redact;

pub const JOURNAL_FILE: &str = "journal.jsonl";

pub struct Journal {
    path: PathBuf,
    file: Option<File>,
    _lock: Option<File>,
    pub entries: Vec<Value>,
    run_id: String,
}

/// What the journal says about a step from earlier runs.
#[derive(Debug, Clone)]
pub struct PriorStep {
    pub params_hash: String,
    pub script_checksum: String,
    pub counters: Value,
}

impl Journal {
    /// Opens (creating) the journal in `dir` and takes an exclusive lock so two runs cannot share
    /// one state dir.
    pub fn open(dir: &Path, run_id: &str) -> Result<Journal> {
        std::fs::create_dir_all(dir)
            .map_err(|e| FerryError::io(format!("creating state dir {}", dir.display()), &e))?;
        let lock_path = dir.join("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| FerryError::io(format!("opening {}", lock_path.display()), &e))?;
        if lock.try_lock().is_err() {
            return Err(FerryError::new(
                ErrorKind::Conflict,
                format!(
                    "another ferry run is using the state dir {} (lock held)",
                    dir.display()
                ),
            )
            .hint("wait for it to finish, or use another --state DIR"));
        }
        let path = dir.join(JOURNAL_FILE);
        let mut entries = Vec::new();
        if path.exists() {
            let f = File::open(&path)
                .map_err(|e| FerryError::io(format!("reading {}", path.display()), &e))?;
            for line in BufReader::new(f).lines() {
                let line =
                    line.map_err(|e| FerryError::io(format!("reading {}", path.display()), &e))?;
                if line.trim().is_empty() {
                    continue;
                }
                // A torn last line (kill -9 mid-write) is ignored; every complete line counts.
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    entries.push(v);
                }
            }
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| FerryError::io(format!("opening {}", path.display()), &e))?;
        Ok(Journal {
            path,
            file: Some(file),
            _lock: Some(lock),
            entries,
            run_id: run_id.to_string(),
        })
    }

    /// A read-only view of entries (dry runs peek at the journal without locking or writing).
    pub fn from_entries(entries: Vec<Value>) -> Journal {
        Journal {
            path: PathBuf::new(),
            file: None,
            _lock: None,
            entries,
            run_id: String::new(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one entry (adding `v`, `ts` and `run_id`) and flushes it to disk.
    pub fn append(&mut self, event: &str, fields: Value) -> Result<()> {
        let mut obj = Map::new();
        obj.insert("v".into(), json!(1));
        obj.insert(
            "ts".into(),
            json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        );
        obj.insert("run_id".into(), json!(self.run_id));
        obj.insert("event".into(), json!(event));
        if let Value::Object(extra) = fields {
            obj.extend(extra);
        }
        let v = Value::Object(obj);
        let line = redact(&v.to_string()).into_owned();
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        // On a full disk part of the line may land: cut the file back so the next entry does
        // not start glued to a torn one (and get lost with it).
        let before = file.metadata().map(|m| m.len());
        file.write_all(format!("{line}\n").as_bytes())
            .and_then(|_| file.sync_data())
            .map_err(|e| {
                if let Ok(len) = before {
                    let _ = file.set_len(len);
                }
                FerryError::io(format!("writing {}", self.path.display()), &e)
            })?;
        self.entries.push(serde_json::from_str(&line).unwrap_or(v));
        Ok(())
    }

    /// The latest successful completion of `step` in any earlier run.
    pub fn prior_success(&self, step: &str) -> Option<PriorStep> {
        self.entries
            .iter()
            .rev()
            .find(|e| e["step"] == step && e["event"] == "step_finished")
            .map(|e| PriorStep {
                params_hash: e["params_hash"].as_str().unwrap_or_default().to_string(),
                script_checksum: e["script_checksum"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                counters: e["counters"].clone(),
            })
    }

    /// Whether the step's last event says it started but never finished (failed, interrupted or
    /// killed).
    pub fn unfinished(&self, step: &str) -> bool {
        self.entries
            .iter()
            .rev()
            .find(|e| e["step"] == step && e["event"] != "checkpoint")
            .is_some_and(|e| e["event"] != "step_finished")
    }

    /// The latest checkpoint value named `name` for `step` recorded under `params_hash`.
    /// With `run_id`, only checkpoints of that run count (`--fresh` ignores earlier runs); an
    /// empty `params_hash` matches checkpoints recorded under any parameters.
    pub fn checkpoint(
        &self,
        step: &str,
        name: &str,
        params_hash: &str,
        run_id: Option<&str>,
    ) -> Option<Value> {
        // Entries are stored redacted; compare names the same way.
        let name = redact(name);
        let name = name.as_ref();
        self.entries
            .iter()
            .rev()
            .take_while(|e| !(e["step"] == step && e["event"] == "step_finished"))
            .find(|e| {
                e["event"] == "checkpoint"
                    && e["step"] == step
                    && e["name"] == name
                    && (params_hash.is_empty() || e["params_hash"] == params_hash)
                    && run_id.is_none_or(|r| e["run_id"] == r)
            })
            .map(|e| e["value"].clone())
    }

    /// Steps completed under a script checksum other than `checksum`.
    pub fn steps_done_by_other_script(&self, checksum: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for e in &self.entries {
            if e["event"] == "step_finished"
                && e["script_checksum"] != checksum
                && let Some(s) = e["step"].as_str()
                && !out.iter().any(|x| x == s)
            {
                out.push(s.to_string());
            }
        }
        // Only those whose latest completion is by another script still matter.
        out.retain(|s| {
            self.prior_success(s)
                .is_some_and(|p| p.script_checksum != checksum)
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_reopen_and_torn_lines_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut j = Journal::open(dir.path(), "r1").unwrap();
            j.append(
                "step_finished",
                json!({"step": "a", "params_hash": "p", "script_checksum": "s", "counters": {"n": 1}}),
            )
            .unwrap();
            j.append(
                "checkpoint",
                json!({"step": "b", "name": "last", "value": 7, "params_hash": "p"}),
            )
            .unwrap();
        }
        // Simulate a kill -9 mid-line.
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join(JOURNAL_FILE))
            .unwrap();
        f.write_all(b"{\"event\":\"step_fin").unwrap();
        drop(f);
        let j = Journal::open(dir.path(), "r2").unwrap();
        let prior = j.prior_success("a").unwrap();
        assert_eq!(prior.counters["n"], 1);
        assert!(j.prior_success("b").is_none());
        assert_eq!(j.checkpoint("b", "last", "p", None), Some(json!(7)));
        assert_eq!(j.checkpoint("b", "last", "other", None), None);
        assert_eq!(j.steps_done_by_other_script("s2"), vec!["a".to_string()]);
        assert!(j.steps_done_by_other_script("s").is_empty());
    }

    #[test]
    fn a_second_run_cannot_share_the_state_dir() {
        let dir = tempfile::tempdir().unwrap();
        let _j = Journal::open(dir.path(), "r1").unwrap();
        let err = Journal::open(dir.path(), "r2").err().unwrap();
        assert_eq!(err.kind, ErrorKind::Conflict);
    }
}
