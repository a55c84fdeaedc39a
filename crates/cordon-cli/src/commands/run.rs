//! `cordon run`: run an agent on a task.

use crate::agent_file::AgentFile;
use crate::cli::RunArgs;
use crate::config::{Config, FALLBACK_MODEL};
use crate::display::{Human, JsonLines};
use crate::exit;
use cordon_core::RunStatus;
use cordon_harness::{RunObserver, Runner};
use cordon_model::ModelClient;
use cordon_sandbox::Sandbox as _;
use cordon_tools::ShellTools;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

pub async fn run(
    args: RunArgs,
    store: Option<&Path>,
    config: Option<&Path>,
    snapshots: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let config = Config::load(config)?;
    let store_path = store;
    let store = super::open_store(store_path).await?;
    let (file, schema, origin) = match &args.agent {
        Some(p) => {
            let (f, s) = AgentFile::load(p)?;
            (f, s, p.display().to_string())
        }
        None => (
            AgentFile::default_agent(),
            None,
            "the default agent".to_string(),
        ),
    };
    let spec = args
        .model
        .clone()
        .or_else(|| file.model.clone())
        .or_else(|| config.default_model.clone())
        .unwrap_or_else(|| FALLBACK_MODEL.to_string());
    let spec = crate::config::recorded_spec(&spec);
    let model = config.resolve(&spec).await?;
    let prepared = if file.needs_sandbox() || args.sandbox.manifest.is_some() {
        let mut p = super::sandbox::create(
            &args.sandbox,
            &super::protected_paths(store_path, snapshots),
        )
        .await?;
        p.spec.command_timeout_secs = Some(args.command_timeout);
        Some(p)
    } else {
        None
    };
    let materialized = prepared.as_ref().and_then(|p| p.materialized.clone());
    let redactor = Arc::new(super::redactor(
        &model.provider,
        prepared.as_ref().map_or(&[][..], |p| &p.secrets),
    ));
    let checkpoints = match &prepared {
        Some(p) => Some(Arc::new(SnapshotCheckpointer {
            store: crate::snapshots::Snapshots::open(snapshots)?,
            dir: p.workspace.clone(),
            exclude: p.spec.ephemeral.clone(),
            previous: std::sync::Mutex::new(None),
        })),
        None => None,
    };
    let recorded = prepared
        .as_ref()
        .map(|p| (p.workspace.display().to_string(), p.spec.clone()));
    let sandbox = prepared.map(|p| Arc::new(p.sandbox));
    let tools = sandbox
        .as_ref()
        .map(|sb| sandbox_tools(sb, args.command_timeout))
        .unwrap_or_default();
    let mut agent = file.into_agent(
        schema,
        &spec,
        &model.model_name,
        &origin,
        &tools,
        config.prices.get(&model.model_name).copied(),
    )?;
    if let Some(n) = args.max_turns {
        agent = agent.max_turns(n);
    }
    if let Some(sb) = &sandbox {
        let context = cordon_manifest::workspace_context(sb.as_ref()).await;
        agent.instructions = format!("{}\n\n{context}", agent.instructions);
    }
    let observer: Arc<dyn RunObserver> = if args.json {
        Arc::new(JsonLines)
    } else {
        Arc::new(Human::new(&redactor))
    };
    let client = Arc::new(ModelClient::new(model.provider)?);
    let mut runner = Runner::new(client, store)
        .observer(observer)
        .redactor(redactor.clone())
        .stop_flag(stop_on_ctrl_c());
    if let Some((digest, receipts)) = materialized {
        runner = runner.workspace_receipts(digest, serde_json::to_value(receipts)?);
    }
    if let Some(c) = checkpoints {
        runner = runner.checkpointer(c);
    }
    if let (Some(sb), Some((host_workspace, spec))) = (&sandbox, &recorded) {
        runner = runner.sandbox_info(sandbox_info(sb, host_workspace, spec));
    }
    let out = runner.run(&agent, &args.task).await?;
    Ok(finish(&out, args.json))
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
        "run {} {} · {} turns · {} tool calls · {} tokens",
        out.run_id,
        out.status.as_str(),
        s.turns,
        s.tool_calls,
        s.usage.total_tokens()
    );
    if !json {
        eprintln!("{summary}");
    }
    match out.status {
        RunStatus::Completed => ExitCode::SUCCESS,
        RunStatus::BudgetExceeded => {
            eprintln!("error: {}", out.error.clone().unwrap_or_default());
            eprintln!(
                "  hint: `cordon resume {} --max-turns N` continues with a higher limit (or raise it in the agent file)",
                out.run_id
            );
            ExitCode::from(exit::BUDGET_EXCEEDED)
        }
        RunStatus::Paused => {
            eprintln!(
                "paused after the current step; `cordon resume {}` continues it",
                out.run_id
            );
            ExitCode::from(exit::INTERRUPTED)
        }
        RunStatus::AwaitingApproval => {
            eprintln!("waiting for approval:");
            for (call, waiting) in &s.awaiting {
                let rules: Vec<String> = waiting
                    .rules
                    .iter()
                    .map(|r| cordon_harness::approval::describe_rule(r))
                    .collect();
                eprintln!(
                    "  {call}  {}  (asked by: {})",
                    waiting.tool,
                    rules.join("; ")
                );
            }
            eprintln!(
                "  hint: `cordon approve {0} [CALL]` or `cordon reject {0} CALL --message ...`, then `cordon resume {0}`",
                out.run_id
            );
            ExitCode::from(exit::AWAITING_APPROVAL)
        }
        RunStatus::Failed | RunStatus::Running => {
            eprintln!("error: {}", out.error.clone().unwrap_or_default());
            if let Some(h) = out.hint {
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

/// Checkpoints a run's workspace into the snapshot store, each incremental to the last.
pub struct SnapshotCheckpointer {
    pub store: crate::snapshots::Snapshots,
    pub dir: std::path::PathBuf,
    pub exclude: Vec<String>,
    pub previous: std::sync::Mutex<Option<cordon_store::Snapshot>>,
}

/// What a run records about its sandbox: tier, paths, what it enforces, what it cannot.
pub fn sandbox_info(
    sb: &cordon_sandbox::LocalSandbox,
    host_workspace: &str,
    spec: &cordon_core::SandboxSpec,
) -> serde_json::Value {
    serde_json::json!({
        "tier": sb.tier().as_str(),
        "workspace": sb.workspace(),
        "host_workspace": host_workspace,
        "confinement": sb.confinement(),
        "limits": sb.tier().limits(),
        "spec": spec,
    })
}

/// The tools over a run's sandbox.
pub fn sandbox_tools(
    sb: &Arc<cordon_sandbox::LocalSandbox>,
    command_timeout: u64,
) -> Vec<Arc<dyn cordon_tools::Tool>> {
    let mut tools = ShellTools::new(sb.clone(), Duration::from_secs(command_timeout)).tools();
    tools.push(cordon_tools::patch::ApplyPatch::new(sb.clone()));
    tools.push(cordon_tools::image::view_image(sb.clone()));
    tools
}

impl cordon_harness::Checkpointer for SnapshotCheckpointer {
    fn checkpoint(
        &self,
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<
                    Output = Result<
                        cordon_harness::CheckpointInfo,
                        cordon_harness::CheckpointError,
                    >,
                > + Send
                + '_,
        >,
    > {
        Box::pin(async move {
            let previous = self.previous.lock().expect("checkpoint lock").clone();
            let (store, dir, exclude) = (
                self.store.local.clone(),
                self.dir.clone(),
                self.exclude.clone(),
            );
            // Reading the workspace is blocking work: off the runtime's threads.
            let (snap, stats) =
                tokio::task::spawn_blocking(move || store.take(&dir, &exclude, previous.as_ref()))
                    .await??;
            // A checkpoint counts once it is where resume will look for it.
            self.store.push(&snap).await?;
            let info = cordon_harness::CheckpointInfo {
                snapshot_id: snap.id.clone(),
                files_read: stats.files_read,
                bytes_read: stats.bytes_read,
            };
            *self.previous.lock().expect("checkpoint lock") = Some(snap);
            Ok(info)
        })
    }
}
