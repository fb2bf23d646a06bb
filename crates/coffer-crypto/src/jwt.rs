//! Access tokens: compact JWS with ES256 only. Anything else — `alg: none`, HS256 with a public
//! key as secret, unknown `kid` — is refused before a signature is even looked at.
//!
//! This module checks structure and signature; the claims (audience, issuer, tenant, times) are
//! checked by the server's token service against its clock.
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, UnparsedPublicKey,
};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::{CryptoError, b64};

pub const ALG: &str = "ES256";

/// Claims of a Coffer access token, shaped like Entra ID's v2 tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub aud: String,
    pub iss: String,
    pub sub: String,
    pub oid: String,
    pub tid: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `app` or `user`, as Entra's `idtyp`.
    pub idtyp: String,
    pub ver: String,
    pub jti: String,
    /// The credential the token was obtained with; removing it revokes the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cid: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token's algorithm is not accepted")]
    Algorithm,
    #[error("the token was signed by an unknown key")]
    UnknownKey,
    #[error("the token's signature is invalid")]
    Signature,
}

/// A tenant's signing key. The private part lives only here and, sealed, in the store.
pub struct TokenSigner {
    kid: String,
    pair: EcdsaKeyPair,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl TokenSigner {
    /// A new P-256 key; returns it with its PKCS#8 encoding (to be sealed and stored).
    pub fn generate(kid: String) -> Result<(Self, Zeroizing<Vec<u8>>), CryptoError> {
        let pair =
            EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).map_err(|_| CryptoError::Key("ec generate"))?;
        let der = Zeroizing::new(pair.to_pkcs8v1().map_err(|_| CryptoError::Key("pkcs8"))?.as_ref().to_vec());
        Ok((Self { kid, pair }, der))
    }

    pub fn from_pkcs8(kid: String, der: &[u8]) -> Result<Self, CryptoError> {
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der).map_err(|_| CryptoError::Key("pkcs8"))?;
        Ok(Self { kid, pair })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey { kid: self.kid.clone(), point: self.pair.public_key().as_ref().to_vec() }
    }

    pub fn sign<C: Serialize>(&self, claims: &C) -> Result<String, CryptoError> {
        let header = serde_json::json!({"alg": ALG, "typ": "JWT", "kid": self.kid});
        let h = b64::url_encode(header.to_string().as_bytes());
        let c = b64::url_encode(&serde_json::to_vec(claims).map_err(|_| CryptoError::Key("claims"))?);
        let input = format!("{h}.{c}");
        let sig = self.pair.sign(&SystemRandom::new(), input.as_bytes()).map_err(|_| CryptoError::Key("sign"))?;
        Ok(format!("{input}.{}", b64::url_encode(sig.as_ref())))
    }
}

/// The public half of a signing key, as published in the tenant's JWKS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyingKey {
    pub kid: String,
    /// Uncompressed SEC1 point: 0x04 || x || y.
    pub point: Vec<u8>,
}

impl VerifyingKey {
    pub fn jwk(&self) -> serde_json::Value {
        let (x, y) =
            if self.point.len() == 65 { (&self.point[1..33], &self.point[33..65]) } else { (&[][..], &[][..]) };
        serde_json::json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": ALG, "kid": self.kid,
            "x": b64::url_encode(x), "y": b64::url_encode(y),
        })
    }
}

/// Reads the `kid` of a token without trusting anything in it.
pub fn key_id(token: &str) -> Result<String, TokenError> {
    let (header, _, _) = split(token)?;
    let header: Header = decode_json(header)?;
    if header.alg != ALG {
        return Err(TokenError::Algorithm);
    }
    header.kid.ok_or(TokenError::UnknownKey)
}

/// Verifies structure, algorithm and signature; returns the (not yet validated) claims.
pub fn verify(token: &str, key: &VerifyingKey) -> Result<AccessClaims, TokenError> {
    verify_claims(token, key)
}

/// `verify` for any claims type (audit checkpoints sign their own).
pub fn verify_claims<T: serde::de::DeserializeOwned>(token: &str, key: &VerifyingKey) -> Result<T, TokenError> {
    let (header_b64, claims_b64, sig_b64) = split(token)?;
    let header: Header = decode_json(header_b64)?;
    if header.alg != ALG {
        return Err(TokenError::Algorithm);
    }
    if header.kid.as_deref() != Some(key.kid.as_str()) {
        return Err(TokenError::UnknownKey);
    }
    let sig = b64::url_decode(sig_b64).ok_or(TokenError::Malformed)?;
    let signed = &token[..header_b64.len() + 1 + claims_b64.len()];
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &key.point)
        .verify(signed.as_bytes(), &sig)
        .map_err(|_| TokenError::Signature)?;
    decode_json(claims_b64)
}

fn split(token: &str) -> Result<(&str, &str, &str), TokenError> {
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(c), Some(s), None) if !h.is_empty() && !c.is_empty() && !s.is_empty() => Ok((h, c, s)),
        _ => Err(TokenError::Malformed),
    }
}

