//! [`LiveFlag`]: one flag of live flags, bound by name.

use std::sync::Arc;

use flipper_core::eval::Evaluation;
use flipper_core::{Checks, Item};

use super::LiveFlags;
use super::set::FlagKey;

/// One flag of [`LiveFlags`], bound by name: for live flags what
/// [`FeatureFlag`](crate::FeatureFlag) is for a client (flipper-client's `client.get(name)`).
///
/// Its answers are those of the same calls on [`LiveFlags`] with its name, always from the
/// current flags. A hot path that checks one flag on every request keeps a handle: it finds
/// the flag by its place in the set, and looks the name up only when flags added or removed
/// before it moved it. Cheap to clone and to share between threads.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use flipper::{Checks, Reason};
/// use flipper::live::{LiveFlags, LiveOptions};
/// use flipper::store::{MemoryStore, StoreExt};
/// let store = Arc::new(MemoryStore::new());
/// store.create("new_dashboard", true, None).await?;
/// let live = LiveFlags::start(store, LiveOptions::default()).await;
/// let new_dashboard = live.flag("new_dashboard");
/// assert!(new_dashboard.is_enabled(&Checks::new().with("user_id", 7)));
/// let e = live.flag("missing").evaluate(&Checks::new(), true);
/// assert_eq!((e.enabled, e.reason), (true, Reason::FlagMissing));
/// # Ok::<(), flipper::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct LiveFlag {
    live: LiveFlags,
    key: FlagKey,
}

impl LiveFlags {
    /// A handle on the flag `name` (which need not exist yet): see [`LiveFlag`].
    pub fn flag(&self, name: &str) -> LiveFlag {
        LiveFlag {
            live: self.clone(),
            key: FlagKey::new(name),
        }
    }
}

impl LiveFlag {
    /// The flag's name.
    pub fn name(&self) -> &str {
        self.key.name()
    }

    /// The live flags it belongs to.
    pub fn live_flags(&self) -> &LiveFlags {
        &self.live
    }

    /// [`LiveFlags::is_enabled`] for this flag.
    #[inline]
    pub fn is_enabled(&self, checks: &Checks) -> bool {
        self.is_enabled_or(checks, false)
    }

    /// [`LiveFlags::is_enabled_or`] for this flag.
    // Out of line, taking its arguments in registers: the read (thread-local copy, lookup,
    // evaluation) inlined into the caller needs the caller to build its closure on the stack.
    #[inline(never)]
    pub fn is_enabled_or(&self, checks: &Checks, default: bool) -> bool {
        let env = &self.live.core.env;
        self.live
            .core
            .read(|set| set.is_enabled_key(&self.key, checks, default, env))
    }

    /// [`LiveFlags::evaluate`] for this flag.
    #[inline]
    pub fn evaluate(&self, checks: &Checks, default: bool) -> Evaluation {
        let env = &self.live.core.env;
        self.live
            .core
            .read(|set| set.evaluate_key(&self.key, checks, default, env))
    }

    /// The flag's definition, if it exists.
    pub fn get(&self) -> Option<Arc<Item>> {
        self.live
            .core
            .read(|set| set.get_by_key(&self.key).cloned())
    }
}

impl std::fmt::Debug for LiveFlag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveFlag")
            .field("name", &self.name())
            .finish_non_exhaustive()
    }
}
