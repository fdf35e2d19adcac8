//! The servers under test, each a child process pinned to its own core: the reference server
//! (`pitchey-mock-server`) and the Node peer (`bench/node-peer/server.js`).

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use pitchey_mock_server::auth::mint_token;

use crate::http;

/// The JWT secret both servers are started with; the load generator mints with it.
pub const SECRET: &str = "pitchey-bench-secret";

/// A server implementation.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// `pitchey-mock-server`, release build.
    Pitchey,
    /// The Node 20 `ws` peer.
    Node,
    /// The fan-out floor (`floor.rs`): one `write` per client per broadcast and nothing
    /// else. Fan-out only.
    Floor,
}

impl Kind {
    /// The name used in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Pitchey => "pitchey",
            Kind::Node => "node",
            Kind::Floor => "floor",
        }
    }
}

/// How to start the servers.
#[derive(clap::Args, Clone, Debug)]
pub struct ServerOptions {
    /// CPUs the server is pinned to (`taskset -c`); empty: not pinned.
    #[arg(long, default_value = "1")]
    pub server_cpus: String,
    /// The reference server's binary (default: `pitchey-mock-server` beside this binary).
    #[arg(long)]
    pub pitchey_bin: Option<PathBuf>,
    /// The Node peer's script.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/node-peer/server.js"))]
    pub node_script: PathBuf,
    /// The node executable.
    #[arg(long, default_value = "node")]
    pub node_bin: PathBuf,
    /// RUST_LOG for the reference server (`warn`: the per-session `info` lines would measure
    /// the logger; the Node peer logs nothing either).
    #[arg(long, default_value = "warn")]
    pub server_log: String,
}

/// A running server process.
pub struct ServerProc {
    /// Which server.
    pub kind: Kind,
    /// Where it listens.
    pub addr: SocketAddr,
    child: Child,
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> anyhow::Result<u16> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

/// CPU time (user + system) of process `pid` (a number or `self`) from /proc/PID/stat, in
/// seconds (clock-tick resolution, 10 ms).
pub fn cpu_secs(pid: &str) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name may hold spaces: fields are counted after its closing parenthesis.
    let rest = stat.rsplit_once(')').context("malformed /proc/PID/stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> anyhow::Result<f64> {
        Ok(fields
            .get(i)
            .context("short /proc/PID/stat")?
            .parse::<f64>()?)
    };
    // SAFETY: sysconf only reads a constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    // utime and stime are fields 14 and 15, that is 11 and 12 after the state (field 3).
    Ok((ticks(11)? + ticks(12)?) / hz)
}

/// A token for `user`, valid for a day.
pub fn token(user: u64, admin: bool) -> anyhow::Result<String> {
    mint_token(SECRET, user, admin, Duration::from_secs(24 * 3600))
        .map_err(|e| anyhow::anyhow!("minting a token: {e}"))
}

impl ServerProc {
    /// Start `kind` on `port` and wait until its health endpoint answers.
    pub async fn start(kind: Kind, port: u16, opts: &ServerOptions) -> anyhow::Result<Self> {
        let (program, args): (PathBuf, Vec<String>) = match kind {
            Kind::Pitchey => {
                let bin = match &opts.pitchey_bin {
                    Some(b) => b.clone(),
                    None => std::env::current_exe()?.with_file_name(format!(
                        "pitchey-mock-server{}",
                        std::env::consts::EXE_SUFFIX
                    )),
                };
                (bin, vec!["--port".into(), port.to_string()])
            }
            Kind::Floor => (
                std::env::current_exe()?,
                vec!["floor-server".into(), "--port".into(), port.to_string()],
            ),
            Kind::Node => (
                opts.node_bin.clone(),
                vec![
                    opts.node_script.display().to_string(),
                    "--port".into(),
                    port.to_string(),
                ],
            ),
        };
        // `taskset` execs the server: the child's pid is the server's, for /proc.
        let mut cmd = if opts.server_cpus.is_empty() {
            Command::new(&program)
        } else {
            let mut c = Command::new("taskset");
            c.args(["-c", &opts.server_cpus]).arg(&program);
            c
        };
        cmd.args(&args)
            .env("JWT_SECRET", SECRET)
            .env("RUST_LOG", &opts.server_log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        let mut server = ServerProc {
            kind,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            child,
        };
        server.wait_ready().await?;
        Ok(server)
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("{} exited at start: {status}", self.kind.name());
            }
            if let Ok((200, _)) =
                http::request(self.addr, "GET", "/api/ws/health", None, None).await
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{} did not answer /api/ws/health within 20 s",
                    self.kind.name()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's resident memory (VmRSS), in bytes.
    pub fn rss(&self) -> anyhow::Result<u64> {
        self.status_bytes("VmRSS:")
    }

    /// The anonymous part of the resident memory (RssAnon: heap, stacks), in bytes; VmRSS
    /// is RssAnon + RssFile (pages of the binary and libraries, which the kernel can drop
    /// and read back) + RssShmem. `None` where the kernel does not say (before 4.5).
    pub fn rss_anon(&self) -> Option<u64> {
        self.status_bytes("RssAnon:").ok()
    }

    /// A `kB` line of `/proc/PID/status`, in bytes.
    fn status_bytes(&self, key: &str) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("no {key} in /proc/PID/status"))?;
        Ok(kib * 1024)
    }

    /// CPU time (user + system, every thread) the server has used so far, in seconds.
    pub fn cpu_secs(&self) -> anyhow::Result<f64> {
        cpu_secs(&self.pid().to_string())
    }

    /// Connections the server counts now (`/api/ws/stats`).
    pub async fn connections(&self, admin: &str) -> anyhow::Result<u64> {
        let (status, body) =
            http::request(self.addr, "GET", "/api/ws/stats", Some(admin), None).await?;
        if status != 200 {
            bail!("stats answered {status}: {body}");
        }
        let v: serde_json::Value = serde_json::from_str(&body)?;
        v["connections"]
            .as_u64()
            .context("stats without connections")
    }

    /// SIGTERM (a graceful shutdown: sessions are closed with 1001), then wait for the exit;
    /// SIGKILL after 10 s.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let pid = libc::pid_t::try_from(self.pid())?;
        // SAFETY: kill only sends a signal to our own child.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.child.kill()?;
                self.child.wait()?;
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        // A run that failed half-way must not leave a server holding a core.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
