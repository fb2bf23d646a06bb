//! Remembered reads of the rows every data-plane request needs (its vault, the caller's
//! principal, credential and groups, and the object version it works on). These are read far
//! more often than written, and a query through the SQLite pool cost more than the rest of a
//! request's own work.
//!
//! Correctness rests on two rules. Every write to those tables invalidates after it committed
//! (`SqliteStore::write_directory` and `write_objects` return guards that do it on drop, and
//! they are the only way such writes take the write lock — but for the group commit of new
//! versions, which invalidates the versions before it releases the lock). And a read that missed stores its result only if no
//! invalidation happened since it looked (the generation it saw), so a read that raced a write
//! cannot put back the old row. The embedded store is owned by one process, so every write
//! passes through here. Entries also expire after `TTL`: should a write's commit still land
//! after its future was dropped (a client that hung up mid-request), no row stays stale longer.
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries kept per table at most, unless a memo is made smaller; a full memo starts over.
const MAX_ENTRIES: usize = 10_000;
/// How long an entry is trusted at most.
const TTL: Duration = Duration::from_secs(2);

#[derive(Debug)]
pub struct Memo<V> {
    inner: Mutex<Inner<V>>,
    capacity: usize,
}

impl<V> Default for Memo<V> {
    fn default() -> Self {
        Self::with_capacity(MAX_ENTRIES)
    }
}

#[derive(Debug)]
struct Inner<V> {
    generation: u64,
    rows: HashMap<String, (Instant, V)>,
}

impl<V> Default for Inner<V> {
    fn default() -> Self {
        Self { generation: 0, rows: HashMap::new() }
    }
}

impl<V> Memo<V> {
    pub fn with_capacity(capacity: usize) -> Self {
        Self { inner: Mutex::new(Inner::default()), capacity }
    }
}

impl<V: Clone> Memo<V> {
    /// The remembered value, or the generation to hand back to `put` after reading the store.
    pub fn get(&self, key: &str) -> Result<V, u64> {
        match self.inner.lock() {
            Ok(inner) => match inner.rows.get(key) {
                Some((stored, value)) if stored.elapsed() < TTL => Ok(value.clone()),
                _ => Err(inner.generation),
            },
            // A poisoned memo is never trusted: the generation cannot match again.
            Err(_) => Err(u64::MAX),
        }
    }

    /// Remembers a value read from the store, unless the table changed since `generation`.
    pub fn put(&self, generation: u64, key: &str, value: V) {
        if let Ok(mut inner) = self.inner.lock()
            && inner.generation == generation
        {
            if inner.rows.len() >= self.capacity {
                inner.rows.clear();
            }
            inner.rows.insert(key.to_string(), (Instant::now(), value));
        }
    }

    pub fn invalidate(&self) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.generation += 1;
            inner.rows.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_that_raced_a_write_is_not_remembered() {
        let memo = Memo::<u32>::default();
        let seen = memo.get("a").unwrap_err();
        memo.invalidate(); // a write committed while the read was in flight
        memo.put(seen, "a", 1);
        assert_eq!(memo.get("a"), Err(seen + 1));
        memo.put(seen + 1, "a", 2);
        assert_eq!(memo.get("a"), Ok(2));
        memo.invalidate();
        assert!(memo.get("a").is_err());
    }
}
