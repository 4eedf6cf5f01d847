//! The routes, and the layers every request goes through (body limit, one log line, panics
//! turned into a 500).
//!
//! | method | path | scope | success |
//! |---|---|---|---|
//! | GET | `/healthz` | none | 200 |
//! | GET | `/readyz` | none | 200 (503 when not ready) |
//! | GET | `/api/v1/flags?limit=&offset=` | read | 200 |
//! | POST | `/api/v1/flags[?overwrite=true]` | write | 201 |
//! | GET | `/api/v1/flags/{name}` | read | 200 |
//! | PUT | `/api/v1/flags/{name}` (stored form, `If-Match` / `If-None-Match`) | write | 200 (412) |
//! | DELETE | `/api/v1/flags/{name}` | write | 204 |
//! | POST | `/api/v1/flags/{name}/enable`, `/disable` | write | 204 |
//! | POST | `/api/v1/flags/{name}/conditions` | write | 204 |
//! | PUT | `/api/v1/flags/{name}/conditions` | write | 204 |
//! | PUT | `/api/v1/flags/{name}/bucketer` | write | 204 |
//! | GET | `/api/v1/flags/{name}/client_data` | read | 200 |
//! | PATCH | `/api/v1/flags/{name}/client_data` | write | 204 |
//! | GET | `/api/v1/flags/{name}/meta` | read | 200 |
//! | POST | `/api/v1/evaluate` | read | 200 |
//! | POST | `/ofrep/v1/evaluate/flags/{key}` | read | 200 |
//! | POST | `/ofrep/v1/evaluate/flags` | read | 200 / 304 |
//! | GET | `/api/v1/stream` (server-sent events) | read | 200 |
//! | GET | `/api/v1/openapi.json` | none | 200 |
//! | GET | `/metrics` | read | 200 |

mod conditions;
mod evaluate;
mod flags;
mod health;
mod meta;
mod ofrep;
mod stored;

use std::any::Any;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use tower_http::catch_panic::CatchPanicLayer;

use crate::error::ApiError;
use crate::state::AppState;

/// The whole application: every route, over `state`.
pub fn router(state: AppState) -> Router {
    let limit = state.max_body_bytes();
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/api/v1/flags", get(flags::list).post(flags::create))
        .route(
            "/api/v1/flags/{name}",
            get(flags::get_flag)
                .put(stored::put_flag)
                .delete(flags::destroy),
        )
        .route("/api/v1/flags/{name}/enable", post(flags::enable))
        .route("/api/v1/flags/{name}/disable", post(flags::disable))
        .route(
            "/api/v1/flags/{name}/conditions",
            post(conditions::add).put(conditions::replace),
        )
        .route(
            "/api/v1/flags/{name}/bucketer",
            put(conditions::set_bucketer),
        )
        .route(
            "/api/v1/flags/{name}/client_data",
            get(flags::get_client_data).patch(flags::merge_client_data),
        )
        .route("/api/v1/flags/{name}/meta", get(flags::get_meta))
        .route("/api/v1/evaluate", post(evaluate::evaluate))
        .route("/api/v1/stream", get(crate::stream::subscribe))
        .route("/ofrep/v1/evaluate/flags", post(ofrep::bulk))
        .route("/ofrep/v1/evaluate/flags/{key}", post(ofrep::single))
        .route("/api/v1/openapi.json", get(meta::openapi))
        .route("/metrics", get(meta::metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(state.clone(), log_request))
        .layer(CatchPanicLayer::custom(panic_response))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::route_not_found()
}

async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}

fn panic_response(_panic: Box<dyn Any + Send + 'static>) -> Response {
    ApiError::internal("the server hit a bug while handling this request").into_response()
}

/// One line per request: method, route (the pattern, not the path), status, latency; the
/// same in the metrics.
async fn log_request(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "<unmatched>".to_owned(), |p| p.as_str().to_owned());
    let start = Instant::now();
    let response = next.run(request).await;
    let took = start.elapsed();
    let latency_us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
    let status = response.status();
    // Every request is counted in /metrics; the log keeps what an operator reads: server
    // errors (WARN), refused requests and changes to flags (INFO). Reads and evaluations, the
    // bulk of the traffic, log at DEBUG (`RUST_LOG=flipper_server::request=debug`): an INFO line
    // per evaluation costs a sixth of the server's throughput.
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
    let status = response.status().as_u16();
    state.metrics().http_request(&method, route, status, took);
    response
}
