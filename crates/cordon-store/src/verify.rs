//! Checking a run's record: every stored row decodes, the hash chain holds from the genesis
//! hash, and the run's head record agrees with the last event.
//!
//! What this catches, and what it cannot, is listed in the README under `cordon verify`.

use crate::head::Head;
use crate::store::{StoredRow, head_mismatch};
use crate::{Store, StoreError};
use cordon_core::{RunId, verify_chain};

/// One thing wrong with a run's record.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Problem {
    /// The first event it concerns, when it concerns one.
    pub seq: Option<u64>,
    /// That event's kind, as stored.
    pub kind: Option<String>,
    /// What does not hold.
    pub reason: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.seq, &self.kind) {
            (Some(seq), Some(kind)) => write!(f, "event {seq} ({kind}): {}", self.reason),
            (Some(seq), None) => write!(f, "event {seq}: {}", self.reason),
            _ => f.write_str(&self.reason),
        }
    }
}

/// The outcome of checking one run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Verdict {
    /// The run.
    pub run_id: RunId,
    /// How many rows the store holds for it.
    pub events: u64,
    /// The hash of its last stored event.
    pub last_hash: Option<String>,
    /// Its head record, if it has one.
    pub head: Option<Head>,
    /// Whether it must have one (it was recorded after the store began keeping heads).
    pub head_expected: bool,
    /// What is wrong; empty when the record is intact.
    pub problems: Vec<Problem>,
}

impl Verdict {
    /// Whether nothing is wrong.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks one run's record.
pub async fn verify_run(store: &Store, run_id: &RunId) -> Result<Verdict, StoreError> {
    let rows = store.rows(run_id).await?;
    let mut problems = Vec::new();
    let mut events = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        match row {
            StoredRow::Event(e) => events.push(e.clone()),
            StoredRow::Damaged { seq, reason } => {
                problems.push(Problem {
                    seq: Some(seq.unwrap_or(i as u64)),
                    kind: None,
                    reason: format!("the stored row cannot be read: {reason}"),
                });
                break;
            }
        }
    }
    if let Err(b) = verify_chain(&events) {
        problems.push(Problem {
            seq: Some(b.seq),
            kind: Some(b.kind),
            reason: b.reason,
        });
    }
    let count = rows.len() as u64;
    let last_hash = match rows.last() {
        Some(StoredRow::Event(e)) => Some(e.hash.clone()),
        _ => None,
    };
    let head = match store.head(run_id) {
        Ok(h) => h,
        Err(e) => {
            problems.push(Problem {
                seq: None,
                kind: None,
                reason: e.to_string(),
            });
            None
        }
    };
    let head_expected = store.expects_head(run_id).await?;
    match &head {
        Some(h) => {
            let last = last_hash
                .clone()
                .unwrap_or_else(|| cordon_core::event::GENESIS_HASH.to_string());
            if count == 0 && h.count > 0 {
                problems.push(Problem {
                    seq: None,
                    kind: None,
                    reason: format!(
                        "its head record says {} events were recorded, but the store holds none: the run was deleted",
                        h.count
                    ),
                });
            } else if !h.agrees(count, &last) {
                problems.push(Problem {
                    seq: Some(count.min(h.count)),
                    kind: None,
                    reason: head_mismatch(h, count, &last),
                });
            }
        }
        None if head_expected && count > 0 => problems.push(Problem {
            seq: None,
            kind: None,
            reason: "its head record is missing (it was deleted), so events missing at its end could not be noticed".into(),
        }),
        None => {}
    }
    Ok(Verdict {
        run_id: run_id.clone(),
        events: count,
        last_hash,
        head,
        head_expected,
        problems,
    })
}
