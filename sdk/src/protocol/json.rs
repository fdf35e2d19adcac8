//! The JSON text codec of the SDK: frames, payloads and snapshots go through here.
//!
//! - Everywhere but the browser: `serde_json`.
//! - In the browser (`wasm32` with feature `web`): the browser's own `JSON.parse` and
//!   `JSON.stringify`, with `protocol::jsvalue` between JS values and Rust types. The
//!   browser's parser is already there; compiling `serde_json`'s parser and writer into the
//!   package cost about 48 KB of the `.wasm`. `serde_json::Value` is still the type of
//!   free-form JSON (its serde impls are small; its text code is what is left out).
//!
//! Differences in the browser, all at the edges of JSON: numbers are JS numbers
//! (integers above 2^53 lose precision; `1.0` is written `1`), and error messages say what
//! serde said without a position or the rejected value (see `protocol/jsvalue`).

use serde::Serialize;
use serde::de::DeserializeOwned;

/// What the SDK encodes as JSON: serde's types (native), which the browser writes with their
/// hand-written tree writers (`protocol/jsvalue/write.rs`).
pub(crate) trait Encode: Serialize + super::jsvalue::ToTree {}
impl<T: Serialize + super::jsvalue::ToTree + ?Sized> Encode for T {}

/// `value` as JSON text, or what went wrong.
pub(crate) fn to_string<T: Encode + ?Sized>(value: &T) -> Result<String, String> {
    imp::to_string(value)
}

/// What the SDK decodes from JSON: serde's types (native), which the browser reads with their
/// hand-written tree readers (`protocol/jsvalue/read.rs`) instead of serde's visitors.
pub(crate) trait Decode: DeserializeOwned + super::jsvalue::FromTree {}
impl<T: DeserializeOwned + super::jsvalue::FromTree> Decode for T {}

/// A `T` from JSON text, or what went wrong.
pub(crate) fn from_str<T: Decode>(text: &str) -> Result<T, String> {
    imp::from_str(text)
}

#[cfg(not(all(target_arch = "wasm32", feature = "web")))]
mod imp {
    pub(super) fn to_string<T: super::Encode + ?Sized>(value: &T) -> Result<String, String> {
        serde_json::to_string(value).map_err(|e| e.to_string())
    }

    pub(super) fn from_str<T: super::Decode>(text: &str) -> Result<T, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }
}

#[cfg(all(target_arch = "wasm32", feature = "web"))]
pub(crate) use browser::parse;

#[cfg(all(target_arch = "wasm32", feature = "web"))]
use browser as imp;

#[cfg(all(target_arch = "wasm32", feature = "web"))]
mod browser {
    use wasm_bindgen::{JsCast, JsValue};

    use crate::protocol::jsvalue;

    /// `JSON.parse(text)`.
    pub(crate) fn parse(text: &str) -> Result<JsValue, String> {
        js_sys::JSON::parse(text).map_err(|e| {
            // A SyntaxError; its message says where.
            e.dyn_ref::<js_sys::Error>()
                .map(|e| String::from(e.message()))
                .unwrap_or_else(|| String::from("invalid JSON"))
        })
    }

    pub(super) fn to_string<T: super::Encode + ?Sized>(value: &T) -> Result<String, String> {
        // Plain objects and numbers, as JSON has them (not `Map`s and `BigInt`s).
        let js = jsvalue::write_js(value);
        js_sys::JSON::stringify(&js)
            .map(String::from)
            .map_err(|_| String::from("JSON.stringify failed"))
    }

    pub(super) fn from_str<T: super::Decode>(text: &str) -> Result<T, String> {
        Ok(jsvalue::read_js(parse(text)?)?)
    }
}
