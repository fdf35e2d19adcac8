//! A virtual-time simulation of one client core against a scripted `pitchey-v1` peer.
//!
//! In the spirit of `quinn-proto`'s test harness: the core under test is driven exactly as a
//! real driver would drive it (actions in order, inputs for the latest socket only, timers
//! from `poll_timeout`), while the network and the server are a deterministic model here:
//! in-order delivery with random latency per frame, connections that die abruptly or
//! silently, a server that restarts, refuses connects, expires tokens, and rate-limits.
//! The server keeps the truth the invariants are checked against: which client ids it
//! applied and in what order, its own token bucket per connection, and what it pushed.

#![allow(dead_code)] // each test file uses a different part of the harness

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::time::Duration;

use pitchey_realtime::core::{
    Action, AttemptId, Config, Connection, Event, Input, Instant, MessageId, Resolution, SendError,
    State,
};
use pitchey_realtime::protocol::{
    Ack, ClientFrame, ClientMessage, Connected, DraftConflict, DraftSynced, ErrorCode, ErrorData,
    Heartbeat, Notification, RateLimit, ServerFrame, ServerMessage,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

/// Every optional feature of the protocol.
pub const ALL_FEATURES: [&str; 5] = ["ack", "seq", "resume", "subscribe", "draft_conflict"];

/// How the simulated server behaves.
#[derive(Debug, Clone)]
pub struct PeerConfig {
    /// Features announced in `connected` (empty: the seed's backend).
    pub features: Vec<&'static str>,
    /// Announce `rateLimit` in `connected` (the seed does not).
    pub announce_rate_limit: bool,
    /// The server's bucket.
    pub rate_limit: RateLimit,
    /// `heartbeatMs` announced.
    pub heartbeat_ms: u64,
    /// The server pings the client this often (its `pong` counts against the limit).
    pub server_ping_every: Option<Duration>,
    /// One-way latency range in milliseconds.
    pub latency_ms: (u64, u64),
    /// Probability that the server applies a durable message but never acks it.
    pub ack_loss: f64,
}

impl PeerConfig {
    /// A server with every addition.
    pub fn full() -> Self {
        PeerConfig {
            features: ALL_FEATURES.to_vec(),
            announce_rate_limit: true,
            rate_limit: RateLimit::default(),
            heartbeat_ms: 30_000,
            server_ping_every: Some(Duration::from_secs(20)),
            latency_ms: (5, 80),
            ack_loss: 0.0,
        }
    }

    /// A server like the seed's backend: no additions, nothing announced.
    pub fn seed() -> Self {
        PeerConfig {
            features: vec![],
            announce_rate_limit: false,
            ..PeerConfig::full()
        }
    }

    fn has(&self, f: &str) -> bool {
        self.features.contains(&f)
    }
}

/// A fault or an app action, scheduled at a virtual time.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// The server closes the connection abruptly (1006 at the client); frames in flight
    /// both ways are lost.
    DropLink,
    /// The connection dies silently: nothing more arrives either way, no close is seen.
    Blackhole,
    /// The server restarts: `disconnected` + close 1001, frames in flight lost, connects
    /// refused for `down_ms`.
    Restart { down_ms: u64 },
    /// Connect attempts fail for `ms`.
    RefuseConnects { ms: u64 },
    /// The token expires: close 4001; the app provides a new one after `answer_ms`.
    ExpireToken { answer_ms: u64 },
    /// The server rejects every client frame arriving in the next `retry_after_ms`
    /// with `rate_limited` (as if another limit were hit).
    ForceRateLimit { retry_after_ms: u64 },
    /// The app sends `n` durable messages at once.
    SendDurable { n: u32 },
    /// The app reports typing in a conversation.
    Typing { conversation: u64 },
    /// The app sets its presence.
    Presence,
    /// The app subscribes to a pitch channel.
    Subscribe { pitch: u64 },
    /// The app unsubscribes from a pitch channel.
    Unsubscribe { pitch: u64 },
    /// The server pushes a durable notification to the user (with `seq` when supported).
    ServerPush,
    /// The app disconnects, and connects again after `ms`.
    DisconnectFor { ms: u64 },
    /// Another session of the user saves the draft `draft`.
    RemoteDraftEdit { draft: String, content: Value },
    /// Another session changes one field of the draft `d1`.
    RemoteDraftField { field: u8, value: u32 },
    /// The app edits one field of the draft `d1` (`valid`: the validator's verdict).
    LocalDraftField { field: u8, value: u32, valid: bool },
}

/// The draft the random schedules edit.
pub const SIM_DRAFT: &str = "d1";

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Sched {
    /// A frame from the server reaches the client socket `sock`.
    ToClient { sock: u64, idx: usize },
    /// A frame from the client reaches the server on socket `sock`.
    ToServer { sock: u64, idx: usize },
    /// The server answers the connect of socket `sock`.
    Accept { sock: u64 },
    /// The client learns its socket `sock` closed.
    ClosedAtClient { sock: u64, code: u16 },
    /// Scheduled op number `idx`.
    Op { idx: usize },
    /// The app hands over a token.
    GiveToken,
    /// The app reconnects after `DisconnectFor`.
    AppConnect,
    /// The server's own ping timer.
    ServerPing { sock: u64 },
    /// The app settles a draft conflict (keeping its content).
    Resolve { draft: String },
    /// The app refetches the draft over HTTP after `ContinuityLost`.
    Refetch,
}

