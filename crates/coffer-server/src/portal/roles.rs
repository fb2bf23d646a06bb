//! A vault's role assignments in the portal: list them (at the vault and on its items), assign
//! and remove — through the authorization service, as the `/authorization` API, so who may
//! assign what is decided in one place.
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use super::pages::{Portal, Posted, VaultView, field, signed_in, vault_view, visible_vault};
use super::{UserView, error_page, html, status_of};
use crate::authorization;
use crate::state::SharedState;

struct AssignmentRow {
    id: String,
    role: String,
    principal: String,
    scope: String,
}

struct PrincipalOption {
    object_id: String,
    name: String,
    kind: &'static str,
}

#[derive(Template)]
#[template(path = "portal/roles.html")]
struct RolesPage {
    user: Option<UserView>,
    flash: Option<String>,
    vault: VaultView,
    tab: &'static str,
    csrf: String,
    assignments: Vec<AssignmentRow>,
    roles: Vec<String>,
    principals: Vec<PrincipalOption>,
    error: Option<String>,
}

async fn roles_page(
    state: &SharedState,
    p: &Portal,
    vault: &str,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let v = match visible_vault(state, &p.caller, vault).await {
        Ok(v) => v,
        Err(e) => return error_page(p.user(), &e),
    };
    let scope = format!("/vaults/{}", v.name);
    let assignments = match authorization::assignments(state, &p.caller, Some(&scope), None).await {
        Ok(found) => found
            .iter()
            .map(|n| AssignmentRow {
                id: n.assignment.id.clone(),
                role: n.role_name.clone().unwrap_or_default(),
                principal: match &n.principal {
                    Some(x) => format!("{} ({})", x.name, x.kind.as_str()),
                    None => format!("{} (deleted)", n.assignment.principal_id),
                },
                scope: n.assignment.scope.clone(),
            })
            .collect(),
        Err(e) => return error_page(p.user(), &e),
    };
    let roles = match authorization::roles(state, &p.caller).await {
        Ok(r) => r.into_iter().map(|r| r.name).collect(),
        Err(e) => return error_page(p.user(), &e),
    };
    // The directory is listed only to those who may read it.
    let principals = if p.caller.tenant_admin {
        state
            .store
            .list_principals(&p.caller.tenant_id)
            .await
            .unwrap_or_default()
            .iter()
            .map(|x| PrincipalOption { object_id: x.object_id.clone(), name: x.name.clone(), kind: x.kind.as_str() })
            .collect()
    } else {
        Vec::new()
    };
    let page = RolesPage {
        user: p.user(),
        flash: None,
        vault: vault_view(state, &v),
        tab: "roles",
        csrf: p.session.csrf.clone(),
        assignments,
        roles,
        principals,
        error,
    };
    html(status, &page)
}

pub async fn roles(State(state): State<SharedState>, headers: HeaderMap, Path(vault): Path<String>) -> Response {
    match signed_in(&state, &headers).await {
        Ok(p) => roles_page(&state, &p, &vault, None, StatusCode::OK).await,
        Err(r) => r,
    }
}

pub async fn assign(
    State(state): State<SharedState>,
    Path(vault): Path<String>,
    Posted { portal: p, form }: Posted,
) -> Response {
    let (role, assignee, scope) = (
        field(&form, "role").unwrap_or(""),
        field(&form, "assignee").unwrap_or("").trim(),
        field(&form, "scope").unwrap_or("").trim(),
    );
    let done = authorization::assign(&state, &p.caller, role, assignee, scope).await.map(drop);
    back_to_roles(&state, &p, &vault, done).await
}

pub async fn unassign(
    State(state): State<SharedState>,
    Path((vault, id)): Path<(String, String)>,
    Posted { portal: p, .. }: Posted,
) -> Response {
    let done = authorization::unassign(&state, &p.caller, &id).await;
    back_to_roles(&state, &p, &vault, done).await
}

/// After a change: back to the roles tab, or the tab with the error.
async fn back_to_roles(state: &SharedState, p: &Portal, vault: &str, done: coffer_core::Result<()>) -> Response {
    match done {
        Ok(()) => Redirect::to(&format!("/portal/vaults/{}/roles", super::seg(vault))).into_response(),
        Err(e) => roles_page(state, p, vault, Some(e.message.clone()), status_of(&e)).await,
    }
}
