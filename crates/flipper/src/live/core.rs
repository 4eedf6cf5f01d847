//! The state every part of live flags shares: the current set (read lock-free), and the one
//! writer that replaces it (loads, watched changes, this process's own writes), which feeds the
//! observer, the version channel, the listeners and the persister.
//!
//! **Own writes.** A write made through [`LiveFlags::client`](super::LiveFlags::client) is
//! applied at once, and the flag is *pinned* until the store's watch (or a load) reports that
//! very version: a watch event for an older write, still in flight when ours was applied, is
//! ignored instead of turning the flag back for a moment. A pin that is not confirmed within
//! the grace period is dropped and the flag read again from the store.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use arc_swap::ArcSwap;
use flipper_core::eval::Env;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use super::SetObserver;
use super::listeners::Listeners;
use super::set::{Edit, Entry, FlagSet, Op};
use super::status::{Source, SyncState};
use crate::store::{Change, Version};

/// What this process wrote to a flag and waits to see confirmed.
#[derive(Debug)]
struct Pin {
    expect: Expect,
    until: Instant,
}

#[derive(Debug, PartialEq)]
enum Expect {
    Put(Version),
    Delete,
}

/// How many watched changes the writer remembers (see [`Core::apply_own`]).
const SEEN: usize = 4096;

/// The writer's own state, behind the writer lock.
#[derive(Debug, Default)]
struct Writer {
    pins: HashMap<String, Pin>,
    /// How many watched changes were received.
    watched: u64,
    /// The last [`SEEN`] of them: number, flag, version (`None`: a delete).
    seen: VecDeque<(u64, String, Option<Version>)>,
}

impl Writer {
    fn saw(&mut self, name: &str, version: Option<&Version>) {
        self.watched += 1;
        if self.seen.len() == SEEN {
            self.seen.pop_front();
        }
        self.seen
            .push_back((self.watched, name.to_owned(), version.cloned()));
    }

    /// Whether the watch already delivered this process's write `op`, made after watched
    /// change number `mark`: the put of its very version, or (a delete has no version) a
    /// delete of the flag after `mark`.
    fn delivered(&self, op: &Op, mark: u64) -> bool {
        self.seen
            .iter()
            .rev()
            .take_while(|(n, ..)| *n > mark)
            .any(|(_, name, version)| {
                name == op.name()
                    && match op {
                        Op::Put(e) => version.is_some() && *version == e.version,
                        Op::Delete(_) => version.is_none(),
                    }
            })
    }
}

/// Stamps for the sets of every core, never given twice in a process (from 1): a stamp names
/// one core and one of its sets, for the per-thread read caches.
static STAMPS: AtomicU64 = AtomicU64::new(1);

fn next_stamp() -> u64 {
    STAMPS.fetch_add(1, Ordering::Relaxed)
}

/// A thread's copy of a core's current set, and the core's stamp when it was taken.
struct ReadSlot {
    stamp: u64,
    set: Arc<FlagSet>,
}

thread_local! {
    /// The set this thread read last. One slot: a thread that reads several live flags
    /// instances in turn takes a full load at each switch.
    static READER: RefCell<Option<ReadSlot>> = const { RefCell::new(None) };
}

pub(crate) struct Core {
    pub(crate) current: Arc<ArcSwap<FlagSet>>,
    /// A new stamp after each swap of `current` (written after it): a reader whose copy was
    /// taken at this stamp holds a set at least as new as the current one.
    stamp: AtomicU64,
    pub(crate) env: Arc<dyn Env + Send + Sync>,
    writer: Mutex<Writer>,
    observer: Option<Arc<dyn SetObserver>>,
    versions: watch::Sender<u64>,
    initialized: watch::Sender<bool>,
    pub(crate) listeners: Listeners,
    pub(crate) sync: Mutex<SyncState>,
    /// Woken after each change from the store (the persister waits on it).
    pub(crate) persist: Option<Arc<Notify>>,
    own_write_grace: Duration,
}

