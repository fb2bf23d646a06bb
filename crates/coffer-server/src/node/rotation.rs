//! `coffer operator rotate-root`: a new root key while the server serves. Every value sealed
//! directly under the root (each vault's data key, the instance keys, the token-signing keys,
//! the audit checkpoint key) is rewrapped, then the old root is destroyed. A quorum of the
//! current shares (with PKCS#11: the recovery shares) authorizes it.
//!
//! - **PKCS#11**: a new AES key in the token (`{key_label}-{random}`); the seal file names it
//!   from then on, and the old key is destroyed in the token. One step.
//! - **Shamir**: the shares *are* the root key, so a new key means new shares. As with a
//!   rekey, the new shares are handed out first and the rotation runs only once threshold of
//!   them are shown to rebuild the new key (`rotate-root --verify`), so no crash can leave
//!   the data sealed under a key nobody holds shares of.
//!
//! While it runs, nothing new is sealed under the root (`Keyring::pause_root_writes`: vault
//! creation, purge and signing-key rotation wait a moment); reads go on, the root opening
//! values with the new key or the one it replaces until two seconds after the commit (a request
//! that read a value just before the commit still opens it). It uses the offline
//! migration's steps (`migration`): the new seal file (and Shamir's key files) staged, one
//! store transaction as the point of no return, the files moved into place; a `kill -9`
//! anywhere is finished or rolled back at the next start.
use std::sync::Arc;
use std::sync::atomic::Ordering;

use coffer_core::Error;
use coffer_crypto::root::MemoryRoot;
use coffer_crypto::seal::DataKey;
use serde::Serialize;
use zeroize::Zeroizing;

use super::endpoints::RekeyRequest;
use super::{Node, Phase, sealed_error, share_refused, uninitialized_error};
use crate::migration::{self, Keks, Marker};
use crate::seal::SealFile;
use crate::state::SharedState;

/// How long the key a rotation replaced still opens values after the commit.
const ROTATION_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// A Shamir rotation waiting for threshold of its new shares.
pub(super) struct PendingRotation {
    key: DataKey,
    seal: SealFile,
}

/// What `coffer operator rotate-root` prints.
#[derive(Serialize)]
pub(super) struct RotateRootResponse {
    /// Shamir: the new shares (once); the rotation waits for `--verify` with them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) shares: Vec<Zeroizing<String>>,
    pub(super) threshold: u8,
    /// Whether the new root key is in use.
    pub(super) rotated: bool,
    pub(super) provider: String,
    /// Vault keys rewrapped.
    pub(super) vaults: usize,
}

fn failed(e: impl std::fmt::Display) -> Error {
    Error::unavailable("RootRotationFailed", e.to_string())
}

impl Node {
    /// The Shamir root of the open application (`None` with PKCS#11).
    fn memory_root(&self) -> Option<Arc<MemoryRoot>> {
        match &*self.phase.read().ok()? {
            Phase::Open(r) => r.root.clone(),
            _ => None,
        }
    }

    pub(super) async fn rotate_root(&self, ask: RekeyRequest) -> Result<RotateRootResponse, Error> {
        let _one = self.transition.lock().await;
        let state = self.state().ok_or_else(sealed_error)?;
        let seal = self.seal.read().ok().and_then(|s| s.clone()).ok_or_else(uninitialized_error)?;
        // A quorum authorizes it: the unseal shares, or with PKCS#11 the recovery shares.
        crate::seal::rebuild(&seal, &ask.keys).map_err(share_refused)?;
        if self.token.is_some() {
            return self.rotate_in_token(&state, seal).await;
        }
        let (shares, threshold) = crate::seal::check_split(
            ask.key_shares.unwrap_or(u32::from(seal.shares)),
            ask.key_threshold.unwrap_or(u32::from(seal.threshold)),
        )?;
        let key = DataKey::generate();
        let (next, texts) = SealFile::split(&key, shares, threshold).map_err(failed)?;
        if let Ok(mut pending) = self.pending_rotation.lock() {
            *pending = Some(PendingRotation { key, seal: next });
        }
        let why = format!("root rotation started: {threshold} of {shares} new shares, pending their verification");
        crate::system::record(&state, "OperatorRotateRoot", None, None, &why).await?;
        Ok(RotateRootResponse { shares: texts, threshold, rotated: false, provider: "shamir".into(), vaults: 0 })
    }

