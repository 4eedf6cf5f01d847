//! What the live-flags tests share: patience, quick options, and the `Gate` wrapper.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use flipper::Item;
use flipper::live::LiveOptions;
use flipper::store::{
    Capabilities, ChangeStream, ListEntry, MemoryStore, PutMode, Store, Version, Versioned,
};
use futures_util::StreamExt;
use tokio::sync::watch;

/// How long a test waits for something that should take milliseconds.
pub(crate) const PATIENCE: Duration = Duration::from_secs(10);

/// Waits until `done` holds, checking every 5 ms; fails the test after [`PATIENCE`].
pub(crate) async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Options for tests: quick polls and retries.
pub(crate) fn quick() -> LiveOptions {
    LiveOptions::default()
        .init_timeout(Duration::from_secs(5))
        .poll_interval(Duration::from_millis(30))
        .retry(Duration::from_millis(10), Duration::from_millis(100))
}

/// A real [`MemoryStore`] whose watch events can be held back while the gate is closed (and
/// are then delivered in order): the only stand-in of these tests, to order a watched change
/// against a write deterministically. Every answer comes from the memory store.
pub(crate) struct Gate {
    pub(crate) inner: Arc<MemoryStore>,
    open: watch::Sender<bool>,
}

impl Gate {
    pub(crate) fn new() -> Self {
        Self {
            inner: Arc::new(MemoryStore::new()),
            open: watch::channel(true).0,
        }
    }

    /// Holds the watch's events back (`false`) or lets them through (`true`).
    pub(crate) fn set_open(&self, open: bool) {
        self.open.send_replace(open);
    }
}

impl fmt::Debug for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gate").finish_non_exhaustive()
    }
}

impl fmt::Display for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("gate:memory:")
    }
}

#[async_trait]
impl Store for Gate {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn get(&self, name: &str) -> flipper::Result<Option<Versioned>> {
        self.inner.get(name).await
    }
    async fn put(&self, item: &Item, mode: PutMode) -> flipper::Result<Version> {
        self.inner.put(item, mode).await
    }
    async fn put_many(&self, items: &[Item]) -> flipper::Result<Vec<Version>> {
        self.inner.put_many(items).await
    }
    async fn delete(&self, name: &str) -> flipper::Result<bool> {
        self.inner.delete(name).await
    }
    async fn list(&self, limit: Option<usize>, offset: usize) -> flipper::Result<Vec<ListEntry>> {
        self.inner.list(limit, offset).await
    }
    fn watch(&self) -> Option<ChangeStream> {
        let open = self.open.subscribe();
        let changes = self.inner.watch()?;
        Some(Box::pin(changes.then(move |change| {
            let mut open = open.clone();
            async move {
                let _ = open.wait_for(|open| *open).await;
                change
            }
        })))
    }
}
