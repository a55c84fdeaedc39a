//! The tool interface.

use cordon_core::{RunId, ToolSpec};
use std::future::Future;
use std::pin::Pin;

/// What a tool is told about the call it serves.
#[derive(Debug, Clone)]
pub struct ToolContext {
    /// The run the call belongs to.
    pub run_id: RunId,
    /// The model's id for the call.
    pub call_id: String,
    /// A key stable across retries and resumes of this call (`run_id/call_id`), for tools
    /// with side effects elsewhere.
    pub idempotency_key: String,
}

/// Why a tool call failed. The message goes back to the model, so it says what to fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ToolError {
    /// The model's arguments do not fit the tool.
    #[error("invalid arguments: {0}")]
    InvalidArguments(String),
    /// The tool ran and failed.
    #[error("{0}")]
    Failed(String),
    /// The call has not finished and is not to be answered yet: the run pauses, and the
    /// call runs again when the run is resumed (a sub-agent that paused, or that waits for
    /// a person). Only tools whose calls may run again return it.
    #[error("suspended: {0}")]
    Suspended(String),
    /// Like [`ToolError::Suspended`], and the call waits for a person (a sub-agent's call
    /// waits for an approval): the run waits too.
    #[error("waiting: {0}")]
    Waiting(String),
    /// Like [`ToolError::Suspended`], and what the call ran (a sub-agent) stopped at a
    /// budget it shares with the run: the run stops at that budget too, and a resume that
    /// raises it goes on with the call.
    #[error("out of budget: {reason}")]
    OutOfBudget {
        /// The budget's name (`max_tool_calls`, ...).
        budget: String,
        /// Its limit.
        limit: f64,
        /// What was used, as the call's run counted it.
        used: f64,
        /// What happened, and what to do.
        reason: String,
    },
}

/// What a tool call gives back to the model: text, and images (as `data:` URLs).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ToolOutput {
    /// What the model reads.
    pub text: String,
    /// Images shown to the model with the text.
    pub images: Vec<String>,
}

impl From<String> for ToolOutput {
    fn from(text: String) -> Self {
        ToolOutput {
            text,
            images: Vec::new(),
        }
    }
}

/// The future a tool call returns.
pub type ToolFuture<'a> = Pin<Box<dyn Future<Output = Result<ToolOutput, ToolError>> + Send + 'a>>;

/// What a tool's calls can change. It decides whether a checkpoint follows a call and
/// what a resumed run may do with a call whose effects the crash may have lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Effects {
    /// Nothing: the call only reads. An interrupted call simply runs again.
    #[default]
    None,
    /// Only the sandboxed workspace, which checkpoints capture and resume restores. After a
    /// restore the call can run again exactly as before, so resume re-runs interrupted
    /// calls and replays finished ones the restore undid.
    Workspace,
    /// Things outside the workspace as well (the network, other systems). Such a call never
    /// runs twice: when it is interrupted the model is told instead.
    External,
}

/// A tool the model may call.
pub trait Tool: Send + Sync {
    /// What the model is told about the tool.
    fn spec(&self) -> ToolSpec;

    /// What a call can change (by default nothing).
    fn effects(&self) -> Effects {
        Effects::None
    }

    /// What the policy judges a call by, as its risk class: by default what it can change.
    /// A tool whose work is judged call by call elsewhere (a sub-agent, each of whose calls
    /// the policy judges) says less.
    fn judged_as(&self) -> Effects {
        self.effects()
    }

    /// Whether a call may change the workspace, so that a checkpoint should follow it.
    fn changes_workspace(&self) -> bool {
        self.effects() != Effects::None
    }

    /// Runs one call with the model's exact input (JSON arguments for a function tool,
    /// free text for a custom tool) and returns what the model reads.
    fn call<'a>(&'a self, ctx: &'a ToolContext, input: &'a str) -> ToolFuture<'a>;
}

/// The future a [`ToolSource`] refresh returns: the new tool names when the list changed.
pub type RefreshFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Option<Vec<String>>, String>> + Send + 'a>>;

/// Tools whose list can change while a run goes on (an MCP server's, which says so with
/// `notifications/tools/list_changed`). The runner asks each source to refresh before every
/// model call and records the change when there was one.
pub trait ToolSource: Send + Sync {
    /// The source's name (an MCP server's name in the agent file).
    fn name(&self) -> &str;

    /// The tools it offers now.
    fn tools(&self) -> Vec<std::sync::Arc<dyn Tool>>;

    /// Lists the tools again if the source said they changed; the new names when they did.
    fn refresh(&self) -> RefreshFuture<'_>;
}
