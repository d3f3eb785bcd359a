//! Kill anywhere: runs a ferry command, kills it with SIGKILL after a random delay drawn from
//! the length of an uninterrupted run, runs it again (a resume), and repeats until a run exits
//! by itself; the caller then checks the end state exactly. Seeded, so a failure replays:
//! `FERRY_KILL_SEED=<seed printed in the failure> cargo test --test NAME`.
//!
//! `FERRY_KILL_POINTS` sets how many kills a loop makes (the test's own count otherwise; the
//! `--long` mode of tests/reliability.sh sets hundreds).

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
    /// The uninterrupted run's length the delays were drawn from.
    pub run_length: Duration,
    /// Exit code and stderr of the last, completing run.
    pub last_code: i32,
    pub last_stderr: String,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "seed {} (replay with FERRY_KILL_SEED={}), {} kills at {:?} ms into runs of ~{} ms, {} runs ended before their kill",
            self.seed,
            self.seed,
            self.kills,
            self.delays_ms,
            self.run_length.as_millis(),
            self.ended_early
        )
    }
}

fn start(cmd: &mut Command) -> Child {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ferry starts")
}

fn stderr_of(child: Child) -> (i32, String) {
    let out = child.wait_with_output().expect("ferry finishes");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Measures an uninterrupted run of `make()` (on a fixture of the same size that the caller then
/// throws away, or the real one when `reset` puts it back), to draw kill delays from.
pub fn run_length(make: &mut dyn FnMut() -> Command) -> (Duration, i32, String) {
    let t = Instant::now();
    let (code, err) = stderr_of(start(&mut make()));
    (t.elapsed(), code, err)
}

/// Kills `points` runs of `make()` at random moments in [0, `length`), then lets one run finish.
/// A run that ends before its kill counts as ended early (the next run resumes after it, or
/// finds nothing to do). `max_final` bounds the number of completing runs (a run that failed
/// by itself, exit != 0, is run again up to that many times, as an operator would).
pub fn kill_loop(
    make: &mut dyn FnMut() -> Command,
    length: Duration,
    points: usize,
    seed: u64,
) -> Report {
    let mut rng = Rng::new(seed);
    let mut report = Report {
        seed,
        run_length: length,
        ..Report::default()
    };
    let span = length.as_secs_f64().max(0.05);
    while report.kills < points {
        let delay = Duration::from_secs_f64(span * rng.unit());
        let mut child = start(&mut make());
        let t = Instant::now();
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                report.ended_early += 1;
                break;
            }
            if t.elapsed() >= delay {
                let _ = child.kill();
                let _ = child.wait();
                report.kills += 1;
                report.delays_ms.push(delay.as_millis() as u64);
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        // A loop of runs that all end before their kill cannot reach `points`: stop.
        assert!(
            report.ended_early < points * 4 + 20,
            "runs keep ending before their kill: {report}"
        );
    }
    let (code, err) = stderr_of(start(&mut make()));
    report.last_code = code;
    report.last_stderr = err;
    report
}
