//! The portal's pages and form actions.
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use coffer_core::Error;
use coffer_core::permissions::Area;
use coffer_core::principal::{Caller, PrincipalKind};
use coffer_core::vault::{AccessPolicy, PolicyPermissions, Vault};
use coffer_store::AuditQuery;
use serde_json::{Value, json};

use super::session::{self, COOKIE, LOGIN_COOKIE, Session};
use super::{SameOrigin, UserView, error_page, html, seg, status_of};
use crate::authorization::Question;
use crate::http::ClientAddr;
use crate::objects::VaultContext;
use crate::state::SharedState;
use crate::vaults::{PolicyEdit, VaultProperties, VaultSettings};

/// A signed-in request: who, and their session.
pub(super) struct Portal {
    pub(super) caller: Caller,
    pub(super) session: Session,
    cookie: String,
}

impl Portal {
    pub(super) fn user(&self) -> Option<UserView> {
        Some(UserView::of(&self.caller, &self.session.csrf))
    }
}

fn to_login() -> Response {
    Redirect::to("/portal/login").into_response()
}

/// The session behind the request's cookie, with its principal and credential resolved again
/// (a disabled or deleted principal, or a changed, reset or removed password, signs it out),
/// or a redirect to the sign-in page.
pub(super) async fn signed_in(state: &SharedState, headers: &HeaderMap) -> Result<Portal, Response> {
    let now = state.clock.now();
    let Some(cookie) = session::cookie(headers, COOKIE) else { return Err(to_login()) };
    let Some(session) = state.sessions.get(cookie, now) else { return Err(to_login()) };
    let principal = state.store.get_principal(&session.object_id).await.ok().flatten().filter(|p| p.enabled);
    let credential_live = match state.store.get_credential(&session.credential_id).await {
        Ok(c) => c.is_some_and(|c| c.principal_id == session.object_id && c.expires.is_none_or(|e| now < e)),
        Err(e) => return Err(error_page(None, &e)),
    };
    let Some(principal) = principal.filter(|_| credential_live) else {
        state.sessions.remove(cookie);
        return Err(to_login());
    };
    let caller = crate::authorization::caller_of(state, &principal).await.map_err(|e| error_page(None, &e))?;
    crate::audit::note_caller(&caller, Some("portal session".into()));
    Ok(Portal { caller, session, cookie: cookie.to_string() })
}

pub(super) type Form = Vec<(String, String)>;

pub(super) fn field<'a>(form: &'a Form, name: &str) -> Option<&'a str> {
    form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn csrf_matches(form: &Form, expected: &str) -> bool {
    field(form, "csrf").is_some_and(|t| coffer_crypto::digest::ct_eq(t.as_bytes(), expected.as_bytes()))
}

fn cross_site() -> Response {
    let e = Error::forbidden("CrossSiteRequest", "This form was not sent from a Coffer page; nothing was done.");
    crate::audit::note(|d| d.error = Some(e.message.clone()));
    error_page(None, &e)
}

/// A form post from a signed-in user, as a handler's last argument: same origin, the right
/// CSRF token, and (for changes) a durable "started" audit record before anything happens.
/// Anything else is answered for the handler (sign-in page, refusal, 503).
pub(super) struct Posted {
    pub(super) portal: Portal,
    pub(super) form: Form,
}

/// The largest form the portal takes (a PFX in base64, a JWK, a secret value).
const MAX_FORM_BYTES: usize = 256 * 1024;

impl axum::extract::FromRequest<SharedState> for Posted {
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, state: &SharedState) -> Result<Self, Response> {
        use axum::extract::FromRequestParts;
        let (mut parts, body) = req.into_parts();
        let Ok(SameOrigin(same)) = SameOrigin::from_request_parts(&mut parts, state).await;
        let portal = signed_in(state, &parts.headers).await?;
        let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
            .await
            .map_err(|_| error_page(portal.user(), &Error::bad_parameter("The form is too large.")))?;
        let form: Form = serde_urlencoded::from_bytes(&bytes)
            .map_err(|_| error_page(portal.user(), &Error::bad_parameter("The form could not be read.")))?;
        if !same || !csrf_matches(&form, &portal.session.csrf) {
            return Err(cross_site());
        }
        crate::audit::before_change(&state.audit).await.map_err(|e| error_page(portal.user(), &e))?;
        Ok(Posted { portal, form })
    }
}

// ---- Sign-in ----

#[derive(Template)]
#[template(path = "portal/login.html")]
struct LoginPage {
    user: Option<UserView>,
    flash: Option<String>,
    csrf: String,
    error: Option<String>,
}

