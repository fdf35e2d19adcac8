//! [`Connection`]: the state machine that ties every part of the core together.

use std::collections::VecDeque;

use rand::Rng;
use rand_pcg::Pcg32;
use serde_json::Value;
use tracing::{debug, info, trace, warn};

use super::backoff::Backoff;
use super::drafts::Drafts;
use super::endpoint;
use super::heartbeat::{Beat, Heartbeat};
use super::outbox::{EphemeralKey, Full, Next, Outbox};
use super::rate_limit::RateLimiter;
use super::resume::{SeqTracker, SeqVerdict};
use super::subscriptions::{Control, Subscriptions};
use super::text;
use super::time::millis;
use super::{
    Action, AttemptId, Config, ConfigError, DraftOptions, DraftState, Event, FrameText, Input,
    Instant, MessageId, Metrics, Resolution, SendError, SendFailure, State,
};
use crate::protocol::{
    Channel, ChannelRef, ClientFrame, ClientMessage, CloseCode, Connected, ErrorCode, Feature,
    Heartbeat as HeartbeatData, Message as _, Resume, ServerFrame, ServerMessage,
};

/// The code the client closes with (normal closure; the reason says why).
const CLIENT_CLOSE: u16 = 1000;
/// Overdue acks are handled in batches of this width.
const ACK_TIMEOUT_SLACK: std::time::Duration = std::time::Duration::from_secs(1);
/// Control frames remembered for a `rate_limited` retry.
const MAX_CONTROL_IN_FLIGHT: usize = 64;
/// Used when the server gives `rate_limited` without `retryAfterMs`.
const DEFAULT_RETRY_AFTER_MS: u64 = 1_000;
/// The longest pause a `rate_limited` error can impose (the seed's whole window).
const MAX_RETRY_AFTER_MS: u64 = 60_000;
/// After a close 4008 (policy / rate abuse) the next attempt waits at least this long: an
/// immediate reconnect would repeat what the server just refused.
const POLICY_CLOSE_MIN_DELAY: std::time::Duration = std::time::Duration::from_secs(2);

/// A token: kept out of `Debug` output, so logging a `Connection` cannot leak it.
#[derive(Clone)]
struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The socket of the current attempt, as far as the core knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    /// No socket.
    Down,
    /// `Action::Connect` emitted; waiting for `Opened`, then for `connected`, by `deadline`.
    Opening { deadline: Instant, opened: bool },
    /// The server's `connected` arrived.
    Up,
}

/// One logical client connection to a `pitchey-v1` server, across any number of sockets.
///
/// See the [module docs](super) for how to drive it.
#[derive(Debug)]
pub struct Connection {
    pub(super) config: Config,
    state: State,
    link: Link,
    token: Option<Secret>,
    /// Bumped by every `set_token`; the attempt remembers the one it connected with, so
    /// that a 4001 for an old token does not throw away a fresh one set meanwhile.
    token_generation: u64,
    attempt_token_generation: u64,
    /// The current attempt (the latest `Action::Connect`); inputs of others are ignored.
    attempt: AttemptId,
    /// When the pending retry (`Reconnecting`) or the token wait (`AwaitingToken`) ends.
    timer_at: Option<Instant>,
    /// Consecutive attempts that ended before `connected` (a possible refused token that
    /// the transport could not report as such).
    early_closes: u32,
    /// The token generation when a fresh token was asked for because of `early_closes`:
    /// a newer token that fails the same way is taken as refused.
    suspected_at_generation: Option<u64>,
    /// The last thing the server said while refusing us (close reason, `error` message).
    refusal_reason: Option<String>,
    /// Frames of this link waiting for [`Input::Written`], oldest first: `Some` for a
    /// durable message (done on a server without acks once its write is confirmed). A
    /// `Vec`, as `actions` and the outbox: a few entries, and one queue type fewer in the
    /// browser package (README "Size").
    unconfirmed: Vec<Option<MessageId>>,
    /// The smallest frame a server refused with close 4009; larger ones are refused by
    /// `send` instead of being sent into another close.
    refused_size: Option<usize>,
    /// How many control frames at the front of `subs.pending` are `rate_limited` retries:
    /// the next retry goes behind them, so retries keep their original order.
    retried_controls: usize,
    /// Wall-clock time (ms since the Unix epoch) at an instant, from the driver: pings
    /// carry epoch milliseconds, as the seed's do.
    wall_clock: Option<(u64, Instant)>,
    /// A graceful close is under way: close once the outbox is empty or at this instant.
    closing_at: Option<Instant>,
    /// Closed by `suspend` (the app went to the background), not by the app's choice:
    /// `resume` reconnects.
    suspended: bool,
    /// A `seq` was restored from a snapshot: the first connection is a reconnect.
    restored_seq: bool,
    rng: Pcg32,
    id_prefix: String,
    next_id: u64,
    backoff: Backoff,
    /// When the current connection counts as stable (resets the backoff).
    stable_at: Option<Instant>,
    auth_failures: u32,
    ever_connected: bool,
    /// Sockets that reported `Opened`.
    sockets_opened: u64,
    session: Option<Connected>,
    /// Drained at once after each input.
    actions: Vec<Action>,
    /// A `VecDeque`, unlike `actions`: the client's fan-out queues events in one too, and
    /// a second queue type for them costs more than it saves.
    pub(super) events: VecDeque<Event>,
    pub(super) outbox: Outbox,
    limiter: RateLimiter,
    heartbeat: Heartbeat,
    subs: Subscriptions,
    /// Control frames written with an id on this connection, for `rate_limited` retries
    /// (the newest [`MAX_CONTROL_IN_FLIGHT`]).
    control_in_flight: Vec<(String, Control)>,
    pub(super) seq: SeqTracker,
    /// The last presence the app set: a server marks a reconnecting user `online`, so
    /// it is said again after every reconnect.
    presence: Option<FrameText>,
    resume_asked: bool,
    pub(super) drafts: Drafts,
    metrics: Metrics,
    /// The latest `now` seen, for metrics taken without one.
    last_now: Instant,
}

impl Connection {
    /// A connection in [`State::Idle`]. Nothing happens until [`Connection::connect`].
    ///
    /// `rng_seed` must be real entropy from the driver (the OS, `crypto.getRandomValues`):
    /// message ids start with a prefix drawn from it, and the server de-duplicates ids per
    /// user, so two clients of one user with the same seed would have each other's
    /// messages dropped as duplicates. Tests pass a fixed seed to replay a run exactly;
    /// the generator (Pcg32) gives the same sequence on every target.
    pub fn new(config: Config, rng_seed: u64, now: Instant) -> Self {
        // The seed is the generator's state as is (`seed_from_u64` first stirs it through
        // a second generator: code the browser package would carry for nothing, as the
        // seed is already random). The stream is rand_pcg's documented default.
        let mut rng = Pcg32::new(rng_seed, 0x0a02_bdbf_7bb3_c0a7);
        // Ids must not collide with another client's or an earlier run's that the server
        // still remembers: 64 random bits.
        let id_prefix = text::hex16(rng.random::<u64>());
        Connection {
            state: State::Idle,
            link: Link::Down,
            token: config.token.clone().map(Secret),
            token_generation: 0,
            attempt_token_generation: 0,
            attempt: AttemptId(0),
            timer_at: None,
            early_closes: 0,
            suspected_at_generation: None,
            refusal_reason: None,
            unconfirmed: Vec::new(),
            refused_size: None,
            retried_controls: 0,
            wall_clock: None,
            closing_at: None,
            suspended: false,
            restored_seq: false,
            rng,
            id_prefix,
            next_id: 0,
            backoff: Backoff::new(config.backoff.clone()),
            stable_at: None,
            auth_failures: 0,
            ever_connected: false,
            sockets_opened: 0,
            session: None,
            actions: Vec::new(),
            events: VecDeque::new(),
            outbox: Outbox::new(config.outbox_capacity),
            limiter: RateLimiter::new(config.rate_limit, config.rate_limit_latency_allowance, now),
            heartbeat: Heartbeat::new(config.heartbeat_interval, config.heartbeat_timeout),
            subs: Subscriptions::default(),
            control_in_flight: Vec::new(),
            seq: SeqTracker::default(),
            presence: None,
            resume_asked: false,
            drafts: Drafts::default(),
            metrics: Metrics::default(),
            last_now: now,
            config,
        }
    }

