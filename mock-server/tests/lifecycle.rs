//! Graceful shutdown, restart on the same port, health and stats, dev tokens.

mod common;

use common::*;
use pitchey_mock_server::{ServerConfig, start};
use serde_json::json;

#[tokio::test]
async fn shutdown_sends_disconnected_then_1001_to_every_session() {
    let server = server().await;
    let (mut a, _) = connect(&server, 1).await;
    let (mut b, _) = connect(&server, 2).await;
    let (mut c, _) = connect(&server, 2).await;
    let readers = tokio::spawn(async move {
        let mut out = Vec::new();
        for ws in [&mut a, &mut b, &mut c] {
            out.push(expect_close(ws).await);
        }
        out
    });
    server.shutdown().await;
    for (code, _, frames) in readers.await.unwrap() {
        assert_eq!(code, 1001);
        assert_eq!(frames.len(), 1);
        assert_eq!(
            frames[0],
            json!({"type": "disconnected", "data": {"reason": "server shutting down"}})
        );
    }
}

#[tokio::test]
async fn restart_on_the_same_port_and_reconnect() {
    let mut config = ServerConfig::for_tests();
    config.jwt_secret = "fixed-for-restart".into();
    let server = start(config.clone()).await.unwrap();
    let addr = server.local_addr();
    let token = server.token(7);
    let (mut ws, _) = connect(&server, 7).await;
    // Keep an HTTP keep-alive style client busy too: a health check right before shutdown.
    let (status, _) = http(&server, "GET", "/api/ws/health", None, None).await;
    assert_eq!(status, 200);
    server.shutdown().await;
    let (code, _, _) = expect_close(&mut ws).await;
    assert_eq!(code, 1001);

    config.bind = addr;
    let again = start(config).await.expect("rebinds the same port at once");
    assert_eq!(again.local_addr(), addr);
    // The old token works (same secret); state is fresh.
    let (mut ws, connected) = connect_token(&again, &token).await;
    assert_eq!(connected["data"]["userId"], 7);
    assert!(frames_before_pong(&mut ws).await.is_empty());
    again.shutdown().await;
}

#[tokio::test]
async fn health_needs_no_auth_and_stats_needs_admin() {
    let server = server().await;
    let (_ws, _) = connect(&server, 1).await;
    let (status, health) = http(&server, "GET", "/api/ws/health", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(health["status"], "ok");
    assert_eq!(health["protocol"], "pitchey-v1");
    assert_eq!(health["connections"], 1);
    let (status, _) = http(&server, "GET", "/api/ws/stats", None, None).await;
    assert_eq!(status, 401);
    let (status, body) = http(
        &server,
        "GET",
        "/api/ws/stats",
        Some(&server.token(1)),
        None,
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(body["error"], "forbidden");
    let (status, stats) = http(
        &server,
        "GET",
        "/api/ws/stats",
        Some(&server.admin_token(1)),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(stats["connections"], 1);
    assert_eq!(stats["users"], 1);
    assert_eq!(stats["sessionsPerUser"]["1"], 1);
    assert!(stats["messagesOut"].is_u64());
}

#[tokio::test]
async fn dev_token_endpoint_only_when_enabled() {
    let server = server().await;
    let (status, _) = http(
        &server,
        "POST",
        "/api/dev/token",
        None,
        Some(json!({"userId": 3})),
    )
    .await;
    assert_eq!(status, 404);
    // dev_tokens with an operator's secret: still 404 (anyone could mint real tokens).
    let server = server_with(|c| c.dev_tokens = true).await;
    let (status, _) = http(
        &server,
        "POST",
        "/api/dev/token",
        None,
        Some(json!({"userId": 3})),
    )
    .await;
    assert_eq!(status, 404);
    let server = server_with(|c| {
        c.dev_tokens = true;
        c.jwt_secret = pitchey_mock_server::config::DEMO_JWT_SECRET.into();
    })
    .await;
    for ttl in [0, 604_801] {
        let (status, body) = http(
            &server,
            "POST",
            "/api/dev/token",
            None,
            Some(json!({"userId": 3, "ttlSecs": ttl})),
        )
        .await;
        assert_eq!(status, 400, "ttl {ttl}: {body}");
    }
    let (status, body) = http(
        &server,
        "POST",
        "/api/dev/token",
        None,
        Some(json!({"userId": 3, "admin": true})),
    )
    .await;
    assert_eq!(status, 200);
    let token = body["token"].as_str().unwrap();
    let (_ws, connected) = connect_token(&server, token).await;
    assert_eq!(connected["data"]["userId"], 3);
    let (status, _) = http(&server, "GET", "/api/ws/stats", Some(token), None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn demo_mode_produces_traffic_for_user_1() {
    let server = server_with(|c| {
        c.demo = true;
        c.demo_interval = std::time::Duration::from_millis(20);
    })
    .await;
    let (mut ws, _) = connect(&server, pitchey_mock_server::DEMO_MAIN_USER).await;
    // Several kinds of traffic arrive (random, so wait for any three distinct kinds).
    let mut kinds = std::collections::HashSet::new();
    while kinds.len() < 3 {
        let f = next_frame(&mut ws).await;
        kinds.insert(f["type"].as_str().unwrap().to_owned());
    }
    let (_, health) = http(&server, "GET", "/api/ws/health", None, None).await;
    assert_eq!(health["status"], "ok");
    server.shutdown().await;
}

#[tokio::test]
async fn connecting_during_shutdown_is_refused() {
    let server = server().await;
    let url = format!("{}?token={}", server.ws_url(), server.token(1));
    let (mut ws, _) = connect_url(&url).await;
    let shutdown = tokio::spawn(server.shutdown());
    let (code, _, _) = expect_close(&mut ws).await;
    assert_eq!(code, 1001);
    shutdown.await.unwrap();
    assert!(tokio_tungstenite::connect_async(url).await.is_err());
}

/// `GET /metrics` with an optional bearer token: the raw response.
async fn get_metrics(server: &pitchey_mock_server::RunningServer, token: Option<&str>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    let auth = token.map_or_else(String::new, |t| format!("Authorization: Bearer {t}\r\n"));
    stream
        .write_all(
            format!("GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{auth}\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.unwrap();
    raw
}

#[tokio::test]
async fn metrics_need_an_admin_token_unless_public() {
    let server = server().await;
    assert!(get_metrics(&server, None).await.starts_with("HTTP/1.1 401"));
    assert!(
        get_metrics(&server, Some(&server.token(1)))
            .await
            .starts_with("HTTP/1.1 403")
    );
    let public = server_with(|c| c.public_metrics = true).await;
    assert!(get_metrics(&public, None).await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let server = server().await;
    let (_ws, _) = connect(&server, 1).await;
    let raw = get_metrics(&server, Some(&server.admin_token(9))).await;
    assert!(raw.starts_with("HTTP/1.1 200"));
    assert!(raw.contains("# TYPE pitchey_ws_connections gauge"));
    assert!(raw.contains("\npitchey_ws_connections 1\n"));
    assert!(raw.contains("pitchey_ws_messages_in_total"));
}