fn decode_json<T: serde::de::DeserializeOwned>(part: &str) -> Result<T, TokenError> {
    let bytes = b64::url_decode(part).ok_or(TokenError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> AccessClaims {
        AccessClaims {
            aud: "https://vault.localhost:8443".into(),
            iss: "https://localhost:8443/t/v2.0".into(),
            sub: "o".into(),
            oid: "o".into(),
            tid: "t".into(),
            iat: 1,
            nbf: 1,
            exp: 2,
            appid: Some("a".into()),
            azp: None,
            upn: None,
            name: None,
            idtyp: "app".into(),
            ver: "2.0".into(),
            jti: "j".into(),
            cid: None,
        }
    }

    #[test]
    fn sign_verify_roundtrip_via_pkcs8() {
        let (s, der) = TokenSigner::generate("k1".into()).unwrap();
        let s2 = TokenSigner::from_pkcs8("k1".into(), &der).unwrap();
        let t = s2.sign(&claims()).unwrap();
        assert_eq!(key_id(&t).unwrap(), "k1");
        assert_eq!(verify(&t, &s.verifying_key()).unwrap(), claims());
        let jwk = s.verifying_key().jwk();
        assert_eq!(jwk["crv"], "P-256");
        assert_eq!(b64::url_decode(jwk["x"].as_str().unwrap()).unwrap().len(), 32);
    }

    #[test]
    fn tampering_and_alg_none_are_refused() {
        let (s, _) = TokenSigner::generate("k1".into()).unwrap();
        let t = s.sign(&claims()).unwrap();
        let vk = s.verifying_key();
        // Changed claims with the old signature.
        let parts: Vec<&str> = t.split('.').collect();
        let mut c = claims();
        c.oid = "someone-else".into();
        let forged = format!("{}.{}.{}", parts[0], b64::url_encode(&serde_json::to_vec(&c).unwrap()), parts[2]);
        assert_eq!(verify(&forged, &vk), Err(TokenError::Signature));
        // alg none, unsigned.
        let none = format!("{}.{}.", b64::url_encode(br#"{"alg":"none","kid":"k1"}"#), parts[1]);
        assert_eq!(verify(&none, &vk), Err(TokenError::Malformed));
        let none_sig = format!("{}.{}.AAAA", b64::url_encode(br#"{"alg":"none","kid":"k1"}"#), parts[1]);
        assert_eq!(verify(&none_sig, &vk), Err(TokenError::Algorithm));
        assert_eq!(key_id(&none_sig), Err(TokenError::Algorithm));
        // Another key.
        let (other, _) = TokenSigner::generate("k1".into()).unwrap();
        assert_eq!(verify(&t, &other.verifying_key()), Err(TokenError::Signature));
        assert_eq!(verify("a.b", &vk), Err(TokenError::Malformed));
    }
}

/// A client assertion (RFC 7523) as sent to the token endpoint, before verification.
#[derive(Debug)]
pub struct ClientAssertion<'a> {
    pub alg: String,
    /// The certificate thumbprints the client names (either may be absent).
    pub x5t: Option<String>,
    pub x5t_s256: Option<String>,
    pub claims: serde_json::Value,
    signed: &'a str,
    signature: Vec<u8>,
}

#[derive(Deserialize)]
struct AssertionHeader {
    alg: String,
    #[serde(default)]
    x5t: Option<String>,
    #[serde(default, rename = "x5t#S256")]
    x5t_s256: Option<String>,
}

impl<'a> ClientAssertion<'a> {
    pub fn parse(token: &'a str) -> Result<Self, TokenError> {
        let (h, c, s) = split(token)?;
        let header: AssertionHeader = decode_json(h)?;
        if !matches!(header.alg.as_str(), "PS256" | "RS256" | "ES256" | "ES384") {
            return Err(TokenError::Algorithm);
        }
        Ok(Self {
            alg: header.alg,
            x5t: header.x5t,
            x5t_s256: header.x5t_s256,
            claims: decode_json(c)?,
            signed: &token[..h.len() + 1 + c.len()],
            signature: b64::url_decode(s).ok_or(TokenError::Malformed)?,
        })
    }

    /// Whether this certificate's thumbprint is the one the assertion names. Padding is ignored:
    /// MSAL sends padded base64url (`urlsafe_b64encode`).
    pub fn names(&self, cert: &crate::x509::CertificateInfo) -> bool {
        let same =
            |given: &Option<String>, ours: &str| given.as_deref().is_some_and(|g| g.trim_end_matches('=') == ours);
        same(&self.x5t_s256, &cert.x5t_s256) || same(&self.x5t, &cert.x5t)
    }

    pub fn verify_with(&self, cert: &crate::x509::CertificateInfo) -> bool {
        cert.verify(&self.alg, self.signed.as_bytes(), &self.signature)
    }
}
