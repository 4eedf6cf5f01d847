//! The cache's state: the LRU, the reads and writes in flight, and the rules that keep stale
//! answers out.
//!
//! # Freshness
//!
//! Every flag with an operation in flight (a read of the inner store, or a write) has a
//! [`Pending`] record. It holds a generation number, which anything that makes an answer
//! obtained meanwhile possibly stale bumps (a write of the flag starting or ending, a reload, a
//! clear), and the last change notification seen for the flag. An operation stores its answer
//! at the end only if the generation is still the one it saw at its start, and, if
//! notifications arrived meanwhile, only if the last one says what the answer says (same
//! version, or both "missing"): notifications come in the store's order, so a later change will
//! still be notified and drop the entry. A slow read that began before a write can never put
//! its older answer back, and a write's own notification arriving first does not stop it from
//! being cached. Records exist only while operations are in flight, so they stay few.
//!
//! # Single flight
//!
//! The first read of an uncached flag (the leader) registers a [`Flight`] in the flag's record;
//! the reads that arrive meanwhile wait for its answer instead of asking the inner store again.
//! An invalidation unregisters the flight (later reads start a new one) but its waiters still
//! get its answer: their reads began before the invalidation. A leader that is cancelled drops
//! its flight, and its waiters retry (one of them leads).

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use lru::LruCache;
use tokio::sync::watch;

use super::copy_error::copy_error;
use super::{CacheStats, Clock};
use crate::error::Result;
use crate::store::{Change, Version, Versioned};

/// The cache shared by a [`super::CachedStore`] and its change-following task.
pub(super) struct Cache {
    state: Mutex<State>,
    ttl: Option<Duration>,
    clock: Arc<dyn Clock>,
    /// The inner store's watch sees other processes' writes.
    watch_external: bool,
    hits: AtomicU64,
    misses: AtomicU64,
    loads: AtomicU64,
    evictions: AtomicU64,
}

struct State {
    /// `None` when the size is 0 (caching off).
    lru: Option<LruCache<String, Entry>>,
    /// Flags with a read or write in flight.
    pending: HashMap<String, Pending>,
    /// A task applies the inner store's changes.
    watching: bool,
}

struct Entry {
    /// `None`: the flag is missing.
    value: Option<Versioned>,
    inserted_at: Instant,
}

#[derive(Default)]
struct Pending {
    generation: u64,
    /// Change notifications seen for the flag.
    notes: u64,
    /// The last one: the flag's version, or `None` for a delete.
    last_note: Option<Version>,
    /// Operations holding this record.
    users: usize,
    flight: Option<Arc<Flight>>,
}

/// Where a record stood when an operation began.
#[derive(Clone, Copy)]
struct Stamp {
    generation: u64,
    notes: u64,
}

/// What happened to a flag while an operation was in flight.
enum Since {
    Nothing,
    /// Change notifications only, the last saying this (`None`: deleted).
    Noted(Option<Version>),
    /// A write, a reload or a clear.
    Invalidated,
}

impl Since {
    /// Whether an answer obtained meanwhile may be cached.
    fn allows(&self, answer: Option<&Versioned>) -> bool {
        match self {
            Self::Nothing => true,
            Self::Noted(version) => version.as_ref() == answer.map(|v| &v.version),
            Self::Invalidated => false,
        }
    }
}

/// One read of the inner store that concurrent readers share.
struct Flight {
    answer: watch::Sender<Option<Result<Option<Versioned>>>>,
}

/// What a finished write leaves in the cache for a flag.
#[allow(
    clippy::large_enum_variant,
    reason = "made and consumed at once, one per written flag; boxing would add an allocation"
)]
pub(super) enum After {
    /// The flag as written (`None`: deleted).
    Cache(Option<Versioned>),
    /// Nothing: the flag's state is unknown.
    Forget,
}

impl Cache {
    pub(super) fn new(
        size: Option<NonZeroUsize>,
        ttl: Option<Duration>,
        clock: Arc<dyn Clock>,
        watch_external: bool,
    ) -> Self {
        Self {
            state: Mutex::new(State {
                lru: size.map(LruCache::new),
                pending: HashMap::new(),
                watching: false,
            }),
            ttl,
            clock,
            watch_external,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            loads: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every critical section leaves the maps consistent between statements that can panic
        // (none do), so a poisoned lock still holds a usable cache.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            loads: self.loads.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
            entries: self.state().lru.as_ref().map_or(0, LruCache::len),
        }
    }

    pub(super) fn is_watching(&self) -> bool {
        self.state().watching
    }

