//! The seal of a production server (Shamir): the seal file that says how the root key was
//! split (never the key or a share), the shares entered so far, and the status operators and
//! load balancers read. A sealed server holds no key: the root key exists only in memory,
//! rebuilt from `threshold` shares, and is zeroized when the server is sealed again.
use std::path::{Path, PathBuf};

use coffer_crypto::seal::DataKey;
use coffer_crypto::shamir::{self, EncodedShare, Share, ShareError};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// What `operator status` prints (DESIGN §9.1's names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealStatus {
    pub sealed: bool,
    pub initialized: bool,
    /// Shares needed to unseal (0 for the dev provider).
    pub threshold: u8,
    /// Shares made at initialisation.
    pub shares: u8,
    /// Shares entered towards the next unseal.
    pub progress: u8,
    /// `shamir`, `pkcs11` or `dev`.
    pub provider: String,
}

impl SealStatus {
    /// A dev server: a key file is its root of trust; it cannot be sealed.
    pub fn dev() -> Self {
        Self { sealed: false, initialized: true, threshold: 0, shares: 0, progress: 0, provider: "dev".into() }
    }
}

/// Seals and reports on the running server (implemented by the server's node; `None` in dev).
#[async_trait::async_trait]
pub trait Sealer: Send + Sync + std::fmt::Debug {
    async fn seal(&self) -> SealStatus;
    fn status(&self) -> SealStatus;
}

/// `DATA_DIR/seal.json`: how the root key was split and a check that a rebuilt key is the
/// right one. Nothing in it opens anything.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SealFile {
    pub provider: String,
    pub threshold: u8,
    pub shares: u8,
    /// Names this initialisation (and rekey): a share of another one is refused.
    pub init_id: String,
    /// A known text sealed under the split key (Shamir: the root key; PKCS#11: the recovery
    /// key): only the right key opens it.
    pub check: String,
    /// PKCS#11: the same text wrapped by the root key in the token (the right token and key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_check: Option<String>,
    /// PKCS#11, after `operator rotate-root`: the label of the root key now (before the first
    /// rotation it is the configuration's `key_label`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_label: Option<String>,
}

const CHECK_TEXT: &[u8] = b"coffer root key check v1";

fn check_aad(init_id: &str) -> Vec<u8> {
    format!("coffer/seal-check/v1|{init_id}").into_bytes()
}

/// Why a share or an unseal was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnsealError {
    #[error(transparent)]
    Share(#[from] ShareError),
    #[error("this key share was already entered")]
    Repeated,
    #[error("the key shares entered do not rebuild this server's root key; they were forgotten, start again")]
    WrongKey,
    #[error("{needed} key shares are needed, {given} were given")]
    TooFew { needed: u8, given: u8 },
    #[error("the seal file is damaged: {0}")]
    SealFile(String),
}

pub fn seal_file_path(data_dir: &Path) -> PathBuf {
    data_dir.join("seal.json")
}

/// A rekey's new split, until threshold of its shares are shown to rebuild the root key
/// (`seal.next.json`); the shares of `seal.json` stay valid until then.
pub fn next_seal_file_path(data_dir: &Path) -> PathBuf {
    data_dir.join("seal.next.json")
}

impl SealFile {
    pub fn read(data_dir: &Path) -> anyhow::Result<Option<Self>> {
        Self::read_at(&seal_file_path(data_dir))
    }

    /// A rekey's pending split, if one was made.
    pub fn read_next(data_dir: &Path) -> anyhow::Result<Option<Self>> {
        Self::read_at(&next_seal_file_path(data_dir))
    }

