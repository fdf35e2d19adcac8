//! Scenario 1 (`sdk-vs-bare`): throughput, ack latency and memory of the SDK client, measured
//! in the same run against a peer: bare tokio-tungstenite sockets speaking the same frames.
//!
//! ```text
//! cargo run --release -p pitchey-loadgen -- sdk-vs-bare --connections 200 --messages 50
//! ```
//!
//! It starts the reference server in process on a loopback port (rate limit raised so that
//! the server is not the bottleneck), then, for each kind of client:
//! 1. connects `--connections` clients and reads the process's resident memory before and
//!    after (both ends of each socket live in this process: the figure is client + server);
//! 2. has every client send `--messages` durable `pitch_view` frames with ids as fast as it
//!    may and wait for every ack; reports messages per second and ack latency percentiles.
//!
//! The bare client writes frames and counts acks, nothing more: no outbox, no pacing, no
//! retries. The ratio between the two is what the SDK's guarantees cost.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use pitchey_mock_server::{RunningServer, ServerConfig};
use pitchey_realtime::client::Client;
use pitchey_realtime::core::Event;
use pitchey_realtime::protocol::RateLimit;
use tokio_tungstenite::tungstenite::Message;

/// Flags of `sdk-vs-bare`.
#[derive(clap::Args, Clone, Copy, Debug)]
pub struct Args {
    /// Concurrent connections per client kind.
    #[arg(long, default_value_t = 200)]
    connections: usize,
    /// Durable messages each connection sends.
    #[arg(long, default_value_t = 50)]
    messages: usize,
    /// Run one phase only and print its figures as one JSON line (used by the parent run,
    /// which runs each phase in a fresh process so that memory figures are not polluted by
    /// the other phase's freed heap).
    #[arg(long, value_enum)]
    phase: Option<Phase>,
}

/// One kind of client.
#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum Phase {
    /// Bare tokio-tungstenite sockets.
    Bare,
    /// The SDK's `Client`.
    Sdk,
}

/// What one phase measured.
struct Figures {
    connect_time: Duration,
    rss_per_connection: Option<f64>,
    send_time: Duration,
    latencies: Vec<Duration>,
}

impl Figures {
    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "connectMs": self.connect_time.as_secs_f64() * 1e3,
            "rssPerConnection": self.rss_per_connection,
            "sendSecs": self.send_time.as_secs_f64(),
            "latenciesUs": self.latencies.iter().map(|d| d.as_micros() as u64).collect::<Vec<_>>(),
        })
    }

    fn from_json(v: &serde_json::Value) -> Option<Figures> {
        Some(Figures {
            connect_time: Duration::from_secs_f64(v["connectMs"].as_f64()? / 1e3),
            rss_per_connection: v["rssPerConnection"].as_f64(),
            send_time: Duration::from_secs_f64(v["sendSecs"].as_f64()?),
            latencies: v["latenciesUs"]
                .as_array()?
                .iter()
                .filter_map(|x| x.as_u64().map(Duration::from_micros))
                .collect(),
        })
    }

    fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.send_time.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted.get(i).copied().unwrap_or_default()
    }

    fn print(&self, name: &str) {
        let rss = self
            .rss_per_connection
            .map_or("n/a".into(), |b| format!("{:.1} KiB", b / 1024.0));
        println!(
            "{name:<8} connect {:>7.1} ms | memory/conn {rss:>10} | {:>9.0} msg/s | ack p50 {:>7.2} ms  p99 {:>7.2} ms",
            self.connect_time.as_secs_f64() * 1e3,
            self.rate(),
            self.percentile(0.5).as_secs_f64() * 1e3,
            self.percentile(0.99).as_secs_f64() * 1e3,
        );
    }
}

/// Resident memory of this process, from /proc (Linux only).
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn per_connection(before: Option<u64>, after: Option<u64>, n: usize) -> Option<f64> {
    Some(after?.saturating_sub(before?) as f64 / n as f64)
}

