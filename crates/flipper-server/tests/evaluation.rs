//! Evaluation from the snapshot: `POST /api/v1/evaluate` and OFREP (single, bulk, ETag), with
//! the answers checked against the library's own evaluation.

mod common;

use std::sync::Arc;

use axum::http::StatusCode;
use common::{SDK, app, call, call_with, eventually};
use flipper::store::{MemoryStore, PutMode, Store, StoreExt};
use flipper::{Bucketer, Checks, Condition, Item, Percentage, SystemEnv};
use serde_json::json;

async fn flags() -> Arc<dyn Store> {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let mut items = vec![Item::new("static_on", true, 1), Item::new("off", false, 1)];
    let mut adults = Item::new("adults", true, 1);
    adults.meta.conditions.push(Condition::new().gte("age", 18));
    items.push(adults);
    let mut half = Item::new("half", true, 1);
    half.meta.bucketer = Bucketer::consistent_hash(Percentage::fixed(0.5), ["targetingKey"]);
    items.push(half);
    let mut beta = Item::new("team/beta users", true, 1);
    beta.meta
        .conditions
        .push(Condition::new().is_in("targetingKey", vec!["u1", "u2"]));
    items.push(beta);
    let mut ordered = Item::new("ordered", true, 1);
    ordered
        .meta
        .conditions
        .push(Condition::new().gt("a", 1).eq("b", 2));
    items.push(ordered);
    for item in &items {
        store.put(item, PutMode::Overwrite).await.unwrap();
    }
    store
}

async fn post(app: &axum::Router, uri: &str, body: &str) -> common::Reply {
    call(app, "POST", uri, Some(SDK), Some(body)).await
}

