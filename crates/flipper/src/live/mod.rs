//! Live flags: an in-memory replica of a store, evaluated synchronously in nanoseconds.
//!
//! [`LiveFlags`] loads every flag from any [`Store`], then follows the store's change
//! notifications (or polls it, with jitter, where it has none or they miss other processes'
//! writes). Evaluation reads the current [`FlagSet`] through an `ArcSwap`: no lock, no I/O, no
//! allocation in the common cases. When the store fails, the last flags keep being served, the
//! failure and the flags' age show in [`LiveFlags::status`], and loading is retried with capped
//! exponential backoff; the first load after recovery is a full one, so no change is missed.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use flipper::live::{LiveFlags, LiveOptions};
//! use flipper::store::{MemoryStore, StoreExt};
//! use flipper::{Checks, Condition};
//!
//! let store = Arc::new(MemoryStore::new());
//! let live = LiveFlags::start(store.clone(), LiveOptions::default()).await;
//! assert!(live.is_initialized());
//!
//! // Writes through `live.client()` are visible at once; other writes arrive from the watch.
//! let client = live.client();
//! client.create("beta", true, None).await?;
//! client.add_condition("beta", Condition::new().gte("age", 18)).await?;
//! assert!(live.is_enabled("beta", &Checks::new().with("age", 21)));
//! assert!(!live.is_enabled("beta", &Checks::new().with("age", 12)));
//! assert!(live.is_enabled_or("unknown", &Checks::new(), true));
//! # Ok::<(), flipper::Error>(())
//! # }).unwrap();
//! ```
//!
//! * Start-up: [`LiveFlags::start`] waits up to [`LiveOptions::init_timeout`] for the first
//!   load and returns either way; until then evaluations give the caller's default with
//!   [`Reason::NotInitialized`](crate::Reason::NotInitialized).
//!   [`LiveFlags::wait_initialized`] waits for it.
//! * Listeners ([`LiveFlags::on_flag_change`], [`LiveFlags::on_value_change`],
//!   [`LiveFlags::on_change`]) have their own tasks and queues, off the evaluation path; their
//!   callbacks run on tokio's blocking pool.
//! * Offline: [`LiveFlags::from_file`] serves a bootstrap file without a store;
//!   [`LiveOptions::persist`] keeps the last snapshot in a file for cold starts while the store
//!   is unreachable ([`LiveOptions::bootstrap`] is the fallback when there is none).
//! * Flag handles: [`LiveFlags::flag`] gives a [`LiveFlag`] bound to one name, for a flag
//!   checked on every request (it finds its flag without a lookup by name while the flag stays
//!   at its place in the set).
//! * Read your writes: [`LiveFlags::client`] writes to the store and applies each successful
//!   write at once.
//! * Versions: the set version moves on by one per changed flag; a [`SetObserver`] sees every
//!   change as it is made (the flag server feeds its change stream from one).

mod core;
mod flag;
mod follow;
mod index;
mod listeners;
mod offline;
mod options;
mod own;
mod set;
mod status;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::Guard;
use flipper_core::eval::{Env, Evaluation};
use flipper_core::{Checks, Item};
use tokio::runtime::Handle;
use tokio::sync::{Notify, oneshot, watch};
use tokio::task::JoinHandle;

pub use flag::LiveFlag;
pub use listeners::{FlagChange, ListenerId, SetChange, ValueChange};
pub use options::{DEFAULT_INIT_TIMEOUT, DEFAULT_POLL_INTERVAL, LiveOptions};
pub use set::{Edit, FlagSet};
pub use status::{Source, Status};

use self::core::Core;
use self::listeners::Listeners;
use self::own::{NoStore, SharedEnv, WriteThrough};
use crate::client::FeatureFlagClient;
use crate::error::Error;
use crate::store::Store;

/// Sees every change to the live flags as it is made, under the writer's lock, before readers
/// can see the new set: the hook behind the flag server's change stream. Keep it quick; it must
/// not block.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use flipper::live::{Edit, FlagSet, LiveOptions, SetObserver};
///
/// #[derive(Default)]
/// struct Log(Mutex<Vec<(u64, String)>>);
///
/// impl SetObserver for Log {
///     fn initialized(&self, set: &FlagSet) {
///         self.0.lock().unwrap().push((set.version(), "loaded".into()));
///     }
///     fn changed(&self, edits: &[Edit], set: &FlagSet) {
///         // The i-th edit produced version `first + i`.
///         let first = set.version() + 1 - edits.len() as u64;
///         for (i, edit) in edits.iter().enumerate() {
///             self.0.lock().unwrap().push((first + i as u64, edit.name().to_owned()));
///         }
///     }
/// }
///
/// let options = LiveOptions::default().observer(Arc::new(Log::default()));
/// ```
pub trait SetObserver: Send + Sync + 'static {
    /// The first load made `set` (version 1): no change before it can be resumed from.
    fn initialized(&self, set: &FlagSet);
    /// `edits` (at least one) turned the previous set into `set`. The version moved on by one
    /// per edit: edit `i` produced version `set.version() - edits.len() + 1 + i`.
    fn changed(&self, edits: &[Edit], set: &FlagSet);
}

