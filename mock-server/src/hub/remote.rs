//! The hub's side of several instances (`--redis-url`, see [`crate::redis_link`]).
//!
//! Without a link every method here takes the single-process path (`*_here` in the hub).
//! With one, events that other instances must see are handed to the link, and this instance
//! delivers them only when they come back from Redis ([`Hub::remote_receive`]), like every
//! other instance: each session then gets each event once, in Redis's order. When Redis is
//! unreachable the link hands the command back ([`Hub::remote_fallback`]) and it is applied
//! here alone.

use std::collections::HashSet;
use std::time::Instant;

use pitchey_realtime::protocol::{
    Channel, DraftConflict, DraftSave, DraftSynced, PitchStats, PresenceStatus, RecentViewer,
    ServerFrame, ServerMessage, Typing, UserTyping,
};

use super::{Delivery, DraftError, DraftOutcome, Hub, HubState, SessionKey, encode};
use crate::drafts::Draft;
use crate::redis_link::{
    Cmd, DraftRequest, Envelope, Event, LinkHost, PresenceChange, RedisLink, RedisStatus,
    SharedDraft,
};
use crate::store::{Applied, Durability, LoggedFrame, QueuedFrame, StoreError};
use crate::time::{now_iso, unix_secs};

/// A gap larger than this between Redis's seq and ours is not walked one by one (a new
/// instance joining long-lived users); our counter only matters while Redis is away.
const MAX_SEQ_CATCH_UP: u64 = 10_000;

impl LinkHost for Hub {
    fn receive(&self, payload: &str) {
        self.remote_receive(payload);
    }

    fn apply_alone(&self, cmd: Cmd) {
        self.remote_fallback(cmd);
    }

    fn last_seq(&self, user: u64) -> u64 {
        self.lock().store.last_seq(user)
    }

    fn local_snapshot(&self) -> (HashSet<u64>, Vec<(u64, u64)>) {
        let st = self.lock();
        (
            st.by_user.keys().copied().collect(),
            st.presence.follows().collect(),
        )
    }

