//! Cryptographic operations with a stored key: encrypt, decrypt, sign, verify, wrap and unwrap.
//! The private part never leaves the server; the caller gets the result only.
use coffer_core::permissions::DataAction;
use coffer_core::{Error, Result};
use zeroize::Zeroizing;

use coffer_crypto::hsm_keys::{CipherParams, HsmKey};
use coffer_crypto::pkcs11::Pkcs11Root;

use super::{KIND, KeyHandle, handle_of, key_error, meta_of};
use crate::objects::{Objects, VaultContext};
use crate::state::AppState;

/// One of the operations a key's `key_ops` can permit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOperation {
    Encrypt,
    Decrypt,
    Sign,
    Verify,
    WrapKey,
    UnwrapKey,
}

impl KeyOperation {
    /// From the path segment (`/keys/{name}/{version}/sign`).
    pub fn from_path(segment: &str) -> Option<Self> {
        Some(match segment {
            "encrypt" => Self::Encrypt,
            "decrypt" => Self::Decrypt,
            "sign" => Self::Sign,
            "verify" => Self::Verify,
            "wrapkey" => Self::WrapKey,
            "unwrapkey" => Self::UnwrapKey,
            _ => return None,
        })
    }

    /// The name in `key_ops`.
    pub fn key_op(self) -> &'static str {
        match self {
            Self::Encrypt => "encrypt",
            Self::Decrypt => "decrypt",
            Self::Sign => "sign",
            Self::Verify => "verify",
            Self::WrapKey => "wrapKey",
            Self::UnwrapKey => "unwrapKey",
        }
    }

    fn action(self) -> DataAction {
        match self {
            Self::Encrypt => DataAction::KeyEncrypt,
            Self::Decrypt => DataAction::KeyDecrypt,
            Self::Sign => DataAction::KeySign,
            Self::Verify => DataAction::KeyVerify,
            Self::WrapKey => DataAction::KeyWrap,
            Self::UnwrapKey => DataAction::KeyUnwrap,
        }
    }

    /// As Azure: the nbf/exp window blocks encrypt, sign and wrap; decrypt, unwrap and verify
    /// keep working on old data.
    fn needs_validity_window(self) -> bool {
        matches!(self, Self::Encrypt | Self::Sign | Self::WrapKey)
    }
}

/// What an operation works on (already decoded from base64url).
#[derive(Debug, Default)]
pub struct KeyOperationInput {
    pub alg: String,
    pub value: Option<Vec<u8>>,
    pub iv: Option<Vec<u8>>,
    pub aad: Option<Vec<u8>>,
    pub tag: Option<Vec<u8>>,
    /// For verify: the digest that was signed (`value` is the signature).
    pub digest: Option<Vec<u8>>,
}

/// An operation's result.
#[derive(Debug)]
pub enum KeyOperationOutput {
    /// Bytes made with the key version `kid` (a decrypted or unwrapped value is zeroized when
    /// dropped); for encryption with the IV, tag and AAD it used.
    Bytes { kid: String, value: Zeroizing<Vec<u8>>, iv: Option<Vec<u8>>, tag: Option<Vec<u8>>, aad: Option<Vec<u8>> },
    /// Whether a signature verified.
    Verified(bool),
}

impl KeyOperationOutput {
    /// Bytes made with `kid`, with no IV, tag or AAD.
    fn bytes(kid: &str, value: Zeroizing<Vec<u8>>) -> Self {
        Self::Bytes { kid: kid.to_string(), value, iv: None, tag: None, aad: None }
    }
}

