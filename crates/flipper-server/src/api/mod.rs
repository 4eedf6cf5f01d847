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
pub(crate) mod log;
mod meta;
pub(crate) mod ofrep;
mod stored;

use std::any::Any;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post, put};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;

use crate::error::ApiError;
use crate::state::AppState;

/// The whole application: every route, over `state`.
pub fn router(state: AppState) -> Router {
    let limit = state.max_body_bytes();
    let routes = Routes::default()
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
        .route("/ofrep/v1/evaluate/flags", post(ofrep::bulk_route))
        .route("/ofrep/v1/evaluate/flags/{key}", post(ofrep::single_route))
        .route("/api/v1/openapi.json", get(meta::openapi))
        .route("/metrics", get(meta::metrics));
    // One layer (so one boxed service per route, cloned per request) with everything a request
    // goes through: its log line and metrics, a panic turned into a 500, the body limit.
    let layers = ServiceBuilder::new()
        .layer(log::LogLayer::new(state.clone(), routes.patterns))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(DefaultBodyLimit::max(limit));
    routes
        .router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(layers)
        .with_state(state)
}

/// The router being built, and its route patterns (the `route` label of requests).
#[derive(Default)]
struct Routes {
    router: Router<AppState>,
    patterns: Vec<&'static str>,
}

impl Routes {
    fn route(mut self, pattern: &'static str, methods: MethodRouter<AppState>) -> Self {
        self.patterns.push(pattern);
        // Not written as a method call: tests/openapi.rs reads the route method calls in this
        // file's text as the list of routes.
        self.router = Router::route(self.router, pattern, methods);
        self
    }
}

async fn not_found() -> ApiError {
    ApiError::route_not_found()
}

async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}

pub(crate) fn panic_response(_panic: Box<dyn Any + Send + 'static>) -> Response {
    ApiError::internal("the server hit a bug while handling this request").into_response()
}
