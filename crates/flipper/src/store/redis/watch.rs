//! The Redis store's watch: a background task following the change channel (flipper's own
//! writes, in order, with their bytes) and hearing other processes' writes through keyspace
//! notifications or polling.
//!
//! One *session* is one set of pub/sub connections: the change channel on one node (a cluster
//! forwards `PUBLISH` to every node) and, when every server has keyspace notifications on, a
//! `PSUBSCRIBE __keyspace@DB__:BASE_KEY/*` on each (keyspace notifications are node-local).
//! A session starts with [`Change::Resync`] (changes may have been missed before it went
//! live); when any of its connections drops or stops answering `PING`, the task opens a new
//! session after a backoff.
//!
//! **Telling writes apart.** A flipper write's keyspace event is immediately followed, on the
//! same connection, by its change-channel message (the script sets, then publishes). So a
//! keyspace event waits [`PAIR_WINDOW`] for a change-channel message about the same flag; only
//! when none comes is it another process's write, and the flag is read (`MGET`) and reported
//! if its bytes differ from what watchers were last told. Without keyspace notifications, a
//! poll (`SCAN` + `MGET`) compares every flag with what watchers were last told. A read and the
//! change channel can race (a read may see a write whose message is still in flight): after
//! each read the task handles the messages that arrived meanwhile, and a flag one of them
//! touched is left to the channel (and checked again later), so a read never reports a state
//! older than a message already handled.
//!
//! **The barrier after a read.** "The messages that arrived meanwhile" must include every
//! message about a write the read saw. On one server a `PING` on the pub/sub connection is that
//! barrier: its answer follows every message sent before it. A cluster forwards `PUBLISH` from
//! the node that ran the script to the node carrying the change channel over the cluster bus,
//! and a node may answer the read before it has passed those messages on; a `PING` to the
//! channel's node can then come back first, and the watch would report the newest state and
//! replay the older ones as their messages arrive (seen once in CI: own writes reported
//! shifted by one). There the barrier is a marker published through every master on a channel
//! of the session's own, subscribed on the change channel's connection: the bus carries each
//! node's messages to another in order, whatever their channel, so once every master's marker
//! is back, so is every message published before the read. (Masters added after the session
//! opened are covered from its next reconnection, as their keyspace events are.)

use std::collections::{HashMap, HashSet, VecDeque};
use std::pin::Pin;
use std::time::Duration;

use futures_core::Stream;
use futures_util::stream::{self, SelectAll};
use futures_util::{FutureExt, StreamExt};
use redis::aio::PubSubSink;
use redis::{Msg, ProtocolVersion};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::script::{self, Notice};
use super::{Conn, RedisStore, config::Target, decode_item, list};
use crate::error::Error;
use crate::store::{Change, ChangeStream, Version};

/// How long a keyspace event waits for the change-channel message of a flipper write. On a
/// standalone server that message follows on the same connection at once; a longer window only
/// delays other processes' writes (each pays it), a shorter one only costs a read that finds
/// bytes already reported.
const PAIR_WINDOW: Duration = Duration::from_millis(5);
/// How often the pub/sub connections are pinged.
const HEALTH_INTERVAL: Duration = Duration::from_secs(15);
/// How long connecting, subscribing or a ping may take.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// The first reconnection delay; it doubles with each failure.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// The longest reconnection delay.
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Starts following the store's changes; `None` outside a Tokio runtime.
pub(super) fn start(store: &RedisStore) -> Option<ChangeStream> {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::warn!(store = %store, "RedisStore::watch called outside a Tokio runtime");
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

/// Why a session stopped.
enum Stop {
    /// The watcher dropped its stream: stop for good.
    Closed,
    Failed(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Self::Failed(e)
    }
}

struct Follower {
    store: RedisStore,
    tx: mpsc::Sender<Change>,
    /// Failed sessions in a row.
    failures: u32,
    /// Held until the first session is live (or failed to open).
    connecting: Option<crate::store::gate::Connecting>,
}

impl Follower {
    async fn run(mut self) {
        let closed = self.tx.clone();
        loop {
            let stop = tokio::select! {
                stop = self.session() => stop,
                () = closed.closed() => Stop::Closed,
            };
            self.connecting = None;
            let Stop::Failed(error) = stop else { return };
            self.failures = self.failures.saturating_add(1);
            let delay = backoff(self.failures);
            tracing::warn!(
                store = %self.store,
                %error,
                failures = self.failures,
                retry_in = ?delay,
                "the Redis change subscription failed; reconnecting (watchers get a resync)"
            );
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = closed.closed() => return,
            }
        }
    }

    /// One session: open, announce, follow until it fails.
    async fn session(&mut self) -> Stop {
        let mut session = match Session::open(&self.store, self.tx.clone()).await {
            Ok(session) => session,
            Err(stop) => return stop,
        };
        if let Err(stop) = session.emit(Change::Resync).await {
            return stop;
        }
        // Live: writes may go ahead, and their messages will be heard.
        self.connecting = None;
        self.failures = 0;
        match session.follow().await {
            Ok(never) => match never {},
            Err(stop) => stop,
        }
    }
}

