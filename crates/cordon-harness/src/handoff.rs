//! Handoffs: the active agent hands the conversation to another agent of the run's team.
//!
//! An [`Agent`](crate::Agent) lists the agents it may hand off to ([`Handoff`]); the model
//! is offered one tool per handoff, `transfer_to_NAME` (with an optional `reason`). When it
//! calls one, the runner records `handed_off`, and from the next model call on the named
//! agent answers: its instructions, tools, model and settings, its output schema and its
//! guardrails. The handoff's [`History`] filter chooses what of the conversation it sees.
//! The team's other agents are the entry agent's [`members`](crate::Agent::member); the
//! policy, approvals, budgets and compaction are the entry agent's for the whole run.
//!
//! ```
//! use cordon_harness::{Agent, Handoff, History};
//!
//! let billing = Agent::new("billing", "openai:gpt-5-mini", "gpt-5-mini")
//!     .instructions("You handle invoices and refunds.")
//!     .handoff(Handoff::new("triage", "Anything that is not about money."));
//! let triage = Agent::new("triage", "openai:gpt-5-mini", "gpt-5-mini")
//!     .instructions("Route the customer to the right agent.")
//!     .handoff(Handoff::new("billing", "Invoices and refunds.").history(History::LastTurns(2)))
//!     .member(billing);
//! assert!(triage.check().is_ok());
//! // The model is offered the handoff as a tool.
//! let offered: Vec<String> = triage.offered().iter().map(|t| t.spec().name).collect();
//! assert_eq!(offered, ["transfer_to_billing"]);
//! ```

use cordon_core::{RunState, ToolSpec};
use cordon_tools::{Tool, ToolContext, ToolError, ToolFuture};
use serde::{Deserialize, Serialize};

/// What of the conversation the receiving agent sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum History {
    /// All of it.
    All,
    /// Only its first message (the task), and a note of who handed off and why.
    None,
    /// The first message, the last N model answers before the handoff and the handoff's
    /// own (with their calls' results).
    LastTurns(u32),
}

impl History {
    /// As events and listings show it.
    pub fn describe(&self) -> String {
        match self {
            History::All => "all".into(),
            History::None => "none".into(),
            History::LastTurns(n) => format!("last {n} turns"),
        }
    }

    /// Where the kept conversation resumes (see `handed_off`'s `kept_from`) in `state`'s
    /// conversation, and whether a note must say what was left out.
    pub(crate) fn kept_from(&self, state: &RunState) -> (usize, bool) {
        match self {
            History::All => (1, false),
            History::None => (state.items.len().max(1), true),
            History::LastTurns(n) => {
                // The handoff's own answer is the last; N more before it.
                let starts = state.answer_starts();
                match starts.len().checked_sub(*n as usize + 1) {
                    Some(i) => (starts[i], i > 0),
                    None => (1, false),
                }
            }
        }
    }
}

/// One agent the owner may hand off to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Handoff {
    /// The receiving agent's name (a member of the team, or the entry agent).
    pub agent: String,
    /// When to hand off to it, as the model reads it.
    pub description: String,
    /// What of the conversation it sees.
    pub history: History,
}

impl Handoff {
    /// A handoff to `agent`, with all of the history.
    pub fn new(agent: &str, description: &str) -> Self {
        Handoff {
            agent: agent.to_string(),
            description: description.to_string(),
            history: History::All,
        }
    }

    /// Filters what the receiving agent sees.
    pub fn history(mut self, history: History) -> Self {
        self.history = history;
        self
    }

    /// The tool the model calls: `transfer_to_NAME`.
    pub fn tool_name(&self) -> String {
        tool_name(&self.agent)
    }

    /// The tool offered for it.
    pub(crate) fn tool(&self) -> std::sync::Arc<dyn Tool> {
        let description = if self.description.trim().is_empty() {
            format!("Hand the conversation to the agent '{}'.", self.agent)
        } else {
            format!(
                "Hand the conversation to the agent '{}': {}",
                self.agent,
                self.description.trim()
            )
        };
        std::sync::Arc::new(HandoffTool(ToolSpec::function(
            &self.tool_name(),
            &format!(
                "{description} That agent answers from the next turn on; call this alone, as your last step."
            ),
            serde_json::json!({
                "type": "object",
                "properties": {
                    "reason": {
                        "type": "string",
                        "description": "Why you hand off, in a sentence the next agent reads."
                    }
                },
            }),
        )))
    }
}

/// The tool name a handoff to `agent` is offered under.
pub fn tool_name(agent: &str) -> String {
    let clean: String = agent
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(52)
        .collect();
    format!("transfer_to_{clean}")
}

/// The reason a handoff call gives, if any (bounded: it is the model's text).
pub(crate) fn reason(arguments: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(arguments).ok()?;
    let r = v.get("reason")?.as_str()?.trim();
    (!r.is_empty()).then(|| r.chars().take(2000).collect())
}

/// A handoff as the model sees it; the runner acts on its calls, so it never runs.
struct HandoffTool(ToolSpec);

impl Tool for HandoffTool {
    fn spec(&self) -> ToolSpec {
        self.0.clone()
    }

    fn call<'a>(&'a self, _ctx: &'a ToolContext, _input: &'a str) -> ToolFuture<'a> {
        Box::pin(async {
            Err(ToolError::Failed(
                "a handoff is made by the runner, not run as a tool".into(),
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cordon_core::{Item, Role, ToolCall, ToolResult};

    fn call(id: &str) -> Item {
        Item::ToolCall(ToolCall {
            call_id: id.into(),
            name: "t".into(),
            input: "{}".into(),
            kind: Default::default(),
            id: None,
        })
    }

    fn result(id: &str) -> Item {
        Item::ToolResult(ToolResult {
            call_id: id.into(),
            kind: Default::default(),
            output: "ok".into(),
            images: Vec::new(),
        })
    }

    #[test]
    fn filters_cut_at_answer_starts() {
        let s = RunState {
            items: vec![
                Item::text(Role::User, "task"),
                call("a"),
                result("a"),
                Item::text(Role::Assistant, "thinking"),
                call("b"),
                result("b"),
                call("c"),
                result("c"),
            ],
            ..RunState::default()
        };
        assert_eq!(s.answer_starts(), [1, 3, 6]);
        assert_eq!(History::All.kept_from(&s), (1, false));
        assert_eq!(History::None.kept_from(&s), (8, true));
        assert_eq!(History::LastTurns(1).kept_from(&s), (3, true));
        assert_eq!(History::LastTurns(2).kept_from(&s), (1, false));
        assert_eq!(History::LastTurns(3).kept_from(&s), (1, false));
        assert_eq!(History::LastTurns(9).kept_from(&s), (1, false));
    }

    #[test]
    fn names_and_reasons_are_bounded() {
        assert_eq!(tool_name("billing agent"), "transfer_to_billing_agent");
        assert!(tool_name(&"x".repeat(200)).len() <= 64);
        assert_eq!(
            reason(r#"{"reason":" refund "}"#).as_deref(),
            Some("refund")
        );
        assert_eq!(reason("not json"), None);
    }
}
