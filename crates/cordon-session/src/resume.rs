//! Resuming a run from its log and its last checkpoint, in this process or another: the
//! workspace found as the checkpoint left it, or restored into a fresh directory, the
//! recorded sandbox rebuilt over it, then the same path a new run takes.

use crate::agent::AgentSpec;
use crate::session::{Plan, PreparedRun, Session, Start};
use crate::workspace::PreparedSandbox;
use crate::{ErrorKind, SessionError};
use cordon_core::{EventPayload, Progress, RunId, RunState, RunStatus, SandboxSpec};
use cordon_harness::{Resumption, RunObserver};
use cordon_store::snapshot::{Exclusions, Snapshot, SnapshotStore};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// The budgets a resume may raise.
pub const BUDGET_NAMES: [&str; 5] = [
    "max_tool_calls",
    "max_input_tokens",
    "max_output_tokens",
    "max_wall_time_secs",
    "max_cost_usd",
];

/// What a resume changes: raised limits, new user input, where and how it runs.
#[derive(Default)]
pub struct ResumeRequest {
    /// The run: its id, or a unique prefix of it.
    pub run: String,
    /// A new limit on model calls.
    pub max_turns: Option<u32>,
    /// Budgets raised, by name (see [`BUDGET_NAMES`] and [`parse_budget`]).
    pub budgets: Vec<(String, Value)>,
    /// User input to add before the next model call.
    pub input: Option<String>,
    /// A directory to go on in (restoring the last checkpoint there unless it already
    /// holds it).
    pub workspace: Option<PathBuf>,
    /// An isolation kind instead of the recorded one.
    pub isolation: Option<String>,
    /// A command timeout instead of the recorded one, in seconds.
    pub command_timeout_secs: Option<u64>,
    /// Who watches the run as it happens.
    pub observers: Vec<Arc<dyn RunObserver>>,
    /// Pauses the run at its next step boundary once set.
    pub stop: Option<Arc<AtomicBool>>,
    /// Another policy to go on under (recorded); by default the run's own.
    pub policy: Option<cordon_policy::Policy>,
    /// The tree of runs it is a sub-agent in.
    pub(crate) tree: Option<crate::session::Tree>,
}

impl ResumeRequest {
    /// Resumes `run` with nothing changed.
    pub fn new(run: impl Into<String>) -> Self {
        ResumeRequest {
            run: run.into(),
            ..ResumeRequest::default()
        }
    }
}

/// `NAME=VALUE`, checked against the budgets a resume may raise.
pub fn parse_budget(item: &str) -> Result<(String, Value), SessionError> {
    let (name, value) = item.split_once('=').ok_or_else(|| {
        SessionError::bad_input(
            format!("--budget '{item}' is not NAME=VALUE"),
            "for example --budget max_tool_calls=100",
        )
    })?;
    if !BUDGET_NAMES.contains(&name) {
        return Err(SessionError::bad_input(
            format!("--budget: unknown budget '{name}'"),
            format!("budgets are: {}", BUDGET_NAMES.join(", ")),
        ));
    }
    let number: f64 = value
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite() && *n >= 0.0)
        .ok_or_else(|| {
            SessionError::bad_input(
                format!("--budget {name}: '{value}' is not a non-negative number"),
                "give a number",
            )
        })?;
    let v = if name == "max_cost_usd" {
        serde_json::json!(number)
    } else {
        serde_json::json!(number as u64)
    };
    Ok((name.to_string(), v))
}

/// The directory a run last worked in: the last `run_resumed` that names one, else the one
/// `run_started` recorded.
pub fn last_workspace(events: &[cordon_core::Event]) -> Option<PathBuf> {
    events.iter().rev().find_map(|e| match e.kind.as_str() {
        "run_resumed" => e.payload["workspace"].as_str().map(PathBuf::from),
        "run_started" => e.payload["sandbox"]["host_workspace"]
            .as_str()
            .map(PathBuf::from),
        _ => None,
    })
}

