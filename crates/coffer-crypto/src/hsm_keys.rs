//! Keys inside a PKCS#11 token (`RSA-HSM`, `EC-HSM`): generated there as non-extractable
//! objects, their private part never in server memory. Signing, verifying, encryption,
//! decryption, wrapping and unwrapping run in the token. What the server keeps of such a key
//! is `HsmKey`: the objects' label and the public part (for the key bundle).
use std::collections::BTreeMap;

use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::MechanismType;
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource, PkcsPssParams};
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::CryptoError;
use crate::root::pkcs11::Pkcs11Root;

/// What to generate.
#[derive(Debug, Clone)]
pub enum HsmKeySpec {
    Rsa { bits: u32, exponent: u64 },
    Ec { curve: String },
}

/// A key in the token: the label its objects carry and its public JWK fields.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HsmKey {
    pub label: String,
    /// `RSA` or `EC`.
    pub kty: String,
    /// `n`, `e` or `crv`, `x`, `y` (base64url), as the key bundle shows them.
    pub public: BTreeMap<String, String>,
    pub size: Option<u32>,
    pub crv: Option<String>,
}

pub use crate::root::pkcs11::KEY_PREFIX;

fn bad(m: impl Into<String>) -> CryptoError {
    CryptoError::Root(m.into())
}

/// The DER OID of a named curve, and its coordinate length.
fn curve(name: &str) -> Option<(&'static [u8], usize)> {
    Some(match name {
        "P-256" => (&[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07], 32),
        "P-384" => (&[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22], 48),
        "P-521" => (&[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23], 66),
        "P-256K" => (&[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a], 32),
        _ => return None,
    })
}

/// The DigestInfo prefix of PKCS#1 v1.5 signatures (RFC 8017 §9.2, note 1).
fn digest_info(alg: &str) -> Option<&'static [u8]> {
    Some(match alg {
        "RS256" => &[
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04,
            0x20,
        ],
        "RS384" => &[
            0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04,
            0x30,
        ],
        "RS512" => &[
            0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04,
            0x40,
        ],
        _ => return None,
    })
}

fn pss(alg: &str) -> Option<PkcsPssParams> {
    let (hash_alg, mgf, s_len) = match alg {
        "PS256" => (MechanismType::SHA256, PkcsMgfType::MGF1_SHA256, 32u64),
        "PS384" => (MechanismType::SHA384, PkcsMgfType::MGF1_SHA384, 48),
        "PS512" => (MechanismType::SHA512, PkcsMgfType::MGF1_SHA512, 64),
        _ => return None,
    };
    Some(PkcsPssParams { hash_alg, mgf, s_len: s_len.into() })
}

fn digest_len(alg: &str) -> Option<usize> {
    match &alg[2..] {
        "256" | "256K" => Some(32),
        "384" => Some(48),
        "512" => Some(64),
        _ => None,
    }
}

/// The RSA encryption mechanism of a Key Vault algorithm.
fn rsa_cipher<'a>(alg: &str) -> Result<Mechanism<'a>, CryptoError> {
    Ok(match alg {
        "RSA1_5" => Mechanism::RsaPkcs,
        "RSA-OAEP" => Mechanism::RsaPkcsOaep(PkcsOaepParams::new(
            MechanismType::SHA1,
            PkcsMgfType::MGF1_SHA1,
            PkcsOaepSource::data_specified(&[]),
        )),
        "RSA-OAEP-256" => Mechanism::RsaPkcsOaep(PkcsOaepParams::new(
            MechanismType::SHA256,
            PkcsMgfType::MGF1_SHA256,
            PkcsOaepSource::data_specified(&[]),
        )),
        other => return Err(CryptoError::Refused(unsupported(other).into())),
    })
}

fn unsupported(_alg: &str) -> &'static str {
    "the algorithm is not supported for this key type"
}

fn object(session: &Session, class: ObjectClass, label: &str) -> Result<ObjectHandle, cryptoki::error::Error> {
    session
        .find_objects(&[Attribute::Class(class), Attribute::Label(label.as_bytes().to_vec())])?
        .into_iter()
        .next()
        .ok_or(cryptoki::error::Error::Pkcs11(
            cryptoki::error::RvError::KeyHandleInvalid,
            cryptoki::context::Function::FindObjects,
        ))
}

