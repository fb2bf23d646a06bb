//! Authentication: a request's bearer token (validated by `crate::tokens`) turned into a
//! `Caller` — the principal must still exist and be enabled, its credential still live — or
//! the 401 challenge the Azure SDKs follow; and the control surface's bearer authentication
//! (the `ArmCaller` and `TenantAdmin` extractors, used by ARM, the directory, role assignments,
//! the audit API and dev tools).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
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

/// The caller of a control-surface API request (ARM, directory, role assignments, audit API,
/// dev tools; audience: the management resource), as a handler's first extractor: bearer →
/// validate → resolve the caller → note it in the audit draft → the api-version check → for
/// a change, the durable "started" record. Else the 401 challenge (or the error) is the
/// response, before any other extractor has looked at the request.
#[derive(Debug, Clone)]
pub struct ArmCaller(pub Caller);

impl FromRequestParts<SharedState> for ArmCaller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, Response> {
        // Two extractors of one request (`TenantAdmin` is one too) authenticate it once.
        if let Some(known) = parts.extensions.get::<ArmCaller>() {
            return Ok(known.clone());
        }
        let caller = management_caller(state, &parts.headers).await?;
        let has_version = query_pairs(parts.uri.query())
            .ok()
            .and_then(|q| query_get(&q, "api-version").map(|v| !v.trim().is_empty()))
            .unwrap_or(false);
        if !has_version {
            return Err(ApiError(Error::new(
                ErrorKind::BadRequest,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            ))
            .into_response());
        }
        crate::audit::before_change(&state.audit).await.map_err(|e| ApiError(e).into_response())?;
        parts.extensions.insert(ArmCaller(caller.clone()));
        Ok(ArmCaller(caller))
    }
}

/// The caller of a Microsoft Graph request (`/v1.0/...`): as `ArmCaller` — the same token
/// audience, the caller noted, the "started" record of a change — but Graph versions its
/// API in the path, so there is no api-version to check.
#[derive(Debug, Clone)]
pub struct GraphCaller(pub Caller);

impl FromRequestParts<SharedState> for GraphCaller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, Response> {
        let caller = management_caller(state, &parts.headers).await?;
        crate::audit::before_change(&state.audit).await.map_err(|e| ApiError(e).into_response())?;
        Ok(GraphCaller(caller))
    }
}

/// What a tenant administrator's right is needed for, as the 403 says it.
pub trait AdminPurpose {
    const WHAT: &'static str;
}

/// `/directory/...`.
#[derive(Debug)]
pub struct ManageDirectory;
impl AdminPurpose for ManageDirectory {
    const WHAT: &'static str = "manage the directory";
}

/// `/audit/...`.
#[derive(Debug)]
pub struct ReadAuditLog;
impl AdminPurpose for ReadAuditLog {
    const WHAT: &'static str = "read the audit log";
}

/// `/dev/advance-time`.
#[derive(Debug)]
pub struct MoveDevClock;
impl AdminPurpose for MoveDevClock {
    const WHAT: &'static str = "move the dev clock";
}

/// `/operator/seal`.
#[derive(Debug)]
pub struct SealServer;
impl AdminPurpose for SealServer {
    const WHAT: &'static str = "seal the server";
}

/// A control-surface caller who is a tenant administrator (`ArmCaller`, then 403
/// `Forbidden` naming `P::WHAT` for anyone else).
#[derive(Debug)]
pub struct TenantAdmin<P> {
    pub caller: Caller,
    purpose: std::marker::PhantomData<P>,
}

impl<P: AdminPurpose + Send> FromRequestParts<SharedState> for TenantAdmin<P> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, Response> {
        let ArmCaller(caller) = ArmCaller::from_request_parts(parts, state).await?;
        coffer_core::permissions::require_tenant_admin(&caller, P::WHAT).map_err(|e| ApiError(e).into_response())?;
        Ok(TenantAdmin { caller, purpose: std::marker::PhantomData })
    }
}
