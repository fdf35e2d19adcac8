//! [`ApiError`]: why an HTTP request was refused, as the JSON error answer every route and
//! middleware gives (its own file: `http` and `body_limit` both answer with it).

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::http::StatusCode;
use axum::http::header::RETRY_AFTER;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::auth::AuthError;

/// Why an HTTP request was refused.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No valid bearer token (401).
    #[error("unauthorized: {0}")]
    Unauthorized(#[from] AuthError),
    /// A valid token without the admin role (403).
    #[error("forbidden: this needs an admin token")]
    Forbidden,
    /// The body or path did not parse (400).
    #[error("invalid request: {0}")]
    BadRequest(String),
    /// The server is shutting down (503).
    #[error("server is shutting down")]
    ShuttingDown,
    /// Fault injection: connections are refused for a while (503).
    #[error("connections are refused for a while (fault injection)")]
    Refusing,
    /// The body is over `--max-body-bytes` (413).
    #[error("request body over the size limit")]
    TooLarge,
    /// Over a per-minute budget (429 with `Retry-After`, in whole seconds).
    #[error("too many requests: retry in {0} s")]
    RateLimited(u64),
    /// The user has `max_sessions_per_user` sessions open already (429).
    #[error("at most {0} sessions per user: close one first")]
    TooManySessions(usize),
    /// The durable store could not commit the write; nothing was promised (500).
    #[error("storage failed: {0}")]
    Store(#[from] crate::store::StoreError),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            ApiError::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, "shutting_down"),
            ApiError::Refusing => (StatusCode::SERVICE_UNAVAILABLE, "refusing_connections"),
            ApiError::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::TooManySessions(_) => (StatusCode::TOO_MANY_REQUESTS, "too_many_sessions"),
            ApiError::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            ApiError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        let body = Json(json!({ "error": code, "message": self.to_string() }));
        match self {
            ApiError::RateLimited(secs) => {
                (status, [(RETRY_AFTER, secs.to_string())], body).into_response()
            }
            _ => (status, body).into_response(),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> Self {
        // A chunked body over the limit is only found while the extractor reads it.
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::TooLarge;
        }
        ApiError::BadRequest(e.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(e: PathRejection) -> Self {
        ApiError::BadRequest(e.body_text())
    }
}