#[tokio::test]
async fn evaluate_answers_every_flag_with_reasons() {
    let (app, state) = app(flags().await).await;
    let r = post(
        &app,
        "/api/v1/evaluate",
        r#"{"context": {"age": 30, "targetingKey": "u1"}}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v = r.json();
    assert_eq!(v["version"], state.live().version());
    let f = &v["flags"];
    assert_eq!(
        f["static_on"],
        json!({"enabled": true, "reason": "enabled"})
    );
    assert_eq!(f["off"], json!({"enabled": false, "reason": "disabled"}));
    assert_eq!(
        f["adults"],
        json!({"enabled": true, "reason": "conditions_matched"})
    );
    assert_eq!(f["team/beta users"]["reason"], "conditions_matched");
    // The library's own answer for the consistent hash.
    let checks = Checks::new().with("age", 30).with("targetingKey", "u1");
    let half = state
        .live()
        .get("half")
        .unwrap()
        .evaluate(&checks, &SystemEnv);
    assert_eq!(f["half"]["enabled"], half.enabled);
    assert_eq!(f["half"]["reason"], half.reason.code());
    let names: Vec<_> = f.as_object().unwrap().keys().cloned().collect();
    assert_eq!(names.len(), 6);

    // Named flags, in the order asked, with the default for a missing one.
    let r = post(
        &app,
        "/api/v1/evaluate",
        r#"{"context": {"age": 12}, "flags": ["missing", "adults", "missing"], "default": true}"#,
    )
    .await;
    assert_eq!(
        r.body,
        format!(
            r#"{{"version": {}, "flags": {{"missing": {{"enabled": true, "reason": "flag_missing"}}, "adults": {{"enabled": false, "reason": "conditions_failed"}}}}}}"#,
            state.live().version()
        )
    );
}

#[tokio::test]
async fn the_context_order_is_the_check_order() {
    let (app, _) = app(flags().await).await;
    let r = post(
        &app,
        "/api/v1/evaluate",
        r#"{"context": {"b": 3, "a": "text"}, "flags": ["ordered"]}"#,
    )
    .await;
    assert_eq!(
        r.json()["flags"]["ordered"],
        json!({"enabled": false, "reason": "conditions_failed"})
    );
    let r = post(
        &app,
        "/api/v1/evaluate",
        r#"{"context": {"a": "text", "b": 3}, "flags": ["ordered"]}"#,
    )
    .await;
    assert_eq!(
        r.json()["flags"]["ordered"],
        json!({"enabled": false, "reason": "error", "error": "TypeError: '>' not supported between instances of 'str' and 'int'"})
    );
}

#[tokio::test]
async fn ofrep_single_flag() {
    let (app, _) = app(flags().await).await;
    let one = |key: &str| format!("/ofrep/v1/evaluate/flags/{key}");
    let r = post(
        &app,
        &one("adults"),
        r#"{"context": {"targetingKey": "u9", "age": 30}}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.body,
        r#"{"key": "adults", "value": true, "reason": "TARGETING_MATCH", "variant": "on"}"#
    );
    let cases = [
        (
            "adults",
            r#"{"context": {"age": 3}}"#,
            json!({"key": "adults", "value": false, "reason": "DEFAULT", "variant": "off"}),
        ),
        (
            "off",
            r#"{"context": {}}"#,
            json!({"key": "off", "value": false, "reason": "DISABLED", "variant": "off"}),
        ),
        (
            "static_on",
            r#"{"context": {"x": 1}}"#,
            json!({"key": "static_on", "value": true, "reason": "STATIC", "variant": "on"}),
        ),
        (
            "static_on",
            "{}",
            json!({"key": "static_on", "value": true, "reason": "STATIC", "variant": "on"}),
        ),
        (
            "team%2Fbeta%20users",
            r#"{"context": {"targetingKey": "u2"}}"#,
            json!({"key": "team/beta users", "value": true, "reason": "TARGETING_MATCH", "variant": "on"}),
        ),
    ];
    for (key, body, expected) in cases {
        let r = post(&app, &one(key), body).await;
        assert_eq!(
            (r.status, r.json()),
            (StatusCode::OK, expected),
            "{key} {body}"
        );
    }
    let r = post(&app, &one("half"), r#"{"context": {"targetingKey": "u1"}}"#).await;
    assert_eq!(r.json()["reason"], "SPLIT");

    // Failures, in OFREP's shapes.
    let r = post(&app, &one("nope"), r#"{"context": {}}"#).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["key"], "nope");
    assert_eq!(r.json()["errorCode"], "FLAG_NOT_FOUND");
    let r = post(&app, &one("adults"), r#"{"context": "#).await;
    assert_eq!(
        (r.status, r.json()["errorCode"].clone()),
        (StatusCode::BAD_REQUEST, json!("PARSE_ERROR"))
    );
    let r = post(&app, &one("adults"), r#"{"context": [1]}"#).await;
    assert_eq!(
        (r.status, r.json()["errorCode"].clone()),
        (StatusCode::BAD_REQUEST, json!("INVALID_CONTEXT"))
    );
    let r = post(&app, &one("adults"), r#"{"context": {"age": "thirty"}}"#).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.json(),
        json!({"key": "adults", "errorCode": "GENERAL", "errorDetails": "TypeError: '>=' not supported between instances of 'str' and 'int'"})
    );
}

#[tokio::test]
async fn ofrep_bulk_with_etag() {
    let store = flags().await;
    let (app, state) = app(Arc::clone(&store)).await;
    let bulk = "/ofrep/v1/evaluate/flags";
    let ctx = r#"{"context": {"targetingKey": "u1", "age": "x"}}"#;
    let r = post(&app, bulk, ctx).await;
    assert_eq!(r.status, StatusCode::OK);
    let flags = r.json()["flags"].as_array().unwrap().clone();
    let keys: Vec<_> = flags
        .iter()
        .map(|f| f["key"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        keys,
        [
            "adults",
            "half",
            "off",
            "ordered",
            "static_on",
            "team/beta users"
        ]
    );
    assert_eq!(
        flags[0]["errorCode"], "GENERAL",
        "a type error is that flag's failure only"
    );
    assert_eq!(
        flags[2],
        json!({"key": "off", "value": false, "reason": "DISABLED", "variant": "off"})
    );
    assert_eq!(flags[5]["reason"], "TARGETING_MATCH");
    let etag = r.header("etag").unwrap().to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");

    // Same flags and context: 304, no body, same ETag.
    let again = call_with(
        &app,
        "POST",
        bulk,
        Some(SDK),
        Some(ctx),
        &[("if-none-match", &etag)],
    )
    .await;
    assert_eq!(
        (again.status, again.body.as_str()),
        (StatusCode::NOT_MODIFIED, "")
    );
    assert_eq!(again.header("etag"), Some(etag.as_str()));
    // Another context: another ETag.
    let other = call_with(
        &app,
        "POST",
        bulk,
        Some(SDK),
        Some(r#"{"context": {"targetingKey": "u2"}}"#),
        &[("if-none-match", &etag)],
    )
    .await;
    assert_eq!(other.status, StatusCode::OK);
    assert_ne!(other.header("etag"), Some(etag.as_str()));
    // A change to the flags: the old ETag no longer matches.
    let version = state.live().version();
    store.set("off", true).await.unwrap();
    eventually("the snapshot sees the change", async || {
        state.live().version() > version
    })
    .await;
    let changed = call_with(
        &app,
        "POST",
        bulk,
        Some(SDK),
        Some(ctx),
        &[("if-none-match", &etag)],
    )
    .await;
    assert_eq!(changed.status, StatusCode::OK);
    assert_eq!(changed.json()["flags"][2]["value"], true);

    // Bad bulk requests.
    let r = post(&app, bulk, "[]").await;
    assert_eq!(
        (r.status, r.json()["errorCode"].clone()),
        (StatusCode::BAD_REQUEST, json!("PARSE_ERROR"))
    );
    assert!(r.json().get("key").is_none());
    let r = post(&app, bulk, r#"{"context": 5}"#).await;
    assert_eq!(
        (r.status, r.json()["errorCode"].clone()),
        (StatusCode::BAD_REQUEST, json!("INVALID_CONTEXT"))
    );
}

#[tokio::test]
async fn ramping_flags_make_the_etag_follow_the_clock() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let mut ramp = Item::new("ramp", true, 1);
    ramp.meta.bucketer = Bucketer::percentage(Percentage::linear_ramp(0.0, 1.0, 3600, 1));
    store.put(&ramp, PutMode::Overwrite).await.unwrap();
    let (app, _) = app(store).await;
    let first = post(&app, "/ofrep/v1/evaluate/flags", "{}").await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let later = post(&app, "/ofrep/v1/evaluate/flags", "{}").await;
    assert_ne!(first.header("etag"), later.header("etag"));
}
