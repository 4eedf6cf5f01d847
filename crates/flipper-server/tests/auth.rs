//! Tokens on every route: writes need the admin token (401 without a token, 403 with the SDK
//! token, and nothing changes); reads and evaluation take either token; a scope without a
//! configured token is open.

mod common;

use std::sync::Arc;

use axum::http::StatusCode;
use common::{ADMIN, SDK, app, app_with, call, call_with, stored};
use flipper::store::{MemoryStore, Store, StoreExt};

const WRITES: &[(&str, &str, Option<&str>, u16)] = &[
    ("POST", "/api/v1/flags", Some(r#"{"name": "g"}"#), 201),
    (
        "POST",
        "/api/v1/flags?overwrite=true",
        Some(r#"{"name": "f"}"#),
        201,
    ),
    ("DELETE", "/api/v1/flags/f", None, 204),
    ("POST", "/api/v1/flags/f/enable", None, 204),
    ("POST", "/api/v1/flags/f/disable", None, 204),
    (
        "POST",
        "/api/v1/flags/f/conditions",
        Some(r#"{"checks": {"a": 1}}"#),
        204,
    ),
    ("PUT", "/api/v1/flags/f/conditions", Some("[]"), 204),
    (
        "PUT",
        "/api/v1/flags/f/bucketer",
        Some(r#"{"type": "NoOpBucketer"}"#),
        204,
    ),
    (
        "PATCH",
        "/api/v1/flags/f/client_data",
        Some(r#"{"k": 1}"#),
        204,
    ),
    (
        "PUT",
        "/api/v1/flags/f",
        Some(r#"{"feature_name": "f", "is_enabled": true, "meta": {"created_date": 1}}"#),
        200,
    ),
];

const READS: &[(&str, &str, Option<&str>)] = &[
    ("GET", "/api/v1/flags", None),
    ("GET", "/api/v1/flags/f", None),
    ("GET", "/api/v1/flags/f/client_data", None),
    ("GET", "/api/v1/flags/f/meta", None),
    ("POST", "/api/v1/evaluate", Some("{}")),
    (
        "POST",
        "/ofrep/v1/evaluate/flags/f",
        Some(r#"{"context": {}}"#),
    ),
    (
        "POST",
        "/ofrep/v1/evaluate/flags",
        Some(r#"{"context": {}}"#),
    ),
];

async fn seeded() -> Arc<dyn Store> {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    store.create_at("f", false, None, 1).await.unwrap();
    store
}

#[tokio::test]
async fn every_write_route_needs_the_admin_token() {
    for &(method, uri, body, ok) in WRITES {
        let store = seeded().await;
        let (app, _) = app(Arc::clone(&store)).await;
        let before = stored(&*store).await;

        let r = call(&app, method, uri, None, body).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{method} {uri}");
        assert_eq!(r.error().0, "unauthorized");
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
        for token in [SDK, "wrong"] {
            let r = call(&app, method, uri, Some(token), body).await;
            assert_eq!(
                r.status,
                StatusCode::FORBIDDEN,
                "{method} {uri} with {token}"
            );
            assert_eq!(r.error().0, "forbidden");
        }
        let r = call_with(
            &app,
            method,
            uri,
            None,
            body,
            &[("authorization", &format!("Basic {ADMIN}"))],
        )
        .await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "{method} {uri}: not a bearer token"
        );
        assert_eq!(stored(&*store).await, before, "{method} {uri}");

        let r = call_with(
            &app,
            method,
            uri,
            None,
            body,
            &[("authorization", &format!("bearer  {ADMIN}"))],
        )
        .await;
        assert_eq!(r.status.as_u16(), ok, "{method} {uri}: {}", r.body);
    }
}

#[tokio::test]
async fn every_read_route_takes_either_token() {
    let (app, _) = app(seeded().await).await;
    for &(method, uri, body) in READS {
        assert_eq!(
            call(&app, method, uri, None, body).await.status,
            StatusCode::UNAUTHORIZED,
            "{uri}"
        );
        assert_eq!(
            call(&app, method, uri, Some("wrong"), body).await.status,
            StatusCode::FORBIDDEN,
            "{uri}"
        );
        for token in [SDK, ADMIN] {
            let r = call(&app, method, uri, Some(token), body).await;
            assert_eq!(r.status, StatusCode::OK, "{uri} with {token}: {}", r.body);
        }
    }
    // Probes need no token.
    for uri in ["/healthz", "/readyz"] {
        assert_eq!(
            call(&app, "GET", uri, None, None).await.status,
            StatusCode::OK
        );
    }
}

#[tokio::test]
async fn auth_comes_before_the_body() {
    let store = seeded().await;
    let (app, _) = app(Arc::clone(&store)).await;
    let big = "x".repeat(10_000);
    let r = call(
        &app,
        "PATCH",
        "/api/v1/flags/f/client_data",
        None,
        Some(&big),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = call(&app, "POST", "/api/v1/flags", Some(SDK), Some("{")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn scopes_without_a_token_are_open() {
    let (open, _) = app_with(seeded().await, None, None).await;
    for &(method, uri, body, ok) in &WRITES[..3] {
        assert_eq!(
            call(&open, method, uri, None, body).await.status.as_u16(),
            ok,
            "{uri}"
        );
    }
    let (admin_only, _) = app_with(seeded().await, Some(ADMIN), None).await;
    for &(method, uri, body) in READS {
        assert_eq!(
            call(&admin_only, method, uri, None, body).await.status,
            StatusCode::OK,
            "{uri}"
        );
    }
    let r = call(&admin_only, "POST", "/api/v1/flags/f/enable", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = call(
        &admin_only,
        "POST",
        "/api/v1/flags/f/enable",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
}
