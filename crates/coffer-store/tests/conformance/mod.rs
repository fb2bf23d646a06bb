//! The behaviour every `Store` must have. Each backend's test file includes this module
//! (`mod conformance;`) and calls `run_all`; a new backend is done when it passes. It panics
//! (it is test code) with a message naming the broken rule.
use coffer_core::lifecycle::{Deletion, RetentionPolicy};
use coffer_core::object::{Attributes, ObjectKind, Tags};
use coffer_core::principal::{Principal, PrincipalKind};
use coffer_core::vault::Vault;

use coffer_store::{
    AuditCheckpoint, AuditQuery, AuditRow, CommitGate, Credential, ListQuery, NewVersion, ObjectRef, OwnedVersion,
    PutOutcome, Redeemed, RefreshTokenRecord, RestoredObject, Store, Tenant, Witnessed,
};

mod audit;
mod directory;
mod meta;
mod objects;
mod rbac;
mod vaults;

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
    meta::meta(store).await;
    directory::directory(store).await;
    vaults::vaults(store).await;
    objects::versions_and_lifecycle(store).await;
    objects::listing(store).await;
    objects::restore(store).await;
    rbac::rbac(store).await;
    vaults::vault_lifecycle(store).await;
    objects::expiry_events(store).await;
    audit::audit(store).await;
    reads_follow_writes(store).await;
    objects::bulk_put(store).await;
    objects::concurrent_puts(store).await;
    objects::witnessed_versions(store).await;
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
        display_name: None,
        mail_nickname: None,
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

    // A certificate with its key and secret: all three and the policy, or nothing.
    let version = "a".repeat(32);
    let group = |name_key: &'static str| {
        vec![(ObjectKind::Key, name_key), (ObjectKind::Secret, name_key), (ObjectKind::Certificate, name_key)]
    };
    let attributes = Attributes::new(10);
    let tags = Tags::new();
    fn batch<'a>(
        items: &[(ObjectKind, &'a str)],
        version: &'a str,
        attrs: &'a Attributes,
        tags: &'a Tags,
    ) -> Vec<NewVersion<'a>> {
        items
            .iter()
            .map(|&(kind, name)| NewVersion {
                at: ObjectRef { vault_id: "tx-v1", kind, name_key: name },
                name,
                version,
                attributes: attrs,
                tags,
                content_type: None,
                managed: kind != ObjectKind::Certificate,
                payload: b"sealed",
                meta: None,
            })
            .collect()
    }
    // The certificate's name is held by a deleted certificate: nothing of the group is written.
    let deleted_cert = ObjectRef { vault_id: "tx-v1", kind: ObjectKind::Certificate, name_key: "tx-held" };
    assert_eq!(
        store
            .put_version(&batch(&[(ObjectKind::Certificate, "tx-held")], &version, &attributes, &tags)[0])
            .await
            .expect("put"),
        PutOutcome::Written
    );
    assert!(
        store.delete_object(&deleted_cert, &Deletion { deleted_date: 5, scheduled_purge_date: 50 }).await.expect("del")
    );
    let outcome = store
        .put_version_group(&batch(&group("tx-held"), &version, &attributes, &tags), Some("{}"))
        .await
        .expect("group");
    assert_eq!(outcome, PutOutcome::NameDeleted);
    for kind in [ObjectKind::Key, ObjectKind::Secret] {
        let at = ObjectRef { vault_id: "tx-v1", kind, name_key: "tx-held" };
        assert!(store.get_head(&at).await.expect("head").is_none(), "no {kind:?} was left behind");
    }
    let outcome = store
        .put_version_group(&batch(&group("tx-cert"), &version, &attributes, &tags), Some(r#"{"p":1}"#))
        .await
        .expect("group");
    assert_eq!(outcome, PutOutcome::Written);
    for kind in [ObjectKind::Key, ObjectKind::Secret, ObjectKind::Certificate] {
        let at = ObjectRef { vault_id: "tx-v1", kind, name_key: "tx-cert" };
        assert!(store.get_version(&at, None, false).await.expect("get").is_some(), "{kind:?} written");
    }
    let cert = ObjectRef { vault_id: "tx-v1", kind: ObjectKind::Certificate, name_key: "tx-cert" };
    assert_eq!(store.get_object_policy(&cert).await.expect("policy").as_deref(), Some(r#"{"p":1}"#));
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
        display_name: None,
        mail_nickname: None,
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
