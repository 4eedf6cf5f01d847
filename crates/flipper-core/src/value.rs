//! [`Value`]: a JSON document with Python's data model.
//!
//! flipper-client stores flags as the output of Python's `json.dumps` and compares condition
//! values with Python's operators. To give the same answers and write the same bytes, a value
//! keeps what Python keeps: integers of any size ([`Int`]) distinct from floats, object members
//! in insertion order ([`Object`]), and `NaN` / `Infinity` floats.
//!
//! `PartialEq` on [`Value`] is *structural* ("the same document"): same variant, same numbers
//! bit for bit (so `NaN == NaN` and `0.0 != -0.0`), objects with the same members in the same
//! order. Python's `==` (where `1 == 1.0 == True`) lives in [`crate::pyops`].

use std::cmp::Ordering;
use std::fmt;

use indexmap::IndexMap;
use num_bigint::BigInt;
use num_traits::{ToPrimitive, Zero};

/// A JSON object: members in insertion order, as in a Python `dict`.
pub type Object = IndexMap<String, Value>;

/// A JSON value as Python's `json` module sees it.
///
/// ```
/// use flipper_core::Value;
/// let v = Value::from(vec![Value::from(1), Value::from(1.5), Value::from("x")]);
/// assert_eq!(flipper_core::json::to_string(&v), r#"[1, 1.5, "x"]"#);
/// ```
#[derive(Clone, Debug, Default)]
pub enum Value {
    /// `null` (Python `None`).
    #[default]
    Null,
    /// `true` / `false`. Python treats these as the integers 1 and 0 in comparisons.
    Bool(bool),
    /// An integer of any size.
    Int(Int),
    /// A double, including `NaN`, `Infinity` and `-Infinity`.
    Float(f64),
    /// A string of Unicode scalar values.
    Str(String),
    /// An array (Python `list`).
    List(Vec<Value>),
    /// An object (Python `dict`). Boxed, so that a `Value` is 32 bytes rather than 72: scalars,
    /// the common case, stay small.
    Object(Box<Object>),
}

impl Value {
    /// Python's name for the type of this value (`int`, `float`, `bool`, `str`, `NoneType`,
    /// `list`, `dict`), as Python's error messages spell it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Null => "NoneType",
            Self::Bool(_) => "bool",
            Self::Int(_) => "int",
            Self::Float(_) => "float",
            Self::Str(_) => "str",
            Self::List(_) => "list",
            Self::Object(_) => "dict",
        }
    }

    /// JSON's name for the kind of this value (`null`, `boolean`, `number`, `string`, `array`,
    /// `object`), for messages about documents.
    pub fn json_kind(&self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Bool(_) => "boolean",
            Self::Int(_) | Self::Float(_) => "number",
            Self::Str(_) => "string",
            Self::List(_) => "array",
            Self::Object(_) => "object",
        }
    }

    /// Python truthiness: `None`, `False`, `0`, `0.0`, `""`, `[]` and `{}` are false.
    pub fn is_truthy(&self) -> bool {
        match self {
            Self::Null => false,
            Self::Bool(b) => *b,
            Self::Int(i) => !i.is_zero(),
            Self::Float(f) => *f != 0.0,
            Self::Str(s) => !s.is_empty(),
            Self::List(l) => !l.is_empty(),
            Self::Object(o) => !o.is_empty(),
        }
    }

    /// The string, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The boolean, if this is a boolean.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Self::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The object, if this is an object.
    pub fn as_object(&self) -> Option<&Object> {
        match self {
            Self::Object(o) => Some(o),
            _ => None,
        }
    }

    /// The list, if this is a list.
    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Self::List(l) => Some(l),
            _ => None,
        }
    }

    /// The value as an `i64` if it is an integer (not a bool) that fits.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Self::Int(i) => i.as_i64(),
            _ => None,
        }
    }

    /// The value as a double if it is a number (int, float or bool), converting the way
    /// Python's `float(x)` does. `None` for non-numbers and for ints too large for a double.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Self::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
            Self::Int(i) => i.to_f64(),
            Self::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// Whether this is a number in Python's sense (`bool`, `int` or `float`).
    pub fn is_number(&self) -> bool {
        matches!(self, Self::Bool(_) | Self::Int(_) | Self::Float(_))
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Null, Self::Null) => true,
            (Self::Bool(a), Self::Bool(b)) => a == b,
            (Self::Int(a), Self::Int(b)) => a == b,
            (Self::Float(a), Self::Float(b)) => a.to_bits() == b.to_bits(),
            (Self::Str(a), Self::Str(b)) => a == b,
            (Self::List(a), Self::List(b)) => a == b,
            (Self::Object(a), Self::Object(b)) => {
                a.len() == b.len() && a.iter().zip(b.iter()).all(|(x, y)| x == y)
            }
            _ => false,
        }
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Self::Bool(b)
    }
}
macro_rules! from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(i: $t) -> Self { Self::Int(Int::from(i)) }
        }
        impl From<$t> for Int {
            fn from(i: $t) -> Self { Int::from_big(BigInt::from(i)) }
        }
    )*};
}
from_int!(u64, usize, i128, u128);
macro_rules! from_small_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(i: $t) -> Self { Self::Int(Int::from(i64::from(i))) }
        }
    )*};
}
from_small_int!(i8, i16, i32, u8, u16, u32);
impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Self::Int(Int::from(i))
    }
}
impl From<Int> for Value {
    fn from(i: Int) -> Self {
        Self::Int(i)
    }
}
impl From<f64> for Value {
    fn from(f: f64) -> Self {
        Self::Float(f)
    }
}
impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Self::Str(s.to_owned())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Self::Str(s)
    }
}
impl From<Object> for Value {
    fn from(o: Object) -> Self {
        Self::Object(Box::new(o))
    }
}
impl<T: Into<Value>> From<Vec<T>> for Value {
    fn from(v: Vec<T>) -> Self {
        Self::List(v.into_iter().map(Into::into).collect())
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Self::Null, Into::into)
    }
}
impl<T: Into<Value>> FromIterator<T> for Value {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        Self::List(iter.into_iter().map(Into::into).collect())
    }
}
impl<K: Into<String>, V: Into<Value>> FromIterator<(K, V)> for Value {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut o = Object::new();
        for (k, v) in iter {
            // Python dict semantics: a repeated key keeps its first position, last value.
            o.insert(k.into(), v.into());
        }
        Self::Object(Box::new(o))
    }
}

