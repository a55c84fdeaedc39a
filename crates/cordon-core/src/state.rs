//! Run state as a fold over a run's events: never stored, always derived.

use crate::{AgentInfo, CallKind, Event, EventPayload, Item, Role, ToolResult, Usage};
use serde::Serialize;

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Started and not yet ended (or ended by a crash).
    Running,
    /// Finished with a final answer.
    Completed,
    /// Stopped on an error.
    Failed,
    /// Stopped because a budget ran out.
    BudgetExceeded,
    /// Waiting for a person to approve or reject a tool call.
    AwaitingApproval,
    /// Paused by the user; resumable.
    Paused,
    /// Recorded as running, but no process drives it any more: it was killed (SIGKILL, a
    /// second Ctrl-C) or crashed before recording its end; resumable. Never folded from
    /// events: the store tells it from `Running` by whether the run's owner lock is held.
    Interrupted,
}

impl RunStatus {
    /// The status a run has after an event of this kind, for the kinds that change it.
    /// Listings use this to derive a run's status from its last such event.
    pub fn after_kind(kind: &str) -> Option<RunStatus> {
        match kind {
            "run_started" | "run_resumed" => Some(RunStatus::Running),
            "run_completed" => Some(RunStatus::Completed),
            "run_failed" => Some(RunStatus::Failed),
            "budget_exceeded" => Some(RunStatus::BudgetExceeded),
            "approval_requested" | "host_requested" | "run_waiting" => {
                Some(RunStatus::AwaitingApproval)
            }
            "run_paused" => Some(RunStatus::Paused),
            _ => None,
        }
    }

    /// The status a run's events leave it in: that of its last status-changing event (the
    /// fold reaches the same, without reading every payload).
    pub fn of_events(events: &[crate::Event]) -> RunStatus {
        events
            .iter()
            .rev()
            .find_map(|e| RunStatus::after_kind(&e.kind))
            .unwrap_or(RunStatus::Running)
    }

    /// Every event kind that changes a run's status.
    pub const CHANGING_KINDS: [&'static str; 9] = [
        "host_requested",
        "run_waiting",
        "run_started",
        "run_resumed",
        "run_completed",
        "run_failed",
        "budget_exceeded",
        "approval_requested",
        "run_paused",
    ];

    /// The status as shown to people and stored in listings.
    pub fn as_str(&self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::BudgetExceeded => "budget_exceeded",
            RunStatus::AwaitingApproval => "awaiting_approval",
            RunStatus::Paused => "paused",
            RunStatus::Interrupted => "interrupted",
        }
    }
}

/// What the summary of a compacted conversation starts with, as the model reads it.
pub const SUMMARY_PREFIX: &str = "[The earlier part of this conversation was compacted to fit the model's context window. A summary of it follows; the turns after it are as they were.]\n\n";

/// A budget figure as people read it: whole numbers plainly, others to two places.
fn number(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v}")
    } else {
        format!("{v:.2}")
    }
}

/// A tool call with an intent recorded but no result yet.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PendingCall {
    /// The call's id.
    pub call_id: String,
    /// The tool's name.
    pub tool: String,
    /// The exact arguments.
    pub arguments: String,
}

/// A call waiting for a person's decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Awaiting {
    /// The tool.
    pub tool: String,
    /// SHA-256 of its exact arguments: an approval binds to it.
    pub arguments_hash: String,
    /// The approval rules it matched (what an "always" approval would cover).
    pub rules: Vec<String>,
    /// Its exact arguments, as recorded (what the person approves).
    #[serde(default)]
    pub arguments: String,
    /// Who may approve it (empty: anyone).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<String>,
}

