//! Vaults and resource groups (`VaultStore`).
use super::*;

pub async fn vault_lifecycle(store: &dyn Store) {
    use coffer_store::ResourceGroup;
    let mut v = vault("vl", "lifecycle");
    assert!(store.create_vault(&v, b"w").await.expect("create"));
    put(store, "vl", "s", &"a".repeat(32), b"p").await;
    assert!(!store.claim_vault_purge("vl", None).await.expect("claim live"), "a live vault cannot be purged");
    let assignment = |id: &str, scope: &str| coffer_core::rbac::RoleAssignment {
        id: id.into(),
        tenant_id: "t1".into(),
        scope: scope.into(),
        role_definition_id: "r-vl".into(),
        principal_id: "p-vl".into(),
        created: 1,
        created_by: "admin".into(),
    };
    for (id, scope) in
        [("vl-a", "/vaults/lifecycle"), ("vl-b", "/vaults/lifecycle/secrets/s"), ("vl-c", "/vaults/lifecyclex")]
    {
        assert!(store.create_role_assignment(&assignment(id, scope)).await.expect("assign"));
    }
    v.deletion = Some(Deletion { deleted_date: 100, scheduled_purge_date: 200 });
    store.soft_delete_vault(&v).await.expect("delete");
    let deleted = store.get_vault_by_name("lifecycle").await.expect("get").expect("kept");
    assert_eq!(deleted.vault.deletion, v.deletion, "a soft-deleted vault is kept with its dates");
    let left: Vec<String> =
        store.list_role_assignments("t1", None, Some("p-vl")).await.expect("list").into_iter().map(|a| a.id).collect();
    assert_eq!(left, ["vl-c"], "the vault's assignments go with it, another vault's stay");
    assert!(store.delete_role_assignment("vl-c").await.expect("tidy"));
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
    assert_eq!(store.list_resource_groups("s1").await.expect("list"), vec![rg.clone()]);
    assert!(store.delete_resource_group("s1", "CLINIC").await.expect("delete"));
    assert!(store.get_resource_group("s1", "clinic").await.expect("get").is_none());

    // A group's role assignments end with it; another tenant's group of that name keeps its own.
    for (tenant, sub) in [("t-ward", "s-ward"), ("t-other", "s-other")] {
        let t = Tenant { id: tenant.into(), name: tenant.into(), default_subscription_id: sub.into(), created: 1 };
        store.create_tenant(&t).await.expect("tenant");
        store
            .put_resource_group(&ResourceGroup { subscription_id: sub.into(), name: "Ward".into(), ..rg.clone() })
            .await
            .expect("rg");
        let a = coffer_core::rbac::RoleAssignment {
            id: format!("a-{tenant}"),
            tenant_id: tenant.into(),
            scope: "/resourcegroups/ward".into(),
            role_definition_id: "reader".into(),
            principal_id: format!("p-{tenant}"),
            created: 1,
            created_by: "p".into(),
        };
        assert!(store.create_role_assignment(&a).await.expect("assign"));
    }
    assert!(store.delete_resource_group("s-ward", "ward").await.expect("delete"));
    assert!(store.get_role_assignment("a-t-ward").await.expect("get").is_none(), "ended with its group");
    assert!(store.get_role_assignment("a-t-other").await.expect("get").is_some(), "another tenant's stays");
}

pub async fn vaults(store: &dyn Store) {
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
