//! The model client against the scripted server, over real HTTP and SSE, for both
//! protocols and every injected fault.

use cordon_core::{CallKind, Item, Role, ToolSpec};
use cordon_model::{
    Api, ModelClient, ModelError, ModelRequest, ModelSettings, ProviderConfig, Secret, StreamEvent,
};
use cordon_testkit::{Script, ScriptedServer};
use std::time::Duration;

const KEY: &str = "sk-test-0123456789abcdef";

fn script(toml_text: &str) -> Script {
    Script::from_toml(toml_text).expect("test script parses")
}

fn request() -> ModelRequest {
    ModelRequest {
        model: "scripted-model".into(),
        instructions: Some("You are terse.".into()),
        input: vec![Item::text(Role::User, "What is 2+2?")],
        tools: vec![
            ToolSpec::function(
                "calculator",
                "Evaluates arithmetic.",
                serde_json::json!({"type": "object"}),
            ),
            ToolSpec::custom("apply_patch", "Applies a patch.", None),
        ],
        settings: ModelSettings::default(),
        output_schema: None,
    }
}

fn provider(server: &ScriptedServer, api: Api) -> ProviderConfig {
    let mut p = ProviderConfig::new("scripted", api, &server.base_url(), Some(Secret::new(KEY)));
    p.retry_initial = Duration::from_millis(10);
    p.idle_timeout = Duration::from_millis(500);
    p
}

async fn call(
    server: &ScriptedServer,
    api: Api,
) -> (
    Result<cordon_core::ModelResponse, ModelError>,
    Vec<StreamEvent>,
) {
    let client = ModelClient::new(provider(server, api)).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let r = client.respond(&request(), &tx).await;
    drop(tx);
    let mut events = Vec::new();
    while let Some(e) = rx.recv().await {
        events.push(e);
    }
    (r, events)
}

const BOTH: [Api; 2] = [Api::Responses, Api::Chat];

#[tokio::test]
async fn text_streams_and_tool_calls_arrive_whole() {
    for api in BOTH {
        let server = ScriptedServer::start(script(
            r#"
            [[turns]]
            text = "Let me compute that for you now."
            tool_calls = [
              { name = "calculator", arguments = { expression = "2+2" } },
              { name = "apply_patch", input = "*** Begin Patch\n*** End Patch" },
            ]
            "#,
        ))
        .await
        .unwrap();
        let (r, events) = call(&server, api).await;
        let r = r.unwrap();
        assert_eq!(r.text(), "Let me compute that for you now.", "{api:?}");
        let deltas = events
            .iter()
            .filter(|e| matches!(e, StreamEvent::TextDelta(_)))
            .count();
        assert!(deltas > 1, "{api:?}: text arrives in pieces, got {deltas}");
        let calls = r.tool_calls();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].input, r#"{"expression":"2+2"}"#);
        assert_eq!(
            (calls[1].kind, calls[1].input.as_str()),
            (CallKind::Custom, "*** Begin Patch\n*** End Patch")
        );
        assert!(r.usage.total_tokens() > 0);
        let reqs = server.requests();
        assert_eq!(reqs.len(), 1);
        assert_eq!(
            reqs[0].authorization.as_deref(),
            Some(format!("Bearer {KEY}").as_str())
        );
        assert_eq!(reqs[0].body["stream"], true);
    }
}

#[tokio::test]
async fn status_faults_are_retried_honouring_retry_after() {
    for api in BOTH {
        let server = ScriptedServer::start(script(
            r#"
            [[turns]]
            text = "ok"
            faults = [{ kind = "status", status = 429, retry_after = 1 }, { kind = "status", status = 500 }]
            "#,
        ))
        .await
        .unwrap();
        let started = std::time::Instant::now();
        let (r, events) = call(&server, api).await;
        assert_eq!(r.unwrap().text(), "ok");
        let delays: Vec<Duration> = events
            .iter()
            .filter_map(|e| match e {
                StreamEvent::Retrying { delay, .. } => Some(*delay),
                _ => None,
            })
            .collect();
        assert_eq!(delays.len(), 2, "{api:?}: {events:?}");
        assert_eq!(delays[0], Duration::from_secs(1), "Retry-After is honoured");
        assert!(
            delays[1] < Duration::from_millis(100),
            "backoff from retry_initial"
        );
        assert!(started.elapsed() >= Duration::from_secs(1));
        assert_eq!(server.requests().len(), 3);
    }
}

