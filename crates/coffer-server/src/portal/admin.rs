//! Directory administration in the portal (tenant administrators): principals, groups and
//! their members — through the `/directory` handlers, so the same checks and records apply.
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use coffer_core::principal::PrincipalKind;
use serde_json::{Value, json};

use super::pages::{Portal, Posted, field, signed_in};
use super::{UserView, error_page, html, status_of};
use crate::state::SharedState;

struct PrincipalRow {
    name: String,
    kind: &'static str,
    object_id: String,
    enabled: bool,
    admin: bool,
}

struct Member {
    object_id: String,
    name: String,
}

struct GroupView {
    object_id: String,
    name: String,
    members: Vec<Member>,
}

#[derive(Template)]
#[template(path = "portal/admin.html")]
struct AdminPage {
    user: Option<UserView>,
    flash: Option<String>,
    csrf: String,
    principals: Vec<PrincipalRow>,
    groups: Vec<GroupView>,
    shown_once: Option<String>,
    error: Option<String>,
}

async fn admin_page(
    state: &SharedState,
    p: &Portal,
    flash: Option<String>,
    shown_once: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    if let Err(e) = crate::authorization::require_tenant_admin(&p.caller, "manage the directory") {
        return error_page(p.user(), &e);
    }
    let all = match state.store.list_principals(&p.caller.tenant_id).await {
        Ok(a) => a,
        Err(e) => return error_page(p.user(), &e),
    };
    let row = |x: &coffer_core::principal::Principal| PrincipalRow {
        name: x.name.clone(),
        kind: x.kind.as_str(),
        object_id: x.object_id.clone(),
        enabled: x.enabled,
        admin: x.tenant_admin,
    };
    let name_of =
        |oid: &str| all.iter().find(|x| x.object_id == oid).map(|x| x.name.clone()).unwrap_or_else(|| oid.into());
    let mut groups = Vec::new();
    for g in all.iter().filter(|x| x.kind == PrincipalKind::Group) {
        let members = state.store.group_members(&g.object_id).await.unwrap_or_default();
        groups.push(GroupView {
            object_id: g.object_id.clone(),
            name: g.name.clone(),
            members: members.iter().map(|m| Member { object_id: m.clone(), name: name_of(m) }).collect(),
        });
    }
    let page = AdminPage {
        user: p.user(),
        flash,
        csrf: p.session.csrf.clone(),
        principals: all.iter().map(row).collect(),
        groups,
        shown_once,
        error,
    };
    html(status, &page)
}

pub async fn admin(State(state): State<SharedState>, headers: HeaderMap) -> Response {
    match signed_in(&state, &headers).await {
        Ok(p) => admin_page(&state, &p, None, None, None, StatusCode::OK).await,
        Err(r) => r,
    }
}

