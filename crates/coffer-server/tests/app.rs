//! The server in process (no TLS; the `Host` header routes), with an injected clock.
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use coffer_core::ManualClock;
use coffer_core::object::ObjectKind;
use coffer_core::principal::{Principal, PrincipalKind};
use coffer_server::{ServerConfig, build_app, open};
use coffer_store::{ObjectRef, Tenant};
use serde_json::{Value, json};
use tower::ServiceExt;

const START: i64 = 1_800_000_000;
const VAULT_HOST: &str = "hr-app.vault.localhost:8443";

struct Harness {
    _dir: tempfile::TempDir,
    app: axum::Router,
    opened: coffer_server::Opened,
    clock: Arc<ManualClock>,
}

async fn harness() -> Harness {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(START);
    let config = ServerConfig::dev(dir.path().to_path_buf(), "127.0.0.1:8443".parse().expect("addr"));
    let opened = open(&config, clock.clone(), 8443).await.expect("open");
    let app = build_app(opened.state.clone());
    Harness { _dir: dir, app, opened, clock }
}

impl Harness {
    async fn call(
        &self,
        method: &str,
        host: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value, axum::http::HeaderMap) {
        let mut req = Request::builder().method(method).uri(path).header("host", host);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let req = match body {
            Some(b) => req.header("content-type", "application/json").body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .expect("request");
        let resp = self.app.clone().oneshot(req).await.expect("response");
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.expect("body");
        let value = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
        (status, value, headers)
    }

    async fn token_raw(&self, form: &str, tenant: &str) -> (StatusCode, Value) {
        let req = Request::builder()
            .method("POST")
            .uri(format!("/{tenant}/oauth2/v2.0/token"))
            .header("host", "localhost:8443")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(form.to_string()))
            .expect("request");
        let resp = self.app.clone().oneshot(req).await.expect("response");
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.expect("body");
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    async fn token(&self, resource: &str) -> String {
        let c = &self.opened.credentials;
        let form = format!(
            "grant_type=client_credentials&client_id={}&client_secret={}&scope={resource}/.default",
            c.client_id, c.client_secret
        );
        let (status, body) = self.token_raw(&form, &c.tenant_id).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["access_token"].as_str().expect("token").to_string()
    }

    /// Creates `hr-app` with an access policy for the admin, and returns a data-plane token.
    async fn vault_with_token(&self) -> String {
        let mgmt = self.token("https://localhost:8443").await;
        let c = &self.opened.credentials;
        let admin_oid = self
            .opened
            .state
            .store
            .find_principal_by_client_id(&c.tenant_id, &c.client_id)
            .await
            .expect("find")
            .expect("admin")
            .object_id;
        let path = format!(
            "/subscriptions/{}/resourceGroups/default/providers/Microsoft.KeyVault/vaults/hr-app?api-version=2023-07-01",
            c.subscription_id
        );
        let body = json!({"location": "local", "properties": {"accessPolicies": [
            {"tenantId": c.tenant_id, "objectId": admin_oid, "permissions": {"secrets": ["all"]}}
        ]}});
        let (status, v, _) = self.call("PUT", "localhost:8443", &path, Some(&mgmt), Some(body)).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        self.token("https://vault.localhost:8443").await
    }
}

#[tokio::test]
async fn swapped_ciphertexts_fail_instead_of_returning_the_wrong_secret() {
    let h = harness().await;
    let token = h.vault_with_token().await;
    let (s, a, _) = h
        .call("PUT", VAULT_HOST, "/secrets/alpha?api-version=7.6", Some(&token), Some(json!({"value": "alpha-value"})))
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, b, _) = h
        .call("PUT", VAULT_HOST, "/secrets/beta?api-version=7.6", Some(&token), Some(json!({"value": "beta-value"})))
        .await;
    assert_eq!(s, StatusCode::OK);
    let version = |v: &Value| v["id"].as_str().expect("id").rsplit('/').next().expect("version").to_string();
    let vault = h.opened.state.store.get_vault_by_name("hr-app").await.expect("get").expect("vault").vault;
    let (va, vb) = (version(&a), version(&b));
    let at_a = ObjectRef { vault_id: &vault.id, kind: ObjectKind::Secret, name_key: "alpha" };
    let at_b = ObjectRef { vault_id: &vault.id, kind: ObjectKind::Secret, name_key: "beta" };
    h.opened.state.store.raw_swap_payloads((&at_a, &va), (&at_b, &vb)).await.expect("swap");

