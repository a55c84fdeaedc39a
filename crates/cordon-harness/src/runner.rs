//! The agent loop.

use crate::Agent;
use crate::guardrail::Stage;
use crate::observer::{RunObserver, Silent};
use cordon_core::{EventPayload, ModelResponse, RunId, RunState, RunStatus, ToolCall, VERSION};
use cordon_model::{ModelClient, ModelError, ModelRequest, OutputSchema, StreamEvent};
use cordon_policy::Verdict;
use cordon_store::{RunLog, Store, StoreError};
use cordon_tools::{Effects, ToolContext, ToolError, ToolOutput};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What to do about an answer cut off at the output limit.
const CUT_OFF_HINT: &str = "raise max_output_tokens in the agent's [model_settings] for new runs; `cordon resume RUN --input \"Continue.\"` asks the model to go on from where it stopped";

/// How a run ended.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// The run's id.
    pub run_id: RunId,
    /// Completed, failed or budget exceeded.
    pub status: RunStatus,
    /// The final answer's text, when completed.
    pub output: Option<String>,
    /// The parsed final answer, when a schema was required.
    pub structured: Option<Value>,
    /// What stopped the run, when it did not complete.
    pub error: Option<String>,
    /// What the user can do about that error.
    pub hint: Option<String>,
    /// The run's state at the end.
    pub state: RunState,
}

/// A run that could not be recorded. (Model and tool failures do not end up here: they
/// are recorded in the run and reported in its [`RunOutcome`].)
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The run log could not be written or read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The agent definition is unusable.
    #[error(transparent)]
    Agent(#[from] crate::AgentError),
    /// The run's log does not fold into a state.
    #[error("the run log does not make sense: {0}")]
    Corrupt(String),
    /// There is nothing to resume.
    #[error("run {0} has completed; there is nothing to resume")]
    Finished(String),
}

/// How a stopped run is picked up again (see [`Runner::resume`]).
#[derive(Debug, Clone, Default)]
pub struct Resumption {
    /// The checkpoint the caller restored the workspace from.
    pub from_checkpoint: Option<String>,
    /// Budgets raised for the rest of the run, as given (recorded).
    pub raised: Option<Value>,
    /// User input to add before the next model call.
    pub input: Option<String>,
    /// The host directory the run works in from now on.
    pub workspace: Option<String>,
    /// Whether that directory is a fresh restore of the checkpoint.
    pub restored: bool,
    /// What the resume noticed without failing, for the record.
    pub notes: Vec<String>,
    /// Whether the person resuming put the run under another policy (the agent's): the
    /// resume records it.
    pub policy_replaced: bool,
}

/// Runs agents against one model client, recording into one store.
pub struct Runner {
    client: Arc<ModelClient>,
    store: Store,
    observer: Arc<dyn RunObserver>,
    sandbox: Option<Value>,
    workspace: Option<(String, Value, Option<String>, Option<u64>)>,
    checkpointer: Option<Arc<dyn crate::Checkpointer>>,
    collector: Option<Arc<dyn crate::ArtifactCollector>>,
    stop: Option<Arc<std::sync::atomic::AtomicBool>>,
    redactor: Option<Arc<cordon_core::Redactor>>,
    network: Option<Arc<dyn crate::NetworkFeed>>,
    at_start: Vec<EventPayload>,
    history: Option<EventPayload>,
    ledger: Option<Arc<crate::Ledger>>,
    also_pause: Option<RunId>,
}

/// One run in progress: its log, its folded state, and who watches.
///
/// Events are recorded into the log's buffer and the state at once; the buffer is stored
/// before anything that depends on it: a run's start before anything is asked of the model,
/// everything before a model request while the model answers (its answer is recorded only
/// after), a tool's intent before a tool that may act runs, all of it before the run stops.
/// The observer sees events once they are stored, and streamed text after what came before
/// it.
struct Live<'a> {
    log: RunLog,
    state: RunState,
    observer: &'a dyn RunObserver,
    /// When the run started, from its first event: wall-time budgets count from it.
    started: Option<time::OffsetDateTime>,
    /// Recorded, not yet stored, so not yet shown.
    unseen: Vec<cordon_core::Event>,
    /// The sandbox's network requests, recorded before each event.
    network: Option<&'a dyn crate::NetworkFeed>,
    /// Hosts whose requests the policy left to a person since the last batch of tools.
    asked_hosts: std::collections::BTreeSet<String>,
    /// The input tokens the provider counted in the last request, and how many items that
    /// request held (what compaction measures from, beside its own estimate).
    reported: Option<(u64, usize)>,
    /// Why the run must stop at the next step boundary, when a call could not finish (a
    /// sub-agent that paused, waits for a person, or ran out of a shared budget).
    halt: Option<Halt>,
    /// Why the run paused, when a call's halt paused it.
    halted: Option<String>,
}

impl Live<'_> {
    /// Records an event and applies it to the state, after the network requests made since
    /// the last one.
    async fn record(&mut self, payload: EventPayload) -> Result<(), StoreError> {
        if let Some(feed) = self.network {
            for request in feed.take() {
                if let EventPayload::NetworkRequest { host, verdict, .. } = &request
                    && verdict == "ask"
                {
                    self.asked_hosts.insert(host.clone());
                }
                self.push(&request);
            }
        }
        self.push(&payload);
        Ok(())
    }

    /// Records one event and applies it to the state.
    fn push(&mut self, payload: &EventPayload) {
        let pushed = self.log.push(payload);
        let event = pushed.event;
        // The state follows the event as stored: with secrets replaced, what a resumed run
        // folds is exactly what this run goes on with.
        match pushed.redacted.then(|| event.typed()) {
            Some(Ok(stored)) => self.state.apply(&stored),
            _ => self.state.apply(payload),
        }
        self.state.next_seq = self.log.next_seq();
        if self.started.is_none() {
            self.started = time::OffsetDateTime::parse(
                &event.ts,
                &time::format_description::well_known::Rfc3339,
            )
            .ok();
        }
        self.unseen.push(event);
        self.unseen.extend(pushed.note);
    }

    /// Stores what was recorded, then shows it.
    async fn flush(&mut self) -> Result<(), StoreError> {
        Self::store_and_show(&mut self.log, &mut self.unseen, self.observer).await
    }

    /// [`Live::flush`] over borrowed parts (so a model call can go on beside it).
    async fn store_and_show(
        log: &mut RunLog,
        unseen: &mut Vec<cordon_core::Event>,
        observer: &dyn RunObserver,
    ) -> Result<(), StoreError> {
        log.flush().await?;
        for event in unseen.drain(..) {
            observer.on_event(&event);
        }
        Ok(())
    }

    /// Seconds since the run's first event.
    fn elapsed_secs(&self) -> f64 {
        self.started.map_or(0.0, |t| {
            (time::OffsetDateTime::now_utc() - t)
                .as_seconds_f64()
                .max(0.0)
        })
    }

    /// Leaves `call` unanswered (`tool_suspended`): the run stops at the next step
    /// boundary, as `halt` says (paused, waiting for a person, or at a budget).
    async fn suspend(&mut self, call: &ToolCall, halt: Halt) -> Result<(), StoreError> {
        self.record(EventPayload::ToolSuspended {
            call_id: call.call_id.clone(),
            tool: call.name.clone(),
            reason: halt.reason().to_string(),
        })
        .await?;
        // The weightiest reason stands: a budget, then a person, then a pause.
        if self.halt.as_ref().is_none_or(|h| halt.rank() > h.rank()) {
            self.halt = Some(halt);
        }
        Ok(())
    }

    /// Records that a budget ran out.
    async fn overrun(
        &mut self,
        (budget, limit, used): crate::budget::Overrun,
        asked: Option<u64>,
    ) -> Result<(), StoreError> {
        self.record(EventPayload::BudgetExceeded {
            budget: budget.into(),
            limit,
            used,
            asked,
        })
        .await
    }
}

