//! One log line and the HTTP metrics per request: [`LogLayer`].

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{Method, Response, StatusCode};
use tower::{Layer, Service};

use crate::state::AppState;

/// The `route` label of a request that matched no route.
const UNMATCHED: &str = "<unmatched>";

/// Logs and meters every request under its route pattern (not its path): reads and
/// evaluations, the bulk of the traffic, at DEBUG (`RUST_LOG=flipper_server::request=debug`:
/// an INFO line per evaluation costs a sixth of the server's throughput); refused requests and
/// changes to flags at INFO; server errors at WARN. Unlike `axum::middleware::from_fn`, it
/// neither clones the inner service nor boxes the response future.
#[derive(Clone)]
pub(super) struct LogLayer {
    state: AppState,
    /// The route patterns, sorted: a request's label is the `&'static str` found here, so
    /// labelling it allocates nothing.
    patterns: Arc<[&'static str]>,
}

impl LogLayer {
    pub(super) fn new(state: AppState, mut patterns: Vec<&'static str>) -> Self {
        patterns.sort_unstable();
        Self {
            state,
            patterns: patterns.into(),
        }
    }

    fn label(&self, request: &Request) -> &'static str {
        let Some(matched) = request.extensions().get::<MatchedPath>() else {
            return UNMATCHED;
        };
        self.patterns
            .binary_search(&matched.as_str())
            .map_or(UNMATCHED, |i| self.patterns[i])
    }
}

impl<S> Layer<S> for LogLayer {
    type Service = Logged<S>;

    fn layer(&self, inner: S) -> Logged<S> {
        Logged {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of [`LogLayer`].
#[derive(Clone)]
pub(super) struct Logged<S> {
    inner: S,
    layer: LogLayer,
}

impl<S, B> Service<Request> for Logged<S>
where
    S: Service<Request, Response = Response<B>, Error = Infallible>,
{
    type Response = Response<B>;
    type Error = Infallible;
    type Future = LoggedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let method = request.method().clone();
        let route = self.layer.label(&request);
        LoggedFuture {
            inner: self.inner.call(request),
            state: Some((self.layer.state.clone(), method, route, Instant::now())),
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`Logged`]: the inner one, then the log line and metrics.
    pub(super) struct LoggedFuture<F> {
        #[pin]
        inner: F,
        state: Option<(AppState, Method, &'static str, Instant)>,
    }
}

impl<F, B> Future for LoggedFuture<F>
where
    F: Future<Output = Result<Response<B>, Infallible>>,
{
    type Output = Result<Response<B>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Ok(response) = std::task::ready!(this.inner.poll(cx));
        if let Some((state, method, route, start)) = this.state.take() {
            record(&state, &method, route, start, response.status());
        }
        Poll::Ready(Ok(response))
    }
}

/// Logs and meters one answered request (also for requests answered outside the router, by
/// the connection service).
pub(crate) fn record(
    state: &AppState,
    method: &Method,
    route: &'static str,
    start: Instant,
    status: StatusCode,
) {
    let took = start.elapsed();
    let latency_us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
    let is_change =
        method != Method::GET && route.starts_with("/api/v1/flags") && status.is_success();
    macro_rules! log {
        ($level:ident) => {
            tracing::$level!(
                target: "flipper_server::request",
                method = %method,
                route,
                status = status.as_u16(),
                latency_us,
                "request"
            )
        };
    }
    if status.is_server_error() {
        log!(warn);
    } else if status.is_client_error() || is_change {
        log!(info);
    } else {
        log!(debug);
    }
    state
        .metrics()
        .http_request(method, route, status.as_u16(), took);
}
