//! Checkpoints of a run's workspace into the session's snapshot store.

use crate::snapshots::Snapshots;
use cordon_core::SandboxSpec;
use cordon_harness::{CheckpointError, CheckpointInfo, Checkpointer};
use cordon_store::Snapshot;
use cordon_store::snapshot::Exclusions;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Mutex;

/// Checkpoints a workspace, each snapshot incremental to the one before.
pub(crate) struct SnapshotCheckpointer {
    pub store: Snapshots,
    pub dir: PathBuf,
    pub exclude: Exclusions,
    pub previous: std::sync::Arc<Mutex<Option<Snapshot>>>,
    pub progress: std::sync::Arc<dyn cordon_core::Progress>,
}

impl Checkpointer for SnapshotCheckpointer {
    fn checkpoint(
        &self,
    ) -> Pin<Box<dyn Future<Output = Result<CheckpointInfo, CheckpointError>> + Send + '_>> {
        Box::pin(async move {
            let previous = self
                .previous
                .lock()
                .map_err(|_| "a checkpoint panicked")?
                .clone();
            let (store, dir, exclude, progress) = (
                self.store.local.clone(),
                self.dir.clone(),
                self.exclude.clone(),
                self.progress.clone(),
            );
            // Reading the workspace is blocking work: off the runtime's threads.
            let (snap, stats) = tokio::task::spawn_blocking(move || {
                store.take_excluding(&dir, &exclude, previous.as_ref(), progress.as_ref())
            })
            .await??;
            for note in &stats.notes {
                tracing::warn!(%note, "a checkpoint rule could not be used");
            }
            // A checkpoint counts once it is where resume will look for it.
            self.store.push(&snap).await?;
            let info = CheckpointInfo {
                snapshot_id: snap.id.clone(),
                files_read: stats.files_read,
                bytes_read: stats.bytes_read,
                skipped: stats.skipped,
                skipped_count: stats.skipped_count,
            };
            *self.previous.lock().map_err(|_| "a checkpoint panicked")? = Some(snap);
            Ok(info)
        })
    }
}

/// What checkpoints of a workspace built as `spec` says leave out: its ephemeral entries and
/// its checkpoint rules.
pub(crate) fn exclusions(spec: &SandboxSpec) -> Exclusions {
    Exclusions {
        paths: spec.ephemeral.clone(),
        rules: spec.checkpoints.clone(),
    }
}
