//! The fuzz targets' bodies on stable Rust: `cargo fuzz` (nightly, `scripts/fuzz.sh`)
//! explores with coverage; this runs the same code (`fuzz/bodies.rs`) over every seed in
//! `fuzz/seeds/` and over inputs made by proptest from mutated seeds, so that the test
//! command checks the properties without nightly. `FUZZ_CASES` (default 2000) inputs per
//! target.

#[path = "../../fuzz/bodies.rs"]
mod bodies;

use std::path::PathBuf;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/seeds")
        .join(target);
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| std::fs::read(entry.expect("dir entry").path()).expect("seed file"))
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
    seeds
}

/// Values that break parsers and bounds, spliced in place of a JSON token.
const TOKENS: &[&str] = &[
    "null",
    "0",
    "-1",
    "1e400",
    "18446744073709551616",
    "18446744073709551615",
    "1.5",
    "\"\"",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "[]",
    "{}",
    "true",
    "\"x\"",
    "{\"type\":\"ping\"}",
    "\n",
];

#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize, usize),
    Token(usize, usize),
    Splice(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Flip(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Insert(i, b)),
        (any::<usize>(), 1usize..16).prop_map(|(i, n)| Edit::Delete(i, n)),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(i, t)| Edit::Token(i, t)),
        (any::<usize>(), any::<usize>()).prop_map(|(i, s)| Edit::Splice(i, s)),
    ]
}

fn mutate(seeds: &[Vec<u8>], pick: usize, edits: &[Edit]) -> Vec<u8> {
    let mut data = seeds[pick % seeds.len()].clone();
    for e in edits {
        let at = |i: usize, len: usize| if len == 0 { 0 } else { i % (len + 1) };
        match *e {
            Edit::Flip(i, b) if !data.is_empty() => {
                let i = i % data.len();
                data[i] ^= b;
            }
            Edit::Flip(..) => {}
            Edit::Insert(i, b) => {
                let i = at(i, data.len());
                data.insert(i, b);
            }
            Edit::Delete(i, n) => {
                let i = at(i, data.len());
                let end = (i + n).min(data.len());
                data.drain(i..end);
            }
            Edit::Token(i, t) => {
                // Replace the value after a `:` (or insert at a position) with a token.
                let i = at(i, data.len());
                let start = data[..i]
                    .iter()
                    .rposition(|&b| b == b':')
                    .map_or(i, |p| p + 1);
                let end = data[start..]
                    .iter()
                    .position(|&b| b == b',' || b == b'}')
                    .map_or(data.len(), |p| start + p);
                data.splice(start..end, TOKENS[t].bytes());
            }
            Edit::Splice(i, s) => {
                let other = &seeds[s % seeds.len()];
                let i = at(i, data.len());
                data.truncate(i);
                data.extend_from_slice(&other[other.len() / 2..]);
            }
        }
    }
    data
}

fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

fn run(target: &str, body: fn(&[u8])) {
    let seeds = seeds(target);
    for seed in &seeds {
        body(seed);
    }
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let inputs = (
        any::<usize>(),
        proptest::collection::vec(edit(), 1..8),
        any::<bool>(),
        ".{0,64}",
    );
    runner
        .run(&inputs, |(pick, edits, raw, text)| {
            if raw {
                body(text.as_bytes());
            } else {
                body(&mutate(&seeds, pick, &edits));
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{target}: {e}"));
}

#[test]
fn client_decode() {
    run("client_decode", bodies::client_decode);
}

#[test]
fn client_core() {
    run("client_core", bodies::client_core);
}

#[test]
fn server_decode() {
    run("server_decode", bodies::server_decode);
}

#[test]
fn server_handler() {
    run("server_handler", bodies::server_handler);
}
