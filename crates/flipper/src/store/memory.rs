//! [`MemoryStore`]: flags in this process's memory.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;

use async_trait::async_trait;
use flipper_core::Item;
use tokio::sync::broadcast;

use super::{
    Capabilities, Change, ChangeStream, ListEntry, PutMode, Store, Version, Versioned, page,
};
use crate::error::{Error, Result};

/// How many changes a slow watcher may fall behind before it gets [`Change::Resync`].
pub(crate) const WATCH_BUFFER: usize = 1024;

/// Flags in memory, listed in name order (code point order, as flipper-client's
/// `MemoryFeatureFlagStore`).
///
/// Unlike flipper-client's, it stores copies: changing a value after handing it to the store, or
/// after reading it, never changes the stored flag.
///
/// ```
/// # tokio_test_block_on(async {
/// use flipper::store::{MemoryStore, Store, StoreExt};
/// let store = MemoryStore::new();
/// store.create("beta", true, None).await.unwrap();
/// assert!(store.get("beta").await.unwrap().is_some());
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
pub struct MemoryStore {
    state: Mutex<State>,
    changes: broadcast::Sender<Change>,
}

struct State {
    flags: BTreeMap<String, (Item, u64)>,
    next_version: u64,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self {
            state: Mutex::new(State {
                flags: BTreeMap::new(),
                next_version: 1,
            }),
            changes: broadcast::channel(WATCH_BUFFER).0,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-written map (every mutation is a
        // single insert or remove), so a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("flags", &self.state().flags.len())
            .finish()
    }
}

impl fmt::Display for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("memory:")
    }
}

#[async_trait]
impl Store for MemoryStore {
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
            .with_conditional_put(true)
            .with_watch(true)
            .with_watch_external(true)
            .with_atomic_batch(true)
    }

    async fn get(&self, name: &str) -> Result<Option<Versioned>> {
        Ok(self.state().flags.get(name).map(|(item, v)| Versioned {
            item: item.clone(),
            version: Version::from_seq(*v),
        }))
    }

    async fn put(&self, item: &Item, mode: PutMode) -> Result<Version> {
        let mut state = self.state();
        let name = &item.feature_name;
        let current = state.flags.get(name).map(|(_, v)| *v);
        match (&mode, current) {
            (PutMode::Create, Some(_)) => {
                return Err(Error::AlreadyExists { name: name.clone() });
            }
            (PutMode::Update(expected), current)
                if current.map(Version::from_seq).as_ref() != Some(expected) =>
            {
                return Err(Error::Conflict { name: name.clone() });
            }
            _ => {}
        }
        let seq = state.next_version;
        state.next_version += 1;
        state.flags.insert(name.clone(), (item.clone(), seq));
        let version = Version::from_seq(seq);
        // No receivers is fine: nobody is watching.
        let _ = self.changes.send(Change::Put {
            item: item.clone(),
            version: version.clone(),
        });
        Ok(version)
    }

    async fn put_many(&self, items: &[Item]) -> Result<Vec<Version>> {
        let mut state = self.state();
        let mut versions = Vec::with_capacity(items.len());
        for item in items {
            let seq = state.next_version;
            state.next_version += 1;
            state
                .flags
                .insert(item.feature_name.clone(), (item.clone(), seq));
            let version = Version::from_seq(seq);
            let _ = self.changes.send(Change::Put {
                item: item.clone(),
                version: version.clone(),
            });
            versions.push(version);
        }
        Ok(versions)
    }

    async fn delete(&self, name: &str) -> Result<bool> {
        let mut state = self.state();
        let existed = state.flags.remove(name).is_some();
        if existed {
            let _ = self.changes.send(Change::Delete {
                name: name.to_owned(),
            });
        }
        Ok(existed)
    }

    async fn list(&self, limit: Option<usize>, offset: usize) -> Result<Vec<ListEntry>> {
        let state = self.state();
        Ok(page(
            state.flags.values().map(|(item, v)| {
                Ok(Versioned {
                    item: item.clone(),
                    version: Version::from_seq(*v),
                })
            }),
            limit,
            offset,
        ))
    }

    fn watch(&self) -> Option<ChangeStream> {
        Some(super::broadcast_stream(self.changes.subscribe()))
    }
}

#[cfg(test)]
mod tests {
    crate::store_conformance_tests!(super::MemoryStore::new());
}
