//! Counting tokens when a provider does not: an estimate with the o200k tokenizer, so that
//! token and cost budgets still hold against servers that report no usage.

use crate::request::ModelRequest;
use cordon_core::{Item, ModelResponse, Usage};

/// Tokens each message costs on top of its text, as OpenAI's chat format counts them.
const PER_MESSAGE: u64 = 4;

fn count(text: &str) -> u64 {
    tiktoken_rs::o200k_base_singleton().count_ordinary(text) as u64
}

/// Estimates `response`'s usage from what was sent and what came back; the result is
/// marked as an estimate.
pub(crate) fn estimate(req: &ModelRequest, response: &ModelResponse) -> Usage {
    let mut input = req.instructions.as_deref().map_or(0, count) + PER_MESSAGE;
    for item in &req.input {
        input += PER_MESSAGE + item_tokens(item);
    }
    for tool in &req.tools {
        input += count(&serde_json::to_string(tool).unwrap_or_default());
    }
    let output = response.items.iter().map(item_tokens).sum::<u64>();
    Usage {
        input_tokens: input,
        output_tokens: output,
        estimated: true,
        ..Usage::default()
    }
}

fn item_tokens(item: &Item) -> u64 {
    match item {
        Item::Message { .. } => item.message_text().map_or(0, |t| count(&t)),
        Item::ToolCall(c) => count(&c.name) + count(&c.input),
        Item::ToolResult(r) => count(&r.output),
        Item::Reasoning { .. } => 0,
        // Encrypted: what it costs the provider alone knows; its size is a fair guess.
        Item::Compaction { raw } => raw["encrypted_content"]
            .as_str()
            .map_or(0, |e| e.len() as u64 / 4),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cordon_core::Role;

    #[test]
    fn an_estimate_counts_both_sides_and_says_so() {
        let req = ModelRequest {
            model: "m".into(),
            instructions: Some("Be brief.".into()),
            input: vec![Item::text(
                Role::User,
                "What is seventeen times twenty-three?",
            )],
            tools: Vec::new(),
            settings: Default::default(),
            output_schema: None,
        };
        let resp = ModelResponse {
            items: vec![Item::text(Role::Assistant, "It is 391.")],
            ..Default::default()
        };
        let u = estimate(&req, &resp);
        assert!(u.estimated);
        assert!((10..40).contains(&u.input_tokens), "{u:?}");
        assert!((3..10).contains(&u.output_tokens), "{u:?}");
    }
}
