//! Appending to one run's log.

use crate::head::{Head, HeadFile};
use crate::{Store, StoreError};
use cordon_core::{Event, EventPayload, Redactor, RunId, event::canonical_json};
use std::sync::Arc;

/// The open log of one run: appends events, chaining each to the one before, and keeps the
/// run's head record in step.
pub struct RunLog {
    store: Store,
    run_id: RunId,
    next_seq: u64,
    prev_hash: String,
    head: Option<HeadFile>,
    redactor: Option<Arc<Redactor>>,
}

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
            prev_hash,
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

    /// Appends one event and returns it as stored (with known secrets replaced). The event
    /// is durable when this returns.
    pub async fn append(&mut self, payload: &EventPayload) -> Result<Event, StoreError> {
        let ts = now_rfc3339();
        let mut event = Event::new(&self.run_id, self.next_seq, ts, payload, &self.prev_hash);
        if let Some(r) = &self.redactor
            && r.redact_value(&mut event.payload)
        {
            event = Event::from_parts(
                &self.run_id,
                event.seq,
                event.ts,
                event.kind,
                event.payload,
                &self.prev_hash,
            );
        }
        let Some(head) = &self.head else {
            self.insert(&event).await?;
            return Ok(self.advance(event));
        };
        let io = |e: std::io::Error| {
            StoreError::Io(format!(
                "cannot update the run's head record {}: {e}",
                head.path().display()
            ))
        };
        let _lock = head.lock().await.map_err(io)?;
        // Another process may have appended since this log was opened.
        match head.read() {
            Ok(Some(h)) if h.count == self.next_seq && h.last_hash == self.prev_hash => {}
            Ok(Some(_)) => {
                return Err(StoreError::Conflict {
                    run_id: self.run_id.to_string(),
                    seq: self.next_seq,
                });
            }
            Ok(None) => {}
            Err(source) => {
                return Err(StoreError::HeadRecord {
                    run_id: self.run_id.to_string(),
                    source,
                });
            }
        }
        let before = Head {
            count: self.next_seq,
            last_hash: self.prev_hash.clone(),
            pending: None,
        };
        head.write(&Head {
            pending: Some((self.next_seq + 1, event.hash.clone())),
            ..before.clone()
        })
        .map_err(io)?;
        if let Err(e) = self.insert(&event).await {
            // Nothing was stored: the head goes back to what it was.
            head.write(&before).map_err(io)?;
            return Err(e);
        }
        head.write(&Head {
            count: self.next_seq + 1,
            last_hash: event.hash.clone(),
            pending: None,
        })
        .map_err(io)?;
        Ok(self.advance(event))
    }

    async fn insert(&self, event: &Event) -> Result<(), StoreError> {
        let result = sqlx::query("INSERT INTO events (run_id, seq, ts, kind, payload, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)")
            .bind(event.run_id.as_str())
            .bind(event.seq as i64)
            .bind(&event.ts)
            .bind(&event.kind)
            .bind(canonical_json(&event.payload))
            .bind(&event.prev_hash)
            .bind(&event.hash)
            .execute(&self.store.pool)
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(StoreError::Conflict {
                run_id: self.run_id.to_string(),
                seq: event.seq,
            }),
            Err(e) => Err(e.into()),
        }
    }

    fn advance(&mut self, event: Event) -> Event {
        self.next_seq += 1;
        self.prev_hash = event.hash.clone();
        event
    }
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
