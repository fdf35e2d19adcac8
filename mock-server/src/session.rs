//! One WebSocket session: the first frames, then a loop over inbound frames, the hub's
//! outbound frames, the idle timeout and the token's expiry.
//!
//! [`Session`] handles frames without the socket: what it answers is queued in `out` and
//! written by the loop before anything else is read, so that the handler can be driven
//! directly (`crate::fuzzing`). The [`Writer`] owns the socket.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{FutureExt, SinkExt};
use pitchey_realtime::protocol::{
    Ack, ClientFrame, ClientMessage, Disconnected, DraftSave, ErrorCode, ErrorData, RateLimit,
    RawFrame, ServerFrame, ServerMessage,
};
use tokio::time::{sleep_until, timeout};

use crate::auth::AuthUser;
use crate::hub::{
    Counters, DraftOutcome, Hub, Outbound, Registered, SessionKey, SessionSlot,
    TooManySubscriptions, error_frame,
};
use crate::limits::{LimitCounters, limit_exceeded};
use crate::outbox;
use crate::rate_limit::RateLimiter;
use crate::receipts::Receipt;
use crate::store::{Applied, Durability, FrameText};
use crate::time::unix_secs;

#[cfg(test)]
mod first_frames_tests;
#[cfg(test)]
mod size_tests;

/// How a session ends from our side: a close code, a reason, and a frame to send first.
pub(crate) struct Ending {
    pub(crate) code: u16,
    pub(crate) reason: &'static str,
    notice: Option<FrameText>,
}

impl Ending {
    fn new(code: u16, reason: &'static str, notice: Option<FrameText>) -> Self {
        Ending {
            code,
            reason,
            notice,
        }
    }
}

/// The socket is gone: nothing more can be written.
struct Gone;

/// Frames and bytes written with one flush at most: a session with a backlog writes it in a
/// few syscalls instead of one per frame, without holding on to a large batch.
const BATCH_FRAMES: usize = 64;
const BATCH_BYTES: usize = 64 * 1024;

/// Frames waiting to be written (answers waiting for their group commit, and everything
/// queued behind them) at which the session stops reading its client and its outbox.
const MAX_PENDING: usize = 256;

/// A frame to write, in order, once the store writes it promises are durable.
pub(crate) struct Outgoing {
    pub(crate) text: FrameText,
    durable: Durability,
    /// Written instead when those writes failed (`None`: nothing is; the frame is held back).
    instead: Option<FrameText>,
    /// Tells an announcer the frame was written.
    receipt: Option<Receipt>,
}

impl Outgoing {
    fn now(text: FrameText) -> Self {
        Outgoing {
            text,
            durable: Durability::default(),
            instead: None,
            receipt: None,
        }
    }

    fn after(text: FrameText, durable: Durability, instead: Option<FrameText>) -> Self {
        Outgoing {
            text,
            durable,
            instead,
            receipt: None,
        }
    }
}

