#[cfg(not(target_arch = "wasm32"))]
use std::borrow::Cow;

#[cfg(not(all(target_arch = "wasm32", feature = "web")))]
use serde::Deserialize;
use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};
use serde_json::Value;
#[cfg(not(target_arch = "wasm32"))]
use serde_json::value::RawValue;

use super::json::Decode;
#[cfg(any(test, all(target_arch = "wasm32", feature = "web")))]
use super::jsvalue::{self, Node, Source};
use super::{ClientMessage, ProtocolError, ServerMessage};

/// The envelope as it is on the wire, before `data` is decoded by `type`.
///
/// `data` stays borrowed raw JSON so that it is parsed once, straight into its typed struct.
///
/// Not on wasm32: raw JSON values need serde_json's `raw_value` feature, which links its
/// parser into every `Value` decoder; there frames decode through [`Message::decode_value`]
/// or, in the browser, `Message::decode_js` (feature `web`).
#[cfg(not(target_arch = "wasm32"))]
#[derive(Debug, Deserialize)]
pub struct RawFrame<'a> {
    /// The message type.
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    /// The undecoded payload.
    #[serde(default, borrow)]
    pub data: Option<&'a RawValue>,
    /// Sender-made id of a message that wants an ack.
    #[serde(default)]
    pub id: Option<String>,
    /// Per-user sequence number of a durable server message.
    #[serde(default)]
    pub seq: Option<u64>,
}

/// A message type family: one enum per direction. Implemented by [`ClientMessage`] and
/// [`ServerMessage`]; not meant to be implemented elsewhere.
pub trait Message: Sized {
    /// Decode `data` for the message type `kind`. Unknown kinds give the `Unknown` variant.
    #[cfg(not(target_arch = "wasm32"))]
    fn decode_data(kind: &str, data: Option<&RawValue>) -> Result<Self, ProtocolError>;
    /// Decode `data` given as a JSON value (`None` when absent) for the message type `kind`.
    fn decode_value(kind: &str, data: Option<Value>) -> Result<Self, ProtocolError>;
    /// Decode `data` given as a JS value (what `JSON.parse` returns; `undefined` when
    /// absent) for the message type `kind`: the browser's decoding, without `serde_json`.
    #[cfg(all(target_arch = "wasm32", feature = "web"))]
    fn decode_js(kind: &str, data: wasm_bindgen::JsValue) -> Result<Self, ProtocolError> {
        Self::decode_tree(kind, Some(data))
    }
    /// Decode `data` given as a JSON-shaped tree (`None` when absent) for the message type
    /// `kind`: what [`Message::decode_js`] does, for any tree (the host tests use
    /// `serde_json::Value`).
    #[cfg(any(test, all(target_arch = "wasm32", feature = "web")))]
    fn decode_tree<S: Source>(kind: &str, data: Option<S>) -> Result<Self, ProtocolError>;
    /// The wire `type`.
    fn kind(&self) -> &str;
    /// Serialize `data` as the `data` field of `s`.
    fn serialize_data<S: SerializeStruct>(&self, s: &mut S) -> Result<(), S::Error>;
    /// Serialize `data` alone (what [`Data`] does).
    fn serialize_payload<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error>;
    /// `data` alone as a JSON-shaped tree (the browser's encoding, without serde).
    fn data_to_tree<K: super::jsvalue::Sink>(&self) -> K::Node;
}

/// A message's `data` alone, as a serializable value (the frame without its envelope).
#[derive(Debug, Clone, Copy)]
pub struct Data<'a, M>(pub &'a M);

impl<M: Message> Serialize for Data<'_, M> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize_payload(serializer)
    }
}

/// Where a `data` payload comes from: raw JSON text, or (in the browser) a JS value from
/// `JSON.parse`. The message tables decode either the same way.
pub(crate) trait Payload {
    /// `data` as the payload of `kind`; an absent or `null` payload reads as `{}` so that
    /// types whose fields are all optional (`ping`) accept a bare `{"type":"ping"}`.
    fn decode<T: Decode>(self, kind: &str) -> Result<T, ProtocolError>;
    /// `data` as free-form JSON (an unknown type's); absent is `null`.
    fn value(self) -> Result<Value, ProtocolError>;
}

