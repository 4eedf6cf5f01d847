//! Port of flipper-client's `tests/test_flag.py` (41 upstream cases, 41 Rust tests).
//!
//! `FeatureFlag(name, client)` is [`FeatureFlagClient::get`] (a handle that reads nothing).
//! Each test gets a fresh [`MemoryStore`] and a client with a [`FixedEnv`] (pinned clock and
//! random draw). Upstream's mocks are replaced by observing real behaviour:
//! * a mock bucketer is a random 50% bucketer with the draw pinned (0.4 in, 0.6 out), or a
//!   consistent-hash bucketer with the spec's §4.4 scores;
//! * a mock `store.set_meta` is the store's change stream ([`Store::watch`]), which reports
//!   every write with the flag written;
//! * a mock client (`client.enable.assert_called_once_with(name)`) is a real client holding a
//!   second flag: the handle must act on its own flag and leave the other alone.

use std::sync::Arc;

use flipper::store::{Change, ChangeStream, MemoryStore, Store, StoreExt};
use flipper::{
    Bucketer, Checks, Condition, Error, FeatureFlag, FeatureFlagClient, Item, Meta, Object,
    Percentage, Value,
};
use flipper_core::eval::FixedEnv;
use futures_util::{FutureExt, StreamExt};

/// The pinned clock (Unix seconds).
const NOW: i64 = 1_700_000_000;

/// `BaseTest.setUp`: a name, a memory store, a client and the flag handle.
struct Fixture {
    name: String,
    store: Arc<MemoryStore>,
    client: FeatureFlagClient,
    flag: FeatureFlag,
}

fn setup() -> Fixture {
    setup_with_random(0.5)
}

fn setup_with_random(random: f64) -> Fixture {
    let name = txt();
    let store = Arc::new(MemoryStore::new());
    let client = FeatureFlagClient::with_env(
        store.clone(),
        FixedEnv {
            now: NOW as f64,
            random,
        },
    );
    let flag = client.get(&name);
    Fixture {
        name,
        store,
        client,
        flag,
    }
}

/// Upstream's `uuid4().hex`.
fn txt() -> String {
    format!("{:032x}", fastrand::u128(..))
}

fn no_checks() -> Checks {
    Checks::new()
}

fn object<K: Into<String>, V: Into<Value>>(pairs: impl IntoIterator<Item = (K, V)>) -> Object {
    pairs
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect()
}

fn assert_flag_missing<T: std::fmt::Debug>(result: Result<T, Error>, name: &str) {
    match result {
        Err(Error::FlagDoesNotExist { name: n }) => assert_eq!(n, name),
        other => panic!("expected FlagDoesNotExist for {name}, got {other:?}"),
    }
}

async fn stored(f: &Fixture, name: &str) -> Option<Item> {
    f.store.get(name).await.unwrap().map(|v| v.item)
}

/// The single flag written since `watch` was called.
fn single_write(changes: &mut ChangeStream) -> Item {
    let mut w = Vec::new();
    while let Some(Some(change)) = changes.next().now_or_never() {
        w.push(change);
    }
    assert_eq!(w.len(), 1, "exactly one write: {w:?}");
    match w.pop() {
        Some(Change::Put { item, .. }) => item,
        other => panic!("expected a put, got {other:?}"),
    }
}

mod test_name {
    use super::*;

    #[test]
    fn test_name_gets_set() {
        let f = setup();
        assert_eq!(f.flag.name(), f.name);
    }
}

mod test_is_enabled {
    use super::*;

    #[tokio::test]
    async fn test_returns_true_when_feature_enabled() {
        let f = setup();
        f.store.create(&f.name, false, None).await.unwrap();
        f.flag.enable().await.unwrap();
        assert!(f.flag.is_enabled(&no_checks()).await);
    }

    #[tokio::test]
    async fn test_returns_false_when_feature_disabled() {
        let f = setup();
        f.store.create(&f.name, false, None).await.unwrap();
        f.flag.enable().await.unwrap();
        f.flag.disable().await.unwrap();
        assert!(!f.flag.is_enabled(&no_checks()).await);
    }

    #[tokio::test]
    async fn test_returns_false_when_flag_does_not_exist() {
        let f = setup();
        assert!(!f.flag.is_enabled(&no_checks()).await);
        assert!(f.flag.is_enabled_or(&no_checks(), true).await);
    }

    #[tokio::test]
    async fn test_returns_true_if_condition_specifies() {
        let f = setup();
        f.store.create(&f.name, true, None).await.unwrap();
        f.flag
            .add_condition(Condition::new().eq("foo", true))
            .await
            .unwrap();
        assert!(f.flag.is_enabled(&Checks::new().with("foo", true)).await);
    }

