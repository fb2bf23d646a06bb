//! The PKCS#11 root of trust: the root key is a non-extractable AES-256 key in a token (an HSM;
//! SoftHSM2 in tests), found by the token's label and the key's label. Every wrap and unwrap of
//! the root runs in the token (AES-GCM); each vault's key-encryption key is a token object of
//! its own, destroyed on purge (`C_DestroyObject`). A lost session (the token gone, the module
//! failing) is reopened on the next operation; until then operations fail as `Unavailable`.
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use zeroize::Zeroizing;

use super::RootOfTrust;
use crate::CryptoError;

const FORMAT_V1: u8 = 1;
const IV_LEN: usize = 12;
const KEK_PREFIX: &str = "coffer-kek-";
/// The label prefix of a vault's keys in the token: `coffer-key-{vault}-{version}`.
pub const KEY_PREFIX: &str = "coffer-key-";

/// Where the root key is: the module, the token and the key's label, and the user PIN.
pub struct Pkcs11Settings {
    pub module: PathBuf,
    pub token_label: String,
    pub key_label: String,
    /// The root key's label when a rotation replaced the first one (the seal file says).
    pub root_label: Option<String>,
    pub pin: Zeroizing<String>,
}

impl std::fmt::Debug for Pkcs11Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Settings")
            .field("module", &self.module)
            .field("token_label", &self.token_label)
            .field("key_label", &self.key_label)
            .finish_non_exhaustive()
    }
}

/// Whether opening creates the root key when the token has none (at `operator init`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootKey {
    MustExist,
    CreateIfMissing,
}

pub struct Pkcs11Root {
    settings: Pkcs11Settings,
    /// The root key's label now (`settings.key_label`, or the key a rotation made) and, while a
    /// rotation runs, the label of the key it replaces (values it sealed still open).
    labels: std::sync::RwLock<RootLabels>,
    /// The module loaded and a few signed-in sessions (requests use the token side by side);
    /// dropped (and the module finalized) after a failure, and made anew by the next operation.
    link: std::sync::RwLock<Option<Arc<Link>>>,
    next: std::sync::atomic::AtomicUsize,
}

#[derive(Debug, Clone, Default)]
struct RootLabels {
    current: String,
    previous: Option<String>,
}

/// Sessions open on the token at once.
const SESSIONS: usize = 4;

struct Link {
    // Dropped in this order: the sessions, then the module.
    sessions: Vec<Mutex<Session>>,
    _ctx: Pkcs11,
}

impl std::fmt::Debug for Pkcs11Root {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Root").field("settings", &self.settings).finish_non_exhaustive()
    }
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> CryptoError {
    CryptoError::Unavailable(format!("the HSM (PKCS#11) {what}: {e}"))
}

/// What every key Coffer keeps in the token carries: a token object, private, sensitive,
/// never to be extracted, under its label.
pub(crate) fn kept_in_token(label: &[u8]) -> Vec<Attribute> {
    vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Label(label.to_vec()),
    ]
}

fn secret_key_template(label: &str) -> Vec<Attribute> {
    let mut t = vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
        Attribute::ValueLen(32.into()),
    ];
    t.extend(kept_in_token(label.as_bytes()));
    t
}

fn find_key(session: &Session, label: &str) -> Result<Option<ObjectHandle>, cryptoki::error::Error> {
    let found = session
        .find_objects(&[Attribute::Class(ObjectClass::SECRET_KEY), Attribute::Label(label.as_bytes().to_vec())])?;
    Ok(found.into_iter().next())
}