fn login_page(status: StatusCode, error: Option<String>) -> Response {
    let token = coffer_crypto::random::client_secret().to_string();
    let mut resp = html(status, &LoginPage { user: None, flash: None, csrf: token.clone(), error });
    if let Ok(v) = HeaderValue::from_str(&session::set_cookie(LOGIN_COOKIE, &token, Some(600))) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

pub async fn login_form() -> Response {
    login_page(StatusCode::OK, None)
}

pub async fn login(
    State(state): State<SharedState>,
    ClientAddr(addr): ClientAddr,
    SameOrigin(same): SameOrigin,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    use crate::sign_in::throttle::{address_key, principal_key};
    let form: Form = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    // Login CSRF: the form's token must be the one in this browser's login cookie.
    let expected = session::cookie(&headers, LOGIN_COOKIE).unwrap_or("");
    if !same || expected.is_empty() || !csrf_matches(&form, expected) {
        return cross_site();
    }
    let (Some(username), Some(password)) = (field(&form, "username"), field(&form, "password")) else {
        return login_page(StatusCode::BAD_REQUEST, Some("Enter a user name and a password.".into()));
    };
    crate::audit::note(|d| d.claimed = Some(username.to_string()));
    let tenant = match state.store.list_tenants().await {
        Ok(t) => t.into_iter().next().map(|t| t.id).unwrap_or_default(),
        Err(e) => return error_page(None, &e),
    };
    let now = state.clock.now();
    let (pkey, akey) = (principal_key(&tenant, username), address_key(addr));
    let attempt = match state.throttle.begin(pkey, akey, now) {
        Ok(attempt) => attempt,
        Err(wait) => {
            let msg = format!("Too many failed sign-ins. Try again in {wait} seconds.");
            crate::audit::note(|d| d.error = Some(msg.clone()));
            return login_page(StatusCode::TOO_MANY_REQUESTS, Some(msg));
        }
    };
    let signed = crate::directory::authenticate_user(&state, &tenant, username, password).await;
    let (principal, credential) = match signed {
        Ok(Some(pc)) => pc,
        Ok(None) => {
            let msg = "The user name or password is incorrect.".to_string();
            crate::audit::note(|d| d.error = Some(msg.clone()));
            return login_page(StatusCode::UNAUTHORIZED, Some(msg));
        }
        Err(e) => return error_page(None, &e),
    };
    attempt.succeeded();
    crate::audit::note(|d| {
        d.who = Some(crate::audit::record::Who {
            object_id: principal.object_id.clone(),
            tenant_id: principal.tenant_id.clone(),
            name: principal.name.clone(),
            kind: principal.kind.as_str().to_string(),
            client_id: None,
            via: Some(format!("portal:password:{}", credential.id)),
        })
    });
    let (id, _) = state.sessions.create(&principal.object_id, &principal.tenant_id, &credential.id, now);
    let mut resp = Redirect::to("/portal/vaults").into_response();
    for c in [session::set_cookie(COOKIE, &id, None), session::set_cookie(LOGIN_COOKIE, "", Some(0))] {
        if let Ok(v) = HeaderValue::from_str(&c) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

pub async fn logout(
    State(state): State<SharedState>,
    SameOrigin(same): SameOrigin,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let portal = match signed_in(&state, &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let form: Form = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    if !same || !csrf_matches(&form, &portal.session.csrf) {
        return cross_site();
    }
    state.sessions.remove(&portal.cookie);
    let mut resp = Redirect::to("/portal/login").into_response();
    if let Ok(v) = HeaderValue::from_str(&session::set_cookie(COOKIE, "", Some(0))) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

// ---- Vaults ----

#[derive(Debug, Clone)]
pub(super) struct VaultView {
    pub(super) name: String,
    pub(super) uri: String,
    pub(super) model: &'static str,
    pub(super) rbac: bool,
    pub(super) retention_days: u32,
    pub(super) purge_protection: bool,
    pub(super) network: String,
    pub(super) resource_id: String,
}

pub(super) fn vault_view(state: &SharedState, v: &Vault) -> VaultView {
    let network = match &v.network_acls {
        None => "All networks".to_string(),
        Some(acls) => serde_json::to_value(acls)
            .ok()
            .map(|a| {
                let ips: Vec<String> = a["ipRules"]
                    .as_array()
                    .map(|r| r.iter().filter_map(|x| x["value"].as_str().map(str::to_string)).collect())
                    .unwrap_or_default();
                format!(
                    "Default {}; allowed: {}",
                    a["defaultAction"].as_str().unwrap_or("Allow"),
                    if ips.is_empty() { "none".into() } else { ips.join(", ") }
                )
            })
            .unwrap_or_default(),
    };
    VaultView {
        name: v.name.clone(),
        uri: state.names.vault_uri(&v.name),
        model: if v.enable_rbac_authorization { "Azure role-based access control" } else { "Vault access policy" },
        rbac: v.enable_rbac_authorization,
        retention_days: v.retention.retention_days,
        purge_protection: v.retention.purge_protection,
        network,
        resource_id: v.resource_id(),
    }
}

/// A vault the caller may see: tenant administrators and whoever manages it see it, and so does
/// anyone with an access policy in it or a role assigned in it (to them or their groups).
async fn may_see(state: &SharedState, caller: &Caller, v: &Vault) -> bool {
    use coffer_core::permissions::ManagementAction;
    if caller.tenant_admin
        || crate::authorization::authorize_management(state, caller, ManagementAction::VaultRead, Some(&v.name))
            .await
            .is_ok()
    {
        return true;
    }
    let me = |id: &str| {
        id.eq_ignore_ascii_case(&caller.object_id) || caller.groups.iter().any(|g| g.eq_ignore_ascii_case(id))
    };
    if !v.enable_rbac_authorization && v.access_policies.iter().any(|p| me(&p.object_id)) {
        return true;
    }
    let scope = format!("/vaults/{}", v.name);
    state
        .store
        .list_role_assignments(&caller.tenant_id, Some(&scope), None)
        .await
        .map(|list| list.iter().any(|a| me(&a.principal_id)))
        .unwrap_or(false)
}

pub(super) async fn visible_vault(state: &SharedState, caller: &Caller, name: &str) -> Result<Vault, Error> {
    let not_found = || {
        Error::not_found(
            "VaultNotFound",
            format!("No vault named '{}' is shared with you.", coffer_core::names::printable(name)),
        )
    };
    let rec = state
        .store
        .get_vault_by_name(name)
        .await?
        .filter(|r| !r.vault.is_deleted() && r.vault.tenant_id == caller.tenant_id);
    let Some(rec) = rec else { return Err(not_found()) };
    if !may_see(state, caller, &rec.vault).await {
        return Err(not_found());
    }
    Ok(rec.vault)
}

/// The vault as the data plane sees a request from this browser (its firewall applies too).
pub(super) async fn context(
    state: &SharedState,
    caller: &Caller,
    name: &str,
    addr: Option<std::net::IpAddr>,
) -> Result<VaultContext, Error> {
    let origin = crate::objects::Origin::Network(addr);
    VaultContext::open(state, name, caller.clone(), origin, crate::api_version::NEWEST.into()).await
}

#[derive(Template)]
#[template(path = "portal/vaults.html")]
struct VaultsPage {
    user: Option<UserView>,
    flash: Option<String>,
    vaults: Vec<VaultView>,
    admin: bool,
    csrf: String,
    error: Option<String>,
}

pub async fn vaults(State(state): State<SharedState>, headers: HeaderMap) -> Response {
    match signed_in(&state, &headers).await {
        Ok(p) => vaults_page(&state, &p, None, StatusCode::OK).await,
        Err(r) => r,
    }
}

async fn vaults_page(state: &SharedState, p: &Portal, error: Option<String>, status: StatusCode) -> Response {
    let all = match state.store.list_vaults(&p.caller.tenant_id).await {
        Ok(v) => v,
        Err(e) => return error_page(p.user(), &e),
    };
    let mut vaults = Vec::new();
    for v in all.iter().filter(|v| !v.is_deleted()) {
        if may_see(state, &p.caller, v).await {
            vaults.push(vault_view(state, v));
        }
    }
    let page = VaultsPage {
        user: p.user(),
        flash: None,
        vaults,
        admin: p.caller.tenant_admin,
        csrf: p.session.csrf.clone(),
        error,
    };
    html(status, &page)
}

/// Creates a vault through the Resource Manager handler; under access policies its creator
/// gets every permission (as `az keyvault create` gives).
pub async fn create_vault(State(state): State<SharedState>, Posted { portal: p, form }: Posted) -> Response {
    let name = field(&form, "name").unwrap_or("").trim().to_string();
    let rbac = field(&form, "model") == Some("rbac");
    let retention = field(&form, "retention").and_then(|r| r.trim().parse::<u32>().ok()).unwrap_or(90);
    let tenant = match state.store.get_tenant(&p.caller.tenant_id).await {
        Ok(Some(t)) => t,
        Ok(None) => return error_page(p.user(), &Error::not_found("TenantNotFound", "Your tenant no longer exists.")),
        Err(e) => return error_page(p.user(), &e),
    };
    let access_policies = (!rbac).then(|| {
        vec![AccessPolicy {
            tenant_id: tenant.id.clone(),
            object_id: p.caller.object_id.clone(),
            application_id: None,
            permissions: PolicyPermissions {
                keys: vec!["all".into()],
                secrets: vec!["all".into()],
                certificates: vec!["all".into()],
                storage: vec!["all".into()],
            },
        }]
    });
    let settings = VaultSettings {
        location: Some("local".into()),
        tags: None,
        properties: VaultProperties {
            tenant_id: Some(tenant.id.clone()),
            access_policies,
            soft_delete_retention_in_days: Some(retention),
            enable_purge_protection: (field(&form, "purge_protection") == Some("true")).then_some(true),
            enable_rbac_authorization: Some(rbac),
            ..Default::default()
        },
    };
    let sub = tenant.default_subscription_id.clone();
    match crate::vaults::put_vault(&state, &p.caller, &sub, "default", &name, settings).await {
        Ok(v) => Redirect::to(&format!("/portal/vaults/{}", seg(&v.name))).into_response(),
        Err(e) => vaults_page(&state, &p, Some(e.message.clone()), status_of(&e)).await,
    }
}

#[derive(Template)]
#[template(path = "portal/vault.html")]
struct OverviewPage {
    user: Option<UserView>,
    flash: Option<String>,
    vault: VaultView,
    tab: &'static str,
}

pub async fn overview(State(state): State<SharedState>, headers: HeaderMap, Path(name): Path<String>) -> Response {
    let p = match signed_in(&state, &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    match visible_vault(&state, &p.caller, &name).await {
        Ok(v) => html(
            StatusCode::OK,
            &OverviewPage { user: p.user(), flash: None, vault: vault_view(&state, &v), tab: "overview" },
        ),
        Err(e) => error_page(p.user(), &e),
    }
}

// ---- Secrets ----

/// Dates as the portal shows them (UTC).
pub(super) fn date(v: &Value) -> String {
    v.as_i64().map(coffer_core::clock::iso8601).unwrap_or_else(|| "—".into())
}

pub(super) fn last_segment(id: &str) -> String {
    id.rsplit('/').next().unwrap_or_default().to_string()
}

struct SecretRow {
    name: String,
    enabled: bool,
    content_type: String,
    updated: String,
    expires: String,
    tags: String,
}

/// Tags as one line: `env=prod, owner=lab`.
pub(super) fn tags_line(v: &Value) -> String {
    v.as_object()
        .map(|t| t.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))).collect::<Vec<_>>().join(", "))
        .unwrap_or_default()
}

#[derive(Template)]
#[template(path = "portal/secrets.html")]
struct SecretsPage {
    user: Option<UserView>,
    flash: Option<String>,
    vault: VaultView,
    tab: &'static str,
    csrf: String,
    items: Vec<SecretRow>,
    error: Option<String>,
}

async fn secrets_page(
    state: &SharedState,
    p: &Portal,
    name: &str,
    addr: Option<std::net::IpAddr>,
    flash: Option<String>,
    status: StatusCode,
) -> Response {
    let ctx = match context(state, &p.caller, name, addr).await {
        Ok(c) => c,
        Err(e) => return error_page(p.user(), &e),
    };
    let vault = vault_view(state, &ctx.vault);
    let (items, error, status) = match crate::dataplane::dispatch(state, ctx, Method::GET, "/secrets", None).await {
        Ok(list) => {
            let items = list["value"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|s| SecretRow {
                            name: last_segment(s["id"].as_str().unwrap_or_default()),
                            enabled: s["attributes"]["enabled"].as_bool().unwrap_or(false),
                            content_type: s["contentType"].as_str().unwrap_or("").to_string(),
                            updated: date(&s["attributes"]["updated"]),
                            expires: date(&s["attributes"]["exp"]),
                            tags: tags_line(&s["tags"]),
                        })
                        .collect()
                })
                .unwrap_or_default();
            (items, None, status)
        }
        Err(e) => (Vec::new(), Some(e.message.clone()), status_of(&e)),
    };
    html(
        status,
        &SecretsPage { user: p.user(), flash, vault, tab: "secrets", csrf: p.session.csrf.clone(), items, error },
    )
}

pub async fn secrets(
    State(state): State<SharedState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    match signed_in(&state, &headers).await {
        Ok(p) => secrets_page(&state, &p, &name, addr, None, StatusCode::OK).await,
        Err(r) => r,
    }
}

pub async fn create_secret(
    State(state): State<SharedState>,
    ClientAddr(addr): ClientAddr,
    Path(vault): Path<String>,
    Posted { portal: p, form }: Posted,
) -> Response {
    let name = field(&form, "name").unwrap_or("").trim().to_string();
    if let Err(e) = coffer_core::names::validate_object_name(&name) {
        return error_page(p.user(), &e);
    }
    let mut secret = json!({"value": field(&form, "value").unwrap_or("")});
    if let Some(ct) = field(&form, "content_type").filter(|c| !c.trim().is_empty()) {
        secret["contentType"] = json!(ct.trim());
    }
    let op = Submit {
        method: Method::PUT,
        path: format!("/secrets/{}", seg(&name)),
        body: Some(secret),
        then: format!("/portal/vaults/{vault}/secrets/{name}"),
    };
    submit(&state, &p, &vault, addr, op).await
}

pub(super) struct VersionRow {
    pub(super) version: String,
    pub(super) enabled: bool,
    pub(super) created: String,
    pub(super) expires: String,
}

#[derive(Template)]
#[template(path = "portal/secret.html")]
struct SecretPage {
    user: Option<UserView>,
    flash: Option<String>,
    vault: VaultView,
    tab: &'static str,
    csrf: String,
    name: String,
    id: String,
    enabled: String,
    content_type: String,
    created: String,
    updated: String,
    not_before: String,
    expires: String,
    tags: Vec<(String, String)>,
    versions: Vec<VersionRow>,
    value: Option<String>,
    value_error: Option<String>,
    error: Option<String>,
    who: Vec<String>,
    who_error: Option<String>,
    current_version: Option<String>,
    edit_content_type: String,
    edit_expires: String,
    edit_tags: String,
}

/// The secret's page; with `reveal`, the value too (a `SecretGet` under the caller's rights).
async fn secret_page(
    state: &SharedState,
    p: &Portal,
    vault: &str,
    name: &str,
    addr: Option<std::net::IpAddr>,
    reveal: bool,
) -> Response {
    let ctx = match context(state, &p.caller, vault, addr).await {
        Ok(c) => c,
        Err(e) => return error_page(p.user(), &e),
    };
    let view = vault_view(state, &ctx.vault);
    let id = ctx.object_id(coffer_core::object::ObjectKind::Secret, name, None);
    let ctx2 = VaultContext {
        vault: ctx.vault.clone(),
        key: ctx.key.clone(),
        authority: ctx.authority.clone(),
        caller: ctx.caller.clone(),
        api_version: ctx.api_version.clone(),
    };
    let mut page = SecretPage {
        user: p.user(),
        flash: None,
        vault: view,
        tab: "secrets",
        csrf: p.session.csrf.clone(),
        name: name.to_string(),
        id,
        enabled: "—".into(),
        content_type: "—".into(),
        created: "—".into(),
        updated: "—".into(),
        not_before: "—".into(),
        expires: "—".into(),
        tags: Vec::new(),
        versions: Vec::new(),
        value: None,
        value_error: None,
        error: None,
        who: Vec::new(),
        who_error: None,
        current_version: None,
        edit_content_type: String::new(),
        edit_expires: String::new(),
        edit_tags: String::new(),
    };
    // Who can read the value: answered by the evaluator that enforces, for those who may ask.
    // Asked first, so that the decision the request's audit record keeps is the data one.
    (page.who, page.who_error) = who_can(state, &p.caller, vault, "secret", name, "getSecret").await;
    let mut status = StatusCode::OK;
    match crate::dataplane::dispatch(state, ctx, Method::GET, &format!("/secrets/{}/versions", seg(name)), None).await {
        Ok(list) => {
            let mut items: Vec<Value> = list["value"].as_array().cloned().unwrap_or_default();
            items.sort_by_key(|v| std::cmp::Reverse(v["attributes"]["created"].as_i64().unwrap_or(0)));
            if let Some(latest) = items.first() {
                page.current_version = latest["id"].as_str().map(last_segment);
                let a = &latest["attributes"];
                page.enabled = a["enabled"].as_bool().map(|b| b.to_string()).unwrap_or_default();
                page.content_type = latest["contentType"].as_str().unwrap_or("—").to_string();
                page.created = date(&a["created"]);
                page.updated = date(&a["updated"]);
                page.not_before = date(&a["nbf"]);
                page.expires = date(&a["exp"]);
                page.tags = latest["tags"]
                    .as_object()
                    .map(|t| t.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string())).collect())
                    .unwrap_or_default();
                page.edit_content_type = latest["contentType"].as_str().unwrap_or("").to_string();
                page.edit_expires =
                    a["exp"].as_i64().map(|e| coffer_core::clock::iso8601(e)[..10].to_string()).unwrap_or_default();
                page.edit_tags = page.tags.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("\n");
            }
            page.versions = version_rows(&items);
        }
        Err(e) => {
            status = status_of(&e);
            page.error = Some(e.message.clone());
        }
    }
    if reveal {
        match crate::dataplane::dispatch(state, ctx2, Method::GET, &format!("/secrets/{}", seg(name)), None).await {
            Ok(bundle) => {
                page.value = bundle["value"].as_str().map(str::to_string);
                status = StatusCode::OK;
            }
            Err(e) => {
                status = status_of(&e);
                page.value_error = Some(e.message.clone());
            }
        }
    }
    html(status, &page)
}

