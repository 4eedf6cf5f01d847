//! Unit and property tests for [`super`]: one test per rule of the module docs, with the
//! answers checked against CPython 3.11.

use std::cmp::Ordering;

use proptest::prelude::*;

use super::*;

const NAN: f64 = f64::NAN;
const INF: f64 = f64::INFINITY;

fn v<T: Into<Value>>(x: T) -> Value {
    x.into()
}

fn list(items: Vec<Value>) -> Value {
    Value::List(items)
}

fn dict(members: &[(&str, Value)]) -> Value {
    let mut o = Object::new();
    for (k, x) in members {
        o.insert((*k).to_owned(), x.clone());
    }
    Value::from(o)
}

fn big(digits: &str) -> Value {
    Value::Int(Int::from_big(digits.parse().expect("digits")))
}

fn lt(a: &Value, b: &Value) -> Result<bool, TypeError> {
    compare(a, CmpOp::Lt, b)
}
fn le(a: &Value, b: &Value) -> Result<bool, TypeError> {
    compare(a, CmpOp::Le, b)
}
fn gt(a: &Value, b: &Value) -> Result<bool, TypeError> {
    compare(a, CmpOp::Gt, b)
}
fn ge(a: &Value, b: &Value) -> Result<bool, TypeError> {
    compare(a, CmpOp::Ge, b)
}

fn err(r: Result<bool, TypeError>) -> String {
    r.expect_err("expected a TypeError").message.into()
}

#[test]
fn bool_is_an_int() {
    assert!(eq(&v(true), &v(1)));
    assert!(eq(&v(1), &v(true)));
    assert!(eq(&v(true), &v(1.0)));
    assert!(eq(&v(false), &v(0)));
    assert!(eq(&v(false), &v(-0.0)));
    assert!(!eq(&v(true), &v(2)));
    assert!(eq(&v(true), &v(true)));
    assert!(!eq(&v(true), &v(false)));
    assert_eq!(gt(&v(true), &v(5)), Ok(false));
    assert_eq!(gt(&v(true), &v(false)), Ok(true));
    assert_eq!(lt(&v(false), &v(0.5)), Ok(true));
    assert_eq!(ge(&v(2), &v(true)), Ok(true));
    assert_eq!(ge(&big("100000000000000000000"), &v(true)), Ok(true));
    assert_eq!(contains(&list(vec![v(1)]), &v(true)), Ok(true));
    assert_eq!(contains(&list(vec![v(true)]), &v(1.0)), Ok(true));
}

#[test]
fn ints_and_floats_compare_exactly() {
    let two_53_plus_1 = v(9_007_199_254_740_993_i64);
    let two_53_f = v(9_007_199_254_740_992.0);
    assert!(!eq(&two_53_plus_1, &two_53_f));
    assert_eq!(gt(&two_53_plus_1, &two_53_f), Ok(true));
    assert_eq!(lt(&two_53_f, &two_53_plus_1), Ok(true));
    let ten_30 = big("1000000000000000000000000000000");
    assert_eq!(lt(&ten_30, &v(1e30)), Ok(true));
    assert_eq!(gt(&v(1e30), &ten_30), Ok(true));
    assert!(!eq(&ten_30, &v(1e30)));
    let two_64 = v(1u128 << 64);
    assert!(eq(&two_64, &v(1.844_674_407_370_955_2e19)));
    assert!(eq(&v(1), &v(1.0)));
    assert!(!eq(&v(1), &v(1.5)));
    assert_eq!(gt(&v(5.5), &v(5)), Ok(true));
    assert_eq!(le(&v(-3), &v(-2.5)), Ok(true));
    assert_eq!(lt(&big("-1000000000000000000000"), &v(i64::MIN)), Ok(true));
    assert_eq!(
        gt(
            &big("1000000000000000000000"),
            &big("999999999999999999999")
        ),
        Ok(true)
    );
    assert_eq!(lt(&big("1".repeat(400).as_str()), &v(INF)), Ok(true));
    assert_eq!(gt(&big("1".repeat(400).as_str()), &v(f64::MAX)), Ok(true));
    assert_eq!(
        gt(&big(&format!("-{}", "1".repeat(30))), &v(-INF)),
        Ok(true)
    );
    assert!(eq(&v(0.0), &v(-0.0)));
    assert!(eq(&v(0), &v(-0.0)));
    assert!(eq(&v(INF), &v(INF)));
}

