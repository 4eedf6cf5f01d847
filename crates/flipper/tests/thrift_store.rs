//! The Thrift store against the Thrift server, both this crate's, over real loopback sockets:
//! the whole conformance suite (buffered and framed), the bytes that reach the server's store,
//! what the service cannot carry, other processes' writes found by polling, live flags
//! following a Thrift store, dead and restarted servers, malformed and hostile input, and
//! shutdown.
//!
//! The Python flipper-client's side is in `thrift_python.rs`.

mod thrift_raw;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use flipper::live::{LiveFlags, LiveOptions};
use flipper::store::{
    Capabilities, ChangeStream, ListEntry, MemoryStore, PutMode, Store, StoreExt, ThriftServer,
    ThriftServerOptions, ThriftStore, Version, Versioned,
};
use flipper::{Bucketer, Checks, Condition, Error, Item, Percentage, Value};
use futures_util::StreamExt;

use self::thrift_raw::{Arg, Raw};

/// A Thrift store on a server of its own over `backing`; the server stops with it.
struct Served {
    store: ThriftStore,
    server: Option<ThriftServer>,
}

impl Served {
    async fn new(backing: Arc<dyn Store>, params: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server =
            ThriftServer::start(listener, backing, ThriftServerOptions::default()).unwrap();
        let url = format!("thrift://{}?{params}", server.local_addr());
        Self {
            store: ThriftStore::from_url(&url).unwrap(),
            server: Some(server),
        }
    }

    async fn memory(params: &str) -> Self {
        Self::new(Arc::new(MemoryStore::new()), params).await
    }

    fn addr(&self) -> std::net::SocketAddr {
        self.server.as_ref().unwrap().local_addr()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        // Dropping the server stops it without waiting.
        drop(self.server.take());
    }
}

impl fmt::Debug for Served {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.store, f)
    }
}

impl fmt::Display for Served {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.store, f)
    }
}

#[async_trait]
impl Store for Served {
    fn capabilities(&self) -> Capabilities {
        self.store.capabilities()
    }
    async fn get(&self, name: &str) -> flipper::Result<Option<Versioned>> {
        self.store.get(name).await
    }
    async fn put(&self, item: &Item, mode: PutMode) -> flipper::Result<Version> {
        self.store.put(item, mode).await
    }
    async fn put_many(&self, items: &[Item]) -> flipper::Result<Vec<Version>> {
        self.store.put_many(items).await
    }
    async fn delete(&self, name: &str) -> flipper::Result<bool> {
        self.store.delete(name).await
    }
    async fn list(&self, limit: Option<usize>, offset: usize) -> flipper::Result<Vec<ListEntry>> {
        self.store.list(limit, offset).await
    }
    fn watch(&self) -> Option<ChangeStream> {
        self.store.watch()
    }
}

mod buffered {
    flipper::store_conformance_tests!(super::Served::memory("poll_interval=100ms").await);
}

mod framed {
    flipper::store_conformance_tests!(
        super::Served::memory("transport=framed&poll_interval=100ms").await
    );
}

