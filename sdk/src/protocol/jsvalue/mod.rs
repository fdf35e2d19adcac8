//! Rust values from and to JSON-shaped trees (in the browser: the JS values of `JSON.parse`
//! / for `JSON.stringify`), small enough for the `.wasm`. It replaces `serde-wasm-bindgen`.
//!
//! - Reading (`read`, [`FromTree`]): hand-written readers of the protocol types
//!   (`protocol.rs`), not serde's visitors, which were most of the package's protocol
//!   code. Errors say what kind of value was wrong, never its digits, so float
//!   formatting is never linked.
//! - Writing (`write`, [`ToTree`]): hand-written writers of the same types
//!   (`protocol_write.rs`), not serde's `Serialize` derives.
//!
//! Both are generic over the tree ([`Source`], [`Sink`]): the browser's is the JS value
//! (`browser`); the host tests use `serde_json::Value` to check both against `serde_json`
//! on the protocol's test vectors, so the two paths cannot drift.

// Compiled everywhere so that the bindings' readers are host-tested too; only the browser
// (and the tests) use it.
#![cfg_attr(
    not(any(test, all(target_arch = "wasm32", feature = "web"))),
    allow(dead_code)
)]

mod protocol;
mod protocol_write;
pub(crate) mod read;
pub(crate) mod write;

pub use read::{
    Field, FromTree, Placeholder, SetField, Setter, invalid_type, missing, object, read_into,
    read_struct, read_tree, variant,
};
pub use write::{ObjWriter, ToTree, write_tree};

/// `serde_json::Value` read as a browser would see it (one number type): what the host
/// tests read with.
impl Source for serde_json::Value {
    fn node(self) -> Node<Self> {
        use serde_json::Value;
        match self {
            Value::Null => Node::Null,
            Value::Bool(b) => Node::Bool(b),
            Value::Number(n) => n.as_f64().map_or(Node::Other, Node::Number),
            Value::String(s) => Node::Str(s),
            Value::Array(items) => Node::Array(items),
            Value::Object(map) => Node::Object(map.into_iter().collect()),
        }
    }
}

#[cfg(all(target_arch = "wasm32", feature = "web"))]
mod browser;
#[cfg(all(target_arch = "wasm32", feature = "web"))]
pub use browser::{read_js, write_js};

#[cfg(test)]
mod tests;

use std::fmt;

/// What a JSON-shaped tree node is, as the reader sees it (JS semantics: one number type).
pub enum Node<S> {
    /// `null` (and, in JS, `undefined`).
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A number.
    Number(f64),
    /// A string.
    Str(String),
    /// An array, its elements not read yet.
    Array(Vec<S>),
    /// An object's own properties in order, their values not read yet.
    Object(Vec<(String, S)>),
    /// Anything JSON has not (a JS function, symbol, bigint).
    Other,
}

/// A tree the reader can walk.
pub trait Source: Sized + 'static {
    /// What this node is.
    fn node(self) -> Node<Self>;
}

/// A tree the writer builds.
pub trait Sink {
    /// A finished node.
    type Node;
    /// An array being filled.
    type Seq;
    /// An object being filled.
    type Obj;
    /// `null`.
    fn null() -> Self::Node;
    /// A boolean.
    fn bool(v: bool) -> Self::Node;
    /// A number (JSON has one number type; integers above 2^53 lose precision, as in JS).
    fn number(v: f64) -> Self::Node;
    /// A string.
    fn string(v: &str) -> Self::Node;
    /// An empty array.
    fn seq() -> Self::Seq;
    /// Append to an array.
    fn push(seq: &mut Self::Seq, v: Self::Node);
    /// The array as a node.
    fn end_seq(seq: Self::Seq) -> Self::Node;
    /// An empty object.
    fn obj() -> Self::Obj;
    /// Set a property.
    fn set(obj: &mut Self::Obj, key: &str, v: Self::Node);
    /// The object as a node.
    fn end_obj(obj: Self::Obj) -> Self::Node;
}

/// Why a value could not be read: serde's wording, without the rejected value's digits
/// (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(String);

impl Error {
    /// The message.
    pub fn message(&self) -> &str {
        &self.0
    }

    pub(crate) fn text(parts: &[&str]) -> Self {
        Error(parts.concat())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// Builds `serde_json::Value`s, numbers as floats (as JS has them): what the host tests
/// write into.
pub struct JsonSink;

impl Sink for JsonSink {
    type Node = serde_json::Value;
    type Seq = Vec<serde_json::Value>;
    type Obj = serde_json::Map<String, serde_json::Value>;
    fn null() -> Self::Node {
        serde_json::Value::Null
    }
    fn bool(v: bool) -> Self::Node {
        serde_json::Value::Bool(v)
    }
    fn number(v: f64) -> Self::Node {
        serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, serde_json::Value::Number)
    }
    fn string(v: &str) -> Self::Node {
        serde_json::Value::String(v.to_owned())
    }
    fn seq() -> Self::Seq {
        Vec::new()
    }
    fn push(seq: &mut Self::Seq, v: Self::Node) {
        seq.push(v);
    }
    fn end_seq(seq: Self::Seq) -> Self::Node {
        serde_json::Value::Array(seq)
    }
    fn obj() -> Self::Obj {
        serde_json::Map::new()
    }
    fn set(obj: &mut Self::Obj, key: &str, v: Self::Node) {
        obj.insert(key.to_owned(), v);
    }
    fn end_obj(obj: Self::Obj) -> Self::Node {
        serde_json::Value::Object(obj)
    }
}

impl From<Error> for String {
    fn from(e: Error) -> String {
        e.0
    }
}

/// `a`, `b`, `c` as serde lists them.
pub(crate) fn one_of(names: &'static [&'static str]) -> String {
    match names {
        [] => String::from("there are no fields"),
        [one] => ["`", one, "`"].concat(),
        _ => {
            let mut s = String::from("one of ");
            for (i, n) in names.iter().enumerate() {
                if i > 0 {
                    s.push_str(", ");
                }
                s.push('`');
                s.push_str(n);
                s.push('`');
            }
            s
        }
    }
}
