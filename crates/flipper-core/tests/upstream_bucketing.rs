//! Port of flipper-client's `tests/bucketing/**` (50 upstream cases):
//!
//! | upstream file | cases |
//! |---|---|
//! | `tests/bucketing/percentage/test_base.py` | 3 |
//! | `tests/bucketing/percentage/test_factory.py` | 4 |
//! | `tests/bucketing/percentage/test_linear_ramp_percentage.py` | 7 |
//! | `tests/bucketing/percentage/test_percentage.py` | 5 |
//! | `tests/bucketing/test_consistent_hash_percentage_bucketer.py` | 13 |
//! | `tests/bucketing/test_factory.py` | 5 |
//! | `tests/bucketing/test_noop_bucketer.py` | 5 |
//! | `tests/bucketing/test_percentage_bucketer.py` | 8 |
//!
//! Modules mirror the Python files and classes; test names are the upstream ones. Python's
//! `randomizer=MagicMock(return_value=x)` and patched `datetime.now` become a [`FixedEnv`]:
//! our clock and random draw are inputs.

use flipper_core::bucketing::{Bucketer, Percentage, consistent_hash_bucket};
use flipper_core::eval::FixedEnv;
use flipper_core::{Checks, Value, json};

/// 2018-01-01T00:00:00Z, the upstream tests' `datetime(2018, 1, 1)` (taken as UTC here: our
/// ramp works on epoch seconds, not local time).
const JAN_1_2018: i64 = 1_514_764_800;

fn env(now: f64, random: f64) -> FixedEnv {
    FixedEnv { now, random }
}

/// An environment whose random draw must not matter.
fn any_env() -> FixedEnv {
    env(JAN_1_2018 as f64, 0.999_999)
}

fn parse(text: &str) -> Value {
    json::parse(text).expect("test JSON parses")
}

/// The percentage's value (`percentage.value` / `bucketer.percentage`) at `now`.
fn value_of(p: &Percentage, now: f64) -> f64 {
    p.value_at(now)
        .expect("numeric percentage")
        .as_f64()
        .expect("a number")
}

/// The percentage a bucketer holds (`bucketer.percentage`).
fn bucketer_percentage(b: &Bucketer) -> f64 {
    match b {
        Bucketer::Percentage { percentage } | Bucketer::ConsistentHash { percentage, .. } => {
            value_of(percentage, JAN_1_2018 as f64)
        }
        Bucketer::NoOp => panic!("a NoOp bucketer has no percentage"),
    }
}

mod percentage {
    /// `tests/bucketing/percentage/test_base.py`: `x <= Percentage(0.5)`.
    ///
    /// Python's reflected comparison is what the random bucketer computes
    /// (`randomizer() <= self._percentage`), so it is observed through a random bucketer whose
    /// draw is `x`.
    mod test_base {
        mod test_less_than_or_equal_to {
            use super::super::super::*;

            fn x_le_half(x: f64) -> bool {
                Bucketer::percentage(Percentage::fixed(0.5))
                    .check(&Checks::new(), &env(0.0, x))
                    .unwrap()
            }

            #[test]
            fn test_when_comparison_is_greater_than_value_it_returns_false() {
                assert!(!x_le_half(0.6));
            }

            #[test]
            fn test_when_comparison_is_equal_to_value_it_returns_true() {
                assert!(x_le_half(0.5));
            }

            #[test]
            fn test_when_comparison_is_less_then_value_it_returns_true() {
                assert!(x_le_half(0.4));
            }
        }
    }

    /// `tests/bucketing/percentage/test_factory.py` (`PercentageFactory.create` is
    /// [`Percentage::from_value`]).
    mod test_factory {
        mod test_create {
            use super::super::super::*;

