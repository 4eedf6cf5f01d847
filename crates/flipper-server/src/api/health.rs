//! `/healthz` (the process answers) and `/readyz` (the store answers and the flags are
//! loaded). Neither needs a token, so that orchestrators can probe them.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use flipper::{Object, Value};
use flipper_core::json;

use crate::error::{ApiError, json_response};
use crate::state::AppState;

/// How long the readiness probe waits for the store.
const STORE_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// A name no one uses: reading it is the cheapest call every store has.
const PROBE_NAME: &str = "__flipper_readyz_probe__";

pub(super) async fn healthz() -> Response {
    json_response(StatusCode::OK, r#"{"status": "ok"}"#.to_owned())
}

pub(super) async fn readyz(State(state): State<AppState>) -> Result<Response, ApiError> {
    if !state.live().is_initialized() {
        return Err(ApiError::not_ready());
    }
    if !state.is_following() {
        return Err(ApiError::not_ready_because(
            "the flags are no longer kept current (the sync task stopped; see the logs)",
        ));
    }
    match tokio::time::timeout(STORE_PROBE_TIMEOUT, state.store().get(PROBE_NAME)).await {
        Err(_) => {
            return Err(ApiError::store_unavailable(format!(
                "the store did not answer within {STORE_PROBE_TIMEOUT:?}"
            )));
        }
        Ok(Err(e)) => return Err(ApiError::store_unavailable(e.to_string())),
        Ok(Ok(_)) => {}
    }
    let flags = state.live().flags();
    let mut body = Object::with_capacity(3);
    body.insert("status".into(), Value::from("ready"));
    body.insert("flags".into(), Value::from(flags.len()));
    body.insert("version".into(), Value::from(flags.version()));
    Ok(json_response(
        StatusCode::OK,
        json::to_string(&Value::from(body)),
    ))
}
