//! The operator endpoints a node answers itself, open or sealed — `/operator/status`,
//! `/operator/init`, `/operator/unseal`, `/operator/rekey[/verify]`,
//! `/operator/rotate-root[/verify]` — and what it answers while
//! it has no application (503 `VaultSealed` in Azure's shape, a sealed page for the portal).
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use coffer_core::Error;
use serde::{Deserialize, Serialize};
use tower::ServiceExt;
use zeroize::Zeroizing;

use super::{Node, Phase, sealed_error, uninitialized_error};
use crate::http::ApiError;

/// `POST /operator/rekey` (current shares and the new split) and `/operator/rekey/verify`
/// (new shares).
#[derive(Default, Deserialize)]
pub(super) struct RekeyRequest {
    pub(super) key_shares: Option<u32>,
    pub(super) key_threshold: Option<u32>,
    #[serde(default)]
    pub(super) keys: Vec<Zeroizing<String>>,
}

/// The new shares (once), or that the new split is in effect.
#[derive(Serialize)]
pub(super) struct RekeyResponse {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) shares: Vec<Zeroizing<String>>,
    pub(super) threshold: u8,
    pub(super) verified: bool,
}

/// `POST /operator/init`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct InitRequest {
    pub(super) key_shares: Option<u32>,
    pub(super) key_threshold: Option<u32>,
}

/// What `coffer operator init` prints, once.
#[derive(Serialize)]
pub(super) struct InitResponse {
    /// Shamir: the unseal key shares.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) shares: Option<Vec<Zeroizing<String>>>,
    /// PKCS#11: the recovery key shares (the token unseals; these authorize a rekey).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) recovery_shares: Option<Vec<Zeroizing<String>>>,
    pub(super) threshold: u8,
    pub(super) tenant_id: String,
    pub(super) client_id: String,
    pub(super) client_secret: Zeroizing<String>,
    pub(super) object_id: String,
    pub(super) server: String,
}

/// `POST /operator/unseal`: one share, or `reset`.
#[derive(Default, Deserialize)]
pub(super) struct UnsealRequest {
    pub(super) key: Option<Zeroizing<String>>,
    #[serde(default)]
    pub(super) reset: bool,
}

const OPERATOR_BODY_LIMIT: usize = 64 * 1024;

async fn read_json<T: serde::de::DeserializeOwned + Default>(req: Request<Body>) -> Result<T, Error> {
    let bytes = axum::body::to_bytes(req.into_body(), OPERATOR_BODY_LIMIT)
        .await
        .map_err(|_| Error::bad_parameter("The request body is too large or was cut off."))?;
    if bytes.is_empty() {
        return Ok(T::default());
    }
    let bytes = Zeroizing::new(bytes.to_vec());
    serde_json::from_slice(&bytes).map_err(|_| Error::bad_parameter("The request body is not the JSON expected."))
}

/// An operator endpoint: the JSON body read, the node's answer as JSON, or its error in Azure's
/// shape.
async fn answer<T, R>(req: Request<Body>, f: impl AsyncFnOnce(T) -> Result<R, Error>) -> Response
where
    T: serde::de::DeserializeOwned + Default,
    R: Serialize,
{
    let done = async {
        let ask: T = read_json(req).await?;
        let made = f(ask).await?;
        Ok(crate::http::json(StatusCode::OK, serde_json::to_value(&made).unwrap_or_default()))
    };
    done.await.unwrap_or_else(|e: Error| ApiError(e).into_response())
}

/// The node's router: the operator endpoints, then the open application or the sealed answer.
pub fn router(node: Arc<Node>) -> Router {
    Router::new().fallback(move |req: Request<Body>| {
        let node = node.clone();
        async move {
            // The operator endpoints read their body under the same deadline as the rest.
            let req = crate::connections::with_body_deadline(req, node.config.limits.body_timeout);
            let method = req.method().clone();
            let on_control = matches!(
                crate::host::classify(&crate::host::authority_of(&req).unwrap_or_default(), &node.names),
                crate::host::Surface::Control { .. }
            );
            match (on_control, &method, req.uri().path()) {
                (true, &Method::GET, "/operator/status") => {
                    return crate::http::json(StatusCode::OK, serde_json::to_value(node.status()).unwrap_or_default());
                }
                (true, &Method::POST, "/operator/init") => {
                    return answer(req, async |ask: InitRequest| node.init(ask).await).await;
                }
                (true, &Method::POST, "/operator/unseal") => {
                    return answer(req, async |ask: UnsealRequest| node.unseal(ask).await).await;
                }
                (true, &Method::POST, "/operator/rekey") => {
                    return answer(req, async |ask: RekeyRequest| node.rekey(ask).await).await;
                }
                (true, &Method::POST, "/operator/rekey/verify") => {
                    return answer(req, async |ask: RekeyRequest| node.rekey_verify(ask).await).await;
                }
                (true, &Method::POST, "/operator/rotate-root") => {
                    return answer(req, async |ask: RekeyRequest| node.rotate_root(ask).await).await;
                }
                (true, &Method::POST, "/operator/rotate-root/verify") => {
                    return answer(req, async |ask: RekeyRequest| node.rotate_root_verify(ask).await).await;
                }
                (true, &Method::POST, "/operator/seal") if node.app().is_none() => {
                    return crate::http::json(StatusCode::OK, serde_json::to_value(node.status()).unwrap_or_default());
                }
                _ => {}
            }
            match node.app() {
                Some(app) => match app.oneshot(req).await {
                    Ok(r) => r,
                    Err(never) => match never {},
                },
                None => node.closed(&req),
            }
        }
    })
}

impl Node {
    /// What the node answers while it has no application.
    fn closed(&self, req: &Request<Body>) -> Response {
        let uninitialized = matches!(self.phase.read().as_deref(), Ok(Phase::Uninitialized));
        let path = req.uri().path();
        if path == "/healthz" {
            let status = if uninitialized { "uninitialized" } else { "sealed" };
            return crate::http::json(StatusCode::SERVICE_UNAVAILABLE, serde_json::json!({"status": status}));
        }
        if path == "/portal" || path.starts_with("/portal/") {
            let page = Html(
                "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Coffer is sealed</title></head>\
                 <body><main><h1>Coffer is sealed</h1><p>An operator must unseal this server \
                 (<code>coffer operator unseal</code>) before you can sign in.</p></main></body></html>",
            );
            return (StatusCode::SERVICE_UNAVAILABLE, page).into_response();
        }
        ApiError(if uninitialized { uninitialized_error() } else { sealed_error() }).into_response()
    }
}
