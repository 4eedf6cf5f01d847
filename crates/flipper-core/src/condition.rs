//! Conditions: `age__gte=18`-style checks on the caller's variables.
//!
//! A [`Condition`] is flipper-client's `Condition(**kwargs)`: a set of [`Check`]s grouped by
//! variable. A flag passes its conditions when *every* condition passes, and a condition passes
//! unless one of the *supplied* variables contradicts one of its checks (variables a condition
//! names but the caller omits pass: flipper-client's semantics, kept on purpose).
//!
//! Keys follow Python's kwargs parsing exactly ([`parse_check_key`]): `"age__gte"` is variable
//! `age` with operator `gte`; a key that does not split into exactly two parts on `"__"` is an
//! equality check on the whole key (`"a__b__gt"` is variable `a__b__gt`).
//!
//! ```
//! use flipper_core::condition::Condition;
//! let adults_on_pro = Condition::new().gte("age", 18).is_in("plan", vec!["pro", "enterprise"]);
//! assert_eq!(adults_on_pro.len(), 2);
//! ```

use std::cmp::Ordering;
use std::fmt;

use crate::checks::{Checks, KEY_EXACT_LEN, name_key, same_bytes};
use crate::pyops::{self, CmpOp, TypeError};
use crate::{Object, Value};

/// The `"__"` separating a variable from its operator in a check key.
pub const OPERATOR_DELIMITER: &str = "__";

/// A condition operator, with flipper-client's symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    /// `a == b`; stored with symbol `null`.
    Eq,
    /// `a > b` (`gt`).
    Gt,
    /// `a >= b` (`gte`).
    Gte,
    /// `a < b` (`lt`).
    Lt,
    /// `a <= b` (`lte`).
    Lte,
    /// `a != b` (`ne`).
    Ne,
    /// `a in b` (`in`).
    In,
    /// `a not in b` (`not_in`).
    NotIn,
}

impl Operator {
    /// All operators, equality first.
    pub const ALL: [Self; 8] = [
        Self::Eq,
        Self::Gt,
        Self::Gte,
        Self::Lt,
        Self::Lte,
        Self::Ne,
        Self::In,
        Self::NotIn,
    ];

    /// The stored symbol: `None` for equality, else `gt`, `gte`, `lt`, `lte`, `ne`, `in`, `not_in`.
    pub fn symbol(self) -> Option<&'static str> {
        match self {
            Self::Eq => None,
            Self::Gt => Some("gt"),
            Self::Gte => Some("gte"),
            Self::Lt => Some("lt"),
            Self::Lte => Some("lte"),
            Self::Ne => Some("ne"),
            Self::In => Some("in"),
            Self::NotIn => Some("not_in"),
        }
    }

    /// The operator for a symbol (`None` is equality). Symbols are case-sensitive.
    ///
    /// # Errors
    /// [`InvalidSymbolError`] for anything else, including `""`.
    pub fn from_symbol(symbol: Option<&str>) -> Result<Self, InvalidSymbolError> {
        Ok(match symbol {
            None => Self::Eq,
            Some("gt") => Self::Gt,
            Some("gte") => Self::Gte,
            Some("lt") => Self::Lt,
            Some("lte") => Self::Lte,
            Some("ne") => Self::Ne,
            Some("in") => Self::In,
            Some("not_in") => Self::NotIn,
            Some(other) => {
                return Err(InvalidSymbolError {
                    symbol: other.to_owned(),
                });
            }
        })
    }

    /// Applies the operator as Python does: `runtime <op> stored`.
    ///
    /// # Errors
    /// Python's `TypeError` for unsupported operand types (`"a" > 1`, `1 in 2`, ...).
    #[inline(always)]
    pub fn apply(self, runtime: &Value, stored: &Value) -> Result<bool, TypeError> {
        // Fast path: a string among a list (`plan__in=["pro", "enterprise"]`). In a list, a
        // string equals only an equal string, so the other elements need no general compare.
        if let (Self::In | Self::NotIn, Value::Str(needle), Value::List(items)) =
            (self, runtime, stored)
        {
            let found = items
                .iter()
                .any(|e| matches!(e, Value::Str(s) if same_bytes(s.as_bytes(), needle.as_bytes())));
            return Ok(found == (self == Self::In));
        }
        // Fast path: same-kind scalars, which is most of what flags compare.
        let ord = match (runtime, stored) {
            (Value::Int(a), Value::Int(b)) => match (a.as_i64(), b.as_i64()) {
                (Some(a), Some(b)) => Some(a.cmp(&b)),
                _ => return self.apply_general(runtime, stored),
            },
            (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
            (Value::Str(a), Value::Str(b)) => Some(a.as_str().cmp(b.as_str())),
            (Value::Float(a), Value::Float(b)) => a.partial_cmp(b),
            _ => return self.apply_general(runtime, stored),
        };
        match self.outcomes() {
            Some(outcomes) => Ok(accepts(outcomes, ord)),
            None => self.apply_general(runtime, stored),
        }
    }

    /// For a comparison operator, which outcomes satisfy it, one bit each for less, equal,
    /// greater and unordered (NaN), as [`outcome_bit`] numbers them; `None` for membership.
    #[inline(always)]
    pub(crate) fn outcomes(self) -> Option<u8> {
        Some(match self {
            Self::Eq => 0b0010,
            Self::Ne => 0b1101,
            Self::Gt => 0b0100,
            Self::Gte => 0b0110,
            Self::Lt => 0b0001,
            Self::Lte => 0b0011,
            Self::In | Self::NotIn => return None,
        })
    }

    fn apply_general(self, runtime: &Value, stored: &Value) -> Result<bool, TypeError> {
        match self {
            Self::Eq => Ok(pyops::eq(runtime, stored)),
            Self::Ne => Ok(!pyops::eq(runtime, stored)),
            Self::Gt => pyops::compare(runtime, CmpOp::Gt, stored),
            Self::Gte => pyops::compare(runtime, CmpOp::Ge, stored),
            Self::Lt => pyops::compare(runtime, CmpOp::Lt, stored),
            Self::Lte => pyops::compare(runtime, CmpOp::Le, stored),
            Self::In => pyops::contains(stored, runtime),
            Self::NotIn => pyops::contains(stored, runtime).map(|found| !found),
        }
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol().unwrap_or("eq"))
    }
}

