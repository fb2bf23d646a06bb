//! Records the store reads and writes.
use coffer_core::lifecycle::Deletion;
use coffer_core::object::{Attributes, ObjectKind, Tags};
use coffer_core::vault::Vault;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub default_subscription_id: String,
    pub created: i64,
}

#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    pub id: String,
    pub principal_id: String,
    /// `secret`, `password`, `certificate` or `identity-header` (see `CredentialKind`).
    pub kind: String,
    /// argon2id PHC string of the secret; empty for certificates.
    pub secret_hash: String,
    /// Certificates: base64url SHA-1 thumbprint (`x5t`).
    pub thumbprint: Option<String>,
    /// Certificates: the public certificate, DER.
    pub material: Option<Vec<u8>>,
    pub expires: Option<i64>,
    pub created: i64,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("id", &self.id)
            .field("principal_id", &self.principal_id)
            .field("kind", &self.kind)
            .field("thumbprint", &self.thumbprint)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    pub kid: String,
    pub tenant_id: String,
    /// PKCS#8 sealed under the root of trust.
    pub sealed_pkcs8: Vec<u8>,
    pub created: i64,
}

impl std::fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRecord")
            .field("kid", &self.kid)
            .field("tenant_id", &self.tenant_id)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultRecord {
    pub vault: Vault,
    /// The vault's data key, wrapped by the root of trust.
    pub wrapped_key: Vec<u8>,
}

/// Where an object lives: vault, kind and case-insensitive name key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectRef<'a> {
    pub vault_id: &'a str,
    pub kind: ObjectKind,
    pub name_key: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectHead {
    /// Display name, as first written.
    pub name: String,
    pub latest_version: String,
    pub deletion: Option<Deletion>,
}

/// One stored version. `payload` is sealed; it is empty in list results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredVersion {
    pub name: String,
    pub version: String,
    pub seq: i64,
    pub attributes: Attributes,
    pub tags: Tags,
    pub content_type: Option<String>,
    pub managed: bool,
    pub payload: Vec<u8>,
    /// Kind-specific public metadata as JSON (keys: type, operations, size or curve).
    pub meta: Option<String>,
    pub deletion: Option<Deletion>,
}

#[derive(Debug, Clone)]
pub struct NewVersion<'a> {
    pub at: ObjectRef<'a>,
    pub name: &'a str,
    pub version: &'a str,
    pub attributes: &'a Attributes,
    pub tags: &'a Tags,
    pub content_type: Option<&'a str>,
    pub managed: bool,
    pub payload: &'a [u8],
    pub meta: Option<&'a str>,
}

impl NewVersion<'_> {
    /// The version as stored, at `seq`.
    pub fn to_stored(&self, seq: i64) -> StoredVersion {
        StoredVersion {
            name: self.name.to_string(),
            version: self.version.to_string(),
            seq,
            attributes: self.attributes.clone(),
            tags: self.tags.clone(),
            content_type: self.content_type.map(str::to_string),
            managed: self.managed,
            payload: self.payload.to_vec(),
            meta: self.meta.map(str::to_string),
            deletion: None,
        }
    }
}

/// A new version with its own copies of what `NewVersion` borrows: one that waits in a queue
/// (the store's group commit, the audit writer's batch) while its caller's borrows end.
#[derive(Debug, Clone)]
pub struct OwnedVersion {
    vault_id: String,
    kind: ObjectKind,
    name_key: String,
    /// What is written (its `seq` is given when it is).
    stored: StoredVersion,
}

impl OwnedVersion {
    pub fn of(v: &NewVersion<'_>) -> Self {
        Self {
            vault_id: v.at.vault_id.to_string(),
            kind: v.at.kind,
            name_key: v.at.name_key.to_string(),
            stored: v.to_stored(0),
        }
    }

    pub fn borrowed(&self) -> NewVersion<'_> {
        let s = &self.stored;
        NewVersion {
            at: ObjectRef { vault_id: &self.vault_id, kind: self.kind, name_key: &self.name_key },
            name: &s.name,
            version: &s.version,
            attributes: &s.attributes,
            tags: &s.tags,
            content_type: s.content_type.as_deref(),
            managed: s.managed,
            payload: &s.payload,
            meta: s.meta.as_deref(),
        }
    }
}

/// What a batch of audit records and the versions they witness wait for before their
/// commit: the other copy of the records (the audit file) synced, or why it could not be. The
/// commit then happens, or nothing is written.
pub struct CommitGate(std::pin::Pin<Box<dyn std::future::Future<Output = std::result::Result<(), String>> + Send>>);

impl CommitGate {
    pub fn new(f: impl std::future::Future<Output = std::result::Result<(), String>> + Send + 'static) -> Self {
        Self(Box::pin(f))
    }

    /// A gate that is open: nothing to wait for.
    pub fn open() -> Self {
        Self::new(std::future::ready(Ok(())))
    }

    pub async fn passed(self) -> std::result::Result<(), String> {
        self.0.await
    }
}

impl std::fmt::Debug for CommitGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CommitGate")
    }
}

