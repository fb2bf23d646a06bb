//! The identity provider's endpoints, shaped like Entra ID so `azure-identity` and MSAL work
//! with `authority=https://localhost:8443` and `disable_instance_discovery=True`:
//! OIDC discovery, the token endpoint (client secret, client assertion, password and refresh
//! token grants), JWKS, token revocation, and the App Service managed-identity endpoint.
mod grants;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use coffer_core::Result;
use serde_json::json;

use crate::http::{ApiError, json};
use crate::routes::{Methods, Routes, read, unaudited_get, write};
use crate::state::SharedState;

pub use crate::sign_in::{SeenAssertions, Throttle};

pub fn routes() -> Routes<SharedState> {
    Routes::new()
        .route("/{tenant}/v2.0/.well-known/openid-configuration", unaudited_get(discovery))
        .route("/{tenant}/oauth2/v2.0/token", Methods::post(read("Authentication"), grants::token))
        .route("/{tenant}/oauth2/v2.0/revoke", Methods::post(write("TokenRevoke"), grants::revoke))
        .route("/{tenant}/discovery/v2.0/keys", unaudited_get(jwks))
        .route("/{tenant}/msi/{object_id}/token", Methods::get(read("Authentication"), grants::managed_identity))
}

/// An OAuth2 error in Entra's shape.
pub(crate) fn oauth_error(status: StatusCode, error: &str, code: u32, description: &str) -> Response {
    crate::audit::note(|d| d.error = Some(format!("{error}: {description}")));
    json(
        status,
        json!({
            "error": error,
            "error_description": format!("AADSTS{code}: {description}"),
            "error_codes": [code],
            "trace_id": coffer_crypto::random::guid(),
            "correlation_id": coffer_crypto::random::guid(),
        }),
    )
}

pub(crate) async fn known_tenant(state: &SharedState, tenant: &str) -> Result<bool> {
    Ok(state.store.get_tenant(tenant).await?.is_some())
}

pub(crate) fn tenant_not_found(tenant: &str) -> Response {
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
        Err(e) => return ApiError(e).into_response(),
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
            "revocation_endpoint": format!("{base}/{tenant}/oauth2/v2.0/revoke"),
            "jwks_uri": format!("{base}/{tenant}/discovery/v2.0/keys"),
            "response_types_supported": ["token"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["ES256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": ["PS256", "RS256", "ES256", "ES384"],
            "grant_types_supported": ["client_credentials", "password", "refresh_token"],
            "scopes_supported": [".default"],
            "tenant_region_scope": null,
        }),
    )
}

async fn jwks(State(state): State<SharedState>, Path(tenant): Path<String>) -> Response {
    match known_tenant(&state, &tenant).await {
        Ok(true) => json(StatusCode::OK, state.tokens.jwks(&tenant)),
        Ok(false) => tenant_not_found(&tenant),
        Err(e) => ApiError(e).into_response(),
    }
}
