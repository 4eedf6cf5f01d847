//! Port of flipper-client's `tests/conditions/**` (58 upstream cases):
//!
//! | upstream file | cases |
//! |---|---|
//! | `tests/conditions/operators/test_equality_operator.py` | 2 |
//! | `tests/conditions/operators/test_greater_than_operator.py` | 3 |
//! | `tests/conditions/operators/test_greater_than_or_equal_to_operator.py` | 3 |
//! | `tests/conditions/operators/test_less_than_operator.py` | 3 |
//! | `tests/conditions/operators/test_less_than_or_equal_to_operator.py` | 3 |
//! | `tests/conditions/operators/test_negated_set_membership_operator.py` | 2 |
//! | `tests/conditions/operators/test_negation_operator.py` | 2 |
//! | `tests/conditions/operators/test_set_membership_operator.py` | 2 |
//! | `tests/conditions/test_check.py` | 14 |
//! | `tests/conditions/test_condition.py` | 24 |
//!
//! Python's operator classes are [`Operator`] variants (`operator.compare(a, b)` is
//! [`Operator::apply`]); `Check.factory(key, value)` is [`Condition::check`] /
//! [`parse_check_key`]; `Condition(**kwargs)` is [`Condition::from_kwargs`] and
//! `condition.check(**kwargs)` is [`Condition::evaluate`].

use flipper_core::condition::{Check, Condition, Operator, make_check_key, parse_check_key};
use flipper_core::{Checks, Value, json};

fn v(x: impl Into<Value>) -> Value {
    x.into()
}

fn parse(text: &str) -> Value {
    json::parse(text).expect("test JSON parses")
}

/// Stand-ins for upstream's `uuid4().hex`.
const TXT_1: &str = "5f0c1e9a7b3d4c2e8a6f1b0d9c7e3a52";
const TXT_2: &str = "c2d8e4f6a0b1937d5e8f2a4c6b0d1e93";
const TXT_3: &str = "0a9b8c7d6e5f40312233445566778899";

mod operators {
    use super::*;

    fn compare(op: Operator, a: impl Into<Value>, b: impl Into<Value>) -> bool {
        op.apply(&a.into(), &b.into()).expect("comparable operands")
    }

    /// `tests/conditions/operators/test_equality_operator.py`.
    mod test_equality_operator {
        mod test_compare {
            use super::super::*;

            #[test]
            fn test_returns_true_when_values_are_equal() {
                assert!(compare(Operator::Eq, 1, 1));
            }

            #[test]
            fn test_returns_false_when_values_are_not_equal() {
                assert!(!compare(Operator::Eq, 1, 2));
            }
        }
    }

    /// `tests/conditions/operators/test_greater_than_operator.py`.
    mod test_greater_than_operator {
        mod test_compare {
            use super::super::*;

            #[test]
            fn test_returns_true_when_expected_is_greater_than_actual() {
                assert!(compare(Operator::Gt, 2, 1));
            }

            #[test]
            fn test_returns_false_when_expected_is_less_than_actual() {
                assert!(!compare(Operator::Gt, 1, 2));
            }

            #[test]
            fn test_returns_false_when_values_are_equal() {
                assert!(!compare(Operator::Gt, 1, 1));
            }
        }
    }

    /// `tests/conditions/operators/test_greater_than_or_equal_to_operator.py`.
    mod test_greater_than_or_equal_to_operator {
        mod test_compare {
            use super::super::*;

            #[test]
            fn test_returns_true_when_expected_is_greater_than_actual() {
                assert!(compare(Operator::Gte, 2, 1));
            }

            #[test]
            fn test_returns_false_when_expected_is_less_than_actual() {
                assert!(!compare(Operator::Gte, 1, 2));
            }

            #[test]
            fn test_returns_true_when_values_are_equal() {
                assert!(compare(Operator::Gte, 1, 1));
            }
        }
    }

    /// `tests/conditions/operators/test_less_than_operator.py`.
    mod test_less_than_operator {
        mod test_compare {
            use super::super::*;

            #[test]
            fn test_returns_true_when_expected_is_less_than_actual() {
                assert!(compare(Operator::Lt, 1, 2));
            }

            #[test]
            fn test_returns_false_when_expected_is_greater_than_actual() {
                assert!(!compare(Operator::Lt, 2, 1));
            }

            #[test]
            fn test_returns_false_when_values_are_equal() {
                assert!(!compare(Operator::Lt, 1, 1));
            }
        }
    }

    /// `tests/conditions/operators/test_less_than_or_equal_to_operator.py`.
    mod test_less_than_or_equal_to_operator {
        mod test_compare {
            use super::super::*;

            #[test]
            fn test_returns_true_when_expected_is_less_than_actual() {
                assert!(compare(Operator::Lte, 1, 2));
            }

