//! Several instances through Redis (`--redis-url`): the link between this process and Redis.
//!
//! One task owns the connections: a subscription to [`CHANNEL`] and a multiplexed connection
//! for commands. The hub hands it commands without waiting (an unbounded channel: the hub's
//! lock never awaits); the task runs each as one Lua script or `PUBLISH`, so that state in
//! Redis and the publication that announces it change together. Every instance, this one
//! included, delivers what it *receives* on the subscription (the hub's `remote` module):
//! each instance has one subscription and each session lives on one instance, so each session
//! gets each publication once.
//!
//! Draft saves are the one command the caller waits for (`RedisLink::draft_save`): their
//! ack depends on the script's decision. On a timer (a third of `instance_ttl_ms`) the task
//! refreshes this instance's liveness key and reaps the sessions of instances whose key
//! expired.
//!
//! When Redis is unreachable the task runs each command on this instance alone (the hub's
//! single-process path), logs the outage once, and reconnects with capped, jittered
//! exponential backoff; on reconnecting it re-asserts which users have sessions here.
//!
//! The link knows nothing of the hub: it calls back through `LinkHost`, which the hub
//! implements. The dependency runs one way (the hub uses the link), so either can change
//! without the other and the link's wire types stay beside the Lua scripts that complete them.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use pitchey_realtime::protocol::{
    DraftSynced, Notification, PitchStats, Presence, PresenceStatus, RecentViewer, UserTyping,
};
use rand::Rng;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, Script};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};

/// The Pub/Sub channel every instance publishes to and subscribes to.
pub const CHANNEL: &str = "pitchey:events";

/// Limit on one round trip to Redis: an unanswered command counts as an outage.
const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// How often a quiet link checks that Redis still answers.
const PING_EVERY: Duration = Duration::from_secs(1);
/// Backoff between reconnect attempts: doubles from the first to the cap, with jitter.
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_CAP: Duration = Duration::from_secs(5);

/// Whether the instance reaches Redis (`redis` in `/api/ws/stats`, `pitchey_redis_up`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisStatus {
    /// No `--redis-url`: one process on its own.
    Disabled,
    /// Connected and subscribed.
    Up,
    /// Configured but unreachable: local delivery only, reconnecting.
    Down,
}

impl RedisStatus {
    /// `"up"`, `"down"` or `"disabled"`.
    pub fn as_str(self) -> &'static str {
        match self {
            RedisStatus::Disabled => "disabled",
            RedisStatus::Up => "up",
            RedisStatus::Down => "down",
        }
    }
}

/// Why the Redis link could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum RedisLinkError {
    /// The URL does not parse as a Redis URL.
    #[error("invalid Redis URL {url:?}: {source}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What the client said.
        source: redis::RedisError,
    },
}

/// A publication: who sent it and what happened.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Envelope {
    /// The publishing instance's id.
    pub origin: String,
    /// The event.
    pub event: Event,
}

/// What crosses instances. The JSON of `durable`, `presence` and `pitch_stats` is completed by
/// Lua scripts (seq, status, counts), so field names here are part of those scripts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Event {
    /// A durable frame for `user` (encoded without `seq`), numbered by Redis. `queued`: the
    /// user had no session on any instance, so it waits in the Redis offline queue.
    Durable {
        user: u64,
        frame: String,
        seq: u64,
        #[serde(default)]
        queued: bool,
    },
    /// A user's presence changed (decided in Redis across instances). `at`: Unix seconds.
    Presence { at: u64, presence: Presence },
    /// Someone is typing.
    Typing { typing: UserTyping },
    /// A pitch's shared stats after a view.
    PitchStats { stats: PitchStats },
    /// A draft accepted for `user`; `from` is the saving session's key on the origin.
    Draft {
        user: u64,
        from: u64,
        synced: DraftSynced,
    },
    /// An announcement: each instance numbers it for its own users.
    Announce { notification: Notification },
    /// `follower` follows `followee`.
    Follow { follower: u64, followee: u64 },
    /// A pitch's owner (and starting views).
    PitchOwner { pitch: u64, owner: u64, views: u64 },
}

/// A local presence transition, decided across instances by the presence script.
#[derive(Debug, Clone, Copy)]
pub(crate) enum PresenceChange {
    /// This instance got the user's first session.
    Connected,
    /// This instance lost the user's last session.
    Disconnected,
    /// The user set a status.
    Set(PresenceStatus),
}

/// A command from the hub to the link.
#[derive(Debug, Clone)]
pub(crate) enum Cmd {
    /// Publish as is.
    Publish(Event),
    /// Number (`INCR`, never below `floor + 1`), queue if the user is offline everywhere,
    /// publish. With `once`, only the first command with that key is carried out (every
    /// instance numbers an announcement for its users; a user on two instances gets it once).
    Durable {
        user: u64,
        frame: String,
        floor: u64,
        once: Option<String>,
    },
    /// A presence transition at Unix second `at`.
    Presence {
        user: u64,
        change: PresenceChange,
        at: u64,
    },
    /// A pitch view; `floor_*`: this instance's counts, which Redis must not fall below
    /// (Redis may have restarted without them).
    PitchView {
        pitch: u64,
        viewer: RecentViewer,
        floor_views: u64,
        floor_unique: u64,
    },
}

