//! Property tests: evaluation never panics, scores stay in [0, 1), stored flags round-trip.

use flipper_core::bucketing::{Bucketer, Percentage, consistent_hash_bucket};
use flipper_core::condition::{Condition, Operator};
use flipper_core::eval::{ContextEvaluator, FixedEnv, Prepared};
use flipper_core::{Checks, Int, Item, Object, Value};
use proptest::prelude::*;

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u128>().prop_map(|u| Value::Int(Int::from(u))),
        any::<f64>().prop_map(Value::Float),
        prop_oneof![Just(f64::NAN), Just(f64::INFINITY), Just(-0.0), Just(0.5)]
            .prop_map(Value::Float),
        "\\PC{0,6}".prop_map(Value::from),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::List),
            prop::collection::vec(("[a-c]{1,2}", inner), 0..3)
                .prop_map(|kv| Value::from(kv.into_iter().collect::<Object>())),
        ]
    })
}

const NAMES: &[&str] = &["a", "b", "user_id", "randomizer", "é", ""];

fn name() -> impl Strategy<Value = &'static str> {
    prop::sample::select(NAMES)
}

fn condition() -> impl Strategy<Value = Condition> {
    prop::collection::vec(
        (name(), prop::sample::select(&Operator::ALL[..]), value()),
        0..4,
    )
    .prop_map(|checks| {
        checks
            .into_iter()
            .fold(Condition::new(), |c, (n, op, v)| c.with(n, op, v))
    })
}

fn percentage() -> impl Strategy<Value = Percentage> {
    prop_oneof![
        value().prop_map(|value| Percentage::Fixed { value }),
        (value(), value(), value(), prop::option::of(any::<i32>())).prop_map(
            |(initial_value, final_value, ramp_duration, t)| Percentage::LinearRamp {
                initial_value,
                final_value,
                ramp_duration,
                initial_time: t.map(i64::from),
            }
        ),
    ]
}

fn bucketer() -> impl Strategy<Value = Bucketer> {
    prop_oneof![
        Just(Bucketer::NoOp),
        percentage().prop_map(Bucketer::percentage),
        (percentage(), prop::collection::vec(name(), 0..3))
            .prop_map(|(p, keys)| Bucketer::consistent_hash(p, keys)),
    ]
}

fn item() -> impl Strategy<Value = Item> {
    (
        value(),
        prop::collection::vec(condition(), 0..3),
        bucketer(),
        value(),
    )
        .prop_map(|(is_enabled, conditions, bucketer, client_data)| {
            let mut item = Item::new("f", true, 1_700_000_000);
            item.is_enabled = is_enabled;
            item.meta.conditions = conditions;
            item.meta.bucketer = bucketer;
            if client_data.is_truthy() {
                item.meta.client_data = client_data;
            }
            item
        })
}

/// Flags that bucket on a few shared whitelists (so that whitelists repeat across flags), mixed
/// with arbitrary ones.
fn flag_set() -> impl Strategy<Value = Vec<Item>> {
    let hashed = (0.0..1.0f64, prop::collection::vec(name(), 0..3)).prop_map(|(share, keys)| {
        let mut item = Item::new("h", true, 1);
        item.meta.bucketer = Bucketer::consistent_hash(Percentage::fixed(share), keys);
        item
    });
    prop::collection::vec(prop_oneof![3 => hashed, 1 => item()], 1..12)
}

fn checks() -> impl Strategy<Value = Checks> {
    prop::collection::vec((name(), value()), 0..5).prop_map(|kv| kv.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn evaluation_never_panics(item in item(), checks in checks(), now in any::<f64>(), random in 0.0..1.0f64) {
        let env = FixedEnv { now, random };
        let e = item.evaluate(&checks, &env);
        // An error always means "off".
        prop_assert!(e.error_detail().is_none() || !e.enabled);
        // The answer alone is the evaluation's.
        prop_assert_eq!(item.is_enabled(&checks, &env), e.enabled);
    }

    #[test]
    fn a_prepared_flag_answers_as_the_flag(items in flag_set(), checks in checks(), now in any::<f64>(), random in 0.0..1.0f64) {
        let env = FixedEnv { now, random };
        for item in &items {
            prop_assert_eq!(
                Prepared::new(item).is_enabled(item, &checks, &env),
                item.is_enabled(&checks, &env),
                "{:?}", item.meta.bucketer
            );
        }
    }

    #[test]
    fn evaluating_a_context_at_once_answers_as_each_flag_alone(items in flag_set(), checks in checks(), now in any::<f64>(), random in 0.0..1.0f64) {
        let env = FixedEnv { now, random };
        let mut context = ContextEvaluator::new(&checks, &env);
        for item in &items {
            prop_assert_eq!(context.evaluate(item), item.evaluate(&checks, &env));
        }
    }

    #[test]
    fn scores_are_in_unit_interval(checks in checks(), keys in prop::collection::vec(name(), 0..3)) {
        let keys: Vec<String> = keys.into_iter().map(str::to_owned).collect();
        let score = f64::from(consistent_hash_bucket(&checks, &keys)) / 100.0;
        prop_assert!((0.0..1.0).contains(&score));
    }

    #[test]
    fn stored_flags_round_trip(item in item()) {
        // Checks that flipper-client could not read back are rejected before any write.
        prop_assume!(item.validate().is_ok());
        let bytes = item.serialize();
        prop_assert!(bytes.is_ascii());
        let back = Item::deserialize(&bytes).unwrap();
        prop_assert_eq!(back.serialize(), bytes);
    }

    #[test]
    fn the_canonical_reader_and_writer_agree_with_the_general_ones(item in item(), cut in 0usize..400, junk in "[ ,:x{}\\[\\]\"0-9]{0,3}") {
        // Writing: the direct writer and json.dumps of the document.
        let text = item.to_json();
        prop_assert_eq!(&text, &flipper_core::json::to_string(&item.to_value()));
        let general = |text: &str| flipper_core::json::parse(text)
            .map_err(flipper_core::ItemError::Json)
            .and_then(|v| Item::from_value(&v));
        // Reading canonical text: the same item as the general reader, whole text consumed.
        let fast = Item::read_canonical(&text);
        prop_assert!(fast.as_ref().is_none_or(|(_, end)| *end == text.len()));
        prop_assert_eq!(fast.map(|(item, _)| item), general(&text).ok());
        // Damaged text: deserialize answers exactly as the general reader (fast path or not).
        let mut cut = cut.min(text.len());
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        let damaged = format!("{}{junk}{}", &text[..cut], &text[cut..]);
        prop_assert_eq!(Item::deserialize(damaged.as_bytes()), general(&damaged));
    }

    #[test]
    fn reading_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = Item::deserialize(&bytes);
    }

    #[test]
    fn ramps_stay_between_their_ends(a in 0.0..1.0f64, b in 0.0..1.0f64, d in 1i64..100_000, t in any::<i32>(), now in -1e10..1e10f64) {
        let v = Percentage::linear_ramp(a, b, d, i64::from(t)).value_at(now).unwrap().as_f64().unwrap();
        prop_assert!(v >= a.min(b) && v <= a.max(b), "{v} outside [{a}, {b}]");
    }
}
