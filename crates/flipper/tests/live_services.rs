//! Live flags over real Redis and PostgreSQL servers (flipper-testkit, each test its own
//! server): writes by another Rust process stand-in and by the real Python flipper-client
//! reach the live flags, and so does another process's write on top of one made through
//! `live.client()`; the server is stopped during a read load (zero failed evaluations, the
//! status reports the outage) and restarted, and the change made right after the restart,
//! before the live flags reconnect, arrives.
//!
//! Without redis-server, PostgreSQL or Python's flipper-client the tests (or their Python
//! part) skip with a loud message, unless `FLIPPER_TEST_REQUIRE_SERVICES=1`.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use flipper::live::{LiveFlags, LiveOptions};
use flipper::store::{Store, StoreExt};
use flipper::{Checks, Reason};
use serde_json::json;

const PATIENCE: Duration = Duration::from_secs(30);

async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Quick retries; polled as well as watched, so that the outage shows in the status while it
/// lasts.
fn options() -> LiveOptions {
    LiveOptions::default()
        .always_poll(true)
        .poll_interval(Duration::from_millis(200))
        .retry(Duration::from_millis(20), Duration::from_millis(500))
}

/// The real flipper-client, driven through `tests/python/interop.py`.
struct Python {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Python {
    fn start(open: serde_json::Value) -> Option<Self> {
        let python = flipper_testkit::python3(&["flipper", "redis", "psycopg"])?;
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/interop.py");
        let mut child = Command::new(python)
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 starts");
        let stdin = child.stdin.take().expect("piped");
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        let mut py = Self {
            child,
            stdin,
            stdout,
        };
        py.ok(open);
        Some(py)
    }

    fn ok(&mut self, cmd: serde_json::Value) -> serde_json::Value {
        writeln!(self.stdin, "{cmd}").expect("python reads");
        self.stdin.flush().expect("python reads");
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("python answers");
        let answer: serde_json::Value = serde_json::from_str(&line).expect("JSON");
        match answer.get("ok") {
            Some(v) => v.clone(),
            None => panic!("python failed {cmd}: {answer}"),
        }
    }
}

impl Drop for Python {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Threads evaluating `flag` until stopped; failures are answers that are not the flag's own
/// (missing, not initialised, an error) or not `expected`.
struct Readers {
    stop: Arc<AtomicBool>,
    count: Arc<AtomicU64>,
    failures: Arc<AtomicU64>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Readers {
    fn start(live: &LiveFlags, flag: &'static str, expected: bool) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let count = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(AtomicU64::new(0));
        let threads = (0..2)
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
                        let e = live.evaluate(flag, &checks, !expected);
                        let own = !matches!(
                            e.reason,
                            Reason::FlagMissing | Reason::NotInitialized | Reason::Error(_)
                        );
                        if !own || e.enabled != expected {
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                        count.fetch_add(1, Ordering::Relaxed);
                        // Leave the runtime's threads some room on a small machine.
                        std::thread::yield_now();
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

/// Writes `name` (switched on) through `writer`, retrying while the server comes back.
async fn write_when_back(writer: &dyn Store, name: &str) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match writer.create(name, true, None).await {
            Ok(_) => return,
            Err(e) if tokio::time::Instant::now() < deadline => {
                eprintln!("waiting for the server: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("the server did not come back: {e}"),
        }
    }
}

/// The shared scenario: `url` opens the store; `python` opens the same flags in
/// flipper-client; `stop` and `restart` take the server down and up.
async fn scenario(
    url: &str,
    python: serde_json::Value,
    stop: impl FnOnce(),
    restart: impl FnOnce(),
) {
    let live = LiveFlags::start(flipper::store::open(url).unwrap(), options()).await;
    assert!(live.is_initialized(), "{:?}", live.status());
    let writer = flipper::store::open(url).unwrap();

    // Another Rust process.
    writer.create("rust", true, None).await.unwrap();
    eventually("the Rust write", || live.is_enabled("rust", &Checks::new())).await;
    writer.set("rust", false).await.unwrap();
    eventually("the Rust change", || {
        !live.is_enabled("rust", &Checks::new())
    })
    .await;

    // Read your writes, then another process's write on top of ours: it must show well within
    // the grace period (5 s), so the store reports our write under the version its put
    // returned.
    live.client().create("own", true, None).await.unwrap();
    assert!(live.is_enabled("own", &Checks::new()));
    writer.set("own", false).await.unwrap();
    let started = tokio::time::Instant::now();
    eventually("another write on top of ours", || {
        !live.is_enabled("own", &Checks::new())
    })
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    // The real Python flipper-client.
    if let Some(mut py) = Python::start(python) {
        py.ok(json!({"op": "create", "name": "python", "is_enabled": true}));
        eventually("the Python write", || {
            live.is_enabled("python", &Checks::new())
        })
        .await;
        py.ok(json!({"op": "add_condition", "name": "python", "checks": {"age__gte": 18}}));
        eventually("the Python condition", || {
            !live.is_enabled("python", &Checks::new().with("age", 12))
        })
        .await;
        assert!(live.is_enabled("python", &Checks::new().with("age", 30)));
        py.ok(json!({"op": "destroy", "name": "python"}));
        eventually("the Python delete", || live.get("python").is_none()).await;
    }

    // The outage, under a read load.
    writer.create("steady", true, None).await.unwrap();
    eventually("the steady flag", || live.get("steady").is_some()).await;
    let readers = Readers::start(&live, "steady", true);
    stop();
    eventually("the outage is reported", || {
        let status = live.status();
        status.last_error.is_some() && !status.following
    })
    .await;
    assert!(live.is_enabled("steady", &Checks::new()));
    assert!(live.status().is_stale(Duration::ZERO));
    restart();
    // Right after the restart, before the live flags reconnect.
    write_when_back(&*writer, "made_at_restart").await;
    eventually("the change made at the restart", || {
        live.is_enabled("made_at_restart", &Checks::new())
    })
    .await;
    eventually("following again", || {
        let status = live.status();
        status.following && status.last_error.is_none()
    })
    .await;
    let (count, failures) = readers.stop();
    assert!(count > 100, "{count} evaluations");
    assert_eq!(failures, 0, "failed evaluations out of {count}");
    // And changes are followed as before.
    writer.set("steady", false).await.unwrap();
    eventually("a later change", || {
        !live.is_enabled("steady", &Checks::new())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis() {
    let Some(server) = flipper_testkit::RedisServer::start(
        flipper_testkit::RedisOptions::default().persistent(true),
    ) else {
        return;
    };
    let base_key = flipper_testkit::unique_name("live");
    let url = format!("{}/?base_key={base_key}", server.url());
    scenario(
        &url,
        json!({"op": "open", "kind": "redis", "url": server.url(), "base_key": base_key}),
        || server.stop(),
        || server.restart(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    let Some(server) = flipper_testkit::PostgresServer::start() else {
        return;
    };
    let url = server.fresh_database();
    scenario(
        &url,
        json!({"op": "open", "kind": "postgres", "conninfo": url}),
        || server.stop(),
        || server.restart(),
    )
    .await;
}
