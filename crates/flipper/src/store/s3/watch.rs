//! The S3 store's watch: this store's own writes as they complete, and other processes'
//! writes found by polling.
//!
//! A poll lists every object under the prefix with its ETag and compares it with what
//! watchers were last told (`known`); only objects whose ETag changed are read (`GET`), and
//! objects gone from the listing are reported deleted. The first successful poll is the
//! baseline and is announced with [`Change::Resync`] (a write made before it may be in it
//! unreported), before any of this store's writes; so is the first successful poll after
//! failed ones.
//!
//! **Own writes during a poll.** A listing can be older than a write this store reported
//! while the listing was being read. So after its reads, a poll first handles the own writes
//! that arrived meanwhile, and leaves every flag they touched out of its comparison (the next
//! poll checks them again): a poll never reports a state older than an own write already
//! reported.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tokio::sync::broadcast::{self, error::TryRecvError};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Fetched, S3Store};
use crate::error::Error;
use crate::store::{Change, ChangeStream, Version, broadcast_stream};

/// How far each poll interval is moved, either way, so that processes polling one bucket
/// spread out.
const JITTER: f64 = 0.1;

/// Starts following the store's changes: own writes only when polling is off; otherwise
/// a polling task on the current Tokio runtime (`None` outside one).
pub(super) fn start(store: &S3Store) -> Option<ChangeStream> {
    let own = store.inner.changes.subscribe();
    let Some(every) = store.config().poll_interval() else {
        return Some(broadcast_stream(own));
    };
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::warn!(store = %store, "S3Store::watch called outside a Tokio runtime");
        return None;
    };
    let (tx, rx) = mpsc::channel(crate::store::memory::WATCH_BUFFER);
    let poller = Poller {
        store: store.clone(),
        own,
        tx,
        every,
        known: HashMap::new(),
        touched: HashSet::new(),
        healthy: false,
        failures: 0,
    };
    tracing::info!(store = %store, every = ?every, "watching S3 changes by polling");
    runtime.spawn(poller.run());
    Some(Box::pin(futures_util::stream::unfold(
        rx,
        |mut rx| async move { rx.recv().await.map(|change| (change, rx)) },
    )))
}

/// The watcher dropped its stream.
struct Closed;

struct Poller {
    store: S3Store,
    /// This store's writes.
    own: broadcast::Receiver<Change>,
    tx: mpsc::Sender<Change>,
    every: Duration,
    /// What watchers were last told (or the baseline): the version of every object under the
    /// prefix, flags and unreadable objects alike.
    known: HashMap<String, Version>,
    /// Flags this store's writes reported since the current poll began.
    touched: HashSet<String>,
    /// Whether the last poll succeeded, so `known` is current.
    healthy: bool,
    /// Failed polls in a row.
    failures: u32,
}

impl Poller {
    async fn run(mut self) {
        let closed = self.tx.clone();
        // The baseline at once.
        let mut next = Instant::now();
        loop {
            // Polls first: the baseline goes before any own write (which then follows its
            // resync), and a poll handles the own writes waiting when it ends.
            let step = tokio::select! {
                biased;
                () = closed.closed() => Err(Closed),
                () = tokio::time::sleep_until(next) => {
                    let step = self.poll().await;
                    next = Instant::now() + jittered(self.every);
                    step
                }
                own = self.own.recv() => self.on_own(own).await,
            };
            if step.is_err() {
                return;
            }
        }
    }

    async fn emit(&mut self, change: Change) -> Result<(), Closed> {
        self.tx.send(change).await.map_err(|_| Closed)
    }

    /// Reports one of this store's writes, and remembers it.
    async fn on_own(
        &mut self,
        own: Result<Change, broadcast::error::RecvError>,
    ) -> Result<(), Closed> {
        match own {
            Ok(change) => {
                match &change {
                    Change::Put { item, version } => {
                        let name = item.feature_name.clone();
                        self.known.insert(name.clone(), version.clone());
                        self.touched.insert(name);
                    }
                    Change::Delete { name } => {
                        self.known.remove(name);
                        self.touched.insert(name.clone());
                    }
                    Change::Resync => {}
                }
                self.emit(change).await
            }
            // Writes were missed: the watcher reloads; the next poll compares as usual.
            Err(broadcast::error::RecvError::Lagged(_)) => self.emit(Change::Resync).await,
            // The store (held here) cannot be gone.
            Err(broadcast::error::RecvError::Closed) => Err(Closed),
        }
    }

