//! Shamir's secret sharing over GF(2^8) for the root key, and the text form of a share.
//!
//! A share as an operator sees it is base64 of: version (1) · initialisation id (8) ·
//! threshold (1) · x (1) · y (one byte per secret byte) · checksum (first 4 bytes of SHA-256
//! over what precedes). The checksum catches a mistyped share; the initialisation id a share
//! of another initialisation (or of this one before a rekey).
use zeroize::{Zeroize, Zeroizing};

use crate::CryptoError;

const VERSION: u8 = 1;
const HEADER: usize = 1 + 8 + 1 + 1;
const CHECKSUM: usize = 4;

/// Multiplication in GF(2^8) with the AES polynomial, without tables or data-dependent
/// branches (no cache or timing trace of the shares).
fn mul(mut a: u8, mut b: u8) -> u8 {
    let mut product = 0u8;
    for _ in 0..8 {
        product ^= a & 0u8.wrapping_sub(b & 1);
        let carry = 0u8.wrapping_sub(a >> 7);
        a = (a << 1) ^ (0x1b & carry);
        b >>= 1;
    }
    product
}

/// The inverse of a non-zero element: a^254.
fn inv(a: u8) -> u8 {
    let mut result = 1u8;
    let mut base = a;
    let mut e = 254u8;
    while e > 0 {
        if e & 1 == 1 {
            result = mul(result, base);
        }
        base = mul(base, base);
        e >>= 1;
    }
    result
}

/// One share: its x coordinate (1..=255) and the polynomial's values there.
#[derive(Clone, PartialEq, Eq)]
pub struct Share {
    pub x: u8,
    pub y: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Share {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Share(x={}, …)", self.x)
    }
}

/// Splits `secret` into `shares` shares of which any `threshold` rebuild it.
pub fn split(secret: &[u8], shares: u8, threshold: u8) -> Result<Vec<Share>, CryptoError> {
    if threshold == 0 || shares == 0 || threshold > shares {
        return Err(CryptoError::Root(format!(
            "a threshold of {threshold} out of {shares} shares is not possible (1 ≤ threshold ≤ shares ≤ 255)"
        )));
    }
    let mut out: Vec<Share> =
        (1..=shares).map(|x| Share { x, y: Zeroizing::new(Vec::with_capacity(secret.len())) }).collect();
    let mut coefficients = Zeroizing::new(vec![0u8; usize::from(threshold)]);
    for &byte in secret {
        coefficients[0] = byte;
        let random = crate::random::bytes(usize::from(threshold) - 1);
        coefficients[1..].copy_from_slice(&random);
        drop(random);
        for share in &mut out {
            // Horner's rule from the highest coefficient.
            let mut y = 0u8;
            for &c in coefficients.iter().rev() {
                y = mul(y, share.x) ^ c;
            }
            share.y.push(y);
        }
    }
    coefficients.zeroize();
    Ok(out)
}

/// Rebuilds the secret from distinct shares (Lagrange interpolation at 0). With fewer shares
/// than the threshold the result is simply wrong; the caller checks it.
pub fn combine(shares: &[Share]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let Some(first) = shares.first() else { return Err(CryptoError::Root("no shares".into())) };
    let len = first.y.len();
    for (i, s) in shares.iter().enumerate() {
        if s.x == 0 || s.y.len() != len || shares[..i].iter().any(|o| o.x == s.x) {
            return Err(CryptoError::Root("the shares are not distinct shares of one secret".into()));
        }
    }
    let mut secret = Zeroizing::new(vec![0u8; len]);
    for (i, si) in shares.iter().enumerate() {
        // The Lagrange basis polynomial of share i at 0: Π x_j / (x_j - x_i), j ≠ i.
        let mut basis = 1u8;
        for (j, sj) in shares.iter().enumerate() {
            if i != j {
                basis = mul(basis, mul(sj.x, inv(sj.x ^ si.x)));
            }
        }
        for (out, &y) in secret.iter_mut().zip(si.y.iter()) {
            *out ^= mul(basis, y);
        }
    }
    Ok(secret)
}

/// Why a share typed by an operator was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShareError {
    #[error("this is not a Coffer key share (mistyped or cut off?)")]
    Malformed,
    #[error("this key share belongs to another initialisation of Coffer (or to one replaced by a rekey)")]
    OtherInitialisation,
}

