//! Keeping a long conversation within the model's context window, on any provider and
//! either wire protocol.
//!
//! Before each model call the runner estimates the request's size. Past the threshold
//! (`threshold` × `context_window`), the older part of the conversation is summarised by
//! the model into one message: later requests carry the task, that summary and the recent
//! turns (about `keep_recent` × `context_window` of them, verbatim). The cut never falls
//! between a tool call and its result, or after a reasoning item, so every call still has
//! its result and every request stays valid on both protocols. The summary is recorded as a
//! `context_compacted` event, whose fold rebuilds the same conversation on resume.

use crate::Agent;
use cordon_core::{Content, Item, ToolSpec};
use cordon_model::{ModelRequest, ModelSettings};
use cordon_tools::truncate::{approx_tokens, truncate_middle};
use serde::{Deserialize, Serialize};

/// The share of the window a request may reach before the conversation is compacted.
pub const DEFAULT_THRESHOLD: f64 = 0.8;
/// The share of the window kept verbatim after a compaction (the most recent turns).
pub const DEFAULT_KEEP_RECENT: f64 = 0.25;
/// Tokens each item costs beside its text (its role and framing).
const PER_ITEM: u64 = 4;
/// Tokens counted for an image.
const IMAGE_TOKENS: u64 = 800;
/// The most tokens one item may take in the transcript the summary is written from.
const TRANSCRIPT_ITEM_TOKENS: usize = 2_000;
/// The longest summary asked for.
const SUMMARY_MAX_OUTPUT: u64 = 4_096;

/// What the model is asked when it writes a summary. (A scripted server recognises a
/// summary request by its first words.)
pub const SUMMARY_INSTRUCTIONS: &str = "You are compacting a conversation between a user and an AI agent that uses tools, so that the agent can go on with the task without the older turns. Write a summary that lets it carry on: the task and its goal; what was done (commands run, files read and changed, with their paths); what was found (key facts, values, errors and how they were fixed); decisions made and why; and what remains to do. Keep exact identifiers (paths, names, ids, numbers) that later steps may need. Write only the summary.";

/// When and how a conversation is compacted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Compaction {
    /// The model's context window, in tokens.
    pub context_window: u64,
    /// The share of the window a request may reach (default 0.8).
    #[serde(default = "default_threshold")]
    pub threshold: f64,
    /// The share of the window kept verbatim after a compaction (default 0.25).
    #[serde(default = "default_keep_recent")]
    pub keep_recent: f64,
    /// Instructions for writing the summary, instead of cordon's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    /// Who compacts: cordon by a summary the model writes (any provider), or the provider
    /// itself (the Responses API's `responses/compact`).
    #[serde(default, skip_serializing_if = "Mode::is_summary")]
    pub mode: Mode,
}

/// Who compacts a conversation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// cordon: the model writes a summary of the older turns (any provider, either protocol).
    #[default]
    Summary,
    /// The provider: the Responses API's `responses/compact` replaces the conversation with
    /// the user's messages and an encrypted compaction item (opt-in).
    Server,
}

impl Mode {
    fn is_summary(&self) -> bool {
        *self == Mode::Summary
    }
}

fn default_threshold() -> f64 {
    DEFAULT_THRESHOLD
}

fn default_keep_recent() -> f64 {
    DEFAULT_KEEP_RECENT
}

impl Compaction {
    /// Compaction for a window of `context_window` tokens, with the default shares.
    pub fn new(context_window: u64) -> Self {
        Compaction {
            context_window,
            threshold: DEFAULT_THRESHOLD,
            keep_recent: DEFAULT_KEEP_RECENT,
            instructions: None,
            mode: Mode::Summary,
        }
    }

    /// The most tokens a request may have before the conversation is compacted.
    pub fn limit(&self) -> u64 {
        (self.context_window as f64 * self.threshold) as u64
    }

