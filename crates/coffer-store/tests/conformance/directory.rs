//! The directory (`DirectoryStore`).
use super::*;

pub async fn directory(store: &dyn Store) {
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
        display_name: None,
        mail_nickname: Some("apps".into()),
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
        display_name: Some("Alice Doe".into()),
        mail_nickname: None,
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
    disabled.display_name = Some("Alice D.".into());
    assert!(store.update_principal(&disabled).await.expect("update"));
    assert_eq!(store.get_principal("u1").await.expect("get"), Some(disabled.clone()), "every field updated");

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
