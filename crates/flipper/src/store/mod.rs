//! Where flags live: the [`Store`] trait, its stores and wrappers.
//!
//! # Contract
//!
//! [`Store`] is the contract with *implementors*: a handful of primitive operations on whole
//! flags, each carrying a [`Version`] so that writes can be compare-and-swap. [`StoreExt`] is the
//! contract with *users*: flipper-client's store API (`create`, `set`, `set_meta`, ...) built on
//! those primitives as compare-and-swap loops, so concurrent writers never lose each other's
//! updates. Every store and wrapper runs the shared conformance suite
//! (the `conformance` module, enabled by the `conformance` feature and in this crate's tests).
//!
//! Stores persist exactly [`Item::serialize`]'s bytes (flipper-client's format), so Python and
//! Rust processes can share one store.
//!
//! | store | URL | versions | watch |
//! |---|---|---|---|
//! | [`MemoryStore`] | `memory:` | counter | yes |
//! | [`JsonFileStore`] | `json:PATH` | content digest | this process's writes |
//! | [`RedbStore`] | `redb:PATH` | counter, in the file | this process's writes (the file is locked to one process) |
//! | `HttpStore` | `http://HOST:PORT` | the server's `ETag` | every write the server sees (its change stream) |
//! | `RedisStore` | `redis://HOST:PORT`, `redis+cluster://HOST:PORT,...`, and `rediss://` for TLS | content digest | this store's writes in order (a change channel), other processes' through keyspace notifications or polling |
//! | `PostgresStore` | `postgres://USER@HOST/DB` | SHA-256 of the stored bytes | every write to the table, any process (a trigger's `NOTIFY`) |
//! | `ThriftStore` | `thrift://HOST:PORT` | SHA-1 of the flag as read back (the service keeps none; no compare-and-swap) | this store's writes in order, other processes' by polling `List` |
//! | `ConsulStore` | `consul://HOST:PORT/BASE_KEY` | Consul's `ModifyIndex` | this store's writes in order, any process's through blocking queries on the prefix |
//! | `S3Store` | `s3://BUCKET[/PREFIX]` | the object's `ETag` | this store's writes as they complete, other processes' by polling (listing compared by ETag) |
//!
//! Wrappers take other stores and are stores themselves:
//!
//! | wrapper | what it does |
//! |---|---|
//! | `CachedStore` | an LRU cache (optional TTL) over any store, kept fresh by the store's watch (cargo feature `cache`, on by default) |
//! | [`ReplicatedStore`] | writes to a primary then to replicas in parallel (synchronous or not, one timeout), reads from the primary; replica failures reported |
//!
//! [`JsonFileStore`] and [`RedbStore`] are behind the default cargo features `json-file` and
//! `redb`; `HttpStore` behind the feature `http` (and `https://` behind `http-tls`);
//! `RedisStore` behind `redis` (`redis+cluster://` behind `redis-cluster`, `rediss://` with TLS
//! behind `redis-tls`); `S3Store` behind `s3`; `ConsulStore` behind `consul`; `ThriftStore`
//! and `ThriftServer` (flipper-client's Thrift service, client and server) behind `thrift`.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use flipper_core::{Item, ItemError};
use futures_core::Stream;

use crate::error::Result;

#[cfg(feature = "cache")]
mod cached;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
#[cfg(feature = "consul")]
mod consul;
#[cfg(any(
    feature = "http",
    feature = "redis",
    feature = "postgres",
    feature = "consul",
    feature = "thrift"
))]
mod gate;
#[cfg(feature = "http")]
mod http;
#[cfg(feature = "json-file")]
mod json_file;
mod memory;
mod ops;
#[cfg(any(feature = "redis", feature = "s3", feature = "consul"))]
mod params;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "redb")]
mod redb;
#[cfg(feature = "redis")]
mod redis;
mod replicated;
#[cfg(feature = "s3")]
mod s3;
#[cfg(feature = "thrift")]
mod thrift;
mod url;

