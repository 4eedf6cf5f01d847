//! The HTTP store's watch: the server's change stream (`GET /api/v1/stream`), followed by a
//! background task that reconnects with backoff and resumes with `Last-Event-ID`.
//!
//! The first `snapshot` event of the first connection is where the watcher starts ("changes
//! from now on"). Any later `snapshot` (the server could not resume, or found this watcher too
//! slow) is [`Change::Resync`]: changes were missed, reload everything.

use std::time::Duration;

use flipper_core::{Item, json};
use reqwest::header::ACCEPT;
use reqwest::{Method, StatusCode};
use tokio::sync::mpsc;

use super::HttpStore;
use super::reply::backend;
use super::sse::{self, Reader};
use crate::error::Error;
use crate::store::{Change, ChangeStream, Version};

/// A stream silent this long (four missed heartbeats) counts as dropped.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// The first reconnection delay; it doubles with each failure.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// The longest reconnection delay.
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Starts following the server's changes; `None` outside a Tokio runtime.
pub(super) fn start(store: &HttpStore) -> Option<ChangeStream> {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::warn!(store = %store, "HttpStore::watch called outside a Tokio runtime");
        return None;
    };
    let (tx, rx) = mpsc::channel(crate::store::memory::WATCH_BUFFER);
    let follower = Follower {
        store: store.clone(),
        tx,
        last_id: None,
        failures: 0,
        connecting: Some(store.watchers.connecting()),
    };
    runtime.spawn(follower.run());
    Some(crate::store::gate::channel_stream(rx))
}

/// Why one connection stopped.
enum Stop {
    /// The watcher dropped its stream: stop for good.
    Closed,
    /// The server ended the stream (it is shutting down).
    Ended,
    Failed(Error),
}

struct Follower {
    store: HttpStore,
    tx: mpsc::Sender<Change>,
    /// The id of the last event handled, sent back as `Last-Event-ID`.
    last_id: Option<String>,
    /// Failed connections in a row.
    failures: u32,
    /// Held until the first connection has its snapshot (or fails).
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
                Stop::Ended => {
                    tracing::info!(store = %self.store, "the change stream ended; reconnecting");
                    self.failures = 1;
                }
                Stop::Failed(error) => {
                    self.failures = self.failures.saturating_add(1);
                    tracing::warn!(
                        store = %self.store,
                        %error,
                        failures = self.failures,
                        "the change stream failed; reconnecting"
                    );
                }
            }
            tokio::select! {
                () = tokio::time::sleep(backoff(self.failures)) => {}
                () = closed.closed() => return,
            }
        }
    }

    /// One connection: until it ends, fails, or the watcher goes away.
    async fn follow(&mut self) -> Stop {
        let url = match self.store.url("/api/v1/stream") {
            Ok(url) => url,
            Err(e) => return Stop::Failed(e),
        };
        let mut request = self
            .store
            .request(Method::GET, url)
            .header(ACCEPT, "text/event-stream");
        if let Some(id) = &self.last_id {
            request = request.header("last-event-id", id.as_str());
        }
        let mut response = match tokio::time::timeout(super::REQUEST_TIMEOUT, request.send()).await
        {
            Err(_) => return Stop::Failed(self.silent()),
            Ok(Err(e)) => return Stop::Failed(self.store.unreachable(e)),
            Ok(Ok(response)) => response,
        };
        if response.status() != StatusCode::OK {
            return Stop::Failed(self.store.failure(response, None).await);
        }
        self.failures = 0;
        let mut reader = Reader::default();
        loop {
            let chunk = match tokio::time::timeout(IDLE_TIMEOUT, response.chunk()).await {
                Err(_) => return Stop::Failed(self.silent()),
                Ok(Err(e)) => return Stop::Failed(self.store.unreachable(e)),
                Ok(Ok(None)) => return Stop::Ended,
                Ok(Ok(Some(chunk))) => chunk,
            };
            let events = match reader.feed(&chunk) {
                Ok(events) => events,
                Err(sse::LineTooLong) => {
                    return Stop::Failed(backend(
                        &self.store.base,
                        "the change stream sent a line longer than 256 MiB",
                    ));
                }
            };
            for event in events {
                if let Some(change) = self.change(&event)
                    && self.tx.send(change).await.is_err()
                {
                    return Stop::Closed;
                }
                if event.id.is_some() {
                    self.last_id = event.id;
                }
            }
        }
    }

    fn silent(&self) -> Error {
        backend(
            &self.store.base,
            "the change stream went silent (no event or heartbeat)",
        )
    }

    /// The change an event stands for, if any.
    fn change(&mut self, event: &sse::Event) -> Option<Change> {
        let change = match event.name.as_str() {
            // The first snapshot is where this watcher starts; writes may go ahead now.
            "snapshot" if self.connecting.take().is_some() => return None,
            "snapshot" => return Some(Change::Resync),
            "put" => parse_put(&event.data),
            "delete" => parse_delete(&event.data),
            _ => return None,
        };
        if change.is_none() {
            tracing::warn!(
                store = %self.store,
                event = %event.name,
                "unreadable change event; resyncing"
            );
        }
        Some(change.unwrap_or(Change::Resync))
    }
}

/// `{"name", "version", "item"}`; `None` when unreadable or without a version.
fn parse_put(data: &str) -> Option<Change> {
    let value = json::parse(data).ok()?;
    let event = value.as_object()?;
    let version = event.get("version")?.as_str()?;
    let item = Item::from_value(event.get("item")?).ok()?;
    Some(Change::Put {
        item,
        version: Version::from_token(version),
    })
}

/// `{"name"}`.
fn parse_delete(data: &str) -> Option<Change> {
    let value = json::parse(data).ok()?;
    let name = value.as_object()?.get("name")?.as_str()?;
    Some(Change::Delete {
        name: name.to_owned(),
    })
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
    fn events_become_changes() {
        let item = Item::new("a", true, 1);
        let put = format!(
            r#"{{"name": "a", "version": "7", "item": {}}}"#,
            item.to_json()
        );
        assert_eq!(
            parse_put(&put),
            Some(Change::Put {
                item,
                version: Version::from_token("7")
            })
        );
        assert_eq!(
            parse_put(r#"{"name": "a", "version": null, "item": {}}"#),
            None
        );
        assert_eq!(
            parse_delete(r#"{"name": "a"}"#),
            Some(Change::Delete { name: "a".into() })
        );
        assert_eq!(parse_delete("{"), None);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        for failures in 0..40 {
            let d = backoff(failures);
            assert!(
                d >= BACKOFF_MIN / 2 && d <= BACKOFF_MAX,
                "{failures}: {d:?}"
            );
        }
        assert!(backoff(3) <= BACKOFF_MIN * 4);
        assert!(backoff(30) >= BACKOFF_MAX / 2);
    }
}
