//! Agent definitions: what a run's agent is (name, model, instructions, tools by name,
//! settings, output schema, budgets, approvals), written as a TOML agent file or built in
//! code, and turned into the harness's [`Agent`] with tools from a [`Registry`].
//!
//! ```toml
//! name = "arithmetic"
//! model = "openai:gpt-5-mini"            # optional; the run request or config can name one
//! instructions = "Use the calculator for every sum."
//! max_turns = 10
//! tools = ["calculator", "current_time"]
//!
//! [model_settings]                       # optional: temperature, top_p, max_output_tokens,
//! temperature = 0.2                      # parallel_tool_calls, reasoning_effort, tool_choice,
//!                                        # store, extra
//! [output]                               # optional: the final answer must match a schema
//! schema = { type = "object", required = ["answer"], properties = { answer = { type = "number" } } }
//! # or: schema_file = "answer.schema.json" (relative to this file)
//! ```

use crate::SessionError;
use cordon_harness::Agent;
use cordon_model::ModelSettings;
use cordon_tools::{Registry, Tool};
use serde::Deserialize;
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;

/// The instructions of the agent used when none is given.
const DEFAULT_INSTRUCTIONS: &str =
    "You are a careful assistant. Use the tools when they help, and answer concisely.";

/// An agent, as written in an agent file or built in code.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSpec {
    /// The agent's name.
    pub name: String,
    /// `PROVIDER:MODEL`, unless the run request names one.
    #[serde(default)]
    pub model: Option<String>,
    /// The operator's instructions to the model.
    #[serde(default)]
    pub instructions: String,
    /// The most model calls a run may make.
    #[serde(default)]
    pub max_turns: Option<u32>,
    /// The tools offered, by their names in the registry.
    #[serde(default)]
    pub tools: Vec<String>,
    /// Temperature and the other model settings.
    #[serde(default)]
    pub model_settings: ModelSettings,
    /// The `[output]` section of an agent file (see [`AgentSpec::output_schema`]).
    #[serde(default)]
    output: Option<OutputSection>,
    /// The JSON schema the final answer must match.
    #[serde(skip)]
    pub output_schema: Option<Value>,
    /// Budgets beyond `max_turns`.
    #[serde(default)]
    pub budgets: cordon_harness::Budgets,
    /// Which tool calls wait for a person.
    #[serde(default)]
    pub approvals: cordon_harness::ApprovalRules,
    /// What checkpoints of the run's workspace leave out (joined with the manifest's).
    #[serde(default)]
    pub checkpoints: cordon_core::CheckpointRules,
    /// The policy, as the agent file names it: a file (relative to the agent file) or a
    /// pack built into cordon.
    #[serde(default, rename = "policy")]
    pub policy_name: Option<String>,
    /// The policy the agent's calls are under (read from `policy` by [`AgentSpec::load`]);
    /// none: everything runs but what `[approvals]` names.
    #[serde(skip)]
    pub policy: Option<cordon_policy::Policy>,
    /// MCP servers whose tools the agent is offered, by name (`[mcp_servers.NAME]`).
    #[serde(default)]
    pub mcp_servers: std::collections::BTreeMap<String, cordon_mcp::ServerSpec>,
    /// Skills: host folders to place, and where in the workspace (`[skills]`).
    #[serde(default)]
    pub skills: Option<crate::skills::SkillsSection>,
    /// What skill `paths` are relative to (the agent file's folder; else the current one).
    #[serde(skip)]
    pub skills_base: Option<std::path::PathBuf>,
    /// The skills a run recorded (for its resume).
    #[serde(skip)]
    pub(crate) placed_skills: Option<Vec<crate::skills::Skill>>,
    /// When the conversation is compacted (`[compaction]`).
    #[serde(default)]
    pub compaction: Option<CompactionSection>,
    /// The compaction a run recorded (for its resume).
    #[serde(skip)]
    pub(crate) recorded_compaction: Option<cordon_harness::Compaction>,
    /// Checks on the task, the answer, tool calls and results (`[[guardrails]]`).
    #[serde(default)]
    pub guardrails: Vec<crate::guardrails::GuardrailSpec>,
    /// Agents the conversation may be handed to, as written (`[[handoffs]]`).
    #[serde(default, rename = "handoffs")]
    pub handoff_sections: Vec<crate::team::HandoffSection>,
    /// Agents offered as tools, as written (`[[agent_tools]]`).
    #[serde(default, rename = "agent_tools")]
    pub agent_tool_sections: Vec<crate::team::AgentToolSection>,
    /// The most sub-agents that run at once (default 4).
    #[serde(default)]
    pub max_parallel_agents: Option<u32>,
    /// The handoffs, resolved to the team's agents (by [`AgentSpec::load`], or as recorded).
    #[serde(skip)]
    pub handoffs: Vec<cordon_harness::Handoff>,
    /// The team's other agents, which the handoffs reach.
    #[serde(skip)]
    pub members: Vec<AgentSpec>,
    /// The agents offered as tools, resolved.
    #[serde(skip)]
    pub agent_tools: Vec<crate::team::AgentTool>,
}

