//! ARM's `Microsoft.Authorization` for Key Vault's scopes, so `az role assignment
//! create|list|delete`, `az role definition list` and `azure-mgmt-authorization` manage the
//! same role assignments as `coffer role` (the authorization service does the work).
//!
//! Scopes, as ARM writes them, and what they are in Coffer:
//! - `/subscriptions/{sub}` — the tenant (`/`): each tenant has one subscription;
//! - `…/resourceGroups/{rg}` — every vault of that group, now and later (`/resourceGroups/rg`);
//! - `…/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults/{v}` — the vault (`/vaults/v`);
//! - `…/vaults/{v}/secrets|keys|certificates/{n}` — one item.
//!
//! An assignment with an ABAC `condition` is refused: Coffer cannot evaluate one.
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use coffer_core::principal::Caller;
use coffer_core::rbac::{RoleDefinition, Scope};
use coffer_core::{Error, Result};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::authentication::ArmCaller;
use crate::authorization::{self, NamedAssignment};
use crate::http::{ApiResult, Query, json as json_response, parse_body};
use crate::routes::{Methods, Routes, read, write};
use crate::state::SharedState;

const AUTHZ: &str = "/providers/Microsoft.Authorization";

pub(super) fn routes() -> Routes<SharedState> {
    const VAULT: &str = "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults/{vault}";
    let scopes = [
        "/subscriptions/{sub}".to_string(),
        "/subscriptions/{sub}/resourceGroups/{rg}".to_string(),
        VAULT.to_string(),
        format!("{VAULT}/{{collection}}/{{item}}"),
    ];
    let mut routes = Routes::new();
    for scope in scopes {
        routes = routes
            .route(
                &format!("{scope}{AUTHZ}/roleDefinitions"),
                Methods::get(read("RoleDefinitionList"), list_definitions),
            )
            .route(
                &format!("{scope}{AUTHZ}/roleDefinitions/{{id}}"),
                Methods::get(read("RoleDefinitionGet"), get_definition),
            )
            .route(
                &format!("{scope}{AUTHZ}/roleAssignments"),
                Methods::get(read("RoleAssignmentList"), list_assignments),
            )
            .route(
                &format!("{scope}{AUTHZ}/roleAssignments/{{name}}"),
                Methods::get(read("RoleAssignmentGet"), get_assignment)
                    .and_put(write("RoleAssignmentCreate"), put_assignment)
                    .and_delete(write("RoleAssignmentDelete"), delete_assignment),
            );
    }
    routes
}

/// A scope as ARM names it and as Coffer keeps it.
struct ArmScope {
    subscription: String,
    scope: Scope,
}

/// The scope part of a `…/providers/Microsoft.Authorization/…` path, checked: the caller's
/// subscription, a live vault in the resource group named.
async fn scope_of(state: &SharedState, caller: &Caller, uri: &Uri) -> Result<ArmScope> {
    let path = uri.path();
    let at = path.find(AUTHZ).ok_or_else(|| Error::bad_parameter("Not a Microsoft.Authorization path."))?;
    let parts: Vec<&str> = path[..at].split('/').collect();
    let subscription = match parts.get(1..3) {
        Some(["subscriptions", sub]) => crate::vaults::caller_subscription(state, caller, sub).await?,
        _ => return Err(Error::bad_parameter("A role scope starts with /subscriptions/{subscription}.")),
    };
    let scope = match &parts[3..] {
        [] => Scope::Root,
        ["resourceGroups", rg] => {
            let group = crate::vaults::existing_group(state, &subscription, rg).await?;
            Scope::parse(&format!("/resourceGroups/{}", group.name))?
        }
        ["resourceGroups", rg, "providers", "Microsoft.KeyVault", "vaults", vault, rest @ ..] => {
            let v = crate::vaults::load_vault(state, caller, rg, vault).await?;
            match rest {
                [] => Scope::Vault(v.name.to_ascii_lowercase()),
                [collection, item] => Scope::parse(&format!("/vaults/{}/{collection}/{item}", v.name))?,
                _ => return Err(Error::bad_parameter("Not a role scope.")),
            }
        }
        _ => return Err(Error::bad_parameter("Not a role scope.")),
    };
    Ok(ArmScope { subscription, scope })
}

