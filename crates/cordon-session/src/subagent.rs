//! Agents as tools: a call starts a sub-agent, a run of its own linked to the call
//! (`spawned_by`), and answers with the sub-agent's final output.
//!
//! A call finds its sub-agent by the call's id, so calling again (a resume of the parent
//! runs an unfinished call again) continues the same run: a finished one gives its recorded
//! answer, an unfinished one is resumed, and only a call with none starts one. A sub-agent
//! that pauses (Ctrl-C reaches the whole tree) or waits for a person leaves the call
//! unanswered ([`ToolError::Suspended`]), so the parent pauses too. Budgets are shared
//! through the tree's [`Ledger`].

use crate::agent::AgentSpec;
use crate::session::{RunRequest, Session, Tree};
use crate::team::{AgentTool, WorkspaceMode};
use crate::workspace::SandboxOptions;
use crate::{ResumeRequest, SessionError};
use cordon_core::{RunId, RunState, RunStatus, SandboxSpec, ToolSpec};
use cordon_harness::{Budgets, Ledger, RunOutcome};
use cordon_store::Snapshot;
use cordon_tools::{Effects, Tool, ToolContext, ToolError, ToolFuture, ToolOutput};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

/// The biggest patch a sub-agent's answer carries; a bigger one is described instead.
const MAX_PATCH: usize = 256 * 1024;

/// What the sub-agents of one run share with it.
pub(crate) struct Parent {
    /// The run whose calls start them.
    pub run_id: RunId,
    /// Its tree's first run (whose pause pauses every run of the tree).
    pub root: RunId,
    /// Its model, for sub-agents that name none.
    pub model: String,
    /// Its policy: the sub-agents are under it too.
    pub policy: Option<cordon_policy::Policy>,
    /// Its budgets, counted over the whole tree.
    pub budgets: Budgets,
    /// Its approval rules: the sub-agents' calls wait for a person as its own do.
    pub approvals: cordon_harness::ApprovalRules,
    /// What the tree has spent.
    pub ledger: Arc<Ledger>,
    /// Its stop flag (Ctrl-C), which the sub-agents share.
    pub stop: Arc<AtomicBool>,
    /// How many sub-agents work at once.
    pub limit: Arc<tokio::sync::Semaphore>,
    /// Its workspace and sandbox, when it has one.
    pub workspace: Option<(PathBuf, SandboxSpec)>,
    /// Its last checkpoint, which a copy starts from.
    pub checkpoint: Arc<Mutex<Option<Snapshot>>>,
}

/// An agent offered as a tool.
pub(crate) struct SubagentTool {
    pub decl: AgentTool,
    pub session: Session,
    pub parent: Arc<Parent>,
    pub effects: Effects,
}

impl SubagentTool {
    /// The tool for `decl`: a sub-agent in the parent's workspace that can change it may act
    /// beyond what a checkpoint restores (it is not run again on resume); the others are.
    pub fn new(decl: AgentTool, session: Session, parent: Arc<Parent>) -> Self {
        let writes = session
            .tools()
            .needs_sandbox(&decl.agent.tools)
            .unwrap_or(true);
        let effects = match decl.workspace {
            WorkspaceMode::Shared if writes => Effects::External,
            _ => Effects::Workspace,
        };
        SubagentTool {
            decl,
            session,
            parent,
            effects,
        }
    }

    /// Starts the sub-agent for this call, or goes on with the one it started before.
    async fn run(&self, call_id: &str, task: String) -> Result<(RunId, RunOutcome), SessionError> {
        let store = self.session.store();
        let existing = store
            .children(&self.parent.run_id)
            .await?
            .into_iter()
            .find(|(_, c)| c == call_id)
            .map(|(id, _)| id);
        if let Some(id) = existing {
            let state = RunState::fold(&store.events(&id).await?)?;
            // One stopped by a budget goes on when the tree's budget was raised.
            let ended = matches!(state.status, RunStatus::Completed | RunStatus::Failed);
            if ended {
                return Ok((id.clone(), outcome_of(id, state)));
            }
            let mut request = ResumeRequest::new(id.as_str());
            request.stop = Some(self.parent.stop.clone());
            // The tree's budgets, when they were raised since it started.
            let recorded: Budgets = state
                .agent
                .as_ref()
                .and_then(|a| a.budgets.clone())
                .and_then(|b| serde_json::from_value(b).ok())
                .unwrap_or_default();
            if recorded != self.parent.budgets {
                request.budgets = budget_values(&self.parent.budgets);
            }
            if self.decl.workspace == WorkspaceMode::Shared {
                request.workspace = self.parent.workspace.as_ref().map(|(d, _)| d.clone());
            }
            request.tree = Some(self.tree(None));
            let outcome = drive(resume(&self.session, request).await?).await?;
            return Ok((id, outcome));
        }
        let mut agent = AgentSpec::recorded(&self.decl.agent)?;
        agent.budgets = self.parent.budgets.clone();
        agent.approvals = self.parent.approvals.clone();
        let model = agent
            .model
            .clone()
            .unwrap_or_else(|| self.parent.model.clone());
        let mut request = RunRequest::new(agent, task).model(model);
        request.origin = format!("the agent tool '{}'", self.decl.name);
        request.stop = Some(self.parent.stop.clone());
        request.policy = self.parent.policy.clone();
        self.sandbox(call_id, &mut request).await?;
        request.tree = Some(self.tree(Some(call_id)));
        let prepared = new_run(&self.session, request).await?;
        let id = prepared.run_id().clone();
        Ok((id, drive(prepared).await?))
    }

