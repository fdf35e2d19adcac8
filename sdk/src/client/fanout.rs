//! The driver's fan-out of events to every stream of a client (subscriptions, drafts,
//! [`EventStream`](super::EventStream)s), and the connection state it last published, for
//! [`StateStream`](super::StateStream)s, `connected()` and `close()`.
//!
//! A bounded queue with one cursor per reader: an event stays queued until every reader has
//! taken it, and a reader more than `capacity` events behind skips the oldest and is told
//! how many ([`Lagged`](super::Lagged)), so a stalled consumer cannot stall the connection
//! or grow memory. Unlike `tokio::sync::broadcast`, nothing is allocated up front and
//! nothing is kept once read: an idle client holds no event buffer at all.
//!
//! Events are queued by value, not one `Arc` each: readers look at them in place, under the
//! lock, and the last reader of an event takes it out instead of copying it. An allocation
//! per event made by the driver and freed by the app's task was a free into another
//! thread's malloc arena (its lock) per event.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use crate::core::{Event, State};

/// What a reader gets.
pub(super) enum Recv<T> {
    /// The next event (or what the reader picked out of it).
    Event(T),
    /// This many events were skipped: the reader fell `capacity` behind.
    Lagged(u64),
}

/// Where a reader stands when it asks for its next event ([`Queue::advance`]).
enum Step {
    /// The event at this sequence number is its next.
    At(u64),
    /// It fell this many events behind.
    Lagged(u64),
    /// Nothing more will come.
    Ended,
    /// Nothing yet.
    Pending,
}

struct Reader {
    /// The sequence number of the next event this reader takes.
    cursor: u64,
    waker: Option<Waker>,
}

struct Queue {
    events: VecDeque<Event>,
    /// Sequence number of `events[0]`.
    first: u64,
    capacity: usize,
    /// Readers by slot; `None` for a free slot.
    readers: Vec<Option<Reader>>,
    closed: bool,
    /// The state of the last `Event::StateChanged` sent (kept with or without readers):
    /// what `Client::state` returns. Here, under the queue's lock, it never disagrees with
    /// the events a reader has seen. State readers ([`Subscriber::poll_state`]) are not
    /// event readers: they hold no event and see only the latest state, as a
    /// `tokio::sync::watch` would (which was about 4 KB of the browser package).
    state: State,
    /// Bumped at every state change, so that a state reader knows it has not seen it.
    state_version: u64,
    /// State readers waiting for the next change (one of a reader dropped meanwhile goes
    /// at that change).
    state_wakers: Vec<Waker>,
}

impl Queue {
    fn end(&self) -> u64 {
        self.first + self.events.len() as u64
    }

    /// Move reader `slot` past its next event and say where that event is; or that it
    /// lagged (its cursor then jumps to the oldest kept), that all is read and the driver
    /// is gone (or the slot is free), or that nothing is there yet (its waker is kept).
    fn advance(&mut self, slot: usize, cx: &mut Context<'_>) -> Step {
        let (first, end, closed) = (self.first, self.end(), self.closed);
        let Some(reader) = self.readers.get_mut(slot).and_then(Option::as_mut) else {
            return Step::Ended;
        };
        if reader.cursor < first {
            let missed = first - reader.cursor;
            reader.cursor = first;
            return Step::Lagged(missed);
        }
        if reader.cursor < end {
            let at = reader.cursor;
            reader.cursor += 1;
            return Step::At(at);
        }
        if closed {
            return Step::Ended;
        }
        reader.waker = Some(cx.waker().clone());
        Step::Pending
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
        self.release_if_empty();
    }

    /// An empty queue gives its room back: events are large, and an idle client must not
    /// keep a batch's worth of them.
    fn release_if_empty(&mut self) {
        if self.events.is_empty() && self.events.capacity() > 0 {
            self.events = VecDeque::new();
        }
    }

