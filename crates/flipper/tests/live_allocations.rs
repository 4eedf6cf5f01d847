//! Live flags evaluate without allocating: every read call, on every common kind of flag,
//! counted by a counting global allocator (this test binary's own). Only an evaluation that
//! fails allocates, to hold Python's error message; that is checked too, so that the counter
//! is seen to count.

use std::alloc::System;
use std::sync::Arc;

use flipper::live::{LiveFlags, LiveOptions};
use flipper::store::{MemoryStore, Store};
use flipper::{Bucketer, Checks, Condition, Item, Percentage};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn flag(name: &str, on: bool) -> Item {
    Item::new(name, on, 1_700_000_000)
}

/// One flag of each common kind.
fn flags() -> Vec<Item> {
    let mut conditions = flag("conditions", true);
    conditions.meta.conditions = vec![
        Condition::new().is_in("plan", vec!["pro", "enterprise"]),
        Condition::new().gte("age", 18),
    ];
    let mut hashed = flag("hashed", true);
    hashed.meta.bucketer = Bucketer::consistent_hash(Percentage::fixed(0.5), ["user_id"]);
    let mut hashed_all = flag("hashed_by_every_check", true);
    hashed_all.meta.bucketer =
        Bucketer::consistent_hash(Percentage::fixed(0.5), Vec::<String>::new());
    let mut random = flag("random", true);
    random.meta.bucketer = Bucketer::percentage(Percentage::fixed(0.3));
    let mut ramp = flag("ramp", true);
    ramp.meta.bucketer = Bucketer::consistent_hash(
        Percentage::linear_ramp(0.0, 1.0, 3600, 1_700_000_000),
        ["user_id"],
    );
    vec![
        flag("on", true),
        flag("off", false),
        conditions,
        hashed,
        hashed_all,
        random,
        ramp,
    ]
}

/// A flag whose evaluation fails: `email > 3` is a `TypeError` for a string email.
fn failing() -> Item {
    let mut fails = flag("fails", true);
    fails.meta.conditions = vec![Condition::new().gt("email", 3)];
    fails
}

/// Live flags over a memory store holding `items`.
fn live_flags_of(runtime: &tokio::runtime::Runtime, items: Vec<Item>) -> LiveFlags {
    runtime.block_on(async {
        let store = Arc::new(MemoryStore::new());
        store.put_many(&items).await.expect("put");
        LiveFlags::start(store, LiveOptions::default()).await
    })
}

const COMMON: [&str; 8] = [
    "on",
    "off",
    "conditions",
    "hashed",
    "hashed_by_every_check",
    "random",
    "ramp",
    "missing",
];

fn contexts() -> Vec<Checks> {
    (0..64)
        .map(|i| {
            Checks::new()
                .with("user_id", format!("user-{i}"))
                .with("email", format!("user-{i}@example.com"))
                .with("plan", ["pro", "enterprise", "free"][i % 3])
                .with("age", 10 + i as i64)
        })
        .collect()
}

#[test]
fn evaluation_allocates_nothing_unless_it_fails() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    // A current-thread runtime: its tasks run only inside `block_on`, so nothing else
    // allocates while the evaluations below are counted.
    let live = live_flags_of(&runtime, flags());
    assert!(live.is_initialized());
    let contexts = contexts();
    let handles: Vec<_> = COMMON.iter().map(|name| live.flag(name)).collect();

    let mut answers = 0usize;
    let evaluate_everything = |answers: &mut usize| {
        for checks in &contexts {
            for (name, handle) in COMMON.iter().zip(&handles) {
                *answers += usize::from(live.is_enabled(name, checks));
                *answers += usize::from(live.is_enabled_or(name, checks, true));
                *answers += usize::from(live.evaluate(name, checks, false).enabled);
                *answers += usize::from(handle.is_enabled(checks));
                *answers += usize::from(handle.evaluate(checks, false).enabled);
            }
            let snapshot = live.snapshot();
            *answers += usize::from(snapshot.is_enabled_or("conditions", checks, false));
            *answers += snapshot
                .evaluate_all(checks)
                .filter(|(_, e)| e.enabled)
                .count();
        }
    };
    // Once outside the count: the thread's first read sets up its per-thread cache.
    evaluate_everything(&mut answers);

    let region = Region::new(GLOBAL);
    evaluate_everything(&mut answers);
    let change = region.change();
    assert_eq!(
        (change.allocations, change.reallocations),
        (0, 0),
        "evaluations allocated: {change:?}"
    );
    std::hint::black_box(answers);

    // A failing evaluation holds Python's error message: the counter sees it.
    let failing = live_flags_of(&runtime, vec![failing()]);
    failing.evaluate("fails", &contexts[0], false);
    let region = Region::new(GLOBAL);
    let failed = failing.evaluate("fails", &contexts[0], false);
    assert!(failed.error_detail().is_some(), "{failed:?}");
    assert!(region.change().allocations > 0);
}
