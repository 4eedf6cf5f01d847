//! An outage: the store (a JSON file that another process breaks, then fixes) cannot be read.
//! Readers on other threads keep evaluating throughout with zero failures (every answer is the
//! last known one), the status reports the error and the age, and the change made during the
//! outage arrives after recovery.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use flipper::live::LiveFlags;
use flipper::store::{JsonFileStore, Store, StoreExt};
use flipper::{Checks, Item, Reason, export};

use crate::common::{eventually, quick};

/// Evaluate `flag` in a loop on threads of their own until stopped; count the evaluations and
/// the failed ones: not the flag's own answer (a missing flag, not initialised, an error), or
/// not `expected`.
struct Readers {
    stop: Arc<AtomicBool>,
    count: Arc<AtomicU64>,
    failures: Arc<AtomicU64>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Readers {
    fn start(live: &LiveFlags, flag: &'static str, expected: bool, threads: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let count = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(AtomicU64::new(0));
        let threads = (0..threads)
            .map(|_| {
                let (live, stop, count, failures) = (
                    live.clone(),
                    Arc::clone(&stop),
                    Arc::clone(&count),
                    Arc::clone(&failures),
                );
                std::thread::spawn(move || {
                    let checks = Checks::new().with("user_id", 7);
                    while !stop.load(Ordering::Relaxed) {
                        let e = live.evaluate(flag, &checks, false);
                        let own = !matches!(
                            e.reason,
                            Reason::FlagMissing | Reason::NotInitialized | Reason::Error(_)
                        );
                        if !own || e.enabled != expected {
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        Self {
            stop,
            count,
            failures,
            threads,
        }
    }

    fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn stop(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
        (
            self.count.load(Ordering::Relaxed),
            self.failures.load(Ordering::Relaxed),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_never_fail_during_an_outage_and_nothing_is_missed_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flags.json");
    let writer = JsonFileStore::new(&path);
    writer.create_at("f", true, None, 1).await.unwrap();
    writer.create_at("g", true, None, 1).await.unwrap();
    let live = LiveFlags::start(
        Arc::new(JsonFileStore::new(&path)) as Arc<dyn Store>,
        quick(),
    )
    .await;
    assert!(live.is_initialized());
    let readers = Readers::start(&live, "f", true, 2);

    // The outage: the file no longer parses.
    std::fs::write(&path, "[{\"half written\": ").unwrap();
    eventually("the failure is reported", || {
        live.status().last_error.is_some()
    })
    .await;
    let before = readers.count();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        readers.count() > before,
        "evaluations go on during the outage"
    );
    let status = live.status();
    assert!(status.initialized && !status.following);
    assert!(status.failing_since.is_some());
    assert!(
        status
            .age
            .is_some_and(|age| age >= Duration::from_millis(200))
    );
    assert!(status.last_error.as_deref().unwrap().contains("flags.json"));

    // Fixed, with a change made meanwhile: `g` is off now, `h` is new.
    std::fs::write(
        &path,
        export::render(&[
            Item::new("f", true, 1),
            Item::new("g", false, 1),
            Item::new("h", true, 1),
        ]),
    )
    .unwrap();
    eventually("the change made during the outage arrives", || {
        live.is_enabled("h", &Checks::new()) && !live.is_enabled("g", &Checks::new())
    })
    .await;
    let status = live.status();
    assert!(status.last_error.is_none() && status.failing_since.is_none());
    assert!(status.age.is_some_and(|age| age < Duration::from_secs(5)));

    let (count, failures) = readers.stop();
    assert!(count > 1000, "{count} evaluations");
    assert_eq!(failures, 0, "failed evaluations out of {count}");

    // And the flags are followed as before.
    writer.set("f", false).await.unwrap();
    eventually("a later change", || !live.is_enabled("f", &Checks::new())).await;
}
