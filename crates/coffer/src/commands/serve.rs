//! `coffer serve`.
use std::net::SocketAddr;
use std::path::PathBuf;

use coffer_server::ServerConfig;

use crate::client::{CliError, CliResult};

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Development mode: a key file as root of trust, a generated CA and an administrator application.
    #[arg(long)]
    dev: bool,
    /// Where the database, keys and TLS files live.
    #[arg(long, default_value = "./coffer-data")]
    data_dir: PathBuf,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// Vaults are served at {name}.{dns-suffix}.
    #[arg(long, default_value = "vault.localhost")]
    dns_suffix: String,
    #[command(flatten)]
    audit: AuditArgs,
    /// Serve /metrics (Prometheus) without a token, for a scraper on a trusted network.
    #[arg(long)]
    metrics_unauthenticated: bool,
    #[command(flatten)]
    limits: LimitArgs,
}

/// What one client may hold: deadlines for slow clients, bounds for floods.
#[derive(clap::Args)]
struct LimitArgs {
    /// Seconds a client has for its TLS handshake.
    #[arg(long, default_value_t = 10)]
    tls_handshake_timeout_secs: u64,
    /// Seconds a client has to send a request head (and that an idle connection stays open).
    #[arg(long, default_value_t = 15)]
    request_header_timeout_secs: u64,
    /// Seconds a client has to send a request body (408 after).
    #[arg(long, default_value_t = 60)]
    request_body_timeout_secs: u64,
    /// Connections open at once; more are closed when accepted.
    #[arg(long, default_value_t = 4096)]
    max_connections: usize,
    /// Requests served at once; more are answered 503 ServerBusy.
    #[arg(long, default_value_t = 1024)]
    max_in_flight: usize,
}

impl LimitArgs {
    fn limits(&self) -> coffer_server::connections::ConnectionLimits {
        let secs = |s: u64| std::time::Duration::from_secs(s.max(1));
        coffer_server::connections::ConnectionLimits {
            handshake_timeout: secs(self.tls_handshake_timeout_secs),
            header_timeout: secs(self.request_header_timeout_secs),
            body_timeout: secs(self.request_body_timeout_secs),
            max_connections: self.max_connections.max(1),
            max_in_flight: self.max_in_flight.max(1),
        }
    }
}

/// The audit log's sinks, retention and events.
#[derive(clap::Args)]
struct AuditArgs {
    /// The JSON-lines audit file (default DATA_DIR/audit/audit.log); `none` for no file sink.
    #[arg(long)]
    audit_file: Option<String>,
    /// Rotate the audit file when it is larger than this many bytes.
    #[arg(long, default_value_t = 100 << 20)]
    audit_file_max_bytes: u64,
    /// Rotated audit files kept (audit.log.1 … audit.log.N).
    #[arg(long, default_value_t = 10)]
    audit_file_max_files: usize,
    /// Audit records older than this are purged from the store (after a signed checkpoint).
    #[arg(long, default_value_t = 365)]
    audit_retention_days: u32,
    /// Also send each record to syslog: udp:HOST:PORT or unix:/dev/log (best effort).
    #[arg(long)]
    audit_syslog: Option<String>,
    /// How long a request waits for its audit record before it is refused with 503.
    #[arg(long, default_value_t = 5000)]
    audit_write_timeout_ms: u64,
    /// Sign a checkpoint after this many records (and at least every minute).
    #[arg(long, default_value_t = 1000)]
    audit_checkpoint_every: u64,
    /// Run without an audit log. Dev mode only, for benchmarks: nothing is recorded.
    #[arg(long)]
    audit_disabled: bool,
    /// POST events (near expiry, expired, new versions) to this URL, in Event Grid's schema.
    #[arg(long)]
    events_webhook: Option<String>,
    /// The HMAC-SHA256 key for `X-Coffer-Signature`, read from this file.
    #[arg(long, env = "COFFER_EVENTS_WEBHOOK_SECRET_FILE")]
    events_webhook_secret_file: Option<PathBuf>,
}

