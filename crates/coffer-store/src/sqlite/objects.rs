//! SQLite: Versioned objects, their lifecycle and expiry events.
use super::*;

#[async_trait]
impl ObjectStore for SqliteStore {
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
        self.put_version_grouped(v).await
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

    async fn put_version_group(&self, batch: &[NewVersion<'_>], policy: Option<&str>) -> Result<PutOutcome> {
        let _timer = self.timer("put_version_group");
        let _w = self.write_objects().await?;
        let mut tx = self.pool().begin().await.map_err(|e| self.fail(e))?;
        for v in batch {
            let outcome = put_version_in(&mut tx, v).await?;
            if outcome != PutOutcome::Written {
                // Dropping the transaction rolls back the versions written before this one.
                return Ok(outcome);
            }
        }
        if let (Some(policy), Some(last)) = (policy, batch.last()) {
            at_query("UPDATE objects SET policy = $4 WHERE vault_id = $1 AND kind = $2 AND name_key = $3", &last.at)
                .bind(policy)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.fail(e))?;
        }
        tx.commit().await.map_err(|e| self.fail(e))?;
        Ok(PutOutcome::Written)
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
             ORDER BY o.name_key LIMIT {}",
            limit_literal(q.limit)
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(q.vault_id)
            .bind(q.kind.as_str())
            .bind(q.deleted)
            .bind(q.after.unwrap_or(""))
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
             ORDER BY v.seq LIMIT {}",
            limit_literal(limit)
        );
        let rows = at_query(sqlx::AssertSqlSafe(sql), at)
            .bind(after_seq)
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
