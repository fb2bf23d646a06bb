//! Access tokens: issuing (for the identity provider), validating (for every API request), and
//! turning a valid token into a `Caller`; the control surface's bearer authentication
//! (`authenticate_management`, used by ARM, the directory, role assignments, the audit API and
//! dev tools). Signing keys are per tenant, sealed under the root of trust in the store; every
//! key ever used stays published so tokens outlive a rotation.
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use coffer_core::principal::{Caller, Principal, PrincipalKind};
use coffer_core::{Error, ErrorKind, Result};
use coffer_crypto::jwt::{self, AccessClaims, TokenSigner, VerifyingKey};
use coffer_store::{SigningKeyRecord, Store};

use crate::config::PublicNames;
use crate::http::{ApiError, error_body, json_headers, query_get, query_pairs};
use crate::keyring::Keyring;
use crate::state::SharedState;

/// Tokens live an hour, as Entra's do; revocation does not wait for expiry because every
/// request re-checks the principal (see `resolve_caller`).
pub const TOKEN_LIFETIME_SECS: i64 = 3600;
/// Tolerated clock skew for `nbf`.
const NBF_SKEW_SECS: i64 = 60;
/// Verified tokens remembered at most; the memo starts over when full.
const VERIFIED_MEMO_ENTRIES: usize = 10_000;

/// A token whose signature checked out: the signing key's id, its tenant, the claims.
#[derive(Debug)]
struct Verified {
    kid: String,
    tenant: String,
    claims: AccessClaims,
}

#[derive(Debug, Default)]
pub struct TokenService {
    signers: RwLock<HashMap<String, Arc<TokenSigner>>>,
    verifiers: RwLock<HashMap<String, (String, VerifyingKey)>>,
    /// Tokens whose signature was checked, by SHA-256 of the token. A client sends the same
    /// token for an hour; checking its ES256 signature again on every request was the largest
    /// single cost of a request. Only the signature check is remembered: issuer, audience and
    /// times are checked on every request.
    verified: RwLock<HashMap<[u8; 32], Arc<Verified>>>,
}

fn signing_key_aad(tenant_id: &str, kid: &str) -> Vec<u8> {
    format!("coffer/signing-key/v1|{tenant_id}|{kid}").into_bytes()
}

impl TokenService {
    /// Loads every tenant's signing keys, creating one for tenants that have none.
    pub async fn load(store: &dyn Store, keyring: &Keyring, now: i64) -> Result<Self> {
        let svc = Self::default();
        for tenant in store.list_tenants().await? {
            svc.load_tenant(store, keyring, &tenant.id, now).await?;
        }
        Ok(svc)
    }

    pub async fn load_tenant(&self, store: &dyn Store, keyring: &Keyring, tenant_id: &str, now: i64) -> Result<()> {
        let mut records = store.list_signing_keys(tenant_id).await?;
        if records.is_empty() {
            self.rotate(store, keyring, tenant_id, now).await?;
            records = store.list_signing_keys(tenant_id).await?;
        }
        for rec in &records {
            let der = keyring.open_with_root(&signing_key_aad(tenant_id, &rec.kid), &rec.sealed_pkcs8)?;
            let signer = TokenSigner::from_pkcs8(rec.kid.clone(), &der)?;
            self.install(tenant_id, signer);
        }
        Ok(())
    }

    /// Creates a new signing key for the tenant; it signs from now on, older keys still verify.
    pub async fn rotate(&self, store: &dyn Store, keyring: &Keyring, tenant_id: &str, now: i64) -> Result<String> {
        let kid = coffer_crypto::random::version_id();
        let (signer, der) = TokenSigner::generate(kid.clone())?;
        let sealed = keyring.seal_with_root(&signing_key_aad(tenant_id, &kid), &der)?;
        store
            .add_signing_key(&SigningKeyRecord {
                kid: kid.clone(),
                tenant_id: tenant_id.to_string(),
                sealed_pkcs8: sealed,
                created: now,
            })
            .await?;
        self.install(tenant_id, signer);
        Ok(kid)
    }

    /// Records are loaded oldest first, so the last installed key is the current signer.
    fn install(&self, tenant_id: &str, signer: TokenSigner) {
        let vk = signer.verifying_key();
        if let Ok(mut v) = self.verifiers.write() {
            v.insert(vk.kid.clone(), (tenant_id.to_string(), vk));
        }
        if let Ok(mut s) = self.signers.write() {
            s.insert(tenant_id.to_string(), Arc::new(signer));
        }
    }

