//! The certificate service's operations: create (self-signed at once, or a pending operation
//! with a CSR), merge, import, read, update, list, the policy, delete, recover and purge. Each
//! checks the caller's permission first. A certificate's key and secret (managed, of the same
//! name) follow it through delete, recover and purge.
use coffer_core::object::{AttributesPatch, ObjectKind, Tags};
use coffer_core::permissions::DataAction;
use coffer_core::{Error, ErrorKind, Result};
use coffer_crypto::certs;
use coffer_crypto::keys::KeyMaterial;
use coffer_store::StoredVersion;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::{
    CertPolicy, IssuerParams, KIND, KeyProps, LifetimeAction, NewCertificate, OpAttributes, PEM, PendingOp,
    PolicyAttributes, SecretProps, X509Props, cert_error, check_names_free, key_error, load_op, load_policy,
    new_key_for, op_meta_key, op_meta_prefix, payload_of, pending_not_found, save_op, save_policy, store_certificate,
};
use crate::keys::material_of;
use crate::objects::{ObjectPatch, Objects, Page, PageRequest, VaultContext, every_page};
use crate::state::AppState;

/// A certificate version with its chain (DER, leaf first) and the certificate's policy.
#[derive(Debug)]
pub struct CertificateVersion {
    pub version: StoredVersion,
    pub chain: Vec<Vec<u8>>,
    pub policy: CertPolicy,
}

/// A certificate to create: with its policy, or with the one it has.
#[derive(Debug, Default)]
pub struct CertificateToCreate {
    pub policy: Option<CertPolicy>,
    /// `attributes.enabled` as the client gave it.
    pub enabled: Option<bool>,
    pub tags: Tags,
}

/// A certificate to import from a PFX or PEM file. No `Debug`: it holds the private key.
pub struct CertificateToImport {
    /// The file's bytes (PEM text or PFX).
    pub file: Zeroizing<Vec<u8>>,
    pub password: Option<Zeroizing<String>>,
    pub policy: Option<CertPolicy>,
    pub enabled: Option<bool>,
    pub tags: Tags,
}

/// A change of a certificate version's attributes, tags or the certificate's policy.
#[derive(Debug, Default)]
pub struct CertificateChange {
    pub attributes: AttributesPatch,
    pub tags: Option<Tags>,
    pub policy: Option<CertPolicy>,
}

/// An update of a certificate's policy: the sections given replace the current ones (PATCH).
#[derive(Debug, Default, Deserialize)]
pub struct PolicyPatch {
    pub key_props: Option<KeyProps>,
    pub secret_props: Option<SecretProps>,
    pub x509_props: Option<X509Props>,
    pub lifetime_actions: Option<Vec<LifetimeAction>>,
    pub issuer: Option<IssuerParams>,
    pub attributes: Option<PolicyAttributes>,
}

/// A certificate that exists only as a pending operation (no version yet).
#[derive(Debug)]
pub struct PendingOnly {
    pub name: String,
    pub created: i64,
    pub tags: Tags,
}

/// A page of certificates, and (on the last page, when asked) those only pending.
#[derive(Debug)]
pub struct CertificateListing {
    pub page: Page,
    pub pending_only: Vec<PendingOnly>,
}

fn objects<'a>(state: &'a AppState, ctx: &'a VaultContext) -> Objects<'a> {
    Objects::new(state, ctx, KIND)
}

/// A stored version with its chain and policy.
async fn with_chain(state: &AppState, ctx: &VaultContext, version: StoredVersion) -> Result<CertificateVersion> {
    let chain = payload_of(&objects(state, ctx), &version)?;
    let policy = load_policy(state, ctx, &version.name).await?.unwrap_or_default();
    Ok(CertificateVersion { version, chain, policy })
}

fn busy() -> Error {
    Error::conflict(
        None,
        "A new key vault certificate can not be created or imported while a pending key vault certificate's status is inProgress.",
    )
}

