//! The client side's connections: a small pool of blocking connections, used on tokio's
//! blocking pool, that reconnects when a connection fails.

use std::fmt;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex};

use thrift::TransportErrorKind;
use thrift::protocol::{TBinaryInputProtocol, TBinaryOutputProtocol};
use thrift::transport::{TBufferedReadTransport, TFramedReadTransport, TFramedWriteTransport};
use tokio::sync::Semaphore;

use super::config::{ThriftConfig, ThriftTransport};
use super::generated as t;
use super::io::{Budget, MessageBuffer, limits};
use crate::error::{BoxError, Error, Result};

/// The largest reply the client reads: a listing of every flag is one message.
const MAX_REPLY: usize = 256 << 20;
/// The most elements a list or map of a reply may claim.
const MAX_CONTAINER: usize = 10_000_000;

type Input = TBinaryInputProtocol<Box<dyn Read + Send>>;
type Output = TBinaryOutputProtocol<Box<dyn Write + Send>>;
/// The generated client on one connection.
pub(super) type Client = t::FeatureFlagStoreSyncClient<Input, Output>;

/// One open connection.
pub(super) struct Conn {
    client: Client,
    budget: Budget,
}

impl Conn {
    /// Makes one call (`f` sends it and reads its reply).
    pub(super) fn call<T>(
        &mut self,
        f: impl FnOnce(&mut Client) -> thrift::Result<T>,
    ) -> thrift::Result<T> {
        self.budget.refill();
        f(&mut self.client)
    }
}

/// Connections to one server, at most `pool_size` at once (calls beyond wait for one).
pub(super) struct Pool {
    config: ThriftConfig,
    /// The store's name, for errors.
    name: String,
    idle: Mutex<Vec<Conn>>,
    permits: Arc<Semaphore>,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("config", &self.config)
            .finish()
    }
}

impl Pool {
    pub(super) fn new(config: ThriftConfig) -> Self {
        Self {
            name: config.to_string(),
            permits: Arc::new(Semaphore::new(config.pool_size())),
            idle: Mutex::new(Vec::new()),
            config,
        }
    }

