// bindings-js/short-names.mjs DIST: shorten the names the .wasm and its JS glue use for
// each other (build.sh runs it on dist/).
//
// wasm-bindgen names each import after its JS function plus a 16-hex-digit hash
// (`__wbg_addEventListener_847fd86b8c33ec43`) and each closure shim after its full Rust
// path (up to 334 characters). Each name is in the .wasm and again in the glue; the
// hashes do not compress. No user sees these names: the glue is the only code that calls
// into the .wasm or is called from it. So each becomes `$` plus a short base-36 number, in
// the .wasm's import and export sections and, as the same identifier, in the glue, the
// entry module and the .wasm's .d.ts. Names a person might read (`memory`, the classes)
// stay. The `producers` and `target_features` custom sections are dropped on the way.
//
// wasm-opt's `--minify-imports-and-exports` does not do this here: it leaves imports of a
// named JS module alone, and it cannot rewrite the glue.

import fs from "node:fs";
import path from "node:path";

const dist = process.argv[2];
if (!dist) {
  console.error("usage: node short-names.mjs DIST");
  process.exit(2);
}
const NAME = "pitchey_realtime_js";
const files = {
  wasm: path.join(dist, `${NAME}_bg.wasm`),
  glue: path.join(dist, `${NAME}_bg.js`),
  entry: path.join(dist, `${NAME}.js`),
  types: path.join(dist, `${NAME}_bg.wasm.d.ts`),
};
const GLUE_MODULE = `./${NAME}_bg.js`;
/** Custom sections dropped on the way: which compilers made the module, and the features
 * it was built for (`wasm-opt -g` builds keep them; no runtime or bundler reads them). */
const DROPPED_CUSTOM = new Set(["producers", "target_features"]);

// ---- reading and writing the binary format -------------------------------------------

class Reader {
  constructor(bytes, at = 0) {
    this.bytes = bytes;
    this.at = at;
  }
  byte() {
    if (this.at >= this.bytes.length) throw new Error("short-names: truncated .wasm");
    return this.bytes[this.at++];
  }
  u32() {
    let result = 0;
    let shift = 0;
    for (;;) {
      const b = this.byte();
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
      shift += 7;
      if (shift > 35) throw new Error("short-names: bad LEB128 in the .wasm");
    }
  }
  name() {
    const len = this.u32();
    const start = this.at;
    this.at += len;
    if (this.at > this.bytes.length) throw new Error("short-names: truncated name");
    return Buffer.from(this.bytes.subarray(start, this.at)).toString("utf8");
  }
  /** The bytes read since `start`, as they are. */
  since(start) {
    return this.bytes.subarray(start, this.at);
  }
}

function u32(n) {
  const out = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Buffer.from(out);
}

function name(s) {
  const b = Buffer.from(s, "utf8");
  return Buffer.concat([u32(b.length), b]);
}

/** Skip a table's or memory's limits (flags: 1 = has a maximum; other bits: shared, 64-bit). */
function skipLimits(r) {
  const flags = r.byte();
  r.u32();
  if (flags & 1) r.u32();
}

/** Skip an import's description, whose kind is `kind`. */
function skipImportDesc(r, kind) {
  switch (kind) {
    case 0: // function: its type index
      r.u32();
      break;
    case 1: // table: element type, limits
      r.byte();
      skipLimits(r);
      break;
    case 2: // memory
      skipLimits(r);
      break;
    case 3: // global: value type, mutability
      r.byte();
      r.byte();
      break;
    case 4: // tag: attribute, type index
      r.byte();
      r.u32();
      break;
    default:
      throw new Error(`short-names: unknown import kind ${kind}`);
  }
}

// ---- the renaming --------------------------------------------------------------------

const bytes = fs.readFileSync(files.wasm);
const glue = fs.readFileSync(files.glue, "utf8");
const entry = fs.readFileSync(files.entry, "utf8");
const types = fs.readFileSync(files.types, "utf8");
const publicTypes = fs.readFileSync(path.join(dist, `${NAME}.d.ts`), "utf8");
const everything = [glue, entry, types].join("\n");

