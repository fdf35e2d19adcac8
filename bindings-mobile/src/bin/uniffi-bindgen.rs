//! The uniffi code generator for this crate (feature `cli`, never in the shipped library):
//! `cargo run -p pitchey-realtime-mobile --features cli --bin uniffi-bindgen -- generate
//! --library <target>/debug/libpitchey_realtime_mobile.so --language kotlin --out-dir <dir>`.

fn main() {
    uniffi::uniffi_bindgen_main()
}
