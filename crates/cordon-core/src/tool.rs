//! What the model is told about a tool.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A tool as offered to the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// The name the model calls it by.
    pub name: String,
    /// What the tool is for, in words the model reads.
    pub description: String,
    /// How the model passes its input.
    pub kind: ToolKind,
}

/// How a tool takes its input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToolKind {
    /// JSON arguments described by a JSON schema.
    Function {
        /// The JSON schema of the arguments object.
        parameters: Value,
        /// Ask the provider to hold the model strictly to the schema.
        #[serde(default)]
        strict: bool,
    },
    /// Free-form text input, optionally constrained by a grammar. Responses models get a
    /// custom tool; Chat Completions models get a function taking one `input` string.
    Custom {
        /// The provider's format object (for example a Lark grammar), if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        format: Option<Value>,
    },
}

impl ToolSpec {
    /// A function tool with the given JSON-schema parameters.
    pub fn function(name: &str, description: &str, parameters: Value) -> Self {
        ToolSpec {
            name: name.to_string(),
            description: description.to_string(),
            kind: ToolKind::Function {
                parameters,
                strict: false,
            },
        }
    }

    /// A free-form (custom) tool.
    pub fn custom(name: &str, description: &str, format: Option<Value>) -> Self {
        ToolSpec {
            name: name.to_string(),
            description: description.to_string(),
            kind: ToolKind::Custom { format },
        }
    }
}