#[cfg(feature = "consul")]
pub use self::consul::{Consistency, ConsulConfig, ConsulStore};
#[cfg(feature = "redis")]
pub use self::redis::{RedisConfig, RedisStore};
#[cfg(feature = "s3")]
pub use self::s3::{S3Config, S3Store};
#[cfg(feature = "thrift")]
pub use self::thrift::{
    ThriftConfig, ThriftServer, ThriftServerOptions, ThriftStore, ThriftTransport,
};
#[cfg(feature = "cache")]
pub use cached::{
    CacheOptions, CacheStats, CachedStore, Clock, DEFAULT_CACHE_SIZE, MonotonicClock,
};
#[cfg(feature = "http")]
pub use http::HttpStore;
#[cfg(feature = "json-file")]
pub use json_file::JsonFileStore;
pub use memory::MemoryStore;
pub use ops::{MAX_CAS_ATTEMPTS, StoreExt};
#[cfg(feature = "postgres")]
pub use postgres::{PostgresConfig, PostgresStore};
#[cfg(feature = "redb")]
pub use redb::RedbStore;
pub use replicated::{
    DEFAULT_REPLICATION_TIMEOUT, ReplicaFailure, ReplicaOperation, ReplicatedStore,
    ReplicatedWrite, Replication,
};
pub use url::{OpenOptions, open, open_with};

/// An opaque version of a stored flag, issued by its store. Compare for equality only.
///
/// A memory store counts writes, and so does the redb store (in the database); a file store
/// digests the stored bytes; a Redis store would digest the bytes too (so Python writers, which
/// keep no counter, still change it).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Version(VersionRepr);

#[derive(Clone, PartialEq, Eq, Hash)]
enum VersionRepr {
    Seq(u64),
    Digest([u8; 20]),
    Token(Arc<str>),
}

impl Version {
    /// A version from a counter.
    pub fn from_seq(seq: u64) -> Self {
        Self(VersionRepr::Seq(seq))
    }

    /// A version naming the content: the SHA-1 of the stored bytes.
    pub fn of_bytes(bytes: &[u8]) -> Self {
        use sha1::Digest;
        Self(VersionRepr::Digest(sha1::Sha1::digest(bytes).into()))
    }

    /// A version from a backend's own token (an ETag, a modify index).
    pub fn from_token(token: impl Into<Arc<str>>) -> Self {
        Self(VersionRepr::Token(token.into()))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            VersionRepr::Seq(n) => write!(f, "{n}"),
            VersionRepr::Digest(d) => d.iter().try_for_each(|b| write!(f, "{b:02x}")),
            VersionRepr::Token(t) => f.write_str(t),
        }
    }
}

impl fmt::Debug for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Version({self})")
    }
}

/// A flag as read from a store, with its version.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned {
    /// The flag.
    pub item: Item,
    /// Its version, for a later compare-and-swap write.
    pub version: Version,
}

/// How [`Store::put`] treats an existing flag.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum PutMode {
    /// Write whatever is there (flipper-client's only mode).
    #[default]
    Overwrite,
    /// Write only if the flag does not exist, else [`crate::Error::AlreadyExists`].
    Create,
    /// Write only if the flag is still at this version, else [`crate::Error::Conflict`]
    /// (also when it no longer exists).
    Update(Version),
}

/// What a store can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Capabilities {
    /// [`PutMode::Create`] and [`PutMode::Update`] are atomic.
    pub conditional_put: bool,
    /// [`Store::watch`] reports changes.
    pub watch: bool,
    /// Changes made by *other processes* reach [`Store::watch`] too.
    pub watch_external: bool,
    /// [`Store::put_many`] writes all or nothing.
    pub atomic_batch: bool,
}

impl Capabilities {
    /// With atomic conditional writes.
    pub fn with_conditional_put(mut self, yes: bool) -> Self {
        self.conditional_put = yes;
        self
    }
    /// With change notification.
    pub fn with_watch(mut self, yes: bool) -> Self {
        self.watch = yes;
        self
    }
    /// With change notification that includes other processes' writes.
    pub fn with_watch_external(mut self, yes: bool) -> Self {
        self.watch_external = yes;
        self
    }
    /// With all-or-nothing batch writes.
    pub fn with_atomic_batch(mut self, yes: bool) -> Self {
        self.atomic_batch = yes;
        self
    }
}

