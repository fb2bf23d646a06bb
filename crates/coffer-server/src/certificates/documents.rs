//! The vault-wide certificate documents: the contacts and the issuers, each sealed with the
//! vault's key and stored as one document.
use std::collections::BTreeMap;

use coffer_core::permissions::DataAction;
use coffer_core::{Error, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::objects::VaultContext;
use crate::state::AppState;

/// A certificate contact (Azure's `Contact`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Contact {
    pub email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

/// An issuer's account (Azure's `IssuerCredentials`). No `Debug`: it holds the password.
#[derive(Clone, Serialize, Deserialize)]
pub struct IssuerCredentials {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// Write-only: never rendered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pwd: Option<Zeroizing<String>>,
}

/// Azure's `AdministratorDetails`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdministratorDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

/// Azure's `OrganizationDetails`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OrganizationDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub admin_details: Vec<AdministratorDetails>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IssuerAttributes {
    pub enabled: bool,
    pub created: i64,
    pub updated: i64,
}

/// A certificate issuer (Azure's `IssuerBundle` without its id).
#[derive(Clone, Serialize, Deserialize)]
pub struct Issuer {
    pub provider: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<IssuerCredentials>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_details: Option<OrganizationDetails>,
    #[serde(default)]
    pub attributes: IssuerAttributes,
}

/// A set or an update of an issuer: the sections given replace the current ones.
#[derive(Default)]
pub struct IssuerChange {
    pub provider: Option<String>,
    pub credentials: Option<IssuerCredentials>,
    pub org_details: Option<OrganizationDetails>,
    pub enabled: Option<bool>,
}

/// The issuers of a vault by name.
pub type Issuers = BTreeMap<String, Issuer>;

pub(super) const CONTACTS: &str = "contacts";
pub(super) const ISSUERS: &str = "issuers";

pub(super) fn doc_key(ctx: &VaultContext, what: &str) -> String {
    format!("certificate-{what}/{}", ctx.vault.id)
}

pub(super) async fn load_doc<T: DeserializeOwned>(
    state: &AppState,
    ctx: &VaultContext,
    what: &str,
) -> Result<Option<T>> {
    let Some(sealed) = state.store.get_meta(&doc_key(ctx, what)).await? else { return Ok(None) };
    let plain = ctx
        .key
        .open(format!("coffer/certificate-{what}/v1|{}", ctx.vault.id).as_bytes(), &sealed)
        .map_err(|e| Error::internal(format!("{what}: {e}")))?;
    serde_json::from_slice(&plain).map(Some).map_err(|e| Error::internal(format!("{what}: {e}")))
}

pub(super) async fn save_doc<T: Serialize>(state: &AppState, ctx: &VaultContext, what: &str, doc: &T) -> Result<()> {
    let plain = Zeroizing::new(serde_json::to_vec(doc).map_err(|e| Error::internal(e.to_string()))?);
    let sealed = ctx.key.seal(format!("coffer/certificate-{what}/v1|{}", ctx.vault.id).as_bytes(), &plain)?;
    state.store.put_meta(&doc_key(ctx, what), &sealed).await
}

/// The e-mail addresses of the vault's certificate contacts.
pub async fn contact_emails(state: &AppState, ctx: &VaultContext) -> Result<Vec<String>> {
    let contacts: Vec<Contact> = load_doc(state, ctx, CONTACTS).await?.unwrap_or_default();
    Ok(contacts.into_iter().map(|c| c.email).collect())
}

fn contacts_not_found() -> Error {
    Error::not_found("ContactsNotFound", "Contacts not found")
}

pub async fn contacts(state: &AppState, ctx: &VaultContext) -> Result<Vec<Contact>> {
    ctx.authorize(state, DataAction::CertManageContacts, None).await?;
    load_doc(state, ctx, CONTACTS).await?.ok_or_else(contacts_not_found)
}

pub async fn set_contacts(state: &AppState, ctx: &VaultContext, contacts: Vec<Contact>) -> Result<Vec<Contact>> {
    ctx.authorize(state, DataAction::CertManageContacts, None).await?;
    save_doc(state, ctx, CONTACTS, &contacts).await?;
    Ok(contacts)
}

pub async fn delete_contacts(state: &AppState, ctx: &VaultContext) -> Result<Vec<Contact>> {
    ctx.authorize(state, DataAction::CertManageContacts, None).await?;
    let contacts = load_doc(state, ctx, CONTACTS).await?.ok_or_else(contacts_not_found)?;
    state.store.delete_meta(&doc_key(ctx, CONTACTS)).await?;
    Ok(contacts)
}

fn issuer_not_found(name: &str) -> Error {
    Error::not_found("CertificateIssuerNotFound", format!("Issuer not found: {name}"))
}

async fn load_issuers(state: &AppState, ctx: &VaultContext) -> Result<Issuers> {
    Ok(load_doc(state, ctx, ISSUERS).await?.unwrap_or_default())
}

pub async fn issuers(state: &AppState, ctx: &VaultContext) -> Result<Issuers> {
    ctx.authorize(state, DataAction::CertListIssuers, None).await?;
    load_issuers(state, ctx).await
}

pub async fn issuer(state: &AppState, ctx: &VaultContext, name: &str) -> Result<Issuer> {
    coffer_core::names::validate_object_name(name)?;
    ctx.authorize(state, DataAction::CertGetIssuers, None).await?;
    load_issuers(state, ctx).await?.remove(name).ok_or_else(|| issuer_not_found(name))
}

/// Sets an issuer (`create: true`, PUT) or changes an existing one (PATCH): the sections given
/// replace the current ones.
pub async fn set_issuer(
    state: &AppState,
    ctx: &VaultContext,
    name: &str,
    change: IssuerChange,
    create: bool,
) -> Result<Issuer> {
    coffer_core::names::validate_object_name(name)?;
    ctx.authorize(state, DataAction::CertSetIssuers, None).await?;
    let mut all = load_issuers(state, ctx).await?;
    let now = state.clock.now();
    let existing = all.get(name).cloned();
    if !create && existing.is_none() {
        return Err(issuer_not_found(name));
    }
    let mut issuer = existing.unwrap_or(Issuer {
        provider: String::new(),
        credentials: None,
        org_details: None,
        attributes: IssuerAttributes { enabled: true, created: now, updated: now },
    });
    if let Some(p) = change.provider {
        issuer.provider = p;
    }
    if change.credentials.is_some() {
        issuer.credentials = change.credentials;
    }
    if change.org_details.is_some() {
        issuer.org_details = change.org_details;
    }
    if issuer.provider.is_empty() {
        return Err(Error::bad_parameter("The property 'provider' is required."));
    }
    issuer.attributes.enabled = change.enabled.unwrap_or(issuer.attributes.enabled);
    issuer.attributes.updated = now;
    all.insert(name.to_string(), issuer.clone());
    save_doc(state, ctx, ISSUERS, &all).await?;
    Ok(issuer)
}

pub async fn delete_issuer(state: &AppState, ctx: &VaultContext, name: &str) -> Result<Issuer> {
    coffer_core::names::validate_object_name(name)?;
    ctx.authorize(state, DataAction::CertDeleteIssuers, None).await?;
    let mut all = load_issuers(state, ctx).await?;
    let issuer = all.remove(name).ok_or_else(|| issuer_not_found(name))?;
    save_doc(state, ctx, ISSUERS, &all).await?;
    Ok(issuer)
}
