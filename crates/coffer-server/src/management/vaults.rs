//! `Microsoft.KeyVault/vaults`: create (or recover) or update, show, list, delete (soft),
//! deleted vaults, purge (crypto-shredding), name checks and access-policy changes.
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use coffer_core::principal::Caller;
use coffer_core::vault::{AccessPolicy, Vault};
use coffer_core::{Error, ErrorKind, Result};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::authorization::authorize_management;
use crate::http::{ApiResult, Path, json as json_response, parse_body};
use crate::state::SharedState;
use crate::vaults::{PolicyEdit, VaultSettings, caller_subscription, existing_group, load_vault};
use coffer_core::permissions::ManagementAction;

const PROVIDER: &str = "providers/Microsoft.KeyVault";

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
    crate::authentication::ArmCaller(caller): crate::authentication::ArmCaller,
    Path(sub): Path<String>,
) -> ApiResult<Response> {
    caller_subscription(&state, &caller, &sub).await?;
    let items: Vec<Value> = visible_vaults(&state, &caller).await?.iter().map(|v| vault_json(&state, v)).collect();
    Ok(json_response(StatusCode::OK, json!({"value": items, "nextLink": null})))
}

pub(super) async fn list_vaults_in_group(
    State(state): State<SharedState>,
    crate::authentication::ArmCaller(caller): crate::authentication::ArmCaller,
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

pub(super) async fn show_vault(
    State(state): State<SharedState>,
    crate::authentication::ArmCaller(caller): crate::authentication::ArmCaller,
    Path((sub, rg, name)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    caller_subscription(&state, &caller, &sub).await?;
    let v = load_vault(&state, &caller, &rg, &name).await?;
    authorize_management(&state, &caller, ManagementAction::VaultRead, Some(&v.name)).await?;
    Ok(json_response(StatusCode::OK, vault_json(&state, &v)))
}

pub(super) async fn create_or_update_vault(
    State(state): State<SharedState>,
    crate::authentication::ArmCaller(caller): crate::authentication::ArmCaller,
    Path((sub, rg, name)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    // The name is checked before the body, as Azure does.
    caller_subscription(&state, &caller, &sub).await?;
    coffer_core::names::validate_vault_name(&name)?;
    let settings: VaultSettings = parse_body(&body)?;
    let v = crate::vaults::put_vault(&state, &caller, &sub, &rg, &name, settings).await?;
    Ok(json_response(StatusCode::OK, vault_json(&state, &v)))
}

pub(super) async fn patch_vault(
    State(state): State<SharedState>,
    crate::authentication::ArmCaller(caller): crate::authentication::ArmCaller,
    Path((sub, rg, name)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let vault = crate::vaults::granted(&state, &caller, (&sub, &rg, &name), ManagementAction::VaultWrite).await?;
    let settings: VaultSettings = parse_body(&body)?;
    let v = crate::vaults::patch_vault(&state, &caller, vault, settings).await?;
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

pub(super) async fn update_access_policy(
    State(state): State<SharedState>,
    crate::authentication::ArmCaller(caller): crate::authentication::ArmCaller,
    Path((sub, rg, name, op)): Path<(String, String, String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let vault =
        crate::vaults::granted(&state, &caller, (&sub, &rg, &name), ManagementAction::AccessPolicyWrite).await?;
    let input: PolicyUpdateIn = parse_body(&body)?;
    let edit = PolicyEdit::parse(&op)?;
    let policies = input.properties.access_policies;
    let v = crate::vaults::edit_access_policies(&state, &caller, vault, edit, policies).await?;
    Ok(json_response(
        StatusCode::OK,
        json!({
            "id": format!("/subscriptions/{}/resourceGroups/{}/{PROVIDER}/vaults/{}/accessPolicies/{}", v.subscription_id, v.resource_group, v.name, edit.as_str()),
            "type": "Microsoft.KeyVault/vaults/accessPolicies",
            "properties": {"accessPolicies": v.access_policies},
        }),
    ))
}

/// Soft delete: the vault, with every object, version and access policy, is kept until its
/// scheduled purge date; its name stays reserved; its role assignments go.
pub(super) async fn delete_vault(
    State(state): State<SharedState>,
    crate::authentication::ArmCaller(caller): crate::authentication::ArmCaller,
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
    state.store.soft_delete_vault(&v).await?;
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
    crate::authentication::ArmCaller(caller): crate::authentication::ArmCaller,
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
    crate::authentication::ArmCaller(caller): crate::authentication::ArmCaller,
    Path((sub, _loc, name)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    caller_subscription(&state, &caller, &sub).await?;
    authorize_management(&state, &caller, ManagementAction::VaultRead, None).await?;
    Ok(json_response(StatusCode::OK, deleted_json(&deleted_vault(&state, &caller, &name).await?)))
}

/// Purge is crypto-shredding: the vault's key-encryption key is destroyed, then its rows.
pub(super) async fn purge_deleted(
    State(state): State<SharedState>,
    crate::authentication::ArmCaller(caller): crate::authentication::ArmCaller,
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
    crate::authentication::ArmCaller(caller): crate::authentication::ArmCaller,
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
    crate::authentication::ArmCaller(caller): crate::authentication::ArmCaller,
    Path(sub): Path<String>,
    axum::extract::Query(q): axum::extract::Query<ResourcesQuery>,
) -> ApiResult<Response> {
    caller_subscription(&state, &caller, &sub).await?;
    Ok(json_response(StatusCode::OK, resources(&state, &caller, None, q.filter.as_deref()).await?))
}

pub(super) async fn list_resources_in_group(
    State(state): State<SharedState>,
    crate::authentication::ArmCaller(caller): crate::authentication::ArmCaller,
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
