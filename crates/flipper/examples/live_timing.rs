//! Quick timing of live-flag evaluation (not the benchmark suite): a static flag, two
//! conditions with a consistent hash, every flag for one context, and loading 10,000 flags.
//!
//! `cargo run --release -p flipper --example live_timing` prints the timings;
//! `live_timing count CASE N` runs one case N times (for `perf stat` or
//! `valgrind --tool=cachegrind`); `live_timing load N` times a start over N flags;
//! `valgrind --tool=dhat live_timing hold N` (minus `hold 0`) gives the bytes held per flag.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use flipper::live::{LiveFlags, LiveOptions};
use flipper::store::{MemoryStore, Store, StoreExt};
use flipper::{Bucketer, Checks, Condition, Item, Percentage};

/// The best of five runs (the machine may be shared), per call.
fn per_call(iterations: u32, mut f: impl FnMut()) -> Duration {
    for _ in 0..iterations / 10 {
        f();
    }
    (0..5)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iterations / 5 {
                f();
            }
            start.elapsed() / (iterations / 5)
        })
        .min()
        .unwrap_or_default()
}

/// `n` simple flags.
fn simple_flags(n: usize) -> Vec<Item> {
    (0..n)
        .map(|i| Item::new(format!("feature_{i:06}"), i % 2 == 0, 1_700_000_000))
        .collect()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize| args.get(i).map(String::as_str);
    let number = |i: usize, default: usize| arg(i).and_then(|n| n.parse().ok()).unwrap_or(default);
    runtime.block_on(async {
        match arg(1) {
            Some("load") => return load(number(2, 10_000)).await,
            Some("hold") => return hold(number(2, 0)).await,
            _ => {}
        }
        let store = Arc::new(MemoryStore::new());
        for i in 0..100 {
            store
                .create(&format!("flag_{i:03}"), true, None)
                .await
                .unwrap();
        }
        let mut hashed = Item::new("two_conditions_hash", true, 1);
        hashed
            .meta
            .conditions
            .push(Condition::new().eq("plan", "pro"));
        hashed.meta.conditions.push(Condition::new().gte("age", 18));
        hashed.meta.bucketer = Bucketer::consistent_hash(Percentage::fixed(0.5), ["user_id"]);
        store.put(&hashed, Default::default()).await.unwrap();
        let live = LiveFlags::start(store.clone(), LiveOptions::default()).await;
        let ctx = Checks::new()
            .with("user_id", 42)
            .with("plan", "pro")
            .with("age", 30);
        let (empty, only_id) = (Checks::new(), Checks::new().with("user_id", 42));
        // Inputs are made opaque once, outside the timed loops: `black_box` on a `&str` inside
        // the loop stores and reloads it, and that reload (a 16-byte load of two 8-byte stores)
        // misses store forwarding and costs more than the lookup itself.
        let (static_flag, missing, hashed_flag) = (
            black_box("flag_042"),
            black_box("missing"),
            black_box("two_conditions_hash"),
        );
        let (empty, ctx, only_id) = (black_box(&empty), black_box(&ctx), black_box(&only_id));

        if arg(1) == Some("count") {
            let n = number(3, 0);
            for _ in 0..n {
                match arg(2) {
                    Some("static") => {
                        black_box(live.is_enabled(static_flag, empty));
                    }
                    Some("evaluate") => {
                        black_box(live.evaluate(static_flag, empty, false));
                    }
                    Some("missing") => {
                        black_box(live.is_enabled(missing, empty));
                    }
                    Some("conditions") => {
                        black_box(live.is_enabled(hashed_flag, ctx));
                    }
                    Some("hash") => {
                        black_box(live.is_enabled(hashed_flag, empty));
                    }
                    Some("all") => {
                        let snapshot = live.snapshot();
                        for (name, e) in snapshot.evaluate_all(empty) {
                            black_box((name, e));
                        }
                    }
                    _ => {
                        black_box(());
                    }
                }
            }
            return;
        }

        let n = 20_000_000;
        let t = per_call(n, || {
            black_box(live.is_enabled(static_flag, empty));
        });
        println!("static flag, is_enabled:            {t:?}");
        let t = per_call(n, || {
            black_box(live.evaluate(static_flag, empty, false));
        });
        println!("static flag, evaluate:              {t:?}");
        let t = per_call(n, || {
            black_box(live.is_enabled(missing, empty));
        });
        println!("missing flag:                       {t:?}");
        let t = per_call(n / 4, || {
            black_box(live.is_enabled(hashed_flag, ctx));
        });
        println!("two conditions (checks given):      {t:?}");
        let t = per_call(n / 10, || {
            black_box(live.is_enabled(hashed_flag, empty));
        });
        println!("consistent hash (no checks):        {t:?}");
        let t = per_call(n / 10, || {
            black_box(live.is_enabled(hashed_flag, only_id));
        });
        println!("conditions + hash (user_id only):   {t:?}");
        // Baselines, to read the figures above on a busy machine.
        let swap = arc_swap::ArcSwap::from_pointee(42u64);
        let t = per_call(n, || {
            black_box(**swap.load());
        });
        println!("baseline: ArcSwap load + drop:       {t:?}");
        let map: std::collections::HashMap<String, bool> =
            (0..100).map(|i| (format!("flag_{i:03}"), true)).collect();
        let t = per_call(n, || {
            black_box(map.get(static_flag));
        });
        println!("baseline: std HashMap<String> get:   {t:?}");
        let flags = u32::try_from(live.flags().len()).unwrap_or(1);
        let t = per_call(n / 100, || {
            let snapshot = live.snapshot();
            for (name, e) in snapshot.evaluate_all(empty) {
                black_box((name, e));
            }
        });
        println!(
            "all {flags} flags, one context:      {t:?} ({:?} per flag)",
            t / flags
        );
        println!(
            "sizes: Item {} bytes, Value {}, Bucketer {}",
            std::mem::size_of::<Item>(),
            std::mem::size_of::<flipper::Value>(),
            std::mem::size_of::<Bucketer>(),
        );
        load(10_000).await;
    });
}

/// Times a start over a memory store of `n` simple flags.
async fn load(n: usize) {
    let big = Arc::new(MemoryStore::new());
    big.put_many(&simple_flags(n)).await.unwrap();
    let listed = Instant::now();
    drop(big.list(None, 0).await.unwrap());
    let list_time = listed.elapsed();
    let start = Instant::now();
    let loaded = LiveFlags::start(big, LiveOptions::default()).await;
    println!(
        "start with {} flags: {:?} (of which the store's listing alone: {list_time:?})",
        loaded.flags().len(),
        start.elapsed()
    );
}

/// Holds `n` simple flags (read from a bootstrap file) and exits: under
/// `valgrind --tool=dhat`, the bytes live at exit minus those of `hold 0` are what the flags
/// cost.
async fn hold(n: usize) {
    let dir = std::env::temp_dir().join(format!("live_hold_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("flags.json");
    std::fs::write(&path, flipper::export::render(&simple_flags(n))).unwrap();
    let held = LiveFlags::from_file(&path, LiveOptions::default())
        .await
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    println!("holding {} flags", held.flags().len());
    std::process::exit(0);
}