impl Runner {
    /// A runner using `client` for model calls and `store` for run logs.
    pub fn new(client: Arc<ModelClient>, store: Store) -> Self {
        Runner {
            network: None,
            client,
            store,
            observer: Arc::new(Silent),
            sandbox: None,
            workspace: None,
            checkpointer: None,
            collector: None,
            stop: None,
            redactor: None,
            at_start: Vec::new(),
            history: None,
            ledger: None,
            also_pause: None,
        }
    }

    /// Shares budgets with the other runs of a tree (a run and its sub-agents): this run
    /// writes what it spends into `ledger`, and its budgets count the tree's total.
    pub fn ledger(mut self, ledger: Arc<crate::Ledger>) -> Self {
        self.ledger = Some(ledger);
        self
    }

    /// Pauses the run too when a pause of `run` (its tree's root) is asked for.
    pub fn pause_with(mut self, run: RunId) -> Self {
        self.also_pause = Some(run);
        self
    }

    /// Starts each new run from the history of an earlier one (a `conversation_continued`
    /// event, recorded before the task).
    pub fn history(mut self, event: EventPayload) -> Self {
        self.history = Some(event);
        self
    }

    /// Records `event` when the run starts or resumes, after what the runner records then
    /// (the session says this way which MCP servers it started).
    pub fn at_start(mut self, event: EventPayload) -> Self {
        self.at_start.push(event);
        self
    }

    /// Replaces these secret values (provider keys, credentials passed to the sandbox) in
    /// every event before it is stored or shown.
    pub fn redactor(mut self, redactor: Arc<cordon_core::Redactor>) -> Self {
        self.redactor = Some(redactor);
        self
    }

    /// Shows the run's progress to `observer`.
    pub fn observer(mut self, observer: Arc<dyn RunObserver>) -> Self {
        self.observer = observer;
        self
    }

    /// Records, at the start of each run, the sandbox its commands use.
    pub fn sandbox_info(mut self, info: Value) -> Self {
        self.sandbox = Some(info);
        self
    }

    /// Records, at the start of each run, the manifest the workspace was built from (its
    /// digest and, when known, its text), its receipts, and how long building it took (ms).
    pub fn workspace_receipts(
        mut self,
        manifest_digest: String,
        receipts: Value,
        manifest: Option<String>,
        duration_ms: Option<u64>,
    ) -> Self {
        self.workspace = Some((manifest_digest, receipts, manifest, duration_ms));
        self
    }

    /// Collects the run's artifacts with `collector` when the model gives its final answer;
    /// a required output that is missing fails the run.
    pub fn artifacts(mut self, collector: Arc<dyn crate::ArtifactCollector>) -> Self {
        self.collector = Some(collector);
        self
    }

    /// Records the sandbox's network requests from `feed` (the run's egress proxy).
    pub fn network(mut self, feed: Arc<dyn crate::NetworkFeed>) -> Self {
        self.network = Some(feed);
        self
    }

    /// Records the network requests that ended after the run's last event (a tunnel still
    /// open when the run stopped, closed when its sandbox did): call it once the sandbox
    /// and its proxy are stopped, so that nothing the sandbox did is missing from the log.
    pub async fn record_late_network(&self, run_id: &RunId) -> Result<(), StoreError> {
        let Some(feed) = &self.network else {
            return Ok(());
        };
        let late = feed.take();
        if late.is_empty() {
            return Ok(());
        }
        let mut log = self.store.open_run(run_id).await?;
        if let Some(r) = &self.redactor {
            log.set_redactor(r.clone());
        }
        for payload in &late {
            let event = log.append(payload).await?;
            self.observer.on_event(&event);
        }
        Ok(())
    }

    /// Pauses the run at the next step boundary once `flag` is set (the CLI sets it on the
    /// first Ctrl-C): the current model call or tool batch, and its checkpoint, finish first.
    pub fn stop_flag(mut self, flag: Arc<std::sync::atomic::AtomicBool>) -> Self {
        self.stop = Some(flag);
        self
    }

    /// Checkpoints the workspace after tool calls that may have changed it.
    pub fn checkpointer(mut self, c: Arc<dyn crate::Checkpointer>) -> Self {
        self.checkpointer = Some(c);
        self
    }

    /// The store runs are recorded in.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Starts a new run of `agent` on `task` and drives it to its end.
    pub async fn run(&self, agent: &Agent, task: &str) -> Result<RunOutcome, RunError> {
        self.run_as(RunId::new(), agent, task).await
    }

    /// [`Runner::run`] under an id the caller chose (so it can show or pause the run while it
    /// goes); the id must be new to the store.
    pub async fn run_as(
        &self,
        run_id: RunId,
        agent: &Agent,
        task: &str,
    ) -> Result<RunOutcome, RunError> {
        agent.check()?;
        // Held while this process drives the run: others can tell it from a killed one.
        let _owner = self.store.claim_run(&run_id)?;
        let mut log = self.store.create_run(&run_id).await?;
        if let Some(r) = &self.redactor {
            log.set_redactor(r.clone());
        }
        let mut live = Live {
            log,
            state: RunState::default(),
            observer: self.observer.as_ref(),
            started: None,
            unseen: Vec::new(),
            network: self.network.as_deref(),
            asked_hosts: Default::default(),
            reported: None,
            halt: None,
            halted: None,
        };
        let result = self.start(agent, task, &mut live).await;
        settle(&mut live, result).await
    }

    /// A new run's first events, then the loop.
    async fn start(
        &self,
        agent: &Agent,
        task: &str,
        live: &mut Live<'_>,
    ) -> Result<RunOutcome, RunError> {
        live.record(EventPayload::RunStarted {
            agent: agent.info(self.client.provider().api.as_str()),
            cordon_version: VERSION.to_string(),
            manifest_digest: self.workspace.as_ref().map(|(d, ..)| d.clone()),
            policy_digest: agent.policy_in_force().digest(),
            sandbox: self.sandbox.clone(),
            policy: agent.policy_in_force().record(),
        })
        .await?;
        if let Some((manifest_digest, receipts, manifest, duration_ms)) = &self.workspace {
            live.record(EventPayload::WorkspaceMaterialized {
                manifest_digest: manifest_digest.clone(),
                receipts: receipts.clone(),
                manifest: manifest.clone(),
                duration_ms: *duration_ms,
            })
            .await?;
        }
        for event in &self.at_start {
            live.record(event.clone()).await?;
        }
        if let Some(history) = &self.history {
            live.record(history.clone()).await?;
        }
        // The workspace as it starts: resume restores it if the run stops before the next.
        self.checkpoint(live).await?;
        live.record(EventPayload::UserInput {
            text: task.to_string(),
        })
        .await?;
        // A run exists once its start is stored, before anything is asked of the model.
        live.flush().await?;
        self.stops_run(agent, live, Stage::Input, task).await?;
        self.drive(agent, live).await
    }

