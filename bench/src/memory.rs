//! Server memory: per idle connection (`idle`), and after connect/disconnect cycles (`churn`).

use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::Common;
use crate::fanout::ADMIN_USER;
use crate::report::{machine, ratio, write_json};
use crate::servers::{ServerProc, free_port, token};
use crate::wsclient::open_many;

/// Flags of `idle`.
#[derive(clap::Args, Debug)]
pub struct IdleArgs {
    #[command(flatten)]
    common: Common,
    /// Connection counts to run.
    #[arg(long, value_delimiter = ',', default_values_t = [10000usize])]
    conns: Vec<usize>,
    /// Wait this long with every client connected before reading the RSS.
    #[arg(long, default_value_t = 2000)]
    settle_ms: u64,
}

/// Flags of `churn`.
#[derive(clap::Args, Debug)]
pub struct ChurnArgs {
    #[command(flatten)]
    common: Common,
    /// Clients connected, then disconnected, per cycle.
    #[arg(long, default_value_t = 10000)]
    conns: usize,
    /// Connect/disconnect cycles.
    #[arg(long, default_value_t = 3)]
    cycles: usize,
    /// Wait this long after the server counts no connection before reading the RSS.
    #[arg(long, default_value_t = 2000)]
    settle_ms: u64,
}

/// One server's idle figures.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct IdleRun {
    server: &'static str,
    conns: usize,
    rss_before: u64,
    rss_connected: u64,
    bytes_per_conn: f64,
    connect_secs: f64,
}

/// Server RSS per authenticated idle connection, each server in turn.
pub async fn idle(args: IdleArgs, fd_limit: u64) -> anyhow::Result<()> {
    println!(
        "idle memory: {:?} clients, servers {:?} (fd limit {fd_limit})",
        args.conns, args.common.servers
    );
    let mut runs = Vec::new();
    for &n in &args.conns {
        for &kind in &args.common.servers {
            let server = ServerProc::start(kind, free_port()?, &args.common.server).await?;
            // Let the runtime settle (JIT, lazy statics) before the baseline.
            tokio::time::sleep(Duration::from_millis(500)).await;
            let rss_before = server.rss()?;
            let started = Instant::now();
            let conns = open_many(server.addr, 1, n, args.common.connect_concurrency)
                .await
                .with_context(|| format!("{}: connecting {n} clients", kind.name()))?;
            let connect_secs = started.elapsed().as_secs_f64();
            tokio::time::sleep(Duration::from_millis(args.settle_ms)).await;
            let rss_connected = server.rss()?;
            let r = IdleRun {
                server: kind.name(),
                conns: n,
                rss_before,
                rss_connected,
                bytes_per_conn: rss_connected.saturating_sub(rss_before) as f64 / n as f64,
                connect_secs,
            };
            println!(
                "{:<8} {:>6} conns: RSS {:.1} MiB -> {:.1} MiB = {:.2} KiB per connection (connected in {:.2} s)",
                r.server,
                n,
                rss_before as f64 / 1048576.0,
                rss_connected as f64 / 1048576.0,
                r.bytes_per_conn / 1024.0,
                connect_secs,
            );
            runs.push(r);
            for c in conns {
                c.close().await;
            }
            server.stop().await?;
        }
    }
    println!("\n| conns | pitchey KiB/conn | node KiB/conn | ratio |");
    println!("| ---: | ---: | ---: | ---: |");
    for &n in &args.conns {
        let find = |s: &str| runs.iter().find(|r| r.server == s && r.conns == n);
        if let (Some(p), Some(q)) = (find("pitchey"), find("node")) {
            println!(
                "| {n} | {:.2} | {:.2} | {:.2}x |",
                p.bytes_per_conn / 1024.0,
                q.bytes_per_conn / 1024.0,
                ratio(p.bytes_per_conn, q.bytes_per_conn)
            );
        }
    }
    if let Some(out) = &args.common.out {
        write_json(
            out,
            &serde_json::json!({"scenario": "idle", "machine": machine(), "settleMs": args.settle_ms, "runs": runs}),
        )?;
        println!("wrote {}", out.display());
    }
    Ok(())
}

