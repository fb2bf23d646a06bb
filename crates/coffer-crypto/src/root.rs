//! The root of trust wraps every vault data key and instance key. Providers: `dev` (a key file
//! in the data directory, for `--dev` only) and `MemoryRoot` (a root key that exists only in
//! memory, rebuilt from Shamir shares at unseal and zeroized at seal).
use std::io::Write;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::CryptoError;
use crate::seal::{DataKey, KEY_LEN};

pub mod pkcs11;

pub trait RootOfTrust: Send + Sync + std::fmt::Debug {
    /// Seals key material under the root key, bound to `aad`.
    fn wrap(&self, aad: &[u8], key_material: &[u8]) -> Result<Vec<u8>, CryptoError>;
    fn unwrap(&self, aad: &[u8], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError>;
    /// A short description for logs (`dev key file …`).
    fn describe(&self) -> String;

    /// `dev`, `shamir` or `pkcs11`.
    fn provider(&self) -> &'static str;

    /// Creates the key-encryption key of a vault. It is kept by the root of trust, outside
    /// the store, so destroying it makes every copy of the vault's data unreadable.
    fn create_vault_kek(&self, vault_id: &str) -> Result<(), CryptoError>;
    /// Seals with the vault's key-encryption key (where the provider keeps it: a PKCS#11 token
    /// does the work itself); an error once it was destroyed.
    fn seal_with_vault_kek(&self, vault_id: &str, aad: &[u8], data: &[u8]) -> Result<Vec<u8>, CryptoError>;
    fn open_with_vault_kek(&self, vault_id: &str, aad: &[u8], sealed: &[u8])
    -> Result<Zeroizing<Vec<u8>>, CryptoError>;
    /// Destroys a vault's key-encryption key (crypto-shredding, on purge).
    fn destroy_vault_kek(&self, vault_id: &str) -> Result<(), CryptoError>;
    /// The PKCS#11 token, when the root is in one (for keys inside it: `-HSM` types).
    fn as_pkcs11(&self) -> Option<&pkcs11::Pkcs11Root> {
        None
    }
}

/// Wraps and unwraps a `DataKey` through any root of trust.
pub fn wrap_data_key(root: &dyn RootOfTrust, aad: &[u8], key: &DataKey) -> Result<Vec<u8>, CryptoError> {
    root.wrap(aad, key.as_bytes())
}

pub fn unwrap_data_key(root: &dyn RootOfTrust, aad: &[u8], wrapped: &[u8]) -> Result<DataKey, CryptoError> {
    DataKey::from_bytes(&root.unwrap(aad, wrapped)?)
}

/// The dev provider: a random 256-bit key in `root.key` (mode 0600) in the data directory,
/// and vault key-encryption keys in `keys/` beside it (0600 each).
#[derive(Debug)]
pub struct DevKeyFile {
    key: DataKey,
    path: PathBuf,
    /// `None`: keep vault keys in memory (tests).
    keys_dir: Option<PathBuf>,
    memory: std::sync::Mutex<std::collections::HashMap<String, DataKey>>,
}

/// Vault ids are GUIDs; anything else is refused before it reaches a file name.
fn safe_id(id: &str) -> Result<&str, CryptoError> {
    if !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        Ok(id)
    } else {
        Err(CryptoError::Root(format!("invalid key id {id:?}")))
    }
}

fn write_new_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(data)?;
    f.sync_all()?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// A new key file (0600) in its directory (0700, made if missing), durable on return.
fn create_key_file(path: &Path, data: &[u8]) -> Result<(), CryptoError> {
    let io = |e: std::io::Error| CryptoError::Root(format!("{}: {e}", path.display()));
    if let Some(dir) = path.parent() {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir).map_err(io)?;
    }
    write_new_private(path, data).map_err(io)
}

