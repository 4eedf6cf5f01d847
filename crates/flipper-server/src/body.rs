//! Request bodies: read with the size limit, parsed with Python's JSON rules
//! ([`flipper_core::json`]: big integers, `NaN`, duplicate keys), then taken apart by hand with
//! errors that name the field.

use axum::BoxError;
use axum::body::{Bytes, HttpBody};
use axum::extract::{FromRequest, Request};
use flipper::{Object, Value};
use flipper_core::json;
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::error::ApiError;
use crate::state::AppState;

/// A request body as bytes, read with the size limit (413 beyond it).
#[derive(Debug)]
pub(crate) struct RawBody(pub(crate) Bytes);

impl FromRequest<AppState> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        read(req.into_body(), state.max_body_bytes())
            .await
            .map(RawBody)
    }
}

/// Reads a whole request body, at most `limit` bytes (413 beyond it, before anything more is
/// read when the declared length already exceeds it).
pub(crate) async fn read<B>(body: B, limit: usize) -> Result<Bytes, ApiError>
where
    B: HttpBody<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(ApiError::payload_too_large(limit)),
        Err(e) => Err(ApiError::bad(
            "invalid_body",
            "",
            format!("cannot read the body: {e}"),
        )),
    }
}

/// A request body parsed as JSON.
#[derive(Debug)]
pub(crate) struct JsonBody(pub(crate) Value);

impl FromRequest<AppState> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let RawBody(bytes) = RawBody::from_request(req, state).await?;
        json::parse_bytes(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::invalid_json(&e))
    }
}

/// The body as an object.
pub(crate) fn object(body: Value) -> Result<Object, ApiError> {
    match body {
        Value::Object(o) => Ok(*o),
        other => Err(ApiError::wrong_type("", "a JSON object", &other)),
    }
}

/// Rejects members other than `allowed` (a misspelt field is a mistake worth reporting).
pub(crate) fn only(o: &Object, allowed: &[&str]) -> Result<(), ApiError> {
    match o.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(unknown) => Err(ApiError::unknown_field(unknown, allowed)),
        None => Ok(()),
    }
}

/// An optional member: absent and `null` are both `None`.
fn optional<'a>(o: &'a Object, field: &str) -> Option<&'a Value> {
    o.get(field).filter(|v| !matches!(v, Value::Null))
}

/// An optional boolean member.
pub(crate) fn opt_bool(o: &Object, field: &str) -> Result<Option<bool>, ApiError> {
    match optional(o, field) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(ApiError::wrong_type(field, "true or false", other)),
    }
}

/// A required string member.
pub(crate) fn req_str<'a>(o: &'a Object, field: &str) -> Result<&'a str, ApiError> {
    match o.get(field) {
        None => Err(ApiError::missing_field(field)),
        Some(Value::Str(s)) => Ok(s),
        Some(other) => Err(ApiError::wrong_type(field, "a string", other)),
    }
}

/// An optional object member.
pub(crate) fn opt_object<'a>(o: &'a Object, field: &str) -> Result<Option<&'a Object>, ApiError> {
    match optional(o, field) {
        None => Ok(None),
        Some(Value::Object(inner)) => Ok(Some(inner)),
        Some(other) => Err(ApiError::wrong_type(field, "a JSON object", other)),
    }
}

/// An optional list of strings.
pub(crate) fn opt_str_list<'a>(
    o: &'a Object,
    field: &str,
) -> Result<Option<Vec<&'a str>>, ApiError> {
    match optional(o, field) {
        None => Ok(None),
        Some(Value::List(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_str()
                    .ok_or_else(|| ApiError::wrong_type(&format!("{field}[{i}]"), "a string", v))
            })
            .collect::<Result<_, _>>()
            .map(Some),
        Some(other) => Err(ApiError::wrong_type(field, "a list of strings", other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(text: &str) -> Object {
        object(json::parse(text).unwrap()).unwrap()
    }

    #[test]
    fn fields_are_named_in_errors() {
        let o = obj(r#"{"a": 1, "flags": ["x", 2], "b": null}"#);
        assert_eq!(opt_bool(&o, "b").unwrap(), None);
        let e = opt_bool(&o, "a").unwrap_err();
        assert_eq!((e.code(), e.field()), ("wrong_type", Some("a")));
        assert_eq!(e.message(), "a must be true or false, not a JSON number");
        let e = opt_str_list(&o, "flags").unwrap_err();
        assert_eq!(e.field(), Some("flags[1]"));
        let e = req_str(&o, "name").unwrap_err();
        assert_eq!((e.code(), e.field()), ("missing_field", Some("name")));
        let e = only(&o, &["a", "b"]).unwrap_err();
        assert_eq!((e.code(), e.field()), ("unknown_field", Some("flags")));
        let e = object(Value::from(vec![1])).unwrap_err();
        assert_eq!((e.code(), e.field()), ("wrong_type", None));
        assert_eq!(
            e.message(),
            "the body must be a JSON object, not a JSON array"
        );
    }
}
