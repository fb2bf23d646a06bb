//! SQLite: Instance metadata.
use super::*;

#[async_trait]
impl MetaStore for SqliteStore {
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

    async fn wrapped_vault_keys(&self) -> Result<Vec<(String, Vec<u8>)>> {
        let rows = sqlx::query("SELECT id, wrapped_key FROM vaults ORDER BY id")
            .fetch_all(&self.pool())
            .await
            .map_err(|e| self.fail(e))?;
        rows.iter()
            .map(|r| {
                Ok((r.try_get("id").map_err(|e| self.fail(e))?, r.try_get("wrapped_key").map_err(|e| self.fail(e))?))
            })
            .collect()
    }

    async fn replace_root_wrapped(&self, r: &RootWrapped) -> Result<()> {
        // The vault rows are memoized: the guard invalidates them after the commit.
        let _w = self.write_directory().await?;
        let mut tx = self.pool().begin().await.map_err(|e| self.fail(e))?;
        for (id, wrapped) in &r.vaults {
            let done = sqlx::query("UPDATE vaults SET wrapped_key = $1 WHERE id = $2")
                .bind(wrapped)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.fail(e))?;
            if done.rows_affected() != 1 {
                return Err(Error::conflict(None, format!("vault {id} is not in the store; nothing was rewrapped")));
            }
        }
        for (tenant, kid, sealed) in &r.signing_keys {
            let done = sqlx::query("UPDATE signing_keys SET sealed_pkcs8 = $1 WHERE tenant_id = $2 AND kid = $3")
                .bind(sealed)
                .bind(tenant)
                .bind(kid)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.fail(e))?;
            if done.rows_affected() != 1 {
                return Err(Error::conflict(
                    None,
                    format!("signing key {kid} is not in the store; nothing was rewrapped"),
                ));
            }
        }
        for (key, value) in &r.meta {
            sqlx::query(
                "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .bind(key)
            .bind(value)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.fail(e))?;
        }
        tx.commit().await.map_err(|e| self.fail(e))?;
        Ok(())
    }
}
