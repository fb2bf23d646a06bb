//! The events webhook: each event POSTed in Azure Event Grid's schema, signed with
//! HMAC-SHA256 of the body (`X-Coffer-Signature: sha256=HEX`) and retried with backoff. The
//! event's audit record is the durable part; a delivery is best effort.
use std::time::Duration;

use crate::config::WebhookConfig;

/// The webhook sender (one HTTP client, deliveries run in the background).
#[derive(Debug)]
pub struct Webhook {
    webhook: Option<(WebhookConfig, reqwest::Client)>,
}

impl Webhook {
    pub fn new(webhook: Option<WebhookConfig>) -> Self {
        let webhook = webhook
            .and_then(|w| reqwest::Client::builder().timeout(Duration::from_secs(10)).build().ok().map(|c| (w, c)));
        Self { webhook }
    }

    pub fn deliver(&self, body: Vec<u8>) {
        let Some((cfg, client)) = self.webhook.clone() else { return };
        tokio::spawn(async move {
            let signature = format!("sha256={}", coffer_crypto::digest::hmac_sha256_hex(cfg.secret.as_bytes(), &body));
            let mut backoff = cfg.first_backoff;
            for attempt in 1..=cfg.attempts.max(1) {
                let sent = client
                    .post(&cfg.url)
                    .header("content-type", "application/json")
                    .header("x-coffer-signature", &signature)
                    .header("aeg-event-type", "Notification")
                    .body(body.clone())
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status().is_success() => return,
                    Ok(r) => {
                        tracing::warn!(target: "coffer::events", attempt, status = %r.status(), "webhook refused the event")
                    }
                    Err(e) => tracing::warn!(target: "coffer::events", attempt, error = %e, "webhook delivery failed"),
                }
                if attempt < cfg.attempts {
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
            }
            tracing::error!(target: "coffer::events", url = %cfg.url, "event dropped after {} attempts", cfg.attempts);
        });
    }
}
