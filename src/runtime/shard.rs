//! Sharded runs: one procedure split across N processes (Kubernetes Indexed Job pods, or local
//! processes). Each shard keeps its own journal and caches in `<state>/shard-I-of-N/`; steps
//! declared `{sharded = true}` run in every shard (each shardable primitive takes its share), the
//! others run once, in the finalize run (`<state>/finalize/`), which refuses to start while any
//! shard's journal shows unfinished work. The `ferry.shard` module tells scripts which share is
//! theirs.

use std::path::{Path, PathBuf};

use mlua::{Lua, Table};
use serde_json::{Map, Value};

use super::context::ctx;
use super::error::{ErrorKind, FerryError, Result};
use super::journal::JOURNAL_FILE;
use super::registry::{FnDoc, ModuleDef, Param};

/// The environment variable Kubernetes sets in every pod of an Indexed Job.
pub const INDEX_ENV: &str = "JOB_COMPLETION_INDEX";
/// The shard count when `--shards` is absent.
pub const COUNT_ENV: &str = "FERRY_SHARDS";
/// The finalize run's state dir under the state root.
pub const FINALIZE_DIR: &str = "finalize";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Only `{sharded = true}` steps run; once-only steps are left for finalize.
    Shards,
    /// Only once-only steps run, after every shard finished its sharded steps.
    Finalize,
}

impl Phase {
    pub fn parse(s: &str) -> Result<Phase> {
        match s {
            "shards" => Ok(Phase::Shards),
            "finalize" => Ok(Phase::Finalize),
            _ => Err(FerryError::usage(format!(
                "--phase expects shards or finalize, got '{s}'"
            ))),
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Phase::Shards => "shards",
            Phase::Finalize => "finalize",
        }
    }
}

/// How this run takes part in a sharded migration (all empty for an ordinary run).
#[derive(Debug, Clone, Default)]
pub struct Sharding {
    pub phase: Option<Phase>,
    /// N: from `--shard I/N`, `--shards N` or `FERRY_SHARDS`.
    pub count: Option<u32>,
    /// The local folder holding `shard-I-of-N/` and `finalize/` (the state root).
    pub root: PathBuf,
    /// The state location as the user gave it (a folder or an object store URL), for messages.
    pub shown_root: String,
    /// The finalize run checked every shard before its first step.
    pub checked: bool,
    /// Once-only steps of a shard run without `--phase` (warned about once).
    pub warned: bool,
    /// This run's shard (as in `RunOptions::shard`).
    pub shard: Option<(u32, u32)>,
    /// The script as named on the command line (for the commands finalize suggests).
    pub script_arg: String,
    /// The object store the state lives on (`--state s3://...`), mirrored in `root`.
    pub remote: Option<std::sync::Arc<super::remote_state::RemoteState>>,
}

impl Sharding {
    /// This run's own state dir: `shard-I-of-N/` of a shard, `finalize/` of the finalize run,
    /// the state root itself otherwise.
    pub fn state_dir(&self) -> PathBuf {
        match self.own_folder() {
            Some(f) => self.root.join(f),
            None => self.root.clone(),
        }
    }

    /// The folder of this run's state below the root (None: the root itself).
    pub fn own_folder(&self) -> Option<String> {
        match (self.shard, self.phase) {
            (Some((i, n)), _) => Some(shard_dir_name(i, n)),
            (None, Some(Phase::Finalize)) => Some(FINALIZE_DIR.to_string()),
            _ => None,
        }
    }

    /// Fetches what this run reads from a state on an object store: its own folder, and in the
    /// finalize run every shard's.
    pub fn pull(&self) -> Result<()> {
        let Some(r) = &self.remote else {
            return Ok(());
        };
        let own = self.own_folder().unwrap_or_default();
        r.take_lease(&own)?;
        r.pull(&own)?;
        if let (Some(Phase::Finalize), Some(n)) = (self.phase, self.count) {
            for i in 0..n {
                r.pull(&shard_dir_name(i, n))?;
            }
        }
        Ok(())
    }

