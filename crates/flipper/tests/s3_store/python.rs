//! Rust and the real Python flipper-client 1.3.2 (`S3FeatureFlagStore` on boto3, pointed at
//! moto) sharing buckets: flags one side writes, the other reads as identical items and
//! evaluates identically; the same operations from both sides store identical objects; live
//! flags follow a Python process's changes by polling.
//!
//! The Python side is `tests/python/interop.py`. Without python3, flipper-client or boto3 the
//! tests skip with a loud message, unless `FLIPPER_TEST_REQUIRE_SERVICES=1`.

use std::sync::Arc;
use std::time::Duration;

use flipper::Checks;
use flipper::live::{LiveFlags, LiveOptions};
use flipper::store::{S3Config, S3Store, Store, StoreExt};
use flipper_core::condition::Condition;
use flipper_testkit::MotoServer;
use serde_json::json as j;

use super::script::{CREATED, assert_same_bytes, contexts, object, rust_client, rust_step, script};

/// The flipper-client process, on one bucket (`tests/python/interop.py`).
struct Python(flipper_testkit::PythonProcess);

impl Python {
    fn start(moto: &MotoServer, bucket: &str) -> Option<Self> {
        let script = std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/python/interop.py"
        ));
        let mut py = flipper_testkit::PythonProcess::start(script, &[], &["flipper", "boto3"])?;
        py.ok(
            j!({"op": "open", "kind": "s3", "bucket": bucket, "endpoint_url": moto.url(),
            "region": MotoServer::REGION, "access_key_id": MotoServer::ACCESS_KEY_ID,
            "secret_access_key": MotoServer::SECRET_ACCESS_KEY}),
        );
        py.ok(j!({"op": "freeze", "now": CREATED}));
        Some(Self(py))
    }

    fn ok(&mut self, cmd: serde_json::Value) -> serde_json::Value {
        self.0.ok(cmd)
    }
}

const FLAGS: [&str; 5] = ["new_dashboard", "hashed", "dir/nested", "data", "ops"];

/// What the Rust side reads and answers equals what Python reads and answers.
async fn assert_same_view(py: &mut Python, store: &Arc<dyn Store>) {
    let client = rust_client(Arc::clone(store));
    for name in FLAGS {
        let rust = store
            .get(name)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("rust cannot see {name}"))
            .item
            .serialize();
        let python = py.ok(j!({"op": "raw", "name": name}));
        let python = python
            .as_str()
            .unwrap_or_else(|| panic!("python cannot see {name}"));
        assert_same_bytes(name, Some(&String::from_utf8(rust).unwrap()), Some(python));
        for context in contexts(16, true) {
            let python = py.ok(j!({"op": "is_enabled", "name": name, "checks": context}));
            let rust = client
                .is_enabled(name, &Checks::from(object(&context)))
                .await;
            assert_eq!(Some(rust), python.as_bool(), "{name} {context}");
        }
    }
    assert!(store.get("gone").await.unwrap().is_none());
    assert_eq!(
        py.ok(j!({"op": "raw", "name": "gone"})),
        serde_json::Value::Null
    );
    // Both list in key order (S3's listing order is UTF-8 byte order, as Rust sorts).
    let python: Vec<String> = serde_json::from_value(py.ok(j!({"op": "list"}))).unwrap();
    let rust: Vec<String> = store
        .items(None, 0)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.feature_name)
        .collect();
    assert_eq!(rust, python);
    let python: Vec<String> =
        serde_json::from_value(py.ok(j!({"op": "list", "limit": 2, "offset": 1}))).unwrap();
    let rust: Vec<String> = store
        .items(Some(2), 1)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.feature_name)
        .collect();
    assert_eq!(rust, python, "offset and limit count the same objects");
}

/// The raw object of `name` in `bucket`, as text.
async fn raw_text(moto: &MotoServer, bucket: &str, name: &str) -> String {
    let s3 = super::raw(&super::config(moto, bucket));
    let bytes = super::raw_get(&s3, name).await.expect("stored");
    String::from_utf8(bytes).expect("ASCII")
}

fn store_on(moto: &MotoServer, bucket: &str) -> Arc<dyn Store> {
    Arc::new(S3Store::new(super::config(moto, bucket)).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_and_rust_share_a_bucket() {
    let Some(moto) = flipper_testkit::moto() else {
        return;
    };
    // Python writes into its bucket; Rust reads it.
    let py_bucket = moto.create_bucket();
    let Some(mut py) = Python::start(moto, &py_bucket) else {
        return;
    };
    for step in script("dir/nested") {
        py.ok(step);
    }
    assert_same_view(&mut py, &store_on(moto, &py_bucket)).await;

    // Rust writes into its bucket; Python reads it.
    let rust_bucket = moto.create_bucket();
    let store = store_on(moto, &rust_bucket);
    let client = rust_client(Arc::clone(&store));
    for step in script("dir/nested") {
        rust_step(&client, &step).await;
    }
    let Some(mut py) = Python::start(moto, &rust_bucket) else {
        return;
    };
    assert_same_view(&mut py, &store).await;

    // The same steps stored the same objects on both sides.
    for name in FLAGS {
        let ours = raw_text(moto, &rust_bucket, name).await;
        let theirs = raw_text(moto, &py_bucket, name).await;
        assert_same_bytes(name, Some(&ours), Some(&theirs));
    }
}

/// A flag a Python process changes reaches Rust's live flags (by polling) and evaluates as
/// Python evaluates it; a Rust update keeps what Python wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_flags_follow_a_python_writer() {
    let Some(moto) = flipper_testkit::moto() else {
        return;
    };
    let bucket = moto.create_bucket();
    let Some(mut py) = Python::start(moto, &bucket) else {
        return;
    };
    let config: S3Config = super::config(moto, &bucket);
    let store: Arc<dyn Store> = Arc::new(S3Store::new(config).unwrap());
    let live = LiveFlags::start(Arc::clone(&store), LiveOptions::default()).await;
    assert!(live.is_initialized(), "{:?}", live.status());

    py.ok(j!({"op": "create", "name": "f", "client_data": {"a": 1}}));
    py.ok(j!({"op": "add_condition", "name": "f", "checks": {"age__gte": 18}}));
    py.ok(j!({"op": "enable", "name": "f"}));
    let adult = Checks::new().with("age", 20);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !live.is_enabled("f", &adult) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "Python's flag never arrived"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for context in contexts(16, true) {
        let python = py.ok(j!({"op": "is_enabled", "name": "f", "checks": context}));
        let rust = live.is_enabled("f", &Checks::from(object(&context)));
        assert_eq!(Some(rust), python.as_bool(), "{context}");
    }

    // Rust adds a condition with a compare-and-swap; Python sees both conditions.
    rust_client(Arc::clone(&store))
        .add_condition("f", Condition::new().eq("plan", "pro"))
        .await
        .unwrap();
    let meta = py.ok(j!({"op": "get_meta", "name": "f"}));
    assert_eq!(meta["client_data"], j!({"a": 1}));
    assert_eq!(meta["conditions"].as_array().map(Vec::len), Some(2));

    // Python deletes it; the live flags drop it.
    py.ok(j!({"op": "destroy", "name": "f"}));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while live.get("f").is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "Python's delete never arrived"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
