//! The command line (see ../shared/CONTRACT.md): one file per subcommand.

mod check;
mod demo;
mod doc;
mod eject;
mod help;
mod kube;
mod list;
mod meta;
mod repl;
pub mod run;
mod show;
mod status;
mod status_html;
mod types;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::runtime::error::FerryError;
use crate::runtime::output::say;

/// `--version`: the package version and the git commit it was built from (build.rs).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("FERRY_GIT_COMMIT"),
    ")"
);

#[derive(Parser)]
#[command(
    name = "ferry",
    version = VERSION,
    about = "Data migrations between storage systems, as editable Lua runbooks",
    disable_help_subcommand = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a bundled procedure by name, or any Lua file.
    Run(RunArgs),
    /// One line per bundled procedure: name, then a summary.
    List {
        /// A JSON array of {name, summary, description} instead (docs/cli.md).
        #[arg(long)]
        json: bool,
    },
    /// A procedure's purpose, parameters and steps, or a subcommand's options (`help run`).
    Help {
        /// Bundled procedure name, path to a Lua file (`./run.lua` for a file named like a
        /// subcommand), or a subcommand.
        name_or_file: Option<String>,
    },
    /// Print a bundled procedure's source.
    Show { name: String },
    /// Write a bundled procedure (and the bundled Lua modules it needs) into DIR for editing.
    Eject {
        /// The bundled procedure (may be left out with --types).
        name: Option<String>,
        /// Target folder (default: the current folder).
        dir: Option<PathBuf>,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
        /// Also write LuaLS type annotations of the whole API (types/ and .luarc.json) into DIR
        /// (default: the target folder), so editors complete and check scripts.
        #[arg(long, value_name = "DIR", num_args = 0..=1)]
        types: Option<Option<PathBuf>>,
    },
    /// Interactive Lua with every module loaded.
    Repl(ReplArgs),
    /// The Lua API reference.
    Doc {
        /// A module (`store`) or function (`store.copy`); all when omitted.
        target: Option<String>,
        /// Write one Markdown page per module into this folder (docs/api).
        #[arg(long, value_name = "DIR")]
        write: Option<PathBuf>,
    },
    /// Parse a script and report errors without running it.
    Check { file: PathBuf },
    /// Kubernetes manifests for a sharded run: ConfigMap, Indexed Job of shards, finalize Job.
    Kube(kube::KubeArgs),
    /// Every shard's steps and status, from the journals in a state dir or object store URL.
    Status {
        /// The --state of the runs: a folder, file:///dir, or s3://bucket/prefix (gs://, az://).
        #[arg(long, value_name = "DIR_OR_URL")]
        state: String,
        /// List shards 0..N-1 even when some have not started.
        #[arg(long, value_name = "N")]
        shards: Option<u32>,
        /// One JSON object instead of text (docs/cli.md).
        #[arg(long)]
        json: bool,
        /// Also write the journals and events as one HTML page with a throughput plot per step.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
        /// The run's --log-json file(s), for the page's plots.
        #[arg(long, value_name = "FILE")]
        events: Vec<PathBuf>,
    },
    /// A shell completion script on stdout: `source <(ferry completions bash)`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// The man page (roff) on stdout: `ferry man > ferry.1; man ./ferry.1`.
    #[command(alias = "manpage")]
    Man {
        /// A subcommand's page instead (ferry-run(1) is `ferry man run`).
        subcommand: Option<String>,
    },
    /// A self-contained end-to-end run of a bundled procedure on generated local data.
    Demo {
        /// Where to generate the demo data (default: a new temporary folder).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Only generate the sample Seafile storage and print its paths.
        #[arg(long)]
        generate_only: bool,
    },
}

