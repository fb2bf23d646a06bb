//! Control-surface routes that name their audit operation where they are declared: each
//! method of a route is given with its `Operation` (or explicitly as not audited), and a layer
//! on that method notes it in the request's draft before any extractor runs — so the record,
//! the metrics label and the durable "started" record of a change all come from the route
//! itself. `tests/layers.rs` checks that no other module builds axum routes.
use axum::Router;
use axum::handler::Handler;
use axum::routing::MethodRouter;

pub use crate::audit::operations::{Operation, read, write};

/// The methods of one route, each with its operation.
pub struct Methods<S>(MethodRouter<S>);

/// Notes the operation (`None`: not audited), then reads the body within the one limit of
/// every surface (4 MiB; 413, or 408 for a body that does not arrive, in Azure's shape and
/// recorded under the operation), so handlers get it whole.
fn noting<S: Clone + Send + Sync + 'static>(op: Option<Operation>, m: MethodRouter<S>) -> MethodRouter<S> {
    m.layer(axum::middleware::from_fn(move |req: axum::extract::Request, next: axum::middleware::Next| async move {
        if let Some(op) = op {
            crate::audit::note(|d| {
                d.operation = Some(op.name);
                d.changes_state = op.changes_state;
                d.audited = true;
            });
        }
        let (parts, body) = req.into_parts();
        match crate::http::read_body(body, coffer_core::limits::MAX_REQUEST_BODY_BYTES).await {
            Ok(bytes) => next.run(axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes))).await,
            Err(e) => axum::response::IntoResponse::into_response(crate::http::ApiError(e)),
        }
    }))
}

macro_rules! method {
    ($name:ident, $axum:path) => {
        /// This method of the route, recorded as `op`.
        pub fn $name<H, T>(op: Operation, handler: H) -> Methods<S>
        where
            H: Handler<T, S>,
            T: 'static,
        {
            Methods(noting(Some(op), $axum(handler)))
        }
    };
}

macro_rules! and_method {
    ($name:ident, $axum:path) => {
        /// Adds this method to the route, recorded as `op`.
        pub fn $name<H, T>(self, op: Operation, handler: H) -> Self
        where
            H: Handler<T, S>,
            T: 'static,
        {
            Methods(self.0.merge(noting(Some(op), $axum(handler))))
        }
    };
}

impl<S: Clone + Send + Sync + 'static> Methods<S> {
    method!(get, axum::routing::get);
    method!(post, axum::routing::post);
    method!(put, axum::routing::put);
    method!(patch, axum::routing::patch);
    method!(delete, axum::routing::delete);
}

/// Route-building: `Methods::get(read("VaultGet"), show).and_put(write("VaultPut"), create)`.
impl<S: Clone + Send + Sync + 'static> Methods<S> {
    and_method!(and_get, axum::routing::get);
    and_method!(and_post, axum::routing::post);
    and_method!(and_put, axum::routing::put);
    and_method!(and_patch, axum::routing::patch);
    and_method!(and_delete, axum::routing::delete);
}

/// A GET that is not audited (discovery documents, health, static files, redirects): said
/// where the route is declared, like an operation.
pub fn unaudited_get<H, T, S>(handler: H) -> Methods<S>
where
    H: Handler<T, S>,
    T: 'static,
    S: Clone + Send + Sync + 'static,
{
    Methods(noting(None, axum::routing::get(handler)))
}

/// A router whose every route is declared with `Methods`.
pub struct Routes<S>(Router<S>);

impl<S: Clone + Send + Sync + 'static> Default for Routes<S> {
    fn default() -> Self {
        Self(Router::new())
    }
}

impl<S: Clone + Send + Sync + 'static> Routes<S> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn route(self, path: &str, methods: Methods<S>) -> Self {
        Self(self.0.route(path, methods.0))
    }

    pub fn merge(self, other: Routes<S>) -> Self {
        Self(self.0.merge(other.0))
    }

    /// The axum router (to add layers, fallbacks and state).
    pub fn into_router(self) -> Router<S> {
        self.0
    }
}
