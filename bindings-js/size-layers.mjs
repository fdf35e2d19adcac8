// size-layers.mjs NAMES.wasm RANKED.wasm SHIPPED.wasm PACKAGE.wasm [REGEX...]: where the
// gzipped bytes of the package go, by layer (the core, the protocol's readers and writers,
// the async client, the bindings...), as a Markdown table.
//
// A layer's share is what `gzip -9` saves when the layer's function bodies are taken out of
// the module: the bytes it costs in place, next to the rest, which is what the budget
// counts (its raw size would overstate code that compresses against its neighbours).
// The three modules are what `build.sh` leaves with PITCHEY_JS_NAMES_DIR (size-layers.sh):
// NAMES, optimised with the functions' Rust names; RANKED, the same functions named by
// their rank in the order of order-functions.mjs; SHIPPED, the package's module (its
// functions moved and renumbered by rank) with those names. PACKAGE is the `.wasm` of
// dist/: SHIPPED's code, its import and export names shortened (short-names.mjs). The
// measure is on PACKAGE; a function's Rust name, through its rank, says its layer:
// generic instances go with the crate of their type (a `Vec<core::Event>` is the core's).
//
// Each REGEX given after the modules adds a row: the share of every function whose Rust
// name it matches (case-insensitive), whatever its layer, e.g. `draft|merge` for a feature.
//
// The shares do not add up to the whole: data, imports, exports and tables are no one
// layer's, and neither is what two layers share (it is saved only when both go).
import fs from "node:fs";
import { spawnSync } from "node:child_process";

import { WasmError, readModule } from "./wasm-read.mjs";

const [namesFile, rankedFile, shippedFile, packageFile, ...patterns] = process.argv.slice(2);
if (!packageFile) {
  console.error(
    "usage: node size-layers.mjs NAMES.wasm RANKED.wasm SHIPPED.wasm PACKAGE.wasm [REGEX...]",
  );
  process.exit(2);
}
function fail(why) {
  console.error(`size-layers.mjs: ${why}`);
  process.exit(1);
}

// The first pattern that matches anywhere in a function's Rust name (closure and generic
// parameters included) names its layer.
const LAYERS = [
  ["the JS bindings (pitchey-realtime-js)", /pitchey_realtime_js/],
  ["the async client and its futures", /pitchey_realtime::client|futures/],
  ["the browser transport", /pitchey_realtime::transport/],
  ["the protocol's readers and writers", /pitchey_realtime::protocol|FromTree|ToTree/],
  ["the core", /pitchey_realtime::core/],
  [
    "wasm-bindgen, js-sys, web-sys, exports",
    /^client_|^draft_|__wbg|^export|wasm_bindgen|js_sys|web_sys|gloo/,
  ],
  ["serde_json's Value and its BTreeMap", /serde_json|btree/],
  [
    "the allocator and compiler builtins",
    /talc|alloc::alloc|__rust|compiler_builtins|memcpy|memset|memmove/,
  ],
];
const OTHER = "everything else (std, core, alloc, rand_pcg...)";

// The module in `file`, read by wasm-read.mjs.
function read(file) {
  const wasm = fs.readFileSync(file);
  try {
    return { wasm, ...readModule(wasm) };
  } catch (e) {
    if (!(e instanceof WasmError)) throw e;
    fail(`${file}: ${e.message}`);
  }
}

const names = read(namesFile);
const ranked = read(rankedFile);
const shipped = read(shippedFile);
const m = read(packageFile);
// RANKED is NAMES rewritten once more by wasm-opt (without its names), which re-encodes
// some bodies a few bytes differently but keeps every function in its place: the same
// functions, each of about the same size.
const sameFunctions = (x, y) =>
  x.imported === y.imported &&
  x.bodies.length === y.bodies.length &&
  x.bodies.every((f, i) => {
    const g = y.bodies[i];
    return Math.abs(f.end - f.from - (g.end - g.from)) <= 16;
  });
