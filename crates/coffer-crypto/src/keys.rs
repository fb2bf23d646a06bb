//! Key Vault keys: generation, JWK import/export and every cryptographic operation of the API,
//! on aws-lc-rs. Private material lives in `KeyMaterial` (PKCS#8 for RSA and EC, raw bytes for
//! oct), which is zeroized on drop, sealed at rest, and never serialized into a response.
use std::sync::OnceLock;

use aws_lc_rs::aead::{AES_128_GCM, AES_192_GCM, AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::cipher::{
    AES_128, AES_192, AES_256, DecryptingKey, DecryptionContext, EncryptingKey, EncryptionContext,
    PaddedBlockDecryptingKey, PaddedBlockEncryptingKey, UnboundCipherKey,
};
use aws_lc_rs::digest::{Digest, SHA256, SHA384, SHA512};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::iv::FixedLength;
use aws_lc_rs::rsa::{
    KeyPairComponents, KeySize, OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OaepPrivateDecryptingKey,
    OaepPublicEncryptingKey, Pkcs1PrivateDecryptingKey, Pkcs1PublicEncryptingKey, PrivateDecryptingKey,
    PublicKeyComponents,
};
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, EcdsaSigningAlgorithm, EcdsaVerificationAlgorithm, KeyPair, ParsedPublicKey, RsaKeyPair,
};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::b64;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    /// The request does not fit the key (400 BadParameter).
    #[error("{0}")]
    BadParameter(String),
    /// The operation failed on well-formed input: wrong key, tampered ciphertext (400).
    #[error("{0}")]
    Failed(String),
}

fn bad(m: impl Into<String>) -> KeyError {
    KeyError::BadParameter(m.into())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    P256,
    P384,
    P521,
    P256K,
}

impl Curve {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "P-256" => Some(Self::P256),
            "P-384" => Some(Self::P384),
            "P-521" => Some(Self::P521),
            "P-256K" | "SECP256K1" => Some(Self::P256K),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Self::P256 => "P-256",
            Self::P384 => "P-384",
            Self::P521 => "P-521",
            Self::P256K => "P-256K",
        }
    }
    fn signing(self) -> &'static EcdsaSigningAlgorithm {
        match self {
            Self::P256 => &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            Self::P384 => &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
            Self::P521 => &signature::ECDSA_P521_SHA512_FIXED_SIGNING,
            Self::P256K => &signature::ECDSA_P256K1_SHA256_FIXED_SIGNING,
        }
    }
    fn verifying(self) -> &'static EcdsaVerificationAlgorithm {
        match self {
            Self::P256 => &signature::ECDSA_P256_SHA256_FIXED,
            Self::P384 => &signature::ECDSA_P384_SHA384_FIXED,
            Self::P521 => &signature::ECDSA_P521_SHA512_FIXED,
            Self::P256K => &signature::ECDSA_P256K1_SHA256_FIXED,
        }
    }
    fn coordinate_len(self) -> usize {
        match self {
            Self::P256 | Self::P256K => 32,
            Self::P384 => 48,
            Self::P521 => 66,
        }
    }
    /// The signature algorithm that goes with the curve (ES256 with P-256, ...).
    fn sign_alg(self) -> &'static str {
        match self {
            Self::P256 => "ES256",
            Self::P384 => "ES384",
            Self::P521 => "ES512",
            Self::P256K => "ES256K",
        }
    }
}

/// Private key material. Serialized only into sealed payloads.
#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct KeyMaterial {
    /// `RSA`, `EC` or `oct`.
    pub kty: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    /// PKCS#8 DER, base64url (RSA and EC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub der: Option<String>,
    /// Raw key bytes, base64url (oct).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k: Option<String>,
    /// Whether the private part may ever leave the vault (a certificate's exportable key, in
    /// its PFX or PEM secret). Fixed when the material is made and sealed with it, so no later
    /// policy — and no edited database row — can widen it; material sealed before the flag
    /// existed reads as not exportable.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exportable: bool,
    /// The key parsed for aws-lc-rs, made on first use and kept with the material: parsing an
    /// RSA key checks it, which costs about a third of a signature. (aws-lc clears the memory it
    /// frees, so dropped parsed keys leave nothing behind.)
    #[serde(skip)]
    #[zeroize(skip)]
    parsed: Parsed,
}

#[derive(Default)]
struct Parsed {
    rsa: OnceLock<RsaKeyPair>,
    rsa_decrypting: OnceLock<PrivateDecryptingKey>,
    ec: OnceLock<EcdsaKeyPair>,
}

/// `lock`'s value, parsing it with `parse` the first time.
fn parsed_once<T>(lock: &OnceLock<T>, parse: impl FnOnce() -> Result<T, KeyError>) -> Result<&T, KeyError> {
    if let Some(v) = lock.get() {
        return Ok(v);
    }
    let v = parse()?;
    Ok(lock.get_or_init(|| v))
}

/// A copy of the material (parsed forms are made again on use).
impl Clone for KeyMaterial {
    fn clone(&self) -> Self {
        Self {
            kty: self.kty.clone(),
            crv: self.crv.clone(),
            der: self.der.clone(),
            k: self.k.clone(),
            exportable: self.exportable,
            parsed: Parsed::default(),
        }
    }
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyMaterial")
            .field("kty", &self.kty)
            .field("crv", &self.crv)
            .field("exportable", &self.exportable)
            .finish_non_exhaustive()
    }
}

/// A JSON Web Key as Key Vault sends and accepts it (`import`), private parts included.
#[derive(Default, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct JwkIn {
    #[serde(default)]
    pub kty: String,
    #[serde(default)]
    pub crv: Option<String>,
    #[serde(default)]
    pub n: Option<String>,
    #[serde(default)]
    pub e: Option<String>,
    #[serde(default)]
    pub d: Option<String>,
    #[serde(default)]
    pub p: Option<String>,
    #[serde(default)]
    pub q: Option<String>,
    #[serde(default)]
    pub dp: Option<String>,
    #[serde(default)]
    pub dq: Option<String>,
    #[serde(default)]
    pub qi: Option<String>,
    #[serde(default)]
    pub x: Option<String>,
    #[serde(default)]
    pub y: Option<String>,
    #[serde(default)]
    pub k: Option<String>,
}