    #[tokio::test]
    async fn test_returns_false_if_condition_specifies() {
        let f = setup();
        f.store.create(&f.name, true, None).await.unwrap();
        f.flag
            .add_condition(Condition::new().eq("foo", true))
            .await
            .unwrap();
        assert!(!f.flag.is_enabled(&Checks::new().with("foo", false)).await);
    }

    #[tokio::test]
    async fn test_returns_false_if_feature_disabled_despite_condition() {
        let f = setup();
        f.store.create(&f.name, false, None).await.unwrap();
        f.flag
            .add_condition(Condition::new().eq("foo", true))
            .await
            .unwrap();
        assert!(!f.flag.is_enabled(&Checks::new().with("foo", true)).await);
    }

    #[tokio::test]
    async fn test_returns_false_if_bucketer_check_returns_false() {
        let f = setup_with_random(0.6);
        f.store.create(&f.name, true, None).await.unwrap();
        f.flag
            .set_bucketer(Bucketer::percentage(Percentage::fixed(0.5)))
            .await
            .unwrap();
        assert!(!f.flag.is_enabled(&no_checks()).await);
    }

    #[tokio::test]
    async fn test_returns_true_if_bucketer_check_returns_true() {
        let f = setup_with_random(0.4);
        f.store.create(&f.name, true, None).await.unwrap();
        f.flag
            .set_bucketer(Bucketer::percentage(Percentage::fixed(0.5)))
            .await
            .unwrap();
        assert!(f.flag.is_enabled(&no_checks()).await);
    }

    #[tokio::test]
    async fn test_forwards_conditions_to_bucketer() {
        // No checks score 0.32, `foo=True` scores 0.43: at 40% the answer tells which checks
        // reached the bucketer.
        let f = setup();
        f.store.create(&f.name, true, None).await.unwrap();
        f.flag
            .set_bucketer(Bucketer::consistent_hash(
                Percentage::fixed(0.4),
                Vec::<String>::new(),
            ))
            .await
            .unwrap();
        assert!(!f.flag.is_enabled(&Checks::new().with("foo", true)).await);
        assert!(f.flag.is_enabled(&no_checks()).await);
    }
}

mod test_exists {
    use super::*;

    #[tokio::test]
    async fn test_when_object_does_not_exist_returns_false() {
        let f = setup();
        assert!(!f.flag.exists().await.unwrap());
    }

    #[tokio::test]
    async fn test_when_object_does_exist_returns_true() {
        let f = setup();
        f.store.create(&f.name, false, None).await.unwrap();
        assert!(f.flag.exists().await.unwrap());
    }
}

mod test_destroy {
    use super::*;

    #[tokio::test]
    async fn test_object_remains_instance_of_flag_class() {
        let f = setup();
        f.store.create(&f.name, false, None).await.unwrap();
        f.flag.destroy().await.unwrap();
        // The handle outlives the flag and still works.
        assert_eq!(f.flag.name(), f.name);
        assert!(!f.flag.exists().await.unwrap());
    }

    #[tokio::test]
    async fn test_status_switches_to_disabled() {
        let f = setup();
        f.store.create(&f.name, false, None).await.unwrap();
        f.flag.enable().await.unwrap();
        assert!(f.flag.is_enabled(&no_checks()).await);
        f.flag.destroy().await.unwrap();
        assert!(!f.flag.is_enabled(&no_checks()).await);
    }

    #[tokio::test]
    async fn test_client_is_called_with_correct_args() {
        let f = setup();
        let other = txt();
        f.store.create(&f.name, false, None).await.unwrap();
        f.store.create(&other, false, None).await.unwrap();
        f.flag.destroy().await.unwrap();
        assert_eq!(stored(&f, &f.name).await, None);
        assert!(stored(&f, &other).await.is_some(), "only its own flag");
    }

    #[tokio::test]
    async fn test_raises_for_nonexistent_flag() {
        let f = setup();
        assert_flag_missing(f.flag.destroy().await, &f.name);
    }
}

mod test_enable {
    use super::*;

    #[tokio::test]
    async fn test_is_enabled_will_be_true() {
        let f = setup();
        f.store.create(&f.name, false, None).await.unwrap();
        f.flag.enable().await.unwrap();
        assert!(f.flag.is_enabled(&no_checks()).await);
    }

    #[tokio::test]
    async fn test_is_enabled_will_be_true_if_disable_was_called_earlier() {
        let f = setup();
        f.store.create(&f.name, false, None).await.unwrap();
        f.flag.disable().await.unwrap();
        f.flag.enable().await.unwrap();
        assert!(f.flag.is_enabled(&no_checks()).await);
    }

