//! [`Prepared`]: what of a flag's answer depends on the flag alone, worked out once for the many
//! evaluations live flags make of it.

use std::sync::Arc;

use super::{Env, is_enabled};
use crate::bucketing::{Bucketer, OneKeyHasher};
use crate::checks::{Checks, Place, same_bytes};
use crate::condition::{Operator, accepts};
use crate::item::Item;
use crate::value::Value;

/// A flag prepared for many evaluations of its answer (live flags keep one per flag): what of
/// [`is_enabled`]'s work depends on the flag alone is done once.
///
/// * A flag switched off, or on with no condition and no bucketer: the answer, whatever the
///   checks ([`Prepared::constant`]).
/// * A flag on with no condition and a consistent hash on one name (one [`OneKeyHasher::new`]
///   takes) with a fixed percentage whose comparison never raises: the buckets it lets in
///   ([`Bucketer::buckets_let_in`]) and the hasher.
/// * A flag on with conditions: their checks in one flat list, each with its stored operand
///   unpacked for the usual comparisons (a string among strings, integers). With checks given,
///   the answer is whether every check on a variable given holds, which is Python's answer:
///   a condition fails on its first check that does not hold or raises, and either way the
///   flag is off. Without checks, [`is_enabled`] (the bucketer decides).
/// * Any other flag: [`is_enabled`].
///
/// The item is not kept: [`Prepared::is_enabled`] must be given the item it was prepared from.
///
/// ```
/// use flipper_core::{Checks, Item, bucketing::{Bucketer, Percentage}, condition::Condition};
/// use flipper_core::eval::{FixedEnv, Prepared, is_enabled};
/// let env = FixedEnv { now: 0.0, random: 0.5 };
/// let mut item = Item::new("half", true, 1);
/// item.meta.bucketer = Bucketer::consistent_hash(Percentage::fixed(0.5), ["user_id"]);
/// let prepared = Prepared::new(&item);
/// for id in 0..100 {
///     let checks = Checks::new().with("user_id", id);
///     assert_eq!(prepared.is_enabled(&item, &checks, &env), is_enabled(&item, &checks, &env));
/// }
/// let mut adults = Item::new("adults", true, 1);
/// adults.meta.conditions.push(Condition::new().gte("age", 18));
/// let prepared = Prepared::new(&adults);
/// assert!(prepared.is_enabled(&adults, &Checks::new().with("age", 21), &env));
/// assert!(!prepared.is_enabled(&adults, &Checks::new().with("age", "21"), &env)); // TypeError
/// assert_eq!(Prepared::new(&Item::new("on", true, 1)).constant(), Some(true));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared(Shape);

/// Shared (`Arc`) where a shape holds more than a word: most flags are constant, and sets of
/// flags are cloned whole on every change. Every `Arc` is a thin pointer, so that a prepared
/// flag takes two words (live flags hold one per flag; a wide pointer would add a word to each
/// flag held, conditions or not).
#[derive(Debug, Clone, PartialEq)]
enum Shape {
    Constant(bool),
    OneKeyHash(Arc<(OneKeyHasher, u128)>),
    Conditions(Arc<ConditionChecks>),
    General,
}

/// A flag's condition checks, flat.
#[derive(Debug, PartialEq)]
struct ConditionChecks(Box<[PreparedCheck]>);

impl Prepared {
    /// Prepares `item`.
    pub fn new(item: &Item) -> Self {
        let meta = &item.meta;
        Self(if !item.switched_on() {
            Shape::Constant(false)
        } else if !meta.conditions.is_empty() {
            Shape::Conditions(Arc::new(ConditionChecks(
                meta.conditions
                    .iter()
                    .flat_map(|c| c.entries())
                    .map(PreparedCheck::new)
                    .collect(),
            )))
        } else if meta.bucketer.is_noop() {
            Shape::Constant(true)
        } else {
            match &meta.bucketer {
                Bucketer::ConsistentHash { key_whitelist, .. } => {
                    match (key_whitelist.as_slice(), meta.bucketer.buckets_let_in()) {
                        ([name], Some(buckets)) => OneKeyHasher::new(name)
                            .map_or(Shape::General, |h| {
                                Shape::OneKeyHash(Arc::new((h, buckets)))
                            }),
                        _ => Shape::General,
                    }
                }
                _ => Shape::General,
            }
        })
    }

