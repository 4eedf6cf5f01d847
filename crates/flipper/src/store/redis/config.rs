//! [`RedisConfig`]: where the Redis store connects and how it names its keys, parsed from a
//! `redis://`, `rediss://`, `redis+cluster://` or `rediss+cluster://` URL. Parsing does no
//! network I/O (it reads the PEM files a `rediss://` URL names).

use std::fmt;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::store::params::{format_interval, parse_interval, percent_decode};

const DEFAULT_BASE_KEY: &str = RedisConfig::DEFAULT_BASE_KEY;
const DEFAULT_BATCH_SIZE: usize = RedisConfig::DEFAULT_BATCH_SIZE;
const DEFAULT_POLL_INTERVAL: Duration = RedisConfig::DEFAULT_POLL_INTERVAL;

/// How long connecting to a node may take.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a command may wait for its reply.
pub(super) const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a [`RedisStore`](super::RedisStore) connects, and its options.
///
/// Built from a URL with [`RedisConfig::from_url`], then adjusted with the `with_*` methods:
///
/// | URL | server |
/// |---|---|
/// | `redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]` | one Redis server (port 6379, database 0 by default) |
/// | `rediss://[[USER]:PASSWORD@]HOST[:PORT][/DB][#insecure]` | the same over TLS (cargo feature `redis-tls`) |
/// | `redis+cluster://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...][/]` | a Redis Cluster, from any of its nodes (cargo feature `redis-cluster`) |
/// | `rediss+cluster://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...][/][#insecure]` | the same over TLS (cargo features `redis-cluster` and `redis-tls`) |
///
/// Query parameters (percent-encode `&`, `#` and `%` in values):
///
/// | parameter | meaning | default |
/// |---|---|---|
/// | `base_key` | the key prefix: flag `NAME` is the key `BASE_KEY/NAME` (flipper-client's `base_key`) | `features` |
/// | `batch_size` | keys per `SCAN` step and per `MGET` when listing (flipper-client's `list_method_batch_size`) | `100` |
/// | `poll_interval` | how often a watch polls for other processes' writes when the server sends no keyspace notifications: `500ms`, `2s`, `1m`; `0` or `off` never polls | `5s` |
/// | `protocol` | `2` or `3`: the RESP version, passed to the redis crate | `2` |
/// | `ca_file` | `rediss` only: a PEM file of the CA certificate(s) to trust (a private CA) instead of the system's roots | the system's roots |
/// | `cert_file`, `key_file` | `rediss` only, together: the client's PEM certificate chain and private key, for servers with `tls-auth-clients yes` | no client certificate |
///
/// **TLS** (`rediss://`, cargo feature `redis-tls`, with rustls): the server's certificate is
/// verified against the system's roots (or `ca_file`) and must name the host of the URL (for
/// a cluster, the address each node announces). The fragment `#insecure` skips that
/// verification (a warning is logged once): for tests only. The PEM files are read when the
/// URL is parsed; a missing or unreadable file, or one without a usable certificate or key,
/// is an [`Error::InvalidStoreUrl`] naming it. A certificate the server presents that does not
/// verify fails the connection with an [`Error::Backend`] saying that TLS verification failed.
/// rustls needs a process-wide crypto provider: parsing a `rediss://` URL installs rustls's
/// aws-lc-rs provider, unless the application installed one before (which is then used).
/// Builds without `redis-tls` refuse `rediss://` URLs with a message naming the feature.
///
/// ```
/// use std::time::Duration;
/// use flipper::store::RedisConfig;
///
/// let config = RedisConfig::from_url("redis://:hunter2@127.0.0.1:6379/0?base_key=myapp&poll_interval=500ms")?;
/// assert_eq!(config.base_key(), "myapp");
/// assert_eq!(config.poll_interval(), Some(Duration::from_millis(500)));
/// // The password never shows.
/// assert_eq!(config.to_string(), "redis://:***@127.0.0.1:6379/0?base_key=myapp&poll_interval=500ms");
///
/// let config = config.with_batch_size(500).with_poll_interval(None);
/// assert_eq!(config.batch_size(), 500);
/// assert!(RedisConfig::from_url("redis://127.0.0.1?bogus=1").is_err());
/// // A CA file that does not exist is refused at once (as is `rediss://` without `redis-tls`).
/// let err = RedisConfig::from_url("rediss://127.0.0.1?ca_file=/nonexistent/ca.pem").unwrap_err();
/// assert!(matches!(err, flipper::Error::InvalidStoreUrl { .. }));
/// # Ok::<(), flipper::Error>(())
/// ```
#[derive(Clone)]
pub struct RedisConfig {
    /// The scheme as given (`redis`, `redis+cluster`).
    scheme: String,
    /// The authority with the password replaced by `***`.
    authority: String,
    /// The path as given (`/0`), for display.
    path: String,
    /// The `protocol` parameter as given.
    protocol: Option<String>,
    /// The TLS file parameters as given (for display).
    tls_files: TlsFileParams,
    /// `#insecure`.
    insecure: bool,
    pub(super) target: Target,
    base_key: String,
    batch_size: usize,
    poll_interval: Option<Duration>,
}

