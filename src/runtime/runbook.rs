//! The runbook API on `ferry` itself: `params`, `step`, `confirm`, `dry_run`, `fail`.

use std::io::{BufRead, IsTerminal, Write};
use std::rc::Rc;

use mlua::{Function, Lua, LuaSerdeExt, Table, UserData, UserDataFields, UserDataMethods, Value};
use serde_json::json;

use super::context::ctx;
use super::error::{ErrorKind, FerryError, IntoLuaResult};
use super::lua_error::{LuaError, capture, to_ferry_error};
use super::output::{self, EV};
use super::params::{self, ParamDecl, ParamType, ParamValue, RawValue};
use super::registry::{ClassDoc, FnDoc, ModuleDef, Opt, Param};

pub static MODULE: ModuleDef = ModuleDef {
    name: "runbook",
    summary: "Procedure structure: parameters, journaled steps, manual gates, dry run.",
    functions: &[
        FnDoc {
            name: "params",
            signature: "ferry.params{ {name, type, default, required, doc, secret, choices, env}, ... } -> values",
            params: &[Param::new("decls", "ferry.params.opts[]")],
            options: &[
                Opt::new("name", "string").doc("the parameter's name (-p NAME=VALUE)"),
                Opt::def(
                    "type",
                    "\"string\"|\"integer\"|\"number\"|\"boolean\"|\"path\"|\"url\"|\"list\"|\"duration\"|\"size\"",
                    "\"string\"",
                )
                .doc("how the value is parsed and checked (duration: seconds, size: bytes)"),
                Opt::new("default", "string|number|boolean|(string|number)[]")
                    .doc("the value when none is given, parsed as the type"),
                Opt::new("required", "boolean").doc("the run refuses to start without it"),
                Opt::new("doc", "string").doc("one line for ferry show and ferry help"),
                Opt::new("secret", "boolean").doc("never shown in output, logs or the journal"),
                Opt::new("choices", "string[]").doc("the accepted values"),
                Opt::new("env", "string").doc("an environment variable that gives the value"),
            ],
            returns: "table",
            doc: "Declares the procedure's parameters and returns their validated values. Types: \
                  string, integer, number, boolean, path, url, list, duration (seconds), size \
                  (bytes). Every problem is reported at once and the run exits 2 before any step. \
                  Secret values never appear in output, logs or the journal. Reading an undeclared \
                  name from the returned table raises an error.",
            example: Some(
                "local p = ferry.params{\n  {name = \"workers\", type = \"integer\", default = 4, doc = \"parallel workers\"},\n  {name = \"pause\", type = \"duration\", default = \"1m\", doc = \"wait between batches\"},\n}\nassert(p.workers == 4 and p.pause == 60)",
            ),
        },
        FnDoc {
            name: "step",
            signature: "ferry.step(id, [title,] fn(ctx) [, {always = bool, sharded = bool}]) -> fn's results",
            params: &[
                Param::new("id", "string").doc("the step's name in the journal, --from-step and the summary"),
                Param::opt("title", "string").doc("one line for people, default the id"),
                Param::new("fn", "fun(ctx: ferry.StepCtx): any"),
                Param::opt("opts", "table"),
            ],
            options: &[
                Opt::def("always", "boolean", "false")
                    .doc("run every time, even when completed before (a status query, an action on a remote job)"),
                Opt::def("sharded", "boolean", "false")
                    .doc("sharded work: with --phase shards only such steps run, each shard taking its share"),
            ],
            returns: "any",
            doc: "Runs fn as a journaled step. A re-run skips steps completed with the same \
                  parameters and script (returning the counters they returned); --from-step ID \
                  re-runs from ID; `always = true` runs the step every time (a status query, an \
                  action on a remote job); `sharded = true` marks sharded work (copies): with \
                  --phase shards only such steps run, each shard taking its share, and --phase \
                  finalize runs the other (once-only) steps after checking every shard finished. fn may return a table of counters, shown in the summary. \
                  ctx.id is the step id; ctx:checkpoint(name, value) records progress inside the \
                  step and ctx:checkpoint(name) reads the last value recorded by an earlier attempt.",
            example: Some(
                "local r = ferry.step(\"count\", \"Count things\", function(ctx)\n  return {things = 3}\nend)\nassert(r.things == 3)",
            ),
        },
        FnDoc {
            name: "confirm",
            signature: "ferry.confirm(message) -> true",
            params: &[Param::new("message", "string")],
            options: &[],
            returns: "boolean",
            doc: "A manual gate. Asks on the terminal; --yes answers yes; with no terminal and no \
                  --yes the run stops with exit 3 (it never blocks). A dry run reports the question \
                  and continues.",
            example: Some(
                r#"-- With --yes (as the examples run) or a "y" typed on the terminal it returns true.
assert(ferry.confirm("Drop the old bucket?"))"#,
            ),
        },
        FnDoc {
            name: "dry_run",
            signature: "ferry.dry_run() -> boolean",
            params: &[],
            options: &[],
            returns: "boolean",
            doc: "Whether this is a --dry-run.",
            example: Some("assert(type(ferry.dry_run()) == \"boolean\")"),
        },
        FnDoc {
            name: "fail",
            signature: "ferry.fail(kind, message [, context])",
            params: &[
                Param::new("kind", "string").doc("one of the kinds below (ferry.Error's kind)"),
                Param::new("message", "string"),
                Param::opt("context", "table"),
            ],
            options: &[],
            returns: "",
            doc: "Raises a structured error: kind is one of usage, confirm, not_found, auth, \
                  invalid_input, conflict, unavailable, timeout, io, exec, lua, internal. context \
                  fields are shown with the error; a `hint` field becomes its hint (what to do).",
            example: Some(
                "local ok, err = pcall(ferry.fail, \"not_found\", \"no segment\", {key = \"a/b\"})\nassert(not ok and err.kind == \"not_found\" and err.context.key == \"a/b\")",
            ),
        },
    ],
    classes: &[&STEP_CTX, &ERROR],
    constants: &[],
    build,
};

