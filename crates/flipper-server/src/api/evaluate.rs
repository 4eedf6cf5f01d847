//! `POST /api/v1/evaluate`: answers with reasons, from the live flags (no store I/O).
//!
//! ```json
//! {"context": {"user_id": 42, "plan": "pro"}, "flags": ["a", "b"], "default": false}
//! ```
//!
//! `context` (the checks, in the object's order), `flags` (every flag when absent) and
//! `default` (the answer for a named flag that does not exist) are all optional. The answer:
//!
//! ```json
//! {"version": 7, "flags": {"a": {"enabled": true, "reason": "conditions_matched"},
//!  "b": {"enabled": false, "reason": "error", "error": "TypeError: ..."}}}
//! ```
//!
//! `version` is the live flags' set version: the same version means the same flags.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use flipper::{Checks, Evaluation, Object, SystemEnv, Value};
use flipper_core::eval::evaluate_or_default;
use flipper_core::json;

use crate::auth::Read;
use crate::body::{self, JsonBody};
use crate::error::{ApiError, json_response};
use crate::metrics::Api;
use crate::state::AppState;

pub(super) async fn evaluate(
    _: Read,
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let body = body::object(body)?;
    body::only(&body, &["context", "flags", "default"])?;
    let context = body::opt_object(&body, "context")?
        .cloned()
        .unwrap_or_default();
    let names = body::opt_str_list(&body, "flags")?;
    let default = body::opt_bool(&body, "default")?.unwrap_or(false);
    if !state.live().is_initialized() {
        return Err(ApiError::not_ready());
    }
    let checks = Checks::from(context);
    let flags = state.live().flags();
    let metrics = state.metrics();
    let mut results = Object::with_capacity(names.as_ref().map_or(flags.len(), Vec::len));
    match names {
        None => {
            for (name, e) in flags.evaluate_all(&checks, &SystemEnv) {
                metrics.evaluation(Api::Evaluate, &flags, name, &e);
                results.insert(name.to_owned(), entry(&e));
            }
        }
        Some(names) => {
            for name in names {
                if results.contains_key(name) {
                    continue;
                }
                let item = flags.get(name).map(|item| &**item);
                let e = evaluate_or_default(item, &checks, default, &SystemEnv);
                metrics.evaluation(Api::Evaluate, &flags, name, &e);
                results.insert(name.to_owned(), entry(&e));
            }
        }
    }
    let mut out = Object::with_capacity(2);
    out.insert("version".into(), Value::from(flags.version()));
    out.insert("flags".into(), Value::from(results));
    Ok(json_response(
        StatusCode::OK,
        json::to_string(&Value::from(out)),
    ))
}

/// `{"enabled", "reason", "error"?}`, as `flipper eval --json` prints each flag.
fn entry(e: &Evaluation) -> Value {
    let mut o = Object::with_capacity(3);
    o.insert("enabled".into(), Value::Bool(e.enabled));
    o.insert("reason".into(), Value::from(e.reason.code()));
    if let Some(error) = e.error_detail() {
        o.insert("error".into(), Value::from(error.to_string()));
    }
    Value::from(o)
}
