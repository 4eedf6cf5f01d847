//! The library's HTTP store against a real `flipper serve` (in process, on a real port, over a
//! memory store): the whole store conformance suite, the errors it maps, and its watch
//! resuming after a dropped connection.

mod live;

use std::sync::Arc;

use flipper::Error;
use flipper::Item;
use flipper::store::{Change, ChangeStream, HttpStore, MemoryStore, PutMode, Store, StoreExt};
use futures_util::StreamExt;
use live::{ADMIN, PATIENCE, Proxy, SDK, Server};

/// A fresh server over an empty memory store, and the HTTP store on it with the admin token.
/// The server runs until the returned guard drops.
async fn http_store() -> (Server, HttpStore) {
    let server = Server::start(Arc::new(MemoryStore::new()), |_| {}).await;
    let store = HttpStore::new(&server.base).unwrap().with_token(ADMIN);
    (server, store)
}

flipper::store_conformance_tests!(guarded: http_store().await);

async fn next(changes: &mut ChangeStream) -> Change {
    tokio::time::timeout(PATIENCE, changes.next())
        .await
        .expect("a change in time")
        .expect("the stream stays open")
}

fn put_name(change: &Change) -> String {
    match change {
        Change::Put { item, .. } => format!("put {}", item.feature_name),
        other => format!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_failures_map_to_the_library_errors() {
    let server = Server::start(Arc::new(MemoryStore::new()), |_| {}).await;
    let admin = HttpStore::new(&server.base).unwrap().with_token(ADMIN);
    admin.create_at("f", true, None, 1).await.unwrap();

    let anonymous = HttpStore::new(&server.base).unwrap();
    let err = anonymous.get("f").await.unwrap_err();
    assert!(
        matches!(err, Error::Unauthorized { status: 401, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("a token is required"), "{err}");
    assert!(!err.is_retryable());

    let sdk = HttpStore::new(&server.base).unwrap().with_token(SDK);
    assert!(sdk.get("f").await.unwrap().is_some());
    assert_eq!(sdk.list(None, 0).await.unwrap().len(), 1);
    let err = sdk.set("f", false).await.unwrap_err();
    assert!(
        matches!(err, Error::Unauthorized { status: 403, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("admin token"), "{err}");
    let wrong = HttpStore::new(&server.base).unwrap().with_token("nope");
    let err = wrong.delete("f").await.unwrap_err();
    assert!(
        matches!(err, Error::Unauthorized { status: 403, .. }),
        "{err}"
    );

    // Refused by the server's rules for new names.
    let err = admin
        .put(&Item::new("a\nb", true, 1), PutMode::Overwrite)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidFlag { .. }), "{err}");
    assert!(admin.get("a\nb").await.unwrap().is_none());

    let addr = server.addr;
    server.stop().await.unwrap();
    let gone = HttpStore::new(&format!("http://{addr}"))
        .unwrap()
        .with_token(ADMIN);
    let err = gone.get("f").await.unwrap_err();
    assert!(matches!(err, Error::Backend { .. }), "{err}");
    assert!(err.is_retryable());
}

/// The watch resumes after its connection drops: the changes made meanwhile arrive as
/// changes when the server still has them, as a resync when it does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_resumes_or_resyncs_after_a_dropped_connection() {
    let memory = Arc::new(MemoryStore::new());
    let server = Server::start(Arc::clone(&memory) as Arc<dyn Store>, |c| {
        c.stream_log_size = 3;
    })
    .await;
    let proxy = Proxy::start(server.addr).await;
    let through_proxy = HttpStore::new(&proxy.base).unwrap().with_token(ADMIN);
    let mut changes = through_proxy.watch().expect("a watch");
    // A write through the same store waits until its watch is connected.
    through_proxy.create_at("a", true, None, 1).await.unwrap();
    assert_eq!(put_name(&next(&mut changes).await), "put a");

    // Two changes while the watch is cut off: the log (3) still has them.
    let version = server.version().await;
    proxy.cut(true);
    memory.create_at("b", true, None, 1).await.unwrap();
    memory.delete("a").await.unwrap();
    server.reaches(version + 2).await;
    proxy.resume();
    assert_eq!(put_name(&next(&mut changes).await), "put b");
    assert_eq!(
        next(&mut changes).await,
        Change::Delete { name: "a".into() }
    );

    // Four: the log no longer reaches back, so the watcher must reload.
    let version = server.version().await;
    proxy.cut(true);
    for name in ["c", "d", "e", "f"] {
        memory.create_at(name, true, None, 1).await.unwrap();
    }
    server.reaches(version + 4).await;
    proxy.resume();
    assert_eq!(next(&mut changes).await, Change::Resync);
    // Then it follows again.
    memory.delete("c").await.unwrap();
    assert_eq!(
        next(&mut changes).await,
        Change::Delete { name: "c".into() }
    );

    // Another server process (a new epoch) on the same port: a resync, then its changes.
    let addr = server.addr;
    server.stop().await.unwrap();
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let restarted = Server::start_on(listener, Arc::clone(&memory) as Arc<dyn Store>, |_| {}).await;
    assert_eq!(next(&mut changes).await, Change::Resync);
    through_proxy.create_at("g", true, None, 1).await.unwrap();
    assert_eq!(put_name(&next(&mut changes).await), "put g");
    restarted.stop().await.unwrap();
}
