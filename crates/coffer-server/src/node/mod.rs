//! A server node and its seal. In dev mode the node is always open (a key file is its root of
//! trust). In production it starts **uninitialized** (no seal file: `coffer operator init`
//! splits a new root key into shares) or **sealed**: no key is in memory, and every request but
//! `/healthz`, `/operator/status`, `/operator/init` and `/operator/unseal` is answered 503
//! `VaultSealed`. `threshold` shares, in any order, rebuild the root key; the node then opens
//! the application over it. `coffer operator seal` (a tenant administrator) drops the
//! application, its caches of opened keys and the root key.
//!
//! While sealed nothing can be audited (the audit log's checkpoint key is sealed under the root
//! key): unseal attempts go to the server's log, never a share, and each unseal is the first
//! audit record of the application it opens (`OperatorUnseal`). The operator endpoints and
//! the sealed answer are `endpoints`.
mod endpoints;
mod rotation;

pub use endpoints::router;
use endpoints::{InitRequest, InitResponse, RekeyRequest, RekeyResponse, UnsealRequest};

use std::sync::{Arc, RwLock, Weak};

use axum::Router;
use coffer_core::{Clock, Error};
use coffer_crypto::pkcs11::{Pkcs11Root, RootKey};
use coffer_crypto::root::{MemoryRoot, RootOfTrust};
use coffer_crypto::seal::DataKey;
use coffer_store::Store;
use zeroize::Zeroizing;

use crate::app::{Parts, assemble, build_app};
use crate::config::{PublicNames, ServerConfig};
use crate::seal::{SealFile, SealStatus, Sealer, UnsealError, UnsealProgress};
use crate::state::SharedState;

/// The application the node serves while open.
struct Running {
    state: SharedState,
    app: Router,
    jobs: tokio::task::JoinHandle<()>,
    /// The Shamir root (`None` in dev mode).
    root: Option<Arc<MemoryRoot>>,
}

enum Phase {
    Uninitialized,
    Sealed(UnsealProgress),
    Open(Running),
}

/// One server process: its seal and, when open, its application.
pub struct Node {
    config: ServerConfig,
    clock: Arc<dyn Clock>,
    names: PublicNames,
    store: Arc<dyn Store>,
    metrics: Arc<crate::metrics::Metrics>,
    /// `None` in dev mode.
    seal: RwLock<Option<SealFile>>,
    phase: RwLock<Phase>,
    /// Init, unseal, seal, rekey and root rotation, one at a time.
    transition: tokio::sync::Mutex<()>,
    /// A Shamir root rotation waiting for its new shares (`rotate-root --verify`).
    pending_rotation: std::sync::Mutex<Option<rotation::PendingRotation>>,
    /// Root rotations committed (the grace period of one ends only if no other came since).
    rotations: std::sync::atomic::AtomicU64,
    /// The PKCS#11 token holding the root key (`None` with Shamir and in dev mode).
    token: Option<Token>,
    me: Weak<Node>,
}

/// Where a PKCS#11 root key is, the PIN, and the opened token.
struct Token {
    config: crate::config::Pkcs11Config,
    pin: Zeroizing<String>,
    root: std::sync::Mutex<Option<Arc<Pkcs11Root>>>,
}

impl Token {
    /// The opened token (opened now if needed).
    fn root(&self, key: RootKey, seal: Option<&SealFile>) -> Result<Arc<Pkcs11Root>, Error> {
        let mut slot = self.root.lock().map_err(|_| Error::internal("token state"))?;
        if let Some(r) = slot.as_ref() {
            return Ok(r.clone());
        }
        let opened = crate::seal::open_token(&self.config, self.pin.clone(), key, seal)
            .map_err(|e| Error::unavailable("HsmUnavailable", e.to_string()))?;
        let opened = Arc::new(opened);
        *slot = Some(opened.clone());
        Ok(opened)
    }
}

/// A handle the application seals through (the application does not own the node).
struct NodeSealer(Weak<Node>);

impl std::fmt::Debug for NodeSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NodeSealer")
    }
}

#[async_trait::async_trait]
impl Sealer for NodeSealer {
    async fn seal(&self) -> SealStatus {
        match self.0.upgrade() {
            Some(node) => node.seal().await,
            None => SealStatus { sealed: true, ..SealStatus::dev() },
        }
    }
    fn status(&self) -> SealStatus {
        self.0.upgrade().map(|n| n.status()).unwrap_or_else(SealStatus::dev)
    }
}