/// One change to a store.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
#[allow(
    clippy::large_enum_variant,
    reason = "almost every change is a Put; boxing its item would add an allocation per write"
)]
pub enum Change {
    /// A flag was created or replaced.
    Put {
        /// The flag as stored.
        item: Item,
        /// Its new version.
        version: Version,
    },
    /// A flag was deleted.
    Delete {
        /// The flag.
        name: String,
    },
    /// Changes were missed (the watcher fell behind): reload everything.
    Resync,
}

/// A stream of changes, in the order the store applied them.
pub type ChangeStream = Pin<Box<dyn Stream<Item = Change> + Send>>;

/// A listed entry that could not be read. Listings report it instead of failing whole.
#[derive(Debug, Clone, PartialEq)]
pub struct CorruptEntry {
    /// The flag name or storage key.
    pub key: String,
    /// Why it cannot be read.
    pub error: ItemError,
}

/// One entry of a listing.
pub type ListEntry = std::result::Result<Versioned, CorruptEntry>;

/// A number a store (or a wrapper) keeps count of, for metrics: cache hits, replica failures.
/// A flag server exports each as the Prometheus counter `flipper_store_NAME_total`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreCounter {
    /// The counter's name, `snake_case`: `cache_hits`, `replica_failures`, ...
    pub name: &'static str,
    /// What it counts, in one sentence.
    pub help: &'static str,
    /// Its labels (`replica` = the replica's URL); counters of one name share label names.
    pub labels: Vec<(&'static str, String)>,
    /// The count since the store was opened.
    pub value: u64,
}

impl StoreCounter {
    /// A counter without labels.
    pub fn new(name: &'static str, help: &'static str, value: u64) -> Self {
        Self {
            name,
            help,
            labels: Vec::new(),
            value,
        }
    }

    /// With one more label.
    #[must_use]
    pub fn label(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.labels.push((name, value.into()));
        self
    }
}

/// The primitive operations a store implements. Users call [`StoreExt`]'s methods.
///
/// Implementations must pass the `conformance` suite for every capability they declare.
#[async_trait]
pub trait Store: fmt::Debug + fmt::Display + Send + Sync + 'static {
    /// What this store can do.
    fn capabilities(&self) -> Capabilities;

    /// The flag and its version, `None` if absent.
    ///
    /// # Errors
    /// [`crate::Error::Corrupt`] when the stored value is not a readable flag; backend errors.
    async fn get(&self, name: &str) -> Result<Option<Versioned>>;

    /// Writes `item` under `item.feature_name` according to `mode`, returning the new version.
    ///
    /// # Errors
    /// [`crate::Error::AlreadyExists`] / [`crate::Error::Conflict`] when `mode`'s precondition
    /// fails; [`crate::Error::Unsupported`] for a conditional mode on a store without
    /// [`Capabilities::conditional_put`]; backend errors.
    async fn put(&self, item: &Item, mode: PutMode) -> Result<Version>;

    /// Writes every item with [`PutMode::Overwrite`] (replacing flags of the same names) and
    /// returns their new versions, in order. With [`Capabilities::atomic_batch`] it writes all
    /// or nothing; otherwise it writes in order, and a failure leaves the earlier items written.
    /// Imports use it: one transaction instead of one per flag.
    ///
    /// # Errors
    /// Backend errors.
    async fn put_many(&self, items: &[Item]) -> Result<Vec<Version>>;

    /// Deletes a flag; deleting a missing flag is not an error. Returns whether it existed.
    ///
    /// # Errors
    /// Backend errors.
    async fn delete(&self, name: &str) -> Result<bool>;

    /// Skips `offset` flags, then returns at most `limit` (all when `None`), in the store's
    /// order. Unreadable entries are reported in place, not fatal.
    ///
    /// # Errors
    /// Backend errors.
    async fn list(&self, limit: Option<usize>, offset: usize) -> Result<Vec<ListEntry>>;

    /// What this store counts for metrics, and what the stores it wraps count: a wrapper
    /// appends its inner stores' counters to its own. Stores that count nothing keep the
    /// default (none).
    fn counters(&self) -> Vec<StoreCounter> {
        Vec::new()
    }

    /// Changes from now on, when [`Capabilities::watch`]; `None` otherwise.
    ///
    /// A store whose subscription is set up in the background (Redis, PostgreSQL, a flipper
    /// server) makes this store's own writes wait until its open streams are live, so a write
    /// made after `watch()` returns is always reported; such a stream may open with
    /// [`Change::Resync`] when it goes live, and yields `Resync` again whenever it had to
    /// reconnect. A consumer reloads everything on `Resync` and never misses a change.
    fn watch(&self) -> Option<ChangeStream>;
}