    /// The answer when it depends on neither the checks nor the [`Env`]: `false`
    /// ([`Reason::Disabled`](super::Reason::Disabled)) for a flag switched off, `true`
    /// ([`Reason::Enabled`](super::Reason::Enabled)) for one switched on with no condition and
    /// no bucketer; `None` for any other flag.
    #[inline(always)]
    pub fn constant(&self) -> Option<bool> {
        match self.0 {
            Shape::Constant(answer) => Some(answer),
            _ => None,
        }
    }

    /// [`is_enabled`]`(item, checks, env)`, for the `item` this was prepared from.
    #[inline(always)]
    pub fn is_enabled<E: Env + ?Sized>(&self, item: &Item, checks: &Checks, env: &E) -> bool {
        match &self.0 {
            Shape::Constant(answer) => *answer,
            Shape::OneKeyHash(hash) => {
                let (hasher, buckets) = &**hash;
                buckets >> hasher.bucket(checks) & 1 == 1
            }
            Shape::Conditions(all) if !checks.is_empty() => all.0.iter().all(|c| c.holds(checks)),
            Shape::Conditions(_) | Shape::General => is_enabled(item, checks, env),
        }
    }
}

/// One check of a flag's conditions.
#[derive(Debug, Clone, PartialEq)]
struct PreparedCheck {
    key: u128,
    variable: Box<str>,
    /// Where the variable was first found in the callers' checks.
    place: Place,
    operator: Operator,
    stored: Value,
    unpacked: Unpacked,
}

/// A check's stored operand unpacked for the usual comparisons, where [`Operator::apply`]
/// would find the same answer by its fast paths; any other runtime value goes to
/// [`Operator::apply`].
#[derive(Debug, Clone, PartialEq)]
enum Unpacked {
    /// `in` / `not_in` a list: the list's strings. A string is in a list exactly when an equal
    /// string is (no other element equals a string), so a runtime string needs only these.
    Strings {
        strings: Box<[Box<str>]>,
        holds_if_found: bool,
    },
    /// A comparison with an integer that fits in an `i64`: the integer, and the outcomes that
    /// satisfy the operator ([`Operator::outcomes`]).
    Int { bound: i64, outcomes: u8 },
    /// Anything else.
    No,
}

impl PreparedCheck {
    fn new((key, variable, operator, stored): (u128, &str, Operator, &Value)) -> Self {
        let unpacked = match (operator, stored, operator.outcomes()) {
            (Operator::In | Operator::NotIn, Value::List(items), _) => Unpacked::Strings {
                strings: items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(Into::into)
                    .collect(),
                holds_if_found: operator == Operator::In,
            },
            (_, Value::Int(n), Some(outcomes)) => match n.as_i64() {
                Some(bound) => Unpacked::Int { bound, outcomes },
                None => Unpacked::No,
            },
            _ => Unpacked::No,
        };
        Self {
            key,
            variable: variable.into(),
            place: Place::default(),
            operator,
            stored: stored.clone(),
            unpacked,
        }
    }

