//! [`CachedStore`]: an LRU cache of flags, with an optional time to live, over any store. What
//! is cached and how it stays fresh is documented on the type; `state` holds the machinery.

use std::fmt;
use std::num::NonZeroUsize;
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use flipper_core::Item;
use futures_util::StreamExt;
use tokio::task::AbortHandle;

use super::{
    Capabilities, Change, ChangeStream, ListEntry, PutMode, Store, StoreCounter, Version, Versioned,
};
use crate::error::Result;

mod copy_error;
mod state;

use state::{After, Cache};

/// How many flags a [`CachedStore`] keeps by default: flipper-client's `DEFAULT_SIZE`.
pub const DEFAULT_CACHE_SIZE: usize = 5000;

/// Where a [`CachedStore`] reads the time from, to expire entries. Monotonic.
///
/// The default is [`MonotonicClock`]; tests pass a clock they move by hand.
pub trait Clock: fmt::Debug + Send + Sync + 'static {
    /// Now.
    fn now(&self) -> Instant;
}

/// The system's monotonic clock ([`Instant::now`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct MonotonicClock;

impl Clock for MonotonicClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// How a [`CachedStore`] caches: size, time to live, clock.
///
/// ```
/// use std::time::Duration;
/// use flipper::store::CacheOptions;
/// let options = CacheOptions::new().size(1000).ttl(Some(Duration::from_secs(30)));
/// assert_eq!(options.get_size(), 1000);
/// ```
#[derive(Debug, Clone)]
pub struct CacheOptions {
    size: usize,
    ttl: Option<Duration>,
    clock: Arc<dyn Clock>,
}

impl CacheOptions {
    /// [`DEFAULT_CACHE_SIZE`] entries, no time to live (flipper-client's defaults), the system's
    /// monotonic clock.
    pub fn new() -> Self {
        Self {
            size: DEFAULT_CACHE_SIZE,
            ttl: None,
            clock: Arc::new(MonotonicClock),
        }
    }

    /// At most `size` flags (present or missing) are kept; the least recently used goes first.
    /// `0` turns caching off: every read goes to the inner store (concurrent reads of one flag
    /// still share one).
    pub fn size(mut self, size: usize) -> Self {
        self.size = size;
        self
    }

    /// Entries expire this long after they were stored (`None`: never). A zero TTL caches
    /// nothing.
    pub fn ttl(mut self, ttl: Option<Duration>) -> Self {
        self.ttl = ttl;
        self
    }

    /// The clock that expires entries (tests move one by hand).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The configured size.
    pub fn get_size(&self) -> usize {
        self.size
    }

    /// The configured time to live.
    pub fn get_ttl(&self) -> Option<Duration> {
        self.ttl
    }
}

impl Default for CacheOptions {
    fn default() -> Self {
        Self::new()
    }
}

/// What a [`CachedStore`] has done since it was made, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Reads answered from the cache (including a cached "missing").
    pub hits: u64,
    /// Reads the cache could not answer (absent or expired entry).
    pub misses: u64,
    /// Reads of the inner store. Fewer than `misses` when concurrent misses of one flag shared
    /// a read.
    pub loads: u64,
    /// Entries pushed out because the cache was full (expiry and invalidation not counted).
    pub evictions: u64,
    /// Entries held now.
    pub entries: usize,
}

