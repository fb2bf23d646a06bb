//! The key service's operations on whole keys: create, import, read, update, list, delete,
//! recover, purge, backup, restore, rotate and the rotation policy. Each checks the caller's
//! permission first, then works through the versioned-object machinery. The data plane renders
//! the results as Azure's JSON, the portal as HTML.
use std::sync::Arc;

use coffer_core::object::{AttributesPatch, Tags};
use coffer_core::permissions::DataAction;
use coffer_core::{Error, Result};
use coffer_crypto::keys::{JwkIn, KeyMaterial, base_kty};
use coffer_store::StoredVersion;

use super::{
    HsmSource, KIND, KeyHandle, KeyVersion, NewKey, RotationPolicy, default_ops, hsm_spec, hsm_unavailable, key_error,
    load_policy, meta_of, new_rotated_version, save_policy, store_hsm_version, store_key_version, validate_ops,
};
use crate::objects::{ObjectPatch, Objects, Page, PageRequest, VaultContext, every_page};
use crate::state::AppState;

/// A key to generate.
#[derive(Debug, Default)]
pub struct KeyToCreate {
    /// `RSA`, `EC`, `oct` (or an `-HSM` type, refused without a hardware root of trust).
    pub kty: String,
    pub key_size: Option<u32>,
    pub crv: Option<String>,
    pub public_exponent: Option<u64>,
    /// The type's defaults when not given.
    pub key_ops: Option<Vec<String>>,
    pub attributes: AttributesPatch,
    pub tags: Tags,
}

/// A key to import from a JSON Web Key (no `Debug`: the key holds its private parts).
pub struct KeyToImport {
    pub jwk: JwkIn,
    /// The type's defaults when not given.
    pub key_ops: Option<Vec<String>>,
    /// The request's `Hsm` flag: the key is to be protected by a hardware root of trust.
    pub hsm: bool,
    pub attributes: AttributesPatch,
    pub tags: Tags,
}

/// A change of a key version's operations, attributes or tags.
#[derive(Debug, Default)]
pub struct KeyChange {
    pub key_ops: Option<Vec<String>>,
    pub attributes: AttributesPatch,
    pub tags: Option<Tags>,
}

fn objects<'a>(state: &'a AppState, ctx: &'a VaultContext) -> Objects<'a> {
    Objects::new(state, ctx, KIND)
}

async fn store_new(
    state: &AppState,
    ctx: &VaultContext,
    name: &str,
    material: KeyMaterial,
    key_ops: Vec<String>,
    (attributes, tags): (AttributesPatch, Tags),
) -> Result<KeyVersion> {
    let (version, meta) =
        store_key_version(state, ctx, NewKey::unmanaged(name, &material, key_ops, attributes, tags)).await?;
    Ok(KeyVersion { version, meta, material: KeyHandle::Software(Arc::new(material)) })
}

pub async fn create(state: &AppState, ctx: &VaultContext, name: &str, new: KeyToCreate) -> Result<KeyVersion> {
    ctx.authorize(state, DataAction::KeyCreate, Some(name)).await?;
    coffer_core::names::validate_object_name(name)?;
    objects(state, ctx).refuse_if_managed(name).await?;
    if new.kty.is_empty() {
        return Err(Error::bad_parameter("The property 'kty' is required."));
    }
    let base = base_kty(&new.kty).ok_or_else(|| {
        Error::bad_parameter(format!(
            "The key type '{}' is not supported (RSA, EC, oct; RSA-HSM, EC-HSM with a PKCS#11 root).",
            coffer_core::names::printable(&new.kty)
        ))
    })?;
    let ops = new.key_ops.unwrap_or_else(|| default_ops(base));
    validate_ops(&ops)?;
    if new.kty.ends_with("-HSM") {
        if state.keyring.root().as_pkcs11().is_none() {
            return Err(hsm_unavailable(&new.kty, state.keyring.root().provider()));
        }
        let spec = hsm_spec(base, new.key_size, new.crv.as_deref(), new.public_exponent)?;
        let source = HsmSource::Generate(spec);
        return store_hsm_version(state, ctx, name, (&new.kty, source), (ops, new.attributes, new.tags)).await;
    }
    let material =
        KeyMaterial::generate(base, new.key_size, new.crv.as_deref(), new.public_exponent).map_err(key_error)?;
    store_new(state, ctx, name, material, ops, (new.attributes, new.tags)).await
}

