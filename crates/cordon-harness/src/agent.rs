//! What an agent is: instructions, a model, settings, tools, limits.

use crate::output::OutputValidator;
use cordon_core::AgentInfo;
use cordon_model::ModelSettings;
use cordon_policy::Policy;
use cordon_tools::{Tool, ToolSource};
use serde_json::Value;
use std::sync::Arc;

/// The default limit on model calls in one run.
pub const DEFAULT_MAX_TURNS: u32 = 20;

/// An agent definition that a [`Runner`](crate::Runner) can run.
#[derive(Clone)]
pub struct Agent {
    /// The agent's name.
    pub name: String,
    /// The operator's instructions.
    pub instructions: String,
    /// `PROVIDER:MODEL`, as recorded.
    pub model: String,
    /// The model's name at the provider.
    pub model_name: String,
    /// Tuning.
    pub settings: ModelSettings,
    /// The most model calls one run may make.
    pub max_turns: u32,
    /// The tools offered to the model.
    pub tools: Vec<Arc<dyn Tool>>,
    /// Sources of more tools, whose lists can change during the run (MCP servers).
    pub sources: Vec<Arc<dyn ToolSource>>,
    /// The MCP servers, as declared (recorded so that a resume starts them again).
    pub mcp_servers: Option<Value>,
    /// The skills the instructions list, as found (recorded for resume).
    pub skills: Option<Value>,
    /// When and how the conversation is compacted to fit the model's context window
    /// (none: never).
    pub compaction: Option<crate::Compaction>,
    /// Limits beyond `max_turns`.
    pub budgets: crate::Budgets,
    /// The model's price, for `max_cost_usd`.
    pub price: Option<crate::Price>,
    /// Which tool calls wait for a person's approval (the agent file's `[approvals]`),
    /// joined to the policy's rules.
    pub approvals: crate::ApprovalRules,
    /// The policy the run is under, without the approvals.
    policy: Arc<Policy>,
    /// The policy and the approvals together: what judges each call.
    gate: Arc<Policy>,
    pub(crate) output: Option<OutputValidator>,
}

/// An agent definition that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The output schema is not a valid JSON schema.
    #[error("the output schema is not a valid JSON schema: {0}")]
    BadSchema(String),
    /// Two tools share a name.
    #[error("two tools are named '{0}'; tool names must be unique")]
    DuplicateTool(String),
    /// A cost budget without a price to count it with.
    #[error(
        "max_cost_usd needs the model's price: add it to the [prices] table of the config file"
    )]
    NoPrice,
}

impl Agent {
    /// An agent using `model_name` at the provider named in `model` (`PROVIDER:MODEL`).
    pub fn new(name: &str, model: &str, model_name: &str) -> Self {
        Agent {
            name: name.to_string(),
            instructions: String::new(),
            model: model.to_string(),
            model_name: model_name.to_string(),
            settings: ModelSettings::default(),
            max_turns: DEFAULT_MAX_TURNS,
            tools: Vec::new(),
            sources: Vec::new(),
            mcp_servers: None,
            skills: None,
            compaction: None,
            budgets: crate::Budgets::default(),
            price: None,
            approvals: crate::ApprovalRules::default(),
            policy: Arc::new(Policy::permissive()),
            gate: Arc::new(Policy::permissive()),
            output: None,
        }
    }

    /// Sets the instructions.
    pub fn instructions(mut self, text: &str) -> Self {
        self.instructions = text.to_string();
        self
    }

    /// Adds a tool.
    pub fn tool(mut self, tool: Arc<dyn Tool>) -> Self {
        self.tools.push(tool);
        self
    }

    /// Adds a source of tools (an MCP server): its tools are offered beside the agent's own,
    /// and listed again when it says they changed.
    pub fn source(mut self, source: Arc<dyn ToolSource>) -> Self {
        self.sources.push(source);
        self
    }

    /// Every tool offered now: the agent's own, then each source's.
    pub fn offered(&self) -> Vec<Arc<dyn Tool>> {
        let mut all = self.tools.clone();
        for s in &self.sources {
            all.extend(s.tools());
        }
        all
    }

    /// Sets the limit on model calls.
    pub fn max_turns(mut self, n: u32) -> Self {
        self.max_turns = n;
        self
    }

    /// Sets the model settings.
    pub fn settings(mut self, settings: ModelSettings) -> Self {
        self.settings = settings;
        self
    }

    /// Requires the final answer to be JSON matching `schema`; the model is asked again
    /// (within `max_turns`) when it is not.
    pub fn output_schema(mut self, schema: Value) -> Result<Self, AgentError> {
        self.output = Some(OutputValidator::new(schema)?);
        Ok(self)
    }

    /// Sets limits beyond `max_turns`, and the model's price for `max_cost_usd`.
    pub fn budgets(mut self, budgets: crate::Budgets, price: Option<crate::Price>) -> Self {
        self.budgets = budgets;
        self.price = price;
        self
    }

    /// Sets which tool calls wait for a person's approval, beside the policy's rules.
    pub fn approvals(mut self, rules: crate::ApprovalRules) -> Self {
        self.approvals = rules;
        self.join_policy();
        self
    }

    /// Puts the agent's calls under `policy` (by default [`Policy::permissive`]).
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = Arc::new(policy);
        self.join_policy();
        self
    }

    /// The policy the agent's calls are under, without the approvals.
    pub fn policy_in_force(&self) -> &Policy {
        &self.policy
    }

    /// What judges each call: the policy, with the approvals as rules that ask.
    pub fn gate(&self) -> &Policy {
        &self.gate
    }

    fn join_policy(&mut self) {
        self.gate = Arc::new(
            (*self.policy)
                .clone()
                .with_approvals(&self.approvals.tools, &self.approvals.commands),
        );
    }

    /// Checks the definition as a whole (unique tool names, a price for a cost budget).
    pub fn check(&self) -> Result<(), AgentError> {
        if self.budgets.max_cost_usd.is_some() && self.price.is_none() {
            return Err(AgentError::NoPrice);
        }
        let mut seen = std::collections::HashSet::new();
        for t in self.offered() {
            let name = t.spec().name;
            if !seen.insert(name.clone()) {
                return Err(AgentError::DuplicateTool(name));
            }
        }
        Ok(())
    }

    /// What is recorded about the agent when a run starts.
    pub fn info(&self, api: &str) -> AgentInfo {
        AgentInfo {
            name: self.name.clone(),
            instructions: self.instructions.clone(),
            model: self.model.clone(),
            api: api.to_string(),
            settings: serde_json::to_value(&self.settings).unwrap_or(Value::Null),
            tools: self.tools.iter().map(|t| t.spec().name).collect(),
            max_turns: self.max_turns,
            output_schema: self.output.as_ref().map(|o| o.schema().clone()),
            budgets: (!self.budgets.is_empty())
                .then(|| serde_json::to_value(&self.budgets).unwrap_or(Value::Null)),
            approvals: (!self.approvals.is_empty())
                .then(|| serde_json::to_value(&self.approvals).unwrap_or(Value::Null)),
            mcp_servers: self.mcp_servers.clone(),
            skills: self.skills.clone(),
            compaction: self
                .compaction
                .as_ref()
                .and_then(|c| serde_json::to_value(c).ok()),
        }
    }

    pub(crate) fn find_tool(&self, name: &str) -> Option<Arc<dyn Tool>> {
        if let Some(t) = self.tools.iter().find(|t| t.spec().name == name) {
            return Some(t.clone());
        }
        self.sources
            .iter()
            .flat_map(|s| s.tools())
            .find(|t| t.spec().name == name)
    }
}