/// The handle class of this module, described once for the option checks, `ferry doc`, the LuaLS
/// stubs, `ferry check` and REPL completion.
pub static STEP_CTX: ClassDoc = ClassDoc {
    name: "ferry.StepCtx",
    doc: "The ctx a ferry.step function receives.",
    fields: &[("id", "string")],
    methods: &[FnDoc {
        name: "checkpoint",
        signature: "ctx:checkpoint(name [, value]) -> value",
        params: &[Param::new("name", "string"), Param::opt("value", "any")],
        options: &[],
        returns: "any",
        doc: "With a value, records progress inside the step; without, reads the last value recorded by an earlier attempt.",
        example: Some(
            "ferry.step(\"load\", \"Load the batches\", function(ctx)\n  local done = ctx:checkpoint(\"batches\") or 0\n  for i = done + 1, 3 do\n    -- ... load batch i ...\n    ctx:checkpoint(\"batches\", i)\n  end\n  assert(ctx:checkpoint(\"batches\") == 3 and ctx.id == \"load\")\nend)",
        ),
    }],
};

/// The structured error every primitive raises (and `ferry.fail` makes): what `pcall` gives back.
pub static ERROR: ClassDoc = ClassDoc {
    name: "ferry.Error",
    doc: "A structured error, as pcall returns it: kind, message, whether retrying may help, \
          what to do next (hint) and the context (object, row, step...). It prints as one line \
          and string methods (err:find, err:match) work on its message.",
    fields: &[
        (
            "kind",
            "\"usage\"|\"confirm\"|\"not_found\"|\"auth\"|\"invalid_input\"|\"conflict\"|\"unavailable\"|\"timeout\"|\"io\"|\"exec\"|\"lua\"|\"internal\"|\"cancelled\"",
        ),
        ("message", "string"),
        ("retryable", "boolean"),
        ("hint", "string?"),
        ("step", "string?"),
        ("location", "string?"),
        ("traceback", "string?"),
        ("context", "table<string, string>"),
    ],
    methods: &[],
};

/// `ferry.task` and friends run Lua functions protected through this prelude function.
pub struct Protect(pub Function);

