//! # pitchey-realtime
//!
//! The client SDK for Pitchey's real-time WebSocket service (protocol `pitchey-v1`).
//!
//! - [`protocol`]: the wire types shared by every client and by the reference server
//!   (`pitchey-mock-server`). Pure data, no I/O.
//!
//! ## Why each dependency is here
//! - `serde` / `serde_json`: the wire format is JSON text frames.
//! - `thiserror`: one error enum per boundary, with variants a caller can act on.
//! - `tracing`: structured logs that the host application routes where it wants.

#![warn(missing_docs)]

pub mod protocol;
