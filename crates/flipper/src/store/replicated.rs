//! [`ReplicatedStore`]: writes go to a primary store, then to replicas; reads from the primary.
//! The behaviour, and how it differs from flipper-client's, is documented on the type.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_trait::async_trait;
use flipper_core::Item;
use tokio::sync::broadcast;

use super::{
    Capabilities, ChangeStream, ListEntry, PutMode, Store, StoreCounter, Version, Versioned,
};
use crate::error::Result;

mod fanout;

use fanout::{InFlight, Op, Shared, finish};

/// How long replicas are waited for by default: flipper-client's `replication_timeout=1`.
pub const DEFAULT_REPLICATION_TIMEOUT: Duration = Duration::from_secs(1);

/// How many [`ReplicaFailure`] events a subscriber may fall behind before it misses some.
const FAILURE_EVENTS: usize = 256;

/// When a write through a [`ReplicatedStore`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Replication {
    /// After the primary and every replica (written in parallel) have answered, or `timeout`
    /// after the primary's write, whichever comes first. A replica still writing then is
    /// abandoned and reported.
    Synchronous {
        /// The wait for all replicas together.
        timeout: Duration,
    },
    /// Right after the primary's write; the replicas are written in the background, abandoned
    /// and reported if they take longer than `timeout`. (Without a tokio runtime there is no
    /// background: the write waits, with no timeout.)
    Asynchronous {
        /// The time the replicas have, together.
        timeout: Duration,
    },
}

impl Replication {
    /// The time the replicas have.
    pub fn timeout(&self) -> Duration {
        match *self {
            Self::Synchronous { timeout } | Self::Asynchronous { timeout } => timeout,
        }
    }

    /// Whether writes wait for the replicas.
    pub fn is_synchronous(&self) -> bool {
        matches!(self, Self::Synchronous { .. })
    }
}

impl Default for Replication {
    /// Synchronous, with [`DEFAULT_REPLICATION_TIMEOUT`].
    fn default() -> Self {
        Self::Synchronous {
            timeout: DEFAULT_REPLICATION_TIMEOUT,
        }
    }
}

/// The write a replica failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReplicaOperation {
    /// [`Store::put`] (replicated as an overwrite).
    Put,
    /// [`Store::put_many`].
    PutMany,
    /// [`Store::delete`].
    Delete,
}

impl ReplicaOperation {
    /// `put`, `put_many` or `delete`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Put => "put",
            Self::PutMany => "put_many",
            Self::Delete => "delete",
        }
    }
}

impl fmt::Display for ReplicaOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A replica that did not take a write the primary took: it no longer mirrors the primary for
/// these flags until they are written again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaFailure {
    /// The replica (its display form, such as its URL).
    pub replica: String,
    /// Its position among the replicas, from 0.
    pub index: usize,
    /// The write.
    pub operation: ReplicaOperation,
    /// The flags written: one, or a `put_many`'s batch.
    pub flags: Vec<String>,
    /// Why: the replica's error, or the timeout.
    pub error: String,
    /// The replica did not answer in time (its write was abandoned: it may or may not have
    /// landed).
    pub timed_out: bool,
}

impl fmt::Display for ReplicaFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "replica {} ({}) failed {} of {}: {}",
            self.index,
            self.replica,
            self.operation,
            self.flags.join(", "),
            self.error
        )
    }
}

/// A write's result with the replica failures it met (empty when every replica took it).
#[derive(Debug)]
pub struct ReplicatedWrite<T> {
    /// The primary's result.
    pub value: T,
    /// The replicas that did not take the write.
    pub failures: Vec<ReplicaFailure>,
}

