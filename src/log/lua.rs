//! Lua binding of `ferry.log`.

use mlua::{Lua, MultiValue, Table, UserData, UserDataMethods, Value};
use serde_json::json;

use crate::runtime::output::{self, EV};
use crate::runtime::progress::{Progress, Unit};
use crate::runtime::registry::{ClassDoc, FnDoc, ModuleDef, Opt, Param};

pub static MODULE: ModuleDef = ModuleDef {
    name: "log",
    summary: "Log lines (stderr and --log-json) and progress bars for long work.",
    functions: &[
        FnDoc {
            name: "info",
            signature: "ferry.log.info(...)",
            params: &[Param::new("...", "any")],
            options: &[],
            returns: "",
            doc: "Logs its arguments joined by spaces; a table argument is shown as key=value pairs \
                  and kept as `fields` in --log-json with their Lua types (numbers as numbers, \
                  booleans as booleans, a nested table as JSON). Also warn, error, debug.",
            example: Some("ferry.log.info(\"copied\", 3, \"objects\", {bytes = 12})"),
        },
        FnDoc {
            name: "warn",
            signature: "ferry.log.warn(...)",
            params: &[Param::new("...", "any")],
            options: &[],
            returns: "",
            doc: "Logs a warning.",
            example: Some("ferry.log.warn(\"slow server\")"),
        },
        FnDoc {
            name: "error",
            signature: "ferry.log.error(...)",
            params: &[Param::new("...", "any")],
            options: &[],
            returns: "",
            doc: "Logs an error line (does not raise; use error() or ferry.fail to stop).",
            example: Some("ferry.log.error(\"object failed\", {key = \"a/b\"})"),
        },
        FnDoc {
            name: "debug",
            signature: "ferry.log.debug(...)",
            params: &[Param::new("...", "any")],
            options: &[],
            returns: "",
            doc: "Logs a line shown with -v.",
            example: Some("ferry.log.debug(\"detail\")"),
        },
        FnDoc {
            name: "progress",
            signature: "ferry.log.progress{title, total, unit = \"items\"|\"bytes\"} -> p",
            params: &[Param::new("opts", "table")],
            options: &[
                Opt::new("title", "string").doc("what is counted, shown before the bar"),
                Opt::new("total", "integer")
                    .doc("the count when done, if known (p:total sets it later)"),
                Opt::def("unit", "\"items\"|\"bytes\"", "\"items\"")
                    .doc("bytes shows counts and rates as KiB, MiB..."),
            ],
            returns: "ferry.log.Progress",
            doc: "Starts a progress display: a bar with rate and ETA on a terminal, a line every \
                  10 s otherwise (FERRY_PROGRESS_INTERVAL), progress events in --log-json. \
                  Its methods are those of ferry.log.Progress.",
            example: Some(
                "local p = ferry.log.progress{title = \"demo\", total = 2}\np:inc(1)\np:inc(1)\np:finish()",
            ),
        },
    ],
    classes: &[&PROGRESS],
    constants: &[],
    build,
};

/// The handle class of this module, described once for the option checks, `ferry doc`, the LuaLS
/// stubs, `ferry check` and REPL completion.
pub static PROGRESS: ClassDoc = ClassDoc {
    name: "ferry.log.Progress",
    doc: "A progress line from ferry.log.progress.",
    fields: &[],
    methods: &[
        FnDoc {
            name: "inc",
            signature: "p:inc([n])",
            params: &[Param::opt("n", "integer")],
            options: &[],
            returns: "",
            doc: "Adds n (1) to the count.",
            example: Some(
                "local p = ferry.log.progress{title = \"files\", total = 3}\np:inc()\np:inc(2)\nassert(p:done() == 3)\np:finish()",
            ),
        },
        FnDoc {
            name: "set",
            signature: "p:set(n)",
            params: &[Param::new("n", "integer")],
            options: &[],
            returns: "",
            doc: "Sets the count.",
            example: Some(
                "local p = ferry.log.progress{title = \"rows\"}\np:set(500)\nassert(p:done() == 500)\np:finish()",
            ),
        },
        FnDoc {
            name: "total",
            signature: "p:total(n)",
            params: &[Param::new("n", "integer")],
            options: &[],
            returns: "",
            doc: "Sets the total.",
            example: Some(
                "local p = ferry.log.progress{title = \"objects\"}\np:total(10)\np:inc(10)\np:finish()",
            ),
        },
        FnDoc {
            name: "message",
            signature: "p:message(text)",
            params: &[Param::new("text", "string")],
            options: &[],
            returns: "",
            doc: "Sets the text shown after the count.",
            example: Some(
                "local p = ferry.log.progress{title = \"download\", unit = \"bytes\", total = 4096}\np:message(\"seg/index.zip\")\np:inc(4096)\np:finish()",
            ),
        },
        FnDoc {
            name: "finish",
            signature: "p:finish()",
            params: &[],
            options: &[],
            returns: "",
            doc: "Ends the line.",
            example: Some(
                "local p = ferry.log.progress{title = \"batch\", total = 1}\np:inc()\np:finish()",
            ),
        },
        FnDoc {
            name: "done",
            signature: "p:done() -> n",
            params: &[],
            options: &[],
            returns: "integer",
            doc: "The count so far.",
            example: Some(
                "local p = ferry.log.progress{title = \"keys\"}\nfor _ = 1, 5 do p:inc() end\nassert(p:done() == 5)\np:finish()",
            ),
        },
    ],
};

