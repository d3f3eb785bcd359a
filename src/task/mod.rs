//! `ferry.task`: sleeping, spawning, bounded parallelism and polling, for Lua coroutines running
//! on the run's `LocalSet`. Everything here interleaves at awaits; nothing blocks the thread.

pub mod lua;

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::runtime::error::{ErrorKind, FerryError, Result};

/// Sleeps, returning a `Cancelled` error if the run is interrupted first.
pub async fn sleep(d: Duration, cancel: &CancellationToken) -> Result<()> {
    tokio::select! {
        _ = tokio::time::sleep(d) => Ok(()),
        _ = cancel.cancelled() => Err(FerryError::new(ErrorKind::Cancelled, "interrupted")),
    }
}

/// The delay before poll attempt `attempt` (0-based): `every × backoff^attempt`, capped.
pub fn poll_delay(every: f64, backoff: f64, max: f64, attempt: u32) -> Duration {
    let d = every * backoff.max(1.0).powi(attempt.min(64) as i32);
    crate::runtime::params::secs_to_duration(d.min(max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_delay_grows_and_caps() {
        assert_eq!(poll_delay(1.0, 1.0, 10.0, 5), Duration::from_secs(1));
        assert_eq!(poll_delay(1.0, 2.0, 10.0, 2), Duration::from_secs(4));
        assert_eq!(poll_delay(1.0, 2.0, 10.0, 9), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn sleep_stops_on_cancel() {
        let token = CancellationToken::new();
        token.cancel();
        let err = sleep(Duration::from_secs(3600), &token).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Cancelled);
    }
}
