//! [`Connection`]: the state machine that ties every part of the core together.

use std::collections::VecDeque;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use tracing::{debug, info, trace, warn};

use super::backoff::Backoff;
use super::drafts::Drafts;
use super::heartbeat::{Beat, Heartbeat};
use super::outbox::{EphemeralKey, Full, Next, Outbox};
use super::rate_limit::RateLimiter;
use super::resume::{SeqTracker, SeqVerdict};
use super::subscriptions::{Control, Subscriptions};
use super::{
    Action, Config, DraftOptions, DraftState, Event, Input, Instant, MessageId, Metrics,
    Resolution, SendError, SendFailure, State,
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
    Opening { deadline: Instant },
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
    rng: SmallRng,
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
    actions: VecDeque<Action>,
    pub(super) events: VecDeque<Event>,
    pub(super) outbox: Outbox,
    limiter: RateLimiter,
    heartbeat: Heartbeat,
    subs: Subscriptions,
    /// Control frames written with an id on this connection, for `rate_limited` retries
    /// (the newest [`MAX_CONTROL_IN_FLIGHT`]).
    control_in_flight: Vec<(String, Control)>,
    seq: SeqTracker,
    /// The last presence the app set: a server marks a reconnecting user `online`, so
    /// it is said again after every reconnect.
    presence: Option<String>,
    resume_asked: bool,
    pub(super) drafts: Drafts,
    metrics: Metrics,
    /// The latest `now` seen, for metrics taken without one.
    last_now: Instant,
}