#[tokio::test]
async fn a_dropped_or_stalled_stream_is_retried() {
    for api in BOTH {
        let server = ScriptedServer::start(script(
            r#"
            [[turns]]
            text = "after the storm"
            faults = [{ kind = "disconnect", after_events = 2 }, { kind = "stall", ms = 2000 }]
            "#,
        ))
        .await
        .unwrap();
        let (r, events) = call(&server, api).await;
        assert_eq!(r.unwrap().text(), "after the storm", "{api:?}");
        let errors: Vec<String> = events
            .iter()
            .filter_map(|e| match e {
                StreamEvent::Retrying { error, .. } => Some(error.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].contains("ended before"), "{}", errors[0]);
        assert!(errors[1].contains("timed out"), "{}", errors[1]);
    }
}

#[tokio::test]
async fn a_malformed_event_is_kept_not_fatal() {
    for api in BOTH {
        let server = ScriptedServer::start(script(
            r#"
            [[turns]]
            text = "one two three four five six seven eight nine ten"
            faults = [{ kind = "malformed" }]
            "#,
        ))
        .await
        .unwrap();
        let (r, _) = call(&server, api).await;
        let r = r.unwrap();
        assert_eq!(r.text(), "one two three four five six seven eight nine ten");
        assert_eq!(r.unknown_events.len(), 1, "{api:?}: {:?}", r.unknown_events);
        assert!(r.unknown_events[0].to_string().contains("garbled"));
        assert_eq!(server.requests().len(), 1, "no retry for a malformed event");
    }
}

#[tokio::test]
async fn when_retries_run_out_the_error_names_provider_status_and_body_without_the_key() {
    let server = ScriptedServer::start(script(&format!(
        r#"
        [[turns]]
        text = "never"
        faults = [
          {{ kind = "status", status = 503, message = "overloaded; your key {KEY} was fine" }},
          {{ kind = "status", status = 503 }}, {{ kind = "status", status = 503 }}, {{ kind = "status", status = 503 }},
        ]
        "#
    )))
    .await
    .unwrap();
    let (r, _) = call(&server, Api::Responses).await;
    let e = r.unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(e, ModelError::RetriesExhausted { attempts: 4, .. }),
        "{msg}"
    );
    assert!(
        msg.contains("scripted") && msg.contains("503") && msg.contains("gave up after 4"),
        "{msg}"
    );
    assert_eq!(server.requests().len(), 4);

    // The first answer echoed the key: make a client that stops there and check the message.
    let mut p = provider(&server, Api::Responses);
    p.max_retries = 0;
    let server2 = ScriptedServer::start(script(&format!(
        "[[turns]]\ntext = \"x\"\nfaults = [{{ kind = \"status\", status = 400, message = \"bad key {KEY}\" }}]\n"
    )))
    .await
    .unwrap();
    p.base_url = server2.base_url();
    let client = ModelClient::new(p).unwrap();
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let msg = client
        .respond(&request(), &tx)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("HTTP 400") && msg.contains("bad key ***"),
        "{msg}"
    );
    assert!(!msg.contains(KEY));
}

#[tokio::test]
async fn an_unreachable_server_is_a_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut p = ProviderConfig::new(
        "local",
        Api::Chat,
        &format!("http://127.0.0.1:{port}/v1"),
        None,
    );
    p.max_retries = 1;
    p.retry_initial = Duration::from_millis(10);
    let client = ModelClient::new(p).unwrap();
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let e = client.respond(&request(), &tx).await.unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("cannot reach local") && msg.contains(&port.to_string()),
        "{msg}"
    );
    assert!(e.hint().contains("server running"));
}

#[tokio::test]
async fn exhausted_scripts_fail_without_retry() {
    let server = ScriptedServer::start(script("")).await.unwrap();
    let (r, events) = call(&server, Api::Chat).await;
    let msg = r.unwrap_err().to_string();
    assert!(msg.contains("no turn left"), "{msg}");
    assert!(events.is_empty());
}

/// Calls the server over Chat Completions, streamed or not.
async fn chat_call(server: &ScriptedServer, stream: bool) -> cordon_core::ModelResponse {
    let mut p = provider(server, Api::Chat);
    p.stream = stream;
    let client = ModelClient::new(p).unwrap();
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    client.respond(&request(), &tx).await.unwrap()
}

