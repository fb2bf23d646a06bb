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
}
