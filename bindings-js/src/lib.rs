//! # pitchey-realtime-js
//!
//! The browser package `@pitchey/realtime`: the SDK's async
//! [`Client`](pitchey_realtime::client::Client) exported to JavaScript with wasm-bindgen,
//! camelCase, promises for async calls, typed errors, and TypeScript declarations for every
//! option, event and message. Thin glue: every protocol rule is the SDK's.
//!
//! - [`types`]: the JavaScript shapes (with `#[derive(Tsify)]`, so the `.d.ts` is
//!   generated from them).
//! - [`convert`]: pure conversions between SDK values and those shapes (host-tested).
//! - `js` (wasm32 only): the exported `Client` and `Draft` classes.
//!
//! Build the npm package with `bindings-js/build.sh`; test it in headless Chromium with
//! `scripts/test-js.sh`.

#![warn(missing_docs)]

pub mod convert;
mod options;
pub mod types;
mod writers;

#[cfg(target_arch = "wasm32")]
pub mod js;

/// The allocator: talc's wasm allocator is smaller than std's dlmalloc (the page is
/// single-threaded; it grows the linear memory as needed).
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();