pub(crate) fn field(v: &Option<String>, name: &str) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let s = v.as_deref().ok_or_else(|| bad(format!("The JSON web key is missing '{name}'.")))?;
    b64::url_decode(s)
        .map(Zeroizing::new)
        .ok_or_else(|| bad(format!("The JSON web key field '{name}' is not base64url.")))
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let i = b.iter().position(|x| *x != 0).unwrap_or(b.len().saturating_sub(1));
    &b[i..]
}

/// The base kind, `RSA`, `EC` or `oct`, of a Key Vault key type (`RSA-HSM` is `RSA`).
pub fn base_kty(kty: &str) -> Option<&'static str> {
    match kty {
        "RSA" | "RSA-HSM" => Some("RSA"),
        "EC" | "EC-HSM" => Some("EC"),
        "oct" | "oct-HSM" => Some("oct"),
        _ => None,
    }
}

impl KeyMaterial {
    /// The same material, marked exportable or not. Only for material being made (a
    /// certificate's new or imported key): stored material keeps the flag it was sealed with.
    pub fn with_exportable(mut self, exportable: bool) -> Self {
        self.exportable = exportable;
        self
    }

    fn rsa_pkcs8(der: &[u8]) -> Self {
        Self {
            kty: "RSA".into(),
            crv: None,
            der: Some(b64::url_encode(der)),
            k: None,
            exportable: false,
            parsed: Parsed::default(),
        }
    }

    fn ec_pkcs8(curve: Curve, der: &[u8]) -> Self {
        let crv = Some(curve.name().into());
        Self {
            kty: "EC".into(),
            crv,
            der: Some(b64::url_encode(der)),
            k: None,
            exportable: false,
            parsed: Parsed::default(),
        }
    }

    fn oct_bytes(k: &[u8]) -> Self {
        Self {
            kty: "oct".into(),
            crv: None,
            der: None,
            k: Some(b64::url_encode(k)),
            exportable: false,
            parsed: Parsed::default(),
        }
    }

    pub fn generate(
        kty: &str,
        size: Option<u32>,
        crv: Option<&str>,
        public_exponent: Option<u64>,
    ) -> Result<Self, KeyError> {
        match kty {
            "RSA" => {
                if let Some(e) = public_exponent.filter(|e| *e != 65_537) {
                    return Err(bad(format!("Only the public exponent 65537 is supported; {e} was given.")));
                }
                let ks = match size.unwrap_or(2048) {
                    2048 => KeySize::Rsa2048,
                    3072 => KeySize::Rsa3072,
                    4096 => KeySize::Rsa4096,
                    other => return Err(bad(format!("RSA keys are 2048, 3072 or 4096 bits; {other} was given."))),
                };
                let pair =
                    RsaKeyPair::generate(ks).map_err(|_| KeyError::Failed("RSA key generation failed".into()))?;
                let der = pair.as_der().map_err(|_| KeyError::Failed("PKCS#8 encoding failed".into()))?;
                Ok(Self::rsa_pkcs8(der.as_ref()))
            }
            "EC" => {
                let curve = Curve::parse(crv.unwrap_or("P-256"))
                    .ok_or_else(|| bad("The curve must be P-256, P-384, P-521 or P-256K."))?;
                let pair = EcdsaKeyPair::generate(curve.signing())
                    .map_err(|_| KeyError::Failed("EC key generation failed".into()))?;
                let der = pair.to_pkcs8v1().map_err(|_| KeyError::Failed("PKCS#8 encoding failed".into()))?;
                Ok(Self::ec_pkcs8(curve, der.as_ref()))
            }
            "oct" => {
                let bits = size.unwrap_or(256);
                if !matches!(bits, 128 | 192 | 256) {
                    return Err(bad(format!("oct keys are 128, 192 or 256 bits; {bits} was given.")));
                }
                let k = crate::random::bytes(bits as usize / 8);
                Ok(Self::oct_bytes(&k))
            }
            other => Err(bad(format!("The key type '{other}' is not supported."))),
        }
    }

    /// Imports a JWK with its private parts.
    pub fn from_jwk(jwk: &JwkIn) -> Result<Self, KeyError> {
        match base_kty(&jwk.kty) {
            Some("RSA") => {
                let (n, e, d) = (field(&jwk.n, "n")?, field(&jwk.e, "e")?, field(&jwk.d, "d")?);
                let (p, q) = (field(&jwk.p, "p")?, field(&jwk.q, "q")?);
                let (dp, dq, qi) = (field(&jwk.dp, "dp")?, field(&jwk.dq, "dq")?, field(&jwk.qi, "qi")?);
                let components = KeyPairComponents {
                    public_key: PublicKeyComponents { n: strip_zeros(&n), e: strip_zeros(&e) },
                    d: &d[..],
                    p: &p[..],
                    q: &q[..],
                    dP: &dp[..],
                    dQ: &dq[..],
                    qInv: &qi[..],
                };
                let pair = RsaKeyPair::from_components(&components).map_err(|_| bad("The RSA key is not valid."))?;
                let bits = pair.public_modulus_len() * 8;
                if !matches!(bits, 2048 | 3072 | 4096) {
                    return Err(bad(format!("RSA keys are 2048, 3072 or 4096 bits; this one has {bits}.")));
                }
                let der = pair.as_der().map_err(|_| bad("The RSA key is not valid."))?;
                Ok(Self::rsa_pkcs8(der.as_ref()))
            }
            Some("EC") => {
                let curve = jwk
                    .crv
                    .as_deref()
                    .and_then(Curve::parse)
                    .ok_or_else(|| bad("The curve must be P-256, P-384, P-521 or P-256K."))?;
                let (x, y, d) = (field(&jwk.x, "x")?, field(&jwk.y, "y")?, field(&jwk.d, "d")?);
                let len = curve.coordinate_len();
                if x.len() != len || y.len() != len || d.len() != len {
                    return Err(bad(format!("The coordinates of a {} key are {len} bytes.", curve.name())));
                }
                let mut point = Zeroizing::new(vec![4u8]);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                let pair = EcdsaKeyPair::from_private_key_and_public_key(curve.signing(), &d, &point)
                    .map_err(|_| bad("The EC key is not valid (d does not match x and y)."))?;
                let der = pair.to_pkcs8v1().map_err(|_| bad("The EC key is not valid."))?;
                Ok(Self::ec_pkcs8(curve, der.as_ref()))
            }
            Some(_) => {
                let k = field(&jwk.k, "k")?;
                if !matches!(k.len(), 16 | 24 | 32) {
                    return Err(bad("oct keys are 128, 192 or 256 bits."));
                }
                Ok(Self::oct_bytes(&k))
            }
            None => Err(bad(format!("The key type '{}' is not supported.", jwk.kty))),
        }
    }