/// What the handles of one live flags instance share besides the core: the store and the
/// tasks, stopped when the last handle goes.
struct Running {
    core: Arc<Core>,
    store: Option<Arc<dyn Store>>,
    persist_path: Option<PathBuf>,
    follow: Option<JoinHandle<()>>,
    persist: Option<JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        for task in [&self.follow, &self.persist].into_iter().flatten() {
            task.abort();
        }
        self.core.listeners.stop_all();
    }
}

/// Every flag of a store in memory, kept current, evaluated synchronously: see the
/// [module documentation](self).
///
/// Cheap to clone (handles share one replica); the background tasks stop when the last clone
/// is dropped. Evaluation never fails and never waits: a missing flag gives the caller's
/// default, and so does any evaluation before the first load.
///
/// Each thread that evaluates keeps a reference to the set it read last (so that an evaluation
/// costs one atomic load to find the current set); it lets go at that thread's next evaluation
/// of other live flags, or when the thread ends.
#[derive(Clone)]
pub struct LiveFlags {
    core: Arc<Core>,
    running: Arc<Running>,
}

/// One consistent view of the live flags, for several evaluations against the same version:
/// see [`LiveFlags::snapshot`]. Meant to be short-lived (it holds the set the way `ArcSwap`'s
/// guards do, and is not for holding across an `.await`); clone [`Snapshot::flags`] to keep a
/// set for longer.
pub struct Snapshot<'a> {
    set: Guard<Arc<FlagSet>>,
    env: &'a (dyn Env + Send + Sync),
}

impl<'a> Snapshot<'a> {
    /// The set.
    pub fn flags(&self) -> &Arc<FlagSet> {
        &self.set
    }

    /// Evaluates a flag (see [`LiveFlags::evaluate`]).
    #[inline]
    pub fn evaluate(&self, name: &str, checks: &Checks, default: bool) -> Evaluation {
        self.set.evaluate(name, checks, default, self.env)
    }

    /// Whether a flag is on (`default` when missing or not initialised).
    #[inline]
    pub fn is_enabled_or(&self, name: &str, checks: &Checks, default: bool) -> bool {
        self.set.is_enabled_or(name, checks, default, self.env)
    }

    /// Every flag evaluated for `checks`, in name order; allocates nothing for the usual
    /// checks (up to 16 of them, integers within 64 bits), unless an evaluation fails (to hold
    /// Python's error message).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use std::sync::Arc;
    /// use flipper::Checks;
    /// use flipper::live::{LiveFlags, LiveOptions};
    /// use flipper::store::{MemoryStore, StoreExt};
    /// let store = Arc::new(MemoryStore::new());
    /// store.create("a", true, None).await?;
    /// store.create("b", false, None).await?;
    /// let live = LiveFlags::start(store, LiveOptions::default()).await;
    /// let (snapshot, checks) = (live.snapshot(), Checks::new());
    /// let on: Vec<&str> = snapshot
    ///     .evaluate_all(&checks)
    ///     .filter(|(_, e)| e.enabled)
    ///     .map(|(name, _)| name)
    ///     .collect();
    /// assert_eq!(on, ["a"]);
    /// # Ok::<(), flipper::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn evaluate_all<'s>(
        &'s self,
        checks: &'s Checks,
    ) -> impl ExactSizeIterator<Item = (&'s str, Evaluation)> + 's {
        self.set.evaluate_all(checks, self.env)
    }
}

impl fmt::Debug for Snapshot<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("set", &**self.set)
            .finish()
    }
}

/// What the constructors share: the core and its tasks, before the first load.
struct Launch {
    live: LiveFlags,
    first: Option<oneshot::Receiver<Result<(), Error>>>,
    bootstrap: Option<PathBuf>,
}

