//! Lua binding of `ferry.task`.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use mlua::{Function, Lua, MultiValue, Table, UserData, UserDataMethods, Value};
use tokio::task::JoinHandle;

use crate::runtime::context::ctx;
use crate::runtime::error::{ErrorKind, FerryError, IntoLuaResult};
use crate::runtime::lua_error::{LuaError, to_ferry_error};
use crate::runtime::output::EV;
use crate::runtime::registry::{ClassDoc, FnDoc, ModuleDef, Opt, Param};
use crate::runtime::runbook::Protect;

pub static MODULE: ModuleDef = ModuleDef {
    name: "task",
    summary: "Sleep, spawn and join, bounded parallel loops, and polling until a condition holds.",
    functions: &[
        FnDoc {
            name: "sleep",
            signature: "ferry.task.sleep(seconds)",
            params: &[Param::new("seconds", "number")],
            options: &[],
            returns: "",
            doc: "Waits without blocking other tasks; Ctrl-C interrupts it.",
            example: Some("ferry.task.sleep(0.01)"),
        },
        FnDoc {
            name: "spawn",
            signature: "ferry.task.spawn(fn, ...) -> handle",
            params: &[Param::new("fn", "function"), Param::new("...", "any")],
            options: &[],
            returns: "ferry.task.Handle",
            doc: "Starts fn(...) as a concurrent task. handle:join() waits and returns its results \
                  (raising its error); handle:cancel() stops it.",
            example: Some(
                "local h = ferry.task.spawn(function(a, b) ferry.task.sleep(0.01) return a + b end, 1, 2)\nassert(h:join() == 3)",
            ),
        },
        FnDoc {
            name: "parallel",
            signature: "ferry.task.parallel(items, {concurrency = 8, fail_fast = true}, fn(item, i)) -> results",
            params: &[
                Param::new("items", "any[]"),
                Param::opt("opts", "table"),
                Param::new("fn", "fun(item: any, i: integer): any"),
            ],
            options: &[
                Opt::def("concurrency", "integer", "8").doc("calls running at once"),
                Opt::def("fail_fast", "boolean", "true").doc("start no new item after an error"),
            ],
            returns: "any[]",
            doc: "Calls fn for every item with at most `concurrency` running at once and returns \
                  the first result of each call, in item order. On an error no new items start \
                  (unless fail_fast = false) and the first error is raised once running calls end.",
            example: Some(
                "local r = ferry.task.parallel({1, 2, 3}, {concurrency = 2}, function(x) return x * 10 end)\nassert(r[1] == 10 and r[3] == 30)",
            ),
        },
        FnDoc {
            name: "poll",
            signature: "ferry.task.poll{check, every = 5, timeout = 600, backoff = 1, max_every, describe, transient}",
            params: &[Param::new("opts", "table")],
            options: &[
                Opt::new("check", "fun(): any, any?")
                    .doc("returns a truthy value when done, or false and what it saw")
                    .required(),
                Opt::def("every", "number|string", "5").doc("seconds between checks, or \"90s\""),
                Opt::def("timeout", "number|string", "600").doc("seconds before a timeout error"),
                Opt::def("backoff", "number", "1").doc("factor by which the wait grows each time"),
                Opt::new("max_every", "number|string")
                    .doc("longest wait between checks, default every or 60s, whichever is more"),
                Opt::new("describe", "string")
                    .doc("what is waited for, in log lines and the error"),
                Opt::new("transient", "fun(err: ferry.Error): boolean")
                    .doc("true for an error to tolerate although it is not retryable"),
            ],
            returns: "any",
            doc: "Calls check() until it returns a truthy value, and returns its results. check may \
                  return false, observed to report what it saw. Errors that are retryable (or for \
                  which transient(err) returns true) are tolerated and retried: a check that \
                  means to stop the wait raises a non-retryable kind (conflict, invalid_input), \
                  not unavailable or timeout, or returns what it saw for the caller to judge. \
                  Durations are \
                  seconds or strings such as \"90s\". On timeout raises a timeout error naming \
                  what it waited for and the last observed state.",
            example: Some(
                "local n = 0\nlocal v = ferry.task.poll{every = 0.01, timeout = 5, describe = \"counter\", check = function()\n  n = n + 1\n  if n >= 3 then return n end\n  return false, n\nend}\nassert(v == 3)",
            ),
        },
    ],
    classes: &[&HANDLE],
    constants: &[],
    build,
};

