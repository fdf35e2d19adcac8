//! The driver's fan-out of events to every stream of a client (subscriptions, drafts,
//! [`EventStream`](super::EventStream)s).
//!
//! A bounded queue with one cursor per reader: an event stays queued until every reader has
//! taken it, and a reader more than `capacity` events behind skips the oldest and is told
//! how many ([`Lagged`](super::Lagged)), so a stalled consumer cannot stall the connection
//! or grow memory. Unlike `tokio::sync::broadcast`, nothing is allocated up front and
//! nothing is kept once read: an idle client holds no event buffer at all.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use crate::core::Event;

/// What a reader gets.
pub(super) enum Recv {
    /// The next event.
    Event(Arc<Event>),
    /// This many events were skipped: the reader fell `capacity` behind.
    Lagged(u64),
}

struct Reader {
    /// The sequence number of the next event this reader takes.
    cursor: u64,
    waker: Option<Waker>,
}

struct Queue {
    events: VecDeque<Arc<Event>>,
    /// Sequence number of `events[0]`.
    first: u64,
    capacity: usize,
    /// Readers by slot; `None` for a free slot.
    readers: Vec<Option<Reader>>,
    closed: bool,
}

impl Queue {
    fn end(&self) -> u64 {
        self.first + self.events.len() as u64
    }

    /// Drop the events every reader has taken.
    fn trim(&mut self) {
        let min = self
            .readers
            .iter()
            .flatten()
            .map(|r| r.cursor)
            .min()
            .unwrap_or_else(|| self.end());
        while self.first < min && self.events.pop_front().is_some() {
            self.first += 1;
        }
    }
}

/// The sending side, owned by the driver. Dropping it ends every reader's stream.
pub(super) struct Sender {
    queue: Arc<Mutex<Queue>>,
}

/// Lock, ignoring poisoning: the queue is consistent after every operation, and a panic
/// elsewhere must not take event delivery down with it.
fn lock(queue: &Mutex<Queue>) -> MutexGuard<'_, Queue> {
    queue.lock().unwrap_or_else(|e| e.into_inner())
}

impl Sender {
    /// A fan-out keeping at most `capacity` unread events per reader.
    pub(super) fn new(capacity: usize) -> Self {
        Sender {
            queue: Arc::new(Mutex::new(Queue {
                events: VecDeque::new(),
                first: 0,
                capacity: capacity.max(1),
                readers: Vec::new(),
                closed: false,
            })),
        }
    }

    /// A handle that can make readers (kept by the client handles).
    pub(super) fn subscriber(&self) -> Subscriber {
        Subscriber {
            queue: self.queue.clone(),
        }
    }

    /// Queue `event` for every current reader (dropped if there is none).
    #[cfg(test)]
    pub(super) fn send(&self, event: Arc<Event>) {
        self.send_all(std::iter::once(event));
    }

    /// Queue `events`, in order, for every current reader (dropped if there is none),
    /// under one lock, and wake each waiting reader once for all of them.
    pub(super) fn send_all(&self, events: impl Iterator<Item = Arc<Event>>) {
        let mut q = lock(&self.queue);
        if q.readers.iter().all(Option::is_none) {
            return;
        }
        let mut any = false;
        for event in events {
            any = true;
            q.events.push_back(event);
            if q.events.len() > q.capacity {
                // The slowest readers lose the oldest event; they are told on their next
                // read.
                q.events.pop_front();
                q.first += 1;
            }
        }
        if !any {
            return;
        }
        for reader in q.readers.iter_mut().flatten() {
            if let Some(waker) = reader.waker.take() {
                waker.wake();
            }
        }
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        let mut q = lock(&self.queue);
        q.closed = true;
        for reader in q.readers.iter_mut().flatten() {
            if let Some(waker) = reader.waker.take() {
                waker.wake();
            }
        }
    }
}

/// Makes readers; cheap to clone.
#[derive(Clone)]
pub(super) struct Subscriber {
    queue: Arc<Mutex<Queue>>,
}

impl Subscriber {
    /// A reader of every event sent from now on.
    pub(super) fn subscribe(&self) -> Receiver {
        let mut q = lock(&self.queue);
        let reader = Reader {
            cursor: q.end(),
            waker: None,
        };
        let slot = match q.readers.iter().position(Option::is_none) {
            Some(i) => {
                q.readers[i] = Some(reader);
                i
            }
            None => {
                q.readers.push(Some(reader));
                q.readers.len() - 1
            }
        };
        Receiver {
            queue: self.queue.clone(),
            slot,
        }
    }
}

