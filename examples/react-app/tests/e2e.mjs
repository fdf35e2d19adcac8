// End to end: the built example app (examples/react-app/dist, served by `vite preview`) in headless
// Chromium against a real pitchey-mock-server. No mocks: the page, the package, the WebSocket and
// the server are the real ones; the test only clicks, types, and calls the server's HTTP API.
//
// Env (scripts/test-react.sh sets them):
//   PITCHEY_WS_URL    ws://127.0.0.1:PORT/ws of a running server (not --demo: no stray traffic)
//   PITCHEY_HTTP_URL  http://127.0.0.1:PORT
//   PITCHEY_SERVER_BIN the server binary: mints tokens (`token --user N`, same JWT_SECRET) and, for
//                     the restart test, is started again on the same port
//   PITCHEY_SERVER_PID the running server's pid (the restart test stops it with SIGTERM)
//   JWT_SECRET        the server's secret
//   CHROMIUM          (optional) the browser, default /usr/bin/chromium
// Writes tests/artifacts/app.png (a screenshot of the app after the run).
import { chromium } from "playwright-core";
import { createServer, preview } from "vite";
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const artifacts = path.join(root, "tests", "artifacts");
const env = process.env;
for (const k of ["PITCHEY_WS_URL", "PITCHEY_HTTP_URL", "PITCHEY_SERVER_BIN", "JWT_SECRET"]) {
  if (!env[k]) throw new Error(`e2e: ${k} is not set (run scripts/test-react.sh)`);
}
const wsUrl = env.PITCHEY_WS_URL;
const httpUrl = env.PITCHEY_HTTP_URL;
const serverBin = env.PITCHEY_SERVER_BIN;
const run = Date.now().toString(36);

const mint = (user, username, admin = false) =>
  execFileSync(serverBin, ["token", "--user", String(user), "--username", username, "--ttl-secs", "3600", ...(admin ? ["--admin"] : [])], {
    encoding: "utf8",
  }).trim();
const tokens = { 1: mint(1, "ada"), 2: mint(2, "grace"), 3: mint(3, "linus"), admin: mint(999, "admin", true) };

const server = await preview({ root, logLevel: "warn", preview: { host: "127.0.0.1", port: 0, strictPort: false, open: false } });
const appUrl = server.resolvedUrls.local[0];
const browser = await chromium.launch({
  executablePath: env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
});

