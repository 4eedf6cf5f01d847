//! Prints the Redis and PostgreSQL stores' figures beside flipper-client 1.3.2's, measured in
//! the same run on servers this program starts (flipper-testkit): lost updates under concurrent
//! writers, and round trips per client operation counted on the Redis server (MONITOR).
//!
//! Run it with `scripts/bench-stores` (needs redis-server, PostgreSQL, python3 with
//! flipper-client, redis and psycopg; see .ci/run).

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use flipper::store::Store;
use flipper::{Checks, Condition, FeatureFlagClient, Object};

const WRITERS: usize = 8;
const MUTATIONS: usize = 100;

/// Survivors of the hammer: (conditions, client-data keys, toggles that failed).
struct Kept {
    conditions: usize,
    client_data: usize,
    failed: usize,
}

/// `WRITERS` tasks × `MUTATIONS` read-modify-writes on one flag: by `m % 3`, add a condition,
/// merge a distinct client-data key, or toggle (the same mix as interop.py's `hammer`).
async fn hammer_rust(store: Arc<dyn Store>, name: &str) -> Kept {
    let client = FeatureFlagClient::from_arc(store);
    client.create(name, false, None).await.expect("create");
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let client = client.clone();
            let name = name.to_owned();
            tokio::spawn(async move {
                let mut failed = 0;
                for m in 0..MUTATIONS {
                    let key = format!("w{w}_m{m}");
                    let done = match m % 3 {
                        0 => {
                            client
                                .add_condition(&name, Condition::new().eq(&key, m as i64))
                                .await
                        }
                        1 => {
                            let mut data = Object::new();
                            data.insert(key, (m as i64).into());
                            client.set_client_data(&name, data).await
                        }
                        _ if m % 2 == 1 => client.enable(&name).await,
                        _ => client.disable(&name).await,
                    };
                    if let Err(e) = done {
                        eprintln!("writer {w}: {e}");
                        failed += 1;
                    }
                }
                failed
            })
        })
        .collect();
    let mut failed = 0;
    for t in tasks {
        failed += t.await.expect("writer task");
    }
    let meta = client.get_meta(name).await.expect("meta");
    Kept {
        conditions: meta.conditions.len(),
        client_data: meta.client_data.as_object().map_or(0, |o| o.len()),
        failed,
    }
}

fn expected() -> (usize, usize) {
    let per = |r| (0..MUTATIONS).filter(|m| m % 3 == r).count() * WRITERS;
    (per(0), per(1))
}

/// The Python flipper-client driver (tests/python/interop.py).
struct Python(flipper_testkit::PythonProcess);

impl Python {
    fn start() -> Self {
        let script = std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/python/interop.py"
        ));
        Self(
            flipper_testkit::PythonProcess::start(script, &[], &["flipper", "redis", "psycopg"])
                .expect("python3 with flipper-client"),
        )
    }

    fn call(&mut self, cmd: serde_json::Value) -> serde_json::Value {
        self.0.ok(cmd)
    }
}

fn hammer_python(open: serde_json::Value, name: &str) -> Kept {
    let mut py = Python::start();
    py.call(open);
    let r = py.call(serde_json::json!({
        "op": "hammer", "name": name, "writers": WRITERS, "mutations": MUTATIONS
    }));
    let n = |k: &str| r[k].as_u64().unwrap_or(0) as usize;
    Kept {
        conditions: n("conditions"),
        client_data: n("client_data"),
        failed: r["errors"].as_array().map_or(0, Vec::len),
    }
}

/// Round trips per operation, counted from `redis-cli MONITOR`: the commands each client
/// sends between two `ECHO mark:OP` markers (commands run inside Lua scripts are not round
/// trips and are not counted).
fn count_round_trips(monitor: &str) -> Vec<(String, usize)> {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for line in monitor.lines() {
        let Some(rest) = line.split_once(" [").map(|(_, r)| r) else {
            continue;
        };
        if rest.contains(" lua]") {
            continue;
        }
        // Clients spell commands as they like (`ECHO`, `echo`).
        let lower = rest.to_ascii_lowercase();
        if let Some(mark) = lower.split("\"echo\" \"mark:").nth(1) {
            counts.push((mark.trim_end_matches('"').to_owned(), 0));
        } else if let Some(last) = counts.last_mut() {
            last.1 += 1;
        }
    }
    counts
}

const OPS: [&str; 7] = [
    "create",
    "enable",
    "is_enabled",
    "add_condition",
    "set_client_data",
    "destroy",
    "end",
];

async fn round_trips_rust(url: &str, marker: &redis::Client) {
    let store = flipper::store::open(&format!("{url}/?base_key=rt-rust")).expect("open");
    let client = FeatureFlagClient::from_arc(store);
    // Connect (and load scripts) before measuring.
    client.create("warm", false, None).await.expect("warm");
    client.enable("warm").await.expect("warm");
    client.destroy("warm").await.expect("warm");
    let mut con = marker.get_connection().expect("marker connection");
    for op in OPS {
        let _: String = redis::cmd("ECHO")
            .arg(format!("mark:{op}"))
            .query(&mut con)
            .expect("echo");
        let done = match op {
            "create" => client.create("rt", false, None).await.map(drop),
            "enable" => client.enable("rt").await,
            "is_enabled" => {
                client.is_enabled("rt", &Checks::new()).await;
                Ok(())
            }
            "add_condition" => {
                client
                    .add_condition("rt", Condition::new().gte("age", 18))
                    .await
            }
            "set_client_data" => {
                let mut data = Object::new();
                data.insert("k".into(), 1.into());
                client.set_client_data("rt", data).await
            }
            "destroy" => client.destroy("rt").await,
            _ => Ok(()),
        };
        done.expect(op);
    }
}

