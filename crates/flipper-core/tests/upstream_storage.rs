//! Port of flipper-client's `tests/contrib/storage/test_item.py` (22 cases) and
//! `tests/contrib/storage/test_meta.py` (15 cases): 37 upstream cases.
//!
//! `FeatureFlagStoreItem` is [`Item`], `FeatureFlagStoreMeta` is [`Meta`]; `to_dict` /
//! `from_dict` are `to_value` / `from_value`; `item.is_enabled(**kwargs)` is
//! [`Item::is_enabled`] with [`Checks`] and an environment. Upstream's `MagicMock` bucketers
//! (`bucketer.check.return_value = True/False`) are real random bucketers at 50% whose draw is
//! pinned by [`FixedEnv::random`] (0.4 is in, 0.6 is out), so the bucketer really is consulted
//! (or really is bypassed) and the result can fail.

use flipper_core::bucketing::{Bucketer, Percentage};
use flipper_core::condition::Condition;
use flipper_core::eval::{FixedEnv, Reason, evaluate};
use flipper_core::{Checks, Item, Meta, Object, Value, json};

/// Upstream's `int(datetime.now().timestamp())`, pinned.
const NOW: i64 = 1_700_000_000;

/// Stand-ins for upstream's `uuid4().hex`.
const TXT_1: &str = "9d2f4b6a8c0e41f3a5b7c9d1e3f50617";
const TXT_2: &str = "e1c3a5b7d9f24680b2d4f6a8c0e1a3b5";
const TXT_3: &str = "4a6c8e0f2b4d4f61a3c5e7091b3d5f70";

/// The draw a random 50% bucketer lets through ("`bucketer.check` returns True").
const BUCKETER_TRUE: FixedEnv = FixedEnv {
    now: NOW as f64,
    random: 0.4,
};
/// The draw a random 50% bucketer rejects ("`bucketer.check` returns False").
const BUCKETER_FALSE: FixedEnv = FixedEnv {
    now: NOW as f64,
    random: 0.6,
};

fn v(x: impl Into<Value>) -> Value {
    x.into()
}

fn object<const N: usize>(pairs: [(&str, Value); N]) -> Object {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

fn half_bucketer() -> Bucketer {
    Bucketer::percentage(Percentage::fixed(0.5))
}

/// `FeatureFlagStoreMeta(now, client_data)`.
fn meta_with(client_data: Object) -> Meta {
    let mut meta = Meta::new(NOW);
    meta.client_data = Value::from(client_data);
    meta
}

/// `FeatureFlagStoreMeta(now, conditions=..., bucketer=...)`.
fn meta_of(conditions: Vec<Condition>, bucketer: Bucketer) -> Meta {
    let mut meta = Meta::new(NOW);
    meta.conditions = conditions;
    meta.bucketer = bucketer;
    meta
}

fn item(name: &str, is_enabled: bool, meta: Meta) -> Item {
    Item {
        feature_name: name.to_owned(),
        is_enabled: Value::Bool(is_enabled),
        meta,
    }
}

fn field<'a>(doc: &'a Value, key: &str) -> &'a Value {
    &doc.as_object().expect("an object")[key]
}

/// `tests/contrib/storage/test_item.py`.
mod test_item {
    use super::*;

    fn checks(kwargs: Vec<(&str, Value)>) -> Checks {
        kwargs.into_iter().collect()
    }

    mod test_to_dict {
        use super::*;

        #[test]
        fn test_includes_correct_feature_name() {
            let it = item(TXT_1, true, meta_with(Object::new()));
            assert_eq!(field(&it.to_value(), "feature_name"), &v(TXT_1));
        }

        #[test]
        fn test_includes_correct_is_enabled_when_true() {
            let it = item(TXT_1, true, meta_with(Object::new()));
            assert_eq!(field(&it.to_value(), "is_enabled"), &v(true));
        }

        #[test]
        fn test_includes_correct_is_enabled_when_false() {
            let it = item(TXT_1, false, meta_with(Object::new()));
            assert_eq!(field(&it.to_value(), "is_enabled"), &v(false));
        }

        #[test]
        fn test_includes_correct_meta() {
            let meta = meta_with(object([("foo", v("bar"))]));
            let it = item(TXT_1, true, meta.clone());
            assert_eq!(field(&it.to_value(), "meta"), &meta.to_value());
            assert_eq!(
                json::to_string(field(&it.to_value(), "meta")),
                r#"{"client_data": {"foo": "bar"}, "created_date": 1700000000, "conditions": [], "bucketer": {"type": "NoOpBucketer"}}"#
            );
        }
    }

    mod test_serialize {
        use super::*;

