//! `ferry show NAME`: the bundled script's source.

use crate::runtime::error::{FerryError, Result};
use crate::runtime::scripts;

pub fn show(name: &str) -> Result<()> {
    let b = scripts::find_bundled(name).ok_or_else(|| {
        FerryError::usage(format!("no bundled procedure named '{name}'")).hint("see `ferry list`")
    })?;
    print!("{}", b.source);
    Ok(())
}
