//! Passwords and client secrets are stored as argon2id hashes (PHC strings).
//!
//! argon2id needs a 19 MiB work area per check. The crate's own allocation of it (64-byte
//! aligned, zeroed) grows the process by about that much on every call with glibc, which a
//! stream of sign-ins turns into hundreds of megabytes; so each thread keeps one work area,
//! reused by every check it runs and wiped after each (it holds values derived from the
//! password). Servers run checks on a few dedicated threads, which bounds the memory.
use std::cell::RefCell;

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};

use crate::CryptoError;

thread_local! {
    static WORK_AREA: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// argon2 of `secret` into `out`, in this thread's work area.
fn compute(algorithm: Algorithm, version: Version, params: Params, secret: &[u8], salt: &[u8], out: &mut [u8]) -> bool {
    WORK_AREA.with(|area| {
        let Ok(mut area) = area.try_borrow_mut() else { return false };
        let blocks = params.block_count();
        if area.len() != blocks {
            *area = vec![Block::default(); blocks];
        }
        // The first pass writes every block before reading it, so earlier contents do not matter.
        let done =
            Argon2::new(algorithm, version, params).hash_password_into_with_memory(secret, salt, out, &mut area[..]);
        area.iter_mut().for_each(|b| *b = Block::default());
        done.is_ok()
    })
}

pub fn hash(secret: &str) -> Result<String, CryptoError> {
    let mut salt = [0u8; 16];
    crate::random::fill(&mut salt);
    let params = Params::default();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    if !compute(Algorithm::Argon2id, Version::V0x13, params.clone(), secret.as_bytes(), &salt, &mut out) {
        return Err(CryptoError::Key("argon2"));
    }
    let hashed = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|_| CryptoError::Key("argon2 parameters"))?,
        salt: Some(Salt::new(&salt).map_err(|_| CryptoError::Key("argon2 salt"))?),
        hash: Some(Output::new(&out).map_err(|_| CryptoError::Key("argon2 output"))?),
    };
    Ok(hashed.to_string())
}

/// Constant-time verification of `secret` against a PHC string.
pub fn verify(secret: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else { return false };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else { return false };
    let (Ok(algorithm), Ok(params)) = (Algorithm::try_from(parsed.algorithm.as_str()), Params::try_from(&parsed))
    else {
        return false;
    };
    let Ok(version) = Version::try_from(parsed.version.unwrap_or(Version::V0x13.into())) else { return false };
    let expected = expected.as_bytes();
    let mut out = vec![0u8; expected.len()];
    compute(algorithm, version, params, secret.as_bytes(), salt, &mut out) && crate::digest::ct_eq(&out, expected)
}

#[cfg(test)]
mod tests {
    #[test]
    fn hash_and_verify() {
        let h = super::hash("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(super::verify("correct horse", &h));
        assert!(!super::verify("wrong horse", &h));
        assert!(!super::verify("x", "not a hash"));
    }

    #[test]
    fn hashes_made_by_the_argon2_crate_still_verify() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let made = argon2::Argon2::default().hash_password_with_salt(b"stored before", b"0123456789abcdef").unwrap();
        assert!(super::verify("stored before", &made.to_string()));
        let ours = argon2::password_hash::phc::PasswordHash::new(&super::hash("ours").unwrap()).unwrap();
        assert!(argon2::Argon2::default().verify_password(b"ours", &ours).is_ok(), "and the crate verifies ours");
    }
}
