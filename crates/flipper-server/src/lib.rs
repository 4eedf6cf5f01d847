//! The flipper flag server: `flipper serve`.
//!
//! An [axum](https://docs.rs/axum) application over any flipper [`Store`](flipper::store::Store):
//!
//! * a management API under `/api/v1` (list, create, get, delete, enable, disable, conditions,
//!   bucketer, client data, meta) that writes through [`flipper::FeatureFlagClient`], so
//!   compare-and-swap and events apply exactly as in the library;
//! * evaluation without I/O: the library's live flags ([`flipper::live::LiveFlags`]), every
//!   flag in memory kept current from the store's changes, answer `POST /api/v1/evaluate` and
//!   the OpenFeature Remote Evaluation Protocol (`/ofrep/v1/evaluate/flags[/{key}]`);
//! * a change stream, `GET /api/v1/stream` (server-sent events): every flag, then each change,
//!   resumable with `Last-Event-ID` from a bounded log of recent changes (fed by the live
//!   flags' observer hook);
//! * bearer-token auth (an admin token for writes, an SDK token for reads and evaluation),
//!   `/healthz` and `/readyz`, one structured log line per request;
//! * Prometheus metrics at `GET /metrics` (requests, evaluations, stream subscribers, store
//!   latency and errors, the flags in memory), and this API as an OpenAPI 3.1 document at
//!   `GET /api/v1/openapi.json`.
//!
//! This is the only crate of the workspace that knows HTTP. Bad input gets a 4xx whose JSON
//! body names the field and the problem; the status codes are decided in one place
//! (`error.rs`).
//!
//! ```no_run
//! # async fn run() -> Result<(), flipper_server::ServeError> {
//! let mut config = flipper_server::ServerConfig::default();
//! config.listen = "127.0.0.1:8080".parse().expect("an address");
//! let store = flipper::store::open("memory:").expect("a valid URL");
//! flipper_server::serve(config, store).await // until SIGINT or SIGTERM
//! # }
//! ```
//!
//! To mount the API inside another axum application, build the state with
//! [`AppState::start`] and take [`router`]; call [`AppState::close_streams`] when shutting down.

mod api;
mod auth;
mod body;
mod changelog;
mod config;
mod conn;
mod error;
mod etag;
mod metrics;
mod path;
mod serve;
mod state;
mod stream;
mod thrift;

pub use api::router;
pub use config::{
    DEFAULT_HEARTBEAT_INTERVAL, DEFAULT_LISTEN, DEFAULT_MAX_BODY_BYTES, DEFAULT_POLL_INTERVAL,
    DEFAULT_STORE_URL, DEFAULT_STREAM_LOG_SIZE, SHUTDOWN_GRACE, ServerConfig,
};
pub use serve::{ServeError, serve, serve_on, shutdown_signal};
pub use state::AppState;
