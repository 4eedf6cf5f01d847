//! The Thrift store's watch: this store's writes as they are made, and a poll (`List`) that
//! finds other processes' writes by comparing each flag's version with the last one reported.
//!
//! A poll holds the store's gate alone: no write through this store is in flight while it
//! lists, and every write that finished before it has already put its change in the channel,
//! which the poll drains first. So a poll never reports a state older than a write the stream
//! already told of.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};

use super::ThriftStore;
use crate::store::{Change, ChangeStream, Store, Version};

/// The first delay before taking the first listing again; it doubles up to the poll interval.
const RETRY_MIN: Duration = Duration::from_millis(100);

/// Starts following the store; `None` outside a Tokio runtime.
pub(super) fn start(store: &ThriftStore) -> Option<ChangeStream> {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::warn!(store = %store, "ThriftStore::watch called outside a Tokio runtime");
        return None;
    };
    // Subscribed now: every write made after `watch` returns is in this channel.
    let writes = store.inner.changes.subscribe();
    let (tx, rx) = mpsc::channel(crate::store::memory::WATCH_BUFFER);
    let follower = Follower {
        store: store.clone(),
        writes,
        tx,
        known: HashMap::new(),
        first: Some(store.inner.watchers.connecting()),
        failing: false,
    };
    runtime.spawn(follower.run());
    Some(crate::store::gate::channel_stream(rx))
}

/// The consumer went away.
struct Gone;

struct Follower {
    store: ThriftStore,
    writes: broadcast::Receiver<Change>,
    tx: mpsc::Sender<Change>,
    /// Each flag's version as last reported.
    known: HashMap<String, Version>,
    /// Held until the first listing.
    first: Option<crate::store::gate::Connecting>,
    /// Whether the last poll failed (its failure was logged).
    failing: bool,
}

impl Follower {
    async fn run(mut self) {
        let _ = self.follow().await;
    }

    async fn follow(&mut self) -> Result<(), Gone> {
        let every = self.store.inner.config.poll_interval();
        if let Some(every) = every {
            self.first_listing(every).await?;
        }
        self.first = None;
        // Without polling the timer never fires (its branch is off).
        let period = every.unwrap_or(Duration::from_secs(3600));
        let mut poll = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = self.tx.closed() => return Err(Gone),
                write = self.writes.recv() => match write {
                    Ok(change) => self.own(change).await?,
                    Err(broadcast::error::RecvError::Lagged(_)) => self.resync().await?,
                    Err(broadcast::error::RecvError::Closed) => return Ok(()),
                },
                _ = poll.tick(), if every.is_some() => self.poll().await?,
            }
        }
    }

    /// Takes the first listing (retrying with backoff), then opens the stream with `Resync`.
    async fn first_listing(&mut self, longest: Duration) -> Result<(), Gone> {
        let mut delay = RETRY_MIN;
        loop {
            match self.listing(true).await {
                Ok(()) => return Ok(()),
                Err(Some(error)) => {
                    tracing::warn!(store = %self.store, %error, "the Thrift watch cannot list the flags; retrying");
                }
                Err(None) => return Err(Gone),
            }
            tokio::select! {
                () = self.tx.closed() => return Err(Gone),
                () = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(longest.max(RETRY_MIN));
        }
    }

    /// Missed some of this store's writes: a new listing, then `Resync`.
    async fn resync(&mut self) -> Result<(), Gone> {
        match self.listing(true).await {
            Ok(()) => Ok(()),
            Err(None) => Err(Gone),
            Err(Some(error)) => {
                tracing::warn!(store = %self.store, %error, "the Thrift watch fell behind and cannot list the flags; telling watchers to reload");
                self.known.clear();
                self.emit(Change::Resync).await
            }
        }
    }

    /// A poll: changes since the last listing.
    async fn poll(&mut self) -> Result<(), Gone> {
        match self.listing(false).await {
            Ok(()) => {
                if self.failing {
                    tracing::info!(store = %self.store, "the Thrift watch lists the flags again");
                }
                self.failing = false;
                Ok(())
            }
            Err(None) => Err(Gone),
            Err(Some(error)) => {
                if !self.failing {
                    tracing::warn!(store = %self.store, %error, "the Thrift watch cannot poll the flags; retrying every poll interval");
                }
                self.failing = true;
                Ok(())
            }
        }
    }

    /// Lists every flag with this store's writes held back, then reports. With `fresh`, the
    /// listing replaces what was known and the stream gets `Resync`; otherwise each difference
    /// is reported. `Err(None)`: the consumer went away.
    async fn listing(&mut self, fresh: bool) -> Result<(), Option<crate::Error>> {
        let changes = self.list(fresh).await.map_err(Some)?;
        // Sent with the gate open again: a slow consumer holds back no write.
        for change in changes {
            self.emit(change).await.map_err(|Gone| None)?;
        }
        Ok(())
    }

    /// The listing's changes, in order.
    async fn list(&mut self, fresh: bool) -> crate::Result<Vec<Change>> {
        let store = self.store.clone();
        let _gate = store.inner.gate.write().await;
        let mut changes = Vec::new();
        // Writes that finished before the gate: reported first (or, fresh, in the listing).
        loop {
            match self.writes.try_recv() {
                Ok(change) if !fresh => {
                    self.remember(&change);
                    changes.push(change);
                }
                Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) => {}
                Err(_) => break,
            }
        }
        let entries = store.list(None, 0).await?;
        let mut now = HashMap::with_capacity(entries.len());
        let mut unreadable = HashSet::new();
        for entry in entries {
            match entry {
                Ok(flag) => {
                    let name = flag.item.feature_name.clone();
                    if !fresh && self.known.get(&name) != Some(&flag.version) {
                        changes.push(Change::Put {
                            item: flag.item,
                            version: flag.version.clone(),
                        });
                    }
                    now.insert(name, flag.version);
                }
                Err(corrupt) => {
                    tracing::warn!(store = %self.store, flag = %corrupt.key, error = %corrupt.error, "the Thrift server listed an unreadable flag; ignored");
                    unreadable.insert(corrupt.key);
                }
            }
        }
        if fresh {
            changes.push(Change::Resync);
        } else {
            let mut gone: Vec<&String> = self
                .known
                .keys()
                .filter(|name| !now.contains_key(*name) && !unreadable.contains(*name))
                .collect();
            gone.sort();
            changes.extend(
                gone.into_iter()
                    .map(|name| Change::Delete { name: name.clone() }),
            );
        }
        self.known = now;
        Ok(changes)
    }

    /// One of this store's writes.
    async fn own(&mut self, change: Change) -> Result<(), Gone> {
        self.remember(&change);
        self.emit(change).await
    }

    /// What a change makes known.
    fn remember(&mut self, change: &Change) {
        match change {
            Change::Put { item, version } => {
                self.known
                    .insert(item.feature_name.clone(), version.clone());
            }
            Change::Delete { name } => {
                self.known.remove(name);
            }
            Change::Resync => {}
        }
    }

    async fn emit(&self, change: Change) -> Result<(), Gone> {
        self.tx.send(change).await.map_err(|_| Gone)
    }
}
