//! The server over a real TCP listener with a real HTTP client, and the snapshot following
//! writes made straight to the store (by watching it, or by polling one that cannot report
//! changes).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{ADMIN, Rigged, SDK, eventually};
use flipper::store::{JsonFileStore, MemoryStore, Store, StoreExt};
use flipper_server::{AppState, ServeError, ServerConfig, serve_on};
use reqwest::StatusCode;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

struct Running {
    base: String,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), ServeError>>,
}

async fn start(store: Arc<dyn Store>) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut config = ServerConfig::default();
    config.admin_token = Some(ADMIN.into());
    config.sdk_token = Some(SDK.into());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve_on(listener, config, store, async move {
        let _ = stopped.await;
    }));
    Running { base, stop, task }
}

struct Http {
    client: reqwest::Client,
    base: String,
}

impl Http {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<&str>,
        etag: Option<&str>,
    ) -> (StatusCode, Option<String>, String) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        if let Some(etag) = etag {
            request = request.header("if-none-match", etag);
        }
        let response = request.send().await.expect("the server answers");
        let status = response.status();
        let etag = response
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        (status, etag, response.text().await.expect("a body"))
    }

    async fn post(&self, path: &str, token: &str, body: &str) -> (StatusCode, String) {
        let (status, _, text) = self
            .send(reqwest::Method::POST, path, token, Some(body), None)
            .await;
        (status, text)
    }
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_toggle_evaluate_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("json:{}", dir.path().join("flags.json").display());
    let store = flipper::store::open(&url).unwrap();
    let server = start(Arc::clone(&store)).await;
    let http = Http {
        client: reqwest::Client::new(),
        base: server.base.clone(),
    };

    let (status, _, body) = http
        .send(reqwest::Method::GET, "/readyz", "", None, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = http
        .post(
            "/api/v1/flags",
            ADMIN,
            r#"{"name": "checkout v2", "is_enabled": false}"#,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = http
        .post(
            "/api/v1/flags/checkout%20v2/conditions",
            ADMIN,
            r#"{"checks": {"plan__in": ["pro"]}}"#,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    // The JSON file holds flipper-client's bytes.
    let on_disk = std::fs::read_to_string(dir.path().join("flags.json")).unwrap();
    assert!(
        on_disk.contains(r#""plan": [{"variable": "plan", "value": ["pro"], "operator": "in"}]"#),
        "{on_disk}"
    );

    let ofrep = "/ofrep/v1/evaluate/flags/checkout%20v2";
    let pro = r#"{"context": {"targetingKey": "u1", "plan": "pro"}}"#;
    let answer = async |http: &Http| json(&http.post(ofrep, SDK, pro).await.1);
    eventually("the flag is in the snapshot", async || {
        answer(&http).await["reason"] == "DISABLED"
    })
    .await;

    let (status, _) = http
        .post("/api/v1/flags/checkout%20v2/enable", ADMIN, "")
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    eventually("the enable reaches evaluation", async || {
        answer(&http).await["value"] == true
    })
    .await;
    assert_eq!(
        answer(&http).await,
        serde_json::json!({"key": "checkout v2", "value": true, "reason": "TARGETING_MATCH", "variant": "on"})
    );
    let (status, body) = http
        .post(
            "/api/v1/evaluate",
            SDK,
            r#"{"context": {"plan": "free"}, "flags": ["checkout v2"]}"#,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        json(&body)["flags"]["checkout v2"]["reason"],
        "conditions_failed"
    );

    // Bulk with ETag: 200, then 304 until something changes.
    let bulk = "/ofrep/v1/evaluate/flags";
    let (status, etag, body) = http
        .send(reqwest::Method::POST, bulk, SDK, Some(pro), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&body)["flags"][0]["value"], true);
    let etag = etag.expect("an ETag");
    let (status, same, body) = http
        .send(reqwest::Method::POST, bulk, SDK, Some(pro), Some(&etag))
        .await;
    assert_eq!((status, body.as_str()), (StatusCode::NOT_MODIFIED, ""));
    assert_eq!(same.as_deref(), Some(etag.as_str()));
    let (status, _) = http
        .post("/api/v1/flags/checkout%20v2/disable", ADMIN, "")
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    eventually("the disable changes the ETag", async || {
        let (status, _, _) = http
            .send(reqwest::Method::POST, bulk, SDK, Some(pro), Some(&etag))
            .await;
        status == StatusCode::OK
    })
    .await;
    let (_, _, body) = http
        .send(reqwest::Method::POST, bulk, SDK, Some(pro), None)
        .await;
    assert_eq!(json(&body)["flags"][0]["reason"], "DISABLED");

    // The SDK token cannot write.
    let (status, _) = http
        .post("/api/v1/flags/checkout%20v2/enable", SDK, "")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    server.stop.send(()).unwrap();
    let stopped = tokio::time::timeout(Duration::from_secs(5), server.task).await;
    assert!(
        matches!(stopped, Ok(Ok(Ok(())))),
        "graceful shutdown: {stopped:?}"
    );
}

#[tokio::test]
async fn public_addresses_without_tokens_refuse_to_start() {
    let listener = TcpListener::bind("0.0.0.0:0").await.unwrap();
    let store = Arc::new(MemoryStore::new());
    let result = serve_on(
        listener,
        ServerConfig::default(),
        store,
        std::future::pending(),
    )
    .await;
    let err = result.unwrap_err();
    assert!(err.is_config(), "{err}");
    assert!(err.to_string().contains("--insecure"), "{err}");
}

async fn follows(store: Arc<dyn Store>, writer: &dyn Store) {
    let mut config = ServerConfig::default();
    config.poll_interval = Duration::from_millis(50);
    let state = AppState::start(&config, store).await.unwrap();
    let snapshot = state.live().clone();
    writer.create_at("direct", true, None, 1).await.unwrap();
    eventually("a direct create", async || snapshot.get("direct").is_some()).await;
    writer.set("direct", false).await.unwrap();
    eventually("a direct change", async || {
        snapshot.get("direct").is_some_and(|f| !f.switched_on())
    })
    .await;
    writer.delete("direct").await.unwrap();
    eventually("a direct delete", async || snapshot.get("direct").is_none()).await;
}

#[tokio::test]
async fn the_snapshot_follows_a_watched_store() {
    let store = Arc::new(MemoryStore::new());
    follows(Arc::clone(&store) as Arc<dyn Store>, &*store).await;
}

#[tokio::test]
async fn the_snapshot_polls_a_store_without_watch() {
    let store = Arc::new(Rigged::without_watch());
    follows(Arc::clone(&store) as Arc<dyn Store>, &store.inner).await;
}

#[tokio::test]
async fn the_snapshot_sees_another_process_writing_the_json_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flags.json");
    // Two stores on one file: the second stands for another process (its writes never reach
    // the first one's watch, so the server must poll).
    follows(
        Arc::new(JsonFileStore::new(&path)),
        &JsonFileStore::new(&path),
    )
    .await;
}