/// What the link calls on the server it serves (the hub implements it).
pub(crate) trait LinkHost: Send + Sync {
    /// A publication received from Redis (this instance's own included).
    fn receive(&self, payload: &str);
    /// Redis is unreachable: apply `cmd` on this instance alone.
    fn apply_alone(&self, cmd: Cmd);
    /// The last seq this instance knows for `user`.
    fn last_seq(&self, user: u64) -> u64;
    /// Users with a session here, and the follow graph as this instance knows it.
    fn local_snapshot(&self) -> (HashSet<u64>, Vec<(u64, u64)>);
    /// The Redis offline queue of `user` dropped its `dropped` oldest frames for room,
    /// `for_bytes` of them for the byte cap.
    fn queue_trimmed(&self, user: u64, dropped: u64, for_bytes: u64);
}

/// The link's share of the server configuration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LinkSettings {
    /// How long this instance's liveness key lives without a refresh (ms).
    pub instance_ttl_ms: u64,
    /// Frames per Redis offline queue (0: no queue).
    pub offline_queue_cap: usize,
    /// Bytes per Redis offline queue (`--user-queue-bytes`, as in memory).
    pub user_queue_bytes: usize,
}

/// The hub's handle on the link.
pub(crate) struct RedisLink {
    /// This instance's id: random per process.
    pub instance: String,
    settings: LinkSettings,
    client: Client,
    tx: mpsc::UnboundedSender<Cmd>,
    rx: Mutex<Option<mpsc::UnboundedReceiver<Cmd>>>,
    status: watch::Sender<RedisStatus>,
    /// The command connection while up, for queries from HTTP handlers.
    conn: Mutex<Option<MultiplexedConnection>>,
    /// Users this instance numbered durable frames for while Redis was away: their counters
    /// are raised in Redis on reconnecting, so that no instance hands those seqs out again.
    numbered_alone: Mutex<HashSet<u64>>,
}

fn key_seq(user: u64) -> String {
    format!("pitchey:seq:{user}")
}
fn key_online(user: u64) -> String {
    format!("pitchey:online:{user}")
}
fn key_queue(user: u64) -> String {
    format!("pitchey:queue:{user}")
}
fn key_queue_sizes(user: u64) -> String {
    format!("pitchey:queue:{user}:sizes")
}
fn key_queue_bytes(user: u64) -> String {
    format!("pitchey:queue:{user}:bytes")
}
fn key_presence(user: u64) -> String {
    format!("pitchey:presence:{user}")
}
fn key_following(user: u64) -> String {
    format!("pitchey:following:{user}")
}
fn key_followers(user: u64) -> String {
    format!("pitchey:followers:{user}")
}
fn key_users(instance: &str) -> String {
    format!("pitchey:instance:{instance}:users")
}
fn key_alive(instance: &str) -> String {
    format!("pitchey:instance:{instance}:alive")
}
fn key_draft(user: u64, draft_id: &str) -> String {
    format!("pitchey:draft:{user}:{draft_id}")
}
fn key_dedup(user: u64, id: &str) -> String {
    format!("pitchey:dedup:{user}:{id}")
}
/// Every instance that registered a liveness key and was not reaped yet.
const KEY_INSTANCES: &str = "pitchey:instances";

/// Number, queue, publish. KEYS: seq counter, online set, queue, queue entry sizes (parallel
/// to the queue), queue bytes. ARGV: floor, publication head, tail, queue cap in frames,
/// channel, once key ('' = none), queue cap in bytes, the frame's length without `seq`.
/// An entry's size is its frame's as sent (with `,"seq":N`), as the in-memory queue counts
/// it; the oldest go first for either cap, but the newest frame stays even when it alone is
/// over the byte cap. Answers {seq, frames dropped, of them for the bytes}.
const DURABLE_LUA: &str = r#"
if ARGV[6] ~= '' and not redis.call('SET', ARGV[6], '1', 'NX', 'EX', 3600) then return {0, 0, 0} end
local s = redis.call('INCR', KEYS[1])
local floor = tonumber(ARGV[1])
if s <= floor then s = floor + 1; redis.call('SET', KEYS[1], s) end
local queued = redis.call('SCARD', KEYS[2]) == 0
local payload = ARGV[2] .. string.format('%d', s) .. ',"queued":' .. tostring(queued) .. ARGV[3]
local cap = tonumber(ARGV[4])
local dropped, for_bytes = 0, 0
if queued and cap > 0 then
  local size = tonumber(ARGV[8]) + 7 + #string.format('%d', s)
  local n = redis.call('RPUSH', KEYS[3], payload)
  redis.call('RPUSH', KEYS[4], size)
  local bytes = redis.call('INCRBY', KEYS[5], size)
  local byte_cap = tonumber(ARGV[7])
  while n > 1 and (n > cap or bytes > byte_cap) do
    if n <= cap then for_bytes = for_bytes + 1 end
    redis.call('LPOP', KEYS[3])
    local gone = tonumber(redis.call('LPOP', KEYS[4]) or '0') or 0
    bytes = redis.call('DECRBY', KEYS[5], gone)
    n = n - 1
    dropped = dropped + 1
  end
end
redis.call('PUBLISH', ARGV[5], payload)
return {s, dropped, for_bytes}
"#;

const PRESENCE_LUA: &str = r#"
local old = redis.call('HGET', KEYS[2], 'status') or 'offline'
local new = old
if ARGV[2] == 'connect' then
  redis.call('SADD', KEYS[1], ARGV[1])
  redis.call('SADD', KEYS[3], ARGV[4])
  if old == 'offline' then new = 'online' end
elseif ARGV[2] == 'disconnect' then
  redis.call('SREM', KEYS[1], ARGV[1])
  redis.call('SREM', KEYS[3], ARGV[4])
  if redis.call('SCARD', KEYS[1]) == 0 then new = 'offline' end