#[test]
fn nan_is_unordered_and_unequal_at_top_level() {
    let nan = v(NAN);
    for op in [CmpOp::Lt, CmpOp::Le, CmpOp::Gt, CmpOp::Ge] {
        assert_eq!(compare(&nan, op, &nan), Ok(false), "{op:?}");
        assert_eq!(compare(&nan, op, &v(1)), Ok(false), "{op:?}");
        assert_eq!(compare(&v(1.0), op, &nan), Ok(false), "{op:?}");
        assert_eq!(compare(&v(true), op, &nan), Ok(false), "{op:?}");
        assert_eq!(compare(&big("1".repeat(30).as_str()), op, &nan), Ok(false));
    }
    assert!(!eq(&nan, &nan));
    assert!(ne(&nan, &nan));
    assert!(!eq(&nan, &v(0)));
    // A different NaN bit pattern is the same (one) NaN object.
    assert!(eq(&list(vec![v(NAN)]), &list(vec![v(-NAN)])));
}

#[test]
fn identity_rule_inside_containers() {
    let nan = v(NAN);
    let l = list(vec![nan.clone()]);
    assert!(eq(&l, &l.clone()));
    assert!(!ne(&l, &l.clone()));
    assert_eq!(contains(&l, &nan), Ok(true));
    assert_eq!(contains(&list(vec![v(1), v(NAN)]), &v(NAN)), Ok(true));
    assert_eq!(contains(&list(vec![v(1.0)]), &nan), Ok(false));
    let d = dict(&[("a", nan)]);
    assert!(eq(&d, &d.clone()));
    assert_eq!(le(&l, &l.clone()), Ok(true));
    assert_eq!(ge(&l, &l.clone()), Ok(true));
    assert_eq!(lt(&l, &l.clone()), Ok(false));
    assert_eq!(gt(&l, &l.clone()), Ok(false));
    // The NaNs are skipped as equal; the next pair decides.
    assert_eq!(
        lt(&list(vec![v(NAN), v(1)]), &list(vec![v(NAN), v(2)])),
        Ok(true)
    );
    // NaN against a number is a differing pair, compared with the operator itself.
    assert_eq!(lt(&list(vec![v(1.0)]), &list(vec![v(NAN)])), Ok(false));
    assert_eq!(ge(&list(vec![v(NAN)]), &list(vec![v(1.0)])), Ok(false));
    // Nested: the identity shortcut applies at every level.
    let nested = list(vec![list(vec![v(NAN)]), dict(&[("k", list(vec![v(NAN)]))])]);
    assert!(eq(&nested, &nested.clone()));
    assert_eq!(contains(&list(vec![nested.clone()]), &nested), Ok(true));
}

#[test]
fn strings_order_by_code_point() {
    assert_eq!(lt(&v("a"), &v("b")), Ok(true));
    assert_eq!(lt(&v("B"), &v("a")), Ok(true));
    assert_eq!(lt(&v("ab"), &v("abc")), Ok(true));
    assert_eq!(lt(&v(""), &v("a")), Ok(true));
    assert_eq!(ge(&v("abc"), &v("abc")), Ok(true));
    // U+FFFF < U+1F600 by code point (UTF-16 order would disagree).
    assert_eq!(lt(&v("\u{ffff}"), &v("😀")), Ok(true));
    assert_eq!(gt(&v("é"), &v("z")), Ok(true));
    assert!(eq(&v("x"), &v("x")));
    assert!(!eq(&v("x"), &v("X")));
}

