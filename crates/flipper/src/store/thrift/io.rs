//! Byte plumbing shared by the client and the server: a per-message read budget, the
//! protocol limits, and a message buffer that reaches the socket whole or not at all.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use thrift::TConfiguration;

/// How many bytes one message may take, shared by a connection's reader and its owner, who
/// refills it before each message.
#[derive(Debug, Clone)]
pub(super) struct Budget {
    left: Arc<AtomicUsize>,
    size: usize,
}

impl Budget {
    pub(super) fn new(size: usize) -> Self {
        Self {
            left: Arc::new(AtomicUsize::new(size)),
            size,
        }
    }

    /// A full budget for the next message.
    pub(super) fn refill(&self) {
        self.left.store(self.size, Ordering::Relaxed);
    }

    /// A reader that spends this budget, failing once it is spent.
    pub(super) fn reader<R: Read>(&self, inner: R) -> Limited<R> {
        Limited {
            inner,
            budget: self.clone(),
        }
    }
}

/// A reader that fails (with `InvalidData`) once its [`Budget`] is spent: a peer cannot make a
/// connection read an endless message.
#[derive(Debug)]
pub(super) struct Limited<R> {
    inner: R,
    budget: Budget,
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.budget.left.load(Ordering::Relaxed);
        if left == 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("message larger than {} bytes", self.budget.size),
            ));
        }
        let max = buf.len().min(left);
        let n = self.inner.read(&mut buf[..max]).map_err(timed_out)?;
        self.budget.left.fetch_sub(n, Ordering::Relaxed);
        Ok(n)
    }
}

/// A socket timeout (which Unix reports as `WouldBlock`) as `TimedOut`, which the thrift crate
/// turns into its own timeout error.
fn timed_out(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::WouldBlock {
        io::Error::new(io::ErrorKind::TimedOut, e)
    } else {
        e
    }
}

/// The protocol limits for messages of at most `max_message` bytes: strings and containers
/// are checked against them before anything is allocated for them.
pub(super) fn limits(max_message: usize, max_container: usize) -> TConfiguration {
    TConfiguration::builder()
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message))
        .max_string_size(Some(max_message))
        .max_container_size(Some(max_container))
        .max_recursion_depth(Some(16))
        .build()
        // Only a frame larger than a message is refused, and they are equal here.
        .unwrap_or_default()
}

/// A write transport that keeps a message in memory and writes it to the socket in one piece on
/// `flush`: a message that fails half-way never reaches the peer.
#[derive(Debug)]
pub(super) struct MessageBuffer {
    buf: Vec<u8>,
    socket: TcpStream,
}

impl MessageBuffer {
    pub(super) fn new(socket: TcpStream) -> Self {
        Self {
            buf: Vec::new(),
            socket,
        }
    }
}

impl Write for MessageBuffer {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let result = self.socket.write_all(&self.buf).map_err(timed_out);
        self.buf.clear();
        result?;
        self.socket.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spent_budget_stops_reading_until_refilled() {
        let budget = Budget::new(4);
        let mut reader = budget.reader(&b"abcdefgh"[..]);
        let mut buf = [0; 8];
        assert_eq!(reader.read(&mut buf).unwrap(), 4);
        let err = reader.read(&mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        budget.refill();
        assert_eq!(reader.read(&mut buf).unwrap(), 4);
        assert_eq!(&buf[..4], b"efgh");
    }
}
