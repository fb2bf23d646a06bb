//! Instance metadata (`MetaStore`).
use super::*;

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
}
