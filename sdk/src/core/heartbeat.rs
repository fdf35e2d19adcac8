//! Application-level heartbeat: `ping` on an interval, a dead link when nothing comes
//! back in time, and the round-trip time.

use std::time::Duration;

use super::Instant;

/// What the heartbeat wants done at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Beat {
    /// Send a `ping` now (the connection picks its `ts` and reports it with
    /// [`Heartbeat::set_outstanding_ts`]).
    Ping(Instant),
    /// Nothing arrived within the timeout after a ping: the link is dead.
    Dead,
}

#[derive(Debug, Clone)]
pub(crate) struct Heartbeat {
    interval: Duration,
    timeout: Duration,
    next_ping: Option<Instant>,
    /// Set by a ping, cleared by any received frame.
    deadline: Option<Instant>,
    /// The outstanding ping: its `ts` and when it was sent.
    outstanding: Option<(u64, Instant)>,
    rtt: Option<Duration>,
    srtt: Option<Duration>,
}

impl Heartbeat {
    pub(crate) fn new(interval: Duration, timeout: Duration) -> Self {
        Heartbeat {
            interval,
            timeout,
            next_ping: None,
            deadline: None,
            outstanding: None,
            rtt: None,
            srtt: None,
        }
    }

    /// A connection is up: ping every `interval` from now.
    pub(crate) fn start(&mut self, now: Instant, interval: Duration) {
        // A zero or absurdly small interval from a server must not become a busy loop.
        self.interval = interval.max(Duration::from_millis(100));
        self.next_ping = Some(now + self.interval);
        self.deadline = None;
        self.outstanding = None;
    }

    pub(crate) fn stop(&mut self) {
        self.next_ping = None;
        self.deadline = None;
        self.outstanding = None;
    }

    /// Any frame proves the link alive.
    pub(crate) fn on_frame(&mut self) {
        self.deadline = None;
    }

    /// A `pong`: measure the round trip of the outstanding ping.
    pub(crate) fn on_pong(&mut self, ts: Option<u64>, now: Instant) {
        self.deadline = None;
        let Some((sent_ts, sent_at)) = self.outstanding else {
            return;
        };
        // A seed server may echo no `ts`; then the outstanding ping is the one answered.
        if ts.is_some_and(|t| t != sent_ts) {
            return;
        }
        self.outstanding = None;
        let rtt = now.saturating_duration_since(sent_at);
        self.rtt = Some(rtt);
        self.srtt = Some(match self.srtt {
            None => rtt,
            Some(s) => (s * 7 + rtt) / 8,
        });
    }

    pub(crate) fn poll(&mut self, now: Instant) -> Option<Beat> {
        if self.deadline.is_some_and(|d| now >= d) {
            self.stop();
            return Some(Beat::Dead);
        }
        if self.next_ping.is_some_and(|t| now >= t) {
            // After a clock jump this fires once, not once per missed interval.
            self.next_ping = Some(now + self.interval);
            self.outstanding = Some((now.as_millis(), now));
            if self.deadline.is_none() {
                self.deadline = Some(now + self.timeout);
            }
            return Some(Beat::Ping(now));
        }
        None
    }

    /// The `ts` the ping just asked for carries (epoch ms when the driver gave a wall
    /// clock): the `pong` echoing it is the one that measures the round trip.
    pub(crate) fn set_outstanding_ts(&mut self, ts: u64) {
        if let Some((t, _)) = &mut self.outstanding {
            *t = ts;
        }
    }

    /// Ping at the next `poll` (the link may have died unnoticed: a network change, a
    /// device that slept).
    pub(crate) fn ping_now(&mut self, now: Instant) {
        if self.next_ping.is_some() {
            self.next_ping = Some(now);
        }
    }

    pub(crate) fn next_timeout(&self) -> Option<Instant> {
        match (self.next_ping, self.deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub(crate) fn rtt(&self) -> Option<Duration> {
        self.rtt
    }

    pub(crate) fn srtt(&self) -> Option<Duration> {
        self.srtt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Instant {
        Instant::from_millis(n)
    }

    #[test]
    fn pings_measures_rtt_and_detects_silence() {
        let mut h = Heartbeat::new(Duration::from_secs(30), Duration::from_secs(10));
        h.start(ms(0), Duration::from_secs(30));
        assert_eq!(h.next_timeout(), Some(ms(30_000)));
        assert_eq!(h.poll(ms(29_999)), None);
        assert_eq!(h.poll(ms(30_000)), Some(Beat::Ping(ms(30_000))));
        h.on_pong(Some(30_000), ms(30_120));
        assert_eq!(h.rtt(), Some(Duration::from_millis(120)));
        assert_eq!(h.poll(ms(45_000)), None);
        assert_eq!(h.poll(ms(60_000)), Some(Beat::Ping(ms(60_000))));
        assert_eq!(h.next_timeout(), Some(ms(70_000)));
        assert_eq!(h.poll(ms(70_000)), Some(Beat::Dead));
        assert_eq!(h.next_timeout(), None);
    }

    #[test]
    fn any_frame_keeps_the_link_alive() {
        let mut h = Heartbeat::new(Duration::from_secs(30), Duration::from_secs(10));
        h.start(ms(0), Duration::from_secs(30));
        assert!(matches!(h.poll(ms(30_000)), Some(Beat::Ping(_))));
        h.on_frame();
        assert_eq!(h.poll(ms(40_000)), None);
    }
}
