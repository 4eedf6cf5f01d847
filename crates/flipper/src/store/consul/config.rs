//! [`ConsulConfig`]: where the Consul store connects and how it names its keys, parsed from a
//! `consul://HOST[:PORT][/BASE_KEY][?token=...&wait=5m&consistency=stale&dc=dc1]` URL. Parsing
//! does no network I/O.

use std::fmt;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::store::params::percent_decode;

/// How Consul's servers answer reads: its `?consistent` and `?stale` query flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Consistency {
    /// Consul's default: the leader answers, from its memory (almost always current).
    #[default]
    Default,
    /// `?consistent`: the leader checks with a quorum that it is still the leader first (one
    /// more round trip between servers per read).
    Consistent,
    /// `?stale`: any server answers, possibly behind the leader: reads scale across servers,
    /// but a flag just written may not be readable at once from a follower.
    Stale,
}

impl Consistency {
    /// The query flag, or `None` for the default.
    pub(super) fn flag(self) -> Option<&'static str> {
        match self {
            Self::Default => None,
            Self::Consistent => Some("consistent"),
            Self::Stale => Some("stale"),
        }
    }
}

/// Where a [`ConsulStore`](super::ConsulStore) connects, and its options.
///
/// `consul://HOST[:PORT][/BASE_KEY]`: a Consul agent's HTTP API (port 8500 by default, plain
/// HTTP); flag `NAME` is the key `BASE_KEY/NAME` (`features/NAME` by default, flipper-client's
/// `base_key`; a base key may hold slashes: `consul://h/myapp/features`). Query parameters
/// (percent-encode `&`, `#` and `%` in values):
///
/// | parameter | meaning | default |
/// |---|---|---|
/// | `token` | the ACL token, sent as `X-Consul-Token` (never shown: `token=***`) | the `CONSUL_HTTP_TOKEN` environment variable, else none |
/// | `wait` | how long one blocking query of the watch may wait for a change: `500ms`, `30s`, `5m`; at most `10m` (Consul's cap) | `5m` |
/// | `consistency` | `default`, `consistent` or `stale`: the consistency mode of reads (`get`, `list`, the watch) | `default` |
/// | `dc` | the datacenter to query, when not the agent's own | the agent's |
///
/// ```
/// use std::time::Duration;
/// use flipper::store::ConsulConfig;
///
/// let config = ConsulConfig::from_url("consul://127.0.0.1:8500/myapp/features?token=s3cret&wait=30s")?;
/// assert_eq!(config.base_key(), "myapp/features");
/// assert_eq!(config.wait(), Duration::from_secs(30));
/// assert_eq!(config.http_base(), "http://127.0.0.1:8500");
/// // The token never shows.
/// assert_eq!(config.to_string(), "consul://127.0.0.1:8500/myapp/features?token=***&wait=30s");
/// assert!(!format!("{config:?}").contains("s3cret"));
/// assert!(ConsulConfig::from_url("consul://127.0.0.1?bogus=1").is_err());
/// # Ok::<(), flipper::Error>(())
/// ```
#[derive(Clone)]
pub struct ConsulConfig {
    /// `HOST:PORT` as given (the port added when missing).
    authority: String,
    /// `http://HOST:PORT`.
    http_base: String,
    base_key: String,
    token: Option<String>,
    /// Whether the token came from the URL (or [`ConsulConfig::with_token`]): shown as `***`.
    token_given: bool,
    wait: Duration,
    consistency: Consistency,
    datacenter: Option<String>,
}

impl ConsulConfig {
    /// The environment variable the ACL token is read from when the URL has none (Consul's
    /// own tools read it too).
    pub const TOKEN_ENV: &str = "CONSUL_HTTP_TOKEN";
    /// The default key prefix, flipper-client's `base_key`.
    pub const DEFAULT_BASE_KEY: &str = "features";
    /// The default HTTP port of a Consul agent.
    pub const DEFAULT_PORT: u16 = 8500;
    /// The default wait of a blocking query (Consul's own default).
    pub const DEFAULT_WAIT: Duration = Duration::from_secs(300);
    /// The longest wait Consul honours.
    pub const MAX_WAIT: Duration = Duration::from_secs(600);