    /// PKCS#8 DER of an RSA or EC key (for certificates and their PFX/PEM).
    pub fn pkcs8(&self) -> Option<Zeroizing<Vec<u8>>> {
        self.der.as_deref().and_then(b64::url_decode).map(Zeroizing::new)
    }

    /// Reads an RSA or EC private key from PKCS#8 (imported certificates).
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, KeyError> {
        if let Ok(pair) = RsaKeyPair::from_pkcs8(der) {
            let bits = pair.public_modulus_len() * 8;
            if !matches!(bits, 2048 | 3072 | 4096) {
                return Err(bad(format!("RSA keys are 2048, 3072 or 4096 bits; this one has {bits}.")));
            }
            return Ok(Self::rsa_pkcs8(der));
        }
        for curve in [Curve::P256, Curve::P384, Curve::P521, Curve::P256K] {
            if let Ok(pair) = EcdsaKeyPair::from_pkcs8(curve.signing(), der) {
                // Normalise to PKCS#8 v1 as generated keys are.
                let der = pair.to_pkcs8v1().map_err(|_| bad("The EC key is not valid."))?;
                return Ok(Self::ec_pkcs8(curve, der.as_ref()));
            }
        }
        Err(bad("The private key is neither an RSA nor a supported EC key (PKCS#8)."))
    }