    /// What the run (with its tree, when it shares a ledger) has spent, and the seconds
    /// since it (or its tree) started.
    fn spent(&self, root: &Agent, live: &Live<'_>) -> (crate::Spent, f64) {
        let own = crate::Spent::of(&live.state, root.price.as_ref());
        let Some(ledger) = &self.ledger else {
            return (own, live.elapsed_secs());
        };
        ledger.set(live.log.run_id().as_str(), own);
        if let Some(t) = live.started {
            ledger.started_at(t);
        }
        let elapsed = ledger.started().map_or(live.elapsed_secs(), |t| {
            (time::OffsetDateTime::now_utc() - t)
                .as_seconds_f64()
                .max(0.0)
        });
        (ledger.total(), elapsed)
    }

    /// The loop: model call, tool calls, repeat. The team's active agent answers each turn;
    /// the budgets, policy and compaction are the entry agent's (`root`).
    async fn drive(&self, root: &Agent, live: &mut Live<'_>) -> Result<RunOutcome, RunError> {
        let mut hint = None;
        let mut structured = None;
        while live.state.status == RunStatus::Running {
            if self.pause_if_asked(live).await? {
                break;
            }
            let (spent, elapsed) = self.spent(root, live);
            if let Some(overrun) = crate::budget::before_model(
                root.max_turns,
                &root.budgets,
                live.state.turns,
                &spent,
                elapsed,
            ) {
                live.overrun(overrun, None).await?;
                break;
            }
            self.refresh_tools(root, live).await?;
            let agent = root.active(live.state.active_agent.as_deref());
            let turn = live.state.turns + 1;
            if let Some(c) = &root.compaction
                && let Err(e) = self.compact(agent, c, live, turn).await?
            {
                hint = Some(e.hint_for(self.client.provider()));
                live.record(EventPayload::RunFailed {
                    error: format!("the conversation could not be compacted: {e}"),
                })
                .await?;
                break;
            }
            let sent_items = live.state.items.len();
            live.record(EventPayload::ModelRequest {
                turn,
                input_items: live.state.items.len(),
            })
            .await?;
            let mut response = match self.call_model(agent, live, turn).await? {
                Ok(r) => r,
                Err(e) => {
                    hint = Some(e.hint_for(self.client.provider()));
                    live.record(EventPayload::RunFailed {
                        error: e.to_string(),
                    })
                    .await?;
                    break;
                }
            };
            live.reported = Some((response.usage.input_tokens, sent_items));
            live.state.make_call_ids_unique(&mut response);
            let calls = response.tool_calls();
            let text = response.text();
            let cut_off = response.cut_off().map(str::to_string);
            live.record(EventPayload::ModelResponse { turn, response })
                .await?;
            // A pause asked for during the model call takes effect before its tools run;
            // a resume runs them (they never started).
            if !calls.is_empty() && self.pause_if_asked(live).await? {
                break;
            }
            if calls.is_empty()
                && let Some(why) = cut_off
            {
                // Not a final answer: the model stopped at a limit, mid-answer.
                hint = Some(CUT_OFF_HINT.to_string());
                live.record(EventPayload::RunFailed {
                    error: format!(
                        "the run is incomplete: the model's answer was cut off before its end ({why}: it reached its output limit)"
                    ),
                })
                .await?;
                break;
            }
            if calls.is_empty() {
                match agent.output.as_ref().map(|o| o.check(&text)) {
                    Some(Err(error)) => {
                        live.record(EventPayload::OutputInvalid { error: error.0 })
                            .await?
                    }
                    checked => {
                        if self.stops_run(agent, live, Stage::Output, &text).await? {
                            break;
                        }
                        if let Some(missing) = self.collect_artifacts(live).await? {
                            live.record(EventPayload::RunFailed { error: missing })
                                .await?;
                            break;
                        }
                        structured = checked.and_then(Result::ok);
                        live.record(EventPayload::RunCompleted {
                            output: text,
                            structured: structured.clone(),
                        })
                        .await?
                    }
                }
                continue;
            }
            self.run_tools(root, agent, live, calls).await?;
        }
        if let Some(ledger) = &self.ledger {
            ledger.set(
                live.log.run_id().as_str(),
                crate::Spent::of(&live.state, root.price.as_ref()),
            );
        }
        live.flush().await?;
        let state = live.state.clone();
        Ok(RunOutcome {
            run_id: live.log.run_id().clone(),
            status: state.status,
            output: state.final_output.clone(),
            structured,
            error: state.ended_by.clone().or(live.halted.take()),
            hint,
            state,
        })
    }

    /// Compacts the conversation when the next request would pass the threshold: the model
    /// summarises the older items, and the summary is recorded (`context_compacted`).
    async fn compact(
        &self,
        agent: &Agent,
        compaction: &crate::Compaction,
        live: &mut Live<'_>,
        turn: u32,
    ) -> Result<Result<(), ModelError>, StoreError> {
        use crate::compaction as c;
        let tools: Vec<cordon_core::ToolSpec> = agent.offered().iter().map(|t| t.spec()).collect();
        let items = &live.state.items;
        let estimate = c::request_tokens(&agent.instructions, &tools, items);
        // What the provider counted last time, and what was added since, when it counted
        // more than cordon estimates.
        let measured = live.reported.map_or(0, |(tokens, held)| {
            tokens.saturating_add(items.iter().skip(held).map(c::item_tokens).sum::<u64>())
        });
        let before = estimate.max(measured);
        if before <= compaction.limit() {
            return Ok(Ok(()));
        }
        if compaction.mode == c::Mode::Server {
            return self
                .compact_on_server(agent, live, turn, before, tools)
                .await;
        }
        let fixed = c::request_tokens(&agent.instructions, &tools, &[]);
        let keep = ((compaction.context_window as f64 * compaction.keep_recent) as u64)
            .saturating_sub(fixed);
        let Some(cut) = c::cut(items, keep).filter(|&cut| c::worth_it(items, cut)) else {
            return Ok(Ok(()));
        };
        let request = c::summary_request(agent, compaction, items, cut);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let answer = self.client.respond(&request, &tx).await;
        drop(tx);
        // The summary is not shown as it streams; its retries are recorded.
        self.record_retries(live, turn, &mut rx).await?;
        let response = match answer {
            Ok(r) => r,
            Err(e) => return Ok(Err(e)),
        };
        let summary = response.text().trim().to_string();
        if summary.is_empty() {
            return Ok(Err(ModelError::Provider {
                provider: self.client.provider().name.clone(),
                message: "it answered the summary request with no text".into(),
                retryable: false,
            }));
        }
        let mut after = live.state.items.clone();
        after.splice(
            cut.kept_head..cut.kept_head + cut.replaced,
            [cordon_core::Item::text(
                cordon_core::Role::User,
                format!("{}{summary}", cordon_core::state::SUMMARY_PREFIX),
            )],
        );
        live.record(EventPayload::ContextCompacted {
            turn,
            kept_head: cut.kept_head,
            replaced: cut.replaced,
            summary,
            tokens_before: before,
            tokens_after: c::request_tokens(&agent.instructions, &tools, &after),
            usage: response.usage,
            items: None,
        })
        .await?;
        live.reported = None;
        Ok(Ok(()))
    }

