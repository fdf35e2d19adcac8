"""The mobile SDK's scenario in a second foreign language: the Python bindings uniffi generates
from the same library, run against the real reference server started by scripts/test-mobile.sh.

Usage: python3 scenario.py GENERATED_DIR
(GENERATED_DIR holds pitchey_realtime_mobile.py and the library beside it.)

Environment (set by the script): PITCHEY_WS_URL, PITCHEY_HTTP_URL, PITCHEY_SERVER_BIN (mints
tokens with `token --user N`, same JWT_SECRET), PITCHEY_ADMIN_TOKEN, PITCHEY_WORK_DIR.
Each check raises on failure; the process exits non-zero when one failed.
"""

import asyncio
import json
import os
import queue
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, sys.argv[1])
import pitchey_realtime_mobile as sdk  # noqa: E402

WS_URL = os.environ["PITCHEY_WS_URL"]
HTTP_URL = os.environ["PITCHEY_HTTP_URL"]
SERVER_BIN = os.environ["PITCHEY_SERVER_BIN"]
ADMIN = os.environ["PITCHEY_ADMIN_TOKEN"]
WORK_DIR = os.environ["PITCHEY_WORK_DIR"]


def mint(user, ttl_secs=3600):
    """A token signed with the server's secret, minted by the server binary."""
    out = subprocess.run(
        [SERVER_BIN, "token", "--user", str(user), "--ttl-secs", str(ttl_secs)],
        check=True, capture_output=True, text=True,
    )
    return out.stdout.strip()