/// How other processes' writes are heard.
#[derive(Debug, Clone, Copy)]
enum Foreign {
    Keyspace,
    Poll(Duration),
    Unheard,
}

/// A pub/sub message, or `None` when its connection closed.
type Messages = SelectAll<Pin<Box<dyn Stream<Item = Option<Msg>> + Send>>>;

struct Session {
    store: RedisStore,
    tx: mpsc::Sender<Change>,
    conn: Conn,
    sinks: Vec<PubSubSink>,
    messages: Messages,
    foreign: Foreign,
    /// What watchers were last told of each flag: its version, or `None` once deleted.
    known: HashMap<String, Option<Version>>,
    /// Flags named by keyspace events still waiting for their change-channel message.
    pending: VecDeque<(String, Instant)>,
    /// Flags the change channel reported since the current read began.
    touched: HashSet<String>,
    /// A cluster's masters, each of which publishes a marker for a barrier (empty on one
    /// server, where a `PING` is the barrier).
    masters: Vec<list::Node>,
    /// The channel this session's markers travel on (subscribed on a cluster only).
    barrier_channel: String,
    /// How many barriers the session has raised: a marker is `BARRIER:MASTER` (numbers).
    barriers: u64,
    /// Which masters' markers of the current barrier came back.
    back: Vec<bool>,
}

impl Session {
    async fn open(store: &RedisStore, tx: mpsc::Sender<Change>) -> Result<Self, Stop> {
        let mut conn = store.conn().await?;
        // The nodes to subscribe on (the first also carries the change channel), their
        // database, and whether all of them send keyspace notifications.
        let (clients, db, keyspace, masters) = match &store.inner.config.target {
            Target::Standalone(client) => {
                let info = client.get_connection_info();
                let keyspace = keyspace_on(store, &mut conn, None).await;
                (
                    vec![resp2(store, info.clone())?],
                    info.redis_settings().db(),
                    keyspace,
                    Vec::new(),
                )
            }
            #[cfg(feature = "redis-cluster")]
            Target::Cluster { node, .. } => {
                let Conn::Cluster(cluster) = &mut conn else {
                    return Err(Stop::Failed(
                        store.backend("a cluster store without a cluster connection"),
                    ));
                };
                let masters = list::masters(store, cluster).await?;
                let mut keyspace = true;
                let mut clients = Vec::new();
                for master in &masters {
                    keyspace &= keyspace_on(store, &mut conn, Some(master)).await;
                    let addr = node_addr(node.addr(), master);
                    clients.push(resp2(store, (**node).clone().set_addr(addr))?);
                }
                (clients, 0, keyspace, masters)
            }
        };
        let foreign = match (keyspace, store.config().poll_interval()) {
            (true, _) => Foreign::Keyspace,
            (false, Some(every)) => Foreign::Poll(every),
            (false, None) => Foreign::Unheard,
        };
        let pattern = format!(
            "__keyspace@{db}__:{}",
            list::key_pattern(store.config().base_key())
        );
        let barrier_channel = format!("flipper:barrier:{:016x}", fastrand::u64(..));
        let mut sinks = Vec::new();
        let mut messages = SelectAll::new();
        for (i, client) in clients.iter().enumerate() {
            if i > 0 && !keyspace {
                break;
            }
            let fail = |e: redis::RedisError| Stop::Failed(store.backend(e));
            let pubsub = timeout(store, client.get_async_pubsub())
                .await?
                .map_err(fail)?;
            let (mut sink, stream) = pubsub.split();
            if i == 0 {
                timeout(store, sink.subscribe(&store.inner.channel))
                    .await?
                    .map_err(fail)?;
                if !masters.is_empty() {
                    timeout(store, sink.subscribe(&barrier_channel))
                        .await?
                        .map_err(fail)?;
                }
            }
            if keyspace {
                timeout(store, sink.psubscribe(&pattern))
                    .await?
                    .map_err(fail)?;
            }
            sinks.push(sink);
            messages.push(stream.map(Some).chain(stream::once(async { None })).boxed());
        }
        let mut session = Self {
            store: store.clone(),
            tx,
            conn,
            sinks,
            messages,
            foreign,
            known: HashMap::new(),
            pending: VecDeque::new(),
            touched: HashSet::new(),
            masters,
            barrier_channel,
            barriers: 0,
            back: Vec::new(),
        };
        if let Foreign::Poll(_) = foreign {
            // The baseline: what the resync about to be sent makes watchers load (or older).
            for (name, bytes) in list::snapshot(store, &mut session.conn).await? {
                session.known.insert(name, Some(Version::of_bytes(&bytes)));
            }
        }
        tracing::info!(
            store = %store,
            channel = %store.inner.channel,
            other_writers = match foreign {
                Foreign::Keyspace => "keyspace notifications".to_owned(),
                Foreign::Poll(every) => format!("polling every {every:?}"),
                Foreign::Unheard => "not heard: enable keyspace notifications (notify-keyspace-events KA) or set poll_interval".to_owned(),
            },
            "watching Redis changes"
        );
        Ok(session)
    }

