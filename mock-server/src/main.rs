//! `pitchey-mock-server`: run the reference server, or mint a dev token.
//!
//! The binary allocates through mimalloc (module `allocator`: why, and its options); the
//! library leaves the allocator to whoever links it.

use std::io::IsTerminal;
use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use pitchey_mock_server::auth::mint_named_token;
use pitchey_mock_server::config::DEMO_JWT_SECRET;
use pitchey_mock_server::{DEMO_MAIN_USER, DEMO_USERS, ServerConfig, start};

// mimalloc, tuned to give memory back: see the module.
mod allocator;

/// The reference server for Pitchey's real-time protocol pitchey-v1.
///
/// Limits and intervals come from the seed's environment variables (WS_RATE_LIMIT_MAX_MESSAGES,
/// WS_RATE_LIMIT_WINDOW_MS, WS_RATE_LIMIT_REFILL_RATE, WS_HEARTBEAT_INTERVAL, WS_SESSION_TIMEOUT,
/// ...); the JWT secret from JWT_SECRET.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// Address or host name to listen on (e.g. 127.0.0.1, 0.0.0.0, localhost).
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on (the seed's frontend guide uses 8001).
    #[arg(long, default_value_t = 8001)]
    port: u16,
    /// Seed demo users and emit realistic traffic; without JWT_SECRET, use the public demo secret.
    #[arg(long)]
    demo: bool,
    /// Behave exactly like the seed backend: no ack, seq, resume, subscribe, draft_conflict.
    #[arg(long)]
    seed_compatible: bool,
    /// Largest accepted frame in bytes (default 64 KiB, or WS_MAX_FRAME_BYTES).
    #[arg(long)]
    max_frame_bytes: Option<usize>,
    /// Run as one of several instances: fan out through Redis Pub/Sub at this URL
    /// (e.g. redis://127.0.0.1:6379; default: REDIS_URL).
    #[arg(long)]
    redis_url: Option<String>,
    /// Keep offline queues, seq counters, replay logs, drafts and de-dup ids in an embedded
    /// store in this directory, across restarts (default: WS_DATA_DIR; none: in memory).
    #[arg(long)]
    data_dir: Option<std::path::PathBuf>,
    /// Serve /metrics without a token (by default it needs an admin token).
    #[arg(long)]
    public_metrics: bool,
    /// An origin allowed credentialed cross-origin requests (repeat for more); any other
    /// origin may call the HTTP endpoints without credentials.
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    cors_origin: Vec<String>,
    #[command(flatten)]
    limits: pitchey_mock_server::limits::Limits,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Print a token signed with JWT_SECRET (or, when unset, the --demo secret).
    Token {
        /// The user id.
        #[arg(long)]
        user: u64,
        /// Give the token the admin role.
        #[arg(long)]
        admin: bool,
        /// Lifetime in seconds (1 or more: a token with 0 would be expired already).
        #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..))]
        ttl_secs: u64,
        /// A username claim.
        #[arg(long)]
        username: Option<String>,
    },
}

fn env_secret() -> Option<String> {
    std::env::var("JWT_SECRET").ok().filter(|s| !s.is_empty())
}

