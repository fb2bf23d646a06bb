//! The behaviour every `Store` must have. Each backend's test file includes this module
//! (`mod conformance;`) and calls `run_all`; a new backend is done when it passes. It panics
//! (it is test code) with a message naming the broken rule.
use coffer_core::lifecycle::{Deletion, RetentionPolicy};
use coffer_core::object::{Attributes, ObjectKind, Tags};
use coffer_core::principal::{Principal, PrincipalKind};
use coffer_core::vault::Vault;

use coffer_store::{
    AuditCheckpoint, AuditQuery, AuditRow, Credential, ListQuery, NewVersion, ObjectRef, PutOutcome, Redeemed,
    RefreshTokenRecord, RestoredObject, Store, Tenant,
};

fn vault(id: &str, name: &str) -> Vault {
    Vault {
        id: id.into(),
        name: name.into(),
        tenant_id: "t1".into(),
        subscription_id: "s1".into(),
        resource_group: "rg".into(),
        location: "local".into(),
        retention: RetentionPolicy::new(7, false).expect("retention"),
        enable_rbac_authorization: false,
        access_policies: vec![],
        tags: Tags::new(),
        network_acls: None,
        created_by: "admin".into(),
        created: 1,
        updated: 1,
        deletion: None,
    }
}

async fn put(store: &dyn Store, vault_id: &str, name: &str, version: &str, payload: &[u8]) -> PutOutcome {
    let key = name.to_ascii_lowercase();
    store
        .put_version(&NewVersion {
            at: ObjectRef { vault_id, kind: ObjectKind::Secret, name_key: &key },
            name,
            version,
            attributes: &Attributes::new(10),
            tags: &Tags::new(),
            content_type: Some("text/plain"),
            managed: false,
            payload,
            meta: Some(r#"{"kty":"RSA"}"#),
        })
        .await
        .expect("put_version")
}

pub async fn run_all(store: &dyn Store) {
    meta(store).await;
    directory(store).await;
    vaults(store).await;
    versions_and_lifecycle(store).await;
    listing(store).await;
    restore(store).await;
    rbac(store).await;
    vault_lifecycle(store).await;
    expiry_events(store).await;
    audit(store).await;
    reads_follow_writes(store).await;
    bulk_put(store).await;
    changes_that_are_one_transaction(store).await;
}

/// The changes that write several rows happen whole or not at all.
async fn changes_that_are_one_transaction(store: &dyn Store) {
    use coffer_core::principal::{Principal, PrincipalKind};
    // A vault and its creator's Owner assignment.
    let owner = |id: &str, scope: &str| coffer_core::rbac::RoleAssignment {
        id: id.into(),
        tenant_id: "t1".into(),
        scope: scope.into(),
        role_definition_id: "owner".into(),
        principal_id: "creator".into(),
        created: 1,
        created_by: "creator".into(),
    };
    let v = vault("tx-v1", "tx-vault");
    assert!(store.create_vault_with_owner(&v, b"w", &owner("tx-a1", "/vaults/tx-vault")).await.expect("create"));
    assert!(store.get_role_assignment("tx-a1").await.expect("get").is_some(), "the Owner came with the vault");
    let taken = vault("tx-v2", "TX-VAULT");
    assert!(!store.create_vault_with_owner(&taken, b"w", &owner("tx-a2", "/vaults/tx-vault")).await.expect("taken"));
    assert!(store.get_role_assignment("tx-a2").await.expect("get").is_none(), "no Owner for a vault not made");

    // A credential replaced together with the principal's fields.
    let user = Principal {
        object_id: "tx-u1".into(),
        tenant_id: "t1".into(),
        kind: PrincipalKind::User,
        name: "tx-user".into(),
        client_id: None,
        enabled: true,
        tenant_admin: false,
        created: 1,
    };
    store.create_principal(&user).await.expect("user");
    let pw = |id: &str| Credential {
        id: id.into(),
        principal_id: "tx-u1".into(),
        kind: "password".into(),
        secret_hash: "h".into(),
        thumbprint: None,
        material: None,
        expires: None,
        created: 1,
    };
    store.add_credential(&pw("tx-p1")).await.expect("pw");
    store
        .add_refresh_token(&RefreshTokenRecord {
            id: "tx-r1".into(),
            principal_id: "tx-u1".into(),
            credential_id: "tx-p1".into(),
            secret_hash: "h".into(),
            expires: 99,
            created: 1,
            family: "tx-r1".into(),
            through_app: None,
            used: false,
        })
        .await
        .expect("rt");
    let disabled = Principal { enabled: false, ..user.clone() };
    assert!(store.replace_credential(&disabled, &pw("tx-p2")).await.expect("replace"));
    let ids: Vec<String> = store.list_credentials("tx-u1").await.expect("list").into_iter().map(|c| c.id).collect();
    assert_eq!(ids, vec!["tx-p2"], "the old password is gone, the new one is there");
    assert_eq!(store.get_refresh_token("tx-r1").await.expect("get"), None, "with the old password's tokens");
    assert!(!store.get_principal("tx-u1").await.expect("get").expect("user").enabled);
    let ghost = Principal { object_id: "tx-nobody".into(), ..user.clone() };
    assert!(
        !store
            .replace_credential(&ghost, &Credential { principal_id: "tx-nobody".into(), ..pw("tx-p3") })
            .await
            .expect("ghost")
    );
    assert_eq!(store.get_credential("tx-p3").await.expect("get"), None);

    // A certificate's three objects: all restored, or none.
    let part = |kind: ObjectKind| ObjectRef { vault_id: "tx-v9", kind, name_key: "cert" };
    put(store, "tx-v8", "cert", &"a".repeat(32), b"one").await;
    let versions = store
        .all_versions(&ObjectRef { vault_id: "tx-v8", kind: ObjectKind::Secret, name_key: "cert" })
        .await
        .expect("versions");
    // The secret's name is taken in the target vault: nothing else may be written.
    put(store, "tx-v9", "cert", &"b".repeat(32), b"in the way").await;
    let parts = [
        RestoredObject { at: part(ObjectKind::Key), name: "cert", versions: &versions, policy: None },
        RestoredObject { at: part(ObjectKind::Certificate), name: "cert", versions: &versions, policy: Some("{}") },
        RestoredObject { at: part(ObjectKind::Secret), name: "cert", versions: &versions, policy: None },
    ];
    assert_eq!(store.restore_objects(&parts).await.expect("restore"), PutOutcome::NameTaken);
    assert!(store.get_head(&part(ObjectKind::Key)).await.expect("head").is_none(), "the key was not written");
    assert!(store.get_head(&part(ObjectKind::Certificate)).await.expect("head").is_none());
    assert_eq!(store.restore_objects(&parts[..2]).await.expect("restore"), PutOutcome::Written);
    assert!(store.get_head(&part(ObjectKind::Key)).await.expect("head").is_some());
    let policy = store.get_object_policy(&part(ObjectKind::Certificate)).await.expect("policy");
    assert_eq!(policy.as_deref(), Some("{}"), "the policy came with it");
}

/// `put_versions` gives each version the outcome `put_version` would.
async fn bulk_put(store: &dyn Store) {
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

/// A backend may remember reads (SQLite remembers vaults, principals, credentials and groups):
/// every read right after a write still sees the write.
async fn reads_follow_writes(store: &dyn Store) {
    let p = Principal {
        object_id: "rw-app".into(),
        tenant_id: "t1".into(),
        kind: PrincipalKind::App,
        name: "rw".into(),
        client_id: Some("rw-client".into()),
        enabled: true,
        tenant_admin: false,
        created: 1,
    };
    assert_eq!(store.get_principal("rw-app").await.expect("get"), None);
    store.create_principal(&p).await.expect("create");
    assert_eq!(store.get_principal("rw-app").await.expect("get"), Some(p.clone()));
    let disabled = Principal { enabled: false, ..p.clone() };
    assert!(store.update_principal(&disabled).await.expect("disable"));
    assert_eq!(store.get_principal("rw-app").await.expect("get"), Some(disabled));

    let c = Credential {
        id: "rw-cred".into(),
        principal_id: "rw-app".into(),
        kind: "secret".into(),
        secret_hash: "h".into(),
        thumbprint: None,
        material: None,
        expires: None,
        created: 1,
    };
    assert_eq!(store.get_credential("rw-cred").await.expect("get"), None);
    store.add_credential(&c).await.expect("add");
    assert_eq!(store.get_credential("rw-cred").await.expect("get"), Some(c));
    assert!(store.remove_credential("rw-app", "rw-cred").await.expect("remove"));
    assert_eq!(store.get_credential("rw-cred").await.expect("get"), None);

    assert!(store.groups_of("rw-app").await.expect("groups").is_empty());
    assert!(store.add_group_member("rw-group", "rw-app").await.expect("add"));
    assert_eq!(store.groups_of("rw-app").await.expect("groups"), vec!["rw-group".to_string()]);
    assert!(store.remove_group_member("rw-group", "rw-app").await.expect("remove"));
    assert!(store.groups_of("rw-app").await.expect("groups").is_empty());

    assert!(store.get_vault_by_name("rw-vault").await.expect("get").is_none());
    let v = vault("rw-v", "rw-vault");
    assert!(store.create_vault(&v, b"w").await.expect("create"));
    let mut rbac = store.get_vault_by_name("rw-vault").await.expect("get").expect("found").vault;
    rbac.enable_rbac_authorization = true;
    store.update_vault(&rbac).await.expect("update");
    assert!(store.get_vault_by_name("rw-vault").await.expect("get").expect("found").vault.enable_rbac_authorization);

    assert!(store.delete_principal("rw-app").await.expect("delete"));
    assert_eq!(store.get_principal("rw-app").await.expect("get"), None);

    let at = ObjectRef { vault_id: "rw-v", kind: ObjectKind::Secret, name_key: "rw-secret" };
    assert!(store.get_version(&at, None, false).await.expect("get").is_none());
    assert_eq!(put(store, "rw-v", "rw-secret", "r1", b"one").await, PutOutcome::Written);
    assert_eq!(store.get_version(&at, None, false).await.expect("get").expect("r1").payload, b"one");
    assert_eq!(put(store, "rw-v", "rw-secret", "r2", b"two").await, PutOutcome::Written);
    assert_eq!(store.get_version(&at, None, false).await.expect("get").expect("r2").version, "r2");
    let mut disabled = Attributes::new(10);
    disabled.enabled = false;
    assert!(store.update_version(&at, "r2", &disabled, &Tags::new(), None, None).await.expect("update"));
    assert!(!store.get_version(&at, Some("r2"), false).await.expect("get").expect("r2").attributes.enabled);
    let deletion = Deletion { deleted_date: 20, scheduled_purge_date: 30 };
    assert!(store.delete_object(&at, &deletion).await.expect("delete"));
    assert!(store.get_version(&at, None, false).await.expect("get").is_none(), "deleted: gone from the live view");
    assert!(store.get_version(&at, None, true).await.expect("get").is_some());
    assert!(store.recover_object(&at).await.expect("recover"));
    assert!(store.get_version(&at, None, false).await.expect("get").is_some());
    assert!(store.get_version(&at, None, true).await.expect("get").is_none(), "recovered: gone from the deleted view");
}

async fn vault_lifecycle(store: &dyn Store) {
    use coffer_store::ResourceGroup;
    let mut v = vault("vl", "lifecycle");
    assert!(store.create_vault(&v, b"w").await.expect("create"));
    put(store, "vl", "s", &"a".repeat(32), b"p").await;
    assert!(!store.claim_vault_purge("vl", None).await.expect("claim live"), "a live vault cannot be purged");
    v.deletion = Some(Deletion { deleted_date: 100, scheduled_purge_date: 200 });
    store.update_vault(&v).await.expect("delete");
    assert_eq!(store.due_vaults(199, 10).await.expect("due"), Vec::<String>::new());
    assert_eq!(store.due_vaults(200, 10).await.expect("due"), vec!["vl".to_string()]);
    assert!(store.recover_vault("vl", 150).await.expect("recover"));
    assert!(!store.recover_vault("vl", 150).await.expect("recover live"));
    store.update_vault(&v).await.expect("delete again");
    assert!(!store.claim_vault_purge("vl", Some(199)).await.expect("claim early"));
    assert!(store.claim_vault_purge("vl", Some(200)).await.expect("claim"));
    assert!(
        !store.recover_vault("vl", 250).await.expect("recover purging"),
        "a vault being purged cannot be recovered"
    );
    assert!(store.erase_vault("vl").await.expect("erase"));
    assert!(!store.erase_vault("vl").await.expect("erase twice"));
    assert!(store.get_vault_by_name("lifecycle").await.expect("get").is_none());
    let at = ObjectRef { vault_id: "vl", kind: ObjectKind::Secret, name_key: "s" };
    assert!(store.all_versions(&at).await.expect("versions").is_empty(), "erasing a vault erases its objects");
    assert!(store.create_vault(&vault("vl2", "lifecycle"), b"w").await.expect("reuse"), "the name is free after purge");

    let rg = ResourceGroup {
        subscription_id: "s1".into(),
        name: "Clinic".into(),
        location: "local".into(),
        tags: Tags::new(),
        created: 1,
    };
    store.put_resource_group(&rg).await.expect("rg");
    assert_eq!(store.get_resource_group("s1", "clinic").await.expect("get"), Some(rg.clone()));
    assert_eq!(store.list_resource_groups("s1").await.expect("list"), vec![rg]);
    assert!(store.delete_resource_group("s1", "CLINIC").await.expect("delete"));
    assert!(store.get_resource_group("s1", "clinic").await.expect("get").is_none());
}

async fn rbac(store: &dyn Store) {
    use coffer_core::rbac::{RoleAssignment, RoleDefinition};
    let role = RoleDefinition {
        id: "r1".into(),
        name: "Reader Plus".into(),
        description: "d".into(),
        actions: vec![],
        not_actions: vec![],
        data_actions: vec!["Microsoft.KeyVault/vaults/secrets/*".into()],
        not_data_actions: vec![],
        built_in: false,
    };
    assert!(store.create_role_definition("t1", &role, 1).await.expect("create"));
    assert!(
        !store
            .create_role_definition(
                "t1",
                &RoleDefinition { id: "r2".into(), name: "reader plus".into(), ..role.clone() },
                1
            )
            .await
            .expect("dup"),
        "role names are unique per tenant"
    );
    assert_eq!(store.list_role_definitions("t1").await.expect("list"), vec![role.clone()]);
    let a = |id: &str, scope: &str, principal: &str| RoleAssignment {
        id: id.into(),
        tenant_id: "t1".into(),
        scope: scope.into(),
        role_definition_id: "r1".into(),
        principal_id: principal.into(),
        created: 1,
        created_by: "admin".into(),
    };
    assert!(store.create_role_assignment(&a("a1", "/", "p1")).await.expect("a1"));
    assert!(store.create_role_assignment(&a("a2", "/vaults/hr", "g1")).await.expect("a2"));
    assert!(store.create_role_assignment(&a("a3", "/vaults/hr/secrets/db", "p1")).await.expect("a3"));
    assert!(store.create_role_assignment(&a("a4", "/vaults/hrx", "p1")).await.expect("a4"));
    assert!(
        !store.create_role_assignment(&a("a5", "/", "p1")).await.expect("dup"),
        "an assignment is unique per scope, principal and role"
    );
    let ids = |v: Vec<RoleAssignment>| v.into_iter().map(|x| x.id).collect::<Vec<_>>();
    let scopes = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        ids(store.assignments_for(&scopes(&["p1", "g1"]), &scopes(&["/", "/vaults/hr"])).await.expect("for")),
        ["a1", "a2"]
    );
    assert_eq!(
        ids(store
            .assignments_for(&scopes(&["p1"]), &scopes(&["/", "/vaults/hr", "/vaults/hr/secrets/db"]))
            .await
            .expect("for")),
        ["a1", "a3"]
    );
    assert!(store.assignments_for(&[], &scopes(&["/"])).await.expect("for").is_empty());
    assert_eq!(
        ids(store.list_role_assignments("t1", Some("/vaults/hr"), None).await.expect("list")),
        ["a2", "a3"],
        "/vaults/hr does not cover /vaults/hrx"
    );
    assert_eq!(ids(store.list_role_assignments("t1", None, Some("p1")).await.expect("list")), ["a1", "a3", "a4"]);
    assert_eq!(store.count_assignments_of_role("r1").await.expect("count"), 4);
    assert_eq!(store.get_role_assignment("a2").await.expect("get").expect("found").principal_id, "g1");
    assert!(store.delete_role_assignment("a4").await.expect("delete"));
    assert!(!store.delete_role_assignment("a4").await.expect("delete twice"));
    assert_eq!(store.delete_assignments_under("/vaults/hr").await.expect("under"), 2);
    assert_eq!(ids(store.list_role_assignments("t1", None, None).await.expect("list")), ["a1"]);
    assert!(store.delete_role_definition("t1", "r1").await.expect("delete role"));
    assert!(store.list_role_definitions("t1").await.expect("list").is_empty());
    // Transitive group members.
    assert!(store.add_group_member("gA", "gB").await.expect("nest"));
    assert!(store.add_group_member("gB", "p9").await.expect("member"));
    assert!(store.add_group_member("gB", "gA").await.expect("cycle"));
    assert_eq!(store.group_descendants("gA").await.expect("descendants"), ["gB", "p9"]);
}

async fn meta(store: &dyn Store) {
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

async fn directory(store: &dyn Store) {
    let t = Tenant { id: "t1".into(), name: "default".into(), default_subscription_id: "s1".into(), created: 1 };
    store.create_tenant(&t).await.expect("tenant");
    assert_eq!(store.get_tenant("t1").await.expect("get"), Some(t.clone()));
    assert_eq!(store.list_tenants().await.expect("list"), vec![t]);
    let p = Principal {
        object_id: "o1".into(),
        tenant_id: "t1".into(),
        kind: PrincipalKind::App,
        name: "app".into(),
        client_id: Some("c1".into()),
        enabled: true,
        tenant_admin: false,
        created: 1,
    };
    store.create_principal(&p).await.expect("principal");
    assert_eq!(store.get_principal("o1").await.expect("get"), Some(p.clone()));
    assert_eq!(store.find_principal_by_client_id("t1", "c1").await.expect("find"), Some(p.clone()));
    assert_eq!(store.find_principal_by_client_id("t2", "c1").await.expect("find"), None, "client ids are per tenant");
    let dup = Principal { object_id: "o2".into(), ..p };
    assert!(store.create_principal(&dup).await.is_err(), "client ids are unique in a tenant");
    let c = Credential {
        id: "c".into(),
        principal_id: "o1".into(),
        kind: "secret".into(),
        secret_hash: "h".into(),
        thumbprint: None,
        material: None,
        expires: Some(5),
        created: 1,
    };
    store.add_credential(&c).await.expect("credential");
    let cert = Credential {
        id: "c2".into(),
        kind: "certificate".into(),
        thumbprint: Some("x5t".into()),
        material: Some(vec![1, 2]),
        ..c.clone()
    };
    store.add_credential(&cert).await.expect("credential");
    assert_eq!(store.list_credentials("o1").await.expect("list"), vec![c.clone(), cert.clone()]);
    assert_eq!(store.get_credential("c2").await.expect("get"), Some(cert));
    assert!(store.groups_of("o1").await.expect("groups").is_empty());

    // Users are unique by name (case-insensitive) within a tenant.
    let user = Principal {
        object_id: "u1".into(),
        tenant_id: "t1".into(),
        kind: PrincipalKind::User,
        name: "Alice".into(),
        client_id: None,
        enabled: true,
        tenant_admin: false,
        created: 1,
    };
    store.create_principal(&user).await.expect("user");
    assert_eq!(store.find_user("t1", "alice").await.expect("find"), Some(user.clone()));
    assert!(
        store
            .create_principal(&Principal { object_id: "u2".into(), name: "ALICE".into(), ..user.clone() })
            .await
            .is_err()
    );
    let mut disabled = user.clone();
    disabled.enabled = false;
    assert!(store.update_principal(&disabled).await.expect("update"));
    assert!(!store.get_principal("u1").await.expect("get").expect("user").enabled);

    // Groups nest; membership is transitive.
    for g in ["g1", "g2"] {
        let group = Principal { object_id: g.into(), kind: PrincipalKind::Group, name: g.into(), ..user.clone() };
        store.create_principal(&group).await.expect("group");
    }
    assert!(store.add_group_member("g1", "u1").await.expect("add"));
    assert!(!store.add_group_member("g1", "u1").await.expect("add twice"), "adding twice is a no-op");
    assert!(store.add_group_member("g2", "g1").await.expect("nest"));
    assert!(store.add_group_member("g1", "g2").await.expect("cycle"), "a cycle is stored but must not hang");
    assert_eq!(store.groups_of("u1").await.expect("groups"), vec!["g1", "g2"]);
    assert_eq!(store.group_members("g1").await.expect("members"), vec!["g2", "u1"]);
    assert!(store.remove_group_member("g1", "u1").await.expect("remove"));
    assert!(store.groups_of("u1").await.expect("groups").is_empty());
    assert!(store.add_group_member("g1", "u1").await.expect("add"));

    // Refresh tokens live until deleted, and die with their credential or principal.
    let rt = |id: &str, cred: &str| RefreshTokenRecord {
        id: id.into(),
        principal_id: "u1".into(),
        credential_id: cred.into(),
        secret_hash: "h".into(),
        expires: 99,
        created: 1,
        family: id.into(),
        through_app: Some("app".into()),
        used: false,
    };
    store.add_refresh_token(&rt("r1", "pw")).await.expect("rt");
    assert_eq!(store.get_refresh_token("r1").await.expect("get"), Some(rt("r1", "pw")));
    assert!(store.revoke_refresh_family("r1").await.expect("delete"));
    assert!(!store.revoke_refresh_family("r1").await.expect("delete twice"));
    assert_eq!(store.get_refresh_token("r1").await.expect("get"), None);

    // Rotation: a token redeems once; a replay revokes its whole family.
    let next = |id: &str, family: &str| RefreshTokenRecord { family: family.into(), ..rt(id, "pw") };
    store.add_refresh_token(&rt("f1", "pw")).await.expect("rt");
    store.add_refresh_token(&rt("other-family", "pw")).await.expect("rt");
    assert_eq!(store.redeem_refresh_token("f1", &next("f2", "f1"), 10).await.expect("redeem"), Redeemed::Rotated);
    assert!(store.get_refresh_token("f1").await.expect("get").expect("kept").used, "kept, marked used");
    assert_eq!(store.get_refresh_token("f2").await.expect("get"), Some(next("f2", "f1")));
    assert_eq!(store.redeem_refresh_token("f2", &next("f3", "f1"), 10).await.expect("redeem"), Redeemed::Rotated);
    assert_eq!(
        store.redeem_refresh_token("f1", &next("f9", "f1"), 10).await.expect("replay"),
        Redeemed::Replayed,
        "an old token presented again"
    );
    for id in ["f1", "f2", "f3", "f9"] {
        assert_eq!(store.get_refresh_token(id).await.expect("get"), None, "{id}: the family is revoked");
    }
    assert!(store.get_refresh_token("other-family").await.expect("get").is_some(), "other families stay");
    assert_eq!(
        store.redeem_refresh_token("unknown", &next("u2", "unknown"), 10).await.expect("unknown"),
        Redeemed::Replayed
    );
    assert_eq!(store.get_refresh_token("u2").await.expect("get"), None);
    // Sign-out revokes the family through any of its tokens.
    store.add_refresh_token(&rt("g1", "pw")).await.expect("rt");
    store.redeem_refresh_token("g1", &next("g2", "g1"), 10).await.expect("redeem");
    assert!(store.revoke_refresh_family("g2").await.expect("revoke"));
    assert_eq!(store.get_refresh_token("g1").await.expect("get"), None);
    // Expired tokens are dropped when another is redeemed.
    store.add_refresh_token(&rt("h1", "pw")).await.expect("rt");
    store.redeem_refresh_token("h1", &next("h2", "h1"), 100).await.expect("redeem");
    assert_eq!(store.get_refresh_token("other-family").await.expect("get"), None, "expired at 99");
    store.revoke_refresh_family("h1").await.expect("revoke");
    store.add_credential(&Credential { id: "pw".into(), principal_id: "u1".into(), ..c.clone() }).await.expect("pw");
    store.add_refresh_token(&rt("r2", "pw")).await.expect("rt");
    assert!(store.remove_credential("u1", "pw").await.expect("remove"));
    assert!(!store.remove_credential("u1", "pw").await.expect("remove twice"));
    assert_eq!(
        store.get_refresh_token("r2").await.expect("get"),
        None,
        "removing a credential revokes its refresh tokens"
    );
    store.add_refresh_token(&rt("r3", "other")).await.expect("rt");
    assert!(store.delete_principal("u1").await.expect("delete"));
    assert!(!store.delete_principal("u1").await.expect("delete twice"));
    assert_eq!(store.get_principal("u1").await.expect("get"), None);
    assert_eq!(store.get_refresh_token("r3").await.expect("get"), None);
    assert!(
        store.group_members("g1").await.expect("members").iter().all(|m| m != "u1"),
        "memberships go with the principal"
    );
    let listed: Vec<String> =
        store.list_principals("t1").await.expect("list").into_iter().map(|p| p.object_id).collect();
    assert_eq!(listed, vec!["o1", "g1", "g2"]);
}

async fn vaults(store: &dyn Store) {
    let v = vault("v1", "Hr-App");
    assert!(store.create_vault(&v, b"wrapped").await.expect("create"));
    assert!(
        !store.create_vault(&vault("v2", "hr-app"), b"w").await.expect("create"),
        "vault names are case-insensitively unique"
    );
    let got = store.get_vault_by_name("HR-APP").await.expect("get").expect("found");
    assert_eq!(got.vault, v);
    assert_eq!(got.wrapped_key, b"wrapped");
    let mut changed = v.clone();
    changed.enable_rbac_authorization = true;
    changed.deletion = Some(Deletion { deleted_date: 5, scheduled_purge_date: 9 });
    store.update_vault(&changed).await.expect("update");
    assert_eq!(store.get_vault_by_name("hr-app").await.expect("get").expect("found").vault, changed);
    store.update_vault(&v).await.expect("update back");
    assert_eq!(store.list_vaults("t1").await.expect("list"), vec![v]);
}

async fn versions_and_lifecycle(store: &dyn Store) {
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

async fn listing(store: &dyn Store) {
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

async fn restore(store: &dyn Store) {
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

fn audit_row(seq: i64, vault: &str, caller: &str, result: &str) -> AuditRow {
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

async fn audit(store: &dyn Store) {
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

async fn expiry_events(store: &dyn Store) {
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
