//! The one place where errors become HTTP responses, plus request helpers shared by every
//! surface: JSON bodies, query strings, and the headers Azure sends on every response.
use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use coffer_core::{Error, ErrorKind};
use serde::de::DeserializeOwned;

/// Wraps the domain error so handlers can `?` it into a response.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        Self(e)
    }
}

impl From<coffer_crypto::CryptoError> for ApiError {
    fn from(e: coffer_crypto::CryptoError) -> Self {
        Self(e.into())
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// axum's `Path`, refusing a path it cannot read (bad percent-encoding, a segment of the
/// wrong type) in Azure's error shape instead of axum's plain text.
#[derive(Debug)]
pub struct Path<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Self(v)),
            Err(e) => Err(ApiError(Error::new(ErrorKind::BadRequest, "InvalidRequestUri", e.body_text()))),
        }
    }
}

/// axum's `Query`, refusing a query string it cannot read in Azure's error shape.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Self(v)),
            Err(e) => Err(ApiError(Error::bad_parameter(e.body_text()))),
        }
    }
}

pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ErrorKind::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Azure's error body: `{"error":{"code","message","innererror"}}`.
pub fn error_body(e: &Error) -> serde_json::Value {
    let mut inner = serde_json::Map::new();
    inner.insert("code".into(), e.code.clone().into());
    inner.insert("message".into(), e.message.clone().into());
    if let Some(i) = &e.inner_code {
        inner.insert("innererror".into(), serde_json::json!({ "code": i }));
    }
    serde_json::json!({ "error": inner })
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = if self.0.kind == ErrorKind::Internal {
            // The detail goes to the log; the client learns only that it was our fault.
            tracing::error!(error = %self.0.message, "internal error");
            Error::internal("The server encountered an internal error. The request id identifies it in the server log.")
        } else {
            self.0
        };
        // Rendering has no side effects: what the audit log records of the error travels with
        // the response, and the audit layer (`audit::scope::around`) reads it there.
        let recorded = RecordedError(e.recorded_as.clone().unwrap_or_else(|| e.message.clone()));
        let mut resp = (status_of(e.kind), json_headers(), axum::Json(error_body(&e))).into_response();
        resp.extensions_mut().insert(recorded);
        resp
    }
}

/// The error an `ApiError` response carries for the audit record (never the client's input).
#[derive(Debug, Clone)]
pub struct RecordedError(pub String);

pub fn json_headers() -> [(HeaderName, HeaderValue); 1] {
    [(axum::http::header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"))]
}

/// A JSON response with Azure's content type.
pub fn json(status: StatusCode, value: serde_json::Value) -> Response {
    (status, json_headers(), axum::Json(value)).into_response()
}

/// Parses a JSON request body into `T`, with Azure-shaped 400s for every way it can be wrong.
pub fn parse_body<T: DeserializeOwned>(body: &Bytes) -> Result<T, Error> {
    if body.is_empty() {
        return Err(Error::bad_parameter("The request body is required and must be a JSON object."));
    }
    serde_json::from_slice(body).map_err(|e| {
        // The parser's message can quote the body (a secret value, key material): the client
        // may see its own input, the audit log may not.
        let (line, column) = (e.line(), e.column());
        Error::bad_parameter(format!("The request body is not valid: {e}"))
            .recorded_as(format!("The request body is not valid (line {line}, column {column})."))
    })
}

/// Reads a body up to `limit` bytes; larger bodies get 413.
pub async fn read_body(body: axum::body::Body, limit: usize) -> Result<Bytes, Error> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        if crate::connections::is_body_timeout(&e) {
            return Error::new(
                ErrorKind::RequestTimeout,
                "RequestTimeout",
                "The request body did not arrive in time; the server stopped waiting for it.",
            );
        }
        Error::new(
            ErrorKind::PayloadTooLarge,
            "RequestBodyTooLarge",
            format!("The request body is larger than the {limit} bytes this server accepts."),
        )
    })
}

/// Query parameters as (name, value) pairs, decoded.
pub fn query_pairs(query: Option<&str>) -> Result<Vec<(String, String)>, Error> {
    let q = query.unwrap_or("");
    serde_urlencoded::from_str::<Vec<(String, String)>>(q)
        .map_err(|_| Error::bad_parameter("The query string is not valid."))
}

pub fn query_get<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// Applies the legacy verb override once, for everything after it — audit operation, metrics
/// label, routing and authorization alike: a `POST` with `X-HTTP-METHOD: PATCH` or `DELETE`
/// becomes that method (and loses the header, so nothing can read the request two ways).
pub fn apply_method_override(req: &mut axum::extract::Request) {
    if req.method() != Method::POST {
        return;
    }
    let effective = match header_str(req.headers(), "x-http-method").map(str::to_ascii_uppercase).as_deref() {
        Some("PATCH") => Method::PATCH,
        Some("DELETE") => Method::DELETE,
        _ => return,
    };
    *req.method_mut() = effective;
    req.headers_mut().remove("x-http-method");
}

pub fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The caller's IP address, when the server knows it (not for in-process requests).
pub struct ClientAddr(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip())))
    }
}
