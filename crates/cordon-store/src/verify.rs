//! Checking a run's record: every stored row decodes, the hash chain holds from the genesis
//! hash, the run's head record agrees with the last event, and the head's signature is the
//! store's key's (or the key the caller trusts).
//!
//! What this catches, and what it cannot, is listed in the README under `cordon verify`.

use crate::head::Head;
use crate::signing::{self, PublicKey};
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
    /// The key whose valid signature covers the head, `ed25519:HEX`.
    pub signed_by: Option<String>,
    /// Whether the signature was checked against a key the caller trusts (the one given, or
    /// the store's own key file), rather than only against the key the head names.
    pub key_trusted: bool,
    /// What is wrong; empty when the record is intact.
    pub problems: Vec<Problem>,
}

impl Verdict {
    /// Whether nothing is wrong.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks one run's record, trusting the store's own key (when it has one).
pub async fn verify_run(store: &Store, run_id: &RunId) -> Result<Verdict, StoreError> {
    verify_run_with(store, run_id, None).await
}

/// Checks one run's record; with `key`, its head must carry a valid signature by that key.
pub async fn verify_run_with(
    store: &Store,
    run_id: &RunId,
    key: Option<&PublicKey>,
) -> Result<Verdict, StoreError> {
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
    let mut head_unreadable = false;
    let head = match store.head(run_id) {
        Ok(h) => h,
        Err(e) => {
            head_unreadable = true;
            // The verdict names the run already.
            let reason = match e {
                StoreError::HeadRecord { source, .. } => source.to_string(),
                other => other.to_string(),
            };
            problems.push(Problem {
                seq: None,
                kind: None,
                reason,
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
        None if head_expected && count > 0 && !head_unreadable => problems.push(Problem {
            seq: None,
            kind: None,
            reason: "its head record is missing (it was deleted), so events missing at its end could not be noticed".into(),
        }),
        None => {}
    }
    let trusted = match key {
        Some(k) => Some(*k),
        None => store.public_key().unwrap_or_else(|e| {
            problems.push(Problem {
                seq: None,
                kind: None,
                reason: format!("the store's public key cannot be read: {e}"),
            });
            None
        }),
    };
    // A store with a key signs every head (the heads recorded before the key was made were
    // signed when it was made), so with a key to trust, a head without a valid signature by
    // it is refused: nothing in the store decides which runs may go unsigned.
    let signed_by = if head_unreadable {
        None
    } else {
        let signed = check_signature(
            run_id,
            head.as_ref(),
            trusted.as_ref(),
            trusted.is_some() && (count > 0 || head.is_some()),
            &mut problems,
        );
        // Events that match only the head's pending append (one whose head update never
        // came) are covered only if that append was signed too.
        if let (Some(h), Some(_)) = (&head, &signed) {
            let last = last_hash.as_deref().unwrap_or_default();
            let via_pending = !h.at_head(count, last) && h.at_pending(count, last);
            if via_pending && !pending_is_signed(run_id, h) {
                problems.push(Problem {
                    seq: Some(h.count),
                    kind: None,
                    reason: format!(
                        "events {} to {} are past its signed head and no signature covers them: they were added, or the head's pending line written, by someone without the key",
                        h.count,
                        count.saturating_sub(1)
                    ),
                });
                None
            } else {
                signed
            }
        } else {
            signed
        }
    };
    Ok(Verdict {
        run_id: run_id.clone(),
        events: count,
        last_hash,
        head,
        head_expected,
        signed_by,
        key_trusted: trusted.is_some(),
        problems,
    })
}

/// Whether the head's pending append carries a valid signature by the head's own key.
pub(crate) fn pending_is_signed(run_id: &RunId, head: &Head) -> bool {
    let (Some((count, hash)), Some(sig), Some(main)) =
        (&head.pending, &head.pending_signature, &head.signature)
    else {
        return false;
    };
    let Ok(key) = PublicKey::parse(&main.key) else {
        return false;
    };
    key.verifies(
        signing::head_message(run_id.as_str(), *count, hash).as_bytes(),
        sig,
    )
}

/// Checks a head's signature; returns the key that made it when it holds.
pub fn check_signature(
    run_id: &RunId,
    head: Option<&Head>,
    trusted: Option<&PublicKey>,
    required: bool,
    problems: &mut Vec<Problem>,
) -> Option<String> {
    let mut problem = |reason: String| {
        problems.push(Problem {
            seq: None,
            kind: None,
            reason,
        })
    };
    let Some(head) = head else {
        if required {
            problem("it has no head record, so there is no signature to check".into());
        }
        return None;
    };
    let Some(sig) = &head.signature else {
        if required {
            problem(
                "its head record is not signed, though the store signs every head (those recorded before its key was made were signed then): it was replaced by someone without the key"
                    .into(),
            );
        }
        return None;
    };
    let signer = match PublicKey::parse(&sig.key) {
        Ok(k) => k,
        Err(e) => {
            problem(format!(
                "its head names a signing key that cannot be read: {e}"
            ));
            return None;
        }
    };
    if let Some(t) = trusted.filter(|t| **t != signer) {
        problem(format!(
            "its head was signed by {}, not by the trusted key {}",
            signer.to_text(),
            t.to_text()
        ));
        return None;
    }
    let message = signing::head_message(run_id.as_str(), head.count, &head.last_hash);
    if !signer.verifies(message.as_bytes(), &sig.signature) {
        problem(
            "its head's signature does not verify: the head record was changed by someone without the key that signed it"
                .into(),
        );
        return None;
    }
    Some(sig.key.clone())
}
