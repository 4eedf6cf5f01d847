//! The real Python flipper-client 1.3.2's `ConsulFeatureFlagStore` (python-consul 1.1.0) and
//! flipper's Consul store on one fake agent: what one side writes, the other reads as the same
//! bytes and evaluates identically; and what each costs while idle.
//!
//! flipper-client's Consul store answers reads from a cache its watch thread refills (spec
//! §2.4): a flag it just wrote is not readable until the thread's next poll, and a deleted flag
//! stays in the cache for the life of the process. So the Python side waits, after each of its
//! writes, until its cache shows what Consul holds (`settle`) before the next step (otherwise
//! `create` then `enable` fails, and a step can undo the previous one), and the tests assert
//! that Python keeps showing a flag Rust deleted.

use std::sync::Arc;
use std::time::Duration;

use flipper::Checks;
use flipper::store::{ConsulStore, Store, StoreExt};
use flipper_testkit::FakeConsul;
use serde_json::json as j;

use super::script::{CREATED, contexts, new_dashboard, object, rust_client, rust_step};

/// flipper-client in a Python process (`tests/python/interop.py`).
struct Python(flipper_testkit::PythonProcess);

impl Python {
    /// flipper-client's Consul store on `consul`, with this base key.
    fn start(consul: &FakeConsul, base_key: &str) -> Option<Self> {
        let script = std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/python/interop.py"
        ));
        let mut py = flipper_testkit::PythonProcess::start(script, &[], &["flipper", "consul"])?;
        py.ok(j!({"op": "open", "kind": "consul", "port": consul.port(), "base_key": base_key}));
        py.ok(j!({"op": "freeze", "now": CREATED}));
        Some(Self(py))
    }

    fn ok(&mut self, cmd: serde_json::Value) -> serde_json::Value {
        self.0.ok(cmd)
    }

    /// What Python's store returns for a flag (from its cache), re-serialized.
    fn raw(&mut self, name: &str) -> Option<String> {
        self.ok(j!({"op": "raw", "name": name}))
            .as_str()
            .map(str::to_owned)
    }
}

/// The bytes Consul holds for a flag, as the Rust store reads them.
async fn consul_bytes(store: &ConsulStore, name: &str) -> Option<String> {
    store
        .get(name)
        .await
        .unwrap()
        .map(|v| String::from_utf8(v.item.serialize()).expect("UTF-8"))
}