    // ----- lifecycle ---------------------------------------------------------------------

    /// Start connecting (from `Idle`, `Closed`, `AuthFailed`, `AwaitingToken`, or to skip a
    /// reconnect delay). Emits [`Action::Connect`], or [`Event::TokenNeeded`] when there is
    /// no token. No effect while `Connecting` or `Connected`.
    ///
    /// Fails, and changes nothing, when [`Config::url`] is not a `ws://` or `wss://` URL:
    /// retrying could never help.
    pub fn connect(&mut self, now: Instant) -> Result<(), ConfigError> {
        endpoint::check(&self.config.url)?;
        self.closing_at = None;
        self.suspended = false;
        match self.state {
            State::Connecting | State::Connected => {}
            State::Reconnecting { .. } => self.start_attempt(now),
            _ => {
                self.backoff.reset();
                self.reset_auth_tracking();
                self.start_attempt(now);
            }
        }
        self.flush(now);
        Ok(())
    }

    /// Close for good (until [`Connection::connect`]): emits [`Action::Close`] if a socket
    /// is open or opening; state [`State::Closed`]. The outbox and subscriptions are kept
    /// and resume on the next `connect`.
    pub fn disconnect(&mut self, now: Instant) {
        self.suspended = false;
        self.close_link(now);
    }

    fn close_link(&mut self, now: Instant) {
        self.closing_at = None;
        self.timer_at = None;
        if self.link != Link::Down {
            self.push_close("client disconnect");
            self.teardown(now, "client disconnect".into());
        }
        self.set_state(State::Closed);
    }

    /// Close once everything queued is delivered: durable messages are flushed (and acked,
    /// on servers with acks) for at most `timeout`, then the socket is closed with 1000 and
    /// the state becomes [`State::Closed`], as with [`Connection::disconnect`]. What is
    /// still queued then stays in the outbox (see [`Connection::export`]).
    pub fn close_gracefully(&mut self, timeout: std::time::Duration, now: Instant) {
        if self.state.is_stopped() {
            self.disconnect(now);
            return;
        }
        self.closing_at = Some(now + timeout);
        self.check_closing(now);
    }

    /// A fresh token from the app's provider. Used for every later connection attempt;
    /// in `AwaitingToken` or `AuthFailed` it starts reconnecting.
    pub fn set_token(&mut self, token: impl Into<String>, now: Instant) {
        self.token = Some(Secret(token.into()));
        self.token_generation += 1;
        match self.state {
            State::AwaitingToken => self.schedule_retry(now),
            State::AuthFailed { .. } => {
                self.backoff.reset();
                self.reset_auth_tracking();
                self.start_attempt(now);
            }
            _ => {}
        }
        self.flush(now);
    }

    /// The app has no token to give (signed out): stop with [`State::AuthFailed`] now
    /// instead of waiting for [`Config::token_timeout`].
    pub fn token_unavailable(&mut self, now: Instant) {
        let _ = now;
        if matches!(self.state, State::AwaitingToken) {
            self.auth_failed();
        }
    }

    /// The platform says the network is back or the app came to the foreground (browser
    /// `online` / `visibilitychange`, a phone's network callback or `onForeground`): a
    /// pending reconnect is made now instead of after its backoff delay, and a connected
    /// link is checked with a `ping` at once (after a network change or a sleep it may be
    /// dead without having said so). Nothing happens in a stopped state: an explicit
    /// `disconnect` stays disconnected.
    pub fn wake(&mut self, now: Instant) {
        match self.state {
            State::Reconnecting { .. } => self.start_attempt(now),
            State::Connected => {
                self.heartbeat.ping_now(now);
                self.handle_timeout(now);
            }
            _ => {}
        }
        self.flush(now);
    }

    /// The app went to the background (a phone's `onBackground`): close the link cleanly
    /// with 1000 and stop reconnecting, keeping the outbox and subscriptions, until
    /// [`Connection::resume`]. State [`State::Closed`]. No effect when already stopped, so
    /// an app that had disconnected stays disconnected after `resume`.
    pub fn suspend(&mut self, now: Instant) {
        if self.state.is_stopped() {
            return;
        }
        self.close_link(now);
        self.suspended = true;
    }

    /// Back in the foreground: reconnect at once if [`Connection::suspend`] closed the link,
    /// otherwise the same as [`Connection::wake`].
    pub fn resume(&mut self, now: Instant) {
        if self.suspended {
            self.suspended = false;
            self.backoff.reset();
            self.start_attempt(now);
            self.flush(now);
        } else {
            self.wake(now);
        }
    }

    /// The driver's wall clock: `epoch_ms` milliseconds since the Unix epoch at `now`.
    /// Pings carry epoch milliseconds (as the seed's clients do); without this call they
    /// carry the core's own clock. Call it again after the device slept.
    pub fn set_wall_clock(&mut self, epoch_ms: u64, now: Instant) {
        self.wall_clock = Some((epoch_ms, now));
    }

    /// Feed what the transport reported about the socket of `attempt`. Inputs of any
    /// attempt but the current one (the latest [`Action::Connect`]) are ignored: a
    /// browser reports `onclose` of a socket it was told to close long after a new
    /// attempt started.
    pub fn handle(&mut self, attempt: AttemptId, input: Input, now: Instant) {
        if attempt != self.attempt || self.link == Link::Down {
            trace!(%attempt, current = %self.attempt, "input of an old socket ignored");
            return;
        }
        match input {
            Input::Opened => {
                // Nothing to do until the server's `connected`; the attempt's deadline
                // keeps running so a server that never greets is given up on.
                trace!("transport opened");
                if let Link::Opening { opened, .. } = &mut self.link
                    && !*opened
                {
                    *opened = true;
                    self.sockets_opened += 1;
                }
            }
            Input::Text(text) => self.on_text(&text, now),
            Input::Written(n) => self.on_written(n, now),
            Input::Closed { code, reason } => self.on_closed(code, reason, now),
            Input::Refused { status } => {
                info!(status, "upgrade refused");
                let mut reason = String::from("HTTP ");
                text::push_decimal(&mut reason, u64::from(status));
                reason.push_str(" on upgrade");
                match status {
                    401 => self.on_closed(CloseCode::Unauthorized.code(), reason, now),
                    403 => self.on_closed(CloseCode::Forbidden.code(), reason, now),
                    _ => self.on_failed(reason, now),
                }
            }
            Input::Failed { reason } => {
                info!(%reason, "connection failed");
                self.on_failed(["failed: ", &reason].concat(), now);
            }
        }
        self.check_closing(now);
        self.flush(now);
    }

