//! Guards that give back what a session holds in the hub however it ends, a panic included.
//!
//! - [`SessionSlot`]: sessions per user (`--max-sessions-per-user`). Taken before the upgrade,
//!   so that the refusal is a plain HTTP 429; freed when dropped (also when the upgrade never
//!   completes).
//! - [`Registered`]: the session's registration; dropping it unregisters the session, so that
//!   no task ending leaves a ghost session (and a user stuck online) behind.

use std::sync::Arc;

use super::{Hub, SessionKey};

/// A registered session; dropping it unregisters the session.
pub(crate) struct Registered {
    hub: Arc<Hub>,
    key: SessionKey,
}

impl Registered {
    pub(crate) fn new(hub: Arc<Hub>, key: SessionKey) -> Self {
        Registered { hub, key }
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.hub.unregister(self.key);
    }
}

/// One of a user's session slots; dropping it frees the slot.
pub(crate) struct SessionSlot {
    hub: Arc<Hub>,
    user: u64,
}

impl Hub {
    /// Take a session slot for `user`; `None` when they have `max_sessions_per_user` already.
    pub(crate) fn reserve_session(self: &Arc<Self>, user: u64) -> Option<SessionSlot> {
        let max = self.config.limits.max_sessions_per_user;
        let mut st = self.lock();
        let taken = st.session_slots.entry(user).or_default();
        if *taken >= max {
            return None;
        }
        *taken += 1;
        Some(SessionSlot {
            hub: self.clone(),
            user,
        })
    }
}

impl Drop for SessionSlot {
    fn drop(&mut self) {
        let mut st = self.hub.lock();
        if let Some(n) = st.session_slots.get_mut(&self.user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                st.session_slots.remove(&self.user);
                super::shrink::shrink_sparse(&mut st.session_slots);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::panic::AssertUnwindSafe;

    use super::*;
    use crate::hub::test_support::{small_hub, user};

    #[test]
    fn a_session_task_that_panics_is_unregistered() {
        let hub = small_hub();
        let user = user(7);
        let (tx, _rx) = crate::outbox::channel(4);
        let reg = hub
            .register(&user, tx, None, Vec::new())
            .expect("registered");
        assert!(hub.has_sessions(7));
        let task_hub = hub.clone();
        let ended = std::panic::catch_unwind(AssertUnwindSafe(move || {
            let _registered = Registered::new(task_hub, reg.key);
            panic!("a bug in the session task");
        }));
        assert!(ended.is_err());
        assert!(!hub.has_sessions(7));
    }
}
