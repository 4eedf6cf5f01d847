//! What the Python interoperability tests share (`interop.rs`, `s3_store/python.rs`,
//! `consul_store/python.rs`): flipper-client API steps run through the Rust client, the
//! contexts both sides evaluate, and the comparison of stored bytes.

#![allow(dead_code)]

use std::sync::Arc;

use flipper::FeatureFlagClient;
use flipper::store::Store;
use flipper_core::bucketing::Bucketer;
use flipper_core::condition::Condition;
use flipper_core::eval::FixedEnv;
use flipper_core::{Object, Value, json};
use serde_json::json as j;

/// The frozen clock of both sides (`created_date` of every flag).
pub(crate) const CREATED: i64 = 1_700_000_000;

/// A serde value as flipper's.
pub(crate) fn value(v: &serde_json::Value) -> Value {
    json::parse(&v.to_string()).expect("JSON from serde is JSON")
}

/// A serde object as flipper's.
pub(crate) fn object(v: &serde_json::Value) -> Object {
    match value(v) {
        Value::Object(o) => *o,
        other => panic!("not an object: {other:?}"),
    }
}

/// The contexts both sides evaluate every flag for: five fixed ones, then `users` users with
/// conditions' variables, and (with `string_users`) as many string ids.
pub(crate) fn contexts(users: i64, string_users: bool) -> Vec<serde_json::Value> {
    let mut contexts = vec![
        j!({}),
        j!({"age": 10}),
        j!({"plan": "free", "is_admin": true}),
        j!({"is_admin": true, "plan": "pro", "age": 30}),
        j!({"is_admin": false, "plan": "enterprise", "age": 18, "user_id": 7}),
    ];
    for user_id in 0..users {
        contexts
            .push(j!({"is_admin": true, "plan": "pro", "age": 20 + user_id, "user_id": user_id}));
        if string_users {
            contexts.push(j!({"user_id": format!("user-{user_id}"), "age": 40}));
        }
    }
    contexts
}

/// The flags the writer builds, as (op, args) steps, identical for Python and Rust; `plain` is
/// the name of the flag with nothing but a name.
pub(crate) fn script(plain: &str) -> Vec<serde_json::Value> {
    let mut steps = new_dashboard();
    steps.extend([
        j!({"op": "create", "name": "hashed", "is_enabled": true}),
        j!({"op": "set_bucketer", "name": "hashed", "bucketer": {
            "type": "ConsistentHashPercentageBucketer", "key_whitelist": ["user_id", "age"],
            "percentage": {"type": "Percentage", "value": 0.3}}}),
        j!({"op": "create", "name": plain}),
        j!({"op": "create", "name": "data", "client_data": {
            "ratio": 0.1, "big": u64::MAX, "unicode": "é😀", "list": [1, 2.5, null]}}),
        j!({"op": "set_client_data", "name": "data", "client_data": {"owner": "team-y", "ratio": 2}}),
        j!({"op": "create", "name": "gone", "is_enabled": true}),
        j!({"op": "destroy", "name": "gone"}),
        j!({"op": "create", "name": "ops", "is_enabled": true}),
        j!({"op": "add_condition", "name": "ops", "checks": {
            "age__lt": 65, "plan__ne": "free", "user_id__not_in": [1, 2, 3]}}),
        j!({"op": "disable", "name": "ops"}),
        j!({"op": "enable", "name": "ops"}),
    ]);
    steps
}

/// The steps that build `new_dashboard`: client data, two conditions, a 50 % consistent hash
/// on `user_id`.
pub(crate) fn new_dashboard() -> Vec<serde_json::Value> {
    vec![
        j!({"op": "create", "name": "new_dashboard", "client_data": {"owner": "team-x"}}),
        j!({"op": "enable", "name": "new_dashboard"}),
        j!({"op": "add_condition", "name": "new_dashboard",
            "checks": {"is_admin": true, "plan__in": ["pro", "enterprise"]}}),
        j!({"op": "add_condition", "name": "new_dashboard", "checks": {"age__gte": 18}}),
        j!({"op": "set_bucketer", "name": "new_dashboard", "bucketer": {
            "type": "ConsistentHashPercentageBucketer", "key_whitelist": ["user_id"],
            "percentage": {"type": "Percentage", "value": 0.5}}}),
    ]
}

/// Asserts two stored forms of `name` are the same bytes. flipper-client keeps a bucketer's
/// `key_whitelist` in a Python `set`, so a whitelist of several keys is written in an order
/// that changes from process to process (spec §1.5): for those, the order is ignored.
pub(crate) fn assert_same_bytes(name: &str, ours: Option<&str>, theirs: Option<&str>) {
    fn sorted_whitelist(text: &str) -> (serde_json::Value, usize) {
        let mut v: serde_json::Value = serde_json::from_str(text).expect("stored JSON");
        let mut keys = 0;
        if let Some(list) = v["meta"]["bucketer"]
            .get_mut("key_whitelist")
            .and_then(serde_json::Value::as_array_mut)
        {
            list.sort_by_key(ToString::to_string);
            keys = list.len();
        }
        (v, keys)
    }
    let (Some(ours), Some(theirs)) = (ours, theirs) else {
        assert_eq!(ours, theirs, "{name}");
        return;
    };
    let (a, keys) = sorted_whitelist(ours);
    if keys > 1 {
        assert_eq!(
            a,
            sorted_whitelist(theirs).0,
            "{name} (whitelist order aside)"
        );
        assert_eq!(ours.len(), theirs.len(), "{name}");
    } else {
        assert_eq!(ours, theirs, "stored bytes of {name}");
    }
}

/// Runs one step (of [`script`] or a test's own) through the Rust client.
pub(crate) async fn rust_step(client: &FeatureFlagClient, step: &serde_json::Value) {
    let name = step["name"].as_str().expect("a name");
    let done = match step["op"].as_str().expect("an op") {
        "create" => client
            .create(
                name,
                step["is_enabled"].as_bool().unwrap_or(false),
                step.get("client_data").map(object),
            )
            .await
            .map(drop),
        "enable" => client.enable(name).await,
        "disable" => client.disable(name).await,
        "destroy" => client.destroy(name).await,
        "add_condition" => {
            let condition =
                Condition::from_kwargs(object(&step["checks"])).expect("valid condition keys");
            client.add_condition(name, condition).await
        }
        "set_bucketer" => {
            let bucketer = Bucketer::from_value(&value(&step["bucketer"])).expect("a bucketer");
            client.set_bucketer(name, bucketer).await
        }
        "set_client_data" => {
            client
                .set_client_data(name, object(&step["client_data"]))
                .await
        }
        other => panic!("unknown step {other}"),
    };
    done.unwrap_or_else(|e| panic!("rust {step}: {e}"));
}

/// The Rust client on `store`, its clock frozen at [`CREATED`] as Python's is (no flag here
/// draws randomness).
pub(crate) fn rust_client(store: Arc<dyn Store>) -> FeatureFlagClient {
    FeatureFlagClient::with_env(
        store,
        FixedEnv {
            now: CREATED as f64,
            random: 0.5,
        },
    )
}
