//! [`S3Config`]: where the S3 store keeps its flags (bucket, optional prefix) and how it
//! reaches the service, parsed from an `s3://BUCKET[/PREFIX]` URL. Parsing does no I/O.

use std::fmt;
use std::time::Duration;

use object_store::path::Path;

use crate::error::{Error, Result};
use crate::store::params::{format_interval, parse_interval, percent_decode};

const DEFAULT_POLL_INTERVAL: Duration = S3Config::DEFAULT_POLL_INTERVAL;

/// Where an [`S3Store`](super::S3Store) keeps its flags, and its options.
///
/// Built from a URL with [`S3Config::from_url`], then adjusted with the `with_*` methods.
///
/// `s3://BUCKET[/PREFIX][?PARAMETERS]`: flag `NAME` is the object `NAME` in `BUCKET`, or
/// `PREFIX/NAME` with a prefix (flipper-client's `S3FeatureFlagStore` has no prefix: share a
/// bucket with it without one).
///
/// The service, the region and the credentials come from the environment, as the AWS tools
/// read them (object_store's `AmazonS3Builder::from_env`): `AWS_ENDPOINT_URL` (an
/// S3-compatible service; unset for AWS), `AWS_REGION` (default `us-east-1`),
/// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN`), `AWS_ALLOW_HTTP`
/// (`true` for a plain-`http://` endpoint). Without credentials in the environment, the
/// instance's or container's role is used. Query parameters override the environment
/// (percent-encode `&`, `#` and `%` in values):
///
/// | parameter | meaning | default |
/// |---|---|---|
/// | `endpoint` | the service's URL, `http(s)://HOST[:PORT]` | `AWS_ENDPOINT_URL`, else AWS |
/// | `region` | the region requests are signed for | `AWS_REGION`, else `us-east-1` |
/// | `allow_http` | `true` to allow a plain-`http://` endpoint | `AWS_ALLOW_HTTP`, else `false` |
/// | `poll_interval` | how often a watch lists the bucket to hear other processes' writes: `500ms`, `2s`, `1m`; `0` or `off` never polls | `10s` |
/// | `conditional_writes` | `false` for a service without conditional writes (`If-Match` / `If-None-Match`): writes then overwrite, as flipper-client's do | `true` |
///
/// Credentials are never part of the URL: give them in the environment, or to
/// [`S3Config::with_credentials`].
///
/// ```
/// use std::time::Duration;
/// use flipper::store::S3Config;
///
/// let config = S3Config::from_url(
///     "s3://my-flags/prod/app?endpoint=http://127.0.0.1:9000&allow_http=true&poll_interval=2s",
/// )?;
/// assert_eq!(config.bucket(), "my-flags");
/// assert_eq!(config.prefix(), "prod/app");
/// assert_eq!(config.poll_interval(), Some(Duration::from_secs(2)));
/// assert!(config.conditional_writes());
/// let config = config.with_credentials("test", "secret").with_poll_interval(None);
/// // Credentials never show.
/// assert_eq!(
///     config.to_string(),
///     "s3://my-flags/prod/app?endpoint=http://127.0.0.1:9000&allow_http=true&poll_interval=off"
/// );
/// assert!(S3Config::from_url("s3://my-flags?bogus=1").is_err());
/// # Ok::<(), flipper::Error>(())
/// ```
#[derive(Clone)]
pub struct S3Config {
    bucket: String,
    /// `""` or the prefix without leading or trailing `/`.
    prefix: String,
    endpoint: Option<String>,
    region: Option<String>,
    allow_http: Option<bool>,
    poll_interval: Option<Duration>,
    conditional_writes: bool,
    credentials: Option<Credentials>,
}

/// An access key pair given in code.
#[derive(Clone)]
pub(super) struct Credentials {
    pub(super) access_key_id: String,
    pub(super) secret_access_key: String,
}

impl S3Config {
    /// The default interval of the poll that hears other processes' writes. A poll is one
    /// `ListObjectsV2` request per 1,000 objects, plus one `GET` per changed object.
    pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(10);

