//! The vault lifecycle service: create (or recover) and update a vault with Azure's one-way
//! rules, edit its access policies, find a caller's live vault. The ARM surface
//! (`management::vaults`) and the portal call it; who may change grants is decided here.
use coffer_core::lifecycle::{DEFAULT_RETENTION_DAYS, RetentionPolicy};
use coffer_core::object::{Tags, validate_tags};
use coffer_core::permissions::ManagementAction;
use coffer_core::principal::Caller;
use coffer_core::vault::{AccessPolicy, PolicyPermissions, Vault};
use coffer_core::{Error, ErrorKind, Result};
use coffer_store::ResourceGroup;
use serde::Deserialize;

use crate::authorization::{authorize_management, authorize_management_in_group};
use crate::state::AppState;

pub fn vault_not_found(name: &str) -> Error {
    Error::not_found(
        "ResourceNotFound",
        format!(
            "The Resource 'Microsoft.KeyVault/vaults/{}' under resource group was not found.",
            coffer_core::names::printable(name)
        ),
    )
}

/// The caller's tenant's subscription if `sub` names it (any casing), else 404.
pub async fn caller_subscription(state: &AppState, caller: &Caller, sub: &str) -> Result<String> {
    let tenant = state
        .store
        .get_tenant(&caller.tenant_id)
        .await?
        .ok_or_else(|| Error::internal("the caller's tenant is missing"))?;
    if !tenant.default_subscription_id.eq_ignore_ascii_case(sub) {
        return Err(Error::not_found(
            "SubscriptionNotFound",
            format!("The subscription '{}' could not be found.", coffer_core::names::printable(sub)),
        ));
    }
    Ok(tenant.default_subscription_id)
}

pub fn group_not_found(name: &str) -> Error {
    Error::not_found(
        "ResourceGroupNotFound",
        format!("Resource group '{}' could not be found.", coffer_core::names::printable(name)),
    )
}

/// A resource group of the subscription, or 404 `ResourceGroupNotFound`.
pub async fn existing_group(state: &AppState, sub: &str, name: &str) -> Result<ResourceGroup> {
    state.store.get_resource_group(sub, name).await?.ok_or_else(|| group_not_found(name))
}

/// A live vault of the caller's tenant in the given resource group.
pub async fn load_vault(state: &AppState, caller: &Caller, rg: &str, name: &str) -> Result<Vault> {
    let rec = state.store.get_vault_by_name(name).await?.ok_or_else(|| vault_not_found(name))?;
    let v = rec.vault;
    if v.is_deleted() || v.tenant_id != caller.tenant_id || !v.resource_group.eq_ignore_ascii_case(rg) {
        return Err(vault_not_found(name));
    }
    Ok(v)
}

/// A vault's settable properties (ARM's `properties`; unset: unchanged, or the default).
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(rename_all = "camelCase")]
pub struct VaultProperties {
    pub tenant_id: Option<String>,
    pub access_policies: Option<Vec<AccessPolicy>>,
    pub soft_delete_retention_in_days: Option<u32>,
    pub enable_purge_protection: Option<bool>,
    pub enable_rbac_authorization: Option<bool>,
    pub enable_soft_delete: Option<bool>,
    pub network_acls: Option<coffer_core::network::NetworkAcls>,
    /// `default` or `recover` (undelete a deleted vault of this name).
    pub create_mode: Option<String>,
}

/// A vault as a create or update asks for it (ARM's request body).
#[derive(Debug, Deserialize, Default, Clone)]
pub struct VaultSettings {
    pub location: Option<String>,
    pub tags: Option<Tags>,
    #[serde(default)]
    pub properties: VaultProperties,
}