/// The `[compaction]` section of an agent file. By default a run compacts when the model's
/// context window is known (from this section, the config's `[context_windows]`, or the
/// models cordon knows).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompactionSection {
    /// `false` turns compaction off.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// The model's context window, in tokens.
    #[serde(default)]
    pub context_window: Option<u64>,
    /// The share of the window a request may reach (default 0.8).
    #[serde(default)]
    pub threshold: Option<f64>,
    /// The share of the window kept verbatim after a compaction (default 0.25).
    #[serde(default)]
    pub keep_recent: Option<f64>,
    /// Instructions for writing the summary, instead of cordon's.
    #[serde(default)]
    pub instructions: Option<String>,
    /// `summary` (cordon's, the default) or `server` (the provider's own, on the Responses
    /// API).
    #[serde(default)]
    pub mode: Option<cordon_harness::compaction::Mode>,
}

impl CompactionSection {
    /// The compaction for a model whose window is `known` (when cordon knows it), or `None`
    /// when it is off or no window is known.
    pub fn resolve(&self, known: Option<u64>) -> Option<cordon_harness::Compaction> {
        if self.enabled == Some(false) {
            return None;
        }
        let mut c = cordon_harness::Compaction::new(self.context_window.or(known)?);
        if let Some(t) = self.threshold {
            c.threshold = t;
        }
        if let Some(k) = self.keep_recent {
            c.keep_recent = k;
        }
        c.instructions = self.instructions.clone();
        c.mode = self.mode.unwrap_or_default();
        Some(c)
    }
}

/// The `[output]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct OutputSection {
    #[serde(default)]
    schema: Option<Value>,
    #[serde(default)]
    schema_file: Option<String>,
}

impl AgentSpec {
    /// An agent called `name` with `instructions` and no tools.
    pub fn new(name: &str, instructions: &str) -> Self {
        AgentSpec {
            name: name.to_string(),
            model: None,
            instructions: instructions.to_string(),
            max_turns: None,
            tools: Vec::new(),
            model_settings: ModelSettings::default(),
            output: None,
            output_schema: None,
            budgets: cordon_harness::Budgets::default(),
            approvals: cordon_harness::ApprovalRules::default(),
            checkpoints: cordon_core::CheckpointRules::default(),
            policy_name: None,
            policy: None,
            mcp_servers: Default::default(),
            skills: None,
            skills_base: None,
            placed_skills: None,
            compaction: None,
            recorded_compaction: None,
            guardrails: Vec::new(),
            handoff_sections: Vec::new(),
            agent_tool_sections: Vec::new(),
            max_parallel_agents: None,
            handoffs: Vec::new(),
            members: Vec::new(),
            agent_tools: Vec::new(),
        }
    }

    /// The agent used when none is given: every tool in `registry`.
    pub fn default_agent(registry: &Registry) -> Self {
        AgentSpec {
            tools: registry.names(),
            ..AgentSpec::new("cordon", DEFAULT_INSTRUCTIONS)
        }
    }

