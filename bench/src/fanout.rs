//! Fan-out: `POST /api/ws/announce` to N connected clients, on each server in turn.
//!
//! Each broadcast's title is `bench-<k>`; the load generator notes when it starts the POST
//! for broadcast k, and every client notes when broadcast k reaches it: latency is the
//! difference (one clock, one process). Two paces:
//! - `burst`: the next POST as soon as the previous one is answered. A server that answers
//!   before it has delivered builds a backlog, and the latency shows it;
//! - `spaced`: the next POST only once every client has the previous broadcast (and
//!   `--gap-ms` more), so no server ever falls behind: latency is one fan-out's own.
//!
//! Delivered messages per second: burst, all deliveries over the time from the first POST to
//! the last receipt; spaced, all deliveries over the sum of each broadcast's POST-to-last-
//! receipt time.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::Common;
use crate::http;
use crate::report::{Latency, machine, ratio, write_json};
use crate::servers::{Kind, ServerProc, cpu_secs, free_port, token};
use crate::wsclient::{Frame, WsConn, broadcast_number, open_many};

/// The admin caller of `announce` (far from the clients' user ids).
pub const ADMIN_USER: u64 = 1_000_000_000;

/// How broadcasts follow one another.
#[derive(
    clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Back to back: the next POST once the previous one is answered.
    Burst,
    /// The next POST once every client has the previous broadcast.
    Spaced,
}

/// Flags of `fanout`.
#[derive(clap::Args, Debug)]
pub struct FanoutArgs {
    #[command(flatten)]
    common: Common,
    /// Connection counts to run.
    #[arg(long, value_delimiter = ',', default_values_t = [1000usize, 5000, 10000])]
    conns: Vec<usize>,
    /// Broadcasts per run.
    #[arg(long, default_value_t = 50)]
    broadcasts: u32,
    /// Paces to run.
    #[arg(long, value_delimiter = ',', default_values = ["burst", "spaced"])]
    modes: Vec<Mode>,
    /// Spaced: pause after every client has a broadcast, before the next POST.
    #[arg(long, default_value_t = 20)]
    gap_ms: u64,
    /// Give up on a run after this long.
    #[arg(long, default_value_t = 120)]
    timeout_secs: u64,
    /// Record `perf record --call-graph dwarf` of the reference server into this file during
    /// its burst run at `--perf-conns` connections (a profile run: its figures are perturbed).
    #[arg(long)]
    perf_out: Option<PathBuf>,
    /// The connection count of the profiled run.
    #[arg(long, default_value_t = 10000)]
    perf_conns: usize,
}

/// The figures of one run.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FanoutRun {
    /// `pitchey` or `node`.
    pub server: String,
    /// The pace.
    pub mode: Mode,
    /// Connected clients.
    pub conns: usize,
    /// Broadcasts made.
    pub broadcasts: u32,
    /// Messages that reached a client.
    pub delivered: u64,
    /// Clients that failed (closed or errored) during the run.
    pub client_failures: usize,
    /// The first client failure, if any.
    pub first_failure: Option<String>,
    /// Delivered messages per second (see the module docs).
    pub msgs_per_sec: f64,
    /// POST-to-receipt latency over every delivered message.
    pub latency: Latency,
    /// How long the announce POSTs took to be answered.
    pub post_answer: Latency,
    /// Server CPU time from the first POST to the last receipt, seconds.
    pub server_cpu_secs: f64,
    /// Server CPU time per delivered message, microseconds.
    pub server_cpu_us_per_msg: f64,
    /// Load generator CPU time over the same span, over that span's wall time: near 1.0
    /// means the client, not the server, may be the limit.
    pub client_busy: f64,
    /// Server RSS before any client connected, bytes.
    pub rss_before: u64,
    /// Server RSS with every client connected, before the broadcasts, bytes.
    pub rss_connected: u64,
    /// Server RSS after the broadcasts, bytes.
    pub rss_after: u64,
}

type ReaderOutput = (WsConn, Vec<(u32, Instant)>);