impl Core {
    pub(crate) fn new(
        env: Arc<dyn Env + Send + Sync>,
        observer: Option<Arc<dyn SetObserver>>,
        listeners: Listeners,
        persist: Option<Arc<Notify>>,
        own_write_grace: Duration,
    ) -> Self {
        Self {
            current: Arc::new(ArcSwap::from_pointee(FlagSet::empty())),
            stamp: AtomicU64::new(next_stamp()),
            env,
            writer: Mutex::new(Writer::default()),
            observer,
            versions: watch::channel(0).0,
            initialized: watch::channel(false).0,
            listeners,
            sync: Mutex::new(SyncState::default()),
            persist,
            own_write_grace,
        }
    }

    /// Runs `f` on the current set: the read path of every evaluation.
    ///
    /// The set comes from this thread's copy when the core's stamp has not changed since it
    /// was taken: one atomic load, no reference count touched. Otherwise (the first read on
    /// this thread, another core read last, a newer set) [`Core::read_fresh`] loads the set
    /// and keeps a copy. The slot is borrowed while `f` runs: an `f` that reads live flags
    /// again (an `Env` may) finds it busy and loads the set itself, so a copy in use is never
    /// replaced. A thread that is exiting loads the set directly.
    ///
    /// `f` (whose captures are references) is copied into the cold path rather than borrowed
    /// by it, so that the hot path does not build it on the stack.
    #[inline(always)]
    pub(crate) fn read<R>(&self, f: impl Fn(&FlagSet) -> R + Copy) -> R {
        let stamp = self.stamp.load(Ordering::Acquire);
        let copied = READER.try_with(|cell| {
            let slot = cell.try_borrow_mut().ok()?;
            let slot = slot.as_ref().filter(|slot| slot.stamp == stamp)?;
            Some(f(&slot.set))
        });
        match copied {
            Ok(Some(answer)) => answer,
            _ => self.read_fresh(f),
        }
    }

    /// [`Core::read`] from a fresh load, which this thread keeps when its slot is free.
    #[cold]
    #[inline(never)]
    fn read_fresh<R>(&self, f: impl Fn(&FlagSet) -> R) -> R {
        // The stamp before the set: the set is then at least as new as the stamp's.
        let stamp = self.stamp.load(Ordering::Acquire);
        let set = self.current.load_full();
        let _ = READER.try_with(|cell| {
            if let Ok(mut slot) = cell.try_borrow_mut() {
                // The set this thread held until now may be dropped here.
                *slot = Some(ReadSlot {
                    stamp,
                    set: Arc::clone(&set),
                });
            }
        });
        f(&set)
    }

    fn writer(&self) -> MutexGuard<'_, Writer> {
        // Every change under this lock is made whole before the set is swapped in: a panic
        // cannot leave half of one behind.
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn sync_state(&self) -> MutexGuard<'_, SyncState> {
        self.sync.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn subscribe_versions(&self) -> watch::Receiver<u64> {
        self.versions.subscribe()
    }

    pub(crate) fn subscribe_initialized(&self) -> watch::Receiver<bool> {
        self.initialized.subscribe()
    }

    /// Swaps in `next`, reached from `previous` by `edits`: tells the observer (before the
    /// swap, so that whatever it records is there when a reader sees the new version), then
    /// the listeners, then the version channel.
    fn publish(&self, previous: &FlagSet, next: FlagSet, edits: &[Edit]) {
        let first = !previous.is_initialized() && next.is_initialized();
        if let Some(observer) = &self.observer {
            if first {
                observer.initialized(&next);
            } else {
                observer.changed(edits, &next);
            }
        }
        let next = Arc::new(next);
        self.current.store(Arc::clone(&next));
        self.stamp.store(next_stamp(), Ordering::Release);
        self.listeners.dispatch(edits, &next);
        self.versions.send_replace(next.version());
        if first {
            self.initialized.send_replace(true);
        }
    }

