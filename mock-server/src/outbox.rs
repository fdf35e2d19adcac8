//! A session's outbox: a bounded queue from the hub to one session task that allocates
//! nothing until something is queued.
//!
//! `tokio::sync::mpsc::channel` allocates its first block of 32 slots when it is created,
//! for each connection, idle or not: replacing it took the server from 6.48 to 4.56 KiB per
//! idle connection (BENCHMARKS.md b). This queue is a `VecDeque` under a mutex plus a
//! `Notify`: about 100 bytes until the first frame, and it gives its buffer back when a
//! burst is drained.
//!
//! `recv` is cancel-safe (the session's `select!` drops it whenever another branch wins):
//! it looks at the queue before it waits, so a wake-up lost with a dropped future never
//! leaves a queued item behind.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

/// Above this many slots, a drained queue frees its buffer (an idle session keeps none).
const KEEP_SLOTS: usize = 16;

struct Shared<T> {
    state: Mutex<State<T>>,
    ready: Notify,
}

struct State<T> {
    queue: VecDeque<T>,
    cap: usize,
    sender: bool,
    receiver: bool,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Nothing panics while holding it; a poisoned queue is still a valid queue.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Why [`Sender::try_send`] refused an item (it is dropped with the error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TrySendError {
    /// `cap` items are queued already.
    Full,
    /// The receiver is gone.
    Closed,
}

/// The hub's end (one per queue: the hub's entry of the session). The receiver sees the
/// queue closed once it is dropped.
pub(crate) struct Sender<T>(Arc<Shared<T>>);

/// The session task's end.
pub(crate) struct Receiver<T>(Arc<Shared<T>>);

/// A queue of at most `cap` items (at least 1).
pub(crate) fn channel<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            cap: cap.max(1),
            sender: true,
            receiver: true,
        }),
        ready: Notify::new(),
    });
    (Sender(shared.clone()), Receiver(shared))
}

impl<T> Sender<T> {
    /// Queue `item` unless the queue is full or the receiver gone.
    pub(crate) fn try_send(&self, item: T) -> Result<(), TrySendError> {
        {
            let mut st = self.0.lock();
            if !st.receiver {
                return Err(TrySendError::Closed);
            }
            if st.queue.len() >= st.cap {
                return Err(TrySendError::Full);
            }
            st.queue.push_back(item);
        }
        self.0.ready.notify_one();
        Ok(())
    }

    /// Items queued and not yet taken.
    pub(crate) fn len(&self) -> usize {
        self.0.lock().queue.len()
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.0.lock().sender = false;
        self.0.ready.notify_one();
    }
}

impl<T> Receiver<T> {
    /// The next item, waiting for one; `None` once the queue is empty and the sender
    /// dropped. Cancel-safe (see the module docs).
    pub(crate) async fn recv(&mut self) -> Option<T> {
        loop {
            let notified = self.0.ready.notified();
            tokio::pin!(notified);
            // Registered before the look at the queue: an item queued after the look
            // wakes this waiter.
            notified.as_mut().enable();
            {
                let mut st = self.0.lock();
                if let Some(item) = take(&mut st) {
                    return Some(item);
                }
                if !st.sender {
                    return None;
                }
            }
            notified.await;
        }
    }

    /// The next item if one is queued.
    pub(crate) fn try_recv(&mut self) -> Option<T> {
        take(&mut self.0.lock())
    }
}

/// The front item; a drained queue above [`KEEP_SLOTS`] gives its buffer back.
fn take<T>(st: &mut State<T>) -> Option<T> {
    let item = st.queue.pop_front();
    if st.queue.is_empty() && st.queue.capacity() > KEEP_SLOTS {
        st.queue = VecDeque::new();
    }
    item
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let queued = {
            let mut st = self.0.lock();
            st.receiver = false;
            std::mem::take(&mut st.queue)
        };
        // Dropped outside the lock (an item may hold a receipt whose drop wakes a waiter).
        drop(queued);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn items_arrive_in_order_and_the_queue_closes_with_its_sender() {
        let (tx, mut rx) = channel(4);
        tx.try_send(1).unwrap();
        tx.try_send(2).unwrap();
        assert_eq!(tx.len(), 2);
        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(rx.try_recv(), Some(2));
        assert_eq!(rx.try_recv(), None);
        tx.try_send(3).unwrap();
        drop(tx);
        assert_eq!(rx.recv().await, Some(3), "queued items outlive the sender");
        assert_eq!(rx.recv().await, None);
    }

    #[tokio::test]
    async fn a_full_queue_and_a_gone_receiver_refuse() {
        let (tx, rx) = channel(2);
        tx.try_send(1).unwrap();
        tx.try_send(2).unwrap();
        assert_eq!(tx.try_send(3), Err(TrySendError::Full));
        drop(rx);
        assert_eq!(tx.try_send(4), Err(TrySendError::Closed));
    }

    #[tokio::test]
    async fn a_waiting_receiver_is_woken_by_a_send_and_by_the_last_drop() {
        let (tx, mut rx) = channel::<u32>(4);
        let waiter = tokio::spawn(async move {
            let first = rx.recv().await;
            let end = rx.recv().await;
            (first, end)
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        tx.try_send(7).unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
        drop(tx);
        assert_eq!(waiter.await.unwrap(), (Some(7), None));
    }

    #[tokio::test]
    async fn a_recv_cancelled_in_select_loses_nothing() {
        let (tx, mut rx) = channel::<u32>(64);
        let mut got = Vec::new();
        for i in 0..50u32 {
            // A recv that loses the race to a ready branch is dropped...
            tokio::select! {
                biased;
                _ = std::future::ready(()) => {}
                item = rx.recv() => got.extend(item),
            }
            tx.try_send(i).unwrap();
            if i % 3 == 0 {
                tokio::task::yield_now().await;
            }
        }
        drop(tx);
        // ...and every item is still there for the next one.
        while let Some(item) = rx.recv().await {
            got.push(item);
        }
        assert_eq!(got, (0..50).collect::<Vec<_>>());
    }

    #[test]
    fn a_drained_burst_gives_its_buffer_back() {
        let (tx, mut rx) = channel(256);
        for i in 0..100 {
            tx.try_send(i).unwrap();
        }
        while rx.try_recv().is_some() {}
        assert_eq!(rx.0.lock().queue.capacity(), 0);
        for i in 0..3 {
            tx.try_send(i).unwrap();
        }
        while rx.try_recv().is_some() {}
        assert!(rx.0.lock().queue.capacity() > 0, "a small buffer is kept");
    }
}
