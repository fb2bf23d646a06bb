//! The key service: key versions (material sealed, public metadata beside it), the material
//! cache, rotation and rotation policies with the job that carries them out. The data plane
//! (`dataplane::keys`) renders it as Azure's JSON; certificates store their keys through it.
use std::collections::BTreeMap;
use std::sync::Arc;

use coffer_core::names::name_key;
use coffer_core::object::{AttributesPatch, ObjectKind};
use coffer_core::{Error, ErrorKind, Result};
use coffer_crypto::hsm_keys::{HsmKey, HsmKeySpec};
use coffer_crypto::keys::{JwkIn, KeyError, KeyMaterial};
use coffer_store::StoredVersion;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::events::{EventType, event_subject, job_event};
use crate::lifetime_markers::{Notice, Subject as Told, already_told, remember_told};
use crate::objects::{NewObject, Objects, PreparedVersion, VaultContext};
use crate::state::AppState;

mod crypto;
mod lifecycle;
pub use crypto::{KeyOperation, KeyOperationInput, KeyOperationOutput, perform};
pub use lifecycle::*;

pub const KIND: ObjectKind = ObjectKind::Key;
const KEY_OPS: &[&str] = &["encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey", "import", "export"];

/// The public, kind-specific metadata of a key version (stored beside the sealed material).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyMeta {
    pub kty: String,
    pub key_ops: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_size: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
}

pub fn default_ops(kty: &str) -> Vec<String> {
    let ops: &[&str] = match kty {
        "RSA" => &["encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"],
        "EC" => &["sign", "verify"],
        _ => &["encrypt", "decrypt", "wrapKey", "unwrapKey"],
    };
    ops.iter().map(|s| s.to_string()).collect()
}

pub fn validate_ops(ops: &[String]) -> Result<()> {
    for op in ops {
        if !KEY_OPS.contains(&op.as_str()) {
            return Err(Error::bad_parameter(format!(
                "'{}' is not a key operation ({}).",
                coffer_core::names::printable(op),
                KEY_OPS.join(", ")
            )));
        }
    }
    Ok(())
}

pub fn key_error(e: KeyError) -> Error {
    match e {
        KeyError::BadParameter(m) | KeyError::Failed(m) => Error::bad_parameter(m),
    }
}

/// Why an `-HSM` key type is refused without a PKCS#11 root; `provider` is the root of
/// trust's (`shamir`, `dev`).
pub fn hsm_unavailable(kty: &str, provider: &str) -> Error {
    let software = kty.trim_end_matches("-HSM");
    Error::bad_parameter(format!(
        "The key type '{kty}' needs a hardware root of trust (PKCS#11), and this Coffer's root of trust is '{provider}'. Use the software type '{software}' instead."
    ))
}

/// Where the key of a new `-HSM` version comes from.
pub(crate) enum HsmSource<'a> {
    Generate(HsmKeySpec),
    /// Material the client sent (validated), put into the token as non-extractable.
    Import(&'a JwkIn),
}

pub fn meta_of(v: &StoredVersion) -> Result<KeyMeta> {
    v.meta
        .as_deref()
        .and_then(|m| serde_json::from_str(m).ok())
        .ok_or_else(|| Error::internal(format!("key {}/{} has no metadata", v.name, v.version)))
}

/// A key version's private material, opened from its sealed payload — or, when the same
/// sealed payload was opened lately, the material already opened and parsed (see
/// `MaterialCache`).
pub fn material_of(objects: &Objects<'_>, v: &StoredVersion) -> Result<Arc<KeyMaterial>> {
    let place = format!("{}|{}|{}|{}", objects.ctx.vault.id, objects.kind.as_str(), name_key(&v.name), v.version);
    let sealed = coffer_crypto::digest::sha256(&v.payload);
    if let Some(hit) = objects.state.key_materials.get(&place, &sealed) {
        return Ok(hit);
    }
    let plain = objects.open_payload(v)?;
    let material: Arc<KeyMaterial> =
        Arc::new(serde_json::from_slice(&plain).map_err(|e| Error::internal(format!("key material: {e}")))?);
    objects.state.key_materials.put(place, sealed, material.clone());
    Ok(material)
}

/// A key version to store.
#[derive(Debug)]
pub struct NewKey<'a> {
    pub name: &'a str,
    pub material: &'a KeyMaterial,
    pub key_ops: Vec<String>,
    pub attributes: AttributesPatch,
    pub tags: BTreeMap<String, String>,
    /// A certificate's key takes the certificate's version; new if `None`.
    pub version: Option<String>,
    /// A certificate's own key.
    pub managed: bool,
}