/// Applies the settable properties to a vault (new or existing), with Azure's one-way rules.
fn apply_settings(v: &mut Vault, p: &VaultProperties, tags: Option<Tags>, creating: bool) -> Result<()> {
    if p.enable_soft_delete == Some(false) {
        return Err(Error::bad_parameter("Soft delete is always on in Coffer; enableSoftDelete cannot be false."));
    }
    if let Some(t) = &p.tenant_id
        && !t.eq_ignore_ascii_case(&v.tenant_id)
    {
        return Err(Error::bad_parameter("properties.tenantId must be the tenant of the caller."));
    }
    if let Some(days) = p.soft_delete_retention_in_days {
        if creating {
            v.retention = RetentionPolicy::new(days, v.retention.purge_protection)?;
        } else if days != v.retention.retention_days {
            return Err(Error::bad_parameter(
                "softDeleteRetentionInDays is fixed when the vault is created and cannot be changed.",
            ));
        }
    }
    match p.enable_purge_protection {
        Some(true) => v.retention.purge_protection = true,
        Some(false) if v.retention.purge_protection => {
            return Err(Error::bad_parameter("Purge protection, once enabled, cannot be disabled."));
        }
        _ => {}
    }
    if let Some(rbac) = p.enable_rbac_authorization {
        v.enable_rbac_authorization = rbac;
    }
    if let Some(policies) = &p.access_policies {
        let mut fresh = v.clone();
        fresh.access_policies.clear();
        for policy in policies {
            fresh.set_access_policy(policy.clone())?;
        }
        v.access_policies = fresh.access_policies;
    }
    if let Some(tags) = tags {
        validate_tags(&tags)?;
        v.tags = tags;
    }
    if let Some(acls) = &p.network_acls {
        let mut acls = acls.clone();
        acls.validate()?;
        v.network_acls = Some(acls);
    }
    Ok(())
}

/// Changes that reach data go beyond `vaults/write`. Switching the permission model turns one
/// set of grants off and another on, so Azure requires
/// `Microsoft.Authorization/roleAssignments/write` (Owner, User Access Administrator) for it:
/// otherwise a Contributor of an RBAC vault could switch it to access policies and grant itself
/// the values. Access policies written into an RBAC vault are dormant grants that take effect
/// at such a switch, so they need the same right.
async fn authorize_grant_changes(state: &AppState, caller: &Caller, before: &Vault, after: &Vault) -> Result<()> {
    let model_changes = before.enable_rbac_authorization != after.enable_rbac_authorization;
    let dormant_policies = after.enable_rbac_authorization && before.access_policies != after.access_policies;
    if model_changes || dormant_policies {
        authorize_management(state, caller, ManagementAction::RoleAssignmentWrite, Some(&after.name)).await?;
    }
    Ok(())
}

