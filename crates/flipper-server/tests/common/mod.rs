//! Shared by the server's tests: a router over a store, one-shot requests, the store's bytes,
//! and stores that fail on purpose (no real backend can be made to conflict or go down on
//! demand).

#![allow(dead_code, unreachable_pub)]

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use flipper::store::{
    Capabilities, ChangeStream, ListEntry, MemoryStore, PutMode, Store, Version, Versioned,
};
use flipper::{Error, Item};
use flipper_server::{AppState, ServerConfig, router};
use tower::ServiceExt;

pub const ADMIN: &str = "admin-secret";
pub const SDK: &str = "sdk-secret";

/// A router over `store`, with both tokens.
pub async fn app(store: Arc<dyn Store>) -> (Router, AppState) {
    app_with(store, Some(ADMIN), Some(SDK)).await
}

pub async fn app_with(
    store: Arc<dyn Store>,
    admin: Option<&str>,
    sdk: Option<&str>,
) -> (Router, AppState) {
    let mut config = ServerConfig::default();
    config.admin_token = admin.map(str::to_owned);
    config.sdk_token = sdk.map(str::to_owned);
    config.max_body_bytes = 4096;
    config.poll_interval = Duration::from_millis(50);
    let state = AppState::start(&config, store)
        .await
        .expect("the server starts");
    (router(state.clone()), state)
}

/// A response: status, headers, body text.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    /// `error.code` and `error.field` of an error body.
    pub fn error(&self) -> (String, Option<String>) {
        let v = self.json();
        let e = &v["error"];
        assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
        (
            e["code"].as_str().unwrap_or_default().to_owned(),
            e["field"].as_str().map(str::to_owned),
        )
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Sends one request through the router.
pub async fn call(
    app: &Router,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> Reply {
    call_with(app, method, uri, token, body, &[]).await
}

pub async fn call_with(
    app: &Router,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> Reply {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_owned())))
        .expect("a valid request");
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("a body");
    let body = String::from_utf8(bytes.to_vec()).expect("UTF-8");
    if !body.is_empty() {
        assert_eq!(
            headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/json"),
            "{method} {uri}"
        );
    }
    Reply {
        status,
        headers,
        body,
    }
}

/// Every stored flag's bytes and version: equal before and after means nothing changed.
pub async fn stored(store: &dyn Store) -> Vec<(String, String)> {
    store
        .list(None, 0)
        .await
        .expect("the store lists")
        .into_iter()
        .map(|e| {
            let v = e.expect("readable");
            (
                String::from_utf8(v.item.serialize()).expect("ASCII"),
                v.version.to_string(),
            )
        })
        .collect()
}

/// Waits (at most 5 s) until `done` holds.
pub async fn eventually(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !done().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A memory store whose compare-and-swap writes always lose, and whose watch can be turned
/// off (for polling) or whose every call can fail (a store gone away).
#[derive(Debug, Default)]
pub struct Rigged {
    pub inner: MemoryStore,
    pub conflicts: AtomicBool,
    pub down: AtomicBool,
    pub no_watch: bool,
}

impl Rigged {
    pub fn conflicting() -> Self {
        let s = Self::default();
        s.conflicts.store(true, Ordering::SeqCst);
        s
    }

    pub fn without_watch() -> Self {
        Self {
            no_watch: true,
            ..Self::default()
        }
    }

    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    fn check(&self) -> flipper::Result<()> {
        if self.down.load(Ordering::SeqCst) {
            Err(Error::Backend {
                store: "rigged:".into(),
                source: "connection refused".into(),
            })
        } else {
            Ok(())
        }
    }
}

impl fmt::Display for Rigged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("rigged:")
    }
}

#[async_trait]
impl Store for Rigged {
    fn capabilities(&self) -> Capabilities {
        self.inner
            .capabilities()
            .with_watch(!self.no_watch)
            .with_watch_external(!self.no_watch)
    }
    async fn get(&self, name: &str) -> flipper::Result<Option<Versioned>> {
        self.check()?;
        self.inner.get(name).await
    }
    async fn put(&self, item: &Item, mode: PutMode) -> flipper::Result<Version> {
        self.check()?;
        if self.conflicts.load(Ordering::SeqCst) && matches!(mode, PutMode::Update(_)) {
            return Err(Error::Conflict {
                name: item.feature_name.clone(),
            });
        }
        self.inner.put(item, mode).await
    }
    async fn put_many(&self, items: &[Item]) -> flipper::Result<Vec<Version>> {
        self.check()?;
        self.inner.put_many(items).await
    }
    async fn delete(&self, name: &str) -> flipper::Result<bool> {
        self.check()?;
        self.inner.delete(name).await
    }
    async fn list(&self, limit: Option<usize>, offset: usize) -> flipper::Result<Vec<ListEntry>> {
        self.check()?;
        self.inner.list(limit, offset).await
    }
    fn watch(&self) -> Option<ChangeStream> {
        if self.no_watch {
            None
        } else {
            self.inner.watch()
        }
    }
}