    /// Records the retries of a call whose stream is not shown (a compaction's).
    async fn record_retries(
        &self,
        live: &mut Live<'_>,
        turn: u32,
        rx: &mut tokio::sync::mpsc::UnboundedReceiver<StreamEvent>,
    ) -> Result<(), StoreError> {
        while let Some(ev) = rx.recv().await {
            if let StreamEvent::Retrying {
                attempt,
                error,
                delay,
            } = ev
            {
                let error = self
                    .redactor
                    .as_ref()
                    .map_or_else(|| error.clone(), |r| r.redact(&error));
                live.record(EventPayload::ModelRetry {
                    turn,
                    attempt,
                    error,
                    delay_ms: delay.as_millis() as u64,
                })
                .await?;
            }
        }
        Ok(())
    }

    /// Server-side compaction: the provider replaces the whole conversation with the user's
    /// messages and its own encrypted compaction item; cordon records what it gave.
    async fn compact_on_server(
        &self,
        agent: &Agent,
        live: &mut Live<'_>,
        turn: u32,
        before: u64,
        tools: Vec<cordon_core::ToolSpec>,
    ) -> Result<Result<(), ModelError>, StoreError> {
        let request = ModelRequest {
            model: agent.model_name.clone(),
            instructions: Some(agent.instructions.clone()).filter(|i| !i.is_empty()),
            input: live.state.items.clone(),
            tools: Vec::new(),
            settings: Default::default(),
            output_schema: None,
        };
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let answer = self.client.compact(&request, &tx).await;
        drop(tx);
        self.record_retries(live, turn, &mut rx).await?;
        let (items, usage) = match answer {
            Ok(r) => r,
            Err(e) => return Ok(Err(e)),
        };
        let after = crate::compaction::request_tokens(&agent.instructions, &tools, &items);
        live.record(EventPayload::ContextCompacted {
            turn,
            kept_head: 0,
            replaced: live.state.items.len(),
            summary: String::new(),
            tokens_before: before,
            tokens_after: after,
            usage,
            items: Some(items),
        })
        .await?;
        live.reported = None;
        Ok(Ok(()))
    }

    /// Judges `text` at `stage` (for the tool stages, of `call`) with the agent's
    /// guardrails; the first that trips is recorded, and its name and reason returned.
    async fn judge(
        &self,
        agent: &Agent,
        live: &mut Live<'_>,
        stage: Stage,
        call: Option<&ToolCall>,
        text: &str,
    ) -> Result<Option<(String, String)>, StoreError> {
        let tool = call.map(|c| c.name.as_str());
        let Some((guardrail, reason)) =
            crate::guardrail::first_trip(&agent.guardrails, stage, tool, text).await
        else {
            return Ok(None);
        };
        live.record(EventPayload::GuardrailTripped {
            guardrail: guardrail.clone(),
            stage: stage.as_str().into(),
            call_id: call.map(|c| c.call_id.clone()),
            reason: reason.clone(),
        })
        .await?;
        Ok(Some((guardrail, reason)))
    }

    /// Judges the task, new input or the final answer; whether a guardrail tripped (then the
    /// run has failed).
    async fn stops_run(
        &self,
        agent: &Agent,
        live: &mut Live<'_>,
        stage: Stage,
        text: &str,
    ) -> Result<bool, StoreError> {
        let Some((guardrail, reason)) = self.judge(agent, live, stage, None, text).await? else {
            return Ok(false);
        };
        live.record(EventPayload::RunFailed {
            error: format!(
                "the {} guardrail '{guardrail}' tripped: {reason}",
                stage.as_str()
            ),
        })
        .await?;
        Ok(true)
    }

    /// Lists again the tools of every source that said they changed, and records each change.
    async fn refresh_tools(&self, agent: &Agent, live: &mut Live<'_>) -> Result<(), StoreError> {
        for source in &agent.sources {
            let (tools, mut error) = match source.refresh().await {
                Ok(None) => continue,
                Ok(Some(tools)) => (tools, None),
                Err(e) => (
                    source.tools().iter().map(|t| t.spec().name).collect(),
                    Some(e),
                ),
            };
            // A new name another tool has already is not offered: say so.
            let offered: std::collections::HashSet<String> =
                agent.offered().iter().map(|t| t.spec().name).collect();
            let withheld: Vec<&String> = tools.iter().filter(|t| !offered.contains(*t)).collect();
            if !withheld.is_empty() {
                let note = format!(
                    "not offered, another tool has the name: {}",
                    withheld
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                error = Some(match error {
                    Some(e) => format!("{e}; {note}"),
                    None => note,
                });
            }
            live.record(EventPayload::ToolsChanged {
                source: source.name().to_string(),
                tools,
                error,
            })
            .await?;
        }
        Ok(())
    }

    /// Collects and records the run's artifacts; why the run fails, when a required output
    /// is missing or they could not be read.
    async fn collect_artifacts(&self, live: &mut Live<'_>) -> Result<Option<String>, StoreError> {
        let Some(collector) = &self.collector else {
            return Ok(None);
        };
        let collected = match collector.collect().await {
            Ok(c) => c,
            Err(e) => {
                return Ok(Some(format!(
                    "the run's outputs could not be collected: {e}"
                )));
            }
        };
        let missing = collected.missing.clone();
        live.record(EventPayload::ArtifactsCollected {
            artifacts: collected.artifacts,
            missing: collected.missing,
            notes: collected.notes,
        })
        .await?;
        Ok((!missing.is_empty()).then(|| {
            format!(
                "the run ended without the output{} it must produce: {}",
                if missing.len() == 1 { "" } else { "s" },
                missing.join(", ")
            )
        }))
    }

    /// Stops the run here when a call could not finish (a sub-agent paused, waits, or ran
    /// out of budget), or records a pause and takes the request back when one was asked for
    /// (Ctrl-C, or `cordon pause` from any process); whether the run is to stop here.
    async fn pause_if_asked(&self, live: &mut Live<'_>) -> Result<bool, StoreError> {
        let reason = match live.halt.take() {
            // A call waits for a person: so does the run.
            Some(Halt::Wait(why)) => {
                live.halted = Some(why.clone());
                live.record(EventPayload::RunWaiting { reason: why })
                    .await?;
                return Ok(true);
            }
            // A call ran out of a budget the run shares: so does the run.
            Some(Halt::Budget {
                budget,
                limit,
                used,
                reason,
            }) => {
                live.halted = Some(reason);
                live.record(EventPayload::BudgetExceeded {
                    budget,
                    limit,
                    used,
                    asked: None,
                })
                .await?;
                return Ok(true);
            }
            Some(Halt::Pause(why)) => {
                live.halted = Some(why.clone());
                why
            }
            None => match self.pause_reason(live.log.run_id()) {
                Some(reason) => reason.to_string(),
                None => return Ok(false),
            },
        };
        live.record(EventPayload::RunPaused { reason }).await?;
        self.store.clear_pause(live.log.run_id());
        Ok(true)
    }

    /// Why the run should pause now, if it should: the stop flag, or a request through the
    /// store from any process (for this run or its tree's first run).
    fn pause_reason(&self, run_id: &RunId) -> Option<&'static str> {
        if self
            .stop
            .as_ref()
            .is_some_and(|f| f.load(std::sync::atomic::Ordering::SeqCst))
        {
            Some("interrupted by the user")
        } else if self.store.pause_requested(run_id)
            || self
                .also_pause
                .as_ref()
                .is_some_and(|root| self.store.pause_requested(root))
        {
            Some("a pause was requested")
        } else {
            None
        }
    }

