//! [`ThriftConfig`]: where the Thrift store connects and how, parsed from a
//! `thrift://HOST:PORT` URL. Parsing does no I/O.

use std::fmt;
use std::time::Duration;

use crate::error::{Error, Result};

/// How the messages of a connection are delimited on the wire. Client and server must agree:
/// the server of this crate ([`ThriftServer`](super::ThriftServer)) accepts both on the same
/// port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ThriftTransport {
    /// Messages one after the other (Python's `TBufferedTransport`, the usual choice with
    /// `TSocket`).
    #[default]
    Buffered,
    /// Each message preceded by its length (Python's `TFramedTransport`, what non-blocking
    /// servers expect).
    Framed,
}

impl ThriftTransport {
    fn name(self) -> &'static str {
        match self {
            Self::Buffered => "buffered",
            Self::Framed => "framed",
        }
    }
}

/// Where a [`ThriftStore`](super::ThriftStore) connects, and its options: a URL
/// `thrift://HOST:PORT[?parameters]` (the binary protocol).
///
/// | parameter | meaning | default |
/// |---|---|---|
/// | `transport` | `buffered` or `framed` ([`ThriftTransport`]) | `buffered` |
/// | `connect_timeout` | how long connecting may take | `2s` |
/// | `timeout` | how long one call may wait for its reply (each read and write of the socket) | `10s` |
/// | `pool_size` | how many connections may be open (and calls in flight) at once | `8` |
/// | `poll_interval` | how often a watch lists every flag to find other processes' writes; `0` or `off` never polls | `5s` |
///
/// Durations are a whole number with a unit: `500ms`, `2s`, `1m`.
///
/// ```
/// use std::time::Duration;
/// use flipper::store::{ThriftConfig, ThriftTransport};
///
/// let config = ThriftConfig::from_url("thrift://127.0.0.1:9090?poll_interval=500ms&transport=framed")?;
/// assert_eq!(config.address(), "127.0.0.1:9090");
/// assert_eq!(config.poll_interval(), Some(Duration::from_millis(500)));
/// assert_eq!(config.transport(), ThriftTransport::Framed);
/// assert_eq!(config.to_string(), "thrift://127.0.0.1:9090?transport=framed&poll_interval=500ms");
/// assert!(ThriftConfig::from_url("thrift://127.0.0.1").is_err()); // the port is required
/// # Ok::<(), flipper::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThriftConfig {
    /// `HOST:PORT` as given (IPv6 hosts in brackets).
    address: String,
    transport: ThriftTransport,
    connect_timeout: Duration,
    timeout: Duration,
    pool_size: usize,
    poll_interval: Option<Duration>,
}

impl ThriftConfig {
    /// How long connecting may take by default.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
    /// How long a call may wait for its reply by default.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
    /// How many connections may be open at once by default.
    pub const DEFAULT_POOL_SIZE: usize = 8;
    /// How often a watch polls by default.
    pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);

    /// A configuration for `HOST:PORT` with the defaults.
    pub fn new(address: impl Into<String>) -> Self {
        Self {
            address: address.into(),
            transport: ThriftTransport::default(),
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            timeout: Self::DEFAULT_TIMEOUT,
            pool_size: Self::DEFAULT_POOL_SIZE,
            poll_interval: Some(Self::DEFAULT_POLL_INTERVAL),
        }
    }

    /// Parses `thrift://HOST:PORT[?parameters]` (see the table above). Does no I/O: the server
    /// is contacted on first use.
    ///
    /// # Errors
    /// [`Error::InvalidStoreUrl`] naming the problem: another scheme, no port, a path,
    /// credentials, an unknown parameter or a bad value.
    pub fn from_url(url: &str) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidStoreUrl {
            url: url.to_owned(),
            reason,
        };
        let rest = url
            .strip_prefix("thrift://")
            .ok_or_else(|| invalid("a Thrift store URL starts with thrift://".into()))?;
        let (authority, query) = rest.split_once('?').unwrap_or((rest, ""));
        let authority = authority.strip_suffix('/').unwrap_or(authority);
        if authority.contains('/') {
            return Err(invalid("a Thrift store URL has no path".into()));
        }
        if authority.contains('@') {
            return Err(invalid(
                "a Thrift store URL has no credentials (the service has no authentication)".into(),
            ));
        }
        let (host, port) = authority
            .rsplit_once(':')
            .filter(|(_, port)| !port.contains(']'))
            .ok_or_else(|| invalid("the port is required: thrift://HOST:PORT".into()))?;
        if port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(invalid(format!("bad port {port:?}")));
        }
        if host.is_empty() || host == "[]" {
            return Err(invalid("the host is missing: thrift://HOST:PORT".into()));
        }
        let mut config = Self::new(authority);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            config.set(name, value).map_err(invalid)?;
        }
        Ok(config)
    }

    fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        match name {
            "transport" => {
                self.transport = match value {
                    "buffered" => ThriftTransport::Buffered,
                    "framed" => ThriftTransport::Framed,
                    _ => {
                        return Err(format!(
                            "transport must be buffered or framed, not {value:?}"
                        ));
                    }
                }
            }
            "connect_timeout" => {
                self.connect_timeout = parse_duration(value)?
                    .ok_or_else(|| "connect_timeout must be longer than zero".to_owned())?;
            }
            "timeout" => {
                self.timeout = parse_duration(value)?
                    .ok_or_else(|| "timeout must be longer than zero".to_owned())?;
            }
            "pool_size" => {
                self.pool_size = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=1024).contains(n))
                    .ok_or_else(|| format!("pool_size must be 1 to 1024, not {value:?}"))?;
            }
            "poll_interval" => self.poll_interval = parse_duration(value)?,
            _ => {
                return Err(format!(
                    "unknown parameter {name:?}; expected transport, connect_timeout, timeout, \
                     pool_size or poll_interval"
                ));
            }
        }
        Ok(())
    }

    /// `HOST:PORT`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The message framing.
    pub fn transport(&self) -> ThriftTransport {
        self.transport
    }

    /// How long connecting may take.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// How long a call may wait for its reply.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// How many connections may be open at once.
    pub fn pool_size(&self) -> usize {
        self.pool_size
    }

    /// How often a watch polls; `None` when it does not.
    pub fn poll_interval(&self) -> Option<Duration> {
        self.poll_interval
    }

    /// With this framing.
    #[must_use]
    pub fn with_transport(mut self, transport: ThriftTransport) -> Self {
        self.transport = transport;
        self
    }

    /// With this connect timeout (at least 1 ms).
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// With this call timeout (at least 1 ms).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// With at most this many connections (at least 1).
    #[must_use]
    pub fn with_pool_size(mut self, size: usize) -> Self {
        self.pool_size = size.max(1);
        self
    }

    /// With this poll interval (`None` or zero: no polling).
    #[must_use]
    pub fn with_poll_interval(mut self, interval: Option<Duration>) -> Self {
        self.poll_interval = interval.filter(|d| !d.is_zero());
        self
    }
}

