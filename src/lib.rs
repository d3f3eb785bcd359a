//! ferry: data migrations as editable Lua runbooks over native async primitives.
//!
//! Layout: `cli` (one file per subcommand), `runtime` (the Lua state, registry, parameters,
//! journal, errors, output), then one folder per primitive family, each with a pure-Rust core
//! and a thin `lua.rs` binding.

pub mod cli;
pub mod codec;
pub mod exec;
pub mod fs;
pub mod http;
pub mod log;
pub mod modules;
pub mod runtime;
pub mod sql;
pub mod store;
pub mod task;
pub mod throttle;