    /// Run the timers that are due at `now`. Harmless to call early.
    ///
    /// Time may jump (a phone that slept, a browser tab that was frozen): everything that
    /// fell due in between is handled once, as of `now`: a reconnect due is made, a ping
    /// unanswered for longer than the heartbeat timeout ends the link, typing that went
    /// stale is dropped, and no ping or retry is made once per missed period.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due = self.timer_at.is_some_and(|t| now >= t);
        match self.state {
            State::Reconnecting { .. } if due => self.start_attempt(now),
            State::AwaitingToken if due => {
                info!("no token came in time");
                self.auth_failed();
            }
            _ => {}
        }
        if let Link::Opening { deadline, .. } = self.link
            && now >= deadline
        {
            info!("connection attempt timed out");
            self.push_close("connect timeout");
            self.teardown(now, "connect timeout".into());
            self.schedule_retry(now);
        }
        if self.link == Link::Up {
            while let Some(beat) = self.heartbeat.poll(now) {
                match beat {
                    Beat::Ping(at) => {
                        // Pings bypass the rate limiter: the server does not count them.
                        let ts = self.epoch_ms(at);
                        self.heartbeat.set_outstanding_ts(ts);
                        let frame =
                            ClientFrame::new(ClientMessage::Ping(HeartbeatData { ts: Some(ts) }));
                        self.write(frame.encode().into(), None);
                    }
                    Beat::Dead => {
                        info!("heartbeat timeout: link dead");
                        self.push_close("heartbeat timeout");
                        self.teardown(now, "heartbeat timeout".into());
                        self.schedule_retry(now);
                        break;
                    }
                }
            }
        }
        if self.link == Link::Up && self.supports(Feature::Ack) {
            // Messages due within the next second go too: one wake-up per burst, not one
            // per message.
            let n = self
                .outbox
                .requeue_overdue(now + ACK_TIMEOUT_SLACK, self.config.ack_timeout);
            if n > 0 {
                debug!(n, "no ack in time: writing again");
            }
        }
        // Offline, a gap is for the resume after the reconnect to fill, not a loss yet.
        if self.link == Link::Up && self.seq.gap_expired(now, self.config.seq_gap_timeout) {
            self.on_seq_gap();
        }
        self.expire_messages(now);
        self.drafts_on_timeout(now);
        self.check_closing(now);
        self.flush(now);
    }

    /// When [`Connection::handle_timeout`] must be called next; `None`: only an input or
    /// an app call can change anything.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t: Option<Instant> = None;
        let mut at = |i: Option<Instant>| {
            if let Some(i) = i {
                t = Some(t.map_or(i, |t| t.min(i)));
            }
        };
        if matches!(
            self.state,
            State::Reconnecting { .. } | State::AwaitingToken
        ) {
            at(self.timer_at);
        }
        if let Link::Opening { deadline, .. } = self.link {
            at(Some(deadline));
        }
        if self.link == Link::Up {
            at(self.heartbeat.next_timeout());
            if self.supports(Feature::Ack) {
                at(self.outbox.ack_deadline(self.config.ack_timeout));
            }
            if self.has_sendable() {
                at(self.limiter.next_available());
            }
            at(self.seq.gap_deadline(self.config.seq_gap_timeout));
        }
        at(self.outbox.next_expiry());
        at(self.closing_at);
        at(self.drafts.next_timeout());
        t
    }

    /// The next thing the driver must do.
    pub fn poll_action(&mut self) -> Option<Action> {
        (!self.actions.is_empty()).then(|| self.actions.remove(0))
    }

    /// The next event for the app.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Every pending action, in order, taken out of the core at once: the caller owns them
    /// (the iterator holds no borrow of the core), and one it drops unread is not done.
    /// [`Connection::poll_action`] takes them one at a time instead.
    pub fn drain_actions(&mut self) -> std::vec::IntoIter<Action> {
        std::mem::take(&mut self.actions).into_iter()
    }

    /// Every pending event, in order: [`Connection::poll_event`] until `None`, as one
    /// exact-size iterator.
    pub fn drain_events(&mut self) -> impl ExactSizeIterator<Item = Event> + '_ {
        PopFront(&mut self.events)
    }

    // ----- sending -----------------------------------------------------------------------

    /// Queue a message for the server.
    ///
    /// Durable kinds (`pitch_view`, `draft_sync`, unknown types) get a client id, wait in
    /// order and stay until acked; ephemeral kinds (`typing`, `presence_update`) replace any
    /// pending message with the same key. Messages sent while offline go out on (re)connect.
    /// `ping`, `pong`, `subscribe`, `unsubscribe` and `resume` are refused
    /// ([`SendError::NotSendable`]): the core sends them itself.
    ///
    /// The returned id is on the wire for durable messages and comes back in
    /// [`Event::Acked`] or [`Event::SendFailed`]; ephemeral messages get no event.
    pub fn send(&mut self, msg: ClientMessage, now: Instant) -> Result<MessageId, SendError> {
        let r = self.enqueue(msg, None, now);
        self.flush(now);
        r
    }

    /// [`Connection::send`] for a message that is worthless after `expires_at` (a view
    /// report of a session long over, a "join now" reply): if it cannot be written by
    /// then, it is dropped and reported with [`SendFailure::Expired`] instead of being sent
    /// late. One written before its expiry and still unacked is not sent again after it.
    /// Ephemeral messages have their own staleness rules and ignore the expiry.
    pub fn send_with_expiry(
        &mut self,
        msg: ClientMessage,
        expires_at: Instant,
        now: Instant,
    ) -> Result<MessageId, SendError> {
        let r = self.enqueue(msg, None, now);
        if let Ok(id) = &r {
            self.outbox.set_expiry(id, expires_at);
        }
        self.expire_messages(now);
        self.flush(now);
        r
    }

    /// Queue without flushing; `draft_id` tags a draft save.
    pub(super) fn enqueue(
        &mut self,
        msg: ClientMessage,
        draft_id: Option<String>,
        now: Instant,
    ) -> Result<MessageId, SendError> {
        if let Some(hint) = super::outbox::core_only(&msg) {
            return Err(SendError::NotSendable {
                kind: msg.kind().to_owned(),
                hint: hint.to_owned(),
            });
        }
        let key = EphemeralKey::of(&msg);
        let id = self.make_id();
        let frame = ClientFrame::new(msg);
        let pushed = match key {
            Some(key) => {
                let text = FrameText::from(frame.encode());
                self.check_size(&text)?;
                if key == EphemeralKey::Presence {
                    self.presence = Some(text.clone());
                }
                self.outbox.push_ephemeral(key, text, now)
            }
            None => {
                let text = FrameText::from(frame.with_id(id.as_str()).encode());
                self.check_size(&text)?;
                self.outbox.push_durable(id.clone(), text, draft_id)
            }
        };
        match pushed {
            Ok(()) => Ok(id),
            Err(Full) => {
                warn!(capacity = self.config.outbox_capacity, "outbox full");
                self.events.push_back(Event::QueueFull);
                Err(SendError::QueueFull {
                    capacity: self.config.outbox_capacity,
                })
            }
        }
    }

    pub(super) fn check_size(&self, text: &str) -> Result<(), SendError> {
        if text.len() > self.config.max_message_bytes {
            return Err(SendError::TooLarge {
                size: text.len(),
                max: self.config.max_message_bytes,
            });
        }
        if let Some(refused) = self.refused_size
            && text.len() >= refused
        {
            return Err(SendError::RefusedBefore {
                size: text.len(),
                refused,
            });
        }
        Ok(())
    }

    pub(super) fn make_id(&mut self) -> MessageId {
        self.next_id += 1;
        // Room for the number too: growing the string would be a `realloc` per message.
        let mut id = String::with_capacity(self.id_prefix.len() + 3 + 20);
        id.push_str("c-");
        id.push_str(&self.id_prefix);
        id.push('-');
        text::push_decimal(&mut id, self.next_id);
        MessageId(id)
    }

    /// Subscribe to a channel, now (servers with the `subscribe` feature) and after every
    /// reconnect. On a server without `subscribe` this only records the channel (the seed
    /// delivers everything). Each call counts one holder (an app handle): a channel
    /// subscribed twice stays subscribed until it is unsubscribed twice, and only the
    /// first subscribe and the last unsubscribe reach the server.
    pub fn subscribe(&mut self, channel: Channel, now: Instant) -> Result<(), SendError> {
        if self.subs.len() >= self.config.max_subscriptions && !self.subs.contains(&channel) {
            return Err(SendError::TooManySubscriptions {
                max: self.config.max_subscriptions,
            });
        }
        let live = self.supports(Feature::Subscribe);
        self.subs.add(channel, live);
        self.flush(now);
        Ok(())
    }

    /// Release one holder of a channel; the last one unsubscribes (no-op if not subscribed).
    pub fn unsubscribe(&mut self, channel: &Channel, now: Instant) {
        let live = self.supports(Feature::Subscribe);
        self.subs.remove(channel, live);
        self.flush(now);
    }

    /// The channels currently subscribed.
    pub fn subscriptions(&self) -> impl Iterator<Item = &Channel> + '_ {
        self.subs.channels()
    }

    // ----- state and counters ------------------------------------------------------------

    /// The current attempt: the one of the latest [`Action::Connect`].
    pub fn current_attempt(&self) -> AttemptId {
        self.attempt
    }

    /// The lifecycle state.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The server's `connected` data of the current connection, if connected.
    pub fn session(&self) -> Option<&Connected> {
        self.session.as_ref()
    }

    /// A snapshot of the counters at `now`'s last update (tokens are as of the last call
    /// that took `now`).
    pub fn metrics(&self) -> Metrics {
        let mut m = self.metrics.clone();
        m.queue_depth = self.outbox.len();
        m.in_flight = self.outbox.in_flight();
        m.tokens_left = self.limiter.tokens_left(self.limiter_clock());
        m.rtt = self.heartbeat.rtt();
        m.srtt = self.heartbeat.srtt();
        m
    }

    fn limiter_clock(&self) -> Instant {
        self.last_now
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Whether the current connection's server announced `feature` (false when offline).
    pub fn supports(&self, feature: Feature) -> bool {
        self.link == Link::Up && self.session.as_ref().is_some_and(|s| s.supports(feature))
    }

    // ----- drafts (logic in drafts.rs) ---------------------------------------------------

    /// Start tracking a draft with its `initial` content (not dirty) and the server
    /// version it came from. Each call counts one holder (an app handle): re-opening an
    /// open draft shares its live state and the first holder's options, and it stays open
    /// until every holder has called [`Connection::draft_close`].
    pub fn draft_open(
        &mut self,
        draft_id: impl Into<String>,
        draft_type: Option<String>,
        initial: Value,
        base_version: Option<u64>,
        options: DraftOptions,
    ) {
        self.drafts
            .open(draft_id.into(), draft_type, initial, base_version, options);
    }

    /// Release one holder of a draft; the last one stops tracking it. A save already queued
    /// still goes out.
    pub fn draft_close(&mut self, draft_id: &str) {
        self.drafts.close(draft_id);
    }

    /// New local content (marks the draft dirty). `valid` is the app's validator verdict:
    /// only valid content is auto-saved. The auto-save fires
    /// [`DraftOptions::auto_save_interval`] after the draft became dirty.
    pub fn draft_update(
        &mut self,
        draft_id: &str,
        content: Value,
        valid: bool,
        now: Instant,
    ) -> Result<(), SendError> {
        let r = self.draft_update_inner(draft_id, content, valid, now);
        self.flush(now);
        r
    }

    /// Save now instead of waiting for the auto-save. Does nothing if the draft is clean
    /// or a save or conflict is pending; [`SendError::InvalidDraft`] if the app's validator
    /// refused the content.
    pub fn draft_save_now(&mut self, draft_id: &str, now: Instant) -> Result<(), SendError> {
        let r = self.draft_save(draft_id, true, now);
        self.flush(now);
        r
    }

    /// Settle a conflict reported by [`Event::DraftConflict`].
    pub fn draft_resolve(
        &mut self,
        draft_id: &str,
        resolution: Resolution,
        now: Instant,
    ) -> Result<(), SendError> {
        let r = self.draft_resolve_inner(draft_id, resolution, now);
        self.flush(now);
        r
    }

    /// The server's version of a draft, fetched by the app out of band (e.g. over HTTP
    /// after [`Event::ContinuityLost`]). Handled like a `draft_sync` from another
    /// session: adopted if the draft is clean, otherwise resolved by its strategy.
    pub fn draft_remote(
        &mut self,
        draft_id: &str,
        content: Value,
        version: Option<u64>,
        now: Instant,
    ) -> Result<(), SendError> {
        if self.drafts.get(draft_id).is_none() {
            return Err(SendError::UnknownDraft(draft_id.to_owned()));
        }
        self.draft_on_remote(
            crate::protocol::DraftSynced {
                draft_id: draft_id.to_owned(),
                draft_type: None,
                content,
                version,
                updated_at: None,
                session_id: None,
            },
            now,
        );
        self.flush(now);
        Ok(())
    }

    /// The state of an open draft.
    pub fn draft_state(&self, draft_id: &str) -> Option<&DraftState> {
        self.drafts.get(draft_id).map(|d| &d.state)
    }

    // ----- internals ---------------------------------------------------------------------

    fn set_state(&mut self, state: State) {
        if self.state != state {
            debug!(?state, "state");
            self.state = state.clone();
            self.events.push_back(Event::StateChanged(state));
        }
    }

    fn start_attempt(&mut self, now: Instant) {
        if self.link != Link::Down {
            // A connect during an attempt: abandon the old socket first.
            self.push_close("reconnecting");
            self.teardown(now, "reconnecting".into());
        }
        self.timer_at = None;
        let Some(Secret(token)) = self.token.clone() else {
            self.await_token(now);
            return;
        };
        let url = match endpoint::connect_url(&self.config.url, &token) {
            Ok(url) => url,
            Err(e) => {
                // Checked by `connect`; a config changed since cannot be retried into shape.
                warn!(error = %e, "cannot connect");
                self.set_state(State::Closed);
                return;
            }
        };
        self.metrics.connect_attempts += 1;
        self.attempt_token_generation = self.token_generation;
        self.attempt = AttemptId(self.attempt.0 + 1);
        self.actions.push(Action::Connect {
            attempt: self.attempt,
            url,
            token,
        });
        self.link = Link::Opening {
            deadline: now + self.config.connect_timeout,
            opened: false,
        };
        self.set_state(State::Connecting);
    }

    fn await_token(&mut self, now: Instant) {
        self.events.push_back(Event::TokenNeeded);
        self.timer_at = Some(now + self.config.token_timeout);
        self.set_state(State::AwaitingToken);
    }

    fn auth_failed(&mut self) {
        self.timer_at = None;
        self.set_state(State::AuthFailed {
            reason: self.refusal_reason.clone(),
        });
    }

    fn reset_auth_tracking(&mut self) {
        self.auth_failures = 0;
        self.early_closes = 0;
        self.suspected_at_generation = None;
        self.refusal_reason = None;
    }

    fn push_close(&mut self, reason: &str) {
        self.actions.push(Action::Close {
            attempt: self.attempt,
            code: CLIENT_CLOSE,
            reason: reason.into(),
        });
    }

    /// Forget the socket: everything in flight will be re-sent on the next one.
    fn teardown(&mut self, now: Instant, reason: String) {
        if self.link == Link::Up && self.stable_at.is_some_and(|t| now >= t) {
            // The connection stayed up long enough: the next failure starts over.
            self.backoff.reset();
        }
        self.link = Link::Down;
        self.session = None;
        self.stable_at = None;
        self.heartbeat.stop();
        // Frames whose write was never confirmed go back in order with the rest.
        self.unconfirmed.clear();
        self.outbox.requeue_all();
        self.subs.pending.clear();
        self.retried_controls = 0;
        self.control_in_flight.clear();
        self.metrics.last_disconnect = Some(reason);
    }

    /// A socket closed: before the server's `connected`, that counts towards a suspected
    /// token (see [`Config::suspect_token_after`]). A failure the transport could tell
    /// apart ([`Input::Failed`]: refused TCP connection, DNS, TLS) does not.
    fn end_attempt(&mut self, now: Instant, reason: String) {
        if matches!(self.link, Link::Opening { .. }) {
            self.early_closes += 1;
        }
        self.teardown(now, reason);
    }

    /// A network failure: no verdict on the token (and the end of a row of early
    /// closes); retry.
    fn on_failed(&mut self, reason: String, now: Instant) {
        self.early_closes = 0;
        self.teardown(now, reason);
        self.schedule_retry(now);
    }

    /// True if the early closes made the core give up on the token.
    ///
    /// A browser sees a refused upgrade and a server that is down alike (a close 1006
    /// before `connected`), so a suspected token is only asked about: `TokenNeeded` goes
    /// out and retrying goes on meanwhile, with the current token until a fresh one is set.
    /// Only a fresh token that then fails the same way is taken as refused: a client
    /// without a token provider, or a server that is merely down, keeps retrying.
    fn suspect_token(&mut self) -> bool {
        let after = self.config.suspect_token_after;
        if after == 0 || self.early_closes < after {
            return false;
        }
        match self.suspected_at_generation {
            Some(generation)
                if self.token_generation > generation
                    && self.attempt_token_generation == self.token_generation =>
            {
                info!(
                    attempts = self.early_closes,
                    "a fresh token failed the same way: taken as refused"
                );
                self.token = None;
                self.auth_failed();
                true
            }
            // Asked already, no fresh token yet: keep trying with what we have.
            Some(_) => false,
            None => {
                info!(
                    attempts = self.early_closes,
                    "attempts keep ending before `connected`: asking for a fresh token"
                );
                self.suspected_at_generation = Some(self.token_generation);
                self.early_closes = 0;
                self.events.push_back(Event::TokenNeeded);
                false
            }
        }
    }

    /// Plan the next attempt with backoff (or stop after `max_attempts`).
    fn schedule_retry(&mut self, now: Instant) {
        self.schedule_retry_after(now, std::time::Duration::ZERO);
    }

    /// Plan the next attempt no sooner than `floor` from now.
    fn schedule_retry_after(&mut self, now: Instant, floor: std::time::Duration) {
        if self.backoff.exhausted() {
            info!("giving up after max_attempts");
            self.set_state(State::Closed);
            return;
        }
        let delay = self.backoff.next_delay(&mut self.rng).max(floor);
        debug!(
            attempt = self.backoff.failures(),
            ?delay,
            "reconnect scheduled"
        );
        self.timer_at = Some(now + delay);
        self.set_state(State::Reconnecting {
            attempt: self.backoff.failures(),
            delay,
        });
        if delay.is_zero() {
            // An immediate retry needs no timer round trip through the driver.
            self.start_attempt(now);
        }
    }

    fn on_closed(&mut self, code: u16, reason: String, now: Instant) {
        info!(code, %reason, "connection closed");
        if !reason.is_empty() {
            self.refusal_reason = Some(reason.clone());
        }
        let close = CloseCode::from(code);
        let mut why = String::from("closed ");
        text::push_decimal(&mut why, u64::from(code));
        why.push_str(": ");
        why.push_str(&reason);
        if close == CloseCode::Unauthorized {
            self.teardown(now, why);
        } else {
            self.end_attempt(now, why);
        }
        match close {
            CloseCode::Unauthorized if self.attempt_token_generation != self.token_generation => {
                // The refused token is an old one: the app set a fresh one meanwhile.
                self.schedule_retry(now);
            }
            CloseCode::Unauthorized => {
                self.auth_failures += 1;
                // The token was refused: never reuse it.
                self.token = None;
                if self.auth_failures >= self.config.max_auth_failures {
                    info!("token refused {} times in a row", self.auth_failures);
                    self.auth_failed();
                } else {
                    self.await_token(now);
                }
            }
            CloseCode::Forbidden => self.set_state(State::Closed),
            // 4009 is ours; a server may close with the WebSocket code 1009 instead.
            CloseCode::TooLarge | CloseCode::MessageTooBig => {
                self.drop_refused_frame();
                self.schedule_retry(now);
            }
            CloseCode::PolicyViolation => self.schedule_retry_after(now, POLICY_CLOSE_MIN_DELAY),
            _ => {
                if !self.suspect_token() {
                    self.schedule_retry(now);
                }
            }
        }
    }

    /// Close 4009 (or 1009): the server refused a frame as too large. The largest durable message
    /// that was in flight is the one it was reading; sending it again would only bring
    /// the same close, so it is reported and dropped, and nothing that large is sent again.
    fn drop_refused_frame(&mut self) {
        let Some((id, size)) = self.outbox.largest_attempted() else {
            warn!("closed 4009 (too large) with no message of ours in flight");
            return;
        };
        self.refused_size = Some(self.refused_size.map_or(size, |r| r.min(size)));
        if let Some(entry) = self.outbox.remove(id.as_str()) {
            warn!(id = %entry.id, size, "the server refused this message as too large");
            self.fail_durable(entry, SendFailure::RefusedTooLarge { size });
        }
    }

    /// Report a durable message as failed, and its draft's save with it.
    pub(super) fn fail_durable(&mut self, entry: super::outbox::Durable, failure: SendFailure) {
        let now = self.last_now;
        self.events
            .push_back(Event::SendFailed(entry.id.clone(), failure.clone()));
        if let Some(draft_id) = entry.draft_id {
            self.draft_on_failed(&draft_id, &entry.id, failure, now);
        }
    }

    /// Report and drop queued messages whose expiry has passed.
    fn expire_messages(&mut self, now: Instant) {
        while let Some(entry) = self.outbox.take_expired(now) {
            info!(id = %entry.id, "message expired before it could be sent");
            self.fail_durable(entry, SendFailure::Expired);
        }
    }

    /// A graceful close ends once nothing durable is left to deliver, or at its deadline.
    fn check_closing(&mut self, now: Instant) {
        let Some(deadline) = self.closing_at else {
            return;
        };
        if self.outbox.durable_len() == 0 || now >= deadline {
            if self.outbox.durable_len() > 0 {
                info!(
                    left = self.outbox.durable_len(),
                    "graceful close timed out; the rest stays queued"
                );
            }
            self.disconnect(now);
        }
    }

    /// `at` in epoch milliseconds, if the driver gave the wall clock.
    pub(super) fn epoch_ms_of(&self, at: Instant) -> Option<u64> {
        self.wall_clock.map(|_| self.epoch_ms(at))
    }

    /// Epoch milliseconds as an instant (`now` without a wall clock, the safe side for
    /// an expiry).
    pub(super) fn instant_of_epoch_ms(&self, ms: u64, now: Instant) -> Instant {
        match self.wall_clock {
            Some((epoch, then)) if ms >= epoch => {
                then + std::time::Duration::from_millis(ms - epoch)
            }
            Some((epoch, then)) => Instant::from_duration(
                then.since_origin()
                    .saturating_sub(std::time::Duration::from_millis(epoch - ms)),
            ),
            None => now,
        }
    }

    /// A restored `seq`: the first connection resumes from it.
    pub(super) fn restore_seq(&mut self, last: u64) {
        self.seq.set_baseline(last);
        self.restored_seq = true;
    }

    /// `at` as epoch milliseconds, when the driver gave the wall clock.
    fn epoch_ms(&self, at: Instant) -> u64 {
        match self.wall_clock {
            Some((epoch, then)) if at >= then => {
                epoch.saturating_add(millis(at.saturating_duration_since(then)))
            }
            Some((epoch, then)) => epoch.saturating_sub(millis(then.saturating_duration_since(at))),
            None => at.as_millis(),
        }
    }

    /// The transport confirmed the write of `n` more frames of this link.
    fn on_written(&mut self, n: usize, now: Instant) {
        let ack = self.supports(Feature::Ack);
        for _ in 0..n {
            if self.unconfirmed.is_empty() {
                warn!("transport confirmed more writes than were asked for");
                return;
            }
            // A `Vec`: a handful of frames are unconfirmed at a time.
            let sent = self.unconfirmed.remove(0);
            if let Some(id) = sent
                && !ack
                && let Some(entry) = self.outbox.remove(id.as_str())
            {
                // A seed server sends no acks: a confirmed write is as done as it gets.
                self.events.push_back(Event::Acked(entry.id.clone()));
                if let Some(draft_id) = entry.draft_id {
                    self.draft_on_saved(&draft_id, &entry.id, None, now);
                }
            }
        }
    }

    fn on_text(&mut self, text: &str, now: Instant) {
        self.metrics.frames_received += 1;
        let frame = match ServerFrame::decode(text) {
            Ok(f) => f,
            Err(e) => {
                self.metrics.invalid_frames += 1;
                warn!(error = %e, "undecodable server frame ignored");
                return;
            }
        };
        self.heartbeat.on_frame();
        if let Some(seq) = frame.seq {
            match self.seq.on_seq(seq, now) {
                SeqVerdict::Fresh => {}
                SeqVerdict::Duplicate => {
                    self.metrics.duplicates_dropped += 1;
                    trace!(seq, "duplicate frame dropped");
                    return;
                }
                SeqVerdict::GapAbandoned => {
                    info!(seq, "seq gap too wide to wait for: continuity lost");
                    self.events.push_back(Event::ContinuityLost);
                }
                SeqVerdict::Restarted => {
                    info!("server seq restarted: continuity lost");
                    self.events.push_back(Event::ContinuityLost);
                    // A resume still out asks for numbers of the old count: its refusal
                    // would report the same loss twice.
                    self.forget_resume();
                }
            }
        }
        match &frame.message {
            ServerMessage::Connected(c) => {
                if self.link == Link::Up {
                    self.on_resume_answer(c.resumed);
                } else {
                    self.on_connected(c.clone(), now);
                }
            }
            ServerMessage::Ping(hb) => {
                // Only the latest pong matters: while sending is paused they must not pile up.
                self.subs.pending.retain(|c| !matches!(c, Control::Pong(_)));
                self.subs.pending.push(Control::Pong(hb.ts));
                return;
            }
            ServerMessage::Pong(hb) => {
                self.heartbeat.on_pong(hb.ts, now);
                return;
            }
            ServerMessage::Ack(ack) => {
                self.on_ack(&ack.id, ack.version, now);
                return;
            }
            ServerMessage::Error(e) if self.on_error(e, now) => return,
            ServerMessage::DraftConflict(c) => {
                self.draft_on_conflict(c.clone(), frame.id.as_deref(), now);
            }
            ServerMessage::DraftSync(s) => {
                self.draft_on_remote(s.clone(), now);
            }
            ServerMessage::Disconnected(d) => {
                info!(reason = %d.reason, "server is disconnecting us");
            }
            _ => {}
        }
        self.events.push_back(Event::Message(frame));
    }

    fn on_connected(&mut self, c: Connected, now: Instant) {
        info!(session = %c.session_id, features = ?c.features, "connected");
        // An earlier socket that reached the server may have carried messages the server
        // now counts as delivered (its offline queue), even if its `connected` never
        // reached us: for continuity that is a reconnect too.
        let reconnect = self.ever_connected || self.sockets_opened > 1 || self.restored_seq;
        self.restored_seq = false;
        if self.ever_connected {
            self.metrics.reconnects += 1;
        }
        self.ever_connected = true;
        self.link = Link::Up;
        self.reset_auth_tracking();
        self.stable_at = Some(now + self.config.backoff.reset_after);
        self.limiter
            .set_limit(c.rate_limit.unwrap_or(self.config.rate_limit), now);
        let interval = c.heartbeat_ms.filter(|ms| *ms > 0).map_or(
            self.config.heartbeat_interval,
            std::time::Duration::from_millis,
        );
        self.heartbeat.start(now, interval);

        if reconnect
            && let Some(text) = self.presence.clone()
            && self
                .outbox
                .push_ephemeral(EphemeralKey::Presence, text, now)
                .is_err()
        {
            // Not silent: the app's status is stale on the server until its next change.
            warn!("outbox full: presence not restored after reconnect");
        }

        let mut resume = None;
        self.resume_asked = false;
        if let (Some(theirs), Some(ours)) = (
            c.last_seq.filter(|_| c.supports(Feature::Seq)),
            self.seq.last(),
        ) && theirs < ours
        {
            // The server's count is behind ours: it restarted without its log. Nothing
            // to resume from; one loss, said once.
            info!(theirs, ours, "server seq restarted: continuity lost");
            self.events.push_back(Event::ContinuityLost);
            self.seq.reset();
        } else if reconnect {
            if c.supports(Feature::Resume)
                && let Some(last) = self.seq.last()
            {
                resume = Some(last);
                self.resume_asked = true;
            } else if c.resumed != Some(true) {
                // No way to ask for what was missed while offline.
                self.events.push_back(Event::ContinuityLost);
                self.seq.reset();
            }
        }
        self.seq.restart_gap_wait(now);
        // After the resume decision: a new baseline must not paper over what was missed.
        if c.supports(Feature::Seq)
            && let Some(baseline) = c.last_seq
        {
            self.seq.set_baseline(baseline);
        }
        let subscribe = c.supports(Feature::Subscribe);
        self.subs.on_connected(resume, subscribe);
        self.retried_controls = 0;
        self.session = Some(c);
        self.set_state(State::Connected);
        if !subscribe {
            // A server without `subscribe` delivers everything: every channel is live.
            let channels: Vec<Channel> = self.subs.channels().cloned().collect();
            for channel in channels {
                self.events.push_back(Event::SubscriptionActive { channel });
            }
        }
    }

    /// Stop waiting for the answer to a `resume`.
    fn forget_resume(&mut self) {
        self.resume_asked = false;
        self.control_in_flight
            .retain(|(_, c)| !matches!(c, Control::Resume(_)));
        self.subs
            .pending
            .retain(|c| !matches!(c, Control::Resume(_)));
        self.retried_controls = self.retried_controls.min(self.subs.pending.len());
    }

    /// A `connected` frame on a live connection answers our `resume`.
    fn on_resume_answer(&mut self, resumed: Option<bool>) {
        if self.resume_asked && resumed == Some(false) {
            info!("server could not resume: continuity lost");
            self.events.push_back(Event::ContinuityLost);
            self.seq.reset();
        }
        self.resume_asked = false;
    }

    /// A `seq` gap stayed open: ask the server for what we missed, or give up on it.
    fn on_seq_gap(&mut self) {
        if self
            .subs
            .pending
            .iter()
            .any(|c| matches!(c, Control::Resume(_)))
        {
            return; // Not even written yet (rate limit): wait for it.
        }
        // A resume written a whole gap timeout ago and not answered is presumed lost (its
        // ack may have been); ask again. At most once per `seq_gap_timeout`.
        self.control_in_flight
            .retain(|(_, c)| !matches!(c, Control::Resume(_)));
        match self.seq.last() {
            // The replay fills the gap; its ack settles what it did not fill (the reference
            // server skips the echo of a session's own draft saves, so gaps are normal).
            Some(last) if self.supports(Feature::Resume) && self.supports(Feature::Ack) => {
                debug!(last, "seq gap: resuming");
                self.subs.pending.push(Control::Resume(last));
            }
            _ => {
                info!("seq gap did not fill: continuity lost");
                self.events.push_back(Event::ContinuityLost);
                self.seq.close_gaps();
            }
        }
    }

    fn on_ack(&mut self, id: &str, version: Option<u64>, now: Instant) {
        if let Some(entry) = self.outbox.remove(id) {
            trace!(id, "acked");
            match entry.draft_id {
                // The entry's id moves into the event: no copy per ack.
                None => self.events.push_back(Event::Acked(entry.id)),
                Some(draft_id) => {
                    self.events.push_back(Event::Acked(entry.id.clone()));
                    self.draft_on_saved(&draft_id, &entry.id, version, now);
                }
            }
        } else if let Some(i) = self.in_flight_at(id) {
            let (_, control) = self.control_in_flight.remove(i);
            match control {
                Control::Resume(_) => {
                    // The server sent everything it had for us before this ack.
                    self.resume_asked = false;
                    self.seq.close_gaps();
                }
                Control::Subscribe(channel) if self.subs.contains(&channel) => {
                    self.events.push_back(Event::SubscriptionActive { channel });
                }
                _ => {}
            }
        }
    }

    /// Handle an `error`; true when the core consumed it.
    fn on_error(&mut self, e: &crate::protocol::ErrorData, now: Instant) -> bool {
        if e.code == ErrorCode::RateLimited {
            // Capped: a server's number must not silence the client for hours.
            let wait = e
                .retry_after_ms
                .unwrap_or(DEFAULT_RETRY_AFTER_MS)
                .min(MAX_RETRY_AFTER_MS);
            info!(retry_after_ms = wait, "rate limited by the server");
            self.limiter
                .pause_until(now + std::time::Duration::from_millis(wait));
            // Not an attempt: the server did not look at it. It goes again, in its place.
            if let Some(id) = &e.id
                && !self.outbox.requeue_refused(id)
                && let Some(i) = self.in_flight_at(id)
            {
                let (_, control) = self.control_in_flight.remove(i);
                // Refusals come in the order the frames went out: each goes behind the
                // ones refused before it, so a subscribe stays ahead of its unsubscribe.
                let at = self.retried_controls.min(self.subs.pending.len());
                self.subs.pending.insert(at, control);
                self.retried_controls = at + 1;
            }
            return true;
        }
        if e.code == ErrorCode::Unauthorized {
            self.refusal_reason = Some(e.message.clone());
        }
        let Some(id) = &e.id else { return false };
        if let Some(i) = self.in_flight_at(id)
            && let Control::Subscribe(channel) = &self.control_in_flight[i].1
        {
            let channel = channel.clone();
            self.control_in_flight.remove(i);
            warn!(%channel, code = %e.code, message = %e.message, "subscription refused");
            // Forgotten for good: it would be refused again after every reconnect. Retries
            // of its frames leave the front of the queue with it: a later retry must still
            // go right behind the remaining ones (a subscribe ahead of its unsubscribe).
            self.retried_controls = self.subs.forget(&channel, self.retried_controls);
            self.events.push_back(Event::SubscriptionFailed {
                channel,
                code: e.code.clone(),
                message: e.message.clone(),
            });
            return true;
        }
        if let Some(i) = self.in_flight_at(id)
            && matches!(self.control_in_flight[i].1, Control::Resume(_))
        {
            // The server cannot replay (it lost or dropped what we missed): refetch.
            self.control_in_flight.remove(i);
            info!(message = %e.message, "resume refused: continuity lost");
            self.events.push_back(Event::ContinuityLost);
            self.resume_asked = false;
            self.seq.reset();
            return true;
        }
        if let Some(entry) = self.outbox.remove(id) {
            warn!(id = %entry.id, code = %e.code, "message rejected by the server");
            let _ = now;
            self.fail_durable(entry, SendFailure::Rejected(e.clone()));
            return true;
        }
        self.control_in_flight.retain(|(i, _)| i != id);
        false
    }

    /// Where the control frame sent under message id `id` is among those in flight.
    fn in_flight_at(&self, id: &str) -> Option<usize> {
        self.control_in_flight.iter().position(|(c, _)| c == id)
    }

    fn has_sendable(&self) -> bool {
        !self.subs.pending.is_empty() || self.outbox.has_sendable(self.window())
    }

    fn window(&self) -> usize {
        if self.supports(Feature::Ack) {
            self.config.in_flight_window.max(1)
        } else {
            // Without acks a message is done once written: no window to respect.
            usize::MAX
        }
    }

    /// Emit a frame; `durable` names the outbox message it carries, settled on a server
    /// without acks when the transport confirms the write.
    fn write(&mut self, text: FrameText, durable: Option<MessageId>) {
        self.metrics.frames_sent += 1;
        self.unconfirmed.push(durable);
        self.actions.push(Action::Send(text));
    }

    /// Write whatever the rate limit and the in-flight window allow.
    pub(super) fn flush(&mut self, now: Instant) {
        self.last_now = self.last_now.max(now);
        if self.link != Link::Up {
            return;
        }
        self.outbox.drop_stale(now, self.config.typing_ttl);
        let ack = self.supports(Feature::Ack);
        loop {
            if self.limiter.is_paused(now) {
                return;
            }
            // Control frames first: they set up what the app's messages rely on.
            if !self.subs.pending.is_empty() {
                if !self.limiter.try_take(now) {
                    return;
                }
                let control = self.subs.pending.remove(0);
                self.retried_controls = self.retried_controls.saturating_sub(1);
                self.write_control(control);
                continue;
            }
            let Some(next) = self.outbox.peek_next(self.window()) else {
                return;
            };
            if let Next::Durable(id) = &next
                && self.outbox.attempts(id).unwrap_or(0) >= self.config.max_send_attempts
            {
                if let Some(entry) = self.outbox.remove(id.as_str()) {
                    warn!(id = %entry.id, "giving up on a message after too many attempts");
                    self.fail_durable(entry, SendFailure::TooManyAttempts);
                }
                continue;
            }
            if !self.limiter.try_take(now) {
                return;
            }
            match next {
                Next::Ephemeral => {
                    if let Some(text) = self.outbox.pop_ephemeral() {
                        self.write(text, None);
                    }
                }
                Next::Durable(id) => {
                    if let Some((text, _)) = self.outbox.mark_written(&id, now) {
                        // Without acks, it is done once the transport confirms the write
                        // (`Input::Written`); with acks, once the ack comes.
                        self.write(text, (!ack).then_some(id));
                    }
                }
            }
        }
    }

    fn write_control(&mut self, control: Control) {
        let msg = match &control {
            Control::Pong(ts) => {
                // A pong needs no id: if it is lost, the next ping gets another.
                let frame = ClientFrame::new(ClientMessage::Pong(HeartbeatData { ts: *ts }));
                self.write(frame.encode().into(), None);
                return;
            }
            Control::Resume(last_seq) => ClientMessage::Resume(Resume {
                last_seq: *last_seq,
            }),
            Control::Subscribe(ch) => ClientMessage::Subscribe(ChannelRef {
                channel: ch.clone(),
            }),
            Control::Unsubscribe(ch) => ClientMessage::Unsubscribe(ChannelRef {
                channel: ch.clone(),
            }),
        };
        // An id lets a `rate_limited` error name the frame to send again.
        let id = self.make_id();
        if let Control::Subscribe(channel) = &control
            && !self.supports(Feature::Ack)
        {
            // No ack will confirm it: written is as active as it gets.
            self.events.push_back(Event::SubscriptionActive {
                channel: channel.clone(),
            });
        }
        if self.control_in_flight.len() >= MAX_CONTROL_IN_FLIGHT {
            // A server that never acks these must not grow the list without bound.
            self.control_in_flight.remove(0);
        }
        self.control_in_flight
            .push((id.as_str().to_owned(), control));
        self.write(
            ClientFrame::new(msg).with_id(id.as_str()).encode().into(),
            None,
        );
    }
}

