//! Change listeners: per flag ("its definition may have changed"), per flag and context ("its
//! answer for this context flipped") and for the whole set ("something changed").
//!
//! Each listener has its own task and its own bounded queue, and its callback runs on tokio's
//! blocking pool. The writer only pushes into queues (never waits, never calls a listener), so
//! evaluation and updates go on whatever the listeners do, and one slow (even blocking)
//! listener delays no other. A queue that is full merges each new
//! notification into its last one (a listener always learns of the latest state, possibly of
//! several changes at once) and logs a warning.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use flipper_core::Item;
use flipper_core::eval::Evaluation;
use tokio::runtime::Handle;
use tokio::sync::Notify;
use tokio::task::AbortHandle;

use flipper_core::Checks;

use super::LiveFlags;
use super::set::{Edit, FlagSet};

/// Names a listener, to remove it with
/// [`LiveFlags::remove_listener`](super::LiveFlags::remove_listener).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ListenerId(u64);

/// A flag's definition may have changed (it was created, changed or deleted).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct FlagChange {
    /// The flag.
    pub name: String,
    /// Its definition now; `None` when it was deleted.
    pub item: Option<Arc<Item>>,
    /// The set version after the change.
    pub version: u64,
}

/// A flag's answer for a listener's context flipped.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ValueChange {
    /// The flag.
    pub name: String,
    /// The answer now (the previous one was its opposite).
    pub enabled: bool,
    /// The evaluation that gave it, with its reason.
    pub evaluation: Evaluation,
    /// The set version it was evaluated against.
    pub version: u64,
}

/// Flags changed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SetChange {
    /// The set version after the changes.
    pub version: u64,
    /// The flags that changed (created, changed or deleted), in name order.
    pub flags: Vec<String>,
}

/// Merging a notification into an earlier one that is still queued.
pub(crate) trait Coalesce {
    fn coalesce(&mut self, newer: Self);
}

impl Coalesce for FlagChange {
    fn coalesce(&mut self, newer: Self) {
        *self = newer;
    }
}

impl Coalesce for SetChange {
    fn coalesce(&mut self, newer: Self) {
        self.version = newer.version;
        self.flags.extend(newer.flags);
        self.flags.sort_unstable();
        self.flags.dedup();
    }
}

/// A re-evaluation request: the set version that asks for it.
impl Coalesce for u64 {
    fn coalesce(&mut self, newer: Self) {
        *self = newer;
    }
}

/// One listener's bounded queue.
pub(crate) struct Mailbox<T> {
    id: u64,
    queue: Mutex<VecDeque<T>>,
    wake: Notify,
    capacity: usize,
    /// Set while the queue is full (one warning per episode).
    overflowing: AtomicBool,
}

impl<T: Coalesce> Mailbox<T> {
    fn new(id: u64, capacity: usize) -> Self {
        Self {
            id,
            queue: Mutex::new(VecDeque::new()),
            wake: Notify::new(),
            capacity: capacity.max(1),
            overflowing: AtomicBool::new(false),
        }
    }

    fn push(&self, notice: T) {
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        if queue.len() < self.capacity {
            queue.push_back(notice);
        } else if let Some(last) = queue.back_mut() {
            last.coalesce(notice);
            if !self.overflowing.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    listener = self.id,
                    capacity = self.capacity,
                    "a flag listener is slow: its queue is full, merging its notifications"
                );
            }
        }
        drop(queue);
        self.wake.notify_one();
    }

    async fn next(&self) -> T {
        loop {
            {
                let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(notice) = queue.pop_front() {
                    if queue.is_empty() {
                        self.overflowing.store(false, Ordering::Relaxed);
                    }
                    return notice;
                }
            }
            self.wake.notified().await;
        }
    }
}

/// A listener's callback.
pub(crate) type Callback<T> = Arc<dyn Fn(&T) + Send + Sync>;

/// Runs a listener's callback on the blocking pool (a callback that blocks holds up no task,
/// not even on a single-threaded runtime) and waits for it; survives its panic.
pub(crate) async fn call<T: Send + 'static>(id: u64, f: &Callback<T>, notice: T) {
    let f = Arc::clone(f);
    let ran =
        tokio::task::spawn_blocking(move || catch_unwind(AssertUnwindSafe(|| f(&notice)))).await;
    if !matches!(ran, Ok(Ok(()))) {
        tracing::error!(
            listener = id,
            "a flag listener panicked; it stays registered"
        );
    }
}

pub(crate) enum Slot {
    Flag(Arc<Mailbox<FlagChange>>),
    Value(Arc<Mailbox<u64>>),
    Any(Arc<Mailbox<SetChange>>),
}

struct Registered {
    flag: Option<String>,
    slot: Slot,
    task: AbortHandle,
}

#[derive(Default)]
struct Registry {
    by_flag: HashMap<String, Vec<u64>>,
    any: Vec<u64>,
    all: HashMap<u64, Registered>,
}

