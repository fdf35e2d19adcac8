//! The browser platform (`transport::web`) and the client on it, in headless Chromium,
//! against the real reference server.
//!
//! Run by `scripts/test-web.sh`, which starts `pitchey-mock-server` on a free port, mints
//! tokens with its `token` subcommand and hands them over at compile time (a wasm test
//! cannot read the environment when it runs): `PITCHEY_TEST_WS_URL`,
//! `PITCHEY_TEST_HTTP_URL`, `PITCHEY_TEST_ADMIN_TOKEN` and `PITCHEY_TEST_TOKEN_USER1` ..
//! `PITCHEY_TEST_TOKEN_USER12` (users 1..12). Server-side events are triggered through the
//! server's HTTP endpoints with `fetch` (the server sends permissive CORS headers) and
//! through a second client.
//!
//! Every test uses its own users and pitch ids. Timeouts only bound how long a test waits
//! for something that must happen; nothing asserts on timing.
#![cfg(all(target_arch = "wasm32", feature = "web"))]

use std::future::Future;
use std::pin::pin;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::{Either, select};
use gloo_timers::future::TimeoutFuture;
use pitchey_realtime::client::platform::{Connect, ConnectError, SocketEvent, Timer};
use pitchey_realtime::client::{Client, ClientError, EventStream, Subscription};
use pitchey_realtime::core::{
    Action, Config, ConfigError, Connection, Event, Instant, MessageId, SendError, State,
    endpoint_by_url_crate,
};
use pitchey_realtime::protocol::{Channel, ClientMessage, PitchStats, PitchView};
use pitchey_realtime::transport::web::{self, BrowserTimer, Connector};
use serde_json::{Value, json};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::JsValue;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

/// The longest wait for something that must happen.
const WAIT_MS: u32 = 10_000;

fn setting(value: Option<&'static str>, name: &str) -> &'static str {
    value.unwrap_or_else(|| {
        panic!("{name} was not set at compile time: run the browser tests with scripts/test-web.sh")
    })
}

/// `ws://127.0.0.1:PORT/ws`.
fn ws_url() -> &'static str {
    setting(option_env!("PITCHEY_TEST_WS_URL"), "PITCHEY_TEST_WS_URL")
}

/// `http://127.0.0.1:PORT`.
fn http_url() -> &'static str {
    setting(
        option_env!("PITCHEY_TEST_HTTP_URL"),
        "PITCHEY_TEST_HTTP_URL",
    )
}

fn admin_token() -> &'static str {
    setting(
        option_env!("PITCHEY_TEST_ADMIN_TOKEN"),
        "PITCHEY_TEST_ADMIN_TOKEN",
    )
}

/// A token of `user` (1..=12).
fn token(user: u64) -> &'static str {
    let value = match user {
        1 => option_env!("PITCHEY_TEST_TOKEN_USER1"),
        2 => option_env!("PITCHEY_TEST_TOKEN_USER2"),
        3 => option_env!("PITCHEY_TEST_TOKEN_USER3"),
        4 => option_env!("PITCHEY_TEST_TOKEN_USER4"),
        5 => option_env!("PITCHEY_TEST_TOKEN_USER5"),
        6 => option_env!("PITCHEY_TEST_TOKEN_USER6"),
        7 => option_env!("PITCHEY_TEST_TOKEN_USER7"),
        8 => option_env!("PITCHEY_TEST_TOKEN_USER8"),
        9 => option_env!("PITCHEY_TEST_TOKEN_USER9"),
        10 => option_env!("PITCHEY_TEST_TOKEN_USER10"),
        11 => option_env!("PITCHEY_TEST_TOKEN_USER11"),
        12 => option_env!("PITCHEY_TEST_TOKEN_USER12"),
        _ => panic!("no token minted for user {user}"),
    };
    setting(value, "PITCHEY_TEST_TOKEN_USER<n>")
}