fn build(lua: &Lua) -> mlua::Result<Table> {
    let rt = lua.create_table()?;
    // ferry.step is written in Lua (prelude.lua); its options are checked here.
    rt.set(
        "check_step_options",
        lua.create_function(|_, opts: Table| {
            crate::runtime::options::check_documented(&opts, &MODULE, "step")
        })?,
    )?;
    rt.set(
        "capture",
        lua.create_function(|lua, v: Value| capture(lua, v, true))?,
    )?;
    rt.set(
        "normalize",
        lua.create_function(|lua, v: Value| capture(lua, v, false))?,
    )?;
    rt.set(
        "step_begin",
        lua.create_function(
            |lua, (id, title, always, sharded): (String, String, bool, Option<bool>)| {
                let c = ctx(lua);
                match c
                    .step_begin(&id, &title, always, sharded.unwrap_or(false))
                    .lua_err()?
                {
                    Some(counters) => Ok((true, lua.to_value(&counters)?)),
                    None => Ok((false, Value::UserData(lua.create_userdata(StepCtx { id })?))),
                }
            },
        )?,
    )?;
    rt.set(
        "step_end",
        lua.create_function(|lua, (id, result): (String, Value)| {
            let counters = to_json(lua, &result);
            ctx(lua).step_end(&id, counters).lua_err()
        })?,
    )?;
    rt.set(
        "step_failed",
        lua.create_function(|lua, (id, err): (String, Value)| {
            let mut fe = to_ferry_error(&err);
            if fe.context_value("step").is_none() {
                fe.context.insert(0, ("step".into(), id.clone()));
            }
            ctx(lua).step_failed(&id, &fe);
            lua.create_userdata(LuaError(fe))
        })?,
    )?;
    let prelude: Table = lua
        .load(include_str!("prelude.lua"))
        .set_name("=ferry/prelude.lua")
        .call(rt)?;
    let protect: Function = prelude.get("protect")?;
    lua.set_app_data(Protect(protect));

    let m = lua.create_table()?;
    m.set("step", prelude.get::<Function>("step")?)?;
    m.set("params", lua.create_function(declare_params)?)?;
    m.set("confirm", lua.create_async_function(confirm)?)?;
    m.set(
        "dry_run",
        lua.create_function(|lua, ()| Ok(ctx(lua).dry_run()))?,
    )?;
    m.set(
        "fail",
        lua.create_function(
            |_, (kind, message, context): (String, String, Option<Table>)| {
                let k = ErrorKind::parse(&kind).ok_or_else(|| {
                    FerryError::new(
                        ErrorKind::InvalidInput,
                        format!("ferry.fail: unknown error kind '{kind}'"),
                    )
                })?;
                let mut e = FerryError::new(k, message);
                if let Some(t) = context {
                    for pair in t.pairs::<String, Value>() {
                        let (key, v) = pair?;
                        if key == "hint" {
                            e = e.hint(v.to_string()?);
                        } else {
                            e = e.with(key, v.to_string()?);
                        }
                    }
                }
                Err::<(), _>(e.into())
            },
        )?,
    )?;
    Ok(m)
}

/// Lua value → JSON for counters and checkpoints (functions and userdata become strings).
pub fn to_json(lua: &Lua, v: &Value) -> serde_json::Value {
    let opts = mlua::serde::DeserializeOptions::new()
        .deny_unsupported_types(false)
        .deny_recursive_tables(false);
    lua.from_value_with::<serde_json::Value>(v.clone(), opts)
        .unwrap_or_else(|_| json!(v.to_string().unwrap_or_default()))
}

struct StepCtx {
    id: String,
}

impl UserData for StepCtx {
    fn add_fields<F: UserDataFields<Self>>(f: &mut F) {
        f.add_field_method_get("id", |_, s| Ok(s.id.clone()));
    }
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_method(
            "checkpoint",
            |lua, s, (name, value): (String, Option<Value>)| {
                let c = ctx(lua);
                match value {
                    None | Some(Value::Nil) => match c.checkpoint_get(&s.id, &name) {
                        Some(v) => lua.to_value(&v),
                        None => Ok(Value::Nil),
                    },
                    Some(v) => {
                        c.checkpoint_set(&s.id, &name, to_json(lua, &v)).lua_err()?;
                        Ok(Value::Nil)
                    }
                }
            },
        );
    }
}

