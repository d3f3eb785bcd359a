//! Lua binding of `ferry.throttle`.

use std::sync::Arc;

use mlua::{Lua, Table, UserData, UserDataMethods, Value};

use super::Limiter;
use crate::runtime::error::{ErrorKind, FerryError, IntoLuaResult};
use crate::runtime::registry::{ClassDoc, FnDoc, ModuleDef, Opt, Param};

pub static MODULE: ModuleDef = ModuleDef {
    name: "throttle",
    summary: "Token-bucket rate limiters, shareable by tasks and copy operations.",
    functions: &[FnDoc {
        name: "new",
        signature: "ferry.throttle.new{rate, burst} -> limiter",
        params: &[Param::new("opts", "table")],
        options: &[
            Opt::new("rate", "number|string|[string, number|string][]")
                .doc("units/s: a number, a size such as \"50MiB\", \"off\", or a daily timetable"),
            Opt::new("burst", "number|string")
                .doc("units taken at once, default one second's worth"),
        ],
        returns: "ferry.throttle.Limiter",
        doc: "A limiter of `rate` units per second. A timetable, like rclone's --bwlimit, \
              is {{\"08:00\", \"10MiB\"}, {\"23:00\", \"off\"}} or \
              \"08:00,512k 12:00,10M 23:00,off\". Pass it as `throttle =` (bytes/s) or \
              `ops_throttle =` (requests/s) to ferry.store.copy; its methods are those of \
              ferry.throttle.Limiter.",
        example: Some(
            "local l = ferry.throttle.new{rate = 1000, burst = 100}\nl:acquire(10)\nl:set_rate(\"1MiB\")\nassert(l:rate() == 1048576)\nlocal night = ferry.throttle.new{rate = \"00:00,1GiB 08:00,10MiB 23:00,off\"}\nnight:acquire(1)",
        ),
    }],
    classes: &[&LIMITER],
    constants: &[],
    build,
};

/// The handle class of this module, described once for the option checks, `ferry doc`, the LuaLS
/// stubs, `ferry check` and REPL completion.
pub static LIMITER: ClassDoc = ClassDoc {
    name: "ferry.throttle.Limiter",
    doc: "A token bucket from ferry.throttle.new.",
    fields: &[],
    methods: &[
        FnDoc {
            name: "acquire",
            signature: "l:acquire([n])",
            params: &[Param::opt("n", "integer")],
            options: &[],
            returns: "",
            doc: "Waits until n (1) tokens are available and takes them.",
            example: Some(
                "local l = ferry.throttle.new{rate = 1000, burst = 100}\nl:acquire()\nl:acquire(50)",
            ),
        },
        FnDoc {
            name: "set_rate",
            signature: "l:set_rate(rate)",
            params: &[Param::new("rate", "number|string")],
            options: &[],
            returns: "",
            doc: "Changes the rate (a number per second or a size such as \"50MiB\") while tasks wait.",
            example: Some(
                "local l = ferry.throttle.new{rate = \"10MiB\"}\nl:set_rate(\"1MiB\")\nassert(l:rate() == 1048576)\nl:set_rate(\"off\")\nassert(l:rate() == nil)",
            ),
        },
        FnDoc {
            name: "rate",
            signature: "l:rate() -> number",
            params: &[],
            options: &[],
            returns: "number?",
            doc: "The current rate, nil when unlimited.",
            example: Some("local l = ferry.throttle.new{rate = 250}\nassert(l:rate() == 250)"),
        },
    ],
};

/// The Lua face of a shared limiter.
#[derive(Clone)]
pub struct LuaLimiter(pub Arc<Limiter>);

impl UserData for LuaLimiter {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_async_method("acquire", |_, this, n: Option<u64>| async move {
            this.0.acquire(n.unwrap_or(1)).await;
            Ok(())
        });
        m.add_method("set_rate", |_, this, rate: Value| {
            this.0.set_rate(parse_rate(&rate)?);
            Ok(())
        });
        m.add_method("rate", |_, this, ()| Ok(this.0.rate()));
    }
}

/// A rate: a number of units/s, a size string ("50MiB" = bytes/s), or "off"/0/nil for unlimited.
pub fn parse_rate(v: &Value) -> mlua::Result<Option<f64>> {
    Ok(match v {
        Value::Nil => None,
        Value::Integer(i) => Some(*i as f64).filter(|r| *r > 0.0),
        Value::Number(n) => Some(*n).filter(|r| *r > 0.0),
        Value::String(s) => super::timetable::parse_rate_text(&s.to_str()?).lua_err()?,
        other => {
            return Err(FerryError::new(
                ErrorKind::InvalidInput,
                format!(
                    "rate: expected a number or a size string, got {}",
                    other.type_name()
                ),
            )
            .into());
        }
    })
}

/// Accepts a limiter userdata, or a rate (a new limiter) for `throttle =` options.
pub fn limiter_from(v: &Value) -> mlua::Result<Option<Arc<Limiter>>> {
    match v {
        Value::Nil => Ok(None),
        Value::UserData(ud) => Ok(Some(ud.borrow::<LuaLimiter>()?.0.clone())),
        other => Ok(parse_rate(other)?.map(|r| Arc::new(Limiter::new(Some(r), None)))),
    }
}

/// A timetable: `{{"08:00", "10MiB"}, {"23:00", "off"}}` or `"08:00,512k 12:00,10M 23:00,off"`.
pub fn parse_timetable(v: &Value) -> mlua::Result<Option<super::Timetable>> {
    match v {
        Value::Table(t) if t.raw_len() > 0 => {
            let mut pairs = Vec::new();
            for e in t.sequence_values::<Table>() {
                let e = e?;
                pairs.push((e.get::<String>(1)?, parse_rate(&e.get(2)?)?));
            }
            Ok(Some(super::Timetable::from_entries(pairs).lua_err()?))
        }
        Value::String(s) if s.to_str()?.contains(':') => {
            Ok(Some(super::Timetable::parse(&s.to_str()?).lua_err()?))
        }
        _ => Ok(None),
    }
}

fn build(lua: &Lua) -> mlua::Result<Table> {
    let m = lua.create_table()?;
    m.set(
        "new",
        lua.create_function(|_, opts: Table| {
            crate::runtime::options::check_documented(&opts, &MODULE, "new")?;
            let rate_v = opts.get::<Value>("rate")?;
            let burst = parse_rate(&opts.get::<Value>("burst")?)?;
            if let Some(tt) = parse_timetable(&rate_v)? {
                let (now, _) = tt.at(chrono::Local::now().time());
                let limiter = Arc::new(Limiter::new(now, burst));
                tt.drive(Arc::downgrade(&limiter));
                return Ok(LuaLimiter(limiter));
            }
            let rate = parse_rate(&rate_v)?;
            Ok(LuaLimiter(Arc::new(Limiter::new(rate, burst))))
        })?,
    )?;
    Ok(m)
}
