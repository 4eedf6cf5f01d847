//! The store wrappers, `CachedStore` and `ReplicatedStore`, over real stores: the whole
//! conformance suite for each arrangement, then each wrapper's own behaviour (cache hits,
//! expiry, eviction, invalidation, single flight; replication, timeouts, failure reports).
//!
//! The only stand-in is [`Faulty`], a fault injector around a real `MemoryStore` (latency,
//! errors, read counts). It is not a mock: every answer comes from the memory store.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use flipper::store::{
    CacheOptions, CachedStore, Capabilities, ChangeStream, Clock, JsonFileStore, ListEntry,
    MemoryStore, PutMode, ReplicaOperation, ReplicatedStore, Replication, Store, StoreExt, Version,
    Versioned,
};
use flipper::{Checks, Error, FeatureFlagClient, Item, Meta, Result};

fn memory() -> Arc<dyn Store> {
    Arc::new(MemoryStore::new())
}

/// A JSON-file store in a temporary directory, removed when the returned guard drops.
fn json_file() -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let store = JsonFileStore::new(dir.path().join("flags.json"));
    (dir, Arc::new(store))
}

// ---------------------------------------------------------------------------------------------
// Conformance

mod cached_memory {
    use super::*;
    flipper::store_conformance_tests!(CachedStore::new(MemoryStore::new()));
}

mod cached_memory_with_ttl {
    use super::*;
    flipper::store_conformance_tests!(CachedStore::with_options(
        MemoryStore::new(),
        CacheOptions::new().ttl(Some(Duration::from_secs(60)))
    ));
}

mod cached_json_file {
    use super::*;
    flipper::store_conformance_tests!(guarded: {
        let (dir, file) = json_file();
        (dir, CachedStore::new(file))
    });
}

mod replicated_sync {
    use super::*;
    flipper::store_conformance_tests!(ReplicatedStore::new(memory(), vec![memory(), memory()]));
}

mod replicated_async {
    use super::*;
    flipper::store_conformance_tests!(
        ReplicatedStore::new(memory(), vec![memory(), memory()]).with_replication(
            Replication::Asynchronous {
                timeout: Duration::from_secs(1)
            }
        )
    );
}

mod replicated_json_file {
    use super::*;
    flipper::store_conformance_tests!(guarded: {
        let (primary_dir, primary) = json_file();
        let (replica_dir, replica) = json_file();
        (
            (primary_dir, replica_dir),
            ReplicatedStore::new(primary, vec![memory(), replica]),
        )
    });
}

mod cached_replicated {
    use super::*;
    flipper::store_conformance_tests!(CachedStore::new(ReplicatedStore::new(
        memory(),
        vec![memory(), memory()]
    )));
}

// ---------------------------------------------------------------------------------------------
// Test helpers

/// A fault injector (not a mock): a real [`MemoryStore`] with added latency, injected write
/// errors, an optional lack of `watch`, and counts of the calls that reached it.
struct Faulty {
    inner: MemoryStore,
    name: String,
    /// Slept *after* reading (and counting), so a slow read returns what was there when it
    /// began.
    get_delay: Mutex<Duration>,
    /// Slept before writing.
    write_delay: Mutex<Duration>,
    /// Writes sleep a random time up to `write_delay` instead.
    jitter: bool,
    fail_writes: AtomicBool,
    watch: bool,
    gets: AtomicUsize,
    writes: AtomicUsize,
}

