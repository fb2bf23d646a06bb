//! The embedded SQLite store: WAL journal with `synchronous=FULL`, so a commit that returned is
//! on disk and survives `kill -9` or power loss. Writes are serialized by one async mutex (SQLite
//! has one writer anyway); reads run in parallel on the pool.
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use coffer_core::lifecycle::{Deletion, RetentionPolicy};
use coffer_core::object::{Attributes, ObjectKind, Tags};
use coffer_core::principal::{Principal, PrincipalKind};
use coffer_core::rbac::{RoleAssignment, RoleDefinition};
use coffer_core::vault::{AccessPolicy, Vault};
use coffer_core::{Error, Result};
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use tokio::sync::Mutex;

use crate::memo::Memo;
use crate::model::*;
use crate::{AuditStore, DirectoryStore, MetaStore, ObjectStore, RbacStore, StoreObserver, VaultStore};

// The store's areas, one `impl` each (the traits in `lib.rs`).
mod audit;
use audit::{insert_audit_batch_alone, insert_audit_rows};
mod directory;
mod group_commit;
mod meta;
mod objects;
mod rbac;
mod vaults;

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS tenants (id TEXT PRIMARY KEY, name TEXT NOT NULL, default_subscription_id TEXT NOT NULL, created INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS principals (object_id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
        client_id TEXT, enabled INTEGER NOT NULL, tenant_admin INTEGER NOT NULL, created INTEGER NOT NULL)",
    "CREATE UNIQUE INDEX IF NOT EXISTS principals_client_id ON principals (tenant_id, client_id) WHERE client_id IS NOT NULL",
    "CREATE UNIQUE INDEX IF NOT EXISTS principals_user_name ON principals (tenant_id, lower(name)) WHERE kind = 'user'",
    "CREATE TABLE IF NOT EXISTS credentials (id TEXT PRIMARY KEY, principal_id TEXT NOT NULL, kind TEXT NOT NULL,
        secret_hash TEXT NOT NULL, thumbprint TEXT, material BLOB, expires INTEGER, created INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS refresh_tokens (id TEXT PRIMARY KEY, principal_id TEXT NOT NULL, credential_id TEXT NOT NULL,
        secret_hash TEXT NOT NULL, expires INTEGER NOT NULL, created INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS refresh_tokens_principal ON refresh_tokens (principal_id)",
    "CREATE INDEX IF NOT EXISTS credentials_principal ON credentials (principal_id)",
    "CREATE TABLE IF NOT EXISTS group_members (group_id TEXT NOT NULL, member_id TEXT NOT NULL, PRIMARY KEY (group_id, member_id))",
    "CREATE INDEX IF NOT EXISTS group_members_member ON group_members (member_id)",
    "CREATE TABLE IF NOT EXISTS signing_keys (kid TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, sealed_pkcs8 BLOB NOT NULL, created INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS vaults (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, name TEXT NOT NULL, name_key TEXT NOT NULL UNIQUE,
        props TEXT NOT NULL, wrapped_key BLOB NOT NULL, created INTEGER NOT NULL, updated INTEGER NOT NULL,
        deleted_date INTEGER, scheduled_purge_date INTEGER, purging INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS resource_groups (subscription_id TEXT NOT NULL, name_key TEXT NOT NULL, name TEXT NOT NULL,
        location TEXT NOT NULL, tags TEXT NOT NULL, created INTEGER NOT NULL, PRIMARY KEY (subscription_id, name_key))",
    "CREATE TABLE IF NOT EXISTS objects (vault_id TEXT NOT NULL, kind TEXT NOT NULL, name_key TEXT NOT NULL, name TEXT NOT NULL,
        latest_version TEXT NOT NULL, latest_seq INTEGER NOT NULL, deleted_date INTEGER, scheduled_purge_date INTEGER,
        policy TEXT, PRIMARY KEY (vault_id, kind, name_key))",
    "CREATE TABLE IF NOT EXISTS object_versions (vault_id TEXT NOT NULL, kind TEXT NOT NULL, name_key TEXT NOT NULL, version TEXT NOT NULL,
        seq INTEGER NOT NULL, enabled INTEGER NOT NULL, nbf INTEGER, exp INTEGER, created INTEGER NOT NULL, updated INTEGER NOT NULL,
        content_type TEXT, tags TEXT NOT NULL, managed INTEGER NOT NULL, payload BLOB NOT NULL, meta TEXT,
        PRIMARY KEY (vault_id, kind, name_key, version))",
    "CREATE UNIQUE INDEX IF NOT EXISTS object_versions_seq ON object_versions (vault_id, kind, name_key, seq)",
    "CREATE TABLE IF NOT EXISTS role_definitions (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, name TEXT NOT NULL, body TEXT NOT NULL,
        created INTEGER NOT NULL)",
    "CREATE UNIQUE INDEX IF NOT EXISTS role_definitions_name ON role_definitions (tenant_id, lower(name))",
    "CREATE TABLE IF NOT EXISTS role_assignments (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, scope TEXT NOT NULL,
        role_definition_id TEXT NOT NULL, principal_id TEXT NOT NULL, created INTEGER NOT NULL, created_by TEXT NOT NULL)",
    "CREATE UNIQUE INDEX IF NOT EXISTS role_assignments_unique ON role_assignments (scope, principal_id, role_definition_id)",
    "CREATE INDEX IF NOT EXISTS role_assignments_principal ON role_assignments (principal_id)",
    "CREATE INDEX IF NOT EXISTS role_assignments_role ON role_assignments (role_definition_id)",
    "CREATE TABLE IF NOT EXISTS audit_records (seq INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, vault TEXT, caller TEXT,
        operation TEXT NOT NULL, result TEXT NOT NULL, object TEXT, body TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS audit_records_vault ON audit_records (vault, seq)",
    "CREATE INDEX IF NOT EXISTS audit_records_caller ON audit_records (caller, seq)",
    "CREATE INDEX IF NOT EXISTS audit_records_time ON audit_records (time_ms)",
    "CREATE TABLE IF NOT EXISTS expiry_events (vault_id TEXT NOT NULL, kind TEXT NOT NULL, name_key TEXT NOT NULL,
        version TEXT NOT NULL, event TEXT NOT NULL, PRIMARY KEY (vault_id, kind, name_key, version, event))",
    "CREATE INDEX IF NOT EXISTS object_versions_exp ON object_versions (exp) WHERE exp IS NOT NULL",
    "CREATE TABLE IF NOT EXISTS audit_checkpoints (seq INTEGER PRIMARY KEY, hash TEXT NOT NULL, time_ms INTEGER NOT NULL,
        signature TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS vaults_purge ON vaults (scheduled_purge_date) WHERE deleted_date IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS objects_purge ON objects (scheduled_purge_date) WHERE deleted_date IS NOT NULL",
];

