//! The operator endpoint of an open server: `POST /operator/seal`, for tenant administrators.
//! (`/operator/status`, `/operator/init` and `/operator/unseal` must answer while the server
//! is sealed, so the node serves them: `crate::node`.)
use axum::extract::State;
use axum::response::Response;
use coffer_core::Error;

use crate::authentication::{SealServer, TenantAdmin};
use crate::http::{ApiResult, json as json_response};
use crate::routes::{Methods, Routes, write};
use crate::state::SharedState;

pub fn routes() -> Routes<SharedState> {
    Routes::new().route("/operator/seal", Methods::post(write("OperatorSeal"), seal))
}

/// Seals the server: the response is the status after it (sealed); every later request is
/// answered 503 until an operator unseals it again.
async fn seal(State(state): State<SharedState>, _: TenantAdmin<SealServer>) -> ApiResult<Response> {
    let Some(sealer) = state.sealer.clone() else {
        return Err(Error::bad_parameter("A dev server has no seal: its root of trust is a key file.").into());
    };
    let status = sealer.seal().await;
    Ok(json_response(axum::http::StatusCode::OK, serde_json::to_value(status).unwrap_or_default()))
}
