//! Certificates: Azure Key Vault's `/certificates` and `/deletedcertificates` operations. A
//! certificate version has a key and a secret of the same name and version (`managed`): the
//! key holds its key pair, the secret its PFX or PEM. Issuer `Self` signs at once; `Unknown`
//! leaves a pending operation with a CSR until a chain is merged. Contacts and issuers are
//! vault-wide documents. Pending operations, which hold a private key, are sealed.
use std::collections::BTreeMap;

use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use coffer_core::object::{AttributesPatch, ObjectKind};
use coffer_core::permissions::DataAction;
use coffer_core::{Error, ErrorKind, Result};
use coffer_crypto::b64;
use coffer_crypto::certs::{self, CertError, Subject};
use coffer_crypto::keys::KeyMaterial;
use coffer_store::{ObjectRef, StoredVersion};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::render::{AttributesIn, attributes, page};
use super::{DataRequest, method_not_allowed, not_found_path};
use crate::events::{EventType, event_subject, job_event};
use crate::http::{ApiError, json as json_response, parse_body};
use crate::keys::{default_ops, key_error, material_of, store_key_version};
use crate::objects::{NewObject, Objects, PageRequest, VaultContext};
use crate::state::{AppState, SharedState};

const KIND: ObjectKind = ObjectKind::Certificate;
const PKCS12: &str = "application/x-pkcs12";
const PEM: &str = "application/x-pem-file";

type Handled = std::result::Result<Response, ApiError>;