impl LiveFlags {
    /// Starts following `store`: waits up to [`LiveOptions::init_timeout`] for the first
    /// load, and returns either way (not initialised yet, still trying, when the store did not
    /// answer in time). When the first load fails, a persisted snapshot
    /// ([`LiveOptions::persist`]) or else the bootstrap file ([`LiveOptions::bootstrap`]) is
    /// served until the store answers.
    ///
    /// Needs a tokio runtime (the following runs on a task); without one, the flags are never
    /// loaded and [`LiveFlags::status`] says why.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use std::sync::Arc;
    /// use flipper::Checks;
    /// use flipper::live::{LiveFlags, LiveOptions};
    /// use flipper::store::MemoryStore;
    /// let live = LiveFlags::start(Arc::new(MemoryStore::new()), LiveOptions::default()).await;
    /// assert!(live.is_initialized());
    /// assert!(!live.is_enabled("nothing_yet", &Checks::new()));
    /// # });
    /// ```
    pub async fn start(store: Arc<dyn Store>, options: LiveOptions) -> Self {
        let deadline = deadline(options.init_timeout);
        let mut launch = Self::launch(Some(store), options);
        let first = launch.first.take();
        if let Some(first) = first
            && let Some(Ok(Ok(()))) = timeout_at(deadline, first).await
        {
            return launch.live;
        }
        launch.fall_back().await;
        let live = launch.live;
        let _ = timeout_at(deadline, live.wait_initialized()).await;
        live
    }

    /// Like [`LiveFlags::start`], but returns as soon as the first load attempt is over
    /// (waiting at most [`LiveOptions::init_timeout`] for it), and fails when that attempt
    /// failed for a reason retrying cannot fix ([`Error::is_retryable`]): a bad file, a refused
    /// token. After a retryable failure the handle is returned, not initialised (unless a
    /// persisted or bootstrap file could be served), and keeps trying.
    ///
    /// # Errors
    /// The first load's error, when it is not retryable; nothing is left running then.
    pub async fn try_start(store: Arc<dyn Store>, options: LiveOptions) -> Result<Self, Error> {
        let deadline = deadline(options.init_timeout);
        let mut launch = Self::launch(Some(store), options);
        let first = launch.first.take();
        match first {
            Some(first) => match timeout_at(deadline, first).await {
                Some(Ok(Ok(()))) => return Ok(launch.live),
                Some(Ok(Err(error))) if !error.is_retryable() => return Err(error),
                _ => {}
            },
            None => return Err(no_runtime()),
        }
        launch.fall_back().await;
        Ok(launch.live)
    }

    /// Flags from a file in the export format (`flipper flags export` writes one), without a
    /// store: they never change. [`LiveFlags::client`] has no store to write to then.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use flipper::{Checks, Item, export};
    /// use flipper::live::{LiveFlags, LiveOptions, Source};
    /// let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("flags.json");
    /// std::fs::write(&path, export::render(&[Item::new("beta", true, 1)])).unwrap();
    /// let live = LiveFlags::from_file(&path, LiveOptions::default()).await?;
    /// assert!(live.is_enabled("beta", &Checks::new()));
    /// assert_eq!(live.status().source, Some(Source::Bootstrap(path)));
    /// # Ok::<(), flipper::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be read, [`Error::InvalidFile`] when it is not a
    /// valid export (the message names the line).
    pub async fn from_file(path: impl AsRef<Path>, options: LiveOptions) -> Result<Self, Error> {
        let path = path.as_ref().to_owned();
        let entries = offline::read_file_async(path.clone()).await?;
        let launch = Self::launch(None, options);
        launch.live.core.load(entries, Source::Bootstrap(path));
        Ok(launch.live)
    }

    /// Builds the core and spawns the tasks (the follow task when there is a store).
    fn launch(store: Option<Arc<dyn Store>>, options: LiveOptions) -> Launch {
        let runtime = Handle::try_current().ok();
        let persist_wake = options.persist.as_ref().map(|_| Arc::new(Notify::new()));
        let core = Arc::new(Core::new(
            Arc::clone(&options.env),
            options.observer.clone(),
            Listeners::new(runtime.clone(), options.listener_queue),
            persist_wake.clone(),
            options.own_write_grace,
        ));
        let (mut follow, mut persist, mut first) = (None, None, None);
        match (&runtime, &store) {
            (Some(runtime), Some(store)) => {
                let (tx, rx) = oneshot::channel();
                first = Some(rx);
                follow = Some(runtime.spawn(follow::run(
                    Arc::clone(&core),
                    Arc::clone(store),
                    options.follow(),
                    Some(tx),
                )));
                if let (Some(path), Some(wake)) = (&options.persist, persist_wake) {
                    persist = Some(runtime.spawn(offline::persist(
                        Arc::clone(&core),
                        path.clone(),
                        options.persist_debounce,
                        wake,
                    )));
                }
            }
            (None, Some(_)) => {
                let error = no_runtime();
                tracing::error!(%error, "live flags cannot follow their store");
                core.sync_state().failed(&error);
            }
            _ => {}
        }
        let live = Self {
            running: Arc::new(Running {
                core: Arc::clone(&core),
                store,
                persist_path: options.persist.clone(),
                follow,
                persist,
            }),
            core,
        };
        Launch {
            live,
            first,
            bootstrap: options.bootstrap,
        }
    }