    /// What is wrong with the settings, if anything.
    pub fn problem(&self) -> Option<String> {
        if self.context_window < 1_000 {
            return Some(format!(
                "context_window {} is below 1000 tokens",
                self.context_window
            ));
        }
        if !(self.threshold > 0.0 && self.threshold <= 1.0) {
            return Some(format!(
                "threshold {} is not a share of the window (more than 0, at most 1)",
                self.threshold
            ));
        }
        if self
            .instructions
            .as_deref()
            .is_some_and(|i| i.trim().is_empty())
        {
            return Some("instructions is empty; leave it out to use cordon's".into());
        }
        if !(self.keep_recent > 0.0 && self.keep_recent < self.threshold) {
            return Some(format!(
                "keep_recent {} must be more than 0 and below the threshold {}",
                self.keep_recent, self.threshold
            ));
        }
        None
    }
}

/// Roughly how many tokens an item takes.
pub fn item_tokens(item: &Item) -> u64 {
    let text = match item {
        Item::Message { content, .. } => content
            .iter()
            .map(|c| match c {
                Content::Text { text } | Content::Refusal { text } => approx_tokens(text) as u64,
                Content::Image { .. } => IMAGE_TOKENS,
            })
            .sum(),
        Item::ToolCall(c) => approx_tokens(&c.name) as u64 + approx_tokens(&c.input) as u64,
        Item::ToolResult(r) => {
            approx_tokens(&r.output) as u64 + r.images.len() as u64 * IMAGE_TOKENS
        }
        Item::Reasoning { raw } | Item::Compaction { raw } => {
            approx_tokens(&raw.to_string()) as u64
        }
    };
    text + PER_ITEM
}

/// Roughly how many tokens a request of these instructions, tools and items takes.
pub fn request_tokens(instructions: &str, tools: &[ToolSpec], items: &[Item]) -> u64 {
    let tools: u64 = tools
        .iter()
        .map(|t| approx_tokens(&serde_json::to_string(t).unwrap_or_default()) as u64)
        .sum();
    approx_tokens(instructions) as u64 + tools + items.iter().map(item_tokens).sum::<u64>()
}

/// Which items a compaction replaces: those from `kept_head` on, `replaced` of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cut {
    /// Items kept at the start (the task).
    pub kept_head: usize,
    /// How many items after them the summary replaces.
    pub replaced: usize,
}

/// Where to cut `items` so that what follows the cut takes at most `keep` tokens, at a
/// point where no call is separated from its result and no reasoning from what follows
/// it; `None` when nothing before such a point can be replaced.
pub fn cut(items: &[Item], keep: u64) -> Option<Cut> {
    // The task: the first user message stays, whatever is compacted.
    let kept_head = usize::from(matches!(
        items.first(),
        Some(Item::Message {
            role: cordon_core::Role::User,
            ..
        })
    ));
    // Valid cut points: no call open (called, result not yet seen) before them.
    let mut open = std::collections::HashSet::new();
    let mut valid = vec![false; items.len() + 1];
    for (i, item) in items.iter().enumerate() {
        let after_reasoning = i > 0 && matches!(items[i - 1], Item::Reasoning { .. });
        valid[i] = open.is_empty() && !after_reasoning && !matches!(item, Item::ToolResult(_));
        match item {
            Item::ToolCall(c) => {
                open.insert(c.call_id.as_str());
            }
            Item::ToolResult(r) => {
                open.remove(r.call_id.as_str());
            }
            _ => {}
        }
    }
    valid[items.len()] = open.is_empty() && !matches!(items.last(), Some(Item::Reasoning { .. }));
    // The earliest valid point after which the recent items fit; else the latest one.
    let mut tail = vec![0u64; items.len() + 1];
    for i in (0..items.len()).rev() {
        tail[i] = tail[i + 1] + item_tokens(&items[i]);
    }
    let candidates = (kept_head + 1..=items.len()).filter(|&i| valid[i]);
    let at = candidates
        .clone()
        .find(|&i| tail[i] <= keep)
        .or_else(|| candidates.clone().next_back())?;
    Some(Cut {
        kept_head,
        replaced: at - kept_head,
    })
}