    /// Threshold of the new shares: the Shamir rotation runs.
    pub(super) async fn rotate_root_verify(&self, ask: RekeyRequest) -> Result<RotateRootResponse, Error> {
        let _one = self.transition.lock().await;
        let state = self.state().ok_or_else(sealed_error)?;
        let pending = self.pending_rotation.lock().ok().and_then(|mut p| p.take()).ok_or_else(|| {
            Error::bad_parameter("No root rotation is pending: run `coffer operator rotate-root` first.")
        })?;
        let rebuilt = match crate::seal::rebuild(&pending.seal, &ask.keys) {
            Ok(k) => k,
            Err(e) => {
                // Wrong shares leave the rotation pending.
                if let Ok(mut p) = self.pending_rotation.lock() {
                    *p = Some(pending);
                }
                return Err(share_refused(e));
            }
        };
        drop(rebuilt);
        let memory = self.memory_root().ok_or_else(|| failed("the server has no Shamir root in memory"))?;
        self.rotate_shamir(&state, memory, pending).await
    }

    async fn rotate_shamir(
        &self,
        state: &SharedState,
        memory: Arc<MemoryRoot>,
        pending: PendingRotation,
    ) -> Result<RotateRootResponse, Error> {
        let dir = &self.config.data_dir;
        let _paused = state.keyring.pause_root_writes().await;
        migration::discard_staged(dir).map_err(failed)?;
        // A rekey still pending split the old key: it would bring the old key back.
        let stale_rekey = crate::seal::next_seal_file_path(dir);
        if stale_rekey.exists() {
            std::fs::remove_file(&stale_rekey).map_err(failed)?;
        }
        let staged = MemoryRoot::new(pending.key.clone(), migration::staged_keys_dir(dir), "shamir");
        let rewrapped = migration::rewrap_all(self.store.as_ref(), state.keyring.root(), &staged, Keks::Recreate)
            .await
            .map_err(|e| {
                let _ = migration::discard_staged(dir);
                failed(format!("nothing changed: {e:#}"))
            })?;
        let vaults = rewrapped.data_keys.len();
        // Every vault's data key stays open in memory: no request needs a key file while the
        // files are swapped.
        for (id, key) in rewrapped.data_keys {
            state.keyring.remember_vault_key(&id, key);
        }
        let description = format!("root key rotated (shamir): {vaults} vault keys rewrapped");
        let marker =
            Marker { init_id: pending.seal.init_id.clone(), staged_keys: true, description: description.clone() };
        migration::stage(dir, &pending.seal, true).map_err(failed)?;
        migration::fault_point("rotation-staged");
        memory.begin_rotation(pending.key.clone());
        match self.commit_rotation(state, rewrapped.values, &marker, &description).await {
            Ok(()) => self.end_after_grace(move || memory.end_rotation()),
            // Committed: the new key is the root; the old one still opens the key files that
            // are moved at the next start.
            Err(e) if e.code == "RootRotationCommitted" => return Err(e),
            Err(e) => {
                memory.abort_rotation();
                return Err(e);
            }
        }
        if let Ok(mut s) = self.seal.write() {
            *s = Some(pending.seal.clone());
        }
        Ok(RotateRootResponse {
            shares: Vec::new(),
            threshold: pending.seal.threshold,
            rotated: true,
            provider: "shamir".into(),
            vaults,
        })
    }

