//! The secret service: each operation checks the caller's permission, then works through the
//! versioned-object machinery. The data plane (`dataplane::secrets`) renders it as Azure's
//! JSON; the portal's secret pages render it as HTML.
use coffer_core::limits::MAX_SECRET_VALUE_BYTES;
use coffer_core::object::{AttributesPatch, ObjectKind, Tags};
use coffer_core::permissions::DataAction;
use coffer_core::{Error, Result};
use coffer_store::StoredVersion;
use zeroize::Zeroizing;

use crate::objects::{NewObject, ObjectPatch, Objects, Page, PageRequest, VaultContext, every_page};
use crate::state::AppState;

const KIND: ObjectKind = ObjectKind::Secret;

/// A version to set.
#[derive(Debug)]
pub struct NewSecret {
    pub value: Zeroizing<String>,
    pub content_type: Option<String>,
    pub tags: Tags,
    pub attributes: AttributesPatch,
}

/// A version with its value.
#[derive(Debug)]
pub struct SecretValue {
    pub version: StoredVersion,
    pub value: Zeroizing<String>,
    /// A certificate's secret: the version before this one (`previousVersion`, 2025-07-01).
    pub previous_version: Option<String>,
}

fn objects<'a>(state: &'a AppState, ctx: &'a VaultContext) -> Objects<'a> {
    Objects::new(state, ctx, KIND)
}

pub async fn set(state: &AppState, ctx: &VaultContext, name: &str, new: NewSecret) -> Result<SecretValue> {
    ctx.authorize(state, DataAction::SecretSet, Some(name)).await?;
    coffer_core::names::validate_object_name(name)?;
    if new.value.len() > MAX_SECRET_VALUE_BYTES {
        return Err(Error::bad_parameter(format!(
            "The secret value is {} bytes; the maximum is {MAX_SECRET_VALUE_BYTES} bytes.",
            new.value.len()
        )));
    }
    let objects = objects(state, ctx);
    objects.refuse_if_managed(name).await?;
    let version = objects
        .create_version(NewObject {
            name,
            payload: new.value.as_bytes(),
            attributes: new.attributes,
            tags: new.tags,
            content_type: new.content_type,
            managed: false,
            meta: None,
            version: None,
        })
        .await?;
    Ok(SecretValue { version, value: new.value, previous_version: None })
}

/// A version's value (the latest with `version: None`); refused for a disabled version.
pub async fn get(state: &AppState, ctx: &VaultContext, name: &str, version: Option<&str>) -> Result<SecretValue> {
    ctx.authorize(state, DataAction::SecretGet, Some(name)).await?;
    let objects = objects(state, ctx);
    let v = objects.read(name, version).await?;
    if !v.attributes.enabled {
        return Err(KIND.disabled("get"));
    }
    let plain = objects.open_payload(&v)?;
    let previous_version = if v.managed { objects.previous_version(&v).await? } else { None };
    Ok(SecretValue {
        value: Zeroizing::new(String::from_utf8_lossy(&plain).into_owned()),
        version: v,
        previous_version,
    })
}

/// A certificate's secret in the other content type (`outContentType`): PFX ↔ PEM, with its
/// key when the certificate's key is exportable. Only a certificate's own secret converts.
pub async fn get_as(
    state: &AppState,
    ctx: &VaultContext,
    name: &str,
    version: Option<&str>,
    content_type: &str,
) -> Result<SecretValue> {
    let mut got = get(state, ctx, name, version).await?;
    let from = got.version.content_type.clone().unwrap_or_default();
    if !got.version.managed {
        return Err(Error::bad_parameter(
            "outContentType applies to the secret of a certificate only; this secret is not one.",
        ));
    }
    if from.eq_ignore_ascii_case(content_type) {
        return Ok(got);
    }
    got.value = coffer_crypto::certs::convert_secret(&got.value, &from, content_type)
        .map_err(|e| Error::bad_parameter(e.to_string()))?;
    got.version.content_type = Some(content_type.to_string());
    Ok(got)
}

pub async fn update(
    state: &AppState,
    ctx: &VaultContext,
    name: &str,
    version: Option<&str>,
    patch: &ObjectPatch,
) -> Result<StoredVersion> {
    ctx.authorize(state, DataAction::SecretUpdate, Some(name)).await?;
    let objects = objects(state, ctx);
    objects.refuse_if_managed(name).await?;
    objects.update(name, version, patch).await
}

pub async fn list(state: &AppState, ctx: &VaultContext, page: &PageRequest) -> Result<Page> {
    ctx.authorize(state, DataAction::SecretList, None).await?;
    objects(state, ctx).list(page).await
}

pub async fn list_versions(state: &AppState, ctx: &VaultContext, name: &str, page: &PageRequest) -> Result<Page> {
    ctx.authorize(state, DataAction::SecretList, Some(name)).await?;
    objects(state, ctx).list_versions(name, page).await
}

/// Every secret (latest versions, no values), for pages that show them whole.
pub async fn list_all(state: &AppState, ctx: &VaultContext) -> Result<Vec<StoredVersion>> {
    every_page(|page| async move { list(state, ctx, &page).await }).await
}

/// Every version of a secret (no values).
pub async fn all_versions(state: &AppState, ctx: &VaultContext, name: &str) -> Result<Vec<StoredVersion>> {
    every_page(|page| async move { list_versions(state, ctx, name, &page).await }).await
}

/// Every deleted secret.
pub async fn all_deleted(state: &AppState, ctx: &VaultContext) -> Result<Vec<StoredVersion>> {
    every_page(|page| async move { list_deleted(state, ctx, &page).await }).await
}

pub async fn delete(state: &AppState, ctx: &VaultContext, name: &str) -> Result<StoredVersion> {
    ctx.authorize(state, DataAction::SecretDelete, Some(name)).await?;
    let objects = objects(state, ctx);
    objects.refuse_if_managed(name).await?;
    objects.delete(name).await
}

pub async fn list_deleted(state: &AppState, ctx: &VaultContext, page: &PageRequest) -> Result<Page> {
    ctx.authorize(state, DataAction::SecretList, None).await?;
    objects(state, ctx).list_deleted(page).await
}

pub async fn get_deleted(state: &AppState, ctx: &VaultContext, name: &str) -> Result<StoredVersion> {
    ctx.authorize(state, DataAction::SecretGetDeleted, Some(name)).await?;
    objects(state, ctx).get_deleted(name).await
}

pub async fn recover(state: &AppState, ctx: &VaultContext, name: &str) -> Result<StoredVersion> {
    ctx.authorize(state, DataAction::SecretRecover, Some(name)).await?;
    objects(state, ctx).recover(name).await
}

pub async fn purge(state: &AppState, ctx: &VaultContext, name: &str) -> Result<()> {
    ctx.authorize(state, DataAction::SecretPurge, Some(name)).await?;
    objects(state, ctx).purge(name).await
}

/// The sealed backup blob of every version.
pub async fn backup(state: &AppState, ctx: &VaultContext, name: &str) -> Result<String> {
    ctx.authorize(state, DataAction::SecretBackup, Some(name)).await?;
    objects(state, ctx).backup(name).await
}

pub async fn restore(state: &AppState, ctx: &VaultContext, blob: &str) -> Result<StoredVersion> {
    ctx.authorize(state, DataAction::SecretRestore, None).await?;
    objects(state, ctx).restore(blob).await
}
