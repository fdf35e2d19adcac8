//! [`StoreError`] and [`CommitStats`]: what a store reports, in a file of their own because
//! both the stores ([`crate::store`], [`crate::persist`]) and the commit writer
//! ([`crate::group_commit`]) report them.

use std::path::PathBuf;

/// Counters of the commits a store made, for stats.
#[derive(Debug, Default, Clone, Copy)]
pub struct CommitStats {
    /// Transactions committed.
    pub commits: u64,
    /// Time spent committing, in microseconds.
    pub micros: u64,
    /// Commits that failed.
    pub failures: u64,
}

/// Why the durable store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The data directory could not be created or read.
    #[error("data directory {path}: {source}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The store file could not be opened: unreadable, corrupt, or in use by another process.
    #[error("cannot open the store {path}: {detail}")]
    Open {
        /// The store file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// A record in the store file does not decode: the file is corrupt or from another program.
    #[error("store {path} is corrupt: {detail}")]
    Corrupt {
        /// The store file.
        path: PathBuf,
        /// Which record, and why.
        detail: String,
    },
    /// A write could not be committed; nothing that depends on it was acknowledged.
    #[error("store {path}: write failed: {detail}")]
    Write {
        /// The store file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
}
