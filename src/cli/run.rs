//! `ferry run`: resolve the script, gather parameters, run it with a journal, print the summary.

use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::Arc;

use serde_json::json;

use super::RunArgs;
use crate::runtime::context::{Mode, RunContext, RunOptions, ScriptInfo};
use crate::runtime::error::{ErrorKind, FerryError, Result};
use crate::runtime::output::{self, Verbosity};
use crate::runtime::params::{RawParams, shell_quote};
use crate::runtime::remote_state::{self, RemoteState};
use crate::runtime::shard::{self, Phase, Sharding};
use crate::runtime::{self, scripts, summary};

pub fn default_state_dir(name: &str) -> PathBuf {
    PathBuf::from(".ferry").join("state").join(name)
}

/// Validates `--shard I/N` (0 <= I < N).
pub fn parse_shard(s: &str) -> Result<(u32, u32)> {
    let bad = || FerryError::usage(format!("--shard expects I/N with 0 <= I < N, got '{s}'"));
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let i: u32 = i.trim().parse().map_err(|_| bad())?;
    let n: u32 = n.trim().parse().map_err(|_| bad())?;
    if n == 0 || i >= n {
        return Err(bad());
    }
    Ok((i, n))
}

/// This run's place in a sharded migration: its shard, phase and state dirs.
pub fn plan_shards(args: &RunArgs, script: &ScriptInfo) -> Result<Sharding> {
    let flag = args.shard.as_deref().map(parse_shard).transpose()?;
    let phase = args.scale.phase.as_deref().map(Phase::parse).transpose()?;
    let (shard, count) =
        shard::resolve(flag, args.scale.shards, phase, &|k| std::env::var(k).ok())?;
    let given = args
        .state
        .clone()
        .unwrap_or_else(|| default_state_dir(&script.name))
        .to_string_lossy()
        .into_owned();
    let (root, remote) = if remote_state::is_remote(&given) {
        let r = Arc::new(RemoteState::open(&given)?);
        (r.local_root.clone(), Some(r))
    } else {
        (remote_state::local_folder(&given), None)
    };
    Ok(Sharding {
        phase,
        count,
        shown_root: given,
        root,
        shard,
        script_arg: args.name_or_file.clone(),
        remote,
        ..Sharding::default()
    })
}

/// The options, the script and the shard plan of a run (its remote state pulled).
pub fn build_run(args: &RunArgs, mode: Mode) -> Result<(RunOptions, ScriptInfo, Sharding)> {
    let (opts, script, plan) = build_parts(args, mode)?;
    plan.pull()?;
    Ok((opts, script, plan))
}

pub fn build_context(args: &RunArgs, mode: Mode) -> Result<(RunOptions, ScriptInfo)> {
    build_run(args, mode).map(|(o, s, _)| (o, s))
}

fn build_parts(args: &RunArgs, mode: Mode) -> Result<(RunOptions, ScriptInfo, Sharding)> {
    let script = scripts::resolve(&args.name_or_file)?;
    let raw = RawParams::from_sources(&args.params, args.params_file.as_deref())?;
    let plan = plan_shards(args, &script)?;
    let shard = plan.shard;
    let state_dir = plan.state_dir();
    let mut resume = format!(
        "ferry run {} --state {}",
        shell_quote(&args.name_or_file),
        shell_quote(&plan.shown_root)
    );
    if let Some(f) = &args.params_file {
        resume.push_str(&format!(" --params {}", shell_quote(&f.to_string_lossy())));
    }
    if let Some(p) = plan.phase {
        resume.push_str(&format!(" --phase {}", p.label()));
    }
    match (shard, plan.count) {
        (Some((i, n)), _) => resume.push_str(&format!(" --shard {i}/{n}")),
        (None, Some(n)) => resume.push_str(&format!(" --shards {n}")),
        _ => {}
    }
    if args.yes {
        resume.push_str(" --yes");
    }
    Ok((
        RunOptions {
            mode,
            dry_run: args.dry_run,
            yes: args.yes,
            state_dir,
            from_step: args.from_step.clone(),
            fresh: args.fresh,
            raw,
            resume_base: resume,
            quiet: args.quiet,
            shard,
        },
        script,
        plan,
    ))
}

