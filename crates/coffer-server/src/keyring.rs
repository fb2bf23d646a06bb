//! Key hierarchy in use: the root of trust wraps per-vault data keys and instance keys; this
//! keeps the unwrapped ones in memory so a request does not unwrap on every call.
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use coffer_core::{Error, Result};
use coffer_crypto::root::{RootOfTrust, unwrap_data_key, wrap_data_key};
use coffer_crypto::seal::DataKey;
use coffer_store::{Store, VaultRecord};
use zeroize::Zeroizing;

#[derive(Debug)]
pub struct Keyring {
    root: Arc<dyn RootOfTrust>,
    vault_keys: RwLock<HashMap<String, DataKey>>,
    /// Held (shared) by whatever seals a new value under the root and stores it, or destroys a
    /// vault's key-encryption key; a root rotation holds it alone while it rewraps, so nothing
    /// is sealed under the old root after the rotation read it, and no purged key comes back.
    root_writes: tokio::sync::RwLock<()>,
}

/// What a vault's wrapped data key is bound to.
pub fn vault_key_aad(vault_id: &str) -> Vec<u8> {
    format!("coffer/vault-key/v1|{vault_id}").into_bytes()
}

/// What an instance key (`meta` `instance-key/NAME`) is bound to.
pub fn instance_key_aad(name: &str) -> Vec<u8> {
    format!("coffer/instance-key/v1|{name}").into_bytes()
}

impl Keyring {
    pub fn new(root: Arc<dyn RootOfTrust>) -> Self {
        Self { root, vault_keys: RwLock::new(HashMap::new()), root_writes: Default::default() }
    }

    /// Held across sealing a value under the root and storing it (see `root_writes`).
    pub async fn root_write(&self) -> tokio::sync::RwLockReadGuard<'_, ()> {
        self.root_writes.read().await
    }

    /// Held by a root rotation: no value is sealed under the root meanwhile.
    pub async fn pause_root_writes(&self) -> tokio::sync::RwLockWriteGuard<'_, ()> {
        self.root_writes.write().await
    }

    /// Keeps a vault's data key opened elsewhere (a root rotation opens them all).
    pub fn remember_vault_key(&self, vault_id: &str, key: DataKey) {
        if let Ok(mut cache) = self.vault_keys.write() {
            cache.insert(vault_id.to_string(), key);
        }
    }

    pub fn root(&self) -> &dyn RootOfTrust {
        self.root.as_ref()
    }

    /// A fresh data key for a new vault, and its wrapped form to store: sealed under the
    /// vault's key-encryption key (held by the root of trust, outside the store), then wrapped
    /// by the root key.
    pub fn new_vault_key(&self, vault_id: &str) -> Result<(DataKey, Vec<u8>)> {
        let aad = vault_key_aad(vault_id);
        self.root.create_vault_kek(vault_id)?;
        let key = DataKey::generate();
        let inner = self.root.seal_with_vault_kek(vault_id, &aad, key.as_bytes())?;
        let wrapped = self.root.wrap(&aad, &inner)?;
        Ok((key, wrapped))
    }

    /// The data key of a vault, unwrapped once and then cached.
    pub fn vault_key(&self, rec: &VaultRecord) -> Result<DataKey> {
        if let Ok(cache) = self.vault_keys.read()
            && let Some(k) = cache.get(&rec.vault.id)
        {
            return Ok(k.clone());
        }
        let aad = vault_key_aad(&rec.vault.id);
        let unwrap = || -> std::result::Result<DataKey, coffer_crypto::CryptoError> {
            let inner = self.root.unwrap(&aad, &rec.wrapped_key)?;
            DataKey::from_bytes(&self.root.open_with_vault_kek(&rec.vault.id, &aad, &inner)?)
        };
        let key = unwrap().map_err(|e| match e {
            coffer_crypto::CryptoError::Unavailable(_) => Error::from(e),
            e => Error::internal(format!("unwrapping the data key of vault {}: {e}", rec.vault.name)),
        })?;
        if let Ok(mut cache) = self.vault_keys.write() {
            cache.insert(rec.vault.id.clone(), key.clone());
        }
        Ok(key)
    }

    /// Drops every unwrapped vault key (at seal).
    pub fn forget_all(&self) {
        if let Ok(mut cache) = self.vault_keys.write() {
            cache.clear();
        }
    }

    /// Crypto-shredding on purge: forgets the cached data key and destroys the vault's
    /// key-encryption key, so no copy of the store can be opened again.
    pub fn shred_vault(&self, vault_id: &str) -> Result<()> {
        if let Ok(mut cache) = self.vault_keys.write() {
            cache.remove(vault_id);
        }
        Ok(self.root.destroy_vault_kek(vault_id)?)
    }

    /// An instance-wide key (e.g. for backup blobs), created on first use.
    pub async fn instance_key(&self, store: &dyn Store, name: &str) -> Result<DataKey> {
        let meta_key = format!("instance-key/{name}");
        let wrapped = match store.get_meta(&meta_key).await? {
            Some(w) => w,
            None => {
                let _root_write = self.root_write().await;
                let fresh = wrap_data_key(self.root.as_ref(), &instance_key_aad(name), &DataKey::generate())?;
                store.put_meta_if_absent(&meta_key, &fresh).await?
            }
        };
        Ok(unwrap_data_key(self.root.as_ref(), &instance_key_aad(name), &wrapped)?)
    }

    /// Seals small secrets (signing keys) directly under the root of trust.
    pub fn seal_with_root(&self, aad: &[u8], data: &[u8]) -> Result<Vec<u8>> {
        Ok(self.root.wrap(aad, data)?)
    }

    pub fn open_with_root(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        Ok(self.root.unwrap(aad, sealed)?)
    }
}
