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
    /// Which source offered each of the sources' tool names first: while it offers it, a
    /// tool of that name from another source is not offered (no source shadows another's).
    claimed: Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>,
    /// The MCP servers, as declared (recorded so that a resume starts them again).
    pub mcp_servers: Option<Value>,
    /// The skills the instructions list, as found (recorded for resume).
    pub skills: Option<Value>,
    /// When and how the conversation is compacted to fit the model's context window
    /// (none: never).
    pub compaction: Option<crate::Compaction>,
    /// Checks on the task, the final answer, and tool calls and their results.
    pub guardrails: Vec<Arc<dyn crate::guardrail::Guardrail>>,
    /// The guardrails as an agent file declared them (recorded so a resume builds them).
    pub guardrail_specs: Option<Value>,
    /// The agents this one may hand the conversation to (each offered as `transfer_to_NAME`).
    pub handoffs: Vec<crate::Handoff>,
    /// The team's other agents, which handoffs reach (kept by the entry agent; a member's
    /// own `members` are not used).
    pub members: Vec<Agent>,
    /// Agents offered as tools, as declared (recorded so a resume offers them again).
    pub agent_tools: Option<Value>,
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
    /// Two agents of a team share a name.
    #[error("two agents of the team are named '{0}'; agent names must be unique")]
    DuplicateAgent(String),
    /// A handoff to an agent the team does not have.
    #[error("the agent '{0}' hands off to '{1}', which is not an agent of the team")]
    UnknownHandoff(String, String),
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
            claimed: Default::default(),
            mcp_servers: None,
            skills: None,
            compaction: None,
            guardrails: Vec::new(),
            guardrail_specs: None,
            handoffs: Vec::new(),
            members: Vec::new(),
            agent_tools: None,
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

    /// Every tool offered now: the agent's own, then each source's. A name is offered
    /// once: the agent's own tools keep theirs, and a source's tool keeps its name while
    /// the source that offered it first still does.
    pub fn offered(&self) -> Vec<Arc<dyn Tool>> {
        let mut all = self.tools.clone();
        all.extend(self.handoffs.iter().map(|h| h.tool()));
        if self.sources.is_empty() {
            return all;
        }
        let lists: Vec<Vec<(String, Arc<dyn Tool>)>> = self
            .sources
            .iter()
            .map(|s| s.tools().into_iter().map(|t| (t.spec().name, t)).collect())
            .collect();
        let offers = |i: usize, name: &str| lists[i].iter().any(|(n, _)| n == name);
        let mut claimed = self.claimed.lock().unwrap_or_else(|e| e.into_inner());
        let mut owner: std::collections::HashMap<&str, usize> = Default::default();
        for (i, list) in lists.iter().enumerate() {
            for (name, _) in list {
                let first = match claimed.get(name) {
                    Some(&o) if o < lists.len() && offers(o, name) => o,
                    _ => i,
                };
                owner.entry(name.as_str()).or_insert(first);
            }
        }
        let mut taken: std::collections::HashSet<String> = self
            .tools
            .iter()
            .map(|t| t.spec().name)
            .chain(self.handoffs.iter().map(|h| h.tool_name()))
            .collect();
        for (i, list) in lists.iter().enumerate() {
            for (name, tool) in list {
                if owner.get(name.as_str()) == Some(&i) && taken.insert(name.clone()) {
                    claimed.insert(name.clone(), i);
                    all.push(tool.clone());
                }
            }
        }
        all
    }

    /// Lets the agent hand the conversation to `handoff.agent` (the entry agent, or a member
    /// added with [`Agent::member`]).
    pub fn handoff(mut self, handoff: crate::Handoff) -> Self {
        self.handoffs.push(handoff);
        self
    }

    /// Adds an agent to the run's team (on the entry agent): handoffs can reach it. It
    /// answers with its own instructions, model, settings, tools, output schema and
    /// guardrails; the policy, approvals, budgets and compaction stay the entry agent's.
    pub fn member(mut self, member: Agent) -> Self {
        self.members.push(member);
        self
    }

    /// The team's agent named `name` (none: this one, the entry agent).
    pub fn active(&self, name: Option<&str>) -> &Agent {
        name.filter(|n| *n != self.name)
            .and_then(|n| self.members.iter().find(|m| m.name == n))
            .unwrap_or(self)
    }

    /// The tool named `name` of whichever agent of the team has it (the active one first):
    /// what a resume runs again a call with, whoever made it.
    pub(crate) fn team_tool(&self, active: &Agent, name: &str) -> Option<Arc<dyn Tool>> {
        active
            .find_tool(name)
            .or_else(|| self.find_tool(name))
            .or_else(|| self.members.iter().find_map(|m| m.find_tool(name)))
    }

    /// Adds a guardrail.
    pub fn guardrail(mut self, guardrail: Arc<dyn crate::guardrail::Guardrail>) -> Self {
        self.guardrails.push(guardrail);
        self
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

    /// Checks the definition as a whole (unique tool names, a price for a cost budget,
    /// handoffs to agents of the team).
    pub fn check(&self) -> Result<(), AgentError> {
        if self.budgets.max_cost_usd.is_some() && self.price.is_none() {
            return Err(AgentError::NoPrice);
        }
        let mut names = std::collections::HashSet::from([self.name.as_str()]);
        for m in &self.members {
            if !names.insert(m.name.as_str()) {
                return Err(AgentError::DuplicateAgent(m.name.clone()));
            }
        }
        for agent in std::iter::once(self).chain(&self.members) {
            if let Some(h) = agent
                .handoffs
                .iter()
                .find(|h| !names.contains(h.agent.as_str()))
            {
                return Err(AgentError::UnknownHandoff(
                    agent.name.clone(),
                    h.agent.clone(),
                ));
            }
            let mut seen = std::collections::HashSet::new();
            let sources = agent.sources.iter().flat_map(|s| s.tools());
            let handoffs = agent.handoffs.iter().map(|h| h.tool());
            for t in agent.tools.iter().cloned().chain(handoffs).chain(sources) {
                let name = t.spec().name;
                if !seen.insert(name.clone()) {
                    return Err(AgentError::DuplicateTool(name));
                }
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
            guardrails: self.guardrail_specs.clone(),
            handoffs: (!self.handoffs.is_empty())
                .then(|| serde_json::to_value(&self.handoffs).unwrap_or(Value::Null)),
            members: self.members.iter().map(|m| m.info(api)).collect(),
            agent_tools: self.agent_tools.clone(),
        }
    }

    /// The tool offered under `name`: the one the model was shown (a source's tool that
    /// another holds the name of is not found).
    pub(crate) fn find_tool(&self, name: &str) -> Option<Arc<dyn Tool>> {
        if let Some(t) = self.tools.iter().find(|t| t.spec().name == name) {
            return Some(t.clone());
        }
        if let Some(h) = self.handoffs.iter().find(|h| h.tool_name() == name) {
            return Some(h.tool());
        }
        if self.sources.is_empty() {
            return None;
        }
        self.offered().into_iter().find(|t| t.spec().name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cordon_tools::{FunctionTool, RefreshFuture, ToolError};
    use std::sync::Mutex;

    struct Listed(&'static str, Mutex<Vec<&'static str>>);

    fn tool(name: &'static str) -> Arc<dyn Tool> {
        tool_of(name, "t")
    }

    /// A tool whose description names where it comes from.
    fn tool_of(name: &'static str, from: &'static str) -> Arc<dyn Tool> {
        Arc::new(FunctionTool::new(
            name,
            from,
            |_: serde_json::Value| async { Ok::<_, ToolError>(String::new()) },
        ))
    }

    impl ToolSource for Listed {
        fn name(&self) -> &str {
            self.0
        }
        fn tools(&self) -> Vec<Arc<dyn Tool>> {
            self.1
                .lock()
                .unwrap()
                .iter()
                .map(|n| tool_of(n, self.0))
                .collect()
        }
        fn refresh(&self) -> RefreshFuture<'_> {
            Box::pin(async { Ok(None) })
        }
    }

    #[test]
    fn a_handoff_is_found_and_judged_as_reading() {
        let agent = Agent::new("a", "p:m", "m")
            .handoff(crate::Handoff::new("b", "Bees."))
            .member(Agent::new("b", "p:m", "m"));
        let found = agent
            .find_tool("transfer_to_b")
            .expect("the handoff is a tool of the run");
        assert_eq!(
            crate::approval::risk_class(Some(found.judged_as())),
            cordon_policy::RiskClass::ReadOnly
        );
        let bad = Agent::new("a", "p:m", "m").handoff(crate::Handoff::new("c", ""));
        assert!(
            matches!(bad.check(), Err(AgentError::UnknownHandoff(a, c)) if a == "a" && c == "c")
        );
    }

    #[test]
    fn a_source_never_shadows_a_name_offered_before() {
        let a = Arc::new(Listed("a", Mutex::new(vec!["a__x"])));
        let b = Arc::new(Listed("b", Mutex::new(vec!["b__y", "shared"])));
        let agent = Agent::new("t", "p:m", "m")
            .tool(tool("own"))
            .source(a.clone())
            .source(b.clone());
        let names = |agent: &Agent| -> Vec<String> {
            agent.offered().iter().map(|t| t.spec().name).collect()
        };
        assert_eq!(names(&agent), ["own", "a__x", "b__y", "shared"]);
        // `a` adds a name `b` offers, and one the agent has: neither is offered from `a`.
        a.1.lock().unwrap().extend(["shared", "own"]);
        assert_eq!(names(&agent), ["own", "a__x", "b__y", "shared"]);
        // A call goes to the tool that was offered: `b`'s.
        assert_eq!(agent.find_tool("shared").unwrap().spec().description, "b");
        // Once `b` drops it, `a` may offer it.
        b.1.lock().unwrap().retain(|n| *n != "shared");
        assert_eq!(names(&agent), ["own", "a__x", "shared", "b__y"]);
        // Duplicates among what is there at the start are refused.
        let c = Arc::new(Listed("c", Mutex::new(vec!["own"])));
        let bad = Agent::new("t", "p:m", "m").tool(tool("own")).source(c);
        assert!(matches!(bad.check(), Err(AgentError::DuplicateTool(n)) if n == "own"));
    }
}