/// The server(s) to connect to.
#[derive(Clone)]
pub(super) enum Target {
    /// One server (boxed: with TLS, its settings hold the certificates).
    Standalone(Box<redis::Client>),
    /// A cluster: its client, and one node's settings (credentials, protocol) to reach any node.
    #[cfg(feature = "redis-cluster")]
    Cluster {
        client: Box<redis::cluster::ClusterClient>,
        node: Box<redis::ConnectionInfo>,
    },
}

impl RedisConfig {
    /// The default key prefix, flipper-client's `base_key`.
    pub const DEFAULT_BASE_KEY: &str = "features";
    /// The default number of keys per `SCAN` step and per `MGET`, flipper-client's
    /// `list_method_batch_size`.
    pub const DEFAULT_BATCH_SIZE: usize = 100;
    /// The default interval of the poll that catches other processes' writes.
    pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);

    /// Parses a store URL (see the table above). Does no network I/O: the server is contacted
    /// on first use. The PEM files named by `ca_file`, `cert_file` and `key_file` are read and
    /// checked now.
    ///
    /// # Errors
    /// [`Error::InvalidStoreUrl`] naming the problem: an unknown scheme or parameter, a bad
    /// value, a URL the redis crate refuses, a TLS file that cannot be read or holds no usable
    /// certificate or key, `rediss://` in a build without the `redis-tls` feature, or
    /// `redis+cluster://` in a build without the `redis-cluster` feature.
    pub fn from_url(url: &str) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidStoreUrl {
            url: redact_url(url),
            reason,
        };
        let (scheme, rest) = url.split_once("://").ok_or_else(|| {
            invalid(
                "expected redis(s)://HOST[:PORT][/DB] or redis(s)+cluster://HOST:PORT,...".into(),
            )
        })?;
        let (rest, fragment) = match rest.split_once('#') {
            Some((rest, fragment)) => (rest, Some(fragment)),
            None => (rest, None),
        };
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        match scheme {
            "redis" | "rediss" | "redis+cluster" | "rediss+cluster" => {}
            other => {
                return Err(invalid(format!(
                    "unknown scheme {other:?} for the Redis store; expected redis://, \
                     rediss://, redis+cluster:// or rediss+cluster://"
                )));
            }
        }
        let tls = scheme.starts_with("rediss");
        if tls && !cfg!(feature = "redis-tls") {
            return Err(invalid(format!(
                "{scheme}:// (TLS) needs flipper's cargo feature redis-tls, which this build \
                 lacks; enable it, or use redis:// (or a TLS tunnel)"
            )));
        }
        let insecure = match fragment {
            None => false,
            Some("insecure") if scheme.starts_with("rediss") => true,
            Some(_) => {
                return Err(invalid(
                    "no fragment (#...) allowed, but #insecure after rediss://".into(),
                ));
            }
        };
        if authority.is_empty() {
            return Err(invalid("no host".into()));
        }
        let params = Params::parse(query).map_err(invalid)?;
        if !tls && !params.tls_files.is_empty() {
            return Err(invalid(
                "ca_file, cert_file and key_file apply to rediss:// (TLS) only".into(),
            ));
        }
        let target = target(scheme, authority, path, insecure, &params).map_err(invalid)?;
        #[cfg(feature = "redis-tls")]
        if insecure {
            super::tls::warn_insecure(&redact_url(url));
        }
        Ok(Self {
            scheme: scheme.to_owned(),
            authority: redact_authority(authority),
            path: path.to_owned(),
            protocol: params.protocol,
            tls_files: params.tls_files,
            insecure,
            target,
            base_key: params
                .base_key
                .unwrap_or_else(|| DEFAULT_BASE_KEY.to_owned()),
            batch_size: params.batch_size.unwrap_or(DEFAULT_BATCH_SIZE),
            poll_interval: params.poll_interval.unwrap_or(Some(DEFAULT_POLL_INTERVAL)),
        })
    }

    /// With this key prefix: flag `NAME` is stored under `BASE_KEY/NAME`.
    #[must_use]
    pub fn with_base_key(mut self, base_key: impl Into<String>) -> Self {
        self.base_key = base_key.into();
        self
    }

    /// With this many keys per `SCAN` step and per `MGET` (at least 1).
    #[must_use]
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// With this fallback poll interval for watches (`None` or zero: never poll).
    #[must_use]
    pub fn with_poll_interval(mut self, every: Option<Duration>) -> Self {
        self.poll_interval = every.filter(|d| !d.is_zero());
        self
    }

    /// The key prefix.
    pub fn base_key(&self) -> &str {
        &self.base_key
    }

    /// Keys per `SCAN` step and per `MGET`.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The fallback poll interval of watches, `None` when off.
    pub fn poll_interval(&self) -> Option<Duration> {
        self.poll_interval
    }

    /// Whether this is a Redis Cluster (`redis+cluster://`).
    pub fn is_cluster(&self) -> bool {
        !matches!(self.target, Target::Standalone(_))
    }
}