/// `fut`, or a panic naming `what` after [`WAIT_MS`].
async fn within<F: Future>(what: &str, fut: F) -> F::Output {
    match select(pin!(fut), TimeoutFuture::new(WAIT_MS)).await {
        Either::Left((value, _)) => value,
        Either::Right(_) => panic!("timed out after {WAIT_MS} ms waiting for {what}"),
    }
}

/// Wait `ms` milliseconds.
async fn pause(ms: u32) {
    TimeoutFuture::new(ms).await;
}

fn client_for(user: u64) -> Client {
    Client::builder(ws_url())
        .token(token(user))
        .build()
        .expect("client builds")
}

async fn connected_client(user: u64) -> Client {
    let client = client_for(user);
    client.connect().expect("driver running");
    within("connected", client.connected())
        .await
        .expect("connects");
    client
}

/// The first event of `events` that `pick` accepts. Make the stream before the action
/// whose event it waits for, so that the event cannot slip past.
async fn event<R>(
    what: &str,
    events: &mut EventStream,
    mut pick: impl FnMut(&Event) -> Option<R>,
) -> R {
    within(what, async {
        loop {
            let event = events
                .next()
                .await
                .expect("client alive")
                .expect("not lagged");
            if let Some(r) = pick(&event) {
                return r;
            }
        }
    })
    .await
}

/// Wait until every id of `ids` was acked; panics on a failure of one of them.
async fn acked(events: &mut EventStream, ids: &[MessageId]) {
    let mut left: Vec<MessageId> = ids.to_vec();
    while !left.is_empty() {
        let id = event("acks", events, |e| match e {
            Event::Acked(id) => Some(id.clone()),
            Event::SendFailed(id, why) if left.contains(id) => panic!("{id} failed: {why:?}"),
            _ => None,
        })
        .await;
        left.retain(|l| *l != id);
    }
}

/// Subscribe `client` to the stats of `pitch_id` and wait until the server confirmed it
/// (an unknown pitch has no stats yet, so no first update comes).
async fn watch_pitch(client: &Client, pitch_id: u64) -> Subscription<PitchStats> {
    let mut events = client.events();
    let stats = client.pitch_stats(pitch_id).expect("subscribed");
    event("the subscription ack", &mut events, |e| match e {
        Event::SubscriptionActive { channel } if *channel == Channel::Pitch(pitch_id) => Some(()),
        Event::SubscriptionFailed { channel, code, .. } if *channel == Channel::Pitch(pitch_id) => {
            panic!("subscription refused: {code:?}")
        }
        _ => None,
    })
    .await;
    stats
}

/// Stats of `pitch_id` until one with at least `views` views.
async fn stats_with_views(sub: &mut Subscription<PitchStats>, views: u64) -> PitchStats {
    within("pitch stats", async {
        loop {
            let stats = sub
                .next()
                .await
                .expect("subscription open")
                .expect("not lagged");
            if stats.view_count >= views {
                return stats;
            }
        }
    })
    .await
}

/// Wait until the client's state satisfies `pred`; returns that state.
async fn state_where(client: &Client, what: &str, pred: impl Fn(&State) -> bool) -> State {
    let mut states = client.state_changes();
    within(what, async {
        loop {
            let state = states.next().await.expect("client alive");
            if pred(&state) {
                return state;
            }
        }
    })
    .await
}

/// `fetch` to the reference server with a bearer token; the status and the JSON body.
async fn http(method: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    let headers = web_sys::Headers::new().expect("Headers");
    headers
        .set("Authorization", &format!("Bearer {token}"))
        .expect("header");
    if let Some(body) = body {
        headers
            .set("Content-Type", "application/json")
            .expect("header");
        init.set_body(&JsValue::from_str(&body.to_string()));
    }
    init.set_headers(&headers);
    let url = format!("{}{path}", http_url());
    let request = web_sys::Request::new_with_str_and_init(&url, &init).expect("request");
    let window = web_sys::window().expect("a window");
    let response: JsValue = JsFuture::from(window.fetch_with_request(&request))
        .await
        .unwrap_or_else(|e| panic!("fetch {method} {url} failed (CORS?): {e:?}"));
    let response: web_sys::Response = response.dyn_into().expect("a Response");
    let text: JsValue = JsFuture::from(response.text().expect("text()"))
        .await
        .expect("body");
    let json = text
        .as_string()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    (response.status(), json)
}

