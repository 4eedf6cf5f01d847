//! Python's comparison operators over [`Value`]s.
//!
//! flipper-client's condition operators are literally Python's `a == b`, `a != b`, `a < b`,
//! `a <= b`, `a > b`, `a >= b`, `a in b` and `a not in b` over values that came from
//! `json.loads`. This module reproduces CPython 3's answers, including its `TypeError`s:
//!
//! * `bool` is an `int` (`True == 1 == 1.0`), and `int` / `float` compare **exactly**
//!   (`9007199254740993 > 9007199254740992.0`, `10**30 < 1e30`). Every ordering with `NaN` is
//!   false, and a bare `NaN == NaN` is false.
//! * `str` orders by code point; `list` orders lexicographically (the first pair of elements
//!   that are not equal decides, else the lengths); `dict`, `None` and mixed types cannot be
//!   ordered (`TypeError`), while `==` between different types is simply false.
//! * `dict == dict` ignores member order.
//! * **Identity rule.** Python's `json` parses every `NaN` token to one shared float object,
//!   and container comparisons (`list ==`, the search for the first differing list element,
//!   `dict ==` on values, `x in list`) check identity before `==`. So inside containers two
//!   NaNs are equal: `[NaN] == [NaN]`, `NaN in [NaN]` and `[NaN] <= [NaN]` are true. Every NaN
//!   is treated as that one object.
//!
//! ```
//! use flipper_core::pyops::{self, CmpOp};
//! use flipper_core::Value;
//!
//! assert!(pyops::eq(&Value::from(true), &Value::from(1.0)));
//! assert_eq!(pyops::compare(&Value::from(5.5), CmpOp::Gt, &Value::from(5)), Ok(true));
//! let err = pyops::compare(&Value::from("a"), CmpOp::Lt, &Value::from(1)).unwrap_err();
//! assert_eq!(&*err.message, "'<' not supported between instances of 'str' and 'int'");
//! let nan = Value::from(f64::NAN);
//! assert!(!pyops::eq(&nan, &nan));
//! assert_eq!(pyops::contains(&Value::from(vec![nan.clone()]), &nan), Ok(true));
//! ```
//!
//! None of the functions allocate, except to build a [`TypeError`] and inside [`Int`]'s exact
//! comparisons of integers beyond 64 bits (or beyond 2^53 against a float).

use std::cmp::Ordering;
use std::fmt;

use crate::{Int, Object, Value};

#[cfg(test)]
mod tests;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl CmpOp {
    /// The operator as Python spells it in error messages (`<`, `<=`, `>`, `>=`).
    pub fn symbol(self) -> &'static str {
        match self {
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
        }
    }

    /// Whether `a <op> b` holds given how `a` compares to `b`; `None` (unordered, i.e. NaN)
    /// makes every operator false.
    #[inline]
    fn holds(self, ord: Option<Ordering>) -> bool {
        match ord {
            None => false,
            Some(o) => match self {
                Self::Lt => o.is_lt(),
                Self::Le => o.is_le(),
                Self::Gt => o.is_gt(),
                Self::Ge => o.is_ge(),
            },
        }
    }
}

/// The `TypeError` Python raises for an unsupported comparison or membership test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeError {
    /// Python's message, e.g. `'<' not supported between instances of 'str' and 'int'`.
    /// (A `Box<str>`, so that `Result<bool, TypeError>` fits in two registers on the hot path.)
    pub message: Box<str>,
}

impl TypeError {
    /// `'<' not supported between instances of 'str' and 'int'`.
    #[cold]
    #[inline(never)]
    fn unsupported(a: &Value, op: CmpOp, b: &Value) -> Self {
        Self {
            message: format!(
                "'{}' not supported between instances of '{}' and '{}'",
                op.symbol(),
                a.type_name(),
                b.type_name()
            )
            .into(),
        }
    }

    /// `'in <string>' requires string as left operand, not int`.
    #[cold]
    #[inline(never)]
    fn string_needs_string(item: &Value) -> Self {
        Self {
            message: format!(
                "'in <string>' requires string as left operand, not {}",
                item.type_name()
            )
            .into(),
        }
    }

    /// `unhashable type: 'list'`.
    #[cold]
    #[inline(never)]
    fn unhashable(item: &Value) -> Self {
        Self {
            message: format!("unhashable type: '{}'", item.type_name()).into(),
        }
    }

    /// `argument of type 'int' is not iterable`.
    #[cold]
    #[inline(never)]
    fn not_iterable(container: &Value) -> Self {
        Self {
            message: format!(
                "argument of type '{}' is not iterable",
                container.type_name()
            )
            .into(),
        }
    }
}

impl fmt::Display for TypeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}
impl std::error::Error for TypeError {}

/// Python's `a == b` for values from `json.loads`.
///
/// Numbers of any kind compare by exact value (`True == 1 == 1.0`, `NaN == NaN` is false);
/// values of different non-numeric types are never equal. Lists and dicts compare their
/// elements with the identity rule (see the [module docs](self)), so `[NaN] == [NaN]`.
#[inline]
pub fn eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::Null, Value::Null) => true,
        (Value::List(x), Value::List(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_or_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => dict_eq(x, y),
        _ => matches!(num_cmp(a, b), Some(Some(Ordering::Equal))),
    }
}

/// Python's `a != b`: always the negation of [`eq`] for values from `json.loads`
/// (so `NaN != NaN` is true, `[NaN] != [NaN]` false).
pub fn ne(a: &Value, b: &Value) -> bool {
    !eq(a, b)
}

