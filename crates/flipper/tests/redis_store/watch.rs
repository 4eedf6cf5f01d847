//! The Redis store's watch: flipper's own writes in order, another process's writes heard
//! through keyspace notifications or polling (standalone and cluster), a server restart.

use std::time::Instant;

use flipper::store::{Change, ChangeStream};

use super::*;

/// The next change within `secs` seconds.
async fn next(changes: &mut ChangeStream, secs: u64) -> Change {
    tokio::time::timeout(Duration::from_secs(secs), changes.next())
        .await
        .unwrap_or_else(|_| panic!("a change within {secs} s"))
        .expect("the stream stays open")
}

/// A change as text: `put NAME ENABLED`, `delete NAME`, `resync`.
fn show(change: &Change) -> String {
    match change {
        Change::Put { item, .. } => format!("put {} {}", item.feature_name, item.switched_on()),
        Change::Delete { name } => format!("delete {name}"),
        _ => "resync".to_owned(),
    }
}

/// The next change that is not a resync.
async fn next_change(changes: &mut ChangeStream, secs: u64) -> String {
    loop {
        let change = next(changes, secs).await;
        if change != Change::Resync {
            return show(&change);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_see_another_stores_writes_in_order() {
    let Some(writer) = standalone() else { return };
    let reader = RedisStore::new(writer.config().clone());
    let mut changes = reader.watch().unwrap();
    assert_eq!(next(&mut changes, 10).await, Change::Resync);
    let items: Vec<Item> = (0..20)
        .map(|i| Item::new(format!("f{i:02}"), i % 2 == 0, 1))
        .collect();
    writer.put_many(&items).await.unwrap();
    writer.set("f00", false).await.unwrap();
    writer.delete("f01").await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..22 {
        seen.push(next_change(&mut changes, 10).await);
    }
    let mut expected: Vec<String> = items
        .iter()
        .map(|i| format!("put {} {}", i.feature_name, i.switched_on()))
        .collect();
    expected.extend(["put f00 false".to_owned(), "delete f01".to_owned()]);
    assert_eq!(seen, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyspace_notifications_report_other_processes_writes() {
    let Some(server) = RedisServer::start(RedisOptions::default().keyspace_notifications(true))
    else {
        return;
    };
    // No polling: only keyspace notifications can report the foreign writes.
    let store = RedisStore::new(
        RedisConfig::from_url(&server.url())
            .unwrap()
            .with_poll_interval(None),
    );
    assert!(!store.capabilities().watch_external);
    let mut changes = store.watch().unwrap();
    assert_eq!(next(&mut changes, 10).await, Change::Resync);
    store.create("own", true, None).await.unwrap();
    assert_eq!(next_change(&mut changes, 5).await, "put own true");
    let foreign = Item::new("py", true, 1).to_json();
    server.cli(&["SET", "features/py", &foreign]);
    server.cli(&["SET", "other/ignored", &foreign]);
    assert_eq!(next_change(&mut changes, 5).await, "put py true");
    store.set("own", false).await.unwrap();
    assert_eq!(next_change(&mut changes, 5).await, "put own false");
    server.cli(&["DEL", "features/py"]);
    assert_eq!(next_change(&mut changes, 5).await, "delete py");
    // Flipper's writes and another process's, interleaved quickly: flipper's come in order,
    // once each; the other process's are reported (a burst of them may be reported as its
    // last state only).
    for i in 0..5 {
        store.set("own", i % 2 == 0).await.unwrap();
        server.cli(&[
            "SET",
            "features/py",
            &Item::new("py", i % 2 == 0, 1).to_json(),
        ]);
    }
    let mut own = Vec::new();
    let mut py = Vec::new();
    let sort = |change: String, own: &mut Vec<String>, py: &mut Vec<String>| {
        if change.contains(" own ") {
            own.push(change);
        } else {
            py.push(change);
        }
    };
    while own.len() < 5 || py.is_empty() {
        sort(next_change(&mut changes, 5).await, &mut own, &mut py);
    }
    // Then whatever else comes until the stream is quiet.
    while let Ok(change) = tokio::time::timeout(Duration::from_millis(500), changes.next()).await {
        sort(
            show(&change.expect("the stream stays open")),
            &mut own,
            &mut py,
        );
    }
    assert_eq!(
        own,
        [
            "put own true",
            "put own false",
            "put own true",
            "put own false",
            "put own true"
        ]
    );
    assert_eq!(py.last().map(String::as_str), Some("put py true"), "{py:?}");
    assert!(py.len() <= 5, "{py:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_reports_other_processes_writes_without_notifications() {
    let Some(server) = RedisServer::start(RedisOptions::default()) else {
        return;
    };
    let store = RedisStore::from_url(&format!("{}?poll_interval=200ms", server.url())).unwrap();
    assert!(store.capabilities().watch_external);
    server.cli(&[
        "SET",
        "features/before",
        &Item::new("before", true, 1).to_json(),
    ]);
    let mut changes = store.watch().unwrap();
    assert_eq!(next(&mut changes, 10).await, Change::Resync);
    server.cli(&["SET", "features/py", &Item::new("py", true, 1).to_json()]);
    assert_eq!(next_change(&mut changes, 5).await, "put py true");
    server.cli(&["SET", "features/py", &Item::new("py", false, 1).to_json()]);
    assert_eq!(next_change(&mut changes, 5).await, "put py false");
    server.cli(&["DEL", "features/before"]);
    assert_eq!(next_change(&mut changes, 5).await, "delete before");
    // Own writes come through the channel, once.
    store.create("own", true, None).await.unwrap();
    assert_eq!(next_change(&mut changes, 5).await, "put own true");
    let extra = tokio::time::timeout(Duration::from_millis(700), changes.next()).await;
    assert!(
        extra.is_err(),
        "unexpected {:?}",
        extra.ok().flatten().map(|c| show(&c))
    );
}

/// Sets `KEY/NAME` to a flag on the cluster, as another process would.
async fn cluster_set(raw: &mut redis::cluster_async::ClusterConnection, key: &str, name: &str) {
    let _: () = redis::cmd("SET")
        .arg(key)
        .arg(Item::new(name, true, 1).to_json())
        .query_async(raw)
        .await
        .unwrap();
}

/// On a cluster, other processes' writes are polled for; once every master sends keyspace
/// notifications, they are heard through them (one subscription per master).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_watch_hears_other_processes_writes() {
    let Some(url) = cluster_url() else { return };
    let nodes = flipper_testkit::redis_cluster()
        .unwrap()
        .node_urls()
        .to_vec();
    let mut cluster = redis::cluster::ClusterClient::new(nodes.clone())
        .unwrap()
        .get_async_connection()
        .await
        .unwrap();

    // Polling (the test cluster starts without notifications).
    let store = store_at(&format!("{url}?poll_interval=200ms"));
    let base = store.config().base_key().to_owned();
    let mut changes = store.watch().unwrap();
    assert_eq!(next(&mut changes, 10).await, Change::Resync);
    for name in ["x", "y", "z"] {
        cluster_set(&mut cluster, &format!("{base}/{name}"), name).await;
    }
    store.create("own", true, None).await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(next_change(&mut changes, 5).await);
    }
    seen.sort();
    assert_eq!(
        seen,
        ["put own true", "put x true", "put y true", "put z true"]
    );
    drop(changes);

    // Keyspace notifications on every master (other tests' watches work either way).
    for node in &nodes {
        let mut conn = raw(node).await;
        let _: () = query(
            &mut conn,
            &[b"CONFIG", b"SET", b"notify-keyspace-events", b"KA"],
        )
        .await;
    }
    let store = store_at(&format!("{url}?poll_interval=off"));
    let base = store.config().base_key().to_owned();
    let mut changes = store.watch().unwrap();
    assert_eq!(next(&mut changes, 10).await, Change::Resync);
    // Names spread over the three masters' slots.
    let names: Vec<String> = (0..9).map(|i| format!("k{i}")).collect();
    for name in &names {
        cluster_set(&mut cluster, &format!("{base}/{name}"), name).await;
    }
    let mut seen = Vec::new();
    for _ in 0..names.len() {
        seen.push(next_change(&mut changes, 5).await);
    }
    seen.sort();
    let expected: Vec<String> = names.iter().map(|n| format!("put {n} true")).collect();
    assert_eq!(seen, expected);
    // Own writes: in order, once each.
    for i in 0..4 {
        store.set("own", i % 2 == 0).await.unwrap();
    }
    let mut own = Vec::new();
    for _ in 0..4 {
        own.push(next_change(&mut changes, 5).await);
    }
    assert_eq!(
        own,
        [
            "put own true",
            "put own false",
            "put own true",
            "put own false"
        ]
    );
    let extra = tokio::time::timeout(Duration::from_millis(500), changes.next()).await;
    assert!(
        extra.is_err(),
        "unexpected {:?}",
        extra.ok().flatten().map(|c| show(&c))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_resyncs_after_a_restart_and_writes_fail_while_down() {
    let Some(server) = RedisServer::start(RedisOptions::default().persistent(true)) else {
        return;
    };
    let store = RedisStore::from_url(&server.url()).unwrap();
    let mut changes = store.watch().unwrap();
    assert_eq!(next(&mut changes, 10).await, Change::Resync);
    store.create("a", true, None).await.unwrap();
    assert_eq!(next_change(&mut changes, 5).await, "put a true");

    server.stop();
    let err = store
        .put(&Item::new("b", true, 1), PutMode::Overwrite)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Backend { .. }) && err.is_retryable(),
        "{err}"
    );
    let err = store.get("a").await.unwrap_err();
    assert!(matches!(err, Error::Backend { .. }), "{err}");

    server.restart();
    // The watch reconnects and says it may have missed changes.
    assert_eq!(next(&mut changes, 30).await, Change::Resync);
    // The connection comes back by itself.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match store
            .put(&Item::new("b", true, 1), PutMode::Overwrite)
            .await
        {
            Ok(_) => break,
            Err(e) if Instant::now() < deadline => eprintln!("after restart: {e}"),
            Err(e) => panic!("no write within 10 s of the restart: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(next_change(&mut changes, 5).await, "put b true");
    assert!(store.get("a").await.unwrap().is_some(), "persistent data");
}

#[test]
fn watch_needs_a_runtime() {
    let store = RedisStore::from_url("redis://127.0.0.1:1").unwrap();
    assert!(store.watch().is_none());
}
