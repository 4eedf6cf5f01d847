//! Port of flipper-client's `tests/contrib/test_memory.py` (16 upstream cases), run against
//! both [`MemoryStore`] and [`JsonFileStore`] (in a temporary directory): 32 Rust tests,
//! `memory::<class>::<case>` and `json_file::<class>::<case>`.
//!
//! `MemoryFeatureFlagStore`'s API is [`StoreExt`] (`create`, `set`, `set_meta`) plus
//! [`Store`] (`get`, `delete`, `list`). `item.is_enabled()` is evaluated with no checks and a
//! fixed environment. Both stores list in code point order of the names, as Python's memory
//! store does.

use std::sync::Arc;

use flipper::store::{JsonFileStore, MemoryStore, Store, StoreExt};
use flipper::{Checks, Error, Item, Meta, Object, Value};
use flipper_core::eval::FixedEnv;

/// `int(datetime.datetime(2018, 1, 1).timestamp())`, taken as UTC.
const DATE: i64 = 1_514_764_800;

const ENV: FixedEnv = FixedEnv {
    now: 1_700_000_000.0,
    random: 0.5,
};

/// A fresh store, and the temporary directory that must outlive it (file stores only).
struct Fixture {
    store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
}

fn memory() -> Fixture {
    Fixture {
        store: Arc::new(MemoryStore::new()),
        _dir: None,
    }
}

fn json_file() -> Fixture {
    let dir = tempfile::tempdir().expect("temporary directory");
    Fixture {
        store: Arc::new(JsonFileStore::new(dir.path().join("flags.json"))),
        _dir: Some(dir),
    }
}

/// Upstream's `uuid4().hex`.
fn txt() -> String {
    format!("{:032x}", fastrand::u128(..))
}

async fn get(store: &dyn Store, name: &str) -> Option<Item> {
    store.get(name).await.expect("store read").map(|v| v.item)
}

fn is_enabled(item: &Item) -> bool {
    item.is_enabled(&Checks::new(), &ENV)
}

/// The upstream cases, each taking a fresh, empty store.
mod cases {
    use super::*;

    pub(crate) mod test_create {
        use super::*;

        pub(crate) async fn test_is_enabled_is_true_when_created_with_is_enabled_true(
            store: &dyn Store,
        ) {
            let name = txt();
            store.create(&name, true, None).await.unwrap();
            assert!(is_enabled(&get(store, &name).await.unwrap()));
        }

        /// Upstream's name; it asserts the flag is *off*.
        pub(crate) async fn test_is_enabled_is_true_when_created_with_is_enabled_false(
            store: &dyn Store,
        ) {
            let name = txt();
            store.create(&name, false, None).await.unwrap();
            assert!(!is_enabled(&get(store, &name).await.unwrap()));
        }

        pub(crate) async fn test_is_enabled_is_false_when_created_with_default(store: &dyn Store) {
            // Rust has no default arguments: `false` is `create`'s Python default.
            let name = txt();
            store.create(&name, false, None).await.unwrap();
            let item = get(store, &name).await.unwrap();
            assert!(!is_enabled(&item));
            assert_eq!(item.is_enabled, Value::Bool(false));
        }

        pub(crate) async fn test_returns_instance_of_feature_flag(store: &dyn Store) {
            let name = txt();
            let created = store.create(&name, false, None).await.unwrap();
            assert_eq!(created.item.feature_name, name);
            // What `create` returns is what is stored.
            assert_eq!(store.get(&name).await.unwrap(), Some(created));
        }
    }

    pub(crate) mod test_get {
        use super::*;

        pub(crate) async fn test_returns_instance_of_feature_flag(store: &dyn Store) {
            let name = txt();
            store.create_at(&name, false, None, DATE).await.unwrap();
            assert_eq!(get(store, &name).await, Some(Item::new(&name, false, DATE)));
        }
    }

    pub(crate) mod test_set {
        use super::*;

        pub(crate) async fn test_sets_correct_value_when_true(store: &dyn Store) {
            let name = txt();
            store.create(&name, false, None).await.unwrap();
            store.set(&name, true).await.unwrap();
            assert!(is_enabled(&get(store, &name).await.unwrap()));
        }

        pub(crate) async fn test_sets_correct_value_when_false(store: &dyn Store) {
            let name = txt();
            // Created enabled, so that `set(false)` has something to change.
            store.create(&name, true, None).await.unwrap();
            store.set(&name, false).await.unwrap();
            assert!(!is_enabled(&get(store, &name).await.unwrap()));
        }
    }

    pub(crate) mod test_delete {
        use super::*;

        pub(crate) async fn test_get_returns_none_after_delete(store: &dyn Store) {
            let name = txt();
            store.create(&name, false, None).await.unwrap();
            store.set(&name, true).await.unwrap();
            assert!(store.delete(&name).await.unwrap(), "the flag existed");
            assert_eq!(get(store, &name).await, None);
        }

        pub(crate) async fn test_does_not_raise_when_deleting_key_that_does_not_exist(
            store: &dyn Store,
        ) {
            let name = txt();
            assert!(!store.delete(&name).await.unwrap(), "nothing to delete");
            assert_eq!(get(store, &name).await, None);
        }
    }