impl fmt::Display for RedisConfig {
    /// The URL with the password replaced by `***` and the options that differ from the
    /// defaults.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}{}", self.scheme, self.authority, self.path)?;
        let mut sep = '?';
        let mut param = |f: &mut fmt::Formatter<'_>, name: &str, value: &str| {
            let r = write!(f, "{sep}{name}={value}");
            sep = '&';
            r
        };
        if self.base_key != DEFAULT_BASE_KEY {
            param(f, "base_key", &encode_value(&self.base_key))?;
        }
        if self.batch_size != DEFAULT_BATCH_SIZE {
            param(f, "batch_size", &self.batch_size.to_string())?;
        }
        if self.poll_interval != Some(DEFAULT_POLL_INTERVAL) {
            param(f, "poll_interval", &format_interval(self.poll_interval))?;
        }
        if let Some(protocol) = &self.protocol {
            param(f, "protocol", protocol)?;
        }
        let files = &self.tls_files;
        for (name, value) in [
            ("ca_file", &files.ca_file),
            ("cert_file", &files.cert_file),
            ("key_file", &files.key_file),
        ] {
            if let Some(path) = value {
                param(f, name, &encode_value(path))?;
            }
        }
        if self.insecure {
            f.write_str("#insecure")?;
        }
        Ok(())
    }
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &self.to_string())
            .field("base_key", &self.base_key)
            .field("batch_size", &self.batch_size)
            .field("poll_interval", &self.poll_interval)
            .finish()
    }
}

