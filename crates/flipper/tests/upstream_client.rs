//! Port of flipper-client's `tests/test_client.py` (62 upstream cases, 62 Rust tests).
//!
//! Not ported here, ported with their stores (later issues): `tests/contrib/test_redis.py`
//! (22), `tests/contrib/test_s3.py` (23), `tests/contrib/test_postgresql.py` (16),
//! `tests/contrib/test_cached.py` (24), `tests/contrib/test_replicated.py` (11),
//! `tests/contrib/test_thrift.py` (11). Not ported at all: `tests/contrib/util/test_iter.py`
//! (5; there is no `batchify` here).
//!
//! Translation: each test gets a fresh [`MemoryStore`] and a client over it with a
//! [`FixedEnv`] (pinned clock, so `created_date` is known, and pinned random draw). Where
//! upstream swaps in a `MagicMock`:
//! * a mock bucketer becomes a real bucketer whose answer is known: a random 50% bucketer with
//!   the draw pinned (0.4 is in, 0.6 is out), or a consistent-hash bucketer with the spec's
//!   §4.4 scores;
//! * a mock `store.set_meta` becomes the store's change stream ([`Store::watch`]): every write
//!   the client makes shows up there with the flag it wrote, so "called once, with this name
//!   and this meta" is observed on the real store;
//! * a mock `store.list` becomes a real listing whose page can only be right if `limit` and
//!   `offset` were passed through;
//! * a mock event listener becomes a closure recording the [`Event`]s.

use std::sync::{Arc, Mutex};

use flipper::events::{
    Event, EventEmitter, EventSubscriber, EventType, FlipperEventEmitter, Payload,
};
use flipper::store::{Change, ChangeStream, MemoryStore, Store, StoreExt};
use flipper::{
    Bucketer, Checks, Condition, Error, FeatureFlagClient, Meta, Object, Percentage, Reason, Value,
};
use flipper_core::eval::FixedEnv;
use futures_util::{FutureExt, StreamExt};

/// The pinned clock (Unix seconds): every flag's `created_date`.
const NOW: i64 = 1_700_000_000;

struct Fixture {
    store: Arc<MemoryStore>,
    client: FeatureFlagClient,
}

/// `BaseTest.setUp`: a memory store and a client over it. The random draw is 0.5.
fn setup() -> Fixture {
    setup_with_random(0.5)
}

fn setup_with_random(random: f64) -> Fixture {
    let store = Arc::new(MemoryStore::new());
    let client = FeatureFlagClient::with_env(
        store.clone(),
        FixedEnv {
            now: NOW as f64,
            random,
        },
    );
    Fixture { store, client }
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

/// `client.events = FlipperEventEmitter(); events.on(event_type, f=listener)`.
fn listen(client: &FeatureFlagClient, event_type: EventType) -> Arc<Mutex<Vec<Event>>> {
    let events = FlipperEventEmitter::new();
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&log);
    events.on(
        event_type,
        Arc::new(move |e: &Event| sink.lock().unwrap().push(e.clone())),
    );
    client.set_events(Arc::new(events));
    log
}

fn calls(log: &Arc<Mutex<Vec<Event>>>) -> Vec<Event> {
    log.lock().unwrap().clone()
}

/// The writes the store has reported since `watch` was called.
fn writes(changes: &mut ChangeStream) -> Vec<Change> {
    let mut out = Vec::new();
    while let Some(Some(change)) = changes.next().now_or_never() {
        out.push(change);
    }
    out
}

/// The single flag written since `watch` was called (upstream's `set_meta.call_args`, with
/// `call_count == 1`).
fn single_write(changes: &mut ChangeStream) -> flipper::Item {
    let mut w = writes(changes);
    assert_eq!(w.len(), 1, "exactly one write: {w:?}");
    match w.pop() {
        Some(Change::Put { item, .. }) => item,
        other => panic!("expected a put, got {other:?}"),
    }
}

fn assert_flag_missing<T: std::fmt::Debug>(result: Result<T, Error>, name: &str) {
    match result {
        Err(Error::FlagDoesNotExist { name: n }) => assert_eq!(n, name),
        other => panic!("expected FlagDoesNotExist for {name}, got {other:?}"),
    }
}

