//! cordon's run session as a library: what `cordon run`, `resume`, `approve`, `reject` and
//! `pause` do, for any front end (the CLI, a server with a web approval queue, workers,
//! other languages through a bridge).
//!
//! A [`Session`] holds what runs share: the run store, the model providers ([`Models`]),
//! a sandbox provider ([`cordon_sandbox::SandboxProvider`]), a snapshot store for
//! checkpoints ([`Snapshots`]) and the tools runs may use ([`cordon_tools::Registry`]). A
//! new run and a resumed one take the same path: [`Session::new_run`] or
//! [`Session::resume`] prepares a [`PreparedRun`] (sandbox made, workspace built or
//! restored, model resolved, tools built), which then runs here
//! ([`PreparedRun::run`]) or in a task of its own ([`PreparedRun::start`]) whose
//! [`RunHandle`] streams its events and pauses it. Approvals, rejections and pause
//! requests are recorded through the store, so any process can make them.
//!
//! A sandboxed task with a manifest:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use cordon_sandbox::{LocalProvider, SupervisorCommand};
//! use cordon_session::{AgentSpec, RunRequest, SandboxOptions, Session, load_manifest};
//! use std::sync::Arc;
//!
//! let store = cordon_store::Store::open(std::path::Path::new("runs.db")).await?;
//! // The sandbox's supervisor: `cordon-supervisor` (installed beside `cordon`), or
//! // `cordon __supervisor`.
//! let supervisor = SupervisorCommand {
//!     program: "/usr/local/bin/cordon-supervisor".into(),
//!     args: Vec::new(),
//!     fallback: None,
//! };
//! let session = Session::builder(store)
//!     .sandboxes(Arc::new(LocalProvider::new(supervisor)))
//!     .build()?;
//! let agent = AgentSpec::new("builder", "Run the tests and report.").tools(["exec_command"]);
//! let manifest = load_manifest(std::path::Path::new("manifest.toml"))?;
//! let run = session
//!     .new_run(
//!         RunRequest::new(agent, "Run the test suite.")
//!             .model("openai:gpt-5-mini")
//!             .sandbox(SandboxOptions::from_manifest(manifest)),
//!     )
//!     .await?;
//! println!("run {} in {:?}", run.run_id(), run.workspace().map(|w| &w.dir));
//! let outcome = run.run().await?;
//! println!("{:?}: {}", outcome.status, outcome.output.unwrap_or_default());
//! # Ok(()) }
//! ```
//!
//! Approving from another process, then resuming:
//!
//! ```no_run
//! # async fn demo(session: cordon_session::Session, run_id: &str) -> Result<(), Box<dyn std::error::Error>> {
//! use cordon_session::ResumeRequest;
//! let (_, approved) = session.approve(run_id, None, false, "alice").await?;
//! for a in &approved {
//!     println!("approved {} ({})", a.call_id, a.waiting.tool);
//! }
//! let outcome = session.resume(ResumeRequest::new(run_id)).await?.run().await?;
//! # let _ = outcome; Ok(()) }
//! ```
//!
//! The `examples/` directory of the repository runs these end to end, and a custom Rust
//! tool registered beside the built-ins.

mod agent;
mod approvals;
pub mod artifacts;
mod checkpoint;
mod conversation;
mod egress;
mod error;
mod events;
pub mod guardrails;
mod mcp;
pub mod models;
pub mod policy;
mod resume;
mod retention;
#[cfg(feature = "scripted")]
pub mod scripted;
mod session;
pub mod skills;
pub mod snapshots;
mod subagent;
pub mod team;
mod workspace;

pub use agent::{AgentSpec, CompactionSection};
pub use approvals::Approved;
pub use cordon_policy::Policy;
pub use error::{ErrorKind, SessionError};
pub use events::{EVENT_QUEUE, RunEvent};
pub use models::{Config, ModelResolver, Models, ResolveFuture, ResolvedModel};
pub use resume::{
    BUDGET_NAMES, ResumeRequest, last_workspace, parse_budget, redactor_after_the_fact,
};
pub use retention::{Retention, SnapshotUse};
pub use session::{PreparedRun, RunHandle, RunRequest, Session, SessionBuilder, WorkspaceInfo};
pub use snapshots::Snapshots;
pub use workspace::{
    DEFAULT_COMMAND_TIMEOUT, PreparedSandbox, SandboxOptions, load_manifest,
    prepare as prepare_sandbox, sandbox_record,
};
