//! Rust and the real Python flipper-client 1.3.2 sharing one Redis and one PostgreSQL: flags
//! one side writes, the other reads as identical items and evaluates identically, and the same
//! operations from both sides store identical bytes.
//!
//! The Python side is `tests/python/interop.py` (flipper-client with redis-py and psycopg 3).
//! Without python3, flipper-client, redis-server or PostgreSQL the tests skip with a loud
//! message, unless `FLIPPER_TEST_REQUIRE_SERVICES=1` (as in CI), where they fail.

use std::sync::Arc;

use flipper::store::{Store, StoreExt};
use flipper::{Checks, FeatureFlagClient};
use flipper_core::condition::Condition;
use serde_json::json as j;

#[path = "support/script.rs"]
mod script;
use script::{CREATED, assert_same_bytes, object, rust_client, rust_step, script};

/// The flipper-client process (`tests/python/interop.py`).
struct Python(flipper_testkit::PythonProcess);

impl Python {
    fn start(open: serde_json::Value) -> Option<Self> {
        let script = std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/python/interop.py"
        ));
        let mut py =
            flipper_testkit::PythonProcess::start(script, &[], &["flipper", "redis", "psycopg"])?;
        py.ok(open);
        py.ok(j!({"op": "freeze", "now": CREATED}));
        Some(Self(py))
    }

    fn ok(&mut self, cmd: serde_json::Value) -> serde_json::Value {
        self.0.ok(cmd)
    }
}

/// The contexts both sides evaluate every flag for.
fn contexts() -> Vec<serde_json::Value> {
    let mut contexts = script::contexts(24, true);
    contexts.push(j!({"user_id": "abc"}));
    contexts
}

const FLAGS: [&str; 5] = ["new_dashboard", "hashed", "plain", "data", "ops"];

/// What the Rust side reads and answers equals what Python reads and answers.
async fn assert_same_view(py: &mut Python, store: &Arc<dyn Store>, client: &FeatureFlagClient) {
    for name in FLAGS {
        let rust = store
            .get(name)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("rust cannot see {name}"))
            .item
            .serialize();
        let python = py.ok(j!({"op": "raw", "name": name}));
        assert_same_bytes(
            name,
            Some(String::from_utf8(rust).unwrap().as_str()),
            python.as_str(),
        );
        for context in contexts() {
            let python = py.ok(j!({"op": "is_enabled", "name": name, "checks": context}));
            let checks = Checks::from(object(&context));
            let rust = client.is_enabled(name, &checks).await;
            assert_eq!(Some(rust), python.as_bool(), "{name} {context}");
        }
    }
    assert!(store.get("gone").await.unwrap().is_none());
    assert_eq!(
        py.ok(j!({"op": "raw", "name": "gone"})),
        serde_json::Value::Null
    );
    let mut python: Vec<String> = serde_json::from_value(py.ok(j!({"op": "list"}))).unwrap();
    python.sort();
    let rust: Vec<String> = store
        .items(None, 0)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.feature_name)
        .collect();
    assert_eq!(
        rust, python,
        "Rust lists in name order; Python's order is arbitrary"
    );
}

/// Python writes, Rust reads; Rust writes, Python reads; each side's bytes for the same steps
/// are identical (`raw` is read from the other side's namespace by both).
async fn interoperate(
    py_open: impl Fn(&str) -> serde_json::Value,
    rust_open: impl Fn(&str) -> Arc<dyn Store>,
    raw: impl Fn(&str, &str) -> Option<String>,
) {
    let py_ns = flipper_testkit::unique_name("py");
    let rust_ns = flipper_testkit::unique_name("rs");

    // Python writes into its namespace; Rust reads it.
    let Some(mut py) = Python::start(py_open(&py_ns)) else {
        return;
    };
    for step in script("plain") {
        py.ok(step);
    }
    let store = rust_open(&py_ns);
    assert_same_view(&mut py, &store, &rust_client(Arc::clone(&store))).await;

    // Rust writes into its namespace; Python reads it.
    let store = rust_open(&rust_ns);
    let client = rust_client(Arc::clone(&store));
    for step in script("plain") {
        rust_step(&client, &step).await;
    }
    let Some(mut py) = Python::start(py_open(&rust_ns)) else {
        return;
    };
    assert_same_view(&mut py, &store, &client).await;

    // The same steps stored the same bytes on both sides.
    for name in FLAGS {
        let (ours, theirs) = (raw(&rust_ns, name), raw(&py_ns, name));
        assert!(ours.is_some(), "{name} stored");
        assert_same_bytes(name, ours.as_deref(), theirs.as_deref());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_and_rust_share_redis() {
    let Some(redis) = flipper_testkit::redis() else {
        return;
    };
    let url = redis.url().to_owned();
    let client = redis::Client::open(url.as_str()).unwrap();
    interoperate(
        |ns| j!({"op": "open", "kind": "redis", "url": url, "base_key": ns}),
        |ns| flipper::store::open(&format!("{url}/?base_key={ns}")).unwrap(),
        |ns, name| {
            let mut con = client.get_connection().unwrap();
            redis::cmd("GET")
                .arg(format!("{ns}/{name}"))
                .query::<Option<String>>(&mut con)
                .unwrap()
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_and_rust_share_postgres() {
    let Some(pg) = flipper_testkit::postgres() else {
        return;
    };
    let db = pg.fresh_database();
    interoperate(
        |ns| j!({"op": "open", "kind": "postgres", "conninfo": db, "table_name": ns}),
        |ns| flipper::store::open(&format!("{db}?table={ns}")).unwrap(),
        |ns, name| {
            let out = pg.psql(
                &db,
                &format!("SELECT convert_from(item, 'UTF8') FROM \"{ns}\" WHERE name = '{name}'"),
            );
            let out = out.trim_end_matches('\n');
            (!out.is_empty()).then(|| out.to_owned())
        },
    )
    .await;
}

/// A flag Python creates is visible to Rust at once, and a Rust update keeps Python's meta.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_updates_keep_what_python_wrote() {
    let Some(redis) = flipper_testkit::redis() else {
        return;
    };
    let url = redis.url().to_owned();
    let ns = flipper_testkit::unique_name("mixed");
    let Some(mut py) =
        Python::start(j!({"op": "open", "kind": "redis", "url": url, "base_key": ns}))
    else {
        return;
    };
    py.ok(j!({"op": "create", "name": "f", "client_data": {"a": 1}}));
    py.ok(j!({"op": "add_condition", "name": "f", "checks": {"age__gte": 18}}));
    let store = flipper::store::open(&format!("{url}/?base_key={ns}")).unwrap();
    store.set("f", true).await.unwrap();
    let client = rust_client(Arc::clone(&store));
    client
        .add_condition("f", Condition::new().eq("plan", "pro"))
        .await
        .unwrap();
    let meta = py.ok(j!({"op": "get_meta", "name": "f"}));
    assert_eq!(meta["client_data"], j!({"a": 1}));
    assert_eq!(meta["conditions"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        py.ok(j!({"op": "is_enabled", "name": "f", "checks": {"age": 20, "plan": "pro"}})),
        j!(true)
    );
}
