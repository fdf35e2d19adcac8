//! The outbox and the last `seq` on disk: the core's [`Snapshot`] as JSON, written
//! atomically (a temporary file, flushed, then renamed over the old one) whenever the
//! core's persist revision changes, and restored when the next client is built.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use pitchey_realtime::client::Client as CoreClient;
use pitchey_realtime::core::Snapshot;
use tokio::sync::{Mutex, Notify};

use crate::error::PitcheyError;

/// The file, in the persistence directory, that holds the outbox and the last `seq`.
pub const FILE_NAME: &str = "pitchey-realtime-outbox.json";

/// While a draft is open its auto-save can queue a save without any event: check the
/// revision this often then.
const DRAFT_TICK: Duration = Duration::from_secs(1);

/// Writes the client's snapshot to `<dir>/pitchey-realtime-outbox.json`.
pub(crate) struct Persister {
    path: PathBuf,
    /// The revision last written; the lock also serialises writers.
    written: Mutex<Option<u64>>,
    /// Open drafts (their auto-saves are checked on a tick).
    pub(crate) open_drafts: AtomicUsize,
    /// Wakes the watcher (a draft was opened: start ticking).
    pub(crate) wake: Notify,
    temp_counter: AtomicU64,
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> PitcheyError {
    PitcheyError::Persistence {
        reason: format!("{what} {}: {e}", path.display()),
    }
}

impl Persister {
    /// Use `dir` (created if missing) and read what a previous client left there.
    pub(crate) fn open(dir: &Path) -> Result<(Self, Option<Snapshot>), PitcheyError> {
        std::fs::create_dir_all(dir).map_err(|e| io_error("cannot create", dir, e))?;
        let path = dir.join(FILE_NAME);
        let snapshot = match std::fs::read_to_string(&path) {
            Ok(text) => {
                Some(
                    Snapshot::from_json(&text).map_err(|e| PitcheyError::Persistence {
                        reason: format!("{}: {e}", path.display()),
                    })?,
                )
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_error("cannot read", &path, e)),
        };
        Ok((
            Persister {
                path,
                written: Mutex::new(None),
                open_drafts: AtomicUsize::new(0),
                wake: Notify::new(),
                temp_counter: AtomicU64::new(0),
            },
            snapshot,
        ))
    }

    /// Write the snapshot if the core's revision moved since the last write.
    pub(crate) async fn sync(&self, client: &CoreClient) -> Result<(), PitcheyError> {
        let mut written = self.written.lock().await;
        let revision = client.persist_revision()?;
        if *written == Some(revision) {
            return Ok(());
        }
        let snapshot = client.export()?;
        self.write_atomically(&snapshot.to_json())?;
        *written = Some(revision);
        Ok(())
    }

    fn write_atomically(&self, text: &str) -> Result<(), PitcheyError> {
        let n = self.temp_counter.fetch_add(1, Ordering::Relaxed);
        let temp = self
            .path
            .with_extension(format!("json.tmp-{}-{n}", std::process::id()));
        let result = (|| {
            let mut file = std::fs::File::create(&temp)?;
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
            std::fs::rename(&temp, &self.path)
        })();
        if let Err(e) = result {
            let _ = std::fs::remove_file(&temp);
            return Err(io_error("cannot write", &self.path, e));
        }
        // Make the rename itself durable where directories can be synced (best effort).
        if let Some(dir) = self.path.parent()
            && let Ok(d) = std::fs::File::open(dir)
        {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

/// Keeps the file current: after every event of the client (acks, frames with a `seq`,
/// failures) and, while drafts are open, on a tick. Ends when aborted or the client is gone.
pub(crate) async fn watch(persister: Arc<Persister>, client: CoreClient) {
    let mut events = client.events();
    loop {
        let tick = persister.open_drafts.load(Ordering::Relaxed) > 0;
        tokio::select! {
            event = events.recv() => {
                if event.is_none() {
                    return;
                }
            }
            () = tokio::time::sleep(DRAFT_TICK), if tick => {}
            () = persister.wake.notified() => {}
        }
        if let Err(e) = persister.sync(&client).await {
            tracing::warn!(error = %e, "could not persist the outbox");
            if matches!(e, PitcheyError::ClientGone) {
                return;
            }
        }
    }
}