    /// A configuration for this bucket, without prefix, with the environment's settings.
    pub fn new(bucket: impl Into<String>) -> Self {
        Self {
            bucket: bucket.into(),
            prefix: String::new(),
            endpoint: None,
            region: None,
            allow_http: None,
            poll_interval: Some(DEFAULT_POLL_INTERVAL),
            conditional_writes: true,
            credentials: None,
        }
    }

    /// Parses a store URL (see the table above). Does no I/O.
    ///
    /// # Errors
    /// [`Error::InvalidStoreUrl`] naming the problem: another scheme, no bucket, a bucket name
    /// S3 refuses, credentials or a port in the URL, a prefix that cannot be an object key
    /// prefix (empty, `.` or `..` segments, control characters), an unknown or repeated
    /// parameter, a bad value.
    pub fn from_url(url: &str) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidStoreUrl {
            url: redact(url),
            reason,
        };
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| invalid("expected s3://BUCKET[/PREFIX][?PARAMETERS]".into()))?;
        if rest.contains('#') {
            return Err(invalid("no fragment (#...) allowed".into()));
        }
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (bucket, path) = rest.split_once('/').unwrap_or((rest, ""));
        check_bucket(bucket).map_err(invalid)?;
        let prefix = percent_decode(path).map_err(invalid)?;
        let mut config = Self::new(bucket);
        config.prefix = check_prefix(&prefix).map_err(invalid)?;
        config.apply_query(query).map_err(invalid)?;
        Ok(config)
    }

    fn apply_query(&mut self, query: &str) -> Result<(), String> {
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
                "endpoint" => {
                    if !(value.starts_with("http://") || value.starts_with("https://")) {
                        return Err(format!(
                            "endpoint must be an http:// or https:// URL, not {value:?}"
                        ));
                    }
                    self.endpoint = Some(value);
                }
                "region" if value.is_empty() => return Err("region needs a value".into()),
                "region" => self.region = Some(value),
                "allow_http" => self.allow_http = Some(parse_bool(&name, &value)?),
                "poll_interval" => self.poll_interval = parse_interval(&value)?,
                "conditional_writes" => self.conditional_writes = parse_bool(&name, &value)?,
                _ => {
                    return Err(format!(
                        "unknown parameter {name:?}; expected endpoint, region, allow_http, \
                         poll_interval or conditional_writes (credentials come from the \
                         environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)"
                    ));
                }
            }
        }
        Ok(())
    }

    /// With this key prefix: flag `NAME` is the object `PREFIX/NAME` (`""`: no prefix).
    /// Leading and trailing `/` are ignored.
    ///
    /// # Errors
    /// [`Error::InvalidStoreUrl`] for a prefix that cannot be an object key prefix (empty, `.`
    /// or `..` segments, control characters).
    pub fn with_prefix(mut self, prefix: &str) -> Result<Self> {
        self.prefix = check_prefix(prefix).map_err(|reason| Error::InvalidStoreUrl {
            url: self.to_string(),
            reason,
        })?;
        Ok(self)
    }

    /// With this service endpoint (`http(s)://HOST[:PORT]`) instead of `AWS_ENDPOINT_URL`.
    #[must_use]
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// With this region instead of `AWS_REGION`.
    #[must_use]
    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Whether a plain-`http://` endpoint is allowed (instead of `AWS_ALLOW_HTTP`).
    #[must_use]
    pub fn with_allow_http(mut self, yes: bool) -> Self {
        self.allow_http = Some(yes);
        self
    }

    /// With this poll interval for watches (`None` or zero: never poll; other processes'
    /// writes are then not reported).
    #[must_use]
    pub fn with_poll_interval(mut self, every: Option<Duration>) -> Self {
        self.poll_interval = every.filter(|d| !d.is_zero());
        self
    }

    /// Whether to use conditional writes (`If-None-Match: *`, `If-Match: ETAG`) for
    /// compare-and-swap; `false` for a service without them (writes then overwrite, and
    /// concurrent read-modify-writes may lose updates, as flipper-client's do).
    #[must_use]
    pub fn with_conditional_writes(mut self, yes: bool) -> Self {
        self.conditional_writes = yes;
        self
    }

    /// With these credentials instead of the environment's (`AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`). They are never displayed.
    #[must_use]
    pub fn with_credentials(
        mut self,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
    ) -> Self {
        self.credentials = Some(Credentials {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
        });
        self
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The key prefix without leading or trailing `/` (`""`: none).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The endpoint given in the URL or in code (`None`: the environment's, else AWS).
    pub fn endpoint(&self) -> Option<&str> {
        self.endpoint.as_deref()
    }

    /// The region given in the URL or in code (`None`: the environment's, else `us-east-1`).
    pub fn region(&self) -> Option<&str> {
        self.region.as_deref()
    }

    /// Whether plain HTTP was allowed or refused in the URL or in code (`None`: the
    /// environment decides).
    pub fn allow_http(&self) -> Option<bool> {
        self.allow_http
    }

    /// The poll interval of watches, `None` when off.
    pub fn poll_interval(&self) -> Option<Duration> {
        self.poll_interval
    }

    /// Whether compare-and-swap uses conditional writes.
    pub fn conditional_writes(&self) -> bool {
        self.conditional_writes
    }

    pub(super) fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }
}

