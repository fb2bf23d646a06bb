//! The draft record of the request being served. The server opens it around every request
//! (a tokio task-local, so the layers that learn something — authentication, the vault
//! lookup, the permission evaluator, the object machinery — can note it without every
//! signature carrying it) and writes it once the response is ready, before it is sent.
use std::future::Future;
use std::sync::{Arc, Mutex};

use coffer_core::Error;
use coffer_core::principal::Caller;

use crate::record::{Draft, Outcome, Who};
use crate::writer::AuditLog;

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

/// Runs `inner` with `draft` as the current request's draft; its output and the draft as
/// the request left it (`None` if a panic poisoned it).
pub async fn within<T>(draft: Draft, inner: impl Future<Output = T>) -> (T, Option<Draft>) {
    let cell = Arc::new(Mutex::new(draft));
    let out = DRAFT.scope(cell.clone(), inner).await;
    let draft = cell.lock().ok().map(|d| d.clone());
    (out, draft)
}

/// The 503 a request gets when its record cannot be written.
pub fn unavailable(reason: &str) -> Error {
    Error::unavailable(
        "AuditLogUnavailable",
        format!(
            "The request was not carried out because the audit log could not record it durably: {reason}. \
             Retry later; operators: see /healthz."
        ),
    )
}

/// Before an operation that changes state: a durable "started" record, so that if the log
/// cannot write, the change does not happen (the 503 comes before, not after, the change).
pub async fn before_change(audit: &AuditLog) -> coffer_core::Result<()> {
    let Some(d) = current() else { return Ok(()) };
    if !d.audited || !d.changes_state || !audit.enabled() {
        return Ok(());
    }
    audit.write(d.to_record(Outcome::Started, None, None)).await.map(|_| ()).map_err(|e| unavailable(&e.0))
}
