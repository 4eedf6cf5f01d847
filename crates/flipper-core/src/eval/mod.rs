//! Evaluation: flipper-client's `FeatureFlagStoreItem.is_enabled`, with a reason.
//!
//! The algorithm, exactly as Python's:
//!
//! 1. A flag whose stored `is_enabled` is literally `false` is off ([`Reason::Disabled`]).
//! 2. When the caller passed at least one check and the flag has at least one condition, the
//!    conditions alone decide ([`Reason::ConditionsMatched`] / [`Reason::ConditionsFailed`]);
//!    the bucketer is not consulted.
//! 3. Otherwise the bucketer decides ([`Reason::BucketedIn`] / [`Reason::BucketedOut`]), or,
//!    with no bucketer, the flag is on ([`Reason::Enabled`]).
//!
//! Where Python raises `TypeError` (comparing `"a" > 1`, a non-numeric percentage), the flag is
//! off and the reason is [`Reason::Error`] with Python's message. Nothing here panics.
//!
//! ```
//! use flipper_core::{Checks, Item, condition::Condition, eval::{evaluate, FixedEnv, Reason}};
//! let mut item = Item::new("beta", true, 1_700_000_000);
//! item.meta.conditions.push(Condition::new().gte("age", 18));
//! let env = FixedEnv { now: 1_700_000_000.0, random: 0.5 };
//! let e = evaluate(&item, &Checks::new().with("age", 21), &env);
//! assert!(e.enabled);
//! assert_eq!(e.reason, Reason::ConditionsMatched);
//! let e = evaluate(&item, &Checks::new().with("age", "21"), &env);
//! assert!(!e.enabled);
//! assert_eq!(e.reason.code(), "error");
//! ```

use std::fmt;

mod prepared;
pub use prepared::Prepared;

use crate::bucketing::consistent_hash_bucket;
use crate::checks::Checks;
use crate::item::Item;
use crate::pyops::TypeError;

/// The inputs evaluation takes from the outside world: the clock (for linear ramps) and a
/// random draw (for the random percentage bucketer). Only called when needed.
pub trait Env {
    /// Now, as Unix seconds.
    fn now(&self) -> f64;
    /// A uniform draw in `[0, 1)`.
    fn random(&self) -> f64;
}

/// An [`Env`] with fixed answers, for tests and reproducible evaluation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FixedEnv {
    /// Unix seconds.
    pub now: f64,
    /// The random draw.
    pub random: f64,
}

impl Env for FixedEnv {
    fn now(&self) -> f64 {
        self.now
    }
    fn random(&self) -> f64 {
        self.random
    }
}

impl<E: Env + ?Sized> Env for &E {
    fn now(&self) -> f64 {
        (**self).now()
    }
    fn random(&self) -> f64 {
        (**self).random()
    }
}

/// A shared environment. Handing over `&Arc<dyn Env>` rather than `&dyn Env` leaves the
/// pointer inside the `Arc` to be worked out only by evaluations that use the environment.
impl<E: Env + ?Sized> Env for std::sync::Arc<E> {
    fn now(&self) -> f64 {
        (**self).now()
    }
    fn random(&self) -> f64 {
        (**self).random()
    }
}

/// Why an evaluation gave its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// The flag's stored `is_enabled` is `false`.
    Disabled,
    /// No such flag: the caller's default was returned.
    FlagMissing,
    /// The flags are not loaded yet (live flags before their first snapshot): the caller's
    /// default was returned.
    NotInitialized,
    /// Checks were given and every condition passed.
    ConditionsMatched,
    /// Checks were given and a condition failed.
    ConditionsFailed,
    /// The bucketer put the caller in.
    BucketedIn,
    /// The bucketer left the caller out.
    BucketedOut,
    /// Switched on, no condition applied, no bucketer.
    Enabled,
    /// Evaluation hit an error where Python raises; the answer is `false`.
    Error(EvalError),
}

