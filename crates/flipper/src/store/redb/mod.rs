//! [`RedbStore`]: flags in an embedded [redb](https://www.redb.org) database file
//! (`redb:PATH`), the flag server's default store. The file layout, durability, versions and
//! sharing rules are documented on [`RedbStore`], where users see them.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use flipper_core::{Item, ItemError};
use redb::{
    Database, DatabaseError, Durability, ReadableDatabase, ReadableTable, StorageError,
    TableDefinition, TableError, WriteTransaction,
};
use tokio::sync::broadcast;

use super::memory::WATCH_BUFFER;
use super::{
    Capabilities, Change, ChangeStream, CorruptEntry, ListEntry, PutMode, Store, Version,
    Versioned, page,
};
use crate::error::{Error, Result};

/// Flag name → stored bytes ([`Item::serialize`]).
const FLAGS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("flags");
/// Flag name → the sequence number of its last write.
const VERSIONS: TableDefinition<'_, &str, u64> = TableDefinition::new("versions");
/// Bookkeeping: [`SCHEMA_KEY`] and [`LAST_SEQ_KEY`].
const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");
/// The layout version, for future migrations.
const SCHEMA_KEY: &str = "schema";
/// The last sequence number issued.
const LAST_SEQ_KEY: &str = "last_seq";
/// The layout this code writes and reads.
const SCHEMA: u64 = 1;

/// Flags in an embedded [redb](https://www.redb.org) database file (`redb:PATH`): crash-safe,
/// atomic compare-and-swap, reads that never wait for writes. The flag server's default store.
///
/// Cloning is cheap; clones share the open database and their watchers see each other's writes.
///
/// ```
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// use flipper::store::{RedbStore, Store, StoreExt};
/// let dir = tempfile::tempdir().unwrap();
/// let store = RedbStore::open(dir.path().join("flipper.redb"))?;
/// store.create("beta", true, None).await?;
/// assert!(store.get("beta").await?.is_some());
/// # Ok::<(), flipper::Error>(())
/// # }).unwrap();
/// ```
///
/// # File layout
///
/// One redb file holding three tables:
///
/// | table | key | value |
/// |---|---|---|
/// | `flags` | flag name (`&str`) | the flag's stored bytes, exactly [`Item::serialize`]'s |
/// | `versions` | flag name (`&str`) | the flag's version: the sequence number of its last write (`u64`) |
/// | `meta` | `"schema"`, `"last_seq"` | the layout's version (1); the last sequence number issued |
///
/// Keys are ordered by their UTF-8 bytes, which is code point order: listings come out in name
/// order, as the other stores'. A flag whose `versions` entry is missing (written by another
/// tool) reads as version 0, which no write issues.
///
/// # Durability
///
/// Every write is one redb write transaction, committed with [`redb::Durability::Immediate`]:
/// when `put` or `delete` returns `Ok`, the change has been fsynced and survives a crash of the
/// process, or of the machine on a disk that honours fsync (redb checksums its commits, and a
/// torn commit is rolled back on the next open). Watchers are told after the commit.
/// Reads run in read transactions: they see the last committed state and never wait for a writer.
/// The database is opened with redb's integrity check, so a file damaged outside redb is reported
/// when it is opened rather than trusted; for a flag database (kilobytes to a few megabytes) the
/// check is cheap.
///
/// # Versions
///
/// A counter (`meta.last_seq`) grows by one on every write, in the write's own transaction; the
/// new value is the written flag's [`Version::from_seq`]. Versions are never reused, not even
/// after a flag is deleted and created again, so a compare-and-swap cannot mistake a recreated flag
/// for the one it read. [`PutMode::Create`] and [`PutMode::Update`] are checked inside the write
/// transaction, so they are atomic.
///
/// # Several users of one file
///
/// redb locks the whole file while it is open (its default `ExclusiveWriter` mode). A second
/// [`RedbStore::open`] of the same file, by another process **or by this one**, fails with
/// [`Error::Io`] (action `"cannot lock"`, kind [`std::io::ErrorKind::WouldBlock`]) naming the
/// file. Share one store inside a process by cloning it (clones share the database) or through an
/// `Arc`. The lock is released when the last clone is dropped and its pending operations have
/// finished, or by the OS when the process dies. (redb 4.5's opt-in modes for several writing
/// processes are not used: they are new, and other processes' writes would not reach watchers.)
///
/// [`Store::watch`] reports the writes made through this store and its clones; there are no
/// others, since no other process can have the file open.
#[derive(Clone)]
pub struct RedbStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    path: PathBuf,
    /// Held from the start of a write transaction until its change is broadcast, so watchers
    /// see changes in commit order. redb runs one write transaction at a time anyway.
    writer: Mutex<()>,
    changes: broadcast::Sender<Change>,
}

