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
use crate::{Store, StoreObserver};

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
];

/// While a fault lasts (the disk stays full), reopening the pool is logged at most this often.
const QUIET_REOPEN_LOGS: Duration = Duration::from_secs(10);

/// Audit rows inserted by one statement (8 parameters each, far below SQLite's limit).
const AUDIT_ROWS_PER_INSERT: usize = 100;

/// Columns of a version without the payload (lists) and with it (reads).
const VERSION_COLS: &str = "o.name, v.version, v.seq, v.enabled, v.nbf, v.exp, v.created, v.updated, v.content_type, v.tags, v.managed, v.meta, o.deleted_date, o.scheduled_purge_date";

#[derive(Debug)]
pub struct SqliteStore {
    /// The connections; replaced by a fresh pool after a fault (see `write_lock`).
    pool: std::sync::RwLock<SqlitePool>,
    /// How to open the pool again (a file database; `None` in memory, which cannot be reopened).
    reopen: Option<SqliteConnectOptions>,
    /// A fault (full disk, I/O error, a lock left behind) was seen since the pool was opened.
    faulted: std::sync::atomic::AtomicBool,
    /// When reopening the pool was last logged.
    reopened: std::sync::Mutex<Option<std::time::Instant>>,
    write: Mutex<()>,
    memos: Memos,
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
            write: Mutex::new(()),
            memos: Memos::default(),
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
        Ok(guard)
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
    let stored = StoredVersion {
        name: v.name.to_string(),
        version: v.version.to_string(),
        seq,
        attributes: v.attributes.clone(),
        tags: v.tags.clone(),
        content_type: v.content_type.map(str::to_string),
        managed: v.managed,
        payload: v.payload.to_vec(),
        meta: v.meta.map(str::to_string),
        deletion: None,
    };
    insert_version(tx, &v.at, &stored).await?;
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

#[async_trait]
impl Store for SqliteStore {
    async fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let row = sqlx::query("SELECT value FROM meta WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool())
            .await
            .map_err(|e| self.fail(e))?;
        row.map(|r| r.try_get("value").map_err(|e| self.fail(e))).transpose()
    }

    async fn put_meta_if_absent(&self, key: &str, value: &[u8]) -> Result<Vec<u8>> {
        let _w = self.write_lock().await?;
        sqlx::query("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
            .bind(key)
            .bind(value)
            .execute(&self.pool())
            .await
            .map_err(|e| self.fail(e))?;
        let row = sqlx::query("SELECT value FROM meta WHERE key = $1")
            .bind(key)
            .fetch_one(&self.pool())
            .await
            .map_err(|e| self.fail(e))?;
        row.try_get("value").map_err(|e| self.fail(e))
    }

    async fn put_meta(&self, key: &str, value: &[u8]) -> Result<()> {
        let _w = self.write_lock().await?;
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool())
        .await
        .map_err(|e| self.fail(e))?;
        Ok(())
    }

    async fn delete_meta(&self, key: &str) -> Result<bool> {
        let _w = self.write_lock().await?;
        let res = sqlx::query("DELETE FROM meta WHERE key = $1")
            .bind(key)
            .execute(&self.pool())
            .await
            .map_err(|e| self.fail(e))?;
        Ok(res.rows_affected() == 1)
    }

    async fn list_meta(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
        // substr rather than LIKE: a prefix may hold `%` or `_`.
        let rows = sqlx::query("SELECT key, value FROM meta WHERE substr(key, 1, length($1)) = $1 ORDER BY key")
            .bind(prefix)
            .fetch_all(&self.pool())
            .await
            .map_err(|e| self.fail(e))?;
        rows.iter()
            .map(|r| Ok((r.try_get("key").map_err(|e| self.fail(e))?, r.try_get("value").map_err(|e| self.fail(e))?)))
            .collect()
    }

    async fn create_tenant(&self, t: &Tenant) -> Result<()> {
        let _w = self.write_lock().await?;
        sqlx::query("INSERT INTO tenants (id, name, default_subscription_id, created) VALUES ($1, $2, $3, $4)")
            .bind(&t.id)
            .bind(&t.name)
            .bind(&t.default_subscription_id)
            .bind(t.created)
            .execute(&self.pool())
            .await
            .map_err(|e| self.fail(e))?;
        Ok(())
    }

    async fn get_tenant(&self, id: &str) -> Result<Option<Tenant>> {
        let row = sqlx::query("SELECT * FROM tenants WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool())
            .await
            .map_err(|e| self.fail(e))?;
        row.map(|r| tenant_from_row(&r)).transpose()
    }

    async fn list_tenants(&self) -> Result<Vec<Tenant>> {
        let rows = sqlx::query("SELECT * FROM tenants ORDER BY created, id")
            .fetch_all(&self.pool())
            .await
            .map_err(|e| self.fail(e))?;
        rows.iter().map(tenant_from_row).collect()
    }

    async fn create_principal(&self, p: &Principal) -> Result<()> {
        let _w = self.write_directory().await?;
        sqlx::query(
            "INSERT INTO principals (object_id, tenant_id, kind, name, client_id, enabled, tenant_admin, created)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&p.object_id)
        .bind(&p.tenant_id)
        .bind(p.kind.as_str())
        .bind(&p.name)
        .bind(p.client_id.as_deref())
        .bind(i64::from(p.enabled))
        .bind(i64::from(p.tenant_admin))
        .bind(p.created)
        .execute(&self.pool())
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                Error::conflict(None, "A principal with this id or client id already exists.")
            } else {
                backend(e)
            }
        })?;
        Ok(())
    }

    async fn get_principal(&self, object_id: &str) -> Result<Option<Principal>> {
        let _timer = self.timer("get_principal");
        let seen = match self.memos.principals.get(object_id) {
            Ok(hit) => return Ok(hit),
            Err(generation) => generation,
        };
        let row = sqlx::query("SELECT * FROM principals WHERE object_id = $1")
            .bind(object_id)
            .fetch_optional(&self.pool())
            .await
            .map_err(|e| self.fail(e))?;
        let principal = row.map(|r| principal_from_row(&r)).transpose()?;
        self.memos.principals.put(seen, object_id, principal.clone());
        Ok(principal)
    }

    async fn find_principal_by_client_id(&self, tenant_id: &str, client_id: &str) -> Result<Option<Principal>> {
        let row = sqlx::query("SELECT * FROM principals WHERE tenant_id = $1 AND client_id = $2")
            .bind(tenant_id)
            .bind(client_id)
            .fetch_optional(&self.pool())
            .await
            .map_err(|e| self.fail(e))?;
        row.map(|r| principal_from_row(&r)).transpose()
    }

    async fn add_credential(&self, c: &Credential) -> Result<()> {
        let _w = self.write_directory().await?;
        insert_credential(&self.pool(), c).await.map_err(|e| self.fail(e))
    }