#[test]
fn different_types_are_unequal_and_unordered() {
    assert!(!eq(&v(1), &v("1")));
    assert!(ne(&v(1), &v("1")));
    assert!(!eq(&Value::Null, &v(0)));
    assert!(ne(&v(0), &Value::Null));
    assert!(eq(&Value::Null, &Value::Null));
    assert!(!ne(&Value::Null, &Value::Null));
    assert!(!eq(&list(vec![]), &dict(&[])));
    assert!(!eq(&list(vec![v(1)]), &v(1)));
    assert_eq!(
        err(lt(&v("a"), &v(1))),
        "'<' not supported between instances of 'str' and 'int'"
    );
    assert_eq!(
        err(gt(&v("a"), &v(1))),
        "'>' not supported between instances of 'str' and 'int'"
    );
    assert_eq!(
        err(ge(&v(1.5), &v("a"))),
        "'>=' not supported between instances of 'float' and 'str'"
    );
    assert_eq!(
        err(le(&v(true), &Value::Null)),
        "'<=' not supported between instances of 'bool' and 'NoneType'"
    );
    assert_eq!(
        err(lt(&list(vec![]), &v("a"))),
        "'<' not supported between instances of 'list' and 'str'"
    );
}

#[test]
fn none_cannot_be_ordered() {
    assert_eq!(
        err(lt(&Value::Null, &Value::Null)),
        "'<' not supported between instances of 'NoneType' and 'NoneType'"
    );
    assert_eq!(
        err(ge(&Value::Null, &v(1))),
        "'>=' not supported between instances of 'NoneType' and 'int'"
    );
}

#[test]
fn lists_compare_lexicographically() {
    let l = |xs: &[i64]| list(xs.iter().map(|&x| v(x)).collect());
    assert_eq!(gt(&l(&[1, 3]), &l(&[1, 2])), Ok(true));
    assert_eq!(lt(&l(&[1, 2]), &l(&[1, 2, 0])), Ok(true));
    assert_eq!(lt(&l(&[]), &l(&[0])), Ok(true));
    assert_eq!(le(&l(&[1, 2]), &l(&[1, 2])), Ok(true));
    assert_eq!(lt(&l(&[1, 2]), &l(&[1, 2])), Ok(false));
    assert_eq!(gt(&l(&[2]), &l(&[1, 9, 9])), Ok(true));
    assert!(!eq(&l(&[1, 2]), &list(vec![v(1.0), v(true)])));
    assert!(eq(&l(&[1, 1]), &list(vec![v(1.0), v(true)])));
    assert!(!eq(&l(&[1]), &l(&[1, 1])));
    // Incomparable pairs only matter when they are the first difference.
    assert_eq!(
        lt(&list(vec![v(1), v("a")]), &list(vec![v(2), v(3)])),
        Ok(true)
    );
    assert_eq!(
        lt(&list(vec![v("a"), v(1)]), &list(vec![v("a"), v(2)])),
        Ok(true)
    );
    assert_eq!(
        err(gt(&list(vec![v(1), v("a")]), &list(vec![v(1), v(2)]))),
        "'>' not supported between instances of 'str' and 'int'"
    );
    assert_eq!(
        err(lt(&list(vec![Value::Null]), &list(vec![v(0)]))),
        "'<' not supported between instances of 'NoneType' and 'int'"
    );
    // Equal incomparable elements are skipped (None == None, {} == {}).
    assert_eq!(
        le(
            &list(vec![Value::Null, dict(&[])]),
            &list(vec![Value::Null, dict(&[])])
        ),
        Ok(true)
    );
    // Nested lists recurse with the same operator.
    assert_eq!(
        lt(&list(vec![l(&[1, 2])]), &list(vec![l(&[1, 3])])),
        Ok(true)
    );
    assert_eq!(
        err(lt(
            &list(vec![dict(&[])]),
            &list(vec![dict(&[("a", v(1))])])
        )),
        "'<' not supported between instances of 'dict' and 'dict'"
    );
}

#[test]
fn dicts_are_unordered_and_equal_regardless_of_member_order() {
    let ab = dict(&[("a", v(1)), ("b", v(2))]);
    let ba = dict(&[("b", v(2.0)), ("a", v(true))]);
    assert!(eq(&ab, &ba));
    assert!(!ne(&ab, &ba));
    assert!(!eq(&ab, &dict(&[("a", v(1))])));
    assert!(!eq(&ab, &dict(&[("a", v(1)), ("c", v(2))])));
    assert!(!eq(&ab, &dict(&[("a", v(1)), ("b", v("2"))])));
    assert!(eq(&dict(&[]), &dict(&[])));
    assert_eq!(
        err(lt(&ab, &ba)),
        "'<' not supported between instances of 'dict' and 'dict'"
    );
    assert_eq!(
        err(ge(&dict(&[]), &dict(&[]))),
        "'>=' not supported between instances of 'dict' and 'dict'"
    );
}

