//! # pitchey-mock-server
//!
//! The reference server for Pitchey's real-time protocol `pitchey-v1` (see `docs/PROTOCOL.md`):
//! what a frontend developer runs instead of the real backend, and the peer every client of ours
//! is tested against. One process, in-memory state, zero setup; `--data-dir` keeps what it promised
//! across restarts.
//!
//! ```no_run
//! # async fn demo() -> Result<(), pitchey_mock_server::ServerError> {
//! use pitchey_mock_server::{ServerConfig, start};
//! let server = start(ServerConfig::for_tests()).await?;
//! let url = format!("{}?token={}", server.ws_url(), server.token(7));
//! // ... connect a client to `url` ...
//! server.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! ## Endpoints
//! | route | auth | does |
//! | --- | --- | --- |
//! | `GET /ws` | token in `?token=` or `Authorization: Bearer` | WebSocket, subprotocol `pitchey-v1`; 401 before the upgrade on a missing, malformed, wrongly signed, non-HS256 (`alg: none`) or expired token. `?lastSeq=N` resumes at connect time. |
//! | `GET /api/ws/health` | none | `{status, protocol, connections, uptimeSecs, seedCompatible}` |
//! | `GET /metrics` | admin (none with `public_metrics`) | the same numbers as Prometheus text (`pitchey_ws_*`; per type as labels: `pitchey_ws_messages_in_by_type_total{type}`, `..._out_by_type_total{type}`; no series per user: `pitchey_ws_max_user_sessions`, `pitchey_ws_offline_queue_users`; `pitchey_ws_limit_refusals_total{limit}`; `pitchey_ws_store_*`, `pitchey_ws_redis_enabled`, `pitchey_ws_redis_up`) |
//! | `GET /api/ws/stats` | admin | connections, users, `sessionsPerUser`, messages in/out in total and by type (`messagesInByType`, `messagesOutByType`; inbound types the protocol does not know count as `unknown`, unparsable frames as `invalid`, binary ones as `binary`), rate-limit hits, invalid messages, auth failures, offline queue depth in total and per user (`offlineQueueDepths`) and drops, `outboxQueued` (frames not yet written to sessions), `store {kind, commits, commitMicros, commitFailures}`, `redis` (`disabled`, `up`, `down`) |
//! | `POST /api/ws/notify` | any token (type `system`: admin; user tokens `notify_per_minute`, then 429 with `Retry-After`) | `{userId, notification: {type, title, message, data}}`: a `notification` live, or queued for an offline user |
//! | `GET /api/ws/presence/{userId}` | any token | `{userId, status, lastSeen}` (never seen: `offline`, no `lastSeen`) |
//! | `GET /api/ws/following-online` | any token | `{userId, count, users: [presence...]}`: whom the caller follows that is online or away |
//! | `POST /api/ws/upload-progress` | any token | the `upload_progress` data; sent to the caller (an admin may add `userId`) |
//! | `POST /api/ws/announce` | admin (401 / 403) | `{title, message}`: a `system` notification to every connected user (encoded once, numbered per user); answered once every session has written the previous announcement (at most two queued per session; bounded by the write timeout): `{users, sessions, delivered, paced}` (through Redis: `{users}` at once) |
//! | `POST /api/ws/follow` | any token | `{userId, followerId?}`: the caller (or, for an admin, `followerId`) follows `userId`; the followee gets a `follow` notification and a `dashboard_update` |
//! | `POST /api/ws/pitches` | admin | `{pitchId, ownerId, views?}`: who owns a pitch (their dashboard counts its views) |
//! | `GET /api/ws/dashboard` | any token | the caller's `{metrics}` |
//! | `POST /api/ws/faults/{fault}` | admin | fault injection, body `{userId?, ms?}` (all sessions without `userId`; `ms` defaults to 1000): `drop` ends connections without a close frame; `rate-limit` sends `rate_limited` and refuses every message for `ms`; `delay` delays every frame by `ms` (0: off); `expire-token` refuses the user's tokens issued up to now (`iat`) and closes their sessions with 4001; `refuse-connects` answers upgrades with 503 for `ms` |
//! | `GET` / `DELETE /api/ws/faults` | admin | the faults in force / end them all |
//! | `POST /api/dev/token` | none; only with `dev_tokens` (`--demo`) and the demo secret; `ttlSecs` 1..=604800 | `{userId, admin?, username?, ttlSecs?}` gives `{token}` |
//!
//! Errors are JSON `{error, message}` with 400 / 401 / 403 / 413 / 429 / 503. Every limit on
//! what a client can make the server hold or wait for is in [`limits`] (flags of the binary,
//! refusals counted under `limits` in the stats). The `/api/ws/*` rows above
//! `follow` are the seed's; `follow`, `pitches`, `dashboard`, `faults`, `dev/token` and `/metrics` are ours.
//!
//! ## Messages
//! - **`connected`** first: `sessionId`, `userId`, `protocol`, `heartbeatMs`, and (additions)
//!   `rateLimit`, `features` (`ack`, `seq`, `resume`, `subscribe`, `draft_conflict`), `resumed`.
//!   Then the frames queued while the user was offline (oldest first; at most
//!   `offline_queue_cap`, older ones dropped and counted in stats).
//! - **`ping`** gets `pong` with the same `ts`. Any frame (also WebSocket-level pings) counts as
//!   activity; a session silent for `WS_SESSION_TIMEOUT` gets `disconnected` and close 1001. The
//!   server sends a WebSocket ping every `heartbeat_ms` (which browsers answer) and closes a
//!   peer that answers none of two with 1001. Pings have their own budget (`ping_burst`,
//!   `ping_rate`): a flood closes with 4008.
//! - **Rate limit**: a token bucket per connection; every message but `ping` takes a token
//!   (malformed and binary frames too). Refused: `error {code: rate_limited, retryAfterMs, id}`
//!   and the message is dropped; `rate_limit_close_after` refusals in a row close with 4008.
//! - **Bad input**: malformed JSON, a wrong shape or field type: `error invalid_message` (with
//!   the message's `id` when it could be read); unknown `type`: `error unknown_type`; binary
//!   frames: `error invalid_message`. The connection stays open. A frame over `max_frame_bytes`
//!   (64 KiB) is refused by the WebSocket layer: close 1009; a protocol violation closes with
//!   1002, text that is not UTF-8 with 1007, a bug in the session with 1011.
//! - **`pitch_view {pitchId}`**: `pitch_stats_update {pitchId, viewCount, uniqueViewers,
//!   recentViewers}` to subscribers of `pitch:{id}` (to every session in seed-compatible mode).
//!   The owner gets a `dashboard_update`, not the stats (subscribe for those).
//! - **`presence_update {status}`**: `presence_update {userId, status, lastSeen}` to the
//!   user's followers and to subscribers of `presence:{userId}`. Connecting (first session) is
//!   `online`, losing the last session `offline`.
//! - **`typing` / `user_typing {conversationId, isTyping}`**: `user_typing` (with `userId`,
//!   `username`) to subscribers of `conversation:{id}`; there is no membership list, so in
//!   seed-compatible mode it goes to every other connected user and clients filter by
//!   `conversationId`. Never back to the typist.
//! - **`draft_sync {draftId, draftType?, content, baseVersion?}`**: per user and draft. When
//!   `baseVersion` is the current version (0 for a new draft) or absent (seed clients: last
//!   write wins) it is stored as version+1, acked `{id, version}`, and the user's *other*
//!   connected sessions get `draft_sync {.., version, updatedAt, sessionId}` (not numbered,
//!   not queued: a session that was away learns of a newer version through `draft_conflict`
//!   on its next save). Otherwise
//!   `draft_conflict {draftId, baseVersion, serverVersion, serverContent}` carrying the
//!   message's `id` in the envelope (and no ack). Users never see each other's drafts.
//! - **`subscribe` / `unsubscribe {channel}`** (addition): `pitch:N` and `presence:N` answer with
//!   the current state right after the ack. A user's own notifications, dashboard, uploads and
//!   drafts need no subscription.
//! - **Acks** (addition): every client message with an `id` that was applied gets
//!   `ack {id}`; errors carry the `id` in `error.data.id` instead. An `id` seen again within
//!   `dedup_window_ms` (per user, across sessions) is acked again with the same answer and not
//!   applied twice.
//! - **`seq` and `resume`** (additions): durable server messages (`notification`,
//!   `dashboard_update`, `upload_progress`) carry a per-user `seq` (1, 2, 3, ...), go to
//!   *every* session of the user (so a session connected throughout sees no gaps) and to a
//!   bounded replay log (`replay_log_cap`); an offline user's are queued. Everything else
//!   (`presence_update`, `user_typing`, `pitch_stats_update`, `draft_sync` to other sessions,
//!   `ack`, `error`, ...) has no `seq`. `resume {lastSeq}` is answered with a second
//!   `connected` frame (same `sessionId`) whose `resumed` is `true` when everything after
//!   `lastSeq` is still kept and `false` when some of it is gone (or `lastSeq` is ahead of the
//!   server's counter, e.g. after a restart without `--data-dir`): continuity is lost, refetch.
//!   Then come the logged frames after `lastSeq` that this session has not had (from before it
//!   connected and not in its offline queue), with their original `seq`, then the `ack`.
//!   `?lastSeq=N` on the upgrade URL does the same at connect time: `connected.resumed` says
//!   whether it was honoured in full, and the missed frames follow the offline queue. A
//!   server restarted without state counts from 1 again.
//! - **Announcements**: `notification` of type `system` to every connected user.
//! - **Shutdown** (SIGINT/SIGTERM, [`RunningServer::shutdown`]): `disconnected {reason}` then
//!   close 1001 to every session; new connections get 503.
//! - **Token expiry** during a session: `error unauthorized`, close 4001.
//! - **Seed-compatible mode** turns every addition off: empty `features`, no `rateLimit` or
//!   `resumed` in `connected`, no `ack`, no `seq`, no `retryAfterMs`; `subscribe`,
//!   `unsubscribe` and `resume` get `error unknown_type`; drafts are last-write-wins.
//!
//! ## Persistence (`--data-dir`, `WS_DATA_DIR`)
//! Without it, state is in memory ([`store::MemoryStore`]). With it, [`persist::DiskStore`]
//! keeps per-user seq counters, replay logs, offline queues, drafts with their versions, the
//! de-dup ids with their answers and the notification counter in `DIR/pitchey.redb`.
//! - **Durable before promised.** Every write is also a pending record change; the hub
//!   commits them (one transaction, synced to disk) before it sends the ack of a
//!   `draft_sync` (draft and de-dup id in the same transaction), answers an HTTP request that
//!   queued or sent a durable frame, or lets a frame with a new `seq` out (so a seq a client
//!   has seen is never handed out again after a crash). A failed commit acks nothing: the
//!   client gets `error internal` (with the message's `id`) or HTTP 500 and sends again.
//! - **What is written lazily**: de-dup ids of messages with no durable effect (pings,
//!   typing, presence, views, subscriptions) and the removal of frames taken from an offline
//!   queue ride along with the next commit; after a crash the latter are delivered once more
//!   with their original seqs, which clients drop as already seen.
//! - **After a crash** (SIGKILL), the next start on the same directory has every acked draft
//!   version and queued notification, and resumes (`resume`, `?lastSeq=`) from the replay log
//!   with `resumed: true`; seqs go on from where they were. `tests/persistence.rs` checks it
//!   under load and prints the figures.
//! - **A store that cannot be read** (corrupt, not a redb file, unreadable, or open in another
//!   process) stops the start with an error naming the file and a non-zero exit; never an
//!   empty state.
//! - **Cost**: group commit. The hub hands each message's writes to the store's writer
//!   thread under its lock (no I/O there) and waits for them outside it; the writer commits
//!   everything that arrived while it was busy in one redb transaction, one `fdatasync`
//!   ([`group_commit`]). An ack, an HTTP answer or a frame with a new `seq` leaves only once
//!   its group is durable. The commit count and time are in `/api/ws/stats` (`store`) and
//!   `/metrics`. Before group commit, on the project's 2-core VM (a 4 KiB `dd oflag=dsync`
//!   write takes 0.2 ms), `examples/durable_bench` (release) measured 10 clients pipelining
//!   `draft_sync`: 85 k acks/s in memory, 4.8 k/s with redb (one commit and sync per message,
//!   under the hub's lock); at 1,000 clients, 94.6 k/s in memory and 2.3 k/s with redb
//!   before, 104.7 k/s and 27.1 k/s with group commit (README). A session keeps reading while
//!   its earlier acks wait for their group (at most 256 frames pending, written in order), so
//!   a client's pipelined messages share groups: 72-82 k/s with redb, 93-100 % of memory.
//!
//! ## Tokens and the secret
//! HS256 with `JWT_SECRET`; `exp` after year 9999 is refused. When it is unset the binary
//! generates a secret for the run and warns, and the banner prints a user token; with `--demo`
//! it instead uses the public [`config::DEMO_JWT_SECRET`] so that `pitchey-mock-server token
//! --user 7` (which uses the same fallback) matches, prints an admin token too, and serves
//! `POST /api/dev/token`. With an operator's `JWT_SECRET` the banner prints no token and
//! `/api/dev/token` does not exist, `--demo` or not.
//!
//! ## Several instances through Redis (`--redis-url`, `REDIS_URL`)
//! Instances that share a Redis (and a `JWT_SECRET`) behave as one server to clients behind a
//! load balancer: notifications, upload progress, dashboard updates, presence, typing, pitch
//! view stats, draft broadcasts and announcements made on one instance reach sessions on all.
//! - **Delivered on receipt, exactly once.** An instance does not deliver a cross-instance event
//!   itself: it publishes it on the Pub/Sub channel [`redis_link::CHANNEL`] and every instance,
//!   itself included, delivers what its one subscription receives to its own sessions. A
//!   session lives on one instance and Redis hands each publication once to each subscriber,
//!   so each session gets it once; and every instance sees publications in the same order, so
//!   the seqs of a user's durable frames arrive in order everywhere. (Delivering locally and
//!   skipping one's own publication by an instance id would also be exactly once, but the
//!   local copy could overtake a remote one and break seq order for a user on two instances.)
//! - **Shared state lives in Redis**, changed by Lua scripts atomically with the publication
//!   that announces it: `pitchey:presence:{user}` (status, lastSeen) and
//!   `pitchey:online:{user}` (instances with a session of the user: a user goes offline only
//!   when the last instance loses them), `pitchey:following:{user}` / `followers:`,
//!   `pitchey:pitch:{id}` (views, unique viewers, recent viewers), `pitchey:seq:{user}` and
//!   `pitchey:queue:{user}`, drafts and de-dup keys (below). `GET /api/ws/presence/{id}` and `/api/ws/following-online` are
//!   answered from Redis (from this instance's book while Redis is away).
//! - **`seq` across instances.** A durable frame is numbered by `INCR pitchey:seq:{user}` in
//!   the same script that publishes it, never below the publishing instance's own last seq
//!   plus one (so a Redis restarted empty does not count from 1 again). Every instance logs
//!   every user's durable frames, so `resume` works on any instance for frames published
//!   while it was subscribed. A user offline on every instance gets the frame in the Redis
//!   offline queue, delivered by whichever instance they connect to next. Announcements are
//!   numbered by each instance for its own users, once per user (a `SET NX` key).
//! - **Redis going away.** Each instance keeps serving its own sessions: commands it cannot
//!   publish run on this instance alone (durable frames numbered by its own counter, which
//!   follows Redis's). The outage is logged once, reconnects back off from 100 ms to 5 s with
//!   jitter, and on reconnecting the instance re-asserts which users it has sessions of (a
//!   restarted Redis starts empty), writes its follow graph back, and raises Redis's seq
//!   counters to the seqs it handed out alone. `redis` in `/api/ws/stats` and the
//!   `pitchey_ws_redis_up` gauge say `up`, `down` or `disabled`.
//! - **Drafts are decided in Redis.** A `draft_sync` is accepted or refused by one Lua script
//!   for all instances: it compares `baseVersion` with the version in
//!   `pitchey:draft:{user}:{draftId}` and, only if equal (or without a base: last write
//!   wins), stores content and version + 1 and publishes the `draft_sync` to the user's other
//!   sessions; otherwise it answers the current version and content, sent as
//!   `draft_conflict`. The ack (with the new version) goes out only after the script
//!   accepted, and the instance keeps a copy in its own store. The script also keeps the
//!   message id's answer in `pitchey:dedup:{user}:{id}` for the de-dup window, so a repeated
//!   id is acked again with the same version on either instance, not applied twice. A script
//!   call that fails (Redis lost mid-call) is answered with an `internal` error, never an
//!   ack: the client sends again and the de-dup key answers if the first one ran.
//! - **Instances that die.** Each instance refreshes `pitchey:instance:{id}:alive` (TTL
//!   `WS_INSTANCE_TTL_MS`, default 30 s, refreshed every third of it), is listed in
//!   `pitchey:instances`, and records its users in `pitchey:instance:{id}:users`. On the same
//!   timer every live instance runs a script that takes the sessions of listed instances whose
//!   key expired out of `pitchey:online:*`; a user left with none goes offline (`lastSeen`,
//!   and `presence_update` to followers). So a user of an instance killed with SIGKILL is
//!   offline everywhere within about one and a third TTLs; an instance that was only stalled
//!   past its TTL finds itself unlisted at its next refresh and re-asserts its users
//!   (followers then see offline, online). A graceful shutdown deletes its key at once.
//! - **What is per instance, honestly.** While Redis is away, two instances can hand the same
//!   seq to different frames of one user (each to its own sessions); a client that then
//!   resumes on the other instance may get `resumed: false` and refetch. Frames published
//!   while an instance is not subscribed are not in its replay log. While Redis is away
//!   drafts are decided by each instance alone against its own copy: two instances can each
//!   accept a save on the same base, and when Redis is back the first save through it lifts
//!   Redis to that instance's copy, so what the other instance accepted alone on that version
//!   is overwritten (last write wins for saves made during the outage). Notification ids are per instance, and the
//!   answers of `POST /api/ws/notify` (`sessions`, `delivered`) and `/api/ws/announce`
//!   (`users`) count the sessions of the instance that was asked. With no live instance left
//!   nothing reaps the dead ones' users: they stay online in Redis until an instance starts
//!   (its first refresh reaps them). Redis run without persistence (as the tests do) loses,
//!   when it restarts, the offline queue of users offline everywhere and the de-dup keys (a
//!   repeated versioned save then gets `draft_conflict` on another instance instead of its
//!   ack), and its drafts: they are put back from the copy of the instance the next save
//!   comes through, which may not yet hold the save accepted last before the restart (it
//!   reaches every instance within one publication's latency).
//!
//! ## Left out of the seed, and why
//! - A message broker beyond Redis Pub/Sub: Redis is the seed's scaling path.
//! - The seed's analytics service and its `WS_ANALYTICS_ENABLED`, `WS_PRESENCE_TRACKING_ENABLED`,
//!   `ENABLE_WEBSOCKETS`, `WEBSOCKET_ENDPOINT`, `WEBSOCKET_PROTOCOL` and `WS_CLEANUP_INTERVAL`
//!   variables: counters are in `/api/ws/stats` and `/metrics`, the endpoint is always `/ws`,
//!   and sessions time out on their own timers instead of a periodic sweep.
//! - Conversation membership: the mock has no conversations, so typing is routed by
//!   subscription (or to everyone in seed-compatible mode).
//!
//! ## Structure
//! [`config`], [`auth`], [`rate_limit`], [`store`] (durable state behind the `Store` trait:
//! seqs, replay logs, offline queues, drafts, de-dup window; in memory, or [`persist`] on disk
//! with `--data-dir`), `metrics` (counters by type, Prometheus text), `hub` (sessions,
//! subscriptions, routing, presence / pitch / dashboard books), `session` (one WebSocket),
//! `http` (routes), `demo`, [`redis_link`] (the Redis connections, scripts and reconnects)
//! and `hub::remote` (what crosses instances, delivered on receipt).
//!
//! ## Why each dependency is here
//! - `axum` (with `ws`) and `tokio`: the HTTP server and WebSocket upgrade; the seed's stack is
//!   HTTP + WebSocket on one port, and axum is the maintained tokio-native choice.
//! - `jsonwebtoken` (`rust_crypto`): HS256 verification without a C toolchain.
//! - No CORS crate: `tower-http`'s layer cannot give credentials to some origins and `*` to
//!   the rest, which is the policy here; it is one small middleware (`cors`).
//! - `redb`: the embedded store behind `--data-dir`. Pure Rust (no C build: SQLite through
//!   `rusqlite`'s `bundled` feature compiles C for a minute on a 2-core machine), crash-safe
//!   copy-on-write commits that are synced by default (`Durability::Immediate`), checksummed
//!   pages, and typed tables with tuple keys that fit our records (user and seq, user and
//!   draft id) without SQL. Synchronous, like the `Store` trait: the hub calls it under its lock.
//! - `serde` / `serde_json`, `pitchey-realtime` (`protocol` only): the wire types, shared with
//!   the SDK so that server and clients cannot drift apart.
//! - `clap`: the binary's flags and `token` subcommand; `rand`: secrets, session ids, demo
//!   traffic; `thiserror`, `tracing`, `tracing-subscriber`: errors and logs.
//! - `redis` (`tokio-comp`, `script`; no default features: no TLS, cluster or streams):
//!   Pub/Sub and Lua scripts (`EVALSHA`, reloaded by the crate after a Redis restart empties
//!   the script cache) on tokio, from the maintained redis-rs project. Reconnection is ours,
//!   not the client's: an instance must know the moment Redis goes away (to deliver alone)
//!   and the moment it is back (to resync), which `fred`'s and `ConnectionManager`'s
//!   transparent reconnects would hide; `futures-util` reads the subscription stream.
//! - Tests: `tokio-tungstenite` (a real WebSocket client) and `futures-util`; HTTP is spoken
//!   over a plain `TcpStream` in `tests/common`, which spares the build a second HTTP stack;
//!   `tempfile` gives each persistence test its own data directory, removed afterwards.

