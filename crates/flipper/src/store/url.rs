//! Opening a store from a URL: `memory:`, `json:PATH`, `redb:PATH`, `http://HOST:PORT`.

use std::fmt;
use std::sync::Arc;

use super::{MemoryStore, Store};
use crate::error::{Error, Result};

/// The URL schemes this build can open, for error messages.
fn schemes() -> String {
    let mut schemes = vec!["memory:"];
    if cfg!(feature = "json-file") {
        schemes.push("json:PATH");
    }
    if cfg!(feature = "redb") {
        schemes.push("redb:PATH");
    }
    if cfg!(feature = "http") {
        schemes.push("http://HOST:PORT");
    }
    if cfg!(feature = "http-tls") {
        schemes.push("https://HOST:PORT");
    }
    if cfg!(feature = "redis") {
        schemes.push("redis://HOST:PORT");
    }
    if cfg!(feature = "redis-tls") {
        schemes.push("rediss://HOST:PORT");
    }
    if cfg!(feature = "redis-cluster") {
        schemes.push("redis+cluster://HOST:PORT,...");
    }
    if cfg!(all(feature = "redis-cluster", feature = "redis-tls")) {
        schemes.push("rediss+cluster://HOST:PORT,...");
    }
    if cfg!(feature = "postgres") {
        schemes.push("postgres://USER@HOST/DB");
    }
    if cfg!(feature = "thrift") {
        schemes.push("thrift://HOST:PORT");
    }
    if cfg!(feature = "consul") {
        schemes.push("consul://HOST:PORT/BASE_KEY");
    }
    if cfg!(feature = "s3") {
        schemes.push("s3://BUCKET[/PREFIX]");
    }
    schemes.join(", ")
}

/// What [`open_with`] needs besides the URL: a token, and the wrappers to put around the
/// store.
///
/// ```
/// let options = flipper::store::OpenOptions::new()
///     .token("admin-token") // only http(s):// stores use it
///     .replica("memory:")
///     .cache(flipper::store::CacheOptions::new().size(1000));
/// let store = flipper::store::open_with("memory:", &options).unwrap();
/// assert_eq!(store.to_string(), "memory: (+1 replicas) (cached)");
/// ```
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct OpenOptions {
    /// The bearer token of an `http://` / `https://` store (a flipper server's admin token, to
    /// write; its SDK token is enough to read). Other stores ignore it; replicas get it too.
    pub token: Option<String>,
    /// Replicas: stores every write is copied to after the primary ([`super::ReplicatedStore`]).
    pub replicas: Vec<String>,
    /// How writes wait for the replicas.
    pub replication: super::Replication,
    /// A cache in front of the store (and its replicas), when set ([`super::CachedStore`]).
    #[cfg(feature = "cache")]
    pub cache: Option<super::CacheOptions>,
}

impl OpenOptions {
    /// No options.
    pub fn new() -> Self {
        Self::default()
    }

    /// With this bearer token.
    #[must_use]
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// With one more replica, by URL.
    #[must_use]
    pub fn replica(mut self, url: impl Into<String>) -> Self {
        self.replicas.push(url.into());
        self
    }

    /// With this replication mode.
    #[must_use]
    pub fn replication(mut self, mode: super::Replication) -> Self {
        self.replication = mode;
        self
    }

    /// With a cache in front.
    #[cfg(feature = "cache")]
    #[must_use]
    pub fn cache(mut self, cache: super::CacheOptions) -> Self {
        self.cache = Some(cache);
        self
    }
}

impl fmt::Debug for OpenOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("OpenOptions");
        d.field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("replicas", &self.replicas)
            .field("replication", &self.replication);
        #[cfg(feature = "cache")]
        d.field("cache", &self.cache);
        d.finish()
    }
}

/// Opens the store a URL names, without options ([`open_with`]).
///
/// # Errors
/// See [`open_with`].
pub fn open(url: &str) -> Result<Arc<dyn Store>> {
    open_with(url, &OpenOptions::default())
}

