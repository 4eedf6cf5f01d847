//! [`Snapshot`]: every flag in memory, for evaluation without I/O, and the log of its recent
//! changes, for the change stream.
//!
//! Readers take the current [`FlagSet`] (an `Arc`, lock-free) and evaluate against it; the
//! sync task (`sync.rs`) is the only writer. Each change that alters the set makes a new
//! `FlagSet` whose [`version`](FlagSet::version) is one more per flag changed, so a version
//! names one exact set of flags for the life of the process (ETags are built from it), and
//! the same writer appends each change, under the version it produced, to the change log
//! ([`Snapshot::changes_since`]). A reload is compared with the current set and logged as the
//! puts and deletes that turn one into the other.
//!
//! The API is small on purpose (`get`, `all`, `version`, `subscribe`, `changes_since`, and the
//! three writes): the library's live-flags component can later take its place.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use flipper::store::{Version, Versioned};
use flipper::{Bucketer, Item};
use flipper_core::bucketing::Percentage;
use tokio::sync::watch;

pub use crate::changelog::{ChangeKind, LoggedChange};
use crate::changelog::{ChangeLog, Edit};

/// How many changes the log keeps by default.
pub const DEFAULT_LOG_CAPACITY: usize = 10_000;

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

    fn insert(&mut self, item: Arc<Item>) {
        let ramp = is_ramp(&item);
        if let Some(old) = self.flags.insert(item.feature_name.clone(), item) {
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

/// The flags in memory, swapped whole on each change, and the log of the last changes.
#[derive(Debug)]
pub struct Snapshot {
    current: ArcSwap<FlagSet>,
    loaded: AtomicBool,
    /// Serializes writers (copy, change, log, swap) and holds the change log.
    log: Mutex<ChangeLog>,
    versions: watch::Sender<u64>,
    epoch: u64,
}

/// What a write did to the set.
enum Outcome {
    Unchanged,
    /// The first load: nothing before it can be resumed from.
    Loaded(FlagSet),
    Changed(FlagSet, Vec<Edit>),
}

impl Default for Snapshot {
    fn default() -> Self {
        Self::new()
    }
}

impl Snapshot {
    /// An empty snapshot, not loaded yet, logging the last [`DEFAULT_LOG_CAPACITY`] changes.
    pub fn new() -> Self {
        Self::with_log_capacity(DEFAULT_LOG_CAPACITY)
    }

    /// An empty snapshot, not loaded yet, logging the last `capacity` changes (at least one).
    pub fn with_log_capacity(capacity: usize) -> Self {
        Self {
            current: ArcSwap::from_pointee(FlagSet::default()),
            loaded: AtomicBool::new(false),
            log: Mutex::new(ChangeLog::new(capacity)),
            versions: watch::channel(0).0,
            epoch: crate::state::instance_id(),
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

    /// The version after each change (for waiting on a change, and for change streams). It is
    /// sent after the change is in the log.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.versions.subscribe()
    }

    /// A random number naming this snapshot's versions: versions of another snapshot (another
    /// process) mean nothing here.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// At most `max` logged changes after `version`, oldest first (empty when there is none
    /// yet); `None` when changes after `version` are no longer in the log, or `version` is not
    /// one this snapshot has had.
    pub fn changes_since(&self, version: u64, max: usize) -> Option<Vec<Arc<LoggedChange>>> {
        self.lock_log().since(version, max)
    }

    /// Replaces every flag (a load or reload). Each flag that differs from the current one is
    /// logged as a put, each flag that is gone as a delete, and the version moves on by one per
    /// change. The first load moves it on by one and starts the log.
    ///
    /// The puts' events have no store version (`"version": null`): prefer
    /// [`Snapshot::replace_versioned`].
    pub fn replace(&self, items: impl IntoIterator<Item = Item>) {
        self.replace_with(items.into_iter().map(|item| (item, None)));
    }

    /// [`Snapshot::replace`] with each flag's store version, for the change stream's events.
    pub fn replace_versioned(&self, flags: impl IntoIterator<Item = Versioned>) {
        self.replace_with(flags.into_iter().map(|f| (f.item, Some(f.version))));
    }

    fn replace_with(&self, flags: impl Iterator<Item = (Item, Option<Version>)>) {
        let first = !self.is_loaded();
        self.update(|set| {
            let mut next = FlagSet {
                version: set.version,
                ..FlagSet::default()
            };
            let mut edits = Vec::new();
            for (item, version) in flags {
                match set.get(&item.feature_name) {
                    // Unchanged flags keep their allocation.
                    Some(old) if **old == item => next.insert(Arc::clone(old)),
                    _ => {
                        let item = Arc::new(item);
                        edits.push(Edit::put(&item, version.as_ref()));
                        next.insert(item);
                    }
                }
            }
            for name in set.flags.keys() {
                if !next.flags.contains_key(name) {
                    edits.push(Edit::Delete(name.clone()));
                }
            }
            if first {
                Outcome::Loaded(next)
            } else if edits.is_empty() {
                Outcome::Unchanged
            } else {
                Outcome::Changed(next, edits)
            }
        });
        self.loaded.store(true, Ordering::Release);
    }

    /// Adds or replaces one flag; the version moves on if it changed. Its event has no store
    /// version: prefer [`Snapshot::put_versioned`].
    pub fn put(&self, item: Item) {
        self.put_with(item, None);
    }

    /// [`Snapshot::put`] with the flag's store version, for the change stream's event.
    pub fn put_versioned(&self, flag: Versioned) {
        self.put_with(flag.item, Some(flag.version));
    }

    fn put_with(&self, item: Item, version: Option<Version>) {
        self.update(|set| {
            if set.get(&item.feature_name).is_some_and(|old| **old == item) {
                return Outcome::Unchanged;
            }
            let mut next = set.clone();
            let item = Arc::new(item);
            let edit = Edit::put(&item, version.as_ref());
            next.insert(item);
            Outcome::Changed(next, vec![edit])
        });
    }

    /// Removes one flag; the version moves on if it was there.
    pub fn remove(&self, name: &str) {
        self.update(|set| {
            let mut next = set.clone();
            if next.remove(name) {
                Outcome::Changed(next, vec![Edit::Delete(name.to_owned())])
            } else {
                Outcome::Unchanged
            }
        });
    }

    fn lock_log(&self) -> std::sync::MutexGuard<'_, ChangeLog> {
        // A panic under this lock cannot leave a half-made set behind (the set is swapped in
        // whole, after the change), nor a gap in the log (a change is pushed whole).
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes the set `change` makes from the current one, with its changes logged.
    fn update(&self, change: impl FnOnce(&FlagSet) -> Outcome) {
        let mut log = self.lock_log();
        let current = self.current.load_full();
        let next = match change(&current) {
            Outcome::Unchanged => return,
            Outcome::Loaded(mut next) => {
                next.version = current.version + 1;
                log.reset(next.version);
                next
            }
            Outcome::Changed(mut next, edits) => {
                next.version = current.version;
                for edit in edits {
                    next.version += 1;
                    log.push(LoggedChange::new(next.version, edit));
                }
                next
            }
        };
        let version = next.version;
        self.current.store(Arc::new(next));
        drop(log);
        self.versions.send_replace(version);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flag(item: Item) -> Versioned {
        Versioned {
            item,
            version: Version::from_seq(7),
        }
    }

    fn logged(snapshot: &Snapshot, after: u64) -> Vec<String> {
        snapshot
            .changes_since(after, 100)
            .expect("in the log")
            .iter()
            .map(|c| format!("{} {} {}", c.version(), c.kind().event_name(), c.name()))
            .collect()
    }

    #[test]
    fn versions_move_only_on_real_changes() {
        let snapshot = Snapshot::new();
        assert!(!snapshot.is_loaded());
        assert_eq!(snapshot.version(), 0);
        snapshot.replace([]);
        assert!(snapshot.is_loaded());
        assert_eq!(snapshot.version(), 1);
        snapshot.put_versioned(flag(Item::new("a", true, 1)));
        assert_eq!(snapshot.version(), 2);
        snapshot.put_versioned(flag(Item::new("a", true, 1)));
        snapshot.remove("missing");
        snapshot.replace_versioned([flag(Item::new("a", true, 1))]);
        assert_eq!(snapshot.version(), 2);
        snapshot.replace_versioned([flag(Item::new("a", false, 1))]);
        assert_eq!(snapshot.version(), 3);
        assert_eq!(snapshot.get("a").unwrap().is_enabled, false.into());
        snapshot.remove("a");
        assert_eq!((snapshot.version(), snapshot.all().len()), (4, 0));
        assert_eq!(*snapshot.subscribe().borrow(), 4);
        assert_eq!(logged(&snapshot, 1), ["2 put a", "3 put a", "4 delete a"]);
    }

    #[test]
    fn reloads_are_logged_as_the_changes_between_the_sets() {
        let snapshot = Snapshot::with_log_capacity(3);
        snapshot.replace_versioned([
            flag(Item::new("keep", true, 1)),
            flag(Item::new("gone", true, 1)),
        ]);
        assert_eq!(snapshot.version(), 1);
        assert_eq!(logged(&snapshot, 1), Vec::<String>::new());
        snapshot.replace_versioned([
            flag(Item::new("keep", true, 1)),
            flag(Item::new("new", true, 1)),
            flag(Item::new("z", true, 1)),
        ]);
        assert_eq!(snapshot.version(), 4);
        assert_eq!(
            logged(&snapshot, 1),
            ["2 put new", "3 put z", "4 delete gone"]
        );
        let put = &snapshot.changes_since(1, 1).unwrap()[0];
        assert!(
            put.data()
                .starts_with(r#"{"name": "new", "version": "7", "item": {"#)
        );
        // One more change pushes the oldest out of a log of three.
        snapshot.remove("z");
        assert!(snapshot.changes_since(1, 100).is_none());
        assert_eq!(
            logged(&snapshot, 2),
            ["3 put z", "4 delete gone", "5 delete z"]
        );
        snapshot.put(Item::new("v", true, 1));
        let put = &snapshot.changes_since(5, 1).unwrap()[0];
        assert!(put.data().starts_with(r#"{"name": "v", "version": null, "#));
        assert!(snapshot.changes_since(7, 100).is_none());
    }

    #[test]
    fn ramps_make_the_set_time_dependent() {
        let snapshot = Snapshot::new();
        let mut ramp = Item::new("r", true, 1);
        ramp.meta.bucketer = Bucketer::percentage(Percentage::linear_ramp(0.0, 1.0, 60, 1));
        snapshot.replace_versioned([flag(ramp), flag(Item::new("plain", true, 1))]);
        assert!(snapshot.all().is_time_dependent());
        snapshot.put_versioned(flag(Item::new("r", true, 1)));
        assert!(!snapshot.all().is_time_dependent());
    }
}