    fn der(&self) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        self.der
            .as_deref()
            .and_then(b64::url_decode)
            .map(Zeroizing::new)
            .ok_or_else(|| KeyError::Failed("key material is damaged".into()))
    }

    fn oct(&self) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        self.k
            .as_deref()
            .and_then(b64::url_decode)
            .map(Zeroizing::new)
            .ok_or_else(|| KeyError::Failed("key material is damaged".into()))
    }

    fn curve(&self) -> Result<Curve, KeyError> {
        self.crv.as_deref().and_then(Curve::parse).ok_or_else(|| KeyError::Failed("key material is damaged".into()))
    }

    fn rsa(&self) -> Result<&RsaKeyPair, KeyError> {
        parsed_once(&self.parsed.rsa, || {
            RsaKeyPair::from_pkcs8(&self.der()?).map_err(|_| KeyError::Failed("key material is damaged".into()))
        })
    }

    fn rsa_decrypting(&self) -> Result<PrivateDecryptingKey, KeyError> {
        let key = parsed_once(&self.parsed.rsa_decrypting, || {
            PrivateDecryptingKey::from_pkcs8(&self.der()?)
                .map_err(|_| KeyError::Failed("key material is damaged".into()))
        })?;
        Ok(key.clone())
    }

    fn ec(&self) -> Result<(&EcdsaKeyPair, Curve), KeyError> {
        let curve = self.curve()?;
        let pair = parsed_once(&self.parsed.ec, || {
            EcdsaKeyPair::from_pkcs8(curve.signing(), &self.der()?)
                .map_err(|_| KeyError::Failed("key material is damaged".into()))
        })?;
        Ok((pair, curve))
    }

    /// The EC private scalar `d`, for codec tests only (never part of an API response).
    #[doc(hidden)]
    pub fn private_scalar_for_tests(&self) -> Option<Zeroizing<Vec<u8>>> {
        use aws_lc_rs::encoding::AsBigEndian;
        let (pair, _) = self.ec().ok()?;
        let d = pair.private_key().as_be_bytes().ok()?;
        Some(Zeroizing::new(d.as_ref().to_vec()))
    }

    /// Key size in bits (RSA and oct).
    pub fn size_bits(&self) -> Option<u32> {
        match self.kty.as_str() {
            "RSA" => self.rsa().ok().map(|p| (p.public_modulus_len() * 8) as u32),
            "oct" => self.oct().ok().map(|k| (k.len() * 8) as u32),
            _ => None,
        }
    }

    /// The public JWK fields: `n`/`e` for RSA, `crv`/`x`/`y` for EC, nothing for oct (Key
    /// Vault never returns symmetric material).
    pub fn public_jwk(&self) -> Result<serde_json::Map<String, serde_json::Value>, KeyError> {
        let mut m = serde_json::Map::new();
        match self.kty.as_str() {
            "RSA" => {
                let pair = self.rsa()?;
                let pk = pair.public_key();
                m.insert("n".into(), b64::url_encode(pk.modulus().big_endian_without_leading_zero()).into());
                m.insert("e".into(), b64::url_encode(pk.exponent().big_endian_without_leading_zero()).into());
            }
            "EC" => {
                let (pair, curve) = self.ec()?;
                let point = pair.public_key().as_ref().to_vec();
                let len = curve.coordinate_len();
                m.insert("crv".into(), curve.name().into());
                m.insert("x".into(), b64::url_encode(&point[1..1 + len]).into());
                m.insert("y".into(), b64::url_encode(&point[1 + len..]).into());
            }
            _ => {}
        }
        Ok(m)
    }

    pub fn encrypt(
        &self,
        alg: &str,
        plaintext: &[u8],
        iv: Option<&[u8]>,
        aad: Option<&[u8]>,
    ) -> Result<CipherOut, KeyError> {
        match (self.kty.as_str(), alg) {
            ("RSA", _) => Ok(CipherOut::value(self.rsa_encrypt(alg, plaintext)?)),
            ("oct", "A128GCM" | "A192GCM" | "A256GCM") => self.gcm_seal(alg, plaintext, iv, aad),
            ("oct", "A128CBC" | "A192CBC" | "A256CBC" | "A128CBCPAD" | "A192CBCPAD" | "A256CBCPAD") => {
                let iv = iv.ok_or_else(|| bad("AES-CBC needs a 16-byte iv."))?;
                let mut out = CipherOut::value(self.cbc(alg, plaintext, iv, true)?);
                out.iv = Some(iv.to_vec());
                Ok(out)
            }
            _ => Err(self.unsupported(alg)),
        }
    }

    pub fn decrypt(
        &self,
        alg: &str,
        ciphertext: &[u8],
        iv: Option<&[u8]>,
        aad: Option<&[u8]>,
        tag: Option<&[u8]>,
    ) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        match (self.kty.as_str(), alg) {
            ("RSA", _) => self.rsa_decrypt(alg, ciphertext),
            ("oct", "A128GCM" | "A192GCM" | "A256GCM") => self.gcm_open(alg, ciphertext, iv, aad, tag),
            ("oct", "A128CBC" | "A192CBC" | "A256CBC" | "A128CBCPAD" | "A192CBCPAD" | "A256CBCPAD") => {
                let iv = iv.ok_or_else(|| bad("AES-CBC needs a 16-byte iv."))?;
                self.cbc(alg, ciphertext, iv, false).map(Zeroizing::new)
            }
            _ => Err(self.unsupported(alg)),
        }
    }

    pub fn wrap(&self, alg: &str, key: &[u8]) -> Result<Vec<u8>, KeyError> {
        match (self.kty.as_str(), alg) {
            ("RSA", "RSA-OAEP" | "RSA-OAEP-256" | "RSA1_5") => self.rsa_encrypt(alg, key),
            ("oct", "A128KW" | "A192KW" | "A256KW" | "CKM_AES_KEY_WRAP") => {
                let k = self.aes_key_for(alg)?;
                aes_kw::wrap(&k, key)
            }
            ("oct", "CKM_AES_KEY_WRAP_PAD") => aes_kw::wrap_pad(&self.oct()?, key),
            _ => Err(self.unsupported(alg)),
        }
    }

    pub fn unwrap(&self, alg: &str, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        match (self.kty.as_str(), alg) {
            ("RSA", "RSA-OAEP" | "RSA-OAEP-256" | "RSA1_5") => self.rsa_decrypt(alg, wrapped),
            ("oct", "A128KW" | "A192KW" | "A256KW" | "CKM_AES_KEY_WRAP") => {
                aes_kw::unwrap(&self.aes_key_for(alg)?, wrapped)
            }
            ("oct", "CKM_AES_KEY_WRAP_PAD") => aes_kw::unwrap_pad(&self.oct()?, wrapped),
            _ => Err(self.unsupported(alg)),
        }
    }

    /// Signs a digest the client computed (Key Vault does no hashing).
    pub fn sign(&self, alg: &str, digest: &[u8]) -> Result<Vec<u8>, KeyError> {
        match self.kty.as_str() {
            "RSA" => {
                let (padding, hash) = rsa_signing(alg).ok_or_else(|| self.unsupported(alg))?;
                let d = import_digest(digest, hash)?;
                let pair = self.rsa()?;
                let mut sig = vec![0u8; pair.public_modulus_len()];
                pair.sign_digest(padding, &d, &mut sig).map_err(|_| KeyError::Failed("signing failed".into()))?;
                Ok(sig)
            }
            "EC" => {
                let (pair, curve) = self.ec()?;
                if curve.sign_alg() != alg {
                    return Err(bad(format!(
                        "The algorithm {alg} does not fit a {} key; use {}.",
                        curve.name(),
                        curve.sign_alg()
                    )));
                }
                let d = import_digest(digest, ec_hash(curve))?;
                let sig = pair.sign_digest(&d).map_err(|_| KeyError::Failed("signing failed".into()))?;
                Ok(sig.as_ref().to_vec())
            }
            _ => Err(self.unsupported(alg)),
        }
    }

    pub fn verify(&self, alg: &str, digest: &[u8], sig: &[u8]) -> Result<bool, KeyError> {
        match self.kty.as_str() {
            "RSA" => {
                let (_, hash) = rsa_signing(alg).ok_or_else(|| self.unsupported(alg))?;
                let d = import_digest(digest, hash)?;
                let verify_alg = rsa_verification(alg).ok_or_else(|| self.unsupported(alg))?;
                let pair = self.rsa()?;
                let key = ParsedPublicKey::new(verify_alg, pair.public_key().as_ref())
                    .map_err(|_| KeyError::Failed("bad public key".into()))?;
                Ok(key.verify_digest_sig(&d, sig).is_ok())
            }
            "EC" => {
                let (pair, curve) = self.ec()?;
                if curve.sign_alg() != alg {
                    return Err(bad(format!(
                        "The algorithm {alg} does not fit a {} key; use {}.",
                        curve.name(),
                        curve.sign_alg()
                    )));
                }
                let d = import_digest(digest, ec_hash(curve))?;
                let key = ParsedPublicKey::new(curve.verifying(), pair.public_key().as_ref())
                    .map_err(|_| KeyError::Failed("bad public key".into()))?;
                Ok(key.verify_digest_sig(&d, sig).is_ok())
            }
            _ => Err(self.unsupported(alg)),
        }
    }

    fn unsupported(&self, alg: &str) -> KeyError {
        bad(format!("The algorithm '{}' is not supported for {} keys.", crate::b64::printable(alg), self.kty))
    }

    fn rsa_encrypt(&self, alg: &str, plaintext: &[u8]) -> Result<Vec<u8>, KeyError> {
        let public = self.rsa_decrypting()?.public_key();
        let fail = |_| KeyError::Failed("encryption failed".into());
        match alg {
            "RSA-OAEP" | "RSA-OAEP-256" => {
                let oaep = if alg == "RSA-OAEP" { &OAEP_SHA1_MGF1SHA1 } else { &OAEP_SHA256_MGF1SHA256 };
                let key = OaepPublicEncryptingKey::new(public).map_err(fail)?;
                if plaintext.len() > key.max_plaintext_size(oaep) {
                    return Err(bad(format!(
                        "The plaintext is too long for {alg} with this key (at most {} bytes).",
                        key.max_plaintext_size(oaep)
                    )));
                }
                let mut out = vec![0u8; key.ciphertext_size()];
                let n = key.encrypt(oaep, plaintext, &mut out, None).map_err(fail)?.len();
                out.truncate(n);
                Ok(out)
            }
            "RSA1_5" => {
                let key = Pkcs1PublicEncryptingKey::new(public).map_err(fail)?;
                if plaintext.len() > key.max_plaintext_size() {
                    return Err(bad(format!(
                        "The plaintext is too long for RSA1_5 with this key (at most {} bytes).",
                        key.max_plaintext_size()
                    )));
                }
                let mut out = vec![0u8; key.ciphertext_size()];
                let n = key.encrypt(plaintext, &mut out).map_err(fail)?.len();
                out.truncate(n);
                Ok(out)
            }
            _ => Err(self.unsupported(alg)),
        }
    }

    fn rsa_decrypt(&self, alg: &str, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let private = self.rsa_decrypting()?;
        let fail = |_| KeyError::Failed("decryption failed: the ciphertext does not fit this key and algorithm".into());
        match alg {
            "RSA-OAEP" | "RSA-OAEP-256" => {
                let oaep = if alg == "RSA-OAEP" { &OAEP_SHA1_MGF1SHA1 } else { &OAEP_SHA256_MGF1SHA256 };
                let key = OaepPrivateDecryptingKey::new(private).map_err(fail)?;
                let mut out = Zeroizing::new(vec![0u8; key.min_output_size()]);
                let n = key.decrypt(oaep, ciphertext, &mut out, None).map_err(fail)?.len();
                out.truncate(n);
                Ok(out)
            }
            "RSA1_5" => {
                let key = Pkcs1PrivateDecryptingKey::new(private).map_err(fail)?;
                let mut out = Zeroizing::new(vec![0u8; key.min_output_size()]);
                let n = key.decrypt(ciphertext, &mut out).map_err(fail)?.len();
                out.truncate(n);
                Ok(out)
            }
            _ => Err(self.unsupported(alg)),
        }
    }

    /// The AES key, checked against the size an algorithm names (A128* needs 128 bits, ...).
    fn aes_key_for(&self, alg: &str) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let k = self.oct()?;
        let wanted = match &alg.get(..4) {
            Some("A128") => Some(16),
            Some("A192") => Some(24),
            Some("A256") => Some(32),
            _ => None,
        };
        if let Some(w) = wanted
            && w != k.len()
        {
            return Err(bad(format!(
                "The algorithm {alg} needs a {}-bit key; this key has {} bits.",
                w * 8,
                k.len() * 8
            )));
        }
        Ok(k)
    }

    fn gcm_seal(
        &self,
        alg: &str,
        plaintext: &[u8],
        iv: Option<&[u8]>,
        aad: Option<&[u8]>,
    ) -> Result<CipherOut, KeyError> {
        let key = gcm_key(alg, &self.aes_key_for(alg)?)?;
        let iv: [u8; 12] = match iv {
            Some(v) => v.try_into().map_err(|_| bad("AES-GCM needs a 12-byte iv."))?,
            None => {
                let mut v = [0u8; 12];
                crate::random::fill(&mut v);
                v
            }
        };
        let mut buf = plaintext.to_vec();
        let tag = key
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(iv), Aad::from(aad.unwrap_or(&[])), &mut buf)
            .map_err(|_| KeyError::Failed("encryption failed".into()))?;
        Ok(CipherOut {
            value: buf,
            iv: Some(iv.to_vec()),
            tag: Some(tag.as_ref().to_vec()),
            aad: aad.map(<[u8]>::to_vec),
        })
    }

    fn gcm_open(
        &self,
        alg: &str,
        ciphertext: &[u8],
        iv: Option<&[u8]>,
        aad: Option<&[u8]>,
        tag: Option<&[u8]>,
    ) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let key = gcm_key(alg, &self.aes_key_for(alg)?)?;
        let iv = iv.ok_or_else(|| bad("AES-GCM decryption needs the iv."))?;
        let tag = tag.ok_or_else(|| bad("AES-GCM decryption needs the authentication tag."))?;
        let nonce = Nonce::try_assume_unique_for_key(iv).map_err(|_| bad("AES-GCM needs a 12-byte iv."))?;
        let mut buf = Zeroizing::new([ciphertext, tag].concat());
        let n = key
            .open_in_place(nonce, Aad::from(aad.unwrap_or(&[])), &mut buf)
            .map_err(|_| KeyError::Failed("decryption failed: the ciphertext, tag, iv or aad were altered".into()))?
            .len();
        buf.truncate(n);
        Ok(buf)
    }

    fn cbc(&self, alg: &str, input: &[u8], iv: &[u8], encrypt: bool) -> Result<Vec<u8>, KeyError> {
        let k = self.aes_key_for(alg)?;
        let iv: [u8; 16] = iv.try_into().map_err(|_| bad("AES-CBC needs a 16-byte iv."))?;
        let cipher_key =
            || UnboundCipherKey::new(aes_algorithm(k.len())?, &k).map_err(|_| KeyError::Failed("bad AES key".into()));
        let padded = alg.ends_with("PAD");
        if !padded && !input.len().is_multiple_of(16) {
            return Err(bad(format!("{alg} needs input that is a multiple of 16 bytes; use {alg}PAD to pad.")));
        }
        let fail = |_| {
            KeyError::Failed(if encrypt {
                "encryption failed".into()
            } else {
                "decryption failed: bad ciphertext or padding".into()
            })
        };
        let mut buf = input.to_vec();
        match (padded, encrypt) {
            (false, true) => {
                EncryptingKey::cbc(cipher_key()?)
                    .map_err(fail)?
                    .less_safe_encrypt(&mut buf, EncryptionContext::Iv128(FixedLength::from(iv)))
                    .map_err(fail)?;
                Ok(buf)
            }
            (false, false) => {
                let n = DecryptingKey::cbc(cipher_key()?)
                    .map_err(fail)?
                    .decrypt(&mut buf, DecryptionContext::Iv128(FixedLength::from(iv)))
                    .map_err(fail)?
                    .len();
                buf.truncate(n);
                Ok(buf)
            }
            (true, true) => {
                PaddedBlockEncryptingKey::cbc_pkcs7(cipher_key()?)
                    .map_err(fail)?
                    .less_safe_encrypt(&mut buf, EncryptionContext::Iv128(FixedLength::from(iv)))
                    .map_err(fail)?;
                Ok(buf)
            }
            (true, false) => {
                let n = PaddedBlockDecryptingKey::cbc_pkcs7(cipher_key()?)
                    .map_err(fail)?
                    .decrypt(&mut buf, DecryptionContext::Iv128(FixedLength::from(iv)))
                    .map_err(fail)?
                    .len();
                buf.truncate(n);
                Ok(buf)
            }
        }
    }
}

