//! `ferry demo`: a self-contained end-to-end run of a bundled procedure on generated local data.
//! Today that is the `tree-copy` example; it runs twice to show that a re-run skips finished
//! steps.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::rc::Rc;

use super::RunArgs;
use crate::runtime::context::{Mode, RunContext};
use crate::runtime::error::FerryError;
use crate::runtime::output::{self, Verbosity, say};

/// Deterministic pseudo-random bytes (xorshift), so the demo data is the same on every machine.
fn fill(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x & 0xff) as u8
        })
        .collect()
}

fn generate(source: &Path) -> std::io::Result<(usize, u64)> {
    let mut files = 0;
    let mut bytes = 0u64;
    for dir in 0..8u64 {
        let d = source.join(format!("dir-{dir:02}"));
        std::fs::create_dir_all(&d)?;
        for f in 0..25u64 {
            let len = 512 + ((dir * 31 + f * 17) % 64) as usize * 128;
            std::fs::write(
                d.join(format!("file-{f:03}.bin")),
                fill(dir * 1000 + f, len),
            )?;
            files += 1;
            bytes += len as u64;
        }
    }
    Ok((files, bytes))
}

pub fn demo(dir: Option<&Path>) -> ExitCode {
    let root: PathBuf = match dir {
        Some(d) => d.to_path_buf(),
        None => std::env::temp_dir().join(format!("ferry-demo-{}", std::process::id())),
    };
    let source = root.join("source");
    let target = root.join("target");
    let (files, bytes) = match generate(&source) {
        Ok(x) => x,
        Err(e) => {
            return super::fail(&FerryError::io(
                format!("generating demo data in {}", root.display()),
                &e,
            ));
        }
    };
    let _ = output::init(Verbosity(0), None, "demo");
    say(&format!(
        "ferry demo: generated {files} files ({bytes} bytes) in {}\n\
         running the bundled procedure `tree-copy` into {}\n",
        source.display(),
        target.display()
    ));
    let args = RunArgs {
        name_or_file: "tree-copy".into(),
        params: vec![
            format!("source={}", source.display()),
            format!("target={}", target.display()),
        ],
        params_file: None,
        dry_run: false,
        yes: true,
        state: Some(root.join("state")),
        from_step: None,
        fresh: false,
        log_json: None,
        shard: None,
        verbose: 0,
        quiet: false,
    };
    for (n, label) in [
        (1, "first run"),
        (2, "second run: every step is already done"),
    ] {
        say(&format!("--- {label} ---"));
        let (opts, script) = match super::run::build_context(&args, Mode::Run) {
            Ok(x) => x,
            Err(e) => return super::fail(&e),
        };
        let code = super::run::run_context(Rc::new(RunContext::new(opts, script)));
        if code != 0 {
            return ExitCode::from(code);
        }
        if n == 1 {
            say("");
        }
    }
    say(&format!(
        "\nThe journal is {}/journal.jsonl. Try `ferry help tree-copy`, or `ferry eject tree-copy` to edit it.",
        root.join("state").display()
    ));
    ExitCode::SUCCESS
}
