//! Commands about ferry itself, generated from the clap definition so they never drift from it:
//! `ferry completions bash|zsh|fish|elvish|powershell` (clap_complete) and `ferry man [SUBCOMMAND]`
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

/// The page of `ferry`, or of one subcommand (`ferry man run`: the ferry-run(1) the main page
/// lists under SUBCOMMANDS).
pub fn man(subcommand: Option<&str>) -> Result<()> {
    let mut cmd = super::Cli::command();
    if let Some(name) = subcommand {
        cmd.build();
        let Some(sub) = cmd.find_subcommand(name) else {
            return Err(FerryError::usage(format!("no subcommand named '{name}'"))
                .hint("see `ferry --help` for the subcommands"));
        };
        // After build(), clap names it ferry-run (display) and `ferry run` (usage).
        cmd = sub.clone().version(super::VERSION);
    }
    let mut out = std::io::stdout().lock();
    clap_mangen::Man::new(cmd)
        .render(&mut out)
        .and_then(|()| out.flush())
        .map_err(|e| FerryError::io("writing the man page", &e))
}