/// Whether replacing the items `cut` names can make the conversation smaller: they take
/// more than a summary may (a cut that would replace a few small items, beside a task that
/// alone fills the window, is not made).
pub fn worth_it(items: &[Item], cut: Cut) -> bool {
    let replaced: u64 = items[cut.kept_head..cut.kept_head + cut.replaced]
        .iter()
        .map(item_tokens)
        .sum();
    replaced > SUMMARY_MAX_OUTPUT
}

/// The older items as a transcript for the summary request: every item by who said it,
/// each within a bound, the whole within `budget` tokens (its middle cut when longer).
pub fn transcript(items: &[Item], cut: Cut, budget: usize) -> String {
    let mut out = Vec::new();
    for item in &items[..cut.kept_head] {
        if let Some(text) = item.message_text() {
            out.push(format!("[the task]\n{text}"));
        }
    }
    let bound = |t: &str| truncate_middle(t, TRANSCRIPT_ITEM_TOKENS);
    for item in &items[cut.kept_head..cut.kept_head + cut.replaced] {
        match item {
            Item::Message { role, .. } => {
                let who = match role {
                    cordon_core::Role::User => "user",
                    cordon_core::Role::Assistant => "assistant",
                    cordon_core::Role::System | cordon_core::Role::Developer => "operator",
                };
                out.push(format!(
                    "[{who}]\n{}",
                    bound(&item.message_text().unwrap_or_default())
                ));
            }
            Item::ToolCall(c) => out.push(format!(
                "[tool call {} ({})]\n{}",
                c.name,
                c.call_id,
                bound(&c.input)
            )),
            Item::ToolResult(r) => out.push(format!(
                "[tool result ({})]\n{}",
                r.call_id,
                bound(&r.output)
            )),
            Item::Reasoning { .. } => {}
            Item::Compaction { .. } => {
                out.push("[earlier turns, compacted by the provider: not readable]".into())
            }
        }
    }
    truncate_middle(&out.join("\n\n"), budget)
}

/// The request that asks the model for a summary of the items `cut` replaces: the
/// transcript as one user message, no tools, so any provider and protocol takes it.
pub fn summary_request(
    agent: &Agent,
    compaction: &Compaction,
    items: &[Item],
    cut: Cut,
) -> ModelRequest {
    // The transcript takes at most half the window, so the request fits whatever it holds.
    let budget = (compaction.context_window / 2) as usize;
    ModelRequest {
        model: agent.model_name.clone(),
        instructions: Some(
            compaction
                .instructions
                .clone()
                .unwrap_or_else(|| SUMMARY_INSTRUCTIONS.to_string()),
        ),
        input: vec![Item::text(
            cordon_core::Role::User,
            format!(
                "Summarise this conversation so far:\n\n{}",
                transcript(items, cut, budget)
            ),
        )],
        tools: Vec::new(),
        settings: ModelSettings {
            temperature: agent.settings.temperature,
            reasoning_effort: agent.settings.reasoning_effort.clone(),
            store: agent.settings.store,
            max_output_tokens: Some(
                agent
                    .settings
                    .max_output_tokens
                    .map_or(SUMMARY_MAX_OUTPUT, |m| m.min(SUMMARY_MAX_OUTPUT)),
            ),
            extra: agent.settings.extra.clone(),
            ..ModelSettings::default()
        },
        output_schema: None,
    }
}

