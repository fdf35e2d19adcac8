//! HTTP routes: the WebSocket upgrade at `/ws` and the seed's `/api/ws/*` endpoints, plus
//! our admin and dev endpoints. Every `/api/ws/*` route but `health` needs a bearer token.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, Query, State};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use pitchey_realtime::protocol::{NewNotification, SUBPROTOCOL, UploadProgress};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api_error::ApiError;
use crate::auth::{AuthError, AuthUser, bearer_token, mint_named_token, verify_token};
use crate::hub::{Counters, Hub, MAX_FAULT_MS, SessionFault};
use crate::limits::LimitCounters;
use crate::session;

type Shared = Arc<Hub>;

/// Verify a token, including the fault-injected expiry of a user's tokens.
fn verify(hub: &Hub, token: &str) -> Result<AuthUser, AuthError> {
    let user = verify_token(&hub.config.jwt_secret, token)?;
    if hub.is_revoked(&user) {
        return Err(AuthError::Expired);
    }
    Ok(user)
}

/// The caller of an authenticated endpoint, from `Authorization: Bearer <JWT>`.
pub(crate) struct Caller(AuthUser);

impl Caller {
    fn admin(self) -> Result<AuthUser, ApiError> {
        if self.0.admin {
            Ok(self.0)
        } else {
            Err(ApiError::Forbidden)
        }
    }
}

impl FromRequestParts<Shared> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, hub: &Shared) -> Result<Self, ApiError> {
        let checked = bearer_token(&parts.headers)
            .ok_or(AuthError::Missing)
            .and_then(|t| verify(hub, t));
        match checked {
            Ok(user) => Ok(Caller(user)),
            Err(e) => {
                Counters::bump(&hub.counters.auth_failures);
                tracing::info!(reason = %e, path = %parts.uri.path(), "refused HTTP request");
                Err(ApiError::Unauthorized(e))
            }
        }
    }
}

/// Every route, with CORS for web apps on other origins (Vite on :5173; see [`crate::cors`]).
pub(crate) fn router(hub: Shared) -> Router {
    let mut router = Router::new()
        .route("/ws", get(ws_upgrade))
        .route("/api/ws/health", get(health))
        .route("/metrics", get(metrics))
        .route("/api/ws/stats", get(stats))
        .route("/api/ws/notify", post(notify))
        .route("/api/ws/presence/{user_id}", get(presence))
        .route("/api/ws/following-online", get(following_online))
        .route("/api/ws/upload-progress", post(upload_progress))
        .route("/api/ws/announce", post(announce))
        .route("/api/ws/follow", post(follow))
        .route("/api/ws/pitches", post(pitch_owner))
        .route("/api/ws/dashboard", get(dashboard))
        .route("/api/ws/faults", get(faults).delete(clear_faults))
        .route("/api/ws/faults/{fault}", post(fault));
    if hub.config.dev_tokens_enabled() {
        router = router.route("/api/dev/token", post(dev_token));
    }
    let max_body = hub.config.limits.max_body_bytes;
    router
        .layer(axum::middleware::from_fn_with_state(
            hub.clone(),
            crate::body_limit::refuse_large_bodies,
        ))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn_with_state(
            hub.clone(),
            crate::cors::cors,
        ))
        .with_state(hub)
}

