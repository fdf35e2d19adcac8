// The benchmark peer for pitchey-mock-server: a plain Node 20 server on the `ws` package, doing
// what a team would write by hand for the same job, and no more.
//
// - `GET /ws?token=<JWT>` (or `Authorization: Bearer`): HS256 checked with node:crypto
//   (header alg, signature, exp; user from `userId` or `sub`), 401 otherwise; subprotocol
//   `pitchey-v1` echoed when offered; first frame `connected` with the same fields as the
//   reference server's.
// - `POST /api/ws/announce {title, message}` (admin): a `system` notification to every
//   connected user, numbered in that user's `seq`, the same envelope and data fields as the
//   reference server's (`{"type":"notification","data":{...},"seq":N}`); answers `{"users":N}`
//   once every frame was handed to its socket.
// - `GET /api/ws/health`, `GET /api/ws/stats` (admin): connection counts.
// - Client frames: `ping` gets `pong`; any frame with an `id` gets an `ack` (so that the SDK's
//   subscribe/resume on reconnect are answered); everything else is ignored.
//
// Not here, on purpose: replay log, offline queue, rate limit, presence, drafts. The benchmark
// measures what the reference server's extra guarantees cost against this.
//
// Usage: JWT_SECRET=... node server.js --port 8002 [--host 127.0.0.1]
'use strict';

const http = require('node:http');
const crypto = require('node:crypto');
const { WebSocketServer } = require('ws');

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const HOST = arg('host', '127.0.0.1');
const PORT = Number(arg('port', '8002'));
const SECRET = process.env.JWT_SECRET;
if (!SECRET) {
  console.error('error: JWT_SECRET is not set');
  process.exit(2);
}
const FEATURES = ['ack', 'seq', 'resume', 'subscribe', 'draft_conflict'];
const FEATURES_JSON = JSON.stringify(FEATURES);
const RATE_LIMIT_JSON = '{"maxMessages":120,"windowMs":60000,"refillRate":2.0}';

const sessionsByUser = new Map(); // userId -> Set<WebSocket>
const seqByUser = new Map(); // userId -> last seq handed out
let connections = 0;
let connectionsTotal = 0;
let notificationCount = 0;

function b64urlJson(part) {
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
}

// The HS256 check, as the reference server does it: only HS256, a valid signature, `exp` in the
// future, a numeric user id. Returns the claims, or null.
function verify(token) {
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  let header;
  let claims;
  try {
    header = b64urlJson(parts[0]);
    claims = b64urlJson(parts[1]);
  } catch {
    return null;
  }
  if (!header || header.alg !== 'HS256') return null;
  const expected = crypto
    .createHmac('sha256', SECRET)
    .update(`${parts[0]}.${parts[1]}`)
    .digest();
  const given = Buffer.from(parts[2], 'base64url');
  if (given.length !== expected.length || !crypto.timingSafeEqual(given, expected)) return null;
  if (typeof claims.exp !== 'number' || claims.exp <= Date.now() / 1000) return null;
  const userId = Number.isInteger(claims.userId) ? claims.userId : Number.parseInt(claims.sub, 10);
  if (!Number.isInteger(userId) || userId < 0) return null;
  return { userId, admin: claims.role === 'admin' };
}

function bearer(req) {
  const h = req.headers.authorization;
  if (!h) return null;
  const [scheme, token] = h.split(' ');
  return scheme && scheme.toLowerCase() === 'bearer' && token ? token.trim() : null;
}

