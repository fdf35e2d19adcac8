//! HTTP request bodies over `--max-body-bytes` are refused with 413 and a JSON error, before
//! anything reads them: by `Content-Length` at once, and for chunked bodies by the extractors'
//! limit ([`axum::extract::DefaultBodyLimit`], set to the same size in the router).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_LENGTH;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::api_error::ApiError;
use crate::hub::Hub;
use crate::limits::LimitCounters;

/// Middleware: 413 for a declared length over the limit; counts every 413 (also the ones the
/// extractors give for chunked bodies).
pub(crate) async fn refuse_large_bodies(
    State(hub): State<Arc<Hub>>,
    request: Request,
    next: Next,
) -> Response {
    let max = hub.config.limits.max_body_bytes;
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        LimitCounters::bump(&hub.counters.limits.body_too_large);
        return ApiError::TooLarge.into_response();
    }
    let response = next.run(request).await;
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE && declared.is_none() {
        LimitCounters::bump(&hub.counters.limits.body_too_large);
    }
    response
}
