//! The draft record of the request being served. The server opens it around every request
//! (a tokio task-local, so the layers that learn something — authentication, the vault
//! lookup, the permission evaluator, the object machinery — can note it without every
//! signature carrying it) and writes it once the response is ready, before it is sent.
use std::future::Future;
use std::sync::{Arc, Mutex};

use coffer_core::Error;
use coffer_core::principal::Caller;

use serde_json::{Map, Value};

use crate::record::{Draft, Outcome, Who, Witness};
use crate::writer::AuditLog;
use crate::writer::now_ms;

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
/// Not for an operation whose change carries its own record (`Witness::Ready`).
pub async fn before_change(audit: &AuditLog) -> coffer_core::Result<()> {
    let Some(d) = current() else { return Ok(()) };
    if !d.audited || !d.changes_state || !audit.enabled() || d.witness == Witness::Ready {
        return Ok(());
    }
    audit.write(d.to_record(Outcome::Started, None, None)).await.map(|_| ()).map_err(|e| unavailable(&e.0))
}

/// For a request whose one change carries its own record (`Witness::Ready`): the request's
/// success record for a response of `status`, to be written with the change in one commit
/// (`AuditLog::write_witnessing`). `None` otherwise — and then, for a request that already
/// took its record for a change (a second change it should not make), the "started" record
/// its dispatch left out is written now, so no change goes unrecorded before it happens.
pub async fn witness_record(audit: &AuditLog, status: u16) -> coffer_core::Result<Option<Map<String, Value>>> {
    enum Found {
        Record(Map<String, Value>),
        AlreadyTaken,
        NotWitnessed,
    }
    if !audit.enabled() {
        return Ok(None);
    }
    let found = DRAFT.try_with(|cell| {
        let Ok(mut d) = cell.lock() else { return Found::NotWitnessed };
        match d.witness {
            Witness::Ready if d.audited => {
                d.witness = Witness::Taken;
                let took = u64::try_from(now_ms(audit.clock()) - d.time_ms).unwrap_or(0);
                Found::Record(d.to_record(Outcome::of_status(status), Some(status), Some(took)))
            }
            Witness::Taken | Witness::Committed { .. } => Found::AlreadyTaken,
            Witness::Ready | Witness::None => Found::NotWitnessed,
        }
    });
    match found {
        Ok(Found::Record(record)) => Ok(Some(record)),
        Ok(Found::AlreadyTaken) => {
            let d = current().ok_or_else(|| unavailable("the request's audit draft was lost"))?;
            audit.write(d.to_record(Outcome::Started, None, None)).await.map_err(|e| unavailable(&e.0))?;
            Ok(None)
        }
        Ok(Found::NotWitnessed) | Err(_) => Ok(None),
    }
}

/// The request's change was committed with its record at `seq`.
pub fn note_witnessed(seq: i64, status: u16) {
    note(|d| d.witness = Witness::Committed { seq, status });
}
