//! Every kind of bad token is refused with 401 before the upgrade, by query parameter and by
//! header; a token that expires during a session closes it with 4001.

mod common;

use std::time::Duration;

use common::*;
use pitchey_mock_server::RunningServer;
use pitchey_mock_server::mint_token;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// `{"alg":"none"}` with `{"userId":7,"exp":9999999999}` and an empty signature.
const ALG_NONE: &str =
    "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJ1c2VySWQiOjcsImV4cCI6OTk5OTk5OTk5OX0.";

fn bad_tokens(server: &RunningServer) -> Vec<(&'static str, String)> {
    let hour = Duration::from_secs(3600);
    vec![
        ("malformed", "not-a-jwt".to_owned()),
        ("malformed parts", "a.b.c".to_owned()),
        (
            "bad signature",
            mint_token("some-other-secret", 7, false, hour).unwrap(),
        ),
        ("alg none", ALG_NONE.to_owned()),
        ("expired", server.token_with_ttl(7, Duration::ZERO)),
    ]
}

#[tokio::test]
async fn missing_token_is_401() {
    let server = server().await;
    assert_eq!(refused_status(server.ws_url()).await, 401);
    assert_eq!(
        refused_status(format!("{}?token=", server.ws_url())).await,
        401
    );
}

#[tokio::test]
async fn bad_tokens_in_the_query_are_401() {
    let server = server().await;
    for (kind, token) in bad_tokens(&server) {
        let url = format!("{}?token={}", server.ws_url(), token);
        assert_eq!(refused_status(url).await, 401, "{kind}");
    }
}

#[tokio::test]
async fn bad_tokens_in_the_header_are_401() {
    let server = server().await;
    for (kind, token) in bad_tokens(&server) {
        let mut req = server.ws_url().into_client_request().unwrap();
        req.headers_mut()
            .insert("Authorization", format!("Bearer {token}").parse().unwrap());
        assert_eq!(refused_status(req).await, 401, "{kind}");
    }
    let (status, stats) = http(
        &server,
        "GET",
        "/api/ws/stats",
        Some(&server.admin_token(1)),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(stats["authFailures"], 5);
    assert_eq!(
        stats["connections"], 0,
        "nothing was delivered on a bad token"
    );
}

#[tokio::test]
async fn valid_token_in_the_header_connects() {
    let server = server().await;
    let mut req = server.ws_url().into_client_request().unwrap();
    let bearer = format!("Bearer {}", server.token(9));
    req.headers_mut()
        .insert("Authorization", bearer.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(next_frame(&mut ws).await["data"]["userId"], 9);
}

#[tokio::test]
async fn sub_claim_and_username_are_read() {
    let server = server().await;
    let token = pitchey_mock_server::auth::mint_named_token(
        &server.config().jwt_secret,
        12,
        Some("ada"),
        false,
        Duration::from_secs(60),
    )
    .unwrap();
    let (_ws, connected) = connect_token(&server, &token).await;
    assert_eq!(connected["data"]["userId"], 12);
}

#[tokio::test]
async fn token_expiring_during_a_session_closes_it_with_4001() {
    let server = server().await;
    // Whole seconds: valid for at least one more second, at most two.
    let token = server.token_with_ttl(7, Duration::from_secs(2));
    let (mut ws, _) = connect_token(&server, &token).await;
    let (code, _, frames) = expect_close(&mut ws).await;
    assert_eq!(code, 4001);
    assert_eq!(frames[0]["data"]["code"], "unauthorized");
}

#[tokio::test]
async fn http_endpoints_refuse_bad_tokens_with_401() {
    let server = server().await;
    for (kind, token) in bad_tokens(&server) {
        let (status, body) = http(
            &server,
            "GET",
            "/api/ws/following-online",
            Some(&token),
            None,
        )
        .await;
        assert_eq!(status, 401, "{kind}");
        assert_eq!(body["error"], "unauthorized");
    }
}