impl AuditArgs {
    fn config(self, data_dir: &std::path::Path, dev: bool) -> CliResult<coffer_audit::AuditConfig> {
        let mut c = coffer_audit::AuditConfig::in_dir(data_dir);
        if self.audit_disabled && !dev {
            return Err(CliError::Usage("--audit-disabled exists only with --dev (for benchmarks)".into()));
        }
        c.enabled = !self.audit_disabled;
        c.file = match self.audit_file.as_deref() {
            Some("none") => None,
            Some(p) => c.file.map(|f| coffer_audit::FileSinkConfig { path: PathBuf::from(p), ..f }),
            None => c.file,
        };
        if let Some(f) = c.file.as_mut() {
            f.max_bytes = self.audit_file_max_bytes;
            f.max_files = self.audit_file_max_files;
        }
        if self.audit_retention_days == 0 {
            return Err(CliError::Usage("--audit-retention-days must be at least 1".into()));
        }
        c.retention_days = self.audit_retention_days;
        c.syslog = self.audit_syslog;
        c.write_timeout = std::time::Duration::from_millis(self.audit_write_timeout_ms.max(1));
        c.checkpoint_every = self.audit_checkpoint_every.max(1);
        c.webhook = match (self.events_webhook, self.events_webhook_secret_file) {
            (None, _) => None,
            (Some(_), None) => {
                return Err(CliError::Usage(
                    "--events-webhook needs --events-webhook-secret-file (the HMAC key)".into(),
                ));
            }
            (Some(url), Some(path)) => {
                match reqwest::Url::parse(&url) {
                    Ok(u) if matches!(u.scheme(), "http" | "https") => {}
                    _ => return Err(CliError::Usage(format!("--events-webhook '{url}' is not an http(s) URL"))),
                }
                let secret = std::fs::read_to_string(&path)
                    .map_err(|e| CliError::Usage(format!("reading {}: {e}", path.display())))?;
                let secret = zeroize::Zeroizing::new(secret.trim().to_string());
                if secret.is_empty() {
                    return Err(CliError::Usage("the webhook secret file is empty".into()));
                }
                Some(coffer_audit::WebhookConfig {
                    url,
                    secret: std::sync::Arc::new(secret),
                    attempts: 5,
                    first_backoff: std::time::Duration::from_secs(1),
                })
            }
        };
        Ok(c)
    }
}

pub async fn run(args: ServeArgs) -> CliResult<()> {
    // Every field is written with its control characters escaped: a user name with a newline
    // or an ANSI escape (a failed sign-in logs what was claimed) cannot forge a log line.
    let fields = tracing_subscriber::fmt::format::debug_fn(|w, field, value| {
        let text = format!("{value:?}");
        let safe = coffer_core::names::escape_controls(&text);
        if field.name() == "message" { write!(w, "{safe}") } else { write!(w, "{field}={safe}") }
    });
    let _ = tracing_subscriber::fmt()
        .fmt_fields(tracing_subscriber::field::MakeExt::delimited(fields, " "))
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("COFFER_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    if !args.dev {
        return Err(CliError::Usage(
            "only dev mode is available so far: run `coffer serve --dev` (a key file in the data directory is the root of trust)".into(),
        ));
    }
    let audit = args.audit.config(&args.data_dir, args.dev)?;
    let config = ServerConfig {
        dns_suffix: args.dns_suffix,
        public_port: None,
        audit,
        metrics_unauthenticated: args.metrics_unauthenticated,
        limits: args.limits.limits(),
        ..ServerConfig::dev(args.data_dir, args.listen)
    };
    let server = coffer_server::start(config, None).await?;
    if let Some(c) = &server.credentials {
        print!("{}", coffer_server::dev_bootstrap::export_lines(c));
    }
    tracing::info!(addr = %server.addr, "Coffer is listening");
    wait_for_signal().await;
    tracing::info!("shutting down");
    server.shutdown();
    server.wait().await?;
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