            #[test]
            fn test_returns_false_when_expected_is_greater_than_actual() {
                assert!(!compare(Operator::Lte, 2, 1));
            }

            #[test]
            fn test_returns_true_when_values_are_equal() {
                assert!(compare(Operator::Lte, 1, 1));
            }
        }
    }

    /// `tests/conditions/operators/test_negated_set_membership_operator.py`.
    mod test_negated_set_membership_operator {
        mod test_compare {
            use super::super::*;

            #[test]
            fn test_returns_true_when_expected_is_not_in_actual() {
                assert!(compare(Operator::NotIn, 4, vec![1, 2, 3]));
            }

            #[test]
            fn test_returns_false_when_expected_is_in_actual() {
                assert!(!compare(Operator::NotIn, 2, vec![2, 3, 4]));
            }
        }
    }

    /// `tests/conditions/operators/test_negation_operator.py`.
    mod test_negation_operator {
        mod test_compare {
            use super::super::*;

            #[test]
            fn test_returns_true_when_values_are_not_equal() {
                assert!(compare(Operator::Ne, 2, 1));
            }

            #[test]
            fn test_returns_false_when_values_equal() {
                assert!(!compare(Operator::Ne, 1, 1));
            }
        }
    }

    /// `tests/conditions/operators/test_set_membership_operator.py`.
    mod test_set_membership_operator {
        mod test_compare {
            use super::super::*;

            #[test]
            fn test_returns_true_when_expected_is_in_actual() {
                assert!(compare(Operator::In, 1, vec![1, 2, 3]));
            }

            #[test]
            fn test_returns_false_when_expected_is_not_in_actual() {
                assert!(!compare(Operator::In, 1, vec![2, 3, 4]));
            }
        }
    }
}

/// `tests/conditions/test_check.py`.
mod test_check {
    use super::*;

    /// `Check.factory(key, value)`: the single check a one-key condition holds.
    fn factory(key: &str, value: impl Into<Value>) -> Check {
        let c = Condition::new().check(key, value).expect("valid key");
        let mut checks = c.checks();
        let check = checks.next().expect("one check");
        assert!(checks.next().is_none());
        check
    }

    // File `test_check.py`, class `TestCheck`.
    #[allow(clippy::module_inception)]
    mod test_check {
        use super::*;

        #[test]
        fn test_calls_operator_with_correct_arguments() {
            // Upstream asserts `operator.compare(runtime_value, stored_value)` with a mock. Our
            // operators are values, so the argument order is observed through an asymmetric
            // operator: stored "b", runtime "a" -> `"a" < "b"` holds, `"b" < "a"` would not.
            let condition = Condition::new().lt(TXT_1, "b");
            assert_eq!(
                condition.evaluate(&Checks::new().with(TXT_1, "a")),
                Ok(true)
            );
            assert_eq!(
                condition.evaluate(&Checks::new().with(TXT_1, "c")),
                Ok(false)
            );
            assert_eq!(Operator::Lt.apply(&v("a"), &v("b")), Ok(true));
            assert_eq!(Operator::Lt.apply(&v("b"), &v("a")), Ok(false));
            // `in` is the clearest: `runtime in stored`.
            let member = Condition::new().is_in(TXT_1, vec![TXT_2]);
            assert_eq!(member.evaluate(&Checks::new().with(TXT_1, TXT_2)), Ok(true));
        }
    }

    mod test_factory {
        use super::*;

        #[test]
        fn test_returns_instance_of_check() {
            assert_eq!(
                factory("foo", 1),
                Check {
                    variable: "foo".into(),
                    value: v(1),
                    operator: Operator::Eq,
                }
            );
        }

        #[test]
        fn test_returns_instance_of_equality_operator() {
            assert_eq!(factory("foo", 1).operator, Operator::Eq);
            assert_eq!(parse_check_key("foo"), Ok(("foo", Operator::Eq)));
        }

        #[test]
        fn test_returns_instance_of_greater_than_operator() {
            let check = factory("foo__gt", 1);
            assert_eq!(check.operator, Operator::Gt);
            assert_eq!(check.variable, "foo");
        }

        #[test]
        fn test_returns_instance_of_greater_than_or_equal_to_operator() {
            let check = factory("foo__gte", 1);
            assert_eq!(check.operator, Operator::Gte);
            assert_eq!(check.variable, "foo");
        }

        #[test]
        fn test_returns_instance_of_less_than_operator() {
            let check = factory("foo__lt", 1);
            assert_eq!(check.operator, Operator::Lt);
            assert_eq!(check.variable, "foo");
        }

        #[test]
        fn test_returns_instance_of_less_than_or_equal_to_operator() {
            let check = factory("foo__lte", 1);
            assert_eq!(check.operator, Operator::Lte);
            assert_eq!(check.variable, "foo");
        }

