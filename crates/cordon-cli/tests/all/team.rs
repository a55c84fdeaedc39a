//! Several agents in one run, through the real binary: a handoff chain with history
//! filters (resumed with the agent that was active), an agent used as a tool, and
//! sub-agents in sandboxes of their own, in parallel, killed and resumed as a tree.

use crate::common;
use serde_json::Value;

/// The messages of a Chat Completions request, as (role, text) pairs.
fn messages(body: &Value) -> Vec<(String, String)> {
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap_or_default().to_string(),
                match &m["content"] {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                },
            )
        })
        .collect()
}

/// The tool names a request offers.
fn tools(body: &Value) -> Vec<String> {
    body["tools"]
        .as_array()
        .map(|t| {
            t.iter()
                .map(|t| t["function"]["name"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_handoff_chain_filters_history_and_resumes_with_the_active_agent() {
    let (server, home) = common::scripted_home(
        r#"
[[turns]]
tool_calls = [{ call_id = "sum", name = "calculator", arguments = { expression = "40 + 2" } }]
[[turns]]
text = "This is about an invoice."
tool_calls = [{ call_id = "h1", name = "transfer_to_billing", arguments = { reason = "invoice question" } }]
[[turns]]
tool_calls = [{ call_id = "h2", name = "transfer_to_refunds", arguments = { reason = "the customer wants 42 back" } }]
[[turns]]
text = '{"refund": 42}'
"#,
    )
    .await;
    let h = home.path();
    std::fs::write(
        h.join("triage.toml"),
        r#"name = "triage"
instructions = "You are triage. Route the customer."
tools = ["calculator"]

[approvals]
tools = ["transfer_to_refunds"]

[[handoffs]]
agent = "billing.toml"
description = "Invoices."
history = "last_turns"
turns = 1
"#,
    )
    .unwrap();
    std::fs::write(
        h.join("billing.toml"),
        r#"name = "billing"
instructions = "You are billing."

[[handoffs]]
agent = "refunds.toml"
description = "Refunds."
history = "none"

[[handoffs]]
agent = "triage.toml"
description = "Anything else."
"#,
    )
    .unwrap();
    std::fs::write(
        h.join("refunds.toml"),
        r#"name = "refunds"
instructions = "You are refunds."

[output]
schema = { type = "object", required = ["refund"], properties = { refund = { type = "number" } } }
"#,
    )
    .unwrap();
    let agent = h.join("triage.toml").display().to_string();
    // The handoff to refunds waits for a person (the entry agent's approvals hold for the
    // whole team): the run stops with billing active.
    common::expect(
        h,
        &[
            "run",
            "--agent",
            &agent,
            "--model",
            "s:m",
            "I was billed twice",
        ],
        5,
    )
    .await;
    common::expect(h, &["approve", "last"], 0).await;
    let out = common::expect(h, &["resume", "last"], 0).await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        r#"{"refund":42}"#
    );

    let requests = server.requests();
    assert_eq!(requests.len(), 4, "no answer was asked for twice");
    let system = |i: usize| messages(&requests[i].body)[0].1.clone();
    assert!(system(0).starts_with("You are triage."));
    assert!(system(1).starts_with("You are triage."));
    assert!(system(2).starts_with("You are billing."));
    assert!(system(3).starts_with("You are refunds."));
    assert_eq!(
        tools(&requests[0].body),
        ["calculator", "transfer_to_billing"]
    );
    assert_eq!(
        tools(&requests[2].body),
        ["transfer_to_refunds", "transfer_to_triage"]
    );
    assert!(tools(&requests[3].body).is_empty());
    // Billing sees the task and the last turn (the handoff), not the sum before it.
    let billing = messages(&requests[2].body);
    assert_eq!(billing[1], ("user".into(), "I was billed twice".into()));
    assert!(!requests[2].body.to_string().contains("40 + 2"));
    assert!(requests[2].body.to_string().contains("transfer_to_billing"));
    assert!(requests[1].body.to_string().contains("40 + 2"));
    // Refunds sees the task and who handed it over, and nothing else.
    let refunds = messages(&requests[3].body);
    assert_eq!(refunds.len(), 3, "{refunds:?}");
    assert_eq!(refunds[1], ("user".into(), "I was billed twice".into()));
    assert_eq!(
        refunds[2].1,
        "[cordon] The agent 'billing' handed this conversation to you, saying: the customer wants 42 back."
    );
    // The answer is typed by the receiving agent's schema.
    assert_eq!(
        requests[3].body["response_format"]["json_schema"]["schema"]["required"][0],
        "refund"
    );

    let events = common::json_lines(
        &common::expect(h, &["show", "last", "--json"], 0)
            .await
            .stdout,
    );
    let handoffs: Vec<&Value> = events
        .iter()
        .filter(|e| e["kind"] == "handed_off")
        .collect();
    assert_eq!(handoffs.len(), 2);
    assert_eq!(handoffs[0]["payload"]["from"], "triage");
    assert_eq!(handoffs[0]["payload"]["to"], "billing");
    assert_eq!(handoffs[0]["payload"]["history"], "last 1 turns");
    assert_eq!(handoffs[1]["payload"]["to"], "refunds");
    assert_eq!(handoffs[1]["payload"]["history"], "none");
    let started = &events[0]["payload"]["agent"];
    assert_eq!(started["members"].as_array().unwrap().len(), 2);
    let text =
        String::from_utf8_lossy(&common::expect(h, &["show", "last"], 0).await.stdout).to_string();
    assert!(text.contains("triage → billing"), "{text}");
    common::expect(h, &["verify", "last"], 0).await;
}

#[tokio::test]
async fn a_team_with_a_bad_handoff_is_refused_before_the_run() {
    let (_server, home) = common::scripted_home("[[turns]]\ntext = \"x\"\n").await;
    let h = home.path();
    std::fs::write(
        h.join("a.toml"),
        "name = \"a\"\n[[handoffs]]\nagent = \"missing.toml\"\n",
    )
    .unwrap();
    std::fs::write(
        h.join("b.toml"),
        "name = \"b\"\n[[handoffs]]\nagent = \"c.toml\"\nhistory = \"last_turns\"\n",
    )
    .unwrap();
    std::fs::write(
        h.join("c.toml"),
        "name = \"c\"\n[budgets]\nmax_tool_calls = 3\n",
    )
    .unwrap();
    std::fs::write(
        h.join("d.toml"),
        "name = \"d\"\n[[handoffs]]\nagent = \"e.toml\"\n",
    )
    .unwrap();
    std::fs::write(h.join("e.toml"), "name = \"e\"\n").unwrap();
    let err = |file: &str| {
        let file = h.join(file).display().to_string();
        async move {
            let out = common::expect(h, &["run", "--agent", &file, "--model", "s:m", "x"], 2).await;
            String::from_utf8_lossy(&out.stderr).to_string()
        }
    };
    assert!(err("a.toml").await.contains("there is no file"));
    assert!(err("b.toml").await.contains("last_turns needs turns"));
    std::fs::write(
        h.join("b.toml"),
        "name = \"b\"\n[[handoffs]]\nagent = \"c.toml\"\n",
    )
    .unwrap();
    assert!(
        err("b.toml")
            .await
            .contains("an agent reached by a handoff cannot set [budgets]")
    );
    std::fs::write(h.join("e.toml"), "name = \"d\"\n").unwrap();
    assert!(err("d.toml").await.contains("named 'd' already"));
}