    /// Replaces every flag with a load from `source`. Pinned flags keep this process's write
    /// unless the load shows it (then the pin is done) or the pin expired.
    ///
    /// A load from a file (bootstrap, persisted snapshot) is only used while nothing is
    /// loaded; it returns whether it was.
    pub(crate) fn load(&self, entries: Vec<Entry>, source: Source) -> bool {
        let mut writer = self.writer();
        let current = self.current.load_full();
        if source != Source::Store && current.is_initialized() {
            return false;
        }
        let mut loaded = FlagSet::from_entries(0, entries);
        if !writer.pins.is_empty() {
            let now = Instant::now();
            let mut keep: Vec<Op> = Vec::new();
            writer.pins.retain(|name, pin| {
                let seen = match &pin.expect {
                    Expect::Put(version) => loaded.store_version(name) == Some(version),
                    Expect::Delete => loaded.get(name).is_none(),
                };
                if seen || pin.until <= now {
                    return false;
                }
                keep.push(match current.entry(name) {
                    Some(e) => Op::Put(e.clone()),
                    None => Op::Delete(name.clone()),
                });
                true
            });
            if let Some((with_pins, _)) = loaded.apply(keep) {
                loaded = with_pins;
            }
        }
        let (next, edits) = current.replace(loaded);
        let changed = !edits.is_empty() || !current.is_initialized();
        self.sync_state().source = Some(source.clone());
        if changed {
            self.publish(&current, next, &edits);
            if source == Source::Store {
                self.wake_persister();
            }
        }
        true
    }

    /// Applies changes from the store's watch (puts and deletes; a resync is the caller's).
    /// A change to a pinned flag is ignored unless it is the pinned write itself.
    pub(crate) fn apply_watched(&self, changes: Vec<Change>) {
        let mut writer = self.writer();
        let now = Instant::now();
        let mut ops = Vec::with_capacity(changes.len());
        for change in changes {
            let op = match change {
                Change::Put { item, version } => Op::Put(Entry::new(item, Some(version))),
                Change::Delete { name } => Op::Delete(name),
                _ => continue,
            };
            match &op {
                Op::Put(e) => writer.saw(op.name(), e.version.as_ref()),
                Op::Delete(name) => writer.saw(name, None),
            }
            if let Some(pin) = writer.pins.get(op.name()) {
                let confirms = match (&op, &pin.expect) {
                    (Op::Put(e), Expect::Put(v)) => e.version.as_ref() == Some(v),
                    (Op::Delete(_), Expect::Delete) => true,
                    _ => false,
                };
                if confirms || pin.until <= now {
                    writer.pins.remove(op.name());
                } else {
                    tracing::debug!(
                        flag = op.name(),
                        "ignoring a watched change older than this process's own write"
                    );
                    continue;
                }
            }
            ops.push(op);
        }
        self.apply_ops(&writer, ops);
        drop(writer);
        if self.current.load().is_initialized() {
            self.sync_state().synced();
            self.wake_persister();
        }
    }

    /// The number of the last watched change: taken before a write of this process, for
    /// [`Core::apply_own`].
    pub(crate) fn watch_mark(&self) -> u64 {
        self.writer().watched
    }

    /// Applies a write this process made (through the store wrapper), begun when the watch was
    /// at `mark`, and pins the flag. A write the watch already delivered is left alone: the
    /// set has it, or something newer.
    pub(crate) fn apply_own(&self, ops: Vec<Op>, mark: u64) {
        let mut writer = self.writer();
        if !self.current.load().is_initialized() {
            // The load to come reads it.
            return;
        }
        let ops: Vec<Op> = ops
            .into_iter()
            .filter(|op| !writer.delivered(op, mark))
            .collect();
        let until = Instant::now() + self.own_write_grace;
        for op in &ops {
            let expect = match op {
                Op::Put(e) => match &e.version {
                    Some(v) => Expect::Put(v.clone()),
                    None => continue,
                },
                Op::Delete(_) => Expect::Delete,
            };
            writer
                .pins
                .insert(op.name().to_owned(), Pin { expect, until });
        }
        self.apply_ops(&writer, ops);
    }

    /// Applies a fresh read of one flag (after its pin expired), unpinned.
    pub(crate) fn apply_read(&self, name: &str, entry: Option<Entry>) {
        let writer = self.writer();
        if writer.pins.contains_key(name) {
            // Written again meanwhile: that write is newer than this read.
            return;
        }
        let op = entry.map_or_else(|| Op::Delete(name.to_owned()), Op::Put);
        self.apply_ops(&writer, vec![op]);
    }

