//! The agent loop against the scripted server and a real run store.

use cordon_core::{RunStatus, verify_chain};
use cordon_harness::{Agent, FunctionTool, Runner, Tool, ToolError};
use cordon_model::{Api, ModelClient, ProviderConfig};
use cordon_testkit::{Script, ScriptedServer};
use schemars::JsonSchema;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

struct Setup {
    server: ScriptedServer,
    runner: Runner,
    _dir: tempfile::TempDir,
}

async fn setup(script: &str, api: Api) -> Setup {
    let server = ScriptedServer::start(Script::from_toml(script).unwrap())
        .await
        .unwrap();
    let mut p = ProviderConfig::new("scripted", api, &server.base_url(), None);
    p.retry_initial = Duration::from_millis(5);
    p.max_retries = 1;
    let dir = tempfile::tempdir().unwrap();
    let store = cordon_store::Store::open(&dir.path().join("runs.db"))
        .await
        .unwrap();
    let runner = Runner::new(Arc::new(ModelClient::new(p).unwrap()), store);
    Setup {
        server,
        runner,
        _dir: dir,
    }
}

#[derive(Deserialize, JsonSchema)]
struct Wait {
    /// A label.
    label: String,
}

/// A tool that only returns once `n` calls are in flight together: run one at a time, the
/// calls would wait forever (and the test times out).
fn rendezvous(n: usize) -> Arc<dyn Tool> {
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    Arc::new(FunctionTool::new(
        "rendezvous",
        "Waits for its peers.",
        move |w: Wait| {
            let barrier = barrier.clone();
            async move {
                tokio::time::timeout(Duration::from_secs(5), barrier.wait())
                    .await
                    .map_err(|_| {
                        ToolError::Failed("peers never came: calls ran one at a time".into())
                    })?;
                Ok(format!("met as {}", w.label))
            }
        },
    ))
}

const PARALLEL: &str = r#"
[[turns]]
text = "Meeting up."
tool_calls = [
  { name = "rendezvous", arguments = { label = "a" } },
  { name = "rendezvous", arguments = { label = "b" } },
  { name = "rendezvous", arguments = { label = "c" } },
]
[[turns]]
tool_calls = [{ name = "calculator", arguments = { expression = "17 * 23 + 4" } }]
[[turns]]
text = "All met, and the sum is 395."
"#;

#[tokio::test]
async fn parallel_calls_run_concurrently_and_results_go_back_in_order() {
    for api in [Api::Responses, Api::Chat] {
        let s = setup(PARALLEL, api).await;
        let agent = Agent::new("t", "scripted:x", "scripted-model")
            .tool(rendezvous(3))
            .tool(cordon_tools::builtin::calculator());
        let out = s.runner.run(&agent, "meet and add").await.unwrap();
        assert_eq!(out.status, RunStatus::Completed, "{api:?}: {:?}", out.error);
        assert_eq!(out.output.as_deref(), Some("All met, and the sum is 395."));
        assert_eq!((out.state.turns, out.state.tool_calls), (3, 4));

        let reqs = s.server.requests();
        assert_eq!(reqs.len(), 3);
        let second = reqs[1].body.to_string();
        for label in ["met as a", "met as b", "met as c"] {
            assert!(
                second.contains(label),
                "{api:?}: results fed back: {second}"
            );
        }
        assert!(
            reqs[2].body.to_string().contains("395"),
            "calculator result fed back"
        );

        let events = s.runner.store().events(&out.run_id).await.unwrap();
        verify_chain(&events).unwrap();
        let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(
            &kinds[..6],
            [
                "run_started",
                "user_input",
                "model_request",
                "model_response",
                "policy_decision",
                "policy_decision"
            ]
        );
        // Every call is judged (each decision recorded) before any of the batch starts.
        assert_eq!(kinds.iter().filter(|k| **k == "policy_decision").count(), 4);
        assert_eq!(
            kinds.iter().filter(|k| **k == "tool_call_intent").count(),
            4
        );
        assert_eq!(*kinds.last().unwrap(), "run_completed");
        // Every intent is recorded before any of its batch's results.
        let first_result = kinds.iter().position(|k| *k == "tool_result").unwrap();
        assert_eq!(
            kinds[first_result - 3..first_result],
            ["tool_call_intent"; 3]
        );
    }
}

