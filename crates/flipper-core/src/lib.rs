//! The pure, synchronous core of flipper.
//!
//! Everything needed to read, write and evaluate a flag exactly as Carta's Python
//! `flipper-client` 1.3.2 does, with no I/O, no clock and no global randomness:
//!
//! * [`Value`] and [`json`]: Python's JSON data model and a codec whose output is byte-identical
//!   to `json.dumps` (what every flipper-client store persists);
//! * [`pyops`]: Python's `==`, `<`, `in` over those values;
//! * [`condition`]: conditions and their kwargs-style keys (`age__gte`);
//! * [`bucketing`]: the NoOp, Percentage and ConsistentHashPercentage bucketers and the
//!   Percentage / LinearRampPercentage values;
//! * [`item`]: the stored flag (`FeatureFlagStoreItem` / `FeatureFlagStoreMeta`);
//! * [`eval`]: the evaluation algorithm, returning a [`eval::Evaluation`] with a reason.
//!
//! Time and randomness are inputs ([`eval::Env`]). Evaluation never panics: where Python raises
//! `TypeError`, the result is disabled with [`eval::Reason::Error`].
#![warn(missing_docs)]

pub mod bucketing;
mod checks;
pub mod condition;
pub mod eval;
pub mod item;
pub mod json;
pub mod pyops;
pub mod value;

pub use checks::{Checks, Iter as ChecksIter};
pub use item::{Item, ItemError, Meta};
pub use value::{Int, Object, Value};