/// ARM's PUT: creates the vault (the creator becomes its Owner, in the same transaction),
/// updates it if it exists in this resource group, or with `createMode: recover` brings a
/// deleted one back.
pub async fn put_vault(
    state: &AppState,
    caller: &Caller,
    sub: &str,
    rg: &str,
    name: &str,
    settings: VaultSettings,
) -> Result<Vault> {
    let sub = caller_subscription(state, caller, sub).await?;
    coffer_core::names::validate_vault_name(name)?;
    let now = state.clock.now();
    match settings.properties.create_mode.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("default") => {}
        Some("recover") => return recover(state, caller, rg, name).await,
        Some(other) => {
            return Err(Error::bad_parameter(format!(
                "createMode '{}' is not supported (default, recover).",
                coffer_core::names::printable(other)
            )));
        }
    }
    if let Some(existing) = state.store.get_vault_by_name(name).await? {
        let mut v = existing.vault;
        if v.is_deleted() || v.tenant_id != caller.tenant_id || !v.resource_group.eq_ignore_ascii_case(rg) {
            return Err(Error::new(
                ErrorKind::Conflict,
                "VaultAlreadyExists",
                format!(
                    "The vault name '{name}' is already in use. Vault names are globally unique, and a \
                     deleted vault keeps its name until it is purged."
                ),
            ));
        }
        authorize_management(state, caller, ManagementAction::VaultWrite, Some(&v.name)).await?;
        let before = v.clone();
        apply_settings(&mut v, &settings.properties, settings.tags, false)?;
        authorize_grant_changes(state, caller, &before, &v).await?;
        v.updated = now;
        state.store.update_vault(&v).await?;
        return Ok(v);
    }
    authorize_management_in_group(state, caller, ManagementAction::VaultWrite, rg).await?;
    let group = existing_group(state, &sub, rg).await?;
    let mut v = Vault {
        id: coffer_crypto::random::guid(),
        name: name.to_string(),
        tenant_id: caller.tenant_id.clone(),
        subscription_id: sub,
        resource_group: group.name.clone(),
        location: settings.location.clone().unwrap_or(group.location),
        retention: RetentionPolicy::new(DEFAULT_RETENTION_DAYS, false)?,
        enable_rbac_authorization: false,
        access_policies: Vec::new(),
        tags: Tags::new(),
        network_acls: None,
        created_by: caller.object_id.clone(),
        created: now,
        updated: now,
        deletion: None,
    };
    apply_settings(&mut v, &settings.properties, settings.tags, true)?;
    // The creator owns what it created: management rights, visible as a role assignment,
    // written with the vault in one transaction.
    let owner = coffer_core::rbac::RoleAssignment {
        id: coffer_crypto::random::guid(),
        tenant_id: v.tenant_id.clone(),
        scope: coffer_core::rbac::Scope::Vault(v.name.to_ascii_lowercase()).key(),
        role_definition_id: coffer_core::rbac::OWNER.into(),
        principal_id: caller.object_id.clone(),
        created: now,
        created_by: caller.object_id.clone(),
    };
    let _root_write = state.keyring.root_write().await;
    let (_, wrapped) = state.keyring.new_vault_key(&v.id)?;
    let created = match state.store.create_vault_with_owner(&v, &wrapped, &owner).await {
        Ok(created) => created,
        Err(e) => {
            // Nothing was written: the key-encryption key just made belongs to nothing.
            let _ = state.keyring.shred_vault(&v.id);
            return Err(e);
        }
    };
    if !created {
        // Lost a race for the name: the key-encryption key just made belongs to nothing.
        state.keyring.shred_vault(&v.id)?;
        return Err(Error::new(
            ErrorKind::Conflict,
            "VaultAlreadyExists",
            format!("The vault name '{name}' is already in use."),
        ));
    }
    Ok(v)
}

/// A live vault of the caller's, with `action` allowed on it: what a change starts from, so
/// that who may is decided before the request's body is read (403 before 400, as ARM).
#[derive(Debug)]
pub struct Granted {
    vault: Vault,
    action: ManagementAction,
}

/// The vault `name` in the caller's subscription and resource group, if `action` is allowed on it.
pub async fn granted(
    state: &AppState,
    caller: &Caller,
    (sub, rg, name): (&str, &str, &str),
    action: ManagementAction,
) -> Result<Granted> {
    caller_subscription(state, caller, sub).await?;
    let vault = load_vault(state, caller, rg, name).await?;
    authorize_management(state, caller, action, Some(&vault.name)).await?;
    Ok(Granted { vault, action })
}

impl Granted {
    fn for_action(self, action: ManagementAction) -> Result<Vault> {
        if self.action != action {
            return Err(Error::internal("a vault was opened for another change"));
        }
        Ok(self.vault)
    }
}

/// ARM's PATCH: changes only what `settings` sets, on a vault granted for `VaultWrite`.
pub async fn patch_vault(state: &AppState, caller: &Caller, vault: Granted, settings: VaultSettings) -> Result<Vault> {
    let mut v = vault.for_action(ManagementAction::VaultWrite)?;
    let before = v.clone();
    apply_settings(&mut v, &settings.properties, settings.tags, false)?;
    authorize_grant_changes(state, caller, &before, &v).await?;
    v.updated = state.clock.now();
    state.store.update_vault(&v).await?;
    Ok(v)
}