mod test_is_enabled {
    use super::*;

    #[tokio::test]
    async fn test_returns_true_when_feature_enabled() {
        let f = setup();
        let name = txt();
        f.client.create(&name, false, None).await.unwrap();
        f.client.enable(&name).await.unwrap();
        assert!(f.client.is_enabled(&name, &no_checks()).await);
    }

    #[tokio::test]
    async fn test_returns_false_when_feature_disabled() {
        let f = setup();
        let name = txt();
        f.client.create(&name, true, None).await.unwrap();
        f.client.disable(&name).await.unwrap();
        assert!(!f.client.is_enabled(&name, &no_checks()).await);
    }

    #[tokio::test]
    async fn test_returns_false_when_feature_does_not_exist() {
        let f = setup();
        let name = txt();
        assert!(!f.client.is_enabled(&name, &no_checks()).await);
        // `default=` is what a missing flag answers.
        assert!(f.client.is_enabled_or(&name, &no_checks(), true).await);
    }

    #[tokio::test]
    async fn test_returns_true_if_condition_specifies() {
        let f = setup();
        let name = txt();
        f.client.create(&name, true, None).await.unwrap();
        f.client
            .add_condition(&name, Condition::new().eq("foo", true))
            .await
            .unwrap();
        assert!(
            f.client
                .is_enabled(&name, &Checks::new().with("foo", true))
                .await
        );
    }

    #[tokio::test]
    async fn test_returns_false_if_condition_specifies() {
        let f = setup();
        let name = txt();
        f.client.create(&name, true, None).await.unwrap();
        f.client
            .add_condition(&name, Condition::new().eq("foo", true))
            .await
            .unwrap();
        assert!(
            !f.client
                .is_enabled(&name, &Checks::new().with("foo", false))
                .await
        );
    }

    #[tokio::test]
    async fn test_returns_false_if_feature_disabled_despite_condition() {
        let f = setup();
        let name = txt();
        f.client.create(&name, false, None).await.unwrap();
        f.client
            .add_condition(&name, Condition::new().eq("foo", true))
            .await
            .unwrap();
        assert!(
            !f.client
                .is_enabled(&name, &Checks::new().with("foo", true))
                .await
        );
    }

    #[tokio::test]
    async fn test_returns_false_if_bucketer_check_returns_false() {
        // A 50% random bucketer with the draw pinned at 0.6: `check` is False.
        let f = setup_with_random(0.6);
        let name = txt();
        f.client.create(&name, true, None).await.unwrap();
        f.client
            .set_bucketer(&name, Bucketer::percentage(Percentage::fixed(0.5)))
            .await
            .unwrap();
        assert!(!f.client.is_enabled(&name, &no_checks()).await);
        let e = f.client.evaluate(&name, &no_checks(), false).await.unwrap();
        assert_eq!(e.reason, Reason::BucketedOut);
    }

    #[tokio::test]
    async fn test_returns_true_if_bucketer_check_returns_true() {
        // A 50% random bucketer with the draw pinned at 0.4: `check` is True.
        let f = setup_with_random(0.4);
        let name = txt();
        f.client.create(&name, true, None).await.unwrap();
        f.client
            .set_bucketer(&name, Bucketer::percentage(Percentage::fixed(0.5)))
            .await
            .unwrap();
        assert!(f.client.is_enabled(&name, &no_checks()).await);
        let e = f.client.evaluate(&name, &no_checks(), false).await.unwrap();
        assert_eq!(e.reason, Reason::BucketedIn);
    }