fn cert_error(e: CertError) -> Error {
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
    fn normalize(&mut self, now: i64) -> Result<()> {
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

    fn subject(&self) -> Result<Subject> {
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

    fn issuer_name(&self) -> String {
        self.issuer.name.clone().unwrap_or_else(|| "Unknown".into())
    }

    fn wire(&self, ctx: &VaultContext, name: &str) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        v["id"] = format!("{}/policy", ctx.object_id(KIND, name, None)).into();
        v
    }
}

// ---- Stored documents ----

#[derive(Serialize, Deserialize)]
struct CertPayload {
    /// base64 DER, leaf first.
    chain: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct PendingOp {
    /// The certificate's name as given (the store key is case-folded); absent in early records.
    #[serde(default)]
    name: Option<String>,
    /// When the operation began (for `includePending` listings).
    #[serde(default)]
    created: Option<i64>,
    request_id: String,
    status: String,
    status_details: String,
    cancellation_requested: bool,
    issuer: String,
    csr: Option<String>,
    policy: CertPolicy,
    /// The key the CSR was made for (sealed with the whole document).
    key: Option<KeyMaterial>,
    attributes: Option<Value>,
    tags: BTreeMap<String, String>,
    error: Option<Value>,
}

/// A fresh key as the policy's key properties describe it (RSA unless they say otherwise).
fn new_key_for(policy: &CertPolicy) -> Result<std::sync::Arc<KeyMaterial>> {
    let props = &policy.key_props;
    let key = KeyMaterial::generate(props.kty.as_deref().unwrap_or("RSA"), props.key_size, props.crv.as_deref(), None)
        .map_err(key_error)?
        .with_exportable(props.exportable.unwrap_or(true));
    Ok(std::sync::Arc::new(key))
}

fn op_meta_prefix(ctx: &VaultContext) -> String {
    format!("certificate-operation/{}/", ctx.vault.id)
}

fn op_meta_key(ctx: &VaultContext, name: &str) -> String {
    format!("{}{}", op_meta_prefix(ctx), coffer_core::names::name_key(name))
}

fn op_aad(ctx: &VaultContext, name: &str) -> Vec<u8> {
    format!("coffer/certificate-operation/v1|{}|{}", ctx.vault.id, coffer_core::names::name_key(name)).into_bytes()
}

async fn load_op(state: &AppState, ctx: &VaultContext, name: &str) -> Result<Option<PendingOp>> {
    let Some(sealed) = state.store.get_meta(&op_meta_key(ctx, name)).await? else { return Ok(None) };
    let plain = ctx
        .key
        .open(&op_aad(ctx, name), &sealed)
        .map_err(|e| Error::internal(format!("certificate operation: {e}")))?;
    serde_json::from_slice(&plain).map(Some).map_err(|e| Error::internal(format!("certificate operation: {e}")))
}

async fn save_op(state: &AppState, ctx: &VaultContext, name: &str, op: &PendingOp) -> Result<()> {
    let plain = Zeroizing::new(serde_json::to_vec(op).map_err(|e| Error::internal(e.to_string()))?);
    let sealed = ctx.key.seal(&op_aad(ctx, name), &plain)?;
    state.store.put_meta(&op_meta_key(ctx, name), &sealed).await
}

fn op_json(ctx: &VaultContext, name: &str, op: &PendingOp) -> Value {
    let mut v = json!({
        "id": format!("{}/pending", ctx.object_id(KIND, name, None)),
        "issuer": {"name": op.issuer},
        "cancellation_requested": op.cancellation_requested,
        "status": op.status,
        "status_details": op.status_details,
        "target": ctx.object_id(KIND, name, None),
        "request_id": op.request_id,
    });
    if let Some(csr) = &op.csr {
        v["csr"] = csr.clone().into();
    }
    if let Some(e) = &op.error {
        v["error"] = e.clone();
    }
    v
}

fn pending_not_found(name: &str) -> Error {
    Error::not_found("PendingCertificateNotFound", format!("Pending certificate not found: {name}"))
}

fn at<'a>(ctx: &'a VaultContext, kind: ObjectKind, key: &'a str) -> ObjectRef<'a> {
    ObjectRef { vault_id: &ctx.vault.id, kind, name_key: key }
}

async fn load_policy(state: &AppState, ctx: &VaultContext, name: &str) -> Result<Option<CertPolicy>> {
    let key = coffer_core::names::name_key(name);
    match state.store.get_object_policy(&at(ctx, KIND, &key)).await? {
        Some(j) => serde_json::from_str(&j).map(Some).map_err(|e| Error::internal(format!("certificate policy: {e}"))),
        None => Ok(None),
    }
}

async fn save_policy(state: &AppState, ctx: &VaultContext, name: &str, p: &CertPolicy) -> Result<()> {
    let key = coffer_core::names::name_key(name);
    let j = serde_json::to_string(p).map_err(|e| Error::internal(e.to_string()))?;
    state.store.set_object_policy(&at(ctx, KIND, &key), Some(&j)).await?;
    Ok(())
}

fn payload_of(objects: &Objects<'_>, v: &StoredVersion) -> Result<Vec<Vec<u8>>> {
    let plain = objects.open_payload(v)?;
    let p: CertPayload = serde_json::from_slice(&plain).map_err(|e| Error::internal(format!("certificate: {e}")))?;
    p.chain.iter().map(|c| b64::std_decode(c).ok_or_else(|| Error::internal("certificate payload"))).collect()
}

fn x5t_of(v: &StoredVersion) -> String {
    v.meta
        .as_deref()
        .and_then(|m| serde_json::from_str::<Value>(m).ok())
        .and_then(|m| m["x5t"].as_str().map(str::to_string))
        .unwrap_or_default()
}

/// CertificateItem.
fn item(ctx: &VaultContext, v: &StoredVersion, with_version: bool) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("id".into(), ctx.object_id(KIND, &v.name, with_version.then_some(v.version.as_str())).into());
    m.insert("attributes".into(), attributes(&v.attributes, &ctx.vault.retention));
    if !v.tags.is_empty() {
        m.insert("tags".into(), json!(v.tags));
    }
    m.insert("x5t".into(), x5t_of(v).into());
    Value::Object(m)
}

/// CertificateBundle.
async fn bundle(state: &AppState, ctx: &VaultContext, v: &StoredVersion) -> Result<Value> {
    let objects = Objects::new(state, ctx, KIND);
    let chain = payload_of(&objects, v)?;
    let mut b = item(ctx, v, true);
    b["kid"] = ctx.object_id(ObjectKind::Key, &v.name, Some(&v.version)).into();
    b["sid"] = ctx.object_id(ObjectKind::Secret, &v.name, Some(&v.version)).into();
    b["cer"] = b64::std_encode(chain.first().map(Vec::as_slice).unwrap_or_default()).into();
    let policy = load_policy(state, ctx, &v.name).await?.unwrap_or_default();
    b["contentType"] = policy.secret_props.content_type.clone().unwrap_or_else(|| PKCS12.into()).into();
    b["policy"] = policy.wire(ctx, &v.name);
    b["preserveCertOrder"] = false.into();
    Ok(b)
}

fn with_deletion(ctx: &VaultContext, mut b: Value, v: &StoredVersion) -> Value {
    b["recoveryId"] = ctx.recovery_id(KIND, &v.name).into();
    if let Some(d) = v.deletion {
        b["deletedDate"] = d.deleted_date.into();
        b["scheduledPurgeDate"] = d.scheduled_purge_date.into();
    }
    b
}

/// A name may be taken by this certificate's own (managed) key and secret only.
async fn check_names_free(state: &AppState, ctx: &VaultContext, name: &str) -> Result<()> {
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
struct NewCertificate<'a> {
    chain: &'a [Vec<u8>],
    key: &'a KeyMaterial,
    policy: &'a CertPolicy,
    attributes: Option<&'a Value>,
    tags: BTreeMap<String, String>,
}

async fn store_certificate(
    state: &AppState,
    ctx: &VaultContext,
    name: &str,
    new: NewCertificate<'_>,
) -> Result<StoredVersion> {
    let NewCertificate { chain, key, policy, attributes: attrs, tags } = new;
    let leaf = chain.first().ok_or_else(|| Error::bad_parameter("No certificate was given."))?;
    let info = coffer_crypto::x509::parse_certificate(leaf).map_err(|e| Error::bad_parameter(e.to_string()))?;
    let version = coffer_crypto::random::version_id();
    let enabled = attrs.and_then(|a| a.get("enabled")).and_then(Value::as_bool);
    let window =
        AttributesPatch { enabled, not_before: Some(Some(info.not_before)), expires: Some(Some(info.not_after)) };
    let ops = default_ops(&key.kty);
    store_key_version(state, ctx, name, key, ops, window.clone(), tags.clone(), Some(version.clone()), true).await?;
    let content_type = policy.secret_props.content_type.clone().unwrap_or_else(|| PKCS12.into());
    // The key's own flag, never the policy's: a policy can be changed later, the key cannot.
    let exportable = key.exportable;
    let secret_value: Zeroizing<String> = match (content_type.as_str(), exportable) {
        (PEM, true) => certs::pem_bundle(chain, key).map_err(cert_error)?,
        (PEM, false) => Zeroizing::new(chain.iter().map(|c| certs::pem_bundle_public(c)).collect()),
        (_, true) => Zeroizing::new(b64::std_encode(&certs::pfx(chain, key, "").map_err(cert_error)?)),
        (_, false) => Zeroizing::new(b64::std_encode(&certs::pfx_public(chain).map_err(cert_error)?)),
    };
    Objects::new(state, ctx, ObjectKind::Secret)
        .create_version(NewObject {
            name,
            payload: secret_value.as_bytes(),
            attributes: window.clone(),
            tags: tags.clone(),
            content_type: Some(content_type),
            managed: true,
            meta: None,
            version: Some(version.clone()),
        })
        .await?;
    let payload = serde_json::to_vec(&CertPayload { chain: chain.iter().map(|c| b64::std_encode(c)).collect() })
        .map_err(|e| Error::internal(e.to_string()))?;
    let v = Objects::new(state, ctx, KIND)
        .create_version(NewObject {
            name,
            payload: &payload,
            attributes: window,
            tags,
            content_type: None,
            managed: false,
            meta: Some(json!({"x5t": info.x5t}).to_string()),
            version: Some(version),
        })
        .await?;
    save_policy(state, ctx, name, policy).await?;
    Ok(v)
}

pub async fn route(state: &SharedState, req: DataRequest, seg: &[&str]) -> Handled {
    let m = req.method.clone();
    match seg {
        ["certificates"] | ["certificates", ""] if m == Method::GET => list(state, &req).await,
        ["certificates", "contacts"] => contacts(state, &req).await,
        ["certificates", "restore"] if m == Method::POST => restore(state, &req).await,
        ["certificates", "issuers"] if m == Method::GET => list_issuers(state, &req).await,
        ["certificates", "issuers", issuer] => issuer_op(state, &req, issuer).await,
        ["certificates", name] | ["certificates", name, ""] => match m {
            Method::GET => get(state, &req, name, None).await,
            Method::PATCH => update(state, &req, name, None).await,
            Method::DELETE if seg.len() == 2 => delete(state, &req, name).await,
            _ => Err(method_not_allowed(&m)),
        },
        ["certificates", name, "create"] if m == Method::POST => create(state, &req, name).await,
        ["certificates", name, "import"] if m == Method::POST => import(state, &req, name).await,
        ["certificates", name, "versions"] if m == Method::GET => list_versions(state, &req, name).await,
        ["certificates", name, "backup"] if m == Method::POST => backup(state, &req, name).await,
        ["certificates", name, "policy"] => match m {
            Method::GET => get_policy(state, &req, name).await,
            Method::PATCH => update_policy(state, &req, name).await,
            _ => Err(method_not_allowed(&m)),
        },
        ["certificates", name, "pending"] => match m {
            Method::GET => get_op(state, &req, name).await,
            Method::PATCH => cancel_op(state, &req, name).await,
            Method::DELETE => delete_op(state, &req, name).await,
            _ => Err(method_not_allowed(&m)),
        },
        ["certificates", name, "pending", "merge"] if m == Method::POST => merge(state, &req, name).await,
        ["certificates", name, version] => match m {
            Method::GET => get(state, &req, name, Some(version)).await,
            Method::PATCH => update(state, &req, name, Some(version)).await,
            _ => Err(method_not_allowed(&m)),
        },
        ["deletedcertificates"] | ["deletedcertificates", ""] if m == Method::GET => list_deleted(state, &req).await,
        ["deletedcertificates", name] => match m {
            Method::GET => get_deleted(state, &req, name).await,
            Method::DELETE => purge(state, &req, name).await,
            _ => Err(method_not_allowed(&m)),
        },
        ["deletedcertificates", name, "recover"] if m == Method::POST => recover(state, &req, name).await,
        _ => Err(not_found_path()),
    }
}

#[derive(Deserialize)]
struct CreateParams {
    policy: Option<CertPolicy>,
    attributes: Option<Value>,
    tags: Option<BTreeMap<String, String>>,
}

async fn create(state: &SharedState, req: &DataRequest, name: &str) -> Handled {
    let ctx = &req.ctx;
    ctx.authorize(state, DataAction::CertCreate, Some(name)).await?;
    coffer_core::names::validate_object_name(name)?;
    let p: CreateParams = parse_body(&req.body)?;
    let now = state.clock.now();
    let asks_exportable = p.policy.as_ref().is_some_and(|p| p.key_props.exportable == Some(true));
    let mut policy = match p.policy {
        Some(policy) => policy,
        None => load_policy(state, ctx, name)
            .await?
            .ok_or_else(|| Error::bad_parameter("The property 'policy' is required."))?,
    };
    policy.normalize(now)?;
    if let Some(op) = load_op(state, ctx, name).await?
        && op.status == "inProgress"
    {
        return Err(Error::conflict(None, "A new key vault certificate can not be created or imported while a pending key vault certificate's status is inProgress.").into());
    }
    check_names_free(state, ctx, name).await?;
    let issuer = policy.issuer_name();
    let subject = policy.subject()?;
    // A new key unless the policy reuses the current one.
    let reuse = policy.key_props.reuse_key == Some(true);
    let current_key = if reuse {
        let objects = Objects::new(state, ctx, ObjectKind::Key);
        match objects.read(name, None).await {
            Ok(v) if v.managed => Some(material_of(&objects, &v)?),
            _ => None,
        }
    } else {
        None
    };
    let key = match current_key {
        Some(k) => k,
        None => new_key_for(&policy)?,
    };
    // A reused key keeps the exportability it was made with (as Azure: `exportable` is fixed
    // at key creation); asking to widen it is an error rather than a silent narrowing.
    if asks_exportable && !key.exportable {
        return Err(Error::bad_parameter(format!(
            "The key of certificate '{name}' is not exportable, and a certificate that reuses it (reuse_key) cannot make it exportable. Create the certificate with a new key (reuse_key: false) to make it exportable."
        ))
        .into());
    }
    policy.key_props.exportable = Some(key.exportable);
    let tags = p.tags.unwrap_or_default();
    let mut op = PendingOp {
        name: Some(name.to_string()),
        created: Some(now),
        request_id: coffer_crypto::random::version_id(),
        status: "inProgress".into(),
        status_details: "Pending certificate created. Certificate request is in progress. This may take some time based on the issuer provider. Please check again later.".into(),
        cancellation_requested: false,
        issuer: issuer.clone(),
        csr: None,
        policy: policy.clone(),
        key: None,
        attributes: p.attributes.clone(),
        tags: tags.clone(),
        error: None,
    };
    match issuer.as_str() {
        "Self" => {
            let der = certs::self_signed(&subject, &key, now).map_err(cert_error)?;
            store_certificate(
                state,
                ctx,
                name,
                NewCertificate { chain: &[der], key: &key, policy: &policy, attributes: p.attributes.as_ref(), tags },
            )
            .await?;
            op.status = "completed".into();
            op.status_details = String::new();
        }
        "Unknown" => {
            op.csr = Some(b64::std_encode(&certs::csr(&subject, &key, now).map_err(cert_error)?));
            op.key = Some(KeyMaterial::clone(&key));
        }
        other => {
            return Err(Error::bad_parameter(format!(
                "The issuer '{}' is not supported: this vault issues with 'Self', or creates a CSR with 'Unknown' for you to have signed and merge.",
                coffer_core::names::printable(other)
            ))
            .into());
        }
    }
    save_op(state, ctx, name, &op).await?;
    // As Azure, the create response always says inProgress; a self-signed certificate is already
    // complete when the client first polls (the SDK's poller only polls an unfinished operation).
    let mut shown = op_json(ctx, name, &op);
    shown["status"] = "inProgress".into();
    let mut resp = json_response(StatusCode::ACCEPTED, shown);
    let location = format!(
        "{}/pending?api-version={}&request_id={}",
        ctx.object_id(KIND, name, None),
        ctx.api_version,
        op.request_id
    );
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(axum::http::header::LOCATION, v);
    }
    Ok(resp)
}