pub async fn import(state: &AppState, ctx: &VaultContext, name: &str, new: KeyToImport) -> Result<KeyVersion> {
    ctx.authorize(state, DataAction::KeyImport, Some(name)).await?;
    coffer_core::names::validate_object_name(name)?;
    objects(state, ctx).refuse_if_managed(name).await?;
    let into_hsm = new.hsm || new.jwk.kty.ends_with("-HSM");
    if into_hsm && state.keyring.root().as_pkcs11().is_none() {
        let base = base_kty(&new.jwk.kty).unwrap_or("RSA");
        return Err(hsm_unavailable(&format!("{base}-HSM"), state.keyring.root().provider()));
    }
    // Checked as any import is (the RSA key valid, d matching x and y, AES sizes) first.
    let material = KeyMaterial::from_jwk(&new.jwk).map_err(key_error)?;
    let ops = new.key_ops.unwrap_or_else(|| default_ops(&material.kty));
    validate_ops(&ops)?;
    if into_hsm {
        let kty = format!("{}-HSM", material.kty);
        drop(material);
        let source = HsmSource::Import(&new.jwk);
        return store_hsm_version(state, ctx, name, (&kty, source), (ops, new.attributes, new.tags)).await;
    }
    store_new(state, ctx, name, material, ops, (new.attributes, new.tags)).await
}

/// Key attestation (2025-07-01): the HSM vendor's signed statement of where a key was made.
/// Coffer's software keys have none, and neither does a PKCS#11 token that offers no
/// attestation mechanism (SoftHSM): once the caller may read the key and it exists, the answer
/// says so plainly rather than 404.
pub async fn attestation(
    state: &AppState,
    ctx: &VaultContext,
    name: &str,
    version: Option<&str>,
) -> Result<std::convert::Infallible> {
    let key = get(state, ctx, name, version).await?;
    Err(Error::bad_parameter(format!(
        "Key attestation is not available for this key ({}): Coffer can attest only keys made in an HSM that offers attestation, and this Coffer's root of trust ({}) offers none.",
        key.meta.kty,
        state.keyring.root().provider()
    )))
}

/// A version (the latest with `version: None`) with its public metadata.
pub async fn get(state: &AppState, ctx: &VaultContext, name: &str, version: Option<&str>) -> Result<KeyVersion> {
    ctx.authorize(state, DataAction::KeyGet, Some(name)).await?;
    let objects = objects(state, ctx);
    let v = objects.read(name, version).await?;
    KeyVersion::open(&objects, v)
}

pub async fn update(
    state: &AppState,
    ctx: &VaultContext,
    name: &str,
    version: Option<&str>,
    change: KeyChange,
) -> Result<KeyVersion> {
    ctx.authorize(state, DataAction::KeyUpdate, Some(name)).await?;
    let objects = objects(state, ctx);
    objects.refuse_if_managed(name).await?;
    let current = objects.read(name, version).await?;
    let mut meta = meta_of(&current)?;
    if let Some(ops) = change.key_ops {
        validate_ops(&ops)?;
        meta.key_ops = ops;
    }
    let patch = ObjectPatch {
        attributes: change.attributes,
        tags: change.tags,
        content_type: None,
        meta: Some(serde_json::to_string(&meta).map_err(|e| Error::internal(e.to_string()))?),
    };
    let version = objects.update(name, Some(&current.version), &patch).await?;
    let material = super::handle_of(&objects, &current, &meta)?;
    Ok(KeyVersion { version, meta, material })
}

pub async fn list(state: &AppState, ctx: &VaultContext, page: &PageRequest) -> Result<Page> {
    ctx.authorize(state, DataAction::KeyList, None).await?;
    objects(state, ctx).list(page).await
}

pub async fn list_versions(state: &AppState, ctx: &VaultContext, name: &str, page: &PageRequest) -> Result<Page> {
    ctx.authorize(state, DataAction::KeyList, Some(name)).await?;
    objects(state, ctx).list_versions(name, page).await
}

/// Every key (latest versions), for pages that show them whole.
pub async fn list_all(state: &AppState, ctx: &VaultContext) -> Result<Vec<StoredVersion>> {
    every_page(|page| async move { list(state, ctx, &page).await }).await
}

/// Every version of a key.
pub async fn all_versions(state: &AppState, ctx: &VaultContext, name: &str) -> Result<Vec<StoredVersion>> {
    every_page(|page| async move { list_versions(state, ctx, name, &page).await }).await
}

pub async fn delete(state: &AppState, ctx: &VaultContext, name: &str) -> Result<KeyVersion> {
    ctx.authorize(state, DataAction::KeyDelete, Some(name)).await?;
    let objects = objects(state, ctx);
    objects.refuse_if_managed(name).await?;
    let v = objects.delete(name).await?;
    KeyVersion::open(&objects, v)
}

pub async fn list_deleted(state: &AppState, ctx: &VaultContext, page: &PageRequest) -> Result<Page> {
    ctx.authorize(state, DataAction::KeyList, None).await?;
    objects(state, ctx).list_deleted(page).await
}

/// Every deleted key.
pub async fn all_deleted(state: &AppState, ctx: &VaultContext) -> Result<Vec<StoredVersion>> {
    every_page(|page| async move { list_deleted(state, ctx, &page).await }).await
}

pub async fn get_deleted(state: &AppState, ctx: &VaultContext, name: &str) -> Result<KeyVersion> {
    ctx.authorize(state, DataAction::KeyGetDeleted, Some(name)).await?;
    let objects = objects(state, ctx);
    let v = objects.get_deleted(name).await?;
    KeyVersion::open(&objects, v)
}

