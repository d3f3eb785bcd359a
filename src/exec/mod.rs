//! Running external commands: argv (no shell), timeout, stdin, env, cwd; cancellable.

pub mod lua;
pub mod stream;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

use crate::runtime::error::{ErrorKind, FerryError, Result};

#[derive(Debug, Clone, Default)]
pub struct ExecSpec {
    pub argv: Vec<String>,
    pub timeout: Option<Duration>,
    pub stdin: Option<Vec<u8>>,
    pub env: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct ExecOutput {
    /// Exit code; -1 when killed by a signal.
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub duration: Duration,
}

/// The command as a shell-like line for messages.
pub fn display(argv: &[String]) -> String {
    argv.iter()
        .map(|a| crate::runtime::params::shell_quote(a))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Kills a command's whole process group when dropped while armed: a timeout, a cancel, an
/// error in the consumer, or the future being dropped (Ctrl-C) takes the command's children
/// with it. The command leads its own group (`process_group(0)` in [`spawn`]).
pub(crate) struct GroupKill(Option<i32>);

impl GroupKill {
    pub(crate) fn disarm(g: &mut GroupKill) {
        g.0 = None;
    }
}

impl Drop for GroupKill {
    fn drop(&mut self) {
        if let Some(pgid) = self.0.take()
            && pgid > 0
        {
            // SAFETY: kill(2) with a negative pid signals the group; no memory is involved.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
    }
}

/// Starts the command in its own process group with piped stdout and stderr, feeding `stdin`.
pub(crate) fn spawn(spec: &ExecSpec) -> Result<(tokio::process::Child, GroupKill)> {
    let (prog, args) = spec
        .argv
        .split_first()
        .ok_or_else(|| FerryError::new(ErrorKind::InvalidInput, "ferry.exec.run: empty command"))?;
    let shown = display(&spec.argv);
    let mut cmd = tokio::process::Command::new(prog);
    cmd.args(args)
        .stdin(if spec.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    #[cfg(unix)]
    cmd.process_group(0);
    for (k, v) in &spec.env {
        cmd.env(k, v);
    }
    if let Some(dir) = &spec.cwd {
        cmd.current_dir(dir);
    }
    let mut child = cmd.spawn().map_err(|e| {
        let mut fe = FerryError::io(format!("cannot start `{shown}`"), &e);
        if e.kind() == std::io::ErrorKind::NotFound {
            fe = fe.hint(format!("is `{prog}` installed and on PATH?"));
        }
        fe.with("command", &shown)
    })?;
    let guard = GroupKill(child.id().map(|p| p as i32));
    if let Some(input) = spec.stdin.clone()
        && let Some(mut pipe) = child.stdin.take()
    {
        tokio::spawn(async move {
            let _ = pipe.write_all(&input).await;
            let _ = pipe.shutdown().await;
        });
    }
    Ok((child, guard))
}

pub(crate) fn timed_out(shown: &str, timeout: Duration) -> FerryError {
    FerryError::new(
        ErrorKind::Timeout,
        format!(
            "`{shown}` did not finish within {:.1}s and was killed",
            timeout.as_secs_f64()
        ),
    )
    .with("command", shown)
}

pub(crate) fn interrupted(shown: &str) -> FerryError {
    FerryError::new(
        ErrorKind::Cancelled,
        format!("interrupted while running `{shown}`"),
    )
}

/// Runs the command to its end and returns all of its output.
pub async fn run(spec: &ExecSpec, cancel: &CancellationToken) -> Result<ExecOutput> {
    let shown = display(&spec.argv);
    let started = Instant::now();
    let (child, mut guard) = spawn(spec)?;
    let wait = child.wait_with_output();
    let timeout = spec.timeout.unwrap_or(Duration::MAX);
    let out = tokio::select! {
        r = wait => r.map_err(|e| FerryError::io(format!("running `{shown}`"), &e))?,
        _ = tokio::time::sleep(timeout) => return Err(timed_out(&shown, timeout)),
        _ = cancel.cancelled() => return Err(interrupted(&shown)),
    };
    GroupKill::disarm(&mut guard);
    Ok(ExecOutput {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: out.stderr,
        duration: started.elapsed(),
    })
}

/// The last `n` lines of output, for error messages.
pub fn tail(bytes: &[u8], n: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.trim_end().lines().collect();
    let start = lines.len().saturating_sub(n);
    lines[start..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_with_stdin_and_env_and_times_out() {
        let token = CancellationToken::new();
        let spec = ExecSpec {
            argv: vec![
                "sh".into(),
                "-c".into(),
                "cat; echo $FOO >&2; exit 3".into(),
            ],
            stdin: Some(b"hello".to_vec()),
            env: vec![("FOO".into(), "bar".into())],
            ..Default::default()
        };
        let out = run(&spec, &token).await.unwrap();
        assert_eq!(out.code, 3);
        assert_eq!(out.stdout, b"hello");
        assert_eq!(tail(&out.stderr, 5), "bar");

        let slow = ExecSpec {
            argv: vec!["sleep".into(), "5".into()],
            timeout: Some(Duration::from_millis(100)),
            ..Default::default()
        };
        assert_eq!(
            run(&slow, &token).await.unwrap_err().kind,
            ErrorKind::Timeout
        );

        let missing = ExecSpec {
            argv: vec!["/nonexistent/ferry-test-cmd".into()],
            ..Default::default()
        };
        assert_eq!(
            run(&missing, &token).await.unwrap_err().kind,
            ErrorKind::NotFound
        );
    }
}
