//! Authorization in use: gathers the role assignments that apply to a caller (directly or
//! through groups, at the scopes covering the target — an indexed lookup), then asks the one
//! evaluator in `coffer_core::permissions`. The same path answers `explain` and `who-can`,
//! and keeps role definitions and assignments (the REST API is `crate::authorization_api`,
//! the portal's pages `portal::roles`). No HTTP types here.
use std::collections::{BTreeMap, BTreeSet};

use coffer_core::permissions::{
    Area, DataAction, Decision, ManagementAction, Target, evaluate, evaluate_assign, evaluate_management,
};
use coffer_core::principal::{Caller, Principal, PrincipalKind};
use coffer_core::rbac::{ApplicableAssignment, RoleAssignment, RoleDefinition, Scope, builtin_roles, find_builtin};
use coffer_core::vault::Vault;
use coffer_core::{Error, ErrorKind, Result};

use crate::state::AppState;

/// The caller's assignments at exactly the given scopes, with roles resolved.
pub async fn applicable(state: &AppState, caller: &Caller, scopes: &[String]) -> Result<Vec<ApplicableAssignment>> {
    let mut principals = Vec::with_capacity(caller.groups.len() + 1);
    principals.push(caller.object_id.clone());
    principals.extend(caller.groups.iter().cloned());
    let found = state.store.assignments_for(&principals, scopes).await?;
    resolve_roles(state, &caller.tenant_id, found, &caller.object_id).await
}

async fn resolve_roles(
    state: &AppState,
    tenant: &str,
    found: Vec<RoleAssignment>,
    caller_oid: &str,
) -> Result<Vec<ApplicableAssignment>> {
    let mut custom: Option<Vec<RoleDefinition>> = None;
    let mut out = Vec::with_capacity(found.len());
    for a in found {
        let role = match find_builtin(&a.role_definition_id) {
            Some(r) => r.clone(),
            None => {
                if custom.is_none() {
                    custom = Some(state.store.list_role_definitions(tenant).await?);
                }
                match custom.as_ref().and_then(|c| c.iter().find(|r| r.id == a.role_definition_id)) {
                    Some(r) => r.clone(),
                    None => continue, // a deleted custom role grants nothing
                }
            }
        };
        let via_group = (a.principal_id != caller_oid).then(|| a.principal_id.clone());
        out.push(ApplicableAssignment { assignment: a, role, via_group });
    }
    Ok(out)
}

fn collection(area: Area) -> &'static str {
    coffer_core::permissions::area_name(area)
}

/// The assignments a data-plane decision needs: under RBAC, and for metadata (management
/// rights include it); none otherwise, so access-policy vaults cost no lookup.
async fn data_assignments(
    state: &AppState,
    vault: &Vault,
    caller: &Caller,
    action: DataAction,
    name: Option<&str>,
) -> Result<Vec<ApplicableAssignment>> {
    if !vault.enable_rbac_authorization && !action.is_metadata() {
        return Ok(Vec::new());
    }
    let (area, _) = action.policy_permission();
    applicable(state, caller, &Scope::covering(&vault.name, &vault.resource_group, name.map(|n| (collection(area), n))))
        .await
}

/// The data-plane decision for `caller` on `vault` (for explain and who-can).
pub async fn decide_data(
    state: &AppState,
    vault: &Vault,
    caller: &Caller,
    action: DataAction,
    name: Option<&str>,
) -> Result<Decision> {
    let (area, _) = action.policy_permission();
    let assignments = data_assignments(state, vault, caller, action, name).await?;
    Ok(evaluate(vault, caller, action, &Target { area, name }, &assignments))
}

/// The decision for a principal as enforcement would reach it: a disabled principal is refused
/// before any grant is looked at (`auth::resolve_caller`), so it is denied here too. Used by
/// `explain` and `who-can`, so both agree with enforcement.
pub async fn decide_for_principal(
    state: &AppState,
    vault: &Vault,
    principal: &Principal,
    action: DataAction,
    name: Option<&str>,
) -> Result<(Caller, Decision)> {
    let subject = caller_of(state, principal).await?;
    if !principal.enabled {
        let why = format!("principal '{}' is disabled: it cannot sign in and its tokens are refused", principal.name);
        return Ok((subject, Decision::deny(why)));
    }
    let d = decide_data(state, vault, &subject, action, name).await?;
    Ok((subject, d))
}

