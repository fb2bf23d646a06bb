//! The audit log: one hash-chained record per request that reaches authentication, per
//! sign-in and per background action, written before the response and durable (store + file
//! sink) or the request fails with 503.
//!
//! - `record`: what a record says (Azure `AuditEvent` shape) and the request's draft of it;
//! - `operations`: Azure's operation names for each method and path;
//! - `scope`: the draft of the request being served (a task-local), and the durable
//!   "started" record before a change (fail closed) — or, for a change that is one new
//!   version, its success record to commit with it (`witness_record`);
//! - `writer`: group commit, checkpoints, retention, health;
//! - `chain`: hashing and verification (pure); `verify`: reading the sinks to check them;
//! - `file_sink`, `syslog`: the copies outside the store; `webhook`: event delivery;
//! - `config`: the settings of all of these.
//!
//! This crate sits below the server: it knows the store and the crypto, never HTTP handlers,
//! the server state or vaults.
#![forbid(unsafe_code)]

pub mod chain;
pub mod config;
pub mod file_sink;
pub mod operations;
pub mod record;
pub mod scope;
mod syslog;
pub mod verify;
pub mod webhook;
pub mod writer;

pub use coffer_crypto::jwt::VerifyingKey;
pub use config::{AuditConfig, FileSinkConfig, WebhookConfig};
pub use scope::{before_change, note, note_caller, note_witnessed, witness_record};
pub use writer::{Answer, AuditLog, WriteObserver};

/// A checkpoint's claims, if `signature` is a valid JWS by `key`.
pub fn verify_checkpoint(signature: &str, key: &VerifyingKey) -> Option<writer::CheckpointClaims> {
    coffer_crypto::jwt::verify_claims(signature, key).ok()
}
