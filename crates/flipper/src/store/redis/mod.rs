//! [`RedisStore`]: flipper-client's Redis store (`redis://`, `redis+cluster://`, and over TLS
//! `rediss://`, `rediss+cluster://`): the same keys and bytes, with atomic compare-and-swap
//! writes and a change channel.

mod config;
mod list;
mod script;
#[cfg(feature = "redis-tls")]
mod tls;
mod watch;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use flipper_core::{Item, ItemError};
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, Pipeline, RedisError, RedisFuture, Value};

pub use self::config::RedisConfig;
use self::config::Target;
use self::script::Scripts;
use super::{Capabilities, ChangeStream, ListEntry, PutMode, Store, Version, Versioned};
use crate::error::{BoxError, Error, Result};

/// How long a write waits for the watch streams opened before it to go live.
const WATCH_CONNECT_WAIT: Duration = Duration::from_secs(5);

/// Flags in Redis, as flipper-client's `RedisFeatureFlagStore` keeps them: flag `NAME` is the
/// string key `BASE_KEY/NAME` (`features/NAME` by default) holding exactly
/// [`Item::serialize`]'s bytes, with no expiry. Python and Rust processes can share it.
///
/// ```no_run
/// # async fn run() -> flipper::Result<()> {
/// use flipper::FeatureFlagClient;
/// use flipper::store::RedisStore;
/// let store = RedisStore::from_url("redis://127.0.0.1:6379?base_key=features")?;
/// let client = FeatureFlagClient::new(store);
/// client.create("beta", true, None).await?;
/// # Ok(()) }
/// ```
///
/// Creating a store does no I/O; it connects on first use (and again on the next use if that
/// fails), through the redis crate's auto-reconnecting connection (standalone) or cluster
/// connection. Clones share the connection. URLs and options: [`RedisConfig`].
///
/// | `Store` | commands (round trips) |
/// |---|---|
/// | `get` | `GET` (1); a missing key or an empty string is no flag, as in flipper-client |
/// | `put` | one Lua script (1): [`PutMode::Create`] and [`PutMode::Update`] are checked, the value written with `SET` and announced on the change channel atomically |
/// | `put_many` | standalone: one script writing every flag (all or nothing); cluster: one script per flag, in order |
/// | `delete` | one script (1): `DEL` and the announcement |
/// | `list` | `SCAN MATCH BASE_KEY/*` (on every master of a cluster), sorted by name, then `MGET` in batches of `batch_size` |
/// | `watch` | the change channel, plus keyspace notifications or polling for other processes' writes |
///
/// So [`StoreExt::set`](super::StoreExt::set) and [`StoreExt::update`](super::StoreExt::update)
/// take two round trips (a `GET` and a script) plus two per lost race.
///
/// **Versions** are the SHA-1 of the stored bytes, so a write by flipper-client (Python), which
/// keeps no counter, changes the version too, and a compare-and-swap against it fails as it
/// should.
///
/// **Listing** skips a key that disappears between `SCAN` and `MGET`; a key under the prefix that
/// does not hold a readable flag (foreign JSON, another Redis type) is reported as a
/// [`CorruptEntry`](super::CorruptEntry) without failing the listing. Glob characters in the base
/// key are escaped, so `base_key=a*` lists only `a*/...` keys. On a cluster, a slot migration
/// during a listing may hide keys from it.
///
/// **Watch.** Every write through a `RedisStore` publishes, in the same script (so atomically
/// and in the order the server applied the writes), one message on the channel
/// `flipper:changes:BASE_KEY`:
///
/// | message | meaning |
/// |---|---|
/// | `P` followed by the stored bytes | the flag was written: these are its new bytes (what `GET BASE_KEY/NAME` returns), its name their `feature_name`, its version their SHA-1 |
/// | `D` followed by the name (UTF-8) | the flag was deleted |
///
/// so watchers get flipper's writes in order without a `GET`. flipper-client (Python) publishes
/// nothing; its writes are heard through keyspace notifications when the server sends them
/// (`notify-keyspace-events` with `K` and `A`, or `K`, `g` and `$`; on a cluster, every master
/// must), and otherwise by polling every `poll_interval` (default 5 s: a `SCAN` and `MGET` of
/// every flag); a quick burst of such writes to one flag may be reported as its last state only.
/// [`Capabilities::watch_external`] is `false` when polling is off, even though keyspace
/// notifications may still report such writes.
///
/// [`Store::watch`] runs in a task on the current Tokio runtime (outside one it returns
/// `None`). The stream starts with [`Change::Resync`](super::Change::Resync) once subscribed,
/// and yields `Resync` again after every reconnection (a dropped connection, or one that stops
/// answering `PING`; backoff 100 ms doubling to 10 s), since changes may have been missed.
/// Writes through this store (and its clones) wait, at most 5 s, until the watch streams
/// opened before them are subscribed, so a watcher sees every such write. A write that leaves
/// a flag's bytes as they were is not reported. On a cluster, masters added after a watch
/// subscribed are heard only after its next reconnection (polling sees them at once), and a
/// watch also reconnects when a marker it published through a master (on a channel of its
/// own: `flipper:barrier:TOKEN`, to order a read after the messages the read saw) is not back
/// within 5 s.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    config: RedisConfig,
    /// The store's name: the URL without its password.
    name: String,
    /// `BASE_KEY/`.
    prefix: String,
    /// The change channel.
    channel: String,
    scripts: Scripts,
    conn: tokio::sync::OnceCell<Conn>,
    /// Watch streams still connecting (writes wait for them).
    watchers: crate::store::gate::WatchGate,
}

