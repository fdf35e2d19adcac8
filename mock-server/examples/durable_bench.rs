//! What `--data-dir` costs: acked durable messages per second with the in-memory store and
//! with the redb store, on this machine's disk.
//!
//! `cargo run --release -p pitchey-mock-server --example durable_bench [clients] [saves]`
//!
//! Each client (its own user) pipelines `saves` `draft_sync` messages, each on top of the
//! last, and waits for every ack; then one HTTP client queues notifications for an offline
//! user, one request at a time. Throughput is counted from the first send to the last ack.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use pitchey_mock_server::{ServerConfig, start};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let clients: u64 = args.next().map_or(Ok(10), |a| a.parse())?;
    let saves: u64 = args.next().map_or(Ok(500), |a| a.parse())?;
    let dir = std::env::temp_dir().join(format!("durable-bench-{}", std::process::id()));
    for data_dir in [None, Some(dir.clone())] {
        let label = if data_dir.is_some() { "redb" } else { "memory" };
        let (drafts, notes) = run(clients, saves, data_dir).await?;
        println!(
            "{label:>6}: draft_sync {drafts:>8.0} acked/s ({clients} clients x {saves}), \
             notify to an offline user {notes:>6.0} answered/s (one at a time)"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

async fn run(
    clients: u64,
    saves: u64,
    data_dir: Option<std::path::PathBuf>,
) -> Result<(f64, f64), Error> {
    let mut config = ServerConfig::for_tests();
    config.rate_limit_enabled = false;
    config.session_outbox_cap = 1 << 16;
    config.data_dir = data_dir;
    let server = start(config).await?;
    let mut sockets = Vec::new();
    for user in 0..clients {
        let url = format!("{}?token={}", server.ws_url(), server.token(100 + user));
        let (mut ws, _) = connect_async(url).await?;
        ws.next().await; // connected
        sockets.push(ws);
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for ws in sockets {
        tasks.push(tokio::spawn(async move {
            let (mut tx, mut rx) = ws.split();
            let writer = tokio::spawn(async move {
                for n in 1..=saves {
                    let save = json!({"type": "draft_sync", "id": format!("s{n}"),
                        "data": {"draftId": "d", "content": {"n": n}, "baseVersion": n - 1}});
                    if tx.send(Message::text(save.to_string())).await.is_err() {
                        break;
                    }
                }
                tx
            });
            let mut acked = 0;
            while acked < saves {
                match tokio::time::timeout(Duration::from_secs(30), rx.next()).await {
                    Ok(Some(Ok(Message::Text(t)))) => {
                        let f: Value = serde_json::from_str(t.as_str()).unwrap_or_default();
                        if f["type"] == "ack" {
                            acked += 1;
                        }
                    }
                    _ => break,
                }
            }
            let _ = writer.await;
            acked
        }));
    }
    let mut acked = 0;
    for t in tasks {
        acked += t.await?;
    }
    let drafts = acked as f64 / started.elapsed().as_secs_f64();

    // Admin: exempt from the 60-a-minute budget of user tokens.
    let token = server.admin_token(1);
    let n = 500;
    let started = Instant::now();
    for i in 0..n {
        let body = json!({"userId": 99, "notification": {"type": "message", "title": format!("{i}"), "message": "m"}})
            .to_string();
        let mut s = TcpStream::connect(server.local_addr()).await?;
        let req = format!(
            "POST /api/ws/notify HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).await?;
        if !out.starts_with(b"HTTP/1.1 200") {
            return Err("notify failed".into());
        }
    }
    let notes = f64::from(n) / started.elapsed().as_secs_f64();
    server.shutdown().await;
    Ok((drafts, notes))
}