    /// One model call, streaming to the observer and recording each retry as it happens.
    async fn call_model(
        &self,
        agent: &Agent,
        live: &mut Live<'_>,
        turn: u32,
    ) -> Result<Result<ModelResponse, ModelError>, StoreError> {
        let mut settings = agent.settings.clone();
        // A forced tool choice holds until the model has called a tool; then it may answer.
        let called = live
            .state
            .items
            .iter()
            .any(|i| matches!(i, cordon_core::Item::ToolCall(_)));
        if called
            && settings.reset_tool_choice.unwrap_or(true)
            && settings
                .tool_choice
                .as_deref()
                .is_some_and(|c| !matches!(c, "auto" | "none"))
        {
            settings.tool_choice = None;
        }
        // The conversation moves into the request and back after the call: nothing the
        // call records (retries) touches it, and a long run's history is not copied per turn.
        let request = ModelRequest {
            model: agent.model_name.clone(),
            instructions: Some(agent.instructions.clone()).filter(|i| !i.is_empty()),
            input: std::mem::take(&mut live.state.items),
            tools: agent.offered().iter().map(|t| t.spec()).collect(),
            settings,
            output_schema: agent.output.as_ref().map(|o| OutputSchema {
                name: "final_output".into(),
                schema: o.schema().clone(),
            }),
        };
        // Streamed text is shown with the run's secrets replaced, even when one arrives split
        // across pieces.
        let mut shown = self.redactor.as_ref().map(|r| r.stream());
        let mut retries = Vec::new();
        // Streamed events wait here until what came before them is shown.
        let held: std::sync::Mutex<Option<Vec<StreamEvent>>> =
            std::sync::Mutex::new(Some(Vec::new()));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let answer = async {
            let call = self.client.respond(&request, &tx);
            tokio::pin!(call);
            let result = loop {
                tokio::select! {
                    biased;
                    Some(ev) = rx.recv() => self.on_stream(ev, &mut shown, &mut retries, &held),
                    r = &mut call => break r,
                }
            };
            while let Ok(ev) = rx.try_recv() {
                self.on_stream(ev, &mut shown, &mut retries, &held);
            }
            result
        };
        // What came before the request is stored while the model answers; its answer is
        // recorded only after.
        let (log, unseen, observer) = (&mut live.log, &mut live.unseen, live.observer);
        let store = async {
            let stored = Live::store_and_show(log, unseen, observer).await;
            if let Some(waiting) = take_held(&held) {
                for ev in &waiting {
                    observer.on_stream(ev);
                }
            }
            stored
        };
        let (stored, result) = tokio::join!(store, answer);
        if let Some(waiting) = take_held(&held) {
            for ev in &waiting {
                self.observer.on_stream(ev);
            }
        }
        let outcome = stored.map(|()| result);
        live.state.items = request.input;
        let result = outcome?;
        for (attempt, error, delay) in retries {
            live.record(EventPayload::ModelRetry {
                turn,
                attempt,
                error,
                delay_ms: delay.as_millis() as u64,
            })
            .await?;
        }
        if let Some(rest) = shown.as_mut().map(|s| s.finish())
            && !rest.is_empty()
        {
            self.observer.on_stream(&StreamEvent::TextDelta(rest));
        }
        Ok(result)
    }

    /// Shows a streamed event (text with secrets replaced), or holds it while what came
    /// before is not shown yet; keeps retries to record.
    fn on_stream(
        &self,
        ev: StreamEvent,
        shown: &mut Option<cordon_core::StreamRedactor>,
        retries: &mut Vec<(u32, String, Duration)>,
        held: &std::sync::Mutex<Option<Vec<StreamEvent>>>,
    ) {
        let show = |ev: StreamEvent| {
            let mut held = held.lock().unwrap_or_else(|e| e.into_inner());
            match held.as_mut() {
                Some(waiting) => waiting.push(ev),
                None => {
                    drop(held);
                    self.observer.on_stream(&ev)
                }
            }
        };
        match ev {
            StreamEvent::TextDelta(t) => {
                let visible = match shown.as_mut() {
                    Some(s) => s.push(&t),
                    None => t,
                };
                if !visible.is_empty() {
                    show(StreamEvent::TextDelta(visible));
                }
            }
            StreamEvent::Retrying {
                attempt,
                error,
                delay,
            } => {
                let error = self
                    .redactor
                    .as_ref()
                    .map_or_else(|| error.clone(), |r| r.redact(&error));
                show(StreamEvent::Retrying {
                    attempt,
                    error: error.clone(),
                    delay,
                });
                retries.push((attempt, error, delay));
            }
            other => show(other),
        }
    }