/// What one turn of the loop decided.
enum Flow {
    Go,
    End(Ending),
    Quit(&'static str),
}

/// The rate limiter's verdict on one message.
enum Gate {
    /// Process it.
    Pass,
    /// Refused (the client was told); drop it.
    Refused,
    /// Refused too often in a row: end the session.
    Close(Ending),
}

/// One session's state and frame handler.
pub(crate) struct Session {
    hub: Arc<Hub>,
    user: AuthUser,
    key: SessionKey,
    session_id: String,
    limiter: Option<RateLimiter>,
    /// The separate budget of pings (application and WebSocket-level).
    ping_limiter: Option<RateLimiter>,
    /// Fault injection: every message is refused as rate limited until then.
    throttled_until: Option<Instant>,
    /// Frames answered, not yet handed to the writer.
    pub(crate) out: Vec<Outgoing>,
}

/// The socket, written in order.
struct Writer {
    hub: Arc<Hub>,
    socket: WebSocket,
    user: u64,
    /// Fault injection: written frames are delayed by this much.
    delay: Duration,
    /// The frames of the write in progress (kept: its allocation is reused).
    batch: Vec<Outgoing>,
}

fn encode(msg: ServerMessage) -> FrameText {
    ServerFrame::new(msg).encode().into()
}

fn disconnected(reason: &str) -> FrameText {
    encode(ServerMessage::Disconnected(Disconnected {
        reason: reason.to_owned(),
    }))
}

/// What a session starts with, besides its socket. Kept boxed until the upgrade completes
/// (`http::ws_upgrade`), so that axum's upgrade task holds 8 bytes for it rather than the whole.
pub(crate) struct Start {
    pub(crate) hub: Arc<Hub>,
    pub(crate) user: AuthUser,
    /// The `?lastSeq=` of the upgrade request.
    pub(crate) resume_from: Option<u64>,
    /// Held to the end: the user's session slot is free again once the session ends.
    pub(crate) slot: SessionSlot,
}

/// Run a session to its end.
///
/// Not an `async fn`: one keeps its arguments and the locals they are moved into side by side
/// in the future (the socket twice, then a third time in the [`Writer`]), and every idle
/// connection holds that future. The block below uses what it captured in place.
pub(crate) fn run(socket: WebSocket, start: Start) -> impl Future<Output = ()> + Send {
    let Start {
        hub,
        user,
        resume_from,
        slot,
    } = start;
    let mut w = Writer {
        hub: hub.clone(),
        socket,
        user: user.user_id,
        delay: Duration::ZERO,
        batch: Vec::new(),
    };
    async move {
        let _slot = &slot;
        let _running = hub.task_started();
        let (tx, mut rx) = outbox::channel(hub.config.session_outbox_cap);
        // Several instances: what waited in Redis for a user offline everywhere.
        let remote_queued = match hub.redis_link() {
            // Boxed, like every cold path below: the session future is held by every idle
            // connection, so only what the loop needs all the time is laid out inline in it.
            Some(link) => Box::pin(link.take_queue(user.user_id))
                .await
                .map(|q| crate::hub::queued_frames(q, hub.config.seed_compatible))
                .unwrap_or_default(),
            None => Vec::new(),
        };
        let Some(reg) = hub.register(&user, tx, resume_from, remote_queued) else {
            let ending = Ending::new(
                1001,
                "server shutting down",
                Some(disconnected("server shutting down")),
            );
            Box::pin(close(&mut w.socket, ending, hub.config.close_grace)).await;
            return;
        };
        // Unregisters the session when this task ends in any way, a panic included.
        let _registered = Registered::new(hub.clone(), reg.key);
        tracing::info!(user = user.user_id, session = %reg.session_id, "session opened");
        let mut s = Session::new(hub.clone(), user, reg.key, reg.session_id);
        let mut ended = None;
        // The first frames carry seqs (and `connected` the baseline `lastSeq`): they leave
        // once those are durable, so that a restart never hands the same seq out again.
        if let Err(e) = Box::pin(reg.durable.wait()).await {
            tracing::error!(user = s.user.user_id, error = %e, "session refused: store unavailable");
            let ending = Ending::new(1011, "store unavailable", None);
            Box::pin(close(&mut w.socket, ending, hub.config.close_grace)).await;
            ended = Some("store unavailable");
        }
        if ended.is_none() {
            let mut first: VecDeque<Outgoing> =
                reg.first_frames.into_iter().map(Outgoing::now).collect();
            if w.write_ready(&mut first).await.is_err() {
                ended = Some("connection lost");
            }
        }
        let why = match ended {
            Some(why) => why,
            None => {
                // A bug must not leave the client without a close code: 1011, then end.
                match AssertUnwindSafe(serve(&mut s, &mut w, &mut rx))
                    .catch_unwind()
                    .await
                {
                    Ok(why) => why,
                    Err(_) => {
                        tracing::error!(
                            user = s.user.user_id,
                            "session task panicked: closing 1011"
                        );
                        let ending = Ending::new(1011, "internal error", None);
                        Box::pin(close(&mut w.socket, ending, hub.config.close_grace)).await;
                        "internal error"
                    }
                }
            }
        };
        tracing::info!(user = s.user.user_id, session = %s.session_id, why, "session closed");
    }
}

/// The main loop; returns why the session ended.
async fn serve(
    s: &mut Session,
    w: &mut Writer,
    rx: &mut outbox::Receiver<Outbound>,
) -> &'static str {
    let idle = s.hub.config.session_timeout();
    let mut last_seen = tokio::time::Instant::now();
    let token_left = Duration::from_secs(s.user.expires_at.saturating_sub(unix_secs()));
    // `exp` is at most year 9999 (checked in auth), but never trust arithmetic on it.
    let token_deadline = tokio::time::Instant::now()
        .checked_add(token_left)
        .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(86_400 * 365));
    // One timer for the nearer of the idle and token deadlines (a `Sleep` is 112 bytes of
    // every session), armed once and moved only when it fires early: not one per frame.
    let deadline = sleep_until((last_seen + idle).min(token_deadline));
    tokio::pin!(deadline);
    // Keepalive: a WebSocket ping every heartbeat; every browser answers with a pong, so
    // a listen-only client stays alive, and a peer that answers nothing for two pings is
    // gone. A heartbeat of 0 turns it off.
    let heartbeat = Duration::from_millis(s.hub.config.heartbeat_ms);
    let keepalive = !heartbeat.is_zero();
    let period = heartbeat.max(Duration::from_millis(1));
    let mut pings = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    pings.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut unanswered = 0u32;
    // Everything to write, in order: a frame waits for its own commit and for those ahead.
    let mut pending: VecDeque<Outgoing> = VecDeque::new();
    loop {
        if w.write_ready(&mut pending).await.is_err() {
            return "connection lost";
        }
        if pending.is_empty() && pending.capacity() > 0 {
            // An idle session (most of them) holds no queue memory.
            pending = VecDeque::new();
        }
        let blocked = pending
            .front()
            .filter(|o| !o.durable.is_settled())
            .map(|o| o.durable.clone());
        let room = pending.len() < MAX_PENDING;
        let flow = tokio::select! {
            inbound = w.socket.recv(), if room => match inbound {
                None | Some(Ok(Message::Close(_))) => Flow::Quit("closed by client"),
                Some(Err(e)) => match read_error_ending(&e.to_string()) {
                    Some(ending) => {
                        tracing::info!(user = s.user.user_id, error = %e, "closing on a bad frame");
                        Flow::End(ending)
                    }
                    None => {
                        tracing::debug!(error = %e, "websocket read failed");
                        Flow::Quit("connection error")
                    }
                },
                Some(Ok(msg)) => {
                    last_seen = tokio::time::Instant::now();
                    // Anything from the peer shows it is there, a pong or not.
                    unanswered = 0;
                    // Boxed, like every cold path: the session future is held by every idle
                    // connection, so only what the loop needs all the time is inline in it.
                    let end = Box::pin(s.inbound(msg)).await;
                    // Taken, not drained: an idle session keeps no answer buffer.
                    pending.extend(std::mem::take(&mut s.out));
                    end.map_or(Flow::Go, Flow::End)
                }
            },
            out = rx.recv(), if room => match out {
                Some(first) => take_outbox(s, w, rx, &mut pending, first).await,
                // The hub dropped this session: it fell too far behind.
                None => Flow::End(Ending::new(4008, "too slow to keep up", None)),
            },
            _ = settled(blocked.clone()), if blocked.is_some() => Flow::Go,
            _ = pings.tick(), if keepalive => {
                if unanswered >= 2 {
                    LimitCounters::bump(&s.hub.counters.limits.pings_unanswered);
                    Flow::End(Ending::new(1001, "no answer to two pings", None))
                } else {
                    unanswered += 1;
                    match Box::pin(w.send_ping()).await {
                        Ok(()) => Flow::Go,
                        Err(Gone) => Flow::Quit("connection lost"),
                    }
                }
            }
            _ = &mut deadline => {
                let now = tokio::time::Instant::now();
                if now >= token_deadline {
                    Flow::End(Ending::new(
                        4001,
                        "token expired",
                        Some(error_frame(ErrorCode::Unauthorized, "token expired", None)),
                    ))
                } else if now >= last_seen + idle {
                    Flow::End(Ending::new(
                        1001,
                        "session timeout",
                        Some(disconnected("session timeout")),
                    ))
                } else {
                    deadline.as_mut().reset((last_seen + idle).min(token_deadline));
                    Flow::Go
                }
            }
        };
        match flow {
            Flow::Go => {}
            Flow::Quit(why) => return why,
            Flow::End(ending) => {
                // What was answered and queued goes out before the close.
                pending.extend(s.out.drain(..));
                if Box::pin(w.write_all(&mut pending)).await.is_err() {
                    return "connection lost";
                }
                let why = ending.reason;
                Box::pin(close(&mut w.socket, ending, s.hub.config.close_grace)).await;
                return why;
            }
        }
    }
}