/// The handle class of this module, described once for the option checks, `ferry doc`, the LuaLS
/// stubs, `ferry check` and REPL completion.
pub static HANDLE: ClassDoc = ClassDoc {
    name: "ferry.task.Handle",
    doc: "A task from ferry.task.spawn.",
    fields: &[],
    methods: &[
        FnDoc {
            name: "join",
            signature: "h:join() -> fn's results",
            params: &[],
            options: &[],
            returns: "any",
            doc: "Waits for the task and returns its results, or raises its error.",
            example: Some(
                "local h = ferry.task.spawn(function() return \"a\", 2 end)\nlocal s, n = h:join()\nassert(s == \"a\" and n == 2)",
            ),
        },
        FnDoc {
            name: "cancel",
            signature: "h:cancel()",
            params: &[],
            options: &[],
            returns: "",
            doc: "Cancels the task.",
            example: Some(
                "local h = ferry.task.spawn(ferry.task.sleep, 60)\nh:cancel()\nlocal ok, err = pcall(h.join, h)\nassert(not ok and err.kind == \"cancelled\")",
            ),
        },
        FnDoc {
            name: "done",
            signature: "h:done() -> boolean",
            params: &[],
            options: &[],
            returns: "boolean",
            doc: "Whether the task has finished.",
            example: Some(
                "local h = ferry.task.spawn(function() return 1 end)\nh:join()\nassert(h:done())",
            ),
        },
    ],
};

fn seconds(v: &Value, what: &str) -> mlua::Result<Option<f64>> {
    Ok(match v {
        Value::Nil => None,
        Value::Integer(i) => Some(*i as f64),
        Value::Number(n) => Some(*n),
        Value::String(s) => Some(
            crate::runtime::params::parse_duration(&s.to_str()?)
                .map_err(|m| FerryError::new(ErrorKind::InvalidInput, format!("{what}: {m}")))?,
        ),
        other => {
            return Err(FerryError::new(
                ErrorKind::InvalidInput,
                format!(
                    "{what}: expected seconds or a duration string, got {}",
                    other.type_name()
                ),
            )
            .into());
        }
    })
}

fn protect_fn(lua: &Lua) -> mlua::Result<Function> {
    Ok(lua
        .app_data_ref::<Protect>()
        .ok_or_else(|| FerryError::new(ErrorKind::Internal, "runtime prelude not loaded"))?
        .0
        .clone())
}

/// Runs `f(args)` as its own coroutine, protected: `Ok(results)` or the structured error.
async fn run_protected(lua: &Lua, f: Function, args: MultiValue) -> Result<MultiValue, FerryError> {
    let protect = protect_fn(lua).map_err(|e| FerryError::from_lua_error(&e))?;
    let thread = lua
        .create_thread(protect)
        .map_err(|e| FerryError::from_lua_error(&e))?;
    let mut call_args = MultiValue::new();
    call_args.push_back(Value::Function(f));
    call_args.extend(args);
    let mut out = thread
        .into_async::<MultiValue>(call_args)
        .map_err(|e| FerryError::from_lua_error(&e))?
        .await
        .map_err(|e| FerryError::from_lua_error(&e))?;
    match out.pop_front() {
        Some(Value::Boolean(true)) => Ok(out),
        _ => Err(to_ferry_error(&out.pop_front().unwrap_or(Value::Nil))),
    }
}

type TaskResult = Result<MultiValue, FerryError>;

struct TaskHandle {
    handle: RefCell<Option<JoinHandle<TaskResult>>>,
    result: RefCell<Option<TaskResult>>,
}

