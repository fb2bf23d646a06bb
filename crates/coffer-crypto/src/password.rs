//! Passwords and client secrets are stored as argon2id hashes (PHC strings).
use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash};

use crate::CryptoError;

pub fn hash(secret: &str) -> Result<String, CryptoError> {
    let mut salt = [0u8; 16];
    crate::random::fill(&mut salt);
    let hashed: PasswordHash =
        Argon2::default().hash_password_with_salt(secret.as_bytes(), &salt).map_err(|_| CryptoError::Key("argon2"))?;
    Ok(hashed.to_string())
}

/// Constant-time verification (argon2's comparison is constant-time).
pub fn verify(secret: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default().verify_password(secret.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn hash_and_verify() {
        let h = super::hash("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(super::verify("correct horse", &h));
        assert!(!super::verify("wrong horse", &h));
        assert!(!super::verify("x", "not a hash"));
    }
}