/// The redis crate's client(s) for a parsed URL; the error is the reason it cannot be used.
fn target(
    scheme: &str,
    authority: &str,
    path: &str,
    insecure: bool,
    params: &Params,
) -> Result<Target, String> {
    let tls = scheme.starts_with("rediss");
    let refused = |e: redis::RedisError| e.to_string();
    #[cfg(feature = "redis-tls")]
    let certs = if tls {
        super::tls::ensure_crypto_provider();
        super::tls::load(&params.tls_files)?
    } else {
        None
    };
    let mut suffix = match &params.protocol {
        Some(p) => format!("?protocol={p}"),
        None => String::new(),
    };
    if insecure {
        suffix.push_str("#insecure");
    }
    let node_scheme = if tls { "rediss" } else { "redis" };
    if !scheme.ends_with("+cluster") {
        let url = format!("{node_scheme}://{authority}{path}{suffix}");
        #[cfg(feature = "redis-tls")]
        if let Some(certs) = certs {
            return redis::Client::build_with_tls(url, certs)
                .map(|client| Target::Standalone(Box::new(client)))
                .map_err(refused);
        }
        return redis::Client::open(url)
            .map(|client| Target::Standalone(Box::new(client)))
            .map_err(refused);
    }
    #[cfg(feature = "redis-cluster")]
    {
        use redis::IntoConnectionInfo;
        if !matches!(path, "" | "/" | "/0") {
            return Err("a Redis Cluster has only database 0: no path after the nodes".into());
        }
        let (userinfo, hosts) = match authority.rfind('@') {
            Some(at) => (&authority[..=at], &authority[at + 1..]),
            None => ("", authority),
        };
        let mut nodes = Vec::new();
        for host in hosts.split(',') {
            if host.is_empty() {
                return Err("an empty node in the list: give HOST:PORT,HOST:PORT".into());
            }
            let node = format!("{node_scheme}://{userinfo}{host}{suffix}")
                .into_connection_info()
                .map_err(refused)?;
            nodes.push(node);
        }
        let node = nodes.first().cloned().ok_or("no node")?;
        #[cfg_attr(not(feature = "redis-tls"), allow(unused_mut))]
        let mut builder = redis::cluster::ClusterClientBuilder::new(nodes)
            .connection_timeout(CONNECT_TIMEOUT)
            .response_timeout(RESPONSE_TIMEOUT);
        #[cfg(feature = "redis-tls")]
        let node = match certs {
            Some(certs) => {
                // The mode first: `certs` alone would make it `Secure`, even with #insecure.
                let mode = if insecure {
                    redis::TlsMode::Insecure
                } else {
                    redis::TlsMode::Secure
                };
                builder = builder.tls(mode).certs(certs.clone());
                // The node's settings carry the certificates to the watch's connections.
                redis::Client::build_with_tls(node, certs)
                    .map_err(refused)?
                    .get_connection_info()
                    .clone()
            }
            None => node,
        };
        let client = builder.build().map_err(refused)?;
        Ok(Target::Cluster {
            client: Box::new(client),
            node: Box::new(node),
        })
    }
    #[cfg(not(feature = "redis-cluster"))]
    Err(
        "redis+cluster:// needs flipper's cargo feature redis-cluster, which this build lacks"
            .into(),
    )
}

/// The query parameters.
#[derive(Default)]
struct Params {
    base_key: Option<String>,
    batch_size: Option<usize>,
    /// `Some(None)`: polling off.
    poll_interval: Option<Option<Duration>>,
    protocol: Option<String>,
    tls_files: TlsFileParams,
}

/// The `ca_file`, `cert_file` and `key_file` parameters (paths, percent-decoded).
#[derive(Clone, Debug, Default)]
pub(super) struct TlsFileParams {
    /// PEM certificates to trust instead of the system's roots.
    pub(super) ca_file: Option<String>,
    /// The client's PEM certificate chain.
    pub(super) cert_file: Option<String>,
    /// The client's PEM private key.
    pub(super) key_file: Option<String>,
}

impl TlsFileParams {
    /// Whether no file is named.
    pub(super) fn is_empty(&self) -> bool {
        self.ca_file.is_none() && self.cert_file.is_none() && self.key_file.is_none()
    }
}

