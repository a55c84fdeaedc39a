//! `cordon run` and `cordon resume`: thin front ends over the session library, which
//! prepares both the same way; here they are rendered.

use super::Paths;
use crate::cli::RunArgs;
use crate::display::{Human, JsonLines};
use crate::exit;
use cordon_core::RunStatus;
use cordon_harness::RunObserver;
use cordon_session::{AgentSpec, PreparedRun, ResumeRequest, RunRequest, SandboxOptions};
use std::process::ExitCode;
use std::sync::Arc;

/// `cordon run TASK`.
pub async fn run(args: RunArgs, paths: &Paths<'_>) -> anyhow::Result<ExitCode> {
    let session = super::session(paths).await?;
    let (agent, origin) = match &args.agent {
        Some(p) => (AgentSpec::load(p)?, p.display().to_string()),
        None => (
            AgentSpec::default_agent(session.tools()),
            "the default agent".to_string(),
        ),
    };
    let needs_sandbox = agent.needs_sandbox(session.tools()).map_err(|e| {
        crate::exit::Failure::bad_input(format!("{origin}: {e}"), "name tools cordon has")
    })?;
    let sandbox = match (needs_sandbox, &args.sandbox.manifest) {
        (false, None) => None,
        _ => Some(sandbox_options(&args)?),
    };
    let mut request = RunRequest::new(agent, task_text(&args)?);
    request.origin = origin;
    request.model = args.model.clone();
    request.sandbox = sandbox;
    request.max_turns = args.max_turns;
    request.continues = args.continues.clone();
    request.conversation = args.conversation.clone();
    request.policy = args
        .policy
        .as_deref()
        .map(|p| super::policy::resolve(p, paths.config))
        .transpose()?;
    request.stop = Some(stop_on_ctrl_c());
    request.observers.push(observer(args.json));
    let prepared = session.new_run(request).await?;
    go(prepared, args.json, session.store()).await
}

/// `cordon resume RUN`.
pub async fn resume(
    mut request: ResumeRequest,
    json: bool,
    paths: &Paths<'_>,
) -> anyhow::Result<ExitCode> {
    let session = super::session(paths).await?;
    request.stop = Some(stop_on_ctrl_c());
    request.observers.push(observer(json));
    let prepared = session.resume(request).await?;
    go(prepared, json, session.store()).await
}

/// The most task text cordon reads from a file or stdin.
const MAX_TASK_BYTES: u64 = 16 * 1024 * 1024;

/// The task: as given, from stdin (`-`), or from `--task-file`.
fn task_text(args: &RunArgs) -> anyhow::Result<String> {
    use std::io::Read;
    let (from, mut reader): (String, Box<dyn Read>) = match (&args.task, &args.task_file) {
        (Some(t), _) if t != "-" => return non_empty(t.clone(), "the task"),
        (_, Some(path)) => (
            path.display().to_string(),
            Box::new(std::fs::File::open(path).map_err(|e| {
                exit::Failure::bad_input(
                    format!("cannot read the task file {}: {e}", path.display()),
                    "give a readable file with --task-file",
                )
            })?),
        ),
        _ => ("stdin".to_string(), Box::new(std::io::stdin())),
    };
    let mut bytes = Vec::new();
    reader
        .by_ref()
        .take(MAX_TASK_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| {
            exit::Failure::bad_input(
                format!("cannot read the task from {from}: {e}"),
                "give the task as text, on stdin or in a file",
            )
        })?;
    if bytes.len() as u64 > MAX_TASK_BYTES {
        return Err(exit::Failure::bad_input(
            format!(
                "the task from {from} is longer than {} MiB",
                MAX_TASK_BYTES / 1024 / 1024
            ),
            "put large material in the workspace and tell the agent where it is",
        ));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        exit::Failure::bad_input(
            format!(
                "the task from {from} is not UTF-8 text (bad byte at {})",
                e.utf8_error().valid_up_to()
            ),
            "give the task as text",
        )
    })?;
    non_empty(text, &format!("the task from {from}"))
}

fn non_empty(text: String, what: &str) -> anyhow::Result<String> {
    if text.trim().is_empty() {
        return Err(exit::Failure::bad_input(
            format!("{what} is empty"),
            "say what the agent should do",
        ));
    }
    Ok(text)
}