/// Resolves once `durable` is settled (durable or failed).
async fn settled(durable: Option<Durability>) {
    if let Some(d) = durable {
        let _ = Box::pin(d.wait()).await;
    }
}

/// Take `first` and whatever else the outbox holds already (bounded), in order.
async fn take_outbox(
    s: &mut Session,
    w: &mut Writer,
    rx: &mut outbox::Receiver<Outbound>,
    pending: &mut VecDeque<Outgoing>,
    first: Outbound,
) -> Flow {
    let mut next = Some(first);
    let mut taken = 0;
    while let Some(item) = next.take() {
        match item {
            Outbound::Text(text) => pending.push_back(Outgoing::now(text)),
            // Its seq is not durable yet: a restart could hand it out again. If its commit
            // fails the frame stays in the replay log; the client sees the gap and resumes.
            Outbound::DurableText(durable_text) => {
                let (text, durable) = *durable_text;
                pending.push_back(Outgoing::after(text, durable, None));
            }
            Outbound::Announced(announced) => {
                let (text, durable, receipt) = *announced;
                let mut o = Outgoing::after(text, durable, None);
                o.receipt = Some(receipt);
                pending.push_back(o);
            }
            Outbound::Close(c) => return Flow::End(Ending::new(c.code, c.reason, c.notice)),
            Outbound::Drop => return Flow::Quit("dropped by fault injection"),
            Outbound::Throttle(d) => {
                s.throttled_until = Some(Instant::now() + d);
                s.send_rate_limited(d, None);
                pending.extend(s.out.drain(..));
            }
            Outbound::Delay(d) => {
                // Frames queued before the fault go out without it.
                if w.write_ready(pending).await.is_err() {
                    return Flow::Quit("connection lost");
                }
                w.delay = d;
            }
            Outbound::ClearFaults => {
                if w.write_ready(pending).await.is_err() {
                    return Flow::Quit("connection lost");
                }
                w.delay = Duration::ZERO;
                s.throttled_until = None;
            }
        }
        taken += 1;
        if taken >= BATCH_FRAMES || pending.len() >= MAX_PENDING {
            break;
        }
        next = rx.try_recv();
    }
    Flow::Go
}

