//! flipper-client's Thrift RPC service (`FeatureFlagStore`, binary protocol): [`ThriftStore`],
//! the client side (`thrift://HOST:PORT`), and [`ThriftServer`], which serves any [`Store`]
//! through the service to flipper-client's `ThriftRPCFeatureFlagStore` and to `ThriftStore`.
//!
//! The service's IDL is `crates/flipper/thrift/feature_flag_store.thrift` (flipper-client's, the
//! same field ids and types); `generated.rs` is thrift-compiler 0.17's Rust for it
//! (`scripts/gen-thrift`), except for the `List` call, which `list.rs` reads and writes by hand.

mod client;
mod config;
mod convert;
mod generated;
mod handler;
mod io;
mod list;
mod server;
mod watch;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use flipper_core::Item;
use tokio::sync::{RwLock, broadcast};

use self::client::{Pool, is_not_found};
pub use self::config::{ThriftConfig, ThriftTransport};
use self::generated::TFeatureFlagStoreSyncClient as _;
pub use self::server::{ThriftServer, ThriftServerOptions};
use super::{
    Capabilities, Change, ChangeStream, CorruptEntry, ListEntry, PutMode, Store, Version, Versioned,
};
use crate::error::{Error, Result};

/// How long a write waits for the watch streams opened before it to take their first listing.
const WATCH_CONNECT_WAIT: Duration = Duration::from_secs(5);

/// A flipper-client Thrift service as the store: `thrift://HOST:PORT` ([`ThriftConfig`]), such
/// as `flipper serve --thrift-listen` or a Python service built on flipper-client's IDL.
///
/// ```no_run
/// # async fn run() -> flipper::Result<()> {
/// use flipper::FeatureFlagClient;
/// use flipper::store::ThriftStore;
/// let store = ThriftStore::from_url("thrift://127.0.0.1:9090?poll_interval=1s")?;
/// let client = FeatureFlagClient::new(store);
/// client.create("beta", true, None).await?;
/// # Ok(()) }
/// ```
///
/// The service is flipper-client's store API, so the primitives map onto its calls as
/// flipper-client's `ThriftRPCFeatureFlagStore` maps its methods:
///
/// | `Store` | calls |
/// |---|---|
/// | `get` | `Get`; the `NOT_FOUND` error is `None` |
/// | `put` | an enabled flag: `SetMeta`, then `Set(true)` (a missing flag: `Create` disabled, `SetMeta`, `Set(true)`); a disabled flag: `Set(false)` (which creates a missing one), then `SetMeta` |
/// | `put_many` | one `put` per flag, in order |
/// | `delete` | `Get` (to tell whether the flag existed), then `Delete` |
/// | `list` | `List(limit, offset)`, without a limit when there is none (as flipper-client) |
/// | `watch` | this store's writes, plus a `List` every `poll_interval` compared with the last one |
///
/// **No versions, no compare-and-swap.** The service keeps no versions: a flag's version is
/// the SHA-1 of its serialized form as read back, and
/// [`Capabilities::conditional_put`] is `false`, so [`StoreExt`](super::StoreExt)'s
/// read-modify-writes are flipper-client's plain overwrites (a concurrent writer's change can
/// be lost, as with flipper-client), and [`PutMode::Create`] / [`PutMode::Update`] are
/// [`Error::Unsupported`]. The order of the calls of a `put` makes each step safe to observe:
/// a flag being switched on gets its new metadata first, one being switched off is switched
/// off first, so a reader in between sees the old answers or `false`, never an enabled flag
/// without its conditions. The service has no transactions: a call that fails leaves the
/// calls before it done (a flag switched off, its old metadata kept); writing again completes
/// it.
///
/// **What the service carries.** `is_enabled` is a bool and `created_date` a 64-bit integer
/// there: writing a flag with anything else is [`Error::InvalidFlag`], before any call.
/// Conditions keep their grouping between flipper processes (each condition is a map from
/// variable to its checks); the generated code keeps such maps in name order, so the variables
/// of one condition come back sorted by name, which changes neither the result of an
/// evaluation nor the checks on any one variable (a put returns the version of the flag as it
/// will read back). flipper-client's own reading splits every check into a condition of its
/// own: see the crate README for what Python clients see.
///
/// **Connections.** Calls are blocking (the thrift crate is synchronous) and run on tokio's
/// blocking pool, on at most `pool_size` connections, kept open between calls. Connecting may
/// take `connect_timeout`, and each read or write of a call `timeout`, so a dead server fails
/// calls with [`Error::Backend`] rather than hanging them; a pooled connection that fails is
/// replaced and the call made again once (every call is an overwrite or a read).
///
/// **Watch.** [`Store::watch`] (inside a Tokio runtime; `None` outside one) reports this
/// store's own writes (and its clones') as they are made, and, every `poll_interval`, the
/// difference between a `List` of every flag and what it last reported: other processes'
/// writes, a burst of them to one flag reported as its last state. A stream starts with
/// [`Change::Resync`] once it has its first listing; writes through this store wait (at most
/// 5 s) for the streams opened before them to get there, so a watcher misses none of them.
/// A poll and this store's writes do not overlap, so a poll never reports a state older than
/// a write already reported. A failed poll is retried at the next interval.
#[derive(Clone)]
pub struct ThriftStore {
    inner: Arc<Inner>,
}

