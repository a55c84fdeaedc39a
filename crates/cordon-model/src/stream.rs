//! What passes between the protocol decoders and the client: events worth showing while a
//! call is under way, and the capture of what the server sent.

use serde_json::{Value, json};
use std::time::Duration;

/// Something worth showing while a call is under way.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// Assistant text as it arrives.
    TextDelta(String),
    /// Reasoning summary text as it arrives.
    ReasoningDelta(String),
    /// The model began a tool call.
    ToolCallStarted {
        /// The tool's name.
        name: String,
        /// The call's id (may be empty until known).
        call_id: String,
    },
    /// An attempt failed; another follows after `delay`.
    Retrying {
        /// The attempt that failed, from 1.
        attempt: u32,
        /// What went wrong.
        error: String,
        /// How long until the next attempt.
        delay: Duration,
    },
}

/// The most of a server's answer kept as it came.
const WIRE_KEEP: usize = 2 << 20;

/// What a server sent, as it came, up to [`WIRE_KEEP`] bytes.
#[derive(Debug, Default)]
pub(crate) struct Wire {
    events: Vec<String>,
    body: Option<Value>,
    kept: usize,
    dropped: usize,
}

impl Wire {
    /// One stream event's data.
    pub(crate) fn event(&mut self, data: &str) {
        if self.kept + data.len() > WIRE_KEEP {
            self.dropped += 1;
            return;
        }
        self.kept += data.len();
        self.events.push(data.to_string());
    }

    /// A whole (non-streamed) answer.
    pub(crate) fn body(&mut self, body: &Value) {
        self.body = Some(body.clone());
    }

    /// The capture, for the record.
    pub(crate) fn into_value(self) -> Value {
        match self.body {
            Some(body) => json!({ "body": body }),
            None => {
                let mut v = json!({ "events": self.events });
                if self.dropped > 0 {
                    v["events_dropped"] = json!(self.dropped);
                }
                v
            }
        }
    }
}
