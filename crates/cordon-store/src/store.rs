//! The store: opening the file, reading runs and events.
//!
//! Everything read back is untrusted: a stored row that is not what cordon wrote (text that
//! is not UTF-8, a payload that is not JSON, a sequence number that is not a number) is
//! reported as damage at its place, never a reason to panic, and never hides the other runs.

use crate::error::StoreErrorKind;
use crate::head::{self, Head, HeadSignature};
use crate::owner::{self, RunOwner};
use crate::signing::{self, HeadSigner, KeyFile, PublicKey};
use crate::{RunLog, StoreError};
use cordon_core::{Event, RunId, RunStatus};
use serde_json::Value;
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqliteLockingMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The schema version this code writes (`PRAGMA user_version`). Version 2 added the
/// `meta` table and head records; version 3 replaced the index of every event by kind
/// (which each append had to update in several places) with one of runs' first events.
const SCHEMA_VERSION: i64 = 3;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS events (
    run_id    TEXT    NOT NULL,
    seq       INTEGER NOT NULL,
    ts        TEXT    NOT NULL,
    kind      TEXT    NOT NULL,
    payload   TEXT    NOT NULL,
    prev_hash TEXT    NOT NULL,
    hash      TEXT    NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_run_starts ON events (run_id) WHERE seq = 0;
CREATE TRIGGER IF NOT EXISTS events_append_only_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'the run log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS events_append_only_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'the run log is append-only'); END;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"#;

/// Every column of an event, as raw bytes: decoding is checked here, not trusted to the
/// driver.
const EVENT_COLUMNS: &str = "CAST(run_id AS BLOB) AS run_id, seq, CAST(ts AS BLOB) AS ts, \
    CAST(kind AS BLOB) AS kind, CAST(payload AS BLOB) AS payload, \
    CAST(prev_hash AS BLOB) AS prev_hash, CAST(hash AS BLOB) AS hash";

/// A run, as listed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunSummary {
    /// The run's id.
    pub run_id: RunId,
    /// When it started.
    pub started: String,
    /// When its last event was written.
    pub updated: String,
    /// The agent's name.
    pub agent: String,
    /// `PROVIDER:MODEL`.
    pub model: String,
    /// Where it stands, from its last status-changing event.
    pub status: RunStatus,
    /// How many events it has.
    pub events: u64,
    /// The task it was given.
    pub task: String,
    /// The run whose call started it, when it is a sub-agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<RunId>,
    /// Set when the run's stored record is damaged (`cordon verify` says where).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub damaged: Option<String>,
}

/// A checkpoint a run recorded: which snapshot holds its workspace at that point.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CheckpointRef {
    /// The run.
    pub run_id: RunId,
    /// The checkpoint event's position in the run.
    pub seq: u64,
    /// The snapshot's id.
    pub snapshot_id: String,
}

/// One stored row of a run: an event, or what is wrong with it.
#[derive(Debug, Clone)]
pub enum StoredRow {
    /// A row that decodes into an event (its hash is checked separately).
    Event(Event),
    /// A row that does not decode.
    Damaged {
        /// Its position, when that much could be read.
        seq: Option<u64>,
        /// What is wrong.
        reason: String,
    },
}

/// The name `resolve` takes for the newest run.
pub(crate) const LAST: &str = "last";
/// Where a UUIDv7 run id's random part starts (after `tttttttt-tttt-`).
const RANDOM_FROM: usize = 14;
/// How many matching runs an ambiguous id's error names.
pub(crate) const CANDIDATES_SHOWN: usize = 5;

/// A run store: one SQLite file holding the events of many runs, and a directory of run
/// heads beside it.
#[derive(Clone)]
pub struct Store {
    pub(crate) pool: SqlitePool,
    /// Flushes since the WAL was last folded back into the database.
    pub(crate) since_checkpoint: std::sync::Arc<std::sync::atomic::AtomicU32>,
    path: PathBuf,
    heads: PathBuf,
    read_only: bool,
    /// What signs this store's heads: the key file at `key_path`, read (or made) on first
    /// use, unless [`Store::set_signer`] gave another.
    signer: std::sync::Arc<std::sync::OnceLock<Result<std::sync::Arc<dyn HeadSigner>, String>>>,
    key_path: PathBuf,
    /// Set when this process made the store's key: the heads recorded before it are signed
    /// by the next flush (see [`Store::sign_earlier_heads`]).
    made_key: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// The public key once read from the key files: `verify --all` and every `open_run`
    /// ask for it, and it does not change while the store is open.
    public: std::sync::Arc<std::sync::OnceLock<PublicKey>>,
}