/// Everything known about a run, computed from its events.
#[derive(Debug, Clone, Serialize)]
pub struct RunState {
    /// The agent, once `run_started` is seen.
    pub agent: Option<AgentInfo>,
    /// Where the run stands.
    pub status: RunStatus,
    /// Model calls answered so far.
    pub turns: u32,
    /// Tool calls finished so far.
    pub tool_calls: u32,
    /// Tokens spent so far.
    pub usage: Usage,
    /// The conversation as the model will next see it.
    pub items: Vec<Item>,
    /// Calls with an intent but no result.
    pub pending: Vec<PendingCall>,
    /// The final answer, once completed.
    pub final_output: Option<String>,
    /// The error or budget that ended the run, if one did.
    pub ended_by: Option<String>,
    /// The budget that ended the run, if one did: its name and the limit it had.
    pub exceeded: Option<(String, f64)>,
    /// The newest checkpoint's snapshot id.
    pub last_checkpoint: Option<String>,
    /// Calls that finished after the newest checkpoint, in order: (call id, tool). Restoring
    /// that checkpoint undoes their effects on the workspace, so resume replays them.
    pub since_checkpoint: Vec<(String, String)>,
    /// Calls waiting for a decision, by call id.
    pub awaiting: std::collections::BTreeMap<String, Awaiting>,
    /// The policy the run is under (the one it started with, or the last that replaced it).
    pub policy: Option<crate::PolicyRecord>,
    /// Approved calls not yet run: call id → the arguments hash approved.
    pub approved: std::collections::BTreeMap<String, String>,
    /// Rejected calls: call id → (who, message).
    pub rejected: std::collections::BTreeMap<String, (String, String)>,
    /// Approval rules (`tool:NAME`, `command:PATTERN`) a person approved for the rest of
    /// the run.
    pub always_approved: std::collections::BTreeSet<String>,
    /// Hosts a person allowed the sandbox to reach for the rest of the run.
    pub granted_hosts: std::collections::BTreeSet<String>,
    /// Hosts the sandbox asked to reach that wait for a person.
    pub waiting_hosts: std::collections::BTreeSet<String>,
    /// The input or output guardrail that stopped the run, and why.
    pub tripped: Option<String>,
    /// What the run waits for through a call it left unanswered (`run_waiting`), until it
    /// is resumed.
    pub waiting_on: Option<String>,
    /// Calls left unanswered on purpose (`tool_suspended`): a resume runs them again.
    pub suspended: std::collections::BTreeSet<String>,
    /// The agent of the team that answers now, once a handoff has happened (none: the
    /// entry agent).
    pub active_agent: Option<String>,
    /// Sequence number of the next event.
    pub next_seq: u64,
}

impl Default for RunState {
    fn default() -> Self {
        RunState {
            agent: None,
            status: RunStatus::Running,
            turns: 0,
            tool_calls: 0,
            usage: Usage::default(),
            items: Vec::new(),
            pending: Vec::new(),
            final_output: None,
            ended_by: None,
            exceeded: None,
            last_checkpoint: None,
            since_checkpoint: Vec::new(),
            awaiting: Default::default(),
            policy: None,
            approved: Default::default(),
            rejected: Default::default(),
            always_approved: Default::default(),
            granted_hosts: Default::default(),
            waiting_hosts: Default::default(),
            tripped: None,
            active_agent: None,
            waiting_on: None,
            suspended: Default::default(),
            next_seq: 0,
        }
    }
}

impl RunState {
    /// Folds a run's events, in order, into its state.
    pub fn fold(events: &[Event]) -> Result<Self, serde_json::Error> {
        let mut state = RunState::default();
        for e in events {
            state.apply(&e.typed()?);
            state.next_seq = e.seq + 1;
        }
        Ok(state)
    }

