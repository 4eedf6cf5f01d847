//! [`Status`]: how current the live flags are, where they came from, and the last error.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

/// Where the flags being served came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// The store.
    Store,
    /// A bootstrap file (the export format), given by the application.
    Bootstrap(PathBuf),
    /// The snapshot persisted by an earlier run (a cold start while the store was unreachable).
    Persisted(PathBuf),
}

/// A report on the live flags: see [`LiveFlags::status`](super::LiveFlags::status).
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use flipper::live::{LiveFlags, LiveOptions, Source};
/// use flipper::store::MemoryStore;
/// use std::sync::Arc;
/// let live = LiveFlags::start(Arc::new(MemoryStore::new()), LiveOptions::default()).await;
/// let status = live.status();
/// assert!(status.initialized);
/// assert_eq!(status.source, Some(Source::Store));
/// assert!(status.following && status.last_error.is_none());
/// # });
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Status {
    /// Whether flags were loaded (before that, evaluations give the caller's default).
    pub initialized: bool,
    /// Where the flags served now came from; `None` before the first load.
    pub source: Option<Source>,
    /// The set version (see [`FlagSet::version`](super::FlagSet::version)).
    pub version: u64,
    /// How many flags are held.
    pub flags: usize,
    /// When the flags were last known to match the store: the last successful load or
    /// change received from its watch.
    pub last_sync: Option<SystemTime>,
    /// How old the flags may be: zero while following the store's change stream with no error
    /// since the last load, otherwise the time since [`Status::last_sync`]; `None` when never
    /// synchronised with the store.
    pub age: Option<Duration>,
    /// The last failure to read the store, cleared by the next successful load.
    pub last_error: Option<String>,
    /// Since when reading the store fails (the first failure of the current outage).
    pub failing_since: Option<SystemTime>,
    /// Whether the store's change stream is open and the flags were loaded since it opened:
    /// changes arrive as they happen.
    ///
    /// Stores whose stream reconnects by itself (Redis, PostgreSQL, a flipper server) report an
    /// outage only once it is over (a resync); to see one while it lasts (as `last_error` and a
    /// growing `age`), also poll them:
    /// [`LiveOptions::always_poll`](super::LiveOptions::always_poll).
    pub following: bool,
    /// Whether the task that keeps the flags current runs (false for flags from a file
    /// without a store, and if that task ever stopped).
    pub running: bool,
}

impl Status {
    /// Whether the flags may be older than `max_age` (or were never synchronised with the
    /// store).
    pub fn is_stale(&self, max_age: Duration) -> bool {
        self.age.is_none_or(|age| age > max_age)
    }
}

/// What the follow task records; [`Status`] is computed from it.
#[derive(Debug, Default)]
pub(crate) struct SyncState {
    pub(crate) source: Option<Source>,
    last_sync: Option<(SystemTime, Instant)>,
    last_error: Option<String>,
    failing_since: Option<SystemTime>,
    following: bool,
}

impl SyncState {
    /// The flags now match the store (a load, or a change from the watch).
    pub(crate) fn synced(&mut self) {
        self.last_sync = Some((SystemTime::now(), Instant::now()));
    }

    /// A full load from the store succeeded.
    pub(crate) fn loaded(&mut self, following: bool) {
        self.synced();
        self.source = Some(Source::Store);
        self.last_error = None;
        self.failing_since = None;
        self.following = following;
    }

    /// Reading the store failed.
    pub(crate) fn failed(&mut self, error: &crate::Error) {
        self.last_error = Some(error.to_string());
        self.failing_since.get_or_insert_with(SystemTime::now);
        self.following = false;
    }

    /// Whether the last attempt to read the store failed.
    pub(crate) fn is_failing(&self) -> bool {
        self.last_error.is_some()
    }

    /// The change stream ended or is no longer trusted (a reload is due).
    pub(crate) fn not_following(&mut self) {
        self.following = false;
    }

    pub(crate) fn report(
        &self,
        initialized: bool,
        version: u64,
        flags: usize,
        running: bool,
    ) -> Status {
        let age = self.last_sync.map(|(_, at)| {
            if self.following && self.last_error.is_none() {
                Duration::ZERO
            } else {
                at.elapsed()
            }
        });
        Status {
            initialized,
            source: self.source.clone(),
            version,
            flags,
            last_sync: self.last_sync.map(|(t, _)| t),
            age,
            last_error: self.last_error.clone(),
            failing_since: self.failing_since,
            following: self.following,
            running,
        }
    }
}