/// Columns added after a table was first shipped: `(table, column, declaration)`, added at
/// start to a database made before them. (Constants only: never user input.)
const ADDED_COLUMNS: &[(&str, &str, &str)] = &[
    ("refresh_tokens", "family", "TEXT"),
    ("refresh_tokens", "through_app", "TEXT"),
    ("refresh_tokens", "used", "INTEGER NOT NULL DEFAULT 0"),
    ("principals", "display_name", "TEXT"),
    ("principals", "mail_nickname", "TEXT"),
];

/// While a fault lasts (the disk stays full), reopening the pool is logged at most this often.
const QUIET_REOPEN_LOGS: Duration = Duration::from_secs(10);

/// Audit rows inserted by one statement: 8 parameters each, 8,192 in all, below SQLite's limit
/// of 32,766; the audit writer's batches are at most this size, so a batch is one statement.
const AUDIT_ROWS_PER_INSERT: usize = 1024;

/// Columns of a version without the payload (lists) and with it (reads).
const VERSION_COLS: &str = "o.name, v.version, v.seq, v.enabled, v.nbf, v.exp, v.created, v.updated, v.content_type, v.tags, v.managed, v.meta, o.deleted_date, o.scheduled_purge_date";

#[derive(Debug)]
pub struct SqliteStore {
    /// The connections; replaced by a fresh pool after a fault (see `write_lock`).
    pool: std::sync::RwLock<SqlitePool>,
    /// How to open the pool again (a file database; `None` in memory, which cannot be reopened).
    reopen: Option<SqliteConnectOptions>,
    /// A fault (full disk, I/O error, a lock left behind) was seen since the pool was opened.
    faulted: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// When reopening the pool was last logged.
    reopened: std::sync::Mutex<Option<std::time::Instant>>,
    write: std::sync::Arc<Mutex<()>>,
    /// Changes waiting for the write lock (`group_commit`).
    queue: group_commit::WriteQueue,
    memos: std::sync::Arc<Memos>,
    observer: std::sync::OnceLock<std::sync::Arc<dyn StoreObserver>>,
}