#[test]
fn in_list_tests_element_equality() {
    let l = list(vec![v(1), v("a"), Value::Null, list(vec![v(2)])]);
    assert_eq!(contains(&l, &v(1.0)), Ok(true));
    assert_eq!(contains(&l, &v(true)), Ok(true));
    assert_eq!(contains(&l, &v("a")), Ok(true));
    assert_eq!(contains(&l, &Value::Null), Ok(true));
    assert_eq!(contains(&l, &list(vec![v(2.0)])), Ok(true));
    assert_eq!(contains(&l, &list(vec![v(1)])), Ok(false));
    assert_eq!(contains(&l, &v("b")), Ok(false));
    assert_eq!(contains(&l, &dict(&[])), Ok(false));
    assert_eq!(contains(&list(vec![]), &v(1)), Ok(false));
    assert_eq!(contains(&list(vec![v(1), v(2)]), &Value::Null), Ok(false));
}

#[test]
fn in_str_is_a_substring_test_needing_a_str() {
    assert_eq!(contains(&v("abc"), &v("bc")), Ok(true));
    assert_eq!(contains(&v("abc"), &v("")), Ok(true));
    assert_eq!(contains(&v(""), &v("")), Ok(true));
    assert_eq!(contains(&v("abc"), &v("ac")), Ok(false));
    assert_eq!(contains(&v("aé😀"), &v("é😀")), Ok(true));
    assert_eq!(
        err(contains(&v("abc"), &v(1))),
        "'in <string>' requires string as left operand, not int"
    );
    assert_eq!(
        err(contains(&v("abc"), &Value::Null)),
        "'in <string>' requires string as left operand, not NoneType"
    );
    assert_eq!(
        err(contains(&v("abc"), &list(vec![]))),
        "'in <string>' requires string as left operand, not list"
    );
    assert_eq!(
        err(contains(&v(""), &v(true))),
        "'in <string>' requires string as left operand, not bool"
    );
}

#[test]
fn in_dict_tests_keys() {
    let d = dict(&[("a", v(1)), ("1", v(2)), ("", v(3))]);
    assert_eq!(contains(&d, &v("a")), Ok(true));
    assert_eq!(contains(&d, &v("")), Ok(true));
    assert_eq!(contains(&d, &v("b")), Ok(false));
    // Values are not searched.
    assert_eq!(contains(&dict(&[("a", v("b"))]), &v("b")), Ok(false));
    // Hashable non-strings are never keys.
    for item in [
        v(1),
        v(1.0),
        v(true),
        Value::Null,
        v(NAN),
        big("1".repeat(40).as_str()),
    ] {
        assert_eq!(contains(&d, &item), Ok(false), "{item:?}");
    }
    assert_eq!(err(contains(&d, &list(vec![]))), "unhashable type: 'list'");
    assert_eq!(
        err(contains(&dict(&[]), &dict(&[]))),
        "unhashable type: 'dict'"
    );
}

#[test]
fn in_scalar_is_not_iterable() {
    for (container, name) in [
        (v(1), "int"),
        (big("1".repeat(30).as_str()), "int"),
        (v(1.5), "float"),
        (v(true), "bool"),
        (Value::Null, "NoneType"),
    ] {
        for item in [v(1), v("a"), list(vec![]), Value::Null] {
            assert_eq!(
                err(contains(&container, &item)),
                format!("argument of type '{name}' is not iterable")
            );
        }
    }
}

#[test]
fn type_error_displays_its_message() {
    let e = lt(&v("a"), &v(1)).unwrap_err();
    assert_eq!(e.to_string(), &*e.message);
}

// ---- properties -------------------------------------------------------------------------------

fn arb_float() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(NAN),
        Just(INF),
        Just(-INF),
        Just(0.0),
        Just(-0.0),
        Just(1.0),
        Just(9_007_199_254_740_992.0),
        Just(1e30),
        (-5i32..5).prop_map(|i| f64::from(i) / 2.0),
        any::<f64>(),
    ]
}

