//! Offline: flags from a bootstrap file without a store; the persisted snapshot serving a cold
//! start while the store is unreachable (a JSON file that does not parse), then the store
//! taking over once it answers; and a start that times out before the first load.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use flipper::live::{LiveFlags, Source};
use flipper::store::{JsonFileStore, MemoryStore, Store, StoreExt};
use flipper::{Checks, Error, Item, Reason, export};

use crate::common::{PATIENCE, eventually, quick};

fn write_flags(path: &Path, items: &[Item]) {
    std::fs::write(path, export::render(items)).unwrap();
}

#[tokio::test]
async fn flags_from_a_bootstrap_file_need_no_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bootstrap.json");
    write_flags(
        &path,
        &[Item::new("on", true, 1), Item::new("off", false, 1)],
    );
    let live = LiveFlags::from_file(&path, quick()).await.unwrap();
    assert!(live.is_enabled("on", &Checks::new()));
    assert!(!live.is_enabled("off", &Checks::new()));
    let e = live.evaluate("missing", &Checks::new(), true);
    assert_eq!((e.enabled, e.reason), (true, Reason::FlagMissing));
    let status = live.status();
    assert_eq!(status.source, Some(Source::Bootstrap(path.clone())));
    assert!(status.initialized && !status.running && !status.following);
    assert_eq!((status.flags, status.version), (2, 1));
    assert!(live.store().is_none());
    let err = live.client().create("x", true, None).await.unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");

    std::fs::write(&path, "[{\"feature_name\": 1}]").unwrap();
    let err = LiveFlags::from_file(&path, quick()).await.unwrap_err();
    assert!(matches!(err, Error::InvalidFile { .. }), "{err}");
    assert!(err.to_string().contains("line 1"), "{err}");
    let err = LiveFlags::from_file(dir.path().join("missing.json"), quick())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persisted_snapshot_serves_a_cold_start_while_the_store_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let snapshot = dir.path().join("snapshot.json");
    let store_path = dir.path().join("flags.json");

    // A first run persists what it loads and each change.
    let store = Arc::new(JsonFileStore::new(&store_path));
    store.create_at("kept", true, None, 1).await.unwrap();
    let options = || {
        quick()
            .persist(&snapshot)
            .persist_debounce(Duration::from_millis(10))
    };
    let first = LiveFlags::start(Arc::clone(&store) as Arc<dyn Store>, options()).await;
    first.client().create("late", true, None).await.unwrap();
    eventually("the snapshot is persisted with the change", || {
        std::fs::read_to_string(&snapshot).is_ok_and(|text| text.contains("\"late\""))
    })
    .await;
    drop(first);
    let persisted = export::parse(&std::fs::read_to_string(&snapshot).unwrap()).unwrap();
    assert_eq!(persisted.len(), 2);

    // The store is unreadable at the next start: the persisted flags are served.
    let mut later = persisted.values().cloned().collect::<Vec<_>>();
    std::fs::write(&store_path, "this is not JSON").unwrap();
    let second = LiveFlags::start(Arc::new(JsonFileStore::new(&store_path)), options()).await;
    assert!(second.is_enabled("kept", &Checks::new()));
    assert!(second.is_enabled("late", &Checks::new()));
    let status = second.status();
    assert_eq!(status.source, Some(Source::Persisted(snapshot.clone())));
    assert!(status.last_error.is_some() && status.failing_since.is_some());
    assert!(status.is_stale(Duration::from_secs(3600)), "{status:?}");

    // The store answers again (with a change made meanwhile): it takes over.
    later.push(Item::new("new", true, 1));
    write_flags(&store_path, &later);
    eventually("the store takes over", || {
        second.status().source == Some(Source::Store)
    })
    .await;
    assert!(second.is_enabled("new", &Checks::new()));
    let status = second.status();
    assert!(status.last_error.is_none() && status.failing_since.is_none());
    // The persister never writes flags that did not come from the store; now they did.
    second.persist_now().await.unwrap();
    assert!(
        std::fs::read_to_string(&snapshot)
            .unwrap()
            .contains("\"new\"")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bootstrap_file_is_the_fallback_without_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let bootstrap = dir.path().join("bootstrap.json");
    write_flags(&bootstrap, &[Item::new("fallback", true, 1)]);
    let store_path = dir.path().join("flags.json");
    std::fs::write(&store_path, "[").unwrap();
    let live = LiveFlags::start(
        Arc::new(JsonFileStore::new(&store_path)),
        quick()
            .persist(dir.path().join("never-written.json"))
            .bootstrap(&bootstrap),
    )
    .await;
    assert!(live.is_enabled("fallback", &Checks::new()));
    assert_eq!(live.status().source, Some(Source::Bootstrap(bootstrap)));
    write_flags(&store_path, &[Item::new("real", true, 1)]);
    eventually("the store takes over", || {
        live.is_enabled("real", &Checks::new())
    })
    .await;
    assert!(live.get("fallback").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn before_the_first_load_evaluations_give_the_default() {
    let dir = tempfile::tempdir().unwrap();
    let store_path = dir.path().join("flags.json");
    std::fs::write(&store_path, "not yet").unwrap();
    let started = tokio::time::Instant::now();
    let live = LiveFlags::start(
        Arc::new(JsonFileStore::new(&store_path)),
        quick().init_timeout(Duration::from_millis(200)),
    )
    .await;
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert!(!live.is_initialized());
    let e = live.evaluate("any", &Checks::new(), true);
    assert_eq!((e.enabled, e.reason), (true, Reason::NotInitialized));
    assert!(!live.is_enabled("any", &Checks::new()));
    assert!(live.is_enabled_or("any", &Checks::new(), true));
    let status = live.status();
    assert!(!status.initialized && status.running && status.source.is_none());
    assert!(status.age.is_none() && status.last_error.is_some());
    write_flags(&store_path, &[Item::new("any", false, 1)]);
    tokio::time::timeout(PATIENCE, live.wait_initialized())
        .await
        .expect("initialised once the store answers");
    assert!(!live.is_enabled_or("any", &Checks::new(), true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn try_start_fails_on_a_store_that_cannot_be_fixed_by_retrying() {
    let dir = tempfile::tempdir().unwrap();
    let store_path = dir.path().join("flags.json");
    std::fs::write(&store_path, "{}").unwrap();
    let err = LiveFlags::try_start(Arc::new(JsonFileStore::new(&store_path)), quick())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidFile { .. }), "{err}");
    // A store that answers: started and loaded.
    let live = LiveFlags::try_start(Arc::new(MemoryStore::new()), quick())
        .await
        .unwrap();
    assert!(live.is_initialized());
}
