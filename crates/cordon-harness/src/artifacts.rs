//! Artifacts: the files a run produced under its outputs, collected into the log when the
//! model gives its final answer, before the run is recorded as completed.

use cordon_core::Artifact;
use std::future::Future;
use std::pin::Pin;

/// What a collection found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Collected {
    /// Every file found under the outputs.
    pub artifacts: Vec<Artifact>,
    /// Required outputs the run did not make.
    pub missing: Vec<String>,
    /// What was found and not collected, and why.
    pub notes: Vec<String>,
}

/// Collects a run's artifacts from its workspace.
pub trait ArtifactCollector: Send + Sync {
    /// Reads the outputs as they are now.
    fn collect(&self) -> Pin<Box<dyn Future<Output = Result<Collected, String>> + Send + '_>>;
}
