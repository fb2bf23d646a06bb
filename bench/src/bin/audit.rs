//! What auditing costs: secret GET throughput over HTTPS against a server with the audit log
//! (store + file sink, group commit) and against one without it (`--audit-disabled`), in the
//! same run, alternating rounds so both see the same machine. The figure is their ratio; the
//! issue's target is that auditing does not halve throughput (ratio ≥ 0.5).
//!
//! Run: `cargo run --release -p coffer-bench --bin audit-bench [-- CONCURRENCY SECONDS ROUNDS]`
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use coffer_server::{RunningServer, ServerConfig};
use serde_json::{Value, json};

struct Target {
    label: &'static str,
    server: RunningServer,
    http: reqwest::Client,
    url: String,
    token: String,
    _dir: tempfile::TempDir,
}

async fn token(http: &reqwest::Client, s: &RunningServer, resource: &str) -> anyhow::Result<String> {
    let c = s.credentials.as_ref().ok_or_else(|| anyhow::anyhow!("no dev credentials"))?;
    let r: Value = http
        .post(format!("{}/{}/oauth2/v2.0/token", c.server, c.tenant_id))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", c.client_id.as_str()),
            ("client_secret", c.client_secret.as_str()),
            ("scope", &format!("{resource}/.default")),
        ])
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(r["access_token"].as_str().unwrap_or_default().to_string())
}

fn oid_of(jwt: &str) -> String {
    let claims = jwt.split('.').nth(1).and_then(coffer_crypto::b64::url_decode).unwrap_or_default();
    serde_json::from_slice::<Value>(&claims)
        .ok()
        .and_then(|v| v["oid"].as_str().map(str::to_string))
        .unwrap_or_default()
}

async fn target(label: &'static str, audit: bool) -> anyhow::Result<Target> {
    let dir = tempfile::tempdir()?;
    let mut config = ServerConfig::dev(dir.path().to_path_buf(), "127.0.0.1:0".parse()?);
    config.audit.enabled = audit;
    let server = coffer_server::start(config, None).await?;
    let creds = server.credentials.as_ref().ok_or_else(|| anyhow::anyhow!("no dev credentials"))?;
    let ca = reqwest::Certificate::from_pem_bundle(&std::fs::read(&creds.ca_file)?)?;
    let http = reqwest::Client::builder()
        .tls_certs_only(ca)
        .resolve("bench.vault.localhost", server.addr)
        .pool_max_idle_per_host(256)
        .build()?;
    let port = server.addr.port();
    let mgmt = token(&http, &server, &format!("https://localhost:{port}")).await?;
    let vault_path = format!(
        "{}/subscriptions/{}/resourceGroups/default/providers/Microsoft.KeyVault/vaults/bench?api-version=2023-07-01",
        creds.server, creds.subscription_id
    );
    let body = json!({"location": "local", "properties": {"tenantId": creds.tenant_id, "sku": {"family": "A", "name": "standard"},
        "accessPolicies": [{"tenantId": creds.tenant_id, "objectId": oid_of(&mgmt), "permissions": {"secrets": ["all"]}}]}});
    http.put(vault_path).bearer_auth(&mgmt).json(&body).send().await?.error_for_status()?;
    let token = token(&http, &server, &format!("https://vault.localhost:{port}")).await?;
    let url = format!("https://bench.vault.localhost:{port}/secrets/db?api-version=7.5");
    http.put(&url).bearer_auth(&token).json(&json!({"value": "benchmark"})).send().await?.error_for_status()?;
    Ok(Target { label, server, http, url, token, _dir: dir })
}

/// Secret GETs per second from `concurrency` clients for `seconds`.
async fn round(t: &Target, concurrency: usize, seconds: u64) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (http, url, token) = (t.http.clone(), t.url.clone(), t.token.clone());
            let (stop, done, failed) = (stop.clone(), done.clone(), failed.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    match http.get(&url).bearer_auth(&token).send().await {
                        Ok(r) if r.status().is_success() => {
                            let _ = r.bytes().await;
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.await;
    }
    let n = done.load(Ordering::Relaxed) as f64;
    if failed.load(Ordering::Relaxed) > 0 {
        eprintln!("{}: {} requests failed", t.label, failed.load(Ordering::Relaxed));
    }
    n / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let concurrency = args.first().copied().unwrap_or(32);
    let seconds = args.get(1).copied().unwrap_or(5) as u64;
    let rounds = args.get(2).copied().unwrap_or(3);
    let audited = target("audited (store + file, group commit)", true).await?;
    let plain = target("audit disabled", false).await?;
    println!("secret GET over HTTPS, {concurrency} concurrent clients, {rounds} rounds of {seconds} s each");
    let (mut a, mut p) = (0.0, 0.0);
    for i in 0..rounds {
        // Alternate which goes first, so neither always gets the quieter moment.
        let (x, y) = if i % 2 == 0 {
            let x = round(&audited, concurrency, seconds).await;
            (x, round(&plain, concurrency, seconds).await)
        } else {
            let y = round(&plain, concurrency, seconds).await;
            (round(&audited, concurrency, seconds).await, y)
        };
        println!("round {}: audited {x:.0}/s, unaudited {y:.0}/s, ratio {:.2}", i + 1, x / y);
        a += x;
        p += y;
    }
    let records = audited.server.state().map(|s| s.audit.heads().store.0).unwrap_or_default();
    println!("{}: {:.0} req/s", audited.label, a / rounds as f64);
    println!("{}: {:.0} req/s", plain.label, p / rounds as f64);
    println!("ratio audited/unaudited: {:.2} (target ≥ 0.50); {records} audit records written", a / p);
    audited.server.shutdown();
    plain.server.shutdown();
    Ok(())
}