/// `GET /ws`: authenticate, then upgrade. A bad token gets 401 before any upgrade.
async fn ws_upgrade(
    State(hub): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if hub.is_shutting_down() {
        return ApiError::ShuttingDown.into_response();
    }
    if hub.refusing_connects() {
        return ApiError::Refusing.into_response();
    }
    let token = bearer_token(&headers).or_else(|| {
        query
            .get("token")
            .map(String::as_str)
            .filter(|t| !t.is_empty())
    });
    let user = match token.ok_or(AuthError::Missing) {
        Ok(t) => verify(&hub, t),
        Err(e) => Err(e),
    };
    let user = match user {
        Ok(user) => user,
        Err(e) => {
            Counters::bump(&hub.counters.auth_failures);
            tracing::info!(reason = %e, "refused WebSocket connection");
            return ApiError::Unauthorized(e).into_response();
        }
    };
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    let Some(slot) = hub.reserve_session(user.user_id) else {
        LimitCounters::bump(&hub.counters.limits.sessions_refused);
        tracing::info!(
            user = user.user_id,
            "refused a session over the per-user limit"
        );
        return ApiError::TooManySessions(hub.config.limits.max_sessions_per_user).into_response();
    };
    let resume_from = query.get("lastSeq").and_then(|s| s.parse::<u64>().ok());
    let max = hub.config.max_frame_bytes;
    let start = Box::new(session::Start {
        hub: hub.clone(),
        user,
        resume_from,
        slot,
    });
    ws.protocols([SUBPROTOCOL])
        // tungstenite's default is a 128 KiB read buffer per connection.
        .read_buffer_size(hub.config.read_buffer_bytes)
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| session::run(socket, *start))
}

/// `GET /api/ws/health` (no auth).
async fn health(State(hub): State<Shared>) -> Json<Value> {
    Json(hub.health())
}

/// `GET /metrics`: the stats counters as Prometheus text. Admin token, unless the server
/// runs with `--public-metrics` (for a scraper that cannot send one).
async fn metrics(
    State(hub): State<Shared>,
    caller: Result<Caller, ApiError>,
) -> Result<impl IntoResponse, ApiError> {
    if !hub.config.public_metrics {
        caller?.admin()?;
    }
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        hub.prometheus(),
    ))
}