/// Every listener of one live flags instance.
pub(crate) struct Listeners {
    runtime: Option<Handle>,
    capacity: usize,
    next_id: AtomicU64,
    registry: RwLock<Registry>,
}

/// What a new listener needs: its id and queue, to build its task around.
pub(crate) struct Registration<T> {
    pub(crate) id: u64,
    mailbox: Arc<Mailbox<T>>,
}

impl<T: Coalesce> Registration<T> {
    /// The next notification for this listener.
    pub(crate) async fn next(&self) -> T {
        self.mailbox.next().await
    }
}

/// The kinds of listener, for [`Listeners::add`].
pub(crate) trait Kind: Coalesce + Send + Sized + 'static {
    fn slot(mailbox: Arc<Mailbox<Self>>) -> Slot;
}

impl Kind for FlagChange {
    fn slot(mailbox: Arc<Mailbox<Self>>) -> Slot {
        Slot::Flag(mailbox)
    }
}

impl Kind for u64 {
    fn slot(mailbox: Arc<Mailbox<Self>>) -> Slot {
        Slot::Value(mailbox)
    }
}

impl Kind for SetChange {
    fn slot(mailbox: Arc<Mailbox<Self>>) -> Slot {
        Slot::Any(mailbox)
    }
}

impl Listeners {
    pub(crate) fn new(runtime: Option<Handle>, capacity: usize) -> Self {
        Self {
            runtime,
            capacity,
            next_id: AtomicU64::new(1),
            registry: RwLock::new(Registry::default()),
        }
    }

    /// Registers a listener of `flag` (every flag when `None`) whose task `run` builds from its
    /// registration.
    pub(crate) fn add<T, F, Fut>(&self, flag: Option<String>, run: F) -> ListenerId
    where
        T: Kind,
        F: FnOnce(Registration<T>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mailbox = Arc::new(Mailbox::new(id, self.capacity));
        let registration = Registration {
            id,
            mailbox: Arc::clone(&mailbox),
        };
        let Some(runtime) = &self.runtime else {
            tracing::error!("flag listeners need a tokio runtime: this one will never be called");
            return ListenerId(id);
        };
        let task = runtime.spawn(run(registration)).abort_handle();
        let mut registry = self
            .registry
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        match &flag {
            Some(name) => registry.by_flag.entry(name.clone()).or_default().push(id),
            None => registry.any.push(id),
        }
        registry.all.insert(
            id,
            Registered {
                flag,
                slot: T::slot(mailbox),
                task,
            },
        );
        ListenerId(id)
    }

    /// Removes a listener (its task stops); `false` when there was none by this id.
    pub(crate) fn remove(&self, id: ListenerId) -> bool {
        let mut registry = self
            .registry
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(registered) = registry.all.remove(&id.0) else {
            return false;
        };
        registered.task.abort();
        match &registered.flag {
            Some(name) => {
                if let Some(ids) = registry.by_flag.get_mut(name) {
                    ids.retain(|i| *i != id.0);
                    if ids.is_empty() {
                        registry.by_flag.remove(name);
                    }
                }
            }
            None => registry.any.retain(|i| *i != id.0),
        }
        true
    }

    /// Stops every listener.
    pub(crate) fn stop_all(&self) {
        let mut registry = self
            .registry
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        for (_, registered) in registry.all.drain() {
            registered.task.abort();
        }
        registry.by_flag.clear();
        registry.any.clear();
    }

    /// Queues the notifications for `edits`, which made `set`. Never waits.
    pub(crate) fn dispatch(&self, edits: &[Edit], set: &FlagSet) {
        if edits.is_empty() {
            return;
        }
        let registry = self.registry.read().unwrap_or_else(PoisonError::into_inner);
        if registry.all.is_empty() {
            return;
        }
        let version = set.version();
        // One notification per flag, however many of the edits were about it.
        let mut flags: Vec<&str> = edits.iter().map(Edit::name).collect();
        flags.sort_unstable();
        flags.dedup();
        if !registry.by_flag.is_empty() {
            for &name in &flags {
                for id in registry.by_flag.get(name).into_iter().flatten() {
                    match registry.all.get(id).map(|r| &r.slot) {
                        Some(Slot::Flag(mailbox)) => mailbox.push(FlagChange {
                            name: name.to_owned(),
                            item: set.get(name).cloned(),
                            version,
                        }),
                        Some(Slot::Value(mailbox)) => mailbox.push(version),
                        _ => {}
                    }
                }
            }
        }
        if !registry.any.is_empty() {
            let flags: Vec<String> = flags.iter().map(|&name| name.to_owned()).collect();
            for id in &registry.any {
                if let Some(Slot::Any(mailbox)) = registry.all.get(id).map(|r| &r.slot) {
                    mailbox.push(SetChange {
                        version,
                        flags: flags.clone(),
                    });
                }
            }
        }
    }
}

