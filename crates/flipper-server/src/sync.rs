//! Keeping the [`Snapshot`] current: load it from the store, then follow `store.watch()`
//! (put, delete, resync) or, for a store that cannot report changes, reload it every poll
//! interval.
//!
//! A store whose watch misses other processes' writes (the JSON-file store) is both watched
//! and polled. The watch is subscribed *before* each load, so no change falls between the
//! load and the stream.
//!
//! Every change applied here reaches the snapshot's change log (and so `GET /api/v1/stream`)
//! with the store's version; a reload is logged as the puts and deletes it amounts to.

use std::sync::Arc;
use std::time::Duration;

use flipper::store::{Change, ChangeStream, Store, Versioned};
use futures_util::StreamExt;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use crate::snapshot::Snapshot;

/// Reads every flag into `snapshot`. Unreadable flags are logged and left out (they evaluate
/// as missing).
///
/// # Errors
/// The store's errors.
pub(crate) async fn load(store: &dyn Store, snapshot: &Snapshot) -> flipper::Result<()> {
    let entries = store.list(None, 0).await?;
    let mut items = Vec::with_capacity(entries.len());
    for entry in entries {
        match entry {
            Ok(versioned) => items.push(versioned),
            Err(corrupt) => tracing::warn!(
                flag = %corrupt.key,
                error = %corrupt.error,
                "unreadable flag left out of the snapshot"
            ),
        }
    }
    snapshot.replace_versioned(items);
    Ok(())
}

/// Subscribes to the store's changes, loads the snapshot, and spawns the task that keeps it
/// current.
///
/// # Errors
/// The first load's error when retrying cannot fix it (see [`flipper::Error::is_retryable`]).
/// A retryable failure is logged, and the task keeps trying (the server is not ready until it
/// succeeds).
pub(crate) async fn start(
    store: Arc<dyn Store>,
    snapshot: Arc<Snapshot>,
    poll_interval: Duration,
) -> flipper::Result<JoinHandle<()>> {
    let changes = subscribe(&*store);
    let loaded = match load(&*store, &snapshot).await {
        Ok(()) => true,
        Err(error) if error.is_retryable() => {
            tracing::warn!(%error, "cannot load the flags yet; retrying");
            false
        }
        Err(error) => return Err(error),
    };
    let task = Follower {
        store,
        snapshot,
        poll_interval,
        reload_pending: !loaded,
    };
    Ok(tokio::spawn(task.run(changes)))
}

fn subscribe(store: &dyn Store) -> Option<ChangeStream> {
    if store.capabilities().watch {
        store.watch()
    } else {
        None
    }
}

struct Follower {
    store: Arc<dyn Store>,
    snapshot: Arc<Snapshot>,
    poll_interval: Duration,
    /// A load failed: try again at the next tick.
    reload_pending: bool,
}

impl Follower {
    async fn run(mut self, mut changes: Option<ChangeStream>) {
        let poll_always = !self.store.capabilities().watch_external;
        let mut ticks =
            tokio::time::interval_at(Instant::now() + self.poll_interval, self.poll_interval);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            let next_change = async {
                match changes.as_mut() {
                    Some(stream) => stream.next().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                change = next_change => match change {
                    Some(change) => self.apply(change).await,
                    None => {
                        tracing::warn!("the store's change stream ended; subscribing again");
                        changes = subscribe(&*self.store);
                        self.reload().await;
                    }
                },
                _ = ticks.tick() => {
                    if poll_always || changes.is_none() || self.reload_pending {
                        self.reload().await;
                    }
                }
            }
        }
    }

    async fn apply(&mut self, change: Change) {
        match change {
            Change::Put { item, version } => {
                self.snapshot.put_versioned(Versioned { item, version })
            }
            Change::Delete { name } => self.snapshot.remove(&name),
            // `Resync` and any kind of change this version does not know.
            _ => self.reload().await,
        }
    }

    async fn reload(&mut self) {
        match load(&*self.store, &self.snapshot).await {
            Ok(()) => {
                if self.reload_pending {
                    tracing::info!("flags loaded");
                }
                self.reload_pending = false;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot reload the flags; keeping the last ones");
                self.reload_pending = true;
            }
        }
    }
}
