//! Lua binding of `ferry.throttle`.

use std::sync::Arc;

use mlua::{Lua, Table, UserData, UserDataMethods, Value};

use super::Limiter;
use crate::runtime::error::{ErrorKind, FerryError};
use crate::runtime::registry::{FnDoc, ModuleDef};

pub static MODULE: ModuleDef = ModuleDef {
    name: "throttle",
    summary: "Token-bucket rate limiters, shareable by tasks and copy operations.",
    functions: &[FnDoc {
        name: "new",
        signature: "ferry.throttle.new{rate, burst} -> limiter",
        doc: "A limiter of `rate` units per second (a number, a size such as \"50MiB\" for \
              bytes/s, or \"off\"), allowing `burst` units at once (default: one second's worth). \
              Methods: l:acquire([n]) waits for n units (default 1), l:set_rate(rate) changes the \
              rate while work runs, l:rate(). Pass it as `throttle =` (bytes/s) or \
              `ops_throttle =` (requests/s) to ferry.store.copy.",
        example: Some(
            "local l = ferry.throttle.new{rate = 1000, burst = 100}\nl:acquire(10)\nl:set_rate(\"1MiB\")\nassert(l:rate() == 1048576)",
        ),
    }],
    build,
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
        Value::String(s) => {
            let s = s.to_str()?.trim().to_string();
            if s == "off" || s == "unlimited" {
                None
            } else {
                let n = crate::runtime::params::parse_size(s.trim_end_matches("/s"))
                    .map_err(|m| FerryError::new(ErrorKind::InvalidInput, format!("rate: {m}")))?;
                Some(n as f64).filter(|r| *r > 0.0)
            }
        }
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

fn build(lua: &Lua) -> mlua::Result<Table> {
    let m = lua.create_table()?;
    m.set(
        "new",
        lua.create_function(|_, opts: Table| {
            let rate = parse_rate(&opts.get::<Value>("rate")?)?;
            let burst = parse_rate(&opts.get::<Value>("burst")?)?;
            Ok(LuaLimiter(Arc::new(Limiter::new(rate, burst))))
        })?,
    )?;
    Ok(m)
}