fn rich(name: &str) -> Item {
    let mut item = Item::new(name, true, 1_700_000_000);
    item.meta.client_data = [
        ("owner", Value::from("team-x")),
        ("nan", Value::Float(f64::NAN)),
    ]
    .into_iter()
    .collect();
    item.meta.conditions = vec![
        Condition::new()
            .eq("is_admin", true)
            .is_in("plan", vec!["pro", "enterprise"]),
        Condition::new().gte("age", 18).lt("age", 65),
    ];
    item.meta.bucketer = Bucketer::consistent_hash(Percentage::fixed(0.5), ["user_id"]);
    item
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_store_gets_the_bytes_and_grouping() {
    let backing = Arc::new(MemoryStore::new());
    let served = Served::new(backing.clone(), "").await;
    let item = rich("grouped");
    let version = served.store.put(&item, PutMode::Overwrite).await.unwrap();
    let stored = backing.get("grouped").await.unwrap().unwrap().item;
    assert_eq!(
        stored.serialize(),
        item.serialize(),
        "two conditions, as written"
    );
    assert_eq!(version, Version::of_bytes(&item.serialize()));

    // Variables of one condition come back in name order; the version is the flag's as read.
    let mut unsorted = Item::new("unsorted", false, 1);
    unsorted.meta.conditions = vec![Condition::new().lt("z", 9).gt("z", 1).eq("a", 1)];
    let version = served
        .store
        .put(&unsorted, PutMode::Overwrite)
        .await
        .unwrap();
    let got = served.store.get("unsorted").await.unwrap().unwrap();
    assert_eq!(got.version, version);
    assert_eq!(
        flipper_core::json::to_string(&got.item.meta.conditions[0].to_value()),
        r#"{"a": [{"variable": "a", "value": 1, "operator": null}], "z": [{"variable": "z", "value": 9, "operator": "lt"}, {"variable": "z", "value": 1, "operator": "gt"}]}"#
    );
    assert!(!got.item.switched_on());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_service_cannot_carry_is_refused_before_anything_is_written() {
    let backing = Arc::new(MemoryStore::new());
    let served = Served::new(backing.clone(), "").await;
    assert!(!served.capabilities().conditional_put);
    let err = served
        .store
        .put(&Item::new("f", true, 1), PutMode::Create)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");
    let mut odd = Item::new("f", true, 1);
    odd.is_enabled = Value::from(1);
    let err = served
        .store
        .put(&odd, PutMode::Overwrite)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidFlag { .. }) && err.to_string().contains("is_enabled"));
    let mut late = Item::new("f", true, 1);
    late.meta.created_date = Value::from("yesterday");
    let err = served
        .store
        .put(&late, PutMode::Overwrite)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("created_date"), "{err}");
    let mut ambiguous = Item::new("f", true, 1);
    ambiguous.meta.conditions = vec![Condition::new().gt("x_", 1)];
    let err = served
        .store
        .put(&ambiguous, PutMode::Overwrite)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidFlag { .. }), "{err}");
    assert!(backing.list(None, 0).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_processes_writes_are_found_by_polling() {
    let backing = Arc::new(MemoryStore::new());
    backing
        .put(&Item::new("before", true, 1), PutMode::Overwrite)
        .await
        .unwrap();
    let served = Served::new(backing.clone(), "poll_interval=100ms").await;
    assert!(served.capabilities().watch_external);
    let mut changes = served.store.watch().unwrap();
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(10), changes.next())
            .await
            .expect("a change within 10 s")
            .expect("the stream is open")
    };
    assert_eq!(next().await, flipper::store::Change::Resync);
    backing
        .put(&rich("other"), PutMode::Overwrite)
        .await
        .unwrap();
    match next().await {
        flipper::store::Change::Put { item, .. } => assert_eq!(item, rich("other")),
        other => panic!("{other:?}"),
    }
    backing.delete("before").await.unwrap();
    assert_eq!(
        next().await,
        flipper::store::Change::Delete {
            name: "before".into()
        }
    );
    // This store's own write comes once, not again from the next poll.
    served.store.set("other", false).await.unwrap();
    assert!(
        matches!(next().await, flipper::store::Change::Put { item, .. } if !item.switched_on())
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(400), changes.next())
            .await
            .is_err(),
        "nothing more"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_flags_follow_a_thrift_store_by_polling() {
    let backing = Arc::new(MemoryStore::new());
    let served = Served::new(backing.clone(), "poll_interval=100ms").await;
    let store: Arc<dyn Store> = Arc::new(served.store.clone());
    let live = LiveFlags::start(store, LiveOptions::default()).await;
    assert!(live.is_initialized());
    backing
        .put(&rich("beta"), PutMode::Overwrite)
        .await
        .unwrap();
    let adult = Checks::new()
        .with("age", 30)
        .with("is_admin", true)
        .with("plan", "pro");
    let child = Checks::new().with("age", 12);
    eventually("the write", || live.is_enabled("beta", &adult)).await;
    assert!(!live.is_enabled("beta", &child));
    backing.set("beta", false).await.unwrap();
    eventually("the switch", || !live.is_enabled("beta", &adult)).await;
    backing.delete("beta").await.unwrap();
    eventually("the delete", || live.get("beta").is_none()).await;
}