    pub(super) fn set_watching(&self, yes: bool) {
        self.state().watching = yes;
    }

    /// The change stream ended: nothing invalidates entries any more.
    pub(super) fn watch_ended(&self) {
        let mut state = self.state();
        state.watching = false;
        state.invalidate_all();
    }

    pub(super) fn clear(&self) {
        self.state().invalidate_all();
    }

    /// Applies one change notification: drops what it makes stale.
    ///
    /// A notification may arrive after this handle has cached a newer write of the same flag,
    /// so it never *stores* its flag: it keeps an entry that already says the same (same
    /// version, or missing for a delete) and drops any other.
    pub(super) fn apply(&self, change: &Change) {
        let mut state = self.state();
        match change {
            Change::Put { item, version } => {
                let name = item.feature_name.as_str();
                state.note(name, Some(version.clone()));
                let same = state.peek(name).is_some_and(|entry| {
                    entry.value.as_ref().is_some_and(|v| &v.version == version)
                });
                if !same {
                    state.remove(name);
                }
            }
            Change::Delete { name } => {
                state.note(name, None);
                if state.peek(name).is_some_and(|entry| entry.value.is_some()) {
                    state.remove(name);
                }
            }
            Change::Resync => state.invalidate_all(),
        }
    }

    /// The flag from the cache, or from `load` (shared with concurrent readers of the same
    /// flag), caching the answer when it is still current.
    pub(super) async fn get<F, Fut>(&self, name: &str, load: F) -> Result<Option<Versioned>>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Option<Versioned>>>,
    {
        let mut counted = false;
        loop {
            let role = {
                let mut state = self.state();
                if let Some(value) = self.lookup(&mut state, name) {
                    if !counted {
                        self.hits.fetch_add(1, Ordering::Relaxed);
                    }
                    return Ok(value);
                }
                if !counted {
                    self.misses.fetch_add(1, Ordering::Relaxed);
                    counted = true;
                }
                let pending = state.pending.entry(name.to_owned()).or_default();
                match &pending.flight {
                    Some(flight) => Role::Wait(flight.answer.subscribe()),
                    None => {
                        let flight = Arc::new(Flight {
                            answer: watch::channel(None).0,
                        });
                        pending.flight = Some(Arc::clone(&flight));
                        pending.users += 1;
                        Role::Lead(LoadGuard {
                            cache: self,
                            name,
                            stamp: pending.stamp(),
                            flight,
                            done: false,
                        })
                    }
                }
            };
            match role {
                Role::Wait(mut answer) => {
                    if let Ok(answer) = answer.wait_for(Option::is_some).await
                        && let Some(answer) = (*answer).as_ref()
                    {
                        return match answer {
                            Ok(value) => Ok(value.clone()),
                            Err(e) => Err(copy_error(e)),
                        };
                    }
                    // The leader was cancelled: try again (and perhaps lead).
                }
                Role::Lead(guard) => {
                    self.loads.fetch_add(1, Ordering::Relaxed);
                    let answer = load().await;
                    guard.finish(&answer);
                    return answer;
                }
            }
        }
    }

    /// A live entry (promoting it), or `None`; an expired entry is dropped.
    fn lookup(&self, state: &mut State, name: &str) -> Option<Option<Versioned>> {
        let now = self.clock.now();
        let ttl = self.ttl;
        let lru = state.lru.as_mut()?;
        let entry = lru.get(name)?;
        if ttl.is_some_and(|ttl| now.saturating_duration_since(entry.inserted_at) >= ttl) {
            lru.pop(name);
            None
        } else {
            Some(entry.value.clone())
        }
    }

    /// Whether "missing" may be cached now (see `CachedStore`, "Missing flags").
    fn misses_cacheable(&self, state: &State) -> bool {
        self.ttl.is_some() || (state.watching && self.watch_external)
    }

    /// Stores an answer, counting an eviction when it pushes another flag out.
    fn insert(&self, state: &mut State, name: &str, value: Option<Versioned>) {
        if value.is_none() && !self.misses_cacheable(state) {
            state.remove(name);
            return;
        }
        let inserted_at = self.clock.now();
        let Some(lru) = state.lru.as_mut() else {
            return;
        };
        let entry = Entry { value, inserted_at };
        if let Some((old, _)) = lru.push(name.to_owned(), entry)
            && old != name
        {
            self.evictions.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Marks the start of a write of these flags: drops their entries, and makes every read or
    /// write of them already in flight unable to cache its answer.
    pub(super) fn begin_write<'a>(
        &self,
        names: impl IntoIterator<Item = &'a str>,
    ) -> WriteGuard<'_> {
        let mut state = self.state();
        let mut flags: Vec<(String, Stamp)> = Vec::new();
        for name in names {
            if flags.iter().any(|(n, _)| n == name) {
                continue;
            }
            state.remove(name);
            let pending = state.pending.entry(name.to_owned()).or_default();
            pending.generation += 1;
            pending.flight = None;
            pending.users += 1;
            flags.push((name.to_owned(), pending.stamp()));
        }
        WriteGuard {
            cache: self,
            flags,
            done: false,
        }
    }
}