/// One server's churn figures.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct ChurnRun {
    server: &'static str,
    conns: usize,
    /// RSS of the server with no client, before the first cycle.
    rss_idle_before: u64,
    /// Per cycle: RSS with every client connected.
    rss_connected: Vec<u64>,
    /// Per cycle: RSS once every client is gone (and `settle_ms` more).
    rss_after: Vec<u64>,
    /// The last `rss_after` over `rss_idle_before`.
    after_over_before: f64,
    /// The anonymous part of `rss_idle_before` (RssAnon: heap and stacks, not code pages),
    /// where the kernel reports it.
    anon_idle_before: Option<u64>,
    /// Per cycle: the anonymous part of `rss_after`.
    anon_after: Vec<Option<u64>>,
}

/// Wait until the server counts `want` connections (its own view of the disconnects).
async fn wait_connections(server: &ServerProc, admin: &str, want: u64) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let have = server.connections(admin).await?;
        if have == want {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "{} still counts {have} connections, not {want}",
                server.kind.name()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An optional RssAnon figure in MiB, `?` where the kernel gave none.
fn anon_mib(bytes: Option<u64>) -> String {
    bytes.map_or_else(
        || "?".to_owned(),
        |b| format!("{:.2}", b as f64 / 1048576.0),
    )
}

/// Connect and disconnect `conns` clients `cycles` times; the server's RSS after each.
pub async fn churn(args: ChurnArgs, fd_limit: u64) -> anyhow::Result<()> {
    println!(
        "memory after a storm: {} clients connected then disconnected, {} cycles, servers {:?} (fd limit {fd_limit})",
        args.conns, args.cycles, args.common.servers
    );
    let admin = token(ADMIN_USER, true)?;
    let mut runs = Vec::new();
    for &kind in &args.common.servers {
        let server = ServerProc::start(kind, free_port()?, &args.common.server).await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let rss_idle_before = server.rss()?;
        let anon_idle_before = server.rss_anon();
        let mut rss_connected = Vec::new();
        let mut rss_after = Vec::new();
        let mut anon_after = Vec::new();
        for cycle in 0..args.cycles {
            let conns = open_many(server.addr, 1, args.conns, args.common.connect_concurrency)
                .await
                .with_context(|| format!("{}: cycle {cycle}", kind.name()))?;
            tokio::time::sleep(Duration::from_millis(500)).await;
            rss_connected.push(server.rss()?);
            for c in conns {
                c.close().await;
            }
            wait_connections(&server, &admin, 0).await?;
            tokio::time::sleep(Duration::from_millis(args.settle_ms)).await;
            rss_after.push(server.rss()?);
            anon_after.push(server.rss_anon());
            println!(
                "{:<8} cycle {cycle}: RSS idle {:.1} MiB, {} connected {:.1} MiB, after {:.1} MiB (anonymous {} -> {} MiB)",
                kind.name(),
                rss_idle_before as f64 / 1048576.0,
                args.conns,
                rss_connected[cycle] as f64 / 1048576.0,
                rss_after[cycle] as f64 / 1048576.0,
                anon_mib(anon_idle_before),
                anon_mib(anon_after[cycle]),
            );
        }
        server.stop().await?;
        let last = rss_after.last().copied().unwrap_or_default();
        runs.push(ChurnRun {
            server: kind.name(),
            conns: args.conns,
            rss_idle_before,
            rss_connected,
            rss_after,
            after_over_before: ratio(last as f64, rss_idle_before as f64),
            anon_idle_before,
            anon_after,
        });
    }
    println!(
        "\n| server | RSS idle before | RSS with {} | RSS after (per cycle) | after / before |",
        args.conns
    );
    println!("| --- | ---: | ---: | ---: | ---: |");
    for r in &runs {
        let mib = |b: &u64| format!("{:.1}", *b as f64 / 1048576.0);
        println!(
            "| {} | {} MiB | {} MiB | {} MiB | {:.2}x |",
            r.server,
            mib(&r.rss_idle_before),
            r.rss_connected
                .iter()
                .map(mib)
                .collect::<Vec<_>>()
                .join(" / "),
            r.rss_after.iter().map(mib).collect::<Vec<_>>().join(" / "),
            r.after_over_before,
        );
    }
    if let Some(out) = &args.common.out {
        write_json(
            out,
            &serde_json::json!({"scenario": "churn", "machine": machine(), "settleMs": args.settle_ms, "runs": runs}),
        )?;
        println!("wrote {}", out.display());
    }
    Ok(())
}