        #[test]
        fn test_returns_instance_of_negated_set_membership_operator() {
            let check = factory("foo__not_in", vec![1]);
            assert_eq!(check.operator, Operator::NotIn);
            assert_eq!(check.value, v(vec![1]));
        }

        #[test]
        fn test_returns_instance_of_negation_operator() {
            let check = factory("foo__ne", 1);
            assert_eq!(check.operator, Operator::Ne);
            assert_eq!(check.variable, "foo");
        }

        #[test]
        fn test_returns_instance_of_set_membership_operator() {
            let check = factory("foo__in", vec![1]);
            assert_eq!(check.operator, Operator::In);
            assert_eq!(check.value, v(vec![1]));
        }
    }

    mod test_to_dict {
        use super::*;

        #[test]
        fn test_includes_expected_fields() {
            // A check's dict is an element of its condition's list for the variable.
            let condition = Condition::new().eq(TXT_1, TXT_2);
            let expected = parse(&format!(
                r#"{{"{TXT_1}": [{{"variable": "{TXT_1}", "value": "{TXT_2}", "operator": null}}]}}"#
            ));
            assert_eq!(condition.to_value(), expected);
        }
    }

    mod test_from_dict {
        use super::*;

        #[test]
        fn test_includes_expected_fields() {
            let data = parse(&format!(
                r#"{{"{TXT_1}": [{{"variable": "{TXT_1}", "value": "{TXT_2}", "operator": null}}]}}"#
            ));
            let condition = Condition::from_value(&data).unwrap();
            assert_eq!(condition, Condition::new().eq(TXT_1, TXT_2));
            assert_eq!(condition.to_value(), data);
        }
    }

    mod test_make_check_key {
        use super::*;

        #[test]
        fn test_returns_variable_and_operator_with_delimiter() {
            assert_eq!(make_check_key(TXT_3, Operator::Gt), format!("{TXT_3}__gt"));
        }

        #[test]
        fn test_returns_variable_only_when_operator_is_none() {
            assert_eq!(make_check_key(TXT_3, Operator::Eq), TXT_3);
        }
    }
}

/// `tests/conditions/test_condition.py`.
mod test_condition {
    use super::*;

    fn condition(kwargs: Vec<(&str, Value)>) -> Condition {
        Condition::from_kwargs(kwargs).expect("valid keys")
    }

    fn check(c: &Condition, kwargs: Vec<(&str, Value)>) -> bool {
        c.evaluate(&kwargs.into_iter().collect())
            .expect("comparable operands")
    }

    /// `Condition(foo=True, bar=False, baz__gt=99, ...)`, shared by the last four tests.
    fn everything() -> Condition {
        condition(vec![
            ("foo", v(true)),
            ("bar", v(false)),
            ("baz__gt", v(99)),
            ("baz__lt", v(103)),
            ("herp__gte", v(10)),
            ("herp__lte", v(20)),
            ("derp__ne", v(2)),
            ("derp__in", v(vec![2, 43, 5, 8])),
            ("derp__not_in", v(vec![8, 1000])),
        ])
    }

    const EVERYTHING_JSON: &str = r#"{"foo": [{"variable": "foo", "value": true, "operator": null}], "bar": [{"variable": "bar", "value": false, "operator": null}], "baz": [{"variable": "baz", "value": 99, "operator": "gt"}, {"variable": "baz", "value": 103, "operator": "lt"}], "herp": [{"variable": "herp", "value": 10, "operator": "gte"}, {"variable": "herp", "value": 20, "operator": "lte"}], "derp": [{"variable": "derp", "value": 2, "operator": "ne"}, {"variable": "derp", "value": [2, 43, 5, 8], "operator": "in"}, {"variable": "derp", "value": [8, 1000], "operator": "not_in"}]}"#;

    /// Upstream's `_compare`: every expected check is in the actual list for its variable.
    fn assert_contains_all_checks(expected: &Value, actual: &Value) {
        let actual = actual.as_object().expect("an object");
        for (key, checks) in expected.as_object().expect("an object") {
            let list = actual[key.as_str()].as_list().expect("a list");
            for check in checks.as_list().expect("a list") {
                assert!(list.contains(check), "{key}: {check:?} missing");
            }
        }
    }

    mod test_check {
        use super::*;

        #[test]
        fn test_can_check_equality_true() {
            let c = condition(vec![("foo", v(true))]);
            assert!(check(&c, vec![("foo", v(true))]));
        }

        #[test]
        fn test_can_check_equality_false() {
            let c = condition(vec![("foo", v(true))]);
            assert!(!check(&c, vec![("foo", v(false))]));
        }

        #[test]
        fn test_can_check_greater_than_true() {
            let c = condition(vec![("foo__gt", v(5))]);
            assert!(check(&c, vec![("foo", v(11))]));
        }