// What the package exports to its users keeps its name, whatever it starts with: the names
// in the entry's `export { ... }` and those the public .d.ts declares.
const publicNames = new Set();
for (const list of entry.matchAll(/export\s*\{([^}]*)\}/g)) {
  for (const token of list[1].match(/[A-Za-z_$][\w$]*/g) ?? []) publicNames.add(token);
}
for (const m of publicTypes.matchAll(/export\s+(?:declare\s+)?(?:class|function|const|let|interface|type|enum)\s+([A-Za-z_$][\w$]*)/g)) {
  publicNames.add(m[1]);
}

const renames = new Map();
let counter = 0;
function shortName(old) {
  if (!renames.has(old)) {
    let fresh;
    do {
      fresh = "$" + (counter++).toString(36);
    } while (new RegExp(`(^|[^\\w$])\\${fresh}(?![\\w$])`).test(everything));
    renames.set(old, fresh);
  }
  return renames.get(old);
}

/** Export names the glue alone uses: wasm-bindgen's own and the classes' methods. */
function renamedExport(s) {
  return !publicNames.has(s) && /^(__wbg_|__wbindgen_|wasm_bindgen_|client_|draft_)/.test(s);
}

if (bytes.readUInt32LE(0) !== 0x6d736100) throw new Error("short-names: not a .wasm");
const out = [bytes.subarray(0, 8)];
const r = new Reader(bytes, 8);
while (r.at < bytes.length) {
  const header = r.at;
  const id = r.byte();
  const size = r.u32();
  const start = r.at;
  const end = start + size;
  if (id === 2) {
    const parts = [];
    const count = r.u32();
    parts.push(u32(count));
    for (let i = 0; i < count; i++) {
      const module = r.name();
      const field = r.name();
      const kind = r.byte();
      const descStart = r.at;
      skipImportDesc(r, kind);
      const renamed = module === GLUE_MODULE ? shortName(field) : field;
      parts.push(name(module), name(renamed), Buffer.from([kind]), r.since(descStart));
    }
    if (r.at !== end) throw new Error("short-names: import section size mismatch");
    const body = Buffer.concat(parts);
    out.push(Buffer.from([id]), u32(body.length), body);
  } else if (id === 7) {
    const parts = [];
    const count = r.u32();
    parts.push(u32(count));
    for (let i = 0; i < count; i++) {
      const field = r.name();
      const descStart = r.at;
      r.byte();
      r.u32();
      const renamed = renamedExport(field) ? shortName(field) : field;
      parts.push(name(renamed), r.since(descStart));
    }
    if (r.at !== end) throw new Error("short-names: export section size mismatch");
    const body = Buffer.concat(parts);
    out.push(Buffer.from([id]), u32(body.length), body);
  } else if (id === 0 && DROPPED_CUSTOM.has(r.name())) {
    // Tool metadata no runtime reads.
  } else {
    if (end > bytes.length) throw new Error("short-names: truncated section");
    out.push(bytes.subarray(header, end));
  }
  r.at = end;
}

// Every identifier of the JS files that is a renamed name, as a whole token.
const rewrite = (text) =>
  text.replace(/[A-Za-z_$][\w$]*/g, (token) => renames.get(token) ?? token);

// Each old name must be a token of the glue or the entry module (the .wasm.d.ts lists every
// export, so it proves nothing), or they would call a name the .wasm no longer has.
const tokens = new Set((glue + "\n" + entry).match(/[A-Za-z_$][\w$]*/g));
const missing = [...renames.keys()].filter((old) => !tokens.has(old));
if (missing.length) {
  throw new Error(`short-names: not in the glue: ${missing.join(", ")}`);
}

// The package's own exports must come out as they went in.
const exported = (text) => [...text.matchAll(/export\s*\{([^}]*)\}/g)].map((m) => m[1]).join();
if (exported(rewrite(entry)) !== exported(entry)) {
  throw new Error("short-names: the entry module's exports would change");
}

const before = bytes.length + Buffer.byteLength(glue) + Buffer.byteLength(entry);
fs.writeFileSync(files.wasm, Buffer.concat(out));
fs.writeFileSync(files.glue, rewrite(glue));
fs.writeFileSync(files.entry, rewrite(entry));
fs.writeFileSync(files.types, rewrite(types));
const after =
  fs.statSync(files.wasm).size + fs.statSync(files.glue).size + fs.statSync(files.entry).size;
console.log(`short-names: ${renames.size} names shortened, ${before - after} bytes fewer`);
