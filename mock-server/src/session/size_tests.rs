//! The session task's footprint: every idle connection holds one session future, so its size is
//! the largest part of the server's memory per connection (BENCHMARKS.md, "Idle memory").

use std::mem::size_of;

use axum::extract::ws::WebSocket;

use super::{Session, Start, Writer, run};
use crate::hub::Outbound;

/// The size of what `f` returns, without calling it.
fn output_size<F>(_: &impl FnOnce(WebSocket, Start) -> F) -> usize {
    size_of::<F>()
}

#[test]
fn session_future_size() {
    let run_size = output_size(&run);
    println!(
        "session::run future {run_size} B; WebSocket {} B, Session {} B, Writer {} B, Outbound {} B, Sleep {} B",
        size_of::<WebSocket>(),
        size_of::<Session>(),
        size_of::<Writer>(),
        size_of::<Outbound>(),
        size_of::<tokio::time::Sleep>(),
    );
    // A budget for optimised builds (debug futures are larger): 4,912 B before the cold paths
    // were boxed and the socket was no longer copied; 1,680 B after; 1,840 B with the write
    // batching and the ordered pending queue of answers.
    if !cfg!(debug_assertions) {
        assert!(run_size <= 2048, "the session future grew to {run_size} B");
    }
    // 40: a `Text` (a frame, 32 B) plus the tag; the other variants with a frame are boxed.
    assert!(
        size_of::<Outbound>() <= 40,
        "Outbound grew: every outbox holds 32 of it"
    );
}