/// A primary store and replicas that mirror it: writes go to the primary, then to every replica
/// in parallel; reads and the change stream come from the primary.
///
/// The primary's error fails a write (and the replicas are not touched); a replica's error or
/// timeout does not, and is reported instead. The capabilities are the primary's:
/// [`Capabilities::atomic_batch`] describes the primary alone, since a replica may take part of
/// a batch, or none of it, and be reported.
///
/// # What replicas receive
///
/// It is the primary's resulting state: a `put` in any [`PutMode`] is written to
/// the replicas with [`PutMode::Overwrite`] (the replicas' versions are their own), a `delete`
/// as a delete, a `put_many` as a `put_many`. The writes of one flag through one
/// `ReplicatedStore` reach each replica in the order the primary applied them: each flag's
/// replication waits for the previous one of the same flag (the waiting counts against the
/// timeout). Writes that bypass this store (another process writing to the primary) are not
/// replicated.
///
/// # Compared with flipper-client
///
/// Python's `ReplicatedFeatureFlagStore` (flipper-client 1.3.2) in Rust, with its bugs fixed:
///
/// * **Modes.** [`Replication::Synchronous`] (the default) waits for the replicas;
///   [`Replication::Asynchronous`] returns after the primary. That is what flipper-client's README
///   describes; its code has the `asynch` flag inverted (`asynch=True`, the default, waits;
///   `asynch=False` returns at once).
/// * **Timeout.** The replicas are written in parallel and the timeout bounds them all together:
///   a write waits at most one timeout whatever the number of replicas. Python joins its replica
///   threads one after the other, each with the full timeout (N × timeout at worst).
/// * **Failures.** Python's replica errors vanish (a thread's exception is printed and lost).
///   Here a replica that fails or times out does not fail the write (the primary has it), but it
///   is reported three ways: a `tracing` warning, a counter per replica
///   ([`ReplicatedStore::replica_failures`]) and a [`ReplicaFailure`] event
///   ([`ReplicatedStore::subscribe`]); the `*_with_report` methods also return the failures of
///   their own write.
/// * **`create`** returns the flag (Python's returns `None`, which made a cache over a replicated
///   store cache "missing" right after a create).
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use std::time::Duration;
/// use flipper::store::{MemoryStore, ReplicatedStore, Replication, Store, StoreExt};
///
/// let primary = Arc::new(MemoryStore::new());
/// let replica = Arc::new(MemoryStore::new());
/// let store = ReplicatedStore::new(primary, vec![replica.clone()])
///     .with_replication(Replication::Synchronous { timeout: Duration::from_millis(500) });
/// let mut failures = store.subscribe();
/// store.create("beta", true, None).await?;
/// assert!(replica.get("beta").await?.is_some());
/// assert!(failures.try_recv().is_err()); // no replica failed
/// # Ok::<(), flipper::Error>(())
/// # }).unwrap();
/// ```
pub struct ReplicatedStore {
    shared: Arc<Shared>,
    mode: Replication,
}

impl ReplicatedStore {
    /// `primary` with `replicas`, replicated synchronously with [`DEFAULT_REPLICATION_TIMEOUT`].
    pub fn new(primary: Arc<dyn Store>, replicas: Vec<Arc<dyn Store>>) -> Self {
        Self {
            shared: Arc::new(Shared::new(primary, replicas)),
            mode: Replication::default(),
        }
    }

    /// With this mode (and timeout).
    pub fn with_replication(mut self, mode: Replication) -> Self {
        self.mode = mode;
        self
    }

    /// The mode.
    pub fn replication(&self) -> Replication {
        self.mode
    }

    /// The primary store.
    pub fn primary(&self) -> &Arc<dyn Store> {
        &self.shared.primary
    }

    /// The replicas, in order.
    pub fn replicas(&self) -> Vec<Arc<dyn Store>> {
        self.shared
            .replicas
            .iter()
            .map(|r| Arc::clone(&r.store))
            .collect()
    }

    /// Every replica failure from now on. A receiver that falls more than 256 events behind
    /// gets [`broadcast::error::RecvError::Lagged`] and misses the oldest.
    pub fn subscribe(&self) -> broadcast::Receiver<ReplicaFailure> {
        self.shared.failures.subscribe()
    }

    /// How many writes each replica failed (errors and timeouts) since this store was made, in
    /// replica order, with the replica's display form.
    pub fn replica_failures(&self) -> Vec<(String, u64)> {
        self.shared
            .replicas
            .iter()
            .map(|r| (r.name.clone(), r.failures.load(Ordering::Relaxed)))
            .collect()
    }

    /// [`Store::put`] that waits for the replicas (whatever the mode) and also returns their
    /// failures.
    ///
    /// # Errors
    /// The primary's, as [`Store::put`].
    pub async fn put_with_report(
        &self,
        item: &Item,
        mode: PutMode,
    ) -> Result<ReplicatedWrite<Version>> {
        let (value, replication) = self
            .shared
            .write(
                self.mode.timeout(),
                Op::Put(item.clone()),
                self.shared.primary.put(item, mode),
            )
            .await?;
        let failures = finish(replication, true).await;
        Ok(ReplicatedWrite { value, failures })
    }

    /// [`Store::put_many`] that waits for the replicas (whatever the mode) and also returns
    /// their failures.
    ///
    /// # Errors
    /// The primary's, as [`Store::put_many`].
    pub async fn put_many_with_report(
        &self,
        items: &[Item],
    ) -> Result<ReplicatedWrite<Vec<Version>>> {
        let (value, replication) = self.write_many(items).await?;
        let failures = finish(replication, true).await;
        Ok(ReplicatedWrite { value, failures })
    }

    /// [`Store::delete`] that waits for the replicas (whatever the mode) and also returns their
    /// failures.
    ///
    /// # Errors
    /// The primary's, as [`Store::delete`].
    pub async fn delete_with_report(&self, name: &str) -> Result<ReplicatedWrite<bool>> {
        let (value, replication) = self
            .shared
            .write(
                self.mode.timeout(),
                Op::Delete(name.to_owned()),
                self.shared.primary.delete(name),
            )
            .await?;
        let failures = finish(replication, true).await;
        Ok(ReplicatedWrite { value, failures })
    }