    /// Follows the session's messages, timers and polls until it fails.
    async fn follow(&mut self) -> Result<std::convert::Infallible, Stop> {
        let mut health =
            tokio::time::interval_at(Instant::now() + HEALTH_INTERVAL, HEALTH_INTERVAL);
        let every = match self.foreign {
            Foreign::Poll(every) => every,
            // Never ticks in practice; the branch is disabled anyway.
            Foreign::Keyspace | Foreign::Unheard => Duration::from_secs(86_400),
        };
        let mut poll = tokio::time::interval_at(Instant::now() + every, every);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let polling = matches!(self.foreign, Foreign::Poll(_));
        loop {
            let deadline = self.pending.front().map(|(_, at)| *at);
            tokio::select! {
                message = self.messages.next() => match message {
                    Some(Some(message)) => self.on_message(&message).await?,
                    _ => return Err(self.failed("a pub/sub connection closed")),
                },
                () = sleep_until(deadline), if deadline.is_some() => self.check_pending().await?,
                _ = poll.tick(), if polling => self.poll().await?,
                _ = health.tick() => self.ping().await?,
            }
        }
    }

    fn failed(&self, why: &str) -> Stop {
        Stop::Failed(self.store.backend(why.to_owned()))
    }

    async fn emit(&mut self, change: Change) -> Result<(), Stop> {
        self.tx.send(change).await.map_err(|_| Stop::Closed)
    }

    async fn on_message(&mut self, message: &Msg) -> Result<(), Stop> {
        if message.get_channel_name() == self.barrier_channel {
            self.marker_back(message.get_payload_bytes());
            return Ok(());
        }
        if message.from_pattern() {
            // `__keyspace@DB__:KEY`: another process's write, unless its message follows.
            let channel = message.get_channel::<Vec<u8>>().unwrap_or_default();
            let Some(at) = channel.windows(3).position(|w| w == b"__:") else {
                return Ok(());
            };
            let key = &channel[at + 3..];
            if let Some(name) = key.strip_prefix(self.store.inner.prefix.as_bytes())
                && let Ok(name) = std::str::from_utf8(name)
            {
                self.pending
                    .push_back((name.to_owned(), Instant::now() + PAIR_WINDOW));
            }
            return Ok(());
        }
        match script::decode(message.get_payload_bytes()) {
            Some(Notice::Put(bytes)) => match decode_item(bytes) {
                Ok(versioned) => {
                    let name = versioned.item.feature_name.clone();
                    self.heard(&name);
                    self.tell(name, Some(versioned.version.clone()), || Change::Put {
                        item: versioned.item,
                        version: versioned.version,
                    })
                    .await
                }
                Err(error) => {
                    tracing::warn!(store = %self.store, %error, "a change message holds an unreadable flag; resyncing");
                    self.emit(Change::Resync).await
                }
            },
            Some(Notice::Delete(name)) => {
                self.heard(name);
                self.tell(name.to_owned(), None, || Change::Delete {
                    name: name.to_owned(),
                })
                .await
            }
            None => {
                tracing::warn!(
                    store = %self.store,
                    "an unknown message on the change channel (a newer flipper?); resyncing"
                );
                self.emit(Change::Resync).await
            }
        }
    }

    /// The change channel reported `name`: its keyspace event (if waiting) is explained.
    fn heard(&mut self, name: &str) {
        if let Some(i) = self.pending.iter().position(|(n, _)| n == name) {
            self.pending.remove(i);
        }
        self.touched.insert(name.to_owned());
    }

