//! A run as spans, derived from its log: what `cordon trace` draws and what is sent as
//! OpenTelemetry traces. The log is the source; spans are a view of it, so a finished run's
//! trace can be made again at any time and always agrees with the record.
//!
//! Names and attributes follow the OpenTelemetry GenAI semantic conventions where they
//! apply (`invoke_agent`, `chat`, `execute_tool`; `gen_ai.request.model`,
//! `gen_ai.usage.input_tokens`, `gen_ai.tool.name`, `gen_ai.tool.call.id`), and `cordon.*`
//! for the rest (approvals and their waiting, checkpoints, the workspace, policy decisions).

use cordon_core::{Event, EventPayload};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// What a span stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SpanKind {
    /// The whole run (`invoke_agent`).
    Agent,
    /// One model call (`chat`).
    Model,
    /// One tool call's execution (`execute_tool`).
    Tool,
    /// A call waiting for a person's decision.
    Approval,
    /// The run waiting: for a host to be approved, or paused until resumed.
    Wait,
    /// A checkpoint of the workspace.
    Checkpoint,
    /// The workspace built from a manifest.
    Workspace,
    /// The sandbox made (for the run's start, or again for a resume).
    Sandbox,
}

/// One span of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Span {
    /// The span it is inside (an index into the list); `None` for the run's.
    pub parent: Option<usize>,
    /// What it stands for.
    pub kind: SpanKind,
    /// Its name, as OpenTelemetry's conventions give it (`chat gpt-5-mini`).
    pub name: String,
    /// When it started, in milliseconds since the Unix epoch.
    pub start_ms: i64,
    /// When it ended.
    pub end_ms: i64,
    /// Its attributes.
    pub attributes: BTreeMap<String, Value>,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// The events it was made from (their positions in the run).
    pub events: Vec<u64>,
}

impl Span {
    /// How long it lasted, in milliseconds.
    pub fn duration_ms(&self) -> i64 {
        self.end_ms.saturating_sub(self.start_ms).max(0)
    }

    fn new(kind: SpanKind, name: String, start_ms: i64, seq: u64) -> Span {
        Span {
            parent: Some(0),
            kind,
            name,
            start_ms,
            end_ms: start_ms,
            attributes: BTreeMap::new(),
            error: None,
            events: vec![seq],
        }
    }

    fn set(&mut self, key: &str, value: impl Into<Value>) {
        self.attributes.insert(key.to_string(), value.into());
    }
}

