//! `ferry repl`: interactive Lua with every module loaded. Multi-line input, history, tab
//! completion (`complete.rs`), readable printing of nested values (bounded depth and size,
//! cycle-safe), async primitives called directly, Ctrl-C cancelling the running call,
//! `:help NAME`, `:dry on|off`, `:load FILE`.

mod complete;

use std::collections::HashSet;
use std::rc::Rc;

use mlua::{Lua, MultiValue, Value};
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::{Editor, Helper};

use super::ReplArgs;
use crate::runtime::context::{Mode, RunContext, RunOptions, ScriptInfo};
use crate::runtime::error::{ErrorKind, FerryError, Result};
use crate::runtime::output::{self, Verbosity};
use crate::runtime::params::RawParams;
use crate::runtime::{self, scripts};

/// Renders a value for the prompt: nested tables up to a depth, at most `MAX_ITEMS` entries each,
/// cycles shown as `<cycle>`.
pub fn show(v: &Value, depth: usize, seen: &mut HashSet<usize>) -> String {
    const MAX_ITEMS: usize = 50;
    const MAX_DEPTH: usize = 4;
    match v {
        Value::String(s) => format!("{:?}", s.to_string_lossy()),
        Value::Table(t) => {
            let id = t.to_pointer() as usize;
            if !seen.insert(id) {
                return "<cycle>".into();
            }
            if depth >= MAX_DEPTH {
                seen.remove(&id);
                return "{...}".into();
            }
            let mut parts = Vec::new();
            let len = t.raw_len();
            let mut count = 0;
            for pair in t.pairs::<Value, Value>() {
                let Ok((k, val)) = pair else { continue };
                count += 1;
                if parts.len() >= MAX_ITEMS {
                    continue;
                }
                let key = match &k {
                    Value::Integer(i) if *i >= 1 && (*i as usize) <= len => None,
                    Value::String(s) => Some(s.to_string_lossy()),
                    other => Some(format!("[{}]", show(other, depth + 1, seen))),
                };
                let shown = show(&val, depth + 1, seen);
                parts.push(match key {
                    None => shown,
                    Some(k) => format!("{k} = {shown}"),
                });
            }
            seen.remove(&id);
            if count > MAX_ITEMS {
                parts.push(format!("... ({} more)", count - MAX_ITEMS));
            }
            format!("{{{}}}", parts.join(", "))
        }
        Value::Error(e) => format!("error: {e}"),
        other => other
            .to_string()
            .unwrap_or_else(|_| other.type_name().to_string()),
    }
}

/// A completion request from the line editor's thread to the Lua thread, which owns the state.
type CompletionRequest = (String, usize, std::sync::mpsc::Sender<(usize, Vec<String>)>);

/// rustyline's helper: completion is answered by the Lua thread (which is idle while the editor
/// waits for keys), everything else is rustyline's default.
struct ReplHelper {
    requests: tokio::sync::mpsc::UnboundedSender<CompletionRequest>,
}

impl rustyline::completion::Completer for ReplHelper {
    type Candidate = String;
    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        let (tx, rx) = std::sync::mpsc::channel();
        if self.requests.send((line.to_string(), pos, tx)).is_err() {
            return Ok((pos, Vec::new()));
        }
        Ok(rx
            .recv_timeout(std::time::Duration::from_secs(2))
            .unwrap_or((pos, Vec::new())))
    }
}
impl rustyline::hint::Hinter for ReplHelper {
    type Hint = String;
}
impl rustyline::highlight::Highlighter for ReplHelper {}
impl rustyline::validate::Validator for ReplHelper {}
impl Helper for ReplHelper {}

fn print_values(values: &MultiValue) {
    if values.is_empty() {
        return;
    }
    let shown: Vec<String> = values
        .iter()
        .map(|v| show(v, 0, &mut HashSet::new()))
        .collect();
    println!("{}", shown.join("\t"));
}

async fn eval(lua: &Lua, code: &str) -> std::result::Result<MultiValue, FerryError> {
    // An expression first (so `1 + 1` prints 2), then a statement.
    let f = match lua
        .load(format!("return {code}"))
        .set_name("=repl")
        .into_function()
    {
        Ok(f) => f,
        Err(_) => lua
            .load(code)
            .set_name("=repl")
            .into_function()
            .map_err(|e| FerryError::from_lua_error(&e))?,
    };
    tokio::select! {
        r = runtime::call_protected(lua, f, MultiValue::new()) => r,
        _ = tokio::signal::ctrl_c() => Err(FerryError::new(ErrorKind::Cancelled, "cancelled")),
    }
}

fn incomplete(lua: &Lua, code: &str) -> bool {
    if lua.load(format!("return {code}")).into_function().is_ok() {
        return false;
    }
    matches!(
        lua.load(code).into_function(),
        Err(mlua::Error::SyntaxError {
            incomplete_input: true,
            ..
        })
    )
}

