//! `cordon approve` and `cordon reject`: a person's decision on a waiting tool call.

use super::find_run;
use crate::exit::Failure;
use cordon_core::state::Awaiting;
use cordon_core::{EventPayload, RunState};
use cordon_harness::approval::describe_rule;
use cordon_store::Store;
use std::process::ExitCode;

/// Who is deciding: `--as`, else this OS user.
fn decider(as_name: Option<String>) -> String {
    as_name.unwrap_or_else(|| {
        std::env::var("USER")
            .ok()
            .filter(|u| !u.is_empty())
            .or_else(|| {
                nix::unistd::User::from_uid(nix::unistd::getuid())
                    .ok()
                    .flatten()
                    .map(|u| u.name)
            })
            .unwrap_or_else(|| format!("uid {}", nix::unistd::getuid()))
    })
}

async fn waiting(store: &Store, run: &str) -> anyhow::Result<(cordon_core::RunId, RunState)> {
    let run_id = find_run(store, run).await?;
    super::require_intact(store, &run_id).await?;
    let events = store.events(&run_id).await.map_err(super::store_failure)?;
    let state = RunState::fold(&events)?;
    if state.awaiting.is_empty() {
        return Err(Failure::bad_input(
            format!("run {run_id} is not waiting for any approval"),
            "`cordon runs --status awaiting_approval` lists the runs that are",
        ));
    }
    Ok((run_id, state))
}

/// The error for a call the run is not waiting on, naming those it is.
fn not_waiting_on(run_id: &cordon_core::RunId, call: &str, state: &RunState) -> anyhow::Error {
    Failure::bad_input(
        format!("run {run_id} is not waiting on a call '{call}'"),
        format!(
            "it waits on: {}",
            state
                .awaiting
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )
}

/// Approves one waiting call, or all of them.
pub async fn approve(
    store: &Store,
    run: &str,
    call: Option<&str>,
    always: bool,
    as_name: Option<String>,
) -> anyhow::Result<ExitCode> {
    let (run_id, state) = waiting(store, run).await?;
    let targets: Vec<(String, Awaiting)> = match call {
        Some(c) => match state.awaiting.get(c) {
            Some(v) => vec![(c.to_string(), v.clone())],
            None => {
                return Err(not_waiting_on(&run_id, c, &state));
            }
        },
        None => state
            .awaiting
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    };
    let by = decider(as_name);
    let mut log = store
        .open_run(&run_id)
        .await
        .map_err(super::store_failure)?;
    for (call_id, waiting) in targets {
        // An "always" covers the rules this call matched, and nothing wider.
        let always_rules = if always {
            waiting.rules.clone()
        } else {
            Vec::new()
        };
        log.append(&EventPayload::ApprovalGranted {
            call_id: call_id.clone(),
            arguments_hash: waiting.arguments_hash,
            by: by.clone(),
            always,
            always_rules: always_rules.clone(),
        })
        .await
        .map_err(super::store_failure)?;
        let scope = if !always {
            String::new()
        } else if always_rules.is_empty() {
            " (this call only: the request did not record which rule it matched)".into()
        } else {
            format!(
                ", and from now on in this run {}",
                always_rules
                    .iter()
                    .map(|r| describe_rule(r))
                    .collect::<Vec<_>>()
                    .join(" and ")
            )
        };
        println!("approved {call_id} ({}){scope}", waiting.tool);
    }
    eprintln!("continue with: cordon resume {run_id}");
    Ok(ExitCode::SUCCESS)
}

/// Rejects a waiting call; the model is told.
pub async fn reject(
    store: &Store,
    run: &str,
    call: &str,
    message: Option<String>,
    as_name: Option<String>,
) -> anyhow::Result<ExitCode> {
    let (run_id, state) = waiting(store, run).await?;
    if !state.awaiting.contains_key(call) {
        return Err(not_waiting_on(&run_id, call, &state));
    }
    let mut log = store
        .open_run(&run_id)
        .await
        .map_err(super::store_failure)?;
    log.append(&EventPayload::ApprovalRejected {
        call_id: call.to_string(),
        by: decider(as_name),
        message: message.unwrap_or_default(),
    })
    .await
    .map_err(super::store_failure)?;
    println!("rejected {call}");
    eprintln!("continue with: cordon resume {run_id}");
    Ok(ExitCode::SUCCESS)
}
