//! [`DiskStore`]: the [`Store`] kept in an embedded `redb` database under `--data-dir`, so that
//! a server killed and started again on the same directory loses nothing it acknowledged.
//!
//! The whole state stays in a [`MemoryStore`] that answers every read; each write also
//! becomes a pending record operation, and [`Store::commit`] hands the pending operations to
//! the store's writer thread ([`GroupCommit`]), which writes every batch that arrived while it
//! was busy in one `redb` transaction with immediate durability (one sync for the group).
//! The hub commits before it acks, answers an HTTP request, or lets a frame with a new `seq`
//! out, and waits for the commit's [`Durability`] outside its lock.
//!
//! Tables (keys sort by user first):
//! - `seqs`: user → last `seq`; `meta`: `notifications` → last notification number.
//! - `log`: (user, seq) → frame; `queue`: (user, position) → (seq, frame).
//! - `drafts`: (user, draft id) → the draft as JSON.
//! - `dedup`: (user, message id) → (Unix ms when applied, version it answered).
//!
//! Records past the limits (replay log and queue caps, the de-dup window) are deleted as they
//! fall off in memory, and again at start-up if the limits shrank.

use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redb::{Database, ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::group_commit::{Durability, GroupCommit};
use crate::store::{
    Applied, CommitStats, Draft, FrameText, LoggedFrame, MemoryStore, QueuedFrame, Store,
    StoreError, StoreLimits,
};

const SEQS: TableDefinition<u64, u64> = TableDefinition::new("seqs");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const LOG: TableDefinition<(u64, u64), &str> = TableDefinition::new("log");
const QUEUE: TableDefinition<(u64, u64), (Option<u64>, &str)> = TableDefinition::new("queue");
const DRAFTS: TableDefinition<(u64, &str), &str> = TableDefinition::new("drafts");
const DEDUP: TableDefinition<(u64, &str), (u64, Option<u64>)> = TableDefinition::new("dedup");

const NOTIFICATIONS: &str = "notifications";

/// The store file inside the data directory.
pub const STORE_FILE: &str = "pitchey.redb";

/// Pending operations beyond this are committed without waiting for the hub: only the
/// de-dup ids of messages with no durable effect (pings, typing) are written lazily, and they
/// must not pile up in memory.
const PENDING_FLUSH: usize = 4096;

/// One record change waiting for the next commit.
#[derive(Debug)]
enum Op {
    Seq(u64, u64),
    Notifications(u64),
    LogPut(u64, u64, FrameText),
    LogDel(u64, u64),
    QueuePut(u64, u64, Option<u64>, FrameText),
    QueueDel(u64, u64),
    Draft(u64, String, String),
    DedupPut(u64, String, u64, Option<u64>),
    DedupDel(u64, String),
}

/// A draft as stored.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DraftRecord {
    draft_type: Option<String>,
    content: Value,
    version: u64,
    updated_at: String,
}

/// The durable store. See the module docs.
pub struct DiskStore {
    path: PathBuf,
    db: Arc<Database>,
    /// Writes and syncs what `commit` hands it, in groups.
    writer: GroupCommit<Op>,
    /// The latest commit: an empty commit waits for it.
    last: Durability,
    mem: MemoryStore,
    /// Record positions of each user's queued frames, oldest first (parallel to `mem`'s queue).
    queue_pos: HashMap<u64, VecDeque<u64>>,
    next_pos: u64,
    pending: Vec<Op>,
    stats: CommitStats,
}

impl std::fmt::Debug for DiskStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskStore")
            .field("path", &self.path)
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

