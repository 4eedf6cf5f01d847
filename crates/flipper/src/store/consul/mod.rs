//! [`ConsulStore`]: flipper-client's Consul store (`consul://HOST:PORT/BASE_KEY`): the same keys
//! and bytes in Consul's KV store, over its HTTP API, with compare-and-swap writes and changes
//! followed by blocking queries.

mod api;
mod config;
mod watch;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use flipper_core::Item;

use self::api::{Api, Entry};
pub use self::config::{Consistency, ConsulConfig};
use self::watch::Own;
use super::{
    Capabilities, ChangeStream, CorruptEntry, ListEntry, MAX_CAS_ATTEMPTS, PutMode, Store, Version,
    Versioned, page,
};
use crate::error::{Error, Result};

/// How long a write waits for the watch streams opened before it to go live.
const WATCH_CONNECT_WAIT: Duration = Duration::from_secs(10);
/// How many of this store's writes a watch may have yet to handle before it skips some (it
/// then learns the final state from its next blocking query).
const OWN_WRITES_BUFFER: usize = 1024;

/// Flags in Consul's KV store, as flipper-client's `ConsulFeatureFlagStore` keeps them: flag
/// `NAME` is the key `BASE_KEY/NAME` (`features/NAME` by default) holding exactly
/// [`Item::serialize`]'s bytes (python-consul's `kv.put(key, bytes)`). Python and Rust
/// processes can share it.
///
/// ```no_run
/// # async fn run() -> flipper::Result<()> {
/// use flipper::FeatureFlagClient;
/// use flipper::store::ConsulStore;
/// let store = ConsulStore::from_url("consul://127.0.0.1:8500/features")?;
/// let client = FeatureFlagClient::new(store);
/// client.create("beta", true, None).await?;
/// assert!(client.is_enabled("beta", &Default::default()).await);
/// # Ok(()) }
/// ```
///
/// Creating a store does no I/O. URLs and options (ACL token, blocking-query wait, read
/// consistency, datacenter): [`ConsulConfig`]. Every operation goes to Consul (there is no
/// cache), so a flag is readable right after it is written and a deleted flag is gone.
///
/// | `Store` | requests |
/// |---|---|
/// | `get` | `GET /v1/kv/BASE_KEY/NAME`: 404 or a `null` value is no flag; the version is the entry's `ModifyIndex` |
/// | `put` | `PUT /v1/kv/BASE_KEY/NAME` with the bytes ([`PutMode::Create`]: `?cas=0`, [`PutMode::Update`]: `?cas=MODIFY_INDEX`; `false` is [`Error::AlreadyExists`] / [`Error::Conflict`]), then a `GET` of the key for its new `ModifyIndex` |
/// | `put_many` | one `put` per flag, in order (not atomic) |
/// | `delete` | a `GET`, then `DELETE ...?cas=MODIFY_INDEX` (again if the flag changed meanwhile) |
/// | `list` | `GET /v1/kv/BASE_KEY/?recurse=true` (with the slash: flipper-client's prefix also matched `features2/...`), sorted by name |
/// | `watch` | blocking queries on the same prefix |
///
/// So [`StoreExt::set`](super::StoreExt::set) and [`StoreExt::update`](super::StoreExt::update)
/// take three round trips (read, write, read back) plus three per lost race.
///
/// **Versions** are Consul's `ModifyIndex`es, so a write by flipper-client (Python) changes the
/// version too and a compare-and-swap against the old one fails as it should. Consul keeps the
/// `ModifyIndex` of a key written with the bytes it already holds: such a write keeps the
/// version. When another writer changes the flag between a write and its read-back, the
/// write's version is one no later compare-and-swap can match (the write is superseded).
///
/// **Names.** Consul's HTTP server cleans request paths, so a flag whose name has an empty,
/// `.` or `..` segment (`a//b`, `/a`, `a/`, `../a`) cannot be addressed: operations on it fail
/// with [`Error::InvalidFlag`], as do names Consul refuses (recent Consul versions refuse keys
/// with leading or trailing spaces). Consul's value limit (`kv_max_value_size`, 512 KiB by
/// default) bounds a flag's size.
///
/// **Listing** reports a key under the prefix that does not hold a readable flag (foreign
/// JSON, other bytes) as a [`CorruptEntry`] without failing the listing; keys with an empty
/// value are skipped (flipper-client skips them too).
///
/// **Watch.** [`Store::watch`] runs in a task on the current Tokio runtime (outside one it
/// returns `None`). It reads the prefix, then asks again with `?index=N&wait=WAIT`, a blocking
/// query: Consul answers when something under the prefix changes, or after the wait (5 min by
/// default), and each answer is compared with the `ModifyIndex`es the watcher was last told of,
/// giving the puts and deletes in index order. Idle, a watch costs one request per `wait`
/// (flipper-client's watch thread polls without an index: thousands of requests per minute).
/// It follows Consul's rules for blocking queries: when `X-Consul-Index` goes backwards (a
/// snapshot restore, tombstones reaped), or is 0, it starts over from that answer and yields
/// [`Change::Resync`](super::Change::Resync); requests start at least 50 ms apart; failures
/// are retried after a backoff (100 ms doubling to 10 s, with jitter) from the same index, so
/// an outage costs a handful of requests and no change is missed. The stream starts with
/// `Resync` once the first read is done. Writes through this store (and its clones) wait, at
/// most 10 s, until the watch streams opened before them have made that read, and are told to
/// those streams directly, in order, so a watcher sees each of them even when several land
/// between two answers; other processes' writes are seen through the blocking queries (a quick
/// burst to one flag may be reported as its last state only).
#[derive(Clone)]
pub struct ConsulStore {
    inner: Arc<Inner>,
}