impl UserData for TaskHandle {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_async_method("join", |_, this, ()| async move {
            let pending = this.handle.borrow_mut().take();
            if let Some(h) = pending {
                let r = match h.await {
                    Ok(r) => r,
                    Err(e) if e.is_cancelled() => {
                        Err(FerryError::new(ErrorKind::Cancelled, "task was cancelled"))
                    }
                    Err(e) => Err(FerryError::new(
                        ErrorKind::Internal,
                        format!("task panicked: {e}"),
                    )),
                };
                *this.result.borrow_mut() = Some(r);
            }
            match this.result.borrow().clone() {
                Some(Ok(v)) => Ok(v),
                Some(Err(e)) => Err(e.into()),
                None => Err(FerryError::new(ErrorKind::Internal, "task has no result").into()),
            }
        });
        m.add_method("cancel", |_, this, ()| {
            if let Some(h) = this.handle.borrow().as_ref() {
                h.abort();
            }
            Ok(())
        });
        m.add_method("done", |_, this, ()| {
            Ok(this.result.borrow().is_some()
                || this
                    .handle
                    .borrow()
                    .as_ref()
                    .is_none_or(|h| h.is_finished()))
        });
    }
}

async fn sleep(lua: Lua, secs: Value) -> mlua::Result<()> {
    let s = seconds(&secs, "ferry.task.sleep")?.unwrap_or(0.0);
    let cancel = ctx(&lua).cancel.clone();
    super::sleep(crate::runtime::params::secs_to_duration(s), &cancel)
        .await
        .lua_err()
}

fn spawn(lua: &Lua, (f, args): (Function, MultiValue)) -> mlua::Result<TaskHandle> {
    let lua2 = lua.clone();
    let handle = tokio::task::spawn_local(async move { run_protected(&lua2, f, args).await });
    Ok(TaskHandle {
        handle: RefCell::new(Some(handle)),
        result: RefCell::new(None),
    })
}

async fn parallel(
    lua: Lua,
    (items, opts, f): (Table, Option<Table>, Function),
) -> mlua::Result<Table> {
    if let Some(o) = &opts {
        crate::runtime::options::check_documented(o, &MODULE, "parallel")?;
    }
    let (concurrency, fail_fast) = match &opts {
        Some(o) => (
            o.get::<Option<i64>>("concurrency")?.unwrap_or(8),
            o.get::<Option<bool>>("fail_fast")?.unwrap_or(true),
        ),
        None => (8, true),
    };
    if concurrency < 1 {
        return Err(FerryError::new(
            ErrorKind::InvalidInput,
            format!("ferry.task.parallel: concurrency must be at least 1, got {concurrency}"),
        )
        .into());
    }
    let values: Vec<Value> = items
        .sequence_values::<Value>()
        .collect::<mlua::Result<_>>()?;
    let n = values.len();
    let failed: Rc<RefCell<Option<FerryError>>> = Rc::new(RefCell::new(None));
    let failures = Rc::new(RefCell::new(0usize));
    let results: Vec<(usize, Option<Value>)> =
        futures::stream::iter(values.into_iter().enumerate())
            .map(|(i, item)| {
                let lua = lua.clone();
                let f = f.clone();
                let failed = failed.clone();
                let failures = failures.clone();
                async move {
                    if fail_fast && failed.borrow().is_some() {
                        return (i, None);
                    }
                    let mut args = MultiValue::new();
                    args.push_back(item);
                    args.push_back(Value::Integer(i as i64 + 1));
                    match run_protected(&lua, f, args).await {
                        Ok(mut out) => (i, out.pop_front()),
                        Err(e) => {
                            *failures.borrow_mut() += 1;
                            let mut slot = failed.borrow_mut();
                            if slot.is_none() {
                                *slot = Some(e.with("item", i + 1));
                            }
                            (i, None)
                        }
                    }
                }
            })
            .buffer_unordered(concurrency as usize)
            .collect()
            .await;
    if let Some(mut e) = failed.borrow_mut().take() {
        let count = *failures.borrow();
        if count > 1 {
            e.message = format!("{} ({} of {n} items failed)", e.message, count);
        }
        return Err(mlua::Error::external(e));
    }
    let out = lua.create_table()?;
    for (i, v) in results {
        out.raw_set(i + 1, v.unwrap_or(Value::Nil))?;
    }
    Ok(out)
}

