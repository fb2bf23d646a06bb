//! Versioned objects, listing, restore, bulk loads and expiry events (`ObjectStore`).
use super::*;

/// `put_versions` gives each version the outcome `put_version` would.
pub async fn bulk_put(store: &dyn Store) {
    assert_eq!(put(store, "v1", "bulk-gone", "g1", b"x").await, PutOutcome::Written);
    let key = "bulk-gone";
    let deletion = Deletion { deleted_date: 20, scheduled_purge_date: 30 };
    assert!(
        store
            .delete_object(&ObjectRef { vault_id: "v1", kind: ObjectKind::Secret, name_key: key }, &deletion)
            .await
            .expect("delete")
    );
    let (attributes, tags) = (Attributes::new(10), Tags::new());
    let names = ["bulk-a", "bulk-gone", "bulk-a", "bulk-b"];
    let keys: Vec<String> = names.iter().map(|n| n.to_ascii_lowercase()).collect();
    let versions = ["b1", "b2", "b3", "b4"];
    let batch: Vec<NewVersion<'_>> = names
        .iter()
        .zip(&keys)
        .zip(versions)
        .map(|((name, key), version)| NewVersion {
            at: ObjectRef { vault_id: "v1", kind: ObjectKind::Secret, name_key: key },
            name,
            version,
            attributes: &attributes,
            tags: &tags,
            content_type: None,
            managed: false,
            payload: b"p",
            meta: None,
        })
        .collect();
    let outcomes = store.put_versions(&batch).await.expect("put_versions");
    assert_eq!(outcomes, vec![PutOutcome::Written, PutOutcome::NameDeleted, PutOutcome::Written, PutOutcome::Written]);
    let a = ObjectRef { vault_id: "v1", kind: ObjectKind::Secret, name_key: "bulk-a" };
    let latest = store.get_version(&a, None, false).await.expect("get").expect("bulk-a");
    assert_eq!((latest.version.as_str(), latest.seq), ("b3", 2), "the second version of bulk-a is its latest");
    let b = ObjectRef { vault_id: "v1", kind: ObjectKind::Secret, name_key: "bulk-b" };
    assert!(store.get_version(&b, Some("b4"), false).await.expect("get").is_some());
    let gone = ObjectRef { vault_id: "v1", kind: ObjectKind::Secret, name_key: key };
    assert!(
        store.get_version(&gone, Some("b2"), true).await.expect("get").is_none(),
        "nothing written under a deleted name"
    );
}