// Every page error and console error fails the run (collected here, checked at the end).
const problems = [];
async function open(user, extra = {}) {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  page.on("pageerror", (e) => problems.push(`user ${user}: page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`user ${user}: console.error: ${m.text()}`);
  });
  const q = new URLSearchParams({ ws: wsUrl, http: httpUrl, token: tokens[user], user: String(user), ...extra });
  await page.goto(`${appUrl}?${q}`);
  await waitText(page, "status", (t) => t === "connected", "the status badge says connected");
  return page;
}

/** Polls the text of `[data-testid=id]` until `ok(text)`; throws with the last text after `ms`. */
async function waitText(page, id, ok, what, ms = 10000) {
  const t0 = Date.now();
  let last = null;
  while (Date.now() - t0 < ms) {
    last = await page.locator(`[data-testid="${id}"]`).first().textContent({ timeout: 200 }).catch(() => null);
    if (last !== null && ok(last)) return last;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out after ${ms} ms waiting for: ${what} (last text of ${id}: ${JSON.stringify(last)})`);
}
async function waitAttr(page, selector, attr, ok, what, ms = 10000) {
  const t0 = Date.now();
  let last = null;
  while (Date.now() - t0 < ms) {
    last = await page.locator(selector).first().getAttribute(attr, { timeout: 200 }).catch(() => null);
    if (last !== null && ok(last)) return last;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out after ${ms} ms waiting for: ${what} (last ${attr}: ${JSON.stringify(last)})`);
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const assert = (cond, msg) => {
  if (!cond) throw new Error(`assertion failed: ${msg}`);
};
async function api(method, route, token, body) {
  const res = await fetch(`${httpUrl}${route}`, {
    method,
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${method} ${route}: HTTP ${res.status}: ${await res.text()}`);
  return res.json();
}
const inByType = async (type) => (await api("GET", "/api/ws/stats", tokens.admin)).messagesInByType?.[type] ?? 0;

const tests = [];
const test = (name, f) => tests.push({ name, f });
let ada; // user 1's page, shared by the tests below
let grace; // user 2's page

test("status badge: connected", async () => {
  ada = await open(1);
  const cls = await ada.locator('[data-testid="status"]').getAttribute("class");
  assert(cls.includes("online"), `badge class: ${cls}`);
});

test("notification dropdown: a POST /api/ws/notify appears, unread count, mark as read", async () => {
  const title = `E2E hello ${run}`;
  const before = Number(await ada.locator('[data-testid="unread"]').textContent());
  await api("POST", "/api/ws/notify", tokens.admin, {
    userId: 1,
    notification: { type: "system", title, message: "sent by tests/e2e.mjs" },
  });
  await waitText(ada, "unread", (t) => Number(t) === before + 1, "the unread count goes up by one");
  await ada.click('[data-testid="bell"]');
  await waitText(ada, "notifications", (t) => t.includes(title), "the dropdown lists the notification");
  await ada.locator('[data-testid="notification"]', { hasText: title }).click();
  await waitText(ada, "unread", (t) => Number(t) === before, "clicking it marks it read");
  await ada.click('[data-testid="bell"]'); // close
});

test("live view counter: 'Report view' is acked and the counter goes up", async () => {
  // The subscription answers with the current stats right after its ack.
  await waitAttr(ada, '[data-testid="view-count"]', "data-testid", () => true, "the counter is shown");
  await sleep(300);
  const before = Number(await ada.locator('[data-testid="view-count"]').textContent());
  await ada.click('[data-testid="report-view"]');
  await waitText(ada, "view-count", (t) => Number(t) === before + 1, `the counter goes from ${before} to ${before + 1}`);
  await waitText(ada, "views", (t) => t.includes("acked"), "the report's promise resolved (acked)");
});

test("presence dots: user 2 connecting turns their dot online in user 1's page", async () => {
  await waitAttr(ada, '[data-testid="presence-1"]', "data-status", (s) => s === "online", "user 1 (self) is online");
  grace = await open(2);
  await waitAttr(ada, '[data-testid="presence-2"]', "data-status", (s) => s === "online", "user 2 shows online");
  await grace.selectOption('[data-testid="my-status"]', "away");
  await waitAttr(ada, '[data-testid="presence-2"]', "data-status", (s) => s === "away", "user 2 set away");
  await grace.selectOption('[data-testid="my-status"]', "online");
  await waitAttr(ada, '[data-testid="presence-2"]', "data-status", (s) => s === "online", "user 2 back online");
});

test("typing indicator: user 2 types, user 1 sees 'grace is typing', then it clears", async () => {
  await grace.fill('[data-testid="typing-input"]', "hello the");
  await waitText(ada, "typing", (t) => t.includes("grace is typing"), "user 1 sees grace typing");
  // The typist never sees itself.
  assert(!(await grace.locator('[data-testid="typing"]').textContent()).includes("typing"), "user 2 sees no indicator");
  // The input sends "stopped" 2 s after the last key (or on blur).
  await waitText(ada, "typing", (t) => !t.includes("typing"), "the indicator clears when grace stops", 8000);
});

test("upload progress list: POST /api/ws/upload-progress appears and updates", async () => {
  const id = `e2e-${run}`;
  const post = (progress, status) =>
    api("POST", "/api/ws/upload-progress", tokens[1], { uploadId: id, fileName: "deck.pdf", progress, status, totalBytes: 1000 });
  await post(40, "uploading");
  await waitText(ada, `upload-${id}`, (t) => t.includes("deck.pdf") && t.includes("40%"), "the upload at 40%");
  await post(100, "completed");
  await waitAttr(ada, `[data-testid="upload-${id}"]`, "data-status", (s) => s === "completed", "the upload completed");
  await waitText(ada, `upload-${id}`, (t) => t.includes("100%"), "the upload at 100%");
});

test("draft editor: two pages of one user, conflictResolution 'ask', 'Keep mine' wins everywhere", async () => {
  // User 3, a draft of this run, no auto-save (so that the test decides when each side saves).
  const extra = { draft: `e2e_${run}`, autosave: "600000", conflict: "ask" };
  const one = await open(3, extra);
  const two = await open(3, extra);
  await one.fill('[data-testid="draft-title"]', "Title from tab one");
  await two.fill('[data-testid="draft-title"]', "Title from tab two");
  await one.click('[data-testid="save"]');
  await waitText(one, "sync-status", (t) => t.includes("Last saved") && !t.includes("Unsaved"), "tab one saved");
  // Tab two had unsaved edits on the old version: either the other session's save (draft_sync)
  // or tab two's own save (draft_conflict) raises the conflict.
  const shown = await two.locator('[data-testid="conflict"]').waitFor({ timeout: 1500 }).then(() => true, () => false);
  if (!shown) await two.click('[data-testid="save"]');
  await waitText(two, "conflict", (t) => t.includes("Title from tab one"), "tab two shows the conflict with the other title");
  assert((await two.inputValue('[data-testid="draft-title"]')) === "Title from tab two", "tab two keeps its text while asking");
  await two.click('[data-testid="keep-mine"]');
  await two.locator('[data-testid="conflict"]').waitFor({ state: "detached", timeout: 10000 });
  await waitText(two, "sync-status", (t) => t.includes("Last saved") && !t.includes("Unsaved"), "tab two saved its version");
  // Tab one gets tab two's save (draft_sync to the user's other sessions).
  const t0 = Date.now();
  while ((await one.inputValue('[data-testid="draft-title"]')) !== "Title from tab two") {
    if (Date.now() - t0 > 10000) throw new Error(`tab one never saw tab two's title: ${await one.inputValue('[data-testid="draft-title"]')}`);
    await sleep(50);
  }
  assert(!(await one.locator('[data-testid="conflict"]').count()), "tab one has no conflict");

  // And 'Use theirs' the other way round.
  await one.fill('[data-testid="draft-title"]', "One again");
  await two.fill('[data-testid="draft-title"]', "Two again");
  await one.click('[data-testid="save"]');
  await waitText(one, "sync-status", (t) => !t.includes("Unsaved"), "tab one saved again");
  const shown2 = await two.locator('[data-testid="conflict"]').waitFor({ timeout: 1500 }).then(() => true, () => false);
  if (!shown2) await two.click('[data-testid="save"]');
  await two.locator('[data-testid="conflict"]').waitFor({ timeout: 10000 });
  await two.click('[data-testid="use-theirs"]');
  await two.locator('[data-testid="conflict"]').waitFor({ state: "detached", timeout: 10000 });
  const t1 = Date.now();
  while ((await two.inputValue('[data-testid="draft-title"]')) !== "One again") {
    if (Date.now() - t1 > 10000) throw new Error(`'Use theirs' left: ${await two.inputValue('[data-testid="draft-title"]')}`);
    await sleep(50);
  }
  await one.close();
  await two.close();
});

test("cleanup on unmount: hiding the counter unsubscribes (the server sees it); hidden widgets get nothing", async () => {
  const unsubBefore = await inByType("unsubscribe");
  await ada.click('[data-testid="toggle-views"]');
  await ada.locator('[data-testid="views-hidden"]').waitFor();
  const t0 = Date.now();
  while ((await inByType("unsubscribe")) <= unsubBefore) {
    if (Date.now() - t0 > 5000) throw new Error("no unsubscribe frame reached the server after the counter unmounted");
    await sleep(100);
  }
  // Views reported elsewhere while it is hidden: no error, nothing rendered.
  const viewsBefore = Number(await grace.locator('[data-testid="view-count"]').textContent());
  await grace.click('[data-testid="report-view"]');
  await waitText(grace, "view-count", (t) => Number(t) === viewsBefore + 1, "grace's counter moves");
  assert((await ada.locator('[data-testid="view-count"]').count()) === 0, "the hidden counter stays unmounted");
  // Shown again: subscribed again, with the current figure.
  await ada.click('[data-testid="toggle-views"]');
  await waitText(ada, "view-count", (t) => Number(t) === viewsBefore + 1, "the counter comes back with the current count");

  // The typing indicator unmounted: typing elsewhere causes no error, and it works once shown again.
  await ada.click('[data-testid="toggle-typing"]');
  await grace.fill('[data-testid="typing-input"]', "while hidden");
  await sleep(500);
  assert((await ada.locator('[data-testid="typing"]').count()) === 0, "the hidden indicator stays unmounted");
  await grace.locator('[data-testid="typing-input"]').blur();
  await ada.click('[data-testid="toggle-typing"]');
  await grace.fill('[data-testid="typing-input"]', "shown again");
  await waitText(ada, "typing", (t) => t.includes("grace is typing"), "the remounted indicator works");
  await grace.locator('[data-testid="typing-input"]').blur();
});

test("npm run dev (vite dev server, StrictMode: every effect mounts, unmounts, mounts): the widgets work", async () => {
  const dev = await createServer({ root, logLevel: "warn", server: { host: "127.0.0.1", port: 0, strictPort: false } });
  await dev.listen();
  try {
    const page = await browser.newPage();
    page.on("pageerror", (e) => problems.push(`dev page: page error: ${e.message}`));
    page.on("console", (m) => {
      if (m.type() === "error") problems.push(`dev page: console.error: ${m.text()}`);
    });
    const q = new URLSearchParams({ ws: wsUrl, http: httpUrl, token: tokens[1], user: "1" });
    await page.goto(`${dev.resolvedUrls.local[0]}?${q}`);
    await waitText(page, "status", (t) => t === "connected", "the dev page connects", 30000);
    await page.locator('[data-testid="view-count"]').waitFor();
    await sleep(300);
    const before = Number(await page.locator('[data-testid="view-count"]').textContent());
    await page.click('[data-testid="report-view"]');
    await waitText(page, "view-count", (t) => Number(t) === before + 1, "the dev page's counter goes up by exactly one");
    const title = `dev ${run}`;
    await api("POST", "/api/ws/notify", tokens.admin, { userId: 1, notification: { type: "system", title, message: "dev" } });
    await page.click('[data-testid="bell"]');
    await waitText(page, "notifications", (t) => t.includes(title), "the dev page lists the notification");
    const items = await page.locator('[data-testid="notification"]', { hasText: title }).count();
    assert(items === 1, `the notification is listed once, not ${items} times`);
    await page.close();
  } finally {
    await dev.close();
  }
});

test("server restart: the badge goes offline and back; a view reported while offline is delivered", async () => {
  const pid = Number(env.PITCHEY_SERVER_PID);
  if (!pid) {
    console.log("  (skipped: PITCHEY_SERVER_PID not set)");
    return;
  }
  await ada.screenshot({ path: path.join(artifacts, "app.png"), fullPage: true });
  // Every status the badge shows from here on.
  await ada.evaluate(() => {
    const seen = (window.__statuses = []);
    window.pitcheyWS.client.on("state", (s) => seen.push(s.status));
  });
  const down = Date.now();
  process.kill(pid, "SIGTERM");
  await waitText(ada, "status", (t) => t !== "connected", "the badge leaves connected");
  assert((await ada.locator('[data-testid="status"]').getAttribute("class")).includes("offline"), "the badge is red");
  await ada.click('[data-testid="report-view"]'); // queued in the outbox
  await waitText(ada, "views", (t) => t.includes("sending"), "the view waits in the outbox");
  await sleep(1000); // a realistic restart: long enough for the client's first retries to fail
  const port = new URL(httpUrl).port;
  restarted = spawn(serverBin, ["--host", "127.0.0.1", "--port", port], { stdio: ["ignore", "ignore", "inherit"], env: { ...env, RUST_LOG: "warn" } });
  const up = Date.now();
  // A browser cannot tell a server that is down from a refused token (both are a close before
  // `connected`): after 2 such closes the SDK suspects the token, says `awaiting_token`, and
  // retries with the same token only after its token timeout (30 s). Hence the long wait.
  await waitText(ada, "status", (t) => t === "connected", "the badge comes back to connected", 15000);
  const statuses = await ada.evaluate(() => window.__statuses);
  console.log(`  down ${up - down} ms; back ${Date.now() - up} ms after the restart; statuses: ${[...new Set(statuses)].join(" > ")}`);
  // A fresh server (no --data-dir) counts from zero: the queued view is its first.
  await waitText(ada, "views", (t) => t.includes("acked"), "the queued view was acked");
  await waitText(ada, "view-count", (t) => Number(t) >= 1, "the restarted server counted the queued view");
});
let restarted = null;
process.on("exit", () => restarted?.kill("SIGTERM"));

const started = Date.now();
let failed = 0;
fs.mkdirSync(artifacts, { recursive: true });
for (const { name, f } of tests) {
  const t0 = Date.now();
  try {
    await f();
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name} (${Date.now() - t0} ms)\n     ${e.stack ?? e}`);
    if (ada) await ada.screenshot({ path: path.join(artifacts, `failure-${failed}.png`), fullPage: true }).catch(() => {});
  }
}
// Unmounting the whole provider (closing the pages) must not log errors either.
for (const page of browser.contexts().flatMap((c) => c.pages())) await page.close();
await sleep(200);
// The socket the browser loses when the server is stopped on purpose is logged by Chromium.
const unexpected = problems.filter((p) => !/WebSocket connection to .* failed/.test(p));
if (unexpected.length) {
  failed++;
  console.log(`FAIL no page or console errors:\n     ${unexpected.join("\n     ")}`);
} else {
  console.log("ok   no page or console errors");
}
await browser.close();
await server.close();
if (restarted) {
  restarted.kill("SIGTERM");
  await new Promise((r) => restarted.once("exit", r));
}
console.log(`${tests.length + 1 - failed} passed, ${failed} failed (${((Date.now() - started) / 1000).toFixed(1)} s)`);
process.exit(failed ? 1 : 0);
