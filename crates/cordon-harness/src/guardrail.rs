//! Guardrails: checks on what goes into and comes out of a run. An input guardrail judges
//! the task, an output guardrail the final answer, tool guardrails a call's arguments
//! (before it runs) and its result (before the model reads it). A tripped input or output
//! guardrail stops the run; a tripped tool guardrail stops the call (or withholds its
//! result), and the model is told. Every trip is recorded (`guardrail_tripped`).
//!
//! A guardrail is any [`Guardrail`]: a Rust function ([`FnGuardrail`]), or what the session
//! builds from an agent file (a command in the sandbox, a check by a model).

use std::future::Future;
use std::pin::Pin;

/// What a guardrail judges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// The task a new run starts with.
    Input,
    /// The final answer.
    Output,
    /// A tool call's arguments, before it runs.
    ToolCall,
    /// A tool call's result, before the model reads it.
    ToolResult,
}

impl Stage {
    /// As written in agent files and events.
    pub fn as_str(&self) -> &'static str {
        match self {
            Stage::Input => "input",
            Stage::Output => "output",
            Stage::ToolCall => "tool_call",
            Stage::ToolResult => "tool_result",
        }
    }
}

/// A guardrail's answer: `Some(reason)` when it trips.
pub type Tripped = Option<String>;

/// The future a check returns. An error (the check could not be made) counts as a trip:
/// guardrails fail closed.
pub type CheckFuture<'a> = Pin<Box<dyn Future<Output = Result<Tripped, String>> + Send + 'a>>;

/// A check on a run's input, output, or tool calls.
pub trait Guardrail: Send + Sync {
    /// Its name, as events and errors show it.
    fn name(&self) -> &str;

    /// Whether it judges this stage (and, for tool stages, this tool).
    fn applies(&self, stage: Stage, tool: Option<&str>) -> bool;

    /// Judges `text` (the task, the answer, a call's arguments or its result) at `stage`.
    fn check<'a>(&'a self, stage: Stage, tool: Option<&'a str>, text: &'a str) -> CheckFuture<'a>;
}

/// A guardrail written as a Rust function: `Some(reason)` trips it.
///
/// ```
/// use cordon_harness::guardrail::{FnGuardrail, Stage};
/// let no_keys = FnGuardrail::new("no-keys", &[Stage::Output], |_, text| {
///     text.contains("BEGIN PRIVATE KEY").then(|| "the answer holds a private key".to_string())
/// });
/// # let _ = no_keys;
/// ```
pub struct FnGuardrail<F> {
    name: String,
    stages: Vec<Stage>,
    check: F,
}

impl<F> FnGuardrail<F>
where
    F: Fn(Option<&str>, &str) -> Tripped + Send + Sync,
{
    /// A guardrail called `name` on `stages`, judging with `check(tool, text)`.
    pub fn new(name: &str, stages: &[Stage], check: F) -> Self {
        FnGuardrail {
            name: name.to_string(),
            stages: stages.to_vec(),
            check,
        }
    }
}

impl<F> Guardrail for FnGuardrail<F>
where
    F: Fn(Option<&str>, &str) -> Tripped + Send + Sync,
{
    fn name(&self) -> &str {
        &self.name
    }

    fn applies(&self, stage: Stage, _tool: Option<&str>) -> bool {
        self.stages.contains(&stage)
    }

    fn check<'a>(&'a self, _stage: Stage, tool: Option<&'a str>, text: &'a str) -> CheckFuture<'a> {
        let verdict = (self.check)(tool, text);
        Box::pin(async move { Ok(verdict) })
    }
}

/// The first of `guardrails` that trips on `text` at `stage`: its name and reason.
pub(crate) async fn first_trip(
    guardrails: &[std::sync::Arc<dyn Guardrail>],
    stage: Stage,
    tool: Option<&str>,
    text: &str,
) -> Option<(String, String)> {
    for g in guardrails.iter().filter(|g| g.applies(stage, tool)) {
        match g.check(stage, tool, text).await {
            Ok(None) => {}
            Ok(Some(reason)) => return Some((g.name().to_string(), reason)),
            Err(e) => {
                return Some((
                    g.name().to_string(),
                    format!("the check could not be made ({e}), so it counts as tripped"),
                ));
            }
        }
    }
    None
}
