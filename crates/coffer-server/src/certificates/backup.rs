//! Backup and restore: the certificate with its key, secret and policy, as one sealed "CFC1"
//! blob, restored all together or not at all.
use coffer_core::object::ObjectKind;
use coffer_core::permissions::DataAction;
use coffer_core::{Error, Result};
use coffer_crypto::b64;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{CertPolicy, CertificateVersion, KIND, at, load_policy, payload_of};
use crate::objects::{Objects, VaultContext};
use crate::state::AppState;

#[derive(Serialize, Deserialize)]
struct CertificateBackup {
    format: String,
    /// The three objects' own (sealed) backup blobs.
    certificate: String,
    key: String,
    secret: String,
    policy: Option<CertPolicy>,
}

const BACKUP_MAGIC: &[u8] = b"CFC1";
const BACKUP_FORMAT: &str = "coffer-certificate-backup/1";
const BACKUP_AAD: &[u8] = b"coffer/backup/v1|certificate-bundle";

/// The sealed backup blob (base64url) of the certificate with its key, secret and policy.
pub async fn backup(state: &AppState, ctx: &VaultContext, name: &str) -> Result<String> {
    ctx.authorize(state, DataAction::CertBackup, Some(name)).await?;
    let doc = CertificateBackup {
        format: BACKUP_FORMAT.into(),
        certificate: Objects::new(state, ctx, KIND).backup(name).await?,
        key: Objects::new(state, ctx, ObjectKind::Key).backup_with_certificate(name).await?,
        secret: Objects::new(state, ctx, ObjectKind::Secret).backup_with_certificate(name).await?,
        policy: load_policy(state, ctx, name).await?,
    };
    let plain = Zeroizing::new(serde_json::to_vec(&doc).map_err(|e| Error::internal(e.to_string()))?);
    let mut blob = BACKUP_MAGIC.to_vec();
    blob.extend_from_slice(&state.backup_key.seal(BACKUP_AAD, &plain)?);
    Ok(b64::url_encode(&blob))
}

pub async fn restore(state: &AppState, ctx: &VaultContext, blob: &str) -> Result<CertificateVersion> {
    ctx.authorize(state, DataAction::CertRestore, None).await?;
    let invalid = || Error::bad_parameter("Backup blob contains invalid or corrupt version.");
    let raw = b64::url_decode(blob).ok_or_else(invalid)?;
    let sealed = raw.strip_prefix(BACKUP_MAGIC).ok_or_else(invalid)?;
    let plain = state.backup_key.open(BACKUP_AAD, sealed).map_err(|_| invalid())?;
    let doc: CertificateBackup = serde_json::from_slice(&plain).map_err(|_| invalid())?;
    if doc.format != BACKUP_FORMAT {
        return Err(invalid());
    }
    // Restore all three or none: check every name first.
    let cert = Objects::new(state, ctx, KIND);
    let name = cert.backup_name(&doc.certificate)?;
    let key = coffer_core::names::name_key(&name);
    for kind in [KIND, ObjectKind::Key, ObjectKind::Secret] {
        if let Some(head) = state.store.get_head(&at(ctx, kind, &key)).await? {
            return Err(if head.deletion.is_some() {
                kind.deleted_but_recoverable(&name)
            } else {
                Error::conflict(
                    None,
                    format!(
                        "There was a conflict restoring the certificate '{name}': a {} of this name exists in this vault.",
                        kind.as_str()
                    ),
                )
            });
        }
    }
    // The three objects and the policy in one transaction: a crash or a failure between them
    // cannot leave a managed key or secret without its certificate.
    let key_part = Objects::new(state, ctx, ObjectKind::Key).restorable_with_certificate(&doc.key)?;
    let secret_part = Objects::new(state, ctx, ObjectKind::Secret).restorable_with_certificate(&doc.secret)?;
    let cert_part = cert.restorable(&doc.certificate)?;
    if key_part.name != cert_part.name || secret_part.name != cert_part.name {
        return Err(invalid());
    }
    let policy =
        doc.policy.as_ref().map(serde_json::to_string).transpose().map_err(|e| Error::internal(e.to_string()))?;
    let vault_id = ctx.vault.id.as_str();
    let parts = [
        key_part.in_vault(vault_id, None),
        secret_part.in_vault(vault_id, None),
        cert_part.in_vault(vault_id, policy.as_deref()),
    ];
    match state.store.restore_objects(&parts).await? {
        coffer_store::PutOutcome::Written => {}
        outcome => return Err(crate::objects::restore_conflict(KIND, &name, outcome)),
    }
    let version = cert.read(&name, None).await?;
    let chain = payload_of(&cert, &version)?;
    Ok(CertificateVersion { chain, policy: doc.policy.unwrap_or_default(), version })
}
