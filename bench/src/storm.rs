//! Reconnect storm: N SDK clients (`pitchey_realtime::client::Client`, feature `native`)
//! connected to a server; the server is stopped with SIGTERM (a graceful shutdown: every
//! session gets 1001 "going away") and started again on the same port. Every client notes
//! when it is `Connected` again; the figures are the time until all are back and the peak
//! connects per second (100 ms buckets, client side).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use pitchey_realtime::client::Client;
use pitchey_realtime::core::State;

use crate::Common;
use crate::fanout::ADMIN_USER;
use crate::report::{machine, ratio, write_json};
use crate::servers::{Kind, ServerProc, free_port, token};

/// Flags of `storm`.
#[derive(clap::Args, Debug)]
pub struct StormArgs {
    #[command(flatten)]
    common: Common,
    /// SDK clients connected when the server restarts.
    #[arg(long, default_value_t = 5000)]
    conns: usize,
    /// Give up waiting for the clients after this long.
    #[arg(long, default_value_t = 180)]
    timeout_secs: u64,
}

/// One server's storm figures.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct StormRun {
    server: &'static str,
    conns: usize,
    /// SIGTERM to exit of the old process.
    stop_secs: f64,
    /// SIGTERM to the new process answering /api/ws/health.
    down_secs: f64,
    /// SIGTERM to the last client `Connected` again.
    all_back_secs: f64,
    /// New process ready to the last client back.
    ready_to_all_back_secs: f64,
    /// Clients back within the timeout.
    back: usize,
    /// The busiest 100 ms bucket of reconnects, per second.
    peak_connects_per_sec: f64,
    /// The server's own count once all were back (`/api/ws/stats`).
    server_connections: u64,
    /// Reconnects per 100 ms bucket from SIGTERM on.
    buckets: Vec<u32>,
}

async fn one_run(args: &StormArgs, kind: Kind) -> anyhow::Result<StormRun> {
    let port = free_port()?;
    let opts = &args.common.server;
    let server = ServerProc::start(kind, port, opts).await?;
    let url = format!("ws://{}/ws", server.addr);
    let admin = token(ADMIN_USER, true)?;

    // Connect the clients, a batch at a time.
    let mut clients = Vec::with_capacity(args.conns);
    let batches: Vec<Vec<u64>> = (1..=args.conns as u64)
        .collect::<Vec<_>>()
        .chunks(args.common.connect_concurrency.max(1))
        .map(<[u64]>::to_vec)
        .collect();
    for batch in batches {
        let opened = futures_util::future::join_all(batch.into_iter().map(|user| {
            let url = url.clone();
            async move {
                let client = Client::builder(url).token(token(user, false)?).build()?;
                client.connect()?;
                client.connected().await?;
                anyhow::Ok(client)
            }
        }))
        .await;
        for c in opened {
            clients.push(c.context("SDK client connect")?);
        }
    }
    println!("{:<8} {} SDK clients connected", kind.name(), clients.len());

    // One watcher per client: the first `Connected` after the restart began.
    let back: Arc<Mutex<Vec<Instant>>> = Arc::new(Mutex::new(Vec::with_capacity(args.conns)));
    let mut watchers = Vec::with_capacity(args.conns);
    for c in &clients {
        let mut states = c.state_changes();
        let back = back.clone();
        watchers.push(tokio::spawn(async move {
            // The current state (Connected) comes first; every later item is a change, and
            // the first later `Connected` is this client back.
            let _ = states.recv().await;
            while let Some(s) = states.recv().await {
                if s == State::Connected {
                    if let Ok(mut b) = back.lock() {
                        b.push(Instant::now());
                    }
                    return;
                }
            }
        }));
    }

    let t_kill = Instant::now();
    server.stop().await?;
    let stop_secs = t_kill.elapsed().as_secs_f64();
    let server = ServerProc::start(kind, port, opts).await?;
    let down_secs = t_kill.elapsed().as_secs_f64();
    let t_ready = Instant::now();

    let deadline = t_ready + Duration::from_secs(args.timeout_secs);
    loop {
        let n = back.lock().map(|b| b.len()).unwrap_or_default();
        if n >= args.conns || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let times = back.lock().map(|b| b.clone()).unwrap_or_default();
    let last = times.iter().max().copied().unwrap_or(t_ready);
    let mut buckets =
        vec![0u32; (last.saturating_duration_since(t_kill).as_millis() / 100) as usize + 1];
    for t in &times {
        let i = (t.saturating_duration_since(t_kill).as_millis() / 100) as usize;
        if let Some(b) = buckets.get_mut(i) {
            *b += 1;
        }
    }
    let server_connections = server.connections(&admin).await.unwrap_or_default();
    for w in watchers {
        w.abort();
    }
    for c in &clients {
        let _ = c.close(Duration::from_millis(100)).await;
    }
    drop(clients);
    server.stop().await?;
    if times.len() < args.conns {
        bail!(
            "{}: only {} of {} clients back within {} s",
            kind.name(),
            times.len(),
            args.conns,
            args.timeout_secs
        );
    }
    Ok(StormRun {
        server: kind.name(),
        conns: args.conns,
        stop_secs,
        down_secs,
        all_back_secs: last.saturating_duration_since(t_kill).as_secs_f64(),
        ready_to_all_back_secs: last.saturating_duration_since(t_ready).as_secs_f64(),
        back: times.len(),
        peak_connects_per_sec: f64::from(buckets.iter().copied().max().unwrap_or(0)) * 10.0,
        server_connections,
        buckets,
    })
}

/// Restart each server under `conns` SDK clients.
pub async fn run(args: StormArgs, fd_limit: u64) -> anyhow::Result<()> {
    println!(
        "reconnect storm: {} SDK clients, servers {:?} (fd limit {fd_limit})",
        args.conns, args.common.servers
    );
    let mut runs = Vec::new();
    for &kind in &args.common.servers {
        let r = one_run(&args, kind).await?;
        println!(
            "{:<8} stop {:.2} s, down {:.2} s, all {} back {:.2} s after SIGTERM ({:.2} s after ready), \
             peak {:.0} connects/s, server counts {}",
            r.server,
            r.stop_secs,
            r.down_secs,
            r.back,
            r.all_back_secs,
            r.ready_to_all_back_secs,
            r.peak_connects_per_sec,
            r.server_connections
        );
        runs.push(r);
    }
    println!(
        "\n| server | stop | down (SIGTERM to ready) | all back after SIGTERM | after ready | peak connects/s |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for r in &runs {
        println!(
            "| {} | {:.2} s | {:.2} s | {:.2} s | {:.2} s | {:.0} |",
            r.server,
            r.stop_secs,
            r.down_secs,
            r.all_back_secs,
            r.ready_to_all_back_secs,
            r.peak_connects_per_sec
        );
    }
    if let [p, q] = &runs[..] {
        println!(
            "{}/{}: all back {:.2}x, peak connects/s {:.2}x",
            p.server,
            q.server,
            ratio(p.all_back_secs, q.all_back_secs),
            ratio(p.peak_connects_per_sec, q.peak_connects_per_sec)
        );
    }
    if let Some(out) = &args.common.out {
        write_json(
            out,
            &serde_json::json!({"scenario": "storm", "machine": machine(), "runs": runs}),
        )?;
        println!("wrote {}", out.display());
    }
    Ok(())
}