    #[tokio::test]
    async fn test_client_is_called_with_correct_args() {
        let f = setup();
        let other = txt();
        f.store.create(&f.name, false, None).await.unwrap();
        f.store.create(&other, false, None).await.unwrap();
        f.flag.enable().await.unwrap();
        assert!(f.client.is_enabled(&f.name, &no_checks()).await);
        assert!(!f.client.is_enabled(&other, &no_checks()).await);
    }

    #[tokio::test]
    async fn test_raises_for_nonexistent_flag() {
        let f = setup();
        assert_flag_missing(f.flag.enable().await, &f.name);
    }
}

mod test_disable {
    use super::*;

    #[tokio::test]
    async fn test_is_enabled_will_be_false() {
        let f = setup();
        f.store.create(&f.name, true, None).await.unwrap();
        f.flag.disable().await.unwrap();
        assert!(!f.flag.is_enabled(&no_checks()).await);
    }

    #[tokio::test]
    async fn test_is_enabled_will_be_false_if_enable_was_called_earlier() {
        let f = setup();
        f.store.create(&f.name, false, None).await.unwrap();
        f.flag.enable().await.unwrap();
        f.flag.disable().await.unwrap();
        assert!(!f.flag.is_enabled(&no_checks()).await);
    }

    #[tokio::test]
    async fn test_client_is_called_with_correct_args() {
        let f = setup();
        let other = txt();
        f.store.create(&f.name, true, None).await.unwrap();
        f.store.create(&other, true, None).await.unwrap();
        f.flag.disable().await.unwrap();
        assert!(!f.client.is_enabled(&f.name, &no_checks()).await);
        assert!(f.client.is_enabled(&other, &no_checks()).await);
    }

    #[tokio::test]
    async fn test_raises_for_nonexistent_flag() {
        let f = setup();
        assert_flag_missing(f.flag.disable().await, &f.name);
    }
}

mod test_set_client_data {
    use super::*;

    /// Creates the flag, then watches the store while `flag.set_client_data` runs; returns
    /// the flag written (upstream's `set_meta` call), checking there was exactly one write.
    async fn written_by_set_client_data(f: &Fixture, data: &Object) -> Item {
        f.store.create_at(&f.name, false, None, NOW).await.unwrap();
        let mut changes = f.store.watch().expect("the memory store can be watched");
        f.flag.set_client_data(data.clone()).await.unwrap();
        single_write(&mut changes)
    }

    #[tokio::test]
    async fn test_calls_backend_with_correct_feature_name() {
        let f = setup();
        let written = written_by_set_client_data(&f, &object([(txt(), txt())])).await;
        assert_eq!(written.feature_name, f.name);
    }

    #[tokio::test]
    async fn test_calls_backend_with_instance_of_meta() {
        let f = setup();
        let data = object([(txt(), txt())]);
        let written = written_by_set_client_data(&f, &data).await;
        let mut expected = Meta::new(NOW);
        expected.client_data = Value::from(data);
        assert_eq!(written.meta, expected);
    }

    #[tokio::test]
    async fn test_calls_backend_with_correct_meta_client_data() {
        let f = setup();
        let data = object([(txt(), txt())]);
        let written = written_by_set_client_data(&f, &data).await;
        assert_eq!(written.meta.client_data, Value::from(data));
    }

    #[tokio::test]
    async fn test_calls_backend_with_non_null_meta_created_date() {
        let f = setup();
        let written = written_by_set_client_data(&f, &object([(txt(), txt())])).await;
        assert_eq!(written.meta.created_date_secs(), Some(NOW));
    }

    #[tokio::test]
    async fn test_calls_backend_exactly_once() {
        let f = setup();
        let data = object([(txt(), txt())]);
        // `single_write` fails unless the store saw exactly one write.
        let written = written_by_set_client_data(&f, &data).await;
        assert_eq!(written.meta.client_data, Value::from(data));
    }

    #[tokio::test]
    async fn test_merges_new_values_with_existing() {
        let f = setup();
        let existing = object([("existing_key", txt())]);
        f.store
            .create(&f.name, false, Some(existing.clone()))
            .await
            .unwrap();
        let new = object([("new_key", txt())]);
        f.flag.set_client_data(new.clone()).await.unwrap();
        let mut merged = existing;
        merged.extend(new);
        assert_eq!(
            stored(&f, &f.name).await.unwrap().meta.client_data,
            Value::from(merged)
        );
    }