#[cfg(not(target_arch = "wasm32"))]
impl Payload for Option<&RawValue> {
    fn decode<T: Decode>(self, kind: &str) -> Result<T, ProtocolError> {
        let text = match self.map(RawValue::get) {
            None | Some("null") => "{}",
            Some(t) => t,
        };
        serde_json::from_str(text).map_err(|e| ProtocolError::InvalidData {
            kind: kind.to_owned(),
            message: strip_position(e),
        })
    }

    fn value(self) -> Result<Value, ProtocolError> {
        match self {
            Some(raw) => {
                serde_json::from_str(raw.get()).map_err(|e| ProtocolError::Malformed(e.to_string()))
            }
            None => Ok(Value::Null),
        }
    }
}

impl Payload for Option<Value> {
    fn decode<T: Decode>(self, kind: &str) -> Result<T, ProtocolError> {
        let data = match self {
            None | Some(Value::Null) => Value::Object(serde_json::Map::new()),
            Some(v) => v,
        };
        serde_json::from_value(data).map_err(|e| ProtocolError::InvalidData {
            kind: kind.to_owned(),
            message: e.to_string(),
        })
    }

    fn value(self) -> Result<Value, ProtocolError> {
        Ok(self.unwrap_or(Value::Null))
    }
}

/// A payload from a JSON-shaped tree (in the browser: a JS value), read by
/// [`jsvalue`](super::jsvalue).
#[cfg(any(test, all(target_arch = "wasm32", feature = "web")))]
pub(crate) struct Tree<S>(pub(crate) Option<S>);

#[cfg(any(test, all(target_arch = "wasm32", feature = "web")))]
impl<S: Source> Payload for Tree<S> {
    fn decode<T: Decode>(self, kind: &str) -> Result<T, ProtocolError> {
        // The node and the error are made outside the per-type code: it is instantiated
        // once per payload type, and in the browser build every byte of it counts.
        T::from_tree(payload_node(self.0)).map_err(|e| invalid_data(kind, e))
    }

    fn value(self) -> Result<Value, ProtocolError> {
        match self.0 {
            None => Ok(Value::Null),
            Some(s) => jsvalue::read::read_tree(s).map_err(|e| ProtocolError::Malformed(e.into())),
        }
    }
}

/// A payload's node: absent or `null` reads as `{}` (see [`Payload::decode`]).
#[cfg(any(test, all(target_arch = "wasm32", feature = "web")))]
fn payload_node<S: Source>(data: Option<S>) -> Node<S> {
    match data.map(Source::node) {
        None | Some(Node::Null) => Node::Object(Vec::new()),
        Some(node) => node,
    }
}

/// The error of a payload of `kind` that its reader refused.
#[cfg(any(test, all(target_arch = "wasm32", feature = "web")))]
fn invalid_data(kind: &str, e: jsvalue::Error) -> ProtocolError {
    ProtocolError::InvalidData {
        kind: kind.to_owned(),
        message: e.into(),
    }
}

/// serde_json appends "at line 1 column 17": noise in a message about one field.
#[cfg(not(all(target_arch = "wasm32", feature = "web")))]
fn strip_position(e: serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_owned(),
        None => s,
    }
}

/// One frame: a message plus its envelope fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame<M> {
    /// The message.
    pub message: M,
    /// Sender-made id of a message that wants an ack (client to server), if any.
    pub id: Option<String>,
    /// Per-user sequence number of a durable server message, if any.
    pub seq: Option<u64>,
}

/// A frame sent by a client.
pub type ClientFrame = Frame<ClientMessage>;
/// A frame sent by the server.
pub type ServerFrame = Frame<ServerMessage>;

impl<M: Message> Frame<M> {
    /// A frame with no id and no seq.
    pub fn new(message: M) -> Self {
        Frame {
            message,
            id: None,
            seq: None,
        }
    }

    /// Set the envelope `id`.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Set the envelope `seq`.
    pub fn with_seq(mut self, seq: u64) -> Self {
        self.seq = Some(seq);
        self
    }