/// `04 ‖ x ‖ y` out of `CKA_EC_POINT` (a DER OCTET STRING around it, in most tokens).
fn ec_point(raw: &[u8], coordinate: usize) -> Option<(Vec<u8>, Vec<u8>)> {
    let want = 1 + 2 * coordinate;
    let point = if raw.len() == want { raw } else { raw.get(raw.len().checked_sub(want)?..)? };
    (point.first() == Some(&0x04)).then(|| (point[1..1 + coordinate].to_vec(), point[1 + coordinate..].to_vec()))
}

impl Pkcs11Root {
    /// Generates a key pair in the token under `label` (private: sensitive, never extractable).
    pub fn generate_key(&self, label: &str, spec: &HsmKeySpec) -> Result<HsmKey, CryptoError> {
        let l = label.as_bytes().to_vec();
        let private = vec![
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Label(l.clone()),
            Attribute::Sign(true),
        ];
        match spec {
            HsmKeySpec::Rsa { bits, exponent } => {
                let e = exponent.to_be_bytes().iter().copied().skip_while(|b| *b == 0).collect::<Vec<u8>>();
                let public = vec![
                    Attribute::Token(true),
                    Attribute::Label(l.clone()),
                    Attribute::ModulusBits(u64::from(*bits).into()),
                    Attribute::PublicExponent(e),
                    Attribute::Verify(true),
                    Attribute::Encrypt(true),
                    Attribute::Wrap(true),
                ];
                let mut private = private;
                private.extend([Attribute::Decrypt(true), Attribute::Unwrap(true)]);
                let (pub_handle, _) =
                    self.run(|s| s.generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &private))?;
                let attrs = self
                    .run(|s| s.get_attributes(pub_handle, &[AttributeType::Modulus, AttributeType::PublicExponent]))?;
                let mut out = BTreeMap::new();
                for a in attrs {
                    match a {
                        Attribute::Modulus(n) => {
                            out.insert("n".into(), crate::b64::url_encode(&n));
                        }
                        Attribute::PublicExponent(e) => {
                            out.insert("e".into(), crate::b64::url_encode(&e));
                        }
                        _ => {}
                    }
                }
                Ok(HsmKey { label: label.into(), kty: "RSA".into(), public: out, size: Some(*bits), crv: None })
            }
            HsmKeySpec::Ec { curve: name } => {
                let (oid, coordinate) = curve(name)
                    .ok_or_else(|| CryptoError::Refused("the curve is not supported (P-256, P-384, P-521)".into()))?;
                let public = vec![
                    Attribute::Token(true),
                    Attribute::Label(l.clone()),
                    Attribute::EcParams(oid.to_vec()),
                    Attribute::Verify(true),
                ];
                let generated = self.run(|s| s.generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private));
                let (pub_handle, _) = generated.map_err(|e| match e {
                    CryptoError::Refused(_) | CryptoError::Unavailable(_) if name == "P-256K" => {
                        CryptoError::Refused("this HSM does not offer the curve P-256K".into())
                    }
                    other => other,
                })?;
                let raw = self.run(|s| s.get_attributes(pub_handle, &[AttributeType::EcPoint]))?;
                let point = raw.into_iter().find_map(|a| match a {
                    Attribute::EcPoint(p) => Some(p),
                    _ => None,
                });
                let (x, y) = point
                    .as_deref()
                    .and_then(|p| ec_point(p, coordinate))
                    .ok_or_else(|| bad("the token gave no EC point"))?;
                let mut out = BTreeMap::new();
                out.insert("crv".into(), name.clone());
                out.insert("x".into(), crate::b64::url_encode(&x));
                out.insert("y".into(), crate::b64::url_encode(&y));
                Ok(HsmKey { label: label.into(), kty: "EC".into(), public: out, size: None, crv: Some(name.clone()) })
            }
        }
    }

    /// Signs a digest in the token.
    pub fn hsm_sign(&self, key: &HsmKey, alg: &str, digest: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if digest_len(alg) != Some(digest.len()) {
            return Err(CryptoError::Refused("the digest length does not match the algorithm".into()));
        }
        match (key.kty.as_str(), alg) {
            ("RSA", a) if a.starts_with("RS") => {
                let mut data =
                    digest_info(a).ok_or_else(|| CryptoError::Refused("unsupported algorithm".into()))?.to_vec();
                data.extend_from_slice(digest);
                self.run(|s| s.sign(&Mechanism::RsaPkcs, object(s, ObjectClass::PRIVATE_KEY, &key.label)?, &data))
            }
            ("RSA", a) if a.starts_with("PS") => {
                let params = pss(a).ok_or_else(|| CryptoError::Refused("unsupported algorithm".into()))?;
                self.run(|s| {
                    s.sign(&Mechanism::RsaPkcsPss(params), object(s, ObjectClass::PRIVATE_KEY, &key.label)?, digest)
                })
            }
            ("EC", a) if a.starts_with("ES") => {
                self.run(|s| s.sign(&Mechanism::Ecdsa, object(s, ObjectClass::PRIVATE_KEY, &key.label)?, digest))
            }
            _ => Err(CryptoError::Refused(unsupported(alg).into())),
        }
    }

    /// Verifies a signature in the token (a signature that does not verify is `false`).
    pub fn hsm_verify(&self, key: &HsmKey, alg: &str, digest: &[u8], signature: &[u8]) -> Result<bool, CryptoError> {
        let answer = |r: Result<(), cryptoki::error::Error>| match r {
            Ok(()) => Ok(true),
            Err(cryptoki::error::Error::Pkcs11(
                cryptoki::error::RvError::SignatureInvalid | cryptoki::error::RvError::SignatureLenRange,
                _,
            )) => Ok(false),
            Err(e) => Err(e),
        };
        match (key.kty.as_str(), alg) {
            ("RSA", a) if a.starts_with("RS") => {
                let mut data =
                    digest_info(a).ok_or_else(|| CryptoError::Refused("unsupported algorithm".into()))?.to_vec();
                data.extend_from_slice(digest);
                self.run(|s| {
                    answer(s.verify(
                        &Mechanism::RsaPkcs,
                        object(s, ObjectClass::PUBLIC_KEY, &key.label)?,
                        &data,
                        signature,
                    ))
                })
            }
            ("RSA", a) if a.starts_with("PS") => {
                let params = pss(a).ok_or_else(|| CryptoError::Refused("unsupported algorithm".into()))?;
                self.run(|s| {
                    let public = object(s, ObjectClass::PUBLIC_KEY, &key.label)?;
                    answer(s.verify(&Mechanism::RsaPkcsPss(params), public, digest, signature))
                })
            }
            ("EC", a) if a.starts_with("ES") => self.run(|s| {
                answer(s.verify(&Mechanism::Ecdsa, object(s, ObjectClass::PUBLIC_KEY, &key.label)?, digest, signature))
            }),
            _ => Err(CryptoError::Refused(unsupported(alg).into())),
        }
    }

    /// Encrypts (or wraps) with the public key, in the token.
    pub fn hsm_encrypt(&self, key: &HsmKey, alg: &str, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if key.kty != "RSA" {
            return Err(CryptoError::Refused(unsupported(alg).into()));
        }
        rsa_cipher(alg)?;
        self.run(|s| {
            let public = object(s, ObjectClass::PUBLIC_KEY, &key.label)?;
            s.encrypt(&rsa_cipher(alg).unwrap_or(Mechanism::RsaPkcs), public, plaintext)
        })
    }

    /// Decrypts (or unwraps) with the private key, in the token.
    pub fn hsm_decrypt(&self, key: &HsmKey, alg: &str, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if key.kty != "RSA" {
            return Err(CryptoError::Refused(unsupported(alg).into()));
        }
        rsa_cipher(alg)?;
        self.run(|s| {
            let private = object(s, ObjectClass::PRIVATE_KEY, &key.label)?;
            s.decrypt(&rsa_cipher(alg).unwrap_or(Mechanism::RsaPkcs), private, ciphertext)
        })
        .map(Zeroizing::new)
    }

    /// Whether the token still holds the key's private half.
    pub fn hsm_has_key(&self, key: &HsmKey) -> Result<bool, CryptoError> {
        self.run(|s| {
            let found = s.find_objects(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Label(key.label.as_bytes().to_vec()),
            ])?;
            Ok(!found.is_empty())
        })
    }

    /// Destroys every object of a key (its private and public halves).
    pub fn destroy_key(&self, label: &str) -> Result<(), CryptoError> {
        self.run(|s| {
            for h in s.find_objects(&[Attribute::Label(label.as_bytes().to_vec())])? {
                s.destroy_object(h)?;
            }
            Ok(())
        })
    }
}