async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_server_fails_calls_within_the_timeout() {
    // Nothing listens.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let store = ThriftStore::from_url(&format!("thrift://127.0.0.1:{port}")).unwrap();
    let err = store.get("f").await.unwrap_err();
    assert!(
        err.is_retryable() && err.to_string().contains("cannot connect"),
        "{err}"
    );
    // Accepts, never answers.
    let mute = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("thrift://{}?timeout=300ms", mute.local_addr().unwrap());
    let store = ThriftStore::from_url(&url).unwrap();
    let started = Instant::now();
    let err = store.get("f").await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(err.to_string().contains("no reply within"), "{err}");
    drop(mute);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_is_reconnected() {
    let backing: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let mut served = Served::new(Arc::clone(&backing), "").await;
    served.store.set("f", true).await.unwrap();
    let addr = served.addr();
    assert!(
        served
            .server
            .take()
            .unwrap()
            .shutdown(Duration::from_secs(5))
            .await
    );
    assert!(served.store.get("f").await.is_err(), "down");
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let server = ThriftServer::start(listener, backing, ThriftServerOptions::default()).unwrap();
    assert!(
        served
            .store
            .get("f")
            .await
            .unwrap()
            .unwrap()
            .item
            .switched_on()
    );
    assert!(server.shutdown(Duration::from_secs(5)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_idle_connections_at_once() {
    let mut served = Served::memory("pool_size=4").await;
    let tasks: Vec<_> = (0..4)
        .map(|i| {
            let store = served.store.clone();
            tokio::spawn(async move { store.set(&format!("f{i}"), true).await.unwrap() })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let server = served.server.take().unwrap();
    assert!(server.connections() >= 1);
    let started = Instant::now();
    assert!(server.shutdown(Duration::from_secs(10)).await);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(served.store.get("f0").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_messages_close_their_connection_and_nothing_else() {
    let backing = Arc::new(MemoryStore::new());
    let served = Served::new(backing.clone(), "").await;
    served
        .store
        .put(&rich("kept"), PutMode::Overwrite)
        .await
        .unwrap();
    let before = backing.get("kept").await.unwrap().unwrap();
    let addr = served.addr();
    // Closed by the server, without waiting for more.
    for garbage in [
        &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        // A strict header, then a method name claiming 2 GiB.
        &[0x80, 0x01, 0x00, 0x01, 0x7f, 0xff, 0xff, 0xff][..],
        // A framed call claiming a 1 GiB frame.
        &[0x40, 0x00, 0x00, 0x00, 0x80, 0x01, 0x00, 0x01][..],
        // The compact protocol.
        &[0x82, 0x21, 0x01, 0x03, 0x47, 0x65, 0x74][..],
    ] {
        assert!(
            Raw::connect(addr).send_and_expect_close(garbage),
            "{garbage:?}"
        );
    }
    // A truncated call, then the end of the input.
    assert!(Raw::connect(addr).send_end_and_expect_close(&[0x80, 0x01, 0x00]));
    // A call whose list claims 2^31 - 1 conditions: refused before anything is allocated.
    let mut raw = Raw::connect(addr);
    let reply = raw
        .call_bytes("SetMeta", &thrift_raw::huge_condition_list("kept"))
        .expect("the protocol's exception");
    assert!(reply.application_error.is_some(), "{reply:?}");
    assert!(raw.send_and_expect_close(&[]));
    // An unknown method gets the protocol's exception, then the connection closes.
    let mut raw = Raw::connect(addr);
    let reply = raw.call("Explode", &[Arg::Str(1, "kept")]).unwrap();
    assert_eq!(
        reply.application_error.as_deref(),
        Some("unknown method Explode")
    );
    assert!(raw.send_and_expect_close(&[]));
    assert_eq!(backing.get("kept").await.unwrap().unwrap(), before);
    assert!(
        served.store.get("kept").await.unwrap().is_some(),
        "still serving"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_that_cannot_be_stored_gets_the_services_error() {
    let backing = Arc::new(MemoryStore::new());
    let served = Served::new(backing.clone(), "").await;
    served
        .store
        .put(&rich("kept"), PutMode::Overwrite)
        .await
        .unwrap();
    let before = backing.get("kept").await.unwrap().unwrap();
    let mut raw = Raw::connect(served.addr());
    let meta = |fields: Vec<Arg>| Arg::Struct(2, fields);
    let check = |variable: &'static str, value: &'static str, symbol: Option<&'static str>| {
        let mut op = Vec::new();
        if let Some(s) = symbol {
            op.push(Arg::Str(1, s));
        }
        Arg::Conditions(3, vec![vec![(variable, vec![(variable, value, op)])]])
    };
    for (args, code, message) in [
        (
            vec![
                Arg::Str(1, "kept"),
                meta(vec![Arg::I64(1, 1), Arg::Str(4, r#"{"type": "Nope"}"#)]),
            ],
            None,
            "meta.bucketer",
        ),
        (
            vec![
                Arg::Str(1, "kept"),
                meta(vec![Arg::I64(1, 1), check("x_", "1", Some("gt"))]),
            ],
            None,
            "meta.conditions[0].x_[0]",
        ),
        (
            vec![
                Arg::Str(1, "kept"),
                meta(vec![Arg::I64(1, 1), check("x", "1", Some("GT"))]),
            ],
            None,
            "operator",
        ),
        (
            vec![Arg::Str(1, "kept"), meta(vec![Arg::Str(2, "{nope")])],
            None,
            "meta.client_data: invalid JSON",
        ),
        (
            vec![Arg::Str(1, "missing"), meta(vec![Arg::I64(1, 1)])],
            Some(0),
            "Feature missing does not exist",
        ),
    ] {
        let reply = raw.call("SetMeta", &args).expect("a reply");
        let (got_code, got_message) = reply.flipper_exception.expect("FlipperException");
        assert_eq!(got_code, code, "{got_message}");
        assert!(got_message.contains(message), "{got_message}");
    }
    let reply = raw
        .call(
            "Create",
            &[Arg::Str(1, "kept"), Arg::Bool(2, true), Arg::Str(3, "{")],
        )
        .unwrap();
    assert!(
        reply
            .flipper_exception
            .unwrap()
            .1
            .contains("client_data: invalid JSON")
    );
    let reply = raw
        .call("List", &[Arg::I64(1, -1), Arg::I64(2, 0)])
        .unwrap();
    assert!(
        reply
            .flipper_exception
            .unwrap()
            .1
            .contains("limit must not be negative")
    );
    let reply = raw.call("Get", &[Arg::Str(1, "missing")]).unwrap();
    assert_eq!(reply.flipper_exception.unwrap().0, Some(0), "NOT_FOUND");
    // Missing List arguments: no limit (flipper-client's `list()`), offset 0.
    let reply = raw.call("List", &[]).unwrap();
    assert_eq!(reply.list_len, Some(1));
    // A call without the protocol version (an old client's) is understood too.
    let mut old = Raw::connect_non_strict(served.addr());
    let reply = old.call("List", &[Arg::I64(2, 0)]).unwrap();
    assert_eq!(reply.list_len, Some(1));
    assert_eq!(
        backing.get("kept").await.unwrap().unwrap(),
        before,
        "nothing written"
    );
    assert!(backing.get("missing").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_connections_are_closed_at_once() {
    let backing: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let options = ThriftServerOptions::default().max_connections(1);
    let server = ThriftServer::start(listener, backing, options).unwrap();
    let mut first = Raw::connect(server.local_addr());
    assert!(first.call("Get", &[Arg::Str(1, "f")]).is_some());
    assert!(Raw::connect(server.local_addr()).send_and_expect_close(&[]));
    assert!(
        first.call("Get", &[Arg::Str(1, "f")]).is_some(),
        "the first one still works"
    );
    drop(first);
    assert!(server.shutdown(Duration::from_secs(5)).await);
}
