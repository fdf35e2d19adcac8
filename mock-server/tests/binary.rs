//! The binary: the `token` subcommand, the banner, and exit 0 after SIGTERM with every session
//! told `disconnected` and closed with 1001.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::*;
use pitchey_mock_server::auth::verify_token;
use pitchey_mock_server::config::DEMO_JWT_SECRET;

const BIN: &str = env!("CARGO_BIN_EXE_pitchey-mock-server");

#[test]
fn token_subcommand_signs_with_jwt_secret_or_the_demo_secret() {
    let out = Command::new(BIN)
        .args(["token", "--user", "7", "--admin"])
        .env("JWT_SECRET", "abc")
        .output()
        .unwrap();
    assert!(out.status.success());
    let token = String::from_utf8(out.stdout).unwrap();
    let user = verify_token("abc", token.trim()).unwrap();
    assert_eq!((user.user_id, user.admin), (7, true));

    let out = Command::new(BIN)
        .args(["token", "--user", "8"])
        .env_remove("JWT_SECRET")
        .output()
        .unwrap();
    let token = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        verify_token(DEMO_JWT_SECRET, token.trim()).unwrap().user_id,
        8
    );
}

#[tokio::test]
async fn sigterm_closes_sessions_with_1001_and_exits_0() {
    let mut child = Command::new(BIN)
        .args(["--port", "0", "--demo"])
        .env_remove("JWT_SECRET")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    // The banner names the URL (with the real port) and a ready-to-use URL with a token.
    let try_url = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find_map(|l| l.trim().strip_prefix("Try: ").map(str::to_owned))
    })
    .await
    .unwrap()
    .expect("banner with a URL");
    let (mut ws, connected) = connect_url(&try_url).await;
    assert_eq!(connected["data"]["userId"], 1);
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let (code, _, frames) = expect_close(&mut ws).await;
    assert_eq!(code, 1001);
    assert_eq!(frames.last().unwrap()["type"], "disconnected");
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "exit status {exit}");
}

#[test]
fn token_ttl_0_is_refused() {
    let out = Command::new(BIN)
        .args(["token", "--user", "7", "--ttl-secs", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[tokio::test]
async fn host_localhost_is_accepted_and_logs_have_no_colours_or_contradictions() {
    let mut child = Command::new(BIN)
        .args(["--host", "localhost", "--port", "0", "--demo"])
        .env_remove("JWT_SECRET")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let ws = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find_map(|l| l.trim().strip_prefix("WebSocket: ").map(str::to_owned))
    })
    .await
    .unwrap()
    .expect("banner");
    assert!(ws.starts_with("ws://127.0.0.1:"), "{ws}");
    let _ = child.kill();
    let _ = child.wait();
    let mut logs = String::new();
    use std::io::Read;
    BufReader::new(stderr).read_to_string(&mut logs).unwrap();
    assert!(logs.contains("listening"), "{logs}");
    assert!(!logs.contains('\u{1b}'), "ANSI codes in a pipe: {logs:?}");
    assert!(logs.contains("PUBLIC demo secret"), "{logs}");
    assert!(
        !logs.contains("generated secret"),
        "contradicts --demo: {logs}"
    );
}