/// The result of an encryption: ciphertext, and for AES the iv/tag/aad the client needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CipherOut {
    pub value: Vec<u8>,
    pub iv: Option<Vec<u8>>,
    pub tag: Option<Vec<u8>>,
    pub aad: Option<Vec<u8>>,
}

impl CipherOut {
    fn value(value: Vec<u8>) -> Self {
        Self { value, iv: None, tag: None, aad: None }
    }
}

fn aes_algorithm(len: usize) -> Result<&'static aws_lc_rs::cipher::Algorithm, KeyError> {
    match len {
        16 => Ok(&AES_128),
        24 => Ok(&AES_192),
        32 => Ok(&AES_256),
        _ => Err(KeyError::Failed("bad AES key length".into())),
    }
}

fn gcm_key(alg: &str, k: &[u8]) -> Result<LessSafeKey, KeyError> {
    let a = match alg {
        "A128GCM" => &AES_128_GCM,
        "A192GCM" => &AES_192_GCM,
        _ => &AES_256_GCM,
    };
    Ok(LessSafeKey::new(UnboundKey::new(a, k).map_err(|_| KeyError::Failed("bad AES key".into()))?))
}

fn rsa_signing(alg: &str) -> Option<(&'static dyn signature::RsaEncoding, &'static aws_lc_rs::digest::Algorithm)> {
    Some(match alg {
        "RS256" => (&signature::RSA_PKCS1_SHA256, &SHA256),
        "RS384" => (&signature::RSA_PKCS1_SHA384, &SHA384),
        "RS512" => (&signature::RSA_PKCS1_SHA512, &SHA512),
        "PS256" => (&signature::RSA_PSS_SHA256, &SHA256),
        "PS384" => (&signature::RSA_PSS_SHA384, &SHA384),
        "PS512" => (&signature::RSA_PSS_SHA512, &SHA512),
        _ => return None,
    })
}

