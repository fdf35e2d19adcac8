//! Sessions per user (`--max-sessions-per-user`): a slot is taken before the upgrade, so
//! that the refusal is a plain HTTP 429, and given back when the slot is dropped, however
//! the session ends (or when the upgrade never completes).

use std::sync::Arc;

use super::Hub;

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
            }
        }
    }
}