/// An event's time in milliseconds since the epoch (`None` when it cannot be read).
pub fn millis(ts: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// The spans of a run, the run's own first. Events that cannot be read are skipped.
pub fn spans(events: &[Event]) -> Vec<Span> {
    spans_with(events, false)
}

/// [`spans`]; with `content`, model answers and tool arguments and results go in their
/// spans too (`gen_ai.output.messages`, `gen_ai.tool.call.arguments`,
/// `gen_ai.tool.call.result`), as the log holds them (secrets replaced).
pub fn spans_with(events: &[Event], content: bool) -> Vec<Span> {
    let Some(first) = events.first() else {
        return Vec::new();
    };
    let start = millis(&first.ts).unwrap_or(0);
    let mut out = vec![Span {
        parent: None,
        kind: SpanKind::Agent,
        name: "invoke_agent".into(),
        start_ms: start,
        end_ms: start,
        attributes: BTreeMap::new(),
        error: None,
        events: Vec::new(),
    }];
    out[0].set("gen_ai.operation.name", "invoke_agent");
    out[0].set("cordon.run.id", first.run_id.as_str());
    let mut models: BTreeMap<u32, usize> = BTreeMap::new();
    let mut intents: BTreeMap<String, (i64, u64, String)> = BTreeMap::new();
    let mut decisions: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
    let mut approvals: BTreeMap<String, usize> = BTreeMap::new();
    let mut waits: Vec<usize> = Vec::new();
    let mut model_name = String::new();
    // Building the workspace happened before the run's first event; it is recorded after.
    let materialize_ms = events.iter().find_map(|e| match e.kind.as_str() {
        "workspace_materialized" => e.payload["duration_ms"].as_i64(),
        _ => None,
    });
    let (mut input, mut output) = (0u64, 0u64);
    let mut previous = start;
    for e in events {
        let Some(at) = millis(&e.ts) else { continue };
        let Ok(p) = EventPayload::from_parts(&e.kind, &e.payload) else {
            continue;
        };
        out[0].end_ms = out[0].end_ms.max(at);
        match p {
            EventPayload::RunStarted {
                ref agent,
                ref sandbox,
                ..
            } => {
                let built = materialize_ms.unwrap_or(0);
                if let Some(made) = sandbox.as_ref().and_then(|s| s["create_ms"].as_i64()) {
                    let mut s = Span::new(
                        SpanKind::Sandbox,
                        "create sandbox".into(),
                        at.saturating_sub(built).saturating_sub(made),
                        e.seq,
                    );
                    s.end_ms = at.saturating_sub(built);
                    if let Some(tier) = sandbox.as_ref().and_then(|s| s["tier"].as_str()) {
                        s.set("cordon.sandbox.tier", tier);
                    }
                    out[0].start_ms = out[0].start_ms.min(s.start_ms);
                    out.push(s);
                }
                out[0].start_ms = out[0].start_ms.min(at.saturating_sub(built));
                out[0].name = format!("invoke_agent {}", agent.name);
                out[0].set("gen_ai.agent.name", agent.name.as_str());
                let (provider, model) = agent.model.split_once(':').unwrap_or(("", &agent.model));
                model_name = model.to_string();
                out[0].set("gen_ai.request.model", model);
                out[0].set("gen_ai.provider.name", provider);
                out[0].set("cordon.api", agent.api.as_str());
            }
            EventPayload::WorkspaceMaterialized {
                receipts,
                duration_ms,
                ..
            } => {
                // It ended when the run started (the previous event).
                let ended = previous;
                let took = duration_ms.and_then(|d| i64::try_from(d).ok()).unwrap_or(0);
                let mut s = Span::new(
                    SpanKind::Workspace,
                    "materialize workspace".into(),
                    ended.saturating_sub(took),
                    e.seq,
                );
                s.end_ms = ended;
                s.set(
                    "cordon.workspace.entries",
                    receipts.as_array().map_or(0, Vec::len) as u64,
                );
                out.push(s);
            }
            EventPayload::ModelRequest { turn, input_items } => {
                let mut s = Span::new(SpanKind::Model, format!("chat {model_name}"), at, e.seq);
                s.set("gen_ai.operation.name", "chat");
                s.set("gen_ai.request.model", model_name.as_str());
                s.set("cordon.turn", turn);
                s.set("cordon.input_items", input_items as u64);
                models.insert(turn, out.len());
                out.push(s);
            }
            EventPayload::ModelRetry { turn, error, .. } => {
                if let Some(&i) = models.get(&turn) {
                    let n = out[i]
                        .attributes
                        .get("cordon.retries")
                        .and_then(Value::as_u64);
                    out[i].set("cordon.retries", n.unwrap_or(0) + 1);
                    out[i].set("cordon.last_retry_error", error);
                    out[i].events.push(e.seq);
                }
            }
            EventPayload::ModelResponse { turn, response } => {
                if let Some(i) = models.remove(&turn) {
                    let s = &mut out[i];
                    s.end_ms = at;
                    s.events.push(e.seq);
                    s.set("gen_ai.usage.input_tokens", response.usage.input_tokens);
                    s.set("gen_ai.usage.output_tokens", response.usage.output_tokens);
                    if let Some(m) = &response.model {
                        s.set("gen_ai.response.model", m.as_str());
                    }
                    if let Some(id) = &response.id {
                        s.set("gen_ai.response.id", id.as_str());
                    }
                    if let Some(r) = &response.stop_reason {
                        s.set("gen_ai.response.finish_reasons", json!([r]));
                    }
                    if content {
                        let parts = json!([{"type": "text", "content": response.text()}]);
                        s.set(
                            "gen_ai.output.messages",
                            json!([{"role": "assistant", "parts": parts}]).to_string(),
                        );
                    }
                }
                input = input.saturating_add(response.usage.input_tokens);
                output = output.saturating_add(response.usage.output_tokens);
            }
            EventPayload::PolicyDecision {
                call_id,
                verdict,
                rules,
                ..
            } => {
                decisions.insert(call_id, (verdict, rules));
            }
            EventPayload::ToolCallIntent {
                call_id, arguments, ..
            } => {
                intents.insert(call_id, (at, e.seq, arguments));
            }
            EventPayload::ToolResult {
                call_id,
                tool,
                is_error,
                duration_ms,
                not_run,
                output: text,
                ..
            } => {
                let mut s = tool_span(&tool, &call_id, at, duration_ms, e.seq);
                if not_run {
                    s.set("cordon.tool.not_run", true);
                }
                if let Some((intent_at, seq, arguments)) = intents.remove(&call_id) {
                    s.events.insert(0, seq);
                    s.set("cordon.tool.intent_ms", intent_at);
                    if content {
                        s.set("gen_ai.tool.call.arguments", arguments);
                    }
                }
                if content {
                    s.set("gen_ai.tool.call.result", text.as_str());
                }
                if let Some((verdict, rules)) = decisions.remove(&call_id) {
                    s.set("cordon.policy.verdict", verdict);
                    s.set("cordon.policy.rules", json!(rules));
                }
                if is_error {
                    s.error = Some(first_line(&text));
                }
                out.push(s);
            }
            EventPayload::ToolReplayed {
                call_id,
                tool,
                is_error,
                duration_ms,
                ..
            } => {
                let mut s = tool_span(&tool, &call_id, at, duration_ms, e.seq);
                s.set("cordon.tool.replayed", true);
                if is_error {
                    s.error = Some("the replayed call failed".into());
                }
                out.push(s);
            }
            EventPayload::ApprovalRequested {
                call_id,
                tool,
                rules,
                ..
            } => {
                let mut s = Span::new(SpanKind::Approval, format!("approval {tool}"), at, e.seq);
                s.set("gen_ai.tool.call.id", call_id.as_str());
                s.set("cordon.approval.rules", json!(rules));
                approvals.insert(call_id, out.len());
                out.push(s);
            }
            EventPayload::ApprovalGranted { call_id, by, .. } => {
                close_approval(
                    &mut out,
                    &mut approvals,
                    &call_id,
                    at,
                    e.seq,
                    "approved",
                    &by,
                );
            }
            EventPayload::ApprovalRejected { call_id, by, .. } => {
                close_approval(
                    &mut out,
                    &mut approvals,
                    &call_id,
                    at,
                    e.seq,
                    "rejected",
                    &by,
                );
            }
            EventPayload::HostRequested { hosts } => {
                let mut s = Span::new(SpanKind::Wait, "wait for host approval".into(), at, e.seq);
                s.set("cordon.hosts", json!(hosts));
                waits.push(out.len());
                out.push(s);
            }
            EventPayload::RunPaused { reason } => {
                let mut s = Span::new(SpanKind::Wait, "paused".into(), at, e.seq);
                s.set("cordon.pause.reason", reason);
                waits.push(out.len());
                out.push(s);
            }
            EventPayload::RunResumed { ref sandbox, .. } => {
                if let Some(made) = sandbox.as_ref().and_then(|s| s["create_ms"].as_i64()) {
                    let mut s = Span::new(
                        SpanKind::Sandbox,
                        "create sandbox".into(),
                        at.saturating_sub(made),
                        e.seq,
                    );
                    s.end_ms = at;
                    out.push(s);
                }
                for i in waits.drain(..) {
                    out[i].end_ms = at;
                    out[i].events.push(e.seq);
                    let waited = out[i].duration_ms();
                    out[i].set("cordon.wait_ms", waited);
                }
            }
            EventPayload::ContextCompacted {
                turn,
                replaced,
                tokens_before,
                tokens_after,
                usage,
                items,
                ..
            } => {
                // The summary call ran from the event before this one to this one.
                let mut s = Span::new(
                    SpanKind::Model,
                    format!("chat {model_name}"),
                    previous,
                    e.seq,
                );
                s.end_ms = at;
                s.set("gen_ai.operation.name", "chat");
                s.set("gen_ai.request.model", model_name.as_str());
                s.set("cordon.turn", turn);
                s.set(
                    "cordon.compaction",
                    if items.is_some() { "server" } else { "summary" },
                );
                s.set("cordon.compaction.replaced_items", replaced as u64);
                s.set("cordon.compaction.tokens_before", tokens_before);
                s.set("cordon.compaction.tokens_after", tokens_after);
                s.set("gen_ai.usage.input_tokens", usage.input_tokens);
                s.set("gen_ai.usage.output_tokens", usage.output_tokens);
                input = input.saturating_add(usage.input_tokens);
                output = output.saturating_add(usage.output_tokens);
                out.push(s);
            }
            EventPayload::Checkpoint {
                snapshot_id,
                files_read,
                bytes_read,
                ..
            } => {
                let mut s = Span::new(SpanKind::Checkpoint, "checkpoint".into(), previous, e.seq);
                s.end_ms = at;
                s.set("cordon.snapshot.id", snapshot_id);
                s.set("cordon.checkpoint.files_read", files_read);
                s.set("cordon.checkpoint.bytes_read", bytes_read);
                out.push(s);
            }
            EventPayload::RunFailed { error } => {
                for (_, i) in std::mem::take(&mut models) {
                    out[i].end_ms = at;
                    out[i].error = Some(first_line(&error));
                }
                out[0].error = Some(first_line(&error));
            }
            EventPayload::BudgetExceeded { budget, .. } => {
                out[0].error = Some(format!("the {budget} budget ran out"));
            }
            _ => {}
        }
        previous = at;
    }
    let end = out[0].end_ms;
    for i in models
        .into_values()
        .chain(approvals.into_values())
        .chain(waits)
    {
        out[i].end_ms = end;
        out[i].set("cordon.unfinished", true);
    }
    out[0].set(
        "cordon.run.status",
        cordon_core::RunStatus::of_events(events).as_str(),
    );
    out[0].set("gen_ai.usage.input_tokens", input);
    out[0].set("gen_ai.usage.output_tokens", output);
    out[0].events = events.iter().map(|e| e.seq).collect();
    out
}

/// A tool call's execution: the `duration_ms` before its result, recorded `at`.
fn tool_span(tool: &str, call_id: &str, at: i64, duration_ms: u64, seq: u64) -> Span {
    let began = at.saturating_sub(i64::try_from(duration_ms).unwrap_or(0));
    let mut s = Span::new(SpanKind::Tool, format!("execute_tool {tool}"), began, seq);
    s.end_ms = at;
    s.set("gen_ai.operation.name", "execute_tool");
    s.set("gen_ai.tool.name", tool);
    s.set("gen_ai.tool.call.id", call_id);
    s
}

fn close_approval(
    out: &mut [Span],
    open: &mut BTreeMap<String, usize>,
    call_id: &str,
    at: i64,
    seq: u64,
    decision: &str,
    by: &str,
) {
    if let Some(i) = open.remove(call_id) {
        let s = &mut out[i];
        s.end_ms = at;
        s.events.push(seq);
        s.set("cordon.approval.decision", decision);
        s.set("cordon.approval.by", by);
        let waited = s.duration_ms();
        s.set("cordon.wait_ms", waited);
    }
}

fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    line.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use cordon_core::RunId;

    fn at(ms: i64) -> String {
        let t =
            time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap();
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    }

    #[test]
    fn model_calls_tools_approvals_and_waits_become_spans_with_their_times() {
        let run = RunId::new();
        let mut prev = cordon_core::event::GENESIS_HASH.to_string();
        let mut events = Vec::new();
        let mut push = |ms: i64, p: EventPayload| {
            let e = Event::new(&run, events.len() as u64, at(ms), &p, &prev);
            prev = e.hash.clone();
            events.push(e);
        };
        let agent: cordon_core::AgentInfo = serde_json::from_value(json!({
            "name": "reviewer", "instructions": "", "model": "openai:gpt-5-mini",
            "api": "responses", "settings": {}, "tools": [], "max_turns": 5
        }))
        .unwrap();
        push(
            1_000,
            EventPayload::RunStarted {
                agent,
                cordon_version: "0".into(),
                manifest_digest: None,
                policy_digest: None,
                sandbox: None,
                policy: None,
            },
        );
        push(
            1_010,
            EventPayload::ModelRequest {
                turn: 1,
                input_items: 1,
            },
        );
        let response: cordon_core::ModelResponse = serde_json::from_value(json!({
            "items": [], "usage": {"input_tokens": 100, "output_tokens": 7}
        }))
        .unwrap();
        push(1_310, EventPayload::ModelResponse { turn: 1, response });
        push(
            1_311,
            EventPayload::ToolCallIntent {
                call_id: "c1".into(),
                tool: "exec_command".into(),
                arguments: "{}".into(),
                idempotency_key: "k".into(),
            },
        );
        push(
            1_312,
            EventPayload::ApprovalRequested {
                call_id: "c1".into(),
                tool: "exec_command".into(),
                arguments: "{}".into(),
                arguments_hash: "h".into(),
                rules: vec!["ask-rm".into()],
                approvers: vec![],
            },
        );
        push(
            61_312,
            EventPayload::ApprovalGranted {
                call_id: "c1".into(),
                arguments_hash: "h".into(),
                by: "ana".into(),
                always: false,
                always_rules: vec![],
            },
        );
        push(
            61_400,
            EventPayload::ToolResult {
                call_id: "c1".into(),
                tool: "exec_command".into(),
                output: "exit 2\nboom".into(),
                images: vec![],
                is_error: true,
                duration_ms: 40,
                not_run: false,
            },
        );
        let s = spans(&events);
        let kinds: Vec<SpanKind> = s.iter().map(|s| s.kind).collect();
        assert_eq!(
            kinds,
            [
                SpanKind::Agent,
                SpanKind::Model,
                SpanKind::Approval,
                SpanKind::Tool
            ]
        );
        assert_eq!(s[0].name, "invoke_agent reviewer");
        assert_eq!(s[0].duration_ms(), 60_400);
        assert_eq!(s[1].name, "chat gpt-5-mini");
        assert_eq!(s[1].duration_ms(), 300);
        assert_eq!(s[1].attributes["gen_ai.usage.input_tokens"], 100);
        assert_eq!(s[2].attributes["cordon.wait_ms"], 60_000);
        assert_eq!(s[2].attributes["cordon.approval.by"], "ana");
        assert_eq!((s[3].start_ms, s[3].end_ms), (61_360, 61_400));
        assert_eq!(s[3].attributes["gen_ai.tool.call.id"], "c1");
        assert_eq!(s[3].error.as_deref(), Some("exit 2"));
        assert!(s.iter().skip(1).all(|x| x.parent == Some(0)));
    }
}