impl Pkcs11Root {
    /// Loads the module, finds the token, signs in with the PIN and finds (or, with
    /// `CreateIfMissing`, makes) the root key. A wrong PIN, a missing token or key is an error
    /// that says which.
    pub fn open(settings: Pkcs11Settings, root: RootKey) -> Result<Self, CryptoError> {
        let current = settings.root_label.clone().unwrap_or_else(|| settings.key_label.clone());
        let labels = std::sync::RwLock::new(RootLabels { current: current.clone(), previous: None });
        let this = Self { settings, labels, link: Default::default(), next: Default::default() };
        // At start every failure is the operator's to fix, not a passing fault.
        let link = this.connect().map_err(|e| match e {
            CryptoError::Unavailable(m) => CryptoError::Root(m),
            other => other,
        })?;
        let first = link.sessions[0].lock().map_err(|_| unavailable("session", "poisoned lock"))?;
        match find_key(&first, &current).map_err(|e| unavailable("lookup", e))? {
            Some(_) => {}
            None if root == RootKey::CreateIfMissing => {
                first
                    .generate_key(&Mechanism::AesKeyGen, &secret_key_template(&current))
                    .map_err(|e| CryptoError::Root(format!("creating the root key in the token: {e}")))?;
            }
            None => {
                return Err(CryptoError::Root(format!(
                    "the token '{}' has no key labelled '{current}'",
                    this.settings.token_label
                )));
            }
        }
        drop(first);
        if let Ok(mut l) = this.link.write() {
            *l = Some(Arc::new(link));
        }
        Ok(this)
    }

