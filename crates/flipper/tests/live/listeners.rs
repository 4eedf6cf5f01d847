//! Listeners fire exactly when they should: a flag listener on each change to its flag only, a
//! value listener only when its context's answer flips, a set listener on every change; a slow
//! listener stalls neither updates nor other listeners; removed listeners stay silent.

use std::sync::Arc;
use std::time::Duration;

use flipper::live::LiveFlags;
use flipper::store::{MemoryStore, Store, StoreExt};
use flipper::{Checks, Condition, Object, Value};
use tokio::sync::mpsc;

use crate::common::{PATIENCE, eventually, quick};

async fn recv<T>(rx: &mut mpsc::UnboundedReceiver<T>) -> T {
    tokio::time::timeout(PATIENCE, rx.recv())
        .await
        .expect("a notification in time")
        .expect("the listener is registered")
}

/// Nothing more arrives for a little while.
async fn silent<T: std::fmt::Debug>(rx: &mut mpsc::UnboundedReceiver<T>) {
    if let Ok(Some(extra)) = tokio::time::timeout(Duration::from_millis(150), rx.recv()).await {
        panic!("unexpected notification: {extra:?}");
    }
}

async fn live_memory() -> (Arc<MemoryStore>, LiveFlags) {
    let store = Arc::new(MemoryStore::new());
    let live = LiveFlags::start(Arc::clone(&store) as Arc<dyn Store>, quick()).await;
    (store, live)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flag_listener_sees_each_change_to_its_flag_only() {
    let (store, live) = live_memory().await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let id = live.on_flag_change("beta", move |change| {
        let _ = tx.send((
            change.name.clone(),
            change.item.as_ref().map(|item| item.switched_on()),
        ));
    });
    store.create_at("other", true, None, 1).await.unwrap();
    store.create_at("beta", true, None, 1).await.unwrap();
    assert_eq!(recv(&mut rx).await, ("beta".into(), Some(true)));
    store.set("beta", false).await.unwrap();
    assert_eq!(recv(&mut rx).await, ("beta".into(), Some(false)));
    // The same definition again is no change.
    store.set("beta", false).await.unwrap();
    store.set("other", false).await.unwrap();
    store.delete("beta").await.unwrap();
    assert_eq!(recv(&mut rx).await, ("beta".into(), None));
    silent(&mut rx).await;
    assert!(live.remove_listener(id));
    assert!(!live.remove_listener(id));
    store.create_at("beta", true, None, 1).await.unwrap();
    eventually("the flag is back", || live.get("beta").is_some()).await;
    // The sender went with the listener: the channel is closed, and nothing was sent.
    assert_eq!(rx.recv().await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_listener_fires_only_when_the_answer_flips() {
    let (store, live) = live_memory().await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    live.on_value_change("beta", Checks::new().with("age", 21), move |change| {
        let _ = tx.send((change.enabled, change.evaluation.reason.code()));
    });
    // Missing (false) to on: a flip.
    store.create_at("beta", true, None, 1).await.unwrap();
    assert_eq!(recv(&mut rx).await, (true, "enabled"));
    // Changes that keep the answer for age 21: no notification.
    let adults = Condition::new().gte("age", 18);
    store
        .update("beta", |item| {
            item.meta.conditions.push(adults.clone());
            Ok(())
        })
        .await
        .unwrap();
    let mut data = Object::new();
    data.insert("owner".into(), Value::from("growth"));
    store
        .update("beta", |item| {
            item.meta.client_data = Value::from(data.clone());
            Ok(())
        })
        .await
        .unwrap();
    store.create_at("unrelated", false, None, 1).await.unwrap();
    // Versions move after the listeners' queues are filled: waiting for one is enough.
    eventually("the changes", || live.version() == 5).await;
    silent(&mut rx).await;
    // Over 30 only: off for 21.
    store
        .update("beta", |item| {
            item.meta.conditions = vec![Condition::new().gte("age", 30)];
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(recv(&mut rx).await, (false, "conditions_failed"));
    // Switched off: still off for 21.
    store.set("beta", false).await.unwrap();
    eventually("the switch", || live.version() == 7).await;
    silent(&mut rx).await;
    // Deleted: the answer stays off (missing gives false).
    store.delete("beta").await.unwrap();
    eventually("the delete", || live.version() == 8).await;
    silent(&mut rx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_set_listener_sees_every_change() {
    let (store, live) = live_memory().await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    live.on_change(move |change| {
        let _ = tx.send((change.version, change.flags.clone()));
    });
    store.create_at("a", true, None, 1).await.unwrap();
    assert_eq!(recv(&mut rx).await, (2, vec!["a".to_owned()]));
    store.create_at("b", true, None, 1).await.unwrap();
    assert_eq!(recv(&mut rx).await, (3, vec!["b".to_owned()]));
    store.delete("a").await.unwrap();
    assert_eq!(recv(&mut rx).await, (4, vec!["a".to_owned()]));
    silent(&mut rx).await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_slow_listener_stalls_neither_updates_nor_other_listeners() {
    let store = Arc::new(MemoryStore::new());
    let live = LiveFlags::start(
        Arc::clone(&store) as Arc<dyn Store>,
        quick().listener_queue(4),
    )
    .await;
    // The slow listener blocks its thread until released (on a single-threaded runtime, too).
    let (release, released) = std::sync::mpsc::channel::<()>();
    let released = std::sync::Mutex::new(released);
    let (slow_tx, mut slow_rx) = mpsc::unbounded_channel();
    live.on_change(move |change| {
        let _ = released.lock().unwrap().recv();
        let _ = slow_tx.send(change.version);
    });
    let (fast_tx, mut fast_rx) = mpsc::unbounded_channel();
    live.on_flag_change("f", move |change| {
        let _ = fast_tx.send(change.version);
    });
    store.create_at("f", true, None, 1).await.unwrap();
    for i in 0..100 {
        let on = i % 2 == 1;
        store.set("f", on).await.unwrap();
        // Updates are not held up: each write is visible before the next.
        eventually("the write", || live.is_enabled("f", &Checks::new()) == on).await;
    }
    let version = live.version();
    assert_eq!(version, 102);
    // The fast listener reaches the latest change while the slow one is still stuck on its
    // first (notifications may merge, never go back).
    let mut fast = vec![recv(&mut fast_rx).await];
    while fast.last() != Some(&version) {
        fast.push(recv(&mut fast_rx).await);
    }
    assert!(fast.windows(2).all(|w| w[0] < w[1]), "{fast:?}");
    assert!(
        slow_rx.try_recv().is_err(),
        "the slow listener is still stuck"
    );
    // Released: the slow listener gets its queue, merged down to at most 1 + 4 notifications,
    // the last one carrying the latest version.
    for _ in 0..10 {
        let _ = release.send(());
    }
    let mut slow = Vec::new();
    while slow.last() != Some(&version) {
        slow.push(recv(&mut slow_rx).await);
    }
    assert!(slow.len() <= 5, "{slow:?}");
    assert!(slow.windows(2).all(|w| w[0] < w[1]), "{slow:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_listener_stays_registered() {
    let (store, live) = live_memory().await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    live.on_flag_change("p", move |change| {
        let _ = tx.send(change.version);
        assert!(change.version > 2, "a listener's own bug");
    });
    store.create_at("p", true, None, 1).await.unwrap();
    assert_eq!(recv(&mut rx).await, 2);
    store.set("p", false).await.unwrap();
    assert_eq!(recv(&mut rx).await, 3);
}
