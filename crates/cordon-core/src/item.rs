//! Conversation items: what goes to the model and what comes back, independent of wire
//! protocol. The model clients translate them to and from each API's own shapes.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Who speaks a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Operator instructions with the highest priority.
    System,
    /// Operator instructions below system (Responses API's `developer`).
    Developer,
    /// The person or program giving the task.
    User,
    /// The model.
    Assistant,
}

/// One part of a message's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Content {
    /// Plain text.
    Text {
        /// The text.
        text: String,
    },
    /// An image, as a URL (usually a `data:` URL).
    Image {
        /// The image's URL.
        url: String,
    },
    /// The model declined to answer.
    Refusal {
        /// The model's explanation.
        text: String,
    },
}

/// Whether a tool call carries JSON arguments or free-form input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CallKind {
    /// JSON arguments for a function tool.
    #[default]
    Function,
    /// Free-form input for a custom tool.
    Custom,
}

/// A call the model asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The id the result must carry back.
    pub call_id: String,
    /// The tool's name.
    pub name: String,
    /// Function or custom.
    #[serde(default)]
    pub kind: CallKind,
    /// The exact argument text (JSON for functions, free text for custom tools).
    pub input: String,
    /// The provider's own item id, echoed back where the protocol wants it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// The answer to a tool call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolResult {
    /// The call this answers.
    pub call_id: String,
    /// Function or custom, matching the call.
    #[serde(default)]
    pub kind: CallKind,
    /// What the model reads.
    pub output: String,
    /// Images the tool returns with its output, as `data:` URLs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
}

/// One entry of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Item {
    /// A message from someone.
    Message {
        /// The speaker.
        role: Role,
        /// The message's parts.
        content: Vec<Content>,
        /// The provider's item id, if it gave one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
    },
    /// A reasoning item, kept in the provider's own shape so it can be passed back verbatim
    /// (Responses API); protocols without reasoning items drop it.
    Reasoning {
        /// The item exactly as the provider sent it.
        raw: Value,
    },
    /// The provider's own compaction of earlier turns (the Responses API's `compaction`
    /// item, its content encrypted), passed back verbatim; protocols without it drop it.
    Compaction {
        /// The item exactly as the provider sent it.
        raw: Value,
    },
    /// The model asks for a tool call.
    ToolCall(ToolCall),
    /// A tool call's result.
    ToolResult(ToolResult),
}

impl Item {
    /// A text message.
    pub fn text(role: Role, text: impl Into<String>) -> Self {
        Item::Message {
            role,
            content: vec![Content::Text { text: text.into() }],
            id: None,
        }
    }

    /// The text of a message (its text parts joined), or `None` for other items.
    pub fn message_text(&self) -> Option<String> {
        match self {
            Item::Message { content, .. } => Some(
                content
                    .iter()
                    .filter_map(|c| match c {
                        Content::Text { text } | Content::Refusal { text } => Some(text.as_str()),
                        Content::Image { .. } => None,
                    })
                    .collect(),
            ),
            _ => None,
        }
    }
}