/// An integer of any size, as Python's `int`.
///
/// Values that fit in an `i64` are stored inline; larger ones (JSON allows hundreds of digits)
/// use a heap-allocated big integer.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Int(IntRepr);

#[derive(Clone, PartialEq, Eq, Hash)]
enum IntRepr {
    Small(i64),
    /// Invariant: never fits in an `i64`.
    Big(Box<BigInt>),
}

impl Int {
    /// An integer from a big integer, stored inline when it fits in an `i64`.
    pub fn from_big(b: BigInt) -> Self {
        match b.to_i64() {
            Some(i) => Self(IntRepr::Small(i)),
            None => Self(IntRepr::Big(Box::new(b))),
        }
    }

    /// The value as an `i64`, if it fits.
    #[inline]
    pub fn as_i64(&self) -> Option<i64> {
        match &self.0 {
            IntRepr::Small(i) => Some(*i),
            IntRepr::Big(_) => None,
        }
    }

    /// The value as a big integer.
    pub fn to_big(&self) -> BigInt {
        match &self.0 {
            IntRepr::Small(i) => BigInt::from(*i),
            IntRepr::Big(b) => (**b).clone(),
        }
    }

    /// Whether the value is zero.
    pub fn is_zero(&self) -> bool {
        match &self.0 {
            IntRepr::Small(i) => *i == 0,
            IntRepr::Big(b) => b.is_zero(),
        }
    }

    /// Python's `float(i)`: correctly rounded (ties to even); `None` where Python raises
    /// `OverflowError` (magnitude at or beyond 2^1024 after rounding).
    pub fn to_f64(&self) -> Option<f64> {
        match &self.0 {
            // `as` rounds to nearest, ties to even: exactly Python's int-to-float conversion.
            IntRepr::Small(i) => Some(*i as f64),
            IntRepr::Big(b) => {
                // num-bigint's to_f64 rounds correctly and returns inf on overflow.
                let f = b.to_f64()?;
                f.is_finite().then_some(f)
            }
        }
    }

