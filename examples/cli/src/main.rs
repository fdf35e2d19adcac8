//! `pitchey-cli`: connect to a Pitchey real-time server, print live events, and send
//! messages typed on standard input.
//!
//! ```text
//! cargo run -p pitchey-mock-server -- --demo          # in one terminal
//! cargo run -p pitchey-example-cli -- --url ws://127.0.0.1:8001/ws --token <jwt>
//! > view 42            report a pitch view (durable, acked)
//! > presence away      set your presence (online | away | offline)
//! > typing 12 on       typing indicator in conversation 12 (on | off)
//! > sub pitch:42       subscribe to a channel (pitch:N, presence:N, conversation:N, ...)
//! > unsub pitch:42     drop that subscription
//! > draft d1 {"title":"Night Train"}   save a draft
//! > send {"type":"chat_message","data":{"text":"hi"}}   any frame
//! > metrics            queue depth, rate-limit tokens, RTT, reconnects
//! > quit
//! ```

use std::collections::HashMap;

use clap::Parser;
use pitchey_realtime::client::{Client, ClientError, Draft, DraftConfig, Subscription};
use pitchey_realtime::core::{Event, State};
use pitchey_realtime::protocol::{Channel, ClientFrame, PresenceStatus, ServerMessage};
use tokio::io::{AsyncBufReadExt, BufReader};

#[derive(Parser)]
#[command(about = "Connect to a Pitchey real-time server, print live events, send what you type")]
struct Args {
    /// WebSocket endpoint.
    #[arg(long, default_value = "ws://127.0.0.1:8001/ws")]
    url: String,
    /// JWT (from `pitchey-mock-server token --user 7`, or the server's banner).
    #[arg(long, env = "PITCHEY_TOKEN")]
    token: String,
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let client = match Client::builder(&args.url).token(args.token).build() {
        Ok(client) => client,
        Err(e) => {
            eprintln!("cannot start: {e}");
            return;
        }
    };
    let printer = tokio::spawn(print_events(client.clone()));
    if let Err(e) = client.connect() {
        eprintln!("cannot start: {e}");
        return;
    }
    println!("connecting to {} (type `help`)", args.url);

    let mut subscriptions: HashMap<Channel, Subscription<ServerMessage>> = HashMap::new();
    let mut drafts: HashMap<String, Draft> = HashMap::new();
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if line == "quit" || line == "exit" {
            break;
        }
        match run_command(&client, line, &mut subscriptions, &mut drafts).await {
            Ok(Some(done)) => println!("  {done}"),
            Ok(None) => {}
            Err(e) => println!("  error: {e}"),
        }
    }
    let _ = client.disconnect();
    printer.abort();
}

/// Errors of one typed command.
#[derive(Debug)]
enum CommandError {
    Usage(&'static str),
    Client(ClientError),
}

impl std::fmt::Display for CommandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CommandError::Usage(u) => write!(f, "usage: {u}"),
            CommandError::Client(e) => write!(f, "{e}"),
        }
    }
}

impl From<ClientError> for CommandError {
    fn from(e: ClientError) -> Self {
        CommandError::Client(e)
    }
}

const HELP: &str = "view N | presence online|away|offline | typing N on|off | sub CHANNEL | unsub CHANNEL | draft ID JSON | send FRAME | metrics | quit";

async fn run_command(
    client: &Client,
    line: &str,
    subscriptions: &mut HashMap<Channel, Subscription<ServerMessage>>,
    drafts: &mut HashMap<String, Draft>,
) -> Result<Option<String>, CommandError> {
    let (cmd, rest) = line.split_once(' ').unwrap_or((line, ""));
    let rest = rest.trim();
    match cmd {
        "help" => Ok(Some(HELP.into())),
        "view" => {
            let pitch = rest
                .parse()
                .map_err(|_| CommandError::Usage("view PITCH_ID"))?;
            let id = client.report_pitch_view(pitch)?;
            Ok(Some(format!("queued {id}")))
        }
        "presence" => {
            let status = match rest {
                "online" => PresenceStatus::Online,
                "away" => PresenceStatus::Away,
                "offline" => PresenceStatus::Offline,
                _ => return Err(CommandError::Usage("presence online|away|offline")),
            };
            client.set_presence(status)?;
            Ok(None)
        }
        "typing" => {
            let usage = CommandError::Usage("typing CONVERSATION_ID on|off");
            let (conv, on) = rest
                .split_once(' ')
                .ok_or(CommandError::Usage("typing CONVERSATION_ID on|off"))?;
            let conv = conv.parse().map_err(|_| usage)?;
            client.set_typing(conv, on.trim() == "on")?;
            Ok(None)
        }
        "sub" => {
            let channel: Channel = rest
                .parse()
                .map_err(|_| CommandError::Usage("sub notifications|dashboard|uploads|pitch:N|presence:N|conversation:N|draft:ID"))?;
            let sub = client.subscribe(channel.clone())?;
            subscriptions.insert(channel.clone(), sub);
            Ok(Some(format!("subscribed to {channel}")))
        }
        "unsub" => {
            let channel: Channel = rest
                .parse()
                .map_err(|_| CommandError::Usage("unsub CHANNEL"))?;
            Ok(subscriptions
                .remove(&channel)
                .map(|_| format!("unsubscribed from {channel}")))
        }
        "draft" => {
            let usage = "draft ID {\"json\":\"content\"}";
            let (id, json) = rest.split_once(' ').ok_or(CommandError::Usage(usage))?;
            let content = serde_json::from_str(json).map_err(|_| CommandError::Usage(usage))?;
            if !drafts.contains_key(id) {
                let draft = client.draft(id, DraftConfig::default())?;
                drafts.insert(id.to_owned(), draft);
            }
            if let Some(draft) = drafts.get(id) {
                draft.update(content)?;
                draft.save()?;
            }
            Ok(Some(format!("saving draft {id}")))
        }
        "send" => {
            let frame = ClientFrame::decode(rest)
                .map_err(|_| CommandError::Usage("send {\"type\":...,\"data\":...}"))?;
            let id = client.send(frame.message)?;
            Ok(Some(format!("queued {id}")))
        }
        "metrics" => Ok(Some(format!("{:?}", client.metrics()?))),
        _ => Err(CommandError::Usage(HELP)),
    }
}

/// Print every event the client reports.
async fn print_events(client: Client) {
    let mut events = client.events();
    while let Some(event) = events.recv().await {
        match event {
            Ok(Event::StateChanged(state)) => match state {
                State::Connected => println!("[state] connected"),
                other => println!("[state] {other:?}"),
            },
            Ok(Event::Message(frame)) => println!("[recv] {}", frame.encode()),
            Ok(other) => println!("[event] {other:?}"),
            Err(lagged) => println!("[lagged] {lagged}"),
        }
    }
}
