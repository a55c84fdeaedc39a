//! What is sent to a model, independent of protocol.

use cordon_core::{Item, ToolSpec};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Settings that tune a model's answers. Unset fields are not sent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSettings {
    /// Sampling temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// The most tokens one response may produce.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u64>,
    /// Whether the model may ask for several tool calls at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    /// Reasoning effort (`minimal`, `low`, `medium`, `high`) for reasoning models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_effort: Option<String>,
    /// `auto`, `required`, `none`, or a tool's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<String>,
    /// Whether a `tool_choice` that forces a tool (`required` or a name) is dropped once the
    /// model has called a tool, so it can answer (default true, as the Agents SDK's
    /// `reset_tool_choice`). Not sent to the provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_tool_choice: Option<bool>,
    /// Responses API: let the provider keep the conversation (default false: cordon keeps it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<bool>,
    /// Further fields merged into the request body as they are.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

/// A JSON schema the final answer must match.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputSchema {
    /// The schema's name, as the provider wants one.
    pub name: String,
    /// The JSON schema.
    pub schema: Value,
}

/// One call to a model.
#[derive(Debug, Clone)]
pub struct ModelRequest {
    /// The model's name at the provider.
    pub model: String,
    /// The operator's instructions.
    pub instructions: Option<String>,
    /// The conversation so far.
    pub input: Vec<Item>,
    /// The tools offered.
    pub tools: Vec<ToolSpec>,
    /// Tuning.
    pub settings: ModelSettings,
    /// Structured output, if required.
    pub output_schema: Option<OutputSchema>,
}

/// Writes `value` into `body[key]` when it is set.
pub(crate) fn put<T: Serialize>(body: &mut Map<String, Value>, key: &str, value: &Option<T>) {
    if let Some(v) = value {
        body.insert(
            key.to_string(),
            serde_json::to_value(v).unwrap_or(Value::Null),
        );
    }
}
