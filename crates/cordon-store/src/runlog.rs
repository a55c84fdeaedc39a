//! Appending to one run's log.

use crate::{Store, StoreError};
use cordon_core::{Event, EventPayload, RunId, event::canonical_json};

/// The open log of one run: appends events, chaining each to the one before.
pub struct RunLog {
    store: Store,
    run_id: RunId,
    next_seq: u64,
    prev_hash: String,
}

impl RunLog {
    pub(crate) fn new(store: Store, run_id: RunId, next_seq: u64, prev_hash: String) -> Self {
        RunLog {
            store,
            run_id,
            next_seq,
            prev_hash,
        }
    }

    /// The run this log belongs to.
    pub fn run_id(&self) -> &RunId {
        &self.run_id
    }

    /// The position the next event will take.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Appends one event and returns it as stored. The event is durable when this returns.
    pub async fn append(&mut self, payload: &EventPayload) -> Result<Event, StoreError> {
        let ts = now_rfc3339();
        let event = Event::new(&self.run_id, self.next_seq, ts, payload, &self.prev_hash);
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
            Ok(_) => {}
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Err(StoreError::Conflict {
                    run_id: self.run_id.to_string(),
                    seq: event.seq,
                });
            }
            Err(e) => return Err(e.into()),
        }
        self.next_seq += 1;
        self.prev_hash = event.hash.clone();
        Ok(event)
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
