//! [`ThriftServer`]: flipper-client's Thrift service over any [`Store`].

use std::collections::HashMap;
use std::io::{self, Cursor, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use thrift::protocol::{TBinaryInputProtocol, TBinaryOutputProtocol};
use thrift::transport::{TBufferedReadTransport, TFramedReadTransport, TFramedWriteTransport};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::handler::{Handler, Next};
use super::io::{Budget, MessageBuffer, limits};
use crate::store::Store;

/// The most elements a list or map of a call may claim.
const MAX_CONTAINER: usize = 100_000;

/// How a [`ThriftServer`] treats its connections.
///
/// ```
/// let options = flipper::store::ThriftServerOptions::default().max_connections(16);
/// assert_eq!(options.max_message_bytes, 16 << 20);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ThriftServerOptions {
    /// How many connections may be open at once; one more is closed as soon as it is
    /// accepted (default 256). Each open connection holds a thread.
    pub max_connections: usize,
    /// The largest call accepted, in bytes (default 16 MiB); a larger one closes its
    /// connection.
    pub max_message_bytes: usize,
}

impl Default for ThriftServerOptions {
    fn default() -> Self {
        Self {
            max_connections: 256,
            max_message_bytes: 16 << 20,
        }
    }
}

impl ThriftServerOptions {
    /// With at most this many open connections (at least 1).
    #[must_use]
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// With calls of at most this many bytes (at least 1 KiB).
    #[must_use]
    pub fn max_message_bytes(mut self, n: usize) -> Self {
        self.max_message_bytes = n.max(1024);
        self
    }
}

/// flipper-client's Thrift `FeatureFlagStore` service (binary protocol, buffered or framed:
/// both are accepted on the same port) over a [`Store`], for flipper-client's
/// `ThriftRPCFeatureFlagStore` and for [`ThriftStore`](super::ThriftStore).
///
/// ```no_run
/// # async fn run() -> std::io::Result<()> {
/// use std::time::Duration;
/// let store = flipper::store::open("memory:").expect("a valid URL");
/// let server = flipper::store::ThriftServer::bind("127.0.0.1:9090", store).await?;
/// println!("serving on {}", server.local_addr());
/// // ... later:
/// server.shutdown(Duration::from_secs(10)).await;
/// # Ok(()) }
/// ```
///
/// Each method does what the same method of flipper-client's stores does, through the
/// library's store API ([`StoreExt`](crate::store::StoreExt)): `Create` overwrites, `Set`
/// creates a missing flag, `SetMeta` replaces the metadata (on a store with compare-and-swap,
/// without losing a concurrent change of `is_enabled`), `Delete` of a missing flag is fine,
/// `List` without a limit lists everything. A missing flag is the `NOT_FOUND` error code
/// flipper-client expects (`Get`, `SetMeta`); every other failure is a `FlipperException`
/// without a code, its message saying what was wrong: input that cannot be stored (invalid
/// JSON, an unknown bucketer type or operator, a condition key flipper-client could not read
/// back, a negative limit), or the store's failure. Input is checked whole before anything is
/// written. Flags the store cannot read are left out of listings and are an error for `Get`.
///
/// The thrift crate is synchronous: connections are accepted on the Tokio runtime the server
/// was started on, and each is served by a thread of its own that calls the store through that
/// runtime (keep it running, and multi-threaded if the store's futures need other tasks). A
/// message that cannot be read (malformed, truncated, too large, an unknown method) gets the
/// protocol's exception if it can and closes its connection; a handler that panicked closes
/// its connection; a reply reaches the socket whole or not at all. The service has no
/// authentication: serve it on a loopback or otherwise protected address.
#[derive(Debug)]
pub struct ThriftServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
}

#[derive(Debug)]
struct Shared {
    options: ThriftServerOptions,
    /// A clone of each open connection's socket, to wake its thread on shutdown.
    open: Mutex<Connections>,
    /// How many connection threads are running.
    threads: watch::Sender<usize>,
    next_id: AtomicU64,
}

#[derive(Debug, Default)]
struct Connections {
    sockets: HashMap<u64, TcpStream>,
    stopping: bool,
}

impl ThriftServer {
    /// Binds `addr` and serves `store` with the default options, on the current Tokio runtime.
    ///
    /// # Errors
    /// When the address cannot be bound.
    pub async fn bind(
        addr: impl tokio::net::ToSocketAddrs,
        store: Arc<dyn Store>,
    ) -> io::Result<Self> {
        Self::start(
            TcpListener::bind(addr).await?,
            store,
            ThriftServerOptions::default(),
        )
    }

