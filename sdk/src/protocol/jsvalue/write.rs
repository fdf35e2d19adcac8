//! Hand-written writers ([`ToTree`]): what the browser encodes with (frames, snapshots,
//! the payloads handed to JS), without serde's `Serialize` derives and a serializer per
//! type. Same names and the same optional fields left out as the types' `#[serde(...)]`
//! attributes; the host tests compare every writer's output with `serde_json::to_value`.

use serde_json::{Map, Value};

use super::Sink;

/// A type written into a JSON-shaped tree by hand.
pub trait ToTree {
    /// `self` as a tree node.
    fn to_tree<K: Sink>(&self) -> K::Node;
}

/// `value` as a node of `K`'s tree.
pub fn write_tree<K: Sink, T: ToTree + ?Sized>(value: &T) -> K::Node {
    value.to_tree::<K>()
}

/// An object being written, field by field in the types' declaration order.
pub struct ObjWriter<K: Sink>(K::Obj);

impl<K: Sink> Default for ObjWriter<K> {
    fn default() -> Self {
        ObjWriter(K::obj())
    }
}

impl<K: Sink> ObjWriter<K> {
    /// Write `name`.
    pub fn field<T: ToTree + ?Sized>(&mut self, name: &str, value: &T) -> &mut Self {
        K::set(&mut self.0, name, value.to_tree::<K>());
        self
    }

    /// Write `name` unless it is `None` (`skip_serializing_if = "Option::is_none"`).
    pub fn opt<T: ToTree>(&mut self, name: &str, value: &Option<T>) -> &mut Self {
        if let Some(v) = value {
            self.field(name, v);
        }
        self
    }

    /// Write `name` as a node already made.
    pub fn node(&mut self, name: &str, node: K::Node) -> &mut Self {
        K::set(&mut self.0, name, node);
        self
    }

    /// The object.
    pub fn end(self) -> K::Node {
        K::end_obj(self.0)
    }
}

impl ToTree for bool {
    fn to_tree<K: Sink>(&self) -> K::Node {
        K::bool(*self)
    }
}

impl ToTree for u64 {
    fn to_tree<K: Sink>(&self) -> K::Node {
        K::number(*self as f64)
    }
}

impl ToTree for u32 {
    fn to_tree<K: Sink>(&self) -> K::Node {
        K::number((*self).into())
    }
}

impl ToTree for f64 {
    fn to_tree<K: Sink>(&self) -> K::Node {
        K::number(*self)
    }
}

impl ToTree for str {
    fn to_tree<K: Sink>(&self) -> K::Node {
        K::string(self)
    }
}

impl ToTree for String {
    fn to_tree<K: Sink>(&self) -> K::Node {
        K::string(self)
    }
}

impl<T: ToTree + ?Sized> ToTree for &T {
    fn to_tree<K: Sink>(&self) -> K::Node {
        (**self).to_tree::<K>()
    }
}

impl<T: ToTree> ToTree for Option<T> {
    fn to_tree<K: Sink>(&self) -> K::Node {
        match self {
            Some(v) => v.to_tree::<K>(),
            None => K::null(),
        }
    }
}

impl<T: ToTree> ToTree for [T] {
    fn to_tree<K: Sink>(&self) -> K::Node {
        let mut seq = K::seq();
        for v in self {
            K::push(&mut seq, v.to_tree::<K>());
        }
        K::end_seq(seq)
    }
}

impl<T: ToTree> ToTree for Vec<T> {
    fn to_tree<K: Sink>(&self) -> K::Node {
        self.as_slice().to_tree::<K>()
    }
}

impl ToTree for Map<String, Value> {
    fn to_tree<K: Sink>(&self) -> K::Node {
        let mut o = ObjWriter::<K>::default();
        for (k, v) in self {
            o.field(k, v);
        }
        o.end()
    }
}

impl ToTree for Value {
    fn to_tree<K: Sink>(&self) -> K::Node {
        match self {
            Value::Null => K::null(),
            Value::Bool(b) => K::bool(*b),
            // Integers above 2^53 lose precision, as in JS.
            Value::Number(n) => K::number(n.as_f64().unwrap_or(f64::NAN)),
            Value::String(s) => K::string(s),
            Value::Array(items) => items.to_tree::<K>(),
            Value::Object(map) => map.to_tree::<K>(),
        }
    }
}