// Second precision, as the protocol's times are.
function nowIso() {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function json(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function announce(title, message) {
  notificationCount += 1;
  const data = {
    id: `n-${notificationCount}`,
    type: 'system',
    title,
    message,
    createdAt: nowIso(),
    read: false,
  };
  // One encoding of the body for everyone; only the per-user seq differs.
  const head = `{"type":"notification","data":${JSON.stringify(data)},"seq":`;
  let users = 0;
  for (const [userId, sockets] of sessionsByUser) {
    const seq = (seqByUser.get(userId) || 0) + 1;
    seqByUser.set(userId, seq);
    const frame = `${head}${seq}}`;
    for (const ws of sockets) ws.send(frame);
    users += 1;
  }
  return users;
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://x');
  if (req.method === 'GET' && url.pathname === '/api/ws/health') {
    return json(res, 200, { connections, protocol: 'pitchey-v1', status: 'ok' });
  }
  const needsAdmin =
    (req.method === 'GET' && url.pathname === '/api/ws/stats') ||
    (req.method === 'POST' && url.pathname === '/api/ws/announce');
  if (!needsAdmin) {
    res.writeHead(404);
    return res.end();
  }
  const token = bearer(req);
  const caller = token && verify(token);
  if (!caller) return json(res, 401, { error: 'unauthorized', message: 'unauthorized' });
  if (!caller.admin) return json(res, 403, { error: 'forbidden', message: 'forbidden' });
  if (url.pathname === '/api/ws/stats') {
    return json(res, 200, { connections, connectionsTotal, users: sessionsByUser.size });
  }
  let body;
  try {
    body = JSON.parse(await readBody(req));
  } catch {
    return json(res, 400, { error: 'invalid_request', message: 'invalid JSON body' });
  }
  if (!body || typeof body.title !== 'string') {
    return json(res, 400, { error: 'invalid_request', message: 'title is required' });
  }
  const users = announce(body.title, typeof body.message === 'string' ? body.message : '');
  return json(res, 200, { users });
});

const wss = new WebSocketServer({
  noServer: true,
  // Echo `pitchey-v1` when offered; answer without a subprotocol otherwise.
  handleProtocols: (protocols) => (protocols.has('pitchey-v1') ? 'pitchey-v1' : false),
});

server.on('upgrade', (req, socket, head) => {
  const url = new URL(req.url, 'http://x');
  const token = bearer(req) || url.searchParams.get('token');
  const user = url.pathname === '/ws' && token ? verify(token) : null;
  if (!user) {
    socket.end('HTTP/1.1 401 Unauthorized\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, user.userId));
});

function onConnection(ws, userId) {
  connections += 1;
  connectionsTotal += 1;
  let sockets = sessionsByUser.get(userId);
  if (!sockets) {
    sockets = new Set();
    sessionsByUser.set(userId, sockets);
  }
  sockets.add(ws);
  const sessionId = `s-${crypto.randomBytes(4).toString('hex')}`;
  // Written out rather than JSON.stringify'd so that the bytes match the reference server's
  // (`"refillRate":2.0`: JavaScript would print `2`).
  ws.send(
    `{"type":"connected","data":{"sessionId":"${sessionId}","userId":${userId},` +
      `"protocol":"pitchey-v1","heartbeatMs":30000,"rateLimit":${RATE_LIMIT_JSON},` +
      `"features":${FEATURES_JSON},"resumed":false,"lastSeq":${seqByUser.get(userId) || 0}}}`,
  );
  ws.on('message', (raw, isBinary) => {
    if (isBinary) return;
    let frame;
    try {
      frame = JSON.parse(raw.toString('utf8'));
    } catch {
      return;
    }
    if (!frame || typeof frame !== 'object') return;
    if (frame.type === 'ping') {
      ws.send('{"type":"pong","data":{}}');
    } else if (typeof frame.id === 'string') {
      ws.send(JSON.stringify({ type: 'ack', data: { id: frame.id } }));
    }
  });
  ws.on('close', () => {
    connections -= 1;
    sockets.delete(ws);
    if (sockets.size === 0) sessionsByUser.delete(userId);
  });
  ws.on('error', () => {});
}

server.listen(PORT, HOST, () => {
  console.log(`node peer listening on ws://${HOST}:${PORT}/ws (ws ${require('ws/package.json').version})`);
});

function shutdown() {
  // Like the reference server: close every session with 1001 (going away), then exit.
  for (const ws of wss.clients) ws.close(1001, 'server shutting down');
  server.close();
  setTimeout(() => process.exit(0), 200).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
