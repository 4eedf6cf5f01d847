//! Bucketers and percentages: which share of callers a flag is on for.
//!
//! * [`Bucketer::NoOp`]: everyone (the default).
//! * [`Bucketer::Percentage`]: a random share: on when a uniform draw in `[0, 1)` is `<=` the
//!   percentage. The draw is an input ([`Env::random`]).
//! * [`Bucketer::ConsistentHash`]: a stable share: SHA-1 of the Python JSON of the sorted,
//!   whitelisted checks, `mod 100`, divided by 100, compared `<=` with the percentage. The same
//!   user gets the same answer in Rust and in Python.
//!
//! A [`Percentage`] is a fixed value or a [`Percentage::LinearRamp`] that moves from an initial
//! to a final value over a duration. The ramp is flipper-client's with its bugs fixed (a
//! documented deviation): it is clamped between its two ends in both directions, so it never
//! goes negative before it starts and ramps *down* gradually.

use crate::checks::Checks;
use crate::eval::Env;
use crate::json;
use crate::pyops::{self, CmpOp, TypeError};
use crate::{Object, Value};

mod hash;
mod words;
pub use hash::{OneKeyHasher, consistent_hash_bucket, consistent_hash_input};

/// The kwarg flipper-client's bucketers take as their random source: never hashed, and for the
/// random bucketer called as a function (so any JSON value there is a `TypeError`).
pub const RANDOMIZER: &str = "randomizer";

/// A percentage in `[0, 1]`: fixed, or ramping linearly over time.
#[derive(Debug, Clone, PartialEq)]
pub enum Percentage {
    /// `{"type": "Percentage", "value": v}`. `value` is kept as stored (int or float; `null`
    /// when the stored object had no `value`, which makes every check a `TypeError`, as in
    /// Python).
    Fixed {
        /// The stored value.
        value: Value,
    },
    /// `{"type": "LinearRampPercentage", ...}`: from `initial_value` at `initial_time` to
    /// `final_value` after `ramp_duration` seconds. Numbers are kept as stored.
    LinearRamp {
        /// Value at `initial_time` and before.
        initial_value: Value,
        /// Value after the ramp.
        final_value: Value,
        /// Seconds; `0` means "always `final_value`".
        ramp_duration: Value,
        /// Unix seconds (flipper-client writes an integer). `None` when the stored ramp had
        /// none: Python then starts the ramp when it reads the flag, so the ramp is taken as
        /// starting at the moment of evaluation (it sits at `initial_value`).
        initial_time: Option<i64>,
    },
}

impl Default for Percentage {
    /// `Percentage()`: 100%.
    fn default() -> Self {
        Self::fixed(1.0)
    }
}

impl Percentage {
    /// A fixed percentage (`0.25` is 25%).
    pub fn fixed(value: f64) -> Self {
        Self::Fixed {
            value: Value::Float(value),
        }
    }

    /// A linear ramp from `initial_value` to `final_value` over `ramp_duration_secs` seconds,
    /// starting at `initial_time` (Unix seconds).
    ///
    /// ```
    /// use flipper_core::bucketing::Percentage;
    /// let ramp = Percentage::linear_ramp(0.0, 1.0, 3600, 1_700_000_000);
    /// assert_eq!(ramp.value_at(1_700_001_800.0).unwrap().as_f64(), Some(0.5));
    /// assert_eq!(ramp.value_at(0.0).unwrap().as_f64(), Some(0.0)); // clamped before the start
    /// ```
    pub fn linear_ramp(
        initial_value: f64,
        final_value: f64,
        ramp_duration_secs: i64,
        initial_time: i64,
    ) -> Self {
        Self::LinearRamp {
            initial_value: Value::Float(initial_value),
            final_value: Value::Float(final_value),
            ramp_duration: Value::from(ramp_duration_secs),
            initial_time: Some(initial_time),
        }
    }

