//! Randomness from aws-lc-rs's system RNG.
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

pub fn fill(buf: &mut [u8]) {
    // SystemRandom only fails if the OS RNG is unavailable, which no server can survive.
    if SystemRandom::new().fill(buf).is_err() {
        panic!("the operating system's random number generator failed");
    }
}

pub fn bytes(n: usize) -> Zeroizing<Vec<u8>> {
    let mut v = Zeroizing::new(vec![0u8; n]);
    fill(&mut v);
    v
}

/// A Key Vault object version: 32 lowercase hex characters.
pub fn version_id() -> String {
    let mut b = [0u8; 16];
    fill(&mut b);
    hex(&b)
}

/// A GUID (random, version 4) in its usual text form.
pub fn guid() -> String {
    let mut b = [0u8; 16];
    fill(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex(&b);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// A client secret: 40 characters of base64url (240 bits).
pub fn client_secret() -> Zeroizing<String> {
    let b = bytes(30);
    Zeroizing::new(crate::b64::url_encode(&b))
}

pub fn hex(data: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(data.len() * 2);
    for b in data {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 0xf) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let v = version_id();
        assert!(coffer_core::names::is_valid_version(&v));
        assert_ne!(v, version_id());
        let g = guid();
        assert_eq!(g.len(), 36);
        assert_eq!(&g[14..15], "4");
        assert_eq!(client_secret().len(), 40);
    }
}
