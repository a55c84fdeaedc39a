//! The run log's events and their hash chain.
//!
//! Each event's hash is SHA-256 over the RFC 8785 canonical JSON (see [`crate::canonical`])
//! of `{run_id, seq, ts, kind, payload, prev_hash}`. The first event's
//! `prev_hash` is [`GENESIS_HASH`]. Changing any stored field of any event breaks the chain
//! at that event, which [`verify_chain`] reports.

use crate::{Item, RunId, Usage};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The `prev_hash` of a run's first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One recorded step of a run, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// The run it belongs to.
    pub run_id: RunId,
    /// Position in the run, from 0, without gaps.
    pub seq: u64,
    /// When it was recorded (RFC 3339, UTC).
    pub ts: String,
    /// The event's kind, the tag of [`EventPayload`].
    pub kind: String,
    /// The kind's fields, as JSON.
    pub payload: Value,
    /// The previous event's hash ([`GENESIS_HASH`] for the first).
    pub prev_hash: String,
    /// This event's hash.
    pub hash: String,
}

impl Event {
    /// Builds the event that follows `prev_hash` at `seq`, computing its hash.
    pub fn new(
        run_id: &RunId,
        seq: u64,
        ts: String,
        payload: &EventPayload,
        prev_hash: &str,
    ) -> Self {
        Event::new_canonical(run_id, seq, ts, payload, prev_hash).0
    }

    /// [`Event::new`], with the payload's canonical text (what a store keeps).
    pub fn new_canonical(
        run_id: &RunId,
        seq: u64,
        ts: String,
        payload: &EventPayload,
        prev_hash: &str,
    ) -> (Self, String) {
        let (kind, payload) = payload.to_parts();
        Event::from_parts_canonical(run_id, seq, ts, kind, payload, prev_hash)
    }

    /// [`Event::from_parts`], with the payload's canonical text.
    pub fn from_parts_canonical(
        run_id: &RunId,
        seq: u64,
        ts: String,
        kind: String,
        payload: Value,
        prev_hash: &str,
    ) -> (Self, String) {
        let (hash, text) = hash_and_payload(run_id, seq, &ts, &kind, &payload, prev_hash);
        let event = Event {
            run_id: run_id.clone(),
            seq,
            ts,
            kind,
            payload,
            prev_hash: prev_hash.to_string(),
            hash,
        };
        (event, text)
    }

    /// Builds an event from its stored `kind` and `payload` columns, computing its hash.
    pub fn from_parts(
        run_id: &RunId,
        seq: u64,
        ts: String,
        kind: String,
        payload: Value,
        prev_hash: &str,
    ) -> Self {
        Event::from_parts_canonical(run_id, seq, ts, kind, payload, prev_hash).0
    }

    /// The typed payload, or an error naming the event when it does not parse.
    pub fn typed(&self) -> Result<EventPayload, serde_json::Error> {
        EventPayload::from_parts(&self.kind, &self.payload)
    }
}

/// Information about the agent, recorded once when a run starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentInfo {
    /// The agent's name.
    pub name: String,
    /// The operator's instructions to the model.
    pub instructions: String,
    /// `PROVIDER:MODEL` as given.
    pub model: String,
    /// The wire protocol used (`responses` or `chat`).
    pub api: String,
    /// Model settings (temperature and so on) as sent.
    pub settings: Value,
    /// Names of the tools offered.
    pub tools: Vec<String>,
    /// The most model calls the run may make.
    pub max_turns: u32,
    /// The JSON schema the final output must match, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<Value>,
    /// Budgets beyond `max_turns` (tool calls, tokens, wall time, cost), as set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budgets: Option<Value>,
    /// Which tool calls need a person's approval, as set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvals: Option<Value>,
    /// The MCP servers the agent declared (`[mcp_servers]`), without secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcp_servers: Option<Value>,
    /// The skills placed for the agent: name, description, where.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skills: Option<Value>,
    /// When the conversation is compacted: the context window and shares used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compaction: Option<Value>,
    /// The guardrails declared in the agent file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guardrails: Option<Value>,
    /// The agents this one may hand the conversation to: `[{agent, tool, description,
    /// history}]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handoffs: Option<Value>,
    /// The other agents of the run's team (those handoffs reach), as the entry agent records
    /// them, so a resume goes on with whichever was active.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<AgentInfo>,
    /// Agents offered as tools, as declared (each with its agent), so a resume offers them
    /// again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_tools: Option<Value>,
}

