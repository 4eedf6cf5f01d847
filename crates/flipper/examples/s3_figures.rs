//! Figures for the S3 store, against moto's S3 server (started here, as the tests start it):
//! requests per client operation (counted in moto's access log), requests per minute of an
//! idle watch, how soon another process's write reaches a watch, listing and live-flags load
//! times, and lost updates under concurrent read-modify-writes beside flipper-client's
//! `S3FeatureFlagStore` (driven through `tests/python/interop.py`).
//!
//! ```sh
//! cargo run --release -p flipper --features s3 --example s3_figures
//! ```
//! Needs `pip install 'moto[server]==5.2.1' 'flipper-client==1.3.2'`.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flipper::live::{LiveFlags, LiveOptions};
use flipper::store::{Change, S3Config, S3Store, Store, StoreExt};
use flipper::{Checks, Condition, FeatureFlagClient, Value};
use flipper_testkit::MotoServer;
use futures_util::StreamExt;

fn config(moto: &MotoServer, bucket: &str) -> S3Config {
    S3Config::new(bucket)
        .with_endpoint(moto.url())
        .with_region(MotoServer::REGION)
        .with_allow_http(true)
        .with_credentials(MotoServer::ACCESS_KEY_ID, MotoServer::SECRET_ACCESS_KEY)
}

/// Access-log lines since `mark` (a line count), as `METHOD kind` counts.
fn requests_since(moto: &MotoServer, mark: usize) -> (usize, Vec<(String, usize)>) {
    let log = moto.log();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("\" ")).collect();
    let mut counts: Vec<(String, usize)> = Vec::new();
    for line in lines.iter().skip(mark) {
        let request = line.split('"').nth(1).unwrap_or_default();
        let mut parts = request.split(' ');
        let method = parts.next().unwrap_or_default();
        let target = parts.next().unwrap_or_default();
        let kind = if target.contains("list-type=2") {
            format!("{method} (ListObjectsV2)")
        } else {
            method.to_owned()
        };
        match counts.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => counts.push((kind, 1)),
        }
    }
    (lines.len(), counts)
}

fn show(counts: &[(String, usize)]) -> String {
    let parts: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
    if parts.is_empty() {
        "none".to_owned()
    } else {
        parts.join(", ")
    }
}

