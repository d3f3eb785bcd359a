//! The composition root: every Lua module ferry registers, in documentation order. A new
//! primitive is one line here. The runtime knows only `ModuleDef`s: `runtime::new_lua` is handed
//! this list, so `runtime/` imports none of the primitives (see docs/architecture.md).

use crate::runtime::registry::{ClassDoc, ModuleDef};

static MODULES: &[&ModuleDef] = &[
    &crate::runtime::runbook::MODULE,
    &crate::log::lua::MODULE,
    &crate::task::lua::MODULE,
    &crate::store::lua::MODULE,
    &crate::sql::lua::MODULE,
    &crate::http::lua::MODULE,
    &crate::throttle::lua::MODULE,
    &crate::exec::lua::MODULE,
    &crate::fs::lua::MODULE,
    &crate::codec::json::MODULE,
    &crate::codec::csv::MODULE,
    &crate::codec::ini::MODULE,
    &crate::codec::properties::MODULE,
    &crate::codec::cipher::CIPHER,
    &crate::codec::digest::DIGEST,
    &crate::codec::digest::ZLIB,
    &crate::codec::digest::HEX,
    &crate::codec::digest::BASE64,
    &crate::runtime::state::MODULE,
    &crate::runtime::shard::MODULE,
];

/// The list, for `runtime::new_lua` and the tools that describe the API (doc, check, types, REPL).
pub fn modules() -> &'static [&'static ModuleDef] {
    MODULES
}

/// Finds a module by its name (`store`, `sql`, ... and `runbook` for `ferry.step` and friends).
pub fn find(name: &str) -> Option<&'static ModuleDef> {
    modules().iter().copied().find(|m| m.name == name)
}

/// Every handle class of every module.
pub fn classes() -> impl Iterator<Item = &'static ClassDoc> {
    modules().iter().flat_map(|m| m.classes.iter().copied())
}

/// The class named `name` (`ferry.store.Store`).
pub fn class(name: &str) -> Option<&'static ClassDoc> {
    classes().find(|c| c.name == name)
}
