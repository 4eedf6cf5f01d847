//! The hand-over between the listening connection's driver (which must read every message at
//! once) and the follower (which decodes them and may wait for the stream): a bounded buffer
//! that drops when full, and says exactly which losses a resync has already covered.
//!
//! Each notification is numbered as it is pushed. A drop records how many had been pushed
//! before it, so the dropped notification is older than every later one. When the follower
//! notices a loss it drains the buffer and answers [`Received::Lost`]; that resync covers every
//! drop recorded before the drain ended, because a drop happens only while the buffer is full,
//! that is, while it still holds the notification pushed just before the drop, which the drain
//! then took. A drop recorded later is noticed with the notification that follows it.
//!
//! A plain "something was lost" flag cannot tell those apart: cleared after the drain, it would
//! forget a drop made after the drain ended (the notifications read after the resync are then
//! older than the dropped one, and replayed after a reload that saw its state they would
//! overwrite it for good); kept, it answers the next change, however much later, with a second
//! reload that nothing needed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

/// A buffer of `capacity` messages between one driver and one follower.
pub(super) fn inbox<T>(capacity: usize) -> (Outbox<T>, Inbox<T>) {
    let (tx, rx) = mpsc::channel(capacity);
    let dropped_after = Arc::new(AtomicU64::new(0));
    (
        Outbox {
            tx,
            pushed: 0,
            dropped_after: Arc::clone(&dropped_after),
        },
        Inbox {
            rx,
            taken: 0,
            covered: 0,
            dropped_after,
        },
    )
}

/// The driver's end.
pub(super) struct Outbox<T> {
    tx: mpsc::Sender<(u64, T)>,
    /// Messages pushed so far.
    pushed: u64,
    /// The largest `pushed` at which a message was dropped (0: none was).
    dropped_after: Arc<AtomicU64>,
}

/// What became of a pushed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pushed {
    Queued,
    /// The buffer was full; the follower will report the loss.
    Dropped,
    /// The follower is gone.
    Closed,
}

impl<T> Outbox<T> {
    /// Queues `message` without waiting.
    pub(super) fn push(&mut self, message: T) -> Pushed {
        match self.tx.try_send((self.pushed, message)) {
            Ok(()) => {
                self.pushed += 1;
                Pushed::Queued
            }
            Err(TrySendError::Full(_)) => {
                self.dropped_after.fetch_max(self.pushed, Ordering::SeqCst);
                Pushed::Dropped
            }
            Err(TrySendError::Closed(_)) => Pushed::Closed,
        }
    }
}

/// The follower's end.
pub(super) struct Inbox<T> {
    rx: mpsc::Receiver<(u64, T)>,
    /// Messages taken out of the buffer so far (received or drained).
    taken: u64,
    /// `taken` when the last loss was reported: drops recorded at or before it are covered.
    covered: u64,
    dropped_after: Arc<AtomicU64>,
}

/// What the follower gets next.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Received<T> {
    Message(T),
    /// Messages were dropped (and the buffer drained): resync.
    Lost,
}

impl<T> Inbox<T> {
    /// The next message, or [`Received::Lost`] once for every run of drops; `None` when the
    /// driver is gone and everything it queued was taken. Cancel-safe (as `select!` needs):
    /// nothing is taken before its one await completes.
    pub(super) async fn next(&mut self) -> Option<Received<T>> {
        let (number, message) = self.rx.recv().await?;
        self.taken = number + 1;
        if self.dropped_after.load(Ordering::SeqCst) <= self.covered {
            return Some(Received::Message(message));
        }
        while let Ok((number, _)) = self.rx.try_recv() {
            self.taken = number + 1;
        }
        self.covered = self.taken;
        Some(Received::Lost)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_loss_is_reported_once_and_then_messages_flow() {
        let (mut outbox, mut inbox) = inbox(2);
        // The second round: a drop while the buffer is full again is reported (once) with the
        // next message taken, and is not taken for the first round's.
        for first in [1, 5] {
            assert_eq!(outbox.push(first), Pushed::Queued);
            assert_eq!(outbox.push(first + 1), Pushed::Queued);
            assert_eq!(outbox.push(first + 2), Pushed::Dropped);
            assert_eq!(inbox.next().await, Some(Received::Lost));
            assert_eq!(outbox.push(first + 3), Pushed::Queued);
            assert_eq!(inbox.next().await, Some(Received::Message(first + 3)));
        }
        drop(outbox);
        assert_eq!(inbox.next().await, None);
    }

    #[tokio::test]
    async fn a_gone_follower_closes_the_outbox() {
        let (mut outbox, inbox) = inbox::<u8>(2);
        drop(inbox);
        assert_eq!(outbox.push(1), Pushed::Closed);
    }

    /// A driver thread pushing as fast as it can against a follower that stops now and then:
    /// every drop is covered by a reported loss made after the follower took the message
    /// pushed before it, and every reported loss stands for a drop no earlier one covered.
    #[test]
    fn losses_are_covered_exactly_under_concurrency() {
        const MESSAGES: u64 = 200_000;
        for round in 0..4 {
            let (mut outbox, mut inbox) = inbox::<u64>(16);
            let driver = std::thread::spawn(move || {
                let mut drops = Vec::new();
                for message in 0..MESSAGES {
                    if outbox.push(message) == Pushed::Dropped {
                        drops.push(outbox.pushed);
                    }
                    if message % 997 == 0 {
                        std::thread::yield_now();
                    }
                }
                drops
            });
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            let mut reports = Vec::new(); // `covered` after each reported loss
            let mut last = None;
            runtime.block_on(async {
                while let Some(received) = inbox.next().await {
                    match received {
                        Received::Message(message) => {
                            assert!(last < Some(message), "out of order");
                            last = Some(message);
                        }
                        Received::Lost => reports.push(inbox.covered),
                    }
                    // Now and then, long enough for the driver to fill the buffer.
                    if fastrand::u16(..1000) == 0 {
                        std::thread::sleep(std::time::Duration::from_micros(100));
                    }
                }
            });
            let drops = driver.join().unwrap();
            for &dropped in &drops {
                assert!(
                    reports.iter().any(|&covered| covered >= dropped),
                    "round {round}: the drop after {dropped} pushes was never covered"
                );
            }
            let mut previous = 0;
            for &covered in &reports {
                assert!(
                    drops.iter().any(|&d| previous < d && d <= covered),
                    "round {round}: a loss reported at {covered} stands for no new drop"
                );
                previous = covered;
            }
            assert!(!drops.is_empty(), "round {round}: nothing was dropped");
        }
    }
}
