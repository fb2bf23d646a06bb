//! Server settings (the audit log's own are `coffer_audit::config`).
use std::net::SocketAddr;
use std::path::PathBuf;

pub use coffer_audit::config::{AuditConfig, FileSinkConfig, WebhookConfig};

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// Vaults live at `{name}.{dns_suffix}`; Azure's is `vault.azure.net`.
    pub dns_suffix: String,
    /// Dev mode: a key file as root of trust, a generated CA, an administrator application.
    pub dev: bool,
    /// The host clients use for the identity provider, management API and portal
    /// (`public_url`); `localhost` by default.
    pub public_host: String,
    /// The port clients use, when it differs from the listening port (behind a proxy).
    pub public_port: Option<u16>,
    pub audit: AuditConfig,
    /// Serve `/metrics` without a token (for a Prometheus scraper on a trusted network).
    pub metrics_unauthenticated: bool,
    /// Time and count limits on connections and requests (slow clients, floods).
    pub limits: crate::connections::ConnectionLimits,
    /// The server's certificate and key (PEM files); `None`: dev mode's own CA.
    pub tls: Option<TlsConfig>,
    /// The root of trust of a production server (dev mode: its key file).
    pub seal: SealConfig,
}

/// Where a production server's root key is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SealConfig {
    /// Only in memory, rebuilt from key shares at each unseal.
    Shamir,
    /// A non-extractable key in a PKCS#11 token.
    Pkcs11(Pkcs11Config),
}

/// The token that holds the root key; the PIN is read from `pin_file` or `COFFER_SEAL_PIN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pkcs11Config {
    pub module: PathBuf,
    pub token_label: String,
    pub key_label: String,
    pub pin_file: Option<PathBuf>,
}

/// The server's TLS certificate chain and key, as PEM files (reloaded on SIGHUP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

impl ServerConfig {
    pub fn dev(data_dir: PathBuf, listen: SocketAddr) -> Self {
        let audit = AuditConfig::in_dir(&data_dir);
        Self {
            data_dir,
            listen,
            dns_suffix: "vault.localhost".into(),
            dev: true,
            public_host: "localhost".into(),
            public_port: None,
            audit,
            metrics_unauthenticated: false,
            limits: Default::default(),
            tls: None,
            seal: SealConfig::Shamir,
        }
    }
}

/// Names and URLs derived from the configuration and the port actually listened on.
#[derive(Debug, Clone)]
pub struct PublicNames {
    /// The bare host: `localhost`, or `public_url`'s host.
    pub host: String,
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
        format!("https://{}{}", self.host, self.port_suffix())
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
