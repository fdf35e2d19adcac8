//! A snapshot of the connection's health counters.

use std::time::Duration;

/// Numbers for a status bar or a debug panel (the seed's `queueSize` and friends).
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Metrics {
    /// Messages in the outbox (durable not yet acked, plus pending ephemeral).
    pub queue_depth: usize,
    /// Durable messages written and awaiting their ack.
    pub in_flight: usize,
    /// Whole tokens left in the client's mirror of the server's rate-limit bucket.
    pub tokens_left: u32,
    /// Latest heartbeat round-trip time.
    pub rtt: Option<Duration>,
    /// Smoothed round-trip time (exponential moving average, 1/8 weight per sample).
    pub srtt: Option<Duration>,
    /// Connections established after the first one.
    pub reconnects: u64,
    /// Connection attempts made in total.
    pub connect_attempts: u64,
    /// Why the last connection ended (close code and reason, or the failure).
    pub last_disconnect: Option<String>,
    /// Frames written (every `Action::Send`).
    pub frames_sent: u64,
    /// Text frames received.
    pub frames_received: u64,
    /// Received frames dropped as duplicates (their `seq` was already seen).
    pub duplicates_dropped: u64,
    /// Received text frames that could not be decoded.
    pub invalid_frames: u64,
}