/// The message of a caught panic.
fn panic_text(panic: &Box<dyn Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "panic".to_owned())
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl DiskStore {
    /// Open (or create) the store in `dir` and load it. A file that is not a valid store, or
    /// a record that does not decode, is an error naming the file: never an empty state.
    pub fn open(dir: &Path, limits: StoreLimits) -> Result<Self, StoreError> {
        // redb detects a bad header with an error but panics on some damage inside the file
        // (seen with pages overwritten by garbage): that too must be an error naming the file.
        std::panic::catch_unwind(AssertUnwindSafe(|| Self::open_unguarded(dir, limits)))
            .unwrap_or_else(|panic| {
                Err(StoreError::Corrupt {
                    path: dir.join(STORE_FILE),
                    detail: format!(
                        "the store library gave up reading it: {}",
                        panic_text(&panic)
                    ),
                })
            })
    }

    fn open_unguarded(dir: &Path, limits: StoreLimits) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
            path: dir.to_owned(),
            source,
        })?;
        let path = dir.join(STORE_FILE);
        let open_err = |detail: String| StoreError::Open {
            path: path.clone(),
            detail,
        };
        // Only a missing file means a new store: an empty or cut-short one is what is left of
        // a store, and creating over it would throw away what it promised.
        let db = match std::fs::metadata(&path) {
            Ok(meta) if meta.len() == 0 => {
                return Err(StoreError::Corrupt {
                    path: path.clone(),
                    detail: "the file is empty (move it away to start a new store)".into(),
                });
            }
            Ok(_) => Database::open(&path).map_err(|e| StoreError::Corrupt {
                path: path.clone(),
                detail: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Database::create(&path).map_err(|e| open_err(e.to_string()))?
            }
            Err(e) => return Err(open_err(e.to_string())),
        };
        let db = Arc::new(db);
        let writer_db = db.clone();
        let writer = GroupCommit::start(path.clone(), move |ops| write_ops(&writer_db, ops));
        let mut store = DiskStore {
            path,
            db,
            writer,
            last: Durability::default(),
            mem: MemoryStore::new(limits),
            queue_pos: HashMap::new(),
            next_pos: 1,
            pending: Vec::new(),
            stats: CommitStats::default(),
        };
        store.create_tables()?;
        store.load()?;
        // Deletions found while loading (limits that shrank, expired ids).
        store.commit().wait_blocking()?;
        tracing::info!(
            path = %store.path.display(),
            queued = store.mem.queue_depth(),
            "store loaded"
        );
        Ok(store)
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn open_err(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::Open {
            path: self.path.clone(),
            detail: e.to_string(),
        }
    }

    fn corrupt(&self, detail: String) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            detail,
        }
    }

    fn create_tables(&self) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(|e| self.open_err(e))?;
        let opened = (|| -> Result<(), redb::TableError> {
            tx.open_table(SEQS)?;
            tx.open_table(META)?;
            tx.open_table(LOG)?;
            tx.open_table(QUEUE)?;
            tx.open_table(DRAFTS)?;
            tx.open_table(DEDUP)?;
            Ok(())
        })();
        opened.map_err(|e| self.open_err(e))?;
        tx.commit().map_err(|e| self.open_err(e))
    }

    fn load(&mut self) -> Result<(), StoreError> {
        let rtx = self.db.begin_read().map_err(|e| self.open_err(e))?;
        let bad = |e: &dyn std::fmt::Display| e.to_string();

        let seqs = rtx.open_table(SEQS).map_err(|e| self.open_err(e))?;
        for row in seqs.iter().map_err(|e| self.open_err(e))? {
            let (k, v) = row.map_err(|e| self.corrupt(format!("seqs: {}", bad(&e))))?;
            self.mem.restore_seq(k.value(), v.value());
        }

        let meta = rtx.open_table(META).map_err(|e| self.open_err(e))?;
        if let Some(n) = meta
            .get(NOTIFICATIONS)
            .map_err(|e| self.corrupt(format!("meta: {}", bad(&e))))?
        {
            self.mem.restore_notifications(n.value());
        }

        let log = rtx.open_table(LOG).map_err(|e| self.open_err(e))?;
        for row in log.iter().map_err(|e| self.open_err(e))? {
            let (k, v) = row.map_err(|e| self.corrupt(format!("log: {}", bad(&e))))?;
            let (user, seq) = k.value();
            let frame = LoggedFrame {
                seq,
                text: FrameText::from(v.value()),
            };
            for gone in self.mem.log_append_evicting(user, frame) {
                self.pending.push(Op::LogDel(user, gone));
            }
        }

        let queue = rtx.open_table(QUEUE).map_err(|e| self.open_err(e))?;
        for row in queue.iter().map_err(|e| self.open_err(e))? {
            let (k, v) = row.map_err(|e| self.corrupt(format!("queue: {}", bad(&e))))?;
            let (user, pos) = k.value();
            let (seq, text) = v.value();
            self.next_pos = self.next_pos.max(pos.saturating_add(1));
            self.push_queued(
                user,
                pos,
                QueuedFrame {
                    seq,
                    text: FrameText::from(text),
                },
            );
        }

        let drafts = rtx.open_table(DRAFTS).map_err(|e| self.open_err(e))?;
        for row in drafts.iter().map_err(|e| self.open_err(e))? {
            let (k, v) = row.map_err(|e| self.corrupt(format!("drafts: {}", bad(&e))))?;
            let (user, draft_id) = k.value();
            let record: DraftRecord = serde_json::from_str(v.value())
                .map_err(|e| self.corrupt(format!("draft {draft_id:?} of user {user}: {e}")))?;
            self.mem.put_draft(
                user,
                draft_id,
                Draft {
                    draft_type: record.draft_type,
                    content: record.content,
                    version: record.version,
                    updated_at: record.updated_at,
                },
            );
        }

        // De-dup ids in the order they were applied, aged by the wall clock.
        let dedup = rtx.open_table(DEDUP).map_err(|e| self.open_err(e))?;
        let mut ids: Vec<(u64, u64, String, Applied)> = Vec::new();
        for row in dedup.iter().map_err(|e| self.open_err(e))? {
            let (k, v) = row.map_err(|e| self.corrupt(format!("dedup: {}", bad(&e))))?;
            let (user, id) = k.value();
            let (at, version) = v.value();
            ids.push((at, user, id.to_owned(), Applied { version }));
        }
        ids.sort_by_key(|(at, user, _, _)| (*at, *user));
        let (now, wall) = (Instant::now(), unix_ms(SystemTime::now()));
        let window = self.mem.limits().dedup_window;
        for (at, user, id, applied) in ids {
            let age = Duration::from_millis(wall.saturating_sub(at));
            match now.checked_sub(age).filter(|_| age <= window) {
                Some(then) => {
                    for gone in self.mem.remember_evicting(user, &id, applied, then) {
                        self.pending.push(Op::DedupDel(user, gone));
                    }
                }
                None => self.pending.push(Op::DedupDel(user, id)),
            }
        }
        Ok(())
    }

    /// Queue a frame at record position `pos`, recording deletions for what falls off.
    fn push_queued(&mut self, user: u64, pos: u64, frame: QueuedFrame) -> usize {
        let dropped = self.mem.queue_push(user, frame);
        let positions = self.queue_pos.entry(user).or_default();
        positions.push_back(pos);
        // A cap of 0 keeps nothing: the frame itself counts as dropped.
        for _ in 0..dropped {
            if let Some(old) = positions.pop_front() {
                self.pending.push(Op::QueueDel(user, old));
            }
        }
        if positions.is_empty() {
            self.queue_pos.remove(&user);
        }
        dropped
    }

    fn flush_if_large(&mut self) {
        if self.pending.len() >= PENDING_FLUSH {
            // Nothing waits for these ids: a failure is logged by the writer and retried.
            drop(self.commit());
        }
    }

    // redb's error is large, but this is the cold path of a private helper that turns it
    // into a StoreError at once.
    #[allow(clippy::result_large_err)]
    fn apply(tx: &WriteTransaction, ops: &[Op]) -> Result<(), redb::Error> {
        let mut seqs = tx.open_table(SEQS)?;
        let mut meta = tx.open_table(META)?;
        let mut log = tx.open_table(LOG)?;
        let mut queue = tx.open_table(QUEUE)?;
        let mut drafts = tx.open_table(DRAFTS)?;
        let mut dedup = tx.open_table(DEDUP)?;
        for op in ops {
            match op {
                Op::Seq(user, seq) => {
                    seqs.insert(*user, *seq)?;
                }
                Op::Notifications(n) => {
                    meta.insert(NOTIFICATIONS, *n)?;
                }
                Op::LogPut(user, seq, text) => {
                    log.insert((*user, *seq), &*text.text())?;
                }
                Op::LogDel(user, seq) => {
                    log.remove((*user, *seq))?;
                }
                Op::QueuePut(user, pos, seq, text) => {
                    queue.insert((*user, *pos), (*seq, &*text.text()))?;
                }
                Op::QueueDel(user, pos) => {
                    queue.remove((*user, *pos))?;
                }
                Op::Draft(user, id, json) => {
                    drafts.insert((*user, id.as_str()), json.as_str())?;
                }
                Op::DedupPut(user, id, at, version) => {
                    dedup.insert((*user, id.as_str()), (*at, *version))?;
                }
                Op::DedupDel(user, id) => {
                    dedup.remove((*user, id.as_str()))?;
                }
            }
        }
        Ok(())
    }
}