/// What the server knows of one connection.
#[derive(Debug)]
struct ServerConn {
    sock: u64,
    tokens: f64,
    last_refill: Instant,
    subscribed: HashSet<String>,
    /// Seqs this connection has had (sent, or skipped as the echo of its own save).
    delivered: HashSet<u64>,
}

/// A virtual time + network + server + app harness around one [`Connection`].
pub struct Sim {
    pub now: Instant,
    pub conn: Connection,
    pub peer: PeerConfig,
    rng: SmallRng,
    queue: BinaryHeap<Reverse<(Instant, u64, Sched)>>,
    tie: u64,
    /// Payloads in flight (indexed by `Sched::ToClient/ToServer.idx`).
    payloads: Vec<String>,
    ops: Vec<Op>,

    // --- network ---
    /// The client's current socket (the latest `Action::Connect`).
    client_gen: Option<u64>,
    next_gen: u64,
    /// The core's attempt id of each socket: inputs name it, late ones included.
    attempt_of: HashMap<u64, AttemptId>,
    /// Inputs delivered for sockets of earlier attempts (the core must ignore them).
    pub stale_inputs: u32,
    /// Sockets whose frames still flow (not dropped, not blackholed).
    live: HashSet<u64>,
    /// Last arrival time per (sock, direction) for in-order delivery.
    last_arrival: HashMap<(u64, bool), Instant>,
    refuse_until: Instant,

    // --- server ---
    server: Option<ServerConn>,
    valid_token: String,
    token_counter: u64,
    forced_until: Instant,
    /// Ids applied, in order (persisted across restarts, like a database).
    pub applied: Vec<String>,
    applied_set: HashSet<String>,
    /// Every frame with an id the server received (duplicates included).
    pub received_ids: usize,
    /// Client frames that arrived when the server's bucket was empty.
    pub violations: u32,
    /// `rate_limited` errors forced by `ForceRateLimit`.
    pub forced_rejections: u32,
    /// Ids the server refused with `rate_limited` at least once.
    pub rate_rejected: HashSet<String>,
    /// Seq'd notifications pushed (seq, delivered-to-connection?).
    pub pushed: Vec<u64>,
    seq: u64,
    /// Frames the seed server queued while the user was offline.
    offline_queue: Vec<ServerFrame>,
    /// Every seq'd frame, for `resume`.
    log: Vec<ServerFrame>,
    drafts: BTreeMap<String, (u64, Value)>,
    /// The version each applied draft save made, so a re-sent save is acked with it.
    draft_save_versions: HashMap<String, u64>,
    pub typing_received: u32,
    pub presence_received: u32,
    pub subscribe_frames: u32,
    pub resume_frames: u32,
    /// Acks the server "forgot" (`PeerConfig::ack_loss`).
    pub acks_lost: u32,

    // --- app / observations ---
    /// Durable ids `send` accepted, in order.
    pub accepted: Vec<MessageId>,
    pub acked: HashSet<MessageId>,
    pub failed: HashSet<MessageId>,
    pub queue_full_events: u32,
    pub send_errors: u32,
    pub continuity_lost: u32,
    pub token_needed: u32,
    /// `seq`s the app received (duplicates would show here).
    pub seqs_seen: Vec<u64>,
    pub messages: Vec<ServerFrame>,
    pub events: Vec<(Instant, Event)>,
    pub states: Vec<(Instant, State)>,
    /// `Action::Connect`s emitted.
    pub connects: u32,
    /// Wake-ups from `poll_timeout` per virtual second.
    pub wakeups: BTreeMap<u64, u32>,
    /// Largest outbox depth seen.
    pub max_queue_depth: usize,
    pub max_in_flight: usize,
    /// Whether the app answers `TokenNeeded` (and how fast).
    pub token_answer_ms: Option<u64>,
    pub auto_resolve: bool,
    /// Whether the app refetches the draft when told continuity was lost.
    pub refetch_on_continuity_lost: bool,
    pending_disconnect: bool,
    pub frames_to_server: u32,
    /// Set while the app itself calls `connect` (which may skip a backoff delay).
    app_connected: bool,
    /// Print every frame (debugging a failing schedule).
    pub trace: bool,
}