        #[test]
        fn test_is_base_64_encoded() {
            // The name is historical (spec §7): the bytes are plain JSON, not base64. What can
            // be checked is what upstream checks (they decode as UTF-8) and more: pure ASCII
            // JSON that parses back to the same document.
            let it = item(TXT_1, true, meta_with(Object::new()));
            let bytes = it.serialize();
            let text = std::str::from_utf8(&bytes).expect("UTF-8");
            assert!(text.is_ascii());
            assert!(text.starts_with(r#"{"feature_name": ""#));
            assert_eq!(json::parse(text).unwrap(), it.to_value());
        }

        #[test]
        fn test_contains_all_fields_from_json() {
            let it = item(TXT_1, true, meta_with(Object::new()));
            // `serialize() == json.dumps(to_dict())`, and the exact bytes.
            assert_eq!(it.serialize(), json::to_vec(&it.to_value()));
            assert_eq!(
                String::from_utf8(it.serialize()).unwrap(),
                format!(
                    r#"{{"feature_name": "{TXT_1}", "is_enabled": true, "meta": {{"client_data": {{}}, "created_date": 1700000000, "conditions": [], "bucketer": {{"type": "NoOpBucketer"}}}}}}"#
                )
            );
        }
    }

    mod test_deserialize {
        use super::*;

        fn round_trip(it: &Item) -> Item {
            Item::deserialize(&it.serialize()).expect("own output reads back")
        }

        #[test]
        fn test_returns_instance_of_class() {
            let it = item(TXT_1, true, meta_with(Object::new()));
            assert_eq!(round_trip(&it), it);
        }

        #[test]
        fn test_sets_correct_feature_name() {
            let it = item(TXT_1, true, meta_with(Object::new()));
            assert_eq!(
                field(&round_trip(&it).to_value(), "feature_name"),
                &v(TXT_1)
            );
        }

        #[test]
        fn test_sets_correct_is_enabled() {
            let it = item(TXT_1, true, meta_with(Object::new()));
            assert!(round_trip(&it).is_enabled(&Checks::new(), &BUCKETER_FALSE));
            let off = item(TXT_1, false, meta_with(Object::new()));
            assert!(!round_trip(&off).is_enabled(&Checks::new(), &BUCKETER_TRUE));
        }

        #[test]
        fn test_sets_correct_client_data() {
            let it = item(TXT_1, true, meta_with(object([("foo", v("bar"))])));
            let back = round_trip(&it).to_value();
            assert_eq!(
                field(field(&back, "meta"), "client_data"),
                &Value::from(object([("foo", v("bar"))]))
            );
        }
    }

    mod test_is_enabled {
        use super::*;

        #[test]
        fn test_is_enabled_is_true() {
            let it = item(TXT_1, true, meta_with(Object::new()));
            assert!(it.is_enabled(&Checks::new(), &BUCKETER_FALSE));
        }

        #[test]
        fn test_is_enabled_is_false() {
            let it = item(TXT_1, false, meta_with(Object::new()));
            assert!(!it.is_enabled(&Checks::new(), &BUCKETER_TRUE));
        }

        #[test]
        fn test_is_true_if_conditions_are_matched() {
            let it = item(
                TXT_1,
                true,
                meta_of(vec![Condition::new().eq("foo", true)], Bucketer::NoOp),
            );
            assert!(it.is_enabled(&checks(vec![("foo", v(true))]), &BUCKETER_TRUE));
        }

        #[test]
        fn test_is_false_if_conditions_are_not_matched() {
            let it = item(
                TXT_1,
                true,
                meta_of(vec![Condition::new().eq("foo", true)], Bucketer::NoOp),
            );
            assert!(!it.is_enabled(&checks(vec![("foo", v(false))]), &BUCKETER_TRUE));
        }

        #[test]
        fn test_is_false_if_one_of_many_conditions_are_not_matched() {
            let conditions = vec![
                Condition::new().eq("foo", true),
                Condition::new().eq("x", 9),
            ];
            let it = item(TXT_1, true, meta_of(conditions, Bucketer::NoOp));
            assert!(!it.is_enabled(
                &checks(vec![("foo", v(true)), ("x", v(11))]),
                &BUCKETER_TRUE
            ));
        }

        #[test]
        fn test_is_true_if_all_of_many_conditions_are_matched() {
            let conditions = vec![
                Condition::new().eq("foo", true),
                Condition::new().eq("x", 9),
            ];
            let it = item(TXT_1, true, meta_of(conditions, Bucketer::NoOp));
            assert!(it.is_enabled(&checks(vec![("foo", v(true)), ("x", v(9))]), &BUCKETER_TRUE));
        }

        #[test]
        fn test_returns_false_if_bucketer_check_returns_false() {
            let it = item(TXT_1, true, meta_of(vec![], half_bucketer()));
            let e = evaluate(&it, &Checks::new(), &BUCKETER_FALSE);
            assert_eq!((e.enabled, e.reason), (false, Reason::BucketedOut));
        }

        #[test]
        fn test_returns_true_if_bucketer_check_returns_true() {
            let it = item(TXT_1, true, meta_of(vec![], half_bucketer()));
            let e = evaluate(&it, &Checks::new(), &BUCKETER_TRUE);
            assert_eq!((e.enabled, e.reason), (true, Reason::BucketedIn));
        }

        #[test]
        fn test_returns_false_when_bucketer_returns_false_and_conditions_not_specified() {
            // flag.is_enabled(user_id=2) # False  (upstream's comment; it calls is_enabled()
            // with no checks, so the bucketer decides)
            let it = item(
                TXT_1,
                true,
                meta_of(vec![Condition::new().eq("is_admin", true)], half_bucketer()),
            );
            let e = evaluate(&it, &Checks::new(), &BUCKETER_FALSE);
            assert_eq!((e.enabled, e.reason), (false, Reason::BucketedOut));
            // The comment's own call is True in Python (spec §3.2: any check plus a condition
            // bypasses the bucketer, and the unmentioned `is_admin` passes vacuously).
            let e = evaluate(&it, &checks(vec![("user_id", v(2))]), &BUCKETER_FALSE);
            assert_eq!((e.enabled, e.reason), (true, Reason::ConditionsMatched));
        }

        #[test]
        fn test_returns_true_when_bucketer_returns_false_and_conditions_return_true() {
            // flag.is_enabled(user_id=2, is_admin=True) # True: with checks and a condition,
            // only the conditions decide and the bucketer is not consulted.
            let it = item(
                TXT_1,
                true,
                meta_of(vec![Condition::new().eq("is_admin", true)], half_bucketer()),
            );
            let e = evaluate(&it, &checks(vec![("is_admin", v(true))]), &BUCKETER_FALSE);
            assert_eq!((e.enabled, e.reason), (true, Reason::ConditionsMatched));
        }

        #[test]
        fn test_returns_true_when_bucketer_returns_true_and_conditions_not_specified() {
            // flag.is_enabled(user_id=1) # True
            let it = item(
                TXT_1,
                true,
                meta_of(vec![Condition::new().eq("is_admin", true)], half_bucketer()),
            );
            let e = evaluate(&it, &Checks::new(), &BUCKETER_TRUE);
            assert_eq!((e.enabled, e.reason), (true, Reason::BucketedIn));
        }

        #[test]
        fn test_returns_false_when_bucketer_returns_true_and_conditions_return_false() {
            // flag.is_enabled(user_id=1, is_admin=False) # False
            let it = item(
                TXT_1,
                true,
                meta_of(vec![Condition::new().eq("is_admin", true)], half_bucketer()),
            );
            let e = evaluate(&it, &checks(vec![("is_admin", v(false))]), &BUCKETER_TRUE);
            assert_eq!((e.enabled, e.reason), (false, Reason::ConditionsFailed));
        }
    }
}

/// `tests/contrib/storage/test_meta.py`.
mod test_meta {
    use super::*;