/// One file of a policy, as read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicySource {
    /// Its path, or `builtin:NAME` for a pack built into cordon.
    pub origin: String,
    /// Its whole text.
    pub text: String,
}

/// The policy a run is under, recorded whole so that a resume rebuilds exactly it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRecord {
    /// The policy's name.
    pub name: String,
    /// SHA-256 over every file's origin and text (`sha256:HEX`).
    pub digest: String,
    /// Its files, base first.
    pub files: Vec<PolicySource>,
}

/// A whole model response, recorded so that resume never asks for it again.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ModelResponse {
    /// The provider's response id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The model that answered, as the provider names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The output items: messages, reasoning, tool calls.
    pub items: Vec<Item>,
    /// Tokens spent.
    pub usage: Usage,
    /// Why the model stopped (`stop`, `tool_calls`, `completed`, `length`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<String>,
    /// Stream events this version of cordon did not understand, or could not parse, kept
    /// as they came.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unknown_events: Vec<Value>,
    /// What decoding noticed about the server's answer and how cordon read it (a legacy
    /// field it ignored, a name sent again in every chunk, no usage).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// What the server sent, as it came (`{"body": ...}` for a whole answer, `{"events":
    /// [...]}` for a stream, at most 2 MiB), kept when decoding met anything unexpected or
    /// the provider asks for it (`record_raw`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wire: Option<Value>,
    /// The provider's final response object, when the protocol sends one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<Value>,
}

impl ModelResponse {
    /// The tool calls the model asked for, in order.
    pub fn tool_calls(&self) -> Vec<crate::ToolCall> {
        self.items
            .iter()
            .filter_map(|i| match i {
                Item::ToolCall(c) => Some(c.clone()),
                _ => None,
            })
            .collect()
    }

    /// Why the answer stopped short of its end, when it did: the output limit (`length` on
    /// Chat Completions, `incomplete: max_output_tokens` on the Responses API) or a content
    /// filter. Such an answer is not a final one.
    pub fn cut_off(&self) -> Option<&str> {
        let reason = self.stop_reason.as_deref()?;
        let reason = reason.strip_prefix("incomplete: ").unwrap_or(reason);
        matches!(
            reason,
            "length" | "max_tokens" | "max_output_tokens" | "content_filter"
        )
        .then_some(reason)
    }

