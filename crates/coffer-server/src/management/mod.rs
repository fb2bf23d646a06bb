//! The management plane, shaped like Azure Resource Manager, so ARM tooling
//! (`azure-mgmt-keyvault`, the Azure CLI) can drive it: subscriptions and resource groups here,
//! `Microsoft.KeyVault/vaults` (and deleted vaults) in `vaults`.
//!
//! Management is not data: the caller here needs management rights (tenant administrator, or a
//! management role such as Owner or Contributor; a vault's creator is made its Owner) and
//! nothing here reads a secret value.
mod authorization;
pub(crate) mod vaults;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use coffer_core::Error;
use coffer_core::object::{Tags, validate_tags};
use coffer_core::permissions::ManagementAction;
use coffer_store::ResourceGroup;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::authorization::authorize_management;
use crate::http::{ApiResult, Path, json as json_response, parse_body};
use crate::routes::{Methods, Routes, read, write};
use crate::state::SharedState;
use crate::vaults::{caller_subscription, existing_group};

pub use vaults::vault_json;

pub const DEFAULT_RESOURCE_GROUP: &str = "default";

pub fn routes() -> Routes<SharedState> {
    const KV: &str = "/subscriptions/{sub}/providers/Microsoft.KeyVault";
    const RG_KV: &str = "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.KeyVault";
    let (get_, change) = (read("ManagementGet"), write("ManagementChange"));
    Routes::new()
        .route("/subscriptions", Methods::get(get_, list_subscriptions))
        .route("/subscriptions/{sub}", Methods::get(get_, show_subscription))
        .route("/subscriptions/{sub}/resourceGroups", Methods::get(get_, list_groups))
        .route(
            "/subscriptions/{sub}/resourceGroups/{rg}",
            Methods::get(get_, show_group).and_put(change, put_group).and_delete(change, delete_group),
        )
        .route("/subscriptions/{sub}/resources", Methods::get(get_, vaults::list_resources))
        .route(
            "/subscriptions/{sub}/resourceGroups/{rg}/resources",
            Methods::get(get_, vaults::list_resources_in_group),
        )
        .route(&format!("{KV}/vaults"), Methods::get(read("VaultList"), vaults::list_vaults))
        .route(&format!("{KV}/deletedVaults"), Methods::get(read("VaultListDeleted"), vaults::list_deleted))
        // Coffer has no managed HSM pools; tools that list them (az keyvault list-deleted) get none.
        .route(&format!("{KV}/managedHSMs"), Methods::get(get_, empty_list))
        .route(&format!("{KV}/deletedManagedHSMs"), Methods::get(get_, empty_list))
        .route(
            &format!("{KV}/locations/{{loc}}/deletedVaults/{{name}}"),
            Methods::get(read("VaultGetDeleted"), vaults::show_deleted),
        )
        .route(
            &format!("{KV}/locations/{{loc}}/deletedVaults/{{name}}/purge"),
            Methods::post(write("VaultPurge"), vaults::purge_deleted),
        )
        .route(
            &format!("{KV}/checkNameAvailability"),
            Methods::post(read("VaultCheckNameAvailability"), vaults::check_name),
        )
        .route(&format!("{RG_KV}/vaults"), Methods::get(read("VaultList"), vaults::list_vaults_in_group))
        .route(
            &format!("{RG_KV}/vaults/{{name}}"),
            Methods::get(read("VaultGet"), vaults::show_vault)
                .and_put(write("VaultPut"), vaults::create_or_update_vault)
                .and_patch(write("VaultPatch"), vaults::patch_vault)
                .and_delete(write("VaultDelete"), vaults::delete_vault),
        )
        .route(
            &format!("{RG_KV}/vaults/{{name}}/accessPolicies/{{op}}"),
            Methods::put(write("VaultAccessPolicyChange"), vaults::update_access_policy),
        )
        .merge(authorization::routes())
}