    /// Parses a store URL (see the table above). Does no network I/O. Without a `token`
    /// parameter, the token is read from the `CONSUL_HTTP_TOKEN` environment variable.
    ///
    /// # Errors
    /// [`Error::InvalidStoreUrl`] naming the problem (the token hidden): another scheme, no
    /// host, a bad port, user or password in the URL, a base key with empty, `.` or `..`
    /// segments, an unknown parameter or a bad value.
    pub fn from_url(url: &str) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidStoreUrl {
            url: redact_url(url),
            reason,
        };
        let rest = url
            .strip_prefix("consul://")
            .ok_or_else(|| invalid("expected consul://HOST[:PORT][/BASE_KEY]".into()))?;
        if rest.contains('#') {
            return Err(invalid("no fragment (#...) allowed".into()));
        }
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let (host, port) = split_authority(authority).map_err(invalid)?;
        let base_key =
            percent_decode(path.trim_start_matches('/').trim_end_matches('/')).map_err(invalid)?;
        let base_key = if base_key.is_empty() {
            Self::DEFAULT_BASE_KEY.to_owned()
        } else {
            check_key_path(&base_key).map_err(|why| invalid(format!("base key: {why}")))?;
            base_key
        };
        let params = Params::parse(query).map_err(invalid)?;
        let (token, token_given) = match params.token {
            Some(token) => (Some(token), true),
            None => (
                std::env::var(Self::TOKEN_ENV)
                    .ok()
                    .filter(|t| !t.is_empty()),
                false,
            ),
        };
        Ok(Self {
            authority: format!("{host}:{port}"),
            http_base: format!("http://{host}:{port}"),
            base_key,
            token,
            token_given,
            wait: params.wait.unwrap_or(Self::DEFAULT_WAIT),
            consistency: params.consistency.unwrap_or_default(),
            datacenter: params.datacenter,
        })
    }

    /// With this key prefix: flag `NAME` is stored under `BASE_KEY/NAME`.
    ///
    /// # Errors
    /// [`Error::InvalidStoreUrl`] for an empty base key or one with empty, `.` or `..`
    /// segments (Consul cannot address such keys).
    pub fn with_base_key(mut self, base_key: impl Into<String>) -> Result<Self> {
        let base_key = base_key.into();
        check_key_path(&base_key).map_err(|why| Error::InvalidStoreUrl {
            url: self.to_string(),
            reason: format!("base key: {why}"),
        })?;
        self.base_key = base_key;
        Ok(self)
    }

    /// With this ACL token (`None`: none, whatever `CONSUL_HTTP_TOKEN` says).
    #[must_use]
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token_given = token.is_some();
        self.token = token;
        self
    }

    /// With this blocking-query wait, clamped to 1 ms ..= [`ConsulConfig::MAX_WAIT`].
    #[must_use]
    pub fn with_wait(mut self, wait: Duration) -> Self {
        self.wait = wait.clamp(Duration::from_millis(1), Self::MAX_WAIT);
        self
    }

    /// With this read consistency mode.
    #[must_use]
    pub fn with_consistency(mut self, consistency: Consistency) -> Self {
        self.consistency = consistency;
        self
    }

    /// The key prefix.
    pub fn base_key(&self) -> &str {
        &self.base_key
    }

    /// The agent's HTTP address, `http://HOST:PORT`.
    pub fn http_base(&self) -> &str {
        &self.http_base
    }

    /// The wait of one blocking query.
    pub fn wait(&self) -> Duration {
        self.wait
    }

    /// The read consistency mode.
    pub fn consistency(&self) -> Consistency {
        self.consistency
    }

    /// The datacenter queried, when not the agent's own.
    pub fn datacenter(&self) -> Option<&str> {
        self.datacenter.as_deref()
    }

    /// Whether an ACL token is sent.
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// The ACL token (for the HTTP client only).
    pub(super) fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }
}

impl fmt::Display for ConsulConfig {
    /// The URL with the token replaced by `***` (a token from the environment is not shown)
    /// and the options that differ from the defaults.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "consul://{}/{}",
            self.authority,
            encode(&self.base_key, true)
        )?;
        let mut sep = '?';
        let mut param = |f: &mut fmt::Formatter<'_>, name: &str, value: &str| {
            let r = write!(f, "{sep}{name}={value}");
            sep = '&';
            r
        };
        if self.token_given {
            param(f, "token", "***")?;
        }
        if self.wait != Self::DEFAULT_WAIT {
            param(f, "wait", &format_duration(self.wait))?;
        }
        if let Some(flag) = self.consistency.flag() {
            param(f, "consistency", flag)?;
        }
        if let Some(dc) = &self.datacenter {
            param(f, "dc", &encode(dc, false))?;
        }
        Ok(())
    }
}

impl fmt::Debug for ConsulConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsulConfig")
            .field("url", &self.to_string())
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("wait", &self.wait)
            .field("consistency", &self.consistency)
            .finish()
    }
}

