//! ferry in a real terminal, as a person meets it: tmux runs `ferry repl` / `ferry run` in a pane,
//! keys arrive through `send-keys` (several lines in one call, as a fast typist or a terminal
//! without bracketed paste delivers a paste) and `paste-buffer -p` (tmux wraps the text in
//! `ESC[200~ … ESC[201~` only when the program asked for bracketed paste, as a terminal does), and
//! `capture-pane -e` shows what is on the screen, colours included.
//!
//! tmux is installed by tests/setup/tmux.sh; without it each test prints SKIPPED.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

struct Tmux {
    socket: String,
    _dir: tempfile::TempDir,
}

impl Tmux {
    /// A tmux server of its own running `ferry ARGS` in `cwd` with `env` set (and RUST_LOG,
    /// NO_COLOR unset unless given). None when tmux is missing.
    fn start(test: &str, args: &[&str], env: &[(&str, &str)], cwd: &Path) -> Option<Tmux> {
        if Command::new("tmux").arg("-V").output().is_err() {
            println!("SKIPPED: {test}: tmux is not installed (tests/setup/tmux.sh installs it)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        // The pane stays after ferry exits so its last screen can be read.
        let conf = dir.path().join("tmux.conf");
        std::fs::write(
            &conf,
            "set -g remain-on-exit on\nset -g history-limit 5000\n",
        )
        .unwrap();
        let socket = format!("ferry-{test}-{}", std::process::id());
        // Through sh, which prints how ferry ended: tmux's own "Pane is dead" sometimes comes late
        // (ferry already a zombie) on a busy machine.
        let mut cmd = vec![
            "sh".to_string(),
            "-c".into(),
            "\"$@\"; echo \"[ferry exited $?]\"".into(),
            "sh".into(),
            "env".into(),
            "-u".into(),
            "RUST_LOG".into(),
            "-u".into(),
            "NO_COLOR".into(),
            "-u".into(),
            "FERRY_NO_BARS".into(),
            format!("HOME={}", cwd.display()),
        ];
        cmd.extend(env.iter().map(|(k, v)| format!("{k}={v}")));
        cmd.push(env!("CARGO_BIN_EXE_ferry").into());
        cmd.extend(args.iter().map(|a| a.to_string()));
        let status = Command::new("tmux")
            .args(["-L", &socket, "-f"])
            .arg(&conf)
            .args([
                "new-session",
                "-d",
                "-s",
                "t",
                "-x",
                "160",
                "-y",
                "50",
                "-c",
            ])
            .arg(cwd)
            .args(&cmd)
            .status()
            .expect("tmux starts");
        assert!(status.success(), "tmux new-session failed: {status:?}");
        Some(Tmux { socket, _dir: dir })
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("tmux runs");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The pane's text (wrapped lines joined), with colour escapes when `escapes`.
    fn screen(&self, escapes: bool) -> String {
        let mut args = vec!["capture-pane", "-p", "-J", "-S", "-", "-t", "t"];
        if escapes {
            args.push("-e");
        }
        self.tmux(&args)
    }

    /// Waits until `done` holds for the screen; panics with the screen after 40 s.
    fn wait(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            let s = self.screen(false);
            if done(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn lines(screen: &str) -> Vec<&str> {
        screen.lines().map(str::trim_end).collect()
    }

    /// True when the last non-empty line is the primary prompt (not the continuation prompt).
    fn at_prompt(screen: &str) -> bool {
        Self::lines(screen)
            .iter()
            .rev()
            .find(|l| !l.is_empty())
            .is_some_and(|l| *l == "ferry>")
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

fn has_line(screen: &str, line: &str) -> bool {
    Tmux::lines(screen).contains(&line)
}

#[test]
fn repl_lines_sent_in_one_burst_run_whole() {
    let home = tempfile::tempdir().unwrap();
    let Some(t) = Tmux::start("burst", &["repl"], &[], home.path()) else {
        return;
    };
    t.wait("the prompt", Tmux::at_prompt);
    // One send-keys call: the bytes reach the terminal together, as a paste does in a terminal
    // without bracketed paste (or lines typed ahead faster than the prompt comes back). `-l`:
    // literally (tmux would read a bare `end` as the End key); CR is the Enter key.
    t.tmux(&[
        "send-keys",
        "-t",
        "t",
        "-l",
        "for i=1,3 do\rprint(i)\rend\rprint('after' .. 'wards')\r",
    ]);
    let s = t.wait("the loop's output and the prompt", |s| {
        has_line(s, "afterwards") && Tmux::at_prompt(s)
    });
    for n in ["1", "2", "3"] {
        assert!(has_line(&s, n), "line {n} missing; screen:\n{s}");
    }
}

#[test]
fn repl_bracketed_paste_runs_as_one_chunk() {
    let home = tempfile::tempdir().unwrap();
    let Some(t) = Tmux::start("paste", &["repl"], &[], home.path()) else {
        return;
    };
    t.wait("the prompt", Tmux::at_prompt);
    t.tmux(&[
        "set-buffer",
        "-b",
        "p",
        "for i = 1, 3 do\n  print(i * 10)\nend",
    ]);
    // The paste, Enter and the next line in one tmux command: what a person does in a second.
    t.tmux(&[
        "paste-buffer",
        "-p",
        "-b",
        "p",
        "-t",
        "t",
        ";",
        "send-keys",
        "-t",
        "t",
        "Enter",
        "print('next')",
        "Enter",
    ]);
    let s = t.wait("the loop's output and the prompt", |s| {
        has_line(s, "next") && Tmux::at_prompt(s)
    });
    for n in ["10", "20", "30"] {
        assert!(has_line(&s, n), "line {n} missing; screen:\n{s}");
    }
    // The block is one history entry: Up brings back all three lines at once.
    t.tmux(&["send-keys", "-t", "t", "Up", "Up"]);
    t.wait("the block from history", |s| {
        s.lines().filter(|l| l.contains("print(i * 10)")).count() >= 2
    });
}

/// A run that logs a warning and an info line and draws a progress bar.
fn colour_screen(test: &str, env: &[(&str, &str)]) -> Option<String> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("colours.lua"),
        "ferry.step('s', 'draw', function()\n\
           local p = ferry.log.progress{title = 'items', total = 3}\n\
           for i = 1, 3 do p:inc(1); ferry.task.sleep(0.05) end\n\
           p:finish()\n\
           ferry.log.warn('careful now')\n\
           ferry.log.info('all drawn')\n\
         end)\n",
    )
    .unwrap();
    let t = Tmux::start(test, &["run", "colours.lua", "--yes"], env, dir.path())?;
    t.wait("the run to end", |s| s.contains("[ferry exited 0]"));
    Some(t.screen(true))
}

/// SGR (colour/bold) sequences on the screen.
fn sgr_count(screen: &str) -> usize {
    let re = regex::Regex::new(r"\x1b\[[0-9;]*m").unwrap();
    // tmux's own "Pane is dead" line is drawn in its own attributes: leave it out.
    screen
        .lines()
        .filter(|l| !l.contains("Pane is dead") && !l.contains("[ferry exited"))
        .map(|l| {
            re.find_iter(l)
                .filter(|m| m.as_str() != "\x1b[0m" && m.as_str() != "\x1b[m")
                .count()
        })
        .sum()
}

#[test]
fn no_color_turns_colour_off_on_a_terminal() {
    let Some(coloured) = colour_screen("colour", &[]) else {
        return;
    };
    assert!(coloured.contains("careful now"), "{coloured}");
    assert!(
        sgr_count(&coloured) > 0,
        "a terminal without NO_COLOR shows no colour at all, so this test could not fail:\n{coloured:?}"
    );
    let plain = colour_screen("nocolour", &[("NO_COLOR", "1")]).unwrap();
    assert!(
        plain.contains("careful now") && plain.contains("all drawn"),
        "{plain}"
    );
    assert_eq!(sgr_count(&plain), 0, "NO_COLOR=1 left colour:\n{plain:?}");
    // An empty NO_COLOR does not count (no-color.org: "present and not an empty string").
    let empty = colour_screen("emptycolour", &[("NO_COLOR", "")]).unwrap();
    assert!(sgr_count(&empty) > 0, "{empty:?}");
}