/// Overwrites a key file before unlinking it, then makes the removal durable.
pub fn shred_key_file(path: &Path) -> Result<(), CryptoError> {
    let io = |e: std::io::Error| CryptoError::Root(format!("{}: {e}", path.display()));
    if path.exists() {
        let len = std::fs::metadata(path).map_err(io)?.len();
        std::fs::write(path, vec![0u8; usize::try_from(len).unwrap_or(KEY_LEN)]).map_err(io)?;
        std::fs::remove_file(path).map_err(io)?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        }
    }
    Ok(())
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
            return Ok(Self::with_key(DataKey::from_bytes(&bytes)?, path));
        }
        let key = DataKey::generate();
        write_new_private(path, key.as_bytes()).map_err(io)?;
        Ok(Self::with_key(key, path))
    }

    fn with_key(key: DataKey, path: &Path) -> Self {
        let keys_dir = path.parent().map(|d| d.join("keys"));
        Self { key, path: path.to_path_buf(), keys_dir, memory: Default::default() }
    }

    /// An in-memory root key, for tests.
    pub fn ephemeral() -> Self {
        Self { key: DataKey::generate(), path: PathBuf::from("<memory>"), keys_dir: None, memory: Default::default() }
    }

    fn kek_path(&self, id: &str) -> Result<Option<PathBuf>, CryptoError> {
        let id = safe_id(id)?;
        Ok(self.keys_dir.as_ref().map(|d| d.join(format!("{id}.kek"))))
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
    fn provider(&self) -> &'static str {
        "dev"
    }
    fn destroy_vault_kek(&self, vault_id: &str) -> Result<(), CryptoError> {
        self.destroy_kek(vault_id)
    }
    fn seal_with_vault_kek(&self, vault_id: &str, aad: &[u8], data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.vault_kek(vault_id)?.seal(aad, data)
    }
    fn open_with_vault_kek(
        &self,
        vault_id: &str,
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        self.vault_kek(vault_id)?.open(aad, sealed)
    }

    fn create_vault_kek(&self, vault_id: &str) -> Result<(), CryptoError> {
        safe_id(vault_id)?;
        let kek = DataKey::generate();
        match self.kek_path(vault_id)? {
            Some(path) => create_key_file(&path, kek.as_bytes()),
            None => {
                if let Ok(mut m) = self.memory.lock() {
                    m.insert(vault_id.to_string(), kek);
                }
                Ok(())
            }
        }
    }
}

impl DevKeyFile {
    /// The vault's key-encryption key; an error once it was destroyed.
    pub fn vault_kek(&self, vault_id: &str) -> Result<DataKey, CryptoError> {
        safe_id(vault_id)?;
        let gone = || CryptoError::Root(format!("the key-encryption key of vault {vault_id} does not exist (purged?)"));
        match self.kek_path(vault_id)? {
            Some(path) => {
                let bytes = Zeroizing::new(std::fs::read(&path).map_err(|_| gone())?);
                DataKey::from_bytes(&bytes)
            }
            None => self.memory.lock().ok().and_then(|m| m.get(vault_id).cloned()).ok_or_else(gone),
        }
    }
}

impl DevKeyFile {
    fn destroy_kek(&self, vault_id: &str) -> Result<(), CryptoError> {
        safe_id(vault_id)?;
        match self.kek_path(vault_id)? {
            Some(path) => shred_key_file(&path),
            None => {
                if let Ok(mut m) = self.memory.lock() {
                    m.remove(vault_id);
                }
                Ok(())
            }
        }
    }
}

/// A root key held only in memory (the Shamir provider: rebuilt from k shares at unseal), with
/// the vault key-encryption keys in a directory outside the database, each sealed under the
/// root key: a copy of the data directory without the shares opens nothing. `forget` zeroizes
/// the key (seal); every operation fails after it.
///
/// While the root key is rotated (`begin_rotation`), new values are sealed under the new key
/// and values are opened with the new key or, failing that, the previous one, until
/// `end_rotation` forgets the previous key.
#[derive(Debug)]
pub struct MemoryRoot {
    key: std::sync::RwLock<Option<DataKey>>,
    previous: std::sync::RwLock<Option<DataKey>>,
    keys_dir: PathBuf,
    provider: &'static str,
}

fn sealed_root() -> CryptoError {
    CryptoError::Root("the server is sealed: the root key is not in memory".into())
}

fn kek_aad(vault_id: &str) -> Vec<u8> {
    format!("coffer/vault-kek/v1|{vault_id}").into_bytes()
}

impl MemoryRoot {
    pub fn new(key: DataKey, keys_dir: PathBuf, provider: &'static str) -> Self {
        Self { key: std::sync::RwLock::new(Some(key)), previous: Default::default(), keys_dir, provider }
    }

    /// Drops (and so zeroizes) the root key.
    pub fn forget(&self) {
        if let Ok(mut k) = self.key.write() {
            *k = None;
        }
        if let Ok(mut k) = self.previous.write() {
            *k = None;
        }
    }

    /// From now on seals under `next`; opens with `next`, then the key it replaces.
    pub fn begin_rotation(&self, next: DataKey) {
        if let (Ok(mut key), Ok(mut previous)) = (self.key.write(), self.previous.write()) {
            *previous = key.replace(next);
        }
    }

    /// A rotation that did not commit: the previous key is the root key again.
    pub fn abort_rotation(&self) {
        if let (Ok(mut key), Ok(mut previous)) = (self.key.write(), self.previous.write())
            && previous.is_some()
        {
            *key = previous.take();
        }
    }

    /// A committed rotation: the previous key is forgotten (zeroized).
    pub fn end_rotation(&self) {
        if let Ok(mut previous) = self.previous.write() {
            *previous = None;
        }
    }

