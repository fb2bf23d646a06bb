//! `coffer serve`.
use std::path::PathBuf;

use crate::client::{CliError, CliResult};

/// `coffer serve`: every setting is a key of `coffer_server::config_file::KEYS`; a flag given
/// here wins over `COFFER_…` in the environment, which wins over the configuration file.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// Development mode: a key file as root of trust, a generated CA and an administrator application.
    #[arg(long)]
    dev: bool,
    /// The configuration file (TOML); see `coffer serve --config-reference`.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Print the configuration reference (Markdown) and exit.
    #[arg(long)]
    config_reference: bool,
    /// Where the database, keys and TLS files live (default ./coffer-data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1:8443; port 0 picks a free port).
    #[arg(long)]
    listen: Option<String>,
    /// Vaults are served at {name}.{dns-suffix} (default vault.localhost).
    #[arg(long)]
    dns_suffix: Option<String>,
    #[command(flatten)]
    audit: AuditArgs,
    /// Serve /metrics (Prometheus) without a token, for a scraper on a trusted network.
    #[arg(long)]
    metrics_unauthenticated: bool,
    /// Lock every page of the server in memory (mlockall): no key reaches swap. Needs
    /// CAP_IPC_LOCK or a large enough RLIMIT_MEMLOCK.
    #[arg(long)]
    mlock: bool,
    #[command(flatten)]
    limits: LimitArgs,
}

/// What one client may hold: deadlines for slow clients, bounds for floods.
#[derive(clap::Args)]
struct LimitArgs {
    /// Seconds a client has for its TLS handshake (default 10).
    #[arg(long)]
    tls_handshake_timeout_secs: Option<u64>,
    /// Seconds a client has to send a request head, and that an idle connection stays open (default 15).
    #[arg(long)]
    request_header_timeout_secs: Option<u64>,
    /// Seconds a client has to send a request body; 408 after (default 60).
    #[arg(long)]
    request_body_timeout_secs: Option<u64>,
    /// Connections open at once; more are closed when accepted (default 4096).
    #[arg(long)]
    max_connections: Option<usize>,
    /// Requests served at once; more are answered 503 ServerBusy (default 1024).
    #[arg(long)]
    max_in_flight: Option<usize>,
}

/// The audit log's sinks, retention and events.
#[derive(clap::Args)]
struct AuditArgs {
    /// The JSON-lines audit file (default DATA_DIR/audit/audit.log); `none` for no file sink.
    #[arg(long)]
    audit_file: Option<String>,
    /// Rotate the audit file when it is larger than this many bytes.
    #[arg(long)]
    audit_file_max_bytes: Option<u64>,
    /// Rotated audit files kept (audit.log.1 … audit.log.N).
    #[arg(long)]
    audit_file_max_files: Option<usize>,
    /// Audit records older than this are purged from the store, after a signed checkpoint (default 365).
    #[arg(long)]
    audit_retention_days: Option<u32>,
    /// Also send each record to syslog: udp:HOST:PORT or unix:/dev/log (best effort).
    #[arg(long)]
    audit_syslog: Option<String>,
    /// How long a request waits for its audit record before it is refused with 503 (default 5000).
    #[arg(long)]
    audit_write_timeout_ms: Option<u64>,
    /// Sign a checkpoint after this many records, and at least every minute (default 1000).
    #[arg(long)]
    audit_checkpoint_every: Option<u64>,
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

impl ServeArgs {
    /// The flags given, as settings (`config_file::KEYS` names).
    fn settings(&self) -> Vec<(&'static str, String)> {
        let mut out: Vec<(&'static str, String)> = Vec::new();
        let mut put = |key: &'static str, value: Option<String>| {
            if let Some(v) = value {
                out.push((key, v));
            }
        };
        let (a, l) = (&self.audit, &self.limits);
        put("data_dir", self.data_dir.as_ref().map(|p| p.display().to_string()));
        put("listen", self.listen.clone());
        put("dns_suffix", self.dns_suffix.clone());
        put("metrics_unauthenticated", self.metrics_unauthenticated.then(|| "true".into()));
        put("audit.file", a.audit_file.clone());
        put("audit.file_max_bytes", a.audit_file_max_bytes.map(|v| v.to_string()));
        put("audit.file_max_files", a.audit_file_max_files.map(|v| v.to_string()));
        put("audit.retention_days", a.audit_retention_days.map(|v| v.to_string()));
        put("audit.syslog", a.audit_syslog.clone());
        put("audit.write_timeout_ms", a.audit_write_timeout_ms.map(|v| v.to_string()));
        put("audit.checkpoint_every", a.audit_checkpoint_every.map(|v| v.to_string()));
        put("audit.disabled", a.audit_disabled.then(|| "true".into()));
        put("audit.events_webhook", a.events_webhook.clone());
        put("audit.events_webhook_secret_file", a.events_webhook_secret_file.as_ref().map(|p| p.display().to_string()));
        put("limits.tls_handshake_timeout_secs", l.tls_handshake_timeout_secs.map(|v| v.to_string()));
        put("limits.request_header_timeout_secs", l.request_header_timeout_secs.map(|v| v.to_string()));
        put("limits.request_body_timeout_secs", l.request_body_timeout_secs.map(|v| v.to_string()));
        put("limits.max_connections", l.max_connections.map(|v| v.to_string()));
        put("limits.max_in_flight", l.max_in_flight.map(|v| v.to_string()));
        out
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
    if args.config_reference {
        print!("{}", coffer_server::config_file::reference());
        return Ok(());
    }
    if !args.dev && args.config.is_none() && std::env::var_os("COFFER_TLS_CERT_FILE").is_none() {
        return Err(CliError::Usage(
            "give a configuration file (`coffer serve --config coffer.toml`; see --config-reference), or run `coffer serve --dev` to try Coffer".into(),
        ));
    }
    let flags = args.settings();
    let config =
        coffer_server::config_file::load(args.config.as_deref(), &|name| std::env::var(name).ok(), &flags, args.dev)
            .map_err(|e| CliError::Usage(e.0))?;
    coffer_server::hardening::no_core_dumps();
    if args.mlock {
        coffer_server::hardening::lock_memory()
            .map_err(|e| CliError::Usage(format!("--mlock: locking the server's memory failed: {e}")))?;
    }
    let server = coffer_server::start(config, None).await?;
    if let Some(c) = &server.credentials {
        print!("{}", coffer_server::dev_bootstrap::export_lines(c));
    }
    match server.state() {
        Some(_) => tracing::info!(addr = %server.addr, "Coffer is listening"),
        None => tracing::info!(
            addr = %server.addr,
            "Coffer is listening, sealed: `coffer operator init` (first start) or `coffer operator unseal`"
        ),
    }
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