impl fmt::Display for S3Config {
    /// The URL with the options that differ from the defaults (never the credentials).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}", self.bucket)?;
        if !self.prefix.is_empty() {
            write!(f, "/{}", encode(&self.prefix))?;
        }
        let mut sep = '?';
        let mut param = |f: &mut fmt::Formatter<'_>, name: &str, value: &str| {
            let r = write!(f, "{sep}{name}={value}");
            sep = '&';
            r
        };
        if let Some(endpoint) = &self.endpoint {
            param(f, "endpoint", &encode(endpoint))?;
        }
        if let Some(region) = &self.region {
            param(f, "region", &encode(region))?;
        }
        if let Some(yes) = self.allow_http {
            param(f, "allow_http", if yes { "true" } else { "false" })?;
        }
        if self.poll_interval != Some(DEFAULT_POLL_INTERVAL) {
            param(f, "poll_interval", &format_interval(self.poll_interval))?;
        }
        if !self.conditional_writes {
            param(f, "conditional_writes", "false")?;
        }
        Ok(())
    }
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("url", &self.to_string())
            .field("credentials", &self.credentials.as_ref().map(|_| "<given>"))
            .finish()
    }
}

/// A URL as given, with anything before an `@` in its authority replaced by `***`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{scheme}://***{}", &rest[at..]),
        None => url.to_owned(),
    }
}

/// S3's bucket naming rules, loosely: 3 to 63 of `a-z 0-9 . -` (and `_` and capitals, which
/// some S3-compatible services allow).
fn check_bucket(bucket: &str) -> Result<(), String> {
    if bucket.is_empty() {
        return Err("no bucket: expected s3://BUCKET[/PREFIX]".into());
    }
    if bucket.contains('@') {
        return Err("no credentials in the URL: set AWS_ACCESS_KEY_ID and \
                    AWS_SECRET_ACCESS_KEY in the environment"
            .into());
    }
    if bucket.contains(':') {
        return Err(
            "no port after the bucket: give the service with endpoint=URL or \
                    AWS_ENDPOINT_URL"
                .into(),
        );
    }
    let ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{bucket:?} is not a bucket name (3 to 63 letters, digits, '.', '-')"
        ))
    }
}

/// The prefix without leading or trailing `/`, if every segment can be part of an object
/// key that object_store represents as given.
fn check_prefix(prefix: &str) -> Result<String, String> {
    let trimmed = prefix.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    match Path::parse(trimmed) {
        Ok(path) if path.as_ref() == trimmed => Ok(trimmed.to_owned()),
        _ => Err(format!(
            "the prefix {prefix:?} cannot be an object key prefix: no empty, '.' or '..' \
             segments and no control characters"
        )),
    }
}

fn parse_bool(name: &str, value: &str) -> Result<bool, String> {
    match value {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(format!("{name} must be true or false, not {value:?}")),
    }
}