else
  new = ARGV[3]
end
if new == old and redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('HSET', KEYS[2], 'status', new, 'lastSeen', ARGV[5], 'at', ARGV[8])
redis.call('PUBLISH', ARGV[7], ARGV[6] .. '"status":"' .. new .. '","lastSeen":"' .. ARGV[5] .. '"}}}')
return 1
"#;

const PITCH_LUA: &str = r#"
local v = redis.call('HINCRBY', KEYS[1], 'views', 1)
local fv = tonumber(ARGV[3]) + 1
if v < fv then v = fv; redis.call('HSET', KEYS[1], 'views', v) end
redis.call('SADD', KEYS[2], ARGV[1])
local u = math.max(redis.call('SCARD', KEYS[2]), tonumber(ARGV[4]))
local needle = '"userId":' .. ARGV[1] .. ','
for _, r in ipairs(redis.call('LRANGE', KEYS[3], 0, -1)) do
  if string.find(r, needle, 1, true) then redis.call('LREM', KEYS[3], 0, r) end
end
redis.call('LPUSH', KEYS[3], ARGV[2])
redis.call('LTRIM', KEYS[3], 0, 9)
local recent = redis.call('LRANGE', KEYS[3], 0, -1)
redis.call('PUBLISH', ARGV[7], ARGV[5] .. '"viewCount":' .. string.format('%d', v) ..
  ',"uniqueViewers":' .. string.format('%d', u) .. ',"recentViewers":[' ..
  table.concat(recent, ',') .. ']' .. ARGV[6])
return v
"#;

const SEQ_MAX_LUA: &str = r#"
local n = tonumber(ARGV[1])
if (tonumber(redis.call('GET', KEYS[1])) or 0) < n then redis.call('SET', KEYS[1], n) end
return 0
"#;

const TAKE_LUA: &str = r#"
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[2])
local items = redis.call('LRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1], KEYS[4], KEYS[5])
return items
"#;

/// Register this instance (ARGV[1]) and refresh its liveness key for ARGV[2] ms. Returns 1
/// when it was not registered: first time, or reaped by another instance after its key
/// expired, so its sessions must be asserted again.
const ALIVE_LUA: &str = r#"
local added = redis.call('SADD', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
return added
"#;

/// Take the sessions of every registered instance whose liveness key expired out of the
/// online sets; a user left with none goes offline (status, `lastSeen`, a published presence
/// event). Keys are built inside the script from the registered ids (one Redis, no cluster).
/// Atomic, so two instances reaping at once publish each `offline` once.
const REAP_LUA: &str = r#"
local reaped = 0
for _, inst in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if inst ~= ARGV[1] and redis.call('EXISTS', 'pitchey:instance:' .. inst .. ':alive') == 0 then
    local ukey = 'pitchey:instance:' .. inst .. ':users'
    for _, u in ipairs(redis.call('SMEMBERS', ukey)) do
      local okey = 'pitchey:online:' .. u
      redis.call('SREM', okey, inst)
      local pkey = 'pitchey:presence:' .. u
      local old = redis.call('HGET', pkey, 'status') or 'offline'
      if redis.call('SCARD', okey) == 0 and old ~= 'offline' then
        redis.call('HSET', pkey, 'status', 'offline', 'lastSeen', ARGV[2], 'at', ARGV[3])
        redis.call('PUBLISH', ARGV[5], ARGV[4] .. u .. ',"status":"offline","lastSeen":"' ..
          ARGV[2] .. '"}}}')
      end
    end
    redis.call('DEL', ukey)
    redis.call('SREM', KEYS[1], inst)
    reaped = reaped + 1
  end
end
return reaped
"#;

/// One draft save, decided for all instances at once. KEYS: the draft (hash), the message id's
/// de-dup key (or the draft key again when there is no id). ARGV: base version ('' = none:
/// last write wins), content JSON, draft type ('' = keep), updated-at, has-id flag, de-dup
/// TTL ms, floor version/content/type (this instance's copy: Redis may have restarted
/// without it), channel, publication head (ends inside `synced`). Answers `{'dup', v}`,
/// `{'conflict', v, content}` or `{'ok', v, type}`.
const DRAFT_LUA: &str = r#"
if ARGV[5] == '1' then
  local prev = redis.call('GET', KEYS[2])
  if prev then return {'dup', prev} end
end
local cur = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
local floor = tonumber(ARGV[7])
if cur < floor then
  redis.call('HSET', KEYS[1], 'version', floor, 'content', ARGV[8], 'type', ARGV[9])
  cur = floor
end
if ARGV[1] ~= '' and tonumber(ARGV[1]) ~= cur then
  return {'conflict', tostring(cur), redis.call('HGET', KEYS[1], 'content') or 'null'}
end
local v = cur + 1
local ty = ARGV[3]
if ty == '' then ty = redis.call('HGET', KEYS[1], 'type') or '' end
redis.call('HSET', KEYS[1], 'version', v, 'content', ARGV[2], 'type', ty, 'updatedAt', ARGV[4])
if ARGV[5] == '1' then redis.call('SET', KEYS[2], v, 'PX', ARGV[6]) end
local tail = ',"version":' .. string.format('%d', v)
if ty ~= '' then tail = tail .. ',"draftType":' .. cjson.encode(ty) end
redis.call('PUBLISH', ARGV[10], ARGV[11] .. tail .. '}}}')
return {'ok', tostring(v), ty}
"#;

/// What Redis decided about a draft save.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SharedDraft {
    /// Stored as `version` (or, `repeated`, stored so by an earlier message with this id).
    Accepted {
        version: u64,
        draft_type: Option<String>,
        repeated: bool,
    },
    /// The base was stale: the current version and content.
    Conflict {
        version: u64,
        content: serde_json::Value,
    },
}

/// A draft save to decide in Redis.
pub(crate) struct DraftRequest<'a> {
    pub user: u64,
    /// The saving session's key (it does not get its own save back).
    pub from: u64,
    /// `None`: last write wins (seed mode, or a save without `baseVersion`).
    pub base: Option<u64>,
    /// The message id, for de-duplication across instances.
    pub id: Option<&'a str>,
    pub dedup_ttl_ms: u64,
    /// What the other sessions get, without `version` and `draftType` (added by the script).
    pub synced: &'a DraftSynced,
    pub draft_type: Option<&'a str>,
    /// This instance's copy of the draft.
    pub floor: Option<&'a crate::drafts::Draft>,
}