/// Enforces a data-plane permission: Ok, or Azure's 403 for the vault's model.
pub async fn authorize_data(
    state: &AppState,
    vault: &Vault,
    caller: &Caller,
    action: DataAction,
    name: Option<&str>,
) -> Result<()> {
    let (area, _) = action.policy_permission();
    let assignments = data_assignments(state, vault, caller, action, name).await?;
    let target = Target { area, name };
    let decision = evaluate(vault, caller, action, &target, &assignments);
    crate::audit::note(|d| d.note_decision(vault.permission_model(), &decision));
    if decision.allowed {
        return Ok(());
    }
    Err(coffer_core::permissions::refusal(vault, caller, action, &target))
}

/// Enforces a management action in one resource group (making or recovering a vault there):
/// a grant at the tenant or at that group.
pub async fn authorize_management_in_group(
    state: &AppState,
    caller: &Caller,
    action: ManagementAction,
    group: &str,
) -> Result<()> {
    let scopes = ["/".to_string(), Scope::ResourceGroup(group.to_lowercase()).key()];
    let decision = evaluate_management(caller, action, &applicable(state, caller, &scopes).await?);
    crate::audit::note(|d| d.note_decision("management", &decision));
    if decision.allowed {
        return Ok(());
    }
    Err(forbidden_at(caller, action.arm_action(), &format!("/resourceGroups/{group}")))
}

/// Enforces a management action on the tenant (`vault: None`) or on one vault.
pub async fn authorize_management(
    state: &AppState,
    caller: &Caller,
    action: ManagementAction,
    vault: Option<&str>,
) -> Result<()> {
    let scopes = match vault {
        Some(v) => Scope::covering(v, &group_of(state, &caller.tenant_id, v).await?, None),
        None => vec!["/".to_string()],
    };
    let decision = evaluate_management(caller, action, &applicable(state, caller, &scopes).await?);
    crate::audit::note(|d| d.note_decision("management", &decision));
    if decision.allowed {
        return Ok(());
    }
    Err(forbidden_management(caller, action.arm_action(), vault))
}

/// The 403 for a role assignment change at `scope`, naming that scope.
fn forbidden_to_assign(caller: &Caller, action: &str, scope: &Scope) -> Error {
    match scope.resource_group() {
        Some(g) => forbidden_at(caller, action, &format!("/resourceGroups/{g}")),
        None => forbidden_management(caller, action, scope.vault()),
    }
}

fn forbidden_management(caller: &Caller, action: &str, vault: Option<&str>) -> Error {
    let scope = vault.map(|v| format!("/vaults/{v}")).unwrap_or_else(|| "/".into());
    forbidden_at(caller, action, &scope)
}

fn forbidden_at(caller: &Caller, action: &str, scope: &str) -> Error {
    Error::new(
        ErrorKind::Forbidden,
        "AuthorizationFailed",
        format!(
            "The client '{}' with object id '{}' does not have authorization to perform action '{action}' over scope '{scope}' or the scope is invalid.",
            caller.name, caller.object_id
        ),
    )
}

pub use coffer_core::permissions::require_tenant_admin;

/// Builds the `Caller` view of any principal (for explain and who-can).
pub async fn caller_of(state: &AppState, p: &Principal) -> Result<Caller> {
    Ok(Caller {
        object_id: p.object_id.clone(),
        tenant_id: p.tenant_id.clone(),
        client_id: p.client_id.clone(),
        name: p.name.clone(),
        kind: p.kind,
        groups: state.store.groups_of(&p.object_id).await?,
        tenant_admin: p.tenant_admin,
        signed_in_through: None,
    })
}

async fn all_roles(state: &AppState, tenant: &str) -> Result<Vec<RoleDefinition>> {
    let mut roles: Vec<RoleDefinition> = builtin_roles().to_vec();
    roles.extend(state.store.list_role_definitions(tenant).await?);
    Ok(roles)
}

