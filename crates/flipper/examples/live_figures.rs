//! Live flags' memory, load time and propagation figures, measured in one run and printed as
//! markdown tables (`scripts/bench-live` runs this after the evaluation benchmark).
//!
//! * Memory: the bytes a [`LiveFlags`] holds for 10,000 simple flags (on or off, no rule),
//!   minus what it holds for none, counted by a counting global allocator (`stats_alloc`: the
//!   sizes requested, so malloc's own overhead is estimated apart); the same 10,000 flags in
//!   Unleash's engine (`unleash-yggdrasil` 0.21.7, features with no strategy) beside it.
//! * Load: [`LiveFlags::start`] over a memory store of those 10,000 flags, and
//!   [`LiveFlags::from_file`] on their export file; yggdrasil's `apply_client_features`.
//! * Propagation: a writer makes 1,000 writes to one flag (each waits until every client saw
//!   the previous one); 10 live clients, each with its own store handle (connections), note
//!   when each write arrives (`subscribe_versions`, then the flag's `client_data.seq`). From
//!   the start of the write call to the arrival, over the 10,000 (write, client) pairs: the
//!   embedded database (redb) through a `flipper serve` process's change stream, Redis with
//!   the writes made through flipper (the change channel), Redis with writes made by another
//!   program (a plain `SET` of flipper-client's bytes, as Python writes: keyspace
//!   notifications), and PostgreSQL (its NOTIFY trigger).
//!
//! `live_figures [memory|propagation] --flipper PATH` (PATH: a release build of the
//! `flipper` command, for `flipper serve`). Needs redis-server and PostgreSQL
//! (flipper-testkit starts them).

use std::alloc::System;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flipper::live::{LiveFlags, LiveOptions};
use flipper::store::{MemoryStore, PutMode, Store};
use flipper::{Item, Object, Value};
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use tokio::sync::mpsc;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const FLAGS: usize = 10_000;
const LOAD_RUNS: usize = 5;
const CLIENTS: usize = 10;
const WRITES: usize = 1_000;
const WARMUP_WRITES: usize = 10;
const FLAG: &str = "propagate";
/// How long one write may take to reach every client before it counts as lost.
const PATIENCE: Duration = Duration::from_secs(5);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let only = args.get(1).filter(|a| !a.starts_with("--")).cloned();
    let flipper_bin = args
        .iter()
        .position(|a| a == "--flipper")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .or_else(|| std::env::var("FLIPPER_BIN").ok());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        if only.as_deref() != Some("propagation") {
            memory_and_load().await;
        }
        if only.as_deref() != Some("memory") {
            let bin = flipper_bin.expect("--flipper PATH (a release build of `flipper`)");
            propagation(&bin).await;
        }
    });
}

// ------------------------------------------------------------------ memory and load

/// `n` simple flags: on or off, no condition, no bucketer.
fn simple_flags(n: usize) -> Vec<Item> {
    (0..n)
        .map(|i| {
            Item::new(
                format!("feature_{i:06}"),
                i.is_multiple_of(2),
                1_700_000_000,
            )
        })
        .collect()
}

/// The same flags as Unleash features (no strategy: on or off for everyone).
fn simple_features(n: usize) -> unleash_yggdrasil::ClientFeatures {
    let features: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            serde_json::json!({"name": format!("feature_{i:06}"), "type": "release",
                               "enabled": i.is_multiple_of(2), "project": "default", "strategies": []})
        })
        .collect();
    serde_json::from_value(serde_json::json!({"version": 2, "features": features}))
        .expect("Unleash features")
}

/// Bytes and blocks live now, as the counting allocator sees them.
fn live_heap() -> (i64, i64) {
    let s = GLOBAL.stats();
    (
        s.bytes_allocated as i64 - s.bytes_deallocated as i64,
        s.allocations as i64 - s.deallocations as i64,
    )
}

/// Lets background tasks finish what the last step started.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// What live flags over a memory store of `n` simple flags hold (the store's own copy is
/// there before and after, so it is not counted).
async fn held_by_live_flags(n: usize) -> (i64, i64) {
    let store = Arc::new(MemoryStore::new());
    store.put_many(&simple_flags(n)).await.expect("put");
    settle().await;
    let before = live_heap();
    let live = LiveFlags::start(store.clone(), LiveOptions::default()).await;
    assert_eq!(live.flags().len(), n);
    settle().await;
    let after = live_heap();
    drop(live);
    (after.0 - before.0, after.1 - before.1)
}

