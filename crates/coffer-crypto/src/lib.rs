//! Coffer's cryptography, all on aws-lc-rs (argon2 excepted): envelope sealing of values under
//! per-vault data keys, the root of trust that wraps those keys, ES256 access tokens, password
//! and client-secret hashing, and opaque backup blobs.
#![forbid(unsafe_code)]

pub mod b64;
pub mod certs;
pub mod digest;
pub mod hsm_keys;
pub mod jwt;
pub mod keys;
pub mod password;
pub mod random;
pub mod root;
pub use root::pkcs11;
pub mod seal;
pub mod shamir;
pub mod x509;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    /// Authentication failed: wrong key, wrong AAD, or tampered ciphertext.
    #[error("decryption failed: the data was altered, moved, or sealed under another key")]
    Open,
    #[error("malformed sealed data")]
    Malformed,
    #[error("key operation failed: {0}")]
    Key(&'static str),
    #[error("root of trust: {0}")]
    Root(String),
    /// The root of trust cannot be reached now (a token gone, a module failing): a fault that
    /// clears by itself, answered 503.
    #[error("{0}")]
    Unavailable(String),
    /// The HSM refused what was asked (an algorithm, size or curve it does not offer).
    #[error("{0}")]
    Refused(String),
}

impl From<CryptoError> for coffer_core::Error {
    fn from(e: CryptoError) -> Self {
        match e {
            CryptoError::Unavailable(m) => coffer_core::Error::unavailable("HsmUnavailable", m),
            CryptoError::Refused(m) => coffer_core::Error::bad_parameter(m),
            e => coffer_core::Error::internal(e.to_string()),
        }
    }
}
