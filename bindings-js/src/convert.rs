//! Pure conversions between the SDK's Rust values and the JavaScript shapes of
//! [`types`](crate::types): error names, statuses, metrics, draft states, options. No JS
//! here, so all of it builds and is tested on the host.

use std::time::Duration;

use pitchey_realtime::client::ClientError;
use pitchey_realtime::core::{
    Config, ConfigError, ConflictStrategy, DraftOptions, Event, SendError, SendFailure, State,
};
use pitchey_realtime::protocol::{
    DashboardMetrics, Data, ErrorCode, Message as _, ServerFrame, ServerMessage,
};
use serde::Serialize;

use crate::types::{
    ClientOptions, ConflictResolution, ConnectionStatus, DraftEvent, DraftOpenOptions, ErrorInfo,
    LaggedInfo, Metrics, RealtimeErrorName as N, SendFailed, StateInfo, SubscriptionInfo,
};

/// An [`ErrorInfo`] with only a name and a message.
pub fn error_info(name: N, message: impl Into<String>) -> ErrorInfo {
    ErrorInfo {
        name,
        code: name,
        message: message.into(),
        id: None,
        server_code: None,
        channel: None,
    }
}

/// The name of a [`SendError`].
fn send_error_name(e: &SendError) -> N {
    match e {
        SendError::QueueFull { .. } => N::QueueFull,
        SendError::TooLarge { .. } | SendError::RefusedBefore { .. } => N::TooLarge,
        SendError::NotSendable { .. } => N::NotSendable,
        SendError::TooManySubscriptions { .. } => N::TooManySubscriptions,
        SendError::UnknownDraft(_) => N::UnknownDraft,
        SendError::NoConflict(_) => N::NoConflict,
        SendError::InvalidDraft(_) => N::InvalidDraft,
        _ => N::Unknown,
    }
}

/// The name (and, for a server rejection, the server's code) of a [`SendFailure`].
fn failure_name(f: &SendFailure) -> (N, Option<String>) {
    match f {
        SendFailure::Rejected(e) if e.code == ErrorCode::Unauthorized => {
            (N::Unauthorized, Some(e.code.as_str().to_owned()))
        }
        SendFailure::Rejected(e) => (N::Rejected, Some(e.code.as_str().to_owned())),
        SendFailure::TooManyAttempts => (N::TooManyAttempts, None),
        SendFailure::TooLarge { .. } | SendFailure::RefusedTooLarge { .. } => (N::TooLarge, None),
        SendFailure::DraftConflict => (N::DraftConflict, None),
        SendFailure::Expired => (N::Expired, None),
        _ => (N::Unknown, None),
    }
}

/// A failure of message `id` as an [`ErrorInfo`].
pub fn failure_info(id: &str, f: &SendFailure) -> ErrorInfo {
    let (name, server_code) = failure_name(f);
    ErrorInfo {
        id: Some(id.to_owned()),
        server_code,
        ..error_info(name, f.message())
    }
}

/// What a promise rejects with for a [`ClientError`].
pub fn client_error_info(e: &ClientError) -> ErrorInfo {
    match e {
        ClientError::Send(s) => error_info(send_error_name(s), e.message()),
        ClientError::Config(ConfigError::InvalidUrl { .. } | ConfigError::UnsupportedScheme(_)) => {
            error_info(N::InvalidUrl, e.message())
        }
        ClientError::Config(_) => error_info(N::InvalidArgument, e.message()),
        ClientError::Snapshot(_) => error_info(N::InvalidSnapshot, e.message()),
        ClientError::Failed(id, f) => failure_info(id.as_str(), f),
        ClientError::Stopped(State::AuthFailed { .. }) => error_info(N::AuthFailed, e.message()),
        ClientError::Stopped(_) | ClientError::DriverGone => error_info(N::Closed, e.message()),
        ClientError::Platform(_) => error_info(N::Platform, e.message()),
        ClientError::NotDurable(_) => error_info(N::NotDurable, e.message()),
        ClientError::Unconfirmed { id, .. } => ErrorInfo {
            id: Some(id.as_str().to_owned()),
            ..error_info(N::Unconfirmed, e.message())
        },
        _ => error_info(N::Unknown, e.message()),
    }
}

