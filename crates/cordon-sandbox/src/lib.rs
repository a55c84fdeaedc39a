//! cordon's sandbox: where the commands a model chooses run.
//!
//! - [`SandboxProvider`]: what makes sandboxes from a backend-neutral [`SandboxRequest`],
//!   each reporting what it guarantees as data ([`Isolation`]).
//! - [`Sandbox`]: the interface every provider's sandboxes implement (commands, PTY
//!   sessions, files).
//! - [`LocalProvider`] and [`LocalSandbox`]: the provider on this host. bubblewrap builds user, mount, pid, network,
//!   IPC and UTS namespaces around a small [`supervisor`] (or, in the Landlock tier, nothing
//!   does), which confines itself with Landlock, seccomp and rlimits ([`hardening`]) before it
//!   spawns anything; [`cgroup`]s limit the whole sandbox where the host allows.
//! - [`Client`]: the harness's side of the supervisor's framed channel ([`protocol`]), the
//!   same for every backend.
//! - [`egress`]: how a sandbox reaches the run's egress proxy, its one way out.
//! - [`tier`]: which isolation tier, probed and reported.

pub mod cgroup;
mod client;
pub mod egress;
mod error;
pub mod files;
pub mod hardening;
pub mod local;
mod output;
pub mod protocol;
mod provider;
mod sandbox;
pub mod shim;
pub mod supervisor;
pub mod tier;

pub use client::{Client, Output, Process, ProcessEvent};
pub use egress::Egress;
pub use error::SandboxError;
pub use hardening::Limits;
pub use local::{LocalProvider, LocalSandbox, SandboxConfig, SupervisorCommand};
pub use output::HeadTail;
pub use protocol::{DirEntry, Stream};
pub use provider::{Isolation, Mount, Network, SandboxProvider, SandboxRequest, Strength};
pub use sandbox::{Sandbox, SandboxFuture};
pub use tier::{Tier, TierChoice};
