//! Server-sent-event frames and the usage estimate shared by both protocols.

use crate::script::{ScriptUsage, Turn};
use serde_json::Value;

/// One SSE event as written on the wire.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// The `event:` line, if the protocol names its events.
    pub event: Option<String>,
    /// The `data:` payload.
    pub data: String,
}

impl Frame {
    /// A named event with a JSON payload.
    pub fn named(event: &str, data: &Value) -> Self {
        Frame {
            event: Some(event.to_string()),
            data: data.to_string(),
        }
    }

    /// An unnamed event (Chat Completions) with this data.
    pub fn data(data: impl Into<String>) -> Self {
        Frame {
            event: None,
            data: data.into(),
        }
    }

    /// The frame's bytes: optional `event:` line, `data:` line, blank line.
    pub fn to_wire(&self) -> String {
        match &self.event {
            Some(e) => format!("event: {e}\ndata: {}\n\n", self.data),
            None => format!("data: {}\n\n", self.data),
        }
    }
}

/// The usage a turn reports: scripted, or estimated at four bytes a token.
pub fn usage_for(turn: &Turn, request_bytes: usize) -> ScriptUsage {
    turn.usage.unwrap_or_else(|| {
        let out: usize = turn.text.as_deref().map_or(0, str::len)
            + turn
                .tool_calls
                .iter()
                .map(|c| c.arguments_text().len())
                .sum::<usize>();
        ScriptUsage {
            input_tokens: (request_bytes / 4).max(1) as u64,
            output_tokens: (out / 4).max(1) as u64,
        }
    })
}

/// Seconds since the Unix epoch, as the APIs report `created`.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
