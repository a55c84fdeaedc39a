//! The OpenAI Responses API: request bodies and the streamed answer.

use crate::request::{ModelRequest, put};
use crate::stream::StreamEvent;
use cordon_core::{CallKind, Content, Item, ModelResponse, Role, ToolCall, ToolKind, Usage};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// The JSON body for `POST /responses`, as the client sends it (tests read it as a tree).
#[cfg(test)]
fn request_body(req: &ModelRequest, stream: bool) -> Value {
    let text = request_text(req, stream, &mut Default::default());
    serde_json::from_str(&text).expect("the body is JSON")
}

/// The JSON body for `POST /responses` as text, the conversation's items encoded once
/// across calls.
pub(crate) fn request_text(
    req: &ModelRequest,
    stream: bool,
    cache: &mut crate::encoded::InputCache,
) -> String {
    let store = req.settings.store.unwrap_or(false);
    cache.body(
        body_without_input(req, stream),
        "input",
        &req.input,
        store,
        |i| input_item(i, store),
    )
}

/// Every field of the body but the conversation.
fn body_without_input(req: &ModelRequest, stream: bool) -> Map<String, Value> {
    let s = &req.settings;
    let store = s.store.unwrap_or(false);
    let mut body = Map::new();
    body.insert("model".into(), json!(req.model));
    put(&mut body, "instructions", &req.instructions);
    if !req.tools.is_empty() {
        body.insert(
            "tools".into(),
            Value::Array(req.tools.iter().map(tool).collect()),
        );
        put(&mut body, "parallel_tool_calls", &s.parallel_tool_calls);
        if let Some(choice) = &s.tool_choice {
            body.insert("tool_choice".into(), tool_choice(choice));
        }
    }
    body.insert("stream".into(), json!(stream));
    body.insert("store".into(), json!(store));
    put(&mut body, "temperature", &s.temperature);
    put(&mut body, "top_p", &s.top_p);
    put(&mut body, "max_output_tokens", &s.max_output_tokens);
    if let Some(effort) = &s.reasoning_effort {
        body.insert(
            "reasoning".into(),
            json!({ "effort": effort, "summary": "auto" }),
        );
        if !store {
            body.insert("include".into(), json!(["reasoning.encrypted_content"]));
        }
    }
    if let Some(out) = &req.output_schema {
        body.insert(
            "text".into(),
            json!({ "format": { "type": "json_schema", "name": out.name, "schema": out.schema, "strict": false } }),
        );
    }
    for (k, v) in &s.extra {
        // `extra` may not replace the conversation itself.
        if k != "input" {
            body.insert(k.clone(), v.clone());
        }
    }
    body
}

fn tool_choice(choice: &str) -> Value {
    match choice {
        "auto" | "required" | "none" => json!(choice),
        name => json!({ "type": "function", "name": name }),
    }
}

fn tool(spec: &cordon_core::ToolSpec) -> Value {
    match &spec.kind {
        ToolKind::Function { parameters, strict } => json!({
            "type": "function", "name": spec.name, "description": spec.description,
            "parameters": parameters, "strict": strict,
        }),
        ToolKind::Custom { format } => {
            let mut t =
                json!({ "type": "custom", "name": spec.name, "description": spec.description });
            if let Some(f) = format {
                t["format"] = f.clone();
            }
            t
        }
    }
}

