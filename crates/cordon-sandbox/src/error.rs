//! What can go wrong with a sandbox.

use std::path::PathBuf;

/// Why a sandbox could not be made or used.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// No tier that isolates works here.
    #[error("no isolation tier works on this host: {0}")]
    NoTier(String),
    /// The configuration asks for something unsafe (a grant of `/`, a workspace holding
    /// cordon's own records); nothing was started.
    #[error("{0}")]
    Config(String),
    /// The supervisor did not start or confine itself.
    #[error("the sandbox did not start: {0}")]
    Start(String),
    /// The workspace is unusable.
    #[error("workspace {path}: {message}")]
    Workspace {
        /// The directory.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The channel to the supervisor broke.
    #[error("the sandbox's supervisor is gone: {0}")]
    Gone(String),
    /// A request was refused inside the sandbox.
    #[error("{0}")]
    Refused(String),
}