/// Whether an ordering is one of the `outcomes` of a comparison ([`Operator::outcomes`]).
#[inline(always)]
pub(crate) fn accepts(outcomes: u8, ord: Option<Ordering>) -> bool {
    outcomes >> outcome_bit(ord) & 1 == 1
}

/// The bit of an ordering in [`Operator::outcomes`].
#[inline(always)]
fn outcome_bit(ord: Option<Ordering>) -> u8 {
    match ord {
        Some(Ordering::Less) => 0,
        Some(Ordering::Equal) => 1,
        Some(Ordering::Greater) => 2,
        None => 3,
    }
}

/// An operator symbol flipper-client does not know (`Operator not supported: X`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidSymbolError {
    /// The rejected symbol.
    pub symbol: String,
}

impl fmt::Display for InvalidSymbolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "operator not supported: {:?} (expected one of gt, gte, lt, lte, ne, in, not_in, or no suffix for equality)",
            self.symbol
        )
    }
}
impl std::error::Error for InvalidSymbolError {}

/// Splits a kwargs-style key exactly as flipper-client's `Check._parse_check_key`:
/// `key.split("__")`; exactly two parts give (variable, operator), anything else is an
/// equality check on the whole key.
///
/// ```
/// use flipper_core::condition::{parse_check_key, Operator};
/// assert_eq!(parse_check_key("age__gte").unwrap(), ("age", Operator::Gte));
/// assert_eq!(parse_check_key("a__b__gt").unwrap(), ("a__b__gt", Operator::Eq));
/// assert!(parse_check_key("x__").is_err());
/// ```
///
/// # Errors
/// [`InvalidSymbolError`] when the second part is not a known symbol (`x__IN`, `x__`, `x___gt`).
pub fn parse_check_key(key: &str) -> Result<(&str, Operator), InvalidSymbolError> {
    let mut parts = key.split(OPERATOR_DELIMITER);
    match (parts.next(), parts.next(), parts.next()) {
        (Some(variable), Some(symbol), None) => {
            Ok((variable, Operator::from_symbol(Some(symbol))?))
        }
        _ => Ok((key, Operator::Eq)),
    }
}

/// The kwargs key for a variable and operator (`Check.make_check_key`): `age__gte`, or the bare
/// variable for equality.
pub fn make_check_key(variable: &str, operator: Operator) -> String {
    match operator.symbol() {
        None => variable.to_owned(),
        Some(symbol) => format!("{variable}{OPERATOR_DELIMITER}{symbol}"),
    }
}

/// One check: `variable <operator> value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// The variable (a key of the caller's checks).
    pub variable: String,
    /// The stored operand (right-hand side).
    pub value: Value,
    /// The operator.
    pub operator: Operator,
}

