//! `cordon approve`, `cordon reject` and `cordon pause`: a person's decisions on a run, from
//! any process; the session library records them.

use super::Paths;
use crate::render::{Limit, Style, call, clip, safe};
use cordon_core::state::Awaiting;
use cordon_core::{RunState, RunStatus};
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

/// Prints one waiting call on stderr as a person deciding on it needs to see it.
pub fn describe_waiting(call: &str, waiting: &Awaiting) {
    print_waiting(call, waiting, Style::stderr(), &mut std::io::stderr());
}

/// Writes one waiting call as a person deciding on it needs to see it: its id and tool,
/// the rules that asked, and what it would do (a command and where, a patch as a diff).
fn print_waiting(call: &str, waiting: &Awaiting, style: Style, out: &mut dyn std::io::Write) {
    let rules: Vec<String> = waiting.rules.iter().map(|r| describe_rule(r)).collect();
    let mut asked = if rules.is_empty() {
        String::new()
    } else {
        format!("  (asked by: {})", rules.join("; "))
    };
    if !waiting.approvers.is_empty() {
        asked.push_str(&format!(
            "  (only {} may approve)",
            clip(&waiting.approvers.join(", "), 120)
        ));
    }
    let _ = writeln!(
        out,
        "  {}  {}{asked}",
        clip(call, 64),
        clip(&waiting.tool, 64)
    );
    let _ = writeln!(
        out,
        "      {}",
        call::call_line(&waiting.tool, &waiting.arguments)
    );
    let details = call::call_details(&waiting.tool, &waiting.arguments, style, Limit::Clip);
    // A person deciding on a command needs to know where it runs, said or not.
    if waiting.tool == "exec_command" && !details.iter().any(|l| l.starts_with("in ")) {
        let _ = writeln!(out, "      in the workspace root");
    }
    for line in details {
        let _ = writeln!(out, "      {line}");
    }
}

/// Approves one waiting call, or all of them.
pub async fn approve(
    paths: &Paths<'_>,
    run: &str,
    call: Option<&str>,
    always: bool,
    as_name: Option<String>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let session = super::session(paths).await?;
    let by = decider(as_name);
    let (run_id, approved) = session.approve(run, call, always, &by).await?;
    if json {
        for a in approved {
            println!(
                "{}",
                serde_json::json!({
                    "run_id": run_id, "call_id": a.call_id, "tool": a.waiting.tool,
                    "arguments_hash": a.waiting.arguments_hash,
                    "decision": "approved", "by": by, "always_rules": a.always_rules,
                })
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    for a in approved {
        let scope = if !always {
            String::new()
        } else if a.always_rules.is_empty() {
            " (this call only: the request did not record which rule it matched)".into()
        } else {
            format!(
                ", and from now on in this run {}",
                a.always_rules
                    .iter()
                    .map(|r| describe_rule(r))
                    .collect::<Vec<_>>()
                    .join(" and ")
            )
        };
        println!(
            "approved {} ({}){scope}: {}",
            clip(&a.call_id, 64),
            clip(&a.waiting.tool, 64),
            call::call_line(&a.waiting.tool, &a.waiting.arguments)
        );
    }
    let target = session.resume_target(&run_id).await;
    eprintln!("continue with: cordon resume {target}");
    Ok(ExitCode::SUCCESS)
}

/// Lets a run's sandbox reach a host for the rest of the run.
pub async fn grant_host(
    paths: &Paths<'_>,
    run: &str,
    host: &str,
    as_name: Option<String>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let session = super::session(paths).await?;
    let by = decider(as_name);
    let (run_id, host) = session.grant_host(run, host, &by).await?;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "run_id": run_id, "host": host, "decision": "granted", "by": by,
            })
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "allowed {} for the rest of run {run_id}, by {}",
        safe(&host),
        clip(&by, 64)
    );
    let target = session.resume_target(&run_id).await;
    eprintln!("continue with: cordon resume {target}");
    Ok(ExitCode::SUCCESS)
}

