//! Token usage reported by a model provider.

use serde::{Deserialize, Serialize};

/// Tokens spent by one model response, or summed over a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens sent to the model.
    pub input_tokens: u64,
    /// Of the input tokens, those served from the provider's prompt cache.
    #[serde(default)]
    pub cached_input_tokens: u64,
    /// Tokens the model produced (reasoning included).
    pub output_tokens: u64,
    /// Of the output tokens, those spent on hidden reasoning.
    #[serde(default)]
    pub reasoning_tokens: u64,
    /// Set when the provider reported no usage and cordon counted the tokens itself with a
    /// tokenizer: an estimate (for a sum, when any part of it is one).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub estimated: bool,
}

impl Usage {
    /// Input plus output tokens.
    pub fn total_tokens(&self) -> u64 {
        // Counts come from model servers: a huge one saturates, never overflows.
        self.input_tokens.saturating_add(self.output_tokens)
    }

    /// Adds another response's usage to this one.
    pub fn add(&mut self, other: &Usage) {
        self.input_tokens = self.input_tokens.saturating_add(other.input_tokens);
        self.cached_input_tokens = self
            .cached_input_tokens
            .saturating_add(other.cached_input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(other.output_tokens);
        self.reasoning_tokens = self.reasoning_tokens.saturating_add(other.reasoning_tokens);
        self.estimated |= other.estimated;
    }
}
