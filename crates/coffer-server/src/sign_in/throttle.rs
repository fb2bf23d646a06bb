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
    fn wait<'a>(entries: &HashMap<String, Entry>, keys: impl Iterator<Item = &'a str>, now: i64) -> Option<i64> {
        keys.filter_map(|k| entries.get(k)).map(|e| e.locked_until - now).filter(|s| *s > 0).max()
    }

    /// Reserves one sign-in attempt for `keys` (`(key, limit)`): `Err(seconds)` if any key is
    /// locked, else the attempt is counted as a failure *before* the credential is checked, in
    /// the same critical section as the lock check. Concurrent attempts therefore cannot all
    /// pass the check before the first of them fails: the limit-th reservation locks the key.
    /// A sign-in that then succeeds gives its reservation back (`Attempt::succeeded`).
    fn reserve(&self, keys: &[(String, u32)], now: i64) -> Result<(), i64> {
        let Ok(mut entries) = self.entries.lock() else { return Err(BASE_LOCK_SECS) };
        if let Some(wait) = Self::wait(&entries, keys.iter().map(|(k, _)| k.as_str()), now) {
            return Err(wait);
        }
        Self::count_failure(&mut entries, keys, now);
        Ok(())
    }

    fn count_failure(entries: &mut HashMap<String, Entry>, keys: &[(String, u32)], now: i64) {
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

    /// Reserves a sign-in attempt for a claimed principal from an address (see `reserve`):
    /// `Err(seconds)` while either is locked.
    pub fn begin(&self, principal: String, address: String, now: i64) -> Result<Attempt<'_>, i64> {
        self.reserve(&[(principal.clone(), PRINCIPAL_FAILURES), (address.clone(), ADDRESS_FAILURES)], now)?;
        Ok(Attempt { throttle: self, principal, address })
    }
}

/// A reserved sign-in attempt, counted as failed unless `succeeded` is called.
#[must_use]
pub struct Attempt<'a> {
    throttle: &'a Throttle,
    principal: String,
    address: String,
}

impl Attempt<'_> {
    /// The credential was right: the principal's failures are forgotten and the address's
    /// reservation is given back (a shared address is not locked by successful sign-ins).
    pub fn succeeded(self) {
        let Ok(mut entries) = self.throttle.entries.lock() else { return };
        entries.remove(&self.principal);
        if let Some(e) = entries.get_mut(&self.address) {
            e.failures = e.failures.saturating_sub(1);
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
        for _ in 0..3 {
            assert!(t.reserve(&k, 100).is_ok());
        }
        assert_eq!(t.reserve(&k, 100), Err(BASE_LOCK_SECS), "the third failure locked it");
        // Once the lock ends, one more failure within the window locks it twice as long.
        let later = 100 + BASE_LOCK_SECS;
        assert!(t.reserve(&k, later).is_ok());
        assert_eq!(t.reserve(&k, later), Err(2 * BASE_LOCK_SECS));
    }

    #[test]
    fn reservations_lock_before_any_attempt_finishes() {
        let t = Throttle::default();
        // Twelve attempts at once: each reserves before any has checked its password.
        let attempts: Vec<_> =
            (0..12).filter_map(|_| t.begin("principal:t:p".into(), "address:a".into(), 100).ok()).collect();
        assert_eq!(attempts.len(), PRINCIPAL_FAILURES as usize);
        assert!(t.begin("principal:t:p".into(), "address:a".into(), 100).is_err());
        // One of them had the right password: the principal's failures are forgotten.
        attempts.into_iter().next().expect("an attempt").succeeded();
        assert!(t.begin("principal:t:p".into(), "address:a".into(), 100).is_ok());
    }

    #[test]
    fn successful_attempts_do_not_use_up_an_address() {
        let t = Throttle::default();
        for i in 0..(ADDRESS_FAILURES * 2) {
            t.begin(format!("user{i}"), "address:a".into(), 100).expect("not locked").succeeded();
        }
        assert!(t.begin("another".into(), "address:a".into(), 100).is_ok());
    }

    #[test]
    fn the_window_resets() {
        let t = Throttle::default();
        let k = vec![("p".to_string(), 2)];
        assert!(t.reserve(&k, 0).is_ok());
        assert!(t.reserve(&k, WINDOW_SECS + 1).is_ok(), "the first failure fell out of the window");
        assert!(t.reserve(&k, WINDOW_SECS + 1).is_ok(), "the second within the window locks what follows");
        assert!(t.reserve(&k, WINDOW_SECS + 1).is_err());
    }
}
