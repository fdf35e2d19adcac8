//! The hub: every live session, its subscriptions, and the routing of messages to users,
//! channels and everyone; plus the in-memory books (presence, pitches, dashboards) and the
//! durable [`Store`].
//!
//! One mutex guards it all. Critical sections are short and never await: frames are handed to
//! each session's bounded outbox with `try_send`, and the session's own task writes them.
//! Fan-out across processes would hook in where frames are routed here ([`Hub::route`]).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use pitchey_realtime::protocol::{
    Channel, Connected, DashboardMetrics, DashboardUpdate, DraftConflict, DraftSave, DraftSynced,
    ErrorCode, ErrorData, Feature, NewNotification, Notification, Presence, SUBPROTOCOL,
    ServerFrame, ServerMessage, UploadProgress,
};
use rand::Rng;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::auth::AuthUser;
use crate::config::ServerConfig;
use crate::drafts::{Draft, DraftDecision, decide};
use crate::metrics;
use crate::outbox::{self, TrySendError};
use crate::pitches::PitchBook;
use crate::presence::PresenceBook;
use crate::receipts::{Receipt, Tally};
use crate::redis_link::PresenceChange;
use crate::store::{
    Applied, Durability, FrameText, LoggedFrame, QueuedFrame, SharedBody, Store, StoreError,
};
use crate::time::now_iso;

mod faults;
mod guards;
mod remote;
mod shrink;
#[cfg(test)]
mod test_support;
pub(crate) use faults::{MAX_FAULT_MS, SessionFault};
pub(crate) use guards::{Registered, SessionSlot};
pub(crate) use remote::queued_frames;

/// A command to one session's task.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// Write this text frame.
    Text(FrameText),
    /// Write this text frame once its store writes are durable (it carries a new `seq`).
    /// Boxed: only a store with commits (`--data-dir`) sends it, and the largest variant sets
    /// the size of every outbox slot.
    DurableText(Box<(FrameText, crate::store::Durability)>),
    /// An announcement: like `DurableText`, and the receipt tells the announcer it was written.
    /// Boxed: the largest variant would set the size of every outbox slot.
    Announced(Box<(FrameText, crate::store::Durability, Receipt)>),
    /// Send `notice` (if any), then close with `code`. Boxed: rare, and every session's outbox
    /// holds 32 slots of the largest variant from the start.
    Close(Box<CloseOrder>),
    /// Fault injection: end the connection at once, without a close frame.
    Drop,
    /// Fault injection: answer `rate_limited` now and refuse every message for this long.
    Throttle(std::time::Duration),
    /// Fault injection: delay every frame written to this session by this much.
    Delay(std::time::Duration),
    /// Fault injection over: no more delay or forced rate limit.
    ClearFaults,
}

/// [`Outbound::Close`]: send `notice` (if any), then close with `code`.
#[derive(Debug)]
pub(crate) struct CloseOrder {
    pub code: u16,
    pub reason: &'static str,
    pub notice: Option<FrameText>,
}

/// Internal handle of a session in the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct SessionKey(u64);

struct SessionEntry {
    user: u64,
    tx: outbox::Sender<Outbound>,
    channels: HashSet<Channel>,
    /// The user's last `seq` when this session connected: later durable frames reached it live.
    connect_seq: u64,
    /// Seqs this session got from the offline queue or a replay.
    delivered: HashSet<u64>,
    /// Fault injection in force on it (for `GET /api/ws/faults`).
    faults: faults::SessionFaults,
}

/// Counters for `/api/ws/stats`, outside the lock.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub connections_total: AtomicU64,
    pub messages_in: AtomicU64,
    pub messages_out: AtomicU64,
    pub rate_limited: AtomicU64,
    pub invalid_messages: AtomicU64,
    pub auth_failures: AtomicU64,
    pub offline_dropped: AtomicU64,
    pub slow_consumers_dropped: AtomicU64,
    /// Frames received, by `type` (`invalid`, `unknown`, `binary` for the rest).
    pub messages_in_by_type: crate::metrics::TypeCounters,
    /// Frames written, by `type`.
    pub messages_out_by_type: crate::metrics::TypeCounters,
    /// Refusals by limit.
    pub limits: crate::limits::LimitCounters,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

struct HubState {
    store: Box<dyn Store>,
    sessions: HashMap<SessionKey, SessionEntry>,
    by_user: HashMap<u64, Vec<SessionKey>>,
    subscribers: HashMap<Channel, HashSet<SessionKey>>,
    presence: PresenceBook,
    pitches: PitchBook,
    investor_interest: HashMap<u64, u64>,
    usernames: HashMap<u64, String>,
    next_key: u64,
    shutting_down: bool,
    /// Fault injection: upgrades are refused (503) until then.
    refuse_connects_until: Option<Instant>,
    /// Fault injection: tokens of a user issued up to this Unix millisecond are refused.
    revoked_before: HashMap<u64, u64>,
    /// Sessions per user, counted from the upgrade (see [`SessionSlot`]).
    session_slots: HashMap<u64, usize>,
    /// When idle pitch stats were last looked for.
    last_pitch_sweep: Instant,
}

