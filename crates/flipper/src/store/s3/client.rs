//! Building object_store's S3 client from an [`S3Config`], ETags as versions, and turning
//! object_store's errors into [`Error`]s that say what to do.

use std::fmt;
use std::time::Duration;

use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey, S3ConditionalPut};
use object_store::{BackoffConfig, ClientConfigKey, RetryConfig};

use super::S3Config;
use crate::error::{Error, Result};
use crate::store::Version;

/// How long one request may take (a listing page of 1,000 keys included).
const REQUEST_TIMEOUT: &str = "10s";
/// How long connecting may take.
const CONNECT_TIMEOUT: &str = "3s";

/// Retries of failed requests (5xx, throttling, connection errors): a few, quickly, so that a
/// store outage shows within seconds (live flags keep serving meanwhile).
fn retry_config() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            base: 2.0,
        },
        max_retries: 3,
        retry_timeout: Duration::from_secs(15),
    }
}

/// object_store's client for `config`: the defaults above, then the environment's `AWS_*`
/// settings (as `AmazonS3Builder::from_env` reads them), then the URL's and the code's. No I/O.
pub(super) fn build(config: &S3Config) -> Result<AmazonS3> {
    let mut builder = AmazonS3Builder::new()
        .with_config(
            AmazonS3ConfigKey::Client(ClientConfigKey::Timeout),
            REQUEST_TIMEOUT,
        )
        .with_config(
            AmazonS3ConfigKey::Client(ClientConfigKey::ConnectTimeout),
            CONNECT_TIMEOUT,
        );
    for (key, value) in std::env::vars_os() {
        if let (Some(key), Some(value)) = (key.to_str(), value.to_str())
            && key.starts_with("AWS_")
            && let Ok(key) = key.to_ascii_lowercase().parse::<AmazonS3ConfigKey>()
        {
            builder = builder.with_config(key, value);
        }
    }
    builder = builder
        .with_bucket_name(config.bucket())
        .with_retry(retry_config())
        // One `DELETE` per flag, as flipper-client's `delete_object`.
        .with_disable_bulk_delete(true)
        .with_conditional_put(if config.conditional_writes() {
            S3ConditionalPut::ETagMatch
        } else {
            S3ConditionalPut::Disabled
        });
    if let Some(endpoint) = config.endpoint() {
        builder = builder.with_endpoint(endpoint);
    }
    if let Some(region) = config.region() {
        builder = builder.with_region(region);
    }
    if let Some(yes) = config.allow_http() {
        builder = builder.with_allow_http(yes);
    }
    if let Some(credentials) = config.credentials() {
        builder = builder
            .with_access_key_id(&credentials.access_key_id)
            .with_secret_access_key(&credentials.secret_access_key);
    }
    builder.build().map_err(|e| Error::InvalidStoreUrl {
        url: config.to_string(),
        reason: format!("the S3 client cannot be set up: {e}"),
    })
}

/// The version an ETag names: the ETag without quotes or weak marker (services differ in
/// how they quote it between `PUT`, `GET` and listings).
pub(super) fn version_of(etag: &str) -> Version {
    Version::from_token(etag_token(etag))
}

fn etag_token(etag: &str) -> &str {
    let etag = etag.trim();
    etag.strip_prefix("W/").unwrap_or(etag).trim_matches('"')
}

/// The `If-Match` value for a version.
pub(super) fn if_match(version: &Version) -> String {
    format!("\"{version}\"")
}

/// Whether a failed conditional write means the service does not implement conditional
/// writes: S3's `501 Not Implemented` (code `NotImplemented`), as services without them
/// answer `If-Match` / `If-None-Match` on `PUT`.
pub(super) fn is_not_implemented(e: &object_store::Error) -> bool {
    if matches!(e, object_store::Error::NotImplemented { .. }) {
        return true;
    }
    let text = e.to_string();
    text.contains("status code: 501") || text.contains("<Code>NotImplemented</Code>")
}