#![warn(missing_docs)]

mod api_error;
pub mod auth;
mod body_limit;
pub mod config;
mod cors;
mod demo;
pub mod drafts;
pub mod frame_text;
#[doc(hidden)]
pub mod fuzzing;
pub mod group_commit;
mod http;
mod hub;
pub mod limits;
mod metrics;
mod notify_budget;
mod outbox;
pub mod persist;
pub mod pitches;
pub mod presence;
pub mod rate_limit;
mod receipts;
pub mod redis_link;
mod serve;
mod session;
pub mod store;
mod store_error;
mod time;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use api_error::ApiError;
pub use auth::{AuthError, AuthUser, mint_token};
pub use config::{ConfigError, ServerConfig};
pub use demo::{DEMO_MAIN_USER, DEMO_USERS};

use hub::Hub;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The address could not be bound (in use, no permission).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The store under `data_dir` could not be opened or loaded (corrupt, unreadable, in use).
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// `redis_url` is not a valid Redis URL.
    #[error(transparent)]
    Redis(#[from] redis_link::RedisLinkError),
}

/// A server running on the current tokio runtime.
pub struct RunningServer {
    addr: SocketAddr,
    hub: Arc<Hub>,
    stop: watch::Sender<bool>,
    /// When the shutdown must be over, set when it starts.
    deadline: watch::Sender<Option<tokio::time::Instant>>,
    server: JoinHandle<()>,
    demo: Option<JoinHandle<()>>,
    redis: Option<JoinHandle<()>>,
}