impl Pending {
    fn stamp(&self) -> Stamp {
        Stamp {
            generation: self.generation,
            notes: self.notes,
        }
    }
}

impl State {
    fn peek(&self, name: &str) -> Option<&Entry> {
        self.lru.as_ref()?.peek(name)
    }

    fn remove(&mut self, name: &str) {
        if let Some(lru) = self.lru.as_mut() {
            lru.pop(name);
        }
    }

    /// A change notification for `name`: reads in flight may no longer be current (later reads
    /// start a new flight), and answers are now checked against it.
    fn note(&mut self, name: &str, version: Option<Version>) {
        if let Some(pending) = self.pending.get_mut(name) {
            pending.notes += 1;
            pending.last_note = version;
            pending.flight = None;
        }
    }

    /// Reads and writes of `name` in flight may not cache their answers; later reads start a
    /// new flight.
    fn invalidate_pending(&mut self, name: &str) {
        if let Some(pending) = self.pending.get_mut(name) {
            pending.generation += 1;
            pending.flight = None;
        }
    }

    fn invalidate_all(&mut self) {
        if let Some(lru) = self.lru.as_mut() {
            lru.clear();
        }
        for pending in self.pending.values_mut() {
            pending.generation += 1;
            pending.flight = None;
        }
    }

    /// Ends one operation's use of `name`'s record; what happened to the flag since `stamp`.
    fn release(&mut self, name: &str, stamp: Stamp, flight: Option<&Arc<Flight>>) -> Since {
        let Some(pending) = self.pending.get_mut(name) else {
            return Since::Invalidated;
        };
        let current = if pending.generation != stamp.generation {
            Since::Invalidated
        } else if pending.notes != stamp.notes {
            Since::Noted(pending.last_note.clone())
        } else {
            Since::Nothing
        };
        if let (Some(mine), Some(registered)) = (flight, &pending.flight)
            && Arc::ptr_eq(mine, registered)
        {
            pending.flight = None;
        }
        pending.users = pending.users.saturating_sub(1);
        if pending.users == 0 {
            self.pending.remove(name);
        }
        current
    }
}

enum Role<'a> {
    Lead(LoadGuard<'a>),
    Wait(watch::Receiver<Option<Result<Option<Versioned>>>>),
}

/// The leader's hold on a flight; dropping it unfinished (cancellation) lets waiters retry.
struct LoadGuard<'a> {
    cache: &'a Cache,
    name: &'a str,
    stamp: Stamp,
    flight: Arc<Flight>,
    done: bool,
}

impl LoadGuard<'_> {
    fn finish(mut self, answer: &Result<Option<Versioned>>) {
        self.done = true;
        let cache = self.cache;
        let mut state = cache.state();
        let since = state.release(self.name, self.stamp, Some(&self.flight));
        if let Ok(value) = answer
            && since.allows(value.as_ref())
        {
            cache.insert(&mut state, self.name, value.clone());
        }
        drop(state);
        // Unregistered above, so no reader subscribes after this.
        if self.flight.answer.receiver_count() > 0 {
            let shared = match answer {
                Ok(value) => Ok(value.clone()),
                Err(e) => Err(copy_error(e)),
            };
            self.flight.answer.send_replace(Some(shared));
        }
    }
}

impl Drop for LoadGuard<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.cache
                .state()
                .release(self.name, self.stamp, Some(&self.flight));
        }
    }
}

/// A write in flight; [`WriteGuard::finish`] says what it left, dropping it unfinished
/// (cancellation) forgets the flags.
pub(super) struct WriteGuard<'a> {
    cache: &'a Cache,
    flags: Vec<(String, Stamp)>,
    done: bool,
}

