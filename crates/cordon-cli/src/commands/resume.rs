//! `cordon resume`: continue a run from its log and its last checkpoint.

use super::run::{SnapshotCheckpointer, finish, sandbox_tools};
use crate::agent_file::{AgentFile, SANDBOX_TOOLS};
use crate::cli::TierArg;
use crate::config::Config;
use crate::display::{Human, JsonLines};
use crate::exit::Failure;
use cordon_core::{EventPayload, RunState, RunStatus, SandboxSpec};
use cordon_harness::{RunObserver, Runner};
use cordon_model::ModelClient;
use cordon_store::snapshot::{Snapshot, SnapshotStore};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// What a resume changes: raised limits, new user input, where and how it runs.
pub struct Changes {
    /// A new limit on model calls.
    pub max_turns: Option<u32>,
    /// `NAME=VALUE` budget settings.
    pub budgets: Vec<String>,
    /// User input to add before the next model call.
    pub input: Option<String>,
    /// A directory to restore the last checkpoint into and go on in.
    pub workspace: Option<PathBuf>,
    /// A tier instead of the recorded one.
    pub tier: Option<TierArg>,
    /// A command timeout instead of the recorded one.
    pub command_timeout: Option<u64>,
}

/// Where cordon keeps things, as given on the command line.
pub struct Paths<'a> {
    /// The run store.
    pub store: Option<&'a Path>,
    /// The config file.
    pub config: Option<&'a Path>,
    /// The snapshot store.
    pub snapshots: Option<&'a str>,
}

/// The directory a run last worked in: the last `run_resumed` that names one, else the one
/// `run_started` recorded.
fn last_workspace(events: &[cordon_core::Event]) -> Option<PathBuf> {
    events.iter().rev().find_map(|e| match e.kind.as_str() {
        "run_resumed" => e.payload["workspace"].as_str().map(PathBuf::from),
        "run_started" => e.payload["sandbox"]["host_workspace"]
            .as_str()
            .map(PathBuf::from),
        _ => None,
    })
}

/// The sandbox a run recorded; for runs recorded before specs were, what can be read back.
fn recorded_spec(sandbox: Option<&serde_json::Value>) -> anyhow::Result<SandboxSpec> {
    let Some(sb) = sandbox else {
        return Ok(SandboxSpec {
            tier: "auto".into(),
            root: cordon_sandbox::local::INNER_WORKSPACE.into(),
            ..SandboxSpec::default()
        });
    };
    if let Some(spec) = sb.get("spec") {
        return serde_json::from_value(spec.clone()).map_err(|e| {
            anyhow::Error::new(Failure {
                code: crate::exit::TAMPERED,
                message: format!("the run's recorded sandbox cannot be read: {e}"),
                hint: None,
            })
        });
    }
    Ok(SandboxSpec {
        tier: sb["tier"].as_str().unwrap_or("auto").to_string(),
        root: cordon_sandbox::local::INNER_WORKSPACE.to_string(),
        ..SandboxSpec::default()
    })
}

/// Whether `dir` holds exactly what `snap` recorded (off the runtime's threads: it reads
/// the tree).
async fn holds(store: &SnapshotStore, dir: &Path, exclude: &[String], snap: &Snapshot) -> bool {
    if !dir.is_dir() {
        return false;
    }
    let (store, dir, exclude, snap) = (
        store.clone(),
        dir.to_path_buf(),
        exclude.to_vec(),
        snap.clone(),
    );
    tokio::task::spawn_blocking(move || store.matches(&dir, &exclude, &snap).unwrap_or(false))
        .await
        .unwrap_or(false)
}

/// Restores `snap` into `dir` (new or empty), all or nothing, off the runtime's threads;
/// returns what the restore noticed.
async fn restore(
    store: &SnapshotStore,
    snap: &Snapshot,
    dir: &Path,
) -> anyhow::Result<Vec<String>> {
    let (store, snap, to) = (store.clone(), snap.clone(), dir.to_path_buf());
    let report = tokio::task::spawn_blocking(move || store.restore(&snap, &to))
        .await?
        .map_err(|e| {
            Failure::bad_input(
                format!(
                    "cannot restore the last checkpoint into {}: {e}",
                    dir.display()
                ),
                "give --workspace a new or empty directory",
            )
        })?;
    Ok(report.notes())
}

/// The sandbox a resumed run works in, and what it was built from.
struct Resumed {
    sandbox: cordon_sandbox::LocalSandbox,
    dir: PathBuf,
    spec: SandboxSpec,
    secrets: Vec<(String, String)>,
}