/// The sandbox `cordon run`'s arguments describe (by default over the current directory).
fn sandbox_options(args: &RunArgs) -> anyhow::Result<SandboxOptions> {
    let manifest = args
        .sandbox
        .manifest
        .as_deref()
        .map(cordon_session::load_manifest)
        .transpose()?;
    let workspace = match (&args.sandbox.workspace, &manifest) {
        (None, None) => Some(std::env::current_dir()?),
        (w, _) => w.clone(),
    };
    if args.sandbox.sandbox == crate::cli::TierArg::Unconfined {
        eprintln!(
            "warning: --sandbox unconfined: commands run with all of this user's access to files, network and processes"
        );
    }
    Ok(SandboxOptions {
        manifest,
        workspace,
        isolation: super::sandbox::tier_name(args.sandbox.sandbox).to_string(),
        read_only: args.sandbox.read_only,
        command_timeout_secs: args.command_timeout,
    })
}

/// How the run is shown: text for people, JSON Lines for programs.
fn observer(json: bool) -> Arc<dyn RunObserver> {
    if json {
        Arc::new(JsonLines)
    } else {
        // Secrets are replaced in events before anyone sees them; streamed text is
        // redacted by the runner's redactor too, as it passes.
        Arc::new(Human::default())
    }
}

/// Says where the run works (on stderr, so even with --json), drives it here, and renders
/// how it ended.
async fn go(
    prepared: PreparedRun,
    json: bool,
    store: &cordon_store::Store,
) -> anyhow::Result<ExitCode> {
    // Checked before the run, so a wrong variable is said before any work is done.
    let otlp = cordon_evidence::otlp::from_env().map_err(|e| {
        exit::Failure::bad_input(e, "fix or unset the OTEL_EXPORTER_OTLP_* variable")
    })?;
    let run_id = prepared.run_id().clone();
    let from_seq = match &otlp {
        Some(_) => match store.events(&run_id).await {
            Ok(events) => cordon_evidence::otlp::resume_point(&events),
            Err(_) => 0,
        },
        None => 0,
    };
    if let Some(w) = prepared.workspace() {
        match &w.restored_from {
            Some(id) => eprintln!(
                "workspace restored from checkpoint {} into {}",
                &id[..16.min(id.len())],
                w.dir.display()
            ),
            None => eprintln!("workspace: {}", w.dir.display()),
        }
        for note in &w.notes {
            eprintln!("note: {note}");
        }
    }
    let outcome = prepared.run().await?;
    if let Some(settings) = otlp {
        send_spans(store, &settings, &outcome, from_seq).await;
    }
    Ok(finish(&outcome, json))
}

/// Sends the spans this process's part of the run finished to the OTLP collector; a
/// collector that cannot take them is reported, never a reason to fail the run.
async fn send_spans(
    store: &cordon_store::Store,
    settings: &cordon_evidence::otlp::Settings,
    outcome: &cordon_harness::RunOutcome,
    from_seq: u64,
) {
    use cordon_evidence::otlp;
    let Ok(events) = store.events(&outcome.run_id).await else {
        return;
    };
    let ended = matches!(
        outcome.status,
        RunStatus::Completed | RunStatus::Failed | RunStatus::BudgetExceeded
    );
    let spans = cordon_evidence::trace::spans_with(&events, settings.content);
    let chosen = otlp::finished_since(&spans, from_seq, ended);
    match otlp::send(settings, &events, &chosen).await {
        Ok(n) => eprintln!(
            "trace: {} sent to {}",
            crate::render::plural(n as u64, "span", "spans"),
            settings.endpoint
        ),
        Err(e) => eprintln!(
            "warning: {e}\n  hint: `cordon trace {} --otlp` sends the run's spans again",
            outcome.run_id
        ),
    }
}

/// The `cordon resume` flag that raises the budget a run ran out of (to twice its limit).
fn raise_flag(exceeded: Option<&(String, f64)>) -> String {
    match exceeded {
        Some((name, limit)) if name == "max_turns" => {
            format!("--max-turns {}", (*limit as u64).max(1) * 2)
        }
        Some((name, limit)) if name == "max_cost_usd" => {
            format!(
                "--budget max_cost_usd={}",
                crate::render::number(limit * 2.0)
            )
        }
        Some((name, limit)) => format!("--budget {name}={}", (*limit as u64).max(1) * 2),
        None => "--budget NAME=VALUE".into(),
    }
}

