//! Round-trip tests of the wire types against frames written out by hand from PROTOCOL.md
//! and the seed documents: decode, check the fields an app reads, encode, compare as JSON.

use pitchey_realtime::protocol::*;
use serde_json::{Value, json};

fn json(text: &str) -> Value {
    serde_json::from_str(text).expect("test fixture is valid JSON")
}

/// Decodes `text` as a server frame and checks that encoding gives the same JSON back.
fn server_roundtrip(text: &str) -> ServerFrame {
    let frame = ServerFrame::decode(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    assert_eq!(
        json(&frame.encode()),
        json(text),
        "re-encoded server frame differs"
    );
    frame
}

fn client_roundtrip(text: &str) -> ClientFrame {
    let frame = ClientFrame::decode(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    assert_eq!(
        json(&frame.encode()),
        json(text),
        "re-encoded client frame differs"
    );
    frame
}

#[test]
fn connected_with_additions() {
    let f = server_roundtrip(
        r#"{"type":"connected","data":{"sessionId":"s-8f2c","userId":7,"protocol":"pitchey-v1","heartbeatMs":30000,
        "rateLimit":{"maxMessages":120,"windowMs":60000,"refillRate":2.0},
        "features":["ack","seq","resume","subscribe","draft_conflict"],"resumed":false}}"#,
    );
    let ServerMessage::Connected(c) = f.message else {
        panic!("not connected: {f:?}")
    };
    assert_eq!(c.session_id, "s-8f2c");
    assert_eq!(c.user_id, Some(7));
    assert_eq!(c.heartbeat_ms, Some(30_000));
    assert_eq!(c.rate_limit, Some(RateLimit::default()));
    assert_eq!(c.resumed, Some(false));
    for feature in Feature::ALL {
        assert!(c.supports(feature), "{feature:?}");
    }
}