/// The status string of a [`State`].
pub fn status(state: &State) -> ConnectionStatus {
    match state {
        State::Idle => ConnectionStatus::Idle,
        State::Connecting => ConnectionStatus::Connecting,
        State::Connected => ConnectionStatus::Connected,
        State::Reconnecting { .. } => ConnectionStatus::Reconnecting,
        State::AwaitingToken => ConnectionStatus::AwaitingToken,
        State::AuthFailed { .. } => ConnectionStatus::AuthFailed,
        State::Closed => ConnectionStatus::Closed,
        // A state a newer SDK adds: on its way to one of the above.
        _ => ConnectionStatus::Connecting,
    }
}

/// The wire spelling of a [`ConnectionStatus`] (`client.status`).
pub fn status_str(status: ConnectionStatus) -> &'static str {
    match status {
        ConnectionStatus::Idle => "idle",
        ConnectionStatus::Connecting => "connecting",
        ConnectionStatus::Connected => "connected",
        ConnectionStatus::Reconnecting => "reconnecting",
        ConnectionStatus::AwaitingToken => "awaiting_token",
        ConnectionStatus::AuthFailed => "auth_failed",
        ConnectionStatus::Closed => "closed",
    }
}

/// What `on("state")` receives for a [`State`].
pub fn state_info(state: &State) -> StateInfo {
    let mut info = StateInfo {
        status: status(state),
        attempt: None,
        delay_ms: None,
        reason: None,
    };
    match state {
        State::Reconnecting { attempt, delay } => {
            info.attempt = Some(*attempt);
            info.delay_ms = Some(millis(*delay));
        }
        State::AuthFailed { reason } => info.reason = reason.clone(),
        _ => {}
    }
    info
}

/// A duration in (fractional) milliseconds.
pub fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

/// Milliseconds from JavaScript as a [`Duration`] (to the microsecond; a value beyond
/// half a million years is that); `None` for negative, NaN or infinite. Not
/// `Duration::from_secs_f64`, which panics on a value too large (a trap in the browser).
pub fn duration_ms(ms: f64) -> Option<Duration> {
    // `as` saturates.
    (ms.is_finite() && ms >= 0.0).then(|| Duration::from_micros((ms * 1_000.0) as u64))
}

/// A count from JavaScript (`queueSize`): a finite number of at least 1.
fn count(n: f64) -> Option<usize> {
    (n.is_finite() && n >= 1.0).then_some(n as usize)
}

/// A JS number as a `u64` version: finite, non-negative, whole.
pub fn version(n: f64) -> Option<u64> {
    (n.is_finite() && n >= 0.0 && n.fract() == 0.0).then_some(n as u64)
}

/// Apply [`ClientOptions`] (all but `url`, `token` and `tokenProvider`) to the core's
/// configuration. Errors name the first option that cannot work.
pub fn apply_options(options: &ClientOptions, config: &mut Config) -> Result<(), ErrorInfo> {
    let bad = |what: &str| error_info(N::InvalidArgument, ["invalid option ", what].concat());
    if let Some(b) = &options.backoff {
        if let Some(ms) = b.initial_ms {
            config.backoff.initial = duration_ms(ms).ok_or_else(|| bad("backoff.initialMs"))?;
        }
        if let Some(ms) = b.max_ms {
            config.backoff.max = duration_ms(ms).ok_or_else(|| bad("backoff.maxMs"))?;
        }
        if let Some(m) = b.multiplier {
            if !(m.is_finite() && m >= 1.0) {
                return Err(bad("backoff.multiplier (a number >= 1)"));
            }
            config.backoff.multiplier = m;
        }
    }
    if let Some(n) = options.queue_size {
        config.outbox_capacity = count(n).ok_or_else(|| bad("queueSize (a number >= 1)"))?;
    }
    if let Some(ms) = options.heartbeat_ms {
        config.heartbeat_interval = duration_ms(ms)
            .filter(|d| !d.is_zero())
            .ok_or_else(|| bad("heartbeatMs"))?;
    }
    Ok(())
}