/// The JSON body of a handler's response.
async fn body_of(resp: Response) -> Value {
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap_or_default();
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

/// A new user (with its password), application (with a client secret shown once), managed
/// identity (with its identity header shown once) or group.
pub async fn create_principal(State(state): State<SharedState>, Posted { portal: p, form }: Posted) -> Response {
    let kind = field(&form, "type").unwrap_or("user").to_string();
    let name = field(&form, "name").unwrap_or("").trim().to_string();
    let mut input = json!({"type": kind, "name": name});
    if kind == "user"
        && let Some(pw) = field(&form, "password").filter(|p| !p.is_empty())
    {
        input["password"] = json!(pw);
    }
    let created = crate::directory::create_principal(
        State(state.clone()),
        axum::Extension(p.caller.clone()),
        Bytes::from(input.to_string()),
    )
    .await;
    let created = match created {
        Ok(resp) => body_of(resp).await,
        Err(e) => {
            let status = status_of(&e.0);
            return admin_page(&state, &p, None, None, Some(e.0.message.clone()), status).await;
        }
    };
    let oid = created["object_id"].as_str().unwrap_or_default().to_string();
    let mut shown = None;
    if kind == "app" || kind == "managed-identity" {
        let cred = crate::directory::add_credential(
            State(state.clone()),
            axum::Extension(p.caller.clone()),
            Path(oid.clone()),
            Bytes::from("{}"),
        )
        .await;
        match cred {
            Ok(resp) => {
                let c = body_of(resp).await;
                shown = match (c["client_secret"].as_str(), c["identity_header"].as_str()) {
                    (Some(s), _) => Some(format!(
                        "client_id: {}\nclient_secret: {s}",
                        created["client_id"].as_str().unwrap_or_default()
                    )),
                    (None, Some(h)) => Some(format!(
                        "identity_endpoint: {}\nidentity_header: {h}",
                        created["identity_endpoint"].as_str().unwrap_or_default()
                    )),
                    _ => None,
                };
            }
            Err(e) => {
                let status = status_of(&e.0);
                return admin_page(&state, &p, None, None, Some(e.0.message.clone()), status).await;
            }
        }
    }
    let flash = Some(format!("Created {kind} '{name}' ({oid})."));
    admin_page(&state, &p, flash, shown, None, StatusCode::OK).await
}

pub async fn add_member(State(state): State<SharedState>, Posted { portal: p, form }: Posted) -> Response {
    let (group, member) =
        (field(&form, "group").unwrap_or("").to_string(), field(&form, "member").unwrap_or("").to_string());
    let added =
        crate::directory::add_member(State(state.clone()), axum::Extension(p.caller.clone()), Path((group, member)))
            .await;
    match added {
        Ok(_) => admin_page(&state, &p, Some("The member was added.".into()), None, None, StatusCode::OK).await,
        Err(e) => {
            let status = status_of(&e.0);
            admin_page(&state, &p, None, None, Some(e.0.message.clone()), status).await
        }
    }
}

/// The outcome of a directory handler as the admin page (flash on success, error otherwise).
async fn after(state: &SharedState, p: &Portal, done: crate::http::ApiResult<Response>, flash: &str) -> Response {
    match done {
        Ok(_) => admin_page(state, p, Some(flash.to_string()), None, None, StatusCode::OK).await,
        Err(e) => {
            let status = status_of(&e.0);
            admin_page(state, p, None, None, Some(e.0.message.clone()), status).await
        }
    }
}

pub async fn set_enabled(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    Posted { portal: p, form }: Posted,
) -> Response {
    let enabled = field(&form, "enabled") == Some("true");
    let patch = Bytes::from(json!({"enabled": enabled}).to_string());
    let done =
        crate::directory::patch_principal(State(state.clone()), axum::Extension(p.caller.clone()), Path(id), patch)
            .await;
    after(&state, &p, done, if enabled { "The principal was enabled." } else { "The principal was disabled." }).await
}

pub async fn delete_principal(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    Posted { portal: p, .. }: Posted,
) -> Response {
    let done =
        crate::directory::delete_principal(State(state.clone()), axum::Extension(p.caller.clone()), Path(id)).await;
    after(&state, &p, done, "The principal was deleted.").await
}

pub async fn remove_member(
    State(state): State<SharedState>,
    Path((group, member)): Path<(String, String)>,
    Posted { portal: p, .. }: Posted,
) -> Response {
    let done =
        crate::directory::remove_member(State(state.clone()), axum::Extension(p.caller.clone()), Path((group, member)))
            .await;
    after(&state, &p, done, "The member was removed.").await
}

/// A new client secret (applications) or identity header (managed identities), shown once.
pub async fn new_credential(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    Posted { portal: p, .. }: Posted,
) -> Response {
    let added = crate::directory::add_credential(
        State(state.clone()),
        axum::Extension(p.caller.clone()),
        Path(id),
        Bytes::from("{}"),
    )
    .await;
    match added {
        Ok(resp) => {
            let c = body_of(resp).await;
            let shown = c["client_secret"].as_str().or(c["identity_header"].as_str()).map(str::to_string);
            admin_page(&state, &p, Some("A new credential was added.".into()), shown, None, StatusCode::OK).await
        }
        Err(e) => {
            let status = status_of(&e.0);
            admin_page(&state, &p, None, None, Some(e.0.message.clone()), status).await
        }
    }
}