    /// Records every call's intent, then runs them all at once (see [`Runner::execute`]).
    async fn run_tools(
        &self,
        root: &Agent,
        agent: &Agent,
        live: &mut Live<'_>,
        calls: Vec<ToolCall>,
    ) -> Result<(), StoreError> {
        // A batch that would break a budget does not start at all; one that fits takes its
        // room in the tree's budgets at once.
        let (spent, elapsed) = self.spent(root, live);
        let overrun = match &self.ledger {
            Some(ledger) => ledger.take_batch(
                live.log.run_id().as_str(),
                crate::Spent::of(&live.state, root.price.as_ref()),
                calls.len(),
                &root.budgets,
                elapsed,
            ),
            None => crate::budget::before_tools(&root.budgets, &spent, calls.len(), elapsed),
        };
        if let Some(overrun) = overrun {
            return live.overrun(overrun, Some(calls.len() as u64)).await;
        }
        // The policy judges every call, and each decision is recorded. A denied call does not
        // run; the model is told which rule refused it. Calls that need a person wait, and
        // so does their whole batch. A rejection always wins; then an approval of these exact
        // arguments; then "always" approvals, which cover a call only when every rule that
        // asked was approved.
        let mut ready = Vec::new();
        let mut waiting = Vec::new();
        for call in calls {
            let class =
                crate::approval::risk_class(agent.find_tool(&call.name).map(|t| t.judged_as()));
            let mut decision = root.gate().decide_call(&call.name, &call.input, class);
            // The rules a waiting call was asked under: only an approval of those lets it
            // run, whatever rules ask for it now.
            let asked_under = live
                .state
                .awaiting
                .get(&call.call_id)
                .map(|w| w.rules.clone());
            // A call that waits for a person keeps waiting, whatever policy the run is under
            // now: another policy given on resume judges new calls, it does not approve.
            if decision.verdict == Verdict::Allow
                && let Some(waiting) = live.state.awaiting.get(&call.call_id)
            {
                decision.verdict = Verdict::Ask;
                decision
                    .reasons
                    .extend(waiting.rules.iter().map(|rule| cordon_policy::Reason {
                        rule: rule.clone(),
                        verdict: Verdict::Ask,
                        subject: "a call that was waiting for a person".into(),
                        why: Some("asked before; only a person's decision lets it run".into()),
                        approvers: waiting.approvers.clone(),
                        at: None,
                    }));
            }
            live.record(EventPayload::PolicyDecision {
                call_id: call.call_id.clone(),
                tool: call.name.clone(),
                verdict: decision.verdict.to_string(),
                class: decision.class.to_string(),
                rules: decision.deciding_keys(),
                summary: decision.summary(),
            })
            .await?;
            match decision.verdict {
                Verdict::Allow => {
                    ready.push(call);
                    continue;
                }
                Verdict::Deny => {
                    live.record(EventPayload::ToolResult {
                        call_id: call.call_id.clone(),
                        tool: call.name.clone(),
                        output: format!(
                            "error: the policy refused this call ({}). Do not retry it; find another way or explain to the user what is needed.",
                            decision.summary()
                        ),
                        images: Vec::new(),
                        is_error: true,
                        duration_ms: 0,
                        not_run: true,
                    })
                    .await?;
                    continue;
                }
                Verdict::Ask => {}
            }
            let rules = decision.deciding_keys();
            let hash = cordon_core::event::arguments_hash(&call.input);
            if let Some((by, message)) = live.state.rejected.get(&call.call_id).cloned() {
                let why = if message.is_empty() {
                    String::new()
                } else {
                    format!(": {message}")
                };
                live.record(EventPayload::ToolResult {
                    call_id: call.call_id.clone(),
                    tool: call.name.clone(),
                    output: format!("error: a person ({by}) rejected this call{why}"),
                    images: Vec::new(),
                    is_error: true,
                    duration_ms: 0,
                    not_run: true,
                })
                .await?;
            } else if live.state.approved.get(&call.call_id) == Some(&hash)
                || asked_under
                    .as_ref()
                    .unwrap_or(&rules)
                    .iter()
                    .all(|r| live.state.always_approved.contains(r))
            {
                ready.push(call);
            } else {
                waiting.push((call, hash, rules, decision.approvers()));
            }
        }
        if !waiting.is_empty() {
            for (call, hash, rules, approvers) in waiting {
                live.record(EventPayload::ApprovalRequested {
                    call_id: call.call_id,
                    tool: call.name,
                    arguments: call.input,
                    arguments_hash: hash,
                    rules,
                    approvers,
                })
                .await?;
            }
            return Ok(());
        }
        // Tool-call guardrails judge each call's arguments before it runs.
        let mut calls = Vec::new();
        for call in ready {
            match self
                .judge(agent, live, Stage::ToolCall, Some(&call), &call.input)
                .await?
            {
                None => calls.push(call),
                Some((guardrail, reason)) => {
                    live.record(EventPayload::ToolResult {
                        call_id: call.call_id.clone(),
                        tool: call.name.clone(),
                        output: format!(
                            "error: the guardrail '{guardrail}' refused this call: {reason}. Do not retry it as it is."
                        ),
                        images: Vec::new(),
                        is_error: true,
                        duration_ms: 0,
                        not_run: true,
                    })
                    .await?;
                }
            }
        }
        // Handoffs are made by the runner, after the batch's other calls have their results.
        let (handoffs, calls): (Vec<ToolCall>, Vec<ToolCall>) = calls
            .into_iter()
            .partition(|c| agent.handoffs.iter().any(|h| h.tool_name() == c.name));
        let run_id = live.log.run_id().clone();
        for call in &calls {
            live.record(EventPayload::ToolCallIntent {
                call_id: call.call_id.clone(),
                tool: call.name.clone(),
                arguments: call.input.clone(),
                idempotency_key: format!("{run_id}/{}", call.call_id),
            })
            .await?;
        }
        self.execute(root, agent, live, calls).await?;
        self.hand_off(agent, live, handoffs).await?;
        // A request the policy leaves to a person was refused for now: the run waits for
        // the person (`cordon approve RUN --host HOST`, then `cordon resume`).
        if !live.asked_hosts.is_empty() {
            let hosts: Vec<String> = std::mem::take(&mut live.asked_hosts)
                .into_iter()
                .filter(|h| !live.state.granted_hosts.contains(h))
                .collect();
            if !hosts.is_empty() {
                live.record(EventPayload::HostRequested { hosts }).await?;
            }
        }
        Ok(())
    }

    /// Makes the first handoff of a batch (the others are refused): answers its call, then
    /// records `handed_off`, whose filter the state applies. A batch that could not finish
    /// (a call suspended) hands off when the run is resumed.
    async fn hand_off(
        &self,
        agent: &Agent,
        live: &mut Live<'_>,
        calls: Vec<ToolCall>,
    ) -> Result<(), StoreError> {
        if live.halt.is_some() {
            return Ok(());
        }
        let mut calls = calls.into_iter();
        let Some(call) = calls.next() else {
            return Ok(());
        };
        let Some(handoff) = agent.handoffs.iter().find(|h| h.tool_name() == call.name) else {
            return Ok(());
        };
        for other in calls {
            live.record(EventPayload::ToolResult {
                call_id: other.call_id,
                tool: other.name,
                output: format!(
                    "error: only one handoff is made per turn; the conversation went to '{}', and this one was not made",
                    handoff.agent
                ),
                images: Vec::new(),
                is_error: true,
                duration_ms: 0,
                not_run: true,
            })
            .await?;
        }
        live.record(EventPayload::ToolResult {
            call_id: call.call_id.clone(),
            tool: call.name.clone(),
            output: format!("Transferred to '{}'.", handoff.agent),
            images: Vec::new(),
            is_error: false,
            duration_ms: 0,
            not_run: false,
        })
        .await?;
        let reason = crate::handoff::reason(&call.input);
        let (kept_from, noted) = handoff.history.kept_from(&live.state);
        let note = noted.then(|| {
            format!(
                "[cordon] The agent '{}' handed this conversation to you{}.",
                agent.name,
                reason
                    .as_deref()
                    .map(|r| format!(", saying: {}", r.trim_end_matches('.')))
                    .unwrap_or_default()
            )
        });
        live.record(EventPayload::HandedOff {
            call_id: call.call_id,
            from: agent.name.clone(),
            to: handoff.agent.clone(),
            reason,
            history: handoff.history.describe(),
            kept_from,
            note,
        })
        .await
    }