/// Python's `a <op> b`.
///
/// Numbers (`bool`, `int`, `float`) compare exactly by value, strings by code point, lists
/// lexicographically. Anything else (dicts, `None`, mixed types, or a list whose first
/// differing pair of elements is such a pair) is a [`TypeError`] naming `op` and the types, as
/// Python's message does.
#[inline]
pub fn compare(a: &Value, op: CmpOp, b: &Value) -> Result<bool, TypeError> {
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => Ok(op.holds(Some(x.as_str().cmp(y.as_str())))),
        (Value::List(x), Value::List(y)) => list_compare(x, op, y),
        _ => match num_cmp(a, b) {
            Some(ord) => Ok(op.holds(ord)),
            None => Err(TypeError::unsupported(a, op, b)),
        },
    }
}

/// Python's `item in container`.
///
/// * list: whether some element equals `item` (identity rule: `NaN in [NaN]` is true);
/// * str: substring test; `item` must be a string, else `TypeError`;
/// * dict: key membership; a string `item` is looked up, a number / bool / `None` is never a
///   key (keys are strings), a list or dict is unhashable (`TypeError`);
/// * number, bool, `None`: not iterable (`TypeError`).
///
/// `item not in container` is `contains(container, item).map(|found| !found)`.
pub fn contains(container: &Value, item: &Value) -> Result<bool, TypeError> {
    match container {
        Value::List(elements) => Ok(elements.iter().any(|e| same_or_eq(e, item))),
        Value::Str(haystack) => match item {
            Value::Str(needle) => Ok(haystack.contains(needle.as_str())),
            _ => Err(TypeError::string_needs_string(item)),
        },
        Value::Object(members) => match item {
            Value::Str(key) => Ok(members.contains_key(key.as_str())),
            Value::List(_) | Value::Object(_) => Err(TypeError::unhashable(item)),
            Value::Null | Value::Bool(_) | Value::Int(_) | Value::Float(_) => Ok(false),
        },
        Value::Null | Value::Bool(_) | Value::Int(_) | Value::Float(_) => {
            Err(TypeError::not_iterable(container))
        }
    }
}

/// CPython's `PyObject_RichCompareBool(a, b, Py_EQ)`, used inside containers: identity
/// first (every NaN is the one NaN object of `json.loads`), then `==`.
#[inline]
fn same_or_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) if x.is_nan() && y.is_nan() => true,
        _ => eq(a, b),
    }
}

/// `dict == dict`: same keys, values equal under the identity rule; member order is ignored.
fn dict_eq(a: &Object, b: &Object) -> bool {
    a.len() == b.len()
        && a.iter()
            .all(|(k, v)| b.get(k.as_str()).is_some_and(|w| same_or_eq(v, w)))
}

/// `list <op> list`: the first pair of elements that are not equal (identity rule) decides,
/// compared with `op` itself (which may raise); if one list is a prefix of the other, the
/// lengths decide.
fn list_compare(a: &[Value], op: CmpOp, b: &[Value]) -> Result<bool, TypeError> {
    match a.iter().zip(b).find(|(x, y)| !same_or_eq(x, y)) {
        Some((x, y)) => compare(x, op, y),
        None => Ok(op.holds(Some(a.len().cmp(&b.len())))),
    }
}

/// Exact numeric comparison. `None` when either value is not a number (`bool`, `int`,
/// `float`); `Some(None)` when they are numbers but unordered (a NaN is involved).
/// A number borrowed from a [`Value`], without building a new `Value` for a bool.
#[derive(Clone, Copy)]
enum Num<'a> {
    Small(i64),
    Big(&'a Int),
    Float(f64),
}

#[inline]
fn as_num(v: &Value) -> Option<Num<'_>> {
    match v {
        Value::Bool(b) => Some(Num::Small(i64::from(*b))),
        Value::Int(i) => Some(match i.as_i64() {
            Some(small) => Num::Small(small),
            None => Num::Big(i),
        }),
        Value::Float(f) => Some(Num::Float(*f)),
        _ => None,
    }
}

/// `Some(ordering)` when both are numbers (`None` inside for NaN), `None` otherwise.
#[inline]
fn num_cmp(a: &Value, b: &Value) -> Option<Option<Ordering>> {
    Some(match (as_num(a)?, as_num(b)?) {
        (Num::Small(x), Num::Small(y)) => Some(x.cmp(&y)),
        (Num::Float(x), Num::Float(y)) => x.partial_cmp(&y),
        (Num::Small(x), Num::Float(y)) => small_cmp_f64(x, y),
        (Num::Float(x), Num::Small(y)) => small_cmp_f64(y, x).map(Ordering::reverse),
        (Num::Big(x), Num::Float(y)) => x.cmp_f64(y),
        (Num::Float(x), Num::Big(y)) => y.cmp_f64(x).map(Ordering::reverse),
        (Num::Big(x), Num::Big(y)) => Some(x.cmp(y)),
        (Num::Big(x), Num::Small(y)) => Some(x.cmp(&Int::from(y))),
        (Num::Small(x), Num::Big(y)) => Some(Int::from(x).cmp(y)),
    })
}

/// Exact `i64` against `f64`; doubles hold every integer up to 2^53 exactly.
#[inline]
fn small_cmp_f64(i: i64, f: f64) -> Option<Ordering> {
    if i.unsigned_abs() <= 1 << 53 {
        (i as f64).partial_cmp(&f)
    } else {
        Int::from(i).cmp_f64(f)
    }
}
