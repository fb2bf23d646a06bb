//! Hashes and comparisons for high-entropy secrets (refresh tokens); passwords use argon2id.
use aws_lc_rs::digest::{SHA256, digest};

pub fn sha256_hex(data: &[u8]) -> String {
    crate::random::hex(digest(&SHA256, data).as_ref())
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
        assert!(!super::ct_eq(b"x", b"y"));
        assert!(!super::ct_eq(b"x", b"xx"));
    }
}
