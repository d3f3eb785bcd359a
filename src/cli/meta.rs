//! Commands about ferry itself, generated from the clap definition so they never drift from it:
//! `ferry completions bash|zsh|fish|elvish|powershell` (clap_complete) and `ferry man`
//! (clap_mangen, roff on stdout).

use std::io::Write;

use clap::CommandFactory;

use crate::runtime::error::{FerryError, Result};

pub fn completions(shell: clap_complete::Shell) -> Result<()> {
    let mut cmd = super::Cli::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(shell, &mut cmd, "ferry", &mut out);
    out.flush()
        .map_err(|e| FerryError::io("writing the completion script", &e))
}

pub fn man() -> Result<()> {
    let cmd = super::Cli::command();
    let mut out = std::io::stdout().lock();
    clap_mangen::Man::new(cmd)
        .render(&mut out)
        .and_then(|()| out.flush())
        .map_err(|e| FerryError::io("writing the man page", &e))
}