impl Params {
    fn parse(query: &str) -> Result<Self, String> {
        let mut params = Self::default();
        let mut seen: Vec<String> = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (raw_name, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = percent_decode(raw_name)?;
            let value = percent_decode(raw_value)?;
            if seen.contains(&name) {
                return Err(format!("parameter {name:?} given twice"));
            }
            seen.push(name.clone());
            match name.as_str() {
                "base_key" => params.base_key = Some(value),
                "batch_size" => match value.parse::<usize>() {
                    Ok(n) if n >= 1 => params.batch_size = Some(n),
                    _ => {
                        return Err(format!(
                            "batch_size must be a whole number of at least 1, not {value:?}"
                        ));
                    }
                },
                "poll_interval" => params.poll_interval = Some(parse_interval(&value)?),
                "protocol" => match value.as_str() {
                    "2" | "3" | "resp2" | "resp3" => params.protocol = Some(value),
                    _ => return Err(format!("protocol must be 2 or 3, not {value:?}")),
                },
                "ca_file" | "cert_file" | "key_file" if value.is_empty() => {
                    return Err(format!("{name} needs a path"));
                }
                "ca_file" => params.tls_files.ca_file = Some(value),
                "cert_file" => params.tls_files.cert_file = Some(value),
                "key_file" => params.tls_files.key_file = Some(value),
                _ => {
                    return Err(format!(
                        "unknown parameter {name:?}; expected base_key, batch_size, \
                         poll_interval, protocol, ca_file, cert_file or key_file"
                    ));
                }
            }
        }
        Ok(params)
    }
}

