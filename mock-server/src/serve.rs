//! The accept loop, in place of `axum::serve`, for two deadlines it cannot set:
//!
//! - a connection must send a complete request head within `--header-timeout-secs`, or it
//!   is closed (hyper's `header_read_timeout`, which needs a timer axum does not give it), so
//!   that idle or trickling sockets cannot pile up;
//! - at shutdown, HTTP connections get what is left of `--shutdown-grace-secs` to finish,
//!   then they are cut, whatever the client does (a body that never arrives included).
//!
//! HTTP/1.1 only, as before (the WebSocket upgrade is HTTP/1.1).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::hub::Hub;
use crate::limits::LimitCounters;

/// Serve `app` on `listener` until `stop`; then give open connections until `deadline` (sent
/// on `deadline_rx` when the shutdown starts) and cut the rest.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    hub: Arc<Hub>,
    mut stop: watch::Receiver<bool>,
    deadline: watch::Receiver<Option<Instant>>,
) {
    let header_timeout = Duration::from_secs(hub.config.limits.header_timeout_secs.max(1));
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    conns.spawn(connection(stream, app.clone(), header_timeout, stop.clone(), hub.clone()));
                }
                Err(e) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = stopped(&mut stop) => break,
        }
        while conns.try_join_next().is_some() {}
    }
    drop(listener);
    let until =
        (*deadline.borrow()).unwrap_or_else(|| Instant::now() + hub.config.limits.shutdown_grace());
    let drained =
        tokio::time::timeout_at(until, async { while conns.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(
            connections = conns.len(),
            "cutting HTTP connections still open at the end of the shutdown grace"
        );
        conns.abort_all();
    }
}

async fn connection(
    stream: TcpStream,
    app: Router,
    header_timeout: Duration,
    mut stop: watch::Receiver<bool>,
    hub: Arc<Hub>,
) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let conn = builder
        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app))
        .with_upgrades();
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = stopped(&mut stop) => {
            // Finish the request in flight, take no more; cut by the caller past the grace.
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    match result {
        Err(e) if e.is_timeout() => {
            LimitCounters::bump(&hub.counters.limits.header_timeouts);
            tracing::debug!("closed a connection that sent no request head in time");
        }
        Err(e) => tracing::debug!(error = %e, "HTTP connection ended with an error"),
        Ok(()) => {}
    }
}

/// Resolves once `stop` is set (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