struct Inner {
    config: ConsulConfig,
    /// The store's name: the URL without its token.
    name: String,
    /// `BASE_KEY/`.
    prefix: String,
    api: Api,
    /// This store's writes, for its watches.
    own: tokio::sync::broadcast::Sender<Own>,
    /// Watch streams still connecting (writes wait for them).
    watchers: crate::store::gate::WatchGate,
}

impl ConsulStore {
    /// A store for this configuration. Does no I/O.
    ///
    /// # Errors
    /// [`Error::InvalidStoreUrl`] for a token that cannot be sent in an HTTP header;
    /// [`Error::Backend`] when the HTTP client cannot be built.
    pub fn new(config: ConsulConfig) -> Result<Self> {
        Ok(Self {
            inner: Arc::new(Inner {
                name: config.to_string(),
                prefix: format!("{}/", config.base_key()),
                api: Api::new(&config)?,
                own: tokio::sync::broadcast::channel(OWN_WRITES_BUFFER).0,
                watchers: crate::store::gate::WatchGate::new(WATCH_CONNECT_WAIT),
                config,
            }),
        })
    }

    /// A store for a URL ([`ConsulConfig::from_url`]). Does no I/O.
    ///
    /// # Errors
    /// [`Error::InvalidStoreUrl`], as [`ConsulConfig::from_url`].
    pub fn from_url(url: &str) -> Result<Self> {
        Self::new(ConsulConfig::from_url(url)?)
    }

    /// The configuration.
    pub fn config(&self) -> &ConsulConfig {
        &self.inner.config
    }

    /// The key of a flag, `BASE_KEY/NAME`, if Consul can address it.
    fn key(&self, name: &str) -> Result<String> {
        config::check_key_path(name).map_err(|why| Error::InvalidFlag {
            name: name.to_owned(),
            message: format!("the Consul store cannot use this name: {why}"),
        })?;
        Ok(format!("{}{name}", self.inner.prefix))
    }

    /// The flag name of a key under the prefix.
    fn name_of<'a>(&self, key: &'a str) -> Option<&'a str> {
        key.strip_prefix(self.inner.prefix.as_str())
            .filter(|name| !name.is_empty())
    }

    /// Reads stored bytes as a flag.
    fn decode(&self, name: &str, bytes: &[u8], index: u64) -> Result<Versioned> {
        Ok(Versioned {
            item: Item::deserialize(bytes).map_err(|source| Error::Corrupt {
                store: self.inner.name.clone(),
                name: name.to_owned(),
                source,
            })?,
            version: version(index),
        })
    }

    /// The entry of one key, with Consul's default consistency.
    async fn entry(&self, key: &str) -> Result<Option<Entry>> {
        let read = self.inner.api.read(key, false, None, true).await?;
        Ok(read.entries.into_iter().find(|e| e.key == key))
    }

    /// Waits (a bounded time) until every watch stream opened so far has made its first read.
    async fn settle_watchers(&self) {
        self.inner.watchers.settle().await;
    }

    /// Tells this store's watches of one of its writes.
    fn tell(&self, write: Own) {
        if self.inner.own.receiver_count() > 0 {
            let _ = self.inner.own.send(write);
        }
    }
}

/// A `ModifyIndex` as a version.
fn version(index: u64) -> Version {
    Version::from_token(index.to_string())
}

/// The version of a write another writer superseded before it could be read back: unique,
/// and matching no `ModifyIndex`.
fn superseded() -> Version {
    static N: AtomicU64 = AtomicU64::new(0);
    Version::from_token(format!("superseded-{}", N.fetch_add(1, Ordering::Relaxed)))
}

impl fmt::Debug for ConsulStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsulStore")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for ConsulStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.inner.name)
    }
}

