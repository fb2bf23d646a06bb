//! Events: near-expiry and expired objects, key rotation, certificate renewal, `Notify` and
//! `EmailContacts` lifetime actions. Each is an audit record (category `Event`) and, when a
//! webhook is configured, a POST in Azure Event Grid's schema, signed with HMAC-SHA256 of the
//! body (`X-Coffer-Signature: sha256=HEX`) and retried with backoff.
use coffer_core::object::ObjectKind;
use serde_json::{Value, json};

use crate::state::AppState;
use coffer_audit::record::{Outcome, RecordedObject};

/// Azure Event Grid's names for Key Vault events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    NewVersionCreated,
    NearExpiry,
    Expired,
}

impl EventType {
    fn suffix(self) -> &'static str {
        match self {
            Self::NewVersionCreated => "NewVersionCreated",
            Self::NearExpiry => "NearExpiry",
            Self::Expired => "Expired",
        }
    }
}

fn kind_word(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::Secret => "Secret",
        ObjectKind::Key => "Key",
        ObjectKind::Certificate => "Certificate",
    }
}

/// `SecretNearExpiry`, `KeyNewVersionCreated`, … as `&'static str` (operation names are static).
fn operation_name(kind: ObjectKind, t: EventType) -> &'static str {
    match (kind, t) {
        (ObjectKind::Secret, EventType::NewVersionCreated) => "SecretNewVersionCreated",
        (ObjectKind::Secret, EventType::NearExpiry) => "SecretNearExpiry",
        (ObjectKind::Secret, EventType::Expired) => "SecretExpired",
        (ObjectKind::Key, EventType::NewVersionCreated) => "KeyNewVersionCreated",
        (ObjectKind::Key, EventType::NearExpiry) => "KeyNearExpiry",
        (ObjectKind::Key, EventType::Expired) => "KeyExpired",
        (ObjectKind::Certificate, EventType::NewVersionCreated) => "CertificateNewVersionCreated",
        (ObjectKind::Certificate, EventType::NearExpiry) => "CertificateNearExpiry",
        (ObjectKind::Certificate, EventType::Expired) => "CertificateExpired",
    }
}

/// What an event is about.
#[derive(Debug, Clone)]
pub struct EventSubject<'a> {
    pub vault: &'a str,
    pub vault_uri: String,
    pub kind: ObjectKind,
    pub name: &'a str,
    pub version: &'a str,
    pub not_before: Option<i64>,
    pub expires: Option<i64>,
    /// Why (e.g. "rotation policy", "AutoRenew", "EmailContacts: a@b").
    pub reason: String,
}

/// Records an event and sends it to the webhook. The record is the durable part: if it cannot
/// be written the error comes back (the job that raised it tries again on its next run).
pub async fn emit(state: &AppState, t: EventType, s: &EventSubject<'_>) -> coffer_core::Result<()> {
    let op = operation_name(s.kind, t);
    let id = format!("{}{}/{}/{}", s.vault_uri, s.kind.collection(), s.name, s.version);
    let object = RecordedObject {
        collection: s.kind.collection().into(),
        name: s.name.into(),
        version: Some(s.version.into()),
        id: id.clone(),
    };
    state
        .audit
        .system(op, Outcome::Event, Some(s.vault), Some(object), Some(s.reason.clone()))
        .await
        .map_err(|e| coffer_core::Error::unavailable("AuditLogUnavailable", e.0))?;
    let now = state.clock.now();
    let body = json!([{
        "id": coffer_crypto::random::guid(),
        "topic": format!("/vaults/{}", s.vault),
        "subject": s.name,
        "eventType": format!("Microsoft.KeyVault.{}{}", kind_word(s.kind), t.suffix()),
        "eventTime": coffer_core::clock::iso8601(now),
        "data": {
            "Id": id, "VaultName": s.vault, "ObjectType": kind_word(s.kind), "ObjectName": s.name,
            "Version": s.version, "NBF": s.not_before.map(Value::from).unwrap_or(Value::Null),
            "EXP": s.expires.map(Value::from).unwrap_or(Value::Null),
            "Reason": s.reason,
        },
        "dataVersion": "1",
        "metadataVersion": "1",
    }]);
    state.audit.webhook.deliver(body.to_string().into_bytes());
    Ok(())
}

/// How far ahead a near-expiry event fires (Azure: 30 days).
pub const NEAR_EXPIRY_SECONDS: i64 = 30 * 86_400;

/// Finds current versions that are near expiry or expired and raises each event once per
/// version (a certificate's managed key and secret expire with it: its event covers them).
/// Returns how many events were raised.
pub async fn scan_expiry(state: &AppState) -> coffer_core::Result<usize> {
    let now = state.clock.now();
    let mut raised = 0;
    loop {
        let due = state.store.pending_expiry_events(now, now + NEAR_EXPIRY_SECONDS, 500).await?;
        let n = due.len();
        for v in due {
            let t = if v.expired { EventType::Expired } else { EventType::NearExpiry };
            let subject = EventSubject {
                vault: &v.vault_name,
                vault_uri: state.names.vault_uri(&v.vault_name),
                kind: v.kind,
                name: &v.name,
                version: &v.version,
                not_before: None,
                expires: Some(v.expires),
                reason: if v.expired { "expired".into() } else { "expires within 30 days".into() },
            };
            emit(state, t, &subject).await?;
            state.store.record_expiry_event(&v).await?;
            raised += 1;
        }
        if n < 500 {
            return Ok(raised);
        }
    }
}

/// What a lifetime-action job did to one object, recorded and announced: the action as a
/// system record (`KeyRotate`, `CertificateRenew`; none for a notice) and the event.
pub async fn job_event(
    state: &AppState,
    action: Option<&'static str>,
    t: EventType,
    s: &EventSubject<'_>,
) -> coffer_core::Result<()> {
    if let Some(op) = action {
        let object = RecordedObject {
            collection: s.kind.collection().into(),
            name: s.name.into(),
            version: Some(s.version.into()),
            id: format!("{}{}/{}/{}", s.vault_uri, s.kind.collection(), s.name, s.version),
        };
        crate::system::record(state, op, Some(s.vault), Some(object), &s.reason).await?;
    }
    emit(state, t, s).await
}

/// The subject of an event about a stored version of the context's kind of object.
pub fn event_subject<'a>(
    state: &AppState,
    ctx: &'a crate::objects::VaultContext,
    kind: ObjectKind,
    v: &'a coffer_store::StoredVersion,
    version: &'a str,
    reason: String,
) -> EventSubject<'a> {
    EventSubject {
        vault: &ctx.vault.name,
        vault_uri: state.names.vault_uri(&ctx.vault.name),
        kind,
        name: &v.name,
        version,
        not_before: v.attributes.not_before,
        expires: v.attributes.expires,
        reason,
    }
}
