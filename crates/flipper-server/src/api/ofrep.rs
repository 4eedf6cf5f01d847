//! The OpenFeature Remote Evaluation Protocol (OFREP 0.3): `POST /ofrep/v1/evaluate/flags/{key}`
//! and the bulk `POST /ofrep/v1/evaluate/flags`, answered from the live flags.
//!
//! The request is `{"context": {...}}`; the context's attributes are the checks, in the
//! object's order (`targetingKey` is an ordinary attribute named `targetingKey`; a missing
//! context is an empty one). Values are booleans, with the variant `"on"` or `"off"`. Reasons:
//!
//! | flipper | OFREP |
//! |---|---|
//! | `enabled` (on, no condition or bucketer applied) | `STATIC` |
//! | `disabled` | `DISABLED` |
//! | `conditions_matched` | `TARGETING_MATCH` |
//! | `conditions_failed` | `DEFAULT` (no rule chose a value: the flag's off value) |
//! | `bucketed_in`, `bucketed_out` | `SPLIT` |
//! | `error` (where Python raises `TypeError`) | an evaluation failure, `GENERAL` (400 for a single flag; an entry of the bulk `flags` array) |
//! | `not_initialized` (flags not loaded yet) | never answered: the server is not ready (503) until its flags load |
//!
//! A missing flag is `FLAG_NOT_FOUND` (404); a body that is not JSON is `PARSE_ERROR` (400); a
//! context that is not an object is `INVALID_CONTEXT` (400).
//!
//! The bulk response carries an ETag derived from the flags' set version, the context and this
//! process (plus the current second while some flag ramps over time); a request whose
//! `If-None-Match` holds it gets 304 without evaluating anything.

use axum::BoxError;
use axum::body::{Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::header::{ETAG, IF_NONE_MATCH};
use axum::http::{self, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use flipper::{Checks, Evaluation, Object, Reason, SystemEnv, Value};
use flipper_core::eval::{Env, evaluate};
use flipper_core::json;
use sha1::{Digest, Sha1};

use crate::auth::Read;
use crate::error::{ApiError, OfrepError, json_response};
use crate::metrics::Api;
use crate::state::AppState;
use crate::{body, path};
use flipper::live::FlagSet;

/// The router's handler of `POST /ofrep/v1/evaluate/flags/{key}`: [`single`].
pub(super) async fn single_route(State(state): State<AppState>, request: Request) -> Response {
    single(&state, request).await
}

/// The router's handler of `POST /ofrep/v1/evaluate/flags`: [`bulk`].
pub(super) async fn bulk_route(State(state): State<AppState>, request: Request) -> Response {
    bulk(&state, request).await
}

/// The request's parts and body when it carries a read token; why not otherwise.
fn authorized<B>(
    state: &AppState,
    request: http::Request<B>,
) -> Result<(http::request::Parts, B), ApiError> {
    let (parts, body) = request.into_parts();
    Read::check(state, &parts.headers)?;
    Ok((parts, body))
}

/// `POST /ofrep/v1/evaluate/flags/{key}`, whose path ends with the (percent-encoded) key. The
/// router's handler and the connection service's direct path ([`crate::conn`]) both answer
/// with this.
pub(crate) async fn single<B>(state: &AppState, request: http::Request<B>) -> Response
where
    B: HttpBody<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let (parts, body) = match authorized(state, request) {
        Ok(request) => request,
        Err(denied) => return denied.into_response(),
    };
    let raw_key = parts.uri.path().rsplit('/').next().unwrap_or_default();
    let answer = async {
        let key = path::decode_segment(raw_key).map_err(|e| OfrepError::from_api(e, None))?;
        let body = body::read(body, state.max_body_bytes())
            .await
            .map_err(|e| OfrepError::from_api(e, Some(&key)))?;
        evaluate_one(state, &key, &body)
    };
    answer.await.unwrap_or_else(IntoResponse::into_response)
}

/// The answer for flag `key` and a request body.
fn evaluate_one(state: &AppState, key: &str, body: &[u8]) -> Result<Response, OfrepError> {
    let checks = checks(body, Some(key))?;
    // One consistent view of the flags, without touching the shared reference count.
    let snapshot = state.live().snapshot();
    let flags = snapshot.flags();
    if !flags.is_initialized() {
        return Err(OfrepError::from_api(ApiError::not_ready(), Some(key)));
    }
    let Some(item) = flags.get(key) else {
        state.metrics().evaluation_of_missing_flag(Api::Ofrep);
        return Err(OfrepError::flag_not_found(key));
    };
    let e = evaluate(item, &checks, &SystemEnv);
    state.metrics().evaluation(Api::Ofrep, flags, key, &e);
    if let Some(error) = e.error_detail() {
        return Err(OfrepError::evaluation_failed(key, error.to_string()));
    }
    let mut body = String::with_capacity(96);
    write_success(&mut body, key, &e);
    Ok(json_response(StatusCode::OK, body))
}

/// `POST /ofrep/v1/evaluate/flags`: every flag, with an ETag. Answered by the router's handler
/// and the connection service's direct path alike.
pub(crate) async fn bulk<B>(state: &AppState, request: http::Request<B>) -> Response
where
    B: HttpBody<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let (parts, body) = match authorized(state, request) {
        Ok(request) => request,
        Err(denied) => return denied.into_response(),
    };
    let answer = async {
        let body = body::read(body, state.max_body_bytes())
            .await
            .map_err(|e| OfrepError::from_api(e, None))?;
        evaluate_all(state, &parts.headers, &body)
    };
    answer.await.unwrap_or_else(IntoResponse::into_response)
}