fn arb_int() -> impl Strategy<Value = Int> {
    prop_oneof![
        (-3i64..4).prop_map(Int::from),
        any::<i64>().prop_map(Int::from),
        Just(Int::from(9_007_199_254_740_993_i64)),
        any::<i128>().prop_map(Int::from),
        "-?[1-9][0-9]{20,40}".prop_map(|s| Int::from_big(s.parse().expect("digits"))),
    ]
}

fn arb_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        arb_int().prop_map(Value::Int),
        arb_float().prop_map(Value::Float),
        "[ab\u{e9}\u{ffff}\u{1f600}]{0,3}".prop_map(Value::Str),
    ]
}

fn arb_value() -> impl Strategy<Value = Value> {
    arb_leaf().prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::List),
            prop::collection::vec(("[ab]{0,2}", inner), 0..4)
                .prop_map(|members| Value::from(members.into_iter().collect::<crate::Object>())),
        ]
    })
}

fn arb_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<bool>().prop_map(Value::Bool),
        arb_int().prop_map(Value::Int),
        arb_float().prop_map(Value::Float),
    ]
}

fn is_nan(x: &Value) -> bool {
    matches!(x, Value::Float(f) if f.is_nan())
}

const OPS: [CmpOp; 4] = [CmpOp::Lt, CmpOp::Le, CmpOp::Gt, CmpOp::Ge];

fn flipped(op: CmpOp) -> CmpOp {
    match op {
        CmpOp::Lt => CmpOp::Gt,
        CmpOp::Le => CmpOp::Ge,
        CmpOp::Gt => CmpOp::Lt,
        CmpOp::Ge => CmpOp::Le,
    }
}

proptest! {
    #[test]
    fn never_panics_and_eq_is_symmetric(a in arb_value(), b in arb_value()) {
        for op in OPS {
            let _ = compare(&a, op, &b);
        }
        let _ = contains(&a, &b);
        let _ = contains(&b, &a);
        prop_assert_eq!(eq(&a, &b), eq(&b, &a));
        prop_assert_eq!(ne(&a, &b), !eq(&a, &b));
    }

    #[test]
    fn a_value_equals_its_copy_unless_it_is_a_bare_nan(a in arb_value()) {
        prop_assert_eq!(eq(&a, &a.clone()), !is_nan(&a));
        prop_assert_eq!(contains(&Value::List(vec![a.clone()]), &a), Ok(true));
    }

    #[test]
    fn flipping_the_operands_flips_the_operator(a in arb_value(), b in arb_value()) {
        for op in OPS {
            let forward = compare(&a, op, &b);
            let backward = compare(&b, flipped(op), &a);
            prop_assert_eq!(forward.is_ok(), backward.is_ok(), "{:?} {:?}", forward, backward);
            prop_assert_eq!(forward.ok(), backward.ok());
        }
    }

    #[test]
    fn numbers_agree_with_exact_ordering(a in arb_number(), b in arb_number()) {
        prop_assert_eq!(compare(&a, CmpOp::Lt, &b), compare(&b, CmpOp::Gt, &a));
        prop_assert_eq!(compare(&a, CmpOp::Le, &b), compare(&b, CmpOp::Ge, &a));
        let ord = num_cmp(&a, &b).expect("numbers");
        prop_assert_eq!(eq(&a, &b), ord == Some(Ordering::Equal));
        prop_assert_eq!(compare(&a, CmpOp::Lt, &b), Ok(ord == Some(Ordering::Less)));
        prop_assert_eq!(compare(&a, CmpOp::Ge, &b), Ok(matches!(ord, Some(o) if o.is_ge())));
        // Consistency with f64 where both are exactly representable.
        if let (Some(x), Some(y)) = (a.as_f64(), b.as_f64()) {
            let exact = |v: &Value| match v {
                Value::Int(i) => i.cmp_f64(i.to_f64().unwrap_or(f64::NAN)) == Some(Ordering::Equal),
                _ => true,
            };
            if exact(&a) && exact(&b) {
                prop_assert_eq!(ord, x.partial_cmp(&y));
            }
        }
    }
}