impl<'a> NewKey<'a> {
    /// A key of its own (not a certificate's) with a new version.
    pub fn unmanaged(
        name: &'a str,
        material: &'a KeyMaterial,
        key_ops: Vec<String>,
        attributes: AttributesPatch,
        tags: BTreeMap<String, String>,
    ) -> Self {
        Self { name, material, key_ops, attributes, tags, version: None, managed: false }
    }
}

/// Stores a key version: its material sealed, its public metadata beside it.
pub async fn store_key_version(
    state: &AppState,
    ctx: &VaultContext,
    new: NewKey<'_>,
) -> Result<(StoredVersion, KeyMeta)> {
    let objects = Objects::new(state, ctx, KIND);
    let (prepared, meta) = prepare_key_version(&objects, new)?;
    Ok((objects.create_prepared(prepared).await?, meta))
}

/// A key version ready to be written: its material sealed, its public metadata beside it.
/// Certificates write theirs with the certificate (`objects::create_version_group`), with
/// the certificate's version and `managed`.
pub fn prepare_key_version(objects: &Objects<'_>, new: NewKey<'_>) -> Result<(PreparedVersion, KeyMeta)> {
    let NewKey { name, material, key_ops, attributes, tags, version, managed } = new;
    let meta =
        KeyMeta { kty: material.kty.clone(), key_ops, key_size: material.size_bits(), crv: material.crv.clone() };
    let payload = Zeroizing::new(serde_json::to_vec(material).map_err(|e| Error::internal(format!("key: {e}")))?);
    let meta_json = serde_json::to_string(&meta).map_err(|e| Error::internal(format!("key meta: {e}")))?;
    let prepared = objects.prepare(NewObject {
        name,
        payload: &payload,
        attributes,
        tags,
        content_type: None,
        managed,
        meta: Some(meta_json),
        version,
    })?;
    Ok((prepared, meta))
}

/// A key version with its public metadata and its key: what a caller of the key service gets
/// back. The private part never leaves the server (or, for `-HSM` types, the token);
/// renderers show the public part.
#[derive(Debug)]
pub struct KeyVersion {
    pub version: StoredVersion,
    pub meta: KeyMeta,
    pub material: KeyHandle,
}

/// Where a key version's private part is: opened material, or a key inside the HSM.
#[derive(Debug, Clone)]
pub enum KeyHandle {
    Software(Arc<KeyMaterial>),
    Hsm(Arc<HsmKey>),
}

impl KeyHandle {
    /// The public JWK fields (`n`, `e` or `crv`, `x`, `y`; none for `oct`).
    pub fn public_jwk(&self) -> Result<BTreeMap<String, String>> {
        match self {
            Self::Software(m) => Ok(m
                .public_jwk()
                .map_err(key_error)?
                .into_iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_string())))
                .collect()),
            Self::Hsm(k) => Ok(k.public.clone()),
        }
    }
}

impl KeyVersion {
    /// A stored version with its metadata and key opened.
    pub fn open(objects: &Objects<'_>, version: StoredVersion) -> Result<Self> {
        let meta = meta_of(&version)?;
        let material = handle_of(objects, &version, &meta)?;
        Ok(Self { version, meta, material })
    }
}

/// The key of a version: for `-HSM` types the token key its payload names, else the material.
pub fn handle_of(objects: &Objects<'_>, v: &StoredVersion, meta: &KeyMeta) -> Result<KeyHandle> {
    if meta.kty.ends_with("-HSM") {
        let plain = objects.open_payload(v)?;
        let key: HsmKey =
            serde_json::from_slice(&plain).map_err(|e| Error::internal(format!("HSM key reference: {e}")))?;
        return Ok(KeyHandle::Hsm(Arc::new(key)));
    }
    Ok(KeyHandle::Software(material_of(objects, v)?))
}

