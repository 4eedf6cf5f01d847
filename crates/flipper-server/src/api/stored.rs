//! `PUT /api/v1/flags/{name}`: writes a whole flag in its stored form, as a store's `put` does.
//! The library's HTTP store writes through this route.
//!
//! * no precondition: the flag is created or replaced;
//! * `If-None-Match: *`: only if it does not exist (412 `already_exists` otherwise);
//! * `If-Match: "ETAG"` (or a list, or `*`): only if its current version is one of these
//!   (412 `conflict` otherwise, also when it does not exist).
//!
//! The answer is 200 with the stored flag and its new version as `ETag`. The write goes to the
//! store as given (no client events, no read-modify-write).

use axum::extract::State;
use axum::http::header::{IF_MATCH, IF_NONE_MATCH};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use flipper::Item;
use flipper::store::PutMode;
use flipper_core::ItemError;

use super::flags::with_etag;
use crate::auth::Admin;
use crate::body::JsonBody;
use crate::error::{ApiError, json_response};
use crate::etag;
use crate::path::{FlagName, validate_name};
use crate::state::AppState;

/// The write's precondition, from the request's headers.
enum Precondition {
    None,
    /// `If-None-Match: *`.
    Absent,
    /// `If-Match`: the list of tags as sent.
    Matches(String),
}

/// `PUT /api/v1/flags/{name}` with a flag in the stored form: see the module documentation.
pub(super) async fn put_flag(
    _: Admin,
    State(state): State<AppState>,
    FlagName(name): FlagName,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let precondition = precondition(&headers)?;
    let item = Item::from_value(&body).map_err(|e| invalid_flag(&e))?;
    if item.feature_name != name {
        return Err(ApiError::bad(
            "invalid_value",
            "feature_name",
            format!(
                "feature_name must be the flag name of the path ({name:?}), not {:?}",
                item.feature_name
            ),
        ));
    }
    item.validate().map_err(|e| invalid_flag(&e))?;
    let mode = match precondition {
        // Writes that may create a flag follow the rules for new names; an `If-Match` write
        // only changes an existing flag.
        Precondition::None => {
            validate_name(&name)?;
            PutMode::Overwrite
        }
        Precondition::Absent => {
            validate_name(&name)?;
            PutMode::Create
        }
        Precondition::Matches(tags) => match state.store().get(&name).await? {
            Some(current) if etag::listed(&tags, &etag::token(&current.version)) => {
                PutMode::Update(current.version)
            }
            _ => {
                return Err(ApiError::from_conditional(flipper::Error::Conflict {
                    name,
                }));
            }
        },
    };
    let version = state
        .store()
        .put(&item, mode)
        .await
        .map_err(ApiError::from_conditional)?;
    Ok(with_etag(
        json_response(StatusCode::OK, item.to_json()),
        &version,
    ))
}

fn precondition(headers: &HeaderMap) -> Result<Precondition, ApiError> {
    let text = |name: &'static str, value: &axum::http::HeaderValue| {
        value
            .to_str()
            .map(str::to_owned)
            .map_err(|_| ApiError::bad("invalid_value", name, format!("{name} must be ASCII text")))
    };
    let if_match = headers
        .get(IF_MATCH)
        .map(|v| text("If-Match", v))
        .transpose()?;
    let if_none_match = headers
        .get(IF_NONE_MATCH)
        .map(|v| text("If-None-Match", v))
        .transpose()?;
    match (if_match, if_none_match) {
        (None, None) => Ok(Precondition::None),
        (Some(tags), None) => Ok(Precondition::Matches(tags)),
        (None, Some(star)) if star.trim() == "*" => Ok(Precondition::Absent),
        (None, Some(_)) => Err(ApiError::bad(
            "invalid_value",
            "If-None-Match",
            "this route takes If-None-Match: * only (write only if the flag does not exist)",
        )),
        (Some(_), Some(_)) => Err(ApiError::bad(
            "invalid_value",
            "If-None-Match",
            "send If-Match or If-None-Match, not both",
        )),
    }
}

/// A body that is not a storable flag: 400 `invalid_flag`, naming the field.
fn invalid_flag(e: &ItemError) -> ApiError {
    let field = match e {
        ItemError::Format { path, .. } => path.as_str(),
        ItemError::Json(_) => "",
    };
    ApiError::bad(
        "invalid_flag",
        field,
        format!("the body is not a flag in the stored form: {e}"),
    )
}
