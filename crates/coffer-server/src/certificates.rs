//! The certificate service: the policy model (Azure's `CertificatePolicy`), the stored
//! documents (a version's chain, pending operations, the vault's contacts), writing a version
//! with its managed key and secret, and the lifetime-action job (AutoRenew, EmailContacts).
//! The data plane (`dataplane::certificates`) renders it as Azure's JSON.
use std::collections::BTreeMap;

use coffer_core::object::{AttributesPatch, ObjectKind};
use coffer_core::{Error, ErrorKind, Result};
use coffer_crypto::b64;
use coffer_crypto::certs::{self, CertError, Subject};
use coffer_crypto::keys::KeyMaterial;
use coffer_store::{ObjectRef, StoredVersion};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::events::{EventType, event_subject, job_event};
pub use crate::keys::key_error;
use crate::keys::{NewKey, default_ops, material_of, prepare_key_version};
use crate::lifetime_markers::{Notice, Subject as Told, already_told, remember_told};
use crate::objects::{NewObject, Objects, VaultContext, create_version_group};
use crate::state::AppState;

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
            return Err(Error::bad_parameter(format!(
                "The key type '{kty}' needs a hardware root of trust (PKCS#11), and this Coffer has none configured."
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
    pub attributes: Option<Value>,
    pub tags: BTreeMap<String, String>,
    pub error: Option<Value>,
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

pub fn x5t_of(v: &StoredVersion) -> String {
    v.meta
        .as_deref()
        .and_then(|m| serde_json::from_str::<Value>(m).ok())
        .and_then(|m| m["x5t"].as_str().map(str::to_string))
        .unwrap_or_default()
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
        meta: Some(json!({"x5t": info.x5t}).to_string()),
        version: Some(version),
    })?;
    // The three objects and the policy together, or nothing: never a managed key or secret
    // without its certificate.
    let policy = serde_json::to_string(policy).map_err(|e| Error::internal(e.to_string()))?;
    let mut stored =
        create_version_group(state, ctx, vec![key_version, secret_version, cert_version], Some(&policy)).await?;
    stored.pop().ok_or_else(|| Error::internal("the certificate version was not stored"))
}

pub fn doc_key(ctx: &VaultContext, what: &str) -> String {
    format!("certificate-{what}/{}", ctx.vault.id)
}

pub async fn load_doc(state: &AppState, ctx: &VaultContext, what: &str) -> Result<Option<Value>> {
    let Some(sealed) = state.store.get_meta(&doc_key(ctx, what)).await? else { return Ok(None) };
    let plain = ctx
        .key
        .open(format!("coffer/certificate-{what}/v1|{}", ctx.vault.id).as_bytes(), &sealed)
        .map_err(|e| Error::internal(format!("{what}: {e}")))?;
    serde_json::from_slice(&plain).map(Some).map_err(|e| Error::internal(format!("{what}: {e}")))
}

pub async fn save_doc(state: &AppState, ctx: &VaultContext, what: &str, doc: &Value) -> Result<()> {
    let plain = Zeroizing::new(serde_json::to_vec(doc).map_err(|e| Error::internal(e.to_string()))?);
    let sealed = ctx.key.seal(format!("coffer/certificate-{what}/v1|{}", ctx.vault.id).as_bytes(), &plain)?;
    state.store.put_meta(&doc_key(ctx, what), &sealed).await
}

/// The background part of certificate policies: `AutoRenew` issues a new version of
/// self-issued certificates (a new key unless `reuse_key`) when the trigger has come;
/// `EmailContacts` records a near-expiry event for the contacts, once per version. Returns how
/// many certificates were renewed.
pub async fn run_certificate_lifetime_actions(state: &AppState) -> Result<usize> {
    let mut renewed = 0;
    for (vault_name, name_key) in state.store.objects_with_policy(KIND).await? {
        // One broken certificate must not stop the others from renewing.
        match carry_out_lifetime_actions(state, &vault_name, &name_key).await {
            Ok(true) => renewed += 1,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(vault = %vault_name, certificate = %name_key, error = %e, "certificate lifetime action failed")
            }
        }
    }
    Ok(renewed)
}

