//! The sans-IO client core: a state machine with no sockets, clocks, threads or tokio.
//!
//! In the style of `quinn-proto` and rustls' unbuffered API. The driver (tokio, browser,
//! tests) owns the socket and the clock; the core owns every decision:
//!
//! - **inputs**: [`Connection::handle`] with the [`AttemptId`] of the socket and an
//!   [`Input`] (opened, text frame, writes confirmed, closed with a code, upgrade refused
//!   with an HTTP status, failed), [`Connection::handle_timeout`] when the time from
//!   [`Connection::poll_timeout`] has come, and app calls ([`Connection::send`],
//!   [`Connection::subscribe`], drafts, [`Connection::connect`], ...). Each takes `now`.
//! - **outputs**: [`Action`]s for the driver (connect to a URL, send a text frame, close),
//!   [`Event`]s for the app, and the next wake-up time.
//!
//! Time is the core's own [`Instant`]; randomness (backoff jitter, id prefix) comes from
//! an RNG seeded with the driver's entropy ([`Connection::new`]), the same generator on
//! every target, so a run with a fixed seed replays exactly and tests use virtual time.
//! The core never reads a clock (not even `SystemTime`, which panics on `wasm32`): the
//! driver passes `now` and, for the epoch milliseconds pings carry,
//! [`Connection::set_wall_clock`].
//!
//! # Driving it
//!
//! ```no_run
//! use pitchey_realtime::core::{Action, AttemptId, Config, Connection, Event, Input, Instant};
//! # fn now() -> Instant { Instant::ZERO }
//! # fn entropy() -> u64 { 4 }
//! # enum Io { Timer, Socket(AttemptId, Input), App }
//! # fn wait_for_socket_or_app_or(_deadline: Option<Instant>) -> Io { Io::Timer }
//! let config = Config::new("wss://example/ws").with_token("jwt");
//! let mut conn = Connection::new(config, entropy(), now());
//! conn.connect(now()).expect("a ws:// or wss:// URL");
//! loop {
//!     // 1. Do what the core asks, in order.
//!     while let Some(action) = conn.poll_action() {
//!         match action {
//!             Action::Connect { attempt, url, .. } => { /* drop any old socket; open `url` */ }
//!             Action::Send(text) => { /* write; then report Input::Written(1) */ }
//!             Action::Close { attempt, code, reason } => { /* close that attempt's socket */ }
//!             _ => {}
//!         }
//!     }
//!     // 2. Hand events to the app.
//!     while let Some(event) = conn.poll_event() {
//!         if let Event::TokenNeeded = event { /* ask the token provider, then set_token */ }
//!     }
//!     // 3. Sleep until the socket, the app or the core's timer wakes us.
//!     match wait_for_socket_or_app_or(conn.poll_timeout()) {
//!         Io::Timer => conn.handle_timeout(now()),
//!         // Every input names the attempt of its socket; the core ignores old ones.
//!         Io::Socket(attempt, input) => conn.handle(attempt, input, now()),
//!         Io::App => { /* conn.send(..), conn.subscribe(..), conn.draft_update(..) */ }
//!     }
//! }
//! ```
//!
//! Rules for drivers: process actions in order; name the attempt on every input (late
//! inputs of old sockets are harmless: the core ignores them); confirm writes with
//! [`Input::Written`]; call `handle_timeout` when `poll_timeout`'s instant has passed
//! (calling it early or often is harmless, and so is a clock that jumped forward).
//! The async [`client`](crate::client) is such a driver, written once for every runtime.
//!
//! # What it guarantees
//!
//! - **Lifecycle** ([`State`]): reconnects with exponential backoff and full jitter
//!   (first retry immediate, then up to 500 ms, doubling to 30 s; reset after a connection
//!   that stayed up 10 s). Close 4001 (or HTTP 401) emits [`Event::TokenNeeded`] and waits
//!   for [`Connection::set_token`]; no token in time means [`State::AuthFailed`] and no
//!   retries. Where the transport cannot see statuses (browsers), attempts that keep
//!   closing before `connected` make the core ask for a fresh token
//!   ([`Config::suspect_token_after`]) while it goes on retrying (the server may just be
//!   down); a fresh token that fails the same way ends in `AuthFailed` with the server's
//!   last words. Close 4003 is final ([`State::Closed`]);
//!   4008 waits at least 2 s; 4009 drops the frame the server refused
//!   ([`SendFailure::RefusedTooLarge`]). `disconnect` is final until `connect`.
//! - **Heartbeat**: `ping` every `heartbeatMs` (the server's, default 30 s); no frame within
//!   [`Config::heartbeat_timeout`] after a ping closes the link and reconnects. RTT is measured.
//! - **Outbox**: durable messages (`draft_sync`, `pitch_view`, unknown types) get a client
//!   id, keep their order, stay until acked, and are re-sent after a reconnect (the server
//!   de-duplicates by id). Ephemeral ones (`typing` per conversation, `presence_update`) are
//!   coalesced to the latest per key, written once, and dropped when stale. A full outbox
//!   is an error plus [`Event::QueueFull`], never a silent drop. Without the server's `ack`
//!   feature a durable message is done once the transport confirmed its write; frames
//!   not confirmed go out again, in order, on the next socket. A message may carry an
//!   expiry ([`Connection::send_with_expiry`]). [`Connection::export`] /
//!   [`Connection::restore`] carry the outbox (with its ids) and the last `seq` across a
//!   page reload or a killed app; [`Connection::close_gracefully`] flushes before closing.
//! - **Rate limit**: a token bucket mirrors the server's (`rateLimit` from `connected`,
//!   default 120 burst, 2/s refill), counting every frame but `ping`, exactly as the server
//!   does; messages wait in the outbox rather than trip the server. A `rate_limited` error
//!   pauses sending for `retryAfterMs` and re-sends the rejected message, in its place
//!   and without counting an attempt.
//! - **Subscriptions**: re-sent after every reconnect (servers with `subscribe`);
//!   [`Event::SubscriptionActive`] when confirmed, [`Event::SubscriptionFailed`] (and never
//!   asked again) when the server refuses one; `resume`
//!   from the last `seq` (servers with `resume`); duplicates (`seq` already seen) dropped;
//!   [`Event::ContinuityLost`] when messages may have been missed.
//! - **Drafts**: per-draft base version, auto-save when dirty and valid, conflict
//!   strategies local / remote / merge / ask ([`ConflictStrategy`]).
//!
//! # Changes from the design sketch
//!
//! - State [`State::AwaitingToken`] was added (waiting for the app's token provider).
//! - [`Connection::draft_update`] takes `valid: bool`: the driver runs the app's validator
//!   (a JS or FFI callback cannot live in a portable `Send` core).
//! - [`Connection::token_unavailable`] lets the app say "no token" at once instead of
//!   waiting for [`Config::token_timeout`].
//! - [`Connection::draft_remote`] feeds a draft the app refetched over HTTP (after
//!   [`Event::ContinuityLost`]) through the same path as a `draft_sync` from the server.
//!
//! # Limits found by the simulation (and what was done)
//!
//! - **Rate mirror and latency.** The server takes a token when a frame arrives, the client
//!   when it sends; while the server's bucket sits full and frames travel, the server loses
//!   refill the client counted, so an exact mirror can run ahead by `refill_rate x latency`.
//!   The mirror keeps that many tokens in reserve
//!   ([`Config::rate_limit_latency_allowance`], 1 s = 2 of 120 tokens by default). Beyond
//!   that latency, a `rate_limited` error is handled as below.
//! - **Order and server-side rate rejections.** Durable messages are written in order and
//!   the server applies them in order, except when the server rejects one with
//!   `rate_limited` and accepts a later one already in flight (its limit lifted in
//!   between): the rejected one is re-sent after the pause and lands later, by at most
//!   [`Config::in_flight_window`] places. With the mirror above this needs a server whose
//!   limit differs from what it announced.
//! - **Continuity.** `ContinuityLost` is emitted on a reconnect to a server without
//!   `resume`, or with nothing received to resume from; when a `resume` is refused (an
//!   `error` carrying its id, or a second `connected` with `resumed: false`); when the
//!   server's `seq` starts over; and, on servers without `resume`, when a `seq` gap stays
//!   open for [`Config::seq_gap_timeout`]. With `resume`, a gap that stays open is checked
//!   with a `resume` instead: the reference server skips the `seq` of the echo of a
//!   session's own draft save, so gaps are normal there, and the ack of the `resume` (after
//!   the replay) settles what the replay did not fill. A socket that reached the server but
//!   failed before its `connected` counts as a connection (the server may have sent its
//!   offline queue into it).
//!
//! # What the server is expected to do (pitchey-v1 additions)
//!
//! As the reference server (`pitchey-mock-server`) does:
//! - Ack a repeated `id` again without applying it twice; for a `draft_sync` the repeated
//!   ack carries the version *that save* produced, not the draft's current version.
//! - Answer `resume {lastSeq}` with an `error` carrying the resume's `id` when it cannot
//!   replay everything, then the frames this session has not had, then the ack.
//! - Put the `id` of a message on the `error` about it (and on a `draft_conflict`).
//!
//! The core gives `subscribe`, `unsubscribe` and `resume` ids too, so that a `rate_limited`
//! error can name the frame to write again.

mod backoff;
mod config;
mod connection;
mod drafts;
mod endpoint;
#[doc(hidden)]
pub use endpoint::by_url_crate as endpoint_by_url_crate;
mod error;
mod event;
mod frame_text;
mod heartbeat;
pub mod merge;
mod metrics;
mod outbox;
mod rate_limit;
mod resume;
mod snapshot;
mod sorted_map;
mod state;
mod subscriptions;
pub(crate) mod text;
pub(crate) mod time;

pub use config::{BackoffConfig, Config, ConflictStrategy, DraftOptions};
pub use connection::Connection;
pub use drafts::{DraftConflictInfo, DraftState};
pub use error::{ConfigError, SendError};
pub use event::{Action, AttemptId, Event, Input, MessageId, Resolution, SendFailure};
pub use frame_text::FrameText;
pub use metrics::Metrics;
pub use outbox::is_durable;
pub use snapshot::{SavedMessage, Snapshot, SnapshotError};
pub use state::State;
pub use time::Instant;
