//! The conformance suite against SQLite, in memory and on disk (reopened, to check persistence).
use coffer_store::{DirectoryStore, SqliteStore, VaultStore};

// Shared by every backend's tests (a PostgreSQL test file includes it the same way).
mod conformance;

#[tokio::test]
async fn sqlite_in_memory_conforms() {
    let store = SqliteStore::in_memory().await.expect("open");
    conformance::run_all(&store).await;
}

#[tokio::test]
async fn sqlite_file_conforms_and_persists() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("c.db");
    {
        let store = SqliteStore::open(&path).await.expect("open");
        conformance::run_all(&store).await;
    }
    let reopened = SqliteStore::open(&path).await.expect("reopen");
    assert!(reopened.get_tenant("t1").await.expect("tenant").is_some());
    assert!(reopened.get_vault_by_name("hr-app").await.expect("vault").is_some());
}