/// The core's [`DraftOptions`] for [`DraftOpenOptions`].
pub fn draft_options(options: &DraftOpenOptions) -> Result<DraftOptions, ErrorInfo> {
    let mut out = DraftOptions::default();
    if let Some(ms) = options.auto_save_interval_ms {
        let interval = duration_ms(ms)
            .filter(|d| !d.is_zero())
            .ok_or_else(|| error_info(N::InvalidArgument, "invalid option autoSaveIntervalMs"))?;
        out = out.with_auto_save_interval(interval);
    }
    let strategy = match options.conflict_resolution.unwrap_or_default() {
        ConflictResolution::Local => ConflictStrategy::Local,
        ConflictResolution::Remote => ConflictStrategy::Remote,
        ConflictResolution::Merge => ConflictStrategy::Merge,
        ConflictResolution::Ask => ConflictStrategy::Ask,
    };
    Ok(out.with_strategy(strategy))
}

/// [`Metrics`] of the SDK as the JS shape.
pub fn metrics(m: &pitchey_realtime::core::Metrics) -> Metrics {
    // Counts as f64: JS numbers; exact up to 2^53.
    Metrics {
        queue_depth: m.queue_depth as f64,
        in_flight: m.in_flight as f64,
        tokens_left: f64::from(m.tokens_left),
        rtt_ms: m.rtt.map(millis),
        srtt_ms: m.srtt.map(millis),
        reconnects: m.reconnects as f64,
        connect_attempts: m.connect_attempts as f64,
        last_disconnect: m.last_disconnect.clone(),
        frames_sent: m.frames_sent as f64,
        frames_received: m.frames_received as f64,
        duplicates_dropped: m.duplicates_dropped as f64,
        invalid_frames: m.invalid_frames as f64,
    }
}

