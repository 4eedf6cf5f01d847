//! `GET /metrics` after some traffic: the expected series exist with the expected values, in
//! Prometheus' text format (and OpenMetrics on request), and contexts never become labels.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{ADMIN, SDK, app, call, eventually};
use flipper::store::MemoryStore;
use tower::ServiceExt;

/// `GET /metrics`: status, content type, body.
async fn scrape(
    app: &Router,
    token: Option<&str>,
    accept: Option<&str>,
) -> (StatusCode, String, String) {
    let mut request = Request::builder().uri("/metrics");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        content_type,
        String::from_utf8(bytes.to_vec()).unwrap(),
    )
}

/// Samples by series (`name{labels}` as written) and the `# TYPE` of each family.
fn parse(text: &str) -> (BTreeMap<String, f64>, BTreeMap<String, String>) {
    let (mut samples, mut types) = (BTreeMap::new(), BTreeMap::new());
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
            types.insert(name.to_owned(), kind.to_owned());
        } else if !line.starts_with('#') && !line.is_empty() {
            let (series, value) = line.rsplit_once(' ').expect("series value");
            let value = value.parse().unwrap_or_else(|_| panic!("a number: {line}"));
            assert!(
                samples.insert(series.to_owned(), value).is_none(),
                "twice: {line}"
            );
        }
    }
    (samples, types)
}

fn value(samples: &BTreeMap<String, f64>, series: &str) -> f64 {
    *samples
        .get(series)
        .unwrap_or_else(|| panic!("no {series} in {:#?}", samples.keys().collect::<Vec<_>>()))
}

