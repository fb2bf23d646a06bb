//! X.509 certificates as credentials: parse a PEM or DER certificate into what the identity
//! provider needs (thumbprints, public key, validity) and verify client assertions with it.
use aws_lc_rs::digest::{SHA1_FOR_LEGACY_USE_ONLY, SHA256, digest};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P384_SHA384_FIXED, RSA_PKCS1_2048_8192_SHA256, RSA_PSS_2048_8192_SHA256,
    UnparsedPublicKey, VerificationAlgorithm,
};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::public_key::PublicKey;

use crate::b64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyKind {
    Rsa,
    EcP256,
    EcP384,
}

/// What Coffer keeps of a certificate credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    pub der: Vec<u8>,
    /// base64url SHA-1 of the DER (JOSE `x5t`).
    pub x5t: String,
    /// base64url SHA-256 of the DER (JOSE `x5t#S256`).
    pub x5t_s256: String,
    pub key_kind: KeyKind,
    /// RSAPublicKey DER for RSA, the uncompressed point for EC.
    pub public_key: Vec<u8>,
    pub not_before: i64,
    pub not_after: i64,
    pub subject: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CertError {
    #[error("the certificate is not valid PEM or DER: {0}")]
    Parse(String),
    #[error("the certificate's key type is not supported (RSA, EC P-256 or P-384 only)")]
    UnsupportedKey,
}

/// Parses one certificate from PEM (`-----BEGIN CERTIFICATE-----`) or DER.
pub fn parse_certificate(input: &[u8]) -> Result<CertificateInfo, CertError> {
    let der = if input.starts_with(b"-----") || input.iter().take(64).all(|b| b.is_ascii()) {
        let (_, pem) = x509_parser::pem::parse_x509_pem(input).map_err(|e| CertError::Parse(e.to_string()))?;
        if pem.label != "CERTIFICATE" {
            return Err(CertError::Parse(format!("expected a CERTIFICATE block, found {}", pem.label)));
        }
        pem.contents
    } else {
        input.to_vec()
    };
    let (rest, cert) = X509Certificate::from_der(&der).map_err(|e| CertError::Parse(e.to_string()))?;
    if !rest.is_empty() {
        return Err(CertError::Parse("trailing data after the certificate".into()));
    }
    let spki = cert.public_key();
    let (key_kind, public_key) = match spki.parsed() {
        Ok(PublicKey::RSA(_)) => (KeyKind::Rsa, spki.subject_public_key.data.to_vec()),
        Ok(PublicKey::EC(point)) => {
            let curve = spki.algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok()).map(|o| o.to_id_string());
            match curve.as_deref() {
                Some("1.2.840.10045.3.1.7") => (KeyKind::EcP256, point.data().to_vec()),
                Some("1.3.132.0.34") => (KeyKind::EcP384, point.data().to_vec()),
                _ => return Err(CertError::UnsupportedKey),
            }
        }
        _ => return Err(CertError::UnsupportedKey),
    };
    let info = CertificateInfo {
        x5t: b64::url_encode(digest(&SHA1_FOR_LEGACY_USE_ONLY, &der).as_ref()),
        x5t_s256: b64::url_encode(digest(&SHA256, &der).as_ref()),
        key_kind,
        public_key,
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        subject: cert.subject().to_string(),
        der: der.clone(),
    };
    Ok(info)
}

impl CertificateInfo {
    /// Verifies a JWS signature over `signed` made with this certificate's key, for the
    /// algorithms MSAL and other clients use (`PS256`, `RS256`, `ES256`, `ES384`).
    pub fn verify(&self, alg: &str, signed: &[u8], signature: &[u8]) -> bool {
        let algorithm: &'static dyn VerificationAlgorithm = match (alg, &self.key_kind) {
            ("PS256", KeyKind::Rsa) => &RSA_PSS_2048_8192_SHA256,
            ("RS256", KeyKind::Rsa) => &RSA_PKCS1_2048_8192_SHA256,
            ("ES256", KeyKind::EcP256) => &ECDSA_P256_SHA256_FIXED,
            ("ES384", KeyKind::EcP384) => &ECDSA_P384_SHA384_FIXED,
            _ => return false,
        };
        UnparsedPublicKey::new(algorithm, &self.public_key).verify(signed, signature).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};

    #[test]
    fn parses_and_verifies_ec_certificate() {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let pkcs8 = pair.to_pkcs8v1().unwrap();
        let rc_key = rcgen::KeyPair::try_from(pkcs8.as_ref()).unwrap();
        let cert =
            rcgen::CertificateParams::new(vec!["app.example".to_string()]).unwrap().self_signed(&rc_key).unwrap();
        for input in [cert.pem().into_bytes(), cert.der().to_vec()] {
            let info = parse_certificate(&input).unwrap();
            assert_eq!(info.key_kind, KeyKind::EcP256);
            assert_eq!(info.der, cert.der().to_vec());
            assert_eq!(crate::b64::url_decode(&info.x5t).unwrap().len(), 20);
            assert_eq!(crate::b64::url_decode(&info.x5t_s256).unwrap().len(), 32);
            let sig = pair.sign(&SystemRandom::new(), b"header.claims").unwrap();
            assert!(info.verify("ES256", b"header.claims", sig.as_ref()));
            assert!(!info.verify("ES256", b"header.claimz", sig.as_ref()));
            assert!(!info.verify("PS256", b"header.claims", sig.as_ref()), "algorithm must fit the key");
        }
        assert!(parse_certificate(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").is_err());
        assert!(parse_certificate(&[0x30, 0x03, 0x01, 0x01, 0x00]).is_err());
    }
}
