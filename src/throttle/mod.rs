//! Rate limiters: token buckets in units per second with a burst, shared by any number of tasks
//! (`Arc<Limiter>`), whose rate can change while work runs. Used as `throttle =` (bytes/s) and
//! `ops_throttle =` (requests/s) by the copy engine.
//!
//! Hand-written rather than `governor`: a copy acquires a whole object's bytes at once (a 256 MiB
//! part against a 50 MiB/s limit), which governor refuses as more than the burst
//! (`InsufficientCapacity`) where this bucket goes into debt and the caller sleeps it off; and a
//! timetable or `:set_rate` changes the rate while tasks wait, which a governor quota cannot
//! (a new limiter would drop the waiting tasks' place and debt).

pub mod lua;
mod timetable;

pub use timetable::Timetable;

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

struct State {
    /// Units per second; `None` is unlimited.
    rate: Option<f64>,
    burst: f64,
    /// Available tokens; negative when callers have reserved ahead (they sleep off the debt).
    tokens: f64,
    last: Instant,
}

pub struct Limiter {
    state: Mutex<State>,
}

impl Limiter {
    /// `rate` units per second (None or <= 0: unlimited); `burst` units may be taken at once.
    pub fn new(rate: Option<f64>, burst: Option<f64>) -> Limiter {
        let rate = rate.filter(|r| *r > 0.0);
        let burst = burst.unwrap_or_else(|| rate.unwrap_or(1.0)).max(1.0);
        Limiter {
            state: Mutex::new(State {
                rate,
                burst,
                tokens: burst,
                last: Instant::now(),
            }),
        }
    }

    pub fn rate(&self) -> Option<f64> {
        self.state.lock().map(|s| s.rate).unwrap_or(None)
    }

    /// Changes the rate; waiting callers pick it up on their next acquire.
    pub fn set_rate(&self, rate: Option<f64>) {
        if let Ok(mut s) = self.state.lock() {
            refill(&mut s);
            s.rate = rate.filter(|r| *r > 0.0);
            if s.tokens > s.burst {
                s.tokens = s.burst;
            }
        }
    }

    /// Takes `n` units, waiting as long as the rate requires.
    pub async fn acquire(&self, n: u64) {
        let wait = {
            let Ok(mut s) = self.state.lock() else { return };
            let Some(rate) = s.rate else { return };
            refill(&mut s);
            s.tokens -= n as f64;
            if s.tokens >= 0.0 {
                return;
            }
            Duration::from_secs_f64(-s.tokens / rate)
        };
        tokio::time::sleep(wait).await;
    }
}

fn refill(s: &mut State) {
    let now = Instant::now();
    if let Some(rate) = s.rate {
        let elapsed = now.duration_since(s.last).as_secs_f64();
        s.tokens = (s.tokens + elapsed * rate).min(s.burst);
    }
    s.last = now;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timetable_picks_the_slot_and_wraps_midnight() {
        let t = |h, m| chrono::NaiveTime::from_hms_opt(h, m, 0).unwrap();
        let tt = Timetable(vec![
            (t(8, 0), Some(512e3)),
            (t(12, 0), Some(10e6)),
            (t(23, 0), None),
        ]);
        assert_eq!(tt.at(t(9, 0)), (Some(512e3), Duration::from_secs(3 * 3600)));
        assert_eq!(tt.at(t(12, 0)).0, Some(10e6));
        assert_eq!(
            tt.at(t(23, 30)),
            (None, Duration::from_secs(8 * 3600 + 30 * 60))
        );
        assert_eq!(
            tt.at(t(2, 0)).0,
            None,
            "before the first entry, the last one still holds"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn holds_the_rate_over_many_acquires() {
        let l = Limiter::new(Some(100.0), Some(10.0));
        let start = Instant::now();
        for _ in 0..100 {
            l.acquire(10).await;
        }
        // 1000 units at 100/s with a burst of 10 take (1000 - 10) / 100 s.
        let secs = start.elapsed().as_secs_f64();
        assert!((secs - 9.9).abs() < 0.05, "{secs}");
    }

    #[tokio::test(start_paused = true)]
    async fn set_rate_applies_to_later_acquires_and_unlimited_never_waits() {
        let l = Limiter::new(Some(10.0), Some(1.0));
        l.acquire(1).await;
        l.set_rate(Some(1000.0));
        let start = Instant::now();
        for _ in 0..100 {
            l.acquire(10).await;
        }
        let secs = start.elapsed().as_secs_f64();
        assert!((secs - 1.0).abs() < 0.05, "{secs}");
        l.set_rate(None);
        let start = Instant::now();
        l.acquire(1_000_000).await;
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
