//! `--demo`: a few seeded users, pitches and follows, and a stream of realistic events so a
//! frontend developer sees the UI move without a backend.
//!
//! Users: 1 `ada` (a creator: owns pitches 42 and 43), 2 `grace` (an investor: owns 44),
//! 3 `linus`, 4 `margaret`. 2, 3 and 4 follow 1; 1 follows 2 and 3. Connect as user 1 to see
//! most of the traffic.

use std::sync::Arc;

use pitchey_realtime::protocol::{
    NewNotification, PresenceStatus, Typing, UploadProgress, UploadStatus,
};
use rand::Rng;
use rand::seq::IndexedRandom;
use serde_json::json;
use tokio::sync::watch;

use crate::hub::Hub;

/// The demo users: (id, username).
pub const DEMO_USERS: [(u64, &str); 4] = [(1, "ada"), (2, "grace"), (3, "linus"), (4, "margaret")];

/// The user whose token the banner prints.
pub const DEMO_MAIN_USER: u64 = 1;

/// Pitches: (id, owner, starting views).
const PITCHES: [(u64, u64, u64); 3] = [(42, 1, 1532), (43, 1, 310), (44, 2, 87)];

/// Load the fixture into the hub.
pub(crate) fn seed(hub: &Hub) {
    for (id, name) in DEMO_USERS {
        hub.set_username(id, name);
    }
    for (pitch, owner, views) in PITCHES {
        hub.set_pitch_owner(pitch, owner, views);
    }
    for (follower, followee) in [(2, 1), (3, 1), (4, 1), (1, 2), (1, 3)] {
        hub.follow_quietly(follower, followee);
    }
}

/// Emit one event every `config.demo_interval` until `stop` turns true.
pub(crate) async fn run(hub: Arc<Hub>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(hub.config.demo_interval);
    let mut upload_progress = 0.0_f64;
    let mut upload_n = 1_u32;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        // The RNG is not Send: keep it inside this non-async block.
        let event = rand::rng().random_range(0..6);
        match event {
            0 => notification(&hub),
            1 => presence(&hub),
            2 | 3 => view(&hub),
            4 => {
                upload_progress = (upload_progress + 20.0).min(100.0);
                let done = upload_progress >= 100.0;
                let total = 10_485_760_u64;
                let sent = hub.upload_progress(
                    DEMO_MAIN_USER,
                    UploadProgress {
                        upload_id: format!("u-{upload_n}"),
                        file_name: "deck.pdf".into(),
                        progress: upload_progress,
                        bytes_uploaded: Some((total as f64 * upload_progress / 100.0) as u64),
                        total_bytes: Some(total),
                        status: if done {
                            UploadStatus::Completed
                        } else {
                            UploadStatus::Uploading
                        },
                    },
                );
                if let Err(e) = sent {
                    tracing::error!(error = %e, "demo upload_progress not stored");
                }
                if done {
                    upload_progress = 0.0;
                    upload_n += 1;
                }
            }
            _ => {
                let (who, is_typing) = {
                    let mut rng = rand::rng();
                    (rng.random_range(2..=4), rng.random_bool(0.7))
                };
                hub.typing(
                    who,
                    Typing {
                        conversation_id: 42,
                        is_typing,
                    },
                );
                if rand::rng().random_bool(0.2) {
                    hub.add_investor_interest(DEMO_MAIN_USER, 1);
                }
            }
        }
    }
}

fn notification(hub: &Hub) {
    let n = {
        let mut rng = rand::rng();
        let options = [
            (
                "follow",
                "New follower",
                "margaret followed you",
                json!({"followerId": 4}),
            ),
            (
                "pitch_view",
                "Pitch viewed",
                "An investor viewed Night Train",
                json!({"pitchId": 42}),
            ),
            (
                "message",
                "New message",
                "grace: loved the deck!",
                json!({"conversationId": 42}),
            ),
        ];
        let i = rng.random_range(0..options.len());
        options.into_iter().nth(i)
    };
    if let Some((kind, title, message, data)) = n {
        let sent = hub.notify(
            DEMO_MAIN_USER,
            NewNotification {
                kind: kind.into(),
                title: title.into(),
                message: message.into(),
                data,
            },
        );
        if let Err(e) = sent {
            tracing::error!(error = %e, "demo notification not stored");
        }
    }
}

fn presence(hub: &Hub) {
    let (user, status) = {
        let mut rng = rand::rng();
        let user = rng.random_range(2..=4);
        let statuses = [
            PresenceStatus::Online,
            PresenceStatus::Away,
            PresenceStatus::Offline,
        ];
        (user, statuses.choose(&mut rng).copied())
    };
    // Leave real users alone: only move the bots nobody is connected as.
    if let (Some(status), false) = (status, hub.has_sessions(user)) {
        hub.set_presence(user, status);
    }
}

fn view(hub: &Hub) {
    let (viewer, pitch) = {
        let mut rng = rand::rng();
        let pitch = PITCHES.choose(&mut rng).map_or(42, |(id, _, _)| *id);
        (rng.random_range(2..=4), pitch)
    };
    hub.pitch_view(viewer, pitch);
}
