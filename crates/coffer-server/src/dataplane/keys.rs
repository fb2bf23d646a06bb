//! Keys: Azure Key Vault's `/keys`, `/deletedkeys` and `/rng` operations. The private part of a
//! key never leaves the server: responses carry only public JWK fields (none for oct keys).
use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use coffer_core::names::name_key;
use coffer_core::object::{AttributesPatch, ObjectKind};
use coffer_core::permissions::DataAction;
use coffer_core::{Error, ErrorKind, Result};
use coffer_crypto::b64;
use coffer_crypto::keys::{JwkIn, KeyError, KeyMaterial, base_kty};
use coffer_store::StoredVersion;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::render::{AttributesIn, attributes, page};
use super::{DataRequest, method_not_allowed, not_found_path};
use crate::events::{EventType, event_subject, job_event};
use crate::http::{ApiError, json as json_response, parse_body};
use crate::objects::{NewObject, ObjectPatch, Objects, PageRequest, VaultContext};
use crate::state::{AppState, SharedState};

const KIND: ObjectKind = ObjectKind::Key;
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

pub(crate) fn default_ops(kty: &str) -> Vec<String> {
    let ops: &[&str] = match kty {
        "RSA" => &["encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"],
        "EC" => &["sign", "verify"],
        _ => &["encrypt", "decrypt", "wrapKey", "unwrapKey"],
    };
    ops.iter().map(|s| s.to_string()).collect()
}