    /// What links a sub-agent's run to its tree.
    fn tree(&self, call_id: Option<&str>) -> Tree {
        Tree {
            ledger: self.parent.ledger.clone(),
            root: self.parent.root.clone(),
            spawned: call_id.map(|c| cordon_core::EventPayload::SpawnedBy {
                parent: self.parent.run_id.to_string(),
                call_id: c.to_string(),
                tool: self.decl.name.clone(),
                workspace: self.decl.workspace.as_str().into(),
            }),
            checkpoints: self.decl.workspace != WorkspaceMode::Shared,
        }
    }

    /// Where a new sub-agent works: a sandbox made as the parent's was (its environment,
    /// grants, read-only entries, tier), over the parent's workspace or a copy of it; or one
    /// built from its own manifest.
    async fn sandbox(&self, call_id: &str, request: &mut RunRequest) -> Result<(), SessionError> {
        let like_parent = |dir: PathBuf| {
            self.parent.workspace.as_ref().map(|(_, spec)| {
                let mut spec = spec.clone();
                // The parent's outputs are the parent's to produce.
                spec.outputs.clear();
                (spec, dir)
            })
        };
        match self.decl.workspace {
            WorkspaceMode::Shared => {
                request.rebuilt = self
                    .parent
                    .workspace
                    .as_ref()
                    .and_then(|(dir, _)| like_parent(dir.clone()));
            }
            WorkspaceMode::Manifest => {
                let path = self.decl.manifest.as_ref().ok_or_else(|| {
                    SessionError::bad_input(
                        format!("the agent tool '{}' names no manifest", self.decl.name),
                        "give it `manifest` in the agent file",
                    )
                })?;
                let mut o = SandboxOptions::from_manifest(crate::load_manifest(path)?);
                if let Some((_, spec)) = &self.parent.workspace {
                    o.isolation = spec.tier.clone();
                }
                request.sandbox = Some(o);
            }
            WorkspaceMode::Copy => {
                let snap = self
                    .parent
                    .checkpoint
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone()
                    .ok_or_else(|| {
                        SessionError::bad_input(
                            format!(
                                "the agent tool '{}' works on a copy of the workspace, and the run has no checkpoint to copy",
                                self.decl.name
                            ),
                            "a copy needs a run with a sandbox (its checkpoints are the copies' source)",
                        )
                    })?;
                let clean: String = call_id
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                    .take(64)
                    .collect();
                let dir = (0..)
                    .map(|i| {
                        self.session.workspaces_dir().join(format!(
                            "{}-{}-{clean}-{i}",
                            self.parent.run_id, self.decl.name
                        ))
                    })
                    .find(|d| !d.exists())
                    .expect("an unused name exists");
                let store = self.session.snapshots.local.clone();
                let to = dir.clone();
                tokio::task::spawn_blocking(move || store.restore(&snap, &to))
                    .await
                    .map_err(|e| SessionError::new(crate::ErrorKind::Failed, e.to_string()))?
                    .map_err(|e| {
                        SessionError::new(
                            crate::ErrorKind::Failed,
                            format!("cannot copy the workspace for the sub-agent: {e}"),
                        )
                    })?;
                let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
                request.rebuilt = like_parent(dir);
            }
        }
        Ok(())
    }