    fn queue_trimmed(&self, user: u64, dropped: u64, for_bytes: u64) {
        tracing::debug!(user, dropped, for_bytes, "redis offline queue trimmed");
        self.counters
            .offline_dropped
            .fetch_add(dropped, std::sync::atomic::Ordering::Relaxed);
        self.counters
            .limits
            .redis_queue_bytes
            .fetch_add(for_bytes, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Redis offline-queue entries (publications of `durable` events) as queued frames.
pub(crate) fn queued_frames(envelopes: Vec<Envelope>, seed_mode: bool) -> Vec<QueuedFrame> {
    envelopes
        .into_iter()
        .filter_map(|env| match env.event {
            Event::Durable { frame, seq, .. } => {
                let frame = ServerFrame::decode(&frame).ok()?;
                let frame = if seed_mode {
                    frame
                } else {
                    frame.with_seq(seq)
                };
                Some(QueuedFrame {
                    seq: (!seed_mode).then_some(seq),
                    text: frame.encode().into(),
                })
            }
            _ => None,
        })
        .collect()
}

impl Hub {
    /// The Redis link, when `--redis-url` is set.
    pub(crate) fn redis_link(&self) -> Option<&RedisLink> {
        self.redis.get().map(|l| &**l)
    }

    /// Attach the Redis link (once, at start).
    pub(crate) fn attach_redis(&self, link: std::sync::Arc<RedisLink>) {
        let _ = self.redis.set(link);
    }

    /// `disabled`, `up` or `down`.
    pub(crate) fn redis_status(&self) -> RedisStatus {
        self.redis_link()
            .map_or(RedisStatus::Disabled, RedisLink::status)
    }

    // ---- seams: single process, or through Redis ------------------------------------------

    /// A durable message for `user`. Through Redis it is numbered there and delivered on
    /// receipt; the returned `live` counts this instance's sessions only.
    pub(super) fn deliver_durable(
        &self,
        st: &mut HubState,
        user: u64,
        msg: ServerMessage,
    ) -> Result<Delivery, StoreError> {
        self.deliver_durable_once(st, user, msg, None)
    }

    /// [`Hub::deliver_durable`]; through Redis, only the first with the key `once`.
    fn deliver_durable_once(
        &self,
        st: &mut HubState,
        user: u64,
        msg: ServerMessage,
        once: Option<String>,
    ) -> Result<Delivery, StoreError> {
        let Some(link) = self.redis_link() else {
            return self.deliver_durable_here(st, user, ServerFrame::new(msg));
        };
        link.send(Cmd::Durable {
            user,
            frame: ServerFrame::new(msg).encode(),
            floor: st.store.last_seq(user),
            once,
        });
        Ok(Delivery {
            live: Self::sessions_of(st, user).len(),
            queued: false,
        })
    }

    /// A local presence transition (first or last session here, or a status set).
    pub(super) fn presence_changed(&self, st: &mut HubState, user: u64, change: PresenceChange) {
        let at = unix_secs();
        match self.redis_link() {
            Some(link) => link.send(Cmd::Presence { user, change, at }),
            None => self.presence_here(st, user, change, at),
        }
    }

    fn presence_here(&self, st: &mut HubState, user: u64, change: PresenceChange, at: u64) {
        let status = match change {
            PresenceChange::Connected => PresenceStatus::Online,
            PresenceChange::Disconnected => PresenceStatus::Offline,
            PresenceChange::Set(s) => s,
        };
        if let Some(p) = st.presence.set(user, status, at) {
            self.announce_presence(st, p);
        }
    }

    /// `presence_update` from a client (or the demo).
    pub(crate) fn set_presence(&self, user: u64, status: PresenceStatus) {
        let mut guard = self.lock();
        self.presence_changed(&mut guard, user, PresenceChange::Set(status));
    }

    /// `typing`: `user_typing` to `conversation:{id}` subscribers (everyone else in seed
    /// mode), never back to the typist.
    pub(crate) fn typing(&self, user: u64, t: Typing) {
        let mut guard = self.lock();
        let st = &mut *guard;
        let typing = UserTyping {
            conversation_id: t.conversation_id,
            user_id: user,
            username: st.usernames.get(&user).cloned(),
            is_typing: t.is_typing,
        };
        match self.redis_link() {
            Some(link) => link.send(Cmd::Publish(Event::Typing { typing })),
            None => self.route_typing(st, typing),
        }
    }

    fn route_typing(&self, st: &mut HubState, typing: UserTyping) {
        let user = typing.user_id;
        let mut targets = if self.seed_mode() {
            Self::everyone_but(st, Some(user))
        } else {
            Self::subscribers_of(st, &Channel::Conversation(typing.conversation_id))
        };
        targets.retain(|k| st.sessions.get(k).is_some_and(|e| e.user != user));
        self.route(st, targets, &encode(ServerMessage::UserTyping(typing)));
    }

    /// `pitch_view`: stats to the pitch's subscribers (everyone in seed mode), and a
    /// `dashboard_update` to the owner. Through Redis the counts are shared.
    pub(crate) fn pitch_view(&self, viewer: u64, pitch_id: u64) {
        let mut guard = self.lock();
        let st = &mut *guard;
        self.sweep_pitches(st);
        let entry = RecentViewer {
            user_id: viewer,
            username: st.usernames.get(&viewer).cloned(),
            viewed_at: now_iso(),
        };
        match self.redis_link() {
            Some(link) => {
                let (floor_views, floor_unique) = st
                    .pitches
                    .stats(pitch_id)
                    .map_or((0, 0), |s| (s.view_count, s.unique_viewers));
                link.send(Cmd::PitchView {
                    pitch: pitch_id,
                    viewer: entry,
                    floor_views,
                    floor_unique,
                });
            }
            None => self.pitch_view_here(st, pitch_id, entry),
        }
    }

    fn pitch_view_here(&self, st: &mut HubState, pitch_id: u64, v: RecentViewer) {
        let (stats, _) = st
            .pitches
            .record_view(pitch_id, v.user_id, v.username, v.viewed_at);
        self.pitch_stats_out(st, stats, true);
    }

    /// Route pitch stats, and (when this instance saw the view) the owner's dashboard.
    fn pitch_stats_out(&self, st: &mut HubState, stats: PitchStats, mine: bool) {
        let pitch_id = stats.pitch_id;
        let frame = encode(ServerMessage::PitchStatsUpdate(stats));
        let targets = if self.seed_mode() {
            Self::everyone_but(st, None)
        } else {
            Self::subscribers_of(st, &Channel::Pitch(pitch_id))
        };
        self.route(st, targets, &frame);
        if mine
            && let Some(owner) = st.pitches.owner(pitch_id)
            && let Err(e) = self.push_dashboard(st, owner)
        {
            // The view counts; only this dashboard snapshot is lost (the next carries the total).
            tracing::error!(error = %e, owner, "dashboard_update not stored");
        }
    }

    /// An accepted draft save goes to the user's other sessions (on every instance).
    pub(super) fn draft_to_others(
        &self,
        st: &mut HubState,
        key: SessionKey,
        user: u64,
        synced: DraftSynced,
    ) {
        match self.redis_link() {
            Some(link) => link.send(Cmd::Publish(Event::Draft {
                user,
                from: key.0,
                synced,
            })),
            None => self.draft_out(st, Some(key), user, synced),
        }
    }

    /// `draft_sync` decided in Redis, atomically across instances (see
    /// [`RedisLink::draft_save`]); the accepted draft is then kept here too (for resyncs, a
    /// later outage, and `--data-dir`). `None` when Redis is not up: the caller decides locally.
    pub(crate) async fn draft_sync_shared(
        &self,
        key: SessionKey,
        session_id: &str,
        user: u64,
        save: &DraftSave,
        id: Option<&str>,
    ) -> Option<Result<DraftOutcome, DraftError>> {
        let link = self.redis_link()?;
        if link.status() != RedisStatus::Up {
            return None;
        }
        let versioned = !self.seed_mode();
        let id = id.filter(|_| versioned);
        let (floor, count) = {
            let st = self.lock();
            (
                st.store.draft(user, &save.draft_id),
                st.store.draft_count(user),
            )
        };
        // Counted on this instance's copy, which every accepted save reaches.
        if floor.is_none() && count >= self.config.limits.max_drafts_per_user {
            return Some(Ok(DraftOutcome::LimitExceeded));
        }
        let updated_at = now_iso();
        let synced = DraftSynced {
            draft_id: save.draft_id.clone(),
            draft_type: None,
            content: save.content.clone(),
            version: None,
            updated_at: Some(updated_at.clone()),
            session_id: Some(session_id.to_owned()),
        };
        let req = DraftRequest {
            user,
            from: key.0,
            base: save.base_version.filter(|_| versioned),
            id,
            dedup_ttl_ms: self.config.dedup_window_ms,
            synced: &synced,
            draft_type: save.draft_type.as_deref(),
            floor: floor.as_ref(),
        };
        let decided = match link.draft_save(req).await {
            Ok(Some(d)) => d,
            Ok(None) => return None,
            Err(e) => return Some(Err(e.into())),
        };
        Some(match decided {
            SharedDraft::Conflict { version, content } => {
                Ok(DraftOutcome::Conflict(DraftConflict {
                    draft_id: save.draft_id.clone(),
                    base_version: save.base_version,
                    server_version: version,
                    server_content: content,
                }))
            }
            SharedDraft::Accepted {
                version,
                draft_type,
                repeated,
            } => {
                let durable = {
                    let mut guard = self.lock();
                    let st = &mut *guard;
                    // The publication may have come back first and stored it already.
                    let newer = st
                        .store
                        .draft(user, &save.draft_id)
                        .is_none_or(|d| d.version < version);
                    if !repeated && newer {
                        st.store.put_draft(
                            user,
                            &save.draft_id,
                            Draft {
                                draft_type,
                                content: save.content.clone(),
                                version,
                                updated_at,
                            },
                        );
                    }
                    if let Some(id) = id {
                        let applied = Applied {
                            version: Some(version),
                        };
                        st.store.remember(user, id, applied, Instant::now());
                    }
                    st.store.commit()
                };
                durable
                    .wait()
                    .await
                    .map(|()| DraftOutcome::Accepted { version })
                    .map_err(DraftError::from)
            }
        })
    }

    fn draft_out(
        &self,
        st: &mut HubState,
        except: Option<SessionKey>,
        user: u64,
        synced: DraftSynced,
    ) {
        let others: Vec<SessionKey> = Self::sessions_of(st, user)
            .into_iter()
            .filter(|k| Some(*k) != except)
            .collect();
        self.route(st, others, &encode(ServerMessage::DraftSync(synced)));
    }

    /// `POST /api/ws/announce`: a `system` notification to every connected user (on every
    /// instance); returns how many users this instance has.
    pub(crate) fn announce(
        &self,
        title: String,
        message: String,
    ) -> Result<super::Announced, StoreError> {
        let Some(link) = self.redis_link() else {
            return self.announce_here(title, message);
        };
        let mut guard = self.lock();
        let st = &mut *guard;
        let notification = self.make_notification(
            st,
            pitchey_realtime::protocol::NewNotification {
                kind: "system".into(),
                title,
                message,
                data: serde_json::Value::Null,
            },
        );
        link.send(Cmd::Publish(Event::Announce { notification }));
        Ok(super::Announced {
            users: st.by_user.len(),
            tally: None,
        })
    }

    /// `follower` follows `followee` (shared through Redis); false when it already did.
    pub(crate) fn follow(&self, follower: u64, followee: u64) -> Result<bool, StoreError> {
        let new = self.follow_here(follower, followee)?;
        if let Some(link) = self.redis_link() {
            link.send(Cmd::Publish(Event::Follow { follower, followee }));
        }
        Ok(new)
    }

    /// Set a pitch's owner and, optionally, its starting view count (on every instance).
    pub(crate) fn set_pitch_owner(&self, pitch_id: u64, owner: u64, views: u64) {
        self.set_pitch_owner_here(pitch_id, owner, views);
        if let Some(link) = self.redis_link() {
            link.send(Cmd::Publish(Event::PitchOwner {
                pitch: pitch_id,
                owner,
                views,
            }));
        }
    }

    // ---- what the link calls (through `LinkHost`) ---------------------------------------------

    fn remote_receive(&self, payload: &str) {
        let env: Envelope = match serde_json::from_str(payload) {
            Ok(env) => env,
            Err(e) => {
                tracing::warn!(error = %e, "redis: ignoring a publication that does not parse");
                return;
            }
        };
        let mine = self.redis_link().is_some_and(|l| l.instance == env.origin);
        self.apply_event_from(env.event, mine, &env.origin);
    }

    fn remote_fallback(&self, cmd: Cmd) {
        match cmd {
            Cmd::Publish(event) => self.apply_event(event, true),
            Cmd::Durable { user, frame, .. } => {
                let Ok(frame) = ServerFrame::decode(&frame) else {
                    return;
                };
                let mut guard = self.lock();
                if let Err(e) = self.deliver_durable_here(&mut guard, user, frame) {
                    tracing::error!(error = %e, user, "durable frame not stored");
                }
                if let Some(link) = self.redis_link() {
                    link.numbered_alone(user);
                }
            }
            Cmd::Presence { user, change, at } => {
                let mut guard = self.lock();
                self.presence_here(&mut guard, user, change, at);
            }
            Cmd::PitchView { pitch, viewer, .. } => {
                let mut guard = self.lock();
                self.pitch_view_here(&mut guard, pitch, viewer);
            }
        }
    }

    fn apply_event(&self, event: Event, mine: bool) {
        self.apply_event_from(event, mine, "");
    }

    fn apply_event_from(&self, event: Event, mine: bool, origin: &str) {
        let mut guard = self.lock();
        let st = &mut *guard;
        match event {
            Event::Durable {
                user,
                frame,
                seq,
                queued,
            } => match ServerFrame::decode(&frame) {
                Ok(frame) => self.receive_durable(st, user, frame, seq, queued),
                Err(e) => tracing::warn!(error = %e, "redis: durable frame does not decode"),
            },
            Event::Presence { at, presence } => {
                st.presence.set(presence.user_id, presence.status, at);
                self.announce_presence(st, presence);
            }
            Event::Typing { typing } => self.route_typing(st, typing),
            Event::PitchStats { stats } => {
                self.sweep_pitches(st);
                st.pitches.apply_shared(&stats);
                self.pitch_stats_out(st, stats, mine);
            }
            Event::Draft {
                user,
                from,
                mut synced,
            } => {
                // Our own saves too: the script's answer may arrive after its publication.
                if let Some(version) = synced.version {
                    // Keep this instance's copy level, so that a save here on top of it is
                    // accepted and a stale one conflicts.
                    let newer = st
                        .store
                        .draft(user, &synced.draft_id)
                        .is_none_or(|d| d.version < version);
                    if newer {
                        st.store.put_draft(
                            user,
                            &synced.draft_id,
                            Draft {
                                draft_type: synced.draft_type.clone(),
                                content: synced.content.clone(),
                                version,
                                updated_at: synced.updated_at.clone().unwrap_or_else(now_iso),
                            },
                        );
                        // A failure is logged by the store's writer and retried with the next
                        // group; no one waits for this copy.
                        drop(st.store.commit());
                    }
                }
                if self.seed_mode() {
                    // Versioned in Redis for every mode; seed clients are not shown one.
                    synced.version = None;
                }
                let except = mine.then_some(SessionKey(from));
                self.draft_out(st, except, user, synced);
            }
            Event::Announce { notification } => {
                let users: Vec<u64> = st.by_user.keys().copied().collect();
                for user in users {
                    let msg = ServerMessage::Notification(notification.clone());
                    let once = format!("pitchey:once:{origin}:{}:{user}", notification.id);
                    if let Err(e) = self.deliver_durable_once(st, user, msg, Some(once)) {
                        tracing::error!(error = %e, user, "announcement not stored");
                    }
                }
            }
            Event::Follow { follower, followee } => {
                if !mine {
                    st.presence.follow(follower, followee);
                }
            }
            Event::PitchOwner {
                pitch,
                owner,
                views,
            } => {
                if !mine {
                    st.pitches.set_owner(pitch, owner);
                    st.pitches.add_views(pitch, views);
                }
            }
        }
    }

    /// A durable frame numbered by Redis: logged here for `resume` (every instance logs every
    /// user's, so a client may resume on any of them), and sent live to this instance's
    /// sessions of the user unless it went to the Redis offline queue.
    fn receive_durable(
        &self,
        st: &mut HubState,
        user: u64,
        frame: ServerFrame,
        seq: u64,
        queued: bool,
    ) {
        let text = if self.seed_mode() {
            frame.encode()
        } else {
            let last = st.store.last_seq(user);
            if seq > last && seq - last <= MAX_SEQ_CATCH_UP {
                while st.store.last_seq(user) < seq {
                    st.store.next_seq(user);
                }
            }
            let text: crate::store::FrameText = frame.with_seq(seq).encode().into();
            st.store.log_append(
                user,
                LoggedFrame {
                    seq,
                    text: text.clone(),
                },
            );
            let durable = st.store.commit();
            return self.route_received(st, user, text, queued, &durable);
        };
        self.route_received(st, user, text.into(), queued, &Durability::default());
    }

    fn route_received(
        &self,
        st: &mut HubState,
        user: u64,
        text: crate::store::FrameText,
        queued: bool,
        durable: &Durability,
    ) {
        if queued {
            return;
        }
        let sessions = Self::sessions_of(st, user);
        self.route_after(st, sessions, &text, durable);
    }
}
