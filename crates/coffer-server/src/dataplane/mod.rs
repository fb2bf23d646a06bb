//! The Key Vault data plane of one vault host. Order matters and mirrors Azure: authenticate
//! (401 + challenge before anything else, since the SDKs' first request has no body), then
//! api-version, then the vault, then the route, then authorization, then the body.
mod certificates;
pub(crate) mod keys;
mod render;
mod secrets;

use axum::body::Body;
use axum::extract::State;
use axum::http::{Method, Request};
use axum::response::{IntoResponse, Response};
use coffer_core::Error;
use coffer_core::object::ObjectKind;

use crate::api_version;
use crate::audit::operations::DataOperation;
use crate::authentication::{bearer_token, challenge, resolve_caller};
use crate::host::Surface;
use crate::http::{ApiError, query_pairs};
use crate::objects::VaultContext;
use crate::state::SharedState;

/// What a handler gets: the vault context, the request's method, path segments and query.
pub struct DataRequest {
    pub ctx: VaultContext,
    pub method: Method,
    pub query: Vec<(String, String)>,
    pub body: axum::body::Bytes,
}

pub async fn entry(State(state): State<SharedState>, req: Request<Body>) -> Response {
    let Some(Surface::Vault { name, authority }) = req.extensions().get::<Surface>().cloned() else {
        return ApiError(Error::internal("data plane reached without a vault host")).into_response();
    };
    match handle(&state, &name, authority, req).await {
        Ok(r) => r,
        Err(e) => e,
    }
}

async fn handle(
    state: &SharedState,
    vault_name: &str,
    authority: String,
    req: Request<Body>,
) -> Result<Response, Response> {
    let names = &state.names;
    let resource = names.vault_resource();
    let record = state.store.get_vault_by_name(vault_name).await.map_err(|e| ApiError(e).into_response())?;
    // The challenge names the vault's tenant (or the default one for unknown hosts). The
    // vault itself is opened (`VaultContext::open`) once the caller is known.
    let tenant = match record.as_ref().filter(|r| !r.vault.is_deleted()) {
        Some(r) => r.vault.tenant_id.clone(),
        None => {
            state.store.list_tenants().await.ok().and_then(|t| t.into_iter().next()).map(|t| t.id).unwrap_or_default()
        }
    };

    let unauthorized = |e: Error| challenge(&e, names, &tenant, &resource);
    let Some(token) = bearer_token(req.headers()) else {
        return Err(unauthorized(Error::unauthorized("Request is missing a Bearer or PoP token.")));
    };
    let now = state.clock.now();
    let claims = state.tokens.validate(token, &resource, names, now).map_err(unauthorized)?;
    let caller = resolve_caller(state.store.as_ref(), &claims, now).await.map_err(|e| {
        if e.kind == coffer_core::ErrorKind::Unauthorized { unauthorized(e) } else { ApiError(e).into_response() }
    })?;
    crate::audit::note_caller(&caller, claims.cid.clone());

    let query = query_pairs(req.uri().query()).map_err(|e| ApiError(e).into_response())?;
    let api_version = api_version::negotiate(crate::http::query_get(&query, "api-version"))
        .map_err(|e| ApiError(e).into_response())?;
    crate::audit::note(|d| d.api_version = Some(api_version.clone()));

    let address = req.extensions().get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
    let origin = crate::objects::Origin::Network(address);
    let mut ctx = VaultContext::open_record(state, vault_name, record, caller, origin, api_version).map_err(|e| {
        if e.kind == coffer_core::ErrorKind::Unauthorized { unauthorized(e) } else { ApiError(e).into_response() }
    })?;
    ctx.authority = authority;
    // A change is recorded as started before it can happen (fail closed).
    crate::audit::before_change(&state.audit).await.map_err(|e| ApiError(e).into_response())?;

    // The `X-HTTP-METHOD` override was applied in `server::build_app`, and the operation
    // parsed there once: this is the operation that was named and recorded.
    let method = req.method().clone();
    let op = match req.extensions().get::<DataOperation>() {
        Some(op) => op.clone(),
        None => DataOperation::parse(&method, req.uri().path()),
    };
    let body = crate::http::read_body(req.into_body(), coffer_core::limits::MAX_REQUEST_BODY_BYTES)
        .await
        .map_err(|e| ApiError(e).into_response())?;
    let dr = DataRequest { ctx, method, query, body };
    route(state, dr, &op).await.map_err(IntoResponse::into_response)
}

async fn route(state: &SharedState, req: DataRequest, op: &DataOperation) -> Result<Response, ApiError> {
    match op.kind() {
        Some(ObjectKind::Secret) => secrets::route(state, req, op).await,
        Some(ObjectKind::Key) => keys::route(state, req, op).await,
        Some(ObjectKind::Certificate) => certificates::route(state, req, op).await,
        None if *op == DataOperation::NotAllowed => Err(method_not_allowed(&req.method)),
        None => Err(not_found_path()),
    }
}

pub(crate) fn not_found_path() -> ApiError {
    ApiError(Error::not_found("NotFound", "The requested path is not a Key Vault operation."))
}

pub(crate) fn method_not_allowed(method: &Method) -> ApiError {
    ApiError(Error::new(
        coffer_core::ErrorKind::MethodNotAllowed,
        "MethodNotAllowed",
        format!("The HTTP method '{method}' is not supported on this path."),
    ))
}
