//! [`ApiError`]: the only mapping from failures (the library's [`flipper::Error`], bad
//! request bodies, auth) to HTTP statuses, and [`OfrepError`], the same failures in the
//! shape the OpenFeature Remote Evaluation Protocol prescribes.
//!
//! Every error body is `{"error": {"code": CODE, "message": TEXT, "field": PATH | null}}`.
//!
//! | status | codes |
//! |---|---|
//! | 400 | `invalid_json`, `invalid_body`, `wrong_type`, `missing_field`, `unknown_field`, `invalid_value`, `invalid_name`, `invalid_condition_key`, `invalid_operator`, `invalid_condition`, `invalid_bucketer_type`, `invalid_bucketer`, `invalid_flag` |
//! | 401 | `unauthorized` (no bearer token) |
//! | 403 | `forbidden` (a token that may not do this) |
//! | 404 | `flag_not_found`, `route_not_found` |
//! | 405 | `method_not_allowed` |
//! | 409 | `already_exists`, `conflict` (compare-and-swap still losing after retries) |
//! | 412 | `conflict`, `already_exists` (an `If-Match` / `If-None-Match` precondition failed) |
//! | 413 | `payload_too_large` |
//! | 500 | `corrupt_flag` (a stored flag cannot be read), `internal` |
//! | 501 | `unsupported` (a conditional write on a store without compare-and-swap) |
//! | 503 | `store_unavailable` (the store failed), `not_ready` (flags not loaded yet) |

use axum::http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use flipper::{Object, Value};
use flipper_core::json::{self, ParseError};

/// A failed request: its status, a stable code, a message for people, and the field at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    field: Option<String>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    /// A 400 with `code`, about `field` (a dotted path into the body; empty for the body).
    pub(crate) fn bad(code: &'static str, field: &str, message: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::BAD_REQUEST, code, message);
        e.field = (!field.is_empty()).then(|| field.to_owned());
        e
    }

    /// The body is not JSON as Python's `json.loads` reads it.
    pub(crate) fn invalid_json(e: &ParseError) -> Self {
        Self::bad(
            "invalid_json",
            "",
            format!("the body is not valid JSON: {e}"),
        )
    }

    /// `field` holds the wrong kind of JSON value.
    pub(crate) fn wrong_type(field: &str, expected: &str, found: &Value) -> Self {
        let what = if field.is_empty() { "the body" } else { field };
        Self::bad(
            "wrong_type",
            field,
            format!("{what} must be {expected}, not {}", kind(found)),
        )
    }

    /// A required field is absent.
    pub(crate) fn missing_field(field: &str) -> Self {
        Self::bad("missing_field", field, format!("{field} is required"))
    }

    /// A field this request does not take.
    pub(crate) fn unknown_field(field: &str, allowed: &[&str]) -> Self {
        Self::bad(
            "unknown_field",
            field,
            format!("unknown field {field:?} (expected {})", allowed.join(", ")),
        )
    }

    pub(crate) fn flag_missing(name: &str) -> Self {
        let mut e = Self::new(
            StatusCode::NOT_FOUND,
            "flag_not_found",
            format!("flag {name:?} does not exist"),
        );
        e.field = Some("name".into());
        e
    }

    pub(crate) fn route_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "route_not_found",
            "no such route (see the API in the README)",
        )
    }

    pub(crate) fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this route does not take this method",
        )
    }

    pub(crate) fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body is larger than {limit} bytes (--max-body-bytes)"),
        )
    }

    pub(crate) fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a token is required: send Authorization: Bearer <token>",
        )
    }

    pub(crate) fn forbidden(sdk_token_on_write: bool) -> Self {
        let message = if sdk_token_on_write {
            "the SDK token may only read and evaluate: writes need the admin token"
        } else {
            "this token is not accepted here"
        };
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub(crate) fn not_ready() -> Self {
        Self::not_ready_because("the flags are not loaded from the store yet")
    }

    pub(crate) fn not_ready_because(message: &str) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", message)
    }

    pub(crate) fn store_unavailable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            message,
        )
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// The library's error for a conditional write (`If-Match`, `If-None-Match`): a failed
    /// precondition is 412, with the code `conflict` or `already_exists`; anything else maps
    /// as usual.
    pub(crate) fn from_conditional(e: flipper::Error) -> Self {
        let code = match e {
            flipper::Error::Conflict { .. } => "conflict",
            flipper::Error::AlreadyExists { .. } => "already_exists",
            other => return other.into(),
        };
        Self::new(StatusCode::PRECONDITION_FAILED, code, e.to_string())
    }

    #[cfg(test)]
    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }

    #[cfg(test)]
    pub(crate) fn code(&self) -> &'static str {
        self.code
    }

    #[cfg(test)]
    pub(crate) fn message(&self) -> &str {
        &self.message
    }

    #[cfg(test)]
    pub(crate) fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }
}

/// "a JSON string", "null", ... for messages.
pub(crate) fn kind(v: &Value) -> String {
    match v {
        Value::Null => "null".to_owned(),
        other => format!("a JSON {}", other.json_kind()),
    }
}