/// Percent-encodes what would end or break a URL path or a query value.
fn encode(value: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_defaults_and_options() {
        let c = S3Config::from_url("s3://flags-bucket").unwrap();
        assert_eq!(c.bucket(), "flags-bucket");
        assert_eq!(c.prefix(), "");
        assert_eq!(c.endpoint(), None);
        assert_eq!(c.region(), None);
        assert_eq!(c.allow_http(), None);
        assert_eq!(c.poll_interval(), Some(Duration::from_secs(10)));
        assert!(c.conditional_writes());
        assert_eq!(c.to_string(), "s3://flags-bucket");
        assert_eq!(
            S3Config::from_url("s3://flags-bucket/")
                .unwrap()
                .to_string(),
            "s3://flags-bucket"
        );

        let c = S3Config::from_url(
            "s3://my.flags/a/b%20c/?endpoint=http%3A%2F%2F127.0.0.1%3A9000&region=eu-west-3\
             &allow_http=true&poll_interval=500ms&conditional_writes=false",
        )
        .unwrap();
        assert_eq!(c.prefix(), "a/b c");
        assert_eq!(c.endpoint(), Some("http://127.0.0.1:9000"));
        assert_eq!(c.region(), Some("eu-west-3"));
        assert_eq!(c.allow_http(), Some(true));
        assert_eq!(c.poll_interval(), Some(Duration::from_millis(500)));
        assert!(!c.conditional_writes());
        assert_eq!(
            c.to_string(),
            "s3://my.flags/a/b%20c?endpoint=http://127.0.0.1:9000&region=eu-west-3\
             &allow_http=true&poll_interval=500ms&conditional_writes=false"
        );
        let again = S3Config::from_url(&c.to_string()).unwrap();
        assert_eq!(again.to_string(), c.to_string());

        let c = c
            .with_prefix("/x/")
            .unwrap()
            .with_poll_interval(Some(Duration::ZERO))
            .with_credentials("AKIA", "hunter2");
        assert_eq!(c.prefix(), "x");
        assert_eq!(c.poll_interval(), None);
        assert!(!format!("{c} {c:?}").contains("hunter2"));
        for (interval, expected) in [
            ("2s", Some(Duration::from_secs(2))),
            ("1m", Some(Duration::from_secs(60))),
            ("off", None),
            ("0s", None),
        ] {
            let c = S3Config::from_url(&format!("s3://bkt?poll_interval={interval}")).unwrap();
            assert_eq!(c.poll_interval(), expected, "{interval}");
        }
    }

    #[test]
    fn bad_urls_name_the_problem() {
        for (url, why) in [
            ("s3://", "no bucket"),
            ("s3:///prefix", "no bucket"),
            ("s3://key:secret@bkt", "no credentials in the URL"),
            ("s3://bkt:9000", "no port"),
            ("s3://b", "is not a bucket name"),
            ("s3://b ucket", "is not a bucket name"),
            ("s3://bkt#x", "no fragment"),
            ("s3://bkt/a//b", "cannot be an object key prefix"),
            ("s3://bkt/a/../b", "cannot be an object key prefix"),
            ("s3://bkt/a%00b", "cannot be an object key prefix"),
            ("s3://bkt/%zz", "bad percent-escape"),
            ("s3://bkt?bogus=1", "unknown parameter \"bogus\""),
            ("s3://bkt?region=a&region=b", "given twice"),
            ("s3://bkt?region=", "region needs a value"),
            ("s3://bkt?endpoint=127.0.0.1:9000", "endpoint must be"),
            (
                "s3://bkt?allow_http=maybe",
                "allow_http must be true or false",
            ),
            (
                "s3://bkt?conditional_writes=x",
                "conditional_writes must be",
            ),
            ("s3://bkt?poll_interval=5", "poll_interval must be"),
            ("s3://bkt?poll_interval=2h", "poll_interval must be"),
            ("s3a://bkt", "expected s3://"),
            ("bkt", "expected s3://"),
        ] {
            let err = S3Config::from_url(url).unwrap_err();
            assert!(matches!(err, Error::InvalidStoreUrl { .. }), "{url}: {err}");
            let msg = err.to_string();
            assert!(msg.contains(why), "{url}: {msg}");
            assert!(!msg.contains("secret"), "{msg}");
        }
        let err = S3Config::new("bkt").with_prefix("a//b").unwrap_err();
        assert!(err.to_string().contains("cannot be an object key prefix"));
    }
}
