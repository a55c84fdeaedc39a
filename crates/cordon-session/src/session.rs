//! The session: everything runs share (a store, model providers, a sandbox provider, a
//! snapshot store, a tool registry), and the one path that prepares a run, new or resumed.

use crate::agent::AgentSpec;
use crate::checkpoint::SnapshotCheckpointer;
use crate::events::{Fanout, RunEvent};
use crate::models::Models;
use crate::snapshots::Snapshots;
use crate::workspace::{self, PreparedSandbox, SandboxOptions};
use crate::{ErrorKind, SessionError};
use cordon_core::{Progress, RunId, SandboxSpec};
use cordon_harness::{Agent, Resumption, RunObserver, RunOutcome, Runner};
use cordon_model::ModelClient;
use cordon_sandbox::{Sandbox, SandboxProvider};
use cordon_store::{Snapshot, Store};
use cordon_tools::{Registry, ToolEnv};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::broadcast;

/// What runs share. Cheap to clone.
#[derive(Clone)]
pub struct Session {
    pub(crate) store: Store,
    pub(crate) models: Models,
    pub(crate) sandboxes: Option<Arc<dyn SandboxProvider>>,
    pub(crate) snapshots: Snapshots,
    pub(crate) tools: Registry,
    pub(crate) protected: Vec<PathBuf>,
    pub(crate) workspaces: PathBuf,
    pub(crate) progress: Arc<dyn Progress>,
}

/// Builds a [`Session`]; see [`Session::builder`].
pub struct SessionBuilder {
    store: Store,
    models: Models,
    sandboxes: Option<Arc<dyn SandboxProvider>>,
    snapshots: Option<Snapshots>,
    tools: Registry,
    protected: Vec<PathBuf>,
    workspaces: Option<PathBuf>,
    progress: Option<Arc<dyn Progress>>,
}

impl SessionBuilder {
    /// The model providers (by default the built-in ones, without a config file).
    pub fn models(mut self, models: Models) -> Self {
        self.models = models;
        self
    }

    /// The provider that makes sandboxes (none by default: then only runs whose tools need
    /// no sandbox can start).
    pub fn sandboxes(mut self, provider: Arc<dyn SandboxProvider>) -> Self {
        self.sandboxes = Some(provider);
        self
    }

    /// Where checkpoints go (by default the snapshot directory under cordon's state
    /// directory).
    pub fn snapshots(mut self, snapshots: Snapshots) -> Self {
        self.snapshots = Some(snapshots);
        self
    }

    /// The tools runs may be given (by default [`Registry::builtin`]).
    pub fn tools(mut self, tools: Registry) -> Self {
        self.tools = tools;
        self
    }

    /// More host paths no sandbox may reach (the store, its heads and the snapshot store
    /// are always protected).
    pub fn protect(mut self, paths: impl IntoIterator<Item = PathBuf>) -> Self {
        self.protected.extend(paths);
        self
    }