impl Sim {
    /// A sim of `config` (token `t0`) against `peer`, seeded by `seed`; already connecting.
    pub fn new(mut config: Config, peer: PeerConfig, seed: u64) -> Self {
        config.url = "ws://sim/ws".into();
        config.token = Some("t0".into());
        let now = Instant::from_millis(1_000);
        let mut sim = Sim {
            now,
            conn: Connection::new(config, seed, now),
            peer,
            rng: SmallRng::seed_from_u64(seed ^ 0xA5A5),
            queue: BinaryHeap::new(),
            tie: 0,
            payloads: Vec::new(),
            ops: Vec::new(),
            client_gen: None,
            attempt_of: HashMap::new(),
            stale_inputs: 0,
            next_gen: 1,
            live: HashSet::new(),
            last_arrival: HashMap::new(),
            refuse_until: Instant::ZERO,
            server: None,
            valid_token: "t0".into(),
            token_counter: 0,
            forced_until: Instant::ZERO,
            applied: Vec::new(),
            applied_set: HashSet::new(),
            received_ids: 0,
            violations: 0,
            forced_rejections: 0,
            rate_rejected: HashSet::new(),
            pushed: Vec::new(),
            seq: 0,
            offline_queue: Vec::new(),
            log: Vec::new(),
            drafts: BTreeMap::new(),
            draft_save_versions: HashMap::new(),
            typing_received: 0,
            presence_received: 0,
            subscribe_frames: 0,
            resume_frames: 0,
            acks_lost: 0,
            accepted: Vec::new(),
            acked: HashSet::new(),
            failed: HashSet::new(),
            queue_full_events: 0,
            send_errors: 0,
            continuity_lost: 0,
            token_needed: 0,
            seqs_seen: Vec::new(),
            messages: Vec::new(),
            events: Vec::new(),
            states: Vec::new(),
            connects: 0,
            wakeups: BTreeMap::new(),
            max_queue_depth: 0,
            max_in_flight: 0,
            token_answer_ms: Some(100),
            auto_resolve: false,
            refetch_on_continuity_lost: false,
            pending_disconnect: false,
            frames_to_server: 0,
            trace: false,
            app_connected: false,
        };
        sim.conn.connect(now).expect("ws url");
        sim.pump();
        sim
    }

    fn schedule(&mut self, at: Instant, s: Sched) {
        self.tie += 1;
        self.queue.push(Reverse((at, self.tie, s)));
    }

    /// Schedule `op` at `at_ms` after now.
    pub fn at(&mut self, at_ms: u64, op: Op) {
        self.ops.push(op);
        let idx = self.ops.len() - 1;
        self.schedule(self.now + Duration::from_millis(at_ms), Sched::Op { idx });
    }

    fn latency(&mut self) -> Duration {
        let (lo, hi) = self.peer.latency_ms;
        Duration::from_millis(self.rng.random_range(lo..=hi.max(lo)))
    }

    /// Send a frame over socket `sock`, in order behind earlier frames of that direction.
    fn transmit(&mut self, sock: u64, to_server: bool, text: String) {
        if !self.live.contains(&sock) {
            return;
        }
        let at = (self.now + self.latency()).max(
            self.last_arrival
                .get(&(sock, to_server))
                .copied()
                .unwrap_or(Instant::ZERO),
        );
        self.last_arrival.insert((sock, to_server), at);
        self.payloads.push(text);
        let idx = self.payloads.len() - 1;
        let s = if to_server {
            Sched::ToServer { sock, idx }
        } else {
            Sched::ToClient { sock, idx }
        };
        self.schedule(at, s);
    }

    fn send_to_client(&mut self, frame: ServerFrame) {
        if let Some(sc) = self.server.as_mut() {
            if let Some(seq) = frame.seq {
                sc.delivered.insert(seq);
            }
            let sock = sc.sock;
            self.transmit(sock, false, frame.encode());
        }
    }

    /// Run the core's outputs: actions into the network, events into the app model.
    pub fn pump(&mut self) {
        loop {
            let mut progressed = false;
            let mut written = 0;
            while let Some(action) = self.conn.poll_action() {
                progressed = true;
                if self.on_action(action) {
                    written += 1;
                }
            }
            // Like a driver: the writes the transport took are confirmed, in order.
            if written > 0
                && let Some(sock) = self.client_gen
            {
                let attempt = self.attempt_of[&sock];
                self.conn.handle(attempt, Input::Written(written), self.now);
                continue;
            }
            while let Some(event) = self.conn.poll_event() {
                progressed = true;
                self.on_event(event);
            }
            let m = self.conn.metrics();
            self.max_queue_depth = self.max_queue_depth.max(m.queue_depth);
            self.max_in_flight = self.max_in_flight.max(m.in_flight);
            if !progressed {
                break;
            }
        }
    }

