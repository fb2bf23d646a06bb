//! `/directory/...` for tenant administrators (management token): the directory service's
//! principals, credentials and group memberships in JSON.
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use coffer_core::Error;
use coffer_core::principal::{Principal, PrincipalKind};
use coffer_store::Credential;
use serde::Deserialize;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::authentication::{ManageDirectory, TenantAdmin};
use crate::directory::{self, IssuedCredential, NewCredential, NewPrincipal, PrincipalChange, identity_endpoint};
use crate::http::{ApiResult, Path, json as json_response, parse_body};
use crate::routes::{Methods, Routes, read, write};
use crate::state::{AppState, SharedState};

type Admin = TenantAdmin<ManageDirectory>;

pub fn routes() -> Routes<SharedState> {
    let (get, change) = (read("DirectoryGet"), write("DirectoryChange"));
    Routes::new()
        .route("/directory/principals", Methods::post(change, create_principal).and_get(get, list_principals))
        .route(
            "/directory/principals/{id}",
            Methods::get(get, show_principal).and_patch(change, patch_principal).and_delete(change, delete_principal),
        )
        .route(
            "/directory/principals/{id}/credentials",
            Methods::post(change, add_credential).and_get(get, list_credentials),
        )
        .route("/directory/principals/{id}/credentials/{cid}", Methods::delete(change, remove_credential))
        .route("/directory/groups/{id}/members", Methods::get(get, list_members))
        .route(
            "/directory/groups/{id}/members/{member}",
            Methods::put(change, add_member).and_delete(change, remove_member),
        )
        .route("/directory/signing-keys/rotate", Methods::post(change, rotate_signing_key))
}

pub fn principal_json(state: &AppState, p: &Principal) -> Value {
    let mut v = json!({
        "object_id": p.object_id,
        "tenant_id": p.tenant_id,
        "type": p.kind.as_str(),
        "name": p.name,
        "enabled": p.enabled,
        "tenant_admin": p.tenant_admin,
        "created": p.created,
    });
    if let Some(c) = &p.client_id {
        v["client_id"] = c.clone().into();
    }
    if let Some(d) = &p.display_name {
        v["display_name"] = d.clone().into();
    }
    if let Some(m) = &p.mail_nickname {
        v["mail_nickname"] = m.clone().into();
    }
    if p.kind == PrincipalKind::ManagedIdentity {
        v["identity_endpoint"] = identity_endpoint(state, p).into();
    }
    v
}

pub fn credential_json(c: &Credential) -> Value {
    let mut v =
        json!({"id": c.id, "principal_id": c.principal_id, "kind": c.kind, "created": c.created, "expires": c.expires});
    if let Some(t) = &c.thumbprint {
        v["thumbprint"] = t.clone().into();
    }
    v
}

#[derive(Deserialize)]
struct CreateIn {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    password: Option<String>,
    #[serde(default)]
    tenant_admin: bool,
}

async fn create_principal(
    State(state): State<SharedState>,
    Admin { caller, .. }: Admin,
    body: Bytes,
) -> ApiResult<Response> {
    let input: CreateIn = parse_body(&body)?;
    let kind = PrincipalKind::parse(&input.kind)
        .ok_or_else(|| Error::bad_parameter("type must be one of user, app, managed-identity, group."))?;
    let new = NewPrincipal {
        password: input.password.map(Zeroizing::new),
        tenant_admin: input.tenant_admin,
        ..NewPrincipal::new(kind, input.name)
    };
    let created = directory::create_principal(&state, &caller, new).await?;
    let mut out = principal_json(&state, &created.principal);
    if let Some(header) = created.identity_header {
        out["identity_header"] = header.as_str().into();
    }
    Ok(json_response(StatusCode::CREATED, out))
}

async fn list_principals(State(state): State<SharedState>, Admin { caller, .. }: Admin) -> ApiResult<Response> {
    let items: Vec<Value> =
        directory::principals(&state, &caller).await?.iter().map(|p| principal_json(&state, p)).collect();
    Ok(json_response(StatusCode::OK, json!({ "value": items })))
}

