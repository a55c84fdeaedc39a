//! Store errors.

use std::path::PathBuf;

/// Something went wrong reading or writing the run log.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file could not be opened or created.
    #[error("cannot open the run store {path}: {message}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// A query failed.
    #[error("run store error: {0}")]
    Db(#[from] sqlx::Error),
    /// No run has this id (or id prefix).
    #[error("no run matches '{0}' (see `cordon runs` for the ids)")]
    NoSuchRun(String),
    /// An id prefix matches more than one run.
    #[error("'{prefix}' matches {count} runs; give more of the id")]
    Ambiguous {
        /// What was given.
        prefix: String,
        /// How many runs match.
        count: usize,
    },
    /// Another writer appended to the run at the same time.
    #[error(
        "run {run_id} was appended to by another process at event {seq}; reload it and try again"
    )]
    Conflict {
        /// The run.
        run_id: String,
        /// The event position both wrote.
        seq: u64,
    },
    /// A stored payload is not JSON.
    #[error("run {run_id}, event {seq}: stored payload is not JSON: {message}")]
    Corrupt {
        /// The run.
        run_id: String,
        /// The event.
        seq: u64,
        /// The parser's message.
        message: String,
    },
    /// No place for the store could be found.
    #[error(
        "cannot find a place for the run store: set XDG_STATE_HOME or HOME, or pass --store FILE"
    )]
    NoHome,
}