def post(path, token, body, base=HTTP_URL):
    req = urllib.request.Request(
        base + path, data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as res:
            return res.status, res.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def notify(user, title, base=HTTP_URL):
    status, body = post("/api/ws/notify", mint(99), base=base, body={
        "userId": user,
        "notification": {"type": "follow", "title": title, "message": "m", "data": {"followerId": 3}},
    })
    assert status == 200, f"notify: {status} {body}"


class Collector(sdk.EventListener):
    """An EventListener implemented in Python; events arrive on a library thread."""

    def __init__(self):
        self.events = queue.Queue()
        self.count = 0

    def on_event(self, event):
        self.count += 1
        self.events.put(event)

    async def wait_for(self, what, pick, timeout=10.0):
        """The first non-None pick(event) within timeout seconds."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"no {what} within {timeout} s"
            try:
                event = await asyncio.to_thread(self.events.get, True, min(left, 0.5))
            except queue.Empty:
                continue
            found = pick(event)
            if found is not None:
                return found


def titled(title):
    def pick(e):
        if isinstance(e, sdk.ClientEvent.NOTIFICATION_RECEIVED) and e.notification.title == title:
            return e.notification
        return None
    return pick


def state_is(wanted):
    def pick(e):
        if isinstance(e, sdk.ClientEvent.STATE_CHANGED) and wanted(e.state):
            return e.state
        return None
    return pick


def acked(message_id):
    return lambda e: e if isinstance(e, sdk.ClientEvent.ACKED) and e.id == message_id else None


def client(user, url=WS_URL, options=None):
    b = sdk.ClientBuilder(url).token(mint(user))
    if options is not None:
        b = b.options(options)
    return b.build()


async def connected(c, timeout=10.0):
    await c.connect()
    await asyncio.wait_for(c.connected(), timeout)


# ------------------------------------------------------------------------------------------------

async def connect_notify_cancel():
    c = client(21)
    sub, everything = Collector(), Collector()
    handle = await c.subscribe_notifications(sub)
    all_handle = c.subscribe_events(everything)
    await connected(c)
    assert c.state() == sdk.ConnectionState.CONNECTED(), c.state()
    notify(21, "hello from python")
    n = await sub.wait_for("the notification", titled("hello from python"))
    assert n.kind == "follow" and "followerId" in n.data_json, n

    handle.cancel()
    assert not handle.is_active()
    before = sub.count
    notify(21, "after cancel")
    await everything.wait_for("the second notification on the all-events listener", titled("after cancel"))
    await asyncio.sleep(0.3)
    assert sub.count == before, f"a cancelled subscription got {sub.count - before} more events"
    all_handle.cancel()
    await c.disconnect()
    await c.close(1000)


async def send_with_ack():
    c = client(22)
    await connected(c)
    first = await c.report_pitch_view_confirmed(42)
    second = await c.send_confirmed("pitch_view", '{"pitchId": 43}')
    assert first.startswith("c-") and first != second, (first, second)
    try:
        await c.send("pitch_view", "{not json")
        raise AssertionError("bad JSON was accepted")
    except sdk.PitcheyError.InvalidJson:
        pass
    try:
        await c.send_confirmed("typing", '{"conversationId": 1, "isTyping": true}')
        raise AssertionError("an ephemeral message was confirmed")
    except sdk.PitcheyError.NotDurable:
        pass
    await c.disconnect()
    await c.close(1000)


class Provider(sdk.TokenProvider):
    """A token provider implemented in Python (called on a library thread; may block)."""

    def __init__(self, user):
        self.user = user
        self.calls = 0

    def fetch_token(self):
        self.calls += 1
        # Tokens issued up to the second of an expire-token fault are refused: mint in a later one.
        time.sleep(1.1)
        return mint(self.user)


async def token_provider_after_expiry():
    provider = Provider(23)
    states = Collector()
    # The server mints no token that is born expired: one of a second, expired by the time it is used.
    expired = mint(23, ttl_secs=1)
    await asyncio.sleep(2.1)
    c = sdk.ClientBuilder(WS_URL).token(expired).token_provider(provider).build()
    state_handle = c.subscribe_state(states)  # kept: a dropped handle unsubscribes
    await connected(c, 15.0)
    assert provider.calls >= 1, "the provider was not asked for the expired token"
    # The states of the first connect are not the ones awaited below.
    while not states.events.empty():
        states.events.get_nowait()
    status, body = post("/api/ws/faults/expire-token", ADMIN, {"userId": 23})
    assert status == 200, f"fault: {status} {body}"
    await states.wait_for("AwaitingToken", state_is(lambda s: s == sdk.ConnectionState.AWAITING_TOKEN()))
    await states.wait_for("Connected again", state_is(lambda s: s == sdk.ConnectionState.CONNECTED()), 15.0)
    assert provider.calls >= 2, provider.calls
    await c.report_pitch_view_confirmed(44)
    state_handle.cancel()
    await c.disconnect()
    await c.close(1000)


async def draft_conflict_resolved():
    a, b = client(24), client(24)
    await connected(a)
    await connected(b)
    options = sdk.default_draft_options()
    options.draft_type = "pitch"
    options.initial_json = '{"title": "Night Train"}'
    options.base_version = 0
    options.auto_save_interval_ms = 3_600_000
    options.strategy = sdk.ConflictStrategy.ASK
    da = await a.open_draft("pitch_py", options)
    db = await b.open_draft("pitch_py", options)
    a_events, b_events = Collector(), Collector()
    handles = [da.subscribe(a_events), db.subscribe(b_events)]  # kept: a dropped handle unsubscribes
    await db.update('{"title": "B"}')
    await da.update('{"title": "A"}')
    await da.save()
    await a_events.wait_for("a's save", lambda e: e if isinstance(e, sdk.ClientEvent.DRAFT_SAVED) and (e.version or 0) >= 1 else None)
    try:
        await db.save()
    except sdk.PitcheyError:
        pass
    conflict = await b_events.wait_for("the conflict", lambda e: e if isinstance(e, sdk.ClientEvent.DRAFT_CONFLICT) else None)
    assert '"B"' in conflict.local_json and '"A"' in conflict.remote_json, conflict
    await db.resolve_with_local()
    await b_events.wait_for("the resolved save", lambda e: e if isinstance(e, sdk.ClientEvent.DRAFT_SAVED) and (e.version or 0) >= 2 else None)
    state = await db.state()
    assert state.conflict is None and '"B"' in state.content_json, state
    for h in handles:
        h.cancel()
    await a.disconnect()
    await b.disconnect()
    await a.close(1000)
    await b.close(1000)


def start_server(port, log):
    """The server binary on port (same JWT_SECRET, inherited), once its health check answers."""
    proc = subprocess.Popen([SERVER_BIN, "--host", "127.0.0.1", "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the restarted server exited"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/ws/health", timeout=2) as res:
                if res.status == 200:
                    return proc
        except OSError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"the server on port {port} did not come up within 30 s")


async def survive_server_restart():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with open(os.path.join(WORK_DIR, "py-restart-server.log"), "wb") as log:
        server = start_server(port, log)
        try:
            c = client(25, url=f"ws://127.0.0.1:{port}/ws")
            states, events = Collector(), Collector()
            notes = Collector()
            handles = [c.subscribe_state(states), c.subscribe_events(events),  # kept: dropped ones unsubscribe
                       await c.subscribe_notifications(notes)]
            await connected(c)
            await c.report_pitch_view_confirmed(90)

            server.terminate()
            server.wait(10)
            await states.wait_for("a state other than Connected", state_is(lambda s: s != sdk.ConnectionState.CONNECTED()))
            queued = await c.report_pitch_view(91)  # the server is down: queued
            assert (await c.metrics()).queue_depth >= 1

            server = start_server(port, log)
            await states.wait_for("Connected after the restart", state_is(lambda s: s == sdk.ConnectionState.CONNECTED()), 30.0)
            await events.wait_for("the ack of the message sent while the server was down", acked(queued), 15.0)
            assert (await c.metrics()).queue_depth == 0
            # The listener registered before the restart gets each notification once.
            notify(25, "after the restart", base=f"http://127.0.0.1:{port}")
            await notes.wait_for("the notification after the restart", titled("after the restart"))
            await asyncio.sleep(0.3)
            extra = [e for e in list(notes.events.queue) if titled("after the restart")(e)]
            assert not extra, f"the listener got {len(extra) + 1} copies of one notification"
            for h in handles:
                h.cancel()
            await c.disconnect()
            await c.close(1000)
        finally:
            server.kill()
            server.wait()


CHECKS = [
    ("connect, a notification over HTTP to a Python listener, cancel the subscription", connect_notify_cancel),
    ("send with ack, typed errors", send_with_ack),
    ("token provider after expiry, reconnect with the new token", token_provider_after_expiry),
    ("draft conflict (ask) resolved with local", draft_conflict_resolved),
    ("the server restarts: reconnect, a message sent while it was down is delivered", survive_server_restart),
]


def main():
    failed = 0
    for name, check in CHECKS:
        t0 = time.monotonic()
        try:
            asyncio.run(asyncio.wait_for(check(), 60))
            print(f"ok   {name} ({(time.monotonic() - t0) * 1000:.0f} ms)", flush=True)
        except BaseException as e:  # noqa: BLE001 - report every failure, then exit non-zero
            failed += 1
            print(f"FAIL {name}: {e!r}", flush=True)
    if failed:
        print(f"{failed} of {len(CHECKS)} Python checks failed")
        sys.exit(1)
    print(f"all {len(CHECKS)} Python checks passed")


if __name__ == "__main__":
    main()