fn validate_ops(ops: &[String]) -> Result<()> {
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

pub(crate) fn key_error(e: KeyError) -> Error {
    match e {
        KeyError::BadParameter(m) | KeyError::Failed(m) => Error::bad_parameter(m),
    }
}

fn hsm_unavailable(kty: &str) -> Error {
    Error::bad_parameter(format!(
        "The key type '{kty}' needs a hardware root of trust (PKCS#11), and this Coffer has none configured. \
         Use the software type '{}' instead.",
        kty.trim_end_matches("-HSM")
    ))
}

fn meta_of(v: &StoredVersion) -> Result<KeyMeta> {
    v.meta
        .as_deref()
        .and_then(|m| serde_json::from_str(m).ok())
        .ok_or_else(|| Error::internal(format!("key {}/{} has no metadata", v.name, v.version)))
}

/// A key version's private material, opened from its sealed payload — or, when the same
/// sealed payload was opened lately, the material already opened and parsed (see
/// `MaterialCache`).
pub(crate) fn material_of(objects: &Objects<'_>, v: &StoredVersion) -> Result<Arc<KeyMaterial>> {
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

fn b64_field(v: &Option<String>, name: &str) -> Result<Option<Vec<u8>>> {
    v.as_deref()
        .map(|s| b64::url_decode(s).ok_or_else(|| Error::bad_parameter(format!("'{name}' is not base64url."))))
        .transpose()
}

/// KeyBundle.
fn bundle(ctx: &VaultContext, v: &StoredVersion, meta: &KeyMeta, material: &KeyMaterial) -> Result<Value> {
    let mut key = serde_json::Map::new();
    key.insert("kid".into(), ctx.object_id(KIND, &v.name, Some(&v.version)).into());
    key.insert("kty".into(), meta.kty.clone().into());
    key.insert("key_ops".into(), json!(meta.key_ops));
    key.extend(material.public_jwk().map_err(key_error)?);
    let mut b = item(ctx, v, true);
    b.as_object_mut().map(|m| m.remove("kid"));
    b["key"] = Value::Object(key);
    Ok(b)
}

/// KeyItem: `kid`, attributes, tags.
fn item(ctx: &VaultContext, v: &StoredVersion, with_version: bool) -> Value {
    let mut attrs = attributes(&v.attributes, &ctx.vault.retention);
    attrs["exportable"] = false.into();
    let mut m = serde_json::Map::new();
    m.insert("kid".into(), ctx.object_id(KIND, &v.name, with_version.then_some(v.version.as_str())).into());
    m.insert("attributes".into(), attrs);
    if !v.tags.is_empty() {
        m.insert("tags".into(), json!(v.tags));
    }
    if v.managed {
        m.insert("managed".into(), true.into());
    }
    Value::Object(m)
}

fn with_deletion(ctx: &VaultContext, mut b: Value, v: &StoredVersion) -> Value {
    b["recoveryId"] = ctx.recovery_id(KIND, &v.name).into();
    if let Some(d) = v.deletion {
        b["deletedDate"] = d.deleted_date.into();
        b["scheduledPurgeDate"] = d.scheduled_purge_date.into();
    }
    b
}

fn ok(v: Value) -> std::result::Result<Response, ApiError> {
    Ok(json_response(StatusCode::OK, v))
}

type Handled = std::result::Result<Response, ApiError>;

pub async fn route(state: &SharedState, req: DataRequest, seg: &[&str]) -> Handled {
    let m = req.method.clone();
    match seg {
        ["rng"] if m == Method::POST => rng(state, &req).await,
        ["keys"] | ["keys", ""] if m == Method::GET => list(state, &req).await,
        ["keys", "restore"] if m == Method::POST => restore(state, &req).await,
        ["keys", name] | ["keys", name, ""] => match m {
            Method::PUT if seg.len() == 2 => import(state, &req, name).await,
            Method::GET => get(state, &req, name, None).await,
            Method::PATCH => update(state, &req, name, None).await,
            Method::DELETE if seg.len() == 2 => delete(state, &req, name).await,
            _ => Err(method_not_allowed(&m)),
        },
        ["keys", name, "create"] if m == Method::POST => create(state, &req, name).await,
        ["keys", name, "versions"] if m == Method::GET => list_versions(state, &req, name).await,
        ["keys", name, "backup"] if m == Method::POST => backup(state, &req, name).await,
        ["keys", name, "rotate"] if m == Method::POST => rotate_now(state, &req, name).await,
        ["keys", name, "rotationpolicy"] => match m {
            Method::GET => get_policy(state, &req, name).await,
            Method::PUT => put_policy(state, &req, name).await,
            _ => Err(method_not_allowed(&m)),
        },
        ["keys", name, version] => match m {
            Method::GET => get(state, &req, name, Some(version)).await,
            Method::PATCH => update(state, &req, name, Some(version)).await,
            _ => Err(method_not_allowed(&m)),
        },
        ["keys", name, version, op] if m == Method::POST => {
            let version = (!version.is_empty()).then_some(*version);
            operation(state, &req, name, version, op).await
        }
        ["deletedkeys"] | ["deletedkeys", ""] if m == Method::GET => list_deleted(state, &req).await,
        ["deletedkeys", name] => match m {
            Method::GET => get_deleted(state, &req, name).await,
            Method::DELETE => purge(state, &req, name).await,
            _ => Err(method_not_allowed(&m)),
        },
        ["deletedkeys", name, "recover"] if m == Method::POST => recover(state, &req, name).await,
        _ => Err(not_found_path()),
    }
}

#[derive(Deserialize, Default)]
struct KeyAttributesIn {
    #[serde(flatten)]
    base: AttributesIn,
    exportable: Option<bool>,
}

#[derive(Deserialize)]
struct CreateParams {
    kty: Option<String>,
    key_size: Option<u32>,
    public_exponent: Option<u64>,
    key_ops: Option<Vec<String>>,
    attributes: Option<KeyAttributesIn>,
    tags: Option<BTreeMap<String, String>>,
    crv: Option<String>,
    release_policy: Option<Value>,
}

fn refuse_release(attrs: &Option<KeyAttributesIn>, release_policy: &Option<Value>) -> Result<()> {
    if attrs.as_ref().and_then(|a| a.exportable) == Some(true) || release_policy.as_ref().is_some_and(|p| !p.is_null())
    {
        return Err(Error::bad_parameter(
            "Exportable keys and key release policies are not supported by this vault (key release needs attestation).",
        ));
    }
    Ok(())
}

async fn store_new(
    state: &AppState,
    ctx: &VaultContext,
    name: &str,
    material: &KeyMaterial,
    key_ops: Vec<String>,
    attributes: AttributesPatch,
    tags: BTreeMap<String, String>,
) -> Result<Value> {
    let (v, meta) = store_key_version(state, ctx, name, material, key_ops, attributes, tags, None, false).await?;
    bundle(ctx, &v, &meta, material)
}

/// Stores a key version: its material sealed, its public metadata beside it. Certificates use
/// it for their key, with the certificate's version and `managed`.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn store_key_version(
    state: &AppState,
    ctx: &VaultContext,
    name: &str,
    material: &KeyMaterial,
    key_ops: Vec<String>,
    attributes: AttributesPatch,
    tags: BTreeMap<String, String>,
    version: Option<String>,
    managed: bool,
) -> Result<(StoredVersion, KeyMeta)> {
    let meta =
        KeyMeta { kty: material.kty.clone(), key_ops, key_size: material.size_bits(), crv: material.crv.clone() };
    let payload = Zeroizing::new(serde_json::to_vec(material).map_err(|e| Error::internal(format!("key: {e}")))?);
    let meta_json = serde_json::to_string(&meta).map_err(|e| Error::internal(format!("key meta: {e}")))?;
    let v = Objects::new(state, ctx, KIND)
        .create_version(NewObject {
            name,
            payload: &payload,
            attributes,
            tags,
            content_type: None,
            managed,
            meta: Some(meta_json),
            version,
        })
        .await?;
    Ok((v, meta))
}

async fn create(state: &SharedState, req: &DataRequest, name: &str) -> Handled {
    req.ctx.authorize(state, DataAction::KeyCreate, Some(name)).await?;
    coffer_core::names::validate_object_name(name)?;
    let p: CreateParams = parse_body(&req.body)?;
    Objects::new(state, &req.ctx, KIND).refuse_if_managed(name).await?;
    let kty = p.kty.clone().ok_or_else(|| Error::bad_parameter("The property 'kty' is required."))?;
    if kty.ends_with("-HSM") {
        return Err(hsm_unavailable(&kty).into());
    }
    let base = base_kty(&kty).ok_or_else(|| {
        Error::bad_parameter(format!(
            "The key type '{}' is not supported (RSA, EC, oct).",
            coffer_core::names::printable(&kty)
        ))
    })?;
    refuse_release(&p.attributes, &p.release_policy)?;
    let ops = p.key_ops.clone().unwrap_or_else(|| default_ops(base));
    validate_ops(&ops)?;
    let material = KeyMaterial::generate(base, p.key_size, p.crv.as_deref(), p.public_exponent).map_err(key_error)?;
    let attrs = p.attributes.map(|a| a.base.patch()).unwrap_or_default();
    ok(store_new(state, &req.ctx, name, &material, ops, attrs, p.tags.unwrap_or_default()).await?)
}

#[derive(Deserialize)]
struct ImportParams {
    key: Option<Value>,
    #[serde(rename = "Hsm", default)]
    hsm: Option<bool>,
    attributes: Option<KeyAttributesIn>,
    tags: Option<BTreeMap<String, String>>,
    release_policy: Option<Value>,
}

async fn import(state: &SharedState, req: &DataRequest, name: &str) -> Handled {
    req.ctx.authorize(state, DataAction::KeyImport, Some(name)).await?;
    coffer_core::names::validate_object_name(name)?;
    let p: ImportParams = parse_body(&req.body)?;
    Objects::new(state, &req.ctx, KIND).refuse_if_managed(name).await?;
    let key = p.key.ok_or_else(|| Error::bad_parameter("The property 'key' is required."))?;
    let jwk: JwkIn = serde_json::from_value(key.clone())
        .map_err(|e| Error::bad_parameter(format!("The JSON web key is not valid: {e}")))?;
    if p.hsm == Some(true) || jwk.kty.ends_with("-HSM") {
        return Err(hsm_unavailable(if jwk.kty.is_empty() { "RSA-HSM" } else { &jwk.kty }).into());
    }
    refuse_release(&p.attributes, &p.release_policy)?;
    let material = KeyMaterial::from_jwk(&jwk).map_err(key_error)?;
    let ops = match key.get("key_ops") {
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| v.as_str().map(str::to_string).ok_or_else(|| Error::bad_parameter("key_ops must be strings.")))
            .collect::<Result<Vec<_>>>()?,
        Some(Value::Null) | None => default_ops(&material.kty),
        Some(_) => return Err(Error::bad_parameter("key_ops must be a list.").into()),
    };
    validate_ops(&ops)?;
    let attrs = p.attributes.map(|a| a.base.patch()).unwrap_or_default();
    ok(store_new(state, &req.ctx, name, &material, ops, attrs, p.tags.unwrap_or_default()).await?)
}

