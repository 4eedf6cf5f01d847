//! KV requests per minute while idle: flipper's Consul store (a watch, and live flags, on
//! blocking queries) beside flipper-client's `ConsulFeatureFlagStore` (whose watch thread
//! polls without an index), each alone on its own fake Consul agent (flipper-testkit), counted
//! by the agent over a window and scaled to a minute. Run by `scripts/bench-consul`.
//!
//! Usage: `consul_idle [SECONDS]` (the window, default 10). The Python part needs python3
//! with flipper-client 1.3.2 (and its python-consul); without it that row says so.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flipper::Item;
use flipper::live::{LiveFlags, LiveOptions};
use flipper::store::{ConsulConfig, ConsulStore, PutMode, Store};
use flipper_testkit::FakeConsul;

/// Flags in the store while idle.
const FLAGS: usize = 20;

fn seed(consul: &FakeConsul) {
    for i in 0..FLAGS {
        let item = Item::new(format!("flag-{i}"), i % 2 == 0, 1_700_000_000);
        consul.put(&format!("features/flag-{i}"), &item.serialize());
    }
}

/// Counts the KV requests `consul` receives over `window`.
async fn idle_requests(consul: &FakeConsul, window: Duration) -> u64 {
    consul.reset_requests();
    tokio::time::sleep(window).await;
    consul.kv_requests()
}

async fn rust_watch(window: Duration, wait: Option<&str>) -> u64 {
    let consul = FakeConsul::start();
    seed(&consul);
    let url = match wait {
        Some(wait) => format!("{}?wait={wait}", consul.url()),
        None => consul.url(),
    };
    let store = ConsulStore::new(ConsulConfig::from_url(&url).expect("a URL")).expect("a store");
    let mut changes = store.watch().expect("a watch");
    // Live once the first read is done (the opening resync).
    futures_util::StreamExt::next(&mut changes).await;
    // A write, so the watch is past its first blocking answer.
    store
        .put(&Item::new("warm", true, 1), PutMode::Overwrite)
        .await
        .expect("a write");
    tokio::time::sleep(Duration::from_millis(300)).await;
    idle_requests(&consul, window).await
}

async fn rust_live(window: Duration) -> u64 {
    let consul = FakeConsul::start();
    seed(&consul);
    let store: Arc<dyn Store> = Arc::new(ConsulStore::from_url(&consul.url()).expect("a store"));
    let live = LiveFlags::start(store, LiveOptions::default()).await;
    assert_eq!(live.flags().len(), FLAGS, "live flags loaded");
    tokio::time::sleep(Duration::from_millis(300)).await;
    idle_requests(&consul, window).await
}

/// flipper-client's store on a fresh agent: `None` when Python or flipper-client is missing.
async fn python(window: Duration) -> Option<u64> {
    let consul = FakeConsul::start();
    seed(&consul);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/interop.py");
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut stdin = child.stdin.take()?;
    let mut stdout = BufReader::new(child.stdout.take()?);
    let mut call = |cmd: String| -> Option<String> {
        writeln!(stdin, "{cmd}").ok()?;
        stdin.flush().ok()?;
        let mut line = String::new();
        stdout.read_line(&mut line).ok()?;
        line.contains("\"ok\"").then_some(line)
    };
    let answer = call(format!(
        r#"{{"op": "open", "kind": "consul", "port": {}, "base_key": "features"}}"#,
        consul.port()
    ));
    let mut count = None;
    if answer.is_some() {
        // Idle once its cache holds the flags.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let raw = call(r#"{"op": "raw", "name": "flag-0"}"#.to_owned());
            if raw.is_some_and(|line| !line.contains("null")) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        count = Some(idle_requests(&consul, window).await);
    }
    let _ = child.kill();
    let _ = child.wait();
    count
}

#[tokio::main]
async fn main() {
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .filter(|s| *s > 0)
        .unwrap_or(10);
    let window = Duration::from_secs(seconds);
    let per_minute = |n: u64| n as f64 * 60.0 / window.as_secs_f64();
    println!(
        "KV requests per minute while idle ({FLAGS} flags, each client alone on a fake Consul \
         agent, counted over {seconds} s)\n"
    );
    println!("| client | requests in {seconds} s | per minute |");
    println!("|---|---:|---:|");
    let rows: [(&str, u64); 3] = [
        (
            "flipper ConsulStore::watch (wait=5m, the default)",
            rust_watch(window, None).await,
        ),
        (
            "flipper LiveFlags over ConsulStore (wait=5m)",
            rust_live(window).await,
        ),
        (
            "flipper ConsulStore::watch, wait=2s",
            rust_watch(window, Some("2s")).await,
        ),
    ];
    for (client, n) in rows {
        println!("| {client} | {n} | {:.1} |", per_minute(n));
    }
    match python(window).await {
        Some(n) => println!(
            "| flipper-client 1.3.2 ConsulFeatureFlagStore (watch thread, no index) | {n} | {:.0} |",
            per_minute(n)
        ),
        None => println!(
            "| flipper-client 1.3.2 ConsulFeatureFlagStore | not measured: python3 with \
             flipper-client 1.3.2 is needed | |"
        ),
    }
    println!(
        "\nA blocking query costs one request per `wait` while nothing changes (the default \
         wait of 5 min: 0.2 per minute; the window may see none)."
    );
}