#[async_trait]
impl Store for ConsulStore {
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
            .with_conditional_put(true)
            .with_watch(true)
            .with_watch_external(true)
    }

    async fn get(&self, name: &str) -> Result<Option<Versioned>> {
        let key = self.key(name)?;
        let read = self.inner.api.read(&key, false, None, false).await?;
        match read.entries.into_iter().find(|e| e.key == key) {
            Some(Entry {
                value: Some(bytes),
                modify_index,
                ..
            }) => self.decode(name, &bytes, modify_index).map(Some),
            _ => Ok(None),
        }
    }

    async fn put(&self, item: &Item, mode: PutMode) -> Result<Version> {
        let name = item.feature_name.as_str();
        let key = self.key(name)?;
        let cas = match &mode {
            PutMode::Overwrite => None,
            PutMode::Create => Some(0),
            // A version this store did not issue (or a superseded write's) matches nothing.
            PutMode::Update(version) => match version.to_string().parse::<u64>() {
                Ok(index) if index > 0 => Some(index),
                _ => {
                    return Err(Error::Conflict {
                        name: name.to_owned(),
                    });
                }
            },
        };
        let bytes = item.serialize();
        self.settle_watchers().await;
        if !self.inner.api.put(&key, bytes.clone(), cas).await? {
            return Err(match mode {
                PutMode::Create => Error::AlreadyExists {
                    name: name.to_owned(),
                },
                PutMode::Update(_) => Error::Conflict {
                    name: name.to_owned(),
                },
                _ => api::backend(
                    &self.inner.name,
                    format!("Consul answered false to an unconditional write of {key:?}"),
                ),
            });
        }
        // Consul's answer is `true` alone: the new ModifyIndex needs a read.
        match self.entry(&key).await? {
            Some(entry) if entry.value.as_deref() == Some(bytes.as_slice()) => {
                self.tell(Own::Put {
                    item: Box::new(item.clone()),
                    index: entry.modify_index,
                });
                Ok(version(entry.modify_index))
            }
            _ => Ok(superseded()),
        }
    }

    async fn put_many(&self, items: &[Item]) -> Result<Vec<Version>> {
        let mut versions = Vec::with_capacity(items.len());
        for item in items {
            versions.push(self.put(item, PutMode::Overwrite).await?);
        }
        Ok(versions)
    }

    async fn delete(&self, name: &str) -> Result<bool> {
        let key = self.key(name)?;
        let mut last = 0;
        for _ in 0..MAX_CAS_ATTEMPTS {
            let Some(entry) = self.entry(&key).await? else {
                return Ok(false);
            };
            last = entry.modify_index;
            self.settle_watchers().await;
            if self
                .inner
                .api
                .delete(&key, Some(entry.modify_index))
                .await?
            {
                self.tell(Own::Delete {
                    name: name.to_owned(),
                    after: entry.modify_index,
                });
                return Ok(true);
            }
        }
        // The flag keeps changing: delete it whatever it holds.
        self.inner.api.delete(&key, None).await?;
        self.tell(Own::Delete {
            name: name.to_owned(),
            after: last,
        });
        Ok(true)
    }

    async fn list(&self, limit: Option<usize>, offset: usize) -> Result<Vec<ListEntry>> {
        let read = self
            .inner
            .api
            .read(&self.inner.prefix, true, None, false)
            .await?;
        let mut found: Vec<(String, Vec<u8>, u64)> = read
            .entries
            .into_iter()
            .filter_map(|e| {
                let name = self.name_of(&e.key)?.to_owned();
                Some((name, e.value?, e.modify_index))
            })
            .collect();
        found.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Ok(page(found.into_iter(), limit, offset)
            .into_iter()
            .map(|(name, bytes, index)| match Item::deserialize(&bytes) {
                Ok(item) => Ok(Versioned {
                    item,
                    version: version(index),
                }),
                Err(error) => Err(CorruptEntry { key: name, error }),
            })
            .collect())
    }

    fn watch(&self) -> Option<ChangeStream> {
        watch::start(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_keys_consul_can_address() {
        let store = ConsulStore::from_url("consul://127.0.0.1:1/app/flags?token=hunter2").unwrap();
        assert_eq!(store.key("a/b c").unwrap(), "app/flags/a/b c");
        for bad in ["", "a//b", "/a", "a/", "..", "a/./b"] {
            let err = store.key(bad).unwrap_err();
            assert!(matches!(err, Error::InvalidFlag { .. }), "{bad}: {err}");
        }
        assert_eq!(store.name_of("app/flags/x/y"), Some("x/y"));
        assert_eq!(store.name_of("app/flags/"), None);
        assert_eq!(store.name_of("app/flags2/x"), None);
        assert_eq!(
            store.to_string(),
            "consul://127.0.0.1:1/app/flags?token=***"
        );
        assert!(!format!("{store:?}").contains("hunter2"));
        assert_ne!(superseded(), superseded());
        assert_eq!(version(7).to_string(), "7");
    }

    /// A Consul agent that cannot be reached is a retryable backend error, not a panic.
    #[tokio::test]
    async fn an_unreachable_agent_is_a_backend_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let store = ConsulStore::from_url(&format!("consul://127.0.0.1:{port}")).unwrap();
        let err = store.get("f").await.unwrap_err();
        assert!(
            matches!(err, Error::Backend { .. }) && err.is_retryable(),
            "{err}"
        );
        assert!(
            store
                .put(
                    &Item::new("f", true, 1),
                    PutMode::Update(Version::from_token("x"))
                )
                .await
                .is_err()
        );
    }
}
