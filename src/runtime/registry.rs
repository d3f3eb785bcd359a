//! The module registry: every Lua module is defined once here, and the same definition builds the
//! Lua binding, `ferry doc`, `docs/api/*.md` and `ferry check`'s list of known names.

use mlua::{Lua, Table};

/// One parameter of a function or method: its name, LuaLS type and whether it may be left out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Param {
    pub name: &'static str,
    /// A LuaLS type: `string`, `integer`, `ferry.store.Store`, `string|integer`...
    pub ty: &'static str,
    pub optional: bool,
    pub doc: &'static str,
}

impl Param {
    /// A required parameter.
    pub const fn new(name: &'static str, ty: &'static str) -> Param {
        Param {
            name,
            ty,
            optional: false,
            doc: "",
        }
    }
    /// A parameter that may be left out (`[, name]` in the signature).
    pub const fn opt(name: &'static str, ty: &'static str) -> Param {
        Param {
            name,
            ty,
            optional: true,
            doc: "",
        }
    }
    pub const fn doc(self, doc: &'static str) -> Param {
        Param { doc, ..self }
    }
}

/// One key of a function's options table. `aws_*` stands for every key with that prefix.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Opt {
    pub key: &'static str,
    /// A LuaLS type (`boolean`, `"csv"|"json"`, `number|string`...).
    pub ty: &'static str,
    /// The default as Lua text (`true`, `64`, `"size"`), when there is one.
    pub default: Option<&'static str>,
    pub doc: &'static str,
    /// The call is refused without it (stubs declare it without `?`, docs say "required").
    pub required: bool,
}

impl Opt {
    pub const fn new(key: &'static str, ty: &'static str) -> Opt {
        Opt {
            key,
            ty,
            default: None,
            doc: "",
            required: false,
        }
    }
    /// An option with a documented default.
    pub const fn def(key: &'static str, ty: &'static str, default: &'static str) -> Opt {
        Opt {
            key,
            ty,
            default: Some(default),
            doc: "",
            required: false,
        }
    }
    pub const fn doc(self, doc: &'static str) -> Opt {
        Opt { doc, ..self }
    }
    /// An option the call cannot go without.
    pub const fn required(self) -> Opt {
        Opt {
            required: true,
            ..self
        }
    }
}

/// One documented Lua function (or handle method) of a module. The typed parts (`params`,
/// `options`, `returns`) are the description the bindings' option checks, the LuaLS stubs,
/// `ferry check` and REPL completion read; `signature` is the line a person reads, and a registry
/// test keeps the two saying the same.
pub struct FnDoc {
    pub name: &'static str,
    /// How it is called, e.g. `run{argv..., timeout, stdin, env, cwd, check}`.
    pub signature: &'static str,
    pub doc: &'static str,
    /// A Lua example that runs in the test suite.
    pub example: Option<&'static str>,
    /// The parameters in order. A table call (`f{...}`) has one, the options table.
    pub params: &'static [Param],
    /// The keys of the options table (the parameter whose type is `table` and that is named
    /// `opts`), every other key is refused.
    pub options: &'static [Opt],
    /// The LuaLS type of what it returns (empty: nothing).
    pub returns: &'static str,
}

/// A handle a binding returns (`ferry.store.open` gives a `ferry.store.Store`): its LuaLS class
/// name and its methods, called as `handle:method(...)`.
pub struct ClassDoc {
    /// `ferry.store.Store`
    pub name: &'static str,
    pub doc: &'static str,
    /// Read-only fields, `(name, LuaLS type)`.
    pub fields: &'static [(&'static str, &'static str)],
    pub methods: &'static [FnDoc],
}

impl ClassDoc {
    pub fn method(&self, name: &str) -> Option<&FnDoc> {
        self.methods.iter().find(|m| m.name == name)
    }
}

impl FnDoc {
    /// The option keys, for the checks.
    pub fn option_keys(&self) -> Vec<&'static str> {
        self.options.iter().map(|o| o.key).collect()
    }
}

/// A value a module holds besides its functions (`ferry.sql.null`).
pub struct ConstDoc {
    pub name: &'static str,
    /// Its LuaLS type.
    pub ty: &'static str,
    pub doc: &'static str,
}

/// A Lua module: `require "ferry.<name>"` and `ferry.<name>`.
pub struct ModuleDef {
    pub name: &'static str,
    pub summary: &'static str,
    pub functions: &'static [FnDoc],
    /// The handles this module's functions return.
    pub classes: &'static [&'static ClassDoc],
    /// Its values that are not functions.
    pub constants: &'static [ConstDoc],
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