            #[test]
            fn test_creates_percentage_percentage() {
                let p = Percentage::from_value(&parse(r#"{"type": "Percentage"}"#)).unwrap();
                // Python's `from_dict` without `value` gives `value=None` (spec §1.5).
                assert_eq!(p, Percentage::Fixed { value: Value::Null });
            }

            #[test]
            fn test_creates_linear_ramp_percentage() {
                let p =
                    Percentage::from_value(&parse(r#"{"type": "LinearRampPercentage"}"#)).unwrap();
                // The constructor defaults: 0.0 -> 1.0 over 3600 s, starting "now".
                assert_eq!(
                    p,
                    Percentage::LinearRamp {
                        initial_value: Value::Float(0.0),
                        final_value: Value::Float(1.0),
                        ramp_duration: Value::from(3600),
                        initial_time: None,
                    }
                );
            }

            #[test]
            fn test_raises_exception_when_given_an_unrecognized_type() {
                let err = Percentage::from_value(&parse(r#"{"type": "xyz"}"#)).unwrap_err();
                assert!(err.contains("not supported"), "{err}");
                assert!(err.contains("xyz"), "{err}");
            }

            #[test]
            fn test_passes_arguments_through_to_created_percentage() {
                let p = Percentage::from_value(&parse(r#"{"type": "Percentage", "value": 0.21}"#))
                    .unwrap();
                assert_eq!(value_of(&p, 0.0), 0.21);
            }
        }
    }

    /// `tests/bucketing/percentage/test_linear_ramp_percentage.py`.
    mod test_linear_ramp_percentage {
        mod test_get_type {
            use super::super::super::*;

            #[test]
            fn test_is_correct_value() {
                let p = Percentage::linear_ramp(0.0, 1.0, 3600, JAN_1_2018);
                assert_eq!(
                    p.to_value().as_object().unwrap()["type"],
                    Value::from("LinearRampPercentage")
                );
            }
        }

        mod test_value {
            use super::super::super::*;

            #[test]
            fn test_matches_initial_value_when_there_is_no_ramp_delta() {
                let p = Percentage::linear_ramp(0.8, 0.8, 3600, JAN_1_2018);
                // Before, at, during and after the ramp.
                for dt in [-10_000.0, 0.0, 1800.0, 100_000.0] {
                    assert_eq!(value_of(&p, JAN_1_2018 as f64 + dt), 0.8, "dt={dt}");
                }
            }

            #[test]
            fn test_matches_final_value_when_there_is_no_ramp_duration() {
                let p = Percentage::linear_ramp(0.2, 0.6, 0, JAN_1_2018);
                for dt in [-10.0, 0.0, 10.0] {
                    assert_eq!(value_of(&p, JAN_1_2018 as f64 + dt), 0.6, "dt={dt}");
                }
            }

            #[test]
            fn test_returns_a_value_that_is_linearly_interpolated_between_initial_and_final_value_by_time()
             {
                // Upstream patches datetime.now; our clock is the `now` argument.
                let now = JAN_1_2018;
                let (initial_value, final_value, ramp_duration) = (0.2, 0.6, 60);
                let expected_percentage = 0.5;
                let initial_time = now - (ramp_duration as f64 * expected_percentage) as i64;
                let p = Percentage::linear_ramp(
                    initial_value,
                    final_value,
                    ramp_duration,
                    initial_time,
                );
                let expected = (final_value - initial_value) * expected_percentage + initial_value;
                // Exact, as upstream's assertEqual: 0.4 in both computations.
                assert_eq!(value_of(&p, now as f64), expected);
                assert_eq!(expected, 0.4);
            }

            #[test]
            fn test_when_ramp_duration_is_longer_than_one_hour_and_ramp_has_completed_it_computes_value_correctly()
             {
                let now: i64 = 1_603_843_200; // 2020-10-28T00:00:00Z
                let ramp_duration: i64 = 1_601_314_960;
                let p = Percentage::LinearRamp {
                    initial_value: Value::Float(0.1),
                    // Upstream passes the int 1: the stored number kind is kept.
                    final_value: Value::from(1),
                    ramp_duration: Value::from(ramp_duration),
                    initial_time: Some(now - ramp_duration),
                };
                let expected = (1.0 - 0.1) * 1.0 + 0.1;
                assert_eq!(value_of(&p, now as f64), expected);
                assert_eq!(expected, 1.0);
                // And it stays there after the ramp.
                assert_eq!(value_of(&p, (now + 1_000_000) as f64), 1.0);
            }
        }

        mod test_to_dict {
            use super::super::super::*;

            #[test]
            fn test_returns_correct_values() {
                let p = Percentage::linear_ramp(0.2, 0.6, 60, JAN_1_2018);
                let expected = parse(
                    r#"{"type": "LinearRampPercentage", "initial_value": 0.2, "final_value": 0.6, "ramp_duration": 60, "initial_time": 1514764800}"#,
                );
                assert_eq!(p.to_value(), expected);
                // Byte for byte, in Python's key order.
                assert_eq!(json::to_string(&p.to_value()), json::to_string(&expected));
            }
        }

        mod test_from_dict {
            use super::super::super::*;

            #[test]
            fn test_sets_correct_data() {
                let data = parse(
                    r#"{"type": "LinearRampPercentage", "initial_value": 0.2, "final_value": 0.6, "ramp_duration": 60, "initial_time": 1514764800}"#,
                );
                let p = Percentage::from_value(&data).unwrap();
                assert_eq!(p, Percentage::linear_ramp(0.2, 0.6, 60, JAN_1_2018));
                assert_eq!(p.to_value(), data);
            }
        }
    }

    /// `tests/bucketing/percentage/test_percentage.py`.
    mod test_percentage {
        mod test_get_type {
            use super::super::super::*;

            #[test]
            fn test_is_correct_value() {
                assert_eq!(
                    Percentage::default().to_value().as_object().unwrap()["type"],
                    Value::from("Percentage")
                );
            }
        }

        mod test_value {
            use super::super::super::*;

            #[test]
            fn test_matches_value_provided_in_constructor() {
                assert_eq!(value_of(&Percentage::fixed(0.8), 0.0), 0.8);
            }

            #[test]
            fn test_defaults_to_1_dot_0() {
                let p = Percentage::default();
                assert_eq!(value_of(&p, 0.0), 1.0);
                assert_eq!(p, Percentage::fixed(1.0));
            }
        }

        mod test_to_dict {
            use super::super::super::*;

            #[test]
            fn test_returns_correct_values() {
                // Python compares dicts ignoring order; we also pin the written order
                // ("type" first, as Python writes it).
                assert_eq!(
                    json::to_string(&Percentage::fixed(0.8).to_value()),
                    r#"{"type": "Percentage", "value": 0.8}"#
                );
            }
        }

        mod test_from_dict {
            use super::super::super::*;

            #[test]
            fn test_sets_correct_data() {
                let data = parse(r#"{"type": "Percentage", "value": 0.8}"#);
                let p = Percentage::from_value(&data).unwrap();
                assert_eq!(p, Percentage::fixed(0.8));
                assert_eq!(p.to_value(), data);
            }
        }
    }
}

/// `tests/bucketing/test_consistent_hash_percentage_bucketer.py`. The scores in the upstream
/// comments (0.32 for no checks, 0.79 for `foo="bar"`, 0.67 for three keys) are the spec's
/// §4.4 vectors.
mod test_consistent_hash_percentage_bucketer {
    use super::*;

    fn ch(value: f64) -> Bucketer {
        Bucketer::consistent_hash(Percentage::fixed(value), Vec::<String>::new())
    }

    fn foo_bar() -> Checks {
        Checks::new().with("foo", "bar")
    }

    mod test_get_type {
        use super::*;

        #[test]
        fn test_is_correct_value() {
            let b = ch(1.0);
            assert_eq!(b.type_name(), "ConsistentHashPercentageBucketer");
            assert_eq!(
                b.to_value().as_object().unwrap()["type"],
                Value::from("ConsistentHashPercentageBucketer")
            );
        }
    }

    mod test_percentage {
        use super::*;

        #[test]
        fn test_returns_percentage_value_as_float() {
            assert_eq!(bucketer_percentage(&ch(0.5)), 0.5);
        }
    }

    mod test_check {
        use super::*;

        #[test]
        fn test_returns_true_when_randomized_is_less_than_percentage() {
            assert_eq!(consistent_hash_bucket(&Checks::new(), &[]), 32);
            assert_eq!(ch(0.5).check(&Checks::new(), &any_env()), Ok(true)); // score = 0.32
        }

        #[test]
        fn test_returns_true_when_randomized_is_equal_to_percentage() {
            assert_eq!(ch(0.32).check(&Checks::new(), &any_env()), Ok(true)); // score = 0.32
        }

        #[test]
        fn test_returns_false_when_randomized_is_greater_than_percentage() {
            assert_eq!(ch(0.2).check(&Checks::new(), &any_env()), Ok(false)); // score = 0.32
        }

        #[test]
        fn test_always_returns_false_when_percentage_is_zero() {
            assert_eq!(ch(0.0).check(&Checks::new(), &any_env()), Ok(false));
        }

        #[test]
        fn test_returns_true_when_conditions_hash_to_value_less_than_percentage() {
            assert_eq!(consistent_hash_bucket(&foo_bar(), &[]), 79);
            assert_eq!(ch(0.8).check(&foo_bar(), &any_env()), Ok(true)); // score = 0.79
        }

        #[test]
        fn test_returns_false_when_conditions_hash_to_value_greater_than_percentage() {
            assert_eq!(ch(0.5).check(&foo_bar(), &any_env()), Ok(false)); // score = 0.79
        }

        #[test]
        fn test_returns_true_when_conditions_hash_to_value_equal_to_percentage() {
            assert_eq!(ch(0.79).check(&foo_bar(), &any_env()), Ok(true)); // score = 0.79
        }

        #[test]
        fn test_always_returns_false_when_percentage_is_zero_when_including_conditions() {
            assert_eq!(ch(0.0).check(&foo_bar(), &any_env()), Ok(false));
        }

        #[test]
        fn test_hashing_is_consistent() {
            let b = ch(0.67001);
            let checks = Checks::new()
                .with("foo", "bar")
                .with("herp", 99)
                .with("derp", false);
            assert_eq!(consistent_hash_bucket(&checks, &[]), 67); // score = 0.67
            for i in 0..10 {
                // The random draw never matters to this bucketer.
                let e = env(JAN_1_2018 as f64 + f64::from(i), f64::from(i) / 10.0);
                assert_eq!(b.check(&checks, &e), Ok(true), "iteration {i}");
            }
            // Nor does the order the checks were given in.
            let reordered = Checks::new()
                .with("derp", false)
                .with("herp", 99)
                .with("foo", "bar");
            assert_eq!(b.check(&reordered, &any_env()), Ok(true));
            assert_eq!(ch(0.66).check(&reordered, &any_env()), Ok(false));
        }
    }

    mod test_to_dict {
        use super::*;

        #[test]
        fn test_returns_correct_data() {
            let b = Bucketer::consistent_hash(Percentage::fixed(0.5), ["foo"]);
            let expected = parse(
                r#"{"type": "ConsistentHashPercentageBucketer", "percentage": {"type": "Percentage", "value": 0.5}, "key_whitelist": ["foo"]}"#,
            );
            assert_eq!(b.to_value(), expected);
        }
    }

    mod test_from_dict {
        use super::*;

        #[test]
        fn test_sets_correct_data() {
            let data = parse(
                r#"{"type": "ConsistentHashPercentageBucketer", "percentage": {"type": "Percentage", "value": 0.5}, "key_whitelist": ["foo"]}"#,
            );
            let b = Bucketer::from_value(&data).unwrap();
            assert_eq!(
                b,
                Bucketer::consistent_hash(Percentage::fixed(0.5), ["foo"])
            );
            assert_eq!(b.to_value(), data);
        }
    }
}

/// `tests/bucketing/test_factory.py` (`BucketerFactory.create` is [`Bucketer::from_value`]).
mod test_factory {
    mod test_create {
        use super::super::*;

        #[test]
        fn test_creates_percentage_bucketer() {
            let b = Bucketer::from_value(&parse(r#"{"type": "PercentageBucketer"}"#)).unwrap();
            // Missing percentage: the default `Percentage()`, 100%.
            assert_eq!(b, Bucketer::percentage(Percentage::default()));
        }

        #[test]
        fn test_creates_consistent_hash_percentage_bucketer() {
            let b = Bucketer::from_value(&parse(r#"{"type": "ConsistentHashPercentageBucketer"}"#))
                .unwrap();
            assert_eq!(
                b,
                Bucketer::consistent_hash(Percentage::default(), Vec::<String>::new())
            );
        }

        #[test]
        fn test_creates_noop_bucketer() {
            let b = Bucketer::from_value(&parse(r#"{"type": "NoOpBucketer"}"#)).unwrap();
            assert_eq!(b, Bucketer::NoOp);
            assert!(b.is_noop());
        }

        #[test]
        fn test_raises_exception_when_given_an_unrecognized_type() {
            let err = Bucketer::from_value(&parse(r#"{"type": "xyz"}"#)).unwrap_err();
            assert!(err.contains("not supported"), "{err}");
            assert!(err.contains("xyz"), "{err}");
        }

        #[test]
        fn test_passes_arguments_through_to_created_bucketer() {
            let b = Bucketer::from_value(&parse(
                r#"{"type": "PercentageBucketer", "percentage": {"type": "Percentage", "value": 0.21}}"#,
            ))
            .unwrap();
            assert_eq!(bucketer_percentage(&b), 0.21);
        }
    }
}

/// `tests/bucketing/test_noop_bucketer.py`.
mod test_noop_bucketer {
    use super::*;

    mod test_get_type {
        use super::*;

        #[test]
        fn test_is_correct_value() {
            assert_eq!(Bucketer::NoOp.type_name(), "NoOpBucketer");
        }
    }

    mod test_check {
        use super::*;

        #[test]
        fn test_always_returns_true_with_no_checks() {
            // Even with a random draw that no percentage would let through.
            assert_eq!(
                Bucketer::NoOp.check(&Checks::new(), &env(0.0, 0.999_999)),
                Ok(true)
            );
        }

        #[test]
        fn test_always_returns_true_with_checks() {
            assert_eq!(
                Bucketer::NoOp.check(&Checks::new().with("foo", 1), &env(0.0, 0.999_999)),
                Ok(true)
            );
        }
    }

    mod test_to_dict {
        use super::*;

        #[test]
        fn test_returns_correct_data() {
            assert_eq!(
                json::to_string(&Bucketer::NoOp.to_value()),
                r#"{"type": "NoOpBucketer"}"#
            );
        }
    }

    mod test_from_dict {
        use super::*;

        #[test]
        fn test_sets_correct_data() {
            let data = parse(r#"{"type": "NoOpBucketer"}"#);
            let b = Bucketer::from_value(&data).unwrap();
            assert_eq!(b, Bucketer::NoOp);
            assert_eq!(b.to_value(), data);
        }
    }
}

/// `tests/bucketing/test_percentage_bucketer.py`. Upstream's `randomizer=MagicMock(return_value=x)`
/// is [`FixedEnv::random`].
mod test_percentage_bucketer {
    use super::*;

    fn half() -> Bucketer {
        Bucketer::percentage(Percentage::fixed(0.5))
    }

    mod test_get_type {
        use super::*;

        #[test]
        fn test_is_correct_value() {
            assert_eq!(half().type_name(), "PercentageBucketer");
        }
    }

    mod test_percentage {
        use super::*;

        #[test]
        fn test_returns_percentage_value_as_float() {
            assert_eq!(bucketer_percentage(&half()), 0.5);
        }
    }

    mod test_check {
        use super::*;

        #[test]
        fn test_returns_true_when_randomized_is_less_than_percentage() {
            assert_eq!(half().check(&Checks::new(), &env(0.0, 0.4)), Ok(true));
        }

        #[test]
        fn test_returns_true_when_randomized_is_equal_to_percentage() {
            assert_eq!(half().check(&Checks::new(), &env(0.0, 0.5)), Ok(true));
        }

        #[test]
        fn test_returns_false_when_randomized_is_greater_than_percentage() {
            assert_eq!(half().check(&Checks::new(), &env(0.0, 0.6)), Ok(false));
        }

        #[test]
        fn test_always_returns_false_when_percentage_is_zero() {
            // A draw of 0.0 would pass `0.0 <= 0.0`: only the zero guard makes this false.
            let zero = Bucketer::percentage(Percentage::fixed(0.0));
            assert_eq!(zero.check(&Checks::new(), &env(0.0, 0.0)), Ok(false));
        }
    }

    mod test_to_dict {
        use super::*;

        #[test]
        fn test_returns_correct_data() {
            assert_eq!(
                json::to_string(&half().to_value()),
                r#"{"type": "PercentageBucketer", "percentage": {"type": "Percentage", "value": 0.5}}"#
            );
        }
    }

    mod test_from_dict {
        use super::*;

        #[test]
        fn test_sets_correct_data() {
            let data = parse(
                r#"{"type": "PercentageBucketer", "percentage": {"type": "Percentage", "value": 0.5}}"#,
            );
            let b = Bucketer::from_value(&data).unwrap();
            assert_eq!(b, half());
            assert_eq!(b.to_value(), data);
        }
    }
}
