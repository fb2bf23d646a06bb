//! The application: opening a data directory (dev mode), assembling the state over a store and
//! a root of trust (dev mode, or an unseal), and the router with host dispatch in front of the
//! data plane and the control surface. Serving it is `server`; sealing and unsealing `node`.
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use coffer_core::{Clock, Error};
use coffer_crypto::root::{DevKeyFile, RootOfTrust};
use coffer_store::{SqliteStore, Store};
use tower::ServiceExt;

use crate::config::{PublicNames, ServerConfig};
use crate::dev_bootstrap::{self, DevCredentials};
use crate::host::{Surface, authority_of, classify};
use crate::http::ApiError;
use crate::keyring::Keyring;
use crate::routes::{Methods, Routes, read, unaudited_get};
use crate::state::{AppState, SharedState};
use crate::tokens::TokenService;

/// The store of a data directory (`coffer.db`, created with private permissions).
pub async fn open_store(
    dir: &std::path::Path,
    metrics: &Arc<crate::metrics::Metrics>,
) -> anyhow::Result<Arc<dyn Store>> {
    coffer_store::private_files::create_database_file(&dir.join("coffer.db"))?;
    let sqlite = SqliteStore::open(&dir.join("coffer.db")).await?;
    sqlite.set_observer(metrics.clone());
    Ok(Arc::new(sqlite))
}

/// What a running application is made of, opened by dev mode or by an unseal.
pub struct Parts<'a> {
    pub config: &'a ServerConfig,
    pub clock: Arc<dyn Clock>,
    pub dev_clock: Option<Arc<coffer_core::clock::OffsetClock>>,
    pub names: PublicNames,
    pub store: Arc<dyn Store>,
    pub metrics: Arc<crate::metrics::Metrics>,
    pub root: Arc<dyn RootOfTrust>,
    pub sealer: Option<Arc<dyn crate::seal::Sealer>>,
}

/// The application state over an opened store and root of trust: the token signing keys,
/// the backup key and the audit log's checkpoint key (each created on first use, sealed under
/// the root), and the audit writer.
pub async fn assemble(p: Parts<'_>) -> anyhow::Result<SharedState> {
    let Parts { config, clock, dev_clock, names, store, metrics, root, sealer } = p;
    let now = clock.now();
    let keyring = Keyring::new(root);
    let tokens = TokenService::load(store.as_ref(), &keyring, now).await?;
    let backup_key = keyring.instance_key(store.as_ref(), "backup").await?;
    let signer = crate::audit::writer_key(store.as_ref(), &keyring).await?;
    let audit =
        crate::audit::AuditLog::start(store.clone(), clock.clone(), signer, config.audit.clone(), metrics.clone())
            .await?;
    Ok(Arc::new(AppState {
        audit,
        sessions: Default::default(),
        metrics,
        metrics_unauthenticated: config.metrics_unauthenticated,
        store,
        clock,
        keyring,
        tokens,
        names,
        backup_key,
        throttle: Default::default(),
        seen_assertions: Default::default(),
        key_materials: Default::default(),
        limits: config.limits,
        in_flight: crate::connections::InFlight::new(config.limits.max_in_flight),
        jobs_running: Default::default(),
        dev_clock,
        sealer,
    }))
}

/// Everything a server needs, opened from the data directory.
pub struct Opened {
    pub state: SharedState,
    pub credentials: DevCredentials,
    pub tls: crate::tls::TlsFiles,
}

