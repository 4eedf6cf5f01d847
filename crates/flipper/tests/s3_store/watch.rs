//! The S3 store's watch: another handle's writes and deletes found by polling, an object
//! that is not a flag, a resync after a failed poll recovers; and live flags following the
//! bucket by polling.

use std::sync::Arc;
use std::time::Duration;

use flipper::live::{LiveFlags, LiveOptions};
use flipper::store::{Change, ChangeStream, S3Store, Store, StoreExt};
use flipper::{Checks, Condition};
use flipper_testkit::MotoServer;
use futures_util::StreamExt;

const PATIENCE: Duration = Duration::from_secs(20);

/// The next change, within [`PATIENCE`].
async fn next(changes: &mut ChangeStream) -> Change {
    tokio::time::timeout(PATIENCE, changes.next())
        .await
        .expect("a change within 20 s")
        .expect("the stream stays open")
}

/// The next change that is not a resync, shown as `put NAME ON` or `delete NAME`.
async fn next_shown(changes: &mut ChangeStream) -> String {
    loop {
        match next(changes).await {
            Change::Put { item, .. } => {
                return format!("put {} {}", item.feature_name, item.switched_on());
            }
            Change::Delete { name } => return format!("delete {name}"),
            _ => {}
        }
    }
}

async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_reports_another_handles_writes_and_deletes() {
    let Some(config) = super::fresh_config() else {
        return;
    };
    let watched = S3Store::new(config.clone()).unwrap();
    assert!(watched.capabilities().watch_external);
    // Another process, as far as the watched store can tell: its own client, no shared state.
    let other = S3Store::new(config.clone()).unwrap();
    other.create("before", true, None).await.unwrap();

    let mut changes = watched.watch().expect("a watch");
    assert!(
        matches!(next(&mut changes).await, Change::Resync),
        "the baseline"
    );
    other.create("x", true, None).await.unwrap();
    assert_eq!(next_shown(&mut changes).await, "put x true");
    other.set("x", false).await.unwrap();
    assert_eq!(next_shown(&mut changes).await, "put x false");
    other.delete("x").await.unwrap();
    assert_eq!(next_shown(&mut changes).await, "delete x");
    other.delete("before").await.unwrap();
    assert_eq!(next_shown(&mut changes).await, "delete before");

    // The watched store's own writes come at once, and the poll does not repeat them.
    watched.create("own", true, None).await.unwrap();
    let Change::Put { version, .. } = next(&mut changes).await else {
        panic!("an own write is reported as a put");
    };
    assert_eq!(
        Some(version),
        watched.get("own").await.unwrap().map(|v| v.version)
    );
    other.create("y", true, None).await.unwrap();
    assert_eq!(next_shown(&mut changes).await, "put y true");

    // An object that is not a flag makes watchers reload (and list it as corrupt), once.
    let s3 = super::raw(&config);
    super::raw_put(&s3, "notes.txt", b"hello").await;
    assert!(matches!(next(&mut changes).await, Change::Resync));
    other.create("z", true, None).await.unwrap();
    assert_eq!(next_shown(&mut changes).await, "put z true");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_that_works_again_after_failures_resyncs() {
    let Some(moto) = MotoServer::start() else {
        return;
    };
    let bucket = moto.create_bucket();
    let config = super::config(&moto, &bucket);
    let watched = S3Store::new(config.clone()).unwrap();
    let other = S3Store::new(config).unwrap();
    let mut changes = watched.watch().expect("a watch");
    assert!(matches!(next(&mut changes).await, Change::Resync));
    other.create("a", true, None).await.unwrap();
    assert_eq!(next_shown(&mut changes).await, "put a true");

    // An outage: polls fail, then moto comes back (empty: it keeps everything in memory).
    moto.stop();
    tokio::time::sleep(Duration::from_millis(800)).await;
    moto.restart();
    moto.create_named_bucket(&bucket);
    other.create("b", true, None).await.unwrap();
    // The first poll that works again is a new baseline: watchers resync (and find "b" and
    // no "a"), then changes flow as before.
    assert!(matches!(next(&mut changes).await, Change::Resync));
    other.set("b", false).await.unwrap();
    assert_eq!(next_shown(&mut changes).await, "put b false");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_flags_follow_the_bucket_by_polling() {
    let Some(config) = super::fresh_config() else {
        return;
    };
    let writer = S3Store::new(config.clone()).unwrap();
    writer.create("beta", true, None).await.unwrap();
    let store: Arc<dyn Store> = Arc::new(S3Store::new(config).unwrap());
    let live = LiveFlags::start(store, LiveOptions::default()).await;
    assert!(live.is_initialized(), "{:?}", live.status());
    assert!(live.is_enabled("beta", &Checks::new()));

    // Another process's writes arrive by polling.
    let client = flipper::FeatureFlagClient::new(writer.clone());
    client
        .add_condition("beta", Condition::new().gte("age", 18))
        .await
        .unwrap();
    eventually("the condition", || {
        !live.is_enabled("beta", &Checks::new().with("age", 12))
    })
    .await;
    assert!(live.is_enabled("beta", &Checks::new().with("age", 30)));
    writer.create("gamma", true, None).await.unwrap();
    eventually("a new flag", || live.is_enabled("gamma", &Checks::new())).await;
    writer.delete("gamma").await.unwrap();
    eventually("a deletion", || live.get("gamma").is_none()).await;

    // Writes through the live flags' client are visible at once, and stored.
    live.client().disable("beta").await.unwrap();
    assert!(!live.is_enabled("beta", &Checks::new().with("age", 30)));
    let stored = writer.get("beta").await.unwrap().unwrap().item;
    assert!(!stored.switched_on());
}