/// A role by GUID or name, built-in or custom.
async fn find_role(state: &AppState, tenant: &str, name_or_id: &str) -> Result<RoleDefinition> {
    all_roles(state, tenant)
        .await?
        .into_iter()
        .find(|r| r.id.eq_ignore_ascii_case(name_or_id) || r.name.eq_ignore_ascii_case(name_or_id))
        .ok_or_else(|| {
            Error::not_found(
                "RoleDefinitionDoesNotExist",
                format!("The role '{}' does not exist.", coffer_core::names::printable(name_or_id)),
            )
        })
}

/// The built-in roles and the caller's tenant's custom ones.
pub async fn roles(state: &AppState, caller: &Caller) -> Result<Vec<RoleDefinition>> {
    all_roles(state, &caller.tenant_id).await
}

/// A custom role to create.
#[derive(Debug, Default)]
pub struct NewRole {
    pub name: String,
    pub description: String,
    pub actions: Vec<String>,
    pub not_actions: Vec<String>,
    pub data_actions: Vec<String>,
    pub not_data_actions: Vec<String>,
}

pub async fn create_role(state: &AppState, caller: &Caller, new: NewRole) -> Result<RoleDefinition> {
    authorize_management(state, caller, ManagementAction::RoleDefinitionWrite, None).await?;
    let role = RoleDefinition {
        id: coffer_crypto::random::guid(),
        name: new.name.trim().to_string(),
        description: new.description,
        actions: new.actions,
        not_actions: new.not_actions,
        data_actions: new.data_actions,
        not_data_actions: new.not_data_actions,
        built_in: false,
    };
    role.validate_custom()?;
    if find_builtin(&role.name).is_some()
        || !state.store.create_role_definition(&caller.tenant_id, &role, state.clock.now()).await?
    {
        return Err(Error::conflict(
            Some("RoleDefinitionWithSameNameExists"),
            format!("A role named '{}' already exists.", role.name),
        ));
    }
    Ok(role)
}

pub async fn delete_role(state: &AppState, caller: &Caller, id: &str) -> Result<()> {
    authorize_management(state, caller, ManagementAction::RoleDefinitionWrite, None).await?;
    let role = find_role(state, &caller.tenant_id, id).await?;
    if role.built_in {
        return Err(Error::bad_parameter(format!("'{}' is a built-in role and cannot be deleted.", role.name)));
    }
    if state.store.count_assignments_of_role(&role.id).await? > 0 {
        return Err(Error::conflict(
            Some("RoleDefinitionHasAssignments"),
            format!("The role '{}' is assigned; delete its assignments first.", role.name),
        ));
    }
    state.store.delete_role_definition(&caller.tenant_id, &role.id).await?;
    Ok(())
}

/// An assignment with the names people read: its role's and its principal's.
#[derive(Debug, Clone)]
pub struct NamedAssignment {
    pub assignment: RoleAssignment,
    pub role_name: Option<String>,
    /// `None` once the principal is deleted.
    pub principal: Option<Principal>,
}

async fn named(state: &AppState, a: RoleAssignment) -> Result<NamedAssignment> {
    let role_name = find_role(state, &a.tenant_id, &a.role_definition_id).await.ok().map(|r| r.name);
    let principal = state.store.get_principal(&a.principal_id).await?;
    Ok(NamedAssignment { assignment: a, role_name, principal })
}

/// Checks a scope names a live vault of the tenant; returns it parsed.
/// The resource group of the tenant's vault `vault` (live or deleted); empty if there is none.
async fn group_of(state: &AppState, tenant: &str, vault: &str) -> Result<String> {
    let record = state.store.get_vault_by_name(vault).await?.filter(|r| r.vault.tenant_id == tenant);
    Ok(record.map(|r| r.vault.resource_group).unwrap_or_default())
}

/// The scopes whose assignments apply at `scope` (its vault's resource group looked up).
pub async fn covering_keys(state: &AppState, tenant: &str, scope: &Scope) -> Result<Vec<String>> {
    let group = match scope.vault() {
        Some(v) => group_of(state, tenant, v).await?,
        None => String::new(),
    };
    Ok(scope.covering_keys(&group))
}

