//! `ferry eject NAME [DIR] [--types [DIR]]`: writes the script and the bundled Lua modules it
//! requires, so `ferry run DIR/NAME.lua` runs the copy (modules beside the script are found
//! first); with `--types`, LuaLS annotations of the API too (`types.rs`).

use std::path::{Path, PathBuf};

use crate::runtime::error::{ErrorKind, FerryError, Result};
use crate::runtime::scripts;

pub fn eject(
    name: Option<&str>,
    dir: Option<&Path>,
    force: bool,
    types: Option<Option<PathBuf>>,
) -> Result<()> {
    if let Some(types_dir) = &types {
        let target = types_dir
            .as_deref()
            .or(if name.is_some() { dir } else { None })
            .unwrap_or(Path::new("."));
        for p in super::types::write(target)? {
            println!("wrote {}", p.display());
        }
    }
    let Some(name) = name else {
        if types.is_some() {
            return Ok(());
        }
        return Err(
            FerryError::usage("ferry eject NAME [DIR]: which bundled procedure?").hint(
                "see `ferry list`; `ferry eject --types DIR` writes only the type annotations",
            ),
        );
    };
    let b = scripts::find_bundled(name).ok_or_else(|| {
        FerryError::usage(format!("no bundled procedure named '{name}'")).hint("see `ferry list`")
    })?;
    let dir = dir.unwrap_or(Path::new("."));
    let mut files = vec![(dir.join(format!("{name}.lua")), b.source)];
    for module in scripts::required_bundled_modules(b.source) {
        if let Some((rel, src)) = scripts::bundled_module(&module) {
            files.push((dir.join(rel), src));
        }
    }
    if !force && let Some((p, _)) = files.iter().find(|(p, _)| p.exists()) {
        return Err(FerryError::new(
            ErrorKind::Conflict,
            format!("{} already exists; not overwriting your edits", p.display()),
        )
        .hint("pass --force to overwrite, or eject into another folder"));
    }
    for (path, src) in &files {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| FerryError::io(format!("creating {}", parent.display()), &e))?;
        }
        std::fs::write(path, src)
            .map_err(|e| FerryError::io(format!("writing {}", path.display()), &e))?;
        println!("wrote {}", path.display());
    }
    println!(
        "edit, then run it with: ferry run {}",
        dir.join(format!("{name}.lua")).display()
    );
    Ok(())
}
