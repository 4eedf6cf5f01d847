//! Changes made directly to each store (not through the live flags' client) reach the live
//! flags: memory (watched), a JSON file written by another process (polled), redb (watched);
//! and the set version moves one per changed flag, each change seen by the observer.

use std::sync::{Arc, Mutex};

use flipper::live::{Edit, FlagSet, LiveFlags, SetObserver, Source};
use flipper::store::{JsonFileStore, MemoryStore, RedbStore, Store, StoreExt};
use flipper::{Checks, Condition};

use crate::common::{eventually, quick};

/// Creates, changes and deletes a flag through `writer`, and waits for `live` to see each.
async fn follows(live: &LiveFlags, writer: &dyn Store) {
    let adult = Checks::new().with("age", 30);
    writer.create_at("direct", true, None, 1).await.unwrap();
    eventually("a direct create", || live.is_enabled("direct", &adult)).await;
    writer
        .update("direct", |item| {
            item.meta.conditions.push(Condition::new().lt("age", 18));
            Ok(())
        })
        .await
        .unwrap();
    eventually("a direct change", || !live.is_enabled("direct", &adult)).await;
    assert!(live.is_enabled("direct", &Checks::new().with("age", 12)));
    writer.delete("direct").await.unwrap();
    eventually("a direct delete", || live.get("direct").is_none()).await;
    assert!(live.is_enabled_or("direct", &adult, true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_store_is_followed() {
    let store = Arc::new(MemoryStore::new());
    store.create_at("before", true, None, 1).await.unwrap();
    let live = LiveFlags::start(Arc::clone(&store) as Arc<dyn Store>, quick()).await;
    assert!(live.is_initialized());
    assert!(live.is_enabled("before", &Checks::new()));
    let status = live.status();
    assert_eq!(status.source, Some(Source::Store));
    assert!(status.following && status.running && status.last_error.is_none());
    assert_eq!(status.age, Some(std::time::Duration::ZERO));
    follows(&live, &*store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_file_written_by_another_process_is_polled() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flags.json");
    let live = LiveFlags::start(Arc::new(JsonFileStore::new(&path)), quick()).await;
    assert!(live.is_initialized());
    // A second store on the file stands for another process: its writes reach no watch.
    follows(&live, &JsonFileStore::new(&path)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redb_database_is_followed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(RedbStore::open(dir.path().join("flags.redb")).unwrap());
    let live = LiveFlags::start(Arc::clone(&store) as Arc<dyn Store>, quick()).await;
    follows(&live, &*store).await;
}

/// Records what the observer is told, as "VERSION put|delete NAME" and "VERSION loaded".
#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl SetObserver for Recorder {
    fn initialized(&self, set: &FlagSet) {
        self.0
            .lock()
            .unwrap()
            .push(format!("{} loaded {}", set.version(), set.len()));
    }
    fn changed(&self, edits: &[Edit], set: &FlagSet) {
        let mut log = self.0.lock().unwrap();
        let first = set.version() + 1 - edits.len() as u64;
        for (i, edit) in edits.iter().enumerate() {
            let kind = match edit {
                Edit::Put { .. } => "put",
                _ => "delete",
            };
            log.push(format!("{} {kind} {}", first + i as u64, edit.name()));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_move_one_per_changed_flag_and_the_observer_sees_each() {
    let store = Arc::new(MemoryStore::new());
    store.create_at("a", true, None, 1).await.unwrap();
    let recorder = Arc::new(Recorder::default());
    let live = LiveFlags::start(
        Arc::clone(&store) as Arc<dyn Store>,
        quick().observer(Arc::clone(&recorder) as _),
    )
    .await;
    assert_eq!(live.version(), 1);
    store.create_at("b", true, None, 1).await.unwrap();
    store.set("a", false).await.unwrap();
    // Writing what is there already changes nothing.
    store.set("a", false).await.unwrap();
    store.delete("b").await.unwrap();
    eventually("three changes", || live.version() == 4).await;
    assert_eq!(
        *recorder.0.lock().unwrap(),
        ["1 loaded 1", "2 put b", "3 put a", "4 delete b"]
    );
    let mut versions = live.subscribe_versions();
    assert_eq!(*versions.borrow_and_update(), 4);
    store.create_at("c", true, None, 1).await.unwrap();
    versions.changed().await.unwrap();
    assert_eq!(*versions.borrow(), 5);
    let snapshot = live.snapshot();
    assert_eq!(snapshot.flags().version(), 5);
    let names: Vec<&str> = snapshot.flags().iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["a", "c"]);
}
