//! Storage. The server talks to one `Store` trait; SQLite is the embedded default. Storage is
//! untrusted: it only ever sees sealed payloads and wrapped keys, never plaintext secrets.
#![forbid(unsafe_code)]

mod memo;
mod model;
pub mod private_files;
mod sqlite;

pub use model::*;
pub use sqlite::SqliteStore;

use async_trait::async_trait;

/// Told how long each store operation took (for the server's `/metrics`).
pub trait StoreObserver: Send + Sync + std::fmt::Debug {
    fn observe(&self, operation: &'static str, took: std::time::Duration);
}
use coffer_core::Result;
use coffer_core::object::{Attributes, ObjectKind, Tags};
use coffer_core::rbac::{RoleAssignment, RoleDefinition};
use coffer_core::vault::Vault;

/// Instance metadata: wrapped instance keys, schema facts, the audit anchor.
#[async_trait]
pub trait MetaStore: Send + Sync {
    async fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>>;
    /// Stores `value` unless `key` exists; returns the value now stored.
    async fn put_meta_if_absent(&self, key: &str, value: &[u8]) -> Result<Vec<u8>>;
    /// Stores `value` under `key`, replacing what was there.
    async fn put_meta(&self, key: &str, value: &[u8]) -> Result<()>;
    async fn delete_meta(&self, key: &str) -> Result<bool>;
    /// Every entry whose key starts with `prefix`, in key order.
    async fn list_meta(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>>;
    /// Every vault's wrapped data key (live and deleted vaults), by vault id.
    async fn wrapped_vault_keys(&self) -> Result<Vec<(String, Vec<u8>)>>;
    /// Replaces everything sealed under the root of trust at once (a seal migration or a root
    /// rotation): the vaults' wrapped keys, the token-signing keys and meta entries. One
    /// transaction: all of it, or — if a vault or signing key named is missing — none.
    async fn replace_root_wrapped(&self, r: &RootWrapped) -> Result<()>;
}

/// The directory: tenants, principals, credentials, groups, refresh tokens, signing keys.
#[async_trait]
pub trait DirectoryStore: Send + Sync {
    async fn create_tenant(&self, tenant: &Tenant) -> Result<()>;
    async fn get_tenant(&self, id: &str) -> Result<Option<Tenant>>;
    async fn list_tenants(&self) -> Result<Vec<Tenant>>;
    async fn create_principal(&self, p: &coffer_core::principal::Principal) -> Result<()>;
    async fn get_principal(&self, object_id: &str) -> Result<Option<coffer_core::principal::Principal>>;
    async fn find_principal_by_client_id(
        &self,
        tenant_id: &str,
        client_id: &str,
    ) -> Result<Option<coffer_core::principal::Principal>>;
    async fn update_principal(&self, p: &coffer_core::principal::Principal) -> Result<bool>;
    /// In one transaction: updates the principal, removes its credentials of `c.kind` (and the
    /// refresh tokens issued through them) and adds `c` — a password change or an update that
    /// sets one either happens whole or not at all. False if the principal does not exist.
    async fn replace_credential(&self, p: &coffer_core::principal::Principal, c: &Credential) -> Result<bool>;
    /// Deletes a principal with its credentials, refresh tokens and group memberships.
    async fn delete_principal(&self, object_id: &str) -> Result<bool>;
    async fn list_principals(&self, tenant_id: &str) -> Result<Vec<coffer_core::principal::Principal>>;
    /// A user by sign-in name (case-insensitive).
    async fn find_user(&self, tenant_id: &str, name: &str) -> Result<Option<coffer_core::principal::Principal>>;
    async fn add_credential(&self, c: &Credential) -> Result<()>;
    async fn get_credential(&self, id: &str) -> Result<Option<Credential>>;
    /// Removes a credential and the refresh tokens issued through it.
    async fn remove_credential(&self, principal_id: &str, id: &str) -> Result<bool>;
    async fn add_group_member(&self, group_id: &str, member_id: &str) -> Result<bool>;
    async fn remove_group_member(&self, group_id: &str, member_id: &str) -> Result<bool>;
    /// Direct members of a group.
    async fn group_members(&self, group_id: &str) -> Result<Vec<String>>;
    async fn add_refresh_token(&self, t: &RefreshTokenRecord) -> Result<()>;
    async fn get_refresh_token(&self, id: &str) -> Result<Option<RefreshTokenRecord>>;
    /// In one transaction: marks `id` used and stores `next` (of the same family) if `id` was
    /// unused; otherwise revokes every token of `id`'s family. Tokens expired at `now` are
    /// dropped on the way. Two concurrent redemptions of one token: one rotates, the other
    /// revokes the family (a replay, as OAuth's refresh-token rotation wants).
    async fn redeem_refresh_token(&self, id: &str, next: &RefreshTokenRecord, now: i64) -> Result<Redeemed>;
    /// Deletes the refresh token `id` and every token of its family (sign-out).
    async fn revoke_refresh_family(&self, id: &str) -> Result<bool>;
    async fn list_credentials(&self, principal_id: &str) -> Result<Vec<Credential>>;
    /// Object ids of the groups `object_id` belongs to, directly or through other groups.
    async fn groups_of(&self, object_id: &str) -> Result<Vec<String>>;
    /// Every principal inside a group, through nested groups (not the group itself).
    async fn group_descendants(&self, group_id: &str) -> Result<Vec<String>>;
    async fn add_signing_key(&self, k: &SigningKeyRecord) -> Result<()>;
    async fn list_signing_keys(&self, tenant_id: &str) -> Result<Vec<SigningKeyRecord>>;
}

/// Role-based access control: custom role definitions and role assignments (built-in roles live in code).
#[async_trait]
pub trait RbacStore: Send + Sync {
    /// False if the tenant has a role of that name already.
    async fn create_role_definition(&self, tenant_id: &str, role: &RoleDefinition, now: i64) -> Result<bool>;
    async fn list_role_definitions(&self, tenant_id: &str) -> Result<Vec<RoleDefinition>>;
    async fn delete_role_definition(&self, tenant_id: &str, id: &str) -> Result<bool>;
    /// False if the same role is already assigned to the principal at the scope.
    async fn create_role_assignment(&self, a: &RoleAssignment) -> Result<bool>;
    async fn get_role_assignment(&self, id: &str) -> Result<Option<RoleAssignment>>;
    async fn delete_role_assignment(&self, id: &str) -> Result<bool>;
    /// Assignments at `scope_prefix` or below it, optionally of one principal.
    async fn list_role_assignments(
        &self,
        tenant_id: &str,
        scope_prefix: Option<&str>,
        principal_id: Option<&str>,
    ) -> Result<Vec<RoleAssignment>>;
    /// The assignments of any of `principal_ids` at exactly any of `scopes` (indexed lookup:
    /// its cost depends on these lists, not on how many assignments exist).
    async fn assignments_for(&self, principal_ids: &[String], scopes: &[String]) -> Result<Vec<RoleAssignment>>;
    async fn count_assignments_of_role(&self, role_definition_id: &str) -> Result<i64>;
}

/// Vaults and the resource groups (ARM's grouping objects) they are filed in.
#[async_trait]
pub trait VaultStore: Send + Sync {
    /// Returns false if the name is taken (by a live or a deleted vault).
    async fn create_vault(&self, vault: &Vault, wrapped_key: &[u8]) -> Result<bool>;
    /// `create_vault` and the creator's Owner assignment, in one transaction.
    async fn create_vault_with_owner(
        &self,
        vault: &Vault,
        wrapped_key: &[u8],
        owner: &coffer_core::rbac::RoleAssignment,
    ) -> Result<bool>;
    async fn get_vault_by_name(&self, name: &str) -> Result<Option<VaultRecord>>;
    async fn update_vault(&self, vault: &Vault) -> Result<()>;
    /// Soft-deletes a vault (its `deletion` set, `updated`) and removes the role assignments
    /// at its scope and below, in one transaction.
    async fn soft_delete_vault(&self, vault: &Vault) -> Result<()>;
    /// Every vault of the tenant, live and deleted.
    async fn list_vaults(&self, tenant_id: &str) -> Result<Vec<Vault>>;
    /// Undeletes a vault, unless it is not deleted or its purge has begun.
    async fn recover_vault(&self, vault_id: &str, updated: i64) -> Result<bool>;
    /// Claims a deleted vault for purging (atomically: one node wins; recovery is refused
    /// from then on). With `due_by`, only if its scheduled purge date has come.
    async fn claim_vault_purge(&self, vault_id: &str, due_by: Option<i64>) -> Result<bool>;
    /// Erases a claimed vault with its objects, versions and role assignments.
    async fn erase_vault(&self, vault_id: &str) -> Result<bool>;
    /// Deleted vaults whose purge date has come.
    async fn due_vaults(&self, now: i64, limit: usize) -> Result<Vec<String>>;
    /// Deleted objects (of live vaults) whose purge date has come: (vault id, vault name, kind, name key).
    async fn due_objects(&self, now: i64, limit: usize) -> Result<Vec<(String, String, ObjectKind, String)>>;

