//! Certificates: X.509 issuance from a Key Vault certificate policy (self-signed) and CSRs for
//! other issuers, on the vault's own key material; PKCS#12 (PFX) and PEM bundles, both ways;
//! and the check that a certificate belongs to a key.
use rcgen::string::Ia5String;
use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose, SanType,
    SerialNumber,
};
use zeroize::Zeroizing;

use crate::b64;
use crate::keys::KeyMaterial;

/// A certificate chain as DER, leaf first.
pub type Chain = Vec<Vec<u8>>;
/// A private key as PKCS#8 DER.
pub type Pkcs8 = Zeroizing<Vec<u8>>;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CertError {
    #[error("{0}")]
    BadParameter(String),
}

fn bad(m: impl Into<String>) -> CertError {
    CertError::BadParameter(m.into())
}

/// What a certificate should say: from the policy's `x509_props`.
#[derive(Debug, Clone, Default)]
pub struct Subject {
    /// `CN=app.example, O=Hospital, C=DE`.
    pub subject: String,
    pub dns_names: Vec<String>,
    pub emails: Vec<String>,
    pub upns: Vec<String>,
    pub ip_addresses: Vec<String>,
    pub uris: Vec<String>,
    /// Key Vault's names: digitalSignature, keyEncipherment, ...
    pub key_usage: Vec<String>,
    /// OIDs, e.g. 1.3.6.1.5.5.7.3.1.
    pub ekus: Vec<String>,
    pub validity_months: u32,
}

/// `CN=x, O=y` → a distinguished name (RFC 4514 subset: no escaped commas).
pub fn parse_dn(s: &str) -> Result<DistinguishedName, CertError> {
    let mut dn = DistinguishedName::new();
    for part in s.split([',', ';']).map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) =
            part.split_once('=').ok_or_else(|| bad(format!("The subject part '{part}' is not NAME=value.")))?;
        let t = match k.trim().to_ascii_uppercase().as_str() {
            "CN" => DnType::CommonName,
            "O" => DnType::OrganizationName,
            "OU" => DnType::OrganizationalUnitName,
            "L" => DnType::LocalityName,
            "ST" | "S" => DnType::StateOrProvinceName,
            "C" => DnType::CountryName,
            other => {
                return Err(bad(format!("The subject attribute '{other}' is not supported (CN, O, OU, L, ST, C).")));
            }
        };
        dn.push(t, v.trim());
    }
    if dn.iter().next().is_none() {
        return Err(bad("The subject must not be empty (for example CN=app.example)."));
    }
    Ok(dn)
}

fn key_usage(name: &str) -> Result<KeyUsagePurpose, CertError> {
    Ok(match name {
        "digitalSignature" => KeyUsagePurpose::DigitalSignature,
        "nonRepudiation" => KeyUsagePurpose::ContentCommitment,
        "keyEncipherment" => KeyUsagePurpose::KeyEncipherment,
        "dataEncipherment" => KeyUsagePurpose::DataEncipherment,
        "keyAgreement" => KeyUsagePurpose::KeyAgreement,
        "keyCertSign" => KeyUsagePurpose::KeyCertSign,
        "cRLSign" => KeyUsagePurpose::CrlSign,
        "encipherOnly" => KeyUsagePurpose::EncipherOnly,
        "decipherOnly" => KeyUsagePurpose::DecipherOnly,
        other => return Err(bad(format!("'{}' is not a key usage.", b64::printable(other)))),
    })
}

fn eku(oid: &str) -> Result<ExtendedKeyUsagePurpose, CertError> {
    Ok(match oid {
        "1.3.6.1.5.5.7.3.1" => ExtendedKeyUsagePurpose::ServerAuth,
        "1.3.6.1.5.5.7.3.2" => ExtendedKeyUsagePurpose::ClientAuth,
        "1.3.6.1.5.5.7.3.3" => ExtendedKeyUsagePurpose::CodeSigning,
        "1.3.6.1.5.5.7.3.4" => ExtendedKeyUsagePurpose::EmailProtection,
        "1.3.6.1.5.5.7.3.8" => ExtendedKeyUsagePurpose::TimeStamping,
        "1.3.6.1.5.5.7.3.9" => ExtendedKeyUsagePurpose::OcspSigning,
        other => {
            let arcs: Option<Vec<u64>> = other.split('.').map(|a| a.parse().ok()).collect();
            match arcs {
                Some(a) if a.len() >= 2 => ExtendedKeyUsagePurpose::Other(a),
                _ => return Err(bad(format!("'{}' is not an EKU OID.", b64::printable(other)))),
            }
        }
    })
}