    /// Who is told how long work goes (building a workspace, checkpoints, restores); by
    /// default no one.
    pub fn progress(mut self, progress: Arc<dyn Progress>) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Where fresh workspaces (a manifest's, a restored checkpoint's) are made (by default
    /// `workspaces/` beside the store).
    pub fn workspaces(mut self, dir: impl Into<PathBuf>) -> Self {
        self.workspaces = Some(dir.into());
        self
    }

    /// The session.
    pub fn build(self) -> Result<Session, SessionError> {
        let snapshots = match self.snapshots {
            Some(s) => s,
            None => Snapshots::open(None)?,
        };
        let mut protected = self.protected;
        let db = std::path::absolute(self.store.path())
            .unwrap_or_else(|_| self.store.path().to_path_buf());
        protected.push(self.store.heads_dir().to_path_buf());
        protected.push(
            std::path::absolute(self.store.signing_key_path())
                .unwrap_or_else(|_| self.store.signing_key_path().to_path_buf()),
        );
        protected.push(db.clone());
        protected.push(snapshots.local.dir().to_path_buf());
        let workspaces = self
            .workspaces
            .unwrap_or_else(|| db.parent().unwrap_or(Path::new(".")).join("workspaces"));
        Ok(Session {
            store: self.store,
            models: self.models,
            sandboxes: self.sandboxes,
            snapshots,
            tools: self.tools,
            protected,
            workspaces,
            progress: self
                .progress
                .unwrap_or_else(|| Arc::new(cordon_core::NoProgress)),
        })
    }
}

/// A new run: the agent, the task, and where its commands run.
pub struct RunRequest {
    /// The agent.
    pub agent: AgentSpec,
    /// Where the agent's definition came from (an agent file's path), for errors.
    pub origin: String,
    /// The task, as the first user message.
    pub task: String,
    /// `PROVIDER:MODEL`, over the agent's own.
    pub model: Option<String>,
    /// Where commands run; needed when the agent has tools that need a sandbox.
    pub sandbox: Option<SandboxOptions>,
    /// A limit on model calls, over the agent's own.
    pub max_turns: Option<u32>,
    /// Who watches the run as it happens (besides subscribers).
    pub observers: Vec<Arc<dyn RunObserver>>,
    /// Pauses the run at its next step boundary once set (by default the run's own flag,
    /// which [`RunHandle::pause`] sets).
    pub stop: Option<Arc<AtomicBool>>,
    /// The policy the run is under, over the agent's own (see [`crate::policy::resolve`]).
    pub policy: Option<cordon_policy::Policy>,
    /// The run (`last`, an id or a piece of one) whose conversation this run carries on: it
    /// starts from that run's history. The run must have ended.
    pub continues: Option<String>,
    /// The conversation this run belongs to, by name: without `continues`, it carries on the
    /// conversation's newest run (or starts the conversation).
    pub conversation: Option<String>,
    /// The tree of runs this one is a sub-agent in.
    pub(crate) tree: Option<Tree>,
    /// A sandbox made as a recorded spec says, over an existing directory (a sub-agent's,
    /// like its parent's), instead of `sandbox`.
    pub(crate) rebuilt: Option<(SandboxSpec, PathBuf)>,
}

/// What links a sub-agent's run to its tree: the budgets it shares, the run whose pause
/// pauses it, what started it.
#[derive(Clone)]
pub(crate) struct Tree {
    /// What the tree has spent.
    pub ledger: Arc<cordon_harness::Ledger>,
    /// The tree's first run.
    pub root: RunId,
    /// Recorded when a new sub-agent starts (`spawned_by`).
    pub spawned: Option<cordon_core::EventPayload>,
    /// Whether the run checkpoints its workspace (not in its parent's workspace: the
    /// parent's checkpoints cover that).
    pub checkpoints: bool,
}

impl RunRequest {
    /// `agent` on `task`, with nothing else set.
    pub fn new(agent: AgentSpec, task: impl Into<String>) -> Self {
        let origin = format!("agent '{}'", agent.name);
        RunRequest {
            agent,
            origin,
            task: task.into(),
            model: None,
            sandbox: None,
            max_turns: None,
            observers: Vec::new(),
            stop: None,
            policy: None,
            continues: None,
            conversation: None,
            tree: None,
            rebuilt: None,
        }
    }

    /// Uses this model.
    pub fn model(mut self, spec: impl Into<String>) -> Self {
        self.model = Some(spec.into());
        self
    }

    /// Runs commands in a sandbox made as `options` say.
    pub fn sandbox(mut self, options: SandboxOptions) -> Self {
        self.sandbox = Some(options);
        self
    }