/// Measures one store operation from its call to its return; reports on drop.
struct Timer<'a> {
    store: &'a SqliteStore,
    operation: &'static str,
    started: std::time::Instant,
}

impl Drop for Timer<'_> {
    fn drop(&mut self) {
        if let Some(o) = self.store.observer.get() {
            o.observe(self.operation, self.started.elapsed());
        }
    }
}

/// Object versions remembered at most: values are up to 25 KB (sealed secrets), so this bounds
/// the memo's memory to tens of megabytes.
const VERSION_MEMO_ENTRIES: usize = 2_000;

/// The rows every request reads, remembered (see `memo`).
#[derive(Debug)]
struct Memos {
    vaults: Memo<Option<VaultRecord>>,
    principals: Memo<Option<Principal>>,
    credentials: Memo<Option<Credential>>,
    groups: Memo<Vec<String>>,
    versions: Memo<Option<StoredVersion>>,
}

impl Default for Memos {
    fn default() -> Self {
        Self {
            vaults: Memo::default(),
            principals: Memo::default(),
            credentials: Memo::default(),
            groups: Memo::default(),
            versions: Memo::with_capacity(VERSION_MEMO_ENTRIES),
        }
    }
}

/// The write lock for a change that remembered rows may depend on. Dropped after the change
/// committed (or failed), it makes the memos it covers forget what they remembered: a change
/// to vaults, principals, credentials or group members (which may erase a vault's objects too)
/// covers every memo; a change to objects covers the object versions.
struct MemoWrite<'a> {
    _lock: tokio::sync::MutexGuard<'a, ()>,
    memos: &'a Memos,
    directory: bool,
}

impl Drop for MemoWrite<'_> {
    fn drop(&mut self) {
        if self.directory {
            self.memos.vaults.invalidate();
            self.memos.principals.invalidate();
            self.memos.credentials.invalidate();
            self.memos.groups.invalidate();
        }
        self.memos.versions.invalidate();
    }
}

/// A database error as the one error type. Faults of what is under the database — a full
/// disk, I/O errors, a lock that is not released, connections that are gone — are 503s that
/// name their cause (the request may succeed later); anything else is a bug (500).
fn backend(e: sqlx::Error) -> Error {
    let unavailable = |why: String| Error::unavailable("StoreUnavailable", why);
    match &e {
        sqlx::Error::Database(d) => {
            let code = d.code().and_then(|c| c.parse::<i32>().ok()).unwrap_or(0);
            match code & 0xff {
                13 => unavailable(format!(
                    "The disk holding the database is full ({}); changes are refused until space is freed.",
                    d.message()
                )),
                10 | 14 | 8 | 7 | 15 => unavailable(format!("The database cannot be read or written: {e}.")),
                5 | 6 => unavailable(format!("The database is busy and did not answer in time: {e}.")),
                _ => Error::internal(format!("store: {e}")),
            }
        }
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => {
            unavailable(format!("The database cannot be reached: {e}."))
        }
        _ => Error::internal(format!("store: {e}")),
    }
}

