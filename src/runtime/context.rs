//! Per-run context shared by every binding through Lua app data: options, the script, declared
//! parameters, the journal, step records, the dry-run switch and the cancellation token.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use mlua::Lua;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::error::{ErrorKind, FerryError, Result};
use super::journal::Journal;
use super::output::{self, EV};
use super::params::{ParamDecl, ParamValue, RawParams};
use super::shard::{self, Phase, Sharding};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A real (or dry) run.
    Run,
    /// `ferry help`: parameters return defaults, steps are recorded and not run.
    Describe,
    /// `ferry repl`: steps run without a journal.
    Repl,
}

#[derive(Debug, Clone)]
pub struct ScriptInfo {
    /// Procedure name (bundled name, or file stem).
    pub name: String,
    /// How the script is named in messages and tracebacks (`scripts/x.lua`, `./mine.lua`).
    pub display: String,
    /// The script's folder, searched first by `require`.
    pub dir: Option<PathBuf>,
    pub source: String,
    pub checksum: String,
    pub bundled: bool,
}

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub mode: Mode,
    pub dry_run: bool,
    pub yes: bool,
    pub state_dir: PathBuf,
    pub from_step: Option<String>,
    pub fresh: bool,
    pub raw: RawParams,
    /// The command that re-runs this procedure (`ferry run NAME --state DIR`), without `-p`.
    pub resume_base: String,
    /// `-q`: no summary when the run succeeds.
    pub quiet: bool,
    /// `--shard I/N`: this run's share of every shardable copy.
    pub shard: Option<(u32, u32)>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StepStatus {
    Running,
    Ok,
    /// Done by an earlier run (or before `--from-step`).
    Done,
    Failed,
    Interrupted,
    /// Listed by `ferry help` (describe mode).
    Listed,
    /// A once-only step in `--phase shards`: the finalize run does it.
    Deferred,
    /// A sharded step in `--phase finalize`: every shard finished it.
    ByShards,
}

impl StepStatus {
    pub fn label(&self, dry_run: bool) -> &'static str {
        match self {
            StepStatus::Running => "running",
            StepStatus::Ok if dry_run => "dry-run",
            StepStatus::Ok => "ok",
            StepStatus::Done => "skipped (done)",
            StepStatus::Failed => "failed",
            StepStatus::Interrupted => "interrupted",
            StepStatus::Listed => "listed",
            StepStatus::Deferred => "left for finalize",
            StepStatus::ByShards => "done by shards",
        }
    }
}

#[derive(Debug, Clone)]
pub struct StepRecord {
    pub id: String,
    pub title: String,
    pub status: StepStatus,
    pub started: Option<Instant>,
    pub duration: Option<Duration>,
    pub counters: Value,
    pub error: Option<FerryError>,
}

pub struct RunContext {
    pub opts: RunOptions,
    pub script: ScriptInfo,
    pub run_id: String,
    pub cancel: CancellationToken,
    pub decls: RefCell<Vec<ParamDecl>>,
    pub values: RefCell<BTreeMap<String, ParamValue>>,
    pub params_hash: RefCell<String>,
    pub params_declared: Cell<bool>,
    journal: RefCell<Option<Journal>>,
    pub steps: RefCell<Vec<StepRecord>>,
    from_step_reached: Cell<bool>,
    pub would_count: Cell<u64>,
    pub state_values: RefCell<Option<serde_json::Map<String, Value>>>,
    dry: Cell<bool>,
    /// How this run takes part in a sharded migration (set by `ferry run` after `new`).
    pub sharding: RefCell<Sharding>,
}

/// The context of the Lua state that runs this callback.
pub fn ctx(lua: &Lua) -> Rc<RunContext> {
    lua.app_data_ref::<Rc<RunContext>>()
        .map(|c| c.clone())
        .expect("ferry run context is installed before any script runs")
}

