//! Coffer's cryptography, all on aws-lc-rs (argon2 excepted): envelope sealing of values under
//! per-vault data keys, the root of trust that wraps those keys, ES256 access tokens, password
//! and client-secret hashing, and opaque backup blobs.
#![forbid(unsafe_code)]

pub mod b64;
pub mod certs;
pub mod digest;
pub mod jwt;
pub mod keys;
pub mod password;
pub mod random;
pub mod root;
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
}

impl From<CryptoError> for coffer_core::Error {
    fn from(e: CryptoError) -> Self {
        coffer_core::Error::internal(e.to_string())
    }
}