/// A page size written into the statement instead of bound: SQLite (3.47 and later) reads a
/// bound LIMIT to plan the query, and then prepares the statement again every time the value is
/// bound — a seventh of the instructions of a list page. An integer we computed, never text.
fn limit_literal(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// The vault settings kept as one JSON column.
#[derive(serde::Serialize, serde::Deserialize)]
struct VaultProps {
    subscription_id: String,
    resource_group: String,
    location: String,
    retention_days: u32,
    purge_protection: bool,
    enable_rbac_authorization: bool,
    access_policies: Vec<AccessPolicy>,
    tags: Tags,
    #[serde(default)]
    network_acls: Option<coffer_core::network::NetworkAcls>,
    created_by: String,
}

impl SqliteStore {
    pub async fn open(path: &Path) -> Result<Self> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            // Writes are serialized in this process, so waiting on SQLite's lock means a fault
            // (or another process): give up soon enough for the cause to reach the caller.
            .busy_timeout(Duration::from_secs(3));
        Self::with_options(opts).await
    }

    /// A private in-memory database, for tests.
    pub async fn in_memory() -> Result<Self> {
        let opts = SqliteConnectOptions::from_str("sqlite::memory:").map_err(backend)?;
        // One connection: each in-memory connection would be its own database.
        let pool = SqlitePoolOptions::new().max_connections(1).connect_with(opts).await.map_err(backend)?;
        let s = Self::with_pool(pool, None);
        s.migrate().await?;
        Ok(s)
    }

    async fn with_options(opts: SqliteConnectOptions) -> Result<Self> {
        let pool = Self::connect(&opts).await?;
        let s = Self::with_pool(pool, Some(opts));
        s.migrate().await?;
        Ok(s)
    }

    async fn connect(opts: &SqliteConnectOptions) -> Result<SqlitePool> {
        SqlitePoolOptions::new().max_connections(8).connect_with(opts.clone()).await.map_err(backend)
    }

    fn with_pool(pool: SqlitePool, reopen: Option<SqliteConnectOptions>) -> Self {
        Self {
            pool: std::sync::RwLock::new(pool),
            reopen,
            faulted: Default::default(),
            reopened: Default::default(),
            write: Default::default(),
            queue: Default::default(),
            memos: Default::default(),
            observer: Default::default(),
        }
    }

    /// The current pool (a cheap handle).
    fn pool(&self) -> SqlitePool {
        match self.pool.read() {
            Ok(p) => p.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// A store error, noting a fault so that the next write starts on fresh connections.
    fn fail(&self, e: sqlx::Error) -> Error {
        let err = backend(e);
        if err.kind == coffer_core::ErrorKind::Unavailable {
            self.faulted.store(true, std::sync::atomic::Ordering::Release);
        }
        err
    }

    /// Takes the write lock. After a fault the pool is first replaced, and no write runs
    /// until it has been: when SQLite ends a transaction on its own (a full disk rolls it
    /// back), sqlx can keep the connection believing it is still inside one, and the next
    /// "transaction" on it is only a savepoint in a transaction nobody commits — acknowledged
    /// writes that a restart loses, and a write lock held until then ("database is locked").
    /// Closing the old connections releases whatever they hold, and a fresh pool has none of
    /// it; if the database cannot be opened again yet, the write is refused (503).
    async fn write_lock(&self) -> Result<tokio::sync::MutexGuard<'_, ()>> {
        let guard = self.write.lock().await;
        self.reopen_if_faulted().await?;
        Ok(guard)
    }

    /// The write lock as a guard a spawned task can own (`group_commit`).
    async fn write_lock_owned(&self) -> Result<tokio::sync::OwnedMutexGuard<()>> {
        let guard = self.write.clone().lock_owned().await;
        self.reopen_if_faulted().await?;
        Ok(guard)
    }

    /// After a fault, replaces the pool (see `write_lock`); the write lock is held.
    async fn reopen_if_faulted(&self) -> Result<()> {
        if self.faulted.load(std::sync::atomic::Ordering::Acquire)
            && let Some(opts) = &self.reopen
        {
            let fresh = Self::connect(opts).await?;
            self.faulted.store(false, std::sync::atomic::Ordering::Release);
            let old = match self.pool.write() {
                Ok(mut p) => std::mem::replace(&mut *p, fresh),
                Err(poisoned) => std::mem::replace(&mut *poisoned.into_inner(), fresh),
            };
            if let Ok(mut at) = self.reopened.lock()
                && at.is_none_or(|t| t.elapsed() >= QUIET_REOPEN_LOGS)
            {
                tracing::warn!("the database had a fault: its connections were reopened");
                *at = Some(std::time::Instant::now());
            }
            tokio::spawn(async move { old.close().await });
        }
        Ok(())
    }

    /// Reports how long the operations a request waits on take (`/metrics`); set once.
    pub fn set_observer(&self, observer: std::sync::Arc<dyn StoreObserver>) {
        let _ = self.observer.set(observer);
    }

    fn timer(&self, operation: &'static str) -> Timer<'_> {
        Timer { store: self, operation, started: std::time::Instant::now() }
    }

    /// Takes the write lock for a change to vaults, principals, credentials or groups.
    async fn write_directory(&self) -> Result<MemoWrite<'_>> {
        Ok(MemoWrite { _lock: self.write_lock().await?, memos: &self.memos, directory: true })
    }

    /// Takes the write lock for a change to objects and their versions.
    async fn write_objects(&self) -> Result<MemoWrite<'_>> {
        Ok(MemoWrite { _lock: self.write_lock().await?, memos: &self.memos, directory: false })
    }

    async fn migrate(&self) -> Result<()> {
        let _w = self.write_lock().await?;
        let mut tx = self.pool().begin().await.map_err(|e| self.fail(e))?;
        for stmt in SCHEMA {
            sqlx::query(sqlx::AssertSqlSafe(*stmt)).execute(&mut *tx).await.map_err(|e| self.fail(e))?;
        }
        for (table, column, decl) in ADDED_COLUMNS {
            let exists: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT 1 FROM pragma_table_info('{table}') WHERE name = '{column}'"
            )))
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| self.fail(e))?;
            if exists.is_none() {
                let alter = format!("ALTER TABLE {table} ADD COLUMN {column} {decl}");
                sqlx::query(sqlx::AssertSqlSafe(alter)).execute(&mut *tx).await.map_err(|e| self.fail(e))?;
            }
        }
        // After the added columns exist: families are revoked whole, expired tokens dropped
        // on every redemption (by index, not by scanning the table).
        for stmt in [
            "CREATE INDEX IF NOT EXISTS refresh_tokens_family ON refresh_tokens (family)",
            "CREATE INDEX IF NOT EXISTS refresh_tokens_expires ON refresh_tokens (expires)",
        ] {
            sqlx::query(stmt).execute(&mut *tx).await.map_err(|e| self.fail(e))?;
        }
        tx.commit().await.map_err(|e| self.fail(e))
    }
}

