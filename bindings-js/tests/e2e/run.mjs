// End-to-end tests of the built package (bindings-js/dist) in headless Chromium against the
// reference server. No mocks: a real WebSocket, a real server, real localStorage.
//
// Env: PITCHEY_WS_URL (ws://host:port/ws), PITCHEY_HTTP_URL (http://host:port),
// PITCHEY_TOKEN (a token for user PITCHEY_USER), PITCHEY_SEED_WS_URL and
// PITCHEY_SEED_HTTP_URL (a second server run with --seed-compatible, same secret). Run by
// scripts/test-js.sh.
import { build } from "esbuild";
import { chromium } from "playwright-core";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.resolve(here, "../../dist");
const out = path.join(here, ".out");
const { PITCHEY_WS_URL: wsUrl, PITCHEY_HTTP_URL: httpUrl, PITCHEY_TOKEN: token, PITCHEY_USER: user } = process.env;
const { PITCHEY_SEED_WS_URL: seedWsUrl, PITCHEY_SEED_HTTP_URL: seedHttpUrl } = process.env;
if (!wsUrl || !httpUrl || !token || !user || !seedWsUrl || !seedHttpUrl) {
  throw new Error("PITCHEY_WS_URL, PITCHEY_HTTP_URL, PITCHEY_TOKEN, PITCHEY_USER, PITCHEY_SEED_WS_URL, PITCHEY_SEED_HTTP_URL");
}

// A bundler's view of `import * as wasm from "./x_bg.wasm"`: instantiate the module with the
// JS modules it imports, and re-export its exports (what webpack's asyncWebAssembly does).
const wasmPlugin = {
  name: "wasm-esm",
  setup(b) {
    b.onResolve({ filter: /\.wasm$/ }, (args) => ({
      path: path.resolve(args.resolveDir, args.path),
      namespace: "wasm-esm",
    }));
    b.onLoad({ filter: /.*/, namespace: "wasm-esm" }, async (args) => {
      const mod = await WebAssembly.compile(fs.readFileSync(args.path));
      const modules = [...new Set(WebAssembly.Module.imports(mod).map((i) => i.module))];
      const exports = WebAssembly.Module.exports(mod).map((e) => e.name);
      const file = path.basename(args.path);
      fs.copyFileSync(args.path, path.join(out, file));
      const lines = modules.map((m, i) => `import * as m${i} from ${JSON.stringify(path.resolve(path.dirname(args.path), m))};`);
      lines.push(`const imports = {${modules.map((m, i) => `${JSON.stringify(m)}: m${i}`).join(", ")}};`);
      lines.push(`const { instance } = await WebAssembly.instantiateStreaming(fetch(${JSON.stringify("/" + file)}), imports);`);
      lines.push(`const e = instance.exports;`);
      for (const name of exports) lines.push(`export const ${name} = e.${name};`);
      return { contents: lines.join("\n"), resolveDir: path.dirname(args.path), loader: "js" };
    });
  },
};

fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(out, { recursive: true });
await build({
  entryPoints: [path.join(here, "page.js")],
  bundle: true,
  format: "esm",
  target: "es2022",
  outfile: path.join(out, "page.js"),
  alias: { "@pitchey/realtime": path.join(dist, "pitchey_realtime_js.js") },
  plugins: [wasmPlugin],
  logLevel: "warning",
});
fs.writeFileSync(path.join(out, "index.html"), `<!doctype html><meta charset="utf-8"><script type="module" src="/page.js"></script>`);

const types = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm" };
const server = http.createServer((req, res) => {
  if (req.url === "/favicon.ico") {
    res.writeHead(204).end();
    return;
  }
  const file = path.join(out, path.normalize(new URL(req.url, "http://x").pathname).replace(/^\/+/, "") || "index.html");
  if (!file.startsWith(out) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { "content-type": types[path.extname(file)] ?? "application/octet-stream" });
  fs.createReadStream(file).pipe(res);
});
await new Promise((r) => server.listen(0, "127.0.0.1", r));
const pageUrl = `http://127.0.0.1:${server.address().port}/`;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
});