    /// Do what the core asks; true for a frame written on the current socket.
    fn on_action(&mut self, action: Action) -> bool {
        match action {
            Action::Connect {
                attempt,
                url,
                token,
            } => {
                assert!(url.contains("token="), "connect url carries the token");
                self.connects += 1;
                let sock = self.next_gen;
                self.next_gen += 1;
                self.attempt_of.insert(sock, attempt);
                self.client_gen = Some(sock);
                self.live.insert(sock);
                let lat = self.latency();
                if self.now < self.refuse_until {
                    self.live.remove(&sock);
                    self.schedule(self.now + lat, Sched::ClosedAtClient { sock, code: 0 });
                } else if token != self.valid_token {
                    // Refused before the upgrade: HTTP 401, reported as close 4001.
                    self.live.remove(&sock);
                    self.schedule(self.now + lat, Sched::ClosedAtClient { sock, code: 4001 });
                } else {
                    self.schedule(self.now + lat, Sched::Accept { sock });
                }
                false
            }
            Action::Send(text) => {
                if self.trace {
                    eprintln!(
                        "{:?} client -> {text} (client tokens {})",
                        self.now,
                        self.conn.metrics().tokens_left
                    );
                }
                self.frames_to_server += 1;
                match self.client_gen {
                    // The kernel takes the write even if the peer is gone unannounced (a
                    // blackhole): confirmed, then lost in the network.
                    Some(sock) => {
                        self.transmit(sock, true, text.into());
                        true
                    }
                    // No socket: the write fails and is never confirmed.
                    None => false,
                }
            }
            Action::Close { attempt, .. } => {
                if let Some(sock) = self.client_gen.take() {
                    assert_eq!(self.attempt_of.get(&sock), Some(&attempt), "closes its own");
                    self.live.remove(&sock);
                    if self.server.as_ref().is_some_and(|s| s.sock == sock) {
                        self.server = None;
                    }
                    // A browser still fires `onclose` for it, late: the core must ignore it.
                    let lat = self.latency();
                    self.schedule(self.now + lat, Sched::ClosedAtClient { sock, code: 1000 });
                }
                false
            }
        }
    }

    fn on_event(&mut self, event: Event) {
        self.events.push((self.now, event.clone()));
        match event {
            Event::StateChanged(s) => {
                if let State::Reconnecting { attempt, delay } = &s {
                    let bound = self.conn.config().backoff.max_delay(*attempt);
                    // A close 4008 waits at least its floor, whatever the backoff.
                    let floor = Duration::from_secs(2);
                    assert!(
                        *delay <= bound.max(floor),
                        "backoff delay {delay:?} over bound {bound:?} for attempt {attempt}"
                    );
                }
                // And no attempt before its time, unless the app called `connect`.
                if s == State::Connecting
                    && !self.app_connected
                    && let Some((at, State::Reconnecting { delay, .. })) = self.states.last()
                {
                    assert!(self.now >= *at + *delay, "attempt before its backoff delay");
                }
                self.states.push((self.now, s));
            }
            Event::Acked(id) => {
                assert!(self.acked.insert(id), "acked twice");
            }
            Event::SendFailed(id, _) => {
                self.failed.insert(id);
            }
            Event::QueueFull => self.queue_full_events += 1,
            Event::TokenNeeded => {
                self.token_needed += 1;
                if let Some(ms) = self.token_answer_ms {
                    self.schedule(self.now + Duration::from_millis(ms), Sched::GiveToken);
                }
            }
            Event::ContinuityLost => {
                self.continuity_lost += 1;
                if self.refetch_on_continuity_lost {
                    let at = self.now + Duration::from_millis(100);
                    self.schedule(at, Sched::Refetch);
                }
            }
            Event::Message(frame) => {
                if let Some(seq) = frame.seq {
                    self.seqs_seen.push(seq);
                }
                self.messages.push(frame);
            }
            Event::DraftConflict { draft_id, .. } if self.auto_resolve => {
                // The user takes a moment, then keeps their version.
                let at = self.now + Duration::from_millis(500);
                self.schedule(at, Sched::Resolve { draft: draft_id });
            }
            _ => {}
        }
    }

    /// Run until virtual time `until`.
    pub fn run_until(&mut self, until: Instant) {
        let mut guard = 0u64;
        loop {
            guard += 1;
            assert!(guard < 5_000_000, "simulation does not advance");
            let timer = self.conn.poll_timeout();
            if let Some(t) = timer {
                assert!(
                    t >= self.now || t + Duration::from_millis(1) >= self.now,
                    "timer in the past"
                );
            }
            let next_q = self.queue.peek().map(|Reverse((t, _, _))| *t);
            let next = match (timer, next_q) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let Some(next) = next else {
                self.now = until;
                return;
            };
            if next > until {
                self.now = until;
                return;
            }
            self.now = self.now.max(next);
            if timer.is_some_and(|t| t <= self.now) {
                *self
                    .wakeups
                    .entry(self.now.as_millis() / 1_000)
                    .or_default() += 1;
                self.conn.handle_timeout(self.now);
                self.pump();
                if let Some(t) = self.conn.poll_timeout() {
                    assert!(
                        t > self.now,
                        "busy loop: timer still due at {:?} after handle_timeout (state {:?})",
                        self.now,
                        self.conn.state()
                    );
                }
                continue;
            }
            let Some(Reverse((_, _, s))) = self.queue.pop() else {
                continue;
            };
            self.step(s);
            self.pump();
            self.app_connected = false;
        }
    }

