//! The service's methods over a [`Store`], as flipper-client's stores implement them: what a
//! [`ThriftServer`](super::ThriftServer) answers.

use std::future::Future;
use std::sync::Arc;

use flipper_core::{Item, json};
use thrift::protocol::{TInputProtocol, TOutputProtocol, TType};
use thrift::{ApplicationError, ApplicationErrorKind};
use tokio::runtime::Handle;

use super::convert::{item_to_thrift, meta_from_thrift};
use super::generated::{self as t, TFeatureFlagStoreProcessFunctions as Process};
use super::list;
use crate::error::Error;
use crate::store::ops::unix_now;
use crate::store::{PutMode, Store, StoreExt};

/// The service over a store; calls block on the store's runtime.
pub(super) struct Handler {
    store: Arc<dyn Store>,
    runtime: Handle,
}

/// What a connection does after a message.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Next {
    /// Read the next call.
    Continue,
    /// Close: the reply was an exception after which the input cannot be trusted (a message
    /// that could not be read whole, an unknown method).
    Close,
}

impl Handler {
    pub(super) fn new(store: Arc<dyn Store>, runtime: Handle) -> Self {
        Self { store, runtime }
    }

    /// Reads one call, answers it (the reply is flushed whole) and says what to do next.
    ///
    /// # Errors
    /// When the call cannot be read or the reply not written: the connection is done.
    pub(super) fn process(
        &self,
        i: &mut dyn TInputProtocol,
        o: &mut dyn TOutputProtocol,
    ) -> thrift::Result<Next> {
        let header = i.read_message_begin()?;
        let sequence = header.sequence_number;
        let result = match header.name.as_str() {
            "Create" => Process::process_create(self, sequence, i, o),
            "Get" => Process::process_get(self, sequence, i, o),
            "Set" => Process::process_set(self, sequence, i, o),
            "Delete" => Process::process_delete(self, sequence, i, o),
            "SetMeta" => Process::process_set_meta(self, sequence, i, o),
            list::METHOD => list::read_args(i).and_then(|(limit, offset)| {
                list::write_reply(o, sequence, self.list(limit, offset))
            }),
            other => {
                let name = other.to_owned();
                i.skip(TType::Struct)
                    .and_then(|()| i.read_message_end())
                    .and_then(|()| {
                        Err(thrift::Error::Application(ApplicationError::new(
                            ApplicationErrorKind::UnknownMethod,
                            format!("unknown method {name}"),
                        )))
                    })
            }
        };
        let next = if result.is_ok() {
            Next::Continue
        } else {
            Next::Close
        };
        thrift::server::handle_process_result(&header, result, o)?;
        Ok(next)
    }

    fn block_on<T>(&self, f: impl Future<Output = T>) -> T {
        self.runtime.block_on(f)
    }

    /// `List(limit, offset)`: a missing limit is none, a missing offset 0.
    fn list(
        &self,
        limit: Option<i64>,
        offset: Option<i64>,
    ) -> Result<Vec<t::FeatureFlagStoreItem>, t::FlipperException> {
        let count = |what: &str, n: i64| {
            usize::try_from(n)
                .map_err(|_| exception(None, format!("{what} must not be negative, not {n}")))
        };
        let limit = limit.map(|n| count("limit", n)).transpose()?;
        let offset = offset.map_or(Ok(0), |n| count("offset", n))?;
        let entries = self
            .block_on(self.store.list(limit, offset))
            .map_err(|e| self.failed("List", &e))?;
        Ok(entries
            .into_iter()
            .filter_map(|entry| match entry {
                Ok(flag) => Some(item_to_thrift(&flag.item)),
                Err(corrupt) => {
                    tracing::warn!(store = %self.store, flag = %corrupt.key, error = %corrupt.error, "an unreadable flag is left out of a Thrift listing");
                    None
                }
            })
            .collect())
    }

    /// The store's error as the service's: a missing flag is `NOT_FOUND` (what flipper-client
    /// expects), anything else an exception without a code whose message says what failed.
    fn failed(&self, method: &str, error: &Error) -> t::FlipperException {
        match error {
            Error::FlagDoesNotExist { name } => not_found(name),
            Error::Backend { .. } => {
                tracing::warn!(store = %self.store, method, %error, "a Thrift call failed in the store");
                exception(None, error.to_string())
            }
            _ => exception(None, error.to_string()),
        }
    }
}

fn not_found(name: &str) -> t::FlipperException {
    exception(
        Some(t::ErrorCode::NOT_FOUND),
        format!("Feature {name} does not exist"),
    )
}

fn exception(code: Option<t::ErrorCode>, message: String) -> t::FlipperException {
    t::FlipperException {
        code: code.map(Box::new),
        message: Some(message),
    }
}

fn user(e: t::FlipperException) -> thrift::Error {
    thrift::Error::User(Box::new(e))
}

impl t::FeatureFlagStoreSyncHandler for Handler {
    fn handle_create(
        &self,
        feature_name: String,
        is_enabled: bool,
        client_data: String,
    ) -> thrift::Result<t::FeatureFlagStoreItem> {
        let data = json::parse(&client_data)
            .map_err(|e| user(exception(None, format!("client_data: invalid JSON: {e}"))))?;
        let mut item = Item::new(feature_name, is_enabled, unix_now());
        // `client_data or {}`.
        if data.is_truthy() {
            item.meta.client_data = data;
        }
        self.block_on(self.store.put(&item, PutMode::Overwrite))
            .map_err(|e| user(self.failed("Create", &e)))?;
        Ok(item_to_thrift(&item))
    }

    fn handle_get(&self, feature_name: String) -> thrift::Result<t::FeatureFlagStoreItem> {
        match self.block_on(self.store.get(&feature_name)) {
            Ok(Some(flag)) => Ok(item_to_thrift(&flag.item)),
            Ok(None) => Err(user(not_found(&feature_name))),
            Err(e) => Err(user(self.failed("Get", &e))),
        }
    }

    fn handle_set(&self, feature_name: String, is_enabled: bool) -> thrift::Result<()> {
        self.block_on(self.store.set(&feature_name, is_enabled))
            .map(drop)
            .map_err(|e| user(self.failed("Set", &e)))
    }

    fn handle_delete(&self, feature_name: String) -> thrift::Result<()> {
        self.block_on(self.store.delete(&feature_name))
            .map(drop)
            .map_err(|e| user(self.failed("Delete", &e)))
    }

    fn handle_list(&self, limit: i64, offset: i64) -> thrift::Result<Vec<t::FeatureFlagStoreItem>> {
        self.list(Some(limit), Some(offset)).map_err(user)
    }

    fn handle_set_meta(
        &self,
        feature_name: String,
        meta: t::FeatureFlagStoreMeta,
    ) -> thrift::Result<()> {
        // Checked whole before anything is written.
        let meta = meta_from_thrift(meta)
            .map_err(|e| user(exception(None, format!("cannot store this meta: {e}"))))?;
        self.block_on(self.store.set_meta(&feature_name, meta))
            .map(drop)
            .map_err(|e| user(self.failed("SetMeta", &e)))
    }
}
