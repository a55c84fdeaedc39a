//! Store errors, each with the kind of trouble it is, so a front end can pick the exit code
//! and the hint.

use std::path::PathBuf;

/// What sort of trouble a [`StoreError`] is: what a front end should tell the user to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// The user named something that is not there or not usable (a missing store, an
    /// unknown run, a path that cannot be written).
    BadInput,
    /// The store's file or a run's record is damaged or was tampered with.
    Damaged,
    /// The disk holding the store is full.
    Full,
    /// Anything else (another writer, an I/O error).
    Other,
}

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
        /// What sort of trouble it is.
        kind: StoreErrorKind,
    },
    /// A query failed.
    #[error("the run store failed: {}", db_message(.0))]
    Db(sqlx::Error),
    /// No run has this id (or id prefix).
    #[error("no run matches '{0}'")]
    NoSuchRun(String),
    /// An id prefix matches more than one run.
    #[error(
        "'{prefix}' matches {count} runs ({}{}); give more of the id",
        candidates.join(", "),
        match count.saturating_sub(candidates.len()) {
            0 => String::new(),
            more => format!(" and {more} more"),
        }
    )]
    Ambiguous {
        /// What was given.
        prefix: String,
        /// How many runs match.
        count: usize,
        /// The newest of them (at most five).
        candidates: Vec<String>,
    },
    /// Another process is driving the run now.
    #[error(
        "run {run_id} is running in another process{}",
        pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
    )]
    Busy {
        /// The run.
        run_id: String,
        /// The process that holds it, as it recorded itself.
        pid: Option<u32>,
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
    /// A stored event cannot be read back: a column is not what cordon wrote.
    #[error("run {run_id}, event {seq}: {message}")]
    Corrupt {
        /// The run.
        run_id: String,
        /// The event.
        seq: u64,
        /// What is wrong with it.
        message: String,
    },
    /// A run's head record (its event count and last hash, kept beside the store) does not
    /// match its events, or is missing.
    #[error("run {run_id}: {message}")]
    Head {
        /// The run.
        run_id: String,
        /// What does not match.
        message: String,
    },
    /// A run's head record cannot be read.
    #[error("run {run_id}: {source}")]
    HeadRecord {
        /// The run.
        run_id: String,
        /// Why.
        source: crate::head::HeadError,
    },
    /// Reading or writing a file beside the database failed.
    #[error("{0}")]
    Io(String),
    /// The store's signing key could not be read, made or used.
    #[error("{0}")]
    Signing(String),
    /// No place for the store could be found.
    #[error(
        "cannot find a place for the run store: set XDG_STATE_HOME or HOME, or pass --store FILE"
    )]
    NoHome,
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Db(e)
    }
}

/// The SQLite result code of a database error (its primary code, without the extended bits).
pub(crate) fn sqlite_code(e: &sqlx::Error) -> Option<i64> {
    match e {
        sqlx::Error::Database(d) => d.code()?.parse::<i64>().ok().map(|c| c & 0xff),
        _ => None,
    }
}

/// SQLITE_CORRUPT, SQLITE_NOTADB: the file is not a sound database.
const DAMAGED_CODES: [i64; 2] = [11, 26];
/// SQLITE_FULL.
const FULL_CODE: i64 = 13;

fn db_message(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(d) => d.message().to_string(),
        other => other.to_string(),
    }
}

impl StoreError {
    /// What sort of trouble this is.
    pub fn kind(&self) -> StoreErrorKind {
        match self {
            StoreError::Open { kind, .. } => *kind,
            StoreError::Db(e) => match sqlite_code(e) {
                Some(c) if DAMAGED_CODES.contains(&c) => StoreErrorKind::Damaged,
                Some(FULL_CODE) => StoreErrorKind::Full,
                _ if matches!(e, sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_)) => {
                    StoreErrorKind::Damaged
                }
                _ => StoreErrorKind::Other,
            },
            StoreError::NoSuchRun(_)
            | StoreError::Ambiguous { .. }
            | StoreError::NoHome
            | StoreError::Busy { .. } => StoreErrorKind::BadInput,
            StoreError::Corrupt { .. } | StoreError::Head { .. } => StoreErrorKind::Damaged,
            StoreError::HeadRecord { source, .. } if source.is_damage() => StoreErrorKind::Damaged,
            StoreError::HeadRecord { .. } => StoreErrorKind::Other,
            StoreError::Conflict { .. } | StoreError::Io(_) | StoreError::Signing(_) => {
                StoreErrorKind::Other
            }
        }
    }

    /// [`StoreError::hint`], naming the run where the advice is about one.
    pub fn hint_text(&self) -> String {
        match self {
            StoreError::Busy { run_id, .. } => format!(
                "wait for it to end, or `cordon pause {run_id}` to stop it at its next step"
            ),
            _ => self.hint().to_string(),
        }
    }

    /// What the user can do about it, in one sentence.
    pub fn hint(&self) -> &'static str {
        match self.kind() {
            StoreErrorKind::BadInput => match self {
                StoreError::NoSuchRun(_) | StoreError::Ambiguous { .. } => {
                    "`cordon runs` lists the runs in this store"
                }
                StoreError::Busy { .. } => {
                    "wait for it to end, or `cordon pause RUN` to stop it at its next step"
                }
                _ => "pass a store file you can write with --store (or set CORDON_STORE)",
            },
            StoreErrorKind::Damaged => {
                "the store was damaged or tampered with: `cordon verify` names what is wrong; restore the file from a backup"
            }
            StoreErrorKind::Full => {
                "the disk holding the run store is full: free some space, then `cordon resume` continues the run"
            }
            StoreErrorKind::Other => "try again; `cordon verify` checks the run's record",
        }
    }
}