    /// Runs calls whose intents are recorded, concurrently, each in its own task (a panic stays
    /// in its call); records each result in the model's order; then one checkpoint for the
    /// batch if any call may have changed the workspace.
    async fn execute(
        &self,
        root: &Agent,
        agent: &Agent,
        live: &mut Live<'_>,
        calls: Vec<ToolCall>,
    ) -> Result<(), StoreError> {
        let run_id = live.log.run_id().clone();
        let calls: Vec<(ToolCall, Option<Arc<dyn cordon_tools::Tool>>)> = calls
            .into_iter()
            .map(|c| {
                let tool = root.team_tool(agent, &c.name);
                (c, tool)
            })
            .collect();
        let changed = calls
            .iter()
            .any(|(_, t)| t.as_ref().is_some_and(|t| t.changes_workspace()));
        // A call that may act is on disk (its intent, and all before it) before it runs;
        // calls that only read run at once, and are stored with the next step.
        let acts = calls
            .iter()
            .any(|(_, t)| t.as_ref().is_none_or(|t| t.effects() != Effects::None));
        if acts {
            live.flush().await?;
        }
        let tasks: Vec<_> = calls
            .into_iter()
            .map(|(call, tool)| {
                let task = tokio::spawn(call_tool(agent, tool, &run_id, &call));
                (call, task)
            })
            .collect();
        for (call, task) in tasks {
            let (result, elapsed) = joined(&call, task.await);
            let (mut output, mut images, mut is_error) = match result {
                Ok(out) => (out.text, out.images, false),
                // Not answered: the run pauses, and a resume runs the call again.
                Err(ToolError::Suspended(why)) => {
                    live.suspend(&call, Halt::Pause(why)).await?;
                    continue;
                }
                Err(ToolError::Waiting(why)) => {
                    live.suspend(&call, Halt::Wait(why)).await?;
                    continue;
                }
                Err(ToolError::OutOfBudget {
                    budget,
                    limit,
                    used,
                    reason,
                }) => {
                    let halt = Halt::Budget {
                        budget,
                        limit,
                        used,
                        reason,
                    };
                    live.suspend(&call, halt).await?;
                    continue;
                }
                Err(e) => (format!("error: {e}"), Vec::new(), true),
            };
            // Tool-result guardrails judge what the model would read.
            if let Some((guardrail, reason)) = self
                .judge(agent, live, Stage::ToolResult, Some(&call), &output)
                .await?
            {
                output = format!(
                    "error: the call ran, and the guardrail '{guardrail}' withheld its result: {reason}"
                );
                images.clear();
                is_error = true;
            }
            live.record(EventPayload::ToolResult {
                call_id: call.call_id,
                tool: call.name,
                output,
                images,
                is_error,
                duration_ms: elapsed.as_millis() as u64,
                not_run: false,
            })
            .await?;
        }
        if changed {
            self.checkpoint(live).await?;
        }
        Ok(())
    }

    /// Snapshots the workspace and records the checkpoint. A failed checkpoint does not stop
    /// the run: resume then starts from the one before.
    async fn checkpoint(&self, live: &mut Live<'_>) -> Result<(), StoreError> {
        let Some(c) = &self.checkpointer else {
            return Ok(());
        };
        // What the checkpoint captures the effect of is stored first: a crash while the
        // workspace is read leaves a log that says these calls finished.
        live.flush().await?;
        match c.checkpoint().await {
            Ok(info) => {
                live.record(EventPayload::Checkpoint {
                    snapshot_id: info.snapshot_id,
                    files_read: info.files_read,
                    bytes_read: info.bytes_read,
                    skipped: info.skipped,
                    skipped_count: info.skipped_count,
                })
                .await
            }
            Err(e) => {
                tracing::warn!(error = %e, "checkpoint failed; the run goes on without it");
                Ok(())
            }
        }
    }

    /// Puts back into the restored workspace what calls that finished after its checkpoint
    /// did: calls confined to the workspace run again, silently (their recorded results stay
    /// what the model saw); the model is told about the others. Then a checkpoint.
    async fn replay(&self, root: &Agent, live: &mut Live<'_>) -> Result<(), StoreError> {
        let run_id = live.log.run_id().clone();
        let mut replayed = false;
        let mut undone = Vec::new();
        let agent = root.active(live.state.active_agent.as_deref());
        for (call_id, tool) in live.state.since_checkpoint.clone() {
            let found = root.team_tool(agent, &tool);
            let effects = found.as_ref().map(|t| t.effects());
            let call = find_call(&live.state, &call_id);
            match (effects, call) {
                (None | Some(Effects::None), _) => {}
                (Some(Effects::Workspace), Some(call)) => {
                    let (result, elapsed) = joined(
                        &call,
                        tokio::spawn(call_tool(agent, found, &run_id, &call)).await,
                    );
                    let recorded = live.state.items.iter().find_map(|i| match i {
                        cordon_core::Item::ToolResult(r) if r.call_id == call_id => {
                            Some(r.output.as_str())
                        }
                        _ => None,
                    });
                    let (is_error, same_output) = match &result {
                        Ok(out) => (false, recorded == Some(out.text.as_str())),
                        Err(e) => (true, recorded == Some(format!("error: {e}").as_str())),
                    };
                    live.record(EventPayload::ToolReplayed {
                        call_id,
                        tool,
                        is_error,
                        same_output,
                        duration_ms: elapsed.as_millis() as u64,
                    })
                    .await?;
                    replayed = true;
                }
                (Some(Effects::External | Effects::Workspace), _) => undone.push(call_id),
            }
        }
        if replayed {
            self.checkpoint(live).await?;
        }
        if !undone.is_empty() {
            live.record(EventPayload::UserInput {
                text: format!(
                    "[cordon] The run stopped and was resumed from a checkpoint taken before these calls finished: {}. Whatever they changed in the workspace was undone; they were not run again because they may act outside the workspace. Check the workspace before relying on their results.",
                    undone.join(", ")
                ),
            })
            .await?;
        }
        Ok(())
    }

    /// Continues a run that stopped: after a crash (its log simply ends), a provider failure,
    /// or a budget (raise it first). The caller has restored the workspace from
    /// `from_checkpoint`. First the calls that finished after that checkpoint are replayed
    /// (see [`Effects`]), so the workspace is where the log says it was. A recorded model
    /// response is never requested again: calls it asked for that never started run now. A
    /// call that was running when the run stopped runs again unless its tool may act outside
    /// the workspace; then the model is told it was interrupted.
    pub async fn resume(
        &self,
        agent: &Agent,
        run_id: &RunId,
        how: Resumption,
    ) -> Result<RunOutcome, RunError> {
        agent.check()?;
        // One process drives a run at a time; a second resume is refused, not interleaved.
        let _owner = self.store.claim_run(run_id)?;
        // A resume is a decision to go on: a pause asked for earlier no longer stands.
        self.store.clear_pause(run_id);
        let events = self.store.events(run_id).await?;
        let state =
            RunState::fold(&events).map_err(|e| RunError::Corrupt(format!("run {run_id}: {e}")))?;
        if state.status == RunStatus::Completed {
            return Err(RunError::Finished(run_id.to_string()));
        }
        let started = events.first().and_then(|e| {
            time::OffsetDateTime::parse(&e.ts, &time::format_description::well_known::Rfc3339).ok()
        });
        let mut log = self.store.open_run(run_id).await?;
        if let Some(r) = &self.redactor {
            log.set_redactor(r.clone());
        }
        let mut live = Live {
            log,
            state,
            observer: self.observer.as_ref(),
            started,
            unseen: Vec::new(),
            network: self.network.as_deref(),
            asked_hosts: Default::default(),
            reported: None,
            halt: None,
            halted: None,
        };
        let result = self.continue_run(agent, &mut live, how).await;
        settle(&mut live, result).await
    }

