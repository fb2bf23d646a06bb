//! Certificates: Azure Key Vault's `/certificates` and `/deletedcertificates` operations. A
//! certificate version has a key and a secret of the same name and version (`managed`): the
//! key holds its key pair, the secret its PFX or PEM. Issuer `Self` signs at once; `Unknown`
//! leaves a pending operation with a CSR until a chain is merged. Contacts and issuers are
//! vault-wide documents. Pending operations, which hold a private key, are sealed.
use std::collections::BTreeMap;

use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use coffer_core::object::ObjectKind;
use coffer_core::{Error, Result};
use coffer_crypto::b64;
use coffer_store::StoredVersion;
use serde::Deserialize;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::render::{AttributesIn, attributes, page};
use super::{DataRequest, method_not_allowed, not_found_path};
use crate::audit::operations::DataOperation;
use crate::certificates::{
    self, CertPolicy, CertificateChange, CertificateToCreate, CertificateToImport, CertificateVersion, KIND, PKCS12,
    PendingOp, PolicyPatch, x5t_of,
};
use crate::http::{ApiError, json as json_response, parse_body};
use crate::objects::{PageRequest, VaultContext};
use crate::state::SharedState;

mod backup;
mod contacts;
use backup::{backup, restore};
use contacts::{contacts, issuer_op, list_issuers};

type Handled = std::result::Result<Response, ApiError>;

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
        v["error"] = json!({"code": e.code, "message": e.message});
    }
    v
}

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
fn bundle(ctx: &VaultContext, c: &CertificateVersion) -> Value {
    let v = &c.version;
    let mut b = item(ctx, v, true);
    b["kid"] = ctx.object_id(ObjectKind::Key, &v.name, Some(&v.version)).into();
    b["sid"] = ctx.object_id(ObjectKind::Secret, &v.name, Some(&v.version)).into();
    b["cer"] = b64::std_encode(c.chain.first().map(Vec::as_slice).unwrap_or_default()).into();
    b["contentType"] = c.policy.secret_props.content_type.clone().unwrap_or_else(|| PKCS12.into()).into();
    b["policy"] = policy_json(&c.policy, ctx, &v.name);
    b["preserveCertOrder"] = false.into();
    b
}