impl Store {
    /// Opens (creating if needed) the store at `path` for reading and writing.
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        let open_err = |message: String, kind| StoreError::Open {
            path: path.to_path_buf(),
            message,
            kind,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                open_err(
                    format!("cannot create {}: {e}", dir.display()),
                    StoreErrorKind::BadInput,
                )
            })?;
        }
        check_not_truncated(path)?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            // The WAL is folded back into the database in the background (see
            // `RunLog::flush`), not by whichever append happens to cross the threshold.
            .pragma("wal_autocheckpoint", "0")
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|e| classify_open(path, e))?;
        let version: i64 = sqlx::query_scalar("PRAGMA user_version")
            .fetch_one(&pool)
            .await
            .map_err(|e| classify_open(path, e))?;
        if version > SCHEMA_VERSION {
            return Err(open_err(
                format!(
                    "it was written by a newer cordon (schema {version}, this one knows {SCHEMA_VERSION}); upgrade cordon"
                ),
                StoreErrorKind::BadInput,
            ));
        }
        if version < SCHEMA_VERSION {
            migrate(&pool, version)
                .await
                .map_err(|e| classify_open(path, e))?;
        }
        Ok(Store {
            pool,
            since_checkpoint: Default::default(),
            path: path.to_path_buf(),
            heads: head::dir_for(path),
            read_only: false,
            signer: Default::default(),
            key_path: signing::default_key_path(path),
            made_key: Default::default(),
            public: Default::default(),
        })
    }

    /// Opens an existing store only to read it: nothing is created or written, so this works
    /// on a full disk and on a file cordon may not write.
    pub async fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        if !path.exists() {
            return Err(StoreError::Open {
                path: path.to_path_buf(),
                message: "there is no such file (no run has been recorded there yet)".into(),
                kind: StoreErrorKind::BadInput,
            });
        }
        check_not_truncated(path)?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .read_only(true)
            .create_if_missing(false)
            .busy_timeout(Duration::from_secs(10));
        // Reading a WAL database needs its -shm file, which SQLite cannot create or size in
        // a directory it may not write or on a full disk. Then the WAL is read in exclusive
        // locking mode, which keeps the WAL's index in memory instead; a read-only file cannot
        // take the write lock that mode asks for, so that attempt uses SQLite's VFS without
        // file locks (a writer working at the same moment could make this one read fail, never
        // change the file). With no WAL or an empty one, the file alone is the whole store and
        // is read as it is.
        let mut attempts = vec![
            options.clone(),
            options
                .clone()
                .vfs("unix-none")
                .locking_mode(SqliteLockingMode::Exclusive),
        ];
        if std::fs::metadata(wal_path(path)).map_or(true, |m| m.len() == 0) {
            attempts.push(options.immutable(true));
        }
        let mut last = None;
        let mut opened = None;
        for o in attempts {
            let tried = async {
                let pool = SqlitePoolOptions::new()
                    .max_connections(1)
                    .connect_with(o)
                    .await?;
                sqlx::query_scalar::<_, i64>("SELECT count(*) FROM sqlite_master")
                    .fetch_one(&pool)
                    .await?;
                Ok::<_, sqlx::Error>(pool)
            };
            match tried.await {
                Ok(pool) => {
                    opened = Some(pool);
                    break;
                }
                Err(e) => {
                    let damaged = matches!(crate::error::sqlite_code(&e), Some(11 | 26));
                    last = Some(e);
                    if damaged {
                        break;
                    }
                }
            }
        }
        let pool = match (opened, last) {
            (Some(pool), _) => pool,
            (None, Some(e)) => return Err(classify_open(path, e)),
            (None, None) => unreachable!("at least one attempt is made"),
        };
        let version: i64 = sqlx::query_scalar("PRAGMA user_version")
            .fetch_one(&pool)
            .await
            .map_err(|e| classify_open(path, e))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::Open {
                path: path.to_path_buf(),
                message: format!(
                    "it was written by a newer cordon (schema {version}); upgrade cordon"
                ),
                kind: StoreErrorKind::BadInput,
            });
        }
        Ok(Store {
            pool,
            since_checkpoint: Default::default(),
            path: path.to_path_buf(),
            heads: head::dir_for(path),
            read_only: true,
            signer: Default::default(),
            key_path: signing::default_key_path(path),
            made_key: Default::default(),
            public: Default::default(),
        })
    }

    /// Closes the store's connections (which also folds its write-ahead log into the file).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory holding the runs' head records.
    pub fn heads_dir(&self) -> &Path {
        &self.heads
    }

    /// Signs this store's heads with `signer` instead of the key file beside the store
    /// (`cordon --signing-key FILE`, or a KMS). Call it before the store is cloned.
    pub fn set_signer(&mut self, signer: std::sync::Arc<dyn HeadSigner>) {
        let slot = std::sync::OnceLock::new();
        let _ = slot.set(Ok(signer));
        self.signer = std::sync::Arc::new(slot);
    }

    /// Signs heads with the key in `path` (PKCS#8 PEM), which must exist.
    pub fn use_key_file(&mut self, path: &Path) -> Result<(), StoreError> {
        let key = KeyFile::load(path).map_err(|e| StoreError::Signing(e.to_string()))?;
        self.key_path = path.to_path_buf();
        self.set_signer(std::sync::Arc::new(key));
        Ok(())
    }

    /// Where the store's signing key is (made there on first use when no other was given).
    pub fn signing_key_path(&self) -> &Path {
        &self.key_path
    }

    /// What signs this store's heads: the key given, or the key file beside the store (made
    /// now if there is none).
    pub fn signer(&self) -> Result<std::sync::Arc<dyn HeadSigner>, StoreError> {
        self.refuse_if_read_only()?;
        self.signer
            .get_or_init(|| {
                if !self.key_path.exists()
                    && let Some(key) = self.signed_heads_key()
                {
                    return Err(format!(
                        "the store's heads are signed by {key}, but its key file {} is missing: restore it, or give that key with --signing-key (a new key would sign whatever the store now holds)",
                        self.key_path.display()
                    ));
                }
                KeyFile::load_or_make(&self.key_path)
                    .map(|(k, made)| {
                        if made {
                            self.made_key
                                .store(true, std::sync::atomic::Ordering::SeqCst);
                        }
                        std::sync::Arc::new(k) as std::sync::Arc<dyn HeadSigner>
                    })
                    .map_err(|e| e.to_string())
            })
            .clone()
            .map_err(StoreError::Signing)
    }

    /// Makes the store ready to record: its key read (or made), and, when this call made it,
    /// the heads of the runs recorded before it signed. Returns the key that will sign.
    pub async fn ready_to_sign(&self) -> Result<PublicKey, StoreError> {
        let key = self.signer()?.public_key();
        self.sign_earlier_heads().await?;
        Ok(key)
    }

    /// The key some head in the store is signed with, if any is.
    fn signed_heads_key(&self) -> Option<String> {
        head::list(&self.heads).into_iter().find_map(|run| {
            head::read(&self.heads, &run)
                .ok()
                .flatten()
                .and_then(|h| h.signature)
                .map(|s| s.key)
        })
    }

    /// The public key of this store's signing key, without making one: `None` when the
    /// store has never signed.
    pub fn public_key(&self) -> Result<Option<PublicKey>, StoreError> {
        if let Some(Ok(signer)) = self.signer.get() {
            return Ok(Some(signer.public_key()));
        }
        if let Some(key) = self.public.get() {
            return Ok(Some(*key));
        }
        // The private key, when this user may read it, is what signs: its public half is the
        // one to trust (a `.pub` beside it that differs would only mislead). Otherwise the
        // `.pub` file.
        let read = match PublicKey::from_file(&self.key_path) {
            Ok(key) => key,
            Err(_) => {
                let public = signing::public_path(&self.key_path);
                let Some(path) = [public, self.key_path.clone()]
                    .into_iter()
                    .find(|p| p.exists())
                else {
                    return Ok(None);
                };
                PublicKey::from_file(&path).map_err(|e| StoreError::Signing(e.to_string()))?
            }
        };
        Ok(Some(*self.public.get_or_init(|| read)))
    }

    /// When this process has just made the store's key: signs the head of every run recorded
    /// before it (making a head for a run that has none), as it stands now. From then on a
    /// store with a key expects every run's head to be signed, so no marker that someone
    /// editing the store could change decides which runs must be. A head that does not agree
    /// with its run's events is left as it is, for `verify` to report.
    pub(crate) async fn sign_earlier_heads(&self) -> Result<(), StoreError> {
        if !self
            .made_key
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            return Ok(());
        }
        let io = |e: std::io::Error| StoreError::Io(format!("cannot sign the earlier heads: {e}"));
        for run_id in self.run_ids().await? {
            let Some(row) = sqlx::query(
                "SELECT seq, CAST(hash AS BLOB) AS hash FROM events WHERE run_id = ? ORDER BY seq DESC LIMIT 1",
            )
            .bind(run_id.as_str())
            .fetch_optional(&self.pool)
            .await?
            else {
                continue;
            };
            let (Ok(seq), Ok(hash)) = (column_u64(&row, "seq"), column_text(&row, "hash")) else {
                continue;
            };
            let Some(file) =
                head::HeadFile::open(&self.heads, run_id.as_str(), true).map_err(io)?
            else {
                continue;
            };
            let _lock = file.lock().await.map_err(io)?;
            let unsigned = match file.read() {
                Ok(None) => true,
                Ok(Some(h)) => {
                    h.signature.is_none() && h.pending.is_none() && h.agrees(seq + 1, &hash)
                }
                Err(_) => false,
            };
            if unsigned {
                file.write(&Head {
                    count: seq + 1,
                    last_hash: hash.clone(),
                    pending: None,
                    pending_signature: None,
                    signature: Some(self.sign_head(&run_id, seq + 1, &hash)?),
                })
                .map_err(io)?;
            }
        }
        Ok(())
    }

    /// The signed head of `run_id` at `count` events ending with `last_hash`.
    pub(crate) fn sign_head(
        &self,
        run_id: &RunId,
        count: u64,
        last_hash: &str,
    ) -> Result<HeadSignature, StoreError> {
        let signer = self.signer()?;
        let message = signing::head_message(run_id.as_str(), count, last_hash);
        let signature = signer
            .sign(message.as_bytes())
            .map_err(|e| StoreError::Signing(e.to_string()))?;
        Ok(HeadSignature {
            key: signer.public_key().to_text(),
            signature: hex::encode(signature),
        })
    }

    fn refuse_if_read_only(&self) -> Result<(), StoreError> {
        if self.read_only {
            return Err(StoreError::Io(format!(
                "the run store {} was opened read-only",
                self.path.display()
            )));
        }
        Ok(())
    }

    /// Starts the log of a new run. Its first append must be `run_started`.
    pub async fn create_run(&self, run_id: &RunId) -> Result<RunLog, StoreError> {
        self.refuse_if_read_only()?;
        let file = head::HeadFile::open(&self.heads, run_id.as_str(), true)
            .map_err(|e| StoreError::Io(format!("cannot create the run's head record: {e}")))?;
        if let Some(f) = &file {
            let existing = f.read().map_err(|source| StoreError::HeadRecord {
                run_id: run_id.to_string(),
                source,
            })?;
            if existing.is_some() {
                return Err(StoreError::Head {
                    run_id: run_id.to_string(),
                    message: "a head record for this new run already exists".into(),
                });
            }
            // Signed from the start, so an emptied run cannot pass for a new one.
            let signature = match self.signer() {
                Ok(_) => Some(self.sign_head(run_id, 0, cordon_core::event::GENESIS_HASH)?),
                Err(_) => None,
            };
            f.write(&Head {
                count: 0,
                last_hash: cordon_core::event::GENESIS_HASH.to_string(),
                pending: None,
                pending_signature: None,
                signature,
            })
            .map_err(|e| StoreError::Io(format!("cannot write {}: {e}", f.path().display())))?;
        }
        Ok(RunLog::new(
            self.clone(),
            run_id.clone(),
            0,
            cordon_core::event::GENESIS_HASH.to_string(),
            file,
        ))
    }

    /// Opens an existing run's log to append more events after its last one. Refuses a run
    /// whose head record does not match its events.
    pub async fn open_run(&self, run_id: &RunId) -> Result<RunLog, StoreError> {
        self.refuse_if_read_only()?;
        // A key made by this process signs the earlier heads first (a no-op otherwise).
        self.sign_earlier_heads().await?;
        let row = sqlx::query(
            "SELECT seq, CAST(hash AS BLOB) AS hash FROM events WHERE run_id = ? ORDER BY seq DESC LIMIT 1",
        )
        .bind(run_id.as_str())
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NoSuchRun(run_id.to_string()))?;
        let seq = column_u64(&row, "seq").map_err(|m| corrupt(run_id, 0, m.to_string()))?;
        let hash = column_text(&row, "hash").map_err(|m| corrupt(run_id, seq, m.to_string()))?;
        let count = seq + 1;
        let file = head::HeadFile::open(&self.heads, run_id.as_str(), false)
            .map_err(|e| StoreError::Io(format!("cannot open the run's head record: {e}")))?;
        let file = match file {
            Some(f) => {
                let recorded = f.read().map_err(|source| StoreError::HeadRecord {
                    run_id: run_id.to_string(),
                    source,
                })?;
                match recorded {
                    Some(h) if h.agrees(count, &hash) => {
                        // A store with a key signs every head: an unsigned one was put there
                        // by someone without it, and is not signed now by appending to it.
                        if h.signature.is_none() && self.public_key()?.is_some() {
                            return Err(StoreError::Head {
                                run_id: run_id.to_string(),
                                message: "its head record is not signed, though the store signs every head: it was replaced by someone without the key".into(),
                            });
                        }
                        if !h.at_head(count, &hash)
                            && h.signature.is_some()
                            && !crate::verify::pending_is_signed(run_id, &h)
                        {
                            return Err(StoreError::Head {
                                run_id: run_id.to_string(),
                                message: format!(
                                    "events {} to {} are past its signed head and no signature covers them: they were added by someone without the key",
                                    h.count,
                                    count - 1
                                ),
                            });
                        }
                        if h.count != count || h.pending.is_some() {
                            // A crash between an append and its head update: settle it.
                            f.write(&Head {
                                count,
                                last_hash: hash.clone(),
                                pending: None,
                                pending_signature: None,
                                signature: Some(self.sign_head(run_id, count, &hash)?),
                            })
                            .map_err(|e| StoreError::Io(e.to_string()))?;
                        }
                        Some(f)
                    }
                    Some(h) => {
                        return Err(StoreError::Head {
                            run_id: run_id.to_string(),
                            message: head_mismatch(&h, count, &hash),
                        });
                    }
                    None => {
                        return Err(StoreError::Head {
                            run_id: run_id.to_string(),
                            message: "its head record is empty".into(),
                        });
                    }
                }
            }
            None if self.expects_head(run_id).await? => {
                return Err(StoreError::Head {
                    run_id: run_id.to_string(),
                    message: "its head record is missing, so events missing at its end could not be noticed".into(),
                });
            }
            None => {
                // A run recorded before heads existed: it gets one from now on.
                let f = head::HeadFile::open(&self.heads, run_id.as_str(), true)
                    .map_err(|e| StoreError::Io(e.to_string()))?;
                if let Some(f) = &f {
                    f.write(&Head {
                        count,
                        last_hash: hash.clone(),
                        pending: None,
                        pending_signature: None,
                        signature: Some(self.sign_head(run_id, count, &hash)?),
                    })
                    .map_err(|e| StoreError::Io(e.to_string()))?;
                }
                f
            }
        };
        Ok(RunLog::new(self.clone(), run_id.clone(), count, hash, file))
    }

    /// Counts a flush; every so often folds the WAL back into the database on another
    /// connection, in a task of its own, so no append waits for it (a passive checkpoint
    /// never blocks a writer).
    pub(crate) fn after_flush(&self) {
        const EVERY: u32 = 64;
        let n = self
            .since_checkpoint
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if n + 1 < EVERY {
            return;
        }
        self.since_checkpoint
            .store(0, std::sync::atomic::Ordering::Relaxed);
        let pool = self.pool.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                // A checkpoint that fails (busy) leaves the WAL as it is: the next one folds it.
                let _ = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                    .execute(&pool)
                    .await;
            });
        }
    }

    /// Asks a running run to pause at its next step boundary, from this process or any
    /// other on this host: the runner looks for the request between steps (a file beside
    /// the run's head), records the pause and withdraws the request.
    pub fn request_pause(&self, run_id: &RunId) -> Result<(), StoreError> {
        self.refuse_if_read_only()?;
        let marker = head::pause_marker(&self.heads, run_id.as_str())
            .ok_or_else(|| StoreError::NoSuchRun(run_id.to_string()))?;
        std::fs::create_dir_all(&self.heads)
            .and_then(|()| std::fs::write(&marker, b"pause\n"))
            .map_err(|e| {
                StoreError::Io(format!(
                    "cannot ask run {run_id} to pause ({}): {e}",
                    marker.display()
                ))
            })
    }

    /// Claims a run for this process while it drives it: the returned guard holds a lock
    /// that others see (see [`Store::owner`]) until it is dropped or the process dies.
    /// Fails with [`StoreError::Busy`] when another process holds it.
    pub fn claim_run(&self, run_id: &RunId) -> Result<Option<RunOwner>, StoreError> {
        self.refuse_if_read_only()?;
        owner::claim(&self.heads, run_id.as_str()).map_err(|e| match e {
            owner::ClaimError::Busy(pid) => StoreError::Busy {
                run_id: run_id.to_string(),
                pid,
            },
            owner::ClaimError::Io(path, e) => StoreError::Io(format!(
                "cannot claim run {run_id} ({}): {e}",
                path.display()
            )),
        })
    }

    /// The process driving a run now, if one is (`Some(None)` when its pid is unknown).
    pub fn owner(&self, run_id: &RunId) -> Option<Option<u32>> {
        owner::holder(&self.heads, run_id.as_str())
    }

    /// A run's status as people should see it: a run whose log says it is running while no
    /// process drives it was interrupted (killed, or its machine went down).
    pub fn live_status(&self, run_id: &RunId, recorded: RunStatus) -> RunStatus {
        if recorded == RunStatus::Running && self.owner(run_id).is_none() {
            RunStatus::Interrupted
        } else {
            recorded
        }
    }

    /// Whether someone asked this run to pause (one `stat`, cheap enough for every step).
    pub fn pause_requested(&self, run_id: &RunId) -> bool {
        head::pause_marker(&self.heads, run_id.as_str()).is_some_and(|m| m.exists())
    }

    /// Withdraws a request to pause (the run paused, or is being resumed on purpose).
    pub fn clear_pause(&self, run_id: &RunId) {
        if let Some(m) = head::pause_marker(&self.heads, run_id.as_str()) {
            let _ = std::fs::remove_file(m);
        }
    }

    /// A run's head record, if it has one.
    pub fn head(&self, run_id: &RunId) -> Result<Option<Head>, StoreError> {
        head::read(&self.heads, run_id.as_str()).map_err(|source| StoreError::HeadRecord {
            run_id: run_id.to_string(),
            source,
        })
    }

    /// Whether this run must have a head record: it was created after this store began
    /// keeping them.
    pub async fn expects_head(&self, run_id: &RunId) -> Result<bool, StoreError> {
        self.meta_since("heads_since", run_id).await
    }

    /// Whether `run_id` is at or after the run named by the meta entry `key`.
    async fn meta_since(&self, key: &str, run_id: &RunId) -> Result<bool, StoreError> {
        let since: Option<Vec<u8>> =
            match sqlx::query_scalar("SELECT CAST(value AS BLOB) FROM meta WHERE key = ?")
                .bind(key)
                .fetch_optional(&self.pool)
                .await
            {
                Ok(v) => v,
                // A store from before version 2, read without migrating.
                Err(sqlx::Error::Database(e)) if e.message().contains("no such table") => None,
                Err(e) => return Err(e.into()),
            };
        Ok(since
            .and_then(|s| String::from_utf8(s).ok())
            .is_some_and(|since| run_id.as_str() >= since.as_str()))
    }

    /// Every stored row of a run, in order, each decoded or described as damaged.
    pub async fn rows(&self, run_id: &RunId) -> Result<Vec<StoredRow>, StoreError> {
        // Built from constants only; the run id is bound.
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE run_id = ? ORDER BY seq"
        )))
        .bind(run_id.as_str())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| decode_row(run_id, r)).collect())
    }

    /// Every event of a run, in order; the first damaged row is an error.
    pub async fn events(&self, run_id: &RunId) -> Result<Vec<Event>, StoreError> {
        self.rows(run_id)
            .await?
            .into_iter()
            .enumerate()
            .map(|(i, r)| match r {
                StoredRow::Event(e) => Ok(e),
                StoredRow::Damaged { seq, reason } => {
                    Err(corrupt(run_id, seq.unwrap_or(i as u64), reason))
                }
            })
            .collect()
    }

    /// The run `id` names: `last` (the newest run that is not a sub-agent), a whole id, the
    /// start of one, or any
    /// unique piece of an id's random part (the part after the time it starts with). Runs
    /// whose events are gone but whose head records remain are found too, so that `verify`
    /// can say what happened to them.
    pub async fn resolve(&self, id: &str) -> Result<RunId, StoreError> {
        let id = id.trim();
        if id.is_empty() {
            return Err(StoreError::NoSuchRun(id.to_string()));
        }
        let all = self.run_ids().await?;
        if id == LAST {
            // Run ids are UUIDv7: they sort by the time the run started. A sub-agent's run
            // is not the last run: its tree's first run is (which resumes it).
            let spawned: std::collections::HashSet<String> = sqlx::query_scalar::<_, Vec<u8>>(
                "SELECT CAST(run_id AS BLOB) FROM events WHERE kind = 'spawned_by'",
            )
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .collect();
            return all
                .into_iter()
                .filter(|r| !spawned.contains(r.as_str()))
                .max_by(|a, b| a.as_str().cmp(b.as_str()))
                .ok_or_else(|| StoreError::NoSuchRun(id.to_string()));
        }
        if let Some(exact) = all.iter().find(|r| r.as_str() == id) {
            return Ok(exact.clone());
        }
        let id_lower = id.to_ascii_lowercase();
        let mut matches: Vec<&RunId> = all
            .iter()
            .filter(|r| r.as_str().starts_with(&id_lower))
            .collect();
        if matches.is_empty() {
            // Any unique piece of the random part (after the time the id starts with).
            matches = all
                .iter()
                .filter(|r| {
                    r.as_str()
                        .get(RANDOM_FROM..)
                        .is_some_and(|rest| rest.contains(&id_lower))
                })
                .collect();
        }
        match matches.as_slice() {
            [] => Err(StoreError::NoSuchRun(id.to_string())),
            [one] => Ok((*one).clone()),
            _ => {
                let count = matches.len();
                matches.sort_by(|a, b| b.as_str().cmp(a.as_str()));
                Err(StoreError::Ambiguous {
                    prefix: id.to_string(),
                    count,
                    candidates: matches
                        .iter()
                        .take(CANDIDATES_SHOWN)
                        .map(|r| r.as_str().to_string())
                        .collect(),
                })
            }
        }
    }

    /// The newest run in the conversation called `name` (the run whose
    /// `conversation_continued` event names it), if any. A pointer only: the run must still
    /// be checked before its history is used.
    pub async fn latest_in_conversation(&self, name: &str) -> Result<Option<RunId>, StoreError> {
        let id: Option<Vec<u8>> = sqlx::query_scalar(
            "SELECT CAST(run_id AS BLOB) FROM events WHERE kind = 'conversation_continued' \
             AND json_extract(payload, '$.conversation') = ? ORDER BY run_id DESC LIMIT 1",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        Ok(id.map(|b| RunId::from(String::from_utf8_lossy(&b).into_owned())))
    }

    /// The sub-agent runs that calls of `parent` started (`spawned_by`), oldest first: each
    /// run's id and the call that started it.
    pub async fn children(&self, parent: &RunId) -> Result<Vec<(RunId, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT CAST(run_id AS BLOB) AS run_id, CAST(json_extract(payload, '$.call_id') AS BLOB) AS call_id \
             FROM events WHERE kind = 'spawned_by' AND json_extract(payload, '$.parent') = ? ORDER BY run_id",
        )
        .bind(parent.as_str())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some((
                    RunId::from(column_text(r, "run_id").ok()?),
                    column_text(r, "call_id").ok()?,
                ))
            })
            .collect())
    }

    /// The run that started `run` as a sub-agent, and the call it used, if it is one.
    pub async fn parent(&self, run: &RunId) -> Result<Option<(RunId, String)>, StoreError> {
        let row = sqlx::query(
            "SELECT CAST(json_extract(payload, '$.parent') AS BLOB) AS parent, CAST(json_extract(payload, '$.call_id') AS BLOB) AS call_id \
             FROM events WHERE kind = 'spawned_by' AND run_id = ? LIMIT 1",
        )
        .bind(run.as_str())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.and_then(|r| {
            Some((
                RunId::from(column_text(&r, "parent").ok()?),
                column_text(&r, "call_id").ok()?,
            ))
        }))
    }

    /// The first run of `run`'s tree of sub-agents (`run` itself when it is no sub-agent):
    /// the one whose resume goes on with the whole tree.
    pub async fn tree_root(&self, run: &RunId) -> Result<RunId, StoreError> {
        let mut at = run.clone();
        // Bounded: a store that links runs in a loop does not hold this forever.
        for _ in 0..64 {
            match self.parent(&at).await? {
                Some((parent, _)) if parent != *run => at = parent,
                _ => break,
            }
        }
        Ok(at)
    }

    /// Every run below `root` in its tree of sub-agents, parents before their children
    /// (bounded: a tree of more than 10 000 runs is cut there).
    pub async fn descendants(&self, root: &RunId) -> Result<Vec<RunId>, StoreError> {
        let mut found = Vec::new();
        let mut next = 0;
        let mut parents = vec![root.clone()];
        while let Some(parent) = parents.get(next).cloned() {
            next += 1;
            for (child, _) in self.children(&parent).await? {
                if found.len() >= 10_000 || found.contains(&child) || child == *root {
                    continue;
                }
                found.push(child.clone());
                parents.push(child);
            }
        }
        Ok(found)
    }

    /// Every run the store knows of: from its events and from its head records.
    pub async fn run_ids(&self) -> Result<Vec<RunId>, StoreError> {
        let mut ids: Vec<String> =
            sqlx::query_scalar::<_, Vec<u8>>("SELECT DISTINCT CAST(run_id AS BLOB) FROM events")
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .collect();
        ids.extend(head::list(&self.heads));
        ids.sort();
        ids.dedup();
        Ok(ids.into_iter().map(RunId::from).collect())
    }

    /// Every checkpoint every run recorded, by run and position. Rows that cannot be read
    /// are left out (`cordon verify` reports them).
    pub async fn checkpoints(&self) -> Result<Vec<CheckpointRef>, StoreError> {
        let rows = sqlx::query(
            "SELECT CAST(run_id AS BLOB) AS run_id, seq, CAST(payload AS BLOB) AS payload FROM events WHERE kind = 'checkpoint' ORDER BY run_id, seq",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                let payload: Value = serde_json::from_str(&column_text(r, "payload").ok()?).ok()?;
                Some(CheckpointRef {
                    run_id: RunId::from(column_text(r, "run_id").ok()?),
                    seq: column_u64(r, "seq").ok()?,
                    snapshot_id: payload["snapshot_id"].as_str()?.to_string(),
                })
            })
            .collect())
    }

    /// Runs, newest first: at most `limit`, and only those with status `want` if given. A
    /// run whose stored rows are damaged is listed with what is wrong, not left out.
    pub async fn list_runs(
        &self,
        want: Option<RunStatus>,
        limit: usize,
    ) -> Result<Vec<RunSummary>, StoreError> {
        let changing = RunStatus::CHANGING_KINDS
            .map(|k| format!("'{k}'"))
            .join(",");
        let sql = format!(
            "SELECT CAST(s.run_id AS BLOB) AS run_id, CAST(s.ts AS BLOB) AS started, CAST(s.payload AS BLOB) AS started_payload,
                (SELECT CAST(payload AS BLOB) FROM events u WHERE u.run_id = s.run_id AND u.kind = 'user_input' ORDER BY seq LIMIT 1) AS task,
                (SELECT CAST(kind AS BLOB) FROM events k WHERE k.run_id = s.run_id AND k.kind IN ({changing}) ORDER BY seq DESC LIMIT 1) AS last_kind,
                (SELECT seq FROM events c WHERE c.run_id = s.run_id ORDER BY seq DESC LIMIT 1) AS last_seq,
                (SELECT CAST(ts AS BLOB) FROM events l WHERE l.run_id = s.run_id ORDER BY seq DESC LIMIT 1) AS updated,
                (SELECT CAST(json_extract(payload, '$.parent') AS BLOB) FROM events p WHERE p.run_id = s.run_id AND p.kind = 'spawned_by' LIMIT 1) AS parent
             FROM events s WHERE s.seq = 0 ORDER BY s.run_id DESC"
        );
        // Built from constants only (the kinds that change a run's status).
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::new();
        for r in rows {
            let mut damaged = Vec::new();
            let mut text = |col: &'static str| -> String {
                match column_opt_text(&r, col) {
                    Ok(v) => v.unwrap_or_default(),
                    Err(e) => {
                        damaged.push(format!("{col}: {e}"));
                        String::new()
                    }
                }
            };
            let run_id = text("run_id");
            let started = text("started");
            let updated = text("updated");
            let last_kind = text("last_kind");
            let parent = Some(text("parent")).filter(|p| !p.is_empty());
            let (started_payload, task) = (text("started_payload"), text("task"));
            let json = |t: &str| serde_json::from_str::<Value>(t).unwrap_or(Value::Null);
            let (started_payload, task) = (json(&started_payload), json(&task));
            let recorded = RunStatus::after_kind(&last_kind).unwrap_or(RunStatus::Running);
            let status = self.live_status(&RunId::from(run_id.clone()), recorded);
            if want.is_some_and(|w| w != status) {
                continue;
            }
            let events = match column_u64(&r, "last_seq") {
                Ok(s) => s + 1,
                Err(e) => {
                    damaged.push(e.to_string());
                    0
                }
            };
            let str_of = |v: &Value| v.as_str().unwrap_or_default().to_string();
            out.push(RunSummary {
                run_id: RunId::from(run_id),
                started,
                updated,
                agent: str_of(&started_payload["agent"]["name"]),
                model: str_of(&started_payload["agent"]["model"]),
                status,
                events,
                task: str_of(&task["text"]),
                parent: parent.map(RunId::from),
                damaged: (!damaged.is_empty()).then(|| damaged.join("; ")),
            });
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }
}

