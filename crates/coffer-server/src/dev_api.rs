//! Dev-mode only: moving the server's clock forward, so black-box tests can pass retention
//! periods and expiry dates without waiting. These routes exist only when the server runs with
//! `--dev` (they are not mounted otherwise) and only tenant administrators may call them.
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use coffer_core::Error;
use serde::Deserialize;
use serde_json::json;

use crate::http::{ApiResult, json as json_response, parse_body};
use crate::routes::{Methods, Routes, write};
use crate::state::SharedState;

pub fn routes() -> Routes<SharedState> {
    Routes::new().route("/dev/advance-time", Methods::post(write("DevTimeAdvance"), advance_time))
}

#[derive(Deserialize)]
struct AdvanceIn {
    seconds: i64,
}

/// Moves time forward by `seconds` (never back), then runs the purge, key-rotation and
/// certificate-renewal jobs once, so what became due has happened when the call returns.
async fn advance_time(
    State(state): State<SharedState>,
    _: crate::authentication::TenantAdmin<crate::authentication::MoveDevClock>,
    body: Bytes,
) -> ApiResult<Response> {
    let Some(clock) = &state.dev_clock else {
        return Err(Error::not_found("NotFound", "Time travel exists only in dev mode.").into());
    };
    let input: AdvanceIn = parse_body(&body)?;
    if !(0..=10 * 365 * 86_400).contains(&input.seconds) {
        return Err(Error::bad_parameter("seconds must be between 0 and ten years; time never runs back.").into());
    }
    let now = clock.advance(input.seconds);
    let r = crate::jobs::run_once(&state).await;
    Ok(json_response(
        StatusCode::OK,
        json!({"now": now, "now_iso": coffer_core::clock::iso8601(now), "offset_seconds": clock.offset(),
               "purged": r.purged, "rotated_keys": r.rotated_keys, "renewed_certificates": r.renewed_certificates,
               "expiry_events": r.expiry_events, "audit_records_purged": r.audit_records_purged}),
    ))
}
