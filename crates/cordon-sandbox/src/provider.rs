//! Sandbox providers: what makes sandboxes, from a request that says nothing about how.
//!
//! A [`SandboxProvider`] turns a backend-neutral [`SandboxRequest`] (a workspace, host
//! paths to mount, environment, limits, network) into a running [`Sandbox`], and every
//! sandbox reports what its provider guarantees as data ([`Isolation`]): the kind and
//! strength of isolation, the network, what is enforced and what is not. The harness records
//! that report in the run and decides from it (for example whether a command may run again
//! after a restore); it never asks which backend it is talking to.
//!
//! The local provider ([`crate::LocalProvider`]) is one implementation. ARCHITECTURE.md says
//! how to add another.

use crate::error::SandboxError;
use crate::hardening::Limits;
use crate::sandbox::{Sandbox, SandboxFuture};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;

/// A host path made visible inside the sandbox, at the same path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// The host path.
    pub path: PathBuf,
    /// Whether commands may change it.
    pub writable: bool,
}

/// What network a sandbox's commands get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Network {
    /// None at all: an empty network namespace (loopback only).
    #[default]
    Off,
    /// No TCP connections or listeners; other protocols are not blocked (a tier without a
    /// network namespace of its own).
    NoTcp,
    /// The host's network, unfiltered.
    Host,
    /// Only through cordon's egress proxy on the host, which judges every request by the
    /// run's policy (see [`crate::egress`]).
    Proxied,
}

/// A sandbox to make, in terms every provider understands.
#[derive(Debug, Clone)]
pub struct SandboxRequest {
    /// The host directory holding the workspace's files.
    pub workspace: PathBuf,
    /// Where commands see the workspace (a provider that cannot move it reports where it is
    /// through [`Sandbox::workspace`]).
    pub root: String,
    /// Whether the whole workspace is read-only.
    pub read_only: bool,
    /// Workspace-relative paths that are read-only inside a writable workspace.
    pub read_only_paths: Vec<String>,
    /// Workspace-relative paths that cannot be read or written at all (covered by an empty
    /// stand-in no one may open).
    pub hidden_paths: Vec<String>,
    /// Host paths made visible inside.
    pub mounts: Vec<Mount>,
    /// Variables added to the sandbox's fixed environment.
    pub env: Vec<(String, String)>,
    /// Resource limits.
    pub limits: Limits,
    /// The network commands may use: [`Network::Off`], or [`Network::Proxied`] with
    /// `egress` set. Providers refuse a request for more than they can keep to.
    pub network: Network,
    /// Where the run's egress proxy listens, for [`Network::Proxied`].
    pub egress: Option<crate::Egress>,
    /// An isolation kind by name (as [`Isolation::kind`] reports it), or `None` for the
    /// strongest the provider can make here.
    pub isolation: Option<String>,
    /// Host paths the sandbox must never reach (cordon's own records): no mount may cover
    /// them and the workspace may not hold them.
    pub protected: Vec<PathBuf>,
}

impl SandboxRequest {
    /// A request for a writable workspace at `root`, nothing mounted, default limits, no
    /// network, the strongest isolation.
    pub fn new(workspace: impl Into<PathBuf>, root: &str) -> Self {
        SandboxRequest {
            workspace: workspace.into(),
            root: root.to_string(),
            read_only: false,
            read_only_paths: Vec::new(),
            hidden_paths: Vec::new(),
            mounts: Vec::new(),
            env: Vec::new(),
            limits: Limits::default(),
            network: Network::Off,
            egress: None,
            isolation: None,
            protected: Vec::new(),
        }
    }
}

/// How strong a sandbox's isolation is, from weakest to strongest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strength {
    /// None: commands have the full access of the user running cordon.
    Unconfined,
    /// Access rules on the host's own view (files, TCP, signals, system calls), but the
    /// same processes, uid and network stack as the host.
    Restricted,
    /// A view of its own: namespaces (files, processes, network, hostname, IPC) and an
    /// unprivileged uid, with the access rules of `Restricted` inside.
    Isolated,
}

/// What a sandbox's provider guarantees, as it reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Isolation {
    /// The provider that made the sandbox (`local`).
    pub provider: String,
    /// The kind of isolation, by the provider's name for it (`namespaces`, `landlock`,
    /// `unconfined`).
    pub kind: String,
    /// How strong it is.
    pub strength: Strength,
    /// The network commands get.
    pub network: Network,
    /// Whether commands can change nothing outside the workspace (no network, not even
    /// through the proxy; no writable host path): only then may a command run again after the workspace is restored.
    pub confined_to_workspace: bool,
    /// The mechanisms in force, one line each.
    pub enforced: Vec<String>,
    /// What this sandbox cannot promise, said plainly.
    pub gaps: Vec<String>,
    /// The resource limits in force.
    pub limits: Limits,
    /// The provider's own account of what took effect (for the local provider, the
    /// supervisor's confinement report).
    pub details: serde_json::Value,
}

/// Makes sandboxes. Implement this to run commands somewhere new (a container runtime, a
/// remote machine); the harness needs nothing else.
pub trait SandboxProvider: Send + Sync {
    /// The provider's name, as recorded in runs.
    fn name(&self) -> &str;

    /// The isolation kinds this provider knows, strongest first (whether they work on this
    /// host is for [`SandboxProvider::create`] to find out).
    fn kinds(&self) -> Vec<&'static str>;

    /// Makes a sandbox as `request` describes, or says why it cannot: a request it cannot
    /// keep to (a kind it cannot make, a mount of a protected path) is an error, never a
    /// weaker sandbox.
    fn create(&self, request: SandboxRequest) -> SandboxFuture<'_, Arc<dyn Sandbox>>;
}

/// The error for a kind the provider does not know.
pub(crate) fn unknown_kind(provider: &dyn SandboxProvider, kind: &str) -> SandboxError {
    SandboxError::Config(format!(
        "the {} sandbox provider has no isolation kind '{kind}'; it has: {}",
        provider.name(),
        provider.kinds().join(", ")
    ))
}