async fn get(state: &SharedState, req: &DataRequest, name: &str, version: Option<&str>) -> Handled {
    req.ctx.authorize(state, DataAction::KeyGet, Some(name)).await?;
    let objects = Objects::new(state, &req.ctx, KIND);
    let v = objects.read(name, version).await?;
    ok(bundle(&req.ctx, &v, &meta_of(&v)?, material_of(&objects, &v)?.as_ref())?)
}

#[derive(Deserialize)]
struct UpdateParams {
    key_ops: Option<Vec<String>>,
    attributes: Option<KeyAttributesIn>,
    tags: Option<BTreeMap<String, String>>,
    release_policy: Option<Value>,
}

async fn update(state: &SharedState, req: &DataRequest, name: &str, version: Option<&str>) -> Handled {
    req.ctx.authorize(state, DataAction::KeyUpdate, Some(name)).await?;
    let p: UpdateParams = parse_body(&req.body)?;
    refuse_release(&p.attributes, &p.release_policy)?;
    let objects = Objects::new(state, &req.ctx, KIND);
    objects.refuse_if_managed(name).await?;
    let current = objects.read(name, version).await?;
    let mut meta = meta_of(&current)?;
    if let Some(ops) = p.key_ops {
        validate_ops(&ops)?;
        meta.key_ops = ops;
    }
    let patch = ObjectPatch {
        attributes: p.attributes.map(|a| a.base.patch()).unwrap_or_default(),
        tags: p.tags,
        content_type: None,
        meta: Some(serde_json::to_string(&meta).map_err(|e| Error::internal(e.to_string()))?),
    };
    let v = objects.update(name, Some(&current.version), &patch).await?;
    ok(bundle(&req.ctx, &v, &meta, material_of(&objects, &current)?.as_ref())?)
}