/// The bulk answer for a request's headers and body.
fn evaluate_all(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, OfrepError> {
    let checks = checks(body, None)?;
    // One consistent view of the flags, without touching the shared reference count.
    let snapshot = state.live().snapshot();
    let flags = snapshot.flags();
    if !flags.is_initialized() {
        return Err(OfrepError::from_api(ApiError::not_ready(), None));
    }
    let tag = etag(state.instance(), flags, &checks);
    let tag_header = HeaderValue::try_from(tag.as_str()).ok();
    let mut response = if if_none_match(headers, &tag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        // `{"flags": [...]}`, written as it is evaluated.
        let mut body = String::with_capacity(16 + 96 * flags.len());
        body.push_str(r#"{"flags": ["#);
        for (i, (name, e)) in flags.evaluate_all(&checks, &SystemEnv).enumerate() {
            if i > 0 {
                body.push_str(", ");
            }
            state.metrics().evaluation(Api::Ofrep, flags, name, &e);
            match e.error_detail() {
                Some(error) => json::write_value(
                    &OfrepError::evaluation_failed(name, error.to_string()).to_value(),
                    &mut body,
                ),
                None => write_success(&mut body, name, &e),
            }
        }
        body.push_str("]}");
        json_response(StatusCode::OK, body)
    };
    if let Some(tag) = tag_header {
        response.headers_mut().insert(ETAG, tag);
    }
    Ok(response)
}

/// The checks of a request body: its `context`'s attributes, in order.
fn checks(body: &[u8], key: Option<&str>) -> Result<Checks, OfrepError> {
    if let Some(checks) = std::str::from_utf8(body).ok().and_then(context_only) {
        return Ok(checks);
    }
    let body = json::parse_bytes(body)
        .map_err(|e| OfrepError::from_api(ApiError::invalid_json(&e), key))?;
    Ok(Checks::from(context(body, key)?))
}

/// The checks of a body that is exactly `{"context": {...}}` (any JSON whitespace), read
/// member by member into the checks without building the document; `None` for any other body,
/// valid or not, which [`context`] then reads (and words the error). Each name and value is
/// read by the general parser, and a repeated name keeps its first place and its last value,
/// as in the document, so the answer is the general path's.
fn context_only(text: &str) -> Option<Checks> {
    let rest = &mut json::trim_start(text);
    token(rest, "{")?;
    token(rest, r#""context""#)?;
    token(rest, ":")?;
    token(rest, "{")?;
    let mut checks = Checks::new();
    if token(rest, "}").is_none() {
        loop {
            let Value::Str(name) = value(rest)? else {
                return None;
            };
            token(rest, ":")?;
            checks.insert(name, value(rest)?);
            if token(rest, ",").is_none() {
                token(rest, "}")?;
                break;
            }
        }
    }
    token(rest, "}")?;
    json::is_whitespace(rest).then_some(checks)
}

/// Moves past whitespace and `expected`, if that is what comes.
fn token(rest: &mut &str, expected: &str) -> Option<()> {
    *rest = json::trim_start(rest).strip_prefix(expected)?;
    Some(())
}

/// Moves past one JSON value (after whitespace), read by the general parser.
fn value(rest: &mut &str) -> Option<Value> {
    let (value, end) = json::parse_prefix(rest).ok()?;
    *rest = &rest[end..];
    Some(value)
}

/// The request's `context` (absent or `null`: empty). Other members are ignored.
fn context(body: Value, key: Option<&str>) -> Result<Object, OfrepError> {
    let Value::Object(mut body) = body else {
        return Err(OfrepError::from_api(
            ApiError::wrong_type("", "a JSON object with a \"context\"", &body),
            key,
        ));
    };
    match body.swap_remove("context") {
        None | Some(Value::Null) => Ok(Object::new()),
        Some(Value::Object(context)) => Ok(*context),
        Some(other) => Err(OfrepError::invalid_context(
            key,
            format!(
                "context must be a JSON object, not {}",
                crate::error::kind(&other)
            ),
        )),
    }
}

/// A successful evaluation, `{"key": ..., "value": ..., "reason": ..., "variant": ...}`, written
/// straight to the response body.
fn write_success(out: &mut String, key: &str, e: &Evaluation) {
    out.push_str(r#"{"key": "#);
    json::write_str(key, out);
    out.push_str(if e.enabled {
        r#", "value": true, "reason": ""#
    } else {
        r#", "value": false, "reason": ""#
    });
    out.push_str(reason(&e.reason));
    out.push_str(if e.enabled {
        r#"", "variant": "on"}"#
    } else {
        r#"", "variant": "off"}"#
    });
}

/// OpenFeature's reason for a flipper reason (see the module table).
pub(crate) fn reason(r: &Reason) -> &'static str {
    match r {
        Reason::Enabled => "STATIC",
        Reason::Disabled => "DISABLED",
        Reason::ConditionsMatched => "TARGETING_MATCH",
        Reason::ConditionsFailed | Reason::FlagMissing => "DEFAULT",
        // The server answers 503 before its flags are loaded; a client of live flags maps it
        // the way OpenFeature reports a provider that is not ready.
        Reason::NotInitialized => "ERROR",
        Reason::BucketedIn | Reason::BucketedOut => "SPLIT",
        Reason::Error(_) => "ERROR",
        _ => "UNKNOWN",
    }
}

/// The JSON writer's output, fed into SHA-1.
struct Hashing(Sha1);

impl json::Output for Hashing {
    fn push_str(&mut self, s: &str) {
        self.0.update(s.as_bytes());
    }
}

/// `"<hex>"`: SHA-1 of the process, the set version, the context (names and values as
/// JSON, in order) and, while some flag ramps over time, the current second.
fn etag(instance: u64, flags: &FlagSet, checks: &Checks) -> String {
    let mut h = Hashing(Sha1::new());
    h.0.update(instance.to_le_bytes());
    h.0.update(flags.version().to_le_bytes());
    if flags.is_time_dependent() {
        h.0.update((SystemEnv.now().floor() as i64).to_le_bytes());
    }
    for (name, value) in checks {
        json::write_str(name, &mut h);
        json::Output::push_str(&mut h, ":");
        json::write_value(value, &mut h);
        json::Output::push_str(&mut h, ",");
    }
    let digest = h.0.finalize();
    let mut tag = String::with_capacity(2 + 2 * 16);
    tag.push('"');
    for b in &digest[..16] {
        tag.push_str(&format!("{b:02x}"));
    }
    tag.push('"');
    tag
}

/// Whether `If-None-Match` holds `tag` (weak comparison; `*` matches; quotes optional, as some
/// clients drop them).
fn if_none_match(headers: &HeaderMap, tag: &str) -> bool {
    let bare = tag.trim_matches('"');
    headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t).trim_matches('"') == bare)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_only_bodies_read_as_the_document_would() {
        let general = |text: &str| {
            let body = json::parse(text).ok()?;
            context(body, None).ok().map(Checks::from)
        };
        for text in [
            r#"{"context": {"targetingKey": "u1", "plan": "pro", "age": 30}}"#,
            r#"{"context":{"targetingKey":"u1","n":[1,{"a":null}],"x":1e400}}"#,
            " {\r\n \"context\" :\t{ } } \n",
            r#"{"context": {"a": 1, "b": 2, "a": 3}}"#,
            r#"{"context": {"\u00e9\n": "\ud83d\ude00", "big": 123456789012345678901234567890}}"#,
        ] {
            let fast = context_only(text);
            assert!(fast.is_some(), "{text}");
            assert_eq!(fast, general(text), "{text}");
        }
        for text in [
            // Other shapes (read by the general path, which agrees or words the error).
            r#"{"context": {"a": 1}, "other": 2}"#,
            r#"{"other": 2, "context": {"a": 1}}"#,
            r#"{"context": {"a": 1}, "context": {"b": 2}}"#,
            r#"{"context": null}"#,
            r#"{}"#,
            r#"{"context": {"a": 1,}}"#,
            r#"{"context": {"a": 1 "b": 2}}"#,
            r#"{"context": {"a": 1}} x"#,
            r#"{"context": {1: 1}}"#,
            r#"{"context": {"a": "\ud800"}}"#,
            "\u{feff}{\"context\": {}}",
            r#"["context"]"#,
            "",
        ] {
            assert_eq!(context_only(text), None, "{text}");
        }
    }

    #[test]
    fn successes_are_written_as_the_document_would_be() {
        for (key, enabled, reason_) in [
            ("plain", true, Reason::Enabled),
            ("é \"quoted\" 😀", false, Reason::BucketedOut),
            ("x", false, Reason::ConditionsFailed),
        ] {
            let e = Evaluation {
                enabled,
                reason: reason_,
            };
            let mut o = Object::new();
            o.insert("key".into(), Value::from(key));
            o.insert("value".into(), Value::Bool(enabled));
            o.insert("reason".into(), Value::from(reason(&e.reason)));
            o.insert(
                "variant".into(),
                Value::from(if enabled { "on" } else { "off" }),
            );
            let mut written = String::new();
            write_success(&mut written, key, &e);
            assert_eq!(written, json::to_string(&Value::from(o)));
        }
    }

    #[test]
    fn etags_follow_version_and_context() {
        let flags = FlagSet::default();
        let a = Checks::new().with("targetingKey", "u1").with("plan", "pro");
        let b = Checks::new().with("plan", "pro").with("targetingKey", "u1");
        assert_eq!(etag(1, &flags, &a), etag(1, &flags, &a));
        assert_ne!(etag(1, &flags, &a), etag(1, &flags, &b));
        assert_ne!(etag(1, &flags, &a), etag(2, &flags, &a));
        let tag = etag(1, &flags, &a);
        let mut headers = HeaderMap::new();
        headers.insert(
            IF_NONE_MATCH,
            HeaderValue::from_str(&format!("\"x\", W/{tag}")).unwrap(),
        );
        assert!(if_none_match(&headers, &tag));
        headers.insert(
            IF_NONE_MATCH,
            HeaderValue::from_str(tag.trim_matches('"')).unwrap(),
        );
        assert!(if_none_match(&headers, &tag));
        headers.insert(IF_NONE_MATCH, HeaderValue::from_static("\"other\""));
        assert!(!if_none_match(&headers, &tag));
    }
}