#[tokio::test]
async fn unknown_tools_and_bad_arguments_go_back_to_the_model() {
    let s = setup(
        r#"
        [[turns]]
        tool_calls = [
          { name = "teleport", arguments = {} },
          { name = "calculator", arguments_raw = "{\"expression\": 12" },
          { name = "calculator", arguments = { expr = "1" } },
        ]
        [[turns]]
        text = "Sorry."
        "#,
        Api::Chat,
    )
    .await;
    let agent = Agent::new("t", "scripted:x", "m").tool(cordon_tools::builtin::calculator());
    let out = s.runner.run(&agent, "go").await.unwrap();
    assert_eq!(out.status, RunStatus::Completed);
    let fed_back = s.server.requests()[1].body["messages"].to_string();
    assert!(
        fed_back.contains("no tool named 'teleport'") && fed_back.contains("calculator"),
        "{fed_back}"
    );
    assert!(
        fed_back.contains("invalid arguments: invalid type: integer"),
        "{fed_back}"
    );
    assert!(
        fed_back.contains("missing field `expression`"),
        "{fed_back}"
    );
}

#[tokio::test]
async fn max_turns_ends_the_run_as_budget_exceeded() {
    let s = setup(
        r#"
        [[turns]]
        tool_calls = [{ name = "calculator", arguments = { expression = "1" } }]
        [[turns]]
        tool_calls = [{ name = "calculator", arguments = { expression = "2" } }]
        [[turns]]
        text = "never reached"
        "#,
        Api::Responses,
    )
    .await;
    let agent = Agent::new("t", "scripted:x", "m")
        .tool(cordon_tools::builtin::calculator())
        .max_turns(2);
    let out = s.runner.run(&agent, "loop").await.unwrap();
    assert_eq!(out.status, RunStatus::BudgetExceeded);
    assert!(out.error.unwrap().contains("max_turns"));
    assert_eq!(s.server.requests().len(), 2, "no third model call");
}

#[tokio::test]
async fn structured_output_is_validated_and_the_model_asked_again() {
    let s = setup(
        r#"
        [[turns]]
        text = "The answer is four."
        [[turns]]
        text = '{"answer": "4"}'
        [[turns]]
        text = '{"answer": 4}'
        "#,
        Api::Responses,
    )
    .await;
    let agent = Agent::new("t", "scripted:x", "m")
        .output_schema(serde_json::json!({
            "type": "object", "required": ["answer"], "properties": { "answer": { "type": "integer" } }
        }))
        .unwrap();
    let out = s.runner.run(&agent, "2+2 as JSON").await.unwrap();
    assert_eq!(out.status, RunStatus::Completed);
    assert_eq!(out.structured.unwrap()["answer"], 4);
    let reqs = s.server.requests();
    assert_eq!(reqs[0].body["text"]["format"]["type"], "json_schema");
    let third = reqs[2].body["input"].to_string();
    assert!(
        third.contains("/answer"),
        "the model is told what was wrong: {third}"
    );
}

#[tokio::test]
async fn a_provider_failure_is_recorded_and_reported() {
    let s = setup(
        r#"
        [[turns]]
        text = "never"
        faults = [{ kind = "status", status = 500 }, { kind = "status", status = 500 }]
        "#,
        Api::Responses,
    )
    .await;
    let out = s
        .runner
        .run(&Agent::new("t", "scripted:x", "m"), "hi")
        .await
        .unwrap();
    assert_eq!(out.status, RunStatus::Failed);
    assert!(
        out.error.as_deref().unwrap().contains("HTTP 500"),
        "{:?}",
        out.error
    );
    assert!(out.hint.is_some());
    let events = s.runner.store().events(&out.run_id).await.unwrap();
    verify_chain(&events).unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "run_started",
            "user_input",
            "model_request",
            "model_retry",
            "run_failed"
        ]
    );
}

const LOOP: &str = r#"
[[turns]]
tool_calls = [{ name = "calculator", arguments = { expression = "1" } }]
usage = { input_tokens = 1000, output_tokens = 60 }
[[turns]]
tool_calls = [{ name = "calculator", arguments = { expression = "2" } }]
usage = { input_tokens = 1000, output_tokens = 60 }
[[turns]]
tool_calls = [{ name = "calculator", arguments = { expression = "3" } }]
usage = { input_tokens = 1000, output_tokens = 60 }
[[turns]]
text = "done"
"#;