/// `createMode: recover`: brings a deleted vault back with all its objects (not its role
/// assignments, as in Azure).
async fn recover(state: &AppState, caller: &Caller, rg: &str, name: &str) -> Result<Vault> {
    authorize_management_in_group(state, caller, ManagementAction::VaultWrite, rg).await?;
    let rec = state.store.get_vault_by_name(name).await?.filter(|r| r.vault.tenant_id == caller.tenant_id);
    let Some(rec) = rec.filter(|r| r.vault.is_deleted() && r.vault.resource_group.eq_ignore_ascii_case(rg)) else {
        return Err(Error::not_found(
            "DeletedVaultNotFound",
            format!(
                "No deleted vault named '{}' exists in resource group '{rg}'.",
                coffer_core::names::printable(name)
            ),
        ));
    };
    if !state.store.recover_vault(&rec.vault.id, state.clock.now()).await? {
        return Err(Error::conflict(
            Some("VaultIsBeingPurged"),
            format!("The vault '{name}' is being purged and cannot be recovered."),
        ));
    }
    load_vault(state, caller, rg, name).await
}

/// How `edit_access_policies` changes each listed principal's policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyEdit {
    /// Merge the permissions into the principal's policy.
    Add,
    /// Overwrite the principal's policy.
    Replace,
    /// Take the listed permissions away (all of them if none is listed), and the policy once
    /// it is empty.
    Remove,
}

impl PolicyEdit {
    pub fn parse(op: &str) -> Result<Self> {
        match op.to_ascii_lowercase().as_str() {
            "add" => Ok(Self::Add),
            "replace" => Ok(Self::Replace),
            "remove" => Ok(Self::Remove),
            _ => Err(Error::bad_parameter("The access policy operation must be add, replace or remove.")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Add => "add",
            Self::Replace => "replace",
            Self::Remove => "remove",
        }
    }
}

fn merge(into: &mut Vec<String>, add: &[String]) {
    for p in add {
        if !into.iter().any(|q| q.eq_ignore_ascii_case(p)) {
            into.push(p.clone());
        }
    }
}

fn subtract(from: &mut Vec<String>, remove: &[String]) {
    from.retain(|p| !remove.iter().any(|r| r.eq_ignore_ascii_case(p)));
}

/// Changes the access policies of the listed principals, on a vault granted for
/// `AccessPolicyWrite`; the vault as saved.
pub async fn edit_access_policies(
    state: &AppState,
    caller: &Caller,
    vault: Granted,
    edit: PolicyEdit,
    policies: Vec<AccessPolicy>,
) -> Result<Vault> {
    let mut v = vault.for_action(ManagementAction::AccessPolicyWrite)?;
    let before = v.clone();
    for policy in policies {
        coffer_core::vault::validate_permission_names(&policy.permissions)?;
        let existing = v.access_policies.iter().find(|p| p.object_id.eq_ignore_ascii_case(&policy.object_id)).cloned();
        match edit {
            PolicyEdit::Replace => v.set_access_policy(policy)?,
            PolicyEdit::Add => {
                let mut merged = existing
                    .unwrap_or_else(|| AccessPolicy { permissions: PolicyPermissions::default(), ..policy.clone() });
                merge(&mut merged.permissions.keys, &policy.permissions.keys);
                merge(&mut merged.permissions.secrets, &policy.permissions.secrets);
                merge(&mut merged.permissions.certificates, &policy.permissions.certificates);
                merge(&mut merged.permissions.storage, &policy.permissions.storage);
                v.set_access_policy(merged)?;
            }
            PolicyEdit::Remove => {
                if let Some(mut current) = existing {
                    let p = &policy.permissions;
                    let remove_all =
                        p.keys.is_empty() && p.secrets.is_empty() && p.certificates.is_empty() && p.storage.is_empty();
                    subtract(&mut current.permissions.keys, &p.keys);
                    subtract(&mut current.permissions.secrets, &p.secrets);
                    subtract(&mut current.permissions.certificates, &p.certificates);
                    subtract(&mut current.permissions.storage, &p.storage);
                    let cp = &current.permissions;
                    if remove_all
                        || (cp.keys.is_empty()
                            && cp.secrets.is_empty()
                            && cp.certificates.is_empty()
                            && cp.storage.is_empty())
                    {
                        v.remove_access_policy(&current.object_id);
                    } else {
                        v.set_access_policy(current)?;
                    }
                }
            }
        }
    }
    authorize_grant_changes(state, caller, &before, &v).await?;
    v.updated = state.clock.now();
    state.store.update_vault(&v).await?;
    Ok(v)
}