impl RedisStore {
    /// A store for this configuration. Does no I/O.
    pub fn new(config: RedisConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                name: config.to_string(),
                prefix: format!("{}/", config.base_key()),
                channel: script::channel(config.base_key()),
                scripts: Scripts::new(),
                conn: tokio::sync::OnceCell::new(),
                watchers: crate::store::gate::WatchGate::new(WATCH_CONNECT_WAIT),
                config,
            }),
        }
    }

    /// A store for a URL ([`RedisConfig::from_url`]). Does no I/O.
    ///
    /// # Errors
    /// [`Error::InvalidStoreUrl`], as [`RedisConfig::from_url`].
    pub fn from_url(url: &str) -> Result<Self> {
        RedisConfig::from_url(url).map(Self::new)
    }

    /// The configuration.
    pub fn config(&self) -> &RedisConfig {
        &self.inner.config
    }

    /// The key of a flag: `BASE_KEY/NAME`.
    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.inner.prefix)
    }

    /// The connection, opened on first use.
    async fn conn(&self) -> Result<Conn> {
        self.inner
            .conn
            .get_or_try_init(|| self.connect())
            .await
            .cloned()
    }

    async fn connect(&self) -> Result<Conn> {
        let mut conn = match &self.inner.config.target {
            Target::Standalone(client) => {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(config::CONNECT_TIMEOUT))
                    .set_response_timeout(Some(config::RESPONSE_TIMEOUT))
                    .set_number_of_retries(3)
                    .set_max_delay(Duration::from_secs(1));
                ConnectionManager::new_with_config((**client).clone(), config)
                    .await
                    .map(Conn::Single)
            }
            #[cfg(feature = "redis-cluster")]
            Target::Cluster { client, .. } => {
                client.get_async_connection().await.map(Conn::Cluster)
            }
        }
        .map_err(|e| {
            let error = self.backend(e);
            // The cause, explained when TLS verification failed.
            let cause = match &error {
                Error::Backend { source, .. } => source.to_string(),
                other => other.to_string(),
            };
            tracing::warn!(
                store = %self,
                error = %cause,
                "cannot connect to Redis; check the URL and that the server is up (retried on \
                 the next operation)"
            );
            error
        })?;
        // Loaded now, the scripts cost no NOSCRIPT round trip on the first writes.
        for script in self.inner.scripts.all() {
            script
                .load_async(&mut conn)
                .await
                .map_err(|e| self.backend(e))?;
        }
        Ok(conn)
    }

    fn backend(&self, e: impl Into<BoxError>) -> Error {
        let source = e.into();
        // A failed certificate check or handshake says so, and what to do about it.
        #[cfg(feature = "redis-tls")]
        let source = tls::explain(source);
        Error::Backend {
            store: self.inner.name.clone(),
            source,
        }
    }

    /// Waits (a bounded time) until every watch stream opened so far is live.
    async fn settle_watchers(&self) {
        self.inner.watchers.settle().await;
    }

    /// The key of a flag whose name is given as bytes.
    fn key_bytes(&self, name: &[u8]) -> Vec<u8> {
        [self.inner.prefix.as_bytes(), name].concat()
    }

    /// Reads stored bytes as a flag.
    fn decode(&self, name: &str, bytes: &[u8]) -> Result<Versioned> {
        decode_item(bytes).map_err(|source| Error::Corrupt {
            store: self.inner.name.clone(),
            name: name.to_owned(),
            source,
        })
    }
}

