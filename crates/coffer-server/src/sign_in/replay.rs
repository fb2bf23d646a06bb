//! Client assertions are single-use: each `jti` is remembered until the assertion expires, so a
//! captured assertion cannot be redeemed again within its lifetime.
use std::collections::HashMap;
use std::sync::Mutex;

/// Assertions remembered at most; an assertion lives at most an hour, so this is a burst of
/// more than 25 sign-ins a second for an hour. Past it new assertions are refused (fail closed).
const MAX_REMEMBERED: usize = 100_000;

#[derive(Debug, Default)]
pub struct SeenAssertions {
    /// `client_id|jti` → the assertion's `exp`.
    entries: Mutex<HashMap<String, i64>>,
}

impl SeenAssertions {
    /// True the first time an assertion of `client_id` with `jti` is offered before `exp`;
    /// false when it was seen already (a replay) or too many are remembered.
    pub fn first_use(&self, client_id: &str, jti: &str, exp: i64, now: i64) -> bool {
        let Ok(mut entries) = self.entries.lock() else { return false };
        if entries.len() >= MAX_REMEMBERED {
            entries.retain(|_, e| *e > now);
            if entries.len() >= MAX_REMEMBERED {
                return false;
            }
        }
        let key = format!("{client_id}|{jti}");
        match entries.get(&key) {
            Some(seen_until) if *seen_until > now => false,
            _ => {
                entries.insert(key, exp);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_assertion_is_accepted_once() {
        let seen = SeenAssertions::default();
        assert!(seen.first_use("app", "j1", 1_600, 1_000));
        assert!(!seen.first_use("app", "j1", 1_600, 1_001), "replayed");
        assert!(seen.first_use("app", "j2", 1_600, 1_001), "another jti");
        assert!(seen.first_use("other", "j1", 1_600, 1_001), "another client");
    }
}