    /// Applies one event. The runner calls this as it appends, so the live state and a
    /// re-folded state can never differ.
    pub fn apply(&mut self, payload: &EventPayload) {
        if let Some(status) = RunStatus::after_kind(payload.kind()) {
            self.status = status;
        }
        match payload {
            EventPayload::RunStarted { agent, policy, .. } => {
                self.agent = Some(agent.clone());
                self.policy = policy.clone();
            }
            EventPayload::RunResumed { policy, .. } => {
                self.waiting_on = None;
                if let Some(policy) = policy {
                    self.policy = Some(policy.clone());
                }
            }
            EventPayload::PolicyDecision { .. } | EventPayload::NetworkRequest { .. } => {}
            EventPayload::HostGranted { host, .. } => {
                self.waiting_hosts.remove(host);
                self.granted_hosts.insert(host.clone());
            }
            EventPayload::HostRequested { hosts } => {
                self.waiting_hosts.extend(hosts.iter().cloned());
            }
            EventPayload::UserInput { text } => self.items.push(Item::text(Role::User, text.clone())),
            EventPayload::ModelRequest { .. }
            | EventPayload::ModelRetry { .. }
            | EventPayload::WorkspaceMaterialized { .. }
            | EventPayload::ArtifactsCollected { .. }
            | EventPayload::SecretsRedacted { .. }
            | EventPayload::RunPaused { .. } => {}
            EventPayload::Checkpoint { snapshot_id, .. } => {
                self.last_checkpoint = Some(snapshot_id.clone());
                self.since_checkpoint.clear();
            }
            EventPayload::ToolReplayed { .. } => {}
            EventPayload::ApprovalRequested {
                call_id,
                tool,
                arguments,
                arguments_hash,
                rules,
                approvers,
            } => {
                self.awaiting.insert(call_id.clone(), Awaiting {
                    tool: tool.clone(),
                    arguments_hash: arguments_hash.clone(),
                    rules: rules.clone(),
                    arguments: arguments.clone(),
                    approvers: approvers.clone(),
                });
            }
            EventPayload::ApprovalGranted {
                call_id,
                arguments_hash,
                always,
                always_rules,
                ..
            } => {
                self.awaiting.remove(call_id);
                if *always {
                    self.always_approved.extend(always_rules.iter().cloned());
                }
                self.approved.insert(call_id.clone(), arguments_hash.clone());
            }
            EventPayload::ApprovalRejected { call_id, by, message } => {
                self.awaiting.remove(call_id);
                self.rejected.insert(call_id.clone(), (by.clone(), message.clone()));
            }
            EventPayload::ContextCompacted {
                kept_head,
                replaced,
                summary,
                usage,
                items,
                ..
            } => {
                self.usage.add(usage);
                let head = (*kept_head).min(self.items.len());
                let end = head.saturating_add(*replaced).min(self.items.len());
                let by = match items {
                    Some(items) => items.clone(),
                    None => vec![Item::text(Role::User, format!("{SUMMARY_PREFIX}{summary}"))],
                };
                self.items.splice(head..end, by);
            }
            EventPayload::ConversationContinued { items, .. } => {
                self.items.extend(items.iter().cloned())
            }
            EventPayload::McpServerStarted { .. }
            | EventPayload::ToolsChanged { .. }
            | EventPayload::SpawnedBy { .. }
            | EventPayload::ContinuedBy { .. } => {}
            EventPayload::RunWaiting { reason } => self.waiting_on = Some(reason.clone()),
            EventPayload::ToolSuspended { call_id, .. } => {
                self.suspended.insert(call_id.clone());
            }
            EventPayload::HandedOff {
                to, kept_from, note, ..
            } => {
                self.active_agent = Some(to.clone());
                let len = self.items.len();
                if len > 1 {
                    self.items.drain(1..(*kept_from).clamp(1, len));
                }
                if let Some(note) = note {
                    self.items.push(Item::text(Role::User, note.clone()));
                }
            }
            EventPayload::GuardrailTripped {
                guardrail,
                stage,
                reason,
                ..
            } => {
                if stage == "input" || stage == "output" {
                    self.tripped = Some(format!("{guardrail}: {reason}"));
                }
            }
            EventPayload::ModelResponse { response, .. } => {
                self.turns += 1;
                self.usage.add(&response.usage);
                self.items.extend(response.items.iter().cloned());
            }
            EventPayload::ToolCallIntent {
                call_id,
                tool,
                arguments,
                ..
            } => self.pending.push(PendingCall {
                call_id: call_id.clone(),
                tool: tool.clone(),
                arguments: arguments.clone(),
            }),
            EventPayload::ToolResult {
                call_id,
                tool,
                output,
                images,
                not_run,
                ..
            } => {
                // A person's decision covers the one call they saw: once it has its result,
                // a later call that reuses the id (some servers number calls per turn) asks
                // again.
                self.approved.remove(call_id);
                self.rejected.remove(call_id);
                self.awaiting.remove(call_id);
                self.suspended.remove(call_id);
                let was_pending = self.pending.iter().any(|p| &p.call_id == call_id);
                self.pending.retain(|p| &p.call_id != call_id);
                if was_pending && !not_run {
                    self.since_checkpoint.push((call_id.clone(), tool.clone()));
                }
                self.tool_calls += 1;
                let kind = self.call_kind(call_id);
                self.items.push(Item::ToolResult(ToolResult {
                    call_id: call_id.clone(),
                    kind,
                    output: output.clone(),
                    images: images.clone(),
                }));
            }
            EventPayload::OutputInvalid { error } => self.items.push(Item::text(
                Role::User,
                format!("Your final answer must be JSON matching the required schema. It did not: {error}. Answer again."),
            )),
            EventPayload::BudgetExceeded {
                budget,
                limit,
                used,
                asked,
            } => {
                // `used` counts the batch the model asked for, which did not run (and, for a
                // run that shares its budgets, the other runs' calls).
                let ran = asked.map_or(self.tool_calls as f64, |a| *used - a as f64);
                self.ended_by = Some(if budget == "max_tool_calls" && *used > ran {
                    // `used` counts the batch the model asked for, which did not run.
                    format!(
                        "the max_tool_calls budget ran out: {} of {} ran, and the model asked for {} more",
                        number(ran),
                        number(*limit),
                        number(*used - ran)
                    )
                } else {
                    format!("the {budget} budget ran out (limit {}, used {})", number(*limit), number(*used))
                });
                self.exceeded = Some((budget.clone(), *limit));
            }
            EventPayload::RunCompleted { output, .. } => {
                self.final_output = Some(output.clone());
            }
            EventPayload::RunFailed { error } => {
                self.ended_by = Some(error.clone());
            }
        }
    }