impl Writer {
    /// Write the frames at the front of `pending` whose commits are settled, in batches of
    /// one flush each; stops at the first frame still waiting for its commit.
    async fn write_ready(&mut self, pending: &mut VecDeque<Outgoing>) -> Result<(), Gone> {
        loop {
            let mut bytes = 0;
            while self.batch.len() < BATCH_FRAMES && bytes < BATCH_BYTES {
                let Some(outcome) = pending.front().and_then(|o| o.durable.try_outcome()) else {
                    break;
                };
                let Some(o) = pending.pop_front() else {
                    break;
                };
                match outcome {
                    Ok(()) => {
                        bytes += o.text.len();
                        self.batch.push(o);
                    }
                    Err(e) => {
                        tracing::error!(user = self.user, error = %e, "frame held back: not stored");
                        // Its receipt (if any) settles unwritten as `o` drops.
                        if let Some(instead) = o.instead {
                            bytes += instead.len();
                            self.batch.push(Outgoing::now(instead));
                        }
                    }
                }
            }
            if self.batch.is_empty() {
                return Ok(());
            }
            let mut batch = std::mem::take(&mut self.batch);
            // Boxed: its timeout and socket futures would otherwise sit in every idle session's
            // future; one allocation per batch written.
            let written = Box::pin(self.write_batch(&batch)).await;
            if written.is_ok() {
                for o in batch.drain(..) {
                    if let Some(r) = o.receipt {
                        r.written();
                    }
                }
            }
            batch.clear();
            // Kept for the next batch of this backlog only: an idle session holds none.
            if !pending.is_empty() {
                self.batch = batch;
            }
            written?;
        }
    }

    /// Write everything in `pending`, waiting for each commit in turn (before a close).
    async fn write_all(&mut self, pending: &mut VecDeque<Outgoing>) -> Result<(), Gone> {
        while let Some(front) = pending.front() {
            let _ = Box::pin(front.durable.clone().wait()).await;
            self.write_ready(pending).await?;
        }
        Ok(())
    }

