//! Portal sessions: a random id in a `__Host-` cookie (Secure, HttpOnly, SameSite=Strict, no
//! Domain: only this host), the server keeping only its SHA-256 with the principal, a CSRF token
//! and the times. Sessions end on sign-out, after 15 idle minutes and after 8 hours, and a
//! disabled or deleted principal loses its session at the next request (the caller is
//! resolved again every time). Kept in memory: one node's sessions, gone on restart.
use std::collections::HashMap;
use std::sync::Mutex;

use axum::http::HeaderMap;
use zeroize::Zeroizing;

pub const COOKIE: &str = "__Host-coffer-session";
/// The login form's double-submit token (before there is a session).
pub const LOGIN_COOKIE: &str = "__Host-coffer-login";
pub const IDLE_SECONDS: i64 = 15 * 60;
pub const MAX_AGE_SECONDS: i64 = 8 * 3600;

#[derive(Debug, Clone)]
pub struct Session {
    pub object_id: String,
    pub tenant_id: String,
    /// The password credential the user signed in with: a password change or reset replaces
    /// it, and the session ends with it (as a bearer token's `cid`).
    pub credential_id: String,
    pub csrf: String,
    created: i64,
    last_seen: i64,
}

#[derive(Debug, Default)]
pub struct Sessions {
    by_hash: Mutex<HashMap<String, Session>>,
}

fn key(id: &str) -> String {
    coffer_crypto::digest::sha256_hex(id.as_bytes())
}

impl Sessions {
    /// A new session; returns the cookie value (shown to the browser only) and the session.
    pub fn create(
        &self,
        object_id: &str,
        tenant_id: &str,
        credential_id: &str,
        now: i64,
    ) -> (Zeroizing<String>, Session) {
        let id = coffer_crypto::random::client_secret();
        let s = Session {
            object_id: object_id.to_string(),
            tenant_id: tenant_id.to_string(),
            credential_id: credential_id.to_string(),
            csrf: coffer_crypto::random::client_secret().to_string(),
            created: now,
            last_seen: now,
        };
        if let Ok(mut m) = self.by_hash.lock() {
            // Forget expired sessions while here, so the map does not grow without bound.
            m.retain(|_, s| now - s.last_seen < IDLE_SECONDS && now - s.created < MAX_AGE_SECONDS);
            m.insert(key(&id), s.clone());
        }
        (id, s)
    }

    /// The live session of a cookie value, touched; `None` if unknown or expired.
    pub fn get(&self, id: &str, now: i64) -> Option<Session> {
        let mut m = self.by_hash.lock().ok()?;
        let k = key(id);
        let live = m.get(&k).is_some_and(|s| now - s.last_seen < IDLE_SECONDS && now - s.created < MAX_AGE_SECONDS);
        if !live {
            m.remove(&k);
            return None;
        }
        let s = m.get_mut(&k)?;
        s.last_seen = now;
        Some(s.clone())
    }

    pub fn remove(&self, id: &str) {
        if let Ok(mut m) = self.by_hash.lock() {
            m.remove(&key(id));
        }
    }
}

/// A cookie's value from the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// `Set-Cookie` for a `__Host-` cookie; `max_age` 0 deletes it.
pub fn set_cookie(name: &str, value: &str, max_age: Option<i64>) -> String {
    let age = max_age.map(|a| format!("; Max-Age={a}")).unwrap_or_default();
    format!("{name}={value}; Path=/; Secure; HttpOnly; SameSite=Strict{age}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_when_idle_or_old_and_end_on_removal() {
        let s = Sessions::default();
        let (id, session) = s.create("o", "t", "c", 1000);
        assert_eq!(s.get(&id, 1000 + IDLE_SECONDS - 1).map(|x| x.csrf), Some(session.csrf.clone()));
        // Each use restarts the idle clock, but not the absolute one.
        let mut t = 1000;
        while t < 1000 + MAX_AGE_SECONDS - IDLE_SECONDS {
            t += IDLE_SECONDS - 1;
            assert!(s.get(&id, t).is_some());
        }
        assert!(s.get(&id, 1000 + MAX_AGE_SECONDS).is_none(), "eight hours at most");
        let (id2, _) = s.create("o", "t", "c", 5000);
        assert!(s.get(&id2, 5000 + IDLE_SECONDS).is_none(), "fifteen idle minutes end it");
        let (id3, _) = s.create("o", "t", "c", 6000);
        s.remove(&id3);
        assert!(s.get(&id3, 6000).is_none());
        assert!(s.get("forged", 6000).is_none());
    }

    #[test]
    fn cookies_are_host_only_and_strict() {
        let c = set_cookie(COOKIE, "abc", None);
        assert!(c.starts_with("__Host-coffer-session=abc; Path=/; Secure; HttpOnly; SameSite=Strict"));
        let mut h = HeaderMap::new();
        h.insert(axum::http::header::COOKIE, "a=1; __Host-coffer-session=xyz".parse().expect("header"));
        assert_eq!(cookie(&h, COOKIE), Some("xyz"));
        assert_eq!(cookie(&h, "b"), None);
    }
}