/// One conversation item as Responses input. With `store` off, provider item ids are left
/// out (they would name items the provider never kept), and reasoning items are sent only
/// when they carry their encrypted content.
fn input_item(item: &Item, store: bool) -> Option<Value> {
    let with_id = |mut v: Value, id: &Option<String>| {
        if let (true, Some(id)) = (store, id) {
            v["id"] = json!(id);
        }
        v
    };
    Some(match item {
        Item::Message { role, content, id } => {
            let assistant = *role == Role::Assistant;
            let parts: Vec<Value> = content
                .iter()
                .map(|c| match c {
                    Content::Text { text } if assistant => {
                        json!({ "type": "output_text", "text": text, "annotations": [] })
                    }
                    Content::Text { text } => json!({ "type": "input_text", "text": text }),
                    Content::Refusal { text } => json!({ "type": "refusal", "refusal": text }),
                    Content::Image { url } => {
                        json!({ "type": "input_image", "image_url": url, "detail": "auto" })
                    }
                })
                .collect();
            let role = match role {
                Role::System => "system",
                Role::Developer => "developer",
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            with_id(
                json!({ "type": "message", "role": role, "content": parts }),
                id,
            )
        }
        Item::Reasoning { raw } => {
            if !store && raw.get("encrypted_content").is_none_or(Value::is_null) {
                return None;
            }
            let mut r = raw.clone();
            if let Some(o) = r.as_object_mut() {
                o.remove("status");
            }
            r
        }
        Item::Compaction { raw } => raw.clone(),
        Item::ToolCall(c) => match c.kind {
            CallKind::Function => with_id(
                json!({ "type": "function_call", "call_id": c.call_id, "name": c.name, "arguments": c.input }),
                &c.id,
            ),
            CallKind::Custom => with_id(
                json!({ "type": "custom_tool_call", "call_id": c.call_id, "name": c.name, "input": c.input }),
                &c.id,
            ),
        },
        Item::ToolResult(r) => {
            // With images, the output is a list of input parts rather than a string.
            let output = if r.images.is_empty() {
                json!(r.output)
            } else {
                let mut parts = vec![json!({ "type": "input_text", "text": r.output })];
                parts.extend(r.images.iter().map(
                    |url| json!({ "type": "input_image", "image_url": url, "detail": "auto" }),
                ));
                Value::Array(parts)
            };
            let kind = match r.kind {
                CallKind::Function => "function_call_output",
                CallKind::Custom => "custom_tool_call_output",
            };
            json!({ "type": kind, "call_id": r.call_id, "output": output })
        }
    })
}

/// Response events that carry nothing beyond what the handled ones do.
const ECHO_EVENTS: &[&str] = &[
    "response.created",
    "response.in_progress",
    "response.queued",
    "response.content_part.added",
    "response.content_part.done",
    "response.output_text.done",
    "response.output_text.annotation.added",
    "response.function_call_arguments.delta",
    "response.function_call_arguments.done",
    "response.custom_tool_call_input.delta",
    "response.custom_tool_call_input.done",
    "response.reasoning_summary_part.added",
    "response.reasoning_summary_part.done",
    "response.reasoning_summary_text.done",
    "response.reasoning_text.done",
    "response.refusal.done",
];

/// Builds a response from the Responses API's stream events.
#[derive(Default)]
pub struct Decoder {
    items: BTreeMap<u64, Value>,
    unknown: Vec<Value>,
    done: Option<ModelResponse>,
    wire: crate::stream::Wire,
}

/// What one stream event means for the call as a whole.
pub enum Step {
    /// Keep reading.
    More,
    /// The provider reported an error.
    Failed {
        /// Its message.
        message: String,
        /// Whether retrying may help.
        retryable: bool,
    },
}

impl Decoder {
    /// Takes one SSE event; sends display events to `out`.
    pub fn on_event(&mut self, name: &str, data: &str, out: &dyn Fn(StreamEvent)) -> Step {
        self.wire.event(&format!("{name}: {data}"));
        let v: Value = match serde_json::from_str(data) {
            Ok(v) => v,
            Err(e) => {
                self.unknown
                    .push(json!({ "event": name, "malformed": data, "error": e.to_string() }));
                return Step::More;
            }
        };
        let kind = v
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or(name)
            .to_string();
        let text = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        match kind.as_str() {
            "response.output_text.delta" | "response.refusal.delta" => {
                out(StreamEvent::TextDelta(text("delta")))
            }
            "response.reasoning_summary_text.delta" | "response.reasoning_text.delta" => {
                out(StreamEvent::ReasoningDelta(text("delta")))
            }
            "response.output_item.added" => {
                let item = &v["item"];
                if matches!(
                    item["type"].as_str(),
                    Some("function_call" | "custom_tool_call")
                ) {
                    out(StreamEvent::ToolCallStarted {
                        name: item["name"].as_str().unwrap_or_default().to_string(),
                        call_id: item["call_id"].as_str().unwrap_or_default().to_string(),
                    });
                }
            }
            "response.output_item.done" => {
                let index = v["output_index"]
                    .as_u64()
                    .unwrap_or(self.items.len() as u64);
                self.items.insert(index, v["item"].clone());
            }
            "response.completed" | "response.incomplete" => {
                self.done = Some(self.finish_response(&v["response"]));
            }
            "response.failed" => {
                let err = &v["response"]["error"];
                let code = err["code"].as_str().unwrap_or("unknown");
                return Step::Failed {
                    message: format!(
                        "{code}: {}",
                        err["message"].as_str().unwrap_or("the response failed")
                    ),
                    retryable: matches!(code, "server_error" | "rate_limit_exceeded"),
                };
            }
            "error" => {
                let code = v["code"]
                    .as_str()
                    .or(v["error"]["code"].as_str())
                    .unwrap_or("error");
                let message = v["message"]
                    .as_str()
                    .or(v["error"]["message"].as_str())
                    .unwrap_or("unknown error");
                return Step::Failed {
                    message: format!("{code}: {message}"),
                    retryable: matches!(
                        code,
                        "server_error" | "rate_limit_exceeded" | "internal_error"
                    ),
                };
            }
            k if ECHO_EVENTS.contains(&k) => {}
            _ => self.unknown.push(json!({ "event": name, "data": v })),
        }
        Step::More
    }

    /// The whole response, once `response.completed` (or `.incomplete`) arrived. With
    /// `record_raw`, or when anything unexpected came, the events are kept with it.
    pub fn finish(self, record_raw: bool) -> Option<ModelResponse> {
        let mut done = self.done?;
        done.unknown_events.extend(self.unknown);
        if record_raw || !done.unknown_events.is_empty() {
            done.wire = Some(self.wire.into_value());
        }
        Some(done)
    }

    fn finish_response(&mut self, resp: &Value) -> ModelResponse {
        let output: Vec<Value> = match resp["output"].as_array() {
            Some(items) if !items.is_empty() => items.clone(),
            _ => self.items.values().cloned().collect(),
        };
        let mut items = Vec::new();
        for raw in &output {
            match parse_item(raw) {
                Some(i) => items.push(i),
                None => self
                    .unknown
                    .push(json!({ "event": "output_item", "data": raw })),
            }
        }
        let status = resp["status"].as_str().unwrap_or("completed");
        let stop_reason = match resp["incomplete_details"]["reason"].as_str() {
            Some(r) => format!("incomplete: {r}"),
            None => status.to_string(),
        };
        ModelResponse {
            id: resp["id"].as_str().map(str::to_string),
            model: resp["model"].as_str().map(str::to_string),
            items,
            usage: parse_usage(&resp["usage"]),
            stop_reason: Some(stop_reason),
            unknown_events: Vec::new(),
            notes: Vec::new(),
            wire: None,
            raw: Some(resp.clone()),
        }
    }
}

/// A whole non-streamed response object.
pub fn parse_whole(resp: &Value) -> ModelResponse {
    let mut d = Decoder::default();
    let r = d.finish_response(resp);
    ModelResponse {
        unknown_events: d.unknown,
        ..r
    }
}

fn parse_item(raw: &Value) -> Option<Item> {
    let s = |k: &str| raw[k].as_str().map(str::to_string);
    match raw["type"].as_str()? {
        "message" => {
            let content = raw["content"]
                .as_array()
                .map(|parts| {
                    parts
                        .iter()
                        .filter_map(|p| match p["type"].as_str()? {
                            "output_text" | "input_text" => Some(Content::Text {
                                text: p["text"].as_str()?.to_string(),
                            }),
                            "refusal" => Some(Content::Refusal {
                                text: p["refusal"].as_str()?.to_string(),
                            }),
                            _ => None,
                        })
                        .collect()
                })
                .unwrap_or_default();
            // A response's messages are the model's; a compaction's output keeps the user's.
            let role = match raw["role"].as_str() {
                Some("user") => Role::User,
                Some("developer") => Role::Developer,
                Some("system") => Role::System,
                _ => Role::Assistant,
            };
            Some(Item::Message {
                role,
                content,
                id: s("id"),
            })
        }
        "reasoning" => Some(Item::Reasoning { raw: raw.clone() }),
        "compaction" => Some(Item::Compaction { raw: raw.clone() }),
        "function_call" => Some(Item::ToolCall(ToolCall {
            call_id: s("call_id")?,
            name: s("name")?,
            kind: CallKind::Function,
            input: s("arguments").unwrap_or_default(),
            id: s("id"),
        })),
        "custom_tool_call" => Some(Item::ToolCall(ToolCall {
            call_id: s("call_id")?,
            name: s("name")?,
            kind: CallKind::Custom,
            input: s("input").unwrap_or_default(),
            id: s("id"),
        })),
        _ => None,
    }
}

/// The body of a `responses/compact` request: the model, the instructions and the whole
/// conversation (stateless: provider ids left out).
pub(crate) fn compact_body(req: &ModelRequest) -> Value {
    let input: Vec<Value> = req
        .input
        .iter()
        .filter_map(|i| input_item(i, false))
        .collect();
    let mut body = json!({ "model": req.model, "input": input });
    if let Some(i) = &req.instructions {
        body["instructions"] = json!(i);
    }
    body
}

/// What a `responses/compact` answer gives: the conversation that replaces the one sent
/// (the user's messages kept, and the provider's compaction item), and what it cost.
pub(crate) fn parse_compacted(v: &Value) -> Result<(Vec<Item>, Usage), String> {
    let output = v["output"]
        .as_array()
        .ok_or("the answer has no `output` list")?;
    let items: Vec<Item> = output.iter().filter_map(parse_item).collect();
    if !items.iter().any(|i| matches!(i, Item::Compaction { .. })) {
        return Err("the answer holds no compaction item".into());
    }
    Ok((items, parse_usage(&v["usage"])))
}

fn parse_usage(u: &Value) -> Usage {
    let n = |p: &str| u.pointer(p).and_then(Value::as_u64).unwrap_or(0);
    Usage {
        input_tokens: n("/input_tokens"),
        cached_input_tokens: n("/input_tokens_details/cached_tokens"),
        output_tokens: n("/output_tokens"),
        reasoning_tokens: n("/output_tokens_details/reasoning_tokens"),
        estimated: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::ModelSettings;
    use cordon_core::{ToolResult, ToolSpec};

    fn req(items: Vec<Item>, store: bool) -> ModelRequest {
        ModelRequest {
            model: "m".into(),
            instructions: Some("be brief".into()),
            input: items,
            tools: vec![ToolSpec::custom("apply_patch", "patch files", None)],
            settings: ModelSettings {
                store: Some(store),
                ..ModelSettings::default()
            },
            output_schema: None,
        }
    }

    #[test]
    fn custom_tools_and_their_calls_keep_their_own_shapes() {
        let call = ToolCall {
            call_id: "c1".into(),
            name: "apply_patch".into(),
            kind: CallKind::Custom,
            input: "*** Begin Patch".into(),
            id: Some("ctc_1".into()),
        };
        let result = ToolResult {
            call_id: "c1".into(),
            kind: CallKind::Custom,
            output: "done".into(),
            images: vec!["data:image/png;base64,AAAA".into()],
        };
        let body = request_body(
            &req(vec![Item::ToolCall(call), Item::ToolResult(result)], false),
            true,
        );
        assert_eq!(body["tools"][0]["type"], "custom");
        assert_eq!(body["input"][0]["type"], "custom_tool_call");
        assert!(
            body["input"][0].get("id").is_none(),
            "no provider ids without store"
        );
        assert_eq!(body["input"][1]["type"], "custom_tool_call_output");
        assert_eq!(
            body["input"][1]["output"][1]["type"], "input_image",
            "images ride in the output list"
        );
    }

    #[test]
    fn reasoning_without_encrypted_content_is_not_sent_statelessly() {
        let plain = Item::Reasoning {
            raw: json!({"type": "reasoning", "id": "rs_1", "summary": []}),
        };
        let sealed = Item::Reasoning {
            raw: json!({"type": "reasoning", "id": "rs_2", "summary": [], "encrypted_content": "x"}),
        };
        let body = request_body(&req(vec![plain.clone(), sealed], false), true);
        assert_eq!(body["input"].as_array().unwrap().len(), 1);
        assert_eq!(body["input"][0]["id"], "rs_2");
        let body = request_body(&req(vec![plain], true), true);
        assert_eq!(
            body["input"][0]["id"], "rs_1",
            "stored conversations pass every item back"
        );
    }

    #[test]
    fn unknown_and_malformed_events_are_kept() {
        let mut d = Decoder::default();
        let ignore = |_| {};
        d.on_event(
            "response.brand_new",
            r#"{"type":"response.brand_new","x":1}"#,
            &ignore,
        );
        d.on_event("response.output_text.delta", "{not json", &ignore);
        d.on_event(
            "response.completed",
            r#"{"type":"response.completed","response":{"id":"r","status":"completed","output":[{"type":"message","content":[{"type":"output_text","text":"hi"}]}],"usage":{"input_tokens":3,"output_tokens":1}}}"#,
            &ignore,
        );
        let r = d.finish(false).unwrap();
        assert_eq!(r.text(), "hi");
        assert_eq!(r.unknown_events.len(), 2);
        assert_eq!(r.usage.total_tokens(), 4);
    }
}
