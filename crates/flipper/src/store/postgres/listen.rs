//! The PostgreSQL store's watch: a connection of its own (outside the pool) that `LISTEN`s on
//! the trigger's channel, followed by a background task that reconnects with backoff.
//!
//! Two tasks per stream: the *driver* owns the connection and reads every message at once (a
//! listener that stops reading makes the server's notification queue grow for every session),
//! handing notifications over through a bounded buffer ([`inbox`](super::inbox)); when the
//! buffer is full they are dropped and the *follower* turns the loss into one
//! [`Change::Resync`]. The follower decodes notifications into changes and sends them to the
//! stream, which may take its time.

use std::future::poll_fn;
use std::time::Duration;

use flipper_core::Item;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_postgres::tls::NoTlsStream;
use tokio_postgres::{AsyncMessage, Client, Connection, NoTls, Notification, Socket};

use super::inbox::{self, Outbox, Pushed, Received};
use super::notify::{self, What};
use super::ops::describe;
use super::{PostgresStore, sql};
use crate::error::{Error, Result};
use crate::store::{Change, ChangeStream, Store, Version};

/// The first reconnection delay; it doubles with each failure.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// The longest reconnection delay.
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How often the listening connection is checked with a query (a dead peer may stay silent).
const HEARTBEAT: Duration = Duration::from_secs(30);
/// How long a setup query or a heartbeat may take.
const QUERY_TIMEOUT: Duration = Duration::from_secs(10);
/// Notifications read but not yet handled; beyond that they are dropped for a resync. A
/// transaction's notifications arrive in one burst (an import of thousands of flags), faster
/// than they are decoded, so this is larger than the stream's own buffer.
const NOTIFY_BUFFER: usize = 4096;

/// Starts following the table's changes; `None` outside a Tokio runtime.
pub(super) fn start(store: &PostgresStore) -> Option<ChangeStream> {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::warn!(store = %store, "PostgresStore::watch called outside a Tokio runtime");
        return None;
    };
    let (tx, rx) = mpsc::channel(crate::store::memory::WATCH_BUFFER);
    let follower = Follower {
        store: store.clone(),
        tx,
        failures: 0,
        connecting: Some(store.inner.watchers.connecting()),
    };
    runtime.spawn(follower.run());
    Some(crate::store::gate::channel_stream(rx))
}

/// The driver task, aborted when the follower lets go of it.
struct Driver(JoinHandle<Result<(), tokio_postgres::Error>>);

impl Drop for Driver {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Why one connection stopped.
enum Stop {
    /// The watcher dropped its stream: stop for good.
    Closed,
    Failed(Error),
}

struct Follower {
    store: PostgresStore,
    tx: mpsc::Sender<Change>,
    /// Failed connections in a row.
    failures: u32,
    /// Held until the first connection listens (or fails).
    connecting: Option<crate::store::gate::Connecting>,
}

impl Follower {
    async fn run(mut self) {
        let closed = self.tx.clone();
        loop {
            let stop = tokio::select! {
                stop = self.follow() => stop,
                () = closed.closed() => Stop::Closed,
            };
            // Whatever the first connection gave, writes no longer wait for it.
            self.connecting = None;
            match stop {
                Stop::Closed => return,
                Stop::Failed(error) => {
                    self.failures = self.failures.saturating_add(1);
                    tracing::warn!(
                        store = %self.store,
                        %error,
                        failures = self.failures,
                        "listening for changes failed; reconnecting (the stream resyncs then)"
                    );
                }
            }
            tokio::select! {
                () = tokio::time::sleep(backoff(self.failures)) => {}
                () = closed.closed() => return,
            }
        }
    }

    /// One connection: until it fails or the watcher goes away.
    async fn follow(&mut self) -> Stop {
        if let Err(e) = self.store.ready().await {
            return Stop::Failed(e);
        }
        let config = &self.store.inner.config;
        let connect = config.pg.connect(NoTls);
        let (client, connection) = match tokio::time::timeout(
            config.connect_timeout().saturating_add(QUERY_TIMEOUT),
            connect,
        )
        .await
        {
            Err(_) => return Stop::Failed(self.store.backend("connecting timed out")),
            Ok(Err(e)) => return Stop::Failed(self.store.db_error(e)),
            Ok(Ok(pair)) => pair,
        };
        let (notices, mut received) = inbox::inbox(NOTIFY_BUFFER);
        let mut driver = Driver(tokio::spawn(drive(connection, notices)));
        let schema = match tokio::time::timeout(QUERY_TIMEOUT, self.listen(&client)).await {
            Err(_) => return Stop::Failed(self.store.backend("LISTEN timed out")),
            Ok(Err(e)) => return Stop::Failed(e),
            Ok(Ok(schema)) => schema,
        };
        // Live: anything committed from now on is heard. Reload what came before.
        if self.tx.send(Change::Resync).await.is_err() {
            return Stop::Closed;
        }
        if self.connecting.take().is_some() {
            tracing::debug!(store = %self.store, "listening for changes");
        } else {
            tracing::info!(
                store = %self.store,
                failures = self.failures,
                "listening for changes again; the stream resyncs"
            );
        }
        self.failures = 0;
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        heartbeat.tick().await;
        loop {
            tokio::select! {
                next = received.next() => {
                    let notification = match next {
                        None => return Stop::Failed(self.ended(&mut driver).await),
                        Some(Received::Message(notification)) => notification,
                        Some(Received::Lost) => {
                            tracing::warn!(
                                store = %self.store,
                                "the watcher fell behind; dropped changes and resyncing"
                            );
                            if self.tx.send(Change::Resync).await.is_err() {
                                return Stop::Closed;
                            }
                            continue;
                        }
                    };
                    let change = match self.change(&notification, &schema).await {
                        Ok(Some(change)) => change,
                        Ok(None) => continue,
                        Err(e) => return Stop::Failed(e),
                    };
                    if self.tx.send(change).await.is_err() {
                        return Stop::Closed;
                    }
                }
                _ = heartbeat.tick() => {
                    let ping = client.simple_query("SELECT 1");
                    match tokio::time::timeout(QUERY_TIMEOUT, ping).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => return Stop::Failed(self.store.db_error(e)),
                        Err(_) => {
                            return Stop::Failed(self.store.backend(
                                "the listening connection did not answer a heartbeat",
                            ));
                        }
                    }
                }
            }
        }
    }

