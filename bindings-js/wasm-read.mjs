// wasm-read.mjs: the reading of a wasm module that the build's scripts share
// (order-functions.mjs, size-layers.mjs): its sections, how many functions it imports, where
// each function body lies, and the function names of a `name` section.
//
// The module is checked as it is read (sizes within their section, the import section read
// to its end, one body per declared function): anything unexpected throws a `WasmError`,
// so that a script fails rather than name or move the wrong functions.

/** A module that is not what this reader expects. */
export class WasmError extends Error {}

/** The unsigned LEB128 number at `at` in `buf`, and where it ends. */
export function leb(buf, at) {
  let n = 0;
  let shift = 0;
  for (;;) {
    if (at >= buf.length || shift > 49) throw new WasmError("a number runs past its section");
    const b = buf[at++];
    n += (b & 0x7f) * 2 ** shift;
    shift += 7;
    if (b < 0x80) return [n, at];
  }
}

/** The imported functions of the import section `buf[start..end]`: they come first in the
 * function index space. */
function importedFunctions(buf, start, end) {
  let [count, at] = leb(buf, start);
  let imported = 0;
  for (let i = 0; i < count; i++) {
    for (let k = 0; k < 2; k++) {
      const [len, next] = leb(buf, at); // module, then field
      at = next + len;
    }
    const kind = buf[at++];
    if (kind === 0) {
      [, at] = leb(buf, at); // type index
      imported++;
    } else if (kind === 1 || kind === 2) {
      if (kind === 1) at++; // a table's element type
      const flags = buf[at++]; // limits
      [, at] = leb(buf, at);
      if (flags & 1) [, at] = leb(buf, at);
    } else if (kind === 3) {
      at += 2; // value type, mutability
    } else if (kind === 4) {
      at++; // tag attribute
      [, at] = leb(buf, at);
    } else {
      throw new WasmError(`unknown import kind ${kind}`);
    }
  }
  // A misread import would shift every function index: check where the reading ends.
  if (at !== end) throw new WasmError("the import section does not end where it says");
  return imported;
}

/** The function names (subsection 1) of the `name` section whose names start at `at`. */
function functionNames(buf, at, end) {
  const names = new Map();
  while (at < end) {
    const sub = buf[at];
    const [size, start] = leb(buf, at + 1);
    if (sub === 1) {
      let [count, p] = leb(buf, start);
      for (let i = 0; i < count; i++) {
        const [index, q] = leb(buf, p);
        const [len, r] = leb(buf, q);
        names.set(index, buf.toString("utf8", r, r + len));
        p = r + len;
      }
    }
    at = start + size;
  }
  return names;
}

/**
 * Read `wasm` (a Buffer). Returns its `sections` in order (`id`, `from` its first byte,
 * `start` and `end` of its content, `name` for a custom section), `imported` (the count of
 * imported functions), `bodies` (each function body's `from` and `end` in `wasm`, and `at`,
 * where its size comes before it) and
 * `names` (function index to name, empty without a `name` section).
 */
export function readModule(wasm) {
  if (wasm.length < 8 || wasm.readUInt32LE(0) !== 0x6d736100) {
    throw new WasmError("not a wasm module");
  }
  const sections = [];
  for (let at = 8; at < wasm.length; ) {
    const id = wasm[at];
    const [size, start] = leb(wasm, at + 1);
    const end = start + size;
    if (end > wasm.length) throw new WasmError(`section ${id} runs past the end`);
    const section = { id, from: at, start, end };
    if (id === 0) {
      const [len, p] = leb(wasm, start);
      section.name = wasm.toString("latin1", p, p + len);
    }
    sections.push(section);
    at = end;
  }
  const find = (id) => sections.find((s) => s.id === id);
  const imports = find(2);
  const imported = imports ? importedFunctions(wasm, imports.start, imports.end) : 0;

  const code = find(10);
  const declared = find(3);
  if (!code || !declared) throw new WasmError("no code or function section");
  const bodies = [];
  let [count, at] = leb(wasm, code.start);
  if (count !== leb(wasm, declared.start)[0]) {
    throw new WasmError("function and code sections differ in length");
  }
  for (let i = 0; i < count; i++) {
    const [size, start] = leb(wasm, at);
    if (start + size > code.end) throw new WasmError(`body ${i} runs past the code section`);
    bodies.push({ at, from: start, end: start + size });
    at = start + size;
  }
  if (at !== code.end) throw new WasmError("the code section does not end with its last body");

  const nameSection = sections.find((s) => s.id === 0 && s.name === "name");
  let names = new Map();
  if (nameSection) {
    const [len, p] = leb(wasm, nameSection.start);
    names = functionNames(wasm, p + len, nameSection.end);
  }
  return { sections, imported, bodies, names };
}