    pub(crate) mod test_list {
        use super::*;

        /// Creates ten flags with random names; returns the names sorted.
        async fn ten_flags(store: &dyn Store) -> Vec<String> {
            let mut names: Vec<String> = (0..10).map(|_| txt()).collect();
            for name in &names {
                store.create(name, false, None).await.unwrap();
            }
            names.sort();
            names
        }

        async fn listed(store: &dyn Store, limit: Option<usize>, offset: usize) -> Vec<String> {
            store
                .items(limit, offset)
                .await
                .unwrap()
                .into_iter()
                .map(|item| item.feature_name)
                .collect()
        }

        pub(crate) async fn test_returns_all_features_in_sorted_order(store: &dyn Store) {
            let expected = ten_flags(store).await;
            assert_eq!(listed(store, None, 0).await, expected);
        }

        pub(crate) async fn test_returns_features_subject_to_offset(store: &dyn Store) {
            let expected = ten_flags(store).await;
            assert_eq!(listed(store, None, 3).await, expected[3..]);
        }

        pub(crate) async fn test_returns_features_subject_to_limit(store: &dyn Store) {
            let expected = ten_flags(store).await;
            assert_eq!(listed(store, Some(3), 0).await, expected[..3]);
        }

        pub(crate) async fn test_returns_features_subject_to_offset_and_limit(store: &dyn Store) {
            let expected = ten_flags(store).await;
            assert_eq!(listed(store, Some(3), 2).await, expected[2..5]);
        }
    }

    pub(crate) mod test_set_meta {
        use super::*;

        fn meta(client_data: &Object) -> Meta {
            let mut meta = Meta::new(DATE);
            meta.client_data = Value::from(client_data.clone());
            meta
        }

        pub(crate) async fn test_sets_client_data_correctly(store: &dyn Store) {
            let name = txt();
            store.create(&name, false, None).await.unwrap();
            let client_data: Object = [(txt(), Value::from(txt()))].into_iter().collect();
            store.set_meta(&name, meta(&client_data)).await.unwrap();
            let item = get(store, &name).await.unwrap();
            assert_eq!(item.meta.client_data, Value::from(client_data));
        }

        pub(crate) async fn test_sets_created_date_correctly(store: &dyn Store) {
            let name = txt();
            // Created "now": set_meta replaces the created date wholesale.
            store.create(&name, false, None).await.unwrap();
            let client_data: Object = [(txt(), Value::from(txt()))].into_iter().collect();
            store.set_meta(&name, meta(&client_data)).await.unwrap();
            let item = get(store, &name).await.unwrap();
            assert_eq!(item.meta.created_date_secs(), Some(DATE));
        }

        pub(crate) async fn test_raises_exception_for_nonexistent_flag(store: &dyn Store) {
            // Deviation: one `Error::FlagDoesNotExist` (flipper-client's stores raise
            // `flipper.contrib.interface.FlagDoesNotExistError`, a second, unrelated class).
            let name = txt();
            let err = store.set_meta(&name, Meta::new(DATE)).await.unwrap_err();
            assert!(
                matches!(&err, Error::FlagDoesNotExist { name: n } if *n == name),
                "{err:?}"
            );
            // And nothing was written.
            assert_eq!(get(store, &name).await, None);
        }
    }
}

/// One `#[tokio::test]` per upstream case, for a store made by `$make`.
macro_rules! upstream_memory_suite {
    ($store:ident, $make:expr; $($class:ident { $($case:ident),* $(,)? })*) => {
        mod $store {
            use super::*;
            $(
                mod $class {
                    use super::*;
                    $(
                        #[tokio::test]
                        async fn $case() {
                            let fixture = $make;
                            crate::cases::$class::$case(&*fixture.store).await;
                        }
                    )*
                }
            )*
        }
    };
}

macro_rules! upstream_memory_cases {
    ($store:ident, $make:expr) => {
        upstream_memory_suite!($store, $make;
            test_create {
                test_is_enabled_is_true_when_created_with_is_enabled_true,
                test_is_enabled_is_true_when_created_with_is_enabled_false,
                test_is_enabled_is_false_when_created_with_default,
                test_returns_instance_of_feature_flag,
            }
            test_get { test_returns_instance_of_feature_flag }
            test_set { test_sets_correct_value_when_true, test_sets_correct_value_when_false }
            test_delete {
                test_get_returns_none_after_delete,
                test_does_not_raise_when_deleting_key_that_does_not_exist,
            }
            test_list {
                test_returns_all_features_in_sorted_order,
                test_returns_features_subject_to_offset,
                test_returns_features_subject_to_limit,
                test_returns_features_subject_to_offset_and_limit,
            }
            test_set_meta {
                test_sets_client_data_correctly,
                test_sets_created_date_correctly,
                test_raises_exception_for_nonexistent_flag,
            }
        );
    };
}

upstream_memory_cases!(memory, memory());
upstream_memory_cases!(json_file, json_file());
