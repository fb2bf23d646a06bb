//! The one error type of Coffer. Every layer returns it; the HTTP layer maps `ErrorKind` to a
//! status code in exactly one place and renders `{"error":{"code","message","innererror"}}`.
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 400
    BadRequest,
    /// 401 (always sent with the bearer challenge)
    Unauthorized,
    /// 403
    Forbidden,
    /// 404
    NotFound,
    /// 405
    MethodNotAllowed,
    /// 408: the request (its body) did not arrive in time.
    RequestTimeout,
    /// 409
    Conflict,
    /// 413
    PayloadTooLarge,
    /// 429
    TooManyRequests,
    /// 503
    Unavailable,
    /// 500: a bug or a broken dependency. The message is logged, never sent to the client.
    Internal,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Error {
    pub kind: ErrorKind,
    /// Azure's `error.code`, e.g. `SecretNotFound`, `BadParameter`, `Forbidden`.
    pub code: String,
    /// Azure's `error.innererror.code`, e.g. `ObjectIsDeletedButRecoverable`, `AccessDenied`.
    pub inner_code: Option<String>,
    pub message: String,
    /// What the audit log records instead of `message`, when the message may quote what the
    /// client sent (a body parser's message can quote a secret value).
    pub recorded_as: Option<String>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl Error {
    pub fn new(kind: ErrorKind, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self { kind, code: code.into(), inner_code: None, message: message.into(), recorded_as: None }
    }
    /// The error, recorded in the audit log as `text` rather than its message.
    pub fn recorded_as(mut self, text: impl Into<String>) -> Self {
        self.recorded_as = Some(text.into());
        self
    }
    pub fn with_inner(mut self, inner: impl Into<String>) -> Self {
        self.inner_code = Some(inner.into());
        self
    }
    pub fn bad_parameter(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, "BadParameter", message)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unauthorized, "Unauthorized", message)
    }
    pub fn forbidden(inner: &str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, "Forbidden", message).with_inner(inner)
    }
    pub fn not_found(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, code, message)
    }
    pub fn conflict(inner: Option<&str>, message: impl Into<String>) -> Self {
        let e = Self::new(ErrorKind::Conflict, "Conflict", message);
        match inner {
            Some(i) => e.with_inner(i),
            None => e,
        }
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, "InternalError", message)
    }
    pub fn unavailable(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, code, message)
    }
}
