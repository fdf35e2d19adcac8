//! CORS for browsers on other origins (a Vite dev server on :5173 calling the HTTP endpoints).
//!
//! Any origin may call without credentials (`Access-Control-Allow-Origin: *`): clients send
//! their token in `Authorization`, which needs no cookies. Only origins listed with
//! `--cors-origin` get their own origin echoed with `Access-Control-Allow-Credentials: true`;
//! an echoed origin never comes with credentials otherwise, so no site can make a browser
//! send a user's cookies here and read the answer.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::hub::Hub;

/// Middleware: answer preflights, and add the CORS headers to every answer to a request
/// with an `Origin`.
pub(crate) async fn cors(State(hub): State<Arc<Hub>>, request: Request, next: Next) -> Response {
    let origin = request.headers().get(ORIGIN).cloned();
    let credentialed = origin
        .as_ref()
        .and_then(|o| o.to_str().ok())
        .is_some_and(|o| hub.config.cors_origins.iter().any(|allowed| allowed == o));
    let preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(ACCESS_CONTROL_REQUEST_METHOD);
    let mut response = if preflight {
        let requested = request
            .headers()
            .get(ACCESS_CONTROL_REQUEST_HEADERS)
            .cloned();
        let mut r = StatusCode::NO_CONTENT.into_response();
        let h = r.headers_mut();
        h.insert(
            ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, DELETE, OPTIONS"),
        );
        // `*` does not cover `Authorization`: name what the browser asks for.
        h.insert(
            ACCESS_CONTROL_ALLOW_HEADERS,
            requested.unwrap_or(HeaderValue::from_static("authorization, content-type")),
        );
        h.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        r
    } else {
        next.run(request).await
    };
    if let Some(origin) = origin {
        let h = response.headers_mut();
        if credentialed {
            h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            h.insert(
                ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        } else {
            h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        }
        h.insert(
            ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("retry-after"),
        );
        h.append(VARY, HeaderValue::from_static("Origin"));
    }
    response
}
