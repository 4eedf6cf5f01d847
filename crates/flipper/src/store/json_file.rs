//! [`JsonFileStore`]: every flag in one JSON file (`json:PATH`), in the export format.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use flipper_core::Item;
use tokio::sync::broadcast;

use super::memory::WATCH_BUFFER;
use super::{
    Capabilities, Change, ChangeStream, ListEntry, PutMode, Store, Version, Versioned, page,
};
use crate::error::{Error, Result};
use crate::export;

/// Every flag in one JSON file: a JSON array of flags in flipper-client's stored form, the
/// format of `flipper flags export` (one flag per line, sorted by name).
///
/// * A missing file is an empty store; the first write creates it.
/// * Writes are atomic and durable: under an exclusive lock on `PATH.lock` (shared by every
///   process using the file), the file is re-read, changed, written to a temporary file in the
///   same directory, fsynced and renamed over the original, and the directory is fsynced.
///   Readers see the old or the new file, never a mix.
/// * A hand-edited file with a mistake is reported with its line, and is never overwritten:
///   every write fails until it is fixed.
/// * Versions are digests of each flag's stored bytes, so compare-and-swap also detects
///   changes made by other processes or by hand.
/// * Reads re-parse the file only when it changed (by inode, size and modification time).
#[derive(Clone)]
pub struct JsonFileStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    lock_path: PathBuf,
    cache: Mutex<Option<(Stamp, Arc<Flags>)>>,
    changes: broadcast::Sender<Change>,
}

type Flags = BTreeMap<String, (Item, Version)>;

/// What identifies one version of the file on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime_ns: i128,
}

impl JsonFileStore {
    /// A store on `path` (which need not exist yet).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        let mut lock_name = path.file_name().unwrap_or_default().to_os_string();
        lock_name.push(".lock");
        let lock_path = path.with_file_name(lock_name);
        Self {
            inner: Arc::new(Inner {
                path,
                lock_path,
                cache: Mutex::new(None),
                changes: broadcast::channel(WATCH_BUFFER).0,
            }),
        }
    }

    /// The file.
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

impl Inner {
    fn io(&self, action: &'static str, path: &Path, source: io::Error) -> Error {
        Error::Io {
            action,
            path: path.to_owned(),
            source,
        }
    }

    /// The current flags, from the cache when the file has not changed.
    fn load(&self) -> Result<Arc<Flags>> {
        let stamp = match fs::metadata(&self.path) {
            Ok(m) => Some(Stamp {
                dev: m.dev(),
                ino: m.ino(),
                len: m.len(),
                mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(self.io(Error::READ, &self.path, e)),
        };
        let Some(stamp) = stamp else {
            return Ok(Arc::new(Flags::new()));
        };
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((cached, flags)) = cache.as_ref()
            && *cached == stamp
        {
            return Ok(Arc::clone(flags));
        }
        let bytes = fs::read(&self.path).map_err(|e| self.io(Error::READ, &self.path, e))?;
        let text = std::str::from_utf8(&bytes).map_err(|e| Error::InvalidFile {
            path: self.path.clone(),
            message: format!("not UTF-8 (at byte {})", e.valid_up_to()),
        })?;
        let flags: Flags = export::parse(text)
            .map_err(|message| Error::InvalidFile {
                path: self.path.clone(),
                message,
            })?
            .into_iter()
            .map(|(name, item)| {
                let version = Version::of_bytes(&item.serialize());
                (name, (item, version))
            })
            .collect();
        let flags = Arc::new(flags);
        *cache = Some((stamp, Arc::clone(&flags)));
        Ok(flags)
    }

    /// Runs `change` on the current flags under the cross-process lock and writes the result
    /// atomically if it returns `Some`.
    fn modify<T>(&self, change: impl FnOnce(&mut Flags) -> Result<Option<T>>) -> Result<Option<T>> {
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock_path)
            .map_err(|e| self.io("cannot open lock file", &self.lock_path, e))?;
        lock.lock()
            .map_err(|e| self.io("cannot lock", &self.lock_path, e))?;
        let mut flags = (*self.load()?).clone();
        let Some(out) = change(&mut flags)? else {
            return Ok(None);
        };
        self.write_atomically(&export::render(flags.values().map(|(item, _)| item)))?;
        // The lock is released when `lock` drops, after the rename.
        drop(lock);
        Ok(Some(out))
    }

    fn write_atomically(&self, text: &str) -> Result<()> {
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        };
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(self.path.file_name().unwrap_or_default());
        tmp_name.push(format!(".tmp-{}-{}", std::process::id(), fastrand::u64(..)));
        let tmp = dir.join(tmp_name);
        let result = (|| {
            let mut f = File::create(&tmp).map_err(|e| self.io("cannot create", &tmp, e))?;
            f.write_all(text.as_bytes())
                .and_then(|()| f.sync_all())
                .map_err(|e| self.io("cannot write", &tmp, e))?;
            fs::rename(&tmp, &self.path).map_err(|e| self.io("cannot replace", &self.path, e))?;
            File::open(&dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| self.io("cannot sync directory", &dir, e))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }
}

impl fmt::Debug for JsonFileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonFileStore")
            .field("path", &self.inner.path)
            .finish()
    }
}

