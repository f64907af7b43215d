//! The common time reference.
//!
//! Messages carry absolute times in Unix nanoseconds (the patent's "common time
//! reference"). Each process reads the wall clock once, at start, and from then on
//! advances with its monotonic clock, so a wall-clock step (an NTP slew) never makes
//! `now` go backwards inside a run. Across hosts the assumption is that wall clocks agree
//! to within a few milliseconds (NTP; PTP where the RAN has it). The roles tolerate small
//! skew: a time that lies already in the past is acted on at once.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use edgeshift_proto::Instant;

/// Maps this process's monotonic clock onto Unix nanoseconds.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    base: Instant,
    start: tokio::time::Instant,
}

impl Clock {
    /// Reads the wall clock once, now.
    #[must_use]
    pub fn system() -> Self {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        Self {
            base: Instant(u64::try_from(unix.as_nanos()).unwrap_or(u64::MAX)),
            start: tokio::time::Instant::now(),
        }
    }

    /// A clock whose `now` starts at `base` (tests, replays).
    #[must_use]
    pub fn starting_at(base: Instant) -> Self {
        Self {
            base,
            start: tokio::time::Instant::now(),
        }
    }

    /// The current time in the common reference.
    #[must_use]
    pub fn now(&self) -> Instant {
        self.base + self.start.elapsed()
    }

    /// The monotonic deadline at which the common-reference time `at` is reached; times in
    /// the past map to now.
    #[must_use]
    pub fn deadline(&self, at: Instant) -> tokio::time::Instant {
        let since_start = at.saturating_duration_since(self.base);
        self.start + since_start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn deadlines_follow_the_common_time() {
        let c = Clock::starting_at(Instant::from_millis(1_000));
        assert_eq!(c.now(), Instant::from_millis(1_000));
        let d = c.deadline(Instant::from_millis(1_250));
        tokio::time::sleep_until(d).await;
        assert_eq!(c.now(), Instant::from_millis(1_250));
        // The past maps to the start, which has passed: no waiting.
        assert!(c.deadline(Instant::ZERO) <= tokio::time::Instant::now());
    }
}
