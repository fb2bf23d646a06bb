//! The audit log as the server uses it: the log itself is `coffer_audit` (re-exported here);
//! this module adds what needs the server's HTTP types — the draft a request starts with, and
//! writing it around the response — and the checkpoint key sealed under the root of trust.
//! Nothing here imports the server state or anything above it.
use std::future::Future;
use std::time::Instant;

use axum::response::{IntoResponse, Response};
pub use coffer_audit::*;
use coffer_crypto::jwt::TokenSigner;
use coffer_store::Store;

use crate::host::Surface;
use crate::http::{ApiError, RecordedError};
use crate::keyring::Keyring;
use crate::metrics::Metrics;

/// Runs `inner` with `draft` as the current request's record, then writes the record. If it
/// cannot be written, the caller gets a 503 instead of the response (a secret is never handed
/// out unrecorded).
pub async fn around(
    audit: &AuditLog,
    metrics: &Metrics,
    draft: record::Draft,
    inner: impl Future<Output = Response>,
) -> Response {
    let started = Instant::now();
    let (resp, draft) = scope::within(draft, inner).await;
    let Some(mut draft) = draft else {
        return ApiError(scope::unavailable("the request's audit draft was lost")).into_response();
    };
    // An error response says what its record should say (see `http::RecordedError`).
    if let Some(RecordedError(text)) = resp.extensions().get::<RecordedError>() {
        draft.error = Some(text.clone());
    }
    let observe = |resp: Response| {
        if let Some(op) = draft.operation {
            metrics.observe_request(op, resp.status().as_u16(), started.elapsed());
        }
        resp
    };
    if !draft.audited || !audit.enabled() {
        return observe(resp);
    }
    let status = resp.status().as_u16();
    // The change was committed with its success record: that is the request's record, unless
    // the response turned out otherwise (then this one says how it ended).
    if matches!(draft.witness, record::Witness::Committed { status: s, .. } if s == status) {
        return observe(resp);
    }
    let millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let mut outcome = record::Outcome::of_status(status);
    // A refused sign-in is answered 400 (`invalid_client`, `invalid_grant`), as Entra does.
    if draft.operation == Some("Authentication") && status == 400 && draft.claimed.is_some() {
        outcome = record::Outcome::Denied;
    }
    match audit.write(draft.to_record(outcome, Some(status), Some(millis))).await {
        Ok(_) => observe(resp),
        Err(e) => {
            let mut r = ApiError(scope::unavailable(&e.0)).into_response();
            r.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("5"));
            observe(r)
        }
    }
}

/// The draft a request starts with: what its method, path, host and connection say.
pub fn draft_for(req: &axum::extract::Request, surface: &Surface, clock: &dyn coffer_core::Clock) -> record::Draft {
    use coffer_audit::operations::DataOperation;
    use coffer_audit::record::RecordedObject;
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let mut d = record::Draft {
        request_id: coffer_crypto::random::guid(),
        correlation_id: header("x-ms-client-request-id"),
        time_ms: coffer_audit::writer::now_ms(clock),
        caller_ip: req
            .extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip().to_string()),
        method: method.to_string(),
        user_agent: header("user-agent"),
        ..Default::default()
    };
    match surface {
        Surface::Vault { name, authority } => {
            // Parsed once (`server::build_app`), after the method override.
            let parsed;
            let op = match req.extensions().get::<DataOperation>() {
                Some(op) => op,
                None => {
                    parsed = DataOperation::parse(&method, &path);
                    &parsed
                }
            };
            d.operation = Some(op.name());
            d.changes_state = op.changes_state(&method);
            if op.witnessed() {
                d.witness = record::Witness::Ready;
            }
            d.audited = true;
            d.vault = Some(name.clone());
            d.object = op.object().map(|(collection, object, version)| {
                let mut id = format!("https://{authority}/{collection}/{object}");
                if let Some(v) = version {
                    id = format!("{id}/{v}");
                }
                RecordedObject {
                    collection: collection.to_ascii_lowercase(),
                    name: object.to_string(),
                    version: version.map(str::to_string),
                    id,
                }
            });
        }
        Surface::Control { .. } => {
            // Its operation is named by the route it reaches (`crate::routes`).
            let parts: Vec<&str> = path.split('/').collect();
            d.vault = parts
                .windows(2)
                .find(|w| w[0].eq_ignore_ascii_case("vaults") || w[0].eq_ignore_ascii_case("deletedVaults"))
                .map(|w| w[1].to_string());
        }
    }
    d.path = path;
    d
}

const CHECKPOINT_KEY_META: &str = "audit/checkpoint-key";

fn checkpoint_key_aad(kid: &str) -> Vec<u8> {
    format!("coffer/audit-checkpoint-key/v1|{kid}").into_bytes()
}

/// The checkpoint key as stored in `meta`: its kid and its PKCS#8 sealed under the root.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredCheckpointKey {
    kid: String,
    sealed: String,
}

/// The meta entry of the checkpoint key and its value rewrapped from `old` to `new` (a seal
/// migration or a root rotation), if there is one.
pub async fn rewrap_checkpoint_key(
    store: &dyn Store,
    old: &dyn coffer_crypto::root::RootOfTrust,
    new: &dyn coffer_crypto::root::RootOfTrust,
) -> coffer_core::Result<Option<(String, Vec<u8>)>> {
    let Some(stored) = store.get_meta(CHECKPOINT_KEY_META).await? else { return Ok(None) };
    let bad = |e: String| coffer_core::Error::internal(format!("audit key: {e}"));
    let mut s: StoredCheckpointKey = serde_json::from_slice(&stored).map_err(|e| bad(e.to_string()))?;
    let sealed = coffer_crypto::b64::url_decode(&s.sealed).ok_or_else(|| bad("bad encoding".into()))?;
    let aad = checkpoint_key_aad(&s.kid);
    let der = old.unwrap(&aad, &sealed)?;
    s.sealed = coffer_crypto::b64::url_encode(&new.wrap(&aad, &der)?);
    Ok(Some((CHECKPOINT_KEY_META.to_string(), serde_json::to_vec(&s).map_err(|e| bad(e.to_string()))?)))
}

/// The key that signs checkpoints: P-256, sealed under the root of trust like the token
/// signing keys, created on first start.
pub async fn writer_key(store: &dyn Store, keyring: &Keyring) -> coffer_core::Result<TokenSigner> {
    use StoredCheckpointKey as Stored;
    let stored = match store.get_meta(CHECKPOINT_KEY_META).await? {
        Some(b) => b,
        None => {
            let kid = format!("audit-{}", coffer_crypto::random::version_id());
            let (_, der) = TokenSigner::generate(kid.clone())?;
            let sealed = keyring.seal_with_root(&checkpoint_key_aad(&kid), &der)?;
            let fresh = serde_json::to_vec(&Stored { kid, sealed: coffer_crypto::b64::url_encode(&sealed) })
                .map_err(|e| coffer_core::Error::internal(format!("audit key: {e}")))?;
            store.put_meta_if_absent(CHECKPOINT_KEY_META, &fresh).await?
        }
    };
    let s: Stored =
        serde_json::from_slice(&stored).map_err(|e| coffer_core::Error::internal(format!("audit key: {e}")))?;
    let sealed = coffer_crypto::b64::url_decode(&s.sealed)
        .ok_or_else(|| coffer_core::Error::internal("audit key: bad encoding"))?;
    let der = keyring.open_with_root(&checkpoint_key_aad(&s.kid), &sealed)?;
    Ok(TokenSigner::from_pkcs8(s.kid, &der)?)
}
