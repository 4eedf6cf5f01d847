//! [`WatchGate`]: the `Store::watch` contract for stores whose subscription is set up in the
//! background (a flipper server, Redis, PostgreSQL, Consul, Thrift): this store's writes wait,
//! for a bounded time, while a watch stream opened before them is still connecting, so a
//! write made after `watch()` returns is always reported.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::{Change, ChangeStream};

/// How many of a store's watch streams are still connecting, and how long writes wait for
/// them. Clones share the count.
#[derive(Debug, Clone)]
pub(crate) struct WatchGate {
    streams: Arc<watch::Sender<usize>>,
    limit: Duration,
}

impl WatchGate {
    /// A gate whose writes wait at most `limit`.
    pub(crate) fn new(limit: Duration) -> Self {
        Self {
            streams: Arc::new(watch::channel(0).0),
            limit,
        }
    }

    /// Counts one stream as connecting until the returned guard is dropped (drop it once the
    /// stream is live, or gives up).
    pub(crate) fn connecting(&self) -> Connecting {
        self.streams.send_modify(|n| *n += 1);
        Connecting(Arc::clone(&self.streams))
    }

    /// Waits until no stream is connecting, or the limit passes.
    pub(crate) async fn settle(&self) {
        let mut streams = self.streams.subscribe();
        let _ = tokio::time::timeout(self.limit, streams.wait_for(|n| *n == 0)).await;
    }
}

/// One stream counted as connecting, until dropped.
#[derive(Debug)]
pub(crate) struct Connecting(Arc<watch::Sender<usize>>);

impl Drop for Connecting {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// The receiving end of a watch task's channel, as a [`ChangeStream`].
pub(crate) fn channel_stream(rx: mpsc::Receiver<Change>) -> ChangeStream {
    Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|change| (change, rx))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_wait_for_connecting_streams_within_the_limit() {
        let gate = WatchGate::new(Duration::from_secs(5));
        gate.settle().await; // nothing connecting: at once
        let first = gate.connecting();
        let second = gate.clone().connecting();
        let waiting = tokio::spawn({
            let gate = gate.clone();
            async move { gate.settle().await }
        });
        drop(first);
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "one stream still connects");
        drop(second);
        tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .expect("settles once every stream is live")
            .unwrap();
        let stuck = WatchGate::new(Duration::from_millis(20));
        let _guard = stuck.connecting();
        tokio::time::timeout(Duration::from_secs(1), stuck.settle())
            .await
            .expect("bounded by the limit");
    }
}
