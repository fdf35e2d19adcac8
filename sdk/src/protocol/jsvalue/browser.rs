//! The browser's tree: JS values (`JSON.parse` output, `JSON.stringify` input).

use js_sys::{Array, Object, Reflect};
use wasm_bindgen::{JsCast, JsValue};

use super::{Error, FromTree, Node, Sink, Source, ToTree};

/// A protocol type (or `serde_json::Value`) from a JS value, by its hand-written reader
/// (`undefined` reads as `null`).
pub fn read_js<T: FromTree>(value: JsValue) -> Result<T, Error> {
    super::read::read_tree(value)
}

/// `value` as a plain JS value: objects and arrays, numbers (not `BigInt`s), strings.
pub fn write_js<T: ToTree + ?Sized>(value: &T) -> JsValue {
    value.to_tree::<Js>()
}

impl Source for JsValue {
    fn node(self) -> Node<Self> {
        if self.is_null() || self.is_undefined() {
            Node::Null
        } else if let Some(b) = self.as_bool() {
            Node::Bool(b)
        } else if let Some(n) = self.as_f64() {
            Node::Number(n)
        } else if let Some(s) = self.as_string() {
            Node::Str(s)
        } else if Array::is_array(&self) {
            Node::Array(self.unchecked_into::<Array>().iter().collect())
        } else if self.is_object() && !self.is_function() {
            let object: &Object = self.unchecked_ref();
            let keys = Object::keys(object);
            let values = Object::values(object);
            Node::Object(
                keys.iter()
                    .zip(values.iter())
                    .map(|(k, v)| (k.as_string().unwrap_or_default(), v))
                    .collect(),
            )
        } else {
            Node::Other
        }
    }
}

/// Builds JS values.
pub(crate) struct Js;

impl Sink for Js {
    type Node = JsValue;
    type Seq = Array;
    type Obj = Object;

    fn null() -> JsValue {
        JsValue::NULL
    }
    fn bool(v: bool) -> JsValue {
        JsValue::from_bool(v)
    }
    fn number(v: f64) -> JsValue {
        JsValue::from_f64(v)
    }
    fn string(v: &str) -> JsValue {
        JsValue::from_str(v)
    }
    fn seq() -> Array {
        Array::new()
    }
    fn push(seq: &mut Array, v: JsValue) {
        seq.push(&v);
    }
    fn end_seq(seq: Array) -> JsValue {
        seq.into()
    }
    fn obj() -> Object {
        Object::new()
    }
    fn set(obj: &mut Object, key: &str, v: JsValue) {
        // Setting a property on a plain object cannot throw.
        let _ = Reflect::set(obj, &JsValue::from_str(key), &v);
    }
    fn end_obj(obj: Object) -> JsValue {
        obj.into()
    }
}