async fn budget_run(
    script: &str,
    budgets: cordon_harness::Budgets,
    price: Option<cordon_harness::Price>,
) -> (cordon_harness::RunOutcome, Setup) {
    let s = setup(script, Api::Chat).await;
    let agent = Agent::new("t", "scripted:x", "m")
        .tool(cordon_tools::builtin::calculator())
        .budgets(budgets, price);
    let out = s.runner.run(&agent, "spend").await.unwrap();
    (out, s)
}

#[tokio::test]
async fn each_budget_ends_the_run_and_says_which() {
    use cordon_harness::{Budgets, Price};
    let (out, s) = budget_run(
        LOOP,
        Budgets {
            max_output_tokens: Some(100),
            ..Budgets::default()
        },
        None,
    )
    .await;
    assert_eq!(out.status, RunStatus::BudgetExceeded);
    assert_eq!(
        out.error.as_deref(),
        Some("the max_output_tokens budget ran out (limit 100, used 120)")
    );
    assert_eq!(
        s.server.requests().len(),
        2,
        "no model call after the budget ran out"
    );

    let price = Price {
        input_per_mtok: 1000.0,
        cached_input_per_mtok: None,
        output_per_mtok: 0.0,
    };
    let (out, _) = budget_run(
        LOOP,
        Budgets {
            max_cost_usd: Some(1.5),
            ..Budgets::default()
        },
        Some(price),
    )
    .await;
    assert_eq!(
        out.error.as_deref(),
        Some("the max_cost_usd budget ran out (limit 1.50, used 2)")
    );

    let (out, _) = budget_run(
        LOOP,
        Budgets {
            max_input_tokens: Some(3000),
            ..Budgets::default()
        },
        None,
    )
    .await;
    assert_eq!(
        out.error.as_deref(),
        Some("the max_input_tokens budget ran out (limit 3000, used 3000)")
    );
}

#[tokio::test]
async fn a_batch_of_tool_calls_that_would_break_the_budget_does_not_start() {
    let script = r#"
    [[turns]]
    tool_calls = [
      { name = "calculator", arguments = { expression = "1" } },
      { name = "calculator", arguments = { expression = "2" } },
      { name = "calculator", arguments = { expression = "3" } },
    ]
    [[turns]]
    text = "never"
    "#;
    let (out, s) = budget_run(
        script,
        cordon_harness::Budgets {
            max_tool_calls: Some(2),
            ..Default::default()
        },
        None,
    )
    .await;
    assert_eq!(
        out.error.as_deref(),
        Some("the max_tool_calls budget ran out: 0 of 2 ran, and the model asked for 3 more")
    );
    let events = s.runner.store().events(&out.run_id).await.unwrap();
    assert!(
        events
            .iter()
            .all(|e| e.kind != "tool_call_intent" && e.kind != "tool_result"),
        "no call ran"
    );
    verify_chain(&events).unwrap();
}

#[tokio::test]
async fn wall_time_counts_from_the_run_start() {
    let script = r#"
    [[turns]]
    tool_calls = [{ name = "calculator", arguments = { expression = "1" } }]
    delay_ms = 1200
    [[turns]]
    text = "never"
    "#;
    let (out, s) = budget_run(
        script,
        cordon_harness::Budgets {
            max_wall_time_secs: Some(1),
            ..Default::default()
        },
        None,
    )
    .await;
    assert!(
        out.error
            .as_deref()
            .unwrap()
            .starts_with("the max_wall_time_secs budget ran out (limit 1, used 1."),
        "{:?}",
        out.error
    );
    assert_eq!(s.server.requests().len(), 1);
}

#[tokio::test]
async fn a_cost_budget_needs_a_price() {
    let s = setup(LOOP, Api::Chat).await;
    let agent = Agent::new("t", "scripted:x", "m").budgets(
        cordon_harness::Budgets {
            max_cost_usd: Some(1.0),
            ..Default::default()
        },
        None,
    );
    let err = s.runner.run(&agent, "x").await.unwrap_err().to_string();
    assert!(
        err.contains("max_cost_usd needs the model's price"),
        "{err}"
    );
}

