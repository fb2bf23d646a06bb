//! Secrets: Azure Key Vault's `/secrets` and `/deletedsecrets` operations.
use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use coffer_core::Error;
use coffer_core::limits::MAX_SECRET_VALUE_BYTES;
use coffer_core::object::ObjectKind;
use coffer_core::permissions::DataAction;
use coffer_store::StoredVersion;
use serde::Deserialize;
use serde_json::{Value, json};

use super::render::{AttributesIn, attributes, page};
use super::{DataRequest, not_found_path};
use crate::audit::operations::DataOperation;
use crate::http::{ApiError, json as json_response, parse_body};
use crate::objects::{NewObject, ObjectPatch, Objects, PageRequest, VaultContext};
use crate::state::SharedState;

const KIND: ObjectKind = ObjectKind::Secret;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SetParams {
    value: Option<String>,
    content_type: Option<String>,
    tags: Option<BTreeMap<String, String>>,
    attributes: Option<AttributesIn>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateParams {
    content_type: Option<String>,
    tags: Option<BTreeMap<String, String>>,
    attributes: Option<AttributesIn>,
}

#[derive(Deserialize)]
struct BlobParams {
    value: Option<String>,
}

pub async fn route(state: &SharedState, req: DataRequest, op: &DataOperation) -> Result<Response, ApiError> {
    use DataOperation as Op;
    match op {
        Op::SecretList => list(state, &req).await,
        Op::SecretRestore => restore(state, req).await,
        Op::SecretSet { name } => set(state, req, name).await,
        Op::SecretGet { name, version } => get(state, &req, name, version.as_deref()).await,
        Op::SecretUpdate { name, version } => update(state, req, name, version.as_deref()).await,
        Op::SecretDelete { name } => delete(state, &req, name).await,
        Op::SecretListVersions { name } => list_versions(state, &req, name).await,
        Op::SecretBackup { name } => backup(state, &req, name).await,
        Op::SecretListDeleted => list_deleted(state, &req).await,
        Op::SecretGetDeleted { name } => get_deleted(state, &req, name).await,
        Op::SecretPurge { name } => purge(state, &req, name).await,
        Op::SecretRecover { name } => recover(state, &req, name).await,
        _ => Err(not_found_path()),
    }
}

/// SecretBundle. `value` only where Azure returns it (set and get).
fn bundle(ctx: &VaultContext, v: &StoredVersion, value: Option<&str>) -> Value {
    let mut m = serde_json::Map::new();
    if let Some(val) = value {
        m.insert("value".into(), val.into());
    }
    m.insert("id".into(), ctx.object_id(KIND, &v.name, Some(&v.version)).into());
    if let Some(ct) = &v.content_type {
        m.insert("contentType".into(), ct.clone().into());
    }
    m.insert("attributes".into(), attributes(&v.attributes, &ctx.vault.retention));
    if !v.tags.is_empty() {
        m.insert("tags".into(), json!(v.tags));
    }
    if v.managed {
        m.insert("managed".into(), true.into());
        // A certificate's secret names the certificate's key.
        m.insert("kid".into(), ctx.object_id(ObjectKind::Key, &v.name, Some(&v.version)).into());
    }
    Value::Object(m)
}

/// SecretItem: no value; the id carries the version only in version listings.
fn item(ctx: &VaultContext, v: &StoredVersion, with_version: bool) -> Value {
    let mut b = bundle(ctx, v, None);
    b["id"] = ctx.object_id(KIND, &v.name, with_version.then_some(v.version.as_str())).into();
    b
}

/// DeletedSecretBundle / DeletedSecretItem.
fn deleted(ctx: &VaultContext, v: &StoredVersion, with_version: bool) -> Value {
    let mut b = item(ctx, v, with_version);
    b["recoveryId"] = ctx.recovery_id(KIND, &v.name).into();
    if let Some(d) = v.deletion {
        b["deletedDate"] = d.deleted_date.into();
        b["scheduledPurgeDate"] = d.scheduled_purge_date.into();
    }
    b
}

fn ok(v: Value) -> Result<Response, ApiError> {
    Ok(json_response(StatusCode::OK, v))
}

async fn set(state: &SharedState, req: DataRequest, name: &str) -> Result<Response, ApiError> {
    req.ctx.authorize(state, DataAction::SecretSet, Some(name)).await?;
    coffer_core::names::validate_object_name(name)?;
    let p: SetParams = parse_body(&req.body)?;
    let value = p.value.ok_or_else(|| Error::bad_parameter("The property 'value' is required."))?;
    if value.len() > MAX_SECRET_VALUE_BYTES {
        return Err(Error::bad_parameter(format!(
            "The secret value is {} bytes; the maximum is {MAX_SECRET_VALUE_BYTES} bytes.",
            value.len()
        ))
        .into());
    }
    let value = zeroize::Zeroizing::new(value);
    let objects = Objects::new(state, &req.ctx, KIND);
    objects.refuse_if_managed(name).await?;
    let v = objects
        .create_version(NewObject {
            name,
            payload: value.as_bytes(),
            attributes: p.attributes.map(|a| a.patch()).unwrap_or_default(),
            tags: p.tags.unwrap_or_default(),
            content_type: p.content_type,
            managed: false,
            meta: None,
            version: None,
        })
        .await?;
    ok(bundle(&req.ctx, &v, Some(&value)))
}

async fn get(state: &SharedState, req: &DataRequest, name: &str, version: Option<&str>) -> Result<Response, ApiError> {
    req.ctx.authorize(state, DataAction::SecretGet, Some(name)).await?;
    if let Some(ct) = crate::http::query_get(&req.query, "outContentType") {
        // Coffer does not convert a certificate's secret between PFX and PEM: each certificate
        // keeps the content type its policy chose.
        return Err(Error::bad_parameter(format!(
            "outContentType '{}' is not supported for this secret.",
            coffer_core::names::printable(ct)
        ))
        .into());
    }
    let objects = Objects::new(state, &req.ctx, KIND);
    let v = objects.read(name, version).await?;
    if !v.attributes.enabled {
        return Err(KIND.disabled("get").into());
    }
    let plain = objects.open_payload(&v)?;
    let value = zeroize::Zeroizing::new(String::from_utf8_lossy(&plain).into_owned());
    ok(bundle(&req.ctx, &v, Some(&value)))
}

async fn update(
    state: &SharedState,
    req: DataRequest,
    name: &str,
    version: Option<&str>,
) -> Result<Response, ApiError> {
    req.ctx.authorize(state, DataAction::SecretUpdate, Some(name)).await?;
    let p: UpdateParams = parse_body(&req.body)?;
    let patch = ObjectPatch {
        attributes: p.attributes.map(|a| a.patch()).unwrap_or_default(),
        tags: p.tags,
        content_type: p.content_type,
        meta: None,
    };
    let objects = Objects::new(state, &req.ctx, KIND);
    objects.refuse_if_managed(name).await?;
    let v = objects.update(name, version, &patch).await?;
    ok(bundle(&req.ctx, &v, None))
}

async fn list(state: &SharedState, req: &DataRequest) -> Result<Response, ApiError> {
    req.ctx.authorize(state, DataAction::SecretList, None).await?;
    let pr = PageRequest::from_query(&req.query)?;
    let p = Objects::new(state, &req.ctx, KIND).list(&pr).await?;
    let items = p.items.iter().map(|v| item(&req.ctx, v, false)).collect();
    ok(page(&req.ctx, "secrets", &p, pr.max_results, items))
}

async fn list_versions(state: &SharedState, req: &DataRequest, name: &str) -> Result<Response, ApiError> {
    req.ctx.authorize(state, DataAction::SecretList, Some(name)).await?;
    let pr = PageRequest::from_query(&req.query)?;
    let p = Objects::new(state, &req.ctx, KIND).list_versions(name, &pr).await?;
    let items = p.items.iter().map(|v| item(&req.ctx, v, true)).collect();
    ok(page(&req.ctx, &format!("secrets/{name}/versions"), &p, pr.max_results, items))
}

async fn delete(state: &SharedState, req: &DataRequest, name: &str) -> Result<Response, ApiError> {
    req.ctx.authorize(state, DataAction::SecretDelete, Some(name)).await?;
    let objects = Objects::new(state, &req.ctx, KIND);
    objects.refuse_if_managed(name).await?;
    let v = objects.delete(name).await?;
    ok(deleted(&req.ctx, &v, true))
}

async fn list_deleted(state: &SharedState, req: &DataRequest) -> Result<Response, ApiError> {
    req.ctx.authorize(state, DataAction::SecretList, None).await?;
    let pr = PageRequest::from_query(&req.query)?;
    let p = Objects::new(state, &req.ctx, KIND).list_deleted(&pr).await?;
    let items = p.items.iter().map(|v| deleted(&req.ctx, v, false)).collect();
    ok(page(&req.ctx, "deletedsecrets", &p, pr.max_results, items))
}

async fn get_deleted(state: &SharedState, req: &DataRequest, name: &str) -> Result<Response, ApiError> {
    req.ctx.authorize(state, DataAction::SecretGetDeleted, Some(name)).await?;
    let v = Objects::new(state, &req.ctx, KIND).get_deleted(name).await?;
    ok(deleted(&req.ctx, &v, true))
}

async fn recover(state: &SharedState, req: &DataRequest, name: &str) -> Result<Response, ApiError> {
    req.ctx.authorize(state, DataAction::SecretRecover, Some(name)).await?;
    let v = Objects::new(state, &req.ctx, KIND).recover(name).await?;
    ok(bundle(&req.ctx, &v, None))
}

async fn purge(state: &SharedState, req: &DataRequest, name: &str) -> Result<Response, ApiError> {
    req.ctx.authorize(state, DataAction::SecretPurge, Some(name)).await?;
    Objects::new(state, &req.ctx, KIND).purge(name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn backup(state: &SharedState, req: &DataRequest, name: &str) -> Result<Response, ApiError> {
    req.ctx.authorize(state, DataAction::SecretBackup, Some(name)).await?;
    let blob = Objects::new(state, &req.ctx, KIND).backup(name).await?;
    ok(json!({ "value": blob }))
}

async fn restore(state: &SharedState, req: DataRequest) -> Result<Response, ApiError> {
    req.ctx.authorize(state, DataAction::SecretRestore, None).await?;
    let p: BlobParams = parse_body(&req.body)?;
    let blob = p.value.ok_or_else(|| Error::bad_parameter("The property 'value' is required."))?;
    let v = Objects::new(state, &req.ctx, KIND).restore(&blob).await?;
    ok(bundle(&req.ctx, &v, None))
}