    fn with_key<T>(&self, f: impl FnOnce(&DataKey) -> Result<T, CryptoError>) -> Result<T, CryptoError> {
        let guard = self.key.read().map_err(|_| sealed_root())?;
        f(guard.as_ref().ok_or_else(sealed_root)?)
    }

    /// Opens with the root key or, during a rotation, the key it replaces.
    fn open_either(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        match self.with_key(|k| k.open(aad, sealed)) {
            Err(CryptoError::Open) => {
                let previous = self.previous.read().map_err(|_| sealed_root())?;
                previous.as_ref().ok_or(CryptoError::Open)?.open(aad, sealed)
            }
            other => other,
        }
    }

    fn kek_file(&self, vault_id: &str) -> Result<PathBuf, CryptoError> {
        Ok(self.keys_dir.join(format!("{}.kek", safe_id(vault_id)?)))
    }
}

impl RootOfTrust for MemoryRoot {
    fn wrap(&self, aad: &[u8], key_material: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.with_key(|k| k.seal(aad, key_material))
    }
    fn unwrap(&self, aad: &[u8], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        self.open_either(aad, wrapped)
    }
    fn describe(&self) -> String {
        format!("{} root key in memory; vault keys sealed in {}", self.provider, self.keys_dir.display())
    }
    fn provider(&self) -> &'static str {
        self.provider
    }
    fn seal_with_vault_kek(&self, vault_id: &str, aad: &[u8], data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.vault_kek(vault_id)?.seal(aad, data)
    }
    fn open_with_vault_kek(
        &self,
        vault_id: &str,
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        self.vault_kek(vault_id)?.open(aad, sealed)
    }

    fn create_vault_kek(&self, vault_id: &str) -> Result<(), CryptoError> {
        let path = self.kek_file(vault_id)?;
        let sealed = self.with_key(|k| k.seal(&kek_aad(vault_id), DataKey::generate().as_bytes()))?;
        create_key_file(&path, &sealed)
    }

    fn destroy_vault_kek(&self, vault_id: &str) -> Result<(), CryptoError> {
        self.destroy_kek_file(vault_id)
    }
}

impl MemoryRoot {
    /// The vault's key-encryption key, opened from its file.
    pub fn vault_kek(&self, vault_id: &str) -> Result<DataKey, CryptoError> {
        let path = self.kek_file(vault_id)?;
        let sealed = std::fs::read(&path).map_err(|_| {
            CryptoError::Root(format!("the key-encryption key of vault {vault_id} does not exist (purged?)"))
        })?;
        let plain = self.open_either(&kek_aad(vault_id), &sealed)?;
        DataKey::from_bytes(&plain)
    }

    fn destroy_kek_file(&self, vault_id: &str) -> Result<(), CryptoError> {
        shred_key_file(&self.kek_file(vault_id)?)
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
        // Vault key-encryption keys live beside the root key and can be destroyed.
        let id = "0f0e0d0c-0b0a-4908-8706-050403020100";
        a.create_vault_kek(id).unwrap();
        assert_eq!(a.vault_kek(id).unwrap().as_bytes(), b.vault_kek(id).unwrap().as_bytes());
        assert!(dir.join("keys").join(format!("{id}.kek")).exists());
        b.destroy_vault_kek(id).unwrap();
        assert!(a.vault_kek(id).is_err());
        assert!(a.create_vault_kek("../escape").is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_memory_root_seals_its_vault_keys_and_forgets_its_key() {
        let dir = std::env::temp_dir().join(format!("coffer-memroot-{}", crate::random::version_id()));
        let key = DataKey::generate();
        let root = MemoryRoot::new(key.clone(), dir.join("keys"), "shamir");
        let id = "0f0e0d0c-0b0a-4908-8706-050403020100";
        root.create_vault_kek(id).unwrap();
        let kek = root.vault_kek(id).unwrap();
        // On disk only sealed: the file is not the key, and another root key cannot open it.
        let on_disk = std::fs::read(dir.join("keys").join(format!("{id}.kek"))).unwrap();
        assert!(!on_disk.windows(KEY_LEN).any(|w| w == kek.as_bytes()));
        let other = MemoryRoot::new(DataKey::generate(), dir.join("keys"), "shamir");
        assert!(other.vault_kek(id).is_err());
        let again = MemoryRoot::new(key, dir.join("keys"), "shamir");
        assert_eq!(again.vault_kek(id).unwrap().as_bytes(), kek.as_bytes());
        let wrapped = root.wrap(b"a", b"material").unwrap();
        root.forget();
        assert!(root.unwrap(b"a", &wrapped).is_err());
        assert!(root.vault_kek(id).is_err());
        again.destroy_vault_kek(id).unwrap();
        assert!(again.vault_kek(id).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
