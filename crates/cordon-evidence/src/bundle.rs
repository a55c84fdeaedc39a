//! Evidence bundles: one run in one file, checkable with no store.
//!
//! The file is JSON Lines, each line the RFC 8785 canonical JSON of one object, each ended
//! by `\n`:
//!
//! 1. the header: `format` (`cordon-bundle/1`), `run_id`, `events` (how many), `last_hash`,
//!    `public_key` (`ed25519:HEX`) and `signature` (hex) of the run's head, `snapshots` (how
//!    many listing lines follow the events) and `missing_snapshots` (checkpoints whose
//!    listing the exporting store no longer had);
//! 2. one line per event, exactly as stored (`run_id`, `seq`, `ts`, `kind`, `payload`,
//!    `prev_hash`, `hash`);
//! 3. one line per snapshot a checkpoint names: `snapshot` (its id) and its `entries` (path,
//!    kind, mode, content hash, link target: what the id covers).
//!
//! Every byte is bound: a line that is not the canonical form of what it holds is refused,
//! the events must chain, the header's count and last hash must be the last event's, the
//! signature must be the key's over the head (see `cordon_store::signing`), and each
//! listing must hash to its id, which a checkpoint event names. So changing any one byte
//! fails verification, naming the line and, for an event, its position and kind.

use cordon_core::canonical::canonical_json;
use cordon_core::{Event, EventPayload, RunId, verify_chain};
use cordon_store::signing::{PublicKey, head_message};
use cordon_store::snapshot::{Entry, Kind, Snapshot};
use cordon_store::verify::verify_run;
use cordon_store::{Store, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// What the first line's `format` says.
pub const FORMAT: &str = "cordon-bundle/1";

/// The first line of a bundle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// [`FORMAT`].
    pub format: String,
    /// The run.
    pub run_id: String,
    /// How many event lines follow.
    pub events: u64,
    /// The last event's hash.
    pub last_hash: String,
    /// The key that signed the head, `ed25519:HEX`.
    pub public_key: String,
    /// The head's signature, hex.
    pub signature: String,
    /// How many snapshot listing lines follow the events.
    pub snapshots: u64,
    /// Snapshots a checkpoint names whose listing the exporting store did not have.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_snapshots: Vec<String>,
}

/// One snapshot's listing, as a bundle holds it: what its id covers, nothing else.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listing {
    /// The snapshot's id.
    pub snapshot: String,
    /// Its entries, in the order its id was computed over.
    pub entries: Vec<ListedEntry>,
}

/// One path of a listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListedEntry {
    /// Workspace-relative path.
    pub path: String,
    /// Its exact bytes (hex) when they are not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_hex: Option<String>,
    /// File, directory or link.
    pub kind: Kind,
    /// Permission bits.
    pub mode: u32,
    /// Files: BLAKE3 of the content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// Links: where they point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Links: the target's exact bytes (hex) when they are not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_hex: Option<String>,
}

impl ListedEntry {
    fn from_entry(e: &Entry) -> Self {
        ListedEntry {
            path: e.path.clone(),
            path_hex: e.path_hex.clone(),
            kind: e.kind,
            mode: e.mode,
            hash: e.hash.clone(),
            target: e.target.clone(),
            target_hex: e.target_hex.clone(),
        }
    }

    fn to_entry(&self) -> Entry {
        Entry {
            path: self.path.clone(),
            path_hex: self.path_hex.clone(),
            kind: self.kind,
            mode: self.mode,
            hash: self.hash.clone(),
            size: 0,
            target: self.target.clone(),
            target_hex: self.target_hex.clone(),
            mtime_ns: 0,
            ino: 0,
        }
    }
}

/// Why a run cannot be exported.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The run's record does not verify: exporting it would vouch for it.
    #[error("run {run_id} does not verify, so it is not exported as evidence: {reason}")]
    Tampered {
        /// The run.
        run_id: String,
        /// The first problem.
        reason: String,
    },
    /// The bundle made does not verify (a run recorded before cordon wrote RFC 8785 JSON
    /// whose events hold fractional numbers cannot be re-hashed from a bundle).
    #[error("run {run_id} cannot be exported as a bundle that verifies: {reason}")]
    Unverifiable {
        /// The run.
        run_id: String,
        /// What the check of the bundle found.
        reason: String,
    },
    /// The run's head carries no signature that covers all of its events.
    #[error("run {run_id} has no signed head covering all its events: {reason}")]
    Unsigned {
        /// The run.
        run_id: String,
        /// Why.
        reason: String,
    },
}

/// The snapshot ids a run's checkpoints name, in the order they were taken.
pub fn checkpoint_snapshots(events: &[Event]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    events
        .iter()
        .filter_map(|e| match EventPayload::from_parts(&e.kind, &e.payload) {
            Ok(EventPayload::Checkpoint { snapshot_id, .. }) => Some(snapshot_id),
            _ => None,
        })
        .filter(|id| seen.insert(id.clone()))
        .collect()
}