pub async fn versions_and_lifecycle(store: &dyn Store) {
    let at = ObjectRef { vault_id: "v1", kind: ObjectKind::Secret, name_key: "db" };
    assert_eq!(put(store, "v1", "Db", "a".repeat(32).as_str(), b"one").await, PutOutcome::Written);
    assert_eq!(put(store, "v1", "DB", "b".repeat(32).as_str(), b"two").await, PutOutcome::Written);
    let latest = store.get_version(&at, None, false).await.expect("get").expect("found");
    assert_eq!(latest.payload, b"two", "latest is the newest version");
    assert_eq!(latest.name, "Db", "the display name is the first one written");
    assert_eq!(latest.seq, 2);
    let first = store.get_version(&at, Some(&"a".repeat(32)), false).await.expect("get").expect("found");
    assert_eq!(first.payload, b"one");
    // Same name in another kind or vault is another object.
    let key_at = ObjectRef { vault_id: "v1", kind: ObjectKind::Key, name_key: "db" };
    assert_eq!(store.get_version(&key_at, None, false).await.expect("get"), None);

    let mut attrs = first.attributes.clone();
    attrs.enabled = false;
    let mut tags = Tags::new();
    tags.insert("k".into(), "v".into());
    assert!(store.update_version(&at, &"a".repeat(32), &attrs, &tags, None, Some("{}")).await.expect("update"));
    let first = store.get_version(&at, Some(&"a".repeat(32)), false).await.expect("get").expect("found");
    assert!(!first.attributes.enabled);
    assert_eq!(first.tags, tags);
    assert_eq!(first.content_type, None);
    assert_eq!(first.payload, b"one", "updates never touch the payload");
    assert_eq!(first.meta.as_deref(), Some("{}"));
    assert_eq!(latest.meta.as_deref(), Some(r#"{"kty":"RSA"}"#));
    // Object policies (rotation policies of keys).
    assert_eq!(store.get_object_policy(&at).await.expect("policy"), None);
    assert!(store.set_object_policy(&at, Some("{\"p\":1}")).await.expect("set policy"));
    assert_eq!(store.get_object_policy(&at).await.expect("policy").as_deref(), Some("{\"p\":1}"));
    assert_eq!(
        store.objects_with_policy(ObjectKind::Secret).await.expect("with"),
        vec![("Hr-App".to_string(), "db".to_string())]
    );
    assert!(store.objects_with_policy(ObjectKind::Key).await.expect("with").is_empty());

    let d = Deletion { deleted_date: 20, scheduled_purge_date: 30 };
    assert!(store.delete_object(&at, &d).await.expect("delete"));
    assert!(!store.delete_object(&at, &d).await.expect("delete twice"), "deleting a deleted object is a no-op");
    assert_eq!(store.get_version(&at, None, false).await.expect("get"), None, "a deleted object is not readable");
    let deleted = store.get_version(&at, None, true).await.expect("get").expect("deleted found");
    assert_eq!(deleted.deletion, Some(d));
    assert_eq!(
        put(store, "v1", "db", &"c".repeat(32), b"x").await,
        PutOutcome::NameDeleted,
        "deleted names are reserved"
    );
    assert!(
        !store.update_version(&at, &"a".repeat(32), &attrs, &tags, None, None).await.expect("update"),
        "deleted versions are frozen"
    );
    assert!(store.recover_object(&at).await.expect("recover"));
    assert!(!store.recover_object(&at).await.expect("recover twice"));
    assert_eq!(store.list_versions(&at, 0, 10).await.expect("versions").len(), 2, "recover brings back every version");
    assert!(!store.purge_object(&at, None).await.expect("purge live"), "only deleted objects can be purged");
    assert!(store.delete_object(&at, &d).await.expect("delete"));
    assert_eq!(store.due_objects(29, 10).await.expect("due"), vec![], "not due before its purge date");
    assert_eq!(
        store.due_objects(30, 10).await.expect("due"),
        vec![("v1".to_string(), "Hr-App".to_string(), ObjectKind::Secret, "db".to_string())]
    );
    assert!(!store.purge_object(&at, Some(29)).await.expect("purge early"), "a due purge waits for the date");
    assert!(store.purge_object(&at, Some(30)).await.expect("purge"));
    assert_eq!(store.get_head(&at).await.expect("head"), None);
    assert!(store.all_versions(&at).await.expect("all").is_empty(), "purge erases every version");
    assert_eq!(put(store, "v1", "db", &"d".repeat(32), b"new").await, PutOutcome::Written);
    assert_eq!(store.get_version(&at, None, false).await.expect("get").expect("found").seq, 1);
}

pub async fn listing(store: &dyn Store) {
    for i in 0..7 {
        put(store, "v9", &format!("n{i}"), &format!("{i:032}"), b"p").await;
    }
    let q = |after: Option<&'static str>, deleted| ListQuery {
        vault_id: "v9",
        kind: ObjectKind::Secret,
        deleted,
        after,
        limit: 3,
    };
    let page1 = store.list_objects(&q(None, false)).await.expect("list");
    assert_eq!(page1.iter().map(|v| v.name.as_str()).collect::<Vec<_>>(), ["n0", "n1", "n2"]);
    assert!(page1.iter().all(|v| v.payload.is_empty()), "lists carry no payloads");
    let page2 = store.list_objects(&q(Some("n2"), false)).await.expect("list");
    assert_eq!(page2.iter().map(|v| v.name.as_str()).collect::<Vec<_>>(), ["n3", "n4", "n5"]);
    let at = ObjectRef { vault_id: "v9", kind: ObjectKind::Secret, name_key: "n1" };
    store.delete_object(&at, &Deletion { deleted_date: 1, scheduled_purge_date: 2 }).await.expect("delete");
    let live = store.list_objects(&ListQuery { limit: 10, ..q(None, false) }).await.expect("list");
    assert_eq!(live.len(), 6);
    let dead = store.list_objects(&ListQuery { limit: 10, ..q(None, true) }).await.expect("list");
    assert_eq!(dead.iter().map(|v| v.name.as_str()).collect::<Vec<_>>(), ["n1"]);
    assert!(dead[0].deletion.is_some());
}

pub async fn restore(store: &dyn Store) {
    let src = ObjectRef { vault_id: "v9", kind: ObjectKind::Secret, name_key: "n0" };
    put(store, "v9", "n0", &"e".repeat(32), b"second").await;
    let versions = store.all_versions(&src).await.expect("all");
    assert_eq!(versions.len(), 2);
    assert_eq!(store.restore_object(&src, "n0", &versions).await.expect("restore"), PutOutcome::NameTaken);
    let dst = ObjectRef { vault_id: "v10", kind: ObjectKind::Secret, name_key: "n0" };
    assert_eq!(store.restore_object(&dst, "n0", &versions).await.expect("restore"), PutOutcome::Written);
    let latest = store.get_version(&dst, None, false).await.expect("get").expect("found");
    assert_eq!(latest.version, "e".repeat(32));
    assert_eq!(store.list_versions(&dst, 0, 10).await.expect("versions").len(), 2);
    assert_eq!(put(store, "v10", "n0", &"f".repeat(32), b"third").await, PutOutcome::Written);
    assert_eq!(
        store.get_version(&dst, None, false).await.expect("get").expect("found").seq,
        3,
        "sequence continues after restore"
    );
}

pub async fn expiry_events(store: &dyn Store) {
    let v = vault("ve", "Expiry");
    assert!(store.create_vault(&v, b"w").await.expect("create"));
    let put_exp = async |name: &str, version: &str, exp: Option<i64>, managed: bool| {
        let key = name.to_ascii_lowercase();
        let mut attributes = Attributes::new(10);
        attributes.expires = exp;
        store
            .put_version(&NewVersion {
                at: ObjectRef { vault_id: "ve", kind: ObjectKind::Secret, name_key: &key },
                name,
                version,
                attributes: &attributes,
                tags: &Tags::new(),
                content_type: None,
                managed,
                payload: b"p",
                meta: None,
            })
            .await
            .expect("put");
    };
    put_exp("Soon", &"1".repeat(32), Some(1_000), false).await;
    put_exp("Later", &"2".repeat(32), Some(100_000), false).await;
    put_exp("Never", &"3".repeat(32), None, false).await;
    put_exp("Managed", &"4".repeat(32), Some(900), true).await;
    put_exp("Replaced", &"5".repeat(32), Some(800), false).await;
    put_exp("Replaced", &"6".repeat(32), None, false).await;
    let names = |v: Vec<coffer_store::ExpiringVersion>| v.into_iter().map(|e| (e.name, e.expired)).collect::<Vec<_>>();
    let due = store.pending_expiry_events(500, 5_000, 10).await.expect("pending");
    assert_eq!(names(due.clone()), vec![("Soon".to_string(), false)], "only current, unmanaged versions in the window");
    store.record_expiry_event(&due[0]).await.expect("record");
    assert!(store.pending_expiry_events(500, 5_000, 10).await.expect("again").is_empty(), "announced once");
    let expired = store.pending_expiry_events(2_000, 5_000, 10).await.expect("expired");
    assert_eq!(names(expired.clone()), vec![("Soon".to_string(), true)], "expiry is a second event");
    store.record_expiry_event(&expired[0]).await.expect("record");
    assert!(store.pending_expiry_events(2_000, 5_000, 10).await.expect("done").is_empty());
}

/// Versions and an audit batch written at the same moment (a backend may commit them
/// together) each get their own outcome and versions their own seq; a refused one does not
/// undo the others, nor they it.
pub async fn concurrent_puts(store: &dyn Store) {
    let audit_head = store.audit_head().await.expect("head").map_or(0, |r| r.seq);
    let audit_rows = [
        super::audit::audit_row(audit_head + 1, "v1", "c", "success"),
        super::audit::audit_row(audit_head + 2, "v1", "c", "success"),
    ];
    assert_eq!(put(store, "v1", "together-gone", "tg1", b"x").await, PutOutcome::Written);
    let gone = ObjectRef { vault_id: "v1", kind: ObjectKind::Secret, name_key: "together-gone" };
    let deletion = Deletion { deleted_date: 20, scheduled_purge_date: 30 };
    assert!(store.delete_object(&gone, &deletion).await.expect("delete"));
    let versions: Vec<String> = (0..24).map(|i| format!("together{i:02}")).collect();
    let writes = versions.iter().enumerate().map(|(i, version)| {
        let name = if i % 6 == 5 { "together-gone" } else { "Together" };
        put(store, "v1", name, version, version.as_bytes())
    });
    let (outcomes, appended) =
        futures_util::future::join(futures_util::future::join_all(writes), store.append_audit(&audit_rows)).await;
    appended.expect("the audit batch written beside the versions");
    let head = store.audit_head().await.expect("head").expect("a head");
    assert_eq!(head, audit_rows[1], "the audit batch is whole");
    for (i, outcome) in outcomes.iter().enumerate() {
        let expected = if i % 6 == 5 { PutOutcome::NameDeleted } else { PutOutcome::Written };
        assert_eq!(*outcome, expected, "write {i}");
    }
    let at = ObjectRef { vault_id: "v1", kind: ObjectKind::Secret, name_key: "together" };
    let all = store.all_versions(&at).await.expect("versions");
    let mut seqs: Vec<i64> = all.iter().map(|v| v.seq).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=20).collect::<Vec<i64>>(), "twenty versions, one seq each");
    for v in &all {
        assert_eq!(v.payload, v.version.as_bytes(), "each version kept its own value");
    }
    let latest = store.get_version(&at, None, false).await.expect("get").expect("latest");
    assert_eq!(latest.seq, 20, "the latest is the last seq");
    assert!(
        store.get_version(&gone, Some("together05"), true).await.expect("get").is_none(),
        "nothing written under the deleted name"
    );
}