/// An LRU cache over another store: reads are answered from memory, writes go through.
///
/// Every [`Store`] method is implemented: `get` is cached; `put`, `put_many` and `delete` write
/// to the inner store and then cache what they wrote (a failed write, such as a conditional put
/// that lost, drops the entry instead); `list` and `watch` go to the inner store; the
/// capabilities are the inner store's.
///
/// Inside a tokio runtime, making the cache (or, otherwise, its first use) starts the task that
/// follows the inner store's changes; dropping the cache stops it.
///
/// # Compared with flipper-client
///
/// Python's `CachedFeatureFlagStore` (flipper-client 1.3.2), with three differences, each a bug
/// fix:
///
/// * **Missing flags.** Python caches "this flag does not exist" like any other answer, and with
///   its default (no TTL) forever: a flag created by another process stays missing until evicted.
///   Here a miss is cached only while something will invalidate it: with a TTL (a miss then
///   lives at most that long, like a hit), or, without one, while the cache follows a change
///   stream that includes other processes' writes ([`Capabilities::watch_external`]: the memory
///   store, a flipper server). Otherwise every read of a missing flag asks the inner store.
/// * **Change notifications.** When the inner store has [`Store::watch`], the cache follows it
///   in a background task and drops the entries that changed (everything on
///   [`Change::Resync`]), so writes made through other handles (or other processes, with
///   `watch_external`) are seen without waiting for the TTL.
/// * **Concurrency.** Concurrent reads of one uncached flag share one read of the inner store
///   (single flight), and a read that started before a write can never put its older answer in
///   the cache after that write.
///
/// Present flags are cached without a TTL forever, as in Python (until evicted, overwritten by
/// this handle's writes, or invalidated by the change stream). With a store whose watch does not
/// see other processes (a JSON file, redb) and no TTL, other processes' writes are not seen:
/// give it a TTL.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::time::Duration;
/// use flipper::store::{CacheOptions, CachedStore, MemoryStore, Store, StoreExt};
///
/// let store = CachedStore::with_options(
///     MemoryStore::new(),
///     CacheOptions::new().size(1000).ttl(Some(Duration::from_secs(60))),
/// );
/// store.create("beta", true, None).await?;
/// assert!(store.get("beta").await?.is_some()); // from the cache
/// assert_eq!(store.stats().hits, 1);
/// # Ok::<(), flipper::Error>(())
/// # }).unwrap();
/// ```
pub struct CachedStore<S: Store = Arc<dyn Store>> {
    inner: S,
    cache: Arc<Cache>,
    /// The task following `inner.watch()`, once started (`None`: the inner store has none).
    watcher: OnceLock<Option<AbortHandle>>,
}

impl<S: Store> CachedStore<S> {
    /// A cache of [`DEFAULT_CACHE_SIZE`] flags with no time to live over `inner`.
    pub fn new(inner: S) -> Self {
        Self::with_options(inner, CacheOptions::new())
    }

    /// A cache over `inner` configured by `options`.
    pub fn with_options(inner: S, options: CacheOptions) -> Self {
        let store = Self {
            cache: Arc::new(Cache::new(
                NonZeroUsize::new(options.size),
                options.ttl,
                options.clock,
                inner.capabilities().watch_external,
            )),
            inner,
            watcher: OnceLock::new(),
        };
        store.ensure_watch();
        store
    }

    /// The store under the cache. Writing to it directly bypasses the cache (the change stream,
    /// when the store has one, still invalidates the entries).
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Counters since the cache was made.
    pub fn stats(&self) -> CacheStats {
        self.cache.stats()
    }

    /// Drops every entry; the next reads go to the inner store.
    pub fn clear(&self) {
        self.cache.clear();
    }

    /// Whether a task follows the inner store's changes (it has [`Store::watch`], the cache was
    /// used inside a tokio runtime, and the change stream has not ended).
    pub fn follows_changes(&self) -> bool {
        self.cache.is_watching()
    }

    /// Starts following the inner store's changes, once, when a tokio runtime is at hand.
    fn ensure_watch(&self) {
        if self.watcher.get().is_some() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        self.watcher.get_or_init(|| {
            let changes = self.inner.watch()?;
            self.cache.set_watching(true);
            let task = follow(Arc::downgrade(&self.cache), changes, self.inner.to_string());
            Some(runtime.spawn(task).abort_handle())
        });
    }
}

/// Applies the inner store's changes to the cache until the stream or the cache ends.
async fn follow(cache: Weak<Cache>, mut changes: ChangeStream, store: String) {
    tracing::debug!(%store, "cache: following the store's changes");
    while let Some(change) = changes.next().await {
        let Some(cache) = cache.upgrade() else {
            return;
        };
        if matches!(change, Change::Resync) {
            tracing::debug!(%store, "cache: the change stream asked for a reload; cache cleared");
        }
        cache.apply(&change);
    }
    if let Some(cache) = cache.upgrade() {
        cache.watch_ended();
        tracing::warn!(
            %store,
            "cache: the store's change stream ended; the cache was cleared, no longer caches \
             missing flags without a TTL, and sees other writers only through its TTL \
             (recreate the cache, or give it a TTL, to see them sooner)"
        );
    }
}

impl<S: Store> Drop for CachedStore<S> {
    fn drop(&mut self) {
        if let Some(Some(task)) = self.watcher.get() {
            task.abort();
        }
    }
}

