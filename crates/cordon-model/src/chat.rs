//! Chat Completions: request bodies and the streamed answer. Works with OpenAI and with
//! compatible servers (Ollama, vLLM, llama.cpp, LM Studio). Custom (free-form) tools are
//! offered as functions taking one `input` string, so they work with every provider.

use crate::request::{ModelRequest, put};
use crate::stream::StreamEvent;
use cordon_core::{CallKind, Content, Item, ModelResponse, Role, ToolCall, ToolKind, Usage};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashSet};

/// The JSON body for `POST /chat/completions`.
/// The JSON body for `POST /chat/completions`, as the client sends it (tests read it as a
/// tree).
#[cfg(test)]
fn request_body(req: &ModelRequest, stream: bool, dialect: &ChatDialect) -> Value {
    let text = request_text(req, stream, dialect, &mut MessageCache::default());
    serde_json::from_str(&text).expect("the body is JSON")
}

/// Every field of the body but the conversation.
fn request_body_without_messages(req: &ModelRequest, stream: bool, dialect: &ChatDialect) -> Value {
    let max_tokens_field = dialect.max_tokens_field.as_str();
    let s = &req.settings;
    let mut body = Map::new();
    body.insert("model".into(), json!(req.model));
    if !req.tools.is_empty() {
        body.insert(
            "tools".into(),
            Value::Array(req.tools.iter().map(tool).collect()),
        );
        put(&mut body, "parallel_tool_calls", &s.parallel_tool_calls);
        if let Some(choice) = &s.tool_choice {
            let v = match choice.as_str() {
                "auto" | "required" | "none" => json!(choice),
                name => json!({ "type": "function", "function": { "name": name } }),
            };
            body.insert("tool_choice".into(), v);
        }
    }
    body.insert("stream".into(), json!(stream));
    if stream {
        body.insert("stream_options".into(), json!({ "include_usage": true }));
    }
    put(&mut body, "temperature", &s.temperature);
    put(&mut body, "top_p", &s.top_p);
    put(&mut body, max_tokens_field, &s.max_output_tokens);
    put(&mut body, "reasoning_effort", &s.reasoning_effort);
    if let Some(out) = &req.output_schema {
        let format = match dialect.json_output {
            JsonOutput::JsonSchema => {
                json!({ "type": "json_schema", "json_schema": { "name": out.name, "schema": out.schema, "strict": false } })
            }
            JsonOutput::JsonObject => json!({ "type": "json_object", "schema": out.schema }),
        };
        body.insert("response_format".into(), format);
    }
    for (k, v) in &s.extra {
        body.insert(k.clone(), v.clone());
    }
    Value::Object(body)
}

/// How a server wants structured output asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JsonOutput {
    /// `{"type": "json_schema", "json_schema": {...}}`, as OpenAI takes it.
    #[default]
    JsonSchema,
    /// `{"type": "json_object", "schema": ...}`, as llama-cpp-python takes it.
    JsonObject,
}

/// What differs between Chat Completions servers in what they accept.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatDialect {
    /// The field that carries the output token limit.
    pub max_tokens_field: String,
    /// How structured output is asked for.
    pub json_output: JsonOutput,
}

fn tool(spec: &cordon_core::ToolSpec) -> Value {
    let parameters = match &spec.kind {
        ToolKind::Function { parameters, .. } => parameters.clone(),
        ToolKind::Custom { .. } => json!({
            "type": "object",
            "properties": { "input": { "type": "string", "description": "The tool's free-form input." } },
            "required": ["input"],
        }),
    };
    json!({ "type": "function", "function": { "name": spec.name, "description": spec.description, "parameters": parameters } })
}

/// The conversation as Chat Completions messages, the operator's instructions first,
/// encoded whole (what the cache must agree with).
#[cfg(test)]
fn messages(req: &ModelRequest) -> Vec<Value> {
    let mut out = Vec::new();
    if let Some(i) = &req.instructions {
        out.push(json!({ "role": "system", "content": i }));
    }
    for item in &req.input {
        push_item(&mut out, item);
    }
    out
}