/// Writes run `run_id` of `store` as a bundle. `listings` holds the snapshots its
/// checkpoints name (by id); those not in it are listed as missing.
pub async fn export(
    store: &Store,
    run_id: &RunId,
    listings: &BTreeMap<String, Snapshot>,
) -> Result<Vec<u8>, ExportError> {
    let verdict = verify_run(store, run_id).await?;
    if let Some(p) = verdict.problems.first() {
        return Err(ExportError::Tampered {
            run_id: run_id.to_string(),
            reason: p.to_string(),
        });
    }
    let unsigned = |reason: &str| ExportError::Unsigned {
        run_id: run_id.to_string(),
        reason: reason.to_string(),
    };
    let head = verdict
        .head
        .ok_or_else(|| unsigned("it has no head record"))?;
    let signature = head.signature.clone().ok_or_else(|| {
        unsigned("it was recorded before cordon signed heads; resuming or approving it signs it")
    })?;
    let events = store.events(run_id).await?;
    let last_hash = events
        .last()
        .map(|e| e.hash.clone())
        .ok_or_else(|| unsigned("it has no events"))?;
    if head.count != events.len() as u64 || head.last_hash != last_hash {
        return Err(unsigned(
            "its last append was interrupted before the head was signed; `cordon resume` settles it",
        ));
    }
    let mut kept = Vec::new();
    let mut missing = Vec::new();
    for id in checkpoint_snapshots(&events) {
        match listings.get(&id) {
            Some(s) => kept.push(Listing {
                snapshot: id,
                entries: s.entries.iter().map(ListedEntry::from_entry).collect(),
            }),
            None => missing.push(id),
        }
    }
    let header = Header {
        format: FORMAT.into(),
        run_id: run_id.to_string(),
        events: events.len() as u64,
        last_hash,
        public_key: signature.key,
        signature: signature.signature,
        snapshots: kept.len() as u64,
        missing_snapshots: missing,
    };
    let mut out = String::new();
    let mut line = |v: serde_json::Value| {
        out.push_str(&canonical_json(&v));
        out.push('\n');
    };
    line(to_value(&header));
    for e in &events {
        line(to_value(e));
    }
    for l in &kept {
        line(to_value(l));
    }
    let bytes = out.into_bytes();
    // What is handed out must be what a verifier accepts.
    if let Some(p) = verify(&bytes, None).problems.first() {
        return Err(ExportError::Unverifiable {
            run_id: run_id.to_string(),
            reason: p.to_string(),
        });
    }
    Ok(bytes)
}

fn to_value<T: Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

/// One thing wrong with a bundle.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    /// The line (from 1) it is on, when it is on one.
    pub line: Option<usize>,
    /// The event it concerns: its position in the run.
    pub seq: Option<u64>,
    /// That event's kind, when it could be read.
    pub kind: Option<String>,
    /// What does not hold.
    pub reason: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.line, self.seq, &self.kind) {
            (Some(l), Some(s), Some(k)) => write!(f, "line {l} (event {s}, {k}): {}", self.reason),
            (Some(l), Some(s), None) => write!(f, "line {l} (event {s}): {}", self.reason),
            (Some(l), None, _) => write!(f, "line {l}: {}", self.reason),
            (None, Some(s), Some(k)) => write!(f, "event {s} ({k}): {}", self.reason),
            _ => f.write_str(&self.reason),
        }
    }
}

/// What checking a bundle found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// The run, when the header could be read.
    pub run_id: Option<String>,
    /// How many events it holds.
    pub events: u64,
    /// The key whose valid signature covers the head.
    pub signed_by: Option<String>,
    /// Whether that key is the one the caller said to trust (rather than the one the bundle
    /// names).
    pub key_trusted: bool,
    /// How many snapshot listings it holds, each matching its id.
    pub snapshots: u64,
    /// Checkpoints whose listing is not in it.
    pub missing_snapshots: Vec<String>,
    /// What is wrong; empty when the bundle holds.
    pub problems: Vec<Problem>,
}

impl Report {
    /// Whether nothing is wrong.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks a bundle; with `key`, the head must be signed by that key.
pub fn verify(bytes: &[u8], key: Option<&PublicKey>) -> Report {
    let mut report = Report::default();
    if let Err(p) = check(bytes, key, &mut report) {
        report.problems.push(p);
    }
    report
}

fn problem(line: Option<usize>, reason: impl Into<String>) -> Problem {
    Problem {
        line,
        seq: None,
        kind: None,
        reason: reason.into(),
    }
}

/// Reads line `n` (from 1) as `T`, requiring it to be exactly the canonical form cordon
/// writes for what it holds.
fn read_line<T: Serialize + for<'de> Deserialize<'de>>(
    n: usize,
    text: &[u8],
    what: &str,
) -> Result<T, Problem> {
    let text = std::str::from_utf8(text)
        .map_err(|_| problem(Some(n), format!("the {what} is not UTF-8 text")))?;
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| problem(Some(n), format!("the {what} is not JSON: {e}")))?;
    let typed: T = serde_json::from_value(value).map_err(|e| {
        problem(
            Some(n),
            format!("the {what} is not as cordon writes it: {e}"),
        )
    })?;
    if canonical_json(&to_value(&typed)) != text {
        return Err(problem(
            Some(n),
            format!(
                "the {what} is not exactly as cordon writes it (RFC 8785 canonical JSON): it was changed"
            ),
        ));
    }
    Ok(typed)
}

