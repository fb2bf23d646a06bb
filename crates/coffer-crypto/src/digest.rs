//! Hashes and comparisons for high-entropy secrets (refresh tokens); passwords use argon2id.
use aws_lc_rs::digest::{SHA256, digest};

pub fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, data).as_ref());
    out
}

pub fn sha256_hex(data: &[u8]) -> String {
    crate::random::hex(digest(&SHA256, data).as_ref())
}

/// HMAC-SHA256 (hex): signs webhook deliveries.
pub fn hmac_sha256_hex(key: &[u8], data: &[u8]) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
    crate::random::hex(aws_lc_rs::hmac::sign(&key, data).as_ref())
}

/// Constant-time equality.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_answer() {
        assert_eq!(super::sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert!(super::ct_eq(b"x", b"x"));
        // RFC 4231, test case 2.
        assert_eq!(
            super::hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(!super::ct_eq(b"x", b"y"));
        assert!(!super::ct_eq(b"x", b"xx"));
    }
}