    /// Gives up this run's lease on a state on an object store (the end of the run).
    pub fn release(&self) {
        if let Some(r) = &self.remote {
            r.release();
        }
    }

    /// Saves this run's state folder to the object store (no-op for local state).
    pub fn push(&self, force: bool) -> Result<()> {
        match &self.remote {
            Some(r) => r.push(self.own_folder().as_deref().unwrap_or(""), force),
            None => Ok(()),
        }
    }
}

/// The `shard = {index, count}` option of a copy primitive (`store.copy`, `sql.copy_table`).
pub fn shard_option(t: &mlua::Table) -> mlua::Result<Option<(u32, u32)>> {
    let Some(s) = t.get::<Option<mlua::Table>>("shard")? else {
        return Ok(None);
    };
    let index: u32 = s.get("index")?;
    let count: u32 = s.get("count")?;
    if count == 0 || index >= count {
        return Err(super::error::FerryError::new(
            super::error::ErrorKind::InvalidInput,
            format!("shard index {index} is not below count {count}"),
        )
        .into());
    }
    Ok(Some((index, count)))
}

pub fn shard_dir_name(index: u32, count: u32) -> String {
    format!("shard-{index}-of-{count}")
}

/// Parses `shard-I-of-N`.
pub fn parse_shard_dir(name: &str) -> Option<(u32, u32)> {
    let rest = name.strip_prefix("shard-")?;
    let (i, n) = rest.split_once("-of-")?;
    Some((i.parse().ok()?, n.parse().ok()?))
}

/// (this run's shard as (index, count), the shard count).
pub type ShardAndCount = (Option<(u32, u32)>, Option<u32>);

/// Decides this run's shard from the flags and the environment:
/// `--shard I/N` wins; otherwise `JOB_COMPLETION_INDEX` with `--shards N` (or `FERRY_SHARDS`).
/// Returns (shard, count).
pub fn resolve(
    shard: Option<(u32, u32)>,
    shards_flag: Option<u32>,
    phase: Option<Phase>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ShardAndCount> {
    let env_count = match env(COUNT_ENV).filter(|v| !v.trim().is_empty()) {
        None => None,
        Some(v) => Some(
            v.trim()
                .parse::<u32>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    FerryError::usage(format!(
                        "{COUNT_ENV} must be a shard count above 0, got '{v}'"
                    ))
                })?,
        ),
    };
    if shards_flag == Some(0) {
        return Err(FerryError::usage("--shards must be above 0"));
    }
    let count = shards_flag.or(env_count);
    if phase == Some(Phase::Finalize) {
        if shard.is_some() {
            return Err(FerryError::usage(
                "--phase finalize runs once, not as a shard; drop --shard",
            ));
        }
        let n = count.ok_or_else(|| {
            FerryError::usage(
                "--phase finalize needs the shard count: --shards N (or FERRY_SHARDS)",
            )
        })?;
        return Ok((None, Some(n)));
    }
    if let Some((i, n)) = shard {
        if let Some(c) = shards_flag
            && c != n
        {
            return Err(FerryError::usage(format!(
                "--shard {i}/{n} and --shards {c} disagree on the shard count"
            )));
        }
        return Ok((Some((i, n)), Some(n)));
    }
    let index = env(INDEX_ENV).filter(|v| !v.trim().is_empty());
    match (index, count) {
        (Some(v), Some(n)) => {
            let i: u32 = v.trim().parse().map_err(|_| {
                FerryError::usage(format!("{INDEX_ENV} must be a number, got '{v}'"))
            })?;
            if i >= n {
                return Err(FerryError::usage(format!(
                    "{INDEX_ENV}={i} is not below the shard count {n}"
                ))
                .hint("the Job's completions and ferry's --shards must be the same number"));
            }
            Ok((Some((i, n)), Some(n)))
        }
        (None, Some(n)) => Err(FerryError::usage(format!(
            "--shards {n} (or {COUNT_ENV}) needs this run's shard index: --shard I/{n}, or \
             {INDEX_ENV} as Kubernetes sets it in an Indexed Job"
        ))),
        (_, None) if phase == Some(Phase::Shards) => Err(FerryError::usage(
            "--phase shards needs a shard: --shard I/N, or --shards N with JOB_COMPLETION_INDEX",
        )),
        _ => Ok((None, None)),
    }
}

