//! OFREP over a real connection, where the connection service answers it without the router,
//! gives exactly what the router gives: for every request of a corpus (good and bad tokens,
//! keys, bodies, methods and paths next to the OFREP ones), the same status, content type,
//! `WWW-Authenticate` and body; ETags that work the same way; and the same request metrics.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use common::{ADMIN, SDK, call_with};
use flipper::store::{MemoryStore, PutMode, Store};
use flipper::{Bucketer, Condition, Item, Percentage};
use flipper_server::{AppState, ServerConfig, router, serve_on};
use tokio::net::TcpListener;

/// The same server as `common::app_with` (both tokens, a 4 KiB body limit).
fn config() -> ServerConfig {
    let mut config = ServerConfig::default();
    config.admin_token = Some(ADMIN.into());
    config.sdk_token = Some(SDK.into());
    config.max_body_bytes = 4096;
    config.poll_interval = Duration::from_millis(50);
    config
}

async fn store() -> Arc<dyn Store> {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let mut adults = Item::new("adults", true, 1);
    adults.meta.conditions.push(Condition::new().gte("age", 18));
    let mut half = Item::new("half", true, 1);
    half.meta.bucketer = Bucketer::consistent_hash(Percentage::fixed(0.5), ["targetingKey"]);
    let items = [
        Item::new("on", true, 1),
        Item::new("off", false, 1),
        Item::new("team/beta é", true, 1),
        Item::new("100%", true, 1),
        adults,
        half,
    ];
    for item in &items {
        store.put(item, PutMode::Overwrite).await.unwrap();
    }
    store
}

/// `(method, path, token, body)`.
type Request = (&'static str, String, Option<&'static str>, Option<String>);

fn corpus() -> Vec<Request> {
    let one = |key: &str| format!("/ofrep/v1/evaluate/flags/{key}");
    let bulk = "/ofrep/v1/evaluate/flags".to_owned();
    let mut requests: Vec<Request> = Vec::new();
    let bodies = [
        r#"{"context": {"targetingKey": "u1", "age": 30}}"#.to_owned(),
        r#"{"context": {"targetingKey": "u2", "age": 3}}"#.to_owned(),
        r#"{"context": {"age": "thirty"}}"#.to_owned(),
        r#"{"context": {}}"#.to_owned(),
        r#"{"context": null, "other": 1}"#.to_owned(),
        "{}".to_owned(),
        String::new(),
        r#"{"context": "#.to_owned(),
        r#"{"context": [1]}"#.to_owned(),
        "[]".to_owned(),
        "\u{feff}{}".to_owned(),
        format!(r#"{{"context": {{"pad": "{}"}}}}"#, "x".repeat(5000)),
    ];
    for key in [
        "on",
        "off",
        "adults",
        "half",
        "missing",
        "team%2Fbeta%20%C3%A9",
        "100%25",
        "100%",
        "%FF",
        "%4",
    ] {
        for body in &bodies {
            requests.push(("POST", one(key), Some(SDK), Some(body.clone())));
        }
    }
    for body in &bodies {
        requests.push(("POST", bulk.clone(), Some(SDK), Some(body.clone())));
    }
    let body = Some(r#"{"context": {"age": 30}}"#.to_owned());
    for path in [one("adults"), bulk] {
        for token in [None, Some("wrong"), Some(ADMIN)] {
            requests.push(("POST", path.clone(), token, body.clone()));
        }
        requests.push(("GET", path.clone(), Some(SDK), None));
        requests.push(("PUT", path.clone(), Some(SDK), body.clone()));
    }
    for path in [
        "/ofrep/v1/evaluate/flags/",
        "/ofrep/v1/evaluate/flags/adults/",
        "/ofrep/v1/evaluate/flags/a/b",
        "/ofrep/v1/evaluate/flagsx",
    ] {
        requests.push(("POST", path.to_owned(), Some(SDK), body.clone()));
    }
    requests
}

/// What must be equal: status, the headers a client reads, the body (ETags compared apart:
/// they differ between processes by design).
type Answer = (u16, Option<String>, Option<String>, bool, String);

async fn over_tcp(client: &reqwest::Client, base: &str, r: &Request) -> Answer {
    let method = reqwest::Method::from_bytes(r.0.as_bytes()).unwrap();
    let mut request = client.request(method, format!("{base}{}", r.1));
    if let Some(token) = r.2 {
        request = request.bearer_auth(token);
    }
    if let Some(body) = &r.3 {
        request = request
            .header("content-type", "application/json")
            .body(body.clone());
    }
    let response = request.send().await.expect("the server answers");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let answer = (
        response.status().as_u16(),
        header("content-type"),
        header("www-authenticate"),
        header("etag").is_some(),
    );
    let body = response.text().await.expect("a body");
    (answer.0, answer.1, answer.2, answer.3, body)
}

async fn through_router(app: &axum::Router, r: &Request) -> Answer {
    let reply = call_with(app, r.0, &r.1, r.2, r.3.as_deref(), &[]).await;
    let header = |name: &str| reply.header(name).map(str::to_owned);
    (
        reply.status.as_u16(),
        header("content-type"),
        header("www-authenticate"),
        header("etag").is_some(),
        reply.body.clone(),
    )
}

const SINGLE: &str = "/ofrep/v1/evaluate/flags/{key}";
const BULK: &str = "/ofrep/v1/evaluate/flags";

/// The route template of a POST to one of the OFREP routes.
fn ofrep_route(r: &Request) -> Option<&'static str> {
    let rest = r.1.strip_prefix(BULK)?;
    match rest.strip_prefix('/') {
        _ if r.0 != "POST" => None,
        None if rest.is_empty() => Some(BULK),
        Some(key) if !key.is_empty() && !key.contains('/') => Some(SINGLE),
        _ => None,
    }
}

/// The value of the `flipper_http_requests_total` series with these labels.
fn requests_counted(metrics: &str, route: &str, status: u16) -> u64 {
    let series = format!(
        "flipper_http_requests_total{{method=\"POST\",route=\"{route}\",status=\"{status}\"}} "
    );
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series.as_str()))
        .map_or(0, |n| n.trim().parse().unwrap())
}