impl RunContext {
    pub fn new(opts: RunOptions, script: ScriptInfo) -> RunContext {
        let opts_dry = opts.dry_run;
        RunContext {
            opts,
            script,
            run_id: uuid::Uuid::now_v7().to_string(),
            cancel: CancellationToken::new(),
            decls: RefCell::new(Vec::new()),
            values: RefCell::new(BTreeMap::new()),
            params_hash: RefCell::new(String::new()),
            params_declared: Cell::new(false),
            journal: RefCell::new(None),
            steps: RefCell::new(Vec::new()),
            from_step_reached: Cell::new(false),
            would_count: Cell::new(0),
            state_values: RefCell::new(None),
            dry: Cell::new(opts_dry),
            sharding: RefCell::new(Sharding::default()),
        }
    }

    pub fn dry_run(&self) -> bool {
        self.dry.get()
    }

    /// The REPL's `:dry on|off`.
    pub fn set_dry_run(&self, on: bool) {
        self.dry.set(on);
    }

    pub fn describing(&self) -> bool {
        self.opts.mode == Mode::Describe
    }

    /// Reports a mutation. Returns true when this is a dry run and the caller must not do it.
    pub fn would(&self, what: &str) -> bool {
        if self.describing() {
            return true;
        }
        if !self.dry_run() {
            return false;
        }
        self.would_count.set(self.would_count.get() + 1);
        tracing::info!(target: EV, "would {what}");
        output::event("would", json!({"action": what}));
        true
    }

    fn journaling(&self) -> bool {
        self.opts.mode == Mode::Run && !self.dry_run()
    }

    /// Runs `f` with the journal, opening it on first use (never in dry runs or describe mode).
    pub fn with_journal<R>(&self, f: impl FnOnce(&mut Journal) -> Result<R>) -> Result<Option<R>> {
        if !self.journaling() {
            return Ok(None);
        }
        let mut slot = self.journal.borrow_mut();
        if slot.is_none() {
            let mut j = Journal::open(&self.opts.state_dir, &self.run_id)?;
            self.check_script_unchanged(&j)?;
            j.append(
                "run_started",
                json!({
                    "script": self.script.display,
                    "script_checksum": self.script.checksum,
                    "params_hash": *self.params_hash.borrow(),
                    "from_step": self.opts.from_step,
                }),
            )?;
            *slot = Some(j);
        }
        let j = slot.as_mut().expect("journal opened above");
        f(j).map(Some)
    }

    /// Reads the journal of earlier runs (also in dry runs, read-only) without creating anything.
    pub fn read_prior(&self) -> Option<Journal> {
        let path = self.opts.state_dir.join(super::journal::JOURNAL_FILE);
        // Read-only peek for dry runs: parse lines without locking or creating anything.
        let text = std::fs::read_to_string(&path).ok()?;
        let entries: Vec<Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        Some(Journal::from_entries(entries))
    }

    fn check_script_unchanged(&self, j: &Journal) -> Result<()> {
        if self.opts.fresh || self.opts.from_step.is_some() {
            return Ok(());
        }
        let changed = j.steps_done_by_other_script(&self.script.checksum);
        if changed.is_empty() {
            return Ok(());
        }
        Err(FerryError::usage(format!(
            "the script {} changed since step(s) {} completed (journal {}); ferry does not \
             silently trust work done by another version of the script",
            self.script.display,
            changed.join(", "),
            j.path().display()
        ))
        .hint(format!(
            "re-run with --from-step ID to keep the steps before ID and run from there, or with \
             --fresh to run every step again: {} --from-step {}",
            self.opts.resume_base, changed[0]
        )))
    }

