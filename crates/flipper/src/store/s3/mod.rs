//! [`S3Store`]: flipper-client's S3 store (`s3://BUCKET[/PREFIX]`): the same object keys and
//! bytes, with compare-and-swap by conditional writes and changes by polling.

mod client;
mod config;
mod watch;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use flipper_core::{Item, ItemError};
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3;
use object_store::path::Path;
use object_store::{GetOptions, ObjectStore, ObjectStoreExt, PutOptions, PutPayload};
use tokio::sync::broadcast;

pub use self::config::S3Config;
use super::{Capabilities, Change, ChangeStream, CorruptEntry, ListEntry, PutMode, Store};
use super::{Version, Versioned, page};
use crate::error::{Error, Result};

/// How many objects a listing (or a poll) reads at once.
const READ_CONCURRENCY: usize = 16;

/// Flags in an S3 bucket, as flipper-client's `S3FeatureFlagStore` keeps them: flag `NAME` is
/// the object `NAME` (or `PREFIX/NAME`) holding exactly [`Item::serialize`]'s bytes. Python and
/// Rust processes can share a bucket (without a prefix: flipper-client has none).
///
/// ```no_run
/// # async fn run() -> flipper::Result<()> {
/// use flipper::FeatureFlagClient;
/// use flipper::store::S3Store;
/// // Endpoint, region and credentials from AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, ...
/// let store = S3Store::from_url("s3://my-flags")?;
/// let client = FeatureFlagClient::new(store);
/// client.create("beta", true, None).await?;
/// # Ok(()) }
/// ```
///
/// Creating a store does no I/O. URLs and options: [`S3Config`]. Built on object_store's S3
/// client (retries: 3, quickly; request timeout 10 s).
///
/// | `Store` | requests |
/// |---|---|
/// | `get` | `GET` |
/// | `put` | `PUT`: [`PutMode::Create`] with `If-None-Match: *`, [`PutMode::Update`] with `If-Match: ETAG` |
/// | `put_many` | one `PUT` per flag, in order (not atomic) |
/// | `delete` | `HEAD` (did it exist?), then `DELETE` |
/// | `list` | `ListObjectsV2` pages under the prefix (sorted by name), then one `GET` per listed flag, 16 at a time |
/// | `watch` | this store's writes at once; other processes' by polling (`ListObjectsV2`, then `GET` of the objects whose ETag changed) |
///
/// **Versions** are the objects' ETags (without quotes), so a write by flipper-client
/// (Python) changes the version too and a compare-and-swap against it fails as it should.
/// S3's ETag of a plain `PUT` is the MD5 of the bytes: writing the same bytes again keeps it.
///
/// **Compare-and-swap** uses conditional writes, which AWS S3 and most S3-compatible services
/// (MinIO, Cloudflare R2, moto) implement: [`Capabilities::conditional_put`] is declared unless
/// [`S3Config::with_conditional_writes`] (`conditional_writes=false`) turns it off. A service
/// that answers a conditional write with `501 Not Implemented` makes that write fail with
/// [`Error::Unsupported`] (nothing is written): open the store with `conditional_writes=false`
/// there, and writes overwrite as flipper-client's do (concurrent read-modify-writes may then
/// lose updates). A service that silently ignores the headers cannot be detected.
///
/// **Names** become object keys as they are, so names with an empty, `.` or `..` path segment
/// (`a//b`, `./x`), a leading or trailing `/`, or control characters cannot be stored
/// ([`Error::InvalidFlag`]): object_store cannot represent such keys.
///
/// **Listing** reads every key under the prefix (the whole bucket without one), so objects
/// that are not flags (another application's, or a flag object whose `feature_name` is not
/// its key) are reported as [`CorruptEntry`]s in place, without failing the listing. An object
/// that disappears between the listing and its `GET` is skipped. A key object_store cannot
/// represent (see above) fails the listing with an error naming the cause.
///
/// **Watch.** Writes through this store (and its clones) are reported at once, in the order
/// their requests completed. Other processes' writes (and other `S3Store`s') are found by
/// polling every `poll_interval` (default 10 s, jittered by ±10 %): a listing compared by
/// ETag with what watchers were last told, and a `GET` of each changed object. A quick burst
/// of such writes to one flag may be reported as its last state only. The stream opens with
/// [`Change::Resync`](super::Change::Resync) once its first listing is taken, and yields
/// `Resync` again when a poll succeeds after failed ones. With polling off
/// (`poll_interval=off`) only this store's writes are reported and
/// [`Capabilities::watch_external`] is `false`. [`Store::watch`] runs its poll in a task on the
/// current Tokio runtime (outside one it returns `None`).
#[derive(Clone)]
pub struct S3Store {
    inner: Arc<Inner>,
}

struct Inner {
    config: S3Config,
    /// The store's name: its URL.
    name: String,
    /// The prefix as a path (`None`: the whole bucket).
    prefix: Option<Path>,
    s3: AmazonS3,
    /// This store's writes, for its watchers.
    changes: broadcast::Sender<Change>,
}