/// An audit batch and the versions its records witness are one commit: both or neither. A
/// version under a deleted name is refused, and then nothing is written — neither the other
/// versions nor the records.
pub async fn witnessed_versions(store: &dyn Store) {
    let head = store.audit_head().await.expect("head").map_or(0, |r| r.seq);
    let (attributes, tags) = (Attributes::new(10), Tags::new());
    let version = |name: &'static str, key: &'static str, id: &'static str| {
        OwnedVersion::of(&NewVersion {
            at: ObjectRef { vault_id: "v1", kind: ObjectKind::Secret, name_key: key },
            name,
            version: id,
            attributes: &attributes,
            tags: &tags,
            content_type: None,
            managed: false,
            payload: id.as_bytes(),
            meta: None,
        })
    };
    let rows = [
        super::audit::audit_row(head + 1, "v1", "c", "success"),
        super::audit::audit_row(head + 2, "v1", "c", "success"),
    ];
    let gone = ObjectRef { vault_id: "v1", kind: ObjectKind::Secret, name_key: "witnessed-gone" };
    assert_eq!(put(store, "v1", "Witnessed-Gone", "wg1", b"x").await, PutOutcome::Written);
    assert!(
        store.delete_object(&gone, &Deletion { deleted_date: 20, scheduled_purge_date: 30 }).await.expect("delete")
    );

    let refused = [version("Witnessed", "witnessed", "w1"), version("Witnessed-Gone", "witnessed-gone", "wg2")];
    assert_eq!(
        store.append_audit_witnessing(&rows, &refused, CommitGate::open()).await.expect("refused, not failed"),
        Witnessed::Refused { index: 1, outcome: PutOutcome::NameDeleted }
    );
    let at = ObjectRef { vault_id: "v1", kind: ObjectKind::Secret, name_key: "witnessed" };
    assert!(store.get_version(&at, None, false).await.expect("get").is_none(), "the other version was not written");
    assert_eq!(store.audit_head().await.expect("head").map_or(0, |r| r.seq), head, "nor the records");

    let both = [version("Witnessed", "witnessed", "w1"), version("Witnessed", "witnessed", "w2")];
    assert_eq!(
        store.append_audit_witnessing(&rows, &both, CommitGate::open()).await.expect("written"),
        Witnessed::Written
    );
    assert_eq!(store.audit_head().await.expect("head").as_ref(), Some(&rows[1]), "the records are written");
    let latest = store.get_version(&at, None, false).await.expect("get").expect("a version");
    assert_eq!((latest.version.as_str(), latest.payload.as_slice()), ("w2", b"w2".as_slice()), "and the versions");
    let seqs: Vec<(String, i64)> =
        store.all_versions(&at).await.expect("versions").into_iter().map(|v| (v.version, v.seq)).collect();
    assert!(seqs.contains(&("w1".into(), 1)) && seqs.contains(&("w2".into(), 2)), "in their order: {seqs:?}");

    // A batch whose first seq is taken (another writer appended first) writes nothing — no
    // version either — and says so, for the writer to try again after the new head.
    let late = [version("Witnessed", "witnessed", "w3")];
    assert_eq!(
        store.append_audit_witnessing(&rows[1..], &late, CommitGate::open()).await.expect("answered"),
        Witnessed::HeadMoved
    );
    assert_eq!(
        store.append_audit_witnessing(&rows[1..], &[], CommitGate::open()).await.expect("answered"),
        Witnessed::HeadMoved,
        "records alone too"
    );
    assert!(store.get_version(&at, Some("w3"), false).await.expect("get").is_none(), "its version is not written");

    // The commit waits for its gate (the audit file synced); a gate that does not pass
    // writes nothing, and says why.
    let next = [super::audit::audit_row(head + 3, "v1", "c", "success")];
    let gated = [version("Witnessed", "witnessed", "w4")];
    let full = CommitGate::new(async { Err("the audit file cannot be written: no space left".to_string()) });
    let err = store.append_audit_witnessing(&next, &gated, full).await.expect_err("the gate did not pass");
    assert_eq!(err.kind, coffer_core::ErrorKind::Unavailable, "{err:?}");
    assert!(err.message.contains("no space left"), "{}", err.message);
    assert!(store.get_version(&at, Some("w4"), false).await.expect("get").is_none(), "no version");
    assert_eq!(store.audit_head().await.expect("head").as_ref(), Some(&rows[1]), "no record");
    let (passed, gate) = tokio::sync::oneshot::channel::<()>();
    let waiting = CommitGate::new(async move { gate.await.map_err(|_| "dropped".to_string()) });
    let write = store.append_audit_witnessing(&next, &gated, waiting);
    let (written, ()) = futures_util::future::join(write, async move {
        let _ = passed.send(());
    })
    .await;
    assert_eq!(written.expect("passed"), Witnessed::Written);
    assert!(store.get_version(&at, Some("w4"), false).await.expect("get").is_some(), "written once it passed");
}
