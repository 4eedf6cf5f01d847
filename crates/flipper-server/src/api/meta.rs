//! `GET /metrics` (Prometheus) and `GET /api/v1/openapi.json` (this API, described).

use axum::extract::State;
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::auth::Read;
use crate::error::{ApiError, json_response};
use crate::state::AppState;

/// The OpenAPI 3 document, checked in beside `Cargo.toml` (`tests/openapi.rs` keeps it in step
/// with the routes).
pub(crate) const OPENAPI: &str = include_str!("../../openapi.json");

/// `GET /api/v1/openapi.json`: no token, like any published API description.
pub(super) async fn openapi() -> Response {
    json_response(StatusCode::OK, OPENAPI.to_owned())
}

/// `GET /metrics`: with the read scope (SDK or admin token), because its labels name flags.
/// OpenMetrics when the scraper accepts it (Prometheus does), else Prometheus text 0.0.4.
pub(super) async fn metrics(
    _: Read,
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let openmetrics = headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    let body = state
        .metrics()
        .render(openmetrics)
        .map_err(|_| ApiError::internal("the metrics cannot be encoded"))?;
    let content_type = if openmetrics {
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    } else {
        "text/plain; version=0.0.4; charset=utf-8"
    };
    let mut response = (StatusCode::OK, body).into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(response)
}
