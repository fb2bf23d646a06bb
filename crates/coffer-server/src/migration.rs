//! Moving a data directory to another root of trust, with the server stopped
//! (`coffer operator migrate-seal`): from a dev data directory (its `root.key`), a Shamir seal or
//! a PKCS#11 token to a Shamir seal with a new root key or to a PKCS#11 token. The online root
//! rotation (`node::rotation`) uses the same steps. Every value sealed directly under the root — each vault's data key with its
//! key-encryption key, the instance keys, the token-signing keys, the audit log's checkpoint
//! key — is rewrapped; no secret, key or certificate payload changes (they are sealed under the
//! vault data keys, which stay the same), so every secret still opens and the audit chain still
//! verifies.
//!
//! A crash at any point loses nothing. The new key-encryption keys and seal file are staged
//! beside the live ones (`keys.migrating/`, `seal.migrating.json`). One store transaction
//! then swaps every rewrapped value and records the migration (`meta` `root-migration`): that
//! commit is the point of no return. After it the staged files are moved into place and the
//! old root (`root.key`, the old key files) destroyed. The server and this command both finish
//! a committed migration, or throw away an uncommitted one, before they do anything else.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use coffer_crypto::pkcs11::{Pkcs11Root, RootKey};
use coffer_crypto::root::{DevKeyFile, MemoryRoot, RootOfTrust};
use coffer_crypto::seal::DataKey;
use coffer_store::{RootWrapped, Store};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::config::{SealConfig, ServerConfig};
use crate::keyring::{instance_key_aad, vault_key_aad};
use crate::seal::SealFile;
use crate::tokens::signing_key_aad;

const MARKER: &str = "root-migration";
/// Left for the first open after a migration, which records it in the audit log.
pub const DONE_NOTE: &str = "root-migration/done";

fn staged_seal(dir: &Path) -> PathBuf {
    dir.join("seal.migrating.json")
}

fn staged_keys(dir: &Path) -> PathBuf {
    dir.join("keys.migrating")
}

/// What the committed migration still has to do on disk.
#[derive(Serialize, Deserialize)]
pub(crate) struct Marker {
    /// The staged seal file's `init_id`: the marker belongs to it.
    pub(crate) init_id: String,
    /// Whether the vault key-encryption keys were staged as files (a Shamir target).
    pub(crate) staged_keys: bool,
    /// What moved, for the audit record.
    pub(crate) description: String,
}

/// What `migrate-seal` prints, once: the new split.
#[derive(Serialize)]
pub struct Migrated {
    pub provider: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shares: Option<Vec<Zeroizing<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_shares: Option<Vec<Zeroizing<String>>>,
    pub threshold: u8,
    pub vaults: usize,
}

fn shred_dir(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_file() {
            coffer_crypto::root::shred_key_file(&path)?;
        }
    }
    Ok(std::fs::remove_dir(dir)?)
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Finishes a committed migration, or throws away one that did not commit. Run before anything
/// reads the seal.
pub async fn finish_or_roll_back(dir: &Path, store: &dyn Store) -> anyhow::Result<()> {
    let staged = SealFile::read_at(&staged_seal(dir))?;
    let marker: Option<Marker> = match store.get_meta(MARKER).await? {
        Some(bytes) => Some(serde_json::from_slice(&bytes).context("the root-migration marker")?),
        None => None,
    };
    match (staged, marker) {
        (Some(seal), Some(m)) if seal.init_id == m.init_id => {
            if m.staged_keys {
                let live = dir.join("keys");
                shred_dir(&live).with_context(|| format!("removing the old key files in {}", live.display()))?;
                std::fs::rename(staged_keys(dir), &live).context("moving the new key files into place")?;
            } else {
                shred_dir(&dir.join("keys")).context("removing the old key files")?;
            }
            std::fs::rename(staged_seal(dir), crate::seal::seal_file_path(dir)).context("the new seal file")?;
            let dev_root = dir.join("root.key");
            if dev_root.exists() {
                coffer_crypto::root::shred_key_file(&dev_root).context("destroying the dev root key")?;
            }
            sync_dir(dir)?;
            store.put_meta(DONE_NOTE, m.description.as_bytes()).await?;
            store.delete_meta(MARKER).await?;
            tracing::info!(target: "coffer::seal", "{}: finished", m.description);
        }
        (None, Some(m)) => {
            // The files were moved already; only the marker was left.
            store.put_meta(DONE_NOTE, m.description.as_bytes()).await?;
            store.delete_meta(MARKER).await?;
        }
        (staged, _) => {
            if staged.is_some() {
                std::fs::remove_file(staged_seal(dir))?;
            }
            if staged_keys(dir).exists() {
                shred_dir(&staged_keys(dir))?;
                tracing::warn!(target: "coffer::seal", "an unfinished seal migration was rolled back");
            }
        }
    }
    Ok(())
}

/// Where the data directory's root key is now.
enum Source {
    Dev(DevKeyFile),
    Shamir(MemoryRoot),
    Pkcs11(Pkcs11Root),
}

