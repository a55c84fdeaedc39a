//! Appending to one run's log.

use crate::head::{Head, HeadFile};
use crate::{Store, StoreError};
use cordon_core::{Event, EventPayload, Redactor, RunId};
use std::sync::Arc;

/// The open log of one run: appends events, chaining each to the one before, and keeps the
/// run's head record in step.
///
/// Events can be buffered ([`RunLog::push`]) and stored together ([`RunLog::flush`]): one
/// statement and one head update for a whole step, instead of one per event. The caller
/// flushes before anything that depends on the events having happened (the harness: before
/// a model call, before a tool that acts runs, when a run stops); [`RunLog::append`] is both
/// at once.
pub struct RunLog {
    store: Store,
    run_id: RunId,
    /// The position the next pushed event takes.
    next_seq: u64,
    /// The hash of the last pushed event.
    prev_hash: String,
    /// The position and hash the store holds up to (before the buffered events).
    stored_seq: u64,
    stored_hash: String,
    /// Pushed, not yet stored: each event with its payload's canonical text.
    pending: Vec<(Event, String)>,
    head: Option<HeadFile>,
    redactor: Option<Arc<Redactor>>,
}

/// What [`RunLog::push`] added.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// The event, as it will be stored.
    pub event: Event,
    /// Whether secrets were replaced in it.
    pub redacted: bool,
    /// The `secrets_redacted` event pushed after it, when they were.
    pub note: Option<Event>,
}

/// The most rows one INSERT statement carries (seven parameters each, well under SQLite's
/// limit on parameters).
const ROWS_PER_STATEMENT: usize = 400;

impl RunLog {
    pub(crate) fn new(
        store: Store,
        run_id: RunId,
        next_seq: u64,
        prev_hash: String,
        head: Option<HeadFile>,
    ) -> Self {
        RunLog {
            store,
            run_id,
            next_seq,
            stored_seq: next_seq,
            stored_hash: prev_hash.clone(),
            prev_hash,
            pending: Vec::new(),
            head,
            redactor: None,
        }
    }

    /// Replaces every secret `redactor` knows, in every event appended from now on, before
    /// the event is hashed and stored.
    pub fn set_redactor(&mut self, redactor: Arc<Redactor>) {
        self.redactor = Some(redactor);
    }

    /// The run this log belongs to.
    pub fn run_id(&self) -> &RunId {
        &self.run_id
    }

    /// The position the next event will take.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// How many pushed events the store does not hold yet.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Adds an event to the log: chained and hashed now, stored by the next
    /// [`RunLog::flush`]. Returns it as it will be stored (secrets replaced), and, when
    /// secrets were replaced, the `secrets_redacted` event that says so, pushed after it.
    pub fn push(&mut self, payload: &EventPayload) -> Pushed {
        let (kind, mut value) = payload.to_parts();
        let found = match &self.redactor {
            Some(r) if !matches!(payload, EventPayload::SecretsRedacted { .. }) => {
                r.redact_value_counting(&mut value)
            }
            _ => Default::default(),
        };
        let event = self.push_parts(kind.clone(), value);
        let note = (!found.is_empty()).then(|| {
            let (kind, value) = EventPayload::SecretsRedacted {
                seq: event.seq,
                event: kind,
                found,
            }
            .to_parts();
            self.push_parts(kind, value)
        });
        Pushed {
            redacted: note.is_some(),
            event,
            note,
        }
    }

    fn push_parts(&mut self, kind: String, value: serde_json::Value) -> Event {
        let ts = now_rfc3339();
        let (event, text) = Event::from_parts_canonical(
            &self.run_id,
            self.next_seq,
            ts,
            kind,
            value,
            &self.prev_hash,
        );
        self.next_seq += 1;
        self.prev_hash = event.hash.clone();
        self.pending.push((event.clone(), text));
        event
    }

