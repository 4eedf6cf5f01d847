//! The behaviour every [`Store`] and wrapper must show. Not API-stable.
//!
//! Each case takes a fresh, empty store. Run them all with [`crate::store_conformance_tests!`],
//! which generates one `#[tokio::test]` per case:
//!
//! ```ignore
//! #[cfg(test)]
//! mod tests {
//!     flipper::store_conformance_tests!(my_crate::MyStore::new());
//! }
//! ```
//! Cases that need a capability return early (with a note on stderr) when the store does not
//! declare it.

use std::sync::Arc;
use std::time::Duration;

use flipper_core::bucketing::{Bucketer, Percentage};
use flipper_core::condition::Condition;
use flipper_core::{Item, Meta, Object, Value};
use futures_util::StreamExt;

use super::{Change, PutMode, Store, StoreExt};
use crate::Error;

fn skip(case: &str, capability: &str) {
    eprintln!("conformance: {case} skipped: the store does not declare {capability}");
}

fn rich_item(name: &str) -> Item {
    let mut item = Item::new(name, true, 1_700_000_000);
    item.meta.client_data = [
        ("owner", Value::from("team-x")),
        ("big", Value::Int(flipper_core::Int::from(u128::MAX))),
        ("ratio", Value::from(0.1)),
        ("nan", Value::Float(f64::NAN)),
        ("unicode", Value::from("é😀\u{7f}")),
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

/// A missing flag reads as `None`.
pub async fn get_missing_is_none(store: &dyn Store) {
    assert!(store.get("nope").await.unwrap().is_none());
    assert!(store.list(None, 0).await.unwrap().is_empty());
}

/// What is written is read back exactly, byte for byte once serialized.
pub async fn put_get_round_trips_exactly(store: &dyn Store) {
    for name in ["plain", "ñame", "a/b/c", "with space", "quote\"d", "😀"] {
        let item = rich_item(name);
        let version = store.put(&item, PutMode::Overwrite).await.unwrap();
        let got = store
            .get(name)
            .await
            .unwrap()
            .expect("written flag is readable at once");
        assert_eq!(got.item.serialize(), item.serialize(), "{name}");
        assert_eq!(got.version, version, "{name}");
    }
}

/// `create` overwrites an existing flag wholesale, as flipper-client's does.
pub async fn create_overwrites(store: &dyn Store) {
    store
        .put(&rich_item("f"), PutMode::Overwrite)
        .await
        .unwrap();
    let mut data = Object::new();
    data.insert("k".into(), Value::from(1));
    let created = store.create_at("f", false, Some(data), 42).await.unwrap();
    let got = store.get("f").await.unwrap().unwrap();
    assert_eq!(got.item, created.item);
    assert!(got.item.meta.conditions.is_empty());
    assert_eq!(got.item.meta.bucketer, Bucketer::NoOp);
    assert_eq!(got.item.meta.created_date, Value::from(42));
    assert_eq!(got.item.is_enabled, Value::Bool(false));
}

/// `set` switches a flag, keeps its meta, and creates a missing flag.
pub async fn set_keeps_meta_and_creates_missing(store: &dyn Store) {
    store
        .put(&rich_item("f"), PutMode::Overwrite)
        .await
        .unwrap();
    store.set("f", false).await.unwrap();
    let got = store.get("f").await.unwrap().unwrap().item;
    assert_eq!(got.is_enabled, Value::Bool(false));
    assert_eq!(got.meta.to_value(), rich_item("f").meta.to_value());
    store.set("new", true).await.unwrap();
    let got = store.get("new").await.unwrap().unwrap().item;
    assert_eq!(got.is_enabled, Value::Bool(true));
    assert!(got.meta.conditions.is_empty());
}

/// `set_meta` replaces the meta, keeps `is_enabled`, and fails on a missing flag.
pub async fn set_meta_replaces_meta(store: &dyn Store) {
    let err = store.set_meta("missing", Meta::new(1)).await.unwrap_err();
    assert!(matches!(err, Error::FlagDoesNotExist { ref name } if name == "missing"));
    assert!(store.get("missing").await.unwrap().is_none());
    store
        .put(&rich_item("f"), PutMode::Overwrite)
        .await
        .unwrap();
    store.set_meta("f", Meta::new(7)).await.unwrap();
    let got = store.get("f").await.unwrap().unwrap().item;
    assert_eq!(got.meta, Meta::new(7));
    assert_eq!(got.is_enabled, Value::Bool(true));
}

/// `put_many` writes every flag, replacing same-named ones, with the versions it returns.
pub async fn put_many_writes_every_flag(store: &dyn Store) {
    store
        .put(&rich_item("b"), PutMode::Overwrite)
        .await
        .unwrap();
    let items = [
        Item::new("a", true, 1),
        Item::new("b", false, 2),
        rich_item("c"),
    ];
    let versions = store.put_many(&items).await.unwrap();
    assert_eq!(versions.len(), 3);
    for (item, version) in items.iter().zip(&versions) {
        let got = store.get(&item.feature_name).await.unwrap().unwrap();
        assert_eq!(got.item.serialize(), item.serialize());
        assert_eq!(&got.version, version);
    }
    assert!(store.put_many(&[]).await.unwrap().is_empty());
    assert_eq!(store.list(None, 0).await.unwrap().len(), 3);
}

/// `delete` removes a flag; deleting a missing flag is fine.
pub async fn delete_removes(store: &dyn Store) {
    store
        .put(&rich_item("f"), PutMode::Overwrite)
        .await
        .unwrap();
    assert!(store.delete("f").await.unwrap());
    assert!(store.get("f").await.unwrap().is_none());
    assert!(!store.delete("f").await.unwrap());
    assert!(store.list(None, 0).await.unwrap().is_empty());
}

/// `list` is in name order (code points) and applies offset, then limit.
pub async fn list_orders_and_pages(store: &dyn Store) {
    let names = ["b", "C", "_x", "a", "é", "aa"];
    for n in names {
        store
            .put(&Item::new(n, false, 1), PutMode::Overwrite)
            .await
            .unwrap();
    }
    let listed = |entries: Vec<super::ListEntry>| -> Vec<String> {
        entries
            .into_iter()
            .map(|e| e.expect("readable").item.feature_name)
            .collect()
    };
    let all = listed(store.list(None, 0).await.unwrap());
    assert_eq!(all, ["C", "_x", "a", "aa", "b", "é"]);
    assert_eq!(listed(store.list(Some(2), 1).await.unwrap()), ["_x", "a"]);
    assert_eq!(listed(store.list(None, 4).await.unwrap()), ["b", "é"]);
    assert_eq!(
        listed(store.list(Some(0), 0).await.unwrap()),
        Vec::<String>::new()
    );
    assert_eq!(
        listed(store.list(Some(3), 10).await.unwrap()),
        Vec::<String>::new()
    );
}

/// `PutMode::Create` refuses to replace; `PutMode::Update` needs the current version.
pub async fn conditional_puts_check_preconditions(store: &dyn Store) {
    if !store.capabilities().conditional_put {
        return skip("conditional_puts_check_preconditions", "conditional_put");
    }
    let v1 = store
        .put(&Item::new("f", false, 1), PutMode::Create)
        .await
        .unwrap();
    let err = store
        .put(&Item::new("f", true, 1), PutMode::Create)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err}");
    let v2 = store
        .put(&Item::new("f", true, 2), PutMode::Update(v1.clone()))
        .await
        .unwrap();
    assert_ne!(v1, v2);
    let err = store
        .put(&Item::new("f", false, 3), PutMode::Update(v1))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err}");
    assert_eq!(
        store.get("f").await.unwrap().unwrap().item,
        Item::new("f", true, 2)
    );
    store.delete("f").await.unwrap();
    let err = store
        .put(&Item::new("f", false, 4), PutMode::Update(v2))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err}");
    assert!(store.get("f").await.unwrap().is_none());
}

