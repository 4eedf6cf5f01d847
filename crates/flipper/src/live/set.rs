//! [`FlagSet`]: one immutable set of flags, looked up by name through a hash table and listed
//! in name order; and [`Edit`], one change from one set to the next.
//!
//! A set is never changed in place: the writer builds the next set and swaps it in whole, so a
//! reader holding a set sees one consistent version of every flag.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use flipper_core::bucketing::{Bucketer, Percentage};
use flipper_core::eval::{ContextEvaluator, Env, Evaluation, Prepared, Reason, evaluate};
use flipper_core::{Checks, Item};

use super::index::{NameIndex, NameTag, TAG_EXACT, hash_name, hash_short};
use crate::store::Version;

/// One flag of a set: the stored flag and its store version (unknown for flags read from a
/// file).
#[derive(Clone)]
pub(crate) struct Entry {
    // The name's tag, its fields inline.
    head: u64,
    tail: u64,
    len: u32,
    /// The flag prepared for evaluating its answer: the answer itself when it depends on
    /// nothing ([`Prepared::constant`]).
    prepared: Prepared,
    pub(crate) item: Arc<Item>,
    pub(crate) version: Option<Version>,
}

impl Entry {
    pub(crate) fn new(item: Item, version: Option<Version>) -> Self {
        Self::shared(Arc::new(item), version)
    }

    pub(crate) fn shared(item: Arc<Item>, version: Option<Version>) -> Self {
        let tag = NameTag::of(&item.feature_name);
        Self {
            head: tag.head,
            tail: tag.tail,
            len: tag.len,
            prepared: Prepared::new(&item),
            item,
            version,
        }
    }

    /// The answer of a flag that depends on neither the checks nor the clock, if it is one.
    #[inline]
    fn constant(&self) -> Option<Evaluation> {
        self.prepared.constant().map(|enabled| Evaluation {
            enabled,
            reason: if enabled {
                Reason::Enabled
            } else {
                Reason::Disabled
            },
        })
    }

    #[inline]
    fn evaluate<E: Env + ?Sized>(&self, checks: &Checks, env: &E) -> Evaluation {
        self.constant()
            .unwrap_or_else(|| evaluate(&self.item, checks, env))
    }

    /// [`Entry::evaluate`] within the evaluation of a whole context.
    #[inline]
    fn evaluate_in<'s, E: Env + ?Sized>(
        &'s self,
        context: &mut ContextEvaluator<'s, E>,
    ) -> Evaluation {
        self.constant()
            .unwrap_or_else(|| context.evaluate(&self.item))
    }

    /// Inlined into the read: one function per read, whose stack frame a static flag's check
    /// shares (a second call for the evaluation cost more than the larger frame). The
    /// constant answer is tested first, as one comparison before the shapes' jump table.
    #[inline(always)]
    fn is_enabled<E: Env + ?Sized>(&self, checks: &Checks, env: &E) -> bool {
        match self.prepared.constant() {
            Some(answer) => answer,
            None => self.prepared.is_enabled(&self.item, checks, env),
        }
    }

    fn name(&self) -> &str {
        &self.item.feature_name
    }

    /// The name's tag, from the fields it is held in.
    #[inline]
    fn tag(&self) -> NameTag {
        NameTag {
            head: self.head,
            tail: self.tail,
            len: self.len,
        }
    }

    /// The name's hash in the index.
    fn hash(&self) -> u64 {
        hash_name(self.name(), self.tag())
    }

    /// Whether this is the flag named `name`, whose tag is `tag`.
    #[inline(always)]
    fn has_name(&self, name: &str, tag: NameTag) -> bool {
        self.tag() == tag && (name.len() <= TAG_EXACT || self.name() == name)
    }
}

/// A flag name and where it was last found: what a [`LiveFlag`](super::LiveFlag) looks its
/// flag up by. Finding it costs a few comparisons while the flag stays at its place; another
/// place (flags added or removed before it) costs one lookup by name, and is remembered.
pub(crate) struct FlagKey {
    name: Box<str>,
    tag: NameTag,
    /// The flag's position in the last set it was found in (`u32::MAX`: not found yet). A
    /// hint only: every use checks the name of the entry there.
    hint: AtomicU32,
}