impl Reason {
    /// A stable snake_case code: `disabled`, `flag_missing`, `not_initialized`,
    /// `conditions_matched`, `conditions_failed`, `bucketed_in`, `bucketed_out`, `enabled`,
    /// `error`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Disabled => "disabled",
            Self::FlagMissing => "flag_missing",
            Self::NotInitialized => "not_initialized",
            Self::ConditionsMatched => "conditions_matched",
            Self::ConditionsFailed => "conditions_failed",
            Self::BucketedIn => "bucketed_in",
            Self::BucketedOut => "bucketed_out",
            Self::Enabled => "enabled",
            Self::Error(_) => "error",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Error(e) => write!(f, "error: {e}"),
            other => f.write_str(other.code()),
        }
    }
}

/// The kind of an evaluation error, named after the Python exception.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Python's `TypeError`: an unsupported comparison or operand.
    TypeError,
}

impl ErrorKind {
    /// The Python exception name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TypeError => "TypeError",
        }
    }
}

/// An error met while evaluating, with Python's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalError {
    /// Which Python exception flipper-client would raise.
    pub kind: ErrorKind,
    /// Its message, e.g. `'>' not supported between instances of 'str' and 'int'`.
    pub message: String,
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.message)
    }
}
impl std::error::Error for EvalError {}

impl From<TypeError> for EvalError {
    fn from(e: TypeError) -> Self {
        Self {
            kind: ErrorKind::TypeError,
            message: e.message.into(),
        }
    }
}

/// An answer and its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    /// Whether the flag is on for these checks.
    pub enabled: bool,
    /// Why.
    pub reason: Reason,
}

impl Evaluation {
    /// The error, if evaluation hit one.
    pub fn error_detail(&self) -> Option<&EvalError> {
        match &self.reason {
            Reason::Error(e) => Some(e),
            _ => None,
        }
    }
}

/// What an evaluation produces: the answer with its reason ([`Evaluation`]), or the answer
/// alone (`bool`, where an error is `false`), so that a caller who wants only the answer does
/// not pay for the reason. Both come out of the one algorithm, [`evaluate_with`].
trait Outcome {
    fn new(enabled: bool, reason: Reason) -> Self;
    fn error(e: TypeError) -> Self;
}

impl Outcome for Evaluation {
    #[inline(always)]
    fn new(enabled: bool, reason: Reason) -> Self {
        Self { enabled, reason }
    }
    fn error(e: TypeError) -> Self {
        Self::new(false, Reason::Error(e.into()))
    }
}

impl Outcome for bool {
    #[inline(always)]
    fn new(enabled: bool, _: Reason) -> Self {
        enabled
    }
    #[inline(always)]
    fn error(_: TypeError) -> Self {
        false
    }
}

/// Evaluates a flag for the caller's checks (see the module docs for the algorithm).
#[inline]
pub fn evaluate<E: Env + ?Sized>(item: &Item, checks: &Checks, env: &E) -> Evaluation {
    evaluate_with(item, checks, env, |whitelist| {
        consistent_hash_bucket(checks, whitelist)
    })
}

/// [`evaluate`]`(item, checks, env).enabled`, without building the reason.
///
/// ```
/// use flipper_core::{Checks, Item, condition::Condition, eval::{is_enabled, FixedEnv}};
/// let mut item = Item::new("beta", true, 1_700_000_000);
/// item.meta.conditions.push(Condition::new().gte("age", 18));
/// let env = FixedEnv { now: 1_700_000_000.0, random: 0.5 };
/// assert!(is_enabled(&item, &Checks::new().with("age", 21), &env));
/// assert!(!is_enabled(&item, &Checks::new().with("age", "21"), &env)); // Python's TypeError
/// ```
#[inline]
pub fn is_enabled<E: Env + ?Sized>(item: &Item, checks: &Checks, env: &E) -> bool {
    evaluate_with(item, checks, env, |whitelist| {
        consistent_hash_bucket(checks, whitelist)
    })
}

