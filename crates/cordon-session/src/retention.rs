//! Which snapshots to keep: the checkpoints unfinished runs need to resume, the newest few
//! of each run, the recent ones. Snapshots are tied to runs by the runs' `checkpoint` events.

use crate::{SessionError, Snapshots};
use cordon_core::{RunId, RunStatus};
use cordon_store::Store;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A rule for what `gc` deletes. With neither limit, no snapshot is deleted.
#[derive(Debug, Clone, Copy, Default)]
pub struct Retention {
    /// Keep each run's newest N checkpoints (and the newest N snapshots no run recorded).
    pub keep_last: Option<usize>,
    /// Keep snapshots taken less than this long ago.
    pub older_than: Option<Duration>,
}

/// A stored snapshot, the runs whose checkpoint it is, and what a retention rule decided.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SnapshotUse {
    /// The snapshot's id.
    pub id: String,
    /// When it was taken.
    pub created: String,
    /// How many files.
    pub files: usize,
    /// Bytes of file content.
    pub bytes: u64,
    /// The runs that recorded it as a checkpoint, oldest run first.
    pub runs: Vec<RunId>,
    /// Runs that cannot resume without it: it is their last checkpoint and they have not
    /// completed.
    pub needed_by: Vec<RunId>,
    /// Whether the rule deletes it (only in [`Snapshots::retention`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delete: Option<bool>,
    /// Why it is kept or deleted (only in [`Snapshots::retention`]).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub why: String,
    /// Its place among the checkpoints of the runs that recorded it, newest first (1 is a
    /// run's last checkpoint; the best place over its runs); `None` when no run did.
    #[serde(skip)]
    pub(crate) rank_in_run: Option<usize>,
}

impl Snapshots {
    /// Every stored snapshot, newest first, with the runs of `store` that recorded it.
    pub async fn uses(&self, store: Option<&Store>) -> Result<Vec<SnapshotUse>, SessionError> {
        let listed = match &self.remote {
            Some(remote) => remote.list().await?,
            None => self.local.list()?,
        };
        let (mut runs, mut needed, mut rank) = (
            BTreeMap::<String, BTreeSet<RunId>>::new(),
            BTreeMap::<String, Vec<RunId>>::new(),
            BTreeMap::<String, usize>::new(),
        );
        if let Some(store) = store {
            let statuses: BTreeMap<RunId, RunStatus> = store
                .list_runs(None, usize::MAX)
                .await?
                .into_iter()
                .map(|r| (r.run_id, r.status))
                .collect();
            // Each run's snapshots in the order it last checkpointed them (a snapshot is
            // content: a run can record the same one twice, and other runs too).
            let mut order: BTreeMap<RunId, Vec<String>> = BTreeMap::new();
            for c in store.checkpoints().await? {
                runs.entry(c.snapshot_id.clone())
                    .or_default()
                    .insert(c.run_id.clone());
                let list = order.entry(c.run_id).or_default();
                list.retain(|s| *s != c.snapshot_id);
                list.push(c.snapshot_id);
            }
            for (run, list) in &order {
                for (i, snap) in list.iter().rev().enumerate() {
                    let r = rank.entry(snap.clone()).or_insert(i + 1);
                    *r = (*r).min(i + 1);
                }
                if let Some(last) = list.last()
                    && statuses.get(run) != Some(&RunStatus::Completed)
                {
                    needed.entry(last.clone()).or_default().push(run.clone());
                }
            }
        }
        Ok(listed
            .into_iter()
            .map(|s| SnapshotUse {
                runs: runs.remove(&s.id).unwrap_or_default().into_iter().collect(),
                needed_by: needed.remove(&s.id).unwrap_or_default(),
                rank_in_run: rank.remove(&s.id),
                id: s.id,
                created: s.created,
                files: s.files,
                bytes: s.bytes,
                delete: None,
                why: String::new(),
            })
            .collect())
    }

    /// What `rule` keeps and deletes, newest first. A snapshot is deleted only when every
    /// limit given lets it go and no unfinished run needs it to resume.
    pub async fn retention(
        &self,
        store: Option<&Store>,
        rule: Retention,
    ) -> Result<Vec<SnapshotUse>, SessionError> {
        let now = OffsetDateTime::now_utc();
        let mut uses = self.uses(store).await?;
        // A run's snapshots rank by when it recorded them; snapshots no run recorded rank
        // among themselves by when they were taken (`uses` is newest first).
        let mut unowned = 0;
        let cutoff = rule.older_than.map(|d| now - d);
        for u in uses.iter_mut() {
            let rank = u.rank_in_run.unwrap_or_else(|| {
                unowned += 1;
                unowned
            });
            let created = OffsetDateTime::parse(&u.created, &Rfc3339).ok();
            let (delete, why) = if rule.keep_last.is_none() && rule.older_than.is_none() {
                (false, String::new())
            } else if let Some(run) = u.needed_by.first() {
                (
                    false,
                    format!("the last checkpoint of run {run}, which can still be resumed"),
                )
            } else if let Some(n) = rule.keep_last.filter(|n| rank <= *n) {
                (false, format!("one of the newest {n} of its run"))
            } else if let Some(cutoff) = cutoff
                && created.is_none_or(|c| c >= cutoff)
            {
                (false, "newer than the cutoff".to_string())
            } else {
                let mut why = Vec::new();
                if let Some(n) = rule.keep_last {
                    why.push(format!("not among the newest {n} of its run"));
                }
                if rule.older_than.is_some() {
                    why.push("older than the cutoff".to_string());
                }
                (true, why.join(" and "))
            };
            u.delete = Some(delete);
            u.why = why;
        }
        Ok(uses)
    }

    /// Deletes the listings of these snapshots (full ids), locally and on the remote; their
    /// contents go with the next content gc.
    pub async fn delete(&self, ids: &[String]) -> Result<(), SessionError> {
        for id in ids {
            if let Some(remote) = &self.remote {
                remote.delete(id).await?;
            }
            self.local.delete(id)?;
        }
        Ok(())
    }
}
