//! Serving: bind the listener, open the node (dev: the application at once; production:
//! sealed until unsealed), and serve it over HTTPS (HTTP/1.1 and HTTP/2) with the connection
//! limits. In production the certificate and key come from PEM files and are reloaded on
//! SIGHUP without dropping connections.
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use coffer_core::{Clock, SystemClock};

use crate::app::{Opened, open};
use crate::config::ServerConfig;
use crate::dev_bootstrap::DevCredentials;
use crate::node::Node;
use crate::state::SharedState;

/// A server that is listening; dropping the handle does not stop it, `shutdown` does.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub credentials: Option<DevCredentials>,
    pub node: Arc<Node>,
    handle: axum_server::Handle<SocketAddr>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    /// The open application's state (`None` while a production server is sealed).
    pub fn state(&self) -> Option<SharedState> {
        self.node.state()
    }

    pub fn shutdown(&self) {
        self.handle.graceful_shutdown(Some(std::time::Duration::from_secs(5)));
    }

    /// Waits for the server to stop, then signs the audit chain's head, so that records cut
    /// from the end while it was down are detected by `coffer audit verify`.
    pub async fn wait(self) -> anyhow::Result<()> {
        let served = self.task.await.context("server task")?.context("server");
        self.node.checkpoint().await;
        served
    }
}

/// Opens the node and starts serving. With `clock`, time is injected (tests).
pub async fn start(config: ServerConfig, clock: Option<Arc<dyn Clock>>) -> anyhow::Result<RunningServer> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let clock = clock.unwrap_or_else(|| Arc::new(SystemClock));
    let listener =
        std::net::TcpListener::bind(config.listen).with_context(|| format!("listening on {}", config.listen))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let limits = config.limits;
    let (node, credentials, cert, key) = if config.dev {
        let opened: Opened = open(&config, clock, addr.port()).await?;
        let (cert, key) = (opened.tls.cert_pem.clone(), opened.tls.key_pem.clone());
        let credentials = opened.credentials.clone();
        (Node::dev(config, opened), Some(credentials), cert, key)
    } else {
        let tls = config.tls.clone().context("production mode needs tls.cert_file and tls.key_file")?;
        let node = Node::production(config, clock, addr.port()).await?;
        (node, None, tls.cert_file, tls.key_file)
    };
    let rustls = axum_server::tls_rustls::RustlsConfig::from_pem_file(&cert, &key)
        .await
        .with_context(|| format!("loading the TLS certificate {} and key {}", cert.display(), key.display()))?;
    if credentials.is_none() {
        reload_tls_on_sighup(rustls.clone(), cert, key);
    }
    let handle = axum_server::Handle::new();
    // Connections over the limit are dropped before their TLS handshake; the handshake, the
    // first request head and every later head (and so an idle kept-alive connection) each
    // have their deadline; bodies have theirs in `app::build_app`.
    let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(rustls)
        .handshake_timeout(limits.handshake_timeout)
        .acceptor(crate::connections::ConnectionLimit::new(limits.max_connections));
    let mut server = axum_server::from_tcp(listener)?
        .acceptor(acceptor)
        .first_request_timeout(limits.header_timeout)
        .handle(handle.clone());
    server.http_builder().http1().timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(limits.header_timeout);
    server.http_builder().http2().timer(hyper_util::rt::TokioTimer::new()).keep_alive_interval(limits.header_timeout);
    let app = crate::node::router(node.clone());
    let task = tokio::spawn(server.serve(app.into_make_service_with_connect_info::<SocketAddr>()));
    Ok(RunningServer { addr, credentials, node, handle, task })
}

/// New connections get the certificate in the files after a SIGHUP; open ones keep theirs.
fn reload_tls_on_sighup(
    rustls: axum_server::tls_rustls::RustlsConfig,
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            tracing::warn!("no SIGHUP handler: the TLS certificate is not reloaded on SIGHUP");
            return;
        };
        while hangups.recv().await.is_some() {
            match rustls.reload_from_pem_file(&cert, &key).await {
                Ok(()) => tracing::info!(cert = %cert.display(), "TLS certificate reloaded"),
                Err(e) => tracing::error!(error = %e, "TLS certificate not reloaded; the previous one stays"),
            }
        }
    });
}