    #[tokio::test]
    async fn test_forwards_conditions_to_bucketer() {
        // A consistent-hash bucketer hashes the checks it receives: no checks score 0.32,
        // `foo=True` scores 0.43. At 40% the answer tells which checks reached it.
        let f = setup();
        let name = txt();
        f.client.create(&name, true, None).await.unwrap();
        f.client
            .set_bucketer(
                &name,
                Bucketer::consistent_hash(Percentage::fixed(0.4), Vec::<String>::new()),
            )
            .await
            .unwrap();
        let foo = Checks::new().with("foo", true);
        assert!(
            !f.client.is_enabled(&name, &foo).await,
            "foo=True scores 0.43"
        );
        assert!(
            f.client.is_enabled(&name, &no_checks()).await,
            "[] scores 0.32"
        );
        f.client
            .set_bucketer(
                &name,
                Bucketer::consistent_hash(Percentage::fixed(0.43), Vec::<String>::new()),
            )
            .await
            .unwrap();
        assert!(f.client.is_enabled(&name, &foo).await, "0.43 <= 0.43");
    }
}

mod test_create {
    use super::*;

    #[tokio::test]
    async fn test_creates_and_returns_instance_of_feature_flag_class() {
        let f = setup();
        let name = txt();
        let flag = f.client.create(&name, false, None).await.unwrap();
        assert_eq!(flag.name(), name);
        assert!(flag.exists().await.unwrap());
    }

    #[tokio::test]
    async fn test_creates_flag_with_correct_name() {
        let f = setup();
        let name = txt();
        let flag = f.client.create(&name, false, None).await.unwrap();
        assert_eq!(flag.name(), name);
        let stored = f.store.get(&name).await.unwrap().unwrap();
        assert_eq!(stored.item.feature_name, name);
    }

    #[tokio::test]
    async fn test_is_enabled_defaults_to_false() {
        // Rust has no default arguments: `false` is Python's default for `is_enabled`.
        let f = setup();
        let name = txt();
        f.client.create(&name, false, None).await.unwrap();
        assert!(!f.client.is_enabled(&name, &no_checks()).await);
    }

    #[tokio::test]
    async fn test_flag_can_be_enabled_on_create() {
        let f = setup();
        let name = txt();
        f.client.create(&name, true, None).await.unwrap();
        assert!(f.client.is_enabled(&name, &no_checks()).await);
    }

    #[tokio::test]
    async fn test_emits_pre_create_event_with_correct_args() {
        let f = setup();
        let log = listen(&f.client, EventType::PreCreate);
        let name = txt();
        let client_data = object([("x", 10)]);
        f.client
            .create(&name, true, Some(client_data.clone()))
            .await
            .unwrap();
        let last = calls(&log).pop().expect("the listener was called");
        assert_eq!(
            last,
            Event::with(
                EventType::PreCreate,
                &name,
                Payload::Create {
                    is_enabled: true,
                    client_data: Some(client_data),
                },
            )
        );
    }

    #[tokio::test]
    async fn test_emits_post_create_event_with_correct_args() {
        let f = setup();
        let log = listen(&f.client, EventType::PostCreate);
        let name = txt();
        let client_data = object([("x", 10)]);
        f.client
            .create(&name, true, Some(client_data.clone()))
            .await
            .unwrap();
        let last = calls(&log).pop().expect("the listener was called");
        assert_eq!(
            last,
            Event::with(
                EventType::PostCreate,
                &name,
                Payload::Create {
                    is_enabled: true,
                    client_data: Some(client_data),
                },
            )
        );
    }
}

mod test_get {
    use super::*;

    #[tokio::test]
    async fn test_returns_instance_of_feature_flag_class() {
        let f = setup();
        let name = txt();
        f.client.create(&name, true, None).await.unwrap();
        let flag = f.client.get(&name);
        // The handle acts on the stored flag.
        assert!(flag.exists().await.unwrap());
        assert!(flag.is_enabled(&no_checks()).await);
    }

    #[tokio::test]
    async fn test_returns_flag_with_correct_name() {
        let f = setup();
        let name = txt();
        f.client.create(&name, false, None).await.unwrap();
        assert_eq!(f.client.get(&name).name(), name);
    }
}

mod test_destroy {
    use super::*;

    #[tokio::test]
    async fn test_get_will_return_instance_of_flag() {
        let f = setup();
        let name = txt();
        f.client.create(&name, false, None).await.unwrap();
        f.client.destroy(&name).await.unwrap();
        // `get` still hands out a handle (it reads nothing), on a flag that is gone.
        let flag = f.client.get(&name);
        assert_eq!(flag.name(), name);
        assert!(!flag.exists().await.unwrap());
    }