    /// Before the first load, there is nothing to apply a single change to.
    fn apply_ops(&self, _writer: &MutexGuard<'_, Writer>, ops: Vec<Op>) {
        let current = self.current.load_full();
        if !current.is_initialized() || ops.is_empty() {
            return;
        }
        if let Some((next, edits)) = current.apply(ops) {
            self.publish(&current, next, &edits);
        }
    }

    /// Drops the pins older than their grace period and returns their flags (to read again).
    pub(crate) fn expire_pins(&self) -> Vec<String> {
        let mut writer = self.writer();
        if writer.pins.is_empty() {
            return Vec::new();
        }
        let now = Instant::now();
        let mut expired = Vec::new();
        writer.pins.retain(|name, pin| {
            let keep = pin.until > now;
            if !keep {
                expired.push(name.clone());
            }
            keep
        });
        expired
    }

    fn wake_persister(&self) {
        if let Some(persist) = &self.persist {
            persist.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use flipper_core::bucketing::{Bucketer, Percentage};
    use flipper_core::eval::FixedEnv;
    use flipper_core::{Checks, Item};

    use super::*;

    const FIXED: FixedEnv = FixedEnv {
        now: 0.0,
        random: 0.0,
    };

    /// An environment whose random draw is 0 when flag `b` of other live flags is on, and
    /// 0.999 when it is off: evaluating through it reads those flags inside a read.
    struct ReadsOther(Arc<Core>);

    impl Env for ReadsOther {
        fn now(&self) -> f64 {
            0.0
        }
        fn random(&self) -> f64 {
            let b_on = self
                .0
                .read(|set| set.is_enabled_or("b", &Checks::new(), false, &FIXED));
            if b_on { 0.0 } else { 0.999 }
        }
    }

    fn core(env: Arc<dyn Env + Send + Sync>) -> Arc<Core> {
        Arc::new(Core::new(
            env,
            None,
            Listeners::new(None, 16),
            None,
            Duration::from_secs(1),
        ))
    }

    fn entry(name: &str, on: bool) -> Entry {
        Entry::new(Item::new(name, on, 1), None)
    }

    fn is_on(core: &Core, name: &str) -> bool {
        core.read(|set| set.is_enabled_or(name, &Checks::new(), false, &core.env))
    }

    #[test]
    fn reads_nest_switch_cores_and_follow_every_swap() {
        let b = core(Arc::new(FIXED));
        let a = core(Arc::new(ReadsOther(Arc::clone(&b))));
        let mut half = Item::new("half", true, 1);
        half.meta.bucketer = Bucketer::percentage(Percentage::fixed(0.5));
        a.load(
            vec![Entry::new(half, None), entry("only_a", true)],
            Source::Store,
        );
        assert!(!is_on(&a, "half"), "before b is loaded, b reads as off");
        b.load(vec![entry("b", true)], Source::Store);
        for round in 0..3 {
            // Reading `half` reads `b` from inside the read of `a`: the nested read must
            // neither replace nor lose the copy the outer one is using.
            assert!(is_on(&a, "half"), "round {round}");
            assert!(is_on(&a, "only_a"), "round {round}");
            assert!(!is_on(&b, "only_a"), "round {round}: b has no such flag");
            assert!(is_on(&b, "b"), "round {round}");
        }
        // A swap is seen by the very next read, nested or not.
        b.load(vec![entry("b", false)], Source::Store);
        assert!(!is_on(&b, "b"));
        assert!(!is_on(&a, "half"));
        b.load(vec![entry("b", true)], Source::Store);
        assert!(is_on(&a, "half"));
        a.load(vec![entry("only_a", false)], Source::Store);
        assert!(!is_on(&a, "only_a"));
        assert!(
            !is_on(&a, "half"),
            "half is gone, and missing reads as the default"
        );
        // Another thread starts with an empty slot and reads the same.
        let a2 = Arc::clone(&a);
        let on = std::thread::spawn(move || is_on(&a2, "only_a"))
            .join()
            .unwrap();
        assert!(!on);
    }
}
