//! What the lifetime-action jobs have told about an object, once per version: a key's
//! `Notify`, a certificate's `EmailContacts` and its "AutoRenew is due" notice. One marker per
//! object and kind of notice (`meta` key `{kind}-{notice}/{vault id}/{name key}`, the version
//! told about as its value), forgotten when the object is purged, so a new object of the same
//! name starts afresh.
use coffer_core::Result;
use coffer_core::object::ObjectKind;

use crate::state::AppState;

/// A notice a job gives once per version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// A key's `Notify` or a certificate's `EmailContacts` lifetime action.
    Notified,
    /// A certificate due for renewal through an issuer that is not `Self`.
    RenewalDue,
}

const NOTICES: [Notice; 2] = [Notice::Notified, Notice::RenewalDue];

fn marker(kind: ObjectKind, notice: Notice, vault_id: &str, name_key: &str) -> String {
    let notice = match notice {
        Notice::Notified => "notified",
        Notice::RenewalDue => "renewal-due",
    };
    format!("{}-{notice}/{vault_id}/{name_key}", kind.as_str())
}

/// The object in a vault a marker is about.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub kind: ObjectKind,
    pub vault_id: &'a str,
    pub name_key: &'a str,
}

/// Whether `notice` was given for this `version` already.
pub async fn already_told(state: &AppState, s: Subject<'_>, notice: Notice, version: &str) -> Result<bool> {
    let told = state.store.get_meta(&marker(s.kind, notice, s.vault_id, s.name_key)).await?;
    Ok(told.as_deref() == Some(version.as_bytes()))
}

/// Remembers that `notice` was given for `version`.
pub async fn remember_told(state: &AppState, s: Subject<'_>, notice: Notice, version: &str) -> Result<()> {
    state.store.put_meta(&marker(s.kind, notice, s.vault_id, s.name_key), version.as_bytes()).await
}

/// Forgets one object's notices (a new policy, or the object purged).
pub async fn forget(state: &AppState, s: Subject<'_>) -> Result<()> {
    for notice in NOTICES {
        state.store.delete_meta(&marker(s.kind, notice, s.vault_id, s.name_key)).await?;
    }
    Ok(())
}

/// Forgets every notice about a purged vault's objects.
pub async fn forget_vault(state: &AppState, vault_id: &str) -> Result<()> {
    for kind in [ObjectKind::Secret, ObjectKind::Key, ObjectKind::Certificate] {
        for notice in NOTICES {
            for (key, _) in state.store.list_meta(&marker(kind, notice, vault_id, "")).await? {
                state.store.delete_meta(&key).await?;
            }
        }
    }
    Ok(())
}