/// Whether a failed request says the bucket does not exist (S3's `NoSuchBucket`, a 404 that
/// object_store reports as a missing object).
pub(super) fn is_missing_bucket(e: &object_store::Error) -> bool {
    e.to_string().contains("NoSuchBucket")
}

/// A backend error, with a hint when object_store's error has a known cause.
pub(super) fn backend(store: &str, bucket: &str, e: object_store::Error) -> Error {
    use object_store::Error as E;
    let text = e.to_string();
    let hint = if is_missing_bucket(&e) {
        Some(format!(
            "the bucket {bucket:?} does not exist: create it, or check the URL and the endpoint"
        ))
    } else if text.contains("169.254.169.254") || text.contains("169.254.170.2") {
        Some(
            "no credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set, and the \
             instance (or container) metadata service gave none"
                .to_owned(),
        )
    } else {
        match &e {
            E::PermissionDenied { .. } | E::Unauthenticated { .. } => Some(
                "the service refused the request: check the credentials (AWS_ACCESS_KEY_ID, \
                 AWS_SECRET_ACCESS_KEY, or the role) and their permissions on the bucket"
                    .to_owned(),
            ),
            E::InvalidPath { .. } => Some(
                "the bucket holds an object whose key object_store cannot represent (empty, \
                 '.' or '..' path segments, or control characters): move it away from the \
                 store's prefix"
                    .to_owned(),
            ),
            _ => None,
        }
    };
    let source: crate::error::BoxError = match hint {
        Some(hint) => Box::new(Explained { hint, source: e }),
        None => Box::new(e),
    };
    Error::Backend {
        store: store.to_owned(),
        source,
    }
}

/// object_store's error, with what it means for the store.
#[derive(Debug)]
struct Explained {
    hint: String,
    source: object_store::Error,
}

impl fmt::Display for Explained {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.hint, self.source)
    }
}

impl std::error::Error for Explained {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_are_versions_whatever_their_quoting() {
        let v = version_of("\"f97c5d29941bfb1b2fdab0874906ab82\"");
        assert_eq!(v, version_of("f97c5d29941bfb1b2fdab0874906ab82"));
        assert_eq!(v, version_of("W/\"f97c5d29941bfb1b2fdab0874906ab82\" "));
        assert_eq!(v.to_string(), "f97c5d29941bfb1b2fdab0874906ab82");
        assert_eq!(if_match(&v), "\"f97c5d29941bfb1b2fdab0874906ab82\"");
    }

    #[test]
    fn errors_get_hints() {
        let missing = object_store::Error::NotFound {
            path: "f".into(),
            source: "Server returned non-2xx status code: 404 Not Found: \
                     <Error><Code>NoSuchBucket</Code></Error>"
                .into(),
        };
        assert!(is_missing_bucket(&missing));
        let e = backend("s3://bkt", "bkt", missing).to_string();
        assert!(e.contains("the bucket \"bkt\" does not exist"), "{e}");
        let e = object_store::Error::Generic {
            store: "S3",
            source: "Server returned non-2xx status code: 501 Not Implemented: ...".into(),
        };
        assert!(is_not_implemented(&e));
        let e = object_store::Error::Generic {
            store: "S3",
            source: "Server returned non-2xx status code: 500 Internal Server Error".into(),
        };
        assert!(!is_not_implemented(&e));
        let denied = object_store::Error::PermissionDenied {
            path: "f".into(),
            source: "403".into(),
        };
        let e = backend("s3://bkt", "bkt", denied).to_string();
        assert!(e.contains("check the credentials"), "{e}");
        let imds = object_store::Error::Generic {
            store: "S3",
            source: "Error performing PUT http://169.254.169.254/latest/api/token".into(),
        };
        let e = backend("s3://bkt", "bkt", imds).to_string();
        assert!(e.starts_with("s3://bkt store error: no credentials"), "{e}");
    }
}
