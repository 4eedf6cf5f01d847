//! A corpus of bad requests: each gets its 4xx, a JSON error that names the problem (and the
//! field, where there is one), and leaves the store byte for byte unchanged. Then the failures
//! that are not the caller's: conflicts (409) and a store gone away (503).

mod common;

use std::sync::Arc;

use axum::http::StatusCode;
use common::{ADMIN, Rigged, SDK, app, call, stored};
use flipper::Value;
use flipper::store::{MemoryStore, Store, StoreExt};

struct Case {
    method: &'static str,
    uri: &'static str,
    body: Option<&'static str>,
    status: u16,
    code: &'static str,
    field: Option<&'static str>,
}

const fn case(
    method: &'static str,
    uri: &'static str,
    body: Option<&'static str>,
    status: u16,
    code: &'static str,
    field: Option<&'static str>,
) -> Case {
    Case {
        method,
        uri,
        body,
        status,
        code,
        field,
    }
}

const FLAGS: &str = "/api/v1/flags";
const COND: &str = "/api/v1/flags/f/conditions";
const BUCKETER: &str = "/api/v1/flags/f/bucketer";

#[rustfmt::skip]
const CASES: &[Case] = &[
    // Create.
    case("POST", FLAGS, Some("{"), 400, "invalid_json", None),
    case("POST", FLAGS, Some(""), 400, "invalid_json", None),
    case("POST", FLAGS, Some("\u{feff}{}"), 400, "invalid_json", None),
    case("POST", FLAGS, Some(r#"{"name": "\ud800"}"#), 400, "invalid_json", None),
    case("POST", FLAGS, Some("[]"), 400, "wrong_type", None),
    case("POST", FLAGS, Some(r#"{"is_enabled": true}"#), 400, "missing_field", Some("name")),
    case("POST", FLAGS, Some(r#"{"name": 5}"#), 400, "wrong_type", Some("name")),
    case("POST", FLAGS, Some(r#"{"name": ""}"#), 400, "invalid_name", Some("name")),
    case("POST", FLAGS, Some(r#"{"name": "a\u0000b"}"#), 400, "invalid_name", Some("name")),
    case("POST", FLAGS, Some(r#"{"name": "x", "is_enabled": "yes"}"#), 400, "wrong_type", Some("is_enabled")),
    case("POST", FLAGS, Some(r#"{"name": "x", "is_enabled": 1}"#), 400, "wrong_type", Some("is_enabled")),
    case("POST", FLAGS, Some(r#"{"name": "x", "client_data": [1]}"#), 400, "wrong_type", Some("client_data")),
    case("POST", FLAGS, Some(r#"{"name": "x", "colour": "red"}"#), 400, "unknown_field", Some("colour")),
    case("POST", FLAGS, Some(r#"{"name": "f"}"#), 409, "already_exists", None),
    case("POST", "/api/v1/flags?overwrite=maybe", Some(r#"{"name": "f"}"#), 400, "invalid_value", Some("overwrite")),
    case("POST", "/api/v1/flags?force=true", Some(r#"{"name": "f"}"#), 400, "unknown_field", Some("force")),
    // List.
    case("GET", "/api/v1/flags?limit=-1", None, 400, "invalid_value", Some("limit")),
    case("GET", "/api/v1/flags?offset=x", None, 400, "invalid_value", Some("offset")),
    case("GET", "/api/v1/flags?page=2", None, 400, "unknown_field", Some("page")),
    // Missing flags.
    case("GET", "/api/v1/flags/missing", None, 404, "flag_not_found", Some("name")),
    case("DELETE", "/api/v1/flags/missing", None, 404, "flag_not_found", Some("name")),
    case("POST", "/api/v1/flags/missing/enable", None, 404, "flag_not_found", Some("name")),
    case("POST", "/api/v1/flags/missing/disable", None, 404, "flag_not_found", Some("name")),
    case("POST", "/api/v1/flags/missing/conditions", Some(r#"{"checks": {"a": 1}}"#), 404, "flag_not_found", Some("name")),
    case("PUT", "/api/v1/flags/missing/conditions", Some("[]"), 404, "flag_not_found", Some("name")),
    case("PUT", "/api/v1/flags/missing/bucketer", Some(r#"{"type": "NoOpBucketer"}"#), 404, "flag_not_found", Some("name")),
    case("PATCH", "/api/v1/flags/missing/client_data", Some("{}"), 404, "flag_not_found", Some("name")),
    case("GET", "/api/v1/flags/missing/client_data", None, 404, "flag_not_found", Some("name")),
    case("GET", "/api/v1/flags/missing/meta", None, 404, "flag_not_found", Some("name")),
    case("POST", "/api/v1/flags/%FF/enable", None, 400, "invalid_name", Some("name")),
    // Conditions.
    case("POST", COND, Some(r#"{"checks": {"age__IN": 1}}"#), 400, "invalid_condition_key", Some("checks.age__IN")),
    case("POST", COND, Some(r#"{"checks": {"x__": 1}}"#), 400, "invalid_condition_key", Some("checks.x__")),
    case("POST", COND, Some(r#"{"checks": {"": 1}}"#), 400, "invalid_condition_key", Some("checks")),
    case("POST", COND, Some(r#"{"checks": {}}"#), 400, "invalid_condition", Some("checks")),
    case("POST", COND, Some("{}"), 400, "invalid_condition", Some("checks")),
    case("POST", COND, Some(r#"{"checks": 5}"#), 400, "invalid_condition", Some("checks")),
    case("POST", COND, Some(r#""age__gte=18""#), 400, "wrong_type", None),
    case("POST", COND, Some(r#"{"age": [{"variable": "age", "value": 18, "operator": "bigger"}]}"#), 400, "invalid_operator", Some("age[0].operator")),
    case("POST", COND, Some(r#"{"age": [{"variable": "age", "value": 18}]}"#), 400, "invalid_condition", Some("age[0]")),
    case("POST", COND, Some(r#"{"age": [{"variable": "x_", "value": 1, "operator": "gt"}]}"#), 400, "invalid_condition", None),
    case("PUT", COND, Some(r#"{"checks": {"a": 1}}"#), 400, "wrong_type", None),
    case("PUT", COND, Some(r#"[{"checks": {"a": 1}}, {"checks": {"b__gte_": 1}}]"#), 400, "invalid_condition_key", Some("[1].checks.b__gte_")),
    case("PUT", COND, Some("[1]"), 400, "wrong_type", Some("[0]")),
    // Bucketer.
    case("PUT", BUCKETER, Some(r#"{"type": "RandomBucketer"}"#), 400, "invalid_bucketer_type", Some("type")),
    case("PUT", BUCKETER, Some(r#"{"percentage": 0.5}"#), 400, "missing_field", Some("type")),
    case("PUT", BUCKETER, Some("null"), 400, "wrong_type", None),
    case("PUT", BUCKETER, Some(r#"{"type": "NoOpBucketer", "typo": 1}"#), 400, "unknown_field", Some("typo")),
    case("PUT", BUCKETER, Some(r#"{"type": "PercentageBucketer", "percentage": {"type": "Fraction", "value": 0.5}}"#), 400, "invalid_bucketer", Some("percentage")),
    case("PUT", BUCKETER, Some(r#"{"type": "ConsistentHashPercentageBucketer", "key_whitelist": [1]}"#), 400, "invalid_bucketer", Some("key_whitelist")),
    // Client data.
    case("PATCH", "/api/v1/flags/f/client_data", Some("[1]"), 400, "wrong_type", None),
    case("PATCH", "/api/v1/flags/f/client_data", Some("{'a': 1}"), 400, "invalid_json", None),
    // Evaluation.
    case("POST", "/api/v1/evaluate", Some(r#"{"context": [1]}"#), 400, "wrong_type", Some("context")),
    case("POST", "/api/v1/evaluate", Some(r#"{"flags": ["f", 2]}"#), 400, "wrong_type", Some("flags[1]")),
    case("POST", "/api/v1/evaluate", Some(r#"{"flags": "f"}"#), 400, "wrong_type", Some("flags")),
    case("POST", "/api/v1/evaluate", Some(r#"{"default": "true"}"#), 400, "wrong_type", Some("default")),
    case("POST", "/api/v1/evaluate", Some(r#"{"contxt": {}}"#), 400, "unknown_field", Some("contxt")),
    // Routing.
    case("GET", "/api/v1/nope", None, 404, "route_not_found", None),
    case("PUT", FLAGS, Some("{}"), 405, "method_not_allowed", None),
    case("GET", "/api/v1/flags/f/enable", None, 405, "method_not_allowed", None),
];

async fn seeded() -> Arc<dyn Store> {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    store.create_at("f", true, None, 1).await.unwrap();
    store.create_at("other", false, None, 2).await.unwrap();
    store
}

#[tokio::test]
async fn every_bad_request_gets_its_4xx_and_changes_nothing() {
    let store = seeded().await;
    let (app, _) = app(Arc::clone(&store)).await;
    let before = stored(&*store).await;
    for c in CASES {
        let r = call(&app, c.method, c.uri, Some(ADMIN), c.body).await;
        let what = format!("{} {} {:?}: {}", c.method, c.uri, c.body, r.body);
        assert_eq!(r.status.as_u16(), c.status, "{what}");
        let (code, field) = r.error();
        assert_eq!(code, c.code, "{what}");
        assert_eq!(field.as_deref(), c.field, "{what}");
        assert_eq!(stored(&*store).await, before, "{what}");
    }
}

#[tokio::test]
async fn bodies_over_the_limit_get_413() {
    let store = seeded().await;
    let (app, _) = app(Arc::clone(&store)).await; // the tests' limit is 4096 bytes
    let before = stored(&*store).await;
    let big = format!(r#"{{"pad": "{}"}}"#, "x".repeat(5000));
    for (method, uri) in [
        ("PATCH", "/api/v1/flags/f/client_data"),
        ("POST", "/api/v1/flags"),
        ("POST", "/api/v1/evaluate"),
    ] {
        let r = call(&app, method, uri, Some(ADMIN), Some(&big)).await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{uri}");
        assert_eq!(r.error(), ("payload_too_large".into(), None));
    }
    let r = call(
        &app,
        "POST",
        "/ofrep/v1/evaluate/flags",
        Some(SDK),
        Some(&big),
    )
    .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.json()["errorCode"], "GENERAL");
    assert_eq!(stored(&*store).await, before);
    // Just under the limit is fine.
    let fits = format!(r#"{{"pad": "{}"}}"#, "x".repeat(4000));
    let r = call(
        &app,
        "PATCH",
        "/api/v1/flags/f/client_data",
        Some(ADMIN),
        Some(&fits),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn merging_into_client_data_that_is_not_an_object_is_refused() {
    let store = seeded().await;
    store
        .update("f", |item| {
            item.meta.client_data = Value::from(vec![1, 2]);
            Ok(())
        })
        .await
        .unwrap();
    let (app, _) = app(Arc::clone(&store)).await;
    let before = stored(&*store).await;
    let r = call(
        &app,
        "PATCH",
        "/api/v1/flags/f/client_data",
        Some(ADMIN),
        Some(r#"{"a": 1}"#),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error().0, "invalid_flag");
    assert_eq!(stored(&*store).await, before);
}

#[tokio::test]
async fn compare_and_swap_that_keeps_losing_is_409() {
    let rigged = Arc::new(Rigged::conflicting());
    rigged.inner.create_at("f", false, None, 1).await.unwrap();
    let store: Arc<dyn Store> = rigged;
    let (app, _) = app(Arc::clone(&store)).await;
    let before = stored(&*store).await;
    let r = call(&app, "POST", "/api/v1/flags/f/enable", Some(ADMIN), None).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.error(), ("conflict".into(), None));
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("gave up after 64 attempts")
    );
    assert_eq!(stored(&*store).await, before);
}

#[tokio::test]
async fn a_store_gone_away_is_503_but_evaluation_goes_on() {
    let rigged = Arc::new(Rigged::default());
    rigged.inner.create_at("f", true, None, 1).await.unwrap();
    let (app, _) = app(Arc::clone(&rigged) as Arc<dyn Store>).await;
    rigged.set_down(true);
    for (method, uri, body) in [
        ("POST", "/api/v1/flags/f/enable", None),
        ("POST", FLAGS, Some(r#"{"name": "g"}"#)),
        ("GET", FLAGS, None),
        ("GET", "/api/v1/flags/f", None),
        ("GET", "/readyz", None),
    ] {
        let r = call(&app, method, uri, Some(ADMIN), body).await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{uri}");
        let (code, _) = r.error();
        assert_eq!(code, "store_unavailable", "{uri}");
        assert!(r.body.contains("connection refused"), "{}", r.body);
    }
    // Evaluation reads the snapshot, not the store.
    let r = call(
        &app,
        "POST",
        "/api/v1/evaluate",
        Some(SDK),
        Some(r#"{"flags": ["f"]}"#),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["flags"]["f"]["enabled"], true);
    rigged.set_down(false);
    assert_eq!(
        call(&app, "GET", "/readyz", None, None).await.status,
        StatusCode::OK
    );
    assert_eq!(rigged.inner.list(None, 0).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_store_down_at_start_is_not_ready_until_it_answers() {
    let rigged = Arc::new(Rigged::default());
    rigged.inner.create_at("f", true, None, 1).await.unwrap();
    rigged.set_down(true);
    let (app, state) = app(Arc::clone(&rigged) as Arc<dyn Store>).await;
    let r = call(&app, "GET", "/readyz", None, None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.error().0, "not_ready");
    let r = call(&app, "POST", "/api/v1/evaluate", Some(SDK), Some("{}")).await;
    assert_eq!(
        (r.status.as_u16(), r.error().0.as_str()),
        (503, "not_ready")
    );
    let r = call(
        &app,
        "POST",
        "/ofrep/v1/evaluate/flags/f",
        Some(SDK),
        Some("{}"),
    )
    .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.json()["errorCode"], "GENERAL");
    rigged.set_down(false);
    common::eventually("the snapshot loads", async || state.live().is_initialized()).await;
    assert_eq!(
        call(&app, "GET", "/readyz", None, None).await.status,
        StatusCode::OK
    );
    let r = call(
        &app,
        "POST",
        "/ofrep/v1/evaluate/flags/f",
        Some(SDK),
        Some("{}"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
}
