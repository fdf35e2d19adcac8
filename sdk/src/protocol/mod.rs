//! Wire types of protocol `pitchey-v1`: every frame as a typed Rust value.
//!
//! Every frame is one JSON text frame `{ "type": string, "data": any, "id"?: string, "seq"?: number }`.
//! Decoding happens in two steps: the envelope (`RawFrame`) first, then `data` by `type`,
//! so that an unknown `type` becomes an `Unknown` message instead of an error, and a bad
//! `data` gives an error that names the message type and the field.
//!
//! The two directions have their own enums, [`ClientMessage`] (client to server) and
//! [`ServerMessage`] (server to client), because several types (`presence_update`,
//! `draft_sync`, typing) carry different fields each way.
//!
//! ```
//! use pitchey_realtime::protocol::{ServerFrame, ServerMessage};
//! let frame = ServerFrame::decode(r#"{"type":"pong","data":{"ts":1}}"#).unwrap();
//! assert!(matches!(frame.message, ServerMessage::Pong(_)));
//! ```

mod channel;
mod client;
mod close_code;
mod error;
mod frame;
pub(crate) mod json;
pub mod jsvalue;
mod server;
mod types;

pub use channel::{Channel, ChannelParseError};
pub use client::ClientMessage;
pub use close_code::CloseCode;
pub use error::{ErrorCode, ProtocolError};
#[cfg(not(target_arch = "wasm32"))]
pub use frame::RawFrame;
pub use frame::{ClientFrame, Data, Frame, Message, ServerFrame};
pub use server::ServerMessage;
pub use types::*;

/// The WebSocket subprotocol name, sent in `Sec-WebSocket-Protocol`.
pub const SUBPROTOCOL: &str = "pitchey-v1";