/// What yggdrasil holds for `n` simple features (built from JSON as a client would parse
/// them, inside the measurement: the engine keeps them beside its compiled form).
fn held_by_yggdrasil(n: usize) -> (i64, i64) {
    let before = live_heap();
    let engine = unleash_yggdrasil::EngineState::default();
    let warnings = engine.apply_client_features(simple_features(n));
    assert!(warnings.is_none(), "{warnings:?}");
    let after = live_heap();
    drop(engine);
    (after.0 - before.0, after.1 - before.1)
}

/// The size of glibc's chunk for an allocation of `n` bytes (64-bit).
fn glibc_block(n: usize) -> usize {
    ((n + 8 + 15) & !15).max(32)
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "**missed**" }
}

async fn memory_and_load() {
    // Memory.
    let (live_n, live_0) = (held_by_live_flags(FLAGS).await, held_by_live_flags(0).await);
    let (ygg_n, ygg_0) = (held_by_yggdrasil(FLAGS), held_by_yggdrasil(0));
    let per = |(a, b): (i64, i64), (c, d): (i64, i64)| {
        ((a - c) as f64 / FLAGS as f64, (b - d) as f64 / FLAGS as f64)
    };
    let (live_bytes, live_blocks) = per(live_n, live_0);
    let (ygg_bytes, ygg_blocks) = per(ygg_n, ygg_0);
    // glibc malloc: an 8-byte header per block, blocks in 16-byte steps, 32 bytes at least:
    // between 8 and 23 bytes more per block.
    let overhead = |bytes: f64, blocks: f64| (bytes + 8.0 * blocks, bytes + 23.0 * blocks);
    let (ygg_lo, ygg_hi) = overhead(ygg_bytes, ygg_blocks);
    // A simple flag's own blocks in live flags, when the count says there are three: the
    // shared flag (`Arc<Item>`), its name, its `client_data` map (boxed); the rest is its
    // share of the set's two arrays (entries, index), whose overhead is negligible.
    let name = "feature_000000".len();
    let blocks = [
        16 + std::mem::size_of::<Item>(),
        name,
        std::mem::size_of::<Object>(),
    ];
    let own: usize = blocks.iter().sum();
    let exact = ((live_blocks - 3.0).abs() < 0.01 && live_bytes >= own as f64).then(|| {
        let extra: usize = blocks.iter().map(|&n| glibc_block(n) - n).sum();
        live_bytes + extra as f64
    });

    // Load time.
    let store = Arc::new(MemoryStore::new());
    store.put_many(&simple_flags(FLAGS)).await.expect("put");
    let mut listing = Vec::new();
    let mut starts = Vec::new();
    let allocations = || GLOBAL.stats().allocations;
    let mut start_allocations = 0;
    for _ in 0..LOAD_RUNS {
        let t = Instant::now();
        drop(store.list(None, 0).await.expect("list"));
        listing.push(t.elapsed());
        let (a, t) = (allocations(), Instant::now());
        let live = LiveFlags::start(store.clone(), LiveOptions::default()).await;
        starts.push(t.elapsed());
        start_allocations = allocations() - a;
        assert_eq!(live.flags().len(), FLAGS);
        drop(live);
        settle().await;
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("flags.json");
    std::fs::write(&path, flipper::export::render(&simple_flags(FLAGS))).expect("export");
    let mut from_file = Vec::new();
    let mut file_allocations = 0;
    for _ in 0..LOAD_RUNS {
        let (a, t) = (allocations(), Instant::now());
        let live = LiveFlags::from_file(&path, LiveOptions::default())
            .await
            .expect("from_file");
        from_file.push(t.elapsed());
        file_allocations = allocations() - a;
        assert_eq!(live.flags().len(), FLAGS);
    }
    let features = simple_features(FLAGS);
    let mut ygg_loads = Vec::new();
    let mut ygg_allocations = 0;
    for _ in 0..LOAD_RUNS {
        let engine = unleash_yggdrasil::EngineState::default();
        let input = features.clone();
        let (a, t) = (allocations(), Instant::now());
        engine.apply_client_features(input);
        ygg_loads.push(t.elapsed());
        ygg_allocations = allocations() - a;
    }
    let (start, listed, file, ygg_load) = (
        median(starts),
        median(listing),
        median(from_file),
        median(ygg_loads),
    );

    println!("## Memory and load: {FLAGS} simple flags (on or off, no rule)\n");
    println!("| measure | flipper live flags | yggdrasil 0.21.7 | target | flipper |");
    println!("|---|---|---|---|---|");
    println!(
        "| bytes held per flag (sizes requested from the allocator) | {live_bytes:.0} B | {ygg_bytes:.0} B | ≤ 512 B | {} |",
        verdict(live_bytes <= 512.0)
    );
    println!("| allocator blocks held per flag | {live_blocks:.2} | {ygg_blocks:.2} | | |");
    match exact {
        Some(total) => println!(
            "| with glibc's overhead (8-byte header, 16-byte steps; flipper: its blocks of {} B (flag), {name} B (name), {} B (client_data map); yggdrasil: +8 to +23 B a block) | {total:.0} B | {ygg_lo:.0}–{ygg_hi:.0} B | ≤ 512 B | {} |",
            blocks[0],
            blocks[2],
            verdict(total <= 512.0)
        ),
        None => {
            let (lo, hi) = overhead(live_bytes, live_blocks);
            println!(
                "| with glibc's per-block overhead (+8 to +23 B a block) | {lo:.0}–{hi:.0} B | {ygg_lo:.0}–{ygg_hi:.0} B | ≤ 512 B | {} |",
                verdict(hi <= 512.0)
            );
        }
    }
    println!(
        "| load {FLAGS} flags, median of {LOAD_RUNS}: `LiveFlags::start` over a memory store | {} (the store's listing alone: {}; {start_allocations} allocations) | {} (`apply_client_features`; {ygg_allocations} allocations) | ≤ 30 ms | {} |",
        ms(start),
        ms(listed),
        ms(ygg_load),
        verdict(start <= Duration::from_millis(30))
    );
    println!(
        "| load {FLAGS} flags, median of {LOAD_RUNS}: `LiveFlags::from_file` (a cold start from the export file: reading and parsing its JSON included) | {} ({file_allocations} allocations) | | ≤ 30 ms | {} |",
        ms(file),
        verdict(file <= Duration::from_millis(30))
    );
    println!(
        "\nThe counting allocator adds one atomic increment per allocation to the load times \
         (the allocations counted above)."
    );
    println!();
}

// ------------------------------------------------------------------ propagation

/// How the writer writes.
enum Writer {
    /// Through a flipper store.
    Store(Arc<dyn Store>),
    /// A plain `SET` of flipper-client's bytes at `key`, as another program would.
    RawRedis {
        con: redis::aio::MultiplexedConnection,
        key: String,
    },
}

impl Writer {
    async fn write(&mut self, seq: usize) {
        let mut item = Item::new(FLAG, seq.is_multiple_of(2), 1_700_000_000);
        let mut data = Object::new();
        data.insert("seq".into(), Value::from(seq as i64));
        item.meta.client_data = Value::from(data);
        match self {
            Self::Store(store) => {
                store
                    .put(&item, PutMode::Overwrite)
                    .await
                    .expect("the write");
            }
            Self::RawRedis { con, key } => {
                let () = redis::cmd("SET")
                    .arg(&*key)
                    .arg(item.serialize())
                    .query_async(con)
                    .await
                    .expect("SET");
            }
        }
    }
}

/// The write number a client's live flags hold.
fn seq_of(live: &LiveFlags) -> Option<usize> {
    let item = live.get(FLAG)?;
    let seq = item.meta.client_data.as_object()?.get("seq")?.as_i64()?;
    usize::try_from(seq).ok()
}

struct Figures {
    latencies: Vec<Duration>,
    acks: Vec<Duration>,
    lost: usize,
}

/// 10 live clients (each over the store `open` returns), a writer, the writes.
async fn propagate(open: impl Fn() -> Arc<dyn Store>, mut writer: Writer) -> Figures {
    let (tx, mut rx) = mpsc::unbounded_channel::<(usize, Instant)>();
    let mut clients = Vec::new();
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let live = LiveFlags::start(open(), LiveOptions::default()).await;
        assert!(live.is_initialized(), "{:?}", live.status());
        let mut versions = live.subscribe_versions();
        let (watched, tx) = (live.clone(), tx.clone());
        tasks.push(tokio::spawn(async move {
            let mut last = None;
            while versions.changed().await.is_ok() {
                let seq = seq_of(&watched);
                if seq > last {
                    last = seq;
                    let at = Instant::now();
                    if let Some(seq) = seq
                        && tx.send((seq, at)).is_err()
                    {
                        return;
                    }
                }
            }
        }));
        clients.push(live);
    }
    let mut figures = Figures {
        latencies: Vec::with_capacity(WRITES * CLIENTS),
        acks: Vec::with_capacity(WRITES),
        lost: 0,
    };
    for seq in 1..=WARMUP_WRITES + WRITES {
        let counted = seq > WARMUP_WRITES;
        let start = Instant::now();
        writer.write(seq).await;
        if counted {
            figures.acks.push(start.elapsed());
        }
        let deadline = tokio::time::Instant::from_std(start + PATIENCE);
        let mut seen = 0;
        while seen < CLIENTS {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some((s, at))) if s == seq => {
                    seen += 1;
                    if counted {
                        figures.latencies.push(at - start);
                    }
                }
                Ok(Some(_)) => {}
                _ => break,
            }
        }
        if counted {
            figures.lost += CLIENTS - seen;
        }
    }
    for task in tasks {
        task.abort();
    }
    drop(clients);
    figures
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn report(backend: &str, how: &str, mut f: Figures) {
    f.latencies.sort();
    f.acks.sort();
    let (p50, p99) = (
        percentile(&f.latencies, 50.0),
        percentile(&f.latencies, 99.0),
    );
    let max = f.latencies.last().copied().unwrap_or_default();
    let met = f.lost == 0 && p50 <= Duration::from_millis(20) && p99 <= Duration::from_millis(100);
    println!(
        "| {backend} | {how} | {} | {} | {} | {} | {} | {} | {} |",
        f.latencies.len(),
        ms(p50),
        ms(p99),
        ms(max),
        ms(percentile(&f.acks, 50.0)),
        f.lost,
        verdict(met)
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A `flipper serve` process on the embedded database, stopped when dropped.
struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `flipper serve` on a redb file in `dir` (its log there too).
async fn serve(bin: &str, dir: &std::path::Path) -> (Serve, String) {
    let port = free_port();
    let log = std::fs::File::create(dir.join("serve.log")).expect("a log file");
    let child = Command::new(bin)
        .arg("--store")
        .arg(format!("redb:{}", dir.join("flags.redb").display()))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("a log file"))
        .stderr(log)
        .spawn()
        .expect("flipper serve starts");
    let server = Serve(child);
    let url = format!("http://127.0.0.1:{port}");
    let probe = flipper::store::open(&url).expect("an http store");
    let deadline = Instant::now() + Duration::from_secs(30);
    while probe.list(Some(1), 0).await.is_err() {
        assert!(Instant::now() < deadline, "flipper serve did not answer");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (server, url)
}

async fn propagation(bin: &str) {
    println!(
        "## Propagation: {WRITES} writes to one flag, {CLIENTS} live clients (each its own store handle)\n"
    );
    println!(
        "From the start of the write call to the client's version notification, over every \
         (write, client) pair; each write starts once every client saw the previous one \
         ({WARMUP_WRITES} warm-up writes first, not counted). Target: p50 ≤ 20 ms, p99 ≤ 100 ms.\n"
    );
    println!(
        "| backend | how changes travel | samples | p50 | p99 | max | write call p50 | lost | target |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");

    // The embedded database through the server's stream.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (server, url) = serve(bin, dir.path()).await;
    let open = || flipper::store::open(&url).expect("an http store");
    let figures = propagate(open, Writer::Store(open())).await;
    report(
        "embedded database (redb) via `flipper serve`",
        "writes through the server's API (an HTTP store); clients follow `GET /api/v1/stream`",
        figures,
    );
    drop(server);

    // Redis, writes through flipper.
    let redis = flipper_testkit::RedisServer::start(flipper_testkit::RedisOptions::default())
        .expect("redis-server");
    let url = format!("{}/?base_key=propagation", redis.url());
    let open = || flipper::store::open(&url).expect("a Redis store");
    let figures = propagate(open, Writer::Store(open())).await;
    report(
        "Redis",
        "writes through flipper's Redis store: the change channel (keyspace notifications off)",
        figures,
    );
    drop(redis);

    // Redis, another program's plain SET.
    let redis = flipper_testkit::RedisServer::start(
        flipper_testkit::RedisOptions::default().keyspace_notifications(true),
    )
    .expect("redis-server");
    let url = format!("{}/?base_key=foreign", redis.url());
    let con = redis::Client::open(redis.url())
        .expect("a Redis client")
        .get_multiplexed_async_connection()
        .await
        .expect("a Redis connection");
    let open = || flipper::store::open(&url).expect("a Redis store");
    let writer = Writer::RawRedis {
        con,
        key: format!("foreign/{FLAG}"),
    };
    let figures = propagate(open, writer).await;
    report(
        "Redis",
        "a plain `SET` of flipper-client's bytes (as Python writes): keyspace notifications, then a read",
        figures,
    );
    drop(redis);

    // PostgreSQL.
    let pg = flipper_testkit::postgres().expect("PostgreSQL");
    let db = pg.fresh_database();
    let open = || flipper::store::open(&db).expect("a PostgreSQL store");
    let figures = propagate(open, Writer::Store(open())).await;
    report(
        "PostgreSQL",
        "writes through flipper's PostgreSQL store; the table's NOTIFY trigger (any writer), then a read",
        figures,
    );
    println!();
}