#[derive(Deserialize)]
struct MergeParams {
    x5c: Option<Vec<String>>,
    attributes: Option<Value>,
    tags: Option<BTreeMap<String, String>>,
}

async fn merge(state: &SharedState, req: &DataRequest, name: &str) -> Handled {
    let ctx = &req.ctx;
    ctx.authorize(state, DataAction::CertCreate, Some(name)).await?;
    let p: MergeParams = parse_body(&req.body)?;
    let mut op =
        load_op(state, ctx, name).await?.filter(|o| o.status == "inProgress").ok_or_else(|| pending_not_found(name))?;
    let x5c = p
        .x5c
        .filter(|x| !x.is_empty())
        .ok_or_else(|| Error::bad_parameter("The property 'x5c' (the certificate chain) is required."))?;
    let chain: Vec<Vec<u8>> = x5c
        .iter()
        .map(|c| b64::std_decode(c).ok_or_else(|| Error::bad_parameter("x5c entries are base64 DER certificates.")))
        .collect::<Result<_>>()?;
    let key = op.key.take().ok_or_else(|| Error::internal("pending operation without a key"))?;
    if !certs::matches_key(&chain[0], &key) {
        return Err(
            Error::bad_parameter("The merged certificate does not match the key of the pending request.").into()
        );
    }
    let tags = p.tags.unwrap_or_else(|| op.tags.clone());
    let v = store_certificate(
        state,
        ctx,
        name,
        NewCertificate {
            chain: &chain,
            key: &key,
            policy: &op.policy,
            attributes: p.attributes.as_ref().or(op.attributes.as_ref()),
            tags,
        },
    )
    .await?;
    op.status = "completed".into();
    op.status_details = String::new();
    save_op(state, ctx, name, &op).await?;
    Ok(json_response(StatusCode::CREATED, bundle(state, ctx, &v).await?))
}