/// An object as read.
#[allow(
    clippy::large_enum_variant,
    reason = "almost every object is a flag; boxing it would add an allocation per read"
)]
pub(super) enum Fetched {
    /// A flag.
    Flag(Versioned),
    /// An object that is not a readable flag, at this version.
    Unreadable { version: Version, error: ItemError },
}

impl S3Store {
    /// A store for this configuration. Does no I/O (the environment's `AWS_*` settings are
    /// read now).
    ///
    /// # Errors
    /// [`Error::InvalidStoreUrl`] when object_store refuses the settings (an endpoint that is
    /// not a URL, ...).
    pub fn new(config: S3Config) -> Result<Self> {
        let s3 = client::build(&config)?;
        let prefix = match config.prefix() {
            "" => None,
            prefix => Some(Path::parse(prefix).map_err(|e| Error::InvalidStoreUrl {
                url: config.to_string(),
                reason: e.to_string(),
            })?),
        };
        Ok(Self {
            inner: Arc::new(Inner {
                name: config.to_string(),
                prefix,
                s3,
                changes: broadcast::channel(crate::store::memory::WATCH_BUFFER).0,
                config,
            }),
        })
    }

    /// A store for a URL ([`S3Config::from_url`]). Does no I/O.
    ///
    /// # Errors
    /// [`Error::InvalidStoreUrl`], as [`S3Config::from_url`] and [`S3Store::new`].
    pub fn from_url(url: &str) -> Result<Self> {
        Self::new(S3Config::from_url(url)?)
    }

    /// The configuration.
    pub fn config(&self) -> &S3Config {
        &self.inner.config
    }

    /// The object key of a flag, if object_store can represent it as given.
    fn path(&self, name: &str) -> Result<Path> {
        let key = match self.inner.config.prefix() {
            "" => name.to_owned(),
            prefix => format!("{prefix}/{name}"),
        };
        match Path::parse(&key) {
            Ok(path) if !name.is_empty() && path.as_ref() == key => Ok(path),
            _ => Err(Error::InvalidFlag {
                name: name.to_owned(),
                message: "the S3 store cannot use this name as an object key: not empty, no \
                          empty, '.' or '..' path segments, no leading or trailing '/', no \
                          control characters"
                    .to_owned(),
            }),
        }
    }

    /// The flag name of an object key under the prefix.
    fn name_of<'a>(&self, key: &'a str) -> Option<&'a str> {
        match self.inner.config.prefix() {
            "" => Some(key),
            prefix => key.strip_prefix(prefix)?.strip_prefix('/'),
        }
    }

    fn backend(&self, e: object_store::Error) -> Error {
        client::backend(&self.inner.name, self.inner.config.bucket(), e)
    }

    /// Tells this store's watchers of a change.
    fn announce(&self, change: impl FnOnce() -> Change) {
        if self.inner.changes.receiver_count() > 0 {
            let _ = self.inner.changes.send(change());
        }
    }

    /// Reads an object: `None` when there is none.
    pub(super) async fn fetch(&self, name: &str) -> Result<Option<Fetched>> {
        let path = self.path(name)?;
        let got = match self.inner.s3.get_opts(&path, GetOptions::default()).await {
            Ok(got) => got,
            Err(e @ object_store::Error::NotFound { .. }) if client::is_missing_bucket(&e) => {
                return Err(self.backend(e));
            }
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.backend(e)),
        };
        let version = self.version(got.meta.e_tag.as_deref())?;
        let bytes = match got.bytes().await {
            Ok(bytes) => bytes,
            // Deleted while its body was being read.
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.backend(e)),
        };
        Ok(Some(match decode(name, &bytes) {
            Ok(item) => Fetched::Flag(Versioned { item, version }),
            Err(error) => Fetched::Unreadable { version, error },
        }))
    }

    /// The version an answer's ETag names; S3 always sends one.
    fn version(&self, etag: Option<&str>) -> Result<Version> {
        etag.map(client::version_of).ok_or_else(|| Error::Backend {
            store: self.inner.name.clone(),
            source: "the S3 service answered without an ETag, which the store's versions need"
                .into(),
        })
    }

    /// Every flag name under the prefix with its object's version, sorted by name (code
    /// points).
    pub(super) async fn keys(&self) -> Result<Vec<(String, Version)>> {
        let mut objects = self.inner.s3.list(self.inner.prefix.as_ref());
        let mut keys = Vec::new();
        while let Some(meta) = objects.try_next().await.map_err(|e| self.backend(e))? {
            if let Some(name) = self.name_of(meta.location.as_ref()) {
                keys.push((name.to_owned(), self.version(meta.e_tag.as_deref())?));
            }
        }
        keys.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        keys.dedup_by(|a, b| a.0 == b.0);
        Ok(keys)
    }

    /// Reads these objects, [`READ_CONCURRENCY`] at a time, in order.
    pub(super) async fn fetch_all(
        &self,
        names: Vec<String>,
    ) -> Vec<(String, Result<Option<Fetched>>)> {
        futures_util::stream::iter(names)
            .map(|name| async move {
                let fetched = self.fetch(&name).await;
                (name, fetched)
            })
            .buffered(READ_CONCURRENCY)
            .collect()
            .await
    }
}

