//! Keys inside a PKCS#11 token (`RSA-HSM`, `EC-HSM`, `oct-HSM`): generated there — or imported
//! into it — as sensitive, non-extractable objects, their private part never kept in server
//! memory. Signing, verifying, encryption, decryption, wrapping and unwrapping run in the
//! token. What the server keeps of such a key is `HsmKey`: the objects' label and the public
//! part (for the key bundle).
use std::collections::BTreeMap;

use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::MechanismType;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource, PkcsPssParams};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::CryptoError;
use crate::keys::{CipherOut, JwkIn, KeyError, aes_kw};
use crate::root::pkcs11::{Pkcs11Root, kept_in_token};

/// What to generate.
#[derive(Debug, Clone)]
pub enum HsmKeySpec {
    Rsa { bits: u32, exponent: u64 },
    Ec { curve: String },
    Aes { bits: u32 },
}

/// The iv, additional data and tag of an AES operation (each only where the algorithm has it).
#[derive(Debug, Clone, Copy, Default)]
pub struct CipherParams<'a> {
    pub iv: Option<&'a [u8]>,
    pub aad: Option<&'a [u8]>,
    pub tag: Option<&'a [u8]>,
}

/// A key in the token: the label its objects carry and its public JWK fields.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HsmKey {
    pub label: String,
    /// `RSA`, `EC` or `oct`.
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

/// An EC key signs with its curve's algorithm only (ES256 for P-256, …), as software keys do.
fn check_curve(key: &HsmKey, alg: &str) -> Result<(), CryptoError> {
    let wanted = match key.crv.as_deref() {
        Some("P-256") => "ES256",
        Some("P-384") => "ES384",
        Some("P-521") => "ES512",
        Some("P-256K") => "ES256K",
        _ => return Ok(()),
    };
    if key.kty == "EC" && alg != wanted {
        return Err(CryptoError::Refused(format!("a {} key signs with {wanted}", key.crv.as_deref().unwrap_or(""))));
    }
    Ok(())
}

/// Whether an AES key-wrap algorithm pads (RFC 5649), checked against the key.
fn aes_wrap(key: &HsmKey, alg: &str) -> Result<bool, CryptoError> {
    check_aes(key, alg)?;
    match alg {
        "A128KW" | "A192KW" | "A256KW" | "CKM_AES_KEY_WRAP" => Ok(false),
        "CKM_AES_KEY_WRAP_PAD" => Ok(true),
        _ => Err(CryptoError::Refused(unsupported(alg).into())),
    }
}

/// AES blocks encrypted and decrypted by the token; a fault of the token is kept aside for
/// the session's error handling (a fault, not a bad value).
struct TokenBlock<'s> {
    session: &'s Session,
    key: ObjectHandle,
    fault: std::cell::Cell<Option<cryptoki::error::Error>>,
}

impl TokenBlock<'_> {
    fn apply(&self, b: &mut [u8; 16], encrypt: bool) -> Result<(), KeyError> {
        let out = if encrypt {
            self.session.encrypt(&Mechanism::AesEcb, self.key, b)
        } else {
            self.session.decrypt(&Mechanism::AesEcb, self.key, b)
        };
        match out {
            Ok(v) if v.len() == 16 => {
                b.copy_from_slice(&v);
                Ok(())
            }
            Ok(_) => Err(KeyError::Failed("the token gave a block of the wrong size".into())),
            Err(e) => {
                self.fault.set(Some(e));
                Err(KeyError::Failed("the token failed".into()))
            }
        }
    }
}

impl aes_kw::BlockCipher for TokenBlock<'_> {
    fn encrypt(&self, b: &mut [u8; 16]) -> Result<(), KeyError> {
        self.apply(b, true)
    }
    fn decrypt(&self, b: &mut [u8; 16]) -> Result<(), KeyError> {
        self.apply(b, false)
    }
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