    /// Tells watchers of `name`'s new state unless they already know it.
    async fn tell(
        &mut self,
        name: String,
        state: Option<Version>,
        change: impl FnOnce() -> Change,
    ) -> Result<(), Stop> {
        if self.known.get(&name) == Some(&state) {
            return Ok(());
        }
        self.known.insert(name, state);
        self.emit(change()).await
    }

    /// Reports a flag as read from the server (`None`: no flag there).
    async fn observe(&mut self, name: String, value: Option<Vec<u8>>) -> Result<(), Stop> {
        let Some(bytes) = value.filter(|v| !v.is_empty()) else {
            let gone = name.clone();
            return self
                .tell(name, None, || Change::Delete { name: gone })
                .await;
        };
        let version = Version::of_bytes(&bytes);
        match decode_item(&bytes) {
            Ok(versioned) => {
                self.tell(name, Some(version), || Change::Put {
                    item: versioned.item,
                    version: versioned.version,
                })
                .await
            }
            Err(error) => {
                if self.known.get(&name) == Some(&Some(version.clone())) {
                    return Ok(());
                }
                tracing::warn!(store = %self.store, flag = %name, %error, "another process stored an unreadable flag; resyncing");
                self.known.insert(name, Some(version));
                self.emit(Change::Resync).await
            }
        }
    }

    /// Handles the messages that arrived while the task was reading, up to a barrier (see the
    /// module docs), so that every flipper write the read saw has been handled.
    async fn drain(&mut self) -> Result<(), Stop> {
        if self.masters.is_empty() {
            // One server: a `PING`'s answer comes after every message it sent before.
            self.ping().await?;
        } else {
            self.await_markers().await?;
        }
        loop {
            match self.messages.next().now_or_never() {
                None => return Ok(()),
                Some(Some(Some(message))) => self.on_message(&message).await?,
                Some(_) => return Err(self.failed("a pub/sub connection closed")),
            }
        }
    }

    /// A cluster's barrier: publishes a marker through every master and handles messages
    /// until each master's is back.
    async fn await_markers(&mut self) -> Result<(), Stop> {
        self.barriers += 1;
        self.back = vec![false; self.masters.len()];
        // One round trip for all the masters: the markers go out side by side, each on its
        // own handle of the multiplexed connection.
        let publishes = self.masters.iter().enumerate().map(|(i, node)| {
            let mut publish = redis::cmd("PUBLISH");
            publish
                .arg(&self.barrier_channel)
                .arg(format!("{}:{i}", self.barriers));
            let (store, mut conn) = (&self.store, self.conn.clone());
            async move { list::query_on::<i64>(store, &mut conn, publish, Some(node)).await }
        });
        futures_util::future::try_join_all(publishes).await?;
        let deadline = Instant::now() + IO_TIMEOUT;
        while !self.back.iter().all(|&back| back) {
            match tokio::time::timeout_at(deadline, self.messages.next()).await {
                Ok(Some(Some(message))) => self.on_message(&message).await?,
                Ok(_) => return Err(self.failed("a pub/sub connection closed")),
                Err(_) => {
                    return Err(self.failed(
                        "a barrier marker published through a cluster master did not come back within 5 s",
                    ));
                }
            }
        }
        Ok(())
    }

    /// Notes a marker that came back (one of an earlier barrier, sent again by a retry, is
    /// ignored).
    fn marker_back(&mut self, marker: &[u8]) {
        let marker = std::str::from_utf8(marker).unwrap_or_default();
        if let Some((barrier, master)) = marker.split_once(':')
            && barrier.parse() == Ok(self.barriers)
            && let Ok(master) = master.parse::<usize>()
            && let Some(back) = self.back.get_mut(master)
        {
            *back = true;
        }
    }

    /// Reads the flags whose keyspace events no change-channel message explained.
    async fn check_pending(&mut self) -> Result<(), Stop> {
        let now = Instant::now();
        let mut names = Vec::new();
        while let Some((name, _)) = self.pending.front().filter(|(_, at)| *at <= now) {
            if !names.contains(name) {
                names.push(name.clone());
            }
            self.pending.pop_front();
        }
        self.touched.clear();
        let keys: Vec<Vec<u8>> = names.iter().map(|n| n.as_bytes().to_vec()).collect();
        let values = list::values(&self.store, &mut self.conn, &keys).await?;
        self.drain().await?;
        for (name, value) in names.into_iter().zip(values) {
            if self.touched.contains(&name) {
                // The channel spoke meanwhile: check again once it is quiet.
                self.pending.push_back((name, Instant::now() + PAIR_WINDOW));
            } else {
                self.observe(name, value).await?;
            }
        }
        Ok(())
    }