/// Refuses while an operation is in progress for the name.
async fn refuse_if_pending(state: &AppState, ctx: &VaultContext, name: &str) -> Result<()> {
    match load_op(state, ctx, name).await? {
        Some(op) if op.status == "inProgress" => Err(busy()),
        _ => Ok(()),
    }
}

/// Starts a certificate: issuer `Self` signs at once (the operation is complete), `Unknown`
/// leaves the operation in progress with a CSR to have signed and merged.
pub async fn create(state: &AppState, ctx: &VaultContext, name: &str, new: CertificateToCreate) -> Result<PendingOp> {
    ctx.authorize(state, DataAction::CertCreate, Some(name)).await?;
    coffer_core::names::validate_object_name(name)?;
    let now = state.clock.now();
    let asks_exportable = new.policy.as_ref().is_some_and(|p| p.key_props.exportable == Some(true));
    let mut policy = match new.policy {
        Some(policy) => policy,
        None => load_policy(state, ctx, name)
            .await?
            .ok_or_else(|| Error::bad_parameter("The property 'policy' is required."))?,
    };
    policy.normalize(now)?;
    refuse_if_pending(state, ctx, name).await?;
    check_names_free(state, ctx, name).await?;
    let issuer = policy.issuer_name();
    let subject = policy.subject()?;
    // A new key unless the policy reuses the current one.
    let current_key = if policy.key_props.reuse_key == Some(true) {
        let keys = Objects::new(state, ctx, ObjectKind::Key);
        match keys.read(name, None).await {
            Ok(v) if v.managed => Some(material_of(&keys, &v)?),
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
        )));
    }
    policy.key_props.exportable = Some(key.exportable);
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
        attributes: new.enabled.map(|enabled| OpAttributes { enabled: Some(enabled) }),
        tags: new.tags.clone(),
        error: None,
    };
    match issuer.as_str() {
        "Self" => {
            let der = certs::self_signed(&subject, &key, now).map_err(cert_error)?;
            let certificate =
                NewCertificate { chain: &[der], key: &key, policy: &policy, enabled: new.enabled, tags: new.tags };
            store_certificate(state, ctx, name, certificate).await?;
            op.status = "completed".into();
            op.status_details = String::new();
        }
        "Unknown" => {
            op.csr = Some(coffer_crypto::b64::std_encode(&certs::csr(&subject, &key, now).map_err(cert_error)?));
            op.key = Some(KeyMaterial::clone(&key));
        }
        other => {
            return Err(Error::bad_parameter(format!(
                "The issuer '{}' is not supported: this vault issues with 'Self', or creates a CSR with 'Unknown' for you to have signed and merge.",
                coffer_core::names::printable(other)
            )));
        }
    }
    save_op(state, ctx, name, &op).await?;
    Ok(op)
}

/// Completes a pending operation with the signed chain (DER, leaf first).
pub async fn merge(
    state: &AppState,
    ctx: &VaultContext,
    name: &str,
    chain: Vec<Vec<u8>>,
    (enabled, tags): (Option<bool>, Option<Tags>),
) -> Result<CertificateVersion> {
    ctx.authorize(state, DataAction::CertCreate, Some(name)).await?;
    let mut op =
        load_op(state, ctx, name).await?.filter(|o| o.status == "inProgress").ok_or_else(|| pending_not_found(name))?;
    let leaf =
        chain.first().ok_or_else(|| Error::bad_parameter("The property 'x5c' (the certificate chain) is required."))?;
    let key = op.key.take().ok_or_else(|| Error::internal("pending operation without a key"))?;
    if !certs::matches_key(leaf, &key) {
        return Err(Error::bad_parameter("The merged certificate does not match the key of the pending request."));
    }
    let enabled = enabled.or(op.attributes.as_ref().and_then(|a| a.enabled));
    let tags = tags.unwrap_or_else(|| op.tags.clone());
    let certificate = NewCertificate { chain: &chain, key: &key, policy: &op.policy, enabled, tags };
    let v = store_certificate(state, ctx, name, certificate).await?;
    op.status = "completed".into();
    op.status_details = String::new();
    save_op(state, ctx, name, &op).await?;
    with_chain(state, ctx, v).await
}