/// Coffer's scope as ARM writes it (a vault's resource group looked up).
async fn arm_scope_of(state: &SharedState, subscription: &str, scope: &str) -> String {
    let sub = format!("/subscriptions/{subscription}");
    let vault_path = |v: &coffer_core::vault::Vault| {
        format!("{sub}/resourceGroups/{}/providers/Microsoft.KeyVault/vaults/{}", v.resource_group, v.name)
    };
    let found =
        |name: String| async move { state.store.get_vault_by_name(&name).await.ok().flatten().map(|r| r.vault) };
    match Scope::parse(scope) {
        Ok(Scope::Vault(name)) => match found(name.clone()).await {
            Some(v) => vault_path(&v),
            None => format!("{sub}/providers/Microsoft.KeyVault/vaults/{name}"),
        },
        Ok(Scope::Item { vault, collection, name }) => match found(vault.clone()).await {
            Some(v) => format!("{}/{collection}/{name}", vault_path(&v)),
            None => format!("{sub}/providers/Microsoft.KeyVault/vaults/{vault}/{collection}/{name}"),
        },
        // The group's name as it was made (the scope keeps it lowercased).
        Ok(Scope::ResourceGroup(g)) => match state.store.get_resource_group(subscription, &g).await.ok().flatten() {
            Some(group) => format!("{sub}/resourceGroups/{}", group.name),
            None => format!("{sub}/resourceGroups/{g}"),
        },
        _ => sub,
    }
}

/// The role definition's id or the assignment's name: the path's last segment.
fn last_segment(uri: &Uri) -> &str {
    uri.path().rsplit('/').next().unwrap_or_default()
}

fn definition_id(subscription: &str, role: &RoleDefinition) -> String {
    format!("/subscriptions/{subscription}{AUTHZ}/roleDefinitions/{}", role.id)
}

fn definition_json(subscription: &str, r: &RoleDefinition) -> Value {
    json!({
        "id": definition_id(subscription, r),
        "name": r.id,
        "type": "Microsoft.Authorization/roleDefinitions",
        "properties": {
            "roleName": r.name,
            "description": r.description,
            "type": if r.built_in { "BuiltInRole" } else { "CustomRole" },
            "permissions": [{
                "actions": r.actions, "notActions": r.not_actions,
                "dataActions": r.data_actions, "notDataActions": r.not_data_actions,
            }],
            "assignableScopes": ["/"],
        },
    })
}

async fn assignment_json(state: &SharedState, subscription: &str, n: &NamedAssignment) -> Value {
    let a = &n.assignment;
    let scope = arm_scope_of(state, subscription, &a.scope).await;
    let principal_type = n.principal.as_ref().map(|p| match p.kind {
        coffer_core::principal::PrincipalKind::User => "User",
        coffer_core::principal::PrincipalKind::Group => "Group",
        _ => "ServicePrincipal",
    });
    let when = coffer_core::clock::iso8601;
    json!({
        "id": format!("{scope}{AUTHZ}/roleAssignments/{}", a.id),
        "name": a.id,
        "type": "Microsoft.Authorization/roleAssignments",
        "properties": {
            "roleDefinitionId": format!("/subscriptions/{subscription}{AUTHZ}/roleDefinitions/{}", a.role_definition_id),
            "principalId": a.principal_id,
            "principalType": principal_type,
            "scope": scope,
            "condition": null,
            "conditionVersion": null,
            "createdOn": when(a.created),
            "updatedOn": when(a.created),
            "createdBy": a.created_by,
            "updatedBy": a.created_by,
            "delegatedManagedIdentityResourceId": null,
            "description": null,
        },
    })
}

#[derive(Deserialize)]
struct FilterQuery {
    #[serde(rename = "$filter")]
    filter: Option<String>,
}

/// The value of `name eq 'value'` in an OData filter.
fn filter_eq<'a>(filter: &'a str, name: &str) -> Option<&'a str> {
    let rest = filter.trim().strip_prefix(name)?.trim_start().strip_prefix("eq")?.trim();
    rest.strip_prefix('\'')?.strip_suffix('\'')
}

async fn list_definitions(
    State(state): State<SharedState>,
    ArmCaller(caller): ArmCaller,
    uri: Uri,
    Query(q): Query<FilterQuery>,
) -> ApiResult<Response> {
    let at = scope_of(&state, &caller, &uri).await?;
    let roles = authorization::roles(&state, &caller).await?;
    let wanted = q.filter.as_deref().and_then(|f| filter_eq(f, "roleName"));
    let items: Vec<Value> = roles
        .iter()
        .filter(|r| wanted.is_none_or(|w| r.name.eq_ignore_ascii_case(w)))
        .map(|r| definition_json(&at.subscription, r))
        .collect();
    Ok(json_response(StatusCode::OK, json!({ "value": items })))
}

