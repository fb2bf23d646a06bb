//! The token endpoint's grants and the managed-identity endpoint. Every failure looks the same
//! whether or not the principal exists, and failures are throttled per principal name and per
//! address before any credential is checked.
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use coffer_core::Result;
use coffer_core::principal::{Principal, PrincipalKind};
use coffer_crypto::digest::{ct_eq, sha256_hex};
use coffer_crypto::jwt::ClientAssertion;
use coffer_store::{Credential, Redeemed, RefreshTokenRecord, credential_kind};
use serde_json::json;
use zeroize::Zeroizing;

use super::{known_tenant, oauth_error, tenant_not_found};
use crate::directory::{live_credentials, match_secret};
use crate::http::{ApiError, ClientAddr, json};
use crate::sign_in::throttle::{address_key, principal_key};
use crate::state::SharedState;

/// Refresh tokens (user sign-in) last two weeks unless revoked.
pub const REFRESH_TOKEN_LIFETIME_SECS: i64 = 14 * 86_400;
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Longest lifetime accepted for a client assertion (MSAL makes them 10 minutes).
const MAX_ASSERTION_LIFETIME_SECS: i64 = 3600;
const SKEW_SECS: i64 = 300;

type OAuthForm = Vec<(String, String)>;

fn field<'a>(form: &'a OAuthForm, k: &str) -> Option<&'a str> {
    form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
}

fn invalid_request(msg: &str) -> Response {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_request", 900144, msg)
}

/// The one answer for a failed sign-in, whatever the reason.
fn invalid_client() -> Response {
    oauth_error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        7000215,
        "Invalid client secret or assertion provided, or the application does not exist or is disabled.",
    )
}

fn invalid_grant() -> Response {
    oauth_error(
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        50126,
        "Error validating credentials due to invalid username or password, or an expired or revoked refresh token.",
    )
}

fn locked(seconds: i64) -> Response {
    let mut r = oauth_error(
        StatusCode::TOO_MANY_REQUESTS,
        "temporarily_unavailable",
        50053,
        &format!(
            "Too many failed sign-in attempts for this account or from this address; try again in {seconds} seconds."
        ),
    );
    if let Ok(v) = HeaderValue::from_str(&seconds.to_string()) {
        r.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
    }
    r
}

/// The resource a scope asks for, if this server issues tokens for it.
fn resource_for(state: &SharedState, scope_or_resource: &str) -> Option<String> {
    scope_or_resource.split_whitespace().find_map(|s| {
        let resource = s.strip_suffix("/.default").unwrap_or(s).trim_end_matches('/');
        [state.names.vault_resource(), state.names.management_resource()]
            .into_iter()
            .find(|known| known.eq_ignore_ascii_case(resource))
    })
}

fn invalid_scope(state: &SharedState) -> Response {
    oauth_error(
        StatusCode::BAD_REQUEST,
        "invalid_scope",
        70011,
        &format!(
            "The provided scope is not valid. Request '{}/.default' or '{}/.default'.",
            state.names.vault_resource(),
            state.names.management_resource()
        ),
    )
}

/// Who signed in and with which credential.
struct SignIn {
    principal: Principal,
    credential: Credential,
    /// A user's sign-in through an application (compound identity): its client id.
    through_app: Option<String>,
    /// The refresh token chain this sign-in continues (refresh grant), or none (a new one).
    family: Option<String>,
}

impl SignIn {
    fn new(principal: Principal, credential: Credential) -> Self {
        Self { principal, credential, through_app: None, family: None }
    }
}

/// How a grant ended: a sign-in, a refreshed one, or the refusal to send.
enum Grant {
    Ok(SignIn),
    /// A refresh grant: the sign-in and the refresh token that replaced the redeemed one.
    Refreshed(SignIn, Zeroizing<String>),
    Failed(Response),
}