/// Opens (creating on first start) the root key, the store, TLS files, the tenant, the dev
/// administrator and the signing keys. `port` is the port clients use.
pub async fn open(config: &ServerConfig, clock: Arc<dyn Clock>, port: u16) -> anyhow::Result<Opened> {
    if !config.dev {
        anyhow::bail!("a production server is opened by its unseal (`node`), not from a key file");
    }
    // Dev mode: the clock can be moved forward (`dev_api`), for black-box tests of retention.
    let dev_clock = coffer_core::clock::OffsetClock::new(clock);
    let clock: Arc<dyn Clock> = dev_clock.clone();
    let dir = &config.data_dir;
    coffer_store::private_files::create_dir(dir).with_context(|| format!("creating {}", dir.display()))?;
    coffer_store::private_files::restrict_data_dir(dir).with_context(|| format!("restricting {}", dir.display()))?;
    let root: Arc<dyn RootOfTrust> = Arc::new(DevKeyFile::open_or_create(&dir.join("root.key"))?);
    let metrics = Arc::new(crate::metrics::Metrics::default());
    let store = open_store(dir, &metrics).await?;
    let tls = crate::tls::ensure_dev_tls(&dir.join("tls"), &config.dns_suffix)?;
    let names = PublicNames {
        host: config.public_host.clone(),
        dns_suffix: config.dns_suffix.clone(),
        port: config.public_port.unwrap_or(port),
    };

    let now = clock.now();
    let tenant = dev_bootstrap::ensure_tenant(store.as_ref(), now).await?;
    let ca_file = std::fs::canonicalize(&tls.ca_pem).unwrap_or(tls.ca_pem.clone());
    let credentials =
        dev_bootstrap::ensure_admin(store.as_ref(), &tenant, dir, &names.authority(), &ca_file, now).await?;

    let state = assemble(Parts {
        config,
        clock: dev_clock.clone(),
        dev_clock: Some(dev_clock),
        names,
        store,
        metrics,
        root,
        sealer: None,
    })
    .await?;
    Ok(Opened { state, credentials, tls })
}

/// The whole application: host dispatch in front of the data plane and the control surface.
pub fn build_app(state: SharedState) -> Router {
    let data: Router = Router::new().fallback(crate::dataplane::entry).with_state(state.clone());
    let apis = Routes::new()
        .route("/healthz", unaudited_get(healthz))
        // A token presented to /metrics is checked like any other: refusals are recorded, so
        // the endpoint is no silent oracle for stolen tokens.
        .route("/metrics", Methods::get(read("MetricsRead"), metrics))
        .route("/metadata/endpoints", unaudited_get(metadata_endpoints))
        .merge(crate::identity::routes())
        .merge(crate::management::routes())
        .merge(crate::directory_api::routes())
        .merge(crate::graph::routes())
        .merge(crate::authorization_api::routes())
        .merge(crate::audit_api::routes())
        .merge(crate::operator_api::routes())
        .merge(if state.dev_clock.is_some() { crate::dev_api::routes() } else { Routes::new() });
    let control: Router = apis
        .into_router()
        .merge(crate::portal::router())
        .fallback(|| async { ApiError(Error::not_found("NotFound", "The requested path does not exist.")) })
        .method_not_allowed_fallback(|| async {
            ApiError(Error::new(
                coffer_core::ErrorKind::MethodNotAllowed,
                "MethodNotAllowed",
                "The HTTP method is not supported on this path.",
            ))
        })
        // Bodies arrive already read within the one limit (`crate::routes`).
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state.clone());
    let names = state.names.clone();
    Router::new().fallback(move |req: Request<Body>| {
        let (data, control, names, state) = (data.clone(), control.clone(), names.clone(), state.clone());
        async move {
            let Some(authority) = authority_of(&req) else {
                return with_common_headers(
                    &coffer_crypto::random::guid(),
                    None,
                    ApiError(Error::bad_parameter("The request has no Host header.")).into_response(),
                );
            };
            let client_request_id = req.headers().get("x-ms-client-request-id").cloned();
            // Load shedding before any work: a request over the in-flight limit costs nothing.
            let Some(_serving) = state.in_flight.try_enter() else {
                let mut resp = ApiError(Error::unavailable(
                    "ServerBusy",
                    "The server is serving as many requests as it is configured to; retry shortly.",
                ))
                .into_response();
                resp.headers_mut().insert(axum::http::header::RETRY_AFTER, HeaderValue::from_static("1"));
                return with_common_headers(&coffer_crypto::random::guid(), client_request_id, resp);
            };
            let mut req = crate::connections::with_body_deadline(req, state.limits.body_timeout);
            let surface = classify(&authority, &names);
            req.extensions_mut().insert(surface.clone());
            if matches!(surface, Surface::Vault { .. }) {
                crate::http::apply_method_override(&mut req);
                // The one reading of what the request asks for: the audit draft, the metrics
                // label, the router and the permission check all take it from here.
                let op = crate::audit::operations::DataOperation::parse(req.method(), req.uri().path());
                req.extensions_mut().insert(op);
            }
            let draft = crate::audit::draft_for(&req, &surface, state.clock.as_ref());
            let request_id = draft.request_id.clone();
            let serve = async move {
                let resp = match surface {
                    Surface::Vault { .. } => data.oneshot(req).await,
                    Surface::Control { .. } => {
                        if let Some(uri) = crate::management::normalize_arm_path(req.uri()) {
                            *req.uri_mut() = uri;
                        }
                        // Each route reads the body within the one limit (`crate::routes`).
                        control.oneshot(req).await
                    }
                };
                match resp {
                    Ok(r) => r,
                    Err(never) => match never {},
                }
            };
            // Written before the response leaves: a record that cannot be written makes it a 503.
            let resp = crate::audit::around(&state.audit, &state.metrics, draft, serve).await;
            with_common_headers(&request_id, client_request_id, resp)
        }
    })
}