async fn get_op(state: &SharedState, req: &DataRequest, name: &str) -> Handled {
    req.ctx.authorize(state, DataAction::CertGet, Some(name)).await?;
    let op = load_op(state, &req.ctx, name).await?.ok_or_else(|| pending_not_found(name))?;
    Ok(json_response(StatusCode::OK, op_json(&req.ctx, name, &op)))
}

#[derive(Deserialize)]
struct CancelParams {
    cancellation_requested: Option<bool>,
}

async fn cancel_op(state: &SharedState, req: &DataRequest, name: &str) -> Handled {
    req.ctx.authorize(state, DataAction::CertUpdate, Some(name)).await?;
    let p: CancelParams = parse_body(&req.body)?;
    let mut op = load_op(state, &req.ctx, name).await?.ok_or_else(|| pending_not_found(name))?;
    if p.cancellation_requested == Some(true) {
        if op.status != "inProgress" {
            return Err(Error::bad_parameter("Only an operation in progress can be cancelled.").into());
        }
        op.cancellation_requested = true;
        op.status = "cancelled".into();
        op.status_details = "The certificate request was cancelled.".into();
        op.key = None;
        save_op(state, &req.ctx, name, &op).await?;
    }
    Ok(json_response(StatusCode::OK, op_json(&req.ctx, name, &op)))
}

async fn delete_op(state: &SharedState, req: &DataRequest, name: &str) -> Handled {
    req.ctx.authorize(state, DataAction::CertUpdate, Some(name)).await?;
    let op = load_op(state, &req.ctx, name).await?.ok_or_else(|| pending_not_found(name))?;
    state.store.delete_meta(&op_meta_key(&req.ctx, name)).await?;
    Ok(json_response(StatusCode::OK, op_json(&req.ctx, name, &op)))
}

#[derive(Deserialize)]
struct ImportParams {
    value: Option<String>,
    pwd: Option<String>,
    policy: Option<CertPolicy>,
    attributes: Option<Value>,
    tags: Option<BTreeMap<String, String>>,
}