async fn poll(lua: Lua, opts: Table) -> mlua::Result<MultiValue> {
    crate::runtime::options::check_documented(&opts, &MODULE, "poll")?;
    let check: Function = opts.get("check").map_err(|_| {
        FerryError::new(
            ErrorKind::InvalidInput,
            "ferry.task.poll needs check = function",
        )
    })?;
    let every = seconds(&opts.get("every")?, "poll every")?.unwrap_or(5.0);
    let timeout = seconds(&opts.get("timeout")?, "poll timeout")?.unwrap_or(600.0);
    let backoff: f64 = opts.get::<Option<f64>>("backoff")?.unwrap_or(1.0);
    let max_every = seconds(&opts.get("max_every")?, "poll max_every")?.unwrap_or(every.max(60.0));
    let describe: String = opts
        .get::<Option<String>>("describe")?
        .unwrap_or_else(|| "condition".into());
    let transient: Option<Function> = opts.get("transient")?;
    let cancel = ctx(&lua).cancel.clone();
    let started = Instant::now();
    let mut last_seen = String::from("(nothing observed yet)");
    let mut last_report = Instant::now();
    let mut attempt: u32 = 0;
    tracing::info!(target: EV, "waiting for {describe} (every {every}s, up to {timeout}s)");
    loop {
        match run_protected(&lua, check.clone(), MultiValue::new()).await {
            Ok(out) => {
                let first = out.front().cloned().unwrap_or(Value::Nil);
                let done = !matches!(first, Value::Nil | Value::Boolean(false));
                if done {
                    tracing::info!(target: EV, "{describe}: reached after {:.1}s", started.elapsed().as_secs_f64());
                    return Ok(out);
                }
                if let Some(obs) = out.get(1) {
                    last_seen = crate::runtime::runbook::to_json(&lua, obs).to_string();
                }
            }
            Err(e) => {
                if e.kind == ErrorKind::Cancelled {
                    return Err(e.into());
                }
                let tolerated = if let Some(t) = &transient {
                    let ud = lua.create_userdata(LuaError(e.clone()))?;
                    t.call_async::<bool>(ud).await.unwrap_or(false)
                } else {
                    e.retryable
                };
                if !tolerated {
                    return Err(e.with("waiting_for", &describe).into());
                }
                tracing::debug!(target: EV, "{describe}: transient error: {}", e.one_line());
                last_seen = format!("error: {}", e.one_line());
            }
        }
        let elapsed = started.elapsed().as_secs_f64();
        if elapsed >= timeout {
            return Err(FerryError::new(
                ErrorKind::Timeout,
                format!("timed out after {elapsed:.0}s waiting for {describe}; last observed: {last_seen}"),
            )
            .into());
        }
        if last_report.elapsed() >= Duration::from_secs(30) {
            last_report = Instant::now();
            tracing::info!(target: EV, "still waiting for {describe} ({elapsed:.0}s of {timeout:.0}s; last observed: {last_seen})");
        }
        let delay = super::poll_delay(every, backoff, max_every, attempt)
            .min(crate::runtime::params::secs_to_duration(timeout - elapsed));
        attempt += 1;
        super::sleep(delay, &cancel).await.lua_err()?;
    }
}

fn build(lua: &Lua) -> mlua::Result<Table> {
    let m = lua.create_table()?;
    m.set("sleep", lua.create_async_function(sleep)?)?;
    m.set("spawn", lua.create_function(spawn)?)?;
    m.set("parallel", lua.create_async_function(parallel)?)?;
    m.set("poll", lua.create_async_function(poll)?)?;
    Ok(m)
}
