//! The management plane, shaped like Azure Resource Manager's `Microsoft.KeyVault/vaults`, so
//! ARM tooling can drive it: create or update, show, list and access-policy changes.
//!
//! Management is not data: the caller here needs management rights (tenant administrator, or a
//! management role such as Owner or Contributor; a vault's creator is made its Owner) and
//! nothing here reads a secret value.
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use coffer_core::lifecycle::{DEFAULT_RETENTION_DAYS, RetentionPolicy};
use coffer_core::limits::MAX_REQUEST_BODY_BYTES;
use coffer_core::object::{Tags, validate_tags};
use coffer_core::principal::Caller;
use coffer_core::vault::{AccessPolicy, PolicyPermissions, Vault};
use coffer_core::{Error, ErrorKind, Result};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::{bearer_token, challenge, resolve_caller};
use crate::authorization::authorize_management;
use crate::http::{ApiError, ApiResult, json as json_response, parse_body, query_get, query_pairs};
use crate::state::SharedState;
use coffer_core::permissions::ManagementAction;

const PROVIDER: &str = "providers/Microsoft.KeyVault";

pub fn routes(state: SharedState) -> Router<SharedState> {
    Router::new()
        .route("/subscriptions", get(list_subscriptions))
        .route("/subscriptions/{sub}/providers/Microsoft.KeyVault/vaults", get(list_vaults))
        .route(
            "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults",
            get(list_vaults_in_group),
        )
        .route(
            "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults/{name}",
            get(show_vault).put(create_or_update_vault).patch(patch_vault),
        )
        .route(
            "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults/{name}/accessPolicies/{op}",
            put(update_access_policy),
        )
        .route_layer(axum::middleware::from_fn_with_state(state, authenticate))
}

/// Bearer authentication for ARM requests (audience: the management resource), then the
/// api-version check. The caller lands in the request extensions.
pub async fn authenticate(State(state): State<SharedState>, mut req: Request, next: Next) -> Response {
    let names = &state.names;
    let resource = names.management_resource();
    let tenant =
        state.store.list_tenants().await.ok().and_then(|t| t.into_iter().next()).map(|t| t.id).unwrap_or_default();
    let Some(token) = bearer_token(req.headers()) else {
        return challenge(
            &Error::unauthorized("Authentication failed. The 'Authorization' header is missing."),
            names,
            &tenant,
            &resource,
        );
    };
    let claims = match state.tokens.validate(token, &resource, names, state.clock.now()) {
        Ok(c) => c,
        Err(e) => return challenge(&e, names, &tenant, &resource),
    };
    let caller = match resolve_caller(state.store.as_ref(), &claims, state.clock.now()).await {
        Ok(c) => c,
        Err(e) if e.kind == ErrorKind::Unauthorized => return challenge(&e, names, &claims.tid, &resource),
        Err(e) => return ApiError(e).into_response(),
    };
    let has_version = query_pairs(req.uri().query())
        .ok()
        .and_then(|q| query_get(&q, "api-version").map(|v| !v.trim().is_empty()))
        .unwrap_or(false);
    if !has_version {
        return ApiError(Error::new(
            ErrorKind::BadRequest,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        ))
        .into_response();
    }
    req.extensions_mut().insert(caller);
    next.run(req).await
}

async fn caller_subscription(state: &SharedState, caller: &Caller, sub: &str) -> Result<String> {
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
    json!({
        "id": format!("/subscriptions/{}/resourceGroups/{}/{PROVIDER}/vaults/{}", v.subscription_id, v.resource_group, v.name),
        "name": v.name,
        "type": "Microsoft.KeyVault/vaults",
        "location": v.location,
        "tags": v.tags,
        "properties": props,
    })
}

