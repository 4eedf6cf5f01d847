//! `GET /api/v1/stream`: the flags and their changes as server-sent events.
//!
//! ```text
//! event: snapshot
//! id: 5f0c8e1d2a3b4c6d:41
//! data: {"version": 41, "flags": [STORED FLAG, ...]}
//!
//! event: put
//! id: 5f0c8e1d2a3b4c6d:42
//! data: {"name": "beta", "version": "ETAG", "item": STORED FLAG}
//!
//! event: delete
//! id: 5f0c8e1d2a3b4c6d:43
//! data: {"name": "beta"}
//!
//! :
//! ```
//!
//! A subscriber first gets every flag (`snapshot`), then one event per change. An id is
//! `EPOCH:VERSION`: a random per-process epoch and the set version of the server's live flags
//! after the event. Reconnecting with `Last-Event-ID` resumes after that
//! version when the change log still holds every change since; otherwise (too old, another
//! process's epoch, not an id of ours) the stream starts with a fresh snapshot. A comment line
//! (`:`) is sent after every heartbeat interval without an event, so proxies keep the
//! connection open. Streams end when the server shuts down.
//!
//! **Slow subscribers.** Subscribers do not get a queue of their own: each reads the shared
//! change log from its own position, [`BATCH`] changes at a time, when its connection can take
//! more. The writer never waits for a subscriber. A subscriber that falls so far behind that
//! the log no longer holds its next change gets a fresh `snapshot` event on the same
//! connection and goes on from there; it is not disconnected.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use flipper::live::{FlagSet, LiveFlags};
use tokio::sync::watch;

use crate::auth::Read;
use crate::changelog::{ChangeFeed, LoggedChange};
use crate::error::ApiError;
use crate::metrics::StreamSubscriber;
use crate::state::AppState;

/// How many logged changes a subscriber takes at a time: the most it holds of its own.
pub(crate) const BATCH: usize = 64;

/// What every stream shares: the heartbeat interval, the signal that ends them, and the last
/// snapshot event (rendered once per version, whoever asks first).
#[derive(Debug)]
pub(crate) struct Streams {
    heartbeat: Duration,
    closing: watch::Sender<bool>,
    rendered: Mutex<Option<(u64, Arc<str>)>>,
}

impl Streams {
    pub(crate) fn new(heartbeat: Duration) -> Self {
        Self {
            heartbeat,
            closing: watch::channel(false).0,
            rendered: Mutex::new(None),
        }
    }

    /// Ends every stream, now and from now on.
    pub(crate) fn close(&self) {
        self.closing.send_replace(true);
    }

    /// The current set as a `snapshot` event's data, with its version.
    fn snapshot_data(&self, live: &LiveFlags) -> (u64, Arc<str>) {
        let set = live.flags();
        // Held while rendering: subscribers arriving together wait for one rendering.
        let mut rendered = self.rendered.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((version, data)) = &*rendered
            && *version == set.version()
        {
            return (*version, Arc::clone(data));
        }
        let data: Arc<str> = render(&set).into();
        *rendered = Some((set.version(), Arc::clone(&data)));
        (set.version(), data)
    }
}

/// `{"version": N, "flags": [stored flag, ...]}`, the flags in name order.
fn render(set: &FlagSet) -> String {
    let mut out = format!("{{\"version\": {}, \"flags\": [", set.version());
    for (i, (_, item)) in set.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&item.to_json());
    }
    out.push_str("]}");
    out
}

/// An event id: `EPOCH:VERSION`, the epoch in 16 hex digits.
pub(crate) fn event_id(epoch: u64, version: u64) -> String {
    format!("{epoch:016x}:{version}")
}

/// The epoch and version of an event id; `None` for anything else.
fn parse_event_id(text: &str) -> Option<(u64, u64)> {
    let (epoch, version) = text.trim().split_once(':')?;
    Some((u64::from_str_radix(epoch, 16).ok()?, version.parse().ok()?))
}

/// `GET /api/v1/stream` (SDK token): see the module documentation.
pub(crate) async fn subscribe(
    _: Read,
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let live = state.live().clone();
    if !live.is_initialized() {
        return Err(ApiError::not_ready());
    }
    let feed = Arc::clone(state.feed());
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_event_id);
    let resume = last.and_then(|(epoch, version)| (epoch == feed.epoch()).then_some(version));
    tracing::debug!(?resume, "stream subscriber");
    let streams = Arc::clone(state.streams());
    let heartbeat = streams.heartbeat;
    let mut subscriber = Subscriber::new(live, feed, streams, resume);
    subscriber.gauge = Some(state.metrics().stream_subscriber());
    let events = futures_util::stream::unfold(subscriber, |mut subscriber| async move {
        let message = subscriber.next().await?;
        let event = subscriber.event(message);
        Some((Ok::<_, Infallible>(event), subscriber))
    });
    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(heartbeat))
        .into_response();
    // nginx would otherwise buffer the stream.
    response.headers_mut().insert(
        HeaderName::from_static("x-accel-buffering"),
        HeaderValue::from_static("no"),
    );
    Ok(response)
}