/// The template of an AES key in the token: sensitive, never extractable, for the four
/// symmetric uses.
fn secret_template(label: &[u8]) -> Vec<Attribute> {
    let mut t = vec![
        Attribute::KeyType(KeyType::AES),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
        Attribute::Wrap(true),
        Attribute::Unwrap(true),
    ];
    t.extend(kept_in_token(label));
    t
}

fn aes_key(label: &str, bits: u32) -> HsmKey {
    HsmKey { label: label.into(), kty: "oct".into(), public: BTreeMap::new(), size: Some(bits), crv: None }
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let i = b.iter().position(|x| *x != 0).unwrap_or(b.len().saturating_sub(1));
    &b[i..]
}

/// The AES algorithms' key size (`A128GCM` needs a 128-bit key); `None` for the `CKM_` names,
/// which fit any size.
fn aes_size(alg: &str) -> Option<u32> {
    match alg.get(..4) {
        Some("A128") => Some(128),
        Some("A192") => Some(192),
        Some("A256") => Some(256),
        _ => None,
    }
}

/// Checks that an AES algorithm fits the key (`A256*` on a 256-bit key).
fn check_aes(key: &HsmKey, alg: &str) -> Result<(), CryptoError> {
    if key.kty != "oct" {
        return Err(CryptoError::Refused(unsupported(alg).into()));
    }
    match aes_size(alg) {
        Some(bits) if Some(bits) != key.size => Err(CryptoError::Refused(format!(
            "{alg} needs a {bits}-bit key; this key has {} bits",
            key.size.unwrap_or(0)
        ))),
        _ => Ok(()),
    }
}

