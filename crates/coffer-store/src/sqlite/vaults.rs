//! SQLite: Vaults and resource groups.
use super::*;

#[async_trait]
impl VaultStore for SqliteStore {
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

    async fn soft_delete_vault(&self, v: &Vault) -> Result<()> {
        let _w = self.write_directory().await?;
        let mut tx = self.pool().begin().await.map_err(|e| self.fail(e))?;
        sqlx::query("UPDATE vaults SET updated = $2, deleted_date = $3, scheduled_purge_date = $4 WHERE id = $1")
            .bind(&v.id)
            .bind(v.updated)
            .bind(v.deletion.map(|d| d.deleted_date))
            .bind(v.deletion.map(|d| d.scheduled_purge_date))
            .execute(&mut *tx)
            .await
            .map_err(|e| self.fail(e))?;
        let scope = coffer_core::rbac::Scope::Vault(v.name.to_ascii_lowercase()).key();
        sqlx::query("DELETE FROM role_assignments WHERE scope = $1 OR substr(scope, 1, length($1) + 1) = $1 || '/'")
            .bind(&scope)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.fail(e))?;
        tx.commit().await.map_err(|e| self.fail(e))
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
        // The group's role assignments end with it, in the same transaction: a group made
        // again under the name does not inherit them.
        let _w = self.write_directory().await?;
        let mut tx = self.pool().begin().await.map_err(|e| self.fail(e))?;
        let res = sqlx::query("DELETE FROM resource_groups WHERE subscription_id = $1 AND name_key = $2")
            .bind(subscription_id)
            .bind(name.to_ascii_lowercase())
            .execute(&mut *tx)
            .await
            .map_err(|e| self.fail(e))?;
        let scope = coffer_core::rbac::Scope::ResourceGroup(name.to_lowercase()).key();
        sqlx::query(
            "DELETE FROM role_assignments WHERE scope = $1
             AND tenant_id IN (SELECT id FROM tenants WHERE default_subscription_id = $2)",
        )
        .bind(&scope)
        .bind(subscription_id)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.fail(e))?;
        tx.commit().await.map_err(|e| self.fail(e))?;
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
}