pub async fn recover(state: &AppState, ctx: &VaultContext, name: &str) -> Result<KeyVersion> {
    ctx.authorize(state, DataAction::KeyRecover, Some(name)).await?;
    let objects = objects(state, ctx);
    let v = objects.recover(name).await?;
    KeyVersion::open(&objects, v)
}

pub async fn purge(state: &AppState, ctx: &VaultContext, name: &str) -> Result<()> {
    ctx.authorize(state, DataAction::KeyPurge, Some(name)).await?;
    let objects = objects(state, ctx);
    // The keys inside the HSM go with the versions that name them.
    let key = coffer_core::names::name_key(name);
    let at = coffer_store::ObjectRef { vault_id: &ctx.vault.id, kind: KIND, name_key: &key };
    let mut in_token = Vec::new();
    for v in state.store.all_versions(&at).await? {
        // Only `-HSM` versions are opened: a software key's material has no business here.
        if let Ok(meta) = meta_of(&v)
            && meta.kty.ends_with("-HSM")
            && let Ok(KeyHandle::Hsm(k)) = super::handle_of(&objects, &v, &meta)
        {
            in_token.push(k.label.clone());
        }
    }
    objects.purge(name).await?;
    if let Some(token) = state.keyring.root().as_pkcs11() {
        for label in in_token {
            token.destroy_key(&label)?;
        }
    }
    Ok(())
}

/// The sealed backup blob of every version.
pub async fn backup(state: &AppState, ctx: &VaultContext, name: &str) -> Result<String> {
    ctx.authorize(state, DataAction::KeyBackup, Some(name)).await?;
    objects(state, ctx).backup(name).await
}

pub async fn restore(state: &AppState, ctx: &VaultContext, blob: &str) -> Result<KeyVersion> {
    ctx.authorize(state, DataAction::KeyRestore, None).await?;
    let objects = objects(state, ctx);
    // A key inside the HSM is backed up as a reference: it restores only while the token still
    // holds it (not after a purge, not into another HSM).
    for v in objects.restorable(blob)?.versions() {
        if let Ok(meta) = meta_of(v)
            && meta.kty.ends_with("-HSM")
            && let KeyHandle::Hsm(key) = super::handle_of(&objects, v, &meta)?
        {
            // The token object belongs to one vault: a second vault's copy could purge it.
            let own = format!("{}{}-", coffer_crypto::hsm_keys::KEY_PREFIX, ctx.vault.id);
            if !key.label.starts_with(&own) {
                return Err(Error::bad_parameter(
                    "This backup is of a key inside an HSM: it restores only into the vault it came from.",
                ));
            }
            let held = match state.keyring.root().as_pkcs11() {
                Some(token) => token.hsm_has_key(&key)?,
                None => false,
            };
            if !held {
                return Err(Error::bad_parameter(
                    "This backup is of a key inside an HSM, and this Coffer's HSM does not hold it (the key was purged, or this is another HSM).",
                ));
            }
        }
    }
    let v = objects.restore(blob).await?;
    KeyVersion::open(&objects, v)
}

/// A new version now (a certificate's key rotates only by renewing its certificate).
pub async fn rotate(state: &AppState, ctx: &VaultContext, name: &str) -> Result<KeyVersion> {
    ctx.authorize(state, DataAction::KeyRotate, Some(name)).await?;
    objects(state, ctx).refuse_if_managed(name).await?;
    new_rotated_version(state, ctx, name).await
}

/// The key's rotation policy (Azure's default when none was set).
pub async fn rotation_policy(state: &AppState, ctx: &VaultContext, name: &str) -> Result<RotationPolicy> {
    ctx.authorize(state, DataAction::KeyGetRotationPolicy, Some(name)).await?;
    objects(state, ctx).read(name, None).await?;
    Ok(load_policy(state, ctx, name).await?.unwrap_or_else(RotationPolicy::default_policy))
}

/// Sets the key's rotation policy; a new policy notifies afresh.
pub async fn set_rotation_policy(
    state: &AppState,
    ctx: &VaultContext,
    name: &str,
    mut policy: RotationPolicy,
) -> Result<RotationPolicy> {
    ctx.authorize(state, DataAction::KeySetRotationPolicy, Some(name)).await?;
    let objects = objects(state, ctx);
    objects.read(name, None).await?;
    // A certificate's key rotates only by renewing the certificate (as direct rotation).
    objects.refuse_if_managed(name).await?;
    policy.validate()?;
    let now = state.clock.now();
    let previous = load_policy(state, ctx, name).await?;
    policy.attributes.created = previous.as_ref().and_then(|x| x.attributes.created).or(Some(now));
    policy.attributes.updated = Some(now);
    save_policy(state, ctx, name, &policy).await?;
    let key = coffer_core::names::name_key(name);
    let told = crate::lifetime_markers::Subject { kind: KIND, vault_id: &ctx.vault.id, name_key: &key };
    crate::lifetime_markers::forget(state, told).await?;
    Ok(policy)
}