    /// The current set, as one consistent view (its flags and version belong together).
    pub fn flags(&self) -> Arc<FlagSet> {
        self.core.current.load_full()
    }

    /// A short-lived consistent view for several evaluations (one version for all of them),
    /// and the way to evaluate every flag ([`Snapshot::evaluate_all`]).
    #[inline]
    pub fn snapshot(&self) -> Snapshot<'_> {
        Snapshot {
            set: self.core.current.load(),
            env: &*self.core.env,
        }
    }

    /// A flag's definition.
    pub fn get(&self, name: &str) -> Option<Arc<Item>> {
        self.core.current.load().get(name).cloned()
    }

    /// The set version: 0 before the first load, then one more per changed flag.
    pub fn version(&self) -> u64 {
        self.core.current.load().version()
    }

    /// The version after each change, to wait for one (it is sent after the new set is in
    /// place and the [`SetObserver`] saw the change).
    pub fn subscribe_versions(&self) -> watch::Receiver<u64> {
        self.core.subscribe_versions()
    }

    /// Whether flags were loaded (from the store or a file).
    pub fn is_initialized(&self) -> bool {
        self.core.current.load().is_initialized()
    }

    /// Waits until flags are loaded (at once when they are). Never completes for a store
    /// that never answers: wrap it in a timeout.
    pub async fn wait_initialized(&self) {
        let mut initialized = self.core.subscribe_initialized();
        let _ = initialized.wait_for(|yes| *yes).await;
    }

    /// Whether the flag is on for these checks; `false` when it is missing, before the first
    /// load, or when evaluation hits an error where Python raises.
    #[inline]
    pub fn is_enabled(&self, name: &str, checks: &Checks) -> bool {
        self.is_enabled_or(name, checks, false)
    }

    /// [`LiveFlags::is_enabled`] with the answer for a missing flag (and before the first load).
    // Out of line, taking its arguments in registers: the read (thread-local copy, lookup,
    // evaluation) inlined into the caller needs the caller to build its closure on the stack.
    #[inline(never)]
    pub fn is_enabled_or(&self, name: &str, checks: &Checks, default: bool) -> bool {
        let env = &self.core.env;
        self.core
            .read(|set| set.is_enabled_or(name, checks, default, env))
    }

    /// The answer with its reason: [`Reason::FlagMissing`](crate::Reason::FlagMissing) (with
    /// `default`) for a missing flag, [`Reason::NotInitialized`](crate::Reason::NotInitialized)
    /// (with `default`) before the first load.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use std::sync::Arc;
    /// use flipper::{Checks, Reason};
    /// use flipper::live::{LiveFlags, LiveOptions};
    /// use flipper::store::MemoryStore;
    /// let live = LiveFlags::start(Arc::new(MemoryStore::new()), LiveOptions::default()).await;
    /// let e = live.evaluate("missing", &Checks::new(), true);
    /// assert_eq!((e.enabled, e.reason), (true, Reason::FlagMissing));
    /// # });
    /// ```
    #[inline]
    pub fn evaluate(&self, name: &str, checks: &Checks, default: bool) -> Evaluation {
        let env = &self.core.env;
        self.core
            .read(|set| set.evaluate(name, checks, default, env))
    }

    /// How current the flags are: see [`Status`].
    pub fn status(&self) -> Status {
        let set = self.core.current.load();
        let running = self
            .running
            .follow
            .as_ref()
            .is_some_and(|task| !task.is_finished());
        self.core
            .sync_state()
            .report(set.is_initialized(), set.version(), set.len(), running)
    }

    /// The store followed (`None` for flags from a file).
    pub fn store(&self) -> Option<&Arc<dyn Store>> {
        self.running.store.as_ref()
    }

    /// A client over the same store whose successful writes are visible to these live flags'
    /// evaluations at once, before the store's watch reports them. A watched change older
    /// than such a write does not undo it (see [`LiveOptions::own_write_grace`]).
    ///
    /// For flags from a file there is no store: the client's every call fails with
    /// [`Error::Unsupported`].
    pub fn client(&self) -> FeatureFlagClient {
        let env = SharedEnv(Arc::clone(&self.core.env));
        let store: Arc<dyn Store> = match &self.running.store {
            Some(store) => Arc::new(WriteThrough {
                store: Arc::clone(store),
                core: Arc::clone(&self.core),
            }),
            None => Arc::new(NoStore),
        };
        FeatureFlagClient::with_env(store, env)
    }

    /// Writes the current flags to the [persist](LiveOptions::persist) file now, if they came
    /// from the store and changed since the last write (the persister does this on its own,
    /// debounced). Does nothing without a persist file.
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be written.
    pub async fn persist_now(&self) -> Result<(), Error> {
        match &self.running.persist_path {
            Some(path) => offline::persist_once(&self.core, path, None)
                .await
                .map(drop),
            None => Ok(()),
        }
    }

    /// A handle that does not keep the live flags running: for a part of the application that
    /// the live flags themselves keep alive (such as the metrics of the store they follow),
    /// where a [`LiveFlags`] would make a cycle that never stops.
    pub fn downgrade(&self) -> WeakLiveFlags {
        WeakLiveFlags {
            core: Arc::downgrade(&self.core),
            running: Arc::downgrade(&self.running),
        }
    }
}