/// Waits until Python's cache shows what Consul holds for `name` (its watch thread caught up).
async fn settle(py: &mut Python, store: &ConsulStore, name: &str) {
    let want = consul_bytes(store, name).await;
    for _ in 0..500 {
        if py.raw(name) == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("python's cache never showed {name} as Consul holds it: {want:?}");
}

/// Steps in flipper-client's API, identical for Python and Rust.
fn script() -> Vec<serde_json::Value> {
    let mut steps = new_dashboard();
    steps.extend([
        j!({"op": "create", "name": "plain"}),
        j!({"op": "create", "name": "ops", "is_enabled": true, "client_data": {"ratio": 0.1}}),
        j!({"op": "add_condition", "name": "ops", "checks": {
            "age__lt": 65, "plan__ne": "free", "user_id__not_in": [1, 2, 3]}}),
        j!({"op": "disable", "name": "ops"}),
        j!({"op": "enable", "name": "ops"}),
    ]);
    steps
}

const FLAGS: [&str; 3] = ["new_dashboard", "plain", "ops"];

/// Both sides read the same bytes for every flag and answer the same for every context.
async fn assert_same_view(py: &mut Python, store: &ConsulStore) {
    let client = rust_client(Arc::new(store.clone()));
    for name in FLAGS {
        let rust = consul_bytes(store, name).await;
        assert!(rust.is_some(), "rust cannot see {name}");
        assert_eq!(rust, py.raw(name), "stored bytes of {name}");
        for context in contexts(16, false) {
            let python = py.ok(j!({"op": "is_enabled", "name": name, "checks": context}));
            let rust = client
                .is_enabled(name, &Checks::from(object(&context)))
                .await;
            assert_eq!(Some(rust), python.as_bool(), "{name} {context}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_writes_are_read_by_rust_and_evaluate_identically() {
    let consul = flipper_testkit::fake_consul();
    let base = flipper_testkit::unique_name("py");
    let Some(mut py) = Python::start(consul, &base) else {
        return;
    };
    let store = ConsulStore::from_url(&format!("{}/{base}", consul.url())).unwrap();
    for step in script() {
        py.ok(step.clone());
        settle(&mut py, &store, step["name"].as_str().unwrap()).await;
    }
    assert_same_view(&mut py, &store).await;

    // Python deletes: Rust sees it gone at once; Python's cache keeps it (spec §2.4).
    py.ok(j!({"op": "destroy", "name": "plain"}));
    assert!(store.get("plain").await.unwrap().is_none());
    assert!(
        store
            .items(None, 0)
            .await
            .unwrap()
            .iter()
            .all(|i| i.feature_name != "plain")
    );
    assert_eq!(py.ok(j!({"op": "exists", "name": "plain"})), j!(true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_writes_are_read_by_python_through_its_watch_thread() {
    let consul = flipper_testkit::fake_consul();
    let base = flipper_testkit::unique_name("rs");
    let store = ConsulStore::from_url(&format!("{}/{base}", consul.url())).unwrap();
    let client = rust_client(Arc::new(store.clone()));
    // Python's watch thread runs before and during Rust's writes.
    let Some(mut py) = Python::start(consul, &base) else {
        return;
    };
    for step in script() {
        rust_step(&client, &step).await;
    }
    for name in FLAGS {
        settle(&mut py, &store, name).await;
    }
    assert_same_view(&mut py, &store).await;

    // A change by Rust reaches Python's cache through its watch thread.
    client.enable("plain").await.unwrap();
    settle(&mut py, &store, "plain").await;
    assert_eq!(
        py.ok(j!({"op": "is_enabled", "name": "plain", "checks": {}})),
        j!(true)
    );
    // Rust deletes: flipper-client never evicts a deleted flag from its cache (spec §2.4).
    client.destroy("plain").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(store.get("plain").await.unwrap().is_none());
    assert_eq!(py.ok(j!({"op": "exists", "name": "plain"})), j!(true));
}

/// The "Must show" figure: KV requests per minute while idle, measured on the fake agent's
/// counter (a separate agent for each side). `examples/consul_idle.rs` prints the table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_python_busy_polls_while_rust_blocks() {
    let window = Duration::from_secs(2);
    let per_minute = |n: u64| n * 60_000 / u64::try_from(window.as_millis()).unwrap();

    let rust_consul = FakeConsul::start();
    let store = ConsulStore::from_url(&rust_consul.url()).unwrap();
    store.set("flag", true).await.unwrap();
    let mut changes = store.watch().unwrap();
    futures_util::StreamExt::next(&mut changes).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    rust_consul.reset_requests();
    tokio::time::sleep(window).await;
    let rust = per_minute(rust_consul.kv_requests());

    let python_consul = FakeConsul::start();
    python_consul.put(
        "features/flag",
        &flipper::Item::new("flag", true, 1).serialize(),
    );
    let Some(mut py) = Python::start(&python_consul, "features") else {
        return;
    };
    while py.raw("flag").is_none() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    python_consul.reset_requests();
    tokio::time::sleep(window).await;
    let python = per_minute(python_consul.kv_requests());
    drop(py);

    eprintln!("KV requests per minute while idle: flipper {rust}, flipper-client {python}");
    assert!(rust <= 30, "flipper: {rust} per minute");
    assert!(
        python >= 1000,
        "flipper-client busy-polls: {python} per minute"
    );
}
