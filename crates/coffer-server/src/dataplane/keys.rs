//! Keys: Azure Key Vault's `/keys`, `/deletedkeys` and `/rng` operations. The private part of a
//! key never leaves the server: responses carry only public JWK fields (none for oct keys).
use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use coffer_core::permissions::DataAction;
use coffer_core::{Error, Result};
use coffer_crypto::b64;
use coffer_crypto::keys::JwkIn;
use coffer_store::StoredVersion;
use serde::Deserialize;
use serde_json::{Value, json};

use super::render::{AttributesIn, attributes, page};
use super::{DataRequest, not_found_path};
use crate::audit::operations::DataOperation;
use crate::http::{ApiError, json as json_response, parse_body};
use crate::keys::{
    self, KIND, KeyChange, KeyHandle, KeyMeta, KeyOperation, KeyOperationInput, KeyOperationOutput, KeyToCreate,
    KeyToImport, KeyVersion, RotationPolicy,
};
use crate::objects::{PageRequest, VaultContext};
use crate::state::SharedState;

fn b64_field(v: &Option<String>, name: &str) -> Result<Option<Vec<u8>>> {
    v.as_deref()
        .map(|s| b64::url_decode(s).ok_or_else(|| Error::bad_parameter(format!("'{name}' is not base64url."))))
        .transpose()
}

