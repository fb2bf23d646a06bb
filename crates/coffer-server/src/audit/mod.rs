//! The audit log: one hash-chained record per request that reaches
//! authentication, per sign-in and per background action, written before the response and
//! durable (store + file sink) or the request fails with 503.
//!
//! - `record`: what a record says (Azure `AuditEvent` shape) and the request's draft of it;
//! - `operations`: Azure's operation names for each method and path;
//! - `scope`: the draft of the request being served, and writing it (fail closed);
//! - `writer`: group commit, checkpoints, retention, health;
//! - `chain`: hashing and verification (pure); `verify`: reading the sinks to check them;
//! - `file_sink`, `syslog`: the copies outside the store; `events`: events and the webhook;
//!
//! `/audit/...` for administrators is the HTTP surface `crate::audit_api`.

pub mod chain;
pub mod events;
pub mod file_sink;
pub mod operations;
pub mod record;
pub mod scope;
mod syslog;
pub mod verify;
pub mod writer;

use coffer_crypto::jwt::TokenSigner;
pub use coffer_crypto::jwt::VerifyingKey;
use coffer_store::Store;
pub use scope::{before_change, note, note_caller};
pub use writer::AuditLog;

pub use crate::config::AuditConfig;

use crate::keyring::Keyring;

/// A checkpoint's claims, if `signature` is a valid JWS by `key`.
pub fn verify_checkpoint(signature: &str, key: &VerifyingKey) -> Option<writer::CheckpointClaims> {
    coffer_crypto::jwt::verify_claims(signature, key).ok()
}

const CHECKPOINT_KEY_META: &str = "audit/checkpoint-key";

fn checkpoint_key_aad(kid: &str) -> Vec<u8> {
    format!("coffer/audit-checkpoint-key/v1|{kid}").into_bytes()
}

/// The key that signs checkpoints: P-256, sealed under the root of trust like the token
/// signing keys, created on first start.
pub async fn writer_key(store: &dyn Store, keyring: &Keyring) -> coffer_core::Result<TokenSigner> {
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Stored {
        kid: String,
        sealed: String,
    }
    let stored = match store.get_meta(CHECKPOINT_KEY_META).await? {
        Some(b) => b,
        None => {
            let kid = format!("audit-{}", coffer_crypto::random::version_id());
            let (_, der) = TokenSigner::generate(kid.clone())?;
            let sealed = keyring.seal_with_root(&checkpoint_key_aad(&kid), &der)?;
            let fresh = serde_json::to_vec(&Stored { kid, sealed: coffer_crypto::b64::url_encode(&sealed) })
                .map_err(|e| coffer_core::Error::internal(format!("audit key: {e}")))?;
            store.put_meta_if_absent(CHECKPOINT_KEY_META, &fresh).await?
        }
    };
    let s: Stored =
        serde_json::from_slice(&stored).map_err(|e| coffer_core::Error::internal(format!("audit key: {e}")))?;
    let sealed = coffer_crypto::b64::url_decode(&s.sealed)
        .ok_or_else(|| coffer_core::Error::internal("audit key: bad encoding"))?;
    let der = keyring.open_with_root(&checkpoint_key_aad(&s.kid), &sealed)?;
    Ok(TokenSigner::from_pkcs8(s.kid, &der)?)
}
