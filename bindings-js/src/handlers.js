// The `on`, `subscribe` and `draft.on` handlers of one Client, kept on the JS side (the
// .wasm calls these; bindings-js/src/js.rs). A registry is a Map from a key (`k` + event
// type, `c` + channel name, `d` + draft id) to its entries, `{ f, owner, gone }`.
//
// Rules: every handler list of one event is taken before any handler runs (a handler added
// meanwhile hears the next event); a handler removed meanwhile is not called; one that
// throws is reported on the console and does not stop the others.

export function newHandlers() {
  return new Map();
}

/** Register `f` under `key`; the returned function removes it once, then calls `onRemove`. */
export function addHandler(h, key, owner, f, onRemove) {
  const entry = { f, owner };
  let list = h.get(key);
  if (!list) h.set(key, (list = []));
  list.push(entry);
  return () => {
    if (remove(h, key, entry) && onRemove) onRemove();
  };
}

function remove(h, key, entry) {
  const list = h.get(key);
  const at = list ? list.indexOf(entry) : -1;
  if (at < 0) return false;
  list.splice(at, 1);
  if (!list.length) h.delete(key);
  entry.gone = true;
  return true;
}

export function listens(h, key) {
  return h.has(key);
}

/** Remove every handler registered by `owner` (a closed or freed Draft). */
export function removeOwner(h, owner) {
  for (const [key, list] of h) for (const entry of list.slice()) if (entry.owner === owner) remove(h, key, entry);
}

/** `calls` is [name, key, payload, ...]: call each key's handlers with its payload. */
export function emitAll(h, calls) {
  const taken = [];
  for (let i = 0; i < calls.length; i += 3) taken.push([calls[i], (h.get(calls[i + 1]) || []).slice(), calls[i + 2]]);
  for (const [name, list, payload] of taken)
    for (const entry of list)
      if (!entry.gone)
        try {
          // Called as a plain function (`this` undefined), not as a method of the entry.
          const f = entry.f;
          f(payload);
        } catch (e) {
          console.error(`@pitchey/realtime: a "${name}" handler threw`, e);
        }
}

export function noop() {
  return () => {};
}