/// `scope`, parsed, if what it names exists: the tenant's resource group, or a live vault.
async fn check_scope(state: &AppState, tenant: &str, scope: &str) -> Result<Scope> {
    let s = Scope::parse(scope)?;
    if let Some(g) = s.resource_group() {
        let sub = state.store.get_tenant(tenant).await?.map(|t| t.default_subscription_id).unwrap_or_default();
        if state.store.get_resource_group(&sub, g).await?.is_none() {
            return Err(Error::not_found(
                "ResourceGroupNotFound",
                format!("The resource group '{g}' in scope '{}' was not found.", coffer_core::names::printable(scope)),
            ));
        }
    }
    if let Some(v) = s.vault() {
        let live =
            state.store.get_vault_by_name(v).await?.filter(|r| !r.vault.is_deleted() && r.vault.tenant_id == tenant);
        if live.is_none() {
            return Err(Error::not_found(
                "ResourceNotFound",
                format!("The vault '{v}' in scope '{scope}' was not found."),
            ));
        }
    }
    Ok(s)
}

/// Assigns a role. Only owners (and tenant administrators) may, or a Key Vault Data Access
/// Administrator for the Key Vault data roles.
pub async fn assign(
    state: &AppState,
    caller: &Caller,
    role: &str,
    assignee: &str,
    scope: &str,
) -> Result<NamedAssignment> {
    assign_with_id(state, caller, None, (role, assignee, scope)).await
}

/// `assign`, with the assignment's id chosen by the client (ARM's `PUT …/roleAssignments/{name}`,
/// a GUID). The same id with the same role, principal and scope again is the assignment that
/// exists (ARM's PUT is idempotent); the same grant under another id is 409.
pub async fn assign_with_id(
    state: &AppState,
    caller: &Caller,
    id: Option<&str>,
    (role, assignee, scope): (&str, &str, &str),
) -> Result<NamedAssignment> {
    if let Some(id) = id
        && !coffer_core::names::is_guid(id)
    {
        return Err(Error::bad_parameter(format!(
            "The role assignment name '{}' is not a GUID.",
            coffer_core::names::printable(id)
        )));
    }
    let parsed = check_scope(state, &caller.tenant_id, scope).await?;
    let role = find_role(state, &caller.tenant_id, role).await?;
    let principal = crate::directory::find(state, &caller.tenant_id, assignee).await?;
    let covering = covering_keys(state, &caller.tenant_id, &parsed).await?;
    let decision = evaluate_assign(caller, &role.id, &applicable(state, caller, &covering).await?);
    if !decision.allowed {
        return Err(forbidden_to_assign(caller, ManagementAction::RoleAssignmentWrite.arm_action(), &parsed));
    }
    let a = RoleAssignment {
        id: id.map(str::to_ascii_lowercase).unwrap_or_else(coffer_crypto::random::guid),
        tenant_id: caller.tenant_id.clone(),
        scope: parsed.key(),
        role_definition_id: role.id.clone(),
        principal_id: principal.object_id.clone(),
        created: state.clock.now(),
        created_by: caller.object_id.clone(),
    };
    if !state.store.create_role_assignment(&a).await? {
        if let Some(same) = state.store.get_role_assignment(&a.id).await?
            && (
                same.tenant_id.as_str(),
                same.scope.as_str(),
                same.role_definition_id.as_str(),
                same.principal_id.as_str(),
            ) == (a.tenant_id.as_str(), a.scope.as_str(), a.role_definition_id.as_str(), a.principal_id.as_str())
        {
            return Ok(NamedAssignment { assignment: same, role_name: Some(role.name), principal: Some(principal) });
        }
        // ARM's code, at the top (`az` and azure-mgmt-authorization read it there).
        return Err(Error::new(ErrorKind::Conflict, "RoleAssignmentExists", "The role assignment already exists."));
    }
    Ok(NamedAssignment { assignment: a, role_name: Some(role.name), principal: Some(principal) })
}

