//! The task that keeps live flags current: it subscribes to the store's changes, loads every
//! flag, then applies each change as it comes; it reloads everything on a resync, when the
//! change stream ends (after subscribing again) and every poll interval where the store's
//! watch is missing or misses other processes' writes. A failed load is retried with capped
//! exponential backoff while the last flags keep being served; the first load after a failure
//! is a full one, so nothing that changed meanwhile is missed.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use tokio::sync::oneshot;
use tokio::time::{Instant, sleep_until};

use super::core::Core;
use super::set::Entry;
use super::status::Source;
use crate::error::Error;
use crate::store::{Change, ChangeStream, Store};

/// How many changes already waiting in the stream are applied as one new set.
const BATCH: usize = 1024;

/// The follow task's settings (from [`LiveOptions`](super::LiveOptions)).
#[derive(Debug, Clone)]
pub(crate) struct FollowOptions {
    pub(crate) poll_interval: Duration,
    pub(crate) poll_jitter: f64,
    pub(crate) always_poll: bool,
    pub(crate) retry_min: Duration,
    pub(crate) retry_max: Duration,
    pub(crate) load_timeout: Duration,
    pub(crate) pin_check: Duration,
}

/// Capped exponential backoff with jitter: each delay is between half and all of the current
/// step, and the step doubles up to the cap.
#[derive(Debug)]
struct Backoff {
    min: Duration,
    max: Duration,
    step: Duration,
}

impl Backoff {
    fn new(min: Duration, max: Duration) -> Self {
        let min = min.max(Duration::from_millis(1));
        Self {
            min,
            max: max.max(min),
            step: min,
        }
    }

    fn next(&mut self) -> Duration {
        let step = self.step;
        self.step = (self.step * 2).min(self.max);
        step / 2 + step.mul_f64(fastrand::f64() / 2.0)
    }

    fn reset(&mut self) {
        self.step = self.min;
    }
}

/// `interval` moved by up to `jitter` of itself either way, so that many processes polling one
/// store spread out.
fn jittered(interval: Duration, jitter: f64) -> Duration {
    let jitter = jitter.clamp(0.0, 1.0);
    interval.mul_f64(1.0 + jitter * (fastrand::f64() * 2.0 - 1.0))
}

fn subscribe(store: &dyn Store) -> Option<ChangeStream> {
    if store.capabilities().watch {
        store.watch()
    } else {
        None
    }
}

/// Every readable flag of the store; unreadable ones are logged and left out.
async fn load(store: &dyn Store, timeout: Duration) -> Result<Vec<Entry>, Error> {
    let listed = match tokio::time::timeout(timeout, store.list(None, 0)).await {
        Ok(listed) => listed?,
        Err(_) => {
            return Err(Error::Backend {
                store: store.to_string(),
                source: format!("listing the flags took more than {timeout:?}").into(),
            });
        }
    };
    let mut entries = Vec::with_capacity(listed.len());
    for entry in listed {
        match entry {
            Ok(v) => entries.push(Entry::new(v.item, Some(v.version))),
            Err(corrupt) => tracing::warn!(
                flag = %corrupt.key,
                error = %corrupt.error,
                "unreadable flag left out of the live flags"
            ),
        }
    }
    Ok(entries)
}