    /// [`Percentage::value_at`] the environment's current time, reading the clock only for a
    /// ramp (a fixed percentage does not depend on it, and a clock read costs more than the
    /// rest of a static evaluation).
    ///
    /// # Errors
    /// As [`Percentage::value_at`].
    #[inline]
    pub fn value_now<E: Env + ?Sized>(&self, env: &E) -> Result<PercentageValue<'_>, TypeError> {
        match self {
            Self::Fixed { value } => Ok(PercentageValue::Stored(value)),
            Self::LinearRamp { .. } => self.value_at(env.now()),
        }
    }

    /// The percentage at `now` (Unix seconds).
    ///
    /// # Errors
    /// `TypeError` when a ramp field is not a number (Python's arithmetic would raise).
    pub fn value_at(&self, now: f64) -> Result<PercentageValue<'_>, TypeError> {
        match self {
            Self::Fixed { value } => Ok(PercentageValue::Stored(value)),
            Self::LinearRamp {
                initial_value,
                final_value,
                ramp_duration,
                initial_time,
            } => {
                if pyops::eq(ramp_duration, &Value::from(0)) {
                    return Ok(PercentageValue::Stored(final_value));
                }
                let iv = ramp_number(initial_value, "initial_value")?;
                let fv = ramp_number(final_value, "final_value")?;
                let duration = ramp_number(ramp_duration, "ramp_duration")?;
                let dt = initial_time.map_or(0.0, |t| now - t as f64);
                let v = iv + ((fv - iv) * dt) / duration;
                let (lo, hi) = if iv <= fv { (iv, fv) } else { (fv, iv) };
                Ok(PercentageValue::Computed(if v < lo {
                    lo
                } else if v > hi {
                    hi
                } else {
                    v
                }))
            }
        }
    }

    /// The stored form.
    pub fn to_value(&self) -> Value {
        let mut o = Object::new();
        match self {
            Self::Fixed { value } => {
                o.insert("type".into(), "Percentage".into());
                o.insert("value".into(), value.clone());
            }
            Self::LinearRamp {
                initial_value,
                final_value,
                ramp_duration,
                initial_time,
            } => {
                o.insert("type".into(), "LinearRampPercentage".into());
                o.insert("initial_value".into(), initial_value.clone());
                o.insert("final_value".into(), final_value.clone());
                o.insert("ramp_duration".into(), ramp_duration.clone());
                o.insert("initial_time".into(), Value::from(*initial_time));
            }
        }
        Value::from(o)
    }

    /// Reads the stored form as `PercentageFactory.create`.
    ///
    /// # Errors
    /// A message for an unknown or missing `type` or an unusable `initial_time`.
    pub fn from_value(v: &Value) -> Result<Self, String> {
        let o = v
            .as_object()
            .ok_or("a percentage must be an object with a \"type\"")?;
        match o.get("type") {
            Some(Value::Str(t)) if t == "Percentage" => Ok(Self::Fixed {
                value: o.get("value").cloned().unwrap_or(Value::Null),
            }),
            Some(Value::Str(t)) if t == "LinearRampPercentage" => Ok(Self::LinearRamp {
                initial_value: o.get("initial_value").cloned().unwrap_or(Value::Float(0.0)),
                final_value: o.get("final_value").cloned().unwrap_or(Value::Float(1.0)),
                ramp_duration: o.get("ramp_duration").cloned().unwrap_or(Value::from(3600)),
                initial_time: match o.get("initial_time") {
                    None | Some(Value::Null) => None,
                    Some(t) => Some(epoch_seconds(t)?),
                },
            }),
            Some(other) => Err(format!(
                "percentage type not supported: {} (expected \"Percentage\" or \"LinearRampPercentage\")",
                json::to_string(other)
            )),
            None => Err("percentage has no \"type\"".into()),
        }
    }
}

/// `int(datetime.fromtimestamp(t).timestamp())`: the stored instant truncated to whole seconds.
fn epoch_seconds(t: &Value) -> Result<i64, String> {
    let f = t
        .as_f64()
        .filter(|f| f.is_finite() && f.abs() < 1e14)
        .ok_or_else(|| {
            format!(
                "initial_time must be Unix seconds, not {}",
                json::to_string(t)
            )
        })?;
    // Python keeps microseconds (rounded half to even), then truncates toward zero.
    let micros = (f * 1e6).round_ties_even();
    Ok((micros / 1e6).trunc() as i64)
}