/// One assignment, if the caller may read the assignments of its vault (or the tenant's).
pub async fn assignment(state: &AppState, caller: &Caller, id: &str) -> Result<NamedAssignment> {
    let missing = || Error::not_found("RoleAssignmentNotFound", "The role assignment does not exist.");
    let a = state
        .store
        .get_role_assignment(&id.to_ascii_lowercase())
        .await?
        .filter(|a| a.tenant_id == caller.tenant_id)
        .ok_or_else(missing)?;
    authorize_reading_assignments_at(state, caller, &Scope::parse(&a.scope)?).await?;
    named(state, a).await
}

/// Reading the assignments at `scope` needs `RoleAssignmentRead` there: at its vault, at its
/// resource group, or at the tenant.
async fn authorize_reading_assignments_at(state: &AppState, caller: &Caller, scope: &Scope) -> Result<()> {
    let read = ManagementAction::RoleAssignmentRead;
    match scope.resource_group() {
        Some(g) => authorize_management_in_group(state, caller, read, g).await,
        None => authorize_management(state, caller, read, scope.vault()).await,
    }
}

/// Every role, or the one named `name` (ARM's `$filter=roleName eq '…'`).
pub async fn role(state: &AppState, caller: &Caller, name_or_id: &str) -> Result<RoleDefinition> {
    find_role(state, &caller.tenant_id, name_or_id).await
}

/// The assignments under `scope` (a scope prefix) and of `assignee`, if given, that the caller
/// may read (checked once per vault, or for the tenant).
pub async fn assignments(
    state: &AppState,
    caller: &Caller,
    scope: Option<&str>,
    assignee: Option<&str>,
) -> Result<Vec<NamedAssignment>> {
    let prefix = match scope {
        Some(s) => Some(Scope::parse(s)?.key()),
        None => None,
    };
    let assignee = match assignee {
        Some(a) => Some(crate::directory::find(state, &caller.tenant_id, a).await?.object_id),
        None => None,
    };
    let all = state.store.list_role_assignments(&caller.tenant_id, prefix.as_deref(), assignee.as_deref()).await?;
    // Decided once per vault, resource group or the tenant (the scope an assignment is read at).
    let mut readable: BTreeMap<String, bool> = BTreeMap::new();
    let mut items = Vec::new();
    for a in all {
        let Ok(scope) = Scope::parse(&a.scope) else { continue };
        let at = match (&scope, scope.vault()) {
            (_, Some(v)) => Scope::Vault(v.to_string()),
            (Scope::ResourceGroup(_), None) => scope.clone(),
            _ => Scope::Root,
        };
        let ok = match readable.get(&at.key()) {
            Some(ok) => *ok,
            None => {
                let ok = authorize_reading_assignments_at(state, caller, &at).await.is_ok();
                readable.insert(at.key(), ok);
                ok
            }
        };
        if ok {
            items.push(named(state, a).await?);
        }
    }
    Ok(items)
}

/// Removes an assignment; who may is decided as for `assign`.
pub async fn unassign(state: &AppState, caller: &Caller, id: &str) -> Result<()> {
    let a = state
        .store
        .get_role_assignment(&id.to_ascii_lowercase())
        .await?
        .filter(|a| a.tenant_id == caller.tenant_id)
        .ok_or_else(|| Error::not_found("RoleAssignmentNotFound", "The role assignment does not exist."))?;
    let scope = Scope::parse(&a.scope)?;
    let covering = covering_keys(state, &caller.tenant_id, &scope).await?;
    let decision = evaluate_assign(caller, &a.role_definition_id, &applicable(state, caller, &covering).await?);
    if !decision.allowed {
        return Err(forbidden_to_assign(caller, ManagementAction::RoleAssignmentDelete.arm_action(), &scope));
    }
    state.store.delete_role_assignment(&a.id).await?;
    Ok(())
}

/// An explain or who-can question: may (someone) do `action` in `vault`, on one object if
/// named (`object`: its kind's area and name)?
#[derive(Debug, Clone)]
pub struct Question {
    pub vault: String,
    pub action: String,
    pub object: Option<(Area, String)>,
}

