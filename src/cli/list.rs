//! `ferry list`: one line per bundled procedure.

use crate::runtime::error::Result;
use crate::runtime::scripts;

pub fn list() -> Result<()> {
    let all = scripts::bundled();
    let width = all.iter().map(|b| b.name.len()).max().unwrap_or(0);
    for b in all {
        let (summary, _) = scripts::description(b.source);
        println!("{:<width$}  {summary}", b.name);
    }
    Ok(())
}
