//! The Chat Completions stream, as `POST /v1/chat/completions` with `stream: true` sends it.

use crate::frame::{Frame, now_secs, usage_for};
use crate::responses::split_every;
use crate::script::{Turn, chunks};
use serde_json::{Value, json};

/// Renders a turn as Chat Completions chunks (ending in `[DONE]`), and the equivalent
/// non-streamed `chat.completion` object. `n` numbers the turn, `request` the request.
pub fn render(
    turn: &Turn,
    model: &str,
    n: u64,
    request: usize,
    request_bytes: usize,
    include_usage: bool,
) -> (Vec<Frame>, Value) {
    let id = format!("chatcmpl-{n:04}-{request:04}");
    let created = now_secs();
    let chunk = |choices: Value| {
        json!({
            "id": id, "object": "chat.completion.chunk", "created": created,
            "model": model, "system_fingerprint": "fp_scripted", "choices": choices,
        })
    };
    let choice = |delta: Value, finish: Value| json!([{ "index": 0, "delta": delta, "logprobs": null, "finish_reason": finish }]);
    let mut frames = vec![Frame::data(
        chunk(choice(
            json!({"role": "assistant", "content": ""}),
            Value::Null,
        ))
        .to_string(),
    )];
    let text = turn.text.clone().unwrap_or_default();
    for piece in chunks(&text) {
        frames.push(Frame::data(
            chunk(choice(json!({ "content": piece }), Value::Null)).to_string(),
        ));
    }
    let mut calls = Vec::new();
    for (i, call) in turn.tool_calls.iter().enumerate() {
        let call_id = call
            .call_id
            .clone()
            .unwrap_or_else(|| format!("call_{n:04}_{i}"));
        let args = call.arguments_text();
        frames.push(Frame::data(
            chunk(choice(
                json!({ "tool_calls": [{ "index": i, "id": call_id, "type": "function",
                        "function": { "name": call.name, "arguments": "" } }] }),
                Value::Null,
            ))
            .to_string(),
        ));
        for piece in split_every(&args, 16) {
            frames.push(Frame::data(
                chunk(choice(
                    json!({ "tool_calls": [{ "index": i, "function": { "arguments": piece } }] }),
                    Value::Null,
                ))
                .to_string(),
            ));
        }
        calls.push(json!({ "id": call_id, "type": "function", "function": { "name": call.name, "arguments": args } }));
    }
    let finish = if calls.is_empty() {
        "stop"
    } else {
        "tool_calls"
    };
    frames.push(Frame::data(
        chunk(choice(json!({}), json!(finish))).to_string(),
    ));
    let u = usage_for(turn, request_bytes);
    let usage = json!({
        "prompt_tokens": u.input_tokens, "completion_tokens": u.output_tokens,
        "total_tokens": u.input_tokens + u.output_tokens,
        "prompt_tokens_details": { "cached_tokens": 0 },
        "completion_tokens_details": { "reasoning_tokens": 0 },
    });
    if include_usage {
        let mut last = chunk(json!([]));
        last["usage"] = usage.clone();
        frames.push(Frame::data(last.to_string()));
    }
    frames.push(Frame::data("[DONE]"));

    let mut message = json!({ "role": "assistant", "content": if text.is_empty() { Value::Null } else { json!(text) } });
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    let whole = json!({
        "id": id, "object": "chat.completion", "created": created, "model": model,
        "choices": [{ "index": 0, "message": message, "logprobs": null, "finish_reason": finish }],
        "usage": usage,
    });
    (frames, whole)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::ScriptedCall;

    #[test]
    fn tool_call_arguments_arrive_in_pieces_that_join() {
        let turn = Turn {
            tool_calls: vec![ScriptedCall {
                name: "calc".into(),
                arguments: Some(json!({"expression": "12345678901234567890"})),
                ..Default::default()
            }],
            ..Default::default()
        };
        let (frames, whole) = render(&turn, "m", 1, 0, 10, true);
        assert_eq!(frames.last().unwrap().data, "[DONE]");
        let mut args = String::new();
        for f in &frames[..frames.len() - 1] {
            let v: Value = serde_json::from_str(&f.data).unwrap();
            if let Some(a) =
                v["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str()
            {
                args.push_str(a);
            }
        }
        assert_eq!(
            args,
            whole["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
        );
        assert_eq!(whole["choices"][0]["finish_reason"], "tool_calls");
    }
}
