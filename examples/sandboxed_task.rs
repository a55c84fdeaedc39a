//! A sandboxed task with a manifest: the workspace is built from a manifest (a directory of
//! the host's and an environment variable), the agent runs a command in the sandbox, and the
//! run's log records the manifest's receipts and what isolation the sandbox kept.
//!
//! `cargo run -p cordon-examples --example sandboxed_task`

use cordon_examples::{Result, check, scripted_model, session};
use cordon_session::{AgentSpec, RunRequest, SandboxOptions, load_manifest};

fn main() -> std::process::ExitCode {
    cordon_examples::main(run)
}

async fn run() -> Result<()> {
    let scratch = tempfile::tempdir()?;
    let project = scratch.path().join("project");
    std::fs::create_dir_all(project.join("data"))?;
    std::fs::write(project.join("data/hello.txt"), "hello from the host\n")?;
    std::fs::write(
        project.join("cordon.toml"),
        r#"root = "/project"

[entries.data]
type = "local_dir"
source = "data"

[env]
GREETING = "hi from the manifest"
"#,
    )?;
    let manifest = load_manifest(&project.join("cordon.toml"))?;
    // The scripted server stands in for a model: it asks for one command, then answers.
    let model = scripted_model(
        scratch.path(),
        r#"
[[turns]]
tool_calls = [{ name = "exec_command", arguments = { cmd = "cat data/hello.txt; echo $GREETING; pwd" } }]

[[turns]]
text = "data/hello.txt says hello from the host."
"#,
    )?;

    let session = session(scratch.path()).await?;
    let agent = AgentSpec::new("reader", "Read the data and report.").tools(["exec_command"]);
    let run = session
        .new_run(
            RunRequest::new(agent, "What does data/hello.txt say?")
                .model(model)
                .sandbox(SandboxOptions::from_manifest(manifest)),
        )
        .await?;
    let workspace = run.workspace().map(|w| w.dir.clone()).unwrap_or_default();
    println!("run {} works in {}", run.run_id(), workspace.display());
    let outcome = run.run().await?;
    println!(
        "{:?}: {}",
        outcome.status,
        outcome.output.clone().unwrap_or_default()
    );

    check(
        outcome.status == cordon_core::RunStatus::Completed,
        format!("the run did not complete: {:?}", outcome.error),
    )?;
    let events = session.store().events(&outcome.run_id).await?;
    let result = events
        .iter()
        .find(|e| e.kind == "tool_result")
        .ok_or("no tool result recorded")?;
    let output = result.payload["output"].as_str().unwrap_or_default();
    println!("the command printed:\n{output}");
    check(
        output.contains("hello from the host") && output.contains("hi from the manifest"),
        "the command did not see the manifest's file and variable",
    )?;
    check(
        output.contains("/project"),
        "the workspace is not at the manifest's root",
    )?;
    check(
        events.iter().any(|e| e.kind == "workspace_materialized"),
        "the manifest's receipts were not recorded",
    )?;
    let isolation = &events[0].payload["sandbox"]["isolation"];
    println!(
        "isolation: {} ({}), network {}",
        isolation["kind"], isolation["strength"], isolation["network"]
    );
    check(
        isolation["provider"] == "local",
        "the sandbox's isolation was not recorded",
    )?;
    Ok(())
}