/// Adds `months` calendar months to a Unix time (day clamped to the month's length).
pub fn add_months(t: i64, months: u32) -> i64 {
    let Ok(dt) = time::OffsetDateTime::from_unix_timestamp(t) else { return t };
    let total = dt.year() as i64 * 12 + (u8::from(dt.month()) as i64 - 1) + months as i64;
    let (year, month) = ((total / 12) as i32, (total % 12) as u8 + 1);
    let Ok(month) = time::Month::try_from(month) else { return t };
    let day = dt.day().min(time::util::days_in_month(month, year));
    time::Date::from_calendar_date(year, month, day)
        .map(|d| d.with_time(dt.time()).assume_utc().unix_timestamp())
        .unwrap_or(t)
}

fn params(s: &Subject, now: i64) -> Result<CertificateParams, CertError> {
    let mut p = CertificateParams::default();
    p.distinguished_name = parse_dn(&s.subject)?;
    let ia5 = |v: &str, what: &str| {
        Ia5String::try_from(v.to_string()).map_err(|_| bad(format!("'{}' is not a valid {what}.", b64::printable(v))))
    };
    for d in &s.dns_names {
        p.subject_alt_names.push(SanType::DnsName(ia5(d, "DNS name")?));
    }
    for e in &s.emails {
        p.subject_alt_names.push(SanType::Rfc822Name(ia5(e, "email address")?));
    }
    for u in &s.uris {
        p.subject_alt_names.push(SanType::URI(ia5(u, "URI")?));
    }
    for ip in &s.ip_addresses {
        p.subject_alt_names.push(SanType::IpAddress(
            ip.parse().map_err(|_| bad(format!("'{}' is not an IP address.", b64::printable(ip))))?,
        ));
    }
    for upn in &s.upns {
        p.subject_alt_names.push(SanType::OtherName((
            vec![1, 3, 6, 1, 4, 1, 311, 20, 2, 3],
            rcgen::OtherNameValue::Utf8String(upn.clone()),
        )));
    }
    p.key_usages = s.key_usage.iter().map(|k| key_usage(k)).collect::<Result<_, _>>()?;
    p.extended_key_usages = s.ekus.iter().map(|e| eku(e)).collect::<Result<_, _>>()?;
    if !(1..=1200).contains(&s.validity_months) {
        return Err(bad("validity_months must be between 1 and 1200."));
    }
    let start = time::OffsetDateTime::from_unix_timestamp(now - 300).map_err(|_| bad("bad time"))?;
    let end =
        time::OffsetDateTime::from_unix_timestamp(add_months(now, s.validity_months)).map_err(|_| bad("bad time"))?;
    p.not_before = start;
    p.not_after = end;
    let mut serial = [0u8; 16];
    crate::random::fill(&mut serial);
    serial[0] &= 0x7f;
    p.serial_number = Some(SerialNumber::from_slice(&serial));
    Ok(p)
}

/// The key pair rcgen signs with, from the vault's key material.
fn signer(key: &KeyMaterial) -> Result<KeyPair, CertError> {
    let der = key.pkcs8().ok_or_else(|| bad("oct keys cannot back a certificate."))?;
    let alg = match (key.kty.as_str(), key.crv.as_deref()) {
        ("RSA", _) => &rcgen::PKCS_RSA_SHA256,
        ("EC", Some("P-256")) => &rcgen::PKCS_ECDSA_P256_SHA256,
        ("EC", Some("P-384")) => &rcgen::PKCS_ECDSA_P384_SHA384,
        ("EC", Some("P-521")) => &rcgen::PKCS_ECDSA_P521_SHA512,
        _ => return Err(bad("Certificates need an RSA key or an EC key on P-256, P-384 or P-521.")),
    };
    let pki = rustls_pki_types::PrivatePkcs8KeyDer::from(der.to_vec());
    KeyPair::from_pkcs8_der_and_sign_algo(&pki, alg).map_err(|e| bad(format!("the key cannot sign certificates: {e}")))
}