/// The JSON of `origin` and `event` up to (not including) the fields a script appends.
fn head(origin: &str, kind: &str, fields: &str) -> String {
    let origin = serde_json::Value::from(origin);
    format!(r#"{{"origin":{origin},"event":{{"kind":"{kind}",{fields}"#)
}

impl RedisLink {
    /// A link to `url` (nothing is connected until [`RedisLink::spawn`]).
    pub(crate) fn new(url: &str, settings: LinkSettings) -> Result<Self, RedisLinkError> {
        let client = Client::open(url).map_err(|source| RedisLinkError::InvalidUrl {
            url: url.to_owned(),
            source,
        })?;
        let (tx, rx) = mpsc::unbounded_channel();
        let instance = format!("i-{:016x}", rand::rng().random::<u64>());
        Ok(RedisLink {
            instance,
            settings,
            client,
            tx,
            rx: Mutex::new(Some(rx)),
            status: watch::channel(RedisStatus::Down).0,
            conn: Mutex::new(None),
            numbered_alone: Mutex::new(HashSet::new()),
        })
    }

    /// Up or down.
    pub(crate) fn status(&self) -> RedisStatus {
        *self.status.borrow()
    }

    /// Hand a command to the link task (never blocks).
    pub(crate) fn send(&self, cmd: Cmd) {
        // The receiver lives as long as the task; after shutdown there is nothing to deliver.
        let _ = self.tx.send(cmd);
    }

    fn set_conn(&self, conn: Option<MultiplexedConnection>) {
        *self.conn.lock().unwrap_or_else(|e| e.into_inner()) = conn;
    }

    /// `user` got a seq from this instance's own counter (Redis away).
    pub(crate) fn numbered_alone(&self, user: u64) {
        self.numbered_alone
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(user);
    }

    /// The command connection, while up.
    fn conn(&self) -> Option<MultiplexedConnection> {
        if self.status() != RedisStatus::Up {
            return None;
        }
        self.conn.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Start the link task; waits up to `first_wait` for the first connection so that a
    /// server that starts next to a running Redis is up from its first session.
    /// The task ends on `stop`, or once `host` is gone.
    pub(crate) async fn spawn(
        self: &Arc<Self>,
        host: Weak<dyn LinkHost>,
        stop: watch::Receiver<bool>,
        first_wait: Duration,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let rx = self.rx.lock().unwrap_or_else(|e| e.into_inner()).take()?;
        let mut status = self.status.subscribe();
        let task = tokio::spawn(run(self.clone(), host, rx, stop));
        let _ = tokio::time::timeout(first_wait, status.wait_for(|s| *s == RedisStatus::Up)).await;
        Some(task)
    }

    /// Take the Redis offline queue of `user` and mark `user` as having a session here
    /// (before the session registers, so that nothing published after this is queued).
    /// `None` when Redis is unreachable.
    pub(crate) async fn take_queue(&self, user: u64) -> Option<Vec<Envelope>> {
        let mut conn = self.conn()?;
        let script = Script::new(TAKE_LUA);
        let mut inv = script.key(key_queue(user));
        inv.key(key_online(user))
            .key(key_users(&self.instance))
            .key(key_queue_sizes(user))
            .key(key_queue_bytes(user))
            .arg(&self.instance)
            .arg(user);
        let items: Vec<String> = tokio::time::timeout(IO_TIMEOUT, inv.invoke_async(&mut conn))
            .await
            .ok()?
            .ok()?;
        Some(
            items
                .iter()
                .filter_map(|s| serde_json::from_str::<Envelope>(s).ok())
                .collect(),
        )
    }

    /// A user's presence as Redis has it; `None` when Redis is unreachable.
    pub(crate) async fn presence(&self, user: u64) -> Option<Presence> {
        let mut conn = self.conn()?;
        let cmd = redis::cmd("HGETALL").arg(key_presence(user)).clone();
        let map: std::collections::HashMap<String, String> =
            tokio::time::timeout(IO_TIMEOUT, cmd.query_async(&mut conn))
                .await
                .ok()?
                .ok()?;
        let status = match map.get("status").map(String::as_str) {
            Some("online") => PresenceStatus::Online,
            Some("away") => PresenceStatus::Away,
            _ => PresenceStatus::Offline,
        };
        Some(Presence {
            user_id: user,
            status,
            last_seen: map.get("lastSeen").cloned(),
        })
    }

    /// Whom `user` follows that is online or away, from Redis; `None` when unreachable.
    pub(crate) async fn following_online(&self, user: u64) -> Option<Vec<Presence>> {
        let mut conn = self.conn()?;
        let cmd = redis::cmd("SMEMBERS").arg(key_following(user)).clone();
        let mut followed: Vec<u64> = tokio::time::timeout(IO_TIMEOUT, cmd.query_async(&mut conn))
            .await
            .ok()?
            .ok()?;
        followed.sort_unstable();
        let mut out = Vec::new();
        for f in followed {
            let p = self.presence(f).await?;
            if p.status != PresenceStatus::Offline {
                out.push(p);
            }
        }
        Some(out)
    }

    /// Decide a draft save in Redis, atomically across instances: accepted only on the
    /// current version (or without a base), stored and published to the user's other
    /// sessions in the same script. `Ok(None)` when Redis is unreachable (decide locally).
    pub(crate) async fn draft_save(
        &self,
        req: DraftRequest<'_>,
    ) -> Result<Option<SharedDraft>, LinkDown> {
        let Some(mut conn) = self.conn() else {
            return Ok(None);
        };
        let synced = serde_json::to_string(req.synced).unwrap_or_default();
        // The script appends `version` (and `draftType`) inside `synced`, then closes it.
        let synced_open = synced.strip_suffix('}').unwrap_or(&synced);
        let h = head(
            &self.instance,
            "draft",
            &format!(
                r#""user":{},"from":{},"synced":{synced_open}"#,
                req.user, req.from
            ),
        );
        let draft_key = key_draft(req.user, &req.synced.draft_id);
        let dedup_key = req
            .id
            .map_or_else(|| draft_key.clone(), |id| key_dedup(req.user, id));
        let (floor_version, floor_content, floor_type) = req.floor.map_or_else(
            || (0, "null".to_owned(), String::new()),
            |d| {
                (
                    d.version,
                    d.content.to_string(),
                    d.draft_type.clone().unwrap_or_default(),
                )
            },
        );
        let script = Script::new(DRAFT_LUA);
        let mut inv = script.key(draft_key);
        inv.key(dedup_key)
            .arg(req.base.map(|b| b.to_string()).unwrap_or_default())
            .arg(req.synced.content.to_string())
            .arg(req.draft_type.unwrap_or_default())
            .arg(req.synced.updated_at.clone().unwrap_or_default())
            .arg(if req.id.is_some() { "1" } else { "0" })
            .arg(req.dedup_ttl_ms.max(1))
            .arg(floor_version)
            .arg(floor_content)
            .arg(floor_type)
            .arg(CHANNEL)
            .arg(h);
        let answer: Vec<String> = timed(inv.invoke_async(&mut conn)).await?;
        parse_draft_answer(&answer).map(Some)
    }
}

/// The draft script's answer.
fn parse_draft_answer(answer: &[String]) -> Result<SharedDraft, LinkDown> {
    let bad = || LinkDown::Answer(format!("{answer:?}"));
    let version = |s: Option<&String>| s.and_then(|v| v.parse::<u64>().ok()).ok_or_else(bad);
    match answer.first().map(String::as_str) {
        Some("ok") => Ok(SharedDraft::Accepted {
            version: version(answer.get(1))?,
            draft_type: answer.get(2).filter(|t| !t.is_empty()).cloned(),
            repeated: false,
        }),
        Some("dup") => Ok(SharedDraft::Accepted {
            version: version(answer.get(1))?,
            draft_type: None,
            repeated: true,
        }),
        Some("conflict") => Ok(SharedDraft::Conflict {
            version: version(answer.get(1))?,
            content: answer
                .get(2)
                .and_then(|c| serde_json::from_str(c).ok())
                .ok_or_else(bad)?,
        }),
        _ => Err(bad()),
    }
}

/// Capped exponential backoff with jitter (half to full delay), reset on success.
struct Backoff {
    next: Duration,
}

impl Backoff {
    fn new() -> Self {
        Backoff {
            next: BACKOFF_FIRST,
        }
    }

    fn reset(&mut self) {
        self.next = BACKOFF_FIRST;
    }

    fn delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(BACKOFF_CAP);
        let half = d / 2;
        half + half.mul_f64(rand::rng().random::<f64>())
    }
}

/// Why an up link went down, or a call through it failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LinkDown {
    #[error("{0}")]
    Redis(#[from] redis::RedisError),
    #[error("no answer in time")]
    Timeout,
    #[error("subscription ended (connection closed)")]
    SubscriptionEnded,
    #[error("unexpected answer from a script: {0}")]
    Answer(String),
}

/// How a stretch of the link's life ended.
enum Ended {
    Stopped,
    Down(LinkDown),
}

async fn timed<T>(
    f: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, LinkDown> {
    match tokio::time::timeout(IO_TIMEOUT, f).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(LinkDown::Timeout),
    }
}

/// The link task: connect, serve, and on failure fall back and reconnect, until `stop`.
async fn run(
    link: Arc<RedisLink>,
    host: Weak<dyn LinkHost>,
    mut rx: mpsc::UnboundedReceiver<Cmd>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Backoff::new();
    // Whether this outage was already logged: once per outage, not per attempt or message.
    let mut outage_logged = false;
    let mut ever_up = false;
    loop {
        if host.strong_count() == 0 {
            return;
        }
        let connected = tokio::select! {
            r = connect(&link.client) => r,
            _ = stopped(&mut stop) => return,
        };
        match connected {
            Ok((conn, stream)) => {
                backoff.reset();
                let ended = serve(&link, &host, conn, stream, &mut rx, &mut stop, ever_up).await;
                ever_up = true;
                match ended {
                    Ended::Stopped => return,
                    Ended::Down(e) => {
                        tracing::warn!(
                            error = %e,
                            "redis: connection lost; serving local sessions only, reconnecting with backoff"
                        );
                        outage_logged = true;
                    }
                }
            }
            Err(e) if !outage_logged => {
                tracing::warn!(
                    error = %e,
                    "redis: unreachable; serving local sessions only, reconnecting with backoff"
                );
                outage_logged = true;
            }
            Err(e) => tracing::debug!(error = %e, "redis: reconnect failed"),
        }
        link.set_conn(None);
        link.status.send_replace(RedisStatus::Down);
        // Down: run commands locally until the next attempt.
        let until = tokio::time::Instant::now() + backoff.delay();
        loop {
            tokio::select! {
                cmd = rx.recv() => match (cmd, host.upgrade()) {
                    (Some(cmd), Some(host)) => host.apply_alone(cmd),
                    _ => return,
                },
                _ = tokio::time::sleep_until(until) => break,
                _ = stopped(&mut stop) => return,
            }
        }
    }
}

/// Resolves once `stop` is set (or its sender is gone). The borrow `wait_for` returns is
/// dropped here: it must not live across the callers' awaits.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

async fn connect(
    client: &Client,
) -> Result<(MultiplexedConnection, redis::aio::PubSubStream), LinkDown> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(IO_TIMEOUT))
        .set_response_timeout(Some(IO_TIMEOUT));
    let conn = timed(client.get_multiplexed_async_connection_with_config(&config)).await?;
    let mut pubsub = timed(client.get_async_pubsub()).await?;
    timed(pubsub.subscribe(CHANNEL)).await?;
    Ok((conn, pubsub.into_on_message()))
}