impl FlagKey {
    pub(crate) fn new(name: &str) -> Self {
        Self {
            tag: NameTag::of(name),
            name: name.into(),
            hint: AtomicU32::new(u32::MAX),
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }
}

impl Clone for FlagKey {
    fn clone(&self) -> Self {
        Self {
            name: self.name.clone(),
            tag: self.tag,
            hint: AtomicU32::new(self.hint.load(Ordering::Relaxed)),
        }
    }
}

/// Whether a flag found (or not) is on for these checks; `default` when it is missing.
#[inline(always)]
fn is_enabled_found<E: Env + ?Sized>(
    entry: Option<&Entry>,
    checks: &Checks,
    default: bool,
    env: &E,
) -> bool {
    match entry {
        Some(entry) => entry.is_enabled(checks, env),
        None => default,
    }
}

/// One change between two sets, as the [observer](super::SetObserver) sees it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Edit {
    /// A flag was added or its definition changed.
    Put {
        /// The flag as it is now.
        item: Arc<Item>,
        /// Its store version, when known (flags read from a file have none).
        version: Option<Version>,
    },
    /// A flag was removed.
    Delete {
        /// The flag.
        name: String,
    },
}

impl Edit {
    /// The flag this edit is about.
    pub fn name(&self) -> &str {
        match self {
            Self::Put { item, .. } => &item.feature_name,
            Self::Delete { name } => name,
        }
    }
}

/// One consistent set of flags with its version: what live flags evaluate against.
///
/// Lookup by name is one hash-table probe (a name of up to 16 bytes is hashed from the first
/// and last bytes and the length that its entry holds; a longer one whole, by foldhash);
/// iteration is in name order (code-point order, as the stores list). Get the current set with
/// [`LiveFlags::snapshot`](super::LiveFlags::snapshot).
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use flipper::live::{LiveFlags, LiveOptions};
/// use flipper::store::{MemoryStore, Store, StoreExt};
/// use std::sync::Arc;
/// let store = Arc::new(MemoryStore::new());
/// store.create("b", true, None).await?;
/// store.create("a", false, None).await?;
/// let live = LiveFlags::start(store, LiveOptions::default()).await;
/// let snapshot = live.snapshot();
/// let names: Vec<&str> = snapshot.flags().iter().map(|(name, _)| name).collect();
/// assert_eq!(names, ["a", "b"]);
/// assert_eq!(snapshot.flags().version(), 1);
/// # Ok::<(), flipper::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone, Default)]
pub struct FlagSet {
    version: u64,
    initialized: bool,
    /// Sorted by name, no two with one name.
    entries: Vec<Entry>,
    /// Positions in `entries`, by name.
    index: NameIndex,
    /// How many flags ramp over time (a linear-ramp percentage).
    ramps: usize,
}

impl FlagSet {
    /// An empty set with version 0, not initialised.
    pub(crate) fn empty() -> Self {
        Self::default()
    }

    /// A set of `entries` (any order; of two with one name the last wins).
    pub(crate) fn from_entries(version: u64, mut entries: Vec<Entry>) -> Self {
        // Of equal names the last given comes first (by reverse position), and `dedup` keeps
        // the first of a run.
        let mut keyed: Vec<(usize, Entry)> = entries.drain(..).enumerate().collect();
        keyed.sort_by(|(i, a), (j, b)| a.name().cmp(b.name()).then(j.cmp(i)));
        keyed.dedup_by(|(_, next), (_, kept)| next.name() == kept.name());
        let entries: Vec<Entry> = keyed.into_iter().map(|(_, e)| e).collect();
        Self::from_sorted(version, true, entries)
    }

    fn from_sorted(version: u64, initialized: bool, mut entries: Vec<Entry>) -> Self {
        entries.shrink_to_fit();
        let index = NameIndex::new(entries.iter().map(Entry::hash));
        let ramps = entries.iter().filter(|e| is_ramp(&e.item)).count();
        Self {
            version,
            initialized,
            entries,
            index,
            ramps,
        }
    }