/// Percent-encodes what would end or break a query value.
fn encode_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if c.is_ascii_graphic() && !matches!(c, '&' | '#' | '%' | '=' | '?') {
            out.push(c);
        } else {
            let mut buf = [0; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

/// `[USER[:***]@]HOSTS`: the authority without its password.
fn redact_authority(authority: &str) -> String {
    match authority.rfind('@') {
        Some(at) => {
            let (userinfo, hosts) = (&authority[..at], &authority[at..]);
            match userinfo.split_once(':') {
                Some((user, _password)) => format!("{user}:***{hosts}"),
                None => authority.to_owned(),
            }
        }
        None => authority.to_owned(),
    }
}

/// A URL as given, without its password, for error messages.
pub(super) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    format!(
        "{scheme}://{}{}",
        redact_authority(&rest[..end]),
        &rest[end..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_defaults_and_options() {
        let c = RedisConfig::from_url("redis://127.0.0.1").unwrap();
        assert_eq!(c.base_key(), "features");
        assert_eq!(c.batch_size(), 100);
        assert_eq!(c.poll_interval(), Some(Duration::from_secs(5)));
        assert!(!c.is_cluster());
        assert_eq!(c.to_string(), "redis://127.0.0.1");

        let c = RedisConfig::from_url(
            "redis://user:p%40ss@h:7000/3?base_key=my%26app*&batch_size=7&poll_interval=off&protocol=3",
        )
        .unwrap();
        assert_eq!(c.base_key(), "my&app*");
        assert_eq!(c.batch_size(), 7);
        assert_eq!(c.poll_interval(), None);
        assert_eq!(
            c.to_string(),
            "redis://user:***@h:7000/3?base_key=my%26app*&batch_size=7&poll_interval=off&protocol=3"
        );
        let c = c
            .with_base_key("x y")
            .with_batch_size(0)
            .with_poll_interval(Some(Duration::from_millis(1500)));
        assert_eq!(c.batch_size(), 1);
        assert_eq!(
            c.to_string(),
            "redis://user:***@h:7000/3?base_key=x%20y&batch_size=1&poll_interval=1500ms&protocol=3"
        );
        for (interval, expected) in [
            ("2s", Some(Duration::from_secs(2))),
            ("500ms", Some(Duration::from_millis(500))),
            ("1m", Some(Duration::from_secs(60))),
            ("0", None),
            ("0s", None),
        ] {
            let c = RedisConfig::from_url(&format!("redis://h?poll_interval={interval}")).unwrap();
            assert_eq!(c.poll_interval(), expected, "{interval}");
        }
    }

    #[test]
    fn bad_urls_name_the_problem_and_hide_the_password() {
        let mut cases = vec![
            ("redis://:secret@h?bogus=1", "unknown parameter \"bogus\""),
            ("redis://:secret@h?batch_size=0", "batch_size must be"),
            ("redis://h?batch_size=x", "batch_size must be"),
            ("redis://h?poll_interval=5", "poll_interval must be"),
            ("redis://h?poll_interval=2h", "poll_interval must be"),
            ("redis://h?poll_interval=-1s", "poll_interval must be"),
            ("redis://h?base_key=a&base_key=b", "given twice"),
            ("redis://h?base_key=%zz", "bad percent-escape"),
            ("redis://h?protocol=4", "protocol must be 2 or 3"),
            ("redis://h#x", "no fragment"),
            ("redis://", "no host"),
            ("redis://h/notadb", "database"),
            ("http://h", "unknown scheme \"http\""),
            ("127.0.0.1:6379", "expected redis(s)://"),
            ("redis://h?ca_file=/x", "rediss:// (TLS) only"),
            ("redis://h?cert_file=/x&key_file=/y", "rediss:// (TLS) only"),
        ];
        if cfg!(feature = "redis-tls") {
            cases.extend([
                ("rediss://:secret@h?ca_file=", "ca_file needs a path"),
                (
                    "rediss://:secret@h?ca_file=/nonexistent/ca.pem",
                    "ca_file \"/nonexistent/ca.pem\" cannot be read",
                ),
                ("rediss://:secret@h?cert_file=/x", "go together"),
                ("rediss://:secret@h?key_file=/x", "go together"),
                ("rediss://h#secure", "no fragment"),
            ]);
        } else {
            cases.push(("rediss://:secret@h", "cargo feature redis-tls"));
        }
        if cfg!(feature = "redis-cluster") {
            cases.extend([
                ("redis+cluster://:secret@h:1,,h:2", "empty node"),
                ("redis+cluster://h:1/2", "only database 0"),
            ]);
            if !cfg!(feature = "redis-tls") {
                cases.push(("rediss+cluster://h:1", "cargo feature redis-tls"));
            }
        } else {
            cases.push(("redis+cluster://h:1", "redis-cluster"));
        }
        for (url, why) in cases {
            let err = RedisConfig::from_url(url).unwrap_err();
            assert!(matches!(err, Error::InvalidStoreUrl { .. }), "{url}: {err}");
            let msg = err.to_string();
            assert!(msg.contains(why), "{url}: {msg}");
            assert!(!msg.contains("secret"), "{msg}");
        }
    }

    #[cfg(feature = "redis-tls")]
    #[test]
    fn tls_urls_show_their_options() {
        let c = RedisConfig::from_url("rediss://:pw@h:6380/1?base_key=b#insecure").unwrap();
        assert_eq!(c.to_string(), "rediss://:***@h:6380/1?base_key=b#insecure");
        let dir = std::env::temp_dir().join(format!("flipper-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "no PEM here\n").unwrap();
        let url = format!("rediss://h?ca_file={}", empty.display());
        let err = RedisConfig::from_url(&url).unwrap_err().to_string();
        assert!(err.contains("holds no PEM certificate"), "{err}");
        assert!(err.contains("empty.pem"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[cfg(all(feature = "redis-tls", feature = "redis-cluster"))]
    #[test]
    fn tls_cluster_urls_parse() {
        let c = RedisConfig::from_url("rediss+cluster://h1:7000,h2:7001#insecure").unwrap();
        assert!(c.is_cluster());
        assert_eq!(c.to_string(), "rediss+cluster://h1:7000,h2:7001#insecure");
    }

    #[cfg(feature = "redis-cluster")]
    #[test]
    fn cluster_urls_list_their_nodes() {
        let c =
            RedisConfig::from_url("redis+cluster://:pw@10.0.0.1:7000,10.0.0.2:7001/?base_key=b")
                .unwrap();
        assert!(c.is_cluster());
        assert_eq!(c.base_key(), "b");
        assert_eq!(
            c.to_string(),
            "redis+cluster://:***@10.0.0.1:7000,10.0.0.2:7001/?base_key=b"
        );
        assert!(!format!("{c:?}").contains("pw@"));
    }
}