/// How a batch of audit records and the versions they witness went (see
/// `AuditStore::append_audit_witnessing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Witnessed {
    /// The records and every version were written.
    Written,
    /// Nothing was written: the version at `index` was refused.
    Refused { index: usize, outcome: PutOutcome },
    /// Nothing was written: the first record's seq is taken — another writer (a node) moved
    /// the chain's head on. The writer reads the head again and gives its records new places.
    HeadMoved,
}

/// One object of a restore (see `Store::restore_objects`).
#[derive(Debug, Clone, Copy)]
pub struct RestoredObject<'a> {
    pub at: ObjectRef<'a>,
    pub name: &'a str,
    pub versions: &'a [StoredVersion],
    /// The object's policy (a certificate's), written with it.
    pub policy: Option<&'a str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    Written,
    /// The name belongs to a deleted object: recover or purge it first.
    NameDeleted,
    /// The name belongs to a live object (restore only).
    NameTaken,
}

#[derive(Debug, Clone)]
pub struct ListQuery<'a> {
    pub vault_id: &'a str,
    pub kind: ObjectKind,
    pub deleted: bool,
    /// Name key to continue after (exclusive).
    pub after: Option<&'a str>,
    pub limit: usize,
}

/// A refresh token: the client holds `{id}.{secret}`, the store keeps a SHA-256 of the secret.
/// Tokens are single-use: redeeming one marks it used and issues the next of its family; a
/// used one presented again is a replay, and revokes the whole family.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshTokenRecord {
    pub id: String,
    pub principal_id: String,
    /// The credential it was issued through; removing that credential revokes it.
    pub credential_id: String,
    pub secret_hash: String,
    pub expires: i64,
    pub created: i64,
    /// The id of the first token of the chain this one continues (its own id for a sign-in).
    pub family: String,
    /// The client id of the application the user signed in through (compound identity).
    pub through_app: Option<String>,
    /// Redeemed already: kept until it expires, so that a replay is recognised.
    pub used: bool,
}

/// What redeeming a refresh token did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redeemed {
    /// It was unused: now it is used, and the next token of its family is stored.
    Rotated,
    /// It had been used (or is gone): its whole family is revoked, nothing is stored.
    Replayed,
}

impl std::fmt::Debug for RefreshTokenRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshTokenRecord")
            .field("id", &self.id)
            .field("principal_id", &self.principal_id)
            .finish_non_exhaustive()
    }
}

/// The kinds of credential a principal can hold.
pub mod credential_kind {
    pub const SECRET: &str = "secret";
    pub const PASSWORD: &str = "password";
    pub const CERTIFICATE: &str = "certificate";
    pub const IDENTITY_HEADER: &str = "identity-header";
}

/// An ARM resource group: a named grouping of vaults inside a subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceGroup {
    pub subscription_id: String,
    pub name: String,
    pub location: String,
    pub tags: Tags,
    pub created: i64,
}

/// One audit-log entry as stored: `body` is the whole record (JSON, with its `seq`, `prevHash`
/// and `hash`); the other columns are copies of some of its fields, for indexed queries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub seq: i64,
    /// Unix milliseconds.
    pub time_ms: i64,
    pub vault: Option<String>,
    pub caller: Option<String>,
    pub operation: String,
    /// `success`, `denied`, `failed`, `started` or `event`.
    pub result: String,
    /// The object's name (lowercase), when the operation is on one.
    pub object: Option<String>,
    pub body: String,
}

/// A filter over the audit log; every `Some` must match. Rows come in `seq` order (newest
/// first with `newest_first`), at most `limit` of them.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub vault: Option<String>,
    pub object: Option<String>,
    pub caller: Option<String>,
    pub operation: Option<String>,
    pub result: Option<String>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    /// Only rows with a larger `seq`.
    pub after_seq: Option<i64>,
    /// Only rows with a smaller `seq`.
    pub before_seq: Option<i64>,
    pub newest_first: bool,
    pub limit: usize,
}

/// A signed statement of the chain's head at `seq` (`signature` is a JWS over seq, hash, time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditCheckpoint {
    pub seq: i64,
    pub hash: String,
    pub time_ms: i64,
    pub signature: String,
}

/// The current version of a live object owed an expiry event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiringVersion {
    /// Expired (else near expiry) as of the query's `now`.
    pub expired: bool,
    pub vault_id: String,
    pub name_key: String,
    pub vault_name: String,
    pub kind: ObjectKind,
    pub name: String,
    pub version: String,
    pub expires: i64,
}

/// Everything sealed directly under the root of trust, as a seal migration or a root
/// rotation writes it back (`MetaStore::replace_root_wrapped`).
#[derive(Default)]
pub struct RootWrapped {
    /// (vault id, wrapped data key).
    pub vaults: Vec<(String, Vec<u8>)>,
    /// (tenant id, kid, sealed PKCS#8).
    pub signing_keys: Vec<(String, String, Vec<u8>)>,
    /// (key, value), upserted.
    pub meta: Vec<(String, Vec<u8>)>,
}