pub async fn token(
    State(state): State<SharedState>,
    Path(tenant): Path<String>,
    ClientAddr(addr): ClientAddr,
    body: Bytes,
) -> Response {
    let Ok(form) = serde_urlencoded::from_bytes::<OAuthForm>(&body) else {
        return invalid_request("The request body must be form-encoded.");
    };
    match known_tenant(&state, &tenant).await {
        Ok(true) => {}
        Ok(false) => return tenant_not_found(&tenant),
        Err(e) => return ApiError(e).into_response(),
    }
    let grant = field(&form, "grant_type");
    let resource = field(&form, "scope").and_then(|s| resource_for(&state, s));
    if grant != Some("refresh_token") && resource.is_none() {
        return invalid_scope(&state);
    }
    // The throttle key is the claimed identity, whether or not it exists.
    let claimed = match grant {
        Some("password") => field(&form, "username"),
        Some("refresh_token") => field(&form, "refresh_token").and_then(|t| t.split('.').next()),
        _ => field(&form, "client_id"),
    };
    let Some(claimed) = claimed else {
        return invalid_request("The request must name the client (client_id) or the user (username).");
    };
    crate::audit::note(|d| {
        d.claimed = Some(if grant == Some("refresh_token") { "a refresh token".into() } else { claimed.to_string() });
    });
    let pkey = principal_key(&tenant, claimed);
    let akey = address_key(addr);
    let now = state.clock.now();
    let attempt = match state.throttle.begin(pkey, akey, now) {
        Ok(attempt) => attempt,
        Err(wait) => return locked(wait),
    };
    let outcome = match grant {
        Some("client_credentials") => client_credentials(&state, &tenant, &form).await,
        Some("password") => password(&state, &tenant, &form).await,
        Some("refresh_token") => refresh(&state, &tenant, &form).await,
        Some(other) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                70003,
                &format!("The grant type '{}' is not supported.", coffer_core::names::printable(other)),
            );
        }
        None => return invalid_request("The request body must contain 'grant_type'."),
    };
    let (sign_in, refresh_token) = match outcome {
        Ok(Grant::Ok(s)) => (s, None),
        Ok(Grant::Refreshed(s, next)) => (s, Some(next)),
        Ok(Grant::Failed(resp)) => {
            tracing::info!(principal = %claimed, address = ?addr, "failed sign-in");
            return resp;
        }
        Err(e) => return ApiError(e).into_response(),
    };
    attempt.succeeded();
    note_signed_in(&sign_in.principal, &sign_in.credential, grant.unwrap_or(""));
    // A refresh grant may name no scope: its token is then for the data plane.
    let resource = resource.unwrap_or_else(|| state.names.vault_resource());
    match issue(&state, &sign_in, &resource, grant).await {
        Ok(mut body) => {
            if let Some(next) = refresh_token {
                body["refresh_token"] = next.as_str().into();
            }
            if let Err(e) = add_openid(&state, &sign_in, &form, &mut body) {
                return ApiError(e).into_response();
            }
            json(StatusCode::OK, body)
        }
        Err(e) => ApiError(e).into_response(),
    }
}

/// A user's sign-in that asked for `openid` (MSAL always does) also gets an ID token for the
/// client, and `client_info` when asked: MSAL keeps the account by them (`az login -u`).
fn add_openid(state: &SharedState, s: &SignIn, form: &OAuthForm, body: &mut serde_json::Value) -> Result<()> {
    let asked = field(form, "scope").is_some_and(|scope| scope.split_whitespace().any(|x| x == "openid"));
    if s.principal.kind != PrincipalKind::User || !asked {
        return Ok(());
    }
    // The ID token's audience is the client: only a client id (a GUID), never something that
    // could name an API's audience.
    let Some(client_id) = field(form, "client_id").filter(|c| coffer_core::names::is_guid(c)) else {
        return Ok(());
    };
    body["id_token"] = state.tokens.issue_id_token(&s.principal, client_id, &state.names, state.clock.now())?.into();
    if field(form, "client_info") == Some("1") {
        let info = json!({"uid": s.principal.object_id, "utid": s.principal.tenant_id});
        body["client_info"] = coffer_crypto::b64::url_encode(info.to_string().as_bytes()).into();
    }
    Ok(())
}

/// Who signed in, for the sign-in's audit record: the credential by id and kind, never its secret.
fn note_signed_in(p: &Principal, c: &Credential, grant: &str) {
    let who = crate::audit::record::Who {
        object_id: p.object_id.clone(),
        tenant_id: p.tenant_id.clone(),
        name: p.name.clone(),
        kind: p.kind.as_str().to_string(),
        client_id: p.client_id.clone(),
        via: Some(format!("{grant}:{}:{}", c.kind, c.id)),
    };
    crate::audit::note(|d| d.who = Some(who));
}

