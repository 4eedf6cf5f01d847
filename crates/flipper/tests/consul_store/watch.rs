//! The Consul store's watch against the fake agent: other writers' changes, an index that goes
//! backwards (a snapshot restore, reaped tombstones), an outage with its requests counted,
//! live flags following by blocking query, and the requests an idle watch makes.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use flipper::live::{LiveFlags, LiveOptions};
use flipper::store::{Change, ChangeStream, ConsulConfig, ConsulStore, PutMode, Store, StoreExt};
use flipper::{Checks, Condition, FeatureFlagClient, Item};
use flipper_testkit::{FakeConsul, unique_name};
use futures_util::StreamExt;

const PATIENCE: Duration = Duration::from_secs(20);

/// A store with a fresh base key on `consul`, with this blocking-query wait.
fn store_on(consul: &FakeConsul, wait: Duration) -> ConsulStore {
    let config = ConsulConfig::from_url(&consul.url())
        .unwrap()
        .with_base_key(unique_name("features"))
        .unwrap()
        .with_wait(wait);
    ConsulStore::new(config).unwrap()
}

/// The next change, within [`PATIENCE`].
async fn next(changes: &mut ChangeStream) -> Change {
    tokio::time::timeout(PATIENCE, changes.next())
        .await
        .expect("a change in time")
        .expect("the stream stays open")
}

/// A change as a short string: `put NAME ENABLED`, `delete NAME`, `resync`.
fn describe(change: &Change) -> String {
    match change {
        Change::Put { item, .. } => format!("put {} {}", item.feature_name, item.switched_on()),
        Change::Delete { name } => format!("delete {name}"),
        Change::Resync => "resync".to_owned(),
        other => format!("{other:?}"),
    }
}

/// Opens a watch and waits for its opening resync (the first read done).
async fn watching(store: &ConsulStore) -> ChangeStream {
    let mut changes = store.watch().expect("the Consul store watches");
    assert_eq!(describe(&next(&mut changes).await), "resync");
    changes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_writers_changes_arrive_through_blocking_queries() {
    let consul = flipper_testkit::fake_consul();
    let store = store_on(consul, Duration::from_secs(300));
    let base = store.config().base_key().to_owned();
    store
        .put(&Item::new("mine", true, 1), PutMode::Overwrite)
        .await
        .unwrap();
    let mut changes = watching(&store).await;
    // flipper-client writes with python-consul's kv.put: the fake agent's own writes here.
    consul.put(
        &format!("{base}/theirs"),
        &Item::new("theirs", true, 1).serialize(),
    );
    assert_eq!(describe(&next(&mut changes).await), "put theirs true");
    consul.put(
        &format!("{base}/theirs"),
        &Item::new("theirs", false, 1).serialize(),
    );
    assert_eq!(describe(&next(&mut changes).await), "put theirs false");
    consul.delete(&format!("{base}/mine"));
    assert_eq!(describe(&next(&mut changes).await), "delete mine");
    // Writes outside the prefix (a sibling prefix too) are not changes.
    consul.put(&format!("{base}2/x"), &Item::new("x", true, 1).serialize());
    consul.put(
        &format!("{base}/late"),
        &Item::new("late", true, 1).serialize(),
    );
    assert_eq!(describe(&next(&mut changes).await), "put late true");
    // A value that is no flag: watchers reload (and list it as corrupt).
    consul.put(&format!("{base}/junk"), b"junk");
    assert_eq!(describe(&next(&mut changes).await), "resync");
    // This store's own writes arrive in order, each one, even back to back.
    let client = FeatureFlagClient::new(store.clone());
    client.disable("late").await.unwrap();
    client.enable("late").await.unwrap();
    client.destroy("late").await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(describe(&next(&mut changes).await));
    }
    assert_eq!(seen, ["put late false", "put late true", "delete late"]);
}

/// A blocking query already waiting when the snapshot is restored answers at once; one sent
/// after it, with an index now ahead of Consul's, waits for its `wait` (as Consul's do): the
/// short wait here bounds that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_that_goes_backwards_resyncs() {
    let consul = FakeConsul::start();
    let store = store_on(&consul, Duration::from_secs(1));
    let base = store.config().base_key().to_owned();
    store.set("a", true).await.unwrap();
    let before = consul.snapshot();
    let mut changes = watching(&store).await;
    store.set("b", true).await.unwrap();
    assert_eq!(describe(&next(&mut changes).await), "put b true");
    // A Raft snapshot restore: the data and its indexes go back; blocking queries answer.
    consul.restore(&before);
    assert_eq!(describe(&next(&mut changes).await), "resync");
    assert!(store.get("b").await.unwrap().is_none());
    // The watch goes on from the restored state.
    consul.put(&format!("{base}/c"), &Item::new("c", true, 1).serialize());
    assert_eq!(describe(&next(&mut changes).await), "put c true");
}

