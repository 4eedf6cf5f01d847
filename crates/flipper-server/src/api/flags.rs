//! The management API's flag routes: list, create, get, delete, enable, disable, client data,
//! meta. Reads go to the store (so a client reads its own writes); writes go through
//! [`flipper::FeatureFlagClient`].

use axum::extract::{RawQuery, State};
use axum::http::header::{ETAG, LOCATION};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use flipper::store::{Version, Versioned};
use flipper::{Object, Value};
use flipper_core::json;

use crate::auth::{Admin, Read};
use crate::body::{self, JsonBody};
use crate::error::{ApiError, json_response};
use crate::path::{FlagName, encode_segment, query, validate_name};
use crate::state::AppState;

/// `GET /api/v1/flags?limit=&offset=`: `{"flags": [stored flag, ...], "versions": [ETAG, ...]}`
/// in the store's order (each flag's version as its `ETag` shows it, without quotes), plus
/// `"unreadable": [{"name", "error"}]` for stored flags that cannot be read.
pub(super) async fn list(
    _: Read,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let (mut limit, mut offset) = (None, 0);
    for (key, value) in query(raw.as_deref(), &["limit", "offset"])? {
        let n = value.parse::<usize>().map_err(|_| {
            ApiError::bad(
                "invalid_value",
                key,
                format!("{key} must be a whole number of at least 0, not {value:?}"),
            )
        })?;
        if key == "limit" {
            limit = Some(n);
        } else {
            offset = n;
        }
    }
    let entries = state.store().list(limit, offset).await?;
    let mut flags = Vec::with_capacity(entries.len());
    let mut versions = Vec::with_capacity(entries.len());
    let mut unreadable = Vec::new();
    for entry in entries {
        match entry {
            Ok(versioned) => {
                flags.push(versioned.item.to_value());
                versions.push(Value::from(crate::etag::token(&versioned.version)));
            }
            Err(corrupt) => {
                let mut o = Object::with_capacity(2);
                o.insert("name".into(), Value::from(corrupt.key));
                o.insert("error".into(), Value::from(corrupt.error.to_string()));
                unreadable.push(Value::from(o));
            }
        }
    }
    let mut body = Object::with_capacity(3);
    body.insert("flags".into(), Value::List(flags));
    body.insert("versions".into(), Value::List(versions));
    if !unreadable.is_empty() {
        body.insert("unreadable".into(), Value::List(unreadable));
    }
    Ok(ok_json(&Value::from(body)))
}

/// `POST /api/v1/flags[?overwrite=true]` with `{"name", "is_enabled"?, "client_data"?}`:
/// 201 with the stored flag. An existing flag gets 409 unless `overwrite=true`, which replaces
/// it whole (conditions, bucketer, client data, created date), as flipper-client's `create`.
pub(super) async fn create(
    _: Admin,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let mut overwrite = false;
    for (key, value) in query(raw.as_deref(), &["overwrite"])? {
        overwrite = match value.as_str() {
            "true" => true,
            "false" => false,
            _ => {
                return Err(ApiError::bad(
                    "invalid_value",
                    key,
                    format!("overwrite must be true or false, not {value:?}"),
                ));
            }
        };
    }
    let body = body::object(body)?;
    body::only(&body, &["name", "is_enabled", "client_data"])?;
    let name = body::req_str(&body, "name")?;
    validate_name(name)?;
    let is_enabled = body::opt_bool(&body, "is_enabled")?.unwrap_or(false);
    let client_data = body::opt_object(&body, "client_data")?.cloned();
    let client = state.client();
    if overwrite {
        client.create(name, is_enabled, client_data).await?;
    } else {
        client.create_new(name, is_enabled, client_data).await?;
    }
    let stored = stored(&state, name).await?;
    let mut response = with_etag(
        json_response(StatusCode::CREATED, stored.item.to_json()),
        &stored.version,
    );
    if let Ok(location) = HeaderValue::try_from(format!("/api/v1/flags/{}", encode_segment(name))) {
        response.headers_mut().insert(LOCATION, location);
    }
    Ok(response)
}

/// `GET /api/v1/flags/{name}`: the stored flag (its meta included), with its version as ETag.
pub(super) async fn get_flag(
    _: Read,
    State(state): State<AppState>,
    FlagName(name): FlagName,
) -> Result<Response, ApiError> {
    let stored = stored(&state, &name).await?;
    Ok(with_etag(ok_body(stored.item.to_json()), &stored.version))
}

/// `DELETE /api/v1/flags/{name}`: 204.
pub(super) async fn destroy(
    _: Admin,
    State(state): State<AppState>,
    FlagName(name): FlagName,
) -> Result<StatusCode, ApiError> {
    state.client().destroy(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/flags/{name}/enable`: 204.
pub(super) async fn enable(
    _: Admin,
    State(state): State<AppState>,
    FlagName(name): FlagName,
) -> Result<StatusCode, ApiError> {
    state.client().enable(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/flags/{name}/disable`: 204.
pub(super) async fn disable(
    _: Admin,
    State(state): State<AppState>,
    FlagName(name): FlagName,
) -> Result<StatusCode, ApiError> {
    state.client().disable(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/flags/{name}/client_data`: the client data as stored.
pub(super) async fn get_client_data(
    _: Read,
    State(state): State<AppState>,
    FlagName(name): FlagName,
) -> Result<Response, ApiError> {
    Ok(ok_json(&state.client().get_client_data(&name).await?))
}

/// `PATCH /api/v1/flags/{name}/client_data` with a JSON object: its keys are added to the
/// client data, replacing keys of the same name (a shallow merge, as flipper-client's
/// `set_client_data`). 204.
pub(super) async fn merge_client_data(
    _: Admin,
    State(state): State<AppState>,
    FlagName(name): FlagName,
    JsonBody(body): JsonBody,
) -> Result<StatusCode, ApiError> {
    let data = body::object(body)?;
    state.client().set_client_data(&name, data).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/flags/{name}/meta`: `{"client_data", "created_date", "conditions", "bucketer"}`.
pub(super) async fn get_meta(
    _: Read,
    State(state): State<AppState>,
    FlagName(name): FlagName,
) -> Result<Response, ApiError> {
    Ok(ok_json(&state.client().get_meta(&name).await?.to_value()))
}

/// The stored flag, or 404.
async fn stored(state: &AppState, name: &str) -> Result<Versioned, ApiError> {
    state
        .store()
        .get(name)
        .await?
        .ok_or_else(|| ApiError::flag_missing(name))
}

fn ok_body(body: String) -> Response {
    json_response(StatusCode::OK, body)
}

fn ok_json(value: &Value) -> Response {
    ok_body(json::to_string(value))
}

/// Adds the store's version as a strong ETag (see `etag.rs`).
pub(super) fn with_etag(mut response: Response, version: &Version) -> Response {
    if let Some(value) = crate::etag::header(version) {
        response.headers_mut().insert(ETAG, value);
    }
    response
}