pub(super) fn sealed_error() -> Error {
    Error::unavailable(
        "VaultSealed",
        "This Coffer is sealed: an operator must unseal it (`coffer operator unseal`) before it serves requests.",
    )
}

pub(super) fn uninitialized_error() -> Error {
    Error::unavailable(
        "VaultNotInitialized",
        "This Coffer is not initialized: an operator must run `coffer operator init` first.",
    )
}

impl Node {
    /// A dev node: the application opened from the data directory, never sealed.
    pub fn dev(config: ServerConfig, opened: crate::app::Opened) -> Arc<Node> {
        let state = opened.state;
        let running = Running {
            app: build_app(state.clone()),
            jobs: crate::jobs::spawn(state.clone()),
            state: state.clone(),
            root: None,
        };
        Arc::new_cyclic(|me| Node {
            config,
            clock: state.clock.clone(),
            names: state.names.clone(),
            store: state.store.clone(),
            metrics: state.metrics.clone(),
            seal: RwLock::new(None),
            phase: RwLock::new(Phase::Open(running)),
            transition: Default::default(),
            pending_rotation: Default::default(),
            rotations: Default::default(),
            token: None,
            me: me.clone(),
        })
    }

    /// A production node over its data directory: uninitialized or sealed.
    pub async fn production(config: ServerConfig, clock: Arc<dyn Clock>, port: u16) -> anyhow::Result<Arc<Node>> {
        let dir = &config.data_dir;
        coffer_store::private_files::create_dir(dir)?;
        coffer_store::private_files::restrict_data_dir(dir)?;
        let metrics = Arc::new(crate::metrics::Metrics::default());
        let store = crate::app::open_store(dir, &metrics).await?;
        // A seal migration stopped half-way is finished (or thrown away) first.
        crate::migration::finish_or_roll_back(dir, store.as_ref()).await?;
        if dir.join("root.key").exists() {
            anyhow::bail!(
                "{} holds a dev root key (root.key): it is a dev data directory; run it with --dev, move it to this seal with `coffer operator migrate-seal`, or start production mode on an empty data directory",
                dir.display()
            );
        }
        let seal = SealFile::read(dir)?;
        let names = PublicNames {
            host: config.public_host.clone(),
            dns_suffix: config.dns_suffix.clone(),
            port: config.public_port.unwrap_or(port),
        };
        let token = match &config.seal {
            crate::config::SealConfig::Shamir => None,
            crate::config::SealConfig::Pkcs11(p) => {
                Some(Token { config: p.clone(), pin: crate::seal::read_pin(p)?, root: Default::default() })
            }
        };
        let wanted = if token.is_some() { "pkcs11" } else { "shamir" };
        if let Some(s) = &seal
            && s.provider != wanted
        {
            anyhow::bail!(
                "{} was initialized with the {} seal and the configuration says {wanted}: moving between seals is not available in this version",
                dir.display(),
                s.provider
            );
        }
        let phase = if seal.is_some() { Phase::Sealed(UnsealProgress::default()) } else { Phase::Uninitialized };
        let auto_unseal = token.is_some() && seal.is_some();
        let node = Arc::new_cyclic(|me| Node {
            config,
            clock,
            names,
            store,
            metrics,
            seal: RwLock::new(seal),
            phase: RwLock::new(phase),
            transition: Default::default(),
            pending_rotation: Default::default(),
            rotations: Default::default(),
            token,
            me: me.clone(),
        });
        // A PKCS#11 root: the server unseals itself; a wrong PIN or a missing key stops the start.
        if auto_unseal {
            node.unseal(UnsealRequest::default()).await.map_err(|e| anyhow::anyhow!("{}", e.message))?;
        }
        Ok(node)
    }

    /// The open application's state, if it is open.
    pub fn state(&self) -> Option<SharedState> {
        match &*self.phase.read().ok()? {
            Phase::Open(r) => Some(r.state.clone()),
            _ => None,
        }
    }

    fn app(&self) -> Option<Router> {
        match &*self.phase.read().ok()? {
            Phase::Open(r) => Some(r.app.clone()),
            _ => None,
        }
    }