#[tokio::test]
async fn scrape_after_traffic() {
    let (app, state) = app(Arc::new(MemoryStore::new())).await;
    for body in [
        r#"{"name": "on", "is_enabled": true}"#,
        r#"{"name": "cond", "is_enabled": true}"#,
        r#"{"name": "off"}"#,
    ] {
        assert_eq!(
            call(&app, "POST", "/api/v1/flags", Some(ADMIN), Some(body))
                .await
                .status,
            201
        );
    }
    let r = call(
        &app,
        "POST",
        "/api/v1/flags/cond/conditions",
        Some(ADMIN),
        Some(r#"{"checks": {"plan__in": ["pro"]}}"#),
    )
    .await;
    assert_eq!(r.status, 204);
    eventually("the snapshot has the condition", async || {
        state
            .live()
            .get("cond")
            .is_some_and(|f| !f.meta.conditions.is_empty())
    })
    .await;

    let pro = r#"{"context": {"targetingKey": "user-secret-42", "plan": "pro"}, "flags": ["cond", "on", "nope"]}"#;
    assert_eq!(
        call(&app, "POST", "/api/v1/evaluate", Some(SDK), Some(pro))
            .await
            .status,
        200
    );
    let free = r#"{"context": {"targetingKey": "user-secret-42", "plan": "free"}}"#;
    for (uri, status) in [
        ("/ofrep/v1/evaluate/flags/cond", 200),
        ("/ofrep/v1/evaluate/flags/off", 200),
        ("/ofrep/v1/evaluate/flags/nope", 404),
        ("/ofrep/v1/evaluate/flags", 200),
    ] {
        let r = call(&app, "POST", uri, Some(SDK), Some(free)).await;
        assert_eq!(r.status.as_u16(), status, "{uri}: {}", r.body);
    }
    assert_eq!(
        call(&app, "GET", "/api/v1/flags/nope", Some(SDK), None)
            .await
            .status,
        404
    );
    assert_eq!(
        call(&app, "GET", "/no/such/route", None, None).await.status,
        404
    );

    assert_eq!(scrape(&app, None, None).await.0, StatusCode::UNAUTHORIZED);
    let (status, content_type, text) = scrape(&app, Some(SDK), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    assert!(
        !text.contains("# EOF") && !text.contains("# UNIT"),
        "{text}"
    );
    assert!(
        !text.contains("user-secret-42") && !text.contains("free"),
        "a context leaked: {text}"
    );
    let (samples, types) = parse(&text);

    for (family, kind) in [
        ("flipper_http_requests_total", "counter"),
        ("flipper_http_request_duration_seconds", "histogram"),
        ("flipper_evaluations_total", "counter"),
        ("flipper_evaluations_flag_missing_total", "counter"),
        ("flipper_stream_subscribers", "gauge"),
        ("flipper_store_operation_duration_seconds", "histogram"),
        ("flipper_store_changes_total", "counter"),
        ("flipper_snapshot_flags", "gauge"),
        ("flipper_snapshot_version", "gauge"),
    ] {
        assert_eq!(
            types.get(family).map(String::as_str),
            Some(kind),
            "{family}"
        );
    }
    let expected = [
        (
            r#"flipper_http_requests_total{method="POST",route="/api/v1/flags",status="201"}"#,
            3.0,
        ),
        (
            r#"flipper_http_requests_total{method="GET",route="/api/v1/flags/{name}",status="404"}"#,
            1.0,
        ),
        (
            r#"flipper_http_requests_total{method="GET",route="<unmatched>",status="404"}"#,
            1.0,
        ),
        (
            r#"flipper_http_requests_total{method="GET",route="/metrics",status="401"}"#,
            1.0,
        ),
        (
            r#"flipper_http_requests_total{method="POST",route="/ofrep/v1/evaluate/flags/{key}",status="200"}"#,
            2.0,
        ),
        (
            r#"flipper_http_request_duration_seconds_count{method="POST",route="/api/v1/flags",status="201"}"#,
            3.0,
        ),
        (
            r#"flipper_http_request_duration_seconds_bucket{le="+Inf",method="POST",route="/api/v1/flags",status="201"}"#,
            3.0,
        ),
        (
            r#"flipper_evaluations_total{api="evaluate",flag="cond",enabled="true",reason="conditions_matched"}"#,
            1.0,
        ),
        (
            r#"flipper_evaluations_total{api="evaluate",flag="on",enabled="true",reason="enabled"}"#,
            1.0,
        ),
        // The single evaluation and the bulk one.
        (
            r#"flipper_evaluations_total{api="ofrep",flag="cond",enabled="false",reason="conditions_failed"}"#,
            2.0,
        ),
        (
            r#"flipper_evaluations_total{api="ofrep",flag="off",enabled="false",reason="disabled"}"#,
            2.0,
        ),
        (
            r#"flipper_evaluations_total{api="ofrep",flag="on",enabled="true",reason="enabled"}"#,
            1.0,
        ),
        (
            r#"flipper_evaluations_flag_missing_total{api="evaluate"}"#,
            1.0,
        ),
        (
            r#"flipper_evaluations_flag_missing_total{api="ofrep"}"#,
            1.0,
        ),
        ("flipper_stream_subscribers", 0.0),
        ("flipper_snapshot_flags", 3.0),
        (r#"flipper_store_changes_total{kind="put"}"#, 4.0),
    ];
    for (series, want) in expected {
        assert_eq!(value(&samples, series), want, "{series}");
    }
    assert!(value(&samples, "flipper_snapshot_version") >= 4.0);
    // Writes: three creates and one condition (a read and a compare-and-swap write).
    assert!(
        value(
            &samples,
            r#"flipper_store_operation_duration_seconds_count{operation="put"}"#
        ) >= 4.0
    );
    assert!(
        value(
            &samples,
            r#"flipper_store_operation_duration_seconds_count{operation="list"}"#
        ) >= 1.0
    );
    assert!(!samples.keys().any(|s| s.contains("flag=\"nope\"")));

    // A deleted flag's series go; OpenMetrics on request.
    assert_eq!(
        call(&app, "DELETE", "/api/v1/flags/off", Some(ADMIN), None)
            .await
            .status,
        204
    );
    eventually("the snapshot drops the flag", async || {
        state.live().get("off").is_none()
    })
    .await;
    let (status, content_type, text) = scrape(
        &app,
        Some(ADMIN),
        Some("application/openmetrics-text;version=1.0.0,text/plain;q=0.5"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(
        text.contains("# TYPE flipper_evaluations counter\n"),
        "{text}"
    );
    let (samples, _) = parse(&text);
    assert!(
        !samples.keys().any(|s| s.contains("flag=\"off\"")),
        "{text}"
    );
    assert_eq!(value(&samples, "flipper_snapshot_flags"), 2.0);
    assert_eq!(
        value(&samples, r#"flipper_store_changes_total{kind="delete"}"#),
        1.0
    );
}

#[tokio::test]
async fn open_streams_are_counted() {
    let (app, _state) = app(Arc::new(MemoryStore::new())).await;
    let subscribers = async || {
        let (_, _, text) = scrape(&app, Some(SDK), None).await;
        value(&parse(&text).0, "flipper_stream_subscribers")
    };
    assert_eq!(subscribers().await, 0.0);
    let open = |_| {
        let request = Request::builder()
            .uri("/api/v1/stream")
            .header("authorization", format!("Bearer {SDK}"))
            .body(Body::empty())
            .unwrap();
        app.clone().oneshot(request)
    };
    let first = open(()).await.unwrap();
    let second = open(()).await.unwrap();
    assert_eq!(
        (first.status(), second.status()),
        (StatusCode::OK, StatusCode::OK)
    );
    assert_eq!(subscribers().await, 2.0);
    drop(first);
    assert_eq!(subscribers().await, 1.0);
    drop(second);
    assert_eq!(subscribers().await, 0.0);
}

/// The store's own counters (`Store::counters`) are series: a cache in front, and a replica
/// that cannot be written (its directory does not exist).
#[tokio::test]
async fn store_counters_are_series() {
    use flipper::store::{CachedStore, JsonFileStore, ReplicatedStore, Store};
    let dir = tempfile::tempdir().unwrap();
    let broken = JsonFileStore::new(dir.path().join("missing-dir/flags.json"));
    let replica_name = broken.to_string();
    let replicated = ReplicatedStore::new(
        Arc::new(MemoryStore::new()),
        vec![Arc::new(broken) as Arc<dyn Store>],
    );
    let (app, _state) = app(Arc::new(CachedStore::new(replicated))).await;
    let r = call(
        &app,
        "POST",
        "/api/v1/flags",
        Some(ADMIN),
        Some(r#"{"name": "f", "is_enabled": true}"#),
    )
    .await;
    assert_eq!(r.status, 201, "the primary's write succeeds: {}", r.body);
    for _ in 0..3 {
        assert_eq!(
            call(&app, "GET", "/api/v1/flags/f", Some(SDK), None)
                .await
                .status,
            200
        );
    }
    let (status, _, text) = scrape(&app, Some(SDK), None).await;
    assert_eq!(status, StatusCode::OK);
    let (samples, types) = parse(&text);
    let failures = format!("flipper_store_replica_failures_total{{replica=\"{replica_name}\"}}");
    assert_eq!(value(&samples, &failures), 1.0, "{text}");
    assert_eq!(types["flipper_store_replica_failures_total"], "counter");
    for name in ["hits", "misses", "loads", "evictions"] {
        let series = format!("flipper_store_cache_{name}_total");
        assert!(value(&samples, &series) >= 0.0);
        assert_eq!(
            types[&format!("flipper_store_cache_{name}_total")],
            "counter"
        );
    }
    assert!(
        value(&samples, "flipper_store_cache_hits_total")
            + value(&samples, "flipper_store_cache_misses_total")
            >= 3.0,
        "the reads went through the cache: {text}"
    );
}