    /// Write `batch` in order and flush once, under one write timeout.
    async fn write_batch(&mut self, batch: &[Outgoing]) -> Result<(), Gone> {
        let counters = &self.hub.counters;
        for o in batch {
            Counters::bump(&counters.messages_out);
            counters.messages_out_by_type.bump(o.text.kind());
        }
        let write_timeout = self.hub.config.write_timeout;
        let written = if self.delay.is_zero() {
            let socket = &mut self.socket;
            let write = async {
                for o in batch {
                    socket.feed(Message::Text(o.text.to_utf8())).await?;
                }
                socket.flush().await
            };
            timeout(write_timeout, write).await
        } else {
            // Fault injection: each frame is delayed on its own, as it is to a slow network.
            let mut last = Ok(Ok(()));
            for o in batch {
                // Fault injection only: boxed, out of the session future.
                Box::pin(tokio::time::sleep(self.delay)).await;
                last = timeout(
                    write_timeout,
                    self.socket.send(Message::Text(o.text.to_utf8())),
                )
                .await;
                if !matches!(last, Ok(Ok(()))) {
                    break;
                }
            }
            last
        };
        match written {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Gone),
            Err(_) => {
                tracing::warn!(user = self.user, "write timed out: dropping session");
                Err(Gone)
            }
        }
    }

    /// A WebSocket ping control frame (keepalive).
    async fn send_ping(&mut self) -> Result<(), Gone> {
        let ping = self
            .socket
            .send(Message::Ping(axum::body::Bytes::from_static(b"pitchey")));
        match timeout(self.hub.config.write_timeout, ping).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(Gone),
        }
    }
}

impl Session {
    pub(crate) fn new(hub: Arc<Hub>, user: AuthUser, key: SessionKey, session_id: String) -> Self {
        let limiter = hub
            .config
            .rate_limit_enabled
            .then(|| RateLimiter::new(&hub.config.rate_limit, Instant::now()));
        let ping_budget = RateLimit {
            max_messages: hub.config.limits.ping_burst,
            window_ms: 1000,
            refill_rate: hub.config.limits.ping_rate,
        };
        let ping_limiter = hub
            .config
            .rate_limit_enabled
            .then(|| RateLimiter::new(&ping_budget, Instant::now()));
        Session {
            hub,
            user,
            key,
            session_id,
            limiter,
            ping_limiter,
            throttled_until: None,
            out: Vec::new(),
        }
    }

    fn send(&mut self, text: FrameText) {
        self.out.push(Outgoing::now(text));
    }

    fn send_msg(&mut self, msg: ServerMessage) {
        self.send(encode(msg));
    }

    fn seed_mode(&self) -> bool {
        self.hub.config.seed_compatible
    }

    async fn inbound(&mut self, msg: Message) -> Option<Ending> {
        match msg {
            Message::Text(text) => self.text(text.as_str()).await,
            Message::Binary(_) => {
                Counters::bump(&self.hub.counters.messages_in);
                self.hub.counters.messages_in_by_type.bump("binary");
                match self.rate_limit(None) {
                    Gate::Pass => {}
                    Gate::Refused => return None,
                    Gate::Close(end) => return Some(end),
                }
                Counters::bump(&self.hub.counters.invalid_messages);
                self.send(error_frame(
                    ErrorCode::InvalidMessage,
                    "binary frames are not supported: send JSON text frames",
                    None,
                ));
                None
            }
            // Protocol-level ping/pong: tungstenite answers pings itself; they count as activity,
            // and against the ping budget (each ping costs a pong).
            Message::Ping(_) | Message::Pong(_) => self.ping_budget(),
            Message::Close(_) => None,
        }
    }

    /// Take a token from the ping budget; a flood past it ends the session with 4008.
    fn ping_budget(&mut self) -> Option<Ending> {
        let limiter = self.ping_limiter.as_mut()?;
        limiter.try_take(Instant::now()).err()?;
        LimitCounters::bump(&self.hub.counters.limits.ping_floods);
        tracing::warn!(
            user = self.user.user_id,
            "closing a session that floods pings"
        );
        Some(Ending::new(4008, "ping flood", None))
    }