    #[tokio::test]
    async fn test_status_switches_to_disabled() {
        let f = setup();
        let name = txt();
        f.client.create(&name, false, None).await.unwrap();
        f.client.enable(&name).await.unwrap();
        assert!(f.client.is_enabled(&name, &no_checks()).await);
        f.client.destroy(&name).await.unwrap();
        assert!(!f.client.is_enabled(&name, &no_checks()).await);
    }

    #[tokio::test]
    async fn test_raises_for_nonexistent_flag() {
        let f = setup();
        let name = txt();
        assert_flag_missing(f.client.destroy(&name).await, &name);
    }

    #[tokio::test]
    async fn test_emits_pre_destroy_event() {
        let f = setup();
        let name = txt();
        let log = listen(&f.client, EventType::PreDestroy);
        f.client.create(&name, false, None).await.unwrap();
        f.client.destroy(&name).await.unwrap();
        assert_eq!(calls(&log), [Event::new(EventType::PreDestroy, &name)]);
    }

    #[tokio::test]
    async fn test_emits_post_destroy_event() {
        let f = setup();
        let name = txt();
        let log = listen(&f.client, EventType::PostDestroy);
        f.client.create(&name, false, None).await.unwrap();
        f.client.destroy(&name).await.unwrap();
        assert_eq!(calls(&log), [Event::new(EventType::PostDestroy, &name)]);
    }
}

mod test_enable {
    use super::*;

    #[tokio::test]
    async fn test_is_enabled_will_be_true() {
        let f = setup();
        let name = txt();
        f.client.create(&name, false, None).await.unwrap();
        f.client.enable(&name).await.unwrap();
        assert!(f.client.is_enabled(&name, &no_checks()).await);
    }

    #[tokio::test]
    async fn test_is_enabled_will_be_true_if_disable_was_called_earlier() {
        let f = setup();
        let name = txt();
        f.client.create(&name, false, None).await.unwrap();
        f.client.disable(&name).await.unwrap();
        f.client.enable(&name).await.unwrap();
        assert!(f.client.is_enabled(&name, &no_checks()).await);
    }

    #[tokio::test]
    async fn test_raises_for_nonexistent_flag() {
        let f = setup();
        let name = txt();
        assert_flag_missing(f.client.enable(&name).await, &name);
        // Unlike `store.set`, the client does not create it.
        assert!(!f.client.exists(&name).await.unwrap());
    }

    #[tokio::test]
    async fn test_emits_pre_enable_event() {
        let f = setup();
        let name = txt();
        let log = listen(&f.client, EventType::PreEnable);
        f.client.create(&name, false, None).await.unwrap();
        f.client.enable(&name).await.unwrap();
        assert_eq!(calls(&log), [Event::new(EventType::PreEnable, &name)]);
    }

    #[tokio::test]
    async fn test_emits_post_enable_event() {
        let f = setup();
        let name = txt();
        let log = listen(&f.client, EventType::PostEnable);
        f.client.create(&name, false, None).await.unwrap();
        f.client.enable(&name).await.unwrap();
        assert_eq!(calls(&log), [Event::new(EventType::PostEnable, &name)]);
    }
}

mod test_disable {
    use super::*;

    #[tokio::test]
    async fn test_is_enabled_will_be_false() {
        let f = setup();
        let name = txt();
        f.client.create(&name, true, None).await.unwrap();
        f.client.disable(&name).await.unwrap();
        assert!(!f.client.is_enabled(&name, &no_checks()).await);
    }

    #[tokio::test]
    async fn test_is_enabled_will_be_false_if_enable_was_called_earlier() {
        let f = setup();
        let name = txt();
        f.client.create(&name, false, None).await.unwrap();
        f.client.enable(&name).await.unwrap();
        f.client.disable(&name).await.unwrap();
        assert!(!f.client.is_enabled(&name, &no_checks()).await);
    }

    #[tokio::test]
    async fn test_raises_for_nonexistent_flag() {
        let f = setup();
        let name = txt();
        assert_flag_missing(f.client.disable(&name).await, &name);
        assert!(!f.client.exists(&name).await.unwrap());
    }