/// [`evaluate`], with the consistent-hash bucket of the checks for a whitelist from `bucket`.
#[inline]
fn evaluate_with<'i, E: Env + ?Sized, O: Outcome>(
    item: &'i Item,
    checks: &Checks,
    env: &E,
    bucket: impl FnOnce(&'i [String]) -> u8,
) -> O {
    if !item.switched_on() {
        return O::new(false, Reason::Disabled);
    }
    let conditions = &item.meta.conditions;
    if !checks.is_empty() && !conditions.is_empty() {
        for c in conditions {
            match c.evaluate(checks) {
                Ok(true) => {}
                Ok(false) => return O::new(false, Reason::ConditionsFailed),
                Err(e) => return O::error(e),
            }
        }
        return O::new(true, Reason::ConditionsMatched);
    }
    if item.meta.bucketer.is_noop() {
        return O::new(true, Reason::Enabled);
    }
    match item.meta.bucketer.check_with(checks, env, bucket) {
        Ok(enabled) => O::new(
            enabled,
            if enabled {
                Reason::BucketedIn
            } else {
                Reason::BucketedOut
            },
        ),
        Err(e) => O::error(e),
    }
}

/// Evaluates any number of flags for one set of checks, hashing the checks once per distinct
/// key whitelist rather than once per flag.
///
/// A consistent-hash bucket depends on the checks and the bucketer's key whitelist only:
/// flipper-client hashes no flag name, so every flag bucketing on `["user_id"]` puts a user in
/// the same bucket. Each answer is [`evaluate`]'s; only the SHA-1 work is shared. Meant for
/// "every flag for this context" (a few whitelists are remembered; flags with others are
/// hashed each time).
///
/// ```
/// use flipper_core::{Checks, Item, bucketing::{Bucketer, Percentage}};
/// use flipper_core::eval::{ContextEvaluator, FixedEnv, evaluate};
/// let env = FixedEnv { now: 0.0, random: 0.5 };
/// let checks = Checks::new().with("user_id", 42);
/// let mut a = Item::new("a", true, 1);
/// a.meta.bucketer = Bucketer::consistent_hash(Percentage::fixed(0.5), ["user_id"]);
/// let mut b = a.clone();
/// b.meta.bucketer = Bucketer::consistent_hash(Percentage::fixed(0.9), ["user_id"]);
/// let mut context = ContextEvaluator::new(&checks, &env);
/// for item in [&a, &b] {
///     assert_eq!(context.evaluate(item), evaluate(item, &checks, &env));
/// }
/// ```
#[derive(Debug)]
pub struct ContextEvaluator<'a, E: ?Sized> {
    checks: &'a Checks,
    env: &'a E,
    /// Whitelists seen so far and their bucket for `checks`.
    buckets: [(&'a [String], u8); REMEMBERED_WHITELISTS],
    remembered: usize,
}

/// How many distinct whitelists one [`ContextEvaluator`] remembers.
const REMEMBERED_WHITELISTS: usize = 4;

impl<'a, E: Env + ?Sized> ContextEvaluator<'a, E> {
    /// An evaluator for `checks`, reading the clock and random draws from `env`.
    pub fn new(checks: &'a Checks, env: &'a E) -> Self {
        Self {
            checks,
            env,
            buckets: [(&[], 0); REMEMBERED_WHITELISTS],
            remembered: 0,
        }
    }

    /// [`evaluate`]`(item, checks, env)`.
    #[inline]
    pub fn evaluate(&mut self, item: &'a Item) -> Evaluation {
        let (checks, env) = (self.checks, self.env);
        let (buckets, remembered) = (&mut self.buckets, &mut self.remembered);
        evaluate_with(item, checks, env, |whitelist: &'a [String]| {
            let seen = &buckets[..*remembered];
            if let Some(&(_, bucket)) = seen.iter().find(|(w, _)| *w == whitelist) {
                return bucket;
            }
            let bucket = consistent_hash_bucket(checks, whitelist);
            if let Some(slot) = buckets.get_mut(*remembered) {
                *slot = (whitelist, bucket);
                *remembered += 1;
            }
            bucket
        })
    }
}

/// Evaluates a flag that may be missing: `client.is_enabled(name, default=default, **checks)`.
#[inline]
pub fn evaluate_or_default<E: Env + ?Sized>(
    item: Option<&Item>,
    checks: &Checks,
    default: bool,
    env: &E,
) -> Evaluation {
    match item {
        Some(item) => evaluate(item, checks, env),
        None => Evaluation::new(default, Reason::FlagMissing),
    }
}

