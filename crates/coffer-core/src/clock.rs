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

/// `2026-11-29T02:24:28Z`: ARM writes dates as ISO 8601 strings (the data plane uses seconds).
pub fn iso8601(t: UnixTime) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs % 3600 / 60, secs % 60)
}

/// `2027-01-31` or `2027-01-31T12:00:00Z` as Unix seconds (UTC); `None` if it is neither.
pub fn parse_iso8601(s: &str) -> Option<UnixTime> {
    let s = s.trim();
    let (date, time) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t.strip_suffix('Z')?)),
        None => (s, None),
    };
    let mut d = date.splitn(3, '-').map(|x| x.parse::<i64>().ok());
    let (year, month, day) = (d.next()??, d.next()??, d.next()??);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || date.len() != 10 {
        return None;
    }
    let secs = match time {
        None => 0,
        Some(t) => {
            let mut p = t.splitn(3, ':').map(|x| x.parse::<i64>().ok());
            let (h, m, sec) = (p.next()??, p.next()??, p.next()??);
            if !(0..24).contains(&h) || !(0..60).contains(&m) || !(0..60).contains(&sec) {
                return None;
            }
            h * 3600 + m * 60 + sec
        }
    };
    // Days-from-civil (Howard Hinnant's algorithm), the inverse of `iso8601`.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let t = days * 86_400 + secs;
    // Reject dates that do not exist (31 February): they would not format back the same.
    (iso8601(t)[..10] == *date).then_some(t)
}

#[cfg(test)]
mod iso_tests {
    #[test]
    fn formats() {
        assert_eq!(super::iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::iso8601(1_795_920_336), "2026-11-29T02:45:36Z");
        assert_eq!(super::iso8601(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn parses_what_it_formats() {
        for t in [0, 951_782_400, 1_795_920_336, 4_102_444_800] {
            assert_eq!(super::parse_iso8601(&super::iso8601(t)), Some(t));
        }
        assert_eq!(super::parse_iso8601("2026-11-29"), Some(1_795_910_400));
        assert_eq!(super::parse_iso8601("2026-02-31"), None);
        assert_eq!(super::parse_iso8601("2026-13-01"), None);
        assert_eq!(super::parse_iso8601("tomorrow"), None);
        assert_eq!(super::parse_iso8601("2026-11-29T25:00:00Z"), None);
    }
}