    /// Shows the run to `observer` as it happens.
    pub fn observe(mut self, observer: Arc<dyn RunObserver>) -> Self {
        self.observers.push(observer);
        self
    }
}

/// Where a prepared run works.
#[derive(Debug, Clone)]
pub struct WorkspaceInfo {
    /// The host directory.
    pub dir: PathBuf,
    /// The checkpoint it was restored from, when a resume restored it.
    pub restored_from: Option<String>,
    /// What preparing it noticed without failing (for example set-id bits dropped).
    pub notes: Vec<String>,
}

/// How a prepared run begins.
pub(crate) enum Start {
    New {
        task: String,
        continuation: Option<crate::conversation::Continuation>,
    },
    Resume(Resumption),
}

/// Everything a run is prepared from, new or resumed: the one path both take.
pub(crate) struct Plan {
    pub run_id: RunId,
    pub agent: AgentSpec,
    pub origin: String,
    pub model: String,
    pub sandbox: Option<PreparedSandbox>,
    pub last_checkpoint: Option<Snapshot>,
    pub restored_from: Option<String>,
    pub notes: Vec<String>,
    pub start: Start,
    pub observers: Vec<Arc<dyn RunObserver>>,
    pub stop: Option<Arc<AtomicBool>>,
    /// The run's egress proxy, when its sandbox has a way out.
    pub egress: Option<crate::egress::RunEgress>,
    /// The tree of runs it is a sub-agent in.
    pub tree: Option<Tree>,
}

/// A run ready to go: its sandbox made, its model resolved, its tools built.
pub struct PreparedRun {
    run_id: RunId,
    runner: Runner,
    agent: Agent,
    start: Start,
    workspace: Option<WorkspaceInfo>,
    sandbox: Option<Arc<dyn Sandbox>>,
    events: broadcast::Sender<RunEvent>,
    stop: Arc<AtomicBool>,
    egress: Option<crate::egress::RunEgress>,
    mcp: Vec<Arc<cordon_mcp::McpServer>>,
    _keep_alive: Option<Box<dyn std::any::Any + Send + Sync>>,
}

impl PreparedRun {
    /// The run's id.
    pub fn run_id(&self) -> &RunId {
        &self.run_id
    }

    /// Where it works, if it has a sandbox.
    pub fn workspace(&self) -> Option<&WorkspaceInfo> {
        self.workspace.as_ref()
    }

    /// Receives the run's events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<RunEvent> {
        self.events.subscribe()
    }

    /// Drives the run to its end (or its pause) here.
    pub async fn run(self) -> Result<RunOutcome, SessionError> {
        let PreparedRun {
            run_id,
            runner,
            agent,
            start,
            sandbox,
            egress,
            mcp,
            _keep_alive,
            ..
        } = self;
        // A run that carries on a conversation is linked from the earlier run first.
        let (runner, start) = match start {
            Start::New {
                task,
                continuation: Some(c),
            } => {
                c.link(runner.store(), &run_id).await?;
                (
                    runner.history(c.event()),
                    Start::New {
                        task,
                        continuation: None,
                    },
                )
            }
            other => (runner, other),
        };
        let result = match start {
            Start::New { task, .. } => runner.run_as(run_id.clone(), &agent, &task).await,
            Start::Resume(how) => runner.resume(&agent, &run_id, how).await,
        };
        // The tools hold the sandbox too: let them go (the MCP servers first, some of which
        // run in it), then stop it and wait for its cleanup.
        drop(agent);
        crate::mcp::stop(&mcp).await;
        drop(mcp);
        if let Some(sb) = sandbox {
            let _ = sb.stop().await;
        }
        // Then the proxy: tunnels still open end, and what they carried is recorded.
        if let Some(egress) = egress {
            egress.stop().await;
            if let Err(e) = runner.record_late_network(&run_id).await {
                tracing::warn!(%e, "cannot record the network requests that ended with the run");
            }
        }
        drop(_keep_alive);
        Ok(result?)
    }

    /// Drives the run in a task of its own; the handle watches, pauses and waits for it.
    pub fn start(self) -> RunHandle {
        let (run_id, events, stop) = (self.run_id.clone(), self.events.clone(), self.stop.clone());
        RunHandle {
            run_id,
            events,
            stop,
            task: tokio::spawn(self.run()),
        }
    }
}

/// A run going on in a task of its own.
pub struct RunHandle {
    run_id: RunId,
    events: broadcast::Sender<RunEvent>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Result<RunOutcome, SessionError>>,
}

impl RunHandle {
    /// The run's id.
    pub fn run_id(&self) -> &RunId {
        &self.run_id
    }

    /// Receives the run's events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<RunEvent> {
        self.events.subscribe()
    }

    /// Asks the run to pause after its current step (another process uses
    /// [`Session::request_pause`]).
    pub fn pause(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Waits for the run to end or pause.
    pub async fn wait(self) -> Result<RunOutcome, SessionError> {
        self.task.await.map_err(|e| {
            SessionError::new(ErrorKind::Failed, format!("the run's task failed: {e}")).caused_by(e)
        })?
    }
}

impl Session {
    /// A session recording into `store`; the builder sets the rest.
    pub fn builder(store: Store) -> SessionBuilder {
        SessionBuilder {
            store,
            models: Models::default(),
            sandboxes: None,
            snapshots: None,
            tools: Registry::builtin(),
            protected: Vec::new(),
            workspaces: None,
            progress: None,
        }
    }