/// A share with what identifies its initialisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedShare {
    pub init_id: [u8; 8],
    pub threshold: u8,
    pub share: Share,
}

impl EncodedShare {
    /// The text an operator keeps.
    pub fn encode(&self) -> Zeroizing<String> {
        let mut raw = Zeroizing::new(Vec::with_capacity(HEADER + self.share.y.len() + CHECKSUM));
        raw.push(VERSION);
        raw.extend_from_slice(&self.init_id);
        raw.push(self.threshold);
        raw.push(self.share.x);
        raw.extend_from_slice(&self.share.y);
        let sum = crate::digest::sha256(&raw);
        raw.extend_from_slice(&sum[..CHECKSUM]);
        Zeroizing::new(crate::b64::std_encode(&raw))
    }

    /// Reads a share typed by an operator (surrounding white space ignored), checking that it
    /// belongs to the initialisation `init_id`.
    pub fn decode(text: &str, init_id: &[u8; 8]) -> Result<Self, ShareError> {
        let raw = Zeroizing::new(crate::b64::std_decode(text.trim()).ok_or(ShareError::Malformed)?);
        if raw.len() < HEADER + 1 + CHECKSUM || raw[0] != VERSION {
            return Err(ShareError::Malformed);
        }
        let (body, sum) = raw.split_at(raw.len() - CHECKSUM);
        if crate::digest::sha256(body)[..CHECKSUM] != *sum {
            return Err(ShareError::Malformed);
        }
        let mut id = [0u8; 8];
        id.copy_from_slice(&body[1..9]);
        if &id != init_id {
            return Err(ShareError::OtherInitialisation);
        }
        let share = Share { x: body[10], y: Zeroizing::new(body[HEADER..].to_vec()) };
        if share.x == 0 {
            return Err(ShareError::Malformed);
        }
        Ok(Self { init_id: id, threshold: body[9], share })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_arithmetic() {
        // FIPS-197's worked example: {57} · {83} = {c1}.
        assert_eq!(mul(0x57, 0x83), 0xc1);
        for a in 1..=255u8 {
            assert_eq!(mul(a, inv(a)), 1, "{a}");
        }
    }

    #[test]
    fn any_threshold_of_the_shares_rebuilds_the_secret_and_fewer_do_not() {
        let secret = crate::random::bytes(32);
        let shares = split(&secret, 5, 3).unwrap();
        for a in 0..5 {
            for b in 0..5 {
                for c in 0..5 {
                    if a != b && b != c && a != c {
                        let got = combine(&[shares[a].clone(), shares[b].clone(), shares[c].clone()]).unwrap();
                        assert_eq!(got.as_slice(), secret.as_slice());
                    }
                }
            }
        }
        let two = combine(&shares[..2]).unwrap();
        assert_ne!(two.as_slice(), secret.as_slice());
        assert!(combine(&[shares[0].clone(), shares[0].clone()]).is_err());
        assert!(split(&secret, 2, 3).is_err());
        assert_eq!(combine(&split(&secret, 1, 1).unwrap()).unwrap().as_slice(), secret.as_slice());
    }

    #[test]
    fn the_text_form_catches_typos_and_other_initialisations() {
        let id = [7u8; 8];
        let share = split(&[1, 2, 3, 4], 3, 2).unwrap().remove(1);
        let text = EncodedShare { init_id: id, threshold: 2, share: share.clone() }.encode();
        let back = EncodedShare::decode(&format!("  {}\n", text.as_str()), &id).unwrap();
        assert_eq!(back.share, share);
        assert_eq!(back.threshold, 2);
        assert_eq!(EncodedShare::decode(text.as_str(), &[8u8; 8]), Err(ShareError::OtherInitialisation));
        let mut typo: Vec<char> = text.chars().collect();
        typo[5] = if typo[5] == 'A' { 'B' } else { 'A' };
        let typo: String = typo.into_iter().collect();
        assert!(EncodedShare::decode(&typo, &id).is_err());
        assert_eq!(EncodedShare::decode("hello", &id), Err(ShareError::Malformed));
    }
}
