//! Shared by the tests that need a real server: `flipper serve` in process on a real TCP port,
//! a small server-sent events client over reqwest (it keeps heartbeat comments), and a TCP
//! proxy whose connections can be cut.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use flipper::store::Store;
use flipper_server::{ServeError, ServerConfig, serve_on};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

pub const ADMIN: &str = "admin-secret";
pub const SDK: &str = "sdk-secret";

/// How long a test waits for something that should come within milliseconds.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// A server running on `127.0.0.1`.
pub struct Server {
    pub addr: SocketAddr,
    pub base: String,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ServeError>>,
}

impl Server {
    /// A server over `store` with both tokens, adjusted by `tweak`.
    pub async fn start(store: Arc<dyn Store>, tweak: impl FnOnce(&mut ServerConfig)) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::start_on(listener, store, tweak).await
    }

    /// The same on a listener of the caller's.
    pub async fn start_on(
        listener: TcpListener,
        store: Arc<dyn Store>,
        tweak: impl FnOnce(&mut ServerConfig),
    ) -> Self {
        let addr = listener.local_addr().unwrap();
        let mut config = ServerConfig::default();
        config.admin_token = Some(ADMIN.into());
        config.sdk_token = Some(SDK.into());
        tweak(&mut config);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve_on(listener, config, store, async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            base: format!("http://{addr}"),
            stop: Some(stop),
            task,
        }
    }

    /// Signals shutdown and waits for the server to stop; returns how it ended.
    pub async fn stop(mut self) -> Result<(), ServeError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(PATIENCE, &mut self.task)
            .await
            .expect("the server stops in time")
            .expect("the server task does not panic")
    }

    /// The snapshot version `/readyz` reports.
    pub async fn version(&self) -> u64 {
        let text = reqwest::get(format!("{}/readyz", self.base))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_str(&text).unwrap();
        body["version"].as_u64().expect("a version")
    }

    /// Waits until the snapshot version reaches `version`.
    pub async fn reaches(&self, version: u64) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while self.version().await < version {
            assert!(tokio::time::Instant::now() < deadline, "version {version}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// One thing read from a stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Sse {
    Event(Event),
    /// A comment (a heartbeat).
    Comment,
}

/// An event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub name: String,
    pub id: String,
    /// The data line as sent.
    pub raw: String,
    /// The data, parsed.
    pub data: serde_json::Value,
}

impl Event {
    /// The version in the id (`EPOCH:VERSION`).
    pub fn version(&self) -> u64 {
        self.id.rsplit_once(':').unwrap().1.parse().unwrap()
    }

    /// The epoch in the id.
    pub fn epoch(&self) -> &str {
        self.id.split_once(':').unwrap().0
    }
}

/// An open `GET /api/v1/stream`.
pub struct Stream {
    response: reqwest::Response,
    buf: String,
}

impl Stream {
    /// Opens the stream; a refused request gives its status and body.
    pub async fn open(
        base: &str,
        token: Option<&str>,
        last_event_id: Option<&str>,
    ) -> Result<Self, (u16, String)> {
        let mut request = reqwest::Client::new().get(format!("{base}/api/v1/stream"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.expect("the server answers");
        if response.status() != 200 {
            let status = response.status().as_u16();
            return Err((status, response.text().await.unwrap_or_default()));
        }
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        Ok(Self {
            response,
            buf: String::new(),
        })
    }

    /// The next event or comment; `None` when the stream ends. Panics after [`PATIENCE`].
    pub async fn next(&mut self) -> Option<Sse> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                return Some(parse(&block));
            }
            let chunk = tokio::time::timeout(PATIENCE, self.response.chunk())
                .await
                .expect("the stream sends something in time")
                .expect("the stream stays readable")?;
            self.buf
                .push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    }

    /// The next event (skipping heartbeats).
    pub async fn event(&mut self) -> Event {
        loop {
            match self.next().await.expect("an event, not the end") {
                Sse::Event(event) => return event,
                Sse::Comment => {}
            }
        }
    }
}

fn parse(block: &str) -> Sse {
    let (mut name, mut id, mut data) = (None, None, None);
    for line in block.lines() {
        if line.is_empty() || line.starts_with(':') {
            continue;
        }
        let (field, value) = line
            .split_once(": ")
            .unwrap_or_else(|| panic!("field: value in {block:?}"));
        match field {
            "event" => name = Some(value.to_owned()),
            "id" => id = Some(value.to_owned()),
            "data" => data = Some(value.to_owned()),
            other => panic!("unexpected field {other}"),
        }
    }
    match (name, id, data) {
        (None, None, None) => Sse::Comment,
        (Some(name), Some(id), Some(raw)) => Sse::Event(Event {
            name,
            id,
            data: serde_json::from_str(&raw).expect("JSON data"),
            raw,
        }),
        other => panic!("an incomplete event: {other:?}"),
    }
}

/// A TCP proxy to `target` whose open connections can be cut, and which can refuse new ones.
pub struct Proxy {
    pub base: String,
    cut: watch::Sender<u64>,
    open: Arc<AtomicBool>,
}

impl Proxy {
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let cut = watch::channel(0).0;
        let open = Arc::new(AtomicBool::new(true));
        let (cuts, accepting) = (cut.clone(), Arc::clone(&open));
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !accepting.load(Ordering::SeqCst) {
                    continue; // dropped: closed at once
                }
                let mut cut = cuts.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Self { base, cut, open }
    }

    /// Closes every open connection; with `refuse`, also every new one until [`Proxy::resume`].
    pub fn cut(&self, refuse: bool) {
        self.open.store(!refuse, Ordering::SeqCst);
        self.cut.send_modify(|n| *n += 1);
    }

    pub fn resume(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}
