//! [`StoreExt`]: flipper-client's store API as compare-and-swap loops over [`Store`].

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use flipper_core::{Item, Meta, Object, Value};

use super::{ListEntry, PutMode, Store, Versioned};
use crate::error::{Error, Result};

/// How many times a read-modify-write is tried before [`Error::TooManyConflicts`].
pub const MAX_CAS_ATTEMPTS: u32 = 64;

/// flipper-client's store API (`create`, `set`, `set_meta`, ...), for every [`Store`].
///
/// Each read-modify-write reads the flag with its version and writes with
/// [`PutMode::Update`], retrying on conflict, so two writers changing different parts of one
/// flag never lose each other's change (flipper-client's stores do lose them). On a store
/// without conditional writes it falls back to flipper-client's plain overwrite.
pub trait StoreExt: Store {
    /// Creates (or **overwrites**, as flipper-client does) a flag with the current time as its
    /// `created_date`.
    fn create(
        &self,
        name: &str,
        is_enabled: bool,
        client_data: Option<Object>,
    ) -> impl Future<Output = Result<Versioned>> + Send {
        self.create_at(name, is_enabled, client_data, unix_now())
    }

    /// [`StoreExt::create`] with an explicit `created_date` (Unix seconds).
    fn create_at(
        &self,
        name: &str,
        is_enabled: bool,
        client_data: Option<Object>,
        created_date: i64,
    ) -> impl Future<Output = Result<Versioned>> + Send {
        let mut item = Item::new(name, is_enabled, created_date);
        if let Some(data) = client_data {
            // `client_data or {}`: an empty object stays empty.
            item.meta.client_data = Value::from(data);
        }
        async move {
            let version = self.put(&item, PutMode::Overwrite).await?;
            Ok(Versioned { item, version })
        }
    }

    /// Switches a flag on or off, creating it (with no client data) if it does not exist, as
    /// flipper-client's `store.set` does.
    fn set(&self, name: &str, is_enabled: bool) -> impl Future<Output = Result<Versioned>> + Send {
        async move {
            let cas = self.capabilities().conditional_put;
            for attempt in 0..MAX_CAS_ATTEMPTS {
                let (item, mode) = match self.get(name).await? {
                    Some(cur) => {
                        let mut item = cur.item;
                        item.is_enabled = Value::Bool(is_enabled);
                        (item, cas_mode(cas, PutMode::Update(cur.version)))
                    }
                    None => (
                        Item::new(name, is_enabled, unix_now()),
                        cas_mode(cas, PutMode::Create),
                    ),
                };
                match self.put(&item, mode).await {
                    Ok(version) => return Ok(Versioned { item, version }),
                    Err(Error::Conflict { .. } | Error::AlreadyExists { .. }) => {
                        backoff(attempt).await;
                    }
                    Err(e) => return Err(e),
                }
            }
            Err(Error::TooManyConflicts {
                name: name.to_owned(),
                attempts: MAX_CAS_ATTEMPTS,
            })
        }
    }

    /// Replaces a flag's metadata wholesale (including `created_date`), keeping `is_enabled`.
    ///
    /// # Errors
    /// [`Error::FlagDoesNotExist`] when the flag is missing.
    fn set_meta(&self, name: &str, meta: Meta) -> impl Future<Output = Result<Versioned>> + Send {
        self.update(name, move |item| {
            item.meta = meta.clone();
            Ok(())
        })
    }

    /// Reads a flag, applies `change`, and writes it back if nobody wrote in between; retries
    /// otherwise (re-running `change` on the fresh flag).
    ///
    /// # Errors
    /// [`Error::FlagDoesNotExist`] when the flag is missing, `change`'s own error,
    /// [`Error::InvalidFlag`] when the result cannot be stored, [`Error::TooManyConflicts`].
    fn update<F>(&self, name: &str, change: F) -> impl Future<Output = Result<Versioned>> + Send
    where
        F: FnMut(&mut Item) -> Result<()> + Send,
    {
        async move {
            let current = self.get(name).await?;
            self.update_from(name, current, change).await
        }
    }

    /// [`StoreExt::update`] starting from a read the caller already made (`current`, `None`
    /// when the flag was missing), so a client that checked the flag exists spends no second
    /// read: one read and one conditional write when nobody writes in between, one more of
    /// each per conflict.
    ///
    /// # Errors
    /// As [`StoreExt::update`].
    fn update_from<F>(
        &self,
        name: &str,
        current: Option<Versioned>,
        mut change: F,
    ) -> impl Future<Output = Result<Versioned>> + Send
    where
        F: FnMut(&mut Item) -> Result<()> + Send,
    {
        async move {
            let cas = self.capabilities().conditional_put;
            let mut current = current;
            for attempt in 0..MAX_CAS_ATTEMPTS {
                if attempt > 0 {
                    current = self.get(name).await?;
                }
                let Some(cur) = current.take() else {
                    return Err(Error::FlagDoesNotExist {
                        name: name.to_owned(),
                    });
                };
                let mut item = cur.item;
                change(&mut item)?;
                item.validate().map_err(|e| Error::InvalidFlag {
                    name: name.to_owned(),
                    message: e.to_string(),
                })?;
                match self
                    .put(&item, cas_mode(cas, PutMode::Update(cur.version)))
                    .await
                {
                    Ok(version) => return Ok(Versioned { item, version }),
                    Err(Error::Conflict { .. }) => backoff(attempt).await,
                    Err(e) => return Err(e),
                }
            }
            Err(Error::TooManyConflicts {
                name: name.to_owned(),
                attempts: MAX_CAS_ATTEMPTS,
            })
        }
    }

    /// The readable flags of a listing, failing on the first unreadable one.
    ///
    /// # Errors
    /// [`Error::Corrupt`] naming the first unreadable entry; backend errors.
    fn items(
        &self,
        limit: Option<usize>,
        offset: usize,
    ) -> impl Future<Output = Result<Vec<Item>>> + Send {
        async move {
            self.list(limit, offset)
                .await?
                .into_iter()
                .map(|e: ListEntry| {
                    e.map(|v| v.item).map_err(|c| Error::Corrupt {
                        store: self.to_string(),
                        name: c.key,
                        source: c.error,
                    })
                })
                .collect()
        }
    }
}

impl<S: Store + ?Sized> StoreExt for S {}

fn cas_mode(cas: bool, mode: PutMode) -> PutMode {
    if cas { mode } else { PutMode::Overwrite }
}

/// Yields at first, then sleeps a short random time growing with `attempt`.
async fn backoff(attempt: u32) {
    if attempt < 2 {
        tokio::task::yield_now().await;
    } else {
        let cap_us = 50u64 << attempt.min(10);
        tokio::time::sleep(Duration::from_micros(fastrand::u64(0..cap_us))).await;
    }
}

/// Now as whole Unix seconds, as flipper-client's `int(datetime.now().timestamp())`.
pub(crate) fn unix_now() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        // Before 1970: truncate toward zero, as Python's int() does.
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}
