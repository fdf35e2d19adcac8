//! # pitchey-realtime
//!
//! The client SDK for Pitchey's real-time WebSocket service (protocol `pitchey-v1`).
//!
//! - [`protocol`]: the wire types shared by every client and by the reference server
//!   (`pitchey-mock-server`). Pure data, no I/O.
//! - [`core`]: the sans-IO client state machine (lifecycle, backoff, outbox, rate limit,
//!   heartbeat, subscriptions, resume, drafts). No sockets, clocks or tokio; builds for
//!   `wasm32-unknown-unknown`.
//! - [`client`] (feature `native`, default): the async [`client::Client`] for tokio, a thin
//!   driver over the core; [`transport`] opens its sockets.
//!
//! ## Why each dependency is here
//! - `serde` / `serde_json`: the wire format is JSON text frames.
//! - `thiserror`: one error enum per boundary, with variants a caller can act on.
//! - `tracing`: structured logs that the host application routes where it wants.
//! - `rand` and `rand_pcg` (no default features): the core's seeded RNG (Pcg32) for
//!   backoff jitter and message-id prefixes; seeded by the driver so runs replay exactly,
//!   the same sequence on every target, and no `getrandom`, so the core builds for wasm32
//!   without a JS shim.
//! - `url` (not on wasm32): endpoint URLs checked and their `token` parameter set. On
//!   wasm32 the core checks `ws`/`wss` URLs itself and rewrites their query
//!   (`core/endpoint.rs`, tested against the `url` crate): the `url` crate's IDNA tables
//!   were over half of the browser package, and the browser parses the URL anyway.
//! - `futures-util` (feature `client`): the `Stream` trait and future combinators of the
//!   async client. Its event and state streams run on its own fan-out queue
//!   (`client/fanout.rs`), with no runtime's channels, so the browser needs no tokio code.
//! - `tokio`, `tokio-tungstenite` (feature `native`): the native driver's runtime and
//!   WebSocket.
//! - `rustls` (feature `tls`, default; `ring` provider, webpki roots): `wss://` without
//!   OpenSSL or a C toolchain beyond `cc`.
//! - `wasm-bindgen` (pinned `=`: the generated glue must match the `wasm-bindgen` CLI),
//!   `js-sys`, `web-sys` (feature `web`): the browser's `WebSocket`, `performance`,
//!   `crypto` and events, called from Rust.
//! - `wasm-bindgen-futures` (feature `web`): `spawn_local` runs the client's task in the
//!   browser's event loop.
//! - `gloo-timers` (feature `web`): `setTimeout`, cleared on drop: the browser timer.
//! - No JSON crate's text code in the browser (feature `web`): `JSON.parse`/`JSON.stringify`
//!   are the codec there (`protocol/json.rs`), Rust types read from and written to JS values
//!   by hand-written readers and writers (`protocol/jsvalue`), so neither `serde_json`'s
//!   parser and writer nor any serde visitor is in the browser package.

#![warn(missing_docs)]

pub mod core;
pub mod protocol;
pub mod transport;

#[cfg(feature = "client")]
pub mod client;