    /// Exact comparison with a double, as Python compares `int` with `float`.
    /// `None` when `f` is NaN (every ordering is false).
    pub fn cmp_f64(&self, f: f64) -> Option<Ordering> {
        if f.is_nan() {
            return None;
        }
        if f.is_infinite() {
            return Some(if f > 0.0 {
                Ordering::Less
            } else {
                Ordering::Greater
            });
        }
        if let IntRepr::Small(i) = &self.0 {
            // Doubles represent every integer up to 2^53 exactly.
            if i.unsigned_abs() <= (1u64 << 53) {
                return (*i as f64).partial_cmp(&f);
            }
        }
        let floor = f.floor();
        // `floor` is an integral finite double, so the conversion is exact.
        let floor_int = BigInt::from_f64_exact(floor);
        match self.to_big().cmp(&floor_int) {
            Ordering::Less => Some(Ordering::Less),
            Ordering::Greater => Some(Ordering::Greater),
            Ordering::Equal if f == floor => Some(Ordering::Equal),
            // self == floor(f) < f
            Ordering::Equal => Some(Ordering::Less),
        }
    }
}

/// Exact conversion of integral doubles to big integers.
trait FromF64Exact {
    fn from_f64_exact(f: f64) -> Self;
}
impl FromF64Exact for BigInt {
    fn from_f64_exact(f: f64) -> Self {
        // num-bigint converts integral finite doubles exactly.
        num_traits::FromPrimitive::from_f64(f).unwrap_or_default()
    }
}

impl From<i64> for Int {
    fn from(i: i64) -> Self {
        Self(IntRepr::Small(i))
    }
}
impl From<i32> for Int {
    fn from(i: i32) -> Self {
        Self(IntRepr::Small(i64::from(i)))
    }
}
impl From<BigInt> for Int {
    fn from(b: BigInt) -> Self {
        Self::from_big(b)
    }
}

impl Ord for Int {
    fn cmp(&self, other: &Self) -> Ordering {
        match (&self.0, &other.0) {
            (IntRepr::Small(a), IntRepr::Small(b)) => a.cmp(b),
            _ => self.to_big().cmp(&other.to_big()),
        }
    }
}
impl PartialOrd for Int {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Int {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            IntRepr::Small(i) => fmt::Display::fmt(i, f),
            IntRepr::Big(b) => fmt::Display::fmt(b, f),
        }
    }
}
impl fmt::Debug for Int {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_float_comparison_is_exact() {
        let two_53_plus_1 = Int::from(9_007_199_254_740_993_i64);
        assert_eq!(
            two_53_plus_1.cmp_f64(9_007_199_254_740_992.0),
            Some(Ordering::Greater)
        );
        let ten_30 = Int::from_big("1000000000000000000000000000000".parse().unwrap());
        // 1e30 as a double is 1000000000000000019884624838656.
        assert_eq!(ten_30.cmp_f64(1e30), Some(Ordering::Less));
        let two_64 = Int::from(1u128 << 64);
        assert_eq!(two_64.cmp_f64(1.8446744073709552e19), Some(Ordering::Equal));
        assert_eq!(Int::from(3).cmp_f64(2.5), Some(Ordering::Greater));
        assert_eq!(Int::from(-3).cmp_f64(-2.5), Some(Ordering::Less));
        assert_eq!(Int::from(2).cmp_f64(f64::NAN), None);
        assert_eq!(
            Int::from(i64::MAX).cmp_f64(f64::INFINITY),
            Some(Ordering::Less)
        );
    }

    #[test]
    fn small_and_big_forms_are_canonical() {
        let a = Int::from_big(BigInt::from(5));
        assert_eq!(a, Int::from(5));
        assert_eq!(a.as_i64(), Some(5));
        let big = Int::from(u64::MAX);
        assert_eq!(big.as_i64(), None);
        assert_eq!(big.to_string(), "18446744073709551615");
    }

    #[test]
    fn structural_equality_distinguishes_kinds() {
        assert_ne!(Value::from(1), Value::from(1.0));
        assert_ne!(Value::from(true), Value::from(1));
        assert_eq!(Value::Float(f64::NAN), Value::Float(f64::NAN));
        assert_ne!(Value::from(0.0), Value::from(-0.0));
    }

    #[test]
    fn truthiness_follows_python() {
        for falsy in [
            Value::Null,
            Value::from(false),
            Value::from(0),
            Value::from(0.0),
            Value::from(""),
            Value::List(vec![]),
            Value::from(Object::new()),
        ] {
            assert!(!falsy.is_truthy(), "{falsy:?}");
        }
        assert!(Value::from(-0.5).is_truthy());
        assert!(Value::from(vec![0]).is_truthy());
    }
}
