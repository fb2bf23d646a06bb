//! Time is injected everywhere so that expiry, token lifetimes and retention can be tested by
//! moving a clock instead of waiting.
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// Seconds since the Unix epoch (Azure's `IntDate`).
pub type UnixTime = i64;

pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> UnixTime;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixTime {
        match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => d.as_secs() as i64,
            Err(_) => 0,
        }
    }
}

/// A clock that only moves when told to. For tests.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(start: UnixTime) -> Arc<Self> {
        Arc::new(Self(AtomicI64::new(start)))
    }
    pub fn advance(&self, seconds: i64) {
        self.0.fetch_add(seconds, Ordering::SeqCst);
    }
    pub fn set(&self, t: UnixTime) {
        self.0.store(t, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> UnixTime {
        self.0.load(Ordering::SeqCst)
    }
}

/// The real clock plus an offset that can only move forward. Dev mode exposes it so black-box
/// tests can jump past retention periods and expiry dates.
#[derive(Debug)]
pub struct OffsetClock {
    base: Arc<dyn Clock>,
    offset: AtomicI64,
}

impl OffsetClock {
    pub fn new(base: Arc<dyn Clock>) -> Arc<Self> {
        Arc::new(Self { base, offset: AtomicI64::new(0) })
    }
    /// Moves time forward by `seconds` (negative values are ignored: time never runs back).
    pub fn advance(&self, seconds: i64) -> UnixTime {
        if seconds > 0 {
            self.offset.fetch_add(seconds, Ordering::SeqCst);
        }
        self.now()
    }
    pub fn offset(&self) -> i64 {
        self.offset.load(Ordering::SeqCst)
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> UnixTime {
        self.base.now() + self.offset.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_clock_only_moves_forward() {
        let base = ManualClock::new(1_000);
        let c = OffsetClock::new(base.clone());
        assert_eq!(c.now(), 1_000);
        c.advance(50);
        c.advance(-500);
        assert_eq!(c.now(), 1_050);
        base.advance(10);
        assert_eq!(c.now(), 1_060);
    }
}