/// Write `ops` in one transaction, synced. A panic inside redb (a file damaged while we run)
/// is a failed commit, not the end of the process.
fn write_ops(db: &Database, ops: &[Op]) -> Result<(), String> {
    std::panic::catch_unwind(AssertUnwindSafe(|| {
        let tx = db.begin_write().map_err(|e| e.to_string())?;
        DiskStore::apply(&tx, ops).map_err(|e| e.to_string())?;
        // redb's Durability::Immediate is the default: commit returns once the data is synced.
        tx.commit().map_err(|e| e.to_string())
    }))
    .unwrap_or_else(|panic| Err(panic_text(&panic)))
}

impl Store for DiskStore {
    fn next_seq(&mut self, user: u64) -> u64 {
        let seq = self.mem.next_seq(user);
        self.pending.push(Op::Seq(user, seq));
        seq
    }

    fn last_seq(&self, user: u64) -> u64 {
        self.mem.last_seq(user)
    }

    fn log_append(&mut self, user: u64, frame: LoggedFrame) {
        let (seq, text) = (frame.seq, frame.text.clone());
        let gone = self.mem.log_append_evicting(user, frame);
        if !gone.contains(&seq) {
            self.pending.push(Op::LogPut(user, seq, text));
        }
        self.pending.extend(
            gone.into_iter()
                .filter(|s| *s != seq)
                .map(|s| Op::LogDel(user, s)),
        );
    }