fn principal_from_row(r: &SqliteRow) -> Result<Principal> {
    let kind: String = r.try_get("kind").map_err(backend)?;
    Ok(Principal {
        object_id: r.try_get("object_id").map_err(backend)?,
        tenant_id: r.try_get("tenant_id").map_err(backend)?,
        kind: PrincipalKind::parse(&kind).ok_or_else(|| Error::internal(format!("unknown principal kind {kind}")))?,
        name: r.try_get("name").map_err(backend)?,
        client_id: r.try_get("client_id").map_err(backend)?,
        enabled: r.try_get::<i64, _>("enabled").map_err(backend)? != 0,
        tenant_admin: r.try_get::<i64, _>("tenant_admin").map_err(backend)? != 0,
        created: r.try_get("created").map_err(backend)?,
        display_name: r.try_get("display_name").map_err(backend)?,
        mail_nickname: r.try_get("mail_nickname").map_err(backend)?,
    })
}

fn deletion_from(deleted: Option<i64>, purge: Option<i64>) -> Option<Deletion> {
    match (deleted, purge) {
        (Some(d), Some(p)) => Some(Deletion { deleted_date: d, scheduled_purge_date: p }),
        _ => None,
    }
}

fn vault_from_row(r: &SqliteRow) -> Result<VaultRecord> {
    let props: String = r.try_get("props").map_err(backend)?;
    let p: VaultProps = serde_json::from_str(&props).map_err(|e| Error::internal(format!("vault props: {e}")))?;
    let retention = RetentionPolicy::new(p.retention_days, p.purge_protection)?;
    Ok(VaultRecord {
        vault: Vault {
            id: r.try_get("id").map_err(backend)?,
            name: r.try_get("name").map_err(backend)?,
            tenant_id: r.try_get("tenant_id").map_err(backend)?,
            subscription_id: p.subscription_id,
            resource_group: p.resource_group,
            location: p.location,
            retention,
            enable_rbac_authorization: p.enable_rbac_authorization,
            access_policies: p.access_policies,
            tags: p.tags,
            network_acls: p.network_acls,
            created_by: p.created_by,
            created: r.try_get("created").map_err(backend)?,
            updated: r.try_get("updated").map_err(backend)?,
            deletion: deletion_from(
                r.try_get("deleted_date").map_err(backend)?,
                r.try_get("scheduled_purge_date").map_err(backend)?,
            ),
        },
        wrapped_key: r.try_get("wrapped_key").map_err(backend)?,
    })
}