pub fn run(args: RunArgs) -> ExitCode {
    let (opts, script, sharding) = match build_run(&args, Mode::Run) {
        Ok(x) => x,
        Err(e) => return super::fail(&e),
    };
    let verbosity = if args.quiet {
        Verbosity(-1)
    } else {
        Verbosity(args.verbose as i8)
    };
    let mut metrics_at = None;
    if let Some(addr) = &args.metrics {
        match crate::runtime::metrics::bind(addr) {
            Ok(bound) => metrics_at = Some(bound),
            Err(e) => {
                return super::fail(
                    &FerryError::new(
                        ErrorKind::Usage,
                        format!("--metrics {addr}: cannot listen there: {e}"),
                    )
                    .hint("give host:port, e.g. 127.0.0.1:9464 or 0.0.0.0:9464 (port 0 picks a free one)"),
                );
            }
        }
    }
    let ctx = Rc::new(RunContext::new(opts, script));
    *ctx.sharding.borrow_mut() = sharding;
    if let Err(e) = output::init(verbosity, args.log_json.as_deref(), &ctx.run_id) {
        return super::fail(&FerryError::io(
            format!(
                "cannot write --log-json {}",
                args.log_json
                    .as_deref()
                    .unwrap_or_else(|| std::path::Path::new(""))
                    .display()
            ),
            &e,
        ));
    }
    if let Some(bound) = metrics_at {
        tracing::info!(target: output::EV, "metrics at http://{bound}/metrics");
    }
    if let Some(r) = &ctx.sharding.borrow().remote {
        for note in r
            .notes
            .lock()
            .map(|mut n| std::mem::take(&mut *n))
            .unwrap_or_default()
        {
            tracing::warn!("{note}");
        }
    }
    let code = run_context(ctx);
    ExitCode::from(code)
}

/// Runs a prepared context to the end; returns the exit code. Also used by `ferry demo`.
pub fn run_context(ctx: Rc<RunContext>) -> u8 {
    output::event(
        "run_started",
        json!({"procedure": ctx.script.name, "script": ctx.script.display,
               "script_checksum": ctx.script.checksum, "dry_run": ctx.dry_run(),
               "state_dir": ctx.opts.state_dir}),
    );
    let rt = super::tokio_runtime();
    crate::runtime::metrics::start(&rt);
    let local = tokio::task::LocalSet::new();
    let error = local.block_on(&rt, async {
        let lua = match runtime::new_lua(ctx.clone(), crate::modules::modules()) {
            Ok(l) => l,
            Err(e) => return Some(FerryError::from_lua_error(&e)),
        };
        let outcome = runtime::execute(&lua, &ctx).await;
        // Steps still marked running were abandoned by an error outside them.
        outcome.error
    });
    let code = match &error {
        None => 0,
        Some(e) => {
            if e.kind == ErrorKind::Usage && ctx.steps.borrow().is_empty() {
                2
            } else {
                e.kind.exit_code()
            }
        }
    };
    let status = match code {
        0 => "ok",
        130 => "interrupted",
        _ => "failed",
    };
    let _ = ctx.journal_event_if_open("run_finished", json!({"status": status, "exit_code": code}));
    let (code, error) = match ctx.sync_state(true) {
        Err(e) if code == 0 => (e.kind.exit_code(), Some(e)),
        _ => (code, error),
    };
    ctx.sharding.borrow().release();
    let status = if code != 0 && status == "ok" {
        "failed"
    } else {
        status
    };
    output::event(
        "run_finished",
        json!({"status": status, "exit_code": code,
               "error": error.as_ref().map(|e| e.to_json()),
               "steps": ctx.steps.borrow().iter().map(|s| json!({
                   "step": s.id, "status": s.status.label(ctx.dry_run()),
                   "duration_ms": s.duration.map(|d| d.as_millis() as u64),
                   "counters": s.counters})).collect::<Vec<_>>()}),
    );
    match &error {
        Some(e) if e.kind == ErrorKind::Usage && ctx.steps.borrow().is_empty() => {
            let mut text = format!("error: {}", e.message);
            if let Some(h) = &e.hint {
                text.push_str(&format!("\n  hint: {h}"));
            }
            output::say(&text);
        }
        None if ctx.opts.quiet => {}
        _ => summary::print(&ctx, error.as_ref()),
    }
    super::end_runtime(rt, local);
    code
}