    /// Runs `job` on a connection, on tokio's blocking pool. A job that fails on a connection
    /// taken from the pool (which may have gone stale: the server restarted, a proxy closed it)
    /// is run once more on a new connection; every job is a sequence of overwrites and reads,
    /// so running it again is harmless. A `FlipperException` leaves the connection usable.
    ///
    /// # Errors
    /// [`Error::Backend`] for a server that cannot be reached, does not answer within the
    /// timeout, or answers with an error.
    pub(super) async fn run<T, F>(self: &Arc<Self>, job: F) -> Result<T>
    where
        F: FnMut(&mut Conn) -> thrift::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|e| self.backend(e))?;
        let pool = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            pool.run_blocking(job)
        })
        .await
        .map_err(|e| self.backend(e))?
    }

    fn run_blocking<T>(&self, mut job: impl FnMut(&mut Conn) -> thrift::Result<T>) -> Result<T> {
        let (mut conn, mut reused) = match self.take_idle() {
            Some(conn) => (conn, true),
            None => (self.connect()?, false),
        };
        loop {
            match job(&mut conn) {
                Ok(value) => {
                    self.put_idle(conn);
                    return Ok(value);
                }
                Err(error @ thrift::Error::User(_)) => {
                    self.put_idle(conn);
                    return Err(self.backend(describe(&error, &self.config)));
                }
                Err(thrift::Error::Transport(_)) if reused => {
                    tracing::debug!(store = %self.name, "a pooled connection failed; reconnecting");
                    conn = self.connect()?;
                    reused = false;
                }
                // The connection's state is unknown: it is dropped.
                Err(error) => return Err(self.backend(describe(&error, &self.config))),
            }
        }
    }

    fn take_idle(&self) -> Option<Conn> {
        self.idle.lock().ok()?.pop()
    }

    fn put_idle(&self, conn: Conn) {
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < self.config.pool_size()
        {
            idle.push(conn);
        }
    }

    /// Drops the idle connections (the next calls connect again).
    pub(super) fn clear(&self) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }

    fn connect(&self) -> Result<Conn> {
        let address = self.config.address();
        let addrs = address
            .to_socket_addrs()
            .map_err(|e| self.backend(format!("cannot resolve {address}: {e}")))?;
        let mut last = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, self.config.connect_timeout()) {
                Ok(stream) => return self.open(stream).map_err(|e| self.backend(e)),
                Err(e) => last = Some(e),
            }
        }
        let why = last.map_or_else(|| "no address".to_owned(), |e| e.to_string());
        Err(self.backend(format!("cannot connect to {address}: {why}")))
    }

    fn open(&self, stream: TcpStream) -> std::io::Result<Conn> {
        let timeout = Some(self.config.timeout());
        stream.set_read_timeout(timeout)?;
        stream.set_write_timeout(timeout)?;
        stream.set_nodelay(true)?;
        let budget = Budget::new(MAX_REPLY);
        let reader = budget.reader(stream.try_clone()?);
        let writer = MessageBuffer::new(stream);
        let (input, output): (Box<dyn Read + Send>, Box<dyn Write + Send>) =
            match self.config.transport() {
                ThriftTransport::Buffered => (
                    Box::new(TBufferedReadTransport::new(reader)),
                    Box::new(writer),
                ),
                ThriftTransport::Framed => (
                    Box::new(TFramedReadTransport::new(reader)),
                    Box::new(TFramedWriteTransport::new(writer)),
                ),
            };
        let config = limits(MAX_REPLY, MAX_CONTAINER);
        Ok(Conn {
            client: t::FeatureFlagStoreSyncClient::new(
                TBinaryInputProtocol::with_config(input, false, config.clone()),
                TBinaryOutputProtocol::with_config(output, true, config),
            ),
            budget,
        })
    }

    fn backend(&self, e: impl Into<BoxError>) -> Error {
        Error::Backend {
            store: self.name.clone(),
            source: e.into(),
        }
    }
}

/// Whether a call failed with the service's `NOT_FOUND`.
pub(super) fn is_not_found(error: &thrift::Error) -> bool {
    match error {
        thrift::Error::User(e) => e
            .downcast_ref::<t::FlipperException>()
            .is_some_and(|e| e.code.as_deref() == Some(&t::ErrorCode::NOT_FOUND)),
        _ => false,
    }
}

/// A failed call, in words (the thrift crate's `Display` leaves out the message of some).
fn describe(error: &thrift::Error, config: &ThriftConfig) -> String {
    match error {
        thrift::Error::User(e) => match e.downcast_ref::<t::FlipperException>() {
            Some(e) => {
                let code = match e.code.as_deref() {
                    None => String::new(),
                    Some(&t::ErrorCode::NOT_FOUND) => " NOT_FOUND".to_owned(),
                    Some(other) => format!(" {}", other.0),
                };
                let message = e.message.as_deref().unwrap_or_default();
                format!("the server answered FlipperException{code}: {message}")
            }
            None => format!("the server answered an error: {e}"),
        },
        thrift::Error::Transport(e) if e.kind == TransportErrorKind::TimedOut => format!(
            "no reply within {:?} ({}): is the server up?",
            config.timeout(),
            e.message
        ),
        thrift::Error::Transport(e) if e.kind == TransportErrorKind::EndOfFile => {
            format!("the server closed the connection ({})", e.message)
        }
        thrift::Error::Transport(e) => format!("connection failed: {}", e.message),
        thrift::Error::Protocol(e) => format!("unreadable reply: {e}: {}", e.message),
        thrift::Error::Application(e) => {
            format!("the server failed the call: {e}: {}", e.message)
        }
    }
}
