//! Shared test support: a workspace (temp dir) and a fluent runner for the built `ferry` binary.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Workspace {
        Workspace {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes a file (creating folders) and returns its path.
    pub fn write(&self, rel: &str, content: &str) -> PathBuf {
        let p = self.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&p, content).expect("write");
        p
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.join(rel)).unwrap_or_default()
    }

    /// A `ferry` command running in this workspace.
    pub fn ferry(&self) -> Ferry {
        let mut f = Ferry::new();
        f.cmd.current_dir(self.path());
        f
    }

    /// `ferry run SCRIPT -q -p url=URL -p scratch=...`: the store conformance suite
    /// (`tests/lua/store_conformance.lua`, or a copy of it) on `url`, with a scratch folder here.
    pub fn conformance_run(&self, script: &Path, url: &str) -> Ferry {
        std::fs::create_dir_all(self.join("scratch")).unwrap();
        self.ferry().args([
            "run",
            script.to_str().unwrap(),
            "-q",
            "-p",
            &format!("url={url}"),
            "-p",
            &format!("scratch={}", self.join("scratch").display()),
        ])
    }
}

/// Whether the checker `tool` (`tool --version` runs) is here: under `CI=true` a missing one fails
/// the test, elsewhere it prints `SKIPPED: test: ...` and the test returns.
pub fn tool_or_skip(tool: &str, test: &str, setup: &str) -> bool {
    let found = Command::new(tool)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !found {
        if db::on_ci() {
            panic!("{tool} is missing under CI=true ({setup} installs it)");
        }
        eprintln!("SKIPPED: {test}: {tool} is missing ({setup} installs it)");
    }
    found
}

/// The store conformance suite's script.
pub fn conformance_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lua/store_conformance.lua")
}

pub struct Ferry {
    pub cmd: Command,
    stdin: Option<Vec<u8>>,
}

pub struct Output {
    /// The exit code, or minus the signal number when the process was killed by one.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ferry {
    pub fn new() -> Ferry {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferry"));
        cmd.env_remove("RUST_LOG")
            .env("FERRY_NO_BARS", "1")
            .stdin(Stdio::null());
        for (k, _) in std::env::vars() {
            if k.starts_with("FERRY_PARAM_") {
                cmd.env_remove(k);
            }
        }
        Ferry { cmd, stdin: None }
    }

    pub fn args<I, S>(mut self, args: I) -> Ferry
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.cmd.args(args);
        self
    }

    /// `ferry run NAME` (a bundled procedure or a script path): the start of a run, followed by
    /// `.param(k, v)`, `.state(dir)`, `.flag("--yes")` in any order.
    pub fn procedure(self, name: &str) -> Ferry {
        self.args(["run", name])
    }

    /// `-p KEY=VALUE`.
    pub fn param(self, key: &str, value: impl std::fmt::Display) -> Ferry {
        self.args(["-p".to_string(), format!("{key}={value}")])
    }

    /// `--state DIR`.
    pub fn state(self, dir: impl AsRef<std::ffi::OsStr>) -> Ferry {
        self.args([std::ffi::OsStr::new("--state"), dir.as_ref()])
    }

    /// One command-line flag (`--yes`, `--dry-run`, `-q`, ...).
    pub fn flag(self, flag: &str) -> Ferry {
        self.args([flag])
    }

    pub fn env(mut self, k: &str, v: &str) -> Ferry {
        self.cmd.env(k, v);
        self
    }

    pub fn stdin(mut self, data: &[u8]) -> Ferry {
        self.stdin = Some(data.to_vec());
        self
    }

    pub fn run(mut self) -> Output {
        self.cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        if self.stdin.is_some() {
            self.cmd.stdin(Stdio::piped());
        }
        let mut child = self.cmd.spawn().expect("ferry binary starts");
        if let Some(data) = self.stdin.take() {
            let mut pipe = child.stdin.take().expect("stdin pipe");
            pipe.write_all(&data).expect("write stdin");
        }
        let out = child.wait_with_output().expect("ferry finishes");
        Output {
            // Killed by a signal: minus its number (-9 SIGKILL, -11 SIGSEGV, -6 SIGABRT).
            code: out.status.code().unwrap_or_else(|| {
                use std::os::unix::process::ExitStatusExt;
                -out.status.signal().unwrap_or(1)
            }),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Output {
    /// Asserts the exit code, showing all output when it differs.
    pub fn code(&self, expected: i32) -> &Output {
        assert_eq!(
            self.code, expected,
            "exit code {} (expected {expected})\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }

    pub fn stderr_has(&self, needle: &str) -> &Output {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}\n--- stderr\n{}",
            self.stderr
        );
        self
    }

    pub fn stderr_lacks(&self, needle: &str) -> &Output {
        assert!(
            !self.stderr.contains(needle),
            "stderr has {needle:?}\n--- stderr\n{}",
            self.stderr
        );
        self
    }

    pub fn stdout_has(&self, needle: &str) -> &Output {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

/// Every JSON line of a journal or --log-json file.
pub fn json_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect()
}

/// The report a job script prints as its last JSON line on stdout (`print(ferry.json.encode(r))`).
pub fn json_report(stdout: &str) -> serde_json::Value {
    let line = stdout
        .lines()
        .rfind(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON report line in stdout:\n{stdout}"));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("bad JSON report {line:?}: {e}"))
}

/// Runs `./job.lua` of `ws` with `-p src=SRC -p dst=DST` and `-p` for each of `extra`.
pub fn run_copy_job(ws: &Workspace, src: &str, dst: &str, extra: &[&str]) -> Output {
    let mut f = ws
        .ferry()
        .args(["run", "./job.lua"])
        .param("src", src)
        .param("dst", dst);
    for e in extra {
        f = f.args(["-p", e]);
    }
    f.run()
}

pub mod astra;
pub mod azurite;
pub mod background;
pub mod db;
pub mod druid;
pub mod fault_proxy;
pub mod gcs;
pub mod http_server;
pub mod kill;
pub mod s3;
pub mod secrets;
pub mod tcp_cut;
pub mod tcp_faults;

/// Deterministic bytes that are not a repeating pattern of any short period.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}
