//! [`InstrumentedStore`]: the server's store, timed.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use flipper::Item;
use flipper::store::{Capabilities, ChangeStream, ListEntry, PutMode, Store, Version, Versioned};
use futures_util::StreamExt;
use tokio::time::Instant;

use super::Metrics;

/// A [`Store`] that forwards every call to another and records its latency, errors and watched
/// changes in [`Metrics`]. It changes nothing else: it declares the same capabilities, displays
/// as the store it wraps, and passes the conformance suite.
#[derive(Debug)]
pub(crate) struct InstrumentedStore {
    inner: Arc<dyn Store>,
    metrics: Arc<Metrics>,
}

impl InstrumentedStore {
    pub(crate) fn new(inner: Arc<dyn Store>, metrics: Arc<Metrics>) -> Self {
        Self { inner, metrics }
    }

    async fn timed<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = flipper::Result<T>>,
    ) -> flipper::Result<T> {
        let start = Instant::now();
        let result = call.await;
        self.metrics
            .store_operation(operation, start.elapsed(), result.as_ref().err());
        result
    }
}

impl fmt::Display for InstrumentedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

#[async_trait]
impl Store for InstrumentedStore {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn get(&self, name: &str) -> flipper::Result<Option<Versioned>> {
        self.timed("get", self.inner.get(name)).await
    }

    async fn put(&self, item: &Item, mode: PutMode) -> flipper::Result<Version> {
        self.timed("put", self.inner.put(item, mode)).await
    }

    async fn put_many(&self, items: &[Item]) -> flipper::Result<Vec<Version>> {
        self.timed("put_many", self.inner.put_many(items)).await
    }

    async fn delete(&self, name: &str) -> flipper::Result<bool> {
        self.timed("delete", self.inner.delete(name)).await
    }

    async fn list(&self, limit: Option<usize>, offset: usize) -> flipper::Result<Vec<ListEntry>> {
        self.timed("list", self.inner.list(limit, offset)).await
    }

    fn counters(&self) -> Vec<flipper::store::StoreCounter> {
        self.inner.counters()
    }

    fn watch(&self) -> Option<ChangeStream> {
        let metrics = Arc::clone(&self.metrics);
        let changes = self.inner.watch()?;
        Some(Box::pin(
            changes.inspect(move |change| metrics.store_change(change)),
        ))
    }
}

#[cfg(test)]
mod tests {
    use flipper::store::MemoryStore;

    use super::*;

    fn instrumented() -> InstrumentedStore {
        InstrumentedStore::new(Arc::new(MemoryStore::new()), Arc::new(Metrics::new()))
    }

    flipper::store_conformance_tests!(instrumented());

    #[tokio::test]
    async fn operations_and_errors_are_recorded() {
        let store = instrumented();
        let mut changes = store.watch().expect("the memory store watches");
        store
            .put(&Item::new("a", true, 1), PutMode::Create)
            .await
            .unwrap();
        let again = store.put(&Item::new("a", true, 1), PutMode::Create).await;
        assert!(matches!(again, Err(flipper::Error::AlreadyExists { .. })));
        assert!(store.get("a").await.unwrap().is_some());
        assert!(changes.next().await.is_some());
        let text = store.metrics.render(false).unwrap();
        for line in [
            "flipper_store_operation_duration_seconds_count{operation=\"put\"} 2",
            "flipper_store_operation_duration_seconds_count{operation=\"get\"} 1",
            "flipper_store_operation_errors_total{operation=\"put\",error=\"already_exists\"} 1",
            "flipper_store_changes_total{kind=\"put\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
        }
        assert_eq!(store.to_string(), MemoryStore::new().to_string());
    }
}