pub async fn secret(
    State(state): State<SharedState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    Path((vault, name)): Path<(String, String)>,
) -> Response {
    match signed_in(&state, &headers).await {
        Ok(p) => secret_page(&state, &p, &vault, &name, addr, false).await,
        Err(r) => r,
    }
}

pub async fn reveal(
    State(state): State<SharedState>,
    ClientAddr(addr): ClientAddr,
    Path((vault, name)): Path<(String, String)>,
    Posted { portal: p, .. }: Posted,
) -> Response {
    secret_page(&state, &p, &vault, &name, addr, true).await
}

/// Who may perform `action` on the object (`kind`: secret, key or certificate), answered by the
/// evaluator that enforces requests — for those who may read the vault's access settings.
pub(super) async fn who_can(
    state: &SharedState,
    caller: &Caller,
    vault: &str,
    kind: &str,
    name: &str,
    action: &str,
) -> (Vec<String>, Option<String>) {
    let area = match kind {
        "secret" => Area::Secrets,
        "key" => Area::Keys,
        _ => Area::Certificates,
    };
    let question =
        Question { vault: vault.to_string(), action: action.to_string(), object: Some((area, name.to_string())) };
    match crate::authorization::who_can(state, caller, &question).await {
        Ok(answer) => {
            let who = answer
                .answer
                .iter()
                .map(|(p, d)| {
                    format!(
                        "{} ({}) — {}",
                        p.name,
                        p.kind.as_str(),
                        d.reasons.first().map(String::as_str).unwrap_or("")
                    )
                })
                .collect();
            (who, None)
        }
        Err(_) => (Vec::new(), Some("Only those who may read this vault's access settings see this list.".into())),
    }
}