    /// Whether the check holds for `checks`: the variable is not given, or its value satisfies
    /// the check (a `TypeError` does not).
    #[inline(always)]
    fn holds(&self, checks: &Checks) -> bool {
        let Some(runtime) = checks.get_placed(self.key, &self.variable, &self.place) else {
            return true;
        };
        match (&self.unpacked, runtime) {
            (
                Unpacked::Strings {
                    strings,
                    holds_if_found,
                },
                Value::Str(s),
            ) => {
                strings
                    .iter()
                    .any(|t| same_bytes(t.as_bytes(), s.as_bytes()))
                    == *holds_if_found
            }
            (Unpacked::Int { bound, outcomes }, Value::Int(n)) if let Some(n) = n.as_i64() => {
                accepts(*outcomes, Some(n.cmp(bound)))
            }
            _ => self.operator.apply(runtime, &self.stored) == Ok(true),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::condition::Condition;
    use crate::eval::FixedEnv;

    const ENV: FixedEnv = FixedEnv {
        now: 1_700_000_000.0,
        random: 0.5,
    };

    /// Every operator against stored operands of each kind the unpacking treats apart (a list
    /// of strings and other things, a list of no strings, an integer in and out of `i64`, a
    /// string, a float), and runtime values of every kind, each alone and in a multi-check
    /// condition: the prepared answer is the flag's.
    #[test]
    fn prepared_conditions_answer_as_the_flag() {
        let huge = Value::Int(crate::Int::from(u128::MAX));
        let stored = [
            Value::from(vec![
                Value::from("pro"),
                Value::from(1),
                Value::from("enterprise"),
            ]),
            Value::from(vec![Value::from(1.0), Value::Bool(true), Value::Null]),
            Value::from(18),
            huge.clone(),
            Value::from("pro plan"),
            Value::from(18.5),
        ];
        let runtime = [
            Value::from("pro"),
            Value::from("enterprise"),
            Value::from("pro plan"),
            Value::from("plan"),
            Value::from(""),
            Value::from(1),
            Value::from(17),
            Value::from(18),
            Value::from(19),
            Value::from(-5),
            huge,
            Value::Bool(true),
            Value::from(18.5),
            Value::from(f64::NAN),
            Value::Null,
            Value::from(vec![Value::from("pro")]),
        ];
        let mut seen = [0usize; 2];
        for op in Operator::ALL {
            for s in &stored {
                let one = Condition::new().with("plan", op, s.clone());
                let two = one.clone().with("age", Operator::Gte, 18);
                for condition in [one, two] {
                    let mut item = Item::new("f", true, 1);
                    item.meta.conditions.push(condition);
                    let prepared = Prepared::new(&item);
                    for r in &runtime {
                        for checks in [
                            Checks::new().with("plan", r.clone()),
                            Checks::new().with("age", r.clone()).with("plan", r.clone()),
                            Checks::new().with("other", 1),
                        ] {
                            let want = is_enabled(&item, &checks, &ENV);
                            seen[usize::from(want)] += 1;
                            assert_eq!(
                                prepared.is_enabled(&item, &checks, &ENV),
                                want,
                                "{op:?} {s:?} against {checks:?}"
                            );
                        }
                    }
                }
            }
        }
        // Both answers occur often, so that the comparison above can fail either way.
        assert!(seen.iter().all(|&n| n > 500), "{seen:?}");
    }

    #[test]
    fn a_prepared_flag_takes_two_words() {
        // Live flags hold one per flag: a wide pointer in any shape would grow every flag.
        assert_eq!(size_of::<Prepared>(), 2 * size_of::<usize>());
    }

    #[test]
    fn without_checks_the_bucketer_of_a_conditional_flag_decides() {
        let mut item = Item::new("f", true, 1);
        item.meta.conditions.push(Condition::new().eq("a", 1));
        item.meta.bucketer = Bucketer::percentage(crate::bucketing::Percentage::fixed(0.4));
        let prepared = Prepared::new(&item);
        // flipper-client's percentage bucketer lets in `random() <= share`.
        for random in [0.1, 0.4, 0.41, 0.9] {
            let env = FixedEnv { now: 0.0, random };
            assert_eq!(
                prepared.is_enabled(&item, &Checks::new(), &env),
                random <= 0.4,
                "{random}"
            );
        }
        // With checks, the condition decides and the bucketer is skipped.
        let env = FixedEnv {
            now: 0.0,
            random: 0.9,
        };
        assert!(prepared.is_enabled(&item, &Checks::new().with("a", 1), &env));
    }
}