    #[tokio::test]
    async fn test_emits_pre_disable_event() {
        let f = setup();
        let name = txt();
        let log = listen(&f.client, EventType::PreDisable);
        f.client.create(&name, false, None).await.unwrap();
        f.client.disable(&name).await.unwrap();
        assert_eq!(calls(&log), [Event::new(EventType::PreDisable, &name)]);
    }

    #[tokio::test]
    async fn test_emits_post_disable_event() {
        let f = setup();
        let name = txt();
        let log = listen(&f.client, EventType::PostDisable);
        f.client.create(&name, false, None).await.unwrap();
        f.client.disable(&name).await.unwrap();
        assert_eq!(calls(&log), [Event::new(EventType::PostDisable, &name)]);
    }
}

mod test_exists {
    use super::*;

    #[tokio::test]
    async fn test_exists_is_false_when_feature_does_not_exist() {
        let f = setup();
        assert!(!f.client.exists(&txt()).await.unwrap());
    }

    #[tokio::test]
    async fn test_exists_is_true_when_feature_does_exist() {
        let f = setup();
        let name = txt();
        f.client.create(&name, false, None).await.unwrap();
        assert!(f.client.exists(&name).await.unwrap());
    }
}

mod test_list {
    use super::*;

    #[tokio::test]
    async fn test_calls_backend_with_correct_args() {
        // Upstream mocks `store.list` and checks it got limit=10, offset=25. Here the store
        // is real and holds 40 flags: only that page can come back.
        let f = setup();
        let mut names: Vec<String> = (0..40).map(|_| txt()).collect();
        for name in &names {
            f.client.create(name, false, None).await.unwrap();
        }
        names.sort();
        let (limit, offset) = (10, 25);
        let listed: Vec<String> = f
            .client
            .list(Some(limit), offset)
            .await
            .unwrap()
            .iter()
            .map(|flag| flag.name().to_owned())
            .collect();
        assert_eq!(listed, names[offset..offset + limit]);
    }

    #[tokio::test]
    async fn test_returns_flag_objects() {
        let f = setup();
        let name = txt();
        f.client.create(&name, true, None).await.unwrap();
        let flag = f.client.list(None, 0).await.unwrap().remove(0);
        // A handle bound to the client.
        assert!(flag.is_enabled(&no_checks()).await);
    }

    #[tokio::test]
    async fn test_returns_correct_flag_objects() {
        let f = setup();
        let name = txt();
        let expected = f.client.create(&name, false, None).await.unwrap();
        let actual = f.client.list(None, 0).await.unwrap().remove(0);
        assert_eq!(expected.name(), actual.name());
    }

    #[tokio::test]
    async fn test_returns_correct_count_of_flag_objects() {
        let f = setup();
        for _ in 0..10 {
            f.client.create(&txt(), false, None).await.unwrap();
        }
        assert_eq!(f.client.list(None, 0).await.unwrap().len(), 10);
    }
}

mod test_set_client_data {
    use super::*;

    /// Creates a flag, then watches the store while `set_client_data` runs; returns the flag
    /// written (upstream's `set_meta` call), checking there was exactly one write.
    async fn written_by_set_client_data(f: &Fixture, name: &str, data: &Object) -> flipper::Item {
        f.client.create(name, false, None).await.unwrap();
        let mut changes = f.store.watch().expect("the memory store can be watched");
        f.client.set_client_data(name, data.clone()).await.unwrap();
        single_write(&mut changes)
    }

    #[tokio::test]
    async fn test_calls_backend_with_correct_feature_name() {
        let f = setup();
        let name = txt();
        let data = object([(txt(), txt())]);
        let written = written_by_set_client_data(&f, &name, &data).await;
        assert_eq!(written.feature_name, name);
    }

    #[tokio::test]
    async fn test_calls_backend_with_instance_of_meta() {
        let f = setup();
        let name = txt();
        let data = object([(txt(), txt())]);
        let written = written_by_set_client_data(&f, &name, &data).await;
        // The whole meta is written: the new client data and everything else as it was.
        let mut expected = Meta::new(NOW);
        expected.client_data = Value::from(data);
        assert_eq!(written.meta, expected);
        assert_eq!(written.is_enabled, Value::Bool(false));
    }

