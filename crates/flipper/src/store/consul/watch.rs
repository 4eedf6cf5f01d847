//! The Consul store's watch: blocking queries on the prefix, each answer compared with what the
//! watcher was last told, plus this store's own writes told directly (in order).
//!
//! **What the watcher knows.** For each flag: the `ModifyIndex` it was last told of, and whether
//! the flag is there; after this store deletes a flag, a *tombstone* (the index the flag had
//! when deleted) until an answer shows it gone. `floor` is the `X-Consul-Index` of the last
//! answer handled. Raft indexes only grow, so:
//!
//! - an entry (from an answer or an own write) at index `i` is news when the flag is known at
//!   a lower index, or unknown and `i > floor` (an unknown flag at `i <= floor` was deleted
//!   after `i`: the answer at `floor` was read after it);
//! - a known flag missing from an answer at index `N` was deleted when it was known at an
//!   index `<= N` (otherwise the answer was read before that write);
//! - an own delete of a flag that had index `m` is news when the flag is known at `m` or lower.
//!
//! So answers and own writes can interleave in any order without reporting an older state
//! after a newer one. An `X-Consul-Index` lower than the last one (a snapshot restore,
//! tombstones reaped) or zero breaks the rule: the watch takes that answer as a fresh start
//! and yields [`Change::Resync`].

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use flipper_core::Item;

use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

use super::api::Read;
use super::{ConsulStore, version};
use crate::error::Result;
use crate::store::Change;
use crate::store::ChangeStream;

/// The shortest time between the starts of two blocking queries.
const MIN_GAP: Duration = Duration::from_millis(50);
/// The first retry delay after a failure; it doubles with each failure.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// The longest retry delay.
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// One of this store's writes, told to its watches.
#[derive(Debug, Clone)]
pub(super) enum Own {
    /// A flag written, at this `ModifyIndex` (boxed: a broadcast slot holds the largest
    /// variant).
    Put { item: Box<Item>, index: u64 },
    /// A flag deleted; it had this `ModifyIndex`.
    Delete { name: String, after: u64 },
}

/// Starts following the store's changes; `None` outside a Tokio runtime.
pub(super) fn start(store: &ConsulStore) -> Option<ChangeStream> {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::warn!(store = %store, "ConsulStore::watch called outside a Tokio runtime");
        return None;
    };
    let (tx, rx) = mpsc::channel(crate::store::memory::WATCH_BUFFER);
    let follower = Follower {
        store: store.clone(),
        tx,
        own: store.inner.own.subscribe(),
        connecting: Some(store.inner.watchers.connecting()),
        live: false,
        known: HashMap::new(),
        floor: 0,
        index: 0,
        failures: 0,
    };
    runtime.spawn(follower.run());
    Some(crate::store::gate::channel_stream(rx))
}

/// What the watcher was last told of a flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Known {
    index: u64,
    present: bool,
}

/// The watcher dropped its stream.
struct Closed;

type Pending = Pin<Box<dyn Future<Output = Result<Read>> + Send>>;

struct Follower {
    store: ConsulStore,
    tx: mpsc::Sender<Change>,
    own: broadcast::Receiver<Own>,
    /// Held until the first read is done (or failed).
    connecting: Option<crate::store::gate::Connecting>,
    /// Whether a first read gave the watcher's knowledge (own writes wait until then).
    live: bool,
    known: HashMap<String, Known>,
    floor: u64,
    /// The index the next blocking query waits past.
    index: u64,
    /// Failed requests in a row.
    failures: u32,
}

impl Follower {
    async fn run(mut self) {
        let _ = self.follow().await;
    }

    async fn follow(&mut self) -> Result<(), Closed> {
        let mut pending: Option<Pending> = Some(self.request(None));
        let mut next_at = Instant::now();
        loop {
            if pending.is_none() && Instant::now() >= next_at {
                let index = if self.live { Some(self.index) } else { None };
                pending = Some(self.request(index));
                next_at = Instant::now() + MIN_GAP;
            }
            // Own writes first: one told before an answer that shows a later state is handled
            // before that answer.
            tokio::select! {
                biased;
                () = self.tx.closed() => return Err(Closed),
                own = self.own.recv(), if self.live => self.on_own(own).await?,
                () = tokio::time::sleep_until(next_at), if pending.is_none() => {}
                read = poll(&mut pending) => {
                    pending = None;
                    match read {
                        Ok(read) => {
                            self.recovered();
                            self.drain_own().await?;
                            self.on_answer(read).await?;
                        }
                        Err(error) => {
                            // Writes need not wait for a watch that cannot connect.
                            self.connecting = None;
                            self.failures = self.failures.saturating_add(1);
                            let delay = backoff(self.failures);
                            tracing::warn!(
                                store = %self.store,
                                %error,
                                failures = self.failures,
                                retry_in = ?delay,
                                "a Consul blocking query failed; retrying from the same index"
                            );
                            next_at = Instant::now() + delay;
                        }
                    }
                }
            }
        }
    }

    /// A read of the prefix: plain (`None`), or blocking past `index`.
    fn request(&self, index: Option<u64>) -> Pending {
        let store = self.store.clone();
        let wait = store.config().wait();
        Box::pin(async move {
            let prefix = store.inner.prefix.clone();
            store
                .inner
                .api
                .read(&prefix, true, index.map(|i| (i, wait)), false)
                .await
        })
    }

    fn recovered(&mut self) {
        if self.failures > 0 {
            tracing::info!(store = %self.store, failures = self.failures, "Consul answers again");
        }
        self.failures = 0;
    }

    async fn emit(&self, change: Change) -> Result<(), Closed> {
        self.tx.send(change).await.map_err(|_| Closed)
    }