#[tokio::test]
async fn ofrep_over_a_connection_is_answered_as_the_router_answers_it() {
    let store = store().await;
    let state = AppState::start(&config(), Arc::clone(&store))
        .await
        .unwrap();
    let app = router(state);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_on(listener, config(), store, async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let corpus = corpus();
    let mut statuses = BTreeSet::new();
    // (route, status) -> requests, for the POSTs the connection service answers itself.
    let mut direct_answers = BTreeMap::<(&str, u16), u64>::new();
    for request in &corpus {
        let direct = over_tcp(&client, &base, request).await;
        let routed = through_router(&app, request).await;
        assert_eq!(direct, routed, "{} {}", request.0, request.1);
        statuses.insert(direct.0);
        if let Some(route) = ofrep_route(request) {
            *direct_answers.entry((route, direct.0)).or_default() += 1;
        }
    }
    // The corpus reaches every kind of answer.
    assert_eq!(
        statuses.into_iter().collect::<Vec<_>>(),
        [200, 400, 401, 403, 404, 405, 413]
    );

    // ETags: a second bulk request with the first one's tag gets 304 and no body.
    let bulk = format!("{base}{BULK}");
    let send = |tag: Option<String>| {
        let mut request = client.post(&bulk).bearer_auth(SDK).body("{}");
        if let Some(tag) = tag {
            request = request.header("if-none-match", tag);
        }
        request.send()
    };
    let first = send(None).await.unwrap();
    *direct_answers.entry((BULK, 200)).or_default() += 1;
    let tag = first.headers()["etag"].to_str().unwrap().to_owned();
    let again = send(Some(tag)).await.unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(again.text().await.unwrap(), "");
    *direct_answers.entry((BULK, 304)).or_default() += 1;

    // Every directly answered request was counted under the router's route template.
    let metrics = client
        .get(format!("{base}/metrics"))
        .bearer_auth(SDK)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(direct_answers.len() > 5, "{direct_answers:?}");
    for ((route, status), count) in direct_answers {
        assert_eq!(
            requests_counted(&metrics, route, status),
            count,
            "{route} {status}: {metrics}"
        );
    }

    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
