//! `/audit/...` on the control surface, for tenant administrators: query the records, verify
//! the chains, force a checkpoint, fetch the checkpoint key.
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use coffer_core::Error;
use coffer_store::AuditQuery;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::http::{ApiError, json as json_response};
use crate::routes::{Methods, Routes, read, write};
use crate::state::SharedState;

/// Reading the audit log takes a tenant administrator.
type Auditor = crate::authentication::TenantAdmin<crate::authentication::ReadAuditLog>;

pub fn routes() -> Routes<SharedState> {
    Routes::new()
        .route("/audit/records", Methods::get(read("AuditQuery"), records))
        .route("/audit/verify", Methods::get(read("AuditVerify"), verify))
        .route("/audit/checkpoint", Methods::post(write("AuditCheckpoint"), checkpoint))
        .route("/audit/checkpoint-key", Methods::get(read("AuditCheckpointKeyGet"), checkpoint_key))
}

const MAX_LIMIT: usize = 10_000;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RecordsQuery {
    vault: Option<String>,
    object: Option<String>,
    caller: Option<String>,
    operation: Option<String>,
    result: Option<String>,
    /// Unix seconds or RFC 3339 (the CLI sends seconds).
    since: Option<i64>,
    until: Option<i64>,
    after: Option<i64>,
    before: Option<i64>,
    limit: Option<usize>,
    /// `newest` (default) or `oldest` first.
    order: Option<String>,
}

async fn records(
    State(state): State<SharedState>,
    _: Auditor,
    q: std::result::Result<axum::extract::Query<RecordsQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let run = async {
        let axum::extract::Query(q) = q.map_err(|e| Error::bad_parameter(format!("Invalid audit query: {e}")))?;
        let limit = q.limit.unwrap_or(100);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(Error::bad_parameter(format!("'limit' must be from 1 to {MAX_LIMIT}.")));
        }
        let newest_first = match q.order.as_deref() {
            None | Some("newest") => true,
            Some("oldest") => false,
            Some(_) => return Err(Error::bad_parameter("'order' must be 'newest' or 'oldest'.")),
        };
        let result = q.result.map(|r| r.to_ascii_lowercase());
        if let Some(r) = &result
            && !["success", "denied", "failed", "started", "event"].contains(&r.as_str())
        {
            return Err(Error::bad_parameter("'result' must be success, denied, failed, started or event."));
        }
        let rows = state
            .store
            .query_audit(&AuditQuery {
                vault: q.vault.map(|v| v.to_ascii_lowercase()),
                object: q.object.map(|o| o.to_ascii_lowercase()),
                caller: q.caller,
                operation: q.operation,
                result,
                since_ms: q.since.map(|s| s.saturating_mul(1000)),
                until_ms: q.until.map(|s| s.saturating_mul(1000).saturating_add(999)),
                after_seq: q.after,
                before_seq: q.before,
                newest_first,
                limit,
            })
            .await?;
        let value: Vec<Value> = rows.iter().filter_map(|r| serde_json::from_str(&r.body).ok()).collect();
        Ok(json_response(StatusCode::OK, json!({ "value": value })))
    };
    run.await.unwrap_or_else(|e: Error| ApiError(e).into_response())
}

async fn verify(State(state): State<SharedState>, _: Auditor) -> Response {
    let run = async {
        let report = crate::audit::verify::verify_all(&state.audit, state.store.as_ref()).await?;
        Ok(json_response(StatusCode::OK, report))
    };
    run.await.unwrap_or_else(|e: Error| ApiError(e).into_response())
}

async fn checkpoint(State(state): State<SharedState>, _: Auditor) -> Response {
    let run = async {
        let cp = state.audit.checkpoint().await.map_err(|e| Error::unavailable("AuditLogUnavailable", e.0))?;
        Ok(json_response(
            StatusCode::OK,
            match cp {
                Some(c) => json!({"seq": c.seq, "hash": c.hash, "timeMs": c.time_ms, "signature": c.signature}),
                None => json!({"seq": 0}),
            },
        ))
    };
    run.await.unwrap_or_else(|e: Error| ApiError(e).into_response())
}

async fn checkpoint_key(State(state): State<SharedState>, _: Auditor) -> Response {
    json_response(StatusCode::OK, json!({"keys": [state.audit.verifying_key().jwk()]}))
}
