//! What the wrapper tests share: the stores they wrap (a memory store, a JSON file in a
//! temporary directory), the `Faulty` fault injector, a clock moved by hand, and small helpers.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use flipper::store::{
    Capabilities, ChangeStream, Clock, JsonFileStore, ListEntry, MemoryStore, PutMode, Store,
    StoreExt, Version, Versioned,
};
use flipper::{Error, Item, Result};

pub(crate) fn memory() -> Arc<dyn Store> {
    Arc::new(MemoryStore::new())
}

/// A JSON-file store in a temporary directory, removed when the returned guard drops.
pub(crate) fn json_file() -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let store = JsonFileStore::new(dir.path().join("flags.json"));
    (dir, Arc::new(store))
}

/// A fault injector (not a mock): a real [`MemoryStore`] with added latency, injected write
/// errors, an optional lack of `watch`, and counts of the calls that reached it.
pub(crate) struct Faulty {
    inner: MemoryStore,
    name: String,
    /// Slept *after* reading (and counting), so a slow read returns what was there when it
    /// began.
    pub(crate) get_delay: Mutex<Duration>,
    /// Slept before writing.
    write_delay: Mutex<Duration>,
    /// Writes sleep a random time up to `write_delay` instead.
    jitter: bool,
    pub(crate) fail_writes: AtomicBool,
    watch: bool,
    gets: AtomicUsize,
    writes: AtomicUsize,
}

impl Faulty {
    pub(crate) fn new(name: &str) -> Self {
        Self {
            inner: MemoryStore::new(),
            name: name.to_owned(),
            get_delay: Mutex::new(Duration::ZERO),
            write_delay: Mutex::new(Duration::ZERO),
            jitter: false,
            fail_writes: AtomicBool::new(false),
            watch: true,
            gets: AtomicUsize::new(0),
            writes: AtomicUsize::new(0),
        }
    }
    pub(crate) fn without_watch(mut self) -> Self {
        self.watch = false;
        self
    }
    pub(crate) fn slow_gets(self, delay: Duration) -> Self {
        *self.get_delay.lock().unwrap() = delay;
        self
    }
    pub(crate) fn slow_writes(self, delay: Duration) -> Self {
        *self.write_delay.lock().unwrap() = delay;
        self
    }
    pub(crate) fn jittery_writes(mut self, up_to: Duration) -> Self {
        self.jitter = true;
        self.slow_writes(up_to)
    }
    pub(crate) fn failing_writes(self) -> Self {
        self.fail_writes.store(true, Ordering::SeqCst);
        self
    }
    pub(crate) fn gets(&self) -> usize {
        self.gets.load(Ordering::SeqCst)
    }
    async fn before_write(&self) -> Result<()> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        let mut delay = *self.write_delay.lock().unwrap();
        if self.jitter {
            delay = delay.mul_f64(fastrand::f64());
        }
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if self.fail_writes.load(Ordering::SeqCst) {
            return Err(Error::Backend {
                store: self.name.clone(),
                source: "injected failure: connection refused".into(),
            });
        }
        Ok(())
    }
}

impl fmt::Debug for Faulty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Faulty").field("name", &self.name).finish()
    }
}

impl fmt::Display for Faulty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

#[async_trait]
impl Store for Faulty {
    fn capabilities(&self) -> Capabilities {
        let caps = self.inner.capabilities();
        if self.watch {
            caps
        } else {
            caps.with_watch(false).with_watch_external(false)
        }
    }
    async fn get(&self, name: &str) -> Result<Option<Versioned>> {
        let got = self.inner.get(name).await;
        // Counted once read: a test that sees the count knows what the read returned.
        self.gets.fetch_add(1, Ordering::SeqCst);
        let delay = *self.get_delay.lock().unwrap();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        got
    }
    async fn put(&self, item: &Item, mode: PutMode) -> Result<Version> {
        self.before_write().await?;
        self.inner.put(item, mode).await
    }
    async fn put_many(&self, items: &[Item]) -> Result<Vec<Version>> {
        self.before_write().await?;
        self.inner.put_many(items).await
    }
    async fn delete(&self, name: &str) -> Result<bool> {
        self.before_write().await?;
        self.inner.delete(name).await
    }
    async fn list(&self, limit: Option<usize>, offset: usize) -> Result<Vec<ListEntry>> {
        self.inner.list(limit, offset).await
    }
    fn watch(&self) -> Option<ChangeStream> {
        if self.watch { self.inner.watch() } else { None }
    }
}

/// A clock moved by hand.
#[derive(Debug)]
pub(crate) struct ManualClock(Mutex<Instant>);

impl ManualClock {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self(Mutex::new(Instant::now())))
    }
    pub(crate) fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        *self.0.lock().unwrap()
    }
}

/// Every readable flag of a store, without versions (replicas have their own).
pub(crate) async fn items(store: &dyn Store) -> Vec<Item> {
    store.items(None, 0).await.unwrap()
}

/// Waits (up to 5 s) until `check` holds.
pub(crate) async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(5);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub(crate) fn item(name: &str, on: bool) -> Item {
    Item::new(name, on, 1)
}