/// A `subscribe` beyond `max_subscriptions`.
pub(crate) struct TooManySubscriptions;

/// What a new session sends first, decided atomically with its registration.
pub(crate) struct Registration {
    pub key: SessionKey,
    pub session_id: String,
    /// `connected`, the offline queue, and any replay asked for with `?lastSeq=`.
    pub first_frames: Vec<FrameText>,
    /// The first frames go out once this is durable: they carry seqs (and `connected` the
    /// baseline `lastSeq`) that a restart must not hand out again, and taking the offline
    /// queue is itself a write.
    pub durable: Durability,
}

/// Result of a `resume`.
pub(crate) struct Replay {
    /// Frames missed, in `seq` order.
    pub frames: Vec<FrameText>,
    /// Set when some of what the client missed is no longer kept: why.
    pub gap: Option<String>,
}

/// Result of a `draft_sync`.
pub(crate) enum DraftOutcome {
    Accepted {
        version: u64,
    },
    Conflict(DraftConflict),
    /// It would create a draft beyond `max_drafts_per_user`.
    LimitExceeded,
}

/// Why a `draft_sync` was not decided: nothing is acked, the client sends it again.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DraftError {
    /// The local store did not commit.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The Redis script did not answer (it may or may not have run: a repeat with the same
    /// id is answered from the de-dup key).
    #[error("redis: {0}")]
    Redis(#[from] crate::redis_link::LinkDown),
}

/// What `announce` did: how many users it went to, and (on this instance alone) the
/// receipts of the sessions it was handed to.
pub(crate) struct Announced {
    /// Users with a session on this instance.
    pub users: usize,
    /// Settled as sessions write the frame; `None` through Redis (each instance delivers
    /// its own users on receipt).
    pub tally: Option<std::sync::Arc<Tally>>,
}

/// How a durable message reached its user.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Delivery {
    /// Sessions it was handed to.
    pub live: usize,
    /// Queued because the user had no session.
    pub queued: bool,
}

/// The shared server state. See the module docs.
pub(crate) struct Hub {
    pub config: ServerConfig,
    pub counters: Counters,
    started: Instant,
    state: Mutex<HubState>,
    /// Number of session tasks still running: shutdown waits for it to reach zero.
    tasks: watch::Sender<usize>,
    /// `POST /api/ws/notify` budgets of user tokens.
    pub notify_budget: crate::notify_budget::NotifyBudget,
    /// Several instances through Redis (`--redis-url`); see the `remote` module.
    redis: std::sync::OnceLock<std::sync::Arc<crate::redis_link::RedisLink>>,
    /// The receipts of the last announcement: the next one is answered once it is written.
    last_announcement: Mutex<Option<std::sync::Arc<Tally>>>,
}

/// Keeps the hub's task count right however a session task ends.
pub(crate) struct TaskGuard<'a>(&'a watch::Sender<usize>);

impl Drop for TaskGuard<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

fn encode(msg: ServerMessage) -> FrameText {
    ServerFrame::new(msg).encode().into()
}

/// An `error` frame.
pub(crate) fn error_frame(
    code: ErrorCode,
    message: impl Into<String>,
    id: Option<String>,
) -> FrameText {
    encode(ServerMessage::Error(ErrorData {
        code,
        message: message.into(),
        retry_after_ms: None,
        id,
    }))
}