async fn import(state: &SharedState, req: &DataRequest, name: &str) -> Handled {
    let ctx = &req.ctx;
    ctx.authorize(state, DataAction::CertImport, Some(name)).await?;
    coffer_core::names::validate_object_name(name)?;
    let p: ImportParams = parse_body(&req.body)?;
    let raw = p
        .value
        .as_deref()
        .and_then(b64::std_decode)
        .ok_or_else(|| Error::bad_parameter("The property 'value' must be the base64 of a PFX or PEM file."))?;
    let raw = Zeroizing::new(raw);
    let (chain, pkcs8) = if raw.starts_with(b"-----BEGIN") {
        let text = std::str::from_utf8(&raw).map_err(|_| Error::bad_parameter("The PEM is not text."))?;
        let (chain, key) = certs::parse_pem(text).map_err(cert_error)?;
        (chain, key.ok_or_else(|| Error::bad_parameter("The PEM holds no private key ('PRIVATE KEY' block)."))?)
    } else {
        certs::parse_pfx(&raw, p.pwd.as_deref().unwrap_or("")).map_err(cert_error)?
    };
    let key = KeyMaterial::from_pkcs8(&pkcs8).map_err(key_error)?;
    if !certs::matches_key(&chain[0], &key) {
        return Err(Error::bad_parameter("The certificate does not match the private key.").into());
    }
    if let Some(op) = load_op(state, ctx, name).await?
        && op.status == "inProgress"
    {
        return Err(Error::conflict(None, "A new key vault certificate can not be created or imported while a pending key vault certificate's status is inProgress.").into());
    }
    check_names_free(state, ctx, name).await?;
    let info = coffer_crypto::x509::parse_certificate(&chain[0]).map_err(|e| Error::bad_parameter(e.to_string()))?;
    let now = state.clock.now();
    let mut policy = p.policy.or(load_policy(state, ctx, name).await?).unwrap_or_default();
    if policy.x509_props.subject.is_none() {
        policy.x509_props.subject = Some(info.subject.clone());
    }
    if policy.key_props.kty.is_none() {
        policy.key_props.kty = Some(key.kty.clone());
        policy.key_props.crv = key.crv.clone();
        policy.key_props.key_size = key.size_bits();
    }
    if policy.issuer.name.is_none() {
        policy.issuer.name = Some("Unknown".into());
    }
    if policy.secret_props.content_type.is_none() && raw.starts_with(b"-----BEGIN") {
        policy.secret_props.content_type = Some(PEM.into());
    }
    policy.normalize(now)?;
    let key = key.with_exportable(policy.key_props.exportable.unwrap_or(true));
    let v = store_certificate(
        state,
        ctx,
        name,
        NewCertificate {
            chain: &chain,
            key: &key,
            policy: &policy,
            attributes: p.attributes.as_ref(),
            tags: p.tags.unwrap_or_default(),
        },
    )
    .await?;
    Ok(json_response(StatusCode::OK, bundle(state, ctx, &v).await?))
}

async fn get(state: &SharedState, req: &DataRequest, name: &str, version: Option<&str>) -> Handled {
    req.ctx.authorize(state, DataAction::CertGet, Some(name)).await?;
    let v = Objects::new(state, &req.ctx, KIND).read(name, version).await?;
    Ok(json_response(StatusCode::OK, bundle(state, &req.ctx, &v).await?))
}

#[derive(Deserialize)]
struct UpdateParams {
    attributes: Option<AttributesIn>,
    tags: Option<BTreeMap<String, String>>,
    policy: Option<CertPolicy>,
}

async fn update(state: &SharedState, req: &DataRequest, name: &str, version: Option<&str>) -> Handled {
    req.ctx.authorize(state, DataAction::CertUpdate, Some(name)).await?;
    let p: UpdateParams = parse_body(&req.body)?;
    let patch = crate::objects::ObjectPatch {
        attributes: p.attributes.map(|a| a.patch()).unwrap_or_default(),
        tags: p.tags,
        content_type: None,
        meta: None,
    };
    let v = Objects::new(state, &req.ctx, KIND).update(name, version, &patch).await?;
    if let Some(mut policy) = p.policy {
        policy.normalize(state.clock.now())?;
        save_policy(state, &req.ctx, name, &policy).await?;
    }
    Ok(json_response(StatusCode::OK, bundle(state, &req.ctx, &v).await?))
}

async fn list(state: &SharedState, req: &DataRequest) -> Handled {
    req.ctx.authorize(state, DataAction::CertList, None).await?;
    let pr = PageRequest::from_query(&req.query)?;
    let include_pending = match crate::http::query_get(&req.query, "includePending") {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("true") => true,
        Some(v) if v.eq_ignore_ascii_case("false") => false,
        Some(_) => return Err(Error::bad_parameter("includePending is true or false.").into()),
    };
    let objects = Objects::new(state, &req.ctx, KIND);
    let p = objects.list(&pr).await?;
    let mut items: Vec<Value> = p.items.iter().map(|v| item(&req.ctx, v, false)).collect();
    // Certificates that exist only as a pending operation come after the others, on the last page.
    if include_pending && p.next.is_none() {
        items.extend(pending_only_items(state, &req.ctx, &objects).await?);
    }
    let mut body = page(&req.ctx, "certificates", &p, pr.max_results, items);
    if let Some(next) =
        body["nextLink"].as_str().filter(|_| include_pending).map(|n| format!("{n}&includePending=true"))
    {
        body["nextLink"] = next.into();
    }
    Ok(json_response(StatusCode::OK, body))
}

