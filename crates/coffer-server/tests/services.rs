//! The service layer without HTTP: the hospital's access matrix under both permission models,
//! built with the directory, vault and authorization services, and for every case the answer
//! of `explain`, of `who-can` and of enforcement (the caller as `auth::resolve_caller` makes
//! it from a token's claims, then `authorize_data`) — they must agree with each other and
//! with the table. And the key service's rotation policies, run by hand under a moved clock.
use std::collections::BTreeSet;
use std::sync::Arc;

use coffer_core::object::{AttributesPatch, ObjectKind};
use coffer_core::permissions::{Area, DataAction};
use coffer_core::principal::{Caller, Principal, PrincipalKind};
use coffer_core::vault::{AccessPolicy, PolicyPermissions};
use coffer_core::{Clock, ManualClock};
use coffer_crypto::jwt::AccessClaims;
use coffer_crypto::keys::KeyMaterial;
use coffer_server::authorization::{self, Question};
use coffer_server::directory::{self, NewPrincipal, PrincipalChange};
use coffer_server::keys;
use coffer_server::objects::{Origin, VaultContext};
use coffer_server::state::AppState;
use coffer_server::vaults::{self, PolicyEdit, VaultProperties, VaultSettings};
use coffer_server::{ServerConfig, open};

const SECRETS: [&str; 4] = ["sqldb-connectionstring", "patient-records-db", "xray-store", "payment-schedule-api"];
const DATA_STORES: [&str; 3] = ["sqldb-connectionstring", "patient-records-db", "xray-store"];

struct World {
    _dir: tempfile::TempDir,
    state: Arc<AppState>,
    clock: Arc<ManualClock>,
    admin: Caller,
    people: Vec<(&'static str, Principal)>,
}

impl World {
    async fn admin_subscription(&self) -> String {
        let tenant = self.state.store.get_tenant(&self.admin.tenant_id).await.expect("get").expect("tenant");
        tenant.default_subscription_id
    }

