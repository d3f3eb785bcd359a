//! Lua binding of `ferry.exec`.

use std::time::Duration;

use mlua::{Function, Lua, MultiValue, Table, Value};
use serde_json::json;

use super::stream::Line;
use super::{ExecSpec, display, tail};
use crate::runtime::context::ctx;
use crate::runtime::error::{ErrorKind, FerryError, IntoLuaResult};
use crate::runtime::output::{self, EV};
use crate::runtime::registry::{ClassDoc, FnDoc, ModuleDef, Opt, Param};

pub static MODULE: ModuleDef = ModuleDef {
    name: "exec",
    summary: "Run external commands (argv, no shell) with timeout, stdin, env and cwd.",
    functions: &[FnDoc {
        name: "run",
        signature: "ferry.exec.run{argv..., timeout, stdin, env, cwd, check = true, read_only = false, on_line} -> {code, stdout, stderr}",
        params: &[Param::new("opts", "table")],
        options: &[
            Opt::new("timeout", "number|string")
                .doc("seconds or a duration such as \"5m\" for the command and on_line together"),
            Opt::new("stdin", "string").doc("bytes written to the command's standard input"),
            Opt::new("env", "table<string, string|number>")
                .doc("variables added to the environment"),
            Opt::new("cwd", "string").doc("the working folder"),
            Opt::def("check", "boolean", "true").doc("raise an exec error on a non-zero exit"),
            Opt::def("read_only", "boolean", "false").doc("run it under --dry-run too"),
            Opt::new(
                "on_line",
                "fun(stream: \"stdout\"|\"stderr\", line: string, more: boolean)",
            )
            .doc("called for each line of output while the command runs"),
        ],
        returns: "ferry.exec.Result",
        doc: "Runs a command and returns its exit code and output. A non-zero exit raises an \
              exec error showing the end of stderr unless check = false. The command runs in \
              its own process group: on timeout, Ctrl-C, or an error in on_line the whole \
              group (the command and its children) is killed. Under --dry-run only \
              commands marked read_only = true run; the others are reported and return \
              {code = 0, stdout = \"\", stderr = \"\", dry_run = true} (on_line is not called). \
              on_line = function(stream, line, more) streams the output: it is called for each \
              line of stdout and stderr (stream is \"stdout\" or \"stderr\", line without its \
              \\n or \\r\\n) while the command runs, lines of one stream in order. A line longer \
              than 1 MiB comes in 1 MiB pieces, each but the last with more = true. The \
              command keeps running while on_line runs: up to 4 MiB of lines are read ahead, \
              then the command blocks on its full pipe, so a slow on_line slows the command \
              instead of growing memory. An error raised in on_line kills the command and is \
              raised with the command named. The timeout covers the command and on_line \
              together. With on_line, stdout and stderr in the result hold only the last \
              64 KiB of each stream.",
        example: Some(
            "local r = ferry.exec.run{\"sh\", \"-c\", \"echo hi\", read_only = true}\nassert(r.code == 0 and r.stdout == \"hi\\n\")\nlocal bad = ferry.exec.run{\"sh\", \"-c\", \"exit 4\", check = false, read_only = true}\nassert(bad.code == 4)\nlocal seen = {}\nferry.exec.run{\"sh\", \"-c\", \"echo 1; echo oops >&2; sleep 0.1; echo 2\", read_only = true,\n  on_line = function(stream, line) seen[#seen + 1] = stream .. \":\" .. line end}\ntable.sort(seen)\nassert(table.concat(seen, \" \") == \"stderr:oops stdout:1 stdout:2\")",
        ),
    }],
    classes: &[&RESULT],
    constants: &[],
    build,
};

/// What `ferry.exec.run` returns.
pub static RESULT: ClassDoc = ClassDoc {
    name: "ferry.exec.Result",
    doc: "The exit code and output of ferry.exec.run (dry_run = true, empty output and code 0 for \
          a command only reported under --dry-run).",
    fields: &[
        ("code", "integer"),
        ("stdout", "string"),
        ("stderr", "string"),
        ("dry_run", "boolean?"),
    ],
    methods: &[],
};

