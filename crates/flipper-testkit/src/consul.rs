//! Consul for tests: [`FakeConsul`], an in-process server speaking the part of Consul's KV
//! HTTP API flipper and python-consul use, and [`ConsulAgent`], a real `consul agent -dev`
//! when a `consul` binary is on `PATH` (none can be installed on the machines flipper is
//! developed on, so its absence is never a failure).
//!
//! The fake follows Consul's documented semantics and source (`agent/kvs_endpoint.go`,
//! `agent/consul/kvs_endpoint.go`, `agent/consul/state/kvs.go`,
//! `agent/blockingquery/blockingquery.go`):
//!
//! | request | answer |
//! |---|---|
//! | `GET /v1/kv/KEY` | `200` and `[{"LockIndex","Key","Flags","Value" (base64, or null when empty),"CreateIndex","ModifyIndex"}]`, or `404`; `?raw`: the value itself |
//! | `GET ...?recurse` | every entry under the prefix, in key order (`404` when none) |
//! | `GET ...?keys[&separator=/]` | the keys under the prefix |
//! | `GET ...?index=N&wait=D` | a blocking query: at once when the index is past `N`, else when something under the key changes, or after `D` (Go syntax: `5s`, `1m30s`; default 5 min, at most 10 min, plus up to `D/16` of jitter) |
//! | `PUT /v1/kv/KEY[?cas=N][&flags=F]`, body = value | `true`/`false` (`cas=0`: only if absent); the same bytes again keep the `ModifyIndex` |
//! | `DELETE /v1/kv/KEY[?cas=N]`, `?recurse` | `true`/`false` (a CAS delete of a missing key is `true`) |
//!
//! Every read answers `X-Consul-Index` (also with `404`): the entry's `ModifyIndex`; for a
//! prefix the highest index among its entries and tombstones; else the KV table's index, and
//! never 0. Every write advances a global Raft index. Paths that are not clean (`//`, `.`,
//! `..` segments) are redirected, as Go's `ServeMux` does. An ACL token can be required
//! ([`FakeConsul::require_token`]; `X-Consul-Token`, `Authorization: Bearer` or `?token=`,
//! else `403 Permission denied`). Values are limited to 512 KiB (`413`). Sessions, `?dc=`
//! other than `dc1` and the other endpoints are not implemented.

mod http;
mod kv;

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::process::Child;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;

use self::kv::Kv;
use crate::process::{self, Launch};

/// What the server's connections share.
pub(crate) struct Shared {
    kv: Mutex<Kv>,
    /// Bumped after every write (wakes blocking queries).
    changes: tokio::sync::watch::Sender<u64>,
    /// Bumped when the state is replaced (a snapshot restore abandons blocking queries).
    epoch: AtomicU64,
    token: Mutex<Option<String>>,
    /// Requests by method and path.
    requests: Mutex<BTreeMap<(String, String), u64>>,
}

impl Shared {
    fn new() -> Self {
        Self {
            kv: Mutex::new(Kv::default()),
            changes: tokio::sync::watch::channel(0).0,
            epoch: AtomicU64::new(0),
            token: Mutex::new(None),
            requests: Mutex::new(BTreeMap::new()),
        }
    }

    fn count(&self, method: &str, path: &str) {
        *lock(&self.requests)
            .entry((method.to_owned(), path.to_owned()))
            .or_insert(0) += 1;
    }

    fn required_token(&self) -> Option<String> {
        lock(&self.token).clone()
    }

    fn read<T>(&self, f: impl FnOnce(&Kv) -> T) -> T {
        f(&lock(&self.kv))
    }

