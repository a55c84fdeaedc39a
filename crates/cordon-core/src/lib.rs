//! cordon's shared vocabulary, with no I/O.
//!
//! Everything the other crates exchange is defined here: run ids, the conversation
//! [`Item`]s a model sees, [`ToolSpec`]s, token [`Usage`], the run log's [`Event`]s
//! with their hash chain, and [`RunState`], the fold over a run's events.

pub mod canonical;
pub mod event;
pub mod ids;
pub mod item;
pub mod progress;
pub mod redact;
pub mod sandbox;
pub mod state;
pub mod tool;
pub mod usage;

pub use event::{
    AgentInfo, Artifact, ChainBreak, Event, EventPayload, ModelResponse, PolicyRecord,
    PolicySource, verify_chain,
};
pub use ids::RunId;
pub use item::{CallKind, Content, Item, Role, ToolCall, ToolResult};
pub use progress::{NoProgress, Progress};
pub use redact::{Redactor, StreamRedactor};
pub use sandbox::{CheckpointRules, EnvVar, GrantSpec, OutputSpec, SandboxSpec};
pub use state::{RunState, RunStatus};
pub use tool::{ToolKind, ToolSpec};
pub use usage::Usage;

/// The version of cordon that wrote an event, recorded at the start of every run.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