impl RedbStore {
    /// Opens the database at `path`, creating the file if it does not exist (its directory must).
    ///
    /// This blocks on file I/O (and checks the whole file's integrity): call it at startup, or
    /// through [`tokio::task::spawn_blocking`].
    ///
    /// # Errors
    /// All naming the file:
    /// * [`Error::Io`] with action `"cannot lock"` and kind [`io::ErrorKind::WouldBlock`] when
    ///   the database is open elsewhere (another process, or another `RedbStore::open` in this
    ///   one);
    /// * [`Error::Io`] with action `"cannot open"` when it cannot be opened or created (missing
    ///   directory, no permission, a directory);
    /// * [`Error::InvalidFile`] when the file is not a redb database, is damaged, or is a redb
    ///   database that does not hold flags in this layout.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        let db = Database::builder()
            .set_check_integrity_on_open(true)
            .create(&path)
            .map_err(|e| open_error(&path, e))?;
        let inner = Inner {
            db,
            path,
            writer: Mutex::new(()),
            changes: broadcast::channel(WATCH_BUFFER).0,
        };
        inner.init()?;
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        super::blocking(self, &self.inner, f).await
    }
}

/// Maps a failure to open the database file to an error naming it.
fn open_error(path: &Path, error: DatabaseError) -> Error {
    let invalid = |message: String| Error::InvalidFile {
        path: path.to_owned(),
        message,
    };
    match error {
        DatabaseError::DatabaseAlreadyOpen | DatabaseError::LockProtocolMismatch => Error::Io {
            action: "cannot lock",
            path: path.to_owned(),
            source: io::Error::new(
                io::ErrorKind::WouldBlock,
                format!(
                    "the database is open in another process or another store of this process \
                     (redb: {error})"
                ),
            ),
        },
        DatabaseError::Storage(StorageError::Io(e)) if e.kind() == io::ErrorKind::InvalidData => {
            invalid(format!("not a redb database ({e})"))
        }
        DatabaseError::Storage(StorageError::Io(source)) => Error::Io {
            action: "cannot open",
            path: path.to_owned(),
            source,
        },
        DatabaseError::Storage(StorageError::Corrupted(message)) => {
            invalid(format!("damaged redb database: {message}"))
        }
        other => invalid(format!("cannot open as a redb database: {other}")),
    }
}

/// Reads stored bytes as the flag stored under `name`.
fn decode(name: &str, bytes: &[u8]) -> std::result::Result<Item, ItemError> {
    let item = Item::deserialize(bytes)?;
    if item.feature_name != name {
        return Err(ItemError::Format {
            path: "feature_name".into(),
            message: format!(
                "is {:?} but the flag is stored as {name:?}",
                item.feature_name
            ),
        });
    }
    Ok(item)
}

impl Inner {
    fn name(&self) -> String {
        format!("redb:{}", self.path.display())
    }

    fn backend(&self, error: impl Into<redb::Error>) -> Error {
        Error::Backend {
            store: self.name(),
            source: Box::new(error.into()),
        }
    }

    /// Creates the tables of a new database, or checks an existing database's layout.
    fn init(&self) -> Result<()> {
        let layout = |message: String| Error::InvalidFile {
            path: self.path.clone(),
            message,
        };
        // A table of another type means the file holds something else.
        let table = |name: &str, error: TableError| match error {
            TableError::Storage(e) => self.backend(e),
            other => layout(format!("not a flipper database (table {name}: {other})")),
        };
        self.write(|txn| {
            let mut meta = txn.open_table(META).map_err(|e| table("meta", e))?;
            let schema = meta
                .get(SCHEMA_KEY)
                .map_err(|e| self.backend(e))?
                .map(|g| g.value());
            match schema {
                Some(SCHEMA) => {}
                Some(other) => {
                    return Err(layout(format!(
                        "flipper database layout {other}, but this build reads layout {SCHEMA} \
                         (written by a newer flipper?)"
                    )));
                }
                None => {
                    meta.insert(SCHEMA_KEY, SCHEMA)
                        .map_err(|e| self.backend(e))?;
                }
            }
            txn.open_table(FLAGS).map_err(|e| table("flags", e))?;
            txn.open_table(VERSIONS).map_err(|e| table("versions", e))?;
            Ok(Some(((), Vec::new())))
        })?;
        Ok(())
    }

