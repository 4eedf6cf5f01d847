//! [`AppState`]: what every handler shares.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use flipper::FeatureFlagClient;
use flipper::live::{LiveFlags, LiveOptions};
use flipper::store::Store;

use crate::auth::Tokens;
use crate::changelog::ChangeFeed;
use crate::config::ServerConfig;
use crate::metrics::{InstrumentedStore, Metrics};
use crate::serve::ServeError;
use crate::stream::Streams;

/// The store, the client that writes through it, the live flags that evaluation reads, and
/// the tokens. Cheap to clone; the task that keeps the flags current stops when the last clone
/// (and the last open change stream) is gone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    client: FeatureFlagClient,
    /// Every flag in memory, kept current from the store (the library's live flags).
    live: LiveFlags,
    /// The log of their recent changes, for the change stream.
    feed: Arc<ChangeFeed>,
    metrics: Arc<Metrics>,
    /// The change streams (`GET /api/v1/stream`).
    streams: Arc<Streams>,
    tokens: Tokens,
    max_body_bytes: usize,
    /// Random per process: ETags from an earlier process never match.
    instance: u64,
}

impl AppState {
    /// Loads the flags from `store` and starts following its changes.
    ///
    /// # Errors
    /// [`ServeError::Store`] when the first load fails for a reason retrying cannot fix (a
    /// retryable failure leaves the server running but not ready).
    pub async fn start(config: &ServerConfig, store: Arc<dyn Store>) -> Result<Self, ServeError> {
        let feed = Arc::new(ChangeFeed::new(config.stream_log_size));
        let metrics = Arc::new(Metrics::new());
        // Every store call (the live flags' and the handlers') is timed.
        let store: Arc<dyn Store> = Arc::new(InstrumentedStore::new(store, Arc::clone(&metrics)));
        let options = LiveOptions::default()
            // The first load attempt, however long it takes (the store's own timeouts apply).
            .init_timeout(Duration::MAX)
            .poll_interval(config.poll_interval)
            .retry(
                RETRY_FIRST.min(config.poll_interval),
                config.poll_interval.max(RETRY_FIRST),
            )
            .observer(Arc::clone(&feed) as _);
        let live = LiveFlags::try_start(Arc::clone(&store), options)
            .await
            .map_err(|source| ServeError::Store { source })?;
        metrics.follow(&live);
        Ok(Self {
            inner: Arc::new(Inner {
                client: FeatureFlagClient::from_arc(store),
                live,
                feed,
                metrics,
                streams: Arc::new(Streams::new(config.heartbeat_interval)),
                tokens: Tokens::new(config.admin_token.as_deref(), config.sdk_token.as_deref()),
                max_body_bytes: config.max_body_bytes,
                instance: instance_id(),
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

    /// The flags evaluation reads: the library's live flags over the store.
    pub fn live(&self) -> &LiveFlags {
        &self.inner.live
    }

    /// The log of the flags' recent changes.
    pub(crate) fn feed(&self) -> &Arc<ChangeFeed> {
        &self.inner.feed
    }

    /// Whether the task that keeps the flags current still runs (it only ends by a bug).
    pub(crate) fn is_following(&self) -> bool {
        self.inner.live.status().running
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
            .field("version", &self.inner.live.version())
            .finish_non_exhaustive()
    }
}

/// The first delay before loading again from a failing store; the longest is the poll
/// interval.
const RETRY_FIRST: Duration = Duration::from_millis(100);

/// A random number, different in each process.
pub(crate) fn instance_id() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    RandomState::new().hash_one((nanos, std::process::id()))
}