/// Inject a server fault for `user` (admin endpoint).
async fn fault(name: &str, user: u64) {
    let (status, body) = http(
        "POST",
        &format!("/api/ws/faults/{name}"),
        admin_token(),
        Some(json!({"userId": user})),
    )
    .await;
    assert_eq!(status, 200, "fault {name}: {body}");
    assert!(
        body["sessions"].as_u64() >= Some(1),
        "no session of {user} hit: {body}"
    );
}

// ---------------------------------------------------------------------------------------
// The platform pieces on their own.

#[wasm_bindgen_test]
async fn timer_is_monotonic_and_sleeps_at_least_as_long_as_asked() {
    let timer = BrowserTimer::new();
    let start = timer.now();
    assert!(
        start.since_origin() < Duration::from_secs(1),
        "origin is construction time"
    );
    timer.sleep(Duration::from_millis(60)).await;
    let after = timer.now();
    assert!(
        after - start >= Duration::from_millis(59),
        "slept {:?}",
        after - start
    );
    // Epoch milliseconds: after 2024-01-01 and close to `Date.now()`.
    let epoch = timer.epoch_ms();
    assert!(epoch > 1_704_067_200_000, "{epoch}");
    assert!(epoch.abs_diff(js_sys::Date::now() as u64) < 5_000);
    // Zero returns (next macrotask); `Duration::MAX` never fires.
    timer.sleep(Duration::ZERO).await;
    let never = timer.sleep(Duration::MAX);
    match select(never, TimeoutFuture::new(200)).await {
        Either::Left(_) => panic!("a Duration::MAX sleep fired"),
        Either::Right(_) => {}
    }
}

#[wasm_bindgen_test]
fn entropy_comes_from_crypto_and_differs() {
    let a = web::entropy().expect("crypto.getRandomValues");
    let b = web::entropy().expect("crypto.getRandomValues");
    assert_ne!(a, b);
}

// The endpoint URL vectors of `core/endpoint.rs`'s unit tests.
include!("../src/core/endpoint_vectors.rs");

/// The URL the core opens for `url` and `token` (its first action), or why it refuses.
fn opened_url(url: &str, token: &str) -> Result<String, ConfigError> {
    let config = Config::new(url).with_token(token);
    let mut conn = Connection::new(config, 1, Instant::ZERO);
    conn.connect(Instant::ZERO)?;
    let opened = conn.drain_actions().find_map(|a| match a {
        Action::Connect { url, .. } => Some(url),
        _ => None,
    });
    Ok(opened.expect("connect opens a socket at once"))
}

