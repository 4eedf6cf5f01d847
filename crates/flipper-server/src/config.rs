//! [`ServerConfig`]: what the server needs to start, and the rules it must satisfy.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use crate::serve::ServeError;

/// Where `flipper serve` listens by default: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// The store `flipper serve` uses when none is given: the embedded database in the working
/// directory (created on first start).
pub const DEFAULT_STORE_URL: &str = "redb:flipper.redb";

/// The largest request body accepted by default: 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;

/// How often the flags are reloaded from a store that cannot report its changes.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);

/// How many recent changes the change stream keeps for subscribers that reconnect.
pub const DEFAULT_STREAM_LOG_SIZE: usize = crate::changelog::DEFAULT_LOG_CAPACITY;

/// How long a change stream may stay silent before a heartbeat (a comment line) is sent.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(15);

/// How long open requests may run on after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The server's settings (the store is given separately: opening some stores creates files,
/// and the settings are checked before that).
///
/// Built with [`ServerConfig::default`], then adjusted field by field. Tokens are never
/// printed (`Debug` shows whether each is set).
#[derive(Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// The address to listen on ([`DEFAULT_LISTEN`]).
    pub listen: SocketAddr,
    /// The token that may do everything (`Authorization: Bearer <token>`); writes are open to
    /// anyone when it is `None`.
    pub admin_token: Option<String>,
    /// The token for reads, evaluation and OFREP; those are open to anyone when it is `None`.
    pub sdk_token: Option<String>,
    /// Allows listening on a non-loopback address without both tokens.
    pub insecure: bool,
    /// The largest request body, in bytes ([`DEFAULT_MAX_BODY_BYTES`]); larger ones get 413.
    pub max_body_bytes: usize,
    /// How often to reload the flags from a store without (complete) change notification
    /// ([`DEFAULT_POLL_INTERVAL`]).
    pub poll_interval: Duration,
    /// How many recent changes `GET /api/v1/stream` keeps, so that a subscriber that
    /// reconnects with `Last-Event-ID` gets the changes it missed rather than a new snapshot
    /// ([`DEFAULT_STREAM_LOG_SIZE`]).
    pub stream_log_size: usize,
    /// How long a change stream may stay silent before a heartbeat comment is sent
    /// ([`DEFAULT_HEARTBEAT_INTERVAL`]).
    pub heartbeat_interval: Duration,
    /// Where to serve flipper-client's Thrift `FeatureFlagStore` service over the same store,
    /// if anywhere (cargo feature `thrift`). The service has no authentication: a non-loopback
    /// address needs [`ServerConfig::insecure`].
    pub thrift_listen: Option<SocketAddr>,
    /// How many threads accept and answer HTTP requests (at least 1; default 1). The first is
    /// the task that calls [`crate::serve`]; each other one is an OS thread with its own
    /// single-threaded runtime, accepting from the same socket. `flipper serve` gives one per
    /// core: a request then runs start to finish on one thread, with no work stealing or
    /// cross-thread wake-ups (a quarter less CPU per request than a work-stealing runtime).
    pub workers: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin_token: None,
            sdk_token: None,
            insecure: false,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            poll_interval: DEFAULT_POLL_INTERVAL,
            stream_log_size: DEFAULT_STREAM_LOG_SIZE,
            heartbeat_interval: DEFAULT_HEARTBEAT_INTERVAL,
            thrift_listen: None,
            workers: 1,
        }
    }
}