    /// Handles the own writes already told, before an answer.
    async fn drain_own(&mut self) -> Result<(), Closed> {
        if !self.live {
            return Ok(());
        }
        loop {
            match self.own.try_recv() {
                Ok(own) => self.on_own(Ok(own)).await?,
                Err(broadcast::error::TryRecvError::Lagged(n)) => self.lagged(n),
                Err(_) => return Ok(()),
            }
        }
    }

    fn lagged(&self, n: u64) {
        // The next answers still give every flag's final state.
        tracing::debug!(store = %self.store, skipped = n, "a Consul watch fell behind this store's writes");
    }

    async fn on_own(
        &mut self,
        own: Result<Own, broadcast::error::RecvError>,
    ) -> Result<(), Closed> {
        match own {
            Ok(Own::Put { item, index }) => {
                let name = item.feature_name.clone();
                if self.is_news(&name, index) {
                    self.known.insert(
                        name,
                        Known {
                            index,
                            present: true,
                        },
                    );
                    self.emit(Change::Put {
                        item: *item,
                        version: version(index),
                    })
                    .await?;
                }
            }
            Ok(Own::Delete { name, after }) => {
                if let Some(known) = self.known.get(&name)
                    && known.present
                    && known.index <= after
                {
                    self.known.insert(
                        name.clone(),
                        Known {
                            index: after,
                            present: false,
                        },
                    );
                    self.emit(Change::Delete { name }).await?;
                }
            }
            Err(broadcast::error::RecvError::Lagged(n)) => self.lagged(n),
            // The store's sender lives as long as this task's store: never closed.
            Err(broadcast::error::RecvError::Closed) => {}
        }
        Ok(())
    }

    /// Whether a flag's entry at `index` is newer than what the watcher knows.
    fn is_news(&self, name: &str, index: u64) -> bool {
        match self.known.get(name) {
            Some(known) => index > known.index,
            None => index > self.floor,
        }
    }

    async fn on_answer(&mut self, read: Read) -> Result<(), Closed> {
        if !self.live || read.index < self.index || read.index == 0 {
            if self.live {
                tracing::warn!(
                    store = %self.store,
                    was = self.index,
                    now = read.index,
                    "Consul's index went backwards (a snapshot restore, or tombstones reaped): \
                     starting over (watchers reload)"
                );
            }
            self.baseline(&read);
            self.live = true;
            self.emit(Change::Resync).await?;
            // Live: writes may go ahead.
            self.connecting = None;
            return Ok(());
        }
        self.index = read.index;
        let mut changes: Vec<(u64, Change)> = Vec::new();
        let mut seen = HashSet::new();
        let mut unreadable = false;
        for entry in read.entries {
            let Some(name) = self.store.name_of(&entry.key) else {
                continue;
            };
            let Some(bytes) = entry.value else {
                continue;
            };
            let name = name.to_owned();
            seen.insert(name.clone());
            if !self.is_news(&name, entry.modify_index) {
                continue;
            }
            self.known.insert(
                name.clone(),
                Known {
                    index: entry.modify_index,
                    present: true,
                },
            );
            match Item::deserialize(&bytes) {
                Ok(item) => changes.push((
                    entry.modify_index,
                    Change::Put {
                        item,
                        version: version(entry.modify_index),
                    },
                )),
                Err(error) => {
                    tracing::warn!(store = %self.store, flag = %name, %error, "a key under the prefix holds no readable flag; watchers reload (and list it as corrupt)");
                    unreadable = true;
                }
            }
        }
        let gone: Vec<String> = self
            .known
            .iter()
            .filter(|(name, known)| {
                known.present && known.index <= read.index && !seen.contains(*name)
            })
            .map(|(name, _)| name.clone())
            .collect();
        for name in gone {
            self.known.remove(&name);
            changes.push((read.index, Change::Delete { name }));
        }
        // Tombstones of flags this answer shows gone are covered by `floor` from now on.
        self.known
            .retain(|name, known| known.present || seen.contains(name));
        self.floor = read.index;
        changes.sort_by_key(|(index, _)| *index);
        for (_, change) in changes {
            self.emit(change).await?;
        }
        if unreadable {
            self.emit(Change::Resync).await?;
        }
        Ok(())
    }

    /// Takes an answer as the watcher's whole knowledge (a first read, or a fresh start).
    fn baseline(&mut self, read: &Read) {
        self.known.clear();
        for entry in &read.entries {
            if let (Some(name), Some(_)) = (self.store.name_of(&entry.key), &entry.value) {
                self.known.insert(
                    name.to_owned(),
                    Known {
                        index: entry.modify_index,
                        present: true,
                    },
                );
            }
        }
        // "It is always safe to use an index of 1" (Consul's blocking-query rules).
        self.index = read.index.max(1);
        self.floor = read.index;
    }
}

/// The pending request's answer; never ready without one.
async fn poll(pending: &mut Option<Pending>) -> Result<Read> {
    match pending {
        Some(request) => request.await,
        None => std::future::pending().await,
    }
}

/// The delay before retrying after `failures` failures: doubling from [`BACKOFF_MIN`] to
/// [`BACKOFF_MAX`], with jitter (between half and all of it).
fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    let full = BACKOFF_MIN.saturating_mul(1 << doublings).min(BACKOFF_MAX);
    let half = full / 2;
    half + half.mul_f64(fastrand::f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        for failures in 0..40 {
            let d = backoff(failures);
            assert!(
                d >= BACKOFF_MIN / 2 && d <= BACKOFF_MAX,
                "{failures}: {d:?}"
            );
        }
        assert!(backoff(30) >= BACKOFF_MAX / 2);
    }
}
