//! The Chat Completions stream, as `POST /v1/chat/completions` with `stream: true` sends it.

use crate::frame::{Frame, now_secs, usage_for};
use crate::responses::split_every;
use crate::script::{ChatQuirks, Turn, chunks};
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
    quirks: ChatQuirks,
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
    // Reasoning as the servers that have it send it (vLLM, llama.cpp, DeepSeek): a
    // `reasoning_content` field, streamed before the answer.
    let reasoning = turn.reasoning.clone().unwrap_or_default();
    for piece in chunks(&reasoning) {
        frames.push(Frame::data(
            chunk(choice(json!({ "reasoning_content": piece }), Value::Null)).to_string(),
        ));
    }
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
        // Each piece of a call as its own delta, shaped as the quirks say.
        let mut delta = |name: Option<&str>, piece: &str, first: bool| {
            let mut function = json!({ "arguments": piece });
            if let Some(name) = name {
                function["name"] = json!(name);
            }
            let mut call_delta = json!({ "index": i, "function": function });
            if first || quirks.repeat_tool_names {
                call_delta["id"] = json!(call_id);
                call_delta["type"] = json!("function");
            }
            let mut d = json!({ "tool_calls": [call_delta] });
            if quirks.mirror_function_call {
                d["function_call"] = json!({ "name": call.name, "arguments": piece });
            }
            frames.push(Frame::data(chunk(choice(d, Value::Null)).to_string()));
        };
        if quirks.split_tool_names && call.name.len() > 1 {
            let (a, b) = call.name.split_at(call.name.len() / 2);
            delta(Some(a), "", true);
            delta(Some(b), "", false);
        } else {
            delta(Some(&call.name), "", true);
        }
        for piece in split_every(&args, 16) {
            let name = quirks.repeat_tool_names.then_some(call.name.as_str());
            delta(name, &piece, false);
        }
        calls.push(json!({ "id": call_id, "type": "function", "function": { "name": call.name, "arguments": args } }));
    }
    let finish = if turn.cut_off {
        "length"
    } else if calls.is_empty() {
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
        "total_tokens": u.input_tokens.saturating_add(u.output_tokens),
        "prompt_tokens_details": { "cached_tokens": 0 },
        "completion_tokens_details": { "reasoning_tokens": 0 },
    });
    if include_usage && !quirks.no_usage {
        let mut last = chunk(json!([]));
        last["usage"] = usage.clone();
        frames.push(Frame::data(last.to_string()));
    }
    frames.push(Frame::data("[DONE]"));

    let mut message = json!({ "role": "assistant", "content": if text.is_empty() { Value::Null } else { json!(text) } });
    if !reasoning.is_empty() {
        message["reasoning_content"] = json!(reasoning);
    }
    if quirks.mirror_function_call
        && let Some(first) = calls.first()
    {
        message["function_call"] = first["function"].clone();
    }
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    let mut whole = json!({
        "id": id, "object": "chat.completion", "created": created, "model": model,
        "choices": [{ "index": 0, "message": message, "logprobs": null, "finish_reason": finish }],
        "usage": usage,
    });
    if quirks.no_usage {
        whole.as_object_mut().expect("an object").remove("usage");
    }
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
        let (frames, whole) = render(&turn, "m", 1, 0, 10, true, ChatQuirks::default());
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
