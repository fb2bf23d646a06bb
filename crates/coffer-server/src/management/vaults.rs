//! `Microsoft.KeyVault/vaults`: create (or recover) or update, show, list, delete (soft),
//! deleted vaults, purge (crypto-shredding), name checks and access-policy changes.
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use coffer_core::lifecycle::{DEFAULT_RETENTION_DAYS, RetentionPolicy};
use coffer_core::object::{Tags, validate_tags};
use coffer_core::principal::Caller;
use coffer_core::vault::{AccessPolicy, PolicyPermissions, Vault};
use coffer_core::{Error, ErrorKind, Result};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{caller_subscription, existing_group};
use crate::authorization::authorize_management;
use crate::http::{ApiResult, json as json_response, parse_body};
use crate::state::SharedState;
use coffer_core::permissions::ManagementAction;

const PROVIDER: &str = "providers/Microsoft.KeyVault";

fn vault_not_found(name: &str) -> Error {
    Error::not_found(
        "ResourceNotFound",
        format!(
            "The Resource 'Microsoft.KeyVault/vaults/{}' under resource group was not found.",
            coffer_core::names::printable(name)
        ),
    )
}

/// The ARM representation of a vault.
pub fn vault_json(state: &SharedState, v: &Vault) -> Value {
    let mut props = json!({
        "sku": {"family": "A", "name": "standard"},
        "tenantId": v.tenant_id,
        "accessPolicies": v.access_policies,
        "enabledForDeployment": false,
        "enabledForDiskEncryption": false,
        "enabledForTemplateDeployment": false,
        "enableSoftDelete": true,
        "softDeleteRetentionInDays": v.retention.retention_days,
        "enableRbacAuthorization": v.enable_rbac_authorization,
        "vaultUri": state.names.vault_uri(&v.name),
        "provisioningState": "Succeeded",
        "publicNetworkAccess": "Enabled",
    });
    if v.retention.purge_protection {
        props["enablePurgeProtection"] = true.into();
    }
    if let Some(acls) = &v.network_acls {
        props["networkAcls"] = json!(acls);
    }
    json!({
        "id": v.resource_id(),
        "name": v.name,
        "type": "Microsoft.KeyVault/vaults",
        "location": v.location,
        "tags": v.tags,
        "properties": props,
    })
}

/// The live vaults the caller may read (at `/` once, then per vault if needed).
async fn visible_vaults(state: &SharedState, caller: &Caller) -> Result<Vec<Vault>> {
    let all = state.store.list_vaults(&caller.tenant_id).await?;
    let everything = authorize_management(state, caller, ManagementAction::VaultRead, None).await.is_ok();
    let mut out = Vec::new();
    for v in all.into_iter().filter(|v| !v.is_deleted()) {
        if everything || authorize_management(state, caller, ManagementAction::VaultRead, Some(&v.name)).await.is_ok() {
            out.push(v);
        }
    }
    Ok(out)
}

pub(super) async fn list_vaults(
    State(state): State<SharedState>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(sub): Path<String>,
) -> ApiResult<Response> {
    caller_subscription(&state, &caller, &sub).await?;
    let items: Vec<Value> = visible_vaults(&state, &caller).await?.iter().map(|v| vault_json(&state, v)).collect();
    Ok(json_response(StatusCode::OK, json!({"value": items, "nextLink": null})))
}

pub(super) async fn list_vaults_in_group(
    State(state): State<SharedState>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path((sub, rg)): Path<(String, String)>,
) -> ApiResult<Response> {
    caller_subscription(&state, &caller, &sub).await?;
    let items: Vec<Value> = visible_vaults(&state, &caller)
        .await?
        .iter()
        .filter(|v| v.resource_group.eq_ignore_ascii_case(&rg))
        .map(|v| vault_json(&state, v))
        .collect();
    Ok(json_response(StatusCode::OK, json!({"value": items, "nextLink": null})))
}

/// A live vault of the caller's tenant in the given resource group.
async fn load_vault(state: &SharedState, caller: &Caller, rg: &str, name: &str) -> Result<Vault> {
    let rec = state.store.get_vault_by_name(name).await?.ok_or_else(|| vault_not_found(name))?;
    let v = rec.vault;
    if v.is_deleted() || v.tenant_id != caller.tenant_id || !v.resource_group.eq_ignore_ascii_case(rg) {
        return Err(vault_not_found(name));
    }
    Ok(v)
}