    /// Whether a reader other than `slot` has yet to take the event numbered `at`.
    fn wanted_by_others(&self, slot: usize, at: u64) -> bool {
        self.readers
            .iter()
            .enumerate()
            .any(|(i, r)| i != slot && r.as_ref().is_some_and(|r| r.cursor <= at))
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
    /// A fan-out keeping at most `capacity` unread events per reader, starting in `state`.
    pub(super) fn new(capacity: usize, state: State) -> Self {
        Sender {
            queue: Arc::new(Mutex::new(Queue {
                events: VecDeque::new(),
                first: 0,
                capacity: capacity.max(1),
                readers: Vec::new(),
                closed: false,
                state,
                state_version: 0,
                state_wakers: Vec::new(),
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
    pub(super) fn send(&self, event: Event) {
        self.send_all(vec![event]);
    }

    /// Queue `events`, in order, for every current reader (dropped if there is none),
    /// under one lock, and wake each waiting reader once for all of them. The last state
    /// change among them becomes the published state.
    pub(super) fn send_all(&self, events: Vec<Event>) {
        let mut q = lock(&self.queue);
        if let Some(state) = events.iter().rev().find_map(|e| match e {
            Event::StateChanged(state) => Some(state),
            _ => None,
        }) {
            q.state = state.clone();
            q.state_version += 1;
            for waker in q.state_wakers.drain(..) {
                waker.wake();
            }
        }
        if events.is_empty() || q.readers.iter().all(Option::is_none) {
            return;
        }
        // Room for the batch at once (up to the cap), not by doubling as it comes.
        let room = events.len().min(q.capacity);
        q.events.reserve(room);
        for event in events {
            q.events.push_back(event);
            if q.events.len() > q.capacity {
                // The slowest readers lose the oldest event; they are told on their next
                // read.
                q.events.pop_front();
                q.first += 1;
            }
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
        for waker in q.state_wakers.drain(..) {
            waker.wake();
        }
    }
}

/// Makes readers; cheap to clone.
#[derive(Clone)]
pub(super) struct Subscriber {
    queue: Arc<Mutex<Queue>>,
}

impl Subscriber {
    /// The state last published, and its version (see [`Subscriber::poll_state`]).
    pub(super) fn state(&self) -> (State, u64) {
        let q = lock(&self.queue);
        (q.state.clone(), q.state_version)
    }

    /// The state published after version `seen` (which it then becomes): at once if it
    /// already was, else once it is. Changes in between are skipped, the latest never.
    /// `None` once the driver is gone.
    pub(super) fn poll_state(&self, seen: &mut u64, cx: &mut Context<'_>) -> Poll<Option<State>> {
        let mut q = lock(&self.queue);
        if q.state_version != *seen {
            *seen = q.state_version;
            return Poll::Ready(Some(q.state.clone()));
        }
        if q.closed {
            return Poll::Ready(None);
        }
        if !q.state_wakers.iter().any(|w| w.will_wake(cx.waker())) {
            q.state_wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }

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
    /// Show `pick` the next events in place, under the lock (one it skips costs nothing),
    /// until it takes one (returns true; it keeps what it wants of it): `Recv::Event(())`.
    /// `Lagged`, or `None` once the driver is gone and all is read. A `dyn` picker: one
    /// copy of this loop for every kind of stream (the browser package pays per copy).
    pub(super) fn poll_pick(
        &mut self,
        cx: &mut Context<'_>,
        pick: &mut dyn FnMut(&Event) -> bool,
    ) -> Poll<Option<Recv<()>>> {
        let mut q = lock(&self.queue);
        loop {
            let at = match q.advance(self.slot, cx) {
                Step::At(at) => at,
                Step::Lagged(missed) => return Poll::Ready(Some(Recv::Lagged(missed))),
                Step::Ended => return Poll::Ready(None),
                Step::Pending => return Poll::Pending,
            };
            let index = usize::try_from(at - q.first).unwrap_or(usize::MAX);
            let taken = q.events.get(index).is_some_and(&mut *pick);
            if at == q.first {
                q.trim();
            }
            if taken {
                return Poll::Ready(Some(Recv::Event(())));
            }
        }
    }

    /// The next event by value: taken out of the queue when no other reader still needs
    /// it (a stream that reads everything is usually the only reader), cloned otherwise.
    pub(super) fn poll_take(&mut self, cx: &mut Context<'_>) -> Poll<Option<Recv<Event>>> {
        let mut q = lock(&self.queue);
        let at = match q.advance(self.slot, cx) {
            Step::At(at) => at,
            Step::Lagged(missed) => return Poll::Ready(Some(Recv::Lagged(missed))),
            Step::Ended => return Poll::Ready(None),
            Step::Pending => return Poll::Pending,
        };
        if at == q.first && !q.wanted_by_others(self.slot, at) {
            // The last reader of the oldest event: it leaves the queue with us.
            let event = q.events.pop_front();
            q.first += 1;
            q.release_if_empty();
            return Poll::Ready(event.map(Recv::Event));
        }
        let index = usize::try_from(at - q.first).unwrap_or(usize::MAX);
        Poll::Ready(q.events.get(index).cloned().map(Recv::Event))
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

    fn ev(n: u64) -> Event {
        Event::Acked(crate::core::MessageId::new(format!("c-{n}")))
    }

    fn next(r: &mut Receiver) -> Option<Option<Recv<Event>>> {
        let mut cx = Context::from_waker(Waker::noop());
        match r.poll_take(&mut cx) {
            Poll::Ready(v) => Some(v),
            Poll::Pending => None,
        }
    }

    fn id(r: Option<Option<Recv<Event>>>) -> String {
        match r {
            Some(Some(Recv::Event(e))) => match &e {
                Event::Acked(id) => id.to_string(),
                other => format!("{other:?}"),
            },
            Some(Some(Recv::Lagged(n))) => format!("lagged {n}"),
            Some(None) => "end".into(),
            None => "pending".into(),
        }
    }

    fn changed(state: State) -> Event {
        Event::StateChanged(state)
    }

    /// The state stream the app reads (`Client::state_changes`), on this fan-out.
    fn next_state(s: &mut super::super::StateStream) -> Option<Option<State>> {
        use futures_util::Stream;
        let mut cx = Context::from_waker(Waker::noop());
        match std::pin::Pin::new(s).poll_next(&mut cx) {
            Poll::Ready(v) => Some(v),
            Poll::Pending => None,
        }
    }

    #[test]
    fn the_last_state_sent_is_published_with_or_without_readers() {
        let tx = Sender::new(4, State::Idle);
        let sub = tx.subscriber();
        let (_, v0) = sub.state();
        tx.send_all(vec![
            changed(State::Connecting),
            ev(1),
            changed(State::Connected),
        ]);
        let (state, v1) = sub.state();
        assert_eq!(state, State::Connected, "no reader: published all the same");
        assert_ne!(v0, v1, "a new version");
        assert!(lock(&tx.queue).events.is_empty(), "and no event kept");
        tx.send(ev(2));
        assert_eq!(sub.state(), (State::Connected, v1), "other events leave it");
        let mut r = sub.subscribe();
        tx.send(changed(State::Closed));
        assert_eq!(sub.state().0, State::Closed);
        assert!(matches!(
            next(&mut r),
            Some(Some(Recv::Event(Event::StateChanged(State::Closed))))
        ));
    }

    #[test]
    fn a_state_stream_gives_the_state_then_the_latest_change_once_and_holds_no_event() {
        let tx = Sender::new(2, State::Idle);
        let sub = tx.subscriber();
        tx.send(changed(State::Connecting));
        let mut states = super::super::StateStream::new(&sub);
        assert_eq!(
            next_state(&mut states),
            Some(Some(State::Connecting)),
            "the current one"
        );
        assert_eq!(next_state(&mut states), None, "then nothing until a change");
        tx.send_all(vec![changed(State::Connected), ev(1)]);
        assert_eq!(
            next_state(&mut states),
            Some(Some(State::Connected)),
            "other events skipped"
        );
        assert_eq!(next_state(&mut states), None);
        // Many events, none a state change: nothing to give, nothing kept for it.
        for n in 0..10 {
            tx.send(ev(n));
        }
        assert_eq!(next_state(&mut states), None, "no state is given twice");
        assert!(
            lock(&tx.queue).events.is_empty(),
            "a state stream holds no event"
        );
        // Changes faster than the stream reads: the latest, once.
        for state in [State::Connecting, State::Connected, State::Closed] {
            tx.send(changed(state));
        }
        assert_eq!(
            next_state(&mut states),
            Some(Some(State::Closed)),
            "the latest"
        );
        assert_eq!(next_state(&mut states), None, "and no older state after it");
        drop(tx);
        assert_eq!(next_state(&mut states), Some(None), "ends with the driver");
    }

    /// Counts its wakes.
    struct Count(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    #[test]
    fn a_waiting_state_reader_is_woken_once_by_a_change_and_by_the_end() {
        let tx = Sender::new(2, State::Idle);
        let sub = tx.subscriber();
        let count = Arc::new(Count(Default::default()));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let (_, mut seen) = sub.state();
        assert!(sub.poll_state(&mut seen, &mut cx).is_pending());
        assert!(
            sub.poll_state(&mut seen, &mut cx).is_pending(),
            "polled again"
        );
        assert_eq!(
            lock(&tx.queue).state_wakers.len(),
            1,
            "one waker kept, not two"
        );
        tx.send(ev(1));
        assert_eq!(
            count.0.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "not by an event"
        );
        tx.send(changed(State::Connecting));
        assert_eq!(count.0.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(
            sub.poll_state(&mut seen, &mut cx),
            Poll::Ready(Some(State::Connecting))
        );
        assert!(sub.poll_state(&mut seen, &mut cx).is_pending());
        drop(tx);
        assert_eq!(
            count.0.load(std::sync::atomic::Ordering::SeqCst),
            2,
            "woken by the end"
        );
        assert_eq!(sub.poll_state(&mut seen, &mut cx), Poll::Ready(None));
    }

    #[test]
    fn every_reader_gets_every_event_and_read_events_are_freed() {
        let tx = Sender::new(4, State::Idle);
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
        assert_eq!(
            lock(&tx.queue).events.capacity(),
            0,
            "and its room given back"
        );
    }

    #[test]
    fn picking_readers_skip_in_place_and_the_last_reader_takes_the_event() {
        let tx = Sender::new(8, State::Idle);
        let sub = tx.subscriber();
        let mut all = sub.subscribe();
        let mut odd = sub.subscribe();
        for n in 1..=4 {
            tx.send(ev(n));
        }
        let mut cx = Context::from_waker(Waker::noop());
        let mut picked = Vec::new();
        let mut pick = |e: &Event| match e {
            Event::Acked(id) if id.as_str().ends_with(['1', '3']) => {
                picked.push(id.to_string());
                true
            }
            _ => false,
        };
        while let Poll::Ready(Some(Recv::Event(()))) = odd.poll_pick(&mut cx, &mut pick) {}
        assert_eq!(picked, ["c-1", "c-3"]);
        assert_eq!(lock(&tx.queue).events.len(), 4, "`all` has read none");
        for n in 1..=4 {
            assert_eq!(id(next(&mut all)), format!("c-{n}"));
        }
        assert!(lock(&tx.queue).events.is_empty());
    }

    #[test]
    fn a_slow_reader_is_told_how_many_it_missed() {
        let tx = Sender::new(2, State::Idle);
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
        let tx = Sender::new(8, State::Idle);
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
        let tx = Sender::new(8, State::Idle);
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