/// Deleting the flag with the highest index, then reaping its tombstone, lowers the prefix's
/// index: Consul answers the lower index when the blocking query's wait ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reaped_tombstones_resync_when_the_wait_ends() {
    let consul = FakeConsul::start();
    let store = store_on(&consul, Duration::from_secs(1));
    let base = store.config().base_key().to_owned();
    store.set("a", true).await.unwrap();
    store.set("b", true).await.unwrap();
    let mut changes = watching(&store).await;
    consul.delete(&format!("{base}/b"));
    assert_eq!(describe(&next(&mut changes).await), "delete b");
    consul.reap_tombstones();
    assert_eq!(describe(&next(&mut changes).await), "resync");
    store.set("d", true).await.unwrap();
    assert_eq!(describe(&next(&mut changes).await), "put d true");
}

/// Accepts and drops connections on a port, counting them: an agent that is down but whose
/// port still takes connections, so the watch's attempts can be counted.
struct CountingPort {
    accepted: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl CountingPort {
    fn bind(port: u16) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("the port is free again");
        listener.set_nonblocking(true).unwrap();
        let accepted = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let (accepted, stop) = (Arc::clone(&accepted), Arc::clone(&stop));
            move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            accepted.fetch_add(1, Ordering::SeqCst);
                            drop(stream);
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            }
        });
        Self {
            accepted,
            stop,
            thread: Some(thread),
        }
    }

    fn close(mut self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.accepted.load(Ordering::SeqCst)
    }
}

/// An outage: the watch retries with backoff (a handful of requests, not a busy loop), then
/// resumes from its index, and the change made meanwhile arrives (no resync needed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_costs_a_handful_of_requests_and_loses_no_change() {
    let consul = FakeConsul::start();
    let store = store_on(&consul, Duration::from_secs(300));
    let base = store.config().base_key().to_owned();
    store.set("a", true).await.unwrap();
    let mut changes = watching(&store).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    consul.stop();
    let port = CountingPort::bind(consul.port());
    let outage = Duration::from_secs(3);
    tokio::time::sleep(outage).await;
    let attempts = port.close();
    // Meanwhile, another writer (the data survives the outage).
    consul.put(&format!("{base}/a"), &Item::new("a", false, 1).serialize());
    consul.restart();
    eprintln!("requests during a {outage:?} outage: {attempts}");
    assert!(
        (2..=15).contains(&attempts),
        "{attempts} requests in {outage:?}"
    );
    assert_eq!(describe(&next(&mut changes).await), "put a false");
}

/// Live flags over Consul follow another process's changes through the store's blocking
/// queries (no polling: the store hears other processes), and cost no request while idle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_flags_follow_changes_by_blocking_query() {
    let consul = FakeConsul::start();
    let store = store_on(&consul, Duration::from_secs(300));
    assert!(store.capabilities().watch_external);
    let other = FeatureFlagClient::new(
        ConsulStore::new(store.config().clone()).expect("another process's store"),
    );
    other.create("beta", false, None).await.unwrap();
    let live = LiveFlags::start(Arc::new(store.clone()), LiveOptions::default()).await;
    assert!(live.is_initialized());
    let pro = Checks::from(
        [("plan".to_owned(), flipper::Value::from("pro"))]
            .into_iter()
            .collect::<flipper::Object>(),
    );
    assert!(!live.is_enabled("beta", &pro));

    other.enable("beta").await.unwrap();
    eventually("the enable", || live.is_enabled("beta", &pro)).await;
    other
        .add_condition("beta", Condition::new().eq("plan", "pro"))
        .await
        .unwrap();
    eventually("the condition", || {
        live.get("beta")
            .is_some_and(|item| !item.meta.conditions.is_empty())
    })
    .await;
    assert!(live.is_enabled("beta", &pro));
    let free = Checks::from(
        [("plan".to_owned(), flipper::Value::from("free"))]
            .into_iter()
            .collect::<flipper::Object>(),
    );
    assert!(!live.is_enabled("beta", &free));
    other.destroy("beta").await.unwrap();
    eventually("the delete", || live.get("beta").is_none()).await;

    // Idle: the blocking query in flight is all there is.
    tokio::time::sleep(Duration::from_millis(300)).await;
    consul.reset_requests();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle = consul.kv_requests();
    eprintln!(
        "live flags over Consul, idle: {idle} KV requests in 3 s ({} per minute)",
        idle * 20
    );
    assert!(
        idle <= 1,
        "{idle} requests while idle: {:?}",
        consul.request_counts()
    );
}

/// A plain watch's idle cost is one request per `wait`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_watch_makes_one_request_per_wait() {
    let consul = FakeConsul::start();
    let store = store_on(&consul, Duration::from_secs(1));
    store.set("a", true).await.unwrap();
    let _changes = watching(&store).await;
    consul.reset_requests();
    tokio::time::sleep(Duration::from_millis(4500)).await;
    let idle = consul.kv_requests();
    // About 4 (1 s + up to 1/16 s of jitter each); at most one more at the edges.
    assert!(
        (3..=6).contains(&idle),
        "{idle}: {:?}",
        consul.request_counts()
    );
}

async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
