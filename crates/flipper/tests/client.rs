//! Client behaviour beyond the upstream suite: event timing around failed writes, concurrent
//! writers, rejected input.

use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use flipper::events::{Event, EventType};
use flipper::store::{
    Capabilities, ChangeStream, ListEntry, MemoryStore, PutMode, Store, StoreExt, Version,
    Versioned,
};
use flipper::{Bucketer, Checks, Condition, Error, FeatureFlagClient, Item, Percentage, Reason};

/// A store whose reads work and whose writes fail: stands in for a backend that goes away
/// mid-operation (no real part can be made to fail on demand here).
#[derive(Debug, Default)]
struct WritesFail(MemoryStore);

impl fmt::Display for WritesFail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("writes-fail:")
    }
}

#[async_trait]
impl Store for WritesFail {
    fn capabilities(&self) -> Capabilities {
        self.0.capabilities()
    }
    async fn get(&self, name: &str) -> flipper::Result<Option<Versioned>> {
        self.0.get(name).await
    }
    async fn put(&self, _item: &Item, _mode: PutMode) -> flipper::Result<Version> {
        Err(Error::Backend {
            store: self.to_string(),
            source: "connection reset".into(),
        })
    }
    async fn put_many(&self, _items: &[Item]) -> flipper::Result<Vec<Version>> {
        Err(Error::Backend {
            store: self.to_string(),
            source: "connection reset".into(),
        })
    }
    async fn delete(&self, _name: &str) -> flipper::Result<bool> {
        Err(Error::Backend {
            store: self.to_string(),
            source: "connection reset".into(),
        })
    }
    async fn list(&self, limit: Option<usize>, offset: usize) -> flipper::Result<Vec<ListEntry>> {
        self.0.list(limit, offset).await
    }
    fn watch(&self) -> Option<ChangeStream> {
        None
    }
}

fn record(client: &FeatureFlagClient) -> Arc<Mutex<Vec<String>>> {
    let log = Arc::new(Mutex::new(Vec::new()));
    for t in EventType::ALL {
        let log = Arc::clone(&log);
        client.events().on(
            t,
            Arc::new(move |e: &Event| {
                log.lock()
                    .unwrap()
                    .push(format!("{} {}", e.event_type, e.flag_name))
            }),
        );
    }
    log
}

#[tokio::test]
async fn post_events_fire_only_after_a_successful_write() {
    let store = WritesFail::default();
    store.0.create_at("f", false, None, 1).await.unwrap();
    let client = FeatureFlagClient::new(store);
    let log = record(&client);
    assert!(matches!(
        client.enable("f").await,
        Err(Error::Backend { .. })
    ));
    assert!(client.destroy("f").await.is_err());
    assert!(client.set_bucketer("f", Bucketer::NoOp).await.is_err());
    assert_eq!(
        *log.lock().unwrap(),
        ["pre_enable f", "pre_destroy f", "pre_set_bucketer f"]
    );
}

#[tokio::test]
async fn events_bracket_each_write_in_order() {
    let client = FeatureFlagClient::new(MemoryStore::new());
    let log = record(&client);
    client.create("f", false, None).await.unwrap();
    client.enable("f").await.unwrap();
    client
        .add_condition("f", Condition::new().eq("a", 1))
        .await
        .unwrap();
    client.destroy("f").await.unwrap();
    assert_eq!(
        *log.lock().unwrap(),
        [
            "pre_create f",
            "post_create f",
            "pre_enable f",
            "post_enable f",
            "pre_add_condition f",
            "post_add_condition f",
            "pre_destroy f",
            "post_destroy f"
        ]
    );
}

#[tokio::test]
async fn missing_flags_fail_without_events_or_writes() {
    let client = FeatureFlagClient::new(MemoryStore::new());
    let log = record(&client);
    for result in [
        client.enable("nope").await,
        client.disable("nope").await,
        client.destroy("nope").await,
        client.add_condition("nope", Condition::new()).await,
        client.set_conditions("nope", vec![]).await,
        client.set_bucketer("nope", Bucketer::NoOp).await,
        client.set_client_data("nope", flipper::Object::new()).await,
        client.get_meta("nope").await.map(|_| ()),
        client.get_client_data("nope").await.map(|_| ()),
    ] {
        assert!(matches!(result, Err(Error::FlagDoesNotExist { ref name }) if name == "nope"));
    }
    assert!(log.lock().unwrap().is_empty());
    assert!(client.store().list(None, 0).await.unwrap().is_empty());
}