    #[tokio::test]
    async fn test_can_override_existing_values() {
        let f = setup();
        let existing = object([("existing_key", txt())]);
        f.store
            .create(&f.name, false, Some(existing.clone()))
            .await
            .unwrap();
        let new = object([("existing_key", txt()), ("new_key", txt())]);
        f.flag.set_client_data(new.clone()).await.unwrap();
        assert_eq!(
            stored(&f, &f.name).await.unwrap().meta.client_data,
            Value::from(new)
        );
        // Deviation: no dict aliasing (Python's memory store would have merged into the
        // caller's `existing_data` dict too).
        assert_eq!(existing.len(), 1);
    }

    #[tokio::test]
    async fn test_raises_for_nonexistent_flag() {
        let f = setup();
        assert_flag_missing(
            f.flag.set_client_data(object([(txt(), txt())])).await,
            &f.name,
        );
    }
}

mod test_get_client_data {
    use super::*;

    #[tokio::test]
    async fn test_gets_expected_key_value_pairs() {
        let f = setup();
        let data = object([(txt(), txt())]);
        f.store
            .create(&f.name, false, Some(data.clone()))
            .await
            .unwrap();
        assert_eq!(f.flag.get_client_data().await.unwrap(), Value::from(data));
    }

    #[tokio::test]
    async fn test_raises_for_nonexistent_flag() {
        let f = setup();
        assert_flag_missing(f.flag.get_client_data().await, &f.name);
    }
}

mod test_get_meta {
    use super::*;

    #[tokio::test]
    async fn test_includes_created_date() {
        let f = setup();
        f.store
            .create_at(&f.name, false, Some(object([(txt(), txt())])), NOW)
            .await
            .unwrap();
        let meta = f.flag.get_meta().await.unwrap();
        assert_eq!(meta.created_date_secs(), Some(NOW));
    }

    #[tokio::test]
    async fn test_includes_client_data() {
        let f = setup();
        let data = object([(txt(), txt())]);
        f.store
            .create(&f.name, false, Some(data.clone()))
            .await
            .unwrap();
        assert_eq!(
            f.flag.get_meta().await.unwrap().client_data,
            Value::from(data)
        );
    }

    #[tokio::test]
    async fn test_raises_for_nonexistent_flag() {
        let f = setup();
        assert_flag_missing(f.flag.get_meta().await, &f.name);
    }
}

mod test_add_condition {
    use super::*;

    #[tokio::test]
    async fn test_condition_gets_included_in_meta() {
        let f = setup();
        let condition = Condition::new().eq(&txt(), true);
        f.store.create(&f.name, false, None).await.unwrap();
        f.flag.add_condition(condition.clone()).await.unwrap();
        let meta = f.flag.get_meta().await.unwrap();
        assert!(meta.conditions.contains(&condition));
        let stored = meta.to_value();
        let stored = stored.as_object().unwrap()["conditions"].as_list().unwrap();
        assert!(stored.contains(&condition.to_value()));
    }

    #[tokio::test]
    async fn test_condition_gets_appended_to_meta() {
        let f = setup();
        let condition = Condition::new().eq(&txt(), true);
        f.store.create(&f.name, false, None).await.unwrap();
        f.flag.add_condition(condition.clone()).await.unwrap();
        f.flag.add_condition(condition.clone()).await.unwrap();
        let meta = f.flag.get_meta().await.unwrap();
        assert_eq!(meta.conditions, [condition.clone(), condition]);
    }
}

mod test_set_bucketer {
    use super::*;

    #[tokio::test]
    async fn test_bucketer_gets_included_in_meta() {
        let f = setup();
        let bucketer = Bucketer::percentage(Percentage::fixed(0.1));
        f.store.create(&f.name, false, None).await.unwrap();
        f.flag.set_bucketer(bucketer.clone()).await.unwrap();
        let meta = f.flag.get_meta().await.unwrap();
        assert_eq!(meta.bucketer.to_value(), bucketer.to_value());
    }
}

mod test_set_conditions {
    use super::*;

    #[tokio::test]
    async fn test_overrides_previous_conditions() {
        let f = setup();
        f.store.create(&f.name, false, None).await.unwrap();
        f.flag
            .add_condition(Condition::new().eq("value", true))
            .await
            .unwrap();
        f.flag
            .set_conditions(vec![
                Condition::new().eq("new_value", true),
                Condition::new().is_in("id", vec![1, 2]),
            ])
            .await
            .unwrap();
        let meta = f.flag.get_meta().await.unwrap();
        assert_eq!(
            flipper_core::json::to_string(&meta.to_value().as_object().unwrap()["conditions"]),
            r#"[{"new_value": [{"variable": "new_value", "value": true, "operator": null}]}, {"id": [{"variable": "id", "value": [1, 2], "operator": "in"}]}]"#
        );
    }
}
