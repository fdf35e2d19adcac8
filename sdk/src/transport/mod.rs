//! Platforms: how the async client spawns, sleeps and opens a WebSocket on each runtime.
//! Thin on purpose: every decision (when to connect, what to send, when to give up) is the
//! core's, and everything else is the runtime-agnostic [`client`](crate::client).

#[cfg(feature = "native")]
pub mod native;

#[cfg(all(feature = "web", target_arch = "wasm32"))]
pub mod web;