/// Opens the store a URL names, with the replicas and cache `options` ask for (the cache
/// outermost: reads hit the cache, then the primary; writes go to the primary, then the
/// replicas).
///
/// | URL | store |
/// |---|---|
/// | `memory:` | a new, empty [`MemoryStore`] |
/// | `json:PATH` | a [`super::JsonFileStore`] on `PATH` (relative to the working directory) |
/// | `redb:PATH` | a [`super::RedbStore`] on the database file `PATH`, created if missing |
/// | `http://HOST:PORT[/PATH]`, `https://...` | an `HttpStore`: the flipper server there, with [`OpenOptions::token`] |
/// | `redis://[:PASS@]HOST[:PORT][/DB][?base_key=features&batch_size=100&poll_interval=5s]` | a `RedisStore` (feature `redis`) |
/// | `rediss://...[?ca_file=PATH&cert_file=PATH&key_file=PATH][#insecure]` | a `RedisStore` over TLS (feature `redis-tls`): the system's roots or `ca_file`, an optional client certificate |
/// | `redis+cluster://HOST:PORT,HOST:PORT[?...]` | a `RedisStore` on a Redis Cluster (feature `redis-cluster`) |
/// | `rediss+cluster://HOST:PORT,HOST:PORT[?...][#insecure]` | a `RedisStore` on a Redis Cluster over TLS (features `redis-cluster` and `redis-tls`) |
/// | `postgres://USER[:PASS]@HOST[:PORT]/DB[?table=feature_flags&name_column=name&item_column=item&run_migrations=true&pool_size=N]` | a `PostgresStore` (feature `postgres`) |
/// | `thrift://HOST:PORT[?transport=buffered&timeout=10s&connect_timeout=2s&pool_size=8&poll_interval=5s]` | a `ThriftStore` (feature `thrift`): flipper-client's Thrift service, such as `flipper serve --thrift-listen` |
/// | `consul://HOST[:PORT][/BASE_KEY][?token=...&wait=5m&consistency=default&dc=DC]` | a `ConsulStore` (feature `consul`): the agent's HTTP API, the ACL token from `token=` or `CONSUL_HTTP_TOKEN` |
/// | `s3://BUCKET[/PREFIX][?endpoint=URL&region=R&allow_http=true&poll_interval=10s&conditional_writes=true]` | an `S3Store` (feature `s3`): endpoint, region and credentials from `AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_ALLOW_HTTP` |
///
/// ```
/// let store = flipper::store::open("memory:").unwrap();
/// assert_eq!(store.to_string(), "memory:");
/// assert!(flipper::store::open("nope://x").is_err());
/// ```
///
/// `PATH` may follow `//` (`json:///tmp/flags.json`). The `json:`, `redb:`, `http:` and
/// `https:` schemes exist when their cargo features (`json-file`, `redb`, `http`, `http-tls`)
/// are on. A token must not be part of an `http://` URL: give it in `options`.
///
/// # Errors
/// [`Error::InvalidStoreUrl`] for an unknown scheme or a malformed URL; for `redb:`, the errors
/// of [`super::RedbStore::open`] (the database is opened at once, and stays locked while the
/// store lives). Opening an `http://` store sends nothing: a server that cannot be reached is
/// reported by the first operation.
pub fn open_with(url: &str, options: &OpenOptions) -> Result<Arc<dyn Store>> {
    let mut store = open_one(url, options)?;
    if !options.replicas.is_empty() {
        let replicas = options
            .replicas
            .iter()
            .map(|replica| open_one(replica, options))
            .collect::<Result<Vec<_>>>()?;
        store = Arc::new(
            super::ReplicatedStore::new(store, replicas).with_replication(options.replication),
        );
    }
    #[cfg(feature = "cache")]
    if let Some(cache) = &options.cache {
        store = Arc::new(super::CachedStore::with_options(store, cache.clone()));
    }
    Ok(store)
}