    fn write<T>(&self, f: impl FnOnce(&mut Kv) -> T) -> T {
        let out = f(&mut lock(&self.kv));
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
        out
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A copy of a fake agent's KV state ([`FakeConsul::snapshot`]), to restore later.
#[derive(Debug, Clone)]
pub struct KvSnapshot(Kv);

/// An in-process fake Consul agent (KV API only) on a free loopback port, served by its own
/// thread and Tokio runtime, so any test runtime and other processes (python-consul) can use
/// it. See the module documentation for what it implements.
///
/// ```no_run
/// let consul = flipper_testkit::FakeConsul::start();
/// let url = consul.url(); // consul://127.0.0.1:PORT
/// consul.put("features/x", b"not a flag");
/// consul.stop(); // connections refused, data kept
/// consul.restart(); // the same port
/// println!("{url}: {} KV requests", consul.kv_requests());
/// ```
pub struct FakeConsul {
    shared: Arc<Shared>,
    port: u16,
    server: Mutex<Option<Server>>,
}

struct Server {
    stop: tokio::sync::oneshot::Sender<()>,
    thread: JoinHandle<()>,
}

impl std::fmt::Debug for FakeConsul {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeConsul")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl FakeConsul {
    /// Starts a fake agent on a free loopback port.
    ///
    /// # Panics
    /// When no loopback port can be bound or the server thread cannot start.
    pub fn start() -> Self {
        let listener =
            TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("cannot bind a loopback port");
        let port = listener
            .local_addr()
            .expect("a bound listener has an address")
            .port();
        let shared = Arc::new(Shared::new());
        let server = serve(Arc::clone(&shared), listener).expect("cannot start the fake Consul");
        Self {
            shared,
            port,
            server: Mutex::new(Some(server)),
        }
    }

    /// `consul://127.0.0.1:PORT`, for flipper's Consul store.
    pub fn url(&self) -> String {
        format!("consul://127.0.0.1:{}", self.port)
    }

    /// The HTTP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops serving: the port refuses connections and open connections (blocking queries
    /// too) are cut. The data stays.
    pub fn stop(&self) {
        if let Some(server) = lock(&self.server).take() {
            let _ = server.stop.send(());
            let _ = server.thread.join();
        }
    }

    /// Serves again on the same port, with the same data.
    ///
    /// # Panics
    /// When the port cannot be bound again.
    pub fn restart(&self) {
        let mut server = lock(&self.server);
        if server.is_some() {
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match TcpListener::bind((Ipv4Addr::LOCALHOST, self.port)) {
                Ok(listener) => break listener,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("cannot bind port {} again: {e}", self.port),
            }
        };
        *server =
            Some(serve(Arc::clone(&self.shared), listener).expect("cannot start the fake Consul"));
    }

    /// Every request received, any path.
    pub fn requests(&self) -> u64 {
        lock(&self.shared.requests).values().sum()
    }

    /// Requests to the KV API (`/v1/kv/...`).
    pub fn kv_requests(&self) -> u64 {
        lock(&self.shared.requests)
            .iter()
            .filter(|((_, path), _)| path.starts_with("/v1/kv/"))
            .map(|(_, n)| n)
            .sum()
    }

    /// Requests with this method and path (as sent, percent-encoded).
    pub fn requests_to(&self, method: &str, path: &str) -> u64 {
        lock(&self.shared.requests)
            .get(&(method.to_owned(), path.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    /// Every (method, path, count) so far.
    pub fn request_counts(&self) -> Vec<(String, String, u64)> {
        lock(&self.shared.requests)
            .iter()
            .map(|((m, p), n)| (m.clone(), p.clone(), *n))
            .collect()
    }

    /// Forgets the request counts.
    pub fn reset_requests(&self) {
        lock(&self.shared.requests).clear();
    }

    /// From now on, requests without this ACL token are refused with 403 (`None`: no ACLs).
    pub fn require_token(&self, token: Option<&str>) {
        *lock(&self.shared.token) = token.map(str::to_owned);
    }

    /// The last Raft index applied.
    pub fn raft_index(&self) -> u64 {
        self.shared.read(Kv::raft_index)
    }

    /// Writes a key as another client would; returns its `ModifyIndex`.
    pub fn put(&self, key: &str, value: &[u8]) -> u64 {
        self.shared.write(|kv| {
            kv.set(key, value.to_vec(), 0, None);
            kv.get(key).0
        })
    }

    /// A key's value and `ModifyIndex`.
    pub fn get(&self, key: &str) -> Option<(Vec<u8>, u64)> {
        self.shared.read(|kv| {
            kv.get(key)
                .1
                .map(|entry| (entry.value.clone(), entry.modify_index))
        })
    }

    /// Deletes a key as another client would.
    pub fn delete(&self, key: &str) {
        self.shared.write(|kv| kv.delete(key, None));
    }

    /// A copy of the KV state.
    pub fn snapshot(&self) -> KvSnapshot {
        KvSnapshot(self.shared.read(Clone::clone))
    }

    /// Replaces the KV state with a snapshot, as restoring a Raft snapshot does: indexes go
    /// back to the snapshot's, and blocking queries answer at once.
    pub fn restore(&self, snapshot: &KvSnapshot) {
        self.shared.write(|kv| *kv = snapshot.0.clone());
        self.shared.epoch.fetch_add(1, Ordering::SeqCst);
        self.shared.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Reaps every tombstone (Consul's tombstone GC): a prefix whose newest change was a
    /// deletion then answers a lower `X-Consul-Index`.
    pub fn reap_tombstones(&self) {
        self.shared.write(Kv::reap_tombstones);
    }
}

impl Drop for FakeConsul {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The fake agent shared by the tests of one test binary (isolate them by base key).
pub fn fake_consul() -> &'static FakeConsul {
    static FAKE: OnceLock<FakeConsul> = OnceLock::new();
    FAKE.get_or_init(FakeConsul::start)
}

/// Serves `listener` from a new thread with its own runtime until told to stop.
fn serve(shared: Arc<Shared>, listener: TcpListener) -> std::io::Result<Server> {
    listener.set_nonblocking(true)?;
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let thread = std::thread::Builder::new()
        .name("fake-consul".into())
        .spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                let mut connections = tokio::task::JoinSet::new();
                loop {
                    tokio::select! {
                        _ = &mut stopped => break,
                        accepted = listener.accept() => {
                            let Ok((stream, _)) = accepted else {
                                tokio::time::sleep(Duration::from_millis(10)).await;
                                continue;
                            };
                            let _ = stream.set_nodelay(true);
                            let shared = Arc::clone(&shared);
                            connections.spawn(async move {
                                let service = hyper::service::service_fn(move |request| {
                                    http::handle(Arc::clone(&shared), request)
                                });
                                let _ = hyper::server::conn::http1::Builder::new()
                                    .serve_connection(TokioIo::new(stream), service)
                                    .await;
                            });
                        }
                        Some(_) = connections.join_next(), if !connections.is_empty() => {}
                    }
                }
                // Cut every connection, as a crashed agent would.
                connections.abort_all();
            });
        })?;
    Ok(Server { stop, thread })
}

/// A real Consul agent in dev mode (`consul agent -dev`, in memory) on free loopback ports,
/// stopped with the test process.
pub struct ConsulAgent {
    child: Mutex<Child>,
    port: u16,
}

impl std::fmt::Debug for ConsulAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsulAgent")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl ConsulAgent {
    /// `consul://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("consul://127.0.0.1:{}", self.port)
    }

    /// The HTTP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    fn start(consul: &std::path::Path) -> Result<Self, String> {
        let dir = process::temp_dir("consul");
        let log = dir.join("consul.log");
        let port = process::free_port();
        let mut args: Vec<String> = vec![
            "agent".into(),
            "-dev".into(),
            "-bind=127.0.0.1".into(),
            "-client=127.0.0.1".into(),
            format!("-http-port={port}"),
            "-dns-port=-1".into(),
            "-grpc-port=-1".into(),
            format!("-serf-lan-port={}", process::free_port()),
            format!("-serf-wan-port={}", process::free_port()),
            // The server RPC port has no flag of its own.
            format!("-hcl=ports {{ server = {} }}", process::free_port()),
        ];
        // Consul 1.14 and later also open a gRPC TLS port in dev mode.
        let version = process::run(consul, &["version"], false).unwrap_or_default();
        if version_at_least(&version, 1, 14) {
            args.push("-grpc-tls-port=-1".into());
        }
        let child = process::spawn(Launch {
            program: consul.to_owned(),
            args: args.into_iter().map(Into::into).collect(),
            as_postgres: false,
            death_signal: "TERM",
            log: log.clone(),
        })
        .map_err(|e| format!("cannot start consul: {e}"))?;
        let agent = Self {
            child: Mutex::new(child),
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(leader) = http_get(port, "/v1/status/leader")
                && leader.trim().len() > 2
            {
                return Ok(agent);
            }
            if let Ok(Some(status)) = lock(&agent.child).try_wait() {
                return Err(format!(
                    "consul exited ({status}): {}",
                    process::log_tail(&log)
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "consul elected no leader within 30 s: {}",
                    process::log_tail(&log)
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for ConsulAgent {
    fn drop(&mut self) {
        process::stop(&mut lock(&self.child), "TERM");
    }
}

/// The real Consul agent shared by one test binary, when a `consul` binary is on `PATH`.
///
/// Without one it prints a loud `SKIPPED` line and returns `None`, **even with
/// `FLIPPER_TEST_REQUIRE_SERVICES=1`**: no Consul agent can be installed on the machines
/// flipper is developed and tested on (no Debian package, no PyPI or npm package ships it), so
/// the fake ([`FakeConsul`]) is what CI runs. An agent that is there but fails to start is a
/// failure under `FLIPPER_TEST_REQUIRE_SERVICES=1`.
pub fn consul_agent() -> Option<&'static ConsulAgent> {
    static AGENT: OnceLock<Result<ConsulAgent, String>> = OnceLock::new();
    let Some(consul) = process::which("consul") else {
        eprintln!(
            "\n==== SKIPPED: real Consul agent: no `consul` binary on PATH. No Consul agent can \
             be installed on this machine (no Debian or PyPI package ships it), so this is not \
             a failure, even with FLIPPER_TEST_REQUIRE_SERVICES=1: the fake Consul server \
             (flipper_testkit::FakeConsul) runs the same suite. Put a consul binary on PATH to \
             run it against the real agent. ====\n"
        );
        return None;
    };
    match AGENT.get_or_init(|| ConsulAgent::start(&consul)) {
        Ok(agent) => Some(agent),
        Err(why) => crate::unavailable("consul agent", why),
    }
}

/// Whether `consul version`'s first line (`Consul v1.20.1`) is at least `major.minor`.
fn version_at_least(output: &str, major: u64, minor: u64) -> bool {
    let Some(v) = output.split_whitespace().find_map(|w| w.strip_prefix('v')) else {
        return false;
    };
    let mut parts = v.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
    let (a, b) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (a, b) >= (major, minor)
}

/// The body of a plain HTTP GET on a loopback port, `None` on any failure.
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    (head.split_whitespace().nth(1) == Some("200")).then(|| body.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare() {
        assert!(version_at_least("Consul v1.20.1\nRevision x", 1, 14));
        assert!(!version_at_least("Consul v1.9.3", 1, 14));
        assert!(!version_at_least("", 1, 14));
    }

    #[test]
    fn the_fake_serves_blocking_queries_and_stops() {
        let consul = FakeConsul::start();
        let index = consul.put("features/a", b"1");
        let body = http_get(consul.port(), "/v1/kv/features/?recurse").unwrap();
        assert!(
            body.contains("\"Key\":\"features/a\",\"Flags\":0,\"Value\":\"MQ==\""),
            "{body}"
        );
        let start = Instant::now();
        let t = std::thread::spawn({
            let port = consul.port();
            move || {
                http_get(
                    port,
                    &format!("/v1/kv/features/?recurse&index={index}&wait=5s"),
                )
            }
        });
        std::thread::sleep(Duration::from_millis(200));
        consul.put("features/b", b"2");
        let body = t.join().unwrap().unwrap();
        assert!(body.contains("features/b"), "{body}");
        assert!(start.elapsed() < Duration::from_secs(3));
        assert_eq!(consul.requests_to("GET", "/v1/kv/features/"), 2);
        consul.stop();
        assert!(http_get(consul.port(), "/v1/kv/features/a").is_none());
        consul.restart();
        assert!(http_get(consul.port(), "/v1/kv/features/a").is_some());
    }
}
