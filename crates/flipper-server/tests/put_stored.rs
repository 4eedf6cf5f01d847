//! `PUT /api/v1/flags/{name}`: a whole flag in the stored form, with `If-Match` /
//! `If-None-Match` preconditions (the route the library's HTTP store writes through).

mod common;

use std::sync::Arc;

use axum::http::StatusCode;
use common::{ADMIN, app, call_with, stored};
use flipper::Item;
use flipper::store::{MemoryStore, PutMode, Store, StoreExt};

const URI: &str = "/api/v1/flags/f";

fn body(name: &str, on: bool) -> String {
    Item::new(name, on, 1).to_json()
}

#[tokio::test]
async fn writes_honour_their_preconditions() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let (app, _) = app(Arc::clone(&store)).await;
    let put = async |headers: &[(&str, &str)], on: bool| {
        call_with(&app, "PUT", URI, Some(ADMIN), Some(&body("f", on)), headers).await
    };

    // If-Match on a missing flag fails; If-None-Match: * creates it.
    let r = put(&[("if-match", "*")], true).await;
    assert_eq!(
        (r.status, r.error().0.as_str()),
        (StatusCode::PRECONDITION_FAILED, "conflict")
    );
    let r = put(&[("if-none-match", "*")], true).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body, body("f", true));
    let current = store.get("f").await.unwrap().unwrap();
    assert_eq!(current.item, Item::new("f", true, 1));
    let etag = format!("\"{}\"", current.version);
    assert_eq!(r.header("etag"), Some(etag.as_str()));

    // A second create fails; so does a stale or weak tag.
    let r = put(&[("if-none-match", "*")], false).await;
    assert_eq!(
        (r.status, r.error().0.as_str()),
        (StatusCode::PRECONDITION_FAILED, "already_exists")
    );
    for stale in ["\"0\"", "W/\"1\"", "\"x\", \"y\""] {
        let r = put(&[("if-match", stale)], false).await;
        assert_eq!(r.status, StatusCode::PRECONDITION_FAILED, "{stale}");
    }
    assert_eq!(store.get("f").await.unwrap().unwrap(), current);

    // The current tag (alone or in a list) wins, and gives the next tag.
    let r = put(&[("if-match", &format!("\"x\", {etag}"))], false).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let next = store.get("f").await.unwrap().unwrap();
    assert!(!next.item.switched_on());
    assert_eq!(
        r.header("etag"),
        Some(format!("\"{}\"", next.version).as_str())
    );
    let r = put(&[("if-match", &etag)], true).await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    // No precondition: written whatever is there.
    let r = put(&[], true).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(store.get("f").await.unwrap().unwrap().item.switched_on());
}

/// A path, a body, headers, and the error code and field the answer must have.
type Case<'a> = (
    &'a str,
    String,
    &'a [(&'a str, &'a str)],
    &'a str,
    Option<&'a str>,
);

#[tokio::test]
async fn bad_writes_change_nothing() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    store.create_at("f", true, None, 1).await.unwrap();
    let (app, _) = app(Arc::clone(&store)).await;
    let before = stored(&*store).await;
    let cases: [Case<'_>; 6] = [
        (
            URI,
            body("g", true),
            &[],
            "invalid_value",
            Some("feature_name"),
        ),
        (
            URI,
            r#"{"feature_name": "f", "is_enabled": true}"#.into(),
            &[],
            "invalid_flag",
            Some("meta"),
        ),
        (URI, "[1]".into(), &[], "invalid_flag", None),
        (
            URI,
            body("f", true),
            &[("if-none-match", "\"1\"")],
            "invalid_value",
            Some("If-None-Match"),
        ),
        (
            URI,
            body("f", true),
            &[("if-none-match", "*"), ("if-match", "*")],
            "invalid_value",
            Some("If-None-Match"),
        ),
        (
            "/api/v1/flags/a%0Ab",
            body("a\nb", true),
            &[],
            "invalid_name",
            Some("name"),
        ),
    ];
    for (uri, text, headers, code, field) in cases {
        let r = call_with(&app, "PUT", uri, Some(ADMIN), Some(&text), headers).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{text}: {}", r.body);
        assert_eq!(
            r.error(),
            (code.to_owned(), field.map(str::to_owned)),
            "{text}"
        );
    }
    assert_eq!(stored(&*store).await, before);
}

#[tokio::test]
async fn existing_flags_are_writable_whatever_their_name() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let odd = Item::new("a\nb", true, 1);
    let version = store.put(&odd, PutMode::Overwrite).await.unwrap();
    let (app, _) = app(Arc::clone(&store)).await;
    let r = call_with(
        &app,
        "PUT",
        "/api/v1/flags/a%0Ab",
        Some(ADMIN),
        Some(&body("a\nb", false)),
        &[("if-match", &format!("\"{version}\""))],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(!store.get("a\nb").await.unwrap().unwrap().item.switched_on());
}
