//! [`AppState`]: what every handler shares.

use std::fmt;
use std::sync::Arc;

use flipper::FeatureFlagClient;
use flipper::store::Store;
use tokio::task::JoinHandle;

use crate::auth::Tokens;
use crate::config::ServerConfig;
use crate::metrics::{InstrumentedStore, Metrics};
use crate::serve::ServeError;
use crate::snapshot::Snapshot;
use crate::stream::Streams;

/// The store, the client that writes through it, the snapshot that evaluation reads, and the
/// tokens. Cheap to clone; the task that keeps the snapshot current stops when the last clone
/// is dropped.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    client: FeatureFlagClient,
    snapshot: Arc<Snapshot>,
    metrics: Arc<Metrics>,
    /// The change streams (`GET /api/v1/stream`).
    streams: Arc<Streams>,
    tokens: Tokens,
    max_body_bytes: usize,
    /// Random per process: ETags from an earlier process never match.
    instance: u64,
    /// The task that keeps the snapshot current.
    sync: JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.sync.abort();
    }
}

impl AppState {
    /// Loads the flags from `store` and starts following its changes.
    ///
    /// # Errors
    /// [`ServeError::Store`] when the first load fails for a reason retrying cannot fix (a
    /// retryable failure leaves the server running but not ready).
    pub async fn start(config: &ServerConfig, store: Arc<dyn Store>) -> Result<Self, ServeError> {
        let snapshot = Arc::new(Snapshot::with_log_capacity(config.stream_log_size));
        let metrics = Arc::new(Metrics::new(Arc::clone(&snapshot)));
        // Every store call (the sync task's and the handlers') is timed.
        let store: Arc<dyn Store> = Arc::new(InstrumentedStore::new(store, Arc::clone(&metrics)));
        let task = crate::sync::start(
            Arc::clone(&store),
            Arc::clone(&snapshot),
            config.poll_interval,
        )
        .await
        .map_err(|source| ServeError::Store { source })?;
        Ok(Self {
            inner: Arc::new(Inner {
                client: FeatureFlagClient::from_arc(store),
                snapshot,
                metrics,
                streams: Arc::new(Streams::new(config.heartbeat_interval)),
                tokens: Tokens::new(config.admin_token.as_deref(), config.sdk_token.as_deref()),
                max_body_bytes: config.max_body_bytes,
                instance: instance_id(),
                sync: task,
            }),
        })
    }

    /// The client writes go through.
    pub fn client(&self) -> &FeatureFlagClient {
        &self.inner.client
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        self.inner.client.store()
    }

    /// The flags evaluation reads.
    pub fn snapshot(&self) -> &Arc<Snapshot> {
        &self.inner.snapshot
    }

    /// Whether the task that keeps the snapshot current still runs (it only ends by a bug).
    pub(crate) fn is_following(&self) -> bool {
        !self.inner.sync.is_finished()
    }

    /// Ends every change stream (`GET /api/v1/stream`), now and from now on: a graceful
    /// shutdown calls it, since open streams would otherwise hold it up.
    pub fn close_streams(&self) {
        self.inner.streams.close();
    }

    pub(crate) fn streams(&self) -> &Arc<Streams> {
        &self.inner.streams
    }

    /// The server's metrics (`GET /metrics`).
    pub(crate) fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub(crate) fn tokens(&self) -> &Tokens {
        &self.inner.tokens
    }

    pub(crate) fn max_body_bytes(&self) -> usize {
        self.inner.max_body_bytes
    }

    pub(crate) fn instance(&self) -> u64 {
        self.inner.instance
    }
}

impl fmt::Debug for AppState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppState")
            .field("store", &self.store().to_string())
            .field("version", &self.inner.snapshot.version())
            .finish_non_exhaustive()
    }
}

/// A random number, different in each process.
pub(crate) fn instance_id() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    RandomState::new().hash_one((nanos, std::process::id()))
}