/// The certificate's operation (pending, completed or cancelled).
pub async fn pending(state: &AppState, ctx: &VaultContext, name: &str) -> Result<PendingOp> {
    ctx.authorize(state, DataAction::CertGet, Some(name)).await?;
    load_op(state, ctx, name).await?.ok_or_else(|| pending_not_found(name))
}

/// Cancels an operation in progress (`cancel: false` only reads it back, as Azure).
pub async fn cancel_pending(state: &AppState, ctx: &VaultContext, name: &str, cancel: bool) -> Result<PendingOp> {
    ctx.authorize(state, DataAction::CertUpdate, Some(name)).await?;
    let mut op = load_op(state, ctx, name).await?.ok_or_else(|| pending_not_found(name))?;
    if cancel {
        if op.status != "inProgress" {
            return Err(Error::bad_parameter("Only an operation in progress can be cancelled."));
        }
        op.cancellation_requested = true;
        op.status = "cancelled".into();
        op.status_details = "The certificate request was cancelled.".into();
        op.key = None;
        save_op(state, ctx, name, &op).await?;
    }
    Ok(op)
}

/// Forgets the certificate's operation.
pub async fn delete_pending(state: &AppState, ctx: &VaultContext, name: &str) -> Result<PendingOp> {
    ctx.authorize(state, DataAction::CertUpdate, Some(name)).await?;
    let op = load_op(state, ctx, name).await?.ok_or_else(|| pending_not_found(name))?;
    state.store.delete_meta(&op_meta_key(ctx, name)).await?;
    Ok(op)
}

/// Imports a certificate with its private key from PEM (`-----BEGIN`) or PFX.
pub async fn import(
    state: &AppState,
    ctx: &VaultContext,
    name: &str,
    new: CertificateToImport,
) -> Result<CertificateVersion> {
    ctx.authorize(state, DataAction::CertImport, Some(name)).await?;
    coffer_core::names::validate_object_name(name)?;
    let is_pem = new.file.starts_with(b"-----BEGIN");
    let (chain, pkcs8) = if is_pem {
        let text = std::str::from_utf8(&new.file).map_err(|_| Error::bad_parameter("The PEM is not text."))?;
        let (chain, key) = certs::parse_pem(text).map_err(cert_error)?;
        (chain, key.ok_or_else(|| Error::bad_parameter("The PEM holds no private key ('PRIVATE KEY' block)."))?)
    } else {
        let password = new.password.as_ref().map(|p| p.as_str()).unwrap_or("");
        certs::parse_pfx(&new.file, password).map_err(cert_error)?
    };
    let key = KeyMaterial::from_pkcs8(&pkcs8).map_err(key_error)?;
    if !certs::matches_key(&chain[0], &key) {
        return Err(Error::bad_parameter("The certificate does not match the private key."));
    }
    refuse_if_pending(state, ctx, name).await?;
    check_names_free(state, ctx, name).await?;
    let info = coffer_crypto::x509::parse_certificate(&chain[0]).map_err(|e| Error::bad_parameter(e.to_string()))?;
    let mut policy = match new.policy {
        Some(p) => p,
        None => load_policy(state, ctx, name).await?.unwrap_or_default(),
    };
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
    if policy.secret_props.content_type.is_none() && is_pem {
        policy.secret_props.content_type = Some(PEM.into());
    }
    policy.normalize(state.clock.now())?;
    let key = key.with_exportable(policy.key_props.exportable.unwrap_or(true));
    let certificate =
        NewCertificate { chain: &chain, key: &key, policy: &policy, enabled: new.enabled, tags: new.tags };
    let v = store_certificate(state, ctx, name, certificate).await?;
    with_chain(state, ctx, v).await
}