fn ok(v: Value) -> Handled {
    Ok(json_response(StatusCode::OK, v))
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
pub async fn route(state: &SharedState, req: DataRequest, op: &DataOperation) -> Handled {
    use DataOperation as Op;
    match op {
        Op::CertificateList => list(state, &req).await,
        Op::CertificateContactsGet | Op::CertificateContactsSet | Op::CertificateContactsDelete => {
            contacts(state, &req).await
        }
        Op::CertificateRestore => restore(state, &req).await,
        Op::CertificateIssuersList => list_issuers(state, &req).await,
        Op::CertificateIssuerGet { issuer }
        | Op::CertificateIssuerSet { issuer }
        | Op::CertificateIssuerUpdate { issuer }
        | Op::CertificateIssuerDelete { issuer } => issuer_op(state, &req, issuer).await,
        Op::CertificateGet { name, version } => get(state, &req, name, version.as_deref()).await,
        Op::CertificateUpdate { name, version } => update(state, &req, name, version.as_deref()).await,
        Op::CertificateDelete { name } => delete(state, &req, name).await,
        Op::CertificateCreate { name } => create(state, &req, name).await,
        Op::CertificateImport { name } => import(state, &req, name).await,
        Op::CertificateListVersions { name } => list_versions(state, &req, name).await,
        Op::CertificateBackup { name } => backup(state, &req, name).await,
        Op::CertificatePolicyGet { name } => get_policy(state, &req, name).await,
        Op::CertificatePolicyUpdate { name } => update_policy(state, &req, name).await,
        Op::CertificatePendingGet { name } => get_op(state, &req, name).await,
        Op::CertificatePendingUpdate { name } => cancel_op(state, &req, name).await,
        Op::CertificatePendingDelete { name } => delete_op(state, &req, name).await,
        Op::CertificatePendingMerge { name } => merge(state, &req, name).await,
        Op::CertificateListDeleted => list_deleted(state, &req).await,
        Op::CertificateGetDeleted { name } => get_deleted(state, &req, name).await,
        Op::CertificatePurge { name } => purge(state, &req, name).await,
        Op::CertificateRecover { name } => recover(state, &req, name).await,
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
    let p: CreateParams = parse_body(&req.body)?;
    let new = CertificateToCreate {
        policy: p.policy,
        enabled: enabled_of(p.attributes.as_ref()),
        tags: p.tags.unwrap_or_default(),
    };
    let op = certificates::create(state, ctx, name, new).await?;
    // As Azure, the create response always says inProgress; a self-signed certificate is already
    // complete when the client first polls (the SDK's poller only polls an unfinished operation).
    // Retry-After says when to poll (Azure sends 10): at once for a finished operation, so a
    // poller that honours it (the Rust SDK's; 30 s without it) does not wait for nothing.
    let retry_after = if op.status == "completed" { "1" } else { "10" };
    let mut shown = op_json(ctx, name, &op);
    shown["status"] = "inProgress".into();
    let mut resp = json_response(StatusCode::ACCEPTED, shown);
    resp.headers_mut().insert(axum::http::header::RETRY_AFTER, HeaderValue::from_static(retry_after));
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
    let p: MergeParams = parse_body(&req.body)?;
    let chain: Vec<Vec<u8>> = p
        .x5c
        .unwrap_or_default()
        .iter()
        .map(|c| b64::std_decode(c).ok_or_else(|| Error::bad_parameter("x5c entries are base64 DER certificates.")))
        .collect::<Result<_>>()?;
    let given = (enabled_of(p.attributes.as_ref()), p.tags);
    let c = certificates::merge(state, &req.ctx, name, chain, given).await?;
    Ok(json_response(StatusCode::CREATED, bundle(&req.ctx, &c)))
}

async fn get_op(state: &SharedState, req: &DataRequest, name: &str) -> Handled {
    ok(op_json(&req.ctx, name, &certificates::pending(state, &req.ctx, name).await?))
}

#[derive(Deserialize)]
struct CancelParams {
    cancellation_requested: Option<bool>,
}

async fn cancel_op(state: &SharedState, req: &DataRequest, name: &str) -> Handled {
    let p: CancelParams = parse_body(&req.body)?;
    let cancel = p.cancellation_requested == Some(true);
    ok(op_json(&req.ctx, name, &certificates::cancel_pending(state, &req.ctx, name, cancel).await?))
}

async fn delete_op(state: &SharedState, req: &DataRequest, name: &str) -> Handled {
    ok(op_json(&req.ctx, name, &certificates::delete_pending(state, &req.ctx, name).await?))
}

#[derive(Deserialize)]
struct ImportParams {
    value: Option<String>,
    pwd: Option<Zeroizing<String>>,
    policy: Option<CertPolicy>,
    attributes: Option<Value>,
    tags: Option<BTreeMap<String, String>>,
}

async fn import(state: &SharedState, req: &DataRequest, name: &str) -> Handled {
    let p: ImportParams = parse_body(&req.body)?;
    // The base64 of a PFX or PEM file — or, as Azure also takes it (the JavaScript SDK sends
    // it so for `application/x-pem-file`), the PEM text itself.
    let file = p
        .value
        .as_deref()
        .and_then(|v| {
            if v.trim_start().starts_with("-----BEGIN") {
                Some(v.trim_start().as_bytes().to_vec())
            } else {
                b64::std_decode(v)
            }
        })
        .ok_or_else(|| {
            Error::bad_parameter("The property 'value' must be a PEM file, or the base64 of a PFX or PEM file.")
        })?;
    let new = CertificateToImport {
        file: Zeroizing::new(file),
        password: p.pwd,
        policy: p.policy,
        enabled: enabled_of(p.attributes.as_ref()),
        tags: p.tags.unwrap_or_default(),
    };
    ok(bundle(&req.ctx, &certificates::import(state, &req.ctx, name, new).await?))
}

async fn get(state: &SharedState, req: &DataRequest, name: &str, version: Option<&str>) -> Handled {
    match certificates::get(state, &req.ctx, name, version).await {
        Err(e) if e.kind == coffer_core::ErrorKind::NotFound => {
            match certificates::pending_certificate(state, &req.ctx, name, version).await? {
                Some(op) => ok(pending_bundle(&req.ctx, name, &op)),
                None => Err(e.into()),
            }
        }
        found => ok(bundle(&req.ctx, &found?)),
    }
}

/// A certificate with no version yet, only its pending operation: disabled, its policy, a link
/// to the operation; no `cer`, no `x5t` (Azure's shape).
fn pending_bundle(ctx: &VaultContext, name: &str, op: &PendingOp) -> Value {
    let created = op.created.unwrap_or_default();
    let mut attributes = serde_json::Map::new();
    attributes.insert("enabled".into(), false.into());
    attributes.insert("created".into(), created.into());
    attributes.insert("updated".into(), created.into());
    attributes.insert("recoveryLevel".into(), ctx.vault.retention.recovery_level().into());
    attributes.insert("recoverableDays".into(), ctx.vault.retention.retention_days.into());
    let mut b = json!({
        "id": ctx.object_id(KIND, name, Some(&op.request_id)),
        "attributes": attributes,
        "policy": policy_json(&op.policy, ctx, name),
        "pending": {"id": format!("{}/pending", ctx.object_id(KIND, name, None))},
    });
    if !op.tags.is_empty() {
        b["tags"] = json!(op.tags);
    }
    b
}

#[derive(Deserialize)]
struct UpdateParams {
    attributes: Option<AttributesIn>,
    tags: Option<BTreeMap<String, String>>,
    policy: Option<CertPolicy>,
}

async fn update(state: &SharedState, req: &DataRequest, name: &str, version: Option<&str>) -> Handled {
    let p: UpdateParams = parse_body(&req.body)?;
    let change = CertificateChange {
        attributes: p.attributes.map(|a| a.patch()).unwrap_or_default(),
        tags: p.tags,
        policy: p.policy,
    };
    ok(bundle(&req.ctx, &certificates::update(state, &req.ctx, name, version, change).await?))
}

async fn list(state: &SharedState, req: &DataRequest) -> Handled {
    let ctx = &req.ctx;
    let pr = PageRequest::from_query(&req.query)?;
    let include_pending = match crate::http::query_get(&req.query, "includePending") {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("true") => true,
        Some(v) if v.eq_ignore_ascii_case("false") => false,
        Some(_) => return Err(Error::bad_parameter("includePending is true or false.").into()),
    };
    let listing = certificates::list(state, ctx, &pr, include_pending).await?;
    let mut items: Vec<Value> = listing.page.items.iter().map(|v| item(ctx, v, false)).collect();
    // Certificates that exist only as a pending operation come after the others, on the last page.
    for pending in &listing.pending_only {
        let mut m = serde_json::Map::new();
        m.insert("id".into(), ctx.object_id(KIND, &pending.name, None).into());
        m.insert(
            "attributes".into(),
            json!({"enabled": false, "created": pending.created, "updated": pending.created,
                   "recoveryLevel": ctx.vault.retention.recovery_level(),
                   "recoverableDays": ctx.vault.retention.retention_days}),
        );
        if !pending.tags.is_empty() {
            m.insert("tags".into(), json!(pending.tags));
        }
        items.push(Value::Object(m));
    }
    let mut body = page(ctx, "certificates", &listing.page, pr.max_results, items);
    if let Some(next) =
        body["nextLink"].as_str().filter(|_| include_pending).map(|n| format!("{n}&includePending=true"))
    {
        body["nextLink"] = next.into();
    }
    ok(body)
}

async fn list_versions(state: &SharedState, req: &DataRequest, name: &str) -> Handled {
    let pr = PageRequest::from_query(&req.query)?;
    let p = certificates::list_versions(state, &req.ctx, name, &pr).await?;
    let items = p.items.iter().map(|v| item(&req.ctx, v, true)).collect();
    ok(page(&req.ctx, &format!("certificates/{name}/versions"), &p, pr.max_results, items))
}

async fn get_policy(state: &SharedState, req: &DataRequest, name: &str) -> Handled {
    let policy = certificates::policy(state, &req.ctx, name).await?;
    ok(policy_json(&policy, &req.ctx, name))
}

async fn update_policy(state: &SharedState, req: &DataRequest, name: &str) -> Handled {
    let patch: PolicyPatch = parse_body(&req.body)?;
    let policy = certificates::update_policy(state, &req.ctx, name, patch).await?;
    ok(policy_json(&policy, &req.ctx, name))
}

/// Deletes the certificate with its key and secret.
async fn delete(state: &SharedState, req: &DataRequest, name: &str) -> Handled {
    let c = certificates::delete(state, &req.ctx, name).await?;
    ok(with_deletion(&req.ctx, bundle(&req.ctx, &c), &c.version))
}

async fn list_deleted(state: &SharedState, req: &DataRequest) -> Handled {
    let pr = PageRequest::from_query(&req.query)?;
    let p = certificates::list_deleted(state, &req.ctx, &pr).await?;
    let items = p.items.iter().map(|v| with_deletion(&req.ctx, item(&req.ctx, v, false), v)).collect();
    ok(page(&req.ctx, "deletedcertificates", &p, pr.max_results, items))
}

async fn get_deleted(state: &SharedState, req: &DataRequest, name: &str) -> Handled {
    let c = certificates::get_deleted(state, &req.ctx, name).await?;
    ok(with_deletion(&req.ctx, bundle(&req.ctx, &c), &c.version))
}

async fn recover(state: &SharedState, req: &DataRequest, name: &str) -> Handled {
    ok(bundle(&req.ctx, &certificates::recover(state, &req.ctx, name).await?))
}

async fn purge(state: &SharedState, req: &DataRequest, name: &str) -> Handled {
    certificates::purge(state, &req.ctx, name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A certificate policy as Azure sends it, with its `id`.
fn policy_json(p: &CertPolicy, ctx: &VaultContext, name: &str) -> Value {
    let mut v = serde_json::to_value(p).unwrap_or(Value::Null);
    v["id"] = format!("{}/policy", ctx.object_id(KIND, name, None)).into();
    v
}

/// `attributes.enabled` of a request, if it says.
fn enabled_of(attributes: Option<&Value>) -> Option<bool> {
    attributes.and_then(|a| a.get("enabled")).and_then(Value::as_bool)
}