impl<S: Store> fmt::Debug for CachedStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedStore")
            .field("inner", &self.inner)
            .field("stats", &self.stats())
            .field("follows_changes", &self.follows_changes())
            .finish()
    }
}

impl<S: Store> fmt::Display for CachedStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (cached)", self.inner)
    }
}

#[async_trait]
impl<S: Store> Store for CachedStore<S> {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    /// `cache_hits`, `cache_misses`, `cache_loads`, `cache_evictions`, then the inner store's.
    fn counters(&self) -> Vec<StoreCounter> {
        let stats = self.stats();
        let mut counters = vec![
            StoreCounter::new(
                "cache_hits",
                "Reads answered from the cache (a cached absence included).",
                stats.hits,
            ),
            StoreCounter::new(
                "cache_misses",
                "Reads the cache could not answer.",
                stats.misses,
            ),
            StoreCounter::new(
                "cache_loads",
                "Reads of the store behind the cache (concurrent misses of one flag share one).",
                stats.loads,
            ),
            StoreCounter::new(
                "cache_evictions",
                "Entries pushed out of the full cache.",
                stats.evictions,
            ),
        ];
        counters.extend(self.inner.counters());
        counters
    }

    async fn get(&self, name: &str) -> Result<Option<Versioned>> {
        self.ensure_watch();
        self.cache.get(name, || self.inner.get(name)).await
    }

    async fn put(&self, item: &Item, mode: PutMode) -> Result<Version> {
        self.ensure_watch();
        let write = self.cache.begin_write([item.feature_name.as_str()]);
        let result = self.inner.put(item, mode).await;
        write.finish(|_| match &result {
            Ok(version) => After::Cache(Some(Versioned {
                item: item.clone(),
                version: version.clone(),
            })),
            // A conditional put that lost means the cached entry may be stale; any other
            // failure leaves the flag unknown.
            Err(_) => After::Forget,
        });
        result
    }

    async fn put_many(&self, items: &[Item]) -> Result<Vec<Version>> {
        self.ensure_watch();
        let write = self
            .cache
            .begin_write(items.iter().map(|i| i.feature_name.as_str()));
        let result = self.inner.put_many(items).await;
        match &result {
            Ok(versions) if versions.len() == items.len() => {
                // The last item of a name is the one stored.
                let written: std::collections::HashMap<&str, (&Item, &Version)> = items
                    .iter()
                    .zip(versions)
                    .map(|(item, v)| (item.feature_name.as_str(), (item, v)))
                    .collect();
                write.finish(|name| match written.get(name) {
                    Some((item, version)) => After::Cache(Some(Versioned {
                        item: (*item).clone(),
                        version: (*version).clone(),
                    })),
                    None => After::Forget,
                });
            }
            _ => write.finish(|_| After::Forget),
        }
        result
    }

    async fn delete(&self, name: &str) -> Result<bool> {
        self.ensure_watch();
        let write = self.cache.begin_write([name]);
        let result = self.inner.delete(name).await;
        write.finish(|_| match &result {
            Ok(_) => After::Cache(None),
            Err(_) => After::Forget,
        });
        result
    }

    async fn list(&self, limit: Option<usize>, offset: usize) -> Result<Vec<ListEntry>> {
        self.ensure_watch();
        self.inner.list(limit, offset).await
    }

    fn watch(&self) -> Option<ChangeStream> {
        self.inner.watch()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    crate::store_conformance_tests!(CachedStore::new(MemoryStore::new()));

    #[test]
    fn works_without_a_runtime_and_caches_no_misses_then() {
        fn run<T>(f: impl Future<Output = T>) -> T {
            futures_util::FutureExt::now_or_never(Box::pin(f)).expect("memory store is ready")
        }
        let store = CachedStore::new(MemoryStore::new());
        assert!(run(store.get("a")).unwrap().is_none());
        assert!(run(store.get("a")).unwrap().is_none());
        assert!(!store.follows_changes());
        // No watch task outside a runtime: the misses were not cached.
        assert_eq!(store.stats().loads, 2);
        let item = Item::new("a", true, 1);
        run(store.put(&item, PutMode::Overwrite)).unwrap();
        assert_eq!(run(store.get("a")).unwrap().unwrap().item, item);
        assert_eq!(store.stats().hits, 1);
    }
}
