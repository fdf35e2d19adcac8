//! Delivery receipts: the announce endpoint answers once every session it handed a frame to
//! has written it to its socket (or given up on it), so that a caller posting one broadcast
//! after another is paced by delivery instead of piling frames up in the sessions' queues.
//!
//! One [`Tally`] per broadcast, one [`Receipt`] per session that was handed the frame. A
//! receipt that is dropped without [`Receipt::written`] (the session ended, the frame was
//! held back, the outbox was full) still settles its share: the tally only waits for
//! sessions that may yet write.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

/// How far one broadcast got. See the module docs.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    /// Receipts handed out.
    issued: AtomicUsize,
    /// Receipts not settled yet.
    left: AtomicUsize,
    /// Receipts settled by a write.
    written: AtomicUsize,
    settled: Notify,
}

impl Tally {
    /// A tally with no receipt yet.
    pub(crate) fn new() -> Arc<Tally> {
        Arc::new(Tally::default())
    }

    /// A receipt for one more session.
    pub(crate) fn receipt(self: &Arc<Self>) -> Receipt {
        self.issued.fetch_add(1, Ordering::Relaxed);
        self.left.fetch_add(1, Ordering::AcqRel);
        Receipt(self.clone())
    }

    /// Sessions handed the frame.
    pub(crate) fn sessions(&self) -> usize {
        self.issued.load(Ordering::Relaxed)
    }

    /// Sessions that wrote it to their socket.
    pub(crate) fn written(&self) -> usize {
        self.written.load(Ordering::Acquire)
    }

    /// Resolves once every receipt is settled.
    pub(crate) async fn all_settled(&self) {
        while self.left.load(Ordering::Acquire) > 0 {
            // `notify_one` keeps a permit when no one waits yet: a receipt settled between
            // the check and this await is not missed.
            self.settled.notified().await;
        }
    }
}

/// One session's share of a [`Tally`]; settles it when dropped.
#[derive(Debug)]
pub(crate) struct Receipt(Arc<Tally>);

impl Receipt {
    /// The session wrote the frame to its socket.
    pub(crate) fn written(self) {
        self.0.written.fetch_add(1, Ordering::AcqRel);
    }
}

impl Drop for Receipt {
    fn drop(&mut self) {
        if self.0.left.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.settled.notify_one();
        }
    }
}
