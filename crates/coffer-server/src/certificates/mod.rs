//! The certificate service: the policy model (Azure's `CertificatePolicy`), the stored
//! documents (a version's chain, pending operations), writing a version with its managed key
//! and secret. Beside it: the operations (`lifecycle`), contacts and issuers (`documents`),
//! backup and restore (`backup`) and the lifetime-action job (`lifetime`). The data plane
//! (`dataplane::certificates`) renders it as Azure's JSON, the portal as HTML.
use std::collections::BTreeMap;

use coffer_core::object::{AttributesPatch, ObjectKind};
use coffer_core::{Error, Result};
use coffer_crypto::b64;
use coffer_crypto::certs::{self, CertError, Subject};
use coffer_crypto::keys::KeyMaterial;
use coffer_store::{ObjectRef, StoredVersion};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

pub use crate::keys::key_error;
use crate::keys::{NewKey, default_ops, prepare_key_version};
use crate::objects::{NewObject, Objects, VaultContext, create_version_group};
use crate::state::AppState;

mod backup;
mod documents;
mod lifecycle;
mod lifetime;
pub use backup::{backup, restore};
pub use documents::*;
pub use lifecycle::*;
pub use lifetime::run_certificate_lifetime_actions;

pub const KIND: ObjectKind = ObjectKind::Certificate;
pub const PKCS12: &str = "application/x-pkcs12";
pub const PEM: &str = "application/x-pem-file";

pub fn cert_error(e: CertError) -> Error {
    match e {
        CertError::BadParameter(m) => Error::bad_parameter(m),
    }
}

