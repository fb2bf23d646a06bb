//! The lifetime-action job: AutoRenew and EmailContacts, carried out per certificate with
//! failures isolated per certificate.
use coffer_core::object::ObjectKind;
use coffer_core::{ErrorKind, Result};
use coffer_crypto::certs;

use super::{KIND, NewCertificate, cert_error, contact_emails, load_policy, new_key_for, store_certificate};
use crate::events::{EventType, event_subject, job_event};
use crate::keys::material_of;
use crate::lifetime_markers::{Notice, Subject as Told, already_told, remember_told};
use crate::objects::{Objects, VaultContext};
use crate::state::AppState;

/// The background part of certificate policies: `AutoRenew` issues a new version of
/// self-issued certificates (a new key unless `reuse_key`) when the trigger has come;
/// `EmailContacts` records a near-expiry event for the contacts, once per version. Returns how
/// many certificates were renewed.
pub async fn run_certificate_lifetime_actions(state: &AppState) -> Result<usize> {
    let mut renewed = 0;
    for (vault_name, name_key) in state.store.objects_with_policy(KIND).await? {
        // One broken certificate must not stop the others from renewing.
        match carry_out_lifetime_actions(state, &vault_name, &name_key).await {
            Ok(true) => renewed += 1,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(vault = %vault_name, certificate = %name_key, error = %e, "certificate lifetime action failed")
            }
        }
    }
    Ok(renewed)
}

/// Applies the first due lifetime action of one certificate; true when it was renewed.
async fn carry_out_lifetime_actions(state: &AppState, vault_name: &str, name_key: &str) -> Result<bool> {
    let now = state.clock.now();
    let Some(ctx) = crate::system::system_context(state, vault_name).await? else { return Ok(false) };
    let Some(policy) = load_policy(state, &ctx, name_key).await? else { return Ok(false) };
    let objects = Objects::new(state, &ctx, KIND);
    let current = match objects.read(name_key, None).await {
        Ok(v) => v,
        Err(e) if e.kind == ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    let (Some(nbf), Some(exp)) = (current.attributes.not_before, current.attributes.expires) else { return Ok(false) };
    for action in &policy.lifetime_actions {
        let due_at = match (action.trigger.lifetime_percentage, action.trigger.days_before_expiry) {
            (Some(p), _) => nbf + (exp - nbf) * i64::from(p) / 100,
            (_, Some(d)) => exp - i64::from(d) * 86_400,
            _ => continue,
        };
        if now < due_at {
            continue;
        }
        match action.action.action_type.as_str() {
            "AutoRenew" if policy.issuer_name() == "Self" => {
                let key = if policy.key_props.reuse_key == Some(true) {
                    let keys = Objects::new(state, &ctx, ObjectKind::Key);
                    material_of(&keys, &keys.read(&current.name, Some(&current.version)).await?)?
                } else {
                    new_key_for(&policy)?
                };
                let der = certs::self_signed(&policy.subject()?, &key, now).map_err(cert_error)?;
                let new = NewCertificate {
                    chain: &[der],
                    key: &key,
                    policy: &policy,
                    enabled: None,
                    tags: current.tags.clone(),
                };
                let renewed = store_certificate(state, &ctx, &current.name, new).await?;
                let subject =
                    event_subject(state, &ctx, KIND, &renewed, &renewed.version, "lifetime action: AutoRenew".into());
                job_event(state, Some("CertificateRenew"), EventType::NewVersionCreated, &subject).await?;
                // The new version has its own lifetime; nothing else is due for it now.
                return Ok(true);
            }
            "AutoRenew" => {
                // Renewal through an outside issuer is not automatic: say it is due, once per version.
                if !already_told(state, subject_of(&ctx, name_key), Notice::RenewalDue, &current.version).await? {
                    let why = "lifetime action: AutoRenew is due but needs issuer Self".to_string();
                    let subject = event_subject(state, &ctx, KIND, &current, &current.version, why);
                    job_event(state, None, EventType::NearExpiry, &subject).await?;
                    remember_told(state, subject_of(&ctx, name_key), Notice::RenewalDue, &current.version).await?;
                }
            }
            _ => {
                if !already_told(state, subject_of(&ctx, name_key), Notice::Notified, &current.version).await? {
                    // Coffer sends no mail: the event names the contacts for whoever forwards it.
                    let emails = contact_emails(state, &ctx).await?;
                    let contacts = emails.join(",");
                    let why = format!("lifetime action: EmailContacts ({contacts})");
                    let subject = event_subject(state, &ctx, KIND, &current, &current.version, why);
                    job_event(state, None, EventType::NearExpiry, &subject).await?;
                    remember_told(state, subject_of(&ctx, name_key), Notice::Notified, &current.version).await?;
                }
            }
        }
    }
    Ok(false)
}

/// The certificate a lifetime-action marker is about.
fn subject_of<'a>(ctx: &'a VaultContext, name_key: &'a str) -> Told<'a> {
    Told { kind: KIND, vault_id: &ctx.vault.id, name_key }
}