/// Headers Azure sends on every response, plus our security headers.
fn with_common_headers(request_id: &str, client_request_id: Option<HeaderValue>, mut resp: Response) -> Response {
    let h = resp.headers_mut();
    // The same id as the request's audit record, so a client's error can be found in the log.
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert(HeaderName::from_static("x-ms-request-id"), v);
    }
    if let Some(v) = client_request_id {
        h.insert(HeaderName::from_static("x-ms-client-request-id"), v);
    }
    h.insert(
        HeaderName::from_static("x-ms-keyvault-service-version"),
        HeaderValue::from_static(concat!("coffer/", env!("CARGO_PKG_VERSION"))),
    );
    h.insert(axum::http::header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        axum::http::header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000;includeSubDomains"),
    );
    h.insert(axum::http::header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    resp
}

/// `GET /metrics`: for tenant administrators' tokens, or for anyone with
/// `--metrics-unauthenticated` (as Vault's `unauthenticated_metrics_access`). Scrapers send no
/// `api-version`, so this takes the bearer token itself.
async fn metrics(
    axum::extract::State(state): axum::extract::State<SharedState>,
    headers: axum::http::HeaderMap,
) -> Response {
    if state.metrics_unauthenticated {
        // Nobody to record: the scraper on the trusted network presents no identity.
        crate::audit::note(|d| d.audited = false);
    } else {
        let caller = match crate::authentication::management_caller(&state, &headers).await {
            Ok(c) => c,
            Err(r) => return r,
        };
        if let Err(e) = crate::authorization::require_tenant_admin(&caller, "read the metrics") {
            return ApiError(e).into_response();
        }
    }
    let body = state.metrics.render(state.audit.queue_depth());
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response()
}

/// Liveness and the audit log's state: 503 while the audit log cannot write (every audited
/// request is refused then, so a load balancer should take the node out).
async fn healthz(axum::extract::State(state): axum::extract::State<SharedState>) -> Response {
    let audit = state.audit.health();
    let healthy = matches!(audit["status"].as_str(), Some("ok" | "disabled"));
    let status = if healthy { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    crate::http::json(status, serde_json::json!({"status": if healthy { "ok" } else { "degraded" }, "audit": audit}))
}

/// Cloud metadata in Azure's shape: clients (the Coffer CLI, `az cloud register`) learn
/// the token authority, the management endpoint and the vault DNS suffix from it.
async fn metadata_endpoints(axum::extract::State(state): axum::extract::State<SharedState>) -> Response {
    let n = &state.names;
    let authority = n.authority();
    crate::http::json(
        StatusCode::OK,
        serde_json::json!({
            "name": "Coffer",
            "resourceManager": format!("{authority}/"),
            "portal": format!("{authority}/"),
            // Microsoft Graph's directory subset (`crate::graph`) on the same authority; its
            // tokens are the management audience's.
            "microsoftGraphResourceId": format!("{authority}/"),
            "graph": format!("{authority}/"),
            "authentication": {
                "loginEndpoint": format!("{authority}/"),
                "audiences": [n.management_resource()],
                "tenant": "common",
                "identityProvider": "AAD",
            },
            "suffixes": { "keyVaultDns": format!("{}{}", n.dns_suffix, n.port_suffix()) },
        }),
    )
}
