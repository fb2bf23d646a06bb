//! The audit log's settings (`coffer serve --audit-*`).
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use zeroize::Zeroizing;

/// How the audit log is set up (`coffer serve --audit-*`).
#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// Off only for benchmarks in dev mode (`--dev --audit-disabled`).
    pub enabled: bool,
    pub file: Option<FileSinkConfig>,
    /// Records older than this are purged (after a signed checkpoint).
    pub retention_days: u32,
    /// `udp:HOST:PORT` or `unix:/dev/log`: a copy of each record, best effort.
    pub syslog: Option<String>,
    /// How long a request waits for its record to be written before it gets a 503.
    pub write_timeout: Duration,
    pub checkpoint_every: u64,
    pub checkpoint_interval: Duration,
    pub webhook: Option<WebhookConfig>,
    /// Whether other writers (nodes sharing the database) append to the same chain. Then a
    /// batch that finds its seq taken is sealed again after the store's head. Otherwise this
    /// writer is the chain's only one, and a record it did not write is someone tampering with
    /// the store: the log refuses to continue after it, and says so.
    pub shared_chain: bool,
}

impl AuditConfig {
    pub fn in_dir(dir: &std::path::Path) -> Self {
        Self {
            enabled: true,
            file: Some(FileSinkConfig {
                path: dir.join("audit").join("audit.log"),
                max_bytes: 100 << 20,
                max_files: 10,
            }),
            retention_days: 365,
            syslog: None,
            write_timeout: Duration::from_secs(5),
            checkpoint_every: 1000,
            checkpoint_interval: Duration::from_secs(60),
            webhook: None,
            shared_chain: false,
        }
    }
}

/// The audit file sink: where, and when it rotates.
#[derive(Debug, Clone)]
pub struct FileSinkConfig {
    pub path: PathBuf,
    /// Rotate once the file is larger than this.
    pub max_bytes: u64,
    /// Rotated files kept (`path.1` … `path.N`); older ones are deleted.
    pub max_files: usize,
}

/// Where events are POSTed, signed with HMAC-SHA256 under `secret`.
#[derive(Clone)]
pub struct WebhookConfig {
    pub url: String,
    pub secret: Arc<Zeroizing<String>>,
    /// Deliveries tried at most this many times (backoff 1 s, 2 s, 4 s, …).
    pub attempts: u32,
    pub first_backoff: Duration,
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &self.url)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}
