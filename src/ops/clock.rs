//! The wall clock, injected: every place that needs "now" as a date (ledger records, budget
//! periods, hold purges, default report ranges) asks a [`Clock`] it was given, never the system
//! directly, so that tests pin the date and never depend on when they run.
//!
//! Monotonic timing (timeouts, durations, pool back-off) uses `Instant` and is not a date.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Instant;

/// Unix time in milliseconds, from the system or from a test.
#[derive(Clone)]
pub struct Clock(Source);

#[derive(Clone)]
enum Source {
    System,
    Manual(Arc<AtomicI64>),
    Running { start_ms: i64, since: Instant },
}

impl Clock {
    /// The system's wall clock (what `rosetta serve` and the other commands use).
    pub fn system() -> Clock {
        Clock(Source::System)
    }

    /// A clock that stands at `ms` until [`Clock::set`] or [`Clock::advance`] moves it (tests).
    /// Clones share the same time.
    pub fn manual(ms: i64) -> Clock {
        Clock(Source::Manual(Arc::new(AtomicI64::new(ms))))
    }

    /// A clock that reads `ms` now and then runs at the real pace (monotonic): for tests whose
    /// code waits on time passing (probes, expiry) but must not depend on the date.
    pub fn running_from(ms: i64) -> Clock {
        Clock(Source::Running {
            start_ms: ms,
            since: Instant::now(),
        })
    }

    /// Now, in Unix milliseconds.
    pub fn now_ms(&self) -> i64 {
        match &self.0 {
            Source::System => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
            Source::Manual(t) => t.load(Ordering::Relaxed),
            Source::Running { start_ms, since } => start_ms + since.elapsed().as_millis() as i64,
        }
    }

    /// Moves a manual clock to `ms`; does nothing to the other kinds.
    pub fn set(&self, ms: i64) {
        if let Source::Manual(t) = &self.0 {
            t.store(ms, Ordering::Relaxed);
        }
    }

    /// Moves a manual clock forward by `ms`; does nothing to the other kinds.
    pub fn advance(&self, ms: i64) {
        if let Source::Manual(t) = &self.0 {
            t.fetch_add(ms, Ordering::Relaxed);
        }
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Source::System => f.write_str("Clock::system"),
            Source::Manual(t) => write!(f, "Clock::manual({})", t.load(Ordering::Relaxed)),
            Source::Running { start_ms, .. } => write!(f, "Clock::running_from({start_ms})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_clones_share_it() {
        let c = Clock::manual(1_795_392_000_000);
        let d = c.clone();
        assert_eq!(c.now_ms(), 1_795_392_000_000);
        d.advance(5);
        assert_eq!(c.now_ms(), 1_795_392_000_005);
        c.set(7);
        assert_eq!(d.now_ms(), 7);
        // The system clock is past 2020 and ignores set/advance.
        let s = Clock::system();
        s.set(0);
        assert!(s.now_ms() > 1_577_836_800_000);
    }

    #[test]
    fn a_running_clock_starts_where_told_and_never_goes_back() {
        let c = Clock::running_from(1_000);
        let a = c.now_ms();
        std::thread::sleep(std::time::Duration::from_millis(5));
        let b = c.now_ms();
        assert!((1_000..1_000 + 60_000).contains(&a), "{a}");
        assert!(b >= a + 5, "{a} then {b}");
    }
}
