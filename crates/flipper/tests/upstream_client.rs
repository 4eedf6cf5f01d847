//! Port of flipper-client's `tests/test_client.py` (62 upstream cases, 62 Rust tests).
//!
//! Not ported here, ported with their stores (later issues): `tests/contrib/test_redis.py`
//! (22), `tests/contrib/test_s3.py` (23), `tests/contrib/test_postgresql.py` (16),
//! `tests/contrib/test_cached.py` (24), `tests/contrib/test_replicated.py` (11),
//! `tests/contrib/test_thrift.py` (11). Not ported at all: `tests/contrib/util/test_iter.py`
//! (5; there is no `batchify` here).
//!
//! Each upstream test class is a module named as upstream names it, grouped by topic:
//! * `reading.rs`: `TestIsEnabled`, `TestGet`, `TestExists`, `TestList`;
//! * `lifecycle.rs`: `TestCreate`, `TestDestroy`, `TestEnable`, `TestDisable`;
//! * `client_data.rs`: `TestSetClientData`, `TestGetClientData`, `TestGetMeta`;
//! * `conditions.rs`: `TestAddCondition`, `TestSetBucketer`, `TestSetConditions`.
//!
//! The fixture and helpers they share are here.
//!
//! Translation: each test gets a fresh [`MemoryStore`] and a client over it with a
//! [`FixedEnv`] (pinned clock, so `created_date` is known, and pinned random draw). Where
//! upstream swaps in a `MagicMock`:
//! * a mock bucketer becomes a real bucketer whose answer is known: a random 50% bucketer with
//!   the draw pinned (0.4 is in, 0.6 is out), or a consistent-hash bucketer with the spec's
//!   §4.4 scores;
//! * a mock `store.set_meta` becomes the store's change stream
//!   ([`Store::watch`](flipper::store::Store::watch)): every write the client makes shows up
//!   there with the flag it wrote, so "called once, with this name and this meta" is observed
//!   on the real store;
//! * a mock `store.list` becomes a real listing whose page can only be right if `limit` and
//!   `offset` were passed through;
//! * a mock event listener becomes a closure recording the [`Event`]s.

use std::sync::{Arc, Mutex};

use flipper::events::{Event, EventEmitter, EventType, FlipperEventEmitter};
use flipper::store::{Change, ChangeStream, MemoryStore};
use flipper::{Checks, Error, FeatureFlagClient, Object, Value};
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

#[path = "upstream_client/client_data.rs"]
mod client_data;
#[path = "upstream_client/conditions.rs"]
mod conditions;
#[path = "upstream_client/lifecycle.rs"]
mod lifecycle;
#[path = "upstream_client/reading.rs"]
mod reading;
