//! SQLite: The directory: tenants, principals, credentials, groups, refresh tokens, signing keys.
use super::*;

#[async_trait]
impl DirectoryStore for SqliteStore {
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
            "INSERT INTO principals (object_id, tenant_id, kind, name, client_id, enabled, tenant_admin, created,
                 display_name, mail_nickname)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&p.object_id)
        .bind(&p.tenant_id)
        .bind(p.kind.as_str())
        .bind(&p.name)
        .bind(p.client_id.as_deref())
        .bind(i64::from(p.enabled))
        .bind(i64::from(p.tenant_admin))
        .bind(p.created)
        .bind(p.display_name.as_deref())
        .bind(p.mail_nickname.as_deref())
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
}
