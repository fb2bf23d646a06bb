//! What Coffer does on its own account — the background jobs, and a vault purge asked for over
//! ARM: the system principal and a vault context acting as it, the audit record of what it
//! did, and the purge of a vault.
//! A service: the jobs and the surfaces call it; it calls nothing above it.
use coffer_core::Result;

use crate::audit::record::{Outcome, RecordedObject};
use crate::state::AppState;

/// The principal background jobs act as (for audit and for the code paths that need a caller).
pub fn system_caller(tenant_id: &str) -> coffer_core::principal::Caller {
    coffer_core::principal::Caller {
        signed_in_through: None,
        object_id: "00000000-0000-0000-0000-000000000000".into(),
        tenant_id: tenant_id.to_string(),
        client_id: None,
        name: "coffer-system".into(),
        kind: coffer_core::principal::PrincipalKind::App,
        groups: vec![],
        tenant_admin: false,
    }
}

/// A vault context for background work on `vault_name`, acting as the system principal.
pub async fn system_context(state: &AppState, vault_name: &str) -> Result<Option<crate::objects::VaultContext>> {
    let Some(rec) = state.store.get_vault_by_name(vault_name).await?.filter(|r| !r.vault.is_deleted()) else {
        return Ok(None);
    };
    let caller = system_caller(&rec.vault.tenant_id);
    let origin = crate::objects::Origin::Internal;
    crate::objects::VaultContext::open(state, vault_name, caller, origin, crate::api_version::NEWEST.into())
        .await
        .map(Some)
}

/// Records what a job did, as the system principal. A job whose record cannot be written
/// stops (and retries on its next run) rather than carry on unrecorded.
pub async fn record(
    state: &AppState,
    operation: &'static str,
    vault: Option<&str>,
    object: Option<RecordedObject>,
    why: &str,
) -> Result<()> {
    tracing::info!(target: "coffer::jobs", operation, vault = vault.unwrap_or(""), "{why}");
    state
        .audit
        .system(operation, Outcome::Success, vault, object, Some(why.to_string()))
        .await
        .map(|_| ())
        .map_err(|e| coffer_core::Error::unavailable("AuditLogUnavailable", e.0))
}

/// Purges one deleted vault: claim it (no recovery from then on), destroy its key-encryption
/// key (crypto-shredding: no copy of the store can be read again), then erase its rows.
/// False if another node or request got there first, or (with `due_by`) it is not due.
pub async fn purge_vault(state: &AppState, vault_id: &str, due_by: Option<i64>) -> Result<bool> {
    if !state.store.claim_vault_purge(vault_id, due_by).await? {
        return Ok(false);
    }
    {
        let _root_write = state.keyring.root_write().await;
        state.keyring.shred_vault(vault_id)?;
    }
    let erased = state.store.erase_vault(vault_id).await?;
    crate::lifetime_markers::forget_vault(state, vault_id).await?;
    Ok(erased)
}