fn round_trips_python(url: &str) {
    let mut py = Python::start();
    py.call(
        serde_json::json!({"op": "open", "kind": "redis", "url": url, "base_key": "rt-python"}),
    );
    let mut marker = redis::Client::open(url)
        .and_then(|c| c.get_connection())
        .expect("marker connection");
    for op in OPS {
        let _: String = redis::cmd("ECHO")
            .arg(format!("mark:{op}"))
            .query(&mut marker)
            .expect("echo");
        let cmd = match op {
            "create" => serde_json::json!({"op": "create", "name": "rt"}),
            "add_condition" => {
                serde_json::json!({"op": "add_condition", "name": "rt", "checks": {"age__gte": 18}})
            }
            "set_client_data" => {
                serde_json::json!({"op": "set_client_data", "name": "rt", "client_data": {"k": 1}})
            }
            "end" => continue,
            other => serde_json::json!({"op": other, "name": "rt"}),
        };
        py.call(cmd);
    }
}

fn row(store: &str, ours: &Kept, theirs: &Kept) {
    let (c, d) = expected();
    println!(
        "| {store} | {}/{c} conditions, {}/{d} client-data keys, {} failed ops | {}/{c} conditions, {}/{d} client-data keys, {} failed ops |",
        ours.conditions,
        ours.client_data,
        ours.failed,
        theirs.conditions,
        theirs.client_data,
        theirs.failed
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let redis = flipper_testkit::redis().expect("redis-server");
    let cluster = flipper_testkit::redis_cluster().expect("a Redis cluster");
    let pg = flipper_testkit::postgres().expect("PostgreSQL");
    let url = redis.url().to_owned();
    // `store_figures [lost-updates|round-trips]`: one part only.
    let only = std::env::args().nth(1).unwrap_or_default();
    if only != "round-trips" {
        lost_updates(&url, cluster, pg).await;
    }
    if only != "lost-updates" {
        round_trips(&url).await;
    }
}

async fn lost_updates(
    url: &str,
    cluster: &flipper_testkit::RedisCluster,
    pg: &flipper_testkit::Postgres,
) {
    println!(
        "## No lost updates: {WRITERS} concurrent writers x {MUTATIONS} read-modify-writes on one flag\n"
    );
    println!("| store | flipper (Rust) | flipper-client 1.3.2 (Python threads) |");
    println!("|---|---|---|");
    let ours = hammer_rust(
        flipper::store::open(&format!("{url}/?base_key=lost-rust")).expect("open"),
        "hot",
    )
    .await;
    let theirs = hammer_python(
        serde_json::json!({"op": "open", "kind": "redis", "url": url, "base_key": "lost-python"}),
        "hot",
    );
    row("Redis", &ours, &theirs);

    let nodes = cluster.node_urls();
    let cluster_url = format!(
        "redis+cluster://{}/?base_key=lost-rust",
        nodes
            .iter()
            .map(|u| u.trim_start_matches("redis://"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let ours = hammer_rust(flipper::store::open(&cluster_url).expect("open"), "hot").await;
    let theirs = hammer_python(
        serde_json::json!({"op": "open", "kind": "redis-cluster", "url": nodes[0], "base_key": "lost-python"}),
        "hot",
    );
    row("Redis Cluster (3 masters)", &ours, &theirs);

    let db = pg.fresh_database();
    let ours = hammer_rust(flipper::store::open(&db).expect("open"), "hot").await;
    let theirs = hammer_python(
        serde_json::json!({"op": "open", "kind": "postgres", "conninfo": db, "table_name": "python_flags"}),
        "hot",
    );
    row("PostgreSQL", &ours, &theirs);
}

async fn round_trips(url: &str) {
    println!("\n## Round trips per client operation, counted on the Redis server (MONITOR)\n");
    let port = url.rsplit(':').next().unwrap_or_default().to_owned();
    let mut monitor = Command::new("redis-cli")
        .args(["-p", &port, "monitor"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("redis-cli monitor");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let marker = redis::Client::open(url).expect("client");
    round_trips_rust(url, &marker).await;
    let ours_end = "mark:end-rust";
    {
        let mut con = marker.get_connection().expect("marker");
        let _: String = redis::cmd("ECHO")
            .arg(ours_end)
            .query(&mut con)
            .expect("echo");
    }
    round_trips_python(url);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = monitor.kill();
    let mut text = String::new();
    std::io::Read::read_to_string(monitor.stdout.as_mut().expect("piped"), &mut text)
        .expect("monitor output");
    let _ = monitor.wait();
    let (rust_part, python_part) = text.split_once(ours_end).unwrap_or((&text, ""));
    let ours = count_round_trips(rust_part);
    let theirs = count_round_trips(python_part);
    println!("| operation | flipper (Rust) | flipper-client 1.3.2 | ratio |");
    println!("|---|---|---|---|");
    for op in OPS.iter().take(OPS.len() - 1) {
        let find = |v: &[(String, usize)]| v.iter().find(|(o, _)| o == op).map(|(_, n)| *n);
        let (a, b) = (find(&ours), find(&theirs));
        let ratio = match (a, b) {
            (Some(a), Some(b)) if a == b => "same".into(),
            (Some(a), Some(b)) if a > 0 => format!("{:.1}x fewer", b as f64 / a as f64),
            _ => "-".into(),
        };
        println!(
            "| {op} | {} | {} | {ratio} |",
            a.map_or("?".into(), |n| n.to_string()),
            b.map_or("?".into(), |n| n.to_string())
        );
    }
}