async fn issue(state: &SharedState, s: &SignIn, resource: &str, grant: Option<&str>) -> Result<serde_json::Value> {
    let now = state.clock.now();
    let through = s.through_app.as_deref();
    let (access, expires_in) =
        state.tokens.issue(&s.principal, Some(&s.credential.id), through, resource, &state.names, now)?;
    let mut body = json!({
        "token_type": "Bearer",
        "expires_in": expires_in,
        "ext_expires_in": expires_in,
        "access_token": access,
        "scope": format!("{resource}/.default"),
    });
    if grant == Some("password") {
        let (token, record) = new_refresh_token(s, None, now);
        stores_a_token(state).await?;
        state.store.add_refresh_token(&record).await?;
        body["refresh_token"] = token.as_str().into();
    }
    Ok(body)
}

/// A refresh token, `{id}.{secret}`, and its record (the store keeps a SHA-256 of the secret);
/// of a new family for a sign-in, of the redeemed token's family for a refresh.
fn new_refresh_token(s: &SignIn, family: Option<&str>, now: i64) -> (Zeroizing<String>, RefreshTokenRecord) {
    let id = coffer_crypto::random::version_id();
    let secret = coffer_crypto::random::client_secret();
    let record = RefreshTokenRecord {
        family: family.unwrap_or(&id).to_string(),
        id: id.clone(),
        principal_id: s.principal.object_id.clone(),
        credential_id: s.credential.id.clone(),
        secret_hash: sha256_hex(secret.as_bytes()),
        expires: now + REFRESH_TOKEN_LIFETIME_SECS,
        created: now,
        through_app: s.through_app.clone(),
        used: false,
    };
    (Zeroizing::new(format!("{id}.{}", secret.as_str())), record)
}

/// A sign-in that stores a refresh token changes state: it is recorded as started, durably,
/// before the token is written (fail closed), like any other change.
async fn stores_a_token(state: &SharedState) -> Result<()> {
    crate::audit::note(|d| d.changes_state = true);
    crate::audit::before_change(&state.audit).await
}

/// The application a user signs in through: the password grant's `client_id`, when it names
/// an enabled application of the tenant (public clients such as the coffer CLI name none).
async fn through_app(state: &SharedState, tenant: &str, form: &OAuthForm) -> Result<Option<String>> {
    let Some(client_id) = field(form, "client_id") else { return Ok(None) };
    let app = state.store.find_principal_by_client_id(tenant, client_id).await?;
    Ok(app.filter(|a| a.enabled && a.kind == PrincipalKind::App).and_then(|a| a.client_id))
}

fn enabled_principal(p: Option<Principal>, kinds: &[PrincipalKind]) -> Option<Principal> {
    p.filter(|p| p.enabled && kinds.contains(&p.kind))
}

async fn client_credentials(state: &SharedState, tenant: &str, form: &OAuthForm) -> Result<Grant> {
    let Some(client_id) = field(form, "client_id") else {
        return Ok(Grant::Failed(invalid_request("The request body must contain 'client_id'.")));
    };
    let principal =
        enabled_principal(state.store.find_principal_by_client_id(tenant, client_id).await?, &[PrincipalKind::App]);
    match (field(form, "client_secret"), field(form, "client_assertion")) {
        (Some(secret), None) => {
            let candidates = match &principal {
                Some(p) => live_credentials(state, &p.object_id, credential_kind::SECRET).await?,
                None => Vec::new(),
            };
            Ok(match (principal, match_secret(candidates, secret).await?) {
                (Some(principal), Some(credential)) => Grant::Ok(SignIn::new(principal, credential)),
                _ => Grant::Failed(invalid_client()),
            })
        }
        (None, Some(assertion)) => {
            if field(form, "client_assertion_type") != Some(ASSERTION_TYPE) {
                return Ok(Grant::Failed(invalid_request(&format!("client_assertion_type must be {ASSERTION_TYPE}."))));
            }
            let Some(principal) = principal else { return Ok(Grant::Failed(invalid_client())) };
            let certs = live_credentials(state, &principal.object_id, credential_kind::CERTIFICATE).await?;
            // The audience is this server's own token endpoint under the names it is configured
            // with (never the request's Host, which the client chooses).
            let names = &state.names;
            let audiences = [names.authority(), format!("https://{}{}", names.dns_suffix, names.port_suffix())]
                .map(|base| format!("{base}/{tenant}/oauth2/v2.0/token"));
            let now = state.clock.now();
            Ok(match verify_assertion(assertion, &certs, client_id, &audiences, now) {
                Some((credential, jti, exp)) if state.seen_assertions.first_use(client_id, &jti, exp, now) => {
                    Grant::Ok(SignIn::new(principal, credential))
                }
                Some(_) => {
                    tracing::warn!(client_id = ?client_id, "a client assertion was presented again");
                    Grant::Failed(invalid_client())
                }
                None => Grant::Failed(invalid_client()),
            })
        }
        _ => Ok(Grant::Failed(invalid_request("Give exactly one of client_secret and client_assertion."))),
    }
}