/// Concurrent read-modify-writes of one flag all land.
pub async fn concurrent_updates_lose_nothing(store: Arc<dyn Store>) {
    if !store.capabilities().conditional_put {
        return skip("concurrent_updates_lose_nothing", "conditional_put");
    }
    store
        .put(&Item::new("f", true, 1), PutMode::Overwrite)
        .await
        .unwrap();
    let writers = 16;
    let tasks: Vec<_> = (0..writers)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .update("f", |item| {
                        if let Value::Object(o) = &mut item.meta.client_data {
                            o.insert(format!("w{i}"), Value::from(i));
                        }
                        Ok(())
                    })
                    .await
                    .unwrap();
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let got = store.get("f").await.unwrap().unwrap().item;
    let data = got.meta.client_data.as_object().unwrap();
    assert_eq!(data.len(), writers, "lost updates: {data:?}");
}

/// Of many writers racing with the same version, exactly one wins.
pub async fn concurrent_cas_has_one_winner(store: Arc<dyn Store>) {
    if !store.capabilities().conditional_put {
        return skip("concurrent_cas_has_one_winner", "conditional_put");
    }
    let v = store
        .put(&Item::new("f", false, 1), PutMode::Overwrite)
        .await
        .unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = Arc::clone(&store);
            let v = v.clone();
            tokio::spawn(async move {
                store
                    .put(&Item::new("f", true, i), PutMode::Update(v))
                    .await
                    .is_ok()
            })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        wins += usize::from(t.await.unwrap());
    }
    assert_eq!(wins, 1);
}

