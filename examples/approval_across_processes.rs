//! A run that pauses for approval, approved and resumed from a second process.
//!
//! The first process starts a run whose agent must ask before any `touch`; the run stops,
//! waiting. A second process (this program again, with `approve`) opens the same store,
//! approves the call as a named person and resumes the run to its end. The first process
//! then reads the finished run back.
//!
//! `cargo run -p cordon-examples --example approval_across_processes`

use cordon_core::{RunState, RunStatus};
use cordon_examples::{Result, check, scripted_model, session};
use cordon_session::{AgentSpec, ResumeRequest, RunRequest, SandboxOptions};
use std::path::Path;

fn main() -> std::process::ExitCode {
    cordon_examples::main(|| async {
        let args: Vec<String> = std::env::args().skip(1).collect();
        match args.as_slice() {
            [cmd, dir, run_id] if cmd == "approve" => {
                approve_and_resume(Path::new(dir), run_id).await
            }
            _ => first_process().await,
        }
    })
}

async fn first_process() -> Result<()> {
    let scratch = tempfile::tempdir()?;
    let workspace = scratch.path().join("workspace");
    std::fs::create_dir_all(&workspace)?;
    // `turn_from = "conversation"`: the resumed run's model server (in the second process)
    // answers from where the conversation is, not from its first turn.
    let model = scripted_model(
        scratch.path(),
        r#"
turn_from = "conversation"

[[turns]]
tool_calls = [{ name = "exec_command", arguments = { cmd = "touch approved.txt" } }]

[[turns]]
text = "Created approved.txt."
"#,
    )?;
    let mut agent = AgentSpec::new("toucher", "Create the file asked for.").tools(["exec_command"]);
    agent.approvals.commands.push("touch *".into());

    let session = session(scratch.path()).await?;
    let outcome = session
        .new_run(
            RunRequest::new(agent, "Create approved.txt.")
                .model(model)
                .sandbox(SandboxOptions::in_dir(&workspace)),
        )
        .await?
        .run()
        .await?;
    println!(
        "first process: run {} is {:?}",
        outcome.run_id, outcome.status
    );
    check(
        outcome.status == RunStatus::AwaitingApproval,
        format!(
            "the run should wait for approval, and is {:?}",
            outcome.status
        ),
    )?;
    check(
        !workspace.join("approved.txt").exists(),
        "the command ran before it was approved",
    )?;

    // Another process decides: here a child of this one, through the same store.
    let status = std::process::Command::new(std::env::current_exe()?)
        .arg("approve")
        .arg(scratch.path())
        .arg(outcome.run_id.to_string())
        .status()?;
    check(status.success(), "the approving process failed")?;

    let state = RunState::fold(&session.store().events(&outcome.run_id).await?)?;
    println!(
        "first process: the run is now {:?}: {}",
        state.status,
        state.final_output.clone().unwrap_or_default()
    );
    check(
        state.status == RunStatus::Completed,
        "the resumed run did not complete",
    )?;
    check(
        workspace.join("approved.txt").exists(),
        "the approved command did not run",
    )?;
    Ok(())
}

async fn approve_and_resume(dir: &Path, run_id: &str) -> Result<()> {
    let session = session(dir).await?;
    let (_, waiting) = session.waiting(run_id).await?;
    for (call, w) in &waiting {
        println!("second process: {call} waits: {} {}", w.tool, w.arguments);
    }
    let (_, approved) = session
        .approve(run_id, None, false, "example approver")
        .await?;
    println!(
        "second process: approved {} call(s); resuming",
        approved.len()
    );
    let outcome = session
        .resume(ResumeRequest::new(run_id))
        .await?
        .run()
        .await?;
    println!("second process: the run is {:?}", outcome.status);
    check(
        outcome.status == RunStatus::Completed,
        "the resumed run did not complete",
    )
}