/// Checks a key path (a base key, or a flag name under it): Consul's HTTP server cleans
/// request paths, so empty, `.` and `..` segments would name another key.
pub(super) fn check_key_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("empty".into());
    }
    for segment in path.split('/') {
        match segment {
            "" => {
                return Err(format!(
                    "{path:?} has an empty segment (a leading, trailing or double /): Consul \
                     cannot address it"
                ));
            }
            "." | ".." => {
                return Err(format!(
                    "{path:?} has a {segment:?} segment: Consul cannot address it"
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// `HOST[:PORT]` (IPv6 in brackets) as the host and the port, 8500 by default.
fn split_authority(authority: &str) -> Result<(&str, u16), String> {
    if authority.is_empty() {
        return Err("no host".into());
    }
    if authority.contains('@') {
        return Err(
            "no user or password in the URL: give the ACL token as token=... or in \
             CONSUL_HTTP_TOKEN"
                .into(),
        );
    }
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let end = rest.find(']').ok_or("an IPv6 host needs its closing ]")?;
        let host = &authority[..end + 2];
        match &rest[end + 1..] {
            "" => (host, None),
            tail => (
                host,
                Some(
                    tail.strip_prefix(':')
                        .ok_or("expected :PORT after the IPv6 host")?,
                ),
            ),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() || host == "[]" {
        return Err("no host".into());
    }
    if host
        .chars()
        .any(|c| c.is_whitespace() || matches!(c, '/' | '?' | '#' | '%' | '\\'))
    {
        return Err(format!("bad host {host:?}"));
    }
    let port = match port {
        None => ConsulConfig::DEFAULT_PORT,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("bad port {p:?}"))?,
    };
    Ok((host, port))
}

/// The query parameters.
#[derive(Default)]
struct Params {
    token: Option<String>,
    wait: Option<Duration>,
    consistency: Option<Consistency>,
    datacenter: Option<String>,
}

impl Params {
    fn parse(query: &str) -> Result<Self, String> {
        let mut params = Self::default();
        let mut seen: Vec<String> = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (raw_name, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = percent_decode(raw_name)?;
            // Never echo a token back: its value is not decoded into a message.
            let value = percent_decode(raw_value).map_err(|e| {
                if name == "token" {
                    "bad percent-escape in the token".to_owned()
                } else {
                    e
                }
            })?;
            if seen.contains(&name) {
                return Err(format!("parameter {name:?} given twice"));
            }
            seen.push(name.clone());
            match name.as_str() {
                "token" if value.is_empty() => return Err("token needs a value".into()),
                "token" => params.token = Some(value),
                "wait" => params.wait = Some(parse_wait(&value)?),
                "consistency" => {
                    params.consistency = Some(match value.as_str() {
                        "default" => Consistency::Default,
                        "consistent" => Consistency::Consistent,
                        "stale" => Consistency::Stale,
                        _ => {
                            return Err(format!(
                                "consistency must be default, consistent or stale, not {value:?}"
                            ));
                        }
                    });
                }
                "dc" if value.is_empty() => return Err("dc needs a datacenter name".into()),
                "dc" => params.datacenter = Some(value),
                _ => {
                    return Err(format!(
                        "unknown parameter {name:?}; expected token, wait, consistency or dc"
                    ));
                }
            }
        }
        Ok(params)
    }
}

/// `500ms`, `30s`, `5m`: more than zero, at most 10 minutes.
fn parse_wait(value: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "wait must be a whole number with a unit (500ms, 30s, 5m), more than 0 and at most \
             10m (Consul's cap), not {value:?}"
        )
    };
    let split = value.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (digits, unit) = value.split_at(split);
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let wait = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        _ => return Err(bad()),
    };
    if wait.is_zero() || wait > ConsulConfig::MAX_WAIT {
        return Err(bad());
    }
    Ok(wait)
}

/// A duration as Consul's `wait` parameter reads it (Go's `time.ParseDuration`): whole
/// seconds as `Ns`, else milliseconds.
pub(super) fn format_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.as_secs() > 0 {
        if d.as_secs().is_multiple_of(60) {
            format!("{}m", d.as_secs() / 60)
        } else {
            format!("{}s", d.as_secs())
        }
    } else {
        format!("{}ms", d.as_millis().max(1))
    }
}

/// Percent-encodes all but `A-Z a-z 0-9 - . _ ~` (and `/` when `keep_slash`): a key as a URL
/// path, or a query value.
pub(super) fn encode(value: &str, keep_slash: bool) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
    out
}