fn check(bytes: &[u8], key: Option<&PublicKey>, report: &mut Report) -> Result<(), Problem> {
    let Some(body) = bytes.strip_suffix(b"\n") else {
        return Err(problem(
            None,
            "it does not end with a new line: it was cut short or changed",
        ));
    };
    let lines: Vec<&[u8]> = body.split(|b| *b == b'\n').collect();
    let header: Header = read_line(1, lines[0], "header")?;
    if header.format != FORMAT {
        return Err(problem(
            Some(1),
            format!(
                "its format is '{}', not {FORMAT}: it is not a cordon bundle this version reads",
                header.format
            ),
        ));
    }
    report.run_id = Some(header.run_id.clone());
    report.missing_snapshots = header.missing_snapshots.clone();
    let want = 1u64
        .saturating_add(header.events)
        .saturating_add(header.snapshots);
    if lines.len() as u64 != want {
        return Err(problem(
            None,
            format!(
                "it has {} lines, but its header says 1 + {} events + {} snapshots: lines were added or removed",
                lines.len(),
                header.events,
                header.snapshots
            ),
        ));
    }
    let mut events = Vec::with_capacity(header.events as usize);
    for (i, text) in lines[1..=header.events as usize].iter().enumerate() {
        let n = i + 2;
        let event: Event = read_line(n, text, "event").map_err(|mut p| {
            p.seq = Some(i as u64);
            p
        })?;
        if event.run_id.as_str() != header.run_id {
            return Err(Problem {
                line: Some(n),
                seq: Some(event.seq),
                kind: Some(event.kind),
                reason: format!(
                    "it belongs to run {}, not to the bundle's run {}",
                    event.run_id, header.run_id
                ),
            });
        }
        events.push(event);
    }
    report.events = events.len() as u64;
    if let Err(b) = verify_chain(&events) {
        // The line the event is on, which its (perhaps edited) seq need not say.
        let at = events
            .iter()
            .position(|e| e.seq == b.seq && e.kind == b.kind)
            .unwrap_or(b.seq as usize);
        return Err(Problem {
            line: Some(at + 2),
            seq: Some(b.seq),
            kind: Some(b.kind),
            reason: b.reason,
        });
    }
    let last = events.last().map(|e| e.hash.as_str()).unwrap_or_default();
    if header.events == 0 || last != header.last_hash {
        return Err(problem(
            Some(1),
            "the header's last hash is not the last event's: events were removed or the header changed",
        ));
    }
    let signer = PublicKey::parse(&header.public_key).map_err(|e| {
        problem(
            Some(1),
            format!("the header's public key cannot be read: {e}"),
        )
    })?;
    if let Some(k) = key.filter(|k| **k != signer) {
        return Err(problem(
            Some(1),
            format!(
                "it was signed by {}, not by the key you trust, {}",
                signer.to_text(),
                k.to_text()
            ),
        ));
    }
    let message = head_message(&header.run_id, header.events, &header.last_hash);
    if !signer.verifies(message.as_bytes(), &header.signature) {
        return Err(problem(
            Some(1),
            "the head's signature does not verify: the header was changed, or the events with it",
        ));
    }
    report.signed_by = Some(signer.to_text());
    report.key_trusted = key.is_some();
    let named: BTreeSet<String> = checkpoint_snapshots(&events).into_iter().collect();
    let mut listed = BTreeSet::new();
    for (i, text) in lines[1 + header.events as usize..].iter().enumerate() {
        let n = i + 2 + header.events as usize;
        let listing: Listing = read_line(n, text, "snapshot listing")?;
        let entries: Vec<Entry> = listing.entries.iter().map(ListedEntry::to_entry).collect();
        let id = Snapshot::id_of(&entries)
            .map_err(|e| problem(Some(n), format!("the snapshot listing is damaged: {e}")))?;
        if id != listing.snapshot {
            return Err(problem(
                Some(n),
                format!(
                    "snapshot {}'s listing does not hash to its id: it was changed",
                    listing.snapshot
                ),
            ));
        }
        if !named.contains(&listing.snapshot) {
            return Err(problem(
                Some(n),
                format!(
                    "snapshot {} is not one the run's checkpoints name",
                    listing.snapshot
                ),
            ));
        }
        if !listed.insert(listing.snapshot) {
            return Err(problem(Some(n), "a snapshot is listed twice"));
        }
    }
    report.snapshots = listed.len() as u64;
    let said_missing: BTreeSet<String> = header.missing_snapshots.iter().cloned().collect();
    let really_missing: BTreeSet<String> = named.difference(&listed).cloned().collect();
    if said_missing != really_missing || said_missing.len() != header.missing_snapshots.len() {
        return Err(problem(
            Some(1),
            "the header's missing snapshots are not the checkpoints whose listing is absent: it was changed",
        ));
    }
    Ok(())
}
