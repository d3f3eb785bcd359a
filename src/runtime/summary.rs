//! The table every run ends with: step, status, duration, counters; then the error and the exact
//! command that resumes.

use serde_json::Value;

use super::context::{RunContext, StepStatus, fmt_duration};
use super::error::{ErrorKind, FerryError};
use super::output::say;

fn counters_text(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut pairs: Vec<(&String, &Value)> = m.iter().collect();
            pairs.sort_by(|a, b| a.0.cmp(b.0));
            pairs
                .into_iter()
                .map(|(k, v)| match v {
                    Value::String(s) => format!("{k}={s}"),
                    Value::Object(_) | Value::Array(_) => format!("{k}={}", v),
                    other => format!("{k}={other}"),
                })
                .collect::<Vec<_>>()
                .join(" ")
        }
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

pub fn render(ctx: &RunContext, error: Option<&FerryError>) -> String {
    let steps = ctx.steps.borrow();
    let mut out = String::new();
    let part = {
        let s = ctx.sharding.borrow();
        match (ctx.opts.shard, s.phase) {
            (Some((i, n)), _) => format!(", shard {i}/{n}"),
            (None, Some(super::shard::Phase::Finalize)) => {
                format!(", finalize of {} shards", s.count.unwrap_or(0))
            }
            _ => String::new(),
        }
    };
    let title = if ctx.dry_run() {
        format!(
            "Summary of {}{part} (dry run, nothing changed)",
            ctx.script.name
        )
    } else {
        format!("Summary of {}{part}", ctx.script.name)
    };
    out.push_str(&format!("\n{title}\n"));
    if steps.is_empty() {
        out.push_str("  (no steps)\n");
    } else {
        let w_id = steps.iter().map(|s| s.id.len()).max().unwrap_or(4).max(4);
        let w_st = steps
            .iter()
            .map(|s| s.status.label(ctx.dry_run()).len())
            .max()
            .unwrap_or(15)
            .max(15);
        out.push_str(&format!(
            "  {:<w_id$}  {:<w_st$}  {:>8}  {}\n",
            "step", "status", "duration", "counters"
        ));
        for s in steps.iter() {
            let status = if s.status == StepStatus::Running {
                "not finished"
            } else {
                s.status.label(ctx.dry_run())
            };
            let dur = s.duration.map(fmt_duration).unwrap_or_else(|| "-".into());
            out.push_str(&format!(
                "  {:<w_id$}  {:<w_st$}  {:>8}  {}\n",
                s.id,
                status,
                dur,
                counters_text(&s.counters)
            ));
        }
    }
    if ctx.dry_run() {
        out.push_str(&format!(
            "  {} change(s) would have been made\n",
            ctx.would_count.get()
        ));
    }
    if let Some(e) = error {
        out.push('\n');
        out.push_str(&describe_error(ctx, e));
    }
    out
}

/// What failed, where, why, and how to resume.
pub fn describe_error(ctx: &RunContext, e: &FerryError) -> String {
    let mut out = String::new();
    let step = e.context_value("step");
    match (e.kind, step) {
        (ErrorKind::Cancelled, Some(s)) => {
            out.push_str(&format!("error: {} during step '{s}'\n", e.message))
        }
        (ErrorKind::Cancelled, None) => out.push_str(&format!("error: {}\n", e.message)),
        (_, Some(s)) => out.push_str(&format!("error: step '{s}' failed: {}\n", e.one_line())),
        (_, None) => out.push_str(&format!("error: {}\n", e.one_line())),
    }
    if let Some(loc) = &e.location
        && !e.message.contains(loc.as_str())
    {
        out.push_str(&format!("  at {loc}\n"));
    }
    if let Some(h) = &e.hint {
        out.push_str(&format!("  hint: {h}\n"));
    }
    if let Some(tb) = &e.traceback
        && tracing::enabled!(tracing::Level::DEBUG)
    {
        out.push_str(&format!("  {}\n", tb.replace('\n', "\n  ")));
    }
    let resumable = !ctx.dry_run()
        && !matches!(e.kind, ErrorKind::Usage)
        && ctx.opts.mode == super::context::Mode::Run
        && !ctx.steps.borrow().is_empty();
    if resumable {
        let any_done = ctx
            .steps
            .borrow()
            .iter()
            .any(|s| matches!(s.status, StepStatus::Ok | StepStatus::Done));
        out.push_str(&format!(
            "  resume with: {}{}\n",
            ctx.resume_command(),
            if any_done {
                "   (completed steps are skipped)"
            } else {
                ""
            }
        ));
    }
    out
}

pub fn print(ctx: &RunContext, error: Option<&FerryError>) {
    say(&render(ctx, error));
}
