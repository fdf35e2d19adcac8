//! Drives one session's frame handler without a socket, for the fuzz targets in `fuzz/`
//! and their stable stand-in (`sdk/tests/fuzz_bodies.rs`). Not part of the server's API.

use std::sync::Arc;

use crate::outbox;

use crate::auth::AuthUser;
use crate::config::ServerConfig;
use crate::hub::{Hub, Outbound};
use crate::session::Session;
use crate::store::MemoryStore;

/// User 1's session on a fresh in-memory server, with a second session of user 1 and one
/// of user 2 registered beside it, so that what the handler routes to others is seen too.
pub struct SessionHarness {
    session: Session,
    peers: Vec<outbox::Receiver<Outbound>>,
    own: outbox::Receiver<Outbound>,
}

/// What one inbound text frame produced.
#[derive(Debug, Default)]
pub struct Handled {
    /// Frames the session answered with, in order.
    pub answered: Vec<String>,
    /// Frames the hub routed to this session and its peers (user 1's other session, user 2).
    pub routed: Vec<String>,
    /// The close code, when the frame ended the session.
    pub closed: Option<u16>,
}

impl SessionHarness {
    /// A session of user 1 on a server with `config` (memory store, no Redis).
    pub fn new(config: ServerConfig) -> Self {
        let store = MemoryStore::new(crate::store_limits(&config));
        let cap = config.session_outbox_cap.max(1);
        let hub = Arc::new(Hub::new(config, Box::new(store)));
        let user = |user_id| AuthUser {
            user_id,
            admin: false,
            username: Some(format!("user{user_id}")),
            expires_at: u64::MAX,
            issued_at: None,
            issued_at_ms: None,
        };
        let register = |u: &AuthUser| {
            let (tx, rx) = outbox::channel(cap);
            let reg = hub.register(u, tx, None, Vec::new());
            (reg, rx)
        };
        let (reg, own) = register(&user(1));
        let mut peers = Vec::new();
        for u in [user(1), user(2)] {
            let (_, rx) = register(&u);
            peers.push(rx);
        }
        let reg = reg.unwrap_or_else(|| unreachable!("a new hub is not shutting down"));
        SessionHarness {
            session: Session::new(hub.clone(), user(1), reg.key, reg.session_id),
            peers,
            own,
        }
    }

    /// Handle one inbound text frame as the session's loop would.
    pub async fn handle(&mut self, text: &str) -> Handled {
        let ending = self.session.text(text).await;
        let mut handled = Handled {
            answered: self
                .session
                .out
                .drain(..)
                .map(|o| o.text.to_string())
                .collect(),
            closed: ending.map(|e| e.code),
            ..Handled::default()
        };
        for rx in std::iter::once(&mut self.own).chain(self.peers.iter_mut()) {
            while let Some(out) = rx.try_recv() {
                if let Outbound::Text(t) = out {
                    handled.routed.push(t.to_string());
                }
            }
        }
        handled
    }
}