impl Connection {
    /// A connection in [`State::Idle`]. Nothing happens until [`Connection::connect`].
    pub fn new(config: Config, now: Instant) -> Self {
        let mut rng = SmallRng::seed_from_u64(config.rng_seed);
        // Ids must not collide with an earlier run's that the server still remembers.
        let id_prefix = format!("{:08x}", rng.random::<u32>());
        Connection {
            state: State::Idle,
            link: Link::Down,
            token: config.token.clone().map(Secret),
            token_generation: 0,
            attempt_token_generation: 0,
            rng,
            id_prefix,
            next_id: 0,
            backoff: Backoff::new(config.backoff.clone()),
            stable_at: None,
            auth_failures: 0,
            ever_connected: false,
            sockets_opened: 0,
            session: None,
            actions: VecDeque::new(),
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
    pub fn connect(&mut self, now: Instant) {
        match self.state {
            State::Connecting | State::Connected => {}
            State::Reconnecting { .. } => self.start_attempt(now),
            State::Idle | State::Closed | State::AuthFailed | State::AwaitingToken { .. } => {
                self.backoff.reset();
                self.auth_failures = 0;
                self.start_attempt(now);
            }
        }
        self.flush(now);
    }

    /// Close for good (until [`Connection::connect`]): emits [`Action::Close`] if a socket
    /// is open or opening; state [`State::Closed`]. The outbox and subscriptions are kept
    /// and resume on the next `connect`.
    pub fn disconnect(&mut self, now: Instant) {
        if self.link != Link::Down {
            self.actions.push_back(Action::Close {
                code: CLIENT_CLOSE,
                reason: "client disconnect".into(),
            });
            self.teardown(now, "client disconnect".into());
        }
        self.set_state(State::Closed);
    }

    /// A fresh token from the app's provider. Used for every later connection attempt;
    /// in `AwaitingToken` or `AuthFailed` it starts reconnecting.
    pub fn set_token(&mut self, token: impl Into<String>, now: Instant) {
        self.token = Some(Secret(token.into()));
        self.token_generation += 1;
        match self.state {
            State::AwaitingToken { .. } => self.schedule_retry(now),
            State::AuthFailed => {
                self.backoff.reset();
                self.auth_failures = 0;
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
        if matches!(self.state, State::AwaitingToken { .. }) {
            self.set_state(State::AuthFailed);
        }
    }

    /// Feed what the transport reported.
    pub fn handle(&mut self, input: Input, now: Instant) {
        match input {
            Input::Opened => {
                // Nothing to do until the server's `connected`; the attempt's deadline
                // keeps running so a server that never greets is given up on.
                trace!("transport opened");
                if self.link != Link::Down {
                    self.sockets_opened += 1;
                }
            }
            Input::Text(text) => {
                if self.link == Link::Down {
                    trace!("text for a socket already closed; ignored");
                    return;
                }
                self.on_text(&text, now);
            }
            Input::Closed { code, reason } => {
                if self.link == Link::Down {
                    return;
                }
                self.on_closed(code, reason, now);
            }
            Input::Failed { reason } => {
                if self.link == Link::Down {
                    return;
                }
                info!(%reason, "connection failed");
                self.teardown(now, format!("failed: {reason}"));
                self.schedule_retry(now);
            }
        }
        self.flush(now);
    }

    /// Run the timers that are due at `now`. Harmless to call early.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.state {
            State::Reconnecting { next_at, .. } if now >= next_at => self.start_attempt(now),
            State::AwaitingToken { deadline } if now >= deadline => {
                info!("no token came in time");
                self.set_state(State::AuthFailed);
            }
            _ => {}
        }
        if let Link::Opening { deadline } = self.link
            && now >= deadline
        {
            info!("connection attempt timed out");
            self.actions.push_back(Action::Close {
                code: CLIENT_CLOSE,
                reason: "connect timeout".into(),
            });
            self.teardown(now, "connect timeout".into());
            self.schedule_retry(now);
        }
        if self.link == Link::Up {
            while let Some(beat) = self.heartbeat.poll(now) {
                match beat {
                    Beat::Ping(ts) => {
                        // Pings bypass the rate limiter: the server does not count them.
                        let frame =
                            ClientFrame::new(ClientMessage::Ping(HeartbeatData { ts: Some(ts) }));
                        self.write(frame.encode());
                    }
                    Beat::Dead => {
                        info!("heartbeat timeout: link dead");
                        self.actions.push_back(Action::Close {
                            code: CLIENT_CLOSE,
                            reason: "heartbeat timeout".into(),
                        });
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
        self.drafts_on_timeout(now);
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
        match self.state {
            State::Reconnecting { next_at, .. } => at(Some(next_at)),
            State::AwaitingToken { deadline } => at(Some(deadline)),
            _ => {}
        }
        if let Link::Opening { deadline } = self.link {
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
        at(self.drafts.next_timeout());
        t
    }

    /// The next thing the driver must do.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next event for the app.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
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

    /// Queue without flushing; `draft_id` tags a draft save.
    pub(super) fn enqueue(
        &mut self,
        msg: ClientMessage,
        draft_id: Option<String>,
        now: Instant,
    ) -> Result<MessageId, SendError> {
        let hint = match msg {
            ClientMessage::Ping(_) | ClientMessage::Pong(_) => Some("the core runs the heartbeat"),
            ClientMessage::Subscribe(_) | ClientMessage::Unsubscribe(_) => {
                Some("use Connection::subscribe / unsubscribe")
            }
            ClientMessage::Resume(_) => Some("the core resumes after every reconnect"),
            _ => None,
        };
        if let Some(hint) = hint {
            return Err(SendError::NotSendable {
                kind: msg.kind().to_owned(),
                hint,
            });
        }
        let key = EphemeralKey::of(&msg);
        let id = self.make_id();
        let frame = ClientFrame::new(msg);
        let pushed = match key {
            Some(key) => {
                let text = frame.encode();
                self.check_size(&text)?;
                if key == EphemeralKey::Presence {
                    self.presence = Some(text.clone());
                }
                self.outbox.push_ephemeral(key, text, now)
            }
            None => {
                let text = frame.with_id(id.as_str()).encode();
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

    fn check_size(&self, text: &str) -> Result<(), SendError> {
        if text.len() > self.config.max_message_bytes {
            return Err(SendError::TooLarge {
                size: text.len(),
                max: self.config.max_message_bytes,
            });
        }
        Ok(())
    }

    pub(super) fn make_id(&mut self) -> MessageId {
        self.next_id += 1;
        MessageId(format!("c-{}-{}", self.id_prefix, self.next_id))
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
    /// open draft shares its live state (only the options are replaced), and it stays open
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
            self.actions.push_back(Action::Close {
                code: CLIENT_CLOSE,
                reason: "reconnecting".into(),
            });
            self.teardown(now, "reconnecting".into());
        }
        let Some(Secret(token)) = self.token.clone() else {
            self.await_token(now);
            return;
        };
        self.metrics.connect_attempts += 1;
        self.attempt_token_generation = self.token_generation;
        self.actions.push_back(Action::Connect {
            url: connect_url(&self.config.url, &token),
            token,
        });
        self.link = Link::Opening {
            deadline: now + self.config.connect_timeout,
        };
        self.set_state(State::Connecting);
    }

    fn await_token(&mut self, now: Instant) {
        self.events.push_back(Event::TokenNeeded);
        self.set_state(State::AwaitingToken {
            deadline: now + self.config.token_timeout,
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
        self.outbox.requeue_all();
        self.subs.pending.clear();
        self.control_in_flight.clear();
        self.metrics.last_disconnect = Some(reason);
    }

    /// Plan the next attempt with backoff (or stop after `max_attempts`).
    fn schedule_retry(&mut self, now: Instant) {
        if self.backoff.exhausted() {
            info!("giving up after max_attempts");
            self.set_state(State::Closed);
            return;
        }
        let delay = self.backoff.next_delay(&mut self.rng);
        debug!(
            attempt = self.backoff.failures(),
            ?delay,
            "reconnect scheduled"
        );
        self.set_state(State::Reconnecting {
            attempt: self.backoff.failures(),
            next_at: now + delay,
        });
        if delay.is_zero() {
            // An immediate retry needs no timer round trip through the driver.
            self.start_attempt(now);
        }
    }

    fn on_closed(&mut self, code: u16, reason: String, now: Instant) {
        info!(code, %reason, "connection closed");
        self.teardown(now, format!("closed {code}: {reason}"));
        match CloseCode::from(code) {
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
                    self.set_state(State::AuthFailed);
                } else {
                    self.await_token(now);
                }
            }
            CloseCode::Forbidden => self.set_state(State::Closed),
            _ => self.schedule_retry(now),
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
                SeqVerdict::Restarted => {
                    info!("server seq restarted: continuity lost");
                    self.events.push_back(Event::ContinuityLost);
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
                self.subs.pending.push_back(Control::Pong(hb.ts));
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
        let reconnect = self.ever_connected || self.sockets_opened > 1;
        if self.ever_connected {
            self.metrics.reconnects += 1;
        }
        self.ever_connected = true;
        self.link = Link::Up;
        self.auth_failures = 0;
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
        if reconnect {
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
        self.subs
            .on_connected(resume, c.supports(Feature::Subscribe));
        self.session = Some(c);
        self.set_state(State::Connected);
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
                self.subs.pending.push_back(Control::Resume(last));
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
            self.events.push_back(Event::Acked(entry.id.clone()));
            if let Some(draft_id) = entry.draft_id {
                self.draft_on_saved(&draft_id, &entry.id, version, now);
            }
        } else if let Some(i) = self.control_in_flight.iter().position(|(c, _)| c == id) {
            let (_, control) = self.control_in_flight.remove(i);
            if let Control::Resume(_) = control {
                // The server sent everything it had for us before this ack.
                self.resume_asked = false;
                self.seq.close_gaps();
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
            if let Some(id) = &e.id
                && !self.outbox.requeue(id)
                && let Some(i) = self.control_in_flight.iter().position(|(c, _)| c == id)
            {
                let (_, control) = self.control_in_flight.remove(i);
                self.subs.pending.push_front(control);
            }
            return true;
        }
        let Some(id) = &e.id else { return false };
        if let Some(i) = self.control_in_flight.iter().position(|(c, _)| c == id)
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
            let failure = SendFailure::Rejected(e.clone());
            self.events
                .push_back(Event::SendFailed(entry.id.clone(), failure.clone()));
            if let Some(draft_id) = entry.draft_id {
                self.draft_on_failed(&draft_id, &entry.id, failure, now);
            }
            return true;
        }
        self.control_in_flight.retain(|(i, _)| i != id);
        false
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

    fn write(&mut self, text: String) {
        self.metrics.frames_sent += 1;
        self.actions.push_back(Action::Send(text));
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
            if let Some(control) = self.subs.pending.front().cloned() {
                if !self.limiter.try_take(now) {
                    return;
                }
                self.subs.pending.pop_front();
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
                    let failure = SendFailure::TooManyAttempts;
                    self.events
                        .push_back(Event::SendFailed(entry.id.clone(), failure.clone()));
                    if let Some(draft_id) = entry.draft_id {
                        self.draft_on_failed(&draft_id, &entry.id, failure, now);
                    }
                }
                continue;
            }
            if !self.limiter.try_take(now) {
                return;
            }
            match next {
                Next::Ephemeral => {
                    if let Some(text) = self.outbox.pop_ephemeral() {
                        self.write(text);
                    }
                }
                Next::Durable(id) => {
                    if let Some((text, _)) = self.outbox.mark_written(&id, now) {
                        self.write(text);
                    }
                    if !ack {
                        // A seed server sends no acks: written is as done as it gets.
                        if let Some(entry) = self.outbox.remove(id.as_str()) {
                            self.events.push_back(Event::Acked(entry.id.clone()));
                            if let Some(draft_id) = entry.draft_id {
                                self.draft_on_saved(&draft_id, &entry.id, None, now);
                            }
                        }
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
                self.write(frame.encode());
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
        if self.control_in_flight.len() >= MAX_CONTROL_IN_FLIGHT {
            // A server that never acks these must not grow the list without bound.
            self.control_in_flight.remove(0);
        }
        self.control_in_flight
            .push((id.as_str().to_owned(), control));
        self.write(ClientFrame::new(msg).with_id(id.as_str()).encode());
    }
}

/// The wire `type` of the messages `send` refuses.
/// `url` with `token` as the `token` query parameter.
fn connect_url(url: &str, token: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    let mut out = String::with_capacity(url.len() + token.len() + 8);
    out.push_str(url);
    out.push(sep);
    out.push_str("token=");
    for b in token.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_token() {
        let mut c = Connection::new(
            Config::new("ws://h/ws?x=1").with_token("s3cr3t"),
            Instant::ZERO,
        );
        assert!(!format!("{c:?}").contains("s3cr3t"));
        c.connect(Instant::ZERO);
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
}