    /// Writes one flag inside `txn` if `mode`'s precondition holds, with the next sequence
    /// number as its version.
    fn put_in(
        &self,
        txn: &WriteTransaction,
        item: Item,
        mode: &PutMode,
    ) -> Result<(Version, Change)> {
        let backend = |e: StorageError| self.backend(e);
        let open = |e| self.backend(e);
        let name = item.feature_name.as_str();
        let mut flags = txn.open_table(FLAGS).map_err(open)?;
        let mut versions = txn.open_table(VERSIONS).map_err(open)?;
        let mut meta = txn.open_table(META).map_err(open)?;
        let current = if flags.get(name).map_err(backend)?.is_some() {
            Some(
                versions
                    .get(name)
                    .map_err(backend)?
                    .map_or(0, |g| g.value()),
            )
        } else {
            None
        };
        match (mode, current) {
            (PutMode::Create, Some(_)) => {
                return Err(Error::AlreadyExists { name: name.into() });
            }
            (PutMode::Update(expected), current)
                if current.map(Version::from_seq).as_ref() != Some(expected) =>
            {
                return Err(Error::Conflict { name: name.into() });
            }
            _ => {}
        }
        let last = meta
            .get(LAST_SEQ_KEY)
            .map_err(backend)?
            .map_or(0, |g| g.value());
        let seq = last.checked_add(1).ok_or_else(|| {
            self.backend(StorageError::Corrupted(format!(
                "{LAST_SEQ_KEY} is at its maximum ({last})"
            )))
        })?;
        meta.insert(LAST_SEQ_KEY, seq).map_err(backend)?;
        flags
            .insert(name, item.serialize().as_slice())
            .map_err(backend)?;
        versions.insert(name, seq).map_err(backend)?;
        let version = Version::from_seq(seq);
        Ok((version.clone(), Change::Put { item, version }))
    }

    /// Runs `change` in one write transaction. When it returns `Some((out, changes))`, the
    /// transaction is committed durably and `changes` are broadcast before the next write can
    /// start, so watchers see changes in commit order; when it returns `None` or fails, the
    /// transaction is discarded.
    fn write<T>(
        &self,
        change: impl FnOnce(&WriteTransaction) -> Result<Option<(T, Vec<Change>)>>,
    ) -> Result<Option<T>> {
        // The mutex guards no data: a panic while holding it leaves nothing inconsistent.
        let _writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut txn = self.db.begin_write().map_err(|e| self.backend(e))?;
        txn.set_durability(Durability::Immediate)
            .map_err(|e| self.backend(e))?;
        match change(&txn) {
            Ok(Some((out, notify))) => {
                txn.commit().map_err(|e| self.backend(e))?;
                for notify in notify {
                    // No receivers is fine: nobody is watching.
                    let _ = self.changes.send(notify);
                }
                Ok(Some(out))
            }
            Ok(None) => {
                txn.abort().map_err(|e| self.backend(e))?;
                Ok(None)
            }
            Err(e) => {
                // The precondition's error matters more than a failure to discard nothing.
                let _ = txn.abort();
                Err(e)
            }
        }
    }
}

impl fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedbStore")
            .field("path", &self.inner.path)
            .finish()
    }
}

impl fmt::Display for RedbStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.inner.name())
    }
}

#[async_trait]
impl Store for RedbStore {
    fn capabilities(&self) -> Capabilities {
        // redb locks the file: no other process can write it while this store is open, so
        // every change goes through this process and reaches the watchers.
        Capabilities::default()
            .with_conditional_put(true)
            .with_watch(true)
            .with_watch_external(true)
            .with_atomic_batch(true)
    }

