//! The draft record of the request being served. `build_app` opens it around every request
//! (a tokio task-local, so the layers that learn something — authentication, the vault
//! lookup, the permission evaluator, the object machinery — can note it without every
//! signature carrying it) and writes it once the response is ready, before it is sent.
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::response::{IntoResponse, Response};
use coffer_core::Error;
use coffer_core::principal::Caller;

use super::record::{Draft, Outcome, Who};
use crate::http::ApiError;
use crate::state::AppState;

tokio::task_local! {
    static DRAFT: Arc<Mutex<Draft>>;
}

/// Adds to the current request's draft (nothing outside a request).
pub fn note(f: impl FnOnce(&mut Draft)) {
    let _ = DRAFT.try_with(|d| {
        if let Ok(mut d) = d.lock() {
            f(&mut d);
        }
    });
}

/// The caller, once authenticated; `via` is the credential id the token came from.
pub fn note_caller(caller: &Caller, via: Option<String>) {
    note(|d| d.who = Some(Who::of(caller, via)));
}

fn current() -> Option<Draft> {
    DRAFT.try_with(|d| d.lock().ok().map(|d| d.clone())).ok().flatten()
}

fn unavailable(reason: &str) -> Error {
    Error::unavailable(
        "AuditLogUnavailable",
        format!(
            "The request was not carried out because the audit log could not record it durably: {reason}. \
             Retry later; operators: see /healthz."
        ),
    )
}

/// Runs `inner` with `draft` as the current request's record, then writes the record. If it
/// cannot be written, the caller gets a 503 instead of the response (a secret is never handed
/// out unrecorded).
pub async fn around(state: &AppState, draft: Draft, inner: impl Future<Output = Response>) -> Response {
    let cell = Arc::new(Mutex::new(draft));
    let started = Instant::now();
    let resp = DRAFT.scope(cell.clone(), inner).await;
    let Some(mut draft) = cell.lock().ok().map(|d| d.clone()) else {
        return ApiError(unavailable("the request's audit draft was lost")).into_response();
    };
    // An error response says what its record should say (see `http::RecordedError`).
    if let Some(crate::http::RecordedError(text)) = resp.extensions().get::<crate::http::RecordedError>() {
        draft.error = Some(text.clone());
    }
    let observe = |resp: Response| {
        if let Some(op) = draft.operation {
            state.metrics.observe_request(op, resp.status().as_u16(), started.elapsed());
        }
        resp
    };
    if !draft.audited || !state.audit.enabled() {
        return observe(resp);
    }
    let status = resp.status().as_u16();
    let millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let mut outcome = Outcome::of_status(status);
    // A refused sign-in is answered 400 (`invalid_client`, `invalid_grant`), as Entra does.
    if draft.operation == Some("Authentication") && status == 400 && draft.claimed.is_some() {
        outcome = Outcome::Denied;
    }
    match state.audit.write(draft.to_record(outcome, Some(status), Some(millis))).await {
        Ok(_) => observe(resp),
        Err(e) => {
            let mut r = ApiError(unavailable(&e.0)).into_response();
            r.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("5"));
            observe(r)
        }
    }
}

/// Before an operation that changes state: a durable "started" record, so that if the log
/// cannot write, the change does not happen (the 503 comes before, not after, the change).
pub async fn before_change(state: &AppState) -> coffer_core::Result<()> {
    let Some(d) = current() else { return Ok(()) };
    if !d.audited || !d.changes_state || !state.audit.enabled() {
        return Ok(());
    }
    state.audit.write(d.to_record(Outcome::Started, None, None)).await.map(|_| ()).map_err(|e| unavailable(&e.0))
}

/// The draft a request starts with: what its method, path, host and connection say.
pub fn draft_for(
    req: &axum::extract::Request,
    surface: &crate::host::Surface,
    clock: &dyn coffer_core::Clock,
) -> Draft {
    use super::operations;
    use super::record::ObjectRef;
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let mut d = Draft {
        request_id: coffer_crypto::random::guid(),
        correlation_id: header("x-ms-client-request-id"),
        time_ms: super::writer::now_ms(clock),
        caller_ip: req
            .extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip().to_string()),
        method: method.to_string(),
        user_agent: header("user-agent"),
        ..Default::default()
    };
    match surface {
        crate::host::Surface::Vault { name, authority } => {
            let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
            let op = operations::data_plane(&method, &segments);
            d.operation = Some(op.name);
            d.changes_state = op.changes_state;
            d.audited = true;
            d.vault = Some(name.clone());
            d.object = operations::data_object(&segments).map(|(collection, object, version)| {
                let mut id = format!("https://{authority}/{collection}/{object}");
                if let Some(v) = version {
                    id = format!("{id}/{v}");
                }
                ObjectRef {
                    collection: collection.to_ascii_lowercase(),
                    name: object.to_string(),
                    version: version.map(str::to_string),
                    id,
                }
            });
        }
        crate::host::Surface::Control { .. } => {
            if let Some(op) = operations::control(&method, &path) {
                d.operation = Some(op.name);
                d.changes_state = op.changes_state;
                d.audited = true;
            }
            let parts: Vec<&str> = path.split('/').collect();
            d.vault = parts
                .windows(2)
                .find(|w| w[0].eq_ignore_ascii_case("vaults") || w[0].eq_ignore_ascii_case("deletedVaults"))
                .map(|w| w[1].to_string());
        }
    }
    d.path = path;
    d
}