    /// A signed access token for `principal`, bound to the credential it signed in with. A
    /// user's token names the application it signed in through (`appid`, compound identity);
    /// an application's names itself.
    pub fn issue(
        &self,
        principal: &Principal,
        credential_id: Option<&str>,
        through_app: Option<&str>,
        audience: &str,
        names: &PublicNames,
        now: i64,
    ) -> Result<(String, i64)> {
        let signer = self
            .signers
            .read()
            .ok()
            .and_then(|s| s.get(&principal.tenant_id).cloned())
            .ok_or_else(|| Error::internal(format!("no signing key for tenant {}", principal.tenant_id)))?;
        let is_user = principal.kind == PrincipalKind::User;
        let claims = AccessClaims {
            aud: audience.to_string(),
            iss: names.issuer(&principal.tenant_id),
            sub: principal.object_id.clone(),
            oid: principal.object_id.clone(),
            tid: principal.tenant_id.clone(),
            iat: now,
            nbf: now,
            exp: now + TOKEN_LIFETIME_SECS,
            appid: if is_user { through_app.map(str::to_string) } else { principal.client_id.clone() },
            azp: if is_user { through_app.map(str::to_string) } else { principal.client_id.clone() },
            upn: is_user.then(|| principal.name.clone()),
            name: Some(principal.name.clone()),
            idtyp: if is_user { "user".into() } else { "app".into() },
            ver: "2.0".into(),
            jti: coffer_crypto::random::guid(),
            cid: credential_id.map(str::to_string),
        };
        Ok((signer.sign(&claims)?, TOKEN_LIFETIME_SECS))
    }

    /// Checks signature, issuer, tenant, audience and times. Errors are 401s.
    pub fn validate(&self, token: &str, audience: &str, names: &PublicNames, now: i64) -> Result<AccessClaims> {
        let bad = |m: &str| Error::unauthorized(m.to_string());
        let verified = self.verified_signature(token)?;
        let (tenant, claims) = (&verified.tenant, verified.claims.clone());
        if claims.tid != *tenant || claims.iss != names.issuer(tenant) {
            return Err(bad("AKV10032: Invalid issuer. The token was not issued by this server's tenant."));
        }
        if claims.aud.trim_end_matches('/') != audience {
            return Err(bad(&format!("AKV10022: Invalid audience. Expected {audience}.")));
        }
        if now >= claims.exp {
            return Err(bad("AKV10021: The access token has expired."));
        }
        if claims.nbf > now + NBF_SKEW_SECS {
            return Err(bad("AKV10021: The access token is not yet valid."));
        }
        Ok(claims)
    }

    /// The token's claims once its signature checks out against a known key (remembered).
    fn verified_signature(&self, token: &str) -> Result<Arc<Verified>> {
        let bad = |m: &str| Error::unauthorized(m.to_string());
        let digest = coffer_crypto::digest::sha256(token.as_bytes());
        let known_key = |kid: &str| self.verifiers.read().ok().and_then(|v| v.get(kid).cloned());
        if let Some(hit) = self.verified.read().ok().and_then(|m| m.get(&digest).cloned())
            && known_key(&hit.kid).is_some()
        {
            return Ok(hit);
        }
        let kid = jwt::key_id(token).map_err(|e| bad(&format!("AKV10000: The access token is invalid: {e}.")))?;
        let (tenant, key) =
            known_key(&kid).ok_or_else(|| bad("AKV10000: The access token was signed by an unknown key."))?;
        let claims =
            jwt::verify(token, &key).map_err(|e| bad(&format!("AKV10000: The access token is invalid: {e}.")))?;
        let verified = Arc::new(Verified { kid, tenant, claims });
        if let Ok(mut memo) = self.verified.write() {
            if memo.len() >= VERIFIED_MEMO_ENTRIES {
                memo.clear();
            }
            memo.insert(digest, verified.clone());
        }
        Ok(verified)
    }

    pub fn jwks(&self, tenant_id: &str) -> serde_json::Value {
        let keys: Vec<serde_json::Value> = self
            .verifiers
            .read()
            .map(|v| v.values().filter(|(t, _)| t == tenant_id).map(|(_, k)| k.jwk()).collect())
            .unwrap_or_default();
        serde_json::json!({ "keys": keys })
    }
}

/// The bearer token of a request, if it has one.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

/// 401 with the challenge the Azure SDKs follow:
/// `Bearer authorization="https://localhost:8443/{tenant}", resource="https://vault.localhost:8443"`.
pub fn challenge(err: &Error, names: &PublicNames, tenant_id: &str, resource: &str) -> Response {
    crate::audit::note(|d| d.error = Some(err.message.clone()));
    let header = format!("Bearer authorization=\"{}/{tenant_id}\", resource=\"{resource}\"", names.authority());
    let mut resp = (StatusCode::UNAUTHORIZED, json_headers(), axum::Json(error_body(err))).into_response();
    if let Ok(v) = HeaderValue::from_str(&header) {
        resp.headers_mut().insert(axum::http::header::WWW_AUTHENTICATE, v);
    }
    resp
}

