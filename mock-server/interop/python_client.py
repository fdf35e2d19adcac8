#!/usr/bin/env python3
"""The reference server driven by a client nobody on this project wrote: Python's
`websockets` library and `urllib`, speaking pitchey-v1 from docs/PROTOCOL.md alone.

Usage: python_client.py PATH_TO_pitchey-mock-server
Prints one line per check and a closing "N passed, N failed" line; exits non-zero on failure.
"""

import asyncio
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request

import websockets

SECRET = "interop-test-secret"
results = {"passed": 0, "failed": 0}


def check(name, ok, detail=""):
    results["passed" if ok else "failed"] += 1
    print(f"{'ok  ' if ok else 'FAIL'} {name}" + (f": {detail}" if detail and not ok else ""))


def token(binary, user, admin=False):
    args = [binary, "token", "--user", str(user)] + (["--admin"] if admin else [])
    env = dict(os.environ, JWT_SECRET=SECRET)
    return subprocess.run(args, env=env, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]


def http(base, method, path, tok=None, body=None):
    req = urllib.request.Request(base + path, method=method)
    if tok:
        req.add_header("Authorization", f"Bearer {tok}")
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, data, timeout=5) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, None


async def recv_type(ws, kind, timeout=5):
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if frame["type"] == kind:
            return frame


async def main(binary):
    env = dict(os.environ, JWT_SECRET=SECRET, RUST_LOG="warn")
    server = subprocess.Popen([binary, "--port", "0"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        port = None
        for line in server.stdout:
            m = re.search(r"ws://127\.0\.0\.1:(\d+)/ws", line)
            if m:
                port = int(m.group(1))
                break
        if port is None:
            check("server prints its URL", False)
            return
        base = f"http://127.0.0.1:{port}"
        ws_url = f"ws://127.0.0.1:{port}/ws"
        t7, t8, admin = token(binary, 7), token(binary, 8), token(binary, 1, admin=True)

        status, body = http(base, "GET", "/api/ws/health")
        check("health without auth", status == 200 and isinstance(body, dict), body)

        async with websockets.connect(f"{ws_url}?token={t7}", subprotocols=["pitchey-v1"]) as ws:
            first = json.loads(await ws.recv())
            check("first frame is connected", first["type"] == "connected" and first["data"]["userId"] == 7, first)
            check("subprotocol pitchey-v1", ws.subprotocol == "pitchey-v1", ws.subprotocol)

            await ws.send(json.dumps({"type": "ping", "data": {"ts": 42}}))
            pong = await recv_type(ws, "pong")
            check("ping gets pong with ts", pong["data"].get("ts") == 42, pong)

            await ws.send(json.dumps({"type": "subscribe", "id": "py-1", "data": {"channel": "pitch:5"}}))
            ack = await recv_type(ws, "ack")
            check("subscribe acked", ack["data"]["id"] == "py-1", ack)

            await ws.send(json.dumps({"type": "pitch_view", "id": "py-2", "data": {"pitchId": 5}}))
            stats = await recv_type(ws, "pitch_stats_update")
            check("pitch_view -> pitch_stats_update", stats["data"]["pitchId"] == 5 and stats["data"]["viewCount"] >= 1, stats)

            await ws.send("{not json")
            err = await recv_type(ws, "error")
            check("malformed JSON -> invalid_message, open", err["data"]["code"] == "invalid_message", err)

            await ws.send(json.dumps({"type": "pitch_view", "id": "py-3", "data": {"pitchId": "five"}}))
            err = await recv_type(ws, "error")
            check("wrong field type -> invalid_message with id", err["data"]["code"] == "invalid_message" and err["data"].get("id") == "py-3", err)

            status, _ = http(base, "POST", "/api/ws/notify", t8,
                             {"userId": 7, "notification": {"type": "message", "title": "Hi", "message": "from python"}})
            note = await recv_type(ws, "notification")
            check("POST /api/ws/notify delivered live", status == 200 and note["data"]["title"] == "Hi", note)
            check("durable frames carry seq", isinstance(note.get("seq"), int), note)

            await ws.send(json.dumps({"type": "draft_sync", "id": "py-4", "data": {"draftId": "d", "content": {"a": 1}, "baseVersion": 0}}))
            ack = await recv_type(ws, "ack")
            check("draft saved at version 1", ack["data"] == {"id": "py-4", "version": 1}, ack)
            await ws.send(json.dumps({"type": "draft_sync", "id": "py-5", "data": {"draftId": "d", "content": {"a": 2}, "baseVersion": 0}}))
            conflict = await recv_type(ws, "draft_conflict")
            check("stale base -> draft_conflict", conflict["data"]["serverVersion"] == 1, conflict)

        status, _ = http(base, "POST", "/api/ws/announce", t7, {"title": "x", "message": "y"})
        check("announce as non-admin -> 403", status == 403, status)
        status, _ = http(base, "POST", "/api/ws/announce", None, {"title": "x", "message": "y"})
        check("announce without token -> 401", status == 401, status)
        status, stats = http(base, "GET", "/api/ws/stats", admin)
        check("stats as admin", status == 200 and isinstance(stats, dict), status)

        try:
            async with websockets.connect(f"{ws_url}?token=not-a-jwt"):
                check("bad token refused", False, "accepted")
        except websockets.exceptions.InvalidStatus as e:
            check("bad token refused with 401", e.response.status_code == 401, e.response.status_code)
    finally:
        server.terminate()
        code = server.wait(timeout=10)
        check("SIGTERM: graceful exit 0", code == 0, code)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    asyncio.run(main(sys.argv[1]))
    print(f"{results['passed']} passed, {results['failed']} failed")
    sys.exit(1 if results["failed"] else 0)