/// KeyBundle.
fn bundle(ctx: &VaultContext, v: &StoredVersion, meta: &KeyMeta, material: &KeyHandle) -> Result<Value> {
    let mut key = serde_json::Map::new();
    key.insert("kid".into(), ctx.object_id(KIND, &v.name, Some(&v.version)).into());
    key.insert("kty".into(), meta.kty.clone().into());
    key.insert("key_ops".into(), json!(meta.key_ops));
    key.extend(material.public_jwk()?.into_iter().map(|(k, v)| (k, Value::String(v))));
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
        Op::KeyGetAttestation { name, version } => {
            match keys::attestation(state, &req.ctx, name, version.as_deref()).await {
                Err(e) => Err(e.into()),
            }
        }
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

fn rendered(ctx: &VaultContext, k: &KeyVersion) -> Handled {
    ok(bundle(ctx, &k.version, &k.meta, &k.material)?)
}

fn rendered_deleted(ctx: &VaultContext, k: &KeyVersion) -> Handled {
    ok(with_deletion(ctx, bundle(ctx, &k.version, &k.meta, &k.material)?, &k.version))
}

async fn create(state: &SharedState, req: &DataRequest, name: &str) -> Handled {
    let p: CreateParams = parse_body(&req.body)?;
    refuse_release(&p.attributes, &p.release_policy)?;
    let new = KeyToCreate {
        kty: p.kty.unwrap_or_default(),
        key_size: p.key_size,
        crv: p.crv,
        // The Java SDK sends 0 when none was asked for (an unset int); Azure takes it as the
        // default.
        public_exponent: p.public_exponent.filter(|e| *e != 0),
        key_ops: p.key_ops,
        attributes: p.attributes.map(|a| a.base.patch()).unwrap_or_default(),
        tags: p.tags.unwrap_or_default(),
    };
    rendered(&req.ctx, &keys::create(state, &req.ctx, name, new).await?)
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
    let p: ImportParams = parse_body(&req.body)?;
    let key = p.key.ok_or_else(|| Error::bad_parameter("The property 'key' is required."))?;
    let jwk: JwkIn = serde_json::from_value(key.clone())
        .map_err(|e| Error::bad_parameter(format!("The JSON web key is not valid: {e}")))?;
    refuse_release(&p.attributes, &p.release_policy)?;
    let key_ops = match key.get("key_ops") {
        Some(Value::Array(a)) => Some(
            a.iter()
                .map(|v| v.as_str().map(str::to_string).ok_or_else(|| Error::bad_parameter("key_ops must be strings.")))
                .collect::<Result<Vec<_>>>()?,
        ),
        Some(Value::Null) | None => None,
        Some(_) => return Err(Error::bad_parameter("key_ops must be a list.").into()),
    };
    let new = KeyToImport {
        jwk,
        key_ops,
        hsm: p.hsm == Some(true),
        attributes: p.attributes.map(|a| a.base.patch()).unwrap_or_default(),
        tags: p.tags.unwrap_or_default(),
    };
    rendered(&req.ctx, &keys::import(state, &req.ctx, name, new).await?)
}

async fn get(state: &SharedState, req: &DataRequest, name: &str, version: Option<&str>) -> Handled {
    rendered(&req.ctx, &keys::get(state, &req.ctx, name, version).await?)
}

#[derive(Deserialize)]
struct UpdateParams {
    key_ops: Option<Vec<String>>,
    attributes: Option<KeyAttributesIn>,
    tags: Option<BTreeMap<String, String>>,
    release_policy: Option<Value>,
}

async fn update(state: &SharedState, req: &DataRequest, name: &str, version: Option<&str>) -> Handled {
    let p: UpdateParams = parse_body(&req.body)?;
    refuse_release(&p.attributes, &p.release_policy)?;
    let change = KeyChange {
        key_ops: p.key_ops,
        attributes: p.attributes.map(|a| a.base.patch()).unwrap_or_default(),
        tags: p.tags,
    };
    rendered(&req.ctx, &keys::update(state, &req.ctx, name, version, change).await?)
}

async fn list(state: &SharedState, req: &DataRequest) -> Handled {
    let pr = PageRequest::from_query(&req.query)?;
    let p = keys::list(state, &req.ctx, &pr).await?;
    let items = p.items.iter().map(|v| item(&req.ctx, v, false)).collect();
    ok(page(&req.ctx, "keys", &p, pr.max_results, items))
}

async fn list_versions(state: &SharedState, req: &DataRequest, name: &str) -> Handled {
    let pr = PageRequest::from_query(&req.query)?;
    let p = keys::list_versions(state, &req.ctx, name, &pr).await?;
    let items = p.items.iter().map(|v| item(&req.ctx, v, true)).collect();
    ok(page(&req.ctx, &format!("keys/{name}/versions"), &p, pr.max_results, items))
}

async fn delete(state: &SharedState, req: &DataRequest, name: &str) -> Handled {
    rendered_deleted(&req.ctx, &keys::delete(state, &req.ctx, name).await?)
}

async fn list_deleted(state: &SharedState, req: &DataRequest) -> Handled {
    let pr = PageRequest::from_query(&req.query)?;
    let p = keys::list_deleted(state, &req.ctx, &pr).await?;
    let items = p.items.iter().map(|v| with_deletion(&req.ctx, item(&req.ctx, v, false), v)).collect();
    ok(page(&req.ctx, "deletedkeys", &p, pr.max_results, items))
}

async fn get_deleted(state: &SharedState, req: &DataRequest, name: &str) -> Handled {
    rendered_deleted(&req.ctx, &keys::get_deleted(state, &req.ctx, name).await?)
}

async fn recover(state: &SharedState, req: &DataRequest, name: &str) -> Handled {
    rendered(&req.ctx, &keys::recover(state, &req.ctx, name).await?)
}

async fn purge(state: &SharedState, req: &DataRequest, name: &str) -> Handled {
    keys::purge(state, &req.ctx, name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn backup(state: &SharedState, req: &DataRequest, name: &str) -> Handled {
    ok(json!({ "value": keys::backup(state, &req.ctx, name).await? }))
}

#[derive(Deserialize)]
struct BlobParams {
    value: Option<String>,
}

async fn restore(state: &SharedState, req: &DataRequest) -> Handled {
    let p: BlobParams = parse_body(&req.body)?;
    let blob = p.value.ok_or_else(|| Error::bad_parameter("The property 'value' is required."))?;
    rendered(&req.ctx, &keys::restore(state, &req.ctx, &blob).await?)
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
    if ["release", "securewrapkey", "secureunwrapkey"].iter().any(|o| op.eq_ignore_ascii_case(o)) {
        // Azure releases a key, or wraps inside a TEE, only for a caller whose environment
        // Microsoft Azure Attestation vouches for; this vault has no attestation to evaluate.
        return Err(Error::bad_parameter(format!(
            "The '{}' operation is not supported by this vault: it needs attestation of the caller's \
             environment (Microsoft Azure Attestation), which this vault cannot evaluate.",
            op.to_ascii_lowercase()
        ))
        .into());
    }
    let op = KeyOperation::from_path(op).ok_or_else(not_found_path)?;
    let p: OpParams = parse_body(&req.body)?;
    let input = KeyOperationInput {
        alg: p.alg.unwrap_or_default(),
        value: b64_field(&p.value, "value")?,
        iv: b64_field(&p.iv, "iv")?,
        aad: b64_field(&p.aad, "aad")?,
        tag: b64_field(&p.tag, "tag")?,
        digest: b64_field(&p.digest, "digest")?,
    };
    match keys::perform(state, &req.ctx, (name, version), op, input).await? {
        KeyOperationOutput::Verified(value) => ok(json!({ "value": value })),
        KeyOperationOutput::Bytes { kid, value, iv, tag, aad } => {
            let mut r = json!({"kid": kid, "value": b64::url_encode(&value)});
            for (field, bytes) in [("iv", iv), ("tag", tag), ("aad", aad)] {
                if let Some(b) = bytes {
                    r[field] = b64::url_encode(&b).into();
                }
            }
            ok(r)
        }
    }
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
    let p = keys::rotation_policy(state, &req.ctx, name).await?;
    ok(policy_json(&p, &req.ctx, name))
}

async fn put_policy(state: &SharedState, req: &DataRequest, name: &str) -> Handled {
    let p: RotationPolicy = parse_body(&req.body)?;
    let p = keys::set_rotation_policy(state, &req.ctx, name, p).await?;
    ok(policy_json(&p, &req.ctx, name))
}

async fn rotate_now(state: &SharedState, req: &DataRequest, name: &str) -> Handled {
    rendered(&req.ctx, &keys::rotate(state, &req.ctx, name).await?)
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