    /// Loads the module, finds the token by its label and signs in.
    fn connect(&self) -> Result<Link, CryptoError> {
        let settings = &self.settings;
        let ctx = Pkcs11::new(&settings.module)
            .map_err(|e| CryptoError::Root(format!("loading the PKCS#11 module {}: {e}", settings.module.display())))?;
        ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)).map_err(|e| unavailable("module", e))?;
        let mut slot: Option<Slot> = None;
        for s in ctx.get_slots_with_token().map_err(|e| unavailable("token list", e))? {
            if ctx.get_token_info(s).map(|t| t.label().trim() == settings.token_label).unwrap_or(false) {
                slot = Some(s);
                break;
            }
        }
        let slot = slot.ok_or_else(|| {
            CryptoError::Unavailable(format!("no PKCS#11 token is labelled '{}' in this module", settings.token_label))
        })?;
        let session = ctx.open_rw_session(slot).map_err(|e| unavailable("session", e))?;
        let pin = AuthPin::new(settings.pin.as_str().into());
        match session.login(UserType::User, Some(&pin)) {
            Ok(()) => {}
            Err(cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::UserAlreadyLoggedIn, _)) => {}
            Err(cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::PinIncorrect, _)) => {
                return Err(CryptoError::Root(format!(
                    "the PIN of the PKCS#11 token '{}' is wrong",
                    settings.token_label
                )));
            }
            Err(e) => return Err(unavailable("login", e)),
        }
        // Signed in once for the token: the other sessions share it.
        let mut sessions = vec![Mutex::new(session)];
        for _ in 1..SESSIONS {
            sessions.push(Mutex::new(ctx.open_rw_session(slot).map_err(|e| unavailable("session", e))?));
        }
        Ok(Link { sessions, _ctx: ctx })
    }

    /// The live link, made if there is none.
    fn current(&self) -> Result<Arc<Link>, CryptoError> {
        if let Some(l) = self.link.read().map_err(|_| unavailable("session", "poisoned lock"))?.as_ref() {
            return Ok(l.clone());
        }
        let mut slot = self.link.write().map_err(|_| unavailable("session", "poisoned lock"))?;
        if let Some(l) = slot.as_ref() {
            return Ok(l.clone());
        }
        let fresh = Arc::new(self.connect()?);
        *slot = Some(fresh.clone());
        Ok(fresh)
    }

    /// Forgets `link` (if it is still the live one): the next operation makes a new one.
    fn drop_link(&self, link: &Arc<Link>) {
        if let Ok(mut slot) = self.link.write()
            && slot.as_ref().is_some_and(|l| Arc::ptr_eq(l, link))
        {
            *slot = None;
        }
    }

    /// Runs `f` in the session (the HSM key operations' way in).
    pub(crate) fn run<T>(&self, f: impl Fn(&Session) -> Result<T, cryptoki::error::Error>) -> Result<T, CryptoError> {
        self.with_session(f)
    }

    /// Runs `f` in the session, reopening it once if the token dropped it.
    fn with_session<T>(&self, f: impl Fn(&Session) -> Result<T, cryptoki::error::Error>) -> Result<T, CryptoError> {
        for attempt in 0..2 {
            let link = self.current()?;
            // A free session if there is one, else wait for one in turn.
            let start = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let free = (0..link.sessions.len())
                .map(|i| &link.sessions[(start + i) % link.sessions.len()])
                .find_map(|m| m.try_lock().ok());
            let session = match free {
                Some(s) => s,
                None => link.sessions[start % link.sessions.len()]
                    .lock()
                    .map_err(|_| unavailable("session", "poisoned lock"))?,
            };
            match f(&session) {
                Ok(v) => return Ok(v),
                Err(e) if is_missing_key(&e) => {
                    // A vault's key that is gone was purged — unless the root key is gone too:
                    // then the token lost its objects (a fault), and a new session may see them.
                    if matches!(find_key(&session, &self.root_label()), Ok(Some(_))) {
                        return Err(CryptoError::Open);
                    }
                    drop(session);
                    self.drop_link(&link);
                    if attempt == 1 {
                        return Err(unavailable("token", "the root key is not visible in the token"));
                    }
                }
                Err(e) if is_crypto_failure(&e) => return Err(CryptoError::Open),
                Err(e) if is_refused_request(&e) => {
                    return Err(CryptoError::Refused(format!("the HSM refused the operation: {e}")));
                }
                Err(e) => {
                    drop(session);
                    self.drop_link(&link);
                    if attempt == 1 {
                        return Err(unavailable("operation", e));
                    }
                }
            }
        }
        Err(unavailable("operation", "no session"))
    }

    fn key(session: &Session, label: &str) -> Result<ObjectHandle, cryptoki::error::Error> {
        find_key(session, label)?.ok_or(cryptoki::error::Error::Pkcs11(
            cryptoki::error::RvError::KeyHandleInvalid,
            cryptoki::context::Function::FindObjects,
        ))
    }

    fn seal_with(&self, label: &str, aad: &[u8], data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let iv_bytes = crate::random::bytes(IV_LEN);
        let body = self.with_session(|s| {
            let key = Self::key(s, label)?;
            let mut iv = iv_bytes.clone();
            let params = GcmParams::new(&mut iv, aad, 128.into())?;
            s.encrypt(&Mechanism::AesGcm(params), key, data)
        })?;
        let mut out = Vec::with_capacity(1 + IV_LEN + body.len());
        out.push(FORMAT_V1);
        out.extend_from_slice(&iv_bytes);
        out.extend_from_slice(&body);
        Ok(out)
    }

    fn open_with(&self, label: &str, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if sealed.len() < 1 + IV_LEN + 16 || sealed[0] != FORMAT_V1 {
            return Err(CryptoError::Malformed);
        }
        let (iv_bytes, body) = sealed[1..].split_at(IV_LEN);
        self.with_session(|s| {
            let key = Self::key(s, label)?;
            let mut iv = iv_bytes.to_vec();
            let params = GcmParams::new(&mut iv, aad, 128.into())?;
            s.decrypt(&Mechanism::AesGcm(params), key, body).map_err(gcm_tag_failure)
        })
        .map(Zeroizing::new)
    }

    fn kek_label(vault_id: &str) -> Result<String, CryptoError> {
        if !vault_id.is_empty() && vault_id.len() <= 64 && vault_id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
        {
            Ok(format!("{KEK_PREFIX}{vault_id}"))
        } else {
            Err(CryptoError::Root(format!("invalid key id {vault_id:?}")))
        }
    }
}

/// An AES-GCM decryption's error, with SoftHSM's answer to a wrong tag (CKR_GENERAL_ERROR)
/// read as the wrong tag it is: the session has just found the key, so the token is there.
pub(crate) fn gcm_tag_failure(e: cryptoki::error::Error) -> cryptoki::error::Error {
    match e {
        cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::GeneralError, f) => {
            cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::EncryptedDataInvalid, f)
        }
        other => other,
    }
}

/// A failure of the data (a wrong tag: tampered or wrong AAD), not of the token.
fn is_crypto_failure(e: &cryptoki::error::Error) -> bool {
    use cryptoki::error::RvError as R;
    matches!(e, cryptoki::error::Error::Pkcs11(R::EncryptedDataInvalid | R::EncryptedDataLenRange, _))
}