/// Stored bytes as a flag, its version their SHA-1.
fn decode_item(bytes: &[u8]) -> Result<Versioned, ItemError> {
    Ok(Versioned {
        item: Item::deserialize(bytes)?,
        version: Version::of_bytes(bytes),
    })
}

/// Why a key that is not a string is no flag.
fn not_a_string(kind: &str) -> ItemError {
    ItemError::Format {
        path: String::new(),
        message: format!("the Redis key holds a {kind}, not a string (WRONGTYPE)"),
    }
}

/// Whether a reply is Redis's `WRONGTYPE` error.
fn is_wrong_type(e: &RedisError) -> bool {
    e.code() == Some("WRONGTYPE")
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.inner.name)
    }
}

#[async_trait]
impl Store for RedisStore {
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
            .with_conditional_put(true)
            .with_watch(true)
            .with_watch_external(self.inner.config.poll_interval().is_some())
            .with_atomic_batch(!self.inner.config.is_cluster())
    }

    async fn get(&self, name: &str) -> Result<Option<Versioned>> {
        let mut conn = self.conn().await?;
        let reply: redis::RedisResult<Option<Vec<u8>>> = redis::cmd("GET")
            .arg(self.key(name))
            .query_async(&mut conn)
            .await;
        match reply {
            Ok(None) => Ok(None),
            Ok(Some(bytes)) if bytes.is_empty() => Ok(None),
            Ok(Some(bytes)) => self.decode(name, &bytes).map(Some),
            Err(e) if is_wrong_type(&e) => Err(Error::Corrupt {
                store: self.inner.name.clone(),
                name: name.to_owned(),
                source: not_a_string("value of another type"),
            }),
            Err(e) => Err(self.backend(e)),
        }
    }

    async fn put(&self, item: &Item, mode: PutMode) -> Result<Version> {
        let name = &item.feature_name;
        let bytes = item.serialize();
        let (mode_arg, expected) = match &mode {
            PutMode::Create => ("create", String::new()),
            PutMode::Update(version) => ("update", version.to_string()),
            PutMode::Overwrite => ("overwrite", String::new()),
        };
        let mut conn = self.conn().await?;
        self.settle_watchers().await;
        let written: i64 = self
            .inner
            .scripts
            .put
            .key(self.key(name))
            .arg(mode_arg)
            .arg(expected)
            .arg(&bytes)
            .arg(&self.inner.channel)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.backend(e))?;
        match (written, mode) {
            (1, _) => Ok(Version::of_bytes(&bytes)),
            (_, PutMode::Create) => Err(Error::AlreadyExists { name: name.clone() }),
            _ => Err(Error::Conflict { name: name.clone() }),
        }
    }

    async fn put_many(&self, items: &[Item]) -> Result<Vec<Version>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        if self.inner.config.is_cluster() {
            // Keys in different slots cannot share a script: one per flag, in order.
            let mut versions = Vec::with_capacity(items.len());
            for item in items {
                versions.push(self.put(item, PutMode::Overwrite).await?);
            }
            return Ok(versions);
        }
        let values: Vec<Vec<u8>> = items.iter().map(Item::serialize).collect();
        let mut conn = self.conn().await?;
        self.settle_watchers().await;
        let mut call = self.inner.scripts.put_many.prepare_invoke();
        call.arg(&self.inner.channel);
        for (item, value) in items.iter().zip(&values) {
            call.key(self.key(&item.feature_name)).arg(value);
        }
        let _: i64 = call
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.backend(e))?;
        Ok(values.iter().map(|v| Version::of_bytes(v)).collect())
    }

    async fn delete(&self, name: &str) -> Result<bool> {
        let mut conn = self.conn().await?;
        self.settle_watchers().await;
        let deleted: i64 = self
            .inner
            .scripts
            .delete
            .key(self.key(name))
            .arg(&self.inner.channel)
            .arg(name)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.backend(e))?;
        Ok(deleted > 0)
    }

    async fn list(&self, limit: Option<usize>, offset: usize) -> Result<Vec<ListEntry>> {
        list::list(self, limit, offset).await
    }

    fn watch(&self) -> Option<ChangeStream> {
        watch::start(self)
    }
}

/// A connection to the server or the cluster; cheap to clone (multiplexed).
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    #[cfg(feature = "redis-cluster")]
    Cluster(redis::cluster_async::ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            #[cfg(feature = "redis-cluster")]
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(pipeline, offset, count),
            #[cfg(feature = "redis-cluster")]
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            #[cfg(feature = "redis-cluster")]
            Self::Cluster(c) => c.get_db(),
        }
    }
}