    async fn list_credentials(&self, principal_id: &str) -> Result<Vec<Credential>> {
        let rows = sqlx::query("SELECT * FROM credentials WHERE principal_id = $1 ORDER BY created, id")
            .bind(principal_id)
            .fetch_all(&self.pool())
            .await
            .map_err(|e| self.fail(e))?;
        rows.iter().map(credential_from_row).collect()
    }

    async fn groups_of(&self, object_id: &str) -> Result<Vec<String>> {
        let _timer = self.timer("groups_of");
        let seen = match self.memos.groups.get(object_id) {
            Ok(hit) => return Ok(hit),
            Err(generation) => generation,
        };
        let rows = sqlx::query(
            "WITH RECURSIVE g(id) AS (
                SELECT group_id FROM group_members WHERE member_id = $1
                UNION SELECT gm.group_id FROM group_members gm JOIN g ON gm.member_id = g.id)
             SELECT id FROM g ORDER BY id",
        )
        .bind(object_id)
        .fetch_all(&self.pool())
        .await
        .map_err(|e| self.fail(e))?;
        let groups = rows.iter().map(|r| r.try_get("id").map_err(|e| self.fail(e))).collect::<Result<Vec<String>>>()?;
        self.memos.groups.put(seen, object_id, groups.clone());
        Ok(groups)
    }

    async fn add_signing_key(&self, k: &SigningKeyRecord) -> Result<()> {
        let _w = self.write_lock().await?;
        sqlx::query("INSERT INTO signing_keys (kid, tenant_id, sealed_pkcs8, created) VALUES ($1, $2, $3, $4)")
            .bind(&k.kid)
            .bind(&k.tenant_id)
            .bind(&k.sealed_pkcs8)
            .bind(k.created)
            .execute(&self.pool())
            .await
            .map_err(|e| self.fail(e))?;
        Ok(())
    }

    async fn list_signing_keys(&self, tenant_id: &str) -> Result<Vec<SigningKeyRecord>> {
        let rows = sqlx::query("SELECT * FROM signing_keys WHERE tenant_id = $1 ORDER BY created, kid")
            .bind(tenant_id)
            .fetch_all(&self.pool())
            .await
            .map_err(|e| self.fail(e))?;
        rows.iter()
            .map(|r| {
                Ok(SigningKeyRecord {
                    kid: r.try_get("kid").map_err(|e| self.fail(e))?,
                    tenant_id: r.try_get("tenant_id").map_err(|e| self.fail(e))?,
                    sealed_pkcs8: r.try_get("sealed_pkcs8").map_err(|e| self.fail(e))?,
                    created: r.try_get("created").map_err(|e| self.fail(e))?,
                })
            })
            .collect()
    }

    async fn create_vault(&self, v: &Vault, wrapped_key: &[u8]) -> Result<bool> {
        let _w = self.write_directory().await?;
        let mut tx = self.pool().begin().await.map_err(|e| self.fail(e))?;
        let created = insert_vault(&mut tx, v, &vault_props(v)?, wrapped_key).await.map_err(|e| self.fail(e))?;
        tx.commit().await.map_err(|e| self.fail(e))?;
        Ok(created)
    }

    async fn create_vault_with_owner(&self, v: &Vault, wrapped_key: &[u8], owner: &RoleAssignment) -> Result<bool> {
        let _w = self.write_directory().await?;
        let mut tx = self.pool().begin().await.map_err(|e| self.fail(e))?;
        if !insert_vault(&mut tx, v, &vault_props(v)?, wrapped_key).await.map_err(|e| self.fail(e))? {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO role_assignments (id, tenant_id, scope, role_definition_id, principal_id, created, created_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&owner.id)
        .bind(&owner.tenant_id)
        .bind(&owner.scope)
        .bind(&owner.role_definition_id)
        .bind(&owner.principal_id)
        .bind(owner.created)
        .bind(&owner.created_by)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.fail(e))?;
        tx.commit().await.map_err(|e| self.fail(e))?;
        Ok(true)
    }

    async fn get_vault_by_name(&self, name: &str) -> Result<Option<VaultRecord>> {
        let _timer = self.timer("get_vault_by_name");
        let key = coffer_core::names::name_key(name);
        let seen = match self.memos.vaults.get(&key) {
            Ok(hit) => return Ok(hit),
            Err(generation) => generation,
        };
        let row = sqlx::query("SELECT * FROM vaults WHERE name_key = $1")
            .bind(&key)
            .fetch_optional(&self.pool())
            .await
            .map_err(|e| self.fail(e))?;
        let vault = row.map(|r| vault_from_row(&r)).transpose()?;
        self.memos.vaults.put(seen, &key, vault.clone());
        Ok(vault)
    }

    async fn update_vault(&self, v: &Vault) -> Result<()> {
        let _w = self.write_directory().await?;
        sqlx::query(
            "UPDATE vaults SET props = $2, updated = $3, deleted_date = $4, scheduled_purge_date = $5 WHERE id = $1",
        )
        .bind(&v.id)
        .bind(vault_props(v)?)
        .bind(v.updated)
        .bind(v.deletion.map(|d| d.deleted_date))
        .bind(v.deletion.map(|d| d.scheduled_purge_date))
        .execute(&self.pool())
        .await
        .map_err(|e| self.fail(e))?;
        Ok(())
    }

    async fn recover_vault(&self, vault_id: &str, updated: i64) -> Result<bool> {
        let _w = self.write_directory().await?;
        let res = sqlx::query(
            "UPDATE vaults SET deleted_date = NULL, scheduled_purge_date = NULL, updated = $2
             WHERE id = $1 AND deleted_date IS NOT NULL AND purging = 0",
        )
        .bind(vault_id)
        .bind(updated)
        .execute(&self.pool())
        .await
        .map_err(|e| self.fail(e))?;
        Ok(res.rows_affected() == 1)
    }

    async fn claim_vault_purge(&self, vault_id: &str, due_by: Option<i64>) -> Result<bool> {
        let _w = self.write_directory().await?;
        let res = sqlx::query(
            "UPDATE vaults SET purging = 1
             WHERE id = $1 AND deleted_date IS NOT NULL AND ($2 IS NULL OR scheduled_purge_date <= $2)",
        )
        .bind(vault_id)
        .bind(due_by)
        .execute(&self.pool())
        .await
        .map_err(|e| self.fail(e))?;
        Ok(res.rows_affected() == 1)
    }

    async fn erase_vault(&self, vault_id: &str) -> Result<bool> {
        let _w = self.write_directory().await?;
        let mut tx = self.pool().begin().await.map_err(|e| self.fail(e))?;
        let name: Option<String> = sqlx::query("SELECT name_key FROM vaults WHERE id = $1 AND purging = 1")
            .bind(vault_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| self.fail(e))?
            .map(|r| r.try_get("name_key"))
            .transpose()
            .map_err(|e| self.fail(e))?;
        let Some(name) = name else { return Ok(false) };
        for stmt in [
            "DELETE FROM object_versions WHERE vault_id = $1",
            "DELETE FROM expiry_events WHERE vault_id = $1",
            "DELETE FROM objects WHERE vault_id = $1",
            "DELETE FROM vaults WHERE id = $1",
        ] {
            sqlx::query(stmt).bind(vault_id).execute(&mut *tx).await.map_err(|e| self.fail(e))?;
        }
        sqlx::query("DELETE FROM role_assignments WHERE scope = $1 OR substr(scope, 1, length($1) + 1) = $1 || '/'")
            .bind(format!("/vaults/{name}"))
            .execute(&mut *tx)
            .await
            .map_err(|e| self.fail(e))?;
        tx.commit().await.map_err(|e| self.fail(e))?;
        Ok(true)
    }

    async fn due_vaults(&self, now: i64, limit: usize) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT id FROM vaults WHERE deleted_date IS NOT NULL AND scheduled_purge_date <= $1 ORDER BY scheduled_purge_date LIMIT $2")
            .bind(now)
            .bind(limit as i64)
            .fetch_all(&self.pool())
            .await
            .map_err(|e| self.fail(e))?;
        rows.iter().map(|r| r.try_get("id").map_err(|e| self.fail(e))).collect()
    }

    async fn due_objects(&self, now: i64, limit: usize) -> Result<Vec<(String, String, ObjectKind, String)>> {
        let rows = sqlx::query(
            "SELECT o.vault_id, v.name AS vault_name, o.kind, o.name_key FROM objects o JOIN vaults v ON v.id = o.vault_id
             WHERE o.deleted_date IS NOT NULL AND o.scheduled_purge_date <= $1 AND v.deleted_date IS NULL
             ORDER BY o.scheduled_purge_date LIMIT $2",
        )
        .bind(now)
        .bind(limit as i64)
        .fetch_all(&self.pool())
        .await
        .map_err(|e| self.fail(e))?;
        rows.iter()
            .map(|r| {
                let kind: String = r.try_get("kind").map_err(|e| self.fail(e))?;
                Ok((
                    r.try_get("vault_id").map_err(|e| self.fail(e))?,
                    r.try_get("vault_name").map_err(|e| self.fail(e))?,
                    ObjectKind::parse(&kind).ok_or_else(|| Error::internal(format!("unknown kind {kind}")))?,
                    r.try_get("name_key").map_err(|e| self.fail(e))?,
                ))
            })
            .collect()
    }

    async fn put_resource_group(&self, rg: &ResourceGroup) -> Result<()> {
        let _w = self.write_lock().await?;
        sqlx::query(
            "INSERT INTO resource_groups (subscription_id, name_key, name, location, tags, created) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (subscription_id, name_key) DO UPDATE SET tags = excluded.tags",
        )
        .bind(&rg.subscription_id)
        .bind(rg.name.to_ascii_lowercase())
        .bind(&rg.name)
        .bind(&rg.location)
        .bind(tags_json(&rg.tags)?)
        .bind(rg.created)
        .execute(&self.pool())
        .await
        .map_err(|e| self.fail(e))?;
        Ok(())
    }

    async fn get_resource_group(&self, subscription_id: &str, name: &str) -> Result<Option<ResourceGroup>> {
        let row = sqlx::query("SELECT * FROM resource_groups WHERE subscription_id = $1 AND name_key = $2")
            .bind(subscription_id)
            .bind(name.to_ascii_lowercase())
            .fetch_optional(&self.pool())
            .await
            .map_err(|e| self.fail(e))?;
        row.map(|r| rg_from_row(&r)).transpose()
    }

    async fn list_resource_groups(&self, subscription_id: &str) -> Result<Vec<ResourceGroup>> {
        let rows = sqlx::query("SELECT * FROM resource_groups WHERE subscription_id = $1 ORDER BY name_key")
            .bind(subscription_id)
            .fetch_all(&self.pool())
            .await
            .map_err(|e| self.fail(e))?;
        rows.iter().map(rg_from_row).collect()
    }

    async fn delete_resource_group(&self, subscription_id: &str, name: &str) -> Result<bool> {
        let _w = self.write_lock().await?;
        let res = sqlx::query("DELETE FROM resource_groups WHERE subscription_id = $1 AND name_key = $2")
            .bind(subscription_id)
            .bind(name.to_ascii_lowercase())
            .execute(&self.pool())
            .await
            .map_err(|e| self.fail(e))?;
        Ok(res.rows_affected() == 1)
    }

    async fn list_vaults(&self, tenant_id: &str) -> Result<Vec<Vault>> {
        let rows = sqlx::query("SELECT * FROM vaults WHERE tenant_id = $1 ORDER BY name_key")
            .bind(tenant_id)
            .fetch_all(&self.pool())
            .await
            .map_err(|e| self.fail(e))?;
        rows.iter().map(|r| vault_from_row(r).map(|v| v.vault)).collect()
    }

    async fn update_principal(&self, p: &Principal) -> Result<bool> {
        let _w = self.write_directory().await?;
        update_principal_row(&self.pool(), p).await.map_err(|e| self.fail(e))
    }

    async fn delete_principal(&self, object_id: &str) -> Result<bool> {
        let _w = self.write_directory().await?;
        let mut tx = self.pool().begin().await.map_err(|e| self.fail(e))?;
        let res = sqlx::query("DELETE FROM principals WHERE object_id = $1")
            .bind(object_id)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.fail(e))?;
        if res.rows_affected() != 1 {
            return Ok(false);
        }
        for stmt in [
            "DELETE FROM credentials WHERE principal_id = $1",
            "DELETE FROM refresh_tokens WHERE principal_id = $1",
            "DELETE FROM group_members WHERE member_id = $1 OR group_id = $1",
            "DELETE FROM role_assignments WHERE principal_id = $1",
        ] {
            sqlx::query(stmt).bind(object_id).execute(&mut *tx).await.map_err(|e| self.fail(e))?;
        }
        tx.commit().await.map_err(|e| self.fail(e))?;
        Ok(true)
    }

    async fn list_principals(&self, tenant_id: &str) -> Result<Vec<Principal>> {
        let rows = sqlx::query("SELECT * FROM principals WHERE tenant_id = $1 ORDER BY lower(name), object_id")
            .bind(tenant_id)
            .fetch_all(&self.pool())
            .await
            .map_err(|e| self.fail(e))?;
        rows.iter().map(principal_from_row).collect()
    }

    async fn find_user(&self, tenant_id: &str, name: &str) -> Result<Option<Principal>> {
        let row =
            sqlx::query("SELECT * FROM principals WHERE tenant_id = $1 AND kind = 'user' AND lower(name) = lower($2)")
                .bind(tenant_id)
                .bind(name)
                .fetch_optional(&self.pool())
                .await
                .map_err(|e| self.fail(e))?;
        row.map(|r| principal_from_row(&r)).transpose()
    }

    async fn get_credential(&self, id: &str) -> Result<Option<Credential>> {
        let _timer = self.timer("get_credential");
        let seen = match self.memos.credentials.get(id) {
            Ok(hit) => return Ok(hit),
            Err(generation) => generation,
        };
        let row = sqlx::query("SELECT * FROM credentials WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool())
            .await
            .map_err(|e| self.fail(e))?;
        let credential = row.map(|r| credential_from_row(&r)).transpose()?;
        self.memos.credentials.put(seen, id, credential.clone());
        Ok(credential)
    }

    async fn replace_credential(&self, p: &Principal, c: &Credential) -> Result<bool> {
        let _w = self.write_directory().await?;
        let mut tx = self.pool().begin().await.map_err(|e| self.fail(e))?;
        if !update_principal_row(&mut *tx, p).await.map_err(|e| self.fail(e))? {
            return Ok(false);
        }
        for stmt in [
            "DELETE FROM refresh_tokens WHERE credential_id IN (SELECT id FROM credentials WHERE principal_id = $1 AND kind = $2)",
            "DELETE FROM credentials WHERE principal_id = $1 AND kind = $2",
        ] {
            sqlx::query(stmt).bind(&p.object_id).bind(&c.kind).execute(&mut *tx).await.map_err(|e| self.fail(e))?;
        }
        let c = Credential { principal_id: p.object_id.clone(), ..c.clone() };
        insert_credential(&mut *tx, &c).await.map_err(|e| self.fail(e))?;
        tx.commit().await.map_err(|e| self.fail(e))?;
        Ok(true)
    }

    async fn remove_credential(&self, principal_id: &str, id: &str) -> Result<bool> {
        let _w = self.write_directory().await?;
        let mut tx = self.pool().begin().await.map_err(|e| self.fail(e))?;
        let res = sqlx::query("DELETE FROM credentials WHERE principal_id = $1 AND id = $2")
            .bind(principal_id)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.fail(e))?;
        sqlx::query("DELETE FROM refresh_tokens WHERE credential_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.fail(e))?;
        tx.commit().await.map_err(|e| self.fail(e))?;
        Ok(res.rows_affected() == 1)
    }

    async fn add_group_member(&self, group_id: &str, member_id: &str) -> Result<bool> {
        let _w = self.write_directory().await?;
        let res = sqlx::query("INSERT INTO group_members (group_id, member_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(group_id)
            .bind(member_id)
            .execute(&self.pool())
            .await
            .map_err(|e| self.fail(e))?;
        Ok(res.rows_affected() == 1)
    }

    async fn remove_group_member(&self, group_id: &str, member_id: &str) -> Result<bool> {
        let _w = self.write_directory().await?;
        let res = sqlx::query("DELETE FROM group_members WHERE group_id = $1 AND member_id = $2")
            .bind(group_id)
            .bind(member_id)
            .execute(&self.pool())
            .await
            .map_err(|e| self.fail(e))?;
        Ok(res.rows_affected() == 1)
    }

    async fn group_members(&self, group_id: &str) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT member_id FROM group_members WHERE group_id = $1 ORDER BY member_id")
            .bind(group_id)
            .fetch_all(&self.pool())
            .await
            .map_err(|e| self.fail(e))?;
        rows.iter().map(|r| r.try_get("member_id").map_err(|e| self.fail(e))).collect()
    }

    async fn add_refresh_token(&self, t: &RefreshTokenRecord) -> Result<()> {
        let _w = self.write_lock().await?;
        insert_refresh_token(&self.pool(), t).await
    }

    async fn get_refresh_token(&self, id: &str) -> Result<Option<RefreshTokenRecord>> {
        let row = sqlx::query("SELECT * FROM refresh_tokens WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool())
            .await
            .map_err(|e| self.fail(e))?;
        row.map(|r| refresh_from_row(&r)).transpose()
    }

    async fn redeem_refresh_token(&self, id: &str, next: &RefreshTokenRecord, now: i64) -> Result<Redeemed> {
        let _w = self.write_lock().await?;
        let mut tx = self.pool().begin().await.map_err(|e| self.fail(e))?;
        sqlx::query("DELETE FROM refresh_tokens WHERE expires <= $1 AND id <> $2")
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.fail(e))?;
        let claimed = sqlx::query("UPDATE refresh_tokens SET used = 1 WHERE id = $1 AND used = 0")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.fail(e))?;
        let outcome = if claimed.rows_affected() == 1 {
            insert_refresh_token(&mut *tx, next).await?;
            Redeemed::Rotated
        } else {
            sqlx::query("DELETE FROM refresh_tokens WHERE family = (SELECT family FROM refresh_tokens WHERE id = $1)")
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.fail(e))?;
            Redeemed::Replayed
        };
        tx.commit().await.map_err(|e| self.fail(e))?;
        Ok(outcome)
    }

    async fn revoke_refresh_family(&self, id: &str) -> Result<bool> {
        let _w = self.write_lock().await?;
        let res = sqlx::query(
            "DELETE FROM refresh_tokens WHERE family = (SELECT family FROM refresh_tokens WHERE id = $1) OR id = $1",
        )
        .bind(id)
        .execute(&self.pool())
        .await
        .map_err(|e| self.fail(e))?;
        Ok(res.rows_affected() > 0)
    }

    async fn group_descendants(&self, group_id: &str) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "WITH RECURSIVE d(id) AS (
                SELECT member_id FROM group_members WHERE group_id = $1
                UNION SELECT gm.member_id FROM group_members gm JOIN d ON gm.group_id = d.id)
             SELECT id FROM d WHERE id <> $1 ORDER BY id",
        )
        .bind(group_id)
        .fetch_all(&self.pool())
        .await
        .map_err(|e| self.fail(e))?;
        rows.iter().map(|r| r.try_get("id").map_err(|e| self.fail(e))).collect()
    }

    async fn create_role_definition(&self, tenant_id: &str, role: &RoleDefinition, now: i64) -> Result<bool> {
        let _w = self.write_lock().await?;
        let body = serde_json::to_string(role).map_err(|e| Error::internal(format!("role: {e}")))?;
        let res = sqlx::query(
            "INSERT INTO role_definitions (id, tenant_id, name, body, created) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&role.id)
        .bind(tenant_id)
        .bind(&role.name)
        .bind(body)
        .bind(now)
        .execute(&self.pool())
        .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(self.fail(e)),
        }
    }

    async fn list_role_definitions(&self, tenant_id: &str) -> Result<Vec<RoleDefinition>> {
        let rows = sqlx::query("SELECT body FROM role_definitions WHERE tenant_id = $1 ORDER BY lower(name)")
            .bind(tenant_id)
            .fetch_all(&self.pool())
            .await
            .map_err(|e| self.fail(e))?;
        rows.iter()
            .map(|r| {
                let body: String = r.try_get("body").map_err(|e| self.fail(e))?;
                serde_json::from_str(&body).map_err(|e| Error::internal(format!("role: {e}")))
            })
            .collect()
    }

    async fn delete_role_definition(&self, tenant_id: &str, id: &str) -> Result<bool> {
        let _w = self.write_lock().await?;
        let res = sqlx::query("DELETE FROM role_definitions WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id)
            .bind(id)
            .execute(&self.pool())
            .await
            .map_err(|e| self.fail(e))?;
        Ok(res.rows_affected() == 1)
    }

    async fn create_role_assignment(&self, a: &RoleAssignment) -> Result<bool> {
        let _w = self.write_lock().await?;
        let res = sqlx::query(
            "INSERT INTO role_assignments (id, tenant_id, scope, role_definition_id, principal_id, created, created_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&a.id)
        .bind(&a.tenant_id)
        .bind(&a.scope)
        .bind(&a.role_definition_id)
        .bind(&a.principal_id)
        .bind(a.created)
        .bind(&a.created_by)
        .execute(&self.pool())
        .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(self.fail(e)),
        }
    }

    async fn get_role_assignment(&self, id: &str) -> Result<Option<RoleAssignment>> {
        let row = sqlx::query("SELECT * FROM role_assignments WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool())
            .await
            .map_err(|e| self.fail(e))?;
        row.map(|r| assignment_from_row(&r)).transpose()
    }

    async fn delete_role_assignment(&self, id: &str) -> Result<bool> {
        let _w = self.write_lock().await?;
        let res = sqlx::query("DELETE FROM role_assignments WHERE id = $1")
            .bind(id)
            .execute(&self.pool())
            .await
            .map_err(|e| self.fail(e))?;
        Ok(res.rows_affected() == 1)
    }

    async fn list_role_assignments(
        &self,
        tenant_id: &str,
        scope_prefix: Option<&str>,
        principal_id: Option<&str>,
    ) -> Result<Vec<RoleAssignment>> {
        // `/vaults/a` must not match `/vaults/ab`: match the scope itself or what lies below it.
        let prefix = scope_prefix.map(|p| p.trim_end_matches('/').to_string());
        let rows = sqlx::query(
            "SELECT * FROM role_assignments WHERE tenant_id = $1
               AND ($2 IS NULL OR $2 = '' OR scope = $2 OR substr(scope, 1, length($2) + 1) = $2 || '/')
               AND ($3 IS NULL OR principal_id = $3)
             ORDER BY scope, created, id",
        )
        .bind(tenant_id)
        .bind(prefix)
        .bind(principal_id)
        .fetch_all(&self.pool())
        .await
        .map_err(|e| self.fail(e))?;
        rows.iter().map(assignment_from_row).collect()
    }

    async fn assignments_for(&self, principal_ids: &[String], scopes: &[String]) -> Result<Vec<RoleAssignment>> {
        let _timer = self.timer("assignments_for");
        if principal_ids.is_empty() || scopes.is_empty() {
            return Ok(Vec::new());
        }
        // Placeholders only: every value is bound. The (scope, principal_id) index answers it.
        let sp: Vec<String> = (1..=scopes.len()).map(|i| format!("${i}")).collect();
        let pp: Vec<String> =
            (scopes.len() + 1..=scopes.len() + principal_ids.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT * FROM role_assignments WHERE scope IN ({}) AND principal_id IN ({}) ORDER BY scope, created, id",
            sp.join(", "),
            pp.join(", ")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for s in scopes {
            q = q.bind(s);
        }
        for p in principal_ids {
            q = q.bind(p);
        }
        let rows = q.fetch_all(&self.pool()).await.map_err(|e| self.fail(e))?;
        rows.iter().map(assignment_from_row).collect()
    }

    async fn count_assignments_of_role(&self, role_definition_id: &str) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM role_assignments WHERE role_definition_id = $1")
            .bind(role_definition_id)
            .fetch_one(&self.pool())
            .await
            .map_err(|e| self.fail(e))?;
        row.try_get("n").map_err(|e| self.fail(e))
    }

    async fn delete_assignments_under(&self, scope: &str) -> Result<u64> {
        let _w = self.write_lock().await?;
        let scope = scope.trim_end_matches('/');
        let res = sqlx::query(
            "DELETE FROM role_assignments WHERE scope = $1 OR substr(scope, 1, length($1) + 1) = $1 || '/'",
        )
        .bind(scope)
        .execute(&self.pool())
        .await
        .map_err(|e| self.fail(e))?;
        Ok(res.rows_affected())
    }

    async fn get_object_policy(&self, at: &ObjectRef<'_>) -> Result<Option<String>> {
        let row = at_query(
            "SELECT policy FROM objects WHERE vault_id = $1 AND kind = $2 AND name_key = $3 AND deleted_date IS NULL",
            at,
        )
        .fetch_optional(&self.pool())
        .await
        .map_err(|e| self.fail(e))?;
        Ok(row.map(|r| r.try_get::<Option<String>, _>("policy")).transpose().map_err(|e| self.fail(e))?.flatten())
    }

    async fn set_object_policy(&self, at: &ObjectRef<'_>, policy: Option<&str>) -> Result<bool> {
        let _w = self.write_objects().await?;
        let res = at_query("UPDATE objects SET policy = $4 WHERE vault_id = $1 AND kind = $2 AND name_key = $3 AND deleted_date IS NULL", at)
            .bind(policy)
            .execute(&self.pool())
            .await
            .map_err(|e| self.fail(e))?;
        Ok(res.rows_affected() == 1)
    }

    async fn objects_with_policy(&self, kind: ObjectKind) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT v.name AS vault_name, o.name_key FROM objects o JOIN vaults v ON v.id = o.vault_id
             WHERE o.kind = $1 AND o.policy IS NOT NULL AND o.deleted_date IS NULL AND v.deleted_date IS NULL ORDER BY o.vault_id, o.name_key",
        )
        .bind(kind.as_str())
        .fetch_all(&self.pool())
        .await
        .map_err(|e| self.fail(e))?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("vault_name").map_err(|e| self.fail(e))?,
                    r.try_get("name_key").map_err(|e| self.fail(e))?,
                ))
            })
            .collect()
    }

    async fn put_version(&self, v: &NewVersion<'_>) -> Result<PutOutcome> {
        let _timer = self.timer("put_version");
        let _w = self.write_objects().await?;
        let mut tx = self.pool().begin().await.map_err(|e| self.fail(e))?;
        let outcome = put_version_in(&mut tx, v).await?;
        if outcome == PutOutcome::Written {
            tx.commit().await.map_err(|e| self.fail(e))?;
        }
        Ok(outcome)
    }

    async fn put_versions(&self, batch: &[NewVersion<'_>]) -> Result<Vec<PutOutcome>> {
        let _timer = self.timer("put_versions");
        let _w = self.write_objects().await?;
        let mut tx = self.pool().begin().await.map_err(|e| self.fail(e))?;
        let mut out = Vec::with_capacity(batch.len());
        for v in batch {
            out.push(put_version_in(&mut tx, v).await?);
        }
        tx.commit().await.map_err(|e| self.fail(e))?;
        Ok(out)
    }

    async fn get_version(
        &self,
        at: &ObjectRef<'_>,
        version: Option<&str>,
        deleted: bool,
    ) -> Result<Option<StoredVersion>> {
        let _timer = self.timer("get_version");
        let key = format!(
            "{}|{}|{}|{}|{deleted}",
            at.vault_id,
            at.kind.as_str(),
            at.name_key,
            version.map(str::to_ascii_lowercase).unwrap_or_default()
        );
        let seen = match self.memos.versions.get(&key) {
            Ok(hit) => return Ok(hit),
            Err(generation) => generation,
        };
        let row = match version {
            None => sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {VERSION_COLS}, v.payload FROM objects o JOIN object_versions v
                 ON v.vault_id = o.vault_id AND v.kind = o.kind AND v.name_key = o.name_key AND v.version = o.latest_version
                 WHERE o.vault_id = $1 AND o.kind = $2 AND o.name_key = $3 AND (o.deleted_date IS NOT NULL) = $4"
            )))
            .bind(at.vault_id)
            .bind(at.kind.as_str())
            .bind(at.name_key)
            .bind(deleted)
            .fetch_optional(&self.pool())
            .await,
            Some(ver) => sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {VERSION_COLS}, v.payload FROM objects o JOIN object_versions v
                 ON v.vault_id = o.vault_id AND v.kind = o.kind AND v.name_key = o.name_key
                 WHERE o.vault_id = $1 AND o.kind = $2 AND o.name_key = $3 AND v.version = $4 AND (o.deleted_date IS NOT NULL) = $5"
            )))
            .bind(at.vault_id)
            .bind(at.kind.as_str())
            .bind(at.name_key)
            .bind(ver.to_ascii_lowercase())
            .bind(deleted)
            .fetch_optional(&self.pool())
            .await,
        }
        .map_err(|e| self.fail(e))?;
        let found = row.map(|r| version_from_row(&r, true)).transpose()?;
        self.memos.versions.put(seen, &key, found.clone());
        Ok(found)
    }

    async fn get_head(&self, at: &ObjectRef<'_>) -> Result<Option<ObjectHead>> {
        let _timer = self.timer("get_head");
        let row = at_query("SELECT name, latest_version, deleted_date, scheduled_purge_date FROM objects WHERE vault_id = $1 AND kind = $2 AND name_key = $3", at)
            .fetch_optional(&self.pool())
            .await
            .map_err(|e| self.fail(e))?;
        row.map(|r| {
            Ok(ObjectHead {
                name: r.try_get("name").map_err(|e| self.fail(e))?,
                latest_version: r.try_get("latest_version").map_err(|e| self.fail(e))?,
                deletion: deletion_from(
                    r.try_get("deleted_date").map_err(|e| self.fail(e))?,
                    r.try_get("scheduled_purge_date").map_err(|e| self.fail(e))?,
                ),
            })
        })
        .transpose()
    }

    async fn update_version(
        &self,
        at: &ObjectRef<'_>,
        version: &str,
        a: &Attributes,
        tags: &Tags,
        content_type: Option<&str>,
        meta: Option<&str>,
    ) -> Result<bool> {
        let _timer = self.timer("update_version");
        let _w = self.write_objects().await?;
        let res = at_query("UPDATE object_versions SET enabled = $5, nbf = $6, exp = $7, updated = $8, tags = $9, content_type = $10, meta = $11
             WHERE vault_id = $1 AND kind = $2 AND name_key = $3 AND version = $4
               AND EXISTS (SELECT 1 FROM objects o WHERE o.vault_id = $1 AND o.kind = $2 AND o.name_key = $3 AND o.deleted_date IS NULL)", at)
        .bind(version)
        .bind(i64::from(a.enabled))
        .bind(a.not_before)
        .bind(a.expires)
        .bind(a.updated)
        .bind(tags_json(tags)?)
        .bind(content_type)
        .bind(meta)
        .execute(&self.pool())
        .await
        .map_err(|e| self.fail(e))?;
        Ok(res.rows_affected() == 1)
    }

    async fn list_objects(&self, q: &ListQuery<'_>) -> Result<Vec<StoredVersion>> {
        let _timer = self.timer("list_objects");
        let sql = format!(
            "SELECT {VERSION_COLS} FROM objects o JOIN object_versions v
             ON v.vault_id = o.vault_id AND v.kind = o.kind AND v.name_key = o.name_key AND v.version = o.latest_version
             WHERE o.vault_id = $1 AND o.kind = $2 AND (o.deleted_date IS NOT NULL) = $3 AND o.name_key > $4
             ORDER BY o.name_key LIMIT $5"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(q.vault_id)
            .bind(q.kind.as_str())
            .bind(q.deleted)
            .bind(q.after.unwrap_or(""))
            .bind(q.limit as i64)
            .fetch_all(&self.pool())
            .await
            .map_err(|e| self.fail(e))?;
        rows.iter().map(|r| version_from_row(r, false)).collect()
    }

    async fn list_versions(&self, at: &ObjectRef<'_>, after_seq: i64, limit: usize) -> Result<Vec<StoredVersion>> {
        let _timer = self.timer("list_versions");
        let sql = format!(
            "SELECT {VERSION_COLS} FROM objects o JOIN object_versions v
             ON v.vault_id = o.vault_id AND v.kind = o.kind AND v.name_key = o.name_key
             WHERE o.vault_id = $1 AND o.kind = $2 AND o.name_key = $3 AND o.deleted_date IS NULL AND v.seq > $4
             ORDER BY v.seq LIMIT $5"
        );
        let rows = at_query(sqlx::AssertSqlSafe(sql), at)
            .bind(after_seq)
            .bind(limit as i64)
            .fetch_all(&self.pool())
            .await
            .map_err(|e| self.fail(e))?;
        rows.iter().map(|r| version_from_row(r, false)).collect()
    }

    async fn all_versions(&self, at: &ObjectRef<'_>) -> Result<Vec<StoredVersion>> {
        let sql = format!(
            "SELECT {VERSION_COLS}, v.payload FROM objects o JOIN object_versions v
             ON v.vault_id = o.vault_id AND v.kind = o.kind AND v.name_key = o.name_key
             WHERE o.vault_id = $1 AND o.kind = $2 AND o.name_key = $3 ORDER BY v.seq"
        );
        let rows = at_query(sqlx::AssertSqlSafe(sql), at).fetch_all(&self.pool()).await.map_err(|e| self.fail(e))?;
        rows.iter().map(|r| version_from_row(r, true)).collect()
    }

    async fn delete_object(&self, at: &ObjectRef<'_>, d: &Deletion) -> Result<bool> {
        let _timer = self.timer("delete_object");
        let _w = self.write_objects().await?;
        let res = at_query(
            "UPDATE objects SET deleted_date = $4, scheduled_purge_date = $5
             WHERE vault_id = $1 AND kind = $2 AND name_key = $3 AND deleted_date IS NULL",
            at,
        )
        .bind(d.deleted_date)
        .bind(d.scheduled_purge_date)
        .execute(&self.pool())
        .await
        .map_err(|e| self.fail(e))?;
        Ok(res.rows_affected() == 1)
    }

    async fn recover_object(&self, at: &ObjectRef<'_>) -> Result<bool> {
        let _timer = self.timer("recover_object");
        let _w = self.write_objects().await?;
        let res = at_query(
            "UPDATE objects SET deleted_date = NULL, scheduled_purge_date = NULL
             WHERE vault_id = $1 AND kind = $2 AND name_key = $3 AND deleted_date IS NOT NULL",
            at,
        )
        .execute(&self.pool())
        .await
        .map_err(|e| self.fail(e))?;
        Ok(res.rows_affected() == 1)
    }

    async fn purge_object(&self, at: &ObjectRef<'_>, due_by: Option<i64>) -> Result<bool> {
        let _timer = self.timer("purge_object");
        let _w = self.write_objects().await?;
        let mut tx = self.pool().begin().await.map_err(|e| self.fail(e))?;
        let res = at_query(
            "DELETE FROM objects WHERE vault_id = $1 AND kind = $2 AND name_key = $3 AND deleted_date IS NOT NULL
               AND ($4 IS NULL OR scheduled_purge_date <= $4)",
            at,
        )
        .bind(due_by)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.fail(e))?;
        if res.rows_affected() != 1 {
            return Ok(false);
        }
        for stmt in [
            "DELETE FROM object_versions WHERE vault_id = $1 AND kind = $2 AND name_key = $3",
            "DELETE FROM expiry_events WHERE vault_id = $1 AND kind = $2 AND name_key = $3",
        ] {
            at_query(stmt, at).execute(&mut *tx).await.map_err(|e| self.fail(e))?;
        }
        tx.commit().await.map_err(|e| self.fail(e))?;
        Ok(true)
    }

    async fn restore_object(&self, at: &ObjectRef<'_>, name: &str, versions: &[StoredVersion]) -> Result<PutOutcome> {
        self.restore_objects(&[RestoredObject { at: *at, name, versions, policy: None }]).await
    }

    async fn restore_objects(&self, objects: &[RestoredObject<'_>]) -> Result<PutOutcome> {
        if objects.iter().any(|o| o.versions.is_empty()) {
            return Err(Error::bad_parameter("The backup holds no versions."));
        }
        let _w = self.write_objects().await?;
        let mut tx = self.pool().begin().await.map_err(|e| self.fail(e))?;
        for o in objects {
            let head =
                at_query("SELECT deleted_date FROM objects WHERE vault_id = $1 AND kind = $2 AND name_key = $3", &o.at)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(|e| self.fail(e))?;
            if let Some(r) = head {
                let deleted: Option<i64> = r.try_get("deleted_date").map_err(|e| self.fail(e))?;
                // Dropping the transaction rolls back what was inserted for earlier objects.
                return Ok(if deleted.is_some() { PutOutcome::NameDeleted } else { PutOutcome::NameTaken });
            }
            for v in o.versions {
                insert_version(&mut tx, &o.at, v).await?;
            }
            let Some(latest) = o.versions.iter().max_by_key(|v| v.seq) else { continue };
            at_query(
                "INSERT INTO objects (vault_id, kind, name_key, name, latest_version, latest_seq, policy) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &o.at,
            )
            .bind(o.name)
            .bind(&latest.version)
            .bind(latest.seq)
            .bind(o.policy)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.fail(e))?;
        }
        tx.commit().await.map_err(|e| self.fail(e))?;
        Ok(PutOutcome::Written)
    }

    async fn pending_expiry_events(&self, now: i64, near_until: i64, limit: usize) -> Result<Vec<ExpiringVersion>> {
        // Current versions only; those already announced (for the event now due) drop out, so
        // every call makes progress however many there are.
        let rows = sqlx::query(
            "SELECT o.vault_id, v.name AS vault_name, o.kind, o.name, o.name_key, ov.version, ov.exp
             FROM objects o JOIN vaults v ON v.id = o.vault_id
             JOIN object_versions ov ON ov.vault_id = o.vault_id AND ov.kind = o.kind AND ov.name_key = o.name_key
                  AND ov.version = o.latest_version
             WHERE o.deleted_date IS NULL AND v.deleted_date IS NULL AND ov.exp IS NOT NULL AND ov.exp <= $2
               AND ov.managed = 0
               AND NOT EXISTS (SELECT 1 FROM expiry_events e WHERE e.vault_id = o.vault_id AND e.kind = o.kind
                   AND e.name_key = o.name_key AND e.version = ov.version
                   AND e.event = CASE WHEN ov.exp <= $1 THEN 'expired' ELSE 'near-expiry' END)
             ORDER BY ov.exp LIMIT $3",
        )
        .bind(now)
        .bind(near_until)
        .bind(limit as i64)
        .fetch_all(&self.pool())
        .await
        .map_err(|e| self.fail(e))?;
        rows.iter()
            .map(|r| {
                let kind: String = r.try_get("kind").map_err(|e| self.fail(e))?;
                let expires: i64 = r.try_get("exp").map_err(|e| self.fail(e))?;
                Ok(ExpiringVersion {
                    expired: expires <= now,
                    name_key: r.try_get("name_key").map_err(|e| self.fail(e))?,
                    vault_id: r.try_get("vault_id").map_err(|e| self.fail(e))?,
                    vault_name: r.try_get("vault_name").map_err(|e| self.fail(e))?,
                    kind: ObjectKind::parse(&kind).ok_or_else(|| Error::internal(format!("unknown kind {kind}")))?,
                    name: r.try_get("name").map_err(|e| self.fail(e))?,
                    version: r.try_get("version").map_err(|e| self.fail(e))?,
                    expires,
                })
            })
            .collect()
    }

    async fn record_expiry_event(&self, v: &ExpiringVersion) -> Result<()> {
        let _w = self.write_lock().await?;
        sqlx::query(
            "INSERT INTO expiry_events (vault_id, kind, name_key, version, event) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT DO NOTHING",
        )
        .bind(&v.vault_id)
        .bind(v.kind.as_str())
        .bind(&v.name_key)
        .bind(&v.version)
        .bind(if v.expired { "expired" } else { "near-expiry" })
        .execute(&self.pool())
        .await
        .map_err(|e| self.fail(e))?;
        Ok(())
    }

    async fn append_audit(&self, rows: &[AuditRow]) -> Result<()> {
        let _timer = self.timer("append_audit");
        let _w = self.write_lock().await?;
        let mut tx = self.pool().begin().await.map_err(|e| self.fail(e))?;
        // Many rows per statement: each statement is a round trip to the connection's thread,
        // which cost more than the insert itself.
        for chunk in rows.chunks(AUDIT_ROWS_PER_INSERT) {
            let mut insert = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "INSERT INTO audit_records (seq, time_ms, vault, caller, operation, result, object, body) ",
            );
            insert.push_values(chunk, |mut row, r| {
                row.push_bind(r.seq)
                    .push_bind(r.time_ms)
                    .push_bind(r.vault.as_deref())
                    .push_bind(r.caller.as_deref())
                    .push_bind(&r.operation)
                    .push_bind(&r.result)
                    .push_bind(r.object.as_deref())
                    .push_bind(&r.body);
            });
            insert.build().execute(&mut *tx).await.map_err(|e| self.fail(e))?;
        }
        tx.commit().await.map_err(|e| self.fail(e))
    }

    async fn query_audit(&self, q: &AuditQuery) -> Result<Vec<AuditRow>> {
        let _timer = self.timer("query_audit");
        // Fixed fragments only; every value is bound, in the order the fragments were added.
        let texts = [
            (&q.vault, " AND vault = ? COLLATE NOCASE"),
            (&q.object, " AND object = ? COLLATE NOCASE"),
            (&q.caller, " AND caller = ? COLLATE NOCASE"),
            (&q.operation, " AND operation = ? COLLATE NOCASE"),
            (&q.result, " AND result = ?"),
        ];
        let numbers = [
            (q.since_ms, " AND time_ms >= ?"),
            (q.until_ms, " AND time_ms <= ?"),
            (q.after_seq, " AND seq > ?"),
            (q.before_seq, " AND seq < ?"),
        ];
        let mut sql = String::from("SELECT * FROM audit_records WHERE 1 = 1");
        let fragments = texts.iter().filter(|(v, _)| v.is_some()).map(|(_, f)| *f);
        let fragments = fragments.chain(numbers.iter().filter(|(v, _)| v.is_some()).map(|(_, f)| *f));
        let mut n = 0;
        for f in fragments {
            n += 1;
            sql.push_str(&f.replace('?', &format!("${n}")));
        }
        sql.push_str(if q.newest_first { " ORDER BY seq DESC" } else { " ORDER BY seq" });
        sql.push_str(&format!(" LIMIT ${}", n + 1));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for v in texts.iter().filter_map(|(v, _)| v.as_deref()) {
            query = query.bind(v);
        }
        for v in numbers.iter().filter_map(|(v, _)| *v) {
            query = query.bind(v);
        }
        let rows = query.bind(q.limit as i64).fetch_all(&self.pool()).await.map_err(|e| self.fail(e))?;
        rows.iter().map(audit_from_row).collect()
    }

    async fn audit_head(&self) -> Result<Option<AuditRow>> {
        let row = sqlx::query("SELECT * FROM audit_records ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&self.pool())
            .await
            .map_err(|e| self.fail(e))?;
        row.as_ref().map(audit_from_row).transpose()
    }

    async fn add_audit_checkpoint(&self, c: &AuditCheckpoint) -> Result<()> {
        let _w = self.write_lock().await?;
        sqlx::query(
            "INSERT INTO audit_checkpoints (seq, hash, time_ms, signature) VALUES ($1, $2, $3, $4)
             ON CONFLICT (seq) DO NOTHING",
        )
        .bind(c.seq)
        .bind(&c.hash)
        .bind(c.time_ms)
        .bind(&c.signature)
        .execute(&self.pool())
        .await
        .map_err(|e| self.fail(e))?;
        Ok(())
    }

    async fn list_audit_checkpoints(&self) -> Result<Vec<AuditCheckpoint>> {
        let rows = sqlx::query("SELECT seq, hash, time_ms, signature FROM audit_checkpoints ORDER BY seq")
            .fetch_all(&self.pool())
            .await
            .map_err(|e| self.fail(e))?;
        rows.iter()
            .map(|r| {
                Ok(AuditCheckpoint {
                    seq: r.try_get("seq").map_err(|e| self.fail(e))?,
                    hash: r.try_get("hash").map_err(|e| self.fail(e))?,
                    time_ms: r.try_get("time_ms").map_err(|e| self.fail(e))?,
                    signature: r.try_get("signature").map_err(|e| self.fail(e))?,
                })
            })
            .collect()
    }

    async fn purge_audit_through(&self, seq: i64, anchor: &[u8]) -> Result<u64> {
        let _w = self.write_lock().await?;
        let mut tx = self.pool().begin().await.map_err(|e| self.fail(e))?;
        let gone = sqlx::query("DELETE FROM audit_records WHERE seq <= $1")
            .bind(seq)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.fail(e))?
            .rows_affected();
        sqlx::query("DELETE FROM audit_checkpoints WHERE seq < $1")
            .bind(seq)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.fail(e))?;
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ('audit/anchor', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(anchor)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.fail(e))?;
        tx.commit().await.map_err(|e| self.fail(e))?;
        Ok(gone)
    }

    #[cfg(feature = "test-hooks")]
    async fn raw_swap_payloads(&self, a: (&ObjectRef<'_>, &str), b: (&ObjectRef<'_>, &str)) -> Result<()> {
        let _w = self.write_objects().await?;
        let mut tx = self.pool().begin().await.map_err(|e| self.fail(e))?;
        let mut payloads = Vec::new();
        for (at, ver) in [a, b] {
            let r = at_query("SELECT payload FROM object_versions WHERE vault_id = $1 AND kind = $2 AND name_key = $3 AND version = $4", at)
                .bind(ver)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| self.fail(e))?;
            payloads.push(r.try_get::<Vec<u8>, _>("payload").map_err(|e| self.fail(e))?);
        }
        for ((at, ver), payload) in [a, b].into_iter().zip(payloads.into_iter().rev()) {
            at_query("UPDATE object_versions SET payload = $5 WHERE vault_id = $1 AND kind = $2 AND name_key = $3 AND version = $4", at)
                .bind(ver)
                .bind(payload)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.fail(e))?;
        }
        tx.commit().await.map_err(|e| self.fail(e))
    }
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
    let res = sqlx::query("UPDATE principals SET name = $2, enabled = $3, tenant_admin = $4 WHERE object_id = $1")
        .bind(&p.object_id)
        .bind(&p.name)
        .bind(i64::from(p.enabled))
        .bind(i64::from(p.tenant_admin))
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