/// Pops a queue from the front, knowing its length. Not `VecDeque::drain`, whose code to
/// close the gap it leaves is never needed here and would be in the browser package twice.
struct PopFront<'a, T>(&'a mut VecDeque<T>);

impl<T> Iterator for PopFront<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.0.pop_front()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.0.len(), Some(self.0.len()))
    }
}

impl<T> ExactSizeIterator for PopFront<'_, T> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drained_actions_are_handed_over_in_order_and_poll_action_takes_one() {
        let mut c = Connection::new(Config::new("ws://h/ws").with_token("t"), 1, Instant::ZERO);
        let close = |code| Action::Close {
            attempt: c.attempt,
            code,
            reason: String::new(),
        };
        let actions = [close(4000), close(4001), close(4002)];
        c.actions.extend(actions.clone());
        assert_eq!(
            c.poll_action(),
            Some(actions[0].clone()),
            "the oldest first"
        );
        let drained = c.drain_actions();
        assert_eq!(c.poll_action(), None, "all taken at once");
        assert_eq!(drained.collect::<Vec<_>>(), actions[1..], "in order");
    }

    fn connect_url(url: &str, token: &str) -> String {
        endpoint::connect_url(url, token).expect("valid")
    }

    #[test]
    fn debug_output_never_shows_the_token() {
        let mut c = Connection::new(
            Config::new("ws://h/ws?x=1").with_token("s3cr3t"),
            1,
            Instant::ZERO,
        );
        assert!(!format!("{c:?}").contains("s3cr3t"));
        c.connect(Instant::ZERO).expect("ws url");
        let action = c.poll_action().expect("connect");
        let shown = format!("{action:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("ws://h/ws?x=1&token=<redacted>"), "{shown}");
    }

    #[test]
    fn token_is_percent_encoded_in_the_url() {
        assert_eq!(
            connect_url("ws://h/ws", "a.b-c_d"),
            "ws://h/ws?token=a.b-c_d"
        );
        assert_eq!(
            connect_url("ws://h/ws?x=1", "a+b/="),
            "ws://h/ws?x=1&token=a%2Bb%2F%3D"
        );
    }

    #[test]
    fn an_existing_token_is_replaced_and_a_fragment_dropped() {
        assert_eq!(
            connect_url("wss://h/ws?token=old&x=1#frag", "new"),
            "wss://h/ws?x=1&token=new"
        );
        assert_eq!(
            connect_url("ws://h/ws?csrftoken=c", "t"),
            "ws://h/ws?csrftoken=c&token=t"
        );
    }

    #[test]
    fn only_ws_and_wss_urls_connect() {
        for url in ["http://h/ws", "https://h/ws", "ftp://h"] {
            let mut c = Connection::new(Config::new(url).with_token("t"), 1, Instant::ZERO);
            assert!(
                matches!(
                    c.connect(Instant::ZERO),
                    Err(ConfigError::UnsupportedScheme(_))
                ),
                "{url}"
            );
            assert_eq!(c.state(), &State::Idle, "nothing started for {url}");
            assert!(c.poll_action().is_none());
        }
        let mut c = Connection::new(Config::new("not a url").with_token("t"), 1, Instant::ZERO);
        assert!(matches!(
            c.connect(Instant::ZERO),
            Err(ConfigError::InvalidUrl { .. })
        ));
    }
}