/// The token refused what was asked (a mechanism, parameter, size or curve it does not offer,
/// or data of the wrong length), not a fault of the link.
fn is_refused_request(e: &cryptoki::error::Error) -> bool {
    use cryptoki::error::RvError as R;
    matches!(
        e,
        cryptoki::error::Error::Pkcs11(
            R::MechanismInvalid
                | R::MechanismParamInvalid
                | R::ArgumentsBad
                | R::DataLenRange
                | R::DataInvalid
                | R::CurveNotSupported
                | R::DomainParamsInvalid
                | R::KeySizeRange
                | R::AttributeValueInvalid
                | R::TemplateInconsistent
                | R::TemplateIncomplete
                | R::KeyTypeInconsistent
                | R::KeyFunctionNotPermitted,
            _
        )
    )
}

/// No key of the label asked for (`Pkcs11Root::key`).
fn is_missing_key(e: &cryptoki::error::Error) -> bool {
    matches!(e, cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::KeyHandleInvalid, _))
}

/// The root key's label and the one it replaces, while a rotation runs.
impl Pkcs11Root {
    /// The label of the root key now.
    pub fn root_label(&self) -> String {
        self.labels.read().map(|l| l.current.clone()).unwrap_or_else(|_| self.settings.key_label.clone())
    }

    /// The label the configuration names (a rotated root key's label starts with it).
    pub fn configured_label(&self) -> &str {
        &self.settings.key_label
    }

    /// Makes a new root key (`{configured label}-{random}`) in the token, not used yet.
    pub fn create_root_key(&self) -> Result<String, CryptoError> {
        let label = format!("{}-{}", self.settings.key_label, crate::random::version_id());
        self.with_session(|s| s.generate_key(&Mechanism::AesKeyGen, &secret_key_template(&label)).map(|_| ()))?;
        Ok(label)
    }

    /// From now on wraps with the key `next`; unwraps with it, then with the key it replaces.
    pub fn begin_rotation(&self, next: &str) {
        if let Ok(mut l) = self.labels.write() {
            let previous = std::mem::replace(&mut l.current, next.to_string());
            l.previous = Some(previous);
        }
    }

    /// A rotation that did not commit: the previous key is the root key again.
    pub fn abort_rotation(&self) {
        if let Ok(mut l) = self.labels.write()
            && let Some(previous) = l.previous.take()
        {
            l.current = previous;
        }
    }

    /// A committed rotation: the previous key is no longer used.
    pub fn end_rotation(&self) {
        if let Ok(mut l) = self.labels.write() {
            l.previous = None;
        }
    }

    /// Destroys every root key this configuration made other than the one in use: the keys
    /// of rotations that finished (the old root) or never committed.
    pub fn destroy_other_root_keys(&self) -> Result<usize, CryptoError> {
        self.destroy_root_keys_but(Some(self.root_label()))
    }

    /// Destroys every root key this configuration made, the one in use too (after a
    /// migration to another seal).
    pub fn destroy_root_keys(&self) -> Result<usize, CryptoError> {
        self.destroy_root_keys_but(None)
    }