    async fn get(&self, name: &str) -> Result<Option<Versioned>> {
        let name = name.to_owned();
        self.blocking(move |inner| {
            let backend = |e: StorageError| inner.backend(e);
            let txn = inner.db.begin_read().map_err(|e| inner.backend(e))?;
            let flags = txn.open_table(FLAGS).map_err(|e| inner.backend(e))?;
            let Some(bytes) = flags.get(name.as_str()).map_err(backend)? else {
                return Ok(None);
            };
            let item = decode(&name, bytes.value()).map_err(|source| Error::Corrupt {
                store: inner.name(),
                name: name.clone(),
                source,
            })?;
            let versions = txn.open_table(VERSIONS).map_err(|e| inner.backend(e))?;
            let seq = versions
                .get(name.as_str())
                .map_err(backend)?
                .map_or(0, |g| g.value());
            Ok(Some(Versioned {
                item,
                version: Version::from_seq(seq),
            }))
        })
        .await
    }

    async fn put(&self, item: &Item, mode: PutMode) -> Result<Version> {
        let item = item.clone();
        let written = self
            .blocking(move |inner| {
                inner.write(|txn| {
                    let (version, change) = inner.put_in(txn, item, &mode)?;
                    Ok(Some((version, vec![change])))
                })
            })
            .await?;
        written.ok_or_else(|| Error::Backend {
            store: self.to_string(),
            source: "a put wrote nothing".into(),
        })
    }

    async fn put_many(&self, items: &[Item]) -> Result<Vec<Version>> {
        let items = items.to_vec();
        let written = self
            .blocking(move |inner| {
                inner.write(|txn| {
                    let mut versions = Vec::with_capacity(items.len());
                    let mut changes = Vec::with_capacity(items.len());
                    for item in items {
                        let (version, change) = inner.put_in(txn, item, &PutMode::Overwrite)?;
                        versions.push(version);
                        changes.push(change);
                    }
                    Ok(Some((versions, changes)))
                })
            })
            .await?;
        Ok(written.unwrap_or_default())
    }

    async fn delete(&self, name: &str) -> Result<bool> {
        let name = name.to_owned();
        let deleted = self
            .blocking(move |inner| {
                let backend = |e: StorageError| inner.backend(e);
                let open = |e| inner.backend(e);
                inner.write(|txn| {
                    let mut flags = txn.open_table(FLAGS).map_err(open)?;
                    let mut versions = txn.open_table(VERSIONS).map_err(open)?;
                    let existed = flags.remove(name.as_str()).map_err(backend)?.is_some();
                    let had_version = versions.remove(name.as_str()).map_err(backend)?.is_some();
                    Ok(match (existed, had_version) {
                        (true, _) => Some((true, vec![Change::Delete { name: name.clone() }])),
                        // A stray version without its flag: drop it, report nothing.
                        (false, true) => Some((false, Vec::new())),
                        (false, false) => None,
                    })
                })
            })
            .await?;
        Ok(deleted.unwrap_or(false))
    }

    async fn list(&self, limit: Option<usize>, offset: usize) -> Result<Vec<ListEntry>> {
        self.blocking(move |inner| {
            let backend = |e: StorageError| inner.backend(e);
            let txn = inner.db.begin_read().map_err(|e| inner.backend(e))?;
            let flags = txn.open_table(FLAGS).map_err(|e| inner.backend(e))?;
            let versions = txn.open_table(VERSIONS).map_err(|e| inner.backend(e))?;
            page(flags.iter().map_err(backend)?, limit, offset)
                .into_iter()
                .map(|entry| {
                    let (key, bytes) = entry.map_err(backend)?;
                    let name = key.value();
                    Ok(match decode(name, bytes.value()) {
                        Ok(item) => {
                            let seq = versions
                                .get(name)
                                .map_err(backend)?
                                .map_or(0, |g| g.value());
                            Ok(Versioned {
                                item,
                                version: Version::from_seq(seq),
                            })
                        }
                        Err(error) => Err(CorruptEntry {
                            key: name.to_owned(),
                            error,
                        }),
                    })
                })
                .collect()
        })
        .await
    }

    fn watch(&self) -> Option<ChangeStream> {
        Some(super::broadcast_stream(self.inner.changes.subscribe()))
    }
}

#[cfg(test)]
mod tests;
