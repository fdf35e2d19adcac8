//! The tokio runtime the clients run on: created once, lazily, owned by this library.
//!
//! The app's threads (Kotlin coroutines, Swift tasks) only await the futures this library
//! returns; the socket, the timers and the client's driver task run here, on two worker
//! threads, whatever executor the app uses.

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use pitchey_realtime::client::platform::{BoxFuture, Spawn};
use tokio::runtime::{Builder, Handle, Runtime};
use tokio::task::JoinHandle;

use crate::error::PitcheyError;

/// Worker threads: one socket per client and little CPU; two keep a slow listener
/// callback from stalling every client.
const WORKERS: usize = 2;

static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

/// The shared runtime's handle, creating the runtime on first use.
pub(crate) fn handle() -> Result<Handle, PitcheyError> {
    let runtime = RUNTIME.get_or_init(|| {
        Builder::new_multi_thread()
            .worker_threads(WORKERS)
            .thread_name("pitchey-realtime")
            .enable_time()
            .enable_io()
            .build()
            .map_err(|e| e.to_string())
    });
    match runtime {
        Ok(rt) => Ok(rt.handle().clone()),
        Err(e) => Err(PitcheyError::Platform {
            reason: format!("cannot start the tokio runtime: {e}"),
        }),
    }
}

/// Runs `future` on the shared runtime and waits for it from any executor. Dropping the
/// returned future (a cancelled Kotlin coroutine or Swift task) aborts the work.
pub(crate) async fn run<F, T>(future: F) -> Result<T, PitcheyError>
where
    F: Future<Output = Result<T, PitcheyError>> + Send + 'static,
    T: Send + 'static,
{
    let task = AbortOnDrop(handle()?.spawn(future));
    match task.await {
        Ok(result) => result,
        Err(e) => Err(PitcheyError::Platform {
            reason: format!("task ended abnormally: {e}"),
        }),
    }
}

/// A join handle that aborts its task when dropped.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Future for AbortOnDrop<T> {
    type Output = Result<T, tokio::task::JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// [`Spawn`] on a runtime handle (the core's `TokioSpawn` spawns on the *current* runtime,
/// and calls from Kotlin or Swift come from threads that have none).
#[derive(Debug, Clone)]
pub struct RuntimeSpawn(pub Handle);

impl Spawn for RuntimeSpawn {
    fn spawn(&self, task: BoxFuture<'static, ()>) {
        self.0.spawn(task);
    }
}
