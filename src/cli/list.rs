//! `ferry list`: one line per bundled procedure; `--json`: an array of
//! `{"name", "summary", "description"}` (docs/cli.md).

use serde_json::json;

use crate::runtime::error::Result;
use crate::runtime::scripts;

pub fn list(as_json: bool) -> Result<()> {
    let all = scripts::bundled();
    if as_json {
        let items: Vec<_> = all
            .iter()
            .map(|b| {
                let (summary, description) = scripts::description(b.source);
                json!({"name": b.name, "summary": summary, "description": description})
            })
            .collect();
        println!("{}", serde_json::Value::Array(items));
        return Ok(());
    }
    let width = all.iter().map(|b| b.name.len()).max().unwrap_or(0);
    for b in all {
        let (summary, _) = scripts::description(b.source);
        println!("{:<width$}  {summary}", b.name);
    }
    Ok(())
}