/// A [`LiveFlags`] that does not keep it running: see [`LiveFlags::downgrade`].
#[derive(Clone)]
pub struct WeakLiveFlags {
    core: std::sync::Weak<Core>,
    running: std::sync::Weak<Running>,
}

impl WeakLiveFlags {
    /// The live flags, while some [`LiveFlags`] handle still runs them.
    pub fn upgrade(&self) -> Option<LiveFlags> {
        Some(LiveFlags {
            core: self.core.upgrade()?,
            running: self.running.upgrade()?,
        })
    }
}

impl fmt::Debug for WeakLiveFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeakLiveFlags")
            .field("alive", &(self.running.strong_count() > 0))
            .finish()
    }
}

impl Launch {
    /// After a failed or slow first load: serves the persisted snapshot, or else the bootstrap
    /// file, while nothing is loaded.
    async fn fall_back(&self) {
        let candidates = [
            self.live
                .running
                .persist_path
                .clone()
                .map(|p| (p.clone(), Source::Persisted(p))),
            self.bootstrap
                .clone()
                .map(|p| (p.clone(), Source::Bootstrap(p))),
        ];
        for (path, source) in candidates.into_iter().flatten() {
            if self.live.is_initialized() {
                return;
            }
            match offline::read_file_async(path).await {
                Ok(entries) => {
                    if self.live.core.load(entries, source.clone()) {
                        tracing::warn!(
                            ?source,
                            "the store cannot be loaded yet: serving flags from a file"
                        );
                    }
                    return;
                }
                Err(error) => tracing::warn!(%error, "cannot read a fallback flags file"),
            }
        }
    }
}

impl fmt::Debug for LiveFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveFlags")
            .field("store", &self.running.store.as_ref().map(|s| s.to_string()))
            .field("set", &**self.core.current.load())
            .field("listeners", &self.core.listeners)
            .finish_non_exhaustive()
    }
}

/// `Instant::now() + timeout`, or `None` (no deadline) when that is too far to represent.
fn deadline(timeout: Duration) -> Option<tokio::time::Instant> {
    tokio::time::Instant::now().checked_add(timeout)
}

/// `future`'s output, or `None` once `deadline` passed.
async fn timeout_at<F: std::future::Future>(
    deadline: Option<tokio::time::Instant>,
    future: F,
) -> Option<F::Output> {
    match deadline {
        Some(at) => tokio::time::timeout_at(at, future).await.ok(),
        None => Some(future.await),
    }
}

fn no_runtime() -> Error {
    Error::Backend {
        store: "live flags".into(),
        source: "no tokio runtime to follow the store on".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared<T: Send + Sync + 'static>() {}

    #[test]
    fn handles_can_be_shared_across_threads() {
        shared::<LiveFlags>();
        shared::<WeakLiveFlags>();
        shared::<LiveOptions>();
        shared::<FlagSet>();
        shared::<Status>();
    }
}