/// One store, without wrappers.
fn open_one(
    url: &str,
    #[cfg_attr(not(feature = "http"), allow(unused_variables))] options: &OpenOptions,
) -> Result<Arc<dyn Store>> {
    let invalid = |reason: String| Error::InvalidStoreUrl {
        url: url.to_owned(),
        reason,
    };
    let Some((scheme, rest)) = url.split_once(':') else {
        return Err(invalid(format!("no scheme; expected one of {}", schemes())));
    };
    match scheme {
        "memory" => {
            if !(rest.is_empty() || rest == "//") {
                return Err(invalid("memory: takes no path".into()));
            }
            Ok(Arc::new(MemoryStore::new()))
        }
        #[cfg(feature = "json-file")]
        "json" => {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() {
                return Err(invalid(
                    "json: needs a file path, as in json:flags.json".into(),
                ));
            }
            Ok(Arc::new(super::JsonFileStore::new(path)))
        }
        #[cfg(feature = "redb")]
        "redb" => {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() {
                return Err(invalid(
                    "redb: needs a database file path, as in redb:flipper.redb".into(),
                ));
            }
            Ok(Arc::new(super::RedbStore::open(path)?))
        }
        #[cfg(feature = "http")]
        "http" | "https" => {
            let store = super::HttpStore::new(url)?;
            Ok(Arc::new(match &options.token {
                Some(token) => store.with_token(token.as_str()),
                None => store,
            }))
        }
        #[cfg(feature = "redis")]
        "redis" | "rediss" | "redis+cluster" | "rediss+cluster" => {
            Ok(Arc::new(super::RedisStore::from_url(url)?))
        }
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" => Ok(Arc::new(super::PostgresStore::new(
            super::PostgresConfig::from_url(url)?,
        )?)),
        #[cfg(feature = "thrift")]
        "thrift" => Ok(Arc::new(super::ThriftStore::from_url(url)?)),
        #[cfg(feature = "consul")]
        "consul" => Ok(Arc::new(super::ConsulStore::from_url(url)?)),
        #[cfg(feature = "s3")]
        "s3" => Ok(Arc::new(super::S3Store::from_url(url)?)),
        other => Err(invalid(format!(
            "unknown scheme {other:?}; expected one of {}",
            schemes()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_open_or_explain() {
        assert_eq!(open("memory:").unwrap().to_string(), "memory:");
        assert_eq!(open("json:a/b.json").unwrap().to_string(), "json:a/b.json");
        assert_eq!(
            open("json:///tmp/x.json").unwrap().to_string(),
            "json:/tmp/x.json"
        );
        for (bad, why) in [
            ("redis", "no scheme"),
            ("json:", "needs a file path"),
            ("ftp://x", "unknown scheme \"ftp\""),
            ("memory:x", "takes no path"),
        ] {
            let err = open(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[cfg(feature = "http")]
    #[test]
    fn http_urls_name_a_server_and_keep_the_token_out_of_sight() {
        let options = OpenOptions::new().token("hunter2");
        let store = open_with("http://127.0.0.1:1/", &options).unwrap();
        assert_eq!(store.to_string(), "http://127.0.0.1:1");
        assert!(!format!("{store:?} {options:?}").contains("hunter2"));
        let err = open("http://user:hunter2@h:1").unwrap_err().to_string();
        assert!(
            err.contains("no credentials") && !err.contains("hunter2"),
            "{err}"
        );
        if !cfg!(feature = "http-tls") {
            let err = open("https://h").unwrap_err().to_string();
            assert!(err.contains("http-tls"), "{err}");
        }
    }

    #[cfg(feature = "redb")]
    #[test]
    fn redb_urls_open_the_database_file() {
        for (bad, why) in [
            ("redb:", "needs a database file path"),
            ("redb://", "needs a database file path"),
            ("ftp://x", ", redb:PATH"),
        ] {
            let err = open(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flipper.redb");
        let url = format!("redb:{}", path.display());
        let store = open(&url).unwrap();
        assert_eq!(store.to_string(), url);
        assert!(path.exists(), "opening creates the file");
        // The file stays locked while the store lives; `//` before the path is accepted.
        let err = open(&format!("redb://{}", path.display())).unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err}");
        drop(store);
        assert_eq!(
            open(&format!("redb://{}", path.display()))
                .unwrap()
                .to_string(),
            url
        );
        let err = open(&format!(
            "redb:{}",
            dir.path().join("no/such/dir.redb").display()
        ));
        assert!(matches!(err, Err(Error::Io { .. })));
    }
}