    #[tokio::test]
    async fn test_calls_backend_with_correct_meta_client_data() {
        let f = setup();
        let name = txt();
        let data = object([(txt(), txt())]);
        let written = written_by_set_client_data(&f, &name, &data).await;
        assert_eq!(written.meta.client_data, Value::from(data));
    }

    #[tokio::test]
    async fn test_calls_backend_with_non_null_meta_created_date() {
        let f = setup();
        let name = txt();
        let data = object([(txt(), txt())]);
        let written = written_by_set_client_data(&f, &name, &data).await;
        // Not just non-null: the creation time, kept.
        assert_eq!(written.meta.created_date_secs(), Some(NOW));
    }

    #[tokio::test]
    async fn test_calls_backend_exactly_once() {
        let f = setup();
        let name = txt();
        let data = object([(txt(), txt())]);
        // `single_write` fails unless the store saw exactly one write.
        let written = written_by_set_client_data(&f, &name, &data).await;
        assert_eq!(written.meta.client_data, Value::from(data));
    }

    #[tokio::test]
    async fn test_merges_new_values_with_existing() {
        let f = setup();
        let name = txt();
        let existing = object([("existing_key", txt())]);
        f.store
            .create(&name, false, Some(existing.clone()))
            .await
            .unwrap();
        let new = object([("new_key", txt())]);
        f.client.set_client_data(&name, new.clone()).await.unwrap();
        let item = f.store.get(&name).await.unwrap().unwrap().item;
        let mut merged = existing;
        merged.extend(new);
        assert_eq!(item.meta.client_data, Value::from(merged));
    }

    #[tokio::test]
    async fn test_can_override_existing_values() {
        let f = setup();
        let name = txt();
        let existing = object([("existing_key", txt())]);
        f.store
            .create(&name, false, Some(existing.clone()))
            .await
            .unwrap();
        let new = object([("existing_key", txt()), ("new_key", txt())]);
        f.client.set_client_data(&name, new.clone()).await.unwrap();
        let item = f.store.get(&name).await.unwrap().unwrap().item;
        assert_eq!(item.meta.client_data, Value::from(new));
        // Deviation: no dict aliasing. Python's memory store keeps the caller's dict and
        // merges into it; here `existing` is the caller's own copy and stays as it was.
        assert_eq!(existing.len(), 1);
    }

    #[tokio::test]
    async fn test_raises_for_nonexistent_flag() {
        let f = setup();
        let name = txt();
        let data = object([(txt(), txt())]);
        assert_flag_missing(f.client.set_client_data(&name, data).await, &name);
    }

    #[tokio::test]
    async fn test_emits_pre_set_client_data_event() {
        let f = setup();
        let name = txt();
        let log = listen(&f.client, EventType::PreSetClientData);
        let existing = object([("existing_key", txt())]);
        f.client.create(&name, false, Some(existing)).await.unwrap();
        let new = object([("existing_key", txt()), ("new_key", txt())]);
        f.client.set_client_data(&name, new.clone()).await.unwrap();
        // The merged data, which here equals `new`.
        assert_eq!(
            calls(&log),
            [Event::with(
                EventType::PreSetClientData,
                &name,
                Payload::ClientData(Value::from(new))
            )]
        );
    }

    #[tokio::test]
    async fn test_emits_post_set_client_data_event() {
        let f = setup();
        let name = txt();
        let log = listen(&f.client, EventType::PostSetClientData);
        let existing = object([("existing_key", txt())]);
        f.client.create(&name, false, Some(existing)).await.unwrap();
        let new = object([("existing_key", txt()), ("new_key", txt())]);
        f.client.set_client_data(&name, new.clone()).await.unwrap();
        assert_eq!(
            calls(&log),
            [Event::with(
                EventType::PostSetClientData,
                &name,
                Payload::ClientData(Value::from(new))
            )]
        );
    }
}

mod test_get_client_data {
    use super::*;

