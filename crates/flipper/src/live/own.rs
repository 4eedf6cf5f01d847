//! Read your writes: the store behind [`LiveFlags::client`](super::LiveFlags::client). It is
//! the live flags' store, and each write that succeeds is applied to the live flags at once
//! (see the core's notes on pinning, which keep an older watched change from undoing it).

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use flipper_core::Item;
use flipper_core::eval::Env;

use super::core::Core;
use super::set::{Entry, Op};
use crate::error::{Error, Result};
use crate::store::{Capabilities, ChangeStream, ListEntry, PutMode, Store, Version, Versioned};

/// The live flags' store, applying this process's successful writes to the live flags.
pub(crate) struct WriteThrough {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) core: Arc<Core>,
}

#[async_trait]
impl Store for WriteThrough {
    fn capabilities(&self) -> Capabilities {
        self.store.capabilities()
    }

    async fn get(&self, name: &str) -> Result<Option<Versioned>> {
        self.store.get(name).await
    }

    async fn put(&self, item: &Item, mode: PutMode) -> Result<Version> {
        let mark = self.core.watch_mark();
        let version = self.store.put(item, mode).await?;
        self.core.apply_own(
            vec![Op::Put(Entry::new(item.clone(), Some(version.clone())))],
            mark,
        );
        Ok(version)
    }

    async fn put_many(&self, items: &[Item]) -> Result<Vec<Version>> {
        let mark = self.core.watch_mark();
        let versions = self.store.put_many(items).await?;
        let ops = items
            .iter()
            .zip(&versions)
            .map(|(item, version)| Op::Put(Entry::new(item.clone(), Some(version.clone()))))
            .collect();
        self.core.apply_own(ops, mark);
        Ok(versions)
    }

    async fn delete(&self, name: &str) -> Result<bool> {
        let mark = self.core.watch_mark();
        let existed = self.store.delete(name).await?;
        if existed {
            self.core.apply_own(vec![Op::Delete(name.to_owned())], mark);
        } else {
            // Already gone from the store: gone from here too.
            self.core.apply_read(name, None);
        }
        Ok(existed)
    }

    async fn list(&self, limit: Option<usize>, offset: usize) -> Result<Vec<ListEntry>> {
        self.store.list(limit, offset).await
    }

    fn counters(&self) -> Vec<crate::store::StoreCounter> {
        self.store.counters()
    }

    fn watch(&self) -> Option<ChangeStream> {
        self.store.watch()
    }
}

impl fmt::Debug for WriteThrough {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteThrough")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for WriteThrough {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.store, f)
    }
}

/// The live flags' [`Env`], shared with the client they hand out.
#[derive(Clone)]
pub(crate) struct SharedEnv(pub(crate) Arc<dyn Env + Send + Sync>);

impl Env for SharedEnv {
    fn now(&self) -> f64 {
        self.0.now()
    }
    fn random(&self) -> f64 {
        self.0.random()
    }
}

/// The "store" of a client of flags from a file: there is none.
#[derive(Debug)]
pub(crate) struct NoStore;

impl fmt::Display for NoStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("none (live flags from a file)")
    }
}

#[async_trait]
impl Store for NoStore {
    fn capabilities(&self) -> crate::store::Capabilities {
        crate::store::Capabilities::default()
    }
    async fn get(&self, _: &str) -> crate::Result<Option<crate::store::Versioned>> {
        Err(unsupported("get"))
    }
    async fn put(
        &self,
        _: &Item,
        _: crate::store::PutMode,
    ) -> crate::Result<crate::store::Version> {
        Err(unsupported("put"))
    }
    async fn put_many(&self, _: &[Item]) -> crate::Result<Vec<crate::store::Version>> {
        Err(unsupported("put_many"))
    }
    async fn delete(&self, _: &str) -> crate::Result<bool> {
        Err(unsupported("delete"))
    }
    async fn list(
        &self,
        _: Option<usize>,
        _: usize,
    ) -> crate::Result<Vec<crate::store::ListEntry>> {
        Err(unsupported("list"))
    }
    fn watch(&self) -> Option<crate::store::ChangeStream> {
        None
    }
}

fn unsupported(operation: &'static str) -> Error {
    Error::Unsupported {
        store: NoStore.to_string(),
        operation,
    }
}
