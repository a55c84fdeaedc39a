//! The script a scripted model server plays: a sequence of turns, one per model call.
//!
//! Written in TOML (or JSON, by the file's extension):
//!
//! ```toml
//! [[turns]]
//! text = "Let me add those."
//! tool_calls = [{ name = "calculator", arguments = { expression = "17 * 23" } }]
//! faults = [{ kind = "status", status = 429, retry_after = 1 }]
//!
//! [[turns]]
//! text = "17 * 23 = 391."
//! ```
//!
//! A turn's `faults` are served first, one per request, before the turn itself; so a turn
//! with one 429 fault answers the first request with 429 and the retry with the turn.
//!
//! With `turn_from = "conversation"` the turn is picked by how many model answers the
//! request's conversation already holds, instead of by counting requests.

use serde::Deserialize;
use serde_json::Value;
use std::path::Path;

/// A whole script.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    /// The model name reported in responses (default `scripted-model`).
    #[serde(default)]
    pub model: Option<String>,
    /// How each request's turn is chosen (by default, the next one).
    #[serde(default)]
    pub turn_from: TurnFrom,
    /// Chat Completions shapes that real servers send, to test a client against.
    #[serde(default)]
    pub chat_quirks: ChatQuirks,
    /// The turns, in order.
    #[serde(default)]
    pub turns: Vec<Turn>,
    /// Answers to requests of another kind (a compaction's summary request), picked by what
    /// the request's body holds; they do not use up a turn.
    #[serde(default)]
    pub replies: Vec<Reply>,
    /// Conversations of their own (sub-agents working at once), each picked by what the
    /// request's body holds; they do not use up the turns.
    #[serde(default)]
    pub threads: Vec<Thread>,
}

/// A conversation answered from turns of its own: a request whose body holds the string
/// gets the thread's turn numbered by how many model answers its conversation holds, so
/// conversations that go on at once (and one sent again after a crash) each get theirs.
///
/// Pick a string only that conversation's requests hold: a sub-agent's task as a message
/// (`"text":"TASK"` on the Responses API, `"content":"TASK"` on Chat Completions), not the
/// task alone, which the parent's requests also hold (in the call's arguments).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thread {
    /// The string the request's raw body must hold (a sub-agent's instructions).
    pub when_body_contains: String,
    /// Its turns.
    #[serde(default)]
    pub turns: Vec<Turn>,
}

/// An answer given to every request whose body holds a string, out of the turns' order.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reply {
    /// The string the request's raw body must hold.
    pub when_body_contains: String,
    /// The answer's text; `{n}` becomes how many replies were served before this one.
    pub text: String,
    /// Reported usage; estimated from sizes when absent.
    #[serde(default)]
    pub usage: Option<ScriptUsage>,
}

/// Shapes of Chat Completions answers that real servers send (all off by default).
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatQuirks {
    /// Mirror each tool call in the legacy `function_call` field, in every chunk and in whole
    /// answers, as llama-cpp-python does.
    #[serde(default)]
    pub mirror_function_call: bool,
    /// Send a call's whole name again in every chunk of it (llama-cpp-python).
    #[serde(default)]
    pub repeat_tool_names: bool,
    /// Send a call's name in pieces over several chunks.
    #[serde(default)]
    pub split_tool_names: bool,
    /// Report no usage, whatever the request asks (llama-cpp-python's streams).
    #[serde(default)]
    pub no_usage: bool,
}

/// How the server picks the turn that answers a request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TurnFrom {
    /// Each request gets the next turn.
    #[default]
    Requests,
    /// The turn is the number of model answers already in the request's conversation, so a
    /// request sent again (a client that crashed before recording the answer) gets the same
    /// turn again, like a deterministic model would give.
    Conversation,
}

/// One model response.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Turn {
    /// Assistant text, streamed in small chunks.
    #[serde(default)]
    pub text: Option<String>,
    /// The model's reasoning: a reasoning summary on the Responses API, `reasoning_content`
    /// on Chat Completions (as vLLM, llama.cpp and DeepSeek send it).
    #[serde(default)]
    pub reasoning: Option<String>,
    /// Tool calls, in order.
    #[serde(default)]
    pub tool_calls: Vec<ScriptedCall>,
    /// Wait before the response's first byte.
    #[serde(default)]
    pub delay_ms: u64,
    /// Wait between stream events.
    #[serde(default)]
    pub chunk_delay_ms: u64,
    /// Faults served, one per request, before the turn itself.
    #[serde(default)]
    pub faults: Vec<Fault>,
    /// Reported usage; estimated from sizes when absent.
    #[serde(default)]
    pub usage: Option<ScriptUsage>,
    /// The answer stops at the output limit: `finish_reason: "length"` on Chat Completions,
    /// `status: "incomplete"` (reason `max_output_tokens`, ending with
    /// `response.incomplete`) on the Responses API.
    #[serde(default)]
    pub cut_off: bool,
}