    /// A resumed run's first steps (replay, interrupted and unstarted calls), then the loop.
    async fn continue_run(
        &self,
        agent: &Agent,
        live: &mut Live<'_>,
        how: Resumption,
    ) -> Result<RunOutcome, RunError> {
        let Resumption {
            from_checkpoint,
            raised,
            input,
            workspace,
            restored,
            notes,
            policy_replaced,
        } = how;
        live.record(EventPayload::RunResumed {
            from_checkpoint,
            raised,
            workspace,
            restored,
            sandbox: self.sandbox.clone(),
            notes,
            policy: policy_replaced
                .then(|| agent.policy_in_force().record())
                .flatten(),
        })
        .await?;
        for event in &self.at_start {
            live.record(event.clone()).await?;
        }
        live.flush().await?;
        // Calls after the checkpoint are put back only into a workspace restored from it: one
        // the run goes on in as it was has them already.
        if restored {
            self.replay(agent, live).await?;
        }
        // Calls that were running: those that can run again, after the restore, do; the model
        // hears that the others were interrupted.
        let mut again = Vec::new();
        let active = agent.active(live.state.active_agent.as_deref());
        for p in live.state.pending.clone() {
            let effects = agent.team_tool(active, &p.tool).map(|t| t.effects());
            // A call left unanswered on purpose runs again, whatever it may act on.
            let suspended = live.state.suspended.contains(&p.call_id) && effects.is_some();
            match find_call(&live.state, &p.call_id) {
                Some(call)
                    if suspended || matches!(effects, Some(Effects::None | Effects::Workspace)) =>
                {
                    again.push(call)
                }
                _ => {
                    live.record(EventPayload::ToolResult {
                        call_id: p.call_id.clone(),
                        tool: p.tool.clone(),
                        output: "error: interrupted: this call was running when the run stopped, and it may act outside the workspace, so it was not run again. The workspace was restored to the last checkpoint, which undid whatever the call had changed in it. Run it again if it is still needed.".into(),
                        images: Vec::new(),
                        is_error: true,
                        duration_ms: 0,
                        not_run: true,
                    })
                    .await?
                }
            }
        }
        if !again.is_empty() {
            self.execute(agent, active, live, again).await?;
        }
        let unstarted = live.state.unstarted_calls();
        if !unstarted.is_empty() && live.halt.is_none() {
            self.run_tools(agent, active, live, unstarted).await?;
        }
        // New input goes after the answers to every call, right before the next model call.
        if let Some(text) = input
            && live.state.status == RunStatus::Running
        {
            live.record(EventPayload::UserInput { text: text.clone() })
                .await?;
            // New input is judged like a task.
            live.flush().await?;
            self.stops_run(agent, live, Stage::Input, &text).await?;
        }
        self.drive(agent, live).await
    }
}

/// Why a run stops at its next step boundary because a call could not finish.
enum Halt {
    /// What the call ran paused.
    Pause(String),
    /// What the call ran waits for a person.
    Wait(String),
    /// What the call ran stopped at a budget the run shares.
    Budget {
        budget: String,
        limit: f64,
        used: f64,
        reason: String,
    },
}

impl Halt {
    /// What the call's `tool_suspended` says.
    fn reason(&self) -> &str {
        match self {
            Halt::Pause(r) | Halt::Wait(r) | Halt::Budget { reason: r, .. } => r,
        }
    }

    /// Which of several stands.
    fn rank(&self) -> u8 {
        match self {
            Halt::Pause(_) => 0,
            Halt::Wait(_) => 1,
            Halt::Budget { .. } => 2,
        }
    }
}

/// When the store itself failed mid-run, records that the run failed, if the store still
/// takes one small event: the log then says why it ends there.
async fn settle(
    live: &mut Live<'_>,
    result: Result<RunOutcome, RunError>,
) -> Result<RunOutcome, RunError> {
    if let Err(RunError::Store(e)) = &result {
        // What could not be stored is let go (the log then ends where the store does),
        // so that the one small event saying why has the best chance to be stored.
        live.log.discard_pending();
        let _ = live
            .record(EventPayload::RunFailed {
                error: format!("the run store failed: {e}"),
            })
            .await;
    }
    // Whatever happened, what was recorded is stored (if the store still takes it).
    let flushed = live.flush().await;
    match (result, flushed) {
        (Ok(_), Err(e)) => Err(RunError::Store(e)),
        (result, _) => result,
    }
}

/// The streamed events held back so far, and no more holding from now on.
fn take_held(held: &std::sync::Mutex<Option<Vec<StreamEvent>>>) -> Option<Vec<StreamEvent>> {
    held.lock().unwrap_or_else(|e| e.into_inner()).take()
}

/// Runs one call of `agent`'s, timing it.
fn call_tool(
    agent: &Agent,
    tool: Option<Arc<dyn cordon_tools::Tool>>,
    run_id: &RunId,
    call: &ToolCall,
) -> impl std::future::Future<Output = (Result<ToolOutput, ToolError>, Duration)> + Send + 'static {
    let ctx = ToolContext {
        run_id: run_id.clone(),
        call_id: call.call_id.clone(),
        idempotency_key: format!("{run_id}/{}", call.call_id),
    };
    // Only an unknown name needs the list, to say what there is.
    let available: Vec<String> = match tool {
        Some(_) => Vec::new(),
        None => agent.offered().iter().map(|t| t.spec().name).collect(),
    };
    let (name, input) = (call.name.clone(), call.input.clone());
    async move {
        let started = Instant::now();
        let result = match &tool {
            Some(t) => t.call(&ctx, &input).await,
            None => {
                // A hostile or broken answer can carry a name of any length.
                let shown: String = name.chars().take(80).collect();
                let cut = if shown.len() < name.len() { "…" } else { "" };
                Err(ToolError::Failed(format!(
                    "there is no tool named '{shown}{cut}'; the available tools are: {}",
                    available.join(", ")
                )))
            }
        };
        (result, started.elapsed())
    }
}

/// A tool task's result; a panic in the tool becomes an error for the model.
fn joined(
    call: &ToolCall,
    joined: Result<(Result<ToolOutput, ToolError>, Duration), tokio::task::JoinError>,
) -> (Result<ToolOutput, ToolError>, Duration) {
    joined.unwrap_or_else(|e| {
        tracing::error!(tool = %call.name, error = %e, "a tool call crashed");
        (
            Err(ToolError::Failed(
                "the tool crashed; this is a bug in the tool, not in your call".into(),
            )),
            Duration::default(),
        )
    })
}

/// The call with this id, as the model made it.
fn find_call(state: &RunState, call_id: &str) -> Option<ToolCall> {
    state.items.iter().find_map(|i| match i {
        cordon_core::Item::ToolCall(c) if c.call_id == call_id => Some(c.clone()),
        _ => None,
    })
}