/// Versions newest first, from a data-plane version list.
pub(super) fn version_rows(items: &[Value]) -> Vec<VersionRow> {
    let mut items: Vec<&Value> = items.iter().collect();
    items.sort_by_key(|v| std::cmp::Reverse(v["attributes"]["created"].as_i64().unwrap_or(0)));
    items
        .iter()
        .map(|v| VersionRow {
            version: last_segment(v["id"].as_str().unwrap_or_default()),
            enabled: v["attributes"]["enabled"].as_bool().unwrap_or(false),
            created: date(&v["attributes"]["created"]),
            expires: date(&v["attributes"]["exp"]),
        })
        .collect()
}

/// A data-plane operation a form asks for, and the page to go to once it is done.
pub(super) struct Submit {
    pub(super) method: Method,
    pub(super) path: String,
    pub(super) body: Option<Value>,
    pub(super) then: String,
}

/// Carries out `op` for the signed-in user: on success to `op.then`, else the error page.
pub(super) async fn submit(
    state: &SharedState,
    p: &Portal,
    vault: &str,
    addr: Option<std::net::IpAddr>,
    op: Submit,
) -> Response {
    let ctx = match context(state, &p.caller, vault, addr).await {
        Ok(c) => c,
        Err(e) => return error_page(p.user(), &e),
    };
    match crate::dataplane::dispatch(state, ctx, op.method, &op.path, op.body).await {
        Ok(_) => Redirect::to(&op.then).into_response(),
        Err(e) => error_page(p.user(), &e),
    }
}