fn rsa_verification(alg: &str) -> Option<&'static dyn signature::VerificationAlgorithm> {
    Some(match alg {
        "RS256" => &signature::RSA_PKCS1_2048_8192_SHA256,
        "RS384" => &signature::RSA_PKCS1_2048_8192_SHA384,
        "RS512" => &signature::RSA_PKCS1_2048_8192_SHA512,
        "PS256" => &signature::RSA_PSS_2048_8192_SHA256,
        "PS384" => &signature::RSA_PSS_2048_8192_SHA384,
        "PS512" => &signature::RSA_PSS_2048_8192_SHA512,
        _ => return None,
    })
}

fn ec_hash(curve: Curve) -> &'static aws_lc_rs::digest::Algorithm {
    match curve {
        Curve::P256 | Curve::P256K => &SHA256,
        Curve::P384 => &SHA384,
        Curve::P521 => &SHA512,
    }
}

fn import_digest(bytes: &[u8], alg: &'static aws_lc_rs::digest::Algorithm) -> Result<Digest, KeyError> {
    if bytes.len() != alg.output_len() {
        return Err(bad(format!("The digest is {} bytes; this algorithm needs {}.", bytes.len(), alg.output_len())));
    }
    Digest::import_less_safe(bytes, alg).map_err(|_| bad("The digest is not valid."))
}

/// AES key wrap: RFC 3394 (A*KW, CKM_AES_KEY_WRAP) and RFC 5649 (CKM_AES_KEY_WRAP_PAD), on
/// single-block AES (aws-lc-rs has no AES-192 key wrap).
pub(crate) mod aes_kw {
    use super::{KeyError, UnboundCipherKey, aes_algorithm, bad};
    use aws_lc_rs::cipher::{DecryptingKey, DecryptionContext, EncryptingKey, EncryptionContext};
    use zeroize::Zeroizing;

    const IV_3394: [u8; 8] = [0xA6; 8];
    const AIV_5649: [u8; 4] = [0xA6, 0x59, 0x59, 0xA6];

    /// One AES block operation, wherever the key is: here (`Block`) or in a token.
    pub(crate) trait BlockCipher {
        fn encrypt(&self, b: &mut [u8; 16]) -> Result<(), KeyError>;
        fn decrypt(&self, b: &mut [u8; 16]) -> Result<(), KeyError>;
    }

    struct Block {
        enc: EncryptingKey,
        dec: DecryptingKey,
    }

    impl BlockCipher for Block {
        fn encrypt(&self, b: &mut [u8; 16]) -> Result<(), KeyError> {
            self.enc
                .less_safe_encrypt(b, EncryptionContext::None)
                .map(|_| ())
                .map_err(|_| KeyError::Failed("AES failed".into()))
        }
        fn decrypt(&self, b: &mut [u8; 16]) -> Result<(), KeyError> {
            self.dec.decrypt(b, DecryptionContext::None).map(|_| ()).map_err(|_| KeyError::Failed("AES failed".into()))
        }
    }

    impl Block {
        fn new(k: &[u8]) -> Result<Self, KeyError> {
            let ck = || {
                UnboundCipherKey::new(aes_algorithm(k.len())?, k).map_err(|_| KeyError::Failed("bad AES key".into()))
            };
            let fail = |_| KeyError::Failed("bad AES key".into());
            Ok(Self { enc: EncryptingKey::ecb(ck()?).map_err(fail)?, dec: DecryptingKey::ecb(ck()?).map_err(fail)? })
        }
    }

    fn wrap_with(block: &dyn BlockCipher, iv: [u8; 8], p: &[u8]) -> Result<Vec<u8>, KeyError> {
        let n = p.len() / 8;
        let mut a = iv;
        let mut r: Vec<[u8; 8]> = p.chunks(8).map(|c| c.try_into().unwrap_or([0; 8])).collect();
        for j in 0..6u64 {
            for (i, ri) in r.iter_mut().enumerate() {
                let mut b = [0u8; 16];
                b[..8].copy_from_slice(&a);
                b[8..].copy_from_slice(ri);
                block.encrypt(&mut b)?;
                let t = (n as u64) * j + (i as u64 + 1);
                a.copy_from_slice(&b[..8]);
                for (x, y) in a.iter_mut().zip(t.to_be_bytes()) {
                    *x ^= y;
                }
                ri.copy_from_slice(&b[8..]);
            }
        }
        let mut out = a.to_vec();
        for ri in r {
            out.extend_from_slice(&ri);
        }
        Ok(out)
    }