/// `cordon resume RUN`.
pub async fn resume(
    run: &str,
    changes: Changes,
    json: bool,
    paths: Paths<'_>,
) -> anyhow::Result<ExitCode> {
    let config = Config::load(paths.config)?;
    let store = super::open_store(paths.store).await?;
    let run_id = super::find_run(&store, run).await?;
    super::require_intact(&store, &run_id).await?;
    let events = store.events(&run_id).await.map_err(super::store_failure)?;
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

    let snapshots = crate::snapshots::Snapshots::open(paths.snapshots)?;
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
    let mut resumption = cordon_harness::Resumption {
        from_checkpoint: state.last_checkpoint.clone(),
        ..Default::default()
    };
    let mut resumed = None;
    if needs_sandbox {
        let mut spec = recorded_spec(recorded_sandbox.as_ref())?;
        if let Some(t) = changes.tier {
            spec.tier = super::sandbox::tier_name(t).to_string();
        }
        if let Some(t) = changes.command_timeout {
            spec.command_timeout_secs = Some(t);
        }
        let given = changes
            .workspace
            .as_ref()
            .map(std::path::absolute)
            .transpose()?;
        let (dir, restored) = match &checkpoint {
            Some(snap) => {
                let candidate = given.clone().or_else(|| last_workspace(&events));
                match candidate {
                    // The workspace is as the checkpoint left it (a pause, an approval, a
                    // budget): the run goes on there.
                    Some(c) if holds(&snapshot_store, &c, &spec.ephemeral, snap).await => {
                        (c, false)
                    }
                    _ => {
                        let dir = match given {
                            Some(g) => g,
                            None => fresh_workspace(&run_id, events.len())?,
                        };
                        resumption.notes = restore(&snapshot_store, snap, &dir).await?;
                        (dir, true)
                    }
                }
            }
            None => match given.or_else(|| last_workspace(&events)) {
                Some(dir) => (dir, false),
                None => {
                    return Err(Failure::bad_input(
                        format!("run {run_id} recorded no workspace and no checkpoint"),
                        "give the directory it worked in with --workspace",
                    ));
                }
            },
        };
        let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
        if !json {
            match (restored, &checkpoint) {
                (true, Some(snap)) => eprintln!(
                    "workspace restored from checkpoint {} into {}",
                    &snap.id[..16.min(snap.id.len())],
                    dir.display()
                ),
                _ => eprintln!("workspace: {}", dir.display()),
            }
            for note in &resumption.notes {
                eprintln!("note: {note}");
            }
        }
        let protected = super::protected_paths(paths.store, paths.snapshots);
        let (sandbox, secrets) = super::sandbox::build(&spec, &dir, &protected).await?;
        resumption.workspace = Some(dir.display().to_string());
        resumption.restored = restored;
        resumed = Some(Resumed {
            sandbox,
            dir,
            spec,
            secrets,
        });
    }
    let redactor = Arc::new(super::redactor(
        &model.provider,
        resumed.as_ref().map_or(&[][..], |r| &r.secrets),
    ));
    let checkpointer = resumed.as_ref().map(|r| {
        Arc::new(SnapshotCheckpointer {
            store: snapshots.clone(),
            dir: r.dir.clone(),
            exclude: r.spec.ephemeral.clone(),
            previous: std::sync::Mutex::new(checkpoint.clone()),
        })
    });
    let place = resumed
        .as_ref()
        .map(|r| (r.dir.display().to_string(), r.spec.clone()));
    let sandbox = resumed.map(|r| Arc::new(r.sandbox));
    let command_timeout = place
        .as_ref()
        .and_then(|(_, spec)| spec.command_timeout_secs)
        .unwrap_or(DEFAULT_COMMAND_TIMEOUT);
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
        Arc::new(Human::new(&redactor))
    };
    let client = Arc::new(ModelClient::new(model.provider)?);
    let mut runner = Runner::new(client, store)
        .observer(observer)
        .redactor(redactor.clone())
        .stop_flag(super::run::stop_on_ctrl_c());
    if let Some(c) = checkpointer {
        runner = runner.checkpointer(c);
    }
    if let (Some(sb), Some((dir, spec))) = (&sandbox, &place) {
        runner = runner.sandbox_info(super::run::sandbox_info(sb, dir, spec));
    }
    let mut raised = serde_json::Map::new();
    if let Some(n) = changes.max_turns {
        raised.insert("max_turns".into(), n.into());
    }
    for (k, v) in &budget_changes {
        raised.insert(k.clone(), v.clone());
    }
    resumption.raised = (!raised.is_empty()).then_some(serde_json::Value::Object(raised));
    resumption.input = changes.input.clone();
    let out = runner.resume(&agent, &run_id, resumption).await?;
    Ok(finish(&out, json))
}

/// The default for runs that recorded no command timeout.
const DEFAULT_COMMAND_TIMEOUT: u64 = 1800;

/// A new directory under cordon's state directory for a run restored after a crash.
fn fresh_workspace(run_id: &cordon_core::RunId, n: usize) -> anyhow::Result<PathBuf> {
    let base = cordon_store::default_store_path()?
        .parent()
        .unwrap_or(Path::new("."))
        .join("workspaces");
    let mut i = n;
    loop {
        let dir = base.join(format!("{run_id}-resumed-{i}"));
        if !dir.exists() {
            return Ok(dir);
        }
        i += 1;
    }
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