    pub fn status(&self) -> SealStatus {
        let seal = self.seal.read().ok().and_then(|s| s.clone());
        let Some(seal) = seal else {
            return match self.phase.read().map(|p| matches!(*p, Phase::Uninitialized)) {
                Ok(true) => SealStatus {
                    sealed: true,
                    initialized: false,
                    threshold: 0,
                    shares: 0,
                    progress: 0,
                    provider: if self.token.is_some() { "pkcs11" } else { "shamir" }.into(),
                },
                _ => SealStatus::dev(),
            };
        };
        let (sealed, progress) = match self.phase.read().as_deref() {
            Ok(Phase::Open(_)) => (false, 0),
            Ok(Phase::Sealed(p)) => (true, p.count()),
            _ => (true, 0),
        };
        SealStatus {
            sealed,
            initialized: true,
            threshold: seal.threshold,
            shares: seal.shares,
            progress,
            provider: seal.provider.clone(),
        }
    }

    /// Signs the audit chain's head of the open application (at shutdown).
    pub async fn checkpoint(&self) {
        if let Some(state) = self.state()
            && let Err(e) = state.audit.checkpoint().await
        {
            tracing::warn!(target: "coffer::audit", error = %e, "no checkpoint");
        }
    }

    /// Seals: the jobs stop, the caches of opened keys and the root key are dropped. A dev
    /// node has no seal and stays open.
    pub async fn seal(&self) -> SealStatus {
        let _one = self.transition.lock().await;
        let has_seal = self.seal.read().map(|s| s.is_some()).unwrap_or(false);
        if !has_seal {
            return self.status();
        }
        let previous = match self.phase.write() {
            Ok(mut phase) => match std::mem::replace(&mut *phase, Phase::Sealed(UnsealProgress::default())) {
                Phase::Open(running) => Some(running),
                other => {
                    *phase = other;
                    None
                }
            },
            Err(_) => None,
        };
        if let Some(running) = previous {
            running.jobs.abort();
            if let Err(e) = running.state.audit.checkpoint().await {
                tracing::warn!(target: "coffer::audit", error = %e, "no checkpoint at seal");
            }
            running.state.keyring.forget_all();
            running.state.key_materials.clear();
            if let Some(root) = &running.root {
                root.forget();
            }
            tracing::info!(target: "coffer::seal", "sealed: the root key and every opened key are dropped");
        }
        self.status()
    }

    async fn init(&self, ask: InitRequest) -> Result<InitResponse, Error> {
        let _one = self.transition.lock().await;
        if !matches!(self.phase.read().as_deref(), Ok(Phase::Uninitialized)) {
            return Err(Error::bad_parameter("This Coffer is already initialized."));
        }
        let (shares, threshold) =
            crate::seal::check_split(ask.key_shares.unwrap_or(5), ask.key_threshold.unwrap_or(3))?;
        let unavailable = |e: anyhow::Error| Error::unavailable("InitializationFailed", e.to_string());
        // A database without a seal file: an initialization that stopped before its seal file
        // was written (its shares were never shown) is done again; one with vaults lost its
        // seal file, and a new root key would open none of them.
        for tenant in self.store.list_tenants().await? {
            if !self.store.list_vaults(&tenant.id).await?.is_empty() {
                return Err(Error::conflict(
                    None,
                    "The data directory holds vaults but no seal file (seal.json): restore it from your backup; a new initialization could open none of them.",
                ));
            }
        }
        // Shamir splits the root key itself; with PKCS#11 the root key stays in the token and
        // a recovery key is split instead (for the operations that need a quorum: rekey).
        let split_key = DataKey::generate();
        let (mut seal, texts) = SealFile::split(&split_key, shares, threshold).map_err(unavailable)?;
        let token_root = match &self.token {
            Some(token) => {
                let root = token.root(RootKey::CreateIfMissing, None)?;
                seal = seal.with_root_check(root.as_ref()).map_err(unavailable)?;
                Some(root)
            }
            None => None,
        };
        drop(split_key);
        let now = self.clock.now();
        let tenant = crate::dev_bootstrap::ensure_tenant(self.store.as_ref(), now).await.map_err(unavailable)?;
        let admin = crate::dev_bootstrap::new_admin_application(self.store.as_ref(), &tenant, "coffer-admin", now)
            .await
            .map_err(unavailable)?;
        let secret = crate::dev_bootstrap::add_client_secret(self.store.as_ref(), &admin.object_id, now)
            .await
            .map_err(unavailable)?;
        // The seal file last: until it exists the node is not initialized.
        seal.write(&self.config.data_dir).map_err(unavailable)?;
        if let Ok(mut s) = self.seal.write() {
            *s = Some(seal.clone());
        }
        if let Ok(mut phase) = self.phase.write() {
            *phase = Phase::Sealed(UnsealProgress::default());
        }
        let (shares_out, recovery_shares) = match token_root {
            Some(root) => {
                self.open_with_root(root, None, "unsealed by the PKCS#11 token at initialization").await?;
                tracing::info!(target: "coffer::seal", shares, threshold, "initialized with the PKCS#11 root key; unsealed");
                (None, Some(texts))
            }
            None => {
                tracing::info!(target: "coffer::seal", shares, threshold, "initialized; sealed until unsealed");
                (Some(texts), None)
            }
        };
        Ok(InitResponse {
            shares: shares_out,
            recovery_shares,
            threshold: seal.threshold,
            tenant_id: tenant.id,
            client_id: admin.client_id.unwrap_or_default(),
            client_secret: secret,
            object_id: admin.object_id,
            server: self.names.authority(),
        })
    }