async fn get_definition(
    State(state): State<SharedState>,
    ArmCaller(caller): ArmCaller,
    uri: Uri,
) -> ApiResult<Response> {
    let at = scope_of(&state, &caller, &uri).await?;
    let id = last_segment(&uri);
    let role = authorization::role(&state, &caller, id).await?;
    Ok(json_response(StatusCode::OK, definition_json(&at.subscription, &role)))
}

async fn list_assignments(
    State(state): State<SharedState>,
    ArmCaller(caller): ArmCaller,
    uri: Uri,
    Query(q): Query<FilterQuery>,
) -> ApiResult<Response> {
    let at = scope_of(&state, &caller, &uri).await?;
    let filter = q.filter.as_deref().unwrap_or("").trim();
    let assignee = filter_eq(filter, "principalId").or_else(|| filter_eq(filter, "assignedTo"));
    let here = at.scope.key();
    // ARM lists, for a scope, the assignments at it, above it (inherited) and below it;
    // `atScope()` keeps those at it and above.
    let all = authorization::assignments(&state, &caller, None, assignee).await?;
    let covering = authorization::covering_keys(&state, &caller.tenant_id, &at.scope).await?;
    // Below a resource group: its vaults' scopes.
    let group_vaults: Vec<String> = match at.scope.resource_group() {
        Some(g) => state
            .store
            .list_vaults(&caller.tenant_id)
            .await?
            .into_iter()
            .filter(|v| v.resource_group.eq_ignore_ascii_case(g))
            .map(|v| Scope::Vault(v.name.to_ascii_lowercase()).key())
            .collect(),
        None => Vec::new(),
    };
    let mut items = Vec::new();
    for n in &all {
        let s = &n.assignment.scope;
        let below = here == "/"
            || s.starts_with(&format!("{here}/"))
            || group_vaults.iter().any(|v| s == v || s.starts_with(&format!("{v}/")));
        let above = covering.contains(&n.assignment.scope);
        let keep = if filter.contains("atScope()") { above } else { above || below };
        if keep {
            items.push(assignment_json(&state, &at.subscription, n).await);
        }
    }
    Ok(json_response(StatusCode::OK, json!({ "value": items })))
}

async fn get_assignment(
    State(state): State<SharedState>,
    ArmCaller(caller): ArmCaller,
    uri: Uri,
) -> ApiResult<Response> {
    let at = scope_of(&state, &caller, &uri).await?;
    let name = last_segment(&uri);
    let found = authorization::assignment(&state, &caller, name).await?;
    Ok(json_response(StatusCode::OK, assignment_json(&state, &at.subscription, &found).await))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AssignmentProperties {
    role_definition_id: String,
    principal_id: String,
    #[serde(default)]
    condition: Option<String>,
}

#[derive(Deserialize)]
struct AssignmentIn {
    properties: AssignmentProperties,
}

async fn put_assignment(
    State(state): State<SharedState>,
    ArmCaller(caller): ArmCaller,
    uri: Uri,
    body: Bytes,
) -> ApiResult<Response> {
    let at = scope_of(&state, &caller, &uri).await?;
    let name = last_segment(&uri);
    let input: AssignmentIn = parse_body(&body)?;
    if input.properties.condition.as_deref().is_some_and(|c| !c.trim().is_empty()) {
        return Err(Error::bad_parameter(
            "Role assignment conditions (ABAC) are not supported by Coffer; an assignment without one would grant more than asked.",
        )
        .into());
    }
    // `/subscriptions/…/roleDefinitions/{guid}` or the bare id.
    let role = input.properties.role_definition_id.rsplit('/').next().unwrap_or_default().to_string();
    let scope = at.scope.key();
    let made =
        authorization::assign_with_id(&state, &caller, Some(name), (&role, &input.properties.principal_id, &scope))
            .await?;
    Ok(json_response(StatusCode::CREATED, assignment_json(&state, &at.subscription, &made).await))
}

async fn delete_assignment(
    State(state): State<SharedState>,
    ArmCaller(caller): ArmCaller,
    uri: Uri,
) -> ApiResult<Response> {
    let at = scope_of(&state, &caller, &uri).await?;
    let name = last_segment(&uri);
    let found = authorization::assignment(&state, &caller, name).await?;
    authorization::unassign(&state, &caller, name).await?;
    Ok(json_response(StatusCode::OK, assignment_json(&state, &at.subscription, &found).await))
}