impl Faulty {
    fn new(name: &str) -> Self {
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
    fn without_watch(mut self) -> Self {
        self.watch = false;
        self
    }
    fn slow_gets(self, delay: Duration) -> Self {
        *self.get_delay.lock().unwrap() = delay;
        self
    }
    fn slow_writes(self, delay: Duration) -> Self {
        *self.write_delay.lock().unwrap() = delay;
        self
    }
    fn jittery_writes(mut self, up_to: Duration) -> Self {
        self.jitter = true;
        self.slow_writes(up_to)
    }
    fn failing_writes(self) -> Self {
        self.fail_writes.store(true, Ordering::SeqCst);
        self
    }
    fn gets(&self) -> usize {
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
struct ManualClock(Mutex<Instant>);

impl ManualClock {
    fn new() -> Arc<Self> {
        Arc::new(Self(Mutex::new(Instant::now())))
    }
    fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        *self.0.lock().unwrap()
    }
}

/// Every readable flag of a store, without versions (replicas have their own).
async fn items(store: &dyn Store) -> Vec<Item> {
    store.items(None, 0).await.unwrap()
}

/// Waits (up to 5 s) until `check` holds.
async fn eventually<F, Fut>(what: &str, mut check: F)
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

fn item(name: &str, on: bool) -> Item {
    Item::new(name, on, 1)
}

// ---------------------------------------------------------------------------------------------
// CachedStore

#[tokio::test]
async fn cache_hits_do_not_reach_the_inner_store() {
    let inner = Arc::new(Faulty::new("faulty:").without_watch());
    inner
        .put(&item("direct", true), PutMode::Overwrite)
        .await
        .unwrap();
    let store = CachedStore::new(Arc::clone(&inner));

    // Written through the cache: cached at once.
    store.create("beta", true, None).await.unwrap();
    for _ in 0..3 {
        assert!(store.get("beta").await.unwrap().is_some());
    }
    assert_eq!(inner.gets(), 0);

    // Written around it: one read, then cached.
    for _ in 0..3 {
        assert_eq!(
            store.get("direct").await.unwrap().unwrap().item,
            item("direct", true)
        );
    }
    assert_eq!(inner.gets(), 1);
    let stats = store.stats();
    assert_eq!((stats.hits, stats.misses, stats.loads), (5, 1, 1));
    assert_eq!(stats.entries, 2);
}

#[tokio::test]
async fn entries_expire_after_the_ttl_on_the_injected_clock() {
    let clock = ManualClock::new();
    let inner = Arc::new(Faulty::new("faulty:").without_watch());
    let store = CachedStore::with_options(
        Arc::clone(&inner),
        CacheOptions::new()
            .ttl(Some(Duration::from_secs(10)))
            .clock(clock.clone()),
    );
    store
        .put(&item("f", true), PutMode::Overwrite)
        .await
        .unwrap();
    clock.advance(Duration::from_secs(9));
    store.get("f").await.unwrap();
    assert_eq!(inner.gets(), 0, "still fresh at 9 s");
    clock.advance(Duration::from_secs(1));
    store.get("f").await.unwrap();
    assert_eq!(
        inner.gets(),
        1,
        "expired at 10 s (from insertion, not from last use)"
    );
    store.get("f").await.unwrap();
    assert_eq!(inner.gets(), 1, "reloaded entry is fresh again");
}

#[tokio::test]
async fn misses_are_cached_no_longer_than_the_ttl() {
    let clock = ManualClock::new();
    let inner = Arc::new(Faulty::new("faulty:").without_watch());
    let store = CachedStore::with_options(
        Arc::clone(&inner),
        CacheOptions::new()
            .ttl(Some(Duration::from_secs(10)))
            .clock(clock.clone()),
    );
    assert!(store.get("late").await.unwrap().is_none());
    // Another writer creates it; with no change stream the cached miss stands until the TTL.
    inner
        .put(&item("late", true), PutMode::Overwrite)
        .await
        .unwrap();
    clock.advance(Duration::from_secs(5));
    assert!(store.get("late").await.unwrap().is_none());
    assert_eq!(inner.gets(), 1);
    clock.advance(Duration::from_secs(5));
    assert!(store.get("late").await.unwrap().is_some());
    assert_eq!(inner.gets(), 2);
}

#[tokio::test]
async fn without_ttl_misses_are_cached_only_under_a_watch_of_other_writers() {
    // No change stream at all: every read of a missing flag asks (Python would cache it
    // forever).
    let inner = Arc::new(Faulty::new("faulty:").without_watch());
    let store = CachedStore::new(Arc::clone(&inner));
    assert!(!store.follows_changes());
    store.get("nope").await.unwrap();
    store.get("nope").await.unwrap();
    assert_eq!(inner.gets(), 2);

    // A JSON file's watch sees this process's writes only: misses are not cached either.
    let (_dir, file) = json_file();
    let store = CachedStore::new(file);
    assert!(store.follows_changes());
    store.get("nope").await.unwrap();
    store.get("nope").await.unwrap();
    assert_eq!(store.stats().loads, 2);

    // The memory store's watch sees every writer: the miss is cached, and a write by another
    // handle invalidates it.
    let inner = Arc::new(Faulty::new("faulty:"));
    let store = CachedStore::new(Arc::clone(&inner));
    assert!(store.follows_changes());
    assert!(store.get("late").await.unwrap().is_none());
    assert!(store.get("late").await.unwrap().is_none());
    assert_eq!(inner.gets(), 1);
    inner
        .put(&item("late", true), PutMode::Overwrite)
        .await
        .unwrap();
    eventually("the cache sees the flag", || async {
        store.get("late").await.unwrap().is_some()
    })
    .await;
}

#[tokio::test]
async fn the_least_recently_used_entry_is_evicted_first() {
    let inner = Arc::new(Faulty::new("faulty:").without_watch());
    let store = CachedStore::with_options(Arc::clone(&inner), CacheOptions::new().size(2));
    store
        .put(&item("a", true), PutMode::Overwrite)
        .await
        .unwrap();
    store
        .put(&item("b", true), PutMode::Overwrite)
        .await
        .unwrap();
    store.get("a").await.unwrap(); // a is now more recent than b
    store
        .put(&item("c", true), PutMode::Overwrite)
        .await
        .unwrap(); // evicts b
    assert_eq!(store.stats().evictions, 1);
    assert_eq!(store.stats().entries, 2);
    store.get("a").await.unwrap();
    store.get("c").await.unwrap();
    assert_eq!(inner.gets(), 0, "a and c are cached");
    store.get("b").await.unwrap(); // evicts a (c was used after a)
    assert_eq!(inner.gets(), 1, "b was evicted");
    store.get("c").await.unwrap();
    assert_eq!(inner.gets(), 1);
    store.get("a").await.unwrap();
    assert_eq!(inner.gets(), 2, "a was evicted by b");
    assert_eq!(store.stats().evictions, 3);
}

#[tokio::test]
async fn a_size_of_zero_caches_nothing() {
    let inner = Arc::new(Faulty::new("faulty:"));
    let store = CachedStore::with_options(Arc::clone(&inner), CacheOptions::new().size(0));
    store
        .put(&item("a", true), PutMode::Overwrite)
        .await
        .unwrap();
    store.get("a").await.unwrap();
    store.get("a").await.unwrap();
    assert_eq!(inner.gets(), 2);
    assert_eq!(store.stats().entries, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_by_another_handle_reach_the_cache_through_watch() {
    let inner = Arc::new(MemoryStore::new());
    let store = CachedStore::new(Arc::clone(&inner));
    store.create("f", false, None).await.unwrap();
    assert!(!store.get("f").await.unwrap().unwrap().item.switched_on());
    // Another handle (another client of the same store) enables it, then deletes another flag.
    inner.set("f", true).await.unwrap();
    eventually("the cache sees the enable", || async {
        store.get("f").await.unwrap().unwrap().item.switched_on()
    })
    .await;
    inner.delete("f").await.unwrap();
    eventually("the cache sees the delete", || async {
        store.get("f").await.unwrap().is_none()
    })
    .await;
    // A client over the cache sees it too.
    inner.create("g", true, None).await.unwrap();
    let client = FeatureFlagClient::new(store);
    eventually("the client sees the new flag", || async {
        client.is_enabled("g", &Checks::new()).await
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_of_one_flag_share_one_read() {
    let inner = Arc::new(Faulty::new("faulty:").slow_gets(Duration::from_millis(200)));
    inner
        .put(&item("present", true), PutMode::Overwrite)
        .await
        .unwrap();
    let store = Arc::new(CachedStore::new(Arc::clone(&inner)));
    for name in ["missing", "present"] {
        let before = inner.gets();
        let readers: Vec<_> = (0..100)
            .map(|_| {
                let store = Arc::clone(&store);
                tokio::spawn(async move { store.get(name).await.unwrap() })
            })
            .collect();
        for reader in readers {
            assert_eq!(reader.await.unwrap().is_some(), name == "present");
        }
        assert_eq!(
            inner.gets() - before,
            1,
            "{name}: one inner read for 100 readers"
        );
    }
    assert_eq!(store.stats().loads, 2);
    assert_eq!(store.stats().misses + store.stats().hits, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_read_never_puts_stale_data_back_after_a_write() {
    let inner = Arc::new(Faulty::new("faulty:").without_watch());
    inner
        .put(&item("f", false), PutMode::Overwrite)
        .await
        .unwrap();
    let store = Arc::new(CachedStore::new(Arc::clone(&inner)));
    *inner.get_delay.lock().unwrap() = Duration::from_millis(300);

    // The read sees "off", then takes 300 ms; meanwhile a write through the cache turns it on.
    let reader = tokio::spawn({
        let store = Arc::clone(&store);
        async move { store.get("f").await.unwrap().unwrap() }
    });
    eventually("the read has happened", || async { inner.gets() == 1 }).await;
    store.set("f", true).await.unwrap();
    let read = reader.await.unwrap();
    assert!(!read.item.switched_on(), "the read began before the write");
    *inner.get_delay.lock().unwrap() = Duration::ZERO;
    assert!(
        store.get("f").await.unwrap().unwrap().item.switched_on(),
        "the slow read's older answer must not replace the write's"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_read_never_puts_stale_data_back_after_a_notification() {
    let inner = Arc::new(Faulty::new("faulty:").slow_gets(Duration::from_millis(300)));
    inner
        .put(&item("f", false), PutMode::Overwrite)
        .await
        .unwrap();
    let store = Arc::new(CachedStore::new(Arc::clone(&inner)));
    let reader = tokio::spawn({
        let store = Arc::clone(&store);
        async move { store.get("f").await.unwrap().unwrap() }
    });
    eventually("the read has happened", || async { inner.gets() == 1 }).await;
    // Another writer, seen only through the change stream.
    inner
        .put(&item("f", true), PutMode::Overwrite)
        .await
        .unwrap();
    assert!(!reader.await.unwrap().item.switched_on());
    *inner.get_delay.lock().unwrap() = Duration::ZERO;
    assert!(store.get("f").await.unwrap().unwrap().item.switched_on());
}

#[tokio::test]
async fn a_lost_conditional_write_drops_the_entry() {
    let inner = Arc::new(MemoryStore::new());
    let store = CachedStore::new(Arc::clone(&inner));
    let v1 = store.put(&item("f", false), PutMode::Create).await.unwrap();
    inner
        .put(&item("f", true), PutMode::Overwrite)
        .await
        .unwrap();
    let err = store
        .put(&item("f", false), PutMode::Update(v1))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err}");
    // Whatever the change stream has done by now, the entry is gone and the read is fresh.
    assert!(store.get("f").await.unwrap().unwrap().item.switched_on());
}

#[tokio::test]
async fn dropping_the_cache_stops_its_watch_task() {
    let inner = Arc::new(MemoryStore::new());
    let store = CachedStore::new(Arc::clone(&inner));
    assert!(store.follows_changes());
    drop(store);
    tokio::task::yield_now().await;
    // The aborted task dropped its subscription: writes still work, nothing is leaked.
    inner
        .put(&item("f", true), PutMode::Overwrite)
        .await
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// ReplicatedStore

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synchronous_replicas_equal_the_primary_after_each_write() {
    let primary = memory();
    let (_dir, file) = json_file();
    let replicas = vec![memory(), file];
    let store = ReplicatedStore::new(Arc::clone(&primary), replicas.clone());
    let same = || async {
        let expected = items(&*primary).await;
        for replica in &replicas {
            assert_eq!(items(&**replica).await, expected, "{replica}");
        }
    };
    store.create("a", true, None).await.unwrap();
    same().await;
    store.set("a", false).await.unwrap();
    same().await;
    store.set_meta("a", Meta::new(7)).await.unwrap();
    same().await;
    store
        .put_many(&[item("b", true), item("c", false)])
        .await
        .unwrap();
    same().await;
    let v = store.get("b").await.unwrap().unwrap().version;
    store
        .put(&item("b", false), PutMode::Update(v))
        .await
        .unwrap();
    same().await;
    store.delete("a").await.unwrap();
    same().await;
    assert_eq!(items(&*primary).await.len(), 2);
    assert_eq!(
        store.replica_failures(),
        [("memory:".to_owned(), 0), (replicas[1].to_string(), 0)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asynchronous_replicas_become_equal_in_the_primarys_order() {
    let primary = memory();
    let replica: Arc<dyn Store> =
        Arc::new(Faulty::new("jittery:").jittery_writes(Duration::from_millis(60)));
    let store = ReplicatedStore::new(Arc::clone(&primary), vec![Arc::clone(&replica)])
        .with_replication(Replication::Asynchronous {
            timeout: Duration::from_secs(10),
        });
    // Many quick writes of one flag: each replica write takes a random time, yet the replica
    // must end with the primary's last state, not whichever write finished last.
    let started = Instant::now();
    for i in 0..20 {
        store.set("f", i % 2 == 0).await.unwrap();
        store.create(&format!("g{i}"), true, None).await.unwrap();
    }
    store.set("f", false).await.unwrap();
    store.delete("g3").await.unwrap();
    assert!(
        // Waiting for the replica would take 42 × 30 ms on average.
        started.elapsed() < Duration::from_millis(600),
        "asynchronous writes do not wait for the replica: {:?}",
        started.elapsed()
    );
    let expected = items(&*primary).await;
    eventually("the replica equals the primary", || async {
        items(&*replica).await == expected
    })
    .await;
    assert_eq!(store.replica_failures()[0].1, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_are_written_in_parallel() {
    let slow = || -> Arc<dyn Store> {
        Arc::new(Faulty::new("slow:").slow_writes(Duration::from_millis(500)))
    };
    let replicas = vec![slow(), slow()];
    let store = ReplicatedStore::new(memory(), replicas.clone());
    let started = Instant::now();
    store
        .put(&item("f", true), PutMode::Overwrite)
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(500), "{took:?}");
    assert!(
        took < Duration::from_millis(900),
        "two 500 ms replicas took {took:?} (one after the other would be 1 s)"
    );
    for replica in &replicas {
        assert!(replica.get("f").await.unwrap().is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_replicas_delay_a_synchronous_write_by_one_timeout_at_most() {
    let slow =
        || -> Arc<dyn Store> { Arc::new(Faulty::new("slow:").slow_writes(Duration::from_secs(3))) };
    let store = ReplicatedStore::new(memory(), vec![slow(), slow()]).with_replication(
        Replication::Synchronous {
            timeout: Duration::from_millis(500),
        },
    );
    let mut events = store.subscribe();
    let started = Instant::now();
    let written = store
        .put_with_report(&item("f", true), PutMode::Overwrite)
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(500), "{took:?}");
    assert!(
        took < Duration::from_millis(900),
        "one timeout for all replicas, not one each (1 s): {took:?}"
    );
    assert_eq!(written.failures.len(), 2);
    assert!(written.failures.iter().all(|f| f.timed_out));
    for _ in 0..2 {
        let event = events.try_recv().unwrap();
        assert!(
            event.timed_out && event.error.contains("500ms"),
            "{event:?}"
        );
    }
    assert_eq!(
        store.replica_failures(),
        [("slow:".to_owned(), 1), ("slow:".to_owned(), 1)]
    );
    // The primary has it.
    assert!(store.get("f").await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_replica_is_reported_not_hidden() {
    let good = memory();
    let bad: Arc<dyn Store> = Arc::new(Faulty::new("redis://replica-2").failing_writes());
    let primary = memory();
    let store = ReplicatedStore::new(
        Arc::clone(&primary),
        vec![Arc::clone(&good), Arc::clone(&bad)],
    );
    let mut events = store.subscribe();

    let created = store.create("f", true, None).await.unwrap();
    assert_eq!(primary.get("f").await.unwrap().unwrap().item, created.item);
    assert_eq!(good.get("f").await.unwrap().unwrap().item, created.item);
    assert!(bad.get("f").await.unwrap().is_none());

    let event = events.try_recv().unwrap();
    assert_eq!(event.replica, "redis://replica-2");
    assert_eq!(event.index, 1);
    assert_eq!(event.operation, ReplicaOperation::Put);
    assert_eq!(event.flags, ["f"]);
    assert!(event.error.contains("injected failure"), "{}", event.error);
    assert!(!event.timed_out);
    assert_eq!(
        store.replica_failures(),
        [
            ("memory:".to_owned(), 0),
            ("redis://replica-2".to_owned(), 1)
        ]
    );

    // The per-call report, and the other operations.
    let report = store.delete_with_report("f").await.unwrap();
    assert!(report.value);
    assert_eq!(report.failures.len(), 1);
    assert_eq!(report.failures[0].operation, ReplicaOperation::Delete);
    let report = store
        .put_many_with_report(&[item("b", true), item("a", true)])
        .await
        .unwrap();
    assert_eq!(report.failures[0].flags, ["a", "b"]);
    assert_eq!(store.replica_failures()[1].1, 3);
    assert_eq!(
        events.try_recv().unwrap().operation,
        ReplicaOperation::Delete
    );
    assert_eq!(
        events.try_recv().unwrap().operation,
        ReplicaOperation::PutMany
    );

    // Asynchronous mode reports through the same channels.
    let store =
        ReplicatedStore::new(memory(), vec![bad]).with_replication(Replication::Asynchronous {
            timeout: Duration::from_secs(1),
        });
    let mut events = store.subscribe();
    store.set("g", true).await.unwrap();
    let event = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("an event within 5 s")
        .unwrap();
    assert_eq!(event.flags, ["g"]);
    assert_eq!(store.replica_failures()[0].1, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_failure_leaves_the_replicas_untouched() {
    let primary = Arc::new(Faulty::new("primary:"));
    let replica = memory();
    let store = ReplicatedStore::new(primary.clone(), vec![Arc::clone(&replica)]);
    store.create("f", false, None).await.unwrap();
    let before = items(&*replica).await;

    // A precondition that fails on the primary.
    let err = store
        .put(&item("f", true), PutMode::Create)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err}");
    // A primary that fails outright.
    primary.fail_writes.store(true, Ordering::SeqCst);
    let mut events = store.subscribe();
    assert!(store.set("f", true).await.is_err());
    assert!(store.delete("f").await.is_err());
    assert!(store.put_many(&[item("g", true)]).await.is_err());
    assert!(store.create("h", true, None).await.is_err());

    assert_eq!(items(&*replica).await, before);
    assert!(
        events.try_recv().is_err(),
        "a primary failure is the caller's error, not a replica's"
    );
    assert_eq!(store.replica_failures()[0].1, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_returns_the_flag_so_a_cache_over_replicas_works() {
    let store = ReplicatedStore::new(memory(), vec![memory()]);
    let created = store.create("f", true, None).await.unwrap();
    assert_eq!(created.item.feature_name, "f");
    assert_eq!(store.get("f").await.unwrap(), Some(created));

    // flipper-client: enable() right after create() raised FlagDoesNotExistError here.
    let client = FeatureFlagClient::new(CachedStore::new(ReplicatedStore::new(
        memory(),
        vec![memory()],
    )));
    let flag = client.create("beta", false, None).await.unwrap();
    flag.enable().await.unwrap();
    assert!(flag.is_enabled(&Checks::new()).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_of_one_flag_reach_each_replica_in_order_under_concurrency() {
    let primary = memory();
    let replica: Arc<dyn Store> =
        Arc::new(Faulty::new("jittery:").jittery_writes(Duration::from_millis(10)));
    let store = Arc::new(ReplicatedStore::new(
        Arc::clone(&primary),
        vec![Arc::clone(&replica)],
    ));
    store.create("f", false, None).await.unwrap();
    let writers: Vec<_> = (0..8)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                for j in 0..5 {
                    store.set("f", (i + j) % 2 == 0).await.unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    assert_eq!(items(&*replica).await, items(&*primary).await);
}
