//! Shared server state handed to every handler.
use std::sync::Arc;

use coffer_core::Clock;
use coffer_crypto::seal::DataKey;
use coffer_store::Store;

use crate::config::PublicNames;
use crate::keyring::Keyring;
use crate::tokens::TokenService;

#[derive(Debug)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub keyring: Keyring,
    pub tokens: TokenService,
    pub names: PublicNames,
    /// Seals backup blobs; instance-wide so a backup restores into any vault of this Coffer.
    pub backup_key: DataKey,
    /// Failed sign-ins, per principal name and per address (in memory, per node).
    pub throttle: crate::sign_in::Throttle,
    /// Client assertions already redeemed (`jti`), until they expire (in memory, per node).
    pub seen_assertions: crate::sign_in::SeenAssertions,
    /// Request and audit counters for `/metrics`.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// `/metrics` needs no token (`--metrics-unauthenticated`).
    pub metrics_unauthenticated: bool,
    /// Portal sign-ins (in memory, per node).
    pub sessions: crate::sessions::Sessions,
    /// The audit log: every request's record goes through it.
    pub audit: crate::audit::AuditLog,
    /// Key material lately opened and parsed (saves unsealing and RSA key checks).
    pub key_materials: crate::key_cache::MaterialCache,
    /// Connection and request limits (`build_app` applies the request ones).
    pub limits: crate::connections::ConnectionLimits,
    /// Requests being served now, against `limits.max_in_flight`.
    pub in_flight: crate::connections::InFlight,
    /// Held while the jobs run (`jobs::run_once`): the scheduler's run and an operator's
    /// (`dev advance-time`) never act on one due item twice in this process. (Across nodes
    /// the store's atomic claims, and for renewals and rotations a lease, are needed.)
    pub jobs_running: tokio::sync::Mutex<()>,
    /// Seals the running server (a production node); `None` in dev mode, which has no seal.
    pub sealer: Option<Arc<dyn crate::seal::Sealer>>,
    /// Dev mode's movable clock (the same clock as `clock`); `None` outside dev mode.
    pub dev_clock: Option<Arc<coffer_core::clock::OffsetClock>>,
}

pub type SharedState = Arc<AppState>;
