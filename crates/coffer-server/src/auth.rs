//! Authentication: a request's bearer token (validated by `crate::tokens`) turned into a
//! `Caller` — the principal must still exist and be enabled, its credential still live — or
//! the 401 challenge the Azure SDKs follow; and the control surface's bearer authentication
//! (`authenticate_management`, used by ARM, the directory, role assignments, the audit API and
//! dev tools).

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use coffer_core::principal::{Caller, PrincipalKind};
use coffer_core::{Error, ErrorKind, Result};
use coffer_crypto::jwt::AccessClaims;
use coffer_store::Store;

use crate::config::PublicNames;
use crate::http::{ApiError, error_body, json_headers, query_get, query_pairs};
use crate::state::SharedState;

/// The bearer token of a request, if it has one.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

/// 401 with the challenge the Azure SDKs follow:
/// `Bearer authorization="https://localhost:8443/{tenant}", resource="https://vault.localhost:8443"`.
pub fn challenge(err: &Error, names: &PublicNames, tenant_id: &str, resource: &str) -> Response {
    crate::audit::note(|d| d.error = Some(err.message.clone()));
    let header = format!("Bearer authorization=\"{}/{tenant_id}\", resource=\"{resource}\"", names.authority());
    let mut resp = (StatusCode::UNAUTHORIZED, json_headers(), axum::Json(error_body(err))).into_response();
    if let Ok(v) = HeaderValue::from_str(&header) {
        resp.headers_mut().insert(axum::http::header::WWW_AUTHENTICATE, v);
    }
    resp
}

/// Turns validated claims into a caller. The principal must still exist and be enabled, and the
/// credential it signed in with must still exist: a deleted or disabled principal, or a
/// removed credential, loses access at once (every request checks), not when its token expires.
pub async fn resolve_caller(store: &dyn Store, claims: &AccessClaims, now: i64) -> Result<Caller> {
    let revoked =
        || Error::unauthorized("AKV10000: The principal or credential of this token no longer exists or is disabled.");
    let principal = store
        .get_principal(&claims.oid)
        .await?
        .filter(|p| p.enabled && p.tenant_id == claims.tid)
        .ok_or_else(revoked)?;
    if let Some(cid) = &claims.cid {
        store
            .get_credential(cid)
            .await?
            .filter(|c| c.principal_id == principal.object_id && c.expires.is_none_or(|e| now < e))
            .ok_or_else(revoked)?;
    }
    let groups = store.groups_of(&principal.object_id).await?;
    let signed_in_through = if principal.kind == PrincipalKind::User { claims.appid.clone() } else { None };
    Ok(Caller {
        signed_in_through,
        object_id: principal.object_id,
        tenant_id: principal.tenant_id,
        client_id: principal.client_id,
        name: principal.name,
        kind: principal.kind,
        groups,
        tenant_admin: principal.tenant_admin,
    })
}

// ---- The control surface's bearer authentication ----

/// The caller of a request with a management (ARM-audience) bearer token, or the 401
/// challenge; the caller is noted in the request's audit record.
pub async fn management_caller(state: &SharedState, headers: &axum::http::HeaderMap) -> Result<Caller, Response> {
    let names = &state.names;
    let resource = names.management_resource();
    let tenant =
        state.store.list_tenants().await.ok().and_then(|t| t.into_iter().next()).map(|t| t.id).unwrap_or_default();
    let Some(token) = bearer_token(headers) else {
        return Err(challenge(
            &Error::unauthorized("Authentication failed. The 'Authorization' header is missing."),
            names,
            &tenant,
            &resource,
        ));
    };
    let claims = match state.tokens.validate(token, &resource, names, state.clock.now()) {
        Ok(c) => c,
        Err(e) => return Err(challenge(&e, names, &tenant, &resource)),
    };
    let caller = match resolve_caller(state.store.as_ref(), &claims, state.clock.now()).await {
        Ok(c) => c,
        Err(e) if e.kind == ErrorKind::Unauthorized => return Err(challenge(&e, names, &claims.tid, &resource)),
        Err(e) => return Err(ApiError(e).into_response()),
    };
    crate::audit::note_caller(&caller, claims.cid.clone());
    Ok(caller)
}

/// Bearer authentication for the control surface's APIs (ARM, directory, role assignments,
/// audit API, dev tools; audience: the management resource), then the api-version check and,
/// for a change, the durable "started" record. The caller lands in the request extensions.
pub async fn authenticate_management(State(state): State<SharedState>, mut req: Request, next: Next) -> Response {
    let caller = match management_caller(&state, req.headers()).await {
        Ok(c) => c,
        Err(r) => return r,
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
    if let Err(e) = crate::audit::before_change(&state.audit).await {
        return ApiError(e).into_response();
    }
    req.extensions_mut().insert(caller);
    next.run(req).await
}