/// Applies the first due lifetime action of one certificate; true when it was renewed.
async fn carry_out_lifetime_actions(state: &AppState, vault_name: &str, name_key: &str) -> Result<bool> {
    let now = state.clock.now();
    let Some(ctx) = crate::system::system_context(state, vault_name).await? else { return Ok(false) };
    let Some(policy) = load_policy(state, &ctx, name_key).await? else { return Ok(false) };
    let objects = Objects::new(state, &ctx, KIND);
    let current = match objects.read(name_key, None).await {
        Ok(v) => v,
        Err(e) if e.kind == ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    let (Some(nbf), Some(exp)) = (current.attributes.not_before, current.attributes.expires) else { return Ok(false) };
    for action in &policy.lifetime_actions {
        let due_at = match (action.trigger.lifetime_percentage, action.trigger.days_before_expiry) {
            (Some(p), _) => nbf + (exp - nbf) * i64::from(p) / 100,
            (_, Some(d)) => exp - i64::from(d) * 86_400,
            _ => continue,
        };
        if now < due_at {
            continue;
        }
        match action.action.action_type.as_str() {
            "AutoRenew" if policy.issuer_name() == "Self" => {
                let key = if policy.key_props.reuse_key == Some(true) {
                    let keys = Objects::new(state, &ctx, ObjectKind::Key);
                    material_of(&keys, &keys.read(&current.name, Some(&current.version)).await?)?
                } else {
                    new_key_for(&policy)?
                };
                let der = certs::self_signed(&policy.subject()?, &key, now).map_err(cert_error)?;
                let new = NewCertificate {
                    chain: &[der],
                    key: &key,
                    policy: &policy,
                    enabled: None,
                    tags: current.tags.clone(),
                };
                let renewed = store_certificate(state, &ctx, &current.name, new).await?;
                let subject =
                    event_subject(state, &ctx, KIND, &renewed, &renewed.version, "lifetime action: AutoRenew".into());
                job_event(state, Some("CertificateRenew"), EventType::NewVersionCreated, &subject).await?;
                // The new version has its own lifetime; nothing else is due for it now.
                return Ok(true);
            }
            "AutoRenew" => {
                // Renewal through an outside issuer is not automatic: say it is due, once per version.
                if !already_told(state, subject_of(&ctx, name_key), Notice::RenewalDue, &current.version).await? {
                    let why = "lifetime action: AutoRenew is due but needs issuer Self".to_string();
                    let subject = event_subject(state, &ctx, KIND, &current, &current.version, why);
                    job_event(state, None, EventType::NearExpiry, &subject).await?;
                    remember_told(state, subject_of(&ctx, name_key), Notice::RenewalDue, &current.version).await?;
                }
            }
            _ => {
                if !already_told(state, subject_of(&ctx, name_key), Notice::Notified, &current.version).await? {
                    // Coffer sends no mail: the event names the contacts for whoever forwards it.
                    let emails = contact_emails(state, &ctx).await?;
                    let contacts = emails.join(",");
                    let why = format!("lifetime action: EmailContacts ({contacts})");
                    let subject = event_subject(state, &ctx, KIND, &current, &current.version, why);
                    job_event(state, None, EventType::NearExpiry, &subject).await?;
                    remember_told(state, subject_of(&ctx, name_key), Notice::Notified, &current.version).await?;
                }
            }
        }
    }
    Ok(false)
}

/// The e-mail addresses of the vault's certificate contacts.
pub async fn contact_emails(state: &AppState, ctx: &VaultContext) -> Result<Vec<String>> {
    let contacts = load_doc(state, ctx, "contacts").await?.unwrap_or_default();
    Ok(contacts
        .as_array()
        .map(|list| list.iter().filter_map(|c| c["email"].as_str().map(str::to_string)).collect())
        .unwrap_or_default())
}

/// The certificate a lifetime-action marker is about.
fn subject_of<'a>(ctx: &'a VaultContext, name_key: &'a str) -> Told<'a> {
    Told { kind: KIND, vault_id: &ctx.vault.id, name_key }
}