/// Keeps `core` current from `store` until aborted. `first` learns how the first load went.
pub(crate) async fn run(
    core: Arc<Core>,
    store: Arc<dyn Store>,
    options: FollowOptions,
    mut first: Option<oneshot::Sender<Result<(), Error>>>,
) {
    let capabilities = store.capabilities();
    let poll_always = options.always_poll || !capabilities.watch_external;
    // Subscribed before each load: no change falls between the load and the stream.
    let mut stream = subscribe(&*store);
    let mut retry = Backoff::new(options.retry_min, options.retry_max);
    let mut resubscribe = Backoff::new(options.retry_min, options.retry_max);
    let far = || Instant::now() + Duration::from_secs(86_400 * 365);
    let mut reload_at: Option<Instant> = Some(Instant::now());
    let mut resubscribe_at: Option<Instant> = None;
    let mut next_poll = Instant::now() + jittered(options.poll_interval, options.poll_jitter);
    let mut pin_ticks = tokio::time::interval(options.pin_check);
    pin_ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if reload_at.is_some_and(|at| at <= Instant::now()) {
            match load(&*store, options.load_timeout).await {
                Ok(entries) => {
                    let recovered = core.sync_state().is_failing();
                    core.load(entries, Source::Store);
                    core.sync_state().loaded(stream.is_some());
                    if recovered {
                        tracing::info!(store = %store, "the store answers again: flags reloaded");
                    }
                    reload_at = None;
                    retry.reset();
                    next_poll =
                        Instant::now() + jittered(options.poll_interval, options.poll_jitter);
                    if let Some(first) = first.take() {
                        let _ = first.send(Ok(()));
                    }
                }
                Err(error) => {
                    let delay = retry.next();
                    tracing::warn!(
                        store = %store,
                        %error,
                        retry_in = ?delay,
                        "cannot load the flags; serving the last ones"
                    );
                    core.sync_state().failed(&error);
                    reload_at = Some(Instant::now() + delay);
                    if let Some(first) = first.take() {
                        let _ = first.send(Err(error));
                    }
                }
            }
            continue;
        }
        let polling = poll_always || stream.is_none();
        let next_change = async {
            match stream.as_mut() {
                Some(s) => s.next().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            change = next_change => match change {
                Some(change) => {
                    resubscribe.reset();
                    let mut batch = vec![change];
                    while batch.len() < BATCH {
                        match stream.as_mut().and_then(|s| s.next().now_or_never()) {
                            Some(Some(change)) => batch.push(change),
                            Some(None) => {
                                // Ended: noticed on the next turn.
                                break;
                            }
                            None => break,
                        }
                    }
                    if apply(&core, batch) {
                        core.sync_state().not_following();
                        reload_at = Some(Instant::now());
                    }
                }
                None => {
                    tracing::warn!(
                        store = %store,
                        "the store's change stream ended; subscribing again"
                    );
                    stream = None;
                    core.sync_state().not_following();
                    resubscribe_at = Some(Instant::now() + resubscribe.next());
                }
            },
            () = sleep_until(reload_at.unwrap_or_else(far)), if reload_at.is_some() => {}
            () = sleep_until(resubscribe_at.unwrap_or_else(far)), if resubscribe_at.is_some() => {
                resubscribe_at = None;
                stream = subscribe(&*store);
                reload_at.get_or_insert_with(Instant::now);
            }
            () = sleep_until(next_poll), if polling => {
                reload_at.get_or_insert_with(Instant::now);
                next_poll = Instant::now() + jittered(options.poll_interval, options.poll_jitter);
            }
            _ = pin_ticks.tick() => {
                for name in core.expire_pins() {
                    match store.get(&name).await {
                        Ok(read) => core.apply_read(
                            &name,
                            read.map(|v| Entry::new(v.item, Some(v.version))),
                        ),
                        Err(error) => tracing::warn!(
                            flag = %name,
                            %error,
                            "cannot read back a flag written here; the next load will"
                        ),
                    }
                }
            }
        }
    }
}

/// Applies a batch of watched changes; returns whether it held a resync (a reload is due).
/// The changes after a resync are applied too: the reload that follows includes them anyway.
fn apply(core: &Core, batch: Vec<Change>) -> bool {
    let mut resync = false;
    let mut changes = Vec::with_capacity(batch.len());
    for change in batch {
        match change {
            Change::Put { .. } | Change::Delete { .. } => changes.push(change),
            // `Resync`, and any kind of change this version does not know.
            _ => resync = true,
        }
    }
    if !changes.is_empty() {
        core.apply_watched(changes);
    }
    resync
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(1000));
        let delays: Vec<Duration> = (0..6).map(|_| b.next()).collect();
        for (delay, step) in delays.iter().zip([100, 200, 400, 800, 1000, 1000]) {
            let step = Duration::from_millis(step);
            assert!(
                *delay >= step / 2 && *delay <= step,
                "{delay:?} for {step:?}"
            );
        }
        b.reset();
        assert!(b.next() <= Duration::from_millis(100));
    }

    #[test]
    fn jitter_stays_within_bounds() {
        for _ in 0..100 {
            let d = jittered(Duration::from_secs(10), 0.1);
            assert!(d >= Duration::from_secs(9) && d <= Duration::from_secs(11));
        }
        assert_eq!(
            jittered(Duration::from_secs(1), 0.0),
            Duration::from_secs(1)
        );
    }
}
