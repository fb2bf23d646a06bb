//! Directory administration in the portal (tenant administrators): principals, groups and
//! their members — through the directory service, as the `/directory` API, so the same checks
//! apply.
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use coffer_core::Error;
use coffer_core::principal::PrincipalKind;
use zeroize::Zeroizing;

use super::pages::{Portal, Posted, field, signed_in};
use super::{UserView, error_page, html, status_of};
use crate::directory::{self, IssuedCredential, NewCredential, NewPrincipal, PrincipalChange};
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
    let all = match directory::principals(state, &p.caller).await {
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

/// A new user (with its password), application (with a client secret shown once), managed
/// identity (with its identity header shown once) or group.
pub async fn create_principal(State(state): State<SharedState>, Posted { portal: p, form }: Posted) -> Response {
    let kind_name = field(&form, "type").unwrap_or("user").to_string();
    let Some(kind) = PrincipalKind::parse(&kind_name) else {
        let e = Error::bad_parameter("type must be one of user, app, managed-identity, group.");
        return admin_page(&state, &p, None, None, Some(e.message.clone()), status_of(&e)).await;
    };
    let password = field(&form, "password")
        .filter(|pw| kind == PrincipalKind::User && !pw.is_empty())
        .map(|pw| Zeroizing::new(pw.to_string()));
    let name = field(&form, "name").unwrap_or("").trim().to_string();
    let new = NewPrincipal { password, ..NewPrincipal::new(kind, name.clone()) };
    let created = match directory::create_principal(&state, &p.caller, new).await {
        Ok(c) => c,
        Err(e) => return admin_page(&state, &p, None, None, Some(e.message.clone()), status_of(&e)).await,
    };
    let oid = created.principal.object_id.clone();
    let mut shown = None;
    if matches!(kind, PrincipalKind::App | PrincipalKind::ManagedIdentity) {
        match directory::add_credential(&state, &p.caller, &oid, NewCredential::default()).await {
            Ok(issued) => shown = shown_once(&issued, true),
            Err(e) => return admin_page(&state, &p, None, None, Some(e.message.clone()), status_of(&e)).await,
        }
    }
    let flash = Some(format!("Created {kind_name} '{name}' ({oid})."));
    admin_page(&state, &p, flash, shown, None, StatusCode::OK).await
}

/// What a new credential shows once: the secret or header, `labelled` with its client id or
/// endpoint (on creation) or alone.
fn shown_once(issued: &IssuedCredential, labelled: bool) -> Option<String> {
    match issued {
        IssuedCredential::ClientSecret { client_id, secret, .. } if labelled => {
            Some(format!("client_id: {}\nclient_secret: {}", client_id.as_deref().unwrap_or_default(), secret.as_str()))
        }
        IssuedCredential::IdentityHeader { endpoint, header, .. } if labelled => {
            Some(format!("identity_endpoint: {endpoint}\nidentity_header: {}", header.as_str()))
        }
        IssuedCredential::ClientSecret { secret, .. } => Some(secret.as_str().to_string()),
        IssuedCredential::IdentityHeader { header, .. } => Some(header.as_str().to_string()),
        IssuedCredential::Certificate(_) | IssuedCredential::Password(_) => None,
    }
}

/// The outcome of a directory change as the admin page (flash on success, error otherwise).
async fn after<T>(state: &SharedState, p: &Portal, done: coffer_core::Result<T>, flash: &str) -> Response {
    match done {
        Ok(_) => admin_page(state, p, Some(flash.to_string()), None, None, StatusCode::OK).await,
        Err(e) => admin_page(state, p, None, None, Some(e.message.clone()), status_of(&e)).await,
    }
}

pub async fn add_member(State(state): State<SharedState>, Posted { portal: p, form }: Posted) -> Response {
    let (group, member) = (field(&form, "group").unwrap_or(""), field(&form, "member").unwrap_or(""));
    let done = directory::add_member(&state, &p.caller, group, member).await;
    after(&state, &p, done, "The member was added.").await
}

pub async fn set_enabled(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    Posted { portal: p, form }: Posted,
) -> Response {
    let enabled = field(&form, "enabled") == Some("true");
    let change = PrincipalChange { enabled: Some(enabled), ..PrincipalChange::default() };
    let done = directory::update_principal(&state, &p.caller, &id, change).await;
    after(&state, &p, done, if enabled { "The principal was enabled." } else { "The principal was disabled." }).await
}

pub async fn delete_principal(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    Posted { portal: p, .. }: Posted,
) -> Response {
    let done = directory::delete_principal(&state, &p.caller, &id).await;
    after(&state, &p, done, "The principal was deleted.").await
}

pub async fn remove_member(
    State(state): State<SharedState>,
    Path((group, member)): Path<(String, String)>,
    Posted { portal: p, .. }: Posted,
) -> Response {
    let done = directory::remove_member(&state, &p.caller, &group, &member).await;
    after(&state, &p, done, "The member was removed.").await
}

/// A new client secret (applications) or identity header (managed identities), shown once.
pub async fn new_credential(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    Posted { portal: p, .. }: Posted,
) -> Response {
    match directory::add_credential(&state, &p.caller, &id, NewCredential::default()).await {
        Ok(issued) => {
            let shown = shown_once(&issued, false);
            admin_page(&state, &p, Some("A new credential was added.".into()), shown, None, StatusCode::OK).await
        }
        Err(e) => admin_page(&state, &p, None, None, Some(e.message.clone()), status_of(&e)).await,
    }
}