    async fn unseal(&self, ask: UnsealRequest) -> Result<SealStatus, Error> {
        let _one = self.transition.lock().await;
        let seal = self.seal.read().ok().and_then(|s| s.clone());
        let Some(seal) = seal else {
            return Err(uninitialized_error());
        };
        if let Some(token) = &self.token {
            if !matches!(self.phase.read().as_deref(), Ok(Phase::Sealed(_))) {
                return Ok(self.status());
            }
            let root = token.root(RootKey::MustExist, Some(&seal))?;
            match seal.root_opens(root.as_ref()) {
                Ok(true) => {
                    // The old root key of a rotation cut short, or the new key of one that did
                    // not commit, goes now.
                    match root.destroy_other_root_keys() {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(target: "coffer::seal", "{n} unused root keys destroyed in the token"),
                        Err(e) => tracing::warn!(target: "coffer::seal", error = %e, "unused root keys not destroyed"),
                    }
                }
                Ok(false) => {
                    return Err(Error::unavailable(
                        "WrongRootKey",
                        "The PKCS#11 key is not the root key this Coffer was initialized with (another token or key label?).",
                    ));
                }
                Err(e) => return Err(e.into()),
            }
            self.open_with_root(root, None, "unsealed by the PKCS#11 token").await?;
            tracing::info!(target: "coffer::seal", "unsealed by the PKCS#11 token");
            return Ok(self.status());
        }
        let rebuilt = {
            let mut phase = self.phase.write().map_err(|_| Error::internal("seal state"))?;
            let Phase::Sealed(progress) = &mut *phase else {
                return Ok(self.status_after(phase));
            };
            if ask.reset {
                progress.reset();
                None
            } else {
                let share = ask.key.as_ref().map(|k| k.as_str()).unwrap_or("");
                match progress.submit(&seal, share) {
                    Ok(key) => key,
                    Err(e) => return Err(share_refused(e)),
                }
            }
        };
        if let Some(key) = rebuilt {
            let root = Arc::new(MemoryRoot::new(key, self.config.data_dir.join("keys"), "shamir"));
            self.open_with_root(root.clone(), Some(root), "unsealed with the key shares").await?;
            tracing::info!(target: "coffer::seal", "unsealed");
        }
        Ok(self.status())
    }

