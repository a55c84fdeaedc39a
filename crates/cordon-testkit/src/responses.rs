//! The OpenAI Responses API stream, as `POST /v1/responses` with `stream: true` sends it.

use crate::frame::{Frame, now_secs, usage_for};
use crate::script::{Turn, chunks};
use serde_json::{Value, json};

/// Renders a turn as the Responses API's stream of events, and the final response object.
///
/// `n` numbers the turn (item and call ids follow it); `request` numbers the request, so
/// every response has an id of its own even when a turn is served twice.
pub fn render(
    turn: &Turn,
    model: &str,
    n: u64,
    request: usize,
    request_bytes: usize,
) -> (Vec<Frame>, Value) {
    let mut r = Render {
        frames: Vec::new(),
        seq: 0,
    };
    let id = format!("resp_{n:04}_{request:04}");
    let created = now_secs();
    let shell = |status: &str, output: Value, usage: Value| {
        json!({
            "id": id, "object": "response", "created_at": created, "status": status,
            "error": null, "incomplete_details": null, "model": model,
            "output": output, "parallel_tool_calls": true, "tool_choice": "auto",
            "usage": usage,
        })
    };
    r.push(
        "response.created",
        json!({ "response": shell("in_progress", json!([]), Value::Null) }),
    );
    r.push(
        "response.in_progress",
        json!({ "response": shell("in_progress", json!([]), Value::Null) }),
    );

    let mut output = Vec::new();
    if let Some(text) = &turn.reasoning {
        let item_id = format!("rs_{n:04}");
        let index = output.len();
        r.push(
            "response.output_item.added",
            json!({
                "output_index": index, "item": { "id": item_id, "type": "reasoning", "summary": [] }
            }),
        );
        r.push(
            "response.reasoning_summary_part.added",
            json!({
                "item_id": item_id, "output_index": index, "summary_index": 0,
                "part": { "type": "summary_text", "text": "" }
            }),
        );
        for delta in chunks(text) {
            r.push(
                "response.reasoning_summary_text.delta",
                json!({
                    "item_id": item_id, "output_index": index, "summary_index": 0, "delta": delta
                }),
            );
        }
        r.push(
            "response.reasoning_summary_text.done",
            json!({
                "item_id": item_id, "output_index": index, "summary_index": 0, "text": text
            }),
        );
        let item = json!({
            "id": item_id, "type": "reasoning",
            "summary": [{ "type": "summary_text", "text": text }],
            "encrypted_content": format!("enc_{n:04}"),
        });
        r.push(
            "response.output_item.done",
            json!({ "output_index": index, "item": item }),
        );
        output.push(item);
    }
    if let Some(text) = &turn.text {
        let item_id = format!("msg_{n:04}");
        let index = output.len();
        r.push("response.output_item.added", json!({
            "output_index": index,
            "item": { "id": item_id, "type": "message", "status": "in_progress", "role": "assistant", "content": [] }
        }));
        r.push(
            "response.content_part.added",
            json!({
                "item_id": item_id, "output_index": index, "content_index": 0,
                "part": { "type": "output_text", "text": "", "annotations": [] }
            }),
        );
        for delta in chunks(text) {
            r.push("response.output_text.delta", json!({
                "item_id": item_id, "output_index": index, "content_index": 0, "delta": delta, "logprobs": []
            }));
        }
        r.push("response.output_text.done", json!({
            "item_id": item_id, "output_index": index, "content_index": 0, "text": text, "logprobs": []
        }));
        let part = json!({ "type": "output_text", "text": text, "annotations": [] });
        r.push(
            "response.content_part.done",
            json!({
                "item_id": item_id, "output_index": index, "content_index": 0, "part": part
            }),
        );
        let item = json!({
            "id": item_id, "type": "message", "status": "completed", "role": "assistant", "content": [part]
        });
        r.push(
            "response.output_item.done",
            json!({ "output_index": index, "item": item }),
        );
        output.push(item);
    }
    for (i, call) in turn.tool_calls.iter().enumerate() {
        let index = output.len();
        let call_id = call
            .call_id
            .clone()
            .unwrap_or_else(|| format!("call_{n:04}_{i}"));
        let custom =
            call.input.is_some() && call.arguments.is_none() && call.arguments_raw.is_none();
        let (item_id, kind, field, delta_event) = if custom {
            (
                format!("ctc_{n:04}_{i}"),
                "custom_tool_call",
                "input",
                "response.custom_tool_call_input",
            )
        } else {
            (
                format!("fc_{n:04}_{i}"),
                "function_call",
                "arguments",
                "response.function_call_arguments",
            )
        };
        let text = if custom {
            call.input.clone().unwrap_or_default()
        } else {
            call.arguments_text()
        };
        let mut added = json!({
            "id": item_id, "type": kind, "status": "in_progress", "call_id": call_id, "name": call.name
        });
        added[field] = json!("");
        r.push(
            "response.output_item.added",
            json!({ "output_index": index, "item": added }),
        );
        for delta in split_every(&text, 16) {
            r.push(
                &format!("{delta_event}.delta"),
                json!({
                    "item_id": item_id, "output_index": index, "delta": delta
                }),
            );
        }
        let mut done = json!({ "item_id": item_id, "output_index": index });
        done[field] = json!(text);
        r.push(&format!("{delta_event}.done"), done);
        let mut item = json!({
            "id": item_id, "type": kind, "status": "completed", "call_id": call_id, "name": call.name
        });
        item[field] = json!(text);
        r.push(
            "response.output_item.done",
            json!({ "output_index": index, "item": item }),
        );
        output.push(item);
    }
    let u = usage_for(turn, request_bytes);
    let usage = json!({
        "input_tokens": u.input_tokens,
        "input_tokens_details": { "cached_tokens": 0 },
        "output_tokens": u.output_tokens,
        "output_tokens_details": { "reasoning_tokens": 0 },
        "total_tokens": u.input_tokens.saturating_add(u.output_tokens),
    });
    let (status, event) = if turn.cut_off {
        ("incomplete", "response.incomplete")
    } else {
        ("completed", "response.completed")
    };
    let mut final_response = shell(status, Value::Array(output), usage);
    if turn.cut_off {
        final_response["incomplete_details"] = json!({ "reason": "max_output_tokens" });
    }
    r.push(event, json!({ "response": final_response }));
    (r.frames, final_response)
}