async function newPage() {
  const page = await browser.newPage();
  page.on("pageerror", (e) => console.error("  page error:", e.message));
  page.on("console", (m) => {
    // The report of the handler that one test makes throw is expected (that test checks it).
    if (m.text().includes("a handler bug")) return;
    if (m.type() === "error" || m.type() === "warning") console.error(`  console.${m.type()}:`, m.text());
  });
  await page.goto(pageUrl);
  await page.waitForFunction(() => window.pitcheyReady === true);
  return page;
}

async function notify(title, base = httpUrl) {
  const res = await fetch(`${base}/api/ws/notify`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ userId: Number(user), notification: { type: "follow", title, message: "from the e2e test", data: { followerId: 3 } } }),
  });
  if (!res.ok) throw new Error(`notify: HTTP ${res.status}: ${await res.text()}`);
}

const tests = [];
const test = (name, f) => tests.push({ name, f });
const assert = (cond, msg) => {
  if (!cond) throw new Error(`assertion failed: ${msg}`);
};

test("connect: status becomes connected, state events arrive", async () => {
  const page = await newPage();
  const r = await page.evaluate(async ({ wsUrl, token }) => {
    const c = new Client({ url: wsUrl, token });
    const states = [];
    c.on("state", (s) => states.push(s.status));
    const before = c.status;
    await c.connect();
    const t0 = Date.now();
    while (c.status !== "connected" && Date.now() - t0 < 10000) await new Promise((r) => setTimeout(r, 20));
    const m = await c.metrics();
    const d = c.openDraft("named", {});
    const names = [c.constructor.name, d.constructor.name];
    d.close();
    return { before, after: c.status, states, attempts: m.connectAttempts, names };
  }, { wsUrl, token });
  // The minified glue keeps the names of the two classes an app sees.
  assert(r.names.join() === "Client,Draft", `class names: ${r.names}`);
  assert(r.before === "idle", `status before connect: ${r.before}`);
  assert(r.after === "connected", `status after connect: ${r.after}`);
  assert(r.states.includes("connected"), `state events: ${r.states}`);
  assert(r.attempts >= 1, "metrics.connectAttempts");
  await page.close();
});

test("a notification sent over HTTP reaches on('notification')", async () => {
  const page = await newPage();
  const logged = [];
  page.on("console", (m) => logged.push(m.text()));
  await page.evaluate(async ({ wsUrl, token }) => {
    const c = new Client({ url: wsUrl, token });
    window.got = [];
    window.frames = [];
    // A handler that throws is reported on the console; the next ones are still called.
    c.on("notification", () => {
      throw new Error("a handler bug");
    });
    c.on("notification", (n) => window.got.push(n));
    c.on("message", (f) => window.frames.push(f.type));
    // A handler removed by an earlier handler of the same event is not called for it; one
    // added by it hears the next event, not this one.
    window.removed = [];
    window.late = [];
    const offRemoved = c.on("message", (f) => window.removed.push(f.type));
    c.on("notification", () => {
      offRemoved();
      if (!window.added) {
        window.added = true;
        c.on("message", (f) => window.late.push(f.type));
      }
    });
    await c.connect();
    const t0 = Date.now();
    while (c.status !== "connected" && Date.now() - t0 < 10000) await new Promise((r) => setTimeout(r, 20));
    window.c = c;
  }, { wsUrl, token });
  const title = `e2e-${Date.now()}`;
  await notify(title);
  await page.waitForFunction((t) => window.got.some((n) => n.title === t), title, { timeout: 10000 });
  const n = await page.evaluate((t) => window.got.find((n) => n.title === t), title);
  assert(typeof n.id === "string" && n.type === "follow", `notification: ${JSON.stringify(n)}`);
  assert((await page.evaluate(() => window.frames)).includes("notification"), "on('message') saw the frame");
  const { removed, late } = await page.evaluate(() => ({ removed: window.removed, late: window.late }));
  assert(removed.includes("connected") && !removed.includes("notification"), `removed handler saw ${removed}`);
  assert(!late.includes("notification"), `handler added during the event saw ${late}`);
  assert(
    logged.some((t) => t.includes('@pitchey/realtime: a "notification" handler threw')),
    `the throwing handler was not reported: ${logged}`,
  );
  await page.close();
});