/// A self-signed certificate (issuer `Self`), DER.
pub fn self_signed(subject: &Subject, key: &KeyMaterial, now: i64) -> Result<Vec<u8>, CertError> {
    let kp = signer(key)?;
    let cert = params(subject, now)?.self_signed(&kp).map_err(|e| bad(format!("issuing failed: {e}")))?;
    Ok(cert.der().to_vec())
}

/// A certificate signing request (issuer `Unknown`), DER.
pub fn csr(subject: &Subject, key: &KeyMaterial, now: i64) -> Result<Vec<u8>, CertError> {
    let kp = signer(key)?;
    let mut p = params(subject, now)?;
    // A request carries no serial number; the issuer chooses it.
    p.serial_number = None;
    let req = p.serialize_request(&kp).map_err(|e| bad(format!("making the CSR failed: {e}")))?;
    Ok(req.der().to_vec())
}

/// Whether the certificate's public key is the key's.
pub fn matches_key(cert_der: &[u8], key: &KeyMaterial) -> bool {
    let Ok(info) = crate::x509::parse_certificate(cert_der) else { return false };
    let Ok(jwk) = key.public_jwk() else { return false };
    match info.key_kind {
        crate::x509::KeyKind::Rsa => {
            // RSAPublicKey DER holds n; compare against the key's n.
            jwk.get("n")
                .and_then(|n| n.as_str())
                .and_then(b64::url_decode)
                .is_some_and(|n| info.public_key.windows(n.len()).any(|w| w == n.as_slice()))
        }
        _ => {
            let (Some(x), Some(y)) = (
                jwk.get("x").and_then(|v| v.as_str()).and_then(b64::url_decode),
                jwk.get("y").and_then(|v| v.as_str()).and_then(b64::url_decode),
            ) else {
                return false;
            };
            let mut point = vec![4u8];
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            info.public_key == point
        }
    }
}

