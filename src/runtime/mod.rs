//! The Lua runtime: one Lua state per run on the local thread of a tokio `LocalSet`, with every
//! registered module, the run context, the prelude and the `require` search order installed.

pub mod context;
pub mod error;
pub mod journal;
pub mod lease;
pub mod lua_error;
pub mod metrics;
pub mod options;
pub mod output;
pub mod params;
pub mod progress;
pub mod redact;
pub mod registry;
pub mod remote_state;
pub mod retry;
pub mod runbook;
pub mod scripts;
pub mod shard;
pub mod state;
pub mod summary;

use std::rc::Rc;

use mlua::{Function, Lua, MultiValue, Value};

use context::RunContext;
use error::{ErrorKind, FerryError};
use lua_error::to_ferry_error;
use runbook::Protect;

/// Creates the Lua state for a run with the given modules registered (ferry's whole list is
/// `crate::modules::modules()`, the composition root).
pub fn new_lua(ctx: Rc<RunContext>, modules: &[&registry::ModuleDef]) -> mlua::Result<Lua> {
    let lua = Lua::new();
    let dir = ctx.script.dir.clone();
    lua.set_app_data(ctx);
    registry::install(&lua, modules)?;
    scripts::install_require(&lua, dir.as_deref())?;
    Ok(lua)
}

/// Runs `f` protected (xpcall with ferry's error capture) as a coroutine; `Err` carries the
/// structured error with the script location and traceback.
pub async fn call_protected(
    lua: &Lua,
    f: Function,
    args: MultiValue,
) -> Result<MultiValue, FerryError> {
    let protect = lua
        .app_data_ref::<Protect>()
        .map(|p| p.0.clone())
        .ok_or_else(|| FerryError::new(ErrorKind::Internal, "runtime prelude not loaded"))?;
    let mut call_args = MultiValue::new();
    call_args.push_back(Value::Function(f));
    call_args.extend(args);
    let mut out = protect
        .call_async::<MultiValue>(call_args)
        .await
        .map_err(|e| FerryError::from_lua_error(&e))?;
    match out.pop_front() {
        Some(Value::Boolean(true)) => Ok(out),
        _ => Err(to_ferry_error(&out.pop_front().unwrap_or(Value::Nil))),
    }
}

/// Loads a chunk with the name used in messages (`@./mine.lua` shows as `./mine.lua:LINE`).
pub fn load_chunk(lua: &Lua, source: &str, display: &str) -> Result<Function, FerryError> {
    lua.load(source)
        .set_name(format!("@{display}"))
        .into_function()
        .map_err(|e| {
            let mut fe = FerryError::from_lua_error(&e);
            fe.message = fe.message.trim_start_matches("syntax error: ").to_string();
            fe.message = format!("syntax error: {}", fe.message);
            fe
        })
}

/// How a script run ended.
pub struct Outcome {
    pub error: Option<FerryError>,
}

/// Runs the script of `ctx` to the end, or until Ctrl-C / SIGTERM.
pub async fn execute(lua: &Lua, ctx: &Rc<RunContext>) -> Outcome {
    let chunk = match load_chunk(lua, &ctx.script.source, &ctx.script.display) {
        Ok(f) => f,
        Err(e) => return Outcome { error: Some(e) },
    };
    let run = call_protected(lua, chunk, MultiValue::new());
    tokio::pin!(run);
    let interrupted = async {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => "interrupted (Ctrl-C)",
                        _ = term.recv() => "terminated (SIGTERM)",
                    }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    "interrupted (Ctrl-C)"
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "interrupted (Ctrl-C)"
        }
    };
    tokio::select! {
        r = &mut run => Outcome { error: r.err() },
        why = interrupted => {
            ctx.cancel.cancel();
            ctx.interrupt_running();
            Outcome { error: Some(FerryError::new(ErrorKind::Cancelled, why)) }
        }
    }
}