#[tokio::test]
async fn llama_cpp_python_shapes_give_whole_calls_in_both_stream_modes() {
    // The shapes llama-cpp-python sends: every call mirrored in the legacy function_call,
    // its whole name in every chunk, no usage.
    for quirks in [
        "mirror_function_call = true, repeat_tool_names = true, no_usage = true",
        "split_tool_names = true",
        "mirror_function_call = true",
    ] {
        let server = ScriptedServer::start(script(&format!(
            r#"
            chat_quirks = {{ {quirks} }}
            [[turns]]
            tool_calls = [{{ name = "calculator", arguments = {{ expression = "17 * 23 + 4 - 1000 / 8" }} }}]
            [[turns]]
            tool_calls = [{{ name = "calculator", arguments = {{ expression = "17 * 23 + 4 - 1000 / 8" }} }}]
            "#
        )))
        .await
        .unwrap();
        for stream in [true, false] {
            let r = chat_call(&server, stream).await;
            let calls = r.tool_calls();
            assert_eq!(calls.len(), 1, "{quirks} stream={stream}: {calls:?}");
            assert_eq!(calls[0].name, "calculator", "{quirks} stream={stream}");
            assert_eq!(
                calls[0].input, r#"{"expression":"17 * 23 + 4 - 1000 / 8"}"#,
                "{quirks} stream={stream}"
            );
            if quirks.contains("mirror") {
                assert!(
                    r.notes.iter().any(|n| n.contains("function_call")),
                    "the decoding is noted: {:?}",
                    r.notes
                );
                assert!(r.wire.is_some(), "and what came is kept");
            }
            if quirks.contains("no_usage") {
                assert!(r.usage.estimated, "no usage: estimated");
                assert!(
                    r.usage.input_tokens > 20 && r.usage.output_tokens > 5,
                    "{:?}",
                    r.usage
                );
            } else {
                assert!(!r.usage.estimated);
            }
        }
    }
}

#[tokio::test]
async fn a_call_sent_only_in_the_legacy_field_is_still_read() {
    // Older servers send function_call alone: then it is the call.
    let body = serde_json::json!({
        "id": "x", "model": "m",
        "choices": [{ "index": 0, "message": { "role": "assistant", "content": null,
            "function_call": { "name": "calculator", "arguments": "{\"expression\":\"1\"}" } },
            "finish_reason": "function_call" }],
        "usage": { "prompt_tokens": 3, "completion_tokens": 4 }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = answer_every_request(listener, body.to_string());
    let mut provider = ProviderConfig::new("legacy", Api::Chat, &format!("http://{addr}/v1"), None);
    provider.stream = false;
    let client = ModelClient::new(provider).unwrap();
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let r = client.respond(&request(), &tx).await.unwrap();
    server.abort();
    let calls = r.tool_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(
        (calls[0].name.as_str(), calls[0].input.as_str()),
        ("calculator", "{\"expression\":\"1\"}")
    );
    assert!(
        r.notes
            .iter()
            .any(|n| n.contains("legacy function_call field only"))
    );
}

/// A bare HTTP server that answers every request with `body` as JSON.
fn answer_every_request(
    listener: tokio::net::TcpListener,
    body: String,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let body = body.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let mut got = Vec::new();
                loop {
                    let n = s.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    got.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&got);
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len: usize = text[..end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if got.len() >= end + 4 + len {
                            break;
                        }
                    }
                }
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    })
}

#[tokio::test]
async fn the_same_500_twice_stops_the_retries_and_shows_the_body() {
    let server = ScriptedServer::start(script(
        r#"
        [[turns]]
        text = "never"
        faults = [
          { kind = "status", status = 500, message = "tool_choice required is not supported" },
          { kind = "status", status = 500, message = "tool_choice required is not supported" },
          { kind = "status", status = 500, message = "tool_choice required is not supported" },
        ]
        "#,
    ))
    .await
    .unwrap();
    let (r, _) = call(&server, Api::Chat).await;
    let err = r.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("tool_choice required is not supported"),
        "{text}"
    );
    assert!(text.contains("the same answer 2 times"), "{text}");
    assert!(!err.hint().contains("try again later"), "{}", err.hint());
    assert_eq!(server.requests().len(), 2, "stopped after the repeat");
}