    /// Decode a text frame.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn decode(text: &str) -> Result<Self, ProtocolError> {
        let raw: RawFrame<'_> =
            serde_json::from_str(text).map_err(|e| ProtocolError::Malformed(strip_position(e)))?;
        Self::from_raw(raw)
    }

    /// Decode a text frame (wasm32 without the browser: `data` as a [`Value`] first).
    #[cfg(all(target_arch = "wasm32", not(feature = "web")))]
    pub fn decode(text: &str) -> Result<Self, ProtocolError> {
        /// The envelope, `data` left a JSON value until `type` says what it is.
        #[derive(Deserialize)]
        struct ValueEnvelope {
            #[serde(rename = "type")]
            kind: String,
            #[serde(default)]
            data: Option<Value>,
            #[serde(default)]
            id: Option<String>,
            #[serde(default)]
            seq: Option<u64>,
        }
        let envelope: ValueEnvelope =
            serde_json::from_str(text).map_err(|e| ProtocolError::Malformed(strip_position(e)))?;
        Ok(Frame {
            message: M::decode_value(&envelope.kind, envelope.data)?,
            id: envelope.id,
            seq: envelope.seq,
        })
    }

    /// Decode a text frame (in the browser: with `JSON.parse`, see `protocol/json.rs`).
    #[cfg(all(target_arch = "wasm32", feature = "web"))]
    pub fn decode(text: &str) -> Result<Self, ProtocolError> {
        let value = super::json::parse(text).map_err(ProtocolError::Malformed)?;
        Self::decode_tree(value)
    }

    /// Decode a frame given as a JSON-shaped tree: the envelope's fields by hand, `data`
    /// by `type` (the same rules as `RawFrame`: `type` required, the rest optional).
    #[cfg(any(test, all(target_arch = "wasm32", feature = "web")))]
    pub(crate) fn decode_tree<S: Source>(tree: S) -> Result<Self, ProtocolError> {
        fn malformed(e: jsvalue::Error) -> ProtocolError {
            ProtocolError::Malformed(e.into())
        }
        fn duplicate(field: &str) -> ProtocolError {
            ProtocolError::Malformed(["duplicate field `", field, "`"].concat())
        }
        let Node::Object(entries) = tree.node() else {
            return Err(ProtocolError::Malformed(String::from(
                "invalid type: expected a frame object",
            )));
        };
        let (mut kind, mut data, mut id, mut seq) = (None, None, None, None);
        for (key, value) in entries {
            match key.as_str() {
                "type" if kind.is_some() => return Err(duplicate("type")),
                "type" => {
                    kind = Some(jsvalue::read::read_tree::<String, S>(value).map_err(malformed)?)
                }
                "data" if data.is_some() => return Err(duplicate("data")),
                "data" => data = Some(value),
                "id" if id.is_some() => return Err(duplicate("id")),
                "id" => {
                    id = Some(
                        jsvalue::read::read_tree::<Option<String>, S>(value).map_err(malformed)?,
                    )
                }
                "seq" if seq.is_some() => return Err(duplicate("seq")),
                "seq" => {
                    seq =
                        Some(jsvalue::read::read_tree::<Option<u64>, S>(value).map_err(malformed)?)
                }
                _ => {}
            }
        }
        let kind =
            kind.ok_or_else(|| ProtocolError::Malformed(String::from("missing field `type`")))?;
        Ok(Frame {
            message: M::decode_tree(&kind, data)?,
            id: id.flatten(),
            seq: seq.flatten(),
        })
    }

    /// Decode `data` of an envelope already parsed.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_raw(raw: RawFrame<'_>) -> Result<Self, ProtocolError> {
        Ok(Frame {
            message: M::decode_data(&raw.kind, raw.data)?,
            id: raw.id,
            seq: raw.seq,
        })
    }

    /// Encode as a JSON text frame.
    pub fn encode(&self) -> String {
        // Serializing our own types to a String cannot fail: no maps with non-string keys,
        // no I/O. Fall back to an error frame's shape rather than panic, to be safe.
        super::json::to_string(self).unwrap_or_else(|e| {
            tracing::error!(error = %e, "frame failed to serialize");
            String::from(r#"{"type":"error","data":{"code":"internal","message":"encode failed"}}"#)
        })
    }
}

impl<M: Message> Serialize for Frame<M> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let n = 2 + usize::from(self.id.is_some()) + usize::from(self.seq.is_some());
        let mut s = serializer.serialize_struct("Frame", n)?;
        s.serialize_field("type", self.message.kind())?;
        self.message.serialize_data(&mut s)?;
        if let Some(id) = &self.id {
            s.serialize_field("id", id)?;
        }
        if let Some(seq) = self.seq {
            s.serialize_field("seq", &seq)?;
        }
        s.end()
    }
}