struct Inner {
    config: ThriftConfig,
    name: String,
    pool: Arc<Pool>,
    /// This store's writes, for its watchers.
    changes: broadcast::Sender<Change>,
    /// Writes share it; a poll takes it alone.
    gate: RwLock<()>,
    /// How many watch streams are still taking their first listing (writes wait for them).
    watchers: crate::store::gate::WatchGate,
}

impl ThriftStore {
    /// A store for this configuration. Does no I/O.
    pub fn new(config: ThriftConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                name: config.to_string(),
                pool: Arc::new(Pool::new(config.clone())),
                changes: broadcast::channel(super::memory::WATCH_BUFFER).0,
                gate: RwLock::new(()),
                watchers: crate::store::gate::WatchGate::new(WATCH_CONNECT_WAIT),
                config,
            }),
        }
    }

    /// A store for a URL ([`ThriftConfig::from_url`]). Does no I/O.
    ///
    /// # Errors
    /// [`Error::InvalidStoreUrl`], as [`ThriftConfig::from_url`].
    pub fn from_url(url: &str) -> Result<Self> {
        ThriftConfig::from_url(url).map(Self::new)
    }

    /// The configuration.
    pub fn config(&self) -> &ThriftConfig {
        &self.inner.config
    }

    /// Closes the idle connections; the next calls connect again.
    pub fn disconnect(&self) {
        self.inner.pool.clear();
    }

    /// A flag as the server sent it, with the version of its serialized form.
    fn decode(&self, item: generated::FeatureFlagStoreItem) -> Result<Versioned, CorruptEntry> {
        let key = item.feature_name.clone().unwrap_or_default();
        match convert::item_from_thrift(item) {
            Ok(item) => Ok(Versioned {
                version: Version::of_bytes(&item.serialize()),
                item,
            }),
            Err(error) => Err(CorruptEntry { key, error }),
        }
    }

    /// Waits (a bounded time) until every watch stream opened so far has its first listing.
    async fn settle_watchers(&self) {
        self.inner.watchers.settle().await;
    }

    fn invalid(&self, item: &Item, message: String) -> Error {
        Error::InvalidFlag {
            name: item.feature_name.clone(),
            message,
        }
    }
}

impl fmt::Debug for ThriftStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThriftStore")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for ThriftStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.inner.name)
    }
}

