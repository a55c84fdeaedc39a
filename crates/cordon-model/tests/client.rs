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
