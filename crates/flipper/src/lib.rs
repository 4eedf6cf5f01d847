//! Feature flags for Rust, compatible byte for byte and bucket for bucket with Carta's Python
//! [flipper-client](https://github.com/carta/flipper-client).
//!
//! A Rust service using this crate and a Python service using flipper-client can share one
//! store: both read and write the same bytes and give the same answer for the same user.
//!
//! * [`FeatureFlagClient`] and [`FeatureFlag`]: flipper-client's API (create, enable, conditions,
//!   bucketers, client data, ...), async.
//! * [`live`]: [`LiveFlags`](live::LiveFlags), every flag of a store in memory, kept current
//!   from the store's changes and evaluated synchronously in nanoseconds, with change
//!   listeners, offline start and outage tolerance: **the recommended way to evaluate**.
//! * [`store`]: the [`Store`](store::Store) trait, its stores and the URL syntax
//!   ([`store::open`]).
//! * [`events`]: the 16 pre/post events around every write.
//! * [`Guard`]: run code only when a flag is on (the decorator).
//! * The pure evaluation core is re-exported from [`flipper_core`]: [`Checks`], [`Condition`],
//!   [`Bucketer`], [`Percentage`], [`Item`], [`Value`].
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use flipper::{Bucketer, Checks, Condition, FeatureFlagClient, Percentage, store::MemoryStore};
//!
//! let client = FeatureFlagClient::new(MemoryStore::new());
//! let dashboard = client.create("new_dashboard", true, None).await?;
//! dashboard.add_condition(Condition::new().eq("is_admin", true)).await?;
//! dashboard
//!     .set_bucketer(Bucketer::consistent_hash(Percentage::fixed(0.5), ["user_id"]))
//!     .await?;
//!
//! // With checks and a condition, only the conditions decide (flipper-client's rule).
//! assert!(dashboard.is_enabled(&Checks::new().with("is_admin", true)).await);
//! assert!(!dashboard.is_enabled(&Checks::new().with("is_admin", false)).await);
//! # Ok::<(), flipper::Error>(())
//! # }).unwrap();
//! ```

pub mod client;
pub mod error;
pub mod events;
pub mod export;
pub mod flag;
pub mod guard;
pub mod live;
pub mod store;

pub use client::{FeatureFlagClient, SystemEnv};
pub use error::{Error, Result};
pub use flag::FeatureFlag;
pub use flipper_core::bucketing::{Bucketer, Percentage};
pub use flipper_core::condition::Condition;
pub use flipper_core::eval::{Evaluation, Reason};
pub use flipper_core::{Checks, Item, Meta, Object, Value};
pub use guard::Guard;
