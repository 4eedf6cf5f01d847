//! The management API, route by route, through the router (`oneshot`): what each route
//! answers and what it leaves in the store.

mod common;

use std::sync::Arc;

use axum::http::StatusCode;
use common::{ADMIN, SDK, app, call, stored};
use flipper::store::{MemoryStore, Store, StoreExt};
use flipper::{Bucketer, Condition, Percentage};

fn memory() -> Arc<dyn Store> {
    Arc::new(MemoryStore::new())
}

#[tokio::test]
async fn create_returns_the_stored_flag_and_refuses_to_replace_it() {
    let store = memory();
    let (app, _) = app(Arc::clone(&store)).await;
    let r = call(
        &app,
        "POST",
        "/api/v1/flags",
        Some(ADMIN),
        Some(
            r#"{"name": "new_dashboard", "is_enabled": true, "client_data": {"owner": "team-x"}}"#,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.header("location"), Some("/api/v1/flags/new_dashboard"));
    assert!(r.header("etag").is_some());
    // The body is the stored bytes: flipper-client's format.
    let item = store.get("new_dashboard").await.unwrap().unwrap().item;
    assert_eq!(r.body.as_bytes(), item.serialize());
    assert!(r.body.starts_with(
        r#"{"feature_name": "new_dashboard", "is_enabled": true, "meta": {"client_data": {"owner": "team-x"}, "created_date": "#
    ));

    // Defaults: off, no client data.
    let r = call(
        &app,
        "POST",
        "/api/v1/flags",
        Some(ADMIN),
        Some(r#"{"name": "plain"}"#),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.json()["is_enabled"], false);
    assert_eq!(r.json()["meta"]["client_data"], serde_json::json!({}));

    // A second create is refused, and changes nothing ...
    store
        .update("new_dashboard", |item| {
            item.meta.conditions.push(Condition::new().eq("a", 1));
            Ok(())
        })
        .await
        .unwrap();
    let before = stored(&*store).await;
    let r = call(
        &app,
        "POST",
        "/api/v1/flags",
        Some(ADMIN),
        Some(r#"{"name": "new_dashboard"}"#),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.error(), ("already_exists".into(), None));
    assert_eq!(stored(&*store).await, before);
    // ... unless asked to overwrite, which resets everything as flipper-client's create does.
    let r = call(
        &app,
        "POST",
        "/api/v1/flags?overwrite=true",
        Some(ADMIN),
        Some(r#"{"name": "new_dashboard", "is_enabled": false}"#),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let meta = store.get("new_dashboard").await.unwrap().unwrap().item.meta;
    assert!(meta.conditions.is_empty());
    assert_eq!(r.json()["meta"]["client_data"], serde_json::json!({}));
}

#[tokio::test]
async fn get_list_and_delete() {
    let store = memory();
    for (i, name) in ["b", "a", "c"].iter().enumerate() {
        store
            .create_at(name, i == 0, None, 1_700_000_000)
            .await
            .unwrap();
    }
    let (app, _) = app(Arc::clone(&store)).await;

    let r = call(&app, "GET", "/api/v1/flags/b", Some(SDK), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.body,
        r#"{"feature_name": "b", "is_enabled": true, "meta": {"client_data": {}, "created_date": 1700000000, "conditions": [], "bucketer": {"type": "NoOpBucketer"}}}"#
    );
    let version = store.get("b").await.unwrap().unwrap().version.to_string();
    assert_eq!(r.header("etag"), Some(format!("\"{version}\"").as_str()));

    let r = call(&app, "GET", "/api/v1/flags", Some(SDK), None).await;
    let names: Vec<_> = r.json()["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["feature_name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["a", "b", "c"]);
    assert!(r.json().get("unreadable").is_none());
    // Each flag's version, as its ETag shows it, in the same order.
    assert_eq!(r.json()["versions"][1], version.as_str());
    let r = call(
        &app,
        "GET",
        "/api/v1/flags?limit=1&offset=1",
        Some(SDK),
        None,
    )
    .await;
    assert_eq!(r.json()["flags"][0]["feature_name"], "b");
    assert_eq!(r.json()["flags"].as_array().unwrap().len(), 1);
    let r = call(&app, "GET", "/api/v1/flags?offset=5", Some(SDK), None).await;
    assert_eq!(r.body, r#"{"flags": [], "versions": []}"#);

    let r = call(&app, "DELETE", "/api/v1/flags/b", Some(ADMIN), None).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::NO_CONTENT, ""));
    assert!(store.get("b").await.unwrap().is_none());
    let r = call(&app, "GET", "/api/v1/flags/b", Some(SDK), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.error(), ("flag_not_found".into(), Some("name".into())));
}

#[tokio::test]
async fn enable_disable_conditions_bucketer_client_data_meta() {
    let store = memory();
    store.create_at("f", false, None, 1).await.unwrap();
    let (app, _) = app(Arc::clone(&store)).await;
    let item = async || store.get("f").await.unwrap().unwrap().item;

    let no_content = |status: StatusCode| assert_eq!(status, StatusCode::NO_CONTENT);
    no_content(
        call(&app, "POST", "/api/v1/flags/f/enable", Some(ADMIN), None)
            .await
            .status,
    );
    assert!(item().await.switched_on());
    no_content(
        call(&app, "POST", "/api/v1/flags/f/disable", Some(ADMIN), None)
            .await
            .status,
    );
    assert!(!item().await.switched_on());

    // One condition with kwargs keys, one in the stored form: both appended.
    let kwargs = r#"{"checks": {"age__gte": 18, "plan__in": ["pro", "enterprise"]}}"#;
    no_content(
        call(
            &app,
            "POST",
            "/api/v1/flags/f/conditions",
            Some(ADMIN),
            Some(kwargs),
        )
        .await
        .status,
    );
    let stored_form =
        r#"{"is_admin": [{"variable": "is_admin", "value": true, "operator": null}]}"#;
    no_content(
        call(
            &app,
            "POST",
            "/api/v1/flags/f/conditions",
            Some(ADMIN),
            Some(stored_form),
        )
        .await
        .status,
    );
    assert_eq!(
        item().await.meta.conditions,
        [
            Condition::new()
                .gte("age", 18)
                .is_in("plan", vec!["pro", "enterprise"]),
            Condition::new().eq("is_admin", true)
        ]
    );
    // Replaced whole; then removed.
    let both = format!(r#"[{stored_form}, {{"checks": {{"country__ne": "FR"}}}}]"#);
    no_content(
        call(
            &app,
            "PUT",
            "/api/v1/flags/f/conditions",
            Some(ADMIN),
            Some(&both),
        )
        .await
        .status,
    );
    assert_eq!(
        item().await.meta.conditions,
        [
            Condition::new().eq("is_admin", true),
            Condition::new().ne("country", "FR")
        ]
    );
    no_content(
        call(
            &app,
            "PUT",
            "/api/v1/flags/f/conditions",
            Some(ADMIN),
            Some("[]"),
        )
        .await
        .status,
    );
    assert!(item().await.meta.conditions.is_empty());

    let bucketer = r#"{"type": "ConsistentHashPercentageBucketer", "percentage": {"type": "Percentage", "value": 0.5}, "key_whitelist": ["user_id"]}"#;
    no_content(
        call(
            &app,
            "PUT",
            "/api/v1/flags/f/bucketer",
            Some(ADMIN),
            Some(bucketer),
        )
        .await
        .status,
    );
    assert_eq!(
        item().await.meta.bucketer,
        Bucketer::consistent_hash(Percentage::fixed(0.5), ["user_id"])
    );

    // Client data merges shallowly; Python's numbers survive (big ints, NaN).
    no_content(
        call(
            &app,
            "PATCH",
            "/api/v1/flags/f/client_data",
            Some(ADMIN),
            Some(r#"{"owner": "a", "n": 1}"#),
        )
        .await
        .status,
    );
    no_content(
        call(
            &app,
            "PATCH",
            "/api/v1/flags/f/client_data",
            Some(ADMIN),
            Some(r#"{"owner": "b", "big": 123456789012345678901234567890, "x": NaN}"#),
        )
        .await
        .status,
    );
    let r = call(&app, "GET", "/api/v1/flags/f/client_data", Some(SDK), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.body,
        r#"{"owner": "b", "n": 1, "big": 123456789012345678901234567890, "x": NaN}"#
    );

    let r = call(&app, "GET", "/api/v1/flags/f/meta", Some(SDK), None).await;
    assert_eq!(r.status, StatusCode::OK);
    let meta = item().await.meta;
    assert_eq!(r.body, flipper_core::json::to_string(&meta.to_value()));
    assert!(r.body.starts_with(r#"{"client_data": {"owner": "b""#));
}

#[tokio::test]
async fn names_with_slashes_spaces_and_unicode_are_percent_encoded_segments() {
    let store = memory();
    let (app, _) = app(Arc::clone(&store)).await;
    for (name, segment) in [
        ("team/checkout", "team%2Fcheckout"),
        ("new dashboard", "new%20dashboard"),
        ("café ☕", "caf%C3%A9%20%E2%98%95"),
        ("100%", "100%25"),
    ] {
        let body = serde_json::json!({ "name": name }).to_string();
        let r = call(&app, "POST", "/api/v1/flags", Some(ADMIN), Some(&body)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{name}: {}", r.body);
        let location = format!("/api/v1/flags/{segment}");
        assert_eq!(r.header("location"), Some(location.as_str()));
        let r = call(
            &app,
            "POST",
            &format!("{location}/enable"),
            Some(ADMIN),
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{name}");
        let r = call(&app, "GET", &location, Some(SDK), None).await;
        assert_eq!(r.json()["feature_name"], name);
        assert_eq!(r.json()["is_enabled"], true);
        let r = call(&app, "GET", &format!("{location}/meta"), Some(SDK), None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(store.get(name).await.unwrap().is_some());
    }
    // A raw slash is two segments: no such route.
    let r = call(
        &app,
        "POST",
        "/api/v1/flags/team/checkout/enable",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.error().0, "route_not_found");
}

#[tokio::test]
async fn health_and_readiness() {
    let (app, _) = app(memory()).await;
    let r = call(&app, "GET", "/healthz", None, None).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (StatusCode::OK, r#"{"status": "ok"}"#)
    );
    let r = call(&app, "GET", "/readyz", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["status"], "ready");
    assert_eq!(r.json()["flags"], 0);
}