/// The context window of models cordon knows, by the start of their name: used when
/// neither the agent nor the config says.
pub fn known_window(model_name: &str) -> Option<u64> {
    const KNOWN: [(&str, u64); 9] = [
        ("gpt-5", 400_000),
        ("gpt-4.1", 1_047_576),
        ("gpt-4o", 128_000),
        ("o3", 200_000),
        ("o4-mini", 200_000),
        ("o1", 200_000),
        ("gpt-oss", 131_072),
        ("codex-mini", 200_000),
        ("gpt-4-turbo", 128_000),
    ];
    let name = model_name.rsplit('/').next().unwrap_or(model_name);
    KNOWN
        .iter()
        .find(|(prefix, _)| name.starts_with(prefix))
        .map(|(_, w)| *w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cordon_core::{Role, ToolCall, ToolResult};
    use serde_json::json;

    fn call(id: &str) -> Item {
        Item::ToolCall(ToolCall {
            call_id: id.into(),
            name: "exec_command".into(),
            kind: Default::default(),
            input: "{}".into(),
            id: None,
        })
    }

    fn result(id: &str, size: usize) -> Item {
        Item::ToolResult(ToolResult {
            call_id: id.into(),
            kind: Default::default(),
            output: "x".repeat(size),
            images: Vec::new(),
        })
    }

    #[test]
    fn the_cut_keeps_calls_with_their_results_and_reasoning_with_its_item() {
        let items = vec![
            Item::text(Role::User, "the task"),
            Item::Reasoning {
                raw: json!({"id": "r1"}),
            },
            call("a"),
            call("b"),
            result("a", 4000),
            result("b", 4000),
            Item::Reasoning {
                raw: json!({"id": "r2"}),
            },
            call("c"),
            result("c", 400),
            Item::text(Role::Assistant, "so far so good"),
        ];
        // Keeping ~150 tokens: the cut goes before reasoning r2, never between c and its
        // result, nor between r2 and c.
        let c = cut(&items, 150).unwrap();
        assert_eq!(
            c,
            Cut {
                kept_head: 1,
                replaced: 5
            }
        );
        // Keeping nearly nothing: after the last item (everything but the task replaced).
        let c = cut(&items, 1).unwrap();
        assert_eq!(c.kept_head + c.replaced, items.len());
        // Every cut point a budget can pick is valid.
        for keep in [0, 10, 100, 1000, 2000, 3000, 10_000] {
            if let Some(c) = cut(&items, keep) {
                let at = c.kept_head + c.replaced;
                assert!(
                    !matches!(items.get(at), Some(Item::ToolResult(_))),
                    "{keep}"
                );
                assert!(!matches!(items[at - 1], Item::Reasoning { .. }), "{keep}");
            }
        }
        // A conversation that is only the task has nothing to replace.
        assert_eq!(cut(&items[..1], 0), None);
    }

    #[test]
    fn the_transcript_names_every_speaker_and_stays_bounded() {
        let items = vec![
            Item::text(Role::User, "fix the build"),
            call("a"),
            result("a", 100_000),
            Item::text(Role::Assistant, "found it"),
        ];
        let t = transcript(
            &items,
            Cut {
                kept_head: 1,
                replaced: 3,
            },
            100_000,
        );
        assert!(t.starts_with("[the task]\nfix the build"), "{t}");
        assert!(t.contains("[tool call exec_command (a)]") && t.contains("[assistant]\nfound it"));
        assert!(t.contains("tokens truncated"), "a huge result is cut");
        assert!(approx_tokens(&t) < 3_000);
        let small = transcript(
            &items,
            Cut {
                kept_head: 1,
                replaced: 3,
            },
            500,
        );
        assert!(approx_tokens(&small) <= 520);
    }

    #[test]
    fn settings_are_checked_and_known_models_have_windows() {
        assert_eq!(Compaction::new(10_000).problem(), None);
        assert!(
            Compaction::new(10)
                .problem()
                .unwrap()
                .contains("below 1000")
        );
        let mut c = Compaction::new(10_000);
        c.keep_recent = 0.9;
        assert!(c.problem().unwrap().contains("below the threshold"));
        assert_eq!(known_window("gpt-5-mini"), Some(400_000));
        assert_eq!(known_window("openai/gpt-4o-2024-08-06"), Some(128_000));
        assert_eq!(known_window("llama3"), None);
    }
}
