//! How a [`super::ReplicatedStore`] writes: the primary first, holding each flag's place in
//! line, then every replica in parallel in a task of its own, within one deadline; and how
//! replica failures are counted, logged and broadcast.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flipper_core::Item;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{FAILURE_EVENTS, ReplicaFailure, ReplicaOperation};
use crate::error::Result;
use crate::store::{PutMode, Store};

/// What the background replication tasks share with the store.
pub(super) struct Shared {
    pub(super) primary: Arc<dyn Store>,
    pub(super) replicas: Vec<Replica>,
    pub(super) failures: broadcast::Sender<ReplicaFailure>,
    /// Per flag, the end of its last replication: the next one waits for it. Entries are
    /// removed once no write of the flag is in flight.
    pub(super) chains: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Tail>>>>,
}

/// Closed when the replication it belongs to has finished.
type Tail = Option<watch::Receiver<()>>;

pub(super) struct Replica {
    pub(super) store: Arc<dyn Store>,
    pub(super) name: String,
    pub(super) failures: AtomicU64,
}

/// A replicated write, owned by its replication task.
#[allow(
    clippy::large_enum_variant,
    reason = "one per write, already behind an Arc; boxing the item would add an allocation"
)]
pub(super) enum Op {
    Put(Item),
    PutMany(Vec<Item>),
    Delete(String),
}

impl Op {
    fn operation(&self) -> ReplicaOperation {
        match self {
            Self::Put(_) => ReplicaOperation::Put,
            Self::PutMany(_) => ReplicaOperation::PutMany,
            Self::Delete(_) => ReplicaOperation::Delete,
        }
    }

    /// The flags, sorted and without duplicates (the order locks are taken in).
    fn flags(&self) -> Vec<String> {
        let mut names: Vec<String> = match self {
            Self::Put(item) => vec![item.feature_name.clone()],
            Self::PutMany(items) => items.iter().map(|i| i.feature_name.clone()).collect(),
            Self::Delete(name) => vec![name.clone()],
        };
        names.sort_unstable();
        names.dedup();
        names
    }

    async fn apply(&self, replica: &dyn Store) -> Result<()> {
        match self {
            Self::Put(item) => replica.put(item, PutMode::Overwrite).await.map(drop),
            Self::PutMany(items) => replica.put_many(items).await.map(drop),
            Self::Delete(name) => replica.delete(name).await.map(drop),
        }
    }
}

/// A replication under way.
pub(super) enum InFlight {
    /// No replicas.
    None,
    Spawned(JoinHandle<Vec<ReplicaFailure>>),
    /// No tokio runtime: it runs in place.
    Inline(std::pin::Pin<Box<dyn Future<Output = Vec<ReplicaFailure>> + Send>>),
}

impl Shared {
    pub(super) fn new(primary: Arc<dyn Store>, replicas: Vec<Arc<dyn Store>>) -> Self {
        let replicas = replicas
            .into_iter()
            .map(|store| Replica {
                name: store.to_string(),
                store,
                failures: AtomicU64::new(0),
            })
            .collect();
        Self {
            primary,
            replicas,
            failures: broadcast::channel(FAILURE_EVENTS).0,
            chains: Mutex::new(HashMap::new()),
        }
    }

    /// Writes to the primary while holding the flags' places in line, then starts the
    /// replication, which first waits for the flags' previous replications.
    pub(super) async fn write<T>(
        self: &Arc<Self>,
        timeout: Duration,
        op: Op,
        primary: impl Future<Output = Result<T>>,
    ) -> Result<(T, InFlight)> {
        let flags = op.flags();
        if self.replicas.is_empty() || flags.is_empty() {
            return Ok((primary.await?, InFlight::None));
        }
        let slots = self.slots(&flags);
        let mut cancelled = Cancelled {
            shared: self,
            flags: &flags,
            writing: false,
            finished: false,
        };
        let mut tails = Vec::with_capacity(slots.len());
        // Sorted names: two batches never wait for each other in a circle.
        for slot in slots {
            tails.push(slot.lock_owned().await);
        }
        cancelled.writing = true;
        let result = primary.await;
        cancelled.finished = true;
        drop(cancelled);
        let value = match result {
            Ok(value) => value,
            Err(e) => {
                drop(tails);
                self.forget_idle(&flags);
                return Err(e);
            }
        };
        let (done, tail) = watch::channel(());
        let previous: Vec<watch::Receiver<()>> = tails
            .iter_mut()
            .filter_map(|t| t.replace(tail.clone()))
            .collect();
        drop(tails);
        let shared = Arc::clone(self);
        let op = Arc::new(op);
        let replication = match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let deadline = Instant::now() + timeout;
                InFlight::Spawned(runtime.spawn(async move {
                    let outcomes =
                        replicate(&shared, &op, previous, Some((deadline, timeout))).await;
                    drop(done);
                    shared.forget_idle(&flags);
                    shared.report(&op, flags, outcomes)
                }))
            }
            Err(_) => InFlight::Inline(Box::pin(async move {
                let outcomes = replicate(&shared, &op, previous, None).await;
                drop(done);
                shared.forget_idle(&flags);
                shared.report(&op, flags, outcomes)
            })),
        };
        Ok((value, replication))
    }
}

/// Cleans up after a write dropped before its primary write returned (the caller's future was
/// cancelled).
struct Cancelled<'a> {
    shared: &'a Shared,
    flags: &'a [String],
    /// The primary write had started.
    writing: bool,
    /// The primary write returned: nothing to clean up here.
    finished: bool,
}