test("sendPitchView resolves with the acked message id; subscribe gets pitch stats", async () => {
  const page = await newPage();
  const r = await page.evaluate(async ({ wsUrl, token }) => {
    const c = new Client({ url: wsUrl, token });
    const acked = [];
    c.on("acked", (id) => acked.push(id));
    const stats = [];
    const off = c.subscribe("pitch:42", (s) => stats.push(s));
    await c.connect();
    const id = await c.sendPitchView(42);
    const t0 = Date.now();
    while (stats.length === 0 && Date.now() - t0 < 10000) await new Promise((r) => setTimeout(r, 20));
    off();
    let badChannel = null;
    try {
      c.subscribe("nope", () => {});
    } catch (e) {
      badChannel = e.name;
    }
    return { id, acked, stats, badChannel };
  }, { wsUrl, token });
  assert(typeof r.id === "string" && r.id.length > 0, `id: ${r.id}`);
  assert(r.acked.includes(r.id), `acked events ${r.acked} include ${r.id}`);
  assert(r.badChannel === "InvalidArgument", `bad channel error: ${r.badChannel}`);
  assert(r.stats.length > 0, "no pitch_stats_update for pitch 42 within 10 s");
  assert(r.stats[0].pitchId === 42, `stats: ${JSON.stringify(r.stats[0])}`);
  await page.close();
});

test("subscribe: every handler of a channel hears it; removing one leaves the others subscribed", async () => {
  const page = await newPage();
  const r = await page.evaluate(async ({ wsUrl, token }) => {
    const c = new Client({ url: wsUrl, token });
    const until = async (cond) => {
      const t0 = Date.now();
      while (!cond() && Date.now() - t0 < 10000) await new Promise((r) => setTimeout(r, 20));
    };
    // A pitch nobody else views in this run, and its neighbour, which nobody views at all.
    const pitch = 700000 + Math.floor(Math.random() * 100000);
    const first = [], second = [], neighbour = [];
    const offFirst = c.subscribe(`pitch:${pitch}`, (s) => first.push(s.viewCount));
    const offSecond = c.subscribe(`pitch:${pitch}`, (s) => second.push(s.viewCount));
    const offNeighbour = c.subscribe(`pitch:${pitch + 1}`, (s) => neighbour.push(s));
    await c.connect();
    await c.sendPitchView(pitch);
    await until(() => first.includes(1) && second.includes(1));
    offFirst();
    await c.sendPitchView(pitch);
    await until(() => second.includes(2));
    offSecond();
    offNeighbour();
    return { first, second, neighbour };
  }, { wsUrl, token });
  assert(r.first.includes(1) && r.second.includes(1), `both handlers heard view 1: ${JSON.stringify(r)}`);
  assert(r.second.includes(2), `the remaining handler heard view 2 (the channel stayed subscribed): ${JSON.stringify(r)}`);
  assert(!r.first.includes(2), `a removed handler is not called: ${JSON.stringify(r)}`);
  assert(r.neighbour.length === 0, `another pitch's stats stay out: ${JSON.stringify(r.neighbour)}`);
  await page.close();
});

test("close(timeoutMs) delivers what is queued, then resolves closed; close() of an idle client resolves at once", async () => {
  const page = await newPage();
  const r = await page.evaluate(async ({ wsUrl, token }) => {
    const idle = new Client({ url: wsUrl, token });
    await idle.close(1000);
    const idleStatus = idle.status;
    const c = new Client({ url: wsUrl, token });
    const states = [];
    c.on("state", (s) => states.push(s.status));
    await c.connect();
    const t0 = Date.now();
    while (c.status !== "connected" && Date.now() - t0 < 10000) await new Promise((r) => setTimeout(r, 20));
    let acked = null;
    const view = c.sendPitchView(77).then((id) => (acked = id));
    await c.close(5000);
    const status = c.status;
    await view;
    const m = await c.metrics();
    // After a close, a new connection's send is acked (the old close's events settle nothing).
    c.connect();
    const again = await c.sendPitchView(78);
    await c.close(5000);
    // A close right after a connect() that was not awaited still delivers what is queued.
    const quick = new Client({ url: wsUrl, token });
    quick.connect();
    const quickView = quick.sendPitchView(79);
    await quick.close(5000);
    const quickId = await quickView;
    return { idleStatus, status, acked, states, queued: m.queueDepth, again, quickId };
  }, { wsUrl, token });
  assert(typeof r.again === "string", `a send after close + connect was acked: ${r.again}`);
  assert(typeof r.quickId === "string", `a view queued just after connect() was acked before close: ${r.quickId}`);
  assert(r.idleStatus === "closed", `an idle client after close(): ${r.idleStatus}`);
  assert(r.status === "closed", `status once close() resolved: ${r.status} (${r.states})`);
  assert(typeof r.acked === "string", "the view queued before close() was acked");
  assert(r.queued === 0, `queue after close: ${r.queued}`);
  await page.close();
});