    for name in ["alpha", "beta"] {
        let (s, body, _) =
            h.call("GET", VAULT_HOST, &format!("/secrets/{name}?api-version=7.6"), Some(&token), None).await;
        assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
        let text = body.to_string();
        assert!(!text.contains("alpha-value") && !text.contains("beta-value"), "{text}");
        assert_eq!(body["error"]["code"], "InternalError");
    }
    // Listing metadata still works: only the sealed payloads are bound to their place.
    let (s, list, _) = h.call("GET", VAULT_HOST, "/secrets?api-version=7.6", Some(&token), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list["value"].as_array().expect("list").len(), 2);
}

#[tokio::test]
async fn token_lifetime_follows_the_injected_clock() {
    let h = harness().await;
    let token = h.vault_with_token().await;
    let get = |t: String| {
        let h = &h;
        async move { h.call("GET", VAULT_HOST, "/secrets?api-version=7.6", Some(&t), None).await }
    };
    assert_eq!(get(token.clone()).await.0, StatusCode::OK);
    h.clock.advance(3599);
    assert_eq!(get(token.clone()).await.0, StatusCode::OK);
    h.clock.advance(1);
    let (s, body, headers) = get(token.clone()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(body["error"]["message"].as_str().expect("message").contains("expired"));
    assert!(headers.get("www-authenticate").is_some());
    // A token from the future (clock moved back) is not yet valid.
    let fresh = h.token("https://vault.localhost:8443").await;
    h.clock.set(START);
    let (s, body, headers) = get(fresh).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(body["error"]["message"].as_str().expect("message").contains("not yet valid"));
    assert!(headers.get("www-authenticate").is_some());
}

#[tokio::test]
async fn tokens_of_another_tenant_or_a_missing_principal_are_refused() {
    let h = harness().await;
    let _ = h.vault_with_token().await;
    let state = &h.opened.state;
    let other = Tenant {
        id: "other-tenant".into(),
        name: "other".into(),
        default_subscription_id: "sub2".into(),
        created: START,
    };
    state.store.create_tenant(&other).await.expect("tenant");
    state.tokens.load_tenant(state.store.as_ref(), &state.keyring, &other.id, START).await.expect("keys");
    let stranger = Principal {
        object_id: "stranger".into(),
        tenant_id: other.id.clone(),
        kind: PrincipalKind::App,
        name: "stranger".into(),
        client_id: Some("stranger-app".into()),
        enabled: true,
        tenant_admin: true,
        created: START,
        display_name: None,
        mail_nickname: None,
    };
    state.store.create_principal(&stranger).await.expect("principal");
    let (t, _) =
        state.tokens.issue(&stranger, None, None, "https://vault.localhost:8443", &state.names, START).expect("issue");
    let (s, body, headers) = h.call("GET", VAULT_HOST, "/secrets?api-version=7.6", Some(&t), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{body}");
    assert!(headers.get("www-authenticate").is_some(), "a token of another tenant gets the challenge");
    // A well-signed token for a principal that does not exist.
    let ghost = Principal { object_id: "ghost".into(), tenant_id: h.opened.credentials.tenant_id.clone(), ..stranger };
    let (t, _) =
        state.tokens.issue(&ghost, None, None, "https://vault.localhost:8443", &state.names, START).expect("issue");
    let (s, _, headers) = h.call("GET", VAULT_HOST, "/secrets?api-version=7.6", Some(&t), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(headers.get("www-authenticate").is_some());
}

#[tokio::test]
async fn token_endpoint_errors_are_oauth_shaped_and_do_not_reveal_clients() {
    let h = harness().await;
    let c = &h.opened.credentials;
    let scope = "scope=https://vault.localhost:8443/.default";
    let wrong_secret = format!("grant_type=client_credentials&client_id={}&client_secret=nope&{scope}", c.client_id);
    let unknown_client = format!(
        "grant_type=client_credentials&client_id=00000000-0000-0000-0000-000000000000&client_secret=nope&{scope}"
    );
    let (s1, b1) = h.token_raw(&wrong_secret, &c.tenant_id).await;
    let (s2, b2) = h.token_raw(&unknown_client, &c.tenant_id).await;
    assert_eq!((s1, s2), (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED));
    assert_eq!(b1["error"], "invalid_client");
    assert_eq!(b1["error_description"], b2["error_description"], "the same answer whether or not the client exists");
    let bad_grant =
        format!("grant_type=authorization_code&client_id={}&client_secret={}&{scope}", c.client_id, c.client_secret);
    assert_eq!(h.token_raw(&bad_grant, &c.tenant_id).await.1["error"], "unsupported_grant_type");
    let bad_scope = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}&scope=https://elsewhere/.default",
        c.client_id, c.client_secret
    );
    assert_eq!(h.token_raw(&bad_scope, &c.tenant_id).await.1["error"], "invalid_scope");
    let (s, b) = h.token_raw(&wrong_secret, "no-such-tenant").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(b["error"], "invalid_tenant");
    assert_eq!(h.token_raw("%%%", &c.tenant_id).await.0, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn management_requires_a_management_token() {
    let h = harness().await;
    let data_token = h.token("https://vault.localhost:8443").await;
    let (s, _, headers) =
        h.call("GET", "localhost:8443", "/subscriptions?api-version=2022-12-01", Some(&data_token), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(headers.get("www-authenticate").is_some());
    let mgmt = h.token("https://localhost:8443").await;
    let (s, subs, _) =
        h.call("GET", "localhost:8443", "/subscriptions?api-version=2022-12-01", Some(&mgmt), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(subs["value"][0]["subscriptionId"], json!(h.opened.credentials.subscription_id));
    let (s, _, _) = h.call("GET", "localhost:8443", "/subscriptions", Some(&mgmt), None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "api-version is required");
}

/// Every API route of the control surface, one method each: authentication is an extractor
/// of each handler, so a handler that forgot it would answer here.
const CONTROL_API_ROUTES: &[(&str, &str)] = &[
    ("GET", "/subscriptions"),
    ("GET", "/subscriptions/s"),
    ("GET", "/subscriptions/s/resourceGroups"),
    ("GET", "/subscriptions/s/resourceGroups/rg"),
    ("PUT", "/subscriptions/s/resourceGroups/rg"),
    ("DELETE", "/subscriptions/s/resourceGroups/rg"),
    ("GET", "/subscriptions/s/resources"),
    ("GET", "/subscriptions/s/resourceGroups/rg/resources"),
    ("GET", "/subscriptions/s/providers/Microsoft.KeyVault/vaults"),
    ("GET", "/subscriptions/s/providers/Microsoft.KeyVault/deletedVaults"),
    ("GET", "/subscriptions/s/providers/Microsoft.KeyVault/managedHSMs"),
    ("GET", "/subscriptions/s/providers/Microsoft.KeyVault/deletedManagedHSMs"),
    ("GET", "/subscriptions/s/providers/Microsoft.KeyVault/locations/l/deletedVaults/v"),
    ("POST", "/subscriptions/s/providers/Microsoft.KeyVault/locations/l/deletedVaults/v/purge"),
    ("POST", "/subscriptions/s/providers/Microsoft.KeyVault/checkNameAvailability"),
    ("GET", "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults"),
    ("GET", "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/v"),
    ("PUT", "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/v"),
    ("PATCH", "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/v"),
    ("DELETE", "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/v"),
    ("PUT", "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/v/accessPolicies/add"),
    ("GET", "/directory/principals"),
    ("POST", "/directory/principals"),
    ("GET", "/directory/principals/p"),
    ("PATCH", "/directory/principals/p"),
    ("DELETE", "/directory/principals/p"),
    ("GET", "/directory/principals/p/credentials"),
    ("POST", "/directory/principals/p/credentials"),
    ("DELETE", "/directory/principals/p/credentials/c"),
    ("GET", "/directory/groups/g/members"),
    ("PUT", "/directory/groups/g/members/m"),
    ("DELETE", "/directory/groups/g/members/m"),
    ("POST", "/directory/signing-keys/rotate"),
    ("GET", "/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions"),
    ("GET", "/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/d"),
    ("GET", "/subscriptions/s/providers/Microsoft.Authorization/roleAssignments"),
    (
        "GET",
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/v/providers/Microsoft.Authorization/roleAssignments/a",
    ),
    (
        "PUT",
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/v/providers/Microsoft.Authorization/roleAssignments/a",
    ),
    (
        "DELETE",
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/v/secrets/n/providers/Microsoft.Authorization/roleAssignments/a",
    ),
    ("GET", "/authorization/roleDefinitions"),
    ("POST", "/authorization/roleDefinitions"),
    ("DELETE", "/authorization/roleDefinitions/r"),
    ("GET", "/authorization/roleAssignments"),
    ("POST", "/authorization/roleAssignments"),
    ("DELETE", "/authorization/roleAssignments/a"),
    ("POST", "/authorization/explain"),
    ("POST", "/authorization/who-can"),
    ("GET", "/audit/records"),
    ("GET", "/audit/verify"),
    ("POST", "/audit/checkpoint"),
    ("GET", "/audit/checkpoint-key"),
    ("POST", "/dev/advance-time"),
    ("POST", "/operator/seal"),
    // Microsoft Graph's directory subset.
    ("GET", "/v1.0/me"),
    ("GET", "/v1.0/users"),
    ("POST", "/v1.0/users"),
    ("GET", "/v1.0/users/u"),
    ("PATCH", "/v1.0/users/u"),
    ("DELETE", "/v1.0/users/u"),
    ("POST", "/v1.0/users/u/getMemberGroups"),
    ("GET", "/v1.0/applications"),
    ("POST", "/v1.0/applications"),
    ("GET", "/v1.0/applications/a"),
    ("PATCH", "/v1.0/applications/a"),
    ("DELETE", "/v1.0/applications/a"),
    ("POST", "/v1.0/applications/a/addPassword"),
    ("POST", "/v1.0/applications/a/removePassword"),
    ("GET", "/v1.0/servicePrincipals"),
    ("POST", "/v1.0/servicePrincipals"),
    ("GET", "/v1.0/servicePrincipals/s"),
    ("DELETE", "/v1.0/servicePrincipals/s"),
    ("POST", "/v1.0/servicePrincipals/s/addPassword"),
    ("GET", "/v1.0/groups"),
    ("POST", "/v1.0/groups"),
    ("GET", "/v1.0/groups/g"),
    ("DELETE", "/v1.0/groups/g"),
    ("GET", "/v1.0/groups/g/members"),
    ("POST", "/v1.0/groups/g/members/$ref"),
    ("DELETE", "/v1.0/groups/g/members/m/$ref"),
    ("POST", "/v1.0/directoryObjects/getByIds"),
    ("GET", "/v1.0/directoryObjects/o"),
    ("POST", "/v1.0/directoryObjects/o/checkMemberGroups"),
];

#[tokio::test]
async fn every_control_api_route_challenges_a_request_without_a_token() {
    let h = harness().await;
    for (method, path) in CONTROL_API_ROUTES {
        let (status, body, headers) =
            h.call(method, "localhost:8443", &format!("{path}?api-version=2023-07-01"), None, Some(json!({}))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}: {body}");
        assert!(headers.contains_key("www-authenticate"), "{method} {path}");
        assert!(body["error"]["code"].is_string(), "{method} {path}: {body}");
        // The route named its operation: the refusal is recorded under it.
        let head = h.opened.state.store.audit_head().await.expect("head").expect("a record");
        let record: Value = serde_json::from_str(&head.body).expect("record");
        assert_eq!(record["resultSignature"], "Unauthorized", "{method} {path}: {record}");
        assert!(!head.operation.is_empty() && head.operation != "Unknown", "{method} {path}: {}", head.operation);
    }
}

#[tokio::test]
async fn unreadable_paths_and_queries_on_the_control_surface_get_azure_errors() {
    let h = harness().await;
    let mgmt = h.token("https://localhost:8443").await;
    // A path segment that is not UTF-8 once decoded.
    let (status, body, _) =
        h.call("GET", "localhost:8443", "/directory/principals/%FF?api-version=1", Some(&mgmt), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "InvalidRequestUri", "{body}");
    // A query parameter given twice.
    let (status, body, _) = h
        .call(
            "GET",
            "localhost:8443",
            "/authorization/roleAssignments?api-version=1&scope=/&scope=/",
            Some(&mgmt),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("scope")), "{body}");
    // A method the path does not have.
    let (status, body, _) =
        h.call("PATCH", "localhost:8443", "/directory/principals?api-version=1", Some(&mgmt), None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
    assert_eq!(body["error"]["code"], "MethodNotAllowed", "{body}");
    // A body over the one limit: refused in Azure's shape, and recorded under the route's
    // operation (the route reads the body after naming it).
    let big = json!({"name": "x".repeat(5 << 20)});
    let (status, body, _) =
        h.call("POST", "localhost:8443", "/directory/principals?api-version=1", Some(&mgmt), Some(big)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["error"]["code"], "RequestBodyTooLarge", "{body}");
    let head = h.opened.state.store.audit_head().await.expect("head").expect("a record");
    assert_eq!(head.operation, "DirectoryChange");
}
