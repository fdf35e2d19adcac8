//! Transports: how a driver opens a WebSocket on each platform. Thin on purpose: every
//! decision (when to connect, what to send, when to give up) is the core's.

#[cfg(feature = "native")]
pub mod native;
