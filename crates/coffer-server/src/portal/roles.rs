//! A vault's role assignments in the portal: list them (at the vault and on its items), assign
//! and remove — through the `/authorization` handlers, so who may assign what is decided there.
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{Value, json};

use super::pages::{Portal, Posted, VaultView, field, signed_in, vault_view, visible_vault};
use super::{UserView, error_page, html, status_of};
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

async fn body_of(resp: Response) -> Value {
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 22).await.unwrap_or_default();
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
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
    let (caller, st) = (axum::Extension(p.caller.clone()), State(state.clone()));
    let query = crate::authorization::ListQuery { scope: Some(format!("/vaults/{}", v.name)), assignee: None };
    let assignments = match crate::authorization::list_assignments(st.clone(), caller.clone(), Query(query)).await {
        Ok(r) => body_of(r).await["value"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|x| AssignmentRow {
                        id: x["id"].as_str().unwrap_or_default().to_string(),
                        role: x["roleDefinitionName"].as_str().unwrap_or_default().to_string(),
                        principal: format!(
                            "{} ({})",
                            x["principalName"].as_str().unwrap_or_default(),
                            x["principalType"].as_str().unwrap_or_default()
                        ),
                        scope: x["scope"].as_str().unwrap_or_default().to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        Err(e) => return error_page(p.user(), &e.0),
    };
    let roles = match crate::authorization::list_definitions(st, caller).await {
        Ok(r) => body_of(r).await["value"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x["roleName"].as_str().map(str::to_string)).collect())
            .unwrap_or_default(),
        Err(e) => return error_page(p.user(), &e.0),
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
    let input = json!({
        "role": field(&form, "role").unwrap_or(""),
        "assignee": field(&form, "assignee").unwrap_or("").trim(),
        "scope": field(&form, "scope").unwrap_or("").trim(),
    });
    let done = crate::authorization::create_assignment(
        State(state.clone()),
        axum::Extension(p.caller.clone()),
        Bytes::from(input.to_string()),
    )
    .await;
    match done {
        Ok(_) => Redirect::to(&format!("/portal/vaults/{vault}/roles")).into_response(),
        Err(e) => {
            let status = status_of(&e.0);
            roles_page(&state, &p, &vault, Some(e.0.message.clone()), status).await
        }
    }
}

pub async fn unassign(
    State(state): State<SharedState>,
    Path((vault, id)): Path<(String, String)>,
    Posted { portal: p, .. }: Posted,
) -> Response {
    match crate::authorization::delete_assignment(State(state.clone()), axum::Extension(p.caller.clone()), Path(id))
        .await
    {
        Ok(_) => Redirect::to(&format!("/portal/vaults/{vault}/roles")).into_response(),
        Err(e) => {
            let status = status_of(&e.0);
            roles_page(&state, &p, &vault, Some(e.0.message.clone()), status).await
        }
    }
}
