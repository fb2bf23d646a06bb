//! Keys: Azure Key Vault's `/keys`, `/deletedkeys` and `/rng` operations. The private part of a
//! key never leaves the server: responses carry only public JWK fields (none for oct keys).
use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use coffer_core::object::AttributesPatch;
use coffer_core::permissions::DataAction;
use coffer_core::{Error, Result};
use coffer_crypto::b64;
use coffer_crypto::keys::{JwkIn, KeyMaterial, base_kty};
use coffer_store::StoredVersion;
use serde::Deserialize;
use serde_json::{Value, json};

use super::render::{AttributesIn, attributes, page};
use super::{DataRequest, not_found_path};
use crate::audit::operations::DataOperation;
use crate::http::{ApiError, json as json_response, parse_body};
use crate::keys::{
    KIND, KeyMeta, NewKey, RotationPolicy, default_ops, hsm_unavailable, key_error, load_policy, material_of, meta_of,
    rotate, save_policy, store_key_version, validate_ops,
};
use crate::objects::{ObjectPatch, Objects, PageRequest, VaultContext};
use crate::state::{AppState, SharedState};

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

pub async fn route(state: &SharedState, req: DataRequest, op: &DataOperation) -> Handled {
    use DataOperation as Op;
    match op {
        Op::GetRandomBytes => rng(state, &req).await,
        Op::KeyList => list(state, &req).await,
        Op::KeyRestore => restore(state, &req).await,
        Op::KeyImport { name } => import(state, &req, name).await,
        Op::KeyGet { name, version } => get(state, &req, name, version.as_deref()).await,
        Op::KeyUpdate { name, version } => update(state, &req, name, version.as_deref()).await,
        Op::KeyDelete { name } => delete(state, &req, name).await,
        Op::KeyCreate { name } => create(state, &req, name).await,
        Op::KeyListVersions { name } => list_versions(state, &req, name).await,
        Op::KeyBackup { name } => backup(state, &req, name).await,
        Op::KeyRotate { name } => rotate_now(state, &req, name).await,
        Op::KeyGetRotationPolicy { name } => get_policy(state, &req, name).await,
        Op::KeyUpdateRotationPolicy { name } => put_policy(state, &req, name).await,
        Op::KeyOperation { name, version, op } => operation(state, &req, name, version.as_deref(), op).await,
        Op::KeyListDeleted => list_deleted(state, &req).await,
        Op::KeyGetDeleted { name } => get_deleted(state, &req, name).await,
        Op::KeyPurge { name } => purge(state, &req, name).await,
        Op::KeyRecover { name } => recover(state, &req, name).await,
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
    let (v, meta) = store_key_version(state, ctx, NewKey::unmanaged(name, material, key_ops, attributes, tags)).await?;
    bundle(ctx, &v, &meta, material)
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

async fn get_policy(state: &SharedState, req: &DataRequest, name: &str) -> Handled {
    req.ctx.authorize(state, DataAction::KeyGetRotationPolicy, Some(name)).await?;
    Objects::new(state, &req.ctx, KIND).read(name, None).await?;
    let p = load_policy(state, &req.ctx, name).await?.unwrap_or_else(RotationPolicy::default_policy);
    ok(policy_json(&p, &req.ctx, name))
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
    save_policy(state, &req.ctx, name, &p).await?;
    // A new policy notifies afresh.
    let key = coffer_core::names::name_key(name);
    let told = crate::lifetime_markers::Subject { kind: KIND, vault_id: &req.ctx.vault.id, name_key: &key };
    crate::lifetime_markers::forget(state, told).await?;
    ok(policy_json(&p, &req.ctx, name))
}

async fn rotate_now(state: &SharedState, req: &DataRequest, name: &str) -> Handled {
    req.ctx.authorize(state, DataAction::KeyRotate, Some(name)).await?;
    Objects::new(state, &req.ctx, KIND).refuse_if_managed(name).await?;
    let new = rotate(state, &req.ctx, name).await?;
    ok(bundle(&req.ctx, &new.version, &new.meta, &new.material)?)
}

/// A rotation policy as Azure sends it (with its `id`, without Coffer's own fields).
fn policy_json(p: &RotationPolicy, ctx: &VaultContext, name: &str) -> Value {
    let mut v = serde_json::to_value(p).unwrap_or(Value::Null);
    if let Some(m) = v.as_object_mut() {
        m.remove("notifiedVersion");
        m.insert("id".into(), format!("{}/rotationpolicy", ctx.object_id(KIND, name, None)).into());
    }
    v
}