    fn unwrap_raw(block: &dyn BlockCipher, c: &[u8]) -> Result<([u8; 8], Zeroizing<Vec<u8>>), KeyError> {
        let n = c.len() / 8 - 1;
        let mut a: [u8; 8] = c[..8].try_into().map_err(|_| bad("bad wrapped key"))?;
        let mut r: Vec<[u8; 8]> = c[8..].chunks(8).map(|x| x.try_into().unwrap_or([0; 8])).collect();
        for j in (0..6u64).rev() {
            for i in (0..n).rev() {
                let t = (n as u64) * j + (i as u64 + 1);
                for (x, y) in a.iter_mut().zip(t.to_be_bytes()) {
                    *x ^= y;
                }
                let mut b = [0u8; 16];
                b[..8].copy_from_slice(&a);
                b[8..].copy_from_slice(&r[i]);
                block.decrypt(&mut b)?;
                a.copy_from_slice(&b[..8]);
                r[i].copy_from_slice(&b[8..]);
            }
        }
        let mut p = Zeroizing::new(Vec::with_capacity(n * 8));
        for ri in &r {
            p.extend_from_slice(ri);
        }
        r.iter_mut().for_each(|x| *x = [0; 8]);
        Ok((a, p))
    }

    fn unwrap_failed() -> KeyError {
        KeyError::Failed("unwrapping failed: the wrapped key does not fit this key (integrity check)".into())
    }

    pub fn wrap(k: &[u8], p: &[u8]) -> Result<Vec<u8>, KeyError> {
        wrap_in(&Block::new(k)?, p)
    }

    pub fn unwrap(k: &[u8], c: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        unwrap_in(&Block::new(k)?, c)
    }

    pub fn wrap_pad(k: &[u8], p: &[u8]) -> Result<Vec<u8>, KeyError> {
        wrap_pad_in(&Block::new(k)?, p)
    }

    pub fn unwrap_pad(k: &[u8], c: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        unwrap_pad_in(&Block::new(k)?, c)
    }

    /// RFC 3394 over any AES block operation.
    pub(crate) fn wrap_in(block: &dyn BlockCipher, p: &[u8]) -> Result<Vec<u8>, KeyError> {
        if p.len() < 16 || !p.len().is_multiple_of(8) {
            return Err(bad(
                "AES key wrap needs a key of at least 16 bytes, a multiple of 8; use CKM_AES_KEY_WRAP_PAD otherwise.",
            ));
        }
        wrap_with(block, IV_3394, p)
    }

    pub(crate) fn unwrap_in(block: &dyn BlockCipher, c: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        if c.len() < 24 || !c.len().is_multiple_of(8) {
            return Err(bad("The wrapped key has the wrong length."));
        }
        let (a, p) = unwrap_raw(block, c)?;
        if !crate::digest::ct_eq(&a, &IV_3394) {
            return Err(unwrap_failed());
        }
        Ok(p)
    }

    /// RFC 5649 over any AES block operation.
    pub(crate) fn wrap_pad_in(block: &dyn BlockCipher, p: &[u8]) -> Result<Vec<u8>, KeyError> {
        if p.is_empty() || p.len() > u32::MAX as usize {
            return Err(bad("The key to wrap must not be empty."));
        }
        let mut aiv = [0u8; 8];
        aiv[..4].copy_from_slice(&AIV_5649);
        aiv[4..].copy_from_slice(&(p.len() as u32).to_be_bytes());
        let mut padded = Zeroizing::new(p.to_vec());
        padded.resize(p.len().div_ceil(8) * 8, 0);
        if padded.len() == 8 {
            let mut b = [0u8; 16];
            b[..8].copy_from_slice(&aiv);
            b[8..].copy_from_slice(&padded);
            block.encrypt(&mut b)?;
            return Ok(b.to_vec());
        }
        wrap_with(block, aiv, &padded)
    }