    #[tokio::test]
    async fn test_gets_expected_key_value_pairs() {
        let f = setup();
        let name = txt();
        let data = object([(txt(), txt())]);
        f.client
            .create(&name, false, Some(data.clone()))
            .await
            .unwrap();
        assert_eq!(
            f.client.get_client_data(&name).await.unwrap(),
            Value::from(data)
        );
    }

    #[tokio::test]
    async fn test_raises_for_nonexistent_flag() {
        let f = setup();
        let name = txt();
        assert_flag_missing(f.client.get_client_data(&name).await, &name);
    }
}

mod test_get_meta {
    use super::*;

    #[tokio::test]
    async fn test_includes_created_date() {
        let f = setup();
        let name = txt();
        let data = object([(txt(), txt())]);
        f.client.create(&name, false, Some(data)).await.unwrap();
        let meta = f.client.get_meta(&name).await.unwrap();
        // Upstream: `"created_date" in meta`. With the clock pinned, it is known.
        assert_eq!(meta.created_date_secs(), Some(NOW));
    }

    #[tokio::test]
    async fn test_includes_client_data() {
        let f = setup();
        let name = txt();
        let data = object([(txt(), txt())]);
        f.client
            .create(&name, false, Some(data.clone()))
            .await
            .unwrap();
        let meta = f.client.get_meta(&name).await.unwrap();
        assert_eq!(meta.client_data, Value::from(data));
    }

    #[tokio::test]
    async fn test_raises_for_nonexistent_flag() {
        let f = setup();
        let name = txt();
        assert_flag_missing(f.client.get_meta(&name).await, &name);
    }
}

mod test_add_condition {
    use super::*;

    #[tokio::test]
    async fn test_condition_gets_included_in_meta() {
        let f = setup();
        let name = txt();
        let condition = Condition::new().eq(&txt(), true);
        f.client.create(&name, false, None).await.unwrap();
        f.client
            .add_condition(&name, condition.clone())
            .await
            .unwrap();
        let meta = f.client.get_meta(&name).await.unwrap();
        assert!(meta.conditions.contains(&condition));
        // In the stored form too (upstream compares dicts).
        let stored = meta.to_value();
        let stored = stored.as_object().unwrap()["conditions"].as_list().unwrap();
        assert!(stored.contains(&condition.to_value()));
    }

    #[tokio::test]
    async fn test_condition_gets_appended_to_meta() {
        let f = setup();
        let name = txt();
        let condition = Condition::new().eq(&txt(), true);
        f.client.create(&name, false, None).await.unwrap();
        f.client
            .add_condition(&name, condition.clone())
            .await
            .unwrap();
        f.client
            .add_condition(&name, condition.clone())
            .await
            .unwrap();
        let meta = f.client.get_meta(&name).await.unwrap();
        assert_eq!(meta.conditions, [condition.clone(), condition]);
    }

    #[tokio::test]
    async fn test_emits_pre_add_condition_event() {
        let f = setup();
        let name = txt();
        let log = listen(&f.client, EventType::PreAddCondition);
        let condition = Condition::new().eq(&txt(), true);
        f.store.create(&name, false, None).await.unwrap();
        f.client
            .add_condition(&name, condition.clone())
            .await
            .unwrap();
        assert_eq!(
            calls(&log),
            [Event::with(
                EventType::PreAddCondition,
                &name,
                Payload::Condition(condition)
            )]
        );
    }

    #[tokio::test]
    async fn test_emits_post_add_condition_event() {
        let f = setup();
        let name = txt();
        let log = listen(&f.client, EventType::PostAddCondition);
        let condition = Condition::new().eq(&txt(), true);
        f.store.create(&name, false, None).await.unwrap();
        f.client
            .add_condition(&name, condition.clone())
            .await
            .unwrap();
        assert_eq!(
            calls(&log),
            [Event::with(
                EventType::PostAddCondition,
                &name,
                Payload::Condition(condition)
            )]
        );
    }
}

mod test_set_bucketer {
    use super::*;

    fn bucketer() -> Bucketer {
        Bucketer::percentage(Percentage::fixed(0.1))
    }