#[derive(Args, Clone, Debug)]
pub struct RunArgs {
    /// Bundled procedure name, or path to a Lua file.
    pub name_or_file: String,
    /// Set a parameter (repeatable).
    #[arg(short = 'p', long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// Read parameters from a KEY=VALUE, .toml or .json file (-p wins).
    #[arg(long = "params", value_name = "FILE")]
    pub params_file: Option<PathBuf>,
    /// Report every change that would be made, make none.
    #[arg(long)]
    pub dry_run: bool,
    /// Answer yes to every confirmation.
    #[arg(long)]
    pub yes: bool,
    /// Where the journal and caches live (default ./.ferry/state/<procedure>).
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// Re-run from this step (earlier completed steps are kept).
    #[arg(long, value_name = "ID")]
    pub from_step: Option<String>,
    /// Ignore the journal of earlier runs and run every step.
    #[arg(long)]
    pub fresh: bool,
    /// Write one JSON event per line to FILE.
    #[arg(long, value_name = "FILE")]
    pub log_json: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR/metrics while the run lasts (e.g. 0.0.0.0:9464).
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<String>,
    /// Take shard I of N of every shardable copy (0-based).
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    #[command(flatten)]
    pub scale: ScaleArgs,
    /// More output (-v debug, -vv trace).
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only warnings and errors.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Sharded runs across many processes (docs/scale-out.md).
#[derive(Args, Clone, Debug, Default)]
pub struct ScaleArgs {
    /// The shard count; with JOB_COMPLETION_INDEX (Kubernetes Indexed Jobs) as the index when
    /// --shard is absent (default: FERRY_SHARDS).
    #[arg(long, value_name = "N")]
    pub shards: Option<u32>,
    /// shards: run only {sharded = true} steps, leave once-only steps for finalize;
    /// finalize: run the once-only steps once every shard finished.
    #[arg(long, value_name = "PHASE", value_parser = ["shards", "finalize"])]
    pub phase: Option<String>,
}

#[derive(Args, Clone, Debug)]
pub struct ReplArgs {
    /// Set a parameter, as for run.
    #[arg(short = 'p', long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// Load this Lua file first (its parameters are taken as for run).
    #[arg(long)]
    pub load: Option<PathBuf>,
    /// Start with dry run on.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    if !matches!(
        cli.command,
        Command::Run(_) | Command::Repl(_) | Command::Demo { .. }
    ) {
        // Printing commands (help, list, show, doc) end quietly when their reader goes away
        // (`ferry help X | head`), as other Unix tools do. Runs keep the default: a closed pipe
        // is an I/O error there, never a signal in the middle of a step.
        #[cfg(unix)]
        // SAFETY: called before any thread is started; restores the default disposition.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let result = match cli.command {
        Command::Run(args) => return run::run(args),
        Command::List { json } => list::list(json),
        Command::Help { name_or_file } => help::help(name_or_file.as_deref()),
        Command::Show { name } => show::show(&name),
        Command::Eject {
            name,
            dir,
            force,
            types,
        } => eject::eject(name.as_deref(), dir.as_deref(), force, types),
        Command::Repl(args) => repl::repl(args),
        Command::Doc { target, write } => doc::doc(target.as_deref(), write.as_deref()),
        Command::Kube(args) => kube::kube(args),
        Command::Status {
            state,
            shards,
            json,
            html,
            events,
        } => status::status(&state, shards, json, html.as_deref(), &events),
        Command::Completions { shell } => meta::completions(shell),
        Command::Man { subcommand } => meta::man(subcommand.as_deref()),
        Command::Check { file } => return check::check(&file),
        Command::Demo { dir, generate_only } => return demo::demo(dir.as_deref(), generate_only),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

/// Prints an error that ends a command outside a run, and maps it to the exit code.
pub fn fail(e: &FerryError) -> ExitCode {
    let mut text = format!("error: {}", e.message);
    if let Some(h) = &e.hint {
        text.push_str(&format!("\n  hint: {h}"));
    }
    say(&text);
    ExitCode::from(e.kind.exit_code())
}

/// The tokio runtime every command that runs Lua uses.
pub fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime starts")
}

/// How long the end of a command waits for the runtime's threads to stop. A blocking
/// thread still reading stdin (a prompt cut short by Ctrl-C) never stops; the wait is
/// bounded so that such a command still ends.
const THREADS_STOP_WITHIN: std::time::Duration = std::time::Duration::from_secs(1);

/// Ends a command's runtime: drops the Lua tasks still parked in `local` (inside the
/// runtime, so their sockets deregister cleanly), then stops the worker threads and waits
/// for them. `shutdown_background` used to return at once, so the process ran its exit
/// destructors (the C libraries' `__attribute__((destructor))`, such as AWS-LC's RNG
/// zeroization) while worker threads could still be dropping connections; a run once ended
/// by a signal right after printing its summary.
pub fn end_runtime(rt: tokio::runtime::Runtime, local: tokio::task::LocalSet) {
    {
        let _inside = rt.enter();
        drop(local);
    }
    rt.shutdown_timeout(THREADS_STOP_WITHIN);
}
