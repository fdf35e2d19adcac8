//! Fault injection (`/api/ws/faults`): what is injected, what is in force (`GET`), and
//! clearing it all (`DELETE`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use pitchey_realtime::protocol::ErrorCode;
use serde_json::{Value, json};

use super::{CloseOrder, Hub, Outbound, error_frame};
use crate::auth::AuthUser;
use crate::time::unix_millis;

/// Longest delay or duration a fault may ask for: a typo must not wedge a session for days.
pub(crate) const MAX_FAULT_MS: u64 = 60_000;

/// The faults in force on one session.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct SessionFaults {
    delay: Duration,
    throttled_until: Option<Instant>,
}

/// A fault for sessions.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SessionFault {
    /// End the connections without a close frame.
    Drop,
    /// `rate_limited` now, every message refused for this long.
    Throttle(Duration),
    /// Every frame written delayed by this much (zero: off).
    Delay(Duration),
}

impl Hub {
    /// Inject `fault` into every session of `user`, or into every session; returns how many
    /// sessions got it.
    pub(crate) fn inject(&self, user: Option<u64>, fault: SessionFault) -> usize {
        let mut st = self.lock();
        let now = Instant::now();
        st.sessions
            .values_mut()
            .filter(|e| user.is_none_or(|u| e.user == u))
            .filter(|e| {
                let cmd = match fault {
                    SessionFault::Drop => Outbound::Drop,
                    SessionFault::Throttle(d) => Outbound::Throttle(d),
                    SessionFault::Delay(d) => Outbound::Delay(d),
                };
                e.tx.try_send(cmd).is_ok()
            })
            .map(|e| match fault {
                SessionFault::Drop => {}
                SessionFault::Throttle(d) => e.faults.throttled_until = Some(now + d),
                SessionFault::Delay(d) => e.faults.delay = d,
            })
            .count()
    }

    /// Refuse WebSocket upgrades (503) for `d`.
    pub(crate) fn refuse_connects_for(&self, d: Duration) {
        self.lock().refuse_connects_until = Some(Instant::now() + d);
    }

    /// Whether upgrades are being refused.
    pub(crate) fn refusing_connects(&self) -> bool {
        self.lock()
            .refuse_connects_until
            .is_some_and(|t| Instant::now() < t)
    }

    /// Expire `user`'s tokens: every token issued up to now is refused from now on, and the
    /// user's sessions are closed with 4001. Returns the number of sessions closed and the
    /// Unix millisecond of the fault. A token minted after that millisecond works, also in
    /// the same second (see [`Hub::is_revoked`]; the HTTP handler answers only once that
    /// millisecond is over).
    pub(crate) fn expire_tokens(&self, user: u64) -> (usize, u64) {
        let at_ms = unix_millis();
        // One lock: no session of the user registers between the expiry and the closes.
        let mut st = self.lock();
        st.revoked_before.insert(user, at_ms);
        let sessions = st
            .sessions
            .values()
            .filter(|e| e.user == user)
            .filter(|e| {
                e.tx.try_send(Outbound::Close(Box::new(CloseOrder {
                    code: 4001,
                    reason: "token expired",
                    notice: Some(error_frame(ErrorCode::Unauthorized, "token expired", None)),
                })))
                .is_ok()
            })
            .count();
        (sessions, at_ms)
    }

    /// Whether a verified token was expired by [`Hub::expire_tokens`]: issued up to the
    /// fault. With `iatMs` (our tokens) to the millisecond, the fault's own millisecond
    /// included: a token minted, used and expired within one millisecond (a fast test on a
    /// warm machine) was issued before the fault, and the fault's answer waits for the next
    /// millisecond, so a token minted after it is never refused. With `iat` alone, a token of the
    /// fault's own second cannot be placed and is let through (refusing it would refuse the
    /// fresh token a client fetches right after); without `iat`, refused.
    pub(crate) fn is_revoked(&self, user: &AuthUser) -> bool {
        let Some(&before_ms) = self.lock().revoked_before.get(&user.user_id) else {
            return false;
        };
        match (user.issued_at_ms, user.issued_at) {
            (Some(ms), _) => ms <= before_ms,
            (None, Some(secs)) => secs < before_ms / 1000,
            (None, None) => true,
        }
    }

    /// Body of `GET /api/ws/faults`: what is in force now.
    pub(crate) fn faults(&self) -> Value {
        let st = self.lock();
        let now = Instant::now();
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let mut delay: BTreeMap<String, u64> = BTreeMap::new();
        let mut rate_limit: BTreeMap<String, u64> = BTreeMap::new();
        for e in st.sessions.values() {
            if !e.faults.delay.is_zero() {
                let v = delay.entry(e.user.to_string()).or_default();
                *v = (*v).max(ms(e.faults.delay));
            }
            if let Some(until) = e.faults.throttled_until.filter(|t| *t > now) {
                let v = rate_limit.entry(e.user.to_string()).or_default();
                *v = (*v).max(ms(until - now));
            }
        }
        let expired: BTreeMap<String, u64> = st
            .revoked_before
            .iter()
            .map(|(u, ms)| (u.to_string(), ms / 1000))
            .collect();
        json!({
            "refuseConnectsMs": st
                .refuse_connects_until
                .filter(|t| *t > now)
                .map_or(0, |t| ms(t - now)),
            "delayMs": delay,
            "rateLimitMs": rate_limit,
            "expireTokenIssuedBefore": expired,
        })
    }

    /// `DELETE /api/ws/faults`: end every fault in force; returns how many sessions were told.
    pub(crate) fn clear_faults(&self) -> usize {
        let mut st = self.lock();
        st.refuse_connects_until = None;
        st.revoked_before.clear();
        st.sessions
            .values_mut()
            .map(|e| {
                e.faults = SessionFaults::default();
                e.tx.try_send(Outbound::ClearFaults).is_ok()
            })
            .filter(|told| *told)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use crate::hub::test_support::{small_hub, user};

    #[test]
    fn expire_token_refuses_tokens_up_to_its_millisecond() {
        let hub = small_hub();
        let at = |ms: u64| {
            let mut u = user(1);
            u.issued_at = Some(ms / 1000);
            u.issued_at_ms = Some(ms);
            u
        };
        assert!(!hub.is_revoked(&at(1)), "nothing expired yet");
        let (_, before) = hub.expire_tokens(1);
        assert_eq!(hub.lock().revoked_before[&1], before);
        assert!(hub.is_revoked(&at(before - 1)), "minted before the fault");
        // Minted, used and expired within one millisecond: still before the fault.
        assert!(
            hub.is_revoked(&at(before)),
            "minted in the fault's millisecond"
        );
        assert!(!hub.is_revoked(&at(before + 1)), "minted after it");
        assert!(!hub.is_revoked(&user(2)), "other users are unaffected");
        // `iat` alone: the fault's own second is let through, earlier seconds are not.
        let mut secs = user(1);
        secs.issued_at = Some(before / 1000);
        assert!(!hub.is_revoked(&secs));
        secs.issued_at = Some(before / 1000 - 1);
        assert!(hub.is_revoked(&secs));
        assert!(hub.is_revoked(&user(1)), "no `iat` at all: refused");
    }
}
