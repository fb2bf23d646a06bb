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
}

pub async fn run(args: ServeArgs) -> CliResult<()> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("COFFER_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    if !args.dev {
        return Err(CliError::Usage(
            "only dev mode is available so far: run `coffer serve --dev` (a key file in the data directory is the root of trust)".into(),
        ));
    }
    let config = ServerConfig {
        dns_suffix: args.dns_suffix,
        public_port: None,
        ..ServerConfig::dev(args.data_dir, args.listen)
    };
    let server = coffer_server::start(config, None).await?;
    if let Some(c) = &server.credentials {
        print!("{}", coffer_server::dev::export_lines(c));
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