        #[test]
        fn test_can_check_greater_than_false() {
            let c = condition(vec![("foo__gt", v(5))]);
            assert!(!check(&c, vec![("foo", v(4))]));
        }

        #[test]
        fn test_can_check_greater_than_false_when_equal() {
            let c = condition(vec![("foo__gt", v(5))]);
            assert!(!check(&c, vec![("foo", v(5))]));
        }

        #[test]
        fn test_can_check_greater_than_or_equal_true() {
            let c = condition(vec![("foo__gte", v(5))]);
            assert!(check(&c, vec![("foo", v(11))]));
        }

        #[test]
        fn test_can_check_greater_than_or_equal_false() {
            let c = condition(vec![("foo__gte", v(5))]);
            assert!(!check(&c, vec![("foo", v(4))]));
        }

        #[test]
        fn test_can_check_greater_than_or_equal_true_when_equal() {
            let c = condition(vec![("foo__gte", v(5))]);
            assert!(check(&c, vec![("foo", v(5))]));
        }

        #[test]
        fn test_can_check_less_than_true() {
            let c = condition(vec![("foo__lt", v(5))]);
            assert!(check(&c, vec![("foo", v(4))]));
        }

        #[test]
        fn test_can_check_less_than_false() {
            let c = condition(vec![("foo__lt", v(5))]);
            assert!(!check(&c, vec![("foo", v(7))]));
        }

        #[test]
        fn test_can_check_less_than_false_when_equal() {
            let c = condition(vec![("foo__lt", v(5))]);
            assert!(!check(&c, vec![("foo", v(5))]));
        }

        #[test]
        fn test_can_check_less_than_or_equal_true() {
            let c = condition(vec![("foo__lte", v(5))]);
            assert!(check(&c, vec![("foo", v(4))]));
        }

        #[test]
        fn test_can_check_less_than_or_equal_false() {
            let c = condition(vec![("foo__lte", v(5))]);
            assert!(!check(&c, vec![("foo", v(8))]));
        }

        #[test]
        fn test_can_check_less_than_or_equal_true_when_equal() {
            let c = condition(vec![("foo__lte", v(5))]);
            assert!(check(&c, vec![("foo", v(5))]));
        }

        #[test]
        fn test_can_check_negation_true() {
            let c = condition(vec![("foo__ne", v("abc"))]);
            assert!(check(&c, vec![("foo", v("def"))]));
        }

        #[test]
        fn test_can_check_negation_false() {
            let c = condition(vec![("foo__ne", v("abc"))]);
            assert!(!check(&c, vec![("foo", v("abc"))]));
        }

        #[test]
        fn test_can_check_set_membership_true() {
            let c = condition(vec![("foo__in", v(vec![1, 2, 3]))]);
            assert!(check(&c, vec![("foo", v(3))]));
        }

        #[test]
        fn test_can_check_set_membership_false() {
            let c = condition(vec![("foo__in", v(vec![1, 2, 3]))]);
            assert!(!check(&c, vec![("foo", v(4))]));
        }

        #[test]
        fn test_can_check_negated_set_membership_true() {
            let c = condition(vec![("foo__not_in", v(vec![1, 2, 3]))]);
            assert!(check(&c, vec![("foo", v(5))]));
        }

        #[test]
        fn test_can_check_negated_set_membership_false() {
            let c = condition(vec![("foo__not_in", v(vec![1, 2, 3]))]);
            assert!(!check(&c, vec![("foo", v(3))]));
        }

        #[test]
        fn test_returns_true_when_all_checks_are_met() {
            assert!(check(
                &everything(),
                vec![
                    ("foo", v(true)),
                    ("bar", v(false)),
                    ("baz", v(101)),
                    ("herp", v(20)),
                    ("derp", v(5)),
                ]
            ));
        }

        #[test]
        fn test_returns_false_when_at_least_one_check_is_not_met() {
            assert!(!check(
                &everything(),
                vec![
                    ("foo", v(true)),
                    ("bar", v(false)),
                    ("baz", v(101)),
                    ("herp", v(21)),
                    ("derp", v(5)),
                ]
            ));
        }
    }

    mod test_to_dict {
        use super::*;

        #[test]
        fn test_includes_all_checks() {
            let expected = parse(EVERYTHING_JSON);
            let actual = everything().to_value();
            assert_contains_all_checks(&expected, &actual);
            // Upstream only checks membership; the whole document, in kwargs order (what
            // Python writes), must match too.
            assert_eq!(actual, expected);
        }
    }

    mod test_from_dict {
        use super::*;

        #[test]
        fn test_includes_all_checks() {
            let input = parse(EVERYTHING_JSON);
            let c = Condition::from_value(&input).unwrap();
            assert_contains_all_checks(&input, &c.to_value());
            assert_eq!(c, everything());
            assert_eq!(c.to_value(), input);
        }
    }
}
