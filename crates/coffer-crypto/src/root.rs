//! The root of trust wraps every vault data key and instance key. Providers: `dev` (a key file
//! in the data directory, for `--dev` only); Shamir and PKCS#11 providers implement the same
//! trait later.
use std::io::Write;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::CryptoError;
use crate::seal::{DataKey, KEY_LEN};

pub trait RootOfTrust: Send + Sync + std::fmt::Debug {
    /// Seals key material under the root key, bound to `aad`.
    fn wrap(&self, aad: &[u8], key_material: &[u8]) -> Result<Vec<u8>, CryptoError>;
    fn unwrap(&self, aad: &[u8], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError>;
    /// A short description for logs (`dev key file …`).
    fn describe(&self) -> String;
}

/// Wraps and unwraps a `DataKey` through any root of trust.
pub fn wrap_data_key(root: &dyn RootOfTrust, aad: &[u8], key: &DataKey) -> Result<Vec<u8>, CryptoError> {
    root.wrap(aad, key.as_bytes())
}

pub fn unwrap_data_key(root: &dyn RootOfTrust, aad: &[u8], wrapped: &[u8]) -> Result<DataKey, CryptoError> {
    DataKey::from_bytes(&root.unwrap(aad, wrapped)?)
}

/// The dev provider: a random 256-bit key in `root.key` (mode 0600) in the data directory.
#[derive(Debug)]
pub struct DevKeyFile {
    key: DataKey,
    path: PathBuf,
}

impl DevKeyFile {
    /// Loads the key file, creating it on first start.
    pub fn open_or_create(path: &Path) -> Result<Self, CryptoError> {
        let io = |e: std::io::Error| CryptoError::Root(format!("{}: {e}", path.display()));
        if path.exists() {
            let bytes = Zeroizing::new(std::fs::read(path).map_err(io)?);
            if bytes.len() != KEY_LEN {
                return Err(CryptoError::Root(format!("{}: expected {KEY_LEN} bytes", path.display())));
            }
            return Ok(Self { key: DataKey::from_bytes(&bytes)?, path: path.to_path_buf() });
        }
        let key = DataKey::generate();
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(path).map_err(io)?;
        f.write_all(key.as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
        Ok(Self { key, path: path.to_path_buf() })
    }

    /// An in-memory root key, for tests.
    pub fn ephemeral() -> Self {
        Self { key: DataKey::generate(), path: PathBuf::from("<memory>") }
    }
}

impl RootOfTrust for DevKeyFile {
    fn wrap(&self, aad: &[u8], key_material: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.key.seal(aad, key_material)
    }
    fn unwrap(&self, aad: &[u8], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        self.key.open(aad, wrapped)
    }
    fn describe(&self) -> String {
        format!("dev key file {}", self.path.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_persists() {
        let dir = std::env::temp_dir().join(format!("coffer-root-{}", crate::random::version_id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("root.key");
        let a = DevKeyFile::open_or_create(&path).unwrap();
        let dk = DataKey::generate();
        let wrapped = wrap_data_key(&a, b"vault:1", &dk).unwrap();
        let b = DevKeyFile::open_or_create(&path).unwrap();
        assert_eq!(unwrap_data_key(&b, b"vault:1", &wrapped).unwrap().as_bytes(), dk.as_bytes());
        assert!(unwrap_data_key(&b, b"vault:2", &wrapped).is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