/// Read until `expect` broadcasts arrived; note each one's number and arrival time.
async fn reader(
    mut conn: WsConn,
    expect: u32,
    counts: Arc<Vec<AtomicU32>>,
) -> anyhow::Result<ReaderOutput> {
    let mut got = Vec::with_capacity(expect as usize);
    while got.len() < expect as usize {
        let k = match conn.next_text().await? {
            Frame::Text(t) => broadcast_number(t),
            Frame::Closed => bail!("server closed after {} of {expect} broadcasts", got.len()),
        };
        if let Some(k) = k {
            got.push((k, Instant::now()));
            if let Some(c) = counts.get(k as usize) {
                c.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    Ok((conn, got))
}

/// Start `perf record` on `pid`; stopped with SIGINT by [`stop_perf`].
fn start_perf(pid: u32, out: &std::path::Path) -> anyhow::Result<Child> {
    Command::new("perf")
        .args(["record", "--call-graph", "dwarf", "-F", "499", "-p"])
        .arg(pid.to_string())
        .arg("-o")
        .arg(out)
        .stdout(std::process::Stdio::null())
        .spawn()
        .context("starting perf")
}

fn stop_perf(mut perf: Child) -> anyhow::Result<()> {
    let pid = libc::pid_t::try_from(perf.id())?;
    // SAFETY: a signal to our own child; SIGINT makes perf write its file and exit.
    unsafe {
        libc::kill(pid, libc::SIGINT);
    }
    perf.wait()?;
    Ok(())
}

async fn one_run(args: &FanoutArgs, kind: Kind, n: usize, mode: Mode) -> anyhow::Result<FanoutRun> {
    let server = ServerProc::start(kind, free_port()?, &args.common.server).await?;
    let admin = token(ADMIN_USER, true)?;
    let rss_before = server.rss()?;
    let conns = open_many(server.addr, 1, n, args.common.connect_concurrency)
        .await
        .with_context(|| format!("{}: connecting {n} clients", kind.name()))?;
    // Let the server finish its per-session work (presence, logging) before measuring.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_connected = server.rss()?;

    let b = args.broadcasts;
    let counts: Arc<Vec<AtomicU32>> = Arc::new((0..b).map(|_| AtomicU32::new(0)).collect());
    let readers: Vec<_> = conns
        .into_iter()
        .map(|c| tokio::spawn(reader(c, b, counts.clone())))
        .collect();
    let perf = match (&args.perf_out, kind, mode) {
        (Some(out), Kind::Pitchey, Mode::Burst) if n == args.perf_conns => {
            let p = start_perf(server.pid(), out)?;
            // perf needs a moment to attach before the work starts.
            tokio::time::sleep(Duration::from_millis(500)).await;
            Some(p)
        }
        _ => None,
    };

    let deadline = Instant::now() + Duration::from_secs(args.timeout_secs);
    let server_cpu0 = server.cpu_secs()?;
    let client_cpu0 = cpu_secs("self")?;
    let wall0 = Instant::now();
    let mut post_at = Vec::with_capacity(b as usize);
    let mut post_answer = Vec::with_capacity(b as usize);
    for k in 0..b {
        if mode == Mode::Spaced && k > 0 {
            let prev = &counts[k as usize - 1];
            while (prev.load(Ordering::Relaxed) as usize) < n && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            tokio::time::sleep(Duration::from_millis(args.gap_ms)).await;
        }
        let body = format!(r#"{{"title":"bench-{k}","message":"fan-out benchmark"}}"#);
        let at = Instant::now();
        post_at.push(at);
        let (status, answer) = http::request(
            server.addr,
            "POST",
            "/api/ws/announce",
            Some(&admin),
            Some(&body),
        )
        .await?;
        post_answer.push(at.elapsed());
        if status != 200 {
            bail!("{}: announce answered {status}: {answer}", kind.name());
        }
    }

    let mut delivered_to = Vec::with_capacity(n);
    let mut samples = Vec::with_capacity(n * b as usize);
    let mut last = vec![post_at[0]; b as usize];
    let mut failures = 0;
    let mut first_failure = None;
    for r in readers {
        let left = deadline.saturating_duration_since(Instant::now());
        let outcome = match tokio::time::timeout(left, r).await {
            Ok(Ok(o)) => o,
            Ok(Err(join)) => Err(anyhow::anyhow!("client task: {join}")),
            Err(_) => Err(anyhow::anyhow!(
                "not all broadcasts within {} s",
                args.timeout_secs
            )),
        };
        match outcome {
            Ok((conn, got)) => {
                for (k, t) in got {
                    let k = k as usize;
                    if let Some(p) = post_at.get(k) {
                        samples.push(t.saturating_duration_since(*p));
                        last[k] = last[k].max(t);
                    }
                }
                delivered_to.push(conn);
            }
            Err(e) => {
                failures += 1;
                first_failure.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
    let server_cpu = server.cpu_secs()? - server_cpu0;
    let client_busy = (cpu_secs("self")? - client_cpu0) / wall0.elapsed().as_secs_f64().max(1e-9);
    if let Some(p) = perf {
        stop_perf(p)?;
    }
    let rss_after = server.rss()?;
    let delivered: u64 = counts
        .iter()
        .map(|c| u64::from(c.load(Ordering::Relaxed)))
        .sum();
    let busy = match mode {
        Mode::Burst => last
            .iter()
            .max()
            .map_or(Duration::ZERO, |l| l.saturating_duration_since(post_at[0])),
        Mode::Spaced => post_at
            .iter()
            .zip(&last)
            .map(|(p, l)| l.saturating_duration_since(*p))
            .sum(),
    };
    for c in delivered_to {
        c.close().await;
    }
    server.stop().await?;
    Ok(FanoutRun {
        server: kind.name().into(),
        mode,
        conns: n,
        broadcasts: b,
        delivered,
        client_failures: failures,
        first_failure,
        msgs_per_sec: delivered as f64 / busy.as_secs_f64().max(1e-9),
        latency: Latency::of(&mut samples),
        post_answer: Latency::of(&mut post_answer),
        server_cpu_secs: server_cpu,
        server_cpu_us_per_msg: server_cpu * 1e6 / (delivered.max(1) as f64),
        client_busy,
        rss_before,
        rss_connected,
        rss_after,
    })
}

/// Run every (connection count, pace, server) and print the table.
pub async fn run(args: FanoutArgs, fd_limit: u64) -> anyhow::Result<()> {
    println!(
        "fan-out: {} broadcasts to {:?} clients, paces {:?}, servers {:?} (fd limit {fd_limit})",
        args.broadcasts, args.conns, args.modes, args.common.servers
    );
    let mut runs = Vec::new();
    for &n in &args.conns {
        for &mode in &args.modes {
            for &kind in &args.common.servers {
                let r = one_run(&args, kind, n, mode)
                    .await
                    .with_context(|| format!("{} {mode:?} at {n}", kind.name()))?;
                println!(
                    "{:<8} {:<7} {:>6} conns: {:>9.0} msg/s  p50 {:>8.2} ms  p99 {:>8.2} ms  max {:>8.2} ms  \
                     announce answered p50 {:>7.2} ms  server CPU {:.1} us/msg  client busy {:.0}%  \
                     delivered {}/{}  failures {}",
                    r.server,
                    format!("{mode:?}").to_lowercase(),
                    n,
                    r.msgs_per_sec,
                    r.latency.p50_ms,
                    r.latency.p99_ms,
                    r.latency.max_ms,
                    r.post_answer.p50_ms,
                    r.server_cpu_us_per_msg,
                    r.client_busy * 100.0,
                    r.delivered,
                    n as u64 * u64::from(r.broadcasts),
                    r.client_failures,
                );
                runs.push(r);
            }
        }
    }
    println!(
        "\n| conns | pace | pitchey msg/s | node msg/s | ratio | pitchey p50 / p99 / max ms | node p50 / p99 / max ms | p99 ratio | server CPU us/msg pitchey / node |"
    );
    println!("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for &n in &args.conns {
        for &mode in &args.modes {
            let find = |s: &str| {
                runs.iter()
                    .find(|r| r.server == s && r.conns == n && r.mode == mode)
            };
            if let (Some(p), Some(q)) = (find("pitchey"), find("node")) {
                println!(
                    "| {n} | {} | {:.0} | {:.0} | {:.2}x | {:.1} / {:.1} / {:.1} | {:.1} / {:.1} / {:.1} | {:.2}x | {:.1} / {:.1} |",
                    format!("{mode:?}").to_lowercase(),
                    p.msgs_per_sec,
                    q.msgs_per_sec,
                    ratio(p.msgs_per_sec, q.msgs_per_sec),
                    p.latency.p50_ms,
                    p.latency.p99_ms,
                    p.latency.max_ms,
                    q.latency.p50_ms,
                    q.latency.p99_ms,
                    q.latency.max_ms,
                    ratio(p.latency.p99_ms, q.latency.p99_ms),
                    p.server_cpu_us_per_msg,
                    q.server_cpu_us_per_msg,
                );
            }
        }
    }
    if let Some(out) = &args.common.out {
        write_json(
            out,
            &serde_json::json!({
                "scenario": "fanout",
                "machine": machine(),
                "broadcasts": args.broadcasts,
                "gapMs": args.gap_ms,
                "runs": runs,
            }),
        )?;
        println!("wrote {}", out.display());
    }
    Ok(())
}
