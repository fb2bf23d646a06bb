//! Access tokens: issuing (for the identity provider) and validating (for every API request).
//! Signing keys are per tenant, sealed under the root of trust in the store; every key ever
//! used stays published so tokens outlive a rotation. Held in the server state; turning a
//! token into a caller is authentication's (`crate::authentication`).
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use coffer_core::principal::{Principal, PrincipalKind};
use coffer_core::{Error, Result};
use coffer_crypto::jwt::{self, AccessClaims, TokenSigner, VerifyingKey};
use coffer_store::{SigningKeyRecord, Store};

use crate::config::PublicNames;
use crate::keyring::Keyring;

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

/// What a tenant's sealed token-signing key is bound to.
pub fn signing_key_aad(tenant_id: &str, kid: &str) -> Vec<u8> {
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
        let _root_write = keyring.root_write().await;
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

    /// An OpenID Connect ID token for a user's sign-in, for the client that asked (`aud`):
    /// who signed in, not a key to any API (no token validation here accepts it: it carries
    /// no `cid` and its audience is a client id).
    pub fn issue_id_token(&self, user: &Principal, client_id: &str, names: &PublicNames, now: i64) -> Result<String> {
        #[derive(serde::Serialize)]
        struct IdClaims<'a> {
            aud: &'a str,
            iss: String,
            sub: &'a str,
            oid: &'a str,
            tid: &'a str,
            iat: i64,
            nbf: i64,
            exp: i64,
            preferred_username: &'a str,
            name: &'a str,
            ver: &'static str,
        }
        let signer = self
            .signers
            .read()
            .ok()
            .and_then(|s| s.get(&user.tenant_id).cloned())
            .ok_or_else(|| Error::internal(format!("no signing key for tenant {}", user.tenant_id)))?;
        let claims = IdClaims {
            aud: client_id,
            iss: names.issuer(&user.tenant_id),
            sub: &user.object_id,
            oid: &user.object_id,
            tid: &user.tenant_id,
            iat: now,
            nbf: now,
            exp: now + TOKEN_LIFETIME_SECS,
            preferred_username: &user.name,
            name: user.display_name(),
            ver: "2.0",
        };
        Ok(signer.sign(&claims)?)
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
            display_name: None,
            mail_nickname: None,
        };
        (svc, p, PublicNames { host: "localhost".into(), dns_suffix: "vault.localhost".into(), port: 8443 })
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
        let other = PublicNames { host: "localhost".into(), dns_suffix: "vault.localhost".into(), port: 9443 };
        assert!(svc.validate(&token, aud, &other, 1_001).is_err(), "issuer");
    }

    #[test]
    fn an_id_token_is_never_an_access_token() {
        let (svc, app, names) = service();
        let user = Principal { kind: PrincipalKind::User, client_id: None, name: "u@x".into(), ..app };
        // Even with an API's audience (the grant only ever puts a GUID client id there).
        for aud in ["https://vault.localhost:8443", "https://localhost:8443"] {
            let id_token = svc.issue_id_token(&user, aud, &names, 1_000).expect("issue");
            assert!(svc.validate(&id_token, aud, &names, 1_000).is_err(), "{aud}");
        }
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