// ---- Policy (Azure's CertificatePolicy, field names as on the wire) ----

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct KeyProps {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exportable: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kty: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_size: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reuse_key: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SecretProps {
    #[serde(rename = "contentType", default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Sans {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub emails: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_names: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub upns: Vec<String>,
    #[serde(rename = "ipAddresses", default, skip_serializing_if = "Vec::is_empty")]
    pub ip_addresses: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uris: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct X509Props {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ekus: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sans: Option<Sans>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_usage: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validity_months: Option<u32>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Trigger {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifetime_percentage: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days_before_expiry: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Action {
    pub action_type: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LifetimeAction {
    pub trigger: Trigger,
    pub action: Action,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IssuerParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cty: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_transparency: Option<bool>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PolicyAttributes {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CertPolicy {
    #[serde(default)]
    pub key_props: KeyProps,
    #[serde(default)]
    pub secret_props: SecretProps,
    #[serde(default)]
    pub x509_props: X509Props,
    #[serde(default)]
    pub lifetime_actions: Vec<LifetimeAction>,
    #[serde(default)]
    pub issuer: IssuerParams,
    #[serde(default)]
    pub attributes: PolicyAttributes,
}

impl CertPolicy {
    /// Fills Key Vault's defaults and checks every field.
    pub fn normalize(&mut self, now: i64) -> Result<()> {
        let kp = &mut self.key_props;
        let kty = kp.kty.clone().unwrap_or_else(|| if kp.crv.is_some() { "EC".into() } else { "RSA".into() });
        if kty.ends_with("-HSM") {
            // A certificate's key is signed with and exported (PFX/PEM) by the server: one
            // inside the token would need the token to sign the certificate or CSR.
            return Err(Error::bad_parameter(format!(
                "Certificates with a key inside the HSM ('{kty}') are not supported by this version of Coffer; use '{}'.",
                kty.trim_end_matches("-HSM")
            )));
        }
        match kty.as_str() {
            "RSA" => {
                kp.key_size = Some(kp.key_size.unwrap_or(2048));
                kp.crv = None;
            }
            "EC" => {
                kp.crv = Some(kp.crv.clone().unwrap_or_else(|| "P-256".into()));
                kp.key_size = None;
                if kp.crv.as_deref() == Some("P-256K") {
                    return Err(Error::bad_parameter(
                        "Certificates cannot use P-256K keys; use P-256, P-384 or P-521.",
                    ));
                }
            }
            other => {
                return Err(Error::bad_parameter(format!(
                    "Certificates need RSA or EC keys; '{}' was given.",
                    coffer_core::names::printable(other)
                )));
            }
        }
        kp.kty = Some(kty);
        kp.exportable = Some(kp.exportable.unwrap_or(true));
        kp.reuse_key = Some(kp.reuse_key.unwrap_or(false));
        let ct = self.secret_props.content_type.clone().unwrap_or_else(|| PKCS12.into());
        if ct != PKCS12 && ct != PEM {
            return Err(Error::bad_parameter(format!("secret_props.contentType must be {PKCS12} or {PEM}.")));
        }
        self.secret_props.content_type = Some(ct);
        let x = &mut self.x509_props;
        x.validity_months = Some(x.validity_months.unwrap_or(12));
        if x.key_usage.is_none() {
            x.key_usage = Some(vec!["digitalSignature".into(), "keyEncipherment".into()]);
        }
        for a in &mut self.lifetime_actions {
            a.action.action_type = match a.action.action_type.to_ascii_lowercase().as_str() {
                "autorenew" => "AutoRenew".into(),
                "emailcontacts" => "EmailContacts".into(),
                _ => return Err(Error::bad_parameter("A lifetime action is AutoRenew or EmailContacts.")),
            };
            match (a.trigger.lifetime_percentage, a.trigger.days_before_expiry) {
                (Some(p), None) if (1..=99).contains(&p) => {}
                (None, Some(d)) if d >= 1 && d <= self.x509_props.validity_months.unwrap_or(12) * 27 => {}
                _ => {
                    return Err(Error::bad_parameter(
                        "A trigger has lifetime_percentage 1–99 or days_before_expiry from 1 to validity_months×27.",
                    ));
                }
            }
        }
        self.attributes.enabled = Some(self.attributes.enabled.unwrap_or(true));
        self.attributes.created = Some(self.attributes.created.unwrap_or(now));
        self.attributes.updated = Some(now);
        Ok(())
    }

    pub fn subject(&self) -> Result<Subject> {
        let x = &self.x509_props;
        let sans = x.sans.clone().unwrap_or_default();
        let subject = x
            .subject
            .clone()
            .ok_or_else(|| Error::bad_parameter("The policy needs x509_props.subject (e.g. CN=app.example)."))?;
        Ok(Subject {
            subject,
            dns_names: sans.dns_names,
            emails: sans.emails,
            upns: sans.upns,
            ip_addresses: sans.ip_addresses,
            uris: sans.uris,
            key_usage: x.key_usage.clone().unwrap_or_default(),
            ekus: x.ekus.clone().unwrap_or_default(),
            validity_months: x.validity_months.unwrap_or(12),
        })
    }

    pub fn issuer_name(&self) -> String {
        self.issuer.name.clone().unwrap_or_else(|| "Unknown".into())
    }
}

// ---- Stored documents ----

#[derive(Serialize, Deserialize)]
pub struct CertPayload {
    /// base64 DER, leaf first.
    pub chain: Vec<String>,
}

#[derive(Serialize, Deserialize)]
pub struct PendingOp {
    /// The certificate's name as given (the store key is case-folded); absent in early records.
    #[serde(default)]
    pub name: Option<String>,
    /// When the operation began (for `includePending` listings).
    #[serde(default)]
    pub created: Option<i64>,
    pub request_id: String,
    pub status: String,
    pub status_details: String,
    pub cancellation_requested: bool,
    pub issuer: String,
    pub csr: Option<String>,
    pub policy: CertPolicy,
    /// The key the CSR was made for (sealed with the whole document).
    pub key: Option<KeyMaterial>,
    pub attributes: Option<OpAttributes>,
    pub tags: BTreeMap<String, String>,
    pub error: Option<OpError>,
}

/// The attributes a create request gave, kept for the version a merge makes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OpAttributes {
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// Why an operation failed (Azure's `error` of a `CertificateOperation`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpError {
    pub code: String,
    pub message: String,
}

/// A fresh key as the policy's key properties describe it (RSA unless they say otherwise).
pub fn new_key_for(policy: &CertPolicy) -> Result<std::sync::Arc<KeyMaterial>> {
    let props = &policy.key_props;
    let key = KeyMaterial::generate(props.kty.as_deref().unwrap_or("RSA"), props.key_size, props.crv.as_deref(), None)
        .map_err(key_error)?
        .with_exportable(props.exportable.unwrap_or(true));
    Ok(std::sync::Arc::new(key))
}

pub fn op_meta_prefix(ctx: &VaultContext) -> String {
    format!("certificate-operation/{}/", ctx.vault.id)
}

pub fn op_meta_key(ctx: &VaultContext, name: &str) -> String {
    format!("{}{}", op_meta_prefix(ctx), coffer_core::names::name_key(name))
}

pub fn op_aad(ctx: &VaultContext, name: &str) -> Vec<u8> {
    format!("coffer/certificate-operation/v1|{}|{}", ctx.vault.id, coffer_core::names::name_key(name)).into_bytes()
}

pub async fn load_op(state: &AppState, ctx: &VaultContext, name: &str) -> Result<Option<PendingOp>> {
    let Some(sealed) = state.store.get_meta(&op_meta_key(ctx, name)).await? else { return Ok(None) };
    let plain = ctx
        .key
        .open(&op_aad(ctx, name), &sealed)
        .map_err(|e| Error::internal(format!("certificate operation: {e}")))?;
    serde_json::from_slice(&plain).map(Some).map_err(|e| Error::internal(format!("certificate operation: {e}")))
}

pub async fn save_op(state: &AppState, ctx: &VaultContext, name: &str, op: &PendingOp) -> Result<()> {
    let plain = Zeroizing::new(serde_json::to_vec(op).map_err(|e| Error::internal(e.to_string()))?);
    let sealed = ctx.key.seal(&op_aad(ctx, name), &plain)?;
    state.store.put_meta(&op_meta_key(ctx, name), &sealed).await
}

pub fn pending_not_found(name: &str) -> Error {
    Error::not_found("PendingCertificateNotFound", format!("Pending certificate not found: {name}"))
}

pub fn at<'a>(ctx: &'a VaultContext, kind: ObjectKind, key: &'a str) -> ObjectRef<'a> {
    ObjectRef { vault_id: &ctx.vault.id, kind, name_key: key }
}

pub async fn load_policy(state: &AppState, ctx: &VaultContext, name: &str) -> Result<Option<CertPolicy>> {
    let key = coffer_core::names::name_key(name);
    match state.store.get_object_policy(&at(ctx, KIND, &key)).await? {
        Some(j) => serde_json::from_str(&j).map(Some).map_err(|e| Error::internal(format!("certificate policy: {e}"))),
        None => Ok(None),
    }
}

pub async fn save_policy(state: &AppState, ctx: &VaultContext, name: &str, p: &CertPolicy) -> Result<()> {
    let key = coffer_core::names::name_key(name);
    let j = serde_json::to_string(p).map_err(|e| Error::internal(e.to_string()))?;
    state.store.set_object_policy(&at(ctx, KIND, &key), Some(&j)).await?;
    Ok(())
}

pub fn payload_of(objects: &Objects<'_>, v: &StoredVersion) -> Result<Vec<Vec<u8>>> {
    let plain = objects.open_payload(v)?;
    let p: CertPayload = serde_json::from_slice(&plain).map_err(|e| Error::internal(format!("certificate: {e}")))?;
    p.chain.iter().map(|c| b64::std_decode(c).ok_or_else(|| Error::internal("certificate payload"))).collect()
}

/// The public metadata of a certificate version (stored beside its chain).
#[derive(Serialize, Deserialize)]
struct VersionMeta {
    x5t: String,
}

pub fn x5t_of(v: &StoredVersion) -> String {
    v.meta.as_deref().and_then(|m| serde_json::from_str::<VersionMeta>(m).ok()).map(|m| m.x5t).unwrap_or_default()
}

/// CertificateItem.
pub async fn check_names_free(state: &AppState, ctx: &VaultContext, name: &str) -> Result<()> {
    let key = coffer_core::names::name_key(name);
    if let Some(head) = state.store.get_head(&at(ctx, KIND, &key)).await?
        && head.deletion.is_some()
    {
        return Err(KIND.deleted_but_recoverable(name));
    }
    for kind in [ObjectKind::Key, ObjectKind::Secret] {
        if let Some(head) = state.store.get_head(&at(ctx, kind, &key)).await? {
            if head.deletion.is_some() {
                return Err(kind.deleted_but_recoverable(name));
            }
            let latest = state.store.get_version(&at(ctx, kind, &key), None, false).await?;
            if latest.is_some_and(|v| !v.managed) {
                return Err(Error::conflict(
                    None,
                    format!(
                        "The name '{name}' is used by a {}; a certificate needs its name for its own key and secret.",
                        kind.as_str()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Writes one certificate version with its managed key and secret, sharing one version id.
/// A certificate about to be stored: its chain (leaf first), key, policy, and the attributes
/// and tags the client gave.
pub struct NewCertificate<'a> {
    pub chain: &'a [Vec<u8>],
    pub key: &'a KeyMaterial,
    pub policy: &'a CertPolicy,
    /// `attributes.enabled` as the client gave it (unset: enabled).
    pub enabled: Option<bool>,
    pub tags: BTreeMap<String, String>,
}

pub async fn store_certificate(
    state: &AppState,
    ctx: &VaultContext,
    name: &str,
    new: NewCertificate<'_>,
) -> Result<StoredVersion> {
    let NewCertificate { chain, key, policy, enabled, tags } = new;
    let leaf = chain.first().ok_or_else(|| Error::bad_parameter("No certificate was given."))?;
    let info = coffer_crypto::x509::parse_certificate(leaf).map_err(|e| Error::bad_parameter(e.to_string()))?;
    let version = coffer_crypto::random::version_id();
    let window =
        AttributesPatch { enabled, not_before: Some(Some(info.not_before)), expires: Some(Some(info.not_after)) };
    let ops = default_ops(&key.kty);
    let keys = Objects::new(state, ctx, ObjectKind::Key);
    let own_key = NewKey {
        name,
        material: key,
        key_ops: ops,
        attributes: window.clone(),
        tags: tags.clone(),
        version: Some(version.clone()),
        managed: true,
    };
    let (key_version, _) = prepare_key_version(&keys, own_key)?;
    let content_type = policy.secret_props.content_type.clone().unwrap_or_else(|| PKCS12.into());
    // The key's own flag, never the policy's: a policy can be changed later, the key cannot.
    let exportable = key.exportable;
    let secret_value: Zeroizing<String> = match (content_type.as_str(), exportable) {
        (PEM, true) => certs::pem_bundle(chain, key).map_err(cert_error)?,
        (PEM, false) => Zeroizing::new(chain.iter().map(|c| certs::pem_bundle_public(c)).collect()),
        (_, true) => Zeroizing::new(b64::std_encode(&certs::pfx(chain, key, "").map_err(cert_error)?)),
        (_, false) => Zeroizing::new(b64::std_encode(&certs::pfx_public(chain).map_err(cert_error)?)),
    };
    let secret_version = Objects::new(state, ctx, ObjectKind::Secret).prepare(NewObject {
        name,
        payload: secret_value.as_bytes(),
        attributes: window.clone(),
        tags: tags.clone(),
        content_type: Some(content_type),
        managed: true,
        meta: None,
        version: Some(version.clone()),
    })?;
    let payload = serde_json::to_vec(&CertPayload { chain: chain.iter().map(|c| b64::std_encode(c)).collect() })
        .map_err(|e| Error::internal(e.to_string()))?;
    let cert_version = Objects::new(state, ctx, KIND).prepare(NewObject {
        name,
        payload: &payload,
        attributes: window,
        tags,
        content_type: None,
        managed: false,
        meta: Some(serde_json::to_string(&VersionMeta { x5t: info.x5t }).map_err(|e| Error::internal(e.to_string()))?),
        version: Some(version),
    })?;
    // The three objects and the policy together, or nothing: never a managed key or secret
    // without its certificate.
    let policy = serde_json::to_string(policy).map_err(|e| Error::internal(e.to_string()))?;
    let mut stored =
        create_version_group(state, ctx, vec![key_version, secret_version, cert_version], Some(&policy)).await?;
    stored.pop().ok_or_else(|| Error::internal("the certificate version was not stored"))
}