fn parse_decl(lua: &Lua, v: Value, key: Option<String>) -> mlua::Result<ParamDecl> {
    let t = match v {
        Value::Table(t) => t,
        other => {
            return Err(FerryError::new(
                ErrorKind::InvalidInput,
                format!(
                    "ferry.params: each parameter is a table, got {}",
                    other.type_name()
                ),
            )
            .into());
        }
    };
    let name: String = match key {
        Some(k) => k,
        None => t
            .get::<Option<String>>("name")?
            .or(t.get::<Option<String>>(1)?)
            .ok_or_else(|| {
                FerryError::new(
                    ErrorKind::InvalidInput,
                    "ferry.params: a parameter has no name",
                )
            })?,
    };
    let bad = |m: String| -> mlua::Error {
        FerryError::new(
            ErrorKind::InvalidInput,
            format!("ferry.params '{name}': {m}"),
        )
        .into()
    };
    // Each parameter's keys are the typed options of `ferry.params` (the keys of one declaration).
    crate::runtime::options::check_keys(
        &t,
        &crate::runtime::options::documented(&MODULE, "params"),
        &format!("ferry.params '{name}'"),
    )?;
    let ty_name: String = t
        .get::<Option<String>>("type")?
        .or(t.get::<Option<String>>(2)?)
        .unwrap_or_else(|| "string".into());
    let ty = ParamType::parse(&ty_name).ok_or_else(|| bad(format!("unknown type '{ty_name}'")))?;
    let default = match t.get::<Value>("default")? {
        Value::Nil => None,
        Value::Table(list) => Some(RawValue::List(
            list.sequence_values::<Value>()
                .map(|x| x.and_then(|x| x.to_string()))
                .collect::<mlua::Result<Vec<_>>>()?,
        )),
        other => Some(RawValue::Text(other.to_string()?)),
    };
    let choices = match t.get::<Option<Table>>("choices")? {
        None => None,
        Some(c) => Some(
            c.sequence_values::<String>()
                .collect::<mlua::Result<Vec<_>>>()?,
        ),
    };
    let decl = ParamDecl {
        name: name.clone(),
        ty,
        default,
        required: t.get::<Option<bool>>("required")?.unwrap_or(false),
        doc: t.get::<Option<String>>("doc")?.unwrap_or_default(),
        secret: t.get::<Option<bool>>("secret")?.unwrap_or(false),
        choices,
        env: t.get::<Option<String>>("env")?,
    };
    if let Some(d) = &decl.default {
        params::parse_value(&decl, d).map_err(|m| bad(format!("bad default: {m}")))?;
    }
    let _ = lua;
    Ok(decl)
}

fn declare_params(lua: &Lua, spec: Table) -> mlua::Result<Table> {
    let c = ctx(lua);
    if c.params_declared.get() {
        return Err(FerryError::new(
            ErrorKind::InvalidInput,
            "ferry.params is called more than once; declare every parameter in one call",
        )
        .into());
    }
    let mut decls = Vec::new();
    let len = spec.raw_len();
    if len > 0 {
        for v in spec.sequence_values::<Value>() {
            decls.push(parse_decl(lua, v?, None)?);
        }
    } else {
        let mut keyed: Vec<(String, Value)> = spec
            .pairs::<String, Value>()
            .collect::<mlua::Result<Vec<_>>>()?;
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        for (k, v) in keyed {
            decls.push(parse_decl(lua, v, Some(k))?);
        }
    }
    let values = if c.describing() {
        decls
            .iter()
            .map(|d| {
                let v = d
                    .default
                    .as_ref()
                    .and_then(|raw| params::parse_value(d, raw).ok())
                    .unwrap_or_else(|| placeholder(&d.ty));
                (d.name.clone(), v)
            })
            .collect()
    } else {
        params::resolve(&decls, &c.opts.raw)
            .map_err(|e| {
                let shown = if c.script.bundled {
                    c.script.name.clone()
                } else {
                    c.script.display.clone()
                };
                e.hint(format!("see the parameters with: ferry help {shown}"))
            })
            .lua_err()?
            .values
    };
    *c.params_hash.borrow_mut() = params::params_hash(&decls, &values);
    c.params_declared.set(true);
    for d in &decls {
        let shown = match values.get(&d.name) {
            None => "(unset)".to_string(),
            Some(_) if d.secret => super::redact::MASK.to_string(),
            Some(v) => v.canonical(),
        };
        tracing::debug!(target: EV, "parameter {} = {}", d.name, shown);
    }
    *c.decls.borrow_mut() = decls;
    *c.values.borrow_mut() = values.clone();

    let out = lua.create_table()?;
    for (k, v) in values {
        out.set(k, param_to_lua(lua, &v)?)?;
    }
    let names: Vec<String> = c.decls.borrow().iter().map(|d| d.name.clone()).collect();
    let mt = lua.create_table()?;
    mt.set(
        "__index",
        lua.create_function(move |_, (_t, k): (Table, Value)| {
            let key = k.to_string()?;
            if names.contains(&key) {
                Ok(Value::Nil)
            } else {
                Err(FerryError::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "parameter '{key}' is not declared in ferry.params (declared: {})",
                        names.join(", ")
                    ),
                )
                .into())
            }
        })?,
    )?;
    out.set_metatable(Some(mt))?;
    output::event(
        "params",
        json!({"names": c.decls.borrow().iter().map(|d| d.name.clone()).collect::<Vec<_>>()}),
    );
    Ok(out)
}

