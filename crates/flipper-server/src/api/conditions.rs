//! Conditions and the bucketer: request bodies turned into the library's types by hand, with
//! errors that name the field, then written through the client.
//!
//! A condition is given either with kwargs-style keys, as flipper-client's
//! `Condition(age__gte=18)`:
//!
//! ```json
//! {"checks": {"age__gte": 18, "plan__in": ["pro", "enterprise"]}}
//! ```
//!
//! or in the stored form (what `GET .../meta` shows under `"conditions"`):
//!
//! ```json
//! {"age": [{"variable": "age", "value": 18, "operator": "gte"}]}
//! ```
//!
//! The two are told apart by a single `"checks"` member holding an object (in the stored form,
//! every member holds a list).

use axum::extract::State;
use axum::http::StatusCode;
use flipper::{Bucketer, Condition, Object, Value};
use flipper_core::condition::{Operator, parse_check_key};

use crate::auth::Admin;
use crate::body::{self, JsonBody};
use crate::error::ApiError;
use crate::path::FlagName;
use crate::state::AppState;

/// `POST /api/v1/flags/{name}/conditions`: appends one condition. 204.
pub(super) async fn add(
    _: Admin,
    State(state): State<AppState>,
    FlagName(name): FlagName,
    JsonBody(body): JsonBody,
) -> Result<StatusCode, ApiError> {
    let condition = condition(&body, "")?;
    if condition.is_empty() {
        return Err(ApiError::bad(
            "invalid_condition",
            "checks",
            "a condition needs at least one check (an empty one would pass everyone)",
        ));
    }
    state.client().add_condition(&name, condition).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /api/v1/flags/{name}/conditions` with a JSON array of conditions (either form):
/// replaces them all (`[]` removes every condition). 204.
pub(super) async fn replace(
    _: Admin,
    State(state): State<AppState>,
    FlagName(name): FlagName,
    JsonBody(body): JsonBody,
) -> Result<StatusCode, ApiError> {
    let Value::List(list) = &body else {
        return Err(ApiError::wrong_type(
            "",
            "a JSON array of conditions",
            &body,
        ));
    };
    let conditions = list
        .iter()
        .enumerate()
        .map(|(i, c)| condition(c, &format!("[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    state.client().set_conditions(&name, conditions).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /api/v1/flags/{name}/bucketer` with a bucketer in the stored form. 204.
pub(super) async fn set_bucketer(
    _: Admin,
    State(state): State<AppState>,
    FlagName(name): FlagName,
    JsonBody(body): JsonBody,
) -> Result<StatusCode, ApiError> {
    let bucketer = bucketer(&body)?;
    state.client().set_bucketer(&name, bucketer).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `at` joined to `field` as a dotted path (`[0]` + `checks` = `[0].checks`).
fn join(at: &str, field: &str) -> String {
    match (at.is_empty(), field.is_empty()) {
        (true, _) => field.to_owned(),
        (false, true) => at.to_owned(),
        (false, false) if field.starts_with('[') => format!("{at}{field}"),
        (false, false) => format!("{at}.{field}"),
    }
}

/// One condition in either form; `at` locates it in the body for messages.
fn condition(v: &Value, at: &str) -> Result<Condition, ApiError> {
    let Value::Object(o) = v else {
        return Err(ApiError::wrong_type(at, "a condition (a JSON object)", v));
    };
    match o.get("checks") {
        Some(Value::Object(checks)) if o.len() == 1 => kwargs(checks, &join(at, "checks")),
        _ => stored(o, at),
    }
}

/// `{"age__gte": 18, ...}`: each key a variable with an optional operator suffix.
fn kwargs(checks: &Object, at: &str) -> Result<Condition, ApiError> {
    let mut condition = Condition::new();
    for (key, value) in checks {
        let field = join(at, key);
        if key.is_empty() {
            return Err(ApiError::bad(
                "invalid_condition_key",
                &field,
                "a condition key must name a variable (e.g. age__gte)",
            ));
        }
        let (variable, operator) = parse_check_key(key).map_err(|e| {
            ApiError::bad(
                "invalid_condition_key",
                &field,
                format!("invalid condition key {key:?}: {e}"),
            )
        })?;
        condition = condition.with(variable, operator, value.clone());
    }
    Ok(condition)
}

/// The stored form. Operators are checked first, so that an unknown one is reported as such
/// with its path; the rest is [`Condition::from_value`]'s reading.
fn stored(o: &Object, at: &str) -> Result<Condition, ApiError> {
    for (variable, checks) in o {
        let Value::List(checks) = checks else {
            continue;
        };
        for (i, check) in checks.iter().enumerate() {
            if let Some(Value::Str(symbol)) = check.as_object().and_then(|c| c.get("operator")) {
                Operator::from_symbol(Some(symbol)).map_err(|e| {
                    ApiError::bad(
                        "invalid_operator",
                        &join(at, &format!("{variable}[{i}].operator")),
                        e.to_string(),
                    )
                })?;
            }
        }
    }
    Condition::from_value(&Value::from(o.clone())).map_err(|e| {
        let field = join(at, &e.path);
        ApiError::bad(
            "invalid_condition",
            &field,
            format!("invalid condition: {e}"),
        )
    })
}

/// The bucketer types flipper-client knows.
const BUCKETER_TYPES: [&str; 3] = [
    "NoOpBucketer",
    "PercentageBucketer",
    "ConsistentHashPercentageBucketer",
];

/// A bucketer in the stored form (`{"type": ..., "percentage": ..., "key_whitelist": ...}`).
fn bucketer(v: &Value) -> Result<Bucketer, ApiError> {
    let Value::Object(o) = v else {
        return Err(ApiError::wrong_type(
            "",
            "a bucketer (a JSON object with a \"type\")",
            v,
        ));
    };
    match o.get("type") {
        None => return Err(ApiError::missing_field("type")),
        Some(Value::Str(t)) if BUCKETER_TYPES.contains(&t.as_str()) => {}
        Some(other) => {
            return Err(ApiError::bad(
                "invalid_bucketer_type",
                "type",
                format!(
                    "bucketer type not supported: {} (expected one of {})",
                    flipper_core::json::to_string(other),
                    BUCKETER_TYPES.join(", ")
                ),
            ));
        }
    }
    body::only(o, &["type", "percentage", "key_whitelist"])?;
    Bucketer::from_value(v).map_err(|message| {
        let field = if message.contains("key_whitelist") {
            "key_whitelist"
        } else {
            "percentage"
        };
        ApiError::bad(
            "invalid_bucketer",
            field,
            format!("invalid bucketer: {message}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use flipper_core::json;

    use super::*;

    fn parse(text: &str) -> Value {
        json::parse(text).unwrap()
    }

    #[test]
    fn both_condition_forms_read_the_same() {
        let kw = condition(
            &parse(r#"{"checks": {"age__gte": 18, "plan__in": ["pro"]}}"#),
            "",
        )
        .unwrap();
        let st = condition(
            &parse(
                r#"{"age": [{"variable": "age", "value": 18, "operator": "gte"}], "plan": [{"variable": "plan", "value": ["pro"], "operator": "in"}]}"#,
            ),
            "",
        )
        .unwrap();
        assert_eq!(kw, st);
        assert_eq!(
            kw,
            Condition::new().gte("age", 18).is_in("plan", vec!["pro"])
        );
        // A stored-form variable named "checks" holds a list, so it is not the kwargs form.
        let named = condition(
            &parse(r#"{"checks": [{"variable": "checks", "value": 1, "operator": null}]}"#),
            "",
        )
        .unwrap();
        assert_eq!(named, Condition::new().eq("checks", 1));
    }

    #[test]
    fn condition_errors_name_the_field() {
        let cases = [
            (
                r#"{"checks": {"age__IN": 1}}"#,
                "invalid_condition_key",
                "[2].checks.age__IN",
            ),
            (
                r#"{"checks": {"": 1}}"#,
                "invalid_condition_key",
                "[2].checks",
            ),
            (
                r#"{"age": [{"variable": "age", "value": 1, "operator": "bigger"}]}"#,
                "invalid_operator",
                "[2].age[0].operator",
            ),
            (
                r#"{"age": [{"variable": "age", "value": 1}]}"#,
                "invalid_condition",
                "[2].age[0]",
            ),
            (r#"{"age": 1}"#, "invalid_condition", "[2].age"),
            ("[]", "wrong_type", "[2]"),
        ];
        for (text, code, field) in cases {
            let e = condition(&parse(text), "[2]").unwrap_err();
            assert_eq!(
                (e.code(), e.field()),
                (code, Some(field)),
                "{text}: {}",
                e.message()
            );
        }
    }

    #[test]
    fn bucketer_errors_name_the_field() {
        let ok = bucketer(&parse(
            r#"{"type": "ConsistentHashPercentageBucketer", "percentage": {"type": "Percentage", "value": 0.5}, "key_whitelist": ["user_id"]}"#,
        ))
        .unwrap();
        assert!(matches!(ok, Bucketer::ConsistentHash { .. }));
        let cases = [
            (r#"{"type": "Nope"}"#, "invalid_bucketer_type", "type"),
            (r#"{"type": 1}"#, "invalid_bucketer_type", "type"),
            ("{}", "missing_field", "type"),
            (r#"{"type": "NoOpBucketer", "x": 1}"#, "unknown_field", "x"),
            (
                r#"{"type": "PercentageBucketer", "percentage": {"type": "Half"}}"#,
                "invalid_bucketer",
                "percentage",
            ),
            (
                r#"{"type": "ConsistentHashPercentageBucketer", "key_whitelist": "user_id"}"#,
                "invalid_bucketer",
                "key_whitelist",
            ),
        ];
        for (text, code, field) in cases {
            let e = bucketer(&parse(text)).unwrap_err();
            assert_eq!(
                (e.code(), e.field()),
                (code, Some(field)),
                "{text}: {}",
                e.message()
            );
        }
    }
}