    /// The store runs are recorded in.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The model providers.
    pub fn models(&self) -> &Models {
        &self.models
    }

    /// The tools runs may be given.
    pub fn tools(&self) -> &Registry {
        &self.tools
    }

    /// Host paths no sandbox of this session may reach.
    pub fn protected(&self) -> &[PathBuf] {
        &self.protected
    }

    /// The sandbox provider, or the error for a session without one.
    pub(crate) fn provider(&self) -> Result<&dyn SandboxProvider, SessionError> {
        self.sandboxes.as_deref().ok_or_else(|| {
            SessionError::new(
                ErrorKind::SandboxUnavailable,
                "this session has no sandbox provider",
            )
            .hint("give the session builder one: .sandboxes(Arc::new(LocalProvider::new(...)))")
        })
    }

    /// Makes a sandbox as `options` say, with this session's provider and protections (for
    /// running commands outside any run, as `cordon sandbox exec` does).
    pub async fn sandbox(&self, options: &SandboxOptions) -> Result<PreparedSandbox, SessionError> {
        self.sandbox_named(options, RunId::new().as_str(), Default::default())
            .await
    }

    /// [`Session::sandbox`], naming a workspace it makes `name` (a run's id).
    async fn sandbox_named(
        &self,
        options: &SandboxOptions,
        name: &str,
        run: workspace::RunLimits<'_>,
    ) -> Result<PreparedSandbox, SessionError> {
        workspace::prepare_named(
            self.provider()?,
            options,
            &self.workspaces,
            &self.protected,
            name,
            run,
            self.progress.as_ref(),
        )
        .await
    }

    /// Prepares a new run: makes its sandbox and workspace, resolves its model, builds its
    /// tools. Nothing is recorded until it starts.
    pub async fn new_run(&self, request: RunRequest) -> Result<PreparedRun, SessionError> {
        let RunRequest {
            mut agent,
            origin,
            task,
            model,
            sandbox,
            max_turns,
            observers,
            stop,
            policy,
            continues,
            conversation,
            tree,
            rebuilt,
        } = request;
        let continuation = self
            .continuation(continues.as_deref(), conversation.as_deref())
            .await?;
        if let Some(n) = max_turns {
            agent.max_turns = Some(n);
        }
        if policy.is_some() {
            agent.policy = policy;
        }
        let model = self
            .models
            .recorded(&self.models.choose(model.as_deref(), agent.model.as_deref()));
        let needs_sandbox = agent.needs_sandbox(&self.tools).map_err(|e| {
            SessionError::bad_input(format!("{origin}: {e}"), "name tools the registry has")
        })?;
        let run_id = RunId::new();
        // A sandbox's one way out, when the run's policy could let something through.
        let egress = match sandbox.is_some() || rebuilt.is_some() {
            true => {
                crate::egress::RunEgress::start(agent.policy.as_ref(), &run_id, Default::default())
                    .await?
            }
            false => None,
        };
        let limits = workspace::RunLimits {
            egress: egress.as_ref().map(|e| e.endpoint()),
            policy: agent.policy.as_ref(),
        };
        let prepared = match (sandbox, rebuilt, needs_sandbox) {
            // A sub-agent's sandbox, made as its parent's was.
            (_, Some((spec, dir)), _) => Some(self.rebuild(&spec, &dir, limits).await?),
            // A workspace cordon makes for the run carries the run's id.
            (Some(options), None, _) => Some(
                self.sandbox_named(&options, run_id.as_str(), limits)
                    .await?,
            ),
            (None, None, false) => None,
            (None, None, true) => {
                return Err(SessionError::bad_input(
                    format!("{origin}: its tools run commands, and the request names no sandbox"),
                    "give the run a workspace or a manifest",
                ));
            }
        };
        let sandbox = match prepared {
            Some(mut p) => {
                crate::egress::check_isolation(agent.policy.as_ref(), p.sandbox.as_ref())?;
                p.spec.checkpoints.merge(&agent.checkpoints);
                Some(p)
            }
            None => None,
        };
        self.prepare(Plan {
            run_id,
            agent,
            origin,
            model,
            sandbox,
            last_checkpoint: None,
            restored_from: None,
            notes: Vec::new(),
            start: Start::New { task, continuation },
            observers,
            stop,
            egress,
            tree,
        })
        .await
    }

