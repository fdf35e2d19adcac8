//! Group commit: one writer thread makes the writes of many callers durable with one sync.
//!
//! Callers hand over their pending record operations ([`GroupCommit::submit`], cheap: the
//! hub does it under its lock) and get a [`Durability`] ticket. The writer takes every batch
//! that arrived while it was busy, writes them in one transaction, syncs once, and then
//! publishes how far the writes are durable. Whoever promises a write (an ack, an HTTP
//! answer, a frame with a new `seq`) waits on its ticket first, outside the hub's lock: a
//! sync no longer stalls every session, and under load one sync covers many messages.
//!
//! A failed group is reported to its waiters (nothing that depends on it is promised) and
//! kept: it is written again, in order, with the next group.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::store_error::{CommitStats, StoreError};

/// How far the writer got: published after every group.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// Every batch up to this ticket is durable.
    durable: u64,
    /// Every batch up to this ticket (and beyond `durable`) was in a group that failed.
    failed_through: u64,
    /// Why the last group failed.
    error: Option<Arc<str>>,
    /// Groups committed, time spent, failures.
    stats: CommitStats,
}

/// A promise that some writes become durable; wait on it before promising them to anyone.
/// The default one is durable already (a store that needs no commit).
#[derive(Debug, Clone, Default)]
pub struct Durability {
    /// Shared: a `Durability` travels in every session's outbox slot (`Outbound`), so it is
    /// kept to one pointer.
    wait: Option<Arc<Waiter>>,
}

#[derive(Debug, Clone)]
struct Waiter {
    ticket: u64,
    progress: watch::Receiver<Progress>,
    path: Arc<PathBuf>,
}

impl Durability {
    /// The later of two promises (tickets grow: the later covers the earlier).
    pub fn max(self, other: Durability) -> Durability {
        match (&self.wait, &other.wait) {
            (Some(a), Some(b)) if b.ticket > a.ticket => other,
            (None, Some(_)) => other,
            _ => self,
        }
    }

    /// Whether the writes are durable (or failed) already: no need to wait.
    pub fn is_settled(&self) -> bool {
        self.wait.as_ref().is_none_or(|w| {
            let p = w.progress.borrow();
            p.durable >= w.ticket || p.failed_through >= w.ticket
        })
    }

    /// The outcome once the writes are settled; `None` while their group is being written.
    pub fn try_outcome(&self) -> Option<Result<(), StoreError>> {
        match &self.wait {
            None => Some(Ok(())),
            Some(w) => Self::outcome(w, &w.progress.borrow()),
        }
    }

    fn outcome(w: &Waiter, p: &Progress) -> Option<Result<(), StoreError>> {
        if p.durable >= w.ticket {
            Some(Ok(()))
        } else if p.failed_through >= w.ticket {
            Some(Err(StoreError::Write {
                path: (*w.path).clone(),
                detail: p.error.as_deref().unwrap_or("commit failed").to_owned(),
            }))
        } else {
            None
        }
    }

    /// Wait until the writes are durable; an error when their group failed to commit.
    pub async fn wait(self) -> Result<(), StoreError> {
        let Some(w) = self.wait else {
            return Ok(());
        };
        let mut progress = w.progress.clone();
        loop {
            let now = progress.borrow_and_update().clone();
            if let Some(r) = Self::outcome(&w, &now) {
                return r;
            }
            if progress.changed().await.is_err() {
                // The writer is gone (shutdown): whatever it finished was published.
                return Self::outcome(&w, &progress.borrow()).unwrap_or_else(|| {
                    Err(StoreError::Write {
                        path: (*w.path).clone(),
                        detail: "the store writer stopped".into(),
                    })
                });
            }
        }
    }

    /// [`Durability::wait`] for a thread that is not async (start-up, the final flush).
    pub fn wait_blocking(self) -> Result<(), StoreError> {
        let Some(w) = self.wait else {
            return Ok(());
        };
        loop {
            if let Some(r) = Self::outcome(&w, &w.progress.borrow()) {
                return r;
            }
            if w.progress.has_changed().is_err() {
                return Err(StoreError::Write {
                    path: (*w.path).clone(),
                    detail: "the store writer stopped".into(),
                });
            }
            // Only the last commit of a shutdown waits here: polling is simpler than a
            // second notification path.
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// The writer thread and its queue. See the module docs.
pub struct GroupCommit<T> {
    tx: Option<std_mpsc::Sender<(u64, Vec<T>)>>,
    next: u64,
    progress: watch::Receiver<Progress>,
    path: Arc<PathBuf>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl<T> std::fmt::Debug for GroupCommit<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit")
            .field("path", &self.path)
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static> GroupCommit<T> {
    /// Start the writer for the store at `path`; `write` writes and syncs one group.
    pub fn start(
        path: PathBuf,
        mut write: impl FnMut(&[T]) -> Result<(), String> + Send + 'static,
    ) -> Self {
        let (tx, rx) = std_mpsc::channel::<(u64, Vec<T>)>();
        let (progress_tx, progress) = watch::channel(Progress::default());
        let thread_path = path.clone();
        let thread = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || {
                let mut held: Vec<T> = Vec::new();
                let mut last = 0;
                // Blocks for the first batch of a group, then takes what else is waiting.
                while let Ok((ticket, ops)) = rx.recv() {
                    held.extend(ops);
                    last = ticket;
                    while let Ok((ticket, ops)) = rx.try_recv() {
                        held.extend(ops);
                        last = ticket;
                    }
                    let started = Instant::now();
                    let written = write(&held);
                    progress_tx.send_modify(|p| match &written {
                        Ok(()) => {
                            p.durable = last;
                            p.stats.commits += 1;
                            p.stats.micros +=
                                u64::try_from(started.elapsed().as_micros()).unwrap_or(0);
                        }
                        Err(e) => {
                            p.failed_through = last;
                            p.error = Some(e.as_str().into());
                            p.stats.failures += 1;
                        }
                    });
                    match written {
                        Ok(()) => held.clear(),
                        Err(e) => {
                            tracing::error!(path = %thread_path.display(), error = %e, "store commit failed");
                            // Not in a hot loop on a broken disk: the next group retries.
                            std::thread::sleep(Duration::from_millis(10));
                        }
                    }
                }
                // Callers gone with writes held after a failure: one last try.
                if !held.is_empty() && write(&held).is_ok() {
                    progress_tx.send_modify(|p| p.durable = last);
                }
            })
            .ok();
        GroupCommit {
            tx: Some(tx),
            next: 1,
            progress,
            path: Arc::new(path),
            thread,
        }
    }

    /// Hand `ops` to the writer; the ticket says when they are durable.
    pub fn submit(&mut self, ops: Vec<T>) -> Durability {
        let ticket = self.next;
        self.next += 1;
        let sent = self
            .tx
            .as_ref()
            .is_some_and(|tx| tx.send((ticket, ops)).is_ok());
        if !sent {
            tracing::error!(path = %self.path.display(), "store writer is gone: write not durable");
        }
        Durability {
            wait: Some(Arc::new(Waiter {
                ticket,
                progress: self.progress.clone(),
                path: self.path.clone(),
            })),
        }
    }

    /// Commits made so far.
    pub fn stats(&self) -> CommitStats {
        self.progress.borrow().stats
    }
}

impl<T> Drop for GroupCommit<T> {
    fn drop(&mut self) {
        // Closing the queue ends the writer once it wrote what it holds.
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
