//! The floor under every Coffer request: a bare HTTPS request on the same server stack (tokio
//! multi-thread runtime, axum, axum-server, rustls on aws-lc-rs, Coffer's dev certificate) that
//! answers a fixed JSON body the size of a secret bundle and does nothing else — no token, no
//! store, no audit. `bench/suite.py` drives it with the same load generator as Coffer.
//!
//! Run: `tls-floor CERT_PEM KEY_PEM` — prints `listening 127.0.0.1:PORT`, serves until killed.
use std::net::SocketAddr;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;

/// About the size of `GET /secrets/{name}` for a 100-byte value.
const BODY: &str = concat!(
    r#"{"value":"benchmark-value-0123456789abcdefghijklmnopqrstuvwxyz-0123456789abcdefghijklmnopqrstuvwxyz-012345","#,
    r#""id":"https://bench.vault.localhost:8443/secrets/s1/0123456789abcdef0123456789abcdef","#,
    r#""attributes":{"enabled":true,"created":1764400000,"updated":1764400000,"recoveryLevel":"Recoverable+Purgeable","recoverableDays":90},"tags":{}}"#
);

async fn answer() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json; charset=utf-8")], BODY)
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(cert), Some(key)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: tls-floor CERT_PEM KEY_PEM");
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        println!("listening {}", listener.local_addr()?);
        let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key).await?;
        let app = Router::new().fallback(answer);
        axum_server::from_tcp_rustls(listener, tls)?
            .serve(app.into_make_service_with_connect_info::<SocketAddr>())
            .await?;
        Ok(())
    })
}