async fn show_principal(
    State(state): State<SharedState>,
    Admin { caller, .. }: Admin,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let (p, links) = directory::principal_with_links(&state, &caller, &id).await?;
    let mut v = principal_json(&state, &p);
    v[if p.kind == PrincipalKind::Group { "members" } else { "groups" }] = json!(links);
    Ok(json_response(StatusCode::OK, v))
}

#[derive(Deserialize)]
struct PatchIn {
    enabled: Option<bool>,
    password: Option<String>,
}

async fn patch_principal(
    State(state): State<SharedState>,
    Admin { caller, .. }: Admin,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let input: PatchIn = parse_body(&body)?;
    let change = PrincipalChange {
        enabled: input.enabled,
        password: input.password.map(Zeroizing::new),
        ..PrincipalChange::default()
    };
    let p = directory::update_principal(&state, &caller, &id, change).await?;
    Ok(json_response(StatusCode::OK, principal_json(&state, &p)))
}

async fn delete_principal(
    State(state): State<SharedState>,
    Admin { caller, .. }: Admin,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    directory::delete_principal(&state, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize, Default)]
struct CredentialIn {
    expires: Option<i64>,
    certificate: Option<String>,
    password: Option<String>,
}

async fn add_credential(
    State(state): State<SharedState>,
    Admin { caller, .. }: Admin,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let input: CredentialIn = if body.is_empty() { CredentialIn::default() } else { parse_body(&body)? };
    let new = NewCredential {
        expires: input.expires,
        certificate: input.certificate,
        password: input.password.map(Zeroizing::new),
    };
    let issued = directory::add_credential(&state, &caller, &id, new).await?;
    Ok(json_response(StatusCode::CREATED, issued_json(&issued)))
}

/// A new credential as JSON, with what is shown once (client secret, identity header).
pub fn issued_json(issued: &IssuedCredential) -> Value {
    let mut v = credential_json(issued.credential());
    match issued {
        IssuedCredential::ClientSecret { client_id, secret, .. } => {
            v["client_id"] = client_id.clone().into();
            v["client_secret"] = secret.as_str().into();
        }
        IssuedCredential::IdentityHeader { endpoint, header, .. } => {
            v["identity_endpoint"] = endpoint.as_str().into();
            v["identity_header"] = header.as_str().into();
        }
        IssuedCredential::Certificate(_) | IssuedCredential::Password(_) => {}
    }
    v
}

async fn list_credentials(
    State(state): State<SharedState>,
    Admin { caller, .. }: Admin,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let items: Vec<Value> = directory::credentials(&state, &caller, &id).await?.iter().map(credential_json).collect();
    Ok(json_response(StatusCode::OK, json!({ "value": items })))
}

async fn remove_credential(
    State(state): State<SharedState>,
    Admin { caller, .. }: Admin,
    Path((id, cid)): Path<(String, String)>,
) -> ApiResult<Response> {
    directory::remove_credential(&state, &caller, &id, &cid).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list_members(
    State(state): State<SharedState>,
    Admin { caller, .. }: Admin,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let items: Vec<Value> =
        directory::members(&state, &caller, &id).await?.iter().map(|p| principal_json(&state, p)).collect();
    Ok(json_response(StatusCode::OK, json!({ "value": items })))
}

fn membership_json(g: &Principal, m: &Principal) -> Value {
    json!({"group": g.object_id, "member": m.object_id, "object_id": g.object_id})
}

async fn add_member(
    State(state): State<SharedState>,
    Admin { caller, .. }: Admin,
    Path((id, member)): Path<(String, String)>,
) -> ApiResult<Response> {
    let (g, m, _) = directory::add_member(&state, &caller, &id, &member).await?;
    Ok(json_response(StatusCode::OK, membership_json(&g, &m)))
}

async fn remove_member(
    State(state): State<SharedState>,
    Admin { caller, .. }: Admin,
    Path((id, member)): Path<(String, String)>,
) -> ApiResult<Response> {
    let (g, m) = directory::remove_member(&state, &caller, &id, &member).await?;
    Ok(json_response(StatusCode::OK, membership_json(&g, &m)))
}

async fn rotate_signing_key(State(state): State<SharedState>, Admin { caller, .. }: Admin) -> ApiResult<Response> {
    let kid = directory::rotate_signing_key(&state, &caller).await?;
    Ok(json_response(StatusCode::OK, json!({"kid": kid, "tenant_id": caller.tenant_id})))
}