/// Inserts a vault row: false if its name is taken (by a live or a deleted vault).
async fn insert_vault(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    v: &Vault,
    props: &str,
    wrapped_key: &[u8],
) -> std::result::Result<bool, sqlx::Error> {
    let res = sqlx::query(
        "INSERT INTO vaults (id, tenant_id, name, name_key, props, wrapped_key, created, updated, deleted_date, scheduled_purge_date)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL)",
    )
    .bind(&v.id)
    .bind(&v.tenant_id)
    .bind(&v.name)
    .bind(coffer_core::names::name_key(&v.name))
    .bind(props)
    .bind(wrapped_key)
    .bind(v.created)
    .bind(v.updated)
    .execute(&mut **tx)
    .await;
    match res {
        Ok(_) => Ok(true),
        Err(e) if is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

fn vault_props(v: &Vault) -> Result<String> {
    serde_json::to_string(&VaultProps {
        subscription_id: v.subscription_id.clone(),
        resource_group: v.resource_group.clone(),
        location: v.location.clone(),
        retention_days: v.retention.retention_days,
        purge_protection: v.retention.purge_protection,
        enable_rbac_authorization: v.enable_rbac_authorization,
        access_policies: v.access_policies.clone(),
        tags: v.tags.clone(),
        network_acls: v.network_acls.clone(),
        created_by: v.created_by.clone(),
    })
    .map_err(|e| Error::internal(format!("vault props: {e}")))
}

fn version_from_row(r: &SqliteRow, with_payload: bool) -> Result<StoredVersion> {
    let tags: String = r.try_get("tags").map_err(backend)?;
    Ok(StoredVersion {
        name: r.try_get("name").map_err(backend)?,
        version: r.try_get("version").map_err(backend)?,
        seq: r.try_get("seq").map_err(backend)?,
        attributes: Attributes {
            enabled: r.try_get::<i64, _>("enabled").map_err(backend)? != 0,
            not_before: r.try_get("nbf").map_err(backend)?,
            expires: r.try_get("exp").map_err(backend)?,
            created: r.try_get("created").map_err(backend)?,
            updated: r.try_get("updated").map_err(backend)?,
        },
        tags: serde_json::from_str(&tags).map_err(|e| Error::internal(format!("tags: {e}")))?,
        content_type: r.try_get("content_type").map_err(backend)?,
        managed: r.try_get::<i64, _>("managed").map_err(backend)? != 0,
        meta: r.try_get("meta").map_err(backend)?,
        payload: if with_payload { r.try_get("payload").map_err(backend)? } else { Vec::new() },
        deletion: deletion_from(
            r.try_get("deleted_date").map_err(backend)?,
            r.try_get("scheduled_purge_date").map_err(backend)?,
        ),
    })
}

/// A query whose first three parameters are an object's place: `$1` vault id, `$2` kind,
/// `$3` name key.
fn at_query<'q>(
    sql: impl sqlx::SqlSafeStr,
    at: &ObjectRef<'q>,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
    sqlx::query(sql).bind(at.vault_id).bind(at.kind.as_str()).bind(at.name_key)
}

fn tags_json(tags: &Tags) -> Result<String> {
    serde_json::to_string(tags).map_err(|e| Error::internal(format!("tags: {e}")))
}

/// One `put_version` inside a transaction: the next sequence number, the version, the head.
/// Changes nothing when the name belongs to a deleted object.
async fn put_version_in(tx: &mut sqlx::SqliteConnection, v: &NewVersion<'_>) -> Result<PutOutcome> {
    let head = at_query(
        "SELECT latest_seq, deleted_date FROM objects WHERE vault_id = $1 AND kind = $2 AND name_key = $3",
        &v.at,
    )
    .fetch_optional(&mut *tx)
    .await
    .map_err(backend)?;
    let seq = match &head {
        Some(r) => {
            if r.try_get::<Option<i64>, _>("deleted_date").map_err(backend)?.is_some() {
                return Ok(PutOutcome::NameDeleted);
            }
            r.try_get::<i64, _>("latest_seq").map_err(backend)? + 1
        }
        None => 1,
    };
    insert_version(tx, &v.at, &v.to_stored(seq)).await?;
    at_query("INSERT INTO objects (vault_id, kind, name_key, name, latest_version, latest_seq) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (vault_id, kind, name_key) DO UPDATE SET latest_version = excluded.latest_version, latest_seq = excluded.latest_seq", &v.at)
    .bind(v.name)
    .bind(v.version)
    .bind(seq)
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    Ok(PutOutcome::Written)
}

async fn insert_version(tx: &mut sqlx::SqliteConnection, at: &ObjectRef<'_>, v: &StoredVersion) -> Result<()> {
    at_query("INSERT INTO object_versions (vault_id, kind, name_key, version, seq, enabled, nbf, exp, created, updated, content_type, tags, managed, payload, meta)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)", at)
    .bind(&v.version)
    .bind(v.seq)
    .bind(i64::from(v.attributes.enabled))
    .bind(v.attributes.not_before)
    .bind(v.attributes.expires)
    .bind(v.attributes.created)
    .bind(v.attributes.updated)
    .bind(v.content_type.as_deref())
    .bind(tags_json(&v.tags)?)
    .bind(i64::from(v.managed))
    .bind(&v.payload)
    .bind(v.meta.as_deref())
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    Ok(())
}

fn audit_from_row(r: &SqliteRow) -> Result<AuditRow> {
    Ok(AuditRow {
        seq: r.try_get("seq").map_err(backend)?,
        time_ms: r.try_get("time_ms").map_err(backend)?,
        vault: r.try_get("vault").map_err(backend)?,
        caller: r.try_get("caller").map_err(backend)?,
        operation: r.try_get("operation").map_err(backend)?,
        result: r.try_get("result").map_err(backend)?,
        object: r.try_get("object").map_err(backend)?,
        body: r.try_get("body").map_err(backend)?,
    })
}

fn credential_from_row(r: &SqliteRow) -> Result<Credential> {
    Ok(Credential {
        id: r.try_get("id").map_err(backend)?,
        principal_id: r.try_get("principal_id").map_err(backend)?,
        kind: r.try_get("kind").map_err(backend)?,
        secret_hash: r.try_get("secret_hash").map_err(backend)?,
        thumbprint: r.try_get("thumbprint").map_err(backend)?,
        material: r.try_get("material").map_err(backend)?,
        expires: r.try_get("expires").map_err(backend)?,
        created: r.try_get("created").map_err(backend)?,
    })
}

async fn insert_credential<'e, E: sqlx::SqliteExecutor<'e>>(
    exec: E,
    c: &Credential,
) -> std::result::Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO credentials (id, principal_id, kind, secret_hash, thumbprint, material, expires, created)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&c.id)
    .bind(&c.principal_id)
    .bind(&c.kind)
    .bind(&c.secret_hash)
    .bind(c.thumbprint.as_deref())
    .bind(c.material.as_deref())
    .bind(c.expires)
    .bind(c.created)
    .execute(exec)
    .await
    .map(drop)
}

