//! `cordon resume`: continue a run from its log and its last checkpoint.

use super::run::{SnapshotCheckpointer, finish, sandbox_tools};
use crate::agent_file::{AgentFile, SANDBOX_TOOLS};
use crate::cli::SandboxArgs;
use crate::config::Config;
use crate::display::{Human, JsonLines};
use crate::exit::Failure;
use cordon_core::{EventPayload, RunState, RunStatus};
use cordon_harness::{RunObserver, Runner};
use cordon_model::ModelClient;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// What a resume changes: raised limits, new user input.
pub struct Changes {
    /// A new limit on model calls.
    pub max_turns: Option<u32>,
    /// `NAME=VALUE` budget settings.
    pub budgets: Vec<String>,
    /// User input to add before the next model call.
    pub input: Option<String>,
}

/// `cordon resume RUN`.
pub async fn resume(
    run: &str,
    changes: Changes,
    json: bool,
    sandbox_args: &SandboxArgs,
    command_timeout: u64,
    (store_path, config_path, snapshots): (Option<&Path>, Option<&Path>, Option<&str>),
) -> anyhow::Result<ExitCode> {
    let config = Config::load(config_path)?;
    let store = super::open_store(store_path).await?;
    let run_id = super::find_run(&store, run).await?;
    let events = store.events(&run_id).await?;
    let state = RunState::fold(&events)?;
    if state.status == RunStatus::Completed {
        return Err(Failure::bad_input(
            format!("run {run_id} has completed"),
            "there is nothing to resume; `cordon show` prints it",
        ));
    }
    let Some(EventPayload::RunStarted {
        agent: info,
        sandbox: recorded_sandbox,
        ..
    }) = events.first().map(|e| e.typed()).transpose()?
    else {
        return Err(Failure::bad_input(
            format!("run {run_id} has no run_started event"),
            "its log is incomplete; `cordon verify` checks it",
        ));
    };
    let model = config.resolve(&info.model).await?;

    let snapshots = crate::snapshots::Snapshots::open(snapshots)?;
    let snapshot_store = snapshots.local.clone();
    // The last checkpoint, fetched from a remote store if need be.
    let checkpoint = match &state.last_checkpoint {
        Some(id) => Some(snapshots.load(id).await?),
        None => None,
    };
    let needs_sandbox = info
        .tools
        .iter()
        .any(|t| SANDBOX_TOOLS.contains(&t.as_str()));
    let mut restored = None;
    let prepared = if needs_sandbox {
        let mut args = sandbox_args.clone();
        args.manifest = None;
        let host = recorded_sandbox
            .as_ref()
            .and_then(|s| s["host_workspace"].as_str())
            .map(PathBuf::from);
        match &checkpoint {
            // A run that stopped cleanly (a pause, an approval, a budget) left its workspace
            // as its last checkpoint recorded it: it goes on there.
            Some(snap)
                if sandbox_args.workspace.is_none()
                    && host
                        .as_ref()
                        .is_some_and(|h| snapshot_store.matches(h, &[], snap).unwrap_or(false)) =>
            {
                args.workspace = host;
                restored = Some(snap.clone());
            }
            Some(snap) => {
                // The workspace as it was at the last checkpoint, in a fresh directory.
                let snap = snap.clone();
                let dir = match &sandbox_args.workspace {
                    Some(w) => w.clone(),
                    None => {
                        let base = cordon_store::default_store_path()?;
                        base.parent()
                            .unwrap_or(Path::new("."))
                            .join("workspaces")
                            .join(format!("{run_id}-resumed-{}", events.len()))
                    }
                };
                snapshot_store.restore(&snap, &dir)?;
                if !json {
                    eprintln!(
                        "workspace restored from checkpoint {} into {}",
                        &snap.id[..16],
                        dir.display()
                    );
                }
                args.workspace = Some(dir);
                restored = Some(snap);
            }
            None => {
                if args.workspace.is_none() {
                    args.workspace = host;
                }
            }
        }
        Some(super::sandbox::create(&args).await?)
    } else {
        None
    };
    let checkpointer = prepared.as_ref().map(|p| {
        Arc::new(SnapshotCheckpointer {
            store: snapshots.clone(),
            dir: p.workspace.clone(),
            exclude: p.ephemeral.clone(),
            previous: std::sync::Mutex::new(restored.clone()),
        })
    });
    let host_workspace = prepared.as_ref().map(|p| p.workspace.display().to_string());
    let sandbox = prepared.map(|p| Arc::new(p.sandbox));
    let tools = sandbox
        .as_ref()
        .map(|sb| sandbox_tools(sb, command_timeout))
        .unwrap_or_default();

    // The agent as the run recorded it (its instructions already hold the workspace context).
    let file = AgentFile {
        name: info.name.clone(),
        model: Some(info.model.clone()),
        instructions: info.instructions.clone(),
        max_turns: Some(changes.max_turns.unwrap_or(info.max_turns)),
        tools: info.tools.clone(),
        model_settings: serde_json::from_value(info.settings.clone()).unwrap_or_default(),
        output: None,
        budgets: info
            .budgets
            .clone()
            .map(serde_json::from_value)
            .transpose()?
            .unwrap_or_default(),
        approvals: info
            .approvals
            .clone()
            .map(serde_json::from_value)
            .transpose()?
            .unwrap_or_default(),
    };
    let budget_changes = parse_budgets(&changes.budgets)?;
    let mut file = file;
    let mut recorded = serde_json::to_value(&file.budgets)?;
    for (k, v) in &budget_changes {
        recorded[k] = v.clone();
    }
    file.budgets = serde_json::from_value(recorded).map_err(|e| {
        Failure::bad_input(format!("--budget: {e}"), "give NAME=VALUE with a number")
    })?;
    let origin = format!("run {run_id}");
    let price = config.prices.get(&model.model_name).copied();
    let agent = file.into_agent(
        info.output_schema.clone(),
        &info.model,
        &model.model_name,
        &origin,
        &tools,
        price,
    )?;

    let observer: Arc<dyn RunObserver> = if json {
        Arc::new(JsonLines)
    } else {
        Arc::new(Human::default())
    };
    let client = Arc::new(ModelClient::new(model.provider)?);
    let mut runner = Runner::new(client, store)
        .observer(observer)
        .stop_flag(super::run::stop_on_ctrl_c());
    if let Some(c) = checkpointer {
        runner = runner.checkpointer(c);
    }
    if let Some(sb) = &sandbox {
        runner = runner.sandbox_info(super::run::sandbox_info(sb, host_workspace.as_deref()));
    }
    let mut raised = serde_json::Map::new();
    if let Some(n) = changes.max_turns {
        raised.insert("max_turns".into(), n.into());
    }
    for (k, v) in &budget_changes {
        raised.insert(k.clone(), v.clone());
    }
    let raised = (!raised.is_empty()).then_some(serde_json::Value::Object(raised));
    let out = runner
        .resume(
            &agent,
            &run_id,
            state.last_checkpoint.clone(),
            raised,
            changes.input.clone(),
        )
        .await?;
    Ok(finish(&out, json))
}

/// `NAME=VALUE` budget settings, checked against the budgets cordon knows.
fn parse_budgets(items: &[String]) -> anyhow::Result<Vec<(String, serde_json::Value)>> {
    const NAMES: [&str; 5] = [
        "max_tool_calls",
        "max_input_tokens",
        "max_output_tokens",
        "max_wall_time_secs",
        "max_cost_usd",
    ];
    items
        .iter()
        .map(|item| {
            let (name, value) = item.split_once('=').ok_or_else(|| {
                Failure::bad_input(
                    format!("--budget '{item}' is not NAME=VALUE"),
                    "for example --budget max_tool_calls=100",
                )
            })?;
            if !NAMES.contains(&name) {
                return Err(Failure::bad_input(
                    format!("--budget: unknown budget '{name}'"),
                    format!("budgets are: {}", NAMES.join(", ")),
                ));
            }
            let number: f64 = value.parse().map_err(|_| {
                Failure::bad_input(
                    format!("--budget {name}: '{value}' is not a number"),
                    "give a number",
                )
            })?;
            let v = if name == "max_cost_usd" {
                serde_json::json!(number)
            } else {
                serde_json::json!(number as u64)
            };
            Ok((name.to_string(), v))
        })
        .collect()
}
