//! Certificates: Azure Key Vault's `/certificates` and `/deletedcertificates` operations. A
//! certificate version has a key and a secret of the same name and version (`managed`): the
//! key holds its key pair, the secret its PFX or PEM. Issuer `Self` signs at once; `Unknown`
//! leaves a pending operation with a CSR until a chain is merged. Contacts and issuers are
//! vault-wide documents. Pending operations, which hold a private key, are sealed.
use std::collections::BTreeMap;

use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use coffer_core::object::ObjectKind;
use coffer_core::permissions::DataAction;
use coffer_core::{Error, ErrorKind, Result};
use coffer_crypto::b64;
use coffer_crypto::certs;
use coffer_crypto::keys::KeyMaterial;
use coffer_store::StoredVersion;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::render::{AttributesIn, attributes, page};
use super::{DataRequest, method_not_allowed, not_found_path};
use crate::audit::operations::DataOperation;
use crate::certificates::{
    CertPolicy, KIND, NewCertificate, PEM, PKCS12, PendingOp, at, cert_error, check_names_free, doc_key, key_error,
    load_doc, load_op, load_policy, new_key_for, op_meta_key, op_meta_prefix, payload_of, pending_not_found, save_doc,
    save_op, save_policy, store_certificate, x5t_of,
};
use crate::http::{ApiError, json as json_response, parse_body};
use crate::keys::material_of;
use crate::objects::{Objects, PageRequest, VaultContext};
use crate::state::{AppState, SharedState};

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
        v["error"] = e.clone();
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
async fn bundle(state: &AppState, ctx: &VaultContext, v: &StoredVersion) -> Result<Value> {
    let objects = Objects::new(state, ctx, KIND);
    let chain = payload_of(&objects, v)?;
    let mut b = item(ctx, v, true);
    b["kid"] = ctx.object_id(ObjectKind::Key, &v.name, Some(&v.version)).into();
    b["sid"] = ctx.object_id(ObjectKind::Secret, &v.name, Some(&v.version)).into();
    b["cer"] = b64::std_encode(chain.first().map(Vec::as_slice).unwrap_or_default()).into();
    let policy = load_policy(state, ctx, &v.name).await?.unwrap_or_default();
    b["contentType"] = policy.secret_props.content_type.clone().unwrap_or_else(|| PKCS12.into()).into();
    b["policy"] = policy_json(&policy, ctx, &v.name);
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
                NewCertificate {
                    chain: &[der],
                    key: &key,
                    policy: &policy,
                    enabled: enabled_of(p.attributes.as_ref()),
                    tags,
                },
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
            enabled: enabled_of(p.attributes.as_ref().or(op.attributes.as_ref())),
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
            enabled: enabled_of(p.attributes.as_ref()),
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
    Ok(json_response(StatusCode::OK, policy_json(&policy, &req.ctx, name)))
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
    Ok(json_response(StatusCode::OK, policy_json(&policy, &req.ctx, name)))
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