    /// The version: 0 before the first load, then one more for each flag changed.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Whether this set was loaded (from the store, a bootstrap file or a persisted snapshot).
    /// Before that, evaluations give the caller's default with [`Reason::NotInitialized`].
    pub fn is_initialized(&self) -> bool {
        self.initialized
    }

    /// The flag `name` (whose tag is `tag`) and its position in `entries`. A name of up to
    /// [`TAG_EXACT`] bytes is hashed from its tag, inline; a longer one out of line.
    #[inline(always)]
    fn find(&self, name: &str, tag: NameTag) -> Option<(usize, &Entry)> {
        if name.len() > TAG_EXACT {
            return self.find_long(name, tag);
        }
        self.find_hashed(hash_short(tag), name, tag)
    }

    #[inline(never)]
    fn find_long(&self, name: &str, tag: NameTag) -> Option<(usize, &Entry)> {
        self.find_hashed(hash_name(name, tag), name, tag)
    }

    #[inline(always)]
    fn find_hashed(&self, hash: u64, name: &str, tag: NameTag) -> Option<(usize, &Entry)> {
        let entries = &self.entries;
        self.index.find(hash, |p| {
            entries
                .get(p)
                .filter(|e| e.has_name(name, tag))
                .map(|e| (p, e))
        })
    }

    #[inline(always)]
    pub(crate) fn entry(&self, name: &str) -> Option<&Entry> {
        self.find(name, NameTag::of(name)).map(|(_, e)| e)
    }

    /// [`FlagSet::entry`] by a key: at the key's remembered place if the flag is still there.
    #[inline(always)]
    fn entry_by_key(&self, key: &FlagKey) -> Option<&Entry> {
        let hint = key.hint.load(Ordering::Relaxed) as usize;
        match self.entries.get(hint) {
            Some(entry) if entry.has_name(&key.name, key.tag) => Some(entry),
            _ => self.entry_by_key_moved(key),
        }
    }

    /// [`FlagSet::entry_by_key`] when the flag is not at the key's place: found by name, and
    /// its place remembered.
    #[cold]
    #[inline(never)]
    fn entry_by_key_moved(&self, key: &FlagKey) -> Option<&Entry> {
        let (position, entry) = self.find(&key.name, key.tag)?;
        // The index holds positions below `u32::MAX` only.
        key.hint.store(
            u32::try_from(position).unwrap_or(u32::MAX),
            Ordering::Relaxed,
        );
        Some(entry)
    }

    /// A flag by name.
    #[inline]
    pub fn get(&self, name: &str) -> Option<&Arc<Item>> {
        self.entry(name).map(|e| &e.item)
    }

    /// A flag's store version, when known.
    pub fn store_version(&self, name: &str) -> Option<&Version> {
        self.entry(name)?.version.as_ref()
    }