/// The URL, with the parameters that differ from the defaults.
impl fmt::Display for ThriftConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "thrift://{}", self.address)?;
        let mut params = Vec::new();
        if self.transport != ThriftTransport::default() {
            params.push(format!("transport={}", self.transport.name()));
        }
        if self.connect_timeout != Self::DEFAULT_CONNECT_TIMEOUT {
            params.push(format!(
                "connect_timeout={}",
                format_duration(Some(self.connect_timeout))
            ));
        }
        if self.timeout != Self::DEFAULT_TIMEOUT {
            params.push(format!("timeout={}", format_duration(Some(self.timeout))));
        }
        if self.pool_size != Self::DEFAULT_POOL_SIZE {
            params.push(format!("pool_size={}", self.pool_size));
        }
        if self.poll_interval != Some(Self::DEFAULT_POLL_INTERVAL) {
            params.push(format!(
                "poll_interval={}",
                format_duration(self.poll_interval)
            ));
        }
        if !params.is_empty() {
            write!(f, "?{}", params.join("&"))?;
        }
        Ok(())
    }
}

/// `500ms`, `2s`, `1m`; `0` or `off` is `None`.
fn parse_duration(value: &str) -> Result<Option<Duration>, String> {
    if matches!(value, "0" | "off") {
        return Ok(None);
    }
    let bad = || {
        format!(
            "a duration is a whole number with a unit (500ms, 2s, 1m), or 0 or off, not {value:?}"
        )
    };
    let at = value.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (digits, unit) = value.split_at(at);
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        _ => return Err(bad()),
    };
    Ok(Some(d).filter(|d| !d.is_zero()))
}

/// The inverse of [`parse_duration`].
fn format_duration(d: Option<Duration>) -> String {
    match d {
        None => "off".to_owned(),
        Some(d) if d.subsec_nanos() == 0 => format!("{}s", d.as_secs()),
        Some(d) => format!("{}ms", d.as_millis()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_or_explain() {
        let c = ThriftConfig::from_url("thrift://[::1]:9090/?timeout=1500ms&pool_size=2").unwrap();
        assert_eq!(c.address(), "[::1]:9090");
        assert_eq!(c.timeout(), Duration::from_millis(1500));
        assert_eq!(c.pool_size(), 2);
        assert_eq!(
            c.to_string(),
            "thrift://[::1]:9090?timeout=1500ms&pool_size=2"
        );
        let c = ThriftConfig::from_url("thrift://flags.internal:9090?poll_interval=off").unwrap();
        assert_eq!(c.poll_interval(), None);
        assert_eq!(
            ThriftConfig::from_url(&c.to_string()).unwrap(),
            c,
            "Display round-trips"
        );
        for (bad, why) in [
            ("http://h:1", "starts with thrift://"),
            ("thrift://h", "port is required"),
            ("thrift://[::1]", "port is required"),
            ("thrift://h:0", "bad port"),
            ("thrift://h:99999", "bad port"),
            ("thrift://:9090", "host is missing"),
            ("thrift://h:1/x", "no path"),
            ("thrift://u:p@h:1", "no credentials"),
            ("thrift://h:1?transport=zlib", "buffered or framed"),
            ("thrift://h:1?timeout=0", "longer than zero"),
            ("thrift://h:1?timeout=5", "whole number with a unit"),
            ("thrift://h:1?pool_size=0", "1 to 1024"),
            ("thrift://h:1?bogus=1", "unknown parameter \"bogus\""),
        ] {
            let err = ThriftConfig::from_url(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