impl Check {
    /// Whether a check with this variable and operator survives flipper-client's storage round
    /// trip: its key must parse back to the same variable and operator. Fails for variables that
    /// make the key ambiguous (`x__gt` with equality reads back as `x` / `gt`; `x_` with `gt`
    /// gives `x___gt`, which Python rejects).
    pub fn round_trips(&self) -> bool {
        let key = make_check_key(&self.variable, self.operator);
        matches!(parse_check_key(&key), Ok((v, op)) if v == self.variable && op == self.operator)
    }
}

/// A condition: checks grouped by variable, in the order they were given.
///
/// Equivalent to flipper-client's `Condition(**kwargs)`. Adding a second check with the same
/// variable and operator replaces the first one's value in place, as a repeated kwarg would
/// (and as reading it back from storage does).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Condition {
    /// One entry per check, the checks of one variable next to each other (variables in
    /// first-seen order, checks in insertion order): the stored form's grouping, flat for a
    /// tight evaluation loop.
    entries: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq)]
struct Entry {
    /// `name_key(variable)`.
    key: u128,
    variable: String,
    operator: Operator,
    value: Value,
}

impl Condition {
    /// An empty condition (`Condition()`): passes every check.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a condition from kwargs-style keys, as `Condition(**kwargs)`.
    ///
    /// ```
    /// use flipper_core::condition::Condition;
    /// let c = Condition::from_kwargs([("age__gte", 18.into()), ("is_admin", true.into())]).unwrap();
    /// assert_eq!(c, Condition::new().gte("age", 18).eq("is_admin", true));
    /// ```
    ///
    /// # Errors
    /// [`InvalidSymbolError`] for a key with an unknown operator suffix.
    pub fn from_kwargs<K: AsRef<str>>(
        kwargs: impl IntoIterator<Item = (K, Value)>,
    ) -> Result<Self, InvalidSymbolError> {
        let mut c = Self::new();
        for (key, value) in kwargs {
            c = c.check(key.as_ref(), value)?;
        }
        Ok(c)
    }

    /// Adds a check given as a kwargs-style key (`"age__gte"`).
    ///
    /// # Errors
    /// [`InvalidSymbolError`] for an unknown operator suffix.
    pub fn check(self, key: &str, value: impl Into<Value>) -> Result<Self, InvalidSymbolError> {
        let (variable, operator) = parse_check_key(key)?;
        Ok(self.with(variable, operator, value))
    }

    /// Adds `variable <operator> value`. A repeated (variable, operator) pair replaces the
    /// earlier value in place.
    pub fn with(mut self, variable: &str, operator: Operator, value: impl Into<Value>) -> Self {
        self.push(variable, operator, value.into());
        self
    }

    fn push(&mut self, variable: &str, operator: Operator, value: Value) {
        if let Some(e) = self
            .entries
            .iter_mut()
            .find(|e| e.variable == variable && e.operator == operator)
        {
            e.value = value;
            return;
        }
        // After the variable's other checks, or at the end for a new variable.
        let at = self
            .entries
            .iter()
            .rposition(|e| e.variable == variable)
            .map_or(self.entries.len(), |i| i + 1);
        self.entries.insert(
            at,
            Entry {
                key: name_key(variable),
                variable: variable.to_owned(),
                operator,
                value,
            },
        );
    }

    /// `variable == value`.
    pub fn eq(self, variable: &str, value: impl Into<Value>) -> Self {
        self.with(variable, Operator::Eq, value)
    }
    /// `variable != value`.
    pub fn ne(self, variable: &str, value: impl Into<Value>) -> Self {
        self.with(variable, Operator::Ne, value)
    }
    /// `variable > value`.
    pub fn gt(self, variable: &str, value: impl Into<Value>) -> Self {
        self.with(variable, Operator::Gt, value)
    }
    /// `variable >= value`.
    pub fn gte(self, variable: &str, value: impl Into<Value>) -> Self {
        self.with(variable, Operator::Gte, value)
    }
    /// `variable < value`.
    pub fn lt(self, variable: &str, value: impl Into<Value>) -> Self {
        self.with(variable, Operator::Lt, value)
    }
    /// `variable <= value`.
    pub fn lte(self, variable: &str, value: impl Into<Value>) -> Self {
        self.with(variable, Operator::Lte, value)
    }
    /// `variable in value` (a list, a string for substrings, or an object for its keys).
    pub fn is_in(self, variable: &str, value: impl Into<Value>) -> Self {
        self.with(variable, Operator::In, value)
    }
    /// `variable not in value`.
    pub fn not_in(self, variable: &str, value: impl Into<Value>) -> Self {
        self.with(variable, Operator::NotIn, value)
    }