/// Checks an RFC 7523 client assertion against the application's certificates: the
/// credential it was signed with, its `jti` and its `exp`.
fn verify_assertion(
    token: &str,
    certs: &[Credential],
    client_id: &str,
    audiences: &[String],
    now: i64,
) -> Option<(Credential, String, i64)> {
    let a = ClientAssertion::parse(token).ok()?;
    let cert = certs.iter().find_map(|c| {
        let info = coffer_crypto::x509::parse_certificate(c.material.as_deref()?).ok()?;
        (a.names(&info) && a.verify_with(&info)).then_some(c)
    })?;
    let claim = |k: &str| a.claims.get(k);
    let int = |k: &str| claim(k).and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)));
    let ok = claim("iss").and_then(|v| v.as_str()) == Some(client_id)
        && claim("sub").and_then(|v| v.as_str()) == Some(client_id)
        && claim("aud")
            .and_then(|v| v.as_str())
            .is_some_and(|aud| audiences.iter().any(|a| aud.eq_ignore_ascii_case(a)))
        && int("exp").is_some_and(|exp| exp > now - SKEW_SECS && exp - now <= MAX_ASSERTION_LIFETIME_SECS + SKEW_SECS)
        && int("nbf").is_none_or(|nbf| nbf <= now + SKEW_SECS);
    let jti = claim("jti").and_then(|v| v.as_str()).filter(|j| !j.is_empty())?.to_string();
    // Remembered until it can no longer be accepted: its expiry plus the clock skew allowed.
    let exp = int("exp")? + SKEW_SECS;
    ok.then(|| (cert.clone(), jti, exp))
}

async fn password(state: &SharedState, tenant: &str, form: &OAuthForm) -> Result<Grant> {
    let (Some(username), Some(password)) = (field(form, "username"), field(form, "password")) else {
        return Ok(Grant::Failed(invalid_request("The password grant needs 'username' and 'password'.")));
    };
    Ok(match crate::directory::authenticate_user(state, tenant, username, password).await? {
        Some((principal, credential)) => Grant::Ok(SignIn {
            through_app: through_app(state, tenant, form).await?,
            ..SignIn::new(principal, credential)
        }),
        None => Grant::Failed(invalid_grant()),
    })
}

async fn refresh(state: &SharedState, tenant: &str, form: &OAuthForm) -> Result<Grant> {
    let Some(token) = field(form, "refresh_token") else {
        return Ok(Grant::Failed(invalid_request("The refresh_token grant needs 'refresh_token'.")));
    };
    let Some((id, secret)) = token.split_once('.') else { return Ok(Grant::Failed(invalid_grant())) };
    let now = state.clock.now();
    let Some(rec) = state.store.get_refresh_token(id).await? else { return Ok(Grant::Failed(invalid_grant())) };
    let matches = ct_eq(sha256_hex(secret.as_bytes()).as_bytes(), rec.secret_hash.as_bytes());
    if !matches || rec.expires <= now {
        return Ok(Grant::Failed(invalid_grant()));
    }
    let principal = enabled_principal(state.store.get_principal(&rec.principal_id).await?, &[PrincipalKind::User])
        .filter(|p| p.tenant_id == tenant);
    let credential = state.store.get_credential(&rec.credential_id).await?;
    let (Some(principal), Some(credential)) = (principal, credential) else {
        return Ok(Grant::Failed(invalid_grant()));
    };
    let sign_in = SignIn {
        through_app: rec.through_app.clone(),
        family: Some(rec.family.clone()),
        ..SignIn::new(principal, credential)
    };
    // Single use: redeeming marks this token used and stores its successor in one step; a
    // token presented a second time (stolen, or replayed) revokes the whole chain.
    let (next, next_record) = new_refresh_token(&sign_in, sign_in.family.as_deref(), now);
    stores_a_token(state).await?;
    match state.store.redeem_refresh_token(&rec.id, &next_record, now).await? {
        Redeemed::Rotated => Ok(Grant::Refreshed(sign_in, next)),
        Redeemed::Replayed => {
            tracing::warn!(principal = %rec.principal_id, "a used refresh token was presented again: its chain is revoked");
            Ok(Grant::Failed(invalid_grant()))
        }
    }
}

