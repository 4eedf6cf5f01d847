//! `GET /api/v1/stream` over a real TCP listener with a real HTTP client: the snapshot first,
//! then one event per change with increasing ids, resuming with `Last-Event-ID`, fresh
//! snapshots for ids the server cannot resume from, heartbeats, auth, several subscribers,
//! and shutdown.

mod live;

use std::sync::Arc;
use std::time::{Duration, Instant};

use flipper::store::{MemoryStore, Store, StoreExt};
use live::{ADMIN, SDK, Server, Sse, Stream};
use reqwest::Method;
use serde_json::json;

/// A server over a memory store holding the flag `a`.
async fn server(tweak: impl FnOnce(&mut flipper_server::ServerConfig)) -> Server {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    store.create_at("a", false, None, 1).await.unwrap();
    Server::start(store, tweak).await
}

/// Sends one API request with the admin token: status and body.
async fn api(server: &Server, method: Method, path: &str, body: &str) -> (u16, String) {
    let response = reqwest::Client::new()
        .request(method, format!("{}{path}", server.base))
        .bearer_auth(ADMIN)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn create(server: &Server, name: &str) {
    let body = format!(r#"{{"name": "{name}", "is_enabled": true}}"#);
    assert_eq!(
        api(server, Method::POST, "/api/v1/flags", &body).await.0,
        201
    );
}

async fn open(server: &Server, last_event_id: Option<&str>) -> Stream {
    Stream::open(&server.base, Some(SDK), last_event_id)
        .await
        .expect("the stream opens")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_snapshot_comes_first_then_each_change_in_order() {
    let server = server(|_| {}).await;
    let mut stream = open(&server, None).await;
    let snapshot = stream.event().await;
    assert_eq!(snapshot.name, "snapshot");
    let (_, stored) = api(&server, Method::GET, "/api/v1/flags/a", "").await;
    assert_eq!(
        snapshot.raw,
        format!(
            r#"{{"version": {}, "flags": [{stored}]}}"#,
            snapshot.version()
        )
    );
    assert_eq!(snapshot.epoch().len(), 16);

    create(&server, "b").await;
    assert_eq!(
        api(&server, Method::POST, "/api/v1/flags/a/enable", "")
            .await
            .0,
        204
    );
    assert_eq!(
        api(&server, Method::DELETE, "/api/v1/flags/b", "").await.0,
        204
    );

    let mut last = snapshot.version();
    let mut seen = Vec::new();
    for _ in 0..3 {
        let event = stream.event().await;
        assert_eq!(event.epoch(), snapshot.epoch());
        assert_eq!(event.version(), last + 1, "ids increase one by one");
        last = event.version();
        seen.push((event.name.clone(), event.data["name"].clone()));
        if event.name == "put" && event.data["name"] == "a" {
            // The stored flag exactly as the API shows it, and its version as the ETag.
            let response = reqwest::Client::new()
                .get(format!("{}/api/v1/flags/a", server.base))
                .bearer_auth(SDK)
                .send()
                .await
                .unwrap();
            let etag = response.headers()["etag"].to_str().unwrap().to_owned();
            let body = response.text().await.unwrap();
            assert_eq!(
                event.raw,
                format!(r#"{{"name": "a", "version": {etag}, "item": {body}}}"#)
            );
        }
    }
    assert_eq!(
        seen,
        [
            ("put".to_owned(), json!("b")),
            ("put".to_owned(), json!("a")),
            ("delete".to_owned(), json!("b")),
        ]
    );
    assert_eq!(server.version().await, last);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_event_id_replays_exactly_the_missed_changes() {
    let server = server(|_| {}).await;
    let mut first = open(&server, None).await;
    let snapshot = first.event().await;
    create(&server, "b").await;
    let seen = first.event().await;
    assert_eq!(
        (seen.name.as_str(), seen.version()),
        ("put", snapshot.version() + 1)
    );
    drop(first);

    // Missed while disconnected.
    create(&server, "c").await;
    assert_eq!(
        api(&server, Method::DELETE, "/api/v1/flags/a", "").await.0,
        204
    );
    server.reaches(seen.version() + 2).await;

    let mut resumed = open(&server, Some(&seen.id)).await;
    let c = resumed.event().await;
    assert_eq!((c.name.as_str(), c.version()), ("put", seen.version() + 1));
    assert_eq!(c.data["name"], "c");
    let a = resumed.event().await;
    assert_eq!(
        (a.name.as_str(), a.version()),
        ("delete", seen.version() + 2)
    );
    assert_eq!(a.raw, r#"{"name": "a"}"#);
    // Then it goes on live.
    create(&server, "d").await;
    let d = resumed.event().await;
    assert_eq!(
        (d.data["name"].as_str(), d.version()),
        (Some("d"), seen.version() + 3)
    );

    // Resuming from the latest id: nothing is replayed, the next change comes next.
    let mut current = open(&server, Some(&d.id)).await;
    create(&server, "e").await;
    let e = current.event().await;
    assert_eq!((e.name.as_str(), e.version()), ("put", d.version() + 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_the_server_cannot_resume_from_get_a_fresh_snapshot() {
    let server = server(|c| c.stream_log_size = 2).await;
    let mut stream = open(&server, None).await;
    let snapshot = stream.event().await;
    for name in ["b", "c", "d"] {
        create(&server, name).await;
    }
    server.reaches(snapshot.version() + 3).await;
    let current = snapshot.version() + 3;
    let epoch = snapshot.epoch().to_owned();
    let other_epoch = if epoch.starts_with('0') { "1" } else { "0" }.repeat(16);
    for id in [
        // Older than the log (it keeps 2 changes).
        snapshot.id.clone(),
        // Another process's.
        format!("{other_epoch}:{current}"),
        // Not one of ours.
        "garbage".to_owned(),
        format!("{epoch}:{}", current + 5),
    ] {
        let mut stream = open(&server, Some(&id)).await;
        let fresh = stream.event().await;
        assert_eq!(fresh.name, "snapshot", "{id}");
        assert_eq!(fresh.version(), current, "{id}");
        assert_eq!(fresh.data["flags"].as_array().unwrap().len(), 4, "{id}");
    }
    // The oldest change still in the log can be resumed from.
    let mut recent = open(&server, Some(&format!("{epoch}:{}", current - 2))).await;
    let next = recent.event().await;
    assert_eq!((next.name.as_str(), next.version()), ("put", current - 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_arrive_between_events() {
    let server = server(|c| c.heartbeat_interval = Duration::from_millis(50)).await;
    let mut stream = open(&server, None).await;
    assert_eq!(stream.event().await.name, "snapshot");
    for _ in 0..2 {
        assert_eq!(stream.next().await, Some(Sse::Comment));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_needs_a_token() {
    let server = server(|_| {}).await;
    let (status, body) = Stream::open(&server.base, None, None).await.err().unwrap();
    assert_eq!(status, 401);
    assert!(body.contains(r#""code": "unauthorized""#), "{body}");
    let (status, body) = Stream::open(&server.base, Some("wrong"), None)
        .await
        .err()
        .unwrap();
    assert_eq!(status, 403);
    assert!(body.contains(r#""code": "forbidden""#), "{body}");
    for token in [SDK, ADMIN] {
        let mut stream = Stream::open(&server.base, Some(token), None).await.unwrap();
        assert_eq!(stream.event().await.name, "snapshot");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_through_the_api_reaches_every_subscriber() {
    let server = server(|_| {}).await;
    let mut streams = Vec::new();
    for _ in 0..3 {
        let mut stream = open(&server, None).await;
        assert_eq!(stream.event().await.name, "snapshot");
        streams.push(stream);
    }
    create(&server, "launch").await;
    let events = futures_util::future::join_all(streams.iter_mut().map(Stream::event)).await;
    for event in &events {
        assert_eq!(event.name, "put");
        assert_eq!(event.data["item"]["feature_name"], "launch");
        assert_eq!(event.id, events[0].id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_open_streams() {
    let server = server(|_| {}).await;
    let mut stream = open(&server, None).await;
    assert_eq!(stream.event().await.name, "snapshot");
    let started = Instant::now();
    server.stop().await.expect("a clean stop");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "streams do not hold shutdown up: {:?}",
        started.elapsed()
    );
    assert_eq!(stream.next().await, None);
}

/// The names of this process's HTTP worker threads (`flipper-http-N`) now.
fn worker_threads() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| name.starts_with("flipper-http-"))
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_workers_share_the_socket_and_stop_together() {
    // The only test of this binary with more than one worker: its threads are the only ones.
    let server = server(|c| c.workers = 3).await;
    server.version().await; // answered: the server and its workers run
    assert_eq!(worker_threads(), ["flipper-http-1", "flipper-http-2"]);
    // Each on its own connection, accepted by whichever worker is free.
    let mut streams = Vec::new();
    for _ in 0..6 {
        let mut stream = open(&server, None).await;
        assert_eq!(stream.event().await.name, "snapshot");
        streams.push(stream);
    }
    let evaluations = (0..40).map(|_| async {
        let response = reqwest::Client::new()
            .post(format!("{}/ofrep/v1/evaluate/flags/a", server.base))
            .bearer_auth(SDK)
            .body(r#"{"context": {"user_id": 1}}"#)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    });
    for (status, body) in futures_util::future::join_all(evaluations).await {
        assert_eq!(status, 200, "{body}");
        assert!(body.contains(r#""reason": "DISABLED""#), "{body}");
    }
    // A change reaches every stream, whichever worker holds it.
    let (status, body) = api(&server, Method::POST, "/api/v1/flags/a/enable", "").await;
    assert_eq!(status, 204, "{body}");
    for stream in &mut streams {
        let event = stream.event().await;
        assert_eq!(
            (event.name.as_str(), &event.data["item"]["is_enabled"]),
            ("put", &json!(true))
        );
    }
    // One signal stops every worker, open streams included, and their threads end.
    let started = Instant::now();
    server.stop().await.expect("a clean stop");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    for stream in &mut streams {
        assert_eq!(stream.next().await, None);
    }
    let deadline = Instant::now() + live::PATIENCE;
    while !worker_threads().is_empty() {
        assert!(
            Instant::now() < deadline,
            "left running: {:?}",
            worker_threads()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