/// Stored bytes as the flag `name`: a readable flag whose `feature_name` is its key's name.
fn decode(name: &str, bytes: &[u8]) -> Result<Item, ItemError> {
    let item = Item::deserialize(bytes)?;
    if item.feature_name != name {
        return Err(ItemError::Format {
            path: "feature_name".to_owned(),
            message: format!(
                "the object of flag {name:?} holds the flag {:?}",
                item.feature_name
            ),
        });
    }
    Ok(item)
}

/// The operation a conditional write is when the store has them turned off.
const CAS_OFF: &str = "a conditional write (PutMode::Create or PutMode::Update; \
                       conditional_writes=false)";
/// The operation a conditional write is when the service refuses it.
const CAS_REFUSED: &str = "a conditional write (If-None-Match / If-Match: the S3 service \
                           answered 501 Not Implemented; open the store with \
                           conditional_writes=false to overwrite as flipper-client does)";

impl fmt::Debug for S3Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Store")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for S3Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.inner.name)
    }
}

#[async_trait]
impl Store for S3Store {
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
            .with_conditional_put(self.inner.config.conditional_writes())
            .with_watch(true)
            .with_watch_external(self.inner.config.poll_interval().is_some())
            .with_atomic_batch(false)
    }

    async fn get(&self, name: &str) -> Result<Option<Versioned>> {
        match self.fetch(name).await? {
            None => Ok(None),
            Some(Fetched::Flag(versioned)) => Ok(Some(versioned)),
            Some(Fetched::Unreadable { error, .. }) => Err(Error::Corrupt {
                store: self.inner.name.clone(),
                name: name.to_owned(),
                source: error,
            }),
        }
    }

    async fn put(&self, item: &Item, mode: PutMode) -> Result<Version> {
        use object_store::{PutMode as Mode, UpdateVersion};
        let name = &item.feature_name;
        let path = self.path(name)?;
        let conditional = !matches!(mode, PutMode::Overwrite);
        if conditional && !self.inner.config.conditional_writes() {
            return Err(Error::Unsupported {
                store: self.inner.name.clone(),
                operation: CAS_OFF,
            });
        }
        let put_mode = match &mode {
            PutMode::Overwrite => Mode::Overwrite,
            PutMode::Create => Mode::Create,
            PutMode::Update(version) => Mode::Update(UpdateVersion {
                e_tag: Some(client::if_match(version)),
                version: None,
            }),
        };
        let payload = PutPayload::from(item.serialize());
        let written = self
            .inner
            .s3
            .put_opts(&path, payload, PutOptions::from(put_mode))
            .await;
        let version = match written {
            Ok(result) => match result.e_tag {
                Some(etag) => client::version_of(&etag),
                // No ETag in the answer: read it.
                None => {
                    let meta = self.inner.s3.head(&path).await;
                    self.version(meta.map_err(|e| self.backend(e))?.e_tag.as_deref())?
                }
            },
            Err(e) => {
                use object_store::Error as E;
                return Err(match (e, &mode) {
                    (E::AlreadyExists { .. } | E::Precondition { .. }, PutMode::Create) => {
                        Error::AlreadyExists { name: name.clone() }
                    }
                    (
                        E::Precondition { .. } | E::AlreadyExists { .. } | E::NotModified { .. },
                        PutMode::Update(_),
                    ) => Error::Conflict { name: name.clone() },
                    (e, _) if conditional && client::is_not_implemented(&e) => {
                        tracing::warn!(
                            store = %self,
                            error = %e,
                            "the S3 service does not implement conditional writes; open the \
                             store with conditional_writes=false"
                        );
                        Error::Unsupported {
                            store: self.inner.name.clone(),
                            operation: CAS_REFUSED,
                        }
                    }
                    (e, _) => self.backend(e),
                });
            }
        };
        self.announce(|| Change::Put {
            item: item.clone(),
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
        let path = self.path(name)?;
        match self.inner.s3.head(&path).await {
            Ok(_) => {}
            Err(object_store::Error::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(self.backend(e)),
        }
        match self.inner.s3.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(self.backend(e)),
        }
        self.announce(|| Change::Delete {
            name: name.to_owned(),
        });
        Ok(true)
    }

    async fn list(&self, limit: Option<usize>, offset: usize) -> Result<Vec<ListEntry>> {
        let keys = self.keys().await?;
        let names = page(keys.into_iter().map(|(name, _)| name), limit, offset);
        let mut entries = Vec::with_capacity(names.len());
        for (name, fetched) in self.fetch_all(names).await {
            match fetched? {
                // Deleted since the listing.
                None => {}
                Some(Fetched::Flag(versioned)) => entries.push(Ok(versioned)),
                Some(Fetched::Unreadable { error, .. }) => {
                    entries.push(Err(CorruptEntry { key: name, error }));
                }
            }
        }
        Ok(entries)
    }

    fn watch(&self) -> Option<ChangeStream> {
        watch::start(self)
    }
}