    /// Number of checks.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the condition has no checks (it then passes everything).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The checks, grouped by variable in insertion order.
    pub fn checks(&self) -> impl Iterator<Item = Check> + '_ {
        self.entries.iter().map(|e| Check {
            variable: e.variable.clone(),
            value: e.value.clone(),
            operator: e.operator,
        })
    }

    /// The first check that would not survive flipper-client's storage round trip
    /// (see [`Check::round_trips`]), if any.
    pub fn first_unstorable_check(&self) -> Option<Check> {
        self.checks().find(|c| !c.round_trips())
    }

    /// The checks as (name key, variable, operator, stored value), for preparing them.
    pub(crate) fn entries(&self) -> impl Iterator<Item = (u128, &str, Operator, &Value)> {
        self.entries
            .iter()
            .map(|e| (e.key, e.variable.as_str(), e.operator, &e.value))
    }

    /// Evaluates the condition as `Condition.check(**checks)`: for each supplied variable in
    /// order, every check on it must hold. Variables the condition does not mention are ignored;
    /// variables it mentions but the caller omits pass.
    ///
    /// # Errors
    /// Python's `TypeError` when a comparison is unsupported (only if reached before a failing
    /// check, exactly as in Python).
    #[inline]
    pub fn evaluate(&self, checks: &Checks) -> Result<bool, TypeError> {
        // One check (the usual condition): check names are unique, so at most one of the
        // caller's variables meets it, and the order of the variables cannot matter.
        if let [e] = self.entries.as_slice() {
            return match checks.get_keyed(e.key, &e.variable) {
                Some(runtime) => e.operator.apply(runtime, &e.value),
                None => Ok(true),
            };
        }
        self.evaluate_in_order(checks)
    }

    /// [`Condition::evaluate`] as Python runs it: the caller's variables in order, each against
    /// the checks on it.
    fn evaluate_in_order(&self, checks: &Checks) -> Result<bool, TypeError> {
        for var in checks.vars() {
            for e in &self.entries {
                if e.key == var.key
                    && (var.name.len() <= KEY_EXACT_LEN || e.variable == var.name)
                    && !e.operator.apply(&var.value, &e.value)?
                {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// The stored form: `{"var": [{"variable": "var", "value": v, "operator": "gte"}, ...]}`.
    pub fn to_value(&self) -> Value {
        let mut o = Object::new();
        for e in &self.entries {
            let mut check = Object::with_capacity(3);
            check.insert("variable".into(), Value::Str(e.variable.clone()));
            check.insert("value".into(), e.value.clone());
            check.insert(
                "operator".into(),
                e.operator.symbol().map_or(Value::Null, Value::from),
            );
            // Entries of one variable are adjacent, so this appends to the group in order.
            match o
                .entry(e.variable.clone())
                .or_insert_with(|| Value::List(Vec::new()))
            {
                Value::List(list) => list.push(Value::from(check)),
                _ => unreachable!("groups are lists"),
            }
        }
        Value::from(o)
    }

    /// Reads the stored form as `Condition.from_dict`: the outer keys are ignored; each check's
    /// key is rebuilt from `variable` and `operator` and re-parsed, so repeated
    /// (variable, operator) pairs collapse (last value wins, first position kept).
    ///
    /// # Errors
    /// A [`ConditionFormatError`] naming the offending part.
    pub fn from_value(v: &Value) -> Result<Self, ConditionFormatError> {
        let outer = v
            .as_object()
            .ok_or_else(|| ConditionFormatError::new("", "a condition must be an object"))?;
        // Python builds a kwargs dict first: a repeated key keeps its first position.
        let mut kwargs = Object::new();
        for (outer_key, list) in outer {
            let list = list
                .as_list()
                .ok_or_else(|| ConditionFormatError::new(outer_key, "must be a list of checks"))?;
            for (i, check) in list.iter().enumerate() {
                let at = || format!("{outer_key}[{i}]");
                let check = check
                    .as_object()
                    .ok_or_else(|| ConditionFormatError::new(&at(), "a check must be an object"))?;
                let variable = check
                    .get("variable")
                    .ok_or_else(|| ConditionFormatError::new(&at(), "missing \"variable\""))?
                    .as_str()
                    .ok_or_else(|| {
                        ConditionFormatError::new(&at(), "\"variable\" must be a string")
                    })?;
                let value = check
                    .get("value")
                    .ok_or_else(|| ConditionFormatError::new(&at(), "missing \"value\""))?;
                let symbol = match check.get("operator") {
                    None => return Err(ConditionFormatError::new(&at(), "missing \"operator\"")),
                    Some(Value::Null) => None,
                    Some(Value::Str(s)) => Some(s.as_str()),
                    Some(_) => {
                        return Err(ConditionFormatError::new(
                            &at(),
                            "\"operator\" must be a string or null",
                        ));
                    }
                };
                let operator = Operator::from_symbol(symbol)
                    .map_err(|e| ConditionFormatError::new(&at(), &e.to_string()))?;
                kwargs.insert(make_check_key(variable, operator), value.clone());
            }
        }
        Self::from_kwargs(kwargs).map_err(|e| ConditionFormatError::new("", &e.to_string()))
    }
}

/// A stored condition flipper-client could not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionFormatError {
    /// Where, inside the condition (`plan[0]`), or empty for the whole condition.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl ConditionFormatError {
    fn new(path: &str, message: &str) -> Self {
        Self {
            path: path.to_owned(),
            message: message.to_owned(),
        }
    }
}

impl fmt::Display for ConditionFormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}
impl std::error::Error for ConditionFormatError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_check_is_evaluated_as_python_runs_every_condition() {
        // Long names with equal keys (same length, same first 15 bytes) need the names.
        let (long_a, long_b) = ("a_very_long_variable_1", "a_very_long_variable_2");
        let names = ["age", "plan", "", long_a, long_b];
        let values = [
            Value::from(30),
            Value::from(17),
            Value::from("pro"),
            Value::from(vec!["pro", "team"]),
            Value::Null,
            Value::Bool(true),
            Value::Float(f64::NAN),
        ];
        let mut conditions = 0;
        for variable in names {
            for operator in Operator::ALL {
                for stored in &values {
                    let c = Condition::new().with(variable, operator, stored.clone());
                    conditions += 1;
                    for (first, second) in [("age", "plan"), (long_b, long_a), ("", "age")] {
                        for runtime in &values {
                            for checks in [
                                Checks::new(),
                                Checks::new().with(first, runtime.clone()),
                                Checks::new().with(first, 1).with(second, runtime.clone()),
                            ] {
                                assert_eq!(
                                    c.evaluate(&checks),
                                    c.evaluate_in_order(&checks),
                                    "{c:?} {checks:?}"
                                );
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(conditions, names.len() * Operator::ALL.len() * values.len());
    }

    #[test]
    fn keys_parse_like_python() {
        assert_eq!(parse_check_key("age").unwrap(), ("age", Operator::Eq));
        assert_eq!(parse_check_key("age__gte").unwrap(), ("age", Operator::Gte));
        assert_eq!(parse_check_key("__in").unwrap(), ("", Operator::In));
        assert_eq!(
            parse_check_key("x__not_in").unwrap(),
            ("x", Operator::NotIn)
        );
        assert_eq!(
            parse_check_key("a__b__gt").unwrap(),
            ("a__b__gt", Operator::Eq)
        );
        for bad in ["x__", "__", "x__IN", "x___gt", "x__eq"] {
            assert!(parse_check_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fast_path_agrees_with_python_semantics() {
        let values = [
            Value::from(1),
            Value::from(2),
            Value::from(i64::MAX),
            Value::from(u64::MAX),
            Value::from(1.0),
            Value::Float(f64::NAN),
            Value::from(true),
            Value::from(false),
            Value::from("a"),
            Value::from("b"),
            Value::Null,
            Value::from(vec![1]),
        ];
        for op in Operator::ALL {
            for a in &values {
                for b in &values {
                    assert_eq!(op.apply(a, b), op.apply_general(a, b), "{a:?} {op} {b:?}");
                }
            }
        }
    }

    #[test]
    fn make_key_inverts_parse() {
        for op in Operator::ALL {
            let key = make_check_key("plan", op);
            assert_eq!(parse_check_key(&key).unwrap(), ("plan", op));
        }
    }

    #[test]
    fn repeated_pair_replaces_in_place() {
        let c = Condition::new().gte("a", 1).eq("b", 2).gte("a", 3);
        let checks: Vec<_> = c.checks().collect();
        assert_eq!(checks.len(), 2);
        assert_eq!(checks[0].value, Value::from(3));
        assert_eq!(checks[1].variable, "b");
    }

    #[test]
    fn unstorable_checks_are_detected() {
        assert!(
            Condition::new()
                .eq("x__gt", 1)
                .first_unstorable_check()
                .is_some()
        );
        assert!(
            Condition::new()
                .gt("x_", 1)
                .first_unstorable_check()
                .is_some()
        );
        assert!(
            Condition::new()
                .gt("x", 1)
                .first_unstorable_check()
                .is_none()
        );
        // Three parts read back as an equality on the whole key: stable.
        assert!(
            Condition::new()
                .eq("a__b__gt", 1)
                .first_unstorable_check()
                .is_none()
        );
    }
}