    /// Offers these tools too, by name.
    pub fn tools<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        self.tools.extend(names.into_iter().map(Into::into));
        self
    }

    /// Whether a run of this agent needs a sandbox: a tool of `registry` that runs in one,
    /// an MCP server that does (one not declared `trusted`), a command guardrail, or an
    /// agent of its team that works in it. Unknown tools are an error.
    pub fn needs_sandbox(&self, registry: &Registry) -> Result<bool, cordon_tools::RegistryError> {
        let servers = self
            .mcp_servers
            .values()
            .any(|s| s.runs() == cordon_mcp::Runs::Sandbox);
        let commands = self.guardrails.iter().any(|g| g.command.is_some());
        // The team's other agents work in the run's sandbox; a sub-agent in the parent's
        // workspace too, and a copy is made from the parent's checkpoints.
        let mut team = false;
        for member in &self.members {
            team |= member.needs_sandbox(registry)?;
        }
        for t in &self.agent_tools {
            team |= match t.workspace {
                crate::team::WorkspaceMode::Shared => registry.needs_sandbox(&t.agent.tools)?,
                crate::team::WorkspaceMode::Copy => true,
                crate::team::WorkspaceMode::Manifest => false,
            };
        }
        Ok(registry.needs_sandbox(&self.tools)? || servers || commands || team)
    }

    /// The compaction a new run of this agent uses with the model `model_name` (whose window
    /// is `window`, when known) at `provider`: none when it is off, or when no window is
    /// known and the agent file does not ask for it; checked.
    pub(crate) fn compaction_for(
        &self,
        model_name: &str,
        window: Option<u64>,
        provider: &cordon_model::ProviderConfig,
        origin: &str,
    ) -> Result<Option<cordon_harness::Compaction>, SessionError> {
        let asked = self
            .compaction
            .as_ref()
            .is_some_and(|c| c.enabled != Some(false));
        let Some(c) = self.compaction.clone().unwrap_or_default().resolve(window) else {
            if asked {
                return Err(SessionError::bad_input(
                    format!(
                        "{origin}: [compaction] is set, and no context window is known for the model {model_name}"
                    ),
                    format!(
                        "give [compaction] context_window, or [context_windows] \"{model_name}\" = TOKENS in the config"
                    ),
                ));
            }
            return Ok(None);
        };
        if c.mode == cordon_harness::compaction::Mode::Server
            && provider.api != cordon_model::Api::Responses
        {
            return Err(SessionError::bad_input(
                format!(
                    "{origin}: [compaction] mode = \"server\" needs a Responses API provider, and {} speaks Chat Completions",
                    provider.name
                ),
                "leave out `mode` to compact by summary, which works with every provider",
            ));
        }
        if let Some(problem) = c.problem() {
            return Err(SessionError::bad_input(
                format!("{origin}: [compaction] {problem}"),
                "context_window is in tokens; threshold and keep_recent are shares of it, like 0.8 and 0.25",
            ));
        }
        Ok(Some(c))
    }

    /// What is wrong with the agent's limits, if anything: `max_turns = 0`, a budget of 0,
    /// a cost that is not a positive number.
    pub fn limits_problem(&self) -> Option<String> {
        if self.max_turns == Some(0) {
            return Some("max_turns is 0".into());
        }
        let b = &self.budgets;
        for (name, v) in [
            ("max_tool_calls", b.max_tool_calls),
            ("max_input_tokens", b.max_input_tokens),
            ("max_output_tokens", b.max_output_tokens),
            ("max_wall_time_secs", b.max_wall_time_secs),
        ] {
            if v == Some(0) {
                return Some(format!("budgets.{name} is 0"));
            }
        }
        match b.max_cost_usd {
            Some(c) if !(c.is_finite() && c > 0.0) => Some(format!(
                "budgets.max_cost_usd is {c}; it must be more than 0"
            )),
            _ => None,
        }
    }

    /// Reads and checks an agent file, and the agent files its handoffs and agent tools
    /// name.
    pub fn load(path: &Path) -> Result<AgentSpec, SessionError> {
        let mut spec = AgentSpec::load_one(path)?;
        crate::team::load(&mut spec, path)?;
        Ok(spec)
    }

    /// Reads and checks one agent file (not the files it names).
    pub(crate) fn load_one(path: &Path) -> Result<AgentSpec, SessionError> {
        let shown = path.display();
        let text = std::fs::read_to_string(path).map_err(|e| {
            SessionError::bad_input(
                format!("cannot read the agent file {shown}: {e}"),
                "check the path given to --agent",
            )
        })?;
        let mut spec: AgentSpec = toml::from_str(&text).map_err(|e| {
            SessionError::bad_input(
                format!(
                    "the agent file {shown} is not valid: {}",
                    e.to_string().trim_end()
                ),
                "see examples/agent.toml for a working agent file",
            )
        })?;
        if let Some(problem) = spec.limits_problem() {
            return Err(SessionError::bad_input(
                format!("the agent file {shown}: {problem}"),
                "limits are positive: a run with none left could not take a step",
            ));
        }
        for pattern in &spec.checkpoints.exclude {
            if let Err(why) = cordon_core::CheckpointRules::check_pattern(pattern) {
                // Where it is written, as TOML errors say it.
                let at = ["\"", "'"]
                    .iter()
                    .find_map(|q| text.find(&format!("{q}{pattern}{q}")))
                    .map(|i| {
                        let before = &text[..i];
                        let line = before.matches('\n').count() + 1;
                        let column =
                            before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                        format!(":{line}:{column}")
                    })
                    .unwrap_or_default();
                return Err(SessionError::bad_input(
                    format!("{shown}{at}: checkpoints.exclude '{pattern}' {why}"),
                    "exclusions are gitignore-style patterns, like target/ or *.log",
                ));
            }
        }
        if let Some(section) = &spec.skills {
            let base = path.parent().unwrap_or(Path::new("."));
            let checked = crate::skills::checked_dir(section)
                .and_then(|_| crate::skills::from_host(section, base));
            if let Err(e) = checked {
                return Err(SessionError::bad_input(
                    format!("the agent file {shown}: {}", e.message()),
                    e.hint_text().unwrap_or_default().to_string(),
                ));
            }
            spec.skills_base = Some(base.to_path_buf());
        }
        if let Some(problem) = spec
            .compaction
            .as_ref()
            .and_then(|c| c.resolve(Some(400_000)))
            .and_then(|c| c.problem())
        {
            return Err(SessionError::bad_input(
                format!("the agent file {shown}: [compaction] {problem}"),
                "context_window is in tokens; threshold and keep_recent are shares of it, like 0.8 and 0.25",
            ));
        }
        if let Some(problem) = spec.guardrails.iter().find_map(|g| g.problem()) {
            return Err(SessionError::bad_input(
                format!("the agent file {shown}: [[guardrails]] {problem}"),
                "each guardrail has a name, `on` (input, output, tool_call, tool_result) and one of `command` or `model_check`",
            ));
        }
        for (name, server) in &spec.mcp_servers {
            server.check(name).map_err(|e| {
                SessionError::bad_input(
                    format!("the agent file {shown}: {e}"),
                    "see `[mcp_servers]` in the README for how servers are declared",
                )
            })?;
        }
        if let Some(name) = &spec.policy_name {
            let policy = crate::policy::resolve(name, path.parent(), None).map_err(|e| {
                SessionError::bad_input(
                    format!("{shown}: policy: {}", e.message()),
                    e.hint_text().unwrap_or_default().to_string(),
                )
            })?;
            spec.policy = Some(policy);
        }
        spec.output_schema = match &spec.output {
            None => None,
            Some(OutputSection {
                schema: Some(s),
                schema_file: None,
            }) => Some(s.clone()),
            Some(OutputSection {
                schema: None,
                schema_file: Some(f),
            }) => {
                let p = path.parent().unwrap_or(Path::new(".")).join(f);
                let text = std::fs::read_to_string(&p).map_err(|e| {
                    SessionError::bad_input(
                        format!(
                            "{shown}: cannot read output.schema_file {}: {e}",
                            p.display()
                        ),
                        "schema_file is relative to the agent file",
                    )
                })?;
                Some(serde_json::from_str(&text).map_err(|e| {
                    SessionError::bad_input(
                        format!("{}: not JSON: {e}", p.display()),
                        "the schema file must hold a JSON schema",
                    )
                })?)
            }
            Some(_) => {
                return Err(SessionError::bad_input(
                    format!("{shown}: [output] needs exactly one of schema and schema_file"),
                    "write the schema inline, or name a JSON file holding it",
                ));
            }
        };
        Ok(spec)
    }

    /// The agent as a run recorded it (its instructions already hold the workspace's
    /// description), for resuming it.
    pub fn recorded(info: &cordon_core::AgentInfo) -> Result<AgentSpec, SessionError> {
        let damaged = |what: &str, e: serde_json::Error| {
            SessionError::new(
                crate::ErrorKind::Damaged,
                format!("the run's recorded {what} cannot be read: {e}"),
            )
            .caused_by(e)
        };
        let agent_tools: Vec<crate::team::AgentTool> = info
            .agent_tools
            .clone()
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| damaged("agent tools", e))?
            .unwrap_or_default();
        let agent_tool_names: std::collections::HashSet<&str> =
            agent_tools.iter().map(|t| t.name.as_str()).collect();
        Ok(AgentSpec {
            name: info.name.clone(),
            model: Some(info.model.clone()).filter(|m| !m.is_empty()),
            instructions: info.instructions.clone(),
            max_turns: Some(info.max_turns),
            // `read_skill` is not in the registry: the resume builds it from the skills.
            // Nor are the agent tools: the resume builds them from their declarations.
            tools: info
                .tools
                .iter()
                .filter(|t| !(info.skills.is_some() && *t == crate::skills::READ_SKILL))
                .filter(|t| !agent_tool_names.contains(t.as_str()))
                .cloned()
                .collect(),
            model_settings: serde_json::from_value(info.settings.clone()).unwrap_or_default(),
            output: None,
            output_schema: info.output_schema.clone(),
            budgets: info
                .budgets
                .clone()
                .map(serde_json::from_value)
                .transpose()
                .map_err(|e| damaged("budgets", e))?
                .unwrap_or_default(),
            approvals: info
                .approvals
                .clone()
                .map(serde_json::from_value)
                .transpose()
                .map_err(|e| damaged("approval rules", e))?
                .unwrap_or_default(),
            // The rules live in the recorded sandbox spec, which the resume rebuilds.
            checkpoints: cordon_core::CheckpointRules::default(),
            // The policy is recorded apart from the agent (see `crate::policy::recorded`).
            policy_name: None,
            policy: None,
            mcp_servers: info
                .mcp_servers
                .clone()
                .map(serde_json::from_value)
                .transpose()
                .map_err(|e| damaged("MCP servers", e))?
                .unwrap_or_default(),
            // Placed in the workspace (restored with it) or listed in the instructions.
            skills: None,
            skills_base: None,
            placed_skills: info
                .skills
                .clone()
                .map(serde_json::from_value)
                .transpose()
                .map_err(|e| damaged("skills", e))?,
            compaction: None,
            recorded_compaction: info
                .compaction
                .clone()
                .map(serde_json::from_value)
                .transpose()
                .map_err(|e| damaged("compaction settings", e))?,
            guardrails: info
                .guardrails
                .clone()
                .map(serde_json::from_value)
                .transpose()
                .map_err(|e| damaged("guardrails", e))?
                .unwrap_or_default(),
            handoff_sections: Vec::new(),
            agent_tool_sections: Vec::new(),
            max_parallel_agents: None,
            handoffs: info
                .handoffs
                .clone()
                .map(serde_json::from_value)
                .transpose()
                .map_err(|e| damaged("handoffs", e))?
                .unwrap_or_default(),
            members: info
                .members
                .iter()
                .map(AgentSpec::recorded)
                .collect::<Result<_, _>>()?,
            agent_tools: agent_tools.clone(),
        })
    }

    /// Builds the harness's agent for `model` (`PROVIDER:MODEL`) and the provider's
    /// `model_name`, with `tools` built for the run; `origin` names where the definition came
    /// from, for errors.
    pub(crate) fn into_agent(
        self,
        model: &str,
        model_name: &str,
        origin: &str,
        tools: Vec<Arc<dyn Tool>>,
        price: Option<cordon_harness::Price>,
    ) -> Result<Agent, SessionError> {
        let mut agent = Agent::new(&self.name, model, model_name)
            .instructions(&self.instructions)
            .settings(self.model_settings)
            .budgets(self.budgets, price)
            .approvals(self.approvals)
            .policy(
                self.policy
                    .unwrap_or_else(cordon_policy::Policy::permissive),
            );
        if let Some(n) = self.max_turns {
            agent = agent.max_turns(n);
        }
        if !self.mcp_servers.is_empty() {
            agent.mcp_servers = serde_json::to_value(&self.mcp_servers).ok();
        }
        if !self.guardrails.is_empty() {
            agent.guardrail_specs = serde_json::to_value(&self.guardrails).ok();
        }
        for tool in tools {
            agent = agent.tool(tool);
        }
        if let Some(s) = self.output_schema {
            agent = agent.output_schema(s).map_err(|e| {
                SessionError::bad_input(format!("{origin}: {e}"), "fix the schema in [output]")
            })?;
        }
        agent.check().map_err(|e| {
            SessionError::bad_input(
                format!("{origin}: {e}"),
                format!("list each tool once; prices go in the config file as [prices.\"{model_name}\"] with input_per_mtok and output_per_mtok"),
            )
        })?;
        Ok(agent)
    }
}