/// ARM paths are case-insensitive (`resourcegroups`, `microsoft.keyvault`, ...): known
/// segments are rewritten to the casing the routes use.
pub fn normalize_arm_path(uri: &Uri) -> Option<Uri> {
    let path = uri.path();
    if !path.get(..14).is_some_and(|p| p.eq_ignore_ascii_case("/subscriptions")) {
        return None;
    }
    const CANONICAL: &[&str] = &[
        "subscriptions",
        "resourceGroups",
        "providers",
        "Microsoft.KeyVault",
        "vaults",
        "deletedVaults",
        "locations",
        "accessPolicies",
        "checkNameAvailability",
        "purge",
        "Microsoft.Authorization",
        "roleAssignments",
        "roleDefinitions",
    ];
    let fixed: Vec<String> = path
        .split('/')
        .map(|seg| {
            CANONICAL
                .iter()
                .find(|c| c.eq_ignore_ascii_case(seg))
                .map(|c| c.to_string())
                .unwrap_or_else(|| seg.to_string())
        })
        .collect();
    let new_path = fixed.join("/");
    if new_path == path {
        return None;
    }
    let pq = match uri.query() {
        Some(q) => format!("{new_path}?{q}"),
        None => new_path,
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = pq.parse().ok();
    Uri::from_parts(parts).ok()
}

async fn list_subscriptions(
    State(state): State<SharedState>,
    crate::authentication::ArmCaller(caller): crate::authentication::ArmCaller,
) -> ApiResult<Response> {
    let tenant = state.store.get_tenant(&caller.tenant_id).await?.ok_or_else(|| Error::internal("tenant missing"))?;
    Ok(json_response(
        StatusCode::OK,
        json!({"value": [{
            "id": format!("/subscriptions/{}", tenant.default_subscription_id),
            "subscriptionId": tenant.default_subscription_id,
            "tenantId": tenant.id,
            "displayName": "Coffer",
            "state": "Enabled",
            "subscriptionPolicies": {"locationPlacementId": "Public_2014-09-01", "quotaId": "Coffer", "spendingLimit": "Off"},
            "authorizationSource": "RoleBased",
        }], "count": {"type": "Total", "value": 1}}),
    ))
}

async fn empty_list(_: crate::authentication::ArmCaller) -> Response {
    json_response(StatusCode::OK, json!({"value": []}))
}

async fn show_subscription(
    State(state): State<SharedState>,
    crate::authentication::ArmCaller(caller): crate::authentication::ArmCaller,
    Path(sub): Path<String>,
) -> ApiResult<Response> {
    let sub = caller_subscription(&state, &caller, &sub).await?;
    Ok(json_response(
        StatusCode::OK,
        json!({"id": format!("/subscriptions/{sub}"), "subscriptionId": sub, "tenantId": caller.tenant_id, "displayName": "Coffer", "state": "Enabled"}),
    ))
}

fn group_json(rg: &ResourceGroup) -> Value {
    json!({
        "id": format!("/subscriptions/{}/resourceGroups/{}", rg.subscription_id, rg.name),
        "name": rg.name,
        "type": "Microsoft.Resources/resourceGroups",
        "location": rg.location,
        "tags": rg.tags,
        "properties": {"provisioningState": "Succeeded"},
    })
}

async fn list_groups(
    State(state): State<SharedState>,
    crate::authentication::ArmCaller(caller): crate::authentication::ArmCaller,
    Path(sub): Path<String>,
) -> ApiResult<Response> {
    let sub = caller_subscription(&state, &caller, &sub).await?;
    authorize_management(&state, &caller, ManagementAction::VaultRead, None).await?;
    let items: Vec<Value> = state.store.list_resource_groups(&sub).await?.iter().map(group_json).collect();
    Ok(json_response(StatusCode::OK, json!({"value": items})))
}

async fn show_group(
    State(state): State<SharedState>,
    crate::authentication::ArmCaller(caller): crate::authentication::ArmCaller,
    Path((sub, rg)): Path<(String, String)>,
) -> ApiResult<Response> {
    let sub = caller_subscription(&state, &caller, &sub).await?;
    // The same right as listing the groups: one group is no less the directory's than all.
    authorize_management(&state, &caller, ManagementAction::VaultRead, None).await?;
    Ok(json_response(StatusCode::OK, group_json(&existing_group(&state, &sub, &rg).await?)))
}

#[derive(Deserialize)]
struct GroupIn {
    location: Option<String>,
    tags: Option<Tags>,
}

async fn put_group(
    State(state): State<SharedState>,
    crate::authentication::ArmCaller(caller): crate::authentication::ArmCaller,
    Path((sub, rg)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let sub = caller_subscription(&state, &caller, &sub).await?;
    authorize_management(&state, &caller, ManagementAction::VaultWrite, None).await?;
    coffer_core::names::validate_resource_group_name(&rg)?;
    let input: GroupIn = parse_body(&body)?;
    let tags = input.tags.unwrap_or_default();
    validate_tags(&tags)?;
    let existing = state.store.get_resource_group(&sub, &rg).await?;
    let group = ResourceGroup {
        subscription_id: sub.clone(),
        name: existing.as_ref().map(|g| g.name.clone()).unwrap_or(rg),
        location: existing.as_ref().map(|g| g.location.clone()).or(input.location).unwrap_or_else(|| "local".into()),
        tags,
        created: existing.as_ref().map(|g| g.created).unwrap_or_else(|| state.clock.now()),
    };
    state.store.put_resource_group(&group).await?;
    let status = if existing.is_some() { StatusCode::OK } else { StatusCode::CREATED };
    Ok(json_response(status, group_json(&group)))
}

async fn delete_group(
    State(state): State<SharedState>,
    crate::authentication::ArmCaller(caller): crate::authentication::ArmCaller,
    Path((sub, rg)): Path<(String, String)>,
) -> ApiResult<Response> {
    let sub = caller_subscription(&state, &caller, &sub).await?;
    authorize_management(&state, &caller, ManagementAction::VaultDelete, None).await?;
    let group = existing_group(&state, &sub, &rg).await?;
    let holds = state
        .store
        .list_vaults(&caller.tenant_id)
        .await?
        .into_iter()
        .any(|v| v.resource_group.eq_ignore_ascii_case(&group.name));
    if holds {
        return Err(Error::conflict(
            None,
            format!(
                "Resource group '{}' still holds vaults (live or deleted); delete and purge them first.",
                group.name
            ),
        )
        .into());
    }
    state.store.delete_resource_group(&sub, &group.name).await?;
    Ok(StatusCode::OK.into_response())
}