/// Adds one conversation item to the messages: a message, a tool's answer, or a call that
/// joins the assistant message before it.
fn push_item(out: &mut Vec<Value>, item: &Item) {
    match item {
        Item::Message { role, content, .. } => {
            let role = match role {
                Role::System | Role::Developer => "system",
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            let has_image = content.iter().any(|c| matches!(c, Content::Image { .. }));
            let content = if has_image {
                Value::Array(
                    content
                        .iter()
                        .map(|c| match c {
                            Content::Text { text } | Content::Refusal { text } => {
                                json!({ "type": "text", "text": text })
                            }
                            Content::Image { url } => {
                                json!({ "type": "image_url", "image_url": { "url": url } })
                            }
                        })
                        .collect(),
                )
            } else {
                json!(item.message_text().unwrap_or_default())
            };
            out.push(json!({ "role": role, "content": content }));
        }
        Item::Reasoning { .. } | Item::Compaction { .. } => {}
        Item::ToolCall(c) => {
            let arguments = match c.kind {
                CallKind::Function => c.input.clone(),
                CallKind::Custom => json!({ "input": c.input }).to_string(),
            };
            let call = json!({ "id": c.call_id, "type": "function", "function": { "name": c.name, "arguments": arguments } });
            // Calls join the assistant message just before them. Content stays a string:
            // some servers reject `null`.
            match out.last_mut() {
                Some(last) if last["role"] == "assistant" => {
                    match last["tool_calls"].as_array_mut() {
                        Some(calls) => calls.push(call),
                        None => last["tool_calls"] = json!([call]),
                    }
                }
                _ => out.push(json!({ "role": "assistant", "content": "", "tool_calls": [call] })),
            }
        }
        Item::ToolResult(r) => {
            out.push(json!({ "role": "tool", "tool_call_id": r.call_id, "content": r.output }));
            // Tool messages carry text only: images follow as a user message.
            if !r.images.is_empty() {
                let mut parts = vec![
                    json!({ "type": "text", "text": format!("Images returned by tool call {}:", r.call_id) }),
                ];
                parts.extend(
                    r.images
                        .iter()
                        .map(|url| json!({ "type": "image_url", "image_url": { "url": url } })),
                );
                out.push(json!({ "role": "user", "content": parts }));
            }
        }
    }
}

/// The conversation's messages as last encoded, so a longer conversation with the same
/// start encodes only what is new (a call can still join the last message, so that one is
/// encoded again).
#[derive(Default)]
pub(crate) struct MessageCache {
    items: Vec<Item>,
    messages: Vec<Value>,
    texts: Vec<String>,
}

impl MessageCache {
    /// Each message's JSON text for `items`.
    fn texts(&mut self, items: &[Item]) -> &[String] {
        let same = self
            .items
            .iter()
            .zip(items)
            .take_while(|(a, b)| a == b)
            .count();
        if same < self.items.len() {
            *self = MessageCache::default();
        }
        let before = self.messages.len();
        for item in &items[self.items.len()..] {
            push_item(&mut self.messages, item);
            self.items.push(item.clone());
        }
        // The last message before may have gained calls: it is encoded again.
        let from = before.saturating_sub(1).min(self.texts.len());
        self.texts.truncate(from);
        for m in &self.messages[from..] {
            self.texts.push(m.to_string());
        }
        &self.texts
    }
}

/// The JSON body for `POST /chat/completions` as text, the conversation encoded once across
/// calls.
pub(crate) fn request_text(
    req: &ModelRequest,
    stream: bool,
    dialect: &ChatDialect,
    cache: &mut MessageCache,
) -> String {
    let mut body = match request_body_without_messages(req, stream, dialect) {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    body.remove("messages");
    let texts = cache.texts(&req.input);
    let system = req
        .instructions
        .as_ref()
        .map(|i| json!({ "role": "system", "content": i }).to_string());
    crate::encoded::splice(
        "messages",
        system.iter().chain(texts.iter()).map(String::as_str),
        body,
    )
}

#[derive(Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
}

impl PartialCall {
    /// Takes a name from a delta. Servers send a call's name whole once, whole again in every
    /// chunk, or in pieces: a name equal to what arrived so far is the whole name again, and
    /// so is one that is a tool's name when what arrived so far is that name too; anything
    /// else continues it.
    fn take_name(&mut self, piece: &str, tools: &HashSet<String>) -> NameStep {
        if self.name.is_empty() {
            self.name = piece.to_string();
            return NameStep::Started;
        }
        let joined = format!("{}{piece}", self.name);
        let whole_again = piece == self.name
            && (tools.contains(piece) || !tools.iter().any(|t| t.starts_with(&joined)));
        if whole_again {
            return NameStep::Repeated;
        }
        self.name = joined;
        NameStep::Continued
    }
}

/// What a name in a delta did to a call's name.
#[derive(PartialEq)]
enum NameStep {
    Started,
    Repeated,
    Continued,
}

/// Chunk fields the decoder understands or knowingly ignores; others are kept as unknown.
const KNOWN_CHUNK: &[&str] = &[
    "id",
    "object",
    "created",
    "model",
    "choices",
    "usage",
    "system_fingerprint",
    "service_tier",
];

/// Delta fields the decoder understands; others are kept as unknown.
const KNOWN_DELTA: &[&str] = &[
    "role",
    "content",
    "tool_calls",
    "function_call",
    "reasoning_content",
    "reasoning",
    "refusal",
];

/// An error the server sent inside its answer, in its own words.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct ServerMessage(pub String);

/// Builds a response from Chat Completions chunks.
pub struct Decoder {
    custom_tools: HashSet<String>,
    tools: HashSet<String>,
    id: Option<String>,
    model: Option<String>,
    text: String,
    /// What the server sent as `reasoning_content` (or `reasoning`), kept for the record.
    reasoning: String,
    calls: BTreeMap<u64, PartialCall>,
    /// The legacy `function_call`, used only when no `tool_calls` arrive at all.
    legacy: Option<PartialCall>,
    finish: Option<String>,
    usage: Option<Usage>,
    unknown: Vec<Value>,
    notes: Vec<String>,
    wire: crate::stream::Wire,
    done: bool,
}

impl Decoder {
    /// A decoder for a request that offered these tools.
    pub fn new(req: &ModelRequest) -> Self {
        let custom_tools = req
            .tools
            .iter()
            .filter(|t| matches!(t.kind, ToolKind::Custom { .. }))
            .map(|t| t.name.clone())
            .collect();
        Decoder {
            custom_tools,
            tools: req.tools.iter().map(|t| t.name.clone()).collect(),
            id: None,
            model: None,
            text: String::new(),
            reasoning: String::new(),
            calls: BTreeMap::new(),
            legacy: None,
            finish: None,
            usage: None,
            unknown: Vec::new(),
            notes: Vec::new(),
            wire: Default::default(),
            done: false,
        }
    }

    fn note(&mut self, note: &str) {
        if !self.notes.iter().any(|n| n == note) {
            self.notes.push(note.to_string());
        }
    }

    /// Takes one SSE event's data; fails with the server's message if it sent an error.
    pub fn on_data(&mut self, data: &str, out: &dyn Fn(StreamEvent)) -> Result<(), ServerMessage> {
        self.wire.event(data);
        if data.trim() == "[DONE]" {
            self.done = true;
            return Ok(());
        }
        let v: Value = match serde_json::from_str(data) {
            Ok(v) => v,
            Err(e) => {
                self.unknown
                    .push(json!({ "malformed": data, "error": e.to_string() }));
                return Ok(());
            }
        };
        if let Some(err) = v.get("error") {
            return Err(ServerMessage(
                err["message"]
                    .as_str()
                    .map_or_else(|| err.to_string(), str::to_string),
            ));
        }
        if let Some(obj) = v.as_object() {
            for (k, val) in obj {
                let seen = self.unknown.iter().any(|u| u["chunk_field"] == k.as_str());
                if !KNOWN_CHUNK.contains(&k.as_str()) && !val.is_null() && !seen {
                    self.unknown.push(json!({ "chunk_field": k, "value": val }));
                }
            }
        }
        self.id = self
            .id
            .take()
            .or_else(|| v["id"].as_str().map(str::to_string));
        self.model = self
            .model
            .take()
            .or_else(|| v["model"].as_str().map(str::to_string));
        if v["usage"].is_object() {
            self.usage = Some(parse_usage(&v["usage"]));
        }
        for choice in v["choices"].as_array().into_iter().flatten() {
            self.on_delta(&choice["delta"], out);
            if let Some(f) = choice["finish_reason"].as_str() {
                self.finish = Some(f.to_string());
            }
        }
        Ok(())
    }

    /// Takes a whole (non-streamed) `chat.completion` object.
    pub fn on_whole(&mut self, v: &Value, out: &dyn Fn(StreamEvent)) -> Result<(), ServerMessage> {
        self.wire.body(v);
        if let Some(err) = v.get("error") {
            return Err(ServerMessage(err.to_string()));
        }
        self.id = v["id"].as_str().map(str::to_string);
        self.model = v["model"].as_str().map(str::to_string);
        if v["usage"].is_object() {
            self.usage = Some(parse_usage(&v["usage"]));
        }
        let choice = &v["choices"][0];
        let mut message = choice["message"].clone();
        // A whole message's calls carry no index; give them one so they read as deltas.
        if let Some(calls) = message["tool_calls"].as_array_mut() {
            for (i, c) in calls.iter_mut().enumerate() {
                c["index"] = json!(i);
            }
        }
        self.on_delta(&message, out);
        self.finish = choice["finish_reason"].as_str().map(str::to_string);
        self.done = true;
        Ok(())
    }

    fn on_delta(&mut self, delta: &Value, out: &dyn Fn(StreamEvent)) {
        let Some(obj) = delta.as_object() else { return };
        if let Some(t) = obj
            .get("content")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            self.text.push_str(t);
            out(StreamEvent::TextDelta(t.to_string()));
        }
        for key in ["reasoning_content", "reasoning"] {
            if let Some(t) = obj.get(key).and_then(Value::as_str) {
                self.reasoning.push_str(t);
                out(StreamEvent::ReasoningDelta(t.to_string()));
            }
        }
        let deltas: Vec<Value> = obj
            .get("tool_calls")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for d in &deltas {
            let index = d["index"].as_u64().unwrap_or(0);
            let call = self.calls.entry(index).or_default();
            if let Some(id) = d["id"].as_str().filter(|i| !i.is_empty()) {
                call.id = id.to_string();
            }
            let mut repeated = false;
            if let Some(name) = d["function"]["name"].as_str().filter(|n| !n.is_empty()) {
                match call.take_name(name, &self.tools) {
                    NameStep::Started => out(StreamEvent::ToolCallStarted {
                        name: call.name.clone(),
                        call_id: call.id.clone(),
                    }),
                    NameStep::Repeated => repeated = true,
                    NameStep::Continued => {}
                }
            }
            if let Some(a) = d["function"]["arguments"].as_str() {
                call.arguments.push_str(a);
            }
            if repeated {
                self.note("the server sent each tool call's whole name again in every chunk; cordon kept it once");
            }
        }
        // The legacy field: a fallback only. Servers that send both mirror the same call.
        if let Some(fc) = obj.get("function_call").filter(|f| f.is_object()) {
            if deltas.is_empty() && self.calls.is_empty() {
                let call = self.legacy.get_or_insert_with(Default::default);
                if let Some(name) = fc["name"].as_str().filter(|n| !n.is_empty()) {
                    call.take_name(name, &self.tools);
                }
                if let Some(a) = fc["arguments"].as_str() {
                    call.arguments.push_str(a);
                }
            } else {
                self.note("the server sent the legacy function_call beside tool_calls; cordon read tool_calls only");
            }
        }
        let extra: Map<String, Value> = obj
            .iter()
            .filter(|(k, v)| !KNOWN_DELTA.contains(&k.as_str()) && !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !extra.is_empty() {
            self.unknown.push(json!({ "delta": extra }));
        }
    }

    /// The whole response, if the stream completed (`[DONE]`, or a finish reason before
    /// the server closed the stream). With `record_raw`, or when anything unexpected came,
    /// what the server sent is kept with it.
    pub fn finish(mut self, record_raw: bool) -> Option<ModelResponse> {
        if !self.done && self.finish.is_none() {
            return None;
        }
        let mut items = Vec::new();
        if !self.reasoning.trim().is_empty() {
            // Kept for the record in the Responses API's shape; never sent back (Chat
            // Completions has no reasoning items).
            items.push(Item::Reasoning {
                raw: json!({
                    "type": "reasoning",
                    "content": [{ "type": "reasoning_text", "text": std::mem::take(&mut self.reasoning) }],
                }),
            });
        }
        if !self.text.is_empty() {
            items.push(Item::text(Role::Assistant, std::mem::take(&mut self.text)));
        }
        let mut calls = std::mem::take(&mut self.calls);
        if calls.is_empty()
            && let Some(legacy) = self.legacy.take()
        {
            self.note("the server sent its call in the legacy function_call field only");
            calls.insert(0, legacy);
        }
        for (i, c) in calls {
            let call_id = if c.id.is_empty() {
                format!("call_{i}")
            } else {
                c.id
            };
            let (kind, input) = if self.custom_tools.contains(&c.name) {
                let input = serde_json::from_str::<Value>(&c.arguments)
                    .ok()
                    .and_then(|v| v["input"].as_str().map(str::to_string))
                    .unwrap_or(c.arguments);
                (CallKind::Custom, input)
            } else {
                (CallKind::Function, c.arguments)
            };
            items.push(Item::ToolCall(ToolCall {
                call_id,
                name: c.name,
                kind,
                input,
                id: None,
            }));
        }
        if self.usage.is_none() {
            self.note("the server reported no usage");
        }
        let unexpected = !self.notes.is_empty() || !self.unknown.is_empty();
        Some(ModelResponse {
            id: self.id,
            model: self.model,
            items,
            usage: self.usage.unwrap_or_default(),
            stop_reason: self.finish,
            unknown_events: self.unknown,
            notes: self.notes,
            wire: (record_raw || unexpected).then(|| self.wire.into_value()),
            raw: None,
        })
    }
}

fn parse_usage(u: &Value) -> Usage {
    let n = |p: &str| u.pointer(p).and_then(Value::as_u64).unwrap_or(0);
    Usage {
        input_tokens: n("/prompt_tokens"),
        cached_input_tokens: n("/prompt_tokens_details/cached_tokens"),
        output_tokens: n("/completion_tokens"),
        reasoning_tokens: n("/completion_tokens_details/reasoning_tokens"),
        estimated: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::ModelSettings;
    use cordon_core::{ToolResult, ToolSpec};

    fn req(input: Vec<Item>) -> ModelRequest {
        ModelRequest {
            model: "m".into(),
            instructions: Some("sys".into()),
            input,
            tools: vec![ToolSpec::custom("apply_patch", "patch", None)],
            settings: ModelSettings::default(),
            output_schema: None,
        }
    }

    #[test]
    fn tool_calls_join_the_assistant_message_and_custom_input_is_wrapped() {
        let call = |id: &str, kind| {
            Item::ToolCall(ToolCall {
                call_id: id.into(),
                name: "apply_patch".into(),
                kind,
                input: "P".into(),
                id: None,
            })
        };
        let body = request_body(
            &req(vec![
                Item::text(Role::User, "do it"),
                Item::text(Role::Assistant, "ok"),
                call("a", CallKind::Custom),
                call("b", CallKind::Function),
                Item::ToolResult(ToolResult {
                    call_id: "a".into(),
                    kind: CallKind::Custom,
                    output: "done".into(),
                    images: vec!["data:image/png;base64,AAAA".into()],
                }),
            ]),
            true,
            &ChatDialect {
                max_tokens_field: "max_tokens".into(),
                json_output: JsonOutput::JsonSchema,
            },
        );
        let m = body["messages"].as_array().unwrap();
        assert_eq!(m.len(), 5, "{m:?}");
        assert_eq!(m[2]["tool_calls"].as_array().unwrap().len(), 2);
        assert_eq!(
            m[2]["tool_calls"][0]["function"]["arguments"],
            r#"{"input":"P"}"#
        );
        assert_eq!(m[3]["role"], "tool");
        assert_eq!(
            m[4]["role"], "user",
            "images follow a tool result as a user message"
        );
        assert_eq!(
            m[4]["content"][1]["image_url"]["url"],
            "data:image/png;base64,AAAA"
        );
        assert_eq!(
            body["tools"][0]["function"]["parameters"]["required"][0],
            "input"
        );
    }

    #[test]
    fn deltas_assemble_into_whole_calls() {
        let mut d = Decoder::new(&req(vec![]));
        let ignore = |_| {};
        for chunk in [
            r#"{"id":"x","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c0","function":{"name":"apply_patch","arguments":"{\"in"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"c1","function":{"name":"calc","arguments":"{}"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"put\":\"P\"}"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"audio":{"id":"a"}},"finish_reason":"tool_calls"}]}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":7},"x_vendor":{"queue_ms":3}}"#,
            "[DONE]",
        ] {
            d.on_data(chunk, &ignore).unwrap();
        }
        let r = d.finish(false).unwrap();
        let calls = r.tool_calls();
        assert_eq!(calls.len(), 2);
        assert_eq!(
            (calls[0].kind, calls[0].input.as_str()),
            (CallKind::Custom, "P")
        );
        assert_eq!(
            (calls[1].kind, calls[1].input.as_str()),
            (CallKind::Function, "{}")
        );
        assert_eq!(r.usage.total_tokens(), 12);
        assert_eq!(
            r.unknown_events.len(),
            2,
            "the unknown delta and chunk fields are kept: {:?}",
            r.unknown_events
        );
    }

    #[test]
    fn a_stream_without_done_or_finish_is_incomplete() {
        let mut d = Decoder::new(&req(vec![]));
        d.on_data(
            r#"{"choices":[{"index":0,"delta":{"content":"hal"}}]}"#,
            &|_| {},
        )
        .unwrap();
        assert!(d.finish(false).is_none());
    }

    #[test]
    fn cached_messages_equal_the_whole_encoding_turn_after_turn() {
        use cordon_core::{ToolCall, ToolResult};
        let call = |id: &str| {
            Item::ToolCall(ToolCall {
                call_id: id.into(),
                name: "calculator".into(),
                input: "{}".into(),
                kind: CallKind::Function,
                id: None,
            })
        };
        let result = |id: &str, images: Vec<String>| {
            Item::ToolResult(ToolResult {
                call_id: id.into(),
                output: format!("out {id}"),
                images,
                kind: CallKind::Function,
            })
        };
        let text = |role, t: &str| Item::Message {
            role,
            content: vec![Content::Text { text: t.into() }],
            id: None,
        };
        let turns: Vec<Vec<Item>> = vec![
            vec![text(Role::User, "task")],
            vec![text(Role::Assistant, "let me"), call("a"), call("b")],
            vec![
                result("a", vec![]),
                result("b", vec!["data:image/png;base64,AA".into()]),
            ],
            vec![call("c")],
            vec![result("c", vec![]), text(Role::User, "more")],
        ];
        let mut cache = MessageCache::default();
        let mut items = Vec::new();
        let dialect = ChatDialect {
            max_tokens_field: "max_tokens".into(),
            json_output: JsonOutput::default(),
        };
        for turn in turns {
            items.extend(turn);
            let req = ModelRequest {
                model: "m".into(),
                instructions: Some("be brief".into()),
                input: items.clone(),
                tools: vec![],
                settings: Default::default(),
                output_schema: None,
            };
            let cached: Value =
                serde_json::from_str(&request_text(&req, true, &dialect, &mut cache)).unwrap();
            assert_eq!(cached["messages"], Value::Array(messages(&req)));
        }
        // A conversation that differs from the cached one is encoded afresh.
        let other = ModelRequest {
            model: "m".into(),
            instructions: None,
            input: vec![text(Role::User, "other")],
            tools: vec![],
            settings: Default::default(),
            output_schema: None,
        };
        let cached: Value =
            serde_json::from_str(&request_text(&other, false, &dialect, &mut cache)).unwrap();
        assert_eq!(cached["messages"], Value::Array(messages(&other)));
    }
}
