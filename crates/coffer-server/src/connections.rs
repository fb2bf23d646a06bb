//! What one client may hold of the server: bounded time for the TLS handshake, the request
//! head and the request body, and bounded numbers of open connections and requests in flight.
//! Without them a slow client (slowloris: a head sent a byte at a time, a body that trickles)
//! holds a connection, a task and memory for as long as it likes.
use std::future::Ready;
use std::io;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The limits a server runs with (`coffer serve --max-connections …`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// From the TCP connection to the end of the TLS handshake.
    pub handshake_timeout: Duration,
    /// From the end of the handshake (or the previous response, on a kept-alive connection)
    /// to a complete request head; an idle kept-alive connection is closed after it too.
    pub header_timeout: Duration,
    /// From the request head to the last byte of its body: answered 408 `RequestTimeout`.
    pub body_timeout: Duration,
    /// Open connections; one more is closed as soon as it is accepted.
    pub max_connections: usize,
    /// Requests being served at once; one more is answered 503 `ServerBusy` at once.
    pub max_in_flight: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(15),
            body_timeout: Duration::from_secs(60),
            max_connections: 4096,
            max_in_flight: 1024,
        }
    }
}

/// The error a body read past its deadline ends with (see `deadline_body`).
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
pub struct BodyTimedOut(pub Duration);

/// The request body, ending in `BodyTimedOut` once `limit` has passed since the head arrived,
/// however the bytes trickle in (a per-chunk timeout would let one byte every few seconds
/// through). Whoever reads it — `http::read_body` or an extractor — sees the error.
pub fn deadline_body(body: Body, limit: Duration) -> Body {
    use futures_util::StreamExt;
    let deadline = tokio::time::Instant::now() + limit;
    let chunks = body.into_data_stream();
    let timed = futures_util::stream::unfold(Some(chunks), move |chunks| async move {
        let mut chunks = chunks?;
        match tokio::time::timeout_at(deadline, chunks.next()).await {
            Ok(Some(Ok(bytes))) => Some((Ok(bytes), Some(chunks))),
            Ok(Some(Err(e))) => Some((Err(BoxError::from(e)), None)),
            Ok(None) => None,
            Err(_) => Some((Err(BoxError::from(BodyTimedOut(limit))), None)),
        }
    });
    Body::from_stream(timed)
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Whether an error from reading a body is (or was caused by) its deadline.
pub fn is_body_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(e);
    while let Some(err) = current {
        if err.downcast_ref::<BodyTimedOut>().is_some() {
            return true;
        }
        current = err.source();
    }
    false
}

/// Requests in flight: a permit per request, refused (not queued) when none is left.
#[derive(Debug, Clone)]
pub struct InFlight(Arc<Semaphore>);

impl InFlight {
    pub fn new(max: usize) -> Self {
        Self(Arc::new(Semaphore::new(max.max(1))))
    }

    pub fn try_enter(&self) -> Option<OwnedSemaphorePermit> {
        self.0.clone().try_acquire_owned().ok()
    }
}

/// An acceptor (before TLS) that holds a permit for as long as the connection's service
/// lives, and drops a connection over the limit at once.
#[derive(Debug, Clone)]
pub struct ConnectionLimit {
    permits: Arc<Semaphore>,
}

impl ConnectionLimit {
    pub fn new(max: usize) -> Self {
        Self { permits: Arc::new(Semaphore::new(max.max(1))) }
    }
}

impl<I, S> axum_server::accept::Accept<I, S> for ConnectionLimit {
    type Stream = I;
    type Service = Counted<S>;
    type Future = Ready<io::Result<(I, Counted<S>)>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        std::future::ready(match self.permits.clone().try_acquire_owned() {
            Ok(permit) => Ok((stream, Counted { inner: service, _permit: Arc::new(permit) })),
            Err(_) => {
                tracing::warn!("connection refused: the connection limit is reached");
                Err(io::Error::other("connection limit reached"))
            }
        })
    }
}

/// A connection's service, holding the connection's permit.
#[derive(Debug, Clone)]
pub struct Counted<S> {
    inner: S,
    _permit: Arc<OwnedSemaphorePermit>,
}

impl<S, B> tower::Service<axum::http::Request<B>> for Counted<S>
where
    S: tower::Service<axum::http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: axum::http::Request<B>) -> Self::Future {
        self.inner.call(req)
    }
}

/// Wraps a request's body in its deadline (a request without a body, most GETs, as it is).
pub fn with_body_deadline(req: Request, limit: Duration) -> Request {
    if axum::body::HttpBody::is_end_stream(req.body()) {
        return req;
    }
    let (parts, body) = req.into_parts();
    Request::from_parts(parts, deadline_body(body, limit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_trickling_body_times_out_as_a_whole() {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<axum::body::Bytes, io::Error>>(4);
        let body = Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        }));
        let timed = deadline_body(body, Duration::from_millis(300));
        tokio::spawn(async move {
            // A byte every 100 ms: each chunk is quick, the whole is not.
            for _ in 0..20 {
                if tx.send(Ok(axum::body::Bytes::from_static(b"x"))).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        let err = axum::body::to_bytes(timed, 1 << 20).await.expect_err("times out");
        assert!(is_body_timeout(&err), "{err:?}");
    }

    #[tokio::test]
    async fn a_prompt_body_arrives_whole() {
        let timed = deadline_body(Body::from("hello"), Duration::from_secs(5));
        assert_eq!(axum::body::to_bytes(timed, 1 << 20).await.expect("body"), "hello");
    }

    #[test]
    fn in_flight_refuses_past_the_limit() {
        let limit = InFlight::new(2);
        let a = limit.try_enter().expect("first");
        let _b = limit.try_enter().expect("second");
        assert!(limit.try_enter().is_none());
        drop(a);
        assert!(limit.try_enter().is_some());
    }
}