/// Turns validated claims into a caller. The principal must still exist and be enabled, and the
/// credential it signed in with must still exist: a deleted or disabled principal, or a
/// removed credential, loses access at once (every request checks), not when its token expires.
pub async fn resolve_caller(store: &dyn Store, claims: &AccessClaims, now: i64) -> Result<Caller> {
    let revoked =
        || Error::unauthorized("AKV10000: The principal or credential of this token no longer exists or is disabled.");
    let principal = store
        .get_principal(&claims.oid)
        .await?
        .filter(|p| p.enabled && p.tenant_id == claims.tid)
        .ok_or_else(revoked)?;
    if let Some(cid) = &claims.cid {
        store
            .get_credential(cid)
            .await?
            .filter(|c| c.principal_id == principal.object_id && c.expires.is_none_or(|e| now < e))
            .ok_or_else(revoked)?;
    }
    let groups = store.groups_of(&principal.object_id).await?;
    let signed_in_through = if principal.kind == PrincipalKind::User { claims.appid.clone() } else { None };
    Ok(Caller {
        signed_in_through,
        object_id: principal.object_id,
        tenant_id: principal.tenant_id,
        client_id: principal.client_id,
        name: principal.name,
        kind: principal.kind,
        groups,
        tenant_admin: principal.tenant_admin,
    })
}

// ---- The control surface's bearer authentication ----

/// The caller of a request with a management (ARM-audience) bearer token, or the 401
/// challenge; the caller is noted in the request's audit record.
pub async fn management_caller(state: &SharedState, headers: &axum::http::HeaderMap) -> Result<Caller, Response> {
    let names = &state.names;
    let resource = names.management_resource();
    let tenant =
        state.store.list_tenants().await.ok().and_then(|t| t.into_iter().next()).map(|t| t.id).unwrap_or_default();
    let Some(token) = bearer_token(headers) else {
        return Err(challenge(
            &Error::unauthorized("Authentication failed. The 'Authorization' header is missing."),
            names,
            &tenant,
            &resource,
        ));
    };
    let claims = match state.tokens.validate(token, &resource, names, state.clock.now()) {
        Ok(c) => c,
        Err(e) => return Err(challenge(&e, names, &tenant, &resource)),
    };
    let caller = match resolve_caller(state.store.as_ref(), &claims, state.clock.now()).await {
        Ok(c) => c,
        Err(e) if e.kind == ErrorKind::Unauthorized => return Err(challenge(&e, names, &claims.tid, &resource)),
        Err(e) => return Err(ApiError(e).into_response()),
    };
    crate::audit::note_caller(&caller, claims.cid.clone());
    Ok(caller)
}

/// Bearer authentication for the control surface's APIs (ARM, directory, role assignments,
/// audit API, dev tools; audience: the management resource), then the api-version check and,
/// for a change, the durable "started" record. The caller lands in the request extensions.
pub async fn authenticate_management(State(state): State<SharedState>, mut req: Request, next: Next) -> Response {
    let caller = match management_caller(&state, req.headers()).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let has_version = query_pairs(req.uri().query())
        .ok()
        .and_then(|q| query_get(&q, "api-version").map(|v| !v.trim().is_empty()))
        .unwrap_or(false);
    if !has_version {
        return ApiError(Error::new(
            ErrorKind::BadRequest,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        ))
        .into_response();
    }
    if let Err(e) = crate::audit::before_change(&state).await {
        return ApiError(e).into_response();
    }
    req.extensions_mut().insert(caller);
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use coffer_core::principal::PrincipalKind;

    fn service() -> (TokenService, Principal, PublicNames) {
        let svc = TokenService::default();
        let (signer, _) = TokenSigner::generate("k1".into()).expect("signer");
        svc.install("t1", signer);
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
        (svc, p, PublicNames { dns_suffix: "vault.localhost".into(), port: 8443 })
    }

    #[test]
    fn a_remembered_token_is_still_checked_for_audience_and_time() {
        let (svc, p, names) = service();
        let aud = "https://vault.localhost:8443";
        let (token, _) = svc.issue(&p, Some("cred"), None, aud, &names, 1_000).expect("issue");
        assert_eq!(svc.validate(&token, aud, &names, 1_000).expect("valid").oid, "o1");
        assert_eq!(svc.validate(&token, aud, &names, 1_001).expect("remembered").oid, "o1");
        assert!(svc.validate(&token, "https://localhost:8443", &names, 1_001).is_err(), "audience");
        assert!(svc.validate(&token, aud, &names, 1_000 + TOKEN_LIFETIME_SECS).is_err(), "expired");
        let other = PublicNames { dns_suffix: "vault.localhost".into(), port: 9443 };
        assert!(svc.validate(&token, aud, &other, 1_001).is_err(), "issuer");
    }

    #[test]
    fn an_altered_token_is_verified_afresh() {
        let (svc, p, names) = service();
        let aud = "https://vault.localhost:8443";
        let (token, _) = svc.issue(&p, None, None, aud, &names, 1_000).expect("issue");
        svc.validate(&token, aud, &names, 1_000).expect("valid");
        let (head, sig) = token.rsplit_once('.').expect("jws");
        let flipped = if sig.starts_with('A') { "B" } else { "A" };
        let altered = format!("{head}.{flipped}{}", &sig[1..]);
        assert!(svc.validate(&altered, aud, &names, 1_000).is_err());
        let other_claims = token.replacen(".ey", ".eyJ", 1);
        assert!(svc.validate(&other_claims, aud, &names, 1_000).is_err());
    }
}
