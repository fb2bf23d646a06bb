//! SQLite: Custom role definitions and role assignments.
use super::*;

#[async_trait]
impl RbacStore for SqliteStore {
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
}