pub(super) async fn show_vault(
    State(state): State<SharedState>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path((sub, rg, name)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    caller_subscription(&state, &caller, &sub).await?;
    let v = load_vault(&state, &caller, &rg, &name).await?;
    authorize_management(&state, &caller, ManagementAction::VaultRead, Some(&v.name)).await?;
    Ok(json_response(StatusCode::OK, vault_json(&state, &v)))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct VaultPropsIn {
    tenant_id: Option<String>,
    access_policies: Option<Vec<AccessPolicy>>,
    soft_delete_retention_in_days: Option<u32>,
    enable_purge_protection: Option<bool>,
    enable_rbac_authorization: Option<bool>,
    enable_soft_delete: Option<bool>,
    network_acls: Option<coffer_core::network::NetworkAcls>,
    /// `default` or `recover` (undelete a deleted vault of this name).
    create_mode: Option<String>,
}

#[derive(Deserialize)]
struct VaultIn {
    location: Option<String>,
    tags: Option<Tags>,
    #[serde(default)]
    properties: VaultPropsIn,
}

/// Applies the settable properties to a vault (new or existing), with Azure's one-way rules.
fn apply_props(v: &mut Vault, p: &VaultPropsIn, tags: Option<Tags>, creating: bool) -> Result<()> {
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
async fn authorize_grant_changes(state: &SharedState, caller: &Caller, before: &Vault, after: &Vault) -> Result<()> {
    let model_changes = before.enable_rbac_authorization != after.enable_rbac_authorization;
    let dormant_policies = after.enable_rbac_authorization && before.access_policies != after.access_policies;
    if model_changes || dormant_policies {
        authorize_management(state, caller, ManagementAction::RoleAssignmentWrite, Some(&after.name)).await?;
    }
    Ok(())
}

pub(crate) async fn create_or_update_vault(
    State(state): State<SharedState>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path((sub, rg, name)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let sub = caller_subscription(&state, &caller, &sub).await?;
    coffer_core::names::validate_vault_name(&name)?;
    let input: VaultIn = parse_body(&body)?;
    let now = state.clock.now();
    match input.properties.create_mode.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("default") => {}
        Some("recover") => return recover(&state, &caller, &rg, &name).await,
        Some(other) => {
            return Err(Error::bad_parameter(format!(
                "createMode '{}' is not supported (default, recover).",
                coffer_core::names::printable(other)
            ))
            .into());
        }
    }
    if let Some(existing) = state.store.get_vault_by_name(&name).await? {
        let mut v = existing.vault;
        if v.is_deleted() || v.tenant_id != caller.tenant_id || !v.resource_group.eq_ignore_ascii_case(&rg) {
            return Err(Error::new(
                ErrorKind::Conflict,
                "VaultAlreadyExists",
                format!(
                    "The vault name '{name}' is already in use. Vault names are globally unique, and a \
                     deleted vault keeps its name until it is purged."
                ),
            )
            .into());
        }
        authorize_management(&state, &caller, ManagementAction::VaultWrite, Some(&v.name)).await?;
        let before = v.clone();
        apply_props(&mut v, &input.properties, input.tags, false)?;
        authorize_grant_changes(&state, &caller, &before, &v).await?;
        v.updated = now;
        state.store.update_vault(&v).await?;
        return Ok(json_response(StatusCode::OK, vault_json(&state, &v)));
    }
    authorize_management(&state, &caller, ManagementAction::VaultWrite, None).await?;
    let group = existing_group(&state, &sub, &rg).await?;
    let mut v = Vault {
        id: coffer_crypto::random::guid(),
        name: name.clone(),
        tenant_id: caller.tenant_id.clone(),
        subscription_id: sub,
        resource_group: group.name.clone(),
        location: input.location.clone().unwrap_or(group.location),
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
    apply_props(&mut v, &input.properties, input.tags, true)?;
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
    let (_, wrapped) = state.keyring.new_vault_key(&v.id)?;
    let created = match state.store.create_vault_with_owner(&v, &wrapped, &owner).await {
        Ok(created) => created,
        Err(e) => {
            // Nothing was written: the key-encryption key just made belongs to nothing.
            let _ = state.keyring.shred_vault(&v.id);
            return Err(e.into());
        }
    };
    if !created {
        // Lost a race for the name: the key-encryption key just made belongs to nothing.
        state.keyring.shred_vault(&v.id)?;
        return Err(Error::new(
            ErrorKind::Conflict,
            "VaultAlreadyExists",
            format!("The vault name '{name}' is already in use."),
        )
        .into());
    }
    Ok(json_response(StatusCode::OK, vault_json(&state, &v)))
}

pub(super) async fn patch_vault(
    State(state): State<SharedState>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path((sub, rg, name)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    caller_subscription(&state, &caller, &sub).await?;
    let mut v = load_vault(&state, &caller, &rg, &name).await?;
    authorize_management(&state, &caller, ManagementAction::VaultWrite, Some(&v.name)).await?;
    let input: VaultIn = parse_body(&body)?;
    let before = v.clone();
    apply_props(&mut v, &input.properties, input.tags, false)?;
    authorize_grant_changes(&state, &caller, &before, &v).await?;
    v.updated = state.clock.now();
    state.store.update_vault(&v).await?;
    Ok(json_response(StatusCode::OK, vault_json(&state, &v)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PolicyPropsIn {
    access_policies: Vec<AccessPolicy>,
}

#[derive(Deserialize)]
struct PolicyUpdateIn {
    properties: PolicyPropsIn,
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

/// `add` merges permissions into the principal's policy, `replace` overwrites it, `remove`
/// takes the listed permissions away (and the policy, once empty).
pub(crate) async fn update_access_policy(
    State(state): State<SharedState>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path((sub, rg, name, op)): Path<(String, String, String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    caller_subscription(&state, &caller, &sub).await?;
    let mut v = load_vault(&state, &caller, &rg, &name).await?;
    authorize_management(&state, &caller, ManagementAction::AccessPolicyWrite, Some(&v.name)).await?;
    let input: PolicyUpdateIn = parse_body(&body)?;
    let before = v.clone();
    let op = op.to_ascii_lowercase();
    for policy in input.properties.access_policies {
        coffer_core::vault::validate_permission_names(&policy.permissions)?;
        let existing = v.access_policies.iter().find(|p| p.object_id.eq_ignore_ascii_case(&policy.object_id)).cloned();
        match op.as_str() {
            "replace" => v.set_access_policy(policy)?,
            "add" => {
                let mut merged = existing
                    .unwrap_or_else(|| AccessPolicy { permissions: PolicyPermissions::default(), ..policy.clone() });
                merge(&mut merged.permissions.keys, &policy.permissions.keys);
                merge(&mut merged.permissions.secrets, &policy.permissions.secrets);
                merge(&mut merged.permissions.certificates, &policy.permissions.certificates);
                merge(&mut merged.permissions.storage, &policy.permissions.storage);
                v.set_access_policy(merged)?;
            }
            "remove" => {
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
            _ => return Err(Error::bad_parameter("The access policy operation must be add, replace or remove.").into()),
        }
    }
    authorize_grant_changes(&state, &caller, &before, &v).await?;
    v.updated = state.clock.now();
    state.store.update_vault(&v).await?;
    Ok(json_response(
        StatusCode::OK,
        json!({
            "id": format!("/subscriptions/{}/resourceGroups/{}/{PROVIDER}/vaults/{}/accessPolicies/{op}", v.subscription_id, v.resource_group, v.name),
            "type": "Microsoft.KeyVault/vaults/accessPolicies",
            "properties": {"accessPolicies": v.access_policies},
        }),
    ))
}

/// `createMode: recover`: brings a deleted vault back with all its objects (not its role
/// assignments, as in Azure).
async fn recover(state: &SharedState, caller: &Caller, rg: &str, name: &str) -> ApiResult<Response> {
    authorize_management(state, caller, ManagementAction::VaultWrite, None).await?;
    let rec = state.store.get_vault_by_name(name).await?.filter(|r| r.vault.tenant_id == caller.tenant_id);
    let Some(rec) = rec.filter(|r| r.vault.is_deleted() && r.vault.resource_group.eq_ignore_ascii_case(rg)) else {
        return Err(Error::not_found(
            "DeletedVaultNotFound",
            format!(
                "No deleted vault named '{}' exists in resource group '{rg}'.",
                coffer_core::names::printable(name)
            ),
        )
        .into());
    };
    if !state.store.recover_vault(&rec.vault.id, state.clock.now()).await? {
        return Err(Error::conflict(
            Some("VaultIsBeingPurged"),
            format!("The vault '{name}' is being purged and cannot be recovered."),
        )
        .into());
    }
    let v = load_vault(state, caller, rg, name).await?;
    Ok(json_response(StatusCode::OK, vault_json(state, &v)))
}

/// Soft delete: the vault, with every object, version and access policy, is kept until its
/// scheduled purge date; its name stays reserved; its role assignments go.
pub(super) async fn delete_vault(
    State(state): State<SharedState>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path((sub, rg, name)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    caller_subscription(&state, &caller, &sub).await?;
    let mut v = load_vault(&state, &caller, &rg, &name).await?;
    authorize_management(&state, &caller, ManagementAction::VaultDelete, Some(&v.name)).await?;
    let now = state.clock.now();
    v.deletion = Some(coffer_core::lifecycle::Deletion {
        deleted_date: now,
        scheduled_purge_date: v.retention.scheduled_purge_date(now),
    });
    v.updated = now;
    state.store.update_vault(&v).await?;
    state.store.delete_assignments_under(&coffer_core::rbac::Scope::Vault(v.name.to_ascii_lowercase()).key()).await?;
    Ok(StatusCode::OK.into_response())
}

/// ARM's DeletedVault.
fn deleted_json(v: &Vault) -> Value {
    let d = v.deletion.unwrap_or(coffer_core::lifecycle::Deletion { deleted_date: 0, scheduled_purge_date: 0 });
    json!({
        "id": format!("/subscriptions/{}/{PROVIDER}/locations/{}/deletedVaults/{}", v.subscription_id, v.location, v.name),
        "name": v.name,
        "type": "Microsoft.KeyVault/deletedVaults",
        "properties": {
            "vaultId": format!("/subscriptions/{}/resourceGroups/{}/{PROVIDER}/vaults/{}", v.subscription_id, v.resource_group, v.name),
            "location": v.location,
            "deletionDate": coffer_core::clock::iso8601(d.deleted_date),
            "scheduledPurgeDate": coffer_core::clock::iso8601(d.scheduled_purge_date),
            "tags": v.tags,
            "purgeProtectionEnabled": v.retention.purge_protection,
        },
    })
}

async fn deleted_vault(state: &SharedState, caller: &Caller, name: &str) -> Result<Vault> {
    state
        .store
        .get_vault_by_name(name)
        .await?
        .map(|r| r.vault)
        .filter(|v| v.is_deleted() && v.tenant_id == caller.tenant_id)
        .ok_or_else(|| {
            Error::not_found(
                "DeletedVaultNotFound",
                format!("No deleted vault named '{}' exists.", coffer_core::names::printable(name)),
            )
        })
}

pub(super) async fn list_deleted(
    State(state): State<SharedState>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(sub): Path<String>,
) -> ApiResult<Response> {
    caller_subscription(&state, &caller, &sub).await?;
    authorize_management(&state, &caller, ManagementAction::VaultRead, None).await?;
    let items: Vec<Value> =
        state.store.list_vaults(&caller.tenant_id).await?.iter().filter(|v| v.is_deleted()).map(deleted_json).collect();
    Ok(json_response(StatusCode::OK, json!({"value": items, "nextLink": null})))
}

pub(super) async fn show_deleted(
    State(state): State<SharedState>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path((sub, _loc, name)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    caller_subscription(&state, &caller, &sub).await?;
    authorize_management(&state, &caller, ManagementAction::VaultRead, None).await?;
    Ok(json_response(StatusCode::OK, deleted_json(&deleted_vault(&state, &caller, &name).await?)))
}

/// Purge is crypto-shredding: the vault's key-encryption key is destroyed, then its rows.
pub(super) async fn purge_deleted(
    State(state): State<SharedState>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path((sub, _loc, name)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    caller_subscription(&state, &caller, &sub).await?;
    authorize_management(&state, &caller, ManagementAction::VaultPurge, None).await?;
    let v = deleted_vault(&state, &caller, &name).await?;
    let due = v.deletion.is_some_and(|d| d.scheduled_purge_date <= state.clock.now());
    if v.retention.purge_protection && !due {
        return Err(Error::new(
            ErrorKind::Forbidden,
            "Forbidden",
            format!(
                "Operation \"purge\" is not allowed because purge protection is enabled for this vault. Key Vault \
                 service will automatically purge it after the retention period has passed. Vault: {};location={}",
                v.name, v.location
            ),
        )
        .into());
    }
    if !crate::system::purge_vault(&state, &v.id, None).await? {
        return Err(Error::conflict(
            Some("VaultIsBeingPurged"),
            format!("The vault '{}' is already being purged.", v.name),
        )
        .into());
    }
    Ok(StatusCode::OK.into_response())
}

#[derive(Deserialize)]
pub(super) struct NameCheckIn {
    name: String,
    #[serde(rename = "type")]
    kind: Option<String>,
}

pub(super) async fn check_name(
    State(state): State<SharedState>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(sub): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    caller_subscription(&state, &caller, &sub).await?;
    let input: NameCheckIn = parse_body(&body)?;
    if input.kind.as_deref().is_some_and(|k| !k.eq_ignore_ascii_case("Microsoft.KeyVault/vaults")) {
        return Err(Error::bad_parameter("type must be Microsoft.KeyVault/vaults.").into());
    }
    let answer = if let Err(e) = coffer_core::names::validate_vault_name(&input.name) {
        json!({"nameAvailable": false, "reason": "AccountNameInvalid", "message": e.message})
    } else if state.store.get_vault_by_name(&input.name).await?.is_some() {
        json!({"nameAvailable": false, "reason": "AlreadyExists", "message": format!("The vault name '{}' is already in use.", input.name)})
    } else {
        json!({"nameAvailable": true})
    };
    Ok(json_response(StatusCode::OK, answer))
}

/// `$filter` of ARM's generic resource listing: `field eq 'value'` terms joined by `and`, on
/// `resourceType`, `name` and `resourceGroup` (what the Azure CLI sends).
fn parse_filter(filter: Option<&str>) -> Result<Vec<(String, String)>> {
    let Some(f) = filter.map(str::trim).filter(|f| !f.is_empty()) else { return Ok(Vec::new()) };
    let bad = || Error::bad_parameter(format!("The $filter '{}' is not supported.", coffer_core::names::printable(f)));
    let mut terms = Vec::new();
    let lower = f.to_ascii_lowercase();
    let mut rest = f;
    let mut rest_lower = lower.as_str();
    loop {
        let (term, next) = match rest_lower.find(" and ") {
            Some(i) => (&rest[..i], Some(i + 5)),
            None => (rest, None),
        };
        let (field, value) = term.split_once(" eq ").ok_or_else(bad)?;
        let value = value.trim().strip_prefix('\'').and_then(|v| v.strip_suffix('\'')).ok_or_else(bad)?;
        let field = field.trim().to_ascii_lowercase();
        if !matches!(field.as_str(), "resourcetype" | "name" | "resourcegroup") {
            return Err(bad());
        }
        terms.push((field, value.to_string()));
        match next {
            Some(i) => {
                rest = &rest[i..];
                rest_lower = &rest_lower[i..];
            }
            None => break,
        }
    }
    Ok(terms)
}

/// ARM's generic resource (the shape `/resources` lists).
fn generic_json(v: &Vault) -> Value {
    json!({
        "id": v.resource_id(),
        "name": v.name,
        "type": "Microsoft.KeyVault/vaults",
        "location": v.location,
        "tags": v.tags,
    })
}

async fn resources(state: &SharedState, caller: &Caller, group: Option<&str>, filter: Option<&str>) -> Result<Value> {
    let terms = parse_filter(filter)?;
    let vaults = visible_vaults(state, caller).await?;
    let items: Vec<Value> = vaults
        .iter()
        .filter(|v| group.is_none_or(|g| v.resource_group.eq_ignore_ascii_case(g)))
        .filter(|v| {
            terms.iter().all(|(field, value)| match field.as_str() {
                "resourcetype" => value.eq_ignore_ascii_case("Microsoft.KeyVault/vaults"),
                "name" => v.name.eq_ignore_ascii_case(value),
                _ => v.resource_group.eq_ignore_ascii_case(value),
            })
        })
        .map(generic_json)
        .collect();
    Ok(json!({"value": items}))
}

#[derive(Deserialize)]
pub(super) struct ResourcesQuery {
    #[serde(rename = "$filter")]
    filter: Option<String>,
}

pub(super) async fn list_resources(
    State(state): State<SharedState>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(sub): Path<String>,
    axum::extract::Query(q): axum::extract::Query<ResourcesQuery>,
) -> ApiResult<Response> {
    caller_subscription(&state, &caller, &sub).await?;
    Ok(json_response(StatusCode::OK, resources(&state, &caller, None, q.filter.as_deref()).await?))
}

pub(super) async fn list_resources_in_group(
    State(state): State<SharedState>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path((sub, rg)): Path<(String, String)>,
    axum::extract::Query(q): axum::extract::Query<ResourcesQuery>,
) -> ApiResult<Response> {
    let sub = caller_subscription(&state, &caller, &sub).await?;
    existing_group(&state, &sub, &rg).await?;
    Ok(json_response(StatusCode::OK, resources(&state, &caller, Some(&rg), q.filter.as_deref()).await?))
}

#[cfg(test)]
mod tests {
    #[test]
    fn filters() {
        let t = super::parse_filter(Some("resourceType eq 'Microsoft.KeyVault/vaults' and name eq 'azv1'")).unwrap();
        assert_eq!(
            t,
            vec![
                ("resourcetype".to_string(), "Microsoft.KeyVault/vaults".to_string()),
                ("name".to_string(), "azv1".to_string())
            ]
        );
        assert!(super::parse_filter(Some("location eq 'x'")).is_err());
        assert!(super::parse_filter(Some("name eq azv1")).is_err());
        assert!(super::parse_filter(None).unwrap().is_empty());
    }
}