test("a full queue rejects with name QueueFull; typed errors", async () => {
  const page = await newPage();
  const r = await page.evaluate(async ({ wsUrl, token }) => {
    const c = new Client({ url: wsUrl, token, queueSize: 2 });
    c.sendPitchView(1).catch(() => {});
    c.sendPitchView(2).catch(() => {});
    let full = null;
    try {
      await c.sendPitchView(3);
    } catch (e) {
      full = { name: e.name, code: e.code, isError: e instanceof Error, message: e.message };
    }
    const bad = new Client({ url: "http://example.com/ws" });
    let url = null;
    try {
      await bad.connect();
    } catch (e) {
      url = e.name;
    }
    let ctor = null;
    try {
      new Client({ url: wsUrl, queueSize: -1 });
    } catch (e) {
      ctor = e.name;
    }
    return { full, url, ctor };
  }, { wsUrl, token });
  assert(r.full && r.full.name === "QueueFull" && r.full.code === "QueueFull" && r.full.isError, `full: ${JSON.stringify(r.full)}`);
  assert(r.url === "InvalidUrl", `bad url: ${r.url}`);
  assert(r.ctor === "InvalidArgument", `bad option: ${r.ctor}`);
  await page.close();
});

test("persistKey: queued messages survive a page reload and are acked under the same ids", async () => {
  const page = await newPage();
  const key = `pitchey-e2e-${Date.now()}`;
  // Offline (never connected): the messages wait in the outbox and in localStorage.
  const ids = await page.evaluate(async ({ wsUrl, token, key }) => {
    const c = new Client({ url: wsUrl, token, persistKey: key });
    c.sendPitchView(7).catch(() => {});
    c.sendPitchView(8).catch(() => {});
    const t0 = Date.now();
    for (;;) {
      const text = localStorage.getItem(key);
      const saved = text ? JSON.parse(text).messages : [];
      if (saved.length === 2) return saved.map((m) => m.id);
      if (Date.now() - t0 > 5000) throw new Error(`localStorage[${key}] = ${text}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }, { wsUrl, token, key });
  await page.reload();
  await page.waitForFunction(() => window.pitcheyReady === true);
  const r = await page.evaluate(async ({ wsUrl, token, key, ids }) => {
    const c = new Client({ url: wsUrl, token, persistKey: key });
    const acked = [];
    c.on("acked", (id) => acked.push(id));
    const queued = (await c.metrics()).queueDepth;
    await c.connect();
    const t0 = Date.now();
    while (!ids.every((id) => acked.includes(id)) && Date.now() - t0 < 10000) await new Promise((r) => setTimeout(r, 20));
    // Give the save after the acks a moment.
    const t1 = Date.now();
    const saved = () => JSON.parse(localStorage.getItem(key) ?? '{"messages":[]}').messages.length;
    while (saved() > 0 && Date.now() - t1 < 3000) await new Promise((r) => setTimeout(r, 20));
    return { acked, queued, left: saved() };
  }, { wsUrl, token, key, ids });
  assert(r.queued === 2, `restored queue depth: ${r.queued}`);
  assert(ids.every((id) => r.acked.includes(id)), `acked ${r.acked} after reload, expected ${ids}`);
  assert(r.left === 0, `messages left in localStorage after the acks: ${r.left}`);
  await page.close();
});

test("drafts: update + save is acked; state reflects it", async () => {
  const page = await newPage();
  const r = await page.evaluate(async ({ wsUrl, token }) => {
    const c = new Client({ url: wsUrl, token });
    await c.connect();
    const id = `e2e_${Date.now()}`;
    const d = c.openDraft(id, { draftType: "pitch", initial: { title: "" }, autoSaveIntervalMs: 60000, conflictResolution: "ask", validate: (x) => !!x.title });
    const events = [];
    d.on((e) => events.push(e.type));
    // Not ASCII: strings cross into the .wasm by `TextEncoder.encodeInto` alone.
    await d.update({ title: "héllo ✓ 日本 🎬" });
    const dirty = (await d.state()).isDirty;
    await d.save();
    const t0 = Date.now();
    while (!events.includes("saved") && Date.now() - t0 < 10000) await new Promise((r) => setTimeout(r, 20));
    const s = await d.state();
    d.close();
    let closed = null;
    try {
      await d.state();
    } catch (e) {
      closed = e.name;
    }
    // The same draft opened again: its handlers hear its events, the closed one's do not.
    const heardBefore = events.length;
    const again = c.openDraft(id, { draftType: "pitch", initial: s.content, baseVersion: s.baseVersion, autoSaveIntervalMs: 60000 });
    const fresh = [];
    again.on((e) => fresh.push(e.type));
    await again.update({ title: "hello again" });
    await again.save();
    const t1 = Date.now();
    while (!fresh.includes("saved") && Date.now() - t1 < 10000) await new Promise((r) => setTimeout(r, 20));
    again.close();
    return { dirty, events, after: s, closed, fresh, oldHeard: events.length - heardBefore };
  }, { wsUrl, token });
  assert(r.fresh.includes("saved"), `the reopened draft's events: ${r.fresh}`);
  assert(r.oldHeard === 0, `a closed draft's handler heard ${r.oldHeard} more events`);
  assert(r.dirty === true, "dirty after update");
  assert(r.events.includes("saved"), `draft events: ${r.events}`);
  assert(r.after.isDirty === false && typeof r.after.lastSaved === "number", `state: ${JSON.stringify(r.after)}`);
  assert(r.after.content.title === "héllo ✓ 日本 🎬", `content: ${JSON.stringify(r.after.content)}`);
  assert(r.closed === "UnknownDraft", `after close: ${r.closed}`);
  await page.close();
});

let failed = 0;

test("a seed-compatible server (no ack, seq, subscribe or draft conflicts): the same calls work", async () => {
  const page = await newPage();
  const r = await page.evaluate(async ({ seedWsUrl, token }) => {
    const c = new Client({ url: seedWsUrl, token });
    const seed = { c, got: [], stats: [], draft: [] };
    window.seed = seed;
    c.on("notification", (n) => seed.got.push(n.title));
    // No `subscribe` on the server: it sends pitch stats to everyone, the client filters.
    c.subscribe("pitch:6", (s) => seed.stats.push(s.pitchId));
    await c.connect();
    const t0 = Date.now();
    while (c.status !== "connected" && Date.now() - t0 < 10000) await new Promise((r) => setTimeout(r, 20));
    // No `ack`: a durable send is done once written. The stats of pitch 8 come first, to
    // the subscription of pitch 6 too unless the client filters them.
    await c.sendPitchView(8);
    const id = await c.sendPitchView(6);
    // No versions or conflicts: a save is done once written.
    const d = c.openDraft("seed-draft", { draftType: "pitch" });
    d.on((e) => seed.draft.push(e.type));
    await d.update({ title: "seed" });
    await d.save();
    return { status: c.status, id };
  }, { seedWsUrl, token });
  assert(r.status === "connected", `status: ${r.status}`);
  assert(typeof r.id === "string" && r.id.length > 0, `sendPitchView id: ${r.id}`);
  const title = `seed-${Date.now()}`;
  await notify(title, seedHttpUrl);
  await page.waitForFunction((t) => window.seed.got.includes(t), title, { timeout: 10000 });
  await page.waitForFunction(() => window.seed.stats.includes(6), null, { timeout: 10000 });
  await page.waitForFunction(() => window.seed.draft.includes("saved"), null, { timeout: 10000 });
  const after = await page.evaluate(async () => ({ stats: window.seed.stats, m: await window.seed.c.metrics() }));
  assert(!after.stats.includes(8), `stats of a pitch not subscribed to: ${after.stats}`);
  assert(after.m.invalidFrames === 0, `invalid frames: ${after.m.invalidFrames}`);
  await page.close();
});

for (const { name, f } of tests) {
  const t0 = Date.now();
  try {
    await f();
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}\n     ${e.stack ?? e}`);
  }
}
await browser.close();
server.close();
console.log(`${tests.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