    /// Run for `ms` more virtual milliseconds.
    pub fn run_for(&mut self, ms: u64) {
        let until = self.now + Duration::from_millis(ms);
        self.run_until(until);
    }

    fn step(&mut self, s: Sched) {
        match s {
            Sched::ToClient { sock, idx } => {
                if self.live.contains(&sock) && self.client_gen == Some(sock) {
                    let text = std::mem::take(&mut self.payloads[idx]);
                    let attempt = self.attempt_of[&sock];
                    self.conn.handle(attempt, Input::Text(text), self.now);
                }
            }
            Sched::ToServer { sock, idx } => {
                if self.live.contains(&sock) && self.server.as_ref().is_some_and(|s| s.sock == sock)
                {
                    let text = std::mem::take(&mut self.payloads[idx]);
                    self.server_receive(&text);
                }
            }
            Sched::Accept { sock } => {
                if !self.live.contains(&sock) || self.client_gen != Some(sock) {
                    return;
                }
                if self.now < self.refuse_until {
                    self.live.remove(&sock);
                    let lat = self.latency();
                    self.schedule(self.now + lat, Sched::ClosedAtClient { sock, code: 0 });
                    return;
                }
                let attempt = self.attempt_of[&sock];
                self.conn.handle(attempt, Input::Opened, self.now);
                self.server_accept(sock);
            }
            Sched::ClosedAtClient { sock, code } => {
                let attempt = self.attempt_of[&sock];
                if self.client_gen != Some(sock) {
                    // A late event of an old socket (e.g. `onclose` after `close()`).
                    self.stale_inputs += 1;
                    let state = self.conn.state().clone();
                    let timer = self.conn.poll_timeout();
                    self.conn.handle(
                        attempt,
                        Input::Closed {
                            code: code.max(1000),
                            reason: "late".into(),
                        },
                        self.now,
                    );
                    assert_eq!(self.conn.state(), &state, "a stale input changed the state");
                    assert_eq!(
                        self.conn.poll_timeout(),
                        timer,
                        "a stale input moved a timer"
                    );
                    assert!(
                        self.conn.poll_action().is_none(),
                        "a stale input made an action"
                    );
                    return;
                }
                {
                    self.client_gen = None;
                    let input = if code == 0 {
                        Input::Failed {
                            reason: "connection refused".into(),
                        }
                    } else {
                        Input::Closed {
                            code,
                            reason: String::new(),
                        }
                    };
                    self.conn.handle(attempt, input, self.now);
                }
            }
            Sched::Op { idx } => {
                let op = self.ops[idx].clone();
                self.apply(op);
            }
            Sched::GiveToken => {
                self.token_counter += 1;
                let t = self.valid_token.clone();
                self.conn.set_token(t, self.now);
            }
            Sched::Resolve { draft } => {
                // The conflict may have been settled meanwhile: then there is nothing to do.
                let _ = self.conn.draft_resolve(&draft, Resolution::Local, self.now);
            }
            Sched::Refetch => {
                // What `GET` of the draft would return right now.
                if let Some((version, content)) = self.drafts.get(SIM_DRAFT).cloned() {
                    let version = self.peer.has("draft_conflict").then_some(version);
                    let _ = self
                        .conn
                        .draft_remote(SIM_DRAFT, content, version, self.now);
                }
            }
            Sched::AppConnect => {
                self.pending_disconnect = false;
                self.app_connected = true;
                self.conn.connect(self.now).expect("ws url");
            }
            Sched::ServerPing { sock } => {
                if self.server.as_ref().is_some_and(|s| s.sock == sock) {
                    let ts = self.now.as_millis();
                    self.send_to_client(ServerFrame::new(ServerMessage::Ping(Heartbeat {
                        ts: Some(ts),
                    })));
                    if let Some(every) = self.peer.server_ping_every {
                        self.schedule(self.now + every, Sched::ServerPing { sock });
                    }
                }
            }
        }
    }

