//! Throttling of failed sign-ins, per claimed principal and per caller address. A locked key is
//! refused before any credential is checked, and unknown principals are throttled exactly like
//! known ones, so the answers reveal nothing about which principals exist.
use std::collections::HashMap;
use std::sync::Mutex;

/// Failures a principal name may have within the window before it is locked.
pub const PRINCIPAL_FAILURES: u32 = 5;
/// Failures one address may have within the window (higher: an address may be shared).
pub const ADDRESS_FAILURES: u32 = 50;
pub const WINDOW_SECS: i64 = 300;
/// First lockout; each further failure while over the limit doubles it, up to `MAX_LOCK_SECS`.
pub const BASE_LOCK_SECS: i64 = 30;
pub const MAX_LOCK_SECS: i64 = 900;

#[derive(Debug, Default, Clone, Copy)]
struct Entry {
    failures: u32,
    window_start: i64,
    locked_until: i64,
}

#[derive(Debug, Default)]
pub struct Throttle {
    entries: Mutex<HashMap<String, Entry>>,
}

impl Throttle {
    /// Seconds to wait if any of `keys` is locked.
    pub fn locked_for(&self, keys: &[String], now: i64) -> Option<i64> {
        let entries = self.entries.lock().ok()?;
        keys.iter().filter_map(|k| entries.get(k)).map(|e| e.locked_until - now).filter(|s| *s > 0).max()
    }

    /// Records a failure for each key: `(key, limit)`.
    pub fn fail(&self, keys: &[(String, u32)], now: i64) {
        let Ok(mut entries) = self.entries.lock() else { return };
        for (key, limit) in keys {
            let e = entries.entry(key.clone()).or_default();
            if now - e.window_start > WINDOW_SECS {
                *e = Entry { failures: 0, window_start: now, locked_until: 0 };
            }
            e.failures += 1;
            if e.failures >= *limit {
                let over = (e.failures - limit).min(10);
                e.locked_until = now + (BASE_LOCK_SECS << over).min(MAX_LOCK_SECS);
            }
        }
        // Bound memory: drop stale entries once the map grows.
        if entries.len() > 100_000 {
            entries.retain(|_, e| now - e.window_start <= WINDOW_SECS || e.locked_until > now);
        }
    }

    /// A successful sign-in clears the principal's record (not the address's).
    pub fn succeed(&self, key: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(key);
        }
    }
}

pub fn principal_key(tenant: &str, identifier: &str) -> String {
    format!("principal:{tenant}:{}", identifier.to_ascii_lowercase())
}

pub fn address_key(addr: Option<std::net::IpAddr>) -> String {
    match addr {
        Some(a) => format!("address:{a}"),
        None => "address:unknown".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_the_limit_and_doubles() {
        let t = Throttle::default();
        let k = vec![("p".to_string(), 3)];
        for _ in 0..2 {
            t.fail(&k, 100);
        }
        assert_eq!(t.locked_for(&["p".into()], 100), None);
        t.fail(&k, 100);
        assert_eq!(t.locked_for(&["p".into()], 100), Some(BASE_LOCK_SECS));
        t.fail(&k, 101);
        assert_eq!(t.locked_for(&["p".into()], 101), Some(2 * BASE_LOCK_SECS));
        assert_eq!(t.locked_for(&["p".into()], 101 + 2 * BASE_LOCK_SECS), None);
        t.succeed("p");
        assert_eq!(t.locked_for(&["p".into()], 101), None);
    }

    #[test]
    fn the_window_resets() {
        let t = Throttle::default();
        let k = vec![("p".to_string(), 2)];
        t.fail(&k, 0);
        t.fail(&k, WINDOW_SECS + 1);
        assert_eq!(t.locked_for(&["p".into()], WINDOW_SECS + 1), None);
    }
}