    fn oid(&self, name: &str) -> String {
        self.people.iter().find(|(n, _)| *n == name).map(|(_, p)| p.object_id.clone()).expect("known principal")
    }
}

async fn principal(state: &AppState, admin: &Caller, kind: PrincipalKind, name: &str) -> Principal {
    let new = NewPrincipal::new(kind, name);
    directory::create_principal(state, admin, new).await.expect("principal").principal
}

/// The hospital: doctors, technicians and receptionists (groups of users), a data-science
/// application, a dashboard (managed identity) and a reader application; one vault per model.
async fn hospital() -> World {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = ServerConfig::dev(dir.path().to_path_buf(), "127.0.0.1:8443".parse().expect("addr"));
    let clock = ManualClock::new(1_800_000_000);
    let opened = open(&config, clock.clone(), 8443).await.expect("open");
    let state = opened.state.clone();
    let admin_principal = state
        .store
        .find_principal_by_client_id(&opened.credentials.tenant_id, &opened.credentials.client_id)
        .await
        .expect("lookup")
        .expect("the dev administrator");
    let admin = authorization::caller_of(&state, &admin_principal).await.expect("caller");
    let mut people = Vec::new();
    for (name, kind) in [
        ("doctor1", PrincipalKind::User),
        ("doctor2", PrincipalKind::User),
        ("tech1", PrincipalKind::User),
        ("reception1", PrincipalKind::User),
        ("ml-studio", PrincipalKind::App),
        ("dashboard", PrincipalKind::ManagedIdentity),
        ("reader", PrincipalKind::App),
        ("doctors", PrincipalKind::Group),
        ("technicians", PrincipalKind::Group),
        ("receptionists", PrincipalKind::Group),
    ] {
        people.push((name, principal(&state, &admin, kind, name).await));
    }
    let mut w = World { _dir: dir, state, clock, admin, people };
    for (group, member) in
        [("doctors", "doctor1"), ("doctors", "doctor2"), ("technicians", "tech1"), ("receptionists", "reception1")]
    {
        directory::add_member(&w.state, &w.admin, &w.oid(group), &w.oid(member)).await.expect("member");
    }
    let sub = opened.credentials.subscription_id.clone();
    for (vault, rbac) in [("ward-rbac", true), ("ward-policies", false)] {
        let settings = VaultSettings {
            properties: VaultProperties { enable_rbac_authorization: Some(rbac), ..Default::default() },
            ..Default::default()
        };
        vaults::put_vault(&w.state, &w.admin, &sub, "default", vault, settings).await.expect("vault");
    }
    let item = |n: &str| format!("/vaults/ward-rbac/secrets/{n}");
    let mut grants = vec![
        ("Key Vault Secrets User", "doctors", item("patient-records-db")),
        ("Key Vault Secrets User", "technicians", item("xray-store")),
        ("Key Vault Secrets User", "receptionists", item("payment-schedule-api")),
        ("Key Vault Secrets User", "dashboard", "/vaults/ward-rbac".to_string()),
        ("Key Vault Reader", "reader", "/vaults/ward-rbac".to_string()),
    ];
    grants.extend(DATA_STORES.iter().map(|n| ("Key Vault Secrets User", "ml-studio", item(n))));
    for (role, who, scope) in grants {
        authorization::assign(&w.state, &w.admin, role, &w.oid(who), &scope).await.expect("assign");
    }
    let policy = |who: String, perms: &[&str]| AccessPolicy {
        tenant_id: w.admin.tenant_id.clone(),
        object_id: who,
        application_id: None,
        permissions: PolicyPermissions { secrets: perms.iter().map(|p| p.to_string()).collect(), ..Default::default() },
    };
    let mut policies: Vec<AccessPolicy> =
        ["doctors", "technicians", "receptionists", "ml-studio"].iter().map(|g| policy(w.oid(g), &["get"])).collect();
    policies.push(policy(w.oid("dashboard"), &["get", "list"]));
    policies.push(policy(w.oid("reader"), &["list"]));
    let write = coffer_core::permissions::ManagementAction::AccessPolicyWrite;
    let vault = vaults::granted(&w.state, &w.admin, (&sub, "default", "ward-policies"), write).await.expect("granted");
    vaults::edit_access_policies(&w.state, &w.admin, vault, PolicyEdit::Add, policies).await.expect("policies");
    // A doctor who left: disabled, with the group's grants still in place.
    let change = PrincipalChange { enabled: Some(false), ..PrincipalChange::default() };
    directory::update_principal(&w.state, &w.admin, &w.oid("doctor2"), change).await.expect("disable");
    let doctor2 = w.state.store.get_principal(&w.oid("doctor2")).await.expect("get").expect("doctor2");
    w.people.iter_mut().filter(|(n, _)| *n == "doctor2").for_each(|(_, p)| *p = doctor2.clone());
    w
}

/// Who may read each secret's value: the table of the hospital scenario.
fn may_get(vault: &str, who: &str, secret: &str) -> bool {
    let rbac = vault == "ward-rbac";
    match who {
        "doctor1" => !rbac || secret == "patient-records-db",
        "doctor2" => false, // disabled
        "tech1" => !rbac || secret == "xray-store",
        "reception1" => !rbac || secret == "payment-schedule-api",
        // Access policies cannot narrow below the vault: a `get` grant reads every secret.
        "ml-studio" => !rbac || DATA_STORES.contains(&secret),
        "dashboard" => true,
        _ => false,
    }
}

/// What enforcement decides: the caller a token of `p` resolves to (refused if disabled or
/// gone), then the data-plane permission check.
async fn enforced(state: &AppState, p: &Principal, vault: &str, action: DataAction, secret: &str) -> bool {
    let claims = AccessClaims {
        aud: String::new(),
        iss: String::new(),
        sub: p.object_id.clone(),
        oid: p.object_id.clone(),
        tid: p.tenant_id.clone(),
        iat: 0,
        nbf: 0,
        exp: i64::MAX,
        appid: None,
        azp: None,
        upn: None,
        name: None,
        idtyp: "app".into(),
        ver: "2.0".into(),
        jti: String::new(),
        cid: None,
    };
    let Ok(caller) =
        coffer_server::authentication::resolve_caller(state.store.as_ref(), &claims, state.clock.now()).await
    else {
        return false;
    };
    let record = state.store.get_vault_by_name(vault).await.expect("get").expect("vault");
    authorization::authorize_data(state, &record.vault, &caller, action, Some(secret)).await.is_ok()
}

#[tokio::test]
async fn explain_who_can_and_enforcement_agree_on_the_hospital_matrix() {
    let w = hospital().await;
    let users = ["doctor1", "doctor2", "tech1", "reception1", "ml-studio", "dashboard", "reader"];
    for vault in ["ward-rbac", "ward-policies"] {
        for secret in SECRETS {
            let question = Question {
                vault: vault.into(),
                action: "getSecret".into(),
                object: Some((Area::Secrets, secret.into())),
            };
            let who_can = authorization::who_can(&w.state, &w.admin, &question).await.expect("who-can");
            let listed: BTreeSet<String> = who_can.answer.iter().map(|(p, _)| p.name.clone()).collect();
            for who in users {
                let p = &w.people.iter().find(|(n, _)| *n == who).expect("principal").1;
                let expected = may_get(vault, who, secret);
                let explained = authorization::explain(&w.state, &w.admin, &question, &p.object_id)
                    .await
                    .expect("explain")
                    .answer
                    .2
                    .allowed;
                let enforced = enforced(&w.state, p, vault, DataAction::SecretGet, secret).await;
                let case = format!("{who} getSecret {vault}/{secret}");
                assert_eq!(enforced, expected, "enforcement: {case}");
                assert_eq!(explained, expected, "explain: {case}");
                assert_eq!(listed.contains(who), expected, "who-can: {case} (listed: {listed:?})");
            }
        }
    }
}

#[tokio::test]
async fn a_directory_change_by_a_non_administrator_is_refused_by_the_service() {
    let w = hospital().await;
    let doctor = w.people.iter().find(|(n, _)| *n == "doctor1").expect("doctor").1.clone();
    let as_doctor = authorization::caller_of(&w.state, &doctor).await.expect("caller");
    let new = NewPrincipal { tenant_admin: true, ..NewPrincipal::new(PrincipalKind::User, "intruder") };
    let err = directory::create_principal(&w.state, &as_doctor, new).await.expect_err("refused");
    assert_eq!(err.kind, coffer_core::ErrorKind::Forbidden, "{}", err.message);
    assert!(w.state.store.find_user(&w.admin.tenant_id, "intruder").await.expect("find").is_none());
}

const DAY: i64 = 86_400;

/// A software key in `vault`, as the data plane stores it; its version id.
async fn new_key(w: &World, vault: &str, name: &str, expires: Option<i64>) -> String {
    let ctx =
        VaultContext::open(&w.state, vault, w.admin.clone(), Origin::Internal, "7.5".into()).await.expect("vault");
    let material = KeyMaterial::generate("EC", None, Some("P-256"), None).expect("key");
    let attributes = AttributesPatch { enabled: Some(true), not_before: None, expires: expires.map(Some) };
    let ops = keys::default_ops("EC");
    let (v, _) = keys::store_key_version(
        &w.state,
        &ctx,
        keys::NewKey::unmanaged(name, &material, ops, attributes, Default::default()),
    )
    .await
    .expect("store");
    v.version
}

async fn set_policy(w: &World, vault: &str, name: &str, json: &str) {
    let ctx =
        VaultContext::open(&w.state, vault, w.admin.clone(), Origin::Internal, "7.5".into()).await.expect("vault");
    let mut policy: keys::RotationPolicy = serde_json::from_str(json).expect("policy");
    policy.validate().expect("valid");
    keys::save_policy(&w.state, &ctx, name, &policy).await.expect("save");
}

async fn versions(w: &World, vault: &str, name: &str) -> Vec<coffer_store::StoredVersion> {
    let vault_id = w.state.store.get_vault_by_name(vault).await.expect("get").expect("vault").vault.id;
    let at = coffer_store::ObjectRef { vault_id: &vault_id, kind: ObjectKind::Key, name_key: name };
    w.state.store.all_versions(&at).await.expect("versions")
}

async fn records_of(w: &World, operation: &str) -> usize {
    let q = coffer_store::AuditQuery { operation: Some(operation.into()), limit: 100, ..Default::default() };
    w.state.store.query_audit(&q).await.expect("query").len()
}

#[tokio::test]
async fn rotation_policies_rotate_and_notify_once_and_one_broken_key_stops_nothing() {
    let w = hospital().await;
    let vault = "ward-policies";
    new_key(&w, vault, "rotating", None).await;
    set_policy(
        &w,
        vault,
        "rotating",
        r#"{"lifetimeActions":[{"trigger":{"timeAfterCreate":"P30D"},"action":{"type":"Rotate"}}],"attributes":{"expiryTime":"P90D"}}"#,
    )
    .await;
    new_key(&w, vault, "expiring", Some(1_800_000_000 + 40 * DAY)).await;
    set_policy(
        &w,
        vault,
        "expiring",
        r#"{"lifetimeActions":[{"trigger":{"timeBeforeExpiry":"P30D"},"action":{"type":"Notify"}}]}"#,
    )
    .await;
    // A key whose stored policy cannot be read: logged, and the others still run.
    new_key(&w, vault, "broken", None).await;
    let vault_id = w.state.store.get_vault_by_name(vault).await.expect("get").expect("vault").vault.id;
    let at = coffer_store::ObjectRef { vault_id: &vault_id, kind: ObjectKind::Key, name_key: "broken" };
    assert!(w.state.store.set_object_policy(&at, Some("{not json")).await.expect("garbage"));

    // (days since start, rotations this run, versions of "rotating", NearExpiry events so far)
    let steps: [(i64, usize, usize, usize); 5] =
        [(5, 0, 1, 0), (11, 0, 1, 1), (31, 1, 2, 1), (31, 0, 2, 1), (62, 1, 3, 1)];
    for (day, rotations, count, notices) in steps {
        w.clock.set(1_800_000_000 + day * DAY);
        let rotated = keys::run_rotation_policies(&w.state).await.expect("run");
        assert_eq!(rotated, rotations, "day {day}: rotations");
        let all = versions(&w, vault, "rotating").await;
        assert_eq!(all.len(), count, "day {day}: versions");
        assert_eq!(records_of(&w, "KeyNearExpiry").await, notices, "day {day}: near-expiry events");
        let newest = all.iter().max_by_key(|v| v.attributes.created).expect("a version");
        if count > 1 {
            assert_eq!(newest.attributes.expires, Some(newest.attributes.created + 90 * DAY), "day {day}: expiryTime");
        }
    }
    assert_eq!(records_of(&w, "KeyRotate").await, 2);
    assert_eq!(records_of(&w, "KeyNewVersionCreated").await, 2);

    // Purged and made again under the same name, the key is a new object: told afresh.
    let ctx =
        VaultContext::open(&w.state, vault, w.admin.clone(), Origin::Internal, "7.5".into()).await.expect("vault");
    let objects = coffer_server::objects::Objects::new(&w.state, &ctx, ObjectKind::Key);
    objects.delete("expiring").await.expect("delete");
    objects.purge("expiring").await.expect("purge");
    let now = w.clock.now();
    new_key(&w, vault, "expiring", Some(now + 20 * DAY)).await;
    set_policy(
        &w,
        vault,
        "expiring",
        r#"{"lifetimeActions":[{"trigger":{"timeBeforeExpiry":"P30D"},"action":{"type":"Notify"}}]}"#,
    )
    .await;
    keys::run_rotation_policies(&w.state).await.expect("run");
    keys::run_rotation_policies(&w.state).await.expect("run again");
    assert_eq!(records_of(&w, "KeyNearExpiry").await, 2, "one notice for the new key, once");
}

/// One step of a secret's life and what it should answer: `Ok`, or the error kind.
#[derive(Debug, Clone, Copy)]
enum Step {
    Create,
    Read,
    Delete,
    ReadDeleted,
    Recover,
    Purge,
    /// Days pass, then the purge job runs.
    DaysPassThenJobs(i64),
}

/// A step and its expected answer (`Ok`, or the error kind).
type Expect = (Step, Result<(), coffer_core::ErrorKind>);

#[tokio::test]
async fn the_object_lifecycle_follows_soft_delete_and_purge_protection() {
    use coffer_core::ErrorKind::{Forbidden, NotFound};
    let w = hospital().await;
    let settings = VaultSettings {
        properties: VaultProperties {
            enable_purge_protection: Some(true),
            soft_delete_retention_in_days: Some(7),
            ..Default::default()
        },
        ..Default::default()
    };
    let sub = w.admin_subscription().await;
    vaults::put_vault(&w.state, &w.admin, &sub, "default", "ward-protected", settings).await.expect("vault");
    let cases: &[(&str, &[Expect])] = &[
        (
            "ward-policies",
            &[
                (Step::Create, Ok(())),
                (Step::Read, Ok(())),
                (Step::Delete, Ok(())),
                (Step::Read, Err(NotFound)),
                (Step::ReadDeleted, Ok(())),
                (Step::Create, Err(coffer_core::ErrorKind::Conflict)),
                (Step::Recover, Ok(())),
                (Step::Read, Ok(())),
                (Step::Delete, Ok(())),
                (Step::Purge, Ok(())),
                (Step::ReadDeleted, Err(NotFound)),
                (Step::Create, Ok(())),
            ],
        ),
        (
            "ward-protected",
            &[
                (Step::Create, Ok(())),
                (Step::Delete, Ok(())),
                (Step::Purge, Err(Forbidden)),
                (Step::DaysPassThenJobs(6), Ok(())),
                (Step::ReadDeleted, Ok(())),
                (Step::DaysPassThenJobs(2), Ok(())),
                (Step::ReadDeleted, Err(NotFound)),
                (Step::Create, Ok(())),
            ],
        ),
    ];
    for (vault, steps) in cases {
        for (i, (step, expected)) in steps.iter().enumerate() {
            let ctx = VaultContext::open(&w.state, vault, w.admin.clone(), Origin::Internal, "7.5".into())
                .await
                .expect("open");
            let secrets = coffer_server::objects::Objects::new(&w.state, &ctx, ObjectKind::Secret);
            let outcome = match step {
                Step::Create => secrets
                    .create_version(coffer_server::objects::NewObject {
                        name: "ward-db",
                        payload: b"connection string",
                        attributes: AttributesPatch::default(),
                        tags: Default::default(),
                        content_type: None,
                        managed: false,
                        meta: None,
                        version: None,
                    })
                    .await
                    .map(drop),
                Step::Read => secrets.read("ward-db", None).await.map(drop),
                Step::Delete => secrets.delete("ward-db").await.map(drop),
                Step::ReadDeleted => secrets.get_deleted("ward-db").await.map(drop),
                Step::Recover => secrets.recover("ward-db").await.map(drop),
                Step::Purge => secrets.purge("ward-db").await,
                Step::DaysPassThenJobs(days) => {
                    w.clock.advance(days * DAY);
                    coffer_server::jobs::purge_due(&w.state).await.map(drop)
                }
            };
            assert_eq!(outcome.map_err(|e| e.kind), *expected, "{vault} step {i}: {step:?}");
        }
    }
}

#[tokio::test]
async fn the_secret_service_checks_the_caller_before_it_reads() {
    let w = hospital().await;
    let open = |who: &Principal| {
        let state = w.state.clone();
        let who = who.clone();
        async move {
            let caller = authorization::caller_of(&state, &who).await.expect("caller");
            VaultContext::open(&state, "ward-rbac", caller, Origin::Internal, "7.5".into()).await.expect("open")
        }
    };
    // The vault's administrator writes the secrets (a Secrets Officer at the vault's scope).
    authorization::assign(&w.state, &w.admin, "Key Vault Secrets Officer", &w.admin.object_id, "/vaults/ward-rbac")
        .await
        .expect("officer");
    let admin_ctx =
        VaultContext::open(&w.state, "ward-rbac", w.admin.clone(), Origin::Internal, "7.5".into()).await.expect("open");
    for name in ["patient-records-db", "xray-store"] {
        let new = coffer_server::secrets::NewSecret {
            value: zeroize::Zeroizing::new(format!("value-of-{name}")),
            content_type: None,
            tags: Default::default(),
            attributes: AttributesPatch::default(),
        };
        coffer_server::secrets::set(&w.state, &admin_ctx, name, new).await.expect("set");
    }
    let doctor = w.people.iter().find(|(n, _)| *n == "doctor1").expect("doctor").1.clone();
    let ctx = open(&doctor).await;
    let got = coffer_server::secrets::get(&w.state, &ctx, "patient-records-db", None).await.expect("granted");
    assert_eq!(got.value.as_str(), "value-of-patient-records-db");
    let refused = coffer_server::secrets::get(&w.state, &ctx, "xray-store", None).await.expect_err("not granted");
    assert_eq!(refused.kind, coffer_core::ErrorKind::Forbidden);
    let page = coffer_server::objects::PageRequest { max_results: 25, skip_token: None };
    let listing = coffer_server::secrets::list(&w.state, &ctx, &page).await.expect_err("no vault-wide grant");
    assert_eq!(listing.kind, coffer_core::ErrorKind::Forbidden);
}

#[tokio::test]
async fn a_vault_change_needs_the_grant_for_that_change() {
    use coffer_core::permissions::ManagementAction;
    let w = hospital().await;
    let sub = w.admin_subscription().await;
    let place = (sub.as_str(), "default", "ward-policies");
    // Granted for reading, it cannot be used to edit access policies.
    let read = vaults::granted(&w.state, &w.admin, place, ManagementAction::VaultRead).await.expect("granted");
    let err =
        vaults::edit_access_policies(&w.state, &w.admin, read, PolicyEdit::Add, Vec::new()).await.expect_err("no");
    assert_eq!(err.kind, coffer_core::ErrorKind::Internal);
    // A doctor may not even get the grant to write the vault.
    let doctor = w.people.iter().find(|(n, _)| *n == "doctor1").expect("doctor").1.clone();
    let as_doctor = authorization::caller_of(&w.state, &doctor).await.expect("caller");
    let refused = vaults::granted(&w.state, &as_doctor, place, ManagementAction::VaultWrite).await.expect_err("no");
    assert_eq!(refused.kind, coffer_core::ErrorKind::Forbidden);
}

#[tokio::test]
async fn the_key_service_checks_the_grant_and_the_keys_own_operations() {
    use keys::{KeyOperation, KeyOperationInput, KeyOperationOutput, KeyToCreate};
    let w = hospital().await;
    authorization::assign(&w.state, &w.admin, "Key Vault Crypto Officer", &w.admin.object_id, "/vaults/ward-rbac")
        .await
        .expect("officer");
    let admin_ctx =
        VaultContext::open(&w.state, "ward-rbac", w.admin.clone(), Origin::Internal, "7.5".into()).await.expect("open");
    let new = |ops: Option<Vec<&str>>| KeyToCreate {
        kty: "EC".into(),
        crv: Some("P-256".into()),
        key_ops: ops.map(|o| o.iter().map(|s| s.to_string()).collect()),
        ..Default::default()
    };
    let signer = keys::create(&w.state, &admin_ctx, "lab-signer", new(None)).await.expect("create");
    assert_eq!(signer.meta.key_ops, ["sign", "verify"]);
    let verify_only =
        keys::create(&w.state, &admin_ctx, "verify-only", new(Some(vec!["verify"]))).await.expect("create");
    assert_eq!(verify_only.meta.kty, "EC");
    let hsm = KeyToCreate { kty: "EC-HSM".into(), ..Default::default() };
    let refused = keys::create(&w.state, &admin_ctx, "in-hardware", hsm).await.expect_err("no HSM configured");
    assert_eq!(refused.kind, coffer_core::ErrorKind::BadRequest);

    let digest = coffer_crypto::digest::sha256(b"lab result 42");
    async fn sign(
        state: &AppState,
        ctx: &VaultContext,
        name: &str,
        digest: &[u8],
    ) -> coffer_core::Result<KeyOperationOutput> {
        let input = KeyOperationInput { alg: "ES256".into(), value: Some(digest.to_vec()), ..Default::default() };
        keys::perform(state, ctx, (name, None), KeyOperation::Sign, input).await
    }
    let KeyOperationOutput::Bytes { value: signature, kid, .. } =
        sign(&w.state, &admin_ctx, "lab-signer", &digest).await.expect("sign")
    else {
        panic!("sign gives bytes")
    };
    assert!(kid.ends_with(&format!("/keys/lab-signer/{}", signer.version.version)), "{kid}");
    let input = KeyOperationInput {
        alg: "ES256".into(),
        value: Some(signature.to_vec()),
        digest: Some(digest.to_vec()),
        ..Default::default()
    };
    let verified = keys::perform(&w.state, &admin_ctx, ("lab-signer", None), KeyOperation::Verify, input).await;
    assert!(matches!(verified, Ok(KeyOperationOutput::Verified(true))), "{verified:?}");
    // The key's own key_ops refuse what the caller's grant would allow.
    let not_permitted = sign(&w.state, &admin_ctx, "verify-only", &digest).await.expect_err("key_ops has no sign");
    assert_eq!(not_permitted.inner_code.as_deref(), Some("KeyOperationForbidden"));
    // A caller without a grant on keys is refused before the key is read: a missing key and an
    // existing one look the same to them.
    let doctor = w.people.iter().find(|(n, _)| *n == "doctor1").expect("doctor").1.clone();
    let caller = authorization::caller_of(&w.state, &doctor).await.expect("caller");
    let doctor_ctx =
        VaultContext::open(&w.state, "ward-rbac", caller, Origin::Internal, "7.5".into()).await.expect("open");
    for name in ["lab-signer", "no-such-key"] {
        let refused = sign(&w.state, &doctor_ctx, name, &digest).await.expect_err("no key grant");
        assert_eq!(refused.kind, coffer_core::ErrorKind::Forbidden, "{name}");
        let refused = keys::get(&w.state, &doctor_ctx, name, None).await.expect_err("no key grant");
        assert_eq!(refused.kind, coffer_core::ErrorKind::Forbidden, "{name}");
    }
    // Disabled: every operation stops.
    let change = keys::KeyChange {
        attributes: AttributesPatch { enabled: Some(false), ..Default::default() },
        ..Default::default()
    };
    keys::update(&w.state, &admin_ctx, "lab-signer", None, change).await.expect("disable");
    let disabled = sign(&w.state, &admin_ctx, "lab-signer", &digest).await.expect_err("disabled");
    assert_eq!(disabled.kind, coffer_core::ErrorKind::Forbidden);
}

#[tokio::test]
async fn a_certificate_brings_its_key_and_secret_through_delete_recover_and_purge() {
    use coffer_server::certificates::{self, CertPolicy, CertificateToCreate};
    let w = hospital().await;
    for role in ["Key Vault Certificates Officer", "Key Vault Secrets Officer", "Key Vault Crypto Officer"] {
        authorization::assign(&w.state, &w.admin, role, &w.admin.object_id, "/vaults/ward-rbac").await.expect("role");
    }
    let ctx =
        VaultContext::open(&w.state, "ward-rbac", w.admin.clone(), Origin::Internal, "7.5".into()).await.expect("open");
    let mut policy = CertPolicy::default();
    policy.issuer.name = Some("Self".into());
    policy.x509_props.subject = Some("CN=pacs.hospital.internal".into());
    let new = CertificateToCreate { policy: Some(policy), enabled: None, tags: Default::default() };
    let op = certificates::create(&w.state, &ctx, "pacs-tls", new).await.expect("create");
    assert_eq!(op.status, "completed");
    let cert = certificates::get(&w.state, &ctx, "pacs-tls", None).await.expect("get");
    assert_eq!(cert.chain.len(), 1);
    assert_eq!(cert.policy.x509_props.subject.as_deref(), Some("CN=pacs.hospital.internal"));
    let key = keys::get(&w.state, &ctx, "pacs-tls", None).await.expect("its key");
    assert_eq!(key.version.version, cert.version.version, "one version id for the three objects");
    assert!(key.version.managed);
    // Its key and secret are the certificate's: not deleted on their own.
    let refused = keys::delete(&w.state, &ctx, "pacs-tls").await.expect_err("managed");
    assert_eq!(refused.kind, coffer_core::ErrorKind::Forbidden, "{refused:?}");

    certificates::delete(&w.state, &ctx, "pacs-tls").await.expect("delete");
    let gone = |e: coffer_core::Error| e.kind == coffer_core::ErrorKind::NotFound;
    assert!(keys::get(&w.state, &ctx, "pacs-tls", None).await.map(|_| ()).is_err_and(gone));
    assert!(coffer_server::secrets::get(&w.state, &ctx, "pacs-tls", None).await.map(|_| ()).is_err_and(gone));
    let deleted: Vec<String> =
        certificates::all_deleted(&w.state, &ctx).await.expect("deleted").into_iter().map(|v| v.name).collect();
    assert_eq!(deleted, ["pacs-tls"]);

    certificates::recover(&w.state, &ctx, "pacs-tls").await.expect("recover");
    keys::get(&w.state, &ctx, "pacs-tls", None).await.expect("the key is back");
    coffer_server::secrets::get(&w.state, &ctx, "pacs-tls", None).await.expect("the secret is back");

    certificates::delete(&w.state, &ctx, "pacs-tls").await.expect("delete again");
    certificates::purge(&w.state, &ctx, "pacs-tls").await.expect("purge");
    assert!(certificates::all_deleted(&w.state, &ctx).await.expect("deleted").is_empty());
    assert!(keys::all_deleted(&w.state, &ctx).await.expect("deleted keys").is_empty());
    assert!(coffer_server::secrets::all_deleted(&w.state, &ctx).await.expect("deleted secrets").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_job_runs_at_once_renew_a_due_certificate_once() {
    use coffer_server::certificates::{self, CertPolicy, CertificateToCreate};
    let w = hospital().await;
    authorization::assign(
        &w.state,
        &w.admin,
        "Key Vault Certificates Officer",
        &w.admin.object_id,
        "/vaults/ward-rbac",
    )
    .await
    .expect("officer");
    let ctx =
        VaultContext::open(&w.state, "ward-rbac", w.admin.clone(), Origin::Internal, "7.5".into()).await.expect("open");
    let mut policy: CertPolicy = serde_json::from_value(serde_json::json!({
        "issuer": {"name": "Self"},
        "x509_props": {"subject": "CN=lab.hospital.internal", "validity_months": 12},
        "lifetime_actions": [{"trigger": {"lifetime_percentage": 50}, "action": {"action_type": "AutoRenew"}}],
    }))
    .expect("policy");
    policy.normalize(w.clock.now()).expect("valid");
    let new = CertificateToCreate { policy: Some(policy), enabled: None, tags: Default::default() };
    certificates::create(&w.state, &ctx, "lab", new).await.expect("create");
    w.clock.advance(200 * DAY);
    // The scheduler's run and an operator's (`advance-time`) can meet: the renewal happens once.
    let (a, b) = tokio::join!(coffer_server::jobs::run_once(&w.state), coffer_server::jobs::run_once(&w.state));
    assert_eq!(a.renewed_certificates + b.renewed_certificates, 1);
    assert_eq!(certificates::all_versions(&w.state, &ctx, "lab").await.expect("versions").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_root_rotation_holds_back_what_seals_under_the_root_or_destroys_a_vault_key() {
    // While a rotation rewraps (it holds `pause_root_writes`), a new vault's key sealed under
    // the old root after the rotation read the vaults would be lost, and a purge could have its
    // key-encryption key brought back by the rewrap: both wait until the rotation is done.
    let w = hospital().await;
    let sub = w.admin_subscription().await;
    // A deleted vault, due for purge (deleted directly in the store: the setting, not the path).
    let mut gone = w.state.store.list_vaults(&w.admin.tenant_id).await.expect("list").remove(0);
    gone.deletion = Some(coffer_core::lifecycle::Deletion { deleted_date: w.clock.now(), scheduled_purge_date: 0 });
    w.state.store.soft_delete_vault(&gone).await.expect("soft delete");
    let paused = w.state.keyring.pause_root_writes().await;
    let (state, admin) = (w.state.clone(), w.admin.clone());
    let creating = tokio::spawn(async move {
        vaults::put_vault(&state, &admin, &sub, "default", "ward-new", VaultSettings::default()).await
    });
    let (state, id) = (w.state.clone(), gone.id.clone());
    let purging = tokio::spawn(async move { coffer_server::system::purge_vault(&state, &id, None).await });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!creating.is_finished() && !purging.is_finished(), "both wait for the rotation");
    let names: Vec<String> =
        w.state.store.list_vaults(&w.admin.tenant_id).await.expect("list").into_iter().map(|v| v.name).collect();
    assert!(!names.iter().any(|n| n == "ward-new"), "nothing was written meanwhile");
    drop(paused);
    creating.await.expect("join").expect("the vault is created once the rotation is done");
    purging.await.expect("join").expect("the purge runs once the rotation is done");
}