    /// Take a rate-limit token; on refusal answer `rate_limited`, and end the session when the
    /// client keeps sending regardless.
    fn rate_limit(&mut self, id: Option<&str>) -> Gate {
        let now = Instant::now();
        if let Some(until) = self.throttled_until {
            if now < until {
                Counters::bump(&self.hub.counters.rate_limited);
                self.send_rate_limited(until - now, id);
                return Gate::Refused;
            }
            self.throttled_until = None;
        }
        let Some(limiter) = self.limiter.as_mut() else {
            return Gate::Pass;
        };
        let Err(limited) = limiter.try_take(now) else {
            return Gate::Pass;
        };
        Counters::bump(&self.hub.counters.rate_limited);
        self.send_rate_limited(limited.retry_after, id);
        let close_after = self.hub.config.rate_limit_close_after;
        if close_after > 0 && limited.refused_in_a_row >= close_after {
            tracing::warn!(
                user = self.user.user_id,
                "closing a session that ignores the rate limit"
            );
            return Gate::Close(Ending::new(4008, "rate limit exceeded", None));
        }
        Gate::Refused
    }

    fn send_rate_limited(&mut self, retry: Duration, id: Option<&str>) {
        let limit = self.hub.config.rate_limit;
        let retry_ms = u64::try_from(retry.as_millis()).unwrap_or(u64::MAX);
        self.send_msg(ServerMessage::Error(ErrorData {
            code: ErrorCode::RateLimited,
            message: format!(
                "{} messages per {} s",
                limit.max_messages,
                limit.window_ms / 1000
            ),
            // retryAfterMs is one of our additions: the seed's error has no such field.
            retry_after_ms: (!self.seed_mode()).then_some(retry_ms.max(1)),
            id: id.map(str::to_owned),
        }));
    }

    /// One text frame from the client.
    pub(crate) async fn text(&mut self, text: &str) -> Option<Ending> {
        let counters = &self.hub.counters;
        Counters::bump(&counters.messages_in);
        if text.len() > self.hub.config.max_frame_bytes {
            // Only reachable when tungstenite's own limit is set higher than ours.
            self.send(error_frame(
                ErrorCode::TooLarge,
                "frame over the size limit",
                None,
            ));
            return Some(Ending::new(4009, "message too large", None));
        }
        let raw = serde_json::from_str::<RawFrame<'_>>(text);
        let (is_ping, id) = match &raw {
            Ok(r) => (r.kind == "ping", r.id.clone()),
            Err(_) => (false, None),
        };
        // Parsed before the rate limit so that refused messages count under their type too.
        let frame = match raw {
            Err(e) => Err(format!(
                "malformed frame: {}",
                strip_position(&e.to_string())
            )),
            Ok(raw) => {
                let kind = raw.kind.clone();
                ClientFrame::from_raw(raw)
                    .map(|f| {
                        // Only a type the protocol knows becomes a label: the client picks it.
                        let known = !matches!(f.message, ClientMessage::Unknown { .. });
                        counters
                            .messages_in_by_type
                            .bump(if known { &kind } else { "unknown" });
                        f
                    })
                    .map_err(|e| e.to_string())
            }
        };
        if frame.is_err() {
            counters.messages_in_by_type.bump("invalid");
        }
        // Every message but `ping` counts, malformed ones included; pings have their own budget.
        if is_ping {
            if let Some(end) = self.ping_budget() {
                return Some(end);
            }
        } else {
            match self.rate_limit(id.as_deref()) {
                Gate::Pass => {}
                Gate::Refused => return None,
                Gate::Close(end) => return Some(end),
            }
        }
        let max_id = self.hub.config.limits.max_id_bytes;
        if let Some(long) = id.as_deref().filter(|i| i.len() > max_id) {
            // Refused before anything remembers it: ids are kept per user for de-duplication.
            LimitCounters::bump(&self.hub.counters.limits.ids_too_long);
            Counters::bump(&self.hub.counters.invalid_messages);
            self.send(error_frame(
                ErrorCode::InvalidMessage,
                format!("message id longer than {max_id} bytes"),
                Some(long.to_owned()),
            ));
            return None;
        }
        match frame {
            Ok(frame) => self.dispatch(frame).await,
            Err(message) => {
                Counters::bump(&self.hub.counters.invalid_messages);
                self.send(error_frame(ErrorCode::InvalidMessage, message, id));
                None
            }
        }
    }

