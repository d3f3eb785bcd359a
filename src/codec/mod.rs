//! Config and data formats scripts read and write: JSON, CSV, INI (Seafile), Java properties
//! (Druid, StarRocks). Each file holds the pure-Rust codec, its Lua binding and its tests.

pub mod cipher;
pub mod csv;
pub mod digest;
pub mod ini;
pub mod json;
#[cfg(test)]
pub(crate) mod mutate;
pub mod properties;

use crate::runtime::error::{ErrorKind, FerryError};

pub(crate) fn decode_error(format: &str, msg: impl std::fmt::Display) -> mlua::Error {
    FerryError::new(ErrorKind::InvalidInput, format!("{format}: {msg}")).into()
}