    /// Compares every flag with what watchers were last told.
    async fn poll(&mut self) -> Result<(), Stop> {
        self.touched.clear();
        let snapshot = list::snapshot(&self.store, &mut self.conn).await?;
        self.drain().await?;
        let mut present = HashSet::with_capacity(snapshot.len());
        for (name, bytes) in snapshot {
            present.insert(name.clone());
            if !self.touched.contains(&name) {
                self.observe(name, Some(bytes)).await?;
            }
        }
        let gone: Vec<String> = self
            .known
            .iter()
            .filter(|(name, state)| {
                state.is_some() && !present.contains(*name) && !self.touched.contains(*name)
            })
            .map(|(name, _)| name.clone())
            .collect();
        for name in gone {
            self.observe(name, None).await?;
        }
        // The next poll tells deletions from absence: forget them.
        self.known.retain(|_, state| state.is_some());
        Ok(())
    }

    /// Checks that every pub/sub connection still answers.
    async fn ping(&mut self) -> Result<(), Stop> {
        for sink in &mut self.sinks {
            match tokio::time::timeout(IO_TIMEOUT, sink.ping::<redis::Value>()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(Stop::Failed(self.store.backend(e))),
                Err(_) => {
                    return Err(Stop::Failed(
                        self.store
                            .backend("a pub/sub connection did not answer PING within 5 s"),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Whether the server (`node` of a cluster) sends the keyspace notifications the watch needs:
/// `K` with `A`, or with `g` and `$`. A refused `CONFIG GET` counts as off.
async fn keyspace_on(store: &RedisStore, conn: &mut Conn, node: Option<&list::Node>) -> bool {
    let mut cmd = redis::cmd("CONFIG");
    cmd.arg("GET").arg("notify-keyspace-events");
    let reply: Result<HashMap<String, String>, _> = list::query_on(store, conn, cmd, node).await;
    match reply {
        Ok(config) => config
            .get("notify-keyspace-events")
            .is_some_and(|flags| keyspace_flags_suffice(flags)),
        Err(error) => {
            tracing::info!(store = %store, %error, "CONFIG GET refused: assuming keyspace notifications are off");
            false
        }
    }
}

/// `notify-keyspace-events` flags that report every write and deletion of a key.
fn keyspace_flags_suffice(flags: &str) -> bool {
    flags.contains('K') && (flags.contains('A') || (flags.contains('g') && flags.contains('$')))
}

/// The address of a cluster master, over TLS (with the same certificates and checks) when the
/// first node of the URL is.
#[cfg(feature = "redis-cluster")]
fn node_addr(first: &redis::ConnectionAddr, master: &list::Node) -> redis::ConnectionAddr {
    match first {
        redis::ConnectionAddr::TcpTls {
            insecure,
            tls_params,
            ..
        } => redis::ConnectionAddr::TcpTls {
            host: master.host.clone(),
            port: master.port,
            insecure: *insecure,
            tls_params: tls_params.clone(),
        },
        _ => redis::ConnectionAddr::Tcp(master.host.clone(), master.port),
    }
}

/// A client for pub/sub: RESP2, whose dedicated pub/sub connection the redis crate offers.
fn resp2(store: &RedisStore, info: redis::ConnectionInfo) -> Result<redis::Client, Stop> {
    let settings = info
        .redis_settings()
        .clone()
        .set_protocol(ProtocolVersion::RESP2);
    redis::Client::open(info.set_redis_settings(settings))
        .map_err(|e| Stop::Failed(store.backend(e)))
}

/// `f`, failing after [`IO_TIMEOUT`].
async fn timeout<T>(store: &RedisStore, f: impl Future<Output = T>) -> Result<T, Stop> {
    tokio::time::timeout(IO_TIMEOUT, f)
        .await
        .map_err(|_| Stop::Failed(store.backend("no answer from Redis within 5 s")))
}

/// Sleeps until `deadline`, forever when `None`.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
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
    fn keyspace_flags_are_read() {
        for (flags, ok) in [
            ("KA", true),
            ("AKE", true),
            ("Kg$", true),
            ("K$", false),
            ("EA", false),
            ("", false),
        ] {
            assert_eq!(keyspace_flags_suffice(flags), ok, "{flags}");
        }
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
        assert!(backoff(30) >= BACKOFF_MAX / 2);
    }
}