/// Updates a principal's row: false if there is none.
async fn update_principal_row<'e, E: sqlx::SqliteExecutor<'e>>(
    exec: E,
    p: &Principal,
) -> std::result::Result<bool, sqlx::Error> {
    let res = sqlx::query(
        "UPDATE principals SET name = $2, enabled = $3, tenant_admin = $4, display_name = $5, mail_nickname = $6
         WHERE object_id = $1",
    )
    .bind(&p.object_id)
    .bind(&p.name)
    .bind(i64::from(p.enabled))
    .bind(i64::from(p.tenant_admin))
    .bind(p.display_name.as_deref())
    .bind(p.mail_nickname.as_deref())
    .execute(exec)
    .await?;
    Ok(res.rows_affected() == 1)
}

async fn insert_refresh_token<'e, E: sqlx::SqliteExecutor<'e>>(exec: E, t: &RefreshTokenRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO refresh_tokens (id, principal_id, credential_id, secret_hash, expires, created, family, through_app, used)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&t.id)
    .bind(&t.principal_id)
    .bind(&t.credential_id)
    .bind(&t.secret_hash)
    .bind(t.expires)
    .bind(t.created)
    .bind(&t.family)
    .bind(&t.through_app)
    .bind(i64::from(t.used))
    .execute(exec)
    .await
    .map_err(backend)?;
    Ok(())
}