pub async fn delete_secret(
    State(state): State<SharedState>,
    ClientAddr(addr): ClientAddr,
    Path((vault, name)): Path<(String, String)>,
    Posted { portal: p, .. }: Posted,
) -> Response {
    let then = format!("/portal/vaults/{vault}/deleted-secrets");
    let op = Submit { method: Method::DELETE, path: format!("/secrets/{}", seg(&name)), body: None, then };
    submit(&state, &p, &vault, addr, op).await
}

struct DeletedRow {
    name: String,
    deleted: String,
    purge: String,
}

#[derive(Template)]
#[template(path = "portal/deleted.html")]
struct DeletedPage {
    user: Option<UserView>,
    flash: Option<String>,
    vault: VaultView,
    tab: &'static str,
    csrf: String,
    collection: &'static str,
    items: Vec<DeletedRow>,
    error: Option<String>,
}

/// The deleted secrets, keys or certificates of a vault (`collection`), with recover and purge.
async fn deleted_page(
    state: &SharedState,
    headers: &HeaderMap,
    addr: Option<std::net::IpAddr>,
    vault: &str,
    collection: &'static str,
) -> Response {
    let p = match signed_in(state, headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let ctx = match context(state, &p.caller, vault, addr).await {
        Ok(c) => c,
        Err(e) => return error_page(p.user(), &e),
    };
    let view = vault_view(state, &ctx.vault);
    let path = format!("/deleted{collection}");
    let (items, error, status) = match crate::dataplane::dispatch(state, ctx, Method::GET, &path, None).await {
        Ok(list) => (
            list["value"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|d| DeletedRow {
                            name: last_segment(d["recoveryId"].as_str().or(d["id"].as_str()).unwrap_or_default()),
                            deleted: date(&d["deletedDate"]),
                            purge: date(&d["scheduledPurgeDate"]),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            None,
            StatusCode::OK,
        ),
        Err(e) => (Vec::new(), Some(e.message.clone()), status_of(&e)),
    };
    let page = DeletedPage {
        user: p.user(),
        flash: None,
        vault: view,
        tab: "deleted",
        csrf: p.session.csrf.clone(),
        collection,
        items,
        error,
    };
    html(status, &page)
}

macro_rules! deleted_handlers {
    ($list:ident, $recover:ident, $purge:ident, $collection:literal) => {
        pub async fn $list(
            State(state): State<SharedState>,
            ClientAddr(addr): ClientAddr,
            headers: HeaderMap,
            Path(vault): Path<String>,
        ) -> Response {
            deleted_page(&state, &headers, addr, &vault, $collection).await
        }

        pub async fn $recover(
            State(state): State<SharedState>,
            ClientAddr(addr): ClientAddr,
            Path((vault, name)): Path<(String, String)>,
            Posted { portal: p, .. }: Posted,
        ) -> Response {
            let then = format!("/portal/vaults/{vault}/{}/{name}", $collection);
            let path = format!("/deleted{}/{}/recover", $collection, seg(&name));
            submit(&state, &p, &vault, addr, Submit { method: Method::POST, path, body: None, then }).await
        }

        pub async fn $purge(
            State(state): State<SharedState>,
            ClientAddr(addr): ClientAddr,
            Path((vault, name)): Path<(String, String)>,
            Posted { portal: p, .. }: Posted,
        ) -> Response {
            let then = format!("/portal/vaults/{vault}/deleted-{}", $collection);
            let path = format!("/deleted{}/{}", $collection, seg(&name));
            submit(&state, &p, &vault, addr, Submit { method: Method::DELETE, path, body: None, then }).await
        }
    };
}

deleted_handlers!(deleted, recover, purge, "secrets");
deleted_handlers!(deleted_keys, recover_key, purge_key, "keys");
deleted_handlers!(deleted_certificates, recover_certificate, purge_certificate, "certificates");

// ---- Access policies ----

struct PolicyRow {
    object_id: String,
    principal: String,
    secrets: String,
    keys: String,
    certificates: String,
}

struct PrincipalOption {
    object_id: String,
    name: String,
    kind: &'static str,
}

struct PermBox {
    name: &'static str,
    checked: bool,
}

/// One area's permission checkboxes, as the Azure portal shows them.
struct PermArea {
    title: &'static str,
    field: &'static str,
    boxes: Vec<PermBox>,
}

#[derive(Template)]
#[template(path = "portal/access.html")]
struct AccessPage {
    user: Option<UserView>,
    flash: Option<String>,
    vault: VaultView,
    tab: &'static str,
    csrf: String,
    policies: Vec<PolicyRow>,
    principals: Vec<PrincipalOption>,
    editing: Option<String>,
    editing_name: String,
    areas: Vec<PermArea>,
    error: Option<String>,
}

#[derive(serde::Deserialize)]
pub struct AccessQuery {
    principal: Option<String>,
}

fn boxes(known: &'static [&'static str], given: &[String]) -> Vec<PermBox> {
    known
        .iter()
        .filter(|k| **k != "all")
        .map(|k| PermBox {
            name: k,
            checked: given.iter().any(|g| g.eq_ignore_ascii_case(k) || g.eq_ignore_ascii_case("all")),
        })
        .collect()
}

async fn access_page(
    state: &SharedState,
    p: &Portal,
    vault: &str,
    editing: Option<String>,
    flash: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    use coffer_core::vault::{CERTIFICATE_PERMISSIONS, KEY_PERMISSIONS, SECRET_PERMISSIONS};
    let v = match visible_vault(state, &p.caller, vault).await {
        Ok(v) => v,
        Err(e) => return error_page(p.user(), &e),
    };
    // The vault's access policies are part of the vault resource: the management API's rule
    // (`Microsoft.KeyVault/vaults/read`) applies here too, not mere visibility of the vault.
    let read = coffer_core::permissions::ManagementAction::VaultRead;
    if let Err(e) = crate::authorization::authorize_management(state, &p.caller, read, Some(&v.name)).await {
        crate::audit::note(|d| d.error = Some(e.message.clone()));
        return error_page(p.user(), &e);
    }
    let principals = state.store.list_principals(&p.caller.tenant_id).await.unwrap_or_default();
    let name_of = |oid: &str| {
        principals
            .iter()
            .find(|x| x.object_id.eq_ignore_ascii_case(oid))
            .map(|x| format!("{} ({})", x.name, x.kind.as_str()))
            .unwrap_or_else(|| oid.to_string())
    };
    let policies = v
        .access_policies
        .iter()
        .map(|a| PolicyRow {
            object_id: a.object_id.clone(),
            principal: name_of(&a.object_id),
            secrets: a.permissions.secrets.join(", "),
            keys: a.permissions.keys.join(", "),
            certificates: a.permissions.certificates.join(", "),
        })
        .collect();
    // The picker lists the directory only to those who may read it.
    let options = if p.caller.tenant_admin {
        principals
            .iter()
            .filter(|x| x.enabled || x.kind == PrincipalKind::Group)
            .map(|x| PrincipalOption { object_id: x.object_id.clone(), name: x.name.clone(), kind: x.kind.as_str() })
            .collect()
    } else {
        Vec::new()
    };
    let current = editing
        .as_deref()
        .and_then(|oid| v.access_policies.iter().find(|a| a.object_id.eq_ignore_ascii_case(oid)))
        .map(|a| a.permissions.clone())
        .unwrap_or_default();
    let areas = vec![
        PermArea { title: "Secret permissions", field: "secret", boxes: boxes(SECRET_PERMISSIONS, &current.secrets) },
        PermArea { title: "Key permissions", field: "key", boxes: boxes(KEY_PERMISSIONS, &current.keys) },
        PermArea {
            title: "Certificate permissions",
            field: "certificate",
            boxes: boxes(CERTIFICATE_PERMISSIONS, &current.certificates),
        },
    ];
    let page = AccessPage {
        user: p.user(),
        flash,
        vault: vault_view(state, &v),
        tab: "access",
        csrf: p.session.csrf.clone(),
        policies,
        principals: options,
        editing_name: editing.as_deref().map(name_of).unwrap_or_default(),
        editing,
        areas,
        error,
    };
    html(status, &page)
}

pub async fn access(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Path(vault): Path<String>,
    Query(q): Query<AccessQuery>,
) -> Response {
    match signed_in(&state, &headers).await {
        Ok(p) => access_page(&state, &p, &vault, q.principal, None, None, StatusCode::OK).await,
        Err(r) => r,
    }
}

/// Sets a principal's secret, key and certificate permissions (none: the policy goes), through
/// the same handler as `PUT …/accessPolicies/replace|remove`.
pub async fn set_access(
    State(state): State<SharedState>,
    Path(vault): Path<String>,
    Posted { portal: p, form }: Posted,
) -> Response {
    let v = match visible_vault(&state, &p.caller, &vault).await {
        Ok(v) => v,
        Err(e) => return error_page(p.user(), &e),
    };
    let Some(object_id) = field(&form, "object_id").map(str::trim).filter(|o| !o.is_empty()).map(str::to_string) else {
        return access_page(
            &state,
            &p,
            &vault,
            None,
            None,
            Some("Choose a principal.".into()),
            StatusCode::BAD_REQUEST,
        )
        .await;
    };
    let picked =
        |name: &str| -> Vec<&str> { form.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect() };
    let (secrets, keys, certificates) = (picked("secret"), picked("key"), picked("certificate"));
    let policy = AccessPolicy {
        tenant_id: v.tenant_id.clone(),
        object_id: object_id.clone(),
        application_id: None,
        permissions: PolicyPermissions {
            secrets: secrets.iter().map(|x| x.to_string()).collect(),
            keys: keys.iter().map(|x| x.to_string()).collect(),
            certificates: certificates.iter().map(|x| x.to_string()).collect(),
            storage: Vec::new(),
        },
    };
    let edit = if secrets.is_empty() && keys.is_empty() && certificates.is_empty() {
        PolicyEdit::Remove
    } else {
        PolicyEdit::Replace
    };
    let result = crate::vaults::edit_access_policies(
        &state,
        &p.caller,
        &v.subscription_id,
        &v.resource_group,
        &v.name,
        edit,
        vec![policy],
    )
    .await;
    match result {
        Ok(_) => {
            let flash = Some("The access policy was saved.".into());
            access_page(&state, &p, &vault, Some(object_id), flash, None, StatusCode::OK).await
        }
        Err(e) => access_page(&state, &p, &vault, Some(object_id), None, Some(e.message.clone()), status_of(&e)).await,
    }
}

// ---- Audit ----

struct AuditRowView {
    time: String,
    operation: String,
    result: String,
    status: String,
    caller: String,
    object: String,
    address: String,
}

#[derive(Template)]
#[template(path = "portal/audit.html")]
struct AuditPage {
    user: Option<UserView>,
    flash: Option<String>,
    vault: VaultView,
    tab: &'static str,
    records: Vec<AuditRowView>,
    results: Vec<String>,
    filter_operation: String,
    filter_result: String,
    filter_caller: String,
    error: Option<String>,
}

#[derive(serde::Deserialize)]
pub struct AuditFilter {
    operation: Option<String>,
    result: Option<String>,
    caller: Option<String>,
}

pub async fn audit(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Path(vault): Path<String>,
    Query(f): Query<AuditFilter>,
) -> Response {
    let p = match signed_in(&state, &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let v = match visible_vault(&state, &p.caller, &vault).await {
        Ok(v) => v,
        Err(e) => return error_page(p.user(), &e),
    };
    let clean = |s: Option<String>| s.map(|x| x.trim().to_string()).filter(|x| !x.is_empty());
    let (operation, result, caller) =
        (clean(f.operation), clean(f.result).map(|r| r.to_ascii_lowercase()), clean(f.caller));
    let mut page = AuditPage {
        user: p.user(),
        flash: None,
        vault: vault_view(&state, &v),
        tab: "audit",
        records: Vec::new(),
        results: ["", "success", "denied", "failed", "started", "event"].iter().map(|s| s.to_string()).collect(),
        filter_operation: operation.clone().unwrap_or_default(),
        filter_result: result.clone().unwrap_or_default(),
        filter_caller: caller.clone().unwrap_or_default(),
        error: None,
    };
    // The same rule as the audit API: tenant administrators read the log.
    if let Err(e) = crate::authorization::require_tenant_admin(&p.caller, "read the audit log") {
        page.error = Some(e.message.clone());
        return html(StatusCode::FORBIDDEN, &page);
    }
    let q = AuditQuery {
        vault: Some(v.name.to_ascii_lowercase()),
        operation,
        result,
        caller,
        newest_first: true,
        limit: 200,
        ..Default::default()
    };
    match state.store.query_audit(&q).await {
        Ok(rows) => {
            page.records = rows
                .iter()
                .filter_map(|r| serde_json::from_str::<Value>(&r.body).ok())
                .map(|r| AuditRowView {
                    time: r["time"].as_str().unwrap_or("").to_string(),
                    operation: r["operationName"].as_str().unwrap_or("").to_string(),
                    result: r["result"].as_str().unwrap_or("").to_string(),
                    status: r["properties"]["httpStatusCode"].as_i64().map(|s| s.to_string()).unwrap_or_default(),
                    caller: r["identity"]["claim"]["name"].as_str().unwrap_or("—").to_string(),
                    object: r["properties"]["objectName"].as_str().unwrap_or("").to_string(),
                    address: r["callerIpAddress"].as_str().unwrap_or("").to_string(),
                })
                .collect();
            html(StatusCode::OK, &page)
        }
        Err(e) => error_page(p.user(), &e),
    }
}

/// A new version of a secret, from the edit form.
pub async fn new_version(
    State(state): State<SharedState>,
    ClientAddr(addr): ClientAddr,
    Path((vault, name)): Path<(String, String)>,
    Posted { portal: p, form }: Posted,
) -> Response {
    let value = json!({"value": field(&form, "value").unwrap_or("")});
    let then = format!("/portal/vaults/{vault}/secrets/{name}");
    let op = Submit { method: Method::PUT, path: format!("/secrets/{}", seg(&name)), body: Some(value), then };
    submit(&state, &p, &vault, addr, op).await
}

/// Enables or disables a version of a secret, key or certificate (`collection` from the path).
pub async fn update_secret(
    State(state): State<SharedState>,
    ClientAddr(addr): ClientAddr,
    Path((vault, name)): Path<(String, String)>,
    Posted { portal: p, form }: Posted,
) -> Response {
    update(&state, addr, &vault, "secrets", &name, p, form).await
}

pub async fn update_key(
    State(state): State<SharedState>,
    ClientAddr(addr): ClientAddr,
    Path((vault, name)): Path<(String, String)>,
    Posted { portal: p, form }: Posted,
) -> Response {
    update(&state, addr, &vault, "keys", &name, p, form).await
}

pub async fn update_certificate(
    State(state): State<SharedState>,
    ClientAddr(addr): ClientAddr,
    Path((vault, name)): Path<(String, String)>,
    Posted { portal: p, form }: Posted,
) -> Response {
    update(&state, addr, &vault, "certificates", &name, p, form).await
}

async fn update(
    state: &SharedState,
    addr: Option<std::net::IpAddr>,
    vault: &str,
    collection: &str,
    name: &str,
    p: Portal,
    form: Vec<(String, String)>,
) -> Response {
    let version = field(&form, "version").unwrap_or("").trim().to_string();
    let enabled = field(&form, "enabled") == Some("true");
    let patch = json!({"attributes": {"enabled": enabled}});
    let then = format!("/portal/vaults/{vault}/{collection}/{name}");
    let op = Submit {
        method: Method::PATCH,
        path: format!("/{collection}/{}/{}", seg(name), seg(&version)),
        body: Some(patch),
        then,
    };
    submit(state, &p, vault, addr, op).await
}

/// Content type, expiry and tags of a secret's version (`PATCH /secrets/{name}/{version}`).
pub async fn properties(
    State(state): State<SharedState>,
    ClientAddr(addr): ClientAddr,
    Path((vault, name)): Path<(String, String)>,
    Posted { portal: p, form }: Posted,
) -> Response {
    let expires = match field(&form, "expires").map(str::trim).filter(|e| !e.is_empty()) {
        None => Value::Null,
        Some(e) => match coffer_core::clock::parse_iso8601(e) {
            Some(t) => json!(t),
            None => return error_page(p.user(), &Error::bad_parameter(format!("'{e}' is not a date (YYYY-MM-DD)."))),
        },
    };
    let mut tags = serde_json::Map::new();
    for line in field(&form, "tags").unwrap_or("").lines().map(str::trim).filter(|l| !l.is_empty()) {
        let Some((k, v)) = line.split_once('=') else {
            return error_page(p.user(), &Error::bad_parameter(format!("The tag line '{line}' is not name=value.")));
        };
        tags.insert(k.trim().to_string(), json!(v.trim()));
    }
    let patch = json!({
        "contentType": field(&form, "content_type").unwrap_or("").trim(),
        "attributes": {"exp": expires},
        "tags": tags,
    });
    let version = field(&form, "version").unwrap_or("").trim().to_string();
    let op = Submit {
        method: Method::PATCH,
        path: format!("/secrets/{}/{}", seg(&name), seg(&version)),
        body: Some(patch),
        then: format!("/portal/vaults/{vault}/secrets/{name}"),
    };
    submit(&state, &p, &vault, addr, op).await
}