/// `GET /api/ws/stats` (admin).
async fn stats(State(hub): State<Shared>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.admin()?;
    Ok(Json(hub.stats()))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NotifyBody {
    user_id: u64,
    notification: NewNotification,
}

/// `POST /api/ws/notify {userId, notification}` (any valid token, as in the seed). A
/// `system` notification needs an admin token; user tokens have a per-minute budget.
async fn notify(
    State(hub): State<Shared>,
    caller: Caller,
    body: Result<Json<NotifyBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(body) = body?;
    if !caller.0.admin {
        if body.notification.kind == "system" {
            return Err(ApiError::Forbidden);
        }
        if let Err(retry) = hub.notify_budget.take(caller.0.user_id) {
            LimitCounters::bump(&hub.counters.limits.notify_limited);
            // Whole seconds, rounded up: waiting that long finds the budget refilled.
            let secs = retry.as_secs() + u64::from(retry.subsec_nanos() > 0);
            return Err(ApiError::RateLimited(secs.max(1)));
        }
    }
    let (notification, d) = hub.notify(body.user_id, body.notification)?;
    hub.durable().wait().await?;
    Ok(Json(json!({
        "delivered": d.live > 0,
        "sessions": d.live,
        "queued": d.queued,
        "notification": notification,
    })))
}

/// `GET /api/ws/presence/{userId}`.
async fn presence(
    State(hub): State<Shared>,
    _caller: Caller,
    user: Result<Path<u64>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(user) = user?;
    // Several instances: Redis has everyone's presence; this instance's book when it is away.
    let shared = match hub.redis_link() {
        Some(link) => link.presence(user).await,
        None => None,
    };
    Ok(Json(json!(shared.unwrap_or_else(|| hub.presence(user)))))
}

/// `GET /api/ws/following-online`: the caller's followed users that are online or away.
async fn following_online(State(hub): State<Shared>, caller: Caller) -> Json<Value> {
    let shared = match hub.redis_link() {
        Some(link) => link.following_online(caller.0.user_id).await,
        None => None,
    };
    let users = shared.unwrap_or_else(|| hub.following_online(caller.0.user_id));
    Json(json!({ "userId": caller.0.user_id, "count": users.len(), "users": users }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UploadBody {
    /// Another user to send it to (admin only); the caller by default.
    #[serde(default)]
    user_id: Option<u64>,
    #[serde(flatten)]
    progress: UploadProgress,
}

/// `POST /api/ws/upload-progress` with the frame's data: to the caller's sessions.
async fn upload_progress(
    State(hub): State<Shared>,
    caller: Caller,
    body: Result<Json<UploadBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(body) = body?;
    let target = match body.user_id {
        Some(u) if u != caller.0.user_id => {
            caller.admin()?;
            u
        }
        _ => caller.0.user_id,
    };
    let d = hub.upload_progress(target, body.progress)?;
    hub.durable().wait().await?;
    Ok(Json(
        json!({ "delivered": d.live > 0, "sessions": d.live, "queued": d.queued }),
    ))
}

#[derive(Deserialize)]
struct AnnounceBody {
    title: String,
    #[serde(default)]
    message: String,
}

/// `POST /api/ws/announce {title, message}` (admin): a `system` notification to everyone connected.
async fn announce(
    State(hub): State<Shared>,
    caller: Caller,
    body: Result<Json<AnnounceBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    caller.admin()?;
    let Json(body) = body?;
    let announced = hub.announce(body.title, body.message)?;
    hub.durable().wait().await?;
    let Some(tally) = announced.tally else {
        return Ok(Json(json!({ "users": announced.users })));
    };
    // Backpressure: answered once every session has written the announcement before this
    // one (or given up on it). A caller that posts the next announcement after this answer
    // is paced by delivery, with at most two broadcasts queued in a session: its frames go
    // out two to a write, and none waits behind a backlog. A session stuck on a full socket
    // is dropped after its write timeout; the wait is bounded by the same.
    let previous = hub.follow_announcement(tally.clone());
    let paced = tokio::time::timeout(hub.config.write_timeout, async {
        if let Some(previous) = previous {
            previous.all_settled().await;
        }
    })
    .await
    .is_ok();
    Ok(Json(json!({
        "users": announced.users,
        "sessions": tally.sessions(),
        "delivered": tally.written(),
        "paced": paced,
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FollowBody {
    /// Who follows; the caller by default (someone else: admin only).
    #[serde(default)]
    follower_id: Option<u64>,
    /// Who is followed.
    user_id: u64,
}

/// `POST /api/ws/follow {userId, followerId?}`: seed the follow graph.
async fn follow(
    State(hub): State<Shared>,
    caller: Caller,
    body: Result<Json<FollowBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(body) = body?;
    let follower = match body.follower_id {
        Some(f) if f != caller.0.user_id => {
            caller.admin()?;
            f
        }
        _ => caller.0.user_id,
    };
    let new = hub.follow(follower, body.user_id)?;
    hub.durable().wait().await?;
    Ok(Json(
        json!({ "followerId": follower, "userId": body.user_id, "new": new }),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PitchBody {
    pitch_id: u64,
    owner_id: u64,
    #[serde(default)]
    views: u64,
}

/// `POST /api/ws/pitches {pitchId, ownerId, views?}` (admin): who owns a pitch.
async fn pitch_owner(
    State(hub): State<Shared>,
    caller: Caller,
    body: Result<Json<PitchBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    caller.admin()?;
    let Json(body) = body?;
    hub.set_pitch_owner(body.pitch_id, body.owner_id, body.views);
    Ok(Json(
        json!({ "pitchId": body.pitch_id, "ownerId": body.owner_id }),
    ))
}

/// `GET /api/ws/dashboard`: the caller's current metrics (what `dashboard_update` carries).
async fn dashboard(State(hub): State<Shared>, caller: Caller) -> Json<Value> {
    Json(json!({ "metrics": hub.dashboard_of(caller.0.user_id) }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DevTokenBody {
    user_id: u64,
    #[serde(default)]
    admin: bool,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    ttl_secs: Option<u64>,
}

/// Longest lifetime of a dev token: a week.
const MAX_DEV_TOKEN_TTL_SECS: u64 = 7 * 24 * 3600;

/// `POST /api/dev/token {userId, admin?, username?, ttlSecs?}` (only with `dev_tokens` and the
/// public demo secret, no auth): a token signed with this server's secret.
async fn dev_token(
    State(hub): State<Shared>,
    body: Result<Json<DevTokenBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(body) = body?;
    let ttl_secs = body.ttl_secs.unwrap_or(3600);
    if !(1..=MAX_DEV_TOKEN_TTL_SECS).contains(&ttl_secs) {
        return Err(ApiError::BadRequest(format!(
            "ttlSecs must be 1..={MAX_DEV_TOKEN_TTL_SECS} (one week)"
        )));
    }
    let ttl = Duration::from_secs(ttl_secs);
    let token = mint_named_token(
        &hub.config.jwt_secret,
        body.user_id,
        body.username.as_deref(),
        body.admin,
        ttl,
    )?;
    Ok(Json(json!({
        "token": token,
        "userId": body.user_id,
        "admin": body.admin,
        "expiresInSecs": ttl.as_secs(),
    })))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct FaultBody {
    /// Only this user's sessions; every session when absent.
    #[serde(default)]
    user_id: Option<u64>,
    /// How long, for `rate-limit`, `delay` and `refuse-connects`.
    #[serde(default)]
    ms: Option<u64>,
}

/// `POST /api/ws/faults/{fault}` (admin): fault injection for testing apps against a bad
/// network. `drop` (end connections without a close frame), `rate-limit` (`rate_limited` now
/// and every message refused for `ms`), `delay` (every frame delayed by `ms`; 0 turns it off),
/// `expire-token` (the user's tokens issued so far are refused, their sessions closed with
/// 4001), `refuse-connects` (upgrades get 503 for `ms`).
async fn fault(
    State(hub): State<Shared>,
    caller: Caller,
    Path(fault): Path<String>,
    body: Option<Json<FaultBody>>,
) -> Result<Json<Value>, ApiError> {
    caller.admin()?;
    let body = body.map(|Json(b)| b).unwrap_or_default();
    let ms = body.ms.unwrap_or(1000);
    if ms > MAX_FAULT_MS {
        return Err(ApiError::BadRequest(format!(
            "ms must be at most {MAX_FAULT_MS} (60 s)"
        )));
    }
    let ms = Duration::from_millis(ms);
    let sessions = match fault.as_str() {
        "drop" => hub.inject(body.user_id, SessionFault::Drop),
        "rate-limit" => hub.inject(body.user_id, SessionFault::Throttle(ms)),
        "delay" => hub.inject(body.user_id, SessionFault::Delay(ms)),
        "expire-token" => match body.user_id {
            Some(user) => {
                let (sessions, at_ms) = hub.expire_tokens(user);
                // Answer once the fault's millisecond is over: tokens of that millisecond
                // are refused (they may have been minted just before it), so one minted
                // after this answer must carry a later one. A few tries at most, in case
                // the wall clock is stepped back meanwhile.
                for _ in 0..5 {
                    if crate::time::unix_millis() > at_ms {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                sessions
            }
            None => return Err(ApiError::BadRequest("expire-token needs userId".into())),
        },
        "refuse-connects" => {
            hub.refuse_connects_for(ms);
            0
        }
        other => return Err(ApiError::BadRequest(format!("unknown fault `{other}`"))),
    };
    tracing::info!(fault, sessions, "fault injected");
    Ok(Json(json!({ "fault": fault, "sessions": sessions })))
}

/// `GET /api/ws/faults` (admin): the faults in force.
async fn faults(State(hub): State<Shared>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.admin()?;
    Ok(Json(hub.faults()))
}

/// `DELETE /api/ws/faults` (admin): end every fault in force.
async fn clear_faults(State(hub): State<Shared>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.admin()?;
    let sessions = hub.clear_faults();
    tracing::info!(sessions, "faults cleared");
    Ok(Json(json!({ "cleared": true, "sessions": sessions })))
}