async fn list_subscriptions(
    State(state): State<SharedState>,
    axum::Extension(caller): axum::Extension<Caller>,
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

async fn list_vaults(
    State(state): State<SharedState>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(sub): Path<String>,
) -> ApiResult<Response> {
    caller_subscription(&state, &caller, &sub).await?;
    let items: Vec<Value> = visible_vaults(&state, &caller).await?.iter().map(|v| vault_json(&state, v)).collect();
    Ok(json_response(StatusCode::OK, json!({"value": items, "nextLink": null})))
}

async fn list_vaults_in_group(
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

async fn show_vault(
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
    Ok(())
}

async fn create_or_update_vault(
    State(state): State<SharedState>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path((sub, rg, name)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let sub = caller_subscription(&state, &caller, &sub).await?;
    coffer_core::names::validate_vault_name(&name)?;
    if body.len() > MAX_REQUEST_BODY_BYTES {
        return Err(
            Error::new(ErrorKind::PayloadTooLarge, "RequestBodyTooLarge", "The request body is too large.").into()
        );
    }
    let input: VaultIn = parse_body(&body)?;
    let now = state.clock.now();
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
        apply_props(&mut v, &input.properties, input.tags, false)?;
        v.updated = now;
        state.store.update_vault(&v).await?;
        return Ok(json_response(StatusCode::OK, vault_json(&state, &v)));
    }
    authorize_management(&state, &caller, ManagementAction::VaultWrite, None).await?;
    let mut v = Vault {
        id: coffer_crypto::random::guid(),
        name: name.clone(),
        tenant_id: caller.tenant_id.clone(),
        subscription_id: sub,
        resource_group: rg,
        location: input.location.clone().unwrap_or_else(|| "local".into()),
        retention: RetentionPolicy::new(DEFAULT_RETENTION_DAYS, false)?,
        enable_rbac_authorization: false,
        access_policies: Vec::new(),
        tags: Tags::new(),
        created_by: caller.object_id.clone(),
        created: now,
        updated: now,
        deletion: None,
    };
    apply_props(&mut v, &input.properties, input.tags, true)?;
    let (_, wrapped) = state.keyring.new_vault_key(&v.id)?;
    if !state.store.create_vault(&v, &wrapped).await? {
        return Err(Error::new(
            ErrorKind::Conflict,
            "VaultAlreadyExists",
            format!("The vault name '{name}' is already in use."),
        )
        .into());
    }
    // The creator owns what it created: management rights, visible as a role assignment.
    let owner = coffer_core::rbac::RoleAssignment {
        id: coffer_crypto::random::guid(),
        tenant_id: v.tenant_id.clone(),
        scope: coffer_core::rbac::Scope::Vault(v.name.to_ascii_lowercase()).key(),
        role_definition_id: coffer_core::rbac::OWNER.into(),
        principal_id: caller.object_id.clone(),
        created: now,
        created_by: caller.object_id.clone(),
    };
    state.store.create_role_assignment(&owner).await?;
    Ok(json_response(StatusCode::OK, vault_json(&state, &v)))
}

async fn patch_vault(
    State(state): State<SharedState>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path((sub, rg, name)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    caller_subscription(&state, &caller, &sub).await?;
    let mut v = load_vault(&state, &caller, &rg, &name).await?;
    authorize_management(&state, &caller, ManagementAction::VaultWrite, Some(&v.name)).await?;
    let input: VaultIn = parse_body(&body)?;
    apply_props(&mut v, &input.properties, input.tags, false)?;
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
async fn update_access_policy(
    State(state): State<SharedState>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path((sub, rg, name, op)): Path<(String, String, String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    caller_subscription(&state, &caller, &sub).await?;
    let mut v = load_vault(&state, &caller, &rg, &name).await?;
    authorize_management(&state, &caller, ManagementAction::AccessPolicyWrite, Some(&v.name)).await?;
    let input: PolicyUpdateIn = parse_body(&body)?;
    let op = op.to_ascii_lowercase();
    for policy in input.properties.access_policies {
        coffer_core::permissions::validate_permission_names(&policy.permissions)?;
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