/// The sandbox a run recorded; for runs recorded before specs were, what can be read back.
fn recorded_spec(sandbox: Option<&Value>) -> Result<SandboxSpec, SessionError> {
    let default = |tier: &str| SandboxSpec {
        tier: tier.to_string(),
        root: cordon_sandbox::local::INNER_WORKSPACE.into(),
        ..SandboxSpec::default()
    };
    let Some(sb) = sandbox else {
        return Ok(default("auto"));
    };
    match sb.get("spec") {
        Some(spec) => serde_json::from_value(spec.clone()).map_err(|e| {
            SessionError::new(
                ErrorKind::Damaged,
                format!("the run's recorded sandbox cannot be read: {e}"),
            )
            .caused_by(e)
        }),
        None => Ok(default(sb["tier"].as_str().unwrap_or("auto"))),
    }
}

/// Whether `dir` holds exactly what `snap` recorded (off the runtime's threads: it reads
/// the tree).
async fn holds(store: &SnapshotStore, dir: PathBuf, exclude: Exclusions, snap: Snapshot) -> bool {
    if !dir.is_dir() {
        return false;
    }
    let store = store.clone();
    tokio::task::spawn_blocking(move || store.matches(&dir, &exclude, &snap).unwrap_or(false))
        .await
        .unwrap_or(false)
}

/// Restores `snap` into `dir` (new or empty), all or nothing, off the runtime's threads;
/// returns what the restore noticed.
async fn restore(
    store: &SnapshotStore,
    snap: Snapshot,
    dir: PathBuf,
    progress: Arc<dyn Progress>,
) -> Result<Vec<String>, SessionError> {
    let (store, to) = (store.clone(), dir.clone());
    let report =
        tokio::task::spawn_blocking(move || store.restore_reporting(&snap, &to, progress.as_ref()))
            .await
            .map_err(|e| SessionError::new(ErrorKind::Failed, format!("the restore failed: {e}")))?
            .map_err(|e| {
                SessionError::bad_input(
                    format!(
                        "cannot restore the last checkpoint into {}: {e}",
                        dir.display()
                    ),
                    "give --workspace a new or empty directory",
                )
            })?;
    Ok(report.notes())
}

/// A new directory for a run restored after a crash.
fn fresh_workspace(base: &Path, run_id: &RunId, n: usize) -> PathBuf {
    (n..)
        .map(|i| base.join(format!("{run_id}-resumed-{i}")))
        .find(|dir| !dir.exists())
        .expect("an unused name exists")
}