impl ServerConfig {
    /// Checks the configuration for listening on `addr`.
    ///
    /// # Errors
    /// [`ServeError::Config`] for an empty token, a zero body limit, poll interval, stream log
    /// size or heartbeat interval;
    /// [`ServeError::Insecure`] for a non-loopback address without both tokens and without
    /// [`ServerConfig::insecure`]; [`ServeError::Config`] for a non-loopback
    /// [`ServerConfig::thrift_listen`] without [`ServerConfig::insecure`], or any
    /// `thrift_listen` in a build without the `thrift` feature.
    pub fn validate(&self, addr: SocketAddr) -> Result<(), ServeError> {
        for (token, option) in [
            (&self.admin_token, "--admin-token"),
            (&self.sdk_token, "--sdk-token"),
        ] {
            if token.as_deref().is_some_and(str::is_empty) {
                return Err(ServeError::Config(format!(
                    "{option} is empty: give a token or leave it out"
                )));
            }
        }
        if self.max_body_bytes == 0 {
            return Err(ServeError::Config(
                "--max-body-bytes must be at least 1".into(),
            ));
        }
        if self.poll_interval.is_zero() {
            return Err(ServeError::Config(
                "the poll interval must be longer than zero".into(),
            ));
        }
        if self.stream_log_size == 0 {
            return Err(ServeError::Config(
                "--stream-log-size must be at least 1".into(),
            ));
        }
        if self.workers == 0 {
            return Err(ServeError::Config("--workers must be at least 1".into()));
        }
        if self.heartbeat_interval.is_zero() {
            return Err(ServeError::Config(
                "the heartbeat interval must be longer than zero".into(),
            ));
        }
        if let Some(thrift) = self.thrift_listen {
            if !cfg!(feature = "thrift") {
                return Err(ServeError::Config(
                    "--thrift-listen needs a build with the `thrift` cargo feature".into(),
                ));
            }
            if !thrift.ip().is_loopback() && !self.insecure {
                return Err(ServeError::Config(format!(
                    "refusing to serve Thrift on {thrift}: the Thrift service has no \
                     authentication, so anyone who can reach it could change flags; listen on \
                     a loopback address (127.0.0.1) or pass --insecure"
                )));
            }
        }
        let missing = match (&self.admin_token, &self.sdk_token) {
            (Some(_), Some(_)) => None,
            (None, Some(_)) => Some("--admin-token"),
            (Some(_), None) => Some("--sdk-token"),
            (None, None) => Some("--admin-token and --sdk-token"),
        };
        if let Some(missing) = missing
            && !addr.ip().is_loopback()
            && !self.insecure
        {
            return Err(ServeError::Insecure { addr, missing });
        }
        Ok(())
    }
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |t: &Option<String>| if t.is_some() { "<set>" } else { "<none>" };
        f.debug_struct("ServerConfig")
            .field("listen", &self.listen)
            .field("admin_token", &set(&self.admin_token))
            .field("sdk_token", &set(&self.sdk_token))
            .field("insecure", &self.insecure)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("poll_interval", &self.poll_interval)
            .field("stream_log_size", &self.stream_log_size)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("thrift_listen", &self.thrift_listen)
            .field("workers", &self.workers)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ServerConfig {
        ServerConfig::default()
    }

    #[test]
    fn public_addresses_need_both_tokens_or_insecure() {
        let public: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let loopback: SocketAddr = "[::1]:8080".parse().unwrap();
        let mut c = config();
        assert!(c.validate(loopback).is_ok());
        let err = c.validate(public).unwrap_err().to_string();
        assert!(err.contains("--admin-token and --sdk-token"), "{err}");
        assert!(err.contains("--insecure"), "{err}");
        c.admin_token = Some("a".into());
        let err = c.validate(public).unwrap_err().to_string();
        assert!(err.contains("without --sdk-token"), "{err}");
        c.sdk_token = Some("s".into());
        assert!(c.validate(public).is_ok());
        let mut open = config();
        open.insecure = true;
        assert!(open.validate(public).is_ok());
    }

    #[test]
    fn a_public_thrift_address_needs_insecure() {
        let loopback: SocketAddr = DEFAULT_LISTEN.parse().unwrap();
        let mut c = config();
        c.thrift_listen = Some("127.0.0.1:9090".parse().unwrap());
        assert_eq!(c.validate(loopback).is_ok(), cfg!(feature = "thrift"));
        c.thrift_listen = Some("0.0.0.0:9090".parse().unwrap());
        c.admin_token = Some("a".into());
        c.sdk_token = Some("s".into());
        let err = c.validate(loopback).unwrap_err().to_string();
        assert!(
            err.contains("--insecure") || err.contains("`thrift` cargo feature"),
            "{err}"
        );
        c.insecure = true;
        assert_eq!(c.validate(loopback).is_ok(), cfg!(feature = "thrift"));
    }

    #[test]
    fn empty_tokens_and_zero_limits_are_refused() {
        let addr: SocketAddr = DEFAULT_LISTEN.parse().unwrap();
        let mut c = config();
        c.sdk_token = Some(String::new());
        assert!(
            c.validate(addr)
                .unwrap_err()
                .to_string()
                .contains("--sdk-token is empty")
        );
        let mut c = config();
        c.max_body_bytes = 0;
        assert!(c.validate(addr).is_err());
        let mut c = config();
        c.workers = 0;
        let err = c.validate(addr).unwrap_err().to_string();
        assert_eq!(err, "--workers must be at least 1");
        let debug = format!(
            "{:?}",
            ServerConfig {
                admin_token: Some("secret".into()),
                ..config()
            }
        );
        assert!(
            !debug.contains("secret") && debug.contains("<set>"),
            "{debug}"
        );
    }
}