    /// What the sub-agent changed in its copy, as a patch: from its first checkpoint (the
    /// copy as it started) to its last.
    async fn patch(&self, run: &RunId) -> Result<Option<String>, SessionError> {
        let events = self.session.store().events(run).await?;
        let checkpoints: Vec<String> = events
            .iter()
            .filter(|e| e.kind == "checkpoint")
            .filter_map(|e| e.payload["snapshot_id"].as_str().map(str::to_string))
            .collect();
        let (Some(first), Some(last)) = (checkpoints.first(), checkpoints.last()) else {
            return Ok(None);
        };
        if first == last {
            return Ok(None);
        }
        let before = self.session.snapshots.load(first).await?;
        let after = self.session.snapshots.load(last).await?;
        let (others, kept_out) = not_files(&before, &after);
        // Only the files whose content changed are read (a copy of a big workspace changes
        // a few).
        let hashes = |s: &Snapshot| -> BTreeMap<String, String> {
            s.entries
                .iter()
                .filter_map(|e| Some((e.path.clone(), e.hash.clone()?)))
                .collect()
        };
        let (old, new) = (hashes(&before), hashes(&after));
        let changed: Vec<String> = old
            .keys()
            .chain(new.keys().filter(|p| !old.contains_key(*p)))
            .filter(|p| old.get(*p) != new.get(*p) && !kept_out.contains(*p))
            .cloned()
            .collect();
        let store = self.session.snapshots.local.clone();
        let (patch, left_out) = tokio::task::spawn_blocking(move || {
            let files = |hashes: &BTreeMap<String, String>| {
                let mut files = BTreeMap::new();
                for path in &changed {
                    if let Some(hash) = hashes.get(path) {
                        let content = store.read_content(hash).map_err(|e| e.to_string())?;
                        files.insert(path.clone(), content);
                    }
                }
                Ok::<_, String>(files)
            };
            let (patch, mut left_out) = cordon_tools::patch::between(&files(&old)?, &files(&new)?);
            left_out.extend(others);
            left_out.sort();
            Ok::<_, String>((patch, left_out))
        })
        .await
        .map_err(|e| SessionError::new(crate::ErrorKind::Failed, e.to_string()))?
        .map_err(|e| {
            SessionError::new(
                crate::ErrorKind::Failed,
                format!("cannot read the sub-agent's checkpoints: {e}"),
            )
        })?;
        let Some(patch) = patch else {
            if left_out.is_empty() {
                return Ok(None);
            }
            return Ok(Some(format!(
                "(no patch: the format cannot carry what it changed: {}; its workspace's last checkpoint is snapshot {last})",
                left_out.join(", ")
            )));
        };
        let mut text = if patch.len() > MAX_PATCH {
            format!(
                "(its changes make a patch of {} bytes, more than {} KiB; its workspace's last checkpoint is snapshot {last})",
                patch.len(),
                MAX_PATCH / 1024
            )
        } else {
            patch
        };
        if !left_out.is_empty() {
            text.push_str(&format!(
                "\n(not in the patch: {}; its workspace's last checkpoint is snapshot {last})",
                left_out.join(", ")
            ));
        }
        Ok(Some(text))
    }
}

/// What changed between two snapshots that a patch cannot carry, each as `path (why)`:
/// links, a path whose kind changed (a link or a directory where a file was, or the
/// reverse, and what is under it), files whose mode changed (or new ones that are
/// executable); and the paths the patch must leave out for it.
fn not_files(
    before: &Snapshot,
    after: &Snapshot,
) -> (Vec<String>, std::collections::BTreeSet<String>) {
    use cordon_store::snapshot::Kind;
    let index = |s: &Snapshot| -> BTreeMap<String, cordon_store::snapshot::Entry> {
        s.entries
            .iter()
            .map(|e| (e.path.clone(), e.clone()))
            .collect()
    };
    let (old, new) = (index(before), index(after));
    let mut out = Vec::new();
    let mut kept_out = std::collections::BTreeSet::new();
    // A path whose kind changed, or one under it, is left out of the patch.
    let kind =
        |m: &BTreeMap<String, cordon_store::snapshot::Entry>, p: &str| m.get(p).map(|e| e.kind);
    let changed_kind = |path: &str| {
        std::iter::successors(Some(path), |p| p.rsplit_once('/').map(|(parent, _)| parent))
            .find(|p| {
                let (a, b) = (kind(&old, p), kind(&new, p));
                a.is_some() && b.is_some() && a != b
            })
            .map(str::to_string)
    };
    for path in old
        .keys()
        .chain(new.keys().filter(|p| !old.contains_key(*p)))
    {
        if let Some(at) = changed_kind(path) {
            kept_out.insert(path.clone());
            if at == *path {
                out.push(format!(
                    "{path} (it is now a {})",
                    match kind(&new, path) {
                        Some(Kind::File) => "file",
                        Some(Kind::Dir) => "directory",
                        _ => "link",
                    }
                ));
            }
            continue;
        }
        let (a, b) = (old.get(path), new.get(path));
        let link =
            |e: Option<&cordon_store::snapshot::Entry>| e.is_some_and(|e| e.kind == Kind::Symlink);
        if (link(a) || link(b))
            && a.map(|e| (&e.kind, &e.target)) != b.map(|e| (&e.kind, &e.target))
        {
            out.push(format!("{path} (a link)"));
            continue;
        }
        let exec = |e: &cordon_store::snapshot::Entry| e.mode & 0o111 != 0;
        match (a, b) {
            (Some(a), Some(b))
                if a.kind == Kind::File && b.kind == Kind::File && exec(a) != exec(b) =>
            {
                out.push(format!("{path} (its mode changed to {:o})", b.mode & 0o777))
            }
            (None, Some(b)) if b.kind == Kind::File && exec(b) => {
                out.push(format!("{path} (executable, mode {:o})", b.mode & 0o777))
            }
            _ => {}
        }
    }
    (out, kept_out)
}