#[wasm_bindgen_test]
fn the_browser_opens_the_urls_the_url_crate_opens() {
    let mut wrong = Vec::new();
    for input in OK {
        for token in TOKENS {
            let browser = opened_url(input, token);
            if browser != endpoint_by_url_crate::connect_url(input, token) {
                wrong.push(format!("{input:?} with {token:?}: {browser:?}"));
            }
        }
    }
    for (input, token, url) in ENCODED {
        let browser = opened_url(input, token);
        if browser.as_deref() != Ok(*url) {
            wrong.push(format!("{input:?}: {browser:?}"));
        }
    }
    for input in BAD {
        let browser = opened_url(input, "t");
        if !matches!(browser, Err(ConfigError::InvalidUrl { .. })) {
            wrong.push(format!("{input:?}: {browser:?}"));
        }
    }
    for (input, scheme) in SCHEMES {
        let browser = opened_url(input, "t");
        if browser != Err(ConfigError::UnsupportedScheme((*scheme).into())) {
            wrong.push(format!("{input:?}: {browser:?}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[wasm_bindgen_test]
async fn connector_reports_a_bad_url_and_a_refused_upgrade() {
    // The constructor throws (browsers resolve relative and http URLs, but refuse other
    // schemes): nothing was sent.
    let err = Connector
        .connect("ftp://127.0.0.1/ws", "")
        .await
        .map(|_| ())
        .expect_err("a bad URL fails");
    assert!(matches!(err, ConnectError::Failed(_)), "{err:?}");

    // The server answers 401 to a bad token; a browser only sees a close 1006 before open.
    let url = format!("{}?token=not-a-jwt", ws_url());
    let err = within("the refused upgrade", Connector.connect(&url, "not-a-jwt"))
        .await
        .map(|_| ())
        .expect_err("a refused upgrade fails");
    assert!(
        matches!(err, ConnectError::Closed { code: 1006, .. }),
        "{err:?}"
    );
}

#[wasm_bindgen_test]
async fn raw_socket_delivers_frames_writes_and_closes() {
    let url = format!("{}?token={}", ws_url(), token(8));
    let mut socket = within("open", Connector.connect(&url, token(8)))
        .await
        .expect("opens");
    // The server's first frame.
    let first = within("the connected frame", socket.next()).await;
    let Some(SocketEvent::Text(text)) = first else {
        panic!("expected a text frame, got {first:?}")
    };
    let frame: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(frame["type"], "connected", "{frame}");
    assert_eq!(frame["data"]["userId"], 8, "{frame}");

    // A ping is answered with a pong carrying the same ts.
    socket
        .send(vec![r#"{"type":"ping","data":{"ts":4242}}"#.into()])
        .await
        .expect("written");
    let pong = within("pong", async {
        loop {
            match socket.next().await {
                Some(SocketEvent::Text(text)) => {
                    let f: Value = serde_json::from_str(&text).expect("JSON");
                    if f["type"] == "pong" {
                        return f;
                    }
                }
                other => panic!("socket ended: {other:?}"),
            }
        }
    })
    .await;
    assert_eq!(pong["data"]["ts"], 4242, "{pong}");

    // After close, writes fail instead of vanishing.
    socket.close(1000, "bye".into()).await;
    let err = socket
        .send(vec![r#"{"type":"ping","data":{"ts":1}}"#.into()])
        .await
        .expect_err("a closed socket refuses writes");
    assert!(err.contains("not open"), "{err}");
    // Its handlers are detached: the stream ends without the browser's late `close`.
    let rest: Vec<SocketEvent> = within("the end of the stream", socket.collect()).await;
    assert!(
        rest.iter().all(|e| matches!(e, SocketEvent::Text(_))),
        "{rest:?}"
    );
}

/// The presence status the server reports for `user`.
async fn presence_status(user: u64) -> String {
    let (status, body) = http(
        "GET",
        &format!("/api/ws/presence/{user}"),
        admin_token(),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["status"].as_str().unwrap_or_default().to_owned()
}

#[wasm_bindgen_test]
async fn dropping_a_socket_closes_the_connection() {
    const USER: u64 = 9;
    let url = format!("{}?token={}", ws_url(), token(USER));
    let mut socket = within("open", Connector.connect(&url, token(USER)))
        .await
        .expect("opens");
    within("the connected frame", socket.next()).await;
    assert_eq!(presence_status(USER).await, "online");
    drop(socket);
    within("the server to see the user go offline", async {
        while presence_status(USER).await != "offline" {
            pause(50).await;
        }
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// The client on the browser platform.

#[wasm_bindgen_test]
async fn connects_and_the_server_sees_the_user_online() {
    let client = client_for(1);
    assert_eq!(client.state(), State::Idle);
    let mut events = client.events();
    client.connect().expect("driver running");
    within("connected", client.connected())
        .await
        .expect("connects");
    assert_eq!(client.state(), State::Connected);
    // Every state on the way, in order.
    let mut seen = Vec::new();
    while seen.last() != Some(&State::Connected) {
        seen.push(
            event("state changes", &mut events, |e| match e {
                Event::StateChanged(state) => Some(state.clone()),
                _ => None,
            })
            .await,
        );
    }
    assert_eq!(seen, [State::Connecting, State::Connected]);

    let (status, presence) = http("GET", "/api/ws/presence/1", token(2), None).await;
    assert_eq!(status, 200, "{presence}");
    assert_eq!(presence["status"], "online", "{presence}");

    let metrics = client.metrics().expect("metrics");
    assert_eq!(metrics.connect_attempts, 1, "{metrics:?}");
    assert!(metrics.frames_received >= 1, "{metrics:?}");

    client.disconnect().expect("disconnect");
    state_where(&client, "closed", |s| *s == State::Closed).await;
}

#[wasm_bindgen_test]
async fn pitch_stats_arrive_when_another_client_reports_a_view() {
    const PITCH: u64 = 9_001;
    let watcher = connected_client(2).await;
    let viewer = connected_client(3).await;
    let mut stats = watch_pitch(&watcher, PITCH).await;

    viewer
        .send_confirmed(ClientMessage::PitchView(PitchView { pitch_id: PITCH }))
        .await
        .expect("the view is acked");
    let update = stats_with_views(&mut stats, 1).await;
    assert_eq!(update.pitch_id, PITCH);
    assert_eq!(update.view_count, 1, "{update:?}");
    assert_eq!(update.unique_viewers, 1, "{update:?}");
}

#[wasm_bindgen_test]
async fn a_server_side_drop_is_followed_by_a_reconnect() {
    const USER: u64 = 4;
    let client = connected_client(USER).await;
    let mut states = client.state_changes();
    fault("drop", USER).await;
    // The link goes down (the browser reports a close 1006) and comes back by itself.
    let mut left = false;
    within("down and up again", async {
        while let Some(state) = states.next().await {
            match state {
                State::Connected if left => return,
                State::Connected => {}
                State::Reconnecting { .. } | State::Connecting => left = true,
                other => panic!("unexpected state {other:?}"),
            }
        }
    })
    .await;
    let metrics = client.metrics().expect("metrics");
    assert!(metrics.reconnects >= 1, "{metrics:?}");
    assert!(
        metrics
            .last_disconnect
            .as_deref()
            .is_some_and(|d| d.contains("1006")),
        "{metrics:?}"
    );
    // And the new link carries messages.
    let id = within(
        "a confirmed write",
        client.send_confirmed(ClientMessage::PitchView(PitchView { pitch_id: 9_002 })),
    )
    .await
    .expect("acked on the new link");
    assert!(id.as_str().starts_with("c-"), "{id:?}");
}

#[wasm_bindgen_test]
async fn messages_queued_while_disconnected_are_delivered_after_connect() {
    const PITCH: u64 = 9_003;
    let watcher = connected_client(5).await;
    let mut stats = watch_pitch(&watcher, PITCH).await;

    let client = client_for(6);
    let mut events = client.events();
    let first = client.report_pitch_view(PITCH).expect("queued");
    let second = client.report_pitch_view(PITCH).expect("queued");
    let metrics = client.metrics().expect("metrics");
    assert_eq!(metrics.queue_depth, 2, "{metrics:?}");
    assert_eq!(metrics.connect_attempts, 0, "nothing sent before connect");

    client.connect().expect("driver running");
    acked(&mut events, &[first, second]).await;
    let update = stats_with_views(&mut stats, 2).await;
    assert_eq!(update.view_count, 2, "{update:?}");
    let metrics = client.metrics().expect("metrics");
    assert_eq!(metrics.queue_depth, 0, "{metrics:?}");
}

#[wasm_bindgen_test]
async fn a_full_queue_is_an_error_and_drains_after_connect() {
    let client = Client::builder(ws_url())
        .token(token(7))
        .configure(|c| c.outbox_capacity = 2)
        .build()
        .expect("client builds");
    let mut events = client.events();
    let a = client.report_pitch_view(9_004).expect("1st queued");
    let b = client.report_pitch_view(9_004).expect("2nd queued");
    let err = client
        .report_pitch_view(9_004)
        .expect_err("the 3rd does not fit");
    assert_eq!(err, ClientError::Send(SendError::QueueFull { capacity: 2 }));
    event("QueueFull event", &mut events, |e| {
        matches!(e, Event::QueueFull).then_some(())
    })
    .await;

    client.connect().expect("driver running");
    acked(&mut events, &[a, b]).await;
    client
        .report_pitch_view(9_004)
        .expect("room again once acked");
}

#[wasm_bindgen_test]
async fn a_restored_snapshot_delivers_under_the_same_ids() {
    const USER: u64 = 10;
    const PITCH: u64 = 9_005;
    // A page that queued two views and was reloaded before it ever connected.
    let before = client_for(USER);
    let first = before.report_pitch_view(PITCH).expect("queued");
    let second = before.report_pitch_view(PITCH).expect("queued");
    let snapshot = before.export().expect("export");
    drop(before);
    assert_eq!(snapshot.messages.len(), 2, "{snapshot:?}");
    // It survives the storage round trip a page would make (localStorage holds text).
    let stored = serde_json::to_string(&snapshot).expect("serialize");
    let snapshot = serde_json::from_str(&stored).expect("deserialize");

    let after = Client::builder(ws_url())
        .token(token(USER))
        .restore(snapshot)
        .build()
        .expect("restores");
    let mut events = after.events();
    assert_eq!(after.metrics().expect("metrics").queue_depth, 2);
    after.connect().expect("driver running");
    let mut acks = Vec::new();
    while acks.len() < 2 {
        let id = event("acks of the restored messages", &mut events, |e| match e {
            Event::Acked(id) => Some(id.clone()),
            Event::SendFailed(id, why) => panic!("{id} failed: {why:?}"),
            _ => None,
        })
        .await;
        acks.push(id);
    }
    acks.sort();
    let mut expected = vec![first, second];
    expected.sort();
    assert_eq!(acks, expected, "acked under the ids they were queued with");
}

#[wasm_bindgen_test]
async fn online_and_visible_reconnect_at_once_until_the_guard_is_dropped() {
    const USER: u64 = 11;
    let hour = Duration::from_secs(3_600);
    let client = Client::builder(ws_url())
        .token(token(USER))
        .configure(|c| {
            c.backoff.first_retry_immediate = false;
            c.backoff.initial = hour;
            c.backoff.max = hour;
        })
        .build()
        .expect("client builds");
    client.connect().expect("driver running");
    within("connected", client.connected())
        .await
        .expect("connects");
    let guard = web::watch_lifecycle(&client);

    // The server drops the link; the next attempt is up to an hour away.
    fault("drop", USER).await;
    let waiting = state_where(&client, "reconnecting", |s| {
        matches!(s, State::Reconnecting { .. })
    })
    .await;
    let window = web_sys::window().expect("a window");
    let online = web_sys::Event::new("online").expect("event");
    window.dispatch_event(&online).expect("dispatched");
    within("reconnect on `online`", client.connected())
        .await
        .expect("reconnects");

    // The same when the page comes back to the foreground (`visibilitychange` while
    // visible; a headless page counts as visible).
    let document = window.document().expect("a document");
    assert!(!document.hidden(), "the test page is hidden");
    fault("drop", USER).await;
    state_where(&client, "reconnecting", |s| {
        matches!(s, State::Reconnecting { .. })
    })
    .await;
    let visible = web_sys::Event::new("visibilitychange").expect("event");
    document.dispatch_event(&visible).expect("dispatched");
    within("reconnect on `visibilitychange`", client.connected())
        .await
        .expect("reconnects");

    // Without the guard, `online` does nothing: the client waits for its backoff delay.
    drop(guard);
    fault("drop", USER).await;
    let State::Reconnecting { delay, .. } = state_where(&client, "reconnecting again", |s| {
        matches!(s, State::Reconnecting { .. })
    })
    .await
    else {
        unreachable!()
    };
    window.dispatch_event(&online).expect("dispatched");
    // Only meaningful when the random delay is longer than the look (almost always).
    if delay > Duration::from_secs(5) {
        pause(1_500).await;
        assert!(
            matches!(client.state(), State::Reconnecting { .. }),
            "woken without a guard: {:?} (first wait {waiting:?})",
            client.state()
        );
    }
}