#[test]
fn seed_connected_without_additions() {
    // A seed backend sends only sessionId and userId: every addition must be optional.
    let f = server_roundtrip(
        r#"{"type":"connected","data":{"sessionId":"abc","userId":1,"features":[]}}"#,
    );
    let ServerMessage::Connected(c) = f.message else {
        panic!("not connected")
    };
    assert!(!c.supports(Feature::Ack));
    assert_eq!(c.rate_limit, None);
    assert_eq!(c.heartbeat_ms, None);
    // And a frame with no `features` at all.
    let f = ServerFrame::decode(r#"{"type":"connected","data":{"sessionId":"abc","userId":1}}"#)
        .unwrap();
    assert!(matches!(f.message, ServerMessage::Connected(c) if c.features.is_empty()));
}

#[test]
fn heartbeat_both_ways() {
    let f = client_roundtrip(r#"{"type":"ping","data":{"ts":1763900000000}}"#);
    assert_eq!(
        f.message,
        ClientMessage::Ping(Heartbeat {
            ts: Some(1_763_900_000_000)
        })
    );
    let f = server_roundtrip(r#"{"type":"pong","data":{"ts":1763900000000}}"#);
    assert_eq!(
        f.message,
        ServerMessage::Pong(Heartbeat {
            ts: Some(1_763_900_000_000)
        })
    );
    // A bare ping without data is valid.
    let f = ClientFrame::decode(r#"{"type":"ping"}"#).unwrap();
    assert_eq!(f.message, ClientMessage::Ping(Heartbeat::default()));
    let f = ServerFrame::decode(r#"{"type":"ping","data":null}"#).unwrap();
    assert_eq!(f.message, ServerMessage::Ping(Heartbeat::default()));
}

#[test]
fn ack_and_errors() {
    let f = server_roundtrip(r#"{"type":"ack","data":{"id":"c-01J9Z3"}}"#);
    assert_eq!(
        f.message,
        ServerMessage::Ack(Ack {
            id: "c-01J9Z3".into(),
            version: None
        })
    );
    let f = server_roundtrip(r#"{"type":"ack","data":{"id":"c-9","version":4}}"#);
    assert!(matches!(
        f.message,
        ServerMessage::Ack(Ack {
            version: Some(4),
            ..
        })
    ));

    let f = server_roundtrip(
        r#"{"type":"error","data":{"code":"rate_limited","message":"120 messages per 60 s","retryAfterMs":1500,"id":"c-01J9Z4"}}"#,
    );
    let ServerMessage::Error(e) = f.message else {
        panic!()
    };
    assert_eq!(e.code, ErrorCode::RateLimited);
    assert_eq!(e.retry_after_ms, Some(1500));
    assert_eq!(e.id.as_deref(), Some("c-01J9Z4"));

    let f = server_roundtrip(
        r#"{"type":"error","data":{"code":"invalid_message","message":"data.pitchId must be a number","id":"c-01J9Z5"}}"#,
    );
    assert!(matches!(
        f.message,
        ServerMessage::Error(ErrorData {
            code: ErrorCode::InvalidMessage,
            ..
        })
    ));
}

#[test]
fn every_error_code_round_trips_and_unknown_codes_survive() {
    for code in [
        "invalid_message",
        "unknown_type",
        "rate_limited",
        "too_large",
        "unauthorized",
        "forbidden",
        "not_found",
        "internal",
        "teapot",
    ] {
        let parsed = ErrorCode::from(code.to_owned());
        assert_eq!(parsed.as_str(), code);
    }
    assert_eq!(
        ErrorCode::from("teapot".to_owned()),
        ErrorCode::Other("teapot".into())
    );
}

#[test]
fn close_codes() {
    for (n, c) in [
        (1000, CloseCode::Normal),
        (1001, CloseCode::GoingAway),
        (1009, CloseCode::MessageTooBig),
        (4001, CloseCode::Unauthorized),
        (4003, CloseCode::Forbidden),
        (4008, CloseCode::PolicyViolation),
        (4009, CloseCode::TooLarge),
        (4999, CloseCode::Other(4999)),
    ] {
        assert_eq!(CloseCode::from(n), c);
        assert_eq!(u16::from(c), n);
    }
    assert!(CloseCode::Unauthorized.needs_new_token());
    assert!(!CloseCode::GoingAway.needs_new_token());
}

#[test]
fn subscriptions_and_resume() {
    let f = client_roundtrip(r#"{"type":"subscribe","id":"c-1","data":{"channel":"pitch:42"}}"#);
    assert_eq!(f.id.as_deref(), Some("c-1"));
    assert_eq!(
        f.message,
        ClientMessage::Subscribe(ChannelRef {
            channel: Channel::Pitch(42)
        })
    );
    let f = client_roundtrip(r#"{"type":"unsubscribe","id":"c-2","data":{"channel":"pitch:42"}}"#);
    assert!(matches!(f.message, ClientMessage::Unsubscribe(_)));
    let f = client_roundtrip(r#"{"type":"resume","data":{"lastSeq":1187}}"#);
    assert_eq!(f.message, ClientMessage::Resume(Resume { last_seq: 1187 }));
}

#[test]
fn channels_parse_and_print() {
    for (text, channel) in [
        ("notifications", Channel::Notifications),
        ("dashboard", Channel::Dashboard),
        ("uploads", Channel::Uploads),
        ("pitch:42", Channel::Pitch(42)),
        ("presence:3", Channel::Presence(3)),
        ("conversation:12", Channel::Conversation(12)),
        ("draft:pitch_42", Channel::Draft("pitch_42".into())),
        // Split at the first `:`: a draft id may hold more.
        ("draft:a:b", Channel::Draft("a:b".into())),
    ] {
        assert_eq!(text.parse::<Channel>(), Ok(channel.clone()));
        assert_eq!(channel.to_string(), text);
    }
    for bad in [
        "",
        "pitch:",
        "pitch:x",
        "pitch:-1",
        "draft:",
        "weather",
        "presence:1:2",
        ":1",
        "pitch",
    ] {
        assert!(bad.parse::<Channel>().is_err(), "{bad} should not parse");
    }
    // A bad channel inside a frame is an InvalidData error naming the type.
    let err =
        ClientFrame::decode(r#"{"type":"subscribe","data":{"channel":"weather"}}"#).unwrap_err();
    assert!(
        matches!(&err, ProtocolError::InvalidData { kind, .. } if kind == "subscribe"),
        "{err}"
    );
}

#[test]
fn notification_from_seed() {
    let f = server_roundtrip(
        r#"{"type":"notification","seq":1188,"data":{"id":"n-553","type":"follow","title":"New follower",
        "message":"Ada followed you","data":{"followerId":3},"createdAt":"2026-11-23T10:15:00Z","read":false}}"#,
    );
    assert_eq!(f.seq, Some(1188));
    let ServerMessage::Notification(n) = f.message else {
        panic!()
    };
    assert_eq!(n.kind, "follow");
    assert_eq!(n.data, json!({"followerId": 3}));
    assert_eq!(n.created_at.as_deref(), Some("2026-11-23T10:15:00Z"));

    // The body of POST /api/ws/notify.
    let body: NewNotification = serde_json::from_str(
        r#"{"type":"follow","title":"New follower","message":"Ada followed you","data":{"followerId":3}}"#,
    )
    .unwrap();
    assert_eq!(body.kind, "follow");
}

#[test]
fn dashboard_keeps_unknown_metrics() {
    let f = server_roundtrip(
        r#"{"type":"dashboard_update","seq":1189,"data":{"metrics":{"totalViews":1532,"followers":88,"pitches":4,"investorInterest":6,"ndaRequests":2}}}"#,
    );
    let ServerMessage::DashboardUpdate(d) = f.message else {
        panic!()
    };
    assert_eq!(d.metrics.total_views, 1532);
    assert_eq!(d.metrics.investor_interest, 6);
    assert_eq!(d.metrics.other.get("ndaRequests"), Some(&json!(2)));
}

#[test]
fn pitch_views_and_stats() {
    let f = client_roundtrip(r#"{"type":"pitch_view","id":"c-3","data":{"pitchId":42}}"#);
    assert_eq!(
        f.message,
        ClientMessage::PitchView(PitchView { pitch_id: 42 })
    );
    let f = server_roundtrip(
        r#"{"type":"pitch_stats_update","data":{"pitchId":42,"viewCount":1533,"uniqueViewers":610,
        "recentViewers":[{"userId":3,"username":"ada","viewedAt":"2026-11-23T10:16:00Z"}]}}"#,
    );
    let ServerMessage::PitchStatsUpdate(s) = f.message else {
        panic!()
    };
    assert_eq!(
        (s.pitch_id, s.view_count, s.unique_viewers),
        (42, 1533, 610)
    );
    assert_eq!(s.recent_viewers[0].username.as_deref(), Some("ada"));
}

#[test]
fn presence_each_direction() {
    let f = client_roundtrip(r#"{"type":"presence_update","data":{"status":"away"}}"#);
    assert_eq!(
        f.message,
        ClientMessage::SetPresence(SetPresence {
            status: PresenceStatus::Away
        })
    );
    let f = server_roundtrip(
        r#"{"type":"presence_update","data":{"userId":3,"status":"online","lastSeen":"2026-11-23T10:16:00Z"}}"#,
    );
    let ServerMessage::PresenceUpdate(p) = f.message else {
        panic!()
    };
    assert_eq!((p.user_id, p.status), (3, PresenceStatus::Online));
    let err = ClientFrame::decode(r#"{"type":"presence_update","data":{"status":"asleep"}}"#)
        .unwrap_err();
    assert!(err.to_string().contains("presence_update"), "{err}");
}

#[test]
fn typing_accepts_both_names() {
    let f = client_roundtrip(r#"{"type":"typing","data":{"conversationId":12,"isTyping":true}}"#);
    assert_eq!(
        f.message,
        ClientMessage::Typing(Typing {
            conversation_id: 12,
            is_typing: true
        })
    );
    let f = ClientFrame::decode(
        r#"{"type":"user_typing","data":{"conversationId":12,"isTyping":false}}"#,
    )
    .unwrap();
    assert!(matches!(
        f.message,
        ClientMessage::Typing(Typing {
            is_typing: false,
            ..
        })
    ));

    let text = r#"{"type":"user_typing","data":{"conversationId":12,"userId":3,"username":"ada","isTyping":true}}"#;
    let f = server_roundtrip(text);
    assert!(matches!(
        f.message,
        ServerMessage::UserTyping(UserTyping { user_id: 3, .. })
    ));
    // The frontend guide's name decodes to the same message.
    let f = ServerFrame::decode(&text.replace("user_typing", "typing")).unwrap();
    assert!(matches!(
        f.message,
        ServerMessage::UserTyping(UserTyping { user_id: 3, .. })
    ));
}

#[test]
fn upload_progress() {
    let f = server_roundtrip(
        r#"{"type":"upload_progress","data":{"uploadId":"u-77","fileName":"deck.pdf","progress":42.0,
        "bytesUploaded":4404019,"totalBytes":10485760,"status":"uploading"}}"#,
    );
    let ServerMessage::UploadProgress(u) = f.message else {
        panic!()
    };
    assert_eq!(u.status, UploadStatus::Uploading);
    assert_eq!(u.progress, 42.0);
    // Integer progress, as a JS server writes it, decodes too.
    let f = ServerFrame::decode(
        r#"{"type":"upload_progress","data":{"uploadId":"u","fileName":"f","progress":100,"status":"completed"}}"#,
    )
    .unwrap();
    assert!(matches!(
        f.message,
        ServerMessage::UploadProgress(UploadProgress {
            status: UploadStatus::Completed,
            ..
        })
    ));
}

#[test]
fn drafts_each_direction_and_conflict() {
    let f = client_roundtrip(
        r#"{"type":"draft_sync","id":"c-9","data":{"draftId":"pitch_42","draftType":"pitch",
        "content":{"title":"Night Train","logline":"..."},"baseVersion":3}}"#,
    );
    let ClientMessage::DraftSync(d) = f.message else {
        panic!()
    };
    assert_eq!((d.draft_id.as_str(), d.base_version), ("pitch_42", Some(3)));

    let f = server_roundtrip(
        r#"{"type":"draft_sync","data":{"draftId":"pitch_42","draftType":"pitch","content":{"title":"Night Train","logline":"..."},
        "version":4,"updatedAt":"2026-11-23T10:17:00Z","sessionId":"s-8f2c"}}"#,
    );
    let ServerMessage::DraftSync(d) = f.message else {
        panic!()
    };
    assert_eq!(d.version, Some(4));
    assert_eq!(d.session_id.as_deref(), Some("s-8f2c"));

    let f = server_roundtrip(
        r#"{"type":"draft_conflict","data":{"draftId":"pitch_42","baseVersion":3,"serverVersion":4,
        "serverContent":{"title":"Night Train (v2)","logline":"..."}}}"#,
    );
    let ServerMessage::DraftConflict(c) = f.message else {
        panic!()
    };
    assert_eq!(c.server_version, 4);
    assert_eq!(c.server_content["title"], "Night Train (v2)");

    // A seed client sends no baseVersion.
    let f = ClientFrame::decode(r#"{"type":"draft_sync","data":{"draftId":"d","content":"text"}}"#)
        .unwrap();
    assert!(matches!(
        f.message,
        ClientMessage::DraftSync(DraftSave {
            base_version: None,
            ..
        })
    ));
}

#[test]
fn disconnected() {
    let f = server_roundtrip(r#"{"type":"disconnected","data":{"reason":"server shutting down"}}"#);
    assert_eq!(
        f.message,
        ServerMessage::Disconnected(Disconnected {
            reason: "server shutting down".into()
        })
    );
}

#[test]
fn unknown_types_pass_through_unchanged() {
    let text = r#"{"type":"nda_signed","data":{"ndaId":9,"nested":[1,2,{"a":null}]},"seq":5}"#;
    let f = server_roundtrip(text);
    assert_eq!(
        f.message,
        ServerMessage::Unknown {
            kind: "nda_signed".into(),
            data: json!({"ndaId":9,"nested":[1,2,{"a":null}]})
        }
    );
    let f = client_roundtrip(r#"{"type":"chat_message","id":"c-7","data":{"text":"hi"}}"#);
    assert!(matches!(f.message, ClientMessage::Unknown { ref kind, .. } if kind == "chat_message"));
    // An unknown type with no data at all.
    let f = ServerFrame::decode(r#"{"type":"shrug"}"#).unwrap();
    assert_eq!(
        f.message,
        ServerMessage::Unknown {
            kind: "shrug".into(),
            data: Value::Null
        }
    );
}

#[test]
fn unknown_fields_are_ignored() {
    let f = ServerFrame::decode(
        r#"{"type":"pong","data":{"ts":1,"serverTime":2},"extra":true,"timestamp":"2026-01-01"}"#,
    )
    .unwrap();
    assert_eq!(f.message, ServerMessage::Pong(Heartbeat { ts: Some(1) }));
}

#[test]
fn malformed_frames_are_clear_errors() {
    for text in [
        "",
        "not json",
        "[]",
        "42",
        r#"{"data":{}}"#,
        r#"{"type":7}"#,
        r#"{"type":"ping","seq":"x"}"#,
    ] {
        let err = ServerFrame::decode(text).expect_err(text);
        assert!(
            matches!(err, ProtocolError::Malformed(_)),
            "{text}: {err:?}"
        );
    }
}

#[test]
fn wrong_field_types_name_the_message_and_field() {
    let err = ClientFrame::decode(r#"{"type":"pitch_view","data":{"pitchId":"42"}}"#).unwrap_err();
    let ProtocolError::InvalidData { kind, message } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(kind, "pitch_view");
    assert!(message.contains("invalid type"), "{message}");
    let err = ClientFrame::decode(r#"{"type":"pitch_view","data":{}}"#).unwrap_err();
    assert!(err.to_string().contains("pitchId"), "{err}");
    // No position noise ("at line 1 column 9") in a message meant for people.
    assert!(!err.to_string().contains("line 1"), "{err}");
}

#[test]
fn envelope_fields_encode_only_when_set() {
    let plain = ClientFrame::new(ClientMessage::Ping(Heartbeat::default())).encode();
    assert_eq!(json(&plain), json!({"type":"ping","data":{}}));
    let full = ServerFrame::new(ServerMessage::Pong(Heartbeat { ts: Some(3) }))
        .with_id("x")
        .with_seq(9)
        .encode();
    assert_eq!(
        json(&full),
        json!({"type":"pong","data":{"ts":3},"id":"x","seq":9})
    );
}

#[test]
fn server_messages_route_to_their_channel() {
    let cases = [
        (
            r#"{"type":"notification","data":{"id":"n","type":"system","title":"t"}}"#,
            Some(Channel::Notifications),
        ),
        (
            r#"{"type":"dashboard_update","data":{"metrics":{}}}"#,
            Some(Channel::Dashboard),
        ),
        (
            r#"{"type":"upload_progress","data":{"uploadId":"u","fileName":"f","progress":1,"status":"uploading"}}"#,
            Some(Channel::Uploads),
        ),
        (
            r#"{"type":"pitch_stats_update","data":{"pitchId":42,"viewCount":1}}"#,
            Some(Channel::Pitch(42)),
        ),
        (
            r#"{"type":"presence_update","data":{"userId":3,"status":"away"}}"#,
            Some(Channel::Presence(3)),
        ),
        (
            r#"{"type":"user_typing","data":{"conversationId":12,"userId":3,"isTyping":true}}"#,
            Some(Channel::Conversation(12)),
        ),
        (
            r#"{"type":"draft_sync","data":{"draftId":"d1","content":{}}}"#,
            Some(Channel::Draft("d1".into())),
        ),
        (r#"{"type":"pong","data":{}}"#, None),
        (r#"{"type":"mystery","data":{}}"#, None),
    ];
    for (text, channel) in cases {
        assert_eq!(
            ServerFrame::decode(text).unwrap().message.channel(),
            channel,
            "{text}"
        );
    }
}

#[test]
fn a_float_decoded_and_encoded_again_keeps_its_value() {
    // serde_json's default float parser is not correctly rounded: this number came back one
    // bit off after a round trip (found by fuzz/, target server_decode).
    let text = r#"{"type":"upload_progress","data":{"uploadId":"u","fileName":"f","progress":184.6744073704775807,"status":"uploading"}}"#;
    let frame = ServerFrame::decode(text).expect("decodes");
    assert_eq!(
        ServerFrame::decode(&frame.encode()).expect("decodes"),
        frame
    );
}