/// Watchers see this store's puts and deletes in order (after an optional opening resync).
pub async fn watch_reports_changes_in_order(store: &dyn Store) {
    if !store.capabilities().watch {
        assert!(store.watch().is_none());
        return skip("watch_reports_changes_in_order", "watch");
    }
    let mut changes = store.watch().expect("declared watch");
    store
        .put(&Item::new("a", true, 1), PutMode::Overwrite)
        .await
        .unwrap();
    store.set("a", false).await.unwrap();
    store.delete("a").await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let next = tokio::time::timeout(Duration::from_secs(10), changes.next())
            .await
            .expect("change within 10 s")
            .expect("stream open");
        match next {
            Change::Put { item, .. } => {
                seen.push(format!("put {} {}", item.feature_name, item.switched_on()))
            }
            Change::Delete { name } => seen.push(format!("delete {name}")),
            // A stream may open with a resync (its subscription went live: reload now).
            Change::Resync if seen.is_empty() => {}
            Change::Resync => panic!("unexpected resync after {seen:?}"),
        }
    }
    assert_eq!(seen, ["put a true", "put a false", "delete a"]);
}

/// Generates one `#[tokio::test]` per conformance case for the store built by `$make` (an
/// expression evaluated inside each async test, so it may `.await`).
///
/// `store_conformance_tests!(guarded: $make)` takes an expression that gives `(guard, store)`
/// instead: the guard (a temporary directory, a server) lives until the case ends and is then
/// dropped, so a case cleans up what it made.
#[macro_export]
macro_rules! store_conformance_tests {
    (guarded: $make:expr) => {
        $crate::store_conformance_tests!(@ref $make;
            get_missing_is_none, put_get_round_trips_exactly, create_overwrites,
            set_keeps_meta_and_creates_missing, set_meta_replaces_meta, put_many_writes_every_flag,
            delete_removes,
            list_orders_and_pages, conditional_puts_check_preconditions,
            watch_reports_changes_in_order);
        $crate::store_conformance_tests!(@arc $make;
            concurrent_updates_lose_nothing, concurrent_cas_has_one_winner);
    };
    ($make:expr) => {
        $crate::store_conformance_tests!(guarded: ((), $make));
    };
    (@ref $make:expr; $($case:ident),* $(,)?) => {$(
        #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $case() {
            let (_guard, store) = $make;
            $crate::store::conformance::$case(&store).await;
        }
    )*};
    (@arc $make:expr; $($case:ident),* $(,)?) => {$(
        #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $case() {
            let (_guard, store) = $make;
            let store: ::std::sync::Arc<dyn $crate::store::Store> = ::std::sync::Arc::new(store);
            $crate::store::conformance::$case(store).await;
        }
    )*};
}
