//! cordon's sandbox: where the commands a model chooses run.
//!
//! A [`LocalSandbox`] starts once per session: bubblewrap builds user, mount, pid, network,
//! IPC and UTS namespaces around a small supervisor (see [`supervisor`]), which confines
//! itself further with Landlock, seccomp and rlimits before it spawns anything. Commands
//! then start inside the already-built sandbox over a framed channel ([`protocol`]).

pub mod cgroup;
pub mod files;
pub mod hardening;
pub mod local;
pub mod protocol;
mod sandbox;
pub mod supervisor;
pub mod tier;

pub use hardening::Limits;
pub use local::{
    LocalSandbox, Output, Process, ProcessEvent, SandboxConfig, SandboxError, SupervisorCommand,
};
pub use protocol::{DirEntry, Stream};
pub use sandbox::{Sandbox, SandboxFuture};
pub use tier::{Tier, TierChoice};