    /// Where each model answer's items begin in the conversation (after the first item):
    /// an item that is neither the user's nor a tool's result, right after one that is.
    /// Cutting the conversation at one of these keeps every call with its result.
    pub fn answer_starts(&self) -> Vec<usize> {
        let answer = |i: &Item| {
            !matches!(
                i,
                Item::ToolResult(_)
                    | Item::Message {
                        role: Role::User,
                        ..
                    }
            )
        };
        (1..self.items.len())
            .filter(|&k| answer(&self.items[k]) && !answer(&self.items[k - 1]))
            .collect()
    }

    /// Tool calls the model asked for that have neither an intent nor a result: the run
    /// stopped between recording the model's answer and starting its calls.
    pub fn unstarted_calls(&self) -> Vec<crate::ToolCall> {
        let answered: std::collections::HashSet<&str> = self
            .items
            .iter()
            .filter_map(|i| match i {
                Item::ToolResult(r) => Some(r.call_id.as_str()),
                _ => None,
            })
            .chain(self.pending.iter().map(|p| p.call_id.as_str()))
            .collect();
        self.items
            .iter()
            .filter_map(|i| match i {
                Item::ToolCall(c) if !answered.contains(c.call_id.as_str()) => Some(c.clone()),
                _ => None,
            })
            .collect()
    }

    /// Gives each tool call in `response` an id no other call of this run has: a server that
    /// numbers calls per turn (or repeats one) would otherwise make one call's approval,
    /// result or resume stand for another. A renamed call keeps the model's id in a note;
    /// the conversation sent back carries the new id on the call and on its result alike.
    pub fn make_call_ids_unique(&self, response: &mut crate::ModelResponse) {
        if !response
            .items
            .iter()
            .any(|i| matches!(i, Item::ToolCall(_)))
        {
            return;
        }
        let earlier: std::collections::HashSet<&str> = self
            .items
            .iter()
            .filter_map(|i| match i {
                Item::ToolCall(c) => Some(c.call_id.as_str()),
                Item::ToolResult(r) => Some(r.call_id.as_str()),
                _ => None,
            })
            .collect();
        let mut here: std::collections::HashSet<String> = std::collections::HashSet::new();
        let taken = |id: &str, here: &std::collections::HashSet<String>| {
            earlier.contains(id) || here.contains(id)
        };
        let mut notes = Vec::new();
        for item in &mut response.items {
            let Item::ToolCall(call) = item else { continue };
            if !taken(&call.call_id, &here) {
                here.insert(call.call_id.clone());
                continue;
            }
            let fresh = (2..)
                .map(|n| format!("{}.{n}", call.call_id))
                .find(|id| !taken(id, &here))
                .expect("an unused id exists");
            notes.push(format!(
                "the call id '{}' was already used in this run; cordon calls this call '{fresh}'",
                call.call_id
            ));
            here.insert(fresh.clone());
            call.call_id = fresh;
        }
        response.notes.extend(notes);
    }

