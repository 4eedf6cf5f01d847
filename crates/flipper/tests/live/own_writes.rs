//! Read your writes: a write through `live.client()` is visible at once; a watched change older
//! than it, still in flight when it was applied, does not turn the flag back; a write whose own
//! change never arrives is read back after the grace period; and a write by someone else right
//! after ours is seen at once, not after the grace period.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use flipper::live::LiveFlags;
use flipper::store::{MemoryStore, Store, StoreExt};
use flipper::{Checks, Condition};

use crate::common::{Gate, eventually, quick};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_through_the_client_are_visible_at_once() {
    let store = Arc::new(MemoryStore::new());
    let live = LiveFlags::start(Arc::clone(&store) as Arc<dyn Store>, quick()).await;
    let client = live.client();
    let adult = Checks::new().with("age", 30);
    client.create("beta", false, None).await.unwrap();
    assert!(live.get("beta").is_some());
    client.enable("beta").await.unwrap();
    assert!(live.is_enabled("beta", &adult));
    client
        .add_condition("beta", Condition::new().lt("age", 18))
        .await
        .unwrap();
    assert!(!live.is_enabled("beta", &adult));
    client.destroy("beta").await.unwrap();
    assert!(live.get("beta").is_none());
    assert_eq!(client.store().to_string(), "memory:");
}

/// The hazard: an older change (another process disabling the flag) is still in flight in the
/// watch when this process's newer write (enabling it) is applied. It must not turn the flag
/// off, not even for a moment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_watched_change_does_not_undo_our_write() {
    let gate = Arc::new(Gate::new());
    gate.inner.create_at("f", true, None, 1).await.unwrap();
    let live = LiveFlags::start(Arc::clone(&gate) as Arc<dyn Store>, quick()).await;
    assert!(live.is_enabled("f", &Checks::new()));
    let changes = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&changes);
    live.on_flag_change("f", move |_| {
        counted.fetch_add(1, Ordering::SeqCst);
    });

    gate.set_open(false);
    gate.inner.set("f", false).await.unwrap(); // the older write, held in the watch
    live.client().create("f", true, None).await.unwrap(); // ours: a new flag, on
    assert!(live.is_enabled("f", &Checks::new()), "our write, at once");

    // A reader watches for the flag turning off while the held changes arrive.
    let stop = Arc::new(AtomicBool::new(false));
    let (reader_live, reader_stop) = (live.clone(), Arc::clone(&stop));
    let reader = std::thread::spawn(move || {
        let mut off = 0u64;
        while !reader_stop.load(Ordering::Relaxed) {
            off += u64::from(!reader_live.is_enabled("f", &Checks::new()));
        }
        off
    });
    gate.set_open(true);
    // A later marker: once it is seen, every change before it was processed.
    gate.inner.create_at("marker", true, None, 1).await.unwrap();
    eventually("the marker", || live.get("marker").is_some()).await;
    stop.store(true, Ordering::Relaxed);
    assert_eq!(reader.join().unwrap(), 0, "the flag was never off");
    assert!(live.is_enabled("f", &Checks::new()));
    // One change to the flag (our write), not three (ours, the older one, ours again).
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(changes.load(Ordering::SeqCst), 1);

    // Pinning is over: later changes by others apply as usual.
    gate.inner.set("f", false).await.unwrap();
    eventually("a later change", || !live.is_enabled("f", &Checks::new())).await;
}

/// When the store never reports our write (here the watch is held for good), the flag is read
/// back from the store after the grace period, and a change made meanwhile is not lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unconfirmed_write_is_read_back_after_the_grace_period() {
    let gate = Arc::new(Gate::new());
    gate.inner.create_at("f", false, None, 1).await.unwrap();
    let live = LiveFlags::start(
        Arc::clone(&gate) as Arc<dyn Store>,
        quick().own_write_grace(Duration::from_millis(100)),
    )
    .await;
    gate.set_open(false);
    live.client().enable("f").await.unwrap();
    assert!(live.is_enabled("f", &Checks::new()));
    // Another process switches it off again; the held watch never says so.
    gate.inner.set("f", false).await.unwrap();
    let started = tokio::time::Instant::now();
    eventually("the flag is read back", || {
        !live.is_enabled("f", &Checks::new())
    })
    .await;
    assert!(started.elapsed() >= Duration::from_millis(50));
}

/// A write by someone else right after ours must show at once: our write's own change may
/// have been applied from the watch before the write returned, and must not leave the flag
/// pinned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_write_by_someone_else_is_not_held_back() {
    let store = Arc::new(MemoryStore::new());
    store.create_at("f", false, None, 1).await.unwrap();
    let live = LiveFlags::start(
        Arc::clone(&store) as Arc<dyn Store>,
        quick().own_write_grace(Duration::from_secs(60)),
    )
    .await;
    let client = live.client();
    for round in 0..50 {
        client.enable("f").await.unwrap();
        assert!(live.is_enabled("f", &Checks::new()), "round {round}");
        store.set("f", false).await.unwrap();
        let started = tokio::time::Instant::now();
        eventually("the other write", || !live.is_enabled("f", &Checks::new())).await;
        assert!(started.elapsed() < Duration::from_secs(5), "round {round}");
        // Deletes too.
        client.destroy("f").await.unwrap();
        assert!(live.get("f").is_none());
        store.create_at("f", false, None, 1).await.unwrap();
        eventually("the re-creation", || live.get("f").is_some()).await;
    }
}