/// A version (the latest with `version: None`) with its chain and policy.
pub async fn get(
    state: &AppState,
    ctx: &VaultContext,
    name: &str,
    version: Option<&str>,
) -> Result<CertificateVersion> {
    ctx.authorize(state, DataAction::CertGet, Some(name)).await?;
    let v = objects(state, ctx).read(name, version).await?;
    with_chain(state, ctx, v).await
}

/// A certificate that so far exists only as its pending operation, as `GET /certificates/{name}`
/// shows it (Azure answers 200 with the disabled pending certificate: id, policy, attributes,
/// no `cer`). `version` is the operation's request id (the version in the id shown). `None`
/// if there is no such operation.
pub async fn pending_certificate(
    state: &AppState,
    ctx: &VaultContext,
    name: &str,
    version: Option<&str>,
) -> Result<Option<PendingOp>> {
    ctx.authorize(state, DataAction::CertGet, Some(name)).await?;
    let op = load_op(state, ctx, name).await?;
    Ok(op.filter(|o| version.is_none_or(|v| v == o.request_id)))
}

pub async fn update(
    state: &AppState,
    ctx: &VaultContext,
    name: &str,
    version: Option<&str>,
    change: CertificateChange,
) -> Result<CertificateVersion> {
    ctx.authorize(state, DataAction::CertUpdate, Some(name)).await?;
    let patch = ObjectPatch { attributes: change.attributes, tags: change.tags, content_type: None, meta: None };
    let v = objects(state, ctx).update(name, version, &patch).await?;
    if let Some(mut policy) = change.policy {
        policy.normalize(state.clock.now())?;
        save_policy(state, ctx, name, &policy).await?;
    }
    with_chain(state, ctx, v).await
}

/// A page of certificates; with `include_pending`, the last page also names those that exist
/// only as a pending operation.
pub async fn list(
    state: &AppState,
    ctx: &VaultContext,
    page: &PageRequest,
    include_pending: bool,
) -> Result<CertificateListing> {
    ctx.authorize(state, DataAction::CertList, None).await?;
    let page = objects(state, ctx).list(page).await?;
    let pending_only =
        if include_pending && page.next.is_none() { pending_only(state, ctx).await? } else { Vec::new() };
    Ok(CertificateListing { page, pending_only })
}