/// Serve an up link until it fails or `stop`.
async fn serve(
    link: &RedisLink,
    host: &Weak<dyn LinkHost>,
    mut conn: MultiplexedConnection,
    mut stream: redis::aio::PubSubStream,
    rx: &mut mpsc::UnboundedReceiver<Cmd>,
    stop: &mut watch::Receiver<bool>,
    reconnect: bool,
) -> Ended {
    let scripts = Scripts::new();
    {
        let Some(host) = host.upgrade() else {
            return Ended::Stopped;
        };
        // Registered and alive before the sessions are listed, so that no other instance
        // reaps them in between.
        if let Err(e) = refresh_alive(link, &scripts, &mut conn).await {
            return Ended::Down(e);
        }
        // Re-assert who has sessions here: Redis may have restarted empty, or this instance
        // may have lost users while away.
        if let Err(e) = resync(&*host, link, &scripts, &mut conn).await {
            return Ended::Down(e);
        }
        link.set_conn(Some(conn.clone()));
        link.status.send_replace(RedisStatus::Up);
        if reconnect {
            tracing::info!("redis: reconnected; cross-instance delivery resumed");
        } else {
            tracing::info!(instance = %link.instance, "redis: connected");
        }
    }
    let mut ping = tokio::time::interval(PING_EVERY);
    let mut alive = {
        let ttl = link.settings.instance_ttl_ms.max(30);
        tokio::time::interval(Duration::from_millis(ttl / 3))
    };
    alive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            msg = stream.next() => {
                let Some(msg) = msg else {
                    return Ended::Down(LinkDown::SubscriptionEnded);
                };
                let Some(host) = host.upgrade() else { return Ended::Stopped };
                match msg.get_payload::<String>() {
                    Ok(payload) => host.receive(&payload),
                    Err(e) => tracing::warn!(error = %e, "redis: unreadable publication"),
                }
            }
            cmd = rx.recv() => {
                let (Some(cmd), Some(host)) = (cmd, host.upgrade()) else {
                    return Ended::Stopped;
                };
                if let Err(e) = exec(&*host, link, &scripts, &mut conn, cmd.clone()).await {
                    // Not published: this instance's sessions still get it.
                    host.apply_alone(cmd);
                    return Ended::Down(e);
                }
            }
            _ = ping.tick() => {
                if let Err(e) = timed(redis::cmd("PING").query_async::<String>(&mut conn)).await {
                    return Ended::Down(e);
                }
            }
            _ = alive.tick() => {
                let Some(host) = host.upgrade() else { return Ended::Stopped };
                let tick = async {
                    if refresh_alive(link, &scripts, &mut conn).await? {
                        // Our key had expired and another instance took our sessions out
                        // (a stall longer than the TTL): put them back.
                        tracing::warn!("redis: this instance was taken for dead; re-asserting its sessions");
                        resync(&*host, link, &scripts, &mut conn).await?;
                    }
                    reap(link, &scripts, &mut conn).await
                };
                if let Err(e) = tick.await {
                    return Ended::Down(e);
                }
            }
            _ = stopped(stop) => {
                // Leave Redis as the other instances should see it: what is still queued,
                // then this instance's users gone (offline unless connected elsewhere).
                if let Some(host) = host.upgrade() {
                    let leave = async {
                        while let Ok(cmd) = rx.try_recv() {
                            if exec(&*host, link, &scripts, &mut conn, cmd).await.is_err() {
                                return;
                            }
                        }
                        let _ = resync(&*host, link, &scripts, &mut conn).await;
                        // Gone now: any session left over is reaped by the others at once.
                        let _ = timed(
                            redis::cmd("DEL")
                                .arg(key_alive(&link.instance))
                                .query_async::<i64>(&mut conn),
                        )
                        .await;
                    };
                    let _ = tokio::time::timeout(IO_TIMEOUT, leave).await;
                }
                return Ended::Stopped;
            }
        }
    }
}