    /// Decides whether step `id` runs, and journals its start. Returns `Some(counters)` when the
    /// step is skipped because an earlier run completed it (never when `always`).
    pub fn step_begin(
        &self,
        id: &str,
        title: &str,
        always: bool,
        sharded: bool,
    ) -> Result<Option<Value>> {
        if self.steps.borrow().iter().any(|s| s.id == id) {
            return Err(FerryError::new(
                ErrorKind::InvalidInput,
                format!("step id '{id}' is used twice in this run; step ids must be unique"),
            ));
        }
        let mut record = StepRecord {
            id: id.to_string(),
            title: title.to_string(),
            status: StepStatus::Running,
            started: Some(Instant::now()),
            duration: None,
            counters: Value::Null,
            error: None,
        };
        if self.describing() {
            record.status = StepStatus::Listed;
            self.steps.borrow_mut().push(record);
            return Ok(Some(Value::Null));
        }
        if let Some(outcome) = self.shard_gate(&mut record, sharded)? {
            self.steps.borrow_mut().push(record);
            return Ok(Some(outcome));
        }
        let params_hash = self.params_hash.borrow().clone();
        let prior = if self.opts.fresh || always {
            None
        } else if self.journaling() {
            self.with_journal(|j| Ok(j.prior_success(id)))?.flatten()
        } else if self.opts.mode == Mode::Run {
            self.read_prior().and_then(|j| j.prior_success(id))
        } else {
            None
        };
        let skip = match (&self.opts.from_step, prior) {
            (Some(from), prior) => {
                if from == id {
                    self.from_step_reached.set(true);
                }
                if self.from_step_reached.get() {
                    None
                } else {
                    prior.filter(|p| p.params_hash == params_hash)
                }
            }
            (None, prior) => prior.filter(|p| {
                if p.params_hash != params_hash {
                    tracing::info!(target: EV, "step {id}: parameters changed since it completed; running it again");
                }
                p.params_hash == params_hash && p.script_checksum == self.script.checksum
            }),
        };
        if let Some(prior) = skip {
            record.status = StepStatus::Done;
            record.counters = prior.counters.clone();
            record.started = None;
            self.steps.borrow_mut().push(record);
            tracing::info!(target: EV, "step {id}: already done, skipping ({title})");
            output::event(
                "step_skipped",
                json!({"step": id, "title": title, "reason": "done"}),
            );
            return Ok(Some(prior.counters));
        }
        tracing::info!(target: EV, "step {id}: {title}{}", if self.dry_run() { " (dry run)" } else { "" });
        output::event(
            "step_started",
            json!({"step": id, "title": title, "dry_run": self.dry_run()}),
        );
        self.with_journal(|j| {
            j.append(
                "step_started",
                json!({"step": id, "title": title, "params_hash": params_hash,
                       "script_checksum": self.script.checksum}),
            )
        })?;
        self.sync_state_or_warn(true)?;
        self.steps.borrow_mut().push(record);
        Ok(None)
    }

    /// The phase rules of a sharded migration. `Some(counters)` when the step does not run here:
    /// a once-only step in a shard run (left for finalize), or a sharded step in the finalize run
    /// (every shard must have finished it; its counters are the shards' sums).
    fn shard_gate(&self, record: &mut StepRecord, sharded: bool) -> Result<Option<Value>> {
        let (phase, count, root, shown) = {
            let s = self.sharding.borrow();
            (s.phase, s.count, s.root.clone(), s.shown_root.clone())
        };
        let id = record.id.clone();
        match phase {
            None => {
                if !sharded && let Some((i, n)) = self.opts.shard {
                    let mut s = self.sharding.borrow_mut();
                    if !s.warned {
                        s.warned = true;
                        tracing::warn!(target: EV, "step {id} runs once per shard: this is shard {i}/{n} without \
                            --phase; with --phase shards once-only steps are left for one finalize run");
                    }
                }
                Ok(None)
            }
            Some(Phase::Shards) if sharded => Ok(None),
            Some(Phase::Shards) => {
                record.status = StepStatus::Deferred;
                record.started = None;
                tracing::info!(target: EV, "step {id}: once-only, left for the finalize run ({})", record.title);
                output::event(
                    "step_skipped",
                    json!({"step": id, "title": record.title, "reason": "finalize"}),
                );
                Ok(Some(Value::Null))
            }
            Some(Phase::Finalize) => {
                let n = count.unwrap_or(1);
                let rerun = |i: u32| self.shard_rerun_command(i, n);
                if !self.sharding.borrow().checked {
                    shard::check_all_shards(&root, &shown, n, &rerun)?;
                    self.sharding.borrow_mut().checked = true;
                }
                if !sharded {
                    return Ok(None);
                }
                let hash = self.params_hash.borrow().clone();
                let counters = shard::shards_finished_step(&root, n, &id, &hash, &rerun)?;
                record.status = StepStatus::ByShards;
                record.started = None;
                record.counters = counters.clone();
                tracing::info!(target: EV, "step {id}: done by all {n} shards ({})", record.title);
                output::event(
                    "step_skipped",
                    json!({"step": id, "title": record.title, "reason": "done by shards",
                           "counters": counters}),
                );
                Ok(Some(counters))
            }
        }
    }

