//! Key material lately opened and parsed, kept in memory: unsealing a key version and parsing
//! it (for RSA, checking the key) cost about a third of a signature. Held in the server state;
//! the key service (`keys::material_of`) fills and reads it.
use std::sync::Arc;

use coffer_crypto::keys::KeyMaterial;

/// Key material lately used, opened and parsed, by place (vault, kind, name, version) and the
/// digest of the sealed payload it came from. Every operation still reads the version from the
/// store (attributes, `enabled`, deletion); only unsealing and parsing are saved — for RSA,
/// parsing checks the key, about a third of a signature's cost. A payload that changed (a
/// restore, a new seal) has another digest and is opened afresh; entries older than
/// `MATERIAL_TTL` are dropped, so material of a purged key does not stay in memory.
#[derive(Default)]
pub struct MaterialCache {
    entries: std::sync::Mutex<std::collections::HashMap<String, MaterialEntry>>,
}

struct MaterialEntry {
    sealed: [u8; 32],
    stored: std::time::Instant,
    material: Arc<KeyMaterial>,
}

const MATERIAL_TTL: std::time::Duration = std::time::Duration::from_secs(60);
const MATERIAL_ENTRIES: usize = 1024;

impl std::fmt::Debug for MaterialCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaterialCache").finish_non_exhaustive()
    }
}

impl MaterialCache {
    pub fn get(&self, place: &str, sealed: &[u8; 32]) -> Option<Arc<KeyMaterial>> {
        let entries = self.entries.lock().ok()?;
        let e = entries.get(place)?;
        (e.sealed == *sealed && e.stored.elapsed() < MATERIAL_TTL).then(|| e.material.clone())
    }

    /// Drops every entry (at seal).
    pub fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }

    pub fn put(&self, place: String, sealed: [u8; 32], material: Arc<KeyMaterial>) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MATERIAL_ENTRIES / 4 {
                entries.retain(|_, e| e.stored.elapsed() < MATERIAL_TTL);
            }
            if entries.len() >= MATERIAL_ENTRIES {
                entries.clear();
            }
            entries.insert(place, MaterialEntry { sealed, stored: std::time::Instant::now(), material });
        }
    }
}