/// One reader.
pub(super) struct Receiver {
    queue: Arc<Mutex<Queue>>,
    slot: usize,
}

impl Receiver {
    /// The next event, `Lagged`, or `None` once the driver is gone and all is read.
    pub(super) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Recv>> {
        let mut q = lock(&self.queue);
        let (first, end, closed) = (q.first, q.end(), q.closed);
        let Some(reader) = q.readers.get_mut(self.slot).and_then(Option::as_mut) else {
            return Poll::Ready(None);
        };
        if reader.cursor < first {
            let missed = first - reader.cursor;
            reader.cursor = first;
            return Poll::Ready(Some(Recv::Lagged(missed)));
        }
        if reader.cursor < end {
            let at = reader.cursor;
            reader.cursor += 1;
            let index = usize::try_from(at - first).unwrap_or(usize::MAX);
            let event = q.events.get(index).cloned();
            if at == first {
                q.trim();
            }
            return Poll::Ready(event.map(Recv::Event));
        }
        if closed {
            return Poll::Ready(None);
        }
        reader.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let mut q = lock(&self.queue);
        if let Some(slot) = q.readers.get_mut(self.slot) {
            *slot = None;
        }
        q.trim();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Waker;

    fn ev(n: u64) -> Arc<Event> {
        Arc::new(Event::Acked(crate::core::MessageId::new(format!("c-{n}"))))
    }

    fn next(r: &mut Receiver) -> Option<Option<Recv>> {
        let mut cx = Context::from_waker(Waker::noop());
        match r.poll_recv(&mut cx) {
            Poll::Ready(v) => Some(v),
            Poll::Pending => None,
        }
    }

    fn id(r: Option<Option<Recv>>) -> String {
        match r {
            Some(Some(Recv::Event(e))) => match &*e {
                Event::Acked(id) => id.to_string(),
                other => format!("{other:?}"),
            },
            Some(Some(Recv::Lagged(n))) => format!("lagged {n}"),
            Some(None) => "end".into(),
            None => "pending".into(),
        }
    }

    #[test]
    fn every_reader_gets_every_event_and_read_events_are_freed() {
        let tx = Sender::new(4);
        let sub = tx.subscriber();
        let mut a = sub.subscribe();
        let mut b = sub.subscribe();
        tx.send(ev(1));
        tx.send(ev(2));
        assert_eq!(id(next(&mut a)), "c-1");
        assert_eq!(id(next(&mut a)), "c-2");
        assert_eq!(id(next(&mut a)), "pending");
        assert_eq!(lock(&tx.queue).events.len(), 2, "b has not read them");
        assert_eq!(id(next(&mut b)), "c-1");
        assert_eq!(id(next(&mut b)), "c-2");
        assert!(lock(&tx.queue).events.is_empty(), "read by all: freed");
    }

    #[test]
    fn a_slow_reader_is_told_how_many_it_missed() {
        let tx = Sender::new(2);
        let mut a = tx.subscriber().subscribe();
        for n in 1..=5 {
            tx.send(ev(n));
        }
        assert_eq!(id(next(&mut a)), "lagged 3");
        assert_eq!(id(next(&mut a)), "c-4");
        assert_eq!(id(next(&mut a)), "c-5");
    }

    #[test]
    fn no_reader_no_memory_and_late_readers_see_only_new_events() {
        let tx = Sender::new(8);
        tx.send(ev(1));
        assert!(lock(&tx.queue).events.is_empty());
        let mut a = tx.subscriber().subscribe();
        tx.send(ev(2));
        assert_eq!(id(next(&mut a)), "c-2");
        let mut b = tx.subscriber().subscribe();
        assert_eq!(id(next(&mut b)), "pending");
        drop(tx);
        assert_eq!(id(next(&mut b)), "end");
    }

    #[test]
    fn a_dropped_reader_releases_what_it_held() {
        let tx = Sender::new(8);
        let sub = tx.subscriber();
        let mut a = sub.subscribe();
        let b = sub.subscribe();
        tx.send(ev(1));
        assert_eq!(id(next(&mut a)), "c-1");
        assert_eq!(lock(&tx.queue).events.len(), 1);
        drop(b);
        assert!(lock(&tx.queue).events.is_empty());
    }
}