/// The vault, action and object name of a question, once the caller may ask it.
async fn question<'a>(
    state: &AppState,
    caller: &Caller,
    q: &'a Question,
) -> Result<(Vault, DataAction, Option<&'a str>)> {
    let rec = state
        .store
        .get_vault_by_name(&q.vault)
        .await?
        .filter(|r| !r.vault.is_deleted() && r.vault.tenant_id == caller.tenant_id)
        .ok_or_else(|| {
            Error::not_found(
                "ResourceNotFound",
                format!("The vault '{}' was not found.", coffer_core::names::printable(&q.vault)),
            )
        })?;
    // Who may ask: whoever may read the vault's access configuration.
    authorize_management(state, caller, ManagementAction::RoleAssignmentRead, Some(&rec.vault.name)).await?;
    let action = DataAction::parse(&q.action).ok_or_else(|| {
        Error::bad_parameter(format!(
            "'{}' is not a known data action (e.g. getSecret, secrets/get, Microsoft.KeyVault/vaults/secrets/getSecret/action).",
            coffer_core::names::printable(&q.action)
        ))
    })?;
    let (area, _) = action.policy_permission();
    if q.object.as_ref().is_some_and(|(a, _)| *a != area) {
        return Err(Error::bad_parameter(format!("The action '{}' does not apply to that kind of object.", q.action)));
    }
    let name = q.object.as_ref().map(|(_, n)| n.as_str());
    if let Some(n) = name {
        coffer_core::names::validate_object_name(n)?;
    }
    Ok((rec.vault, action, name))
}

/// The answer to a question, for one principal or as a list.
#[derive(Debug, Clone)]
pub struct Answer<T> {
    pub vault: Vault,
    pub action: DataAction,
    pub answer: T,
}

/// What enforcement would decide for `assignee`, and the groups it was judged with.
pub async fn explain(
    state: &AppState,
    caller: &Caller,
    q: &Question,
    assignee: &str,
) -> Result<Answer<(Principal, Vec<String>, Decision)>> {
    let (vault, action, name) = question(state, caller, q).await?;
    let principal = crate::directory::find(state, &caller.tenant_id, assignee).await?;
    let (subject, d) = decide_for_principal(state, &vault, &principal, action, name).await?;
    Ok(Answer { vault, action, answer: (principal, subject.groups, d) })
}

/// Every principal that may perform the action with the evaluator's reasons, found from the
/// grants (not by scanning the directory) and each confirmed by the evaluator that enforces
/// requests.
pub async fn who_can(state: &AppState, caller: &Caller, q: &Question) -> Result<Answer<Vec<(Principal, Decision)>>> {
    let (vault, action, name) = question(state, caller, q).await?;
    let (area, _) = action.policy_permission();
    let mut seeds: BTreeSet<String> = BTreeSet::new();
    if !vault.enable_rbac_authorization {
        seeds.extend(vault.access_policies.iter().map(|p| p.object_id.to_ascii_lowercase()));
    }
    if vault.enable_rbac_authorization || action.is_metadata() {
        let scopes = Scope::covering(&vault.name, &vault.resource_group, name.map(|n| (collection(area), n)));
        for scope in &scopes {
            for a in state.store.list_role_assignments(&caller.tenant_id, Some(scope), None).await? {
                if &a.scope == scope {
                    seeds.insert(a.principal_id);
                }
            }
        }
    }
    if action.is_metadata() {
        let admins = state.store.list_principals(&caller.tenant_id).await?.into_iter().filter(|p| p.tenant_admin);
        seeds.extend(admins.map(|p| p.object_id));
    }
    // Expand groups to their members.
    let mut candidates: BTreeSet<String> = BTreeSet::new();
    for s in seeds {
        match state.store.get_principal(&s).await? {
            Some(p) if p.kind == PrincipalKind::Group => {
                candidates.extend(state.store.group_descendants(&p.object_id).await?)
            }
            Some(p) => {
                candidates.insert(p.object_id);
            }
            None => {}
        }
    }
    let mut out = Vec::new();
    for oid in candidates {
        let Some(p) = state.store.get_principal(&oid).await?.filter(|p| p.kind != PrincipalKind::Group && p.enabled)
        else {
            continue;
        };
        let (_, d) = decide_for_principal(state, &vault, &p, action, name).await?;
        if d.allowed {
            out.push((p, d));
        }
    }
    Ok(Answer { vault, action, answer: out })
}