/// Brings an older schema up to this version, in one transaction.
async fn migrate(pool: &SqlitePool, from: i64) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    if from < 3 {
        sqlx::query("DROP INDEX IF EXISTS events_by_kind")
            .execute(&mut *tx)
            .await?;
    }
    sqlx::raw_sql(SCHEMA).execute(&mut *tx).await?;
    if from < 2 {
        // Runs created from now on keep head records; older ones verify without them.
        sqlx::query("INSERT OR IGNORE INTO meta (key, value) VALUES ('heads_since', ?)")
            .bind(RunId::new().as_str())
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "PRAGMA user_version = {SCHEMA_VERSION}"
    )))
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

fn wal_path(db: &Path) -> PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push("-wal");
    db.with_file_name(name)
}

/// A store file of 0 bytes is not an empty store: it was truncated (SQLite would silently
/// treat it as new).
fn check_not_truncated(path: &Path) -> Result<(), StoreError> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() && m.len() == 0 => Err(StoreError::Open {
            path: path.to_path_buf(),
            message: "the file is empty (0 bytes): it was truncated, or is not a cordon store; restore it from a backup, or remove it to start a new store".into(),
            kind: StoreErrorKind::Damaged,
        }),
        _ => Ok(()),
    }
}

/// An open error with its kind: damaged file, full disk, or a path that cannot be used.
fn classify_open(path: &Path, e: sqlx::Error) -> StoreError {
    let code = crate::error::sqlite_code(&e);
    let (kind, message) = match code {
        Some(11) | Some(26) => (
            StoreErrorKind::Damaged,
            format!("the file is damaged or is not a cordon store ({e})"),
        ),
        Some(13) => (StoreErrorKind::Full, format!("the disk is full ({e})")),
        _ => (StoreErrorKind::BadInput, e.to_string()),
    };
    StoreError::Open {
        path: path.to_path_buf(),
        message,
        kind,
    }
}

