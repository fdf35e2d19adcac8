//! Every close the server starts carries a close frame with a code: 1002 for protocol
//! errors, 1007 for text that is not UTF-8, 1009 for too large; and fault values and store
//! files out of range are refused.

mod common;

use common::raw;
use common::*;
use serde_json::json;

#[tokio::test]
async fn an_unmasked_client_frame_is_closed_with_1002() {
    let server = server().await;
    let mut ws = raw::open(server.local_addr(), &server.token(7)).await;
    assert_eq!(
        raw::read_frame(&mut ws).await.unwrap().0,
        0x1,
        "connected first"
    );
    raw::write_frame(&mut ws, 0x1, br#"{"type":"ping"}"#, false).await;
    assert_eq!(raw::close_code(&mut ws).await, Some(1002));
}

#[tokio::test]
async fn a_text_frame_that_is_not_utf8_is_closed_with_1007() {
    let server = server().await;
    let mut ws = raw::open(server.local_addr(), &server.token(7)).await;
    assert_eq!(raw::read_frame(&mut ws).await.unwrap().0, 0x1);
    raw::write_frame(&mut ws, 0x1, &[0x7b, 0xff, 0xfe, 0x7d], true).await;
    assert_eq!(raw::close_code(&mut ws).await, Some(1007));
}

#[tokio::test]
async fn an_unknown_opcode_is_closed_with_1002() {
    let server = server().await;
    let mut ws = raw::open(server.local_addr(), &server.token(7)).await;
    assert_eq!(raw::read_frame(&mut ws).await.unwrap().0, 0x1);
    raw::write_frame(&mut ws, 0x3, b"x", true).await;
    assert_eq!(raw::close_code(&mut ws).await, Some(1002));
}

#[tokio::test]
async fn fault_values_out_of_range_are_400() {
    let server = server().await;
    let admin = server.admin_token(1);
    for fault in ["delay", "rate-limit", "refuse-connects"] {
        let (status, body) = http(
            &server,
            "POST",
            &format!("/api/ws/faults/{fault}"),
            Some(&admin),
            Some(json!({"ms": 60_001})),
        )
        .await;
        assert_eq!(status, 400, "{fault}: {body}");
    }
    // u64::MAX used to overflow the refuse-connects deadline.
    let (status, _) = http(
        &server,
        "POST",
        "/api/ws/faults/refuse-connects",
        Some(&admin),
        Some(json!({"ms": u64::MAX})),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = http(&server, "GET", "/api/ws/health", None, None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn faults_in_force_can_be_read_and_cleared() {
    let server = server().await;
    let admin = server.admin_token(1);
    let (mut ws, _) = connect(&server, 7).await;
    for (fault, body) in [
        ("delay", json!({"userId": 7, "ms": 500})),
        ("refuse-connects", json!({"ms": 30_000})),
        ("expire-token", json!({"userId": 9})),
    ] {
        let (status, _) = http(
            &server,
            "POST",
            &format!("/api/ws/faults/{fault}"),
            Some(&admin),
            Some(body),
        )
        .await;
        assert_eq!(status, 200);
    }
    let (status, faults) = http(&server, "GET", "/api/ws/faults", Some(&admin), None).await;
    assert_eq!(status, 200);
    assert_eq!(faults["delayMs"]["7"], 500, "{faults}");
    assert!(
        faults["refuseConnectsMs"].as_u64().unwrap() > 20_000,
        "{faults}"
    );
    assert!(faults["expireTokenIssuedBefore"]["9"].is_u64(), "{faults}");
    let (status, _) = http(
        &server,
        "GET",
        "/api/ws/faults",
        Some(&server.token(1)),
        None,
    )
    .await;
    assert_eq!(status, 403);
    let (status, cleared) = http(&server, "DELETE", "/api/ws/faults", Some(&admin), None).await;
    assert_eq!(status, 200, "{cleared}");
    let (_, faults) = http(&server, "GET", "/api/ws/faults", Some(&admin), None).await;
    assert_eq!(faults["refuseConnectsMs"], 0, "{faults}");
    assert_eq!(faults["delayMs"], json!({}), "{faults}");
    // Connections are accepted again and frames come without delay.
    let (_other, _) = connect(&server, 8).await;
    let started = std::time::Instant::now();
    assert!(frames_before_pong(&mut ws).await.is_empty());
    assert!(started.elapsed() < std::time::Duration::from_millis(400));
}

#[tokio::test]
async fn expire_token_refuses_only_tokens_issued_before_the_fault() {
    let server = server().await;
    let old = server.token(7);
    // Just past a second boundary, so that the fault and the fresh token share a second.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(
        1050 - u64::from(now.subsec_millis()),
    ))
    .await;
    let (status, _) = http(
        &server,
        "POST",
        "/api/ws/faults/expire-token",
        Some(&server.admin_token(1)),
        Some(json!({"userId": 7})),
    )
    .await;
    assert_eq!(status, 200);
    let fresh = server.token(7);
    let (_ws, connected) = connect_token(&server, &fresh).await;
    assert_eq!(connected["data"]["userId"], 7);
    let url = format!("{}?token={old}", server.ws_url());
    assert_eq!(refused_status(url.as_str()).await, 401);
}

#[tokio::test]
async fn an_empty_store_file_stops_the_binary_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(pitchey_mock_server::persist::STORE_FILE);
    std::fs::write(&file, b"").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pitchey-mock-server"))
        .args(["--port", "0", "--data-dir"])
        .arg(dir.path())
        .env("JWT_SECRET", "x")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("pitchey.redb"), "{stderr}");
    assert_eq!(std::fs::metadata(&file).unwrap().len(), 0);
}