    /// The one path every run takes, new or resumed: model, secrets, checkpoints, tools,
    /// agent and runner, from a plan.
    pub(crate) async fn prepare(&self, plan: Plan) -> Result<PreparedRun, SessionError> {
        let Plan {
            run_id,
            mut agent,
            origin,
            model,
            sandbox,
            last_checkpoint,
            restored_from,
            notes,
            start,
            observers,
            stop,
            egress,
            tree,
        } = plan;
        let resolved = self.models.resolve(&model).await?;
        let mut secrets = sandbox
            .as_ref()
            .map_or_else(Vec::new, |s| s.secrets.clone());
        secrets.extend(egress.iter().flat_map(|e| e.secrets().iter().cloned()));
        let servers = crate::mcp::resolve(&agent, &origin)?;
        secrets.extend(servers.iter().flat_map(|s| s.secrets()));
        let mut redactor = redactor(&resolved.provider, &secrets);
        // Checked when the config was loaded.
        let _ = self.models.config().redaction.apply(&mut redactor);
        let redactor = Arc::new(redactor);
        let fanout = Fanout::new(observers);
        let events = fanout.sender();
        let stop = stop.unwrap_or_default();
        let client = Arc::new(ModelClient::new(resolved.provider.clone())?);
        let mut runner = Runner::new(client.clone(), self.store.clone())
            .observer(Arc::new(fanout))
            .redactor(redactor)
            .stop_flag(stop.clone());
        if let Some(e) = &egress {
            runner = runner.network(e.feed());
        }
        let env = match &sandbox {
            Some(p) => ToolEnv::with_sandbox(
                p.sandbox.clone(),
                Duration::from_secs(
                    p.spec
                        .command_timeout_secs
                        .unwrap_or(workspace::DEFAULT_COMMAND_TIMEOUT),
                ),
            ),
            None => ToolEnv::without_sandbox(),
        };
        let mut tools = self.tools.build(&agent.tools, &env).map_err(|e| {
            SessionError::bad_input(format!("{origin}: {e}"), "name tools the registry has")
        })?;
        let new_run = matches!(start, Start::New { .. });
        let (skills, skill_tool) = crate::skills::for_run(
            &agent,
            sandbox
                .as_ref()
                .map(|p| (p.workspace.as_path(), p.spec.read_only)),
            new_run,
            &origin,
        )?;
        tools.extend(skill_tool);
        let price = self.models.price(&resolved.model_name);
        // The tree's budgets: shared with the parent's, or this run's (with what its
        // sub-agents spent before, on resume).
        let ledger = match &tree {
            Some(t) => t.ledger.clone(),
            None => {
                let ledger = Arc::new(cordon_harness::Ledger::new());
                if !new_run {
                    for child in self.store.descendants(&run_id).await? {
                        let state = cordon_core::RunState::fold(&self.store.events(&child).await?)?;
                        ledger.set(
                            child.as_str(),
                            cordon_harness::Spent::of(&state, price.as_ref()),
                        );
                    }
                }
                ledger
            }
        };
        runner = runner.ledger(ledger.clone());
        let root = tree
            .as_ref()
            .map_or_else(|| run_id.clone(), |t| t.root.clone());
        if let Some(t) = &tree {
            runner = runner.pause_with(t.root.clone());
            if let (true, Some(event)) = (new_run, &t.spawned) {
                runner = runner.at_start(event.clone());
            }
        }
        let previous = Arc::new(std::sync::Mutex::new(last_checkpoint));
        // A new run's instructions describe its workspace (a resumed run's already do).
        let context = match (&sandbox, new_run) {
            (Some(p), true) => Some(cordon_manifest::workspace_context(p.sandbox.as_ref()).await),
            _ => None,
        };
        let members = crate::team::build_members(
            self,
            &mut agent,
            &model,
            &resolved.model_name,
            &env,
            sandbox.as_ref().map(|p| p.sandbox.clone()),
            &client,
            context.as_deref(),
            &origin,
        )?;
        let handoffs = std::mem::take(&mut agent.handoffs);
        let agent_tools = std::mem::take(&mut agent.agent_tools);
        if !agent_tools.is_empty() {
            let parent = Arc::new(crate::subagent::Parent {
                run_id: run_id.clone(),
                root: root.clone(),
                model: model.clone(),
                policy: agent.policy.clone(),
                budgets: agent.budgets.clone(),
                approvals: agent.approvals.clone(),
                ledger: ledger.clone(),
                stop: stop.clone(),
                limit: Arc::new(tokio::sync::Semaphore::new(
                    agent_tools
                        .first()
                        .map_or(crate::team::DEFAULT_MAX_PARALLEL_AGENTS, |t| t.max_parallel)
                        .max(1) as usize,
                )),
                workspace: sandbox
                    .as_ref()
                    .map(|p| (p.workspace.clone(), p.spec.clone())),
                checkpoint: previous.clone(),
            });
            for decl in &agent_tools {
                // A built-in's name would stand for the agent where the model expects the
                // tool (the shell's write_stdin beside exec_command).
                if self.tools.get(&decl.name).is_some() {
                    return Err(SessionError::bad_input(
                        format!(
                            "{origin}: the agent tool '{}' has the name of a tool cordon has",
                            decl.name
                        ),
                        "give the agent tool another `name`",
                    ));
                }
                tools.push(Arc::new(crate::subagent::SubagentTool::new(
                    decl.clone(),
                    self.clone(),
                    parent.clone(),
                )));
            }
        }
        // A resumed run compacts as it did; a new one as its agent and the model say.
        let compaction = match new_run {
            false => agent.recorded_compaction.clone(),
            true => agent.compaction_for(
                &resolved.model_name,
                self.models.context_window(&resolved.model_name),
                &resolved.provider,
                &origin,
            )?,
        };
        let guardrails = crate::guardrails::build(
            &agent.guardrails,
            sandbox.as_ref().map(|p| p.sandbox.clone()),
            client.clone(),
            &resolved.model_name,
            &origin,
        )?;
        let mut agent = agent.into_agent(&model, &resolved.model_name, &origin, tools, price)?;
        agent.compaction = compaction;
        agent.handoffs = handoffs;
        agent.members = members;
        if !agent_tools.is_empty() {
            agent.agent_tools = serde_json::to_value(&agent_tools).ok();
        }
        for g in guardrails {
            agent = agent.guardrail(g);
        }
        if !skills.is_empty() {
            if new_run {
                // A resumed run's instructions list them already.
                let listed = crate::skills::instructions(&skills, sandbox.is_some());
                agent.instructions = format!("{}\n\n{listed}", agent.instructions);
            }
            agent.skills = serde_json::to_value(&skills).ok();
        }
        let place = cordon_mcp::Place {
            sandbox: sandbox.as_ref().map(|p| p.sandbox.clone()),
        };
        let mcp = crate::mcp::start(servers, place, &origin).await?;
        for server in &mcp {
            if let Some(event) = crate::mcp::started_event(server) {
                runner = runner.at_start(event);
            }
            agent = agent.source(server.clone());
        }
        if let Err(e) = agent.check() {
            crate::mcp::stop(&mcp).await;
            return Err(SessionError::bad_input(
                format!("{origin}: {e}"),
                "two tools share a name: rename one (an MCP server, an agent tool's `name`, or the agent a handoff names)",
            ));
        }
        let mut workspace_info = None;
        let mut kept_sandbox = None;
        if let Some(p) = sandbox {
            if let Some(context) = &context {
                agent.instructions = format!("{}\n\n{context}", agent.instructions);
            }
            if let Some((digest, receipts, text)) = &p.materialized {
                runner = runner.workspace_receipts(
                    digest.clone(),
                    serde_json::to_value(receipts).map_err(|e| {
                        SessionError::new(ErrorKind::Failed, format!("receipts: {e}"))
                    })?,
                    Some(text.clone()),
                    p.materialize_ms,
                );
            }
            if !p.spec.outputs.is_empty() {
                runner = runner.artifacts(Arc::new(crate::artifacts::WorkspaceOutputs {
                    dir: p.workspace.clone(),
                    outputs: p.spec.outputs.clone(),
                }));
            }
            runner = runner.sandbox_info({
                let mut record =
                    workspace::sandbox_record(p.sandbox.as_ref(), &p.workspace, &p.spec);
                // How long making it took, for the run's trace.
                record["create_ms"] = p.create_ms.into();
                record
            });
            // A sub-agent in its parent's workspace leaves checkpoints to the parent.
            if tree.as_ref().is_none_or(|t| t.checkpoints) {
                runner = runner.checkpointer(Arc::new(SnapshotCheckpointer {
                    store: self.snapshots.clone(),
                    dir: p.workspace.clone(),
                    exclude: crate::checkpoint::exclusions(&p.spec),
                    previous: previous.clone(),
                    progress: self.progress.clone(),
                }));
            }
            workspace_info = Some(WorkspaceInfo {
                dir: p.workspace,
                restored_from,
                notes,
            });
            kept_sandbox = Some(p.sandbox);
        }
        Ok(PreparedRun {
            run_id,
            runner,
            agent,
            start,
            workspace: workspace_info,
            sandbox: kept_sandbox,
            events,
            stop,
            egress,
            mcp,
            _keep_alive: resolved.keep_alive,
        })
    }