    fn from_json(text: &str) -> Meta {
        Meta::from_value(&json::parse(text).unwrap()).expect("readable meta")
    }

    mod test_to_dict {
        use super::*;

        #[test]
        fn test_includes_correct_created_date() {
            let meta = meta_with(Object::new());
            assert_eq!(field(&meta.to_value(), "created_date"), &v(NOW));
        }

        #[test]
        fn test_includes_correct_client_data() {
            let data = object([("foo", v(99)), ("bar", v("ajds"))]);
            let meta = meta_with(data.clone());
            assert_eq!(field(&meta.to_value(), "client_data"), &Value::from(data));
        }

        #[test]
        fn test_includes_correct_conditions() {
            let conditions = vec![
                Condition::new().eq("foo", 1),
                Condition::new().eq("bar", "baz"),
            ];
            let meta = meta_of(conditions.clone(), Bucketer::NoOp);
            let serialized: Value = conditions.iter().map(Condition::to_value).collect();
            assert_eq!(field(&meta.to_value(), "conditions"), &serialized);
        }

        #[test]
        fn test_includes_currect_bucketer() {
            let bucketer = Bucketer::percentage(Percentage::fixed(0.3));
            let meta = meta_of(vec![], bucketer.clone());
            assert_eq!(field(&meta.to_value(), "bucketer"), &bucketer.to_value());
        }
    }

    mod test_from_dict {
        use super::*;