    /// The text of the assistant's messages, joined.
    pub fn text(&self) -> String {
        self.items
            .iter()
            .filter_map(Item::message_text)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The model's reasoning as the provider sent it to be read: the Responses API's
    /// `summary` parts, or reasoning text (Chat Completions' `reasoning_content`, kept as a
    /// reasoning item's `content`), joined; empty when there was none.
    pub fn reasoning_text(&self) -> String {
        self.items
            .iter()
            .filter_map(|i| match i {
                Item::Reasoning { raw } => Some(
                    raw["summary"]
                        .as_array()
                        .into_iter()
                        .chain(raw["content"].as_array())
                        .flatten(),
                ),
                _ => None,
            })
            .flatten()
            .filter_map(|part| part["text"].as_str())
            .filter(|t| !t.trim().is_empty())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A file a run produced under one of its outputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    /// Workspace-relative path.
    pub path: String,
    /// Size in bytes.
    pub bytes: u64,
    /// `sha256:HEX` of the content.
    pub sha256: String,
    /// The media type its name suggests (`text/markdown`, `application/octet-stream`).
    pub media_type: String,
}

/// What happened, one kind per variant. The tag is the event's `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "payload", rename_all = "snake_case")]
// `run_started` carries the whole agent, once per run; boxing it would cost every reader.
#[allow(clippy::large_enum_variant)]
pub enum EventPayload {
    /// A run began.
    RunStarted {
        /// The agent and its model settings.
        agent: AgentInfo,
        /// The version of cordon running it.
        cordon_version: String,
        /// Digest of the workspace manifest, once manifests exist.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        manifest_digest: Option<String>,
        /// Digest of the policy (see [`PolicyRecord::digest`]), when the run has one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        policy_digest: Option<String>,
        /// The sandbox the run's commands use: its tier and what it enforces.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sandbox: Option<Value>,
        /// The policy the run is under, every file of it: a resume runs under the same.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        policy: Option<PolicyRecord>,
    },
    /// The workspace was built from a manifest.
    WorkspaceMaterialized {
        /// SHA-256 of the manifest file.
        manifest_digest: String,
        /// One receipt per entry: path, type, digest, bytes, files.
        receipts: Value,
        /// The manifest file's text, so the record says what the workspace was built from
        /// (runs recorded before it was kept have only the digest).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        manifest: Option<String>,
        /// How long building it took, in milliseconds (before the run started).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duration_ms: Option<u64>,
    },
    /// Secrets were replaced in the event before this one before it was stored: which kinds
    /// and how many. Never the values.
    SecretsRedacted {
        /// The event they were replaced in.
        seq: u64,
        /// Its kind.
        event: String,
        /// How many occurrences, by the secret's or detector's name.
        found: std::collections::BTreeMap<String, u64>,
    },
    /// The run's outputs (the manifest's `outputs`) were collected at its end.
    ArtifactsCollected {
        /// Every file found under the outputs.
        artifacts: Vec<Artifact>,
        /// Outputs the run was required to make and did not.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        missing: Vec<String>,
        /// What was found and not collected (links, special files, more than the limit).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        notes: Vec<String>,
    },
    /// Input from the user: the task, or later additions.
    UserInput {
        /// What the user said.
        text: String,
    },
    /// A model call is about to be made.
    ModelRequest {
        /// Which model call of the run this is, from 1.
        turn: u32,
        /// How many conversation items are sent.
        input_items: usize,
    },
    /// A model call failed and will be tried again.
    ModelRetry {
        /// The turn being retried.
        turn: u32,
        /// The attempt that failed, from 1.
        attempt: u32,
        /// What went wrong.
        error: String,
        /// How long cordon waits before the next attempt.
        delay_ms: u64,
    },
    /// This run carries on a conversation: it starts from the history of the run `from` (its
    /// conversation as that run ended), and belongs to the conversation named
    /// `conversation`, if it was given a name.
    ConversationContinued {
        /// The run whose history this one starts from (none: the conversation's first run).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<String>,
        /// The conversation's name, when it has one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        conversation: Option<String>,
        /// The history carried over, as that run's model would next have seen it.
        items: Vec<Item>,
    },
    /// A guardrail tripped: on the task or the final answer (the run stops), or on a tool
    /// call's arguments (the call does not run) or its result (the model is not shown it).
    GuardrailTripped {
        /// The guardrail's name.
        guardrail: String,
        /// `input`, `output`, `tool_call` or `tool_result`.
        stage: String,
        /// The call, for the tool stages.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        call_id: Option<String>,
        /// Why it tripped.
        reason: String,
    },
    /// The active agent handed the conversation to another agent of the run's team (the
    /// model called `transfer_to_NAME`): that agent answers from the next model call on, and
    /// sees the history its handoff's filter keeps.
    HandedOff {
        /// The call that asked for it.
        call_id: String,
        /// The agent that handed off.
        from: String,
        /// The agent that continues.
        to: String,
        /// Why, as the model said.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// The filter, as declared: `all`, `none` or `last N turns`.
        history: String,
        /// The conversation the receiving agent sees keeps its first item and the items from
        /// this index on (1: all of it).
        kept_from: usize,
        /// A message added after them, telling the receiving agent who handed off and why
        /// (when history was left out).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// A call could not finish and was left unanswered: the run pauses, and a resume runs
    /// it again, whatever it may act on (a sub-agent that paused, or waits for a person,
    /// goes on from where it stopped).
    ToolSuspended {
        /// The call.
        call_id: String,
        /// Its tool.
        tool: String,
        /// Why, and what to do.
        reason: String,
    },
    /// The run waits for a person through a call it left unanswered (a sub-agent's call
    /// waits for an approval): it stops here, and `resume` goes on once they decided.
    RunWaiting {
        /// Who waits for what, and what to do.
        reason: String,
    },
    /// This run is a sub-agent: a call of another run's (its parent's) started it, and its
    /// final answer is that call's result.
    SpawnedBy {
        /// The parent run.
        parent: String,
        /// The parent's call that started this run.
        call_id: String,
        /// The tool that call used (the sub-agent's name in the parent).
        tool: String,
        /// Where it works: `shared` (the parent's workspace), `copy` (a copy of the parent's
        /// workspace at its last checkpoint) or `manifest` (its own).
        workspace: String,
    },
    /// A later run carries on this run's conversation (recorded in the earlier run).
    ContinuedBy {
        /// The later run.
        run: String,
    },
    /// An MCP server started for the run and answered; the tools it offers.
    McpServerStarted {
        /// Its name in the agent file.
        server: String,
        /// Where it runs: `sandbox`, `host` (declared trusted) or `remote`.
        runs: String,
        /// `stdio` or `http`.
        transport: String,
        /// The MCP protocol version agreed.
        protocol: String,
        /// The server's own name and version, as it gave them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        implementation: Option<String>,
        /// The tools offered, as the model calls them.
        tools: Vec<String>,
        /// Its tools that the allow and deny lists hold back.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        withheld: Vec<String>,
    },
    /// A source's tools changed during the run (an MCP server said so): what it offers now,
    /// or why they could not be listed (the old list stays).
    ToolsChanged {
        /// The source (an MCP server's name).
        source: String,
        /// The tools it offers now.
        tools: Vec<String>,
        /// What went wrong: listing them failed (the old list stays), or a name another
        /// tool has already was not offered.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// The conversation neared the model's context window, and its older part was replaced
    /// by a summary the model wrote: later requests carry the first `kept_head` items, the
    /// summary, and the items after the `replaced` ones.
    ContextCompacted {
        /// The turn it came before.
        turn: u32,
        /// The items kept at the start (the task).
        kept_head: usize,
        /// How many items after those the summary replaces.
        replaced: usize,
        /// The summary.
        summary: String,
        /// The conversation's estimated size before and after, in tokens.
        tokens_before: u64,
        /// See `tokens_before`.
        tokens_after: u64,
        /// What writing the summary cost (it counts against the budgets).
        usage: Usage,
        /// When the provider compacted (server-side): the items that replace the replaced
        /// ones, instead of the summary.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        items: Option<Vec<Item>>,
    },
    /// The model answered, in full.
    ModelResponse {
        /// The turn answered.
        turn: u32,
        /// The whole response.
        response: ModelResponse,
    },
    /// A tool call is about to run.
    ToolCallIntent {
        /// The call's id.
        call_id: String,
        /// The tool's name.
        tool: String,
        /// The exact arguments as the model gave them.
        arguments: String,
        /// Stable key for the call's side effects: `run_id/call_id`.
        idempotency_key: String,
    },
    /// A tool call finished (or was refused); what the model reads.
    ToolResult {
        /// The call answered.
        call_id: String,
        /// The tool's name.
        tool: String,
        /// The output as given to the model.
        output: String,
        /// Images returned with the output, as `data:` URLs.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        images: Vec<String>,
        /// Whether the call failed.
        is_error: bool,
        /// How long it took.
        duration_ms: u64,
        /// Set when cordon answered the call without running it (a person rejected it, or
        /// it was interrupted and could not safely run again).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        not_run: bool,
    },
    /// A call that had finished was run again on resume, because the workspace was
    /// restored to a checkpoint taken before it. Its recorded result stays what the model
    /// saw; this only puts its effects back into the workspace.
    ToolReplayed {
        /// The call replayed.
        call_id: String,
        /// The tool's name.
        tool: String,
        /// Whether the replay failed (the original did not, or it would not change files).
        is_error: bool,
        /// Whether the replay's output equals the recorded one.
        same_output: bool,
        /// How long it took.
        duration_ms: u64,
    },
    /// A tool call needs a person's approval; the run waits (status `awaiting_approval`).
    ApprovalRequested {
        /// The call.
        call_id: String,
        /// Its tool.
        tool: String,
        /// Its exact arguments.
        arguments: String,
        /// SHA-256 of the arguments: an approval binds to it.
        arguments_hash: String,
        /// The approval rules the call matched (`tool:NAME`, `command:PATTERN`): what an
        /// "always" approval of it would cover.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        rules: Vec<String>,
        /// Who may approve it (empty: anyone).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        approvers: Vec<String>,
    },
    /// The policy judged a tool call, before it ran or waited.
    PolicyDecision {
        /// The call.
        call_id: String,
        /// Its tool.
        tool: String,
        /// `allow`, `ask` or `deny`.
        verdict: String,
        /// The call's risk class (`read_only`, `workspace_write`, `network`,
        /// `credential_use`, `destructive`).
        class: String,
        /// The keys of the rules that made the decision.
        rules: Vec<String>,
        /// The decision as one line: verdict, rules and their reasons.
        summary: String,
    },
    /// A person approved a call (for these exact arguments).
    ApprovalGranted {
        /// The call.
        call_id: String,
        /// The arguments approved.
        arguments_hash: String,
        /// Who decided.
        by: String,
        /// Whether the person also approved later calls (see `always_rules`). Logs written
        /// before `always_rules` existed approve only this call.
        #[serde(default)]
        always: bool,
        /// The rules approved for the rest of the run: a later call runs without asking only
        /// when every rule it matches is among them. Never wider than what the call matched.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        always_rules: Vec<String>,
    },
    /// A person refused a call; the model is told why.
    ApprovalRejected {
        /// The call.
        call_id: String,
        /// Who decided.
        by: String,
        /// What the model is told.
        #[serde(default)]
        message: String,
    },
    /// The run waits for a person to allow hosts its sandbox asked to reach, which the
    /// policy leaves to a person (`cordon approve RUN --host HOST`, then `cordon resume`).
    HostRequested {
        /// The hosts, as requests named them.
        hosts: Vec<String>,
    },
    /// A person allowed the sandbox to reach a host for the rest of the run (through the
    /// egress proxy), where the policy leaves the host to its default or to a person.
    HostGranted {
        /// The host, as requests name it (lowercase, no port).
        host: String,
        /// Who decided.
        by: String,
    },
    /// A request from the sandbox through the egress proxy, as the proxy saw it: allowed,
    /// refused, or failed. HTTPS through a tunnel shows only host and port.
    NetworkRequest {
        /// The host the request named.
        host: String,
        /// The port.
        port: u16,
        /// `CONNECT` for a tunnel, else the HTTP method.
        method: String,
        /// The path, for plain HTTP (its query is left out: it may hold secrets).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<String>,
        /// `allow`, `ask` or `deny`: the policy's decision (an `ask` is refused until a
        /// person allows the host).
        verdict: String,
        /// The keys of the rules that made the decision.
        rules: Vec<String>,
        /// The decision, or why an allowed request failed, as one line.
        summary: String,
        /// The HTTP status the proxy or the upstream answered (`None`: the connection
        /// ended before one).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
        /// Bytes from the sandbox to the upstream.
        sent: u64,
        /// Bytes from the upstream to the sandbox.
        received: u64,
        /// How many requests this event stands for: 1, or more when a flood was recorded
        /// as one summary.
        #[serde(default = "one")]
        count: u64,
    },
    /// The workspace was snapshotted after tool calls that may have changed it.
    Checkpoint {
        /// The snapshot's id in the snapshot store.
        snapshot_id: String,
        /// Files read to take it (the rest were unchanged).
        files_read: u64,
        /// Bytes read to take it.
        bytes_read: u64,
        /// Paths the checkpoint rules left out (`[checkpoints]` patterns, `.gitignore`
        /// files), a directory standing for all it holds; the first of them by name.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        skipped: Vec<String>,
        /// How many paths were left out that way in all.
        #[serde(default, skip_serializing_if = "is_zero")]
        skipped_count: u64,
    },
    /// The model's final output did not match the required schema; it is asked again.
    OutputInvalid {
        /// Why validation failed.
        error: String,
    },
    /// A budget ran out; the run stops.
    BudgetExceeded {
        /// Which budget (`max_turns`, `max_tool_calls`, `max_input_tokens`,
        /// `max_output_tokens`, `max_wall_time_secs`, `max_cost_usd`).
        budget: String,
        /// The limit.
        limit: f64,
        /// How much had been used (or would have been, for a batch of tool calls).
        used: f64,
        /// For a batch of tool calls: how many the model asked for (they did not run).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        asked: Option<u64>,
    },
    /// The run was picked up again (after a crash, a failure or a budget), in a fresh sandbox
    /// restored from its last checkpoint.
    RunResumed {
        /// The checkpoint the workspace was restored from, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from_checkpoint: Option<String>,
        /// Budgets raised for the rest of the run, as given.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        raised: Option<Value>,
        /// The host directory the run works in from now on (absolute). Later resumes
        /// continue here.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        workspace: Option<String>,
        /// Whether that directory was restored from the checkpoint (a fresh one), rather
        /// than found as the checkpoint left it.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        restored: bool,
        /// The sandbox the resumed run's commands use, as `run_started` records it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sandbox: Option<Value>,
        /// What the resume noticed without failing (mode bits a restore dropped, ...).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        notes: Vec<String>,
        /// The policy the run is under from now on, when the person resuming it gave
        /// another (with `--policy`); unset, the run stays under the one it had.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        policy: Option<PolicyRecord>,
    },
    /// The run was paused (the user pressed Ctrl-C); `cordon resume` continues it.
    RunPaused {
        /// Why.
        reason: String,
    },
    /// The run finished with a final answer.
    RunCompleted {
        /// The final answer's text.
        output: String,
        /// The parsed final output, when a schema was required.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        structured: Option<Value>,
    },
    /// The run stopped on an error.
    RunFailed {
        /// What went wrong, as shown to the user.
        error: String,
    },
}

impl EventPayload {
    /// The event's kind, as stored in the `kind` column.
    pub fn kind(&self) -> &'static str {
        match self {
            EventPayload::RunStarted { .. } => "run_started",
            EventPayload::WorkspaceMaterialized { .. } => "workspace_materialized",
            EventPayload::ArtifactsCollected { .. } => "artifacts_collected",
            EventPayload::SecretsRedacted { .. } => "secrets_redacted",
            EventPayload::UserInput { .. } => "user_input",
            EventPayload::ModelRequest { .. } => "model_request",
            EventPayload::ModelRetry { .. } => "model_retry",
            EventPayload::ModelResponse { .. } => "model_response",
            EventPayload::ToolCallIntent { .. } => "tool_call_intent",
            EventPayload::ToolResult { .. } => "tool_result",
            EventPayload::ToolReplayed { .. } => "tool_replayed",
            EventPayload::ApprovalRequested { .. } => "approval_requested",
            EventPayload::PolicyDecision { .. } => "policy_decision",
            EventPayload::ApprovalGranted { .. } => "approval_granted",
            EventPayload::ApprovalRejected { .. } => "approval_rejected",
            EventPayload::HostRequested { .. } => "host_requested",
            EventPayload::HostGranted { .. } => "host_granted",
            EventPayload::NetworkRequest { .. } => "network_request",
            EventPayload::Checkpoint { .. } => "checkpoint",
            EventPayload::OutputInvalid { .. } => "output_invalid",
            EventPayload::BudgetExceeded { .. } => "budget_exceeded",
            EventPayload::RunResumed { .. } => "run_resumed",
            EventPayload::RunPaused { .. } => "run_paused",
            EventPayload::ConversationContinued { .. } => "conversation_continued",
            EventPayload::ContinuedBy { .. } => "continued_by",
            EventPayload::HandedOff { .. } => "handed_off",
            EventPayload::SpawnedBy { .. } => "spawned_by",
            EventPayload::ToolSuspended { .. } => "tool_suspended",
            EventPayload::RunWaiting { .. } => "run_waiting",
            EventPayload::GuardrailTripped { .. } => "guardrail_tripped",
            EventPayload::McpServerStarted { .. } => "mcp_server_started",
            EventPayload::ToolsChanged { .. } => "tools_changed",
            EventPayload::ContextCompacted { .. } => "context_compacted",
            EventPayload::RunCompleted { .. } => "run_completed",
            EventPayload::RunFailed { .. } => "run_failed",
        }
    }

    /// Splits into the stored `kind` and `payload` columns.
    pub fn to_parts(&self) -> (String, Value) {
        let v = serde_json::to_value(self).expect("event payloads always serialize");
        let kind = v["kind"].as_str().unwrap_or_default().to_string();
        let payload = v.get("payload").cloned().unwrap_or(Value::Null);
        (kind, payload)
    }

    /// Rebuilds from the stored `kind` and `payload` columns.
    pub fn from_parts(kind: &str, payload: &Value) -> Result<Self, serde_json::Error> {
        serde_json::from_value(serde_json::json!({ "kind": kind, "payload": payload }))
    }
}

pub use crate::canonical::canonical_json;
use crate::canonical::{Form, forms_differ, write as write_canonical};

/// The hash of an event with these stored fields (lowercase hex SHA-256).
pub fn event_hash(
    run_id: &RunId,
    seq: u64,
    ts: &str,
    kind: &str,
    payload: &Value,
    prev_hash: &str,
) -> String {
    hash_and_payload(run_id, seq, ts, kind, payload, prev_hash).0
}

/// The event's hash, and its payload's canonical text (what the store keeps): the hash is
/// of the canonical JSON of `{kind, payload, prev_hash, run_id, seq, ts}`, written here
/// directly, in that (sorted) key order, without building the object.
pub fn hash_and_payload(
    run_id: &RunId,
    seq: u64,
    ts: &str,
    kind: &str,
    payload: &Value,
    prev_hash: &str,
) -> (String, String) {
    let mut canonical_payload = String::new();
    write_canonical(payload, &mut canonical_payload, Form::Jcs);
    let hash = hash_body(run_id, seq, ts, kind, &canonical_payload, prev_hash);
    (hash, canonical_payload)
}

/// The hash of the event object whose payload is already written canonically.
fn hash_body(
    run_id: &RunId,
    seq: u64,
    ts: &str,
    kind: &str,
    canonical_payload: &str,
    prev_hash: &str,
) -> String {
    let string = |s: &str| Value::String(s.to_string()).to_string();
    let mut body = String::with_capacity(canonical_payload.len() + 256);
    body.push_str("{\"kind\":");
    body.push_str(&string(kind));
    body.push_str(",\"payload\":");
    body.push_str(canonical_payload);
    body.push_str(",\"prev_hash\":");
    body.push_str(&string(prev_hash));
    body.push_str(",\"run_id\":");
    body.push_str(&string(run_id.as_str()));
    body.push_str(",\"seq\":");
    body.push_str(&seq.to_string());
    body.push_str(",\"ts\":");
    body.push_str(&string(ts));
    body.push('}');
    hex::encode(Sha256::digest(body.as_bytes()))
}

/// Whether `e`'s stored hash is the hash of its fields: in RFC 8785 form, or, for an event
/// written before cordon followed RFC 8785, in the form it was written in then.
pub fn hash_holds(e: &Event) -> bool {
    let (jcs, _) = hash_and_payload(&e.run_id, e.seq, &e.ts, &e.kind, &e.payload, &e.prev_hash);
    if e.hash == jcs {
        return true;
    }
    forms_differ(&e.payload) && {
        let mut legacy = String::new();
        write_canonical(&e.payload, &mut legacy, Form::Legacy);
        e.hash == hash_body(&e.run_id, e.seq, &e.ts, &e.kind, &legacy, &e.prev_hash)
    }
}

/// The first place a run's hash chain does not hold.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("event {seq} ({kind}): {reason}")]
pub struct ChainBreak {
    /// The first bad event's position.
    pub seq: u64,
    /// Its kind, as stored.
    pub kind: String,
    /// What does not hold.
    pub reason: String,
}

/// The SHA-256 of a call's arguments, which an approval binds to.
pub fn arguments_hash(arguments: &str) -> String {
    hex::encode(Sha256::digest(arguments.as_bytes()))
}

/// Checks that `events` (in stored order) form an unbroken chain from the genesis hash.
pub fn verify_chain(events: &[Event]) -> Result<(), ChainBreak> {
    let mut prev = GENESIS_HASH.to_string();
    for (i, e) in events.iter().enumerate() {
        let bad = |reason: String| ChainBreak {
            seq: e.seq,
            kind: e.kind.clone(),
            reason,
        };
        if e.seq != i as u64 {
            return Err(bad(format!(
                "expected seq {i}: an event is missing or out of order"
            )));
        }
        if e.prev_hash != prev {
            return Err(bad(
                "prev_hash does not match the previous event's hash".into()
            ));
        }
        if !hash_holds(e) {
            return Err(bad(
                "content does not match its hash: the event was changed after it was written"
                    .into(),
            ));
        }
        prev = e.hash.clone();
    }
    Ok(())
}

/// For `skip_serializing_if`: a count that is zero is left out of the record.
fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The default count of a network request event written before counts existed.
fn one() -> u64 {
    1
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_hash_is_of_the_canonical_object_of_the_stored_fields() {
        // The hash written directly must be the hash of the canonical JSON of the object,
        // as every run recorded so far was hashed.
        let run = RunId::from("01a2-run \"quoted\" ünï");
        for payload in [
            serde_json::json!({ "text": "line\nbreak \u{7f} \"q\" é 🙂", "z": 1, "a": [true, null, 1.5] }),
            serde_json::json!({}),
            serde_json::json!({ "nested": { "b": { "d": 1, "c": 2 }, "a": [] } }),
        ] {
            let old = {
                let body = serde_json::json!({
                    "run_id": run.as_str(), "seq": 7u64, "ts": "2026-12-01T00:00:00.000Z",
                    "kind": "user\tinput", "payload": payload, "prev_hash": "ab\\c",
                });
                hex::encode(Sha256::digest(canonical_json(&body).as_bytes()))
            };
            let (hash, text) = hash_and_payload(
                &run,
                7,
                "2026-12-01T00:00:00.000Z",
                "user\tinput",
                &payload,
                "ab\\c",
            );
            assert_eq!(hash, old);
            assert_eq!(text, canonical_json(&payload));
        }
    }

    use super::*;

    fn chain(n: u64) -> Vec<Event> {
        let run = RunId::from("r1");
        let mut prev = GENESIS_HASH.to_string();
        (0..n)
            .map(|seq| {
                let e = Event::new(
                    &run,
                    seq,
                    "t".into(),
                    &EventPayload::UserInput {
                        text: format!("m{seq}"),
                    },
                    &prev,
                );
                prev = e.hash.clone();
                e
            })
            .collect()
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_depth() {
        let v = serde_json::json!({"b": 1, "a": {"d": [1, {"z": 0, "y": "é"}], "c": null}});
        assert_eq!(
            canonical_json(&v),
            r#"{"a":{"c":null,"d":[1,{"y":"é","z":0}]},"b":1}"#
        );
    }

    #[test]
    fn events_hashed_before_rfc_8785_still_verify_and_new_ones_follow_it() {
        let run = RunId::new();
        let payload = serde_json::json!({"limit": 5.0, "used": 1e21});
        let legacy = crate::canonical::legacy_json(&payload);
        assert_eq!(legacy, r#"{"limit":5.0,"used":1e+21}"#);
        let body = |p: &str| {
            format!(
                r#"{{"kind":"budget_exceeded","payload":{p},"prev_hash":"{GENESIS_HASH}","run_id":"{run}","seq":0,"ts":"t"}}"#
            )
        };
        let mut e = Event::from_parts(
            &run,
            0,
            "t".into(),
            "budget_exceeded".into(),
            payload,
            GENESIS_HASH,
        );
        assert_eq!(
            e.hash,
            hex::encode(Sha256::digest(
                body(r#"{"limit":5,"used":1e+21}"#).as_bytes()
            ))
        );
        e.hash = hex::encode(Sha256::digest(body(&legacy).as_bytes()));
        assert_eq!(verify_chain(std::slice::from_ref(&e)), Ok(()));
        e.hash = hex::encode(Sha256::digest(
            body(r#"{"limit":5.5,"used":1e+21}"#).as_bytes(),
        ));
        assert!(verify_chain(&[e]).is_err());
    }

    #[test]
    fn an_untouched_chain_verifies() {
        assert_eq!(verify_chain(&chain(5)), Ok(()));
    }

    #[test]
    fn an_edited_payload_is_named() {
        let mut c = chain(5);
        c[2].payload = serde_json::json!({"text": "forged"});
        let err = verify_chain(&c).unwrap_err();
        assert_eq!(err.seq, 2);
        assert!(err.reason.contains("changed"));
    }

    #[test]
    fn a_removed_event_is_named() {
        let mut c = chain(5);
        c.remove(3);
        assert_eq!(verify_chain(&c).unwrap_err().seq, 4);
    }

    #[test]
    fn a_rehashed_forgery_breaks_the_next_link() {
        let mut c = chain(5);
        c[1].payload = serde_json::json!({"text": "forged"});
        c[1].hash = event_hash(
            &c[1].run_id,
            1,
            &c[1].ts,
            &c[1].kind,
            &c[1].payload,
            &c[1].prev_hash,
        );
        let err = verify_chain(&c).unwrap_err();
        assert_eq!(err.seq, 2);
        assert!(err.reason.contains("prev_hash"));
    }

    #[test]
    fn kind_matches_the_serialized_tag() {
        let samples = [
            EventPayload::UserInput {
                text: String::new(),
            },
            EventPayload::ModelRequest {
                turn: 1,
                input_items: 0,
            },
            EventPayload::ModelRetry {
                turn: 1,
                attempt: 1,
                error: String::new(),
                delay_ms: 0,
            },
            EventPayload::ModelResponse {
                turn: 1,
                response: ModelResponse::default(),
            },
            EventPayload::ToolCallIntent {
                call_id: String::new(),
                tool: String::new(),
                arguments: String::new(),
                idempotency_key: String::new(),
            },
            EventPayload::ToolResult {
                call_id: String::new(),
                tool: String::new(),
                output: String::new(),
                images: Vec::new(),
                is_error: false,
                duration_ms: 0,
                not_run: false,
            },
            EventPayload::ToolReplayed {
                call_id: String::new(),
                tool: String::new(),
                is_error: false,
                same_output: true,
                duration_ms: 0,
            },
            EventPayload::OutputInvalid {
                error: String::new(),
            },
            EventPayload::BudgetExceeded {
                budget: String::new(),
                limit: 0.0,
                used: 0.0,
                asked: None,
            },
            EventPayload::RunCompleted {
                output: String::new(),
                structured: None,
            },
            EventPayload::RunFailed {
                error: String::new(),
            },
        ];
        for p in samples {
            assert_eq!(p.kind(), p.to_parts().0);
        }
    }

    #[test]
    fn payloads_round_trip_through_parts() {
        let p = EventPayload::BudgetExceeded {
            budget: "max_turns".into(),
            limit: 3.0,
            used: 3.0,
            asked: None,
        };
        let (kind, payload) = p.to_parts();
        assert_eq!(kind, "budget_exceeded");
        assert_eq!(EventPayload::from_parts(&kind, &payload).unwrap(), p);
    }
}