/// Carries out `op` with a key version (the latest with `version: None`), checking the
/// caller's permission, the version's `enabled`, its `key_ops` and, where it applies, its
/// validity window.
pub async fn perform(
    state: &AppState,
    ctx: &VaultContext,
    (name, version): (&str, Option<&str>),
    op: KeyOperation,
    mut input: KeyOperationInput,
) -> Result<KeyOperationOutput> {
    ctx.authorize(state, op.action(), Some(name)).await?;
    let objects = Objects::new(state, ctx, KIND);
    let v = objects.read(name, version).await?;
    let meta = meta_of(&v)?;
    let key_op = op.key_op();
    if !v.attributes.enabled {
        return Err(KIND.disabled(key_op));
    }
    if !meta.key_ops.iter().any(|o| o == key_op) {
        return Err(Error::forbidden(
            "KeyOperationForbidden",
            format!("Operation {key_op} is not permitted on this key (key_ops: {}).", meta.key_ops.join(", ")),
        ));
    }
    let now = state.clock.now();
    if op.needs_validity_window() && !v.attributes.in_validity_window(now) {
        return Err(if v.attributes.expires.is_some_and(|e| now >= e) {
            Error::forbidden("KeyExpired", format!("Operation {key_op} is not allowed on an expired key."))
        } else {
            Error::forbidden("KeyNotYetValid", format!("Operation {key_op} is not allowed on a not yet valid key."))
        });
    }
    if input.alg.is_empty() {
        return Err(Error::bad_parameter("The property 'alg' is required."));
    }
    let value = input.value.take().ok_or_else(|| Error::bad_parameter("The property 'value' is required."))?;
    let kid = ctx.object_id(KIND, &v.name, Some(&v.version));
    let material = match handle_of(&objects, &v, &meta)? {
        KeyHandle::Software(m) => m,
        KeyHandle::Hsm(key) => {
            let token = state.keyring.root().as_pkcs11().ok_or_else(|| {
                Error::unavailable("HsmUnavailable", "this key is inside an HSM, and this Coffer's root is not in one")
            })?;
            return in_token(token, &key, op, (kid, value), input);
        }
    };
    let KeyOperationInput { alg, iv, aad, tag, digest, .. } = input;
    let bytes = |value| KeyOperationOutput::bytes(&kid, value);
    Ok(match op {
        KeyOperation::Encrypt => {
            let c = material.encrypt(&alg, &value, iv.as_deref(), aad.as_deref()).map_err(key_error)?;
            KeyOperationOutput::Bytes { kid, value: Zeroizing::new(c.value), iv: c.iv, tag: c.tag, aad: c.aad }
        }
        KeyOperation::Decrypt => {
            bytes(material.decrypt(&alg, &value, iv.as_deref(), aad.as_deref(), tag.as_deref()).map_err(key_error)?)
        }
        KeyOperation::Sign => bytes(Zeroizing::new(material.sign(&alg, &value).map_err(key_error)?)),
        KeyOperation::Verify => {
            let digest = digest.ok_or_else(|| Error::bad_parameter("The property 'digest' is required."))?;
            KeyOperationOutput::Verified(material.verify(&alg, &digest, &value).map_err(key_error)?)
        }
        KeyOperation::WrapKey => bytes(Zeroizing::new(material.wrap(&alg, &value).map_err(key_error)?)),
        KeyOperation::UnwrapKey => bytes(material.unwrap(&alg, &value).map_err(key_error)?),
    })
}

/// An operation with a key inside the HSM: the token does the work.
fn in_token(
    token: &Pkcs11Root,
    key: &HsmKey,
    op: KeyOperation,
    (kid, value): (String, Vec<u8>),
    input: KeyOperationInput,
) -> Result<KeyOperationOutput> {
    let KeyOperationInput { alg, iv, aad, tag, digest, .. } = input;
    let alg = alg.as_str();
    let refused = |e: coffer_crypto::CryptoError| match e {
        coffer_crypto::CryptoError::Open => Error::bad_parameter("The value does not decrypt with this key."),
        coffer_crypto::CryptoError::Refused(why) => {
            Error::bad_parameter(format!("The HSM does not offer {alg} with this key ({why})."))
        }
        other => Error::from(other),
    };
    let bytes = |value| KeyOperationOutput::bytes(&kid, value);
    Ok(match op {
        KeyOperation::Sign => bytes(Zeroizing::new(token.hsm_sign(key, alg, &value).map_err(refused)?)),
        KeyOperation::Verify => {
            let digest = digest.ok_or_else(|| Error::bad_parameter("The property 'digest' is required."))?;
            KeyOperationOutput::Verified(token.hsm_verify(key, alg, &digest, &value).map_err(refused)?)
        }
        KeyOperation::Encrypt => {
            let c = token
                .hsm_encrypt(key, alg, &value, CipherParams { iv: iv.as_deref(), aad: aad.as_deref(), tag: None })
                .map_err(refused)?;
            KeyOperationOutput::Bytes { kid, value: Zeroizing::new(c.value), iv: c.iv, tag: c.tag, aad: c.aad }
        }
        KeyOperation::Decrypt => bytes(
            token
                .hsm_decrypt(
                    key,
                    alg,
                    &value,
                    CipherParams { iv: iv.as_deref(), aad: aad.as_deref(), tag: tag.as_deref() },
                )
                .map_err(refused)?,
        ),
        KeyOperation::WrapKey => bytes(Zeroizing::new(token.hsm_wrap(key, alg, &value).map_err(refused)?)),
        KeyOperation::UnwrapKey => bytes(token.hsm_unwrap(key, alg, &value).map_err(refused)?),
    })
}