/// The budgets as `NAME=VALUE` pairs a resume sets.
fn budget_values(b: &Budgets) -> Vec<(String, serde_json::Value)> {
    match serde_json::to_value(b) {
        Ok(serde_json::Value::Object(m)) => m.into_iter().collect(),
        _ => Vec::new(),
    }
}

/// A finished run's outcome, from its state.
fn outcome_of(run_id: RunId, state: RunState) -> RunOutcome {
    let structured = state
        .agent
        .as_ref()
        .and_then(|a| a.output_schema.as_ref())
        .and(state.final_output.as_deref())
        .and_then(|o| serde_json::from_str(o.trim()).ok());
    RunOutcome {
        run_id,
        status: state.status,
        output: state.final_output.clone(),
        structured,
        error: state.ended_by.clone(),
        hint: None,
        state,
    }
}

impl Tool for SubagentTool {
    fn spec(&self) -> ToolSpec {
        let mut description = if self.decl.description.trim().is_empty() {
            format!(
                "Gives the agent '{}' a task; it works on it to the end, on its own, and answers.",
                self.decl.agent.name
            )
        } else {
            self.decl.description.trim().to_string()
        };
        match self.decl.workspace {
            WorkspaceMode::Shared => {}
            WorkspaceMode::Copy => description.push_str(
                " It works on a copy of your workspace as it was at your last step; its changes do not reach your workspace",
            ),
            WorkspaceMode::Manifest => {
                description.push_str(" It works in a workspace of its own")
            }
        }
        if self.decl.patch {
            description
                .push_str(", and its answer ends with them as a patch you can give to apply_patch");
        }
        if self.decl.workspace != WorkspaceMode::Shared {
            description.push('.');
        }
        if let Some(schema) = &self.decl.agent.output_schema {
            description.push_str(&format!(
                " It answers with JSON matching this schema: {schema}"
            ));
        }
        ToolSpec::function(
            &self.decl.name,
            &description,
            serde_json::json!({
                "type": "object",
                "properties": {
                    "task": {
                        "type": "string",
                        "description": "The task, complete: the agent sees nothing else of this conversation."
                    }
                },
                "required": ["task"],
            }),
        )
    }

    fn effects(&self) -> Effects {
        self.effects
    }

    /// Each of the sub-agent's calls is judged by the same policy: starting it is not.
    fn judged_as(&self) -> Effects {
        Effects::None
    }

    fn changes_workspace(&self) -> bool {
        self.decl.workspace == WorkspaceMode::Shared && self.effects == Effects::External
    }

    fn call<'a>(&'a self, ctx: &'a ToolContext, input: &'a str) -> ToolFuture<'a> {
        Box::pin(async move {
            #[derive(serde::Deserialize)]
            struct Args {
                task: String,
            }
            let args: Args = serde_json::from_str(input).map_err(|e| {
                ToolError::InvalidArguments(format!("{e}; give {{\"task\": \"...\"}}"))
            })?;
            if args.task.trim().is_empty() {
                return Err(ToolError::InvalidArguments("the task is empty".into()));
            }
            let _turn =
                self.parent.limit.acquire().await.map_err(|_| {
                    ToolError::Failed("the run is ending; no sub-agent starts".into())
                })?;
            let name = &self.decl.name;
            let run: Boxed<'_, (RunId, RunOutcome)> = Box::pin(self.run(&ctx.call_id, args.task));
            let (id, outcome) = run.await.map_err(|e| {
                let hint = e.hint_text().map(|h| format!(" ({h})")).unwrap_or_default();
                ToolError::Failed(format!(
                    "the sub-agent '{name}' could not run: {}{hint}",
                    e.message()
                ))
            })?;
            let result = self.answer(&id, &outcome).await;
            // A finished sub-agent's copy is not needed any more: its checkpoints hold it.
            if self.decl.workspace == WorkspaceMode::Copy
                && matches!(outcome.status, RunStatus::Completed | RunStatus::Failed)
            {
                self.remove_copy(&id).await;
            }
            result
        })
    }
}