    /// Stores every pushed event, all or none, and moves the run's head record past them:
    /// they are durable (against a crash of this process) when this returns. On failure
    /// they stay pushed, so a later flush can store them still.
    pub async fn flush(&mut self) -> Result<(), StoreError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let Some(head) = &self.head else {
            self.insert_pending().await?;
            self.stored();
            return Ok(());
        };
        let io = |e: std::io::Error| {
            StoreError::Io(format!(
                "cannot update the run's head record {}: {e}",
                head.path().display()
            ))
        };
        // The key, made now if the store has none; and then the runs recorded before it get
        // signed heads too.
        self.store.signer()?;
        self.store.sign_earlier_heads().await?;
        let _lock = head.lock().await.map_err(io)?;
        // Another process may have appended since this log was opened.
        let signature = match head.read() {
            Ok(Some(h)) if h.count == self.stored_seq && h.last_hash == self.stored_hash => {
                h.signature
            }
            Ok(Some(_)) => {
                return Err(StoreError::Conflict {
                    run_id: self.run_id.to_string(),
                    seq: self.stored_seq,
                });
            }
            Ok(None) => None,
            Err(source) => {
                return Err(StoreError::HeadRecord {
                    run_id: self.run_id.to_string(),
                    source,
                });
            }
        };
        // Signed before anything is written, so a key that cannot sign stores nothing.
        let signed = self
            .store
            .sign_head(&self.run_id, self.next_seq, &self.prev_hash)?;

        let before = Head {
            count: self.stored_seq,
            last_hash: self.stored_hash.clone(),
            pending: None,
            pending_signature: None,
            signature,
        };
        head.write(&Head {
            pending: Some((self.next_seq, self.prev_hash.clone())),
            pending_signature: Some(signed.signature.clone()),
            ..before.clone()
        })
        .map_err(io)?;
        if let Err(e) = self.insert_pending().await {
            // Nothing was stored: the head goes back to what it was.
            head.write(&before).map_err(io)?;
            return Err(e);
        }
        head.write(&Head {
            count: self.next_seq,
            last_hash: self.prev_hash.clone(),
            pending: None,
            pending_signature: None,
            signature: Some(signed),
        })
        .map_err(io)?;
        self.stored();
        Ok(())
    }

    /// Lets go of the pushed events the store does not hold (after a flush failed for good):
    /// the log goes on from what the store holds.
    pub fn discard_pending(&mut self) {
        self.pending.clear();
        self.next_seq = self.stored_seq;
        self.prev_hash = self.stored_hash.clone();
    }

    /// Appends one event and stores it (with everything pushed before it); returns it as
    /// stored. The event is durable when this returns.
    pub async fn append(&mut self, payload: &EventPayload) -> Result<Event, StoreError> {
        let event = self.push(payload).event;
        self.flush().await?;
        Ok(event)
    }

    /// The pushed events are stored.
    fn stored(&mut self) {
        self.store.after_flush();
        self.pending.clear();
        self.stored_seq = self.next_seq;
        self.stored_hash = self.prev_hash.clone();
    }

    /// Inserts the pushed events: one statement, or one transaction of several.
    async fn insert_pending(&self) -> Result<(), StoreError> {
        let result = if self.pending.len() <= ROWS_PER_STATEMENT {
            insert_rows(&self.pending).execute(&self.store.pool).await
        } else {
            async {
                let mut tx = self.store.pool.begin().await?;
                for chunk in self.pending.chunks(ROWS_PER_STATEMENT) {
                    insert_rows(chunk).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(sqlx::sqlite::SqliteQueryResult::default())
            }
            .await
        };
        match result {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(StoreError::Conflict {
                run_id: self.run_id.to_string(),
                seq: self.stored_seq,
            }),
            Err(e) => Err(e.into()),
        }
    }
}

/// One INSERT of these events (each with its payload's canonical text).
fn insert_rows(
    events: &[(Event, String)],
) -> sqlx::query::Query<'static, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
    let mut sql = String::from(
        "INSERT INTO events (run_id, seq, ts, kind, payload, prev_hash, hash) VALUES ",
    );
    for i in 0..events.len() {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str("(?, ?, ?, ?, ?, ?, ?)");
    }
    // Placeholders only: every value is bound.
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for (e, payload) in events {
        q = q
            .bind(e.run_id.as_str().to_string())
            .bind(e.seq as i64)
            .bind(e.ts.clone())
            .bind(e.kind.clone())
            .bind(payload.clone())
            .bind(e.prev_hash.clone())
            .bind(e.hash.clone());
    }
    q
}

/// The current time, RFC 3339 in UTC with exactly three fractional digits, so that
/// timestamps line up and sort as text.
fn now_rfc3339() -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    let now = time::OffsetDateTime::now_utc();
    now.format(FORMAT)
        .unwrap_or_else(|_| now.unix_timestamp().to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_have_a_fixed_width() {
        let t = super::now_rfc3339();
        assert_eq!(t.len(), "2026-11-23T13:32:03.250Z".len(), "{t}");
        assert!(t.ends_with('Z'));
    }
}