/// A tool call the scripted model makes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptedCall {
    /// The tool's name.
    pub name: String,
    /// JSON arguments for a function tool.
    #[serde(default)]
    pub arguments: Option<Value>,
    /// Argument text sent as is (to script malformed arguments).
    #[serde(default)]
    pub arguments_raw: Option<String>,
    /// Free-form input: makes this a custom tool call (sent as `{"input": ...}` over Chat
    /// Completions, where custom tools are functions).
    #[serde(default)]
    pub input: Option<String>,
    /// The call id (generated when absent).
    #[serde(default)]
    pub call_id: Option<String>,
}

impl ScriptedCall {
    /// The argument text of a function call.
    pub fn arguments_text(&self) -> String {
        if let Some(raw) = &self.arguments_raw {
            return raw.clone();
        }
        match (&self.arguments, &self.input) {
            (Some(v), _) => v.to_string(),
            (None, Some(input)) => serde_json::json!({ "input": input }).to_string(),
            (None, None) => "{}".to_string(),
        }
    }
}

/// Token usage to report.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptUsage {
    /// Input tokens.
    #[serde(default)]
    pub input_tokens: u64,
    /// Output tokens.
    #[serde(default)]
    pub output_tokens: u64,
}

/// A failure the server injects.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// Answer with this HTTP status and an error body.
    Status {
        /// The status code (429, 500, 503, ...).
        status: u16,
        /// A `Retry-After` header: seconds, or any text (to script hostile values such as
        /// `inf` or an HTTP date).
        #[serde(default)]
        retry_after: Option<HeaderValue>,
        /// A `retry-after-ms` header, as for `retry_after`.
        #[serde(default)]
        retry_after_ms: Option<HeaderValue>,
        /// The error message in the body.
        #[serde(default)]
        message: Option<String>,
    },
    /// Start the stream, then drop the connection after this many events.
    Disconnect {
        /// Events sent before the drop.
        #[serde(default = "default_after")]
        after_events: usize,
    },
    /// Start the stream, then go silent for this long, then drop the connection.
    Stall {
        /// How long to stay silent.
        ms: u64,
    },
    /// Serve the turn, with an event whose data is not JSON in the middle. Unlike the
    /// other faults this one does not use up a request: the turn is served with it.
    Malformed,
}

/// A header's value in a script: a number or a string, sent as written.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum HeaderValue {
    /// A number, sent in decimal.
    Number(u64),
    /// Text, sent as is.
    Text(String),
}

impl HeaderValue {
    /// The header's text.
    pub fn text(&self) -> String {
        match self {
            HeaderValue::Number(n) => n.to_string(),
            HeaderValue::Text(t) => t.clone(),
        }
    }
}

fn default_after() -> usize {
    3
}

/// A script that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    /// The file could not be read.
    #[error("cannot read script {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file does not parse.
    #[error("script {path} is not valid: {message}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's message, with line and column.
        message: String,
    },
}

impl Script {
    /// Loads a script from a `.toml` or `.json` file.
    pub fn load(path: &Path) -> Result<Script, ScriptError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ScriptError::Read {
            path: shown.clone(),
            source,
        })?;
        let parsed = if path.extension().is_some_and(|e| e == "json") {
            serde_json::from_str(&text).map_err(|e| e.to_string())
        } else {
            toml::from_str(&text).map_err(|e| e.to_string())
        };
        parsed.map_err(|message| ScriptError::Parse {
            path: shown,
            message,
        })
    }

    /// Parses a script written in TOML.
    pub fn from_toml(text: &str) -> Result<Script, ScriptError> {
        toml::from_str(text).map_err(|e| ScriptError::Parse {
            path: "(inline)".into(),
            message: e.to_string(),
        })
    }

    /// The model name reported in responses.
    pub fn model_name(&self) -> &str {
        self.model.as_deref().unwrap_or("scripted-model")
    }
}

/// Splits text into small pieces (a few words each) that join back to the same text.
pub fn chunks(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut words = 0;
    for piece in text.split_inclusive(char::is_whitespace) {
        cur.push_str(piece);
        words += 1;
        if words == 3 {
            out.push(std::mem::take(&mut cur));
            words = 0;
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_join_back_to_the_text() {
        let t = "one two  three four\nfive";
        assert_eq!(chunks(t).concat(), t);
        assert!(chunks(t).len() > 1);
        assert!(chunks("").is_empty());
    }

    #[test]
    fn faults_parse_from_toml() {
        let s: Script = toml::from_str(
            r#"
            [[turns]]
            text = "hi"
            faults = [{ kind = "status", status = 429, retry_after = 1 }, { kind = "disconnect" }, { kind = "malformed" }]
            "#,
        )
        .unwrap();
        assert_eq!(s.turns[0].faults.len(), 3);
        assert_eq!(s.turns[0].faults[1], Fault::Disconnect { after_events: 3 });
    }

    #[test]
    fn unknown_fields_are_refused() {
        let e = toml::from_str::<Script>("[[turns]]\ntxt = \"hi\"\n").unwrap_err();
        assert!(e.to_string().contains("txt"));
    }
}