/// A field value for --log-json: Lua's type kept (integers and floats as numbers, booleans,
/// strings; a table as JSON, nested); a float JSON cannot hold (inf, nan) and a function or
/// userdata as its text.
fn field_json(lua: &Lua, v: &Value) -> serde_json::Value {
    match v {
        Value::Nil => serde_json::Value::Null,
        Value::Boolean(b) => json!(b),
        Value::Integer(i) => json!(i),
        Value::Number(n) if n.is_finite() => json!(n),
        Value::String(s) => json!(s.to_string_lossy()),
        Value::Table(_) => crate::runtime::runbook::to_json(lua, v),
        other => json!(
            other
                .to_string()
                .unwrap_or_else(|_| other.type_name().into())
        ),
    }
}

/// A field value in the human line: its text, a table as compact JSON.
fn field_text(lua: &Lua, v: &Value) -> String {
    match v {
        Value::Table(_) => field_json(lua, v).to_string(),
        other => other
            .to_string()
            .unwrap_or_else(|_| other.type_name().into()),
    }
}

fn render(lua: &Lua, args: &MultiValue) -> (String, serde_json::Map<String, serde_json::Value>) {
    let mut parts = Vec::new();
    let mut fields = serde_json::Map::new();
    for v in args.iter() {
        match v {
            Value::Table(t) => {
                let mut kv = Vec::new();
                for (k, val) in t.pairs::<Value, Value>().flatten() {
                    let k = k.to_string().unwrap_or_default();
                    kv.push(format!("{k}={}", field_text(lua, &val)));
                    fields.insert(k, field_json(lua, &val));
                }
                kv.sort();
                parts.push(kv.join(" "));
            }
            other => parts.push(
                other
                    .to_string()
                    .unwrap_or_else(|_| other.type_name().into()),
            ),
        }
    }
    (parts.join(" "), fields)
}

fn logger(lua: &Lua, level: &'static str) -> mlua::Result<mlua::Function> {
    lua.create_function(move |lua, args: MultiValue| {
        let (msg, fields) = render(lua, &args);
        let loc = crate::runtime::lua_error::script_location(lua).unwrap_or_default();
        match level {
            "debug" => tracing::debug!(target: EV, "{msg}"),
            "warn" => tracing::warn!(target: EV, "{msg}"),
            "error" => tracing::error!(target: EV, "{msg}"),
            _ => tracing::info!(target: EV, "{msg}"),
        }
        if output::json_enabled() && (level != "debug" || tracing::enabled!(tracing::Level::DEBUG))
        {
            output::event(
                "log",
                json!({"level": level, "message": msg, "fields": fields, "location": loc}),
            );
        }
        Ok(())
    })
}

struct LuaProgress(Progress);

impl UserData for LuaProgress {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_method("inc", |_, p, n: Option<u64>| {
            p.0.inc(n.unwrap_or(1));
            Ok(())
        });
        m.add_method("set", |_, p, n: u64| {
            p.0.set(n);
            Ok(())
        });
        m.add_method("total", |_, p, n: u64| {
            p.0.set_total(n);
            Ok(())
        });
        m.add_method("message", |_, p, s: String| {
            p.0.set_message(&s);
            Ok(())
        });
        m.add_method("finish", |_, p, ()| {
            p.0.finish();
            Ok(())
        });
        m.add_method("done", |_, p, ()| Ok(p.0.done()));
    }
}

fn build(lua: &Lua) -> mlua::Result<Table> {
    let m = lua.create_table()?;
    for level in ["info", "warn", "error", "debug"] {
        m.set(level, logger(lua, level)?)?;
    }
    m.set(
        "progress",
        lua.create_function(|_, opts: Table| {
            crate::runtime::options::check_documented(&opts, &MODULE, "progress")?;
            let title: String = opts
                .get::<Option<String>>("title")?
                .unwrap_or_else(|| "progress".into());
            let total: Option<u64> = opts.get("total")?;
            let unit = match opts.get::<Option<String>>("unit")?.as_deref() {
                Some("bytes") => Unit::Bytes,
                _ => Unit::Items,
            };
            Ok(LuaProgress(Progress::new(&title, total, unit)))
        })?,
    )?;
    Ok(m)
}
