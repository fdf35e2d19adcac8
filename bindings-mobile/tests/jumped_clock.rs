//! Time on a phone that slept: the clock the core reads jumps forward while tokio's timers
//! (like `CLOCK_MONOTONIC`) did not advance. A [`JumpClock`] stands in for
//! `CLOCK_BOOTTIME`: the test adds the time "slept" to it. After the jump, the heartbeat
//! and the backoff act on the real elapsed time, against the real reference server.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use pitchey_mock_server::{RunningServer, ServerConfig, start};
use pitchey_realtime::core::State;
use pitchey_realtime_mobile::clock::{BootClock, DeviceTimer, MonotonicClock};
use pitchey_realtime_mobile::{ClientBuilder, ConnectionState, default_client_options};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);

/// The device clock plus the time the test says the phone slept.
struct JumpClock {
    base: BootClock,
    slept_ms: AtomicU64,
}

impl JumpClock {
    fn new() -> Arc<Self> {
        Arc::new(JumpClock {
            base: BootClock::new(),
            slept_ms: AtomicU64::new(0),
        })
    }

    fn sleep_phone(&self, d: Duration) {
        self.slept_ms
            .fetch_add(d.as_millis() as u64, Ordering::SeqCst);
    }
}

impl MonotonicClock for JumpClock {
    fn elapsed(&self) -> Duration {
        self.base.elapsed() + Duration::from_millis(self.slept_ms.load(Ordering::SeqCst))
    }
}

async fn post(server: &RunningServer, path: &str, token: &str, body: Value) -> u16 {
    let addr = server.local_addr();
    let body = body.to_string();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = TcpStream::connect(addr).await.expect("http connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line")
}

#[tokio::test]
async fn a_silent_link_is_replaced_at_once_after_the_phone_slept() {
    let server = start(ServerConfig::for_tests())
        .await
        .expect("server starts");
    let clock = JumpClock::new();
    // Tokio's timers stand for CLOCK_MONOTONIC, which does not advance while the phone
    // sleeps: a one-hour slice means no timer notices the jump by itself.
    let timer = DeviceTimer::with_clock(clock.clone(), Duration::from_secs(3600));
    let mut options = default_client_options();
    options.heartbeat_timeout_ms = 10_000;
    let client = ClientBuilder::new(server.ws_url())
        .token(server.token(7))
        .options(options)
        .timer(timer)
        .build()
        .expect("builds");
    client.connect().await.expect("connect");
    timeout(WAIT, client.connected())
        .await
        .expect("in time")
        .expect("connects");

    // The link goes silent: the server holds every frame to this session for a minute.
    let admin = server.admin_token(999);
    let status = post(
        &server,
        "/api/ws/faults/delay",
        &admin,
        json!({"userId": 7, "ms": 60_000}),
    )
    .await;
    assert_eq!(status, 200);
    // A ping goes out now (its pong will be a minute late)...
    client.on_network_available(true).expect("wake");
    tokio::time::sleep(Duration::from_millis(300)).await;
    // ...and the phone sleeps for longer than the heartbeat timeout.
    clock.sleep_phone(Duration::from_secs(11));

    let woke = Instant::now();
    client.on_foreground().expect("foreground");
    let mut states = client.core().state_changes();
    timeout(WAIT, async {
        loop {
            let m = client.metrics().await.expect("metrics");
            if m.reconnects >= 1 && client.state() == ConnectionState::Connected {
                return;
            }
            let _ = timeout(Duration::from_millis(100), states.next()).await;
        }
    })
    .await
    .expect("the link is replaced");
    let took = woke.elapsed();
    // Without the jump the dead link would be noticed 10 s (real time) after the ping.
    assert!(took < Duration::from_secs(5), "replaced after {took:?}");
    let m = client.metrics().await.expect("metrics");
    assert!(
        m.last_disconnect
            .as_deref()
            .unwrap_or("")
            .contains("heartbeat"),
        "{m:?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_reconnect_that_fell_due_during_sleep_is_made_without_waiting() {
    // Nothing listens on this port: every attempt fails at once.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let clock = JumpClock::new();
    let timer = DeviceTimer::with_clock(clock.clone(), Duration::from_millis(200));
    let mut options = default_client_options();
    options.backoff_first_retry_immediate = false;
    options.backoff_initial_ms = 60_000;
    options.backoff_max_ms = 60_000;
    let client = ClientBuilder::new(format!("ws://127.0.0.1:{port}/ws"))
        .token("t".into())
        .options(options)
        .timer(timer)
        .build()
        .expect("builds");
    let mut states = client.core().state_changes();
    client.connect().await.expect("connect");
    // Full jitter: wait for a delay long enough to tell a due retry from a random one.
    let delay = timeout(Duration::from_secs(60), async {
        loop {
            match states.next().await.expect("client alive") {
                State::Reconnecting { delay, .. } if delay >= Duration::from_secs(10) => {
                    return delay;
                }
                _ => {}
            }
        }
    })
    .await
    .expect("a long backoff delay");
    let attempts = client.metrics().await.expect("metrics").connect_attempts;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        client.metrics().await.expect("metrics").connect_attempts,
        attempts,
        "no attempt before the delay"
    );

    // The phone sleeps past the delay; tokio's timer has not advanced, the clock has.
    clock.sleep_phone(delay + Duration::from_secs(1));
    let woke = Instant::now();
    timeout(Duration::from_secs(5), async {
        while client.metrics().await.expect("metrics").connect_attempts == attempts {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the due attempt is made");
    assert!(
        woke.elapsed() < Duration::from_secs(2),
        "{:?}",
        woke.elapsed()
    );

    // on_foreground acts at once too, whatever the timer.
    let attempts = client.metrics().await.expect("metrics").connect_attempts;
    client.on_foreground().expect("foreground");
    timeout(Duration::from_secs(2), async {
        while client.metrics().await.expect("metrics").connect_attempts == attempts {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("on_foreground retries now");
    client.disconnect().await.expect("disconnect");
}
