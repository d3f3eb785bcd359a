//! Kill anywhere: runs a ferry command, kills it with SIGKILL after a random delay drawn from
//! the length of an uninterrupted run, runs it again (a resume), and repeats until a run exits
//! by itself; the caller then checks the end state exactly. Seeded, so a failure replays:
//! `FERRY_KILL_SEED=<seed printed in the failure> cargo test --test it MODULE::TEST`.
//!
//! `FERRY_KILL_POINTS` sets how many kills a loop makes (the test's own count otherwise; the long
//! mode sets hundreds: `FERRY_KILL_POINTS=300 cargo test --test it kill_anywhere::`).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A small xorshift generator: the same seed gives the same kill delays.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A fraction in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The seed of this loop: `FERRY_KILL_SEED` when set, else `default`.
pub fn seed(default: u64) -> u64 {
    std::env::var("FERRY_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// How many kills: `FERRY_KILL_POINTS` when set, else `default`.
pub fn points(default: usize) -> usize {
    std::env::var("FERRY_KILL_POINTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// What one kill loop did.
#[derive(Debug, Default)]
pub struct Report {
    pub seed: u64,
    /// Runs killed before they ended.
    pub kills: usize,
    /// Runs that ended by themselves before their kill came (exit code, any).
    pub ended_early: usize,
    /// The delays of the kills, in milliseconds (for the failure message).
    pub delays_ms: Vec<u64>,
    /// The runs that were killed: their index in the order `make()` was called (0 = the first
    /// run of the loop), so a caller that gives each run its own log file can tell them apart.
    pub killed_runs: Vec<usize>,
    /// Runs that ended before their kill with an exit code other than 0: (run index, code, the
    /// end of its stderr).
    pub early_failures: Vec<(usize, i32, String)>,
    /// The uninterrupted run's length the delays were drawn from.
    pub run_length: Duration,
    /// Completed migrations ([`kill_cycles`]: runs that ended by themselves with exit 0, each
    /// followed by the caller's check and reset).
    pub cycles: usize,
    /// Exit code and stderr of the last, completing run.
    pub last_code: i32,
    pub last_stderr: String,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "seed {} (replay with FERRY_KILL_SEED={}), {} kills at {:?} ms into runs of ~{} ms, {} runs ended before their kill ({} completed cycles), {} of them failed {:?}; last run exit {}, stderr:\n{}",
            self.seed,
            self.seed,
            self.kills,
            self.delays_ms,
            self.run_length.as_millis(),
            self.ended_early,
            self.cycles,
            self.early_failures.len(),
            self.early_failures,
            self.last_code,
            tail(&self.last_stderr)
        )
    }
}

/// The last 4000 bytes of `s` (whole lines), for messages.
fn tail(s: &str) -> &str {
    if s.len() <= 4000 {
        return s;
    }
    let mut at = s.len() - 4000;
    while !s.is_char_boundary(at) {
        at += 1;
    }
    &s[at..]
}

/// A started run whose stderr is drained by a thread: a run that writes more than a pipe holds
/// must not stall (and so be killed later in its work than its delay says).
struct Run {
    child: Child,
    stderr: std::thread::JoinHandle<String>,
}

fn start(cmd: &mut Command) -> Run {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ferry starts");
    let mut pipe = child.stderr.take().expect("stderr pipe");
    let stderr = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = std::io::Read::read_to_end(&mut pipe, &mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    });
    Run { child, stderr }
}

fn stderr_of(mut run: Run) -> (i32, String) {
    let status = run.child.wait().expect("ferry finishes");
    let err = run.stderr.join().unwrap_or_default();
    (status.code().unwrap_or(-1), err)
}

/// Measures an uninterrupted run of `make()` (on a fixture of the same size that the caller then
/// throws away, or the real one when `reset` puts it back), to draw kill delays from.
pub fn run_length(make: &mut dyn FnMut() -> Command) -> (Duration, i32, String) {
    let t = Instant::now();
    let (code, err) = stderr_of(start(&mut make()));
    (t.elapsed(), code, err)
}

/// Kills runs of `make()` at random moments in [0, `length`)
/// until a run ends by itself with exit 0 (the migration is complete), then calls
/// `end_of_cycle(&report)`, which checks the end state exactly and puts the fixture back as it
/// was before the first run (so later kills land in real work again, not in runs with nothing
/// left to do). Stops once `points` kills were made and the cycle they were in has completed.
/// `report.last_code`/`last_stderr` are the completing run's when `end_of_cycle` is called.
pub fn kill_cycles(
    make: &mut dyn FnMut() -> Command,
    length: Duration,
    points: usize,
    seed: u64,
    end_of_cycle: &mut dyn FnMut(&Report),
) -> Report {
    let mut rng = Rng::new(seed);
    let mut report = Report {
        seed,
        run_length: length,
        ..Report::default()
    };
    let span = length.as_secs_f64().max(0.05);
    let mut index = 0;
    loop {
        // Once every kill is made, the run that follows is let finish.
        let delay = (report.kills < points).then(|| Duration::from_secs_f64(span * rng.unit()));
        let mut run = start(&mut make());
        let t = Instant::now();
        loop {
            if let Ok(Some(_)) = run.child.try_wait() {
                let (code, err) = stderr_of(run);
                if delay.is_some() {
                    report.ended_early += 1;
                }
                if code != 0 {
                    report
                        .early_failures
                        .push((index, code, tail(&err).to_string()));
                    assert!(
                        report.early_failures.len() < 5,
                        "runs keep failing by themselves: {report}"
                    );
                } else {
                    report.cycles += 1;
                    report.last_code = code;
                    report.last_stderr = err;
                    end_of_cycle(&report);
                    if report.kills >= points {
                        return report;
                    }
                }
                break;
            }
            if delay.is_some_and(|d| t.elapsed() >= d) {
                let _ = run.child.kill(); // SIGKILL
                let _ = stderr_of(run);
                report.kills += 1;
                report
                    .delays_ms
                    .push(delay.map_or(0, |d| d.as_millis() as u64));
                report.killed_runs.push(index);
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        index += 1;
    }
}

/// The journal of a state dir: every line whole JSON, the last entry a `run_finished` with
/// status ok, and every one of `steps` finished.
pub fn check_journal(state: &Path, steps: &[&str], r: &Report) {
    let text = std::fs::read_to_string(state.join("journal.jsonl"))
        .unwrap_or_else(|e| panic!("journal: {e}\n{r}"));
    let mut entries = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("journal line {} is not JSON ({e}): {line}\n{r}", i + 1));
        entries.push(v);
    }
    let last = entries
        .last()
        .unwrap_or_else(|| panic!("empty journal\n{r}"));
    assert!(
        last["event"] == "run_finished" && last["status"] == "ok",
        "journal ends with {last}\n{r}"
    );
    for step in steps {
        assert!(
            entries
                .iter()
                .any(|e| e["event"] == "step_finished" && e["step"] == *step),
            "journal: step {step} never finished\n{r}"
        );
    }
}

/// Whether the run whose --log-json file is `path` was inside `step` when it was killed (a
/// `step_started` without its end).
pub fn killed_in_step(path: &Path, step: &str) -> bool {
    let events = super::json_lines(path);
    let started = events
        .iter()
        .any(|e| e["event"] == "step_started" && e["step"] == step);
    let ended = events.iter().any(|e| {
        (e["event"] == "step_finished" || e["event"] == "step_failed") && e["step"] == step
    });
    started && !ended
}

impl Report {
    /// Fails the test unless the run that ended the loop exited 0.
    pub fn finished_ok(&self) {
        assert_eq!(self.last_code, 0, "the completing run failed\n{self}");
    }

    /// The loop's own figures, printed for docs/reliability.md.
    pub fn print_figures(&self, name: &str, extra: &str) {
        println!(
            "KILL FIGURES {name}: kills {} ended_early {} cycles {} early_failures {} seed {} run_ms {} {extra}",
            self.kills,
            self.ended_early,
            self.cycles,
            self.early_failures.len(),
            self.seed,
            self.run_length.as_millis()
        );
    }
}