pub(crate) fn corrupt(run_id: &RunId, seq: u64, message: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        run_id: run_id.to_string(),
        seq,
        message: message.into(),
    }
}

/// Why a head does not match the stored events.
pub(crate) fn head_mismatch(h: &Head, count: u64, last_hash: &str) -> String {
    if count < h.count {
        format!(
            "its head record says {} events were recorded, but the store holds {count}: events were deleted or lost",
            h.count
        )
    } else if count > h.count + u64::from(h.pending.is_some()) {
        format!(
            "the store holds {count} events, but its head record says {} were recorded: events were added outside cordon",
            h.count
        )
    } else {
        format!(
            "its last stored event's hash {}… is not the {}… its head record holds: the events were rewritten",
            &last_hash[..last_hash.len().min(16)],
            &h.last_hash[..h.last_hash.len().min(16)]
        )
    }
}

/// Why a stored row is not an event cordon wrote.
#[derive(Debug, thiserror::Error)]
enum RowDamage {
    #[error("its {col} cannot be read ({source})")]
    Unreadable {
        col: &'static str,
        source: sqlx::Error,
    },
    #[error("its {0} is not UTF-8 text")]
    NotUtf8(&'static str),
    #[error("its {0} is missing")]
    Missing(&'static str),
    #[error("its {0} is missing or not a non-negative number")]
    NotCount(&'static str),
    #[error("its payload is not JSON ({0})")]
    Payload(serde_json::Error),
    #[error("its payload is not stored as cordon writes it (canonical JSON): the text was edited")]
    NotCanonical,
}

fn column_bytes(r: &SqliteRow, col: &'static str) -> Result<Option<Vec<u8>>, RowDamage> {
    r.try_get::<Option<Vec<u8>>, _>(col)
        .map_err(|source| RowDamage::Unreadable { col, source })
}

fn column_opt_text(r: &SqliteRow, col: &'static str) -> Result<Option<String>, RowDamage> {
    column_bytes(r, col)?
        .map(|b| String::from_utf8(b).map_err(|_| RowDamage::NotUtf8(col)))
        .transpose()
}

fn column_text(r: &SqliteRow, col: &'static str) -> Result<String, RowDamage> {
    column_opt_text(r, col)?.ok_or(RowDamage::Missing(col))
}

fn column_u64(r: &SqliteRow, col: &'static str) -> Result<u64, RowDamage> {
    let v = r
        .try_get::<Option<i64>, _>(col)
        .map_err(|_| RowDamage::NotCount(col))?;
    v.and_then(|v| u64::try_from(v).ok())
        .ok_or(RowDamage::NotCount(col))
}

/// One row as an event, or why it is not one.
fn decode_row(run_id: &RunId, r: &SqliteRow) -> StoredRow {
    let seq = column_u64(r, "seq").ok();
    let event = || -> Result<Event, RowDamage> {
        let seq = column_u64(r, "seq")?;
        let stored_run = column_text(r, "run_id")?;
        let payload = column_text(r, "payload")?;
        let text = payload;
        let payload: Value = serde_json::from_str(&text).map_err(RowDamage::Payload)?;
        // The hash covers the parsed payload; the stored text must be exactly the canonical
        // form cordon wrote (or, for old events, the form it wrote then), or a reader of the
        // file (a duplicate key, which a JSON reader may take either way) could see other
        // than what verified.
        if cordon_core::canonical::canonical_json(&payload) != text
            && cordon_core::canonical::legacy_json(&payload) != text
        {
            return Err(RowDamage::NotCanonical);
        }
        Ok(Event {
            run_id: RunId::from(stored_run),
            seq,
            ts: column_text(r, "ts")?,
            kind: column_text(r, "kind")?,
            payload,
            prev_hash: column_text(r, "prev_hash")?,
            hash: column_text(r, "hash")?,
        })
    };
    match event() {
        Ok(mut e) => {
            // The query selected this run's rows; the chain check compares the hash, which
            // covers the run id.
            e.run_id = run_id.clone();
            StoredRow::Event(e)
        }
        Err(damage) => StoredRow::Damaged {
            seq,
            reason: damage.to_string(),
        },
    }
}