    /// Handles the own writes that arrived while the poll was reading.
    async fn drain_own(&mut self) -> Result<(), Closed> {
        loop {
            let own = match self.own.try_recv() {
                Ok(change) => Ok(change),
                Err(TryRecvError::Lagged(n)) => Err(broadcast::error::RecvError::Lagged(n)),
                Err(TryRecvError::Empty | TryRecvError::Closed) => return Ok(()),
            };
            self.on_own(own).await?;
        }
    }

    /// Lists the objects and reports what changed since the last poll.
    async fn poll(&mut self) -> Result<(), Closed> {
        self.touched.clear();
        let listing = match self.store.keys().await {
            Ok(listing) => listing,
            Err(e) => return self.failed(&e),
        };
        if !self.healthy {
            // The baseline: watchers reload (and get what the listing has, or newer); own
            // writes made meanwhile follow the resync.
            self.known = listing.into_iter().collect();
            if self.failures > 0 {
                tracing::info!(store = %self.store, "polling S3 works again; watchers resync");
            }
            self.healthy = true;
            self.failures = 0;
            self.emit(Change::Resync).await?;
            return self.drain_own().await;
        }
        let changed: Vec<String> = listing
            .iter()
            .filter(|(name, version)| self.known.get(name) != Some(version))
            .map(|(name, _)| name.clone())
            .collect();
        let mut reads = Vec::with_capacity(changed.len());
        for (name, fetched) in self.store.fetch_all(changed).await {
            match fetched {
                Ok(fetched) => reads.push((name, fetched)),
                Err(e) => return self.failed(&e),
            }
        }
        self.drain_own().await?;
        for (name, fetched) in reads {
            if !self.touched.contains(&name) {
                self.observe(name, fetched).await?;
            }
        }
        let present: HashSet<&str> = listing.iter().map(|(name, _)| name.as_str()).collect();
        let gone: Vec<String> = self
            .known
            .keys()
            .filter(|name| !present.contains(name.as_str()) && !self.touched.contains(*name))
            .cloned()
            .collect();
        for name in gone {
            self.observe(name, None).await?;
        }
        Ok(())
    }

    /// Reports an object as read (`None`: no object there) unless watchers know it already.
    async fn observe(&mut self, name: String, fetched: Option<Fetched>) -> Result<(), Closed> {
        match fetched {
            None => {
                if self.known.remove(&name).is_some() {
                    self.emit(Change::Delete { name }).await?;
                }
            }
            Some(Fetched::Flag(versioned)) => {
                if self.known.get(&name) != Some(&versioned.version) {
                    self.known.insert(name, versioned.version.clone());
                    self.emit(Change::Put {
                        item: versioned.item,
                        version: versioned.version,
                    })
                    .await?;
                }
            }
            Some(Fetched::Unreadable { version, error }) => {
                if self.known.get(&name) != Some(&version) {
                    tracing::warn!(
                        store = %self.store,
                        flag = %name,
                        %error,
                        "an object under the prefix is not a readable flag; watchers resync"
                    );
                    self.known.insert(name, version);
                    self.emit(Change::Resync).await?;
                }
            }
        }
        Ok(())
    }

    /// Notes a failed poll; the next successful one is a new baseline (and a resync).
    fn failed(&mut self, error: &Error) -> Result<(), Closed> {
        self.failures = self.failures.saturating_add(1);
        if self.failures == 1 {
            tracing::warn!(
                store = %self.store,
                %error,
                retry_in = ?self.every,
                "polling S3 failed; retrying (watchers resync once it works again)"
            );
        } else {
            tracing::debug!(store = %self.store, %error, failures = self.failures, "polling S3 failed again");
        }
        self.healthy = false;
        Ok(())
    }
}

/// `every`, moved by up to [`JITTER`] of itself either way.
fn jittered(every: Duration) -> Duration {
    every.mul_f64(1.0 - JITTER + 2.0 * JITTER * fastrand::f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_are_jittered_within_ten_percent() {
        let every = Duration::from_secs(10);
        for _ in 0..1000 {
            let d = jittered(every);
            assert!(
                d >= Duration::from_secs(9) && d <= Duration::from_secs(11),
                "{d:?}"
            );
        }
    }
}