async fn bare_clients(server: &RunningServer, args: Args) -> Result<Figures, String> {
    let rss_before = rss_bytes();
    let started = Instant::now();
    let mut sockets = Vec::with_capacity(args.connections);
    for user in 0..args.connections {
        let url = format!(
            "{}?token={}",
            server.ws_url(),
            server.token(user as u64 + 1)
        );
        let (mut ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .map_err(|e| format!("bare connect: {e}"))?;
        // The `connected` frame.
        ws.next()
            .await
            .ok_or("closed before connected")?
            .map_err(|e| e.to_string())?;
        sockets.push(ws);
    }
    let connect_time = started.elapsed();
    let rss_per_connection = per_connection(rss_before, rss_bytes(), args.connections);

    let started = Instant::now();
    let tasks: Vec<_> = sockets
        .into_iter()
        .enumerate()
        .map(|(c, ws)| {
            tokio::spawn(async move {
                let (mut tx, mut rx) = ws.split();
                let mut sent_at = HashMap::with_capacity(args.messages);
                let writer = async {
                    for m in 0..args.messages {
                        let id = format!("b-{c}-{m}");
                        let frame = format!(
                            r#"{{"type":"pitch_view","id":"{id}","data":{{"pitchId":{}}}}}"#,
                            m % 7
                        );
                        sent_at.insert(id, Instant::now());
                        tx.send(Message::text(frame))
                            .await
                            .map_err(|e| e.to_string())?;
                    }
                    Ok::<_, String>(())
                };
                let mut acked_at = Vec::with_capacity(args.messages);
                let reader = async {
                    while acked_at.len() < args.messages {
                        let msg = rx
                            .next()
                            .await
                            .ok_or("closed")?
                            .map_err(|e| e.to_string())?;
                        let Message::Text(text) = msg else { continue };
                        let value: serde_json::Value =
                            serde_json::from_str(text.as_str()).map_err(|e| e.to_string())?;
                        if value["type"] == "ack" {
                            acked_at.push((
                                value["data"]["id"].as_str().unwrap_or_default().to_owned(),
                                Instant::now(),
                            ));
                        } else if value["type"] == "error" {
                            return Err(format!("server error: {value}"));
                        }
                    }
                    Ok::<_, String>(())
                };
                let (w, r) = tokio::join!(writer, reader);
                w?;
                r?;
                Ok::<_, String>(
                    acked_at
                        .into_iter()
                        .filter_map(|(id, at)| sent_at.get(&id).map(|s| at - *s))
                        .collect::<Vec<_>>(),
                )
            })
        })
        .collect();
    Ok(Figures {
        connect_time,
        rss_per_connection,
        latencies: gather(tasks).await?,
        send_time: started.elapsed(),
    })
}

async fn sdk_clients(server: &RunningServer, args: Args) -> Result<Figures, String> {
    let rss_before = rss_bytes();
    let started = Instant::now();
    let mut clients = Vec::with_capacity(args.connections);
    for user in 0..args.connections {
        let client = Client::builder(server.ws_url())
            .token(server.token(user as u64 + 1))
            .configure(|c| c.outbox_capacity = args.messages.max(100))
            .build()
            .map_err(|e| e.to_string())?;
        client.connect().map_err(|e| e.to_string())?;
        client
            .connected()
            .await
            .map_err(|e| format!("sdk connect: {e}"))?;
        clients.push(client);
    }
    let connect_time = started.elapsed();
    let rss_per_connection = per_connection(rss_before, rss_bytes(), args.connections);

    let started = Instant::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|client| {
            tokio::spawn(async move {
                let mut events = client.events();
                let mut sent_at = HashMap::with_capacity(args.messages);
                for m in 0..args.messages {
                    let id = client
                        .report_pitch_view(m as u64 % 7)
                        .map_err(|e| e.to_string())?;
                    sent_at.insert(id, Instant::now());
                }
                let mut latencies = Vec::with_capacity(args.messages);
                while latencies.len() < args.messages {
                    match events.recv().await {
                        Some(Ok(Event::Acked(id))) => {
                            if let Some(at) = sent_at.get(&id) {
                                latencies.push(at.elapsed());
                            }
                        }
                        Some(Ok(Event::SendFailed(id, why))) => {
                            return Err(format!("{id} failed: {why}"));
                        }
                        Some(Ok(_)) => {}
                        Some(Err(lagged)) => return Err(lagged.to_string()),
                        None => return Err("client gone".into()),
                    }
                }
                Ok::<_, String>(latencies)
            })
        })
        .collect();
    Ok(Figures {
        connect_time,
        rss_per_connection,
        latencies: gather(tasks).await?,
        send_time: started.elapsed(),
    })
}