fn ramp_number(v: &Value, field: &str) -> Result<f64, TypeError> {
    v.as_f64().ok_or_else(|| TypeError {
        message: format!(
            "LinearRampPercentage {field} must be a number, not {}",
            v.type_name()
        )
        .into(),
    })
}

/// A percentage evaluated at an instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PercentageValue<'a> {
    /// The stored value, compared with Python's semantics.
    Stored(&'a Value),
    /// A ramp's value at the instant.
    Computed(f64),
}

impl PercentageValue<'_> {
    /// The value as a double, when it is a number.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Self::Stored(v) => v.as_f64(),
            Self::Computed(f) => Some(*f),
        }
    }

    /// Python's `percentage == 0`.
    #[inline]
    fn is_zero(&self) -> bool {
        match self {
            Self::Stored(Value::Float(f)) | Self::Computed(f) => *f == 0.0,
            Self::Stored(v) => pyops::eq(v, &Value::Float(0.0)),
        }
    }

    /// Python's `score <= percentage`.
    #[inline]
    fn includes(&self, score: f64) -> Result<bool, TypeError> {
        match self {
            Self::Stored(Value::Float(f)) | Self::Computed(f) => Ok(score <= *f),
            Self::Stored(v) => pyops::compare(v, CmpOp::Ge, &Value::Float(score)),
        }
    }
}

/// `bucket / 100.0` for each bucket, computed at compile time with the same IEEE division:
/// a load instead of a division on the path that waits for SHA-1. Indexed by any `u8`, so the
/// load needs no bounds check (buckets stop at 99).
const SCORES: [f64; 256] = {
    let mut scores = [0.0; 256];
    let mut bucket = 0;
    while bucket < 256 {
        scores[bucket] = bucket as f64 / 100.0;
        bucket += 1;
    }
    scores
};

/// Decides which share of callers a flag is on for.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Bucketer {
    /// Everyone (`NoOpBucketer`).
    #[default]
    NoOp,
    /// A random share (`PercentageBucketer`).
    Percentage {
        /// The share.
        percentage: Percentage,
    },
    /// A stable share by hashing the caller's checks (`ConsistentHashPercentageBucketer`).
    ConsistentHash {
        /// The share.
        percentage: Percentage,
        /// The check names hashed; empty hashes all of them. Duplicates are dropped.
        key_whitelist: Vec<String>,
    },
}

impl Bucketer {
    /// A random share.
    pub fn percentage(percentage: Percentage) -> Self {
        Self::Percentage { percentage }
    }