    /// The kind of the call with this id, as the model made it.
    fn call_kind(&self, call_id: &str) -> CallKind {
        self.items
            .iter()
            .rev()
            .find_map(|i| match i {
                Item::ToolCall(c) if c.call_id == call_id => Some(c.kind),
                _ => None,
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ModelResponse, ToolCall};

    #[test]
    fn a_reused_call_id_gets_a_fresh_one_and_a_note() {
        let call = |id: &str, input: &str| {
            Item::ToolCall(ToolCall {
                call_id: id.into(),
                name: "exec_command".into(),
                kind: CallKind::Function,
                input: input.into(),
                id: None,
            })
        };
        let mut s = RunState::default();
        s.apply(&EventPayload::ModelResponse {
            turn: 1,
            response: ModelResponse {
                items: vec![call("d", "first")],
                ..ModelResponse::default()
            },
        });
        let mut next = ModelResponse {
            items: vec![call("d", "second"), call("d", "third"), call("e", "fourth")],
            ..ModelResponse::default()
        };
        s.make_call_ids_unique(&mut next);
        let ids: Vec<String> = next.tool_calls().into_iter().map(|c| c.call_id).collect();
        assert_eq!(ids, ["d.2", "d.3", "e"]);
        assert_eq!(next.notes.len(), 2, "{:?}", next.notes);
        assert!(next.notes[0].contains("'d'") && next.notes[0].contains("'d.2'"));
        s.apply(&EventPayload::ModelResponse {
            turn: 2,
            response: next,
        });
        let unstarted: Vec<String> = s.unstarted_calls().into_iter().map(|c| c.input).collect();
        assert_eq!(
            unstarted,
            ["first", "second", "third", "fourth"],
            "each call is its own"
        );
    }

    #[test]
    fn folding_rebuilds_the_conversation_and_counters() {
        let call = ToolCall {
            call_id: "c1".into(),
            name: "patch".into(),
            kind: CallKind::Custom,
            input: "x".into(),
            id: None,
        };
        let events = [
            EventPayload::UserInput { text: "hi".into() },
            EventPayload::ModelResponse {
                turn: 1,
                response: ModelResponse {
                    items: vec![Item::ToolCall(call)],
                    usage: Usage {
                        input_tokens: 10,
                        output_tokens: 2,
                        ..Usage::default()
                    },
                    ..ModelResponse::default()
                },
            },
            EventPayload::ToolCallIntent {
                call_id: "c1".into(),
                tool: "patch".into(),
                arguments: "x".into(),
                idempotency_key: "r/c1".into(),
            },
        ];
        let mut s = RunState::default();
        for e in &events {
            s.apply(e);
        }
        assert_eq!(s.pending.len(), 1, "an intent without a result is pending");
        s.apply(&EventPayload::ToolResult {
            call_id: "c1".into(),
            tool: "patch".into(),
            output: "ok".into(),
            images: Vec::new(),
            is_error: false,
            duration_ms: 1,
            not_run: false,
        });
        assert_eq!(
            s.since_checkpoint,
            [("c1".to_string(), "patch".to_string())],
            "a call that ran since the last checkpoint is remembered for replay"
        );
        assert!(s.pending.is_empty());
        assert_eq!((s.turns, s.tool_calls, s.usage.total_tokens()), (1, 1, 12));
        assert_eq!(s.items.len(), 3);
        match &s.items[2] {
            Item::ToolResult(r) => {
                assert_eq!(r.kind, CallKind::Custom, "result kind follows the call")
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(s.status, RunStatus::Running);
        s.apply(&EventPayload::Checkpoint {
            snapshot_id: "snap".into(),
            files_read: 1,
            bytes_read: 1,
            skipped: Vec::new(),
            skipped_count: 0,
        });
        assert!(s.since_checkpoint.is_empty(), "a checkpoint captures it");
    }

    #[test]
    fn answers_given_without_running_are_never_replayed() {
        let mut s = RunState::default();
        for (id, not_run) in [("ran", false), ("interrupted", true)] {
            s.apply(&EventPayload::ToolCallIntent {
                call_id: id.into(),
                tool: "exec_command".into(),
                arguments: "{}".into(),
                idempotency_key: format!("r/{id}"),
            });
            s.apply(&EventPayload::ToolResult {
                call_id: id.into(),
                tool: "exec_command".into(),
                output: String::new(),
                images: Vec::new(),
                is_error: not_run,
                duration_ms: 0,
                not_run,
            });
        }
        // A rejected call has no intent at all.
        s.apply(&EventPayload::ToolResult {
            call_id: "rejected".into(),
            tool: "exec_command".into(),
            output: "error: rejected".into(),
            images: Vec::new(),
            is_error: true,
            duration_ms: 0,
            not_run: true,
        });
        let ids: Vec<&str> = s.since_checkpoint.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(ids, ["ran"]);
    }
}