/// Start a server and return once it listens.
pub async fn start(config: ServerConfig) -> Result<RunningServer, ServerError> {
    // Opened before binding: a store that cannot be read must stop the start, not leave a
    // server running on empty state.
    let store = open_store(&config)?;
    let bind = config.bind;
    let listener = TcpListener::bind(bind)
        .await
        .map_err(|source| ServerError::Bind { addr: bind, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| ServerError::Bind { addr: bind, source })?;
    // A bad URL stops the start; an unreachable Redis does not (the link reconnects).
    let settings = redis_link::LinkSettings {
        instance_ttl_ms: config.instance_ttl_ms,
        offline_queue_cap: config.offline_queue_cap,
        user_queue_bytes: config.limits.user_queue_bytes,
    };
    let link = config
        .redis_url
        .as_deref()
        .map(|url| redis_link::RedisLink::new(url, settings).map(Arc::new))
        .transpose()?;
    let hub = Arc::new(Hub::new(config, store));
    let (stop, stop_rx) = watch::channel(false);
    let redis = match link {
        Some(link) => {
            hub.attach_redis(link.clone());
            let host: std::sync::Weak<dyn redis_link::LinkHost> = Arc::downgrade(&hub) as _;
            link.spawn(host, stop_rx.clone(), Duration::from_secs(2))
                .await
        }
        None => None,
    };
    let demo = hub.config.demo.then(|| {
        demo::seed(&hub);
        tokio::spawn(demo::run(hub.clone(), stop_rx.clone()))
    });
    let app = http::router(hub.clone());
    let (deadline, deadline_rx) = watch::channel(None);
    let server = tokio::spawn(serve::serve(
        listener,
        app,
        hub.clone(),
        stop_rx,
        deadline_rx,
    ));
    tracing::info!(%addr, seed_compatible = hub.config.seed_compatible, "listening");
    Ok(RunningServer {
        addr,
        hub,
        stop,
        deadline,
        server,
        demo,
        redis,
    })
}

/// The store `config` asks for: on disk under `data_dir`, or in memory.
fn open_store(config: &ServerConfig) -> Result<Box<dyn store::Store>, ServerError> {
    let limits = store_limits(config);
    Ok(match &config.data_dir {
        Some(dir) => Box::new(persist::DiskStore::open(dir, limits)?),
        None => Box::new(store::MemoryStore::new(limits)),
    })
}

/// The store's limits from the server's configuration.
pub(crate) fn store_limits(config: &ServerConfig) -> store::StoreLimits {
    store::StoreLimits {
        offline_queue_cap: config.offline_queue_cap,
        replay_log_cap: config.replay_log_cap,
        dedup_window: Duration::from_millis(config.dedup_window_ms),
        dedup_cap: config.limits.dedup_ids,
        user_queue_bytes: config.limits.user_queue_bytes,
    }
}

impl RunningServer {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://HOST:PORT/ws`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// `http://HOST:PORT`.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The configuration the server runs with.
    pub fn config(&self) -> &ServerConfig {
        &self.hub.config
    }

    /// A valid token for `user_id`, for one hour.
    pub fn token(&self, user_id: u64) -> String {
        self.token_with(user_id, false, Duration::from_secs(3600))
    }

    /// A valid admin token for `user_id`, for one hour.
    pub fn admin_token(&self, user_id: u64) -> String {
        self.token_with(user_id, true, Duration::from_secs(3600))
    }

    /// A token for `user_id` valid for `ttl` (zero: already expired).
    pub fn token_with_ttl(&self, user_id: u64, ttl: Duration) -> String {
        self.token_with(user_id, false, ttl)
    }

    fn token_with(&self, user_id: u64, admin: bool, ttl: Duration) -> String {
        // Signing HS256 with an in-memory key and JSON claims of our own cannot fail.
        mint_token(&self.hub.config.jwt_secret, user_id, admin, ttl).unwrap_or_default()
    }

    /// Shut down gracefully: every session gets `disconnected` and close 1001, new
    /// connections are refused; returns once sessions have closed (each within
    /// `close_grace`) and the listener is released, so the port can be bound again. The
    /// whole takes at most `limits.shutdown_grace` (plus the final store commit), whatever
    /// clients do: HTTP connections still open then are cut.
    pub async fn shutdown(self) {
        tracing::info!("shutting down");
        let started = tokio::time::Instant::now();
        let deadline = started + self.hub.config.limits.shutdown_grace();
        self.deadline.send_replace(Some(deadline));
        self.hub.begin_shutdown();
        let bound = self.hub.config.close_grace * 2 + Duration::from_secs(1);
        let sessions_until = (started + bound).min(deadline);
        if tokio::time::timeout_at(sessions_until, self.hub.sessions_finished())
            .await
            .is_err()
        {
            tracing::warn!("some sessions did not close in time");
        }
        let _ = self.stop.send(true);
        let rest = async {
            if let Some(demo) = self.demo {
                let _ = demo.await;
            }
            // The accept loop gives connections until the deadline, then cuts them.
            let _ = self.server.await;
        };
        if tokio::time::timeout_at(deadline, rest).await.is_err() {
            tracing::warn!("shutdown grace over: leaving the rest behind");
        }
        self.hub.flush_store();
        if let Some(redis) = self.redis {
            // The link leaves Redis tidy if the grace allows; other instances reap us anyway.
            let _ = tokio::time::timeout_at(deadline, redis).await;
        }
    }
}