    /// A stable share keyed on the named checks (all checks when empty).
    ///
    /// ```
    /// use flipper_core::bucketing::{Bucketer, Percentage};
    /// let half_of_users = Bucketer::consistent_hash(Percentage::fixed(0.5), ["user_id"]);
    /// ```
    pub fn consistent_hash<S: Into<String>>(
        percentage: Percentage,
        key_whitelist: impl IntoIterator<Item = S>,
    ) -> Self {
        let mut keys: Vec<String> = Vec::new();
        for k in key_whitelist {
            let k = k.into();
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
        Self::ConsistentHash {
            percentage,
            key_whitelist: keys,
        }
    }

    /// flipper-client's type tag (`NoOpBucketer`, `PercentageBucketer`,
    /// `ConsistentHashPercentageBucketer`).
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::NoOp => "NoOpBucketer",
            Self::Percentage { .. } => "PercentageBucketer",
            Self::ConsistentHash { .. } => "ConsistentHashPercentageBucketer",
        }
    }

    /// Whether this is the no-op bucketer (then evaluation never consults it).
    pub fn is_noop(&self) -> bool {
        matches!(self, Self::NoOp)
    }

    /// `bucketer.check(**checks)`.
    ///
    /// # Errors
    /// Python's `TypeError` for a non-numeric percentage, or a `randomizer` check given to the
    /// random bucketer.
    #[inline]
    pub fn check<E: Env + ?Sized>(&self, checks: &Checks, env: &E) -> Result<bool, TypeError> {
        self.check_with(checks, env, |whitelist| {
            consistent_hash_bucket(checks, whitelist)
        })
    }

    /// [`Bucketer::check`], taking the consistent-hash bucket of `checks` for a key whitelist
    /// from `bucket` (which must answer [`consistent_hash_bucket`]`(checks, whitelist)`; it is
    /// called only when the answer depends on it).
    #[inline]
    pub(crate) fn check_with<'w, E: Env + ?Sized>(
        &'w self,
        checks: &Checks,
        env: &E,
        bucket: impl FnOnce(&'w [String]) -> u8,
    ) -> Result<bool, TypeError> {
        match self {
            Self::NoOp => Ok(true),
            Self::Percentage { percentage } => {
                let pct = percentage.value_now(env)?;
                if pct.is_zero() {
                    return Ok(false);
                }
                if let Some(r) = checks.get(RANDOMIZER) {
                    return Err(TypeError {
                        message: format!("'{}' object is not callable", r.type_name()).into(),
                    });
                }
                pct.includes(env.random())
            }
            Self::ConsistentHash {
                percentage,
                key_whitelist,
            } => {
                let pct = percentage.value_now(env)?;
                if pct.is_zero() {
                    return Ok(false);
                }
                let score = SCORES[usize::from(bucket(key_whitelist))];
                pct.includes(score)
            }
        }
    }

    /// For a consistent-hash bucketer with a fixed percentage, the buckets it lets in, bit `b`
    /// for bucket `b`: its answer for any checks is that bit of their
    /// [`consistent_hash_bucket`]. `None` for any other bucketer, and for a percentage whose
    /// comparison raises (Python's `TypeError`).
    ///
    /// ```
    /// use flipper_core::bucketing::{Bucketer, Percentage};
    /// let half = Bucketer::consistent_hash(Percentage::fixed(0.5), ["user_id"]);
    /// assert_eq!(half.buckets_let_in(), Some((1 << 51) - 1)); // 0.00 ..= 0.50
    /// ```
    pub fn buckets_let_in(&self) -> Option<u128> {
        let Self::ConsistentHash {
            percentage: Percentage::Fixed { .. },
            ..
        } = self
        else {
            return None;
        };
        // A fixed percentage reads neither the clock nor a random draw.
        let env = crate::eval::FixedEnv {
            now: 0.0,
            random: 0.0,
        };
        let mut buckets = 0;
        for bucket in 0..100 {
            if self.check_with(&Checks::new(), &env, |_| bucket).ok()? {
                buckets |= 1 << bucket;
            }
        }
        Some(buckets)
    }

    /// The stored form.
    pub fn to_value(&self) -> Value {
        let mut o = Object::new();
        o.insert("type".into(), self.type_name().into());
        match self {
            Self::NoOp => {}
            Self::Percentage { percentage } => {
                o.insert("percentage".into(), percentage.to_value());
            }
            Self::ConsistentHash {
                percentage,
                key_whitelist,
            } => {
                o.insert("percentage".into(), percentage.to_value());
                o.insert(
                    "key_whitelist".into(),
                    key_whitelist.iter().map(String::as_str).collect(),
                );
            }
        }
        Value::from(o)
    }

    /// Reads the stored form as `BucketerFactory.create`.
    ///
    /// # Errors
    /// A message naming the problem (unknown `type`, malformed percentage or whitelist).
    pub fn from_value(v: &Value) -> Result<Self, String> {
        let o = v
            .as_object()
            .ok_or("a bucketer must be an object with a \"type\"")?;
        let percentage = || -> Result<Percentage, String> {
            match o.get("percentage") {
                None | Some(Value::Null) => Ok(Percentage::default()),
                Some(p) => Percentage::from_value(p),
            }
        };
        match o.get("type").and_then(Value::as_str) {
            Some("NoOpBucketer") => Ok(Self::NoOp),
            Some("PercentageBucketer") => Ok(Self::Percentage {
                percentage: percentage()?,
            }),
            Some("ConsistentHashPercentageBucketer") => {
                let keys = match o.get("key_whitelist") {
                    None => Vec::new(),
                    Some(Value::List(items)) => items
                        .iter()
                        .map(|k| {
                            k.as_str().map(str::to_owned).ok_or_else(|| {
                                format!(
                                    "key_whitelist must hold check names (strings), not {}",
                                    json::to_string(k)
                                )
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()?,
                    Some(other) => {
                        return Err(format!(
                            "key_whitelist must be a list of check names, not {}",
                            json::to_string(other)
                        ));
                    }
                };
                Ok(Self::consistent_hash(percentage()?, keys))
            }
            _ => Err(match o.get("type") {
                Some(t) => format!(
                    "bucketer type not supported: {} (expected \"NoOpBucketer\", \"PercentageBucketer\" or \"ConsistentHashPercentageBucketer\")",
                    json::to_string(t)
                ),
                None => "bucketer has no \"type\"".into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::FixedEnv;

    fn env() -> FixedEnv {
        FixedEnv {
            now: 1_700_000_000.0,
            random: 0.5,
        }
    }

    #[test]
    fn scores_are_the_runtime_division_bit_for_bit() {
        for bucket in 0..=255u8 {
            let runtime = std::hint::black_box(f64::from(bucket)) / std::hint::black_box(100.0);
            assert_eq!(
                SCORES[usize::from(bucket)].to_bits(),
                runtime.to_bits(),
                "{bucket}"
            );
        }
    }

    #[test]
    fn zero_percentage_never_hashes_and_is_off() {
        let b = Bucketer::consistent_hash(Percentage::fixed(0.0), ["user_id"]);
        assert_eq!(b.check(&Checks::new(), &env()), Ok(false));
        let b = Bucketer::percentage(Percentage::Fixed {
            value: Value::from(0),
        });
        // Zero wins before the randomizer would be called.
        let c = Checks::new().with("randomizer", 1);
        assert_eq!(b.check(&c, &env()), Ok(false));
    }

    #[test]
    fn random_bucketer_is_inclusive_and_rejects_randomizer_values() {
        let b = Bucketer::percentage(Percentage::fixed(0.5));
        let at = |r| FixedEnv {
            now: 0.0,
            random: r,
        };
        assert_eq!(b.check(&Checks::new(), &at(0.4)), Ok(true));
        assert_eq!(b.check(&Checks::new(), &at(0.5)), Ok(true));
        assert_eq!(b.check(&Checks::new(), &at(0.6)), Ok(false));
        let err = b
            .check(&Checks::new().with("randomizer", 1), &at(0.1))
            .unwrap_err();
        assert_eq!(&*err.message, "'int' object is not callable");
    }

    #[test]
    fn missing_percentage_value_is_a_type_error() {
        let b = Bucketer::from_value(
            &crate::json::parse(
                r#"{"type": "PercentageBucketer", "percentage": {"type": "Percentage"}}"#,
            )
            .unwrap(),
        )
        .unwrap();
        assert!(b.check(&Checks::new(), &env()).is_err());
    }

    #[test]
    fn ramp_is_clamped_both_ways() {
        let up = Percentage::linear_ramp(0.2, 0.6, 60, 1000);
        assert_eq!(up.value_at(0.0).unwrap().as_f64(), Some(0.2));
        assert!((up.value_at(1030.0).unwrap().as_f64().unwrap() - 0.4).abs() < 1e-12);
        assert_eq!(up.value_at(5000.0).unwrap().as_f64(), Some(0.6));
        let down = Percentage::linear_ramp(1.0, 0.0, 100, 1000);
        assert_eq!(down.value_at(1010.0).unwrap().as_f64(), Some(0.9));
        assert_eq!(down.value_at(9000.0).unwrap().as_f64(), Some(0.0));
        assert_eq!(down.value_at(0.0).unwrap().as_f64(), Some(1.0));
    }

    #[test]
    fn bucketers_round_trip_their_stored_form() {
        for b in [
            Bucketer::NoOp,
            Bucketer::percentage(Percentage::linear_ramp(0.0, 1.0, 3600, 1_700_000_000)),
            Bucketer::consistent_hash(Percentage::fixed(0.5), ["user_id"]),
        ] {
            assert_eq!(Bucketer::from_value(&b.to_value()).unwrap(), b);
        }
        let err = Bucketer::from_value(&crate::json::parse(r#"{"type": "Nope"}"#).unwrap());
        assert!(err.unwrap_err().contains("not supported"));
    }
}