impl Hub {
    pub(crate) fn new(config: ServerConfig, store: Box<dyn Store>) -> Self {
        Hub {
            notify_budget: crate::notify_budget::NotifyBudget::new(config.limits.notify_per_minute),
            config,
            counters: Counters::default(),
            started: Instant::now(),
            state: Mutex::new(HubState {
                store,
                sessions: HashMap::new(),
                by_user: HashMap::new(),
                subscribers: HashMap::new(),
                presence: PresenceBook::default(),
                pitches: PitchBook::default(),
                investor_interest: HashMap::new(),
                usernames: HashMap::new(),
                next_key: 1,
                shutting_down: false,
                refuse_connects_until: None,
                revoked_before: HashMap::new(),
                session_slots: HashMap::new(),
                last_pitch_sweep: Instant::now(),
            }),
            tasks: watch::channel(0).0,
            redis: std::sync::OnceLock::new(),
            last_announcement: Mutex::new(None),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HubState> {
        // A panic while holding the lock leaves plain data behind; keep serving.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn seed_mode(&self) -> bool {
        self.config.seed_compatible
    }

    /// Count a session task as running until the guard drops.
    pub(crate) fn task_started(&self) -> TaskGuard<'_> {
        self.tasks.send_modify(|n| *n += 1);
        TaskGuard(&self.tasks)
    }

    /// Wait until no session task runs.
    pub(crate) async fn sessions_finished(&self) {
        let mut rx = self.tasks.subscribe();
        // The sender lives in self, so wait_for only fails if the hub is gone.
        let _ = rx.wait_for(|n| *n == 0).await;
    }

    /// Commit what the store still holds pending (de-dup ids of messages with no durable
    /// effect, frames taken from offline queues), so that a graceful restart delivers no
    /// queued frame twice.
    pub(crate) fn flush_store(&self) {
        let durable = self.lock().store.commit();
        if let Err(e) = durable.wait_blocking() {
            tracing::error!(error = %e, "store: final commit failed");
        }
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.lock().shutting_down
    }

    /// Stop accepting sessions and tell every session to close with 1001.
    pub(crate) fn begin_shutdown(&self) {
        let mut st = self.lock();
        st.shutting_down = true;
        let notice = encode(ServerMessage::Disconnected(
            pitchey_realtime::protocol::Disconnected {
                reason: "server shutting down".into(),
            },
        ));
        for entry in st.sessions.values() {
            // A full outbox means the session is already being dropped as too slow.
            let _ = entry.tx.try_send(Outbound::Close(Box::new(CloseOrder {
                code: 1001,
                reason: "server shutting down",
                notice: Some(notice.clone()),
            })));
        }
    }

    // ---- sessions -------------------------------------------------------------------------

    /// Register a new session for `user`. `None` when the server is shutting down.
    pub(crate) fn register(
        &self,
        user: &AuthUser,
        tx: outbox::Sender<Outbound>,
        resume_from: Option<u64>,
        remote_queued: Vec<QueuedFrame>,
    ) -> Option<Registration> {
        let mut guard = self.lock();
        let st = &mut *guard;
        if st.shutting_down {
            return None;
        }
        let key = SessionKey(st.next_key);
        st.next_key += 1;
        let session_id = format!("s-{:08x}", rand::rng().random::<u32>());
        if let Some(name) = &user.username {
            st.usernames.insert(user.user_id, name.clone());
        }
        let uid = user.user_id;
        let connect_seq = st.store.last_seq(uid);
        // Frames from the Redis offline queue (several instances) come first: older seqs.
        let mut queued = remote_queued;
        queued.extend(st.store.queue_take(uid));
        let mut delivered: HashSet<u64> = queued.iter().filter_map(|q| q.seq).collect();
        let replay = match resume_from {
            Some(after) if !self.seed_mode() => {
                let r = replay_for(st, uid, after, connect_seq, &delivered);
                Some(r)
            }
            _ => None,
        };
        let resumed = replay.as_ref().is_some_and(|(r, _)| r.gap.is_none());
        // Everything up to `last_seq` is behind this connection: the frames that follow
        // (offline queue, replay) all have higher seqs. A client that has no seq yet takes
        // it as its baseline, so that a later reconnect can resume from it.
        let following = queued
            .iter()
            .filter_map(|q| q.seq)
            .chain(replay.iter().flat_map(|(_, seqs)| seqs.iter().copied()));
        let last_seq = following
            .min()
            .map_or(connect_seq, |first| first.saturating_sub(1));
        let mut first_frames =
            vec![self.connected_frame(&session_id, uid, resumed, Some(last_seq))];
        first_frames.extend(queued.into_iter().map(|q| q.text));
        if let Some((r, seqs)) = replay {
            delivered.extend(seqs);
            if let Some(gap) = r.gap {
                tracing::info!(user = uid, "{gap}");
            }
            first_frames.extend(r.frames);
        }
        st.sessions.insert(
            key,
            SessionEntry {
                user: uid,
                tx,
                channels: HashSet::new(),
                connect_seq,
                delivered,
                faults: faults::SessionFaults::default(),
            },
        );
        let sessions = st.by_user.entry(uid).or_default();
        sessions.push(key);
        if sessions.len() == 1 {
            // First session: the user comes online.
            self.presence_changed(st, uid, PresenceChange::Connected);
        }
        Counters::bump(&self.counters.connections_total);
        Some(Registration {
            key,
            session_id,
            first_frames,
            durable: st.store.commit(),
        })
    }

    /// A `connected` frame. `resumed` says whether a resume was honoured in full; the field
    /// (like `features` and `rateLimit`) is left out in seed-compatible mode.
    /// `last_seq` is the baseline announced to the client (`None` on a resume answer, where
    /// the client has its own).
    pub(crate) fn connected_frame(
        &self,
        session_id: &str,
        user: u64,
        resumed: bool,
        last_seq: Option<u64>,
    ) -> FrameText {
        let seed = self.seed_mode();
        let features = if seed {
            Vec::new()
        } else {
            Feature::ALL.iter().map(|f| f.as_str().to_owned()).collect()
        };
        encode(ServerMessage::Connected(Connected {
            session_id: session_id.to_owned(),
            user_id: Some(user),
            protocol: Some(SUBPROTOCOL.to_owned()),
            heartbeat_ms: Some(self.config.heartbeat_ms),
            rate_limit: (!seed).then_some(self.config.rate_limit),
            features,
            resumed: (!seed).then_some(resumed),
            last_seq: last_seq.filter(|_| !seed),
        }))
    }

    /// Forget a session (idempotent). The user goes offline with its last session.
    pub(crate) fn unregister(&self, key: SessionKey) {
        let mut guard = self.lock();
        self.remove_session(&mut guard, key);
    }

    fn remove_session(&self, st: &mut HubState, key: SessionKey) {
        let Some(entry) = st.sessions.remove(&key) else {
            return;
        };
        for ch in &entry.channels {
            if let Some(set) = st.subscribers.get_mut(ch) {
                set.remove(&key);
                if set.is_empty() {
                    st.subscribers.remove(ch);
                }
            }
        }
        shrink::shrink_sparse(&mut st.sessions);
        shrink::shrink_sparse(&mut st.subscribers);
        let now_empty = match st.by_user.get_mut(&entry.user) {
            Some(v) => {
                v.retain(|k| *k != key);
                v.is_empty()
            }
            None => true,
        };
        if now_empty {
            st.by_user.remove(&entry.user);
            shrink::shrink_sparse(&mut st.by_user);
            self.presence_changed(st, entry.user, PresenceChange::Disconnected);
        }
    }

    /// Hand `frame` to one session; a session whose outbox is full is dropped (its task sees
    /// the outbox close and ends the connection).
    fn push(&self, st: &mut HubState, key: SessionKey, frame: &FrameText) -> bool {
        self.push_after(st, key, frame, &Durability::default())
    }

    /// [`Hub::push`], written by the session once `durable` is.
    fn push_after(
        &self,
        st: &mut HubState,
        key: SessionKey,
        frame: &FrameText,
        durable: &Durability,
    ) -> bool {
        let out = if durable.is_settled() {
            Outbound::Text(frame.clone())
        } else {
            Outbound::DurableText(Box::new((frame.clone(), durable.clone())))
        };
        self.push_out(st, key, out)
    }

    /// Hand `out` to one session's outbox (see [`Hub::push`]).
    fn push_out(&self, st: &mut HubState, key: SessionKey, out: Outbound) -> bool {
        let Some(entry) = st.sessions.get(&key) else {
            return false;
        };
        match entry.tx.try_send(out) {
            Ok(()) => true,
            Err(TrySendError::Full) => {
                tracing::warn!(
                    user = entry.user,
                    "session too slow to keep up: dropping it"
                );
                Counters::bump(&self.counters.slow_consumers_dropped);
                // Dropping the entry drops the outbox sender: the session's task sees it
                // closed once it has written what is queued, and closes with 4008.
                self.remove_session(st, key);
                false
            }
            // The task already ended; it unregisters itself.
            Err(TrySendError::Closed) => false,
        }
    }

    /// Send `frame` to the given sessions.
    fn route(
        &self,
        st: &mut HubState,
        keys: impl IntoIterator<Item = SessionKey>,
        frame: &FrameText,
    ) -> usize {
        let keys: Vec<SessionKey> = keys.into_iter().collect();
        keys.into_iter()
            .filter(|k| self.push(st, *k, frame))
            .count()
    }

    /// Send `frame` to the given sessions once `durable` is (a frame with a new `seq`).
    fn route_after(
        &self,
        st: &mut HubState,
        keys: Vec<SessionKey>,
        frame: &FrameText,
        durable: &Durability,
    ) -> usize {
        keys.into_iter()
            .filter(|k| self.push_after(st, *k, frame, durable))
            .count()
    }

    fn sessions_of(st: &HubState, user: u64) -> Vec<SessionKey> {
        st.by_user.get(&user).cloned().unwrap_or_default()
    }

    /// A durable message for `user`: numbered (`seq`), logged for `resume`, sent to every
    /// session of the user (so that each sees every seq: no gaps), or queued when the user has
    /// no session at all. The frame leaves once the store's commit is durable (sessions wait
    /// for it, outside the lock): a `seq` a client has seen is never handed out again after a
    /// restart. A request that queued a frame waits for [`Hub::durable`] before answering.
    fn deliver_durable_here(
        &self,
        st: &mut HubState,
        user: u64,
        mut frame: ServerFrame,
    ) -> Result<Delivery, StoreError> {
        let seq = (!self.seed_mode()).then(|| st.store.next_seq(user));
        if let Some(seq) = seq {
            frame = frame.with_seq(seq);
        }
        let text: FrameText = frame.encode().into();
        if let Some(seq) = seq {
            st.store.log_append(
                user,
                LoggedFrame {
                    seq,
                    text: text.clone(),
                },
            );
        }
        let sessions = Self::sessions_of(st, user);
        if sessions.is_empty() {
            let dropped = st.store.queue_push(user, QueuedFrame { seq, text });
            if dropped > 0 {
                self.counters
                    .offline_dropped
                    .fetch_add(dropped as u64, Ordering::Relaxed);
            }
            drop(st.store.commit());
            return Ok(Delivery {
                live: 0,
                queued: self.config.offline_queue_cap > 0,
            });
        }
        let durable = st.store.commit();
        Ok(Delivery {
            live: self.route_after(st, sessions, &text, &durable),
            queued: false,
        })
    }

    /// Sessions subscribed to `channel`.
    fn subscribers_of(st: &HubState, channel: &Channel) -> Vec<SessionKey> {
        st.subscribers
            .get(channel)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Every session, except those of `except_user`.
    fn everyone_but(st: &HubState, except_user: Option<u64>) -> Vec<SessionKey> {
        st.sessions
            .iter()
            .filter(|(_, e)| Some(e.user) != except_user)
            .map(|(k, _)| *k)
            .collect()
    }

    /// `presence_update` to the user's followers and (additions) to `presence:{user}` subscribers.
    fn announce_presence(&self, st: &mut HubState, p: Presence) {
        let user = p.user_id;
        let mut targets: HashSet<SessionKey> = st
            .presence
            .followers_of(user)
            .flat_map(|f| Self::sessions_of(st, f))
            .collect();
        if !self.seed_mode() {
            targets.extend(Self::subscribers_of(st, &Channel::Presence(user)));
        }
        targets.retain(|k| st.sessions.get(k).is_some_and(|e| e.user != user));
        let frame = encode(ServerMessage::PresenceUpdate(p));
        self.route(st, targets, &frame);
    }

    // ---- client messages ------------------------------------------------------------------

    /// `subscribe`; returns the channel's current state when it has one (pitch stats, presence).
    pub(crate) fn subscribe(
        &self,
        key: SessionKey,
        channel: Channel,
    ) -> Result<Option<FrameText>, TooManySubscriptions> {
        let mut st = self.lock();
        let Some(entry) = st.sessions.get_mut(&key) else {
            return Ok(None);
        };
        if !entry.channels.contains(&channel)
            && entry.channels.len() >= self.config.limits.max_subscriptions
        {
            return Err(TooManySubscriptions);
        }
        entry.channels.insert(channel.clone());
        st.subscribers
            .entry(channel.clone())
            .or_default()
            .insert(key);
        Ok(match channel {
            Channel::Pitch(id) => st
                .pitches
                .stats(id)
                .map(|s| encode(ServerMessage::PitchStatsUpdate(s))),
            Channel::Presence(user) => {
                Some(encode(ServerMessage::PresenceUpdate(st.presence.get(user))))
            }
            _ => None,
        })
    }

    /// Free idle pitch stats, at most once every `min(pitch_idle, 60 s)`.
    fn sweep_pitches(&self, st: &mut HubState) {
        let idle = std::time::Duration::from_secs(self.config.limits.pitch_idle_secs);
        let now = Instant::now();
        if now.saturating_duration_since(st.last_pitch_sweep)
            < idle.min(std::time::Duration::from_secs(60))
        {
            return;
        }
        st.last_pitch_sweep = now;
        let HubState {
            pitches,
            subscribers,
            ..
        } = st;
        let freed = pitches.free_idle(now, idle, |id| {
            subscribers.contains_key(&Channel::Pitch(id))
        });
        if freed > 0 {
            self.counters
                .limits
                .pitches_freed
                .fetch_add(freed as u64, Ordering::Relaxed);
        }
    }

    /// `unsubscribe`.
    pub(crate) fn unsubscribe(&self, key: SessionKey, channel: &Channel) {
        let mut st = self.lock();
        if let Some(e) = st.sessions.get_mut(&key) {
            e.channels.remove(channel);
        }
        if let Some(set) = st.subscribers.get_mut(channel) {
            set.remove(&key);
            if set.is_empty() {
                st.subscribers.remove(channel);
            }
        }
    }

    fn dashboard(st: &HubState, user: u64) -> DashboardMetrics {
        let (pitches, total_views) = st.pitches.owner_totals(user);
        DashboardMetrics {
            total_views,
            followers: st.presence.follower_count(user),
            pitches,
            investor_interest: st.investor_interest.get(&user).copied().unwrap_or(0),
            other: Default::default(),
        }
    }

    fn push_dashboard(&self, st: &mut HubState, user: u64) -> Result<(), StoreError> {
        let metrics = Self::dashboard(st, user);
        self.deliver_durable(
            st,
            user,
            ServerMessage::DashboardUpdate(DashboardUpdate { metrics }),
        )
        .map(|_| ())
    }

    /// `draft_sync`: accept (store, and `draft_sync` to the user's other sessions) or conflict.
    /// An accepted save with an `id` is remembered for de-duplication in the same commit, so
    /// that the ack promises nothing that is not on disk: the caller writes the ack once the
    /// returned commit is durable. It waits outside the hub's lock and goes on reading its
    /// client meanwhile, so that the client's next messages join the same group.
    pub(crate) fn draft_sync(
        &self,
        key: SessionKey,
        session_id: &str,
        user: u64,
        save: DraftSave,
        id: Option<&str>,
    ) -> (DraftOutcome, Durability) {
        let mut guard = self.lock();
        let st = &mut *guard;
        let current = st.store.draft(user, &save.draft_id);
        if current.is_none() && st.store.draft_count(user) >= self.config.limits.max_drafts_per_user
        {
            return (DraftOutcome::LimitExceeded, Durability::default());
        }
        match decide(current.as_ref(), save.base_version, !self.seed_mode()) {
            DraftDecision::Conflict {
                server_version,
                server_content,
            } => (
                DraftOutcome::Conflict(DraftConflict {
                    draft_id: save.draft_id,
                    base_version: save.base_version,
                    server_version,
                    server_content,
                }),
                Durability::default(),
            ),
            DraftDecision::Accept { version } => {
                let updated_at = now_iso();
                let draft_type = save
                    .draft_type
                    .or_else(|| current.and_then(|d| d.draft_type));
                st.store.put_draft(
                    user,
                    &save.draft_id,
                    Draft {
                        draft_type: draft_type.clone(),
                        content: save.content.clone(),
                        version,
                        updated_at: updated_at.clone(),
                    },
                );
                if let Some(id) = id.filter(|_| !self.seed_mode()) {
                    let applied = Applied {
                        version: Some(version),
                    };
                    st.store.remember(user, id, applied, Instant::now());
                }
                let durable = st.store.commit();
                let synced = DraftSynced {
                    draft_id: save.draft_id,
                    draft_type,
                    content: save.content,
                    version: (!self.seed_mode()).then_some(version),
                    updated_at: Some(updated_at),
                    session_id: Some(session_id.to_owned()),
                };
                // To the other sessions only, so not durable: a `seq` skipped by the saving
                // session would look like a lost frame to it. A session that was away learns
                // of the new version from `draft_conflict` on its next save.
                self.draft_to_others(st, key, user, synced);
                (DraftOutcome::Accepted { version }, durable)
            }
        }
    }

    /// When everything the store was given so far is durable: an HTTP answer that promises
    /// a write (a queued notification) waits for it, outside the hub's lock.
    pub(crate) fn durable(&self) -> Durability {
        self.lock().store.commit()
    }

    /// What an already-applied message id answered, if it was seen within the window.
    pub(crate) fn seen(&self, user: u64, id: &str) -> Option<Applied> {
        self.lock().store.seen(user, id, Instant::now())
    }

    /// Remember an applied message id. Not committed here: the messages acked this way
    /// (pings, typing, presence, views, subscriptions) have no durable effect to protect, so
    /// their ids reach the disk with the next commit rather than cost a sync each.
    pub(crate) fn remember(&self, user: u64, id: &str, applied: Applied) {
        self.lock()
            .store
            .remember(user, id, applied, Instant::now());
    }

    /// `resume {lastSeq}`: what this session missed.
    pub(crate) fn resume(&self, key: SessionKey, last_seq: u64) -> Replay {
        let mut guard = self.lock();
        let st = &mut *guard;
        let Some(entry) = st.sessions.get(&key) else {
            return Replay {
                frames: Vec::new(),
                gap: None,
            };
        };
        let (user, upto) = (entry.user, entry.connect_seq);
        let delivered = entry.delivered.clone();
        let (replay, seqs) = replay_for(st, user, last_seq, upto, &delivered);
        if let Some(e) = st.sessions.get_mut(&key) {
            e.delivered.extend(seqs);
        }
        replay
    }

    // ---- HTTP-driven events ---------------------------------------------------------------

    /// `POST /api/ws/notify`.
    pub(crate) fn notify(
        &self,
        user: u64,
        n: NewNotification,
    ) -> Result<(Notification, Delivery), StoreError> {
        let mut guard = self.lock();
        let st = &mut *guard;
        let notification = self.make_notification(st, n);
        let d =
            self.deliver_durable(st, user, ServerMessage::Notification(notification.clone()))?;
        Ok((notification, d))
    }

    fn make_notification(&self, st: &mut HubState, n: NewNotification) -> Notification {
        let id = format!("n-{}", st.store.next_notification());
        Notification {
            id,
            kind: n.kind,
            title: n.title,
            message: n.message,
            data: n.data,
            created_at: Some(now_iso()),
            read: false,
        }
    }

    /// `POST /api/ws/upload-progress`.
    pub(crate) fn upload_progress(
        &self,
        user: u64,
        p: UploadProgress,
    ) -> Result<Delivery, StoreError> {
        let mut guard = self.lock();
        self.deliver_durable(&mut guard, user, ServerMessage::UploadProgress(p))
    }

    /// `POST /api/ws/announce` on this instance alone: the notification is encoded once and
    /// numbered per user (a shared body plus the user's `seq`, in the frames and the replay
    /// logs alike), committed once, then handed to every session with a receipt.
    fn announce_here(&self, title: String, message: String) -> Result<Announced, StoreError> {
        let mut guard = self.lock();
        let st = &mut *guard;
        let users: Vec<u64> = st.by_user.keys().copied().collect();
        let n = self.make_notification(
            st,
            NewNotification {
                kind: "system".into(),
                title,
                message,
                data: Value::Null,
            },
        );
        let body = SharedBody::encode(&ServerFrame::new(ServerMessage::Notification(n)));
        let numbered: Vec<(u64, Option<u64>, FrameText)> = users
            .iter()
            .map(|&user| {
                if self.seed_mode() {
                    return (user, None, body.unnumbered());
                }
                let seq = st.store.next_seq(user);
                let text = FrameText::numbered(&body, seq);
                st.store.log_append(
                    user,
                    LoggedFrame {
                        seq,
                        text: text.clone(),
                    },
                );
                (user, Some(seq), text)
            })
            .collect();
        // One commit covers every user's seq and log entry.
        let durable = st.store.commit();
        let tally = Tally::new();
        let mut queued = false;
        for (user, seq, text) in numbered {
            let sessions = st.by_user.get(&user).cloned().unwrap_or_default();
            if sessions.is_empty() {
                // Its last session was dropped as too slow meanwhile: keep it for the user.
                let dropped = st.store.queue_push(user, QueuedFrame { seq, text });
                self.counters
                    .offline_dropped
                    .fetch_add(dropped as u64, Ordering::Relaxed);
                queued = true;
                continue;
            }
            for key in sessions {
                let out =
                    Outbound::Announced(Box::new((text.clone(), durable.clone(), tally.receipt())));
                self.push_out(st, key, out);
            }
        }
        if queued {
            drop(st.store.commit());
        }
        Ok(Announced {
            users: users.len(),
            tally: Some(tally),
        })
    }

    /// Record `tally` as the last announcement's; returns the one before it.
    pub(crate) fn follow_announcement(
        &self,
        tally: std::sync::Arc<Tally>,
    ) -> Option<std::sync::Arc<Tally>> {
        self.last_announcement
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .replace(tally)
    }

    /// `follower` follows `followee`: a `follow` notification and a `dashboard_update` to the
    /// followee. False when it already did.
    fn follow_here(&self, follower: u64, followee: u64) -> Result<bool, StoreError> {
        let mut guard = self.lock();
        let st = &mut *guard;
        if !st.presence.follow(follower, followee) {
            return Ok(false);
        }
        let name = st
            .usernames
            .get(&follower)
            .cloned()
            .unwrap_or_else(|| format!("user {follower}"));
        let n = self.make_notification(
            st,
            NewNotification {
                kind: "follow".into(),
                title: "New follower".into(),
                message: format!("{name} followed you"),
                data: json!({ "followerId": follower }),
            },
        );
        self.deliver_durable(st, followee, ServerMessage::Notification(n))?;
        self.push_dashboard(st, followee)?;
        Ok(true)
    }

    /// Seed a follow without notifying (demo fixture).
    pub(crate) fn follow_quietly(&self, follower: u64, followee: u64) {
        self.lock().presence.follow(follower, followee);
    }

    /// Set a pitch's owner and, optionally, its starting view count, here.
    fn set_pitch_owner_here(&self, pitch_id: u64, owner: u64, views: u64) {
        let mut st = self.lock();
        st.pitches.set_owner(pitch_id, owner);
        st.pitches.add_views(pitch_id, views);
    }

    /// Set a username (demo fixture, or a token's `username`).
    pub(crate) fn set_username(&self, user: u64, name: &str) {
        self.lock().usernames.insert(user, name.to_owned());
    }

    /// Add to a user's investor interest and push their dashboard (demo traffic).
    pub(crate) fn add_investor_interest(&self, user: u64, n: u64) {
        let mut guard = self.lock();
        let st = &mut *guard;
        *st.investor_interest.entry(user).or_default() += n;
        if let Err(e) = self.push_dashboard(st, user) {
            tracing::error!(error = %e, user, "demo dashboard_update not stored");
        }
    }

    /// A user's presence.
    pub(crate) fn presence(&self, user: u64) -> Presence {
        self.lock().presence.get(user)
    }

    /// Whether a user has a live session.
    pub(crate) fn has_sessions(&self, user: u64) -> bool {
        self.lock().by_user.contains_key(&user)
    }

    /// The followed users of `user` that are online or away.
    pub(crate) fn following_online(&self, user: u64) -> Vec<Presence> {
        self.lock().presence.following_online(user)
    }

    /// A user's dashboard metrics.
    pub(crate) fn dashboard_of(&self, user: u64) -> DashboardMetrics {
        Self::dashboard(&self.lock(), user)
    }

    /// Body of `GET /api/ws/health`.
    pub(crate) fn health(&self) -> Value {
        let st = self.lock();
        json!({
            "status": if st.shutting_down { "shutting_down" } else { "ok" },
            "protocol": SUBPROTOCOL,
            "connections": st.sessions.len(),
            "uptimeSecs": self.started.elapsed().as_secs(),
            "seedCompatible": self.seed_mode(),
        })
    }

    /// Body of `GET /metrics`: the numbers of [`Hub::stats`] in Prometheus text format.
    pub(crate) fn prometheus(&self) -> String {
        let stats = self.stats();
        let series: [(&str, &str, &str, &str); 12] = [
            (
                "connections",
                "gauge",
                "connections",
                "open WebSocket sessions",
            ),
            ("users", "gauge", "users", "users with at least one session"),
            ("channels", "gauge", "channels", "channels with subscribers"),
            (
                "connectionsTotal",
                "counter",
                "connections_total",
                "sessions opened",
            ),
            (
                "messagesIn",
                "counter",
                "messages_in_total",
                "frames received",
            ),
            (
                "messagesOut",
                "counter",
                "messages_out_total",
                "frames written",
            ),
            (
                "rateLimited",
                "counter",
                "rate_limited_total",
                "messages refused by the rate limit",
            ),
            (
                "invalidMessages",
                "counter",
                "invalid_messages_total",
                "malformed, invalid or unknown messages",
            ),
            (
                "authFailures",
                "counter",
                "auth_failures_total",
                "refused tokens",
            ),
            (
                "offlineQueued",
                "gauge",
                "offline_queue_depth",
                "frames waiting in offline queues",
            ),
            (
                "offlineDropped",
                "counter",
                "offline_dropped_total",
                "queued frames dropped for room",
            ),
            (
                "slowConsumersDropped",
                "counter",
                "slow_consumers_dropped_total",
                "sessions dropped for falling behind",
            ),
        ];
        let mut out = String::new();
        for (key, kind, name, help) in series {
            let value = stats[key].as_u64().unwrap_or(0);
            out.push_str(&format!(
                "# HELP pitchey_ws_{name} {help}\n# TYPE pitchey_ws_{name} {kind}\npitchey_ws_{name} {value}\n"
            ));
        }
        metrics::prometheus_details(&mut out, &stats);
        out
    }

    /// Body of `GET /api/ws/stats`.
    pub(crate) fn stats(&self) -> Value {
        let redis = self.redis_status();
        let st = self.lock();
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let commits = st.store.commit_stats();
        let sessions_per_user: serde_json::Map<String, Value> = st
            .by_user
            .iter()
            .map(|(u, v)| (u.to_string(), Value::from(v.len())))
            .collect();
        json!({
            "connections": st.sessions.len(),
            "users": st.by_user.len(),
            "sessionsPerUser": sessions_per_user,
            "channels": st.subscribers.len(),
            "connectionsTotal": get(&c.connections_total),
            "messagesIn": get(&c.messages_in),
            "messagesOut": get(&c.messages_out),
            "rateLimited": get(&c.rate_limited),
            "invalidMessages": get(&c.invalid_messages),
            "authFailures": get(&c.auth_failures),
            "offlineQueued": st.store.queue_depth(),
            "offlineDropped": get(&c.offline_dropped),
            "slowConsumersDropped": get(&c.slow_consumers_dropped),
            "uptimeSecs": self.started.elapsed().as_secs(),
            "seedCompatible": self.seed_mode(),
            "messagesInByType": c.messages_in_by_type.snapshot(),
            "messagesOutByType": c.messages_out_by_type.snapshot(),
            "offlineQueueDepths": st
                .store
                .queue_depths()
                .into_iter()
                .map(|(u, n)| (u.to_string(), Value::from(n)))
                .collect::<serde_json::Map<String, Value>>(),
            // Frames handed to sessions and not yet written.
            "outboxQueued": st
                .sessions
                .values()
                .map(|e| e.tx.len())
                .sum::<usize>(),
            "store": {
                "kind": st.store.kind(),
                "commits": commits.commits,
                "commitMicros": commits.micros,
                "commitFailures": commits.failures,
            },
            "redis": redis.as_str(),
            "limits": c.limits.snapshot(st.store.evictions()),
        })
    }
}

/// Replay for `user` of what a session missed: logged frames with `after < seq <= upto` that
/// it has not had. Returns the replay and the seqs it delivers.
fn replay_for(
    st: &HubState,
    user: u64,
    after: u64,
    upto: u64,
    delivered: &HashSet<u64>,
) -> (Replay, Vec<u64>) {
    let last = st.store.last_seq(user);
    if after > last {
        let gap = format!(
            "resume: lastSeq {after} is ahead of this server's last seq {last} (server restarted?); refetch state"
        );
        return (
            Replay {
                frames: Vec::new(),
                gap: Some(gap),
            },
            Vec::new(),
        );
    }
    let gap = if after >= upto {
        None
    } else {
        match st.store.log_oldest(user) {
            Some(oldest) if oldest <= after + 1 => None,
            oldest => Some(format!(
                "resume: messages after seq {after} are no longer kept (oldest kept: {}); refetch state",
                oldest.map_or_else(|| "none".to_owned(), |o| o.to_string())
            )),
        }
    };
    let logged: Vec<LoggedFrame> = st
        .store
        .log_range(user, after, upto)
        .into_iter()
        .filter(|f| !delivered.contains(&f.seq))
        .collect();
    let seqs = logged.iter().map(|f| f.seq).collect();
    (
        Replay {
            frames: logged.into_iter().map(|f| f.text).collect(),
            gap,
        },
        seqs,
    )
}