/// Every client task's ack latencies, or the first failure.
async fn gather(
    tasks: Vec<tokio::task::JoinHandle<Result<Vec<Duration>, String>>>,
) -> Result<Vec<Duration>, String> {
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.map_err(|e| e.to_string())??);
    }
    Ok(latencies)
}

/// Run `phase` in a child process of this same binary and read back its figures.
fn run_child(args: Args, phase: Phase) -> Result<Figures, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let name = format!("{phase:?}").to_lowercase();
    let output = std::process::Command::new(exe)
        .arg("sdk-vs-bare")
        .args(["--connections", &args.connections.to_string()])
        .args(["--messages", &args.messages.to_string()])
        .args(["--phase", &name])
        .output()
        .map_err(|e| e.to_string())?;
    if !output.status.success() {
        return Err(format!(
            "{name} phase failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line)
        .ok()
        .as_ref()
        .and_then(Figures::from_json)
        .ok_or_else(|| format!("{name} phase printed no figures: {stdout}"))
}

async fn run_phase(args: Args, phase: Phase) -> Result<Figures, String> {
    let mut config = ServerConfig::for_tests();
    // The server must not be the limit being measured.
    config.rate_limit = RateLimit {
        max_messages: 1_000_000,
        window_ms: 60_000,
        refill_rate: 1_000_000.0,
    };
    let server = pitchey_mock_server::start(config)
        .await
        .map_err(|e| format!("server failed to start: {e}"))?;
    let figures = match phase {
        Phase::Bare => bare_clients(&server, args).await,
        Phase::Sdk => sdk_clients(&server, args).await,
    };
    server.shutdown().await;
    figures
}

/// Run both phases, each in a child process, and print the comparison (or, with `--phase`,
/// run that phase here).
pub async fn main(args: Args) -> anyhow::Result<()> {
    if let Some(phase) = args.phase {
        match run_phase(args, phase).await {
            Ok(figures) => println!("{}", figures.to_json()),
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        }
        return Ok(());
    }
    println!(
        "{} connections x {} pitch_view messages each; reference server in process, one fresh process per client kind",
        args.connections, args.messages,
    );
    let (bare, sdk) = match (run_child(args, Phase::Bare), run_child(args, Phase::Sdk)) {
        (Ok(bare), Ok(sdk)) => (bare, sdk),
        (bare, sdk) => {
            for e in [bare.err(), sdk.err()].into_iter().flatten() {
                eprintln!("{e}");
            }
            std::process::exit(1);
        }
    };
    bare.print("bare");
    sdk.print("sdk");
    println!(
        "sdk/bare: throughput {:.2}x, ack p50 {:.2}x, memory per connection (client + server) {}",
        sdk.rate() / bare.rate(),
        sdk.percentile(0.5).as_secs_f64() / bare.percentile(0.5).as_secs_f64().max(1e-9),
        match (sdk.rss_per_connection, bare.rss_per_connection) {
            (Some(s), Some(b)) if b > 0.0 => format!("{:.2}x", s / b),
            _ => "n/a".into(),
        }
    );
    Ok(())
}