    /// The flags in name order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &Arc<Item>)> + '_ {
        self.entries.iter().map(|e| (e.name(), &e.item))
    }

    /// How many flags.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is no flag.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether some answer depends on the clock (a linear-ramp percentage), so that the same
    /// version and context may evaluate differently later.
    pub fn is_time_dependent(&self) -> bool {
        self.ramps > 0
    }

    /// Evaluates a flag: the caller's `default` with [`Reason::NotInitialized`] before the
    /// first load, with [`Reason::FlagMissing`] for a flag that does not exist.
    #[inline]
    pub fn evaluate<E: Env + ?Sized>(
        &self,
        name: &str,
        checks: &Checks,
        default: bool,
        env: &E,
    ) -> Evaluation {
        self.evaluate_found(self.entry(name), checks, default, env)
    }

    /// [`FlagSet::evaluate`] of the flag of `key`.
    #[inline]
    pub(crate) fn evaluate_key<E: Env + ?Sized>(
        &self,
        key: &FlagKey,
        checks: &Checks,
        default: bool,
        env: &E,
    ) -> Evaluation {
        self.evaluate_found(self.entry_by_key(key), checks, default, env)
    }

    #[inline]
    fn evaluate_found<E: Env + ?Sized>(
        &self,
        entry: Option<&Entry>,
        checks: &Checks,
        default: bool,
        env: &E,
    ) -> Evaluation {
        match entry {
            Some(entry) => entry.evaluate(checks, env),
            None => Evaluation {
                enabled: default,
                reason: if self.initialized {
                    Reason::FlagMissing
                } else {
                    Reason::NotInitialized
                },
            },
        }
    }

    /// Whether a flag is on for these checks: `default` when it is missing (or before the
    /// first load), `false` when evaluation hits an error.
    #[inline]
    pub fn is_enabled_or<E: Env + ?Sized>(
        &self,
        name: &str,
        checks: &Checks,
        default: bool,
        env: &E,
    ) -> bool {
        is_enabled_found(self.entry(name), checks, default, env)
    }

    /// [`FlagSet::is_enabled_or`] of the flag of `key`.
    #[inline]
    pub(crate) fn is_enabled_key<E: Env + ?Sized>(
        &self,
        key: &FlagKey,
        checks: &Checks,
        default: bool,
        env: &E,
    ) -> bool {
        is_enabled_found(self.entry_by_key(key), checks, default, env)
    }

    /// The flag of `key`.
    pub(crate) fn get_by_key(&self, key: &FlagKey) -> Option<&Arc<Item>> {
        self.entry_by_key(key).map(|e| &e.item)
    }

    /// Every flag evaluated for `checks`, in name order. Each answer is
    /// [`FlagSet::evaluate`]'s; the checks are hashed once per distinct consistent-hash key
    /// whitelist, not once per flag ([`ContextEvaluator`]).
    pub fn evaluate_all<'s, E: Env + ?Sized>(
        &'s self,
        checks: &'s Checks,
        env: &'s E,
    ) -> impl ExactSizeIterator<Item = (&'s str, Evaluation)> + 's {
        let mut context = ContextEvaluator::new(checks, env);
        self.entries
            .iter()
            .map(move |e| (e.name(), e.evaluate_in(&mut context)))
    }

    /// The set after `ops` (puts and deletes, in order), with the edits that changed something;
    /// `None` when nothing changed. The version moves on by one per edit.
    pub(crate) fn apply(&self, ops: Vec<Op>) -> Option<(Self, Vec<Edit>)> {
        let mut entries = self.entries.clone();
        let mut edits = Vec::new();
        for op in ops {
            match op {
                Op::Put(entry) => match entries.binary_search_by(|e| e.name().cmp(entry.name())) {
                    Ok(i) => {
                        if Arc::ptr_eq(&entries[i].item, &entry.item)
                            || *entries[i].item == *entry.item
                        {
                            continue;
                        }
                        edits.push(Edit::Put {
                            item: Arc::clone(&entry.item),
                            version: entry.version.clone(),
                        });
                        entries[i] = entry;
                    }
                    Err(i) => {
                        edits.push(Edit::Put {
                            item: Arc::clone(&entry.item),
                            version: entry.version.clone(),
                        });
                        entries.insert(i, entry);
                    }
                },
                Op::Delete(name) => {
                    if let Ok(i) = entries.binary_search_by(|e| e.name().cmp(&name)) {
                        entries.remove(i);
                        edits.push(Edit::Delete { name });
                    }
                }
            }
        }
        if edits.is_empty() {
            return None;
        }
        let version = self.version + edits.len() as u64;
        Some((Self::from_sorted(version, self.initialized, entries), edits))
    }

    /// The set holding exactly `next` (a load), with the edits from this set to it: flags
    /// that differ are puts (unchanged ones keep their allocation), flags that are gone are
    /// deletes. The version moves on by one per edit, or by one for the first load.
    pub(crate) fn replace(&self, next: Self) -> (Self, Vec<Edit>) {
        let mut edits = Vec::new();
        let mut entries = Vec::with_capacity(next.entries.len());
        let (mut old, mut new) = (self.entries.iter().peekable(), next.entries.into_iter());
        let mut pending_new = new.next();
        loop {
            match (old.peek(), pending_new.take()) {
                (None, None) => break,
                (Some(o), None) => {
                    edits.push(Edit::Delete {
                        name: o.name().to_owned(),
                    });
                    old.next();
                }
                (None, Some(n)) => {
                    edits.push(put_edit(&n));
                    entries.push(n);
                    pending_new = new.next();
                }
                (Some(o), Some(n)) => match o.name().cmp(n.name()) {
                    std::cmp::Ordering::Less => {
                        edits.push(Edit::Delete {
                            name: o.name().to_owned(),
                        });
                        old.next();
                        pending_new = Some(n);
                    }
                    std::cmp::Ordering::Greater => {
                        edits.push(put_edit(&n));
                        entries.push(n);
                        pending_new = new.next();
                    }
                    std::cmp::Ordering::Equal => {
                        if *o.item == *n.item {
                            // Unchanged: keep the allocation (and the version it came with,
                            // unless the load knows a version).
                            entries.push(Entry {
                                version: n.version.or_else(|| o.version.clone()),
                                ..(*o).clone()
                            });
                        } else {
                            edits.push(put_edit(&n));
                            entries.push(n);
                        }
                        old.next();
                        pending_new = new.next();
                    }
                },
            }
        }
        let version = if self.initialized {
            self.version + edits.len() as u64
        } else {
            self.version + 1
        };
        (Self::from_sorted(version, true, entries), edits)
    }
}