        #[test]
        fn test_will_not_crash_if_client_data_not_present() {
            let meta = from_json(r#"{"created_date": 1700000000, "conditions": []}"#);
            assert_eq!(meta.client_data, Value::from(Object::new()));
        }

        #[test]
        fn test_will_not_crash_if_conditions_not_present() {
            let meta = from_json(r#"{"created_date": 1700000000, "client_data": {}}"#);
            assert!(meta.conditions.is_empty());
            assert_eq!(meta.created_date_secs(), Some(NOW));
        }

        #[test]
        fn test_can_create_with_bucketer() {
            let bucketer = Bucketer::percentage(Percentage::fixed(0.3));
            let mut doc = Object::new();
            doc.insert("created_date".into(), v(NOW));
            doc.insert("bucketer".into(), bucketer.to_value());
            let meta = Meta::from_value(&Value::from(doc)).unwrap();
            assert_eq!(meta.bucketer.to_value(), bucketer.to_value());
            assert_eq!(meta.bucketer, bucketer);
        }
    }

    /// Deviation: `Meta` has no `update(...)`; its fields are public and are assigned
    /// directly, and the client-data merge `update` performs lives in
    /// `FeatureFlagClient::set_client_data` (ported in `upstream_client.rs`). Each test applies
    /// the update the Rust way and checks the stored form, so what a store would write can fail.
    mod test_update {
        use super::*;

        /// `meta.client_data.update(new)`: Python's dict merge, which keeps an existing key's
        /// position.
        fn merge_client_data(meta: &mut Meta, new: Object) {
            let Value::Object(existing) = &mut meta.client_data else {
                panic!("client_data is an object");
            };
            for (k, v) in new {
                existing.insert(k, v);
            }
        }

        #[test]
        fn test_updates_created_date() {
            let later = NOW + 1;
            let mut meta = meta_with(Object::new());
            meta.created_date = v(later);
            assert_eq!(meta.created_date_secs(), Some(later));
            assert_eq!(field(&meta.to_value(), "created_date"), &v(later));
        }

        #[test]
        fn test_updates_client_data() {
            let update = object([(TXT_1, v(TXT_2))]);
            let mut meta = meta_with(Object::new());
            merge_client_data(&mut meta, update.clone());
            assert_eq!(meta.client_data, Value::from(update));
        }

        #[test]
        fn test_merges_old_and_new_client_data() {
            let mut meta = meta_with(object([("a", v(1)), ("b", v(2))]));
            merge_client_data(&mut meta, object([("b", v(3))]));
            assert_eq!(
                meta.client_data,
                Value::from(object([("a", v(1)), ("b", v(3))]))
            );
            // The replaced key keeps its place, as in Python, so the bytes match too.
            assert_eq!(json::to_string(&meta.client_data), r#"{"a": 1, "b": 3}"#);
        }

        #[test]
        fn test_updating_created_date_does_not_affect_client_data() {
            let mut meta = meta_with(Object::new());
            meta.created_date = v(NOW + 1);
            let back = Meta::from_value(&meta.to_value()).unwrap();
            assert_eq!(back.client_data, Value::from(Object::new()));
            assert_eq!(back.created_date_secs(), Some(NOW + 1));
        }

        #[test]
        fn test_updating_client_data_does_not_affect_created_date() {
            let mut meta = meta_with(Object::new());
            merge_client_data(&mut meta, object([(TXT_3, v(TXT_1))]));
            let back = Meta::from_value(&meta.to_value()).unwrap();
            assert_eq!(back.created_date_secs(), Some(NOW));
        }

        #[test]
        fn test_sets_conditions() {
            let conditions = vec![Condition::new().eq("foo", 1)];
            let mut meta = Meta::new(NOW);
            meta.conditions.clone_from(&conditions);
            let back = Meta::from_value(&meta.to_value()).unwrap();
            assert_eq!(back.conditions, conditions);
        }

        #[test]
        fn test_replaces_conditions_entirely() {
            let conditions = vec![Condition::new().eq("foo", 1)];
            let mut meta = Meta::new(NOW);
            meta.conditions.clone_from(&conditions);
            meta.conditions.clone_from(&conditions);
            assert_eq!(meta.conditions, conditions);
            assert_eq!(
                json::to_string(field(&meta.to_value(), "conditions")),
                r#"[{"foo": [{"variable": "foo", "value": 1, "operator": null}]}]"#
            );
        }

        #[test]
        fn test_sets_bucketer() {
            let mut meta = Meta::new(NOW);
            meta.bucketer = Bucketer::percentage(Percentage::fixed(0.1));
            let back = Meta::from_value(&meta.to_value()).unwrap();
            let Bucketer::Percentage { percentage } = &back.bucketer else {
                panic!("a percentage bucketer, got {:?}", back.bucketer);
            };
            assert_eq!(percentage.value_at(NOW as f64).unwrap().as_f64(), Some(0.1));
        }
    }
}
