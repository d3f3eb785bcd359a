//! `ferry repl` driven through a pseudo-terminal, as a person types: tab completion of modules,
//! functions and handle methods, multi-line input, Ctrl-C cancelling a running call without
//! leaving the REPL, `:help`, `:dry`, history saved on exit, and parameters passed as for `run`.

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Pty {
    master: std::fs::File,
    screen: Arc<Mutex<String>>,
    child: Child,
    /// How much of the screen the last `expect` consumed.
    seen: usize,
}

impl Pty {
    fn spawn(args: &[&str], home: &std::path::Path) -> Pty {
        let (mut master, mut slave) = (0, 0);
        let ws = libc::winsize {
            ws_row: 40,
            ws_col: 200,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: openpty writes two descriptors we then own.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                &ws,
            )
        };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: fresh descriptors from openpty.
        let (master, slave) =
            unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferry"));
        cmd.args(args)
            .env("HOME", home)
            .env("TERM", "xterm")
            .env_remove("RUST_LOG")
            .current_dir(home)
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                // A session of its own with the pty as controlling terminal, so Ctrl-C typed on
                // it sends SIGINT to ferry as a terminal would.
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::ioctl(0, libc::TIOCSCTTY as _, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("ferry repl starts");
        let master = std::fs::File::from(master);
        let screen = Arc::new(Mutex::new(String::new()));
        let (mut reader, out) = (master.try_clone().unwrap(), screen.clone());
        let mut answer = master.try_clone().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                // Answer the line editor's cursor-position queries as a terminal does
                // (column 1: it then starts the prompt where it is).
                for _ in 0..text.matches("\x1b[6n").count() {
                    let _ = answer.write_all(b"\x1b[1;1R");
                }
                out.lock().unwrap().push_str(&text);
            }
        });
        Pty {
            master,
            screen,
            child,
            seen: 0,
        }
    }

    fn send(&mut self, keys: &str) {
        // A person does not type within microseconds of the prompt: give the line editor time
        // to switch the terminal to raw mode (input that arrives during the switch is dropped).
        std::thread::sleep(Duration::from_millis(60));
        self.master.write_all(keys.as_bytes()).unwrap();
        self.master.flush().unwrap();
    }

    /// Waits until `needle` appears after what earlier expectations consumed.
    fn expect(&mut self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            {
                let s = self.screen.lock().unwrap();
                if let Some(i) = s[self.seen..].find(needle) {
                    self.seen += i + needle.len();
                    return;
                }
                assert!(
                    Instant::now() < deadline,
                    "timed out waiting for {needle:?}; screen after the last match:\n{}",
                    &s[self.seen..]
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn finish(mut self) -> std::process::ExitStatus {
        self.send("\x04"); // Ctrl-D at an empty prompt ends the REPL
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the REPL did not exit on Ctrl-D");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn completion_multiline_ctrl_c_help_dry_and_history() {
    let home = tempfile::tempdir().unwrap();
    let mut t = Pty::spawn(&["repl"], home.path());
    t.expect("ferry> ");

    // Tab completes a module and a function of it.
    t.send("ferry.sto\t");
    t.expect("ferry.store");
    t.send(".op\t");
    t.expect("ferry.store.open");
    t.send("\r");
    t.expect("function");
    t.expect("ferry> ");

    // Handle methods: a store opened at the prompt (an async primitive called directly).
    t.send("s = ferry.store.open(\"memory://pty\")\r");
    t.expect("ferry> ");
    t.send("s:put(\"k\", \"v\")\r");
    t.expect("ferry> ");
    t.send("s:he\t");
    t.expect("s:head");
    t.send("(\"k\").size\r");
    t.expect("1\r\n");

    // Several candidates: the list is shown on a second Tab.
    t.send("ferry.fs.re\t\t");
    t.expect("ferry.fs.read");
    t.expect("ferry.fs.remove");
    t.send("\x15"); // Ctrl-U: clear the line
    t.send("\r");
    t.expect("ferry> ");

    // Multi-line input continues an incomplete chunk.
    t.send("function double(x)\r");
    t.expect("  >> ");
    t.send("return x * 2\r");
    t.expect("  >> ");
    t.send("end\r");
    t.expect("ferry> ");
    t.send("double(21)\r");
    t.expect("42");

    // Nested tables print readably; cycles do not run away.
    t.send("c = {a = {b = {1, 2}}}; c.self = c\r");
    t.expect("ferry> ");
    t.send("c\r");
    t.expect("self = <cycle>");

    // Ctrl-C cancels the running call and the REPL goes on.
    t.send("ferry.task.sleep(30)\r");
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    t.send("\x03");
    t.expect("cancelled");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "Ctrl-C did not stop the sleep"
    );
    t.send("1 + 1\r");
    t.expect("2");

    // :help shows a function's doc; :dry toggles dry run.
    t.send(":help task.parallel\r");
    t.expect("concurrency");
    t.send(":dry on\r");
    t.expect("dry run is on");
    t.send("ferry.dry_run()\r");
    t.expect("true");
    t.send(":dry off\r");
    t.expect("dry run is off");
    t.expect("ferry> ");

    let status = t.finish();
    assert!(status.success(), "{status:?}");
    let history = std::fs::read_to_string(home.path().join(".ferry_history")).unwrap();
    assert!(history.contains("double(21)"), "{history}");
}

#[test]
fn parameters_and_a_loaded_script_as_for_run() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("helpers.lua"),
        "local p = ferry.params{{name = \"factor\", type = \"integer\", default = 2, doc = \"x\"}}\n\
         function scale(x) return x * p.factor end\n",
    )
    .unwrap();
    let mut t = Pty::spawn(
        &["repl", "--load", "helpers.lua", "-p", "factor=7"],
        home.path(),
    );
    t.expect("ferry> ");
    t.send("scale(6)\r");
    t.expect("42");
    t.send("sca\t");
    t.expect("scale");
    t.send("(1)\r");
    t.expect("7");
    // :load runs another file in the same state.
    std::fs::write(
        home.path().join("more.lua"),
        "function triple(x) return 3 * scale(x) end\n",
    )
    .unwrap();
    t.send(":load more.lua\r");
    t.expect("ferry> ");
    t.send("triple(2)\r");
    t.expect("42");
    assert!(t.finish().success());
}

#[test]
fn bracketed_paste_and_the_line_after_it_arrive_in_one_write() {
    let home = tempfile::tempdir().unwrap();
    let mut t = Pty::spawn(&["repl"], home.path());
    t.expect("ferry> ");
    // What a terminal sends for a pasted block followed by Enter and a typed line, in one write:
    // the paste between ESC[200~ and ESC[201~ (newlines as CR, as terminals send them).
    t.send("\x1b[200~for i = 1, 3 do\r  print(i * 7)\rend\x1b[201~\rprint('next' .. 'line')\r");
    t.expect("7\r\n14\r\n21\r\n");
    t.expect("nextline\r\n");
    t.expect("ferry> ");
    assert!(t.finish().success());
}
