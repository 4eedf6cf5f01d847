//! Live flags evaluate exactly as the store-backed client on every line of
//! `testdata/evaluation.jsonl` (flipper-client 1.3.2's answers): same answer, same reason.

use std::sync::Arc;

use flipper::live::LiveFlags;
use flipper::store::{MemoryStore, Store};
use flipper::{Checks, FeatureFlagClient, Item, Value};
use flipper_core::eval::{FixedEnv, Reason};
use flipper_core::json;

use crate::common::quick;

/// The clock the evaluation vectors were generated with.
const ENV: FixedEnv = FixedEnv {
    now: 1_700_000_000.0,
    random: 0.999_999,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_vector_evaluates_as_the_client_does() {
    let path = format!(
        "{}/../../testdata/evaluation.jsonl",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let live = LiveFlags::start(Arc::clone(&store), quick().env(ENV)).await;
    let writer = live.client();
    let client = FeatureFlagClient::with_env(store, ENV);
    let (mut lines, mut errors) = (0, 0);
    let mut handles = std::collections::HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line: serde_json::Value = serde_json::from_str(line).unwrap();
        let item = line["item"]
            .as_str()
            .map(|t| Item::deserialize(t.as_bytes()).unwrap());
        let checks = match json::parse(line["checks"].as_str().unwrap()).unwrap() {
            Value::Object(o) => Checks::from(*o),
            other => panic!("checks must be an object: {other:?}"),
        };
        let default = line["default"].as_bool().unwrap();
        let name = match &item {
            Some(item) => {
                writer.store().put(item, Default::default()).await.unwrap();
                item.feature_name.clone()
            }
            None => {
                writer.store().delete("absent").await.unwrap();
                "absent".to_owned()
            }
        };
        // Read your writes: no waiting.
        let got = live.evaluate(&name, &checks, default);
        let want = client.evaluate(&name, &checks, default).await.unwrap();
        assert_eq!(got, want, "line {}", i + 1);
        assert_eq!(
            live.is_enabled_or(&name, &checks, default),
            want.enabled,
            "line {}",
            i + 1
        );
        // A flag handle, kept across lines while flags come and go around its flag.
        let handle = handles
            .entry(name.clone())
            .or_insert_with(|| live.flag(&name));
        assert_eq!(handle.evaluate(&checks, default), want, "line {}", i + 1);
        assert_eq!(
            handle.is_enabled_or(&checks, default),
            want.enabled,
            "line {}",
            i + 1
        );
        match &line["result"] {
            serde_json::Value::Bool(result) => assert_eq!(got.enabled, *result, "line {}", i + 1),
            _ => {
                errors += 1;
                assert!(matches!(got.reason, Reason::Error(_)), "line {}", i + 1);
            }
        }
        lines += 1;
    }
    assert_eq!((lines, errors), (5000, 642));
    // And all flags at once agree with one at a time.
    let snapshot = live.snapshot();
    let checks = Checks::new().with("user_id", 1);
    for (name, e) in snapshot.evaluate_all(&checks) {
        assert_eq!(e, live.evaluate(name, &checks, false), "{name}");
    }
}