fn refresh_from_row(r: &SqliteRow) -> Result<RefreshTokenRecord> {
    let id: String = r.try_get("id").map_err(backend)?;
    Ok(RefreshTokenRecord {
        family: r.try_get::<Option<String>, _>("family").map_err(backend)?.unwrap_or_else(|| id.clone()),
        through_app: r.try_get("through_app").map_err(backend)?,
        used: r.try_get::<i64, _>("used").map_err(backend)? != 0,
        id,
        principal_id: r.try_get("principal_id").map_err(backend)?,
        credential_id: r.try_get("credential_id").map_err(backend)?,
        secret_hash: r.try_get("secret_hash").map_err(backend)?,
        expires: r.try_get("expires").map_err(backend)?,
        created: r.try_get("created").map_err(backend)?,
    })
}

fn assignment_from_row(r: &SqliteRow) -> Result<RoleAssignment> {
    Ok(RoleAssignment {
        id: r.try_get("id").map_err(backend)?,
        tenant_id: r.try_get("tenant_id").map_err(backend)?,
        scope: r.try_get("scope").map_err(backend)?,
        role_definition_id: r.try_get("role_definition_id").map_err(backend)?,
        principal_id: r.try_get("principal_id").map_err(backend)?,
        created: r.try_get("created").map_err(backend)?,
        created_by: r.try_get("created_by").map_err(backend)?,
    })
}

fn rg_from_row(r: &SqliteRow) -> Result<ResourceGroup> {
    let tags: String = r.try_get("tags").map_err(backend)?;
    Ok(ResourceGroup {
        subscription_id: r.try_get("subscription_id").map_err(backend)?,
        name: r.try_get("name").map_err(backend)?,
        location: r.try_get("location").map_err(backend)?,
        tags: serde_json::from_str(&tags).map_err(|e| Error::internal(format!("tags: {e}")))?,
        created: r.try_get("created").map_err(backend)?,
    })
}

fn tenant_from_row(r: &SqliteRow) -> Result<Tenant> {
    Ok(Tenant {
        id: r.try_get("id").map_err(backend)?,
        name: r.try_get("name").map_err(backend)?,
        default_subscription_id: r.try_get("default_subscription_id").map_err(backend)?,
        created: r.try_get("created").map_err(backend)?,
    })
}
