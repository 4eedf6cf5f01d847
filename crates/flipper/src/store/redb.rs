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
mod tests {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};
    use std::sync::mpsc;
    use std::time::Duration;

    use futures_util::StreamExt;

    use super::*;
    use crate::store::StoreExt;

    fn temp_store() -> (tempfile::TempDir, RedbStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(dir.path().join("flipper.redb")).unwrap();
        (dir, store)
    }

    mod conformance {
        // A fresh database file per case. The temp dir lives as long as the test: leaked on
        // purpose, cleaned by the OS.
        crate::store_conformance_tests!({
            let (dir, store) = super::temp_store();
            std::mem::forget(dir);
            store
        });
    }

    /// Writes `bytes` as the stored value of `name`, bypassing the store.
    fn write_raw(store: &RedbStore, name: &str, bytes: &[u8]) {
        let txn = store.inner.db.begin_write().unwrap();
        txn.open_table(FLAGS).unwrap().insert(name, bytes).unwrap();
        txn.commit().unwrap();
    }

    /// The stored bytes of `name`, read with redb directly.
    fn read_raw(db: &Database, name: &str) -> Option<Vec<u8>> {
        let txn = db.begin_read().unwrap();
        let flags = txn.open_table(FLAGS).unwrap();
        flags.get(name).unwrap().map(|g| g.value().to_vec())
    }

    /// The name of a test in this module, as libtest's `--exact` wants it.
    fn test_name(function: &str) -> String {
        let module = module_path!();
        let module = module.split_once("::").map_or(module, |(_, rest)| rest);
        format!("{module}::{function}")
    }

    /// Runs this test binary's test `function` as a child process with `var=value`, its stdin
    /// and stdout piped.
    fn spawn_child(function: &str, var: &str, value: &Path) -> std::process::Child {
        Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                &test_name(function),
                "--nocapture",
                "--test-threads=1",
            ])
            .env(var, value)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Marks the child's messages in its stdout, which libtest shares (it prints
    /// `test NAME ... ` without a newline before running the test).
    const MARK: &str = "@child: ";

    /// The messages the child prints after [`MARK`], read on a thread so that the parent can
    /// time out.
    fn child_messages(child: &mut std::process::Child) -> mpsc::Receiver<String> {
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let Some((_, message)) = line.split_once(MARK) else {
                    continue;
                };
                if tx.send(message.to_owned()).is_err() {
                    break;
                }
            }
        });
        rx
    }

    #[tokio::test]
    async fn stores_exactly_the_serialized_bytes() {
        let (_dir, store) = temp_store();
        let mut item = Item::new("é😀 x", true, 1_700_000_000);
        item.meta.client_data = [("big", flipper_core::Value::from(1.5e16))]
            .into_iter()
            .collect();
        store.put(&item, PutMode::Overwrite).await.unwrap();
        assert_eq!(
            read_raw(&store.inner.db, "é😀 x").unwrap(),
            item.serialize()
        );
    }

    #[tokio::test]
    async fn versions_grow_and_are_never_reused() {
        let (dir, store) = temp_store();
        let v1 = store.create("a", true, None).await.unwrap().version;
        let v2 = store.set("a", false).await.unwrap().version;
        store.delete("a").await.unwrap();
        let v3 = store.create("a", true, None).await.unwrap().version;
        assert_eq!(
            [v1, v2, v3.clone()],
            [1, 2, 3].map(Version::from_seq),
            "one counter for every write"
        );
        // The counter is stored: a reopened database goes on from it.
        drop(store);
        let store = RedbStore::open(dir.path().join("flipper.redb")).unwrap();
        assert_eq!(store.get("a").await.unwrap().unwrap().version, v3);
        let v4 = store.create("b", true, None).await.unwrap().version;
        assert_eq!(v4, Version::from_seq(4));
        let err = store
            .put(
                &Item::new("a", false, 1),
                PutMode::Update(Version::from_seq(1)),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Conflict { .. }), "{err}");
    }

    #[tokio::test]
    async fn unreadable_bytes_are_corrupt_not_fatal() {
        let (_dir, store) = temp_store();
        store.create("a", true, None).await.unwrap();
        store.create("c", true, None).await.unwrap();
        write_raw(&store, "b", b"\xff{not json");
        // Readable JSON, but the flag inside names another flag.
        write_raw(&store, "d", &Item::new("other", true, 1).serialize());

        let err = store.get("b").await.unwrap_err();
        assert!(
            matches!(&err, Error::Corrupt { name, source: ItemError::Json(_), .. } if name == "b"),
            "{err}"
        );
        assert!(err.to_string().contains("redb:"), "{err}");
        let err = store.get("d").await.unwrap_err();
        assert!(
            matches!(&err, Error::Corrupt { source: ItemError::Format { path, .. }, .. }
                if path == "feature_name"),
            "{err}"
        );

        let listed = store.list(None, 0).await.unwrap();
        let summary: Vec<String> = listed
            .iter()
            .map(|e| match e {
                Ok(v) => format!("ok {}", v.item.feature_name),
                Err(c) => format!("corrupt {}", c.key),
            })
            .collect();
        assert_eq!(summary, ["ok a", "corrupt b", "ok c", "corrupt d"]);
        // Paging counts corrupt entries like the others.
        let page = store.list(Some(1), 1).await.unwrap();
        assert!(matches!(&page[..], [Err(CorruptEntry { key, .. })] if key == "b"));

        // A corrupt flag can be overwritten or deleted.
        store.create("b", false, None).await.unwrap();
        assert!(store.get("b").await.unwrap().is_some());
        assert!(store.delete("d").await.unwrap());
    }

    async fn next(changes: &mut ChangeStream) -> Change {
        tokio::time::timeout(Duration::from_secs(10), changes.next())
            .await
            .expect("a change within 10 s")
            .expect("stream open")
    }

    #[tokio::test]
    async fn watchers_see_only_committed_changes() {
        let (_dir, store) = temp_store();
        let mut changes = store.watch().unwrap();
        store.create("a", true, None).await.unwrap();
        // A failed precondition and a delete of nothing commit nothing and report nothing.
        let err = store.put(&Item::new("a", false, 1), PutMode::Create).await;
        assert!(matches!(err, Err(Error::AlreadyExists { .. })));
        assert!(!store.delete("missing").await.unwrap());
        // A clone shares the database and the watchers.
        store.clone().delete("a").await.unwrap();
        let first = next(&mut changes).await;
        assert!(matches!(first, Change::Put { ref item, ref version }
            if item.feature_name == "a" && *version == Version::from_seq(1)));
        let second = next(&mut changes).await;
        assert_eq!(second, Change::Delete { name: "a".into() });
        assert!(
            tokio::time::timeout(Duration::from_millis(100), changes.next())
                .await
                .is_err()
        );
    }

    #[test]
    fn open_reports_a_missing_directory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("flipper.redb");
        let err = RedbStore::open(&path).unwrap_err();
        assert!(
            matches!(&err, Error::Io { action: "cannot open", path: p, source }
                if *p == path && source.kind() == io::ErrorKind::NotFound),
            "{err}"
        );
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn open_refuses_a_file_that_is_not_a_redb_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flags.json");
        let text = format!("[{}]\n", Item::new("a", true, 1).to_json());
        std::fs::write(&path, &text).unwrap();
        let err = RedbStore::open(&path).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidFile { path: p, .. } if *p == path),
            "{err}"
        );
        let message = err.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("not a redb database"), "{message}");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            text,
            "left untouched"
        );
    }

    #[test]
    fn open_refuses_a_redb_database_of_another_layout() {
        let dir = tempfile::tempdir().unwrap();
        let foreign = dir.path().join("foreign.redb");
        {
            let db = Database::create(&foreign).unwrap();
            let txn = db.begin_write().unwrap();
            let table: TableDefinition<'_, u64, u64> = TableDefinition::new("flags");
            txn.open_table(table).unwrap().insert(1, 2).unwrap();
            txn.commit().unwrap();
        }
        let err = RedbStore::open(&foreign).unwrap_err();
        assert!(matches!(err, Error::InvalidFile { .. }), "{err}");
        assert!(err.to_string().contains("not a flipper database"), "{err}");

        let newer = dir.path().join("newer.redb");
        drop(RedbStore::open(&newer).unwrap());
        {
            let db = Database::create(&newer).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(META)
                .unwrap()
                .insert(SCHEMA_KEY, SCHEMA + 1)
                .unwrap();
            txn.commit().unwrap();
        }
        let err = RedbStore::open(&newer).unwrap_err();
        assert!(err.to_string().contains("newer flipper"), "{err}");
    }

    /// Two stores on one file in one process: the second open fails clearly; clones share.
    #[tokio::test]
    async fn a_second_open_in_this_process_fails_clearly() {
        let (dir, store) = temp_store();
        let path = dir.path().join("flipper.redb");
        store.create("a", true, None).await.unwrap();
        let err = RedbStore::open(&path).unwrap_err();
        assert!(
            matches!(&err, Error::Io { action: "cannot lock", path: p, source }
                if *p == path && source.kind() == io::ErrorKind::WouldBlock),
            "{err}"
        );
        let message = err.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("open in another process"), "{message}");

        // The first store is unaffected, and a clone shares it.
        let clone = store.clone();
        clone.set("a", false).await.unwrap();
        assert!(!store.get("a").await.unwrap().unwrap().item.switched_on());

        // Once every clone is gone, the file opens again, with its flags.
        drop((store, clone));
        let store = RedbStore::open(&path).unwrap();
        assert!(store.get("a").await.unwrap().is_some());
    }

    const HOLD_VAR: &str = "FLIPPER_REDB_TEST_HOLD";

    /// Another process holding the file open locks it; its death releases the lock.
    #[test]
    fn a_file_open_in_another_process_is_refused() {
        if let Some(path) = std::env::var_os(HOLD_VAR) {
            // The child: open, say so, hold the file until stdin closes.
            let _store = RedbStore::open(PathBuf::from(path)).unwrap();
            println!("{MARK}open");
            let _ = io::stdin().lines().count();
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flipper.redb");
        let mut child = spawn_child("a_file_open_in_another_process_is_refused", HOLD_VAR, &path);
        let lines = child_messages(&mut child);
        loop {
            let line = lines
                .recv_timeout(Duration::from_secs(60))
                .expect("the child opens the database");
            if line == "open" {
                break;
            }
        }
        let err = RedbStore::open(&path).unwrap_err();
        assert!(
            matches!(&err, Error::Io { action: "cannot lock", source, .. }
                if source.kind() == io::ErrorKind::WouldBlock),
            "{err}"
        );
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
        drop(child.stdin.take());
        assert!(child.wait().unwrap().success());
        RedbStore::open(&path).expect("the lock died with the child");
    }

    const CRASH_VAR: &str = "FLIPPER_REDB_TEST_CRASH";
    /// How many acknowledged writes the parent waits for before killing the writer.
    const ACKED_BEFORE_KILL: usize = 200;

    fn crash_item(i: u64) -> Item {
        let mut item = Item::new(
            format!("f{i}"),
            i.is_multiple_of(2),
            1_700_000_000 + i as i64,
        );
        item.meta.client_data = [
            ("i", flipper_core::Value::from(i as i64)),
            (
                "pad",
                flipper_core::Value::from("é".repeat(64 + (i % 200) as usize)),
            ),
        ]
        .into_iter()
        .collect();
        item
    }

    /// Acknowledged writes survive SIGKILL of the writer at an arbitrary point.
    #[test]
    fn acknowledged_writes_survive_sigkill() {
        if let Some(path) = std::env::var_os(CRASH_VAR) {
            // The child: write f0, f1, ... and acknowledge each after `put` returned Ok, until
            // killed (or, should the parent vanish, a bound or a closed stdout stops it).
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            runtime.block_on(async {
                let store = RedbStore::open(PathBuf::from(path)).unwrap();
                let mut out = io::stdout();
                for i in 0..100_000 {
                    store.put(&crash_item(i), PutMode::Overwrite).await.unwrap();
                    if writeln!(out, "{MARK}ack f{i}")
                        .and_then(|()| out.flush())
                        .is_err()
                    {
                        return;
                    }
                }
            });
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flipper.redb");
        let mut child = spawn_child("acknowledged_writes_survive_sigkill", CRASH_VAR, &path);
        let lines = child_messages(&mut child);
        let mut acked = Vec::new();
        while acked.len() < ACKED_BEFORE_KILL {
            let line = lines
                .recv_timeout(Duration::from_secs(60))
                .expect("the child acknowledges writes");
            if let Some(name) = line.strip_prefix("ack ") {
                acked.push(name.to_owned());
            }
        }
        // A random pause lands the kill at a different point of a write each run.
        std::thread::sleep(Duration::from_micros(fastrand::u64(0..3_000)));
        child.kill().unwrap(); // SIGKILL: no destructor, no flush, no unlock but the kernel's.
        let status = child.wait().unwrap();
        assert!(!status.success(), "killed, not finished: {status}");
        // Acknowledgements that were in the pipe when the child died count too.
        while let Ok(line) = lines.recv_timeout(Duration::from_secs(5)) {
            if let Some(name) = line.strip_prefix("ack ") {
                acked.push(name.to_owned());
            }
        }

        let store = RedbStore::open(&path).expect("the database reopens after a crash");
        for (i, name) in acked.iter().enumerate() {
            assert_eq!(*name, format!("f{i}"));
            let expected = String::from_utf8(crash_item(i as u64).serialize()).unwrap();
            let raw =
                read_raw(&store.inner.db, name).map(|b| String::from_utf8_lossy(&b).into_owned());
            assert_eq!(raw, Some(expected), "{name} lost or damaged");
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let stored = runtime.block_on(async {
            let listed = store.list(None, 0).await.unwrap();
            assert!(listed.iter().all(Result::is_ok), "no corrupt entries");
            // At most the write in flight when the child died is there unacknowledged.
            assert!(
                (acked.len()..=acked.len() + 1).contains(&listed.len()),
                "{} acked, {} stored",
                acked.len(),
                listed.len()
            );
            let last = format!("f{}", acked.len() - 1);
            assert_eq!(
                store.get(&last).await.unwrap().unwrap().item.serialize(),
                crash_item(acked.len() as u64 - 1).serialize()
            );
            listed.len()
        });
        eprintln!(
            "crash test: {} writes acknowledged before SIGKILL, all present; {stored} stored",
            acked.len()
        );
    }
}