    /// Asks a run to pause at its next step boundary, whatever process runs it; returns its
    /// full id.
    pub async fn request_pause(&self, run: &str) -> Result<RunId, SessionError> {
        let run_id = self.store.resolve(run).await?;
        let state = cordon_core::RunState::fold(&self.store.events(&run_id).await?)?;
        match self.store.live_status(&run_id, state.status) {
            cordon_core::RunStatus::Running => {}
            cordon_core::RunStatus::Interrupted => {
                return Err(SessionError::bad_input(
                    format!(
                        "run {run_id} is not running: it was interrupted (no process drives it)"
                    ),
                    format!("`cordon resume {run_id}` continues it"),
                ));
            }
            other => {
                return Err(SessionError::bad_input(
                    format!("run {run_id} is not running (it is {})", other.as_str()),
                    "only a running run can be paused",
                ));
            }
        }
        self.store.request_pause(&run_id)?;
        Ok(run_id)
    }

    /// The run to resume to go on with `run`: the first run of its tree of sub-agents (`run`
    /// itself when it is no sub-agent).
    pub async fn resume_target(&self, run: &RunId) -> RunId {
        self.store
            .tree_root(run)
            .await
            .unwrap_or_else(|_| run.clone())
    }

    /// Refuses to go on with a run whose record does not verify: appending after a
    /// tampered event would bless it.
    pub async fn require_intact(&self, run_id: &RunId) -> Result<(), SessionError> {
        let verdict = cordon_store::verify::verify_run(&self.store, run_id).await?;
        match verdict.problems.first() {
            None => Ok(()),
            Some(p) => Err(SessionError::new(
                ErrorKind::Damaged,
                format!("run {run_id} does not verify, so cordon will not add to it: {p}"),
            )
            .hint(format!(
                "`cordon verify {run_id}` shows what is wrong; restore the store from a backup"
            ))),
        }
    }

