//! Background jobs, run together by `run_once`: the purge of deleted objects and vaults whose
//! scheduled purge date has passed, key rotation policies, certificate lifetime actions,
//! expiry events and audit retention. Purge steps claim their work atomically in the store, so
//! several nodes may run them at once; time comes from the injected clock, so tests move time
//! instead of waiting.
use std::time::Duration;

use coffer_core::Result;
use coffer_core::object::ObjectKind;
use coffer_store::ObjectRef;

use crate::audit::record::RecordedObject;
use crate::system::{purge_vault, record};

use crate::state::{AppState, SharedState};

/// How often the job runs in real time.
pub const PURGE_INTERVAL: Duration = Duration::from_secs(10);
const BATCH: usize = 500;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PurgeReport {
    pub objects: usize,
    pub vaults: usize,
}

/// Purges what is due now.
pub async fn purge_due(state: &AppState) -> Result<PurgeReport> {
    let now = state.clock.now();
    let mut report = PurgeReport::default();
    loop {
        let due = state.store.due_objects(now, BATCH).await?;
        let n = due.len();
        for (vault_id, vault_name, kind, name_key) in due {
            let at = ObjectRef { vault_id: &vault_id, kind, name_key: &name_key };
            // Conditional on the date again: a recover + delete in between resets it.
            if state.store.purge_object(&at, Some(now)).await? {
                report.objects += 1;
                let subject = crate::lifetime_markers::Subject { kind, vault_id: &vault_id, name_key: &name_key };
                crate::lifetime_markers::forget(state, subject).await?;
                let object = RecordedObject {
                    collection: kind.collection().into(),
                    name: name_key.clone(),
                    version: None,
                    id: format!("{}{}/{name_key}", state.names.vault_uri(&vault_name), kind.deleted_collection()),
                };
                record(state, purge_operation(kind), Some(&vault_name), Some(object), "retention period ended").await?;
            }
        }
        if n < BATCH {
            break;
        }
    }
    for vault_id in state.store.due_vaults(now, BATCH).await? {
        if purge_vault(state, &vault_id, Some(now)).await? {
            report.vaults += 1;
            record(state, "VaultPurge", None, None, &format!("vault {vault_id}: retention period ended")).await?;
        }
    }
    Ok(report)
}

fn purge_operation(k: ObjectKind) -> &'static str {
    match k {
        ObjectKind::Secret => "SecretPurge",
        ObjectKind::Key => "KeyPurge",
        ObjectKind::Certificate => "CertificatePurge",
    }
}

/// What one run of every job did.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct JobsReport {
    pub purged: PurgeReport,
    pub rotated_keys: usize,
    pub renewed_certificates: usize,
    pub expiry_events: usize,
    pub audit_records_purged: u64,
}

/// Runs every job once: purge, key rotation, certificate lifetime actions, expiry events,
/// audit retention. Each failure is logged and the others still run. One run at a time: a
/// second waits for the first, then finds nothing left due.
pub async fn run_once(state: &AppState) -> JobsReport {
    let _one_at_a_time = state.jobs_running.lock().await;
    let mut r = JobsReport::default();
    match purge_due(state).await {
        Ok(p) => r.purged = p,
        Err(e) => tracing::error!(error = %e, "purge job failed; will retry"),
    }
    match crate::keys::run_rotation_policies(state).await {
        Ok(n) => r.rotated_keys = n,
        Err(e) => tracing::error!(error = %e, "key rotation job failed; will retry"),
    }
    match crate::certificates::run_certificate_lifetime_actions(state).await {
        Ok(n) => r.renewed_certificates = n,
        Err(e) => tracing::error!(error = %e, "certificate renewal job failed; will retry"),
    }
    match crate::events::scan_expiry(state).await {
        Ok(n) => r.expiry_events = n,
        Err(e) => tracing::error!(error = %e, "expiry events job failed; will retry"),
    }
    match state.audit.apply_retention().await {
        Ok(n) => r.audit_records_purged = n,
        Err(e) => tracing::error!(error = %e, "audit retention job failed; will retry"),
    }
    r
}

/// Runs every job (`run_once`) forever, every `PURGE_INTERVAL`.
pub fn spawn(state: SharedState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(PURGE_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            run_once(&state).await;
        }
    })
}