fn placeholder(ty: &ParamType) -> ParamValue {
    match ty {
        ParamType::Integer | ParamType::Size => ParamValue::Int(0),
        ParamType::Number | ParamType::Duration => ParamValue::Num(0.0),
        ParamType::Boolean => ParamValue::Bool(false),
        ParamType::List => ParamValue::List(Vec::new()),
        _ => ParamValue::Str(String::new()),
    }
}

pub fn param_to_lua(lua: &Lua, v: &ParamValue) -> mlua::Result<Value> {
    Ok(match v {
        ParamValue::Str(s) => Value::String(lua.create_string(s)?),
        ParamValue::Int(i) => Value::Integer(*i),
        ParamValue::Num(n) => Value::Number(*n),
        ParamValue::Bool(b) => Value::Boolean(*b),
        ParamValue::List(items) => {
            let t = lua.create_sequence_from(items.iter().cloned())?;
            Value::Table(t)
        }
    })
}

async fn confirm(lua: Lua, message: String) -> mlua::Result<bool> {
    let c: Rc<_> = ctx(&lua);
    if c.describing() {
        return Ok(true);
    }
    if c.dry_run() {
        c.would_count.set(c.would_count.get() + 1);
        tracing::info!(target: EV, "would ask for confirmation: {message}");
        output::event("confirm", json!({"message": message, "answer": "dry-run"}));
        return Ok(true);
    }
    if c.opts.yes {
        tracing::info!(target: EV, "confirmed by --yes: {message}");
        output::event(
            "confirm",
            json!({"message": message, "answer": "yes", "by": "--yes"}),
        );
        c.journal_event("confirmed", json!({"message": message, "by": "--yes"}))
            .lua_err()?;
        return Ok(true);
    }
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    if !interactive {
        output::event(
            "confirm",
            json!({"message": message, "answer": "unanswerable"}),
        );
        return Err(FerryError::new(
            ErrorKind::Confirm,
            format!("confirmation needed and there is no terminal to ask: {message}"),
        )
        .hint("run on a terminal, or re-run with --yes once the condition holds")
        .into());
    }
    let prompt = format!("\n{message}\nProceed? [y/N] ");
    let answer = tokio::select! {
        a = tokio::task::spawn_blocking(move || {
            crate::runtime::progress::print_above(&prompt);
            let _ = std::io::stderr().flush();
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line).map(|_| line)
        }) => a,
        _ = c.cancel.cancelled() => {
            return Err(FerryError::new(ErrorKind::Cancelled, "interrupted while waiting for confirmation").into());
        }
    };
    let line = answer
        .map_err(|e| FerryError::new(ErrorKind::Internal, e.to_string()))?
        .map_err(|e| FerryError::io("reading the answer", &e))?;
    let yes = matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes");
    output::event(
        "confirm",
        json!({"message": message, "answer": if yes { "yes" } else { "no" }}),
    );
    if !yes {
        return Err(FerryError::new(ErrorKind::Confirm, format!("declined: {message}")).into());
    }
    c.journal_event("confirmed", json!({"message": message, "by": "terminal"}))
        .lua_err()?;
    Ok(true)
}