impl WriteGuard<'_> {
    /// Caches each flag as `after` says, unless something else touched it meanwhile (another
    /// write, a change notification): then its entry is dropped.
    pub(super) fn finish(mut self, after: impl Fn(&str) -> After) {
        self.done = true;
        let cache = self.cache;
        let mut state = cache.state();
        for (name, stamp) in &self.flags {
            let since = state.release(name, *stamp, None);
            // A read that began during the write may have seen the flag before it.
            state.invalidate_pending(name);
            match after(name) {
                After::Cache(value) if since.allows(value.as_ref()) => {
                    cache.insert(&mut state, name, value);
                }
                _ => state.remove(name),
            }
        }
    }
}

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut state = self.cache.state();
        for (name, stamp) in &self.flags {
            state.release(name, *stamp, None);
            state.invalidate_pending(name);
            state.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MonotonicClock;
    use flipper_core::Item;

    fn cache(size: usize, ttl: Option<Duration>) -> Cache {
        Cache::new(NonZeroUsize::new(size), ttl, Arc::new(MonotonicClock), true)
    }

    fn versioned(name: &str, seq: u64) -> Versioned {
        Versioned {
            item: Item::new(name, true, 1),
            version: crate::store::Version::from_seq(seq),
        }
    }

    #[tokio::test]
    async fn a_read_overtaken_by_a_write_does_not_cache_its_answer() {
        let cache = cache(10, None);
        let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
        let go_rx = std::sync::Mutex::new(Some(go_rx));
        let read = cache.get("f", || {
            let rx = go_rx.lock().unwrap().take();
            async move {
                if let Some(rx) = rx {
                    let _ = rx.await;
                }
                Ok(Some(versioned("f", 1)))
            }
        });
        let write = async {
            tokio::task::yield_now().await;
            let w = cache.begin_write(["f"]);
            w.finish(|_| After::Cache(Some(versioned("f", 2))));
            go_tx.send(()).unwrap();
        };
        let (read, ()) = tokio::join!(read, write);
        // The read began first, so its older answer is a fine answer, but not cached.
        assert_eq!(
            read.unwrap().unwrap().version,
            crate::store::Version::from_seq(1)
        );
        let cached = cache.get("f", || async { panic!("must be cached") }).await;
        assert_eq!(
            cached.unwrap().unwrap().version,
            crate::store::Version::from_seq(2)
        );
        assert!(cache.state().pending.is_empty());
    }

    #[tokio::test]
    async fn a_notification_drops_a_different_version_only() {
        let cache = cache(10, None);
        cache
            .begin_write(["f"])
            .finish(|_| After::Cache(Some(versioned("f", 2))));
        let stale = versioned("f", 1);
        cache.apply(&Change::Put {
            item: stale.item.clone(),
            version: crate::store::Version::from_seq(2),
        });
        assert_eq!(cache.stats().entries, 1);
        cache.apply(&Change::Put {
            item: stale.item,
            version: stale.version,
        });
        assert_eq!(cache.stats().entries, 0);
    }

    #[test]
    fn a_write_is_cached_when_the_last_notification_is_its_own() {
        let cache = cache(10, None);
        let ours = versioned("f", 2);
        let write = cache.begin_write(["f"]);
        // The store notifies an older write, then ours, before the write returns.
        for seq in [1, 2] {
            cache.apply(&Change::Put {
                item: ours.item.clone(),
                version: crate::store::Version::from_seq(seq),
            });
        }
        write.finish(|_| After::Cache(Some(ours.clone())));
        assert_eq!(cache.stats().entries, 1);

        // Another writer's change notified after ours: ours is not cached.
        let write = cache.begin_write(["f"]);
        for seq in [3, 4] {
            cache.apply(&Change::Put {
                item: ours.item.clone(),
                version: crate::store::Version::from_seq(seq),
            });
        }
        write.finish(|_| After::Cache(Some(versioned("f", 3))));
        assert_eq!(cache.stats().entries, 0);
        assert!(cache.state().pending.is_empty());
    }

    #[tokio::test]
    async fn a_cancelled_leader_hands_over_to_a_waiter() {
        let cache = cache(10, None);
        let loads = AtomicU64::new(0);
        let load = || {
            let n = loads.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    std::future::pending::<()>().await;
                }
                Ok(Some(versioned("f", 1)))
            }
        };
        let mut leader = Box::pin(cache.get("f", load));
        let polled = futures_util::FutureExt::now_or_never(leader.as_mut());
        assert!(polled.is_none());
        let waiter = cache.get("f", load);
        let (waited, ()) = tokio::join!(waiter, async {
            tokio::task::yield_now().await;
            drop(leader);
        });
        assert!(waited.unwrap().is_some());
        assert_eq!(loads.load(Ordering::SeqCst), 2);
        assert!(cache.state().pending.is_empty());
    }
}