    fn ack(&mut self, id: Option<String>, applied: Applied) {
        match id {
            Some(id) if !self.seed_mode() => {
                self.hub.remember(self.user.user_id, &id, applied);
                self.send_msg(ServerMessage::Ack(Ack {
                    id,
                    version: applied.version,
                }));
            }
            _ => {}
        }
    }

    async fn dispatch(&mut self, frame: ClientFrame) -> Option<Ending> {
        let id = frame.id;
        let uid = self.user.user_id;
        let seed = self.seed_mode();
        let none = Applied { version: None };
        let is_heartbeat = matches!(
            frame.message,
            ClientMessage::Ping(_) | ClientMessage::Pong(_)
        );
        // A repeated id is acked again with the same answer, and not applied twice.
        let repeated = match (&id, seed, is_heartbeat) {
            (Some(id), false, false) => self.hub.seen(uid, id).map(|a| (id.clone(), a)),
            _ => None,
        };
        if let Some((id, applied)) = repeated {
            // The first ack may still wait for its commit (in another session): this one
            // waits for everything stored so far.
            let ack = encode(ServerMessage::Ack(Ack {
                id,
                version: applied.version,
            }));
            self.out
                .push(Outgoing::after(ack, self.hub.durable(), None));
            return None;
        }
        match frame.message {
            ClientMessage::Ping(hb) => {
                self.send_msg(ServerMessage::Pong(hb));
                self.ack(id, none);
            }
            ClientMessage::Pong(_) => self.ack(id, none),
            ClientMessage::PitchView(v) => {
                self.hub.pitch_view(uid, v.pitch_id);
                self.ack(id, none);
            }
            ClientMessage::SetPresence(p) => {
                self.hub.set_presence(uid, p.status);
                self.ack(id, none);
            }
            ClientMessage::Typing(t) => {
                self.hub.typing(uid, t);
                self.ack(id, none);
            }
            ClientMessage::DraftSync(save) => self.draft_sync(id, save).await,
            ClientMessage::Subscribe(c) if !seed => match self.hub.subscribe(self.key, c.channel) {
                Ok(initial) => {
                    self.ack(id, none);
                    if let Some(frame) = initial {
                        self.send(frame);
                    }
                }
                Err(TooManySubscriptions) => {
                    LimitCounters::bump(&self.hub.counters.limits.subscriptions_refused);
                    let max = self.hub.config.limits.max_subscriptions;
                    self.send(error_frame(
                        limit_exceeded(),
                        format!("at most {max} subscriptions per connection"),
                        id,
                    ));
                }
            },
            ClientMessage::Unsubscribe(c) if !seed => {
                self.hub.unsubscribe(self.key, &c.channel);
                self.ack(id, none);
            }
            ClientMessage::Resume(r) if !seed => {
                // Answered like the connect-time resume: a `connected` saying whether it was
                // honoured in full, then the missed frames, then the ack.
                let replay = self.hub.resume(self.key, r.last_seq);
                if let Some(gap) = &replay.gap {
                    tracing::info!(user = uid, "{gap}");
                }
                let connected =
                    self.hub
                        .connected_frame(&self.session_id, uid, replay.gap.is_none(), None);
                self.send(connected);
                // Logged frames may be younger than the last commit (see `run`).
                let durable = self.hub.durable();
                for frame in replay.frames {
                    self.out.push(Outgoing::after(frame, durable.clone(), None));
                }
                self.ack(id, none);
            }
            other => {
                // Unknown types, and in seed-compatible mode the additions the seed lacks.
                let kind = match &other {
                    ClientMessage::Unknown { kind, .. } => kind.clone(),
                    ClientMessage::Subscribe(_) => "subscribe".into(),
                    ClientMessage::Unsubscribe(_) => "unsubscribe".into(),
                    ClientMessage::Resume(_) => "resume".into(),
                    _ => "?".into(),
                };
                Counters::bump(&self.hub.counters.invalid_messages);
                self.send(error_frame(
                    ErrorCode::UnknownType,
                    format!("unknown message type `{kind}`"),
                    id,
                ));
            }
        }
        None
    }