    /// The command that runs shard `i` of `n` of this procedure (for finalize's refusals).
    pub fn shard_rerun_command(&self, i: u32, n: u32) -> String {
        let s = self.sharding.borrow();
        let mut parts = vec![format!(
            "ferry run {} --phase shards --shard {i}/{n} --state {}",
            super::params::shell_quote(&s.script_arg),
            super::params::shell_quote(&s.shown_root)
        )];
        if self.opts.yes {
            parts.push("--yes".into());
        }
        parts.extend(self.opts.raw.as_cli_args(&|k| self.is_secret(k)));
        parts.join(" ")
    }

    pub fn step_end(&self, id: &str, counters: Value) -> Result<()> {
        let duration = self.finish_record(id, StepStatus::Ok, counters.clone(), None);
        let ms = duration.as_millis() as u64;
        tracing::info!(target: EV, "step {id}: ok in {}", fmt_duration(duration));
        output::event(
            "step_finished",
            json!({"step": id, "status": "ok", "duration_ms": ms, "counters": counters}),
        );
        self.with_journal(|j| {
            j.append(
                "step_finished",
                json!({"step": id, "status": "ok", "duration_ms": ms, "counters": counters,
                       "params_hash": *self.params_hash.borrow(),
                       "script_checksum": self.script.checksum}),
            )
        })?;
        self.sync_state_or_warn(true)
    }

    pub fn step_failed(&self, id: &str, err: &FerryError) {
        let status = if err.kind == ErrorKind::Cancelled {
            StepStatus::Interrupted
        } else {
            StepStatus::Failed
        };
        let duration = self.finish_record(id, status.clone(), Value::Null, Some(err.clone()));
        let event = if status == StepStatus::Interrupted {
            "step_interrupted"
        } else {
            "step_failed"
        };
        let ms = duration.as_millis() as u64;
        output::event(
            event,
            json!({"step": id, "duration_ms": ms, "error": err.to_json()}),
        );
        let _ = self.with_journal(|j| {
            j.append(
                event,
                json!({"step": id, "duration_ms": ms, "error": err.to_json(),
                       "params_hash": *self.params_hash.borrow(),
                       "script_checksum": self.script.checksum}),
            )
        });
        // The step has failed already; a lost lease shows at the end of the run.
        let _ = self.sync_state_or_warn(true);
    }

    /// Saves the state folder to the object store of `--state s3://...` (nothing for local state
    /// and dry runs). `force` is false for checkpoints, which save at most every few seconds.
    pub fn sync_state(&self, force: bool) -> Result<()> {
        if !self.journaling() || self.journal.borrow().is_none() {
            return Ok(());
        }
        self.sharding.borrow().push(force)
    }

    /// As `sync_state`; a failure to save is reported and the run goes on (the end of the run
    /// saves again, and fails when that does), but a lease on the state that another run has
    /// taken over stops the run (kind `conflict`): two runs must not both write one state.
    fn sync_state_or_warn(&self, force: bool) -> Result<()> {
        match self.sync_state(force) {
            Err(e) if e.kind == ErrorKind::Conflict => Err(e),
            Err(e) => {
                tracing::warn!(target: EV, "{}", e.one_line());
                Ok(())
            }
            Ok(()) => Ok(()),
        }
    }