    /// The directory fresh workspaces are made in.
    pub fn workspaces_dir(&self) -> &Path {
        &self.workspaces
    }

    /// A recorded sandbox rebuilt over `dir` (for resume).
    pub(crate) async fn rebuild(
        &self,
        spec: &SandboxSpec,
        dir: &Path,
        run: workspace::RunLimits<'_>,
    ) -> Result<PreparedSandbox, SessionError> {
        let began = std::time::Instant::now();
        let (sandbox, secrets) =
            workspace::build(self.provider()?, spec, dir, &self.protected, run).await?;
        Ok(PreparedSandbox {
            sandbox,
            workspace: dir.to_path_buf(),
            spec: spec.clone(),
            materialized: None,
            secrets,
            create_ms: workspace::millis_since(began),
            materialize_ms: None,
        })
    }
}

/// The secrets a run knows: the provider's key and the values passed into its sandbox.
fn redactor(
    provider: &cordon_model::ProviderConfig,
    sandbox_secrets: &[(String, String)],
) -> cordon_core::Redactor {
    let mut r = cordon_core::Redactor::new();
    if let Some(key) = &provider.api_key {
        r.add(&format!("{} API key", provider.name), key.expose());
    }
    for (name, value) in sandbox_secrets {
        if !r.add(name, value) {
            tracing::warn!(%name, "a secret shorter than 4 characters cannot be redacted");
        }
    }
    r
}