/// One journal of a state location: its folder name ("" for the root) and entries.
pub struct JournalView {
    pub name: String,
    pub entries: Vec<Value>,
}

/// The entries of a journal file, read-only (no lock); torn lines are ignored.
pub fn read_entries(path: &Path) -> Option<Vec<Value>> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(
        text.lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect(),
    )
}

/// The status of every step a journal mentions, in first-seen order: (step, last event,
/// counters of its last completion).
pub fn step_states(entries: &[Value]) -> Vec<(String, String, Value)> {
    let mut out: Vec<(String, String, Value)> = Vec::new();
    for e in entries {
        let (Some(step), Some(event)) = (e["step"].as_str(), e["event"].as_str()) else {
            continue;
        };
        if event == "checkpoint" {
            continue;
        }
        let counters = if event == "step_finished" {
            e["counters"].clone()
        } else {
            Value::Null
        };
        match out.iter_mut().find(|(s, _, _)| s == step) {
            Some(slot) => {
                slot.1 = event.to_string();
                if event == "step_finished" {
                    slot.2 = counters;
                }
            }
            None => out.push((step.to_string(), event.to_string(), counters)),
        }
    }
    out
}

pub fn event_label(event: &str) -> &str {
    match event {
        "step_finished" => "ok",
        "step_started" => "unfinished (started, never finished: killed?)",
        "step_failed" => "failed",
        "step_interrupted" => "interrupted",
        other => other,
    }
}

