//! The two base64 flavours Key Vault uses: base64url without padding (JWK fields, backup blobs,
//! crypto values) and standard base64 (certificates).
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

pub fn url_encode(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

/// Decodes base64url, tolerating padding and the standard alphabet, as Azure does.
pub fn url_decode(s: &str) -> Option<Vec<u8>> {
    let trimmed = s.trim().trim_end_matches('=');
    let normalized: String = trimmed
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        })
        .collect();
    URL_SAFE_NO_PAD.decode(normalized.as_bytes()).ok()
}

pub fn std_encode(data: &[u8]) -> String {
    STANDARD.encode(data)
}

pub fn std_decode(s: &str) -> Option<Vec<u8>> {
    STANDARD.decode(s.trim().as_bytes()).ok()
}

/// User-supplied text for an error message: short and without control characters.
pub fn printable(s: &str) -> String {
    coffer_core::names::printable(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_roundtrip_and_tolerance() {
        let data = [0xfbu8, 0xff, 0x00, 0x10];
        let e = url_encode(&data);
        assert_eq!(e, "-_8AEA");
        assert_eq!(url_decode(&e).unwrap(), data);
        assert_eq!(url_decode("+/8AEA==").unwrap(), data);
        assert!(url_decode("!!").is_none());
    }
}