/// A PKCS#12 archive (AES-256, PBKDF2/HMAC-SHA-256) of the chain and the key.
pub fn pfx(chain: &[Vec<u8>], key: &KeyMaterial, password: &str) -> Result<Vec<u8>, CertError> {
    let der = key.pkcs8().ok_or_else(|| bad("oct keys cannot back a certificate."))?;
    let certs = chain
        .iter()
        .map(|c| p12_keystore::Certificate::from_der(c).map_err(|e| bad(format!("bad certificate: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let pk = p12_keystore::PrivateKey::from_der(&der).map_err(|e| bad(format!("bad key: {e}")))?;
    let mut id = [0u8; 20];
    crate::random::fill(&mut id);
    let entry = p12_keystore::PrivateKeyChain::new(id.to_vec(), pk, certs);
    let mut ks = p12_keystore::KeyStore::new();
    ks.add_entry("certificate", p12_keystore::KeyStoreEntry::PrivateKeyChain(entry));
    ks.writer(password).write().map_err(|e| bad(format!("writing the PFX failed: {e}")))
}

/// A chain (leaf first) and its private key (PKCS#8), read from a PFX.
pub fn parse_pfx(data: &[u8], password: &str) -> Result<(Chain, Pkcs8), CertError> {
    let ks = p12_keystore::KeyStore::from_pkcs12(data, password, p12_keystore::Pkcs12ImportPolicy::Relaxed)
        .map_err(|e| bad(format!("The PFX cannot be read (wrong password or damaged file): {e}")))?;
    let (_, chain) = ks.private_key_chain().ok_or_else(|| bad("The PFX holds no private key with its certificate."))?;
    let certs: Vec<Vec<u8>> = chain.certs().iter().map(|c| c.as_der().to_vec()).collect();
    if certs.is_empty() {
        return Err(bad("The PFX holds a private key but no certificate."));
    }
    Ok((certs, Zeroizing::new(chain.key().as_der().to_vec())))
}

/// Key Vault's two content types of a certificate's secret.
pub const PKCS12_CONTENT_TYPE: &str = "application/x-pkcs12";
pub const PEM_CONTENT_TYPE: &str = "application/x-pem-file";

/// A certificate's secret value (base64 PFX, or PEM text) in the other content type (GET
/// `/secrets/{name}?outContentType=`), the key with it when the value has one.
pub fn convert_secret(value: &str, from: &str, to: &str) -> Result<Zeroizing<String>, CertError> {
    let (chain, key) = match from {
        PKCS12_CONTENT_TYPE => {
            let der = Zeroizing::new(b64::std_decode(value.trim()).ok_or_else(|| bad("the PFX is not base64"))?);
            let ks = p12_keystore::KeyStore::from_pkcs12(&der, "", p12_keystore::Pkcs12ImportPolicy::Relaxed)
                .map_err(|e| bad(format!("the PFX cannot be read: {e}")))?;
            match ks.private_key_chain() {
                Some((_, c)) => (
                    c.certs().iter().map(|c| c.as_der().to_vec()).collect::<Vec<_>>(),
                    Some(Zeroizing::new(c.key().as_der().to_vec())),
                ),
                None => (
                    ks.entries()
                        .filter_map(|(_, e)| match e {
                            p12_keystore::KeyStoreEntry::Certificate(c) => Some(c.as_der().to_vec()),
                            _ => None,
                        })
                        .collect(),
                    None,
                ),
            }
        }
        PEM_CONTENT_TYPE => parse_pem(value)?,
        other => return Err(bad(format!("a certificate's secret is not of the content type '{other}'"))),
    };
    if chain.is_empty() {
        return Err(bad("the certificate's secret holds no certificate"));
    }
    let key = key.map(|k| KeyMaterial::from_pkcs8(&k)).transpose().map_err(|e| bad(e.to_string()))?;
    match (to, key) {
        (PEM_CONTENT_TYPE, Some(key)) => pem_bundle(&chain, &key),
        (PEM_CONTENT_TYPE, None) => Ok(Zeroizing::new(chain.iter().map(|c| pem_block("CERTIFICATE", c)).collect())),
        (PKCS12_CONTENT_TYPE, Some(key)) => Ok(Zeroizing::new(b64::std_encode(&pfx(&chain, &key, "")?))),
        (PKCS12_CONTENT_TYPE, None) => Ok(Zeroizing::new(b64::std_encode(&pfx_public(&chain)?))),
        (other, _) => Err(bad(format!(
            "outContentType '{other}' is not supported; use {PKCS12_CONTENT_TYPE} or {PEM_CONTENT_TYPE}"
        ))),
    }
}

fn pem_block(label: &str, der: &[u8]) -> String {
    let b = b64::std_encode(der);
    let lines: Vec<&str> = b.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap_or("")).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

/// PEM: the private key (PKCS#8) then the chain, as Key Vault's `application/x-pem-file`.
pub fn pem_bundle(chain: &[Vec<u8>], key: &KeyMaterial) -> Result<Zeroizing<String>, CertError> {
    let der = key.pkcs8().ok_or_else(|| bad("oct keys cannot back a certificate."))?;
    let mut out = Zeroizing::new(pem_block("PRIVATE KEY", &der));
    for c in chain {
        out.push_str(&pem_block("CERTIFICATE", c));
    }
    Ok(out)
}

/// One certificate as a PEM block (no key).
pub fn pem_bundle_public(der: &[u8]) -> String {
    pem_block("CERTIFICATE", der)
}

/// A PKCS#12 archive of certificates only (for certificates whose key is not exportable).
pub fn pfx_public(chain: &[Vec<u8>]) -> Result<Vec<u8>, CertError> {
    let mut ks = p12_keystore::KeyStore::new();
    for (i, c) in chain.iter().enumerate() {
        let cert = p12_keystore::Certificate::from_der(c).map_err(|e| bad(format!("bad certificate: {e}")))?;
        ks.add_entry(&format!("certificate-{i}"), p12_keystore::KeyStoreEntry::Certificate(cert));
    }
    ks.writer("").write().map_err(|e| bad(format!("writing the PFX failed: {e}")))
}

/// Certificates (in order) and the private key, from PEM text.
pub fn parse_pem(text: &str) -> Result<(Chain, Option<Pkcs8>), CertError> {
    let mut certs = Vec::new();
    let mut key = None;
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + 11..];
        let label_end = after.find("-----").ok_or_else(|| bad("damaged PEM header"))?;
        let label = &after[..label_end];
        let end_marker = format!("-----END {label}-----");
        let body_start = label_end + 5;
        let body_end = after.find(&end_marker).ok_or_else(|| bad(format!("PEM block {label} has no end")))?;
        let body: String = after[body_start..body_end].chars().filter(|c| !c.is_whitespace()).collect();
        let der = b64::std_decode(&body).ok_or_else(|| bad(format!("PEM block {label} is not base64")))?;
        match label {
            "CERTIFICATE" => certs.push(der),
            "PRIVATE KEY" => key = Some(Zeroizing::new(der)),
            "RSA PRIVATE KEY" | "EC PRIVATE KEY" | "ENCRYPTED PRIVATE KEY" => {
                return Err(bad(format!(
                    "{label} blocks are not supported; give an unencrypted PKCS#8 'PRIVATE KEY'."
                )));
            }
            _ => {}
        }
        rest = &after[body_end + end_marker.len()..];
    }
    if certs.is_empty() {
        return Err(bad("The PEM holds no certificate."));
    }
    Ok((certs, key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

    fn subject() -> Subject {
        Subject {
            subject: "CN=portal.hospital.example, O=Hospital, C=DE".into(),
            dns_names: vec!["portal.hospital.example".into(), "www.hospital.example".into()],
            emails: vec!["it@hospital.example".into()],
            upns: vec!["svc@hospital.example".into()],
            ip_addresses: vec!["10.1.2.3".into()],
            uris: vec!["https://hospital.example/".into()],
            key_usage: vec!["digitalSignature".into(), "keyEncipherment".into()],
            ekus: vec!["1.3.6.1.5.5.7.3.1".into(), "1.3.6.1.5.5.7.3.2".into()],
            validity_months: 12,
        }
    }

    #[test]
    fn issues_what_the_policy_says() {
        let now = 1_800_000_000;
        for key in [
            KeyMaterial::generate("RSA", Some(2048), None, None).unwrap(),
            KeyMaterial::generate("EC", None, Some("P-384"), None).unwrap(),
        ] {
            let der = self_signed(&subject(), &key, now).unwrap();
            let (_, cert) = X509Certificate::from_der(&der).unwrap();
            assert_eq!(cert.subject().to_string(), "CN=portal.hospital.example, O=Hospital, C=DE");
            assert_eq!(cert.subject(), cert.issuer(), "self-signed");
            let sans = cert.subject_alternative_name().unwrap().unwrap().value.general_names.clone();
            assert!(sans.iter().any(|g| matches!(g, GeneralName::DNSName("www.hospital.example"))));
            assert!(sans.iter().any(|g| matches!(g, GeneralName::RFC822Name("it@hospital.example"))));
            assert!(sans.iter().any(|g| matches!(g, GeneralName::IPAddress(b) if *b == [10, 1, 2, 3])));
            let ku = cert.key_usage().unwrap().unwrap().value;
            assert!(ku.digital_signature() && ku.key_encipherment() && !ku.key_cert_sign());
            let eku = cert.extended_key_usage().unwrap().unwrap().value;
            assert!(eku.server_auth && eku.client_auth);
            assert_eq!(cert.validity().not_after.timestamp(), add_months(now, 12));
            assert!(matches_key(&der, &key));
            assert!(!matches_key(&der, &KeyMaterial::generate("RSA", Some(2048), None, None).unwrap()));
            assert!(!csr(&subject(), &key, now).unwrap().is_empty());
        }
        assert!(
            self_signed(&subject(), &KeyMaterial::generate("EC", None, Some("P-256K"), None).unwrap(), now).is_err()
        );
    }

    #[test]
    fn pfx_and_pem_round_trip() {
        let key = KeyMaterial::generate("EC", None, Some("P-256"), None).unwrap();
        let der = self_signed(&subject(), &key, 1_800_000_000).unwrap();
        let pfx = pfx(std::slice::from_ref(&der), &key, "s3cret").unwrap();
        let (chain, pk) = parse_pfx(&pfx, "s3cret").unwrap();
        assert_eq!(chain, vec![der.clone()]);
        assert!(matches_key(&chain[0], &KeyMaterial::from_pkcs8(&pk).unwrap()));
        assert!(parse_pfx(&pfx, "wrong").is_err());
        let pem = pem_bundle(std::slice::from_ref(&der), &key).unwrap();
        let (chain, pk) = parse_pem(&pem).unwrap();
        assert_eq!(chain, vec![der]);
        assert!(pk.is_some());
        assert!(parse_pem("nothing here").is_err());
    }

    #[test]
    fn months_and_subjects() {
        // 2026-01-31 + 1 month = 2026-02-28.
        assert_eq!(add_months(1_769_817_600, 1), 1_772_236_800);
        assert!(parse_dn("CN=a, XX=b").is_err());
        assert!(parse_dn("").is_err());
        assert!(parse_dn("CN=ok;O=fine").is_ok());
    }
}
