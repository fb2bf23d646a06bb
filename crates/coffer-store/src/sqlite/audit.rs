//! SQLite: The audit log's records and checkpoints.
use super::*;

/// Inserts audit rows inside the caller's transaction; `HeadMoved` (and the caller rolls
/// back) if a seq is taken.
pub(super) async fn insert_audit_rows(conn: &mut sqlx::SqliteConnection, rows: &[AuditRow]) -> Result<Witnessed> {
    // Many rows per statement: each statement is a round trip to the connection's thread,
    // which cost more than the insert itself.
    for chunk in rows.chunks(AUDIT_ROWS_PER_INSERT) {
        if let Err(e) = audit_insert(chunk).build().execute(&mut *conn).await {
            return seq_taken(e);
        }
    }
    Ok(Witnessed::Written)
}

/// A seq already stored means another writer moved the chain's head on; anything else is the
/// store's failure.
fn seq_taken(e: sqlx::Error) -> Result<Witnessed> {
    if is_unique_violation(&e) { Ok(Witnessed::HeadMoved) } else { Err(backend(e)) }
}

/// Inserts an audit batch that fits one statement as that statement alone: SQLite makes a lone
/// statement its own transaction, all rows or none, with one round trip to the connection's
/// thread instead of three (begin, insert, commit) — under load each trip waits for a core.
/// `None` if the batch is too large for one statement.
pub(super) async fn insert_audit_batch_alone(pool: &SqlitePool, rows: &[AuditRow]) -> Option<Result<Witnessed>> {
    if rows.is_empty() || rows.len() > AUDIT_ROWS_PER_INSERT {
        return None;
    }
    Some(match audit_insert(rows).build().execute(pool).await {
        Ok(_) => Ok(Witnessed::Written),
        Err(e) => seq_taken(e),
    })
}

fn audit_insert(rows: &[AuditRow]) -> sqlx::QueryBuilder<sqlx::Sqlite> {
    let mut insert = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
        "INSERT INTO audit_records (seq, time_ms, vault, caller, operation, result, object, body) ",
    );
    insert.push_values(rows, |mut row, r| {
        row.push_bind(r.seq)
            .push_bind(r.time_ms)
            .push_bind(r.vault.as_deref())
            .push_bind(r.caller.as_deref())
            .push_bind(&r.operation)
            .push_bind(&r.result)
            .push_bind(r.object.as_deref())
            .push_bind(&r.body);
    });
    insert
}

#[async_trait]
impl AuditStore for SqliteStore {
    async fn append_audit_witnessing(
        &self,
        rows: &[AuditRow],
        versions: &[OwnedVersion],
        gate: CommitGate,
    ) -> Result<Witnessed> {
        let _timer = self.timer(if versions.is_empty() { "append_audit" } else { "append_audit_witnessing" });
        self.append_audit_grouped(rows, versions, gate).await
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
}