    pub fn read_at(path: &Path) -> anyhow::Result<Option<Self>> {
        match std::fs::read(path) {
            Ok(bytes) => Ok(Some(
                serde_json::from_slice(&bytes)
                    .map_err(|e| anyhow::anyhow!("{} is not a Coffer seal file: {e}", path.display()))?,
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(anyhow::anyhow!("reading {}: {e}", path.display())),
        }
    }

    /// Written whole or not at all (a temporary file renamed into place).
    pub fn write(&self, data_dir: &Path) -> anyhow::Result<()> {
        let json = serde_json::to_vec_pretty(self)?;
        crate::tls::write_private(&seal_file_path(data_dir), &json)
    }

    /// Written as the pending split of a rekey.
    pub fn write_next(&self, data_dir: &Path) -> anyhow::Result<()> {
        let json = serde_json::to_vec_pretty(self)?;
        crate::tls::write_private(&next_seal_file_path(data_dir), &json)
    }

    /// The pending split becomes the seal (one rename: the old split or the new, never none).
    pub fn promote_next(data_dir: &Path) -> anyhow::Result<()> {
        std::fs::rename(next_seal_file_path(data_dir), seal_file_path(data_dir))?;
        std::fs::File::open(data_dir).and_then(|d| d.sync_all())?;
        Ok(())
    }

    fn init_id_bytes(&self) -> Result<[u8; 8], UnsealError> {
        let raw = hex_decode(&self.init_id).ok_or_else(|| UnsealError::SealFile("init_id".into()))?;
        raw.try_into().map_err(|_| UnsealError::SealFile("init_id".into()))
    }

    /// Splits a new root key: the seal file to write and the shares to hand out (once).
    pub fn split(root: &DataKey, shares: u8, threshold: u8) -> anyhow::Result<(Self, Vec<Zeroizing<String>>)> {
        let id_bytes: [u8; 8] =
            coffer_crypto::random::bytes(8).as_slice().try_into().map_err(|_| anyhow::anyhow!("random bytes"))?;
        let init_id = hex_encode(&id_bytes);
        let parts = shamir::split(root.as_bytes(), shares, threshold)?;
        let texts =
            parts.into_iter().map(|share| EncodedShare { init_id: id_bytes, threshold, share }.encode()).collect();
        let check = coffer_crypto::b64::std_encode(&root.seal(&check_aad(&init_id), CHECK_TEXT)?);
        Ok((
            Self { provider: "shamir".into(), threshold, shares, init_id, check, root_check: None, root_label: None },
            texts,
        ))
    }

    /// PKCS#11: records the root key's check, wrapped in the token.
    pub fn with_root_check(mut self, root: &dyn coffer_crypto::root::RootOfTrust) -> anyhow::Result<Self> {
        let wrapped = root.wrap(&check_aad(&self.init_id), CHECK_TEXT)?;
        self.root_check = Some(coffer_crypto::b64::std_encode(&wrapped));
        self.provider = root.provider().into();
        self.root_label = root
            .as_pkcs11()
            .map(|p| p.root_label())
            .filter(|l| root.as_pkcs11().is_some_and(|p| p.configured_label() != l));
        Ok(self)
    }

    /// Whether the token's root key is the one this file was made with.
    pub fn root_opens(&self, root: &dyn coffer_crypto::root::RootOfTrust) -> Result<bool, coffer_crypto::CryptoError> {
        let Some(sealed) = self.root_check.as_deref().and_then(coffer_crypto::b64::std_decode) else {
            return Ok(false);
        };
        match root.unwrap(&check_aad(&self.init_id), &sealed) {
            Ok(plain) => Ok(plain.as_slice() == CHECK_TEXT),
            Err(coffer_crypto::CryptoError::Unavailable(m)) => Err(coffer_crypto::CryptoError::Unavailable(m)),
            Err(_) => Ok(false),
        }
    }

    /// Whether `key` is the root key this file was made for.
    fn opens(&self, key: &DataKey) -> bool {
        coffer_crypto::b64::std_decode(&self.check)
            .and_then(|sealed| key.open(&check_aad(&self.init_id), &sealed).ok())
            .is_some_and(|plain| plain.as_slice() == CHECK_TEXT)
    }
}

/// The root key rebuilt from `texts` (at least `seal.threshold` distinct shares of `seal`).
pub fn rebuild(seal: &SealFile, texts: &[Zeroizing<String>]) -> Result<DataKey, UnsealError> {
    let mut progress = UnsealProgress::default();
    for text in texts {
        if let Some(key) = progress.submit(seal, text)? {
            return Ok(key);
        }
    }
    Err(UnsealError::TooFew { needed: seal.threshold, given: progress.count() })
}

/// The shares entered towards an unseal, in any order.
#[derive(Default)]
pub struct UnsealProgress {
    shares: Vec<Share>,
}

impl UnsealProgress {
    pub fn count(&self) -> u8 {
        u8::try_from(self.shares.len()).unwrap_or(u8::MAX)
    }

    pub fn reset(&mut self) {
        self.shares.clear();
    }

    /// Takes one share; with enough of them, the rebuilt root key (checked against the seal
    /// file). A wrong key forgets every share entered.
    pub fn submit(&mut self, seal: &SealFile, text: &str) -> Result<Option<DataKey>, UnsealError> {
        let decoded = EncodedShare::decode(text, &seal.init_id_bytes()?)?;
        if self.shares.iter().any(|s| s.x == decoded.share.x) {
            return Err(UnsealError::Repeated);
        }
        self.shares.push(decoded.share);
        if self.count() < seal.threshold {
            return Ok(None);
        }
        let rebuilt = shamir::combine(&self.shares);
        self.reset();
        let key = rebuilt.ok().and_then(|k| DataKey::from_bytes(&k).ok()).ok_or(UnsealError::WrongKey)?;
        if seal.opens(&key) { Ok(Some(key)) } else { Err(UnsealError::WrongKey) }
    }
}

fn hex_encode(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

/// The token's PIN, from `seal.pin_file` or `COFFER_SEAL_PIN`.
pub fn read_pin(config: &crate::config::Pkcs11Config) -> anyhow::Result<Zeroizing<String>> {
    let pin = match &config.pin_file {
        Some(path) => Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("reading the PIN file {}: {e}", path.display()))?,
        ),
        None => Zeroizing::new(std::env::var("COFFER_SEAL_PIN").map_err(|_| {
            anyhow::anyhow!("the PKCS#11 token's PIN: set seal.pin_file (a file holding it) or COFFER_SEAL_PIN")
        })?),
    };
    let trimmed = Zeroizing::new(pin.trim().to_string());
    if trimmed.is_empty() {
        anyhow::bail!("the PKCS#11 PIN is empty");
    }
    Ok(trimmed)
}

/// The token a PKCS#11 seal names, opened with `pin`.
pub fn open_token(
    c: &crate::config::Pkcs11Config,
    pin: Zeroizing<String>,
    key: coffer_crypto::pkcs11::RootKey,
    seal: Option<&SealFile>,
) -> Result<coffer_crypto::pkcs11::Pkcs11Root, coffer_crypto::CryptoError> {
    let settings = coffer_crypto::pkcs11::Pkcs11Settings {
        module: c.module.clone(),
        token_label: c.token_label.clone(),
        key_label: c.key_label.clone(),
        root_label: seal.and_then(|s| s.root_label.clone()),
        pin,
    };
    coffer_crypto::pkcs11::Pkcs11Root::open(settings, key)
}

/// `shares` and `threshold` as a possible split.
pub fn check_split(shares: u32, threshold: u32) -> Result<(u8, u8), coffer_core::Error> {
    if !(1..=255).contains(&shares) || threshold < 1 || threshold > shares || (shares > 1 && threshold < 2) {
        return Err(coffer_core::Error::bad_parameter(format!(
            "{threshold} of {shares} shares is not a possible split: 1 ≤ threshold ≤ shares ≤ 255, and a threshold of at least 2 when there are several shares."
        )));
    }
    Ok((u8::try_from(shares).unwrap_or(u8::MAX), u8::try_from(threshold).unwrap_or(u8::MAX)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_unseal_in_any_order_and_others_are_refused() {
        let root = DataKey::generate();
        let (seal, shares) = SealFile::split(&root, 5, 3).unwrap();
        let mut progress = UnsealProgress::default();
        assert_eq!(progress.submit(&seal, &shares[4]).unwrap().map(|_| ()), None);
        assert_eq!(progress.submit(&seal, &shares[4]).err(), Some(UnsealError::Repeated));
        assert_eq!(progress.submit(&seal, &shares[1]).unwrap().map(|_| ()), None);
        assert_eq!(progress.count(), 2);
        let key = progress.submit(&seal, &shares[2]).unwrap().expect("three shares");
        assert_eq!(key.as_bytes(), root.as_bytes());
        assert_eq!(progress.count(), 0);

        // Another initialisation's share, and a malformed one.
        let (_, others) = SealFile::split(&DataKey::generate(), 5, 3).unwrap();
        assert_eq!(progress.submit(&seal, &others[0]).err(), Some(UnsealError::Share(ShareError::OtherInitialisation)));
        assert_eq!(progress.submit(&seal, "not a share").err(), Some(UnsealError::Share(ShareError::Malformed)));
        assert_eq!(progress.count(), 0);

        // The seal file says nothing of the key.
        let json = serde_json::to_string(&seal).unwrap();
        assert!(!json.contains(&coffer_crypto::b64::std_encode(root.as_bytes())));
    }

    #[test]
    fn a_seal_file_with_another_check_refuses_the_key() {
        let root = DataKey::generate();
        let (mut seal, shares) = SealFile::split(&root, 2, 2).unwrap();
        let (other, _) = SealFile::split(&DataKey::generate(), 2, 2).unwrap();
        seal.check = other.check;
        let mut progress = UnsealProgress::default();
        progress.submit(&seal, &shares[0]).unwrap();
        assert_eq!(progress.submit(&seal, &shares[1]).err(), Some(UnsealError::WrongKey));
    }
}