/// Rejects a waiting call; the model is told.
pub async fn reject(
    paths: &Paths<'_>,
    run: &str,
    call: &str,
    message: Option<String>,
    as_name: Option<String>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let session = super::session(paths).await?;
    let (by, message) = (decider(as_name), message.unwrap_or_default());
    let (run_id, waiting) = session.reject(run, call, &message, &by).await?;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "run_id": run_id, "call_id": call, "tool": waiting.tool,
                "arguments_hash": waiting.arguments_hash, "decision": "rejected", "by": by,
                "message": message,
            })
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "rejected {} ({}): {}",
        clip(call, 64),
        clip(&waiting.tool, 64),
        call::call_line(&waiting.tool, &waiting.arguments)
    );
    let target = session.resume_target(&run_id).await;
    eprintln!("continue with: cordon resume {target}");
    Ok(ExitCode::SUCCESS)
}

/// The most waiting runs `cordon approvals` reads.
const MAX_RUNS: usize = 10_000;

/// `cordon approvals`: every call waiting for a person, in every run of the store.
pub async fn pending(store: &Store, json: bool) -> anyhow::Result<ExitCode> {
    let runs = store
        .list_runs(Some(RunStatus::AwaitingApproval), MAX_RUNS)
        .await
        .map_err(super::store_failure)?;
    let mut count = 0;
    for run in runs {
        let events = match store.events(&run.run_id).await {
            Ok(events) => events,
            Err(e) => {
                eprintln!("warning: run {}: {e}", run.run_id);
                continue;
            }
        };
        let Ok(state) = RunState::fold(&events) else {
            eprintln!(
                "warning: run {} cannot be read back; `cordon verify` it",
                run.run_id
            );
            continue;
        };
        if !json && (!state.awaiting.is_empty() || !state.waiting_hosts.is_empty()) {
            println!(
                "run {} · {} · {}",
                clip(run.run_id.as_str(), 64),
                safe(&run.started)
                    .chars()
                    .take(19)
                    .collect::<String>()
                    .replace('T', " "),
                clip(&run.task, 80)
            );
        }
        for (call, waiting) in &state.awaiting {
            count += 1;
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "run_id": run.run_id, "call_id": call, "tool": waiting.tool,
                        "arguments": waiting.arguments,
                        "arguments_parsed": serde_json::from_str::<serde_json::Value>(&waiting.arguments).ok(),
                        "arguments_hash": waiting.arguments_hash,
                        "rules": waiting.rules, "approvers": waiting.approvers,
                        "task": run.task,
                    })
                );
            } else {
                print_waiting(call, waiting, Style::stdout(), &mut std::io::stdout());
            }
        }
        // Hosts the sandbox asked to reach, which the policy leaves to a person.
        for host in &state.waiting_hosts {
            count += 1;
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "run_id": run.run_id, "host": host, "task": run.task,
                    })
                );
            } else {
                println!(
                    "  host {}  (the sandbox asked to reach it: cordon approve {} --host {})",
                    clip(host, 200),
                    run.run_id,
                    clip(host, 200)
                );
            }
        }
    }
    if !json {
        if count == 0 {
            eprintln!("nothing waits for approval");
        } else {
            eprintln!(
                "decide with `cordon approve RUN CALL` (or `--host HOST`) or `cordon reject RUN CALL --message ...`, then `cordon resume RUN`"
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Asks a running run to pause after its current step, whichever process runs it.
pub async fn pause(paths: &Paths<'_>, run: &str, json: bool) -> anyhow::Result<ExitCode> {
    let session = super::session(paths).await?;
    let run_id = session.request_pause(run).await?;
    if json {
        println!(
            "{}",
            serde_json::json!({ "run_id": run_id, "pause_requested": true })
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!("asked run {run_id} to pause after its current step");
    let target = session.resume_target(&run_id).await;
    eprintln!("once it has: cordon resume {target}");
    Ok(ExitCode::SUCCESS)
}