/// Before the finalize run's first step: every shard has a journal and none shows a step that
/// started and did not finish.
pub fn check_all_shards(
    root: &Path,
    shown: &str,
    count: u32,
    rerun: &dyn Fn(u32) -> String,
) -> Result<()> {
    let mut problems = Vec::new();
    let mut first_bad = None;
    for i in 0..count {
        let dir = root.join(shard_dir_name(i, count));
        let Some(entries) = read_entries(&dir.join(JOURNAL_FILE)) else {
            problems.push(format!(
                "shard {i}/{count} has not run (no journal in {}/{})",
                shown,
                shard_dir_name(i, count)
            ));
            first_bad.get_or_insert(i);
            continue;
        };
        let bad: Vec<String> = step_states(&entries)
            .into_iter()
            .filter(|(_, ev, _)| ev != "step_finished")
            .map(|(s, ev, _)| format!("{s} {}", event_label(&ev)))
            .collect();
        if !bad.is_empty() {
            problems.push(format!("shard {i}/{count}: step {}", bad.join(", step ")));
            first_bad.get_or_insert(i);
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(FerryError::new(
        ErrorKind::Conflict,
        format!(
            "finalize refused: sharded work is not finished:\n  {}",
            problems.join("\n  ")
        ),
    )
    .hint(format!(
        "finish the shard(s) first (the Indexed Job retries failed pods; by hand: {}), then run \
         finalize again; `ferry status --state {shown}` shows every shard",
        rerun(first_bad.unwrap_or(0))
    )))
}

/// In the finalize run, a `{sharded = true}` step is not run again: every shard must have
/// finished it (under the same parameters). Returns the counters of all shards, numbers summed.
pub fn shards_finished_step(
    root: &Path,
    count: u32,
    step: &str,
    params_hash: &str,
    rerun: &dyn Fn(u32) -> String,
) -> Result<Value> {
    let mut merged = Map::new();
    let mut missing = Vec::new();
    for i in 0..count {
        let path = root.join(shard_dir_name(i, count)).join(JOURNAL_FILE);
        let entries = read_entries(&path).unwrap_or_default();
        let last = entries
            .iter()
            .rev()
            .find(|e| e["step"] == step && e["event"] != "checkpoint");
        match last {
            Some(e) if e["event"] == "step_finished" => {
                if e["params_hash"].as_str().unwrap_or_default() != params_hash {
                    missing.push((i, "finished it with other parameters".to_string()));
                    continue;
                }
                if let Value::Object(m) = &e["counters"] {
                    merge_counters(&mut merged, m);
                }
            }
            Some(e) => missing.push((
                i,
                event_label(e["event"].as_str().unwrap_or_default()).to_string(),
            )),
            None => missing.push((i, "has not run it".to_string())),
        }
    }
    if missing.is_empty() {
        return Ok(Value::Object(merged));
    }
    let list: Vec<String> = missing
        .iter()
        .map(|(i, why)| format!("shard {i}/{count}: {why}"))
        .collect();
    Err(FerryError::new(
        ErrorKind::Conflict,
        format!(
            "finalize refused: sharded step '{step}' is not finished by every shard:\n  {}",
            list.join("\n  ")
        ),
    )
    .with("step", step)
    .hint(format!(
        "run the shard(s) with the same parameters first, e.g. {}",
        rerun(missing[0].0)
    )))
}

/// Sums numeric counters; other values are kept from the first shard that has them.
fn merge_counters(into: &mut Map<String, Value>, from: &Map<String, Value>) {
    for (k, v) in from {
        match (into.get(k), v) {
            (Some(Value::Number(a)), Value::Number(b)) => {
                let sum = match (a.as_i64(), b.as_i64()) {
                    (Some(x), Some(y)) => Value::from(x + y),
                    _ => Value::from(a.as_f64().unwrap_or(0.0) + b.as_f64().unwrap_or(0.0)),
                };
                into.insert(k.clone(), sum);
            }
            (None, _) => {
                into.insert(k.clone(), v.clone());
            }
            _ => {}
        }
    }
}

pub static MODULE: ModuleDef = ModuleDef {
    name: "shard",
    summary: "Sharded runs: which share of the work is this run's (--shard, JOB_COMPLETION_INDEX).",
    functions: &[
        FnDoc {
            name: "info",
            signature: "ferry.shard.info() -> {index, count, phase} or nil",
            params: &[],
            options: &[],
            returns: "{index: integer?, count: integer?, phase: (\"shards\"|\"finalize\")?}?",
            doc: "This run's shard (0-based index of count) and phase (\"shards\", \"finalize\" or \
                  nil), or nil for an ordinary run. The finalize run has count and no index.",
            example: Some("assert(ferry.shard.info() == nil)"),
        },
        FnDoc {
            name: "owns",
            signature: "ferry.shard.owns(key) -> boolean",
            params: &[Param::new("key", "string")],
            options: &[],
            returns: "boolean",
            doc: "Whether key belongs to this run's shard, by the same stable FNV-1a hash \
                  ferry.store.copy uses; always true outside a shard. For sharded steps that \
                  distribute work themselves (a list of segments, of tables).",
            example: Some("assert(ferry.shard.owns(\"any/key\"))"),
        },
        FnDoc {
            name: "state_dirs",
            signature: "ferry.shard.state_dirs() -> {path, ...}",
            params: &[],
            options: &[],
            returns: "string[]",
            doc: "The state dirs whose records this run reads: its own, and in the finalize run \
                  every shard's (e.g. to merge the manifests of copies each shard made).",
            example: Some("assert(#ferry.shard.state_dirs() == 1)"),
        },
    ],
    classes: &[],
    constants: &[],
    build,
};

fn build(lua: &Lua) -> mlua::Result<Table> {
    let m = lua.create_table()?;
    m.set(
        "info",
        lua.create_function(|lua, ()| {
            let c = ctx(lua);
            let s = c.sharding.borrow();
            if c.opts.shard.is_none() && s.phase.is_none() {
                return Ok(None);
            }
            let t = lua.create_table()?;
            if let Some((i, n)) = c.opts.shard {
                t.set("index", i)?;
                t.set("count", n)?;
            } else if let Some(n) = s.count {
                t.set("count", n)?;
            }
            t.set("phase", s.phase.map(|p| p.label()))?;
            Ok(Some(t))
        })?,
    )?;
    m.set(
        "owns",
        lua.create_function(|lua, key: String| {
            Ok(match ctx(lua).opts.shard {
                Some((i, n)) => shard_of(&key, n) == i,
                None => true,
            })
        })?,
    )?;
    m.set(
        "state_dirs",
        lua.create_function(|lua, ()| {
            let c = ctx(lua);
            let s = c.sharding.borrow();
            let mut dirs = vec![c.opts.state_dir.to_string_lossy().into_owned()];
            if let (Some(Phase::Finalize), Some(n)) = (s.phase, s.count) {
                for i in 0..n {
                    dirs.push(
                        s.root
                            .join(shard_dir_name(i, n))
                            .to_string_lossy()
                            .into_owned(),
                    );
                }
            }
            Ok(dirs)
        })?,
    )?;
    Ok(m)
}

/// Stable 64-bit FNV-1a of a key: the shard a key belongs to never changes between versions.
pub fn shard_of(key: &str, count: u32) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.as_bytes() {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % count as u64) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn the_shard_comes_from_the_flag_or_the_indexed_job() {
        let none = env_of(&[]);
        assert_eq!(
            resolve(Some((1, 3)), None, None, &none).unwrap(),
            (Some((1, 3)), Some(3))
        );
        let pod = env_of(&[("JOB_COMPLETION_INDEX", "2"), ("FERRY_SHARDS", "4")]);
        assert_eq!(
            resolve(None, None, None, &pod).unwrap(),
            (Some((2, 4)), Some(4))
        );
        assert_eq!(
            resolve(None, Some(8), None, &pod).unwrap(),
            (Some((2, 8)), Some(8))
        );
        // An index without a declared count is not a sharded run.
        let lone = env_of(&[("JOB_COMPLETION_INDEX", "2")]);
        assert_eq!(resolve(None, None, None, &lone).unwrap(), (None, None));
        assert!(resolve(None, Some(2), None, &pod).is_err(), "index 2 of 2");
        assert!(
            resolve(None, Some(2), None, &none).is_err(),
            "count without index"
        );
        assert!(resolve(Some((0, 2)), Some(3), None, &none).is_err());
        assert_eq!(
            resolve(None, Some(3), Some(Phase::Finalize), &pod).unwrap(),
            (None, Some(3))
        );
        assert!(resolve(None, None, Some(Phase::Finalize), &none).is_err());
        assert!(resolve(None, None, Some(Phase::Shards), &none).is_err());
    }

    #[test]
    fn shard_dirs_round_trip() {
        assert_eq!(parse_shard_dir(&shard_dir_name(3, 8)), Some((3, 8)));
        assert_eq!(parse_shard_dir("finalize"), None);
    }

    #[test]
    fn counters_of_shards_add_up() {
        let mut m = Map::new();
        let a = serde_json::json!({"copied": 2, "bytes": 10, "inventory": "listing"});
        let b = serde_json::json!({"copied": 3, "bytes": 5, "inventory": "cache"});
        merge_counters(&mut m, a.as_object().unwrap());
        merge_counters(&mut m, b.as_object().unwrap());
        assert_eq!(
            Value::Object(m),
            serde_json::json!({"copied": 5, "bytes": 15, "inventory": "listing"})
        );
    }
}