macro_rules! forward_store {
    ($($ty:ty),*) => {$(
        #[async_trait]
        impl<S: Store + ?Sized> Store for $ty {
            fn capabilities(&self) -> Capabilities {
                (**self).capabilities()
            }
            async fn get(&self, name: &str) -> Result<Option<Versioned>> {
                (**self).get(name).await
            }
            async fn put(&self, item: &Item, mode: PutMode) -> Result<Version> {
                (**self).put(item, mode).await
            }
            async fn put_many(&self, items: &[Item]) -> Result<Vec<Version>> {
                (**self).put_many(items).await
            }
            async fn delete(&self, name: &str) -> Result<bool> {
                (**self).delete(name).await
            }
            async fn list(&self, limit: Option<usize>, offset: usize) -> Result<Vec<ListEntry>> {
                (**self).list(limit, offset).await
            }
            fn counters(&self) -> Vec<StoreCounter> {
                (**self).counters()
            }
            fn watch(&self) -> Option<ChangeStream> {
                (**self).watch()
            }
        }
    )*};
}
forward_store!(Arc<S>, Box<S>);

/// Runs a store's blocking work (file or database I/O) on tokio's blocking pool.
#[cfg(any(feature = "json-file", feature = "redb"))]
pub(crate) async fn blocking<I, T>(
    store: &(dyn fmt::Display + Sync),
    inner: &Arc<I>,
    f: impl FnOnce(&I) -> Result<T> + Send + 'static,
) -> Result<T>
where
    I: Send + Sync + 'static,
    T: Send + 'static,
{
    let inner = Arc::clone(inner);
    tokio::task::spawn_blocking(move || f(&inner))
        .await
        .map_err(|e| crate::Error::Backend {
            store: store.to_string(),
            source: Box::new(e),
        })?
}

/// Percent-encodes a flag name as one URL path segment (all but `A-Z a-z 0-9 - . _ ~`): how a
/// flag appears in the server's routes (`/api/v1/flags/{name}`), for the server and the HTTP
/// store alike.
///
/// ```
/// assert_eq!(flipper::store::encode_path_segment("a/b ü"), "a%2Fb%20%C3%BC");
/// ```
pub fn encode_path_segment(name: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
    out
}

/// Applies `offset` then `limit` to an iterator, as every store's `list` does.
pub(crate) fn page<T>(
    items: impl Iterator<Item = T>,
    limit: Option<usize>,
    offset: usize,
) -> Vec<T> {
    let rest = items.skip(offset);
    match limit {
        Some(n) => rest.take(n).collect(),
        None => rest.collect(),
    }
}

/// Turns a broadcast receiver into a [`ChangeStream`]; falling behind yields [`Change::Resync`].
pub(crate) fn broadcast_stream(rx: tokio::sync::broadcast::Receiver<Change>) -> ChangeStream {
    use tokio::sync::broadcast::error::RecvError;
    Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
        match rx.recv().await {
            Ok(change) => Some((change, rx)),
            Err(RecvError::Lagged(_)) => Some((Change::Resync, rx)),
            Err(RecvError::Closed) => None,
        }
    }))
}
