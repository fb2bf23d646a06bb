//! Instance metadata (`MetaStore`).
use super::*;
use coffer_store::{RootWrapped, SigningKeyRecord};

pub async fn meta(store: &dyn Store) {
    assert_eq!(store.get_meta("k").await.expect("get"), None);
    assert_eq!(store.put_meta_if_absent("k", b"first").await.expect("put"), b"first");
    assert_eq!(
        store.put_meta_if_absent("k", b"second").await.expect("put"),
        b"first",
        "put_meta_if_absent keeps the first"
    );
    store.put_meta("m", b"one").await.expect("put");
    store.put_meta("m", b"two").await.expect("replace");
    assert_eq!(store.get_meta("m").await.expect("get").as_deref(), Some(&b"two"[..]));
    assert!(store.delete_meta("m").await.expect("delete"));
    assert!(!store.delete_meta("m").await.expect("delete twice"));
    assert_eq!(store.get_meta("m").await.expect("get"), None);
    for key in ["op/v1/b", "op/v1/a", "op/v10/c", "op/v2/d", "op%v1/e"] {
        store.put_meta(key, key.as_bytes()).await.expect("put");
    }
    let listed = store.list_meta("op/v1/").await.expect("list");
    assert_eq!(
        listed,
        vec![("op/v1/a".to_string(), b"op/v1/a".to_vec()), ("op/v1/b".to_string(), b"op/v1/b".to_vec())],
        "only the prefix, in key order; `%` is not a wildcard"
    );
    assert!(store.list_meta("nothing/").await.expect("list").is_empty());

    root_wrapped(store).await;
}

/// What is sealed under the root of trust is replaced whole or not at all.
async fn root_wrapped(store: &dyn Store) {
    // A tenant of its own: the vault suites list t1's vaults.
    let mut v = vault("rw-v1", "rewrapped");
    v.tenant_id = "rw-t".into();
    assert!(store.create_vault(&v, b"old-wrap").await.expect("vault"));
    let key = SigningKeyRecord {
        kid: "rw-k1".into(),
        tenant_id: "rw-t".into(),
        sealed_pkcs8: b"old-key".to_vec(),
        created: 1,
    };
    store.add_signing_key(&key).await.expect("signing key");
    store.put_meta("instance-key/rw", b"old-meta").await.expect("meta");
    let wrapped = store.wrapped_vault_keys().await.expect("wrapped");
    assert!(wrapped.contains(&("rw-v1".to_string(), b"old-wrap".to_vec())), "{wrapped:?}");

    // A vault that is not there: nothing changes, not even what came before it.
    let broken = RootWrapped {
        vaults: vec![("rw-v1".into(), b"new-wrap".to_vec()), ("missing".into(), b"x".to_vec())],
        signing_keys: vec![("rw-t".into(), "rw-k1".into(), b"new-key".to_vec())],
        meta: vec![("instance-key/rw".into(), b"new-meta".to_vec())],
    };
    assert!(store.replace_root_wrapped(&broken).await.is_err());
    assert!(store.wrapped_vault_keys().await.expect("wrapped").contains(&("rw-v1".to_string(), b"old-wrap".to_vec())));
    assert_eq!(store.get_meta("instance-key/rw").await.expect("meta").as_deref(), Some(&b"old-meta"[..]));

    let good = RootWrapped {
        vaults: vec![("rw-v1".into(), b"new-wrap".to_vec())],
        signing_keys: vec![("rw-t".into(), "rw-k1".into(), b"new-key".to_vec())],
        meta: vec![("instance-key/rw".into(), b"new-meta".to_vec())],
    };
    store.replace_root_wrapped(&good).await.expect("rewrap");
    let rec = store.get_vault_by_name("rewrapped").await.expect("get").expect("vault");
    assert_eq!(rec.wrapped_key, b"new-wrap", "the read after the write sees it (memo)");
    let keys = store.list_signing_keys("rw-t").await.expect("keys");
    assert_eq!(keys[0].sealed_pkcs8, b"new-key");
    assert_eq!(store.get_meta("instance-key/rw").await.expect("meta").as_deref(), Some(&b"new-meta"[..]));
}