fn command(lua: &Lua, ctx: &RunContext, line: &str) -> Option<String> {
    let mut parts = line.splitn(2, ' ');
    let cmd = parts.next().unwrap_or("");
    let arg = parts.next().unwrap_or("").trim();
    match cmd {
        ":help" => {
            if arg.is_empty() {
                println!(":help NAME (e.g. :help task.parallel), :dry on|off, :load FILE, :quit");
            } else if let Err(e) = super::doc::doc(Some(arg), None) {
                println!("{}", e.message);
            }
            None
        }
        ":dry" => {
            match arg {
                "on" => ctx.set_dry_run(true),
                "off" => ctx.set_dry_run(false),
                _ => {}
            }
            println!("dry run is {}", if ctx.dry_run() { "on" } else { "off" });
            None
        }
        ":load" => match std::fs::read_to_string(arg) {
            Ok(src) => Some(format!("__ferry_load_chunk({src:?}, {arg:?})")),
            Err(e) => {
                println!("cannot read {arg}: {e}");
                None
            }
        },
        ":quit" | ":q" => Some(":quit".into()),
        _ => {
            let _ = lua;
            println!("unknown command {cmd}; try :help");
            None
        }
    }
}

pub fn repl(args: ReplArgs) -> Result<()> {
    let raw = RawParams::from_sources(&args.params, None)?;
    let script = ScriptInfo {
        name: "repl".into(),
        display: "repl".into(),
        dir: Some(".".into()),
        source: String::new(),
        checksum: String::new(),
        bundled: false,
    };
    let ctx = Rc::new(RunContext::new(
        RunOptions {
            mode: Mode::Repl,
            dry_run: args.dry_run,
            yes: false,
            state_dir: super::run::default_state_dir("repl"),
            from_step: None,
            fresh: false,
            raw,
            resume_base: "ferry repl".into(),
            quiet: false,
            shard: None,
        },
        script,
    ));
    output::init(Verbosity(0), None, &ctx.run_id).ok();
    let rt = super::tokio_runtime();
    let local = tokio::task::LocalSet::new();
    let result = local.block_on(&rt, async {
        let lua = runtime::new_lua(ctx.clone(), crate::modules::modules())
            .map_err(|e| FerryError::from_lua_error(&e))?;
        lua.globals()
            .set(
                "__ferry_load_chunk",
                lua.create_async_function(|lua, (src, name): (String, String)| async move {
                    let f = runtime::load_chunk(&lua, &src, &name)?;
                    runtime::call_protected(&lua, f, MultiValue::new())
                        .await
                        .map_err(mlua::Error::from)
                })
                .map_err(|e| FerryError::from_lua_error(&e))?,
            )
            .map_err(|e| FerryError::from_lua_error(&e))?;
        if let Some(file) = &args.load {
            let info = scripts::resolve(&file.to_string_lossy())?;
            let f = runtime::load_chunk(&lua, &info.source, &info.display)?;
            if let Err(e) = runtime::call_protected(&lua, f, MultiValue::new()).await {
                println!("error loading {}: {}", file.display(), e.one_line());
            }
        }
        println!(
            "ferry {} REPL. Every module is loaded as ferry.*; :help for commands.",
            env!("CARGO_PKG_VERSION")
        );
        let history =
            std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".ferry_history"));
        let (requests, mut incoming) = tokio::sync::mpsc::unbounded_channel::<CompletionRequest>();
        let completer_lua = lua.clone();
        let completer = tokio::task::spawn_local(async move {
            while let Some((line, pos, reply)) = incoming.recv().await {
                let _ = reply.send(complete::candidates(&completer_lua, &line, pos));
            }
        });
        let mut editor: Editor<ReplHelper, DefaultHistory> = Editor::new()
            .map_err(|e| FerryError::new(ErrorKind::Internal, format!("terminal: {e}")))?;
        editor.set_helper(Some(ReplHelper { requests }));
        if let Some(h) = &history {
            let _ = editor.load_history(h);
        }
        let mut buffer = String::new();
        loop {
            let prompt = if buffer.is_empty() {
                "ferry> "
            } else {
                "  >> "
            };
            let (ed, line) = tokio::task::spawn_blocking(move || {
                let r = editor.readline(prompt);
                (editor, r)
            })
            .await
            .map_err(|e| FerryError::new(ErrorKind::Internal, e.to_string()))?;
            editor = ed;
            let line = match line {
                Ok(l) => l,
                Err(ReadlineError::Interrupted) => {
                    buffer.clear();
                    continue;
                }
                Err(ReadlineError::Eof) => break,
                Err(e) => {
                    return Err(FerryError::new(
                        ErrorKind::Internal,
                        format!("terminal: {e}"),
                    ));
                }
            };
            let mut code = if buffer.is_empty() && line.trim_start().starts_with(':') {
                match command(&lua, &ctx, line.trim()) {
                    Some(c) if c == ":quit" => break,
                    Some(c) => c,
                    None => continue,
                }
            } else {
                if !buffer.is_empty() {
                    buffer.push('\n');
                }
                buffer.push_str(&line);
                if incomplete(&lua, &buffer) {
                    continue;
                }
                std::mem::take(&mut buffer)
            };
            if code.trim().is_empty() {
                continue;
            }
            let _ = editor.add_history_entry(code.as_str());
            match eval(&lua, &code).await {
                Ok(values) => print_values(&values),
                Err(e) => println!(
                    "{}",
                    if e.kind == ErrorKind::Lua {
                        e.message.clone()
                    } else {
                        e.one_line()
                    }
                ),
            }
            code.clear();
        }
        if let Some(h) = &history {
            let _ = editor.save_history(h);
        }
        completer.abort();
        Ok(())
    });
    crate::cli::end_runtime(rt, local);
    result
}