impl fmt::Debug for Listeners {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let registry = self.registry.read().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("Listeners")
            .field("count", &registry.all.len())
            .finish_non_exhaustive()
    }
}

impl LiveFlags {
    /// Calls `listener` (on tokio's blocking pool, one call at a time) after each change to the
    /// definition of flag `name`:
    /// created, changed or deleted. Notifications pile up to
    /// [`LiveOptions::listener_queue`](super::LiveOptions::listener_queue),
    /// then merge into the latest.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use std::sync::Arc;
    /// use flipper::live::{LiveFlags, LiveOptions};
    /// use flipper::store::MemoryStore;
    /// let live = LiveFlags::start(Arc::new(MemoryStore::new()), LiveOptions::default()).await;
    /// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    /// let id = live.on_flag_change("beta", move |change| {
    ///     let _ = tx.send(change.item.is_some());
    /// });
    /// live.client().create("beta", true, None).await?;
    /// assert_eq!(rx.recv().await, Some(true));
    /// assert!(live.remove_listener(id));
    /// # Ok::<(), flipper::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn on_flag_change(
        &self,
        name: impl Into<String>,
        listener: impl Fn(&FlagChange) + Send + Sync + 'static,
    ) -> ListenerId {
        let listener: Callback<FlagChange> = Arc::new(listener);
        self.core.listeners.add::<FlagChange, _, _>(
            Some(name.into()),
            move |registration| async move {
                loop {
                    let change = registration.next().await;
                    call(registration.id, &listener, change).await;
                }
            },
        )
    }

    /// Calls `listener` (on tokio's blocking pool, one call at a time) when the answer of flag
    /// `name` for `checks` flips.
    /// The answer starts as [`LiveFlags::is_enabled`]'s now (`false` for a missing flag or
    /// before the first load) and is evaluated again after each change to the flag, off the
    /// evaluation path. Answers that flip and flip back between two evaluations are not
    /// reported; an answer that changes with time alone (a linear ramp) or at random (a random
    /// percentage) is only evaluated again when the flag changes.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use std::sync::Arc;
    /// use flipper::{Checks, Condition};
    /// use flipper::live::{LiveFlags, LiveOptions};
    /// use flipper::store::MemoryStore;
    /// let live = LiveFlags::start(Arc::new(MemoryStore::new()), LiveOptions::default()).await;
    /// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    /// live.on_value_change("beta", Checks::new().with("age", 21), move |change| {
    ///     let _ = tx.send(change.enabled);
    /// });
    /// let client = live.client();
    /// client.create("beta", true, None).await?;
    /// assert_eq!(rx.recv().await, Some(true));
    /// // Still on for age 21: no notification. Off for everyone: one.
    /// client.add_condition("beta", Condition::new().gte("age", 18)).await?;
    /// client.disable("beta").await?;
    /// assert_eq!(rx.recv().await, Some(false));
    /// # Ok::<(), flipper::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn on_value_change(
        &self,
        name: impl Into<String>,
        checks: Checks,
        listener: impl Fn(&ValueChange) + Send + Sync + 'static,
    ) -> ListenerId {
        let name = name.into();
        let core = Arc::clone(&self.core);
        let listener: Callback<ValueChange> = Arc::new(listener);
        let mut last = self.is_enabled(&name, &checks);
        self.core
            .listeners
            .add::<u64, _, _>(Some(name.clone()), move |registration| async move {
                loop {
                    registration.next().await;
                    let set = core.current.load_full();
                    let evaluation = set.evaluate(&name, &checks, false, &*core.env);
                    if evaluation.enabled == last {
                        continue;
                    }
                    last = evaluation.enabled;
                    let change = ValueChange {
                        name: name.clone(),
                        enabled: evaluation.enabled,
                        evaluation,
                        version: set.version(),
                    };
                    drop(set);
                    call(registration.id, &listener, change).await;
                }
            })
    }

    /// Calls `listener` (on tokio's blocking pool, one call at a time) after each change to any
    /// flag, with the flags that changed. Notifications pile up to
    /// [`LiveOptions::listener_queue`](super::LiveOptions::listener_queue), then merge.
    ///
    /// A listener that holds a [`LiveFlags`] keeps it running (and itself registered) until it
    /// is removed: hold a [`WeakLiveFlags`](super::WeakLiveFlags) ([`LiveFlags::downgrade`])
    /// instead.
    pub fn on_change(&self, listener: impl Fn(&SetChange) + Send + Sync + 'static) -> ListenerId {
        let listener: Callback<SetChange> = Arc::new(listener);
        self.core
            .listeners
            .add::<SetChange, _, _>(None, move |registration| async move {
                loop {
                    let change = registration.next().await;
                    call(registration.id, &listener, change).await;
                }
            })
    }

    /// Removes a listener; `false` when there is none by that id (already removed).
    pub fn remove_listener(&self, id: ListenerId) -> bool {
        self.core.listeners.remove(id)
    }
}
