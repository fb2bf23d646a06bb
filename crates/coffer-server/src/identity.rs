//! The identity provider's endpoints, shaped like Entra ID so `azure-identity` and MSAL work
//! with `authority=https://localhost:8443` and `disable_instance_discovery=True`.
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use coffer_core::Result;
use coffer_core::principal::Principal;
use serde_json::json;

use crate::http::json;
use crate::state::SharedState;

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/{tenant}/v2.0/.well-known/openid-configuration", get(discovery))
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .route("/{tenant}/discovery/v2.0/keys", get(jwks))
}

/// An OAuth2 error in Entra's shape.
fn oauth_error(status: StatusCode, error: &str, code: u32, description: &str) -> Response {
    json(
        status,
        json!({
            "error": error,
            "error_description": format!("AADSTS{code}: {description}"),
            "error_codes": [code],
            "timestamp": "",
            "trace_id": coffer_crypto::random::guid(),
            "correlation_id": coffer_crypto::random::guid(),
        }),
    )
}

async fn known_tenant(state: &SharedState, tenant: &str) -> Result<bool> {
    Ok(state.store.get_tenant(tenant).await?.is_some())
}

fn tenant_not_found(tenant: &str) -> Response {
    oauth_error(
        StatusCode::BAD_REQUEST,
        "invalid_tenant",
        90002,
        &format!("Tenant '{}' not found.", coffer_core::names::printable(tenant)),
    )
}

async fn discovery(
    State(state): State<SharedState>,
    Path(tenant): Path<String>,
    axum::Extension(surface): axum::Extension<crate::host::Surface>,
) -> Response {
    match known_tenant(&state, &tenant).await {
        Ok(true) => {}
        Ok(false) => return tenant_not_found(&tenant),
        Err(e) => return axum::response::IntoResponse::into_response(crate::http::ApiError(e)),
    }
    // Endpoints follow the host the client used; the issuer is fixed.
    let base = match surface {
        crate::host::Surface::Control { authority } | crate::host::Surface::Vault { authority, .. } => {
            format!("https://{authority}")
        }
    };
    json(
        StatusCode::OK,
        json!({
            "issuer": state.names.issuer(&tenant),
            "authorization_endpoint": format!("{base}/{tenant}/oauth2/v2.0/authorize"),
            "token_endpoint": format!("{base}/{tenant}/oauth2/v2.0/token"),
            "jwks_uri": format!("{base}/{tenant}/discovery/v2.0/keys"),
            "response_types_supported": ["token"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["ES256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "grant_types_supported": ["client_credentials"],
            "scopes_supported": [".default"],
            "tenant_region_scope": null,
        }),
    )
}

async fn jwks(State(state): State<SharedState>, Path(tenant): Path<String>) -> Response {
    match known_tenant(&state, &tenant).await {
        Ok(true) => json(StatusCode::OK, state.tokens.jwks(&tenant)),
        Ok(false) => tenant_not_found(&tenant),
        Err(e) => axum::response::IntoResponse::into_response(crate::http::ApiError(e)),
    }
}

/// The resource a scope asks for, if this server issues tokens for it.
fn resource_for_scope(state: &SharedState, scope: &str) -> Option<String> {
    scope.split_whitespace().find_map(|s| {
        let resource = s.strip_suffix("/.default")?.trim_end_matches('/');
        [state.names.vault_resource(), state.names.management_resource()]
            .into_iter()
            .find(|known| known.eq_ignore_ascii_case(resource))
    })
}

/// A hash to verify against when the client does not exist, so that the answer takes as
/// long as for a wrong secret and does not reveal which client ids exist.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| coffer_crypto::password::hash(&coffer_crypto::random::guid()).unwrap_or_default())
}

async fn token(State(state): State<SharedState>, Path(tenant): Path<String>, body: Bytes) -> Response {
    let form: Vec<(String, String)> = match serde_urlencoded::from_bytes(&body) {
        Ok(f) => f,
        Err(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                900144,
                "The request body must be form-encoded.",
            );
        }
    };
    let field = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    match known_tenant(&state, &tenant).await {
        Ok(true) => {}
        Ok(false) => return tenant_not_found(&tenant),
        Err(e) => return axum::response::IntoResponse::into_response(crate::http::ApiError(e)),
    }
    match field("grant_type") {
        Some("client_credentials") => {}
        Some(other) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                70003,
                &format!("The grant type '{}' is not supported.", coffer_core::names::printable(other)),
            );
        }
        None => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                900144,
                "The request body must contain 'grant_type'.",
            );
        }
    }
    let (Some(client_id), Some(secret)) = (field("client_id"), field("client_secret")) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            "The request body must contain 'client_id' and 'client_secret'.",
        );
    };
    let Some(resource) = field("scope").and_then(|s| resource_for_scope(&state, s)) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            70011,
            &format!(
                "The provided scope is not valid. Request '{}/.default' or '{}/.default'.",
                state.names.vault_resource(),
                state.names.management_resource()
            ),
        );
    };
    let principal = match authenticate_client(&state, &tenant, client_id, secret).await {
        Ok(Some(p)) => p,
        Ok(None) => {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7000215,
                "Invalid client secret provided, or the application does not exist or is disabled.",
            );
        }
        Err(e) => return axum::response::IntoResponse::into_response(crate::http::ApiError(e)),
    };
    match state.tokens.issue(&principal, &resource, &state.names, state.clock.now()) {
        Ok((token, expires_in)) => json(
            StatusCode::OK,
            json!({"token_type": "Bearer", "expires_in": expires_in, "ext_expires_in": expires_in, "access_token": token}),
        ),
        Err(e) => axum::response::IntoResponse::into_response(crate::http::ApiError(e)),
    }
}

/// Finds an enabled application whose unexpired secret matches. argon2 runs off the async
/// threads, and always at least once so timing does not tell whether the client exists.
async fn authenticate_client(
    state: &SharedState,
    tenant: &str,
    client_id: &str,
    secret: &str,
) -> Result<Option<Principal>> {
    let now = state.clock.now();
    let principal = state.store.find_principal_by_client_id(tenant, client_id).await?.filter(|p| p.enabled);
    let hashes: Vec<String> = match &principal {
        Some(p) => state
            .store
            .list_credentials(&p.object_id)
            .await?
            .into_iter()
            .filter(|c| c.kind == "secret" && c.expires.is_none_or(|e| now < e))
            .map(|c| c.secret_hash)
            .collect(),
        None => Vec::new(),
    };
    let secret = zeroize::Zeroizing::new(secret.to_string());
    let matched = tokio::task::spawn_blocking(move || {
        if hashes.is_empty() {
            let _ = coffer_crypto::password::verify(&secret, decoy_hash());
            return false;
        }
        hashes.iter().any(|h| coffer_crypto::password::verify(&secret, h))
    })
    .await
    .unwrap_or(false);
    Ok(if matched { principal } else { None })
}
