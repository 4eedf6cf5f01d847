//! [`LiveOptions`]: how live flags start, follow their store, recover and notify.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use flipper_core::eval::Env;

use super::SetObserver;
use super::follow::FollowOptions;
use crate::client::SystemEnv;

/// How [`LiveFlags`](super::LiveFlags) starts, follows its store and recovers. Build it from
/// [`LiveOptions::default`] with the setters.
///
/// ```
/// use std::time::Duration;
/// use flipper::live::LiveOptions;
/// let options = LiveOptions::default()
///     .init_timeout(Duration::from_secs(2))
///     .poll_interval(Duration::from_secs(30))
///     .persist("/var/cache/myapp/flags.json");
/// ```
#[derive(Clone)]
pub struct LiveOptions {
    pub(super) init_timeout: Duration,
    poll_interval: Duration,
    poll_jitter: f64,
    always_poll: bool,
    retry_min: Duration,
    retry_max: Duration,
    load_timeout: Duration,
    pub(super) own_write_grace: Duration,
    pub(super) listener_queue: usize,
    pub(super) bootstrap: Option<PathBuf>,
    pub(super) persist: Option<PathBuf>,
    pub(super) persist_debounce: Duration,
    pub(super) env: Arc<dyn Env + Send + Sync>,
    pub(super) observer: Option<Arc<dyn SetObserver>>,
}

/// How long [`LiveFlags::start`](super::LiveFlags::start) waits for the first load by default.
pub const DEFAULT_INIT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a store without (complete) change notification is reloaded by default.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(10);

impl Default for LiveOptions {
    fn default() -> Self {
        Self {
            init_timeout: DEFAULT_INIT_TIMEOUT,
            poll_interval: DEFAULT_POLL_INTERVAL,
            poll_jitter: 0.1,
            always_poll: false,
            retry_min: Duration::from_millis(100),
            retry_max: Duration::from_secs(30),
            load_timeout: Duration::from_secs(30),
            own_write_grace: Duration::from_secs(5),
            listener_queue: 64,
            bootstrap: None,
            persist: None,
            persist_debounce: Duration::from_secs(1),
            env: Arc::new(SystemEnv),
            observer: None,
        }
    }
}

impl LiveOptions {
    /// How long [`LiveFlags::start`](super::LiveFlags::start) waits for the first load
    /// ([`DEFAULT_INIT_TIMEOUT`]).
    #[must_use]
    pub fn init_timeout(mut self, timeout: Duration) -> Self {
        self.init_timeout = timeout;
        self
    }

    /// How often to reload a store that cannot report changes, or whose reports miss other
    /// processes' writes ([`DEFAULT_POLL_INTERVAL`]). At least 1 ms.
    #[must_use]
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// How much each poll interval varies, as a fraction of it either way (0.1 by default:
    /// ±10%), so that many processes spread their polls.
    #[must_use]
    pub fn poll_jitter(mut self, fraction: f64) -> Self {
        self.poll_jitter = if fraction.is_finite() {
            fraction.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self
    }

    /// Also reload every poll interval when following a complete change stream (off by
    /// default): a safety net, and a way to notice an outage that the stream hides.
    #[must_use]
    pub fn always_poll(mut self, yes: bool) -> Self {
        self.always_poll = yes;
        self
    }

    /// The first and the longest delay between attempts to load from a failing store (100 ms
    /// and 30 s by default); the delay doubles from one to the other, with jitter.
    #[must_use]
    pub fn retry(mut self, first: Duration, longest: Duration) -> Self {
        self.retry_min = first;
        self.retry_max = longest;
        self
    }

    /// How long one load may take before it counts as failed (30 s by default).
    #[must_use]
    pub fn load_timeout(mut self, timeout: Duration) -> Self {
        self.load_timeout = timeout;
        self
    }

    /// How long a flag written through [`LiveFlags::client`](super::LiveFlags::client) ignores
    /// watched changes older than that write, waiting for the store to report the write itself
    /// (5 s by default). After that the flag is read again from the store.
    #[must_use]
    pub fn own_write_grace(mut self, grace: Duration) -> Self {
        self.own_write_grace = grace;
        self
    }

    /// How many notifications a listener may have queued before new ones are merged into the
    /// last (64 by default).
    #[must_use]
    pub fn listener_queue(mut self, capacity: usize) -> Self {
        self.listener_queue = capacity.max(1);
        self
    }

    /// A file in the export format to serve when the store cannot be loaded at start (and no
    /// persisted snapshot can be read).
    #[must_use]
    pub fn bootstrap(mut self, path: impl Into<PathBuf>) -> Self {
        self.bootstrap = Some(path.into());
        self
    }

    /// Keeps the last flags loaded from the store in this file (export format, written
    /// atomically, at most once per [`LiveOptions::persist_debounce`]), and serves it when the
    /// store cannot be loaded at start.
    #[must_use]
    pub fn persist(mut self, path: impl Into<PathBuf>) -> Self {
        self.persist = Some(path.into());
        self
    }

    /// How long changes settle before the snapshot is persisted (1 s by default).
    #[must_use]
    pub fn persist_debounce(mut self, debounce: Duration) -> Self {
        self.persist_debounce = debounce;
        self
    }

    /// The clock and random source of evaluations ([`SystemEnv`] by default).
    #[must_use]
    pub fn env(mut self, env: impl Env + Send + Sync + 'static) -> Self {
        self.env = Arc::new(env);
        self
    }

    /// Sees every change as it is made (see [`SetObserver`]).
    #[must_use]
    pub fn observer(mut self, observer: Arc<dyn SetObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    pub(super) fn follow(&self) -> FollowOptions {
        FollowOptions {
            poll_interval: self.poll_interval,
            poll_jitter: self.poll_jitter,
            always_poll: self.always_poll,
            retry_min: self.retry_min,
            retry_max: self.retry_max,
            load_timeout: self.load_timeout,
            pin_check: (self.own_write_grace / 4)
                .clamp(Duration::from_millis(10), Duration::from_secs(1)),
        }
    }
}

impl fmt::Debug for LiveOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveOptions")
            .field("init_timeout", &self.init_timeout)
            .field("poll_interval", &self.poll_interval)
            .field("poll_jitter", &self.poll_jitter)
            .field("always_poll", &self.always_poll)
            .field("retry", &(self.retry_min, self.retry_max))
            .field("load_timeout", &self.load_timeout)
            .field("own_write_grace", &self.own_write_grace)
            .field("listener_queue", &self.listener_queue)
            .field("bootstrap", &self.bootstrap)
            .field("persist", &self.persist)
            .field("observer", &self.observer.is_some())
            .finish_non_exhaustive()
    }
}