    /// How many keys of vaults (`-HSM` types) the token holds.
    pub fn vault_key_objects(&self) -> Result<usize, CryptoError> {
        self.with_session(|s| {
            let mut n = 0;
            for handle in s
                .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY)])?
                .into_iter()
                .chain(s.find_objects(&[Attribute::Class(ObjectClass::SECRET_KEY)])?)
            {
                let named = s.get_attributes(handle, &[AttributeType::Label])?;
                if named.iter().any(|a| matches!(a, Attribute::Label(l) if l.starts_with(KEY_PREFIX.as_bytes()))) {
                    n += 1;
                }
            }
            Ok(n)
        })
    }

    fn destroy_root_keys_but(&self, keep: Option<String>) -> Result<usize, CryptoError> {
        let current = keep.unwrap_or_default();
        let base = self.settings.key_label.clone();
        let prefix = format!("{base}-");
        self.with_session(|s| {
            let mut destroyed = 0;
            for handle in s.find_objects(&[Attribute::Class(ObjectClass::SECRET_KEY)])? {
                let label = s.get_attributes(handle, &[AttributeType::Label])?.into_iter().find_map(|a| match a {
                    Attribute::Label(l) => Some(l),
                    _ => None,
                });
                let Some(label) = label else { continue };
                let is_root = label == base.as_bytes()
                    || (label.starts_with(prefix.as_bytes())
                        && label[prefix.len()..].iter().all(|b| b.is_ascii_hexdigit()));
                if is_root && label != current.as_bytes() {
                    s.destroy_object(handle)?;
                    destroyed += 1;
                }
            }
            Ok(destroyed)
        })
    }

    fn open_root(&self, aad: &[u8], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let labels = self.labels.read().map(|l| l.clone()).unwrap_or_default();
        match self.open_with(&labels.current, aad, wrapped) {
            Err(CryptoError::Open) if labels.previous.is_some() => {
                self.open_with(labels.previous.as_deref().unwrap_or_default(), aad, wrapped)
            }
            other => other,
        }
    }
}

impl RootOfTrust for Pkcs11Root {
    fn wrap(&self, aad: &[u8], key_material: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.seal_with(&self.root_label(), aad, key_material)
    }
    fn unwrap(&self, aad: &[u8], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        self.open_root(aad, wrapped)
    }
    fn describe(&self) -> String {
        format!(
            "PKCS#11 key '{}' in token '{}' ({})",
            self.root_label(),
            self.settings.token_label,
            self.settings.module.display()
        )
    }
    fn provider(&self) -> &'static str {
        "pkcs11"
    }

    fn create_vault_kek(&self, vault_id: &str) -> Result<(), CryptoError> {
        let label = Self::kek_label(vault_id)?;
        self.with_session(|s| s.generate_key(&Mechanism::AesKeyGen, &secret_key_template(&label)).map(|_| ()))
    }
    fn seal_with_vault_kek(&self, vault_id: &str, aad: &[u8], data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.seal_with(&Self::kek_label(vault_id)?, aad, data)
    }
    fn open_with_vault_kek(
        &self,
        vault_id: &str,
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let label = Self::kek_label(vault_id)?;
        self.open_with(&label, aad, sealed).map_err(|e| match e {
            CryptoError::Open => {
                CryptoError::Root(format!("the key-encryption key of vault {vault_id} does not open this (purged?)"))
            }
            other => other,
        })
    }
    /// Destroys the vault's key-encryption key, and the vault's keys inside the token
    /// (`coffer-key-{vault}-…`): nothing of a purged vault stays in the HSM.
    fn destroy_vault_kek(&self, vault_id: &str) -> Result<(), CryptoError> {
        let label = Self::kek_label(vault_id)?;
        let keys = format!("{KEY_PREFIX}{vault_id}-");
        self.with_session(|s| {
            for handle in s.find_objects(&[])? {
                let named = s.get_attributes(handle, &[AttributeType::Label])?;
                let is_ours = named.iter().any(|a| match a {
                    Attribute::Label(l) => l == label.as_bytes() || l.starts_with(keys.as_bytes()),
                    _ => false,
                });
                if is_ours {
                    s.destroy_object(handle)?;
                }
            }
            Ok(())
        })
    }

    fn as_pkcs11(&self) -> Option<&Pkcs11Root> {
        Some(self)
    }
}

/// Whether a token object is the sensitive, never-extractable key this module makes (tests).
pub fn describe_key(root: &Pkcs11Root, label: &str) -> Result<(bool, bool), CryptoError> {
    root.with_session(|s| {
        let key = Pkcs11Root::key(s, label)?;
        let attrs = s.get_attributes(key, &[AttributeType::Sensitive, AttributeType::NeverExtractable])?;
        let flag = |t: AttributeType| {
            attrs.iter().any(|a| match (a, t) {
                (Attribute::Sensitive(v), AttributeType::Sensitive) => *v,
                (Attribute::NeverExtractable(v), AttributeType::NeverExtractable) => *v,
                _ => false,
            })
        };
        Ok((flag(AttributeType::Sensitive), flag(AttributeType::NeverExtractable)))
    })
}
