// order-functions.mjs IN OUT: name each function of the optimised .wasm IN by its place in
// an order where alike functions sit next to each other, and write OUT with those names
// (a `name` section). build.sh then runs `wasm-opt --reorder-functions-by-name
// --strip-debug`: binaryen moves the code and renumbers every reference to a function
// (calls, tables, exports), and the names go. Imports are named in their own order, so
// that they keep it.
//
// Why: gzip (the 60 KB budget is gzipped) finds repeats only within its 32 KB window.
// Rust emits many near-copies (one instance of a generic per type, readers and writers
// of similar structs); side by side they compress against each other. Measured: 1.2 KB
// gzipped less than ordering by Rust path, 2.3 KB less than binaryen's order (README "Size").
//
// The order: start with the biggest function, then repeatedly take, of the 32 functions
// whose 4-byte sequences overlap most (cosine of the two sets) with the last one taken,
// the one that deflate compresses most after the last 32 KB placed (zlib with that code
// as its dictionary: gzip's own window), against its size compressed alone. Measured on
// four module layouts (-ocimfs 12, 13, 15, 17), 137 to 559 B gzipped less than taking the
// most alike by sequences alone. Deterministic: ties go to the lower index. What a
// function does does not change: only where it sits, and with that the indices that refer
// to it (a few hundred bytes more raw, LEB-encoded).
//
// The module is checked as it is read (wasm-read.mjs); anything unexpected fails the build
// rather than name the wrong functions.
import fs from "node:fs";
import zlib from "node:zlib";

import { WasmError, readModule } from "./wasm-read.mjs";

const [input, output] = process.argv.slice(2);
if (!input || !output) {
  console.error("usage: node order-functions.mjs IN.wasm OUT.wasm");
  process.exit(2);
}
const wasm = fs.readFileSync(input);
function fail(why) {
  console.error(`order-functions.mjs: ${why}`);
  process.exit(1);
}

function encode(n) {
  const out = [];
  do {
    let b = n & 0x7f;
    n = Math.floor(n / 128);
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
}

let module;
try {
  module = readModule(wasm);
} catch (e) {
  if (!(e instanceof WasmError)) throw e;
  fail(`${input}: ${e.message}`);
}
if (module.sections.some((s) => s.id === 0 && s.name === "name")) {
  fail(`${input} already has a name section (run wasm-opt --strip-debug first)`);
}
const { imported } = module;
const bodies = module.bodies.map((b) => wasm.subarray(b.from, b.end));

// Each body as its set of 4-byte sequences.
const grams = bodies.map((b) => {
  const set = new Set();
  for (let i = 0; i + 4 <= b.length; i++) set.add(b.readInt32LE(i));
  return set;
});
function similarity(a, b) {
  if (a.size === 0 || b.size === 0) return 0;
  const [small, large] = a.size < b.size ? [a, b] : [b, a];
  let common = 0;
  for (const g of small) if (large.has(g)) common++;
  // Ochiai (cosine) overlap: 170 B better than Jaccard here, and far better than
  // overlap over the smaller set (which pairs small functions with anything).
  return common / Math.sqrt(a.size * b.size);
}

// How many of the most alike functions are tried with deflate at each step, and the
// window gzip looks back in.
const TRIED = 32;
const WINDOW = 32768;
const alone = bodies.map((b) => zlib.deflateRawSync(b, { level: 9 }).length);
const left = new Set(bodies.keys());
let current = 0;
for (const i of left) if (bodies[i].length > bodies[current].length) current = i;
const order = [current];
left.delete(current);
let window = Buffer.from(bodies[current]);
while (left.size) {
  const alike = [];
  for (const j of left) alike.push([similarity(grams[current], grams[j]), j]);
  alike.sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  let best = -1;
  let bestSaving = -Infinity;
  for (const [, j] of alike.slice(0, TRIED)) {
    const after = zlib.deflateRawSync(bodies[j], { level: 9, dictionary: window }).length;
    if (alone[j] - after > bestSaving) {
      bestSaving = alone[j] - after;
      best = j;
    }
  }
  current = best;
  order.push(current);
  left.delete(current);
  window = Buffer.concat([window, bodies[current]]);
  window = window.subarray(Math.max(0, window.length - WINDOW));
}

// The name section: subsection 1, function names, in index order.
const rank = new Array(bodies.length);
order.forEach((index, place) => (rank[index] = place));
const names = encode(imported + bodies.length);
for (let i = 0; i < imported; i++) {
  const name = Buffer.from("i" + String(i).padStart(6, "0"));
  names.push(...encode(i), ...encode(name.length), ...name);
}
for (let i = 0; i < bodies.length; i++) {
  const name = Buffer.from("f" + String(rank[i]).padStart(6, "0"));
  names.push(...encode(imported + i), ...encode(name.length), ...name);
}
const sub = [1, ...encode(names.length), ...names];
const content = [...encode(4), ...Buffer.from("name"), ...sub];
fs.writeFileSync(output, Buffer.concat([wasm, Buffer.from([0, ...encode(content.length), ...content])]));
