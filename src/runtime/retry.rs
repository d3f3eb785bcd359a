//! The one retry delay of ferry: exponential backoff with jitter. Every primitive that retries
//! (store copies, HTTP requests, SQL reads and copy batches, the GCS client) takes its delays
//! from a [`Backoff`]; they differ only in where the doubling starts and where it stops.

use std::time::Duration;

/// Delays `base`, 2 x `base`, 4 x `base`, ... (attempt 1, 2, 3, ...), each plus a random
/// fraction of up to half of itself (so clients that failed together do not retry together),
/// never more than `cap`.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Backoff {
    pub const fn millis(base: u64, cap: u64) -> Backoff {
        Backoff {
            base: Duration::from_millis(base),
            cap: Duration::from_millis(cap),
        }
    }

    /// The delay before retry number `attempt` (1 for the first retry; 0 counts as 1).
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let jitter_ms = random_below(exp.as_millis() as u64 / 2 + 1);
        (exp + Duration::from_millis(jitter_ms)).min(self.cap)
    }
}

/// Object transfers (ferry.store.copy).
pub const STORE: Backoff = Backoff::millis(400, 10_000);
/// HTTP requests (ferry.http), unless the server says when (Retry-After).
pub const HTTP: Backoff = Backoff::millis(500, 30_000);
/// SQL reads and copy_table batches after a dropped connection or a timeout.
pub const SQL: Backoff = Backoff::millis(200, 10_000);
/// GCS requests and resumable-session status checks (ferry's own GCS client).
pub const GCS: Backoff = Backoff::millis(100, 5_000);

/// A xorshift per thread, seeded from the clock: jitter only, nothing that needs to be secret.
pub fn random_below(bound: u64) -> u64 {
    use std::cell::Cell;
    thread_local!(static X: Cell<u64> = Cell::new(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
            | 1));
    X.with(|x| {
        let mut v = x.get();
        v ^= v << 13;
        v ^= v >> 7;
        v ^= v << 17;
        x.set(v);
        v % bound.max(1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_with_up_to_half_jitter_and_stop_at_the_cap() {
        let b = Backoff::millis(100, 1_000);
        for _ in 0..200 {
            let d1 = b.delay(1).as_millis();
            let d3 = b.delay(3).as_millis();
            assert!((100..=150).contains(&d1), "{d1}");
            assert!((400..=600).contains(&d3), "{d3}");
            assert_eq!(b.delay(30), Duration::from_millis(1_000));
        }
    }
}