/// What a subscriber sends next.
#[derive(Debug)]
enum Message {
    Snapshot(u64, Arc<str>),
    Change(Arc<LoggedChange>),
}

/// One open stream: its position in the log and the changes it took from it.
struct Subscriber {
    live: LiveFlags,
    feed: Arc<ChangeFeed>,
    streams: Arc<Streams>,
    versions: watch::Receiver<u64>,
    closing: watch::Receiver<bool>,
    /// The version of the last event sent (or to resume after); `None`: a snapshot is due.
    cursor: Option<u64>,
    pending: VecDeque<Arc<LoggedChange>>,
    /// Counts this stream in the metrics while it is open.
    gauge: Option<StreamSubscriber>,
}

impl Subscriber {
    fn new(
        live: LiveFlags,
        feed: Arc<ChangeFeed>,
        streams: Arc<Streams>,
        resume: Option<u64>,
    ) -> Self {
        Self {
            versions: live.subscribe_versions(),
            closing: streams.closing.subscribe(),
            live,
            feed,
            streams,
            cursor: resume,
            pending: VecDeque::new(),
            gauge: None,
        }
    }

    /// The next message; `None` when the server is shutting down.
    async fn next(&mut self) -> Option<Message> {
        loop {
            if *self.closing.borrow() {
                return None;
            }
            if let Some(change) = self.pending.pop_front() {
                self.cursor = Some(change.version());
                return Some(Message::Change(change));
            }
            let Some(cursor) = self.cursor else {
                let (version, data) = self.streams.snapshot_data(&self.live);
                self.cursor = Some(version);
                return Some(Message::Snapshot(version, data));
            };
            // Marked seen before reading the log: a change logged after this wakes us.
            self.versions.borrow_and_update();
            match self.feed.changes_since(cursor, BATCH) {
                None => {
                    tracing::debug!(cursor, "stream subscriber behind the log: fresh snapshot");
                    self.cursor = None;
                }
                Some(changes) if !changes.is_empty() => self.pending.extend(changes),
                Some(_) => {
                    tokio::select! {
                        changed = self.versions.changed() => if changed.is_err() {
                            return None;
                        },
                        _ = self.closing.wait_for(|closing| *closing) => return None,
                    }
                }
            }
        }
    }

    fn event(&self, message: Message) -> Event {
        let epoch = self.feed.epoch();
        match message {
            Message::Snapshot(version, data) => Event::default()
                .event("snapshot")
                .id(event_id(epoch, version))
                .data(&*data),
            Message::Change(change) => Event::default()
                .event(change.kind().event_name())
                .id(event_id(epoch, change.version()))
                .data(change.data()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn describe(message: Option<Message>) -> String {
        match message {
            Some(Message::Snapshot(version, data)) => format!("snapshot {version} {data}"),
            Some(Message::Change(c)) => format!("{} {}", c.kind().event_name(), c.version()),
            None => "end".into(),
        }
    }

    #[tokio::test]
    async fn a_subscriber_behind_the_log_gets_a_fresh_snapshot() {
        use flipper::live::LiveOptions;
        use flipper::store::{MemoryStore, Store, StoreExt};
        let store = Arc::new(MemoryStore::new());
        let feed = Arc::new(ChangeFeed::new(2));
        let live = LiveFlags::start(
            Arc::clone(&store) as Arc<dyn Store>,
            LiveOptions::default().observer(Arc::clone(&feed) as _),
        )
        .await;
        let reaches = async |version: u64| {
            let mut versions = live.subscribe_versions();
            versions.wait_for(|v| *v >= version).await.unwrap();
        };
        let streams = Arc::new(Streams::new(Duration::from_secs(15)));
        let subscriber = |resume| {
            Subscriber::new(
                live.clone(),
                Arc::clone(&feed),
                Arc::clone(&streams),
                resume,
            )
        };
        let (mut slow, mut fast) = (subscriber(None), subscriber(Some(1)));
        assert_eq!(
            describe(slow.next().await),
            r#"snapshot 1 {"version": 1, "flags": []}"#
        );
        store.create_at("a", true, None, 1).await.unwrap();
        assert_eq!(describe(fast.next().await), "put 2");
        for on in [false, true, false] {
            store.set("a", on).await.unwrap();
        }
        reaches(5).await;
        // The log holds 4 and 5: `slow` (at 1) has lost 2 and 3, `fast` (at 2) only 3.
        assert!(describe(slow.next().await).starts_with("snapshot 5 "));
        assert!(describe(fast.next().await).starts_with("snapshot 5 "));
        store.delete("a").await.unwrap();
        assert_eq!(describe(slow.next().await), "delete 6");
        streams.close();
        assert_eq!(describe(slow.next().await), "end");
        assert_eq!(describe(fast.next().await), "end");
    }

    #[test]
    fn event_ids_round_trip() {
        assert_eq!(event_id(255, 7), "00000000000000ff:7");
        assert_eq!(parse_event_id("00000000000000ff:7"), Some((255, 7)));
        for bad in ["", "7", "x:1", "ff:", "ff:-1"] {
            assert_eq!(parse_event_id(bad), None, "{bad}");
        }
    }
}
