//! `ferry help NAME_OR_FILE`: purpose, parameters and steps, found by running the script in
//! describe mode (parameters take their defaults, steps are listed and not run), completed by a
//! scan of the source for steps behind conditions.

use std::rc::Rc;

use crate::runtime::context::{Mode, RunContext, RunOptions, ScriptInfo};
use crate::runtime::error::Result;
use crate::runtime::params::RawParams;
use crate::runtime::{self, scripts};

/// Runs `script` in describe mode and returns its context: the declared parameters (`decls`) and
/// listed steps. Shared by `ferry help` and `ferry kube` (which needs the secret parameters).
pub(super) fn describe(script: &ScriptInfo) -> Rc<RunContext> {
    let ctx = Rc::new(RunContext::new(
        RunOptions {
            mode: Mode::Describe,
            dry_run: true,
            yes: true,
            state_dir: std::env::temp_dir().join("ferry-describe"),
            from_step: None,
            fresh: false,
            raw: RawParams::default(),
            resume_base: String::new(),
            quiet: false,
            shard: None,
        },
        script.clone(),
    ));
    let rt = super::tokio_runtime();
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async {
        if let Ok(lua) = runtime::new_lua(ctx.clone(), crate::modules::modules()) {
            // Errors past the declarations are expected (placeholder values); what was recorded
            // until then is what we show.
            let _ = runtime::execute(&lua, &ctx).await;
        }
    });
    super::end_runtime(rt, local);
    ctx
}

pub fn help(name: Option<&str>) -> Result<()> {
    use clap::CommandFactory;
    let Some(name) = name else {
        let _ = super::Cli::command().print_long_help();
        return Ok(());
    };
    // `ferry help run`: a subcommand's options, as `ferry run --help`. A procedure file named like
    // a subcommand is still reached by its path (`./run.lua`, `dir/run`).
    let mut cli = super::Cli::command();
    if let Some(sub) = cli.find_subcommand_mut(name) {
        let mut sub = sub.clone().bin_name(format!("ferry {}", sub.get_name()));
        let _ = sub.print_long_help();
        return Ok(());
    }
    let script = scripts::resolve(name)?;
    let (summary, description) = scripts::description(&script.source);
    let ctx = describe(&script);

    println!("{} — {}", script.name, summary);
    if !description.is_empty() {
        println!("\n{description}");
    }
    let decls = ctx.decls.borrow();
    println!("\nParameters:");
    if decls.is_empty() {
        println!("  (none)");
    }
    for d in decls.iter() {
        let mut flags = vec![d.ty.name().to_string()];
        if d.required {
            flags.push("required".into());
        }
        if let Some(def) = &d.default {
            flags.push(format!("default {}", def.display()));
        }
        if let Some(c) = &d.choices {
            flags.push(format!("one of {}", c.join("|")));
        }
        if d.secret {
            flags.push("secret".into());
        }
        if let Some(env) = &d.env {
            flags.push(format!("env {env}"));
        }
        println!("  {:<20} {}", d.name, flags.join(", "));
        if !d.doc.is_empty() {
            println!("  {:<20} {}", "", d.doc);
        }
    }
    println!("\nSteps:");
    let mut listed: Vec<(String, String)> = ctx
        .steps
        .borrow()
        .iter()
        .map(|s| (s.id.clone(), s.title.clone()))
        .collect();
    for (id, title) in static_steps(&script.source) {
        if !listed.iter().any(|(i, _)| *i == id) {
            listed.push((id, format!("{title} (conditional)")));
        }
    }
    if listed.is_empty() {
        println!("  (none)");
    }
    for (n, (id, title)) in listed.iter().enumerate() {
        println!("  {:>2}. {:<24} {}", n + 1, id, title);
    }
    println!("\nRun: ferry run {} -p KEY=VALUE ...", script.name);
    Ok(())
}

/// `ferry.step("id", "title", ...)` calls found in the source.
pub fn static_steps(source: &str) -> Vec<(String, String)> {
    let re = regex::Regex::new(r#"ferry\.step\(\s*["']([^"']+)["']\s*,\s*(?:["']([^"']*)["'])?"#)
        .expect("valid regex");
    re.captures_iter(source)
        .map(|c| {
            let id = c[1].to_string();
            let title = c
                .get(2)
                .map(|m| m.as_str().to_string())
                .unwrap_or_else(|| id.clone());
            (id, title)
        })
        .collect()
}