    /// `LISTEN`s, and returns the schema of the store's table (notifications name it).
    async fn listen(&self, client: &Client) -> Result<String> {
        let store = &self.store;
        let table = store.inner.config.table();
        client
            .batch_execute(&format!("LISTEN {}", sql::ident(sql::CHANNEL)))
            .await
            .map_err(|e| store.db_error(e))?;
        let row = client
            .query_opt(&store.inner.sql.table_schema, &[&sql::ident(table)])
            .await
            .map_err(|e| store.db_error(e))?;
        let Some(row) = row else {
            return Err(store.backend(format!(
                "table {} does not exist: run the migration (run_migrations=true, the default; \
                 PostgresStore::migrate; or the SQL of PostgresStore::migration_sql)",
                sql::ident(table)
            )));
        };
        let (schema, triggered): (String, bool) = (
            row.try_get(0).map_err(|e| store.driver(e))?,
            row.try_get(1).map_err(|e| store.driver(e))?,
        );
        if !triggered {
            return Err(store.backend(format!(
                "table {} has no change trigger, so nothing would be heard: run the migration \
                 (run_migrations=true, PostgresStore::migrate, or the SQL of \
                 PostgresStore::migration_sql)",
                sql::ident(table)
            )));
        }
        Ok(schema)
    }

    /// Why the driver stopped.
    async fn ended(&self, driver: &mut Driver) -> Error {
        let why = match (&mut driver.0).await {
            Ok(Ok(())) => "the server closed it".to_owned(),
            Ok(Err(e)) => describe(&e),
            Err(e) => e.to_string(),
        };
        self.store
            .backend(format!("the listening connection ended: {why}"))
    }

    /// The change a notification stands for, if it is about this store's table.
    async fn change(&self, notification: &Notification, schema: &str) -> Result<Option<Change>> {
        let store = &self.store;
        let Some(notice) = notify::parse(notification.payload()) else {
            tracing::debug!(
                store = %store,
                payload = notification.payload(),
                "ignored a notification that is not flipper's"
            );
            return Ok(None);
        };
        if notice.schema != schema || notice.table != store.inner.config.table() {
            return Ok(None);
        }
        Ok(match notice.what {
            What::Resync => Some(Change::Resync),
            What::Delete { name } => Some(Change::Delete { name }),
            What::Put {
                name,
                stored: Some((bytes, version)),
            } => match Item::deserialize(&bytes) {
                Ok(item) => Some(Change::Put {
                    item,
                    version: Version::from_token(version),
                }),
                Err(error) => {
                    tracing::warn!(
                        store = %store,
                        flag = name,
                        %error,
                        "a changed flag cannot be read; resyncing"
                    );
                    Some(Change::Resync)
                }
            },
            // Too large for the payload: read the row (a later state at worst, whose own
            // notification follows; gone means its delete follows).
            What::Put { name, stored: None } => match store.get(&name).await {
                Ok(Some(v)) => Some(Change::Put {
                    item: v.item,
                    version: v.version,
                }),
                Ok(None) => None,
                Err(Error::Corrupt { source, .. }) => {
                    tracing::warn!(
                        store = %store,
                        flag = name,
                        error = %source,
                        "a changed flag cannot be read; resyncing"
                    );
                    Some(Change::Resync)
                }
                Err(e) => return Err(e),
            },
        })
    }
}

/// Reads the connection's messages until it ends, handing notifications to the follower.
async fn drive(
    mut connection: Connection<Socket, NoTlsStream>,
    mut notices: Outbox<Notification>,
) -> Result<(), tokio_postgres::Error> {
    loop {
        match poll_fn(|cx| connection.poll_message(cx)).await {
            Some(Ok(AsyncMessage::Notification(n))) => {
                if notices.push(n) == Pushed::Closed {
                    return Ok(());
                }
            }
            Some(Ok(AsyncMessage::Notice(notice))) => {
                tracing::debug!(%notice, "notice on the listening connection");
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e),
            None => return Ok(()),
        }
    }
}

/// The delay before reconnecting after `failures` failures: doubling from [`BACKOFF_MIN`] to
/// [`BACKOFF_MAX`], with jitter (between half and all of it).
fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    let full = BACKOFF_MIN.saturating_mul(1 << doublings).min(BACKOFF_MAX);
    let half = full / 2;
    half + half.mul_f64(fastrand::f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        for failures in 0..40 {
            let d = backoff(failures);
            assert!(
                d >= BACKOFF_MIN / 2 && d <= BACKOFF_MAX,
                "{failures}: {d:?}"
            );
        }
        assert!(backoff(30) >= BACKOFF_MAX / 2);
    }
}