impl fmt::Display for JsonFileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "json:{}", self.inner.path.display())
    }
}

#[async_trait]
impl Store for JsonFileStore {
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
            .with_conditional_put(true)
            .with_watch(true)
            .with_atomic_batch(true)
    }

    async fn get(&self, name: &str) -> Result<Option<Versioned>> {
        let name = name.to_owned();
        self.blocking(move |inner| {
            Ok(inner.load()?.get(&name).map(|(item, version)| Versioned {
                item: item.clone(),
                version: version.clone(),
            }))
        })
        .await
    }

    async fn put(&self, item: &Item, mode: PutMode) -> Result<Version> {
        let item = item.clone();
        let version = self
            .blocking(move |inner| {
                inner.modify(|flags| {
                    let name = &item.feature_name;
                    match (&mode, flags.get(name)) {
                        (PutMode::Create, Some(_)) => {
                            return Err(Error::AlreadyExists { name: name.clone() });
                        }
                        (PutMode::Update(expected), current)
                            if current.map(|(_, v)| v) != Some(expected) =>
                        {
                            return Err(Error::Conflict { name: name.clone() });
                        }
                        _ => {}
                    }
                    let version = Version::of_bytes(&item.serialize());
                    flags.insert(name.clone(), (item.clone(), version.clone()));
                    let change = Change::Put {
                        item: item.clone(),
                        version: version.clone(),
                    };
                    Ok(Some((version, change)))
                })
            })
            .await?
            .map(|(version, change)| {
                let _ = self.inner.changes.send(change);
                version
            });
        Ok(version.expect("put always writes"))
    }

    async fn put_many(&self, items: &[Item]) -> Result<Vec<Version>> {
        let items = items.to_vec();
        let written = self
            .blocking(move |inner| {
                inner.modify(|flags| {
                    let mut out = Vec::with_capacity(items.len());
                    for item in items {
                        let version = Version::of_bytes(&item.serialize());
                        flags.insert(item.feature_name.clone(), (item.clone(), version.clone()));
                        out.push((version.clone(), Change::Put { item, version }));
                    }
                    Ok(Some(out))
                })
            })
            .await?
            .unwrap_or_default();
        Ok(written
            .into_iter()
            .map(|(version, change)| {
                let _ = self.inner.changes.send(change);
                version
            })
            .collect())
    }

    async fn delete(&self, name: &str) -> Result<bool> {
        let owned = name.to_owned();
        let existed = self
            .blocking(move |inner| inner.modify(|flags| Ok(flags.remove(&owned).map(|_| ()))))
            .await?
            .is_some();
        if existed {
            let _ = self.inner.changes.send(Change::Delete {
                name: name.to_owned(),
            });
        }
        Ok(existed)
    }

    async fn list(&self, limit: Option<usize>, offset: usize) -> Result<Vec<ListEntry>> {
        self.blocking(move |inner| {
            let flags = inner.load()?;
            Ok(page(
                flags.values().map(|(item, version)| {
                    Ok(Versioned {
                        item: item.clone(),
                        version: version.clone(),
                    })
                }),
                limit,
                offset,
            ))
        })
        .await
    }

    fn watch(&self) -> Option<ChangeStream> {
        Some(super::broadcast_stream(self.inner.changes.subscribe()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreExt;

    fn temp_store() -> (tempfile::TempDir, JsonFileStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = JsonFileStore::new(dir.path().join("flags.json"));
        (dir, store)
    }

    mod conformance {
        // A fresh file per case, in a temp dir removed when the case ends.
        crate::store_conformance_tests!(guarded: super::temp_store());
    }

    #[tokio::test]
    async fn file_holds_the_export_format() {
        let (_dir, store) = temp_store();
        store.create_at("b", true, None, 1).await.unwrap();
        store.create_at("a", false, None, 2).await.unwrap();
        let text = std::fs::read_to_string(store.path()).unwrap();
        assert_eq!(
            text,
            format!(
                "[\n{},\n{}\n]\n",
                Item::new("a", false, 2).to_json(),
                Item::new("b", true, 1).to_json()
            )
        );
    }

    #[tokio::test]
    async fn a_broken_file_is_reported_and_never_overwritten() {
        let (_dir, store) = temp_store();
        let broken = "[\n{\"feature_name\": \"a\",\n \"is_enabled\": tru}\n]\n";
        std::fs::write(store.path(), broken).unwrap();
        let err = store.get("a").await.unwrap_err().to_string();
        assert!(err.contains("line 3 column 16"), "{err}");
        let err = store.set("a", true).await.unwrap_err();
        assert!(matches!(err, Error::InvalidFile { .. }), "{err}");
        assert_eq!(std::fs::read_to_string(store.path()).unwrap(), broken);
        // A direct write attempt fails the same way and leaves no temporary file behind.
        let err = store
            .put(&Item::new("b", true, 1), PutMode::Overwrite)
            .await;
        assert!(matches!(err, Err(Error::InvalidFile { .. })));
        assert_eq!(std::fs::read_to_string(store.path()).unwrap(), broken);
        let names: Vec<String> = std::fs::read_dir(_dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.contains(".tmp-")), "{names:?}");
    }

    #[tokio::test]
    async fn hand_edits_are_seen_and_change_the_version() {
        let (_dir, store) = temp_store();
        let v1 = store.create_at("a", false, None, 1).await.unwrap().version;
        std::fs::write(
            store.path(),
            format!("[{}]", Item::new("a", true, 1).to_json()),
        )
        .unwrap();
        let got = store.get("a").await.unwrap().unwrap();
        assert!(got.item.switched_on());
        assert_ne!(got.version, v1);
        let err = store
            .put(&Item::new("a", false, 3), PutMode::Update(v1))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Conflict { .. }));
    }

    #[tokio::test]
    async fn two_stores_on_one_file_never_lose_updates() {
        let (_dir, a) = temp_store();
        let b = JsonFileStore::new(a.path());
        a.create_at("f", true, None, 1).await.unwrap();
        let write = |store: JsonFileStore, prefix: &'static str| {
            tokio::spawn(async move {
                for i in 0..10 {
                    store
                        .update("f", |item| {
                            if let flipper_core::Value::Object(o) = &mut item.meta.client_data {
                                o.insert(format!("{prefix}{i}"), i.into());
                            }
                            Ok(())
                        })
                        .await
                        .unwrap();
                }
            })
        };
        let (x, y) = (write(a.clone(), "a"), write(b.clone(), "b"));
        x.await.unwrap();
        y.await.unwrap();
        let got = a.get("f").await.unwrap().unwrap().item;
        assert_eq!(got.meta.client_data.as_object().unwrap().len(), 20);
    }
}