#[async_trait]
impl Store for ThriftStore {
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
            .with_watch(true)
            .with_watch_external(self.inner.config.poll_interval().is_some())
    }

    async fn get(&self, name: &str) -> Result<Option<Versioned>> {
        let owned = name.to_owned();
        let reply = self
            .inner
            .pool
            .run(move |conn| match conn.call(|c| c.get(owned.clone())) {
                Ok(item) => Ok(Some(item)),
                Err(e) if is_not_found(&e) => Ok(None),
                Err(e) => Err(e),
            })
            .await?;
        reply
            .map(|item| {
                self.decode(item).map_err(|c| Error::Corrupt {
                    store: self.to_string(),
                    name: name.to_owned(),
                    source: c.error,
                })
            })
            .transpose()
    }

    async fn put(&self, item: &Item, mode: PutMode) -> Result<Version> {
        if mode != PutMode::Overwrite {
            return Err(Error::Unsupported {
                store: self.to_string(),
                operation: "a conditional write (the Thrift service keeps no versions)",
            });
        }
        convert::representable(item).map_err(|m| self.invalid(item, m))?;
        item.validate()
            .map_err(|e| self.invalid(item, e.to_string()))?;
        let stored = convert::normalized(item).map_err(|e| self.invalid(item, e.to_string()))?;
        let name = item.feature_name.clone();
        let enabled = item.switched_on();
        let meta = convert::meta_to_thrift(&item.meta);
        let client_data = meta.client_data.clone().unwrap_or_default();
        self.settle_watchers().await;
        let _gate = self.inner.gate.read().await;
        self.inner
            .pool
            .run(move |conn| {
                let set_meta =
                    |conn: &mut client::Conn| conn.call(|c| c.set_meta(name.clone(), meta.clone()));
                if !enabled {
                    // Off first (Set creates a missing flag), then the rest.
                    conn.call(|c| c.set(name.clone(), false))?;
                    return set_meta(conn);
                }
                match set_meta(conn) {
                    Ok(()) => {}
                    Err(e) if is_not_found(&e) => {
                        conn.call(|c| c.create(name.clone(), false, client_data.clone()))?;
                        set_meta(conn)?;
                    }
                    Err(e) => return Err(e),
                }
                // On last, once the conditions are there.
                conn.call(|c| c.set(name.clone(), true))
            })
            .await?;
        let version = Version::of_bytes(&stored.serialize());
        let _ = self.inner.changes.send(Change::Put {
            item: stored,
            version: version.clone(),
        });
        Ok(version)
    }

    async fn put_many(&self, items: &[Item]) -> Result<Vec<Version>> {
        let mut versions = Vec::with_capacity(items.len());
        for item in items {
            versions.push(self.put(item, PutMode::Overwrite).await?);
        }
        Ok(versions)
    }

    async fn delete(&self, name: &str) -> Result<bool> {
        let owned = name.to_owned();
        self.settle_watchers().await;
        let _gate = self.inner.gate.read().await;
        let existed = self
            .inner
            .pool
            .run(move |conn| {
                let existed = match conn.call(|c| c.get(owned.clone())) {
                    Ok(_) => true,
                    Err(e) if is_not_found(&e) => false,
                    // There, but the server cannot send it (unreadable): delete it all the same.
                    Err(thrift::Error::User(_)) => true,
                    Err(e) => return Err(e),
                };
                conn.call(|c| c.delete(owned.clone()))?;
                Ok(existed)
            })
            .await?;
        if existed {
            let _ = self.inner.changes.send(Change::Delete {
                name: name.to_owned(),
            });
        }
        Ok(existed)
    }

    async fn list(&self, limit: Option<usize>, offset: usize) -> Result<Vec<ListEntry>> {
        let limit = limit.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let items = self
            .inner
            .pool
            .run(move |conn| conn.call(|c| list::call(c, limit, offset)))
            .await?;
        Ok(items.into_iter().map(|item| self.decode(item)).collect())
    }

    fn watch(&self) -> Option<ChangeStream> {
        watch::start(self)
    }
}
