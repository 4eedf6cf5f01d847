//! `CachedStore`'s own behaviour: hits that never reach the inner store, expiry on an injected
//! clock, misses cached no longer than the TTL (or only under a watch of other writers), LRU
//! eviction, a size of zero, invalidation by other handles' writes, single flight for
//! concurrent misses, slow reads never putting stale data back, lost conditional writes, and
//! the watch task stopping with the cache.

use std::sync::Arc;
use std::time::Duration;

use flipper::store::{CacheOptions, CachedStore, MemoryStore, PutMode, Store, StoreExt};
use flipper::{Checks, Error, FeatureFlagClient};

use crate::common::{Faulty, ManualClock, eventually, item, json_file};

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
