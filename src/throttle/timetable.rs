//! Daily rate timetables (`throttle = "08:00,512k 12:00,10M 23:00,off"`): parsing and driving a
//! limiter. The Lua side (`throttle/lua.rs`) only hands over a string or `{time, rate}` pairs.

use std::time::Duration;

use super::Limiter;
use crate::runtime::error::{ErrorKind, FerryError, Result};

/// A daily timetable of rates, like rclone's `--bwlimit "08:00,512k 12:00,10M 23:00,off"`:
/// each entry's rate holds from its time until the next entry's (wrapping past midnight).
#[derive(Debug, Clone, PartialEq)]
pub struct Timetable(pub Vec<(chrono::NaiveTime, Option<f64>)>);

impl Timetable {
    /// The rate in force at `now`, and how long until the next change.
    pub fn at(&self, now: chrono::NaiveTime) -> (Option<f64>, Duration) {
        let entries = &self.0;
        let idx = entries
            .iter()
            .rposition(|(t, _)| *t <= now)
            .unwrap_or(entries.len() - 1);
        let next = entries.get(idx + 1).unwrap_or(&entries[0]).0;
        let mut wait = next.signed_duration_since(now);
        if wait <= chrono::TimeDelta::zero() {
            wait += chrono::TimeDelta::days(1);
        }
        (
            entries[idx].1,
            wait.to_std().unwrap_or(Duration::from_secs(60)),
        )
    }

    /// Keeps `limiter` on the timetable's rate until the limiter is dropped.
    pub fn drive(self, limiter: std::sync::Weak<Limiter>) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        handle.spawn(async move {
            loop {
                let (rate, wait) = self.at(chrono::Local::now().time());
                match limiter.upgrade() {
                    Some(l) => l.set_rate(rate),
                    None => break,
                }
                // Wake at the next boundary, and at least every minute (clock changes).
                tokio::time::sleep(wait.min(Duration::from_secs(60)) + Duration::from_millis(5))
                    .await;
            }
        });
    }
}

fn bad(m: String) -> FerryError {
    FerryError::new(ErrorKind::InvalidInput, format!("timetable: {m}"))
}

fn time_of(time: &str) -> Result<chrono::NaiveTime> {
    chrono::NaiveTime::parse_from_str(time.trim(), "%H:%M")
        .map_err(|_| bad(format!("'{time}' is not a time of day (HH:MM)")))
}

/// A rate as text: a size per second ("10MiB", "512k/s"), or "off"/"unlimited" (None).
pub fn parse_rate_text(s: &str) -> Result<Option<f64>> {
    let s = s.trim();
    if s == "off" || s == "unlimited" {
        return Ok(None);
    }
    let n = crate::runtime::params::parse_size(s.trim_end_matches("/s"))
        .map_err(|m| FerryError::new(ErrorKind::InvalidInput, format!("rate: {m}")))?;
    Ok(Some(n as f64).filter(|r| *r > 0.0))
}

impl Timetable {
    /// From `(HH:MM, rate)` pairs in any order.
    pub fn from_entries(pairs: Vec<(String, Option<f64>)>) -> Result<Timetable> {
        let mut entries = Vec::with_capacity(pairs.len());
        for (time, rate) in pairs {
            entries.push((time_of(&time)?, rate));
        }
        if entries.is_empty() {
            return Err(bad("no entries".into()));
        }
        entries.sort_by_key(|e| e.0);
        Ok(Timetable(entries))
    }

    /// rclone's form: `"08:00,512k 12:00,10M 23:00,off"`.
    pub fn parse(text: &str) -> Result<Timetable> {
        let mut pairs = Vec::new();
        for part in text.split_whitespace() {
            let (time, rate) = part
                .split_once(',')
                .ok_or_else(|| bad(format!("'{part}' is not TIME,RATE")))?;
            pairs.push((time.to_string(), parse_rate_text(rate)?));
        }
        Timetable::from_entries(pairs)
    }
}