/// List items for pending operations whose certificate has no version yet.
async fn pending_only_items(state: &AppState, ctx: &VaultContext, objects: &Objects<'_>) -> Result<Vec<Value>> {
    let prefix = op_meta_prefix(ctx);
    let mut items = Vec::new();
    for (key, _) in state.store.list_meta(&prefix).await? {
        let name_key = &key[prefix.len()..];
        match objects.read(name_key, None).await {
            Ok(_) => continue,
            Err(e) if e.kind == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let Some(op) = load_op(state, ctx, name_key).await? else { continue };
        let name = op.name.clone().unwrap_or_else(|| name_key.to_string());
        let created = op.created.unwrap_or_default();
        let mut m = serde_json::Map::new();
        m.insert("id".into(), ctx.object_id(KIND, &name, None).into());
        m.insert(
            "attributes".into(),
            json!({"enabled": false, "created": created, "updated": created,
                   "recoveryLevel": ctx.vault.retention.recovery_level(),
                   "recoverableDays": ctx.vault.retention.retention_days}),
        );
        if !op.tags.is_empty() {
            m.insert("tags".into(), json!(op.tags));
        }
        items.push(Value::Object(m));
    }
    Ok(items)
}

async fn list_versions(state: &SharedState, req: &DataRequest, name: &str) -> Handled {
    req.ctx.authorize(state, DataAction::CertList, Some(name)).await?;
    let pr = PageRequest::from_query(&req.query)?;
    let p = Objects::new(state, &req.ctx, KIND).list_versions(name, &pr).await?;
    let items = p.items.iter().map(|v| item(&req.ctx, v, true)).collect();
    Ok(json_response(
        StatusCode::OK,
        page(&req.ctx, &format!("certificates/{name}/versions"), &p, pr.max_results, items),
    ))
}

async fn get_policy(state: &SharedState, req: &DataRequest, name: &str) -> Handled {
    req.ctx.authorize(state, DataAction::CertGet, Some(name)).await?;
    let policy = match load_policy(state, &req.ctx, name).await? {
        Some(p) => p,
        None => load_op(state, &req.ctx, name).await?.map(|o| o.policy).ok_or_else(|| KIND.not_found(name))?,
    };
    Ok(json_response(StatusCode::OK, policy.wire(&req.ctx, name)))
}

async fn update_policy(state: &SharedState, req: &DataRequest, name: &str) -> Handled {
    req.ctx.authorize(state, DataAction::CertUpdate, Some(name)).await?;
    Objects::new(state, &req.ctx, KIND).read(name, None).await?;
    let current = load_policy(state, &req.ctx, name).await?.unwrap_or_default();
    // PATCH: the given sections replace the current ones.
    let given: Value = parse_body(&req.body)?;
    let mut merged = serde_json::to_value(&current).map_err(|e| Error::internal(e.to_string()))?;
    if let (Some(m), Some(g)) = (merged.as_object_mut(), given.as_object()) {
        for (k, v) in g {
            if k != "id" {
                m.insert(k.clone(), v.clone());
            }
        }
    }
    let mut policy: CertPolicy =
        serde_json::from_value(merged).map_err(|e| Error::bad_parameter(format!("The policy is not valid: {e}")))?;
    policy.normalize(state.clock.now())?;
    save_policy(state, &req.ctx, name, &policy).await?;
    Ok(json_response(StatusCode::OK, policy.wire(&req.ctx, name)))
}

/// Deletes the certificate with its key and secret.
async fn delete(state: &SharedState, req: &DataRequest, name: &str) -> Handled {
    let ctx = &req.ctx;
    ctx.authorize(state, DataAction::CertDelete, Some(name)).await?;
    let v = Objects::new(state, ctx, KIND).delete(name).await?;
    for kind in [ObjectKind::Key, ObjectKind::Secret] {
        match Objects::new(state, ctx, kind).delete(name).await {
            Ok(_) => {}
            Err(e) if e.kind == ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    let _ = state.store.delete_meta(&op_meta_key(ctx, name)).await?;
    let b = bundle(state, ctx, &v).await?;
    Ok(json_response(StatusCode::OK, with_deletion(ctx, b, &v)))
}

async fn list_deleted(state: &SharedState, req: &DataRequest) -> Handled {
    req.ctx.authorize(state, DataAction::CertList, None).await?;
    let pr = PageRequest::from_query(&req.query)?;
    let p = Objects::new(state, &req.ctx, KIND).list_deleted(&pr).await?;
    let items = p.items.iter().map(|v| with_deletion(&req.ctx, item(&req.ctx, v, false), v)).collect();
    Ok(json_response(StatusCode::OK, page(&req.ctx, "deletedcertificates", &p, pr.max_results, items)))
}

async fn get_deleted(state: &SharedState, req: &DataRequest, name: &str) -> Handled {
    req.ctx.authorize(state, DataAction::CertGetDeleted, Some(name)).await?;
    let v = Objects::new(state, &req.ctx, KIND).get_deleted(name).await?;
    let b = bundle(state, &req.ctx, &v).await?;
    Ok(json_response(StatusCode::OK, with_deletion(&req.ctx, b, &v)))
}

async fn recover(state: &SharedState, req: &DataRequest, name: &str) -> Handled {
    let ctx = &req.ctx;
    ctx.authorize(state, DataAction::CertRecover, Some(name)).await?;
    let v = Objects::new(state, ctx, KIND).recover(name).await?;
    for kind in [ObjectKind::Key, ObjectKind::Secret] {
        match Objects::new(state, ctx, kind).recover(name).await {
            Ok(_) => {}
            Err(e) if e.kind == ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(json_response(StatusCode::OK, bundle(state, ctx, &v).await?))
}

async fn purge(state: &SharedState, req: &DataRequest, name: &str) -> Handled {
    let ctx = &req.ctx;
    ctx.authorize(state, DataAction::CertPurge, Some(name)).await?;
    Objects::new(state, ctx, KIND).purge(name).await?;
    for kind in [ObjectKind::Key, ObjectKind::Secret] {
        match Objects::new(state, ctx, kind).purge(name).await {
            Ok(()) => {}
            Err(e) if e.kind == ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    crate::system::forget_lifetime_markers(state, &ctx.vault.id, Some(&coffer_core::names::name_key(name))).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- Contacts and issuers: vault-wide documents, sealed ----

fn doc_key(ctx: &VaultContext, what: &str) -> String {
    format!("certificate-{what}/{}", ctx.vault.id)
}

async fn load_doc(state: &AppState, ctx: &VaultContext, what: &str) -> Result<Option<Value>> {
    let Some(sealed) = state.store.get_meta(&doc_key(ctx, what)).await? else { return Ok(None) };
    let plain = ctx
        .key
        .open(format!("coffer/certificate-{what}/v1|{}", ctx.vault.id).as_bytes(), &sealed)
        .map_err(|e| Error::internal(format!("{what}: {e}")))?;
    serde_json::from_slice(&plain).map(Some).map_err(|e| Error::internal(format!("{what}: {e}")))
}

async fn save_doc(state: &AppState, ctx: &VaultContext, what: &str, doc: &Value) -> Result<()> {
    let plain = Zeroizing::new(serde_json::to_vec(doc).map_err(|e| Error::internal(e.to_string()))?);
    let sealed = ctx.key.seal(format!("coffer/certificate-{what}/v1|{}", ctx.vault.id).as_bytes(), &plain)?;
    state.store.put_meta(&doc_key(ctx, what), &sealed).await
}

async fn contacts(state: &SharedState, req: &DataRequest) -> Handled {
    let ctx = &req.ctx;
    let id = format!("{}/certificates/contacts", ctx.base_url());
    let not_found = || Error::not_found("ContactsNotFound", "Contacts not found");
    match req.method {
        Method::GET => {
            ctx.authorize(state, DataAction::CertManageContacts, None).await?;
            let doc = load_doc(state, ctx, "contacts").await?.ok_or_else(not_found)?;
            Ok(json_response(StatusCode::OK, json!({"id": id, "contacts": doc})))
        }
        Method::PUT => {
            ctx.authorize(state, DataAction::CertManageContacts, None).await?;
            let body: Value = parse_body(&req.body)?;
            let list = body
                .get("contacts")
                .and_then(Value::as_array)
                .cloned()
                .ok_or_else(|| Error::bad_parameter("The property 'contacts' (a list) is required."))?;
            for c in &list {
                if !c.get("email").is_some_and(Value::is_string) {
                    return Err(Error::bad_parameter("Every contact needs an email.").into());
                }
            }
            save_doc(state, ctx, "contacts", &Value::Array(list.clone())).await?;
            Ok(json_response(StatusCode::OK, json!({"id": id, "contacts": list})))
        }
        Method::DELETE => {
            ctx.authorize(state, DataAction::CertManageContacts, None).await?;
            let doc = load_doc(state, ctx, "contacts").await?.ok_or_else(not_found)?;
            state.store.delete_meta(&doc_key(ctx, "contacts")).await?;
            Ok(json_response(StatusCode::OK, json!({"id": id, "contacts": doc})))
        }
        ref m => Err(method_not_allowed(m)),
    }
}

fn issuer_json(ctx: &VaultContext, name: &str, doc: &Value) -> Value {
    let mut v = doc.clone();
    v["id"] = format!("{}/certificates/issuers/{name}", ctx.base_url()).into();
    // The issuer account's password is write-only.
    if let Some(c) = v.get_mut("credentials").and_then(Value::as_object_mut) {
        c.remove("pwd");
    }
    v
}

async fn list_issuers(state: &SharedState, req: &DataRequest) -> Handled {
    req.ctx.authorize(state, DataAction::CertListIssuers, None).await?;
    let doc = load_doc(state, &req.ctx, "issuers").await?.unwrap_or_else(|| json!({}));
    let items: Vec<Value> = doc
        .as_object()
        .map(|m| m.iter().map(|(n, d)| json!({"id": format!("{}/certificates/issuers/{n}", req.ctx.base_url()), "provider": d["provider"]})).collect())
        .unwrap_or_default();
    Ok(json_response(StatusCode::OK, json!({"value": items, "nextLink": null})))
}

async fn issuer_op(state: &SharedState, req: &DataRequest, name: &str) -> Handled {
    let ctx = &req.ctx;
    coffer_core::names::validate_object_name(name)?;
    let mut all = load_doc(state, ctx, "issuers").await?.unwrap_or_else(|| json!({}));
    let not_found = || Error::not_found("CertificateIssuerNotFound", format!("Issuer not found: {name}"));
    let now = state.clock.now();
    match req.method {
        Method::GET => {
            ctx.authorize(state, DataAction::CertGetIssuers, None).await?;
            let d = all.get(name).cloned().ok_or_else(not_found)?;
            Ok(json_response(StatusCode::OK, issuer_json(ctx, name, &d)))
        }
        Method::PUT | Method::PATCH => {
            ctx.authorize(state, DataAction::CertSetIssuers, None).await?;
            let body: Value = parse_body(&req.body)?;
            let existing = all.get(name).cloned();
            if req.method == Method::PATCH && existing.is_none() {
                return Err(not_found().into());
            }
            let mut d = existing.clone().unwrap_or_else(|| json!({}));
            for field in ["provider", "credentials", "org_details"] {
                if let Some(v) = body.get(field) {
                    d[field] = v.clone();
                }
            }
            if !d.get("provider").is_some_and(Value::is_string) {
                return Err(Error::bad_parameter("The property 'provider' is required.").into());
            }
            let enabled = body
                .get("attributes")
                .and_then(|a| a.get("enabled"))
                .and_then(Value::as_bool)
                .or_else(|| d["attributes"]["enabled"].as_bool())
                .unwrap_or(true);
            let created = d["attributes"]["created"].as_i64().unwrap_or(now);
            d["attributes"] = json!({"enabled": enabled, "created": created, "updated": now});
            if let Some(m) = all.as_object_mut() {
                m.insert(name.to_string(), d.clone());
            }
            save_doc(state, ctx, "issuers", &all).await?;
            Ok(json_response(StatusCode::OK, issuer_json(ctx, name, &d)))
        }
        Method::DELETE => {
            ctx.authorize(state, DataAction::CertDeleteIssuers, None).await?;
            let d = all.as_object_mut().and_then(|m| m.remove(name)).ok_or_else(not_found)?;
            save_doc(state, ctx, "issuers", &all).await?;
            Ok(json_response(StatusCode::OK, issuer_json(ctx, name, &d)))
        }
        ref m => Err(method_not_allowed(m)),
    }
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
                    attributes: None,
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
                let marker = crate::system::renewal_due_marker(&ctx.vault.id, name_key);
                if state.store.get_meta(&marker).await?.as_deref() != Some(current.version.as_bytes()) {
                    let why = "lifetime action: AutoRenew is due but needs issuer Self".to_string();
                    let subject = event_subject(state, &ctx, KIND, &current, &current.version, why);
                    job_event(state, None, EventType::NearExpiry, &subject).await?;
                    state.store.put_meta(&marker, current.version.as_bytes()).await?;
                }
            }
            _ => {
                let marker = crate::system::notified_marker(&ctx.vault.id, name_key);
                if state.store.get_meta(&marker).await?.as_deref() != Some(current.version.as_bytes()) {
                    // Coffer sends no mail: the event names the contacts for whoever forwards it.
                    let contacts = load_doc(state, &ctx, "contacts").await?.unwrap_or_default();
                    let emails: Vec<&str> = contacts
                        .as_array()
                        .map(|list| list.iter().filter_map(|c| c["email"].as_str()).collect())
                        .unwrap_or_default();
                    let contacts = emails.join(",");
                    let why = format!("lifetime action: EmailContacts ({contacts})");
                    let subject = event_subject(state, &ctx, KIND, &current, &current.version, why);
                    job_event(state, None, EventType::NearExpiry, &subject).await?;
                    state.store.put_meta(&marker, current.version.as_bytes()).await?;
                }
            }
        }
    }
    Ok(false)
}

// ---- Backup and restore: the certificate with its key, secret and policy ----

#[derive(Serialize, Deserialize)]
struct CertificateBackup {
    format: String,
    /// The three objects' own (sealed) backup blobs.
    certificate: String,
    key: String,
    secret: String,
    policy: Option<CertPolicy>,
}

const BACKUP_MAGIC: &[u8] = b"CFC1";
const BACKUP_FORMAT: &str = "coffer-certificate-backup/1";
const BACKUP_AAD: &[u8] = b"coffer/backup/v1|certificate-bundle";

async fn backup(state: &SharedState, req: &DataRequest, name: &str) -> Handled {
    let ctx = &req.ctx;
    ctx.authorize(state, DataAction::CertBackup, Some(name)).await?;
    let doc = CertificateBackup {
        format: BACKUP_FORMAT.into(),
        certificate: Objects::new(state, ctx, KIND).backup(name).await?,
        key: Objects::new(state, ctx, ObjectKind::Key).backup_with_certificate(name).await?,
        secret: Objects::new(state, ctx, ObjectKind::Secret).backup_with_certificate(name).await?,
        policy: load_policy(state, ctx, name).await?,
    };
    let plain = Zeroizing::new(serde_json::to_vec(&doc).map_err(|e| Error::internal(e.to_string()))?);
    let mut blob = BACKUP_MAGIC.to_vec();
    blob.extend_from_slice(&state.backup_key.seal(BACKUP_AAD, &plain)?);
    Ok(json_response(StatusCode::OK, json!({"value": b64::url_encode(&blob)})))
}

#[derive(Deserialize)]
struct BlobParams {
    value: Option<String>,
}

async fn restore(state: &SharedState, req: &DataRequest) -> Handled {
    let ctx = &req.ctx;
    ctx.authorize(state, DataAction::CertRestore, None).await?;
    let p: BlobParams = parse_body(&req.body)?;
    let invalid = || Error::bad_parameter("Backup blob contains invalid or corrupt version.");
    let raw = p.value.as_deref().and_then(b64::url_decode).ok_or_else(invalid)?;
    let sealed = raw.strip_prefix(BACKUP_MAGIC).ok_or_else(invalid)?;
    let plain = state.backup_key.open(BACKUP_AAD, sealed).map_err(|_| invalid())?;
    let doc: CertificateBackup = serde_json::from_slice(&plain).map_err(|_| invalid())?;
    if doc.format != BACKUP_FORMAT {
        return Err(invalid().into());
    }
    // Restore all three or none: check every name first.
    let cert = Objects::new(state, ctx, KIND);
    let name = cert.backup_name(&doc.certificate)?;
    let key = coffer_core::names::name_key(&name);
    for kind in [KIND, ObjectKind::Key, ObjectKind::Secret] {
        if let Some(head) = state.store.get_head(&at(ctx, kind, &key)).await? {
            return Err(if head.deletion.is_some() {
                kind.deleted_but_recoverable(&name)
            } else {
                Error::conflict(None, format!("There was a conflict restoring the certificate '{name}': a {} of this name exists in this vault.", kind.as_str()))
            }
            .into());
        }
    }
    // The three objects and the policy in one transaction: a crash or a failure between them
    // cannot leave a managed key or secret without its certificate.
    let key_part = Objects::new(state, ctx, ObjectKind::Key).restorable_with_certificate(&doc.key)?;
    let secret_part = Objects::new(state, ctx, ObjectKind::Secret).restorable_with_certificate(&doc.secret)?;
    let cert_part = cert.restorable(&doc.certificate)?;
    if key_part.name != cert_part.name || secret_part.name != cert_part.name {
        return Err(invalid().into());
    }
    let policy =
        doc.policy.as_ref().map(serde_json::to_string).transpose().map_err(|e| Error::internal(e.to_string()))?;
    let vault_id = ctx.vault.id.as_str();
    let parts = [
        key_part.in_vault(vault_id, None),
        secret_part.in_vault(vault_id, None),
        cert_part.in_vault(vault_id, policy.as_deref()),
    ];
    match state.store.restore_objects(&parts).await? {
        coffer_store::PutOutcome::Written => {}
        outcome => return Err(crate::objects::restore_conflict(KIND, &name, outcome).into()),
    }
    let v = cert.read(&name, None).await?;
    Ok(json_response(StatusCode::OK, bundle(state, ctx, &v).await?))
}
