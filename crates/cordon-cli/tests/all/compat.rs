//! What real OpenAI-compatible servers send, as the scripted server reproduces it: a forced
//! tool choice that must let go, answers without usage, hostile tool names, and the raw view.

use crate::common;

use cordon_testkit::{Script, ScriptedServer};
use std::path::Path;

async fn server(script: &str) -> ScriptedServer {
    ScriptedServer::start(Script::from_toml(script).unwrap())
        .await
        .unwrap()
}

fn home_for(server: &ScriptedServer, agent: &str) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("config.toml"),
        format!(
            "[providers.s]\napi = \"chat\"\nbase_url = \"{}\"\nretry_initial_ms = 10\n",
            server.base_url()
        ),
    )
    .unwrap();
    std::fs::write(home.path().join("agent.toml"), agent).unwrap();
    home
}

async fn cordon(home: &Path, args: &[&str]) -> std::process::Output {
    let mut c = common::cordon_std(home);
    c.env("CORDON_CONFIG", home.join("config.toml")).args(args);
    common::output(c).await
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_tool_choice_lets_go_after_the_first_call() {
    let server = server(
        r#"
        [[turns]]
        tool_calls = [{ name = "calculator", arguments = { expression = "6 * 7" } }]
        [[turns]]
        text = "42"
        "#,
    )
    .await;
    let home = home_for(
        &server,
        "name = \"a\"\ntools = [\"calculator\"]\n[model_settings]\ntool_choice = \"calculator\"\n",
    );
    let out = cordon(
        home.path(),
        &["run", "--agent", "agent.toml", "--model", "s:m", "go"],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let reqs = server.requests();
    assert_eq!(
        reqs[0].body["tool_choice"]["function"]["name"], "calculator",
        "forced on the first turn"
    );
    assert!(
        reqs[1].body.get("tool_choice").is_none(),
        "and free after the call: {}",
        reqs[1].body
    );

    // reset_tool_choice = false keeps it (the run then ends at its turn limit).
    let server = server_forcing_forever().await;
    let home = home_for(
        &server,
        "name = \"a\"\nmax_turns = 2\ntools = [\"calculator\"]\n[model_settings]\ntool_choice = \"required\"\nreset_tool_choice = false\n",
    );
    let out = cordon(
        home.path(),
        &["run", "--agent", "agent.toml", "--model", "s:m", "go"],
    )
    .await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert_eq!(server.requests()[1].body["tool_choice"], "required");
}

async fn server_forcing_forever() -> ScriptedServer {
    server(
        r#"
        [[turns]]
        tool_calls = [{ name = "calculator", arguments = { expression = "1" } }]
        [[turns]]
        tool_calls = [{ name = "calculator", arguments = { expression = "2" } }]
        "#,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_budgets_hold_when_the_server_reports_no_usage() {
    let server = server(
        r#"
        chat_quirks = { no_usage = true, mirror_function_call = true, repeat_tool_names = true }
        [[turns]]
        tool_calls = [{ name = "calculator", arguments = { expression = "17 * 23" } }]
        [[turns]]
        text = "391, which is seventeen times twenty-three, as the calculator said."
        "#,
    )
    .await;
    let home = home_for(
        &server,
        "name = \"a\"\ntools = [\"calculator\"]\n[budgets]\nmax_input_tokens = 60\n",
    );
    let out = cordon(
        home.path(),
        &[
            "run",
            "--agent",
            "agent.toml",
            "--model",
            "s:m",
            "What is 17 * 23?",
        ],
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(3),
        "the estimate crosses the budget: {}",
        text(&out)
    );
    assert!(text(&out).contains("max_input_tokens"), "{}", text(&out));
    assert!(
        text(&out).contains("← calculator") && text(&out).contains(" 391 ("),
        "the call went through whole: {}",
        text(&out)
    );
    let runs = common::json_lines(&cordon(home.path(), &["runs", "--json"]).await.stdout);
    let id = runs[0]["run_id"].as_str().unwrap().to_string();
    let shown = cordon(home.path(), &["show", &id]).await;
    let shown = String::from_utf8_lossy(&shown.stdout).into_owned();
    assert!(
        shown.contains("(estimated: the server reported none)"),
        "{shown}"
    );
    assert!(shown.contains("decoding notes (--raw)"), "{shown}");
    let raw = cordon(home.path(), &["show", "--raw", &id]).await;
    let raw = String::from_utf8_lossy(&raw.stdout).into_owned();
    assert!(
        raw.contains("note: the server sent the legacy function_call beside tool_calls"),
        "{raw}"
    );
    assert!(raw.contains("data: {"), "what the server sent: {raw}");
    let intent = common::json_lines(&cordon(home.path(), &["show", "--json", &id]).await.stdout)
        .into_iter()
        .find(|e| e["kind"] == "tool_call_intent")
        .unwrap();
    assert_eq!(intent["payload"]["tool"], "calculator");
    assert_eq!(
        intent["payload"]["arguments"],
        r#"{"expression":"17 * 23"}"#
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_giant_tool_name_does_not_make_giant_lines() {
    let name = "x".repeat(45_000);
    let server = server(&format!(
        "[[turns]]\ntool_calls = [{{ name = \"{name}\", arguments = {{}} }}]\n[[turns]]\ntext = \"sorry\"\n"
    ))
    .await;
    let home = home_for(&server, "name = \"a\"\ntools = [\"calculator\"]\n");
    let out = cordon(
        home.path(),
        &["run", "--agent", "agent.toml", "--model", "s:m", "go"],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    for line in String::from_utf8_lossy(&out.stderr).lines() {
        assert!(
            line.chars().count() < 400,
            "a {}-character line",
            line.len()
        );
    }
    let runs = common::json_lines(&cordon(home.path(), &["runs", "--json"]).await.stdout);
    let id = runs[0]["run_id"].as_str().unwrap().to_string();
    let shown = cordon(home.path(), &["show", &id]).await;
    for line in String::from_utf8_lossy(&shown.stdout).lines() {
        assert!(
            line.chars().count() < 400,
            "a {}-character line",
            line.len()
        );
    }
    let second = &server.requests()[1].body;
    let tool_message = second["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "tool")
        .unwrap();
    assert!(
        tool_message["content"].as_str().unwrap().len() < 500,
        "the tool's error does not echo the whole name back: {}",
        &tool_message["content"].as_str().unwrap()[..200]
    );
}
