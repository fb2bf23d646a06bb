//! The audit log (`AuditStore`).
use super::*;

pub(super) fn audit_row(seq: i64, vault: &str, caller: &str, result: &str) -> AuditRow {
    AuditRow {
        seq,
        time_ms: seq * 1000,
        vault: Some(vault.into()),
        caller: Some(caller.into()),
        operation: if seq % 2 == 0 { "SecretGet".into() } else { "SecretSet".into() },
        result: result.into(),
        object: Some("db".into()),
        body: format!("{{\"seq\":{seq}}}"),
    }
}

pub async fn audit(store: &dyn Store) {
    assert_eq!(store.audit_head().await.expect("empty head"), None);
    let rows: Vec<AuditRow> = (1..=6)
        .map(|i| audit_row(i, if i <= 3 { "hr" } else { "lab" }, if i % 3 == 0 { "eve" } else { "ann" }, "success"))
        .collect();
    store.append_audit(&rows[..3]).await.expect("append");
    store.append_audit(&rows[3..]).await.expect("append more");
    // A batch with a taken seq is refused whole.
    let clash = vec![audit_row(7, "hr", "ann", "denied"), audit_row(6, "hr", "ann", "denied")];
    assert!(store.append_audit(&clash).await.is_err(), "a duplicate seq must fail the batch");
    assert_eq!(store.audit_head().await.expect("head").map(|r| r.seq), Some(6), "a failed batch writes nothing");

    let q = |f: &dyn Fn(&mut AuditQuery)| {
        let mut q = AuditQuery { limit: 100, ..Default::default() };
        f(&mut q);
        q
    };
    let seqs = |rows: Vec<AuditRow>| rows.into_iter().map(|r| r.seq).collect::<Vec<_>>();
    let all = store.query_audit(&q(&|_| {})).await.expect("all");
    assert_eq!(all, rows, "records come back as written, in seq order");
    let hr = store.query_audit(&q(&|q| q.vault = Some("HR".into()))).await.expect("vault");
    assert_eq!(seqs(hr), vec![1, 2, 3], "vault filter, case-insensitive");
    let eve_lab = store
        .query_audit(&q(&|q| {
            q.caller = Some("eve".into());
            q.vault = Some("lab".into());
        }))
        .await
        .expect("caller");
    assert_eq!(seqs(eve_lab), vec![6]);
    let window = store
        .query_audit(&q(&|q| {
            q.since_ms = Some(2000);
            q.until_ms = Some(4000);
            q.operation = Some("secretget".into());
        }))
        .await
        .expect("window");
    assert_eq!(seqs(window), vec![2, 4]);
    let newest = store
        .query_audit(&q(&|q| {
            q.newest_first = true;
            q.limit = 2;
            q.before_seq = Some(6);
        }))
        .await
        .expect("newest");
    assert_eq!(seqs(newest), vec![5, 4]);
    let after = store.query_audit(&q(&|q| q.after_seq = Some(4))).await.expect("after");
    assert_eq!(seqs(after), vec![5, 6]);

    for seq in [2, 5] {
        let c = AuditCheckpoint { seq, hash: format!("h{seq}"), time_ms: seq, signature: "sig".into() };
        store.add_audit_checkpoint(&c).await.expect("checkpoint");
    }
    assert_eq!(store.list_audit_checkpoints().await.expect("checkpoints").len(), 2);
    assert_eq!(store.purge_audit_through(3, b"anchor").await.expect("purge"), 3);
    assert_eq!(seqs(store.query_audit(&q(&|_| {})).await.expect("rest")), vec![4, 5, 6]);
    let left: Vec<i64> = store.list_audit_checkpoints().await.expect("left").into_iter().map(|c| c.seq).collect();
    assert_eq!(left, vec![5], "checkpoints older than the purge point go with the records");
    assert_eq!(store.get_meta("audit/anchor").await.expect("anchor"), Some(b"anchor".to_vec()));
}