impl Item {
    /// Whether the flag is on for these checks (`false` on error).
    #[inline]
    pub fn is_enabled<E: Env + ?Sized>(&self, checks: &Checks, env: &E) -> bool {
        is_enabled(self, checks, env)
    }

    /// The answer with its reason.
    pub fn evaluate<E: Env + ?Sized>(&self, checks: &Checks, env: &E) -> Evaluation {
        evaluate(self, checks, env)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Value;
    use crate::bucketing::{Bucketer, Percentage};
    use crate::condition::Condition;

    const ENV: FixedEnv = FixedEnv {
        now: 1_700_000_000.0,
        random: 0.5,
    };

    fn readme_flag() -> Item {
        let mut item = Item::new("homepage_v2", true, 1);
        item.meta
            .conditions
            .push(Condition::new().eq("is_admin", true));
        item.meta.bucketer = Bucketer::consistent_hash(Percentage::fixed(0.5), ["user_id"]);
        item
    }

    #[test]
    fn any_check_with_a_condition_bypasses_the_bucketer() {
        let item = readme_flag();
        // user_id 2 scores 0.94 but the (vacuously passing) condition decides.
        let e = evaluate(&item, &Checks::new().with("user_id", 2), &ENV);
        assert_eq!((e.enabled, e.reason), (true, Reason::ConditionsMatched));
        let e = evaluate(
            &item,
            &Checks::new().with("user_id", 1).with("is_admin", false),
            &ENV,
        );
        assert_eq!((e.enabled, e.reason), (false, Reason::ConditionsFailed));
        // No checks: the bucketer hashes `[]`, which scores 0.32.
        let e = evaluate(&item, &Checks::new(), &ENV);
        assert_eq!((e.enabled, e.reason), (true, Reason::BucketedIn));
    }

    #[test]
    fn only_literal_false_disables() {
        let mut item = Item::new("x", false, 1);
        assert_eq!(
            evaluate(&item, &Checks::new(), &ENV).reason,
            Reason::Disabled
        );
        for v in [
            Value::from(0),
            Value::Null,
            Value::from("false"),
            Value::from(""),
        ] {
            item.is_enabled = v;
            assert!(item.is_enabled(&Checks::new(), &ENV));
        }
    }

    #[test]
    fn check_order_decides_between_error_and_false() {
        let mut item = Item::new("x", true, 1);
        item.meta
            .conditions
            .push(Condition::new().gt("a", 1).eq("b", 2));
        let fails_first = Checks::new().with("b", 3).with("a", "text");
        assert_eq!(
            evaluate(&item, &fails_first, &ENV).reason,
            Reason::ConditionsFailed
        );
        let errors_first = Checks::new().with("a", "text").with("b", 3);
        let e = evaluate(&item, &errors_first, &ENV);
        assert!(!e.enabled);
        assert_eq!(
            e.error_detail().unwrap().message,
            "'>' not supported between instances of 'str' and 'int'"
        );
    }

    #[test]
    fn constant_answers_agree_with_evaluation() {
        let checks = [Checks::new(), Checks::new().with("a", 1)];
        let mut conditional = Item::new("c", true, 1);
        conditional
            .meta
            .conditions
            .push(Condition::new().eq("a", 1));
        let mut bucketed = Item::new("b", true, 1);
        bucketed.meta.bucketer = Bucketer::percentage(Percentage::fixed(0.5));
        let mut off = bucketed.clone();
        off.is_enabled = Value::Bool(false);
        for item in [Item::new("on", true, 1), off, conditional, bucketed] {
            if let Some(answer) = Prepared::new(&item).constant() {
                for c in &checks {
                    let e = evaluate(&item, c, &ENV);
                    assert_eq!(e.enabled, answer);
                    let reason = if answer {
                        Reason::Enabled
                    } else {
                        Reason::Disabled
                    };
                    assert_eq!(e.reason, reason);
                }
            }
        }
        assert_eq!(Prepared::new(&readme_flag()).constant(), None);
    }

    #[test]
    fn missing_flag_gives_the_default() {
        let e = evaluate_or_default(None, &Checks::new(), true, &ENV);
        assert_eq!((e.enabled, e.reason), (true, Reason::FlagMissing));
    }
}