#[tokio::test]
async fn an_unstorable_condition_is_rejected_before_anything_happens() {
    let client = FeatureFlagClient::new(MemoryStore::new());
    client.create("f", true, None).await.unwrap();
    let log = record(&client);
    let before = client.store().get("f").await.unwrap().unwrap();
    // flipper-client would read `x_` + `gt` back as the invalid key `x___gt`.
    let err = client
        .add_condition("f", Condition::new().gt("x_", 1))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidFlag { .. }), "{err}");
    assert!(err.to_string().contains("x___gt"), "{err}");
    assert!(log.lock().unwrap().is_empty());
    assert_eq!(client.store().get("f").await.unwrap().unwrap(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_meta_changes_are_all_kept() {
    let client = FeatureFlagClient::new(MemoryStore::new());
    client.create("f", true, None).await.unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move {
                if i % 2 == 0 {
                    client.add_condition("f", Condition::new().eq("n", i)).await
                } else {
                    let data = [(format!("k{i}"), flipper::Value::from(i))]
                        .into_iter()
                        .collect();
                    client.set_client_data("f", data).await
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let meta = client.get_meta("f").await.unwrap();
    assert_eq!(meta.conditions.len(), 10);
    assert_eq!(meta.client_data.as_object().unwrap().len(), 10);
}

#[tokio::test]
async fn evaluate_explains_and_store_errors_surface() {
    let client = FeatureFlagClient::new(MemoryStore::new());
    let flag = client.create("f", true, None).await.unwrap();
    flag.add_condition(Condition::new().gt("age", 17))
        .await
        .unwrap();
    flag.set_bucketer(Bucketer::consistent_hash(
        Percentage::fixed(0.0),
        ["user_id"],
    ))
    .await
    .unwrap();
    let adult = Checks::new().with("age", 30);
    assert_eq!(
        flag.evaluate(&adult, false).await.unwrap().reason,
        Reason::ConditionsMatched
    );
    // No checks: the 0% bucketer decides.
    assert_eq!(
        flag.evaluate(&Checks::new(), false).await.unwrap().reason,
        Reason::BucketedOut
    );
    let e = flag
        .evaluate(&Checks::new().with("age", "thirty"), false)
        .await
        .unwrap();
    assert!(!e.enabled);
    assert_eq!(
        e.error_detail().unwrap().to_string(),
        "TypeError: '>' not supported between instances of 'str' and 'int'"
    );
    assert_eq!(
        client
            .evaluate("missing", &Checks::new(), true)
            .await
            .unwrap()
            .reason,
        Reason::FlagMissing
    );

    // A store that cannot be read: `is_enabled_or` answers the default, `evaluate` says why.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flags.json");
    std::fs::write(&path, "[{").unwrap();
    let broken = FeatureFlagClient::new(flipper::store::JsonFileStore::new(&path));
    assert!(broken.is_enabled_or("f", &Checks::new(), true).await);
    assert!(matches!(
        broken.evaluate("f", &Checks::new(), true).await,
        Err(Error::InvalidFile { .. })
    ));
}

#[tokio::test]
async fn create_overwrites_and_set_client_data_merges() {
    let client = FeatureFlagClient::new(MemoryStore::new());
    let data = [("a", 1), ("b", 2)]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), flipper::Value::from(v)))
        .collect();
    client.create("f", true, Some(data)).await.unwrap();
    client
        .add_condition("f", Condition::new().eq("x", 1))
        .await
        .unwrap();
    let patch = [
        ("b".to_owned(), flipper::Value::from(3)),
        ("c".to_owned(), flipper::Value::Null),
    ]
    .into_iter()
    .collect();
    client.set_client_data("f", patch).await.unwrap();
    assert_eq!(
        flipper_core::json::to_string(&client.get_client_data("f").await.unwrap()),
        r#"{"a": 1, "b": 3, "c": null}"#
    );
    client.create("f", false, None).await.unwrap();
    let meta = client.get_meta("f").await.unwrap();
    assert!(meta.conditions.is_empty());
    assert_eq!(flipper_core::json::to_string(&meta.client_data), "{}");
}

#[tokio::test]
async fn create_new_refuses_an_existing_flag_without_events_or_writes() {
    let client = FeatureFlagClient::new(MemoryStore::new());
    client
        .add_condition("f", Condition::new())
        .await
        .unwrap_err();
    client.create_new("f", true, None).await.unwrap();
    client
        .add_condition("f", Condition::new().eq("a", 1))
        .await
        .unwrap();
    let before = client.store().get("f").await.unwrap().unwrap();
    let log = record(&client);
    assert!(matches!(
        client.create_new("f", false, None).await,
        Err(Error::AlreadyExists { ref name }) if name == "f"
    ));
    assert!(log.lock().unwrap().is_empty());
    assert_eq!(client.store().get("f").await.unwrap().unwrap(), before);
    // `create` keeps flipper-client's overwrite.
    client.create("f", false, None).await.unwrap();
    assert_eq!(*log.lock().unwrap(), ["pre_create f", "post_create f"]);
    let after = client.store().get("f").await.unwrap().unwrap().item;
    assert!(after.meta.conditions.is_empty());
}

/// A memory store that counts the operations reaching it.
#[derive(Debug, Default)]
struct Counting {
    inner: MemoryStore,
    gets: std::sync::atomic::AtomicUsize,
    puts: std::sync::atomic::AtomicUsize,
}

impl Counting {
    fn take(&self) -> (usize, usize) {
        use std::sync::atomic::Ordering::SeqCst;
        (self.gets.swap(0, SeqCst), self.puts.swap(0, SeqCst))
    }
}

impl fmt::Display for Counting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("counting:")
    }
}