    fn log_oldest(&self, user: u64) -> Option<u64> {
        self.mem.log_oldest(user)
    }

    fn log_range(&self, user: u64, after: u64, upto: u64) -> Vec<LoggedFrame> {
        self.mem.log_range(user, after, upto)
    }

    fn queue_push(&mut self, user: u64, frame: QueuedFrame) -> usize {
        let pos = self.next_pos;
        self.next_pos += 1;
        self.pending
            .push(Op::QueuePut(user, pos, frame.seq, frame.text.clone()));
        self.push_queued(user, pos, frame)
    }

    fn queue_take(&mut self, user: u64) -> Vec<QueuedFrame> {
        for pos in self.queue_pos.remove(&user).unwrap_or_default() {
            self.pending.push(Op::QueueDel(user, pos));
        }
        self.mem.queue_take(user)
    }

    fn queue_depth(&self) -> usize {
        self.mem.queue_depth()
    }

    fn draft(&self, user: u64, draft_id: &str) -> Option<Draft> {
        self.mem.draft(user, draft_id)
    }

    fn put_draft(&mut self, user: u64, draft_id: &str, draft: Draft) {
        let record = DraftRecord {
            draft_type: draft.draft_type.clone(),
            content: draft.content.clone(),
            version: draft.version,
            updated_at: draft.updated_at.clone(),
        };
        // Serializing a JSON value we hold cannot fail; should it, the draft would be missing
        // at the next start, so say so loudly.
        match serde_json::to_string(&record) {
            Ok(json) => self
                .pending
                .push(Op::Draft(user, draft_id.to_owned(), json)),
            Err(e) => tracing::error!(error = %e, user, draft_id, "draft not stored"),
        }
        self.mem.put_draft(user, draft_id, draft);
    }

    fn draft_count(&self, user: u64) -> usize {
        self.mem.draft_count(user)
    }

    fn seen(&mut self, user: u64, id: &str, now: Instant) -> Option<Applied> {
        let (applied, gone) = self.mem.seen_evicting(user, id, now);
        self.pending
            .extend(gone.into_iter().map(|g| Op::DedupDel(user, g)));
        self.flush_if_large();
        applied
    }

    fn remember(&mut self, user: u64, id: &str, applied: Applied, now: Instant) {
        // Stored with the wall clock: an Instant means nothing to the next process.
        let at = unix_ms(SystemTime::now())
            .saturating_sub(u64::try_from(now.elapsed().as_millis()).unwrap_or(0));
        self.pending
            .push(Op::DedupPut(user, id.to_owned(), at, applied.version));
        let gone = self.mem.remember_evicting(user, id, applied, now);
        self.pending
            .extend(gone.into_iter().map(|g| Op::DedupDel(user, g)));
        self.flush_if_large();
    }

    fn next_notification(&mut self) -> u64 {
        let n = self.mem.next_notification();
        self.pending.push(Op::Notifications(n));
        n
    }

    fn queue_depths(&self) -> Vec<(u64, usize)> {
        self.mem.queue_depths()
    }

    fn commit(&mut self) -> Durability {
        if self.pending.is_empty() {
            // Earlier writes may still be on their way: wait for those.
            return self.last.clone();
        }
        let durable = self.writer.submit(std::mem::take(&mut self.pending));
        self.last = durable.clone();
        durable
    }