/// The pending operations whose certificate has no version yet.
async fn pending_only(state: &AppState, ctx: &VaultContext) -> Result<Vec<PendingOnly>> {
    let prefix = op_meta_prefix(ctx);
    let objects = objects(state, ctx);
    let mut out = Vec::new();
    for (key, _) in state.store.list_meta(&prefix).await? {
        let name_key = &key[prefix.len()..];
        match objects.read(name_key, None).await {
            Ok(_) => continue,
            Err(e) if e.kind == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let Some(op) = load_op(state, ctx, name_key).await? else { continue };
        out.push(PendingOnly {
            name: op.name.clone().unwrap_or_else(|| name_key.to_string()),
            created: op.created.unwrap_or_default(),
            tags: op.tags,
        });
    }
    Ok(out)
}

pub async fn list_versions(state: &AppState, ctx: &VaultContext, name: &str, page: &PageRequest) -> Result<Page> {
    ctx.authorize(state, DataAction::CertList, Some(name)).await?;
    objects(state, ctx).list_versions(name, page).await
}

/// Every certificate (latest versions), for pages that show them whole.
pub async fn list_all(state: &AppState, ctx: &VaultContext) -> Result<Vec<StoredVersion>> {
    every_page(|page| async move { list(state, ctx, &page, false).await.map(|l| l.page) }).await
}

/// Every version of a certificate.
pub async fn all_versions(state: &AppState, ctx: &VaultContext, name: &str) -> Result<Vec<StoredVersion>> {
    every_page(|page| async move { list_versions(state, ctx, name, &page).await }).await
}

/// The certificate's policy (or its pending operation's, before the first version).
pub async fn policy(state: &AppState, ctx: &VaultContext, name: &str) -> Result<CertPolicy> {
    ctx.authorize(state, DataAction::CertGet, Some(name)).await?;
    match load_policy(state, ctx, name).await? {
        Some(p) => Ok(p),
        None => load_op(state, ctx, name).await?.map(|o| o.policy).ok_or_else(|| KIND.not_found(name)),
    }
}

pub async fn update_policy(state: &AppState, ctx: &VaultContext, name: &str, patch: PolicyPatch) -> Result<CertPolicy> {
    ctx.authorize(state, DataAction::CertUpdate, Some(name)).await?;
    objects(state, ctx).read(name, None).await?;
    let mut policy = load_policy(state, ctx, name).await?.unwrap_or_default();
    let PolicyPatch { key_props, secret_props, x509_props, lifetime_actions, issuer, attributes } = patch;
    policy.key_props = key_props.unwrap_or(policy.key_props);
    policy.secret_props = secret_props.unwrap_or(policy.secret_props);
    policy.x509_props = x509_props.unwrap_or(policy.x509_props);
    policy.lifetime_actions = lifetime_actions.unwrap_or(policy.lifetime_actions);
    policy.issuer = issuer.unwrap_or(policy.issuer);
    policy.attributes = attributes.unwrap_or(policy.attributes);
    policy.normalize(state.clock.now())?;
    save_policy(state, ctx, name, &policy).await?;
    Ok(policy)
}

/// Applies `change` to the certificate's key and secret too, where they exist.
async fn with_key_and_secret<'a, F, Fut, T>(state: &'a AppState, ctx: &'a VaultContext, change: F) -> Result<()>
where
    F: Fn(Objects<'a>) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    for kind in [ObjectKind::Key, ObjectKind::Secret] {
        match change(Objects::new(state, ctx, kind)).await {
            Ok(_) => {}
            Err(e) if e.kind == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Deletes the certificate with its key and secret; its operation is forgotten.
pub async fn delete(state: &AppState, ctx: &VaultContext, name: &str) -> Result<CertificateVersion> {
    ctx.authorize(state, DataAction::CertDelete, Some(name)).await?;
    let v = objects(state, ctx).delete(name).await?;
    with_key_and_secret(state, ctx, |o| async move { o.delete(name).await }).await?;
    state.store.delete_meta(&op_meta_key(ctx, name)).await?;
    with_chain(state, ctx, v).await
}

pub async fn list_deleted(state: &AppState, ctx: &VaultContext, page: &PageRequest) -> Result<Page> {
    ctx.authorize(state, DataAction::CertList, None).await?;
    objects(state, ctx).list_deleted(page).await
}

/// Every deleted certificate.
pub async fn all_deleted(state: &AppState, ctx: &VaultContext) -> Result<Vec<StoredVersion>> {
    every_page(|page| async move { list_deleted(state, ctx, &page).await }).await
}

pub async fn get_deleted(state: &AppState, ctx: &VaultContext, name: &str) -> Result<CertificateVersion> {
    ctx.authorize(state, DataAction::CertGetDeleted, Some(name)).await?;
    let v = objects(state, ctx).get_deleted(name).await?;
    with_chain(state, ctx, v).await
}

pub async fn recover(state: &AppState, ctx: &VaultContext, name: &str) -> Result<CertificateVersion> {
    ctx.authorize(state, DataAction::CertRecover, Some(name)).await?;
    let v = objects(state, ctx).recover(name).await?;
    with_key_and_secret(state, ctx, |o| async move { o.recover(name).await }).await?;
    with_chain(state, ctx, v).await
}

pub async fn purge(state: &AppState, ctx: &VaultContext, name: &str) -> Result<()> {
    ctx.authorize(state, DataAction::CertPurge, Some(name)).await?;
    objects(state, ctx).purge(name).await?;
    with_key_and_secret(state, ctx, |o| async move { o.purge(name).await }).await
}