/// A new `-HSM` key version generated in (or imported into) the token, stored as a reference
/// to it. If the version cannot be stored, the token key is destroyed again.
pub(crate) async fn store_hsm_version(
    state: &AppState,
    ctx: &VaultContext,
    name: &str,
    (kty, source): (&str, HsmSource<'_>),
    (key_ops, attributes, tags): (Vec<String>, AttributesPatch, BTreeMap<String, String>),
) -> Result<KeyVersion> {
    let token =
        state.keyring.root().as_pkcs11().ok_or_else(|| hsm_unavailable(kty, state.keyring.root().provider()))?;
    let version = coffer_crypto::random::version_id();
    let label = format!("{}{}-{version}", coffer_crypto::hsm_keys::KEY_PREFIX, ctx.vault.id);
    let key = match source {
        HsmSource::Generate(spec) => token.generate_key(&label, &spec)?,
        HsmSource::Import(jwk) => token.import_key(&label, jwk)?,
    };
    let meta = KeyMeta { kty: kty.to_string(), key_ops, key_size: key.size, crv: key.crv.clone() };
    let stored = async {
        let payload = Zeroizing::new(serde_json::to_vec(&key).map_err(|e| Error::internal(e.to_string()))?);
        let meta_json = serde_json::to_string(&meta).map_err(|e| Error::internal(e.to_string()))?;
        Objects::new(state, ctx, KIND)
            .create_version(NewObject {
                name,
                payload: &payload,
                attributes,
                tags,
                content_type: None,
                managed: false,
                meta: Some(meta_json),
                version: Some(version),
            })
            .await
    }
    .await;
    match stored {
        Ok(version) => Ok(KeyVersion { version, meta, material: KeyHandle::Hsm(Arc::new(key)) }),
        Err(e) => {
            if let Err(d) = token.destroy_key(&label) {
                tracing::warn!(error = %d, "a token key whose version was not stored could not be destroyed");
            }
            Err(e)
        }
    }
}

/// What to generate in the token for an `-HSM` type.
pub(crate) fn hsm_spec(
    base: &str,
    key_size: Option<u32>,
    crv: Option<&str>,
    exponent: Option<u64>,
) -> Result<HsmKeySpec> {
    match base {
        "RSA" => {
            let bits = key_size.unwrap_or(2048);
            if ![2048, 3072, 4096].contains(&bits) {
                return Err(Error::bad_parameter("RSA-HSM keys are 2048, 3072 or 4096 bits."));
            }
            Ok(HsmKeySpec::Rsa { bits, exponent: exponent.unwrap_or(65537) })
        }
        "EC" => Ok(HsmKeySpec::Ec { curve: crv.unwrap_or("P-256").to_string() }),
        _ => {
            let bits = key_size.unwrap_or(256);
            if ![128, 192, 256].contains(&bits) {
                return Err(Error::bad_parameter("oct-HSM keys are 128, 192 or 256 bits."));
            }
            Ok(HsmKeySpec::Aes { bits })
        }
    }
}

/// A key rotation policy as stored (the wire shape, minus `id`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RotationPolicy {
    #[serde(default)]
    pub lifetime_actions: Vec<LifetimeAction>,
    #[serde(default)]
    pub attributes: PolicyAttributes,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LifetimeAction {
    pub trigger: Trigger,
    pub action: ActionType,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Trigger {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_after_create: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_before_expiry: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActionType {
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyAttributes {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated: Option<i64>,
}

impl RotationPolicy {
    /// Checks a policy as a client sent it, and normalises its action names.
    pub fn validate(&mut self) -> Result<()> {
        let mut seen = (0, 0);
        for a in &mut self.lifetime_actions {
            a.action.kind = match a.action.kind.to_ascii_lowercase().as_str() {
                "rotate" => {
                    seen.0 += 1;
                    "Rotate".into()
                }
                "notify" => {
                    seen.1 += 1;
                    "Notify".into()
                }
                _ => return Err(Error::bad_parameter("A lifetime action is Rotate or Notify.")),
            };
            match (&a.trigger.time_after_create, &a.trigger.time_before_expiry) {
                (Some(d), None) | (None, Some(d)) => {
                    coffer_core::duration::parse_seconds(d)?;
                }
                _ => {
                    return Err(Error::bad_parameter(
                        "A trigger has exactly one of timeAfterCreate and timeBeforeExpiry.",
                    ));
                }
            }
        }
        if seen.0 > 1 || seen.1 > 1 {
            return Err(Error::bad_parameter("A rotation policy has at most one Rotate and one Notify action."));
        }
        if let Some(e) = &self.attributes.expiry_time
            && coffer_core::duration::parse_seconds(e)? < 28 * 86_400
        {
            return Err(Error::bad_parameter("expiryTime must be at least 28 days (P28D)."));
        }
        Ok(())
    }

    /// Azure's default when none was set: notify 30 days before expiry.
    pub fn default_policy() -> Self {
        Self {
            lifetime_actions: vec![LifetimeAction {
                trigger: Trigger { time_after_create: None, time_before_expiry: Some("P30D".into()) },
                action: ActionType { kind: "Notify".into() },
            }],
            attributes: PolicyAttributes::default(),
        }
    }
}

pub async fn load_policy(state: &AppState, ctx: &VaultContext, name: &str) -> Result<Option<RotationPolicy>> {
    let key = coffer_core::names::name_key(name);
    let at = coffer_store::ObjectRef { vault_id: &ctx.vault.id, kind: KIND, name_key: &key };
    match state.store.get_object_policy(&at).await? {
        Some(json) => {
            Ok(Some(serde_json::from_str(&json).map_err(|e| Error::internal(format!("rotation policy: {e}")))?))
        }
        None => Ok(None),
    }
}

pub async fn save_policy(state: &AppState, ctx: &VaultContext, name: &str, p: &RotationPolicy) -> Result<()> {
    let key = coffer_core::names::name_key(name);
    let at = coffer_store::ObjectRef { vault_id: &ctx.vault.id, kind: KIND, name_key: &key };
    let json = serde_json::to_string(p).map_err(|e| Error::internal(e.to_string()))?;
    if !state.store.set_object_policy(&at, Some(&json)).await? {
        return Err(KIND.not_found(name));
    }
    Ok(())
}

/// A new version of the same type, size or curve and operations; with the policy's
/// `expiryTime`, the new version expires that long after now. Old versions keep working.
pub(crate) async fn new_rotated_version(state: &AppState, ctx: &VaultContext, name: &str) -> Result<KeyVersion> {
    let objects = Objects::new(state, ctx, KIND);
    let current = objects.read(name, None).await?;
    let meta = meta_of(&current)?;
    let now = state.clock.now();
    let expiry = match load_policy(state, ctx, name).await?.and_then(|p| p.attributes.expiry_time) {
        Some(e) => Some(Some(now + coffer_core::duration::parse_seconds(&e)?)),
        None => None,
    };
    let attrs = AttributesPatch { enabled: Some(true), not_before: None, expires: expiry };
    if meta.kty.ends_with("-HSM") {
        let base = coffer_crypto::keys::base_kty(&meta.kty).unwrap_or("RSA");
        let spec = hsm_spec(base, meta.key_size, meta.crv.as_deref(), None)?;
        let kty = meta.kty.clone();
        return store_hsm_version(
            state,
            ctx,
            &current.name,
            (&kty, HsmSource::Generate(spec)),
            (meta.key_ops, attrs, current.tags.clone()),
        )
        .await;
    }
    let material = KeyMaterial::generate(&meta.kty, meta.key_size, meta.crv.as_deref(), None).map_err(key_error)?;
    let (version, meta) = store_key_version(
        state,
        ctx,
        NewKey::unmanaged(&current.name, &material, meta.key_ops, attrs, current.tags.clone()),
    )
    .await?;
    Ok(KeyVersion { version, meta, material: KeyHandle::Software(Arc::new(material)) })
}

/// The background part of rotation policies: rotates keys whose Rotate trigger has come and
/// records Notify events. Returns how many keys were rotated. One key that fails (its policy
/// unreadable, its vault's store briefly down) is logged and does not stop the others, as
/// for certificates.
pub async fn run_rotation_policies(state: &AppState) -> Result<usize> {
    let mut rotated = 0;
    for (vault_name, name_key) in state.store.objects_with_policy(KIND).await? {
        match carry_out_rotation_policy(state, &vault_name, &name_key).await {
            Ok(n) => rotated += n,
            Err(e) => tracing::warn!(vault = %vault_name, key = %name_key, error = %e, "key rotation policy failed"),
        }
    }
    Ok(rotated)
}

/// Applies one key's rotation policy: how many new versions it made (0 or 1).
async fn carry_out_rotation_policy(state: &AppState, vault_name: &str, name_key: &str) -> Result<usize> {
    let now = state.clock.now();
    let mut rotated = 0;
    let Some(ctx) = crate::system::system_context(state, vault_name).await? else { return Ok(0) };
    let Some(policy) = load_policy(state, &ctx, name_key).await? else { return Ok(0) };
    let current = match Objects::new(state, &ctx, KIND).read(name_key, None).await {
        Ok(v) => v,
        Err(e) if e.kind == ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    // A certificate's key renews with its certificate; a policy put on it before such
    // policies were refused is ignored, or the certificate could no longer renew.
    if current.managed {
        return Ok(0);
    }
    let due = |t: &Trigger| -> Result<bool> {
        Ok(match (&t.time_after_create, &t.time_before_expiry) {
            (Some(d), _) => current.attributes.created + coffer_core::duration::parse_seconds(d)? <= now,
            (_, Some(d)) => current
                .attributes
                .expires
                .is_some_and(|e| e - coffer_core::duration::parse_seconds(d).unwrap_or(0) <= now),
            _ => false,
        })
    };
    for action in policy.lifetime_actions.clone() {
        if !due(&action.trigger)? {
            continue;
        }
        if action.action.kind == "Rotate" {
            let new = new_rotated_version(state, &ctx, &current.name).await?;
            rotated += 1;
            let version = &new.version.version;
            let subject = event_subject(state, &ctx, KIND, &current, version, "rotation policy: Rotate".into());
            job_event(state, Some("KeyRotate"), EventType::NewVersionCreated, &subject).await?;
        } else {
            let told = Told { kind: KIND, vault_id: &ctx.vault.id, name_key };
            if !already_told(state, told, Notice::Notified, &current.version).await? {
                let subject =
                    event_subject(state, &ctx, KIND, &current, &current.version, "rotation policy: Notify".into());
                job_event(state, None, EventType::NearExpiry, &subject).await?;
                remember_told(state, told, Notice::Notified, &current.version).await?;
            }
        }
    }
    Ok(rotated)
}