impl Session {
    /// Prepares a stopped run to go on: after a crash, a pause, a budget (raise it), an
    /// approval. The workspace is where the last checkpoint left it, or the checkpoint is
    /// restored into a fresh directory; the recorded sandbox is rebuilt over it.
    pub async fn resume(&self, request: ResumeRequest) -> Result<PreparedRun, SessionError> {
        let run_id = self.store.resolve(&request.run).await?;
        // Said before a workspace is restored for nothing; the runner's claim decides.
        if let Some(pid) = self.store.owner(&run_id) {
            return Err(cordon_store::StoreError::Busy {
                run_id: run_id.to_string(),
                pid,
            }
            .into());
        }
        self.require_intact(&run_id).await?;
        let events = self.store.events(&run_id).await?;
        let state = RunState::fold(&events)?;
        if state.status == RunStatus::Completed {
            return Err(SessionError::bad_input(
                format!("run {run_id} has completed"),
                "there is nothing to resume; `cordon show` prints it",
            ));
        }
        // A sub-agent goes on with its tree, when its parent's call still waits for it.
        if request.tree.is_none()
            && let Some((parent, call)) = self.store.parent(&run_id).await?
        {
            let root = self.store.tree_root(&run_id).await?;
            let answered = RunState::fold(&self.store.events(&parent).await?)?
                .items
                .iter()
                .any(|i| matches!(i, cordon_core::Item::ToolResult(r) if r.call_id == call));
            return Err(if answered {
                SessionError::bad_input(
                    format!(
                        "run {run_id} is a sub-agent, and the call of run {parent} that started it ({call}) has its answer: it is not resumed"
                    ),
                    format!("`cordon show {parent}` shows what that run was told"),
                )
            } else {
                SessionError::bad_input(
                    format!(
                        "run {run_id} is a sub-agent of run {parent}: it goes on with its tree"
                    ),
                    format!("`cordon resume {root}` goes on with every unfinished run of the tree"),
                )
            });
        }
        if let Some(tripped) = &state.tripped {
            return Err(SessionError::bad_input(
                format!("a guardrail stopped run {run_id} ({tripped}); it is not resumed"),
                "start a new run; `cordon show` prints what was refused",
            ));
        }
        let Some(EventPayload::RunStarted {
            agent: info,
            sandbox: recorded_sandbox,
            ..
        }) = events.first().map(|e| e.typed()).transpose()?
        else {
            return Err(SessionError::new(
                ErrorKind::Damaged,
                format!("run {run_id} has no run_started event"),
            )
            .hint("its log is incomplete; `cordon verify` checks it"));
        };
        let mut agent = AgentSpec::recorded(&info)?;
        let policy_replaced = request.policy.is_some();
        agent.policy = match request.policy {
            Some(p) => Some(p),
            None => state
                .policy
                .as_ref()
                .map(|r| crate::policy::recorded(r, run_id.as_str()))
                .transpose()?,
        };
        // The last checkpoint, fetched from a remote store if need be.
        let checkpoint = match &state.last_checkpoint {
            Some(id) => match self.snapshots.load(id).await {
                Ok(s) => Some(s),
                Err(cordon_store::SnapshotError::NotFound(_)) => {
                    return Err(SessionError::bad_input(
                        format!(
                            "run {run_id} cannot go on: its last checkpoint, snapshot {}, is not in the snapshot store {}",
                            &id[..id.len().min(16)],
                            self.snapshots.shown()
                        ),
                        "it was deleted (`cordon snapshot delete --force`), or this is not the store the run used: give that one with --snapshots",
                    ));
                }
                Err(e) => return Err(e.into()),
            },
            None => None,
        };
        let needs_sandbox = agent.needs_sandbox(&self.tools).map_err(|e| {
            SessionError::bad_input(
                format!("run {run_id}: {e}"),
                "resume it with a session whose registry has the tools it was given",
            )
        })?;
        let mut notes = Vec::new();
        let mut restored_from = None;
        let mut egress = None;
        let sandbox: Option<PreparedSandbox> = if needs_sandbox {
            let mut spec = recorded_spec(recorded_sandbox.as_ref())?;
            if let Some(kind) = &request.isolation {
                spec.tier = kind.clone();
            }
            if let Some(t) = request.command_timeout_secs {
                spec.command_timeout_secs = Some(t);
            }
            let given = request
                .workspace
                .as_ref()
                .map(std::path::absolute)
                .transpose()?;
            if let Some(g) = &given
                && g.exists()
                && !g.is_dir()
            {
                return Err(SessionError::bad_input(
                    format!("the workspace {} is not a directory", g.display()),
                    "give --workspace a new or empty directory, or the one the run worked in",
                ));
            }
            let dir = match &checkpoint {
                Some(snap) => {
                    let candidate = given.clone().or_else(|| last_workspace(&events));
                    let exclude = crate::checkpoint::exclusions(&spec);
                    let as_left = match candidate.clone() {
                        Some(c) => holds(&self.snapshots.local, c, exclude, snap.clone()).await,
                        None => false,
                    };
                    match candidate {
                        // The workspace is as the checkpoint left it (a pause, an approval,
                        // a budget): the run goes on there.
                        Some(c) if as_left => c,
                        _ => {
                            let dir = given.unwrap_or_else(|| {
                                fresh_workspace(&self.workspaces, &run_id, events.len())
                            });
                            notes = restore(
                                &self.snapshots.local,
                                snap.clone(),
                                dir.clone(),
                                self.progress.clone(),
                            )
                            .await?;
                            restored_from = Some(snap.id.clone());
                            dir
                        }
                    }
                }
                None => given.or_else(|| last_workspace(&events)).ok_or_else(|| {
                    SessionError::bad_input(
                        format!("run {run_id} recorded no workspace and no checkpoint"),
                        "give the directory it worked in with --workspace",
                    )
                })?,
            };
            let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
            egress = crate::egress::RunEgress::start(
                agent.policy.as_ref(),
                &run_id,
                state.granted_hosts.clone(),
            )
            .await?;
            let rebuilt = self
                .rebuild(
                    &spec,
                    &dir,
                    crate::workspace::RunLimits {
                        egress: egress.as_ref().map(|e| e.endpoint()),
                        policy: agent.policy.as_ref(),
                    },
                )
                .await?;
            crate::egress::check_isolation(agent.policy.as_ref(), rebuilt.sandbox.as_ref())?;
            Some(rebuilt)
        } else {
            None
        };
        if let Some(n) = request.max_turns {
            agent.max_turns = Some(n);
        }
        let mut budgets = serde_json::to_value(&agent.budgets)
            .map_err(|e| SessionError::new(ErrorKind::Failed, format!("budgets: {e}")))?;
        for (k, v) in &request.budgets {
            budgets[k] = v.clone();
        }
        agent.budgets = serde_json::from_value(budgets).map_err(|e| {
            SessionError::bad_input(format!("--budget: {e}"), "give NAME=VALUE with a number")
        })?;
        let mut raised = serde_json::Map::new();
        if let Some(n) = request.max_turns {
            raised.insert("max_turns".into(), n.into());
        }
        for (k, v) in &request.budgets {
            raised.insert(k.clone(), v.clone());
        }
        let resumption = Resumption {
            from_checkpoint: state.last_checkpoint.clone(),
            raised: (!raised.is_empty()).then_some(Value::Object(raised)),
            input: request.input,
            workspace: sandbox.as_ref().map(|s| s.workspace.display().to_string()),
            restored: restored_from.is_some(),
            notes: notes.clone(),
            policy_replaced,
        };
        self.prepare(Plan {
            run_id: run_id.clone(),
            agent,
            origin: format!("run {run_id}"),
            model: info.model.clone(),
            sandbox,
            last_checkpoint: checkpoint,
            restored_from,
            notes,
            start: Start::Resume(resumption),
            observers: request.observers,
            stop: request.stop,
            egress,
            tree: request.tree,
        })
        .await
    }
}

/// A redactor for what is read of a run after the fact (its snapshots' file names and
/// contents, for a report or a bundle): the config's detectors, and the values the run's
/// `from_host` variables have on this host now (the run's own values were never recorded);
/// and the host variables it needed and did not find, whose values it cannot replace.
pub fn redactor_after_the_fact(
    events: &[cordon_core::Event],
    config: &crate::Config,
) -> (cordon_core::Redactor, Vec<String>) {
    let mut missing = Vec::new();
    let mut r = cordon_core::Redactor::new();
    // Checked when the config was loaded.
    let _ = config.redaction.apply(&mut r);
    let sandbox = events
        .iter()
        .find(|e| e.kind == "run_started")
        .and_then(|e| e.payload.get("sandbox"));
    if let Ok(spec) = recorded_spec(sandbox) {
        for var in &spec.env {
            let Some(host) = var.from_host.as_deref() else {
                continue;
            };
            match std::env::var(host) {
                Ok(value) => {
                    r.add(&format!("env {}", var.name), &value);
                }
                Err(_) => missing.push(host.to_string()),
            }
        }
    }
    (r, missing)
}