impl<M: Message> From<M> for Frame<M> {
    fn from(message: M) -> Self {
        Frame::new(message)
    }
}

/// Defines a message enum with its wire names, plus an `Unknown` variant, and implements
/// [`Message`] for it: one table per direction instead of three hand-kept matches.
macro_rules! message_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident($ty:ty) = $wire:literal $(| $alias:literal)* , )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        pub enum $name {
            $( $(#[$vmeta])* $variant($ty), )*
            /// A `type` this version does not know; passed to the app as it came.
            Unknown {
                /// The wire `type`.
                kind: String,
                /// The raw `data`.
                data: serde_json::Value,
            },
        }

        impl $name {
            /// Decode `data` of type `kind` from either payload source.
            fn decode_payload(
                kind: &str,
                data: impl $crate::protocol::frame::Payload,
            ) -> Result<Self, $crate::protocol::ProtocolError> {
                match kind {
                    $( $wire $(| $alias)* => data.decode(kind).map($name::$variant), )*
                    _ => Ok($name::Unknown { kind: kind.to_owned(), data: data.value()? }),
                }
            }
        }

        impl $crate::protocol::frame::Message for $name {
            #[cfg(not(target_arch = "wasm32"))]
            fn decode_data(
                kind: &str,
                data: Option<&serde_json::value::RawValue>,
            ) -> Result<Self, $crate::protocol::ProtocolError> {
                Self::decode_payload(kind, data)
            }

            fn decode_value(
                kind: &str,
                data: Option<serde_json::Value>,
            ) -> Result<Self, $crate::protocol::ProtocolError> {
                Self::decode_payload(kind, data)
            }

            #[cfg(any(test, all(target_arch = "wasm32", feature = "web")))]
            fn decode_tree<S: $crate::protocol::jsvalue::Source>(
                kind: &str,
                data: Option<S>,
            ) -> Result<Self, $crate::protocol::ProtocolError> {
                Self::decode_payload(kind, $crate::protocol::frame::Tree(data))
            }

            fn kind(&self) -> &str {
                match self {
                    $( $name::$variant(_) => $wire, )*
                    $name::Unknown { kind, .. } => kind,
                }
            }

            fn serialize_data<S: serde::ser::SerializeStruct>(
                &self,
                s: &mut S,
            ) -> Result<(), S::Error> {
                match self {
                    $( $name::$variant(d) => s.serialize_field("data", d), )*
                    $name::Unknown { data, .. } => s.serialize_field("data", data),
                }
            }

            fn data_to_tree<K: $crate::protocol::jsvalue::Sink>(&self) -> K::Node {
                use $crate::protocol::jsvalue::ToTree;
                match self {
                    $( $name::$variant(d) => d.to_tree::<K>(), )*
                    $name::Unknown { data, .. } => data.to_tree::<K>(),
                }
            }

            fn serialize_payload<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                match self {
                    $( $name::$variant(d) => serde::Serialize::serialize(d, s), )*
                    $name::Unknown { data, .. } => serde::Serialize::serialize(data, s),
                }
            }
        }
    };
}
pub(crate) use message_enum;

#[cfg(test)]
mod tests {
    use super::*;

    /// `decode_value` (wasm32's path) reads what `decode_data` reads, and fails alike.
    #[test]
    fn value_and_raw_payloads_decode_alike() {
        for text in [
            r#"{"type":"ping"}"#,
            r#"{"type":"ping","data":null}"#,
            r#"{"type":"ack","data":{"id":"c-1","version":3}}"#,
            r#"{"type":"connected","data":{"sessionId":7,"userId":"42","features":["ack"]}}"#,
            r#"{"type":"shiny_new","data":{"x":[1,2.5,"y"]}}"#,
            r#"{"type":"shiny_new"}"#,
            r#"{"type":"ack","data":{"version":3}}"#,
            r#"{"type":"ack","data":{"id":5}}"#,
        ] {
            let raw: RawFrame<'_> = serde_json::from_str(text).unwrap();
            let value: Option<Value> = raw.data.map(|d| serde_json::from_str(d.get()).unwrap());
            let by_raw = ServerMessage::decode_data(&raw.kind, raw.data);
            let by_value = ServerMessage::decode_value(&raw.kind, value);
            assert_eq!(by_raw, by_value, "{text}");
        }
    }
}
