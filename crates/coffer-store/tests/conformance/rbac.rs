//! Role definitions and assignments (`RbacStore`).
use super::*;

pub async fn rbac(store: &dyn Store) {
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
    assert_eq!(ids(store.list_role_assignments("t1", None, None).await.expect("list")), ["a1", "a2", "a3"]);
    assert!(store.delete_role_definition("t1", "r1").await.expect("delete role"));
    assert!(store.list_role_definitions("t1").await.expect("list").is_empty());
    // Transitive group members.
    assert!(store.add_group_member("gA", "gB").await.expect("nest"));
    assert!(store.add_group_member("gB", "p9").await.expect("member"));
    assert!(store.add_group_member("gB", "gA").await.expect("cycle"));
    assert_eq!(store.group_descendants("gA").await.expect("descendants"), ["gB", "p9"]);
}