    fn kind(&self) -> &'static str {
        "disk"
    }

    fn commit_stats(&self) -> CommitStats {
        let w = self.writer.stats();
        CommitStats {
            commits: self.stats.commits + w.commits,
            micros: self.stats.micros + w.micros,
            failures: self.stats.failures + w.failures,
        }
    }

    fn evictions(&self) -> crate::store::Evictions {
        self.mem.evictions()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn limits() -> StoreLimits {
        StoreLimits {
            offline_queue_cap: 3,
            replay_log_cap: 2,
            dedup_window: Duration::from_secs(60),
            dedup_cap: 10,
            user_queue_bytes: 1 << 20,
        }
    }

    #[test]
    fn state_survives_reopen_and_limits_trim_records() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = DiskStore::open(dir.path(), limits()).unwrap();
            for i in 0..4 {
                let seq = s.next_seq(7);
                s.log_append(
                    7,
                    LoggedFrame {
                        seq,
                        text: FrameText::from(format!("f{i}")),
                    },
                );
                s.queue_push(
                    7,
                    QueuedFrame {
                        seq: Some(seq),
                        text: FrameText::from(format!("f{i}")),
                    },
                );
            }
            s.put_draft(
                7,
                "d1",
                Draft {
                    draft_type: Some("pitch".into()),
                    content: json!({"title": "x"}),
                    version: 3,
                    updated_at: "t".into(),
                },
            );
            s.remember(7, "m1", Applied { version: Some(3) }, Instant::now());
            assert_eq!(s.next_notification(), 1);
            s.commit().wait_blocking().unwrap();
        }
        let mut s = DiskStore::open(dir.path(), limits()).unwrap();
        assert_eq!(s.last_seq(7), 4);
        assert_eq!(s.log_oldest(7), Some(3));
        let queued: Vec<_> = s.queue_take(7).into_iter().map(|q| q.seq).collect();
        assert_eq!(queued, vec![Some(2), Some(3), Some(4)]);
        assert_eq!(s.draft(7, "d1").map(|d| d.version), Some(3));
        assert_eq!(
            s.seen(7, "m1", Instant::now()),
            Some(Applied { version: Some(3) })
        );
        assert_eq!(s.next_notification(), 2);
        s.commit().wait_blocking().unwrap();
        drop(s);
        // The taken queue stays taken.
        let mut s = DiskStore::open(dir.path(), limits()).unwrap();
        assert!(s.queue_take(7).is_empty());
    }

    #[test]
    fn damage_inside_a_valid_store_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = DiskStore::open(dir.path(), limits()).unwrap();
            for i in 0..500 {
                s.put_draft(
                    i % 7,
                    &format!("draft-{i}"),
                    Draft {
                        draft_type: None,
                        content: json!({"text": "x".repeat(200)}),
                        version: 1,
                        updated_at: "t".into(),
                    },
                );
            }
            s.commit().wait_blocking().unwrap();
        }
        let file = dir.path().join(STORE_FILE);
        let mut bytes = std::fs::read(&file).unwrap();
        // Past redb's header: the pages and allocator state.
        bytes[4096..].fill(0x41);
        std::fs::write(&file, bytes).unwrap();
        let err = DiskStore::open(dir.path(), limits()).unwrap_err();
        assert!(err.to_string().contains(STORE_FILE), "{err}");
    }

    #[test]
    fn empty_or_truncated_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(STORE_FILE);
        std::fs::write(&file, b"").unwrap();
        let err = DiskStore::open(dir.path(), limits()).unwrap_err();
        assert!(err.to_string().contains(STORE_FILE), "{err}");
        assert_eq!(std::fs::metadata(&file).unwrap().len(), 0, "left as it was");
        std::fs::remove_file(&file).unwrap();
        {
            let mut s = DiskStore::open(dir.path(), limits()).unwrap();
            s.put_draft(
                7,
                "d",
                Draft {
                    draft_type: None,
                    content: json!({"text": "x".repeat(5000)}),
                    version: 1,
                    updated_at: "t".into(),
                },
            );
            s.commit().wait_blocking().unwrap();
        }
        let len = std::fs::metadata(&file).unwrap().len();
        for keep in [len / 2, 100] {
            let bytes = std::fs::read(&file).unwrap();
            let dir2 = tempfile::tempdir().unwrap();
            std::fs::write(dir2.path().join(STORE_FILE), &bytes[..keep as usize]).unwrap();
            let err = DiskStore::open(dir2.path(), limits()).unwrap_err();
            assert!(err.to_string().contains(STORE_FILE), "{keep}: {err}");
        }
    }

    #[test]
    fn garbage_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(STORE_FILE), vec![0x5a; 8192]).unwrap();
        let err = DiskStore::open(dir.path(), limits()).unwrap_err();
        assert!(err.to_string().contains(STORE_FILE), "{err}");
    }
}
