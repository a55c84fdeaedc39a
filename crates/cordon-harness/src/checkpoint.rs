//! Checkpoints: the workspace snapshotted after tool calls that may have changed it, so a
//! resumed run can start from where the work was.

use std::future::Future;
use std::pin::Pin;

/// What one checkpoint took.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointInfo {
    /// The snapshot's id.
    pub snapshot_id: String,
    /// Files read (the rest were unchanged since the last checkpoint).
    pub files_read: u64,
    /// Bytes read.
    pub bytes_read: u64,
    /// Paths the checkpoint rules left out, the first of them by name.
    pub skipped: Vec<String>,
    /// How many paths they left out in all.
    pub skipped_count: u64,
}

/// Why a checkpoint could not be taken (whatever the checkpointer's own error is).
pub type CheckpointError = Box<dyn std::error::Error + Send + Sync>;

/// Takes checkpoints of a run's workspace.
pub trait Checkpointer: Send + Sync {
    /// Snapshots the workspace now.
    fn checkpoint(
        &self,
    ) -> Pin<Box<dyn Future<Output = Result<CheckpointInfo, CheckpointError>> + Send + '_>>;
}