fn put_edit(entry: &Entry) -> Edit {
    Edit::Put {
        item: Arc::clone(&entry.item),
        version: entry.version.clone(),
    }
}

/// One write to apply to a set.
pub(crate) enum Op {
    Put(Entry),
    Delete(String),
}

impl Op {
    pub(crate) fn name(&self) -> &str {
        match self {
            Self::Put(e) => e.name(),
            Self::Delete(name) => name,
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

impl fmt::Debug for FlagSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlagSet")
            .field("version", &self.version)
            .field("initialized", &self.initialized)
            .field("flags", &self.entries.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SystemEnv;

    fn entry(name: &str, on: bool) -> Entry {
        Entry::new(Item::new(name, on, 1), Some(Version::from_seq(1)))
    }

    fn names(set: &FlagSet) -> Vec<&str> {
        set.iter().map(|(n, _)| n).collect()
    }

    #[test]
    fn keys_find_what_names_find_as_flags_come_and_go() {
        // Long names with equal tags (same length, first and last 8 bytes) need the full
        // comparison; short ones are told apart by their tags.
        let long_a = "prefix--middle-A--suffix";
        let long_b = "prefix--middle-B--suffix";
        let all = ["a", "b", "bb", "c", "d", "zz", long_a, long_b, "missing"];
        let keys: Vec<FlagKey> = all.iter().map(|n| FlagKey::new(n)).collect();
        let checks = Checks::new();
        let agree = |set: &FlagSet| {
            for key in &keys {
                let name = key.name();
                for default in [false, true] {
                    assert_eq!(
                        set.evaluate_key(key, &checks, default, &SystemEnv),
                        set.evaluate(name, &checks, default, &SystemEnv),
                        "{name}"
                    );
                    assert_eq!(
                        set.is_enabled_key(key, &checks, default, &SystemEnv),
                        set.is_enabled_or(name, &checks, default, &SystemEnv),
                        "{name}"
                    );
                }
                assert_eq!(
                    set.get_by_key(key).map(|i| &i.feature_name),
                    set.get(name).map(|i| &i.feature_name)
                );
            }
        };
        let e = FlagSet::empty().evaluate_key(&keys[0], &checks, true, &SystemEnv);
        assert_eq!((e.enabled, e.reason), (true, Reason::NotInitialized));
        let mut set = FlagSet::from_entries(1, vec![entry("b", true), entry(long_b, false)]);
        agree(&set);
        // Each step moves the flags after the change to other places (or removes them), so
        // the keys' remembered places go stale.
        let steps = [
            vec![Op::Put(entry("a", false)), Op::Put(entry(long_a, true))],
            vec![Op::Put(entry("bb", true)), Op::Delete("b".into())],
            vec![Op::Delete("a".into()), Op::Put(entry("zz", true))],
            vec![
                Op::Put(entry("a", true)),
                Op::Put(entry("c", false)),
                Op::Put(entry("d", true)),
            ],
            vec![Op::Delete(long_a.into()), Op::Put(entry("b", false))],
            vec![
                Op::Delete("a".into()),
                Op::Delete("bb".into()),
                Op::Delete("c".into()),
            ],
        ];
        for ops in steps {
            set = set.apply(ops).unwrap().0;
            agree(&set);
            // Twice: once finding the places, once using them.
            agree(&set);
        }
        let hinted = keys
            .iter()
            .filter(|k| k.hint.load(Ordering::Relaxed) != u32::MAX);
        assert_eq!(
            hinted.count(),
            all.len() - 1,
            "every flag that existed was found and its place kept"
        );
    }

    #[test]
    fn lookup_and_order() {
        let set = FlagSet::from_entries(
            1,
            vec![entry("b", true), entry("a", true), entry("b", false)],
        );
        assert_eq!(names(&set), ["a", "b"]);
        assert!(
            !set.get("b").unwrap().switched_on(),
            "the last of a name wins"
        );
        assert!(set.get("c").is_none());
        let e = set.evaluate("c", &Checks::new(), true, &SystemEnv);
        assert_eq!((e.enabled, e.reason), (true, Reason::FlagMissing));
        let e = FlagSet::empty().evaluate("a", &Checks::new(), true, &SystemEnv);
        assert_eq!((e.enabled, e.reason), (true, Reason::NotInitialized));
        let many: Vec<Entry> = (0..1000).map(|i| entry(&format!("f{i}"), true)).collect();
        let set = FlagSet::from_entries(1, many);
        assert!((0..1000).all(|i| set.get(&format!("f{i}")).is_some()));
    }

    #[test]
    fn short_names_are_told_apart_by_their_tags() {
        let long = "abcdefghijklmnopqrstuvwxyz0123456789";
        for n in 0..=TAG_EXACT {
            let a = &long[..n];
            assert!(NameTag::of(a) == NameTag::of(a));
            for i in 0..n {
                let mut b = a.as_bytes().to_vec();
                b[i] ^= 1;
                let b = String::from_utf8(b).unwrap();
                assert!(NameTag::of(a) != NameTag::of(&b), "{a:?} {b:?}");
            }
        }
        // Longer names: same tag, different middles, still two flags.
        let (a, b) = ("abcdefghij_1_klmnopqrst", "abcdefghij_2_klmnopqrst");
        assert!(NameTag::of(a) == NameTag::of(b));
        let set = FlagSet::from_entries(1, vec![entry(a, true), entry(b, false)]);
        assert!(set.get(a).unwrap().switched_on());
        assert!(!set.get(b).unwrap().switched_on());
        assert!(set.get("abcdefghij_3_klmnopqrst").is_none());
    }

    #[test]
    fn versions_move_one_per_changed_flag() {
        let empty = FlagSet::empty();
        let (set, edits) = empty.replace(FlagSet::from_entries(0, vec![entry("a", true)]));
        assert_eq!(
            (set.version(), edits.len()),
            (1, 1),
            "the first load counts once"
        );
        assert!(set.apply(vec![Op::Put(entry("a", true))]).is_none());
        let (set, edits) = set
            .apply(vec![
                Op::Put(entry("a", false)),
                Op::Put(entry("b", true)),
                Op::Delete("missing".into()),
            ])
            .unwrap();
        assert_eq!((set.version(), edits.len()), (3, 2));
        let (set, edits) = set.replace(FlagSet::from_entries(
            0,
            vec![entry("c", true), entry("a", false)],
        ));
        assert_eq!(set.version(), 5);
        let described: Vec<String> = edits
            .iter()
            .map(|e| match e {
                Edit::Put { item, .. } => format!("put {}", item.feature_name),
                Edit::Delete { name } => format!("delete {name}"),
            })
            .collect();
        assert_eq!(described, ["delete b", "put c"]);
        assert_eq!(names(&set), ["a", "c"]);
    }

    #[test]
    fn ramps_make_a_set_time_dependent() {
        let mut ramp = Item::new("r", true, 1);
        ramp.meta.bucketer = Bucketer::percentage(Percentage::linear_ramp(0.0, 1.0, 60, 1));
        let set = FlagSet::from_entries(1, vec![Entry::new(ramp, None), entry("p", true)]);
        assert!(set.is_time_dependent());
        let (set, _) = set.apply(vec![Op::Put(entry("r", true))]).unwrap();
        assert!(!set.is_time_dependent());
    }
}