/// RFC 7009-style revocation of a refresh token (used by `coffer logout`).
pub async fn revoke(State(state): State<SharedState>, Path(_tenant): Path<String>, body: Bytes) -> Response {
    let Ok(form) = serde_urlencoded::from_bytes::<OAuthForm>(&body) else {
        return invalid_request("The request body must be form-encoded.");
    };
    if let Some((id, secret)) = field(&form, "token").and_then(|t| t.split_once('.'))
        && let Ok(Some(rec)) = state.store.get_refresh_token(id).await
        && ct_eq(sha256_hex(secret.as_bytes()).as_bytes(), rec.secret_hash.as_bytes())
    {
        // Fail closed: the revocation is recorded as started before it happens.
        if let Err(e) = crate::audit::before_change(&state.audit).await {
            return ApiError(e).into_response();
        }
        if let Err(e) = state.store.revoke_refresh_family(id).await {
            return ApiError(e).into_response();
        }
    }
    // As RFC 7009: unknown tokens are not an error.
    StatusCode::OK.into_response()
}

#[derive(serde::Deserialize)]
pub struct MiQuery {
    resource: Option<String>,
    #[serde(rename = "api-version")]
    api_version: Option<String>,
}

/// The App Service managed-identity protocol: `GET {IDENTITY_ENDPOINT}?api-version=2019-08-01
/// &resource=R` with the secret `X-IDENTITY-HEADER`.
pub async fn managed_identity(
    State(state): State<SharedState>,
    Path((tenant, object_id)): Path<(String, String)>,
    ClientAddr(addr): ClientAddr,
    Query(q): Query<MiQuery>,
    headers: HeaderMap,
) -> Response {
    let mi_error = |status: StatusCode, msg: &str| {
        crate::audit::note(|d| d.error = Some(msg.to_string()));
        json(status, json!({"statusCode": status.as_u16(), "message": msg}))
    };
    crate::audit::note(|d| d.claimed = Some(format!("managed identity {}", coffer_core::names::printable(&object_id))));
    if q.api_version.as_deref() != Some("2019-08-01") {
        return mi_error(StatusCode::BAD_REQUEST, "api-version must be 2019-08-01.");
    }
    let Some(resource) = q.resource.as_deref().and_then(|r| resource_for(&state, r)) else {
        return mi_error(StatusCode::BAD_REQUEST, "The resource is not one this server issues tokens for.");
    };
    let Some(header) = headers.get("x-identity-header").and_then(|h| h.to_str().ok()) else {
        return mi_error(StatusCode::UNAUTHORIZED, "The X-IDENTITY-HEADER header is required.");
    };
    let now = state.clock.now();
    let (pkey, akey) = (principal_key(&tenant, &object_id), address_key(addr));
    let attempt = match state.throttle.begin(pkey, akey, now) {
        Ok(attempt) => attempt,
        Err(wait) => return locked(wait),
    };
    let result: Result<Option<SignIn>> = async {
        let principal =
            enabled_principal(state.store.get_principal(&object_id).await?, &[PrincipalKind::ManagedIdentity])
                .filter(|p| p.tenant_id == tenant);
        let candidates = match &principal {
            Some(p) => live_credentials(&state, &p.object_id, credential_kind::IDENTITY_HEADER).await?,
            None => Vec::new(),
        };
        Ok(match (principal, match_secret(candidates, header).await?) {
            (Some(principal), Some(credential)) => Some(SignIn::new(principal, credential)),
            _ => None,
        })
    }
    .await;
    match result {
        Ok(Some(s)) => {
            attempt.succeeded();
            note_signed_in(&s.principal, &s.credential, "managed_identity");
            match state.tokens.issue(&s.principal, Some(&s.credential.id), None, &resource, &state.names, now) {
                Ok((token, expires_in)) => json(
                    StatusCode::OK,
                    json!({
                        "access_token": token,
                        "expires_on": (now + expires_in).to_string(),
                        "resource": resource,
                        "token_type": "Bearer",
                        "client_id": s.principal.client_id,
                    }),
                ),
                Err(e) => ApiError(e).into_response(),
            }
        }
        Ok(None) => mi_error(StatusCode::UNAUTHORIZED, "The identity header is not valid for this managed identity."),
        Err(e) => ApiError(e).into_response(),
    }
}