/// What an `on` handler receives, serialized by the caller straight into its JS value
/// (no `serde_json::Value` in between: one serializer in the package, not two).
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Payload<'a> {
    /// `state`.
    State(StateInfo),
    /// A message's `data` (what a handler of its type receives).
    Data(Data<'a, ServerMessage>),
    /// `dashboard_update`: its `metrics`.
    Metrics(&'a DashboardMetrics),
    /// `message`: the whole frame.
    Frame(&'a ServerFrame),
    /// `error`.
    Error(ErrorInfo),
    /// `send_failed`.
    SendFailed(SendFailed),
    /// `acked`: the message id.
    Id(&'a str),
    /// `subscription_active` / `subscription_failed`.
    Subscription(SubscriptionInfo),
    /// `lagged`.
    Lagged(LaggedInfo),
    /// `null` (`queue_full`, `token_needed`, `continuity_lost`).
    Null,
}

/// What `client.on` delivers for one event: `(event type, payload)`, in order.
/// Server messages go out twice: under `"message"` (the whole frame) and under their own
/// type (their `data`; `dashboard_update` its `metrics`).
pub fn deliveries(event: &Event) -> Vec<(&str, Payload<'_>)> {
    let mut out = Vec::new();
    match event {
        Event::StateChanged(state) => out.push(("state", Payload::State(state_info(state)))),
        Event::Message(frame) => {
            if let ServerMessage::Error(e) = &frame.message {
                let info = ErrorInfo {
                    id: e.id.clone(),
                    server_code: Some(e.code.as_str().to_owned()),
                    ..error_info(
                        if e.code == ErrorCode::Unauthorized {
                            N::Unauthorized
                        } else {
                            N::Rejected
                        },
                        e.message.clone(),
                    )
                };
                out.push(("error", Payload::Error(info)));
            } else {
                out.push((frame.message.kind(), message_payload(&frame.message)));
            }
            out.push(("message", Payload::Frame(frame)));
        }
        Event::Acked(id) => out.push(("acked", Payload::Id(id.as_str()))),
        Event::SendFailed(id, why) => {
            let info = failure_info(id.as_str(), why);
            let failed = SendFailed {
                id: id.as_str().to_owned(),
                error: info.clone(),
            };
            out.push(("send_failed", Payload::SendFailed(failed)));
            out.push(("error", Payload::Error(info)));
        }
        Event::QueueFull => out.push(("queue_full", Payload::Null)),
        Event::TokenNeeded => out.push(("token_needed", Payload::Null)),
        Event::ContinuityLost => out.push(("continuity_lost", Payload::Null)),
        Event::SubscriptionActive { channel } => {
            let info = SubscriptionInfo {
                channel: channel.name(),
                code: None,
                message: None,
            };
            out.push(("subscription_active", Payload::Subscription(info)));
        }
        Event::SubscriptionFailed {
            channel,
            code,
            message,
        } => {
            let info = SubscriptionInfo {
                channel: channel.name(),
                code: Some(code.as_str().to_owned()),
                message: Some(message.clone()),
            };
            out.push(("subscription_failed", Payload::Subscription(info)));
            let err = ErrorInfo {
                server_code: Some(code.as_str().to_owned()),
                channel: Some(channel.name()),
                ..error_info(N::Rejected, message.clone())
            };
            out.push(("error", Payload::Error(err)));
        }
        // Draft events go to the draft handles (`draft.on`).
        _ => {}
    }
    out
}

/// What a handler of a message type receives: the message's `data`
/// (`dashboard_update`: its `metrics`).
pub fn message_payload(message: &ServerMessage) -> Payload<'_> {
    match message {
        ServerMessage::DashboardUpdate(d) => Payload::Metrics(&d.metrics),
        other => Payload::Data(Data(other)),
    }
}

/// The `lagged` delivery for `missed` skipped events.
pub fn lagged(missed: u64) -> (&'static str, Payload<'static>) {
    let info = LaggedInfo {
        missed: missed as f64,
    };
    ("lagged", Payload::Lagged(info))
}

/// What `draft.on` receives for a draft event of the SDK (`None` for other events).
pub fn draft_event(event: &Event) -> Option<DraftEvent> {
    Some(match event {
        Event::DraftSaved { version, .. } => DraftEvent::Saved { version: *version },
        Event::DraftUpdated {
            content, version, ..
        } => DraftEvent::Updated {
            content: content.clone(),
            version: *version,
        },
        Event::DraftConflict {
            base,
            local,
            remote,
            remote_version,
            ..
        } => DraftEvent::Conflict {
            base: base.clone(),
            local: local.clone(),
            remote: remote.clone(),
            remote_version: *remote_version,
        },
        Event::DraftSaveFailed { reason, .. } => {
            let (name, _) = failure_name(reason);
            DraftEvent::SaveFailed {
                name: name.as_str().to_owned(),
                message: reason.message(),
            }
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pitchey_realtime::core::MessageId;
    use pitchey_realtime::protocol::ErrorData;

    #[test]
    fn milliseconds_from_js_never_panic() {
        assert_eq!(duration_ms(1.5), Some(Duration::from_micros(1_500)));
        assert_eq!(duration_ms(0.0), Some(Duration::ZERO));
        // Far too large for `Duration::from_secs_f64`: saturated, not a panic.
        assert_eq!(duration_ms(1e300), Some(Duration::from_micros(u64::MAX)));
        for bad in [-1.0, f64::NAN, f64::INFINITY] {
            assert_eq!(duration_ms(bad), None);
        }
    }

    #[test]
    fn errors_get_their_names() {
        let full = ClientError::Send(SendError::QueueFull { capacity: 2 });
        assert_eq!(client_error_info(&full).name, N::QueueFull);
        let big = ClientError::Send(SendError::TooLarge { size: 9, max: 1 });
        assert_eq!(client_error_info(&big).name, N::TooLarge);
        let url = ClientError::Config(ConfigError::UnsupportedScheme("http".into()));
        assert_eq!(client_error_info(&url).name, N::InvalidUrl);
        let auth = ClientError::Stopped(State::AuthFailed { reason: None });
        assert_eq!(client_error_info(&auth).name, N::AuthFailed);
        assert_eq!(client_error_info(&ClientError::DriverGone).name, N::Closed);
        let rejected = ClientError::Failed(
            MessageId::new("c-1"),
            SendFailure::Rejected(ErrorData {
                code: ErrorCode::Forbidden,
                message: "no".into(),
                retry_after_ms: None,
                id: Some("c-1".into()),
            }),
        );
        let info = client_error_info(&rejected);
        assert_eq!(info.name, N::Rejected);
        assert_eq!(info.server_code.as_deref(), Some("forbidden"));
        assert_eq!(info.id.as_deref(), Some("c-1"));
    }

    #[test]
    fn options_apply_and_refuse_nonsense() {
        let mut config = Config::new("ws://x/ws");
        let mut options = ClientOptions {
            url: "ws://x/ws".into(),
            queue_size: Some(2.0),
            heartbeat_ms: Some(1500.0),
            backoff: Some(crate::types::BackoffOptions {
                initial_ms: Some(100.0),
                max_ms: Some(1000.0),
                multiplier: Some(3.0),
            }),
            ..Default::default()
        };
        apply_options(&options, &mut config).unwrap();
        assert_eq!(config.outbox_capacity, 2);
        assert_eq!(config.heartbeat_interval, Duration::from_millis(1500));
        assert_eq!(config.backoff.initial, Duration::from_millis(100));
        assert_eq!(config.backoff.multiplier, 3.0);
        options.queue_size = Some(f64::NAN);
        assert_eq!(
            apply_options(&options, &mut config).unwrap_err().name,
            N::InvalidArgument
        );
    }

    #[test]
    fn statuses_are_the_documented_strings() {
        let s = |st: State| status_str(status(&st));
        assert_eq!(s(State::Idle), "idle");
        assert_eq!(s(State::AwaitingToken), "awaiting_token");
        assert_eq!(s(State::AuthFailed { reason: None }), "auth_failed");
        for st in [ConnectionStatus::Reconnecting, ConnectionStatus::Closed] {
            assert_eq!(
                serde_json::to_value(st).unwrap(),
                serde_json::json!(status_str(st))
            );
        }
    }

    #[test]
    fn messages_are_delivered_by_type_and_as_frames() {
        let frame = pitchey_realtime::protocol::ServerFrame::decode(
            r#"{"type":"dashboard_update","data":{"metrics":{"totalViews":3,"x":1}},"seq":1}"#,
        )
        .unwrap();
        let event = Event::Message(frame);
        let out = deliveries(&event);
        let json = |p: &Payload<'_>| serde_json::to_value(p).unwrap();
        assert_eq!(out[0].0, "dashboard_update");
        assert_eq!(json(&out[0].1)["totalViews"], 3);
        assert_eq!(json(&out[0].1)["x"], 1);
        assert_eq!(out[1].0, "message");
        assert_eq!(json(&out[1].1)["seq"], 1);
        assert_eq!(json(&out[1].1)["type"], "dashboard_update");

        let frame = pitchey_realtime::protocol::ServerFrame::decode(
            r#"{"type":"pitch_stats_update","data":{"pitchId":4,"viewCount":2}}"#,
        )
        .unwrap();
        let payload = json(&message_payload(&frame.message));
        assert_eq!(payload["pitchId"], 4);
        assert_eq!(payload["recentViewers"], serde_json::json!([]));
        for event in [Event::QueueFull, Event::Acked(MessageId::new("c-1"))] {
            let out = deliveries(&event);
            assert_eq!(out.len(), 1);
            assert!(matches!(
                json(&out[0].1),
                serde_json::Value::Null | serde_json::Value::String(_)
            ));
        }
        assert_eq!(json(&lagged(3).1)["missed"], 3.0);
    }
}