/// A URL as given, with any user information and the value of any `token` parameter
/// replaced by `***`, for messages.
fn redact_url(url: &str) -> String {
    let url = match url.split_once("://") {
        Some((scheme, rest)) => {
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            match rest[..end].rfind('@') {
                Some(at) => format!("{scheme}://***{}", &rest[at..]),
                None => url.to_owned(),
            }
        }
        None => url.to_owned(),
    };
    let Some((head, query)) = url.split_once('?') else {
        return url;
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some(("token", _)) => "token=***".to_owned(),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{head}?{}", pairs.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_defaults_and_options() {
        let c = ConsulConfig::from_url("consul://127.0.0.1").unwrap();
        assert_eq!(c.base_key(), "features");
        assert_eq!(c.http_base(), "http://127.0.0.1:8500");
        assert_eq!(c.wait(), Duration::from_secs(300));
        assert_eq!(c.consistency(), Consistency::Default);
        assert_eq!(c.to_string(), "consul://127.0.0.1:8500/features");

        let c = ConsulConfig::from_url(
            "consul://consul.local:18500/my%20app/flags/?token=a%26b&wait=1500ms&consistency=stale&dc=eu%201",
        )
        .unwrap();
        assert_eq!(c.base_key(), "my app/flags");
        assert_eq!(c.token(), Some("a&b"));
        assert_eq!(c.wait(), Duration::from_millis(1500));
        assert_eq!(c.consistency(), Consistency::Stale);
        assert_eq!(c.datacenter(), Some("eu 1"));
        assert_eq!(
            c.to_string(),
            "consul://consul.local:18500/my%20app/flags?token=***&wait=1500ms&consistency=stale&dc=eu%201"
        );
        let c = ConsulConfig::from_url("consul://[::1]:9/x?wait=2m").unwrap();
        assert_eq!(c.http_base(), "http://[::1]:9");
        assert_eq!(c.to_string(), "consul://[::1]:9/x?wait=2m");
        let c = c
            .with_token(Some("t".into()))
            .with_wait(Duration::from_secs(3600))
            .with_consistency(Consistency::Consistent)
            .with_base_key("a/b")
            .unwrap();
        assert!(c.has_token());
        assert_eq!(c.wait(), ConsulConfig::MAX_WAIT);
        assert_eq!(
            c.to_string(),
            "consul://[::1]:9/a/b?token=***&wait=10m&consistency=consistent"
        );
        assert!(c.clone().with_base_key("a//b").is_err());
        assert!(!c.with_token(None).has_token());
    }

    #[test]
    fn bad_urls_name_the_problem_and_hide_the_token() {
        for (url, why) in [
            (
                "consul://h?token=secret&bogus=1",
                "unknown parameter \"bogus\"",
            ),
            ("consul://h?token=secret&wait=0s", "wait must be"),
            ("consul://h?token=secret&wait=11m", "wait must be"),
            ("consul://h?wait=5", "wait must be"),
            ("consul://h?wait=1h", "wait must be"),
            ("consul://h?consistency=strong", "consistency must be"),
            ("consul://h?token=secret&token=secret", "given twice"),
            ("consul://h?token=", "token needs a value"),
            (
                "consul://h?token=%zzsecret",
                "bad percent-escape in the token",
            ),
            ("consul://h?dc=", "dc needs"),
            ("consul://h#x", "no fragment"),
            ("consul://", "no host"),
            ("consul://:8500", "no host"),
            ("consul://h:0", "bad port"),
            ("consul://h:99999", "bad port"),
            ("consul://user:secret@h", "no user or password"),
            ("consul://h/a//b?token=secret", "empty segment"),
            ("consul://h/a/../b", "\"..\" segment"),
            ("consul://[::1", "closing ]"),
            ("http://h", "expected consul://"),
        ] {
            let err = ConsulConfig::from_url(url).unwrap_err();
            assert!(matches!(err, Error::InvalidStoreUrl { .. }), "{url}: {err}");
            let msg = err.to_string();
            assert!(msg.contains(why), "{url}: {msg}");
            assert!(!msg.contains("secret"), "{msg}");
        }
    }

    #[test]
    fn key_paths_and_durations() {
        assert!(check_key_path("a/b c/é").is_ok());
        for bad in ["", "/a", "a/", "a//b", ".", "a/./b", "a/.."] {
            assert!(check_key_path(bad).is_err(), "{bad}");
        }
        assert_eq!(encode("a/b c%é", true), "a/b%20c%25%C3%A9");
        assert_eq!(encode("a/b", false), "a%2Fb");
        for (d, s) in [
            (Duration::from_secs(300), "5m"),
            (Duration::from_secs(30), "30s"),
            (Duration::from_millis(1500), "1500ms"),
            (Duration::ZERO, "1ms"),
        ] {
            assert_eq!(format_duration(d), s);
        }
    }
}