    /// A new split of the same root key, from `threshold` current shares: written as pending,
    /// its shares returned; the current shares stay valid until `rekey_verify`.
    async fn rekey(&self, ask: RekeyRequest) -> Result<RekeyResponse, Error> {
        let _one = self.transition.lock().await;
        let state = self.state().ok_or_else(sealed_error)?;
        let seal = self.seal.read().ok().and_then(|s| s.clone()).ok_or_else(uninitialized_error)?;
        let (shares, threshold) =
            crate::seal::check_split(ask.key_shares.unwrap_or(5), ask.key_threshold.unwrap_or(3))?;
        let root = crate::seal::rebuild(&seal, &ask.keys).map_err(share_refused)?;
        let unavailable = |e: anyhow::Error| Error::unavailable("RekeyFailed", e.to_string());
        let (mut next, texts) = SealFile::split(&root, shares, threshold).map_err(unavailable)?;
        if seal.root_check.is_some() {
            next = next.with_root_check(state.keyring.root()).map_err(unavailable)?;
        }
        next.write_next(&self.config.data_dir).map_err(unavailable)?;
        let why = format!("rekey started: {threshold} of {shares} new shares, pending their verification");
        crate::system::record(&state, "OperatorRekey", None, None, &why).await?;
        Ok(RekeyResponse { shares: texts, threshold, verified: false })
    }

    /// Threshold shares of the pending split: it becomes the seal, the old shares stop working.
    async fn rekey_verify(&self, ask: RekeyRequest) -> Result<RekeyResponse, Error> {
        let _one = self.transition.lock().await;
        let state = self.state().ok_or_else(sealed_error)?;
        let next = SealFile::read_next(&self.config.data_dir)
            .map_err(|e| Error::unavailable("RekeyFailed", e.to_string()))?
            .ok_or_else(|| Error::bad_parameter("No rekey is pending: run `coffer operator rekey` first."))?;
        crate::seal::rebuild(&next, &ask.keys).map_err(share_refused)?;
        SealFile::promote_next(&self.config.data_dir).map_err(|e| Error::unavailable("RekeyFailed", e.to_string()))?;
        if let Ok(mut s) = self.seal.write() {
            *s = Some(next.clone());
        }
        let why = format!("rekey verified: {} of {} shares now unseal", next.threshold, next.shares);
        crate::system::record(&state, "OperatorRekey", None, None, &why).await?;
        Ok(RekeyResponse { shares: Vec::new(), threshold: next.threshold, verified: true })
    }

    fn status_after(&self, phase: std::sync::RwLockWriteGuard<'_, Phase>) -> SealStatus {
        drop(phase);
        self.status()
    }

    /// Opens the application over the root of trust (`memory`: the Shamir root, forgotten
    /// if the opening fails and at seal).
    async fn open_with_root(
        &self,
        root: Arc<dyn RootOfTrust>,
        memory: Option<Arc<MemoryRoot>>,
        why: &str,
    ) -> Result<(), Error> {
        let forget = || {
            if let Some(m) = &memory {
                m.forget();
            }
        };
        let sealer: Arc<dyn Sealer> = Arc::new(NodeSealer(self.me.clone()));
        let state = assemble(Parts {
            config: &self.config,
            clock: self.clock.clone(),
            dev_clock: None,
            names: self.names.clone(),
            store: self.store.clone(),
            metrics: self.metrics.clone(),
            root,
            sealer: Some(sealer),
        })
        .await
        .map_err(|e| {
            forget();
            Error::unavailable("UnsealFailed", format!("the root key is right, but the server could not open: {e}"))
        })?;
        if let Err(e) = crate::system::record(&state, "OperatorUnseal", None, None, why).await {
            forget();
            return Err(e);
        }
        // The first open after a seal migration records it (the migration ran offline).
        if let Some(note) = self.store.get_meta(crate::migration::DONE_NOTE).await? {
            let text = String::from_utf8_lossy(&note).into_owned();
            crate::system::record(&state, "OperatorMigrateSeal", None, None, &text).await?;
            self.store.delete_meta(crate::migration::DONE_NOTE).await?;
        }
        let running =
            Running { app: build_app(state.clone()), jobs: crate::jobs::spawn(state.clone()), state, root: memory };
        if let Ok(mut phase) = self.phase.write() {
            *phase = Phase::Open(running);
        }
        Ok(())
    }
}

/// A refused share as Azure's error (400), logged without the share.
pub(super) fn share_refused(e: UnsealError) -> Error {
    tracing::warn!(target: "coffer::seal", "key share refused: {e}");
    let code = match e {
        UnsealError::WrongKey => "WrongKeyShares",
        UnsealError::SealFile(_) => return Error::unavailable("SealFileDamaged", e.to_string()),
        _ => "InvalidKeyShare",
    };
    Error::new(coffer_core::ErrorKind::BadRequest, code, e.to_string())
}