    /// The server ends socket `sock` with `code` (None: the client sees no close at all).
    fn server_close(&mut self, code: Option<u16>) {
        let Some(sc) = self.server.take() else { return };
        self.live.remove(&sc.sock);
        if let Some(code) = code {
            let lat = self.latency();
            self.schedule(
                self.now + lat,
                Sched::ClosedAtClient {
                    sock: sc.sock,
                    code,
                },
            );
        }
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::DropLink => self.server_close(Some(1006)),
            Op::Blackhole => self.server_close(None),
            Op::Restart { down_ms } => {
                if self.server.is_some() {
                    self.send_to_client(ServerFrame::new(ServerMessage::Disconnected(
                        pitchey_realtime::protocol::Disconnected {
                            reason: "server shutting down".into(),
                        },
                    )));
                }
                // The close frame follows the `disconnected` frame on the same socket; model
                // it as a close delivered after the frames in flight.
                if let Some(sc) = self.server.take() {
                    let at = self
                        .last_arrival
                        .get(&(sc.sock, false))
                        .copied()
                        .unwrap_or(self.now)
                        .max(self.now)
                        + Duration::from_millis(1);
                    // Frames to the server in flight are lost with the process: they
                    // arrive at no server (`self.server` is gone).
                    self.schedule(
                        at,
                        Sched::ClosedAtClient {
                            sock: sc.sock,
                            code: 1001,
                        },
                    );
                }
                self.refuse_until = self.now + Duration::from_millis(down_ms);
                self.forced_until = Instant::ZERO;
            }
            Op::RefuseConnects { ms } => {
                self.refuse_until = self.refuse_until.max(self.now + Duration::from_millis(ms));
            }
            Op::ExpireToken { answer_ms } => {
                self.token_counter += 1;
                self.valid_token = format!("t{}", self.token_counter);
                self.token_answer_ms = Some(answer_ms);
                self.server_close(Some(4001));
            }
            Op::ForceRateLimit { retry_after_ms } => {
                self.forced_until = self.now + Duration::from_millis(retry_after_ms);
            }
            Op::SendDurable { n } => {
                for _ in 0..n {
                    let k = self.accepted.len() + self.send_errors as usize;
                    let msg = ClientMessage::Unknown {
                        kind: "chat_message".into(),
                        data: json!({ "n": k }),
                    };
                    match self.conn.send(msg, self.now) {
                        Ok(id) => self.accepted.push(id),
                        Err(SendError::QueueFull { .. }) => self.send_errors += 1,
                        Err(e) => panic!("unexpected send error {e}"),
                    }
                }
            }
            Op::Typing { conversation } => {
                let msg = ClientMessage::Typing(pitchey_realtime::protocol::Typing {
                    conversation_id: conversation,
                    is_typing: true,
                });
                if self.conn.send(msg, self.now).is_err() {
                    self.send_errors += 1;
                }
            }
            Op::Presence => {
                let msg = ClientMessage::SetPresence(pitchey_realtime::protocol::SetPresence {
                    status: pitchey_realtime::protocol::PresenceStatus::Away,
                });
                if self.conn.send(msg, self.now).is_err() {
                    self.send_errors += 1;
                }
            }
            Op::Subscribe { pitch } => {
                let _ = self
                    .conn
                    .subscribe(pitchey_realtime::protocol::Channel::Pitch(pitch), self.now);
            }
            Op::Unsubscribe { pitch } => {
                self.conn
                    .unsubscribe(&pitchey_realtime::protocol::Channel::Pitch(pitch), self.now);
            }
            Op::ServerPush => self.server_push(),
            Op::DisconnectFor { ms } => {
                self.conn.disconnect(self.now);
                self.pending_disconnect = true;
                self.schedule(self.now + Duration::from_millis(ms), Sched::AppConnect);
            }
            Op::RemoteDraftField { field, value } => {
                let mut content = self
                    .drafts
                    .get(SIM_DRAFT)
                    .map(|d| d.1.clone())
                    .filter(Value::is_object)
                    .unwrap_or_else(|| json!({}));
                content[format!("f{field}")] = json!(value);
                self.apply(Op::RemoteDraftEdit {
                    draft: SIM_DRAFT.into(),
                    content,
                });
            }
            Op::LocalDraftField {
                field,
                value,
                valid,
            } => {
                let Some(st) = self.conn.draft_state(SIM_DRAFT) else {
                    return;
                };
                let mut content = st.content.clone();
                if !content.is_object() {
                    content = json!({});
                }
                content[format!("f{field}")] = json!(value);
                self.conn
                    .draft_update(SIM_DRAFT, content, valid, self.now)
                    .expect("draft open");
            }
            Op::RemoteDraftEdit { draft, content } => {
                let entry = self.drafts.entry(draft.clone()).or_insert((0, Value::Null));
                entry.0 += 1;
                entry.1 = content.clone();
                let version = entry.0;
                let frame = ServerFrame::new(ServerMessage::DraftSync(DraftSynced {
                    draft_id: draft,
                    draft_type: Some("pitch".into()),
                    content,
                    version: self.peer.has("draft_conflict").then_some(version),
                    updated_at: None,
                    session_id: Some("s-other".into()),
                }));
                self.deliver_durable(frame);
            }
        }
    }

    /// A durable server-to-client frame: seq'd when supported; queued while offline.
    fn deliver_durable(&mut self, mut frame: ServerFrame) {
        if self.peer.has("seq") {
            self.seq += 1;
            frame = frame.with_seq(self.seq);
            self.pushed.push(self.seq);
            self.log.push(frame.clone());
        }
        if self.server.is_some() {
            self.send_to_client(frame);
        } else {
            // Like the reference server: queued for the user, sent after `connected`.
            self.offline_queue.push(frame);
        }
    }

    fn server_push(&mut self) {
        let n = self.pushed.len() + self.offline_queue.len();
        let frame = ServerFrame::new(ServerMessage::Notification(Notification {
            id: format!("n-{n}"),
            kind: "follow".into(),
            title: "New follower".into(),
            message: String::new(),
            data: Value::Null,
            created_at: None,
            read: false,
        }));
        self.deliver_durable(frame);
    }

    fn server_accept(&mut self, sock: u64) {
        self.server = Some(ServerConn {
            sock,
            tokens: f64::from(self.peer.rate_limit.max_messages),
            last_refill: self.now,
            subscribed: HashSet::new(),
            delivered: HashSet::new(),
        });
        let connected = Connected {
            session_id: format!("s-{sock}"),
            user_id: Some(7),
            protocol: Some("pitchey-v1".into()),
            heartbeat_ms: Some(self.peer.heartbeat_ms),
            rate_limit: self
                .peer
                .announce_rate_limit
                .then_some(self.peer.rate_limit),
            features: self.peer.features.iter().map(|f| f.to_string()).collect(),
            resumed: self.peer.has("resume").then_some(false),
            // Like the reference server: the seq just before the first frame that follows.
            last_seq: self.peer.has("seq").then(|| {
                self.offline_queue
                    .iter()
                    .filter_map(|f| f.seq)
                    .min()
                    .map_or(self.seq, |first| first - 1)
            }),
        };
        self.send_to_client(ServerFrame::new(ServerMessage::Connected(connected)));
        for frame in std::mem::take(&mut self.offline_queue) {
            self.send_to_client(frame);
        }
        if let Some(every) = self.peer.server_ping_every {
            self.schedule(self.now + every, Sched::ServerPing { sock });
        }
    }

    fn reply(&mut self, message: ServerMessage) {
        self.send_to_client(ServerFrame::new(message));
    }

    fn reply_frame(&mut self, frame: ServerFrame) {
        self.send_to_client(frame);
    }

    fn server_receive(&mut self, text: &str) {
        let frame = ClientFrame::decode(text).unwrap_or_else(|e| panic!("client sent {text}: {e}"));
        let now = self.now;
        if self.trace {
            let t = self.server.as_ref().map(|s| s.tokens);
            eprintln!(
                "{:?} server <- {text} (tokens {t:?}, client {})",
                now,
                self.conn.metrics().tokens_left
            );
        }
        let is_ping = matches!(frame.message, ClientMessage::Ping(_));
        if !is_ping {
            // The server's bucket: every client message but `ping` counts.
            let limit = self.peer.rate_limit;
            let sc = self.server.as_mut().expect("server conn");
            let elapsed = (now - sc.last_refill).as_secs_f64();
            sc.tokens =
                (sc.tokens + elapsed * limit.refill_rate).min(f64::from(limit.max_messages));
            sc.last_refill = now;
            if sc.tokens < 1.0 - 1e-9 {
                self.violations += 1;
                self.reply(ServerMessage::Error(ErrorData {
                    code: ErrorCode::RateLimited,
                    message: "over the limit".into(),
                    retry_after_ms: Some(500),
                    id: frame.id.clone(),
                }));
                return;
            }
            sc.tokens -= 1.0;
            if now < self.forced_until {
                self.forced_rejections += 1;
                if let Some(id) = &frame.id {
                    self.rate_rejected.insert(id.clone());
                }
                let retry = (self.forced_until - now).as_millis() as u64;
                self.reply(ServerMessage::Error(ErrorData {
                    code: ErrorCode::RateLimited,
                    message: "forced".into(),
                    retry_after_ms: Some(retry.max(1)),
                    id: frame.id.clone(),
                }));
                return;
            }
        }
        let ack = self.peer.has("ack");
        let ack_loss = self.peer.ack_loss;
        let ack_id = |sim: &mut Sim, id: &Option<String>, version: Option<u64>| {
            if ack_loss > 0.0 && sim.rng.random_bool(ack_loss.min(1.0)) {
                sim.acks_lost += 1;
                return;
            }
            if ack && let Some(id) = id {
                sim.reply(ServerMessage::Ack(Ack {
                    id: id.clone(),
                    version,
                }));
            }
        };
        if frame.id.is_some() {
            self.received_ids += 1;
        }
        match &frame.message {
            ClientMessage::Ping(hb) => self.reply(ServerMessage::Pong(*hb)),
            ClientMessage::Pong(_) => {}
            ClientMessage::Typing(_) => self.typing_received += 1,
            ClientMessage::SetPresence(_) => self.presence_received += 1,
            ClientMessage::Subscribe(c) => {
                assert!(
                    self.peer.has("subscribe"),
                    "subscribe sent to a seed server"
                );
                self.subscribe_frames += 1;
                if let Some(sc) = self.server.as_mut() {
                    sc.subscribed.insert(c.channel.to_string());
                }
                ack_id(self, &frame.id, None);
            }
            ClientMessage::Unsubscribe(c) => {
                assert!(
                    self.peer.has("subscribe"),
                    "unsubscribe sent to a seed server"
                );
                if let Some(sc) = self.server.as_mut() {
                    sc.subscribed.remove(&c.channel.to_string());
                }
                ack_id(self, &frame.id, None);
            }
            ClientMessage::Resume(r) => {
                assert!(
                    self.peer.has("resume"),
                    "resume sent to a server without it"
                );
                self.resume_frames += 1;
                // Like the reference server: an error first when it cannot replay, then
                // what this connection has not had, then the ack.
                if r.last_seq > self.seq {
                    self.reply_frame(ServerFrame::new(ServerMessage::Error(ErrorData {
                        code: ErrorCode::NotFound,
                        message: "resume: lastSeq is ahead of this server".into(),
                        retry_after_ms: None,
                        id: frame.id.clone(),
                    })));
                }
                let delivered = self
                    .server
                    .as_ref()
                    .map(|s| s.delivered.clone())
                    .unwrap_or_default();
                let missed: Vec<ServerFrame> = self
                    .log
                    .iter()
                    .filter(|f| {
                        f.seq
                            .is_some_and(|s| s > r.last_seq && !delivered.contains(&s))
                    })
                    .cloned()
                    .collect();
                for f in missed {
                    self.send_to_client(f);
                }
                ack_id(self, &frame.id, None);
            }
            ClientMessage::DraftSync(save) => {
                let id = frame.id.clone().expect("durable draft_sync has an id");
                if self.peer.has("ack")
                    && let Some(v) = self.draft_save_versions.get(&id).copied()
                {
                    // Acked again with the version that save made, not the current one.
                    let versioned = self.peer.has("draft_conflict");
                    ack_id(self, &frame.id, versioned.then_some(v));
                    return;
                }
                let versioned = self.peer.has("draft_conflict");
                let entry = self
                    .drafts
                    .entry(save.draft_id.clone())
                    .or_insert((0, Value::Null));
                if versioned && save.base_version.unwrap_or(0) != entry.0 {
                    let c = DraftConflict {
                        draft_id: save.draft_id.clone(),
                        base_version: save.base_version,
                        server_version: entry.0,
                        server_content: entry.1.clone(),
                    };
                    // The reference server puts the save's id on the conflict.
                    self.reply_frame(ServerFrame::new(ServerMessage::DraftConflict(c)).with_id(id));
                    return;
                }
                entry.0 += 1;
                entry.1 = save.content.clone();
                let v = entry.0;
                let echo = DraftSynced {
                    draft_id: save.draft_id.clone(),
                    draft_type: save.draft_type.clone(),
                    content: save.content.clone(),
                    version: versioned.then_some(v),
                    updated_at: None,
                    session_id: Some("s-this".into()),
                };
                self.draft_save_versions.insert(id, v);
                if self.peer.has("seq") {
                    // The echo for the user's other sessions takes a seq; this connection
                    // skips it: a gap the client must not take for a loss.
                    self.seq += 1;
                    let seq = self.seq;
                    self.log
                        .push(ServerFrame::new(ServerMessage::DraftSync(echo)).with_seq(seq));
                    if let Some(sc) = self.server.as_mut() {
                        sc.delivered.insert(seq);
                    }
                }
                ack_id(self, &frame.id, versioned.then_some(v));
            }
            ClientMessage::PitchView(_) | ClientMessage::Unknown { .. } => {
                let id = frame.id.clone().expect("durable message has an id");
                // A seed server does not de-duplicate: a re-send would apply twice, and
                // the invariant check would see it.
                if !(self.peer.has("ack") && self.applied_set.contains(&id)) {
                    self.applied.push(id.clone());
                    self.applied_set.insert(id);
                }
                ack_id(self, &frame.id, None);
            }
        }
    }

    /// Number of times the server applied `id`.
    pub fn applied_count(&self, id: &MessageId) -> usize {
        self.applied.iter().filter(|a| *a == id.as_str()).count()
    }

    /// Let the network heal and the app behave (tokens given, connect called), then run.
    pub fn heal_and_run(&mut self, ms: u64) {
        self.refuse_until = Instant::ZERO;
        self.forced_until = Instant::ZERO;
        self.token_answer_ms = Some(100);
        if let Some(st) = self.conn.draft_state(SIM_DRAFT)
            && st.dirty
            && !st.valid
        {
            // The user fixes the form.
            let content = st.content.clone();
            self.conn
                .draft_update(SIM_DRAFT, content, true, self.now)
                .expect("draft open");
        }
        if matches!(
            self.conn.state(),
            State::AuthFailed { .. } | State::Closed | State::AwaitingToken
        ) {
            let t = self.valid_token.clone();
            self.conn.set_token(t, self.now);
            self.app_connected = true;
            self.conn.connect(self.now).expect("ws url");
            self.pump();
            self.app_connected = false;
        }
        self.run_for(ms);
    }

    /// The server's draft store (version, content).
    pub fn server_draft(&self, id: &str) -> Option<&(u64, Value)> {
        self.drafts.get(id)
    }

    /// Whether the server holds a subscription to `channel` on the current connection.
    pub fn server_subscribed(&self, channel: &str) -> bool {
        self.server
            .as_ref()
            .is_some_and(|s| s.subscribed.contains(channel))
    }

    /// True while the server has a connection.
    pub fn server_connected(&self) -> bool {
        self.server.is_some()
    }
}
