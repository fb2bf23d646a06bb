//! Secrets: Azure Key Vault's `/secrets` and `/deletedsecrets` operations.
use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use coffer_core::Error;
use coffer_core::object::ObjectKind;
use coffer_store::StoredVersion;
use serde::Deserialize;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::render::{AttributesIn, attributes, page};
use super::{DataRequest, not_found_path};
use crate::audit::operations::DataOperation;
use crate::http::{ApiError, json as json_response, parse_body};
use crate::objects::{ObjectPatch, PageRequest, VaultContext};
use crate::secrets::{self, NewSecret};
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
    let p: SetParams = parse_body(&req.body)?;
    let value = p.value.ok_or_else(|| Error::bad_parameter("The property 'value' is required."))?;
    let new = NewSecret {
        value: Zeroizing::new(value),
        content_type: p.content_type,
        tags: p.tags.unwrap_or_default(),
        attributes: p.attributes.map(|a| a.patch()).unwrap_or_default(),
    };
    let set = secrets::set(state, &req.ctx, name, new).await?;
    ok(bundle(&req.ctx, &set.version, Some(&set.value)))
}

async fn get(state: &SharedState, req: &DataRequest, name: &str, version: Option<&str>) -> Result<Response, ApiError> {
    let got = match crate::http::query_get(&req.query, "outContentType") {
        Some(ct) => secrets::get_as(state, &req.ctx, name, version, ct).await?,
        None => secrets::get(state, &req.ctx, name, version).await?,
    };
    let mut b = bundle(&req.ctx, &got.version, Some(&got.value));
    if let Some(previous) = &got.previous_version {
        b["previousVersion"] = previous.clone().into();
    }
    ok(b)
}

async fn update(
    state: &SharedState,
    req: DataRequest,
    name: &str,
    version: Option<&str>,
) -> Result<Response, ApiError> {
    let p: UpdateParams = parse_body(&req.body)?;
    let patch = ObjectPatch {
        attributes: p.attributes.map(|a| a.patch()).unwrap_or_default(),
        tags: p.tags,
        content_type: p.content_type,
        meta: None,
    };
    let v = secrets::update(state, &req.ctx, name, version, &patch).await?;
    ok(bundle(&req.ctx, &v, None))
}

async fn list(state: &SharedState, req: &DataRequest) -> Result<Response, ApiError> {
    let pr = PageRequest::from_query(&req.query)?;
    let p = secrets::list(state, &req.ctx, &pr).await?;
    let items = p.items.iter().map(|v| item(&req.ctx, v, false)).collect();
    ok(page(&req.ctx, "secrets", &p, pr.max_results, items))
}

async fn list_versions(state: &SharedState, req: &DataRequest, name: &str) -> Result<Response, ApiError> {
    let pr = PageRequest::from_query(&req.query)?;
    let p = secrets::list_versions(state, &req.ctx, name, &pr).await?;
    let items = p.items.iter().map(|v| item(&req.ctx, v, true)).collect();
    ok(page(&req.ctx, &format!("secrets/{name}/versions"), &p, pr.max_results, items))
}

async fn delete(state: &SharedState, req: &DataRequest, name: &str) -> Result<Response, ApiError> {
    let v = secrets::delete(state, &req.ctx, name).await?;
    ok(deleted(&req.ctx, &v, true))
}

async fn list_deleted(state: &SharedState, req: &DataRequest) -> Result<Response, ApiError> {
    let pr = PageRequest::from_query(&req.query)?;
    let p = secrets::list_deleted(state, &req.ctx, &pr).await?;
    let items = p.items.iter().map(|v| deleted(&req.ctx, v, false)).collect();
    ok(page(&req.ctx, "deletedsecrets", &p, pr.max_results, items))
}

async fn get_deleted(state: &SharedState, req: &DataRequest, name: &str) -> Result<Response, ApiError> {
    let v = secrets::get_deleted(state, &req.ctx, name).await?;
    ok(deleted(&req.ctx, &v, true))
}

async fn recover(state: &SharedState, req: &DataRequest, name: &str) -> Result<Response, ApiError> {
    let v = secrets::recover(state, &req.ctx, name).await?;
    ok(bundle(&req.ctx, &v, None))
}

async fn purge(state: &SharedState, req: &DataRequest, name: &str) -> Result<Response, ApiError> {
    secrets::purge(state, &req.ctx, name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn backup(state: &SharedState, req: &DataRequest, name: &str) -> Result<Response, ApiError> {
    ok(json!({ "value": secrets::backup(state, &req.ctx, name).await? }))
}

async fn restore(state: &SharedState, req: DataRequest) -> Result<Response, ApiError> {
    let p: BlobParams = parse_body(&req.body)?;
    let blob = p.value.ok_or_else(|| Error::bad_parameter("The property 'value' is required."))?;
    let v = secrets::restore(state, &req.ctx, &blob).await?;
    ok(bundle(&req.ctx, &v, None))
}