    // Resource groups (ARM's grouping objects).
    async fn put_resource_group(&self, rg: &ResourceGroup) -> Result<()>;
    async fn get_resource_group(&self, subscription_id: &str, name: &str) -> Result<Option<ResourceGroup>>;
    async fn list_resource_groups(&self, subscription_id: &str) -> Result<Vec<ResourceGroup>>;
    async fn delete_resource_group(&self, subscription_id: &str, name: &str) -> Result<bool>;
}

/// Versioned objects (secrets, keys, certificates), their lifecycle and their expiry events.
#[async_trait]
pub trait ObjectStore: Send + Sync {
    async fn put_version(&self, v: &NewVersion<'_>) -> Result<PutOutcome>;
    /// Many `put_version`s (bulk loads): each outcome as `put_version` would give it. A backend
    /// may write them in one transaction; all or none are durable when it returns `Ok`.
    async fn put_versions(&self, batch: &[NewVersion<'_>]) -> Result<Vec<PutOutcome>> {
        let mut out = Vec::with_capacity(batch.len());
        for v in batch {
            out.push(self.put_version(v).await?);
        }
        Ok(out)
    }
    /// New versions of several objects that belong together (a certificate with its key and
    /// secret) and, with `policy`, the policy of the last one, in one transaction: all of it,
    /// or — when any name is deleted — none (that outcome).
    async fn put_version_group(&self, batch: &[NewVersion<'_>], policy: Option<&str>) -> Result<PutOutcome>;
    /// The given version, or the latest when `version` is `None`, of a live object (or of a
    /// deleted one, with `deleted`).
    async fn get_version(
        &self,
        at: &ObjectRef<'_>,
        version: Option<&str>,
        deleted: bool,
    ) -> Result<Option<StoredVersion>>;
    /// The head of an object, live or deleted.
    async fn get_head(&self, at: &ObjectRef<'_>) -> Result<Option<ObjectHead>>;
    async fn update_version(
        &self,
        at: &ObjectRef<'_>,
        version: &str,
        attributes: &Attributes,
        tags: &Tags,
        content_type: Option<&str>,
        meta: Option<&str>,
    ) -> Result<bool>;
    /// An object's policy document (keys: the rotation policy), if it has one.
    async fn get_object_policy(&self, at: &ObjectRef<'_>) -> Result<Option<String>>;
    /// Sets the policy of a live object; false if there is none.
    async fn set_object_policy(&self, at: &ObjectRef<'_>, policy: Option<&str>) -> Result<bool>;
    /// Live objects of a kind that have a policy: (vault name, name key).
    async fn objects_with_policy(&self, kind: ObjectKind) -> Result<Vec<(String, String)>>;
    /// Objects (latest version each, without payloads) ordered by name key, after `after`.
    async fn list_objects(&self, q: &ListQuery<'_>) -> Result<Vec<StoredVersion>>;
    /// Versions of one live object, ordered by creation, after sequence number `after_seq`.
    async fn list_versions(&self, at: &ObjectRef<'_>, after_seq: i64, limit: usize) -> Result<Vec<StoredVersion>>;
    /// Every version with payloads (for backup), oldest first.
    async fn all_versions(&self, at: &ObjectRef<'_>) -> Result<Vec<StoredVersion>>;
    /// Soft-deletes a live object; false if there is none.
    async fn delete_object(&self, at: &ObjectRef<'_>, deletion: &coffer_core::lifecycle::Deletion) -> Result<bool>;
    /// Undeletes; false if there is no deleted object.
    async fn recover_object(&self, at: &ObjectRef<'_>) -> Result<bool>;
    /// Erases a deleted object and all its versions; false if there is no deleted object (or,
    /// with `due_by`, none whose purge date has come).
    async fn purge_object(&self, at: &ObjectRef<'_>, due_by: Option<i64>) -> Result<bool>;
    /// Inserts a whole object from a backup, unless the name is taken.
    async fn restore_object(&self, at: &ObjectRef<'_>, name: &str, versions: &[StoredVersion]) -> Result<PutOutcome>;
    /// Restores several objects (a certificate with its key and secret) in one transaction:
    /// all of them, or — when any name is taken or deleted — none (that outcome).
    async fn restore_objects(&self, objects: &[RestoredObject<'_>]) -> Result<PutOutcome>;
    /// Current, unmanaged versions of live objects (in live vaults) owed an expiry event: expired by `now`
    /// without an "expired" event, or expiring by `near_until` without a "near expiry" one.
    async fn pending_expiry_events(&self, now: i64, near_until: i64, limit: usize) -> Result<Vec<ExpiringVersion>>;
    /// Notes that the event `v.expired` names was raised for that version.
    async fn record_expiry_event(&self, v: &ExpiringVersion) -> Result<()>;

    /// Swaps two versions' sealed payloads, for tests of tamper resistance: only with the
    /// `test-hooks` feature, which only test builds turn on.
    #[cfg(feature = "test-hooks")]
    async fn raw_swap_payloads(&self, a: (&ObjectRef<'_>, &str), b: (&ObjectRef<'_>, &str)) -> Result<()>;
}

/// The audit log: hash-chained records, checkpoints, retention.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends records in one transaction: all or none.
    async fn append_audit(&self, rows: &[AuditRow]) -> Result<()> {
        match self.append_audit_witnessing(rows, &[], CommitGate::open()).await? {
            Witnessed::Written => Ok(()),
            Witnessed::HeadMoved => Err(coffer_core::Error::conflict(
                Some("AuditSeqTaken"),
                "An audit record with that seq is already stored; nothing was appended.",
            )),
            Witnessed::Refused { .. } => {
                Err(coffer_core::Error::internal("an audit batch without versions was refused"))
            }
        }
    }
    /// Appends records and writes the versions they witness in one transaction: all or none.
    /// A change and its record are one commit — the record cannot be lost while the change
    /// stays, nor the change happen without its record. If a version is refused (its name
    /// belongs to a deleted object), nothing is written and the answer says which; so too if
    /// the first record's seq is taken (`HeadMoved`: another writer appended first). The commit
    /// waits for `gate` (the records' other copy synced); if it does not pass, nothing is
    /// written and the error (`Unavailable`) says why.
    async fn append_audit_witnessing(
        &self,
        rows: &[AuditRow],
        versions: &[OwnedVersion],
        gate: CommitGate,
    ) -> Result<Witnessed>;
    async fn query_audit(&self, q: &AuditQuery) -> Result<Vec<AuditRow>>;
    /// The record with the largest `seq`.
    async fn audit_head(&self) -> Result<Option<AuditRow>>;
    async fn add_audit_checkpoint(&self, c: &AuditCheckpoint) -> Result<()>;
    /// Every checkpoint, by `seq`.
    async fn list_audit_checkpoints(&self) -> Result<Vec<AuditCheckpoint>>;
    /// Deletes the records up to `seq` (and older checkpoints) and stores `anchor` under the
    /// meta key `audit/anchor`, in one transaction. Returns how many records went.
    async fn purge_audit_through(&self, seq: i64, anchor: &[u8]) -> Result<u64>;
}

/// Everything Coffer persists, one area trait each; every backend implements all of them.
/// Each method is atomic; write methods are durable on return.
pub trait Store:
    MetaStore + DirectoryStore + RbacStore + VaultStore + ObjectStore + AuditStore + Send + Sync + std::fmt::Debug
{
}

impl<T: MetaStore + DirectoryStore + RbacStore + VaultStore + ObjectStore + AuditStore + Send + Sync + std::fmt::Debug>
    Store for T
{
}