impl Source {
    fn root(&self) -> &dyn RootOfTrust {
        match self {
            Self::Dev(r) => r,
            Self::Shamir(r) => r,
            Self::Pkcs11(r) => r,
        }
    }
}

/// Moves `config.data_dir` to `config.seal`, with `current_shares` (of the Shamir seal, or
/// the recovery shares of a PKCS#11 one: a quorum authorizes the move), splitting the new key
/// `threshold` of `shares`. `from_pkcs11` is where the root is now when that is a PKCS#11
/// token (from the configuration the server ran with before).
pub async fn migrate_seal(
    config: &ServerConfig,
    from_pkcs11: Option<&crate::config::Pkcs11Config>,
    current_shares: &[Zeroizing<String>],
    (shares, threshold): (u8, u8),
) -> anyhow::Result<Migrated> {
    let (shares, threshold) = crate::seal::check_split(u32::from(shares), u32::from(threshold))
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let dir = &config.data_dir;
    anyhow::ensure!(dir.join("coffer.db").exists(), "{} holds no Coffer database", dir.display());
    let metrics = Arc::new(crate::metrics::Metrics::default());
    let store = crate::app::open_store(dir, &metrics).await?;
    finish_or_roll_back(dir, store.as_ref()).await?;

    let (source, from) = if dir.join("root.key").exists() {
        (Source::Dev(DevKeyFile::open_or_create(&dir.join("root.key"))?), "dev")
    } else {
        let seal = SealFile::read(dir)?.context("the data directory has neither a dev root key nor a seal file")?;
        let key = crate::seal::rebuild(&seal, current_shares)
            .map_err(|e| anyhow::anyhow!("the current key shares (one per line on standard input): {e}"))?;
        match seal.provider.as_str() {
            "shamir" => (Source::Shamir(MemoryRoot::new(key, dir.join("keys"), "shamir")), "shamir"),
            "pkcs11" => {
                drop(key);
                anyhow::ensure!(
                    matches!(config.seal, SealConfig::Shamir),
                    "the data directory is sealed by a PKCS#11 token already; to rotate its root key run `coffer operator rotate-root` against the running server"
                );
                let c = from_pkcs11.context(
                    "the data directory is sealed by a PKCS#11 token: give the configuration it ran with (--from-config) so the token can be opened",
                )?;
                let token = crate::seal::open_token(c, crate::seal::read_pin(c)?, RootKey::MustExist, Some(&seal))?;
                anyhow::ensure!(
                    seal.root_opens(&token)?,
                    "the token's key is not the root key this data directory was sealed with"
                );
                let inside = token.vault_key_objects()?;
                anyhow::ensure!(
                    inside == 0,
                    "{inside} keys of vaults live inside the HSM (RSA-HSM, EC-HSM, oct-HSM) and cannot leave it: purge them first, or keep the PKCS#11 seal"
                );
                (Source::Pkcs11(token), "pkcs11")
            }
            other => anyhow::bail!("the seal file names an unknown provider '{other}'"),
        }
    };

    // The new root, and the split that goes with it.
    let split_key = DataKey::generate();
    let (mut seal, texts) = SealFile::split(&split_key, shares, threshold)?;
    let (target, to, staged_files): (Arc<dyn RootOfTrust>, &str, bool) = match &config.seal {
        SealConfig::Shamir => {
            shred_dir(&staged_keys(dir))?;
            (Arc::new(MemoryRoot::new(split_key.clone(), staged_keys(dir), "shamir")), "shamir", true)
        }
        SealConfig::Pkcs11(c) => {
            let token = crate::seal::open_token(c, crate::seal::read_pin(c)?, RootKey::CreateIfMissing, None)?;
            seal = seal.with_root_check(&token)?;
            (Arc::new(token), "pkcs11", false)
        }
    };
    let old = source.root();
    let new = target.as_ref();
    let rewrapped = rewrap_all(store.as_ref(), old, new, Keks::Recreate).await?;
    let vaults = rewrapped.data_keys.len();
    let description = format!("seal migrated from {from} to {to}: {vaults} vault keys rewrapped");
    let marker = Marker { init_id: seal.init_id.clone(), staged_keys: staged_files, description };
    stage(dir, &seal, staged_files)?;
    fault_point("migration-staged");
    commit(dir, store.as_ref(), rewrapped.values, &marker).await?;
    if let Source::Pkcs11(token) = &source {
        // The old root's objects in the token open nothing now.
        for id in rewrapped.data_keys.iter().map(|(id, _)| id) {
            if let Err(e) = token.destroy_vault_kek(id) {
                tracing::warn!(target: "coffer::seal", error = %e, "an old key-encryption key stays in the token");
            }
        }
        token.destroy_root_keys().context("destroying the old root key in the token")?;
    }
    let (shares_out, recovery) = if to == "pkcs11" { (None, Some(texts)) } else { (Some(texts), None) };
    Ok(Migrated {
        provider: to.to_string(),
        shares: shares_out,
        recovery_shares: recovery,
        threshold: seal.threshold,
        vaults,
    })
}