    async fn draft_sync(&mut self, id: Option<String>, save: DraftSave) {
        // Through Redis when it is up (one decision for all instances), else here alone.
        let shared = self
            .hub
            .draft_sync_shared(
                self.key,
                &self.session_id,
                self.user.user_id,
                &save,
                id.as_deref(),
            )
            .await;
        let (outcome, durable) = match shared {
            Some(outcome) => (outcome, Durability::default()),
            None => {
                let (outcome, durable) = self.hub.draft_sync(
                    self.key,
                    &self.session_id,
                    self.user.user_id,
                    save,
                    id.as_deref(),
                );
                (Ok(outcome), durable)
            }
        };
        match outcome {
            // The hub stored the id with the draft in one commit: ack without remembering,
            // once that commit is durable. The session reads on meanwhile; the ack and what
            // follows it wait in order. Not stored: not acked; the client sends it again.
            Ok(DraftOutcome::Accepted { version }) => match id {
                Some(id) if !self.seed_mode() => {
                    let not_stored = error_frame(
                        ErrorCode::Internal,
                        "the draft could not be stored; send it again",
                        Some(id.clone()),
                    );
                    let ack = encode(ServerMessage::Ack(Ack {
                        id,
                        version: Some(version),
                    }));
                    self.out
                        .push(Outgoing::after(ack, durable, Some(not_stored)));
                }
                _ => {}
            },
            Err(e) => {
                // Not stored, so not acked: the client keeps the save and sends it again.
                tracing::error!(user = self.user.user_id, error = %e, "draft_sync not stored");
                self.send(error_frame(
                    ErrorCode::Internal,
                    "the draft could not be stored; send it again",
                    id,
                ));
            }
            Ok(DraftOutcome::LimitExceeded) => {
                LimitCounters::bump(&self.hub.counters.limits.drafts_refused);
                let max = self.hub.config.limits.max_drafts_per_user;
                self.send(error_frame(
                    limit_exceeded(),
                    format!("at most {max} drafts per user: this save would create one more"),
                    id,
                ));
            }
            Ok(DraftOutcome::Conflict(conflict)) => {
                // The conflict answers the message: it carries the message's id, and no ack.
                let mut frame = ServerFrame::new(ServerMessage::DraftConflict(conflict));
                if let Some(id) = id {
                    frame = frame.with_id(id);
                }
                self.send(frame.encode().into());
            }
        }
    }
}

/// The close for a read error, by tungstenite's error text (axum hides the error type):
/// 1009 for a frame over the size limit, 1007 for text that is not UTF-8, 1002 for any other
/// protocol violation (an unmasked client frame, reserved bits, ...). `None` when the
/// connection itself is gone (I/O error, reset): there is no one to send a close frame to.
fn read_error_ending(error: &str) -> Option<Ending> {
    if error.contains("Space limit") || error.contains("too long") {
        Some(Ending::new(1009, "message too big", None))
    } else if error.contains("UTF-8") {
        Some(Ending::new(1007, "text frame is not valid UTF-8", None))
    } else if error.contains("reset without closing handshake") {
        None
    } else if error.contains("protocol error") {
        Some(Ending::new(1002, "websocket protocol error", None))
    } else {
        None
    }
}

/// serde_json appends "at line 1 column 17": noise for a client.
fn strip_position(s: &str) -> String {
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_owned(),
        None => s.to_owned(),
    }
}

/// Send `notice`, then a close frame, then wait for the client's close frame; all within
/// `grace`, however the client behaves.
async fn close(socket: &mut WebSocket, ending: Ending, grace: Duration) {
    let _ = timeout(grace, close_handshake(socket, ending)).await;
}

async fn close_handshake(socket: &mut WebSocket, ending: Ending) {
    if let Some(notice) = ending.notice {
        let _ = socket.send(Message::Text(notice.to_utf8())).await;
    }
    let frame = CloseFrame {
        code: ending.code,
        reason: ending.reason.into(),
    };
    if socket.send(Message::Close(Some(frame))).await.is_err() {
        return;
    }
    // Drain until the client answers the close (or the connection ends).
    while let Some(Ok(msg)) = socket.recv().await {
        if matches!(msg, Message::Close(_)) {
            break;
        }
    }
}