#[tokio::test]
async fn resume_runs_calls_a_recorded_response_asked_for_without_asking_again() {
    use cordon_core::{CallKind, EventPayload, Item, ModelResponse, RunId, ToolCall};
    // The log ends right after the model's answer: its call never started.
    let s = setup("[[turns]]\ntext = \"2 + 2 = 4\"\n", Api::Chat).await;
    let agent = Agent::new("t", "scripted:x", "m").tool(cordon_tools::builtin::calculator());
    let run = RunId::new();
    let mut log = s.runner.store().create_run(&run).await.unwrap();
    let call = ToolCall {
        call_id: "c1".into(),
        name: "calculator".into(),
        kind: CallKind::Function,
        input: r#"{"expression": "2+2"}"#.into(),
        id: None,
    };
    for e in [
        EventPayload::RunStarted {
            agent: agent.info("chat"),
            cordon_version: "test".into(),
            manifest_digest: None,
            policy_digest: None,
            sandbox: None,
            policy: None,
        },
        EventPayload::UserInput { text: "add".into() },
        EventPayload::ModelRequest {
            turn: 1,
            input_items: 1,
        },
        EventPayload::ModelResponse {
            turn: 1,
            response: ModelResponse {
                items: vec![Item::ToolCall(call)],
                ..ModelResponse::default()
            },
        },
    ] {
        log.append(&e).await.unwrap();
    }
    let out = s
        .runner
        .resume(&agent, &run, cordon_harness::Resumption::default())
        .await
        .unwrap();
    assert_eq!(out.status, RunStatus::Completed);
    assert_eq!(
        s.server.requests().len(),
        1,
        "turn 1 was not requested again"
    );
    let events = s.runner.store().events(&run).await.unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        &kinds[4..],
        [
            "run_resumed",
            "policy_decision",
            "tool_call_intent",
            "tool_result",
            "model_request",
            "model_response",
            "run_completed"
        ]
    );
    assert!(
        s.server.requests()[0].body.to_string().contains("\"4\""),
        "the result went to the model"
    );
    verify_chain(&events).unwrap();
    // A completed run is not resumed.
    assert!(
        s.runner
            .resume(&agent, &run, cordon_harness::Resumption::default())
            .await
            .unwrap_err()
            .to_string()
            .contains("completed")
    );
}

/// Guardrails written as Rust functions: one refuses a call, one stops the run at its
/// answer; both are recorded.
#[tokio::test]
async fn rust_guardrails_refuse_a_call_and_stop_the_run() {
    use cordon_harness::guardrail::{FnGuardrail, Stage};
    let s = setup(
        r#"
        [[turns]]
        tool_calls = [{ name = "calculator", arguments = { expression = "666 * 1" } }, { name = "calculator", arguments = { expression = "2 * 3" } }]
        [[turns]]
        text = "The answer is SECRET-6."
        "#,
        Api::Chat,
    )
    .await;
    let no_666 = FnGuardrail::new("no-666", &[Stage::ToolCall], |tool, args| {
        (tool == Some("calculator") && args.contains("666")).then(|| "not that number".to_string())
    });
    let no_secret = FnGuardrail::new("no-secret", &[Stage::Output], |_, text| {
        text.contains("SECRET")
            .then(|| "the answer holds a secret".to_string())
    });
    let agent = Agent::new("t", "scripted:x", "m")
        .tool(cordon_tools::builtin::calculator())
        .guardrail(Arc::new(no_666))
        .guardrail(Arc::new(no_secret));
    let out = s.runner.run(&agent, "go").await.unwrap();
    assert_eq!(out.status, RunStatus::Failed);
    assert_eq!(
        out.state.tripped.as_deref(),
        Some("no-secret: the answer holds a secret")
    );
    let fed_back = s.server.requests()[1].body["messages"].to_string();
    assert!(
        fed_back.contains("'no-666' refused this call: not that number"),
        "{fed_back}"
    );
    assert!(fed_back.contains("\"6\""), "the other call ran: {fed_back}");
    let events = s.runner.store().events(&out.run_id).await.unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "guardrail_tripped").count(),
        2
    );
    assert!(!kinds.contains(&"run_completed"));
}
