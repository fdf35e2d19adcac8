//! Tokens and permissions: absurd expiries, who may notify what and how often, who sees
//! `/metrics`, the banner, dev tokens and CORS.

mod common;

use common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn a_token_expiring_after_year_9999_is_401_and_leaves_no_session() {
    let server = server().await;
    let key = EncodingKey::from_secret(server.config().jwt_secret.as_bytes());
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({"userId": 7, "exp": 9.3e18}),
        &key,
    )
    .unwrap();
    let url = format!("{}?token={token}", server.ws_url());
    assert_eq!(refused_status(url.as_str()).await, 401);
    let (status, _) = http(&server, "GET", "/api/ws/dashboard", Some(&token), None).await;
    assert_eq!(status, 401);
    let stats = admin_stats(&server).await;
    assert_eq!(stats["connections"], 0);
    assert_eq!(stats["users"], 0);
}

async fn notify_as(
    server: &pitchey_mock_server::RunningServer,
    token: &str,
    kind: &str,
) -> (u16, String) {
    let body = json!({"userId": 7, "notification": {"type": kind, "title": "t", "message": "m"}})
        .to_string();
    let mut tcp = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    let req = format!(
        "POST /api/ws/notify HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut raw = String::new();
    tcp.read_to_string(&mut raw).await.unwrap();
    let status = raw[9..12].parse().unwrap();
    (status, raw)
}

#[tokio::test]
async fn system_notifications_need_admin_and_user_tokens_get_60_a_minute() {
    let server = server().await;
    let user = server.token(3);
    let (status, raw) = notify_as(&server, &user, "system").await;
    assert_eq!(status, 403, "{raw}");
    let admin = server.admin_token(1);
    assert_eq!(notify_as(&server, &admin, "system").await.0, 200);
    // The 403 above took nothing from the budget: 60 more pass, the 61st is refused.
    for i in 0..60 {
        let (status, raw) = notify_as(&server, &user, "message").await;
        assert_eq!(status, 200, "call {i}: {raw}");
    }
    let (status, raw) = notify_as(&server, &user, "message").await;
    assert_eq!(status, 429, "{raw}");
    let retry = raw
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("retry-after: ")
                .map(str::to_owned)
        })
        .expect("Retry-After header");
    assert!(retry.trim().parse::<u64>().unwrap() >= 1);
    // Other users and admins are not held back.
    assert_eq!(notify_as(&server, &server.token(4), "message").await.0, 200);
    for _ in 0..70 {
        assert_eq!(notify_as(&server, &admin, "message").await.0, 200);
    }
    let stats = admin_stats(&server).await;
    assert_eq!(stats["limits"]["notifyLimited"], 1);
}

/// The raw answer to a request with an `Origin` (and more headers).
async fn with_origin(
    server: &pitchey_mock_server::RunningServer,
    method: &str,
    origin: &str,
    extra: &str,
) -> String {
    let mut tcp = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    let req = format!(
        "{method} /api/ws/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\nOrigin: {origin}\r\n{extra}\r\n"
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut raw = String::new();
    tcp.read_to_string(&mut raw).await.unwrap();
    raw.to_ascii_lowercase()
}

#[tokio::test]
async fn cors_never_gives_credentials_to_a_reflected_origin_unless_listed() {
    let server = server_with(|c| c.cors_origins = vec!["http://app.example".into()]).await;
    let evil = with_origin(&server, "GET", "http://evil.example", "").await;
    assert!(evil.contains("access-control-allow-origin: *"), "{evil}");
    assert!(!evil.contains("access-control-allow-credentials"), "{evil}");
    assert!(!evil.contains("http://evil.example"), "{evil}");
    let app = with_origin(&server, "GET", "http://app.example", "").await;
    assert!(
        app.contains("access-control-allow-origin: http://app.example"),
        "{app}"
    );
    assert!(
        app.contains("access-control-allow-credentials: true"),
        "{app}"
    );
    // A preflight from anywhere may send Authorization (no cookies needed for it).
    let pre = with_origin(
        &server,
        "OPTIONS",
        "http://evil.example",
        "Access-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: authorization, content-type\r\n",
    )
    .await;
    assert!(pre.starts_with("http/1.1 204"), "{pre}");
    assert!(
        pre.contains("access-control-allow-headers: authorization, content-type"),
        "{pre}"
    );
    assert!(!pre.contains("access-control-allow-credentials"), "{pre}");
}

/// Start the binary with `args`/`env` and return its banner (stdout up to the first empty
/// line after the title), then stop it.
async fn banner_of(args: &[&str], env: &[(&str, &str)]) -> String {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pitchey-mock-server"));
    cmd.args(["--port", "0"])
        .args(args)
        .env_remove("JWT_SECRET");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let banner = tokio::task::spawn_blocking(move || {
        let mut out = String::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.is_empty() && out.contains("pitchey-mock-server") {
                break;
            }
            out.push_str(&line);
            out.push('\n');
        }
        out
    })
    .await
    .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    banner
}

#[tokio::test]
async fn the_banner_prints_an_admin_token_only_with_the_demo_secret() {
    let demo = banner_of(&["--demo"], &[]).await;
    assert!(demo.contains("Admin token"), "{demo}");
    let operator = banner_of(&["--demo"], &[("JWT_SECRET", "operator-secret")]).await;
    assert!(!operator.contains("Admin token"), "{operator}");
    assert!(!operator.contains("eyJ"), "no token at all: {operator}");
    assert!(!operator.contains("/api/dev/token"), "{operator}");
    let generated = banner_of(&[], &[]).await;
    assert!(!generated.contains("Admin token"), "{generated}");
}
