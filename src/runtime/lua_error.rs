//! How errors look from Lua: a `FerryError` userdata with `kind`, `message`, `retryable`,
//! `context`, `location`, `step` and `traceback` fields, `tostring()` giving the message, and the
//! string methods (`err:match(...)`) applied to that message so older scripts keep working.

use mlua::{Lua, MetaMethod, UserData, UserDataFields, UserDataMethods, Value};

use super::error::{ErrorKind, FerryError};

/// The Lua face of a [`FerryError`].
#[derive(Clone)]
pub struct LuaError(pub FerryError);

impl LuaError {
    fn text(&self) -> String {
        let e = &self.0;
        if e.kind == ErrorKind::Lua {
            e.message.clone()
        } else {
            e.one_line()
        }
    }
}

impl UserData for LuaError {
    fn add_fields<F: UserDataFields<Self>>(f: &mut F) {
        f.add_field_method_get("kind", |_, e| Ok(e.0.kind.as_str()));
        f.add_field_method_get("message", |_, e| Ok(e.0.message.clone()));
        f.add_field_method_get("retryable", |_, e| Ok(e.0.retryable));
        f.add_field_method_get("location", |_, e| Ok(e.0.location.clone()));
        f.add_field_method_get("traceback", |_, e| Ok(e.0.traceback.clone()));
        f.add_field_method_get("hint", |_, e| Ok(e.0.hint.clone()));
        f.add_field_method_get("step", |_, e| {
            Ok(e.0.context_value("step").map(str::to_string))
        });
        f.add_field_method_get("context", |lua, e| {
            let t = lua.create_table()?;
            for (k, v) in &e.0.context {
                t.set(k.as_str(), v.as_str())?;
            }
            Ok(t)
        });
    }

    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_meta_method(MetaMethod::ToString, |_, e, ()| Ok(e.text()));
        m.add_meta_method(MetaMethod::Concat, |lua, e, other: Value| {
            let _ = lua;
            Ok(format!(
                "{}{}",
                e.text(),
                other.to_string().unwrap_or_default()
            ))
        });
        // err:match(...), err:find(...), err:sub(...): string methods on the message.
        m.add_meta_method(MetaMethod::Index, |lua, _e, name: String| {
            let string: mlua::Table = lua.globals().get("string")?;
            let f: Value = string.get(name.as_str())?;
            match f {
                Value::Function(func) => {
                    let wrapped = lua.create_function(
                        move |_, (this, rest): (mlua::AnyUserData, mlua::MultiValue)| {
                            let text = this.borrow::<LuaError>()?.text();
                            func.call::<mlua::MultiValue>((text, rest))
                        },
                    )?;
                    Ok(Value::Function(wrapped))
                }
                _ => Ok(Value::Nil),
            }
        });
    }
}

/// Turns any Lua error value into a `FerryError`.
pub fn to_ferry_error(v: &Value) -> FerryError {
    match v {
        Value::UserData(ud) => {
            if let Ok(e) = ud.borrow::<LuaError>() {
                return e.0.clone();
            }
            FerryError::new(
                ErrorKind::Lua,
                v.to_string().unwrap_or_else(|_| "error".into()),
            )
        }
        Value::Error(e) => FerryError::from_lua_error(e),
        Value::String(s) => FerryError::new(ErrorKind::Lua, s.to_string_lossy()),
        Value::Table(t) => {
            let kind = t
                .get::<String>("kind")
                .ok()
                .and_then(|k| ErrorKind::parse(&k))
                .unwrap_or(ErrorKind::Lua);
            let message = t
                .get::<String>("message")
                .unwrap_or_else(|_| "error (a table without a message)".into());
            FerryError::new(kind, message)
        }
        Value::Nil => FerryError::new(ErrorKind::Lua, "error(nil) raised"),
        other => FerryError::new(
            ErrorKind::Lua,
            other.to_string().unwrap_or_else(|_| "error".into()),
        ),
    }
}

/// `script.lua:LINE` of the innermost Lua frame of a script (not of ferry's own prelude).
pub fn script_location(lua: &Lua) -> Option<String> {
    for level in 0..64 {
        let found = lua.inspect_stack(level, |d| {
            let src = d.source();
            let what = src.what;
            let source = src.source.as_deref().unwrap_or("").to_string();
            let short = src.short_src.as_deref().unwrap_or("").to_string();
            (what, source, short, d.current_line())
        });
        let Some((what, source, short, line)) = found else {
            break;
        };
        if (what == "Lua" || what == "main")
            && source.starts_with('@')
            && !source.starts_with("@=ferry")
            && let Some(line) = line
        {
            return Some(format!("{short}:{line}"));
        }
    }
    None
}

/// The message handler used by ferry's `pcall`, steps and the top level: normalises the error
/// value into a `LuaError`, adding the script location and (when asked) a traceback.
pub fn capture(lua: &Lua, v: Value, with_traceback: bool) -> mlua::Result<Value> {
    let already = matches!(&v, Value::UserData(ud) if ud.is::<LuaError>());
    let mut fe = to_ferry_error(&v);
    if fe.location.is_none() {
        fe.location = script_location(lua);
    }
    if with_traceback && fe.traceback.is_none() {
        fe.traceback = lua.traceback(None, 1).ok().map(|s| s.to_string_lossy());
    }
    if already && fe.location.is_some() && (!with_traceback || fe.traceback.is_some()) {
        return Ok(v);
    }
    Ok(Value::UserData(lua.create_userdata(LuaError(fe))?))
}