impl Pkcs11Root {
    /// Generates a key pair in the token under `label` (private: sensitive, never extractable).
    pub fn generate_key(&self, label: &str, spec: &HsmKeySpec) -> Result<HsmKey, CryptoError> {
        let l = label.as_bytes().to_vec();
        let mut private = kept_in_token(&l);
        private.push(Attribute::Sign(true));
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
            HsmKeySpec::Aes { bits } => {
                if ![128, 192, 256].contains(bits) {
                    return Err(CryptoError::Refused("oct-HSM keys are 128, 192 or 256 bits".into()));
                }
                let mut template = secret_template(&l);
                template.push(Attribute::ValueLen(u64::from(bits / 8).into()));
                self.run(|s| s.generate_key(&Mechanism::AesKeyGen, &template))?;
                Ok(aes_key(label, *bits))
            }
        }
    }

    /// Puts imported key material into the token as sensitive, non-extractable objects
    /// (`kty` `RSA`, `EC` or `oct`; checked by `KeyMaterial::from_jwk` before).
    pub fn import_key(&self, label: &str, jwk: &JwkIn) -> Result<HsmKey, CryptoError> {
        let field = |v: &Option<String>, name: &str| {
            crate::keys::field(v, name).map_err(|e| CryptoError::Refused(e.to_string()))
        };
        let l = label.as_bytes().to_vec();
        let private_base = |key_type: KeyType| {
            let mut t =
                vec![Attribute::Class(ObjectClass::PRIVATE_KEY), Attribute::KeyType(key_type), Attribute::Sign(true)];
            t.extend(kept_in_token(&l));
            t
        };
        let public_base = |key_type: KeyType| {
            vec![
                Attribute::Class(ObjectClass::PUBLIC_KEY),
                Attribute::KeyType(key_type),
                Attribute::Token(true),
                Attribute::Label(l.clone()),
                Attribute::Verify(true),
            ]
        };
        match crate::keys::base_kty(&jwk.kty) {
            Some("RSA") => {
                let (n, e) = (field(&jwk.n, "n")?, field(&jwk.e, "e")?);
                let mut private = private_base(KeyType::RSA);
                private.extend([
                    Attribute::Decrypt(true),
                    Attribute::Unwrap(true),
                    Attribute::Modulus(n.to_vec()),
                    Attribute::PublicExponent(e.to_vec()),
                    Attribute::PrivateExponent(field(&jwk.d, "d")?.to_vec()),
                    Attribute::Prime1(field(&jwk.p, "p")?.to_vec()),
                    Attribute::Prime2(field(&jwk.q, "q")?.to_vec()),
                    Attribute::Exponent1(field(&jwk.dp, "dp")?.to_vec()),
                    Attribute::Exponent2(field(&jwk.dq, "dq")?.to_vec()),
                    Attribute::Coefficient(field(&jwk.qi, "qi")?.to_vec()),
                ]);
                let mut public = public_base(KeyType::RSA);
                public.extend([
                    Attribute::Encrypt(true),
                    Attribute::Wrap(true),
                    Attribute::Modulus(n.to_vec()),
                    Attribute::PublicExponent(e.to_vec()),
                ]);
                self.create_pair(label, &private, &public)?;
                let bits = u32::try_from(strip_zeros(&n).len() * 8).unwrap_or(0);
                let mut out = BTreeMap::new();
                out.insert("n".into(), crate::b64::url_encode(strip_zeros(&n)));
                out.insert("e".into(), crate::b64::url_encode(strip_zeros(&e)));
                Ok(HsmKey { label: label.into(), kty: "RSA".into(), public: out, size: Some(bits), crv: None })
            }
            Some("EC") => {
                let name = jwk.crv.clone().unwrap_or_default();
                let (oid, _) = curve(&name).ok_or_else(|| CryptoError::Refused("the curve is not supported".into()))?;
                let (x, y) = (field(&jwk.x, "x")?, field(&jwk.y, "y")?);
                let mut private = private_base(KeyType::EC);
                private.extend([Attribute::EcParams(oid.to_vec()), Attribute::Value(field(&jwk.d, "d")?.to_vec())]);
                // CKA_EC_POINT is the DER OCTET STRING of the uncompressed point.
                let mut point = vec![0x04];
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                let mut der = vec![0x04, u8::try_from(point.len()).map_err(|_| bad("EC point"))?];
                der.extend_from_slice(&point);
                let mut public = public_base(KeyType::EC);
                public.extend([Attribute::EcParams(oid.to_vec()), Attribute::EcPoint(der)]);
                self.create_pair(label, &private, &public).map_err(|e| match e {
                    CryptoError::Refused(_) if name == "P-256K" => {
                        CryptoError::Refused("this HSM does not offer the curve P-256K".into())
                    }
                    other => other,
                })?;
                let mut out = BTreeMap::new();
                out.insert("crv".into(), name.clone());
                out.insert("x".into(), crate::b64::url_encode(&x));
                out.insert("y".into(), crate::b64::url_encode(&y));
                Ok(HsmKey { label: label.into(), kty: "EC".into(), public: out, size: None, crv: Some(name) })
            }
            Some(_) => {
                let k = field(&jwk.k, "k")?;
                let bits = u32::try_from(k.len() * 8).unwrap_or(0);
                if ![128, 192, 256].contains(&bits) {
                    return Err(CryptoError::Refused("oct keys are 128, 192 or 256 bits".into()));
                }
                let mut template = secret_template(&l);
                template.extend([Attribute::Class(ObjectClass::SECRET_KEY), Attribute::Value(k.to_vec())]);
                self.run(|s| s.create_object(&template))?;
                Ok(aes_key(label, bits))
            }
            None => Err(CryptoError::Refused("the key type is not supported".into())),
        }
    }

    /// Creates the two halves of an imported pair; if the second fails the first goes again.
    fn create_pair(&self, label: &str, private: &[Attribute], public: &[Attribute]) -> Result<(), CryptoError> {
        self.run(|s| s.create_object(private))?;
        if let Err(e) = self.run(|s| s.create_object(public)) {
            self.destroy_key(label).ok();
            return Err(e);
        }
        Ok(())
    }

    /// Signs a digest in the token.
    pub fn hsm_sign(&self, key: &HsmKey, alg: &str, digest: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if digest_len(alg) != Some(digest.len()) {
            return Err(CryptoError::Refused("the digest length does not match the algorithm".into()));
        }
        check_curve(key, alg)?;
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
        check_curve(key, alg)?;
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

    /// Encrypts in the token: RSA with the public key; AES-GCM (the iv made here unless given)
    /// and AES-CBC with an `oct-HSM` key.
    pub fn hsm_encrypt(
        &self,
        key: &HsmKey,
        alg: &str,
        plaintext: &[u8],
        CipherParams { iv, aad, .. }: CipherParams<'_>,
    ) -> Result<CipherOut, CryptoError> {
        if key.kty == "RSA" {
            rsa_cipher(alg)?;
            let value = self.run(|s| {
                let public = object(s, ObjectClass::PUBLIC_KEY, &key.label)?;
                s.encrypt(&rsa_cipher(alg).unwrap_or(Mechanism::RsaPkcs), public, plaintext)
            })?;
            return Ok(CipherOut { value, iv: None, tag: None, aad: None });
        }
        check_aes(key, alg)?;
        let secret = |s: &Session| object(s, ObjectClass::SECRET_KEY, &key.label);
        match &alg[alg.len().saturating_sub(3)..] {
            "GCM" => {
                let iv = match iv {
                    Some(v) if v.len() == 12 => v.to_vec(),
                    Some(_) => return Err(CryptoError::Refused("AES-GCM needs a 12-byte iv".into())),
                    None => crate::random::bytes(12).to_vec(),
                };
                let aad_bytes = aad.unwrap_or(&[]);
                let mut sealed = self.run(|s| {
                    let mut nonce = iv.clone();
                    let params = GcmParams::new(&mut nonce, aad_bytes, 128.into())?;
                    s.encrypt(&Mechanism::AesGcm(params), secret(s)?, plaintext)
                })?;
                let tag = sealed.split_off(sealed.len().saturating_sub(16));
                Ok(CipherOut { value: sealed, iv: Some(iv), tag: Some(tag), aad: aad.map(<[u8]>::to_vec) })
            }
            "CBC" | "PAD" => {
                let iv: [u8; 16] = iv
                    .and_then(|v| v.try_into().ok())
                    .ok_or_else(|| CryptoError::Refused("AES-CBC needs a 16-byte iv".into()))?;
                let padded = alg.ends_with("PAD");
                let value = self.run(|s| {
                    let m = if padded { Mechanism::AesCbcPad(iv) } else { Mechanism::AesCbc(iv) };
                    s.encrypt(&m, secret(s)?, plaintext)
                })?;
                Ok(CipherOut { value, iv: Some(iv.to_vec()), tag: None, aad: None })
            }
            _ => Err(CryptoError::Refused(unsupported(alg).into())),
        }
    }

    /// Decrypts in the token (RSA with the private key, AES with an `oct-HSM` key).
    pub fn hsm_decrypt(
        &self,
        key: &HsmKey,
        alg: &str,
        ciphertext: &[u8],
        CipherParams { iv, aad, tag }: CipherParams<'_>,
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if key.kty == "RSA" {
            rsa_cipher(alg)?;
            return self
                .run(|s| {
                    let private = object(s, ObjectClass::PRIVATE_KEY, &key.label)?;
                    s.decrypt(&rsa_cipher(alg).unwrap_or(Mechanism::RsaPkcs), private, ciphertext)
                })
                .map(Zeroizing::new);
        }
        check_aes(key, alg)?;
        let secret = |s: &Session| object(s, ObjectClass::SECRET_KEY, &key.label);
        match &alg[alg.len().saturating_sub(3)..] {
            "GCM" => {
                let iv = iv.ok_or_else(|| CryptoError::Refused("AES-GCM decryption needs the iv".into()))?;
                let tag =
                    tag.ok_or_else(|| CryptoError::Refused("AES-GCM decryption needs the authentication tag".into()))?;
                let joined = [ciphertext, tag].concat();
                let aad = aad.unwrap_or(&[]);
                self.run(|s| {
                    let mut nonce = iv.to_vec();
                    let params = GcmParams::new(&mut nonce, aad, 128.into())?;
                    let key = secret(s)?;
                    s.decrypt(&Mechanism::AesGcm(params), key, &joined).map_err(crate::root::pkcs11::gcm_tag_failure)
                })
                .map(Zeroizing::new)
            }
            "CBC" | "PAD" => {
                let iv: [u8; 16] = iv
                    .and_then(|v| v.try_into().ok())
                    .ok_or_else(|| CryptoError::Refused("AES-CBC needs a 16-byte iv".into()))?;
                let padded = alg.ends_with("PAD");
                self.run(|s| {
                    let m = if padded { Mechanism::AesCbcPad(iv) } else { Mechanism::AesCbc(iv) };
                    s.decrypt(&m, secret(s)?, ciphertext)
                })
                .map(Zeroizing::new)
            }
            _ => Err(CryptoError::Refused(unsupported(alg).into())),
        }
    }

    /// Wraps a key: RSA encryption with the public key, or AES key wrap (RFC 3394: `A*KW`,
    /// `CKM_AES_KEY_WRAP`; RFC 5649: `CKM_AES_KEY_WRAP_PAD`) with an `oct-HSM` key. Each AES
    /// block of the wrap is encrypted by the token (`CKM_AES_ECB`); the key never leaves it.
    /// (Not the token's own `CKM_AES_KEY_WRAP_PAD`: SoftHSM 2.6 zero-pads the input to a block
    /// before it, which is not RFC 5649, and `C_WrapKey` needs the bytes as a token object.)
    pub fn hsm_wrap(&self, key: &HsmKey, alg: &str, plain: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if key.kty == "RSA" {
            return self.hsm_encrypt(key, alg, plain, CipherParams::default()).map(|c| c.value);
        }
        let padded = aes_wrap(key, alg)?;
        self.with_blocks(
            key,
            |block| if padded { aes_kw::wrap_pad_in(block, plain) } else { aes_kw::wrap_in(block, plain) },
        )
        .map(|v| v.to_vec())
    }

    /// Unwraps a key (the inverse of `hsm_wrap`).
    pub fn hsm_unwrap(&self, key: &HsmKey, alg: &str, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if key.kty == "RSA" {
            return self.hsm_decrypt(key, alg, wrapped, CipherParams::default());
        }
        let padded = aes_wrap(key, alg)?;
        self.with_blocks(key, |block| {
            if padded { aes_kw::unwrap_pad_in(block, wrapped) } else { aes_kw::unwrap_in(block, wrapped) }
        })
    }

    /// Runs a key-wrap computation whose AES blocks the token encrypts and decrypts with `key`.
    fn with_blocks<T>(
        &self,
        key: &HsmKey,
        f: impl Fn(&dyn aes_kw::BlockCipher) -> Result<T, KeyError>,
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError>
    where
        T: Into<Zeroizing<Vec<u8>>>,
    {
        let outcome = self.run(|s| {
            let block = TokenBlock {
                session: s,
                key: object(s, ObjectClass::SECRET_KEY, &key.label)?,
                fault: Default::default(),
            };
            let result = f(&block);
            match block.fault.take() {
                Some(e) => Err(e),
                None => Ok(result.map(Into::into)),
            }
        })?;
        outcome.map_err(|e| match e {
            KeyError::Failed(m) if m.starts_with("unwrapping failed") => CryptoError::Open,
            other => CryptoError::Refused(other.to_string()),
        })
    }

    /// Whether the token still holds the key's private half.
    pub fn hsm_has_key(&self, key: &HsmKey) -> Result<bool, CryptoError> {
        self.run(|s| {
            let class = if key.kty == "oct" { ObjectClass::SECRET_KEY } else { ObjectClass::PRIVATE_KEY };
            let found = s.find_objects(&[Attribute::Class(class), Attribute::Label(key.label.as_bytes().to_vec())])?;
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
