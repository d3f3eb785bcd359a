//! `ferry.exec.run{..., on_line = fn}`: lines while the command runs, bounded memory with a slow
//! consumer, long lines in pieces, the same timeout / kill / check / dry-run rules as `run`.

use crate::common;

use std::time::{Duration, Instant};

use common::{Output, Workspace};

fn run_script(ws: &Workspace, script: &str, extra: &[&str]) -> Output {
    ws.write("s.lua", script);
    // Dry runs print what they would do at info level: not quiet then.
    let mut args = vec!["run", "./s.lua", "--yes", "--state", "state"];
    if !extra.contains(&"--dry-run") {
        args.push("-q");
    }
    args.extend_from_slice(extra);
    ws.ferry().args(args).run()
}

/// Whether process `pid` still exists (a zombie counts as gone).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn pid_after(out: &Output, tag: &str) -> u32 {
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix(tag)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {tag} line\n{}\n{}", out.stdout, out.stderr))
}

#[test]
fn lines_arrive_while_the_command_runs() {
    let ws = Workspace::new();
    // The command waits for a file that only the callback of its first line writes: without
    // streaming it never ends (and the timeout says so).
    let out = run_script(
        &ws,
        r#"
local seen = {}
local r = ferry.exec.run{"sh", "-c", "echo one; echo warn >&2; while [ ! -e go ]; do sleep 0.05; done; echo two",
  read_only = true, timeout = 20,
  on_line = function(stream, line, more)
    seen[#seen + 1] = stream .. ":" .. line .. ":" .. tostring(more)
    if line == "one" then ferry.fs.write("go", "") end
  end}
table.sort(seen)
print("seen " .. table.concat(seen, " "))
print("code " .. r.code .. " stdout " .. r.stdout:gsub("\n", "|") .. " stderr " .. r.stderr:gsub("\n", "|"))
"#,
        &[],
    );
    out.code(0)
        .stdout_has("seen stderr:warn:false stdout:one:false stdout:two:false")
        .stdout_has("code 0 stdout one|two| stderr warn|");
}

#[test]
fn a_slow_consumer_blocks_the_command_and_memory_stays_bounded() {
    let ws = Workspace::new();
    // 200,000 lines of 1000 bytes (200 MB); the consumer sleeps 20 ms every 1000 lines. The
    // command touches `finished` after its last line: half-way through the consumer it must not
    // exist yet (the child is blocked on a full pipe, not buffered in ferry).
    let out = run_script(
        &ws,
        r#"
local n, bytes, early_finish = 0, 0, nil
local r = ferry.exec.run{"sh", "-c", "yes \"$(head -c 999 /dev/zero | tr '\\0' x)\" | head -n 200000; touch finished",
  read_only = true,
  on_line = function(stream, line)
    n = n + 1
    bytes = bytes + #line
    if n % 1000 == 0 then ferry.task.sleep(0.02) end
    if n == 100000 then early_finish = ferry.fs.exists("finished") end
  end}
local hwm = ferry.fs.read("/proc/self/status"):match("VmHWM:%s*(%d+) kB")
print(("lines %d bytes %d early_finish %s tail %d hwm_kb %s"):format(n, bytes, tostring(early_finish), #r.stdout, hwm))
"#,
        &[],
    );
    out.code(0)
        .stdout_has("lines 200000 bytes 199800000 early_finish false tail 65536");
    let hwm: u64 = out
        .stdout
        .split("hwm_kb ")
        .nth(1)
        .and_then(|s| s.trim().parse().ok())
        .expect("VmHWM");
    eprintln!("peak RSS of ferry while streaming 200 MB to a slow consumer: {hwm} kB");
    assert!(hwm < 80_000, "peak RSS {hwm} kB for 200 MB of output");
}

#[test]
fn a_line_without_newline_comes_in_one_mib_pieces() {
    let ws = Workspace::new();
    // 5 MiB + 3 bytes with no newline, then "end".
    let out = run_script(
        &ws,
        r#"
local pieces = {}
local r = ferry.exec.run{"sh", "-c", "head -c 5242883 /dev/zero | tr '\\0' y; echo; echo end", read_only = true,
  on_line = function(_, line, more) pieces[#pieces + 1] = #line .. (more and "+" or "") end}
print("pieces " .. table.concat(pieces, " ") .. " tail " .. #r.stdout)
"#,
        &[],
    );
    out.code(0)
        .stdout_has("pieces 1048576+ 1048576+ 1048576+ 1048576+ 1048576+ 3 3 tail 65536");
}

#[test]
fn an_error_in_on_line_kills_the_command_and_names_the_script_line() {
    let ws = Workspace::new();
    let started = Instant::now();
    let out = run_script(
        &ws,
        r#"
ferry.exec.run{"sh", "-c", "sleep 60 & echo \"bg $!\"; echo \"sh $$\"; sleep 60; echo never",
  read_only = true,
  on_line = function(_, line)
    print(line)
    if line:find("^sh ") then error("stop at " .. line) end
  end}
"#,
        &[],
    );
    out.code(1)
        .stderr_has("on_line of `sh -c")
        .stderr_has("./s.lua:6: stop at sh ");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "ferry waited for the command"
    );
    std::thread::sleep(Duration::from_millis(300));
    for tag in ["bg ", "sh "] {
        let pid = pid_after(&out, tag);
        assert!(!alive(pid), "{tag}process {pid} survived the error");
    }
}

#[test]
fn timeout_kills_the_process_group_streaming_or_not() {
    for on_line in ["on_line = function(_, l) print(l) end,", ""] {
        let ws = Workspace::new();
        let script = format!(
            r#"
local ok, e = pcall(ferry.exec.run, {{"sh", "-c", "sleep 60 & echo \"bg $!\"; sleep 60", read_only = true,
  timeout = 1, {on_line} check = false}})
print("ok " .. tostring(ok) .. " kind " .. e.kind .. " msg " .. e.message)
"#
        );
        let out = run_script(&ws, &script, &[]);
        out.code(0)
            .stdout_has("ok false kind timeout")
            .stdout_has("did not finish within 1.0s and was killed");
        if !on_line.is_empty() {
            std::thread::sleep(Duration::from_millis(300));
            let pid = pid_after(&out, "bg ");
            assert!(
                !alive(pid),
                "the background child {pid} survived the timeout"
            );
        }
    }
}

#[test]
fn timeout_kills_the_background_child_of_a_plain_run() {
    let ws = Workspace::new();
    ws.write("bg.sh", "sleep 60 & echo $! > bg.pid; sleep 60\n");
    let out = run_script(
        &ws,
        r#"
local ok, e = pcall(ferry.exec.run, {"sh", "bg.sh", read_only = true, timeout = 1})
print("ok " .. tostring(ok) .. " kind " .. e.kind)
"#,
        &[],
    );
    out.code(0).stdout_has("ok false kind timeout");
    std::thread::sleep(Duration::from_millis(300));
    let pid: u32 = ws.read("bg.pid").trim().parse().expect("bg.pid");
    assert!(
        !alive(pid),
        "the background child {pid} survived the timeout"
    );
}

#[test]
fn a_non_zero_exit_after_some_lines_is_an_exec_error_with_stderr() {
    let ws = Workspace::new();
    let out = run_script(
        &ws,
        r#"
local got = {}
local ok, e = pcall(ferry.exec.run, {"sh", "-c", "echo row1; echo row2; echo 'disk full' >&2; exit 3", read_only = true,
  on_line = function(s, l) got[#got + 1] = l end})
table.sort(got)
print("got " .. table.concat(got, ",") .. " ok " .. tostring(ok) .. " kind " .. e.kind .. " msg " .. e.message:gsub("\n", "|"))
local r = ferry.exec.run{"sh", "-c", "echo x; exit 5", read_only = true, check = false, on_line = function() end}
print("unchecked " .. r.code)
"#,
        &[],
    );
    out.code(0)
        .stdout_has("got disk full,row1,row2 ok false kind exec msg `sh -c 'echo row1;")
        .stdout_has("exited with code 3:|disk full")
        .stdout_has("unchecked 5");
}

#[test]
fn dry_run_reports_the_command_and_streams_only_read_only_ones() {
    let ws = Workspace::new();
    let out = run_script(
        &ws,
        r#"
local calls = 0
local r = ferry.exec.run{"sh", "-c", "echo ran > ran.txt; echo hi", on_line = function() calls = calls + 1 end}
print("write dry_run " .. tostring(r.dry_run) .. " calls " .. calls .. " ran " .. tostring(ferry.fs.exists("ran.txt")))
local ro = ferry.exec.run{"sh", "-c", "echo look", read_only = true, on_line = function(_, l) calls = calls + 1 end}
print("read_only calls " .. calls .. " dry_run " .. tostring(ro.dry_run))
"#,
        &["--dry-run"],
    );
    out.code(0)
        .stdout_has("write dry_run true calls 0 ran false")
        .stdout_has("read_only calls 1 dry_run nil")
        .stderr_has("would run `sh -c 'echo ran > ran.txt; echo hi'`");
    assert!(!ws.join("ran.txt").exists());
}

#[test]
fn ctrl_c_kills_a_streaming_command() {
    let ws = Workspace::new();
    ws.write(
        "s.lua",
        r#"
ferry.exec.run{"sh", "-c", "sleep 60 & echo $! > bg.pid; echo $$ > sh.pid; echo ready; sleep 60", read_only = true,
  on_line = function(_, l) ferry.fs.write("seen", l) end}
"#,
    );
    let mut f = ws
        .ferry()
        .args(["run", "./s.lua", "-q", "--yes", "--state", "state"]);
    f.cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = f.cmd.spawn().expect("ferry starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    while ws.read("seen") != "ready" {
        assert!(Instant::now() < deadline, "no line seen");
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let status = child.wait().expect("ferry ends");
    assert_ne!(status.code(), Some(0));
    std::thread::sleep(Duration::from_millis(300));
    for f in ["bg.pid", "sh.pid"] {
        let pid: u32 = ws.read(f).trim().parse().expect("pid file");
        assert!(!alive(pid), "{f}: {pid} survived Ctrl-C");
    }
}

#[test]
fn stdin_env_and_cwd_apply_when_streaming() {
    let ws = Workspace::new();
    std::fs::create_dir(ws.join("sub")).unwrap();
    let out = run_script(
        &ws,
        r#"
local got = {}
ferry.exec.run{"sh", "-c", "cat; echo \"$FOO\"; pwd", stdin = "in1\nin2\n", env = {FOO = "bar"}, cwd = "sub",
  read_only = true, on_line = function(_, l) got[#got + 1] = l:gsub(".*/", "") end}
print("got " .. table.concat(got, ","))
"#,
        &[],
    );
    out.code(0).stdout_has("got in1,in2,bar,sub");
}