    /// Marks every running step interrupted (Ctrl-C).
    pub fn interrupt_running(&self) {
        let running: Vec<String> = self
            .steps
            .borrow()
            .iter()
            .filter(|s| s.status == StepStatus::Running)
            .map(|s| s.id.clone())
            .collect();
        let err = FerryError::new(ErrorKind::Cancelled, "interrupted");
        for id in running {
            self.step_failed(&id, &err);
        }
    }

    fn finish_record(
        &self,
        id: &str,
        status: StepStatus,
        counters: Value,
        error: Option<FerryError>,
    ) -> Duration {
        let mut steps = self.steps.borrow_mut();
        let Some(rec) = steps.iter_mut().rev().find(|s| s.id == id) else {
            return Duration::ZERO;
        };
        let d = rec.started.map(|t| t.elapsed()).unwrap_or_default();
        rec.duration = Some(d);
        rec.status = status;
        rec.counters = counters;
        rec.error = error;
        d
    }

    pub fn checkpoint_get(&self, step: &str, name: &str) -> Option<Value> {
        self.checkpoint_lookup(step, name, &self.params_hash.borrow().clone())
    }

    /// A checkpoint recorded under any parameters: for progress that stays valid when tuning
    /// parameters (a throttle, a worker count) change between attempts.
    pub fn checkpoint_get_any_params(&self, step: &str, name: &str) -> Option<Value> {
        self.checkpoint_lookup(step, name, "")
    }

    fn checkpoint_lookup(&self, step: &str, name: &str, hash: &str) -> Option<Value> {
        let hash = hash.to_string();
        let only = self.opts.fresh.then_some(self.run_id.as_str());
        if self.journaling() {
            self.with_journal(|j| Ok(j.checkpoint(step, name, &hash, only)))
                .ok()
                .flatten()
                .flatten()
        } else {
            self.read_prior()
                .and_then(|j| j.checkpoint(step, name, &hash, only))
        }
    }

    pub fn checkpoint_set(&self, step: &str, name: &str, value: Value) -> Result<()> {
        let hash = self.params_hash.borrow().clone();
        self.with_journal(|j| {
            j.append(
                "checkpoint",
                json!({"step": step, "name": name, "value": value, "params_hash": hash}),
            )
        })?;
        self.sync_state_or_warn(false)
    }

    pub fn journal_event(&self, event: &str, fields: Value) -> Result<()> {
        self.with_journal(|j| j.append(event, fields))?;
        self.sync_state_or_warn(true)
    }

    /// Appends to the journal only when this run has opened it (a run that failed before its
    /// first step leaves no state dir behind).
    pub fn journal_event_if_open(&self, event: &str, fields: Value) -> Result<()> {
        if let Some(j) = self.journal.borrow_mut().as_mut() {
            j.append(event, fields)?;
        }
        Ok(())
    }

    pub fn is_secret(&self, name: &str) -> bool {
        self.decls
            .borrow()
            .iter()
            .any(|d| d.name == name && d.secret)
    }

    /// The exact command that resumes this run.
    pub fn resume_command(&self) -> String {
        let mut parts = vec![self.opts.resume_base.clone()];
        parts.extend(self.opts.raw.as_cli_args(&|k| self.is_secret(k)));
        parts.join(" ")
    }
}

pub fn fmt_duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 1.0 {
        format!("{}ms", d.as_millis())
    } else if s < 60.0 {
        format!("{s:.1}s")
    } else if s < 3600.0 {
        format!("{}m{:02}s", (s / 60.0) as u64, (s % 60.0) as u64)
    } else {
        format!(
            "{}h{:02}m",
            (s / 3600.0) as u64,
            ((s % 3600.0) / 60.0) as u64
        )
    }
}
