//! Server settings, the audit log's among them (the audit module reads them; this module
//! imports nothing of the server's above it).
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use zeroize::Zeroizing;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// Vaults live at `{name}.{dns_suffix}`; Azure's is `vault.azure.net`.
    pub dns_suffix: String,
    /// Dev mode: a key file as root of trust, a generated CA, an administrator application.
    pub dev: bool,
    /// The port clients use, when it differs from the listening port (behind a proxy).
    pub public_port: Option<u16>,
    pub audit: AuditConfig,
    /// Serve `/metrics` without a token (for a Prometheus scraper on a trusted network).
    pub metrics_unauthenticated: bool,
    /// Time and count limits on connections and requests (slow clients, floods).
    pub limits: crate::connections::ConnectionLimits,
}

impl ServerConfig {
    pub fn dev(data_dir: PathBuf, listen: SocketAddr) -> Self {
        let audit = AuditConfig::in_dir(&data_dir);
        Self {
            data_dir,
            listen,
            dns_suffix: "vault.localhost".into(),
            dev: true,
            public_port: None,
            audit,
            metrics_unauthenticated: false,
            limits: Default::default(),
        }
    }
}

/// Names and URLs derived from the configuration and the port actually listened on.
#[derive(Debug, Clone)]
pub struct PublicNames {
    pub dns_suffix: String,
    pub port: u16,
}

impl PublicNames {
    /// `:8443`, or nothing on 443.
    pub fn port_suffix(&self) -> String {
        if self.port == 443 { String::new() } else { format!(":{}", self.port) }
    }
    /// The identity provider, management API and portal: `https://localhost:8443`.
    pub fn authority(&self) -> String {
        format!("https://localhost{}", self.port_suffix())
    }
    /// The data-plane token audience: `https://vault.localhost:8443`.
    pub fn vault_resource(&self) -> String {
        format!("https://{}{}", self.dns_suffix, self.port_suffix())
    }
    /// The management token audience (Azure Resource Manager's role).
    pub fn management_resource(&self) -> String {
        self.authority()
    }
    pub fn issuer(&self, tenant_id: &str) -> String {
        format!("{}/{tenant_id}/v2.0", self.authority())
    }
    pub fn vault_uri(&self, vault_name: &str) -> String {
        format!("https://{}.{}{}/", vault_name.to_ascii_lowercase(), self.dns_suffix, self.port_suffix())
    }
}

// ---- The audit log's settings (the audit module, above, reads them) ----

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