    async fn rotate_in_token(&self, state: &SharedState, seal: SealFile) -> Result<RotateRootResponse, Error> {
        let dir = &self.config.data_dir;
        let root = state.keyring.root();
        let token = root.as_pkcs11().ok_or_else(|| failed("the root of trust is not a PKCS#11 token"))?;
        let _paused = state.keyring.pause_root_writes().await;
        migration::discard_staged(dir).map_err(failed)?;
        let next = token.create_root_key()?;
        // From here the token wraps with the new key and opens with either.
        token.begin_rotation(&next);
        let undo = |e: Error| {
            token.abort_rotation();
            let _ = migration::discard_staged(dir);
            if let Err(d) = token.destroy_other_root_keys() {
                tracing::warn!(target: "coffer::seal", error = %d, "the unused new root key stays in the token");
            }
            e
        };
        let rewrapped = migration::rewrap_all(self.store.as_ref(), root, root, Keks::Keep)
            .await
            .map_err(|e| undo(failed(format!("nothing changed: {e:#}"))))?;
        let vaults = rewrapped.data_keys.len();
        let next_seal = seal.with_root_check(root).map_err(|e| undo(failed(e)))?;
        let description = format!("root key rotated in the PKCS#11 token: {vaults} vault keys rewrapped");
        let marker =
            Marker { init_id: next_seal.init_id.clone(), staged_keys: false, description: description.clone() };
        migration::stage(dir, &next_seal, false).map_err(|e| undo(failed(e)))?;
        migration::fault_point("rotation-staged");
        match self.commit_rotation(state, rewrapped.values, &marker, &description).await {
            Ok(()) => {}
            Err(e) if e.code == "RootRotationCommitted" => return Err(e),
            Err(e) => return Err(undo(e)),
        }
        let held = state.clone();
        self.end_after_grace(move || {
            let Some(token) = held.keyring.root().as_pkcs11() else { return };
            token.end_rotation();
            // The old root key goes (if this fails, the next unseal destroys it).
            if let Err(e) = token.destroy_other_root_keys() {
                tracing::warn!(target: "coffer::seal", error = %e, "the old root key stays in the token until the next start");
            }
        });
        let threshold = next_seal.threshold;
        if let Ok(mut s) = self.seal.write() {
            *s = Some(next_seal);
        }
        Ok(RotateRootResponse { shares: Vec::new(), threshold, rotated: true, provider: "pkcs11".into(), vaults })
    }

    /// Ends a committed rotation after `ROTATION_GRACE`: until then the key it replaced still
    /// opens what a request read from the store just before the commit. Skipped if another
    /// rotation came since (its own end follows).
    fn end_after_grace(&self, end: impl FnOnce() + Send + 'static) {
        let generation = self.rotations.fetch_add(1, Ordering::SeqCst) + 1;
        let me = self.me.clone();
        tokio::spawn(async move {
            tokio::time::sleep(ROTATION_GRACE).await;
            let Some(node) = me.upgrade() else { return };
            let _one = node.transition.lock().await;
            if node.rotations.load(Ordering::SeqCst) == generation {
                end();
            }
        });
    }

    /// Commits the rewrapped values and moves the staged files; records the rotation. An error
    /// before the commit changed nothing; one after it (`RootRotationCommitted`) is finished at
    /// the next start.
    async fn commit_rotation(
        &self,
        state: &SharedState,
        values: coffer_store::RootWrapped,
        marker: &Marker,
        description: &str,
    ) -> Result<(), Error> {
        let dir = &self.config.data_dir;
        if let Err(e) = migration::commit_values(self.store.as_ref(), values, marker).await {
            let _ = migration::discard_staged(dir);
            return Err(failed(format!("nothing changed: {e:#}")));
        }
        migration::fault_point("rotation-committed");
        if let Err(e) = migration::finish_or_roll_back(dir, self.store.as_ref()).await {
            return Err(Error::unavailable(
                "RootRotationCommitted",
                format!(
                    "the new root key is in use; moving its files into place failed ({e:#}) and is done at the next start"
                ),
            ));
        }
        // Recorded here, not as the offline migration's note at the next unseal.
        self.store.delete_meta(migration::DONE_NOTE).await?;
        crate::system::record(state, "OperatorRotateRoot", None, None, description).await?;
        tracing::info!(target: "coffer::seal", "{description}");
        Ok(())
    }
}
