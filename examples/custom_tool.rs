//! A custom Rust tool registered beside the built-ins: `word_count` joins the registry, the
//! agent is given it and the calculator by name, and the model calls both.
//!
//! `cargo run -p cordon-examples --example custom_tool`

use cordon_examples::{Result, check, scripted_model, session_builder};
use cordon_session::{AgentSpec, RunRequest};
use cordon_tools::{FunctionTool, Registry, ToolError};
use schemars::JsonSchema;
use serde::Deserialize;
use std::sync::Arc;

/// `word_count`'s arguments: its JSON schema, which the model is shown, comes from here.
#[derive(Deserialize, JsonSchema)]
struct WordCount {
    /// The text whose words to count.
    text: String,
}

fn main() -> std::process::ExitCode {
    cordon_examples::main(run)
}

async fn run() -> Result<()> {
    let scratch = tempfile::tempdir()?;
    let mut tools = Registry::builtin();
    tools.add(Arc::new(FunctionTool::new(
        "word_count",
        "Counts the words in a text.",
        |a: WordCount| async move { Ok::<_, ToolError>(a.text.split_whitespace().count().to_string()) },
    )))?;
    let session = session_builder(scratch.path())
        .await?
        .tools(tools)
        .build()?;

    let model = scripted_model(
        scratch.path(),
        r#"
[[turns]]
tool_calls = [
  { name = "word_count", arguments = { text = "the quick brown fox" } },
  { name = "calculator", arguments = { expression = "4 * 2" } },
]

[[turns]]
text = "Four words; twice that is 8."
"#,
    )?;
    let agent = AgentSpec::new("counter", "Count words, then do the arithmetic.")
        .tools(["word_count", "calculator"]);
    let outcome = session
        .new_run(RunRequest::new(agent, "How many words, doubled?").model(model))
        .await?
        .run()
        .await?;
    println!(
        "{:?}: {}",
        outcome.status,
        outcome.output.clone().unwrap_or_default()
    );

    let events = session.store().events(&outcome.run_id).await?;
    let results: Vec<(String, String)> = events
        .iter()
        .filter(|e| e.kind == "tool_result")
        .map(|e| {
            (
                e.payload["tool"].as_str().unwrap_or_default().to_string(),
                e.payload["output"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    println!("tool results: {results:?}");
    check(
        results
            == [
                ("word_count".into(), "4".into()),
                ("calculator".into(), "8".into()),
            ],
        "the custom tool and the built-in did not both answer",
    )?;
    let offered = &events[0].payload["agent"]["tools"];
    check(
        offered == &serde_json::json!(["word_count", "calculator"]),
        format!("the run recorded other tools: {offered}"),
    )?;
    Ok(())
}