if (!sameFunctions(names, ranked)) fail(`${rankedFile} is not ${namesFile} ranked`);
if (shipped.imported !== m.imported || shipped.bodies.length !== m.bodies.length) {
  fail(`${packageFile} is not ${shippedFile}`);
}
const code = (x) => x.sections.find((s) => s.id === 10);
const [a, b] = [code(shipped), code(m)];
if (!shipped.wasm.subarray(a.start, a.end).equals(m.wasm.subarray(b.start, b.end))) {
  fail(`${packageFile} is not ${shippedFile} (their code differs)`);
}
// Rank name (in RANKED and SHIPPED) -> Rust name (in NAMES, at the same index as in RANKED).
const rustName = new Map();
let unnamed = 0;
for (let i = 0; i < ranked.bodies.length; i++) {
  const rank = ranked.names.get(ranked.imported + i);
  if (rank === undefined) fail(`${rankedFile}: function ${i} has no rank`);
  const name = names.names.get(names.imported + i);
  if (name === undefined) unnamed++;
  rustName.set(rank, name ?? "");
}
if (unnamed) {
  console.error(`size-layers.mjs: ${unnamed} functions have no name (counted as everything else)`);
}
const nameOf = (i) => {
  const rank = shipped.names.get(shipped.imported + i);
  if (!rustName.has(rank)) fail(`${shippedFile}: function ${i} has no rank of ${rankedFile}`);
  // Crate hashes (`core[1a2b...]`, up to 16 hex digits) out, slices (`[u8]`) kept.
  const name = rustName.get(rank).replace(/(\w)\[[0-9a-f]{1,16}\]/g, "$1");
  if (/\w\[[0-9a-f]+\]/.test(name)) fail(`a crate hash left in ${name}`);
  return name;
};
const rust = m.bodies.map((_, i) => nameOf(i));
const layers = rust.map((name) => {
  const found = LAYERS.find(([, re]) => re.test(name));
  return found ? found[0] : OTHER;
});

// The package's module (it has no custom sections left), less the bodies `without`
// picks; the code section's header (its size and count) is left out too.
function module(without) {
  const parts = [m.wasm.subarray(0, 8)];
  for (const s of m.sections) {
    if (s.id === 0) continue;
    if (s.id !== 10) {
      parts.push(m.wasm.subarray(s.from, s.end));
      continue;
    }
    for (let i = 0; i < m.bodies.length; i++) {
      if (!without(i)) parts.push(m.wasm.subarray(m.bodies[i].at, m.bodies[i].end));
    }
  }
  return Buffer.concat(parts);
}
// `gzip -9`, as build.sh counts the budget (its deflate is not zlib's: 800 B less here).
function gz(buf) {
  const out = spawnSync("gzip", ["-9", "-c"], { input: buf, maxBuffer: 1 << 26 });
  if (out.status !== 0) fail(`gzip failed: ${out.stderr}`);
  return out.stdout.length;
}

const all = module(() => false);
const whole = gz(all);
const rows = [];
for (const name of new Set([...LAYERS.map(([n]) => n), OTHER])) {
  const raw = m.bodies.reduce((sum, b, i) => sum + (layers[i] === name ? b.end - b.at : 0), 0);
  if (raw === 0) continue;
  rows.push([name, raw, whole - gz(module((i) => layers[i] === name))]);
}
rows.sort((a, b) => b[2] - a[2]);
const kb = (n) => (n / 1024).toFixed(1);
console.log(`| layer | raw KB | gzipped KB (its share) |`);
console.log(`| --- | --- | --- |`);
for (const [name, raw, share] of rows) console.log(`| ${name} | ${kb(raw)} | ${kb(share)} |`);
const shared = rows.reduce((sum, [, , share]) => sum + share, 0);
console.log(`| data, imports, exports, tables, and what layers share | | ${kb(whole - shared)} |`);
console.log(`| **the package's .wasm** | ${kb(all.length)} | ${kb(whole)} |`);
for (const pattern of patterns) {
  const re = new RegExp(pattern, "i");
  const picked = (i) => re.test(rust[i]);
  const raw = m.bodies.reduce((sum, b, i) => sum + (picked(i) ? b.end - b.at : 0), 0);
  const share = whole - gz(module(picked));
  console.log(`| functions matching \`${pattern}\` | ${kb(raw)} | ${kb(share)} |`);
}