struct Scripts {
    durable: Script,
    presence: Script,
    pitch: Script,
    alive: Script,
    reap: Script,
}

impl Scripts {
    fn new() -> Self {
        Scripts {
            durable: Script::new(DURABLE_LUA),
            presence: Script::new(PRESENCE_LUA),
            pitch: Script::new(PITCH_LUA),
            alive: Script::new(ALIVE_LUA),
            reap: Script::new(REAP_LUA),
        }
    }
}

/// Refresh this instance's liveness key; true when it had been reaped (or is new).
async fn refresh_alive(
    link: &RedisLink,
    scripts: &Scripts,
    conn: &mut MultiplexedConnection,
) -> Result<bool, LinkDown> {
    let mut inv = scripts.alive.key(KEY_INSTANCES);
    inv.key(key_alive(&link.instance))
        .arg(&link.instance)
        .arg(link.settings.instance_ttl_ms.max(30));
    Ok(timed(inv.invoke_async::<i64>(conn)).await? == 1)
}

/// Take the sessions of instances whose liveness key expired for gone.
async fn reap(
    link: &RedisLink,
    scripts: &Scripts,
    conn: &mut MultiplexedConnection,
) -> Result<(), LinkDown> {
    let at = crate::time::unix_secs();
    let mut inv = scripts.reap.key(KEY_INSTANCES);
    inv.arg(&link.instance)
        .arg(crate::time::iso_from_unix(at))
        .arg(at)
        .arg(head(
            &link.instance,
            "presence",
            &format!(r#""at":{at},"presence":{{"userId":"#),
        ))
        .arg(CHANNEL);
    let reaped = timed(inv.invoke_async::<i64>(conn)).await?;
    if reaped > 0 {
        tracing::info!(
            instances = reaped,
            "redis: instances stopped refreshing their liveness key; their sessions are gone"
        );
    }
    Ok(())
}

/// Run one command against Redis.
async fn exec(
    host: &dyn LinkHost,
    link: &RedisLink,
    scripts: &Scripts,
    conn: &mut MultiplexedConnection,
    cmd: Cmd,
) -> Result<(), LinkDown> {
    let me = &link.instance;
    match cmd {
        Cmd::Publish(event) => {
            if let Event::Follow { follower, followee } = &event {
                let mut p = redis::pipe();
                p.sadd(key_following(*follower), *followee)
                    .sadd(key_followers(*followee), *follower);
                timed(p.query_async::<()>(conn)).await?;
            }
            let env = Envelope {
                origin: me.clone(),
                event,
            };
            let payload = serde_json::to_string(&env).unwrap_or_default();
            timed(
                redis::cmd("PUBLISH")
                    .arg(CHANNEL)
                    .arg(payload)
                    .query_async::<i64>(conn),
            )
            .await?;
        }
        Cmd::Durable {
            user,
            frame,
            floor,
            once,
        } => {
            let frame_len = frame.len();
            let frame_json = serde_json::Value::from(frame).to_string();
            let h = head(
                me,
                "durable",
                &format!(r#""user":{user},"frame":{frame_json},"seq":"#),
            );
            let mut inv = scripts.durable.key(key_seq(user));
            inv.key(key_online(user))
                .key(key_queue(user))
                .key(key_queue_sizes(user))
                .key(key_queue_bytes(user))
                .arg(floor)
                .arg(h)
                .arg("}}")
                .arg(link.settings.offline_queue_cap)
                .arg(CHANNEL)
                .arg(once.unwrap_or_default())
                .arg(link.settings.user_queue_bytes)
                .arg(frame_len);
            let (_seq, dropped, for_bytes): (u64, u64, u64) = timed(inv.invoke_async(conn)).await?;
            if dropped > 0 {
                host.queue_trimmed(user, dropped, for_bytes);
            }
        }
        Cmd::Presence { user, change, at } => {
            let (change, status) = match change {
                PresenceChange::Connected => ("connect", ""),
                PresenceChange::Disconnected => ("disconnect", ""),
                PresenceChange::Set(s) => (
                    "set",
                    match s {
                        PresenceStatus::Online => "online",
                        PresenceStatus::Away => "away",
                        PresenceStatus::Offline => "offline",
                    },
                ),
            };
            let h = head(
                me,
                "presence",
                &format!(r#""at":{at},"presence":{{"userId":{user},"#),
            );
            let mut inv = scripts.presence.key(key_online(user));
            inv.key(key_presence(user))
                .key(key_users(me))
                .arg(me)
                .arg(change)
                .arg(status)
                .arg(user)
                .arg(crate::time::iso_from_unix(at))
                .arg(h)
                .arg(CHANNEL)
                .arg(at);
            timed(inv.invoke_async::<i64>(conn)).await?;
        }
        Cmd::PitchView {
            pitch,
            viewer,
            floor_views,
            floor_unique,
        } => {
            let entry = serde_json::to_string(&viewer).unwrap_or_default();
            let h = head(
                me,
                "pitch_stats",
                &format!(r#""stats":{{"pitchId":{pitch},"#),
            );
            let mut inv = scripts.pitch.key(format!("pitchey:pitch:{pitch}"));
            inv.key(format!("pitchey:pitch:{pitch}:viewers"))
                .key(format!("pitchey:pitch:{pitch}:recent"))
                .arg(viewer.user_id)
                .arg(entry)
                .arg(floor_views)
                .arg(floor_unique)
                .arg(h)
                .arg("}}}")
                .arg(CHANNEL);
            timed(inv.invoke_async::<i64>(conn)).await?;
        }
    }
    Ok(())
}

/// After (re)connecting: every user with a session here is marked so in Redis, users that
/// left while Redis was away are taken out, and this instance's follow graph is written back.
async fn resync(
    host: &dyn LinkHost,
    link: &RedisLink,
    scripts: &Scripts,
    conn: &mut MultiplexedConnection,
) -> Result<(), LinkDown> {
    let me = &link.instance;
    // Seqs handed out here alone during the outage: Redis's counters must not fall below.
    let alone: Vec<u64> = link
        .numbered_alone
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .drain()
        .collect();
    let seq_max = Script::new(SEQ_MAX_LUA);
    for user in alone {
        let mut inv = seq_max.key(key_seq(user));
        inv.arg(host.last_seq(user));
        if let Err(e) = timed(inv.invoke_async::<i64>(conn)).await {
            link.numbered_alone(user);
            return Err(e);
        }
    }
    let (local_users, follows) = host.local_snapshot();
    let listed: Vec<u64> =
        timed(redis::cmd("SMEMBERS").arg(key_users(me)).query_async(conn)).await?;
    let now = crate::time::unix_secs();
    let gone = listed.iter().filter(|u| !local_users.contains(u)).copied();
    let changes = local_users
        .iter()
        .map(|u| (*u, PresenceChange::Connected))
        .chain(gone.map(|u| (u, PresenceChange::Disconnected)))
        .collect::<Vec<_>>();
    for (user, change) in changes {
        exec(
            host,
            link,
            scripts,
            conn,
            Cmd::Presence {
                user,
                change,
                at: now,
            },
        )
        .await?;
    }
    if !follows.is_empty() {
        let mut p = redis::pipe();
        for (follower, followee) in follows {
            p.sadd(key_following(follower), followee)
                .sadd(key_followers(followee), follower);
        }
        timed(p.query_async::<()>(conn)).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_the_cap_with_jitter() {
        let mut b = Backoff::new();
        let delays: Vec<Duration> = (0..10).map(|_| b.delay()).collect();
        assert!(delays[0] >= BACKOFF_FIRST / 2 && delays[0] <= BACKOFF_FIRST);
        assert!(delays.iter().all(|d| *d <= BACKOFF_CAP));
        assert!(delays[9] >= BACKOFF_CAP / 2);
        b.reset();
        assert!(b.delay() <= BACKOFF_FIRST);
    }

    #[test]
    fn draft_script_answers_parse_and_bad_ones_are_errors() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            parse_draft_answer(&s(&["ok", "3", "pitch"])).unwrap(),
            SharedDraft::Accepted {
                version: 3,
                draft_type: Some("pitch".into()),
                repeated: false
            }
        );
        assert_eq!(
            parse_draft_answer(&s(&["dup", "2"])).unwrap(),
            SharedDraft::Accepted {
                version: 2,
                draft_type: None,
                repeated: true
            }
        );
        assert_eq!(
            parse_draft_answer(&s(&["conflict", "4", r#"{"t":1}"#])).unwrap(),
            SharedDraft::Conflict {
                version: 4,
                content: serde_json::json!({"t": 1})
            }
        );
        for bad in [
            &["ok"][..],
            &["ok", "x"],
            &["conflict", "1", "{"],
            &["what"],
            &[],
        ] {
            assert!(parse_draft_answer(&s(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn draft_publication_completed_by_the_script_parses() {
        let synced = DraftSynced {
            draft_id: "deck".into(),
            draft_type: None,
            content: serde_json::json!({"a": "}"}),
            version: None,
            updated_at: Some("t".into()),
            session_id: Some("s".into()),
        };
        let json = serde_json::to_string(&synced).unwrap();
        let open = json.strip_suffix('}').unwrap();
        let h = head(
            "i-1",
            "draft",
            &format!(r#""user":7,"from":3,"synced":{open}"#),
        );
        // What DRAFT_LUA appends for version 5 and type "pitch".
        let payload = format!(r#"{h},"version":5,"draftType":"pitch"}}}}}}"#);
        let env: Envelope = serde_json::from_str(&payload).unwrap();
        let Event::Draft { user, from, synced } = env.event else {
            panic!("not a draft event: {payload}");
        };
        assert_eq!((user, from), (7, 3));
        assert_eq!(synced.version, Some(5));
        assert_eq!(synced.draft_type.as_deref(), Some("pitch"));
        assert_eq!(synced.content, serde_json::json!({"a": "}"}));
    }

    #[test]
    fn script_completed_envelopes_parse() {
        let h = head("i-1", "durable", r#""user":7,"frame":"{}","seq":"#);
        let payload = format!(r#"{h}5,"queued":false}}}}"#);
        let env: Envelope = serde_json::from_str(&payload).unwrap();
        assert!(matches!(
            env.event,
            Event::Durable {
                user: 7,
                seq: 5,
                queued: false,
                ..
            }
        ));
        let h = head("i-1", "presence", r#""at":9,"presence":{"userId":3,"#);
        let payload = format!(r#"{h}"status":"away","lastSeen":"x"}}}}}}"#);
        let env: Envelope = serde_json::from_str(&payload).unwrap();
        assert!(matches!(env.event, Event::Presence { at: 9, .. }));
    }
}
