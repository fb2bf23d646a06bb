//! Envelope sealing: AES-256-GCM under a 256-bit data key, with an AAD that binds the ciphertext
//! to its place (vault, kind, name, version), so a row moved or swapped in the database fails
//! to open instead of returning the wrong value.
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use zeroize::Zeroizing;

use crate::CryptoError;

/// Format version byte, so the layout can change without guessing.
const FORMAT_V1: u8 = 1;
pub const KEY_LEN: usize = 32;

/// A 256-bit AES key, zeroized on drop and never printed.
#[derive(Clone)]
pub struct DataKey(Zeroizing<[u8; KEY_LEN]>);

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

impl DataKey {
    pub fn generate() -> Self {
        let mut k = Zeroizing::new([0u8; KEY_LEN]);
        crate::random::fill(k.as_mut());
        Self(k)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let arr: [u8; KEY_LEN] = bytes.try_into().map_err(|_| CryptoError::Malformed)?;
        Ok(Self(Zeroizing::new(arr)))
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_ref()
    }

    fn aead(&self) -> Result<LessSafeKey, CryptoError> {
        let k = UnboundKey::new(&AES_256_GCM, self.0.as_ref()).map_err(|_| CryptoError::Key("aes key"))?;
        Ok(LessSafeKey::new(k))
    }

    /// `version || nonce || ciphertext || tag`, with a fresh random nonce.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        crate::random::fill(&mut nonce);
        let mut out = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + 16);
        out.push(FORMAT_V1);
        out.extend_from_slice(&nonce);
        let mut body = plaintext.to_vec();
        self.aead()?
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut body)
            .map_err(|_| CryptoError::Key("seal"))?;
        out.extend_from_slice(&body);
        Ok(out)
    }

    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if sealed.len() < 1 + NONCE_LEN + 16 || sealed[0] != FORMAT_V1 {
            return Err(CryptoError::Malformed);
        }
        let nonce = Nonce::try_assume_unique_for_key(&sealed[1..1 + NONCE_LEN]).map_err(|_| CryptoError::Malformed)?;
        let mut body = Zeroizing::new(sealed[1 + NONCE_LEN..].to_vec());
        let len = self
            .aead()?
            .open_in_place(nonce, Aad::from(aad), body.as_mut_slice())
            .map_err(|_| CryptoError::Open)?
            .len();
        body.truncate(len);
        Ok(body)
    }
}

/// The AAD for an object version's payload. Names are compared case-insensitively, so the
/// lowercase name key is bound, not the display name.
pub fn object_aad(vault_id: &str, kind: &str, name_key: &str, version: &str) -> Vec<u8> {
    format!("coffer/object/v1|{vault_id}|{kind}|{name_key}|{version}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_binding() {
        let k = DataKey::generate();
        let aad = object_aad("v", "secret", "db", "01");
        let sealed = k.seal(&aad, b"hunter2").unwrap();
        assert_eq!(&k.open(&aad, &sealed).unwrap()[..], b"hunter2");
        // Another place, another key, or a flipped bit: all refuse to open.
        assert_eq!(k.open(&object_aad("v", "secret", "db", "02"), &sealed), Err(CryptoError::Open));
        assert_eq!(DataKey::generate().open(&aad, &sealed), Err(CryptoError::Open));
        let mut bad = sealed.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(k.open(&aad, &bad), Err(CryptoError::Open));
        assert_eq!(k.open(&aad, &sealed[..10]), Err(CryptoError::Malformed));
    }

    #[test]
    fn nonces_differ() {
        let k = DataKey::generate();
        assert_ne!(k.seal(b"a", b"x").unwrap(), k.seal(b"a", b"x").unwrap());
    }

    #[test]
    fn debug_redacts() {
        assert_eq!(format!("{:?}", DataKey::generate()), "DataKey(<redacted>)");
    }
}
