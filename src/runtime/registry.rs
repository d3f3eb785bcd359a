//! The module registry: every Lua module is defined once here, and the same definition builds the
//! Lua binding, `ferry doc`, `docs/api/*.md` and `ferry check`'s list of known names.

use mlua::{Lua, Table};

/// One documented Lua function (or method) of a module.
pub struct FnDoc {
    pub name: &'static str,
    /// How it is called, e.g. `run{argv..., timeout, stdin, env, cwd, check}`.
    pub signature: &'static str,
    pub doc: &'static str,
    /// A Lua example that runs in the test suite.
    pub example: Option<&'static str>,
}

/// A Lua module: `require "ferry.<name>"` and `ferry.<name>`.
pub struct ModuleDef {
    pub name: &'static str,
    pub summary: &'static str,
    pub functions: &'static [FnDoc],
    /// Builds the module table. Called once per Lua state.
    pub build: fn(&Lua) -> mlua::Result<Table>,
}

/// Installs every module into `ferry` and `package.preload`. The runbook module's functions live
/// directly on `ferry` (`ferry.step`, `ferry.params`...); the others are `ferry.<name>`.
pub fn install(lua: &Lua, modules: &[&ModuleDef]) -> mlua::Result<Table> {
    let ferry = lua.create_table()?;
    let preload: Table = lua
        .globals()
        .get::<Table>("package")?
        .get::<Table>("preload")?;
    for module in modules {
        let table = (module.build)(lua)?;
        if module.name == "runbook" {
            for pair in table.pairs::<mlua::Value, mlua::Value>() {
                let (k, v) = pair?;
                ferry.set(k, v)?;
            }
        } else {
            ferry.set(module.name, table.clone())?;
        }
        let loader = lua.create_function(move |_, ()| Ok(table.clone()))?;
        preload.set(format!("ferry.{}", module.name), loader)?;
    }
    let ferry_loader = {
        let ferry = ferry.clone();
        lua.create_function(move |_, ()| Ok(ferry.clone()))?
    };
    preload.set("ferry", ferry_loader)?;
    lua.globals().set("ferry", ferry.clone())?;
    Ok(ferry)
}

/// Helper for module builders: a table with the given async or sync functions set.
pub fn module_table(lua: &Lua) -> mlua::Result<Table> {
    lua.create_table()
}