fn main() -> ExitCode {
    // Before the runtime starts its threads.
    allocator::tune();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_park(allocator::on_park)
        .build();
    match runtime {
        Ok(rt) => {
            let _ = allocator::RUNTIME.set(rt.handle().clone());
            rt.block_on(serve_main())
        }
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve_main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal: in a file or a CI log they are noise.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let cli = Cli::parse();
    if let Some(Command::Token {
        user,
        admin,
        ttl_secs,
        username,
    }) = cli.command
    {
        let secret = env_secret().unwrap_or_else(|| {
            eprintln!(
                "note: JWT_SECRET is not set: signing with the --demo secret; this token works \
                 with a server started with --demo and no JWT_SECRET"
            );
            DEMO_JWT_SECRET.to_owned()
        });
        let ttl = Duration::from_secs(ttl_secs);
        return match mint_named_token(&secret, user, username.as_deref(), admin, ttl) {
            Ok(token) => {
                let _ = writeln!(std::io::stdout(), "{token}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }

    let mut config = match ServerConfig::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    config.bind = match resolve(&cli.host, cli.port).await {
        Some(addr) => addr,
        None => {
            eprintln!(
                "error: --host {:?} is not an address or a known host name",
                cli.host
            );
            return ExitCode::FAILURE;
        }
    };
    config.seed_compatible = cli.seed_compatible;
    config.demo = cli.demo;
    // Served only with the public demo secret (see ServerConfig::dev_tokens_enabled).
    config.dev_tokens = cli.demo;
    config.limits = cli.limits;
    config.public_metrics = cli.public_metrics;
    config.cors_origins = cli.cors_origin;
    if let Some(url) = cli.redis_url {
        config.redis_url = Some(url);
    }
    if let Some(dir) = cli.data_dir {
        config.data_dir = Some(dir);
    }
    if let Some(max) = cli.max_frame_bytes {
        config.max_frame_bytes = max;
    }
    let secret = match (env_secret(), cli.demo) {
        (Some(_), _) => Secret::Operator,
        (None, true) => {
            config.jwt_secret = DEMO_JWT_SECRET.to_owned();
            tracing::warn!("JWT_SECRET is not set: using the PUBLIC demo secret (--demo)");
            Secret::Demo
        }
        (None, false) => {
            tracing::warn!(
                "JWT_SECRET is not set: using a generated secret for this run only; \
                 tokens minted elsewhere will be refused (set JWT_SECRET to share one)"
            );
            Secret::Generated
        }
    };
    let signal = shutdown_signal();
    let server = match start(config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    // A closed stdout (the reader went away) must not take the server down with a panic.
    let _ = writeln!(std::io::stdout(), "{}", banner(&server, secret, cli.demo));

    signal.await;
    let grace = server.config().limits.shutdown_grace();
    // The server bounds its own shutdown; this bounds everything else (a stuck store sync).
    if tokio::time::timeout(grace + Duration::from_millis(500), server.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("shutdown grace over: exiting");
        let _ = std::io::stdout().flush();
        std::process::exit(0);
    }
    ExitCode::SUCCESS
}

/// `host:port` as a socket address: an IP literal as is, a name through the resolver (the
/// first address it gives, IPv4 first so that `localhost` is 127.0.0.1 where it has both).
async fn resolve(host: &str, port: u16) -> Option<SocketAddr> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Some(SocketAddr::new(ip, port));
    }
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port)).await.ok()?.collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
}

/// Where the JWT secret came from: it decides which tokens the banner may print.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Secret {
    /// The operator's `JWT_SECRET`: tokens signed with it are real credentials, and a banner
    /// ends up in logs, so none is printed.
    Operator,
    /// The public demo secret (`--demo`): anyone can mint its tokens anyway.
    Demo,
    /// Generated for this run: a user token is printed (the only way to get one); an admin
    /// token is not.
    Generated,
}

/// The startup banner: URLs, where the secret came from, and the tokens `secret` allows.
fn banner(server: &pitchey_mock_server::RunningServer, secret: Secret, demo: bool) -> String {
    let ws = server.ws_url();
    let mode = if server.config().seed_compatible {
        ", seed-compatible"
    } else {
        ""
    };
    let mut out = format!(
        "\npitchey-mock-server (protocol pitchey-v1{mode})\n  WebSocket: {ws}?token=<JWT>\n  \
         HTTP:      {}/api/ws/health\n",
        server.http_url()
    );
    let user = if demo { DEMO_MAIN_USER } else { 7 };
    let name = DEMO_USERS
        .iter()
        .find(|(id, _)| *id == user)
        .map(|(_, n)| *n);
    let key = &server.config().jwt_secret;
    let ttl = Duration::from_secs(24 * 3600);
    let mint = |id, name, admin| mint_named_token(key, id, name, admin, ttl).unwrap_or_default();
    match secret {
        Secret::Operator => out.push_str(
            "  Secret:    from JWT_SECRET (no tokens printed: mint them with\n\
             \x20            `JWT_SECRET=... pitchey-mock-server token --user N`)\n",
        ),
        Secret::Demo | Secret::Generated => {
            out.push_str(if secret == Secret::Demo {
                "  Secret:    the public demo secret: `pitchey-mock-server token --user N` matches it\n"
            } else {
                "  Secret:    generated for this run (set JWT_SECRET and use `token` for more)\n"
            });
            let token = mint(user, name, false);
            out.push_str(&format!("  Token for user {user} (24 h):\n    {token}\n"));
            if secret == Secret::Demo {
                let admin = mint(999, Some("admin"), true);
                out.push_str(&format!("  Admin token (user 999, 24 h):\n    {admin}\n"));
            }
            out.push_str(&format!("  Try: {ws}?token={token}\n"));
        }
    }
    if demo {
        out.push_str(
            "  Demo: users 1 ada, 2 grace, 3 linus, 4 margaret; traffic goes mostly to user 1\n",
        );
        if server.config().dev_tokens_enabled() {
            out.push_str("        POST /api/dev/token {\"userId\":2} mints more tokens.\n");
        }
    }
    out
}

/// Registers the SIGINT (Ctrl-C) and SIGTERM handlers at once (so that a signal arriving
/// right after the banner is not lost to the default action); await it to wait for one.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let int = signal(SignalKind::interrupt());
        let term = signal(SignalKind::terminate());
        async move {
            match (int, term) {
                (Ok(mut int), Ok(mut term)) => {
                    tokio::select! {
                        _ = int.recv() => {}
                        _ = term.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
