//! The HTTP connections: [`serve_connections`] accepts on a listener and runs hyper's HTTP/1
//! on each connection with [`App`] as the service.
//!
//! OFREP evaluations, the bulk of a flag server's traffic, are answered directly: no route
//! table, no boxed request body, handler or response future per request. Everything else goes
//! through the axum router ([`crate::api::router`]) and its layers. A directly answered
//! request gets what those layers give every request (its log line and metrics, a panic
//! turned into a 500, the body limit) from the same functions, and the answer itself is the
//! router's handler's ([`ofrep::single`], [`ofrep::bulk`]).

use std::convert::Infallible;
use std::future::{Future, poll_fn};
use std::io;
use std::panic::AssertUnwindSafe;
use std::pin::pin;
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{Method, Request};
use axum::response::Response;
use futures_util::FutureExt;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tower::Service;

use crate::api::{self, ofrep};
use crate::state::AppState;

/// What every connection serves: the state, and the router for what is not answered directly.
/// Cheap to clone (two `Arc`s).
#[derive(Clone)]
pub(crate) struct App {
    state: AppState,
    router: Router,
}

/// The requests answered without the router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direct {
    /// `POST /ofrep/v1/evaluate/flags/{key}`.
    Single,
    /// `POST /ofrep/v1/evaluate/flags`.
    Bulk,
}

impl Direct {
    /// Which of them `method` and `path` are, if any: exactly what the router would send to
    /// the same handler (one non-empty segment for `{key}`).
    fn of(method: &Method, path: &str) -> Option<Self> {
        if method != Method::POST {
            return None;
        }
        let rest = path.strip_prefix("/ofrep/v1/evaluate/flags")?;
        if rest.is_empty() {
            return Some(Self::Bulk);
        }
        let key = rest.strip_prefix('/')?;
        (!key.is_empty() && !key.contains('/')).then_some(Self::Single)
    }

    /// The route template: the `route` label the router's log layer would give.
    fn route(self) -> &'static str {
        match self {
            Self::Single => "/ofrep/v1/evaluate/flags/{key}",
            Self::Bulk => "/ofrep/v1/evaluate/flags",
        }
    }
}

impl App {
    /// The service of a server over `state`.
    pub(crate) fn new(state: AppState) -> Self {
        Self {
            router: api::router(state.clone()),
            state,
        }
    }

    /// The response to one request.
    async fn answer(mut self, request: Request<Incoming>) -> Result<Response, Infallible> {
        if let Some(direct) = Direct::of(request.method(), request.uri().path()) {
            return Ok(self.answer_directly(direct, request).await);
        }
        poll_fn(|cx| Service::<Request<Incoming>>::poll_ready(&mut self.router, cx)).await?;
        self.router.call(request).await
    }

    async fn answer_directly(&self, direct: Direct, request: Request<Incoming>) -> Response {
        let start = Instant::now();
        let answered = match direct {
            Direct::Single => {
                AssertUnwindSafe(ofrep::single(&self.state, request))
                    .catch_unwind()
                    .await
            }
            Direct::Bulk => {
                AssertUnwindSafe(ofrep::bulk(&self.state, request))
                    .catch_unwind()
                    .await
            }
        };
        let response = answered.unwrap_or_else(api::panic_response);
        api::log::record(
            &self.state,
            &Method::POST,
            direct.route(),
            start,
            response.status(),
        );
        response
    }
}

/// Accepts connections on `listener` and serves `app` on each until `stop` completes; then
/// stops accepting and closes every connection once its open request (if any) is answered.
pub(crate) async fn serve_connections(
    listener: TcpListener,
    app: App,
    stop: impl Future<Output = ()>,
) {
    let connections = GracefulShutdown::new();
    let http = http1::Builder::new();
    let mut stop = pin!(stop);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let app = app.clone();
                    let service = service_fn(move |request| app.clone().answer(request));
                    let connection = connections
                        .watch(http.serve_connection(TokioIo::new(stream), service));
                    tokio::spawn(async move {
                        if let Err(error) = connection.await {
                            tracing::trace!(%error, "connection ended with an error");
                        }
                    });
                }
                Err(error) => accept_failed(error).await,
            },
            () = &mut stop => break,
        }
    }
    drop(listener);
    connections.shutdown().await;
}

/// A connection that failed before it was accepted is the client's business; anything else
/// (out of file descriptors, mostly) is logged, and accepting pauses for a second so the
/// process can close some.
async fn accept_failed(error: io::Error) {
    if matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(%error, "cannot accept a connection; retrying in a second");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_the_router_sends_to_the_ofrep_handlers_is_answered_directly() {
        let post = Method::POST;
        for (method, path, expected) in [
            (&post, "/ofrep/v1/evaluate/flags", Some(Direct::Bulk)),
            (&post, "/ofrep/v1/evaluate/flags/a", Some(Direct::Single)),
            (
                &post,
                "/ofrep/v1/evaluate/flags/a%2Fb",
                Some(Direct::Single),
            ),
            (&post, "/ofrep/v1/evaluate/flags/", None),
            (&post, "/ofrep/v1/evaluate/flags/a/b", None),
            (&post, "/ofrep/v1/evaluate/flags/a/", None),
            (&post, "/ofrep/v1/evaluate/flagsx", None),
            (&post, "/ofrep/v1/evaluate/flag", None),
            (&Method::GET, "/ofrep/v1/evaluate/flags/a", None),
            (&Method::PUT, "/ofrep/v1/evaluate/flags", None),
        ] {
            assert_eq!(Direct::of(method, path), expected, "{method} {path}");
        }
    }

    #[test]
    fn direct_answers_are_labelled_with_the_router_s_templates() {
        let router_source = include_str!("api/mod.rs");
        for direct in [Direct::Single, Direct::Bulk] {
            let route = format!(".route(\"{}\", post(ofrep::", direct.route());
            assert!(router_source.contains(&route), "{route}");
        }
    }
}
