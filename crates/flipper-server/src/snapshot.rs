//! [`Snapshot`]: every flag in memory, for evaluation without I/O.
//!
//! Readers take the current [`FlagSet`] (an `Arc`, lock-free) and evaluate against it; the
//! sync task (`sync.rs`) is the only writer. Each change that alters the set makes a new
//! `FlagSet` with the next [`version`](FlagSet::version), so a version names one exact set of
//! flags for the life of the process (ETags are built from it).
//!
//! The API is small on purpose (`get`, `all`, `version`, `subscribe`, and the three writes):
//! the library's live-flags component can later take its place.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use flipper::{Bucketer, Item};
use flipper_core::bucketing::Percentage;
use tokio::sync::watch;

/// One immutable set of flags, by name, with its version.
#[derive(Debug, Clone, Default)]
pub struct FlagSet {
    version: u64,
    flags: BTreeMap<String, Arc<Item>>,
    ramps: usize,
}

impl FlagSet {
    /// The version: 0 before the first load, then one more for each change.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// A flag by name.
    pub fn get(&self, name: &str) -> Option<&Arc<Item>> {
        self.flags.get(name)
    }

    /// The flags in name order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &Arc<Item>)> {
        self.flags.iter().map(|(name, item)| (name.as_str(), item))
    }

    /// How many flags.
    pub fn len(&self) -> usize {
        self.flags.len()
    }

    /// Whether there is no flag.
    pub fn is_empty(&self) -> bool {
        self.flags.is_empty()
    }

    /// Whether some answer depends on the clock (a linear-ramp percentage), so that the same
    /// version and context may evaluate differently later.
    pub fn is_time_dependent(&self) -> bool {
        self.ramps > 0
    }

    fn insert(&mut self, item: Item) {
        let ramp = is_ramp(&item);
        if let Some(old) = self.flags.insert(item.feature_name.clone(), Arc::new(item)) {
            self.ramps -= usize::from(is_ramp(&old));
        }
        self.ramps += usize::from(ramp);
    }

    fn remove(&mut self, name: &str) -> bool {
        match self.flags.remove(name) {
            Some(old) => {
                self.ramps -= usize::from(is_ramp(&old));
                true
            }
            None => false,
        }
    }
}

fn is_ramp(item: &Item) -> bool {
    match &item.meta.bucketer {
        Bucketer::NoOp => false,
        Bucketer::Percentage { percentage } | Bucketer::ConsistentHash { percentage, .. } => {
            matches!(percentage, Percentage::LinearRamp { .. })
        }
    }
}

/// The flags in memory, swapped whole on each change.
#[derive(Debug)]
pub struct Snapshot {
    current: ArcSwap<FlagSet>,
    loaded: AtomicBool,
    /// Serializes writers (copy, change, swap).
    write: Mutex<()>,
    versions: watch::Sender<u64>,
}

impl Default for Snapshot {
    fn default() -> Self {
        Self::new()
    }
}

impl Snapshot {
    /// An empty snapshot, not loaded yet.
    pub fn new() -> Self {
        Self {
            current: ArcSwap::from_pointee(FlagSet::default()),
            loaded: AtomicBool::new(false),
            write: Mutex::new(()),
            versions: watch::channel(0).0,
        }
    }

    /// A flag by name.
    pub fn get(&self, name: &str) -> Option<Arc<Item>> {
        self.current.load().get(name).cloned()
    }

    /// The current set: one consistent view (its flags and version belong together).
    pub fn all(&self) -> Arc<FlagSet> {
        self.current.load_full()
    }

    /// The current version (see [`FlagSet::version`]).
    pub fn version(&self) -> u64 {
        self.current.load().version
    }

    /// Whether the flags were loaded from the store at least once.
    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// The version after each change (for waiting on a change, and for change streams).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.versions.subscribe()
    }

    /// Replaces every flag (a load or reload). The version moves on at the first load and when
    /// the flags differ from the current ones.
    pub fn replace(&self, items: impl IntoIterator<Item = Item>) {
        let mut next = FlagSet::default();
        for item in items {
            next.insert(item);
        }
        let first = !self.is_loaded();
        self.update(|set| {
            let same = !first
                && set.flags.len() == next.flags.len()
                && set.flags.iter().zip(&next.flags).all(|(a, b)| a == b);
            if same {
                return false;
            }
            next.version = set.version;
            *set = next;
            true
        });
        self.loaded.store(true, Ordering::Release);
    }

    /// Adds or replaces one flag; the version moves on if it changed.
    pub fn put(&self, item: Item) {
        self.update(|set| {
            if set.get(&item.feature_name).is_some_and(|old| **old == item) {
                return false;
            }
            set.insert(item);
            true
        });
    }

    /// Removes one flag; the version moves on if it was there.
    pub fn remove(&self, name: &str) {
        self.update(|set| set.remove(name));
    }

    /// Applies `change` to a copy of the current set and publishes it if `change` says it
    /// changed something.
    fn update(&self, change: impl FnOnce(&mut FlagSet) -> bool) {
        // A panic under this lock cannot leave a half-made set behind: the set is swapped in
        // whole, after the change.
        let _writer = self.write.lock().unwrap_or_else(|e| e.into_inner());
        let mut next = FlagSet::clone(&self.current.load());
        if !change(&mut next) {
            return;
        }
        next.version += 1;
        let version = next.version;
        self.current.store(Arc::new(next));
        self.versions.send_replace(version);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_move_only_on_real_changes() {
        let snapshot = Snapshot::new();
        assert!(!snapshot.is_loaded());
        assert_eq!(snapshot.version(), 0);
        snapshot.replace([]);
        assert!(snapshot.is_loaded());
        assert_eq!(snapshot.version(), 1);
        snapshot.put(Item::new("a", true, 1));
        assert_eq!(snapshot.version(), 2);
        snapshot.put(Item::new("a", true, 1));
        snapshot.remove("missing");
        snapshot.replace([Item::new("a", true, 1)]);
        assert_eq!(snapshot.version(), 2);
        snapshot.replace([Item::new("a", false, 1)]);
        assert_eq!(snapshot.version(), 3);
        assert_eq!(snapshot.get("a").unwrap().is_enabled, false.into());
        snapshot.remove("a");
        assert_eq!((snapshot.version(), snapshot.all().len()), (4, 0));
        assert_eq!(*snapshot.subscribe().borrow(), 4);
    }

    #[test]
    fn ramps_make_the_set_time_dependent() {
        let snapshot = Snapshot::new();
        let mut ramp = Item::new("r", true, 1);
        ramp.meta.bucketer = Bucketer::percentage(Percentage::linear_ramp(0.0, 1.0, 60, 1));
        snapshot.replace([ramp, Item::new("plain", true, 1)]);
        assert!(snapshot.all().is_time_dependent());
        snapshot.put(Item::new("r", true, 1));
        assert!(!snapshot.all().is_time_dependent());
    }
}