impl From<flipper::Error> for ApiError {
    fn from(e: flipper::Error) -> Self {
        use flipper::Error as E;
        let message = e.to_string();
        match e {
            E::FlagDoesNotExist { name } => Self::flag_missing(&name),
            E::AlreadyExists { name } => Self::new(
                StatusCode::CONFLICT,
                "already_exists",
                format!(
                    "flag {name:?} already exists (add ?overwrite=true to replace it, as \
                     flipper-client's create does)"
                ),
            ),
            E::Conflict { .. } | E::TooManyConflicts { .. } => {
                Self::new(StatusCode::CONFLICT, "conflict", message)
            }
            E::InvalidFlag { .. } => Self::bad("invalid_flag", "", message),
            E::Corrupt { .. } => {
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "corrupt_flag", message)
            }
            // A store that refuses our credentials (a flipper server as the store) is this
            // server's problem, not the client's.
            E::Io { .. } | E::InvalidFile { .. } | E::Backend { .. } | E::Unauthorized { .. } => {
                Self::store_unavailable(message)
            }
            E::Unsupported { .. } => Self::new(StatusCode::NOT_IMPLEMENTED, "unsupported", message),
            _ => Self::internal(message),
        }
    }
}

/// `Content-Type: application/json` and `body`.
pub(crate) fn json_response(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn log(status: StatusCode, code: &str, message: &str) {
    if status.is_server_error() {
        tracing::error!(status = status.as_u16(), code, message, "request failed");
    } else {
        tracing::debug!(status = status.as_u16(), code, message, "request rejected");
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        log(self.status, self.code, &self.message);
        let mut error = Object::with_capacity(3);
        error.insert("code".into(), Value::from(self.code));
        error.insert("message".into(), Value::from(self.message));
        error.insert("field".into(), self.field.map_or(Value::Null, Value::from));
        let mut body = Object::with_capacity(1);
        body.insert("error".into(), Value::from(error));
        let mut response = json_response(self.status, json::to_string(&Value::from(body)));
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// A failure in OFREP's shape: `{"key"?, "errorCode", "errorDetails"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OfrepError {
    status: StatusCode,
    key: Option<String>,
    code: &'static str,
    details: String,
}

impl OfrepError {
    /// `FLAG_NOT_FOUND`, 404.
    pub(crate) fn flag_not_found(key: &str) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            key: Some(key.to_owned()),
            code: "FLAG_NOT_FOUND",
            details: format!("flag {key:?} was not found"),
        }
    }

    /// `INVALID_CONTEXT`, 400.
    pub(crate) fn invalid_context(key: Option<&str>, details: String) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            key: key.map(str::to_owned),
            code: "INVALID_CONTEXT",
            details,
        }
    }

    /// `GENERAL`, 400: the flag exists but evaluating it failed (where Python raises).
    pub(crate) fn evaluation_failed(key: &str, details: String) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            key: Some(key.to_owned()),
            code: "GENERAL",
            details,
        }
    }

    /// Any other failure, for the flag `key` (absent for bulk requests): a malformed request
    /// (400) is a `PARSE_ERROR`; any other status is kept, with `GENERAL`.
    pub(crate) fn from_api(e: ApiError, key: Option<&str>) -> Self {
        let code = match (e.status, e.code) {
            (StatusCode::BAD_REQUEST, _) => "PARSE_ERROR",
            (StatusCode::NOT_FOUND, "flag_not_found") => "FLAG_NOT_FOUND",
            _ => "GENERAL",
        };
        Self {
            status: e.status,
            key: key.map(str::to_owned),
            code,
            details: e.message,
        }
    }

    /// The entry for this failure in a bulk response's `flags` array.
    pub(crate) fn to_value(&self) -> Value {
        let mut o = Object::with_capacity(3);
        if let Some(key) = &self.key {
            o.insert("key".into(), Value::from(key.as_str()));
        }
        o.insert("errorCode".into(), Value::from(self.code));
        o.insert("errorDetails".into(), Value::from(self.details.as_str()));
        Value::from(o)
    }
}

impl IntoResponse for OfrepError {
    fn into_response(self) -> Response {
        log(self.status, self.code, &self.details);
        let body = json::to_string(&self.to_value());
        let mut response = json_response(self.status, body);
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_errors_map_to_statuses() {
        let cases: [(flipper::Error, u16, &str); 5] = [
            (
                flipper::Error::FlagDoesNotExist { name: "x".into() },
                404,
                "flag_not_found",
            ),
            (
                flipper::Error::AlreadyExists { name: "x".into() },
                409,
                "already_exists",
            ),
            (
                flipper::Error::TooManyConflicts {
                    name: "x".into(),
                    attempts: 64,
                },
                409,
                "conflict",
            ),
            (
                flipper::Error::InvalidFlag {
                    name: "x".into(),
                    message: "m".into(),
                },
                400,
                "invalid_flag",
            ),
            (
                flipper::Error::Backend {
                    store: "s".into(),
                    source: "down".into(),
                },
                503,
                "store_unavailable",
            ),
        ];
        for (e, status, code) in cases {
            let api = ApiError::from(e);
            assert_eq!((api.status().as_u16(), api.code()), (status, code));
        }
    }

    #[test]
    fn ofrep_codes() {
        let parse = OfrepError::from_api(
            ApiError::invalid_json(&json::parse("{").unwrap_err()),
            Some("k"),
        );
        assert_eq!((parse.status.as_u16(), parse.code), (400, "PARSE_ERROR"));
        let big = OfrepError::from_api(ApiError::payload_too_large(1), None);
        assert_eq!((big.status.as_u16(), big.code), (413, "GENERAL"));
        assert_eq!(
            json::to_string(&OfrepError::flag_not_found("k").to_value()),
            r#"{"key": "k", "errorCode": "FLAG_NOT_FOUND", "errorDetails": "flag \"k\" was not found"}"#
        );
    }
}