async fn list(state: &SharedState, req: &DataRequest) -> Handled {
    req.ctx.authorize(state, DataAction::KeyList, None).await?;
    let pr = PageRequest::from_query(&req.query)?;
    let p = Objects::new(state, &req.ctx, KIND).list(&pr).await?;
    let items = p.items.iter().map(|v| item(&req.ctx, v, false)).collect();
    ok(page(&req.ctx, "keys", &p, pr.max_results, items))
}

async fn list_versions(state: &SharedState, req: &DataRequest, name: &str) -> Handled {
    req.ctx.authorize(state, DataAction::KeyList, Some(name)).await?;
    let pr = PageRequest::from_query(&req.query)?;
    let p = Objects::new(state, &req.ctx, KIND).list_versions(name, &pr).await?;
    let items = p.items.iter().map(|v| item(&req.ctx, v, true)).collect();
    ok(page(&req.ctx, &format!("keys/{name}/versions"), &p, pr.max_results, items))
}

async fn delete(state: &SharedState, req: &DataRequest, name: &str) -> Handled {
    req.ctx.authorize(state, DataAction::KeyDelete, Some(name)).await?;
    let objects = Objects::new(state, &req.ctx, KIND);
    objects.refuse_if_managed(name).await?;
    let v = objects.delete(name).await?;
    let b = bundle(&req.ctx, &v, &meta_of(&v)?, material_of(&objects, &v)?.as_ref())?;
    ok(with_deletion(&req.ctx, b, &v))
}

async fn list_deleted(state: &SharedState, req: &DataRequest) -> Handled {
    req.ctx.authorize(state, DataAction::KeyList, None).await?;
    let pr = PageRequest::from_query(&req.query)?;
    let p = Objects::new(state, &req.ctx, KIND).list_deleted(&pr).await?;
    let items = p.items.iter().map(|v| with_deletion(&req.ctx, item(&req.ctx, v, false), v)).collect();
    ok(page(&req.ctx, "deletedkeys", &p, pr.max_results, items))
}