/// Whether a change of root makes the vaults' key-encryption keys anew (another provider, or
/// Shamir's key files, sealed under the root) or keeps them (a PKCS#11 root rotated in the
/// same token: they are token objects of their own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keks {
    Recreate,
    Keep,
}

/// Everything sealed directly under the root, rewrapped; and every vault's data key (which
/// does not change), opened on the way.
pub(crate) struct Rewrapped {
    pub(crate) values: RootWrapped,
    pub(crate) data_keys: Vec<(String, DataKey)>,
}

/// Opens every value sealed directly under `old` and seals it under `new`: each vault's data
/// key (with its key-encryption key), the token-signing keys, the instance keys, the audit
/// log's checkpoint key. Nothing is written to the store.
pub(crate) async fn rewrap_all(
    store: &dyn Store,
    old: &dyn RootOfTrust,
    new: &dyn RootOfTrust,
    keks: Keks,
) -> anyhow::Result<Rewrapped> {
    let mut values = RootWrapped::default();
    let mut data_keys = Vec::new();
    for (id, wrapped) in store.wrapped_vault_keys().await? {
        let aad = vault_key_aad(&id);
        let inner = old.unwrap(&aad, &wrapped).with_context(|| format!("opening the data key of vault {id}"))?;
        let data_key = DataKey::from_bytes(
            &old.open_with_vault_kek(&id, &aad, &inner)
                .with_context(|| format!("opening the data key of vault {id} with its key-encryption key"))?,
        )?;
        let new_inner = match keks {
            Keks::Keep => inner,
            Keks::Recreate => {
                // A key left by an attempt that did not commit is replaced.
                new.destroy_vault_kek(&id)?;
                new.create_vault_kek(&id)?;
                Zeroizing::new(new.seal_with_vault_kek(&id, &aad, data_key.as_bytes())?)
            }
        };
        values.vaults.push((id.clone(), new.wrap(&aad, &new_inner)?));
        data_keys.push((id, data_key));
    }
    for tenant in store.list_tenants().await? {
        for k in store.list_signing_keys(&tenant.id).await? {
            let aad = signing_key_aad(&tenant.id, &k.kid);
            let der = old.unwrap(&aad, &k.sealed_pkcs8).with_context(|| format!("signing key {}", k.kid))?;
            values.signing_keys.push((tenant.id.clone(), k.kid.clone(), new.wrap(&aad, &der)?));
        }
    }
    for (key, wrapped) in store.list_meta("instance-key/").await? {
        let aad = instance_key_aad(&key["instance-key/".len()..]);
        let plain = old.unwrap(&aad, &wrapped).with_context(|| key.clone())?;
        values.meta.push((key, new.wrap(&aad, &plain)?));
    }
    if let Some(entry) = crate::audit::rewrap_checkpoint_key(store, old, new).await? {
        values.meta.push(entry);
    }
    Ok(Rewrapped { values, data_keys })
}

/// Writes the new seal file beside the live one (and makes the staged key files durable).
pub(crate) fn stage(dir: &Path, seal: &SealFile, staged_files: bool) -> anyhow::Result<()> {
    let json = serde_json::to_vec_pretty(seal)?;
    crate::tls::write_private(&staged_seal(dir), &json)?;
    if staged_files {
        sync_dir(&staged_keys(dir))?;
    }
    Ok(())
}

/// The point of no return: every rewrapped value and the marker in one transaction; then the
/// staged files move into place.
pub(crate) async fn commit(dir: &Path, store: &dyn Store, values: RootWrapped, marker: &Marker) -> anyhow::Result<()> {
    commit_values(store, values, marker).await?;
    fault_point("migration-committed");
    finish_or_roll_back(dir, store).await
}

/// The transaction alone: every rewrapped value and the marker.
pub(crate) async fn commit_values(store: &dyn Store, mut values: RootWrapped, marker: &Marker) -> anyhow::Result<()> {
    values.meta.push((MARKER.to_string(), serde_json::to_vec(marker)?));
    store.replace_root_wrapped(&values).await?;
    Ok(())
}

/// Where the staged key files of a Shamir target go.
pub(crate) fn staged_keys_dir(dir: &Path) -> PathBuf {
    staged_keys(dir)
}

/// Throws away staged files (a change of root that will not commit).
pub(crate) fn discard_staged(dir: &Path) -> anyhow::Result<()> {
    if staged_seal(dir).exists() {
        std::fs::remove_file(staged_seal(dir))?;
    }
    shred_dir(&staged_keys(dir))?;
    Ok(())
}

/// Test builds only: `COFFER_TEST_CRASH_AT=<point>` stops the process there at once, as a
/// `kill -9` would (no destructors, nothing flushed), so tests can stop a change of root at
/// each step.
pub(crate) fn fault_point(point: &str) {
    #[cfg(debug_assertions)]
    if std::env::var("COFFER_TEST_CRASH_AT").is_ok_and(|p| p == point) {
        eprintln!("COFFER_TEST_CRASH_AT={point}: stopping here");
        std::process::abort();
    }
    #[cfg(not(debug_assertions))]
    let _ = point;
}
