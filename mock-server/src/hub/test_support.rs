//! What the hub's unit tests share: a hub on a small memory store, and a user.

use std::sync::Arc;
use std::time::Duration;

use super::Hub;
use crate::auth::AuthUser;
use crate::config::ServerConfig;
use crate::store::{MemoryStore, StoreLimits};

/// A hub with the test config on a memory store with small caps.
pub(super) fn small_hub() -> Arc<Hub> {
    let limits = StoreLimits {
        offline_queue_cap: 10,
        replay_log_cap: 10,
        dedup_window: Duration::from_secs(1),
        dedup_cap: 10,
        user_queue_bytes: 1000,
    };
    Arc::new(Hub::new(
        ServerConfig::for_tests(),
        Box::new(MemoryStore::new(limits)),
    ))
}

/// An ordinary user whose token never expires.
pub(super) fn user(id: u64) -> AuthUser {
    AuthUser {
        user_id: id,
        admin: false,
        username: None,
        expires_at: u64::MAX,
        issued_at: None,
        issued_at_ms: None,
    }
}