#[async_trait]
impl Store for Counting {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn get(&self, name: &str) -> flipper::Result<Option<Versioned>> {
        self.gets.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.get(name).await
    }
    async fn put(&self, item: &Item, mode: PutMode) -> flipper::Result<Version> {
        self.puts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.put(item, mode).await
    }
    async fn put_many(&self, items: &[Item]) -> flipper::Result<Vec<Version>> {
        self.inner.put_many(items).await
    }
    async fn delete(&self, name: &str) -> flipper::Result<bool> {
        self.puts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.delete(name).await
    }
    async fn list(&self, limit: Option<usize>, offset: usize) -> flipper::Result<Vec<ListEntry>> {
        self.inner.list(limit, offset).await
    }
    fn watch(&self) -> Option<ChangeStream> {
        self.inner.watch()
    }
}

/// Each client operation costs one read and at most one write when nobody races it (Python's
/// client reads up to three times per write).
#[tokio::test]
async fn client_operations_read_once_and_write_once() {
    let store = Arc::new(Counting::default());
    let client = FeatureFlagClient::from_arc(Arc::clone(&store) as Arc<dyn Store>);
    client.create("f", false, None).await.unwrap();
    assert_eq!(store.take(), (0, 1), "create");
    client.is_enabled("f", &Checks::new()).await;
    assert_eq!(store.take(), (1, 0), "is_enabled");
    client.enable("f").await.unwrap();
    assert_eq!(store.take(), (1, 1), "enable");
    client.disable("f").await.unwrap();
    assert_eq!(store.take(), (1, 1), "disable");
    client
        .add_condition("f", Condition::new().gte("age", 18))
        .await
        .unwrap();
    assert_eq!(store.take(), (1, 1), "add_condition");
    let mut data = flipper::Object::new();
    data.insert("k".into(), 1.into());
    client.set_client_data("f", data).await.unwrap();
    assert_eq!(store.take(), (1, 1), "set_client_data");
    client
        .set_bucketer("f", Bucketer::percentage(Percentage::fixed(0.5)))
        .await
        .unwrap();
    assert_eq!(store.take(), (1, 1), "set_bucketer");
    client.destroy("f").await.unwrap();
    assert_eq!(store.take(), (1, 1), "destroy");
    assert!(client.enable("f").await.unwrap_err().is_flag_missing());
    assert_eq!(
        store.take(),
        (1, 0),
        "enable of a missing flag writes nothing"
    );
}