    pub(crate) fn unwrap_pad_in(block: &dyn BlockCipher, c: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        if c.len() < 16 || !c.len().is_multiple_of(8) {
            return Err(bad("The wrapped key has the wrong length."));
        }
        let (a, mut p) = if c.len() == 16 {
            let mut b: [u8; 16] = c.try_into().map_err(|_| unwrap_failed())?;
            block.decrypt(&mut b)?;
            let a: [u8; 8] = b[..8].try_into().map_err(|_| unwrap_failed())?;
            let p = Zeroizing::new(b[8..].to_vec());
            b = [0; 16];
            let _ = b;
            (a, p)
        } else {
            unwrap_raw(block, c)?
        };
        let mli = u32::from_be_bytes([a[4], a[5], a[6], a[7]]) as usize;
        let ok = crate::digest::ct_eq(&a[..4], &AIV_5649)
            && mli <= p.len()
            && mli > p.len().saturating_sub(8)
            && p[mli..].iter().all(|b| *b == 0);
        if !ok {
            return Err(unwrap_failed());
        }
        p.truncate(mli);
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::encoding::AsBigEndian;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn rfc3394_known_answers() {
        // RFC 3394 §4.1 and §4.3.
        let kek = hex("000102030405060708090A0B0C0D0E0F");
        let data = hex("00112233445566778899AABBCCDDEEFF");
        assert_eq!(aes_kw::wrap(&kek, &data).unwrap(), hex("1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5"));
        let kek = hex("000102030405060708090A0B0C0D0E0F1011121314151617");
        let wrapped = aes_kw::wrap(&kek, &data).unwrap();
        assert_eq!(wrapped, hex("96778B25AE6CA435F92B5B97C050AED2468AB8A17AD84E5D"));
        assert_eq!(&aes_kw::unwrap(&kek, &wrapped).unwrap()[..], &data[..]);
        let mut bad = wrapped.clone();
        bad[3] ^= 1;
        assert!(aes_kw::unwrap(&kek, &bad).is_err());
    }

    #[test]
    fn rfc5649_known_answers() {
        // RFC 5649 §6.
        let kek = hex("5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8");
        let p20 = hex("c37b7e6492584340bed12207808941155068f738");
        let c20 = hex("138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a");
        assert_eq!(aes_kw::wrap_pad(&kek, &p20).unwrap(), c20);
        assert_eq!(&aes_kw::unwrap_pad(&kek, &c20).unwrap()[..], &p20[..]);
        let p7 = hex("466f7250617369");
        let c7 = hex("afbeb0f07dfbf5419200f2ccb50bb24f");
        assert_eq!(aes_kw::wrap_pad(&kek, &p7).unwrap(), c7);
        assert_eq!(&aes_kw::unwrap_pad(&kek, &c7).unwrap()[..], &p7[..]);
    }

    #[test]
    fn rsa_and_ec_round_trips() {
        let rsa = KeyMaterial::generate("RSA", Some(2048), None, None).unwrap();
        assert_eq!(rsa.size_bits(), Some(2048));
        for alg in ["RSA-OAEP", "RSA-OAEP-256", "RSA1_5"] {
            let c = rsa.encrypt(alg, b"secret", None, None).unwrap();
            assert_eq!(&rsa.decrypt(alg, &c.value, None, None, None).unwrap()[..], b"secret");
            let w = rsa.wrap(alg, &[7u8; 32]).unwrap();
            assert_eq!(&rsa.unwrap(alg, &w).unwrap()[..], &[7u8; 32]);
        }
        let digest = [9u8; 32];
        for alg in ["RS256", "PS256"] {
            let s = rsa.sign(alg, &digest).unwrap();
            assert!(rsa.verify(alg, &digest, &s).unwrap());
            assert!(!rsa.verify(alg, &[8u8; 32], &s).unwrap());
        }
        assert!(matches!(rsa.sign("RS384", &digest), Err(KeyError::BadParameter(_))), "digest length must fit");
        for (crv, alg, len) in
            [("P-256", "ES256", 32), ("P-384", "ES384", 48), ("P-521", "ES512", 64), ("P-256K", "ES256K", 32)]
        {
            let ec = KeyMaterial::generate("EC", None, Some(crv), None).unwrap();
            let d = vec![3u8; len];
            let s = ec.sign(alg, &d).unwrap();
            assert!(ec.verify(alg, &d, &s).unwrap(), "{crv}");
            assert!(ec.sign("ES384", &[0u8; 48]).is_err() || crv == "P-384");
            let jwk = ec.public_jwk().unwrap();
            assert_eq!(jwk["crv"], crv);
        }
    }

    #[test]
    fn aes_round_trips() {
        for bits in [128u32, 192, 256] {
            let k = KeyMaterial::generate("oct", Some(bits), None, None).unwrap();
            let gcm = format!("A{bits}GCM");
            let c = k.encrypt(&gcm, b"hello", None, Some(b"aad")).unwrap();
            let pt = k.decrypt(&gcm, &c.value, c.iv.as_deref(), Some(b"aad"), c.tag.as_deref()).unwrap();
            assert_eq!(&pt[..], b"hello");
            assert!(k.decrypt(&gcm, &c.value, c.iv.as_deref(), Some(b"other"), c.tag.as_deref()).is_err());
            let iv = [1u8; 16];
            let cbc = format!("A{bits}CBCPAD");
            let c = k.encrypt(&cbc, b"hello", Some(&iv), None).unwrap();
            assert_eq!(&k.decrypt(&cbc, &c.value, Some(&iv), None, None).unwrap()[..], b"hello");
            let raw = format!("A{bits}CBC");
            assert!(k.encrypt(&raw, b"hello", Some(&iv), None).is_err(), "unpadded CBC needs whole blocks");
            let c = k.encrypt(&raw, &[5u8; 32], Some(&iv), None).unwrap();
            assert_eq!(&k.decrypt(&raw, &c.value, Some(&iv), None, None).unwrap()[..], &[5u8; 32]);
            let kw = format!("A{bits}KW");
            let w = k.wrap(&kw, &[2u8; 24]).unwrap();
            assert_eq!(&k.unwrap(&kw, &w).unwrap()[..], &[2u8; 24]);
            let w = k.wrap("CKM_AES_KEY_WRAP_PAD", &[2u8; 13]).unwrap();
            assert_eq!(&k.unwrap("CKM_AES_KEY_WRAP_PAD", &w).unwrap()[..], &[2u8; 13]);
        }
        let k = KeyMaterial::generate("oct", Some(128), None, None).unwrap();
        assert!(k.wrap("A256KW", &[0u8; 16]).is_err(), "the algorithm's size must fit the key");
        assert!(k.public_jwk().unwrap().is_empty(), "no symmetric material in public views");
    }

    #[test]
    fn jwk_import_roundtrip_and_validation() {
        let ec = KeyMaterial::generate("EC", None, Some("P-256"), None).unwrap();
        let (pair, _) = ec.ec().unwrap();
        let pubj = ec.public_jwk().unwrap();
        let d = b64::url_encode(pair.private_key().as_be_bytes().unwrap().as_ref());
        let ec_jwk = |x: &str, y: &str| {
            let mut j = JwkIn::default();
            j.kty = "EC".into();
            j.crv = Some("P-256".into());
            j.x = Some(x.to_string());
            j.y = Some(y.to_string());
            j.d = Some(d.clone());
            j
        };
        let (x, y) = (pubj["x"].as_str().unwrap(), pubj["y"].as_str().unwrap());
        let imported = KeyMaterial::from_jwk(&ec_jwk(x, y)).unwrap();
        let s = imported.sign("ES256", &[1u8; 32]).unwrap();
        assert!(ec.verify("ES256", &[1u8; 32], &s).unwrap(), "imported key is the same key");
        assert!(KeyMaterial::from_jwk(&ec_jwk(x, x)).is_err(), "d must match the public point");
        let mut bad_rsa = JwkIn::default();
        bad_rsa.kty = "RSA".into();
        bad_rsa.n = Some("!!".into());
        assert!(KeyMaterial::from_jwk(&bad_rsa).is_err());
        assert!(KeyMaterial::generate("RSA", Some(1024), None, None).is_err());
        assert!(KeyMaterial::generate("RSA", None, None, Some(3)).is_err());
        assert!(format!("{ec:?}").contains("EC") && !format!("{ec:?}").contains(ec.der.as_deref().unwrap()));
    }
}