    /// Serves `store` on a bound listener, on the current Tokio runtime.
    ///
    /// # Errors
    /// When the listener's address cannot be read, or outside a Tokio runtime.
    pub fn start(
        listener: TcpListener,
        store: Arc<dyn Store>,
        options: ThriftServerOptions,
    ) -> io::Result<Self> {
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(io::Error::other)?;
        let shared = Arc::new(Shared {
            options,
            open: Mutex::new(Connections::default()),
            threads: watch::channel(0).0,
            next_id: AtomicU64::new(0),
        });
        let (stop, stopped) = watch::channel(false);
        let handler = Arc::new(Handler::new(Arc::clone(&store), runtime.clone()));
        runtime.spawn(accept(listener, Arc::clone(&shared), handler, stopped));
        tracing::info!(%addr, store = %store, "Thrift FeatureFlagStore service listening");
        Ok(Self { addr, shared, stop })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many connections are open.
    pub fn connections(&self) -> usize {
        *self.shared.threads.borrow()
    }

    /// Stops accepting, lets each connection finish the call it is serving, closes them, and
    /// waits at most `grace` for their threads. Returns whether every connection was closed
    /// in time. Dropping the server stops it the same way without waiting.
    pub async fn shutdown(&self, grace: Duration) -> bool {
        self.stop_accepting();
        let mut threads = self.shared.threads.subscribe();
        let done = tokio::time::timeout(grace, threads.wait_for(|n| *n == 0))
            .await
            .is_ok();
        if !done {
            tracing::warn!(grace = ?grace, "Thrift calls still running after the grace period");
        }
        done
    }

    /// The first half of [`ThriftServer::shutdown`], which returns at once: no new
    /// connections, and each open one ends after the call it is serving.
    pub fn stop_accepting(&self) {
        let _ = self.stop.send(true);
        let Ok(mut open) = self.shared.open.lock() else {
            return;
        };
        open.stopping = true;
        // A connection's reader wakes up at the end of its input; a call being served still
        // writes its reply, and the next read ends the connection.
        for socket in open.sockets.values() {
            let _ = socket.shutdown(Shutdown::Read);
        }
    }
}

impl Drop for ThriftServer {
    fn drop(&mut self) {
        self.stop_accepting();
    }
}

async fn accept(
    listener: TcpListener,
    shared: Arc<Shared>,
    handler: Arc<Handler>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            () = async { drop(stopped.wait_for(|stop| *stop).await) } => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    if let Err(error) = spawn(&shared, &handler, stream, peer) {
                        tracing::warn!(%peer, %error, "cannot serve a Thrift connection");
                    }
                }
                Err(error) => {
                    // Out of file descriptors, most likely: wait rather than spin.
                    tracing::warn!(%error, "cannot accept a Thrift connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    tracing::info!("Thrift service stopped accepting connections");
}

/// Serves one connection on a thread of its own.
fn spawn(
    shared: &Arc<Shared>,
    handler: &Arc<Handler>,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
) -> io::Result<()> {
    let stream = stream.into_std()?;
    stream.set_nonblocking(false)?;
    stream.set_nodelay(true)?;
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    {
        let mut open = shared
            .open
            .lock()
            .map_err(|_| io::Error::other("connection table poisoned"))?;
        if open.stopping {
            return Ok(());
        }
        if open.sockets.len() >= shared.options.max_connections {
            tracing::warn!(%peer, max = shared.options.max_connections, "too many Thrift connections: closing a new one");
            return Ok(());
        }
        open.sockets.insert(id, stream.try_clone()?);
    }
    shared.threads.send_modify(|n| *n += 1);
    let (thread_shared, thread_handler) = (Arc::clone(shared), Arc::clone(handler));
    let spawned = std::thread::Builder::new()
        .name("flipper-thrift".into())
        .spawn(move || {
            serve(&thread_handler, stream, peer, &thread_shared.options);
            thread_shared.forget(id);
        });
    if let Err(error) = spawned {
        shared.forget(id);
        return Err(error);
    }
    Ok(())
}

impl Shared {
    fn forget(&self, id: u64) {
        if let Ok(mut open) = self.open.lock() {
            open.sockets.remove(&id);
        }
        self.threads.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// Reads calls and answers them until the peer closes, a message cannot be read, or the
/// server stops.
fn serve(
    handler: &Handler,
    mut stream: TcpStream,
    peer: SocketAddr,
    options: &ThriftServerOptions,
) {
    // The first bytes tell the framing: a strict binary message starts with 0x80 0x01; a frame
    // with its length, then such a message.
    let mut head = [0u8; 6];
    if let Err(error) = stream.read_exact(&mut head) {
        tracing::debug!(%peer, %error, "a Thrift connection closed before its first call");
        return;
    }
    let framed = head[0] & 0x80 == 0 && head[4..6] == [0x80, 0x01];
    let (reader, writer) = match stream.try_clone() {
        Ok(writer) => (Cursor::new(head).chain(stream), writer),
        Err(error) => {
            tracing::warn!(%peer, %error, "cannot serve a Thrift connection");
            return;
        }
    };
    let budget = Budget::new(options.max_message_bytes);
    let reader = budget.reader(reader);
    let writer = MessageBuffer::new(writer);
    let (input, output): (Box<dyn Read + Send>, Box<dyn Write + Send>) = if framed {
        (
            Box::new(TFramedReadTransport::new(reader)),
            Box::new(TFramedWriteTransport::new(writer)),
        )
    } else {
        (
            Box::new(TBufferedReadTransport::new(reader)),
            Box::new(writer),
        )
    };
    let config = limits(options.max_message_bytes, MAX_CONTAINER);
    let mut i = TBinaryInputProtocol::with_config(input, false, config.clone());
    let mut o = TBinaryOutputProtocol::with_config(output, true, config);
    loop {
        budget.refill();
        match catch_unwind(AssertUnwindSafe(|| handler.process(&mut i, &mut o))) {
            Ok(Ok(Next::Continue)) => {}
            Ok(Ok(Next::Close)) => {
                tracing::debug!(%peer, "closing a Thrift connection after an exception");
                break;
            }
            Ok(Err(thrift::Error::Transport(e)))
                if e.kind == thrift::TransportErrorKind::EndOfFile =>
            {
                break;
            }
            Ok(Err(error)) => {
                tracing::debug!(%peer, %error, "closing a Thrift connection: unreadable message");
                break;
            }
            Err(_) => {
                tracing::error!(%peer, "a Thrift call panicked; closing its connection");
                break;
            }
        }
    }
}