struct Render {
    frames: Vec<Frame>,
    seq: u64,
}

impl Render {
    fn push(&mut self, event: &str, mut data: Value) {
        let obj = data.as_object_mut().expect("event payloads are objects");
        obj.insert("type".into(), json!(event));
        obj.insert("sequence_number".into(), json!(self.seq));
        self.seq += 1;
        self.frames.push(Frame::named(event, &data));
    }
}

/// Splits text into pieces of at most `n` characters.
pub fn split_every(text: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars.chunks(n).map(|c| c.iter().collect()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::ScriptedCall;

    #[test]
    fn a_turn_renders_the_real_event_sequence() {
        let turn = Turn {
            text: Some("hello there".into()),
            tool_calls: vec![ScriptedCall {
                name: "calc".into(),
                arguments: Some(json!({"expression": "1+1"})),
                ..Default::default()
            }],
            ..Default::default()
        };
        let (frames, fin) = render(&turn, "m", 1, 0, 100);
        let names: Vec<_> = frames.iter().map(|f| f.event.clone().unwrap()).collect();
        assert_eq!(names.first().unwrap(), "response.created");
        assert_eq!(names.last().unwrap(), "response.completed");
        assert!(names.contains(&"response.function_call_arguments.delta".to_string()));
        assert_eq!(
            fin["output"][1]["arguments"],
            json!(r#"{"expression":"1+1"}"#)
        );
        let seqs: Vec<u64> = frames
            .iter()
            .map(|f| {
                serde_json::from_str::<Value>(&f.data).unwrap()["sequence_number"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(seqs, (0..frames.len() as u64).collect::<Vec<_>>());
    }
}