async fn get_deleted(state: &SharedState, req: &DataRequest, name: &str) -> Handled {
    req.ctx.authorize(state, DataAction::KeyGetDeleted, Some(name)).await?;
    let objects = Objects::new(state, &req.ctx, KIND);
    let v = objects.get_deleted(name).await?;
    let b = bundle(&req.ctx, &v, &meta_of(&v)?, material_of(&objects, &v)?.as_ref())?;
    ok(with_deletion(&req.ctx, b, &v))
}

async fn recover(state: &SharedState, req: &DataRequest, name: &str) -> Handled {
    req.ctx.authorize(state, DataAction::KeyRecover, Some(name)).await?;
    let objects = Objects::new(state, &req.ctx, KIND);
    let v = objects.recover(name).await?;
    ok(bundle(&req.ctx, &v, &meta_of(&v)?, material_of(&objects, &v)?.as_ref())?)
}

async fn purge(state: &SharedState, req: &DataRequest, name: &str) -> Handled {
    req.ctx.authorize(state, DataAction::KeyPurge, Some(name)).await?;
    Objects::new(state, &req.ctx, KIND).purge(name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn backup(state: &SharedState, req: &DataRequest, name: &str) -> Handled {
    req.ctx.authorize(state, DataAction::KeyBackup, Some(name)).await?;
    ok(json!({ "value": Objects::new(state, &req.ctx, KIND).backup(name).await? }))
}

#[derive(Deserialize)]
struct BlobParams {
    value: Option<String>,
}

async fn restore(state: &SharedState, req: &DataRequest) -> Handled {
    req.ctx.authorize(state, DataAction::KeyRestore, None).await?;
    let p: BlobParams = parse_body(&req.body)?;
    let blob = p.value.ok_or_else(|| Error::bad_parameter("The property 'value' is required."))?;
    let objects = Objects::new(state, &req.ctx, KIND);
    let v = objects.restore(&blob).await?;
    ok(bundle(&req.ctx, &v, &meta_of(&v)?, material_of(&objects, &v)?.as_ref())?)
}

#[derive(Deserialize)]
struct OpParams {
    alg: Option<String>,
    value: Option<String>,
    iv: Option<String>,
    aad: Option<String>,
    tag: Option<String>,
    digest: Option<String>,
}

/// encrypt, decrypt, sign, verify, wrapkey, unwrapkey.
async fn operation(state: &SharedState, req: &DataRequest, name: &str, version: Option<&str>, op: &str) -> Handled {
    let (action, key_op, needs_window) = match op {
        "encrypt" => (DataAction::KeyEncrypt, "encrypt", true),
        "decrypt" => (DataAction::KeyDecrypt, "decrypt", false),
        "sign" => (DataAction::KeySign, "sign", true),
        "verify" => (DataAction::KeyVerify, "verify", false),
        "wrapkey" => (DataAction::KeyWrap, "wrapKey", true),
        "unwrapkey" => (DataAction::KeyUnwrap, "unwrapKey", false),
        _ => return Err(not_found_path()),
    };
    req.ctx.authorize(state, action, Some(name)).await?;
    let p: OpParams = parse_body(&req.body)?;
    let objects = Objects::new(state, &req.ctx, KIND);
    let v = objects.read(name, version).await?;
    let meta = meta_of(&v)?;
    // As Azure: disabled blocks everything; the nbf/exp window blocks encrypt, sign and wrap
    // (decrypt, unwrap and verify keep working on old data); key_ops restricts per key.
    if !v.attributes.enabled {
        return Err(KIND.disabled(key_op).into());
    }
    if !meta.key_ops.iter().any(|o| o == key_op) {
        return Err(Error::forbidden(
            "KeyOperationForbidden",
            format!("Operation {key_op} is not permitted on this key (key_ops: {}).", meta.key_ops.join(", ")),
        )
        .into());
    }
    let now = state.clock.now();
    if needs_window && !v.attributes.in_validity_window(now) {
        let why = if v.attributes.expires.is_some_and(|e| now >= e) { "expired" } else { "not yet valid" };
        return Err(Error::forbidden(
            if why == "expired" { "KeyExpired" } else { "KeyNotYetValid" },
            format!("Operation {key_op} is not allowed on an {why} key.").replace("an not", "a not"),
        )
        .into());
    }
    let alg = p.alg.clone().ok_or_else(|| Error::bad_parameter("The property 'alg' is required."))?;
    let value =
        b64_field(&p.value, "value")?.ok_or_else(|| Error::bad_parameter("The property 'value' is required."))?;
    let (iv, aad, tag) = (b64_field(&p.iv, "iv")?, b64_field(&p.aad, "aad")?, b64_field(&p.tag, "tag")?);
    let material = material_of(&objects, &v)?;
    let kid = req.ctx.object_id(KIND, &v.name, Some(&v.version));
    let result = |value: &[u8]| json!({"kid": kid, "value": b64::url_encode(value)});
    let out = match op {
        "encrypt" => {
            let c = material.encrypt(&alg, &value, iv.as_deref(), aad.as_deref()).map_err(key_error)?;
            let mut r = result(&c.value);
            if let Some(iv) = c.iv {
                r["iv"] = b64::url_encode(&iv).into();
            }
            if let Some(t) = c.tag {
                r["tag"] = b64::url_encode(&t).into();
            }
            if let Some(a) = c.aad {
                r["aad"] = b64::url_encode(&a).into();
            }
            r
        }
        "decrypt" => {
            result(&material.decrypt(&alg, &value, iv.as_deref(), aad.as_deref(), tag.as_deref()).map_err(key_error)?)
        }
        "sign" => result(&material.sign(&alg, &value).map_err(key_error)?),
        "verify" => {
            let digest = b64_field(&p.digest, "digest")?
                .ok_or_else(|| Error::bad_parameter("The property 'digest' is required."))?;
            json!({"value": material.verify(&alg, &digest, &value).map_err(key_error)?})
        }
        "wrapkey" => result(&material.wrap(&alg, &value).map_err(key_error)?),
        _ => result(&material.unwrap(&alg, &value).map_err(key_error)?),
    };
    ok(out)
}

#[derive(Deserialize)]
struct RngParams {
    count: Option<i64>,
}

async fn rng(state: &SharedState, req: &DataRequest) -> Handled {
    // Random bytes reveal nothing of the vault; any caller with read access to keys may ask.
    req.ctx.authorize(state, DataAction::KeyGet, None).await?;
    let p: RngParams = parse_body(&req.body)?;
    match p.count {
        Some(n @ 1..=128) => ok(json!({"value": b64::url_encode(&coffer_crypto::random::bytes(n as usize))})),
        _ => Err(Error::bad_parameter("GetRandomBytesRequest: count cannot be greater than 128 or less than 1").into()),
    }
}

// ---- Rotation ----

/// A key rotation policy as stored (the wire shape, minus `id`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RotationPolicy {
    #[serde(default)]
    pub lifetime_actions: Vec<LifetimeAction>,
    #[serde(default)]
    pub attributes: PolicyAttributes,
    /// The version a Notify action last fired for (internal; not on the wire).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notified_version: Option<String>,
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
    fn validate(&mut self) -> Result<()> {
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

    fn wire(&self, ctx: &VaultContext, name: &str) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Some(m) = v.as_object_mut() {
            m.remove("notifiedVersion");
            m.insert("id".into(), format!("{}/rotationpolicy", ctx.object_id(KIND, name, None)).into());
        }
        v
    }

    /// Azure's default when none was set: notify 30 days before expiry.
    fn default_policy() -> Self {
        Self {
            lifetime_actions: vec![LifetimeAction {
                trigger: Trigger { time_after_create: None, time_before_expiry: Some("P30D".into()) },
                action: ActionType { kind: "Notify".into() },
            }],
            attributes: PolicyAttributes::default(),
            notified_version: None,
        }
    }
}

async fn load_policy(state: &AppState, ctx: &VaultContext, name: &str) -> Result<Option<RotationPolicy>> {
    let key = coffer_core::names::name_key(name);
    let at = coffer_store::ObjectRef { vault_id: &ctx.vault.id, kind: KIND, name_key: &key };
    match state.store.get_object_policy(&at).await? {
        Some(json) => {
            Ok(Some(serde_json::from_str(&json).map_err(|e| Error::internal(format!("rotation policy: {e}")))?))
        }
        None => Ok(None),
    }
}

async fn save_policy(state: &AppState, ctx: &VaultContext, name: &str, p: &RotationPolicy) -> Result<()> {
    let key = coffer_core::names::name_key(name);
    let at = coffer_store::ObjectRef { vault_id: &ctx.vault.id, kind: KIND, name_key: &key };
    let json = serde_json::to_string(p).map_err(|e| Error::internal(e.to_string()))?;
    if !state.store.set_object_policy(&at, Some(&json)).await? {
        return Err(KIND.not_found(name));
    }
    Ok(())
}

async fn get_policy(state: &SharedState, req: &DataRequest, name: &str) -> Handled {
    req.ctx.authorize(state, DataAction::KeyGetRotationPolicy, Some(name)).await?;
    Objects::new(state, &req.ctx, KIND).read(name, None).await?;
    let p = load_policy(state, &req.ctx, name).await?.unwrap_or_else(RotationPolicy::default_policy);
    ok(p.wire(&req.ctx, name))
}

async fn put_policy(state: &SharedState, req: &DataRequest, name: &str) -> Handled {
    req.ctx.authorize(state, DataAction::KeySetRotationPolicy, Some(name)).await?;
    let objects = Objects::new(state, &req.ctx, KIND);
    objects.read(name, None).await?;
    // A certificate's key rotates only by renewing the certificate (as direct rotation).
    objects.refuse_if_managed(name).await?;
    let mut p: RotationPolicy = parse_body(&req.body)?;
    p.validate()?;
    let now = state.clock.now();
    let previous = load_policy(state, &req.ctx, name).await?;
    p.attributes.created = previous.as_ref().and_then(|x| x.attributes.created).or(Some(now));
    p.attributes.updated = Some(now);
    p.notified_version = None;
    save_policy(state, &req.ctx, name, &p).await?;
    ok(p.wire(&req.ctx, name))
}

async fn rotate_now(state: &SharedState, req: &DataRequest, name: &str) -> Handled {
    req.ctx.authorize(state, DataAction::KeyRotate, Some(name)).await?;
    Objects::new(state, &req.ctx, KIND).refuse_if_managed(name).await?;
    ok(rotate(state, &req.ctx, name).await?)
}

/// A new version of the same type, size or curve and operations; with the policy's
/// `expiryTime`, the new version expires that long after now. Old versions keep working.
pub async fn rotate(state: &AppState, ctx: &VaultContext, name: &str) -> Result<Value> {
    let objects = Objects::new(state, ctx, KIND);
    let current = objects.read(name, None).await?;
    let meta = meta_of(&current)?;
    let material = KeyMaterial::generate(&meta.kty, meta.key_size, meta.crv.as_deref(), None).map_err(key_error)?;
    let now = state.clock.now();
    let expiry = match load_policy(state, ctx, name).await?.and_then(|p| p.attributes.expiry_time) {
        Some(e) => Some(Some(now + coffer_core::duration::parse_seconds(&e)?)),
        None => None,
    };
    let attrs = AttributesPatch { enabled: Some(true), not_before: None, expires: expiry };
    store_new(state, ctx, &current.name, &material, meta.key_ops, attrs, current.tags.clone()).await
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
    let Some(mut policy) = load_policy(state, &ctx, name_key).await? else { return Ok(0) };
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
            let bundle = rotate(state, &ctx, &current.name).await?;
            rotated += 1;
            let kid = bundle["key"]["kid"].as_str().unwrap_or_default();
            let version = kid.rsplit('/').next().unwrap_or_default();
            let subject = event_subject(state, &ctx, KIND, &current, version, "rotation policy: Rotate".into());
            job_event(state, Some("KeyRotate"), EventType::NewVersionCreated, &subject).await?;
        } else if policy.notified_version.as_deref() != Some(current.version.as_str()) {
            let subject =
                event_subject(state, &ctx, KIND, &current, &current.version, "rotation policy: Notify".into());
            job_event(state, None, EventType::NearExpiry, &subject).await?;
            policy.notified_version = Some(current.version.clone());
            save_policy(state, &ctx, &current.name, &policy).await?;
        }
    }
    Ok(rotated)
}