/// A flag set by the first Ctrl-C (the runner pauses at its next step boundary); a second
/// Ctrl-C exits at once.
pub fn stop_on_ctrl_c() -> Arc<std::sync::atomic::AtomicBool> {
    let flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let set = flag.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            set.store(true, std::sync::atomic::Ordering::SeqCst);
            eprintln!("\ncordon: pausing after the current step (Ctrl-C again to abort)…");
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!(
                    "cordon: aborted; the run is recorded up to here and `cordon resume` can continue it"
                );
                std::process::exit(exit::INTERRUPTED.into());
            }
        }
    });
    flag
}

/// Prints how a run ended (unless `json`) and gives its exit code.
pub fn finish(out: &cordon_harness::RunOutcome, json: bool) -> ExitCode {
    let s = &out.state;
    let summary = format!(
        "run {} {} · {} · {} · {} tokens",
        out.run_id,
        out.status.as_str(),
        crate::render::plural(s.turns as u64, "turn", "turns"),
        crate::render::plural(s.tool_calls as u64, "tool call", "tool calls"),
        s.usage.total_tokens()
    );
    if !json {
        eprintln!("{summary}");
    }
    match out.status {
        RunStatus::Completed => ExitCode::SUCCESS,
        RunStatus::BudgetExceeded => {
            eprintln!(
                "error: {}",
                crate::render::safe_lines(out.error.as_deref().unwrap_or_default())
            );
            eprintln!(
                "  hint: `cordon resume {} {}` continues with a higher limit (or raise it in the agent file)",
                out.run_id,
                raise_flag(s.exceeded.as_ref())
            );
            ExitCode::from(exit::BUDGET_EXCEEDED)
        }
        RunStatus::Paused => {
            match &out.error {
                // A call that could not finish paused it (a sub-agent paused or waits).
                Some(why) => eprintln!("paused: {}", crate::render::safe_lines(why)),
                None => eprintln!(
                    "paused after the current step; `cordon resume {}` continues it",
                    out.run_id
                ),
            }
            ExitCode::from(exit::INTERRUPTED)
        }
        RunStatus::AwaitingApproval => {
            eprintln!("waiting for approval:");
            for (call, waiting) in &s.awaiting {
                super::approve::describe_waiting(call, waiting);
            }
            for host in &s.waiting_hosts {
                eprintln!(
                    "  the sandbox asked to reach {}, which the policy leaves to a person: cordon approve {} --host {}",
                    crate::render::clip(host, 200),
                    out.run_id,
                    crate::render::clip(host, 200)
                );
            }
            let as_named = if s.awaiting.values().any(|w| !w.approvers.is_empty()) {
                " --as NAME"
            } else {
                ""
            };
            if let (true, Some(why)) = (s.awaiting.is_empty(), &s.waiting_on) {
                // A sub-agent's call waits, not one of this run's.
                eprintln!("  {}", crate::render::safe_lines(why));
            } else if s.awaiting.is_empty() {
                eprintln!("  then `cordon resume {}`", out.run_id);
            } else {
                eprintln!(
                    "  hint: `cordon approve {0} CALL{as_named}` (or every call: `cordon approve {0}{as_named}`) or `cordon reject {0} CALL --message ...`, then `cordon resume {0}`",
                    out.run_id
                );
            }
            ExitCode::from(exit::AWAITING_APPROVAL)
        }
        RunStatus::Failed if s.tripped.is_some() => {
            eprintln!(
                "stopped by a guardrail: {}",
                crate::render::safe_lines(out.error.as_deref().unwrap_or_default())
            );
            eprintln!("  (the run is recorded: `cordon show {}`)", out.run_id);
            ExitCode::from(exit::GUARDRAIL)
        }
        RunStatus::Failed | RunStatus::Running | RunStatus::Interrupted => {
            eprintln!(
                "error: {}",
                crate::render::safe_lines(out.error.as_deref().unwrap_or_default())
            );
            if let Some(h) = &out.hint {
                eprintln!("  hint: {h}");
            }
            eprintln!(
                "  (the run is recorded: `cordon show {0}`; `cordon resume {0}` continues it)",
                out.run_id
            );
            ExitCode::from(exit::RUN_FAILED)
        }
    }
}
