//! `pitchey-loadgen`: the project's load generator and benchmarks. Every scenario measures
//! against a peer in the same invocation, so that each figure comes with a ratio.
//!
//! ```text
//! pitchey-loadgen sdk-vs-bare --connections 200 --messages 50   # the SDK client vs bare sockets
//! pitchey-loadgen fanout --conns 1000,5000,10000                # broadcast: reference server vs Node ws
//! pitchey-loadgen idle --conns 10000                            # server RSS per idle connection
//! pitchey-loadgen storm --conns 5000                            # restart under 5k SDK clients
//! pitchey-loadgen churn --conns 10000                           # server RSS after connect + disconnect
//! pitchey-loadgen plot --results bench/results                  # SVGs from fanout.json
//! ```
//!
//! `scripts/bench.sh` runs them all the way BENCHMARKS.md describes: the load generator on
//! core 0, each server on core 1 (`taskset`), everything under `chrt -r 10`.
//!
//! Server scenarios start the servers as separate processes (`pitchey-mock-server` from the
//! same target directory, `node bench/node-peer/server.js`) one at a time, on a free loopback
//! port, and read their resident memory from `/proc/PID/status`. Clients are spread over
//! source addresses 127.0.0.2 and up ([`wsclient`]) so that 10k connections, and the sockets
//! of earlier runs still in TIME_WAIT, never run out of ephemeral ports.
//!
//! Dependencies beyond the workspace's: `libc` for `setrlimit` (10k sockets need 10k file
//! descriptors; the soft limit is raised to the hard one) and `kill` (the server is stopped
//! with SIGTERM, as in production); `plotters` (SVG backend only) for the plots; `anyhow`,
//! since a load generator's errors end the run with a message and nothing else.

mod fanout;
mod floor;
mod http;
mod memory;
mod plot;
mod report;
mod sdk_vs_bare;
mod servers;
mod storm;
mod wsclient;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::servers::{Kind, ServerOptions};

#[derive(Parser)]
#[command(about = "Benchmarks of the Pitchey SDK and reference server, each against a peer")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Scenario 1: the SDK client against bare tokio-tungstenite sockets, both on the
    /// in-process reference server (acked pitch_view throughput, latency, memory).
    SdkVsBare(sdk_vs_bare::Args),
    /// A `system` announcement broadcast to N connected clients: delivered messages/s and
    /// latency from the POST to each receipt.
    Fanout(fanout::FanoutArgs),
    /// Server RSS per authenticated idle connection.
    Idle(memory::IdleArgs),
    /// The fan-out floor server (`fanout --servers floor` starts it; see `floor.rs`).
    #[command(hide = true)]
    FloorServer {
        /// The loopback port to listen on.
        #[arg(long)]
        port: u16,
    },
    /// Restart the server under N connected SDK clients: time until all are back, peak
    /// connects per second.
    Storm(storm::StormArgs),
    /// Connect and disconnect N clients, several times: the server's RSS after each cycle
    /// against its RSS before the first.
    Churn(memory::ChurnArgs),
    /// Draw the SVG plots from the results directory's fanout.json.
    Plot {
        /// Where fanout.json is and the SVGs go.
        #[arg(long, default_value = "bench/results")]
        results: PathBuf,
    },
}

/// Options every server scenario shares.
#[derive(Args, Clone, Debug)]
pub struct Common {
    /// Which servers to run, in order.
    #[arg(long, value_delimiter = ',', default_values = ["pitchey", "node"])]
    pub servers: Vec<Kind>,
    #[command(flatten)]
    pub server: ServerOptions,
    /// Write the figures as JSON here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Connections opened at once while connecting.
    #[arg(long, default_value_t = 64)]
    pub connect_concurrency: usize,
}

/// Raise the soft open-file limit to the hard limit (10k sockets need 10k descriptors, and
/// the usual soft default is 1024); returns the limit now in force.
fn raise_fd_limit() -> anyhow::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            anyhow::bail!("getrlimit: {}", std::io::Error::last_os_error());
        }
        if lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                anyhow::bail!("setrlimit: {}", std::io::Error::last_os_error());
            }
        }
    }
    Ok(lim.rlim_cur)
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        // As before it moved here: the server in process, a two-thread runtime.
        Command::SdkVsBare(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(sdk_vs_bare::main(args)),
        Command::Plot { results } => plot::draw(&results),
        Command::FloorServer { port } => floor::serve(port),
        command => {
            let limit = raise_fd_limit()?;
            // One thread: the load generator gets one core (core 0 in scripts/bench.sh), the
            // server under test the other.
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("tokio runtime")?;
            rt.block_on(async move {
                match command {
                    Command::Fanout(a) => fanout::run(a, limit).await,
                    Command::Idle(a) => memory::idle(a, limit).await,
                    Command::Storm(a) => storm::run(a, limit).await,
                    Command::Churn(a) => memory::churn(a, limit).await,
                    Command::SdkVsBare(_) | Command::Plot { .. } | Command::FloorServer { .. } => {
                        Ok(())
                    }
                }
            })
        }
    }
}