fn spec_from(lua: &Lua, t: &Table) -> mlua::Result<(ExecSpec, bool, bool)> {
    crate::runtime::options::check_documented(t, &MODULE, "run")?;
    let argv: Vec<String> = t
        .sequence_values::<Value>()
        .map(|v| v.and_then(|v| v.to_string()))
        .collect::<mlua::Result<_>>()?;
    let timeout = match t.get::<Value>("timeout")? {
        Value::Nil => None,
        Value::Integer(i) => Some(Duration::from_secs(i.max(0) as u64)),
        Value::Number(n) => Some(crate::runtime::params::secs_to_duration(n)),
        Value::String(s) => Some(crate::runtime::params::secs_to_duration(
            crate::runtime::params::parse_duration(&s.to_str()?)
                .map_err(|m| FerryError::new(ErrorKind::InvalidInput, m))?,
        )),
        other => {
            return Err(FerryError::new(
                ErrorKind::InvalidInput,
                format!(
                    "ferry.exec.run: timeout must be seconds, got {}",
                    other.type_name()
                ),
            )
            .into());
        }
    };
    let stdin = t
        .get::<Option<mlua::LuaString>>("stdin")?
        .map(|s| s.as_bytes().to_vec());
    let mut env = Vec::new();
    if let Some(e) = t.get::<Option<Table>>("env")? {
        for pair in e.pairs::<String, Value>() {
            let (k, v) = pair?;
            env.push((k, v.to_string()?));
        }
    }
    let cwd = t.get::<Option<String>>("cwd")?.map(Into::into);
    let check = t.get::<Option<bool>>("check")?.unwrap_or(true);
    let read_only = t.get::<Option<bool>>("read_only")?.unwrap_or(false);
    let _ = lua;
    Ok((
        ExecSpec {
            argv,
            timeout,
            stdin,
            env,
            cwd,
        },
        check,
        read_only,
    ))
}

async fn run(lua: Lua, t: Table) -> mlua::Result<Table> {
    let (spec, check, read_only) = spec_from(&lua, &t)?;
    let on_line = match t.get::<Value>("on_line")? {
        Value::Nil => None,
        Value::Function(f) => Some(f),
        other => {
            return Err(FerryError::new(
                ErrorKind::InvalidInput,
                format!(
                    "ferry.exec.run: on_line must be a function(stream, line, more), got {}",
                    other.type_name()
                ),
            )
            .into());
        }
    };
    let c = ctx(&lua);
    let shown = display(&spec.argv);
    let out = lua.create_table()?;
    if !read_only && c.would(&format!("run `{shown}`")) {
        out.set("code", 0)?;
        out.set("stdout", "")?;
        out.set("stderr", "")?;
        out.set("dry_run", true)?;
        return Ok(out);
    }
    tracing::debug!(target: EV, "running `{shown}`");
    let r = match on_line {
        None => super::run(&spec, &c.cancel).await.lua_err()?,
        Some(f) => super::stream::run(&spec, &c.cancel, |l| call_on_line(&lua, &f, l))
            .await
            .lua_err()?,
    };
    output::event(
        "exec",
        json!({"command": shown, "code": r.code, "duration_ms": r.duration.as_millis() as u64}),
    );
    if check && r.code != 0 {
        let err_tail = tail(&r.stderr, 20);
        let out_tail = tail(&r.stdout, 5);
        let detail = if !err_tail.is_empty() {
            err_tail
        } else {
            out_tail
        };
        return Err(FerryError::new(
            ErrorKind::Exec,
            format!(
                "`{shown}` exited with code {}{}",
                r.code,
                if detail.is_empty() {
                    String::new()
                } else {
                    format!(":\n{detail}")
                }
            ),
        )
        .with("command", &shown)
        .into());
    }
    out.set("code", r.code)?;
    out.set("stdout", lua.create_string(&r.stdout)?)?;
    out.set("stderr", lua.create_string(&r.stderr)?)?;
    Ok(out)
}

/// Calls `on_line(stream, line, more)`; its error (with the script line) ends the command.
async fn call_on_line(lua: &Lua, f: &Function, l: Line) -> crate::runtime::error::Result<()> {
    let lua_err = |e: mlua::Error| FerryError::from_lua_error(&e);
    let mut args = MultiValue::new();
    args.push_back(Value::String(
        lua.create_string(l.stream.name()).map_err(lua_err)?,
    ));
    args.push_back(Value::String(lua.create_string(&l.bytes).map_err(lua_err)?));
    args.push_back(Value::Boolean(l.more));
    crate::runtime::call_protected(lua, f.clone(), args).await?;
    drop(l); // its share of the in-flight budget
    Ok(())
}

fn build(lua: &Lua) -> mlua::Result<Table> {
    let m = lua.create_table()?;
    m.set("run", lua.create_async_function(run)?)?;
    Ok(m)
}