    async fn write_many(&self, items: &[Item]) -> Result<(Vec<Version>, InFlight)> {
        let result = self
            .shared
            .write(
                self.mode.timeout(),
                Op::PutMany(items.to_vec()),
                self.shared.primary.put_many(items),
            )
            .await;
        if let Err(e) = &result
            && !items.is_empty()
            && !self.shared.primary.capabilities().atomic_batch
        {
            tracing::warn!(
                primary = %self.shared.primary,
                flags = items.len(),
                error = %e,
                "replicated store: the primary failed a batch write, which was not replicated; \
                 the primary may hold its first flags and the replicas not: write the batch \
                 again once the primary is back"
            );
        }
        result
    }
}

impl fmt::Debug for ReplicatedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplicatedStore")
            .field("primary", &self.shared.primary)
            .field(
                "replicas",
                &self
                    .shared
                    .replicas
                    .iter()
                    .map(|r| r.name.as_str())
                    .collect::<Vec<_>>(),
            )
            .field("mode", &self.mode)
            .finish()
    }
}

impl fmt::Display for ReplicatedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (+{} replicas)",
            self.shared.primary,
            self.shared.replicas.len()
        )
    }
}

#[async_trait]
impl Store for ReplicatedStore {
    /// The primary's (see [`ReplicatedStore`] on `atomic_batch`).
    fn capabilities(&self) -> Capabilities {
        self.shared.primary.capabilities()
    }

    /// `replica_failures` per replica (label `replica`), then the primary's counters.
    fn counters(&self) -> Vec<StoreCounter> {
        let mut counters: Vec<StoreCounter> = self
            .replica_failures()
            .into_iter()
            .map(|(replica, failures)| {
                StoreCounter::new(
                    "replica_failures",
                    "Writes a replica failed or did not finish within the replication timeout.",
                    failures,
                )
                .label("replica", replica)
            })
            .collect();
        counters.extend(self.shared.primary.counters());
        counters
    }

    async fn get(&self, name: &str) -> Result<Option<Versioned>> {
        self.shared.primary.get(name).await
    }

    async fn put(&self, item: &Item, mode: PutMode) -> Result<Version> {
        let (version, replication) = self
            .shared
            .write(
                self.mode.timeout(),
                Op::Put(item.clone()),
                self.shared.primary.put(item, mode),
            )
            .await?;
        finish(replication, self.mode.is_synchronous()).await;
        Ok(version)
    }

    async fn put_many(&self, items: &[Item]) -> Result<Vec<Version>> {
        let (versions, replication) = self.write_many(items).await?;
        finish(replication, self.mode.is_synchronous()).await;
        Ok(versions)
    }

    async fn delete(&self, name: &str) -> Result<bool> {
        let (existed, replication) = self
            .shared
            .write(
                self.mode.timeout(),
                Op::Delete(name.to_owned()),
                self.shared.primary.delete(name),
            )
            .await?;
        finish(replication, self.mode.is_synchronous()).await;
        Ok(existed)
    }

    async fn list(&self, limit: Option<usize>, offset: usize) -> Result<Vec<ListEntry>> {
        self.shared.primary.list(limit, offset).await
    }

    fn watch(&self) -> Option<ChangeStream> {
        self.shared.primary.watch()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    fn memory() -> Arc<dyn Store> {
        Arc::new(MemoryStore::new())
    }

    crate::store_conformance_tests!(ReplicatedStore::new(memory(), vec![memory(), memory()]));

    #[test]
    fn replicates_in_place_without_a_runtime() {
        let replica = memory();
        let store = ReplicatedStore::new(memory(), vec![Arc::clone(&replica)]).with_replication(
            Replication::Asynchronous {
                timeout: Duration::from_secs(1),
            },
        );
        let item = Item::new("f", true, 1);
        let put = futures_util::FutureExt::now_or_never(store.put(&item, PutMode::Create));
        assert!(put.expect("memory stores are ready").is_ok());
        let got = futures_util::FutureExt::now_or_never(replica.get("f")).unwrap();
        assert_eq!(got.unwrap().unwrap().item, item);
        assert!(store.shared.chains.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn places_in_line_are_dropped_once_idle() {
        let store = ReplicatedStore::new(memory(), vec![memory()]);
        for i in 0..10 {
            store
                .put(&Item::new(format!("f{i}"), true, 1), PutMode::Overwrite)
                .await
                .unwrap();
        }
        store.delete("f1").await.unwrap();
        assert!(store.shared.chains.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_write_cancelled_during_the_primary_write_leaves_no_place_in_line() {
        let store = ReplicatedStore::new(memory(), vec![memory()]);
        let hung = store.shared.write(
            Duration::from_secs(1),
            Op::Delete("f".into()),
            std::future::pending::<Result<bool>>(),
        );
        assert!(
            tokio::time::timeout(Duration::from_millis(10), hung)
                .await
                .is_err()
        );
        assert!(store.shared.chains.lock().unwrap().is_empty());
        // The flag's writes still go through.
        assert!(!store.delete("f").await.unwrap());
    }

    #[test]
    fn long_batches_are_summarised_in_logs() {
        let flags: Vec<String> = (0..12).map(|i| format!("f{i}")).collect();
        assert_eq!(
            fanout::summary(&flags),
            "f0, f1, f2, f3, f4, f5, f6, f7, f8, f9 and 2 more"
        );
    }
}