/// One client operation to count the requests of.
type Op<'a> = std::pin::Pin<Box<dyn Future<Output = ()> + 'a>>;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let Some(moto) = MotoServer::start() else {
        eprintln!("moto is not installed: pip install 'moto[server]==5.2.1'");
        return;
    };
    let bucket = moto.create_bucket();
    let store = S3Store::new(config(&moto, &bucket).with_poll_interval(None)).unwrap();
    let client = FeatureFlagClient::new(store.clone());

    println!("== requests per operation (moto's access log)");
    let (mut mark, _) = requests_since(&moto, 0);
    let ops: Vec<(&str, Op<'_>)> = vec![
        (
            "create",
            Box::pin(async { client.create("f", false, None).await.map(drop).unwrap() }),
        ),
        (
            "enable",
            Box::pin(async { client.enable("f").await.unwrap() }),
        ),
        (
            "add_condition",
            Box::pin(async {
                client
                    .add_condition("f", Condition::new().gte("age", 18))
                    .await
                    .unwrap()
            }),
        ),
        (
            "is_enabled",
            Box::pin(async {
                client.is_enabled("f", &Checks::new().with("age", 20)).await;
            }),
        ),
        (
            "destroy",
            Box::pin(async { client.destroy("f").await.unwrap() }),
        ),
    ];
    for (name, op) in ops {
        op.await;
        let (now, counts) = requests_since(&moto, mark);
        mark = now;
        println!("{name:>14}: {}", show(&counts));
    }

    println!("== listing and loading");
    for n in [100usize, 500] {
        let bucket = moto.create_bucket();
        let store = S3Store::new(config(&moto, &bucket).with_poll_interval(None)).unwrap();
        let items: Vec<_> = (0..n)
            .map(|i| flipper::Item::new(format!("flag-{i:04}"), i % 2 == 0, 1_700_000_000))
            .collect();
        let started = Instant::now();
        store.put_many(&items).await.unwrap();
        let put = started.elapsed();
        let started = Instant::now();
        assert_eq!(store.list(None, 0).await.unwrap().len(), n);
        let list = started.elapsed();
        let started = Instant::now();
        let live = LiveFlags::start(Arc::new(store), LiveOptions::default()).await;
        assert!(live.is_initialized());
        println!(
            "{n:>5} flags: put_many {put:.2?}, list {list:.2?}, live flags loaded in {:.2?}",
            started.elapsed()
        );
    }

    println!("== an idle watch (100 flags, poll_interval=2s, 20 s)");
    let bucket = moto.create_bucket();
    let writer = S3Store::new(config(&moto, &bucket).with_poll_interval(None)).unwrap();
    let items: Vec<_> = (0..100)
        .map(|i| flipper::Item::new(format!("flag-{i:03}"), true, 1_700_000_000))
        .collect();
    writer.put_many(&items).await.unwrap();
    let every = Duration::from_secs(2);
    let watched = S3Store::new(config(&moto, &bucket).with_poll_interval(Some(every))).unwrap();
    let mut changes = watched.watch().unwrap();
    assert!(matches!(changes.next().await, Some(Change::Resync)));
    let (mark, _) = requests_since(&moto, 0);
    tokio::time::sleep(Duration::from_secs(20)).await;
    let (_, counts) = requests_since(&moto, mark);
    let total: usize = counts.iter().map(|(_, n)| n).sum();
    println!(
        "requests in 20 s: {} = {:.1} per minute",
        show(&counts),
        total as f64 * 3.0
    );

    println!("== another process's write reaching the watch (poll_interval=1s, 10 writes)");
    let watched =
        S3Store::new(config(&moto, &bucket).with_poll_interval(Some(Duration::from_secs(1))))
            .unwrap();
    let mut changes = watched.watch().unwrap();
    assert!(matches!(changes.next().await, Some(Change::Resync)));
    let mut delays = Vec::new();
    for i in 0..10 {
        tokio::time::sleep(Duration::from_millis(fastrand::u64(100..900))).await;
        let started = Instant::now();
        writer.set(&format!("flag-{i:03}"), false).await.unwrap();
        loop {
            if let Some(Change::Put { .. }) = changes.next().await {
                break;
            }
        }
        delays.push(started.elapsed());
    }
    delays.sort();
    println!(
        "delay: min {:.0?}, median {:.0?}, max {:.0?}",
        delays[0],
        delays[delays.len() / 2],
        delays[delays.len() - 1]
    );

    println!("== lost updates: 4 writers x 30 read-modify-writes on one flag");
    let bucket = moto.create_bucket();
    let store = Arc::new(S3Store::new(config(&moto, &bucket).with_poll_interval(None)).unwrap());
    store.create("hammer", false, None).await.unwrap();
    let started = Instant::now();
    let tasks: Vec<_> = (0..4)
        .map(|w| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                for m in 0..30 {
                    store
                        .update("hammer", |item| {
                            if let Value::Object(o) = &mut item.meta.client_data {
                                o.insert(format!("w{w}_m{m}"), Value::from(m));
                            }
                            Ok(())
                        })
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let kept = store
        .get("hammer")
        .await
        .unwrap()
        .unwrap()
        .item
        .meta
        .client_data;
    println!(
        "flipper: {} of 120 updates kept ({:.1?})",
        kept.as_object().map_or(0, |o| o.len()),
        started.elapsed()
    );
    python_hammer(&moto);
}

/// flipper-client's `S3FeatureFlagStore` under the same load (conditions, client data and
/// toggles mixed, as `hammer` in interop.py does).
fn python_hammer(moto: &MotoServer) {
    let bucket = moto.create_bucket();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/interop.py");
    let Ok(mut child) = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
    else {
        return println!("flipper-client: python3 is missing");
    };
    let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return;
    };
    let mut stdout = BufReader::new(stdout);
    let mut call = |cmd: serde_json::Value| -> serde_json::Value {
        writeln!(stdin, "{cmd}").unwrap();
        stdin.flush().unwrap();
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_default()
    };
    call(
        serde_json::json!({"op": "open", "kind": "s3", "bucket": bucket,
        "endpoint_url": moto.url(), "region": MotoServer::REGION,
        "access_key_id": MotoServer::ACCESS_KEY_ID,
        "secret_access_key": MotoServer::SECRET_ACCESS_KEY}),
    );
    let started = Instant::now();
    let answer = call(
        serde_json::json!({"op": "hammer", "name": "hammer", "writers": 4,
        "mutations": 30}),
    );
    let ok = &answer["ok"];
    println!(
        "flipper-client: {} of {} conditions and {} of {} client_data keys kept ({:.1?}); errors: {}",
        ok["conditions"],
        ok["expected_conditions"],
        ok["client_data"],
        ok["expected_client_data"],
        started.elapsed(),
        ok["errors"]
    );
    let _ = child.kill();
    let _ = child.wait();
}