impl Drop for Cancelled<'_> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        self.shared.forget_idle(self.flags);
        if self.writing {
            tracing::warn!(
                primary = %self.shared.primary,
                flags = %summary(self.flags),
                "replicated store: a write was cancelled while the primary was writing; if the \
                 primary took it, the replicas do not have it: write the flags again"
            );
        }
    }
}

/// Waits for a replication when asked to (or when it must run in place), else leaves it to
/// finish and report on its own.
pub(super) async fn finish(replication: InFlight, wait: bool) -> Vec<ReplicaFailure> {
    match replication {
        InFlight::None => Vec::new(),
        InFlight::Spawned(task) if wait => task.await.unwrap_or_else(|e| {
            tracing::warn!(
                error = %e,
                "replicated store: a replication task failed; the replicas may not have this \
                 write: write the flag again"
            );
            Vec::new()
        }),
        InFlight::Spawned(_) => Vec::new(),
        InFlight::Inline(replication) => replication.await,
    }
}

/// What each replica did with one write, in replica order: `None` when it took it, else the
/// error and whether it was a timeout.
type Outcomes = Vec<Option<(String, bool)>>;

/// Writes `op` to every replica in parallel once the flags' previous replications are done. With
/// `limit` (a deadline and the timeout it came from), replicas still writing at the deadline are
/// abandoned; without (no runtime, so no timers), every replica is waited for.
async fn replicate(
    shared: &Shared,
    op: &Arc<Op>,
    previous: Vec<watch::Receiver<()>>,
    limit: Option<(Instant, Duration)>,
) -> Outcomes {
    let Some((deadline, timeout)) = limit else {
        for mut rx in previous {
            // Never sent to: resolves when the previous replication ends.
            let _ = rx.changed().await;
        }
        let writes = shared.replicas.iter().map(|r| op.apply(&*r.store));
        return futures_util::future::join_all(writes)
            .await
            .into_iter()
            .map(|r| r.err().map(|e| (e.to_string(), false)))
            .collect();
    };
    for mut rx in previous {
        // The previous replication ends by its own, earlier, deadline.
        let _ = tokio::time::timeout_at(deadline, rx.changed()).await;
    }
    let tasks: Vec<JoinHandle<Result<()>>> = shared
        .replicas
        .iter()
        .map(|r| {
            let store = Arc::clone(&r.store);
            let op = Arc::clone(op);
            tokio::spawn(async move { op.apply(&*store).await })
        })
        .collect();
    let mut outcomes = Vec::with_capacity(tasks.len());
    // They run in parallel: waiting for each in turn, all against one deadline, takes at most
    // one timeout in all.
    for mut task in tasks {
        outcomes.push(match tokio::time::timeout_at(deadline, &mut task).await {
            Ok(Ok(Ok(()))) => None,
            Ok(Ok(Err(e))) => Some((e.to_string(), false)),
            Ok(Err(e)) => Some((format!("the replica's write did not finish: {e}"), false)),
            Err(_) => {
                task.abort();
                Some((
                    format!(
                        "no answer within {timeout:?}; the write was abandoned and may or may \
                         not have landed"
                    ),
                    true,
                ))
            }
        });
    }
    outcomes
}

impl Shared {
    /// Each flag's place in line, created when missing.
    fn slots(&self, flags: &[String]) -> Vec<Arc<tokio::sync::Mutex<Tail>>> {
        let mut chains = self.chains.lock().unwrap_or_else(|e| e.into_inner());
        flags
            .iter()
            .map(|name| Arc::clone(chains.entry(name.clone()).or_default()))
            .collect()
    }

    /// Drops the places in line that no write holds or waits for and whose last replication
    /// has ended.
    fn forget_idle(&self, flags: &[String]) {
        let mut chains = self.chains.lock().unwrap_or_else(|e| e.into_inner());
        for name in flags {
            // Slots are only cloned under this lock, so the count cannot grow meanwhile.
            let idle = chains.get(name).is_some_and(|slot| {
                Arc::strong_count(slot) == 1
                    && slot
                        .try_lock()
                        .is_ok_and(|tail| tail.as_ref().is_none_or(|rx| rx.has_changed().is_err()))
            });
            if idle {
                chains.remove(name);
            }
        }
    }

    /// Counts, logs and broadcasts each replica's failure; returns them.
    fn report(&self, op: &Op, flags: Vec<String>, outcomes: Outcomes) -> Vec<ReplicaFailure> {
        let mut failures = Vec::new();
        for (index, (replica, outcome)) in self.replicas.iter().zip(outcomes).enumerate() {
            let Some((error, timed_out)) = outcome else {
                continue;
            };
            replica.failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                replica = %replica.name,
                index,
                operation = %op.operation(),
                flags = %summary(&flags),
                %error,
                timed_out,
                "replicated store: a replica did not take a write the primary took, and no \
                 longer mirrors the primary for these flags; reads are unaffected (they use the \
                 primary). Fix the replica, then write the flags again (or re-import them) to \
                 bring it back in line"
            );
            failures.push(ReplicaFailure {
                replica: replica.name.clone(),
                index,
                operation: op.operation(),
                flags: flags.clone(),
                error,
                timed_out,
            });
        }
        for failure in &failures {
            // No subscriber is fine: the log and the counter have it.
            let _ = self.failures.send(failure.clone());
        }
        failures
    }
}

/// Up to 10 flag names for a log line, then how many more.
pub(super) fn summary(flags: &[String]) -> String {
    const SHOWN: usize = 10;
    let mut text = flags
        .iter()
        .take(SHOWN)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if flags.len() > SHOWN {
        text.push_str(&format!(" and {} more", flags.len() - SHOWN));
    }
    text
}