    #[tokio::test]
    async fn test_bucketer_gets_included_in_meta() {
        let f = setup();
        let name = txt();
        f.client.create(&name, false, None).await.unwrap();
        f.client.set_bucketer(&name, bucketer()).await.unwrap();
        let meta = f.client.get_meta(&name).await.unwrap();
        assert_eq!(meta.bucketer.to_value(), bucketer().to_value());
        assert_eq!(meta.bucketer, bucketer());
    }

    #[tokio::test]
    async fn test_emits_pre_set_bucketer_event() {
        let f = setup();
        let name = txt();
        let log = listen(&f.client, EventType::PreSetBucketer);
        f.store.create(&name, false, None).await.unwrap();
        f.client.set_bucketer(&name, bucketer()).await.unwrap();
        assert_eq!(
            calls(&log),
            [Event::with(
                EventType::PreSetBucketer,
                &name,
                Payload::Bucketer(bucketer())
            )]
        );
    }

    #[tokio::test]
    async fn test_emits_post_set_bucketer_event() {
        let f = setup();
        let name = txt();
        let log = listen(&f.client, EventType::PostSetBucketer);
        f.store.create(&name, false, None).await.unwrap();
        f.client.set_bucketer(&name, bucketer()).await.unwrap();
        assert_eq!(
            calls(&log),
            [Event::with(
                EventType::PostSetBucketer,
                &name,
                Payload::Bucketer(bucketer())
            )]
        );
    }
}

mod test_set_conditions {
    use super::*;

    /// Upstream's `TestSetConditions.Subscriber`.
    #[derive(Default)]
    struct Subscriber {
        events: Mutex<Vec<(String, String, Vec<Condition>)>>,
    }

    impl EventSubscriber for Subscriber {
        fn on_pre_set_conditions(&self, flag_name: &str, conditions: &[Condition]) {
            self.events.lock().unwrap().push((
                "pre_set_conditions".into(),
                flag_name.into(),
                conditions.to_vec(),
            ));
        }
        fn on_post_set_conditions(&self, flag_name: &str, conditions: &[Condition]) {
            self.events.lock().unwrap().push((
                "post_set_conditions".into(),
                flag_name.into(),
                conditions.to_vec(),
            ));
        }
    }

    /// `setUp`: the subscriber is registered on the client's own emitter.
    fn setup_with_subscriber() -> (Fixture, Arc<Subscriber>) {
        let f = setup();
        let subscriber = Arc::new(Subscriber::default());
        f.client.events().register_subscriber(subscriber.clone());
        (f, subscriber)
    }

    fn new_conditions() -> Vec<Condition> {
        vec![
            Condition::new().eq("new_value", true),
            Condition::new().is_in("id", vec![1, 2]),
        ]
    }

    #[tokio::test]
    async fn test_overrides_previous_conditions() {
        let (f, _subscriber) = setup_with_subscriber();
        let name = "FLAG";
        f.client.create(name, false, None).await.unwrap();
        f.client
            .add_condition(name, Condition::new().eq("value", true))
            .await
            .unwrap();
        f.client
            .set_conditions(name, new_conditions())
            .await
            .unwrap();
        let meta = f.client.get_meta(name).await.unwrap();
        let conditions_array =
            flipper_core::json::to_string(&meta.to_value().as_object().unwrap()["conditions"]);
        assert_eq!(
            conditions_array,
            r#"[{"new_value": [{"variable": "new_value", "value": true, "operator": null}]}, {"id": [{"variable": "id", "value": [1, 2], "operator": "in"}]}]"#
        );
    }

    #[tokio::test]
    async fn test_events_are_emitted() {
        let (f, subscriber) = setup_with_subscriber();
        let name = "FLAG";
        f.client.create(name, false, None).await.unwrap();
        f.client
            .set_conditions(name, new_conditions())
            .await
            .unwrap();
        assert_eq!(
            *subscriber.events.lock().unwrap(),
            [
                ("pre_set_conditions".into(), name.into(), new_conditions()),
                ("post_set_conditions".into(), name.into(), new_conditions()),
            ]
        );
    }
}
