//! The store: opening the file, reading runs and events.

use crate::{RunLog, StoreError};
use cordon_core::{Event, RunId, RunStatus};
use serde_json::Value;
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The schema version this code writes (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 1;

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
CREATE INDEX IF NOT EXISTS events_by_kind ON events (kind, run_id, seq);
CREATE TRIGGER IF NOT EXISTS events_append_only_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'the run log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS events_append_only_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'the run log is append-only'); END;
"#;

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
}

/// A run store: one SQLite file holding the events of many runs.
#[derive(Clone)]
pub struct Store {
    pub(crate) pool: SqlitePool,
    path: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the store at `path`.
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        let open_err = |message: String| StoreError::Open {
            path: path.to_path_buf(),
            message,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| open_err(format!("cannot create {}: {e}", dir.display())))?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|e| open_err(e.to_string()))?;
        let version: i64 = sqlx::query_scalar("PRAGMA user_version")
            .fetch_one(&pool)
            .await?;
        if version > SCHEMA_VERSION {
            return Err(open_err(format!(
                "it was written by a newer cordon (schema {version}, this one knows {SCHEMA_VERSION}); upgrade cordon"
            )));
        }
        sqlx::raw_sql(SCHEMA).execute(&pool).await?;
        sqlx::query(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))
            .execute(&pool)
            .await?;
        Ok(Store {
            pool,
            path: path.to_path_buf(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Starts the log of a new run. Its first append must be `run_started`.
    pub async fn create_run(&self, run_id: &RunId) -> Result<RunLog, StoreError> {
        Ok(RunLog::new(
            self.clone(),
            run_id.clone(),
            0,
            cordon_core::event::GENESIS_HASH.to_string(),
        ))
    }

    /// Opens an existing run's log to append more events after its last one.
    pub async fn open_run(&self, run_id: &RunId) -> Result<RunLog, StoreError> {
        let row =
            sqlx::query("SELECT seq, hash FROM events WHERE run_id = ? ORDER BY seq DESC LIMIT 1")
                .bind(run_id.as_str())
                .fetch_optional(&self.pool)
                .await?
                .ok_or_else(|| StoreError::NoSuchRun(run_id.to_string()))?;
        let seq: i64 = row.get("seq");
        Ok(RunLog::new(
            self.clone(),
            run_id.clone(),
            seq as u64 + 1,
            row.get("hash"),
        ))
    }

    /// Every event of a run, in order.
    pub async fn events(&self, run_id: &RunId) -> Result<Vec<Event>, StoreError> {
        let rows = sqlx::query("SELECT seq, ts, kind, payload, prev_hash, hash FROM events WHERE run_id = ? ORDER BY seq")
            .bind(run_id.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(|r| {
                let seq = r.get::<i64, _>("seq") as u64;
                let payload: String = r.get("payload");
                let payload: Value =
                    serde_json::from_str(&payload).map_err(|e| StoreError::Corrupt {
                        run_id: run_id.to_string(),
                        seq,
                        message: e.to_string(),
                    })?;
                Ok(Event {
                    run_id: run_id.clone(),
                    seq,
                    ts: r.get("ts"),
                    kind: r.get("kind"),
                    payload,
                    prev_hash: r.get("prev_hash"),
                    hash: r.get("hash"),
                })
            })
            .collect()
    }

    /// The run whose id is `id`, or starts with it.
    pub async fn resolve(&self, id: &str) -> Result<RunId, StoreError> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT run_id FROM events WHERE seq = 0 AND substr(run_id, 1, ?) = ? LIMIT 3",
        )
        .bind(id.len() as i64)
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        match ids.as_slice() {
            [] => Err(StoreError::NoSuchRun(id.to_string())),
            [one] => Ok(RunId::from(one.as_str())),
            _ if ids.iter().any(|i| i == id) => Ok(RunId::from(id)),
            _ => Err(StoreError::Ambiguous {
                prefix: id.to_string(),
                count: ids.len(),
            }),
        }
    }

    /// Runs, newest first: at most `limit`, and only those with status `want` if given.
    pub async fn list_runs(
        &self,
        want: Option<RunStatus>,
        limit: usize,
    ) -> Result<Vec<RunSummary>, StoreError> {
        let changing = RunStatus::CHANGING_KINDS
            .map(|k| format!("'{k}'"))
            .join(",");
        let sql = format!(
            "SELECT s.run_id, s.ts AS started, s.payload AS started_payload,
                (SELECT payload FROM events u WHERE u.run_id = s.run_id AND u.kind = 'user_input' ORDER BY seq LIMIT 1) AS task,
                (SELECT kind FROM events k WHERE k.run_id = s.run_id AND k.kind IN ({changing}) ORDER BY seq DESC LIMIT 1) AS last_kind,
                (SELECT seq FROM events c WHERE c.run_id = s.run_id ORDER BY seq DESC LIMIT 1) AS last_seq,
                (SELECT ts FROM events l WHERE l.run_id = s.run_id ORDER BY seq DESC LIMIT 1) AS updated
             FROM events s WHERE s.seq = 0 ORDER BY s.run_id DESC"
        );
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        let mut out = Vec::new();
        for r in rows {
            let status = r
                .get::<Option<String>, _>("last_kind")
                .and_then(|k| RunStatus::after_kind(&k))
                .unwrap_or(RunStatus::Running);
            if want.is_some_and(|w| w != status) {
                continue;
            }
            let json = |col: &str| -> Value {
                r.get::<Option<String>, _>(col)
                    .and_then(|t| serde_json::from_str(&t).ok())
                    .unwrap_or(Value::Null)
            };
            let (started, task) = (json("started_payload"), json("task"));
            let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
            out.push(RunSummary {
                run_id: RunId::from(r.get::<String, _>("run_id")),
                started: r.get("started"),
                updated: r.get("updated"),
                agent: text(&started["agent"]["name"]),
                model: text(&started["agent"]["model"]),
                status,
                events: r.get::<i64, _>("last_seq") as u64 + 1,
                task: text(&task["text"]),
            });
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }
}