impl SubagentTool {
    /// Removes the copy a finished sub-agent worked in (only a directory of the session's
    /// workspaces folder).
    async fn remove_copy(&self, run: &RunId) {
        let Ok(events) = self.session.store().events(run).await else {
            return;
        };
        let Some(dir) = crate::last_workspace(&events) else {
            return;
        };
        let within = std::fs::canonicalize(self.session.workspaces_dir())
            .is_ok_and(|base| dir.parent() == Some(base.as_path()));
        if !within {
            return;
        }
        let _ = tokio::task::spawn_blocking(move || remove_tree(&dir)).await;
    }

    /// What the call answers for a sub-agent's outcome.
    async fn answer(&self, id: &RunId, outcome: &RunOutcome) -> Result<ToolOutput, ToolError> {
        let name = &self.decl.name;
        match outcome.status {
            RunStatus::Completed => {
                let mut text = match &outcome.structured {
                    Some(v) => serde_json::to_string(v).unwrap_or_default(),
                    None => outcome.output.clone().unwrap_or_default(),
                };
                if self.decl.patch {
                    match self.patch(id).await {
                        Ok(Some(patch)) => {
                            text.push_str("\n\n[its changes, as a patch]\n");
                            text.push_str(&patch);
                        }
                        Ok(None) => text.push_str("\n\n[it changed no files]"),
                        Err(e) => text.push_str(&format!(
                            "\n\n[its changes could not be read: {}]",
                            e.message()
                        )),
                    }
                }
                text.push_str(&format!("\n\n(sub-agent run {id})"));
                Ok(ToolOutput::from(text))
            }
            RunStatus::Paused => Err(ToolError::Suspended(format!(
                "the sub-agent '{name}' (run {id}) paused; `cordon resume {}` goes on with the whole tree",
                self.parent.root
            ))),
            RunStatus::AwaitingApproval => Err(ToolError::Waiting(format!(
                "the sub-agent '{name}' (run {id}) waits for a person: `cordon approve {id}`, then `cordon resume {}`",
                self.parent.root
            ))),
            RunStatus::Running | RunStatus::Interrupted => Err(ToolError::Suspended(format!(
                "the sub-agent '{name}' (run {id}) stopped before its end"
            ))),
            RunStatus::BudgetExceeded => {
                let (budget, limit) = outcome
                    .state
                    .exceeded
                    .clone()
                    .unwrap_or_else(|| ("a budget".into(), 0.0));
                Err(ToolError::OutOfBudget {
                    reason: format!(
                        "the sub-agent '{name}' (run {id}) ran out of the tree's {budget}: `cordon resume {} --budget {budget}=MORE` goes on with it",
                        self.parent.root
                    ),
                    budget,
                    limit,
                    used: limit,
                })
            }
            RunStatus::Failed => Err(ToolError::Failed(format!(
                "the sub-agent '{name}' (run {id}) did not finish: {}",
                outcome
                    .error
                    .clone()
                    .unwrap_or_else(|| outcome.status.as_str().into())
            ))),
        }
    }
}

/// Removes a tree this process made, making its directories writable first (a copy may
/// hold read-only entries).
fn remove_tree(dir: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    fn writable(dir: &std::path::Path) {
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                writable(&entry.path());
            }
        }
    }
    writable(dir);
    let _ = std::fs::remove_dir_all(dir);
}

/// A future a sub-agent waits for, checked to be sendable where it is made.
type Boxed<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, SessionError>> + Send + 'a>>;

fn new_run(session: &Session, r: RunRequest) -> Boxed<'_, crate::PreparedRun> {
    Box::pin(session.new_run(r))
}

fn resume(session: &Session, r: ResumeRequest) -> Boxed<'_, crate::PreparedRun> {
    Box::pin(session.resume(r))
}

fn drive(run: crate::PreparedRun) -> Boxed<'static, RunOutcome> {
    Box::pin(run.run())
}
